/* dns.h - the policy DNS responder (private to proxy/).
 *
 * Listens (UDP and TCP) on the capture DNS port inside the sandbox
 * namespace; nftables redirects every UDP/TCP port-53 query of the sandbox
 * there. A name that is the exact or wildcard host of any policy endpoint
 * (any port) is resolved by the supervisor (getaddrinfo, IPv4, in the
 * supervisor's namespace) and answered with its A records; AAAA and other
 * types of an allowed name get NODATA. Every other name gets NXDOMAIN and a
 * `dns` deny audit event, and is never looked up anywhere. `localhost`,
 * `*.localhost` and the local hostname are answered with loopback
 * addresses, without a policy decision. Answers given are remembered in a
 * dns_map (address -> name) for transparent flows.
 */
#ifndef OPENSHELL_PROXY_DNS_H
#define OPENSHELL_PROXY_DNS_H

#include <stdbool.h>

#include "proxy/dns_msg.h"

struct policy;
struct policy_rule;
struct proxy;
struct dns_map;

enum dns_action {
	DNS_ACT_DROP = 0,     /* no reply at all */
	DNS_ACT_REPLY,        /* reply with rcode and no records */
	DNS_ACT_LOCAL,        /* loopback records (A 127.0.0.1 / AAAA ::1) */
	DNS_ACT_RESOLVE,      /* allowed A query: look it up, answer the result */
};

struct dns_decision {
	enum dns_action action;
	enum dns_rcode rcode;             /* for DNS_ACT_REPLY */
	bool denied;                      /* a policy denial: audit it */
	const struct policy_rule *rule;   /* allowing rule (smallest key) */
	char reason[160];
};

/* Pure: what to answer. parsed is dns_parse_query's result for q. */
void dns_decide(const struct policy *p, const char *hostname, enum dns_parse parsed,
		const struct dns_query *q, struct dns_decision *out);

/* The first rule (smallest key) with an endpoint whose host matches name,
 * or NULL. */
const struct policy_rule *dns_name_allowed(const struct policy *p, const char *name);

struct dns_responder;

/* Start on the loop of px. Takes the fds over (closes them on failure).
 * hostname may be NULL. stopped(arg) runs once after dns_responder_stop()
 * when every handle and lookup is finished; the responder is freed then. */
struct dns_responder *dns_responder_start(struct proxy *px, int udp_fd, int tcp_fd,
					  struct dns_map *map, const char *hostname,
					  void (*stopped)(void *arg), void *arg,
					  char *err, size_t errlen);
void dns_responder_stop(struct dns_responder *d);

#endif
