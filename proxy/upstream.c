/* upstream.c - the upstream (corporate) proxy settings, the no-proxy
 * matcher, the CONNECT request and its reply. See upstream.h. */
#include "proxy/upstream.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proxy/http_head.h"
#include "proxy/http_relay.h"

#define URL_SCHEME "http://"
#define BASIC_PREFIX "Proxy-Authorization: Basic "

/* ---- --upstream-proxy ---- */

int upstream_parse_url(struct proxy_upstream *u, const char *url, char *err, size_t errlen)
{
	static const char hint[] = "expected http://HOST:PORT";
	size_t len = strlen(url);
	size_t skip = sizeof(URL_SCHEME) - 1;
	if (len > PROXY_UPSTREAM_MAX_URL_BYTES) {
		snprintf(err, errlen, "--upstream-proxy: value longer than %u bytes",
			 PROXY_UPSTREAM_MAX_URL_BYTES);
		return -1;
	}
	if (len < skip || strncasecmp(url, URL_SCHEME, skip) != 0) {
		snprintf(err, errlen, "--upstream-proxy '%s': only http:// proxies are supported; %s",
			 url, hint);
		return -1;
	}
	const char *auth = url + skip;
	size_t alen = strlen(auth);
	if (alen > 0 && auth[alen - 1] == '/')
		alen--; /* http://proxy:3128/ is common in proxy variables */
	const char *bad = NULL;
	if (memchr(auth, '@', alen) != NULL)
		bad = "credentials in the URL are not accepted (use --upstream-proxy-auth-file)";
	else if (memchr(auth, '/', alen) || memchr(auth, '?', alen) || memchr(auth, '#', alen))
		bad = "a path, query or fragment is not accepted";
	struct proxy_target t;
	if (bad == NULL && target_parse_connect(auth, alen, &t) != TARGET_OK)
		bad = "not a valid HOST:PORT (the port is required; IPv6 in brackets)";
	if (bad != NULL) {
		snprintf(err, errlen, "--upstream-proxy '%s': %s; %s", url, bad, hint);
		return -1;
	}
	memcpy(u->host, t.host, sizeof(u->host));
	u->port = t.port;
	target_format_hostport(&t, u->display, sizeof(u->display));
	return 0;
}

/* Resolve the proxy's host once; every address is kept (up to the limit). */
static int resolve_proxy(struct proxy_upstream *u, char *err, size_t errlen)
{
	char port[8];
	snprintf(port, sizeof(port), "%u", (unsigned)u->port);
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_protocol = IPPROTO_TCP,
		.ai_flags = AI_NUMERICSERV,
	};
	struct addrinfo *res = NULL;
	int rc = getaddrinfo(u->host, port, &hints, &res);
	if (rc != 0) {
		snprintf(err, errlen, "--upstream-proxy: cannot resolve %s: %s", u->host,
			 gai_strerror(rc));
		return -1;
	}
	for (struct addrinfo *ai = res; ai != NULL && u->n_addrs < PROXY_UPSTREAM_MAX_ADDRS;
	     ai = ai->ai_next) {
		if ((ai->ai_family == AF_INET || ai->ai_family == AF_INET6) &&
		    ai->ai_addrlen <= sizeof(u->addrs[0]))
			memcpy(&u->addrs[u->n_addrs++], ai->ai_addr, ai->ai_addrlen);
	}
	freeaddrinfo(res);
	if (u->n_addrs == 0) {
		snprintf(err, errlen, "--upstream-proxy: %s has no IPv4 or IPv6 address", u->host);
		return -1;
	}
	return 0;
}

/* ---- --upstream-no-proxy ---- */

static char ascii_lower(char ch)
{
	return ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
}

/* A DNS name: labels of letters, digits, '-' and '_', no empty label, one
 * optional trailing dot (dropped). Copied lower-case into out. */
static bool copy_dns_name(const char *p, size_t len, char *out, size_t cap)
{
	if (len > 0 && p[len - 1] == '.')
		len--;
	if (len == 0 || len > TARGET_MAX_HOST || len >= cap || p[0] == '.' || p[len - 1] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		char ch = p[i];
		bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			  (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' ||
			  (ch == '.' && p[i - 1] != '.');
		if (!ok)
			return false;
		out[i] = ascii_lower(ch);
	}
	out[len] = '\0';
	return true;
}

/* Split "host[:port]" / "[v6 or v6/len][:port]" into host text and port. */
static bool split_port(const char *p, size_t len, char *host, size_t cap, uint16_t *port)
{
	const char *h = p, *ps = NULL;
	size_t hlen = len, plen = 0;
	if (len > 0 && p[0] == '[') {
		const char *rb = memchr(p, ']', len);
		if (rb == NULL)
			return false;
		h = p + 1;
		hlen = (size_t)(rb - h);
		size_t rest = len - (size_t)(rb + 1 - p);
		if (rest > 0) {
			if (rb[1] != ':')
				return false;
			ps = rb + 2;
			plen = rest - 1;
		}
		if (memchr(h, ':', hlen) == NULL)
			return false; /* brackets are for IPv6 only */
	} else {
		const char *colon = memchr(p, ':', len);
		if (colon != NULL) {
			if (memchr(colon + 1, ':', len - (size_t)(colon + 1 - p)) != NULL)
				return false; /* unbracketed IPv6 */
			hlen = (size_t)(colon - p);
			ps = colon + 1;
			plen = len - hlen - 1;
		}
	}
	if (hlen == 0 || hlen >= cap)
		return false;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	*port = 0;
	return ps == NULL || target_parse_port(ps, plen, port);
}

static bool parse_np_entry(const char *p, size_t len, struct upstream_np_entry *e)
{
	char host[TARGET_MAX_HOST + 2];
	memset(e, 0, sizeof(*e));
	if (!split_port(p, len, host, sizeof(host), &e->port))
		return false;
	bool bracketed = p[0] == '[';
	struct in_addr a4;
	if (bracketed || strchr(host, '/') != NULL || inet_pton(AF_INET, host, &a4) == 1) {
		e->kind = UPSTREAM_NP_CIDR;
		if (policy_cidr_parse(host, &e->cidr) != 0)
			return false;
		return bracketed == (e->cidr.family == AF_INET6);
	}
	size_t skip = strncmp(host, "*.", 2) == 0 ? 2 : host[0] == '.' ? 1 : 0;
	e->kind = skip ? UPSTREAM_NP_SUFFIX : UPSTREAM_NP_NAME;
	e->name[0] = '.';
	char *dst = skip ? e->name + 1 : e->name;
	return copy_dns_name(host + skip, strlen(host + skip), dst,
			     sizeof(e->name) - (size_t)(dst - e->name));
}

static bool is_list_space(char ch)
{
	return ch == ' ' || ch == '\t';
}

int upstream_parse_no_proxy(struct proxy_upstream *u, const char *list, char *err,
			    size_t errlen)
{
	if (strlen(list) > PROXY_UPSTREAM_MAX_LIST_BYTES) {
		snprintf(err, errlen, "--upstream-no-proxy: value longer than %u bytes",
			 PROXY_UPSTREAM_MAX_LIST_BYTES);
		return -1;
	}
	u->n_no_proxy = 0;
	const char *p = list;
	for (;;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		while (len > 0 && is_list_space(*p)) {
			p++;
			len--;
		}
		while (len > 0 && is_list_space(p[len - 1]))
			len--;
		if (len == 0) {
			snprintf(err, errlen, "--upstream-no-proxy '%s': empty entry", list);
			return -1;
		}
		if (u->n_no_proxy >= PROXY_UPSTREAM_MAX_NO_PROXY) {
			snprintf(err, errlen, "--upstream-no-proxy: more than %u entries",
				 PROXY_UPSTREAM_MAX_NO_PROXY);
			return -1;
		}
		if (!parse_np_entry(p, len, &u->no_proxy[u->n_no_proxy])) {
			snprintf(err, errlen, "--upstream-no-proxy: invalid entry '%.*s' (expected "
				 "NAME, .SUFFIX, *.SUFFIX, IPv4[/LEN] or [IPv6[/LEN]], each "
				 "optionally :PORT)", (int)len, p);
			return -1;
		}
		u->n_no_proxy++;
		if (end == NULL)
			return 0;
		p = end + 1;
	}
}

static bool name_matches(const struct upstream_np_entry *e, const char *host, size_t hlen)
{
	size_t nlen = strlen(e->name);
	if (e->kind == UPSTREAM_NP_NAME)
		return hlen == nlen && strncasecmp(host, e->name, hlen) == 0;
	return hlen > nlen && strncasecmp(host + hlen - nlen, e->name, nlen) == 0;
}

static bool address_covered(const struct proxy_upstream *u, const struct sockaddr_storage *ss,
			    uint16_t port)
{
	const void *a = ss->ss_family == AF_INET
				? (const void *)&((const struct sockaddr_in *)ss)->sin_addr
				: (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr;
	for (size_t i = 0; i < u->n_no_proxy; i++) {
		const struct upstream_np_entry *e = &u->no_proxy[i];
		if (e->kind == UPSTREAM_NP_CIDR && (e->port == 0 || e->port == port) &&
		    policy_cidr_contains(&e->cidr, ss->ss_family, a))
			return true;
	}
	return false;
}

bool upstream_no_proxy_match(const struct proxy_upstream *u, const char *host, uint16_t port,
			     const struct sockaddr_storage *addrs, size_t n_addrs)
{
	size_t hlen = strlen(host);
	if (hlen > 0 && host[hlen - 1] == '.')
		hlen--;
	for (size_t i = 0; i < u->n_no_proxy; i++) {
		const struct upstream_np_entry *e = &u->no_proxy[i];
		if (e->kind != UPSTREAM_NP_CIDR && (e->port == 0 || e->port == port) &&
		    name_matches(e, host, hlen))
			return true;
	}
	if (n_addrs == 0)
		return false;
	for (size_t i = 0; i < n_addrs; i++)
		if (!address_covered(u, &addrs[i], port))
			return false;
	return true;
}

/* ---- credentials ---- */

void upstream_wipe_free(char *p, size_t len)
{
	if (p == NULL)
		return;
	explicit_bzero(p, len);
	free(p);
}

/* One line of `user:pass`; returns the length without the line end, or 0
 * (why set) when it is not acceptable. */
static size_t credentials_length(const char *cred, size_t len, const char **why)
{
	if (len > 0 && cred[len - 1] == '\n')
		len--;
	if (len > 0 && cred[len - 1] == '\r')
		len--;
	const char *colon = memchr(cred, ':', len);
	if (len == 0 || colon == NULL) {
		*why = "expected one line USER:PASSWORD";
		return 0;
	}
	if (colon == cred) {
		*why = "the user name is empty";
		return 0;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)cred[i];
		if (ch < 0x20 || ch == 0x7f) {
			*why = ch == '\n' ? "more than one line" : "control byte in the credentials";
			return 0;
		}
	}
	return len;
}

int upstream_set_credentials(struct proxy_upstream *u, const char *cred, size_t len, char *err,
			     size_t errlen)
{
	const char *why = NULL;
	if (len > PROXY_UPSTREAM_MAX_AUTH_BYTES) {
		snprintf(err, errlen, "--upstream-proxy-auth-file: longer than %u bytes",
			 PROXY_UPSTREAM_MAX_AUTH_BYTES);
		return -1;
	}
	size_t n = credentials_length(cred, len, &why);
	if (n == 0) {
		snprintf(err, errlen, "--upstream-proxy-auth-file: %s", why);
		return -1;
	}
	size_t prefix = sizeof(BASIC_PREFIX) - 1;
	size_t cap = prefix + 4 * ((n + 2) / 3) + 3; /* base64, CRLF, NUL */
	char *line = malloc(cap);
	if (line == NULL) {
		snprintf(err, errlen, "--upstream-proxy-auth-file: out of memory");
		return -1;
	}
	memcpy(line, BASIC_PREFIX, prefix);
	int b64 = EVP_EncodeBlock((unsigned char *)line + prefix, (const unsigned char *)cred,
				  (int)n);
	if (b64 < 0) {
		upstream_wipe_free(line, cap);
		snprintf(err, errlen, "--upstream-proxy-auth-file: base64 encoding failed");
		return -1;
	}
	memcpy(line + prefix + (size_t)b64, "\r\n", 3);
	upstream_wipe_free(u->auth_line, u->auth_line_len);
	u->auth_line = line;
	u->auth_line_len = prefix + (size_t)b64 + 2;
	return 0;
}

/* ---- the CONNECT exchange ---- */

static void format_address(const struct sockaddr_storage *ss, uint16_t port, char *buf,
			   size_t len)
{
	char ip[INET6_ADDRSTRLEN];
	bool v6 = ss->ss_family == AF_INET6;
	if (!proxy_addr_text(ss, ip, sizeof(ip), NULL))
		snprintf(ip, sizeof(ip), "?");
	snprintf(buf, len, "%s%s%s:%u", v6 ? "[" : "", ip, v6 ? "]" : "", (unsigned)port);
}

void upstream_authority(const struct proxy_upstream *u, const struct proxy_target *t,
			const struct sockaddr_storage *checked, char *buf, size_t len)
{
	if (u->connect_by_hostname || checked == NULL)
		target_format_hostport(t, buf, len);
	else
		format_address(checked, t->port, buf, len);
}

char *upstream_connect_request(const struct proxy_upstream *u, const char *authority,
			       size_t *len)
{
	static const char fmt[] = "CONNECT %s HTTP/1.1\r\nHost: %s\r\n%.*s\r\n";
	size_t alen = strlen(authority);
	size_t cap = sizeof(fmt) + 2 * alen + u->auth_line_len;
	char *req = malloc(cap);
	if (req == NULL)
		return NULL;
	int n = snprintf(req, cap, fmt, authority, authority, (int)u->auth_line_len,
			 u->auth_line ? u->auth_line : "");
	if (n < 0 || (size_t)n >= cap) {
		upstream_wipe_free(req, cap);
		return NULL;
	}
	*len = (size_t)n;
	return req;
}

enum upstream_reply_result upstream_reply_parse(struct upstream_reply *r, const char **why)
{
	struct http_resp_head h;
	*why = NULL;
	switch (http_resp_parse(r->buf, r->fill, &h, why)) {
	case HTTP_RESP_INCOMPLETE:
		return r->fill < sizeof(r->buf) ? UPSTREAM_REPLY_INCOMPLETE
						: UPSTREAM_REPLY_TOO_LARGE;
	case HTTP_RESP_BAD:
		if (*why == NULL)
			*why = "malformed response head";
		return UPSTREAM_REPLY_BAD;
	case HTTP_RESP_OK:
		break;
	}
	r->head_len = h.head_len;
	r->status = h.status;
	return h.status >= 200 && h.status <= 299 ? UPSTREAM_REPLY_OK : UPSTREAM_REPLY_REFUSED;
}

/* ---- public: the settings object ---- */

struct proxy_upstream *proxy_upstream_create(const struct proxy_upstream_options *o, char *err,
					     size_t errlen)
{
	if (o == NULL || o->url == NULL) {
		snprintf(err, errlen, "--upstream-proxy: no URL given");
		return NULL;
	}
	struct proxy_upstream *u = calloc(1, sizeof(*u));
	if (u == NULL) {
		snprintf(err, errlen, "--upstream-proxy: out of memory");
		return NULL;
	}
	u->connect_by_hostname = o->connect_by_hostname;
	if (upstream_parse_url(u, o->url, err, errlen) != 0 ||
	    (o->no_proxy != NULL && upstream_parse_no_proxy(u, o->no_proxy, err, errlen) != 0) ||
	    (o->credentials != NULL &&
	     upstream_set_credentials(u, o->credentials, o->credentials_len, err, errlen) != 0) ||
	    resolve_proxy(u, err, errlen) != 0) {
		proxy_upstream_free(u);
		return NULL;
	}
	return u;
}

void proxy_upstream_free(struct proxy_upstream *u)
{
	if (u == NULL)
		return;
	upstream_wipe_free(u->auth_line, u->auth_line_len);
	explicit_bzero(u, sizeof(*u));
	free(u);
}

const char *proxy_upstream_name(const struct proxy_upstream *u)
{
	return u->display;
}

size_t proxy_upstream_address_count(const struct proxy_upstream *u)
{
	return u->n_addrs;
}

void upstream_reply_status_line(const struct upstream_reply *r, char *buf, size_t len)
{
	const char *eol = memchr(r->buf, '\r', r->fill);
	size_t n = eol ? (size_t)(eol - r->buf) : 0;
	if (n > 128)
		n = 128;
	snprintf(buf, len, "%.*s", (int)n, r->buf);
}
