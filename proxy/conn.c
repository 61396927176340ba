/* conn.c - one client connection: head, decision, SSRF, dial, relay.
 *
 * Phases: HEAD (read the request head, 408/431/400) -> RESOLVE (async DNS)
 * -> CONNECT (dial checked addresses in order) -> RELAY (bytes both ways).
 * Any refusal goes to ERROR_WRITE (write the response, shut down our side)
 * -> LINGER (drain the client briefly so the kernel does not reset the
 * response away) -> closed.
 *
 * Ownership: the conn owns three handles (client, timer, upstream once
 * dialed) and at most one getaddrinfo request. It is freed when the last
 * handle close callback has run and no resolution is pending.
 */
#include "proxy/proxy_int.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "policy/policy.h"
#include "proxy/audit.h"
#include "proxy/canon.h"
#include "proxy/chunked.h"
#include "proxy/cred.h"
#include "proxy/forward.h"
#include "proxy/http_head.h"
#include "proxy/http_relay.h"
#include "proxy/reserved.h"
#include "proxy/response.h"
#include "proxy/ssrf.h"
#include "proxy/target.h"
#include "proxy/upool.h"
#include "proxy/upstream.h"

#define UNLIMITED UINT64_MAX
/* Stop reading a source while its destination has more than this queued, so
 * queued bytes plus one read never exceed PROXY_RELAY_BUF_BYTES. */
#define RELAY_HIGH_WATER (PROXY_RELAY_BUF_BYTES - PROXY_RELAY_READ_BYTES)
_Static_assert(PROXY_RELAY_BUF_BYTES >= 2 * PROXY_RELAY_READ_BYTES, "relay buffer sizes");

enum phase { PH_HEAD, PH_RESOLVE, PH_CONNECT, PH_RELAY, PH_ERROR_WRITE, PH_LINGER, PH_CLOSED };

struct relay_dir {
	uv_stream_t *src, *dst;
	uv_shutdown_t shutdown_req;
	uint64_t remaining;  /* bytes still allowed through; UNLIMITED for tunnels */
	struct chunked_parser *chunked; /* forward chunked body: framing decides */
	bool paused;         /* reading stopped for backpressure */
	bool done;           /* nothing more will flow this way */
};

struct conn {
	struct proxy *px;
	struct conn *prev, *next;
	enum phase phase;
	bool closing;
	unsigned open_handles;
	bool client_open, timer_open, upstream_open;
	bool gai_pending;
	bool retry_pending;          /* upstream closing after a failed dial */
	uv_tcp_t client;
	union {
		uv_tcp_t upstream;          /* every dial but ... */
		uv_pipe_t upstream_pipe;    /* ... a tool broker on a Unix socket */
	};
	uv_timer_t timer;
	uv_getaddrinfo_t gai;
	uv_connect_t connect_req;
	uv_shutdown_t client_shutdown; /* error path */
	char src_ip[INET6_ADDRSTRLEN];
	uint16_t src_port;

	char *head;                  /* PROXY_MAX_HEAD_BYTES: the head phase only */
	size_t head_fill;

	bool is_connect;
	bool transparent;            /* captured flow: conn_accepted_transparent() */
	bool transparent_http;       /* ... that is plain HTTP (refusals get a response) */
	char method[POLICY_L7_MAX_METHOD_BYTES + 1]; /* longer ones are refused */
	bool intercept;              /* tunnel handed to the HTTP relay (http_relay.c) */
	bool l7;                     /* ... whose endpoint has L7 rules */
	bool allow_encoded_slash;
	bool host_alias;             /* dialing PROXY_HOST_ALIAS as 127.0.0.1 */
	bool tool;                   /* the tool route: dialing the broker */
	bool broker_unix;            /* ... over a Unix socket (upstream_pipe) */
	char *tool_identity;         /* identity header lines for the broker */
	char *caller_binary;         /* tool route: the calling process, if resolved */
	long caller_pid;
	struct hr_session *hr;       /* the relay session, once started */
	SSL *kept_ssl;               /* upstream taken from upool.c, until the relay */
	char *canon_target;          /* forward + L7: canonical path?query sent upstream */
	struct proxy_target target;  /* target.path points into head[] (until the relay) */
	char hostport[TARGET_MAX_HOST + 16];

	char *rule_name;             /* snapshot of the decision: the policy */
	struct policy_cidr *allowed; /* may be swapped and freed meanwhile */
	size_t n_allowed;
	unsigned long policy_gen;    /* px->policy_gen the decision was made under */

	struct sockaddr_storage *addrs; /* PROXY_MAX_DIAL_ADDRS; once relaying: the dialed one */
	size_t n_addrs, next_addr;
	int last_dial_err;
	bool via_upstream;           /* chained: dialing the upstream (corporate) proxy */
	size_t up_next;              /* ... its address being tried */
	struct upstream_reply *up_reply; /* ... its reply to our CONNECT, while read */

	char *upstream_head;         /* forward: rewritten origin-form head */
	size_t upstream_head_len;
	size_t early_off, early_len; /* bytes after the head to send upstream */
	uint64_t body_remaining;     /* forward: body bytes still to read */
	bool body_chunked;
	struct chunked_parser chunk;

	struct relay_dir c2u, u2c;
	struct splice_relay *splice; /* raw tunnel relayed by splice.c (an open handle) */
};

struct chunk {
	uv_write_t req;
	struct conn *c;
	struct relay_dir *dir;                  /* relay data; NULL for control writes */
	void (*after)(struct conn *c, int status);
	char data[];
};

static void conn_close(struct conn *c);
static void respond(struct conn *c, char *resp, size_t len);
static void respond_static(struct conn *c, const char *resp);

struct conn *conn_next(struct conn *c)
{
	return c->next;
}

/* ---- lifetime ---- */

static void conn_maybe_free(struct conn *c)
{
	if (c->open_handles > 0 || c->gai_pending)
		return;
	struct proxy *px = c->px;
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		px->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	free(c->rule_name);
	free(c->allowed);
	upstream_wipe_free(c->upstream_head, c->upstream_head_len); /* may hold credentials */
	free(c->up_reply);
	hr_free(c->hr);
	SSL_free(c->kept_ssl);
	free(c->canon_target);
	free(c->tool_identity);
	free(c->caller_binary);
	free(c->head);
	free(c->addrs);
	free(c);
	proxy_conn_freed(px);
}

static void on_handle_closed(uv_handle_t *h)
{
	struct conn *c = h->data;
	c->open_handles--;
	conn_maybe_free(c);
}

static void dial_next(struct conn *c);

static void on_upstream_closed(uv_handle_t *h)
{
	struct conn *c = h->data;
	c->open_handles--;
	if (c->retry_pending && !c->closing && c->phase == PH_CONNECT) {
		c->retry_pending = false;
		dial_next(c);
		return;
	}
	c->retry_pending = false;
	conn_maybe_free(c);
}

static void close_upstream(struct conn *c)
{
	if (!c->upstream_open)
		return;
	c->upstream_open = false;
	uv_close((uv_handle_t *)&c->upstream, on_upstream_closed);
}

static void conn_close(struct conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	c->phase = PH_CLOSED;
	hr_detach(c->hr, c); /* give the handles' data pointers back first */
	splice_close(c->splice); /* its polls leave the sockets before the handles close */
	if (c->gai_pending)
		uv_cancel((uv_req_t *)&c->gai); /* fails if already running; cb still comes */
	if (c->client_open) {
		c->client_open = false;
		uv_close((uv_handle_t *)&c->client, on_handle_closed);
	}
	if (c->timer_open) {
		c->timer_open = false;
		uv_close((uv_handle_t *)&c->timer, on_handle_closed);
	}
	close_upstream(c);
	conn_maybe_free(c);
}

void conn_abort(struct conn *c)
{
	conn_close(c);
}

/* ---- writes ---- */

static struct chunk *chunk_new(struct conn *c, size_t cap)
{
	struct chunk *ch = malloc(sizeof(*ch) + cap);
	if (ch == NULL)
		return NULL;
	ch->c = c;
	ch->dir = NULL;
	ch->after = NULL;
	ch->req.data = ch;
	return ch;
}

static bool below_high_water(uv_stream_t *s)
{
	return uv_stream_get_write_queue_size(s) <= RELAY_HIGH_WATER;
}

static void on_relay_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);
static void relay_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);

static void on_write(uv_write_t *req, int status)
{
	struct chunk *ch = req->data;
	struct conn *c = ch->c;
	struct relay_dir *d = ch->dir;
	void (*after)(struct conn *, int) = ch->after;
	free(ch);
	if (after != NULL) {
		after(c, status);
		return;
	}
	if (c->closing)
		return;
	if (status < 0) {
		px_log(c->px, PROXY_LOG_DEBUG, "proxy: %s: write failed: %s", c->hostport,
		       uv_strerror(status));
		conn_close(c);
		return;
	}
	if (d != NULL && d->paused && !d->done && below_high_water(d->dst)) {
		d->paused = false;
		int rc = uv_read_start(d->src, relay_alloc, on_relay_read);
		if (rc < 0)
			conn_close(c);
	}
}

/* Queue ch->data[0..len) on dst; ch is owned by the write from here on. */
static int write_chunk(struct conn *c, uv_stream_t *dst, struct chunk *ch, size_t len)
{
	uv_buf_t b = uv_buf_init(ch->data, (unsigned)len);
	int rc = uv_write(&ch->req, dst, &b, 1, on_write);
	if (rc < 0)
		free(ch);
	return rc;
}

static int write_copy(struct conn *c, uv_stream_t *dst, struct relay_dir *d,
		      void (*after)(struct conn *, int), const char *data, size_t len)
{
	struct chunk *ch = chunk_new(c, len);
	if (ch == NULL)
		return UV_ENOMEM;
	ch->dir = d;
	ch->after = after;
	memcpy(ch->data, data, len);
	return write_chunk(c, dst, ch, len);
}

/* ---- error responses ---- */

static void linger_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct conn *c = h->data;
	if (c->head == NULL)
		c->head = malloc(PROXY_MAX_HEAD_BYTES); /* NULL: the read cb gets UV_ENOBUFS */
	/* the head is no longer needed: a drain buffer */
	*buf = uv_buf_init(c->head, c->head != NULL ? PROXY_MAX_HEAD_BYTES : 0);
}

static void on_linger_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	if (n < 0)
		conn_close(s->data);
}

static void on_linger_timeout(uv_timer_t *t)
{
	conn_close(t->data);
}

static void on_client_shutdown(uv_shutdown_t *req, int status)
{
	struct conn *c = req->data;
	if (c->closing)
		return;
	if (status < 0 || !c->timer_open) {
		conn_close(c);
		return;
	}
	c->phase = PH_LINGER;
	if (uv_timer_start(&c->timer, on_linger_timeout, PROXY_LINGER_MS, 0) < 0 ||
	    uv_read_start((uv_stream_t *)&c->client, linger_alloc, on_linger_read) < 0)
		conn_close(c);
}

static void after_error_write(struct conn *c, int status)
{
	if (c->closing)
		return;
	c->client_shutdown.data = c;
	if (status < 0 ||
	    uv_shutdown(&c->client_shutdown, (uv_stream_t *)&c->client, on_client_shutdown) < 0)
		conn_close(c);
}

/* Close a captured flow with a TCP reset (SO_LINGER 0). */
static void conn_reset_client(struct conn *c)
{
	uv_os_fd_t fd;
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	if (c->client_open && uv_fileno((uv_handle_t *)&c->client, &fd) == 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	conn_close(c);
}

/* Send a proxy-generated response (resp is malloc'd and consumed; NULL
 * means allocation failed: just close) and then close. */
static void respond(struct conn *c, char *resp, size_t len)
{
	if (c->closing || c->phase == PH_ERROR_WRITE || c->phase == PH_LINGER) {
		free(resp);
		return;
	}
	if (c->transparent && !c->transparent_http) {
		/* TLS / raw TCP: no place for an HTTP answer; reset the flow */
		free(resp);
		conn_reset_client(c);
		return;
	}
	c->phase = PH_ERROR_WRITE;
	if (c->timer_open)
		uv_timer_stop(&c->timer);
	uv_read_stop((uv_stream_t *)&c->client);
	close_upstream(c);
	if (c->gai_pending)
		uv_cancel((uv_req_t *)&c->gai);
	if (resp == NULL) {
		conn_close(c);
		return;
	}
	int rc = write_copy(c, (uv_stream_t *)&c->client, NULL, after_error_write, resp, len);
	free(resp);
	if (rc < 0)
		conn_close(c);
}

static void respond_static(struct conn *c, const char *resp)
{
	respond(c, strdup(resp), strlen(resp));
}

static void respond_error(struct conn *c, int status, const char *error, const char *detail)
{
	size_t len = 0;
	char *resp = response_json_error(status, error, detail, &len);
	respond(c, resp, len);
}

/* ---- audit ---- */

static void audit_call(struct conn *c, bool allow, const char *rule_type, const char *reason,
		       const char *dst_ip, const char *url_path)
{
	char msg[512];
	snprintf(msg, sizeof(msg), "%s %s %s%s%s", c->method, allow ? "allowed" : "denied",
		 c->hostport, c->via_upstream ? " via upstream proxy " : "",
		 c->via_upstream ? proxy_upstream_name(c->px->upstream) : "");
	struct audit_event e = {
		.allow = allow,
		.method = c->method,
		.host = c->target.host,
		.port = c->target.port,
		.dst_ip = dst_ip,
		.rule_name = c->rule_name,
		.rule_type = rule_type,
		.reason = reason,
		.message = msg,
		.src_ip = c->src_ip[0] ? c->src_ip : NULL,
		.src_port = c->src_port,
		.time_ms = audit_now_ms(),
		.path = c->transparent ? "transparent" : NULL,
		.url_path = url_path,
		.binary = c->caller_binary,
		.pid = c->caller_pid,
	};
	char *line = audit_event_json(&e);
	if (line == NULL) {
		px_log(c->px, PROXY_LOG_ERROR, "proxy: audit event for %s could not be built",
		       c->hostport);
		return;
	}
	px_audit(c->px, line);
	free(line);
}

static void audit(struct conn *c, bool allow, const char *rule_type, const char *reason,
		  const char *dst_ip)
{
	audit_call(c, allow, rule_type, reason, dst_ip, NULL);
}

static void addr_text(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	if (ss->ss_family == AF_UNIX) {
		snprintf(buf, len, "unix");
		return;
	}
	const void *a = ss->ss_family == AF_INET
				? (const void *)&((const struct sockaddr_in *)ss)->sin_addr
				: (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr;
	if (inet_ntop(ss->ss_family, a, buf, (socklen_t)len) == NULL)
		snprintf(buf, len, "?");
}

/* ---- policy reload ---- */

static bool tls_skip_applies(const struct conn *c, const struct policy_endpoint *ep);

/* Is the established destination (host:port as decided, and the address
 * actually dialed) still allowed by the policy in force now? Nothing of the
 * policy is kept: the decision is made afresh and only copied facts are
 * compared. On false, `why` says why. */
static bool destination_still_allowed(struct conn *c, char *why, size_t whylen)
{
	const struct policy *pol = c->px->policy;
	struct policy_decision d;
	memset(&d, 0, sizeof(d));
	if (pol == NULL) {
		snprintf(why, whylen, "policy reloaded: no policy loaded");
		return false;
	}
	policy_decide(pol, c->target.host, c->target.port, NULL, false, &d);
	if (!d.allowed) {
		snprintf(why, whylen, "policy reloaded: %s no longer allowed", c->hostport);
		return false;
	}
	const struct policy_endpoint *nep = d.endpoint;
	if (nep != NULL && !tls_skip_applies(c, nep) && policy_endpoint_needs_l7(nep) && !c->l7) {
		/* Bytes nobody inspects cannot honour the L7 rules it now has. */
		snprintf(why, whylen, "policy reloaded: %s now has L7 rules; no longer allowed "
			 "uninspected", c->hostport);
		return false;
	}
	if (c->host_alias && !reserved_alias_declared(pol, c->target.port)) {
		snprintf(why, whylen, "policy reloaded: %s no longer declared", c->hostport);
		return false;
	}
	if (c->n_addrs > 0 && c->next_addr < c->n_addrs && !c->host_alias && !c->tool) {
		/* The new endpoint's allowed_ips must still admit the peer. */
		char swhy[384];
		struct ssrf_options opt = { .allow_loopback = c->px->test_allow_loopback_upstream };
		const struct policy_endpoint *ep = d.endpoint;
		if (!ssrf_check_address((const struct sockaddr *)&c->addrs[c->next_addr],
					c->target.port, ep ? ep->allowed_ips : NULL,
					ep ? ep->n_allowed_ips : 0, &opt, swhy, sizeof(swhy))) {
			snprintf(why, whylen, "policy reloaded: %s", swhy);
			return false;
		}
	}
	c->policy_gen = c->px->policy_gen;
	return true;
}

/* Re-judge after a reload; false: denied (audited and logged; the caller
 * ends the flow). */
static bool recheck_after_reload(struct conn *c)
{
	if (c->policy_gen == c->px->policy_gen)
		return true;
	char why[512];
	if (destination_still_allowed(c, why, sizeof(why)))
		return true;
	px_log(c->px, PROXY_LOG_INFO, "proxy: %s %s: %s", c->method, c->hostport, why);
	audit(c, false, "opa", why, NULL);
	return false;
}

static bool recheck_from_relay(void *owner)
{
	return recheck_after_reload(owner);
}

void conn_policy_changed(struct conn *c)
{
	if (c->closing || c->phase != PH_RELAY || !c->is_connect)
		return; /* earlier phases re-judge when the dial completes */
	if (c->hr != NULL && !hr_is_raw(c->hr))
		return; /* HTTP: ends before its next request; sniff/TLS: at the switch to raw */
	if (!recheck_after_reload(c))
		conn_reset_client(c);
}

/* ---- relay ---- */

static void relay_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct chunk *ch = chunk_new(h->data, PROXY_RELAY_READ_BYTES);
	if (ch == NULL) {
		*buf = uv_buf_init(NULL, 0); /* read cb gets UV_ENOBUFS */
		return;
	}
	*buf = uv_buf_init(ch->data, PROXY_RELAY_READ_BYTES);
}

static struct chunk *chunk_of(const uv_buf_t *buf)
{
	if (buf->base == NULL)
		return NULL;
	return (struct chunk *)(void *)(buf->base - offsetof(struct chunk, data));
}

static void relay_check_finished(struct conn *c)
{
	/* A tunnel ends when both directions are done (half-close kept); a
	 * forwarded request ends with the upstream's response. */
	if (c->u2c.done && (c->c2u.done || !c->is_connect))
		conn_close(c);
}

static void on_dir_shutdown(uv_shutdown_t *req, int status)
{
	struct relay_dir *d = req->data;
	struct conn *c = d->dst->data;
	if (c->closing)
		return;
	if (status < 0) {
		conn_close(c);
		return;
	}
	d->done = true;
	relay_check_finished(c);
}

static void relay_eof(struct conn *c, struct relay_dir *d)
{
	uv_read_stop(d->src);
	d->paused = false;
	d->shutdown_req.data = d;
	if (uv_shutdown(&d->shutdown_req, d->dst, on_dir_shutdown) < 0)
		conn_close(c);
}

static void on_relay_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct conn *c = s->data;
	struct relay_dir *d = s == (uv_stream_t *)&c->client ? &c->c2u : &c->u2c;
	struct chunk *ch = chunk_of(buf);
	if (n <= 0 || c->closing) {
		free(ch);
		if (c->closing || n == 0)
			return;
		if (n == UV_EOF) {
			relay_eof(c, d);
		} else {
			px_log(c->px, PROXY_LOG_DEBUG, "proxy: %s: read: %s", c->hostport,
			       uv_strerror((int)n));
			conn_close(c);
		}
		return;
	}
	/* Forward only this request's body: never a pipelined next request. */
	size_t take = (size_t)n;
	if (d->chunked != NULL) {
		ssize_t r = chunked_feed(d->chunked, ch->data, take);
		if (r < 0) {
			px_log(c->px, PROXY_LOG_INFO, "proxy: %s %s: invalid chunked body: %s",
			       c->method, c->hostport, d->chunked->error);
			free(ch);
			conn_close(c);
			return;
		}
		take = (size_t)r;
		if (chunked_done(d->chunked))
			d->remaining = 0;
	} else if (d->remaining != UNLIMITED) {
		if (take > d->remaining)
			take = (size_t)d->remaining;
		d->remaining -= take;
	}
	ch->dir = d;
	if (take == 0)
		free(ch);
	else if (write_chunk(c, d->dst, ch, take) < 0) {
		conn_close(c);
		return;
	}
	if (d->remaining == 0) {
		uv_read_stop(d->src);
		d->done = true;
		relay_check_finished(c);
	} else if (!below_high_water(d->dst)) {
		uv_read_stop(d->src);
		d->paused = true;
	}
}

static void close_from_relay(void *owner)
{
	conn_close(owner);
}

/* An intercepted tunnel's own upstream TLS connection (not a chained
 * upstream proxy's, not the tool broker's) may come from upool.c and go
 * back there. */
static bool upstream_keepable(const struct conn *c)
{
	return c->intercept && !c->via_upstream && !c->tool;
}

/* An intercepted tunnel: the 200 is queued, then http_relay.c drives it. */
static void start_intercept(struct conn *c)
{
	c->phase = PH_RELAY;
	uv_stream_t *cl = (uv_stream_t *)&c->client;
	uv_read_stop(cl);
	/* A captured flow never saw a CONNECT: no 200 line for it. */
	if (!c->transparent && write_copy(c, cl, NULL, NULL, RESPONSE_200_CONNECT,
					  sizeof(RESPONSE_200_CONNECT) - 1) < 0) {
		conn_close(c);
		return;
	}
	/* Long-lived tunnels have no idle timer: let TCP find dead peers. */
	if (uv_tcp_keepalive(&c->client, 1, PROXY_TCP_KEEPALIVE_S) < 0 ||
	    (!c->broker_unix && uv_tcp_keepalive(&c->upstream, 1, PROXY_TCP_KEEPALIVE_S) < 0))
		px_log(c->px, PROXY_LOG_DEBUG, "proxy: %s: TCP keepalive not set", c->hostport);
	struct hr_params p = {
		.px = c->px,
		.owner = c,
		.close_owner = close_from_relay,
		.client = &c->client,
		.upstream = (uv_stream_t *)&c->upstream,
		.timer = &c->timer,
		.host = c->target.host,
		.port = c->target.port,
		.rule_name = c->rule_name,
		.src_ip = c->src_ip,
		.src_port = c->src_port,
		.early = c->early_len > 0 ? c->head + c->early_off : "", /* captured: no head */
		.early_len = c->early_len,
		.l7 = c->l7,
		.allow_encoded_slash = c->allow_encoded_slash,
		.policy_gen = c->policy_gen,
		.recheck_owner = recheck_from_relay,
		.tool = c->tool,
		.tool_identity = c->tool_identity,
		.upstream_ssl = c->kept_ssl,
		.keep_peer = upstream_keepable(c) && c->addrs != NULL && c->next_addr < c->n_addrs
			     ? (const struct sockaddr *)&c->addrs[c->next_addr]
			     : NULL,
	};
	c->kept_ssl = NULL; /* hr_start() owns it, even when it fails */
	c->hr = hr_start(&p);
	if (c->hr == NULL) {
		conn_close(c);
		return;
	}
	hr_run(c->hr);
}

/* ---- raw tunnels with splice(2): proxy/splice.h ---- */

static void splice_finished(void *owner)
{
	conn_close(owner);
}

static void splice_failed(void *owner, const char *what, int err)
{
	struct conn *c = owner;
	/* No pipe is a resource problem of ours; the rest is the peers' doing. */
	int level = strcmp(what, "pipe") == 0 ? PROXY_LOG_WARN : PROXY_LOG_DEBUG;
	px_log(c->px, level, "proxy: %s: relay %s: %s", c->hostport, what, uv_strerror(err));
	conn_close(c);
}

static void splice_closed(void *owner)
{
	struct conn *c = owner;
	c->splice = NULL;
	c->open_handles--;
	conn_maybe_free(c);
}

static const struct splice_hooks conn_splice_hooks = {
	.finished = splice_finished,
	.failed = splice_failed,
	.closed = splice_closed,
};

/* Writes what the kernel takes now of data[*done..len), never queueing;
 * *done advances. An error leaves the rest to the buffered relay, whose
 * write then reports it. */
static void write_now(uv_stream_t *s, const char *data, size_t len, size_t *done)
{
	if (*done >= len)
		return;
	uv_buf_t b = uv_buf_init((char *)data + *done, (unsigned)(len - *done));
	int n = uv_try_write(s, &b, 1);
	if (n > 0)
		*done += (size_t)n;
}

/* A raw tunnel (CONNECT or captured flow) between two TCP sockets is
 * spliced when the 200 line and the early bytes went out whole at once:
 * the handles must stay idle while splice.c polls their sockets. Bytes a
 * chained proxy sent with its reply are still to be written (by
 * upstream_tunnel_open): those tunnels take the buffered relay. False: not
 * spliced; *sent200 and *sent_early say what was written already. */
static bool try_splice(struct conn *c, size_t *sent200, size_t *sent_early)
{
	if (!c->is_connect || c->broker_unix ||
	    (c->up_reply != NULL && c->up_reply->fill > c->up_reply->head_len))
		return false;
	uv_stream_t *cl = (uv_stream_t *)&c->client, *up = (uv_stream_t *)&c->upstream;
	uv_os_fd_t cfd, ufd;
	if (uv_fileno((uv_handle_t *)cl, &cfd) < 0 || uv_fileno((uv_handle_t *)up, &ufd) < 0 ||
	    uv_stream_get_write_queue_size(cl) > 0 || uv_stream_get_write_queue_size(up) > 0)
		return false;
	size_t n200 = c->transparent ? 0 : sizeof(RESPONSE_200_CONNECT) - 1;
	write_now(cl, RESPONSE_200_CONNECT, n200, sent200);
	if (c->early_len > 0)
		write_now(up, c->head + c->early_off, c->early_len, sent_early);
	if (*sent200 < n200 || *sent_early < c->early_len)
		return false;
	c->splice = splice_start(c->px, cfd, ufd, &conn_splice_hooks, c);
	if (c->splice == NULL)
		return false;
	c->open_handles++;
	return true;
}

/* Relaying: the head buffer (its early bytes are copied or sent by now)
 * and the other candidate addresses are done with. An idle tunnel keeps
 * only what a reload re-check needs: the dialed address. */
static void release_dial_state(struct conn *c)
{
	free(c->head);
	c->head = NULL;
	c->head_fill = c->early_off = c->early_len = 0;
	c->target.path = NULL;
	c->target.path_len = 0;
	if (c->addrs == NULL || c->next_addr >= c->n_addrs)
		return;
	if (c->next_addr > 0)
		c->addrs[0] = c->addrs[c->next_addr];
	c->next_addr = 0;
	c->n_addrs = 1;
	struct sockaddr_storage *one = realloc(c->addrs, sizeof(*one));
	if (one != NULL)
		c->addrs = one;
}

static void start_raw_relay(struct conn *c);

static void start_relay(struct conn *c)
{
	if (c->is_connect && c->intercept)
		start_intercept(c);
	else
		start_raw_relay(c);
	release_dial_state(c); /* c is alive: a close completes from the loop */
}

/* A raw tunnel (CONNECT, captured flow) or a forwarded http:// request. */
static void start_raw_relay(struct conn *c)
{
	c->phase = PH_RELAY;
	size_t sent200 = 0, sent_early = 0;
	if (try_splice(c, &sent200, &sent_early))
		return;
	uv_stream_t *cl = (uv_stream_t *)&c->client, *up = (uv_stream_t *)&c->upstream;
	c->c2u = (struct relay_dir){ .src = cl, .dst = up, .remaining = UNLIMITED };
	c->u2c = (struct relay_dir){ .src = up, .dst = cl, .remaining = UNLIMITED };
	int rc = 0;
	if (c->transparent) {
		/* nothing to send first: the peeked bytes are still in the socket */
	} else if (c->is_connect) {
		if (sent200 < sizeof(RESPONSE_200_CONNECT) - 1)
			rc = write_copy(c, cl, NULL, NULL, &RESPONSE_200_CONNECT[sent200],
					sizeof(RESPONSE_200_CONNECT) - 1 - sent200);
	} else {
		rc = write_copy(c, up, &c->c2u, NULL, c->upstream_head, c->upstream_head_len);
		c->c2u.remaining = c->body_remaining;
		if (c->body_chunked)
			c->c2u.chunked = &c->chunk;
	}
	if (rc == 0 && c->early_len > sent_early)
		rc = write_copy(c, up, &c->c2u, NULL, c->head + c->early_off + sent_early,
				c->early_len - sent_early);
	if (rc == 0 && c->c2u.remaining > 0)
		rc = uv_read_start(cl, relay_alloc, on_relay_read);
	else
		c->c2u.done = true;
	if (rc == 0)
		rc = uv_read_start(up, relay_alloc, on_relay_read);
	if (rc < 0) {
		px_log(c->px, PROXY_LOG_WARN, "proxy: %s: relay start failed: %s", c->hostport,
		       uv_strerror(rc));
		conn_close(c);
	}
}

/* ---- upstream (corporate) proxy: proxy/upstream.h ---- */

static void dial_complete(struct conn *c);

/* What dial_next tries now: the upstream proxy's addresses when chained,
 * else the checked destination addresses. NULL when none is left. */
static const struct sockaddr *dial_address(const struct conn *c)
{
	if (c->via_upstream) {
		const struct proxy_upstream *u = c->px->upstream;
		return c->up_next < u->n_addrs ? (const struct sockaddr *)&u->addrs[c->up_next]
					       : NULL;
	}
	return c->next_addr < c->n_addrs ? (const struct sockaddr *)&c->addrs[c->next_addr]
					 : NULL;
}

static void dial_advance(struct conn *c)
{
	if (c->via_upstream)
		c->up_next++;
	else
		c->next_addr++;
}

static void upstream_fail(struct conn *c, const char *error, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The chain failed: 502 JSON naming the upstream proxy. */
static void upstream_fail(struct conn *c, const char *error, const char *fmt, ...)
{
	char detail[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	px_log(c->px, PROXY_LOG_WARN, "proxy: %s", detail);
	respond_error(c, 502, error, detail);
}

/* A write of bytes that may carry the proxy credentials: wiped once sent. */
struct secret_write {
	uv_write_t req;
	struct conn *c;
	char *data;
	size_t len;
};

static void on_secret_written(uv_write_t *req, int status)
{
	struct secret_write *w = req->data;
	struct conn *c = w->c;
	upstream_wipe_free(w->data, w->len);
	free(w);
	if (status < 0 && !c->closing && c->phase == PH_CONNECT)
		upstream_fail(c, "upstream_proxy_error", "upstream proxy %s: sending CONNECT for "
			      "%s failed: %s", proxy_upstream_name(c->px->upstream), c->hostport,
			      uv_strerror(status));
}

/* Queue data[0..len) (owned from here on) on dst. */
static int write_secret(struct conn *c, uv_stream_t *dst, char *data, size_t len)
{
	struct secret_write *w = malloc(sizeof(*w));
	if (w == NULL) {
		upstream_wipe_free(data, len);
		return UV_ENOMEM;
	}
	*w = (struct secret_write){ .c = c, .data = data, .len = len };
	w->req.data = w;
	uv_buf_t b = uv_buf_init(data, (unsigned)len);
	int rc = uv_write(&w->req, dst, &b, 1, on_secret_written);
	if (rc < 0) {
		upstream_wipe_free(data, len);
		free(w);
	}
	return rc;
}

static void upstream_reply_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct conn *c = h->data;
	struct upstream_reply *r = c->up_reply;
	*buf = uv_buf_init(r->buf + r->fill, (unsigned)(sizeof(r->buf) - r->fill));
}

/* 2xx: the tunnel is open. Bytes that came with the reply head are the
 * destination's: a raw tunnel passes them on; interception cannot take
 * them (TLS and HTTP clients speak first), so they end the connection. */
static void upstream_tunnel_open(struct conn *c)
{
	struct upstream_reply *r = c->up_reply;
	size_t extra = r->fill - r->head_len;
	if (extra > 0 && c->intercept) {
		upstream_fail(c, "upstream_proxy_error", "upstream proxy %s: %s sent %zu bytes "
			      "before the request", proxy_upstream_name(c->px->upstream),
			      c->hostport, extra);
		return;
	}
	uv_timer_stop(&c->timer);
	dial_complete(c);
	if (extra > 0 && !c->closing && c->phase == PH_RELAY &&
	    write_copy(c, (uv_stream_t *)&c->client, NULL, NULL, r->buf + r->head_len, extra) < 0)
		conn_close(c);
	free(c->up_reply);
	c->up_reply = NULL;
}

static void on_upstream_reply(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct conn *c = s->data;
	if (n == 0 || c->closing || c->phase != PH_CONNECT)
		return;
	const char *name = proxy_upstream_name(c->px->upstream);
	if (n < 0) {
		upstream_fail(c, "upstream_proxy_error", "upstream proxy %s closed the connection "
			      "before answering CONNECT for %s", name, c->hostport);
		return;
	}
	struct upstream_reply *r = c->up_reply;
	r->fill += (size_t)n;
	const char *why = NULL;
	char line[160];
	switch (upstream_reply_parse(r, &why)) {
	case UPSTREAM_REPLY_INCOMPLETE:
		return;
	case UPSTREAM_REPLY_OK:
		uv_read_stop(s);
		upstream_tunnel_open(c);
		return;
	case UPSTREAM_REPLY_REFUSED:
		upstream_reply_status_line(r, line, sizeof(line));
		upstream_fail(c, "upstream_proxy_refused", "upstream proxy %s refused CONNECT for "
			      "%s: %s", name, c->hostport, line);
		return;
	case UPSTREAM_REPLY_TOO_LARGE:
		upstream_fail(c, "upstream_proxy_error", "upstream proxy %s: reply to CONNECT for "
			      "%s is larger than %u bytes", name, c->hostport,
			      PROXY_UPSTREAM_MAX_REPLY_HEAD_BYTES);
		return;
	case UPSTREAM_REPLY_BAD:
		upstream_fail(c, "upstream_proxy_error", "upstream proxy %s: invalid reply to "
			      "CONNECT for %s: %s", name, c->hostport, why);
		return;
	}
}

/* Tunnels (CONNECT and captured flows) ask the upstream proxy for a
 * tunnel to the checked address (or the host with connect_by_hostname). */
static void upstream_send_connect(struct conn *c)
{
	const struct proxy_upstream *u = c->px->upstream;
	char authority[TARGET_MAX_HOST + 16];
	upstream_authority(u, &c->target, &c->addrs[c->next_addr], authority, sizeof(authority));
	size_t len = 0;
	char *req = upstream_connect_request(u, authority, &len);
	c->up_reply = malloc(sizeof(*c->up_reply));
	if (req == NULL || c->up_reply == NULL) {
		upstream_wipe_free(req, len);
		conn_close(c);
		return;
	}
	c->up_reply->fill = 0;
	int rc = write_secret(c, (uv_stream_t *)&c->upstream, req, len);
	if (rc == 0)
		rc = uv_read_start((uv_stream_t *)&c->upstream, upstream_reply_alloc,
				   on_upstream_reply);
	if (rc < 0)
		conn_close(c);
}

/* Forwarded http:// requests go to the upstream proxy in absolute form. */
static bool upstream_absolute_head(struct conn *c)
{
	const struct proxy_upstream *u = c->px->upstream;
	char authority[TARGET_MAX_HOST + 16];
	upstream_authority(u, &c->target, &c->addrs[c->next_addr], authority, sizeof(authority));
	size_t len = 0;
	char *h = forward_absolute_head(c->upstream_head, c->upstream_head_len, authority,
					u->auth_line, u->auth_line_len, &len);
	if (h == NULL)
		return false;
	upstream_wipe_free(c->upstream_head, c->upstream_head_len);
	c->upstream_head = h;
	c->upstream_head_len = len;
	return true;
}

static void upstream_connected(struct conn *c)
{
	if (c->is_connect) {
		upstream_send_connect(c);
		return;
	}
	if (!upstream_absolute_head(c)) {
		conn_close(c);
		return;
	}
	uv_timer_stop(&c->timer);
	dial_complete(c);
}

/* ---- dial ---- */

static void on_connected(uv_connect_t *req, int status)
{
	struct conn *c = req->data;
	if (status == UV_ECANCELED || c->closing || c->phase != PH_CONNECT)
		return;
	if (status < 0) {
		c->last_dial_err = status;
		dial_advance(c);
		c->retry_pending = true;
		close_upstream(c); /* on_upstream_closed dials the next address */
		return;
	}
	if (!c->broker_unix && uv_tcp_nodelay(&c->upstream, 1) < 0)
		px_log(c->px, PROXY_LOG_DEBUG, "proxy: %s: TCP_NODELAY failed", c->hostport);
	if (c->via_upstream) {
		upstream_connected(c); /* CONNECT or absolute-form first */
		return;
	}
	uv_timer_stop(&c->timer);
	dial_complete(c);
}

/* Connected (through the upstream proxy's tunnel when chained): re-judge
 * after a reload, then relay. */
static void dial_complete(struct conn *c)
{
	char ip[INET6_ADDRSTRLEN];
	addr_text(&c->addrs[c->next_addr], ip, sizeof(ip));
	px_log(c->px, PROXY_LOG_INFO, "proxy: %s %s connected via %s%s%s%s", c->method,
	       c->hostport, ip, c->via_upstream ? " through upstream proxy " : "",
	       c->via_upstream ? proxy_upstream_name(c->px->upstream) : "",
	       c->kept_ssl != NULL ? " (a kept connection)" : "");
	if (c->policy_gen != c->px->policy_gen) {
		/* Decided under a policy replaced while resolving or dialing. */
		char why[512];
		if (!destination_still_allowed(c, why, sizeof(why))) {
			px_log(c->px, PROXY_LOG_INFO, "proxy: %s %s: %s", c->method, c->hostport, why);
			audit(c, false, "opa", why, NULL);
			respond_error(c, 403, "policy_denied", why);
			return;
		}
	}
	start_relay(c);
}

/* The tool broker on a Unix socket: its one "address". */
static void dial_broker_unix(struct conn *c)
{
	int rc = uv_pipe_init(c->px->loop, &c->upstream_pipe, 0);
	if (rc < 0) {
		c->last_dial_err = rc;
		c->next_addr++;
		dial_next(c);
		return;
	}
	c->upstream_pipe.data = c;
	c->upstream_open = true;
	c->open_handles++;
	c->connect_req.data = c;
	uv_pipe_connect(&c->connect_req, &c->upstream_pipe, c->px->broker.path, on_connected);
}

/* An idle upstream TLS connection to this very address that an earlier
 * intercepted tunnel left (upool.c): no dial, no upstream handshake. True
 * when it was taken (or failed and the upstream is closing for a dial). */
static bool take_kept_upstream(struct conn *c, const struct sockaddr *sa)
{
	if (!upstream_keepable(c))
		return false;
	SSL *ssl = NULL;
	int fd = upool_take(c->px, c->target.host, c->target.port, sa, c->policy_gen, &ssl);
	if (fd < 0)
		return false;
	if (uv_tcp_init(c->px->loop, &c->upstream) < 0) {
		close(fd);
		SSL_free(ssl);
		return false;
	}
	c->upstream.data = c;
	c->upstream_open = true;
	c->open_handles++;
	if (uv_tcp_open(&c->upstream, fd) < 0) {
		close(fd);
		SSL_free(ssl);
		c->retry_pending = true; /* on_upstream_closed dials the same address */
		close_upstream(c);
		return true;
	}
	c->kept_ssl = ssl;
	uv_timer_stop(&c->timer);
	dial_complete(c);
	return true;
}

static void dial_next(struct conn *c)
{
	char detail[768];
	const struct sockaddr *sa;
	while ((sa = dial_address(c)) != NULL) {
		if (c->broker_unix) {
			dial_broker_unix(c);
			return;
		}
		if (take_kept_upstream(c, sa))
			return;
		int rc = uv_tcp_init(c->px->loop, &c->upstream);
		if (rc < 0) {
			c->last_dial_err = rc;
			break;
		}
		c->upstream.data = c;
		c->upstream_open = true;
		c->open_handles++;
		c->connect_req.data = c;
		rc = uv_tcp_connect(&c->connect_req, &c->upstream, sa, on_connected);
		if (rc == 0)
			return;
		c->last_dial_err = rc;
		dial_advance(c);
		c->retry_pending = true;
		close_upstream(c);
		return;
	}
	int err = c->last_dial_err ? c->last_dial_err : UV_EAI_NONAME;
	if (c->via_upstream)
		snprintf(detail, sizeof(detail), "connection to %s failed: upstream proxy %s "
			 "unreachable: %s", c->hostport, proxy_upstream_name(c->px->upstream),
			 uv_strerror(err));
	else
		snprintf(detail, sizeof(detail), "connection to %s failed: %s", c->hostport,
			 uv_strerror(err));
	px_log(c->px, PROXY_LOG_WARN, "proxy: %s", detail);
	respond_error(c, 502, "upstream_unreachable", detail);
}

static void on_phase_timeout(uv_timer_t *t)
{
	struct conn *c = t->data;
	char detail[512];
	switch (c->phase) {
	case PH_HEAD:
		px_log(c->px, PROXY_LOG_DEBUG, "proxy: client %s:%u: no request head within %u ms",
		       c->src_ip, (unsigned)c->src_port, PROXY_HEAD_TIMEOUT_MS);
		respond_static(c, RESPONSE_408_BARE);
		break;
	case PH_RESOLVE:
		snprintf(detail, sizeof(detail), "DNS resolution for %s timed out after %u ms",
			 c->hostport, PROXY_DNS_TIMEOUT_MS);
		px_log(c->px, PROXY_LOG_WARN, "proxy: %s", detail);
		respond_error(c, 504, "upstream_timeout", detail);
		break;
	case PH_CONNECT:
		if (c->via_upstream)
			snprintf(detail, sizeof(detail), "connection to %s through upstream proxy "
				 "%s timed out after %u ms", c->hostport,
				 proxy_upstream_name(c->px->upstream),
				 PROXY_UPSTREAM_HANDSHAKE_TIMEOUT_MS);
		else
			snprintf(detail, sizeof(detail), "connection to %s timed out after %u ms",
				 c->hostport, PROXY_CONNECT_TIMEOUT_MS);
		px_log(c->px, PROXY_LOG_WARN, "proxy: %s", detail);
		respond_error(c, 504, "upstream_timeout", detail);
		break;
	default:
		break;
	}
}

static void start_dial(struct conn *c)
{
	c->phase = PH_CONNECT;
	c->next_addr = 0;
	c->up_next = 0;
	/* Chained: connect, CONNECT and its reply share one bound. */
	uint64_t ms = c->via_upstream ? PROXY_UPSTREAM_HANDSHAKE_TIMEOUT_MS
				      : PROXY_CONNECT_TIMEOUT_MS;
	if (uv_timer_start(&c->timer, on_phase_timeout, ms, 0) < 0) {
		conn_close(c);
		return;
	}
	dial_next(c);
}

/* ---- SSRF ---- */

static void deny_ssrf(struct conn *c, const char *why)
{
	char detail[768];
	snprintf(detail, sizeof(detail), "%s %s blocked: %s", c->method, c->hostport, why);
	px_log(c->px, PROXY_LOG_INFO, "proxy: %s", detail);
	audit(c, false, "ssrf", why, NULL);
	respond_error(c, 403, "ssrf_denied", detail);
}

/* The next free entry of c->addrs (allocated on first use), or NULL when
 * all PROXY_MAX_DIAL_ADDRS are taken or memory is out. */
static struct sockaddr_storage *addr_slot(struct conn *c)
{
	if (c->n_addrs >= PROXY_MAX_DIAL_ADDRS)
		return NULL;
	if (c->addrs == NULL)
		c->addrs = calloc(PROXY_MAX_DIAL_ADDRS, sizeof(*c->addrs));
	return c->addrs != NULL ? &c->addrs[c->n_addrs] : NULL;
}

/* Check and store one candidate address; false (response sent) on denial. */
static bool admit_address(struct conn *c, const struct sockaddr *sa, socklen_t len)
{
	char why[384];
	struct ssrf_options opt = { .allow_loopback = c->px->test_allow_loopback_upstream };
	if (!ssrf_check_address(sa, c->target.port, c->allowed, c->n_allowed, &opt, why,
				sizeof(why))) {
		deny_ssrf(c, why);
		return false;
	}
	struct sockaddr_storage *ss = len <= sizeof(*ss) ? addr_slot(c) : NULL;
	if (ss != NULL) {
		c->n_addrs++;
		memcpy(ss, sa, len);
		if (ss->ss_family == AF_INET)
			((struct sockaddr_in *)ss)->sin_port = htons(c->target.port);
		else
			((struct sockaddr_in6 *)ss)->sin6_port = htons(c->target.port);
	}
	return true;
}

static void addresses_checked(struct conn *c)
{
	if (c->n_addrs == 0) { /* admitted, but no memory to keep the list */
		conn_close(c);
		return;
	}
	char ip[INET6_ADDRSTRLEN];
	addr_text(&c->addrs[0], ip, sizeof(ip));
	/* Chaining is decided only now: no-proxy address entries match the
	 * checked addresses. */
	c->via_upstream = c->px->upstream != NULL &&
			  !upstream_no_proxy_match(c->px->upstream, c->target.host, c->target.port,
						   c->addrs, c->n_addrs);
	audit(c, true, "opa", NULL, ip);
	start_dial(c);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	struct conn *c = req->data;
	c->gai_pending = false;
	if (c->closing || c->phase != PH_RESOLVE) {
		uv_freeaddrinfo(res);
		conn_maybe_free(c);
		return;
	}
	uv_timer_stop(&c->timer);
	char detail[512];
	if (status < 0) {
		snprintf(detail, sizeof(detail), "DNS resolution failed for %s: %s", c->hostport,
			 uv_strerror(status));
		px_log(c->px, PROXY_LOG_INFO, "proxy: %s", detail);
		respond_error(c, 502, "upstream_unreachable", detail);
		uv_freeaddrinfo(res);
		return;
	}
	name_cache_put(&c->px->names, c->target.host, res, uv_now(c->px->loop));
	/* Every address must pass; one bad address denies the request. */
	for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
		if (!admit_address(c, ai->ai_addr, ai->ai_addrlen)) {
			uv_freeaddrinfo(res);
			return;
		}
	}
	uv_freeaddrinfo(res);
	if (c->n_addrs == 0) {
		snprintf(detail, sizeof(detail), "DNS resolution returned no addresses for %s",
			 c->hostport);
		respond_error(c, 502, "upstream_unreachable", detail);
		return;
	}
	addresses_checked(c);
}

/* A recent resolution of the same name (proxy/name_cache.h): checked like
 * a fresh one, without the resolver's round trip. False: not cached. */
static bool resolve_from_cache(struct conn *c)
{
	struct sockaddr_storage cached[PROXY_MAX_DIAL_ADDRS];
	size_t n = name_cache_get(&c->px->names, c->target.host, uv_now(c->px->loop), cached,
				  PROXY_MAX_DIAL_ADDRS);
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++) {
		socklen_t len = cached[i].ss_family == AF_INET ? sizeof(struct sockaddr_in)
							       : sizeof(struct sockaddr_in6);
		if (!admit_address(c, (const struct sockaddr *)&cached[i], len))
			return true;
	}
	addresses_checked(c);
	return true;
}

static void dial_local(struct conn *c);

static void resolve(struct conn *c)
{
	if (c->tool || c->host_alias) {
		dial_local(c);
		return;
	}
	if (c->target.is_ip) {
		struct sockaddr_storage ss;
		memset(&ss, 0, sizeof(ss));
		socklen_t len;
		if (c->target.family == AF_INET) {
			struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
			s4->sin_family = AF_INET;
			memcpy(&s4->sin_addr, c->target.addr, 4);
			len = sizeof(*s4);
		} else {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
			s6->sin6_family = AF_INET6;
			memcpy(&s6->sin6_addr, c->target.addr, 16);
			len = sizeof(*s6);
		}
		if (admit_address(c, (struct sockaddr *)&ss, len))
			addresses_checked(c);
		return;
	}
	if (resolve_from_cache(c))
		return;
	c->phase = PH_RESOLVE;
	char port[8];
	snprintf(port, sizeof(port), "%u", (unsigned)c->target.port);
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_protocol = IPPROTO_TCP,
		.ai_flags = AI_NUMERICSERV,
	};
	c->gai.data = c;
	int rc = uv_timer_start(&c->timer, on_phase_timeout, PROXY_DNS_TIMEOUT_MS, 0);
	if (rc == 0)
		rc = uv_getaddrinfo(c->px->loop, &c->gai, on_resolved, c->target.host, port, &hints);
	if (rc < 0) {
		char detail[512];
		snprintf(detail, sizeof(detail), "DNS resolution failed for %s: %s", c->hostport,
			 uv_strerror(rc));
		respond_error(c, 502, "upstream_unreachable", detail);
		return;
	}
	c->gai_pending = true;
}

/* ---- decision ---- */

static bool snapshot_decision(struct conn *c, const struct policy_decision *d)
{
	if (d->rule != NULL && d->rule->name != NULL) {
		c->rule_name = strdup(d->rule->name);
		if (c->rule_name == NULL)
			return false;
	}
	if (d->endpoint != NULL && d->endpoint->n_allowed_ips > 0) {
		c->allowed = calloc(d->endpoint->n_allowed_ips, sizeof(*c->allowed));
		if (c->allowed == NULL)
			return false;
		memcpy(c->allowed, d->endpoint->allowed_ips,
		       d->endpoint->n_allowed_ips * sizeof(*c->allowed));
		c->n_allowed = d->endpoint->n_allowed_ips;
	}
	return true;
}

static void deny_policy(struct conn *c, const struct policy_decision *d)
{
	char detail[768];
	if (c->is_connect) {
		snprintf(detail, sizeof(detail), "CONNECT %s not permitted by policy", c->hostport);
	} else {
		const char *q = memchr(c->target.path, '?', c->target.path_len);
		size_t plen = q ? (size_t)(q - c->target.path) : c->target.path_len;
		snprintf(detail, sizeof(detail), "%s %s%s%.*s not permitted by policy", c->method,
			 c->hostport, plen > 0 ? "" : "/", (int)(plen > 256 ? 256 : plen),
			 c->target.path);
	}
	const char *reason = d->reason[0] ? d->reason : "network connections not allowed by policy";
	px_log(c->px, PROXY_LOG_INFO, "proxy: %s: %s", detail, reason);
	audit(c, false, "opa", reason, NULL);
	struct denial_info di = {
		.detail = detail,
		.reason = reason,
		.host = c->target.host,
		.port = c->target.port,
		.rule_name = c->rule_name,
	};
	size_t len = 0;
	char *resp = response_policy_denied(&di, &len);
	respond(c, resp, len);
}

/* `tls: skip` relays a tunnel raw. It concerns TLS only: a forwarded
 * http:// request or a captured plaintext HTTP flow has no TLS to skip, so
 * its endpoint's L7 rules still apply. */
static bool tls_skip_applies(const struct conn *c, const struct policy_endpoint *ep)
{
	return ep->tls == POLICY_TLS_SKIP && c->is_connect && !c->transparent_http;
}

/* False (503 sent) when an intercepted tunnel cannot be: no sandbox CA. */
static bool termination_available(struct conn *c)
{
	if (c->px->tls != NULL)
		return true;
	char detail[512];
	snprintf(detail, sizeof(detail), "CONNECT %s needs TLS termination, but the sandbox "
		 "CA is not available", c->hostport);
	px_log(c->px, PROXY_LOG_WARN, "proxy: %s", detail);
	audit(c, false, "opa", "tls termination unavailable", NULL);
	respond_error(c, 503, "tls_termination_unavailable", detail);
	return false;
}

/* The interception rule. A CONNECT tunnel is terminated (TLS) or parsed
 * (plaintext HTTP) when its endpoint has L7 rules (protocol rest/websocket
 * with rules) or says `tls: terminate`, or its host is in a credential's
 * scope; `tls: skip` always relays raw; everything else relays raw (the
 * fast path: no peek, no parsing). False: a response was sent. */
static bool plan_interception(struct conn *c, const struct policy_decision *d)
{
	const struct policy_endpoint *ep = d->endpoint;
	if (ep == NULL || tls_skip_applies(c, ep))
		return true;
	c->l7 = policy_endpoint_needs_l7(ep);
	c->allow_encoded_slash = ep->allow_encoded_slash;
	if (!c->is_connect)
		return true;
	c->intercept = c->l7 || ep->tls == POLICY_TLS_TERMINATE ||
		       hr_host_has_credentials(c->px->creds, c->target.host);
	return !c->intercept || termination_available(c);
}

/* Swap the request-target of the already built upstream head. */
static bool replace_request_target(struct conn *c, const char *target)
{
	char *h = c->upstream_head;
	char *eol = memmem(h, c->upstream_head_len, "\r\n", 2);
	char *sp1 = eol ? memchr(h, ' ', (size_t)(eol - h)) : NULL;
	char *sp2 = eol ? memrchr(h, ' ', (size_t)(eol - h)) : NULL;
	if (sp1 == NULL || sp2 == NULL || sp2 <= sp1)
		return false;
	size_t tlen = strlen(target);
	size_t before = (size_t)(sp1 + 1 - h), after = c->upstream_head_len - (size_t)(sp2 - h);
	char *out = malloc(before + tlen + after);
	if (out == NULL)
		return false;
	memcpy(out, h, before);
	memcpy(out + before, target, tlen);
	memcpy(out + before + tlen, sp2, after);
	free(h);
	c->upstream_head = out;
	c->upstream_head_len = before + tlen + after;
	return true;
}

/* A forwarded http:// request to an endpoint with L7 rules: canonicalize,
 * judge, and send the canonical target upstream. False: a response was
 * sent. */
static bool forward_l7_admit(struct conn *c)
{
	char path[CANON_MAX_PATH_BYTES + 1], query[CANON_MAX_QUERY_BYTES + 1];
	const char *why = NULL;
	const char *raw = c->target.path_len > 0 ? c->target.path : "/";
	size_t raw_len = c->target.path_len > 0 ? c->target.path_len : 1;
	if (canon_request_target(raw, raw_len, c->allow_encoded_slash, path, sizeof(path), query,
				 sizeof(query), &why) != 0) {
		char detail[300];
		snprintf(detail, sizeof(detail), "request-target rejected: %s", why ? why : "?");
		audit(c, false, "l7", detail, NULL);
		respond_error(c, 400, "invalid_request_target", detail);
		return false;
	}
	struct policy_l7_result r;
	memset(&r, 0, sizeof(r));
	if (c->px->policy == NULL) {
		r.verdict = POLICY_L7_DENY;
		snprintf(r.reason, sizeof(r.reason), "no policy loaded");
	} else if (c->tool) {
		reserved_tool_evaluate(c->px->policy, c->target.host, c->target.port, c->method,
				       path, query[0] ? query : NULL, &r);
	} else {
		policy_l7_evaluate(c->px->policy, c->target.host, c->target.port, c->method, path,
				   query[0] ? query : NULL, &r);
	}
	const char *rule_type = c->tool ? "tool" : "l7";
	if (r.verdict == POLICY_L7_DENY) {
		px_log(c->px, PROXY_LOG_INFO, "proxy: %s %s%s denied: %s", c->method, c->hostport,
		       path, r.reason);
		audit_call(c, false, rule_type, r.reason, NULL, path);
		struct l7_denial d = { .method = c->method, .path = path, .host = c->target.host,
				       .port = c->target.port, .reason = r.reason,
				       .rule_name = c->rule_name };
		size_t len = 0;
		char *resp = response_l7_denied(&d, true, &len);
		respond(c, resp, len);
		return false;
	}
	audit_call(c, true, rule_type, r.verdict == POLICY_L7_AUDIT_DENY ? r.reason : NULL, NULL,
		   path);
	size_t cap = strlen(path) + strlen(query) + 2;
	c->canon_target = malloc(cap);
	if (c->canon_target == NULL || canon_format_target(path, query, c->canon_target, cap) == 0 ||
	    !replace_request_target(c, c->canon_target)) {
		conn_close(c);
		return false;
	}
	return true;
}

/* ---- reserved names (proxy/reserved.h) ---- */

static bool peer_address(const struct conn *c, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, c->src_ip, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(c->src_port);
		return true;
	}
	if (inet_pton(AF_INET6, c->src_ip, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(c->src_port);
		return true;
	}
	return false;
}

/* The process behind the client socket, through the embedder's hook. */
static void identify_caller(struct conn *c)
{
	struct proxy *px = c->px;
	struct sockaddr_storage peer;
	char binary[PROXY_IDENTITY_MAX] = "";
	long pid = 0;
	if (px->hooks.identify == NULL || !peer_address(c, &peer) ||
	    !px->hooks.identify(px->hooks.ud, &peer, binary, sizeof(binary), &pid))
		return;
	binary[sizeof(binary) - 1] = '\0';
	c->caller_pid = pid;
	c->caller_binary = binary[0] ? strdup(binary) : NULL; /* NULL: unknown */
}

/* The tool route: never resolved nor dialed by name; calls go to the
 * broker, each judged by reserved_tool_evaluate(). Only an endpoint for
 * exactly that name and port declares it: a wildcard or host-less endpoint
 * that happens to match never reaches the broker. False: a response was
 * sent. */
static bool plan_tool_route(struct conn *c)
{
	if (!reserved_host_declared(c->px->policy, c->target.host, c->target.port)) {
		char detail[512];
		snprintf(detail, sizeof(detail), "%s: port %u of the tool route is not declared by a "
			 "policy endpoint for exactly that host", c->hostport,
			 (unsigned)c->target.port);
		px_log(c->px, PROXY_LOG_INFO, "proxy: %s", detail);
		audit(c, false, "tool", detail, NULL);
		respond_error(c, 403, "policy_denied", detail);
		return false;
	}
	if (c->px->broker.kind == PROXY_BROKER_NONE) {
		char detail[512];
		snprintf(detail, sizeof(detail), "%s: no tool broker is configured for this sandbox",
			 c->hostport);
		px_log(c->px, PROXY_LOG_INFO, "proxy: %s", detail);
		audit(c, false, "tool", "no tool broker configured", NULL);
		respond_error(c, 503, "tool_broker_unavailable", detail);
		return false;
	}
	c->tool = true;
	c->l7 = true;
	c->intercept = c->is_connect;
	if (c->intercept && !termination_available(c))
		return false;
	identify_caller(c);
	c->tool_identity = malloc(RESERVED_IDENTITY_BYTES);
	if (c->tool_identity == NULL ||
	    reserved_identity_lines(c->px->sandbox_id, c->caller_binary, c->caller_pid,
				    c->tool_identity, RESERVED_IDENTITY_BYTES) == 0) {
		conn_close(c);
		return false;
	}
	return true;
}

/* A forwarded tool call: the caller's x-openshell-* headers out, ours in. */
static bool tool_forward_head(struct conn *c)
{
	size_t n = 0;
	char *h = reserved_tool_head(c->upstream_head, c->upstream_head_len, c->tool_identity, &n);
	if (h == NULL) {
		conn_close(c);
		return false;
	}
	free(c->upstream_head);
	c->upstream_head = h;
	c->upstream_head_len = n;
	return true;
}

/* PROXY_HOST_ALIAS reaches only the ports an endpoint declares for exactly
 * that name (a wildcard host never reaches loopback). False: denied. */
static bool admit_host_alias(struct conn *c)
{
	if (reserved_alias_declared(c->px->policy, c->target.port)) {
		c->host_alias = true;
		return true;
	}
	char detail[512];
	snprintf(detail, sizeof(detail), "%s: port %u of %s is not declared by a policy endpoint "
		 "for exactly that host", c->hostport, (unsigned)c->target.port, PROXY_HOST_ALIAS);
	px_log(c->px, PROXY_LOG_INFO, "proxy: %s", detail);
	audit(c, false, "opa", detail, NULL);
	respond_error(c, 403, "policy_denied", detail);
	return false;
}

/* The broker or the host alias: a fixed address, no DNS; no SSRF check
 * (the alias was admitted by exact name and declared port only). */
static void dial_local(struct conn *c)
{
	struct sockaddr_storage *ss = addr_slot(c);
	if (ss == NULL) {
		conn_close(c);
		return;
	}
	memset(ss, 0, sizeof(*ss));
	if (c->host_alias) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
		s4->sin_family = AF_INET;
		s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		s4->sin_port = htons(c->target.port);
	} else if (c->px->broker.kind == PROXY_BROKER_UNIX) {
		ss->ss_family = AF_UNIX;
		c->broker_unix = true;
	} else {
		*ss = c->px->broker.addr;
	}
	c->n_addrs = 1;
	char ip[INET6_ADDRSTRLEN];
	addr_text(ss, ip, sizeof(ip));
	audit(c, true, c->tool ? "tool" : "opa", NULL, ip);
	start_dial(c);
}

static void decide(struct conn *c)
{
	struct policy_decision d;
	memset(&d, 0, sizeof(d));
	const struct policy *pol = c->px->policy;
	c->policy_gen = c->px->policy_gen;
	if (pol == NULL)
		snprintf(d.reason, sizeof(d.reason), "no policy loaded");
	else /* Binaries are not matched yet: endpoint-only decisions. */
		policy_decide(pol, c->target.host, c->target.port, NULL, false, &d);
	if (!snapshot_decision(c, &d)) {
		conn_close(c);
		return;
	}
	if (!d.allowed) {
		deny_policy(c, &d);
		return;
	}
	bool tool = reserved_is_tool_host(c->px, c->target.host);
	if (tool ? !plan_tool_route(c) : !plan_interception(c, &d))
		return;
	if (!tool && reserved_is_alias(c->target.host) && !admit_host_alias(c))
		return;
	if (!c->is_connect && c->l7 && !forward_l7_admit(c))
		return;
	if (tool && !c->is_connect && !tool_forward_head(c))
		return;
	if (!c->is_connect && c->upstream_head != NULL &&
	    cred_contains_placeholder(c->upstream_head, c->upstream_head_len)) {
		/* Placeholders are resolved only inside intercepted tunnels. */
		audit(c, false, "opa", "credential placeholder in a plain-HTTP request", NULL);
		respond_error(c, 403, "credential_unavailable",
			      "credential placeholders are only resolved in HTTPS (CONNECT) requests");
		return;
	}
	resolve(c);
}

/* ---- request head ---- */

/* False when the method is too long: never cut, or policy and audit would
 * judge another method than the one sent upstream. */
static bool copy_method(struct conn *c, struct http_slice m)
{
	if (m.len >= sizeof(c->method))
		return false;
	memcpy(c->method, m.p, m.len);
	c->method[m.len] = '\0';
	return true;
}

static bool prepare_forward(struct conn *c, const struct http_head *h)
{
	switch (target_parse_absolute(h->target.p, h->target.len, &c->target)) {
	case TARGET_OK:
		break;
	case TARGET_HTTPS:
		respond_static(c, RESPONSE_400_HTTPS);
		return false;
	case TARGET_BAD_SCHEME:
		respond_error(c, 400, "unsupported_proxy_scheme", "Forward proxy requests must use http");
		return false;
	default:
		px_log(c->px, PROXY_LOG_INFO, "proxy: client %s:%u: invalid forward request-target",
		       c->src_ip, (unsigned)c->src_port);
		respond_static(c, RESPONSE_400_BARE);
		return false;
	}
	target_format_hostport(&c->target, c->hostport, sizeof(c->hostport));
	size_t extra = c->head_fill - h->head_len;
	c->early_off = h->head_len;
	if (h->chunked) {
		/* Relayed as is; the validator finds where the body ends. */
		c->body_chunked = true;
		chunked_init(&c->chunk);
		ssize_t r = chunked_feed(&c->chunk, c->head + h->head_len, extra);
		if (r < 0) {
			px_log(c->px, PROXY_LOG_INFO, "proxy: %s %s: invalid chunked body: %s",
			       c->method, c->hostport, c->chunk.error);
			respond_static(c, RESPONSE_400_BARE);
			return false;
		}
		c->early_len = (size_t)r;
		c->body_remaining = chunked_done(&c->chunk) ? 0 : UNLIMITED;
	} else {
		uint64_t body = h->has_content_length ? h->content_length : 0;
		c->early_len = body < extra ? (size_t)body : extra; /* drop pipelined bytes */
		c->body_remaining = body - c->early_len;
	}
	c->upstream_head = forward_build_head(h, &c->target, &c->upstream_head_len);
	if (c->upstream_head == NULL) {
		conn_close(c);
		return false;
	}
	return true;
}

static void process_head(struct conn *c, const struct http_head *h)
{
	if (!copy_method(c, h->method)) {
		char detail[64];
		snprintf(detail, sizeof(detail), "request method longer than %u bytes",
			 POLICY_L7_MAX_METHOD_BYTES);
		px_log(c->px, PROXY_LOG_INFO, "proxy: client %s:%u: %s", c->src_ip,
		       (unsigned)c->src_port, detail);
		respond_error(c, 400, "invalid_method", detail);
		return;
	}
	c->is_connect = h->method.len == 7 && memcmp(h->method.p, "CONNECT", 7) == 0;
	if (c->is_connect) {
		if (target_parse_connect(h->target.p, h->target.len, &c->target) != TARGET_OK) {
			px_log(c->px, PROXY_LOG_INFO, "proxy: client %s:%u: invalid CONNECT authority",
			       c->src_ip, (unsigned)c->src_port);
			respond_static(c, RESPONSE_400_BARE);
			return;
		}
		target_format_hostport(&c->target, c->hostport, sizeof(c->hostport));
		c->early_off = h->head_len; /* bytes sent ahead of the 200 are kept */
		c->early_len = c->head_fill - h->head_len;
	} else if (!prepare_forward(c, h)) {
		return;
	}
	decide(c);
}

static void head_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct conn *c = h->data;
	*buf = uv_buf_init(c->head + c->head_fill, (unsigned)(PROXY_MAX_HEAD_BYTES - c->head_fill));
}

static void on_head_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct conn *c = s->data;
	if (n == 0 || c->closing)
		return;
	if (n < 0) { /* EOF or error before a full head: close silently */
		conn_close(c);
		return;
	}
	c->head_fill += (size_t)n;
	/* The parsed view is large (fixed header array): keep it off the stack. */
	struct http_head *h = malloc(sizeof(*h));
	if (h == NULL) {
		conn_close(c);
		return;
	}
	const char *why = NULL;
	enum http_head_result r = http_head_parse(c->head, c->head_fill, h, &why);
	if (r == HTTP_HEAD_INCOMPLETE && c->head_fill < PROXY_MAX_HEAD_BYTES) {
		free(h);
		return;
	}
	uv_read_stop(s);
	uv_timer_stop(&c->timer);
	switch (r) {
	case HTTP_HEAD_OK:
		process_head(c, h);
		break;
	case HTTP_HEAD_INCOMPLETE:
	case HTTP_HEAD_TOO_MANY:
		px_log(c->px, PROXY_LOG_INFO, "proxy: client %s:%u: request head too large",
		       c->src_ip, (unsigned)c->src_port);
		respond_static(c, RESPONSE_431_BARE);
		break;
	case HTTP_HEAD_BAD:
		px_log(c->px, PROXY_LOG_INFO, "proxy: client %s:%u: bad request head: %s", c->src_ip,
		       (unsigned)c->src_port, why ? why : "?");
		respond_static(c, RESPONSE_400_BARE);
		break;
	}
	free(h);
}

/* ---- accept ---- */

static void set_peer(struct conn *c, const struct sockaddr_storage *peer)
{
	if (peer->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)peer;
		inet_ntop(AF_INET, &s4->sin_addr, c->src_ip, sizeof(c->src_ip));
		c->src_port = ntohs(s4->sin_port);
	} else if (peer->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)peer;
		inet_ntop(AF_INET6, &s6->sin6_addr, c->src_ip, sizeof(c->src_ip));
		c->src_port = ntohs(s6->sin6_port);
	}
}

/* Allocates a connection for an accepted socket, links it into the proxy and
 * wraps the fd in the client handle. Returns NULL when that failed; the fd is
 * then closed and everything released (or being released). */
static struct conn *conn_adopt(struct proxy *px, int fd, const struct sockaddr_storage *peer)
{
	struct conn *c = calloc(1, sizeof(*c));
	if (c == NULL) {
		close(fd);
		proxy_conn_freed(px);
		return NULL;
	}
	c->px = px;
	c->phase = PH_HEAD;
	set_peer(c, peer);
	snprintf(c->hostport, sizeof(c->hostport), "-");
	snprintf(c->method, sizeof(c->method), "-");
	c->next = px->conns;
	if (px->conns != NULL)
		px->conns->prev = c;
	px->conns = c;
	if (uv_tcp_init(px->loop, &c->client) < 0) {
		close(fd);
		conn_maybe_free(c);
		return NULL;
	}
	c->client.data = c;
	c->client_open = true;
	c->open_handles++;
	if (uv_tcp_open(&c->client, fd) < 0) {
		close(fd); /* not owned by the handle when open failed */
		conn_close(c);
		return NULL;
	}
	return c;
}

void conn_accepted(struct proxy *px, int fd, const struct sockaddr_storage *peer)
{
	struct conn *c = conn_adopt(px, fd, peer);
	if (c == NULL)
		return;
	c->head = malloc(PROXY_MAX_HEAD_BYTES);
	int rc = c->head != NULL ? uv_timer_init(px->loop, &c->timer) : UV_ENOMEM;
	if (rc == 0) {
		c->timer.data = c;
		c->timer_open = true;
		c->open_handles++;
		if (uv_tcp_nodelay(&c->client, 1) < 0)
			px_log(px, PROXY_LOG_DEBUG, "proxy: TCP_NODELAY failed on a client socket");
		rc = uv_timer_start(&c->timer, on_phase_timeout, PROXY_HEAD_TIMEOUT_MS, 0);
	}
	if (rc == 0)
		rc = uv_read_start((uv_stream_t *)&c->client, head_alloc, on_head_read);
	if (rc < 0) {
		px_log(px, PROXY_LOG_WARN, "proxy: cannot start a connection: %s", uv_strerror(rc));
		conn_close(c);
	}
}

/* ---- transparent capture ---- */

/* "host:port" of the flow: the name hint, else the original address. */
static bool transparent_target(struct conn *c, const struct sockaddr_storage *orig,
			       const char *name)
{
	char ip[INET6_ADDRSTRLEN], auth[TARGET_MAX_HOST + 16];
	uint16_t port = ntohs(orig->ss_family == AF_INET
				      ? ((const struct sockaddr_in *)orig)->sin_port
				      : ((const struct sockaddr_in6 *)orig)->sin6_port);
	addr_text(orig, ip, sizeof(ip));
	if (name != NULL && name[0] != '\0') {
		bool v6 = strchr(name, ':') != NULL;
		snprintf(auth, sizeof(auth), "%s%s%s:%u", v6 ? "[" : "", name, v6 ? "]" : "",
			 (unsigned)port);
		if (target_parse_connect(auth, strlen(auth), &c->target) == TARGET_OK)
			return true;
	}
	bool v6 = orig->ss_family == AF_INET6;
	snprintf(auth, sizeof(auth), "%s%s%s:%u", v6 ? "[" : "", ip, v6 ? "]" : "", (unsigned)port);
	return target_parse_connect(auth, strlen(auth), &c->target) == TARGET_OK;
}

void conn_accepted_transparent(struct proxy *px, int fd, const struct sockaddr_storage *peer,
			       const struct sockaddr_storage *orig_dst, const char *name_hint,
			       enum conn_capture_kind kind)
{
	static const char *const kinds[] = { "TLS", "HTTP", "TCP" };
	struct conn *c = conn_adopt(px, fd, peer);
	if (c == NULL)
		return;
	c->transparent = true;
	c->transparent_http = kind == CONN_CAPTURE_HTTP;
	c->is_connect = true; /* a tunnel: both directions until both end */
	snprintf(c->method, sizeof(c->method), "%s", kinds[kind]);
	int rc = uv_timer_init(px->loop, &c->timer);
	if (rc == 0) {
		c->timer.data = c;
		c->timer_open = true;
		c->open_handles++;
	}
	if (rc < 0 || !transparent_target(c, orig_dst, name_hint)) {
		conn_reset_client(c);
		return;
	}
	if (uv_tcp_nodelay(&c->client, 1) < 0)
		px_log(px, PROXY_LOG_DEBUG, "proxy: TCP_NODELAY failed on a client socket");
	target_format_hostport(&c->target, c->hostport, sizeof(c->hostport));
	decide(c);
}
