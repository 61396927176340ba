/* canon.c - request-target canonicalization; see canon.h for the rules.
 * Never allocates: one decoded segment lives on the stack. */
#include <string.h>

#include "proxy/canon.h"

static int hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes "%HH" at p (p[0] == '%', n bytes available); -1 if malformed. */
static int decode_escape(const char *p, size_t n)
{
	int hi, lo;

	if (n < 3)
		return -1;
	hi = hex_value((unsigned char)p[1]);
	lo = hex_value((unsigned char)p[2]);
	if (hi < 0 || lo < 0)
		return -1;
	return hi * 16 + lo;
}

static bool is_control(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

/* Bytes that may appear raw in a canonical path segment: RFC 3986
 * unreserved, sub-delims, ':' and '@'. Everything else is %HH. */
static bool path_byte_is_safe(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("-._~!$&'()*+,;=:@", c) != NULL;
}

/* Raw bytes never accepted anywhere in a target. */
static const char *raw_byte_problem(unsigned char c)
{
	if (is_control(c))
		return "control byte in request target";
	if (c >= 0x80)
		return "non-ASCII byte in request target";
	if (c == ' ')
		return "space in request target";
	if (c == '#')
		return "fragment ('#') in request target";
	return NULL;
}

struct segment {
	char buf[CANON_MAX_PATH_BYTES + 1]; /* decoded; '/' here is an encoded slash */
	size_t n;
};

/* Percent-decodes raw[0..n) into seg. */
static const char *decode_segment(const char *raw, size_t n, bool allow_encoded_slash,
				  struct segment *seg)
{
	seg->n = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)raw[i];
		int v;

		if (c == '\\')
			return "backslash in request path";
		if (c != '%') {
			seg->buf[seg->n++] = (char)c;
			continue;
		}
		v = decode_escape(raw + i, n - i);
		if (v < 0)
			return "malformed percent-escape in request path";
		if (is_control((unsigned char)v))
			return "encoded control byte in request path";
		if (v == '\\')
			return "encoded backslash (%5C) in request path";
		if (v == '/' && !allow_encoded_slash)
			return "encoded slash (%2F) in request path";
		seg->buf[seg->n++] = (char)v;
		i += 2;
	}
	seg->buf[seg->n] = '\0';
	return NULL;
}

static bool is_dot_part(const char *p, size_t n)
{
	return (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.');
}

/* With allow_encoded_slash, a server that decodes %2F would see the parts
 * between encoded slashes as segments: none of them may be a dot segment. */
static bool hides_dot_segment(const struct segment *seg)
{
	size_t start = 0;

	if (!memchr(seg->buf, '/', seg->n))
		return false;
	for (size_t i = 0; i <= seg->n; i++) {
		if (i < seg->n && seg->buf[i] != '/')
			continue;
		if (is_dot_part(seg->buf + start, i - start))
			return true;
		start = i + 1;
	}
	return false;
}

struct out {
	char *p;
	size_t n;
	size_t max; /* usable bytes, excluding the NUL */
};

static bool out_put(struct out *o, char c)
{
	if (o->n >= o->max)
		return false;
	o->p[o->n++] = c;
	return true;
}

static bool out_put_encoded(struct out *o, const struct segment *seg)
{
	static const char hex[] = "0123456789ABCDEF";

	if (!out_put(o, '/'))
		return false;
	for (size_t i = 0; i < seg->n; i++) {
		unsigned char c = (unsigned char)seg->buf[i];

		if (path_byte_is_safe(c)) {
			if (!out_put(o, (char)c))
				return false;
		} else if (!out_put(o, '%') || !out_put(o, hex[c >> 4]) ||
			   !out_put(o, hex[c & 15])) {
			return false;
		}
	}
	return true;
}

/* Drops the last output segment; false if there is none (above the root). */
static bool out_pop(struct out *o)
{
	if (o->n == 0)
		return false;
	while (o->n > 0 && o->p[o->n - 1] != '/')
		o->n--;
	o->n--; /* the '/' that started the segment */
	return true;
}

/* One raw segment; *dir_end tells whether it leaves a trailing slash when
 * it is the last one. */
static const char *add_segment(struct out *o, const char *raw, size_t n,
			       bool allow_encoded_slash, struct segment *seg, bool *dir_end)
{
	const char *why = decode_segment(raw, n, allow_encoded_slash, seg);
	char *semi;

	if (why)
		return why;
	semi = memchr(seg->buf, ';', seg->n);
	if (semi) {
		seg->n = (size_t)(semi - seg->buf);
		seg->buf[seg->n] = '\0';
	}
	*dir_end = true;
	if (seg->n == 0 || (seg->n == 1 && seg->buf[0] == '.'))
		return NULL;
	if (seg->n == 2 && seg->buf[0] == '.' && seg->buf[1] == '.')
		return out_pop(o) ? NULL : "request path climbs above the root";
	if (hides_dot_segment(seg))
		return "dot segment behind an encoded slash in request path";
	*dir_end = false;
	return out_put_encoded(o, seg) ? NULL : "canonical request path too long";
}

static const char *canon_path(const char *p, size_t n, bool allow_encoded_slash,
			      char *path_out, size_t path_cap)
{
	struct segment seg;
	struct out o = { path_out, 0, path_cap - 1 };
	bool dir_end = false;
	size_t i = 1;

	if (o.max > CANON_MAX_PATH_BYTES)
		o.max = CANON_MAX_PATH_BYTES;
	for (;;) {
		const char *slash = memchr(p + i, '/', n - i);
		size_t end = slash ? (size_t)(slash - p) : n;
		const char *why = add_segment(&o, p + i, end - i, allow_encoded_slash,
					      &seg, &dir_end);

		if (why)
			return why;
		if (!slash)
			break;
		i = end + 1;
	}
	if ((o.n == 0 || dir_end) && !out_put(&o, '/'))
		return "canonical request path too long";
	path_out[o.n] = '\0';
	return NULL;
}

static const char *check_query(const char *q, size_t n, char *query_out, size_t query_cap)
{
	if (n > CANON_MAX_QUERY_BYTES || n >= query_cap)
		return "request query too long";
	for (size_t i = 0; i < n; i++) {
		if (q[i] != '%')
			continue;
		int v = decode_escape(q + i, n - i);

		if (v < 0)
			return "malformed percent-escape in request query";
		if (v == 0)
			return "encoded NUL (%00) in request query";
		i += 2;
	}
	memcpy(query_out, q, n);
	query_out[n] = '\0';
	return NULL;
}

static const char *canon_target(const char *target, size_t len, bool allow_encoded_slash,
				char *path_out, size_t path_cap, char *query_out,
				size_t query_cap)
{
	const char *qmark;
	size_t plen;

	if (!target || !path_out || !query_out || path_cap < 2 || query_cap < 1)
		return "invalid arguments";
	if (len == 0 || target[0] != '/')
		return "request target is not origin-form (must start with '/')";
	for (size_t i = 0; i < len; i++) {
		const char *why = raw_byte_problem((unsigned char)target[i]);

		if (why)
			return why;
	}
	qmark = memchr(target, '?', len);
	plen = qmark ? (size_t)(qmark - target) : len;
	if (plen > CANON_MAX_PATH_BYTES)
		return "request path too long";
	query_out[0] = '\0';
	if (qmark) {
		const char *why = check_query(qmark + 1, len - plen - 1, query_out, query_cap);

		if (why)
			return why;
	}
	return canon_path(target, plen, allow_encoded_slash, path_out, path_cap);
}

int canon_request_target(const char *target, size_t len, bool allow_encoded_slash,
			 char *path_out, size_t path_cap, char *query_out, size_t query_cap,
			 const char **err)
{
	const char *why = canon_target(target, len, allow_encoded_slash, path_out, path_cap,
				       query_out, query_cap);

	if (err)
		*err = why;
	if (!why)
		return 0;
	if (path_out && path_cap > 0)
		path_out[0] = '\0';
	if (query_out && query_cap > 0)
		query_out[0] = '\0';
	return -1;
}

size_t canon_format_target(const char *path, const char *query, char *out, size_t cap)
{
	size_t pn = strlen(path), qn = query ? strlen(query) : 0;
	size_t total = pn + (qn ? qn + 1 : 0);

	if (total >= cap)
		return 0;
	memcpy(out, path, pn);
	if (qn) {
		out[pn] = '?';
		memcpy(out + pn + 1, query, qn);
	}
	out[total] = '\0';
	return total;
}
