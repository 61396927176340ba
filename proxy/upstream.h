/* upstream.h - chaining to an upstream (corporate) HTTP proxy (private to
 * proxy/).
 *
 * The parsed --upstream-proxy settings (struct proxy_upstream, made by
 * proxy_upstream_create() in proxy.h), the no-proxy matcher, the CONNECT
 * request sent upstream and the parser of its reply. No I/O here but the
 * one resolution of the proxy's host at start; conn.c drives the sockets.
 *
 * Order of checks (conn.c): policy decision, resolution and SSRF checks
 * of the destination first; only a destination that passed them and is not
 * in the no-proxy list goes to the upstream proxy, named by its validated
 * address (or by its host name with connect_by_hostname).
 */
#ifndef OPENSHELL_PROXY_UPSTREAM_H
#define OPENSHELL_PROXY_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "policy/policy.h"
#include "proxy/proxy.h"
#include "proxy/target.h"

enum upstream_np_kind {
	UPSTREAM_NP_NAME,    /* exactly this host name */
	UPSTREAM_NP_SUFFIX,  /* `.suffix` / `*.suffix`: any name below it */
	UPSTREAM_NP_CIDR,    /* an address or network, matched against the
			      * validated addresses */
};

struct upstream_np_entry {
	enum upstream_np_kind kind;
	char name[TARGET_MAX_HOST + 2];  /* NAME: the host; SUFFIX: ".suffix" */
	struct policy_cidr cidr;         /* CIDR */
	uint16_t port;                   /* 0: any port */
};

struct proxy_upstream {
	char host[TARGET_MAX_HOST + 1];      /* lower-case; IPv6 without brackets */
	uint16_t port;
	char display[TARGET_MAX_HOST + 16];  /* host:port, for messages and audit */
	struct sockaddr_storage addrs[PROXY_UPSTREAM_MAX_ADDRS]; /* dialed in order */
	size_t n_addrs;
	struct upstream_np_entry no_proxy[PROXY_UPSTREAM_MAX_NO_PROXY];
	size_t n_no_proxy;
	char *auth_line;                     /* "Proxy-Authorization: Basic ...\r\n"
					      * or NULL; wiped when freed */
	size_t auth_line_len;
	bool connect_by_hostname;
};

/* --upstream-proxy: `http://HOST:PORT` with an optional single trailing
 * `/`. HOST is a DNS name, an IPv4 address or a bracketed IPv6 address;
 * the port is required. Userinfo, paths, queries, fragments and every
 * other scheme are refused. Fills host, port, display; 0, or -1 with a
 * message naming the flag and the value. */
int upstream_parse_url(struct proxy_upstream *u, const char *url, char *err, size_t errlen);

/* --upstream-no-proxy: comma-separated entries, each optionally `:PORT`:
 * `name`, `.suffix` or `*.suffix`, an IPv4 address or CIDR
 * (`10.0.0.0/8`), an IPv6 address or CIDR in brackets (`[fd00::/8]`).
 * At most PROXY_UPSTREAM_MAX_NO_PROXY entries. 0, or -1 with a message. */
int upstream_parse_no_proxy(struct proxy_upstream *u, const char *list, char *err,
			    size_t errlen);

/* `user:pass` (one line; a trailing newline is dropped) -> the Basic
 * Proxy-Authorization line. The user must be non-empty and free of ':';
 * control bytes are refused. 0, or -1 with a message that never quotes
 * the credentials. */
int upstream_set_credentials(struct proxy_upstream *u, const char *cred, size_t len, char *err,
			     size_t errlen);

/* Does the no-proxy list exempt this destination? A name entry matches
 * the requested host; address entries match when every validated address
 * is covered (so a direct dial can only reach covered addresses). Port
 * entries match only that port. */
bool upstream_no_proxy_match(const struct proxy_upstream *u, const char *host, uint16_t port,
			     const struct sockaddr_storage *addrs, size_t n_addrs);

/* The authority named upstream: the validated address `checked` with the
 * target's port (IPv6 bracketed), or with connect_by_hostname the
 * requested host:port. */
void upstream_authority(const struct proxy_upstream *u, const struct proxy_target *t,
			const struct sockaddr_storage *checked, char *buf, size_t len);

/* "CONNECT <authority> HTTP/1.1" with Host and, when configured,
 * Proxy-Authorization. malloc'd (wipe with upstream_wipe_free); NULL on
 * allocation failure. */
char *upstream_connect_request(const struct proxy_upstream *u, const char *authority,
			       size_t *len);

void upstream_wipe_free(char *p, size_t len);

/* The reply to our CONNECT, read into buf until its head is complete. */
struct upstream_reply {
	size_t fill;                         /* bytes in buf */
	size_t head_len;                     /* once complete */
	int status;                          /* once parsed */
	char buf[PROXY_UPSTREAM_MAX_REPLY_HEAD_BYTES];
};

enum upstream_reply_result {
	UPSTREAM_REPLY_INCOMPLETE = 0,  /* read more (buf has room) */
	UPSTREAM_REPLY_OK,              /* 2xx: the tunnel is open; buf[head_len..fill)
					 * are already tunnel bytes */
	UPSTREAM_REPLY_REFUSED,         /* any other status (in status) */
	UPSTREAM_REPLY_BAD,             /* not a valid response head (why) */
	UPSTREAM_REPLY_TOO_LARGE,       /* no complete head within buf */
};

enum upstream_reply_result upstream_reply_parse(struct upstream_reply *r, const char **why);

/* The reply's status line (at most 128 bytes; validated by the parse), for
 * messages. */
void upstream_reply_status_line(const struct upstream_reply *r, char *buf, size_t len);

#endif
