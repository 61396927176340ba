/* test_netns_release.c - netns_release: the kernel takes the namespace and
 * the veth pair with it; a namespace someone else still holds loses its veth
 * all the same.
 *
 * Needs root. Like test_netns_live, the test process first moves into a
 * throwaway network namespace of its own; skips otherwise.
 */
#include <errno.h>
#include <net/if.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "netns/netns.h"
#include "tests/unit/support/net.h"

#define PROXY_PORT 3128
#define GONE_WITHIN_MS 5000 /* the kernel's cleanup is asynchronous */

static int live_ok; /* set by group setup; read-only afterwards */

static int group_setup(void **state)
{
	(void)state;
	live_ok = tu_enter_own_netns("test_netns_release");
	return 0;
}

static double now_ms(void)
{
	struct timespec t;
	assert_int_equal(clock_gettime(CLOCK_MONOTONIC, &t), 0);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static void create_ok(struct netns *ns, const char *run_id)
{
	struct netns_config cfg = { .proxy_port = PROXY_PORT, .run_id = run_id };
	char err[256];
	int rc = netns_create(ns, &cfg, err, sizeof(err));
	if (rc != 0)
		fprintf(stderr, "netns_create: %s\n", err);
	assert_int_equal(rc, 0);
}

/* Poll until the interface is gone; how long it took, or -1. */
static double wait_gone(const char *ifname)
{
	double t0 = now_ms();
	while (if_nametoindex(ifname) != 0) {
		if (now_ms() - t0 > GONE_WITHIN_MS)
			return -1;
		struct timespec nap = { 0, 1000 * 1000 };
		nanosleep(&nap, NULL);
	}
	return now_ms() - t0;
}

static void test_kernel_takes_namespace_and_veth(void **state)
{
	(void)state;
	if (!live_ok)
		skip();
	struct netns ns;
	create_ok(&ns, "rel1");
	assert_true(if_nametoindex("osh-rel1-h") > 0);
	double t0 = now_ms();
	assert_int_equal(netns_release(&ns), 0);
	double took = now_ms() - t0;
	assert_int_equal(ns.ns_fd, -1);
	assert_int_equal(ns.host_if[0], '\0');
	double after = wait_gone("osh-rel1-h");
	assert_true(after >= 0);
	print_message("released in %.2f ms; veth gone %.2f ms later\n", took, after);
	assert_int_equal(netns_release(&ns), 0); /* nothing left to do */
	netns_destroy(&ns);                       /* and harmless */
}

/* A process inside keeps the namespace alive: the veth is deleted anyway,
 * before netns_release returns. */
static void test_held_namespace_loses_its_veth(void **state)
{
	(void)state;
	if (!live_ok)
		skip();
	struct netns ns;
	create_ok(&ns, "rel2");
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid_t holder = fork();
	assert_true(holder >= 0);
	if (holder == 0) {
		char ok = netns_enter(&ns) == 0 ? 'y' : 'n';
		if (write(p[1], &ok, 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	char ok = 0;
	assert_int_equal(read(p[0], &ok, 1), 1);
	assert_int_equal(ok, 'y');
	close(p[0]);
	close(p[1]);
	double t0 = now_ms();
	assert_int_equal(netns_release(&ns), 1);
	double took = now_ms() - t0;
	assert_int_equal(if_nametoindex("osh-rel2-h"), 0);
	assert_int_equal(ns.ns_fd, -1);
	assert_true(took >= NETNS_RELEASE_WAIT_MS);
	assert_int_equal(kill(holder, SIGKILL), 0);
	assert_int_equal(waitpid(holder, NULL, 0), holder);
}

static void test_nothing_to_release(void **state)
{
	(void)state;
	struct netns ns;
	memset(&ns, 0, sizeof(ns));
	ns.ns_fd = -1;
	assert_int_equal(netns_release(&ns), 0);
	assert_int_equal(netns_release(NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nothing_to_release),
		cmocka_unit_test(test_kernel_takes_namespace_and_veth),
		cmocka_unit_test(test_held_namespace_loses_its_veth),
	};
	return cmocka_run_group_tests(tests, group_setup, NULL);
}
