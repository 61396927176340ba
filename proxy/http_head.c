/* http_head.c - strict HTTP/1.x request-head parser. See http_head.h. */
#include "proxy/http_head.h"

#include <string.h>

bool http_is_tchar(unsigned char ch)
{
	if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))
		return true;
	return ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

static bool is_ows(unsigned char ch)
{
	return ch == ' ' || ch == '\t';
}

/* field-value bytes: VCHAR, obs-text, SP, HTAB. Everything else (NUL, other
 * controls, DEL) is rejected. */
static bool is_value_byte(unsigned char ch)
{
	return ch == '\t' || ch == ' ' || (ch >= 0x21 && ch != 0x7f);
}

static unsigned char ascii_lower(unsigned char ch)
{
	return ch >= 'A' && ch <= 'Z' ? (unsigned char)(ch - 'A' + 'a') : ch;
}

/* ASCII case-insensitive, independent of the process locale. */
static bool slices_eq_nocase(struct http_slice a, struct http_slice b)
{
	if (a.len != b.len)
		return false;
	for (size_t i = 0; i < a.len; i++)
		if (ascii_lower((unsigned char)a.p[i]) != ascii_lower((unsigned char)b.p[i]))
			return false;
	return true;
}

bool http_slice_eq_nocase(struct http_slice s, const char *lit)
{
	return slices_eq_nocase(s, (struct http_slice){ lit, strlen(lit) });
}

const struct http_header *http_head_find(const struct http_head *h, const char *name)
{
	for (size_t i = 0; i < h->n_headers; i++)
		if (http_slice_eq_nocase(h->headers[i].name, name))
			return &h->headers[i];
	return NULL;
}

static struct http_slice trim_ows(const char *p, size_t len)
{
	while (len > 0 && is_ows((unsigned char)p[0])) {
		p++;
		len--;
	}
	while (len > 0 && is_ows((unsigned char)p[len - 1]))
		len--;
	return (struct http_slice){ p, len };
}

bool http_list_next(struct http_slice *rest, struct http_slice *el)
{
	while (rest->len > 0) {
		const char *comma = memchr(rest->p, ',', rest->len);
		size_t n = comma != NULL ? (size_t)(comma - rest->p) : rest->len;
		size_t skip = comma != NULL ? n + 1 : n;
		*el = trim_ows(rest->p, n);
		rest->p += skip;
		rest->len -= skip;
		if (el->len > 0)
			return true;
	}
	return false;
}

bool http_list_has(struct http_slice list, struct http_slice token)
{
	struct http_slice el;
	while (http_list_next(&list, &el))
		if (slices_eq_nocase(el, token))
			return true;
	return false;
}

bool http_list_has_token(struct http_slice list, const char *token)
{
	return http_list_has(list, (struct http_slice){ token, strlen(token) });
}

bool http_head_has_token(const struct http_head *h, const char *name, const char *token)
{
	for (size_t i = 0; i < h->n_headers; i++)
		if (http_slice_eq_nocase(h->headers[i].name, name) &&
		    http_list_has_token(h->headers[i].value, token))
			return true;
	return false;
}

/* Offset just past the first CRLFCRLF; 0 if not present yet; -1 if a bare
 * CR or bare LF occurs before it. */
long http_find_head_end(const char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (buf[i] == '\r') {
			if (i + 1 < len && buf[i + 1] != '\n')
				return -1;
		} else if (buf[i] == '\n') {
			if (i == 0 || buf[i - 1] != '\r')
				return -1;
			if (i >= 3 && buf[i - 2] == '\n')
				return (long)(i + 1);
		}
	}
	return 0;
}

static bool parse_request_line(const char *p, size_t len, struct http_head *h, const char **why)
{
	size_t i = 0;
	while (i < len && http_is_tchar((unsigned char)p[i]))
		i++;
	if (i == 0 || i >= len || p[i] != ' ') {
		*why = "request line: bad method";
		return false;
	}
	h->method = (struct http_slice){ p, i };
	size_t t0 = ++i;
	while (i < len && (unsigned char)p[i] > 0x20 && (unsigned char)p[i] < 0x7f)
		i++;
	if (i == t0 || i >= len || p[i] != ' ') {
		*why = "request line: bad request-target";
		return false;
	}
	h->target = (struct http_slice){ p + t0, i - t0 };
	i++;
	if (len - i != 8 || memcmp(p + i, "HTTP/1.", 7) != 0 ||
	    (p[i + 7] != '0' && p[i + 7] != '1')) {
		*why = "request line: version must be exactly HTTP/1.0 or HTTP/1.1";
		return false;
	}
	h->minor_version = p[i + 7] - '0';
	return true;
}

static bool parse_header_line(const char *p, size_t len, struct http_header *out, const char **why)
{
	if (len > 0 && is_ows((unsigned char)p[0])) {
		*why = "obsolete line folding";
		return false;
	}
	size_t i = 0;
	while (i < len && http_is_tchar((unsigned char)p[i]))
		i++;
	if (i == 0 || i >= len || p[i] != ':') {
		*why = i < len && is_ows((unsigned char)p[i]) ? "whitespace before ':'"
							      : "invalid header field name";
		return false;
	}
	out->name = (struct http_slice){ p, i };
	for (size_t j = i + 1; j < len; j++) {
		if (!is_value_byte((unsigned char)p[j])) {
			*why = "control byte in header value";
			return false;
		}
	}
	out->value = trim_ows(p + i + 1, len - i - 1);
	return true;
}

static bool parse_content_length(struct http_slice v, uint64_t *out)
{
	uint64_t n = 0;
	if (v.len == 0)
		return false;
	for (size_t i = 0; i < v.len; i++) {
		if (v.p[i] < '0' || v.p[i] > '9')
			return false;
		uint64_t d = (uint64_t)(v.p[i] - '0');
		if (n > (UINT64_MAX / 2 - d) / 10) /* keep below 2^63 */
			return false;
		n = n * 10 + d;
	}
	*out = n;
	return true;
}

static bool check_framing(struct http_head *h, const char **why)
{
	size_t n_te = 0, n_host = 0;
	for (size_t i = 0; i < h->n_headers; i++) {
		const struct http_header *hd = &h->headers[i];
		if (http_slice_eq_nocase(hd->name, "content-length")) {
			uint64_t v;
			if (!parse_content_length(hd->value, &v)) {
				*why = "invalid Content-Length";
				return false;
			}
			if (h->has_content_length && v != h->content_length) {
				*why = "differing duplicate Content-Length";
				return false;
			}
			h->has_content_length = true;
			h->content_length = v;
		} else if (http_slice_eq_nocase(hd->name, "transfer-encoding")) {
			n_te++;
			if (!http_slice_eq_nocase(hd->value, "chunked")) {
				*why = "Transfer-Encoding other than chunked";
				return false;
			}
		} else if (http_slice_eq_nocase(hd->name, "host")) {
			n_host++;
		} else if (http_slice_eq_nocase(hd->name, "connection")) {
			if (http_list_has_token(hd->value, "host") ||
			    http_list_has_token(hd->value, "content-length") ||
			    http_list_has_token(hd->value, "transfer-encoding")) {
				*why = "Connection nominates an end-to-end framing header";
				return false;
			}
		}
	}
	if (n_te > 1) {
		*why = "repeated Transfer-Encoding";
		return false;
	}
	if (n_host > 1) {
		*why = "repeated Host";
		return false;
	}
	h->chunked = n_te == 1;
	if (h->chunked && h->has_content_length) {
		*why = "both Content-Length and Transfer-Encoding";
		return false;
	}
	if (h->chunked && h->minor_version == 0) {
		*why = "Transfer-Encoding in an HTTP/1.0 request";
		return false;
	}
	return true;
}

enum http_head_result http_head_parse(const char *buf, size_t len, struct http_head *out,
				      const char **why)
{
	const char *dummy;
	if (why == NULL)
		why = &dummy;
	*why = NULL;
	memset(out, 0, sizeof(*out));

	long end = http_find_head_end(buf, len);
	if (end < 0) {
		*why = "bare CR or LF";
		return HTTP_HEAD_BAD;
	}
	if (end == 0)
		return HTTP_HEAD_INCOMPLETE;
	out->head_len = (size_t)end;

	/* Lines are CRLF-terminated; the last one (empty) ends at end-2. */
	const char *line = buf;
	const char *stop = buf + end - 2;
	bool first = true;
	while (line < stop) {
		const char *cr = memchr(line, '\r', (size_t)(stop - line));
		if (cr == NULL) /* cannot happen: every CR is followed by LF */
			return HTTP_HEAD_BAD;
		size_t llen = (size_t)(cr - line);
		if (first) {
			if (!parse_request_line(line, llen, out, why))
				return HTTP_HEAD_BAD;
			first = false;
		} else {
			if (out->n_headers == HTTP_HEAD_MAX_HEADERS) {
				*why = "too many header fields";
				return HTTP_HEAD_TOO_MANY;
			}
			if (!parse_header_line(line, llen, &out->headers[out->n_headers], why))
				return HTTP_HEAD_BAD;
			out->n_headers++;
		}
		line = cr + 2;
	}
	if (first) {
		*why = "empty request line";
		return HTTP_HEAD_BAD;
	}
	return check_framing(out, why) ? HTTP_HEAD_OK : HTTP_HEAD_BAD;
}
