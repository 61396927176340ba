/* http_relay_parse.c - strict HTTP/1.x response-head parser and the
 * tunnel authority check. Never allocates. */
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "proxy/http_head.h"
#include "proxy/http_relay.h"

static bool is_ows(unsigned char ch)
{
	return ch == ' ' || ch == '\t';
}

static bool is_value_byte(unsigned char ch)
{
	return ch == '\t' || (ch >= 0x20 && ch != 0x7f);
}

static struct http_slice trim(const char *p, size_t len)
{
	while (len > 0 && is_ows((unsigned char)p[0])) {
		p++;
		len--;
	}
	while (len > 0 && is_ows((unsigned char)p[len - 1]))
		len--;
	return (struct http_slice){ p, len };
}

static bool parse_status_line(const char *p, size_t len, struct http_resp_head *h,
			      const char **why)
{
	if (len < 12 || memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') ||
	    p[8] != ' ') {
		*why = "status line: version must be HTTP/1.0 or HTTP/1.1";
		return false;
	}
	h->minor_version = p[7] - '0';
	int status = 0;
	for (int i = 9; i < 12; i++) {
		if (p[i] < '0' || p[i] > '9') {
			*why = "status line: bad status code";
			return false;
		}
		status = status * 10 + (p[i] - '0');
	}
	if (status < 100) {
		*why = "status line: bad status code";
		return false;
	}
	if (len > 12 && p[12] != ' ') {
		*why = "status line: bad status code";
		return false;
	}
	for (size_t i = 13; i < len; i++) {
		if (!is_value_byte((unsigned char)p[i])) {
			*why = "status line: control byte in reason";
			return false;
		}
	}
	h->status = status;
	return true;
}

static bool parse_cl(struct http_slice v, uint64_t *out)
{
	if (v.len == 0 || v.len > 19)
		return false;
	uint64_t n = 0;
	for (size_t i = 0; i < v.len; i++) {
		if (v.p[i] < '0' || v.p[i] > '9')
			return false;
		n = n * 10 + (uint64_t)(v.p[i] - '0');
	}
	*out = n;
	return true;
}

static bool header_line(const char *p, size_t len, struct http_resp_head *h, unsigned *n_te,
			const char **why)
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
							     : "bad header name";
		return false;
	}
	struct http_slice name = { p, i };
	for (size_t k = i + 1; k < len; k++) {
		if (!is_value_byte((unsigned char)p[k])) {
			*why = "control byte in header value";
			return false;
		}
	}
	struct http_slice v = trim(p + i + 1, len - i - 1);
	if (http_slice_eq_nocase(name, "content-length")) {
		uint64_t n = 0;
		if (!parse_cl(v, &n)) {
			*why = "invalid Content-Length";
			return false;
		}
		if (h->has_content_length && h->content_length != n) {
			*why = "differing duplicate Content-Length";
			return false;
		}
		h->has_content_length = true;
		h->content_length = n;
	} else if (http_slice_eq_nocase(name, "transfer-encoding")) {
		if (!http_slice_eq_nocase(v, "chunked")) {
			*why = "Transfer-Encoding other than chunked";
			return false;
		}
		(*n_te)++;
	} else if (http_slice_eq_nocase(name, "connection")) {
		if (http_list_has_token(v, "close"))
			h->conn_close = true;
		if (http_list_has_token(v, "keep-alive"))
			h->conn_keep_alive = true;
	} else if (http_slice_eq_nocase(name, "upgrade")) {
		if (h->n_upgrade++ == 0)
			h->upgrade = v;
	}
	return true;
}

enum http_resp_result http_resp_parse(const char *buf, size_t len, struct http_resp_head *out,
				      const char **why)
{
	const char *dummy = NULL;
	if (why == NULL)
		why = &dummy;
	*why = NULL;
	memset(out, 0, sizeof(*out));
	long end = http_find_head_end(buf, len);
	if (end < 0) {
		*why = "bare CR or LF";
		return HTTP_RESP_BAD;
	}
	if (end == 0)
		return HTTP_RESP_INCOMPLETE;
	out->head_len = (size_t)end;
	const char *p = buf, *stop = buf + end - 2; /* the final CRLF */
	const char *eol = memchr(p, '\r', (size_t)(stop - p));
	if (eol == NULL || !parse_status_line(p, (size_t)(eol - p), out, why))
		return HTTP_RESP_BAD;
	p = eol + 2;
	unsigned n_headers = 0, n_te = 0;
	while (p < stop) {
		eol = memchr(p, '\r', (size_t)(stop - p));
		if (eol == NULL)
			eol = stop;
		if (++n_headers > HR_MAX_RESPONSE_HEADERS) {
			*why = "too many header fields";
			return HTTP_RESP_BAD;
		}
		if (!header_line(p, (size_t)(eol - p), out, &n_te, why))
			return HTTP_RESP_BAD;
		p = eol + 2;
	}
	if (n_te > 1) {
		*why = "repeated Transfer-Encoding";
		return HTTP_RESP_BAD;
	}
	out->chunked = n_te == 1;
	if (out->chunked && out->has_content_length) {
		*why = "both Content-Length and Transfer-Encoding";
		return HTTP_RESP_BAD;
	}
	/* An HTTP/1.0 server closes after the response unless it says otherwise
	 * (RFC 9112 9.3): no further request may be sent to it. */
	if (out->minor_version == 0 && !out->conn_keep_alive)
		out->conn_close = true;
	return HTTP_RESP_OK;
}

bool hr_authority_matches(const char *auth, size_t len, const char *host, uint16_t port,
			  uint16_t dflt)
{
	const char *h = auth;
	size_t hlen = len;
	const char *ps = NULL;
	size_t plen = 0;
	if (len > 0 && auth[0] == '[') {
		const char *rb = memchr(auth, ']', len);
		if (rb == NULL)
			return false;
		h = auth + 1;
		hlen = (size_t)(rb - auth) - 1;
		size_t rest = len - (size_t)(rb - auth) - 1;
		if (rest > 0) {
			if (rb[1] != ':')
				return false;
			ps = rb + 2;
			plen = rest - 1;
		}
	} else {
		const char *colon = memchr(auth, ':', len);
		if (colon != NULL) {
			if (memchr(colon + 1, ':', len - (size_t)(colon - auth) - 1) != NULL)
				return false; /* unbracketed IPv6 */
			hlen = (size_t)(colon - auth);
			ps = colon + 1;
			plen = len - hlen - 1;
		}
	}
	uint32_t p = dflt;
	if (ps != NULL) {
		if (plen == 0 || plen > 5)
			return false;
		p = 0;
		for (size_t i = 0; i < plen; i++) {
			if (ps[i] < '0' || ps[i] > '9')
				return false;
			p = p * 10 + (uint32_t)(ps[i] - '0');
		}
	}
	if (hlen > 0 && h[hlen - 1] == '.')
		hlen--;
	size_t want = strlen(host);
	if (want > 0 && host[want - 1] == '.')
		want--;
	return p == port && hlen == want && hlen > 0 && strncasecmp(h, host, hlen) == 0;
}
