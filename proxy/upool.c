/* upool.c - idle upstream TLS connections kept for reuse. See upool.h. */
#include "proxy/upool.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "proxy/proxy_int.h"
#include "proxy/tls.h"

struct upool_entry {
	struct proxy *px;
	struct upool_entry *prev, *next;
	int fd;
	SSL *ssl;
	char host[PROXY_MAX_HOST_BYTES + 1];
	uint16_t port;
	struct sockaddr_storage peer;
	unsigned long gen;
	uv_poll_t poll;   /* any byte or end from the server: dropped */
	uv_timer_t timer; /* PROXY_UPSTREAM_KEEP_IDLE_MS */
	bool poll_inited;
	unsigned open_handles;
};

static bool same_peer(const struct sockaddr_storage *a, const struct sockaddr *b)
{
	if (a->ss_family != b->sa_family)
		return false;
	if (b->sa_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (b->sa_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
		return x->sin6_port == y->sin6_port &&
		       memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
	}
	return false;
}

static void unlink_entry(struct upool_entry *e)
{
	struct proxy *px = e->px;
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		px->kept = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	px->n_kept--;
}

static void on_entry_handle_closed(uv_handle_t *h)
{
	struct upool_entry *e = h->data;
	struct proxy *px = e->px;
	if (--e->open_handles == 0)
		free(e);
	proxy_handle_closed(px); /* may free px: last */
}

/* The session is kept for resumption: an idle connection that the server
 * or our timer ended still had a good one. */
static void release_ssl(struct proxy *px, SSL *ssl, const char *host, uint16_t port)
{
	if (ssl == NULL)
		return;
	SSL_set_shutdown(ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
	if (px->tls != NULL)
		tls_keep_client_session(px->tls, ssl, host, port);
	SSL_free(ssl);
}

/* Unlinks e and closes its handles (freed in their callbacks); its socket
 * and SSL too unless they were taken (fd -1, ssl NULL). */
static void close_entry(struct upool_entry *e)
{
	unlink_entry(e);
	if (e->poll_inited) /* stops polling the fd at once (epoll and libuv's table) */
		uv_close((uv_handle_t *)&e->poll, on_entry_handle_closed);
	uv_close((uv_handle_t *)&e->timer, on_entry_handle_closed);
	if (e->fd >= 0)
		close(e->fd);
	release_ssl(e->px, e->ssl, e->host, e->port);
	e->fd = -1;
	e->ssl = NULL;
}

static void on_server_spoke(uv_poll_t *h, int status, int events)
{
	close_entry(h->data);
}

static void on_idle(uv_timer_t *t)
{
	close_entry(t->data);
}

static size_t kept_for(const struct proxy *px, const char *host, uint16_t port)
{
	size_t n = 0;
	for (const struct upool_entry *e = px->kept; e != NULL; e = e->next)
		n += e->port == port && strcmp(e->host, host) == 0;
	return n;
}

static bool room_for(const struct proxy *px, const char *host, uint16_t port, size_t hlen,
		     const struct sockaddr *peer)
{
	return !px->stopping && hlen < sizeof(((struct upool_entry *)0)->host) &&
	       (peer->sa_family == AF_INET || peer->sa_family == AF_INET6) &&
	       px->n_kept < PROXY_UPSTREAM_KEEP_MAX &&
	       kept_for(px, host, port) < PROXY_UPSTREAM_KEEP_PER_HOST;
}

void upool_put(struct proxy *px, int fd, SSL *ssl, const char *host, uint16_t port,
	       const struct sockaddr *peer, unsigned long gen)
{
	size_t hlen = strlen(host);
	struct upool_entry *e = room_for(px, host, port, hlen, peer) ? calloc(1, sizeof(*e)) : NULL;
	if (e == NULL || uv_timer_init(px->loop, &e->timer) < 0) {
		close(fd);
		release_ssl(px, ssl, host, port);
		free(e);
		return;
	}
	e->px = px;
	e->fd = fd;
	e->ssl = ssl;
	(void)tls_release_buffers(ssl); /* ~34 KiB of record buffers while idle */
	memcpy(e->host, host, hlen + 1);
	e->port = port;
	memcpy(&e->peer, peer, peer->sa_family == AF_INET ? sizeof(struct sockaddr_in)
							  : sizeof(struct sockaddr_in6));
	e->gen = gen;
	e->timer.data = e;
	e->open_handles = 1;
	px->open_handles++;
	e->next = px->kept;
	if (px->kept != NULL)
		px->kept->prev = e;
	px->kept = e;
	px->n_kept++;
	e->poll_inited = uv_poll_init(px->loop, &e->poll, fd) == 0;
	if (e->poll_inited) {
		e->poll.data = e;
		e->open_handles++;
		px->open_handles++;
	}
	if (!e->poll_inited ||
	    uv_poll_start(&e->poll, UV_READABLE | UV_DISCONNECT, on_server_spoke) < 0 ||
	    uv_timer_start(&e->timer, on_idle, PROXY_UPSTREAM_KEEP_IDLE_MS, 0) < 0)
		close_entry(e);
}

/* Nothing to read and no end: the server has not spoken since the entry was
 * kept (its poll callback may not have run yet in this loop iteration). */
static bool still_quiet(int fd)
{
	char b;
	ssize_t r = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	return r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

int upool_take(struct proxy *px, const char *host, uint16_t port, const struct sockaddr *peer,
	       unsigned long gen, SSL **ssl)
{
	for (struct upool_entry *e = px->kept, *next; e != NULL; e = next) {
		next = e->next;
		if (e->port != port || e->gen != gen || strcmp(e->host, host) != 0 ||
		    !same_peer(&e->peer, peer))
			continue;
		if (!still_quiet(e->fd)) {
			close_entry(e);
			continue;
		}
		int fd = e->fd;
		*ssl = e->ssl;
		e->fd = -1;
		e->ssl = NULL;
		close_entry(e);
		return fd;
	}
	return -1;
}

void upool_drop_all(struct proxy *px)
{
	while (px->kept != NULL)
		close_entry(px->kept);
}
