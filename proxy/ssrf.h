/* ssrf.h - destination address classification (private to proxy/).
 *
 * Every address a request would dial is classified:
 *   BLOCKED  - never dialed, whatever the policy says (loopback, unspecified,
 *              link-local incl. cloud metadata, multicast, reserved 240/4,
 *              broadcast, and the IPv4-mapped/compatible forms of those);
 *   INTERNAL - private/shared/documentation/benchmark ranges, ULA, NAT64:
 *              dialed only when the endpoint's allowed_ips contains them;
 *   PUBLIC   - everything else.
 * When the endpoint has allowed_ips, every address must be inside them.
 * Control-plane ports are refused for internal destinations.
 */
#ifndef OPENSHELL_PROXY_SSRF_H
#define OPENSHELL_PROXY_SSRF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct policy_cidr;

enum ssrf_class { SSRF_PUBLIC = 0, SSRF_INTERNAL, SSRF_BLOCKED };

struct ssrf_options {
	/* Test-only: treat 127.0.0.0/8 and ::1 as public so loopback tests can
	 * reach an upstream. Never set by the supervisor. */
	bool allow_loopback;
};

/* Classify an address (family AF_INET with 4 bytes, AF_INET6 with 16).
 * *range (if non-NULL) receives a static description such as
 * "loopback 127.0.0.0/8". */
enum ssrf_class ssrf_classify(int family, const uint8_t *addr, const char **range);

bool ssrf_is_control_plane_port(uint16_t port);

/* Check one resolved address for a request to `port` under the endpoint's
 * allowed_ips (n_allowed == 0: none declared). Returns true when it may be
 * dialed; otherwise writes a reason naming the address and its class. */
bool ssrf_check_address(const struct sockaddr *sa, uint16_t port,
			const struct policy_cidr *allowed, size_t n_allowed,
			const struct ssrf_options *opt, char *why, size_t whylen);

#endif
