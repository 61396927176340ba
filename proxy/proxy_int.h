/* proxy_int.h - state shared by proxy.c (listener) and conn.c (connections).
 * Private to proxy/. */
#ifndef OPENSHELL_PROXY_INT_H
#define OPENSHELL_PROXY_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <uv.h>

#include "proxy/proxy.h"

struct conn;

struct proxy {
	uv_loop_t *loop;
	struct proxy_hooks hooks;
	bool test_allow_loopback_upstream;
	const struct policy *policy;    /* borrowed; used only for new decisions */
	int listen_fd;
	uint16_t port;
	int reserve_fd;                 /* spare fd released on EMFILE/ENFILE */
	uv_poll_t poll;                 /* readability of listen_fd */
	uv_timer_t backoff;             /* accept pause after resource errors */
	unsigned backoff_ms;
	bool poll_inited, backoff_inited;
	unsigned open_handles;          /* poll + backoff, until their close cbs */
	struct conn *conns;             /* doubly linked */
	size_t n_conns;
	unsigned long n_capped;         /* connections refused at the cap */
	bool stopping;
	void (*done)(void *arg);
	void *done_arg;
};

void px_log(struct proxy *px, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void px_audit(struct proxy *px, const char *json_line);

/* conn.c: take ownership of an accepted, non-blocking socket. */
void conn_accepted(struct proxy *px, int fd, const struct sockaddr_storage *peer);
/* conn.c: close a connection now (proxy_stop). */
void conn_abort(struct conn *c);
struct conn *conn_next(struct conn *c);

/* proxy.c: called by conn.c after a connection is freed. */
void proxy_conn_freed(struct proxy *px);

#endif
