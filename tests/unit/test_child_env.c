/* Unit tests for the one child-environment builder and the process spec. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "supervisor/sup.h"

static size_t count_name(char **env, const char *name)
{
	size_t n = 0, len = strlen(name);
	for (; *env; env++)
		if (strncmp(*env, name, len) == 0 && (*env)[len] == '=')
			n++;
	return n;
}

static void test_proxy_variables_present(void **state)
{
	(void)state;
	char *inherited[] = { "PATH=/usr/bin", "FOO=bar", NULL };
	struct child_env_params p = { .proxy_url = "http://10.200.0.1:3128", .home = "/sandbox",
				      .user = "sandbox" };
	char **env = child_env_build(inherited, &p);
	assert_non_null(env);
	const char *url_vars[] = { "ALL_PROXY", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy",
				   "https_proxy", "grpc_proxy" };
	for (size_t i = 0; i < 6; i++) {
		assert_string_equal(child_env_get(env, url_vars[i]), "http://10.200.0.1:3128");
		assert_int_equal(count_name(env, url_vars[i]), 1);
	}
	assert_string_equal(child_env_get(env, "NO_PROXY"), "127.0.0.1,localhost,::1");
	assert_string_equal(child_env_get(env, "no_proxy"), "127.0.0.1,localhost,::1");
	assert_string_equal(child_env_get(env, "NODE_USE_ENV_PROXY"), "1");
	assert_string_equal(child_env_get(env, "OPENSHELL_SANDBOX"), "1");
	assert_string_equal(child_env_get(env, "FOO"), "bar");
	assert_string_equal(child_env_get(env, "HOME"), "/sandbox");
	assert_string_equal(child_env_get(env, "USER"), "sandbox");
	assert_null(child_env_get(env, "SSL_CERT_FILE"));
	child_env_free(env);
}

static void test_user_no_proxy_kept_and_proxy_overridden(void **state)
{
	(void)state;
	char *inherited[] = { "NO_PROXY=internal.example, localhost ,.corp", "no_proxy=x.test",
			      "HTTPS_PROXY=http://evil:1", NULL };
	struct child_env_params p = { .proxy_url = "http://10.200.0.1:3128" };
	char **env = child_env_build(inherited, &p);
	assert_non_null(env);
	assert_string_equal(child_env_get(env, "NO_PROXY"),
			    "127.0.0.1,localhost,::1,internal.example,.corp,x.test");
	assert_string_equal(child_env_get(env, "HTTPS_PROXY"), "http://10.200.0.1:3128");
	assert_int_equal(count_name(env, "HTTPS_PROXY"), 1);
	child_env_free(env);
}

static void test_secrets_stripped_and_empty_start(void **state)
{
	(void)state;
	char *inherited[] = { "OPENSHELL_SANDBOX_TOKEN=s3cret", "OPENSHELL_TLS_KEY=/k",
			      "OPENSHELL_ENDPOINT=https://gw", NULL };
	struct child_env_params p = { .proxy_url = "http://10.200.0.1:3128",
				      .ca_cert_path = "/etc/openshell-tls/openshell-ca.pem",
				      .ca_bundle_path = "/etc/openshell-tls/ca-bundle.pem" };
	char **env = child_env_build(inherited, &p);
	assert_non_null(env);
	assert_null(child_env_get(env, "OPENSHELL_SANDBOX_TOKEN"));
	assert_null(child_env_get(env, "OPENSHELL_TLS_KEY"));
	assert_string_equal(child_env_get(env, "OPENSHELL_ENDPOINT"), "https://gw");
	assert_string_equal(child_env_get(env, "GIT_SSL_CAINFO"), "/etc/openshell-tls/ca-bundle.pem");
	assert_string_equal(child_env_get(env, "NODE_EXTRA_CA_CERTS"),
			    "/etc/openshell-tls/openshell-ca.pem");
	child_env_free(env);

	/* An SSH session starts from nothing and still gets every proxy variable. */
	char *empty[] = { NULL };
	env = child_env_build(empty, &p);
	assert_non_null(env);
	assert_string_equal(child_env_get(env, "HTTP_PROXY"), "http://10.200.0.1:3128");
	assert_non_null(child_env_get(env, "PATH"));
	child_env_free(env);
}

static void test_process_spec(void **state)
{
	(void)state;
	char **argv = NULL;
	char err[256];
	assert_int_equal(sup_parse_process_spec(
		"{\"version\":1,\"command\":[\"/bin/sh\",\"-c\",\"printf '%s' 'a b'\"],\"tty\":false}",
		&argv, err, sizeof err), 0);
	assert_string_equal(argv[0], "/bin/sh");
	assert_string_equal(argv[2], "printf '%s' 'a b'");
	assert_null(argv[3]);
	sup_argv_free(argv);

	/* {"version":1,"command":["echo","hi"]} in unpadded base64url */
	assert_int_equal(sup_parse_process_spec(
		"base64url:eyJ2ZXJzaW9uIjoxLCJjb21tYW5kIjpbImVjaG8iLCJoaSJdfQ", &argv, err,
		sizeof err), 0);
	assert_string_equal(argv[0], "echo");
	assert_string_equal(argv[1], "hi");
	sup_argv_free(argv);

	assert_int_equal(sup_parse_process_spec("{\"version\":2,\"command\":[\"x\"]}", &argv, err,
						sizeof err), -1);
	assert_non_null(strstr(err, "unsupported"));
	assert_int_equal(sup_parse_process_spec("{\"version\":1,\"command\":[\"\"]}", &argv, err,
						sizeof err), -1);
	assert_int_equal(sup_parse_process_spec("{\"version\":1,\"command\":[]}", &argv, err,
						sizeof err), -1);
	assert_int_equal(sup_parse_process_spec("not json", &argv, err, sizeof err), -1);
	assert_int_equal(sup_parse_process_spec("base64url:!!!", &argv, err, sizeof err), -1);
	assert_null(argv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_proxy_variables_present),
		cmocka_unit_test(test_user_no_proxy_kept_and_proxy_overridden),
		cmocka_unit_test(test_secrets_stripped_and_empty_start),
		cmocka_unit_test(test_process_spec),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
