/* l7.c - per-request L7 evaluation of REST/WebSocket rules (proxy.md §2.6,
 * policy.md §7.7 - §7.11). Never allocates: the decoded query lives in a
 * bounded struct on the caller's stack. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "policy/policy.h"

/* The decoded query: "key\0value\0" pairs in buf, pointed to by params. */
struct l7_query {
	char buf[POLICY_L7_MAX_QUERY_BYTES + 2 * POLICY_L7_MAX_QUERY_PARAMS + 2];
	size_t used;
	struct {
		const char *key, *value;
	} params[POLICY_L7_MAX_QUERY_PARAMS];
	size_t n;
};

/* A request being judged, with the policy inputs that select candidates. */
struct l7_request {
	const struct policy *p;
	const char *host;
	uint16_t port;
	const char *binary;
	bool match_binaries;
	const char *method;
	const char *path;
	struct l7_query *query;
};

/* ---- candidate endpoints (same host/port/binary matching as decide.c) ---- */

static bool host_input_ok(const char *host)
{
	size_t n = 0;

	if (!host)
		return false;
	for (; host[n]; n++)
		if ((unsigned char)host[n] <= 0x20 || (unsigned char)host[n] >= 0x7f ||
		    n >= POLICY_MAX_HOST_BYTES)
			return false;
	return n > 0;
}

static bool endpoint_matches(const struct policy_endpoint *ep, const char *host,
			     uint16_t port)
{
	bool port_ok = false;

	for (size_t i = 0; i < ep->n_ports && !port_ok; i++)
		port_ok = ep->ports[i] == port;
	if (!port_ok)
		return false;
	if (!ep->host || !ep->host[0])
		return ep->n_allowed_ips > 0;
	if (ep->host_is_wildcard)
		return policy_host_match(ep->host, host);
	return strcasecmp(ep->host, host) == 0;
}

static bool binary_matches(const struct policy_rule *r, const char *binary)
{
	if (r->n_binaries == 0)
		return true;
	if (!binary)
		return false;
	for (size_t i = 0; i < r->n_binaries; i++) {
		const char *pat = r->binaries[i].path;

		if (strchr(pat, '*') ? policy_path_glob_match(pat, binary)
				     : strcmp(pat, binary) == 0)
			return true;
	}
	return false;
}

bool policy_endpoint_needs_l7(const struct policy_endpoint *ep)
{
	switch (ep->protocol) {
	case POLICY_PROTO_REST:
	case POLICY_PROTO_WEBSOCKET:
	case POLICY_PROTO_GRAPHQL:
	case POLICY_PROTO_JSON_RPC:
	case POLICY_PROTO_MCP:
		return true;
	case POLICY_PROTO_NONE:
	case POLICY_PROTO_TCP:
	case POLICY_PROTO_SQL:
		return false;
	}
	return false;
}

static bool protocol_is_http_rules(enum policy_protocol proto)
{
	return proto == POLICY_PROTO_REST || proto == POLICY_PROTO_WEBSOCKET;
}

/* Calls fn for every L7 endpoint matching the request's host:port in a
 * policy that admits its binary; stops early when fn returns true. */
typedef bool (*candidate_fn)(const struct policy_rule *r, const struct policy_endpoint *ep,
			     void *arg);

static bool for_each_candidate(const struct l7_request *req, candidate_fn fn, void *arg)
{
	for (size_t i = 0; i < req->p->n_rules; i++) {
		const struct policy_rule *r = &req->p->rules[i];

		if (req->match_binaries && !binary_matches(r, req->binary))
			continue;
		for (size_t j = 0; j < r->n_endpoints; j++) {
			const struct policy_endpoint *ep = &r->endpoints[j];

			if (policy_endpoint_needs_l7(ep) &&
			    endpoint_matches(ep, req->host, req->port) && fn(r, ep, arg))
				return true;
		}
	}
	return false;
}

/* ---- query parsing ---- */

static int hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Strict UTF-8 (no overlongs, surrogates or code points above U+10FFFF). */
static bool utf8_valid(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned char c = s[i];
		size_t len;
		unsigned cp, min;

		if (c < 0x80) {
			i++;
			continue;
		}
		if ((c & 0xe0) == 0xc0) {
			len = 2, cp = c & 0x1f, min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			len = 3, cp = c & 0x0f, min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			len = 4, cp = c & 0x07, min = 0x10000;
		} else {
			return false;
		}
		if (n - i < len)
			return false;
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += len;
	}
	return true;
}

/* Decodes raw[0..n) ('+' is a space, %HH a byte) into q->buf, NUL-terminated.
 * Returns the decoded text or NULL with *why set. */
static const char *decode_component(struct l7_query *q, const char *raw, size_t n,
				    const char **why)
{
	char *start = q->buf + q->used;
	size_t k = 0;

	if (q->used + n + 1 > sizeof(q->buf)) {
		*why = "query too long";
		return NULL;
	}
	for (size_t i = 0; i < n; i++, k++) {
		int hi, lo;

		if (raw[i] == '+') {
			start[k] = ' ';
			continue;
		}
		if (raw[i] != '%') {
			start[k] = raw[i];
			continue;
		}
		hi = n - i >= 3 ? hex_value((unsigned char)raw[i + 1]) : -1;
		lo = n - i >= 3 ? hex_value((unsigned char)raw[i + 2]) : -1;
		if (hi < 0 || lo < 0) {
			*why = "invalid percent-escape in query";
			return NULL;
		}
		start[k] = (char)(hi * 16 + lo);
		i += 2;
	}
	if (memchr(start, '\0', k)) {
		*why = "NUL byte in query";
		return NULL;
	}
	if (!utf8_valid((const unsigned char *)start, k)) {
		*why = "query is not valid UTF-8";
		return NULL;
	}
	start[k] = '\0';
	q->used += k + 1;
	return start;
}

/* Splits on '&' (empty pairs skipped), then on the first '='; a key without
 * '=' has the value "". Duplicate keys stay separate entries. */
static const char *parse_query(const char *raw, struct l7_query *q)
{
	size_t len;
	const char *why = NULL;

	q->used = 0;
	q->n = 0;
	if (!raw)
		return NULL;
	len = strlen(raw);
	if (len > POLICY_L7_MAX_QUERY_BYTES)
		return "query too long";
	for (size_t i = 0; i < len;) {
		const char *amp = memchr(raw + i, '&', len - i);
		size_t end = amp ? (size_t)(amp - raw) : len;
		const char *eq = memchr(raw + i, '=', end - i);
		size_t key_end = eq ? (size_t)(eq - raw) : end;

		if (end > i) {
			if (q->n == POLICY_L7_MAX_QUERY_PARAMS)
				return "too many query parameters";
			q->params[q->n].key = decode_component(q, raw + i, key_end - i, &why);
			if (!q->params[q->n].key)
				return why;
			q->params[q->n].value =
				eq ? decode_component(q, eq + 1, end - key_end - 1, &why)
				   : decode_component(q, "", 0, &why);
			if (!q->params[q->n].value)
				return why;
			q->n++;
		}
		i = end + 1;
	}
	return NULL;
}

/* ---- rule matching ---- */

static bool method_matches(const char *rule_method, const char *method)
{
	if (!rule_method)
		return false;
	if (strcmp(rule_method, "*") == 0 || strcasecmp(rule_method, method) == 0)
		return true;
	return strcasecmp(rule_method, "GET") == 0 && strcasecmp(method, "HEAD") == 0;
}

static bool path_matches(const char *rule_path, const char *path)
{
	return rule_path && policy_path_glob_match(rule_path, path);
}

static bool matcher_matches(const struct policy_query_matcher *m, const char *value)
{
	for (size_t i = 0; i < m->n_globs; i++)
		if (policy_value_glob_match(m->globs[i], value))
			return true;
	return false;
}

/* Allow: the key is present and every value matches. Deny: the key is
 * present and at least one value matches. */
static bool query_key_matches(const struct policy_query_matcher *m,
			      const struct l7_query *q, bool deny)
{
	size_t seen = 0, hits = 0;

	for (size_t i = 0; i < q->n; i++) {
		if (strcmp(q->params[i].key, m->key) != 0)
			continue;
		seen++;
		if (matcher_matches(m, q->params[i].value))
			hits++;
	}
	return deny ? hits > 0 : seen > 0 && hits == seen;
}

static bool rule_matches(const struct policy_l7_rule *rule, const struct l7_request *req,
			 bool deny)
{
	if (!method_matches(rule->method, req->method) || !path_matches(rule->path, req->path))
		return false;
	for (size_t i = 0; i < rule->n_query; i++)
		if (!query_key_matches(&rule->query[i], req->query, deny))
			return false;
	return true;
}

/* ---- the passes over candidates ---- */

struct selection {
	const struct l7_request *req;
	const struct policy_rule *rule;
	const struct policy_endpoint *ep;
	size_t specificity;
	bool any;            /* some L7 endpoint matched host:port */
};

static bool select_endpoint(const struct policy_rule *r, const struct policy_endpoint *ep,
			    void *arg)
{
	struct selection *s = arg;
	size_t spec = policy_endpoint_path_specificity(ep->path);

	s->any = true;
	if (!policy_endpoint_path_match(ep->path, s->req->path))
		return false;
	if (!s->ep || spec > s->specificity ||
	    (spec == s->specificity && s->ep->enforcement != POLICY_ENFORCE_ENFORCE &&
	     ep->enforcement == POLICY_ENFORCE_ENFORCE)) {
		s->rule = r;
		s->ep = ep;
		s->specificity = spec;
	}
	return false;
}

struct rule_hit {
	const struct l7_request *req;
	const struct policy_rule *rule;
	const struct policy_endpoint *ep;
};

static bool find_deny(const struct policy_rule *r, const struct policy_endpoint *ep,
		      void *arg)
{
	struct rule_hit *h = arg;

	if (!protocol_is_http_rules(ep->protocol))
		return false;
	for (size_t i = 0; i < ep->n_deny_rules; i++) {
		if (rule_matches(&ep->deny_rules[i], h->req, true)) {
			h->rule = r;
			h->ep = ep;
			return true;
		}
	}
	return false;
}

static bool find_allow(const struct policy_rule *r, const struct policy_endpoint *ep,
		       void *arg)
{
	struct rule_hit *h = arg;

	if (!protocol_is_http_rules(ep->protocol) ||
	    !policy_endpoint_path_match(ep->path, h->req->path))
		return false;
	for (size_t i = 0; i < ep->n_rules; i++) {
		if (rule_matches(&ep->rules[i], h->req, false)) {
			h->rule = r;
			h->ep = ep;
			return true;
		}
	}
	return false;
}

static bool token_ok(const char *s, size_t max)
{
	size_t n = 0;

	for (; s[n]; n++)
		if (n >= max || (unsigned char)s[n] <= 0x20 || (unsigned char)s[n] >= 0x7f)
			return false;
	return n > 0;
}

static const char *request_problem(const struct l7_request *req)
{
	if (!host_input_ok(req->host))
		return "policy evaluation error: invalid host";
	if (!req->method || !token_ok(req->method, POLICY_L7_MAX_METHOD_BYTES))
		return "policy evaluation error: invalid method";
	if (!req->path || req->path[0] != '/' ||
	    strnlen(req->path, POLICY_L7_MAX_PATH_BYTES + 1) > POLICY_L7_MAX_PATH_BYTES)
		return "policy evaluation error: invalid path";
	return NULL;
}

static enum policy_l7_verdict violation(const struct policy_endpoint *selected)
{
	return selected->enforcement == POLICY_ENFORCE_ENFORCE ? POLICY_L7_DENY
							       : POLICY_L7_AUDIT_DENY;
}

/* Rules of the selected candidates; `sel` holds the most specific one. */
static void judge(const struct l7_request *req, const struct selection *sel,
		  struct policy_l7_result *out)
{
	struct rule_hit deny = { req, NULL, NULL }, allow = { req, NULL, NULL };

	if (!protocol_is_http_rules(sel->ep->protocol)) {
		out->verdict = violation(sel->ep);
		snprintf(out->reason, sizeof(out->reason),
			 "%s %s: L7 inspection of protocol %s is not supported", req->method,
			 req->path, policy_protocol_name(sel->ep->protocol));
		return;
	}
	if (for_each_candidate(req, find_deny, &deny)) {
		out->rule = deny.rule;
		out->endpoint = deny.ep;
		out->verdict = violation(sel->ep);
		snprintf(out->reason, sizeof(out->reason), "%s %s blocked by deny rule",
			 req->method, req->path);
		return;
	}
	if (for_each_candidate(req, find_allow, &allow)) {
		out->rule = allow.rule;
		out->endpoint = allow.ep;
		return;
	}
	out->verdict = violation(sel->ep);
	snprintf(out->reason, sizeof(out->reason), "%s %s not permitted by policy",
		 req->method, req->path);
}

static void deny_hard(struct policy_l7_result *out, const char *why)
{
	out->verdict = POLICY_L7_DENY;
	snprintf(out->reason, sizeof(out->reason), "%s", why);
}

void policy_l7_evaluate_binary(const struct policy *p, const char *host, uint16_t port,
			       const char *binary, bool match_binaries, const char *method,
			       const char *path, const char *query,
			       struct policy_l7_result *out)
{
	struct l7_query q;
	struct l7_request req = { p, host, port, binary, match_binaries, method, path, &q };
	struct selection sel = { &req, NULL, NULL, 0, false };
	const char *why;

	memset(out, 0, sizeof(*out));
	out->verdict = POLICY_L7_ALLOW;
	if (!p) {
		deny_hard(out, "network connections not allowed by policy");
		return;
	}
	why = request_problem(&req);
	if (why) {
		deny_hard(out, why);
		return;
	}
	for_each_candidate(&req, select_endpoint, &sel);
	if (!sel.any)
		return; /* no L7 endpoint: the L4 decision stands */
	if (!sel.ep) {
		deny_hard(out, "no L7 endpoint path matched request");
		return;
	}
	out->rule = sel.rule;
	out->endpoint = sel.ep;
	why = parse_query(query, &q);
	if (why) {
		deny_hard(out, why);
		return;
	}
	judge(&req, &sel, out);
}

void policy_l7_evaluate(const struct policy *p, const char *host, uint16_t port,
			const char *method, const char *path, const char *query,
			struct policy_l7_result *out)
{
	policy_l7_evaluate_binary(p, host, port, NULL, false, method, path, query, out);
}

static bool count_route(const struct policy_rule *r, const struct policy_endpoint *ep,
			void *arg)
{
	struct policy_l7_route *out = arg;

	(void)r;
	out->allow_encoded_slash = (out->n_endpoints == 0 || out->allow_encoded_slash) &&
				   ep->allow_encoded_slash;
	out->n_endpoints++;
	out->inspect = true;
	return false;
}

void policy_l7_route(const struct policy *p, const char *host, uint16_t port,
		     const char *binary, bool match_binaries, struct policy_l7_route *out)
{
	struct l7_request req = { p, host, port, binary, match_binaries, NULL, NULL, NULL };

	memset(out, 0, sizeof(*out));
	if (!p || !host_input_ok(host))
		return;
	for_each_candidate(&req, count_route, out);
}
