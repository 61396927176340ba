/* test_netns_bypass.c - the bypass listener: the packet parser (pure) and,
 * as root, the NFLOG listener against a real fence in a throwaway network
 * namespace (the machine's own namespace and nftables are never touched;
 * skipped without root).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <nftables/libnftables.h>

#include "netns/fence.h"
#include "netns/netns.h"
#include "tests/unit/support/net.h"

/* ---- packet builders ---- */

static size_t ipv4(uint8_t *p, uint8_t proto, const char *src, const char *dst, size_t l4len)
{
	memset(p, 0, 20);
	p[0] = 0x45;
	p[2] = (uint8_t)((20 + l4len) >> 8);
	p[3] = (uint8_t)(20 + l4len);
	p[8] = 64;
	p[9] = proto;
	assert_int_equal(inet_pton(AF_INET, src, p + 12), 1);
	assert_int_equal(inet_pton(AF_INET, dst, p + 16), 1);
	return 20;
}

static size_t ipv6(uint8_t *p, uint8_t nh, const char *src, const char *dst)
{
	memset(p, 0, 40);
	p[0] = 0x60;
	p[6] = nh;
	p[7] = 64;
	assert_int_equal(inet_pton(AF_INET6, src, p + 8), 1);
	assert_int_equal(inet_pton(AF_INET6, dst, p + 24), 1);
	return 40;
}

static size_t ports(uint8_t *p, uint16_t sport, uint16_t dport)
{
	memset(p, 0, 8);
	p[0] = (uint8_t)(sport >> 8);
	p[1] = (uint8_t)sport;
	p[2] = (uint8_t)(dport >> 8);
	p[3] = (uint8_t)dport;
	return 8;
}

static uint16_t port_of(const struct sockaddr_storage *ss)
{
	return ntohs(ss->ss_family == AF_INET ? ((const struct sockaddr_in *)ss)->sin_port
					      : ((const struct sockaddr_in6 *)ss)->sin6_port);
}

static void assert_addr(const struct sockaddr_storage *ss, const char *want)
{
	char buf[INET6_ADDRSTRLEN];
	const void *a = ss->ss_family == AF_INET
		? (const void *)&((const struct sockaddr_in *)ss)->sin_addr
		: (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr;
	assert_non_null(inet_ntop(ss->ss_family, a, buf, sizeof buf));
	assert_string_equal(buf, want);
}

/* ---- parser ---- */

static void test_ipv4_udp_tcp(void **state)
{
	(void)state;
	uint8_t p[64];
	struct netns_bypass_event ev;
	size_t n = ipv4(p, IPPROTO_UDP, "10.200.0.2", "198.51.100.10", 8);
	n += ports(p + n, 40000, 9999);
	assert_int_equal(netns_bypass_parse_packet(p, n, &ev), 0);
	assert_int_equal(ev.family, AF_INET);
	assert_int_equal(ev.ipproto, IPPROTO_UDP);
	assert_true(ev.has_ports);
	assert_false(ev.has_uid);
	assert_addr(&ev.src, "10.200.0.2");
	assert_addr(&ev.dst, "198.51.100.10");
	assert_int_equal(port_of(&ev.src), 40000);
	assert_int_equal(port_of(&ev.dst), 9999);
	assert_string_equal(netns_bypass_proto_name(ev.ipproto), "udp");

	p[9] = IPPROTO_TCP;
	assert_int_equal(netns_bypass_parse_packet(p, n, &ev), 0);
	assert_string_equal(netns_bypass_proto_name(ev.ipproto), "tcp");
	assert_int_equal(port_of(&ev.dst), 9999);
	/* only the ports are needed: 4 bytes of transport header are enough */
	assert_int_equal(netns_bypass_parse_packet(p, 24, &ev), 0);
	assert_true(ev.has_ports);
	/* cut inside the ports: no ports, still an event */
	assert_int_equal(netns_bypass_parse_packet(p, 23, &ev), 0);
	assert_false(ev.has_ports);
	assert_int_equal(port_of(&ev.dst), 0);
	assert_addr(&ev.dst, "198.51.100.10");
}

static void test_ipv4_options_icmp_fragment(void **state)
{
	(void)state;
	uint8_t p[64];
	struct netns_bypass_event ev;
	size_t n = ipv4(p, IPPROTO_UDP, "10.200.0.2", "203.0.113.10", 8);
	/* IHL 6: one option word before the transport header */
	p[0] = 0x46;
	memset(p + 20, 1, 4);
	n = 24 + ports(p + 24, 1234, 53);
	assert_int_equal(netns_bypass_parse_packet(p, n, &ev), 0);
	assert_int_equal(port_of(&ev.src), 1234);
	assert_int_equal(port_of(&ev.dst), 53);

	n = ipv4(p, IPPROTO_ICMP, "10.200.0.2", "198.51.100.10", 8);
	p[n] = 8; /* echo request */
	p[n + 1] = 0;
	assert_int_equal(netns_bypass_parse_packet(p, n + 8, &ev), 0);
	assert_string_equal(netns_bypass_proto_name(ev.ipproto), "icmp");
	assert_true(ev.has_icmp);
	assert_int_equal(ev.icmp_type, 8);
	assert_false(ev.has_ports);

	/* a later fragment: its first bytes are data, not ports */
	n = ipv4(p, IPPROTO_UDP, "10.200.0.2", "198.51.100.10", 8);
	n += ports(p + n, 1, 2);
	p[6] = 0x00;
	p[7] = 0x10; /* offset 16 * 8 bytes */
	assert_int_equal(netns_bypass_parse_packet(p, n, &ev), 0);
	assert_int_equal(ev.ipproto, IPPROTO_UDP);
	assert_false(ev.has_ports);
	/* more-fragments alone (first fragment) still has the ports */
	p[6] = 0x20;
	p[7] = 0x00;
	assert_int_equal(netns_bypass_parse_packet(p, n, &ev), 0);
	assert_true(ev.has_ports);

	p[9] = IPPROTO_GRE;
	assert_int_equal(netns_bypass_parse_packet(p, n, &ev), 0);
	assert_string_equal(netns_bypass_proto_name(ev.ipproto), "other");
	assert_false(ev.has_ports);
}

static void test_ipv6(void **state)
{
	(void)state;
	uint8_t p[256];
	struct netns_bypass_event ev;
	size_t n = ipv6(p, IPPROTO_TCP, "fd00::2", "2001:db8::1");
	n += ports(p + n, 50000, 443);
	assert_int_equal(netns_bypass_parse_packet(p, n, &ev), 0);
	assert_int_equal(ev.family, AF_INET6);
	assert_int_equal(ev.ipproto, IPPROTO_TCP);
	assert_addr(&ev.src, "fd00::2");
	assert_addr(&ev.dst, "2001:db8::1");
	assert_int_equal(port_of(&ev.src), 50000);
	assert_int_equal(port_of(&ev.dst), 443);

	/* hop-by-hop (8 bytes) then destination options (16 bytes) then UDP */
	n = ipv6(p, IPPROTO_HOPOPTS, "fd00::2", "2001:db8::1");
	p[n] = IPPROTO_DSTOPTS;
	p[n + 1] = 0;
	n += 8;
	p[n] = IPPROTO_UDP;
	p[n + 1] = 1;
	n += 16;
	n += ports(p + n, 7, 9999);
	assert_int_equal(netns_bypass_parse_packet(p, n, &ev), 0);
	assert_int_equal(ev.ipproto, IPPROTO_UDP);
	assert_true(ev.has_ports);
	assert_int_equal(port_of(&ev.dst), 9999);
	/* the same, cut inside the second extension header */
	assert_int_equal(netns_bypass_parse_packet(p, 40 + 8 + 10, &ev), 0);
	assert_false(ev.has_ports);
	assert_string_equal(netns_bypass_proto_name(ev.ipproto), "other");

	/* ICMPv6 */
	n = ipv6(p, IPPROTO_ICMPV6, "fd00::2", "ff02::1");
	p[n] = 128;
	assert_int_equal(netns_bypass_parse_packet(p, n + 8, &ev), 0);
	assert_string_equal(netns_bypass_proto_name(ev.ipproto), "icmp");
	assert_int_equal(ev.icmp_type, 128);

	/* a later fragment: the protocol, no ports */
	n = ipv6(p, IPPROTO_FRAGMENT, "fd00::2", "2001:db8::1");
	memset(p + n, 0, 8);
	p[n] = IPPROTO_UDP;
	p[n + 2] = 0x01; /* offset != 0 */
	n += 8;
	n += ports(p + n, 1, 2);
	assert_int_equal(netns_bypass_parse_packet(p, n, &ev), 0);
	assert_int_equal(ev.ipproto, IPPROTO_UDP);
	assert_false(ev.has_ports);
	/* the first fragment has them */
	p[42] = 0;
	assert_int_equal(netns_bypass_parse_packet(p, n, &ev), 0);
	assert_true(ev.has_ports);
	assert_int_equal(port_of(&ev.dst), 2);
}

/* A chain of extension headers longer than NETNS_BYPASS_EXT_MAX is not
 * followed to its end, and a length byte pointing past the copy is safe. */
static void test_ipv6_ext_bounds(void **state)
{
	(void)state;
	uint8_t p[40 + 8 * (NETNS_BYPASS_EXT_MAX + 2) + 8];
	struct netns_bypass_event ev;
	size_t n = ipv6(p, IPPROTO_DSTOPTS, "fd00::2", "2001:db8::1");
	for (int i = 0; i < NETNS_BYPASS_EXT_MAX + 1; i++, n += 8) {
		memset(p + n, 0, 8);
		p[n] = i < NETNS_BYPASS_EXT_MAX ? IPPROTO_DSTOPTS : IPPROTO_UDP;
	}
	n += ports(p + n, 1, 2);
	assert_true(n <= sizeof p);
	assert_int_equal(netns_bypass_parse_packet(p, n, &ev), 0);
	assert_false(ev.has_ports);
	assert_int_equal(ev.ipproto, IPPROTO_DSTOPTS);

	/* one header claiming 2 KiB */
	n = ipv6(p, IPPROTO_ROUTING, "fd00::2", "2001:db8::1");
	p[n] = IPPROTO_UDP;
	p[n + 1] = 255;
	assert_int_equal(netns_bypass_parse_packet(p, n + 8, &ev), 0);
	assert_false(ev.has_ports);
	/* AH length in 4-byte units + 2 */
	n = ipv6(p, IPPROTO_AH, "fd00::2", "2001:db8::1");
	memset(p + n, 0, 16);
	p[n] = IPPROTO_TCP;
	p[n + 1] = 2; /* (2 + 2) * 4 = 16 bytes */
	n += 16;
	n += ports(p + n, 3, 4);
	assert_int_equal(netns_bypass_parse_packet(p, n, &ev), 0);
	assert_int_equal(ev.ipproto, IPPROTO_TCP);
	assert_int_equal(port_of(&ev.dst), 4);
}

static void test_malformed(void **state)
{
	(void)state;
	uint8_t p[64] = { 0 };
	struct netns_bypass_event ev;
	assert_int_equal(netns_bypass_parse_packet(NULL, 10, &ev), -1);
	assert_int_equal(netns_bypass_parse_packet(p, 0, &ev), -1);
	assert_int_equal(netns_bypass_parse_packet(p, 10, NULL), -1);
	p[0] = 0x00; /* version 0 */
	assert_int_equal(netns_bypass_parse_packet(p, 40, &ev), -1);
	size_t n = ipv4(p, IPPROTO_UDP, "10.200.0.2", "198.51.100.10", 8);
	assert_int_equal(netns_bypass_parse_packet(p, n - 1, &ev), -1); /* short header */
	p[0] = 0x44; /* IHL 4 < 5 */
	assert_int_equal(netns_bypass_parse_packet(p, 40, &ev), -1);
	p[0] = 0x4f; /* IHL 15 = 60 bytes > copied */
	assert_int_equal(netns_bypass_parse_packet(p, 40, &ev), -1);
	n = ipv6(p, IPPROTO_UDP, "fd00::2", "2001:db8::1");
	assert_int_equal(netns_bypass_parse_packet(p, 39, &ev), -1);
	/* every length of garbage is safe (run under ASan in make unit-asan) */
	uint8_t junk[64];
	for (size_t i = 0; i < sizeof junk; i++)
		junk[i] = (uint8_t)(i * 37 + 11);
	for (int v = 4; v <= 6; v += 2) {
		junk[0] = (uint8_t)((v << 4) | 0x5);
		for (size_t len = 0; len <= sizeof junk; len++)
			(void)netns_bypass_parse_packet(junk, len, &ev);
	}
}

static void test_open_bad_args(void **state)
{
	(void)state;
	struct netns ns = { .ns_fd = -1 };
	char err[128];
	assert_null(netns_bypass_open(NULL, err, sizeof err));
	assert_non_null(strstr(err, "no sandbox namespace"));
	assert_null(netns_bypass_open(&ns, err, sizeof err));
	assert_int_equal(netns_bypass_fd(NULL), -1);
	assert_int_equal(netns_bypass_read(NULL, NULL, NULL, NULL), -1);
	netns_bypass_close(NULL);
}

/* ---- live: a real fence, a real listener (root only) ---- */

static int live_ok; /* set by group setup; read-only afterwards */

static int group_setup(void **state)
{
	(void)state;
	live_ok = tu_enter_own_netns("test_netns_bypass live tests");
	return 0;
}

#define COLLECT_MAX 64

struct collected {
	struct netns_bypass_event ev[COLLECT_MAX];
	int n;
};

static void collect(void *ud, const struct netns_bypass_event *ev)
{
	struct collected *c = ud;
	if (c->n < COLLECT_MAX)
		c->ev[c->n++] = *ev;
}

/* Read until want events arrived (or 3 s without any). */
static void wait_events(struct netns_bypass *b, struct collected *c, int want,
			unsigned long *lost)
{
	while (c->n < want) {
		struct pollfd p = { .fd = netns_bypass_fd(b), .events = POLLIN };
		if (poll(&p, 1, 3000) != 1)
			return;
		assert_true(netns_bypass_read(b, collect, c, lost) >= 0);
	}
}

/* In a child inside the sandbox namespace, as uid: one UDP datagram from
 * sport to 198.51.100.10:dport and one TCP connect to 198.51.100.10:443. */
static void send_from_inside(const struct netns *ns, uid_t uid, uint16_t sport, uint16_t dport)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (netns_enter(ns) != 0 || setresuid(uid, uid, uid) != 0)
			_exit(2);
		struct sockaddr_in me = { .sin_family = AF_INET, .sin_port = htons(sport) };
		struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(dport) };
		inet_pton(AF_INET, "198.51.100.10", &to.sin_addr);
		int u = socket(AF_INET, SOCK_DGRAM, 0);
		if (u < 0 || bind(u, (struct sockaddr *)&me, sizeof me) != 0)
			_exit(3);
		(void)sendto(u, "x", 1, 0, (struct sockaddr *)&to, sizeof to);
		int t = socket(AF_INET, SOCK_STREAM, 0);
		to.sin_port = htons(443);
		if (t < 0 || connect(t, (struct sockaddr *)&to, sizeof to) == 0)
			_exit(4); /* the fence must refuse it */
		_exit(0);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static int load_foreign(void *arg)
{
	(void)arg;
	char err[256];
	/* a rule of someone else's logging to the same group, before the fence */
	static const char rules[] =
		"table inet foreign {\n"
		"\tchain output {\n"
		"\t\ttype filter hook output priority -10; policy accept;\n"
		"\t\tudp dport 7777 log prefix \"not-ours: \" group 7\n"
		"\t}\n"
		"}\n";
	_Static_assert(NETNS_LOG_GROUP == 7, "the foreign rule uses the fence's group");
	int rc = netns_fence_load(rules, err, sizeof err);
	if (rc != 0)
		fprintf(stderr, "%s\n", err);
	return rc;
}

static void test_live_events(void **state)
{
	(void)state;
	if (!live_ok)
		skip();
	struct netns ns;
	struct netns_config cfg = { .proxy_port = 3128, .run_id = "byp1" };
	char err[256];
	if (netns_create(&ns, &cfg, err, sizeof err) != 0)
		fail_msg("netns_create: %s", err);
	struct netns_bypass *b = netns_bypass_open(&ns, err, sizeof err);
	if (b == NULL)
		fail_msg("netns_bypass_open: %s", err);
	assert_true(fcntl(netns_bypass_fd(b), F_GETFD) & FD_CLOEXEC);

	struct collected c = { .n = 0 };
	unsigned long lost = 0;
	send_from_inside(&ns, 1234, 40001, 9999);
	wait_events(b, &c, 2, &lost);
	assert_int_equal(c.n, 2);
	assert_int_equal(lost, 0);
	assert_int_equal(c.ev[0].ipproto, IPPROTO_UDP);
	assert_addr(&c.ev[0].src, ns.sandbox_ip);
	assert_addr(&c.ev[0].dst, "198.51.100.10");
	assert_int_equal(port_of(&c.ev[0].src), 40001);
	assert_int_equal(port_of(&c.ev[0].dst), 9999);
	assert_true(c.ev[0].has_uid);
	assert_int_equal(c.ev[0].uid, 1234);
	assert_int_equal(c.ev[1].ipproto, IPPROTO_TCP);
	assert_int_equal(port_of(&c.ev[1].dst), 443);
	assert_int_equal(c.ev[1].uid, 1234);

	/* messages with another prefix on the same group are not ours */
	assert_int_equal(netns_run_inside(&ns, load_foreign, NULL), 0);
	c.n = 0;
	send_from_inside(&ns, 0, 40002, 7777);
	wait_events(b, &c, 2, &lost);
	assert_int_equal(lost, 1); /* the foreign message */
	assert_int_equal(c.n, 2);  /* the fence's own two */
	assert_int_equal(port_of(&c.ev[0].dst), 7777);
	assert_int_equal(c.ev[0].uid, 0);

	/* nothing queued: 0, not an error */
	assert_int_equal(netns_bypass_read(b, collect, &c, &lost), 0);
	netns_bypass_close(b);
	netns_destroy(&ns);
}

/* A second listener on the same namespace cannot take the group. */
static void test_live_group_taken(void **state)
{
	(void)state;
	if (!live_ok)
		skip();
	struct netns ns;
	struct netns_config cfg = { .proxy_port = 3128, .run_id = "byp2" };
	char err[256];
	if (netns_create(&ns, &cfg, err, sizeof err) != 0)
		fail_msg("netns_create: %s", err);
	struct netns_bypass *b = netns_bypass_open(&ns, err, sizeof err);
	assert_non_null(b);
	assert_null(netns_bypass_open(&ns, err, sizeof err));
	assert_non_null(strstr(err, "bypass listener: bind NFLOG group"));
	netns_bypass_close(b);
	netns_destroy(&ns);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ipv4_udp_tcp),
		cmocka_unit_test(test_ipv4_options_icmp_fragment),
		cmocka_unit_test(test_ipv6),
		cmocka_unit_test(test_ipv6_ext_bounds),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_open_bad_args),
		cmocka_unit_test(test_live_events),
		cmocka_unit_test(test_live_group_taken),
	};
	return cmocka_run_group_tests(tests, group_setup, NULL);
}
