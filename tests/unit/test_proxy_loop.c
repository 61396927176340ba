/* test_proxy_loop.c - end-to-end proxy behaviour on 127.0.0.1.
 *
 * The proxy runs on a uv loop in a second thread; the test thread is the
 * client, with blocking sockets. Upstreams are small blocking servers in
 * their own threads. Loopback destinations are always blocked by the SSRF
 * guard, so the main proxy instance sets the test-only
 * `test_allow_loopback_upstream`; a second instance without it checks that
 * loopback is refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "policy/policy.h"
#include "proxy/proxy.h"
#include "tests/unit/support/harness.h"
#include "tests/unit/support/net.h"

/* ---- upstream servers (blocking, one connection at a time) ---- */

enum upstream_mode { UP_ECHO, UP_HTTP, UP_SOURCE };

#define SOURCE_BYTES (64u << 20) /* UP_SOURCE writes this much, if it can */

struct upstream {
	enum upstream_mode mode;
	int fd;
	uint16_t port;
	pthread_t thread;
	pthread_mutex_t mu;
	char last[65536];   /* bytes received on the last HTTP connection */
	size_t last_len;
	int n_accepted;
	size_t source_sent;  /* UP_SOURCE: bytes accepted by the kernel */
	bool source_finished;
};

/* Read one request (head + Content-Length body), then keep reading for a
 * short while so anything forwarded after it is recorded too. */
static void serve_http(struct upstream *u, int fd)
{
	char buf[65536];
	size_t len = 0;
	tu_set_timeouts(fd, 1);
	for (;;) {
		ssize_t n = recv(fd, buf + len, sizeof(buf) - len, 0);
		if (n <= 0)
			break;
		len += (size_t)n;
		const char *end = memmem(buf, len, "\r\n\r\n", 4);
		if (end == NULL)
			continue;
		size_t body = 0;
		size_t head = (size_t)(end - buf) + 4;
		const char *cl = memmem(buf, head, "Content-Length: ", 16);
		if (cl != NULL)
			body = strtoul(cl + 16, NULL, 10);
		bool chunked = memmem(buf, head, "Transfer-Encoding: chunked", 26) != NULL;
		bool complete = chunked ? memmem(buf + head, len - head, "0\r\n\r\n", 5) != NULL
					: len >= head + body;
		if (complete) {
			struct pollfd p = { .fd = fd, .events = POLLIN };
			if (poll(&p, 1, 200) > 0) {
				n = recv(fd, buf + len, sizeof(buf) - len, 0);
				if (n > 0)
					len += (size_t)n;
			}
			break;
		}
	}
	pthread_mutex_lock(&u->mu);
	memcpy(u->last, buf, len);
	u->last_len = len;
	pthread_mutex_unlock(&u->mu);
	static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
	tu_send_all(fd, resp, sizeof(resp) - 1);
}

/* Write as much as possible; stop when a send blocks for 2 s. */
static void serve_source(struct upstream *u, int fd)
{
	char buf[65536];
	memset(buf, 'x', sizeof(buf));
	struct timeval tv = { .tv_sec = 2 };
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	size_t sent = 0;
	while (sent < SOURCE_BYTES) {
		ssize_t n = send(fd, buf, sizeof(buf), MSG_NOSIGNAL);
		if (n <= 0)
			break;
		sent += (size_t)n;
	}
	pthread_mutex_lock(&u->mu);
	u->source_sent = sent;
	u->source_finished = true;
	pthread_mutex_unlock(&u->mu);
}

static void *upstream_main(void *arg)
{
	struct upstream *u = arg;
	for (;;) {
		int fd = accept(u->fd, NULL, NULL);
		if (fd < 0)
			break; /* listener shut down */
		pthread_mutex_lock(&u->mu);
		u->n_accepted++;
		pthread_mutex_unlock(&u->mu);
		tu_set_timeouts(fd, TU_IO_TIMEOUT_S);
		if (u->mode == UP_ECHO)
			tu_echo_until_eof(fd);
		else if (u->mode == UP_SOURCE)
			serve_source(u, fd);
		else
			serve_http(u, fd);
		close(fd);
	}
	return NULL;
}

static void upstream_start(struct upstream *u, enum upstream_mode mode)
{
	memset(u, 0, sizeof(*u));
	u->mode = mode;
	pthread_mutex_init(&u->mu, NULL);
	u->fd = tu_listen_loopback(&u->port);
	assert_int_equal(pthread_create(&u->thread, NULL, upstream_main, u), 0);
}

static void upstream_stop(struct upstream *u)
{
	shutdown(u->fd, SHUT_RDWR);
	pthread_join(u->thread, NULL);
	close(u->fd);
	pthread_mutex_destroy(&u->mu);
}

/* ---- proxy on a loop thread ---- */

struct world {
	struct tu_proxy_thread pt;
	struct proxy *px;        /* test_allow_loopback_upstream = true */
	struct proxy *px_strict; /* production settings */
	uint16_t port, strict_port;
	struct policy *policy;
	struct upstream echo, http, source;
	uint16_t closed_port;    /* nothing listens here */
	int open_fds[4];         /* client sockets left open across proxy_stop */
	size_t n_open_fds;
};

static uint16_t unused_port(void)
{
	uint16_t port;
	int fd = tu_listen_loopback(&port);
	close(fd);
	return port;
}

static struct policy *make_policy(const struct world *w)
{
	char yaml[2048];
	snprintf(yaml, sizeof(yaml),
		 "version: 1\n"
		 "network_policies:\n"
		 "  loop:\n"
		 "    name: loop-test\n"
		 "    endpoints:\n"
		 "      - { host: 127.0.0.1, port: %u }\n"
		 "      - { host: 127.0.0.1, port: %u }\n"
		 "      - { host: 127.0.0.1, port: %u }\n"
		 "      - { host: 127.0.0.1, port: %u }\n"
		 "      - { host: 10.0.0.1, port: 443 }\n"
		 "      - { host: nonexistent.invalid, port: 443 }\n"
		 "    binaries:\n"
		 "      - { path: /usr/bin/curl }\n",
		 (unsigned)w->echo.port, (unsigned)w->http.port, (unsigned)w->closed_port,
		 (unsigned)w->source.port);
	return tu_policy_load(yaml);
}

static int setup(void **state)
{
	struct world *w = calloc(1, sizeof(*w));
	assert_non_null(w);
	upstream_start(&w->echo, UP_ECHO);
	upstream_start(&w->http, UP_HTTP);
	upstream_start(&w->source, UP_SOURCE);
	w->closed_port = unused_port();
	w->policy = make_policy(w);
	tu_pt_init(&w->pt);
	struct proxy_config cfg = {
		.listen_ip = "127.0.0.1",
		.listen_port = 0,
		.hooks = { .audit = tu_audit_hook, .log = tu_log_hook, .log_level = PROXY_LOG_DEBUG, .ud = &w->pt },
		.test_allow_loopback_upstream = true,
	};
	w->px = tu_pt_start(&w->pt, &cfg, w->policy);
	w->port = proxy_listen_port(w->px);
	cfg.test_allow_loopback_upstream = false;
	w->px_strict = tu_pt_start(&w->pt, &cfg, w->policy);
	w->strict_port = proxy_listen_port(w->px_strict);
	tu_pt_run(&w->pt);
	*state = w;
	return 0;
}

static int teardown(void **state)
{
	struct world *w = *state;
	tu_pt_stop(&w->pt);
	for (size_t i = 0; i < w->n_open_fds; i++) {
		char *rest = tu_read_all(w->open_fds[i], NULL); /* proxy_stop closed them */
		free(rest);
		close(w->open_fds[i]);
	}
	upstream_stop(&w->echo);
	upstream_stop(&w->http);
	upstream_stop(&w->source);
	policy_free(w->policy);
	free(w);
	return 0;
}

/* ---- client helpers ---- */

#define assert_starts_with(s, prefix) \
	do { \
		if (strncmp((s), (prefix), strlen(prefix)) != 0) \
			fail_msg("expected prefix %s, got: %.200s", (prefix), (s)); \
	} while (0)

/* ---- tests ---- */

static void test_connect_relay_with_early_data(void **state)
{
	struct world *w = *state;
	int fd = tu_dial_loopback(w->port);
	char req[256];
	int n = snprintf(req, sizeof(req),
			 "CONNECT 127.0.0.1:%u HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n\r\nhello",
			 (unsigned)w->echo.port, (unsigned)w->echo.port);
	assert_true(tu_send_all(fd, req, (size_t)n));
	static const char ok[] = "HTTP/1.1 200 Connection Established\r\n\r\n";
	char buf[256];
	assert_int_equal(tu_read_exact(fd, buf, sizeof(ok) - 1 + 5), sizeof(ok) - 1 + 5);
	assert_memory_equal(buf, ok, sizeof(ok) - 1);
	assert_memory_equal(buf + sizeof(ok) - 1, "hello", 5); /* early bytes kept */
	assert_true(tu_send_all(fd, "world", 5));
	assert_int_equal(tu_read_exact(fd, buf, 5), 5);
	assert_memory_equal(buf, "world", 5);
	/* Half-close: our EOF reaches the echo server, which closes; we get EOF. */
	shutdown(fd, SHUT_WR);
	char *rest = tu_read_all(fd, NULL);
	assert_string_equal(rest, "");
	free(rest);
	close(fd);
	assert_true(tu_pt_audit_has(&w->pt, "\"action\":\"allow\""));
	assert_true(tu_pt_audit_has(&w->pt, "\"class_uid\":4001"));
}

struct bulk_writer {
	int fd;
	size_t total;
};

static unsigned char bulk_byte(size_t i)
{
	return (unsigned char)((i * 2654435761u) >> 13);
}

static void *bulk_write(void *arg)
{
	struct bulk_writer *b = arg;
	unsigned char buf[32768];
	for (size_t off = 0; off < b->total;) {
		size_t n = b->total - off < sizeof(buf) ? b->total - off : sizeof(buf);
		for (size_t i = 0; i < n; i++)
			buf[i] = bulk_byte(off + i);
		if (!tu_send_all(b->fd, buf, n))
			break;
		off += n;
	}
	shutdown(b->fd, SHUT_WR);
	return NULL;
}

static void test_connect_bulk_integrity(void **state)
{
	struct world *w = *state;
	int fd = tu_dial_loopback(w->port);
	char req[128];
	int n = snprintf(req, sizeof(req), "CONNECT 127.0.0.1:%u HTTP/1.1\r\n\r\n",
			 (unsigned)w->echo.port);
	assert_true(tu_send_all(fd, req, (size_t)n));
	static const char ok[] = "HTTP/1.1 200 Connection Established\r\n\r\n";
	char hdr[sizeof(ok)];
	assert_int_equal(tu_read_exact(fd, hdr, sizeof(ok) - 1), sizeof(ok) - 1);
	struct bulk_writer b = { .fd = fd, .total = 8u << 20 };
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, bulk_write, &b), 0);
	size_t len = 0;
	char *data = tu_read_all(fd, &len);
	pthread_join(t, NULL);
	assert_int_equal(len, b.total);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)data[i] != bulk_byte(i))
			fail_msg("byte %zu differs", i);
	free(data);
	close(fd);
}

/* A client that does not read must stall the upstream: the proxy buffers at
 * most PROXY_RELAY_BUF_BYTES per direction (plus kernel socket buffers). */
static void test_connect_backpressure(void **state)
{
	struct world *w = *state;
	int fd = tu_dial_loopback(w->port);
	char req[128];
	int n = snprintf(req, sizeof(req), "CONNECT 127.0.0.1:%u HTTP/1.1\r\n\r\n",
			 (unsigned)w->source.port);
	assert_true(tu_send_all(fd, req, (size_t)n));
	static const char ok[] = "HTTP/1.1 200 Connection Established\r\n\r\n";
	char hdr[sizeof(ok)];
	assert_int_equal(tu_read_exact(fd, hdr, sizeof(ok) - 1), sizeof(ok) - 1);
	bool finished = false;
	size_t sent = 0;
	for (int i = 0; i < 100 && !finished; i++) { /* up to 10 s */
		usleep(100 * 1000);
		pthread_mutex_lock(&w->source.mu);
		finished = w->source.source_finished;
		sent = w->source.source_sent;
		pthread_mutex_unlock(&w->source.mu);
	}
	close(fd);
	assert_true(finished);
	if (getenv("PROXY_TEST_VERBOSE") != NULL)
		fprintf(stderr, "upstream stalled after %zu bytes\n", sent);
	/* Loopback socket buffers can hold several MiB each; without flow
	 * control the proxy would have taken all 64 MiB. */
	if (sent >= SOURCE_BYTES / 2)
		fail_msg("upstream pushed %zu bytes into a non-reading client", sent);
}

static void test_connect_policy_denied(void **state)
{
	struct world *w = *state;
	char *r = tu_exchange_str(w->port, "CONNECT Denied.Example.com:443 HTTP/1.1\r\n\r\n");
	assert_starts_with(r, "HTTP/1.1 403 Forbidden\r\n");
	assert_contains(r, "Content-Type: application/json\r\n");
	assert_contains(r, "Connection: close\r\n");
	assert_contains(r, "\"error\":\"policy_denied\"");
	assert_contains(r, "\"detail\":\"CONNECT denied.example.com:443 not permitted by policy\"");
	assert_contains(r, "\"reason\":\"endpoint denied.example.com:443 is not allowed by any policy\"");
	assert_contains(r, "\"host\":\"denied.example.com\"");
	assert_contains(r, "\"port\":443");
	assert_contains(r, "\"suggested_rule\":\"- host: denied.example.com\\n  port: 443\\n\"");
	/* Content-Length matches the body. */
	const char *cl = strstr(r, "Content-Length: ");
	const char *body = strstr(r, "\r\n\r\n");
	assert_non_null(cl);
	assert_non_null(body);
	assert_int_equal(strtoul(cl + 16, NULL, 10), strlen(body + 4));
	free(r);
	assert_true(tu_pt_audit_has(&w->pt, "\"hostname\":\"denied.example.com\""));
	assert_true(tu_pt_audit_has(&w->pt, "\"disposition\":\"Blocked\""));
}

static void test_ssrf_loopback_refused_without_test_flag(void **state)
{
	struct world *w = *state;
	char req[128];
	snprintf(req, sizeof(req), "CONNECT 127.0.0.1:%u HTTP/1.1\r\n\r\n", (unsigned)w->echo.port);
	pthread_mutex_lock(&w->echo.mu);
	int before = w->echo.n_accepted;
	pthread_mutex_unlock(&w->echo.mu);
	char *r = tu_exchange_str(w->strict_port, req);
	assert_starts_with(r, "HTTP/1.1 403 Forbidden\r\n");
	assert_contains(r, "\"error\":\"ssrf_denied\"");
	assert_contains(r, "127.0.0.1");
	assert_contains(r, "always blocked");
	free(r);
	pthread_mutex_lock(&w->echo.mu);
	int after = w->echo.n_accepted;
	pthread_mutex_unlock(&w->echo.mu);
	assert_int_equal(before, after); /* never dialed */
}

static void test_ssrf_internal_refused(void **state)
{
	struct world *w = *state;
	char *r = tu_exchange_str(w->port, "CONNECT 10.0.0.1:443 HTTP/1.1\r\n\r\n");
	assert_starts_with(r, "HTTP/1.1 403 Forbidden\r\n");
	assert_contains(r, "\"error\":\"ssrf_denied\"");
	assert_contains(r, "CONNECT 10.0.0.1:443 blocked: address 10.0.0.1 is internal");
	free(r);
	assert_true(tu_pt_audit_has(&w->pt, "\"type\":\"ssrf\""));
}

static void test_forward_rewrite_and_pipelining(void **state)
{
	struct world *w = *state;
	char req[1024];
	int n = snprintf(req, sizeof(req),
			 "POST http://127.0.0.1:%u/p/a?q=1 HTTP/1.1\r\n"
			 "Host: wrong.example\r\n"
			 "Proxy-Connection: keep-alive\r\n"
			 "Proxy-Authorization: Basic Zm9vOmJhcg==\r\n"
			 "Connection: keep-alive, X-Hop\r\n"
			 "X-Hop: secret\r\n"
			 "X-Keep: yes\r\n"
			 "Content-Length: 4\r\n"
			 "\r\n"
			 "bodyGET http://127.0.0.1:%u/blocked HTTP/1.1\r\n\r\n",
			 (unsigned)w->http.port, (unsigned)w->http.port);
	char *r = tu_exchange(w->port, req, (size_t)n);
	assert_starts_with(r, "HTTP/1.1 200 OK\r\n");
	assert_contains(r, "\r\n\r\nok");
	free(r);
	pthread_mutex_lock(&w->http.mu);
	char got[65536 + 1];
	memcpy(got, w->http.last, w->http.last_len);
	got[w->http.last_len] = '\0';
	pthread_mutex_unlock(&w->http.mu);
	assert_starts_with(got, "POST /p/a?q=1 HTTP/1.1\r\n");
	char host[64];
	snprintf(host, sizeof(host), "\r\nHost: 127.0.0.1:%u\r\n", (unsigned)w->http.port);
	assert_contains(got, host);
	assert_contains(got, "\r\nConnection: close\r\n");
	assert_contains(got, "\r\nVia: 1.1 openshell-sandbox\r\n");
	assert_contains(got, "\r\nX-Keep: yes\r\n");
	assert_null(strstr(got, "wrong.example"));
	assert_null(strstr(got, "Proxy-"));
	assert_null(strstr(got, "X-Hop"));
	assert_null(strstr(got, "keep-alive"));
	assert_null(strstr(got, "blocked"));
	size_t len = strlen(got);
	assert_true(len > 8);
	assert_string_equal(got + len - 8, "\r\n\r\nbody");
}

static void test_forward_body_split_across_reads(void **state)
{
	struct world *w = *state;
	int fd = tu_dial_loopback(w->port);
	char req[512];
	int n = snprintf(req, sizeof(req),
			 "PUT http://127.0.0.1:%u/up HTTP/1.1\r\nContent-Length: 10\r\n\r\n01234",
			 (unsigned)w->http.port);
	assert_true(tu_send_all(fd, req, (size_t)n));
	usleep(100 * 1000);
	assert_true(tu_send_all(fd, "56789EXTRA", 10));
	char *r = tu_read_all(fd, NULL);
	close(fd);
	assert_starts_with(r, "HTTP/1.1 200 OK\r\n");
	free(r);
	pthread_mutex_lock(&w->http.mu);
	char got[65536 + 1];
	memcpy(got, w->http.last, w->http.last_len);
	got[w->http.last_len] = '\0';
	pthread_mutex_unlock(&w->http.mu);
	size_t len = strlen(got);
	assert_true(len > 14);
	assert_string_equal(got + len - 14, "\r\n\r\n0123456789");
}

static void last_upstream_request(struct world *w, char *got, size_t cap)
{
	pthread_mutex_lock(&w->http.mu);
	size_t n = w->http.last_len < cap - 1 ? w->http.last_len : cap - 1;
	memcpy(got, w->http.last, n);
	got[n] = '\0';
	pthread_mutex_unlock(&w->http.mu);
}

static void test_forward_chunked_body(void **state)
{
	struct world *w = *state;
	int fd = tu_dial_loopback(w->port);
	char req[512];
	int n = snprintf(req, sizeof(req),
			 "POST http://127.0.0.1:%u/c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
			 "4\r\nbo",
			 (unsigned)w->http.port);
	assert_true(tu_send_all(fd, req, (size_t)n));
	usleep(100 * 1000);
	static const char rest[] = "dy\r\n3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\n"
				   "GET http://127.0.0.1/blocked HTTP/1.1\r\n\r\n";
	assert_true(tu_send_all(fd, rest, sizeof(rest) - 1));
	char *r = tu_read_all(fd, NULL);
	close(fd);
	assert_starts_with(r, "HTTP/1.1 200 OK\r\n");
	free(r);
	char got[65536];
	last_upstream_request(w, got, sizeof(got));
	assert_contains(got, "\r\nTransfer-Encoding: chunked\r\n");
	assert_null(strstr(got, "blocked"));
	size_t len = strlen(got);
	static const char body[] = "\r\n\r\n4\r\nbody\r\n3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\n";
	assert_true(len > sizeof(body) - 1);
	assert_string_equal(got + len - (sizeof(body) - 1), body);
}

static void test_forward_chunked_invalid_midstream(void **state)
{
	struct world *w = *state;
	int fd = tu_dial_loopback(w->port);
	char req[512];
	int n = snprintf(req, sizeof(req),
			 "POST http://127.0.0.1:%u/c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
			 "4\r\nbody\r\n",
			 (unsigned)w->http.port);
	assert_true(tu_send_all(fd, req, (size_t)n));
	usleep(100 * 1000);
	static const char bad[] = "4\nbody\r\n0\r\n\r\n"; /* bare LF */
	assert_true(tu_send_all(fd, bad, sizeof(bad) - 1));
	char *r = tu_read_all(fd, NULL);
	close(fd);
	assert_string_equal(r, ""); /* connection closed, nothing relayed back */
	free(r);
}

static void test_forward_errors(void **state)
{
	struct world *w = *state;
	char *r = tu_exchange_str(w->port, "GET https://target.example/private HTTP/1.1\r\n\r\n");
	assert_string_equal(r, "HTTP/1.1 400 Bad Request\r\nContent-Length: 27\r\n\r\n"
			       "Use CONNECT for HTTPS URLs");
	free(r);
	r = tu_exchange_str(w->port, "GET ftp://api.example.com/x HTTP/1.1\r\n\r\n");
	assert_starts_with(r, "HTTP/1.1 400 Bad Request\r\n");
	assert_contains(r, "unsupported_proxy_scheme");
	free(r);
	r = tu_exchange_str(w->port, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n");
	assert_string_equal(r, "HTTP/1.1 400 Bad Request\r\n\r\n");
	free(r);
	char req[256];
	snprintf(req, sizeof(req),
		 "POST http://127.0.0.1:%u/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
		 "4\r\nbody\r\nzz\r\n\r\n",
		 (unsigned)w->http.port);
	r = tu_exchange_str(w->port, req);
	assert_string_equal(r, "HTTP/1.1 400 Bad Request\r\n\r\n"); /* framing checked early */
	free(r);
	r = tu_exchange_str(w->port, "GET http://denied.example/a/b?secret=1 HTTP/1.1\r\n\r\n");
	assert_starts_with(r, "HTTP/1.1 403 Forbidden\r\n");
	assert_contains(r, "\"detail\":\"GET denied.example:80/a/b not permitted by policy\"");
	assert_null(strstr(r, "secret"));
	free(r);
}

static void test_malformed_heads(void **state)
{
	struct world *w = *state;
	static const char *const bad[] = {
		"GET http://h/ HTTP/1.1 extra\r\n\r\n",
		"CONNECT h:443 HTTP/1.1 extra\r\n\r\n",
		"GET http://h/ HTTP/1.1\nHost: h\n\n",
		"CONNECT h HTTP/1.1\r\n\r\n",
		"CONNECT h:0 HTTP/1.1\r\n\r\n",
		"CONNECT h:99999 HTTP/1.1\r\n\r\n",
		"CONNECT ::1:443 HTTP/1.1\r\n\r\n",
		"CONNECT h_@x:443 HTTP/1.1\r\n\r\n",
		"POST http://h/ HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *r = tu_exchange_str(w->port, bad[i]);
		if (strcmp(r, "HTTP/1.1 400 Bad Request\r\n\r\n") != 0)
			fail_msg("request %zu: got %.100s", i, r);
		free(r);
	}
	static const char nul[] = "GET http://h/ HTTP/1.1\r\nX: a\0b\r\n\r\n";
	char *r = tu_exchange(w->port, nul, sizeof(nul) - 1);
	assert_string_equal(r, "HTTP/1.1 400 Bad Request\r\n\r\n");
	free(r);
}

static void test_head_too_large(void **state)
{
	struct world *w = *state;
	size_t n = PROXY_MAX_HEAD_BYTES + 4096;
	char *req = malloc(n);
	assert_non_null(req);
	memset(req, 'a', n);
	memcpy(req, "GET http://h/ HTTP/1.1\r\nX: ", 27);
	char *r = tu_exchange(w->port, req, n);
	assert_string_equal(r, "HTTP/1.1 431 Request Header Fields Too Large\r\n\r\n");
	free(r);
	free(req);
}

static void test_upstream_unreachable(void **state)
{
	struct world *w = *state;
	char req[128];
	snprintf(req, sizeof(req), "CONNECT 127.0.0.1:%u HTTP/1.1\r\n\r\n", (unsigned)w->closed_port);
	char *r = tu_exchange_str(w->port, req);
	assert_starts_with(r, "HTTP/1.1 502 Bad Gateway\r\n");
	assert_contains(r, "\"error\":\"upstream_unreachable\"");
	free(r);
}

static void test_dns_failure(void **state)
{
	struct world *w = *state;
	char *r = tu_exchange_str(w->port, "CONNECT nonexistent.invalid:443 HTTP/1.1\r\n\r\n");
	/* 502 on a resolver error, 504 if the resolver does not answer in time */
	if (strncmp(r, "HTTP/1.1 502", 12) != 0 && strncmp(r, "HTTP/1.1 504", 12) != 0)
		fail_msg("got %.200s", r);
	assert_contains(r, "DNS resolution");
	free(r);
}

static void test_head_timeout(void **state)
{
	struct world *w = *state;
	int fd = tu_dial_loopback(w->port);
	assert_true(tu_send_all(fd, "GET http://h/ HTTP/1.1\r\n", 24));
	char *r = tu_read_all(fd, NULL); /* the proxy answers after PROXY_HEAD_TIMEOUT_MS */
	close(fd);
	assert_string_equal(r, "HTTP/1.1 408 Request Timeout\r\n\r\n");
	free(r);
}

/* Exhaust the process's descriptors so accept() fails with EMFILE, then
 * release them: the listener must keep working. */
/* dup() until EMFILE; returns how many descriptors were taken. */
static size_t grab_fds(int *fds, size_t have, size_t cap)
{
	while (have < cap) {
		int fd = dup(0);
		if (fd < 0)
			break;
		fds[have++] = fd;
	}
	return have;
}

/* Exhaust the process's descriptors so accept() fails with EMFILE, then
 * release them: the listener must keep working. */
static void test_accept_survives_emfile(void **state)
{
	struct world *w = *state;
	struct rlimit old;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	struct rlimit low = old;
	low.rlim_cur = 256;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);

	int victim = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int fds[256];
	size_t n_fds = grab_fds(fds, 0, 256);
	usleep(300 * 1000); /* let earlier connections finish closing ... */
	n_fds = grab_fds(fds, n_fds, 256); /* ... and take what they released */
	int exhausted = dup(0) < 0 && errno == EMFILE;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(w->port) };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int connected = victim >= 0 && connect(victim, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	ssize_t got = 1;
	if (connected) {
		tu_set_timeouts(victim, TU_IO_TIMEOUT_S);
		char c;
		got = recv(victim, &c, 1, 0); /* shed: EOF or reset */
	}
	if (victim >= 0)
		close(victim);
	for (size_t i = 0; i < n_fds; i++)
		close(fds[i]);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	assert_true(exhausted);
	assert_true(connected);
	assert_true(got <= 0);

	/* Back-off is at most a few hundred ms here; the next connection works. */
	char *r = tu_exchange_str(w->port, "GET /x HTTP/1.1\r\n\r\n");
	assert_string_equal(r, "HTTP/1.1 400 Bad Request\r\n\r\n");
	free(r);
}

/* PROXY_MAX_CONNECTIONS idle clients fill the proxy; the next one gets a
 * 503 and is closed; once they leave, service resumes. */
static void test_connection_cap(void **state)
{
	struct world *w = *state;
	struct rlimit old;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	rlim_t need = 2 * PROXY_MAX_CONNECTIONS + 512;
	struct rlimit high = old;
	if (high.rlim_max != RLIM_INFINITY && high.rlim_max < need)
		high.rlim_max = need; /* needs CAP_SYS_RESOURCE */
	if (high.rlim_cur == RLIM_INFINITY || high.rlim_cur < need)
		high.rlim_cur = need;
	if (setrlimit(RLIMIT_NOFILE, &high) != 0) {
		fprintf(stderr, "test_connection_cap skipped: it needs RLIMIT_NOFILE %lu, the hard "
			"limit is %lu and cannot be raised here (no CAP_SYS_RESOURCE)\n",
			(unsigned long)need, (unsigned long)old.rlim_max);
		skip();
	}

	int *fds = calloc(PROXY_MAX_CONNECTIONS, sizeof(*fds));
	assert_non_null(fds);
	for (size_t i = 0; i < PROXY_MAX_CONNECTIONS; i++)
		fds[i] = tu_dial_loopback(w->port);
	/* Wait until the proxy has accepted them all: a probe then gets 503. */
	char *r = NULL;
	for (int tries = 0; tries < 50; tries++) {
		r = tu_exchange_str(w->port, "GET /x HTTP/1.1\r\n\r\n");
		if (strncmp(r, "HTTP/1.1 503", 12) == 0)
			break;
		free(r);
		r = NULL;
		usleep(20 * 1000);
	}
	for (size_t i = 0; i < PROXY_MAX_CONNECTIONS; i++)
		close(fds[i]);
	free(fds);
	assert_non_null(r);
	assert_contains(r, "\"error\":\"proxy_busy\"");
	free(r);
	/* The proxy frees the slots as it sees the clients' EOFs. */
	r = NULL;
	for (int tries = 0; tries < 100; tries++) {
		r = tu_exchange_str(w->port, "GET /x HTTP/1.1\r\n\r\n");
		if (strcmp(r, "HTTP/1.1 400 Bad Request\r\n\r\n") == 0)
			break;
		free(r);
		r = NULL;
		usleep(50 * 1000);
	}
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	assert_non_null(r);
	free(r);
}

static void test_set_policy_swaps_decisions(void **state)
{
	struct world *w = *state;
	const char *yaml = "version: 1\nnetwork_policies: {}\n";
	struct policy_errors errs = { 0 };
	struct policy *empty = policy_load_buffer(yaml, strlen(yaml), "<empty>", &errs);
	if (empty == NULL) {
		policy_errors_free(&errs);
		skip();
	}
	tu_pt_set_policy(&w->pt, w->px_strict, empty);
	char req[128];
	snprintf(req, sizeof(req), "CONNECT 127.0.0.1:%u HTTP/1.1\r\n\r\n", (unsigned)w->echo.port);
	char *r = tu_exchange_str(w->strict_port, req);
	assert_contains(r, "\"error\":\"policy_denied\""); /* no longer ssrf: denied first */
	free(r);
	tu_pt_set_policy(&w->pt, w->px_strict, w->policy);
	policy_free(empty);
}

static int open_echo_tunnel(struct world *w)
{
	int fd = tu_dial_loopback(w->port);
	char req[128];
	int n = snprintf(req, sizeof(req), "CONNECT 127.0.0.1:%u HTTP/1.1\r\n\r\n",
			 (unsigned)w->echo.port);
	assert_true(tu_send_all(fd, req, (size_t)n));
	static const char ok[] = "HTTP/1.1 200 Connection Established\r\n\r\n";
	char buf[sizeof(ok)];
	assert_int_equal(tu_read_exact(fd, buf, sizeof(ok) - 1), sizeof(ok) - 1);
	assert_memory_equal(buf, ok, sizeof(ok) - 1);
	return fd;
}

static bool tunnel_echoes(int fd)
{
	char buf[4];
	return tu_send_all(fd, "ping", 4) && tu_read_exact(fd, buf, 4) == 4 &&
	       memcmp(buf, "ping", 4) == 0;
}

/* A reload re-judges established raw tunnels: one whose destination the new
 * policy still allows carries on; one it no longer allows is reset at once.
 * Each replaced policy is freed right after the swap (as the supervisor
 * does), so under ASan any pointer a connection kept into it would show. */
static void test_reload_closes_tunnels_it_no_longer_allows(void **state)
{
	struct world *w = *state;
	int fd = open_echo_tunnel(w);
	assert_true(tunnel_echoes(fd));

	struct policy *same = make_policy(w);
	assert_non_null(same);
	tu_pt_set_policy(&w->pt, w->px, same);
	assert_true(tunnel_echoes(fd)); /* still allowed: untouched */

	const char *yaml = "version: 1\nnetwork_policies:\n  other:\n    endpoints:\n"
			   "      - { host: 127.0.0.1, port: 1 }\n";
	struct policy_errors errs = { 0 };
	struct policy *other = policy_load_buffer(yaml, strlen(yaml), "<other>", &errs);
	policy_errors_free(&errs);
	assert_non_null(other);
	tu_pt_set_policy(&w->pt, w->px, other);
	policy_free(same);
	char buf[8];
	tu_set_timeouts(fd, 3);
	errno = 0;
	ssize_t r = recv(fd, buf, sizeof(buf), 0);
	if (!(r == 0 || (r < 0 && errno == ECONNRESET)))
		fail_msg("tunnel not closed by the reload: recv %zd, %s", r, strerror(errno));
	close(fd);
	assert_true(tu_pt_audit_has(&w->pt, "no longer allowed"));

	/* A tunnel opened under `other` to a port it allows would be kept; the
	 * original policy comes back for the next tests. */
	tu_pt_set_policy(&w->pt, w->px, w->policy);
	policy_free(other);
	fd = open_echo_tunnel(w);
	assert_true(tunnel_echoes(fd));

	/* Still allowed, but now with L7 rules: a raw tunnel cannot honour
	 * them, so it is closed too. */
	char l7yaml[512];
	snprintf(l7yaml, sizeof(l7yaml),
		 "version: 1\nnetwork_policies:\n  l7:\n    endpoints:\n"
		 "      - { host: 127.0.0.1, port: %u, protocol: rest, enforcement: enforce,"
		 " access: read-only }\n", (unsigned)w->echo.port);
	struct policy *l7 = policy_load_buffer(l7yaml, strlen(l7yaml), "<l7>", &errs);
	policy_errors_free(&errs);
	assert_non_null(l7);
	tu_pt_set_policy(&w->pt, w->px, l7);
	tu_set_timeouts(fd, 3);
	errno = 0;
	r = recv(fd, buf, sizeof(buf), 0);
	if (!(r == 0 || (r < 0 && errno == ECONNRESET)))
		fail_msg("raw tunnel kept under L7 rules: recv %zd, %s", r, strerror(errno));
	close(fd);
	tu_pt_set_policy(&w->pt, w->px, w->policy);
	policy_free(l7);
	fd = open_echo_tunnel(w);
	assert_true(tunnel_echoes(fd));
	close(fd);
}

/* `tls: skip` concerns TLS: a forwarded http:// request to an endpoint with
 * L7 rules is still judged by them. */
static void test_forward_l7_rules_hold_with_tls_skip(void **state)
{
	struct world *w = *state;
	struct policy *ro = tu_rest_policy(w->http.port, "access: read-only, tls: skip");
	tu_pt_set_policy(&w->pt, w->px, ro);
	char req[256];
	snprintf(req, sizeof(req), "DELETE http://127.0.0.1:%u/x HTTP/1.1\r\nHost: x\r\n\r\n",
		 (unsigned)w->http.port);
	char *r = tu_exchange_str(w->port, req);
	tu_pt_set_policy(&w->pt, w->px, w->policy);
	policy_free(ro);
	assert_starts_with(r, "HTTP/1.1 403");
	assert_contains(r, "policy_denied");
	free(r);
}

/* A method longer than the policy's limit is refused whole (400 JSON), not
 * cut to fit: with every method allowed, the cut one would pass while the
 * whole one went upstream. The longest allowed method still passes. */
static void test_forward_long_method_refused(void **state)
{
	struct world *w = *state;
	struct policy *full = tu_rest_policy(w->http.port, "access: full");
	tu_pt_set_policy(&w->pt, w->px, full);
	char method[POLICY_L7_MAX_METHOD_BYTES + 9], req[512];
	memset(method, 'M', sizeof(method) - 1);
	method[sizeof(method) - 1] = '\0';
	snprintf(req, sizeof(req), "%s http://127.0.0.1:%u/too-long HTTP/1.1\r\nHost: x\r\n\r\n",
		 method, (unsigned)w->http.port);
	char *r = tu_exchange_str(w->port, req);
	pthread_mutex_lock(&w->http.mu);
	bool seen = memmem(w->http.last, w->http.last_len, "/too-long", 9) != NULL;
	pthread_mutex_unlock(&w->http.mu);
	method[POLICY_L7_MAX_METHOD_BYTES] = '\0';
	snprintf(req, sizeof(req), "%s http://127.0.0.1:%u/fits HTTP/1.1\r\nHost: x\r\n\r\n",
		 method, (unsigned)w->http.port);
	char *fits = tu_exchange_str(w->port, req);
	tu_pt_set_policy(&w->pt, w->px, w->policy);
	policy_free(full);
	assert_starts_with(r, "HTTP/1.1 400");
	assert_contains(r, "\"invalid_method\"");
	assert_starts_with(fits, "HTTP/1.1 200");
	free(r);
	free(fits);
	assert_false(seen);
}

/* Leave an established tunnel and a half-sent head open: teardown's
 * proxy_stop must close them and still release every handle. */
static void test_stop_with_open_connections(void **state)
{
	struct world *w = *state;
	int fd = tu_dial_loopback(w->port);
	char req[128];
	int n = snprintf(req, sizeof(req), "CONNECT 127.0.0.1:%u HTTP/1.1\r\n\r\n",
			 (unsigned)w->echo.port);
	assert_true(tu_send_all(fd, req, (size_t)n));
	static const char ok[] = "HTTP/1.1 200 Connection Established\r\n\r\n";
	char buf[sizeof(ok)];
	assert_int_equal(tu_read_exact(fd, buf, sizeof(ok) - 1), sizeof(ok) - 1);
	w->open_fds[w->n_open_fds++] = fd;
	fd = tu_dial_loopback(w->port);
	assert_true(tu_send_all(fd, "GET http://h/ HTTP/1.1\r\n", 24));
	w->open_fds[w->n_open_fds++] = fd;
	usleep(100 * 1000);
}

int main(void)
{
	/* libuv writes with write(2): like the supervisor, ignore SIGPIPE. */
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_connect_relay_with_early_data),
		cmocka_unit_test(test_connect_bulk_integrity),
		cmocka_unit_test(test_connect_backpressure),
		cmocka_unit_test(test_ssrf_loopback_refused_without_test_flag),
		cmocka_unit_test(test_connect_policy_denied),
		cmocka_unit_test(test_ssrf_internal_refused),
		cmocka_unit_test(test_forward_rewrite_and_pipelining),
		cmocka_unit_test(test_forward_body_split_across_reads),
		cmocka_unit_test(test_forward_chunked_body),
		cmocka_unit_test(test_forward_chunked_invalid_midstream),
		cmocka_unit_test(test_forward_errors),
		cmocka_unit_test(test_malformed_heads),
		cmocka_unit_test(test_head_too_large),
		cmocka_unit_test(test_upstream_unreachable),
		cmocka_unit_test(test_dns_failure),
		cmocka_unit_test(test_accept_survives_emfile),
		cmocka_unit_test(test_connection_cap),
		cmocka_unit_test(test_set_policy_swaps_decisions),
		cmocka_unit_test(test_reload_closes_tunnels_it_no_longer_allows),
		cmocka_unit_test(test_forward_l7_rules_hold_with_tls_skip),
		cmocka_unit_test(test_forward_long_method_refused),
		cmocka_unit_test(test_head_timeout),
		cmocka_unit_test(test_stop_with_open_connections),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
