/* test_dns.c - policy DNS: wire format, address map, decisions, and the
 * responder on a live loop (UDP and TCP on 127.0.0.1), plus the capture
 * listener refusing a connection that was not redirected to it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "policy/policy.h"
#include "proxy/dns.h"
#include "proxy/dns_map.h"
#include "proxy/dns_msg.h"
#include "proxy/proxy.h"
#include "proxy/transparent.h"
#include "tests/unit/support/harness.h"

/* ---- building queries ---- */

static size_t make_query(uint8_t *out, uint16_t id, const char *name, uint16_t qtype,
			 uint16_t qclass)
{
	size_t o = 12;
	memset(out, 0, 12);
	out[0] = (uint8_t)(id >> 8);
	out[1] = (uint8_t)id;
	out[2] = 0x01; /* RD */
	out[5] = 1;    /* QDCOUNT */
	const char *p = name;
	while (*p) {
		const char *dot = strchr(p, '.');
		size_t l = dot ? (size_t)(dot - p) : strlen(p);
		out[o++] = (uint8_t)l;
		memcpy(out + o, p, l);
		o += l;
		p += l + (dot ? 1 : 0);
	}
	out[o++] = 0;
	out[o++] = (uint8_t)(qtype >> 8);
	out[o++] = (uint8_t)qtype;
	out[o++] = (uint8_t)(qclass >> 8);
	out[o++] = (uint8_t)qclass;
	return o;
}

static int rcode_of(const uint8_t *r)
{
	return r[3] & 0x0f;
}

static int ancount_of(const uint8_t *r)
{
	return (r[6] << 8) | r[7];
}

/* ---- wire format ---- */

static void test_parse_ok(void **state)
{
	(void)state;
	uint8_t m[512];
	struct dns_query q;
	size_t n = make_query(m, 0x1234, "Api.Allowed.TEST", DNS_TYPE_A, DNS_CLASS_IN);
	assert_int_equal(dns_parse_query(m, n, &q), DNS_PARSE_OK);
	assert_int_equal(q.id, 0x1234);
	assert_true(q.rd);
	assert_string_equal(q.name, "api.allowed.test");
	assert_true(q.name_ok);
	assert_int_equal(q.qtype, DNS_TYPE_A);
	assert_int_equal(q.qclass, DNS_CLASS_IN);
	assert_int_equal(q.question_len, n - 12);
	/* trailing bytes (an EDNS OPT record) are ignored */
	memset(m + n, 0, 11);
	m[11] = 1;
	assert_int_equal(dns_parse_query(m, n + 11, &q), DNS_PARSE_OK);
}

static void test_parse_bad(void **state)
{
	(void)state;
	uint8_t m[600];
	struct dns_query q;
	size_t n = make_query(m, 1, "a.test", DNS_TYPE_A, DNS_CLASS_IN);
	assert_int_equal(dns_parse_query(m, 11, &q), DNS_PARSE_DROP);
	assert_int_equal(dns_parse_query(NULL, 0, &q), DNS_PARSE_DROP);
	m[2] |= 0x80; /* a response */
	assert_int_equal(dns_parse_query(m, n, &q), DNS_PARSE_DROP);
	m[2] = 0x01 | (2 << 3); /* opcode STATUS */
	assert_int_equal(dns_parse_query(m, n, &q), DNS_PARSE_NOTIMP);
	m[2] = 0x01;
	m[5] = 2; /* two questions */
	assert_int_equal(dns_parse_query(m, n, &q), DNS_PARSE_FORMERR);
	m[5] = 1;
	assert_int_equal(dns_parse_query(m, n - 1, &q), DNS_PARSE_FORMERR); /* short */
	m[12] = 0xc0; /* compression pointer in the question */
	assert_int_equal(dns_parse_query(m, n, &q), DNS_PARSE_FORMERR);
	m[12] = 70; /* label longer than 63 */
	assert_int_equal(dns_parse_query(m, n, &q), DNS_PARSE_FORMERR);
	/* a name longer than 255 bytes on the wire */
	char longname[400] = "";
	for (int i = 0; i < 5; i++)
		strcat(longname, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.");
	strcat(longname, "x");
	n = make_query(m, 1, longname, DNS_TYPE_A, DNS_CLASS_IN);
	assert_int_equal(dns_parse_query(m, n, &q), DNS_PARSE_FORMERR);
	/* odd characters parse, but the name is marked */
	n = make_query(m, 1, "a b.test", DNS_TYPE_A, DNS_CLASS_IN);
	assert_int_equal(dns_parse_query(m, n, &q), DNS_PARSE_OK);
	assert_false(q.name_ok);
	assert_string_equal(q.name, "a?b.test");
}

static void test_build(void **state)
{
	(void)state;
	uint8_t m[512], r[DNS_REPLY_MAX];
	struct dns_query q;
	size_t n = make_query(m, 0xbeef, "x.test", DNS_TYPE_A, DNS_CLASS_IN);
	assert_int_equal(dns_parse_query(m, n, &q), DNS_PARSE_OK);
	const uint8_t addrs[8] = { 198, 51, 100, 10, 198, 51, 100, 11 };
	size_t len = dns_build_reply(&q, DNS_RCODE_NOERROR, addrs, 4, 2, r, sizeof(r));
	assert_int_equal(len, n + 2 * 16);
	assert_int_equal(r[0], 0xbe);
	assert_int_equal(r[1], 0xef);
	assert_true(r[2] & 0x80); /* QR */
	assert_true(r[2] & 0x01); /* RD echoed */
	assert_int_equal(rcode_of(r), 0);
	assert_int_equal(ancount_of(r), 2);
	assert_memory_equal(r + 12, m + 12, n - 12);
	assert_int_equal(r[n], 0xc0);
	assert_int_equal(r[n + 1], 12);
	assert_memory_equal(r + n + 12, addrs, 4);
	/* NXDOMAIN carries no records even if some are passed */
	len = dns_build_reply(&q, DNS_RCODE_NXDOMAIN, addrs, 4, 2, r, sizeof(r));
	assert_int_equal(len, n);
	assert_int_equal(rcode_of(r), 3);
	assert_int_equal(ancount_of(r), 0);
	/* answers are capped; too small a buffer fails */
	uint8_t many[4 * 20] = { 0 };
	len = dns_build_reply(&q, DNS_RCODE_NOERROR, many, 4, 20, r, sizeof(r));
	assert_int_equal(ancount_of(r), DNS_MAX_ANSWERS);
	assert_int_equal(dns_build_reply(&q, DNS_RCODE_NOERROR, addrs, 4, 2, r, n), 0);
	assert_int_equal(dns_build_reply(&q, DNS_RCODE_NOERROR, addrs, 5, 1, r, sizeof(r)), 0);
	/* FORMERR without a question */
	struct dns_query none;
	assert_int_equal(dns_parse_query(m, 11, &none), DNS_PARSE_DROP);
	m[5] = 3;
	assert_int_equal(dns_parse_query(m, n, &none), DNS_PARSE_FORMERR);
	len = dns_build_reply(&none, DNS_RCODE_FORMERR, NULL, 0, 0, r, sizeof(r));
	assert_int_equal(len, 12);
	assert_int_equal(r[5], 0);
	assert_int_equal(rcode_of(r), 1);
}

/* ---- address map ---- */

static void test_map(void **state)
{
	(void)state;
	struct dns_map *m = dns_map_new();
	assert_non_null(m);
	const uint8_t a[4] = { 198, 51, 100, 10 }, b[4] = { 198, 51, 100, 11 };
	const char *names[DNS_MAP_NAMES_MAX];
	assert_int_equal(dns_map_lookup(m, AF_INET, a, names, 4), 0);
	dns_map_add(m, AF_INET, a, "one.test");
	dns_map_add(m, AF_INET, a, "two.test");
	dns_map_add(m, AF_INET, b, "three.test");
	assert_int_equal(dns_map_lookup(m, AF_INET, a, names, 4), 2);
	assert_string_equal(names[0], "two.test");
	assert_string_equal(names[1], "one.test");
	dns_map_add(m, AF_INET, a, "one.test"); /* refreshed: newest again */
	assert_int_equal(dns_map_lookup(m, AF_INET, a, names, 4), 2);
	assert_string_equal(names[0], "one.test");
	assert_int_equal(dns_map_lookup(m, AF_INET, a, names, 1), 1);
	assert_string_equal(names[0], "one.test");
	assert_int_equal(dns_map_lookup(m, AF_INET6, a, names, 4), 0);
	/* bounded: the oldest entries are overwritten */
	for (unsigned i = 0; i < DNS_MAP_MAX; i++) {
		uint8_t x[4] = { 10, (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i };
		dns_map_add(m, AF_INET, x, "filler.test");
	}
	assert_int_equal(dns_map_lookup(m, AF_INET, a, names, 4), 0);
	uint8_t last[4] = { 10, 0, (uint8_t)((DNS_MAP_MAX - 1) >> 8), (uint8_t)(DNS_MAP_MAX - 1) };
	assert_int_equal(dns_map_lookup(m, AF_INET, last, names, 4), 1);
	dns_map_free(m);
}

static void test_map_hosts(void **state)
{
	(void)state;
	struct dns_map *m = dns_map_new();
	static const char hosts[] =
		"127.0.0.1\tlocalhost\n"
		"# 198.51.100.99 commented.test\n"
		"198.51.100.10 API.allowed.test api2.test # trailing\n"
		"not-an-ip bad.test\n"
		"2001:db8::1 v6.test\n"
		"198.51.100.11 bad..name good.test";
	assert_int_equal(dns_map_add_hosts(m, hosts, sizeof(hosts) - 1), 5);
	const char *names[DNS_MAP_NAMES_MAX];
	const uint8_t a[4] = { 198, 51, 100, 10 }, b[4] = { 198, 51, 100, 11 },
		      c[4] = { 198, 51, 100, 99 };
	assert_int_equal(dns_map_lookup(m, AF_INET, a, names, 4), 2);
	assert_string_equal(names[1], "api.allowed.test");
	assert_int_equal(dns_map_lookup(m, AF_INET, b, names, 4), 1);
	assert_string_equal(names[0], "good.test");
	assert_int_equal(dns_map_lookup(m, AF_INET, c, names, 4), 0);
	assert_int_equal(dns_map_add_hosts(m, NULL, 5), 0);
	dns_map_free(m);
}

/* ---- decisions ---- */

static const char POLICY[] =
	"version: 1\n"
	"network_policies:\n"
	"  web:\n"
	"    endpoints:\n"
	"      - host: api.allowed.test\n"
	"        port: 443\n"
	"      - host: \"*.wild.test\"\n"
	"        port: 80\n"
	"      - host: 127.0.0.1\n"
	"        port: 80\n"
	"  db:\n"
	"    endpoints:\n"
	"      - host: db.allowed.test\n"
	"        port: 5432\n"
	"        protocol: tcp\n";

static void decide_name(const struct policy *p, const char *name, uint16_t qtype,
			struct dns_decision *d)
{
	uint8_t m[512];
	struct dns_query q;
	size_t n = make_query(m, 7, name, qtype, DNS_CLASS_IN);
	dns_decide(p, "myhost", dns_parse_query(m, n, &q), &q, d);
}

static void test_decide(void **state)
{
	(void)state;
	struct policy *p = tu_policy_load(POLICY);
	struct dns_decision d;
	decide_name(p, "api.allowed.test", DNS_TYPE_A, &d);
	assert_int_equal(d.action, DNS_ACT_RESOLVE);
	assert_string_equal(d.rule->name, "web");
	decide_name(p, "DB.allowed.test", DNS_TYPE_A, &d); /* any port, any protocol */
	assert_int_equal(d.action, DNS_ACT_RESOLVE);
	decide_name(p, "a.wild.test", DNS_TYPE_A, &d);
	assert_int_equal(d.action, DNS_ACT_RESOLVE);
	decide_name(p, "api.allowed.test", DNS_TYPE_AAAA, &d); /* NODATA */
	assert_int_equal(d.action, DNS_ACT_REPLY);
	assert_int_equal(d.rcode, DNS_RCODE_NOERROR);
	assert_false(d.denied);
	const char *denied[] = { "denied.test", "wild.test", "deep.a.wild.test",
				 "secret-payload.denied.test", "allowed.test" };
	for (size_t i = 0; i < sizeof(denied) / sizeof(denied[0]); i++) {
		decide_name(p, denied[i], DNS_TYPE_A, &d);
		assert_int_equal(d.action, DNS_ACT_REPLY);
		assert_int_equal(d.rcode, DNS_RCODE_NXDOMAIN);
		assert_true(d.denied);
		assert_null(d.rule);
		decide_name(p, denied[i], 16 /* TXT */, &d);
		assert_int_equal(d.rcode, DNS_RCODE_NXDOMAIN);
	}
	const char *local[] = { "localhost", "LocalHost", "x.localhost", "myhost", "MYHOST" };
	for (size_t i = 0; i < sizeof(local) / sizeof(local[0]); i++) {
		decide_name(p, local[i], DNS_TYPE_A, &d);
		assert_int_equal(d.action, DNS_ACT_LOCAL);
		assert_false(d.denied);
	}
	uint8_t m[512];
	struct dns_query q;
	size_t n = make_query(m, 7, "api.allowed.test", DNS_TYPE_A, 3 /* CH */);
	dns_decide(p, NULL, dns_parse_query(m, n, &q), &q, &d);
	assert_int_equal(d.rcode, DNS_RCODE_REFUSED);
	n = make_query(m, 7, "api allowed.test", DNS_TYPE_A, DNS_CLASS_IN);
	dns_decide(p, NULL, dns_parse_query(m, n, &q), &q, &d);
	assert_int_equal(d.rcode, DNS_RCODE_NXDOMAIN);
	assert_true(d.denied);
	dns_decide(NULL, NULL, DNS_PARSE_OK, &q, &d); /* no policy: deny */
	assert_true(d.denied);
	dns_decide(p, NULL, DNS_PARSE_DROP, &q, &d);
	assert_int_equal(d.action, DNS_ACT_DROP);
	policy_free(p);
}

static void test_map_name(void **state)
{
	(void)state;
	struct policy *p = tu_policy_load(POLICY);
	struct dns_map *m = dns_map_new();
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	s4->sin_family = AF_INET;
	s4->sin_port = htons(5432);
	inet_pton(AF_INET, "198.51.100.20", &s4->sin_addr);
	assert_null(transparent_map_name(m, p, &ss));
	dns_map_add(m, AF_INET, (uint8_t *)&s4->sin_addr, "db.allowed.test");
	dns_map_add(m, AF_INET, (uint8_t *)&s4->sin_addr, "api.allowed.test");
	/* the newest name is not allowed on 5432, the older one is */
	assert_string_equal(transparent_map_name(m, p, &ss), "db.allowed.test");
	s4->sin_port = htons(22); /* none allowed: the newest */
	assert_string_equal(transparent_map_name(m, p, &ss), "api.allowed.test");
	dns_map_free(m);
	policy_free(p);
}

/* A capture that cannot start fails proxy_start cleanly (nothing left on
 * the loop). */
static void test_capture_start_failure(void **state)
{
	(void)state;
	uv_loop_t loop;
	assert_int_equal(uv_loop_init(&loop), 0);
	struct proxy_capture_fds fds = { .tcp = -1, .dns_udp = -1, .dns_tcp = -1 };
	struct proxy_config cfg = { .capture = &fds, .listen_ip = "127.0.0.1" };
	char err[256] = "";
	assert_null(proxy_start(&loop, &cfg, NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "capture"));
	/* a UDP socket where the TCP listener belongs: the listener cannot start */
	fds.tcp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	fds.dns_udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	fds.dns_tcp = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fds.tcp >= 0 && fds.dns_udp >= 0 && fds.dns_tcp >= 0);
	err[0] = '\0';
	assert_null(proxy_start(&loop, &cfg, NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "capture"));
	proxy_capture_close(&fds);
	assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(uv_loop_close(&loop), 0);
}

/* A listener made by the caller (the supervisor opens it inside the sandbox
 * namespace): a socket that is not listening is refused with a message; a
 * listening one is used on its own port, and the caller keeps its fd. */
static void test_given_listener(void **state)
{
	(void)state;
	uv_loop_t loop;
	assert_int_equal(uv_loop_init(&loop), 0);
	int idle = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(idle >= 0);
	struct proxy_config cfg = { .listen_ip = "127.0.0.1", .listen_fd = &idle };
	char err[256] = "";
	assert_null(proxy_start(&loop, &cfg, NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "not a listening socket"));
	close(idle);

	char lerr[128];
	int lfd = proxy_listener_open("127.0.0.1", 0, lerr, sizeof(lerr));
	assert_true(lfd >= 0);
	struct sockaddr_in a;
	socklen_t al = sizeof(a);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &al), 0);
	cfg.listen_fd = &lfd;
	struct proxy *px = proxy_start(&loop, &cfg, NULL, err, sizeof(err));
	assert_non_null(px);
	assert_int_equal(proxy_listen_port(px), ntohs(a.sin_port));
	assert_int_equal(fcntl(lfd, F_GETFD) >= 0, 1); /* still the caller's */
	close(lfd);
	proxy_stop(px, NULL, NULL);
	assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(uv_loop_close(&loop), 0);
	assert_int_equal(proxy_listener_open("not-an-ip", 0, lerr, sizeof(lerr)), -1);
	assert_non_null(strstr(lerr, "not an IP address"));
}

/* ---- live responder ---- */

struct live {
	uv_loop_t loop;
	uv_async_t stop;
	struct proxy *px;
	struct policy *policy;
	pthread_t thread;
	pthread_mutex_t mu;
	char audit[8192];
	struct proxy_capture_fds fds;
	uint16_t udp_port, dns_tcp_port, cap_port;
};

static void on_audit(void *ud, const char *line)
{
	struct live *l = ud;
	pthread_mutex_lock(&l->mu);
	size_t used = strlen(l->audit);
	snprintf(l->audit + used, sizeof(l->audit) - used, "%s\n", line);
	pthread_mutex_unlock(&l->mu);
}

static void on_stop(uv_async_t *a)
{
	struct live *l = a->data;
	proxy_stop(l->px, NULL, NULL);
	uv_close((uv_handle_t *)a, NULL);
}

static void *loop_main(void *arg)
{
	struct live *l = arg;
	uv_run(&l->loop, UV_RUN_DEFAULT);
	return NULL;
}

static int bound(int type, uint16_t *port)
{
	int fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	struct sockaddr_in sa = { .sin_family = AF_INET };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof(sa);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	if (type == SOCK_STREAM)
		assert_int_equal(listen(fd, 16), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	*port = ntohs(sa.sin_port);
	return fd;
}

static int live_setup(void **state)
{
	struct live *l = calloc(1, sizeof(*l));
	assert_non_null(l);
	signal(SIGPIPE, SIG_IGN);
	pthread_mutex_init(&l->mu, NULL);
	l->policy = tu_policy_load(POLICY);
	l->fds.tcp = bound(SOCK_STREAM, &l->cap_port);
	l->fds.dns_udp = bound(SOCK_DGRAM, &l->udp_port);
	l->fds.dns_tcp = bound(SOCK_STREAM, &l->dns_tcp_port);
	assert_int_equal(uv_loop_init(&l->loop), 0);
	struct proxy_config cfg = {
		.capture = &l->fds,
		.local_hostname = "myhost",
		.listen_ip = "127.0.0.1",
		.listen_port = 0,
		.hooks = { .audit = on_audit, .ud = l },
	};
	char err[256] = "";
	l->px = proxy_start(&l->loop, &cfg, l->policy, err, sizeof(err));
	if (l->px == NULL)
		fail_msg("proxy_start: %s", err);
	proxy_capture_close(&l->fds); /* the proxy works on duplicates */
	assert_int_equal(uv_async_init(&l->loop, &l->stop, on_stop), 0);
	l->stop.data = l;
	assert_int_equal(pthread_create(&l->thread, NULL, loop_main, l), 0);
	*state = l;
	return 0;
}

static int live_teardown(void **state)
{
	struct live *l = *state;
	uv_async_send(&l->stop);
	pthread_join(l->thread, NULL);
	assert_int_equal(uv_loop_close(&l->loop), 0);
	policy_free(l->policy);
	pthread_mutex_destroy(&l->mu);
	free(l);
	return 0;
}

static void set_timeout(int fd)
{
	struct timeval tv = { .tv_sec = 10 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

static size_t udp_ask(struct live *l, const char *name, uint16_t qtype, uint8_t *reply)
{
	uint8_t m[512];
	size_t n = make_query(m, 0x4242, name, qtype, DNS_CLASS_IN);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	set_timeout(fd);
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(l->udp_port) };
	to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(sendto(fd, m, n, 0, (struct sockaddr *)&to, sizeof(to)), (ssize_t)n);
	ssize_t r = recv(fd, reply, DNS_REPLY_MAX, 0);
	close(fd);
	assert_true(r >= 12);
	assert_int_equal(reply[0], 0x42);
	return (size_t)r;
}

static void test_live_udp(void **state)
{
	struct live *l = *state;
	uint8_t r[DNS_REPLY_MAX];
	/* allowed (an IP-literal host resolves without any network) */
	size_t n = udp_ask(l, "127.0.0.1", DNS_TYPE_A, r);
	assert_int_equal(rcode_of(r), 0);
	assert_int_equal(ancount_of(r), 1);
	const uint8_t lo[4] = { 127, 0, 0, 1 };
	assert_memory_equal(r + n - 4, lo, 4);
	/* denied: NXDOMAIN and a dns deny event */
	udp_ask(l, "secret-payload.denied.test", DNS_TYPE_A, r);
	assert_int_equal(rcode_of(r), 3);
	/* local names: no event */
	n = udp_ask(l, "myhost", DNS_TYPE_A, r);
	assert_int_equal(rcode_of(r), 0);
	assert_int_equal(ancount_of(r), 1);
	assert_memory_equal(r + n - 4, lo, 4);
	n = udp_ask(l, "localhost", DNS_TYPE_AAAA, r);
	assert_int_equal(ancount_of(r), 1);
	assert_int_equal(r[n - 1], 1);
	pthread_mutex_lock(&l->mu);
	char audit[sizeof(l->audit)];
	memcpy(audit, l->audit, sizeof(audit));
	pthread_mutex_unlock(&l->mu);
	assert_non_null(strstr(audit, "\"path\":\"dns\""));
	assert_non_null(strstr(audit, "\"hostname\":\"secret-payload.denied.test\""));
	assert_non_null(strstr(audit, "\"hostname\":\"127.0.0.1\""));
	assert_null(strstr(audit, "myhost"));
	assert_null(strstr(audit, "localhost"));
}

static void test_live_tcp(void **state)
{
	struct live *l = *state;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	set_timeout(fd);
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(l->dns_tcp_port) };
	to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&to, sizeof(to)), 0);
	/* two pipelined queries in one write */
	uint8_t m[1024];
	size_t a = make_query(m + 2, 1, "denied.test", DNS_TYPE_A, DNS_CLASS_IN);
	m[0] = 0;
	m[1] = (uint8_t)a;
	size_t b = make_query(m + 4 + a, 2, "127.0.0.1", DNS_TYPE_A, DNS_CLASS_IN);
	m[2 + a] = 0;
	m[3 + a] = (uint8_t)b;
	assert_int_equal(send(fd, m, 4 + a + b, 0), (ssize_t)(4 + a + b));
	uint8_t r[2 + DNS_REPLY_MAX];
	for (int i = 1; i <= 2; i++) {
		size_t got = 0, want = 2;
		while (got < want) {
			ssize_t k = recv(fd, r + got, want - got, 0);
			assert_true(k > 0);
			got += (size_t)k;
			if (got == 2)
				want = 2 + (((size_t)r[0] << 8) | r[1]);
		}
		assert_int_equal(r[3], i); /* id */
		assert_int_equal(rcode_of(r + 2), i == 1 ? 3 : 0);
	}
	close(fd);
}

static void test_listener_refuses_direct(void **state)
{
	struct live *l = *state;
	/* not redirected by nftables: no original destination -> reset */
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	set_timeout(fd);
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(l->cap_port) };
	to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&to, sizeof(to)), 0);
	(void)send(fd, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 27, MSG_NOSIGNAL);
	char c;
	ssize_t k = recv(fd, &c, 1, 0);
	assert_true(k == 0 || (k < 0 && errno == ECONNRESET));
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_ok),
		cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_build),
		cmocka_unit_test(test_map),
		cmocka_unit_test(test_map_hosts),
		cmocka_unit_test(test_decide),
		cmocka_unit_test(test_map_name),
		cmocka_unit_test(test_capture_start_failure),
		cmocka_unit_test(test_given_listener),
	};
	const struct CMUnitTest live[] = {
		cmocka_unit_test(test_live_udp),
		cmocka_unit_test(test_live_tcp),
		cmocka_unit_test(test_listener_refuses_direct),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	return rc + cmocka_run_group_tests(live, live_setup, live_teardown);
}
