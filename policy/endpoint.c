/* endpoint.c - one network_policies[*].endpoints[] entry: parsing and the
 * endpoint-level rules of policy.md §7, §8 and §13. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "policy/rules_int.h"

static const char *const ep_keys[] = {
	"host", "port", "ports", "path", "protocol", "tls", "enforcement", "access",
	"rules", "deny_rules", "allowed_ips", "allow_encoded_slash",
	"websocket_credential_rewrite", "request_body_credential_rewrite",
	"allow_uninspected_credentials", "credential_signing", "signing_service",
	"signing_region", "credential_binding", "persisted_queries",
	"graphql_persisted_queries", "graphql_max_body_bytes", "json_rpc", "mcp",
};
enum {
	EK_HOST, EK_PORT, EK_PORTS, EK_PATH, EK_PROTOCOL, EK_TLS, EK_ENFORCEMENT,
	EK_ACCESS, EK_RULES, EK_DENY_RULES, EK_ALLOWED_IPS, EK_ALLOW_ENCODED_SLASH,
	EK_WS_REWRITE, EK_BODY_REWRITE, EK_ALLOW_UNINSPECTED, EK_SIGNING,
	EK_SIGNING_SERVICE, EK_SIGNING_REGION, EK_CRED_BINDING, EK_PQ, EK_GRAPHQL_PQ,
	EK_GRAPHQL_MAX, EK_JSON_RPC, EK_MCP, EK_COUNT
};
_Static_assert(sizeof(ep_keys) / sizeof(ep_keys[0]) == EK_COUNT, "endpoint keys");

struct enum_name {
	const char *name;
	int value;
};

static const struct enum_name protocols[] = {
	{ "", POLICY_PROTO_NONE }, { "tcp", POLICY_PROTO_TCP },
	{ "rest", POLICY_PROTO_REST }, { "websocket", POLICY_PROTO_WEBSOCKET },
	{ "graphql", POLICY_PROTO_GRAPHQL }, { "sql", POLICY_PROTO_SQL },
	{ "json-rpc", POLICY_PROTO_JSON_RPC }, { "mcp", POLICY_PROTO_MCP },
};
static const struct enum_name tls_modes[] = {
	{ "", POLICY_TLS_AUTO }, { "skip", POLICY_TLS_SKIP },
	{ "terminate", POLICY_TLS_TERMINATE }, { "passthrough", POLICY_TLS_PASSTHROUGH },
};
static const struct enum_name enforcements[] = {
	{ "", POLICY_ENFORCE_AUDIT }, { "audit", POLICY_ENFORCE_AUDIT },
	{ "enforce", POLICY_ENFORCE_ENFORCE },
};
static const struct enum_name accesses[] = {
	{ "", POLICY_ACCESS_NONE }, { "read-only", POLICY_ACCESS_READ_ONLY },
	{ "read-write", POLICY_ACCESS_READ_WRITE }, { "full", POLICY_ACCESS_FULL },
};
#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* Reads an enum-valued string; unknown values are errors. */
static int get_enum(struct load_ctx *c, struct kv f, const char *what,
		    const struct enum_name *names, size_t n, const char *allowed)
{
	char *s;
	int v = names[0].value;

	if (!f.val || !get_string(c, f.val, what, &s))
		return v;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(s, names[i].name) == 0) {
			v = names[i].value;
			free(s);
			return v;
		}
	}
	err_at(c, f.val, "unknown %s '%s' (allowed: %s)", what, SHOW(s), allowed);
	free(s);
	return v;
}

static bool get_u16_port(struct load_ctx *c, yaml_node_t *n, const char *what,
			 uint16_t *out)
{
	int64_t v;

	if (!get_int(c, n, what, 0, 65535, &v))
		return false;
	if (v == 0) {
		err_at(c, n, "'%s' must be in 1..65535, not 0", what);
		return false;
	}
	*out = (uint16_t)v;
	return true;
}

static int cmp_u16(const void *a, const void *b)
{
	uint16_t x = *(const uint16_t *)a, y = *(const uint16_t *)b;

	return (x > y) - (x < y);
}

static void load_ports(struct load_ctx *c, struct kv *f, yaml_node_t *node,
		       struct policy_endpoint *ep)
{
	long n = 0;
	size_t u = 0;

	if (f[EK_PORTS].val && (n = seq_len(c, f[EK_PORTS].val, "ports")) < 0)
		return;
	if (f[EK_PORT].key && n > 0)
		err_at(c, f[EK_PORTS].key, "'port' and 'ports' are mutually exclusive");
	ep->ports = calloc((size_t)n + 1, sizeof(*ep->ports));
	if (!ep->ports) {
		note_oom(c);
		return;
	}
	for (long i = 0; i < n; i++)
		if (get_u16_port(c, seq_item(c, f[EK_PORTS].val, i), "ports", &ep->ports[u]))
			u++;
	if (u == 0 && f[EK_PORT].val && get_u16_port(c, f[EK_PORT].val, "port", &ep->ports[0]))
		u = 1;
	qsort(ep->ports, u, sizeof(*ep->ports), cmp_u16);
	ep->n_ports = 0;
	for (size_t i = 0; i < u; i++)
		if (ep->n_ports == 0 || ep->ports[ep->n_ports - 1] != ep->ports[i])
			ep->ports[ep->n_ports++] = ep->ports[i];
	if (ep->n_ports == 0 && !f[EK_PORT].val && n == 0)
		err_at(c, node, "endpoint must declare at least one port ('port' or 'ports')");
}

static void load_allowed_ips(struct load_ctx *c, yaml_node_t *list,
			     struct policy_endpoint *ep)
{
	long n = seq_len(c, list, "allowed_ips");

	if (n <= 0)
		return;
	ep->allowed_ips = calloc((size_t)n, sizeof(*ep->allowed_ips));
	if (!ep->allowed_ips) {
		note_oom(c);
		return;
	}
	for (long i = 0; i < n; i++) {
		yaml_node_t *item = seq_item(c, list, i);
		struct policy_cidr *cidr = &ep->allowed_ips[ep->n_allowed_ips];
		char *s;

		if (!get_string(c, item, "allowed_ips", &s))
			continue;
		if (policy_cidr_parse(s, cidr) != 0) {
			err_at(c, item, "allowed_ips entry '%s' is not an IP address or "
			       "CIDR", SHOW(s));
		} else if (cidr_overlaps_blocked(cidr)) {
			err_at(c, item, "allowed_ips entry '%s' overlaps an always-blocked "
			       "range (loopback, link-local or unspecified)", SHOW(s));
		} else {
			if (cidr->prefix < 16)
				warn_at(c, item, "allowed_ips entry '%s' is broader than /16",
					SHOW(s));
			ep->n_allowed_ips++;
		}
		free(s);
	}
}

static bool get_body_limit(struct load_ctx *c, yaml_node_t *n, const char *what,
			   uint32_t *out)
{
	int64_t v;

	if (!get_int(c, n, what, 1, UINT32_MAX, &v))
		return false;
	*out = (uint32_t)v;
	return true;
}

static void load_mcp_stanzas(struct load_ctx *c, struct kv *f, struct policy_endpoint *ep)
{
	static const char *const jr_keys[] = { "max_body_bytes" };
	static const char *const mcp_keys[] = { "max_body_bytes", "strict_tool_names",
						"allow_all_known_mcp_methods" };
	struct kv jr[1], m[3];

	ep->mcp_strict_tool_names = true;
	ep->graphql_max_body_bytes = POLICY_DEFAULT_BODY_BYTES;
	ep->json_rpc_max_body_bytes = POLICY_DEFAULT_BODY_BYTES;
	if (f[EK_GRAPHQL_MAX].val)
		get_body_limit(c, f[EK_GRAPHQL_MAX].val, "graphql_max_body_bytes",
			       &ep->graphql_max_body_bytes);
	if (f[EK_JSON_RPC].val && read_struct(c, f[EK_JSON_RPC].val, "json_rpc",
					      jr_keys, 1, jr) && jr[0].val)
		get_body_limit(c, jr[0].val, "max_body_bytes", &ep->json_rpc_max_body_bytes);
	if (!f[EK_MCP].val || !read_struct(c, f[EK_MCP].val, "mcp", mcp_keys, 3, m))
		return;
	if (m[0].val)
		get_body_limit(c, m[0].val, "max_body_bytes", &ep->json_rpc_max_body_bytes);
	if (m[1].val)
		get_bool(c, m[1].val, "strict_tool_names", &ep->mcp_strict_tool_names);
	if (m[2].val)
		get_bool(c, m[2].val, "allow_all_known_mcp_methods",
			 &ep->mcp_allow_all_known_methods);
}

static void load_credential_binding(struct load_ctx *c, yaml_node_t *n,
				    struct policy_endpoint *ep)
{
	static const char *const keys[] = { "provider" };
	struct kv f[1];

	if (!read_struct(c, n, "credential_binding", keys, 1, f))
		return;
	if (!f[0].val) {
		err_at(c, n, "credential_binding needs a 'provider'");
		return;
	}
	if (get_string(c, f[0].val, "provider", &ep->credential_binding_provider) &&
	    !ep->credential_binding_provider[0])
		err_at(c, f[0].val, "credential_binding.provider must not be empty");
}

static void pq_entry(struct load_ctx *c, yaml_node_t *k, yaml_node_t *v, void *arg)
{
	static const char *const keys[] = { "operation_type", "operation_name", "fields" };
	static const char *const ops[] = { "query", "mutation", "subscription" };
	struct policy_endpoint *ep = arg;
	struct policy_graphql_pq *grown, *q;
	struct kv f[3];
	bool op_ok = false;

	grown = realloc(ep->graphql_persisted_queries,
			(ep->n_graphql_persisted_queries + 1) * sizeof(*grown));
	if (!grown) {
		note_oom(c);
		return;
	}
	ep->graphql_persisted_queries = grown;
	q = &grown[ep->n_graphql_persisted_queries++];
	memset(q, 0, sizeof(*q));
	if (!(q->id = strdup(scalar_text(k))))
		note_oom(c);
	if (!read_struct(c, v, "graphql_persisted_queries entry", keys, 3, f))
		return;
	if (!f[0].val)
		err_at(c, v, "persisted query '%s' needs an 'operation_type'", SHOW(q->id));
	else if (get_string(c, f[0].val, "operation_type", &q->operation_type)) {
		for (size_t i = 0; i < N_OF(ops); i++)
			op_ok = op_ok || strcmp(q->operation_type, ops[i]) == 0;
		if (!op_ok)
			err_at(c, f[0].val, "unknown GraphQL operation_type '%s' (query, "
			       "mutation or subscription)", SHOW(q->operation_type));
	}
	if (f[1].val)
		get_string(c, f[1].val, "operation_name", &q->operation_name);
	if (f[2].val && get_string_list(c, f[2].val, "fields", &q->fields, &q->n_fields) &&
	    q->n_fields == 0)
		err_at(c, f[2].val, "'fields' must not be empty when present");
}

static void load_scalars(struct load_ctx *c, struct kv *f, struct policy_endpoint *ep)
{
	static const struct { int key; size_t off; } strs[] = {
		{ EK_PATH, offsetof(struct policy_endpoint, path) },
		{ EK_SIGNING, offsetof(struct policy_endpoint, credential_signing) },
		{ EK_SIGNING_SERVICE, offsetof(struct policy_endpoint, signing_service) },
		{ EK_SIGNING_REGION, offsetof(struct policy_endpoint, signing_region) },
		{ EK_PQ, offsetof(struct policy_endpoint, persisted_queries) },
	};
	static const struct { int key; size_t off; } bools[] = {
		{ EK_ALLOW_ENCODED_SLASH, offsetof(struct policy_endpoint, allow_encoded_slash) },
		{ EK_WS_REWRITE, offsetof(struct policy_endpoint, websocket_credential_rewrite) },
		{ EK_BODY_REWRITE, offsetof(struct policy_endpoint, request_body_credential_rewrite) },
		{ EK_ALLOW_UNINSPECTED, offsetof(struct policy_endpoint, allow_uninspected_credentials) },
	};

	for (size_t i = 0; i < N_OF(strs); i++)
		if (f[strs[i].key].val)
			get_string(c, f[strs[i].key].val, ep_keys[strs[i].key],
				   (char **)((char *)ep + strs[i].off));
	for (size_t i = 0; i < N_OF(bools); i++)
		if (f[bools[i].key].val)
			get_bool(c, f[bools[i].key].val, ep_keys[bools[i].key],
				 (bool *)((char *)ep + bools[i].off));
	ep->protocol = get_enum(c, f[EK_PROTOCOL], "protocol", protocols, N_OF(protocols),
				"tcp, rest, websocket, graphql, sql, json-rpc, mcp");
	ep->tls = get_enum(c, f[EK_TLS], "tls", tls_modes, N_OF(tls_modes),
			   "skip; terminate and passthrough are deprecated");
	ep->enforcement = get_enum(c, f[EK_ENFORCEMENT], "enforcement", enforcements,
				   N_OF(enforcements), "enforce, audit");
	ep->access = get_enum(c, f[EK_ACCESS], "access", accesses, N_OF(accesses),
			      "read-only, read-write, full");
}

/* An IPv6 literal is kept in inet_ntop's form, the form request targets are
 * compared in: "2001:0DB8:0::1" would otherwise load and never match. */
static void canonicalize_ipv6(struct load_ctx *c, char **host)
{
	unsigned char a[16];
	char text[INET6_ADDRSTRLEN];
	if (inet_pton(AF_INET6, *host, a) != 1 || !inet_ntop(AF_INET6, a, text, sizeof text))
		return;
	char *canonical = strdup(text);
	if (!canonical) {
		note_oom(c);
		return;
	}
	free(*host);
	*host = canonical;
}

static void load_host(struct load_ctx *c, struct kv *f, struct policy_endpoint *ep)
{
	if (!f[EK_HOST].val || !get_string(c, f[EK_HOST].val, "host", &ep->host)) {
		if (!(ep->host = strdup("")))
			note_oom(c);
		return;
	}
	for (char *p = ep->host; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	canonicalize_ipv6(c, &ep->host);
	ep->host_is_wildcard = strchr(ep->host, '*') != NULL;
	if (ep->host[0])
		check_endpoint_host(c, f[EK_HOST].val, ep->host,
				    ep->protocol == POLICY_PROTO_TCP);
}

/* Keys that only make sense with L7 inspection (§7.5). */
static void check_tcp_fields(struct load_ctx *c, struct kv *f, const struct policy_endpoint *ep)
{
	static const int forbidden[] = {
		EK_ACCESS, EK_RULES, EK_DENY_RULES, EK_ENFORCEMENT, EK_PATH, EK_PQ,
		EK_GRAPHQL_PQ, EK_GRAPHQL_MAX, EK_JSON_RPC, EK_MCP, EK_SIGNING,
		EK_SIGNING_SERVICE, EK_SIGNING_REGION, EK_CRED_BINDING,
	};
	const bool flags[] = { ep->allow_encoded_slash, ep->websocket_credential_rewrite,
			       ep->request_body_credential_rewrite };
	const int flag_keys[] = { EK_ALLOW_ENCODED_SLASH, EK_WS_REWRITE, EK_BODY_REWRITE };

	for (size_t i = 0; i < N_OF(forbidden); i++)
		if (f[forbidden[i]].key)
			err_at(c, f[forbidden[i]].key, "'%s' is not allowed with protocol tcp",
			       ep_keys[forbidden[i]]);
	for (size_t i = 0; i < N_OF(flags); i++)
		if (flags[i])
			err_at(c, f[flag_keys[i]].key, "'%s' is not allowed with protocol tcp",
			       ep_keys[flag_keys[i]]);
	if (!ep->host[0])
		err_at(c, f[EK_HOST].val ? f[EK_HOST].val : f[EK_PROTOCOL].val,
		       "protocol tcp needs a 'host' (hostless endpoints are explicit-proxy only)");
}

static void check_host_presence(struct load_ctx *c, struct kv *f, yaml_node_t *node,
				const struct policy_endpoint *ep)
{
	if (ep->host[0])
		return;
	if (ep->protocol == POLICY_PROTO_MCP)
		err_at(c, f[EK_HOST].val ? f[EK_HOST].val : node, "protocol mcp needs a 'host'");
	else if (!f[EK_ALLOWED_IPS].val || ep->n_allowed_ips == 0)
		err_at(c, f[EK_HOST].val ? f[EK_HOST].val : node,
		       "endpoint needs a 'host' (or 'allowed_ips' for a hostless endpoint)");
}

static void check_credentials(struct load_ctx *c, struct kv *f, const struct policy_endpoint *ep)
{
	static const char *const signings[] = { "sigv4", "sigv4:body", "sigv4:no_body" };
	bool known = false;

	if (ep->websocket_credential_rewrite && ep->protocol != POLICY_PROTO_REST &&
	    ep->protocol != POLICY_PROTO_WEBSOCKET && ep->protocol != POLICY_PROTO_TCP)
		err_at(c, f[EK_WS_REWRITE].key, "'websocket_credential_rewrite' needs "
		       "protocol rest or websocket");
	if (ep->request_body_credential_rewrite && ep->protocol != POLICY_PROTO_REST &&
	    ep->protocol != POLICY_PROTO_TCP)
		err_at(c, f[EK_BODY_REWRITE].key, "'request_body_credential_rewrite' "
		       "needs protocol rest");
	if (ep->persisted_queries && ep->persisted_queries[0] &&
	    strcmp(ep->persisted_queries, "deny") != 0 &&
	    strcmp(ep->persisted_queries, "allow_registered") != 0)
		err_at(c, f[EK_PQ].val, "unknown persisted_queries '%s' (deny or "
		       "allow_registered)", SHOW(ep->persisted_queries));
	if (!ep->credential_signing || !ep->credential_signing[0])
		return;
	for (size_t i = 0; i < N_OF(signings); i++)
		known = known || strcmp(ep->credential_signing, signings[i]) == 0;
	if (!known)
		err_at(c, f[EK_SIGNING].val, "unknown credential_signing '%s' (sigv4, "
		       "sigv4:body or sigv4:no_body)", SHOW(ep->credential_signing));
	if (!ep->signing_service || !ep->signing_service[0])
		err_at(c, f[EK_SIGNING].key, "'credential_signing' needs a non-empty "
		       "'signing_service'");
	if (ep->request_body_credential_rewrite)
		err_at(c, f[EK_SIGNING].key, "'credential_signing' and "
		       "'request_body_credential_rewrite' cannot both be set");
}

static bool is_l7(enum policy_protocol p)
{
	return p != POLICY_PROTO_NONE && p != POLICY_PROTO_TCP;
}

/* protocol / access / rules / deny_rules combinations (§7.5, §13). */
static void check_l7_combos(struct load_ctx *c, struct kv *f, yaml_node_t *node,
			    const struct policy_endpoint *ep, const struct rule_list *allow)
{
	enum policy_protocol p = ep->protocol;
	const char *pn = policy_protocol_name(p);
	bool has_rules = f[EK_RULES].key != NULL, has_access = ep->access != POLICY_ACCESS_NONE;
	yaml_node_t *at = f[EK_PROTOCOL].val ? f[EK_PROTOCOL].val : node;

	if (has_rules && has_access)
		err_at(c, f[EK_RULES].key, "'access' and 'rules' are mutually exclusive");
	if ((p == POLICY_PROTO_JSON_RPC || p == POLICY_PROTO_MCP) && f[EK_ACCESS].key)
		err_at(c, f[EK_ACCESS].key, "'access' presets are not allowed with protocol %s%s",
		       pn, p == POLICY_PROTO_MCP ? " (use mcp.allow_all_known_mcp_methods)" : "");
	if (p == POLICY_PROTO_JSON_RPC && !has_rules)
		err_at(c, at, "protocol json-rpc needs 'rules'");
	if ((p == POLICY_PROTO_REST || p == POLICY_PROTO_WEBSOCKET ||
	     p == POLICY_PROTO_GRAPHQL || p == POLICY_PROTO_SQL) && !has_rules && !has_access)
		err_at(c, at, "protocol %s needs 'access' or 'rules'", pn);
	if (p == POLICY_PROTO_MCP && !has_rules && !ep->mcp_allow_all_known_methods)
		err_at(c, at, "protocol mcp needs 'rules' (or mcp.allow_all_known_mcp_methods: true)");
	if (has_rules && allow->n > 0 && all_rules_empty(allow) &&
	    !(p == POLICY_PROTO_MCP && ep->mcp_allow_all_known_methods))
		err_at(c, f[EK_RULES].val, "every rule has an empty 'allow', which would "
		       "deny everything");
	if (f[EK_DENY_RULES].key && !is_l7(p))
		err_at(c, f[EK_DENY_RULES].key, "'deny_rules' needs an L7 protocol");
	else if (f[EK_DENY_RULES].key && !has_rules && !has_access &&
		 !(p == POLICY_PROTO_MCP && ep->mcp_allow_all_known_methods))
		err_at(c, f[EK_DENY_RULES].key, "'deny_rules' needs a base allow set "
		       "('rules' or 'access')");
	if (p == POLICY_PROTO_SQL && ep->enforcement == POLICY_ENFORCE_ENFORCE)
		err_at(c, f[EK_ENFORCEMENT].val, "protocol sql is audit-only; "
		       "'enforcement: enforce' is not supported");
	if (f[EK_MCP].key && p != POLICY_PROTO_MCP && p != POLICY_PROTO_TCP)
		err_at(c, f[EK_MCP].key, "'mcp' is only allowed with protocol mcp");
	if (ep->path && ep->path[0] != '/' && strcmp(ep->path, "**") != 0)
		err_at(c, f[EK_PATH].val, "endpoint path '%s' must start with '/' or be '**'",
		       SHOW(ep->path));
}

/* Rules, deny rules and the preset expansion into ep. */
static void load_l7(struct load_ctx *c, struct kv *f, yaml_node_t *node,
		    struct policy_endpoint *ep)
{
	struct ep_info e = { ep->protocol, ep->mcp_allow_all_known_methods,
			     ep->mcp_strict_tool_names };
	struct rule_list allow = { 0 }, deny = { 0 };

	if (f[EK_RULES].val)
		load_rule_list(c, f[EK_RULES].val, false, &e, &allow);
	if (f[EK_DENY_RULES].val)
		load_rule_list(c, f[EK_DENY_RULES].val, true, &e, &deny);
	if (ep->protocol == POLICY_PROTO_MCP)
		finish_mcp_rules(c, &e, &allow, &deny);
	if (ep->protocol == POLICY_PROTO_WEBSOCKET)
		finish_ws_rules(c, &allow, &deny, ep->n_graphql_persisted_queries > 0);
	if (ep->protocol != POLICY_PROTO_TCP)
		check_l7_combos(c, f, node, ep, &allow);
	if (!f[EK_RULES].key && ep->access != POLICY_ACCESS_NONE &&
	    ep->protocol != POLICY_PROTO_MCP && ep->protocol != POLICY_PROTO_JSON_RPC &&
	    ep->protocol != POLICY_PROTO_TCP && !expand_preset(ep->protocol, ep->access, &allow))
		note_oom(c);
	if (!f[EK_RULES].key && ep->protocol == POLICY_PROTO_MCP &&
	    ep->mcp_allow_all_known_methods && !expand_preset(POLICY_PROTO_REST,
							      POLICY_ACCESS_FULL, &allow))
		note_oom(c);
	if (ep->protocol == POLICY_PROTO_MCP && !f[EK_RULES].key && allow.n == 1) {
		free(allow.rules[0].path); /* the MCP profile is {method: "*"} */
		allow.rules[0].path = NULL;
	}
	ep->rules = allow.rules;
	ep->n_rules = allow.n;
	ep->deny_rules = deny.rules;
	ep->n_deny_rules = deny.n;
	free(allow.nodes);
	free(deny.nodes);
}

static void warn_endpoint(struct load_ctx *c, struct kv *f, const struct policy_endpoint *ep)
{
	bool on_443 = false;

	for (size_t i = 0; i < ep->n_ports; i++)
		on_443 = on_443 || ep->ports[i] == 443;
	if (ep->tls == POLICY_TLS_TERMINATE || ep->tls == POLICY_TLS_PASSTHROUGH)
		warn_at(c, f[EK_TLS].val, "tls: %s is deprecated and behaves as auto-detect",
			ep->tls == POLICY_TLS_TERMINATE ? "terminate" : "passthrough");
	if (ep->tls == POLICY_TLS_SKIP && is_l7(ep->protocol) && on_443)
		warn_at(c, f[EK_TLS].val, "tls: skip on port 443 prevents L7 inspection of "
			"protocol %s", policy_protocol_name(ep->protocol));
}

void load_endpoint(struct load_ctx *c, yaml_node_t *node, struct policy_endpoint *ep)
{
	struct kv f[EK_COUNT];

	ep->line = node_line(node);
	ep->col = node_col(node);
	ep->mcp_strict_tool_names = true;
	if (!read_struct(c, node, "endpoint", ep_keys, EK_COUNT, f)) {
		if (!(ep->host = strdup("")))
			note_oom(c);
		return;
	}
	load_scalars(c, f, ep);
	load_mcp_stanzas(c, f, ep);
	load_host(c, f, ep);
	load_ports(c, f, node, ep);
	if (f[EK_ALLOWED_IPS].val)
		load_allowed_ips(c, f[EK_ALLOWED_IPS].val, ep);
	if (f[EK_CRED_BINDING].val)
		load_credential_binding(c, f[EK_CRED_BINDING].val, ep);
	if (f[EK_GRAPHQL_PQ].val)
		read_map(c, f[EK_GRAPHQL_PQ].val, "graphql_persisted_queries", pq_entry, ep);
	if (!ep->host)
		return;
	check_host_presence(c, f, node, ep);
	warn_endpoint(c, f, ep);
	check_credentials(c, f, ep);
	if (ep->protocol == POLICY_PROTO_TCP)
		check_tcp_fields(c, f, ep);
	load_l7(c, f, node, ep);
}

void free_endpoint(struct policy_endpoint *ep)
{
	free(ep->host);
	free(ep->ports);
	free(ep->path);
	free_rule_list(ep->rules, ep->n_rules);
	free_rule_list(ep->deny_rules, ep->n_deny_rules);
	free(ep->allowed_ips);
	free(ep->credential_signing);
	free(ep->signing_service);
	free(ep->signing_region);
	free(ep->credential_binding_provider);
	free(ep->persisted_queries);
	for (size_t i = 0; i < ep->n_graphql_persisted_queries; i++) {
		struct policy_graphql_pq *q = &ep->graphql_persisted_queries[i];

		free(q->id);
		free(q->operation_type);
		free(q->operation_name);
		for (size_t j = 0; j < q->n_fields; j++)
			free(q->fields[j]);
		free(q->fields);
	}
	free(ep->graphql_persisted_queries);
}
