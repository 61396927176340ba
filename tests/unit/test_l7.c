/* test_l7.c - per-request L7 evaluation (policy/l7.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "policy/policy.h"

static struct policy *load(const char *yaml)
{
	struct policy_errors errs = { 0 };
	struct policy *p = policy_load_buffer(yaml, strlen(yaml), "<test>", &errs);

	if (!p) {
		for (size_t i = 0; i < errs.n; i++)
			print_error("%s\n", errs.msgs[i]);
		policy_errors_free(&errs);
		fail_msg("policy did not load");
	}
	policy_errors_free(&errs);
	return p;
}

static enum policy_l7_verdict eval(const struct policy *p, const char *host, const char *method,
				   const char *path, const char *query, struct policy_l7_result *r)
{
	policy_l7_evaluate(p, host, 443, method, path, query, r);
	if (r->verdict == POLICY_L7_ALLOW)
		assert_string_equal(r->reason, "");
	else
		assert_true(r->reason[0] != '\0');
	return r->verdict;
}

#define ALLOWED(p, m, path, q) \
	assert_int_equal(eval((p), "api.example.com", (m), (path), (q), &r), POLICY_L7_ALLOW)
#define DENIED(p, m, path, q) \
	assert_int_equal(eval((p), "api.example.com", (m), (path), (q), &r), POLICY_L7_DENY)

static const char repos_yaml[] =
	"version: 1\n"
	"network_policies:\n"
	"  gh:\n"
	"    endpoints:\n"
	"      - host: api.example.com\n"
	"        port: 443\n"
	"        protocol: rest\n"
	"        enforcement: enforce\n"
	"        rules:\n"
	"          - allow: { method: GET, path: /repos/** }\n"
	"          - allow: { method: post, path: \"/repos/*/issues\" }\n";

static void test_get_allowed_delete_denied(void **state)
{
	struct policy *p = load(repos_yaml);
	struct policy_l7_result r;

	ALLOWED(p, "GET", "/repos/org/repo", NULL);
	assert_non_null(r.endpoint);
	assert_string_equal(r.rule->key, "gh");
	ALLOWED(p, "get", "/repos/org/repo", NULL);
	ALLOWED(p, "HEAD", "/repos/org/repo", NULL);
	ALLOWED(p, "POST", "/repos/org/issues", NULL);
	DENIED(p, "POST", "/repos/org/sub/issues", NULL); /* '*' stays in one segment */
	DENIED(p, "OPTIONS", "/repos/org/repo", NULL);    /* never implied by GET */
	DENIED(p, "DELETE", "/repos/org/repo", NULL);
	assert_string_equal(r.reason, "DELETE /repos/org/repo not permitted by policy");
	assert_non_null(r.endpoint);
	DENIED(p, "GET", "/users/x", NULL);
	DENIED(p, "GET", "/repos", NULL); /* a trailing double star needs a segment below */
	/* other host / other port: no L7 endpoint, L4 decided */
	assert_int_equal(eval(p, "other.example.com", "DELETE", "/x", NULL, &r),
			 POLICY_L7_ALLOW);
	assert_null(r.endpoint);
	policy_l7_evaluate(p, "api.example.com", 8443, "DELETE", "/x", NULL, &r);
	assert_int_equal(r.verdict, POLICY_L7_ALLOW);
	assert_null(r.endpoint);
	policy_free(p);
}

static void test_audit_mode(void **state)
{
	struct policy *p = load(
		"version: 1\nnetwork_policies:\n  a:\n    endpoints:\n"
		"      - { host: api.example.com, port: 443, protocol: rest, access: read-only }\n");
	struct policy_l7_result r;

	ALLOWED(p, "GET", "/anything", NULL);
	ALLOWED(p, "OPTIONS", "/anything", NULL);
	assert_int_equal(eval(p, "api.example.com", "POST", "/x", NULL, &r),
			 POLICY_L7_AUDIT_DENY);
	assert_string_equal(r.reason, "POST /x not permitted by policy");
	/* malformed input denies even in audit mode */
	DENIED(p, "GET", "/x", "a=%zz");
	policy_free(p);
}

static void test_presets(void **state)
{
	struct policy *p = load(
		"version: 1\nnetwork_policies:\n  a:\n    endpoints:\n"
		"      - { host: api.example.com, port: 443, protocol: rest, access: read-write,"
		" enforcement: enforce }\n"
		"      - { host: full.example.com, port: 443, protocol: rest, access: full,"
		" enforcement: enforce }\n");
	struct policy_l7_result r;

	ALLOWED(p, "PATCH", "/x", NULL);
	ALLOWED(p, "HEAD", "/x", NULL);
	DENIED(p, "DELETE", "/x", NULL);
	assert_int_equal(eval(p, "full.example.com", "DELETE", "/x", NULL, &r),
			 POLICY_L7_ALLOW);
	assert_int_equal(eval(p, "full.example.com", "PROPFIND", "/x/y", NULL, &r),
			 POLICY_L7_ALLOW);
	policy_free(p);
}

static const char deny_yaml[] =
	"version: 1\n"
	"network_policies:\n"
	"  gh:\n"
	"    endpoints:\n"
	"      - host: api.example.com\n"
	"        port: 443\n"
	"        protocol: rest\n"
	"        enforcement: enforce\n"
	"        access: read-write\n"
	"        deny_rules:\n"
	"          - { method: POST, path: \"/repos/*/pulls/*/reviews\" }\n"
	"          - { method: PUT, path: \"/repos/*/branches/*/protection\" }\n"
	"          - { method: \"*\", path: \"/repos/*/rulesets\" }\n"
	"          - { method: GET, path: /secret/** }\n"
	"          - method: GET\n"
	"            path: /export/*\n"
	"            query:\n"
	"              format: { any: [csv, xlsx] }\n";

static void test_deny_rules_win(void **state)
{
	struct policy *p = load(deny_yaml);
	struct policy_l7_result r;

	DENIED(p, "POST", "/repos/o/pulls/1/reviews", NULL);
	assert_string_equal(r.reason, "POST /repos/o/pulls/1/reviews blocked by deny rule");
	DENIED(p, "PUT", "/repos/o/branches/main/protection", NULL);
	DENIED(p, "GET", "/repos/o/rulesets", NULL);
	DENIED(p, "PATCH", "/repos/o/rulesets", NULL);
	ALLOWED(p, "POST", "/repos/o/pulls/1/comments", NULL);
	ALLOWED(p, "GET", "/repos/o/rulesets/x", NULL);
	/* HEAD is blocked by a GET deny rule */
	DENIED(p, "HEAD", "/secret/x", NULL);
	ALLOWED(p, "HEAD", "/public/x", NULL);
	/* deny rule with query: fires when any value matches, not when the key is absent */
	DENIED(p, "GET", "/export/r1", "format=csv");
	DENIED(p, "GET", "/export/r1", "format=json&format=xlsx");
	ALLOWED(p, "GET", "/export/r1", "format=json");
	ALLOWED(p, "GET", "/export/r1", NULL);
	ALLOWED(p, "GET", "/export/r1", "other=csv");
	/* decoded keys and values */
	DENIED(p, "GET", "/export/r1", "form%61t=cs%76");
	policy_free(p);
}

static const char query_yaml[] =
	"version: 1\n"
	"network_policies:\n"
	"  q:\n"
	"    endpoints:\n"
	"      - host: api.example.com\n"
	"        port: 443\n"
	"        protocol: rest\n"
	"        enforcement: enforce\n"
	"        rules:\n"
	"          - allow:\n"
	"              method: GET\n"
	"              path: /tags\n"
	"              query:\n"
	"                tag: \"foo-*\"\n"
	"          - allow:\n"
	"              method: GET\n"
	"              path: /any\n"
	"              query:\n"
	"                tag: { any: [\"foo-*\", \"bar-*\"] }\n"
	"          - allow:\n"
	"              method: GET\n"
	"              path: /ver\n"
	"              query:\n"
	"                v: \"1.*\"\n"
	"                q: \"hello world\"\n";

static void test_query_allow(void **state)
{
	struct policy *p = load(query_yaml);
	struct policy_l7_result r;

	ALLOWED(p, "GET", "/tags", "tag=foo-a");
	ALLOWED(p, "GET", "/tags", "tag=foo-a&tag=foo-b");
	DENIED(p, "GET", "/tags", "tag=foo-a&tag=evil");
	DENIED(p, "GET", "/tags", NULL);      /* missing required key */
	DENIED(p, "GET", "/tags", "");
	DENIED(p, "GET", "/tags", "other=foo-a");
	DENIED(p, "GET", "/tags", "tag");     /* value "" does not match foo-* */
	ALLOWED(p, "GET", "/tags", "tag=foo-a&unrelated=x&&"); /* empty pairs skipped */
	ALLOWED(p, "GET", "/any", "tag=foo-a&tag=bar-b");
	DENIED(p, "GET", "/any", "tag=foo-a&tag=baz");
	/* value globs: '*' does not cross '.'; '+' and %20 are spaces */
	ALLOWED(p, "GET", "/ver", "v=1.2&q=hello+world");
	ALLOWED(p, "GET", "/ver", "q=hello%20world&v=1.x");
	DENIED(p, "GET", "/ver", "v=1.2.3&q=hello+world");
	DENIED(p, "GET", "/ver", "v=1.2");
	policy_free(p);
}

static void test_query_strict(void **state)
{
	struct policy *p = load(query_yaml);
	struct policy_l7_result r;
	char big[POLICY_L7_MAX_QUERY_BYTES + 2];
	char many[POLICY_L7_MAX_QUERY_PARAMS * 12 + 16];
	size_t n = 0;

	DENIED(p, "GET", "/tags", "tag=foo-%zz");
	assert_string_equal(r.reason, "invalid percent-escape in query");
	DENIED(p, "GET", "/tags", "tag=foo-%4");
	DENIED(p, "GET", "/tags", "tag=foo-a%");
	DENIED(p, "GET", "/tags", "tag=foo-a%00evil");
	DENIED(p, "GET", "/tags", "tag=foo-%ff");      /* not UTF-8 */
	DENIED(p, "GET", "/tags", "tag=foo-%c0%80");   /* overlong */
	DENIED(p, "GET", "/tags", "tag=foo-%ed%a0%80"); /* surrogate */
	ALLOWED(p, "GET", "/tags", "tag=foo-%c3%a9");
	/* limits */
	for (size_t i = 0; i < POLICY_L7_MAX_QUERY_PARAMS; i++)
		n += (size_t)snprintf(many + n, sizeof(many) - n, "tag=foo-%zu&", i % 10);
	ALLOWED(p, "GET", "/tags", many);
	snprintf(many + n, sizeof(many) - n, "tag=foo-x");
	DENIED(p, "GET", "/tags", many);
	assert_string_equal(r.reason, "too many query parameters");
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big, "tag=foo-", 8);
	DENIED(p, "GET", "/tags", big);
	big[sizeof(big) - 2] = '\0';
	ALLOWED(p, "GET", "/tags", big);
	policy_free(p);
}

static const char selector_yaml[] =
	"version: 1\n"
	"network_policies:\n"
	"  a:\n"
	"    endpoints:\n"
	"      - host: api.example.com\n"
	"        port: 443\n"
	"        path: /v1/**\n"
	"        protocol: rest\n"
	"        enforcement: enforce\n"
	"        rules:\n"
	"          - allow: { method: GET, path: /v1/** }\n"
	"      - host: api.example.com\n"
	"        port: 443\n"
	"        path: /v1/admin/**\n"
	"        protocol: rest\n"
	"        enforcement: audit\n"
	"        rules:\n"
	"          - allow: { method: GET, path: /v1/admin/ok }\n"
	"      - host: api.example.com\n"
	"        port: 443\n"
	"        path: /gql\n"
	"        protocol: graphql\n"
	"        enforcement: enforce\n"
	"        rules:\n"
	"          - allow: { operation_type: query }\n";

static void test_endpoint_path_selection(void **state)
{
	struct policy *p = load(selector_yaml);
	struct policy_l7_result r;

	ALLOWED(p, "GET", "/v1/users", NULL);
	assert_string_equal(r.endpoint->path, "/v1/**");
	DENIED(p, "POST", "/v1/users", NULL);
	/* the more specific admin endpoint is selected: its audit mode applies */
	assert_int_equal(eval(p, "api.example.com", "POST", "/v1/admin/x", NULL, &r),
			 POLICY_L7_AUDIT_DENY);
	assert_string_equal(r.endpoint->path, "/v1/admin/**");
	ALLOWED(p, "GET", "/v1/admin/ok", NULL);
	/* no selector matches */
	DENIED(p, "GET", "/v2/x", NULL);
	assert_string_equal(r.reason, "no L7 endpoint path matched request");
	assert_null(r.endpoint);
	/* graphql is not inspected here: fail closed under enforce */
	DENIED(p, "POST", "/gql", NULL);
	assert_int_equal(r.endpoint->protocol, POLICY_PROTO_GRAPHQL);
	assert_int_equal(policy_endpoint_path_specificity("/v1/admin/**"), 10);
	policy_free(p);
}

static const char two_binaries_yaml[] =
	"version: 1\n"
	"network_policies:\n"
	"  broad:\n"
	"    endpoints:\n"
	"      - { host: api.example.com, port: 443, protocol: rest, access: full,"
	" enforcement: enforce }\n"
	"    binaries: [{ path: /usr/bin/curl }]\n"
	"  narrow:\n"
	"    endpoints:\n"
	"      - host: api.example.com\n"
	"        port: 443\n"
	"        protocol: rest\n"
	"        enforcement: enforce\n"
	"        rules: [{ allow: { method: GET, path: /ok } }]\n"
	"        deny_rules: [{ method: GET, path: /never }]\n"
	"    binaries: [{ path: /usr/bin/python3 }]\n";

static void test_binaries_and_policies(void **state)
{
	struct policy *p = load(two_binaries_yaml);
	struct policy_l7_result r;

	policy_l7_evaluate_binary(p, "api.example.com", 443, "/usr/bin/python3", true, "DELETE",
				  "/x", NULL, &r);
	assert_int_equal(r.verdict, POLICY_L7_DENY);
	policy_l7_evaluate_binary(p, "api.example.com", 443, "/usr/bin/python3", true, "GET",
				  "/ok", NULL, &r);
	assert_int_equal(r.verdict, POLICY_L7_ALLOW);
	assert_string_equal(r.rule->key, "narrow");
	policy_l7_evaluate_binary(p, "api.example.com", 443, "/usr/bin/curl", true, "DELETE",
				  "/x", NULL, &r);
	assert_int_equal(r.verdict, POLICY_L7_ALLOW);
	assert_string_equal(r.rule->key, "broad");
	/* deny rules of every admitting policy apply */
	DENIED(p, "GET", "/never", NULL);
	assert_string_equal(r.rule->key, "narrow");
	/* curl's policy does not carry python's deny rule */
	policy_l7_evaluate_binary(p, "api.example.com", 443, "/usr/bin/curl", true, "GET",
				  "/never", NULL, &r);
	assert_int_equal(r.verdict, POLICY_L7_ALLOW);
	/* an unknown binary has no L7 endpoint (L4 denies it anyway) */
	policy_l7_evaluate_binary(p, "api.example.com", 443, "/bin/sh", true, "GET", "/x", NULL,
				  &r);
	assert_null(r.endpoint);
	policy_free(p);
}

static void test_websocket_and_l4(void **state)
{
	struct policy *p = load(
		"version: 1\nnetwork_policies:\n  w:\n    endpoints:\n"
		"      - { host: api.example.com, port: 443, protocol: websocket,"
		" access: read-write, enforcement: enforce }\n"
		"      - { host: plain.example.com, port: 443 }\n"
		"      - { host: \"*.wild.example.com\", port: 443, protocol: rest,"
		" enforcement: enforce, rules: [{allow: {method: GET, path: /ok}}] }\n");
	struct policy_l7_result r;

	ALLOWED(p, "GET", "/socket", NULL);
	ALLOWED(p, "WEBSOCKET_TEXT", "/socket", NULL);
	DENIED(p, "POST", "/socket", NULL);
	assert_false(policy_endpoint_needs_l7(&p->rules[0].endpoints[1]));
	assert_true(policy_endpoint_needs_l7(&p->rules[0].endpoints[0]));
	assert_int_equal(eval(p, "plain.example.com", "DELETE", "/x", NULL, &r),
			 POLICY_L7_ALLOW);
	assert_null(r.endpoint);
	assert_int_equal(eval(p, "a.wild.example.com", "GET", "/ok", NULL, &r),
			 POLICY_L7_ALLOW);
	assert_int_equal(eval(p, "a.wild.example.com", "GET", "/no", NULL, &r),
			 POLICY_L7_DENY);
	assert_int_equal(eval(p, "a.b.wild.example.com", "GET", "/no", NULL, &r),
			 POLICY_L7_ALLOW); /* not an L7 host (and not an L4 one either) */
	policy_free(p);
}

static void test_route(void **state)
{
	struct policy *p = load(
		"version: 1\nnetwork_policies:\n  a:\n    endpoints:\n"
		"      - { host: api.example.com, port: 443 }\n"
		"      - { host: slash.example.com, port: 443, protocol: rest, access: full,"
		" allow_encoded_slash: true, path: /x/** }\n"
		"    binaries: [{ path: /usr/bin/curl }]\n"
		"  b:\n    endpoints:\n"
		"      - { host: api.example.com, port: 443, protocol: rest, access: read-only,"
		" allow_encoded_slash: true }\n"
		"      - { host: slash.example.com, port: 443, protocol: rest, access: full }\n"
		"    binaries: [{ path: /usr/bin/python3 }]\n");
	struct policy_l7_route rt;

	/* the L4 decision names policy a (an L4 endpoint), but b's REST endpoint counts */
	policy_l7_route(p, "api.example.com", 443, NULL, false, &rt);
	assert_true(rt.inspect);
	assert_true(rt.allow_encoded_slash);
	assert_int_equal(rt.n_endpoints, 1);
	policy_l7_route(p, "api.example.com", 443, "/usr/bin/curl", true, &rt);
	assert_false(rt.inspect);
	assert_false(rt.allow_encoded_slash);
	/* %2F only when every candidate allows it */
	policy_l7_route(p, "slash.example.com", 443, NULL, false, &rt);
	assert_true(rt.inspect);
	assert_false(rt.allow_encoded_slash);
	assert_int_equal(rt.n_endpoints, 2);
	policy_l7_route(p, "slash.example.com", 443, "/usr/bin/curl", true, &rt);
	assert_true(rt.allow_encoded_slash);
	policy_l7_route(p, "none.example.com", 443, NULL, false, &rt);
	assert_false(rt.inspect);
	policy_l7_route(NULL, "api.example.com", 443, NULL, false, &rt);
	assert_false(rt.inspect);
	policy_free(p);
}

#define DROID_POLICY \
	"/work/shared/policies/real/openshell-community__sandboxes__droid__policy.yaml"

/* A real policy: github.com is REST-inspected for git but plain L4 for pip. */
static void test_real_policy(void **state)
{
	struct policy_errors errs = { 0 };
	struct policy *p;
	struct policy_l7_result r;

	if (access(DROID_POLICY, R_OK) != 0)
		skip(); /* reference corpus not present */
	p = policy_load_file(DROID_POLICY, &errs);
	policy_errors_free(&errs);
	assert_non_null(p);
	policy_l7_evaluate_binary(p, "github.com", 443, "/usr/bin/git", true, "GET",
				  "/org/repo.git/info/refs", "service=git-upload-pack", &r);
	assert_int_equal(r.verdict, POLICY_L7_ALLOW);
	policy_l7_evaluate_binary(p, "github.com", 443, "/usr/bin/git", true, "POST",
				  "/org/repo.git/git-receive-pack", NULL, &r);
	assert_int_equal(r.verdict, POLICY_L7_ALLOW);
	policy_l7_evaluate_binary(p, "github.com", 443, "/usr/bin/git", true, "GET",
				  "/org/repo/settings", NULL, &r);
	assert_int_equal(r.verdict, POLICY_L7_DENY);
	policy_l7_evaluate_binary(p, "api.github.com", 443, "/usr/bin/gh", true, "DELETE",
				  "/repos/o/r", NULL, &r);
	assert_int_equal(r.verdict, POLICY_L7_DENY);
	/* pip reaches github.com through an L4-only policy: no L7 candidate */
	policy_l7_evaluate_binary(p, "github.com", 443, "/sandbox/.venv/bin/pip", true, "GET",
				  "/org/repo/settings", NULL, &r);
	assert_int_equal(r.verdict, POLICY_L7_ALLOW);
	assert_null(r.endpoint);
	policy_free(p);
}

static void test_bad_input(void **state)
{
	struct policy *p = load(repos_yaml);
	struct policy_l7_result r;

	DENIED(p, "", "/repos/x", NULL);
	DENIED(p, "GE T", "/repos/x", NULL);
	DENIED(p, "GET", "repos/x", NULL);
	DENIED(p, "GET", "", NULL);
	policy_l7_evaluate(p, "api.example.com", 443, NULL, "/x", NULL, &r);
	assert_int_equal(r.verdict, POLICY_L7_DENY);
	policy_l7_evaluate(p, NULL, 443, "GET", "/x", NULL, &r);
	assert_int_equal(r.verdict, POLICY_L7_DENY);
	policy_l7_evaluate(NULL, "api.example.com", 443, "GET", "/x", NULL, &r);
	assert_int_equal(r.verdict, POLICY_L7_DENY);
	char longm[POLICY_L7_MAX_METHOD_BYTES + 2];
	memset(longm, 'A', sizeof(longm) - 1);
	longm[sizeof(longm) - 1] = '\0';
	DENIED(p, longm, "/repos/x", NULL);
	policy_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_get_allowed_delete_denied),
		cmocka_unit_test(test_audit_mode),
		cmocka_unit_test(test_presets),
		cmocka_unit_test(test_deny_rules_win),
		cmocka_unit_test(test_query_allow),
		cmocka_unit_test(test_query_strict),
		cmocka_unit_test(test_endpoint_path_selection),
		cmocka_unit_test(test_binaries_and_policies),
		cmocka_unit_test(test_websocket_and_l4),
		cmocka_unit_test(test_route),
		cmocka_unit_test(test_real_policy),
		cmocka_unit_test(test_bad_input),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
