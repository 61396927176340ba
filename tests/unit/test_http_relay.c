/* test_http_relay.c - the intercepted-tunnel relay end to end on 127.0.0.1,
 * plus the response-head parser, the authority check and the L7 denial.
 *
 * The proxy runs on a uv loop thread; the endpoint 127.0.0.1:<upstream>
 * has L7 rules (access read-write, enforce), so a CONNECT tunnel to it is
 * parsed (plaintext HTTP) or terminated (TLS). The upstream is a blocking
 * server thread running one scripted handler per connection.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
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
#include "proxy/ca.h"
#include "proxy/http_relay.h"
#include "proxy/proxy.h"
#include "proxy/response.h"
#include "tests/unit/support/harness.h"
#include "tests/unit/support/net.h"

#define IO_TIMEOUT_S 10

/* ---- pure parts ---- */

static enum http_resp_result parse(const char *s, struct http_resp_head *h)
{
	return http_resp_parse(s, strlen(s), h, NULL);
}

static void test_response_parser(void **state)
{
	struct http_resp_head h;
	assert_int_equal(parse("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", &h), HTTP_RESP_OK);
	assert_int_equal(h.status, 200);
	assert_true(h.has_content_length);
	assert_int_equal(h.content_length, 2);
	assert_int_equal(h.head_len, strlen("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n"));
	assert_int_equal(parse("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
			       "Connection: Upgrade\r\n\r\n\x81\x05hello", &h), HTTP_RESP_OK);
	assert_int_equal(h.status, 101);
	assert_true(h.n_upgrade > 0);
	assert_int_equal(h.n_upgrade, 1);
	assert_int_equal(h.upgrade.len, 9);
	assert_memory_equal(h.upgrade.p, "websocket", 9);
	assert_int_equal(parse("HTTP/1.1 101 x\r\nUpgrade: a\r\nUpgrade:  b \r\n\r\n", &h),
			 HTTP_RESP_OK);
	assert_int_equal(h.n_upgrade, 2);
	assert_int_equal(h.upgrade.len, 1);
	assert_memory_equal(h.upgrade.p, "a", 1);
	assert_int_equal(parse("HTTP/1.0 204\r\nConnection: close\r\n\r\n", &h), HTTP_RESP_OK);
	assert_true(h.conn_close);
	assert_int_equal(h.minor_version, 0);
	/* HTTP/1.0 closes unless it says keep-alive; HTTP/1.1 stays unless it says close */
	assert_int_equal(parse("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", &h),
			 HTTP_RESP_OK);
	assert_true(h.conn_close);
	assert_int_equal(parse("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\n"
			       "Content-Length: 0\r\n\r\n", &h), HTTP_RESP_OK);
	assert_false(h.conn_close);
	assert_int_equal(parse("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", &h),
			 HTTP_RESP_OK);
	assert_false(h.conn_close);
	assert_int_equal(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n", &h),
			 HTTP_RESP_OK);
	assert_true(h.chunked);
	assert_int_equal(parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n", &h),
			 HTTP_RESP_INCOMPLETE);
	assert_int_equal(parse("HTTP/1.1 200 OK\r\n", &h), HTTP_RESP_INCOMPLETE);
	/* rejected */
	const char *bad[] = {
		"HTTP/1.1 200 OK\nContent-Length: 2\r\n\r\n",                    /* bare LF */
		"HTTP/1.1 200 OK\r\nA: b\rc\r\n\r\n",                            /* bare CR */
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nA: b\r\n folded\r\n\r\n",                    /* obs-fold */
		"HTTP/1.1 200 OK\r\nA : b\r\n\r\n",
		"HTTP/2.0 200 OK\r\n\r\n",
		"HTTP/1.1 2000 OK\r\n\r\n",
		"HTTP/1.1 099 OK\r\n\r\n",
		"ICY 200 OK\r\n\r\n",
		"HTTP/1.1 200 O\x01K\r\n\r\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *why = NULL;
		assert_int_equal(http_resp_parse(bad[i], strlen(bad[i]), &h, &why), HTTP_RESP_BAD);
		assert_non_null(why);
	}
}

static bool am(const char *auth, const char *host, uint16_t port)
{
	return hr_authority_matches(auth, strlen(auth), host, port, 443);
}

static void test_authority(void **state)
{
	assert_true(am("api.example.test", "api.example.test", 443));
	assert_true(am("API.Example.Test.", "api.example.test", 443));
	assert_true(am("api.example.test:443", "api.example.test", 443));
	assert_false(am("api.example.test", "api.example.test", 8080));
	assert_true(am("api.example.test:8080", "api.example.test", 8080));
	assert_true(am("[2001:db8::1]:8443", "2001:db8::1", 8443));
	assert_false(am("2001:db8::1", "2001:db8::1", 443));
	assert_false(am("other.test", "api.example.test", 443));
	assert_false(am("api.example.test:", "api.example.test", 443));
	assert_false(am("api.example.test:44a", "api.example.test", 443));
	assert_false(am("", "api.example.test", 443));
	assert_false(am("api.example.test.evil", "api.example.test", 443));
}

static void test_l7_denial_body(void **state)
{
	struct l7_denial d = { .method = "DELETE", .path = "/x", .host = "h.test", .port = 443,
			       .reason = "DELETE /x not permitted by policy", .rule_name = "pol" };
	size_t len = 0;
	char *keep = response_l7_denied(&d, false, &len);
	assert_non_null(keep);
	assert_int_equal(strlen(keep), len);
	assert_non_null(strstr(keep, "HTTP/1.1 403 Forbidden\r\n"));
	assert_non_null(strstr(keep, "X-OpenShell-Policy: pol\r\n"));
	assert_null(strstr(keep, "Connection: close"));
	assert_non_null(strstr(keep, "\"error\":\"policy_denied\""));
	assert_non_null(strstr(keep, "\"rule\":\"DELETE /x\""));
	char *close = response_l7_denied(&d, true, &len);
	assert_non_null(strstr(close, "Connection: close\r\n"));
	d.rule_name = "bad\r\nX-Injected: 1";
	char *inj = response_l7_denied(&d, false, &len);
	assert_null(strstr(inj, "X-Injected: 1\r\n"));
	free(keep);
	free(close);
	free(inj);
}

/* ---- upstream ---- */

struct up;
typedef void (*up_handler)(struct up *u, int fd);

struct up {
	int lfd;
	uint16_t port;
	pthread_t thread;
	pthread_mutex_t mu;
	up_handler handler;
	char seen[1 << 16];  /* every byte received, all connections */
	size_t seen_len;
	SSL_CTX *tls;        /* non-NULL: TLS server */
};

static void record(struct up *u, const char *p, size_t n)
{
	pthread_mutex_lock(&u->mu);
	if (u->seen_len + n < sizeof(u->seen)) {
		memcpy(u->seen + u->seen_len, p, n);
		u->seen_len += n;
		u->seen[u->seen_len] = '\0';
	}
	pthread_mutex_unlock(&u->mu);
}

/* One request: head (+ Content-Length body) into buf; length or 0 on EOF. */
static size_t up_read_request(struct up *u, int fd, char *buf, size_t cap)
{
	size_t len = 0;
	for (;;) {
		char *end = memmem(buf, len, "\r\n\r\n", 4);
		if (end != NULL) {
			size_t head = (size_t)(end - buf) + 4;
			const char *cl = memmem(buf, head, "Content-Length: ", 16);
			size_t body = cl ? strtoul(cl + 16, NULL, 10) : 0;
			if (len >= head + body)
				return len;
		}
		ssize_t n = recv(fd, buf + len, cap - len - 1, 0);
		if (n <= 0)
			return 0;
		record(u, buf + len, (size_t)n);
		len += (size_t)n;
		buf[len] = '\0';
	}
}

static void send_str(int fd, const char *s)
{
	size_t n = strlen(s), off = 0;
	while (off < n) {
		ssize_t w = send(fd, s + off, n - off, MSG_NOSIGNAL);
		if (w <= 0)
			return;
		off += (size_t)w;
	}
}

/* keep-alive: "ok <path>" for every request until EOF */
static void h_keepalive(struct up *u, int fd)
{
	char buf[8192], resp[512];
	while (up_read_request(u, fd, buf, sizeof(buf)) > 0) {
		char path[256] = "";
		sscanf(buf, "%*s %255s", path);
		bool head = strncmp(buf, "HEAD ", 5) == 0;
		snprintf(resp, sizeof(resp), "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n%s%s",
			 strlen(path) + 3, head ? "" : "ok ", head ? "" : path);
		if (head)
			snprintf(resp, sizeof(resp), "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
		send_str(fd, resp);
	}
}

static void h_upgrade(struct up *u, int fd)
{
	char buf[8192];
	if (up_read_request(u, fd, buf, sizeof(buf)) == 0)
		return;
	send_str(fd, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
		     "Connection: Upgrade\r\n\r\n\x81\x05hello");
	ssize_t n;
	while ((n = recv(fd, buf, sizeof(buf), 0)) > 0)
		send(fd, buf, (size_t)n, MSG_NOSIGNAL);
}

static void h_unsolicited_101(struct up *u, int fd)
{
	char buf[8192];
	if (up_read_request(u, fd, buf, sizeof(buf)) > 0)
		send_str(fd, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\nrawbytes");
	sleep(1);
}

/* A 101 to the client's upgrade request, without an Upgrade field. */
static void h_101_bare(struct up *u, int fd)
{
	char buf[8192];
	if (up_read_request(u, fd, buf, sizeof(buf)) > 0)
		send_str(fd, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\r\nrawbytes");
	sleep(1);
}

/* A 101 to a protocol the client did not ask for. */
static void h_101_other(struct up *u, int fd)
{
	char buf[8192];
	if (up_read_request(u, fd, buf, sizeof(buf)) > 0)
		send_str(fd, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket, h2c\r\n"
			     "Connection: Upgrade\r\n\r\nrawbytes");
	sleep(1);
}

/* An HTTP/1.0 server that does not say keep-alive, yet reads on: a relay
 * that sent it another request would get that answered too. */
static void h_http10(struct up *u, int fd)
{
	char buf[8192], resp[512];
	while (up_read_request(u, fd, buf, sizeof(buf)) > 0) {
		char path[256] = "";
		sscanf(buf, "%*s %255s", path);
		snprintf(resp, sizeof(resp), "HTTP/1.0 200 OK\r\nContent-Length: %zu\r\n\r\nok %s",
			 strlen(path) + 3, path);
		send_str(fd, resp);
	}
}

static void h_eof_body(struct up *u, int fd)
{
	char buf[8192];
	if (up_read_request(u, fd, buf, sizeof(buf)) > 0)
		send_str(fd, "HTTP/1.1 200 OK\r\nX-A: b\r\n\r\nbody-until-eof");
}

static void h_expect(struct up *u, int fd)
{
	char buf[8192];
	size_t len = 0;
	while (memmem(buf, len, "\r\n\r\n", 4) == NULL) {
		ssize_t n = recv(fd, buf + len, sizeof(buf) - len, 0);
		if (n <= 0)
			return;
		record(u, buf + len, (size_t)n);
		len += (size_t)n;
	}
	send_str(fd, "HTTP/1.1 100 Continue\r\n\r\n");
	size_t head = (size_t)((char *)memmem(buf, len, "\r\n\r\n", 4) - buf) + 4;
	while (len < head + 5) {
		ssize_t n = recv(fd, buf + len, sizeof(buf) - len, 0);
		if (n <= 0)
			return;
		record(u, buf + len, (size_t)n);
		len += (size_t)n;
	}
	send_str(fd, "HTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\ngot");
	h_keepalive(u, fd);
}

static void h_chunked(struct up *u, int fd)
{
	char buf[8192];
	if (up_read_request(u, fd, buf, sizeof(buf)) == 0)
		return;
	send_str(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
		     "5\r\nhello\r\n0\r\nX-Trailer: t\r\n\r\n");
	h_keepalive(u, fd);
}

static void *up_main(void *arg)
{
	struct up *u = arg;
	for (;;) {
		int fd = accept(u->lfd, NULL, NULL);
		if (fd < 0)
			break;
		if (tu_set_timeouts(fd, IO_TIMEOUT_S) != 0) /* no cmocka asserts off the test thread */
			fprintf(stderr, "upstream: setting socket timeouts failed\n");
		pthread_mutex_lock(&u->mu);
		up_handler h = u->handler;
		pthread_mutex_unlock(&u->mu);
		if (u->tls != NULL) {
			/* TLS: serve one keep-alive exchange by hand */
			SSL *ssl = SSL_new(u->tls);
			SSL_set_fd(ssl, fd);
			char buf[8192];
			if (SSL_accept(ssl) == 1) {
				int n = SSL_read(ssl, buf, sizeof(buf) - 1);
				if (n > 0) {
					record(u, buf, (size_t)n);
					const char r[] = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\ntls-ok";
					SSL_write(ssl, r, sizeof(r) - 1);
				}
				SSL_shutdown(ssl);
			}
			SSL_free(ssl);
		} else if (h != NULL) {
			h(u, fd);
		}
		close(fd);
	}
	return NULL;
}

/* ---- the proxy on a loop thread ---- */

struct world {
	uv_loop_t loop;
	uv_async_t stop;
	uv_async_t call;          /* proxy_set_policy(px, call_policy) on the loop */
	const struct policy *call_policy;
	uv_sem_t call_done;
	pthread_t thread;
	struct proxy *px;
	uint16_t port;
	struct policy *policy;
	struct proxy_ca *ca, *up_ca;
	char up_ca_file[64];
	struct up up, up_tls;
	pthread_mutex_t mu;
	char audit[1 << 16];
	size_t audit_len;
};

static void on_audit(void *ud, const char *line)
{
	struct world *w = ud;
	pthread_mutex_lock(&w->mu);
	size_t n = strlen(line);
	if (w->audit_len + n + 2 < sizeof(w->audit)) {
		memcpy(w->audit + w->audit_len, line, n);
		w->audit_len += n;
		w->audit[w->audit_len++] = '\n';
		w->audit[w->audit_len] = '\0';
	}
	pthread_mutex_unlock(&w->mu);
}

static void on_stop(uv_async_t *a)
{
	struct world *w = a->data;
	proxy_stop(w->px, NULL, NULL);
	uv_close((uv_handle_t *)a, NULL);
	uv_close((uv_handle_t *)&w->call, NULL);
}

static void on_call(uv_async_t *a)
{
	struct world *w = a->data;
	proxy_set_policy(w->px, w->call_policy);
	uv_sem_post(&w->call_done);
}

/* Swap the proxy's policy on its loop thread (as a reload does) and wait. */
static void set_policy(struct world *w, const struct policy *p)
{
	w->call_policy = p;
	assert_int_equal(uv_async_send(&w->call), 0);
	uv_sem_wait(&w->call_done);
}

static void *loop_main(void *arg)
{
	struct world *w = arg;
	uv_run(&w->loop, UV_RUN_DEFAULT);
	return NULL;
}

static void up_start(struct up *u, SSL_CTX *tls)
{
	memset(u, 0, sizeof(*u));
	pthread_mutex_init(&u->mu, NULL);
	u->tls = tls;
	u->lfd = tu_listen_loopback(&u->port);
	assert_int_equal(pthread_create(&u->thread, NULL, up_main, u), 0);
}

static void up_stop(struct up *u)
{
	shutdown(u->lfd, SHUT_RDWR);
	pthread_join(u->thread, NULL);
	close(u->lfd);
	pthread_mutex_destroy(&u->mu);
}

static SSL_CTX *upstream_tls_ctx(struct proxy_ca *ca)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	assert_non_null(ctx);
	X509 *leaf = ca_leaf_for_host(ca, "127.0.0.1");
	assert_non_null(leaf);
	assert_int_equal(SSL_CTX_use_certificate(ctx, leaf), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(ctx, ca->leaf_key), 1);
	X509_free(leaf);
	return ctx;
}

static int setup(void **state)
{
	struct world *w = calloc(1, sizeof(*w));
	assert_non_null(w);
	pthread_mutex_init(&w->mu, NULL);
	char err[256];
	w->ca = proxy_ca_create(err, sizeof(err));
	w->up_ca = proxy_ca_create(err, sizeof(err));
	assert_non_null(w->ca);
	assert_non_null(w->up_ca);
	snprintf(w->up_ca_file, sizeof(w->up_ca_file), "/tmp/test-relay-ca-%d.pem", (int)getpid());
	FILE *f = fopen(w->up_ca_file, "w");
	assert_non_null(f);
	fputs(w->up_ca->ca_pem, f);
	fclose(f);
	up_start(&w->up, NULL);
	up_start(&w->up_tls, upstream_tls_ctx(w->up_ca));
	char yaml[2048];
	snprintf(yaml, sizeof(yaml),
		 "version: 1\n"
		 "network_policies:\n"
		 "  l7:\n"
		 "    endpoints:\n"
		 "      - { host: 127.0.0.1, port: %u, protocol: rest, enforcement: enforce,"
		 " access: read-write }\n"
		 "      - { host: 127.0.0.1, port: %u, protocol: rest, enforcement: enforce,"
		 " access: read-write }\n",
		 (unsigned)w->up.port, (unsigned)w->up_tls.port);
	struct policy_errors errs = { 0 };
	w->policy = policy_load_buffer(yaml, strlen(yaml), "<test>", &errs);
	assert_non_null(w->policy);
	assert_int_equal(uv_loop_init(&w->loop), 0);
	const char *extra[] = { w->up_ca_file };
	struct proxy_config cfg = {
		.listen_ip = "127.0.0.1",
		.hooks = { .audit = on_audit, .log = tu_log_hook, .log_level = PROXY_LOG_DEBUG, .ud = w },
		.test_allow_loopback_upstream = true,
		.ca = w->ca,
		.upstream_ca_files = extra,
		.n_upstream_ca_files = 1,
	};
	w->px = proxy_start(&w->loop, &cfg, w->policy, err, sizeof(err));
	assert_non_null(w->px);
	w->port = proxy_listen_port(w->px);
	assert_int_equal(uv_async_init(&w->loop, &w->stop, on_stop), 0);
	w->stop.data = w;
	assert_int_equal(uv_async_init(&w->loop, &w->call, on_call), 0);
	w->call.data = w;
	assert_int_equal(uv_sem_init(&w->call_done, 0), 0);
	assert_int_equal(pthread_create(&w->thread, NULL, loop_main, w), 0);
	*state = w;
	return 0;
}

static int teardown(void **state)
{
	struct world *w = *state;
	uv_async_send(&w->stop);
	pthread_join(w->thread, NULL);
	assert_int_equal(uv_loop_close(&w->loop), 0);
	uv_sem_destroy(&w->call_done);
	up_stop(&w->up);
	SSL_CTX *tls = w->up_tls.tls;
	up_stop(&w->up_tls);
	SSL_CTX_free(tls);
	policy_free(w->policy);
	proxy_ca_free(w->ca);
	proxy_ca_free(w->up_ca);
	unlink(w->up_ca_file);
	pthread_mutex_destroy(&w->mu);
	free(w);
	return 0;
}

static void use_handler(struct world *w, up_handler h)
{
	pthread_mutex_lock(&w->up.mu);
	w->up.handler = h;
	w->up.seen_len = 0;
	w->up.seen[0] = '\0';
	pthread_mutex_unlock(&w->up.mu);
}

/* ---- client ---- */

/* Read until `needle` appears (or EOF / cap); NUL-terminated. */
static size_t read_until(int fd, char *buf, size_t cap, const char *needle)
{
	size_t got = 0;
	buf[0] = '\0';
	while (got + 1 < cap && strstr(buf, needle) == NULL) {
		ssize_t r = recv(fd, buf + got, cap - got - 1, 0);
		if (r <= 0)
			break;
		got += (size_t)r;
		buf[got] = '\0';
	}
	return got;
}

static size_t read_to_eof(int fd, char *buf, size_t cap)
{
	size_t got = 0;
	for (;;) {
		ssize_t r = recv(fd, buf + got, cap - got - 1, 0);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	buf[got] = '\0';
	return got;
}

static int tunnel_rcvbuf(struct world *w, uint16_t port, int rcvbuf)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(tu_set_timeouts(fd, IO_TIMEOUT_S), 0);
	if (rcvbuf > 0) /* before connect: a small window, no autotuning */
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(w->port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	char req[128], buf[256];
	snprintf(req, sizeof(req), "CONNECT 127.0.0.1:%u HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n\r\n",
		 (unsigned)port, (unsigned)port);
	send_str(fd, req);
	size_t n = read_until(fd, buf, sizeof(buf), "\r\n\r\n");
	assert_true(n >= 12);
	assert_memory_equal(buf, "HTTP/1.1 200", 12);
	return fd;
}

static int tunnel(struct world *w, uint16_t port)
{
	return tunnel_rcvbuf(w, port, 0);
}

/* req through a fresh tunnel to the upstream; its whole reply into buf. */
static void tunnel_exchange(struct world *w, const char *req, char *buf, size_t cap)
{
	int fd = tunnel(w, w->up.port);
	send_str(fd, req);
	read_to_eof(fd, buf, cap);
	close(fd);
}

static void host_line(struct world *w, char *out, size_t cap)
{
	snprintf(out, cap, "Host: 127.0.0.1:%u\r\n", (unsigned)w->up.port);
}

static void test_keepalive_pipelined_allow_deny(void **state)
{
	struct world *w = *state;
	use_handler(w, h_keepalive);
	int fd = tunnel(w, w->up.port);
	char host[64], req[1024];
	host_line(w, host, sizeof(host));
	snprintf(req, sizeof(req), "GET /a HTTP/1.1\r\n%s\r\nDELETE /b HTTP/1.1\r\n%s\r\n"
		 "GET /c/./d/../e HTTP/1.1\r\n%s\r\n", host, host, host);
	send_str(fd, req); /* all three in one write: answered in order */
	char buf[8192];
	read_until(fd, buf, sizeof(buf), "ok /c/e");
	char *a = strstr(buf, "ok /a"), *d = strstr(buf, "\"policy_denied\""),
	     *c = strstr(buf, "ok /c/e");
	assert_non_null(a);
	assert_non_null(d);
	assert_non_null(c); /* canonical path went upstream */
	assert_true(a < d && d < c);
	assert_null(strstr(w->up.seen, "DELETE"));
	assert_non_null(strstr(w->up.seen, "GET /c/e HTTP/1.1"));
	close(fd);
}

static void test_upgrade_forwards_overflow_then_raw(void **state)
{
	struct world *w = *state;
	use_handler(w, h_upgrade);
	int fd = tunnel(w, w->up.port);
	char host[64], req[512];
	host_line(w, host, sizeof(host));
	snprintf(req, sizeof(req), "GET /ws HTTP/1.1\r\n%sUpgrade: websocket\r\n"
		 "Connection: Upgrade\r\nSec-WebSocket-Key: RylUQAh3p5cysfOlexgubw==\r\n"
		 "Sec-WebSocket-Version: 13\r\n\r\n", host);
	send_str(fd, req);
	char buf[4096];
	size_t n = read_until(fd, buf, sizeof(buf), "\x81\x05hello");
	const char *end = strstr(buf, "\r\n\r\n");
	assert_non_null(end);
	assert_int_equal(n - (size_t)(end + 4 - buf), 7);
	assert_memory_equal(end + 4, "\x81\x05hello", 7);
	/* raw both ways now: not HTTP */
	send_str(fd, "\x01\x02 not http at all\r\n\r\n");
	n = tu_read_exact(fd, buf, 22);
	assert_int_equal(n, 22);
	assert_memory_equal(buf, "\x01\x02 not http at all\r\n\r\n", 22);
	close(fd);
}

static void test_unsolicited_101_closes(void **state)
{
	struct world *w = *state;
	use_handler(w, h_unsolicited_101);
	int fd = tunnel(w, w->up.port);
	char host[64], req[256], buf[4096];
	host_line(w, host, sizeof(host));
	snprintf(req, sizeof(req), "GET /x HTTP/1.1\r\n%s\r\n", host);
	send_str(fd, req);
	read_to_eof(fd, buf, sizeof(buf));
	assert_null(strstr(buf, "101"));
	assert_null(strstr(buf, "rawbytes"));
	close(fd);
}

static void test_unframed_response_read_to_eof(void **state)
{
	struct world *w = *state;
	use_handler(w, h_eof_body);
	int fd = tunnel(w, w->up.port);
	char host[64], req[256], buf[4096];
	host_line(w, host, sizeof(host));
	snprintf(req, sizeof(req), "GET /x HTTP/1.1\r\n%s\r\n", host);
	send_str(fd, req);
	read_to_eof(fd, buf, sizeof(buf));
	assert_non_null(strstr(buf, "\r\n\r\nbody-until-eof"));
	close(fd);
}

static void test_head_and_chunked_trailers_keep_alive(void **state)
{
	struct world *w = *state;
	use_handler(w, h_chunked);
	int fd = tunnel(w, w->up.port);
	char host[64], req[512], buf[4096];
	host_line(w, host, sizeof(host));
	snprintf(req, sizeof(req), "GET /c HTTP/1.1\r\n%s\r\n", host);
	send_str(fd, req);
	read_until(fd, buf, sizeof(buf), "X-Trailer: t\r\n\r\n");
	assert_non_null(strstr(buf, "5\r\nhello\r\n0\r\nX-Trailer: t\r\n\r\n"));
	/* HEAD with Content-Length: 1000 has no body: the next answer follows */
	snprintf(req, sizeof(req), "HEAD /h HTTP/1.1\r\n%s\r\nGET /after HTTP/1.1\r\n%s\r\n", host,
		 host);
	send_str(fd, req);
	read_until(fd, buf, sizeof(buf), "ok /after");
	assert_non_null(strstr(buf, "Content-Length: 1000\r\n\r\nHTTP/1.1 200 OK"));
	close(fd);
}

static void test_expect_100_continue(void **state)
{
	struct world *w = *state;
	use_handler(w, h_expect);
	int fd = tunnel(w, w->up.port);
	char host[64], req[512], buf[4096];
	host_line(w, host, sizeof(host));
	snprintf(req, sizeof(req), "POST /up HTTP/1.1\r\n%sExpect: 100-continue\r\n"
		 "Content-Length: 5\r\n\r\n", host);
	send_str(fd, req);
	read_until(fd, buf, sizeof(buf), "100 Continue\r\n\r\n");
	assert_non_null(strstr(buf, "HTTP/1.1 100 Continue\r\n\r\n"));
	send_str(fd, "12345");
	read_until(fd, buf, sizeof(buf), "got");
	assert_non_null(strstr(buf, "201 Created"));
	close(fd);
}

static void test_bad_requests(void **state)
{
	struct world *w = *state;
	use_handler(w, h_keepalive);
	char host[64], req[20000], buf[4096];
	host_line(w, host, sizeof(host));
	/* CL + TE: 400, nothing upstream */
	int fd = tunnel(w, w->up.port);
	snprintf(req, sizeof(req), "POST /s HTTP/1.1\r\n%sContent-Length: 3\r\n"
		 "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", host);
	send_str(fd, req);
	read_to_eof(fd, buf, sizeof(buf));
	assert_non_null(strstr(buf, "HTTP/1.1 400"));
	close(fd);
	/* bare LF */
	fd = tunnel(w, w->up.port);
	snprintf(req, sizeof(req), "GET /lf HTTP/1.1\n%s\r\n", host);
	send_str(fd, req);
	read_to_eof(fd, buf, sizeof(buf));
	assert_non_null(strstr(buf, "HTTP/1.1 400"));
	close(fd);
	/* head beyond 16 KiB: 431 */
	fd = tunnel(w, w->up.port);
	int n = snprintf(req, sizeof(req), "GET /big HTTP/1.1\r\n%sX-Big: ", host);
	memset(req + n, 'a', 17000);
	req[n + 17000] = '\0';
	send_str(fd, req);
	read_to_eof(fd, buf, sizeof(buf));
	assert_non_null(strstr(buf, "HTTP/1.1 431"));
	close(fd);
	/* Host of another site: 403 request_authority_mismatch */
	fd = tunnel(w, w->up.port);
	send_str(fd, "GET /x HTTP/1.1\r\nHost: example.com\r\n\r\n");
	read_to_eof(fd, buf, sizeof(buf));
	assert_non_null(strstr(buf, "request_authority_mismatch"));
	close(fd);
	/* encoded slash: rejected before policy */
	fd = tunnel(w, w->up.port);
	snprintf(req, sizeof(req), "GET /a/..%%2fb HTTP/1.1\r\n%s\r\n", host);
	send_str(fd, req);
	read_to_eof(fd, buf, sizeof(buf));
	assert_non_null(strstr(buf, "HTTP/1.1 400"));
	close(fd);
	/* h2c upgrade on an L7 endpoint: 403, closed */
	fd = tunnel(w, w->up.port);
	snprintf(req, sizeof(req), "GET /h2c HTTP/1.1\r\n%sConnection: Upgrade, HTTP2-Settings\r\n"
		 "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n", host);
	send_str(fd, req);
	read_to_eof(fd, buf, sizeof(buf));
	assert_non_null(strstr(buf, "HTTP/1.1 403"));
	assert_non_null(strstr(buf, "h2c"));
	close(fd);
	assert_null(strstr(w->up.seen, "/h2c"));
	assert_null(strstr(w->up.seen, "/s "));
	assert_null(strstr(w->up.seen, "/lf"));
	assert_null(strstr(w->up.seen, "/big"));
	assert_null(strstr(w->up.seen, "GET /x"));
	assert_null(strstr(w->up.seen, "%2f"));
}

static void test_tls_end_to_end(void **state)
{
	struct world *w = *state;
	int fd = tunnel(w, w->up_tls.port);
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	assert_non_null(ctx);
	X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), w->ca->ca_cert);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL *ssl = SSL_new(ctx);
	SSL_set_fd(ssl, fd);
	X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), "127.0.0.1");
	assert_int_equal(SSL_connect(ssl), 1); /* the sandbox CA's leaf for 127.0.0.1 */
	char req[128];
	snprintf(req, sizeof(req), "GET /t HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n\r\n",
		 (unsigned)w->up_tls.port);
	assert_int_equal(SSL_write(ssl, req, (int)strlen(req)), (int)strlen(req));
	char buf[1024];
	size_t got = 0;
	while (got < sizeof(buf) - 1) {
		int n = SSL_read(ssl, buf + got, (int)(sizeof(buf) - 1 - got));
		if (n <= 0)
			break;
		got += (size_t)n;
		buf[got] = '\0';
		if (strstr(buf, "tls-ok") != NULL)
			break;
	}
	buf[got] = '\0';
	assert_non_null(strstr(buf, "tls-ok"));
	assert_non_null(strstr(w->up_tls.seen, "GET /t HTTP/1.1"));
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	close(fd);
	pthread_mutex_lock(&w->mu);
	assert_non_null(strstr(w->audit, "GET allowed https://127.0.0.1"));
	pthread_mutex_unlock(&w->mu);
}

/* A reload is seen by its generation, not by comparing policy pointers: a
 * replacement allocated at the old one's address (here: the very same
 * pointer set again) still ends the tunnel before its next request. */
static void test_reload_ends_tunnel_before_next_request(void **state)
{
	struct world *w = *state;
	use_handler(w, h_keepalive);
	int fd = tunnel(w, w->up.port);
	char host[64], req[256], buf[4096];
	host_line(w, host, sizeof(host));
	snprintf(req, sizeof(req), "GET /before HTTP/1.1\r\n%s\r\n", host);
	send_str(fd, req);
	read_until(fd, buf, sizeof(buf), "ok /before");
	assert_non_null(strstr(buf, "ok /before"));
	set_policy(w, w->policy);
	snprintf(req, sizeof(req), "GET /after HTTP/1.1\r\n%s\r\n", host);
	send_str(fd, req);
	read_to_eof(fd, buf, sizeof(buf));
	assert_null(strstr(buf, "ok /after"));
	pthread_mutex_lock(&w->up.mu);
	assert_null(strstr(w->up.seen, "/after"));
	pthread_mutex_unlock(&w->up.mu);
	close(fd);
}

static int upgraded_tunnel(struct world *w)
{
	use_handler(w, h_upgrade);
	int fd = tunnel(w, w->up.port);
	char host[64], req[512], buf[4096];
	host_line(w, host, sizeof(host));
	snprintf(req, sizeof(req), "GET /ws HTTP/1.1\r\n%sUpgrade: websocket\r\n"
		 "Connection: Upgrade\r\nSec-WebSocket-Key: RylUQAh3p5cysfOlexgubw==\r\n"
		 "Sec-WebSocket-Version: 13\r\n\r\n", host);
	send_str(fd, req);
	read_until(fd, buf, sizeof(buf), "\x81\x05hello");
	assert_non_null(strstr(buf, "\x81\x05hello"));
	return fd;
}

static bool raw_echoes(int fd)
{
	char buf[8];
	send_str(fd, "\x01raw\x02");
	return tu_read_exact(fd, buf, 5) == 5 && memcmp(buf, "\x01raw\x02", 5) == 0;
}

/* After a 101 the tunnel is raw: a reload keeping its endpoint leaves it
 * alone; one removing it closes it at once. */
static void test_reload_closes_upgraded_tunnel_it_no_longer_allows(void **state)
{
	struct world *w = *state;
	int fd = upgraded_tunnel(w);
	assert_true(raw_echoes(fd));
	set_policy(w, w->policy); /* same endpoints */
	assert_true(raw_echoes(fd));
	char yaml[512];
	snprintf(yaml, sizeof(yaml),
		 "version: 1\nnetwork_policies:\n  l7:\n    endpoints:\n"
		 "      - { host: 127.0.0.1, port: %u, protocol: rest, enforcement: enforce,"
		 " access: read-write }\n", (unsigned)w->up_tls.port);
	struct policy_errors errs = { 0 };
	struct policy *other = policy_load_buffer(yaml, strlen(yaml), "<other>", &errs);
	policy_errors_free(&errs);
	assert_non_null(other);
	set_policy(w, other);
	char buf[64];
	struct timeval tv = { .tv_sec = 3 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	errno = 0;
	ssize_t r = recv(fd, buf, sizeof(buf), 0);
	if (!(r == 0 || (r < 0 && errno == ECONNRESET)))
		fail_msg("upgraded tunnel kept after its endpoint was removed: recv %zd, %s", r,
			 strerror(errno));
	close(fd);
	set_policy(w, w->policy);
	policy_free(other);
	pthread_mutex_lock(&w->mu);
	assert_non_null(strstr(w->audit, "no longer allowed"));
	pthread_mutex_unlock(&w->mu);
}

/* Swap in a policy whose one L7 endpoint is w->up with these extra keys
 * (flow-mapping text); returns it for restore_policy(). */
static struct policy *use_up_policy(struct world *w, const char *keys)
{
	struct policy *p = tu_rest_policy(w->up.port, keys);
	set_policy(w, p);
	return p;
}

static void restore_policy(struct world *w, struct policy *p)
{
	set_policy(w, w->policy);
	policy_free(p);
}

static bool up_saw(struct world *w, const char *needle)
{
	pthread_mutex_lock(&w->up.mu);
	bool seen = strstr(w->up.seen, needle) != NULL;
	pthread_mutex_unlock(&w->up.mu);
	return seen;
}

static void upgrade_request(struct world *w, char *req, size_t cap, const char *extra)
{
	char host[64];
	host_line(w, host, sizeof(host));
	snprintf(req, cap, "GET /ws HTTP/1.1\r\n%s%sSec-WebSocket-Key: RylUQAh3p5cysfOlexgubw==\r\n"
		 "Sec-WebSocket-Version: 13\r\n\r\n", host, extra);
}

/* h2c is refused whichever Upgrade line or list element offers it. */
static void test_h2c_in_any_upgrade_line_refused(void **state)
{
	struct world *w = *state;
	use_handler(w, h_keepalive);
	const char *offers[] = {
		"Upgrade: websocket\r\nUpgrade: h2c\r\n",
		"Upgrade: websocket\r\nupgrade: foo, H2C\r\n",
		"Upgrade: foo ,h2c/1\r\n",
	};
	for (size_t i = 0; i < sizeof(offers) / sizeof(offers[0]); i++) {
		char extra[128], req[1024], buf[4096];
		snprintf(extra, sizeof(extra), "Connection: Upgrade\r\n%s", offers[i]);
		upgrade_request(w, req, sizeof(req), extra);
		tunnel_exchange(w, req, buf, sizeof(buf));
		assert_non_null(strstr(buf, "HTTP/1.1 403"));
		assert_non_null(strstr(buf, "h2c"));
		assert_false(up_saw(w, "/ws"));
	}
}

/* A 101 switches to raw bytes only when its Upgrade names what the client
 * asked for: without one, or naming another protocol, the tunnel closes
 * and nothing of the 101 reaches the client. */
static void test_101_must_name_a_requested_protocol(void **state)
{
	struct world *w = *state;
	up_handler bad[] = { h_101_bare, h_101_other };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		use_handler(w, bad[i]);
		char req[1024], buf[4096];
		upgrade_request(w, req, sizeof(req), "Upgrade: websocket\r\nConnection: Upgrade\r\n");
		tunnel_exchange(w, req, buf, sizeof(buf));
		assert_null(strstr(buf, "101"));
		assert_null(strstr(buf, "rawbytes"));
	}
}

/* Connection and Upgrade are lists over all their lines: `upgrade` on a
 * second Connection line still asks for the upgrade (the WebSocket works),
 * `close` on a second line still ends the tunnel after the response. */
static void test_connection_tokens_from_every_line(void **state)
{
	struct world *w = *state;
	use_handler(w, h_upgrade);
	char req[1024], buf[4096], host[64];
	upgrade_request(w, req, sizeof(req),
			"Connection: keep-alive\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n");
	int fd = tunnel(w, w->up.port);
	send_str(fd, req);
	read_until(fd, buf, sizeof(buf), "\x81\x05hello");
	assert_non_null(strstr(buf, "HTTP/1.1 101"));
	assert_true(raw_echoes(fd));
	close(fd);

	use_handler(w, h_keepalive);
	host_line(w, host, sizeof(host));
	snprintf(req, sizeof(req), "GET /one HTTP/1.1\r\n%sConnection: keep-alive\r\n"
		 "Connection: close\r\n\r\nGET /two HTTP/1.1\r\n%s\r\n", host, host);
	tunnel_exchange(w, req, buf, sizeof(buf));
	assert_non_null(strstr(buf, "ok /one"));
	assert_null(strstr(buf, "ok /two"));
	assert_false(up_saw(w, "/two"));
	/* the same for a request we deny: the 403 says close, and does */
	snprintf(req, sizeof(req), "DELETE /d HTTP/1.1\r\n%sConnection: keep-alive\r\n"
		 "Connection: close\r\n\r\nGET /three HTTP/1.1\r\n%s\r\n", host, host);
	tunnel_exchange(w, req, buf, sizeof(buf));
	assert_non_null(strstr(buf, "HTTP/1.1 403"));
	assert_non_null(strstr(buf, "Connection: close\r\n"));
	assert_null(strstr(buf, "ok /three"));
}

/* An HTTP/1.0 response without keep-alive ends what the connection can
 * carry: the next pipelined request is not sent, the tunnel ends after it. */
static void test_http10_response_ends_the_tunnel(void **state)
{
	struct world *w = *state;
	use_handler(w, h_http10);
	char host[64], req[512], buf[4096];
	host_line(w, host, sizeof(host));
	snprintf(req, sizeof(req), "GET /one HTTP/1.1\r\n%s\r\nGET /two HTTP/1.1\r\n%s\r\n",
		 host, host);
	tunnel_exchange(w, req, buf, sizeof(buf));
	assert_non_null(strstr(buf, "ok /one"));
	assert_null(strstr(buf, "ok /two"));
	assert_false(up_saw(w, "/two"));
}

/* A denied HEAD on a keep-alive tunnel: the 403's head, no body, so the
 * next response is read where the client expects it. */
static void test_denied_head_has_no_body(void **state)
{
	struct world *w = *state;
	struct policy *p = use_up_policy(w, "rules: [ { allow: { method: GET, path: \"/ok/**\" } } ]");
	use_handler(w, h_keepalive);
	char host[64], req[512], buf[4096];
	host_line(w, host, sizeof(host));
	snprintf(req, sizeof(req), "HEAD /h HTTP/1.1\r\n%s\r\nGET /ok/after HTTP/1.1\r\n%s\r\n",
		 host, host);
	int fd = tunnel(w, w->up.port);
	send_str(fd, req);
	read_until(fd, buf, sizeof(buf), "ok /ok/after");
	close(fd);
	restore_policy(w, p);
	assert_true(strncmp(buf, "HTTP/1.1 403 Forbidden\r\n", 24) == 0);
	assert_null(strstr(buf, "policy_denied"));
	const char *next = strstr(buf, "\r\n\r\n");
	assert_non_null(next);
	assert_true(strncmp(next + 4, "HTTP/1.1 200 OK\r\n", 17) == 0);
	assert_non_null(strstr(buf, "ok /ok/after"));
	assert_false(up_saw(w, "HEAD"));
}

/* A method longer than the policy's limit is refused whole, not cut to
 * fit: even where every method is allowed, nothing goes upstream. The
 * longest allowed one still passes. (The sniffer knows only the usual
 * methods: such requests follow one on a keep-alive tunnel.) */
static void test_long_method_refused(void **state)
{
	struct world *w = *state;
	struct policy *p = use_up_policy(w, "access: full");
	use_handler(w, h_keepalive);
	pthread_mutex_lock(&w->mu);
	w->audit_len = 0; /* earlier tests may have filled it */
	w->audit[0] = '\0';
	pthread_mutex_unlock(&w->mu);
	char host[64], req[1024], buf[4096], fits[64], longer[64];
	host_line(w, host, sizeof(host));
	memset(fits, 'M', POLICY_L7_MAX_METHOD_BYTES);
	fits[POLICY_L7_MAX_METHOD_BYTES] = '\0';
	memset(longer, 'M', POLICY_L7_MAX_METHOD_BYTES + 8);
	longer[POLICY_L7_MAX_METHOD_BYTES + 8] = '\0';
	snprintf(req, sizeof(req), "GET /first HTTP/1.1\r\n%s\r\n%s /fits HTTP/1.1\r\n%s\r\n"
		 "%s /long HTTP/1.1\r\n%s\r\n", host, fits, host, longer, host);
	tunnel_exchange(w, req, buf, sizeof(buf));
	restore_policy(w, p);
	assert_non_null(strstr(buf, "ok /fits"));
	assert_non_null(strstr(buf, "HTTP/1.1 400"));
	assert_non_null(strstr(buf, "\"invalid_method\""));
	assert_false(up_saw(w, "/long"));
	pthread_mutex_lock(&w->mu);
	assert_non_null(strstr(w->audit, "request method longer than"));
	pthread_mutex_unlock(&w->mu);
}

/* Pipelined requests we answer ourselves (denials) while the client never
 * reads: the relay must stop taking requests once its queue towards the
 * client is full, not buffer an answer for every request it is sent. */
static void test_unread_denials_do_not_grow_the_queue(void **state)
{
	struct world *w = *state;
	use_handler(w, h_keepalive);
	int fd = tunnel_rcvbuf(w, w->up.port, 16384);
	char host[64], one[128];
	host_line(w, host, sizeof(host));
	int n = snprintf(one, sizeof(one), "DELETE /d HTTP/1.1\r\n%s\r\n", host);
	const size_t total = 8u << 20;
	char *flood = malloc(total);
	assert_non_null(flood);
	size_t fill = 0;
	while (fill + (size_t)n <= total) {
		memcpy(flood + fill, one, (size_t)n);
		fill += (size_t)n;
	}
	/* Send for up to 3 s without reading anything back. */
	struct timeval tv = { .tv_sec = 0, .tv_usec = 200 * 1000 };
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	size_t sent = 0;
	struct timeval t0, now;
	gettimeofday(&t0, NULL);
	for (;;) {
		gettimeofday(&now, NULL);
		if (sent >= fill || now.tv_sec - t0.tv_sec >= 3)
			break;
		ssize_t r = send(fd, flood + sent, fill - sent, MSG_NOSIGNAL);
		if (r > 0)
			sent += (size_t)r;
	}
	free(flood);
	close(fd);
	/* Socket buffers and the relay's bounded buffers take some; the rest
	 * must have stayed with the client. */
	if (sent >= fill)
		fail_msg("all %zu bytes of unread-for requests were taken", sent);
}

/* More pipelined requests than one pass of the relay takes (HR_MAX_STEPS),
 * all answered by the proxy with writes that complete at once: the rest are
 * still answered, in order, without any further client bytes. */
static void test_many_pipelined_denials(void **state)
{
	struct world *w = *state;
	use_handler(w, h_keepalive);
	int fd = tunnel(w, w->up.port);
	struct timeval tv = { .tv_sec = 5, .tv_usec = 0 };
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
	char host[64], one[128];
	host_line(w, host, sizeof(host));
	int n = snprintf(one, sizeof(one), "DELETE /d HTTP/1.1\r\n%s\r\n", host);
	assert_true(n > 0 && (size_t)n < sizeof(one));
	enum { N_DENIED = 600 };
	size_t cap = (size_t)n * N_DENIED + sizeof(one), fill = 0;
	char *reqs = malloc(cap);
	assert_non_null(reqs);
	for (int i = 0; i < N_DENIED; i++, fill += (size_t)n)
		memcpy(reqs + fill, one, (size_t)n);
	snprintf(reqs + fill, cap - fill, "GET /last HTTP/1.1\r\n%s\r\n", host);
	send_str(fd, reqs);
	free(reqs);
	size_t bufcap = 4u << 20;
	char *buf = malloc(bufcap);
	assert_non_null(buf);
	read_until(fd, buf, bufcap, "ok /last");
	int denied = 0;
	for (const char *p = buf; (p = strstr(p, "\"policy_denied\"")) != NULL; p++)
		denied++;
	assert_int_equal(denied, N_DENIED);
	assert_non_null(strstr(buf, "ok /last"));
	free(buf);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest pure[] = {
		cmocka_unit_test(test_response_parser),
		cmocka_unit_test(test_authority),
		cmocka_unit_test(test_l7_denial_body),
	};
	const struct CMUnitTest loop[] = {
		cmocka_unit_test(test_keepalive_pipelined_allow_deny),
		cmocka_unit_test(test_upgrade_forwards_overflow_then_raw),
		cmocka_unit_test(test_unsolicited_101_closes),
		cmocka_unit_test(test_unframed_response_read_to_eof),
		cmocka_unit_test(test_head_and_chunked_trailers_keep_alive),
		cmocka_unit_test(test_expect_100_continue),
		cmocka_unit_test(test_bad_requests),
		cmocka_unit_test(test_tls_end_to_end),
		cmocka_unit_test(test_reload_ends_tunnel_before_next_request),
		cmocka_unit_test(test_reload_closes_upgraded_tunnel_it_no_longer_allows),
		cmocka_unit_test(test_unread_denials_do_not_grow_the_queue),
		cmocka_unit_test(test_many_pipelined_denials),
		cmocka_unit_test(test_h2c_in_any_upgrade_line_refused),
		cmocka_unit_test(test_101_must_name_a_requested_protocol),
		cmocka_unit_test(test_connection_tokens_from_every_line),
		cmocka_unit_test(test_denied_head_has_no_body),
		cmocka_unit_test(test_http10_response_ends_the_tunnel),
		cmocka_unit_test(test_long_method_refused),
	};
	int rc = cmocka_run_group_tests(pure, NULL, NULL);
	return rc | cmocka_run_group_tests(loop, setup, teardown);
}
