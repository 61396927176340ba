/* fence.c - nftables fence text and its atomic load through libnftables.
 *
 * Output chain, policy drop. Nothing leaves by a link other than lo except
 * what the nat chain redirected. Accepted: replies, TCP to the proxy port,
 * loopback to local addresses (`fib daddr type local`) other than the proxy
 * address.
 * Everything else goes to the deny chain: counted, copied to NFLOG for the
 * bypass audit (rate limited; the kernel adds the socket's uid) and rejected
 * explicitly so clients fail at once instead of timing out; the drop policy
 * only catches what no reject rule matched.
 *
 * (A socket bound to lo that dials another host is captured, or refused.)
 *
 * Input chain, policy drop: only loopback and replies to what the output
 * chain let out. The namespace has no link to the outside, so no packet from
 * outside can arrive at all; the chain keeps it so should a link ever appear:
 * a packet from outside would otherwise open a conntrack entry and the
 * sandbox's answers would leave as `ct state established`, a two-way channel
 * around the proxy. (No forward chain: the veth peer does not forward, see
 * netns.c; each hooked chain costs start-up time.)
 *
 * With transparent capture a nat output chain (priority -100, before the
 * filter) redirects port-53 traffic, every IPv4 TCP connection to an address
 * that is not local and TCP to the proxy address on any port but the proxy's
 * to the proxy's listeners on 127.0.0.1 of this namespace.
 * REDIRECT in this namespace is what makes SO_ORIGINAL_DST work for the
 * listener (its conntrack did the NAT). The capture ports are admitted only
 * with `ct status dnat`, before loopback is accepted, so dialing them
 * directly is refused (through the deny chain, so it is audited too).
 */
#include "netns/fence.h"

#include <arpa/inet.h>
#include <nftables/libnftables.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "netns/netns.h"
#include "netns/plan.h"

struct text {
	char *buf;
	size_t len;
	size_t used;
	bool overflow;
};

__attribute__((format(printf, 2, 3)))
static void text_add(struct text *t, const char *fmt, ...)
{
	if (t->overflow)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(t->buf + t->used, t->len - t->used, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= t->len - t->used) {
		t->overflow = true;
		return;
	}
	t->used += (size_t)n;
}

static bool ipv4_valid(const char *ip)
{
	struct in_addr a;
	return ip != NULL && inet_pton(AF_INET, ip, &a) == 1;
}

/* The proxy address is on the sandbox's loopback, so it is checked before
 * loopback is accepted: only the proxy port is open there (with capture, TCP
 * to its other ports was redirected above, UDP to port 53 too); anything else
 * sent to it outside an established flow is a bypass attempt. Replies (the
 * proxy's own packets to the sandbox) are accepted first. */
static void add_accepts(struct text *t, const char *proxy_ip, uint16_t port)
{
	text_add(t, "\t\tct state established,related accept\n");
	text_add(t, "\t\toifname \"lo\" ip daddr %s tcp dport %u accept\n", proxy_ip,
		 (unsigned)port);
	text_add(t, "\t\tip daddr %s counter goto deny\n", proxy_ip);
	/* A socket bound to lo (SO_BINDTODEVICE) that dials another host: its
	 * packets would loop on lo and be dropped as martians, a hang. */
	text_add(t, "\t\toifname \"lo\" fib daddr type local accept\n");
}

/* run_id is restricted to [0-9A-Za-z] by the caller, so it needs no quoting.
 * The packet goes to NFLOG (the bypass listener, netns/bypass.c) with the
 * sending socket's uid; queue-threshold 1 sends it at once, while the sender
 * still has the socket open and can be named. */
static void add_log(struct text *t, const char *run_id)
{
	text_add(t, "\t\tcounter limit rate %d/second burst %d packets "
		 "log prefix \"%s%s: \" group %d snaplen %d queue-threshold 1\n",
		 NETNS_LOG_RATE, NETNS_LOG_BURST, NETNS_LOG_PREFIX, run_id, NETNS_LOG_GROUP,
		 NETNS_LOG_SNAPLEN);
}

static void add_rejects(struct text *t)
{
	text_add(t, "\t\tmeta nfproto ipv4 meta l4proto tcp counter reject with tcp reset\n");
	text_add(t, "\t\tmeta nfproto ipv6 meta l4proto tcp counter reject with tcp reset\n");
	text_add(t, "\t\tmeta nfproto ipv4 meta l4proto udp counter "
		 "reject with icmp type port-unreachable\n");
	text_add(t, "\t\tmeta nfproto ipv6 meta l4proto udp counter "
		 "reject with icmpv6 type port-unreachable\n");
	text_add(t, "\t\tcounter reject with icmpx type admin-prohibited\n");
}

/* Every packet the output chain refuses ends here: logged for the bypass
 * audit (rate limited), then rejected explicitly. */
static void add_deny_chain(struct text *t, const char *run_id)
{
	text_add(t, "\tchain deny {\n");
	add_log(t, run_id);
	add_rejects(t);
	text_add(t, "\t}\n");
}

/* Nothing from outside opens a flow: see the top of this file. */
static void add_input_chain(struct text *t)
{
	text_add(t, "\tchain input {\n");
	text_add(t, "\t\ttype filter hook input priority 0; policy drop;\n");
	text_add(t, "\t\tiifname \"lo\" accept\n");
	text_add(t, "\t\tct state established,related accept\n");
	text_add(t, "\t\tcounter drop\n");
	text_add(t, "\t}\n");
}

/* Transparent capture (nat output, before the filter chain): DNS to the
 * responder, loopback and the explicit proxy untouched, every other IPv4
 * TCP connection (the proxy address's other ports included: the policy DNS
 * answers host.openshell.internal with it) to the transparent listener.
 * IPv6 is not redirected: the namespace has no IPv6 route and the filter
 * chain rejects it. */
static void add_capture_chain(struct text *t, const char *proxy_ip, uint16_t port,
			      uint16_t tcp_port, uint16_t dns_port)
{
	text_add(t, "\tchain capture {\n");
	text_add(t, "\t\ttype nat hook output priority -100; policy accept;\n");
	text_add(t, "\t\tmeta nfproto ipv4 udp dport 53 counter redirect to :%u\n",
		 (unsigned)dns_port);
	text_add(t, "\t\tmeta nfproto ipv4 tcp dport 53 counter redirect to :%u\n",
		 (unsigned)dns_port);
	/* the proxy address is on lo: its other ports are captured like any host */
	text_add(t, "\t\tip daddr %s tcp dport != %u counter redirect to :%u\n", proxy_ip,
		 (unsigned)port, (unsigned)tcp_port);
	/* the proxy port is never redirected, whatever link a socket is bound to */
	text_add(t, "\t\tip daddr %s return\n", proxy_ip);
	/* Local destinations, not "oifname lo": a socket bound to lo that dials
	 * another host is captured like any other. */
	text_add(t, "\t\tfib daddr type local return\n");
	text_add(t, "\t\tmeta nfproto ipv4 meta l4proto tcp counter redirect to :%u\n",
		 (unsigned)tcp_port);
	text_add(t, "\t}\n");
}

/* Before loopback is accepted: the capture ports take only redirected
 * flows, so a direct dial to 127.0.0.1:<port> is refused. */
static void add_capture_guards(struct text *t, uint16_t tcp_port, uint16_t dns_port)
{
	text_add(t, "\t\ttcp dport { %u, %u } ct status dnat accept\n", (unsigned)tcp_port,
		 (unsigned)dns_port);
	text_add(t, "\t\tudp dport %u ct status dnat accept\n", (unsigned)dns_port);
	text_add(t, "\t\ttcp dport { %u, %u } counter goto deny\n", (unsigned)tcp_port,
		 (unsigned)dns_port);
	text_add(t, "\t\tudp dport %u counter goto deny\n", (unsigned)dns_port);
}

int netns_fence_ruleset_capture(char *buf, size_t len, const char *proxy_ip, uint16_t port,
				const char *run_id, uint16_t tcp_port, uint16_t dns_port)
{
	bool capture = tcp_port != 0 || dns_port != 0;
	if (buf == NULL || len == 0 || !ipv4_valid(proxy_ip) || port == 0 ||
	    !netns_run_id_valid(run_id))
		return -1;
	if (capture && (tcp_port == 0 || dns_port == 0 || tcp_port == dns_port ||
			tcp_port == port || dns_port == port))
		return -1;
	struct text t = { .buf = buf, .len = len };
	text_add(&t, "table inet %s {\n", NETNS_FENCE_TABLE);
	add_input_chain(&t);
	if (capture)
		add_capture_chain(&t, proxy_ip, port, tcp_port, dns_port);
	add_deny_chain(&t, run_id);
	text_add(&t, "\tchain output {\n");
	text_add(&t, "\t\ttype filter hook output priority 0; policy drop;\n");
	/* Nothing legitimate is routed to another link than lo but the flows
	 * the nat chain redirected (the hook still names the first route's
	 * link for them): refuse the rest at once, a socket bound to the veth
	 * too (SO_BINDTODEVICE needs no privilege). `& dnat == 0`, not
	 * `!= dnat`: the latter compares the whole status word. */
	text_add(&t, "\t\toifname != \"lo\" ct status & dnat == 0 counter goto deny\n");
	if (capture)
		add_capture_guards(&t, tcp_port, dns_port);
	add_accepts(&t, proxy_ip, port);
	text_add(&t, "\t\tgoto deny\n");
	text_add(&t, "\t}\n}\n");
	if (t.overflow) {
		buf[0] = '\0';
		return -1;
	}
	return (int)t.used;
}

int netns_fence_ruleset(char *buf, size_t len, const char *proxy_ip, uint16_t port,
			const char *run_id)
{
	return netns_fence_ruleset_capture(buf, len, proxy_ip, port, run_id, 0, 0);
}

/* libnftables error text spans lines (message, offending line, caret); keep
 * it on one line for err. */
static void copy_oneline(char *dst, size_t dstlen, const char *prefix, const char *src)
{
	int n = snprintf(dst, dstlen, "%s", prefix);
	if (n < 0 || (size_t)n >= dstlen)
		return;
	size_t o = (size_t)n;
	for (; src != NULL && *src != '\0' && o + 1 < dstlen; src++) {
		char c = (*src == '\n' || *src == '\t') ? ' ' : *src;
		if (c == ' ' && o > 0 && dst[o - 1] == ' ')
			continue;
		dst[o++] = c;
	}
	while (o > 0 && dst[o - 1] == ' ')
		o--;
	dst[o] = '\0';
}

int netns_fence_load(const char *ruleset, char *err, size_t errlen)
{
	struct nft_ctx *nft = nft_ctx_new(NFT_CTX_DEFAULT);
	if (nft == NULL) {
		snprintf(err, errlen, "nftables fence: nft_ctx_new failed");
		return -1;
	}
	int rc = -1;
	if (nft_ctx_buffer_output(nft) != 0 || nft_ctx_buffer_error(nft) != 0) {
		snprintf(err, errlen, "nftables fence: cannot buffer libnftables output");
		goto out;
	}
	if (nft_run_cmd_from_buffer(nft, ruleset) != 0) {
		const char *e = nft_ctx_get_error_buffer(nft);
		copy_oneline(err, errlen, "nftables fence: ",
			     (e != NULL && *e != '\0') ? e : "load failed (no error text)");
		goto out;
	}
	rc = 0;
out:
	nft_ctx_free(nft);
	return rc;
}
