/* reaper.c - PID 1 duties: adopt orphans (child subreaper), and at exit kill
 * and reap every process the supervisor still has below it.
 *
 * As a child subreaper every descendant that loses its parent becomes our
 * child, so "everything below us" is reached by killing our children until
 * waitpid says there are none (ECHILD). Our children are listed by the kernel
 * in /proc/self/task/<tid>/children (a child's pid cannot be reused before we
 * reap it, and only this thread reaps here, so the kill cannot hit a stranger).
 * A pidfd per killed child lets poll() wake us the moment one is gone: no
 * sleeps, no scan of every /proc/<pid>. With no child left (the usual case) it
 * is one waitpid. Without CONFIG_PROC_CHILDREN the old /proc/<pid>/stat scan
 * is the fallback.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "supervisor/sup.h"

#define SWEEP_POLL_MAX 64 /* pidfds polled per pass; the rest are killed all the same */
#define SWEEP_NAP_NS (1000 * 1000) /* without pidfds: 1 ms between passes */

int sup_become_subreaper(void)
{
	return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
}

int sup_exit_code_from_status(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 255;
}

/* One pass: a pidfd for each child killed (up to SWEEP_POLL_MAX). */
struct sweep {
	int pidfds[SWEEP_POLL_MAX];
	unsigned n_pidfds;
};

static void sweep_kill(struct sweep *s, pid_t pid)
{
	if (pid <= 0 || kill(pid, SIGKILL) != 0 || s->n_pidfds >= SWEEP_POLL_MAX)
		return;
	int fd = (int)syscall(SYS_pidfd_open, pid, 0); /* -1: poll without it */
	if (fd >= 0)
		s->pidfds[s->n_pidfds++] = fd;
}

static void sweep_close(struct sweep *s)
{
	for (unsigned i = 0; i < s->n_pidfds; i++)
		close(s->pidfds[i]);
	s->n_pidfds = 0;
}

/* The number a /proc directory entry is named by, or -1. */
static long entry_number(const struct dirent *e)
{
	char *end;
	if (e->d_name[0] < '1' || e->d_name[0] > '9')
		return -1;
	long n = strtol(e->d_name, &end, 10);
	return *end == '\0' ? n : -1;
}

/* Kill every pid listed in one task's children file. */
static void kill_listed(struct sweep *s, long tid)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/self/task/%ld/children", tid);
	FILE *f = fopen(path, "re");
	if (!f)
		return; /* the thread is gone; its children moved to another one */
	int pid;
	while (fscanf(f, "%d", &pid) == 1)
		sweep_kill(s, (pid_t)pid);
	fclose(f);
}

/* Every thread's children: orphans go to whichever of our threads is alive. */
static void kill_children_listed(struct sweep *s)
{
	DIR *d = opendir("/proc/self/task");
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		long tid = entry_number(e);
		if (tid > 0)
			kill_listed(s, tid);
	}
	closedir(d);
}

/* Parent pid from /proc/<pid>/stat; the comm field may contain spaces and
 * parentheses, so parse after the last ')'. */
static pid_t read_ppid(long pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%ld/stat", pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *rp = strrchr(buf, ')');
	char state;
	int ppid;
	if (!rp || sscanf(rp + 1, " %c %d", &state, &ppid) != 2)
		return -1;
	return ppid;
}

/* Fallback without /proc/<tid>/children: every process whose parent is us. */
static void kill_children_scanned(struct sweep *s)
{
	pid_t self = getpid();
	DIR *d = opendir("/proc");
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		long pid = entry_number(e);
		if (pid > 0 && read_ppid(pid) == self)
			sweep_kill(s, (pid_t)pid);
	}
	closedir(d);
}

/* Reaps what has exited; -1 once there is no child at all (ECHILD). */
static int reap_all_nonblocking(void)
{
	int n = 0, status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG | __WALL)) > 0)
		n++;
	if (pid < 0 && errno == ECHILD)
		return -1;
	return n;
}

static long ms_since(const struct timespec *start)
{
	struct timespec now;
	if (clock_gettime(CLOCK_MONOTONIC, &now) != 0)
		return 0;
	return (now.tv_sec - start->tv_sec) * 1000 + (now.tv_nsec - start->tv_nsec) / 1000000;
}

/* Block until one of the killed children has exited (its pidfd is readable)
 * or left_ms pass. Without a pidfd to poll: a short nap. */
static void wait_for_one(struct sweep *s, long left_ms)
{
	struct timespec nap = { 0, SWEEP_NAP_NS };
	if (s->n_pidfds == 0) {
		(void)nanosleep(&nap, NULL);
		return;
	}
	struct pollfd p[SWEEP_POLL_MAX];
	for (unsigned i = 0; i < s->n_pidfds; i++)
		p[i] = (struct pollfd){ .fd = s->pidfds[i], .events = POLLIN };
	if (poll(p, s->n_pidfds, (int)left_ms) < 0 && errno != EINTR)
		(void)nanosleep(&nap, NULL);
}

/* Kill every child, reap what has gone and, with time left, wait until one
 * more goes. Returns true once no child is left. */
static bool sweep_pass(bool listed, long left_ms)
{
	struct sweep s = { .n_pidfds = 0 };
	if (listed)
		kill_children_listed(&s);
	else
		kill_children_scanned(&s);
	bool done = reap_all_nonblocking() < 0;
	if (!done && left_ms > 0) {
		wait_for_one(&s, left_ms);
		done = reap_all_nonblocking() < 0;
	}
	sweep_close(&s);
	return done;
}

void sup_kill_all_children(void)
{
	if (reap_all_nonblocking() < 0)
		return; /* ECHILD: nothing left below us (the common case) */
	bool listed = access("/proc/thread-self/children", R_OK) == 0;
	struct timespec start;
	if (clock_gettime(CLOCK_MONOTONIC, &start) != 0)
		memset(&start, 0, sizeof start);
	for (;;) {
		long left = (long)SUP_SWEEP_TIMEOUT_MS - ms_since(&start);
		if (sweep_pass(listed, left))
			return;
		if (left <= 0) {
			fprintf(stderr, "openshell-sandbox: warn: children still alive after %ums\n",
				SUP_SWEEP_TIMEOUT_MS);
			return;
		}
	}
}
