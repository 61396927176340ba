/* cred_rewrite.c - placeholder detection, substitution and redaction (see
 * cred.h). Every output goes through a bounded sink: overflow is reported,
 * never truncated silently. Temporary buffers that may hold a secret are
 * wiped before they are freed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proxy/cred_int.h"

#define PREFIX_LEN (sizeof(CRED_PLACEHOLDER_PREFIX) - 1)

/* ---- marker detection ---- */

static const char *const markers[] = { CRED_PLACEHOLDER_PREFIX, CRED_ALIAS_MARKER };
#define N_MARKERS (sizeof(markers) / sizeof(markers[0]))

/* Case-insensitive streaming search for any marker. The markers have no
 * border (no proper prefix equal to a suffix), so restarting at the
 * current byte on a mismatch is exact. */
struct scan {
	size_t idx[N_MARKERS];
	bool found;
};

static unsigned char lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

static void scan_byte(struct scan *sc, unsigned char c)
{
	for (size_t k = 0; k < N_MARKERS; k++) {
		const char *m = markers[k];

		if (lower(c) == lower((unsigned char)m[sc->idx[k]]))
			sc->idx[k]++;
		else
			sc->idx[k] = lower(c) == lower((unsigned char)m[0]);
		if (m[sc->idx[k]] == '\0') {
			sc->found = true;
			sc->idx[k] = 0;
		}
	}
}

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

/* %HH at p (n bytes available) decoded, or -1. */
static int escape_at(const char *p, size_t n)
{
	int hi, lo;

	if (n < 3 || p[0] != '%')
		return -1;
	hi = hex_value((unsigned char)p[1]);
	lo = hex_value((unsigned char)p[2]);
	return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

static bool scan_raw(const char *buf, size_t len)
{
	struct scan sc = { { 0 }, false };

	for (size_t i = 0; i < len && !sc.found; i++)
		scan_byte(&sc, (unsigned char)buf[i]);
	return sc.found;
}

static bool scan_percent_decoded(const char *buf, size_t len)
{
	struct scan sc = { { 0 }, false };

	for (size_t i = 0; i < len && !sc.found; i++) {
		int v = escape_at(buf + i, len - i);

		if (v >= 0) {
			scan_byte(&sc, (unsigned char)v);
			i += 2;
		} else {
			scan_byte(&sc, (unsigned char)buf[i]);
		}
	}
	return sc.found;
}

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

/* Lenient: decodes the base64 run at buf (standard or URL alphabet, padding
 * optional) straight into the scanner. */
static bool scan_base64(const char *buf, size_t len)
{
	struct scan sc = { { 0 }, false };
	uint32_t acc = 0;
	unsigned bits = 0;

	for (size_t i = 0; i < len && !sc.found; i++) {
		int v = b64_value((unsigned char)buf[i]);

		if (v < 0)
			break;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			scan_byte(&sc, (unsigned char)(acc >> bits));
			acc &= (1u << bits) - 1;
		}
	}
	return sc.found;
}

/* Every "basic" followed by spaces: scan the base64 token after it. */
static bool scan_basic_tokens(const char *buf, size_t len)
{
	for (size_t i = 0; i + 6 <= len; i++) {
		size_t j = i + 5;

		if (lower((unsigned char)buf[i]) != 'b' || strncasecmp(buf + i, "basic", 5) != 0 ||
		    buf[j] != ' ')
			continue;
		while (j < len && buf[j] == ' ')
			j++;
		if (scan_base64(buf + j, len - j))
			return true;
	}
	return false;
}

bool cred_contains_placeholder(const char *buf, size_t len)
{
	if (!buf)
		return false;
	return scan_raw(buf, len) || scan_percent_decoded(buf, len) ||
	       scan_basic_tokens(buf, len);
}

/* ---- output ---- */

struct sink {
	char *p;
	size_t n, cap;
	bool overflow;
};

enum enc {
	ENC_RAW,    /* bytes as they are */
	ENC_PATH,   /* canonical path segment: keep unreserved, sub-delims, ':', '@' */
	ENC_STRICT, /* keep RFC 3986 unreserved only */
};

static void put(struct sink *o, const char *b, size_t n)
{
	if (o->overflow || o->cap - o->n < n) {
		o->overflow = true;
		return;
	}
	memcpy(o->p + o->n, b, n);
	o->n += n;
}

static bool is_unreserved(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

static bool keep_raw(unsigned char c, enum enc e)
{
	switch (e) {
	case ENC_RAW:
		return true;
	case ENC_PATH:
		return is_unreserved(c) || (c != '\0' && strchr("!$&'()*+,;=:@", c));
	case ENC_STRICT:
		return is_unreserved(c);
	}
	return false;
}

static void put_encoded(struct sink *o, const char *b, size_t n, enum enc e)
{
	static const char hex[] = "0123456789ABCDEF";

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)b[i];
		char esc[3] = { '%', hex[c >> 4], hex[c & 15] };

		if (keep_raw(c, e))
			put(o, (const char *)&b[i], 1);
		else
			put(o, esc, 3);
	}
}

/* ---- substitution ---- */

struct subst {
	const struct cred_store *s;
	const char *host;
	enum enc lit, val;  /* encodings of literal text and of values */
	bool path_segment;  /* refuse values that would change the path shape */
};

static bool is_key_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '_';
}

/* KEY, v<N>_KEY or s<64 lowercase hex>_KEY -> KEY. */
static void strip_revision(const char **key, size_t *n)
{
	const char *k = *key;
	size_t i = 1;

	if (*n > 2 && k[0] == 'v') {
		while (i < *n && k[i] >= '0' && k[i] <= '9')
			i++;
		if (i > 1 && i < *n && k[i] == '_') {
			*key += i + 1;
			*n -= i + 1;
		}
	} else if (*n > 66 && k[0] == 's' && k[65] == '_') {
		for (; i < 65; i++)
			if (!((k[i] >= '0' && k[i] <= '9') || (k[i] >= 'a' && k[i] <= 'f')))
				return;
		*key += 66;
		*n -= 66;
	}
}

static bool value_fits_path(const struct cred_entry *e)
{
	for (size_t i = 0; i < e->vlen; i++)
		if (strchr("/\\?#", e->value[i]) && e->value[i] != '\0')
			return false;
	return !memmem(e->value, e->vlen, "..", 2);
}

/* Resolves the placeholder whose key starts at key (n bytes). */
static int resolve(const struct subst *c, const char *key, size_t n,
		   const struct cred_entry **out)
{
	const struct cred_entry *e;

	strip_revision(&key, &n);
	e = n ? cred_find(c->s, key, n) : NULL;
	if (!e)
		return CRED_UNKNOWN;
	if (!cred_in_scope(e, c->host))
		return CRED_OUT_OF_SCOPE;
	if (c->path_segment && !value_fits_path(e))
		return CRED_REFUSED;
	*out = e;
	return CRED_OK;
}

/* Emits in[0..n) with every canonical placeholder replaced by its value. */
static int substitute(const struct subst *c, const char *in, size_t n, struct sink *o)
{
	size_t lit = 0, i = 0;

	while (i < n) {
		const struct cred_entry *e = NULL;
		size_t k;
		int r;

		if (n - i < PREFIX_LEN || memcmp(in + i, CRED_PLACEHOLDER_PREFIX, PREFIX_LEN) != 0) {
			i++;
			continue;
		}
		for (k = i + PREFIX_LEN; k < n && is_key_char((unsigned char)in[k]); k++)
			;
		r = resolve(c, in + i + PREFIX_LEN, k - i - PREFIX_LEN, &e);
		if (r != CRED_OK)
			return r;
		put_encoded(o, in + lit, i - lit, c->lit);
		put_encoded(o, e->value, e->vlen, c->val);
		lit = i = k;
	}
	put_encoded(o, in + lit, n - lit, c->lit);
	return CRED_OK;
}

/* Common ending: overflow and fail-closed checks, NUL termination. */
static int finish(struct sink *o, int r, size_t *outlen)
{
	if (r != CRED_OK)
		return r;
	if (o->overflow)
		return CRED_TOO_LONG;
	if (cred_contains_placeholder(o->p, o->n))
		return CRED_UNKNOWN;
	if (o->n < o->cap)
		o->p[o->n] = '\0';
	*outlen = o->n;
	return CRED_OK;
}

static void wipe_free(char *p, size_t n)
{
	if (p) {
		explicit_bzero(p, n);
		free(p);
	}
}

/* ---- Basic credentials ---- */

/* Strict-ish base64 (standard alphabet, padding optional but only at the
 * end). Returns the decoded length or -1. out holds len * 3 / 4 + 3. */
static long b64_decode(const char *in, size_t len, unsigned char *out)
{
	uint32_t acc = 0;
	unsigned bits = 0;
	size_t n = 0, pad = 0;

	while (pad < 2 && len > 0 && in[len - 1] == '=') {
		len--;
		pad++;
	}
	if (len % 4 == 1 || (pad && (len + pad) % 4 != 0))
		return -1;
	for (size_t i = 0; i < len; i++) {
		int v = b64_value((unsigned char)in[i]);

		if (v < 0 || in[i] == '-' || in[i] == '_')
			return -1;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	return (long)n;
}

static void b64_encode(struct sink *o, const unsigned char *in, size_t len)
{
	static const char tbl[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		char q[4];

		if (i + 1 < len)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < len)
			v |= in[i + 2];
		q[0] = tbl[(v >> 18) & 63];
		q[1] = tbl[(v >> 12) & 63];
		q[2] = i + 1 < len ? tbl[(v >> 6) & 63] : '=';
		q[3] = i + 2 < len ? tbl[v & 63] : '=';
		put(o, q, 4);
	}
}

/* "Basic" + spaces: length of that prefix, or 0. */
static size_t basic_prefix(const char *v, size_t n)
{
	size_t i = 5;

	if (n < 7 || strncasecmp(v, "basic", 5) != 0 || v[5] != ' ')
		return 0;
	while (i < n && v[i] == ' ')
		i++;
	return i < n ? i : 0;
}

static int rewrite_basic(const struct subst *c, const char *v, size_t n, size_t pre,
			 struct sink *o)
{
	size_t room = o->cap < CRED_MAX_FILE_BYTES ? o->cap : CRED_MAX_FILE_BYTES;
	size_t dcap = (n - pre) / 4 * 3 + 3, tcap = room / 4 * 3 + 3;
	unsigned char *dec = malloc(dcap);
	char *tmp = malloc(tcap);
	struct sink t = { tmp, 0, tcap, false };
	long dn;
	int r = CRED_REFUSED;

	if (dec && tmp && (dn = b64_decode(v + pre, n - pre, dec)) >= 0) {
		if (!cred_contains_placeholder((const char *)dec, (size_t)dn)) {
			r = CRED_NO_PLACEHOLDER;
		} else {
			r = substitute(c, (const char *)dec, (size_t)dn, &t);
			if (r == CRED_OK && !t.overflow &&
			    cred_contains_placeholder(t.p, t.n))
				r = CRED_UNKNOWN;
			put(o, v, pre);
			b64_encode(o, (const unsigned char *)t.p, t.n);
			o->overflow |= t.overflow;
		}
	}
	wipe_free((char *)dec, dcap);
	wipe_free(tmp, tcap);
	return r;
}

int cred_rewrite_header(const struct cred_store *s, const char *host, const char *name,
			const char *value, size_t vlen, char *out, size_t cap,
			size_t *outlen)
{
	struct subst c = { s, host, ENC_RAW, ENC_RAW, false };
	struct sink o = { out, 0, cap, false };
	size_t pre;
	int r;

	if (!value || !out || !outlen)
		return CRED_REFUSED;
	pre = basic_prefix(value, vlen);
	if (pre) {
		r = rewrite_basic(&c, value, vlen, pre, &o);
		if (r != CRED_REFUSED)
			return r == CRED_NO_PLACEHOLDER ? r : finish(&o, r, outlen);
		o.n = 0; /* not base64: handle it as an ordinary value */
		o.overflow = false;
	}
	if (!cred_contains_placeholder(value, vlen))
		return CRED_NO_PLACEHOLDER;
	return finish(&o, substitute(&c, value, vlen, &o), outlen);
}

/* ---- request targets ---- */

/* Decodes %HH (and '+' as space when form) into out; -1 if malformed. */
static long percent_decode(const char *in, size_t n, bool form, char *out)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		int v;

		if (in[i] != '%') {
			out[k++] = form && in[i] == '+' ? ' ' : in[i];
			continue;
		}
		v = escape_at(in + i, n - i);
		if (v <= 0)
			return -1; /* malformed, or %00 */
		out[k++] = (char)v;
		i += 2;
	}
	return (long)k;
}

/* One path segment or query value: rewritten if it holds a marker,
 * otherwise copied verbatim. */
static int rewrite_component(const struct subst *c, const char *in, size_t n, bool form,
			     char *scratch, struct sink *o)
{
	long dn;

	if (!cred_contains_placeholder(in, n)) {
		put(o, in, n);
		return CRED_OK;
	}
	dn = percent_decode(in, n, form, scratch);
	if (dn < 0)
		return CRED_REFUSED;
	return substitute(c, scratch, (size_t)dn, o);
}

static int rewrite_path(const struct subst *c, const char *p, size_t n, char *scratch,
			struct sink *o)
{
	for (size_t i = 1; i <= n;) {
		const char *slash = memchr(p + i, '/', n - i);
		size_t end = slash ? (size_t)(slash - p) : n;
		int r;

		put(o, "/", 1);
		r = rewrite_component(c, p + i, end - i, false, scratch, o);
		if (r != CRED_OK)
			return r;
		i = end + 1;
	}
	return CRED_OK;
}

static int rewrite_query(const struct subst *c, const char *q, size_t n, char *scratch,
			 struct sink *o)
{
	for (size_t i = 0; i <= n;) {
		const char *amp = memchr(q + i, '&', n - i);
		size_t end = amp ? (size_t)(amp - q) : n;
		const char *eq = memchr(q + i, '=', end - i);
		int r = CRED_OK;

		if (i > 0)
			put(o, "&", 1);
		if (eq) {
			put(o, q + i, (size_t)(eq - q) - i + 1);
			r = rewrite_component(c, eq + 1, (size_t)(q + end - eq - 1), true, scratch,
					      o);
		} else {
			put(o, q + i, end - i);
		}
		if (r != CRED_OK)
			return r;
		i = end + 1;
	}
	return CRED_OK;
}

int cred_rewrite_target(const struct cred_store *s, const char *host, const char *target,
			size_t tlen, char *out, size_t cap, size_t *outlen)
{
	struct subst c = { s, host, ENC_PATH, ENC_STRICT, true };
	struct sink o = { out, 0, cap, false };
	const char *qmark;
	size_t plen;
	char *scratch;
	int r;

	if (!target || !out || !outlen)
		return CRED_REFUSED;
	if (!cred_contains_placeholder(target, tlen))
		return CRED_NO_PLACEHOLDER;
	if (tlen == 0 || target[0] != '/')
		return CRED_REFUSED;
	scratch = malloc(tlen + 1);
	if (!scratch)
		return CRED_TOO_LONG;
	qmark = memchr(target, '?', tlen);
	plen = qmark ? (size_t)(qmark - target) : tlen;
	r = rewrite_path(&c, target, plen, scratch, &o);
	if (r == CRED_OK && qmark) {
		c.lit = ENC_STRICT;
		c.path_segment = false;
		put(&o, "?", 1);
		r = rewrite_query(&c, qmark + 1, tlen - plen - 1, scratch, &o);
	}
	free(scratch); /* decoded request text: placeholders, never values */
	return finish(&o, r, outlen);
}

/* ---- redaction ---- */

static const struct cred_entry *longest_value_at(const struct cred_store *s, const char *p,
						 size_t n)
{
	const struct cred_entry *best = NULL;

	for (size_t i = 0; s && i < s->n; i++) {
		const struct cred_entry *e = &s->e[i];

		if (e->vlen && e->vlen <= n && e->value[0] == p[0] &&
		    memcmp(e->value, p, e->vlen) == 0 && (!best || e->vlen > best->vlen))
			best = e;
	}
	return best;
}

static int end_text(struct sink *o, size_t *outlen)
{
	if (o->overflow || o->n >= o->cap)
		return CRED_TOO_LONG;
	o->p[o->n] = '\0';
	*outlen = o->n;
	return CRED_OK;
}

int cred_redact(const struct cred_store *s, const char *in, size_t len, char *out, size_t cap,
		size_t *outlen)
{
	struct sink o = { out, 0, cap, false };

	for (size_t i = 0; i < len;) {
		const struct cred_entry *e = longest_value_at(s, in + i, len - i);

		if (!e) {
			put(&o, in + i++, 1);
			continue;
		}
		put(&o, "[REDACTED:", 10);
		put(&o, e->name, strlen(e->name));
		put(&o, "]", 1);
		i += e->vlen;
	}
	return end_text(&o, outlen);
}

int cred_redact_placeholders(const char *in, size_t len, char *out, size_t cap,
			     size_t *outlen)
{
	struct sink o = { out, 0, cap, false };

	for (size_t i = 0; i < len;) {
		if (len - i < PREFIX_LEN || memcmp(in + i, CRED_PLACEHOLDER_PREFIX, PREFIX_LEN) != 0) {
			put(&o, in + i++, 1);
			continue;
		}
		put(&o, CRED_REDACTED_PLACEHOLDER, sizeof(CRED_REDACTED_PLACEHOLDER) - 1);
		for (i += PREFIX_LEN; i < len && is_key_char((unsigned char)in[i]); i++)
			;
	}
	return end_text(&o, outlen);
}

const char *cred_result_str(int r)
{
	switch (r) {
	case CRED_OK: return "ok";
	case CRED_NO_PLACEHOLDER: return "no placeholder";
	case CRED_OUT_OF_SCOPE: return "credential not scoped to this host";
	case CRED_UNKNOWN: return "unresolvable credential placeholder";
	case CRED_TOO_LONG: return "rewritten value too long";
	case CRED_REFUSED: return "credential cannot be used here";
	}
	return "unknown result";
}
