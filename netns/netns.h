/* netns.h - the sandbox network namespace and its nftables fence.
 *
 * Creates an anonymous network namespace held only by a file descriptor (so it
 * disappears with its last process and the fd), a veth pair joining it to the
 * caller's namespace, addresses and routes over netlink (libnl-3 route), and
 * one atomic nftables ruleset (libnftables) inside it.
 */
#ifndef OPENSHELL_NETNS_H
#define OPENSHELL_NETNS_H

#include <stddef.h>
#include <stdint.h>

/* Limits and fixed values (documented in README). */
#define NETNS_RUN_ID_MAX       8     /* run id: 1..8 of [0-9A-Za-z]; random: 8 hex */
#define NETNS_SUBNET_BASE_A    10    /* subnets are 10.200.N.0/24 ... */
#define NETNS_SUBNET_BASE_B    200
#define NETNS_SUBNET_MAX       255   /* ... with N = 0..255, first free one wins */
#define NETNS_PREFIX_LEN       24
#define NETNS_HOST_OCTET       1     /* host end 10.200.N.1 */
#define NETNS_SANDBOX_OCTET    2     /* sandbox end 10.200.N.2 */
#define NETNS_FENCE_TABLE      "openshell"          /* table inet openshell */
#define NETNS_LOG_PREFIX       "openshell:bypass:"  /* + run id + ": " */
#define NETNS_LOG_RATE         5     /* bypass log lines per second ... */
#define NETNS_LOG_BURST        10    /* ... with this burst (kernel log only) */
#define NETNS_FENCE_MAX        4096  /* bytes of generated nftables ruleset text */
#define NETNS_ERR_MIN          64    /* err buffers should hold at least this */

struct netns {
	int ns_fd;                /* the sandbox namespace, O_CLOEXEC */
	char run_id[NETNS_RUN_ID_MAX + 1]; /* per-run id in names */
	char host_if[16];         /* veth end in the caller's namespace */
	char sandbox_if[16];      /* veth end inside the sandbox */
	char host_ip[16];         /* dotted quad, e.g. 10.200.0.1 */
	char sandbox_ip[16];      /* e.g. 10.200.0.2 */
	uint8_t prefix;           /* 24 */
};

struct netns_config {
	uint16_t proxy_port;      /* the only TCP port the sandbox may reach */
	const char *run_id;       /* NULL: random */
	/* Transparent capture (both 0: off). Inside the sandbox namespace, nat
	 * output redirects UDP/TCP port 53 to 127.0.0.1:capture_dns_port and
	 * every other non-loopback IPv4 TCP connection (except to the proxy)
	 * to 127.0.0.1:capture_tcp_port; only redirected flows may reach those
	 * two ports. The listeners themselves are the proxy's (created with
	 * netns_run_inside). */
	uint16_t capture_tcp_port;
	uint16_t capture_dns_port;
};

/* Create everything; on failure nothing is left behind and err holds why.
 * Must be called while the process is single-threaded, with CAP_SYS_ADMIN and
 * CAP_NET_ADMIN, in the namespace the host veth end should live in. *ns is
 * always initialised (ns_fd = -1 on failure), so netns_destroy is safe after
 * any return. Returns 0 or -1. */
int netns_create(struct netns *ns, const struct netns_config *cfg, char *err, size_t errlen);

/* Enter the sandbox namespace from a forked child (setns). Returns 0 or -errno. */
int netns_enter(const struct netns *ns);

/* Run fn(arg) with the calling thread inside the sandbox namespace, then return
 * to the original one. Returns fn's value, or -1 if switching in failed. If the
 * thread cannot be switched back (the kernel refused setns to a namespace we
 * hold an fd to) the process aborts rather than run on in the wrong namespace.
 * Sockets created by fn stay in the sandbox namespace. */
int netns_run_inside(const struct netns *ns, int (*fn)(void *arg), void *arg);

/* Delete the veth (and so its peer) and close the fd. Safe to call twice and
 * after a failed netns_create. Call it in the namespace netns_create ran in. */
void netns_destroy(struct netns *ns);

#endif
