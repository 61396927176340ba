/* test_sup_peer.c - sup_peer_lookup: socket address -> owning process.
 *
 * Uses sockets of the test process and of children it forks, in its own
 * network namespace; the namespace filter case needs root (unshare) and is
 * skipped otherwise.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "supervisor/sup.h"

static char self_exe[PATH_MAX];

static int setup(void **state)
{
	(void)state;
	ssize_t n = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
	if (n <= 0)
		return -1;
	self_exe[n] = '\0';
	return 0;
}

static int bound(int family, int type, const char *ip, struct sockaddr_storage *local)
{
	int fd = socket(family, type | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	struct sockaddr_storage ss = { .ss_family = (sa_family_t)family };
	socklen_t len;
	if (family == AF_INET) {
		assert_int_equal(inet_pton(AF_INET, ip, &((struct sockaddr_in *)&ss)->sin_addr), 1);
		len = sizeof(struct sockaddr_in);
	} else {
		int off = 0;
		assert_int_equal(setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off), 0);
		assert_int_equal(inet_pton(AF_INET6, ip, &((struct sockaddr_in6 *)&ss)->sin6_addr), 1);
		len = sizeof(struct sockaddr_in6);
	}
	assert_int_equal(bind(fd, (struct sockaddr *)&ss, len), 0);
	len = sizeof *local;
	assert_int_equal(getsockname(fd, (struct sockaddr *)local, &len), 0);
	return fd;
}

static struct sockaddr_storage v4(const char *ip, uint16_t port_net)
{
	struct sockaddr_storage ss = { .ss_family = AF_INET };
	struct sockaddr_in *s = (struct sockaddr_in *)&ss;
	assert_int_equal(inet_pton(AF_INET, ip, &s->sin_addr), 1);
	s->sin_port = port_net;
	return ss;
}

static uint16_t port_net(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET ? ((const struct sockaddr_in *)ss)->sin_port
					: ((const struct sockaddr_in6 *)ss)->sin6_port;
}

static void assert_self(int ipproto, const struct sockaddr_storage *local)
{
	pid_t pid = 0;
	char exe[PATH_MAX];
	assert_int_equal(sup_peer_lookup(getpid(), ipproto, local, &pid, exe, sizeof exe), 0);
	assert_int_equal(pid, getpid());
	assert_string_equal(exe, self_exe);
}

static void test_udp_exact_and_wildcard(void **state)
{
	(void)state;
	struct sockaddr_storage local;
	int fd = bound(AF_INET, SOCK_DGRAM, "127.0.0.1", &local);
	assert_self(IPPROTO_UDP, &local);
	/* not TCP */
	assert_int_equal(sup_peer_lookup(getpid(), IPPROTO_TCP, &local, NULL, NULL, 0), -1);
	close(fd);
	/* closed: gone from the table */
	assert_int_equal(sup_peer_lookup(getpid(), IPPROTO_UDP, &local, NULL, NULL, 0), -1);

	/* bound to 0.0.0.0: a packet from any local address of it matches */
	fd = bound(AF_INET, SOCK_DGRAM, "0.0.0.0", &local);
	struct sockaddr_storage src = v4("10.200.0.2", port_net(&local));
	assert_self(IPPROTO_UDP, &src);
	close(fd);
}

static void test_tcp_connected(void **state)
{
	(void)state;
	struct sockaddr_storage lis;
	int l = bound(AF_INET, SOCK_STREAM, "127.0.0.1", &lis);
	assert_int_equal(listen(l, 1), 0);
	int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(c, (struct sockaddr *)&lis, sizeof(struct sockaddr_in)), 0);
	struct sockaddr_storage local;
	socklen_t len = sizeof local;
	assert_int_equal(getsockname(c, (struct sockaddr *)&local, &len), 0);
	assert_self(IPPROTO_TCP, &local);
	close(c);
	close(l);
}

/* An IPv6 socket that is not v6-only sends IPv4 too: found for an IPv4
 * source, through the v6 table. */
static void test_dual_stack(void **state)
{
	(void)state;
	struct sockaddr_storage local;
	int fd = bound(AF_INET6, SOCK_DGRAM, "::", &local);
	struct sockaddr_storage src = v4("127.0.0.1", port_net(&local));
	assert_self(IPPROTO_UDP, &src);
	close(fd);
}

/* A UDP socket on 127.0.0.1, any port; *a is its address. -1 on failure. */
static int udp_on_loopback(struct sockaddr_in *a)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	*a = (struct sockaddr_in){ .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof *a;
	if (fd < 0 || bind(fd, (struct sockaddr *)a, sizeof *a) != 0 ||
	    getsockname(fd, (struct sockaddr *)a, &len) != 0)
		return -1;
	return fd;
}

enum holder { HOLDER_ALONE, HOLDER_OTHER_NETNS, HOLDER_SHARED };

/* Forks a child holding a UDP socket on 127.0.0.1, which it keeps until
 * killed, in a process group of its own. HOLDER_OTHER_NETNS: the child then
 * moves to a new network namespace (the socket stays in ours);
 * HOLDER_SHARED: it forks a second holder of the same socket. Returns its
 * pid; *local is the socket's address. */
static pid_t fork_udp_holder(enum holder how, struct sockaddr_storage *local)
{
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		struct sockaddr_in a;
		if (setpgid(0, 0) != 0 || udp_on_loopback(&a) < 0 ||
		    (how == HOLDER_OTHER_NETNS && unshare(CLONE_NEWNET) != 0))
			_exit(1);
		pid_t second = how == HOLDER_SHARED ? fork() : 1;
		if (second < 0 ||
		    (second > 0 && write(p[1], &a.sin_port, sizeof a.sin_port) != sizeof a.sin_port))
			_exit(1);
		pause();
		_exit(0);
	}
	close(p[1]);
	uint16_t port;
	assert_int_equal(read(p[0], &port, sizeof port), (ssize_t)sizeof port);
	close(p[0]);
	*local = v4("127.0.0.1", port);
	return pid;
}

/* The socket of a child: its pid, not ours. */
static void test_child_holder(void **state)
{
	(void)state;
	struct sockaddr_storage local;
	pid_t pid = fork_udp_holder(HOLDER_ALONE, &local);
	pid_t found = 0;
	char exe[PATH_MAX];
	assert_int_equal(sup_peer_lookup(getpid(), IPPROTO_UDP, &local, &found, exe, sizeof exe), 0);
	assert_int_equal(found, pid);
	assert_string_equal(exe, self_exe);
	/* an exe buffer too small for the path: the pid, no truncated path */
	char tiny[4] = "xyz";
	assert_int_equal(sup_peer_lookup(getpid(), IPPROTO_UDP, &local, &found, tiny, sizeof tiny), 0);
	assert_string_equal(tiny, "");
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
}

/* A socket two processes hold (inherited across fork) names neither: the
 * first holder may since have exec'ed a trusted binary. */
static void test_shared_socket_names_nobody(void **state)
{
	(void)state;
	struct sockaddr_storage local;
	pid_t pid = fork_udp_holder(HOLDER_SHARED, &local);
	pid_t found = 0;
	int rc = sup_peer_lookup(getpid(), IPPROTO_UDP, &local, &found, NULL, 0);
	kill(-pid, SIGKILL);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	if (rc != -1)
		fail_msg("a shared socket named pid %d (child %d)", (int)found, (int)pid);
}

/* A holder outside ns_pid's network namespace is not the sender. */
static void test_other_netns_holder_ignored(void **state)
{
	(void)state;
	if (geteuid() != 0)
		skip();
	struct sockaddr_storage local;
	pid_t pid = fork_udp_holder(HOLDER_OTHER_NETNS, &local);
	assert_int_equal(sup_peer_lookup(getpid(), IPPROTO_UDP, &local, NULL, NULL, 0), -1);
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
}

static void test_bad_input(void **state)
{
	(void)state;
	struct sockaddr_storage local;
	int fd = bound(AF_INET, SOCK_DGRAM, "127.0.0.1", &local);
	char exe[16] = "unchanged";
	pid_t pid = 77;
	assert_int_equal(sup_peer_lookup(0, IPPROTO_UDP, &local, &pid, exe, sizeof exe), -1);
	assert_string_equal(exe, "");
	assert_int_equal(pid, 77);
	assert_int_equal(sup_peer_lookup(-1, IPPROTO_UDP, &local, NULL, NULL, 0), -1);
	assert_int_equal(sup_peer_lookup(INT_MAX, IPPROTO_UDP, &local, NULL, NULL, 0), -1);
	assert_int_equal(sup_peer_lookup(getpid(), IPPROTO_ICMP, &local, NULL, NULL, 0), -1);
	assert_int_equal(sup_peer_lookup(getpid(), IPPROTO_UDP, NULL, NULL, NULL, 0), -1);
	struct sockaddr_storage zero = v4("127.0.0.1", 0);
	assert_int_equal(sup_peer_lookup(getpid(), IPPROTO_UDP, &zero, NULL, NULL, 0), -1);
	struct sockaddr_storage unix_addr = { .ss_family = AF_UNIX };
	assert_int_equal(sup_peer_lookup(getpid(), IPPROTO_UDP, &unix_addr, NULL, NULL, 0), -1);
	/* another address on the same port is not this socket */
	struct sockaddr_storage other = v4("127.0.0.2", port_net(&local));
	assert_int_equal(sup_peer_lookup(getpid(), IPPROTO_UDP, &other, NULL, NULL, 0), -1);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_udp_exact_and_wildcard),
		cmocka_unit_test(test_tcp_connected),
		cmocka_unit_test(test_dual_stack),
		cmocka_unit_test(test_child_holder),
		cmocka_unit_test(test_shared_socket_names_nobody),
		cmocka_unit_test(test_other_netns_holder_ignored),
		cmocka_unit_test(test_bad_input),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
