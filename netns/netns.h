/* netns.h - the sandbox network namespace and its nftables fence.
 *
 * Creates an anonymous network namespace held only by a file descriptor (so it
 * disappears with its last process and the fd), and everything of the sandbox's
 * network inside it: a veth pair whose both ends stay in the namespace (its
 * sandbox end carries the address and the default route; it leads nowhere),
 * the proxy's address on the namespace's loopback, routes over netlink
 * (libnl-3 route), and one atomic nftables ruleset (libnftables).
 *
 * Nothing is created in the caller's namespace: the only way out of the
 * sandbox is a socket the supervisor opened inside it (the proxy's listeners),
 * so closing the fd after the last process is the whole teardown and nothing
 * can be left behind for the caller to see.
 */
#ifndef OPENSHELL_NETNS_H
#define OPENSHELL_NETNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Limits and fixed values (documented in README). */
#define NETNS_RUN_ID_MAX       8     /* run id: 1..8 of [0-9A-Za-z]; random: 8 hex */
#define NETNS_SUBNET_BASE_A    10    /* subnets are 10.200.N.0/24 ... */
#define NETNS_SUBNET_BASE_B    200
#define NETNS_SUBNET_MAX       255   /* ... with N = 0..255, first free one wins */
#define NETNS_PREFIX_LEN       24
#define NETNS_PROXY_OCTET      1     /* proxy 10.200.N.1/32, on the sandbox's lo */
#define NETNS_SANDBOX_OCTET    2     /* sandbox 10.200.N.2/24, on its veth end */
#define NETNS_FENCE_TABLE      "openshell"          /* table inet openshell */
#define NETNS_LOG_PREFIX       "openshell:bypass:"  /* + run id + ": " */
#define NETNS_LOG_RATE         20    /* rejected packets copied to NFLOG per second ... */
#define NETNS_LOG_BURST        40    /* ... with this burst (the first of two limiters) */
#define NETNS_LOG_GROUP        7     /* NFLOG group of the fence's log rule (per netns) */
#define NETNS_LOG_SNAPLEN      256   /* bytes of each rejected packet copied */
#define NETNS_BYPASS_RCVBUF    (128 * 1024) /* listener receive buffer (<= rmem_max) */
#define NETNS_BYPASS_BATCH     64    /* datagrams read per netns_bypass_read call */
#define NETNS_BYPASS_EXT_MAX   8     /* IPv6 extension headers walked per packet */
#define NETNS_FENCE_MAX        4096  /* bytes of generated nftables ruleset text */
#define NETNS_ERR_MIN          64    /* err buffers should hold at least this */

struct netns {
	int ns_fd;                /* the sandbox namespace, O_CLOEXEC */
	char run_id[NETNS_RUN_ID_MAX + 1]; /* per-run id in names */
	char sandbox_if[16];      /* veth end with the address and default route */
	char peer_if[16];         /* its peer, also inside: packets sent there die */
	char proxy_ip[16];        /* dotted quad on the sandbox's lo, e.g. 10.200.0.1 */
	char sandbox_ip[16];      /* e.g. 10.200.0.2 */
	uint8_t prefix;           /* 24 */
};

struct netns_config {
	uint16_t proxy_port;      /* the only TCP port the sandbox may reach */
	const char *run_id;       /* NULL: random */
	/* Transparent capture (both 0: off). Inside the sandbox namespace, nat
	 * output redirects UDP/TCP port 53 to 127.0.0.1:capture_dns_port and
	 * every other IPv4 TCP connection that is not loopback or to the proxy
	 * port (the proxy address's other ports included) to
	 * 127.0.0.1:capture_tcp_port; only redirected flows may reach those
	 * two ports. The listeners themselves are the proxy's (created with
	 * netns_run_inside). */
	uint16_t capture_tcp_port;
	uint16_t capture_dns_port;
};

/* Create everything; on failure nothing is left behind and err holds why.
 * Needs CAP_SYS_ADMIN and CAP_NET_ADMIN. The subnet 10.200.N.0/24 is the first
 * one without an address in the caller's namespace, so a destination there
 * stays reachable through the proxy. The explicit proxy's listener must be
 * opened inside (netns_run_inside) on proxy_ip. *ns is always initialised
 * (ns_fd = -1 on failure), so netns_destroy is safe after any return.
 * Returns 0 or -1. */
int netns_create(struct netns *ns, const struct netns_config *cfg, char *err, size_t errlen);

/* Enter the sandbox namespace from a forked child (setns). Returns 0 or -errno. */
int netns_enter(const struct netns *ns);

/* Run fn(arg) with the calling thread inside the sandbox namespace, then return
 * to the original one. Returns fn's value, or -1 if switching in failed. If the
 * thread cannot be switched back (the kernel refused setns to a namespace we
 * hold an fd to) the process aborts rather than run on in the wrong namespace.
 * Sockets created by fn stay in the sandbox namespace. */
int netns_run_inside(const struct netns *ns, int (*fn)(void *arg), void *arg);

/* ---- bypass audit (bypass.c): what the fence rejected ----
 *
 * The fence's output chain copies every packet it is about to reject (after
 * its rate limit) to NFLOG group NETNS_LOG_GROUP of the sandbox namespace.
 * The listener is a netlink socket bound to that group inside the namespace.
 */
struct netns_bypass_event {
	int family;                   /* AF_INET or AF_INET6 */
	uint8_t ipproto;              /* IPPROTO_TCP, _UDP, _ICMP, _ICMPV6, or other */
	bool has_ports;               /* TCP/UDP header was inside the copied bytes */
	struct sockaddr_storage src;  /* sockaddr_in/_in6; port 0 without has_ports */
	struct sockaddr_storage dst;
	bool has_icmp;
	uint8_t icmp_type, icmp_code;
	bool has_uid;                 /* the kernel named the sending socket's owner */
	uint32_t uid;
};

/* Protocol name for an event: "tcp", "udp", "icmp" (v4 and v6) or "other". */
const char *netns_bypass_proto_name(uint8_t ipproto);

/* Parse one copied IP packet (IPv4 or IPv6, at most len bytes read) into ev
 * (has_uid false: the uid comes with the NFLOG message, not the packet).
 * Returns 0, or -1 if it is not an IP packet with a complete network header. */
int netns_bypass_parse_packet(const uint8_t *pkt, size_t len, struct netns_bypass_event *ev);

struct netns_bypass;

/* Open the listener inside ns (bound to NETNS_LOG_GROUP, non-blocking,
 * CLOEXEC) and accept only messages with this namespace's log prefix.
 * Returns NULL with why in err. */
struct netns_bypass *netns_bypass_open(const struct netns *ns, char *err, size_t errlen);

/* The socket to poll for readability. */
int netns_bypass_fd(const struct netns_bypass *b);

typedef void (*netns_bypass_cb)(void *ud, const struct netns_bypass_event *ev);

/* Read what is queued (at most NETNS_BYPASS_BATCH datagrams) and call cb once
 * per rejected packet. *lost (may be NULL) is increased by the events that
 * could not be delivered: socket overruns, truncated, malformed or foreign
 * messages. Returns the number of events delivered, or -1 on a socket error
 * other than "nothing queued" / overrun. */
int netns_bypass_read(struct netns_bypass *b, netns_bypass_cb cb, void *ud, unsigned long *lost);

/* Close the socket and free. NULL is fine. */
void netns_bypass_close(struct netns_bypass *b);

/* Close the fd. The kernel takes the namespace, its links and its ruleset as
 * soon as nothing else holds it (its processes, sockets opened inside); none
 * of it was ever visible outside, so there is nothing to wait for. Safe to
 * call twice and after a failed netns_create. */
void netns_destroy(struct netns *ns);

#endif
