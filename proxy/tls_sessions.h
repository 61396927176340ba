/* tls_sessions.h - upstream TLS sessions kept for resumption (private to
 * proxy/).
 *
 * A new intercepted connection to host:port offers the most recent session
 * (TLS 1.3 ticket or TLS 1.2 session) an earlier connection to the same
 * host:port received, so the upstream handshake skips the certificate
 * exchange. A session was made by a handshake whose certificate chain and
 * host name were verified; it is only offered to that same host name and
 * port, and only the server holding its keys can accept it. Each session is
 * used once (RFC 8446 C.4); expired ones are dropped when met.
 */
#ifndef OPENSHELL_PROXY_TLS_SESSIONS_H
#define OPENSHELL_PROXY_TLS_SESSIONS_H

#include <stdint.h>
#include <openssl/ssl.h>

#include "proxy/proxy.h"

struct tls_session_slot {
	char key[PROXY_MAX_HOST_BYTES + 8];  /* "host:port"; "" when free */
	SSL_SESSION *sess[PROXY_TLS_SESSIONS_PER_HOST]; /* oldest first */
	unsigned n;
	uint64_t used;                       /* LRU stamp */
};

struct tls_sessions {
	struct tls_session_slot slot[PROXY_TLS_SESSION_HOSTS];
	uint64_t clock;
};

/* The newest unexpired session for host:port, owned by the caller (free
 * with SSL_SESSION_free), or NULL. */
SSL_SESSION *tls_sessions_take(struct tls_sessions *c, const char *host, unsigned port);

/* Keeps sess for host:port (takes the caller's reference; a session that
 * cannot be resumed is freed at once). The least recently used host's
 * sessions make room for a new host; the oldest session of a full host
 * makes room for a new one; at PROXY_TLS_SESSIONS_MAX in all, the oldest
 * session of the least recently used host that has one goes. */
void tls_sessions_put(struct tls_sessions *c, const char *host, unsigned port,
		      SSL_SESSION *sess);

/* Sessions kept, all hosts together. */
unsigned tls_sessions_count(const struct tls_sessions *c);

/* Frees every kept session. */
void tls_sessions_clear(struct tls_sessions *c);

#endif
