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

/* veth pair host_if <-> sandbox_if with sandbox_if created directly in the
 * namespace ns_fd refers to. Fails if host_if already exists. */
int nlops_veth_create(struct nl_sock *sk, const char *host_if, const char *sandbox_if,
		      int ns_fd, char *err, size_t errlen);

int nlops_ifindex(struct nl_sock *sk, const char *name, int *ifindex, char *err, size_t errlen);

int nlops_addr_add(struct nl_sock *sk, int ifindex, const char *ip, uint8_t prefix,
		   char *err, size_t errlen);
int nlops_addr_del(struct nl_sock *sk, int ifindex, const char *ip, uint8_t prefix,
		   char *err, size_t errlen);

int nlops_link_up(struct nl_sock *sk, const char *name, char *err, size_t errlen);

/* addrgenmode none: no IPv6 link-local address, so no kernel ND/MLD traffic. */
int nlops_no_ipv6_autoconf(struct nl_sock *sk, const char *name, char *err, size_t errlen);

/* default via gw dev ifindex (IPv4, main table). */
int nlops_default_route(struct nl_sock *sk, const char *gw, int ifindex,
			char *err, size_t errlen);

/* Delete link name. Returns 0 if deleted, 1 if it did not exist, -1 on error. */
int nlops_link_delete(struct nl_sock *sk, const char *name, char *err, size_t errlen);

/* ---- raw rtnetlink, no libnl (netns_release) ---- */

/* A NETLINK_ROUTE socket subscribed to RTNLGRP_NSID in the calling thread's
 * namespace (it sees ids of other namespaces come and go). Returns fd or -1. */
int nlops_nsid_watch_open(void);

/* The id the calling thread's namespace has for the namespace ns_fd refers to,
 * or -1 if it has none (or the query failed). */
int32_t nlops_nsid_of(int ns_fd);

/* Wait on a watch socket until RTM_DELNSID for nsid arrives: the kernel has
 * begun destroying that namespace (it did so because its last reference went
 * away; it cannot be revived). At most timeout_ms. Returns 1 seen, 0 timeout,
 * -1 on a socket error or overrun (the event may have been lost). */
int nlops_nsid_wait_deleted(int fd, int32_t nsid, unsigned timeout_ms);

/* Mark every 10.200.N.0/24 holding an IPv4 address of an interface other than
 * skip_ifindex (0: none skipped). */
int nlops_used_subnets(struct nl_sock *sk, int skip_ifindex,
		       uint8_t used[NETNS_SUBNET_BITMAP_BYTES], char *err, size_t errlen);

#endif
