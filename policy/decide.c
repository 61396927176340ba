/* decide.c - the L4 decision: host + port (+ binary) against network_policies.
 * Never allocates; all state lives in the caller's policy_decision. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "policy/policy.h"

const char *policy_protocol_name(enum policy_protocol p)
{
	switch (p) {
	case POLICY_PROTO_NONE: return "none";
	case POLICY_PROTO_TCP: return "tcp";
	case POLICY_PROTO_REST: return "rest";
	case POLICY_PROTO_WEBSOCKET: return "websocket";
	case POLICY_PROTO_GRAPHQL: return "graphql";
	case POLICY_PROTO_SQL: return "sql";
	case POLICY_PROTO_JSON_RPC: return "json-rpc";
	case POLICY_PROTO_MCP: return "mcp";
	}
	return "unknown";
}

/* A host we are willing to evaluate: 1..253 printable ASCII bytes, no spaces. */
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

static bool endpoint_host_matches(const struct policy_endpoint *ep, const char *host)
{
	if (!ep->host || !ep->host[0])
		return ep->n_allowed_ips > 0;
	if (ep->host_is_wildcard)
		return policy_host_match(ep->host, host);
	return strcasecmp(ep->host, host) == 0;
}

static bool endpoint_has_port(const struct policy_endpoint *ep, uint16_t port)
{
	for (size_t i = 0; i < ep->n_ports; i++)
		if (ep->ports[i] == port)
			return true;
	return false;
}

static bool binary_matches(const struct policy_rule *r, const char *binary)
{
	if (r->n_binaries == 0)
		return true; /* an empty list means any binary */
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

static bool has_extended_config(const struct policy_endpoint *ep)
{
	return (ep->protocol != POLICY_PROTO_NONE && ep->protocol != POLICY_PROTO_TCP) ||
	       ep->n_allowed_ips > 0 || ep->tls != POLICY_TLS_AUTO;
}

/* Misses remembered for the deny reason. */
struct misses {
	const struct policy_rule *port_rule;   /* host matched, port did not */
	const struct policy_rule *binary_rule; /* endpoint matched, binary did not */
};

/* Returns the endpoint this rule grants for host:port, or NULL. */
static const struct policy_endpoint *rule_endpoint(const struct policy_rule *r,
						   const char *host, uint16_t port,
						   struct misses *m)
{
	const struct policy_endpoint *first = NULL, *ext = NULL;

	for (size_t i = 0; i < r->n_endpoints; i++) {
		const struct policy_endpoint *ep = &r->endpoints[i];

		if (!endpoint_host_matches(ep, host))
			continue;
		if (!endpoint_has_port(ep, port)) {
			if (ep->host && ep->host[0] && !m->port_rule)
				m->port_rule = r;
			continue;
		}
		if (!first)
			first = ep;
		if (!ext && has_extended_config(ep))
			ext = ep;
	}
	return ext ? ext : first;
}

static void insert_port(uint16_t *list, size_t *n, uint16_t port)
{
	size_t i = 0;

	while (i < *n && list[i] < port)
		i++;
	if ((i < *n && list[i] == port) || *n == POLICY_REASON_MAX_PORTS)
		return;
	memmove(&list[i + 1], &list[i], (*n - i) * sizeof(*list));
	list[i] = port;
	(*n)++;
}

static void port_reason(const struct policy_rule *r, const char *host, uint16_t port,
			struct policy_decision *out)
{
	uint16_t ports[POLICY_REASON_MAX_PORTS];
	size_t n = 0, used;
	int w;

	for (size_t i = 0; i < r->n_endpoints; i++) {
		const struct policy_endpoint *ep = &r->endpoints[i];

		if (ep->host && ep->host[0] && endpoint_host_matches(ep, host))
			for (size_t j = 0; j < ep->n_ports; j++)
				insert_port(ports, &n, ep->ports[j]);
	}
	w = snprintf(out->reason, sizeof(out->reason),
		     "port %u is not allowed for host %s (policy '%s' allows: ",
		     (unsigned)port, host, r->name ? r->name : r->key);
	used = w < 0 ? 0 : (size_t)w;
	for (size_t i = 0; i < n && used < sizeof(out->reason); i++) {
		w = snprintf(out->reason + used, sizeof(out->reason) - used, "%s%u",
			     i ? ", " : "", (unsigned)ports[i]);
		used += w < 0 ? 0 : (size_t)w;
	}
	if (used < sizeof(out->reason))
		snprintf(out->reason + used, sizeof(out->reason) - used, ")");
}

static void deny(const char *host, uint16_t port, const char *binary,
		 const struct misses *m, struct policy_decision *out)
{
	if (m->binary_rule) {
		out->rule = m->binary_rule;
		snprintf(out->reason, sizeof(out->reason),
			 "binary '%s' not allowed in policy '%s'",
			 binary ? binary : "(unknown)",
			 m->binary_rule->name ? m->binary_rule->name : m->binary_rule->key);
	} else if (m->port_rule) {
		out->rule = m->port_rule;
		port_reason(m->port_rule, host, port, out);
	} else {
		snprintf(out->reason, sizeof(out->reason),
			 "endpoint %s:%u is not allowed by any policy", host, (unsigned)port);
	}
}

void policy_decide(const struct policy *p, const char *host, uint16_t port,
		   const char *binary, bool match_binaries,
		   struct policy_decision *out)
{
	struct misses m = { NULL, NULL };

	memset(out, 0, sizeof(*out));
	if (!p || p->n_rules == 0) {
		snprintf(out->reason, sizeof(out->reason),
			 "network connections not allowed by policy");
		return;
	}
	if (!host_input_ok(host)) {
		snprintf(out->reason, sizeof(out->reason),
			 "policy evaluation error: invalid host");
		return;
	}
	for (size_t i = 0; i < p->n_rules; i++) {
		const struct policy_rule *r = &p->rules[i];
		const struct policy_endpoint *ep = rule_endpoint(r, host, port, &m);

		if (!ep)
			continue;
		if (match_binaries && !binary_matches(r, binary)) {
			if (!m.binary_rule)
				m.binary_rule = r;
			continue;
		}
		out->allowed = true;
		out->rule = r;
		out->endpoint = ep;
		out->exact_host = ep->host && ep->host[0] && !ep->host_is_wildcard;
		return;
	}
	deny(host, port, binary, &m, out);
}
