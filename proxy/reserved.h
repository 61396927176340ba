/* reserved.h - the host alias and the tool route (private to proxy/).
 *
 * host.openshell.internal:PORT is dialed as 127.0.0.1:PORT in the proxy's
 * own namespace, only when a policy endpoint names exactly that host with
 * PORT among its ports; it is never a loopback exemption for any other name
 * or address. The tool host is never dialed: admitted requests go to the
 * tool broker with identity headers the proxy sets (copies the caller sent
 * are dropped).
 */
#ifndef OPENSHELL_PROXY_RESERVED_H
#define OPENSHELL_PROXY_RESERVED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/http_head.h"
#include "proxy/proxy.h"

struct policy;
struct proxy;

#define RESERVED_IDENTITY_BYTES (3u * PROXY_IDENTITY_MAX + 512u) /* identity lines, encoded */

bool reserved_is_alias(const char *host);
/* Does an endpoint name exactly PROXY_HOST_ALIAS with `port` declared? */
bool reserved_alias_declared(const struct policy *p, uint16_t port);
bool reserved_is_tool_host(const struct proxy *px, const char *host);
/* Does an endpoint name exactly `host` (no wildcard) with `port` declared? */
bool reserved_host_declared(const struct policy *p, const char *host, uint16_t port);
struct policy_l7_result;
/* Judge one tool call: GET PROXY_TOOL_DISCOVERY_PATH is allowed; anything
 * else needs an L7 rule of an endpoint for the tool host that allows it
 * (no L7 rules: denied). Arguments as policy_l7_evaluate(). */
void reserved_tool_evaluate(const struct policy *p, const char *host, uint16_t port,
			    const char *method, const char *path, const char *query,
			    struct policy_l7_result *out);
/* Is this header one the proxy owns on the tool route (dropped from calls)? */
bool reserved_tool_header(struct http_slice name);
/* The identity header lines ("Name: value\r\n" x 3) for a tool call, with
 * bytes outside printable ASCII percent-encoded. Returns the length, 0 if
 * it does not fit. binary NULL or "": "unknown"; pid <= 0: "unknown". */
size_t reserved_identity_lines(const char *sandbox_id, const char *binary, long pid,
			       char *out, size_t cap);
/* A forwarded head rewritten for the broker: the caller's x-openshell-*
 * headers dropped, `identity` inserted before the empty line. malloc'd;
 * NULL on allocation failure or a head without an end. */
char *reserved_tool_head(const char *head, size_t len, const char *identity, size_t *out_len);

#endif
