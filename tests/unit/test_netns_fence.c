/* test_netns_fence.c - the generated nftables fence text (pure, no kernel). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "netns/fence.h"
#include "netns/netns.h"

static const char golden[] =
	"table inet openshell {\n"
	"\tchain input {\n"
	"\t\ttype filter hook input priority 0; policy drop;\n"
	"\t\tiifname \"lo\" accept\n"
	"\t\tct state established,related accept\n"
	"\t\tcounter drop\n"
	"\t}\n"
	"\tchain deny {\n"
	"\t\tcounter limit rate 20/second burst 40 packets "
	"log prefix \"openshell:bypass:1a2b3c4d: \" group 7 snaplen 256 queue-threshold 1\n"
	"\t\tmeta nfproto ipv4 meta l4proto tcp counter reject with tcp reset\n"
	"\t\tmeta nfproto ipv6 meta l4proto tcp counter reject with tcp reset\n"
	"\t\tmeta nfproto ipv4 meta l4proto udp counter reject with icmp type port-unreachable\n"
	"\t\tmeta nfproto ipv6 meta l4proto udp counter reject with icmpv6 type port-unreachable\n"
	"\t\tcounter reject with icmpx type admin-prohibited\n"
	"\t}\n"
	"\tchain output {\n"
	"\t\ttype filter hook output priority 0; policy drop;\n"
	"\t\toifname != \"lo\" ct status & dnat == 0 counter goto deny\n"
	"\t\tct state established,related accept\n"
	"\t\toifname \"lo\" ip daddr 10.200.0.1 tcp dport 3128 accept\n"
	"\t\tip daddr 10.200.0.1 counter goto deny\n"
	"\t\toifname \"lo\" fib daddr type local accept\n"
	"\t\tgoto deny\n"
	"\t}\n"
	"}\n";

static char buf[NETNS_FENCE_MAX];

static void make(const char *ip, uint16_t port, const char *id)
{
	int n = netns_fence_ruleset(buf, sizeof(buf), ip, port, id);
	assert_true(n > 0);
	assert_int_equal((size_t)n, strlen(buf));
}

static long pos(const char *needle)
{
	const char *p = strstr(buf, needle);
	if (p == NULL)
		fail_msg("missing in ruleset: %s", needle);
	return p - buf;
}

static int count(const char *needle)
{
	int n = 0;
	for (const char *p = buf; (p = strstr(p, needle)) != NULL; p++)
		n++;
	return n;
}

static void make_capture(uint16_t tcp_port, uint16_t dns_port)
{
	int n = netns_fence_ruleset_capture(buf, sizeof(buf), "10.200.3.1", 3128, "abc",
					    tcp_port, dns_port);
	assert_true(n > 0);
	assert_int_equal((size_t)n, strlen(buf));
}

static void test_golden(void **state)
{
	(void)state;
	make("10.200.0.1", 3128, "1a2b3c4d");
	assert_string_equal(buf, golden);
}

/* The span of the chain named name: from its line to its closing brace. */
static void chain_span(const char *name, long *start, long *end)
{
	char head[64];
	snprintf(head, sizeof(head), "\tchain %s {\n", name);
	*start = pos(head);
	const char *close = strstr(buf + *start, "\t}\n");
	assert_non_null(close);
	*end = close - buf;
}

static void test_order(void **state)
{
	(void)state;
	make("10.200.7.1", 8080, "abc");
	long out, out_end, deny, deny_end;
	chain_span("output", &out, &out_end);
	chain_span("deny", &deny, &deny_end);
	long policy = pos("hook output priority 0; policy drop;");
	/* nothing leaves by another link than lo: the first rule */
	long not_lo = pos("\t\toifname != \"lo\" ct status & dnat == 0 counter goto deny\n");
	const char *ctp = strstr(buf + out, "ct state established,related accept");
	assert_non_null(ctp); /* the output chain's own */
	long ct = ctp - buf;
	long proxy = pos("oifname \"lo\" ip daddr 10.200.7.1 tcp dport 8080 accept");
	/* the proxy address is on lo: its other ports are refused before lo is accepted */
	long proxy_deny = pos("ip daddr 10.200.7.1 counter goto deny");
	/* loopback to local addresses only: a socket bound to lo dialing out is denied */
	long lo = pos("\t\toifname \"lo\" fib daddr type local accept\n");
	long go = pos("\t\tgoto deny\n");
	assert_true(out < policy && policy < not_lo && not_lo < ct && ct < proxy &&
		    proxy < proxy_deny && proxy_deny < lo && lo < go);
	/* the output chain ends by sending everything else to deny */
	assert_int_equal(go + (long)strlen("\t\tgoto deny\n"), out_end);
	assert_true(deny < out); /* defined before it is used */
	long log = pos("log prefix \"openshell:bypass:abc: \" group 7 snaplen 256 queue-threshold 1\n");
	const char *rejects[] = {
		"meta nfproto ipv4 meta l4proto tcp counter reject with tcp reset",
		"meta nfproto ipv6 meta l4proto tcp counter reject with tcp reset",
		"meta nfproto ipv4 meta l4proto udp counter reject with icmp type port-unreachable",
		"meta nfproto ipv6 meta l4proto udp counter reject with icmpv6 type port-unreachable",
		"\t\tcounter reject with icmpx type admin-prohibited\n",
	};
	assert_true(deny < log);
	long prev = log;
	for (size_t i = 0; i < sizeof(rejects) / sizeof(rejects[0]); i++) {
		long r = pos(rejects[i]);
		assert_true(r > prev && r < deny_end); /* in order, every one after the log */
		prev = r;
	}
	/* the catch-all reject is the deny chain's last rule */
	assert_int_equal(prev + (long)strlen(rejects[4]), deny_end);
	/* nothing is accepted in the deny chain */
	const char *acc = strstr(buf + deny, "accept");
	assert_true(acc == NULL || acc - buf > deny_end);
}

static void test_counts(void **state)
{
	(void)state;
	make("10.200.255.1", 65535, "Z9");
	assert_int_equal(count("table "), 1);
	assert_int_equal(count("chain "), 3);
	assert_int_equal(count("policy drop;"), 2);
	assert_int_equal(count("policy accept"), 0);
	assert_int_equal(count(" accept\n"), 5);
	assert_int_equal(count("\t\taccept\n"), 0);
	assert_int_equal(count("reject"), 5);
	assert_int_equal(count(" log "), 1);
	assert_int_equal(count("goto deny"), 3);
	assert_int_equal(count("oifname"), 3);
	assert_int_equal(count("hook"), 2); /* deny is a regular chain */
	assert_int_equal(count("limit rate 20/second burst 40 packets"), 1);
	assert_int_equal(count("reject with tcp reset"), 2);
	assert_int_equal(count("reject with icmp type"), 1);
	assert_int_equal(count("reject with icmpv6 type"), 1);
	assert_int_equal(count("counter"), 9);
	assert_int_equal(count("nfproto ipv4"), 2);
	assert_int_equal(count("nfproto ipv6"), 2);
	assert_int_equal(count("type filter hook output priority 0;"), 1);
	assert_int_equal(pos("dport 65535 accept") > 0, 1);
}

/* Ingress: nothing from outside may open a flow, or the output chain's
 * `ct state established` would let the sandbox answer it (a two-way channel
 * around the proxy). Only loopback and replies come in; the rest is dropped. */
static void test_input_chain(void **state)
{
	(void)state;
	for (int capture = 0; capture < 2; capture++) {
		if (capture)
			make_capture(15001, 15053);
		else
			make("10.200.9.1", 3128, "in");
		long chain = pos("\tchain input {\n\t\ttype filter hook input priority 0; "
				 "policy drop;\n");
		long lo = pos("\t\tiifname \"lo\" accept\n");
		long ct = pos("\t\tct state established,related accept\n");
		long drop = pos("\t\tcounter drop\n\t}\n");
		assert_true(chain < lo && lo < ct && ct < drop);
		assert_int_equal(count("hook input"), 1);
		assert_int_equal(count("iifname"), 1);
		/* no accept in the input chain beyond those two */
		const char *end = strstr(buf + chain, "\t}\n");
		int accepts = 0;
		for (const char *p = buf + chain; (p = strstr(p, " accept")) != NULL && p < end; p++)
			accepts++;
		assert_int_equal(accepts, 2);
	}
}

static void test_bad_input(void **state)
{
	(void)state;
	const char *bad_ips[] = { NULL, "", "10.200.0.300", "::1", "10.200.0.1 accept",
				  "10.200.0.1\n", "10.200.0" };
	for (size_t i = 0; i < sizeof(bad_ips) / sizeof(bad_ips[0]); i++)
		assert_int_equal(netns_fence_ruleset(buf, sizeof(buf), bad_ips[i], 3128, "ab"), -1);
	const char *bad_ids[] = { NULL, "", "a\"b", "a b", "a-b", "123456789", "ab\n", "x;y" };
	for (size_t i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++)
		assert_int_equal(netns_fence_ruleset(buf, sizeof(buf), "10.200.0.1", 3128,
						     bad_ids[i]), -1);
	assert_int_equal(netns_fence_ruleset(buf, sizeof(buf), "10.200.0.1", 0, "ab"), -1);
	assert_int_equal(netns_fence_ruleset(NULL, 100, "10.200.0.1", 1, "ab"), -1);
	assert_int_equal(netns_fence_ruleset(buf, 0, "10.200.0.1", 1, "ab"), -1);
}

static void test_buffer_bounds(void **state)
{
	(void)state;
	int n = netns_fence_ruleset(buf, sizeof(buf), "10.200.0.1", 3128, "1a2b3c4d");
	assert_true(n > 0 && n < NETNS_FENCE_MAX);
	char small[sizeof(golden)];
	assert_int_equal(netns_fence_ruleset(small, (size_t)n + 1, "10.200.0.1", 3128, "1a2b3c4d"), n);
	memset(small, 'x', sizeof(small));
	assert_int_equal(netns_fence_ruleset(small, (size_t)n, "10.200.0.1", 3128, "1a2b3c4d"), -1);
	assert_int_equal(small[0], '\0');
	assert_int_equal(netns_fence_ruleset(small, 10, "10.200.0.1", 3128, "1a2b3c4d"), -1);
	/* the longest inputs still fit the documented maximum */
	assert_true(netns_fence_ruleset(buf, sizeof(buf), "255.255.255.255", 65535, "ZZZZZZZZ") > 0);
}

/* Capture: the nat chain redirects DNS first, then TCP to the proxy address
 * on other ports, leaves loopback (the proxy port) alone, then redirects all
 * other IPv4 TCP; the filter chain admits the two
 * capture ports only for redirected flows, before loopback is accepted. */
static void test_capture_order(void **state)
{
	(void)state;
	make_capture(15001, 15053);
	long nat = pos("chain capture {\n\t\ttype nat hook output priority -100; policy accept;\n");
	long dns_udp = pos("meta nfproto ipv4 udp dport 53 counter redirect to :15053\n");
	long dns_tcp = pos("meta nfproto ipv4 tcp dport 53 counter redirect to :15053\n");
	/* the proxy address is on lo: its other ports are captured before lo returns */
	long px_other = pos("ip daddr 10.200.3.1 tcp dport != 3128 counter redirect to :15001\n");
	/* and its proxy port never, whatever link the socket is bound to */
	long px_ret = pos("\t\tip daddr 10.200.3.1 return\n");
	/* local destinations are left alone, not "lo": a socket bound to lo that
	 * dials out is captured like any other */
	long lo_ret = pos("\t\tfib daddr type local return\n");
	long tcp = pos("meta nfproto ipv4 meta l4proto tcp counter redirect to :15001\n");
	long filter = pos("chain output {");
	assert_true(nat < dns_udp && dns_udp < dns_tcp && dns_tcp < px_other);
	assert_true(px_other < px_ret && px_ret < lo_ret && lo_ret < tcp && tcp < filter);
	long acc_tcp = pos("tcp dport { 15001, 15053 } ct status dnat accept\n");
	long acc_udp = pos("udp dport 15053 ct status dnat accept\n");
	/* a direct dial of a capture port is refused through deny: audited too */
	long rej_tcp = pos("tcp dport { 15001, 15053 } counter goto deny\n");
	long rej_udp = pos("udp dport 15053 counter goto deny\n");
	long not_lo = pos("oifname != \"lo\" ct status & dnat == 0 counter goto deny\n");
	long ct = pos("\t\tct state established,related accept\n\t\toifname \"lo\" ip daddr");
	assert_true(filter < not_lo && not_lo < acc_tcp);
	assert_true(acc_tcp < acc_udp && acc_udp < rej_tcp);
	assert_true(rej_tcp < rej_udp && rej_udp < ct);
	assert_int_equal(count("redirect"), 4);
	assert_int_equal(count("table "), 1);
	assert_int_equal(count("chain "), 4);
	assert_int_equal(count("goto deny"), 5);
	assert_int_equal(count("reject"), 5); /* all in the deny chain */
	assert_int_equal(count("ip6"), 0); /* IPv6 is never redirected */
	long deny, deny_end;
	chain_span("deny", &deny, &deny_end);
	assert_true(deny < filter);
	const char *acc = strstr(buf + deny, "accept");
	assert_true(acc == NULL || acc - buf > deny_end);
}

static void test_capture_bad_ports(void **state)
{
	(void)state;
	const uint16_t bad[][2] = { { 15001, 0 }, { 0, 15053 }, { 15001, 15001 },
				    { 3128, 15053 }, { 15001, 3128 } };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(netns_fence_ruleset_capture(buf, sizeof(buf), "10.200.0.1", 3128,
							     "ab", bad[i][0], bad[i][1]), -1);
	/* both zero: exactly the plain fence */
	int n = netns_fence_ruleset_capture(buf, sizeof(buf), "10.200.0.1", 3128, "1a2b3c4d", 0, 0);
	assert_int_equal((size_t)n, strlen(golden));
	assert_string_equal(buf, golden);
	/* the longest capture ruleset fits the documented maximum */
	assert_true(netns_fence_ruleset_capture(buf, sizeof(buf), "255.255.255.255", 65535,
						"ZZZZZZZZ", 65534, 65533) > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_golden),
		cmocka_unit_test(test_order),
		cmocka_unit_test(test_counts),
		cmocka_unit_test(test_input_chain),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_buffer_bounds),
		cmocka_unit_test(test_capture_order),
		cmocka_unit_test(test_capture_bad_ports),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
