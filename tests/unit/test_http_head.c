/* test_http_head.c - strict request-head parser (proxy/http_head.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/http_head.h"

static enum http_head_result parse(const char *s, struct http_head *h)
{
	return http_head_parse(s, strlen(s), h, NULL);
}

static enum http_head_result parse_n(const char *s, size_t n)
{
	struct http_head *h = malloc(sizeof(*h));
	assert_non_null(h);
	enum http_head_result r = http_head_parse(s, n, h, NULL);
	free(h);
	return r;
}

static void expect_bad(const char *s)
{
	struct http_head h;
	const char *why = NULL;
	enum http_head_result r = http_head_parse(s, strlen(s), &h, &why);
	if (r != HTTP_HEAD_BAD)
		fail_msg("expected BAD for %s (got %d)", s, (int)r);
	assert_non_null(why);
}

static void test_connect_ok(void **state)
{
	struct http_head h;
	const char *s = "CONNECT api.example.com:443 HTTP/1.1\r\nHost: api.example.com:443\r\n"
			"User-Agent:  curl/8  \r\n\r\nEXTRA";
	assert_int_equal(parse(s, &h), HTTP_HEAD_OK);
	assert_int_equal(h.head_len, strlen(s) - 5);
	assert_true(http_slice_eq_nocase(h.method, "CONNECT"));
	assert_true(http_slice_eq_nocase(h.target, "api.example.com:443"));
	assert_int_equal(h.minor_version, 1);
	assert_int_equal(h.n_headers, 2);
	const struct http_header *ua = http_head_find(&h, "user-agent");
	assert_non_null(ua);
	assert_int_equal(ua->value.len, 6); /* OWS trimmed both sides */
	assert_memory_equal(ua->value.p, "curl/8", 6);
	assert_false(h.has_content_length);
	assert_false(h.chunked);
}

static void test_get_http10_and_empty_value(void **state)
{
	struct http_head h;
	assert_int_equal(parse("GET http://h/ HTTP/1.0\r\nX-Empty:\r\nX-Obs: caf\xc3\xa9\r\n\r\n", &h),
			 HTTP_HEAD_OK);
	assert_int_equal(h.minor_version, 0);
	assert_int_equal(http_head_find(&h, "x-empty")->value.len, 0);
	assert_null(http_head_find(&h, "missing"));
}

static void test_incomplete(void **state)
{
	struct http_head h;
	assert_int_equal(parse("GET http://h/ HTTP/1.1\r\nHost: h\r\n", &h), HTTP_HEAD_INCOMPLETE);
	assert_int_equal(parse("GET http://h/ HTTP/1.1\r\nHost: h\r\n\r", &h), HTTP_HEAD_INCOMPLETE);
	assert_int_equal(parse("", &h), HTTP_HEAD_INCOMPLETE);
	assert_int_equal(parse("G", &h), HTTP_HEAD_INCOMPLETE);
}

static void test_request_line_strict(void **state)
{
	expect_bad("GET http://h/ HTTP/1.1 extra\r\n\r\n");
	expect_bad("CONNECT h:443 HTTP/1.1 extra\r\n\r\n");
	expect_bad("GET  http://h/ HTTP/1.1\r\n\r\n");
	expect_bad("GET http://h/  HTTP/1.1\r\n\r\n");
	expect_bad("GET http://h/ HTTP/2.0\r\n\r\n");
	expect_bad("GET http://h/ http/1.1\r\n\r\n");
	expect_bad("GET http://h/ HTTP/1.10\r\n\r\n");
	expect_bad("GET http://h/\r\n\r\n");
	expect_bad("GET\r\n\r\n");
	expect_bad("G(T http://h/ HTTP/1.1\r\n\r\n");
	expect_bad("GET http://h/\x01 HTTP/1.1\r\n\r\n");
	expect_bad("GET http://h/\x7f HTTP/1.1\r\n\r\n");
	expect_bad("GET\thttp://h/ HTTP/1.1\r\n\r\n");
	expect_bad("\r\nGET http://h/ HTTP/1.1\r\n\r\n");
	expect_bad("\r\n\r\n");
	expect_bad(" GET http://h/ HTTP/1.1\r\n\r\n");
}

static void test_line_endings(void **state)
{
	expect_bad("GET http://h/ HTTP/1.1\nHost: h\n\n");
	expect_bad("GET http://h/ HTTP/1.1\r\nHost: h\n\r\n");
	expect_bad("GET http://h/ HTTP/1.1\r\nHost: h\rX\r\n\r\n");
	/* A bare LF is rejected as soon as it is seen, even before the end. */
	expect_bad("GET http://h/ HTTP/1.1\n");
	/* Body bytes after the head are not examined. */
	struct http_head h;
	assert_int_equal(parse("GET http://h/ HTTP/1.1\r\nContent-Length: 3\r\n\r\na\nb", &h),
			 HTTP_HEAD_OK);
}

static void test_header_fields(void **state)
{
	expect_bad("GET http://h/ HTTP/1.1\r\nHost : h\r\n\r\n");
	expect_bad("GET http://h/ HTTP/1.1\r\nHost\t: h\r\n\r\n");
	expect_bad("GET http://h/ HTTP/1.1\r\nX-A: 1\r\n folded\r\n\r\n");
	expect_bad("GET http://h/ HTTP/1.1\r\nX-A: 1\r\n\tfolded\r\n\r\n");
	expect_bad("GET http://h/ HTTP/1.1\r\nBad Name: 1\r\n\r\n");
	expect_bad("GET http://h/ HTTP/1.1\r\n: novalue\r\n\r\n");
	expect_bad("GET http://h/ HTTP/1.1\r\nNoColon\r\n\r\n");
	expect_bad("GET http://h/ HTTP/1.1\r\nX(y): 1\r\n\r\n");
	expect_bad("GET http://h/ HTTP/1.1\r\nX: a\x7f\r\n\r\n");
	expect_bad("GET http://h/ HTTP/1.1\r\nX: a\x1b[0m\r\n\r\n");
	expect_bad("GET http://h/ HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n");
	expect_bad("GET http://h/ HTTP/1.1\r\nConnection: close, Host\r\n\r\n");
	expect_bad("GET http://h/ HTTP/1.1\r\nConnection: content-length\r\n\r\n");
	expect_bad("GET http://h/ HTTP/1.1\r\nConnection: Transfer-Encoding\r\n\r\n");
}

static void test_nul_in_value(void **state)
{
	static const char s[] = "GET http://h/ HTTP/1.1\r\nX: a\0b\r\n\r\n";
	assert_int_equal(parse_n(s, sizeof(s) - 1), HTTP_HEAD_BAD);
	static const char s2[] = "GET http://h/ HTTP/1.1\r\nX\0: ab\r\n\r\n";
	assert_int_equal(parse_n(s2, sizeof(s2) - 1), HTTP_HEAD_BAD);
}

static void test_framing(void **state)
{
	struct http_head h;
	expect_bad("POST http://h/ HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n");
	expect_bad("POST http://h/ HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n");
	expect_bad("POST http://h/ HTTP/1.1\r\nContent-Length: -3\r\n\r\n");
	expect_bad("POST http://h/ HTTP/1.1\r\nContent-Length: 3, 3\r\n\r\n");
	expect_bad("POST http://h/ HTTP/1.1\r\nContent-Length: +3\r\n\r\n");
	expect_bad("POST http://h/ HTTP/1.1\r\nContent-Length:\r\n\r\n");
	expect_bad("POST http://h/ HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n");
	expect_bad("POST http://h/ HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n");
	expect_bad("POST http://h/ HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n");
	expect_bad("POST http://h/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
		   "Transfer-Encoding: chunked\r\n\r\n");
	expect_bad("POST http://h/ HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n");

	assert_int_equal(parse("POST http://h/ HTTP/1.1\r\nContent-Length: 3\r\ncontent-length: 3\r\n\r\n",
			       &h), HTTP_HEAD_OK);
	assert_true(h.has_content_length);
	assert_int_equal(h.content_length, 3);
	assert_int_equal(parse("POST http://h/ HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n", &h),
			 HTTP_HEAD_OK);
	assert_true(h.chunked);
	assert_int_equal(parse("POST http://h/ HTTP/1.1\r\nContent-Length: 0\r\n\r\n", &h),
			 HTTP_HEAD_OK);
	assert_true(h.has_content_length);
	assert_int_equal(h.content_length, 0);
}

static char *many_headers(size_t n)
{
	size_t cap = 64 + n * 16;
	char *s = malloc(cap);
	assert_non_null(s);
	size_t off = (size_t)snprintf(s, cap, "GET http://h/ HTTP/1.1\r\n");
	for (size_t i = 0; i < n; i++)
		off += (size_t)snprintf(s + off, cap - off, "X-%zu: v\r\n", i);
	snprintf(s + off, cap - off, "\r\n");
	return s;
}

static void test_header_cap(void **state)
{
	char *ok = many_headers(HTTP_HEAD_MAX_HEADERS);
	char *bad = many_headers(HTTP_HEAD_MAX_HEADERS + 1);
	assert_int_equal(parse_n(ok, strlen(ok)), HTTP_HEAD_OK);
	assert_int_equal(parse_n(bad, strlen(bad)), HTTP_HEAD_TOO_MANY);
	free(ok);
	free(bad);
}

static void test_list_token(void **state)
{
	const char *v = "keep-alive ,  X-Foo,close";
	struct http_slice s = { v, strlen(v) };
	assert_true(http_list_has_token(s, "x-foo"));
	assert_true(http_list_has_token(s, "close"));
	assert_true(http_list_has_token(s, "keep-alive"));
	assert_false(http_list_has_token(s, "x-fo"));
	struct http_slice e = { "", 0 };
	assert_false(http_list_has_token(e, "close"));
	/* elements in order, OWS trimmed, empty ones skipped */
	const char *l = " a ,, b\t,";
	struct http_slice rest = { l, strlen(l) }, el;
	assert_true(http_list_next(&rest, &el));
	assert_int_equal(el.len, 1);
	assert_memory_equal(el.p, "a", 1);
	assert_true(http_list_next(&rest, &el));
	assert_int_equal(el.len, 1);
	assert_memory_equal(el.p, "b", 1);
	assert_false(http_list_next(&rest, &el));
}

/* A repeated field is one list: every line counts. */
static void test_head_token_on_any_line(void **state)
{
	struct http_head *h = malloc(sizeof(*h));
	assert_non_null(h);
	const char *req = "GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\n"
			  "connection: Upgrade, Close\r\n\r\n";
	assert_int_equal(http_head_parse(req, strlen(req), h, NULL), HTTP_HEAD_OK);
	assert_true(http_head_has_token(h, "connection", "keep-alive"));
	assert_true(http_head_has_token(h, "connection", "upgrade"));
	assert_true(http_head_has_token(h, "Connection", "close"));
	assert_false(http_head_has_token(h, "connection", "host"));
	assert_false(http_head_has_token(h, "upgrade", "upgrade"));
	free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_connect_ok),
		cmocka_unit_test(test_get_http10_and_empty_value),
		cmocka_unit_test(test_incomplete),
		cmocka_unit_test(test_request_line_strict),
		cmocka_unit_test(test_line_endings),
		cmocka_unit_test(test_header_fields),
		cmocka_unit_test(test_nul_in_value),
		cmocka_unit_test(test_framing),
		cmocka_unit_test(test_header_cap),
		cmocka_unit_test(test_list_token),
		cmocka_unit_test(test_head_token_on_any_line),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
