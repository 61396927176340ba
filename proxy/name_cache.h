/* name_cache.h - a small positive cache of host name resolutions, so a new
 * tunnel to a recently resolved name skips the resolver (and libuv's thread
 * pool). Private to proxy/ (conn.c uses it, struct proxy holds it).
 *
 * Only what getaddrinfo returned is cached, for PROXY_NAME_CACHE_TTL_MS
 * (getaddrinfo reports no TTL); failures are not cached. The cache decides
 * nothing: every address taken from it is SSRF- and allowed_ips-checked
 * again for the connection that uses it. */
#ifndef OPENSHELL_PROXY_NAME_CACHE_H
#define OPENSHELL_PROXY_NAME_CACHE_H

#include <netdb.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "proxy/proxy.h"

struct name_cache_entry;

/* Direct-mapped by a hash of the name: a colliding name replaces the
 * entry. Zero-initialised is empty. */
struct name_cache {
	struct name_cache_entry *slot[PROXY_NAME_CACHE_SLOTS];
};

/* Addresses of `host` cached at or after now_ms - TTL: copies up to max of
 * them (port 0) into out and returns how many; 0 on a miss. */
size_t name_cache_get(struct name_cache *nc, const char *host, uint64_t now_ms,
		      struct sockaddr_storage *out, size_t max);

/* Caches the addresses of res, in order, for host: only when all are IPv4
 * or IPv6 and there are at most PROXY_MAX_DIAL_ADDRS (a hit then checks
 * exactly what a fresh resolution would). Out of memory: nothing cached. */
void name_cache_put(struct name_cache *nc, const char *host, const struct addrinfo *res,
		    uint64_t now_ms);

/* Frees every entry. */
void name_cache_clear(struct name_cache *nc);

#endif
