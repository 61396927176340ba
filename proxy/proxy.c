/* proxy.c - listener, accept loop (EMFILE-safe), lifecycle. See proxy.h.
 *
 * The listening socket is driven through a uv_poll_t and accept4() rather
 * than uv_listen(), so the accept loop can pause (backoff) and release a
 * reserve descriptor when the process runs out of file descriptors.
 */
#include "proxy/proxy_int.h"
#include "proxy/tls.h"
#include "proxy/upool.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define ACCEPT_BATCH 64 /* accepts per wake-up before yielding to the loop */
#define CAP_BODY "{\"error\":\"proxy_busy\",\"detail\":\"too many concurrent connections\"}"
#define CAP_RESPONSE \
	"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n" \
	"Content-Length: 65\r\nConnection: close\r\n\r\n" CAP_BODY
_Static_assert(sizeof(CAP_BODY) - 1 == 65, "CAP_RESPONSE Content-Length");

void px_log(struct proxy *px, int level, const char *fmt, ...)
{
	if (px->hooks.log == NULL || level > px->hooks.log_level)
		return;
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	px->hooks.log(px->hooks.ud, level, msg);
}

void px_audit(struct proxy *px, const char *json_line)
{
	if (px->hooks.audit != NULL && json_line != NULL)
		px->hooks.audit(px->hooks.ud, json_line);
}

static void maybe_finish_stop(struct proxy *px)
{
	if (!px->stopping || px->open_handles > 0 || px->n_conns > 0)
		return;
	void (*done)(void *) = px->done;
	void *arg = px->done_arg;
	splice_pool_drain(&px->spare_pipes);
	name_cache_clear(&px->names);
	tls_free(px->tls);
	free(px);
	if (done != NULL)
		done(arg);
}

void proxy_conn_freed(struct proxy *px)
{
	px->n_conns--;
	maybe_finish_stop(px);
}

void proxy_handle_closed(struct proxy *px)
{
	px->open_handles--;
	maybe_finish_stop(px);
}

/* libuv writes to sockets with write(2): a peer that resets while we write
 * raises SIGPIPE, which kills the process unless it is ignored. Ignoring it
 * is the embedding program's decision (children inherit SIG_IGN across
 * exec), so only warn here. */
static void warn_if_sigpipe_default(struct proxy *px)
{
	struct sigaction sa;
	if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
		px_log(px, PROXY_LOG_WARN,
		       "proxy: SIGPIPE has its default action; a client reset during a write "
		       "would kill the process (ignore SIGPIPE in the supervisor)");
}

static int open_reserve_fd(void)
{
	return open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static void on_listen_readable(uv_poll_t *h, int status, int events);

static void on_backoff_done(uv_timer_t *t)
{
	struct proxy *px = t->data;
	if (px->stopping)
		return;
	int rc = uv_poll_start(&px->poll, UV_READABLE, on_listen_readable);
	if (rc < 0)
		px_log(px, PROXY_LOG_ERROR, "proxy: cannot resume accepting: %s", uv_strerror(rc));
}

/* Stop accepting for a while. exponential: double the pause per consecutive
 * resource error (100 ms .. 5 s); otherwise a fixed minimum pause. */
static void pause_accept(struct proxy *px, bool exponential)
{
	if (exponential && px->backoff_ms > 0)
		px->backoff_ms = px->backoff_ms >= PROXY_ACCEPT_BACKOFF_MAX_MS / 2
					 ? PROXY_ACCEPT_BACKOFF_MAX_MS
					 : px->backoff_ms * 2;
	else if (exponential)
		px->backoff_ms = PROXY_ACCEPT_BACKOFF_MIN_MS;
	unsigned ms = exponential ? px->backoff_ms : PROXY_ACCEPT_BACKOFF_MIN_MS;
	int rc = uv_poll_stop(&px->poll);
	if (rc == 0)
		rc = uv_timer_start(&px->backoff, on_backoff_done, ms, 0);
	if (rc < 0)
		px_log(px, PROXY_LOG_ERROR, "proxy: cannot pause accepting: %s", uv_strerror(rc));
}

/* Out of descriptors: free the reserve, accept the oldest pending connection
 * and close it at once (so it does not sit in the backlog), restore the
 * reserve. */
static void shed_one_pending(struct proxy *px)
{
	if (px->reserve_fd >= 0) {
		close(px->reserve_fd);
		px->reserve_fd = -1;
	}
	int fd = accept4(px->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd >= 0)
		close(fd);
	px->reserve_fd = open_reserve_fd();
	if (px->reserve_fd < 0)
		px_log(px, PROXY_LOG_WARN, "proxy: reserve descriptor not restored: %s",
		       strerror(errno));
}

static void handle_accept_error(struct proxy *px, int err)
{
	switch (err) {
	case EMFILE:
	case ENFILE:
		shed_one_pending(px);
		pause_accept(px, true);
		px_log(px, PROXY_LOG_WARN,
		       "proxy: accept: %s; shed one pending connection, pausing accept for %u ms",
		       strerror(err), px->backoff_ms);
		break;
	case ENOBUFS:
	case ENOMEM:
		pause_accept(px, true);
		px_log(px, PROXY_LOG_WARN, "proxy: accept: %s; pausing accept for %u ms",
		       strerror(err), px->backoff_ms);
		break;
	case EBADF:
	case EINVAL:
	case ENOTSOCK:
		uv_poll_stop(&px->poll);
		px_log(px, PROXY_LOG_ERROR, "proxy: accept: %s; listener stopped", strerror(err));
		break;
	default:
		pause_accept(px, false);
		px_log(px, PROXY_LOG_WARN, "proxy: accept: %s; retrying in %u ms", strerror(err),
		       PROXY_ACCEPT_BACKOFF_MIN_MS);
		break;
	}
}

static void refuse_at_cap(struct proxy *px, int fd)
{
	/* Best effort: one non-blocking send, then close. */
	ssize_t n = send(fd, CAP_RESPONSE, sizeof(CAP_RESPONSE) - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
	(void)n;
	close(fd);
	px->n_capped++;
	if ((px->n_capped & (px->n_capped - 1)) == 0) /* log 1st, 2nd, 4th, 8th ... */
		px_log(px, PROXY_LOG_WARN,
		       "proxy: %u connections open (limit); refused %lu connection(s) so far",
		       PROXY_MAX_CONNECTIONS, px->n_capped);
}

static void on_listen_readable(uv_poll_t *h, int status, int events)
{
	struct proxy *px = h->data;
	if (status < 0) {
		px_log(px, PROXY_LOG_WARN, "proxy: listener poll error: %s", uv_strerror(status));
		pause_accept(px, false);
		return;
	}
	for (int i = 0; i < ACCEPT_BATCH && !px->stopping; i++) {
		struct sockaddr_storage peer;
		socklen_t plen = sizeof(peer);
		int fd = accept4(px->listen_fd, (struct sockaddr *)&peer, &plen,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			handle_accept_error(px, errno);
			return;
		}
		px->backoff_ms = 0;
		if (px->n_conns >= PROXY_MAX_CONNECTIONS) {
			refuse_at_cap(px, fd);
			continue;
		}
		px->n_conns++;
		conn_accepted(px, fd, &peer);
	}
}

int proxy_listener_open(const char *ip, uint16_t port, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t slen;
	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	if (ip == NULL)
		ip = "";
	if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		slen = sizeof(*s4);
	} else if (inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		slen = sizeof(*s6);
	} else {
		snprintf(err, errlen, "proxy: listen address '%s' is not an IP address", ip);
		return -1;
	}
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "proxy: socket: %s", strerror(errno));
		return -1;
	}
	int one = 1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, (struct sockaddr *)&ss, slen) != 0 || listen(fd, PROXY_LISTEN_BACKLOG) != 0) {
		snprintf(err, errlen, "proxy: cannot listen on %s:%u: %s", ip, (unsigned)port,
			 strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* The listener of cfg: a duplicate of the caller's, or a new one. */
static int take_listener(const struct proxy_config *cfg, uint16_t *bound, char *err,
			 size_t errlen)
{
	int fd;
	if (cfg->listen_fd != NULL) {
		int listening = 0;
		socklen_t ol = sizeof(listening);
		if (getsockopt(*cfg->listen_fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &ol) != 0 ||
		    !listening) {
			snprintf(err, errlen, "proxy: the listener given is not a listening socket");
			return -1;
		}
		fd = fcntl(*cfg->listen_fd, F_DUPFD_CLOEXEC, 3);
		if (fd < 0) {
			snprintf(err, errlen, "proxy: duplicate listener: %s", strerror(errno));
			return -1;
		}
	} else {
		fd = proxy_listener_open(cfg->listen_ip, cfg->listen_port, err, errlen);
		if (fd < 0)
			return -1;
	}
	struct sockaddr_storage ss;
	socklen_t slen = sizeof(ss);
	memset(&ss, 0, sizeof(ss));
	if (getsockname(fd, (struct sockaddr *)&ss, &slen) != 0) {
		snprintf(err, errlen, "proxy: listener address: %s", strerror(errno));
		close(fd);
		return -1;
	}
	if (ss.ss_family != AF_INET && ss.ss_family != AF_INET6) {
		snprintf(err, errlen, "proxy: the listener is not an IPv4 or IPv6 socket");
		close(fd);
		return -1;
	}
	*bound = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
					       : ((struct sockaddr_in6 *)&ss)->sin6_port);
	return fd;
}

static void copy_reserved_config(struct proxy *px, const struct proxy_config *cfg)
{
	const char *tool = cfg->tool_host && cfg->tool_host[0] ? cfg->tool_host
							      : PROXY_TOOL_HOST_DEFAULT;
	snprintf(px->tool_host, sizeof(px->tool_host), "%s", tool);
	for (char *p = px->tool_host; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	if (cfg->tool_broker != NULL)
		px->broker = *cfg->tool_broker;
	snprintf(px->sandbox_id, sizeof(px->sandbox_id), "%s",
		 cfg->sandbox_id && cfg->sandbox_id[0] ? cfg->sandbox_id : "unknown");
	struct in_addr a;
	if (cfg->listen_ip != NULL && inet_pton(AF_INET, cfg->listen_ip, &a) == 1 &&
	    a.s_addr != htonl(INADDR_ANY)) {
		memcpy(px->listen_v4, &a, 4);
		px->has_listen_v4 = true;
	}
}

struct proxy *proxy_start(uv_loop_t *loop, const struct proxy_config *cfg,
			  const struct policy *policy, char *err, size_t errlen)
{
	struct proxy *px = calloc(1, sizeof(*px));
	if (px == NULL) {
		snprintf(err, errlen, "proxy: out of memory");
		return NULL;
	}
	px->loop = loop;
	px->hooks = cfg->hooks;
	px->test_allow_loopback_upstream = cfg->test_allow_loopback_upstream;
	px->policy = policy;
	px->creds = cfg->creds;
	px->upstream = cfg->upstream;
	copy_reserved_config(px, cfg);
	px->tls = tls_create(cfg->ca, cfg->upstream_ca_files, cfg->n_upstream_ca_files, err, errlen);
	if (px->tls == NULL && err[0] != '\0') {
		free(px);
		return NULL;
	}
	px->reserve_fd = open_reserve_fd();
	if (px->reserve_fd < 0) {
		snprintf(err, errlen, "proxy: cannot open reserve descriptor /dev/null: %s",
			 strerror(errno));
		tls_free(px->tls);
		free(px);
		return NULL;
	}
	px->listen_fd = take_listener(cfg, &px->port, err, errlen);
	if (px->listen_fd < 0) {
		close(px->reserve_fd);
		tls_free(px->tls);
		free(px);
		return NULL;
	}
	int rc = uv_poll_init(loop, &px->poll, px->listen_fd);
	if (rc == 0) {
		px->poll.data = px;
		px->poll_inited = true;
		px->open_handles++;
		rc = uv_timer_init(loop, &px->backoff);
		if (rc == 0) {
			px->backoff.data = px;
			px->backoff_inited = true;
			px->open_handles++;
			rc = uv_poll_start(&px->poll, UV_READABLE, on_listen_readable);
		}
	}
	if (rc < 0) {
		/* Handles that were initialised must be closed through the loop;
		 * stopping frees px once their close callbacks ran. */
		snprintf(err, errlen, "proxy: libuv: %s", uv_strerror(rc));
		proxy_stop(px, NULL, NULL);
		return NULL;
	}
	if (cfg->capture != NULL) {
		px->open_handles++; /* the capture, until proxy_capture_stopped() */
		px->capture = capture_start(px, cfg->capture, cfg->local_hostname, err, errlen);
		if (px->capture == NULL) {
			proxy_stop(px, NULL, NULL);
			return NULL;
		}
	}
	px_log(px, PROXY_LOG_INFO, "proxy: listening on %s:%u", cfg->listen_ip, (unsigned)px->port);
	warn_if_sigpipe_default(px);
	return px;
}

uint16_t proxy_listen_port(const struct proxy *px)
{
	return px->port;
}

void proxy_set_policy(struct proxy *px, const struct policy *policy)
{
	px->policy = policy;
	px->policy_gen++;
	upool_drop_all(px); /* made under the old policy's decisions */
	/* Re-judge every established tunnel now: the old policy is freed as
	 * soon as we return, and no connection keeps a pointer into it. */
	for (struct conn *c = px->conns; c != NULL;) {
		struct conn *next = conn_next(c);
		conn_policy_changed(c);
		c = next;
	}
}

void proxy_capture_stopped(struct proxy *px)
{
	px->open_handles--;
	maybe_finish_stop(px);
}

static void on_listener_handle_closed(uv_handle_t *h)
{
	struct proxy *px = h->data;
	px->open_handles--;
	maybe_finish_stop(px);
}

void proxy_stop(struct proxy *px, void (*done)(void *arg), void *arg)
{
	if (px->stopping)
		return;
	px->stopping = true;
	px->done = done;
	px->done_arg = arg;
	for (struct conn *c = px->conns; c != NULL;) {
		struct conn *next = conn_next(c);
		conn_abort(c);
		c = next;
	}
	upool_drop_all(px);
	if (px->capture != NULL) {
		capture_stop(px->capture);
		px->capture = NULL;
	}
	if (px->reserve_fd >= 0)
		close(px->reserve_fd);
	px->reserve_fd = -1;
	if (px->poll_inited)
		uv_close((uv_handle_t *)&px->poll, on_listener_handle_closed);
	if (px->backoff_inited)
		uv_close((uv_handle_t *)&px->backoff, on_listener_handle_closed);
	if (px->listen_fd >= 0)
		close(px->listen_fd); /* uv_close stopped polling it synchronously */
	px->listen_fd = -1;
	maybe_finish_stop(px);
}
