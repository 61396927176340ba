/* test_proxy_parts.c - request-target parsing, forward rewrite, responses
 * and audit lines (proxy/target.c, forward.c, response.c, audit.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "proxy/audit.h"
#include "proxy/chunked.h"
#include "proxy/forward.h"
#include "proxy/http_head.h"
#include "proxy/response.h"
#include "proxy/target.h"

static struct proxy_target connect_ok(const char *s)
{
	struct proxy_target t;
	if (target_parse_connect(s, strlen(s), &t) != TARGET_OK)
		fail_msg("CONNECT target %s rejected", s);
	return t;
}

static void test_connect_targets(void **state)
{
	struct proxy_target t = connect_ok("API.Example.COM:443");
	assert_string_equal(t.host, "api.example.com");
	assert_int_equal(t.port, 443);
	assert_false(t.is_ip);
	t = connect_ok("[2001:DB8::1]:8443");
	assert_string_equal(t.host, "2001:db8::1");
	assert_true(t.is_ip);
	assert_int_equal(t.family, AF_INET6);
	assert_int_equal(t.port, 8443);
	t = connect_ok("10.0.0.1:1");
	assert_true(t.is_ip);
	assert_int_equal(t.family, AF_INET);
	t = connect_ok("a_b-c.example:65535");
	assert_int_equal(t.port, 65535);
	char buf[300];
	t = connect_ok("[::1]:443");
	target_format_hostport(&t, buf, sizeof(buf));
	assert_string_equal(buf, "[::1]:443");
	t = connect_ok("Api.Example.com.:443"); /* fully qualified: the same name */
	assert_string_equal(t.host, "api.example.com");
	t = connect_ok("10.0.0.1.:443");
	assert_true(t.is_ip);
	assert_string_equal(t.host, "10.0.0.1");

	static const char *const bad[] = {
		"example.com", "example.com:", ":443", "example.com:0", "example.com:65536",
		"example.com:44a", "example.com:+44", "example.com:-1", "::1:443", "[::1]",
		"[::1]443", "[nothex]:443", "[1.2.3.4]:443", "exa mple.com:443", "ex%41.com:443",
		"a@b:443", "a/b:443", "example.com:443:1", "[::1]:443]", "example.com:0443000",
		".:443", "example.com..:443", ".example.com:443", "a..b:443", "[::1.]:443",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct proxy_target x;
		if (target_parse_connect(bad[i], strlen(bad[i]), &x) != TARGET_BAD)
			fail_msg("CONNECT target %s accepted", bad[i]);
	}
	/* 253-byte name accepted, 254 rejected */
	char longname[300];
	memset(longname, 'a', 253);
	strcpy(longname + 253, ":1");
	assert_int_equal(target_parse_connect(longname, strlen(longname), &t), TARGET_OK);
	memset(longname, 'a', 254);
	strcpy(longname + 254, ":1");
	assert_int_equal(target_parse_connect(longname, strlen(longname), &t), TARGET_BAD);
	memset(longname, 'a', 253); /* 253 bytes and the root label's dot */
	strcpy(longname + 253, ".:1");
	assert_int_equal(target_parse_connect(longname, strlen(longname), &t), TARGET_OK);
	assert_int_equal(strlen(t.host), 253);
}

static enum target_result abs_parse(const char *s, struct proxy_target *t)
{
	return target_parse_absolute(s, strlen(s), t);
}

static void test_absolute_targets(void **state)
{
	struct proxy_target t;
	assert_int_equal(abs_parse("http://Example.com/a/b?c=d", &t), TARGET_OK);
	assert_string_equal(t.host, "example.com");
	assert_int_equal(t.port, 80);
	assert_int_equal(t.path_len, 8);
	assert_memory_equal(t.path, "/a/b?c=d", 8);
	assert_int_equal(abs_parse("HTTP://h:8080", &t), TARGET_OK);
	assert_int_equal(t.port, 8080);
	assert_int_equal(t.path_len, 0);
	assert_int_equal(abs_parse("http://h?x=1", &t), TARGET_OK);
	assert_memory_equal(t.path, "?x=1", 4);
	assert_int_equal(abs_parse("http://[::1]:81/", &t), TARGET_OK);
	assert_string_equal(t.host, "::1");
	char buf[300];
	target_format_host_header(&t, buf, sizeof(buf));
	assert_string_equal(buf, "[::1]:81");
	assert_int_equal(abs_parse("http://h:80/", &t), TARGET_OK);
	target_format_host_header(&t, buf, sizeof(buf));
	assert_string_equal(buf, "h");

	assert_int_equal(abs_parse("https://h/", &t), TARGET_HTTPS);
	assert_int_equal(abs_parse("HTTPS://h/", &t), TARGET_HTTPS);
	assert_int_equal(abs_parse("ftp://h/", &t), TARGET_BAD_SCHEME);
	assert_int_equal(abs_parse("ws://h/", &t), TARGET_BAD_SCHEME);
	static const char *const bad[] = {
		"/x", "*", "h:80", "http:/h/", "http://", "http:///x", "http://h/#frag",
		"http://u:p@h/", "http://h:/", "http://h:0/", "http://h:99999/", "http://[::1/",
		"http://h h/", "1http://h/", "://h/",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (abs_parse(bad[i], &t) != TARGET_BAD)
			fail_msg("absolute target %s accepted", bad[i]);
}

static char *rewrite(const char *req)
{
	struct http_head *h = malloc(sizeof(*h));
	assert_non_null(h);
	assert_int_equal(http_head_parse(req, strlen(req), h, NULL), HTTP_HEAD_OK);
	struct proxy_target t;
	assert_int_equal(target_parse_absolute(h->target.p, h->target.len, &t), TARGET_OK);
	size_t len = 0;
	char *out = forward_build_head(h, &t, &len);
	assert_non_null(out);
	char *s = strndup(out, len);
	assert_non_null(s);
	free(out);
	free(h);
	return s;
}

static void test_forward_rewrite(void **state)
{
	char *s = rewrite("GET http://Api.Example.com:8080/v1?x=1 HTTP/1.1\r\n"
			  "Host: evil.example\r\n"
			  "Proxy-Connection: keep-alive\r\n"
			  "Proxy-Authorization: Basic x\r\n"
			  "Connection: Keep-Alive, X-Drop\r\n"
			  "Keep-Alive: timeout=5\r\n"
			  "X-Drop: 1\r\n"
			  "TE: trailers\r\n"
			  "Upgrade: h2c\r\n"
			  "Accept:*/*\r\n"
			  "\r\n");
	assert_string_equal(s, "GET /v1?x=1 HTTP/1.1\r\n"
			       "Accept: */*\r\n"
			       "Host: api.example.com:8080\r\n"
			       "Connection: close\r\n"
			       "Via: 1.1 openshell-sandbox\r\n"
			       "\r\n");
	free(s);
	s = rewrite("GET http://h?q HTTP/1.0\r\nVia: 1.0 corp\r\n\r\n");
	assert_string_equal(s, "GET /?q HTTP/1.0\r\nVia: 1.0 corp\r\nHost: h\r\n"
			       "Connection: close\r\n\r\n");
	free(s);
	s = rewrite("GET http://h HTTP/1.1\r\n\r\n");
	assert_string_equal(s, "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n"
			       "Via: 1.1 openshell-sandbox\r\n\r\n");
	free(s);
}

static void test_forward_rewrite_worst_case_growth(void **state)
{
	/* 100 headers without a space after ':' each grow by one byte. */
	char req[8192];
	size_t off = (size_t)snprintf(req, sizeof(req), "GET http://h HTTP/1.1\r\n");
	for (int i = 0; i < (int)HTTP_HEAD_MAX_HEADERS; i++)
		off += (size_t)snprintf(req + off, sizeof(req) - off, "A%d:b\r\n", i);
	snprintf(req + off, sizeof(req) - off, "\r\n");
	char *s = rewrite(req);
	assert_non_null(strstr(s, "A99: b\r\nHost: h\r\n"));
	free(s);
}

static struct json_object *body_of(const char *resp)
{
	const char *b = strstr(resp, "\r\n\r\n");
	assert_non_null(b);
	struct json_object *o = json_tokener_parse(b + 4);
	assert_non_null(o);
	return o;
}

static const char *jstr(struct json_object *o, const char *k)
{
	struct json_object *v;
	if (!json_object_object_get_ex(o, k, &v))
		return NULL;
	return json_object_get_string(v);
}

static void test_policy_denied_response(void **state)
{
	struct denial_info d = {
		.detail = "CONNECT [2001:db8::1]:443 not permitted by policy",
		.reason = "endpoint 2001:db8::1:443 is not allowed by any policy",
		.host = "2001:db8::1",
		.port = 443,
		.rule_name = NULL,
	};
	size_t len = 0;
	char *r = response_policy_denied(&d, &len);
	assert_non_null(r);
	assert_int_equal(strlen(r), len);
	assert_true(strncmp(r, "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\n", 56) == 0);
	assert_non_null(strstr(r, "\r\nConnection: close\r\n"));
	struct json_object *o = body_of(r);
	assert_string_equal(jstr(o, "error"), "policy_denied");
	assert_string_equal(jstr(o, "host"), "2001:db8::1");
	assert_string_equal(jstr(o, "suggested_rule"), "- host: \"2001:db8::1\"\n  port: 443\n");
	assert_null(jstr(o, "policy"));
	json_object_put(o);
	free(r);

	d.rule_name = "github";
	d.reason = "";
	d.host = "api.github.com";
	r = response_policy_denied(&d, &len);
	o = body_of(r);
	assert_string_equal(jstr(o, "policy"), "github");
	assert_null(jstr(o, "reason")); /* omitted when empty */
	assert_string_equal(jstr(o, "suggested_rule"), "- host: api.github.com\n  port: 443\n");
	json_object_put(o);
	free(r);
}

static void test_json_error_response(void **state)
{
	size_t len = 0;
	char *r = response_json_error(502, "upstream_unreachable", "connection to \"h\":1 failed", &len);
	assert_non_null(r);
	assert_true(strncmp(r, "HTTP/1.1 502 Bad Gateway\r\n", 26) == 0);
	const char *b = strstr(r, "\r\n\r\n") + 4;
	const char *cl = strstr(r, "Content-Length: ");
	assert_int_equal(strtoul(cl + 16, NULL, 10), strlen(b));
	struct json_object *o = body_of(r);
	assert_string_equal(jstr(o, "detail"), "connection to \"h\":1 failed");
	json_object_put(o);
	free(r);
}

static void test_audit_line(void **state)
{
	struct audit_event e = {
		.allow = false,
		.method = "CONNECT",
		.host = "evil.example",
		.port = 443,
		.rule_type = "opa",
		.reason = "endpoint evil.example:443 is not allowed by any policy",
		.message = "CONNECT denied evil.example:443",
		.src_ip = "10.200.0.2",
		.src_port = 40000,
		.time_ms = 1700000000123,
	};
	char *line = audit_event_json(&e);
	assert_non_null(line);
	assert_null(strchr(line, '\n'));
	struct json_object *o = json_tokener_parse(line);
	assert_non_null(o);
	struct json_object *v;
	assert_true(json_object_object_get_ex(o, "class_uid", &v));
	assert_int_equal(json_object_get_int(v), 4001);
	assert_string_equal(jstr(o, "activity_name"), "Refuse");
	assert_string_equal(jstr(o, "action"), "deny");
	assert_string_equal(jstr(o, "disposition"), "Blocked");
	assert_string_equal(jstr(o, "path"), "explicit");
	assert_string_equal(jstr(o, "method"), "CONNECT");
	assert_true(json_object_object_get_ex(o, "time", &v));
	assert_int_equal(json_object_get_int64(v), 1700000000123);
	struct json_object *dst, *rule, *proc, *src;
	assert_true(json_object_object_get_ex(o, "dst_endpoint", &dst));
	assert_string_equal(jstr(dst, "hostname"), "evil.example");
	assert_true(json_object_object_get_ex(dst, "ip", &v));
	assert_null(v);
	assert_true(json_object_object_get_ex(o, "firewall_rule", &rule));
	assert_true(json_object_object_get_ex(rule, "name", &v));
	assert_null(v);
	assert_true(json_object_object_get_ex(o, "process", &proc));
	assert_true(json_object_object_get_ex(proc, "pid", &v));
	assert_null(v);
	assert_true(json_object_object_get_ex(o, "src_endpoint", &src));
	assert_string_equal(jstr(src, "ip"), "10.200.0.2");
	json_object_put(o);
	free(line);

	e.allow = true;
	e.rule_name = "github";
	e.dst_ip = "140.82.112.3";
	e.reason = NULL;
	line = audit_event_json(&e);
	o = json_tokener_parse(line);
	assert_string_equal(jstr(o, "activity_name"), "Open");
	assert_string_equal(jstr(o, "action"), "allow");
	assert_string_equal(jstr(o, "disposition"), "Allowed");
	assert_true(json_object_object_get_ex(o, "firewall_rule", &rule));
	assert_string_equal(jstr(rule, "name"), "github");
	json_object_put(o);
	free(line);
	/* numbers are written by hand: both ends of the range */
	int64_t extremes[] = { INT64_MIN, -1, 0, INT64_MAX };
	for (size_t i = 0; i < sizeof(extremes) / sizeof(extremes[0]); i++) {
		e.time_ms = extremes[i];
		line = audit_event_json(&e);
		assert_non_null(line);
		o = json_tokener_parse(line);
		assert_non_null(o);
		assert_true(json_object_object_get_ex(o, "time", &v));
		assert_true(json_object_get_int64(v) == extremes[i]);
		json_object_put(o);
		free(line);
	}
}

/* Feed s in pieces of `step` bytes; returns total body bytes or -1. */
static ssize_t chunked_run(const char *s, size_t len, size_t step, bool *done)
{
	struct chunked_parser p;
	chunked_init(&p);
	size_t total = 0;
	for (size_t off = 0; off < len; off += step) {
		size_t n = len - off < step ? len - off : step;
		ssize_t r = chunked_feed(&p, s + off, n);
		if (r < 0) {
			assert_non_null(p.error);
			return -1;
		}
		total += (size_t)r;
		if (chunked_done(&p))
			break;
	}
	*done = chunked_done(&p);
	return (ssize_t)total;
}

static void test_chunked_valid(void **state)
{
	static const struct {
		const char *body;   /* the chunked body */
		const char *after;  /* bytes after it (never part of the body) */
	} cases[] = {
		{ "0\r\n\r\n", "" },
		{ "4\r\nbody\r\n0\r\n\r\n", "GET http://evil/ HTTP/1.1\r\n\r\n" },
		{ "A\r\n0123456789\r\n000\r\n\r\n", "x" },
		{ "4;ext=1;q=\"a b\"\r\nbody\r\n0 ;last\r\n\r\n", "" },
		{ "1\r\n\n\r\n0\r\nTrailer-A: x\r\nB:\r\n\r\n", "POST" },
		{ "ffff\r\n", NULL }, /* incomplete: handled below */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (cases[i].after == NULL)
			continue;
		char buf[512];
		size_t blen = strlen(cases[i].body);
		size_t len = (size_t)snprintf(buf, sizeof(buf), "%s%s", cases[i].body, cases[i].after);
		for (size_t step = 1; step <= len; step++) {
			bool done = false;
			ssize_t r = chunked_run(buf, len, step, &done);
			if (r != (ssize_t)blen || !done)
				fail_msg("case %zu step %zu: got %zd done=%d", i, step, r, done);
		}
	}
	bool done = true;
	assert_int_equal(chunked_run("ffff\r\nabc", 10, 3, &done), 10);
	assert_false(done);
}

static void test_chunked_invalid(void **state)
{
	static const char *const bad[] = {
		"\r\n", "x\r\n", "-1\r\n", "+1\r\n", "4\nbody\r\n", "4\r\nbodyX\r\n",
		"4\r\nbody\n0\r\n\r\n", "4\rbody", "1000000000000000\r\n", "4 x\r\n",
		"4;a\x01\r\n", "0\r\nBad Name: x\r\n\r\n", "0\r\nX: a\x7f\r\n\r\n",
		"0\r\nX: a\n\r\n", "0\r\n\n", "0\r\nNoColon\r\n\r\n", "0x4\r\n",
		" 4\r\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		bool done;
		if (chunked_run(bad[i], strlen(bad[i]), 1, &done) != -1)
			fail_msg("chunked body %zu accepted", i);
	}
	/* size digits: 15 accepted, 16 rejected */
	bool done;
	assert_true(chunked_run("000000000000001\r\n", 17, 17, &done) >= 0);
	assert_int_equal(chunked_run("0000000000000001\r\n", 18, 18, &done), -1);
	/* trailer section cap */
	size_t n = CHUNKED_MAX_TRAILER_BYTES + 64;
	char *big = malloc(n + 8);
	assert_non_null(big);
	memcpy(big, "0\r\nX: ", 7);
	memset(big + 7, 'a', n - 7);
	assert_int_equal(chunked_run(big, n, 4096, &done), -1);
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_connect_targets),
		cmocka_unit_test(test_absolute_targets),
		cmocka_unit_test(test_forward_rewrite),
		cmocka_unit_test(test_forward_rewrite_worst_case_growth),
		cmocka_unit_test(test_policy_denied_response),
		cmocka_unit_test(test_json_error_response),
		cmocka_unit_test(test_audit_line),
		cmocka_unit_test(test_chunked_valid),
		cmocka_unit_test(test_chunked_invalid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
