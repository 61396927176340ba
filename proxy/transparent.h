/* transparent.h - transparent capture (private to proxy/).
 *
 * The listener lives inside the sandbox namespace on 127.0.0.1; nftables
 * there redirects every TCP connection that is not loopback and not to the
 * explicit proxy to it. For each accepted flow: the original destination
 * (SO_ORIGINAL_DST, from the conntrack of the namespace that did the NAT;
 * a flow without one, or aimed at the listener itself, is reset), then its
 * first bytes are peeked (MSG_PEEK, so they stay in the socket and reach
 * the upstream unchanged after admission) to name the destination: TLS
 * SNI, HTTP Host, else the name the sandbox resolved for that address
 * through the policy DNS responder (dns_map), else the address itself.
 * conn.c then applies the same decision, SSRF guard, audit and relay as for
 * a CONNECT. The capture (see proxy_int.h: capture_start/capture_stop) also
 * owns the DNS responder and its address map.
 */
#ifndef OPENSHELL_PROXY_TRANSPARENT_H
#define OPENSHELL_PROXY_TRANSPARENT_H

#include <stddef.h>
#include <sys/socket.h>

#include "proxy/proxy_int.h"

struct dns_map;

/* Pure: the host to decide a captured flow on when its bytes named none:
 * of the names the sandbox resolved to orig's address (newest first), the
 * first one the policy allows for orig's port, else the newest, else NULL
 * (decide on the address). */
const char *transparent_map_name(const struct dns_map *map, const struct policy *p,
				 const struct sockaddr_storage *orig);

#endif
