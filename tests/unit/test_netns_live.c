/* test_netns_live.c - netns_create/enter/run_inside/destroy against the kernel.
 *
 * Needs root. The whole test process first moves into a throwaway network
 * namespace of its own (unshare), which stands in for the container; the
 * machine's namespace and nftables are never touched. Skips otherwise.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <nftables/libnftables.h>

#include "netns/fence.h"
#include "netns/netns.h"
#include "tests/unit/support/net.h"
#include "netns/nlops.h"
#include "netns/plan.h"

#define PROXY_PORT 3128
#define FAST_MS 1000 /* a reject must answer well within this */

static int live_ok; /* set by group setup; read-only afterwards */

static int group_setup(void **state)
{
	(void)state;
	live_ok = tu_enter_own_netns("test_netns_live");
	return 0;
}

static void need_live(void)
{
	if (!live_ok)
		skip();
}

static long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static int listen_on(const char *ip, uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (inet_pton(AF_INET, ip, &a.sin_addr) != 1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 8) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* TCP connect with a 3 s cap, from a socket bound to device dev (NULL: none):
 * 0 on success, else the errno it failed with. */
static int tcp_connect_dev(const char *ip, uint16_t port, const char *dev)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || inet_pton(AF_INET, ip, &a.sin_addr) != 1)
		return EINVAL;
	if (dev != NULL &&
	    setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, dev, (socklen_t)strlen(dev)) != 0) {
		close(fd);
		return EINVAL;
	}
	int rc = connect(fd, (struct sockaddr *)&a, sizeof(a));
	int e = rc == 0 ? 0 : errno;
	if (e == EINPROGRESS) {
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		socklen_t l = sizeof(e);
		if (poll(&p, 1, 3000) != 1)
			e = ETIMEDOUT;
		else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &l) != 0)
			e = errno;
	}
	close(fd);
	return e;
}

static int tcp_connect(const char *ip, uint16_t port)
{
	return tcp_connect_dev(ip, port, NULL);
}

/* The source address the kernel picks toward ip:port (a UDP connect sends
 * nothing). Returns 0 with it in buf, or -1. */
static int source_toward(const char *ip, uint16_t port, char *buf, size_t len)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	socklen_t al = sizeof(a);
	snprintf(buf, len, "?");
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int ok = inet_pton(AF_INET, ip, &a.sin_addr) == 1 &&
		 connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
		 getsockname(fd, (struct sockaddr *)&a, &al) == 0 &&
		 inet_ntop(AF_INET, &a.sin_addr, buf, (socklen_t)len) != NULL;
	close(fd);
	return ok ? 0 : -1;
}

/* UDP datagram to a blocked address: the send itself fails (EPERM from the
 * reject's drop verdict) or the ICMP error arrives as ECONNREFUSED. Returns
 * that errno, 0 if the datagram seemed to go out unanswered. */
static int udp_blocked(const char *ip, uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || inet_pton(AF_INET, ip, &a.sin_addr) != 1 ||
	    connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
		return EINVAL;
	int e = 0;
	if (send(fd, "x", 1, 0) < 0) {
		e = errno;
	} else {
		char c;
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, FAST_MS) == 1 && recv(fd, &c, 1, MSG_DONTWAIT) < 0)
			e = errno;
	}
	close(fd);
	return e;
}

/* ICMP echo over a raw socket: errno of the send or of the error reply. */
static int ping_blocked(const char *ip)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	struct icmphdr h = { .type = ICMP_ECHO };
	int fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP);
	if (fd < 0 || inet_pton(AF_INET, ip, &a.sin_addr) != 1)
		return EINVAL;
	h.checksum = htons((uint16_t)~(ICMP_ECHO << 8));
	int e = 0;
	if (sendto(fd, &h, sizeof(h), 0, (struct sockaddr *)&a, sizeof(a)) < 0)
		e = errno;
	close(fd);
	return e;
}

static int has_address(const char *ifname, const char *ip)
{
	struct ifaddrs *all, *i;
	int found = 0;
	if (getifaddrs(&all) != 0)
		return 0;
	for (i = all; i != NULL; i = i->ifa_next) {
		char buf[INET_ADDRSTRLEN];
		if (i->ifa_addr == NULL || i->ifa_addr->sa_family != AF_INET ||
		    strcmp(i->ifa_name, ifname) != 0)
			continue;
		struct sockaddr_in *s = (struct sockaddr_in *)i->ifa_addr;
		if (inet_ntop(AF_INET, &s->sin_addr, buf, sizeof(buf)) && strcmp(buf, ip) == 0)
			found = 1;
	}
	freeifaddrs(all);
	return found;
}

__attribute__((format(printf, 1, 2)))
static int fail_child(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "child: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	return 1;
}

/* IFF_UP and IFF_RUNNING (carrier): the sandbox sees a working link. */
static int link_running(const char *ifname)
{
	struct ifreq r;
	memset(&r, 0, sizeof(r));
	snprintf(r.ifr_name, sizeof(r.ifr_name), "%s", ifname);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	int rc = ioctl(fd, SIOCGIFFLAGS, &r);
	close(fd);
	return rc == 0 && (r.ifr_flags & (IFF_UP | IFF_RUNNING)) == (IFF_UP | IFF_RUNNING);
}

/* net.ipv4.conf.<ifname>.forwarding of the calling process's namespace
 * (/proc/sys/net shows the opener's), or -1. A new namespace inherits the
 * host's value: where that is 0 (as on the test machine) this check only
 * guards against netns_create turning forwarding on. */
static int ipv4_forwarding(const char *ifname)
{
	char path[128], v[8] = "";
	snprintf(path, sizeof(path), "/proc/sys/net/ipv4/conf/%s/forwarding", ifname);
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return -1;
	int ok = fgets(v, sizeof(v), f) != NULL;
	fclose(f);
	return ok ? atoi(v) : -1;
}

static int child_checks(const struct netns *ns)
{
	int rc = netns_enter(ns);
	if (rc != 0)
		return fail_child("netns_enter: %s", strerror(-rc));
	if (!has_address(ns->sandbox_if, ns->sandbox_ip))
		return fail_child("%s lacks %s", ns->sandbox_if, ns->sandbox_ip);
	if (!has_address("lo", ns->proxy_ip))
		return fail_child("lo lacks %s", ns->proxy_ip);
	if (!link_running(ns->sandbox_if))
		return fail_child("%s is not up with carrier", ns->sandbox_if);
	if (ipv4_forwarding(ns->peer_if) != 0)
		return fail_child("%s forwards IPv4", ns->peer_if);
	if ((rc = tcp_connect(ns->proxy_ip, PROXY_PORT)) != 0)
		return fail_child("proxy connect: %s", strerror(rc));
	char src[INET_ADDRSTRLEN];
	if (source_toward(ns->proxy_ip, PROXY_PORT, src, sizeof(src)) != 0 ||
	    strcmp(src, ns->sandbox_ip) != 0)
		return fail_child("connections to the proxy come from %s, want %s", src,
				  ns->sandbox_ip);

	long t0 = now_ms();
	/* the proxy address is on lo, yet only its proxy port is open */
	if ((rc = tcp_connect(ns->proxy_ip, PROXY_PORT + 1)) != ECONNREFUSED)
		return fail_child("other port of the proxy address: %s, want ECONNREFUSED",
				  strerror(rc));
	if ((rc = udp_blocked(ns->proxy_ip, 9999)) != EPERM && rc != ECONNREFUSED)
		return fail_child("UDP to the proxy address: %s", strerror(rc));
	/* a socket bound to the veth (no privilege needed) leaves by it: refused */
	if ((rc = tcp_connect_dev(ns->proxy_ip, PROXY_PORT, ns->sandbox_if)) != ECONNREFUSED)
		return fail_child("proxy port through %s: %s, want ECONNREFUSED", ns->sandbox_if,
				  strerror(rc));
	if ((rc = tcp_connect("198.51.100.10", 443)) != ECONNREFUSED)
		return fail_child("outside TCP: %s, want ECONNREFUSED", strerror(rc));
	if ((rc = tcp_connect("203.0.113.5", 80)) != ECONNREFUSED)
		return fail_child("outside TCP: %s, want ECONNREFUSED", strerror(rc));
	if ((rc = udp_blocked("198.51.100.10", 9999)) != EPERM && rc != ECONNREFUSED)
		return fail_child("outside UDP: %s, want EPERM or ECONNREFUSED", strerror(rc));
	if ((rc = udp_blocked("203.0.113.5", 53)) != EPERM && rc != ECONNREFUSED)
		return fail_child("outside UDP DNS: %s", strerror(rc));
	if ((rc = ping_blocked("198.51.100.10")) != EPERM)
		return fail_child("outside ping: %s, want EPERM", strerror(rc));
	long spent = now_ms() - t0;
	if (spent > 3 * FAST_MS)
		return fail_child("rejects took %ld ms", spent);
	return 0;
}

static void run_child_checks(const struct netns *ns)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(child_checks(ns));
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static int list_ruleset(void *arg)
{
	char **out = arg;
	struct nft_ctx *nft = nft_ctx_new(NFT_CTX_DEFAULT);
	if (nft == NULL)
		return -1;
	int rc = -1;
	if (nft_ctx_buffer_output(nft) == 0 && nft_ctx_buffer_error(nft) == 0 &&
	    nft_run_cmd_from_buffer(nft, "list ruleset") == 0) {
		*out = strdup(nft_ctx_get_output_buffer(nft));
		rc = *out != NULL ? 0 : -1;
	}
	nft_ctx_free(nft);
	return rc;
}

/* Packets counted by the first rule line containing needle, -1 if none. */
static long rule_packets(const char *rules, const char *needle)
{
	const char *hit = strstr(rules, needle);
	if (hit == NULL)
		return -1;
	const char *bol = hit;
	while (bol > rules && bol[-1] != '\n')
		bol--;
	const char *eol = strchr(hit, '\n');
	const char *c = strstr(bol, "counter packets ");
	if (c == NULL || (eol != NULL && c > eol))
		return -1;
	return strtol(c + strlen("counter packets "), NULL, 10);
}

/* The explicit rejects matched, not the drop policy. */
static void assert_rejects_counted(const struct netns *ns)
{
	char *rules = NULL;
	assert_int_equal(netns_run_inside(ns, list_ruleset, &rules), 0);
	assert_non_null(strstr(rules, "policy drop;"));
	assert_true(rule_packets(rules, "log prefix \"openshell:bypass:") >= 8);
	assert_true(rule_packets(rules, "ipv4 meta l4proto tcp counter") >= 4);
	/* every refused packet but the two to the proxy address left by the veth */
	assert_true(rule_packets(rules, "ct status ! dnat counter packets") >= 6);
	assert_true(rule_packets(rules, "ipv4 meta l4proto udp counter") >= 3);
	/* two of them through the proxy address's own rule */
	assert_true(rule_packets(rules, "ip daddr 10.200.0.1 counter packets") >= 2);
	/* exactly our one ping: no kernel IPv6 chatter (autoconf is off) */
	assert_int_equal(rule_packets(rules, "reject with icmpx admin-prohibited"), 1);
	free(rules);
}

static int ns_inode(void *arg)
{
	struct stat st;
	if (stat("/proc/thread-self/ns/net", &st) != 0)
		return -1;
	*(ino_t *)arg = st.st_ino;
	return 7;
}

static void assert_run_inside(const struct netns *ns)
{
	struct stat before, after, nsst;
	ino_t inside = 0;
	assert_int_equal(stat("/proc/thread-self/ns/net", &before), 0);
	assert_int_equal(fstat(ns->ns_fd, &nsst), 0);
	assert_int_equal(netns_run_inside(ns, ns_inode, &inside), 7);
	assert_int_equal(stat("/proc/thread-self/ns/net", &after), 0);
	assert_true(inside == nsst.st_ino);
	assert_true(before.st_ino == after.st_ino);
	assert_true(inside != before.st_ino);
}

static int count_fds(void)
{
	int n = 0;
	for (int fd = 0; fd < 1024; fd++)
		if (fcntl(fd, F_GETFD) >= 0)
			n++;
	return n;
}

static void create_ok(struct netns *ns, const char *run_id)
{
	struct netns_config cfg = { .proxy_port = PROXY_PORT, .run_id = run_id };
	char err[256];
	int rc = netns_create(ns, &cfg, err, sizeof(err));
	if (rc != 0)
		fprintf(stderr, "netns_create: %s\n", err);
	assert_int_equal(rc, 0);
	assert_true(ns->ns_fd >= 0);
}

/* Number of links in the calling thread's namespace. */
static int count_links(void)
{
	struct if_nameindex *all = if_nameindex();
	assert_non_null(all);
	int n = 0;
	while (all[n].if_index != 0)
		n++;
	if_freenameindex(all);
	return n;
}

struct listen_job {
	const char *ip;
	int fd;
};

static int listen_inside(void *arg)
{
	struct listen_job *job = arg;
	job->fd = listen_on(job->ip, PROXY_PORT);
	return job->fd >= 0 ? 0 : -1;
}

static void test_full_cycle(void **state)
{
	(void)state;
	need_live();
	int fds = count_fds();
	int links = count_links();
	struct netns ns;
	create_ok(&ns, NULL);
	assert_int_equal(strlen(ns.run_id), NETNS_RUN_ID_MAX);
	assert_non_null(strstr(ns.sandbox_if, ns.run_id));
	assert_non_null(strstr(ns.peer_if, ns.run_id));
	assert_string_equal(ns.proxy_ip, "10.200.0.1");
	assert_string_equal(ns.sandbox_ip, "10.200.0.2");
	/* nothing of the sandbox in the caller's namespace */
	assert_int_equal(count_links(), links);
	assert_int_equal(if_nametoindex(ns.sandbox_if), 0);
	assert_int_equal(if_nametoindex(ns.peer_if), 0);

	struct listen_job lj = { ns.proxy_ip, -1 };
	assert_int_equal(netns_run_inside(&ns, listen_inside, &lj), 0);
	run_child_checks(&ns);
	close(lj.fd);
	assert_rejects_counted(&ns);
	assert_run_inside(&ns);

	netns_destroy(&ns);
	assert_int_equal(ns.ns_fd, -1);
	netns_destroy(&ns); /* idempotent */
	assert_int_equal(count_fds(), fds);
	assert_int_equal(count_links(), links);
}

/* Addresses on lo here in the first n subnets 10.200.0..n-1.0/24. */
static void set_subnets(struct nl_sock *sk, int lo, unsigned n, int add)
{
	char ip[16], err[256];
	for (unsigned i = 0; i < n; i++) {
		assert_int_equal(netns_subnet_ip(ip, sizeof(ip), i, 9), 0);
		int rc = add ? nlops_addr_add(sk, lo, ip, NETNS_PREFIX_LEN, err, sizeof(err))
			     : nlops_addr_del(sk, lo, ip, NETNS_PREFIX_LEN, err, sizeof(err));
		if (rc != 0)
			fail_msg("%s", err);
	}
}

static struct nl_sock *open_lo(int *lo)
{
	char err[256];
	struct nl_sock *sk = nlops_open(err, sizeof(err));
	assert_non_null(sk);
	assert_int_equal(nlops_ifindex(sk, "lo", lo, err, sizeof(err)), 0);
	return sk;
}

/* The subnet avoids the caller's addresses; sandboxes side by side share
 * it (each has its own namespace, nothing of them meets). */
static void test_subnet_avoids_callers_addresses(void **state)
{
	(void)state;
	need_live();
	int lo;
	struct nl_sock *sk = open_lo(&lo);
	set_subnets(sk, lo, 2, 1);
	struct netns a, b;
	create_ok(&a, "side1");
	create_ok(&b, "side2");
	assert_string_equal(a.proxy_ip, "10.200.2.1");
	assert_string_equal(a.sandbox_ip, "10.200.2.2");
	assert_string_equal(b.proxy_ip, "10.200.2.1");
	netns_destroy(&a);
	netns_destroy(&b);
	set_subnets(sk, lo, 2, 0);
	nlops_close(sk);
}

/* A failure after the namespace and its links exist (here: the fence text
 * cannot be built) leaves no fd and no link behind. */
static void test_failure_leaves_nothing(void **state)
{
	(void)state;
	need_live();
	struct netns ns;
	struct netns_config cfg = { .proxy_port = PROXY_PORT, .run_id = "bad1",
				    .capture_tcp_port = 15001, .capture_dns_port = 15001 };
	char err[256];
	int fds = count_fds();
	int links = count_links();
	assert_int_equal(netns_create(&ns, &cfg, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "nftables fence"));
	assert_int_equal(ns.ns_fd, -1);
	assert_int_equal(ns.proxy_ip[0], '\0');
	assert_int_equal(count_fds(), fds);
	assert_int_equal(count_links(), links);
	netns_destroy(&ns); /* harmless after failure */
}

static void test_bad_config(void **state)
{
	(void)state;
	struct netns ns;
	char err[256];
	struct netns_config zero_port = { .proxy_port = 0 };
	struct netns_config bad_id = { .proxy_port = PROXY_PORT, .run_id = "a-b" };
	struct netns_config long_id = { .proxy_port = PROXY_PORT, .run_id = "123456789" };

	assert_int_equal(netns_create(&ns, &zero_port, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "proxy port"));
	assert_int_equal(ns.ns_fd, -1);
	assert_int_equal(netns_create(&ns, &bad_id, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "run id"));
	assert_int_equal(netns_create(&ns, &long_id, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "run id"));
	assert_int_equal(netns_create(NULL, &zero_port, err, sizeof(err)), -1);
	netns_destroy(&ns);
	netns_destroy(NULL);
	assert_int_equal(netns_enter(&ns), -EBADF);
	assert_int_equal(netns_run_inside(&ns, ns_inode, NULL), -1);
}

struct load_job {
	const char *text;
	char err[512];
};

static int load_in_ns(void *arg)
{
	struct load_job *job = arg;
	return netns_fence_load(job->text, job->err, sizeof(job->err));
}

/* libnftables errors land in err on one line, nothing is half-applied. */
static void test_fence_load_errors(void **state)
{
	(void)state;
	need_live();
	struct netns ns;
	struct load_job syntax = { .text = "table inet openshell { chain output { bogus } }\n" };
	struct load_job kernel = { .text = "add rule inet openshell output accept\n"
					   "add rule inet nosuch output accept\n" };
	char *rules = NULL;

	create_ok(&ns, "load1");
	assert_int_equal(netns_run_inside(&ns, load_in_ns, &syntax), -1);
	assert_non_null(strstr(syntax.err, "nftables fence: "));
	assert_non_null(strstr(syntax.err, "syntax error"));
	assert_null(strchr(syntax.err, '\n'));
	assert_int_equal(netns_run_inside(&ns, load_in_ns, &kernel), -1);
	assert_non_null(strstr(kernel.err, "nftables fence: "));
	assert_null(strchr(kernel.err, '\n'));
	/* the failed transaction left the loaded fence exactly as it was */
	assert_int_equal(netns_run_inside(&ns, list_ruleset, &rules), 0);
	assert_non_null(strstr(rules, "policy drop;"));
	assert_null(strstr(rules, "\t\taccept\n")); /* first half rolled back too */
	free(rules);
	netns_destroy(&ns);
}

/* Addresses here in every 10.200.N.0/24: netns_create must fail before it
 * made anything. */
static void test_no_free_subnet(void **state)
{
	(void)state;
	need_live();
	char err[256];
	int lo;
	struct nl_sock *sk = open_lo(&lo);
	set_subnets(sk, lo, NETNS_SUBNET_MAX + 1, 1);

	struct netns ns;
	struct netns_config cfg = { .proxy_port = PROXY_PORT, .run_id = "full" };
	int fds = count_fds();
	assert_int_equal(netns_create(&ns, &cfg, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "no free subnet"));
	assert_int_equal(ns.ns_fd, -1);
	assert_int_equal(count_fds(), fds);

	set_subnets(sk, lo, NETNS_SUBNET_MAX + 1, 0);
	nlops_close(sk);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_config),
		cmocka_unit_test(test_full_cycle),
		cmocka_unit_test(test_subnet_avoids_callers_addresses),
		cmocka_unit_test(test_failure_leaves_nothing),
		cmocka_unit_test(test_fence_load_errors),
		cmocka_unit_test(test_no_free_subnet),
	};
	return cmocka_run_group_tests(tests, group_setup, NULL);
}
