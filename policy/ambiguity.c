/* ambiguity.c - the [ambig] stage (policy.md §13): endpoints that can see the
 * same host and port must agree on how the connection is handled, so the
 * runtime choice between them never depends on file order. */
#include <string.h>

#include "policy/load_parts.h"

struct ep_ref {
	const struct policy_rule *rule;
	const struct policy_endpoint *ep;
};

static bool share_port(const struct policy_endpoint *a, const struct policy_endpoint *b)
{
	size_t i = 0, j = 0;

	while (i < a->n_ports && j < b->n_ports) {
		if (a->ports[i] == b->ports[j])
			return true;
		if (a->ports[i] < b->ports[j])
			i++;
		else
			j++;
	}
	return false;
}

static bool same_cidrs(const struct policy_endpoint *a, const struct policy_endpoint *b)
{
	if (a->n_allowed_ips != b->n_allowed_ips)
		return false;
	for (size_t i = 0; i < a->n_allowed_ips; i++) {
		bool found = false;

		for (size_t j = 0; j < b->n_allowed_ips && !found; j++)
			found = memcmp(&a->allowed_ips[i], &b->allowed_ips[j],
				       sizeof(a->allowed_ips[i])) == 0;
		if (!found)
			return false;
	}
	return true;
}

static bool str_eq(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "") == 0;
}

static bool has_request_metadata(const struct policy_endpoint *e)
{
	return (e->protocol != POLICY_PROTO_NONE && e->protocol != POLICY_PROTO_TCP) ||
	       e->n_allowed_ips > 0 || e->tls != POLICY_TLS_AUTO ||
	       e->credential_binding_provider;
}

static size_t path_specificity(const char *p)
{
	size_t n = 0;

	for (; p && *p; p++)
		n += *p != '*';
	return n;
}

/* The first request-handling setting two endpoints disagree on, or NULL. */
static const char *l7_conflict(const struct policy_endpoint *a, const struct policy_endpoint *b)
{
	if (a->protocol != b->protocol)
		return "protocol";
	if (a->enforcement != b->enforcement)
		return "enforcement";
	if (a->allow_encoded_slash != b->allow_encoded_slash)
		return "allow_encoded_slash";
	if (a->websocket_credential_rewrite != b->websocket_credential_rewrite ||
	    a->request_body_credential_rewrite != b->request_body_credential_rewrite)
		return "credential rewrite flags";
	if (!str_eq(a->credential_signing, b->credential_signing) ||
	    !str_eq(a->signing_service, b->signing_service) ||
	    !str_eq(a->signing_region, b->signing_region))
		return "credential signing";
	if (!str_eq(a->credential_binding_provider, b->credential_binding_provider))
		return "credential_binding";
	if (a->protocol == POLICY_PROTO_GRAPHQL &&
	    a->graphql_max_body_bytes != b->graphql_max_body_bytes)
		return "graphql_max_body_bytes";
	if ((a->protocol == POLICY_PROTO_JSON_RPC || a->protocol == POLICY_PROTO_MCP) &&
	    a->json_rpc_max_body_bytes != b->json_rpc_max_body_bytes)
		return "max_body_bytes";
	if (a->protocol == POLICY_PROTO_MCP &&
	    a->mcp_strict_tool_names != b->mcp_strict_tool_names)
		return "mcp.strict_tool_names";
	return NULL;
}

/* The first setting that makes the pair ambiguous, or NULL. */
static const char *conflict(const struct policy_endpoint *a, const struct policy_endpoint *b)
{
	bool skip_a = a->tls == POLICY_TLS_SKIP, skip_b = b->tls == POLICY_TLS_SKIP;

	if ((a->protocol == POLICY_PROTO_TCP) != (b->protocol == POLICY_PROTO_TCP))
		return "protocol tcp";
	if (skip_a != skip_b)
		return "tls: skip";
	if (!same_cidrs(a, b))
		return "allowed_ips";
	if (!has_request_metadata(a) || !has_request_metadata(b))
		return NULL;
	/* Overlap of path globs is approximated by equality (empty = all). */
	if (path_specificity(a->path) != path_specificity(b->path) || !str_eq(a->path, b->path))
		return NULL;
	return l7_conflict(a, b);
}

static bool hosts_overlap(const struct policy_endpoint *a, const struct policy_endpoint *b)
{
	if (a->host[0] && b->host[0] && !a->host_is_wildcard && !b->host_is_wildcard)
		return strcmp(a->host, b->host) == 0;
	return host_patterns_overlap(a->host, b->host);
}

static void check_pair(struct load_ctx *c, const struct ep_ref *x, const struct ep_ref *y)
{
	const char *what;

	/* Cheap tests first: the host overlap check only runs for conflicts. */
	if (!x->ep->host || !y->ep->host || !share_port(x->ep, y->ep))
		return;
	what = conflict(x->ep, y->ep);
	if (what && hosts_overlap(x->ep, y->ep))
		err_pos(c, y->ep->line, y->ep->col, "endpoint overlaps the endpoint at line "
			"%u (policy '%s') on host and port but differs in %s; overlapping "
			"endpoints must agree", x->ep->line, SHOW(x->rule->key), what);
}

void check_endpoint_ambiguity(struct load_ctx *c, const struct policy *p)
{
	for (size_t r1 = 0; r1 < p->n_rules; r1++) {
		for (size_t e1 = 0; e1 < p->rules[r1].n_endpoints; e1++) {
			struct ep_ref x = { &p->rules[r1], &p->rules[r1].endpoints[e1] };

			for (size_t r2 = r1; r2 < p->n_rules &&
			     c->n_errors <= POLICY_MAX_ERRORS; r2++) {
				for (size_t e2 = r2 == r1 ? e1 + 1 : 0;
				     e2 < p->rules[r2].n_endpoints; e2++) {
					struct ep_ref y = { &p->rules[r2],
							    &p->rules[r2].endpoints[e2] };

					check_pair(c, &x, &y);
				}
			}
		}
	}
}
