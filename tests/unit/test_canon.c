/* test_canon.c - request-target canonicalization (proxy/canon.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "policy/policy.h"
#include "proxy/canon.h"

struct canon_case {
	const char *in;
	bool allow_slash;
	const char *path;  /* NULL: rejected */
	const char *query;
};

static const struct canon_case cases[] = {
	{ "/", false, "/", "" },
	{ "/a/b", false, "/a/b", "" },
	{ "/a/./b/../c", false, "/a/c", "" },
	{ "//a///b", false, "/a/b", "" },
	{ "/a//", false, "/a/", "" },
	{ "//", false, "/", "" },
	{ "/a/", false, "/a/", "" },
	{ "/a/.", false, "/a/", "" },
	{ "/a/b/..", false, "/a/", "" },
	{ "/a/..", false, "/", "" },
	{ "/.", false, "/", "" },
	{ "/..", false, NULL, NULL },
	{ "/a/../..", false, NULL, NULL },
	{ "/a/../../b", false, NULL, NULL },
	{ "/a;jsessionid=x/b", false, "/a/b", "" },
	{ "/a/..;x/b", false, "/b", "" },
	{ "/a/%2e%2e/b", false, "/b", "" },
	{ "/a/%2E%2E/b", false, "/b", "" },
	{ "/a/.%2e/b", false, "/b", "" },
	{ "/a/%2e/b", false, "/a/b", "" },
	{ "/%2e%2e", false, NULL, NULL },
	{ "/%2e%2e/x", false, NULL, NULL },
	{ "/a/%2F", false, NULL, NULL },
	{ "/a%2fb", false, NULL, NULL },
	{ "/a%2fb", true, "/a%2Fb", "" },
	{ "/a%2Fb", true, "/a%2Fb", "" },
	{ "/a/..%2f..%2fetc", false, NULL, NULL },
	{ "/a/..%2f..%2fetc", true, NULL, NULL },
	{ "/a/.%2fx", true, NULL, NULL },
	{ "/a/x%2f..", true, NULL, NULL },
	{ "/a/x%2f...", true, "/a/x%2F...", "" },
	{ "/a%5cb", false, NULL, NULL },
	{ "/a\\b", false, NULL, NULL },
	{ "/a%00b", false, NULL, NULL },
	{ "/a%0ab", false, NULL, NULL },
	{ "/a%7fb", false, NULL, NULL },
	{ "/a%zz", false, NULL, NULL },
	{ "/a%4", false, NULL, NULL },
	{ "/a%", false, NULL, NULL },
	{ "/%41%62c", false, "/Abc", "" },
	{ "/a%20b", false, "/a%20b", "" },
	{ "/a%2ab", false, "/a*b", "" },
	{ "/%7e%2d%5f", false, "/~-_", "" },
	{ "/%c3%a9", false, "/%C3%A9", "" },
	{ "/a%25b", false, "/a%25b", "" },
	{ "/a%3fb", false, "/a%3Fb", "" },
	{ "/a%23b", false, "/a%23b", "" },
	{ "/a{b}", false, "/a%7Bb%7D", "" },
	{ "/user@host:x", false, "/user@host:x", "" },
	{ "/a/b?x=1&y=%41", false, "/a/b", "x=1&y=%41" },
	{ "/a/../b?q=/../", false, "/b", "q=/../" },
	{ "/a?", false, "/a", "" },
	{ "/a?x=%zz", false, NULL, NULL },
	{ "/a?x=%00", false, NULL, NULL },
	{ "/a?x=%0a", false, "/a", "x=%0a" },
	{ "/a#frag", false, NULL, NULL },
	{ "/a?x#frag", false, NULL, NULL },
	{ "/a b", false, NULL, NULL },
	{ "/a\tb", false, NULL, NULL },
	{ "/a\x80", false, NULL, NULL },
	{ "/a\x7f", false, NULL, NULL },
	{ "*", false, NULL, NULL },
	{ "http://h/a", false, NULL, NULL },
	{ "a/b", false, NULL, NULL },
	{ "", false, NULL, NULL },
};

static int canon(const char *in, bool allow, char *path, char *query, const char **err)
{
	return canon_request_target(in, strlen(in), allow, path, CANON_MAX_PATH_BYTES + 1,
				    query, CANON_MAX_QUERY_BYTES + 1, err);
}

static void test_table(void **state)
{
	static char path[CANON_MAX_PATH_BYTES + 1], query[CANON_MAX_QUERY_BYTES + 1];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct canon_case *c = &cases[i];
		const char *err = NULL;
		int r = canon(c->in, c->allow_slash, path, query, &err);

		if (!c->path) {
			if (r != -1 || !err)
				fail_msg("'%s' should be rejected, got '%s'", c->in, path);
			continue;
		}
		if (r != 0)
			fail_msg("'%s' rejected: %s", c->in, err ? err : "?");
		if (strcmp(path, c->path) != 0 || strcmp(query, c->query) != 0)
			fail_msg("'%s' -> '%s' ? '%s', want '%s' ? '%s'", c->in, path, query,
				 c->path, c->query);
		assert_null(err);
	}
}

/* Canonical input is left byte-identical. */
static void test_idempotent(void **state)
{
	static char p1[CANON_MAX_PATH_BYTES + 1], q1[CANON_MAX_QUERY_BYTES + 1];
	static char p2[CANON_MAX_PATH_BYTES + 1], q2[CANON_MAX_QUERY_BYTES + 1];
	char t[CANON_MAX_PATH_BYTES + CANON_MAX_QUERY_BYTES + 2];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct canon_case *c = &cases[i];

		if (!c->path)
			continue;
		assert_int_equal(canon(c->in, c->allow_slash, p1, q1, NULL), 0);
		assert_true(canon_format_target(p1, q1, t, sizeof(t)) > 0);
		assert_int_equal(canon(t, c->allow_slash, p2, q2, NULL), 0);
		assert_string_equal(p1, p2);
		assert_string_equal(q1, q2);
	}
}

/* "..%2f" must never let a request escape a rule path. */
static void test_dotdot_slash_cannot_escape_rule(void **state)
{
	static char path[CANON_MAX_PATH_BYTES + 1], query[CANON_MAX_QUERY_BYTES + 1];
	const char *attacks[] = {
		"/public/..%2fadmin/x", "/public/%2e%2e/admin/x", "/public/..;/admin/x",
		"/public/%2e%2e%2fadmin", "/public/.%2e/admin", "/public//../admin",
	};

	for (size_t i = 0; i < sizeof(attacks) / sizeof(attacks[0]); i++) {
		for (int allow = 0; allow < 2; allow++) {
			if (canon(attacks[i], allow, path, query, NULL) != 0)
				continue; /* rejected outright: fine */
			/* Accepted only after resolution: the rule must see the real target. */
			if (policy_path_glob_match("/public/**", path))
				fail_msg("'%s' (slash=%d) -> '%s' stays under /public", attacks[i],
					 allow, path);
		}
	}
}

static void test_limits(void **state)
{
	static char in[CANON_MAX_PATH_BYTES + 16], path[CANON_MAX_PATH_BYTES + 1];
	static char query[CANON_MAX_QUERY_BYTES + 1];
	const char *err = NULL;

	memset(in, 'a', sizeof(in) - 1);
	in[0] = '/';
	in[CANON_MAX_PATH_BYTES] = '\0';
	assert_int_equal(canon(in, false, path, query, &err), 0);
	in[CANON_MAX_PATH_BYTES] = 'a';
	in[CANON_MAX_PATH_BYTES + 1] = '\0';
	assert_int_equal(canon(in, false, path, query, &err), -1);
	assert_non_null(err);
	/* within the raw limit, but too long once re-encoded */
	memset(in, '{', CANON_MAX_PATH_BYTES);
	in[0] = '/';
	in[CANON_MAX_PATH_BYTES] = '\0';
	assert_int_equal(canon(in, false, path, query, &err), -1);
	/* a small output buffer rejects instead of truncating */
	char small[4];
	assert_int_equal(canon_request_target("/abcd", 5, false, small, sizeof(small), query,
					      sizeof(query), &err), -1);
	assert_int_equal(canon_request_target("/ab", 3, false, small, sizeof(small), query,
					      sizeof(query), &err), 0);
	assert_string_equal(small, "/ab");
	/* not NUL-terminated input: only len bytes are read */
	assert_int_equal(canon_request_target("/abXYZ", 3, false, path, sizeof(path), query,
					      sizeof(query), &err), 0);
	assert_string_equal(path, "/ab");
	/* embedded NUL inside len */
	assert_int_equal(canon_request_target("/a\0b", 4, false, path, sizeof(path), query,
					      sizeof(query), &err), -1);
}

static void test_format(void **state)
{
	char buf[16];

	assert_int_equal(canon_format_target("/a", "", buf, sizeof(buf)), 2);
	assert_string_equal(buf, "/a");
	assert_int_equal(canon_format_target("/a", "x=1", buf, sizeof(buf)), 6);
	assert_string_equal(buf, "/a?x=1");
	assert_int_equal(canon_format_target("/a", NULL, buf, sizeof(buf)), 2);
	assert_int_equal(canon_format_target("/abcdefgh", "0123456", buf, sizeof(buf)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_idempotent),
		cmocka_unit_test(test_dotdot_slash_cannot_escape_rule),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_format),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
