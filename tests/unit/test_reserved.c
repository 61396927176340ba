/* test_reserved.c - the host alias and the tool route: which endpoints
 * declare the alias, tool-call verdicts, identity headers (encoding, the
 * caller's copies dropped) and --tool-broker parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "policy/policy.h"
#include "proxy/proxy.h"
#include "proxy/reserved.h"
#include "tests/unit/support/harness.h"

static const char POLICY[] =
	"version: 1\n"
	"network_policies:\n"
	"  local:\n"
	"    endpoints:\n"
	"      - host: host.openshell.internal\n"
	"        ports: [8080, 9000]\n"
	"      - host: \"*.openshell.internal\"\n"
	"        port: 7000\n"
	"  tools:\n"
	"    endpoints:\n"
	"      - host: tools.openshell.internal\n"
	"        port: 443\n"
	"        protocol: rest\n"
	"        enforcement: enforce\n"
	"        rules:\n"
	"          - allow: {method: POST, path: \"/v1/tools/echo/**\"}\n"
	"      - host: bare.openshell.test\n"
	"        port: 443\n";

static void alias_needs_exact_host_and_declared_port(void **state)
{
	struct policy *p = tu_policy_load(POLICY);
	assert_true(reserved_is_alias("host.openshell.internal"));
	assert_true(reserved_is_alias("HOST.openshell.internal"));
	assert_false(reserved_is_alias("host.openshell.internal.evil"));
	assert_true(reserved_alias_declared(p, 8080));
	assert_true(reserved_alias_declared(p, 9000));
	assert_false(reserved_alias_declared(p, 7000)); /* only the wildcard names it */
	assert_false(reserved_alias_declared(p, 80));
	assert_false(reserved_alias_declared(NULL, 8080));
	assert_true(reserved_host_declared(p, "tools.openshell.internal", 443));
	assert_false(reserved_host_declared(p, "tools.openshell.internal", 8443));
	assert_false(reserved_host_declared(p, "tools.openshell.internal", 7000)); /* wildcard */
	assert_false(reserved_host_declared(p, "x.openshell.internal", 443));
	policy_free(p);
}

static void tool_calls_default_deny(void **state)
{
	struct policy *p = tu_policy_load(POLICY);
	struct policy_l7_result r;
	reserved_tool_evaluate(p, "tools.openshell.internal", 443, "POST", "/v1/tools/echo/x",
			       NULL, &r);
	assert_int_equal(r.verdict, POLICY_L7_ALLOW);
	reserved_tool_evaluate(p, "tools.openshell.internal", 443, "POST", "/v1/tools/rm/x",
			       NULL, &r);
	assert_int_equal(r.verdict, POLICY_L7_DENY);
	reserved_tool_evaluate(p, "tools.openshell.internal", 443, "GET", "/v1/tools", NULL, &r);
	assert_int_equal(r.verdict, POLICY_L7_ALLOW); /* discovery */
	reserved_tool_evaluate(p, "tools.openshell.internal", 443, "POST", "/v1/tools", NULL, &r);
	assert_int_equal(r.verdict, POLICY_L7_DENY);
	/* An endpoint without L7 rules admits no call. */
	reserved_tool_evaluate(p, "bare.openshell.test", 443, "POST", "/v1/tools/echo/x", NULL,
			       &r);
	assert_int_equal(r.verdict, POLICY_L7_DENY);
	assert_non_null(strstr(r.reason, "L7 rules"));
	policy_free(p);
}

static void identity_lines_are_encoded(void **state)
{
	char out[RESERVED_IDENTITY_BYTES];
	size_t n = reserved_identity_lines("sbx 1", "/tmp/a\r\nX-OpenShell-Sandbox-Id: evil", 42,
					   out, sizeof(out));
	assert_int_not_equal(n, 0);
	assert_string_equal(out, "X-OpenShell-Sandbox-Id: sbx%201\r\n"
			    "X-OpenShell-Caller-Binary: /tmp/a%0D%0AX-OpenShell-Sandbox-Id:%20evil\r\n"
			    "X-OpenShell-Caller-Pid: 42\r\n");
	n = reserved_identity_lines(NULL, NULL, 0, out, sizeof(out));
	assert_string_equal(out, "X-OpenShell-Sandbox-Id: unknown\r\n"
			    "X-OpenShell-Caller-Binary: unknown\r\n"
			    "X-OpenShell-Caller-Pid: unknown\r\n");
	assert_int_equal(reserved_identity_lines("x", "y", 1, out, 20), 0); /* does not fit */
}

static void tool_head_drops_caller_identity(void **state)
{
	static const char head[] = "POST /v1/tools/a HTTP/1.1\r\n"
				   "X-OpenShell-Sandbox-Id: spoofed\r\n"
				   "Content-Length: 2\r\n"
				   "x-openshell-caller-binary: /bin/evil\r\n"
				   "X-OpenShellish: kept\r\n"
				   "\r\n";
	size_t n = 0;
	char *out = reserved_tool_head(head, sizeof(head) - 1, "X-OpenShell-Sandbox-Id: real\r\n",
				       &n);
	assert_non_null(out);
	static const char want[] = "POST /v1/tools/a HTTP/1.1\r\n"
				   "Content-Length: 2\r\n"
				   "X-OpenShellish: kept\r\n"
				   "X-OpenShell-Sandbox-Id: real\r\n"
				   "\r\n";
	assert_int_equal(n, sizeof(want) - 1);
	assert_memory_equal(out, want, n);
	free(out);
	assert_null(reserved_tool_head("GET / HTTP/1.1\r\n", 16, "", &n)); /* no end */
}

static void broker_values(void **state)
{
	struct proxy_tool_broker b;
	char err[256];
	assert_int_equal(proxy_tool_broker_parse("unix:/run/tools.sock", &b, err, sizeof(err)), 0);
	assert_int_equal(b.kind, PROXY_BROKER_UNIX);
	assert_string_equal(b.path, "/run/tools.sock");
	assert_int_equal(proxy_tool_broker_parse("http://127.0.0.1:8700", &b, err, sizeof(err)), 0);
	assert_int_equal(b.kind, PROXY_BROKER_TCP);
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)&b.addr;
	assert_int_equal(ntohs(s4->sin_port), 8700);
	assert_int_equal(proxy_tool_broker_parse("http://[::1]:80/", &b, err, sizeof(err)), 0);
	assert_int_equal(b.addr.ss_family, AF_INET6);
	const char *bad[] = { "unix:relative.sock", "http://broker.local:80", "http://1.2.3.4",
			      "http://1.2.3.4:0", "http://1.2.3.4:99999", "https://1.2.3.4:1",
			      "::1:80", "http://::1:80", "", "ftp://x" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(proxy_tool_broker_parse(bad[i], &b, err, sizeof(err)), -1);
		assert_non_null(strstr(err, "--tool-broker"));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(alias_needs_exact_host_and_declared_port),
		cmocka_unit_test(tool_calls_default_deny),
		cmocka_unit_test(identity_lines_are_encoded),
		cmocka_unit_test(tool_head_drops_caller_identity),
		cmocka_unit_test(broker_values),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
