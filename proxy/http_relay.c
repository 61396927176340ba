/* http_relay.c - the intercepted tunnel: sniff, TLS on both sides, HTTP/1.1
 * framing, raw relay after an upgrade (requests themselves: http_relay_req.c).
 *
 * Each side (client, upstream) has a plaintext input buffer `ibuf`. A
 * plaintext side reads straight into it; a TLS side reads ciphertext into
 * `rbuf`, feeds it to the SSL's memory BIO and SSL_read()s plaintext into
 * ibuf when there is room. Everything written to a TLS side goes through
 * SSL_write() and leaves through its write BIO: written at once when the
 * socket takes it (uv_try_write), else queued (uv_write). Reading from a
 * side stops while its ibuf is full or the other side's write queue is above
 * the high-water mark, so memory per tunnel is bounded whatever the bodies.
 *
 * Requests are handled one at a time, in order: the next request head is
 * parsed only after the previous response is complete (pipelined requests
 * wait in ibuf). The request body and the response run concurrently (so
 * `Expect: 100-continue` and early answers work).
 */
#include "proxy/http_relay.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/http_relay_int.h"
#include "proxy/proxy_int.h"
#include "proxy/response.h"
#include "proxy/tls.h"
#include "proxy/upool.h"

struct hr_write {
	uv_write_t req;
	struct hr_session *s;
	char data[];
};

static void process(struct hr_session *s);
static void arm_idle_release(struct hr_session *s);

void hr_log(struct hr_session *s, int level, const char *fmt, ...)
{
	char msg[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	px_log(s->px, level, "proxy: %s:%u: %s", s->host, (unsigned)s->port, msg);
}

/* ---- ending ---- */

void hr_fail(struct hr_session *s, const char *why)
{
	if (s->closing || s->detached)
		return;
	s->closing = true;
	if (why != NULL)
		hr_log(s, PROXY_LOG_INFO, "tunnel closed: %s", why);
	s->close_owner(s->owner); /* calls hr_detach() */
}

static void on_end_shutdown(uv_shutdown_t *req, int status)
{
	struct hr_session *s = req->data;
	if (s->detached)
		return;
	if (s->shut_pending > 0)
		s->shut_pending--;
	if (status < 0 || s->mode == M_ENDING || (s->side[CL].wr_shut && s->side[UP].wr_shut &&
						   s->shut_pending == 0))
		hr_fail(s, NULL);
}

/* Flush what the SSL has produced to the socket. */
static int flush_tls(struct hside *sd);

/* Shut our write direction towards this side: close_notify first for TLS
 * when `notify`. Without it the peer sees a bare TCP end, as it would have
 * from a server that ended so: a truncation is passed on, not made to look
 * like a clean end. */
static void shut_write(struct hr_session *s, struct hside *sd, bool notify)
{
	if (sd->wr_shut)
		return;
	sd->wr_shut = true;
	if (notify && sd->ssl != NULL && sd->hs_done) {
		(void)SSL_shutdown(sd->ssl);
		ERR_clear_error();
		if (flush_tls(sd) < 0) {
			hr_fail(s, "write failed");
			return;
		}
	}
	sd->shut_req.data = s;
	if (uv_shutdown(&sd->shut_req, sd->stream, on_end_shutdown) < 0) {
		hr_fail(s, NULL);
		return;
	}
	s->shut_pending++;
}

/* Graceful end: stop reading, let queued writes reach the client, close;
 * close_notify to the client when `notify`. */
static void finish(struct hr_session *s, bool notify)
{
	if (s->closing || s->mode == M_ENDING)
		return;
	s->mode = M_ENDING;
	for (int i = 0; i < 2; i++) {
		if (s->side[i].reading)
			uv_read_stop(s->side[i].stream);
		s->side[i].reading = false;
	}
	struct hside *c = &s->side[CL];
	if (c->wr_shut) {
		if (s->shut_pending == 0)
			hr_fail(s, NULL);
		return;
	}
	shut_write(s, c, notify);
}

void hr_finish(struct hr_session *s)
{
	finish(s, true);
}

/* ---- writes ---- */

static void on_written(uv_write_t *req, int status)
{
	struct hr_write *w = req->data;
	struct hr_session *s = w->s;
	free(w);
	if (s->detached || s->closing)
		return;
	if (status < 0) {
		hr_fail(s, uv_strerror(status));
		return;
	}
	process(s);
}

/* Send w->data[0..len) and take w: what the socket takes now goes without a
 * write request (libuv's completion of one costs a callback and an
 * epoll_ctl); the rest is queued behind it. uv_try_write() refuses while
 * the queue is not empty, so the order holds. */
static int send_write(struct hside *sd, struct hr_write *w, size_t len)
{
	uv_buf_t b = uv_buf_init(w->data, (unsigned)len);
	int n = uv_try_write(sd->stream, &b, 1);
	if (n >= 0 && (size_t)n == len) {
		free(w);
		return 0;
	}
	if (n < 0 && n != UV_EAGAIN) {
		free(w);
		return n;
	}
	if (n > 0) {
		b.base += n;
		b.len -= (size_t)n;
	}
	w->s = sd->s;
	w->req.data = w;
	int rc = uv_write(&w->req, sd->stream, &b, 1, on_written);
	if (rc < 0)
		free(w);
	return rc;
}

static int raw_write(struct hside *sd, const char *data, size_t len)
{
	if (len == 0)
		return 0;
	struct hr_write *w = malloc(sizeof(*w) + len);
	if (w == NULL)
		return UV_ENOMEM;
	memcpy(w->data, data, len);
	return send_write(sd, w, len);
}

static int flush_tls(struct hside *sd)
{
	BIO *wbio = SSL_get_wbio(sd->ssl);
	size_t pending;
	while ((pending = BIO_ctrl_pending(wbio)) > 0) {
		struct hr_write *w = malloc(sizeof(*w) + pending);
		if (w == NULL)
			return UV_ENOMEM;
		int n = BIO_read(wbio, w->data, (int)pending);
		if (n <= 0) {
			free(w);
			return UV_EIO;
		}
		int rc = send_write(sd, w, (size_t)n);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Send plaintext to a side. */
bool hr_side_write(struct hr_session *s, struct hside *sd, const char *data, size_t len)
{
	if (sd->wr_shut)
		return false;
	int rc = 0;
	if (sd->ssl == NULL) {
		rc = raw_write(sd, data, len);
	} else {
		while (len > 0 && rc == 0) {
			int chunk = len > (1u << 30) ? (1 << 30) : (int)len;
			int n = SSL_write(sd->ssl, data, chunk);
			if (n <= 0) {
				char why[256];
				tls_last_error(why, sizeof(why), "SSL_write failed");
				hr_log(s, PROXY_LOG_INFO, "%s", why);
				rc = UV_EIO;
				break;
			}
			data += n;
			len -= (size_t)n;
			rc = flush_tls(sd);
		}
	}
	if (rc < 0) {
		hr_fail(s, "write failed");
		return false;
	}
	return true;
}

static bool below_high_water(const struct hside *sd)
{
	return uv_stream_get_write_queue_size(sd->stream) <= HR_HIGH_WATER;
}

void hr_consume(struct hside *sd, size_t n)
{
	if (n >= sd->ifill) {
		sd->ifill = 0;
		return;
	}
	memmove(sd->ibuf, sd->ibuf + n, sd->ifill - n);
	sd->ifill -= n;
}

/* ---- reading ---- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct hside *sd = h->data;
	if (sd->ssl != NULL || sd->s->mode == M_HANDSHAKE)
		*buf = uv_buf_init(sd->rbuf, PROXY_RELAY_READ_BYTES);
	else
		*buf = uv_buf_init(sd->ibuf + sd->ifill, (unsigned)(HR_IBUF_BYTES - sd->ifill));
}

static void drive_handshake(struct hr_session *s, struct hside *sd);

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
	struct hside *sd = st->data;
	struct hr_session *s = sd->s;
	if (s->detached || s->closing || n == 0)
		return;
	if (n < 0) {
		if (n != UV_EOF) {
			hr_fail(s, uv_strerror((int)n));
			return;
		}
		uv_read_stop(st);
		sd->reading = false;
		sd->tcp_eof = true;
		if (sd->ssl == NULL)
			sd->eof = true;
	} else if (sd->ssl != NULL) {
		if (BIO_write(SSL_get_rbio(sd->ssl), buf->base, (int)n) != (int)n) {
			hr_fail(s, "out of memory");
			return;
		}
		if (!sd->hs_done)
			drive_handshake(s, sd);
		else if (!uv_is_active((uv_handle_t *)s->timer))
			arm_idle_release(s);
	} else {
		sd->ifill += (size_t)n;
	}
	process(s);
}

static void set_reading(struct hr_session *s, struct hside *sd, bool want)
{
	if (want == sd->reading)
		return;
	if (want) {
		if (uv_read_start(sd->stream, on_alloc, on_read) < 0) {
			hr_fail(s, "read start failed");
			return;
		}
	} else {
		uv_read_stop(sd->stream);
	}
	sd->reading = want;
}

static void update_reading(struct hr_session *s)
{
	for (int i = 0; i < 2 && !s->closing; i++) {
		struct hside *sd = &s->side[i];
		struct hside *peer = &s->side[1 - i];
		bool want = !sd->tcp_eof && s->mode != M_ENDING;
		if (sd->ssl != NULL && sd->hs_done)
			want = want && sd->ifill < HR_IBUF_BYTES && below_high_water(peer);
		else if (sd->ssl == NULL && s->mode != M_HANDSHAKE)
			want = want && sd->ifill < HR_IBUF_BYTES && below_high_water(peer);
		/* the upstream sends nothing before a request in sniff mode, and
		 * a plaintext upstream (the tool broker) nothing during the
		 * client's handshake */
		if ((s->mode == M_SNIFF || (s->mode == M_HANDSHAKE && sd->ssl == NULL)) && i == UP)
			want = false;
		set_reading(s, sd, want);
	}
}

/* Pull decrypted bytes into ibuf. Returns true on progress. */
static bool fill(struct hr_session *s, struct hside *sd)
{
	if (sd->ssl == NULL || !sd->hs_done || sd->eof)
		return false;
	bool progress = false, ran = false;
	while (sd->ifill < HR_IBUF_BYTES) {
		if (!tls_input_left(sd->ssl)) {
			/* SSL_read() would only say "want read" */
			if (sd->tcp_eof) {
				sd->eof = sd->truncated = true;
				progress = true;
			}
			break;
		}
		ran = true;
		int n = SSL_read(sd->ssl, sd->ibuf + sd->ifill, (int)(HR_IBUF_BYTES - sd->ifill));
		if (n > 0) {
			sd->ifill += (size_t)n;
			progress = true;
			continue;
		}
		int e = SSL_get_error(sd->ssl, n);
		if (e == SSL_ERROR_WANT_READ) {
			if (sd->tcp_eof) { /* mid-record, or between records */
				sd->eof = sd->truncated = true;
				progress = true;
			}
		} else if (e == SSL_ERROR_ZERO_RETURN) {
			sd->eof = true;
			progress = true;
		} else {
			char why[256];
			tls_last_error(why, sizeof(why), "TLS read error");
			hr_fail(s, why);
			return false;
		}
		break;
	}
	if (!ran)
		return progress;
	ERR_clear_error();
	if (flush_tls(sd) < 0)
		hr_fail(s, "write failed");
	return progress;
}

/* Between two exchanges, with nothing owed either way: the server expects
 * nothing and has sent nothing we have not passed on. */
static bool upstream_idle(struct hr_session *s)
{
	struct hside *u = &s->side[UP];
	return s->keepable && s->tls && u->ssl != NULL && u->hs_done && s->mode == M_HTTP &&
	       SSL_is_init_finished(u->ssl) && SSL_get_shutdown(u->ssl) == 0 &&
	       (s->rq == RQ_HEAD || s->rq == RQ_WAIT) && s->rs == RS_IDLE && !s->rs_close &&
	       (!s->req_close || s->req_close_here) &&
	       !u->eof && !u->tcp_eof && !u->wr_shut && u->ifill == 0 &&
	       !tls_input_left(u->ssl) && SSL_pending(u->ssl) == 0 &&
	       BIO_pending(SSL_get_wbio(u->ssl)) == 0 &&
	       uv_stream_get_write_queue_size(u->stream) == 0 &&
	       s->px->policy_gen == s->policy_gen;
}

/* The client has left between two exchanges: the upstream connection (a
 * duplicate of its socket, and its SSL) goes to upool.c for the next tunnel
 * to this host and address; the owner closes its own descriptor. */
static void keep_upstream(struct hr_session *s)
{
	struct hside *u = &s->side[UP];
	uv_os_fd_t fd;
	if (!upstream_idle(s) || uv_fileno((uv_handle_t *)u->stream, &fd) != 0)
		return;
	int kept = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (kept < 0)
		return;
	if (u->reading)
		uv_read_stop(u->stream);
	u->reading = false;
	u->wr_shut = true; /* nothing more from this session on it */
	SSL *ssl = u->ssl;
	u->ssl = NULL;
	hr_log(s, PROXY_LOG_DEBUG, "upstream connection kept for the next tunnel");
	upool_put(s->px, kept, ssl, s->host, s->port, (const struct sockaddr *)&s->keep_peer,
		  s->policy_gen);
}

static bool step_request_head(struct hr_session *s)
{
	struct hside *c = &s->side[CL];
	if (s->rs != RS_IDLE)
		return false;
	/* Whatever the server sent before this request (its TLS records
	 * decrypted first) would be taken for the response to it. */
	(void)fill(s, &s->side[UP]);
	if (s->closing)
		return false;
	if (s->side[UP].ifill > 0) {
		hr_fail(s, "upstream sent data without a request");
		return false;
	}
	if (c->ifill == 0) {
		if (c->eof) {
			keep_upstream(s);
			hr_finish(s);
		}
		return false;
	}
	/* A request may be answered by us (denials): take the next one only
	 * once the client has read what we queued for it, so a client that
	 * pipelines requests and never reads cannot grow our write queue. */
	if (!below_high_water(c))
		return false;
	if (s->px->policy_gen != s->policy_gen) {
		/* The tunnel was admitted under another policy: end it before the
		 * next request rather than judge that request half old, half new. */
		hr_log(s, PROXY_LOG_INFO, "policy reloaded: tunnel closed before the next request");
		hr_finish(s);
		return false;
	}
	struct http_head *h = malloc(sizeof(*h));
	if (h == NULL) {
		hr_fail(s, "out of memory");
		return false;
	}
	size_t len = c->ifill < PROXY_L7_MAX_HEAD_BYTES ? c->ifill : PROXY_L7_MAX_HEAD_BYTES;
	const char *why = NULL;
	enum http_head_result r = http_head_parse(c->ibuf, len, h, &why);
	bool progress = false;
	switch (r) {
	case HTTP_HEAD_OK:
		hr_handle_request(s, h);
		progress = true;
		break;
	case HTTP_HEAD_INCOMPLETE:
		if (len >= PROXY_L7_MAX_HEAD_BYTES) {
			hr_log(s, PROXY_LOG_INFO, "request head larger than %u bytes",
			       PROXY_L7_MAX_HEAD_BYTES);
			hr_answer(s, strdup(RESPONSE_431_BARE), strlen(RESPONSE_431_BARE), false);
		} else if (c->eof) {
			hr_fail(s, "client closed inside a request head");
		}
		break;
	case HTTP_HEAD_TOO_MANY:
		hr_log(s, PROXY_LOG_INFO, "too many request header fields");
		hr_answer(s, strdup(RESPONSE_431_BARE), strlen(RESPONSE_431_BARE), false);
		break;
	case HTTP_HEAD_BAD:
		hr_log(s, PROXY_LOG_INFO, "bad request head: %s", why ? why : "?");
		hr_answer(s, strdup(RESPONSE_400_BARE), strlen(RESPONSE_400_BARE), false);
		break;
	}
	free(h);
	return progress;
}

/* Move body bytes (or discard them). Returns true on progress. */
static bool step_request_body(struct hr_session *s)
{
	struct hside *c = &s->side[CL], *u = &s->side[UP];
	bool fwd = s->rq == RQ_BODY;
	if (c->ifill == 0) {
		if (c->eof)
			hr_fail(s, "client closed inside a request body");
		return false;
	}
	if (fwd && !below_high_water(u))
		return false;
	size_t take = c->ifill;
	bool done = false;
	if (s->rq_chunked) {
		ssize_t r = chunked_feed(&s->rq_chunk, c->ibuf, take);
		if (r < 0) {
			hr_log(s, PROXY_LOG_INFO, "invalid chunked request body: %s",
			       s->rq_chunk.error);
			hr_fail(s, NULL);
			return false;
		}
		take = (size_t)r;
		done = chunked_done(&s->rq_chunk);
	} else {
		if (take > s->rq_left)
			take = (size_t)s->rq_left;
		s->rq_left -= take;
		done = s->rq_left == 0;
	}
	if (fwd && !hr_side_write(s, u, c->ibuf, take))
		return false;
	hr_consume(c, take);
	if (done)
		s->rq = fwd ? RQ_WAIT : RQ_HEAD;
	return true;
}

/* ---- responses ---- */

static void response_done(struct hr_session *s)
{
	s->rs = RS_IDLE;
	if (s->rs_close || s->req_close) {
		keep_upstream(s); /* only when the close was the client's alone */
		hr_finish(s);
	}
}

/* False: the policy was reloaded and no longer allows the destination (the
 * tunnel is failing). */
static bool switch_to_raw(struct hr_session *s)
{
	if (s->policy_gen != s->px->policy_gen &&
	    (s->recheck_owner == NULL || !s->recheck_owner(s->owner))) {
		hr_fail(s, "policy reloaded: destination no longer allowed");
		return false;
	}
	s->policy_gen = s->px->policy_gen;
	s->mode = M_RAW;
	hr_log(s, PROXY_LOG_DEBUG, "upgraded: raw relay both ways (no HTTP parsing from here)");
	return true;
}

bool hr_is_raw(const struct hr_session *s)
{
	return s != NULL && s->mode == M_RAW && !s->closing && !s->detached;
}

/* How many of the n buffered bytes at p belong to the current response body
 * (all of them when it ends with the upstream's EOF); *done when they end
 * it. -1: an invalid chunked body (the tunnel is failing). */
static ssize_t response_body_take(struct hr_session *s, const char *p, size_t n, bool *done)
{
	*done = false;
	if (s->rs == RS_EOF)
		return (ssize_t)n;
	if (s->rs_chunked) {
		ssize_t r = chunked_feed(&s->rs_chunk, p, n);
		if (r < 0) {
			hr_log(s, PROXY_LOG_INFO, "invalid chunked response body: %s",
			       s->rs_chunk.error);
			hr_fail(s, NULL);
			return -1;
		}
		*done = chunked_done(&s->rs_chunk);
		return r;
	}
	size_t take = n > s->rs_left ? (size_t)s->rs_left : n;
	s->rs_left -= take;
	*done = s->rs_left == 0;
	return (ssize_t)take;
}

/* A final response's head: set up its body's framing. False: no body. */
static bool start_response_body(struct hr_session *s, const struct http_resp_head *h)
{
	s->rs_close = h->conn_close;
	if (s->req_is_head || h->status == 204 || h->status == 304)
		return false;
	s->rs_chunked = h->chunked;
	if (h->chunked) {
		chunked_init(&s->rs_chunk);
		s->rs = RS_BODY;
	} else if (h->has_content_length) {
		s->rs_left = h->content_length;
		s->rs = RS_BODY;
		return s->rs_left > 0;
	} else {
		s->rs = RS_EOF; /* delimited by the upstream closing */
	}
	return true;
}

/* A 101 ends HTTP on the tunnel for good: only to protocols the client
 * asked for, named in the one Upgrade field the 101 must carry (RFC 9110
 * 15.2.2). NULL: it may switch; else why not (the tunnel closes). */
static const char *bad_101(const struct hr_session *s, const struct http_resp_head *h)
{
	if (!s->req_upgrade)
		return "unsolicited 101 from upstream";
	if (h->n_upgrade != 1)
		return "101 from upstream without exactly one Upgrade field";
	struct http_slice asked = { s->req_upgrade_protos, s->req_upgrade_len };
	struct http_slice rest = h->upgrade, proto;
	bool any = false;
	while (http_list_next(&rest, &proto)) {
		if (!http_list_has(asked, proto))
			return "101 from upstream to a protocol the client did not ask for";
		any = true;
	}
	return any ? NULL : "101 from upstream with an empty Upgrade field";
}

static bool step_response_head(struct hr_session *s)
{
	struct hside *u = &s->side[UP], *c = &s->side[CL];
	if (u->ifill == 0) {
		if (u->eof)
			hr_fail(s, "upstream closed without a response");
		return false;
	}
	struct http_resp_head h;
	size_t len = u->ifill < PROXY_L7_MAX_HEAD_BYTES ? u->ifill : PROXY_L7_MAX_HEAD_BYTES;
	const char *why = NULL;
	enum http_resp_result r = http_resp_parse(u->ibuf, len, &h, &why);
	if (r == HTTP_RESP_INCOMPLETE) {
		if (len >= PROXY_L7_MAX_HEAD_BYTES)
			hr_fail(s, "upstream response head too large");
		else if (u->eof)
			hr_fail(s, "upstream closed inside a response head");
		return false;
	}
	if (r == HTTP_RESP_BAD) {
		hr_log(s, PROXY_LOG_INFO, "bad upstream response head: %s", why ? why : "?");
		hr_fail(s, NULL);
		return false;
	}
	if (h.status == 101) {
		const char *bad = bad_101(s, &h);
		if (bad != NULL) {
			hr_fail(s, bad);
			return false;
		}
		if (!switch_to_raw(s) || !hr_side_write(s, c, u->ibuf, h.head_len))
			return false;
		hr_consume(u, h.head_len);
		return true;
	}
	if (h.status < 200) { /* interim: the final response follows */
		if (!hr_side_write(s, c, u->ibuf, h.head_len))
			return false;
		hr_consume(u, h.head_len);
		return true;
	}
	/* The body bytes already here go with the head: one TLS record and
	 * one write for a small response. */
	bool done = !start_response_body(s, &h);
	ssize_t body = 0;
	if (!done && u->ifill > h.head_len && below_high_water(c))
		body = response_body_take(s, u->ibuf + h.head_len, u->ifill - h.head_len, &done);
	if (body < 0 || !hr_side_write(s, c, u->ibuf, h.head_len + (size_t)body))
		return false;
	hr_consume(u, h.head_len + (size_t)body);
	if (done)
		response_done(s);
	return true;
}

static bool step_response_body(struct hr_session *s)
{
	struct hside *u = &s->side[UP], *c = &s->side[CL];
	if (u->ifill == 0) {
		if (u->eof) {
			if (s->rs == RS_EOF) /* the body ends with the connection */
				finish(s, !u->truncated);
			else
				hr_fail(s, "upstream closed inside a response body");
		}
		return false;
	}
	if (!below_high_water(c))
		return false;
	bool done = false;
	ssize_t take = response_body_take(s, u->ibuf, u->ifill, &done);
	if (take < 0 || !hr_side_write(s, c, u->ibuf, (size_t)take))
		return false;
	hr_consume(u, (size_t)take);
	if (done)
		response_done(s);
	return true;
}

static bool step_http(struct hr_session *s)
{
	bool progress = false;
	switch (s->rq) {
	case RQ_HEAD:
		progress |= step_request_head(s);
		break;
	case RQ_BODY:
	case RQ_DISCARD:
		progress |= step_request_body(s);
		break;
	case RQ_WAIT:
		if (s->rs == RS_IDLE) {
			s->rq = RQ_HEAD;
			progress = true;
		}
		break;
	}
	if (s->closing || s->mode != M_HTTP)
		return progress;
	switch (s->rs) {
	case RS_IDLE: {
		struct hside *u = &s->side[UP];
		if (u->ifill > 0) {
			hr_fail(s, "upstream sent data without a request");
			return false;
		}
		if (u->eof && s->rq != RQ_DISCARD)
			hr_finish(s);
		break;
	}
	case RS_HEAD:
		progress |= step_response_head(s);
		break;
	case RS_BODY:
	case RS_EOF:
		progress |= step_response_body(s);
		break;
	}
	return progress;
}

/* ---- raw relay ---- */

static bool raw_dir(struct hr_session *s, struct hside *src, struct hside *dst)
{
	bool progress = false;
	if (src->ifill > 0 && below_high_water(dst) && !dst->wr_shut) {
		if (!hr_side_write(s, dst, src->ibuf, src->ifill))
			return false;
		src->ifill = 0;
		progress = true;
	}
	if (src->eof && src->ifill == 0 && !dst->wr_shut) {
		shut_write(s, dst, !src->truncated);
		progress = true;
	}
	return progress;
}

static bool step_raw(struct hr_session *s)
{
	bool progress = raw_dir(s, &s->side[CL], &s->side[UP]);
	if (!s->closing)
		progress |= raw_dir(s, &s->side[UP], &s->side[CL]);
	return progress;
}

/* ---- sniff and handshakes ---- */

static void on_timeout(uv_timer_t *t)
{
	struct hr_session *s = t->data;
	if (s->detached || s->closing)
		return;
	hr_fail(s, s->mode == M_SNIFF ? "no client bytes in time" : "TLS handshake timed out");
}

/* A TLS side keeps its record buffers (about 17 KiB each way) between
 * records. This timer, started by a read when it is not running, frees them
 * (tls_release_buffers) every PROXY_TLS_BUFFER_RELEASE_MS and stops once
 * both sides' are freed: a busy tunnel allocates them again about once per
 * period, an idle one holds none. A side with a partial record keeps them
 * and the timer runs on. */
static void on_idle_release(uv_timer_t *t)
{
	struct hr_session *s = t->data;
	if (s->detached || s->closing)
		return;
	bool cl = tls_release_buffers(s->side[CL].ssl);
	if (tls_release_buffers(s->side[UP].ssl) && cl)
		uv_timer_stop(t);
}

static void arm_idle_release(struct hr_session *s)
{
	if (uv_timer_start(s->timer, on_idle_release, PROXY_TLS_BUFFER_RELEASE_MS,
			   PROXY_TLS_BUFFER_RELEASE_MS) < 0)
		hr_log(s, PROXY_LOG_DEBUG, "idle timer not started: TLS buffers kept");
}

static void handshakes_complete(struct hr_session *s)
{
	uv_timer_stop(s->timer);
	arm_idle_release(s);
	s->mode = M_HTTP;
	const char *v = SSL_get_version(s->side[CL].ssl);
	hr_log(s, PROXY_LOG_DEBUG, "TLS intercepted (client %s%s, upstream %s)", v,
	       SSL_session_reused(s->side[CL].ssl) ? ", resumed" : "",
	       s->side[UP].ssl ? SSL_get_version(s->side[UP].ssl) : "plaintext");
}

static void drive_handshake(struct hr_session *s, struct hside *sd)
{
	int r = SSL_do_handshake(sd->ssl);
	if (flush_tls(sd) < 0) {
		hr_fail(s, "write failed");
		return;
	}
	if (r == 1) {
		sd->hs_done = true;
		if (s->side[CL].hs_done && (s->side[UP].hs_done || s->side[UP].ssl == NULL))
			handshakes_complete(s);
		return;
	}
	int e = SSL_get_error(sd->ssl, r);
	if (e == SSL_ERROR_WANT_READ) {
		ERR_clear_error();
		if (sd->tcp_eof)
			hr_fail(s, sd == &s->side[CL] ? "client closed during the TLS handshake"
						   : "upstream closed during the TLS handshake");
		return;
	}
	char why[300];
	if (sd == &s->side[UP] && SSL_get_verify_result(sd->ssl) != X509_V_OK) {
		snprintf(why, sizeof(why), "upstream certificate rejected: %s",
			 X509_verify_cert_error_string(SSL_get_verify_result(sd->ssl)));
		ERR_clear_error();
		hr_log(s, PROXY_LOG_WARN, "%s", why);
		hr_fail(s, NULL);
		return;
	}
	char ssl_why[256];
	tls_last_error(ssl_why, sizeof(ssl_why), "handshake failed");
	snprintf(why, sizeof(why), "TLS handshake with %s failed: %s",
		 sd == &s->side[CL] ? "the client" : "upstream", ssl_why);
	hr_fail(s, why);
}

static bool start_tls(struct hr_session *s)
{
	struct proxy_tls *t = s->px->tls;
	struct hside *c = &s->side[CL], *u = &s->side[UP];
	if (t == NULL) {
		hr_fail(s, "TLS interception unavailable");
		return false;
	}
	c->rbuf = malloc(PROXY_RELAY_READ_BYTES);
	c->ssl = c->rbuf ? tls_new_server(t, s->host) : NULL;
	if (!s->tool) { /* the tool broker is spoken to in plaintext */
		u->rbuf = malloc(PROXY_RELAY_READ_BYTES);
		if (u->ssl == NULL) /* else kept from an earlier tunnel, handshake done */
			u->ssl = c->ssl && u->rbuf ? tls_new_client(t, s->host, s->port) : NULL;
	}
	if (c->ssl == NULL || (!s->tool && (u->ssl == NULL || u->rbuf == NULL))) {
		char why[256];
		tls_last_error(why, sizeof(why), "cannot set up TLS");
		hr_fail(s, why);
		return false;
	}
	s->tls = true;
	s->mode = M_HANDSHAKE;
	if (BIO_write(SSL_get_rbio(c->ssl), c->ibuf, (int)c->ifill) != (int)c->ifill) {
		hr_fail(s, "out of memory");
		return false;
	}
	c->ifill = 0;
	if (uv_timer_start(s->timer, on_timeout, PROXY_TLS_HANDSHAKE_TIMEOUT_MS, 0) < 0) {
		hr_fail(s, "timer");
		return false;
	}
	/* The client's server flight first: it is what the client waits for.
	 * Upstream's ClientHello before it put the upstream server's handshake
	 * on the same two cores as the client's and cost ~300 us of p50 TTFB
	 * (bench/NOTES.md, P3). */
	drive_handshake(s, c);
	if (u->ssl != NULL && !u->hs_done && !s->closing)
		drive_handshake(s, u);
	return true;
}

static bool step_sniff(struct hr_session *s)
{
	struct hside *c = &s->side[CL];
	switch (tls_sniff((const unsigned char *)c->ibuf, c->ifill)) {
	case TLS_SNIFF_MORE:
		if (c->eof)
			hr_finish(s);
		return false;
	case TLS_SNIFF_TLS:
		return start_tls(s);
	case TLS_SNIFF_HTTP:
		if (s->upstream_reused) {
			hr_fail(s, "plaintext in a tunnel given a kept TLS upstream connection");
			return false;
		}
		uv_timer_stop(s->timer);
		if (s->l7) {
			s->mode = M_HTTP;
			hr_log(s, PROXY_LOG_DEBUG, "plaintext HTTP in the tunnel: L7 relay");
		} else if (!switch_to_raw(s)) {
			return false;
		}
		return true;
	case TLS_SNIFF_OTHER:
		break;
	}
	uv_timer_stop(s->timer);
	if (s->l7 || s->upstream_reused) {
		hr_fail(s, "neither TLS nor HTTP/1 on an endpoint with L7 rules");
		return false;
	}
	return switch_to_raw(s);
}

/* ---- driver ---- */

/* process() stopped at HR_MAX_STEPS with work left: go on from the next
 * loop iteration (writes that complete at once bring no callback that
 * would). The timer is the session's one; once the work is done it goes
 * back to releasing idle TLS buffers. */
static void on_more_steps(uv_timer_t *t)
{
	struct hr_session *s = t->data;
	if (s->detached || s->closing)
		return;
	process(s);
	if (!s->detached && !s->closing && s->tls && !uv_is_active((uv_handle_t *)t))
		arm_idle_release(s);
}

static void process(struct hr_session *s)
{
	bool progress = false;
	for (int i = 0; i < HR_MAX_STEPS && !s->closing && !s->detached; i++) {
		progress = false;
		switch (s->mode) {
		case M_SNIFF:
			progress = step_sniff(s);
			break;
		case M_HANDSHAKE:
			break;
		case M_HTTP:
			progress = step_http(s);
			break;
		case M_RAW:
			progress = step_raw(s);
			break;
		case M_ENDING:
			return;
		}
		if (s->closing || s->mode == M_ENDING)
			return;
		progress |= fill(s, &s->side[CL]);
		if (!s->closing)
			progress |= fill(s, &s->side[UP]);
		if (!progress)
			break;
	}
	if (progress && !s->closing && !s->detached && (s->mode == M_HTTP || s->mode == M_RAW) &&
	    uv_timer_start(s->timer, on_more_steps, 0, 0) < 0)
		hr_fail(s, "timer");
	if (!s->closing && !s->detached)
		update_reading(s);
	if (!s->closing && s->mode == M_RAW && s->side[CL].wr_shut && s->side[UP].wr_shut &&
	    s->shut_pending == 0)
		hr_fail(s, NULL);
}

static bool init_side(struct hr_session *s, struct hside *sd, uv_stream_t *stream)
{
	sd->s = s;
	sd->stream = stream;
	sd->ibuf = malloc(HR_IBUF_BYTES);
	return sd->ibuf != NULL;
}

struct hr_session *hr_start(const struct hr_params *p)
{
	struct hr_session *s = calloc(1, sizeof(*s));
	if (s == NULL) {
		SSL_free(p->upstream_ssl);
		return NULL;
	}
	s->side[UP].ssl = p->upstream_ssl; /* hr_free() frees it from here */
	s->side[UP].hs_done = s->upstream_reused = p->upstream_ssl != NULL;
	s->px = p->px;
	s->owner = p->owner;
	s->close_owner = p->close_owner;
	s->timer = p->timer;
	s->port = p->port;
	s->l7 = p->l7;
	s->policy_gen = p->policy_gen;
	s->recheck_owner = p->recheck_owner;
	s->allow_encoded_slash = p->allow_encoded_slash;
	snprintf(s->host, sizeof(s->host), "%s", p->host);
	if (p->src_ip != NULL)
		snprintf(s->src_ip, sizeof(s->src_ip), "%s", p->src_ip);
	s->src_port = p->src_port;
	if (p->rule_name != NULL && (s->rule_name = strdup(p->rule_name)) == NULL) {
		hr_free(s); /* frees the upstream SSL too */
		return NULL;
	}
	s->tool = p->tool;
	if (p->keep_peer != NULL && !p->tool) {
		size_t n = p->keep_peer->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
							       : sizeof(struct sockaddr_in);
		memcpy(&s->keep_peer, p->keep_peer, n);
		s->keepable = true;
	}
	if (p->tool_identity != NULL && (s->tool_identity = strdup(p->tool_identity)) == NULL) {
		hr_free(s);
		return NULL;
	}
	if (!init_side(s, &s->side[CL], (uv_stream_t *)p->client) || !init_side(s, &s->side[UP], p->upstream) ||
	    p->early_len > HR_IBUF_BYTES) {
		hr_free(s);
		return NULL;
	}
	memcpy(s->side[CL].ibuf, p->early, p->early_len);
	s->side[CL].ifill = p->early_len;
	s->mode = M_SNIFF;
	p->client->data = &s->side[CL];
	p->upstream->data = &s->side[UP];
	p->timer->data = s;
	/* The reading flags start false: the owner has stopped reading. */
	return s;
}

void hr_run(struct hr_session *s)
{
	if (uv_timer_start(s->timer, on_timeout, PROXY_TLS_PEEK_TIMEOUT_MS, 0) < 0) {
		hr_fail(s, "timer");
		return;
	}
	process(s);
}

void hr_detach(struct hr_session *s, void *owner)
{
	if (s == NULL || s->detached)
		return;
	s->detached = true;
	s->closing = true;
	for (int i = 0; i < 2; i++) {
		if (s->side[i].stream != NULL)
			s->side[i].stream->data = owner;
	}
	s->timer->data = owner;
}

void hr_free(struct hr_session *s)
{
	if (s == NULL)
		return;
	for (int i = 0; i < 2; i++) {
		/* An unclean end must not cost the client its session (resumption);
		 * a failed handshake or fatal alert has marked it unusable anyway. */
		if (s->side[i].ssl != NULL && s->side[i].hs_done)
			SSL_set_shutdown(s->side[i].ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
		if (i == UP && s->side[i].ssl != NULL && s->side[i].hs_done)
			tls_keep_client_session(s->px->tls, s->side[i].ssl, s->host, s->port);
		SSL_free(s->side[i].ssl);
		free(s->side[i].ibuf);
		free(s->side[i].rbuf);
	}
	free(s->rule_name);
	free(s->tool_identity);
	free(s);
}
