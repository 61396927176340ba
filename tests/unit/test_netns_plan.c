/* test_netns_plan.c - run ids, interface names, subnet choice (pure). */
#include <net/if.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "netns/netns.h"
#include "netns/plan.h"

static void test_run_id_valid(void **state)
{
	(void)state;
	assert_true(netns_run_id_valid("a"));
	assert_true(netns_run_id_valid("1a2b3c4d"));
	assert_true(netns_run_id_valid("ABCxyz09"));
	assert_false(netns_run_id_valid(NULL));
	assert_false(netns_run_id_valid(""));
	assert_false(netns_run_id_valid("123456789"));
	assert_false(netns_run_id_valid("a-b"));
	assert_false(netns_run_id_valid("a\"b"));
	assert_false(netns_run_id_valid("a b"));
	assert_false(netns_run_id_valid("ab/"));
	assert_false(netns_run_id_valid("\xc3\xa9"));
}

static void test_run_id_random(void **state)
{
	(void)state;
	char a[NETNS_RUN_ID_MAX + 1], b[NETNS_RUN_ID_MAX + 1];
	assert_int_equal(netns_run_id_random(a, sizeof(a)), 0);
	assert_int_equal(netns_run_id_random(b, sizeof(b)), 0);
	assert_int_equal(strlen(a), NETNS_RUN_ID_MAX);
	assert_int_equal(strspn(a, "0123456789abcdef"), NETNS_RUN_ID_MAX);
	assert_true(netns_run_id_valid(a));
	assert_string_not_equal(a, b); /* 1 in 2^32 */
	assert_true(netns_run_id_random(a, NETNS_RUN_ID_MAX) < 0);
	assert_true(netns_run_id_random(NULL, 9) < 0);
}

static void test_ifnames(void **state)
{
	(void)state;
	char s[IFNAMSIZ], p[IFNAMSIZ];
	assert_int_equal(netns_ifnames("1a2b3c4d", s, sizeof(s), p, sizeof(p)), 0);
	assert_string_equal(s, "osh-1a2b3c4d-s");
	assert_string_equal(p, "osh-1a2b3c4d-p");
	assert_true(strlen(p) < IFNAMSIZ);
	assert_int_equal(netns_ifnames("x", s, sizeof(s), p, sizeof(p)), 0);
	assert_string_equal(p, "osh-x-p");
	assert_int_equal(netns_ifnames("bad id", s, sizeof(s), p, sizeof(p)), -1);
	assert_int_equal(netns_ifnames("ab", s, 8, p, sizeof(p)), -1);
}

static void test_subnet_pick(void **state)
{
	(void)state;
	uint8_t used[NETNS_SUBNET_BITMAP_BYTES] = { 0 };
	const uint8_t a0[4] = { 10, 200, 0, 5 }, a1[4] = { 10, 200, 1, 1 };
	const uint8_t other1[4] = { 10, 201, 2, 1 }, other2[4] = { 11, 200, 2, 1 };
	const uint8_t last[4] = { 10, 200, 255, 254 };

	assert_int_equal(netns_subnet_pick(used, 0), 0);
	netns_subnet_mark(used, a0);
	netns_subnet_mark(used, a1);
	netns_subnet_mark(used, other1);
	netns_subnet_mark(used, other2);
	assert_true(netns_subnet_used(used, 0));
	assert_true(netns_subnet_used(used, 1));
	assert_false(netns_subnet_used(used, 2));
	assert_int_equal(netns_subnet_pick(used, 0), 2);
	assert_int_equal(netns_subnet_pick(used, 3), 3);
	netns_subnet_mark(used, last);
	assert_true(netns_subnet_used(used, 255));
	assert_true(netns_subnet_used(used, 256)); /* out of range counts as used */
	assert_int_equal(netns_subnet_pick(used, 255), -1);
	assert_int_equal(netns_subnet_pick(used, 256), -1);
	memset(used, 0xff, sizeof(used));
	assert_int_equal(netns_subnet_pick(used, 0), -1);
}

static void test_subnet_ip(void **state)
{
	(void)state;
	char ip[16];
	assert_int_equal(netns_subnet_ip(ip, sizeof(ip), 0, NETNS_PROXY_OCTET), 0);
	assert_string_equal(ip, "10.200.0.1");
	assert_int_equal(netns_subnet_ip(ip, sizeof(ip), 255, NETNS_SANDBOX_OCTET), 0);
	assert_string_equal(ip, "10.200.255.2");
	assert_int_equal(netns_subnet_ip(ip, sizeof(ip), 256, 1), -1);
	assert_int_equal(netns_subnet_ip(ip, sizeof(ip), 1, 0), -1);
	assert_int_equal(netns_subnet_ip(ip, sizeof(ip), 1, 255), -1);
	assert_int_equal(netns_subnet_ip(ip, 8, 1, 1), -1);
	assert_int_equal(netns_subnet_ip(NULL, 16, 1, 1), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_run_id_valid),
		cmocka_unit_test(test_run_id_random),
		cmocka_unit_test(test_ifnames),
		cmocka_unit_test(test_subnet_pick),
		cmocka_unit_test(test_subnet_ip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
