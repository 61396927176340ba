/* transparent.c - transparent capture listener, flow identification and the
 * capture's lifetime (with the DNS responder). See transparent.h.
 *
 * Peeking: the socket is polled for readability with SO_RCVLOWAT set one
 * byte above what was already peeked, so a partial ClientHello does not
 * wake the loop again until more bytes (or EOF) arrive.
 *
 * Ownership: the capture owns the listening socket, its poll and backoff
 * handles, each flow being peeked (socket, poll, timer) until it is handed
 * to conn.c, the DNS responder and the address map.
 */
#include "proxy/transparent.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netfilter_ipv4.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "policy/policy.h"
#include "proxy/dns.h"
#include "proxy/dns_map.h"
#include "proxy/sni.h"

#define ACCEPT_BATCH 64
#define ACCEPT_PAUSE_MS 100u

struct peek {
	struct capture *cap;
	struct peek *prev, *next;
	int fd;
	uv_poll_t poll;
	uv_timer_t timer;
	unsigned open_handles;
	bool closing;
	bool got_bytes;
	size_t peeked;
	uint64_t deadline;                /* loop time (ms) the peek must end by */
	struct sockaddr_storage peer, orig;
	uint8_t buf[SNI_PEEK_MAX];
};

struct capture {
	struct proxy *px;
	int listen_fd;
	uint16_t listen_port;
	uv_poll_t poll;
	uv_timer_t pause;
	unsigned open_handles;            /* poll, pause, one per peek */
	struct peek *peeks;
	size_t n_peeks;
	struct dns_map *map;
	struct dns_responder *dns;        /* NULL once stopped */
	bool dns_running;
	bool stopping;
};

/* ---- sockets (made in the sandbox namespace) ---- */

static int bind_loopback(int type, uint16_t port, char *err, size_t errlen)
{
	int fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "capture: socket: %s", strerror(errno));
		return -1;
	}
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int one = 1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    (type == SOCK_STREAM && listen(fd, PROXY_LISTEN_BACKLOG) != 0)) {
		snprintf(err, errlen, "capture: cannot listen on 127.0.0.1:%u/%s: %s",
			 (unsigned)port, type == SOCK_STREAM ? "tcp" : "udp", strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

void proxy_capture_close(struct proxy_capture_fds *fds)
{
	if (fds == NULL)
		return;
	int *all[] = { &fds->tcp, &fds->dns_udp, &fds->dns_tcp };
	for (size_t i = 0; i < 3; i++) {
		if (*all[i] >= 0)
			close(*all[i]);
		*all[i] = -1;
	}
}

int proxy_capture_open(struct proxy_capture_fds *fds, char *err, size_t errlen)
{
	fds->tcp = bind_loopback(SOCK_STREAM, PROXY_CAPTURE_TCP_PORT, err, errlen);
	fds->dns_udp = fds->dns_tcp = -1;
	if (fds->tcp >= 0)
		fds->dns_udp = bind_loopback(SOCK_DGRAM, PROXY_CAPTURE_DNS_PORT, err, errlen);
	if (fds->dns_udp >= 0)
		fds->dns_tcp = bind_loopback(SOCK_STREAM, PROXY_CAPTURE_DNS_PORT, err, errlen);
	if (fds->dns_tcp >= 0)
		return 0;
	proxy_capture_close(fds);
	return -1;
}

/* ---- lifetime ---- */

static void capture_maybe_finish(struct capture *cap)
{
	if (!cap->stopping || cap->open_handles > 0 || cap->dns_running)
		return;
	struct proxy *px = cap->px;
	dns_map_free(cap->map);
	free(cap);
	proxy_capture_stopped(px);
}

static void on_cap_handle_closed(uv_handle_t *h)
{
	struct capture *cap = h->data;
	cap->open_handles--;
	capture_maybe_finish(cap);
}

static void on_dns_stopped(void *arg)
{
	struct capture *cap = arg;
	cap->dns_running = false;
	capture_maybe_finish(cap);
}

static void peek_maybe_free(struct peek *pk)
{
	if (pk->open_handles > 0)
		return;
	struct capture *cap = pk->cap;
	if (pk->prev != NULL)
		pk->prev->next = pk->next;
	else
		cap->peeks = pk->next;
	if (pk->next != NULL)
		pk->next->prev = pk->prev;
	cap->n_peeks--;
	if (pk->fd >= 0)
		close(pk->fd);
	free(pk);
	cap->open_handles--;
	capture_maybe_finish(cap);
}

static void on_peek_handle_closed(uv_handle_t *h)
{
	struct peek *pk = h->data;
	pk->open_handles--;
	peek_maybe_free(pk);
}

/* Close with a TCP reset (unread bytes and SO_LINGER 0 both make it one). */
static void close_reset(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

/* Stop watching the flow; its socket is reset unless handed off (fd -1). */
static void peek_close(struct peek *pk)
{
	if (pk->closing)
		return;
	pk->closing = true;
	if (pk->fd >= 0) {
		close_reset(pk->fd);
		pk->fd = -1;
	}
	uv_close((uv_handle_t *)&pk->poll, on_peek_handle_closed);
	uv_close((uv_handle_t *)&pk->timer, on_peek_handle_closed);
}

/* ---- identification ---- */

static bool orig_addr(const struct sockaddr_storage *ss, int *family, const uint8_t **addr,
		      uint16_t *port)
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
		*family = AF_INET;
		*addr = (const uint8_t *)&s4->sin_addr;
		*port = ntohs(s4->sin_port);
		return true;
	}
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
		*family = AF_INET6;
		*addr = (const uint8_t *)&s6->sin6_addr;
		*port = ntohs(s6->sin6_port);
		return true;
	}
	return false;
}

const char *transparent_map_name(const struct dns_map *map, const struct policy *p,
				 const struct sockaddr_storage *orig)
{
	int family;
	const uint8_t *addr;
	uint16_t port;
	const char *names[DNS_MAP_NAMES_MAX];
	if (map == NULL || !orig_addr(orig, &family, &addr, &port))
		return NULL;
	size_t n = dns_map_lookup(map, family, addr, names, DNS_MAP_NAMES_MAX);
	for (size_t i = 0; p != NULL && i < n; i++) {
		struct policy_decision d;
		policy_decide(p, names[i], port, NULL, false, &d);
		if (d.allowed)
			return names[i];
	}
	return n > 0 ? names[0] : NULL;
}

/* The proxy address exists only inside the sandbox (on its loopback): a flow
 * to it that names nothing else is for the host alias, the name the policy
 * DNS answers with that address, never for whatever 10.200.N.1 is outside. */
static bool to_proxy_address(const struct proxy *px, const struct sockaddr_storage *orig)
{
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)orig;
	return px->has_listen_v4 && orig->ss_family == AF_INET &&
	       memcmp(&s4->sin_addr, px->listen_v4, 4) == 0;
}

static void hand_off(struct peek *pk, enum peek_kind kind, const char *name)
{
	struct capture *cap = pk->cap;
	struct proxy *px = cap->px;
	int one = 1;
	int fd = pk->fd;
	pk->fd = -1;
	peek_close(pk);
	if (setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof(one)) != 0 ||
	    px->n_conns >= PROXY_MAX_CONNECTIONS) {
		px_log(px, PROXY_LOG_WARN, "capture: flow refused (%s)",
		       px->n_conns >= PROXY_MAX_CONNECTIONS ? "connection limit" : strerror(errno));
		close_reset(fd);
		return;
	}
	if (name == NULL || name[0] == '\0')
		name = transparent_map_name(cap->map, px->policy, &pk->orig);
	if ((name == NULL || name[0] == '\0') && to_proxy_address(px, &pk->orig))
		name = PROXY_HOST_ALIAS;
	enum conn_capture_kind ck = kind == PEEK_TLS    ? CONN_CAPTURE_TLS
				    : kind == PEEK_HTTP ? CONN_CAPTURE_HTTP
							: CONN_CAPTURE_TCP;
	px->n_conns++;
	conn_accepted_transparent(px, fd, &pk->peer, &pk->orig, name, ck);
}

static void on_peek_timeout(uv_timer_t *t);

/* Look at what has arrived; final: decide now with whatever is there. */
static void peek_examine(struct peek *pk, bool final)
{
	char name[SNI_NAME_MAX + 1];
	ssize_t n = recv(pk->fd, pk->buf, sizeof(pk->buf), MSG_PEEK | MSG_DONTWAIT);
	if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
		peek_close(pk);
		return;
	}
	size_t got = n > 0 ? (size_t)n : 0;
	/* readable with nothing new: EOF (SO_RCVLOWAT does not hold it back) */
	if (n == 0 || (n > 0 && got == pk->peeked && pk->got_bytes))
		final = true;
	enum peek_kind kind = peek_identify(pk->buf, got, final, name, sizeof(name));
	if (kind != PEEK_MORE) {
		hand_off(pk, kind, name);
		return;
	}
	if (got > 0 && !pk->got_bytes) {
		/* first bytes: the rest of the hello/head gets the peek budget */
		pk->got_bytes = true;
		uint64_t now = uv_now(pk->cap->px->loop);
		uint64_t left = pk->deadline > now ? pk->deadline - now : 0;
		if (uv_timer_start(&pk->timer, on_peek_timeout, left, 0) < 0) {
			peek_close(pk);
			return;
		}
	}
	pk->peeked = got;
	int lowat = (int)got + 1;
	if (setsockopt(pk->fd, SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof(lowat)) != 0)
		peek_close(pk);
}

static void on_peek_readable(uv_poll_t *h, int status, int events)
{
	struct peek *pk = h->data;
	if (pk->closing)
		return;
	if (status < 0) {
		peek_close(pk);
		return;
	}
	peek_examine(pk, false);
}

static void on_peek_timeout(uv_timer_t *t)
{
	struct peek *pk = t->data;
	if (!pk->closing)
		peek_examine(pk, true);
}

/* ---- accept ---- */

static bool get_orig_dst(int fd, struct sockaddr_storage *orig)
{
	socklen_t len = sizeof(struct sockaddr_in);
	memset(orig, 0, sizeof(*orig));
	return getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, orig, &len) == 0 &&
	       orig->ss_family == AF_INET;
}

static bool is_listener_itself(const struct capture *cap, const struct sockaddr_storage *orig)
{
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)orig;
	uint8_t first = ((const uint8_t *)&s4->sin_addr)[0];
	return ntohs(s4->sin_port) == cap->listen_port && first == 127;
}

/* Decisions are host + port and the port is fixed by the original
 * destination: when no endpoint has it, no name the flow could carry can be
 * allowed, so it is decided (denied) without waiting for its first bytes. */
static bool port_in_policy(const struct policy *p, const struct sockaddr_storage *orig)
{
	uint16_t port = ntohs(((const struct sockaddr_in *)orig)->sin_port);
	for (size_t r = 0; p != NULL && r < p->n_rules; r++)
		for (size_t e = 0; e < p->rules[r].n_endpoints; e++) {
			const struct policy_endpoint *ep = &p->rules[r].endpoints[e];
			for (size_t i = 0; i < ep->n_ports; i++)
				if (ep->ports[i] == port)
					return true;
		}
	return false;
}

static void start_peek(struct capture *cap, int fd, const struct sockaddr_storage *peer,
		       const struct sockaddr_storage *orig)
{
	struct peek *pk = calloc(1, sizeof(*pk));
	if (pk == NULL) {
		close_reset(fd);
		return;
	}
	pk->cap = cap;
	pk->fd = fd;
	pk->peer = *peer;
	pk->orig = *orig;
	if (uv_poll_init(cap->px->loop, &pk->poll, fd) < 0) {
		close_reset(fd);
		free(pk);
		return;
	}
	pk->poll.data = pk;
	pk->timer.data = pk;
	pk->open_handles = 1;
	if (uv_timer_init(cap->px->loop, &pk->timer) == 0)
		pk->open_handles++;
	cap->open_handles++;
	cap->n_peeks++;
	pk->next = cap->peeks;
	if (cap->peeks != NULL)
		cap->peeks->prev = pk;
	cap->peeks = pk;
	if (pk->open_handles < 2) {
		pk->closing = true;
		close_reset(pk->fd);
		pk->fd = -1;
		uv_close((uv_handle_t *)&pk->poll, on_peek_handle_closed);
		return;
	}
	if (!port_in_policy(cap->px->policy, orig)) {
		hand_off(pk, PEEK_OTHER, NULL);
		return;
	}
	pk->deadline = uv_now(cap->px->loop) + PROXY_CAPTURE_PEEK_MS;
	if (uv_timer_start(&pk->timer, on_peek_timeout, PROXY_CAPTURE_FIRST_BYTE_MS, 0) < 0 ||
	    uv_poll_start(&pk->poll, UV_READABLE, on_peek_readable) < 0)
		peek_close(pk);
}

static void on_listen_readable(uv_poll_t *h, int status, int events);

static void on_pause_done(uv_timer_t *t)
{
	struct capture *cap = t->data;
	if (!cap->stopping && uv_poll_start(&cap->poll, UV_READABLE, on_listen_readable) < 0)
		px_log(cap->px, PROXY_LOG_ERROR, "capture: cannot resume accepting");
}

static void pause_accept(struct capture *cap, int err)
{
	px_log(cap->px, PROXY_LOG_WARN, "capture: accept: %s; pausing %u ms", strerror(err),
	       ACCEPT_PAUSE_MS);
	if (uv_poll_stop(&cap->poll) < 0 ||
	    uv_timer_start(&cap->pause, on_pause_done, ACCEPT_PAUSE_MS, 0) < 0)
		px_log(cap->px, PROXY_LOG_ERROR, "capture: cannot pause accepting");
}

static void accept_one(struct capture *cap, int fd, const struct sockaddr_storage *peer)
{
	struct sockaddr_storage orig;
	if (!get_orig_dst(fd, &orig) || is_listener_itself(cap, &orig)) {
		px_log(cap->px, PROXY_LOG_INFO,
		       "capture: refused a connection that was not redirected to the listener");
		close_reset(fd);
		return;
	}
	if (cap->n_peeks >= PROXY_CAPTURE_MAX_PEEKING) {
		px_log(cap->px, PROXY_LOG_WARN, "capture: %u flows being identified; reset one",
		       PROXY_CAPTURE_MAX_PEEKING);
		close_reset(fd);
		return;
	}
	start_peek(cap, fd, peer, &orig);
}

static void on_listen_readable(uv_poll_t *h, int status, int events)
{
	struct capture *cap = h->data;
	if (status < 0) {
		pause_accept(cap, -status);
		return;
	}
	for (int i = 0; i < ACCEPT_BATCH && !cap->stopping; i++) {
		struct sockaddr_storage peer;
		socklen_t plen = sizeof(peer);
		int fd = accept4(cap->listen_fd, (struct sockaddr *)&peer, &plen,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			accept_one(cap, fd, &peer);
			continue;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return;
		if (errno != EINTR && errno != ECONNABORTED) {
			pause_accept(cap, errno);
			return;
		}
	}
}

/* ---- start / stop ---- */

static uint16_t bound_port(int fd)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	if (getsockname(fd, (struct sockaddr *)&a, &len) != 0 || a.sin_family != AF_INET)
		return 0;
	return ntohs(a.sin_port);
}

static int start_listener(struct capture *cap, char *err, size_t errlen)
{
	int rc = uv_poll_init(cap->px->loop, &cap->poll, cap->listen_fd);
	if (rc == 0) {
		cap->poll.data = cap;
		cap->open_handles++;
		rc = uv_timer_init(cap->px->loop, &cap->pause);
	}
	if (rc == 0) {
		cap->pause.data = cap;
		cap->open_handles++;
		rc = uv_poll_start(&cap->poll, UV_READABLE, on_listen_readable);
	}
	if (rc < 0)
		snprintf(err, errlen, "capture: libuv: %s", uv_strerror(rc));
	return rc < 0 ? -1 : 0;
}

static int dup_fds(const struct proxy_capture_fds *in, struct proxy_capture_fds *out,
		   char *err, size_t errlen)
{
	out->tcp = fcntl(in->tcp, F_DUPFD_CLOEXEC, 3);
	out->dns_udp = out->tcp >= 0 ? fcntl(in->dns_udp, F_DUPFD_CLOEXEC, 3) : -1;
	out->dns_tcp = out->dns_udp >= 0 ? fcntl(in->dns_tcp, F_DUPFD_CLOEXEC, 3) : -1;
	if (out->dns_tcp >= 0)
		return 0;
	snprintf(err, errlen, "capture: duplicating the listening sockets: %s", strerror(errno));
	proxy_capture_close(out);
	return -1;
}

/* Names the sandbox may resolve from its own /etc/hosts (it shares the
 * supervisor's) never reach the DNS responder; remember them too. */
static void seed_from_hosts(struct capture *cap)
{
	char *text = malloc(DNS_MAP_HOSTS_MAX_BYTES);
	int fd = open("/etc/hosts", O_RDONLY | O_CLOEXEC);
	size_t len = 0;
	while (text != NULL && fd >= 0 && len < DNS_MAP_HOSTS_MAX_BYTES) {
		ssize_t n = read(fd, text + len, DNS_MAP_HOSTS_MAX_BYTES - len);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	if (fd >= 0)
		close(fd);
	size_t added = dns_map_add_hosts(cap->map, text, len);
	px_log(cap->px, PROXY_LOG_DEBUG, "capture: %zu names from /etc/hosts", added);
	free(text);
}

struct capture *capture_start(struct proxy *px, const struct proxy_capture_fds *orig_fds,
			      const char *hostname, char *err, size_t errlen)
{
	struct proxy_capture_fds own, *fds = &own;
	if (dup_fds(orig_fds, &own, err, errlen) != 0) {
		proxy_capture_stopped(px);
		return NULL;
	}
	struct capture *cap = calloc(1, sizeof(*cap));
	struct dns_map *map = dns_map_new();
	if (cap == NULL || map == NULL) {
		free(cap);
		dns_map_free(map);
		proxy_capture_close(fds);
		snprintf(err, errlen, "capture: out of memory");
		proxy_capture_stopped(px); /* the promise of capture_start: exactly once */
		return NULL;
	}
	cap->px = px;
	cap->map = map;
	seed_from_hosts(cap);
	cap->listen_fd = fds->tcp;
	cap->listen_port = bound_port(fds->tcp);
	cap->dns = dns_responder_start(px, fds->dns_udp, fds->dns_tcp, map, hostname,
				       on_dns_stopped, cap, err, errlen);
	cap->dns_running = cap->dns != NULL;
	if (cap->dns == NULL || cap->listen_port == 0 || start_listener(cap, err, errlen) != 0) {
		if (cap->listen_port == 0 && cap->dns != NULL)
			snprintf(err, errlen, "capture: listener socket is not bound to IPv4");
		capture_stop(cap);
		return NULL;
	}
	px_log(px, PROXY_LOG_INFO, "capture: transparent listener on 127.0.0.1:%u, DNS on port %u"
	       " (sandbox namespace)", (unsigned)cap->listen_port, PROXY_CAPTURE_DNS_PORT);
	return cap;
}

void capture_stop(struct capture *cap)
{
	if (cap == NULL || cap->stopping)
		return;
	cap->stopping = true;
	for (struct peek *pk = cap->peeks; pk != NULL; pk = pk->next)
		peek_close(pk);
	if (cap->poll.data != NULL)
		uv_close((uv_handle_t *)&cap->poll, on_cap_handle_closed);
	if (cap->pause.data != NULL)
		uv_close((uv_handle_t *)&cap->pause, on_cap_handle_closed);
	if (cap->listen_fd >= 0)
		close(cap->listen_fd);
	cap->listen_fd = -1;
	struct dns_responder *d = cap->dns;
	cap->dns = NULL;
	dns_responder_stop(d); /* on_dns_stopped may run later */
	capture_maybe_finish(cap);
}
