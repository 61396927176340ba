/* reaper.c - PID 1 duties: adopt orphans (child subreaper), and at exit kill
 * and reap every process the supervisor still has below it. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "supervisor/sup.h"

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

/* Parent pid from /proc/<pid>/stat; the comm field may contain spaces and
 * parentheses, so parse after the last ')'. */
static pid_t read_ppid(const char *pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%s/stat", pid);
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

/* SIGKILLs every direct child; returns how many were signalled. */
static int kill_direct_children(pid_t self)
{
	DIR *d = opendir("/proc");
	if (!d)
		return 0;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		if (read_ppid(e->d_name) == self) {
			pid_t pid = (pid_t)strtol(e->d_name, NULL, 10);
			if (kill(pid, SIGKILL) == 0)
				n++;
		}
	}
	closedir(d);
	return n;
}

static int reap_all_nonblocking(void)
{
	int n = 0, status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		n++;
	if (pid < 0 && errno == ECHILD)
		return -1;
	return n;
}

void sup_kill_all_children(void)
{
	pid_t self = getpid();
	struct timespec start, now, nap = { 0, 10 * 1000 * 1000 };
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		if (reap_all_nonblocking() < 0)
			return; /* ECHILD: nothing left below us (the common case) */
		kill_direct_children(self);
		if (reap_all_nonblocking() < 0)
			return;
		clock_gettime(CLOCK_MONOTONIC, &now);
		long ms = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
		if (ms > (long)SUP_SWEEP_TIMEOUT_MS) {
			fprintf(stderr, "openshell-sandbox: warn: children still alive after %ums\n",
				SUP_SWEEP_TIMEOUT_MS);
			return;
		}
		nanosleep(&nap, NULL);
	}
}
