/* test_cred.c - credentials file loading and placeholder rewriting
 * (proxy/cred.c, proxy/cred_rewrite.c). Files are created in a private
 * temporary directory; the root-ownership check needs euid 0 (skipped
 * otherwise). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "proxy/cred.h"

#define PH "openshell:resolve:env:"

struct fixture {
	char dir[64];
	char path[128];
	struct cred_store *s;
};

static void write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f;

	(void)unlink(path); /* a fresh file: owner root, no leftover chown */
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, mode), 0);
}

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	char yaml[1024], vf[128], err[512];

	if (!fx)
		return -1;
	if (geteuid() != 0) {
		*state = fx;
		return 0;
	}
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_cred.XXXXXX");
	if (!mkdtemp(fx->dir))
		return -1;
	snprintf(vf, sizeof(vf), "%s/tg.token", fx->dir);
	write_file(vf, "123:ABC\n", 0600);
	snprintf(yaml, sizeof(yaml),
		 "GH_TOKEN:\n"
		 "  value: ghp_secret\n"
		 "  hosts: [api.github.com, \"*.GitHub.com\"]\n"
		 "TG:\n"
		 "  value_file: %s\n"
		 "  hosts: [api.telegram.org]\n"
		 "SLASHY:\n"
		 "  value: \"a/b\"\n"
		 "  hosts: [api.github.com]\n"
		 "SPACEY:\n"
		 "  value: \"x y+z&\"\n"
		 "  hosts: [api.github.com]\n",
		 vf);
	snprintf(fx->path, sizeof(fx->path), "%s/creds.yaml", fx->dir);
	write_file(fx->path, yaml, 0600);
	fx->s = cred_load(fx->path, err, sizeof(err));
	if (!fx->s) {
		print_error("cred_load: %s\n", err);
		return -1;
	}
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	char cmd[160];

	cred_free(fx->s);
	if (fx->dir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
		if (system(cmd) != 0)
			return -1;
	}
	free(fx);
	return 0;
}

#define NEED_ROOT(fx)                                               \
	do {                                                        \
		if (!(fx)->s)                                       \
			skip(); /* file ownership checks need root */ \
	} while (0)

static int header(const struct fixture *fx, const char *host, const char *v, char *out,
		  size_t cap)
{
	size_t n = 0;
	int r = cred_rewrite_header(fx->s, host, "Authorization", v, strlen(v), out, cap, &n);

	if (r == CRED_OK)
		assert_int_equal(strlen(out), n);
	return r;
}

static int target(const struct fixture *fx, const char *host, const char *t, char *out,
		  size_t cap)
{
	size_t n = 0;
	int r = cred_rewrite_target(fx->s, host, t, strlen(t), out, cap, &n);

	if (r == CRED_OK)
		assert_int_equal(strlen(out), n);
	return r;
}

static void test_load(void **state)
{
	struct fixture *fx = *state;
	char env[128];

	NEED_ROOT(fx);
	assert_int_equal(cred_count(fx->s), 4);
	assert_string_equal(cred_name(fx->s, 0), "GH_TOKEN");
	assert_string_equal(cred_name(fx->s, 1), "TG");
	assert_null(cred_name(fx->s, 4));
	assert_int_equal(cred_env_entry(fx->s, 0, env, sizeof(env)),
			 strlen("GH_TOKEN=" PH "GH_TOKEN"));
	assert_string_equal(env, "GH_TOKEN=" PH "GH_TOKEN");
	assert_int_equal(cred_env_entry(fx->s, 0, env, 10), 0);
}

static void test_header_forms(void **state)
{
	struct fixture *fx = *state;
	char out[256];

	NEED_ROOT(fx);
	assert_int_equal(header(fx, "api.github.com", "Bearer " PH "GH_TOKEN", out, sizeof(out)),
			 CRED_OK);
	assert_string_equal(out, "Bearer ghp_secret");
	assert_int_equal(header(fx, "api.github.com", PH "GH_TOKEN", out, sizeof(out)), CRED_OK);
	assert_string_equal(out, "ghp_secret");
	assert_int_equal(header(fx, "api.github.com", "token " PH "v3_GH_TOKEN", out,
				sizeof(out)), CRED_OK);
	assert_string_equal(out, "token ghp_secret");
	assert_int_equal(header(fx, "api.github.com",
				PH "s0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef_GH_TOKEN",
				out, sizeof(out)), CRED_OK);
	assert_string_equal(out, "ghp_secret");
	/* wildcard scope, matched case-insensitively at load */
	assert_int_equal(header(fx, "uploads.github.com", PH "GH_TOKEN", out, sizeof(out)),
			 CRED_OK);
	assert_int_equal(header(fx, "api.github.com", "Bearer abc", out, sizeof(out)),
			 CRED_NO_PLACEHOLDER);
}

static void test_header_basic(void **state)
{
	struct fixture *fx = *state;
	char out[256];

	NEED_ROOT(fx);
	/* base64("user:openshell:resolve:env:GH_TOKEN") */
	assert_int_equal(header(fx, "api.github.com",
				"Basic dXNlcjpvcGVuc2hlbGw6cmVzb2x2ZTplbnY6R0hfVE9LRU4=", out,
				sizeof(out)), CRED_OK);
	/* base64("user:ghp_secret") */
	assert_string_equal(out, "Basic dXNlcjpnaHBfc2VjcmV0");
	/* base64("user:plain"): no placeholder */
	assert_int_equal(header(fx, "api.github.com", "Basic dXNlcjpwbGFpbg==", out, sizeof(out)),
			 CRED_NO_PLACEHOLDER);
	assert_int_equal(header(fx, "evil.example.com",
				"basic  dXNlcjpvcGVuc2hlbGw6cmVzb2x2ZTplbnY6R0hfVE9LRU4=", out,
				sizeof(out)), CRED_OUT_OF_SCOPE);
	/* unpadded base64 with a placeholder is still found */
	assert_int_equal(header(fx, "api.github.com",
				"Basic dXNlcjpvcGVuc2hlbGw6cmVzb2x2ZTplbnY6R0hfVE9LRU4", out,
				sizeof(out)), CRED_OK);
	assert_string_equal(out, "Basic dXNlcjpnaHBfc2VjcmV0");
	/* the output must fit */
	assert_int_equal(header(fx, "api.github.com",
				"Basic dXNlcjpvcGVuc2hlbGw6cmVzb2x2ZTplbnY6R0hfVE9LRU4=", out, 12),
			 CRED_TOO_LONG);
}

static void test_fail_closed(void **state)
{
	struct fixture *fx = *state;
	char out[256];
	size_t n;

	NEED_ROOT(fx);
	assert_int_equal(header(fx, "example.com", "Bearer " PH "GH_TOKEN", out, sizeof(out)),
			 CRED_OUT_OF_SCOPE);
	assert_int_equal(header(fx, NULL, "Bearer " PH "GH_TOKEN", out, sizeof(out)),
			 CRED_OUT_OF_SCOPE);
	assert_int_equal(header(fx, "api.github.com", "Bearer " PH "NOPE", out, sizeof(out)),
			 CRED_UNKNOWN);
	assert_int_equal(header(fx, "api.github.com", "Bearer " PH, out, sizeof(out)),
			 CRED_UNKNOWN);
	/* markers we never resolve: case variants, encoded, alias form */
	assert_int_equal(header(fx, "api.github.com", "Bearer OpenShell:Resolve:Env:GH_TOKEN",
				out, sizeof(out)), CRED_UNKNOWN);
	assert_int_equal(header(fx, "api.github.com", "Bearer openshell%3Aresolve%3Aenv%3AGH_TOKEN",
				out, sizeof(out)), CRED_UNKNOWN);
	assert_int_equal(header(fx, "api.github.com", "Bearer x-OPENSHELL-RESOLVE-ENV-GH_TOKEN",
				out, sizeof(out)), CRED_UNKNOWN);
	/* a good placeholder next to a bad one still fails */
	assert_int_equal(header(fx, "api.github.com", PH "GH_TOKEN " PH "NOPE", out,
				sizeof(out)), CRED_UNKNOWN);
	assert_int_equal(header(fx, "api.github.com", "Bearer " PH "GH_TOKEN", out, 8),
			 CRED_TOO_LONG);
	/* no credentials file at all */
	assert_int_equal(cred_rewrite_header(NULL, "api.github.com", "Authorization",
					     "Bearer " PH "GH_TOKEN", 29, out, sizeof(out), &n),
			 CRED_UNKNOWN);
	assert_int_equal(cred_rewrite_header(NULL, "api.github.com", "Authorization", "x", 1, out,
					     sizeof(out), &n), CRED_NO_PLACEHOLDER);
}

static void test_target(void **state)
{
	struct fixture *fx = *state;
	char out[256];

	NEED_ROOT(fx);
	assert_int_equal(target(fx, "api.telegram.org", "/bot" PH "TG/sendMessage?chat=1", out,
				sizeof(out)), CRED_OK);
	assert_string_equal(out, "/bot123%3AABC/sendMessage?chat=1");
	assert_int_equal(target(fx, "api.github.com", "/x?token=" PH "GH_TOKEN&a=b", out,
				sizeof(out)), CRED_OK);
	assert_string_equal(out, "/x?token=ghp_secret&a=b");
	/* a placeholder a client percent-encoded in the query */
	assert_int_equal(target(fx, "api.github.com",
				"/x?a=1&token=openshell%3Aresolve%3Aenv%3AGH_TOKEN", out,
				sizeof(out)), CRED_OK);
	assert_string_equal(out, "/x?a=1&token=ghp_secret");
	/* the substituted value is percent-encoded for its context */
	assert_int_equal(target(fx, "api.github.com", "/x?k=pre+" PH "SPACEY", out, sizeof(out)),
			 CRED_OK);
	assert_string_equal(out, "/x?k=pre%20x%20y%2Bz%26");
	/* a value with '/' cannot go into a path segment, but can into a query */
	assert_int_equal(target(fx, "api.github.com", "/a/" PH "SLASHY", out, sizeof(out)),
			 CRED_REFUSED);
	assert_int_equal(target(fx, "api.github.com", "/a?v=" PH "SLASHY", out, sizeof(out)),
			 CRED_OK);
	assert_string_equal(out, "/a?v=a%2Fb");
	assert_int_equal(target(fx, "api.github.com", "/bot" PH "TG/x", out, sizeof(out)),
			 CRED_OUT_OF_SCOPE);
	assert_int_equal(target(fx, "api.github.com", "/bot" PH "NOPE/x", out, sizeof(out)),
			 CRED_UNKNOWN);
	/* placeholder in a query key: never resolved, fails closed */
	assert_int_equal(target(fx, "api.github.com", "/x?" PH "GH_TOKEN=1", out, sizeof(out)),
			 CRED_UNKNOWN);
	assert_int_equal(target(fx, "api.github.com", "/x/y?z=1", out, sizeof(out)),
			 CRED_NO_PLACEHOLDER);
	assert_int_equal(target(fx, "api.github.com", "/x?token=" PH "GH_TOKEN", out, 12),
			 CRED_TOO_LONG);
	assert_int_equal(target(fx, "api.github.com", "/x/" PH "GH_TOKEN/%zz?a=" PH "GH_TOKEN&b",
				out, sizeof(out)), CRED_OK);
	assert_string_equal(out, "/x/ghp_secret/%zz?a=ghp_secret&b");
	assert_int_equal(target(fx, "api.github.com", "/x/%zz" PH "GH_TOKEN", out, sizeof(out)),
			 CRED_REFUSED);
	assert_int_equal(target(fx, "api.github.com", "/", out, sizeof(out)),
			 CRED_NO_PLACEHOLDER);
	assert_int_equal(target(fx, "api.github.com", "/a/?", out, sizeof(out)),
			 CRED_NO_PLACEHOLDER);
}

static void test_contains(void **state)
{
	const char *yes[] = {
		PH "X", ("xx" PH), "OPENSHELL:RESOLVE:ENV:X", "openshell%3aresolve%3Aenv%3aX",
		"%6fpenshell:resolve:env:", "a-OPENSHELL-RESOLVE-ENV-B", "oopenshell:resolve:env:",
		"Authorization: Basic dXNlcjpvcGVuc2hlbGw6cmVzb2x2ZTplbnY6R0hfVE9LRU4=",
	};
	const char *no[] = {
		"", "openshell:resolve:en", "openshell:resolve:env", "Basic dXNlcjpwbGFpbg==",
		"openshell%3resolve:env:", "OPENSHELL_RESOLVE_ENV_X",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		if (!cred_contains_placeholder(yes[i], strlen(yes[i])))
			fail_msg("'%s' not detected", yes[i]);
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		if (cred_contains_placeholder(no[i], strlen(no[i])))
			fail_msg("'%s' detected", no[i]);
	/* only len bytes are looked at */
	assert_false(cred_contains_placeholder(PH "X", 10));
}

static void test_redact(void **state)
{
	struct fixture *fx = *state;
	char out[256];
	size_t n;
	const char *in = "GET /x?t=ghp_secret and 123:ABC";

	NEED_ROOT(fx);
	assert_int_equal(cred_redact(fx->s, in, strlen(in), out, sizeof(out), &n), CRED_OK);
	assert_string_equal(out, "GET /x?t=[REDACTED:GH_TOKEN] and [REDACTED:TG]");
	assert_int_equal(n, strlen(out));
	assert_int_equal(cred_redact(fx->s, in, strlen(in), out, 10, &n), CRED_TOO_LONG);
	in = "/bot" PH "TG/send?k=" PH "v2_GH_TOKEN&x=1";
	assert_int_equal(cred_redact_placeholders(in, strlen(in), out, sizeof(out), &n), CRED_OK);
	assert_string_equal(out, "/bot[CREDENTIAL]/send?k=[CREDENTIAL]&x=1");
	assert_int_equal(cred_redact(NULL, "abc", 3, out, sizeof(out), &n), CRED_OK);
	assert_string_equal(out, "abc");
	assert_string_equal(cred_result_str(CRED_OUT_OF_SCOPE), "credential not scoped to this host");
}

/* ---- loading errors ---- */

static void expect_load_error(struct fixture *fx, const char *yaml, mode_t mode,
			      const char *needle)
{
	char path[160], err[512] = "";
	struct cred_store *s;

	snprintf(path, sizeof(path), "%s/bad.yaml", fx->dir);
	write_file(path, yaml, mode);
	s = cred_load(path, err, sizeof(err));
	if (s) {
		cred_free(s);
		fail_msg("loaded: %s", yaml);
	}
	if (!strstr(err, needle))
		fail_msg("error '%s' lacks '%s'", err, needle);
}

static void test_permissions(void **state)
{
	struct fixture *fx = *state;
	const char *ok = "A:\n  value: x\n  hosts: [a.example.com]\n";
	char path[160], err[512], link[160], vf[160], yaml[512];
	struct cred_store *s;

	NEED_ROOT(fx);
	expect_load_error(fx, ok, 0644, "mode 0644 gives group/other access");
	expect_load_error(fx, ok, 0640, "mode 0640");
	expect_load_error(fx, ok, 0604, "mode 0604");
	snprintf(path, sizeof(path), "%s/bad.yaml", fx->dir);
	write_file(path, ok, 0600);
	s = cred_load(path, err, sizeof(err));
	assert_non_null(s);
	cred_free(s);
	/* through a symlink: the target is what gets checked */
	snprintf(link, sizeof(link), "%s/link.yaml", fx->dir);
	assert_int_equal(symlink(path, link), 0);
	s = cred_load(link, err, sizeof(err));
	assert_non_null(s);
	cred_free(s);
	assert_int_equal(chown(path, 65534, 0), 0);
	assert_null(cred_load(path, err, sizeof(err)));
	assert_non_null(strstr(err, "must be owned by root"));
	assert_non_null(strstr(err, path));
	assert_null(cred_load(fx->dir, err, sizeof(err)));
	assert_non_null(strstr(err, "not a regular file"));
	assert_null(cred_load("/nonexistent/creds.yaml", err, sizeof(err)));
	assert_non_null(strstr(err, "/nonexistent/creds.yaml: cannot open"));
	/* value_file gets the same checks, reported at the YAML position */
	snprintf(vf, sizeof(vf), "%s/v.txt", fx->dir);
	write_file(vf, "secret\n", 0644);
	snprintf(yaml, sizeof(yaml), "A:\n  value_file: %s\n  hosts: [a.example.com]\n", vf);
	expect_load_error(fx, yaml, 0600, ":2:15: value_file of A:");
	expect_load_error(fx, yaml, 0600, "mode 0644");
}

static void test_value_file_newline(void **state)
{
	struct fixture *fx = *state;
	char path[160], vf[160], yaml[512], err[512], out[64];
	struct cred_store *s;
	size_t n;

	NEED_ROOT(fx);
	snprintf(vf, sizeof(vf), "%s/v2.txt", fx->dir);
	write_file(vf, "sec\n\n", 0600);
	snprintf(yaml, sizeof(yaml), "A:\n  value_file: %s\n  hosts: [a.example.com]\n", vf);
	expect_load_error(fx, yaml, 0600, "contains CR, LF or NUL");
	write_file(vf, "sec\n", 0400);
	snprintf(path, sizeof(path), "%s/good.yaml", fx->dir);
	write_file(path, yaml, 0400);
	s = cred_load(path, err, sizeof(err));
	assert_non_null(s);
	assert_int_equal(cred_rewrite_header(s, "a.example.com", "X", PH "A", strlen(PH "A"), out,
					     sizeof(out), &n), CRED_OK);
	assert_string_equal(out, "sec");
	cred_free(s);
}

static void test_schema_errors(void **state)
{
	struct fixture *fx = *state;

	NEED_ROOT(fx);
	expect_load_error(fx, "lower:\n  value: x\n  hosts: [a.b.c]\n", 0600,
			  "bad.yaml:1:1: credential name 'lower' must match");
	expect_load_error(fx, "A:\n  value: x\n", 0600, "bad.yaml:2:3: A needs 'hosts'");
	expect_load_error(fx, "A:\n  value: x\n  value_file: /x\n  hosts: [a]\n", 0600,
			  "exactly one of 'value' and 'value_file'");
	expect_load_error(fx, "A:\n  value: x\n  host: [a]\n", 0600, "3:3: unknown key 'host'");
	expect_load_error(fx, "A:\n  value: x\n  hosts: [a]\nA:\n  value: y\n  hosts: [a]\n",
			  0600, "4:1: duplicate credential 'A'");
	expect_load_error(fx, "A:\n  value: x\n  hosts: []\n", 0600, "must not be empty");
	expect_load_error(fx, "A:\n  value: x\n  hosts: [\"*\"]\n", 0600, "bare wildcard");
	expect_load_error(fx, "A:\n  value: x\n  hosts: [\"*.com\"]\n", 0600, "three labels");
	expect_load_error(fx, "A:\n  value: x\n  hosts: [\"a b\"]\n", 0600, "character outside");
	expect_load_error(fx, "A:\n  value: \"a\\rb\"\n  hosts: [a]\n", 0600, "CR, LF or NUL");
	expect_load_error(fx, "A:\n  value: \"" PH "B\"\n  hosts: [a]\n", 0600,
			  "placeholder marker");
	expect_load_error(fx, "A:\n  value: \"\"\n  hosts: [a]\n", 0600, "is empty");
	expect_load_error(fx, "A:\n  value: [x]\n  hosts: [a]\n", 0600, "2:10: 'value' must be a string");
	expect_load_error(fx, "A: {value: x, hosts: [a]\n", 0600, "bad.yaml:2:1:");
	expect_load_error(fx, "", 0600, "no credentials defined");
	expect_load_error(fx, "[a, b]\n", 0600, "must be a map");
	expect_load_error(fx, "A: &m {value: x, hosts: *m}\n", 0600, "'hosts' must be a list");
	expect_load_error(fx, "A:\n  value_file: rel/path\n  hosts: [a]\n", 0600, "absolute path");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_load),
		cmocka_unit_test(test_header_forms),
		cmocka_unit_test(test_header_basic),
		cmocka_unit_test(test_fail_closed),
		cmocka_unit_test(test_target),
		cmocka_unit_test(test_contains),
		cmocka_unit_test(test_redact),
		cmocka_unit_test(test_permissions),
		cmocka_unit_test(test_value_file_newline),
		cmocka_unit_test(test_schema_errors),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
