/* proxy.h - the embedded egress proxy (libuv).
 *
 * Serves HTTP CONNECT and absolute-form http:// requests on one listener,
 * decides each destination with the policy, guards against SSRF on every
 * resolved address, and relays bytes both ways with bounded buffers.
 * Everything runs on the caller's uv loop; the proxy owns all its handles.
 *
 * Behaviour worth knowing (details in the proxy/ sources):
 * - Decisions are endpoint-only for now: policy_decide(..., NULL, false, ...);
 *   binaries are not matched (peer identity is not resolved yet).
 * - A denied host is never resolved. Every resolved address is SSRF-checked
 *   (proxy/ssrf.h); only checked addresses are dialed, in resolver order.
 * - Forward requests: Content-Length bodies are forwarded byte-exact;
 *   chunked bodies are relayed unchanged through a strict framing validator
 *   that stops at the end of the body (bad framing: 400 before dialing, or
 *   the connection is closed mid-stream). Pipelined requests are dropped.
 * - At PROXY_MAX_CONNECTIONS, a new connection gets a best-effort 503 JSON
 *   `proxy_busy` and is closed.
 * - The embedding program must ignore SIGPIPE (libuv writes with write(2));
 *   proxy_start() logs a warning if it does not.
 * - All functions must be called on the loop's thread.
 */
#ifndef OPENSHELL_PROXY_H
#define OPENSHELL_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct policy;

/* Explicit limits (documented in README "Limits"). */
#define PROXY_MAX_HEAD_BYTES 8192u          /* request head -> 431 beyond */
#define PROXY_HEAD_TIMEOUT_MS 10000u        /* full head not read -> 408 */
#define PROXY_CONNECT_TIMEOUT_MS 10000u     /* upstream connect -> 504 */
#define PROXY_DNS_TIMEOUT_MS 10000u         /* resolution -> 504 */
#define PROXY_RELAY_BUF_BYTES 65536u        /* max bytes buffered per direction */
#define PROXY_MAX_CONNECTIONS 4096u         /* accepted client connections at once;
					     * beyond it: best-effort 503, close */
#define PROXY_RELAY_READ_BYTES 16384u       /* one read; stop reading when the other
					     * side's queue + one read would exceed
					     * PROXY_RELAY_BUF_BYTES */
#define PROXY_MAX_DIAL_ADDRS 16u            /* resolved addresses tried, in order (all
					     * resolved addresses are SSRF-checked) */
#define PROXY_LINGER_MS 2000u               /* after an error response: drain the client
					     * this long at most, then close */
#define PROXY_ACCEPT_BACKOFF_MIN_MS 100u    /* accept pause after EMFILE/ENFILE/ENOBUFS/
					     * ENOMEM, doubling per consecutive error */
#define PROXY_ACCEPT_BACKOFF_MAX_MS 5000u
#define PROXY_LISTEN_BACKLOG 511
#define PROXY_MAX_HEADER_FIELDS 100u        /* request header lines -> 431 beyond */
#define PROXY_MAX_HOST_BYTES 253u           /* request host name -> 400 beyond */
#define PROXY_CHUNK_SIZE_MAX_DIGITS 15u     /* chunk-size hex digits (< 2^60) */
#define PROXY_CHUNK_EXT_MAX_BYTES 1024u     /* chunk extensions per chunk */
#define PROXY_CHUNK_TRAILER_MAX_BYTES 8192u /* trailer section of a chunked body */

enum proxy_log_level { PROXY_LOG_ERROR = 0, PROXY_LOG_WARN, PROXY_LOG_INFO, PROXY_LOG_DEBUG };

struct proxy_hooks {
	/* One OCSF-shaped JSON object (no trailing newline) per decision. */
	void (*audit)(void *ud, const char *json_line);
	/* Human-readable log line at `level`. */
	void (*log)(void *ud, int level, const char *msg);
	void *ud;
};

struct proxy_config {
	const char *listen_ip;    /* e.g. "10.200.0.1" */
	uint16_t listen_port;     /* e.g. 3128 */
	struct proxy_hooks hooks;
	/* TEST ONLY: treat loopback (127.0.0.0/8, ::1) destinations as public
	 * so unit tests can reach an upstream on 127.0.0.1. The supervisor
	 * never sets this. */
	bool test_allow_loopback_upstream;
};

struct proxy;

/* Create and bind the listener. The policy is borrowed: it must outlive the
 * proxy or be replaced with proxy_set_policy() first. Returns NULL and writes
 * a message into err on failure. */
struct proxy *proxy_start(uv_loop_t *loop, const struct proxy_config *cfg,
			  const struct policy *policy, char *err, size_t errlen);

/* The bound port (useful when listen_port was 0). */
uint16_t proxy_listen_port(const struct proxy *px);

/* Swap the policy used for new decisions (the caller frees the old one). */
void proxy_set_policy(struct proxy *px, const struct policy *policy);

/* Stop listening, close every connection, then call done(arg) once all
 * handles are closed; after that the proxy is freed. */
void proxy_stop(struct proxy *px, void (*done)(void *arg), void *arg);

#endif
