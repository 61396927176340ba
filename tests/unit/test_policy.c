/* test_policy.c - policy loader, validation and L4 matcher. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <unistd.h>
#include <cmocka.h>

#include "policy/policy.h"

/* ---- helpers ---- */

static struct policy *load(const char *yaml, struct policy_errors *e)
{
	memset(e, 0, sizeof(*e));
	return policy_load_buffer(yaml, strlen(yaml), "policy.yaml", e);
}

static struct policy *load_ok(const char *yaml)
{
	struct policy_errors e;
	struct policy *p = load(yaml, &e);

	for (size_t i = 0; i < e.n; i++)
		fprintf(stderr, "unexpected: %s\n", e.msgs[i]);
	assert_non_null(p);
	assert_int_equal(e.n, 0);
	policy_errors_free(&e);
	return p;
}

/* The load fails and one message starts with "policy.yaml:<pos>: " and
 * contains `needle`. */
static void expect_error_at(const char *yaml, const char *pos, const char *needle)
{
	struct policy_errors e;
	struct policy *p = load(yaml, &e);
	char prefix[64];
	bool found = false;

	snprintf(prefix, sizeof(prefix), "policy.yaml:%s: ", pos);
	for (size_t i = 0; i < e.n && !found; i++)
		found = strncmp(e.msgs[i], prefix, strlen(prefix)) == 0 &&
			strstr(e.msgs[i], needle) != NULL;
	if (!found) {
		fprintf(stderr, "wanted %s...%s; got:\n", prefix, needle);
		for (size_t i = 0; i < e.n; i++)
			fprintf(stderr, "  %s\n", e.msgs[i]);
	}
	policy_free(p);
	policy_errors_free(&e);
	assert_null(p);
	assert_true(found);
}

static void expect_rejected(const char *yaml)
{
	struct policy_errors e;
	struct policy *p = load(yaml, &e);

	if (p)
		fprintf(stderr, "accepted but should not be:\n%s\n", yaml);
	assert_null(p);
	assert_true(e.n > 0);
	for (size_t i = 0; i < e.n; i++)
		assert_non_null(strstr(e.msgs[i], "policy.yaml:"));
	policy_errors_free(&e);
}

static const struct policy_rule *rule(const struct policy *p, const char *key)
{
	for (size_t i = 0; i < p->n_rules; i++)
		if (strcmp(p->rules[i].key, key) == 0)
			return &p->rules[i];
	fail_msg("no rule %s", key);
	return NULL;
}

/* One endpoint inside a one-rule policy, for short negative tests. */
#define EP_HEAD "version: 1\nnetwork_policies:\n  r:\n    endpoints:\n      - host: svc.example.net\n"

/* ---- examples (in the spirit of policy.md §17, own values) ---- */

static const char example_a[] =
	"version: 1\n"
	"filesystem_policy:\n"
	"  include_workdir: false\n"
	"  read_only: [/usr, /lib64, /etc]\n"
	"  read_write: [/scratch, /tmp]\n"
	"landlock:\n"
	"  compatibility: hard_requirement\n"
	"process:\n"
	"  run_as_user: \"+3100\"\n"
	"  seccomp: strict\n"
	"network_policies:\n"
	"  pkg_mirror:\n"
	"    endpoints:\n"
	"      - host: Deb.Mirror.Example.ORG\n"
	"        ports: [8080, 80, 443, 80]\n"
	"    binaries:\n"
	"      - path: /usr/bin/apt\n"
	"      - path: /usr/lib/apt/methods/*\n"
	"        harness: true\n"
	"  aaa_first:\n"
	"    name: first-rule\n"
	"    endpoints:\n"
	"      - { host: one.example.org, port: 443 }\n";

static void test_example_a(void **state)
{
	struct policy *p = load_ok(example_a);
	const struct policy_rule *r;
	const struct policy_endpoint *ep;

	(void)state;
	assert_int_equal(p->version, 1);
	assert_true(p->has_filesystem_policy);
	assert_false(p->include_workdir);
	assert_int_equal(p->n_read_only, 3);
	assert_string_equal(p->read_only[1], "/lib64");
	assert_int_equal(p->n_read_write, 2);
	assert_int_equal(p->landlock_compat, POLICY_LANDLOCK_HARD_REQUIREMENT);
	assert_string_equal(p->run_as_user, "3100");
	assert_null(p->run_as_group);
	assert_string_equal(p->seccomp_profile, "strict");
	assert_int_equal(p->n_rules, 2);
	assert_string_equal(p->rules[0].key, "aaa_first"); /* sorted by key */
	assert_string_equal(p->rules[0].name, "first-rule");
	r = rule(p, "pkg_mirror");
	assert_string_equal(r->name, "pkg_mirror");
	assert_int_equal(r->n_endpoints, 1);
	ep = &r->endpoints[0];
	assert_string_equal(ep->host, "deb.mirror.example.org");
	assert_false(ep->host_is_wildcard);
	assert_int_equal(ep->n_ports, 3);
	assert_int_equal(ep->ports[0], 80);
	assert_int_equal(ep->ports[1], 443);
	assert_int_equal(ep->ports[2], 8080);
	assert_int_equal(ep->protocol, POLICY_PROTO_NONE);
	assert_int_equal(ep->tls, POLICY_TLS_AUTO);
	assert_int_equal(ep->enforcement, POLICY_ENFORCE_AUDIT);
	assert_int_equal(ep->line, 14);
	assert_int_equal(ep->col, 9);
	assert_int_equal(r->n_binaries, 2);
	assert_string_equal(r->binaries[1].path, "/usr/lib/apt/methods/*");
	assert_string_equal(p->source, "policy.yaml");
	policy_free(p);
}

static const char example_b[] =
	"version: 1\n"
	"network_policies:\n"
	"  wiki:\n"
	"    name: wiki-service\n"
	"    endpoints:\n"
	"      - host: wiki.corp.example\n"
	"        port: 8443\n"
	"        protocol: rest\n"
	"        enforcement: enforce\n"
	"        access: read-write\n"
	"        tls: terminate\n"
	"        deny_rules:\n"
	"          - method: \"*\"\n"
	"            path: /settings/**\n"
	"          - method: GET\n"
	"            path: /export/*\n"
	"            query:\n"
	"              fmt: { any: [pdf, \"doc*\"] }\n"
	"      - host: \"*.static.corp.example\"\n"
	"        port: 443\n"
	"        protocol: rest\n"
	"        rules:\n"
	"          - allow:\n"
	"              method: GET\n"
	"              path: /img/**\n"
	"              query:\n"
	"                rev: \"3*\"\n"
	"    binaries:\n"
	"      - path: /usr/bin/python3.11\n";

static void test_example_b(void **state)
{
	struct policy *p = load_ok(example_b);
	const struct policy_endpoint *ep, *wild;
	static const char *const rw[] = { "GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH" };

	(void)state;
	ep = &p->rules[0].endpoints[0];
	assert_string_equal(p->rules[0].name, "wiki-service");
	assert_int_equal(ep->protocol, POLICY_PROTO_REST);
	assert_int_equal(ep->enforcement, POLICY_ENFORCE_ENFORCE);
	assert_int_equal(ep->access, POLICY_ACCESS_READ_WRITE);
	assert_int_equal(ep->tls, POLICY_TLS_TERMINATE);
	assert_int_equal(ep->n_rules, 6); /* preset expanded, no DELETE */
	for (size_t i = 0; i < 6; i++) {
		assert_string_equal(ep->rules[i].method, rw[i]);
		assert_string_equal(ep->rules[i].path, "**");
	}
	assert_int_equal(ep->n_deny_rules, 2);
	assert_string_equal(ep->deny_rules[0].method, "*");
	assert_string_equal(ep->deny_rules[0].path, "/settings/**");
	assert_int_equal(ep->deny_rules[1].n_query, 1);
	assert_string_equal(ep->deny_rules[1].query[0].key, "fmt");
	assert_true(ep->deny_rules[1].query[0].any);
	assert_int_equal(ep->deny_rules[1].query[0].n_globs, 2);
	assert_string_equal(ep->deny_rules[1].query[0].globs[1], "doc*");
	wild = &p->rules[0].endpoints[1];
	assert_true(wild->host_is_wildcard);
	assert_int_equal(wild->enforcement, POLICY_ENFORCE_AUDIT);
	assert_int_equal(wild->n_rules, 1);
	assert_false(wild->rules[0].query[0].any);
	assert_string_equal(wild->rules[0].query[0].globs[0], "3*");
	policy_free(p);
}

static const char example_c[] =
	"version: 1\n"
	"network_policies:\n"
	"  tracker:\n"
	"    endpoints:\n"
	"      - host: api.tracker.example\n"
	"        port: 443\n"
	"        path: /issues/**\n"
	"        protocol: rest\n"
	"        enforcement: enforce\n"
	"        rules:\n"
	"          - allow: { method: GET, path: /issues/** }\n"
	"          - allow: { method: PUT, path: \"/issues/*/labels\" }\n"
	"      - host: api.tracker.example\n"
	"        port: 443\n"
	"        path: /gql\n"
	"        protocol: graphql\n"
	"        graphql_max_body_bytes: 20000\n"
	"        rules:\n"
	"          - allow: { operation_type: query }\n"
	"          - allow:\n"
	"              operation_type: mutation\n"
	"              operation_name: \"Set*\"\n"
	"              fields: [setTitle, setOwner]\n"
	"        deny_rules:\n"
	"          - operation_type: mutation\n"
	"            fields: [\"drop*\"]\n"
	"    binaries:\n"
	"      - path: /opt/tracker/bin/cli\n"
	"network_middlewares:\n"
	"  redact-keys:\n"
	"    middleware: openshell/regex\n"
	"    order: -3\n"
	"    config: { mode: redact, patterns: [[a, b], {x: 1}] }\n"
	"    endpoints:\n"
	"      include: [\"**.tracker.example\"]\n"
	"      exclude: [public.tracker.example]\n";

static void test_example_c(void **state)
{
	struct policy *p = load_ok(example_c);
	const struct policy_endpoint *rest, *gql;
	const struct policy_middleware *m;

	(void)state;
	rest = &p->rules[0].endpoints[0];
	gql = &p->rules[0].endpoints[1];
	assert_string_equal(rest->path, "/issues/**");
	assert_int_equal(rest->n_rules, 2);
	assert_string_equal(rest->rules[1].path, "/issues/*/labels");
	assert_int_equal(gql->protocol, POLICY_PROTO_GRAPHQL);
	assert_int_equal(gql->graphql_max_body_bytes, 20000);
	assert_int_equal(gql->json_rpc_max_body_bytes, POLICY_DEFAULT_BODY_BYTES);
	assert_int_equal(gql->n_rules, 2);
	assert_string_equal(gql->rules[1].operation_name, "Set*");
	assert_int_equal(gql->rules[1].n_fields, 2);
	assert_string_equal(gql->deny_rules[0].fields[0], "drop*");
	assert_int_equal(p->n_middlewares, 1);
	m = &p->middlewares[0];
	assert_string_equal(m->key, "redact-keys");
	assert_string_equal(m->name, "redact-keys");
	assert_string_equal(m->middleware, "openshell/regex");
	assert_int_equal(m->order, -3);
	assert_false(m->fail_open);
	assert_int_equal(m->n_endpoints_include, 1);
	assert_string_equal(m->endpoints_exclude[0], "public.tracker.example");
	policy_free(p);
}

static const char example_d[] =
	"version: 1\n"
	"network_policies:\n"
	"  kb_mcp:\n"
	"    endpoints:\n"
	"      - host: mcp.kb.example\n"
	"        port: 443\n"
	"        path: /rpc\n"
	"        protocol: mcp\n"
	"        enforcement: enforce\n"
	"        json_rpc: { max_body_bytes: 1000 }\n"
	"        mcp: { max_body_bytes: 99999 }\n"
	"        rules:\n"
	"          - allow: { method: initialize }\n"
	"          - allow: { method: tools/list }\n"
	"          - allow:\n"
	"              method: tools/call\n"
	"              tool: { any: [\"lookup_*\", fetch_doc] }\n"
	"        deny_rules:\n"
	"          - method: tools/call\n"
	"            tool: lookup_secrets\n"
	"  chain_rpc:\n"
	"    endpoints:\n"
	"      - host: node.chain.example\n"
	"        port: 8546\n"
	"        protocol: json-rpc\n"
	"        json_rpc: { max_body_bytes: 4096 }\n"
	"        rules:\n"
	"          - allow: { method: net_version }\n"
	"          - allow: { method: \"*\" }\n"
	"  kv_store:\n"
	"    endpoints:\n"
	"      - host: kv.internal.example\n"
	"        port: 11211\n"
	"        protocol: tcp\n"
	"        tls: skip\n"
	"        allowed_ips: [10.40.0.0/16, \"fd12:3456::/48\", 192.168.7.9]\n"
	"  lan_any:\n"
	"    endpoints:\n"
	"      - ports: [9443]\n"
	"        allowed_ips: [\"172.20.0.0/16\"]\n"
	"    binaries:\n"
	"      - path: /opt/agent/**\n";

static void test_example_d(void **state)
{
	struct policy *p = load_ok(example_d);
	const struct policy_endpoint *mcp, *rpc, *kv, *lan;
	uint8_t a4[4];

	(void)state;
	mcp = &rule(p, "kb_mcp")->endpoints[0];
	assert_int_equal(mcp->protocol, POLICY_PROTO_MCP);
	assert_int_equal(mcp->json_rpc_max_body_bytes, 99999); /* mcp wins */
	assert_true(mcp->mcp_strict_tool_names);
	assert_false(mcp->mcp_allow_all_known_methods);
	assert_int_equal(mcp->n_rules, 3);
	assert_non_null(mcp->rules[2].tool);
	assert_true(mcp->rules[2].tool->any);
	assert_int_equal(mcp->rules[2].tool->n_globs, 2);
	assert_string_equal(mcp->deny_rules[0].tool->globs[0], "lookup_secrets");
	rpc = &rule(p, "chain_rpc")->endpoints[0];
	assert_int_equal(rpc->protocol, POLICY_PROTO_JSON_RPC);
	assert_int_equal(rpc->json_rpc_max_body_bytes, 4096);
	kv = &rule(p, "kv_store")->endpoints[0];
	assert_int_equal(kv->protocol, POLICY_PROTO_TCP);
	assert_int_equal(kv->tls, POLICY_TLS_SKIP);
	assert_int_equal(kv->n_allowed_ips, 3);
	assert_int_equal(kv->allowed_ips[0].family, AF_INET);
	assert_int_equal(kv->allowed_ips[0].prefix, 16);
	assert_int_equal(kv->allowed_ips[1].family, AF_INET6);
	assert_int_equal(kv->allowed_ips[2].prefix, 32);
	inet_pton(AF_INET, "10.40.200.1", a4);
	assert_true(policy_cidr_contains(&kv->allowed_ips[0], AF_INET, a4));
	lan = &rule(p, "lan_any")->endpoints[0];
	assert_string_equal(lan->host, "");
	assert_int_equal(lan->n_ports, 1);
	assert_int_equal(lan->ports[0], 9443);
	assert_int_equal(rule(p, "kv_store")->n_binaries, 0);
	policy_free(p);
}

static void test_presets(void **state)
{
	struct policy *p = load_ok(
		"version: 1\nnetwork_policies:\n  r:\n    endpoints:\n"
		"      - { host: a.example.com, port: 443, protocol: rest, access: read-only }\n"
		"      - { host: b.example.com, port: 443, protocol: websocket, access: read-write }\n"
		"      - { host: c.example.com, port: 443, protocol: graphql, access: full }\n"
		"      - { host: d.example.com, port: 443, protocol: graphql, access: read-write }\n"
		"      - { host: e.example.com, port: 443, protocol: mcp, mcp: {allow_all_known_mcp_methods: true} }\n"
		"      - { host: f.example.com, port: 443, protocol: rest, access: full }\n");
	const struct policy_endpoint *ep = p->rules[0].endpoints;

	(void)state;
	assert_int_equal(ep[0].n_rules, 3);
	assert_string_equal(ep[0].rules[2].method, "OPTIONS");
	assert_int_equal(ep[1].n_rules, 2);
	assert_string_equal(ep[1].rules[1].method, "WEBSOCKET_TEXT");
	assert_int_equal(ep[2].n_rules, 1);
	assert_string_equal(ep[2].rules[0].operation_type, "*");
	assert_null(ep[2].rules[0].method);
	assert_int_equal(ep[3].n_rules, 2);
	assert_string_equal(ep[3].rules[1].operation_type, "mutation");
	assert_int_equal(ep[4].n_rules, 1);
	assert_string_equal(ep[4].rules[0].method, "*");
	assert_null(ep[4].rules[0].path);
	assert_string_equal(ep[5].rules[0].method, "*");
	assert_string_equal(ep[5].rules[0].path, "**");
	policy_free(p);
}

/* ---- the negative vectors of policy.md §17, with positions ---- */

static void test_negative_vectors(void **state)
{
	(void)state;
	expect_error_at("version: 1\ninference: {allowed_routes: [local]}\n", "2:1",
			"unknown top-level key 'inference' (removed from the schema");
	expect_error_at(EP_HEAD "        port: 443\n        protocol: rest\n", "7:19",
			"needs 'access' or 'rules'");
	expect_error_at(EP_HEAD "        port: 443\n        protocol: rest\n"
			"        access: full\n        rules: [{allow: {method: GET, path: /a}}]\n",
			"9:9", "mutually exclusive");
	expect_error_at(EP_HEAD "        port: 443\n        protocol: rest\n"
			"        access: read-only\n        rules: []\n", "9:16",
			"'rules' must not be empty");
	expect_error_at("version: 1\nnetwork_policies:\n  r:\n    endpoints:\n"
			"      - { host: \"*.com\", port: 443 }\n", "5:17", "at least 3 labels");
	expect_error_at("version: 1\nnetwork_policies:\n  r:\n    endpoints:\n"
			"      - { host: \"*\", port: 443 }\n", "5:17", "bare wildcard");
	expect_error_at("version: 1\nnetwork_policies:\n  r:\n    endpoints:\n"
			"      - { host: \"a.b*.example.com\", port: 443 }\n", "5:17",
			"whole label");
	expect_error_at("version: 1\nnetwork_policies:\n  r:\n    endpoints:\n"
			"      - host: 10.1.2.3\n        port: 5432\n        protocol: tcp\n",
			"5:15", "IP literal");
	expect_error_at(EP_HEAD "        port: 5432\n        protocol: tcp\n"
			"        enforcement: enforce\n", "8:9",
			"'enforcement' is not allowed with protocol tcp");
	expect_error_at(EP_HEAD "        port: 443\n        ports: [443, 8443]\n", "7:9",
			"'port' and 'ports' are mutually exclusive");
	expect_error_at(EP_HEAD "        port: \"443\"\n", "6:15", "unquoted integer");
	expect_error_at(EP_HEAD "        port: 443\n        protocol: json-rpc\n"
			"        rules: [{allow: {method: \"reports.*\"}}]\n", "8:34",
			"not globs");
	expect_error_at(EP_HEAD "        port: 443\n        protocol: mcp\n        access: full\n",
			"8:9", "'access' presets are not allowed with protocol mcp");
	expect_error_at(EP_HEAD "        port: 5432\n        protocol: sql\n"
			"        enforcement: enforce\n        access: read-only\n", "8:22",
			"audit-only");
	expect_error_at(EP_HEAD "        port: 443\n        allowed_ips: [\"0.0.0.0/0\"]\n",
			"7:23", "always-blocked");
	expect_error_at(EP_HEAD "        port: 443\n        protocol: rest\n        access: full\n"
			"        credential_signing: sigv4\n", "9:9", "signing_service");
	expect_error_at("version: 1\nfilesystem_policy:\n  read_write: [/]\n", "3:16",
			"too broad");
	expect_error_at("version: 1\nfilesystem_policy:\n  read_only: [usr]\n", "3:15",
			"must be absolute");
	expect_error_at("version: 1\nfilesystem_policy:\n  read_only: [/a/../b]\n", "3:15",
			"'..'");
	expect_error_at("version: 1\nprocess:\n  run_as_user: \"0\"\n", "3:16", "run_as_user");
	expect_error_at("version: 1\nprocess:\n  run_as_user: root\n", "3:16", "run_as_user");
	expect_error_at("version: 1\nnetwork_middlewares:\n"
			"  a: {middleware: m1, order: 7, endpoints: {include: [a.example.com]}}\n"
			"  b: {middleware: m2, order: 7, endpoints: {include: [b.example.com]}}\n",
			"4:30", "order 7 is already used");
}

static void test_more_endpoint_rules(void **state)
{
	(void)state;
	expect_error_at(EP_HEAD "        port: 443\n        protocol: https\n", "7:19",
			"unknown protocol 'https'");
	expect_error_at(EP_HEAD "        port: 443\n        tls: skipp\n", "7:14", "unknown tls");
	expect_error_at(EP_HEAD "        port: 443\n        protocol: rest\n"
			"        enforcement: enfroce\n        access: full\n", "8:22",
			"unknown enforcement");
	expect_error_at(EP_HEAD "        port: 443\n        protocol: rest\n        access: all\n",
			"8:17", "unknown access");
	expect_error_at(EP_HEAD "        port: 443\n        deny_rules: [{method: GET, path: /}]\n",
			"7:9", "needs an L7 protocol");
	expect_error_at(EP_HEAD "        port: 443\n        protocol: rest\n"
			"        deny_rules: [{method: GET, path: /}]\n", "7:19",
			"needs 'access' or 'rules'");
	expect_error_at(EP_HEAD "        ports: []\n", "5:9", "at least one port");
	expect_error_at(EP_HEAD "        port: 0\n", "6:15", "1..65535");
	expect_error_at(EP_HEAD "        ports: [443, 65536]\n", "6:22", "0..65535");
	expect_error_at(EP_HEAD "        port: 443\n        path: api/**\n        protocol: rest\n"
			"        access: full\n", "7:15", "must start with '/'");
	expect_error_at(EP_HEAD "        port: 443\n        protocol: rest\n"
			"        rules: [{allow: {method: FETCH, path: /x}}]\n", "8:34",
			"unknown HTTP method");
	expect_error_at(EP_HEAD "        port: 443\n        protocol: rest\n"
			"        rules: [{allow: {}}]\n", "8:16", "empty 'allow'");
	expect_error_at(EP_HEAD "        port: 443\n        protocol: rest\n"
			"        rules: [{allow: {method: GET, path: /x}, deny: {}}]\n", "8:50",
			"unknown key 'deny'");
	expect_error_at(EP_HEAD "        port: 443\n        protocol: rest\n"
			"        rules: [{allow: {method: GET, path: /x, query: {q: {glob: a}}}}]\n",
			"8:61", "unknown key 'glob'");
	expect_error_at(EP_HEAD "        port: 443\n        protocol: rest\n"
			"        rules: [{allow: {method: GET, path: /x, query: {q: {any: []}}}}]\n",
			"8:66", "must not be empty");
	expect_error_at(EP_HEAD "        port: 443\n        protocol: rest\n"
			"        rules: [{allow: {method: GET, path: /x, tool: t}}]\n", "8:49",
			"only allowed with protocol mcp");
	expect_error_at(EP_HEAD "        port: 443\n        protocol: websocket\n"
			"        rules: [{allow: {method: POST, path: /x}}]\n", "8:34",
			"unknown websocket method");
	expect_error_at(EP_HEAD "        port: 443\n        protocol: graphql\n"
			"        rules: [{allow: {operation_type: delete}}]\n", "8:42",
			"operation_type");
	expect_error_at(EP_HEAD "        port: 443\n        protocol: mcp\n"
			"        rules:\n          - allow: {method: tools/call, tool: \"a*\"}\n"
			"          - allow: {method: \"*\"}\n", "10:20", "covers tools/call");
	expect_error_at(EP_HEAD "        port: 443\n        protocol: mcp\n"
			"        rules: [{allow: {method: \"res*\"}}]\n", "8:34", "tools/ family");
	expect_error_at(EP_HEAD "        port: 443\n        protocol: mcp\n"
			"        rules: [{allow: {method: tools/call, params: {arguments: x}}}]\n",
			"8:55", "unknown key 'arguments'");
	expect_error_at(EP_HEAD "        port: 443\n        mcp: {strict_tool_names: true}\n",
			"7:9", "only allowed with protocol mcp");
	expect_error_at(EP_HEAD "        port: 443\n        protocol: rest\n        access: full\n"
			"        graphql_max_body_bytes: 0\n", "9:33", "1..4294967295");
	expect_error_at("version: 1\nnetwork_policies:\n  r:\n    endpoints:\n"
			"      - port: 443\n", "5:9", "needs a 'host'");
	expect_error_at("version: 1\nnetwork_policies:\n  r:\n    endpoints:\n"
			"      - { port: 443, protocol: tcp, allowed_ips: [10.0.0.0/8] }\n", "5:32",
			"protocol tcp needs a 'host'");
	expect_error_at(EP_HEAD "        port: 443\n        allowed_ips: [10.0.0.300]\n", "7:23",
			"not an IP address");
	expect_error_at(EP_HEAD "        port: 443\n        allowed_ips: [\"::ffff:127.0.0.1\"]\n",
			"7:23", "always-blocked");
	expect_error_at(EP_HEAD "        port: 443\n        allowed_ips: [\"fe80::1/64\"]\n",
			"7:23", "always-blocked");
	expect_error_at("version: 1\nnetwork_policies:\n  r:\n    endpoints:\n"
			"      - { host: \"**foo.example.com\", port: 443 }\n", "5:17", "'**'");
	expect_error_at("version: 1\nnetwork_policies:\n  r:\n    endpoints:\n"
			"      - { host: \"foo.*\", port: 443 }\n", "5:17", "at least 3 labels");
	expect_error_at("version: 1\nnetwork_policies:\n  r:\n    endpoints:\n"
			"      - { host: \"a b.example.com\", port: 443 }\n", "5:17",
			"invalid character");
	expect_error_at("version: 1\nnetwork_policies:\n  r:\n    endpoints:\n"
			"      - { host: \"db.example.\", port: 5432, protocol: tcp }\n", "5:17",
			"trailing dot");
	expect_error_at(EP_HEAD "        port: 443\n    binaries:\n      - path: bin/curl\n",
			"8:15", "must be absolute");
	expect_error_at(EP_HEAD "        port: 443\n    binaries:\n      - path: /usr/**x\n",
			"8:15", "whole path segment");
	expect_error_at(EP_HEAD "        port: 443\n    binaries:\n      - harness: true\n",
			"8:9", "needs a 'path'");
	expect_error_at(EP_HEAD "        port: 443\n        protocol: rest\n        access: full\n"
			"        credential_signing: sigv5\n        signing_service: s3\n", "9:29",
			"unknown credential_signing");
	expect_error_at(EP_HEAD "        port: 443\n        credential_binding: {}\n", "7:29",
			"needs a 'provider'");

	expect_error_at(EP_HEAD "        port: 443\n        protocol: json-rpc\n"
			"        rules: [{allow: {method: a, path: /x}}]\n", "8:37",
			"'path' is not allowed in a json-rpc rule");
	expect_error_at(EP_HEAD "        port: 443\n        protocol: websocket\n        rules:\n"
			"          - allow: {method: GET, operation_type: query}\n", "9:20",
			"cannot mix");
	expect_error_at(EP_HEAD "        port: 443\n        protocol: websocket\n        rules:\n"
			"          - allow: {operation_type: query}\n"
			"          - allow: {method: WEBSOCKET_TEXT, path: /x}\n", "10:20",
			"WEBSOCKET_TEXT");
	expect_error_at(EP_HEAD "        port: 443\n        protocol: mcp\n"
			"        mcp: {strict_tool_names: false}\n        rules:\n"
			"          - allow: {method: tools/call, tool: \"get_*\"}\n", "10:20",
			"strict_tool_names");
	expect_error_at(EP_HEAD "        port: 443\n        protocol: rest\n        rules:\n"
			"          - {method: GET}\n", "9:13", "needs an 'allow' mapping");
	expect_error_at(EP_HEAD "        port: 443\n        protocol: graphql\n"
			"        access: read-only\n        graphql_persisted_queries:\n"
			"          q1: {operation_type: upsert}\n", "10:32", "upsert");
	expect_error_at(EP_HEAD "        port: 443\n        websocket_credential_rewrite: true\n",
			"7:9", "needs protocol rest or websocket");
	expect_error_at(EP_HEAD "        port: 443\n        protocol: websocket\n        access: full\n"
			"        request_body_credential_rewrite: true\n", "9:9",
			"needs protocol rest");
	{
		struct policy *p = load_ok(EP_HEAD "        port: 443\n        protocol: mcp\n"
					   "        mcp: {allow_all_known_mcp_methods: true}\n"
					   "        rules:\n          - allow: {tool: x}\n"
					   "          - allow: {method: tools/list}\n");
		const struct policy_endpoint *ep = &p->rules[0].endpoints[0];

		assert_string_equal(ep->rules[0].method, "tools/call");
		assert_string_equal(ep->rules[1].method, "tools/list");
		policy_free(p);
		p = load_ok(EP_HEAD "        port: 443\n        protocol: mcp\n"
			    "        mcp: {allow_all_known_mcp_methods: true}\n"
			    "        rules:\n          - allow: {}\n");
		assert_string_equal(p->rules[0].endpoints[0].rules[0].method, "*");
		policy_free(p);
	}

	/* accepted shapes */
	policy_free(load_ok("version: 1\nnetwork_policies:\n  r:\n    endpoints:\n"
			    "      - { host: \"*.s3.*.amazonaws.com\", port: 443 }\n"
			    "      - { host: \"*-ai.googleapis.com\", port: 443 }\n"
			    "      - { host: \"**.cdn.example.com\", port: 443 }\n"
			    "      - { host: \"2001:db8::1\", port: 443 }\n"
			    "      - { host: x.example.com, port: +443, protocol: rest,"
			    " access: full, tls: passthrough }\n"
			    "      - { host: y.example.com, port: 0x1BB }\n"));
}

/* ---- scalars, duplicates, unknown keys, YAML features ---- */

static void test_scalar_typing(void **state)
{
	(void)state;
	expect_error_at(EP_HEAD "        port: 0443\n", "6:15", "integer");
	expect_error_at(EP_HEAD "        port: 443.0\n", "6:15", "integer");
	expect_error_at(EP_HEAD "        port: [443]\n", "6:15", "must be an integer, not a list");
	expect_error_at("version: \"1\"\n", "1:10", "unquoted integer");
	expect_error_at("version: 2\n", "1:10", "only 1 is supported");
	expect_error_at("version: 4294967296\n", "1:10", "0..4294967295");
	expect_error_at("version: -1\n", "1:10", "0..4294967295");
	expect_error_at("network_policies: {}\n", "1:1", "missing required key 'version'");
	expect_error_at("", "1:1", "version");
	expect_error_at("version: 1\nfilesystem_policy:\n  include_workdir: yes\n", "3:20",
			"must be true or false");
	expect_error_at("version: 1\nfilesystem_policy:\n  include_workdir: on\n", "3:20",
			"must be true or false");
	expect_error_at("version: 1\nfilesystem_policy:\n  include_workdir: \"true\"\n", "3:20",
			"unquoted boolean");
	expect_error_at("version: 1\nfilesystem_policy:\n  read_only: ~\n", "3:14",
			"must be a list, not null");
	expect_error_at("version: 1\nfilesystem_policy:\n  read_only: /usr\n", "3:14",
			"must be a list");
	expect_error_at("version: 1\nprocess:\n  run_as_user: ~\n", "3:16", "not null");
	expect_error_at("version: 1\nnetwork_policies: []\n", "2:19", "must be a mapping");
	expect_error_at("- 1\n- 2\n", "1:1", "must be a mapping");
	expect_error_at(EP_HEAD "        port: 443\n        protocol: \"rest\\0\"\n", "7:19",
			"NUL byte");
	{
		struct policy *p = load_ok("version: 0x1\nfilesystem_policy:\n  include_workdir: TRUE\n"
					   "  read_only:\nprocess:\n  run_as_user: 1500\n"
					   "  run_as_group: \"\"\n");

		assert_true(p->include_workdir);
		assert_int_equal(p->n_read_only, 0);
		assert_string_equal(p->run_as_user, "1500");
		assert_null(p->run_as_group);
		policy_free(p);
	}
}

static void test_duplicates_and_unknown(void **state)
{
	(void)state;
	expect_error_at("version: 1\nversion: 1\n", "2:1", "duplicate key 'version'");
	expect_error_at(EP_HEAD "        port: 443\n        port: 80\n", "7:9",
			"duplicate key 'port'");
	expect_error_at("version: 1\nnetwork_policies:\n  a: {}\n  b: {}\n  a: {}\n", "5:3",
			"duplicate key 'a'");
	expect_error_at(EP_HEAD "        port: 443\n        protocol: rest\n"
			"        rules: [{allow: {method: GET, path: /x, query: {a: x, a: y}}}]\n",
			"8:63", "duplicate key 'a'");
	expect_error_at("version: 1\nnetwork_middlewares:\n  m:\n    middleware: x\n"
			"    endpoints: {include: [a.example.com]}\n    config: {k: 1, k: 2}\n",
			"6:20", "duplicate key 'k'");
	expect_error_at("version: 1\nlandlock:\n  compat: best_effort\n", "3:3",
			"unknown key 'compat' in landlock");
	expect_error_at("version: 1\nprocess:\n  user: x\n", "3:3", "unknown key 'user'");
	expect_error_at("version: 1\nfilesystem_policy:\n  rw: []\n", "3:3", "unknown key 'rw'");
	expect_error_at("version: 1\nnetwork_policies:\n  r:\n    middleware: x\n", "4:5",
			"unknown key 'middleware' in network policy");
	expect_error_at(EP_HEAD "        port: 443\n        provider_credentialed: true\n", "7:9",
			"unknown key 'provider_credentialed' in endpoint");
	expect_error_at(EP_HEAD "        port: 443\n    binaries:\n      - {path: /bin/x, sha256: ab}\n",
			"8:24", "unknown key 'sha256' in binary");
	expect_error_at("version: 1\nnetwork_middlewares:\n  m:\n    middleware: x\n"
			"    endpoints: {include: [a.example.com], only: [b]}\n", "5:43",
			"unknown key 'only'");
	expect_error_at("version: 1\nlandlock:\n  compatibility: strictest\n", "3:18",
			"unknown landlock compatibility");
	expect_error_at("version: 1\nprocess:\n  seccomp: paranoid\n", "3:12",
			"unknown seccomp profile");
	expect_error_at("version: 1\nnetwork_policies:\n  _provider_github: {}\n", "3:3",
			"'_provider_' prefix is reserved");
	expect_error_at("version: 1\nnetwork_policies:\n  \"\": {}\n", "3:3", "must not be empty");
}

static void test_yaml_features(void **state)
{
	struct policy *p;

	(void)state;
	/* anchors and aliases resolve */
	p = load_ok("version: 1\nnetwork_policies:\n"
		    "  a:\n    endpoints: &eps\n      - { host: a.example.com, port: 443 }\n"
		    "    binaries: &bins [{path: /bin/a}]\n"
		    "  b:\n    endpoints: *eps\n    binaries: *bins\n");
	assert_int_equal(p->n_rules, 2);
	assert_string_equal(p->rules[1].endpoints[0].host, "a.example.com");
	assert_string_equal(p->rules[1].binaries[0].path, "/bin/a");
	policy_free(p);
	/* merge keys are rejected */
	expect_error_at("version: 1\nnetwork_policies:\n  r:\n    endpoints:\n"
			"      - &base { host: a.example.com, port: 443 }\n"
			"      - { <<: *base, port: 80 }\n", "6:11", "merge keys");
	expect_error_at("version: 1\nversion: [\n", "3:1", "YAML syntax error");
	expect_error_at("version: 1\n---\nversion: 1\n", "3:1", "one YAML document");
	expect_error_at("version: 1\nx: !!binary aGVsbG8=\n", "2:1", "unknown key 'x'");
	/* cycles through aliases do not hang and stay bounded */
	expect_rejected("version: 1\nnetwork_middlewares:\n  m:\n    middleware: x\n"
			"    endpoints: {include: [a.example.com]}\n"
			"    config: &c {a: *c}\n");
	/* multi-line flow mapping with a trailing comma (real-corpus shape) */
	policy_free(load_ok("version: 1\nnetwork_policies:\n  r:\n    endpoints:\n"
			    "      - {\n          host: a.example.com,\n          port: 443,\n"
			    "        }\n"));
}

static void test_alias_bomb(void **state)
{
	char yaml[8192];
	size_t o = 0;

	(void)state;
	o += (size_t)snprintf(yaml + o, sizeof(yaml) - o,
			      "version: 1\nnetwork_middlewares:\n  m:\n    middleware: x\n"
			      "    endpoints: {include: [a.example.com]}\n    config:\n"
			      "      l0: &l0 [a, a, a, a, a, a, a, a, a, a]\n");
	for (int i = 1; i < 12; i++)
		o += (size_t)snprintf(yaml + o, sizeof(yaml) - o,
				      "      l%d: &l%d [*l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d,"
				      " *l%d, *l%d, *l%d]\n", i, i, i - 1, i - 1, i - 1, i - 1,
				      i - 1, i - 1, i - 1, i - 1, i - 1, i - 1);
	expect_error_at(yaml, "7:19", "too complex");
}

static void test_limits(void **state)
{
	size_t big = POLICY_MAX_FILE_BYTES + 1;
	char *buf = malloc(big + 1);
	struct policy_errors e = { 0 };
	struct policy *p;
	size_t o = 0;

	(void)state;
	assert_non_null(buf);
	memset(buf, '#', big);
	memcpy(buf, "version: 1\n", 11);
	buf[big] = '\0';
	p = policy_load_buffer(buf, big, "policy.yaml", &e);
	assert_null(p);
	assert_int_equal(e.n, 1);
	assert_non_null(strstr(e.msgs[0], "policy.yaml:1:1: policy is larger than the limit"));
	policy_errors_free(&e);
	/* error cap: 300 unknown keys give 100 messages plus one summary */
	o = (size_t)sprintf(buf, "version: 1\n");
	for (int i = 0; i < 300; i++)
		o += (size_t)sprintf(buf + o, "k%d: 1\n", i);
	p = policy_load_buffer(buf, o, "policy.yaml", &e);
	assert_null(p);
	assert_int_equal(e.n, POLICY_MAX_ERRORS + 1);
	assert_non_null(strstr(e.msgs[POLICY_MAX_ERRORS], "too many errors (300)"));
	policy_errors_free(&e);
	/* too many filesystem paths */
	o = (size_t)sprintf(buf, "version: 1\nfilesystem_policy:\n  read_only:\n");
	for (int i = 0; i < 257; i++)
		o += (size_t)sprintf(buf + o, "    - /p%d\n", i);
	buf[o] = '\0';
	expect_error_at(buf, "2:1", "more than the limit of 256");
	/* too many middlewares */
	o = (size_t)sprintf(buf, "version: 1\nnetwork_middlewares:\n");
	for (int i = 0; i < 11; i++)
		o += (size_t)sprintf(buf + o, "  m%d: {middleware: x, order: %d, endpoints: "
				     "{include: [a.example.com]}}\n", i, i);
	buf[o] = '\0';
	expect_error_at(buf, "13:3", "more than 10 network_middlewares");
	free(buf);
}

static void test_errors_sorted_and_many(void **state)
{
	struct policy_errors e;
	struct policy *p = load("version: 1\nprocess:\n  run_as_user: root\n"
				"filesystem_policy:\n  read_write: [/]\n  read_only: [x]\n"
				"bogus: 1\n", &e);

	(void)state;
	assert_null(p);
	assert_int_equal(e.n, 4);
	assert_non_null(strstr(e.msgs[0], "policy.yaml:3:16:"));
	assert_non_null(strstr(e.msgs[1], "policy.yaml:5:16:"));
	assert_non_null(strstr(e.msgs[2], "policy.yaml:6:15:"));
	assert_non_null(strstr(e.msgs[3], "policy.yaml:7:1:"));
	policy_errors_free(&e);
}

static void test_middlewares(void **state)
{
	(void)state;
	expect_error_at("version: 1\nnetwork_middlewares:\n  m:\n    middleware: x\n", "4:5",
			"'endpoints' selector");
	expect_error_at("version: 1\nnetwork_middlewares:\n  m:\n    middleware: \"\"\n"
			"    endpoints: {include: [a.example.com]}\n", "4:17", "must not be empty");
	expect_error_at("version: 1\nnetwork_middlewares:\n  m:\n    middleware: x\n"
			"    on_error: ignore\n    endpoints: {include: [a.example.com]}\n", "5:15",
			"unknown on_error");
	expect_error_at("version: 1\nnetwork_middlewares:\n  m:\n    middleware: x\n"
			"    endpoints: {include: [\"{a,b}.example.com\"]}\n", "5:27",
			"invalid character");
	expect_error_at("version: 1\nnetwork_middlewares:\n  m:\n    middleware: x\n"
			"    endpoints: {include: []}\n", "5:26", "must not be empty");
	expect_error_at("version: 1\nnetwork_middlewares:\n  m:\n    middleware: x\n"
			"    endpoints: {include: [\"*.pinned.example\"]}\n"
			"network_policies:\n  r:\n    endpoints:\n"
			"      - { host: api.pinned.example, port: 443, tls: skip }\n", "4:5",
			"tls: skip");
	policy_free(load_ok("version: 1\nnetwork_middlewares:\n  m:\n    middleware: x\n"
			    "    on_error: fail_open\n"
			    "    endpoints: {include: [\"*.pinned.example\"]}\n"
			    "network_policies:\n  r:\n    endpoints:\n"
			    "      - { host: api.pinned.example, port: 443, tls: skip }\n"));
}

static void test_ambiguity(void **state)
{
	(void)state;
	expect_error_at("version: 1\nnetwork_policies:\n  a:\n    endpoints:\n"
			"      - { host: git.example.com, port: 443 }\n"
			"  b:\n    endpoints:\n"
			"      - { host: \"*.example.com\", port: 443, tls: skip }\n", "8:9",
			"differs in tls: skip");
	expect_error_at("version: 1\nnetwork_policies:\n  a:\n    endpoints:\n"
			"      - { host: git.example.com, port: 443, protocol: rest, access: full,"
			" enforcement: enforce }\n"
			"      - { host: git.example.com, port: 443, protocol: rest, access: full }\n",
			"6:9", "differs in enforcement");
	expect_error_at("version: 1\nnetwork_policies:\n  a:\n    endpoints:\n"
			"      - { host: db.example.com, port: 5432, protocol: tcp }\n"
			"      - { host: db.example.com, ports: [5432, 5433] }\n",
			"6:9", "differs in protocol tcp");
	/* different ports, different paths, or a plain L4 endpoint: no conflict */
	policy_free(load_ok("version: 1\nnetwork_policies:\n  a:\n    endpoints:\n"
			    "      - { host: git.example.com, port: 443, tls: skip }\n"
			    "      - { host: git.example.com, port: 8443 }\n"
			    "      - { host: api.example.com, port: 443, path: /a, protocol: rest,"
			    " access: full }\n"
			    "      - { host: api.example.com, port: 443, path: /b, protocol: graphql,"
			    " access: full }\n"
			    "      - { host: api.example.com, port: 443 }\n"
			    "      - { host: api.example.com, port: 443, ports: [] }\n"));
}

static void test_default_policy(void **state)
{
	struct policy_errors e = { 0 };
	struct policy *p = policy_load_default(&e);
	struct policy_decision d;

	(void)state;
	assert_non_null(p);
	assert_int_equal(p->version, 1);
	assert_string_equal(p->run_as_user, "sandbox");
	assert_string_equal(p->run_as_group, "sandbox");
	assert_int_equal(p->n_rules, 0);
	assert_true(p->include_workdir);
	assert_false(p->has_filesystem_policy);
	policy_decide(p, "example.com", 443, "/usr/bin/curl", true, &d);
	assert_false(d.allowed);
	assert_string_equal(d.reason, "network connections not allowed by policy");
	policy_free(p);
}

static void test_load_file(void **state)
{
	char path[] = "/tmp/test_policy_XXXXXX";
	int fd = mkstemp(path);
	struct policy_errors e = { 0 };
	struct policy *p;
	static const char body[] = "version: 1\nbad: 2\n";

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, body, sizeof(body) - 1), (ssize_t)(sizeof(body) - 1));
	close(fd);
	p = policy_load_file(path, &e);
	assert_null(p);
	assert_int_equal(e.n, 1);
	assert_true(strncmp(e.msgs[0], path, strlen(path)) == 0);
	assert_non_null(strstr(e.msgs[0], ":2:1: unknown key 'bad'"));
	policy_errors_free(&e);
	unlink(path);
	p = policy_load_file("/nonexistent/policy.yaml", &e);
	assert_null(p);
	assert_int_equal(e.n, 1);
	assert_non_null(strstr(e.msgs[0], "/nonexistent/policy.yaml:1:1: cannot read"));
	policy_errors_free(&e);
	p = policy_load_file("/tmp", &e);
	assert_null(p);
	assert_int_equal(e.n, 1);
	policy_errors_free(&e);
}

/* ---- matching ---- */

static void test_host_match(void **state)
{
	static const struct { const char *pat, *host; bool want; } cases[] = {
		{ "api.example.com", "api.example.com", true },
		{ "API.Example.com", "api.example.com", true },
		{ "api.example.com", "api.example.org", false },
		{ "*.example.com", "api.example.com", true },
		{ "*.example.com", "example.com", false },
		{ "*.example.com", "a.b.example.com", false },
		{ "**.example.com", "a.example.com", true },
		{ "**.example.com", "a.b.example.com", true },
		{ "**.example.com", "example.com", false },
		{ "*-aiplatform.googleapis.com", "us-central1-aiplatform.googleapis.com", true },
		{ "*-aiplatform.googleapis.com", "x.y-aiplatform.googleapis.com", false },
		{ "*-aiplatform.googleapis.com", "aiplatform.googleapis.com", false },
		{ "*.s3.*.amazonaws.com", "bkt.s3.eu-west-1.amazonaws.com", true },
		{ "*.s3.*.amazonaws.com", "bkt.s3.a.b.amazonaws.com", false },
		{ "*.example.com", "api.example.com.evil.net", false },
		{ "*.example.com", "", false },
		{ "*.example.com", "a%2eb.example.com", true }, /* literal, one label */
		{ "", "example.com", false },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (policy_host_match(cases[i].pat, cases[i].host) != cases[i].want)
			fail_msg("host_match(%s, %s) != %d", cases[i].pat, cases[i].host,
				 cases[i].want);
	}
}

static void test_path_glob(void **state)
{
	static const struct { const char *pat, *path; bool want; } cases[] = {
		{ "/usr/bin/*", "/usr/bin/node", true },
		{ "/usr/bin/*", "/usr/bin/sub/node", false },
		{ "/usr/lib/node_modules/@x/**/cli", "/usr/lib/node_modules/@x/a/b/cli", true },
		{ "/usr/lib/node_modules/@x/**/cli", "/usr/lib/node_modules/@x/cli", true },
		{ "/sandbox/.uv/python/**", "/sandbox/.uv/python/3.12/bin/python", true },
		{ "/sandbox/.uv/python/**", "/sandbox/.uv/python", false },
		{ "/**", "/anything/at/all", true },
		{ "**", "/x/y", true },
		{ "/home/*/.local/bin/tool", "/home/ann/.local/bin/tool", true },
		{ "/home/*/.local/bin/tool", "/home/a/b/.local/bin/tool", false },
		{ "/**/info/refs*", "/org/repo.git/info/refs?service=git-upload-pack", true },
		{ "/**/info/refs*", "/info/refs", true },
		{ "/**/git-upload-pack", "/o/r.git/git-upload-pack", true },
		{ "/v[0-9]/items", "/v2/items", true },
		{ "/v[!0-9]/items", "/v2/items", false },
		{ "/file?.txt", "/file1.txt", true },
		{ "/{a,b}/x", "/b/x", true },
		{ "/{a,b}/x", "/c/x", false },
		{ "/exact", "/exact/", false },
		{ "/a\\*b", "/a*b", true },
		{ "/a\\*b", "/axb", false },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (policy_path_glob_match(cases[i].pat, cases[i].path) != cases[i].want)
			fail_msg("path_glob(%s, %s) != %d", cases[i].pat, cases[i].path,
				 cases[i].want);
	}
}

static const char decide_policy[] =
	"version: 1\n"
	"network_policies:\n"
	"  b_wild:\n"
	"    endpoints:\n"
	"      - { host: \"*.svc.example\", port: 443 }\n"
	"    binaries: [{path: /usr/bin/curl}]\n"
	"  a_exact:\n"
	"    name: exact-api\n"
	"    endpoints:\n"
	"      - { host: api.svc.example, ports: [8443, 443] }\n"
	"      - { host: api.svc.example, port: 443, protocol: rest, access: full }\n"
	"    binaries: [{path: \"/opt/tools/*\"}]\n"
	"  c_any_binary:\n"
	"    endpoints:\n"
	"      - { host: open.example.net, port: 80 }\n"
	"  d_lan:\n"
	"    endpoints:\n"
	"      - { port: 7000, allowed_ips: [10.9.0.0/16] }\n"
	"    binaries: [{path: /usr/bin/curl}]\n";

static void test_ipv6_host_in_canonical_form(void **state)
{
	struct policy *p = load_ok("version: 1\n"
				   "network_policies:\n"
				   "  v6:\n"
				   "    endpoints:\n"
				   "      - { host: \"2001:0DB8:0:0::0:1\", port: 443 }\n");
	struct policy_decision d;

	(void)state;
	assert_string_equal(p->rules[0].endpoints[0].host, "2001:db8::1");
	policy_decide(p, "2001:db8::1", 443, NULL, false, &d);
	assert_true(d.allowed);
	policy_free(p);
}

static void test_decide(void **state)
{
	struct policy *p = load_ok(decide_policy);
	struct policy_decision d;

	(void)state;
	/* exact host: smallest key wins; extended endpoint reported */
	policy_decide(p, "api.svc.example", 443, "/opt/tools/x", true, &d);
	assert_true(d.allowed);
	assert_string_equal(d.rule->key, "a_exact");
	assert_int_equal(d.endpoint->protocol, POLICY_PROTO_REST);
	assert_true(d.exact_host);
	assert_string_equal(d.reason, "");
	/* same host, curl: only the wildcard rule admits it */
	policy_decide(p, "api.svc.example", 443, "/usr/bin/curl", true, &d);
	assert_true(d.allowed);
	assert_string_equal(d.rule->key, "b_wild");
	assert_false(d.exact_host);
	/* 8443 only on the exact endpoint, first match (not extended) */
	policy_decide(p, "api.svc.example", 8443, "/opt/tools/y", true, &d);
	assert_true(d.allowed);
	assert_int_equal(d.endpoint->protocol, POLICY_PROTO_NONE);
	/* wildcard admits subdomain but not the bare domain */
	policy_decide(p, "x.svc.example", 443, "/usr/bin/curl", true, &d);
	assert_true(d.allowed);
	policy_decide(p, "svc.example", 443, "/usr/bin/curl", true, &d);
	assert_false(d.allowed);
	assert_null(d.rule);
	assert_string_equal(d.reason, "endpoint svc.example:443 is not allowed by any policy");
	/* port not listed for a known host */
	policy_decide(p, "api.svc.example", 80, "/opt/tools/x", true, &d);
	assert_false(d.allowed);
	assert_non_null(d.rule);
	assert_string_equal(d.rule->key, "a_exact");
	assert_string_equal(d.reason, "port 80 is not allowed for host api.svc.example "
			    "(policy 'exact-api' allows: 443, 8443)");
	/* binary glob stays in one segment */
	policy_decide(p, "api.svc.example", 8443, "/opt/tools/sub/x", true, &d);
	assert_false(d.allowed);
	assert_non_null(strstr(d.reason, "binary '/opt/tools/sub/x' not allowed"));
	/* endpoint-only mode ignores binaries */
	policy_decide(p, "api.svc.example", 8443, NULL, false, &d);
	assert_true(d.allowed);
	/* unknown binary with binary matching on */
	policy_decide(p, "api.svc.example", 8443, NULL, true, &d);
	assert_false(d.allowed);
	/* empty binaries = any binary */
	policy_decide(p, "open.example.net", 80, "/whatever", true, &d);
	assert_true(d.allowed);
	assert_string_equal(d.rule->key, "c_any_binary");
	/* hostless allowed_ips endpoint: any host, listed port only */
	policy_decide(p, "build.lan", 7000, "/usr/bin/curl", true, &d);
	assert_true(d.allowed);
	assert_string_equal(d.rule->key, "d_lan");
	assert_false(d.exact_host);
	assert_int_equal(d.endpoint->n_allowed_ips, 1);
	policy_decide(p, "build.lan", 7001, "/usr/bin/curl", true, &d);
	assert_false(d.allowed);
	assert_string_equal(d.reason, "endpoint build.lan:7001 is not allowed by any policy");
	/* invalid host input */
	policy_decide(p, "api.svc.example evil", 443, "/usr/bin/curl", true, &d);
	assert_false(d.allowed);
	policy_decide(p, "", 443, "/usr/bin/curl", true, &d);
	assert_false(d.allowed);
	policy_decide(p, NULL, 443, "/usr/bin/curl", true, &d);
	assert_false(d.allowed);
	policy_decide(NULL, "a.b", 1, NULL, false, &d);
	assert_false(d.allowed);
	assert_string_equal(d.reason, "network connections not allowed by policy");
	policy_free(p);
}

static void test_value_and_endpoint_path_globs(void **state)
{
	(void)state;
	assert_true(policy_value_glob_match("1.*", "1.2"));
	assert_false(policy_value_glob_match("1.*", "1.2.3"));
	assert_true(policy_value_glob_match("foo-*", "foo-a"));
	assert_false(policy_value_glob_match("foo-*", "bar"));
	assert_true(policy_value_glob_match("{csv,xlsx}", "xlsx"));
	assert_true(policy_value_glob_match("search_*", "search_docs"));
	assert_false(policy_value_glob_match("Get*", "getX")); /* case-sensitive */
	assert_true(policy_endpoint_path_match(NULL, "/x"));
	assert_true(policy_endpoint_path_match("", "/x"));
	assert_true(policy_endpoint_path_match("**", "/a/b"));
	assert_true(policy_endpoint_path_match("/**", "/a/b"));
	assert_true(policy_endpoint_path_match("/repos/**", "/repos"));
	assert_true(policy_endpoint_path_match("/repos/**", "/repos/a/b"));
	assert_false(policy_endpoint_path_match("/repos/**", "/reposX"));
	assert_true(policy_endpoint_path_match("/repos/*/issues", "/repos/a/b/issues"));
	assert_true(policy_endpoint_path_match("/graphql", "/graphql"));
	assert_false(policy_endpoint_path_match("/graphql", "/graphql/x"));
	assert_int_equal(policy_endpoint_path_specificity("/repos/**"), 7);
	assert_int_equal(policy_endpoint_path_specificity(NULL), 0);
}

static void test_warnings(void **state)
{
	struct policy *p = load_ok(
		"version: 1\nnetwork_policies:\n  open:\n    endpoints:\n"
		"      - { host: a.example.com, port: 443, tls: terminate }\n"
		"      - { host: b.example.com, port: 443, allowed_ips: [10.0.0.0/8] }\n"
		"  all_bins:\n    endpoints:\n      - { host: c.example.com, port: 443 }\n"
		"    binaries: [{path: \"/**\"}]\n");

	(void)state;
	assert_int_equal(p->n_warnings, 4);
	for (size_t i = 0; i < p->n_warnings; i++)
		assert_true(strncmp(p->warnings[i], "policy.yaml:", 12) == 0);
	assert_non_null(strstr(p->warnings[0], "policy.yaml:3:3: network policy 'open' lists no"));
	assert_non_null(strstr(p->warnings[1], "policy.yaml:5:48: tls: terminate is deprecated"));
	assert_non_null(strstr(p->warnings[2], "policy.yaml:6:57: allowed_ips entry"));
	assert_non_null(strstr(p->warnings[3], "policy.yaml:10:23: binary path '/**'"));
	policy_free(p);
}

static void test_cidr(void **state)
{
	struct policy_cidr c;
	uint8_t a[16];

	(void)state;
	assert_int_equal(policy_cidr_parse("10.0.0.0/8", &c), 0);
	assert_int_equal(c.family, AF_INET);
	assert_int_equal(c.prefix, 8);
	inet_pton(AF_INET, "10.255.1.2", a);
	assert_true(policy_cidr_contains(&c, AF_INET, a));
	inet_pton(AF_INET, "11.0.0.1", a);
	assert_false(policy_cidr_contains(&c, AF_INET, a));
	inet_pton(AF_INET6, "::ffff:10.1.1.1", a);
	assert_true(policy_cidr_contains(&c, AF_INET6, a));
	assert_int_equal(policy_cidr_parse("10.1.2.3", &c), 0);
	assert_int_equal(c.prefix, 32);
	assert_int_equal(policy_cidr_parse("10.1.2.3/20", &c), 0); /* host bits masked */
	assert_int_equal(c.addr[2], 0);
	assert_int_equal(policy_cidr_parse("fd00::/8", &c), 0);
	assert_int_equal(c.family, AF_INET6);
	inet_pton(AF_INET6, "fdab::1", a);
	assert_true(policy_cidr_contains(&c, AF_INET6, a));
	assert_int_equal(policy_cidr_parse("10.0.0.0/33", &c), -1);
	assert_int_equal(policy_cidr_parse("10.0.0.0/", &c), -1);
	assert_int_equal(policy_cidr_parse("10.0.0.0/+8", &c), -1);
	assert_int_equal(policy_cidr_parse("fd00::/129", &c), -1);
	assert_int_equal(policy_cidr_parse("host.example", &c), -1);
	assert_int_equal(policy_cidr_parse(" 10.0.0.1", &c), -1);
	assert_int_equal(policy_cidr_parse("", &c), -1);
	assert_string_equal(policy_protocol_name(POLICY_PROTO_JSON_RPC), "json-rpc");
	assert_string_equal(policy_protocol_name(POLICY_PROTO_NONE), "none");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_example_a),
		cmocka_unit_test(test_example_b),
		cmocka_unit_test(test_example_c),
		cmocka_unit_test(test_example_d),
		cmocka_unit_test(test_presets),
		cmocka_unit_test(test_negative_vectors),
		cmocka_unit_test(test_more_endpoint_rules),
		cmocka_unit_test(test_scalar_typing),
		cmocka_unit_test(test_duplicates_and_unknown),
		cmocka_unit_test(test_yaml_features),
		cmocka_unit_test(test_alias_bomb),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_errors_sorted_and_many),
		cmocka_unit_test(test_middlewares),
		cmocka_unit_test(test_ambiguity),
		cmocka_unit_test(test_default_policy),
		cmocka_unit_test(test_load_file),
		cmocka_unit_test(test_host_match),
		cmocka_unit_test(test_path_glob),
		cmocka_unit_test(test_decide),
		cmocka_unit_test(test_value_and_endpoint_path_globs),
		cmocka_unit_test(test_warnings),
		cmocka_unit_test(test_cidr),
		cmocka_unit_test(test_ipv6_host_in_canonical_form),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
