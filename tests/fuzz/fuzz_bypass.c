/* fuzz_bypass.c - libFuzzer target for the bypass audit's packet parser:
 * the headers of a packet the sandbox sent and the fence copied to NFLOG. */
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "netns/netns.h"

static uint16_t port_of(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET ? ((const struct sockaddr_in *)ss)->sin_port
					: ((const struct sockaddr_in6 *)ss)->sin6_port;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct netns_bypass_event ev;
	if (netns_bypass_parse_packet(data, size, &ev) != 0)
		return 0;
	if (ev.family != AF_INET && ev.family != AF_INET6)
		abort();
	if (ev.src.ss_family != ev.family || ev.dst.ss_family != ev.family)
		abort();
	if (ev.has_ports && ev.ipproto != IPPROTO_TCP && ev.ipproto != IPPROTO_UDP)
		abort();
	if (!ev.has_ports && (port_of(&ev.src) != 0 || port_of(&ev.dst) != 0))
		abort();
	if (ev.has_icmp && ev.ipproto != IPPROTO_ICMP && ev.ipproto != IPPROTO_ICMPV6)
		abort();
	if (ev.has_uid)
		abort(); /* only the listener sets it */
	const char *name = netns_bypass_proto_name(ev.ipproto);
	if (name == NULL || strlen(name) > 5)
		abort();
	return 0;
}
