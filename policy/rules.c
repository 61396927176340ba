/* rules.c - L7 allow/deny rules of an endpoint: parsing and per-protocol
 * validation (policy.md §7.9 - §7.11), preset expansion (§7.8). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "policy/rules_int.h"

static const char *const rule_keys[] = {
	"method", "path", "command", "query", "operation_type",
	"operation_name", "fields", "tool", "params",
};
enum { RK_METHOD, RK_PATH, RK_COMMAND, RK_QUERY, RK_OP_TYPE, RK_OP_NAME,
       RK_FIELDS, RK_TOOL, RK_PARAMS, RK_COUNT };
_Static_assert(sizeof(rule_keys) / sizeof(rule_keys[0]) == RK_COUNT, "rule keys");

static bool in_set(const char *s, const char *const *set, size_t n, bool nocase)
{
	for (size_t i = 0; i < n; i++)
		if ((nocase ? strcasecmp(s, set[i]) : strcmp(s, set[i])) == 0)
			return true;
	return false;
}
#define IN_SET(s, set, nocase) in_set((s), (set), sizeof(set) / sizeof((set)[0]), (nocase))

void free_matcher(struct policy_query_matcher *m)
{
	free(m->key);
	for (size_t i = 0; i < m->n_globs; i++)
		free(m->globs[i]);
	free(m->globs);
}

static void free_strings(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void free_rule(struct policy_l7_rule *r)
{
	free(r->method);
	free(r->path);
	for (size_t i = 0; i < r->n_query; i++)
		free_matcher(&r->query[i]);
	free(r->query);
	free(r->operation_type);
	free(r->operation_name);
	free_strings(r->fields, r->n_fields);
	if (r->tool) {
		free_matcher(r->tool);
		free(r->tool);
	}
	free(r->command);
}

/* `v` is a glob string or {any: [glob, ...]} (non-empty). */
bool load_matcher(struct load_ctx *c, yaml_node_t *v, const char *what,
		  struct policy_query_matcher *m)
{
	static const char *const names[] = { "any" };
	struct kv f[1];
	char *s;

	if (v->type == YAML_SCALAR_NODE) {
		if (!get_string(c, v, what, &s))
			return false;
		m->globs = malloc(sizeof(*m->globs));
		if (!m->globs) {
			free(s);
			note_oom(c);
			return false;
		}
		m->globs[0] = s;
		m->n_globs = 1;
		return true;
	}
	if (v->type != YAML_MAPPING_NODE) {
		err_at(c, v, "matcher '%s' must be a glob string or {any: [...]}", what);
		return false;
	}
	if (!read_struct(c, v, "matcher (only 'any' is allowed)", names, 1, f))
		return false;
	if (!f[0].val) {
		err_at(c, v, "matcher '%s' needs 'any: [globs]'", what);
		return false;
	}
	m->any = true;
	if (!get_string_list(c, f[0].val, "any", &m->globs, &m->n_globs))
		return false;
	if (m->n_globs == 0) {
		err_at(c, f[0].val, "matcher '%s': 'any' must not be empty", what);
		return false;
	}
	return true;
}

struct query_arg {
	struct policy_l7_rule *r;
	bool ok;
};

static void query_entry(struct load_ctx *c, yaml_node_t *k, yaml_node_t *v, void *arg)
{
	struct query_arg *a = arg;
	struct policy_query_matcher *grown, *m;

	grown = realloc(a->r->query, (a->r->n_query + 1) * sizeof(*grown));
	if (!grown) {
		note_oom(c);
		a->ok = false;
		return;
	}
	a->r->query = grown;
	m = &grown[a->r->n_query];
	memset(m, 0, sizeof(*m));
	m->key = strdup(scalar_text(k));
	if (!m->key) {
		note_oom(c);
		a->ok = false;
		return;
	}
	a->r->n_query++;
	if (!load_matcher(c, v, m->key, m))
		a->ok = false;
}

static bool load_tool(struct load_ctx *c, struct kv *f, struct policy_l7_rule *r)
{
	static const char *const names[] = { "name" };
	struct kv pf[1];
	yaml_node_t *node = f[RK_TOOL].val;

	if (f[RK_PARAMS].val) {
		if (!read_struct(c, f[RK_PARAMS].val,
				 "params (only 'name' is supported; argument matching is not)",
				 names, 1, pf))
			return false;
		if (pf[0].val && node) {
			err_at(c, f[RK_PARAMS].key, "'tool' and 'params.name' cannot both be set");
			return false;
		}
		if (pf[0].val)
			node = pf[0].val;
	}
	if (!node)
		return true;
	r->tool = calloc(1, sizeof(*r->tool));
	if (!r->tool) {
		note_oom(c);
		return false;
	}
	return load_matcher(c, node, "tool", r->tool);
}

/* Reads one rule mapping (an `allow` body or a deny rule) into r. */
static bool load_rule_fields(struct load_ctx *c, yaml_node_t *map, const char *what,
			     struct policy_l7_rule *r, struct kv *f)
{
	struct query_arg qa = { r, true };
	bool ok;

	if (!read_struct(c, map, what, rule_keys, RK_COUNT, f))
		return false;
	ok = true;
	if (f[RK_METHOD].val && !get_string(c, f[RK_METHOD].val, "method", &r->method))
		ok = false;
	if (f[RK_PATH].val && !get_string(c, f[RK_PATH].val, "path", &r->path))
		ok = false;
	if (f[RK_COMMAND].val && !get_string(c, f[RK_COMMAND].val, "command", &r->command))
		ok = false;
	if (f[RK_OP_TYPE].val &&
	    !get_string(c, f[RK_OP_TYPE].val, "operation_type", &r->operation_type))
		ok = false;
	if (f[RK_OP_NAME].val &&
	    !get_string(c, f[RK_OP_NAME].val, "operation_name", &r->operation_name))
		ok = false;
	if (f[RK_FIELDS].val &&
	    !get_string_list(c, f[RK_FIELDS].val, "fields", &r->fields, &r->n_fields))
		ok = false;
	if (f[RK_QUERY].val && (!read_map(c, f[RK_QUERY].val, "query", query_entry, &qa) ||
				!qa.ok))
		ok = false;
	if (!load_tool(c, f, r))
		ok = false;
	return ok;
}

static bool rule_is_empty(const struct policy_l7_rule *r)
{
	return !r->method && !r->path && !r->command && !r->operation_type &&
	       !r->operation_name && !r->fields && !r->tool;
}

static bool rule_has_graphql(const struct policy_l7_rule *r)
{
	return r->operation_type || r->operation_name || r->fields;
}

static void check_graphql_rule(struct load_ctx *c, const struct policy_l7_rule *r,
			       struct kv *f, yaml_node_t *map)
{
	static const char *const ops[] = { "query", "mutation", "subscription", "*" };

	if (!r->operation_type)
		err_at(c, map, "graphql rule needs an 'operation_type'");
	else if (!IN_SET(r->operation_type, ops, false))
		err_at(c, f[RK_OP_TYPE].val, "unknown GraphQL operation_type '%s' "
		       "(query, mutation, subscription or *)", SHOW(r->operation_type));
}

static void check_http_rule(struct load_ctx *c, const struct ep_info *e,
			    const struct policy_l7_rule *r, struct kv *f, yaml_node_t *map)
{
	static const char *const http[] = { "GET", "HEAD", "POST", "PUT", "DELETE",
					    "PATCH", "OPTIONS", "*" };
	static const char *const ws[] = { "GET", "WEBSOCKET_TEXT", "*" };
	bool is_ws = e->protocol == POLICY_PROTO_WEBSOCKET;

	if (is_ws && rule_has_graphql(r)) {
		if (r->method || r->path || r->n_query)
			err_at(c, map, "a websocket rule cannot mix method/path/query with "
			       "GraphQL operation fields");
		check_graphql_rule(c, r, f, map);
		return;
	}
	if (!r->method)
		err_at(c, map, "%s rule needs a 'method'", policy_protocol_name(e->protocol));
	else if (is_ws ? !IN_SET(r->method, ws, true) : !IN_SET(r->method, http, true))
		err_at(c, f[RK_METHOD].val, "unknown %s method '%s'",
		       is_ws ? "websocket" : "HTTP", SHOW(r->method));
	if (!r->path)
		err_at(c, map, "%s rule needs a 'path' (use \"**\" for every path)",
		       policy_protocol_name(e->protocol));
	else if (r->path[0] != '/' && strcmp(r->path, "**") != 0)
		err_at(c, f[RK_PATH].val, "rule path '%s' must start with '/' or be '**'",
		       SHOW(r->path));
}

static void check_json_rpc_rule(struct load_ctx *c, const struct policy_l7_rule *r,
				struct kv *f, yaml_node_t *map)
{
	static const int forbidden[] = { RK_PATH, RK_QUERY, RK_TOOL, RK_PARAMS };

	if (!r->method)
		err_at(c, map, "json-rpc rule needs a 'method'");
	else if (strcmp(r->method, "*") != 0 && has_glob_meta(r->method))
		err_at(c, f[RK_METHOD].val, "json-rpc method '%s': only exact names or "
		       "\"*\" are allowed, not globs", SHOW(r->method));
	for (size_t i = 0; i < sizeof(forbidden) / sizeof(forbidden[0]); i++)
		if (f[forbidden[i]].key)
			err_at(c, f[forbidden[i]].key, "'%s' is not allowed in a json-rpc rule",
			       rule_keys[forbidden[i]]);
}

static void check_mcp_rule(struct load_ctx *c, const struct ep_info *e,
			   struct policy_l7_rule *r, struct kv *f, yaml_node_t *map)
{
	if (f[RK_PATH].key)
		err_at(c, f[RK_PATH].key, "'path' is not allowed in an mcp rule");
	if (f[RK_QUERY].key)
		err_at(c, f[RK_QUERY].key, "'query' is not allowed in an mcp rule");
	if (!r->method && !e->mcp_allow_all)
		err_at(c, map, "mcp rule needs a 'method' (or set "
		       "mcp.allow_all_known_mcp_methods)");
	if (r->method && has_glob_meta(r->method) && strcmp(r->method, "*") != 0 &&
	    strncmp(r->method, "tools/", 6) != 0)
		err_at(c, f[RK_METHOD].val, "mcp method '%s': globs are allowed only in "
		       "the tools/ family", SHOW(r->method));
	if (!r->tool)
		return;
	if (r->method && strcmp(r->method, "tools/call") != 0)
		err_at(c, f[RK_METHOD].val, "an mcp rule with a tool selector must use "
		       "method tools/call");
	for (size_t i = 0; i < r->tool->n_globs; i++)
		if (has_glob_meta(r->tool->globs[i]) && !e->mcp_strict_tool_names)
			err_at(c, map, "a wildcard tool matcher needs "
			       "mcp.strict_tool_names: true");
}

static void check_common(struct load_ctx *c, const struct ep_info *e,
			 const struct policy_l7_rule *r, struct kv *f)
{
	if (e->protocol != POLICY_PROTO_MCP) {
		if (f[RK_TOOL].key)
			err_at(c, f[RK_TOOL].key, "'tool' is only allowed with protocol mcp");
		if (f[RK_PARAMS].key)
			err_at(c, f[RK_PARAMS].key, "'params' is only allowed with protocol mcp");
	}
	if (r->fields && r->n_fields == 0)
		err_at(c, f[RK_FIELDS].val, "'fields' must not be empty when present");
	for (size_t i = 0; i < r->n_fields; i++)
		if (!r->fields[i][0])
			err_at(c, f[RK_FIELDS].val, "'fields' entries must not be empty");
}

static void check_rule(struct load_ctx *c, const struct ep_info *e,
		       struct policy_l7_rule *r, struct kv *f, yaml_node_t *map)
{
	check_common(c, e, r, f);
	switch (e->protocol) {
	case POLICY_PROTO_NONE:
	case POLICY_PROTO_REST:
	case POLICY_PROTO_WEBSOCKET:
		check_http_rule(c, e, r, f, map);
		break;
	case POLICY_PROTO_GRAPHQL:
		check_graphql_rule(c, r, f, map);
		break;
	case POLICY_PROTO_JSON_RPC:
		check_json_rpc_rule(c, r, f, map);
		break;
	case POLICY_PROTO_MCP:
		check_mcp_rule(c, e, r, f, map);
		break;
	case POLICY_PROTO_SQL:
	case POLICY_PROTO_TCP:
		break;
	}
}

/* Loads `rules:` (is_deny = false: items are {allow: {...}}) or
 * `deny_rules:` (flat items). */
bool load_rule_list(struct load_ctx *c, yaml_node_t *list, bool is_deny,
		    const struct ep_info *e, struct rule_list *out)
{
	static const char *const allow_key[] = { "allow" };
	const char *what = is_deny ? "deny_rules" : "rules";
	long n = seq_len(c, list, what);

	if (n < 0)
		return false;
	if (n == 0) {
		err_at(c, list, "'%s' must not be empty (%s)", what, is_deny ?
		       "remove the key" : "an empty list denies everything; use access: "
		       "full or remove the key");
		return false;
	}
	out->rules = calloc((size_t)n, sizeof(*out->rules));
	out->nodes = calloc((size_t)n, sizeof(*out->nodes));
	if (!out->rules || !out->nodes) {
		note_oom(c);
		return false;
	}
	for (long i = 0; i < n && !c->over_budget; i++) {
		yaml_node_t *item = seq_item(c, list, i), *body = item;
		struct policy_l7_rule *r = &out->rules[out->n];
		struct kv wrap[1], f[RK_COUNT];

		if (!item)
			continue;
		if (!is_deny) {
			if (!read_struct(c, item, "rules item", allow_key, 1, wrap))
				continue;
			if (!wrap[0].val) {
				err_at(c, item, "rules item needs an 'allow' mapping");
				continue;
			}
			body = wrap[0].val;
		}
		out->nodes[out->n++] = body;
		if (load_rule_fields(c, body, is_deny ? "deny rule" : "allow rule", r, f))
			check_rule(c, e, r, f, body);
	}
	return true;
}

void free_rule_list(struct policy_l7_rule *rules, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free_rule(&rules[i]);
	free(rules);
}

static bool covers_tools_call(const char *method)
{
	return !method || value_glob_match(method, "tools/call", 0);
}

/* MCP: once a rule selects tools, a rule covering tools/call without a tool
 * selector would widen or erase the tool filter. Also normalizes empty
 * rules under the method profile. */
void finish_mcp_rules(struct load_ctx *c, const struct ep_info *e,
		      struct rule_list *allow, struct rule_list *deny)
{
	bool any_tool = false;
	struct rule_list *lists[2] = { allow, deny };

	for (size_t i = 0; i < allow->n; i++)
		any_tool = any_tool || allow->rules[i].tool;
	for (size_t l = 0; l < 2 && any_tool; l++)
		for (size_t i = 0; i < lists[l]->n; i++)
			if (!lists[l]->rules[i].tool &&
			    covers_tools_call(lists[l]->rules[i].method))
				err_at(c, lists[l]->nodes[i], "this rule covers tools/call "
				       "without a tool selector, which would widen the "
				       "tool filter of the other rules");
	for (size_t l = 0; l < 2 && e->mcp_allow_all; l++) {
		for (size_t i = 0; i < lists[l]->n; i++) {
			struct policy_l7_rule *r = &lists[l]->rules[i];

			if (!r->method && !(r->method = strdup(r->tool ? "tools/call" : "*")))
				note_oom(c);
		}
	}
}

/* WebSocket carrying GraphQL: a WEBSOCKET_TEXT allow would bypass it. */
void finish_ws_rules(struct load_ctx *c, const struct rule_list *allow,
		     const struct rule_list *deny, bool has_pq)
{
	bool graphql = has_pq;

	for (size_t i = 0; i < allow->n; i++)
		graphql = graphql || rule_has_graphql(&allow->rules[i]);
	for (size_t i = 0; i < deny->n; i++)
		graphql = graphql || rule_has_graphql(&deny->rules[i]);
	if (!graphql)
		return;
	for (size_t i = 0; i < allow->n; i++)
		if (allow->rules[i].method &&
		    strcasecmp(allow->rules[i].method, "WEBSOCKET_TEXT") == 0)
			err_at(c, allow->nodes[i], "a WEBSOCKET_TEXT allow rule is not "
			       "allowed on a websocket endpoint with GraphQL policy");
}

bool all_rules_empty(const struct rule_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		if (!rule_is_empty(&l->rules[i]))
			return false;
	return true;
}

/* ---- presets (§7.8) ---- */

static bool add_rule(struct rule_list *l, size_t cap, const char *method,
		     const char *path, const char *op_type)
{
	struct policy_l7_rule *r;

	if (l->n == cap)
		return false;
	r = &l->rules[l->n++];
	memset(r, 0, sizeof(*r));
	if (method && !(r->method = strdup(method)))
		return false;
	if (path && !(r->path = strdup(path)))
		return false;
	if (op_type && !(r->operation_type = strdup(op_type)))
		return false;
	return true;
}

/* The method (or GraphQL operation type) list of a preset. */
static size_t preset_items(enum policy_protocol proto, enum policy_access access,
			   const char *const **out)
{
	static const char *const http_ro[] = { "GET", "HEAD", "OPTIONS" };
	static const char *const http_rw[] = { "GET", "HEAD", "OPTIONS", "POST", "PUT",
					       "PATCH" };
	static const char *const ws_ro[] = { "GET" };
	static const char *const ws_rw[] = { "GET", "WEBSOCKET_TEXT" };
	static const char *const gql_ro[] = { "query" };
	static const char *const gql_rw[] = { "query", "mutation" };
	static const char *const full[] = { "*" };
#define PRESET(a) (*out = (a), sizeof(a) / sizeof((a)[0]))
	if (access == POLICY_ACCESS_FULL)
		return PRESET(full);
	if (proto == POLICY_PROTO_GRAPHQL)
		return access == POLICY_ACCESS_READ_ONLY ? PRESET(gql_ro) : PRESET(gql_rw);
	if (proto == POLICY_PROTO_WEBSOCKET)
		return access == POLICY_ACCESS_READ_ONLY ? PRESET(ws_ro) : PRESET(ws_rw);
	return access == POLICY_ACCESS_READ_ONLY ? PRESET(http_ro) : PRESET(http_rw);
#undef PRESET
}

bool expand_preset(enum policy_protocol proto, enum policy_access access,
		   struct rule_list *out)
{
	const char *const *items;
	bool graphql = proto == POLICY_PROTO_GRAPHQL;
	size_t n;

	if (access == POLICY_ACCESS_NONE)
		return true;
	n = preset_items(proto, access, &items);
	out->rules = calloc(n, sizeof(*out->rules));
	if (!out->rules)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!add_rule(out, n, graphql ? NULL : items[i], graphql ? NULL : "**",
			      graphql ? items[i] : NULL))
			return false;
	return true;
}
