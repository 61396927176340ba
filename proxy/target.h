/* target.h - request-target parsing for the proxy (private to proxy/).
 *
 * CONNECT authority-form (`host:port`, `[v6]:port`) and absolute-form
 * `http://authority/path?query`. Hosts are validated (DNS name characters or
 * an IP literal) and lower-cased; anything else is rejected.
 */
#ifndef OPENSHELL_PROXY_TARGET_H
#define OPENSHELL_PROXY_TARGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/proxy.h"

#define TARGET_MAX_HOST PROXY_MAX_HOST_BYTES

struct proxy_target {
	char host[TARGET_MAX_HOST + 1]; /* lower-case, IPv6 without brackets */
	uint16_t port;
	bool is_ip;                     /* host is an IP literal */
	int family;                     /* AF_INET / AF_INET6 when is_ip */
	uint8_t addr[16];               /* network order when is_ip */
	const char *path;               /* absolute-form only: points into input */
	size_t path_len;                /* 0 means "/" */
};

enum target_result {
	TARGET_OK = 0,
	TARGET_BAD,          /* unparsable -> bare 400 */
	TARGET_HTTPS,        /* https:// in forward form -> 400 "Use CONNECT" */
	TARGET_BAD_SCHEME,   /* other scheme -> 400 unsupported_proxy_scheme */
};

/* A port: digits only, 1..65535 (no sign, no spaces, at most 5 digits). */
bool target_parse_port(const char *p, size_t len, uint16_t *out);

enum target_result target_parse_connect(const char *p, size_t len, struct proxy_target *t);
enum target_result target_parse_absolute(const char *p, size_t len, struct proxy_target *t);

/* "host:port" for messages, IPv6 bracketed. */
void target_format_hostport(const struct proxy_target *t, char *buf, size_t len);

/* Host header value: lower-case host, IPv6 bracketed, ":port" unless 80. */
void target_format_host_header(const struct proxy_target *t, char *buf, size_t len);

#endif
