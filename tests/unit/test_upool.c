/* test_upool.c - kept upstream connections (proxy/upool.h): taken only for
 * the same host, port, address and policy generation; never once the server
 * has spoken or ended (found at take, or by the watch while kept); bounded
 * per host; all dropped at once on a reload or stop. Sockets are Unix
 * socket pairs standing in for upstream TCP connections (no SSL: the pool
 * treats it as opaque). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "proxy/proxy_int.h"
#include "proxy/upool.h"

struct fixture {
	uv_loop_t loop;
	struct proxy *px;
	struct sockaddr_in peer;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	assert_int_equal(uv_loop_init(&f->loop), 0);
	f->px = calloc(1, sizeof(*f->px));
	assert_non_null(f->px);
	f->px->loop = &f->loop;
	f->px->policy_gen = 1;
	f->peer.sin_family = AF_INET;
	f->peer.sin_port = htons(443);
	assert_int_equal(inet_pton(AF_INET, "198.51.100.10", &f->peer.sin_addr), 1);
	*state = f;
	return 0;
}

/* Every kept entry dropped and every handle closed, nothing leaked. */
static int teardown(void **state)
{
	struct fixture *f = *state;
	upool_drop_all(f->px);
	for (int i = 0; i < 10 && f->px->open_handles > 0; i++)
		uv_run(&f->loop, UV_RUN_NOWAIT);
	assert_int_equal(f->px->open_handles, 0);
	assert_int_equal(f->px->n_kept, 0);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	free(f->px);
	free(f);
	return 0;
}

/* Keeps one end of a new socket pair; returns the other (the "server"). */
static int keep_one(struct fixture *f, const char *host, uint16_t port, unsigned long gen)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	upool_put(f->px, sv[0], NULL, host, port, (const struct sockaddr *)&f->peer, gen);
	return sv[1];
}

static int take(struct fixture *f, const char *host, uint16_t port, unsigned long gen)
{
	SSL *ssl = (SSL *)1;
	int fd = upool_take(f->px, host, port, (const struct sockaddr *)&f->peer, gen, &ssl);
	if (fd >= 0)
		assert_null(ssl); /* what was kept with it */
	return fd;
}

static void test_taken_only_for_the_same_host_port_address_generation(void **state)
{
	struct fixture *f = *state;
	int server = keep_one(f, "a.test", 443, 1);
	assert_int_equal(f->px->n_kept, 1);
	assert_int_equal(take(f, "b.test", 443, 1), -1);
	assert_int_equal(take(f, "a.test", 8443, 1), -1);
	assert_int_equal(take(f, "a.test", 443, 2), -1); /* decided under another policy */
	struct sockaddr_in other = f->peer;
	other.sin_addr.s_addr ^= htonl(1);
	SSL *ssl;
	assert_int_equal(upool_take(f->px, "a.test", 443, (const struct sockaddr *)&other, 1, &ssl),
			 -1);
	assert_int_equal(f->px->n_kept, 1);
	int fd = take(f, "a.test", 443, 1);
	assert_true(fd >= 0);
	assert_int_equal(f->px->n_kept, 0);
	/* the caller's now: the pool's watch is gone, the socket still works */
	assert_int_equal(write(fd, "x", 1), 1);
	char c;
	assert_int_equal(read(server, &c, 1), 1);
	assert_int_equal(take(f, "a.test", 443, 1), -1); /* taken once */
	close(fd);
	close(server);
}

static void test_never_taken_after_the_server_spoke_or_ended(void **state)
{
	struct fixture *f = *state;
	int spoke = keep_one(f, "a.test", 443, 1);
	int ended = keep_one(f, "a.test", 443, 1);
	assert_int_equal(write(spoke, "late", 4), 4);
	close(ended);
	/* before the loop has seen either: found at take */
	assert_int_equal(take(f, "a.test", 443, 1), -1);
	assert_int_equal(f->px->n_kept, 0);
	close(spoke);
}

static void test_dropped_by_its_watch_when_the_server_speaks(void **state)
{
	struct fixture *f = *state;
	int server = keep_one(f, "a.test", 443, 1);
	assert_int_equal(write(server, "x", 1), 1);
	for (int i = 0; i < 5 && f->px->n_kept > 0; i++)
		uv_run(&f->loop, UV_RUN_NOWAIT);
	assert_int_equal(f->px->n_kept, 0);
	close(server);
}

static void test_bounded_per_host_and_dropped_all_at_once(void **state)
{
	struct fixture *f = *state;
	int servers[PROXY_UPSTREAM_KEEP_PER_HOST + 2];
	for (size_t i = 0; i < PROXY_UPSTREAM_KEEP_PER_HOST + 1; i++)
		servers[i] = keep_one(f, "a.test", 443, 1);
	servers[PROXY_UPSTREAM_KEEP_PER_HOST + 1] = keep_one(f, "b.test", 443, 1);
	assert_int_equal(f->px->n_kept, PROXY_UPSTREAM_KEEP_PER_HOST + 1);
	/* the one over the bound was closed at once: its server sees the end */
	char c;
	assert_int_equal(read(servers[PROXY_UPSTREAM_KEEP_PER_HOST], &c, 1), 0);
	upool_drop_all(f->px);
	assert_int_equal(f->px->n_kept, 0);
	assert_int_equal(read(servers[0], &c, 1), 0);
	for (size_t i = 0; i < PROXY_UPSTREAM_KEEP_PER_HOST + 2; i++)
		close(servers[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_taken_only_for_the_same_host_port_address_generation,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_never_taken_after_the_server_spoke_or_ended,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_dropped_by_its_watch_when_the_server_speaks,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_bounded_per_host_and_dropped_all_at_once,
						setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
