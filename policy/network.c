/* network.c - network_policies (rules, binaries) and network_middlewares. */
#include <stdlib.h>
#include <string.h>

#include "policy/load_parts.h"

static bool grow(struct load_ctx *c, void **arr, size_t n, size_t size)
{
	void *g = realloc(*arr, (n + 1) * size);

	if (!g) {
		note_oom(c);
		return false;
	}
	*arr = g;
	memset((char *)g + n * size, 0, size);
	return true;
}

/* Binary paths: absolute, '**' only as a whole segment. */
static void check_binary_path(struct load_ctx *c, yaml_node_t *n, const char *path)
{
	if (path[0] != '/') {
		err_at(c, n, "binary path '%s' must be absolute", SHOW(path));
		return;
	}
	if (strlen(path) > POLICY_MAX_PATH_BYTES) {
		err_at(c, n, "binary path is longer than %u bytes", POLICY_MAX_PATH_BYTES);
		return;
	}
	for (const char *s = path; (s = strstr(s, "**")) != NULL; s += 2) {
		if (s[-1] != '/' || (s[2] != '\0' && s[2] != '/')) {
			err_at(c, n, "binary path '%s': '**' must be a whole path segment",
			       SHOW(path));
			return;
		}
	}
}

static void load_binaries(struct load_ctx *c, yaml_node_t *list, struct policy_rule *r)
{
	static const char *const keys[] = { "path", "harness" };
	long n = seq_len(c, list, "binaries");

	if (n <= 0)
		return;
	r->binaries = calloc((size_t)n, sizeof(*r->binaries));
	if (!r->binaries) {
		note_oom(c);
		return;
	}
	for (long i = 0; i < n && !c->over_budget; i++) {
		yaml_node_t *item = seq_item(c, list, i);
		struct kv f[2];
		bool ignored;
		char *path;

		if (!read_struct(c, item, "binary", keys, 2, f))
			continue;
		if (f[1].val)
			get_bool(c, f[1].val, "harness", &ignored); /* deprecated, ignored */
		if (!f[0].val) {
			err_at(c, item, "binary needs a 'path'");
			continue;
		}
		if (!get_string(c, f[0].val, "path", &path))
			continue;
		check_binary_path(c, f[0].val, path);
		if (strcmp(path, "/**") == 0)
			warn_at(c, f[0].val, "binary path '/**' matches every binary, "
				"which defeats binary scoping");
		r->binaries[r->n_binaries++].path = path;
	}
}

static void load_endpoints(struct load_ctx *c, yaml_node_t *list, struct policy_rule *r)
{
	long n = seq_len(c, list, "endpoints");

	if (n <= 0)
		return;
	c->n_endpoints += (size_t)n;
	if (c->n_endpoints > POLICY_MAX_ENDPOINTS) {
		if (c->n_endpoints - (size_t)n <= POLICY_MAX_ENDPOINTS)
			err_at(c, list, "more than %u endpoints in the policy",
			       POLICY_MAX_ENDPOINTS);
		return;
	}
	r->endpoints = calloc((size_t)n, sizeof(*r->endpoints));
	if (!r->endpoints) {
		note_oom(c);
		return;
	}
	for (long i = 0; i < n && !c->over_budget; i++) {
		yaml_node_t *item = seq_item(c, list, i);

		if (item)
			load_endpoint(c, item, &r->endpoints[r->n_endpoints++]);
	}
}

static void rule_entry(struct load_ctx *c, yaml_node_t *k, yaml_node_t *v, void *arg)
{
	static const char *const keys[] = { "name", "endpoints", "binaries" };
	struct policy *p = arg;
	const char *key = scalar_text(k);
	struct policy_rule *r;
	struct kv f[3];

	if (!key[0])
		err_at(c, k, "network policy key must not be empty");
	else if (strncmp(key, "_provider_", 10) == 0)
		err_at(c, k, "network policy key '%s': the '_provider_' prefix is reserved "
		       "for provider-composed rules", SHOW(key));
	if (!grow(c, (void **)&p->rules, p->n_rules, sizeof(*p->rules)))
		return;
	r = &p->rules[p->n_rules++];
	r->line = node_line(v);
	r->col = node_col(v);
	if (!(r->key = strdup(key))) {
		note_oom(c);
		return;
	}
	if (!read_struct(c, v, "network policy", keys, 3, f))
		return;
	if (f[0].val)
		get_string(c, f[0].val, "name", &r->name);
	if (r->name && !r->name[0]) {
		free(r->name);
		r->name = NULL;
	}
	if (!r->name && !(r->name = strdup(key)))
		note_oom(c);
	if (f[1].val)
		load_endpoints(c, f[1].val, r);
	if (f[2].val)
		load_binaries(c, f[2].val, r);
	if (r->n_binaries == 0 && r->n_endpoints > 0)
		warn_at(c, k, "network policy '%s' lists no binaries: any binary may use "
			"its endpoints", SHOW(key));
}

static int cmp_rule_key(const void *a, const void *b)
{
	const struct policy_rule *x = a, *y = b;

	return strcmp(x->key ? x->key : "", y->key ? y->key : "");
}

void load_network_policies(struct load_ctx *c, yaml_node_t *map, struct policy *p)
{
	read_map(c, map, "network_policies", rule_entry, p);
	if (p->n_rules > 1)
		qsort(p->rules, p->n_rules, sizeof(*p->rules), cmp_rule_key);
}

/* ---- network_middlewares ---- */

struct mw_ctx {
	struct policy *p;
	yaml_node_t *order_nodes[POLICY_MAX_MIDDLEWARES];
};

static void check_pattern(struct load_ctx *c, yaml_node_t *item, const char *s, void *arg)
{
	(void)arg;
	check_selector_pattern(c, item, s);
}

static void load_patterns(struct load_ctx *c, yaml_node_t *n, const char *what,
			  char ***out, size_t *n_out)
{
	get_checked_string_list(c, n, what, out, n_out, check_pattern, NULL);
}

static void load_mw_endpoints(struct load_ctx *c, struct kv sel, yaml_node_t *entry,
			      struct policy_middleware *m)
{
	static const char *const keys[] = { "include", "exclude" };
	struct kv f[2];

	if (!sel.val) {
		err_at(c, entry, "middleware needs an 'endpoints' selector with 'include'");
		return;
	}
	if (!read_struct(c, sel.val, "middleware endpoints", keys, 2, f))
		return;
	if (f[0].val)
		load_patterns(c, f[0].val, "include", &m->endpoints_include,
			      &m->n_endpoints_include);
	if (f[1].val)
		load_patterns(c, f[1].val, "exclude", &m->endpoints_exclude,
			      &m->n_endpoints_exclude);
	if (m->n_endpoints_include == 0)
		err_at(c, f[0].val ? f[0].val : sel.val,
		       "middleware endpoints 'include' must not be empty");
	if (m->n_endpoints_include + m->n_endpoints_exclude > POLICY_MAX_MW_PATTERNS)
		err_at(c, sel.val, "middleware endpoints hold more than %u patterns",
		       POLICY_MAX_MW_PATTERNS);
}

static void load_mw_order(struct load_ctx *c, struct mw_ctx *mc, yaml_node_t *n,
			  struct policy_middleware *m)
{
	int64_t v;
	size_t idx = mc->p->n_middlewares - 1;

	if (n && get_int(c, n, "order", INT32_MIN, INT32_MAX, &v))
		m->order = (int32_t)v;
	for (size_t i = 0; i < idx; i++) {
		if (mc->p->middlewares[i].order == m->order) {
			err_at(c, n ? n : mc->order_nodes[idx],
			       "middleware order %d is already used by '%s'; orders must be unique",
			       (int)m->order, SHOW(mc->p->middlewares[i].key));
			break;
		}
	}
}

static void load_mw_fields(struct load_ctx *c, struct mw_ctx *mc, yaml_node_t *v,
			   struct policy_middleware *m)
{
	static const char *const keys[] = { "name", "middleware", "order", "config",
					    "on_error", "endpoints" };
	struct kv f[6];
	char *on_error;

	if (!read_struct(c, v, "middleware", keys, 6, f))
		return;
	if (f[0].val)
		get_string(c, f[0].val, "name", &m->name);
	if (!f[1].val)
		err_at(c, v, "middleware entry needs a 'middleware' name");
	else if (get_string(c, f[1].val, "middleware", &m->middleware) && !m->middleware[0])
		err_at(c, f[1].val, "'middleware' must not be empty");
	load_mw_order(c, mc, f[2].val, m);
	if (f[3].val && f[3].val->type != YAML_MAPPING_NODE && !is_empty_plain(f[3].val))
		err_at(c, f[3].val, "middleware 'config' must be a mapping");
	else if (f[3].val)
		check_any_value(c, f[3].val, 0);
	if (f[4].val && get_string(c, f[4].val, "on_error", &on_error)) {
		if (strcmp(on_error, "fail_open") == 0)
			m->fail_open = true;
		else if (strcmp(on_error, "fail_closed") != 0)
			err_at(c, f[4].val, "unknown on_error '%s' (fail_closed or fail_open)",
			       SHOW(on_error));
		free(on_error);
	}
	load_mw_endpoints(c, f[5], v, m);
}

static void mw_entry(struct load_ctx *c, yaml_node_t *k, yaml_node_t *v, void *arg)
{
	struct mw_ctx *mc = arg;
	struct policy *p = mc->p;
	const char *key = scalar_text(k);
	struct policy_middleware *m;

	if (p->n_middlewares == POLICY_MAX_MIDDLEWARES) {
		err_at(c, k, "more than %u network_middlewares", POLICY_MAX_MIDDLEWARES);
		return;
	}
	if (!key[0])
		err_at(c, k, "middleware key must not be empty");
	if (!grow(c, (void **)&p->middlewares, p->n_middlewares, sizeof(*p->middlewares)))
		return;
	m = &p->middlewares[p->n_middlewares++];
	mc->order_nodes[p->n_middlewares - 1] = v;
	m->line = node_line(v);
	m->col = node_col(v);
	if (!(m->key = strdup(key))) {
		note_oom(c);
		return;
	}
	load_mw_fields(c, mc, v, m);
	if ((!m->name || !m->name[0])) {
		free(m->name);
		if (!(m->name = strdup(key)))
			note_oom(c);
	}
}

void load_middlewares(struct load_ctx *c, yaml_node_t *map, struct policy *p)
{
	struct mw_ctx mc = { .p = p };

	read_map(c, map, "network_middlewares", mw_entry, &mc);
}

static bool selector_may_match(const struct policy_middleware *m, const char *host)
{
	bool inc = false;

	for (size_t i = 0; i < m->n_endpoints_include && !inc; i++)
		inc = host_patterns_overlap(m->endpoints_include[i], host);
	if (!inc)
		return false;
	for (size_t i = 0; i < m->n_endpoints_exclude; i++)
		if (!strchr(host, '*') && host[0] &&
		    policy_host_match(m->endpoints_exclude[i], host))
			return false;
	return true;
}

void check_middleware_tls_skip(struct load_ctx *c, struct policy *p)
{
	for (size_t i = 0; i < p->n_middlewares; i++) {
		const struct policy_middleware *m = &p->middlewares[i];

		for (size_t r = 0; r < p->n_rules && !m->fail_open; r++) {
			for (size_t e = 0; e < p->rules[r].n_endpoints; e++) {
				const struct policy_endpoint *ep = &p->rules[r].endpoints[e];

				if (ep->tls != POLICY_TLS_SKIP || !ep->host ||
				    !selector_may_match(m, ep->host))
					continue;
				err_pos(c, m->line, m->col, "fail_closed middleware '%s' may "
					"select host '%s' (policy '%s', line %u), which uses "
					"tls: skip and cannot be inspected; use on_error: "
					"fail_open or exclude the host", SHOW(m->key),
					SHOW(ep->host), SHOW(p->rules[r].key), ep->line);
			}
		}
	}
}

void free_rule_model(struct policy_rule *r)
{
	free(r->key);
	free(r->name);
	for (size_t i = 0; i < r->n_endpoints; i++)
		free_endpoint(&r->endpoints[i]);
	free(r->endpoints);
	for (size_t i = 0; i < r->n_binaries; i++)
		free(r->binaries[i].path);
	free(r->binaries);
}

void free_middleware_model(struct policy_middleware *m)
{
	free(m->key);
	free(m->name);
	free(m->middleware);
	for (size_t i = 0; i < m->n_endpoints_include; i++)
		free(m->endpoints_include[i]);
	free(m->endpoints_include);
	for (size_t i = 0; i < m->n_endpoints_exclude; i++)
		free(m->endpoints_exclude[i]);
	free(m->endpoints_exclude);
}
