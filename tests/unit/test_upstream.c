/* test_upstream.c - upstream (corporate) proxy chaining: the settings
 * parser, the no-proxy matcher, the CONNECT request and reply parser
 * (proxy/upstream.c), the absolute-form head (proxy/forward.c), and the
 * chain end to end on 127.0.0.1 against a scripted fake corporate proxy.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "policy/policy.h"
#include "proxy/forward.h"
#include "proxy/proxy.h"
#include "proxy/upstream.h"
#include "tests/unit/support/harness.h"
#include "tests/unit/support/net.h"

/* ---- --upstream-proxy ---- */

static int parse_url(const char *url, struct proxy_upstream *u, char *err, size_t errlen)
{
	memset(u, 0, sizeof(*u));
	err[0] = '\0';
	return upstream_parse_url(u, url, err, errlen);
}

static void test_url_accepted(void **state)
{
	struct proxy_upstream u;
	char err[512];
	assert_int_equal(parse_url("http://proxy.corp.test:3128", &u, err, sizeof(err)), 0);
	assert_string_equal(u.host, "proxy.corp.test");
	assert_int_equal(u.port, 3128);
	assert_string_equal(u.display, "proxy.corp.test:3128");
	assert_int_equal(parse_url("HTTP://Proxy.Corp.Test:8080/", &u, err, sizeof(err)), 0);
	assert_string_equal(u.host, "proxy.corp.test");
	assert_int_equal(u.port, 8080);
	assert_int_equal(parse_url("http://198.51.100.250:3128", &u, err, sizeof(err)), 0);
	assert_string_equal(u.display, "198.51.100.250:3128");
	assert_int_equal(parse_url("http://[2001:db8::1]:3128", &u, err, sizeof(err)), 0);
	assert_string_equal(u.host, "2001:db8::1");
	assert_string_equal(u.display, "[2001:db8::1]:3128");
}

static void test_url_refused(void **state)
{
	static const char *const bad[] = {
		"", "proxy:3128", "https://proxy:3128", "socks5://proxy:1080", "http://",
		"http://proxy", "http://proxy:", "http://proxy:0", "http://proxy:65536",
		"http://proxy:31x8", "http://user:pass@proxy:3128", "http://user@proxy:3128",
		"http://proxy:3128/path", "http://proxy:3128//", "http://proxy:3128?q=1",
		"http://proxy:3128#f", "http://2001:db8::1:3128", "http://pro xy:3128",
		"http://proxy:3128 ", "http://[2001:db8::1]", "http://[nonsense]:3128",
	};
	struct proxy_upstream u;
	char err[512];
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (parse_url(bad[i], &u, err, sizeof(err)) == 0)
			fail_msg("accepted bad --upstream-proxy '%s'", bad[i]);
		assert_contains(err, "--upstream-proxy");
	}
	parse_url("http://user:secret@proxy:3128", &u, err, sizeof(err));
	assert_contains(err, "--upstream-proxy-auth-file");
	char longer[PROXY_UPSTREAM_MAX_URL_BYTES + 32];
	memset(longer, 'a', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = '\0';
	memcpy(longer, "http://", 7);
	assert_int_equal(parse_url(longer, &u, err, sizeof(err)), -1);
}

/* ---- --upstream-no-proxy ---- */

static struct proxy_upstream *with_no_proxy(const char *list)
{
	struct proxy_upstream *u = calloc(1, sizeof(*u));
	assert_non_null(u);
	char err[512] = "";
	if (upstream_parse_no_proxy(u, list, err, sizeof(err)) != 0)
		fail_msg("no-proxy '%s' refused: %s", list, err);
	return u;
}

static bool bypass(const struct proxy_upstream *u, const char *host, uint16_t port,
		   const char *ip1, const char *ip2)
{
	struct sockaddr_storage a[2];
	size_t n = 0;
	if (ip1 != NULL)
		a[n++] = tu_sockaddr(ip1);
	if (ip2 != NULL)
		a[n++] = tu_sockaddr(ip2);
	return upstream_no_proxy_match(u, host, port, a, n);
}

static void test_no_proxy_names(void **state)
{
	struct proxy_upstream *u = with_no_proxy("Intranet.Corp.Test, .svc.test ,*.cluster.test:8443");
	assert_int_equal(u->n_no_proxy, 3);
	assert_true(bypass(u, "intranet.corp.test", 443, "203.0.113.5", NULL));
	assert_true(bypass(u, "intranet.corp.test.", 80, NULL, NULL));
	assert_false(bypass(u, "x.intranet.corp.test", 443, NULL, NULL)); /* exact only */
	assert_false(bypass(u, "corp.test", 443, NULL, NULL));
	assert_true(bypass(u, "a.svc.test", 443, NULL, NULL));
	assert_true(bypass(u, "a.b.svc.test", 443, NULL, NULL));
	assert_false(bypass(u, "svc.test", 443, NULL, NULL));      /* below it only */
	assert_false(bypass(u, "evilsvc.test", 443, NULL, NULL));  /* label boundary */
	assert_true(bypass(u, "db.cluster.test", 8443, NULL, NULL));
	assert_false(bypass(u, "db.cluster.test", 443, NULL, NULL)); /* port-aware */
	free(u);
}

static void test_no_proxy_addresses(void **state)
{
	struct proxy_upstream *u =
		with_no_proxy("10.0.0.0/8,198.51.100.7:80,[2001:db8::/32],[fd00::1]:443");
	assert_int_equal(u->n_no_proxy, 4);
	/* CIDR entries match the checked addresses, whatever the name */
	assert_true(bypass(u, "db.internal.test", 5432, "10.20.0.5", NULL));
	assert_true(bypass(u, "two.test", 443, "10.1.1.1", "10.2.2.2"));
	/* every address must be covered: a direct dial could reach any */
	assert_false(bypass(u, "mixed.test", 443, "10.1.1.1", "203.0.113.9"));
	assert_false(bypass(u, "none.test", 443, NULL, NULL));
	assert_true(bypass(u, "web.test", 80, "198.51.100.7", NULL));
	assert_false(bypass(u, "web.test", 443, "198.51.100.7", NULL));
	assert_true(bypass(u, "v6.test", 443, "2001:db8::99", NULL));
	assert_true(bypass(u, "v6b.test", 443, "fd00::1", NULL));
	assert_false(bypass(u, "v6b.test", 80, "fd00::1", NULL));
	/* a v4-mapped address is covered by the IPv4 network */
	assert_true(bypass(u, "mapped.test", 443, "::ffff:10.9.9.9", NULL));
	/* a host that merely looks like a network is not matched by name */
	assert_false(bypass(u, "10.0.0.0", 443, "203.0.113.9", NULL));
	free(u);
}

static void test_no_proxy_refused(void **state)
{
	static const char *const bad[] = {
		"", ",", "a.test,", ",a.test", "a.test,,b.test", "a..test", ".", "*.", "*",
		"*a.test", "a*.test", "a.test:0", "a.test:65536", "a.test:", "a.test:x",
		"2001:db8::1", "[2001:db8::1", "[198.51.100.1]", "[name.test]", "10.0.0.0/33",
		"[2001:db8::/129]", "10.0.0.1/8/8", "a test", "a.test:80:80", "-bad_\x01.test",
	};
	struct proxy_upstream u;
	char err[512];
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&u, 0, sizeof(u));
		if (upstream_parse_no_proxy(&u, bad[i], err, sizeof(err)) == 0)
			fail_msg("accepted bad --upstream-no-proxy '%s'", bad[i]);
		assert_contains(err, "--upstream-no-proxy");
	}
	char many[PROXY_UPSTREAM_MAX_NO_PROXY * 4 + 16] = "";
	for (unsigned i = 0; i <= PROXY_UPSTREAM_MAX_NO_PROXY; i++)
		strcat(many, i ? ",a.t" : "a.t");
	memset(&u, 0, sizeof(u));
	assert_int_equal(upstream_parse_no_proxy(&u, many, err, sizeof(err)), -1);
	assert_contains(err, "more than");
}

/* ---- credentials, CONNECT, reply ---- */

static void test_credentials(void **state)
{
	struct proxy_upstream *u = calloc(1, sizeof(*u));
	assert_non_null(u);
	char err[512];
	assert_int_equal(upstream_set_credentials(u, "user:pass\n", 10, err, sizeof(err)), 0);
	assert_string_equal(u->auth_line, "Proxy-Authorization: Basic dXNlcjpwYXNz\r\n");
	assert_int_equal(u->auth_line_len, strlen(u->auth_line));
	assert_int_equal(upstream_set_credentials(u, "a:\r\n", 4, err, sizeof(err)), 0);
	assert_string_equal(u->auth_line, "Proxy-Authorization: Basic YTo=\r\n");
	static const char *const bad[] = { "", "\n", "nocolon", ":pass", "user:pa\nss",
					   "user:pass\n\n", "us\x01er:pass", "user:pa\tss" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (upstream_set_credentials(u, bad[i], strlen(bad[i]), err, sizeof(err)) == 0)
			fail_msg("accepted credentials #%zu", i);
		assert_contains(err, "--upstream-proxy-auth-file");
		assert_null(strstr(err, "pass")); /* never quoted */
	}
	char big[PROXY_UPSTREAM_MAX_AUTH_BYTES + 2];
	memset(big, 'a', sizeof(big));
	big[1] = ':';
	assert_int_equal(upstream_set_credentials(u, big, sizeof(big), err, sizeof(err)), -1);
	upstream_wipe_free(u->auth_line, u->auth_line_len);
	free(u);
}

static void test_connect_request_and_authority(void **state)
{
	struct proxy_upstream u;
	memset(&u, 0, sizeof(u));
	struct proxy_target t;
	assert_int_equal(target_parse_connect("api.allowed.test:443", 20, &t), TARGET_OK);
	struct sockaddr_storage v4 = tu_sockaddr("198.51.100.10"), v6 = tu_sockaddr("2001:db8::10");
	char auth[300];
	upstream_authority(&u, &t, &v4, auth, sizeof(auth));
	assert_string_equal(auth, "198.51.100.10:443");
	upstream_authority(&u, &t, &v6, auth, sizeof(auth));
	assert_string_equal(auth, "[2001:db8::10]:443");
	u.connect_by_hostname = true;
	upstream_authority(&u, &t, &v4, auth, sizeof(auth));
	assert_string_equal(auth, "api.allowed.test:443");

	size_t len = 0;
	char *req = upstream_connect_request(&u, "198.51.100.10:443", &len);
	assert_non_null(req);
	assert_string_equal(req, "CONNECT 198.51.100.10:443 HTTP/1.1\r\n"
				 "Host: 198.51.100.10:443\r\n\r\n");
	assert_int_equal(len, strlen(req));
	upstream_wipe_free(req, len);
	char err[128];
	assert_int_equal(upstream_set_credentials(&u, "user:pass", 9, err, sizeof(err)), 0);
	req = upstream_connect_request(&u, "[2001:db8::10]:443", &len);
	assert_non_null(req);
	assert_string_equal(req, "CONNECT [2001:db8::10]:443 HTTP/1.1\r\n"
				 "Host: [2001:db8::10]:443\r\n"
				 "Proxy-Authorization: Basic dXNlcjpwYXNz\r\n\r\n");
	upstream_wipe_free(req, len);
	upstream_wipe_free(u.auth_line, u.auth_line_len);
}

static enum upstream_reply_result reply(struct upstream_reply *r, const char *bytes, size_t n,
					const char **why)
{
	memset(r, 0, sizeof(*r));
	memcpy(r->buf, bytes, n);
	r->fill = n;
	return upstream_reply_parse(r, why);
}

static void test_reply_parse(void **state)
{
	struct upstream_reply *r = malloc(sizeof(*r));
	assert_non_null(r);
	const char *why = NULL;
	static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\nTLSBYTES";
	assert_int_equal(reply(r, ok, sizeof(ok) - 1, &why), UPSTREAM_REPLY_OK);
	assert_int_equal(r->status, 200);
	assert_int_equal(r->head_len, sizeof(ok) - 1 - 8); /* the rest is tunnel data */
	static const char ok10[] = "HTTP/1.0 200 OK\r\nProxy-Agent: x\r\n\r\n";
	assert_int_equal(reply(r, ok10, sizeof(ok10) - 1, &why), UPSTREAM_REPLY_OK);
	static const char part[] = "HTTP/1.1 200 Conn";
	assert_int_equal(reply(r, part, sizeof(part) - 1, &why), UPSTREAM_REPLY_INCOMPLETE);
	static const char auth[] = "HTTP/1.1 407 Proxy Authentication Required\r\n"
				   "Proxy-Authenticate: Basic realm=\"corp\"\r\n\r\n";
	assert_int_equal(reply(r, auth, sizeof(auth) - 1, &why), UPSTREAM_REPLY_REFUSED);
	assert_int_equal(r->status, 407);
	char line[160];
	upstream_reply_status_line(r, line, sizeof(line));
	assert_string_equal(line, "HTTP/1.1 407 Proxy Authentication Required");
	static const char *const bad[] = { "SSH-2.0-x\r\n\r\n", "HTTP/1.1 200 OK\n\n",
					   "HTTP/2 200\r\n\r\n", "HTTP/1.1 2000 OK\r\n\r\n",
					   "HTTP/1.1 200 OK\r\nBad Header\r\n\r\n" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		if (reply(r, bad[i], strlen(bad[i]), &why) != UPSTREAM_REPLY_BAD)
			fail_msg("bad reply #%zu not refused", i);
		assert_non_null(why);
	}
	memset(r, 0, sizeof(*r));
	memcpy(r->buf, "HTTP/1.1 200 OK\r\nX: ", 21);
	memset(r->buf + 21, 'a', sizeof(r->buf) - 21);
	r->fill = sizeof(r->buf);
	assert_int_equal(upstream_reply_parse(r, &why), UPSTREAM_REPLY_TOO_LARGE);
	free(r);
}

static void test_forward_absolute_head(void **state)
{
	static const char head[] = "GET /a/b?c=d HTTP/1.1\r\nAccept: */*\r\nHost: web.test\r\n"
				   "Connection: close\r\n\r\n";
	static const char extra[] = "Proxy-Authorization: Basic YTpi\r\n";
	size_t len = 0;
	char *out = forward_absolute_head(head, sizeof(head) - 1, "198.51.100.11:80", extra,
					  sizeof(extra) - 1, &len);
	assert_non_null(out);
	static const char want[] = "GET http://198.51.100.11:80/a/b?c=d HTTP/1.1\r\n"
				   "Accept: */*\r\nHost: web.test\r\nConnection: close\r\n"
				   "Proxy-Authorization: Basic YTpi\r\n\r\n";
	assert_int_equal(len, sizeof(want) - 1);
	assert_memory_equal(out, want, len);
	free(out);
	out = forward_absolute_head(head, sizeof(head) - 1, "[2001:db8::1]:8080", NULL, 0, &len);
	assert_non_null(out);
	static const char v6_line[] = "GET http://[2001:db8::1]:8080/a/b?c=d HTTP/1.1\r\n";
	assert_memory_equal(out, v6_line, sizeof(v6_line) - 1);
	free(out);
	static const char abs_form[] = "GET http://x/ HTTP/1.1\r\n\r\n";
	assert_null(forward_absolute_head(abs_form, sizeof(abs_form) - 1, "a:1", NULL, 0, &len));
	static const char no_end[] = "GET / HTTP/1.1\r\nHost: x\r\n";
	assert_null(forward_absolute_head(no_end, sizeof(no_end) - 1, "a:1", NULL, 0, &len));
}

static void test_create_and_free(void **state)
{
	char err[512] = "";
	struct proxy_upstream_options o = {
		.url = "http://127.0.0.1:3128",
		.no_proxy = "localhost.test",
		.credentials = "user:pass",
		.credentials_len = 9,
	};
	struct proxy_upstream *u = proxy_upstream_create(&o, err, sizeof(err));
	assert_non_null(u);
	assert_string_equal(proxy_upstream_name(u), "127.0.0.1:3128");
	assert_int_equal(proxy_upstream_address_count(u), 1);
	assert_int_equal(u->n_no_proxy, 1);
	assert_non_null(u->auth_line);
	proxy_upstream_free(u);
	proxy_upstream_free(NULL);
	o.no_proxy = "bad..name";
	assert_null(proxy_upstream_create(&o, err, sizeof(err)));
	assert_contains(err, "--upstream-no-proxy");
	o.no_proxy = NULL;
	o.credentials = "nocolon";
	o.credentials_len = 7;
	assert_null(proxy_upstream_create(&o, err, sizeof(err)));
	assert_contains(err, "--upstream-proxy-auth-file");
}

/* ---- the chain on a loop: a scripted fake corporate proxy ---- */

/* One connection at a time: read a request head, record it, send `reply`,
 * then echo (tunnel) until EOF when `echo_after`. */
struct fake_proxy {
	int fd;
	uint16_t port;
	pthread_t thread;
	pthread_mutex_t mu;
	char reply[12288];
	size_t reply_len;
	bool echo_after;
	char last[8192];   /* the last request head received */
	int n_accepted;
};

static void fake_serve(struct fake_proxy *f, int fd)
{
	char buf[8192];
	size_t len = 0;
	while (len < sizeof(buf) - 1) {
		ssize_t n = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
		if (n <= 0)
			return;
		len += (size_t)n;
		buf[len] = '\0';
		if (strstr(buf, "\r\n\r\n") != NULL)
			break;
	}
	pthread_mutex_lock(&f->mu);
	memcpy(f->last, buf, len + 1);
	char reply_copy[sizeof(f->reply)];
	size_t reply_len = f->reply_len;
	bool echo = f->echo_after;
	memcpy(reply_copy, f->reply, reply_len);
	pthread_mutex_unlock(&f->mu);
	if (tu_send_all(fd, reply_copy, reply_len) && echo)
		tu_echo_until_eof(fd);
}

static void *fake_main(void *arg)
{
	struct fake_proxy *f = arg;
	for (;;) {
		int fd = accept(f->fd, NULL, NULL);
		if (fd < 0)
			break;
		pthread_mutex_lock(&f->mu);
		f->n_accepted++;
		pthread_mutex_unlock(&f->mu);
		tu_set_timeouts(fd, TU_IO_TIMEOUT_S);
		fake_serve(f, fd);
		close(fd);
	}
	return NULL;
}

static void fake_script(struct fake_proxy *f, const char *reply, size_t len, bool echo)
{
	pthread_mutex_lock(&f->mu);
	memcpy(f->reply, reply, len);
	f->reply_len = len;
	f->echo_after = echo;
	f->last[0] = '\0';
	pthread_mutex_unlock(&f->mu);
}

struct world {
	struct tu_proxy_thread pt;
	struct proxy *px;       /* chained to fake, with credentials and a no-proxy entry */
	struct proxy *px_dead;  /* chained to a port where nothing listens */
	uint16_t port, dead_port;
	struct proxy_upstream *up, *up_dead;
	struct policy *policy;
	struct fake_proxy fake;
	int echo_fd;            /* a direct echo destination (no-proxy) */
	uint16_t echo_port;
	pthread_t echo_thread;
};

static void *echo_main(void *arg)
{
	struct world *w = arg;
	for (;;) {
		int fd = accept(w->echo_fd, NULL, NULL);
		if (fd < 0)
			break;
		tu_set_timeouts(fd, TU_IO_TIMEOUT_S);
		tu_echo_until_eof(fd);
		close(fd);
	}
	return NULL;
}

#define DEST_PORT 4443   /* CONNECT destination; only the fake proxy "dials" it */
#define FWD_PORT 4480    /* forward destination, likewise */
#define DENIED_PORT 4444 /* not in the policy */

static struct policy *chain_policy(uint16_t echo_port)
{
	char yaml[1024];
	snprintf(yaml, sizeof(yaml),
		 "version: 1\n"
		 "network_policies:\n"
		 "  chain:\n"
		 "    name: chain-test\n"
		 "    endpoints:\n"
		 "      - { host: 127.0.0.1, port: %u }\n"
		 "      - { host: 127.0.0.1, port: %u }\n"
		 "      - { host: 127.0.0.1, port: %u }\n",
		 DEST_PORT, FWD_PORT, (unsigned)echo_port);
	return tu_policy_load(yaml);
}

static struct proxy *start_chained(struct world *w, const struct proxy_upstream *up)
{
	struct proxy_config cfg = {
		.listen_ip = "127.0.0.1",
		.hooks = { .audit = tu_audit_hook, .log = tu_log_hook, .log_level = PROXY_LOG_DEBUG, .ud = &w->pt },
		.test_allow_loopback_upstream = true,
		.upstream = up,
	};
	return tu_pt_start(&w->pt, &cfg, w->policy);
}

static int chain_setup(void **state)
{
	struct world *w = calloc(1, sizeof(*w));
	assert_non_null(w);
	pthread_mutex_init(&w->fake.mu, NULL);
	w->fake.fd = tu_listen_loopback(&w->fake.port);
	assert_int_equal(pthread_create(&w->fake.thread, NULL, fake_main, &w->fake), 0);
	w->echo_fd = tu_listen_loopback(&w->echo_port);
	assert_int_equal(pthread_create(&w->echo_thread, NULL, echo_main, w), 0);
	uint16_t closed;
	int tmp = tu_listen_loopback(&closed);
	close(tmp);

	char url[64], np[64], err[512];
	snprintf(url, sizeof(url), "http://127.0.0.1:%u", (unsigned)w->fake.port);
	snprintf(np, sizeof(np), "127.0.0.1:%u", (unsigned)w->echo_port);
	struct proxy_upstream_options o = { .url = url, .no_proxy = np,
					    .credentials = "user:pass", .credentials_len = 9 };
	w->up = proxy_upstream_create(&o, err, sizeof(err));
	assert_non_null(w->up);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u", (unsigned)closed);
	struct proxy_upstream_options od = { .url = url };
	w->up_dead = proxy_upstream_create(&od, err, sizeof(err));
	assert_non_null(w->up_dead);

	w->policy = chain_policy(w->echo_port);
	tu_pt_init(&w->pt);
	w->px = start_chained(w, w->up);
	w->px_dead = start_chained(w, w->up_dead);
	w->port = proxy_listen_port(w->px);
	w->dead_port = proxy_listen_port(w->px_dead);
	tu_pt_run(&w->pt);
	*state = w;
	return 0;
}

static int chain_teardown(void **state)
{
	struct world *w = *state;
	tu_pt_stop(&w->pt);
	shutdown(w->fake.fd, SHUT_RDWR);
	pthread_join(w->fake.thread, NULL);
	close(w->fake.fd);
	shutdown(w->echo_fd, SHUT_RDWR);
	pthread_join(w->echo_thread, NULL);
	close(w->echo_fd);
	proxy_upstream_free(w->up);
	proxy_upstream_free(w->up_dead);
	policy_free(w->policy);
	pthread_mutex_destroy(&w->fake.mu);
	free(w);
	return 0;
}

static void fake_last(struct world *w, char *out, size_t cap)
{
	pthread_mutex_lock(&w->fake.mu);
	snprintf(out, cap, "%s", w->fake.last);
	pthread_mutex_unlock(&w->fake.mu);
}

static int fake_accepted(struct world *w)
{
	pthread_mutex_lock(&w->fake.mu);
	int n = w->fake.n_accepted;
	pthread_mutex_unlock(&w->fake.mu);
	return n;
}

static const char connect_req[] = "CONNECT 127.0.0.1:4443 HTTP/1.1\r\nHost: 127.0.0.1:4443\r\n\r\n";

static void test_chain_connect_tunnel(void **state)
{
	struct world *w = *state;
	static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\nEARLY";
	fake_script(&w->fake, ok, sizeof(ok) - 1, true);
	int fd = tu_dial_loopback(w->port);
	assert_true(tu_send_all(fd, connect_req, sizeof(connect_req) - 1));
	static const char ours[] = "HTTP/1.1 200 Connection Established\r\n\r\nEARLY";
	char buf[256];
	assert_int_equal(tu_read_exact(fd, buf, sizeof(ours) - 1), sizeof(ours) - 1);
	assert_memory_equal(buf, ours, sizeof(ours) - 1); /* our 200, then the tunnel's bytes */
	assert_true(tu_send_all(fd, "ping", 4));
	assert_int_equal(tu_read_exact(fd, buf, 4), 4);
	assert_memory_equal(buf, "ping", 4);
	close(fd);
	char last[8192];
	fake_last(w, last, sizeof(last));
	assert_string_equal(last, "CONNECT 127.0.0.1:4443 HTTP/1.1\r\nHost: 127.0.0.1:4443\r\n"
				  "Proxy-Authorization: Basic dXNlcjpwYXNz\r\n\r\n");
	char via[64];
	snprintf(via, sizeof(via), "via upstream proxy 127.0.0.1:%u", (unsigned)w->fake.port);
	assert_true(tu_pt_audit_has(&w->pt, via));
}

static void test_chain_refused_is_502(void **state)
{
	struct world *w = *state;
	static const char no[] = "HTTP/1.1 407 Proxy Authentication Required\r\n"
				 "Proxy-Authenticate: Basic realm=\"corp\"\r\n\r\n";
	fake_script(&w->fake, no, sizeof(no) - 1, false);
	char *resp = tu_exchange_str(w->port, connect_req);
	assert_true(strncmp(resp, "HTTP/1.1 502 ", 13) == 0);
	assert_contains(resp, "\"upstream_proxy_refused\"");
	assert_contains(resp, "407 Proxy Authentication Required");
	assert_null(strstr(resp, "Proxy-Authenticate")); /* the challenge stays with us */
	free(resp);
}

static void test_chain_bad_replies_are_502(void **state)
{
	struct world *w = *state;
	static const char junk[] = "SSH-2.0-OpenSSH\r\n\r\n";
	fake_script(&w->fake, junk, sizeof(junk) - 1, false);
	char *resp = tu_exchange_str(w->port, connect_req);
	assert_true(strncmp(resp, "HTTP/1.1 502 ", 13) == 0);
	assert_contains(resp, "invalid reply");
	free(resp);

	char huge[PROXY_UPSTREAM_MAX_REPLY_HEAD_BYTES + 100];
	memcpy(huge, "HTTP/1.1 200 OK\r\nX: ", 20);
	memset(huge + 20, 'a', sizeof(huge) - 20);
	fake_script(&w->fake, huge, sizeof(huge), false);
	resp = tu_exchange_str(w->port, connect_req);
	assert_true(strncmp(resp, "HTTP/1.1 502 ", 13) == 0);
	assert_contains(resp, "larger than 8192 bytes");
	free(resp);

	fake_script(&w->fake, "", 0, false); /* closes without answering */
	resp = tu_exchange_str(w->port, connect_req);
	assert_true(strncmp(resp, "HTTP/1.1 502 ", 13) == 0);
	assert_contains(resp, "closed the connection");
	free(resp);
}

static void test_chain_forward_absolute_form(void **state)
{
	struct world *w = *state;
	static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
	fake_script(&w->fake, ok, sizeof(ok) - 1, false);
	char *resp = tu_exchange_str(w->port, "GET http://127.0.0.1:4480/p?q=1 HTTP/1.1\r\n"
					"Host: 127.0.0.1:4480\r\nProxy-Authorization: Basic c2FuZGJveA==\r\n\r\n");
	assert_contains(resp, "\r\n\r\nok");
	free(resp);
	char last[8192];
	fake_last(w, last, sizeof(last));
	assert_true(strncmp(last, "GET http://127.0.0.1:4480/p?q=1 HTTP/1.1\r\n", 42) == 0);
	assert_contains(last, "\r\nHost: 127.0.0.1:4480\r\n");
	assert_contains(last, "\r\nProxy-Authorization: Basic dXNlcjpwYXNz\r\n\r\n");
	assert_null(strstr(last, "c2FuZGJveA==")); /* the sandbox's own is never forwarded */
}

static void test_chain_denied_never_reaches_upstream(void **state)
{
	struct world *w = *state;
	int before = fake_accepted(w);
	char *resp = tu_exchange_str(w->port, "CONNECT 127.0.0.1:4444 HTTP/1.1\r\n"
					"Host: 127.0.0.1:4444\r\n\r\n");
	assert_true(strncmp(resp, "HTTP/1.1 403 ", 13) == 0);
	assert_contains(resp, "policy_denied");
	free(resp);
	assert_int_equal(fake_accepted(w), before);
}

static void test_chain_no_proxy_dials_directly(void **state)
{
	struct world *w = *state;
	int before = fake_accepted(w);
	char req[256];
	snprintf(req, sizeof(req), "CONNECT 127.0.0.1:%u HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n\r\n",
		 (unsigned)w->echo_port, (unsigned)w->echo_port);
	int fd = tu_dial_loopback(w->port);
	assert_true(tu_send_all(fd, req, strlen(req)));
	static const char ours[] = "HTTP/1.1 200 Connection Established\r\n\r\n";
	char buf[128];
	assert_int_equal(tu_read_exact(fd, buf, sizeof(ours) - 1), sizeof(ours) - 1);
	assert_true(tu_send_all(fd, "direct", 6));
	assert_int_equal(tu_read_exact(fd, buf, 6), 6);
	assert_memory_equal(buf, "direct", 6);
	close(fd);
	assert_int_equal(fake_accepted(w), before);
}

static void test_chain_upstream_unreachable(void **state)
{
	struct world *w = *state;
	char *resp = tu_exchange_str(w->dead_port, connect_req);
	assert_true(strncmp(resp, "HTTP/1.1 502 ", 13) == 0);
	assert_contains(resp, "upstream proxy 127.0.0.1:");
	assert_contains(resp, "unreachable");
	free(resp);
}

int main(void)
{
	const struct CMUnitTest parse_tests[] = {
		cmocka_unit_test(test_url_accepted),
		cmocka_unit_test(test_url_refused),
		cmocka_unit_test(test_no_proxy_names),
		cmocka_unit_test(test_no_proxy_addresses),
		cmocka_unit_test(test_no_proxy_refused),
		cmocka_unit_test(test_credentials),
		cmocka_unit_test(test_connect_request_and_authority),
		cmocka_unit_test(test_reply_parse),
		cmocka_unit_test(test_forward_absolute_head),
		cmocka_unit_test(test_create_and_free),
	};
	const struct CMUnitTest chain_tests[] = {
		cmocka_unit_test(test_chain_connect_tunnel),
		cmocka_unit_test(test_chain_refused_is_502),
		cmocka_unit_test(test_chain_bad_replies_are_502),
		cmocka_unit_test(test_chain_forward_absolute_form),
		cmocka_unit_test(test_chain_denied_never_reaches_upstream),
		cmocka_unit_test(test_chain_no_proxy_dials_directly),
		cmocka_unit_test(test_chain_upstream_unreachable),
	};
	signal(SIGPIPE, SIG_IGN);
	int failed = cmocka_run_group_tests_name("upstream parsing", parse_tests, NULL, NULL);
	failed += cmocka_run_group_tests_name("upstream chain", chain_tests, chain_setup,
					      chain_teardown);
	return failed;
}
