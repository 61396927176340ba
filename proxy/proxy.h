/* proxy.h - the embedded egress proxy (libuv).
 *
 * Serves HTTP CONNECT and absolute-form http:// requests on one listener,
 * decides each destination with the policy, guards against SSRF on every
 * resolved address, and relays bytes both ways with bounded buffers.
 * Everything runs on the caller's uv loop; the proxy owns all its handles.
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
#define PROXY_MAX_CONNECTIONS 4096u         /* accepted client connections at once */

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
};

struct proxy;

/* Create and bind the listener. The policy is borrowed: it must outlive the
 * proxy or be replaced with proxy_set_policy() first. Returns NULL and writes
 * a message into err on failure. */
struct proxy *proxy_start(uv_loop_t *loop, const struct proxy_config *cfg,
			  const struct policy *policy, char *err, size_t errlen);

/* Swap the policy used for new decisions (the caller frees the old one). */
void proxy_set_policy(struct proxy *px, const struct policy *policy);

/* Stop listening, close every connection, then call done(arg) once all
 * handles are closed; after that the proxy is freed. */
void proxy_stop(struct proxy *px, void (*done)(void *arg), void *arg);

#endif
