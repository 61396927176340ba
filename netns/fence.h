/* fence.h - the nftables fence of the sandbox namespace. Private to netns/. */
#ifndef OPENSHELL_NETNS_FENCE_H
#define OPENSHELL_NETNS_FENCE_H

#include <stddef.h>
#include <stdint.h>

/* Write the whole fence (one table: an input chain that admits only loopback
 * and replies, the output chain, and the deny chain it sends every refused
 * packet to: NFLOG for the bypass audit, then reject) as nftables text into
 * buf. proxy_ip must be a dotted quad, port non-zero, run_id valid (see
 * plan.h). Returns the text length, or -1 if an argument is invalid or the
 * text does not fit in len bytes. */
int netns_fence_ruleset(char *buf, size_t len, const char *proxy_ip, uint16_t port,
			const char *run_id);

/* The fence plus transparent capture: a nat output chain that redirects
 * UDP/TCP port 53 to dns_port and every other TCP connection that is not
 * loopback or to the explicit proxy port to tcp_port (the proxy address,
 * on loopback, included), both on 127.0.0.1 of the
 * sandbox namespace; the filter chain admits those two ports only for
 * redirected (ct status dnat) flows. tcp_port == 0 and dns_port == 0: the
 * plain fence. Both non-zero and distinct, or both zero. */
int netns_fence_ruleset_capture(char *buf, size_t len, const char *proxy_ip, uint16_t port,
				const char *run_id, uint16_t tcp_port, uint16_t dns_port);

/* Load ruleset text as one atomic nftables transaction into the network
 * namespace of the calling thread. Error text from libnftables goes to err.
 * Returns 0 or -1. */
int netns_fence_load(const char *ruleset, char *err, size_t errlen);

#endif
