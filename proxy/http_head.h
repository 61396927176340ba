/* http_head.h - strict HTTP/1.x request-head parser (private to proxy/).
 *
 * The parser never allocates: the parsed view points into the caller's
 * buffer, and headers go into a fixed array. It accepts only what RFC 9112
 * allows and rejects everything ambiguous (bare LF, bare CR, obs-fold,
 * whitespace before ':', control bytes, conflicting framing).
 */
#ifndef OPENSHELL_PROXY_HTTP_HEAD_H
#define OPENSHELL_PROXY_HTTP_HEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/proxy.h"

/* more header lines -> HTTP_HEAD_TOO_MANY (431) */
#define HTTP_HEAD_MAX_HEADERS PROXY_MAX_HEADER_FIELDS

struct http_slice {
	const char *p;
	size_t len;
};

struct http_header {
	struct http_slice name;
	struct http_slice value;    /* leading/trailing OWS removed */
};

struct http_head {
	struct http_slice method;
	struct http_slice target;
	int minor_version;          /* 0 or 1 (HTTP/1.0, HTTP/1.1) */
	struct http_header headers[HTTP_HEAD_MAX_HEADERS];
	size_t n_headers;
	size_t head_len;            /* bytes up to and including the empty line */
	bool has_content_length;
	uint64_t content_length;
	bool chunked;               /* Transfer-Encoding: chunked */
};

enum http_head_result {
	HTTP_HEAD_OK = 0,
	HTTP_HEAD_INCOMPLETE,       /* no empty line yet; read more */
	HTTP_HEAD_BAD,              /* malformed -> 400 */
	HTTP_HEAD_TOO_MANY,         /* more than HTTP_HEAD_MAX_HEADERS -> 431 */
};

/* Parse the request head at the start of buf[0..len). On HTTP_HEAD_BAD,
 * *why (if non-NULL) names the problem (static string). Bytes after
 * head_len are not examined. */
/* End of a CRLF-terminated head (offset just past the empty line), 0 while
 * incomplete, -1 on a bare CR or LF. Shared by the request and response parsers. */
long http_find_head_end(const char *buf, size_t len);

enum http_head_result http_head_parse(const char *buf, size_t len, struct http_head *out,
				      const char **why);

/* First header whose name equals `name` (ASCII case-insensitive), or NULL. */
const struct http_header *http_head_find(const struct http_head *h, const char *name);

bool http_slice_eq_nocase(struct http_slice s, const char *lit);

/* True if the comma-separated token list `list` contains `token`
 * (case-insensitive, OWS around elements ignored). */
bool http_list_has_token(struct http_slice list, const char *token);
bool http_list_has(struct http_slice list, struct http_slice token);

/* The next non-empty element of the comma-separated list *rest (OWS
 * trimmed); *rest advances past it. False when none is left. */
bool http_list_next(struct http_slice *rest, struct http_slice *el);

/* Does any field named `name` list `token`? A repeated field is one list
 * (RFC 9110 5.3): every line counts, not only the first. */
bool http_head_has_token(const struct http_head *h, const char *name, const char *token);

bool http_is_tchar(unsigned char ch);

#endif
