/* fuzz_http_head.c - libFuzzer target for the proxy's request-head parser,
 * the request-target parsers and the forward rewrite built on them. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/chunked.h"
#include "proxy/forward.h"
#include "proxy/http_head.h"
#include "proxy/target.h"

static void check_slice(struct http_slice s, const char *buf, size_t len)
{
	if (s.len > 0 && (s.p < buf || s.p + s.len > buf + len))
		abort();
}

/* Feed the body in two pieces split at a data-dependent point; the body
 * length found must not depend on the split. */
static void fuzz_chunked(const char *body, size_t len)
{
	struct chunked_parser a, b;
	chunked_init(&a);
	chunked_init(&b);
	ssize_t whole = chunked_feed(&a, body, len);
	size_t split = len ? (unsigned char)body[0] % (len + 1) : 0;
	ssize_t r1 = chunked_feed(&b, body, split);
	ssize_t r2 = r1 < 0 ? -1 : chunked_feed(&b, body + split, len - split);
	if (whole > (ssize_t)len)
		abort();
	if ((whole < 0) != (r2 < 0))
		abort();
	if (whole >= 0 && (r1 + r2 != whole || chunked_done(&a) != chunked_done(&b)))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Copy so that reads past the end are caught by ASan. */
	char *buf = malloc(size ? size : 1);
	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	struct http_head *h = malloc(sizeof(*h));
	if (h == NULL) {
		free(buf);
		return 0;
	}
	const char *why = NULL;
	enum http_head_result r = http_head_parse(buf, size, h, &why);
	if (r == HTTP_HEAD_BAD && why == NULL)
		abort();
	if (r == HTTP_HEAD_OK) {
		if (h->head_len > size || h->n_headers > HTTP_HEAD_MAX_HEADERS)
			abort();
		if (h->chunked && h->has_content_length)
			abort();
		check_slice(h->method, buf, h->head_len);
		check_slice(h->target, buf, h->head_len);
		for (size_t i = 0; i < h->n_headers; i++) {
			check_slice(h->headers[i].name, buf, h->head_len);
			check_slice(h->headers[i].value, buf, h->head_len);
		}
		if (h->chunked)
			fuzz_chunked(buf + h->head_len, size - h->head_len);
		struct proxy_target t;
		(void)target_parse_connect(h->target.p, h->target.len, &t);
		if (target_parse_absolute(h->target.p, h->target.len, &t) == TARGET_OK) {
			size_t len = 0;
			char *out = forward_build_head(h, &t, &len);
			if (out != NULL) {
				/* The rewritten head must itself parse. */
				struct http_head *h2 = malloc(sizeof(*h2));
				enum http_head_result r2 = h2 ? http_head_parse(out, len, h2, NULL) : HTTP_HEAD_OK;
				/* It may only grow past the header cap (Host, Connection, Via added). */
				if (r2 != HTTP_HEAD_OK && r2 != HTTP_HEAD_TOO_MANY)
					abort();
				free(h2);
			}
			free(out);
		}
	}
	free(h);
	free(buf);
	return 0;
}
