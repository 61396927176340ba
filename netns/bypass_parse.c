/* bypass_parse.c - bounded parse of one packet the fence copied to NFLOG.
 *
 * The bytes come from the kernel, but they are what the sandbox wrote: every
 * read is checked against len, IPv6 extension headers are walked at most
 * NETNS_BYPASS_EXT_MAX deep, and a header cut off by the snap length just
 * leaves the ports out.
 */
#include <netinet/in.h>
#include <string.h>

#include "netns/netns.h"

#define IPV4_MIN_HDR 20
#define IPV6_HDR     40
#define IPV6_EXT_MIN 8
#define IPV4_FRAG_OFFSET_MASK 0x1fff
#define IPV6_FRAG_OFFSET_MASK 0xfff8

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

const char *netns_bypass_proto_name(uint8_t ipproto)
{
	switch (ipproto) {
	case IPPROTO_TCP:
		return "tcp";
	case IPPROTO_UDP:
		return "udp";
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		return "icmp";
	default:
		return "other";
	}
}

static void set_port(struct sockaddr_storage *ss, const uint8_t *p)
{
	uint16_t port;
	memcpy(&port, p, sizeof port); /* stays in network order */
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = port;
	else
		((struct sockaddr_in6 *)ss)->sin6_port = port;
}

/* The transport header at p (len bytes of it were copied). */
static void parse_l4(const uint8_t *p, size_t len, struct netns_bypass_event *ev)
{
	switch (ev->ipproto) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
		if (len < 4)
			return;
		set_port(&ev->src, p);
		set_port(&ev->dst, p + 2);
		ev->has_ports = true;
		return;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		if (len < 2)
			return;
		ev->icmp_type = p[0];
		ev->icmp_code = p[1];
		ev->has_icmp = true;
		return;
	default:
		return;
	}
}

static int parse_ipv4(const uint8_t *p, size_t len, struct netns_bypass_event *ev)
{
	if (len < IPV4_MIN_HDR)
		return -1;
	size_t ihl = (size_t)(p[0] & 0x0f) * 4;
	if (ihl < IPV4_MIN_HDR || ihl > len)
		return -1;
	struct sockaddr_in *src = (struct sockaddr_in *)&ev->src;
	struct sockaddr_in *dst = (struct sockaddr_in *)&ev->dst;
	src->sin_family = dst->sin_family = AF_INET;
	memcpy(&src->sin_addr, p + 12, 4);
	memcpy(&dst->sin_addr, p + 16, 4);
	ev->family = AF_INET;
	ev->ipproto = p[9];
	if ((be16(p + 6) & IPV4_FRAG_OFFSET_MASK) != 0)
		return 0; /* a later fragment carries no transport header */
	parse_l4(p + ihl, len - ihl, ev);
	return 0;
}

/* Length of the IPv6 extension header nh at p, 0 if nh is not one we walk
 * (then it is the transport protocol), or -1 if it does not fit in len. */
static long ipv6_ext_len(uint8_t nh, const uint8_t *p, size_t len)
{
	switch (nh) {
	case IPPROTO_HOPOPTS:
	case IPPROTO_ROUTING:
	case IPPROTO_DSTOPTS:
		return len < IPV6_EXT_MIN ? -1 : ((long)p[1] + 1) * 8;
	case IPPROTO_FRAGMENT:
		return len < IPV6_EXT_MIN ? -1 : IPV6_EXT_MIN;
	case IPPROTO_AH:
		return len < IPV6_EXT_MIN ? -1 : ((long)p[1] + 2) * 4;
	default:
		return 0;
	}
}

static int parse_ipv6(const uint8_t *p, size_t len, struct netns_bypass_event *ev)
{
	if (len < IPV6_HDR)
		return -1;
	struct sockaddr_in6 *src = (struct sockaddr_in6 *)&ev->src;
	struct sockaddr_in6 *dst = (struct sockaddr_in6 *)&ev->dst;
	src->sin6_family = dst->sin6_family = AF_INET6;
	memcpy(&src->sin6_addr, p + 8, 16);
	memcpy(&dst->sin6_addr, p + 24, 16);
	ev->family = AF_INET6;
	uint8_t nh = p[6];
	size_t off = IPV6_HDR;
	for (int depth = 0; depth <= NETNS_BYPASS_EXT_MAX; depth++) {
		ev->ipproto = nh;
		long ext = ipv6_ext_len(nh, p + off, len - off);
		if (ext == 0) {
			parse_l4(p + off, len - off, ev);
			return 0;
		}
		if (ext < 0 || (size_t)ext > len - off || depth == NETNS_BYPASS_EXT_MAX)
			return 0; /* cut off or too deep: protocol unknown, no ports */
		if (nh == IPPROTO_FRAGMENT && (be16(p + off + 2) & IPV6_FRAG_OFFSET_MASK) != 0) {
			ev->ipproto = p[off];
			return 0; /* a later fragment carries no transport header */
		}
		nh = p[off];
		off += (size_t)ext;
	}
	return 0;
}

int netns_bypass_parse_packet(const uint8_t *pkt, size_t len, struct netns_bypass_event *ev)
{
	if (ev == NULL)
		return -1;
	memset(ev, 0, sizeof *ev);
	if (pkt == NULL || len == 0)
		return -1;
	switch (pkt[0] >> 4) {
	case 4:
		return parse_ipv4(pkt, len, ev);
	case 6:
		return parse_ipv6(pkt, len, ev);
	default:
		return -1;
	}
}
