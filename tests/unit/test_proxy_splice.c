/* test_proxy_splice.c - raw CONNECT tunnels between TCP sockets, which the
 * proxy relays with splice(2) (proxy/splice.c): bytes exact both ways at
 * once, each half-close passed on while the other direction goes on, a
 * reset ends the tunnel, a blocked direction holds one pipe and an idle
 * tunnel none.
 *
 * A fresh proxy runs on a uv loop in a second thread for each test; the
 * test thread holds both ends: the client socket and the upstream socket it
 * accepts from its own listener.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "policy/policy.h"
#include "proxy/proxy.h"
#include "tests/unit/support/harness.h"
#include "tests/unit/support/net.h"

#define BULK_BYTES (16u << 20)

struct world {
	struct tu_proxy_thread pt;
	struct proxy *px;
	struct policy *policy;
	int listen_fd;           /* the upstream: the test accepts from it */
	uint16_t port, up_port;
};

/* ---- proxy on a loop thread ---- */

static int setup(void **state)
{
	struct world *w = calloc(1, sizeof(*w));
	assert_non_null(w);
	w->listen_fd = tu_listen_loopback(&w->up_port);
	char yaml[512];
	snprintf(yaml, sizeof(yaml),
		 "version: 1\n"
		 "network_policies:\n"
		 "  loop:\n"
		 "    name: splice-test\n"
		 "    endpoints:\n"
		 "      - { host: 127.0.0.1, port: %u }\n"
		 "    binaries:\n"
		 "      - { path: /usr/bin/curl }\n",
		 (unsigned)w->up_port);
	w->policy = tu_policy_load(yaml);
	tu_pt_init(&w->pt);
	struct proxy_config cfg = {
		.listen_ip = "127.0.0.1",
		.listen_port = 0,
		.hooks = { .log = tu_log_hook, .log_level = PROXY_LOG_DEBUG, .ud = &w->pt },
		.test_allow_loopback_upstream = true,
	};
	w->px = tu_pt_start(&w->pt, &cfg, w->policy);
	w->port = proxy_listen_port(w->px);
	tu_pt_run(&w->pt);
	*state = w;
	return 0;
}

static int teardown(void **state)
{
	struct world *w = *state;
	tu_pt_stop(&w->pt);
	close(w->listen_fd);
	policy_free(w->policy);
	free(w);
	return 0;
}

/* A CONNECT tunnel: *client is the test's end at the proxy, *server the
 * upstream connection the proxy dialed. */
static void open_tunnel(struct world *w, int *client, int *server)
{
	int fd = tu_dial_loopback(w->port);
	char req[128];
	int n = snprintf(req, sizeof(req), "CONNECT 127.0.0.1:%u HTTP/1.1\r\n\r\n",
			 (unsigned)w->up_port);
	assert_true(tu_send_all(fd, req, (size_t)n));
	static const char ok[] = "HTTP/1.1 200 Connection Established\r\n\r\n";
	char hdr[sizeof(ok)];
	assert_int_equal(tu_read_exact(fd, hdr, sizeof(ok) - 1), sizeof(ok) - 1);
	assert_memory_equal(hdr, ok, sizeof(ok) - 1);
	int s = accept4(w->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(s >= 0);
	assert_int_equal(tu_set_timeouts(s, TU_IO_TIMEOUT_S), 0);
	*client = fd;
	*server = s;
}

/* ---- bulk writers ---- */

struct writer {
	int fd;
	unsigned seed;
	size_t total;
	bool ok;
};

static unsigned char pattern(unsigned seed, size_t i)
{
	return (unsigned char)(((i + seed) * 2654435761u) >> 13);
}

static void *write_pattern(void *arg)
{
	struct writer *wr = arg;
	unsigned char buf[65536];
	wr->ok = true;
	for (size_t off = 0; off < wr->total && wr->ok;) {
		size_t n = wr->total - off < sizeof(buf) ? wr->total - off : sizeof(buf);
		for (size_t i = 0; i < n; i++)
			buf[i] = pattern(wr->seed, off + i);
		wr->ok = tu_send_all(wr->fd, buf, n);
		off += n;
	}
	return NULL;
}

/* Reads exactly `total` bytes of the pattern; false on a short read or a
 * wrong byte. */
static bool read_pattern(int fd, unsigned seed, size_t total)
{
	static char buf[65536];
	size_t off = 0;
	while (off < total) {
		size_t want = total - off < sizeof(buf) ? total - off : sizeof(buf);
		size_t got = tu_read_exact(fd, buf, want);
		for (size_t i = 0; i < got; i++)
			if ((unsigned char)buf[i] != pattern(seed, off + i)) {
				fprintf(stderr, "byte %zu differs\n", off + i);
				return false;
			}
		off += got;
		if (got < want)
			return false;
	}
	return true;
}

static bool at_eof(int fd)
{
	char c;
	return recv(fd, &c, 1, 0) == 0;
}

/* ---- tests ---- */

/* Both directions at once, byte exact; then the client half-closes first:
 * its EOF reaches the server, which can still answer, and its EOF ends
 * the tunnel. */
static void test_both_ways_then_client_half_close(void **state)
{
	struct world *w = *state;
	int cl, sv;
	open_tunnel(w, &cl, &sv);
	struct writer up = { .fd = cl, .seed = 1, .total = BULK_BYTES };
	struct writer down = { .fd = sv, .seed = 7, .total = BULK_BYTES };
	pthread_t t1, t2;
	assert_int_equal(pthread_create(&t1, NULL, write_pattern, &up), 0);
	assert_int_equal(pthread_create(&t2, NULL, write_pattern, &down), 0);
	bool got_down = read_pattern(cl, 7, BULK_BYTES);
	bool got_up = read_pattern(sv, 1, BULK_BYTES);
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	assert_true(up.ok && down.ok);
	assert_true(got_down);
	assert_true(got_up);

	assert_int_equal(shutdown(cl, SHUT_WR), 0);
	assert_true(at_eof(sv));
	assert_true(tu_send_all(sv, "after", 5));
	char buf[8];
	assert_int_equal(tu_read_exact(cl, buf, 5), 5);
	assert_memory_equal(buf, "after", 5);
	assert_int_equal(shutdown(sv, SHUT_WR), 0);
	assert_true(at_eof(cl));
	close(cl);
	close(sv);
}

/* The upstream ends first; the client keeps sending after reading its EOF. */
static void test_server_half_close_first(void **state)
{
	struct world *w = *state;
	int cl, sv;
	open_tunnel(w, &cl, &sv);
	struct writer down = { .fd = sv, .seed = 3, .total = BULK_BYTES };
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, write_pattern, &down), 0);
	bool got_down = read_pattern(cl, 3, BULK_BYTES);
	pthread_join(t, NULL);
	assert_true(down.ok && got_down);
	assert_int_equal(shutdown(sv, SHUT_WR), 0);
	assert_true(at_eof(cl));
	struct writer up = { .fd = cl, .seed = 5, .total = 1u << 20 };
	assert_int_equal(pthread_create(&t, NULL, write_pattern, &up), 0);
	assert_true(read_pattern(sv, 5, up.total));
	pthread_join(t, NULL);
	assert_true(up.ok);
	assert_int_equal(shutdown(cl, SHUT_WR), 0);
	assert_true(at_eof(sv));
	close(cl);
	close(sv);
}

/* A reset from the upstream ends the client's side too. */
static void test_reset_ends_tunnel(void **state)
{
	struct world *w = *state;
	int cl, sv;
	open_tunnel(w, &cl, &sv);
	assert_true(tu_send_all(cl, "ping", 4));
	char buf[4];
	assert_int_equal(tu_read_exact(sv, buf, 4), 4);
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	assert_int_equal(setsockopt(sv, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
	close(sv);
	char c;
	ssize_t n = recv(cl, &c, 1, 0);
	assert_true(n == 0 || (n < 0 && errno == ECONNRESET));
	close(cl);
}

static int count_pipes(void)
{
	DIR *d = opendir("/proc/self/fd");
	assert_non_null(d);
	int n = 0;
	struct dirent *e;
	char target[64];
	while ((e = readdir(d)) != NULL) {
		ssize_t len = readlinkat(dirfd(d), e->d_name, target, sizeof(target) - 1);
		if (len > 0) {
			target[len] = '\0';
			n += strncmp(target, "pipe:", 5) == 0;
		}
	}
	closedir(d);
	return n;
}

/* Writes to sv until the tunnel is full (a send blocks for 1 s). */
static size_t fill_until_blocked(int sv)
{
	int one = 1;
	assert_int_equal(setsockopt(sv, SOL_SOCKET, SO_SNDBUF, &one, sizeof(one)), 0);
	struct timeval tv = { .tv_sec = 1 };
	assert_int_equal(setsockopt(sv, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)), 0);
	static char chunk[65536];
	memset(chunk, 'z', sizeof(chunk));
	size_t sent = 0;
	for (;;) {
		ssize_t n = send(sv, chunk, sizeof(chunk), MSG_NOSIGNAL);
		if (n <= 0)
			break;
		sent += (size_t)n;
		assert_true(sent < (256u << 20)); /* bounded: flow control holds */
	}
	return sent;
}

/* The upstream fills a client that does not read: that direction holds one
 * pipe (two descriptors) in the proxy. Drained, the tunnel gives it back:
 * a second blocked tunnel reuses it instead of opening another. */
static void test_blocked_direction_holds_one_pipe(void **state)
{
	struct world *w = *state;
	int base = count_pipes();
	int cl, sv;
	open_tunnel(w, &cl, &sv);
	assert_int_equal(count_pipes(), base); /* idle: none */
	size_t sent = fill_until_blocked(sv);
	assert_int_equal(count_pipes(), base + 2);
	char *buf = malloc(sent);
	assert_non_null(buf);
	assert_int_equal(tu_read_exact(cl, buf, sent), sent);
	free(buf);
	assert_true(tu_send_all(sv, "x", 1)); /* a round trip: the proxy is past the drain */
	char c;
	assert_int_equal(tu_read_exact(cl, &c, 1), 1);

	int cl2, sv2;
	open_tunnel(w, &cl2, &sv2);
	fill_until_blocked(sv2);
	assert_int_equal(count_pipes(), base + 2);
	close(cl2);
	close(sv2);
	close(cl);
	close(sv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_both_ways_then_client_half_close, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_server_half_close_first, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_ends_tunnel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_blocked_direction_holds_one_pipe, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
