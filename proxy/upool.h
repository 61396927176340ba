/* upool.h - idle upstream TLS connections kept for the next intercepted
 * tunnel to the same host, port and address (private to proxy/).
 *
 * An intercepted tunnel whose client leaves between two exchanges leaves
 * its upstream connection here (a duplicate of the socket and its SSL, the
 * handshake done) instead of closing it; the next tunnel decided for the
 * same host and port, under the same policy generation, whose freshly
 * checked addresses include that connection's peer takes it and skips the
 * dial and the upstream handshake. Kept connections are watched: any byte
 * or end from the server drops one (nothing is expected between exchanges),
 * and so does PROXY_UPSTREAM_KEEP_IDLE_MS of idleness, a policy reload and
 * the proxy's stop. Limits: PROXY_UPSTREAM_KEEP_MAX, ..._PER_HOST.
 */
#ifndef OPENSHELL_PROXY_UPOOL_H
#define OPENSHELL_PROXY_UPOOL_H

#include <openssl/ssl.h>
#include <stdint.h>
#include <sys/socket.h>

struct proxy;
struct upool_entry;

/* Keep fd and ssl (both the pool's from here, kept or not). */
void upool_put(struct proxy *px, int fd, SSL *ssl, const char *host, uint16_t port,
	       const struct sockaddr *peer, unsigned long gen);

/* A kept connection to host:port at exactly `peer` made under policy
 * generation `gen`, still quiet: its socket (the caller's now) and *ssl, or
 * -1. */
int upool_take(struct proxy *px, const char *host, uint16_t port, const struct sockaddr *peer,
	       unsigned long gen, SSL **ssl);

/* Drop every kept connection (a reload, the proxy's stop). */
void upool_drop_all(struct proxy *px);

#endif
