/* http_relay_req.c - one request inside an intercepted tunnel: authority
 * check, canonical target, L7 policy, credential placeholders, the head
 * sent upstream, and the answers the proxy gives itself. */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "policy/policy.h"
#include "proxy/audit.h"
#include "proxy/canon.h"
#include "proxy/cred.h"
#include "proxy/http_relay_int.h"
#include "proxy/reserved.h"
#include "proxy/proxy_int.h"
#include "proxy/strbuf.h"
#include "proxy/response.h"

/* ---- audit ---- */

void hr_audit_request(struct hr_session *s, bool allow, const char *method,
			  const char *path, const char *reason, const char *what)
{
	char msg[600];
	snprintf(msg, sizeof(msg), "%s %s http%s://%s:%u%s", method, what, s->tls ? "s" : "",
		 s->host, (unsigned)s->port, path);
	struct audit_event e = {
		.allow = allow,
		.method = method,
		.host = s->host,
		.port = s->port,
		.rule_name = s->rule_name,
		.rule_type = s->tool ? "tool" : "l7",
		.url_path = path && path[0] ? path : NULL,
		.reason = reason,
		.message = msg,
		.src_ip = s->src_ip[0] ? s->src_ip : NULL,
		.src_port = s->src_port,
		.time_ms = audit_now_ms(),
	};
	char *line = audit_event_json(&e);
	if (line == NULL) {
		hr_log(s, PROXY_LOG_ERROR, "audit event could not be built");
		return;
	}
	px_audit(s->px, line);
	free(line);
}


static void copy_slice(char *dst, size_t cap, struct http_slice sl)
{
	size_t n = sl.len < cap - 1 ? sl.len : cap - 1;
	memcpy(dst, sl.p, n);
	dst[n] = '\0';
}

/* Answer a request ourselves. keep: the tunnel stays usable. */
void hr_answer(struct hr_session *s, char *resp, size_t len, bool keep)
{
	if (resp == NULL) {
		hr_fail(s, "out of memory");
		return;
	}
	bool ok = hr_side_write(s, &s->side[CL], resp, len);
	free(resp);
	if (ok && !keep)
		hr_finish(s);
}

/* Our answer to the current request: to a HEAD, the head alone (its
 * Content-Length may stay the body's, RFC 9110 9.3.2), or a keep-alive
 * client would read the body as the next response. */
static void answer_request(struct hr_session *s, char *resp, size_t len, bool keep)
{
	const char *end = resp != NULL && s->req_is_head ? memmem(resp, len, "\r\n\r\n", 4) : NULL;
	if (end != NULL)
		len = (size_t)(end - resp) + 4;
	hr_answer(s, resp, len, keep);
}

static void answer_error(struct hr_session *s, int status, const char *error, const char *detail)
{
	size_t len = 0;
	char *resp = response_json_error(status, error, detail, &len);
	answer_request(s, resp, len, false);
}

/* The origin-form part of the request-target (absolute-form: after the
 * authority). Returns false when the target is not usable. */
static bool origin_form(struct http_slice t, struct http_slice *auth, struct http_slice *out)
{
	auth->p = NULL;
	auth->len = 0;
	if (t.len > 0 && t.p[0] == '/') {
		*out = t;
		return true;
	}
	const char *sep = NULL;
	if (t.len > 8 && strncasecmp(t.p, "https://", 8) == 0)
		sep = t.p + 8;
	else if (t.len > 7 && strncasecmp(t.p, "http://", 7) == 0)
		sep = t.p + 7;
	if (sep == NULL)
		return false;
	const char *end = t.p + t.len;
	const char *slash = memchr(sep, '/', (size_t)(end - sep));
	const char *q = memchr(sep, '?', (size_t)(end - sep));
	const char *stop = slash != NULL ? slash : end;
	if (q != NULL && q < stop)
		stop = q;
	auth->p = sep;
	auth->len = (size_t)(stop - sep);
	if (slash == NULL || (q != NULL && q < slash))
		return false; /* "http://h?x": rare, refused rather than guessed */
	out->p = slash;
	out->len = (size_t)(end - slash);
	return true;
}

/* Does the request ask for an upgrade? Its protocols (every Upgrade line)
 * are kept for checking the 101. A list too long to keep does not count as
 * asking: a 101 to it closes the tunnel. */
static bool note_upgrade(struct hr_session *s, const struct http_head *h)
{
	s->req_upgrade_len = 0;
	if (!http_head_has_token(h, "connection", "upgrade"))
		return false;
	bool found = false;
	for (size_t i = 0; i < h->n_headers; i++) {
		const struct http_header *hd = &h->headers[i];
		if (!http_slice_eq_nocase(hd->name, "upgrade"))
			continue;
		size_t sep = s->req_upgrade_len > 0 ? 1 : 0;
		if (hd->value.len + sep > sizeof(s->req_upgrade_protos) - s->req_upgrade_len) {
			s->req_upgrade_len = 0;
			return false;
		}
		if (sep)
			s->req_upgrade_protos[s->req_upgrade_len++] = ',';
		memcpy(s->req_upgrade_protos + s->req_upgrade_len, hd->value.p, hd->value.len);
		s->req_upgrade_len += hd->value.len;
		found = true;
	}
	return found;
}

#define HR_CRED_BUF_BYTES (4u * CRED_MAX_VALUE_BYTES + 1024u)

/* The scratch buffer for resolved placeholders, allocated by the first
 * placeholder of a request (most requests have none) and wiped when freed. */
static char *cred_scratch(char **tmp)
{
	if (*tmp == NULL)
		*tmp = malloc(HR_CRED_BUF_BYTES);
	return *tmp;
}

static void cred_scratch_free(char *tmp)
{
	if (tmp == NULL)
		return;
	OPENSSL_cleanse(tmp, HR_CRED_BUF_BYTES);
	free(tmp);
}

/* A value with placeholders resolved into *tmp (allocated on first use):
 * CRED_NO_PLACEHOLDER when there is none, CRED_TOO_LONG without memory. */
static int resolve_target(const struct cred_store *cs, const char *host, const char *target,
			  char **tmp, size_t *n)
{
	size_t len = strlen(target);
	if (!cred_contains_placeholder(target, len))
		return CRED_NO_PLACEHOLDER;
	if (cred_scratch(tmp) == NULL)
		return CRED_TOO_LONG;
	return cred_rewrite_target(cs, host, target, len, *tmp, HR_CRED_BUF_BYTES, n);
}

static int resolve_header(const struct cred_store *cs, const char *host,
			  const struct http_header *hd, char **tmp, size_t *n)
{
	if (!cred_contains_placeholder(hd->value.p, hd->value.len))
		return CRED_NO_PLACEHOLDER;
	if (cred_scratch(tmp) == NULL)
		return CRED_TOO_LONG;
	char name[64];
	copy_slice(name, sizeof(name), hd->name);
	return cred_rewrite_header(cs, host, name, hd->value.p, hd->value.len, *tmp,
				   HR_CRED_BUF_BYTES, n);
}

static void refuse_placeholder(struct hr_session *s, const char *method, const char *path,
			       const char *error, const char *why)
{
	char detail[300];
	snprintf(detail, sizeof(detail), "%s %s: credential placeholder refused: %s", method, path,
		 why);
	hr_log(s, PROXY_LOG_WARN, "%s", detail);
	hr_audit_request(s, false, method, path, detail, "denied");
	answer_error(s, 403, error, detail);
}

/* Refuse a request whose placeholders cannot be resolved here. */
static void refuse_credentials(struct hr_session *s, const char *method, const char *path,
			       int r)
{
	refuse_placeholder(s, method, path,
			   r == CRED_OUT_OF_SCOPE ? "credential_endpoint_mismatch"
						  : "credential_unavailable",
			   cred_result_str(r));
}

static bool has_placeholder(const struct http_head *h, const char *target)
{
	if (cred_contains_placeholder(target, strlen(target)))
		return true;
	for (size_t i = 0; i < h->n_headers; i++)
		if (cred_contains_placeholder(h->headers[i].value.p, h->headers[i].value.len))
			return true;
	return false;
}

/* The request's only Connection line says just `close`: it is about the
 * client's connection; the upstream one need not end with it. */
static bool lone_connection_close(const struct http_head *h)
{
	const struct http_header *found = NULL;
	for (size_t i = 0; i < h->n_headers; i++) {
		if (!http_slice_eq_nocase(h->headers[i].name, "connection"))
			continue;
		if (found != NULL)
			return false;
		found = &h->headers[i];
	}
	return found != NULL && http_slice_eq_nocase(found->value, "close");
}

/* Build and send the upstream head: request line with the canonical
 * target (placeholders resolved), the client's headers (placeholders
 * resolved) unchanged otherwise. False: refused or failed (handled). */
static bool send_request_head(struct hr_session *s, const struct http_head *h,
			      const char *method, const char *target, const char *log_path)
{
	if (s->side[UP].ssl == NULL && has_placeholder(h, target)) {
		/* A plaintext upstream (HTTP in the tunnel, a captured plain-HTTP
		 * flow, the tool broker) would carry the secret in cleartext. */
		refuse_placeholder(s, method, log_path, "credential_unavailable",
				   "placeholders are only resolved in requests sent upstream over "
				   "TLS (HTTPS)");
		return false;
	}
	const struct cred_store *cs = s->px->creds;
	struct strbuf o = { 0 };
	char *tmp = NULL;
	int bad = CRED_OK;
	size_t n = 0;
	strbuf_put(&o, h->method.p, h->method.len);
	strbuf_put(&o, " ", 1);
	int r = resolve_target(cs, s->host, target, &tmp, &n);
	if (r == CRED_OK)
		strbuf_put(&o, tmp, n);
	else if (r == CRED_NO_PLACEHOLDER)
		strbuf_put(&o, target, strlen(target));
	else
		bad = r;
	strbuf_put(&o, h->minor_version ? " HTTP/1.1\r\n" : " HTTP/1.0\r\n", 11);
	for (size_t i = 0; i < h->n_headers && bad == CRED_OK; i++) {
		const struct http_header *hd = &h->headers[i];
		if (s->tool && reserved_tool_header(hd->name))
			continue; /* the identity is ours to state */
		if (s->req_close_here && http_slice_eq_nocase(hd->name, "connection"))
			continue; /* hop-by-hop: ours to honour towards the client */
		strbuf_put(&o, hd->name.p, hd->name.len);
		strbuf_put(&o, ": ", 2);
		r = resolve_header(cs, s->host, hd, &tmp, &n);
		if (r == CRED_OK)
			strbuf_put(&o, tmp, n);
		else if (r == CRED_NO_PLACEHOLDER)
			strbuf_put(&o, hd->value.p, hd->value.len);
		else
			bad = r;
		strbuf_put(&o, "\r\n", 2);
	}
	if (s->tool && s->tool_identity != NULL)
		strbuf_put(&o, s->tool_identity, strlen(s->tool_identity));
	strbuf_put(&o, "\r\n", 2);
	cred_scratch_free(tmp);
	bool ok = false;
	if (bad != CRED_OK)
		refuse_credentials(s, method, log_path, bad);
	else if (o.failed)
		hr_fail(s, "out of memory");
	else
		ok = hr_side_write(s, &s->side[UP], o.p, o.len);
	strbuf_free(&o);
	return ok;
}

bool hr_host_has_credentials(const struct cred_store *cs, const char *host)
{
	size_t count = cs != NULL ? cred_count(cs) : 0;
	if (count == 0)
		return false;
	char *out = malloc(HR_CRED_BUF_BYTES);
	if (out == NULL)
		return true; /* intercepting is the safe side */
	bool found = false;
	for (size_t i = 0; i < count && !found; i++) {
		char ph[sizeof(CRED_PLACEHOLDER_PREFIX) + CRED_MAX_NAME_BYTES + 1];
		int len = snprintf(ph, sizeof(ph), "%s%s", CRED_PLACEHOLDER_PREFIX, cred_name(cs, i));
		size_t n = 0;
		if (len > 0 && (size_t)len < sizeof(ph))
			found = cred_rewrite_header(cs, host, "x", ph, (size_t)len, out,
						    HR_CRED_BUF_BYTES, &n) == CRED_OK;
	}
	OPENSSL_cleanse(out, HR_CRED_BUF_BYTES);
	free(out);
	return found;
}

static void deny_request(struct hr_session *s, const struct http_head *h, const char *method,
			 const char *path, const char *reason, bool keep)
{
	struct l7_denial d = {
		.method = method,
		.path = path,
		.host = s->host,
		.port = s->port,
		.reason = reason,
		.rule_name = s->rule_name,
	};
	size_t len = 0;
	char *resp = response_l7_denied(&d, !keep, &len);
	answer_request(s, resp, len, keep);
}

/* After the head: where does this request's body end? */
static void start_request_body(struct hr_session *s, const struct http_head *h, bool forward)
{
	s->rq_chunked = h->chunked;
	s->rq_left = h->has_content_length ? h->content_length : 0;
	if (h->chunked)
		chunked_init(&s->rq_chunk);
	bool body = h->chunked || s->rq_left > 0;
	if (!body)
		s->rq = forward ? RQ_WAIT : RQ_HEAD;
	else
		s->rq = forward ? RQ_BODY : RQ_DISCARD;
}

/* Replace placeholders in buf (NUL-terminated, capacity cap) with
 * [CREDENTIAL]; the result is never longer. */
static bool redact_in_place(char *buf, size_t cap)
{
	size_t len = strlen(buf);
	if (len == 0 || !cred_contains_placeholder(buf, len))
		return true;
	char *tmp = malloc(cap);
	size_t n = 0;
	bool ok = tmp != NULL && cred_redact_placeholders(buf, len, tmp, cap, &n) == CRED_OK;
	if (ok)
		memcpy(buf, tmp, n + 1);
	free(tmp);
	return ok;
}

/* The request's authority (absolute-form URI, Host) must be the tunnel's:
 * a tunnel admitted for one host never carries requests for another. */
static bool authority_matches_tunnel(const struct hr_session *s, const struct http_head *h,
				     struct http_slice auth)
{
	const struct http_header *hosth = http_head_find(h, "host");
	uint16_t dflt = s->tls ? 443 : 80;
	if (auth.p != NULL && !hr_authority_matches(auth.p, auth.len, s->host, s->port, dflt))
		return false;
	if (hosth == NULL)
		return h->minor_version == 0; /* HTTP/1.1 requires Host */
	return hr_authority_matches(hosth->value.p, hosth->value.len, s->host, s->port, dflt);
}

/* The request-target in three buffers of one heap block (owned by `path`).
 * `path` and `query` are what policy and logs see (placeholders redacted);
 * `target` is the canonical "path?query" with placeholders, for the
 * upstream rewrite. */
struct req_target {
	char *path;
	char *query;
	char *target;
};

#define TARGET_CAP (CANON_MAX_PATH_BYTES + CANON_MAX_QUERY_BYTES + 2)

static void req_target_free(struct req_target *t)
{
	free(t->path);
}

/* Canonicalize; on failure the client has been answered (or the tunnel
 * failed) and false is returned. */
static bool canonical_target(struct hr_session *s, const char *method, struct http_slice tgt,
			     struct req_target *t)
{
	t->path = malloc(CANON_MAX_PATH_BYTES + 1 + CANON_MAX_QUERY_BYTES + 1 + TARGET_CAP);
	if (t->path == NULL) {
		hr_fail(s, "out of memory");
		return false;
	}
	t->query = t->path + CANON_MAX_PATH_BYTES + 1;
	t->target = t->query + CANON_MAX_QUERY_BYTES + 1;
	const char *cerr = NULL;
	if (canon_request_target(tgt.p, tgt.len, s->allow_encoded_slash, t->path,
				 CANON_MAX_PATH_BYTES + 1, t->query, CANON_MAX_QUERY_BYTES + 1,
				 &cerr) != 0 ||
	    canon_format_target(t->path, t->query, t->target, TARGET_CAP) == 0) {
		char detail[300];
		snprintf(detail, sizeof(detail), "request-target rejected: %s",
			 cerr ? cerr : "too long");
		hr_audit_request(s, false, method, "", detail, "denied");
		answer_error(s, 400, "invalid_request_target", detail);
		return false;
	}
	if (!redact_in_place(t->path, CANON_MAX_PATH_BYTES + 1) ||
	    !redact_in_place(t->query, CANON_MAX_QUERY_BYTES + 1)) {
		hr_fail(s, "out of memory");
		return false;
	}
	return true;
}

/* Can the tunnel go on after we answer this request ourselves? Not when
 * the client may still send (or withhold) a body we cannot frame, nor when
 * it asked to close. */
static bool keep_after_answer(const struct http_head *h)
{
	const struct http_header *expect = http_head_find(h, "expect");
	if (expect != NULL && (h->chunked || h->content_length > 0))
		return false;
	return h->minor_version == 1 && !http_head_has_token(h, "connection", "close");
}

/* Does any Upgrade line offer h2c? A protocol is compared by its name (the
 * token before any "/version" or stray byte), case-insensitively. */
static bool offers_h2c(const struct http_head *h)
{
	for (size_t i = 0; i < h->n_headers; i++) {
		if (!http_slice_eq_nocase(h->headers[i].name, "upgrade"))
			continue;
		struct http_slice rest = h->headers[i].value, proto;
		while (http_list_next(&rest, &proto)) {
			size_t n = 0;
			while (n < proto.len && http_is_tchar((unsigned char)proto.p[n]))
				n++;
			if (http_slice_eq_nocase((struct http_slice){ proto.p, n }, "h2c"))
				return true;
		}
	}
	return false;
}

/* L7 rules: true when the request may go upstream (allowed, or audit mode);
 * otherwise it has been answered with a 403 and its body is discarded. */
static bool admit_request(struct hr_session *s, const struct http_head *h, const char *method,
			  const struct req_target *t)
{
	bool keep = keep_after_answer(h);
	const char *why = NULL;
	struct policy_l7_result r;
	memset(&r, 0, sizeof(r));
	if (offers_h2c(h)) {
		why = "HTTP/2 cleartext upgrade (h2c) is not supported on L7 endpoints";
		keep = false;
	} else if (s->px->policy == NULL) {
		why = "no policy loaded";
	} else {
		if (s->tool)
			reserved_tool_evaluate(s->px->policy, s->host, s->port, method, t->path,
					       t->query[0] ? t->query : NULL, &r);
		else
			policy_l7_evaluate(s->px->policy, s->host, s->port, method, t->path,
					   t->query[0] ? t->query : NULL, &r);
		if (r.verdict == POLICY_L7_DENY)
			why = r.reason;
	}
	if (why == NULL) {
		bool audit_only = r.verdict == POLICY_L7_AUDIT_DENY;
		hr_audit_request(s, true, method, t->path, audit_only ? r.reason : NULL,
				 audit_only ? "audit-allowed" : "allowed");
		return true;
	}
	hr_log(s, PROXY_LOG_INFO, "%s %s denied: %s", method, t->path, why);
	hr_audit_request(s, false, method, t->path, why, "denied");
	deny_request(s, h, method, t->path, why, keep);
	if (keep && !s->closing && s->mode != M_ENDING) {
		hr_consume(&s->side[CL], h->head_len);
		start_request_body(s, h, false);
	}
	return false;
}

/* A method is never cut to fit: policy and audit would judge another
 * method than the one sent upstream. */
static void refuse_long_method(struct hr_session *s)
{
	char detail[128];
	snprintf(detail, sizeof(detail), "request method longer than %u bytes",
		 POLICY_L7_MAX_METHOD_BYTES);
	hr_log(s, PROXY_LOG_INFO, "%s", detail);
	hr_audit_request(s, false, "-", "", detail, "denied");
	answer_error(s, 400, "invalid_method", detail);
}

void hr_handle_request(struct hr_session *s, const struct http_head *h)
{
	s->n_requests++;
	s->req_is_head = h->method.len == 4 && memcmp(h->method.p, "HEAD", 4) == 0;
	if (h->method.len > POLICY_L7_MAX_METHOD_BYTES) {
		refuse_long_method(s);
		return;
	}
	char method[POLICY_L7_MAX_METHOD_BYTES + 1];
	copy_slice(method, sizeof(method), h->method);
	struct http_slice auth, tgt;
	if (!origin_form(h->target, &auth, &tgt)) {
		answer_error(s, 400, "invalid_request_target",
			     "request-target must be origin-form or absolute-form http(s)");
		return;
	}
	if (!authority_matches_tunnel(s, h, auth)) {
		hr_log(s, PROXY_LOG_INFO, "%s: request authority does not match the tunnel", method);
		hr_audit_request(s, false, method, "", "request authority does not match tunnel",
				 "denied");
		answer_error(s, 403, "request_authority_mismatch",
			     "HTTP request authority does not match the authorized tunnel endpoint");
		return;
	}
	struct req_target t = { 0 };
	if (!canonical_target(s, method, tgt, &t))
		goto out;
	if (s->l7) {
		if (!admit_request(s, h, method, &t))
			goto out;
	} else {
		hr_audit_request(s, true, method, t.path, NULL, "allowed");
	}
	s->req_upgrade = note_upgrade(s, h);
	s->req_close = http_head_has_token(h, "connection", "close") ||
		       (h->minor_version == 0 &&
			!http_head_has_token(h, "connection", "keep-alive"));
	s->req_close_here = s->keepable && s->tls && h->minor_version == 1 &&
			    lone_connection_close(h);
	if (!send_request_head(s, h, method, t.target, t.path))
		goto out;
	hr_consume(&s->side[CL], h->head_len);
	start_request_body(s, h, true);
	s->rs = RS_HEAD;
out:
	req_target_free(&t);
}
