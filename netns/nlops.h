/* nlops.h - the rtnetlink steps of netns/ over libnl-3 route. Private.
 *
 * Every function works in the namespace the socket was opened in, returns 0
 * or -1 and on failure writes "<step>: <netlink error>" into err.
 */
#ifndef OPENSHELL_NETNS_NLOPS_H
#define OPENSHELL_NETNS_NLOPS_H

#include <stddef.h>
#include <stdint.h>

#include "netns/plan.h"

struct nl_sock;

/* A connected NETLINK_ROUTE socket in the calling thread's namespace. */
struct nl_sock *nlops_open(char *err, size_t errlen);
void nlops_close(struct nl_sock *sk);

/* veth pair name <-> peer_name, both in the socket's namespace. Fails if
 * either exists. */
int nlops_veth_create(struct nl_sock *sk, const char *name, const char *peer_name,
		      char *err, size_t errlen);

int nlops_ifindex(struct nl_sock *sk, const char *name, int *ifindex, char *err, size_t errlen);

int nlops_addr_add(struct nl_sock *sk, int ifindex, const char *ip, uint8_t prefix,
		   char *err, size_t errlen);
int nlops_addr_del(struct nl_sock *sk, int ifindex, const char *ip, uint8_t prefix,
		   char *err, size_t errlen);

int nlops_link_up(struct nl_sock *sk, const char *name, char *err, size_t errlen);

/* net.ipv4.conf.<name>.forwarding = 0: what arrives on the link is never
 * routed on (a new namespace inherits IPv4 forwarding from the host). */
int nlops_no_forwarding(struct nl_sock *sk, const char *name, char *err, size_t errlen);

/* addrgenmode none: no IPv6 link-local address, so no kernel ND/MLD traffic. */
int nlops_no_ipv6_autoconf(struct nl_sock *sk, const char *name, char *err, size_t errlen);

/* default dev ifindex scope link (IPv4, main table, no gateway). */
int nlops_default_route(struct nl_sock *sk, int ifindex, char *err, size_t errlen);

/* Replace the kernel's local route of ip (on ifindex) with one whose
 * preferred source is src: connections to ip then come from src. */
int nlops_local_source(struct nl_sock *sk, int ifindex, const char *ip, const char *src,
		       char *err, size_t errlen);

/* Mark every 10.200.N.0/24 holding an IPv4 address here. */
int nlops_used_subnets(struct nl_sock *sk, uint8_t used[NETNS_SUBNET_BITMAP_BYTES], char *err,
		       size_t errlen);

#endif
