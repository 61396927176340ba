/* sni.c - TLS ClientHello server_name and HTTP Host from a flow's first
 * bytes. See sni.h. Every length is checked against what is left before it
 * is used; a malformed hello yields "no name", never a guess. */
#include "proxy/sni.h"

#include <arpa/inet.h>
#include <string.h>

#include "proxy/http_head.h"

#define TLS_CONTENT_HANDSHAKE 22u
#define TLS_MAJOR 3u
#define TLS_RECORD_MAX (16384u + 2048u) /* TLSCiphertext upper bound */
#define TLS_HS_CLIENT_HELLO 1u
#define TLS_EXT_SERVER_NAME 0u
#define TLS_SNI_HOST_NAME 0u
#define TLS_RANDOM_LEN 32u
#define TLS_SESSION_ID_MAX 32u
#define HTTP_METHOD_MAX 16u

static size_t get16(const uint8_t *p)
{
	return ((size_t)p[0] << 8) | p[1];
}

/* Copy a host name (no port) into out, lower-cased, one trailing dot
 * removed. Only DNS name characters, no empty label. */
static bool copy_host(const uint8_t *p, size_t n, char *out, size_t outlen)
{
	if (n > 0 && p[n - 1] == '.')
		n--;
	if (n == 0 || n > SNI_NAME_MAX || n >= outlen)
		return false;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = p[i];
		if (c >= 'A' && c <= 'Z')
			c = (uint8_t)(c - 'A' + 'a');
		bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
			  c == '_' || c == '.';
		if (!ok || (c == '.' && (i == 0 || i + 1 == n || p[i - 1] == '.'))) {
			out[0] = '\0';
			return false;
		}
		out[i] = (char)c;
	}
	out[n] = '\0';
	return true;
}

static enum sni_result server_name_ext(const uint8_t *p, size_t n, char *name, size_t namelen)
{
	if (n < 2 || get16(p) != n - 2)
		return SNI_NONE;
	for (size_t o = 2; n - o >= 3;) {
		uint8_t type = p[o];
		size_t l = get16(p + o + 1);
		o += 3;
		if (l > n - o)
			return SNI_NONE;
		if (type == TLS_SNI_HOST_NAME)
			return copy_host(p + o, l, name, namelen) ? SNI_FOUND : SNI_NONE;
		o += l;
	}
	return SNI_NONE;
}

/* body: the ClientHello after its 4-byte handshake header. */
static enum sni_result client_hello(const uint8_t *p, size_t n, char *name, size_t namelen)
{
	size_t o = 2 + TLS_RANDOM_LEN; /* legacy_version, random */
	if (n < o + 1 || p[o] > TLS_SESSION_ID_MAX || p[o] > n - o - 1)
		return SNI_NONE;
	o += 1u + p[o];
	if (n - o < 2)
		return SNI_NONE;
	size_t suites = get16(p + o);
	if (suites > n - o - 2)
		return SNI_NONE;
	o += 2 + suites;
	if (n - o < 1 || p[o] > n - o - 1)
		return SNI_NONE;
	o += 1u + p[o];
	if (n - o < 2)
		return SNI_NONE; /* no extensions */
	size_t ext_len = get16(p + o);
	o += 2;
	if (ext_len > n - o)
		return SNI_NONE;
	size_t end = o + ext_len;
	while (end - o >= 4) {
		size_t type = get16(p + o), l = get16(p + o + 2);
		o += 4;
		if (l > end - o)
			return SNI_NONE;
		if (type == TLS_EXT_SERVER_NAME)
			return server_name_ext(p + o, l, name, namelen);
		o += l;
	}
	return SNI_NONE;
}

enum sni_result sni_parse(const uint8_t *buf, size_t len, char *name, size_t namelen)
{
	uint8_t hs[SNI_PEEK_MAX]; /* handshake bytes gathered from the records */
	size_t hs_len = 0, o = 0;

	if (name == NULL || namelen == 0)
		return SNI_NONE;
	name[0] = '\0';
	if (len == 0)
		return SNI_INCOMPLETE;
	if (buf[0] != TLS_CONTENT_HANDSHAKE || (len > 1 && buf[1] != TLS_MAJOR))
		return SNI_NOT_TLS;
	while (len - o >= 5) {
		size_t rl = get16(buf + o + 3);
		if (buf[o] != TLS_CONTENT_HANDSHAKE || buf[o + 1] != TLS_MAJOR || rl == 0 ||
		    rl > TLS_RECORD_MAX)
			return o == 0 ? SNI_NOT_TLS : SNI_NONE;
		size_t avail = len - o - 5 < rl ? len - o - 5 : rl;
		size_t take = avail < sizeof(hs) - hs_len ? avail : sizeof(hs) - hs_len;
		memcpy(hs + hs_len, buf + o + 5, take);
		hs_len += take;
		if (hs_len >= 4) {
			if (hs[0] != TLS_HS_CLIENT_HELLO)
				return SNI_NONE;
			size_t body = ((size_t)hs[1] << 16) | ((size_t)hs[2] << 8) | hs[3];
			if (body > sizeof(hs) - 4)
				return SNI_NONE; /* larger than we examine */
			if (hs_len >= body + 4)
				return client_hello(hs + 4, body, name, namelen);
		}
		if (avail < rl)
			return SNI_INCOMPLETE;
		o += 5 + rl;
	}
	return SNI_INCOMPLETE;
}

/* Host header value -> host without port (IPv6 literal without brackets). */
static bool host_from_header(const char *v, size_t n, char *out, size_t outlen)
{
	if (n > 0 && v[0] == '[') {
		const char *close = memchr(v, ']', n);
		if (close == NULL)
			return false;
		size_t hl = (size_t)(close - v - 1);
		size_t rest = n - hl - 2;
		char tmp[INET6_ADDRSTRLEN];
		struct in6_addr a;
		if (hl == 0 || hl >= sizeof(tmp) || (rest > 0 && close[1] != ':'))
			return false;
		memcpy(tmp, v + 1, hl);
		tmp[hl] = '\0';
		/* canonical (lower-case, compressed) text of the address */
		return inet_pton(AF_INET6, tmp, &a) == 1 &&
		       inet_ntop(AF_INET6, &a, out, (socklen_t)outlen) != NULL;
	}
	const char *colon = memchr(v, ':', n);
	size_t hl = colon != NULL ? (size_t)(colon - v) : n;
	return copy_host((const uint8_t *)v, hl, out, outlen);
}

/* "TOKEN " with an upper-case token: 1 yes, 0 no, -1 cannot tell yet. */
static int looks_like_http(const uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < len && i <= HTTP_METHOD_MAX; i++) {
		if (buf[i] == ' ')
			return i > 0;
		if (buf[i] < 'A' || buf[i] > 'Z')
			return 0;
	}
	return len > HTTP_METHOD_MAX ? 0 : -1;
}

static enum peek_kind identify_http(const uint8_t *buf, size_t len, bool final, char *name,
				    size_t namelen)
{
	struct http_head h;
	size_t n = len < PROXY_MAX_HEAD_BYTES ? len : PROXY_MAX_HEAD_BYTES;
	enum http_head_result r = http_head_parse((const char *)buf, n, &h, NULL);
	if (r == HTTP_HEAD_INCOMPLETE && !final && len < PROXY_MAX_HEAD_BYTES)
		return PEEK_MORE;
	if (r != HTTP_HEAD_OK)
		return PEEK_HTTP; /* name stays "" */
	const struct http_header *host = http_head_find(&h, "host");
	if (host != NULL && !host_from_header(host->value.p, host->value.len, name, namelen))
		name[0] = '\0';
	return PEEK_HTTP;
}

enum peek_kind peek_identify(const uint8_t *buf, size_t len, bool final, char *name,
			     size_t namelen)
{
	if (name == NULL || namelen == 0)
		return PEEK_OTHER;
	name[0] = '\0';
	if (len > SNI_PEEK_MAX) {
		len = SNI_PEEK_MAX;
		final = true;
	}
	if (len == 0)
		return final ? PEEK_OTHER : PEEK_MORE;
	switch (sni_parse(buf, len, name, namelen)) {
	case SNI_FOUND:
		return PEEK_TLS;
	case SNI_NONE:
		name[0] = '\0';
		return PEEK_TLS;
	case SNI_INCOMPLETE:
		return final ? PEEK_TLS : PEEK_MORE;
	case SNI_NOT_TLS:
		break;
	}
	name[0] = '\0';
	int http = looks_like_http(buf, len);
	if (http < 0)
		return final ? PEEK_OTHER : PEEK_MORE;
	if (http == 0)
		return PEEK_OTHER;
	return identify_http(buf, len, final, name, namelen);
}
