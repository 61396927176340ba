/* target.c - CONNECT authority and absolute-form URI parsing, and the text of
 * a socket address. See target.h and proxy.h. */
#include "proxy/target.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "proxy/http_head.h"

/* ASCII-only classification: never depends on the process locale. */
static bool is_alpha(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

static bool is_alnum(unsigned char ch)
{
	return is_alpha(ch) || (ch >= '0' && ch <= '9');
}

static char to_lower(unsigned char ch)
{
	return (char)(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
}

static bool is_name_byte(unsigned char ch)
{
	return is_alnum(ch) || ch == '-' || ch == '.' || ch == '_';
}

bool target_parse_port(const char *p, size_t len, uint16_t *out)
{
	unsigned long v = 0;
	if (len == 0 || len > 5)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		v = v * 10 + (unsigned long)(p[i] - '0');
	}
	if (v == 0 || v > 65535)
		return false;
	*out = (uint16_t)v;
	return true;
}

/* Store a host (already split from the port); bracketed = it was inside [ ]. */
static bool set_host(struct proxy_target *t, const char *p, size_t len, bool bracketed)
{
	if (!bracketed && len > 0 && p[len - 1] == '.')
		len--; /* the root label: "a.test." is "a.test" */
	if (len == 0 || len > TARGET_MAX_HOST)
		return false;
	char tmp[TARGET_MAX_HOST + 1];
	memcpy(tmp, p, len);
	tmp[len] = '\0';
	if (bracketed) {
		if (inet_pton(AF_INET6, tmp, t->addr) != 1)
			return false;
		t->is_ip = true;
		t->family = AF_INET6;
		/* canonical text form */
		return inet_ntop(AF_INET6, t->addr, t->host, sizeof(t->host)) != NULL;
	}
	for (size_t i = 0; i < len; i++) {
		if (!is_name_byte((unsigned char)tmp[i]) ||
		    (tmp[i] == '.' && (i == 0 || i + 1 == len || tmp[i - 1] == '.')))
			return false; /* not a character of a name, or an empty label */
		tmp[i] = to_lower((unsigned char)tmp[i]);
	}
	memcpy(t->host, tmp, len + 1);
	if (inet_pton(AF_INET, tmp, t->addr) == 1) {
		t->is_ip = true;
		t->family = AF_INET;
	}
	return true;
}

/* authority = host [":" port] | "[" v6 "]" [":" port]. */
static bool parse_authority(const char *p, size_t len, struct proxy_target *t, bool need_port,
			    uint16_t default_port)
{
	const char *host, *port = NULL;
	size_t hlen, plen = 0;
	bool bracketed = false;
	if (len > 0 && p[0] == '[') {
		const char *rb = memchr(p, ']', len);
		if (rb == NULL)
			return false;
		host = p + 1;
		hlen = (size_t)(rb - host);
		bracketed = true;
		size_t rest = len - (size_t)(rb + 1 - p);
		if (rest > 0) {
			if (rb[1] != ':')
				return false;
			port = rb + 2;
			plen = rest - 1;
		}
	} else {
		const char *colon = memchr(p, ':', len);
		host = p;
		hlen = colon ? (size_t)(colon - p) : len;
		if (colon) {
			port = colon + 1;
			plen = len - hlen - 1;
		}
	}
	if (port == NULL) {
		if (need_port)
			return false;
		t->port = default_port;
	} else if (!target_parse_port(port, plen, &t->port)) {
		return false;
	}
	return set_host(t, host, hlen, bracketed);
}

enum target_result target_parse_connect(const char *p, size_t len, struct proxy_target *t)
{
	memset(t, 0, sizeof(*t));
	return parse_authority(p, len, t, true, 0) ? TARGET_OK : TARGET_BAD;
}

enum target_result target_parse_absolute(const char *p, size_t len, struct proxy_target *t)
{
	memset(t, 0, sizeof(*t));
	size_t i = 0;
	while (i < len && (is_alnum((unsigned char)p[i]) || p[i] == '+' || p[i] == '-' || p[i] == '.'))
		i++;
	if (i == 0 || !is_alpha((unsigned char)p[0]) || len - i < 3 || memcmp(p + i, "://", 3) != 0)
		return TARGET_BAD; /* origin-form, authority-form, or garbage */
	size_t scheme_len = i;
	if (memchr(p, '#', len) != NULL)
		return TARGET_BAD;
	struct http_slice scheme = { p, scheme_len };
	if (!http_slice_eq_nocase(scheme, "http")) {
		if (http_slice_eq_nocase(scheme, "https"))
			return TARGET_HTTPS;
		return TARGET_BAD_SCHEME;
	}
	const char *auth = p + i + 3;
	const char *end = p + len;
	const char *a = auth;
	while (a < end && *a != '/' && *a != '?')
		a++;
	if (memchr(auth, '@', (size_t)(a - auth)) != NULL)
		return TARGET_BAD; /* userinfo is not accepted */
	if (!parse_authority(auth, (size_t)(a - auth), t, false, 80))
		return TARGET_BAD;
	t->path = a;
	t->path_len = (size_t)(end - a);
	return TARGET_OK;
}

void target_format_hostport(const struct proxy_target *t, char *buf, size_t len)
{
	bool v6 = t->is_ip && t->family == AF_INET6;
	snprintf(buf, len, "%s%s%s:%u", v6 ? "[" : "", t->host, v6 ? "]" : "", (unsigned)t->port);
}

void target_format_host_header(const struct proxy_target *t, char *buf, size_t len)
{
	bool v6 = t->is_ip && t->family == AF_INET6;
	if (t->port == 80)
		snprintf(buf, len, "%s%s%s", v6 ? "[" : "", t->host, v6 ? "]" : "");
	else
		target_format_hostport(t, buf, len);
}

/* Declared in proxy.h: the supervisor's bypass audit uses it too. */
bool proxy_addr_text(const struct sockaddr_storage *ss, char *ip, size_t iplen, uint16_t *port)
{
	const void *a = NULL;
	uint16_t p = 0;
	if (ss->ss_family == AF_INET) {
		a = &((const struct sockaddr_in *)ss)->sin_addr;
		p = ntohs(((const struct sockaddr_in *)ss)->sin_port);
	} else if (ss->ss_family == AF_INET6) {
		a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
		p = ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	}
	if (port != NULL)
		*port = p;
	if (iplen == 0)
		return false;
	if (a == NULL || inet_ntop(ss->ss_family, a, ip, (socklen_t)iplen) == NULL) {
		ip[0] = '\0';
		return false;
	}
	return true;
}
