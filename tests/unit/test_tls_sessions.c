/* test_tls_sessions.c - upstream TLS sessions kept for resumption
 * (proxy/tls_sessions.h): offered only to the same host and port, newest
 * first, each once; expired and unresumable sessions never offered; bounded
 * per host, in hosts (least recently used host evicted) and overall. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "proxy/tls_sessions.h"

/* A resumable session whose id names it (id_byte), valid for ttl seconds
 * from now (a negative ttl: already expired). */
static SSL_SESSION *session(unsigned char id_byte, long ttl)
{
	SSL_SESSION *s = SSL_SESSION_new();
	assert_non_null(s);
	unsigned char id[8];
	memset(id, id_byte, sizeof(id));
	assert_int_equal(SSL_SESSION_set1_id(s, id, sizeof(id)), 1);
	time_t now = time(NULL);
	assert_true(SSL_SESSION_set_time(s, ttl < 0 ? now + ttl - 10 : now) != 0);
	assert_true(SSL_SESSION_set_timeout(s, ttl < 0 ? 5 : ttl) != 0);
	return s;
}

static unsigned char id_of(SSL_SESSION *s)
{
	unsigned int len = 0;
	const unsigned char *id = SSL_SESSION_get_id(s, &len);
	assert_int_equal(len, 8);
	return id[0];
}

/* Takes one session for host:port and returns its id byte (0: none). */
static unsigned char take(struct tls_sessions *c, const char *host, unsigned port)
{
	SSL_SESSION *s = tls_sessions_take(c, host, port);
	if (s == NULL)
		return 0;
	unsigned char b = id_of(s);
	SSL_SESSION_free(s);
	return b;
}

static struct tls_sessions *new_cache(void)
{
	struct tls_sessions *c = calloc(1, sizeof(*c));
	assert_non_null(c);
	return c;
}

static void free_cache(struct tls_sessions *c)
{
	tls_sessions_clear(c);
	free(c);
}

static void test_same_host_and_port_only_newest_first_once(void **state)
{
	(void)state;
	struct tls_sessions *c = new_cache();
	assert_int_equal(take(c, "api.example.test", 443), 0);
	tls_sessions_put(c, "api.example.test", 443, session(1, 300));
	tls_sessions_put(c, "api.example.test", 443, session(2, 300));
	assert_int_equal(take(c, "api.example.test", 8443), 0);
	assert_int_equal(take(c, "other.example.test", 443), 0);
	assert_int_equal(take(c, "API.example.test.", 443), 0);
	assert_int_equal(take(c, "api.example.test", 443), 2);
	assert_int_equal(take(c, "api.example.test", 443), 1);
	assert_int_equal(take(c, "api.example.test", 443), 0);
	free_cache(c);
}

static void test_expired_and_unresumable_are_not_offered(void **state)
{
	(void)state;
	struct tls_sessions *c = new_cache();
	tls_sessions_put(c, "a.test", 443, session(1, 300));
	tls_sessions_put(c, "a.test", 443, session(2, -1)); /* dropped at put */
	assert_int_equal(take(c, "a.test", 443), 1);
	SSL_SESSION *no_id = SSL_SESSION_new(); /* neither id nor ticket */
	assert_non_null(no_id);
	tls_sessions_put(c, "a.test", 443, no_id);
	assert_int_equal(take(c, "a.test", 443), 0);
	tls_sessions_put(c, "a.test", 443, NULL);
	assert_int_equal(take(c, "a.test", 443), 0);
	free_cache(c);
}

static void test_expiry_while_kept(void **state)
{
	(void)state;
	struct tls_sessions *c = new_cache();
	tls_sessions_put(c, "a.test", 443, session(1, 300));
	SSL_SESSION *s = session(2, 300);
	tls_sessions_put(c, "a.test", 443, s);
	/* the newest one expires in the cache: skipped, the older one offered */
	assert_true(SSL_SESSION_set_time(s, time(NULL) - 1000) != 0);
	assert_int_equal(take(c, "a.test", 443), 1);
	assert_int_equal(take(c, "a.test", 443), 0);
	free_cache(c);
}

static void test_bounded_per_host(void **state)
{
	(void)state;
	struct tls_sessions *c = new_cache();
	for (unsigned i = 1; i <= PROXY_TLS_SESSIONS_PER_HOST + 2; i++)
		tls_sessions_put(c, "a.test", 443, session((unsigned char)i, 300));
	/* the newest PER_HOST are kept, the two oldest were freed */
	for (unsigned i = PROXY_TLS_SESSIONS_PER_HOST + 2; i > 2; i--)
		assert_int_equal(take(c, "a.test", 443), i);
	assert_int_equal(take(c, "a.test", 443), 0);
	free_cache(c);
}

static void test_least_recently_used_host_evicted(void **state)
{
	(void)state;
	struct tls_sessions *c = new_cache();
	char host[64];
	for (unsigned i = 0; i < PROXY_TLS_SESSION_HOSTS; i++) {
		snprintf(host, sizeof(host), "h%u.test", i);
		tls_sessions_put(c, host, 443, session(1, 300));
		tls_sessions_put(c, host, 443, session(2, 300));
	}
	assert_int_equal(take(c, "h0.test", 443), 2); /* h0 is now the most recent */
	tls_sessions_put(c, "new.test", 443, session(3, 300)); /* evicts h1 */
	assert_int_equal(take(c, "h1.test", 443), 0);
	assert_int_equal(take(c, "h0.test", 443), 1);
	assert_int_equal(take(c, "h2.test", 443), 2);
	assert_int_equal(take(c, "new.test", 443), 3);
	free_cache(c);
}

/* PROXY_TLS_SESSIONS_MAX in all: beyond it, the least recently used host
 * with a session gives up its oldest, whichever host the new one is for. */
static void test_bounded_overall(void **state)
{
	(void)state;
	struct tls_sessions *c = new_cache();
	char host[64];
	unsigned hosts = (PROXY_TLS_SESSIONS_MAX + PROXY_TLS_SESSIONS_PER_HOST - 1) /
			 PROXY_TLS_SESSIONS_PER_HOST;
	assert_true(hosts < PROXY_TLS_SESSION_HOSTS);
	unsigned kept = 0;
	for (unsigned h = 0; h < hosts; h++) {
		snprintf(host, sizeof(host), "h%u.test", h);
		for (unsigned i = 1; i <= PROXY_TLS_SESSIONS_PER_HOST && kept < PROXY_TLS_SESSIONS_MAX;
		     i++, kept++)
			tls_sessions_put(c, host, 443, session((unsigned char)i, 300));
	}
	assert_int_equal(tls_sessions_count(c), PROXY_TLS_SESSIONS_MAX);
	/* a new host at the cap: h0, the least recently used, loses its oldest */
	tls_sessions_put(c, "new.test", 443, session(200, 300));
	assert_int_equal(tls_sessions_count(c), PROXY_TLS_SESSIONS_MAX);
	unsigned h0 = 0;
	for (unsigned char id; (id = take(c, "h0.test", 443)) != 0; h0++)
		assert_int_not_equal(id, 1);
	assert_int_equal(h0, PROXY_TLS_SESSIONS_PER_HOST - 1);
	assert_int_equal(take(c, "new.test", 443), 200);
	assert_int_equal(tls_sessions_count(c), PROXY_TLS_SESSIONS_MAX - PROXY_TLS_SESSIONS_PER_HOST);
	free_cache(c);
}

static void test_overlong_host_is_not_kept(void **state)
{
	(void)state;
	struct tls_sessions *c = new_cache();
	char host[PROXY_MAX_HOST_BYTES + 16];
	memset(host, 'a', sizeof(host) - 1);
	host[sizeof(host) - 1] = '\0';
	tls_sessions_put(c, host, 443, session(1, 300));
	assert_int_equal(take(c, host, 443), 0);
	free_cache(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_same_host_and_port_only_newest_first_once),
		cmocka_unit_test(test_expired_and_unresumable_are_not_offered),
		cmocka_unit_test(test_expiry_while_kept),
		cmocka_unit_test(test_bounded_per_host),
		cmocka_unit_test(test_least_recently_used_host_evicted),
		cmocka_unit_test(test_bounded_overall),
		cmocka_unit_test(test_overlong_host_is_not_kept),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
