/* test_name_cache.c - the proxy's positive cache of resolutions
 * (proxy/name_cache.h): reuse within the TTL only, order and IPv6 scope
 * kept, nothing cached that a hit could not check exactly as a fresh
 * resolution (more than PROXY_MAX_DIAL_ADDRS addresses, other families). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "proxy/name_cache.h"

#define MAX_TEST_ADDRS 32

struct fake_res {
	struct addrinfo ai[MAX_TEST_ADDRS];
	struct sockaddr_in6 sa[MAX_TEST_ADDRS];
	size_t n;
};

/* Appends an address ("1.2.3.4" or "fe80::1%3" style: scope after '%'). */
static void add(struct fake_res *r, const char *text)
{
	assert_true(r->n < MAX_TEST_ADDRS);
	struct addrinfo *ai = &r->ai[r->n];
	struct sockaddr_in6 *s6 = &r->sa[r->n];
	memset(ai, 0, sizeof(*ai));
	memset(s6, 0, sizeof(*s6));
	char buf[64];
	snprintf(buf, sizeof(buf), "%s", text);
	char *pct = strchr(buf, '%');
	if (pct != NULL)
		*pct = '\0';
	struct sockaddr_in *s4 = (struct sockaddr_in *)s6;
	if (inet_pton(AF_INET, buf, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(443);
		ai->ai_family = AF_INET;
		ai->ai_addrlen = sizeof(*s4);
	} else {
		assert_int_equal(inet_pton(AF_INET6, buf, &s6->sin6_addr), 1);
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(443);
		s6->sin6_scope_id = pct != NULL ? (uint32_t)atoi(pct + 1) : 0;
		ai->ai_family = AF_INET6;
		ai->ai_addrlen = sizeof(*s6);
	}
	ai->ai_addr = (struct sockaddr *)s6;
	if (r->n > 0)
		r->ai[r->n - 1].ai_next = ai;
	r->n++;
}

static void assert_v4(const struct sockaddr_storage *ss, const char *text)
{
	char buf[INET_ADDRSTRLEN];
	assert_int_equal(ss->ss_family, AF_INET);
	inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, buf, sizeof(buf));
	assert_string_equal(buf, text);
}

static void test_hit_within_ttl_only(void **state)
{
	struct name_cache nc = { 0 };
	struct fake_res r = { 0 };
	add(&r, "198.51.100.7");
	add(&r, "2001:db8::7");
	name_cache_put(&nc, "a.test", r.ai, 1000);
	struct sockaddr_storage out[PROXY_MAX_DIAL_ADDRS];
	assert_int_equal(name_cache_get(&nc, "a.test", 1000, out, PROXY_MAX_DIAL_ADDRS), 2);
	assert_v4(&out[0], "198.51.100.7");
	assert_int_equal(out[1].ss_family, AF_INET6);
	assert_int_equal(name_cache_get(&nc, "a.test", 1000 + PROXY_NAME_CACHE_TTL_MS - 1, out,
					PROXY_MAX_DIAL_ADDRS), 2);
	assert_int_equal(name_cache_get(&nc, "a.test", 1000 + PROXY_NAME_CACHE_TTL_MS, out,
					PROXY_MAX_DIAL_ADDRS), 0);
	/* expired entries are dropped, not revived */
	assert_int_equal(name_cache_get(&nc, "a.test", 1000, out, PROXY_MAX_DIAL_ADDRS), 0);
	assert_int_equal(name_cache_get(&nc, "b.test", 1000, out, PROXY_MAX_DIAL_ADDRS), 0);
	name_cache_clear(&nc);
}

static void test_scope_and_order_kept(void **state)
{
	struct name_cache nc = { 0 };
	struct fake_res r = { 0 };
	add(&r, "fe80::1%3");
	add(&r, "203.0.113.9");
	name_cache_put(&nc, "s.test", r.ai, 5);
	struct sockaddr_storage out[PROXY_MAX_DIAL_ADDRS];
	assert_int_equal(name_cache_get(&nc, "s.test", 6, out, PROXY_MAX_DIAL_ADDRS), 2);
	assert_int_equal(out[0].ss_family, AF_INET6);
	assert_int_equal(((struct sockaddr_in6 *)&out[0])->sin6_scope_id, 3);
	assert_v4(&out[1], "203.0.113.9");
	name_cache_clear(&nc);
}

/* A hit must check every address a fresh resolution would: a longer list
 * than is kept, or an address of another family, is not cached. */
static void test_uncheckable_results_not_cached(void **state)
{
	struct name_cache nc = { 0 };
	struct fake_res many = { 0 };
	for (unsigned i = 0; i <= PROXY_MAX_DIAL_ADDRS; i++) {
		char a[32];
		snprintf(a, sizeof(a), "198.51.100.%u", i + 1);
		add(&many, a);
	}
	name_cache_put(&nc, "many.test", many.ai, 0);
	struct sockaddr_storage out[PROXY_MAX_DIAL_ADDRS];
	assert_int_equal(name_cache_get(&nc, "many.test", 1, out, PROXY_MAX_DIAL_ADDRS), 0);

	struct fake_res odd = { 0 };
	add(&odd, "198.51.100.1");
	odd.ai[0].ai_family = AF_UNIX;
	name_cache_put(&nc, "odd.test", odd.ai, 0);
	assert_int_equal(name_cache_get(&nc, "odd.test", 1, out, PROXY_MAX_DIAL_ADDRS), 0);
	name_cache_put(&nc, "none.test", NULL, 0);
	assert_int_equal(name_cache_get(&nc, "none.test", 1, out, PROXY_MAX_DIAL_ADDRS), 0);
	name_cache_clear(&nc);
}

/* The cache is bounded: filling every slot many times over keeps at most
 * PROXY_NAME_CACHE_SLOTS names, each answering only for itself. */
static void test_bounded_and_exact_names(void **state)
{
	struct name_cache nc = { 0 };
	struct fake_res r = { 0 };
	add(&r, "198.51.100.1");
	char name[64];
	for (unsigned i = 0; i < 4 * PROXY_NAME_CACHE_SLOTS; i++) {
		snprintf(name, sizeof(name), "h%u.test", i);
		name_cache_put(&nc, name, r.ai, 0);
	}
	size_t hits = 0;
	struct sockaddr_storage out[1];
	for (unsigned i = 0; i < 4 * PROXY_NAME_CACHE_SLOTS; i++) {
		snprintf(name, sizeof(name), "h%u.test", i);
		hits += name_cache_get(&nc, name, 1, out, 1);
	}
	assert_true(hits > 0 && hits <= PROXY_NAME_CACHE_SLOTS);
	assert_int_equal(name_cache_get(&nc, "H0.test", 1, out, 1) +
			 name_cache_get(&nc, "h0.test.", 1, out, 1), 0);
	name_cache_clear(&nc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hit_within_ttl_only),
		cmocka_unit_test(test_scope_and_order_kept),
		cmocka_unit_test(test_uncheckable_results_not_cached),
		cmocka_unit_test(test_bounded_and_exact_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
