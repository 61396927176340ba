/* http_relay.h - HTTP/1.1 relay inside intercepted tunnels (private to
 * proxy/).
 *
 * A session owns nothing of the connection's handles: it borrows the
 * client and upstream streams and the timer of a conn (conn.c), drives
 * them until the tunnel ends, and asks the owner to close. The session
 * terminates TLS on both sides when the client speaks TLS, relays
 * plaintext HTTP/1.1 otherwise, and falls back to a raw byte relay for
 * anything that is neither. After a solicited 101 it becomes a raw relay.
 */
#ifndef OPENSHELL_PROXY_HTTP_RELAY_H
#define OPENSHELL_PROXY_HTTP_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <openssl/ssl.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "proxy/http_head.h"
#include "proxy/proxy.h"

#define HR_MAX_RESPONSE_HEADERS 256u /* response header lines -> close */

/* ---- response head parser (http_relay_parse.c) ---- */

struct http_resp_head {
	int status;                 /* 100..999 */
	int minor_version;          /* 0 or 1 */
	size_t head_len;            /* bytes up to and including the empty line */
	bool has_content_length;
	uint64_t content_length;
	bool chunked;
	bool conn_close;            /* Connection: close, or HTTP/1.0 without keep-alive */
	bool conn_keep_alive;       /* Connection: keep-alive */
	unsigned n_upgrade;         /* Upgrade lines (0: no Upgrade header) */
	struct http_slice upgrade;  /* the first Upgrade line's value */
};

enum http_resp_result {
	HTTP_RESP_OK = 0,
	HTTP_RESP_INCOMPLETE,
	HTTP_RESP_BAD,
};

/* Strict: bare CR/LF, obs-fold, whitespace before ':', control bytes,
 * CL+TE, a TE other than exactly `chunked`, differing CLs -> BAD. */
enum http_resp_result http_resp_parse(const char *buf, size_t len, struct http_resp_head *out,
				      const char **why);

/* Does the Host / absolute-form authority `auth` name host:port? (host
 * case-insensitive, trailing dot and IPv6 brackets ignored, `dflt` when
 * no port is given). */
bool hr_authority_matches(const char *auth, size_t len, const char *host, uint16_t port,
			  uint16_t dflt);

/* ---- session (http_relay.c) ---- */

struct proxy;
struct hr_session;

struct hr_params {
	struct proxy *px;
	void *owner;                      /* the conn */
	void (*close_owner)(void *owner); /* close the connection now */
	uv_tcp_t *client;                 /* connected; owner's handles */
	uv_stream_t *upstream;            /* TCP, or a pipe (tool broker) */
	uv_timer_t *timer;                /* owner's timer, stopped */
	const char *host;                 /* CONNECT host (copied) */
	uint16_t port;
	const char *rule_name;            /* copied; may be NULL */
	const char *src_ip;               /* copied; may be NULL */
	uint16_t src_port;
	const char *early;                /* client bytes already read (copied) */
	size_t early_len;
	bool l7;                          /* the endpoint has L7 rules to enforce */
	bool allow_encoded_slash;         /* endpoint option, for canonicalization */
	unsigned long policy_gen;         /* px->policy_gen of the tunnel's decision */
	/* Policy reloaded since: is the destination still allowed (the owner
	 * re-decides and audits a denial)? Called before going raw. */
	bool (*recheck_owner)(void *owner);
	/* The tool route: the upstream is the broker, spoken to in plaintext;
	 * every request is judged by reserved_tool_evaluate(), loses its
	 * x-openshell-* headers and gains tool_identity (copied). */
	bool tool;
	const char *tool_identity;
	/* An upstream TLS connection kept by an earlier tunnel (upool.c),
	 * its handshake done: the session's from hr_start() on, even when
	 * that fails. NULL: the session makes its own handshake. */
	SSL *upstream_ssl;
	/* The upstream's address; non-NULL: when the client leaves between
	 * two exchanges, the upstream connection may be kept for the next
	 * tunnel (not for a chained upstream proxy or the tool broker). */
	const struct sockaddr *keep_peer;
};

/* Take over the tunnel (the 200 has been queued): from here the handles'
 * data pointers belong to the session. NULL on allocation failure (nothing
 * taken; the owner closes). Store the session, then call hr_run(). */
struct hr_session *hr_start(const struct hr_params *p);
void hr_run(struct hr_session *s);
/* The owner is closing: give its handles back (their data pointers are
 * restored to the owner), never touch them again. */
void hr_detach(struct hr_session *s, void *owner);
void hr_free(struct hr_session *s);
/* Is the session relaying raw bytes (after a 101, or a non-HTTP tunnel)? */
bool hr_is_raw(const struct hr_session *s);

struct cred_store;
/* Is `host` in the scope of any credential (so the tunnel is intercepted)? */
bool hr_host_has_credentials(const struct cred_store *cs, const char *host);

#endif
