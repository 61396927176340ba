/* dns.c - the policy DNS responder. See dns.h.
 *
 * Ownership: the responder owns its UDP handle, its TCP listener, every
 * DNS-over-TCP connection (two handles each) and every lookup in flight. A
 * lookup whose TCP connection closed meanwhile drops its answer. The
 * responder is freed when it is stopping and the last of those is gone.
 */
#include "proxy/dns.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "policy/policy.h"
#include "proxy/audit.h"
#include "proxy/dns_map.h"
#include "proxy/proxy_int.h"
#include "proxy/reserved.h"

#define DNS_TCP_BUF (2u + DNS_MSG_MAX)

struct dns_tcp;

struct dns_pending {
	struct dns_responder *d;
	struct dns_pending *prev, *next;
	uv_getaddrinfo_t req;
	struct dns_query q;                       /* q.question points at question[] */
	uint8_t question[DNS_WIRE_NAME_MAX + 4];
	struct sockaddr_storage peer;             /* UDP client */
	struct dns_tcp *tcp;                      /* TCP client, NULL once it closed */
	bool via_tcp;
	char *rule_name;
};

struct dns_tcp {
	struct dns_responder *d;
	struct dns_tcp *prev, *next;
	uv_tcp_t h;
	uv_timer_t idle;
	unsigned open_handles;
	bool closing;
	struct dns_pending *pending;
	struct sockaddr_storage peer;
	uint8_t buf[DNS_TCP_BUF];
	size_t fill;
};

struct dns_responder {
	struct proxy *px;
	struct dns_map *map;
	char hostname[DNS_NAME_MAX + 1];
	uv_udp_t udp;
	uv_tcp_t listener;
	unsigned open_handles;
	size_t n_pending, n_tcp;
	struct dns_pending *pendings;
	struct dns_tcp *tcps;
	bool stopping;
	void (*stopped)(void *arg);
	void *stopped_arg;
	uint8_t rbuf[DNS_MSG_MAX];
};

/* ---- decision (pure) ---- */

const struct policy_rule *dns_name_allowed(const struct policy *p, const char *name)
{
	if (p == NULL || name == NULL || name[0] == '\0')
		return NULL;
	for (size_t r = 0; r < p->n_rules; r++) {
		const struct policy_rule *rule = &p->rules[r];
		for (size_t e = 0; e < rule->n_endpoints; e++) {
			const char *host = rule->endpoints[e].host;
			if (host != NULL && host[0] != '\0' && policy_host_match(host, name))
				return rule;
		}
	}
	return NULL;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && strcmp(s + n - m, suffix) == 0;
}

static bool is_local_name(const char *name, const char *hostname)
{
	return strcmp(name, "localhost") == 0 || ends_with(name, ".localhost") ||
	       (hostname != NULL && hostname[0] != '\0' && strcmp(name, hostname) == 0);
}

void dns_decide(const struct policy *p, const char *hostname, enum dns_parse parsed,
		const struct dns_query *q, struct dns_decision *out)
{
	memset(out, 0, sizeof(*out));
	out->action = DNS_ACT_REPLY;
	switch (parsed) {
	case DNS_PARSE_DROP:
		out->action = DNS_ACT_DROP;
		return;
	case DNS_PARSE_FORMERR:
		out->rcode = DNS_RCODE_FORMERR;
		return;
	case DNS_PARSE_NOTIMP:
		out->rcode = DNS_RCODE_NOTIMP;
		return;
	case DNS_PARSE_OK:
		break;
	}
	if (q->qclass != DNS_CLASS_IN) {
		out->rcode = DNS_RCODE_REFUSED;
		return;
	}
	if (q->name_ok && is_local_name(q->name, hostname)) {
		out->action = DNS_ACT_LOCAL;
		return;
	}
	out->rule = q->name_ok ? dns_name_allowed(p, q->name) : NULL;
	if (out->rule == NULL) {
		out->rcode = DNS_RCODE_NXDOMAIN;
		out->denied = true;
		snprintf(out->reason, sizeof(out->reason), "%s",
			 !q->name_ok ? "DNS name has characters no policy host can match"
				     : "DNS name not allowed by policy (no endpoint host matches)");
		return;
	}
	if (q->qtype == DNS_TYPE_A) {
		out->action = DNS_ACT_RESOLVE;
		return;
	}
	out->rcode = DNS_RCODE_NOERROR; /* NODATA: only A records are given */
}

/* ---- lifetime ---- */

static void maybe_finish(struct dns_responder *d)
{
	if (!d->stopping || d->open_handles > 0 || d->n_pending > 0)
		return;
	void (*stopped)(void *) = d->stopped;
	void *arg = d->stopped_arg;
	free(d);
	if (stopped != NULL)
		stopped(arg);
}

static void on_own_handle_closed(uv_handle_t *h)
{
	struct dns_responder *d = h->data;
	d->open_handles--;
	maybe_finish(d);
}

static void tcp_maybe_free(struct dns_tcp *t)
{
	if (t->open_handles > 0)
		return;
	struct dns_responder *d = t->d;
	if (t->prev != NULL)
		t->prev->next = t->next;
	else
		d->tcps = t->next;
	if (t->next != NULL)
		t->next->prev = t->prev;
	d->n_tcp--;
	free(t);
	d->open_handles--;
	maybe_finish(d);
}

static void on_tcp_handle_closed(uv_handle_t *h)
{
	struct dns_tcp *t = h->data;
	t->open_handles--;
	tcp_maybe_free(t);
}

static void tcp_close(struct dns_tcp *t)
{
	if (t->closing)
		return;
	t->closing = true;
	if (t->pending != NULL) {
		t->pending->tcp = NULL;
		t->pending = NULL;
	}
	uv_close((uv_handle_t *)&t->h, on_tcp_handle_closed);
	uv_close((uv_handle_t *)&t->idle, on_tcp_handle_closed);
}

static void pending_free(struct dns_pending *pd)
{
	struct dns_responder *d = pd->d;
	if (pd->prev != NULL)
		pd->prev->next = pd->next;
	else
		d->pendings = pd->next;
	if (pd->next != NULL)
		pd->next->prev = pd->prev;
	if (pd->tcp != NULL)
		pd->tcp->pending = NULL;
	free(pd->rule_name);
	free(pd);
	d->n_pending--;
}

/* ---- audit ---- */

static const char *qtype_name(uint16_t t)
{
	switch (t) {
	case DNS_TYPE_A: return "A";
	case DNS_TYPE_AAAA: return "AAAA";
	case 5: return "CNAME";
	case 12: return "PTR";
	case 15: return "MX";
	case 16: return "TXT";
	case 33: return "SRV";
	case 65: return "HTTPS";
	default: return "other";
	}
}

static void dns_audit(struct dns_responder *d, const struct dns_query *q,
		      const struct sockaddr_storage *peer, bool allow, const char *rule_name,
		      const char *reason, const char *dst_ip)
{
	char src[INET6_ADDRSTRLEN], msg[384];
	uint16_t sport;
	/* src "" (src_ip null) when the address cannot be told */
	(void)proxy_addr_text(peer, src, sizeof(src), &sport);
	snprintf(msg, sizeof(msg), "DNS %s %s %s", qtype_name(q->qtype), q->name,
		 allow ? "allowed" : "denied");
	struct audit_event e = {
		.allow = allow,
		.method = "DNS",
		.host = q->name,
		.port = 53,
		.dst_ip = dst_ip,
		.rule_name = rule_name,
		.rule_type = "opa",
		.reason = reason,
		.message = msg,
		.src_ip = src[0] ? src : NULL,
		.src_port = sport,
		.time_ms = audit_now_ms(),
		.path = "dns",
	};
	char *line = audit_event_json(&e);
	if (line == NULL) {
		px_log(d->px, PROXY_LOG_ERROR, "dns: audit event for %s could not be built", q->name);
		return;
	}
	px_audit(d->px, line);
	free(line);
}

/* ---- replies ---- */

static void on_tcp_written(uv_write_t *req, int status);
static void tcp_next(struct dns_tcp *t);

struct tcp_write {
	uv_write_t req;
	struct dns_tcp *t;
	uint8_t data[2 + DNS_REPLY_MAX];
};

static void send_reply(struct dns_responder *d, const struct sockaddr_storage *peer,
		       struct dns_tcp *t, const uint8_t *msg, size_t len)
{
	if (len == 0 || d->stopping || (t != NULL && t->closing))
		return;
	if (t == NULL) {
		uv_buf_t b = uv_buf_init((char *)msg, (unsigned)len);
		int rc = uv_udp_try_send(&d->udp, &b, 1, (const struct sockaddr *)peer);
		if (rc < 0)
			px_log(d->px, PROXY_LOG_DEBUG, "dns: UDP reply not sent: %s", uv_strerror(rc));
		return;
	}
	struct tcp_write *w = malloc(sizeof(*w));
	if (w == NULL || len > DNS_REPLY_MAX) {
		free(w);
		tcp_close(t);
		return;
	}
	w->t = t;
	w->req.data = w;
	w->data[0] = (uint8_t)(len >> 8);
	w->data[1] = (uint8_t)len;
	memcpy(w->data + 2, msg, len);
	uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)(len + 2));
	if (uv_write(&w->req, (uv_stream_t *)&t->h, &b, 1, on_tcp_written) < 0) {
		free(w);
		tcp_close(t);
	}
}

static void reply_rcode(struct dns_responder *d, const struct dns_query *q,
			const struct sockaddr_storage *peer, struct dns_tcp *t, enum dns_rcode rc)
{
	uint8_t out[DNS_REPLY_MAX];
	send_reply(d, peer, t, out, dns_build_reply(q, rc, NULL, 0, 0, out, sizeof(out)));
}

static void reply_local(struct dns_responder *d, const struct dns_query *q,
			const struct sockaddr_storage *peer, struct dns_tcp *t)
{
	static const uint8_t v4[4] = { 127, 0, 0, 1 };
	static const uint8_t v6[16] = { [15] = 1 };
	uint8_t out[DNS_REPLY_MAX];
	size_t len;
	if (q->qtype == DNS_TYPE_A)
		len = dns_build_reply(q, DNS_RCODE_NOERROR, v4, 4, 1, out, sizeof(out));
	else if (q->qtype == DNS_TYPE_AAAA)
		len = dns_build_reply(q, DNS_RCODE_NOERROR, v6, 16, 1, out, sizeof(out));
	else
		len = dns_build_reply(q, DNS_RCODE_NOERROR, NULL, 0, 0, out, sizeof(out));
	send_reply(d, peer, t, out, len);
}

/* The host alias and the tool host are the proxy's own: they resolve to
 * its listen address (routed to the capture listener like any other), and
 * the name a flow to it carries decides what it reaches. */
static bool reply_reserved(struct dns_responder *d, const struct dns_query *q,
			   const struct dns_decision *dec, const struct sockaddr_storage *peer,
			   struct dns_tcp *t)
{
	struct proxy *px = d->px;
	if (!reserved_is_alias(q->name) && !reserved_is_tool_host(px, q->name))
		return false;
	uint8_t out[DNS_REPLY_MAX];
	if (!px->has_listen_v4) {
		reply_rcode(d, q, peer, t, DNS_RCODE_NXDOMAIN);
		return true;
	}
	char ip[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, px->listen_v4, ip, sizeof(ip));
	dns_map_add(d->map, AF_INET, px->listen_v4, q->name);
	dns_audit(d, q, peer, true, dec->rule ? dec->rule->name : NULL, NULL, ip);
	send_reply(d, peer, t, out,
		   dns_build_reply(q, DNS_RCODE_NOERROR, px->listen_v4, 4, 1, out, sizeof(out)));
	return true;
}

/* ---- lookups ---- */

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	struct dns_pending *pd = req->data;
	struct dns_responder *d = pd->d;
	struct dns_tcp *t = pd->tcp;
	uint8_t addrs[DNS_MAX_ANSWERS * 4];
	size_t n = 0;
	char first[INET_ADDRSTRLEN] = "";

	for (struct addrinfo *ai = res; status == 0 && ai != NULL; ai = ai->ai_next) {
		if (ai->ai_family != AF_INET || n >= DNS_MAX_ANSWERS)
			continue;
		const uint8_t *a = (const uint8_t *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr;
		bool dup = false;
		for (size_t i = 0; i < n && !dup; i++)
			dup = memcmp(addrs + 4 * i, a, 4) == 0;
		if (!dup)
			memcpy(addrs + 4 * n++, a, 4);
	}
	uv_freeaddrinfo(res);
	if (status == UV_ECANCELED || d->stopping) {
		pending_free(pd);
		maybe_finish(d);
		return;
	}
	for (size_t i = 0; i < n; i++)
		dns_map_add(d->map, AF_INET, addrs + 4 * i, pd->q.name);
	if (n > 0)
		inet_ntop(AF_INET, addrs, first, sizeof(first));
	enum dns_rcode rc = DNS_RCODE_NOERROR;
	if (status == UV_EAI_NONAME || status == UV_EAI_NODATA)
		rc = n == 0 ? DNS_RCODE_NXDOMAIN : rc;
	else if (status < 0)
		rc = DNS_RCODE_SERVFAIL;
	dns_audit(d, &pd->q, &pd->peer, true, pd->rule_name,
		  status < 0 ? uv_strerror(status) : NULL, first[0] ? first : NULL);
	uint8_t out[DNS_REPLY_MAX];
	size_t len = dns_build_reply(&pd->q, rc, addrs, 4, n, out, sizeof(out));
	struct sockaddr_storage peer = pd->peer;
	bool answer = t != NULL || !pd->via_tcp; /* its TCP connection may be gone */
	pending_free(pd);
	if (answer)
		send_reply(d, &peer, t, out, len);
}

static void start_lookup(struct dns_responder *d, const struct dns_query *q,
			 const struct dns_decision *dec, const struct sockaddr_storage *peer,
			 struct dns_tcp *t)
{
	if (d->n_pending >= PROXY_DNS_MAX_PENDING) {
		px_log(d->px, PROXY_LOG_WARN, "dns: %u lookups in flight; SERVFAIL for %s",
		       PROXY_DNS_MAX_PENDING, q->name);
		reply_rcode(d, q, peer, t, DNS_RCODE_SERVFAIL);
		return;
	}
	struct dns_pending *pd = calloc(1, sizeof(*pd));
	if (pd == NULL || (dec->rule->name != NULL &&
			   (pd->rule_name = strdup(dec->rule->name)) == NULL)) {
		free(pd);
		reply_rcode(d, q, peer, t, DNS_RCODE_SERVFAIL);
		return;
	}
	pd->d = d;
	pd->q = *q;
	memcpy(pd->question, q->question, q->question_len);
	pd->q.question = pd->question;
	pd->peer = *peer;
	pd->tcp = t;
	pd->via_tcp = t != NULL;
	pd->req.data = pd;
	struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM };
	int rc = uv_getaddrinfo(d->px->loop, &pd->req, on_resolved, pd->q.name, NULL, &hints);
	if (rc < 0) {
		free(pd->rule_name);
		free(pd);
		reply_rcode(d, q, peer, t, DNS_RCODE_SERVFAIL);
		return;
	}
	pd->next = d->pendings;
	if (d->pendings != NULL)
		d->pendings->prev = pd;
	d->pendings = pd;
	d->n_pending++;
	if (t != NULL)
		t->pending = pd;
}

/* One query from peer (UDP) or t (TCP). */
static void handle_query(struct dns_responder *d, const uint8_t *msg, size_t len,
			 const struct sockaddr_storage *peer, struct dns_tcp *t)
{
	struct dns_query q;
	struct dns_decision dec;
	enum dns_parse parsed = dns_parse_query(msg, len, &q);
	dns_decide(d->px->policy, d->hostname, parsed, &q, &dec);
	switch (dec.action) {
	case DNS_ACT_DROP:
		if (t != NULL)
			tcp_close(t);
		return;
	case DNS_ACT_LOCAL:
		reply_local(d, &q, peer, t);
		return;
	case DNS_ACT_RESOLVE:
		if (!reply_reserved(d, &q, &dec, peer, t))
			start_lookup(d, &q, &dec, peer, t);
		return;
	case DNS_ACT_REPLY:
		break;
	}
	if (dec.denied) {
		px_log(d->px, PROXY_LOG_INFO, "dns: %s %s denied: %s", qtype_name(q.qtype), q.name,
		       dec.reason);
		dns_audit(d, &q, peer, false, NULL, dec.reason, NULL);
	}
	reply_rcode(d, &q, peer, t, dec.rcode);
}

/* ---- UDP ---- */

static void udp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct dns_responder *d = h->data;
	*buf = uv_buf_init((char *)d->rbuf, sizeof(d->rbuf));
}

static void on_udp_read(uv_udp_t *h, ssize_t n, const uv_buf_t *buf, const struct sockaddr *addr,
			unsigned flags)
{
	struct dns_responder *d = h->data;
	if (n <= 0 || addr == NULL || d->stopping || (flags & UV_UDP_PARTIAL))
		return;
	struct sockaddr_storage peer;
	memset(&peer, 0, sizeof(peer));
	memcpy(&peer, addr, addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
							 : sizeof(struct sockaddr_in));
	handle_query(d, (const uint8_t *)buf->base, (size_t)n, &peer, NULL);
}

/* ---- TCP ---- */

static void on_tcp_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

static void tcp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct dns_tcp *t = h->data;
	*buf = uv_buf_init((char *)t->buf + t->fill, (unsigned)(sizeof(t->buf) - t->fill));
}

static void on_idle(uv_timer_t *timer)
{
	tcp_close(timer->data);
}

/* Answer the next buffered message, or read more. */
static void tcp_next(struct dns_tcp *t)
{
	if (t->closing)
		return;
	if (t->fill >= 2) {
		size_t mlen = ((size_t)t->buf[0] << 8) | t->buf[1];
		if (mlen == 0 || mlen > DNS_MSG_MAX) {
			tcp_close(t);
			return;
		}
		if (t->fill >= 2 + mlen) {
			uint8_t msg[DNS_MSG_MAX];
			memcpy(msg, t->buf + 2, mlen);
			t->fill -= 2 + mlen;
			memmove(t->buf, t->buf + 2 + mlen, t->fill);
			uv_read_stop((uv_stream_t *)&t->h);
			if (uv_timer_start(&t->idle, on_idle, PROXY_DNS_TCP_IDLE_MS, 0) < 0) {
				tcp_close(t);
				return;
			}
			handle_query(t->d, msg, mlen, &t->peer, t);
			return;
		}
	}
	if (uv_read_start((uv_stream_t *)&t->h, tcp_alloc, on_tcp_read) < 0)
		tcp_close(t);
}

static void on_tcp_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct dns_tcp *t = s->data;
	if (n == 0 || t->closing)
		return;
	if (n < 0) {
		tcp_close(t);
		return;
	}
	t->fill += (size_t)n;
	tcp_next(t);
}

static void on_tcp_written(uv_write_t *req, int status)
{
	struct tcp_write *w = req->data;
	struct dns_tcp *t = w->t;
	free(w);
	if (t->closing)
		return;
	if (status < 0)
		tcp_close(t);
	else
		tcp_next(t);
}

static void on_tcp_connection(uv_stream_t *server, int status)
{
	struct dns_responder *d = server->data;
	if (status < 0 || d->stopping)
		return;
	struct dns_tcp *t = calloc(1, sizeof(*t));
	if (t == NULL || uv_tcp_init(d->px->loop, &t->h) < 0) {
		free(t);
		return; /* the connection stays in the backlog until the next try */
	}
	t->d = d;
	t->h.data = t;
	t->open_handles = 1;
	d->open_handles++;
	d->n_tcp++;
	t->next = d->tcps;
	if (d->tcps != NULL)
		d->tcps->prev = t;
	d->tcps = t;
	int rc = uv_timer_init(d->px->loop, &t->idle);
	if (rc < 0) {
		uv_close((uv_handle_t *)&t->h, on_tcp_handle_closed);
		t->closing = true;
		return;
	}
	t->idle.data = t;
	t->open_handles++;
	int plen = sizeof(t->peer);
	if (uv_accept(server, (uv_stream_t *)&t->h) < 0 || d->n_tcp > PROXY_DNS_MAX_TCP ||
	    uv_tcp_getpeername(&t->h, (struct sockaddr *)&t->peer, &plen) < 0 ||
	    uv_timer_start(&t->idle, on_idle, PROXY_DNS_TCP_IDLE_MS, 0) < 0) {
		tcp_close(t);
		return;
	}
	tcp_next(t);
}

/* ---- start / stop ---- */

static int open_handles(struct dns_responder *d, int udp_fd, int tcp_fd, char *err,
			size_t errlen)
{
	int rc = uv_udp_init(d->px->loop, &d->udp);
	if (rc < 0)
		goto fail;
	d->udp.data = d;
	d->open_handles++;
	rc = uv_udp_open(&d->udp, udp_fd);
	if (rc < 0)
		goto fail_tcp_fd;
	/* uv_udp_open() turns SO_REUSEADDR on, and Linux lets any other UDP
	 * socket that sets it share the port, whoever owns it: a sandboxed
	 * process would receive the sandbox's DNS queries. Off again. */
	int off = 0;
	if (setsockopt(udp_fd, SOL_SOCKET, SO_REUSEADDR, &off, sizeof(off)) != 0) {
		rc = uv_translate_sys_error(errno);
		udp_fd = -1; /* the handle owns it now */
		goto fail_tcp_fd;
	}
	udp_fd = -1;
	rc = uv_tcp_init(d->px->loop, &d->listener);
	if (rc < 0)
		goto fail_tcp_fd;
	d->listener.data = d;
	d->open_handles++;
	rc = uv_tcp_open(&d->listener, tcp_fd);
	if (rc < 0)
		goto fail_tcp_fd;
	tcp_fd = -1;
	rc = uv_listen((uv_stream_t *)&d->listener, SOMAXCONN, on_tcp_connection);
	if (rc == 0)
		rc = uv_udp_recv_start(&d->udp, udp_alloc, on_udp_read);
	if (rc == 0)
		return 0;
	goto fail;
fail_tcp_fd:
	if (tcp_fd >= 0)
		close(tcp_fd);
	tcp_fd = -1;
fail:
	if (udp_fd >= 0)
		close(udp_fd);
	if (tcp_fd >= 0)
		close(tcp_fd);
	snprintf(err, errlen, "dns responder: libuv: %s", uv_strerror(rc));
	return -1;
}

static void set_hostname(struct dns_responder *d, const char *hostname)
{
	char buf[256] = "";
	if (hostname == NULL) {
		if (gethostname(buf, sizeof(buf) - 1) != 0)
			buf[0] = '\0';
		hostname = buf;
	}
	size_t n = strlen(hostname);
	if (n > 0 && hostname[n - 1] == '.')
		n--;
	if (n > DNS_NAME_MAX)
		return;
	for (size_t i = 0; i < n; i++) {
		char c = hostname[i];
		d->hostname[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
	}
	d->hostname[n] = '\0';
}

struct dns_responder *dns_responder_start(struct proxy *px, int udp_fd, int tcp_fd,
					  struct dns_map *map, const char *hostname,
					  void (*stopped)(void *arg), void *arg,
					  char *err, size_t errlen)
{
	struct dns_responder *d = calloc(1, sizeof(*d));
	if (d == NULL) {
		close(udp_fd);
		close(tcp_fd);
		snprintf(err, errlen, "dns responder: out of memory");
		return NULL;
	}
	d->px = px;
	d->map = map;
	d->stopped = stopped;
	d->stopped_arg = arg;
	set_hostname(d, hostname);
	if (open_handles(d, udp_fd, tcp_fd, err, errlen) != 0) {
		d->stopped = NULL; /* a failed start reports nothing; it frees itself */
		dns_responder_stop(d);
		return NULL;
	}
	return d;
}

void dns_responder_stop(struct dns_responder *d)
{
	if (d == NULL || d->stopping)
		return;
	d->stopping = true;
	for (struct dns_tcp *t = d->tcps; t != NULL; t = t->next)
		tcp_close(t);
	for (struct dns_pending *pd = d->pendings; pd != NULL; pd = pd->next)
		uv_cancel((uv_req_t *)&pd->req); /* a running lookup still calls back */
	if (d->udp.data != NULL)
		uv_close((uv_handle_t *)&d->udp, on_own_handle_closed);
	if (d->listener.data != NULL)
		uv_close((uv_handle_t *)&d->listener, on_own_handle_closed);
	maybe_finish(d);
}
