/* nlops.c - rtnetlink steps over libnl-3 route. */
#include "netns/nlops.h"

#include <linux/if.h>
#include <linux/if_link.h>
#include <linux/ip.h>
#include <linux/rtnetlink.h>
#include <netlink/addr.h>
#include <netlink/cache.h>
#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/inet.h>
#include <netlink/route/link/inet6.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/nexthop.h>
#include <netlink/route/route.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

__attribute__((format(printf, 4, 5)))
static int fail(char *err, size_t errlen, int nlerr, const char *fmt, ...)
{
	char step[128];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(step, sizeof(step), fmt, ap);
	va_end(ap);
	snprintf(err, errlen, "%s: %s", step, nl_geterror(nlerr < 0 ? -nlerr : nlerr));
	return -1;
}

struct nl_sock *nlops_open(char *err, size_t errlen)
{
	struct nl_sock *sk = nl_socket_alloc();
	if (sk == NULL) {
		snprintf(err, errlen, "netlink socket: out of memory");
		return NULL;
	}
	int rc = nl_connect(sk, NETLINK_ROUTE);
	if (rc < 0) {
		fail(err, errlen, rc, "netlink socket");
		nl_socket_free(sk);
		return NULL;
	}
	return sk;
}

void nlops_close(struct nl_sock *sk)
{
	if (sk != NULL)
		nl_socket_free(sk);
}

int nlops_veth_create(struct nl_sock *sk, const char *name, const char *peer_name,
		      char *err, size_t errlen)
{
	struct rtnl_link *veth = rtnl_link_veth_alloc();
	if (veth == NULL) {
		snprintf(err, errlen, "create veth %s: out of memory", name);
		return -1;
	}
	struct rtnl_link *peer = rtnl_link_veth_get_peer(veth); /* a reference: put below */
	rtnl_link_set_name(veth, name);
	rtnl_link_set_name(peer, peer_name);
	int rc = rtnl_link_add(sk, veth, NLM_F_CREATE | NLM_F_EXCL);
	rtnl_link_put(peer);
	rtnl_link_veth_release(veth);
	if (rc < 0)
		return fail(err, errlen, rc, "create veth %s (peer %s)", name, peer_name);
	return 0;
}

static int link_get(struct nl_sock *sk, const char *name, struct rtnl_link **link)
{
	*link = NULL;
	return rtnl_link_get_kernel(sk, 0, name, link);
}

int nlops_ifindex(struct nl_sock *sk, const char *name, int *ifindex, char *err, size_t errlen)
{
	struct rtnl_link *link;
	int rc = link_get(sk, name, &link);
	if (rc < 0)
		return fail(err, errlen, rc, "look up interface %s", name);
	*ifindex = rtnl_link_get_ifindex(link);
	rtnl_link_put(link);
	if (*ifindex <= 0) {
		snprintf(err, errlen, "look up interface %s: no interface index", name);
		return -1;
	}
	return 0;
}

static int addr_build(int ifindex, const char *ip, uint8_t prefix, struct rtnl_addr **out)
{
	char text[32];
	struct nl_addr *local = NULL;

	*out = NULL;
	snprintf(text, sizeof(text), "%s/%u", ip, (unsigned)prefix);
	int rc = nl_addr_parse(text, AF_INET, &local);
	if (rc < 0)
		return rc;
	struct rtnl_addr *addr = rtnl_addr_alloc();
	if (addr == NULL) {
		nl_addr_put(local);
		return -NLE_NOMEM;
	}
	rtnl_addr_set_ifindex(addr, ifindex);
	rtnl_addr_set_family(addr, AF_INET);
	rc = rtnl_addr_set_local(addr, local);
	rtnl_addr_set_prefixlen(addr, prefix);
	nl_addr_put(local);
	if (rc < 0) {
		rtnl_addr_put(addr);
		return rc;
	}
	*out = addr;
	return 0;
}

int nlops_addr_add(struct nl_sock *sk, int ifindex, const char *ip, uint8_t prefix,
		   char *err, size_t errlen)
{
	struct rtnl_addr *addr;
	int rc = addr_build(ifindex, ip, prefix, &addr);
	if (rc == 0) {
		rc = rtnl_addr_add(sk, addr, NLM_F_EXCL);
		rtnl_addr_put(addr);
	}
	if (rc < 0)
		return fail(err, errlen, rc, "add address %s", ip);
	return 0;
}

int nlops_addr_del(struct nl_sock *sk, int ifindex, const char *ip, uint8_t prefix,
		   char *err, size_t errlen)
{
	struct rtnl_addr *addr;
	int rc = addr_build(ifindex, ip, prefix, &addr);
	if (rc == 0) {
		rc = rtnl_addr_delete(sk, addr, 0);
		rtnl_addr_put(addr);
	}
	if (rc < 0)
		return fail(err, errlen, rc, "delete address %s", ip);
	return 0;
}

/* Look link name up, let edit fill a change request, send it. Returns 0 or
 * a negative libnl error. */
static int link_change(struct nl_sock *sk, const char *name, int (*edit)(struct rtnl_link *))
{
	struct rtnl_link *link;
	int rc = link_get(sk, name, &link);
	if (rc < 0)
		return rc;
	struct rtnl_link *change = rtnl_link_alloc();
	if (change == NULL) {
		rtnl_link_put(link);
		return -NLE_NOMEM;
	}
	rc = edit(change);
	if (rc == 0)
		rc = rtnl_link_change(sk, link, change, 0);
	rtnl_link_put(change);
	rtnl_link_put(link);
	return rc;
}

static int edit_up(struct rtnl_link *change)
{
	rtnl_link_set_flags(change, IFF_UP);
	return 0;
}

static int edit_no_forwarding(struct rtnl_link *change)
{
	return rtnl_link_inet_set_conf(change, IPV4_DEVCONF_FORWARDING, 0);
}

static int edit_no_autoconf(struct rtnl_link *change)
{
	return rtnl_link_inet6_set_addr_gen_mode(change, IN6_ADDR_GEN_MODE_NONE);
}

int nlops_link_up(struct nl_sock *sk, const char *name, char *err, size_t errlen)
{
	int rc = link_change(sk, name, edit_up);
	return rc < 0 ? fail(err, errlen, rc, "set %s up", name) : 0;
}

int nlops_no_forwarding(struct nl_sock *sk, const char *name, char *err, size_t errlen)
{
	int rc = link_change(sk, name, edit_no_forwarding);
	return rc < 0 ? fail(err, errlen, rc, "disable forwarding on %s", name) : 0;
}

/* Kernel IPv6 autoconfiguration (link-local address, DAD, router
 * solicitations) would make the kernel itself send packets the fence rejects
 * and logs as bypass attempts; the sandbox uses IPv4 only. A kernel without
 * IPv6 has nothing to switch off. */
int nlops_no_ipv6_autoconf(struct nl_sock *sk, const char *name, char *err, size_t errlen)
{
	int rc = link_change(sk, name, edit_no_autoconf);
	if (rc == -NLE_AF_NOSUPPORT || rc == -NLE_OPNOTSUPP)
		return 0;
	return rc < 0 ? fail(err, errlen, rc, "disable IPv6 autoconf on %s", name) : 0;
}

struct route_spec {
	const char *dst;     /* "a.b.c.d/len" */
	uint8_t table, scope, type;
	int ifindex;
	const char *src;     /* preferred source, or NULL */
};

/* One IPv4 route, no gateway: the link itself is the way. */
static int route_build(const struct route_spec *spec, struct rtnl_route **out)
{
	struct nl_addr *dst = NULL, *src = NULL;
	struct rtnl_route *route = NULL;
	struct rtnl_nexthop *nh = NULL;
	int rc;

	*out = NULL;
	if ((rc = nl_addr_parse(spec->dst, AF_INET, &dst)) < 0 ||
	    (spec->src != NULL && (rc = nl_addr_parse(spec->src, AF_INET, &src)) < 0))
		goto out;
	route = rtnl_route_alloc();
	nh = rtnl_route_nh_alloc();
	if (route == NULL || nh == NULL) {
		rc = -NLE_NOMEM;
		goto out;
	}
	rtnl_route_set_family(route, AF_INET);
	rtnl_route_set_table(route, spec->table);
	rtnl_route_set_scope(route, spec->scope);
	rtnl_route_set_protocol(route, RTPROT_STATIC);
	rtnl_route_set_type(route, spec->type);
	if ((rc = rtnl_route_set_dst(route, dst)) < 0 ||
	    (src != NULL && (rc = rtnl_route_set_pref_src(route, src)) < 0))
		goto out;
	rtnl_route_nh_set_ifindex(nh, spec->ifindex);
	rtnl_route_add_nexthop(route, nh); /* route owns nh from here */
	nh = NULL;
	*out = route;
	route = NULL;
out:
	if (nh != NULL)
		rtnl_route_nh_free(nh);
	if (route != NULL)
		rtnl_route_put(route);
	if (src != NULL)
		nl_addr_put(src);
	if (dst != NULL)
		nl_addr_put(dst);
	return rc < 0 ? rc : 0;
}

static int route_put(struct nl_sock *sk, const struct route_spec *spec, int flags)
{
	struct rtnl_route *route;
	int rc = route_build(spec, &route);
	if (rc == 0) {
		rc = rtnl_route_add(sk, route, flags);
		rtnl_route_put(route);
	}
	return rc;
}

int nlops_default_route(struct nl_sock *sk, int ifindex, char *err, size_t errlen)
{
	struct route_spec spec = { "0.0.0.0/0", RT_TABLE_MAIN, RT_SCOPE_LINK, RTN_UNICAST,
				   ifindex, NULL };
	int rc = route_put(sk, &spec, NLM_F_EXCL);
	if (rc < 0)
		return fail(err, errlen, rc, "add default route on interface %d", ifindex);
	return 0;
}

int nlops_local_source(struct nl_sock *sk, int ifindex, const char *ip, const char *src,
		       char *err, size_t errlen)
{
	char dst[24];
	snprintf(dst, sizeof(dst), "%s/32", ip);
	struct route_spec spec = { dst, RT_TABLE_LOCAL, RT_SCOPE_HOST, RTN_LOCAL, ifindex, src };
	int rc = route_put(sk, &spec, NLM_F_REPLACE);
	if (rc < 0)
		return fail(err, errlen, rc, "set source %s for local %s", src, ip);
	return 0;
}

static void mark_addr(struct nl_object *obj, void *arg)
{
	uint8_t *used = arg;
	struct rtnl_addr *addr = (struct rtnl_addr *)obj;

	if (rtnl_addr_get_family(addr) != AF_INET)
		return;
	struct nl_addr *local = rtnl_addr_get_local(addr);
	if (local == NULL || nl_addr_get_len(local) != 4)
		return;
	netns_subnet_mark(used, nl_addr_get_binary_addr(local));
}

int nlops_used_subnets(struct nl_sock *sk, uint8_t used[NETNS_SUBNET_BITMAP_BYTES], char *err,
		       size_t errlen)
{
	struct nl_cache *cache = NULL;
	int rc = rtnl_addr_alloc_cache(sk, &cache);
	if (rc < 0)
		return fail(err, errlen, rc, "list addresses");
	nl_cache_foreach(cache, mark_addr, used);
	nl_cache_free(cache);
	return 0;
}
