/* test_ssrf.c - destination address classification (proxy/ssrf.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "policy/policy.h"
#include "proxy/ssrf.h"
#include "tests/unit/support/net.h"

static enum ssrf_class cls(const char *ip)
{
	struct sockaddr_storage ss = tu_sockaddr(ip);
	const uint8_t *a = ss.ss_family == AF_INET
				   ? (const uint8_t *)&((struct sockaddr_in *)&ss)->sin_addr
				   : (const uint8_t *)&((struct sockaddr_in6 *)&ss)->sin6_addr;
	const char *range = NULL;
	enum ssrf_class c = ssrf_classify(ss.ss_family, a, &range);
	assert_non_null(range);
	return c;
}

static bool check(const char *ip, uint16_t port, const char *const *allowed, size_t n,
		  char *why, size_t whylen)
{
	struct policy_cidr cidrs[8];
	assert_true(n <= 8);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(policy_cidr_parse(allowed[i], &cidrs[i]), 0);
	struct sockaddr_storage ss = tu_sockaddr(ip);
	return ssrf_check_address((struct sockaddr *)&ss, port, cidrs, n, NULL, why, whylen);
}

static bool allowed_plain(const char *ip, uint16_t port)
{
	char why[384];
	return check(ip, port, NULL, 0, why, sizeof(why));
}

static void test_always_blocked(void **state)
{
	static const char *const blocked[] = {
		"127.0.0.1", "127.255.255.254", "0.0.0.0", "0.1.2.3", "169.254.169.254",
		"169.254.1.1", "224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255",
		"::1", "::", "fe80::1", "febf::1", "ff02::1", "::ffff:127.0.0.1",
		"::ffff:169.254.169.254", "::ffff:0.0.0.0", "::127.0.0.1", "::ffff:224.0.0.1",
		"2002:7f00:1::", "2002:a9fe:a9fe::1",
		/* NAT64 and SIIT forms of always-blocked IPv4 */
		"64:ff9b::a9fe:a9fe", "64:ff9b::127.0.0.1", "64:ff9b::169.254.1.1",
		"::ffff:0:127.0.0.1", "::ffff:0:169.254.169.254",
	};
	for (size_t i = 0; i < sizeof(blocked) / sizeof(blocked[0]); i++)
		if (cls(blocked[i]) != SSRF_BLOCKED)
			fail_msg("%s should be always blocked", blocked[i]);
}

static void test_internal(void **state)
{
	static const char *const internal[] = {
		"10.0.0.1", "172.16.0.1", "172.31.255.255", "192.168.1.1", "100.64.0.1",
		"100.127.255.255", "192.0.0.8", "192.0.2.1", "198.51.100.7", "203.0.113.10",
		"198.18.0.1", "198.19.255.255", "fc00::1", "fd12:3456::1", "64:ff9b::a00:1",
		"::ffff:10.0.0.1", "::ffff:100.64.0.1", "::ffff:192.168.0.1", "::10.0.0.1",
		"2002:a00:1::", "2001:db8::1", "fec0::1", "64:ff9b::8.8.8.8",
		"::ffff:0:10.0.0.1", "::ffff:0:8.8.8.8", "64:ff9b:1::808:808",
		"2001:0:4136:e378:8000:63bf:3fff:fdd2",
	};
	for (size_t i = 0; i < sizeof(internal) / sizeof(internal[0]); i++)
		if (cls(internal[i]) != SSRF_INTERNAL)
			fail_msg("%s should be internal", internal[i]);
}

static void test_public(void **state)
{
	static const char *const pub[] = {
		"8.8.8.8", "1.1.1.1", "172.32.0.1", "172.15.255.255", "100.128.0.1",
		"198.20.0.1", "223.255.255.255", "2001:4860:4860::8888", "::ffff:8.8.8.8",
		"2606:4700::1111", "2002:808:808::1",
	};
	for (size_t i = 0; i < sizeof(pub) / sizeof(pub[0]); i++)
		if (cls(pub[i]) != SSRF_PUBLIC)
			fail_msg("%s should be public", pub[i]);
}

static void test_default_mode(void **state)
{
	assert_true(allowed_plain("8.8.8.8", 443));
	assert_true(allowed_plain("8.8.8.8", 6443)); /* control-plane ports: internal only */
	assert_false(allowed_plain("10.0.0.5", 443));
	assert_false(allowed_plain("127.0.0.1", 80));
	assert_false(allowed_plain("::ffff:10.0.0.1", 80));
	char why[384];
	assert_false(check("10.0.0.5", 443, NULL, 0, why, sizeof(why)));
	assert_non_null(strstr(why, "10.0.0.5"));
	assert_non_null(strstr(why, "internal"));
	assert_false(check("169.254.169.254", 80, NULL, 0, why, sizeof(why)));
	assert_non_null(strstr(why, "169.254.169.254"));
	assert_non_null(strstr(why, "always blocked"));
}

static void test_allowed_ips(void **state)
{
	char why[384];
	static const char *const priv[] = { "10.0.0.0/8" };
	assert_true(check("10.1.2.3", 443, priv, 1, why, sizeof(why)));
	assert_false(check("192.168.1.1", 443, priv, 1, why, sizeof(why)));
	assert_non_null(strstr(why, "allowed_ips"));
	/* With allowed_ips, public addresses outside them are refused too. */
	assert_false(check("8.8.8.8", 443, priv, 1, why, sizeof(why)));
	/* Control-plane ports refused for internal destinations even if listed. */
	assert_false(check("10.1.2.3", 6443, priv, 1, why, sizeof(why)));
	assert_non_null(strstr(why, "control-plane"));
	static const uint16_t cp[] = { 2379, 2380, 6443, 10250, 10255 };
	for (size_t i = 0; i < 5; i++)
		assert_false(check("10.1.2.3", cp[i], priv, 1, why, sizeof(why)));
	assert_true(check("10.1.2.3", 8443, priv, 1, why, sizeof(why)));
	/* IPv4-mapped form matches a v4 entry. */
	assert_true(check("::ffff:10.1.2.3", 443, priv, 1, why, sizeof(why)));
	/* Bare IP = /32. */
	static const char *const one[] = { "10.0.0.5" };
	assert_true(check("10.0.0.5", 80, one, 1, why, sizeof(why)));
	assert_false(check("10.0.0.6", 80, one, 1, why, sizeof(why)));
	static const char *const v6[] = { "fd00::/8" };
	assert_true(check("fd00::1", 443, v6, 1, why, sizeof(why)));
	assert_false(check("fc00::1", 443, v6, 1, why, sizeof(why)));
}

static void test_blocked_beats_allowed_ips(void **state)
{
	char why[384];
	/* The policy loader rejects these entries; the classifier must still
	 * refuse even if such a list ever reached it. */
	struct policy_cidr all4 = { .family = AF_INET, .prefix = 0 };
	struct sockaddr_storage ss = tu_sockaddr("127.0.0.1");
	assert_false(ssrf_check_address((struct sockaddr *)&ss, 80, &all4, 1, NULL, why, sizeof(why)));
	ss = tu_sockaddr("169.254.169.254");
	assert_false(ssrf_check_address((struct sockaddr *)&ss, 80, &all4, 1, NULL, why, sizeof(why)));
	ss = tu_sockaddr("0.0.0.0");
	assert_false(ssrf_check_address((struct sockaddr *)&ss, 80, &all4, 1, NULL, why, sizeof(why)));
	struct policy_cidr all6 = { .family = AF_INET6, .prefix = 0 };
	ss = tu_sockaddr("::1");
	assert_false(ssrf_check_address((struct sockaddr *)&ss, 80, &all6, 1, NULL, why, sizeof(why)));
	ss = tu_sockaddr("fe80::1");
	assert_false(ssrf_check_address((struct sockaddr *)&ss, 80, &all6, 1, NULL, why, sizeof(why)));
}

static void test_nat64_blocked_beats_allowed_ips(void **state)
{
	/* An IPv6-only deployment may list the NAT64 prefix; the metadata
	 * address behind it must stay unreachable. */
	char why[384];
	static const char *const nat64[] = { "64:ff9b::/96" };
	assert_true(check("64:ff9b::808:808", 443, nat64, 1, why, sizeof(why)));
	assert_false(check("64:ff9b::a9fe:a9fe", 80, nat64, 1, why, sizeof(why)));
	assert_non_null(strstr(why, "always blocked"));
	assert_false(check("64:ff9b::7f00:1", 80, nat64, 1, why, sizeof(why)));
}

static void test_loopback_test_flag(void **state)
{
	char why[384];
	struct ssrf_options opt = { .allow_loopback = true };
	struct sockaddr_storage ss = tu_sockaddr("127.0.0.1");
	assert_true(ssrf_check_address((struct sockaddr *)&ss, 80, NULL, 0, &opt, why, sizeof(why)));
	ss = tu_sockaddr("169.254.169.254");
	assert_false(ssrf_check_address((struct sockaddr *)&ss, 80, NULL, 0, &opt, why, sizeof(why)));
	ss = tu_sockaddr("10.0.0.1");
	assert_false(ssrf_check_address((struct sockaddr *)&ss, 80, NULL, 0, &opt, why, sizeof(why)));
}

static void test_control_plane_ports(void **state)
{
	assert_true(ssrf_is_control_plane_port(2379));
	assert_true(ssrf_is_control_plane_port(10255));
	assert_false(ssrf_is_control_plane_port(443));
	assert_false(ssrf_is_control_plane_port(10251));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_always_blocked),
		cmocka_unit_test(test_internal),
		cmocka_unit_test(test_public),
		cmocka_unit_test(test_default_mode),
		cmocka_unit_test(test_allowed_ips),
		cmocka_unit_test(test_blocked_beats_allowed_ips),
		cmocka_unit_test(test_nat64_blocked_beats_allowed_ips),
		cmocka_unit_test(test_loopback_test_flag),
		cmocka_unit_test(test_control_plane_ports),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
