/* proxy_int.h - state shared by proxy.c (listener) and conn.c (connections).
 * Private to proxy/. */
#ifndef OPENSHELL_PROXY_INT_H
#define OPENSHELL_PROXY_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <uv.h>

#include "proxy/proxy.h"
#include "proxy/name_cache.h"
#include "proxy/splice.h"

struct conn;
struct upool_entry;

struct proxy {
	uv_loop_t *loop;
	struct proxy_hooks hooks;
	bool test_allow_loopback_upstream;
	const struct policy *policy;    /* borrowed; used only for new decisions */
	unsigned long policy_gen;       /* +1 per proxy_set_policy(); never a pointer compare */
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
	struct proxy_tls *tls;          /* interception contexts, or NULL (no CA) */
	const struct cred_store *creds; /* borrowed, may be NULL */
	const struct proxy_upstream *upstream; /* borrowed; NULL: dial directly */
	struct capture *capture;        /* transparent capture + policy DNS, or NULL */
	struct splice_pool spare_pipes; /* drained pipes for raw tunnels (splice.c) */
	struct name_cache names;        /* recent resolutions (name_cache.c) */
	struct upool_entry *kept;       /* idle upstream TLS connections (upool.c) */
	size_t n_kept;
	char tool_host[PROXY_MAX_HOST_BYTES + 1]; /* the tool route's reserved name */
	struct proxy_tool_broker broker; /* kind NONE: tool calls get 503 */
	char sandbox_id[128];
	bool has_listen_v4;             /* listen_ip is one IPv4 address: the policy */
	uint8_t listen_v4[4];           /* DNS answers it for the reserved names */
};

void px_log(struct proxy *px, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void px_audit(struct proxy *px, const char *json_line);

/* conn.c: take ownership of an accepted, non-blocking socket. */
void conn_accepted(struct proxy *px, int fd, const struct sockaddr_storage *peer);
/* conn.c: close a connection now (proxy_stop). */
void conn_abort(struct conn *c);
struct conn *conn_next(struct conn *c);
/* conn.c: the policy was replaced (px->policy, px->policy_gen are new; the
 * old policy is freed right after). An established raw tunnel or upgraded
 * (raw-after-101) intercepted tunnel whose destination the new policy does
 * not allow is reset now; the others continue. */
void conn_policy_changed(struct conn *c);

/* proxy.c: called by conn.c after a connection is freed. */
void proxy_conn_freed(struct proxy *px);
/* proxy.c: one of the px->open_handles (upool.c's) has closed. */
void proxy_handle_closed(struct proxy *px);

/* What a transparently captured flow turned out to be (transparent.c). */
enum conn_capture_kind { CONN_CAPTURE_TLS, CONN_CAPTURE_HTTP, CONN_CAPTURE_TCP };

/* conn.c: take ownership of a captured socket whose first bytes (still
 * unread in the socket) were examined. name_hint: the host to decide on
 * (SNI, Host, or the name the sandbox resolved for orig_dst); NULL or ""
 * means decide on orig_dst's address. The flow is decided, SSRF-checked,
 * dialed and relayed raw like a CONNECT tunnel, without the 200 line. A
 * refusal resets the flow (HTTP: the JSON response first). The caller has
 * counted the connection in px->n_conns. */
void conn_accepted_transparent(struct proxy *px, int fd, const struct sockaddr_storage *peer,
			       const struct sockaddr_storage *orig_dst, const char *name_hint,
			       enum conn_capture_kind kind);

/* transparent.c: the capture listeners and DNS responder (started by
 * proxy_start when configured, on duplicates of the fds). Whether
 * capture_start succeeds or not, proxy_capture_stopped() is called exactly
 * once: after a failed start, or when capture_stop has closed everything. */
struct capture *capture_start(struct proxy *px, const struct proxy_capture_fds *fds,
			      const char *hostname, char *err, size_t errlen);
void capture_stop(struct capture *cap);
void proxy_capture_stopped(struct proxy *px);

#endif
