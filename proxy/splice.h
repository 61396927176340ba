/* splice.h - raw tunnel relay between two TCP sockets with splice(2).
 * Private to proxy/ (conn.c starts it, proxy.c owns the spare pipes). */
#ifndef OPENSHELL_PROXY_SPLICE_H
#define OPENSHELL_PROXY_SPLICE_H

#include <stdbool.h>
#include <uv.h>

#include "proxy/proxy.h"

/* Drained pipes kept for the next tunnel direction that has bytes to move. */
struct splice_pool {
	int fds[PROXY_SPLICE_SPARE_PIPES][2];
	unsigned n;
};

/* Closes every spare pipe. */
void splice_pool_drain(struct splice_pool *pool);

struct splice_hooks {
	/* Both directions ended; each end of stream was passed on as a
	 * half-close (shutdown(SHUT_WR)). The owner closes the tunnel. */
	void (*finished)(void *owner);
	/* An I/O error (what: "read", "write", "shutdown", "poll", "pipe";
	 * err: a libuv error code). The owner closes the tunnel. */
	void (*failed)(void *owner, const char *what, int err);
	/* After splice_close(): the relay's handles are closed, it is freed. */
	void (*closed)(void *owner);
};

struct splice_relay;

/* Relays client_fd <-> upstream_fd until both directions end or one fails.
 * The descriptors stay owned by the caller's uv_tcp_t handles, which must be
 * idle (no read started, no write queued) for as long as the relay runs:
 * libuv keeps one watcher per descriptor, and the relay's poll handles take
 * it. Returns NULL when nothing was started (out of memory, or a descriptor
 * libuv cannot poll): the caller may relay another way. Otherwise the
 * caller calls splice_close() before closing its handles. */
struct splice_relay *splice_start(struct proxy *px, int client_fd, int upstream_fd,
				  const struct splice_hooks *hooks, void *owner);

/* Stops the relay at once (no more bytes move; bytes in its pipes are
 * dropped); hooks->closed follows from the loop. Idempotent. */
void splice_close(struct splice_relay *s);

#endif
