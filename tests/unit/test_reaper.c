/* test_reaper.c - sup_kill_all_children: every descendant, daemonised or
 * not, is killed and reaped; nothing is waited for when nothing is left. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "supervisor/sup.h"

#define GRANDCHILDREN 30

static double now_ms(void)
{
	struct timespec t;
	assert_int_equal(clock_gettime(CLOCK_MONOTONIC, &t), 0);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static bool alive(pid_t pid)
{
	return kill(pid, 0) == 0 || errno != ESRCH;
}

static void assert_no_children(void)
{
	assert_int_equal(waitpid(-1, NULL, WNOHANG | __WALL), -1);
	assert_int_equal(errno, ECHILD);
}

static int setup(void **state)
{
	(void)state;
	return sup_become_subreaper();
}

static void sleep_forever(void)
{
	for (;;)
		pause();
}

/* A child that starts n daemonised grandchildren (setsid, parent gone), sends
 * their pids down fd and, if stay, waits to be killed itself. */
static pid_t spawn_family(int n, bool stay, int fd)
{
	pid_t child = fork();
	assert_true(child >= 0);
	if (child != 0)
		return child;
	for (int i = 0; i < n; i++) {
		pid_t g = fork();
		if (g == 0) {
			if (setsid() < 0)
				_exit(1);
			sleep_forever();
		}
		if (g < 0 || write(fd, &g, sizeof g) != (ssize_t)sizeof g)
			_exit(1);
	}
	if (stay)
		sleep_forever();
	_exit(0);
}

static void read_pids(int fd, pid_t *pids, int n)
{
	for (int i = 0; i < n; i++)
		assert_int_equal(read(fd, &pids[i], sizeof pids[i]), (ssize_t)sizeof pids[i]);
}

static void test_nothing_left_returns_at_once(void **state)
{
	(void)state;
	assert_no_children();
	double t0 = now_ms();
	sup_kill_all_children();
	assert_true(now_ms() - t0 < 100.0); /* one waitpid; no scan, no nap */
	assert_no_children();
}

static void test_direct_children_killed_and_reaped(void **state)
{
	(void)state;
	pid_t a = fork();
	assert_true(a >= 0);
	if (a == 0)
		sleep_forever();
	pid_t b = fork();
	assert_true(b >= 0);
	if (b == 0) {
		raise(SIGSTOP); /* a stopped child dies of SIGKILL too */
		_exit(0);
	}
	pid_t z = fork(); /* one that already exited: a zombie to reap */
	assert_true(z >= 0);
	if (z == 0)
		_exit(0);
	sup_kill_all_children();
	assert_no_children();
	assert_false(alive(a));
	assert_false(alive(b));
	assert_false(alive(z));
}

static void test_daemonised_grandchildren_killed(void **state)
{
	(void)state;
	int p[2];
	pid_t g[GRANDCHILDREN];
	assert_int_equal(pipe(p), 0);
	pid_t child = spawn_family(GRANDCHILDREN, false, p[1]);
	read_pids(p[0], g, GRANDCHILDREN);
	close(p[0]);
	close(p[1]);
	double t0 = now_ms();
	sup_kill_all_children();
	double took = now_ms() - t0;
	assert_no_children();
	assert_false(alive(child));
	for (int i = 0; i < GRANDCHILDREN; i++)
		assert_false(alive(g[i]));
	print_message("killed and reaped %d escaped grandchildren in %.2f ms\n", GRANDCHILDREN,
		      took);
	assert_true(took < (double)SUP_SWEEP_TIMEOUT_MS);
}

/* The parent is still running when the sweep starts: its children reach us
 * only after it died, in a later pass. */
static void test_living_parent_and_its_children(void **state)
{
	(void)state;
	int p[2];
	pid_t g[GRANDCHILDREN];
	assert_int_equal(pipe(p), 0);
	pid_t child = spawn_family(GRANDCHILDREN, true, p[1]);
	read_pids(p[0], g, GRANDCHILDREN);
	close(p[0]);
	close(p[1]);
	sup_kill_all_children();
	assert_no_children();
	assert_false(alive(child));
	for (int i = 0; i < GRANDCHILDREN; i++)
		assert_false(alive(g[i]));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nothing_left_returns_at_once),
		cmocka_unit_test(test_direct_children_killed_and_reaped),
		cmocka_unit_test(test_daemonised_grandchildren_killed),
		cmocka_unit_test(test_living_parent_and_its_children),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
