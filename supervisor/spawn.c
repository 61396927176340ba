/* spawn.c - fork a sandboxed child: own process group, sandbox network
 * namespace, dropped privileges, death signal tied to the supervisor, exec.
 * The child reports any failed step through a close-on-exec pipe, so the
 * parent knows whether exec happened before it carries on.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "landlock/landlock.h"
#include "seccomp/seccomp.h"
#include "supervisor/sup.h"

#define SPAWN_ERR_BYTES 512

/* Handlers first, then the mask: a signal arriving in between must not run
 * the parent's (libuv) handler in the child. The parent blocked everything
 * around fork() for the same reason. */
static void reset_signals(void)
{
	for (int s = 1; s < NSIG; s++)
		signal(s, SIG_DFL); /* fails harmlessly for SIGKILL/SIGSTOP/RT gaps */
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

static void child_fail(int fd, const char *msg)
{
	size_t len = strlen(msg);
	ssize_t w = write(fd, msg, len);
	(void)w;
	_exit(127);
}

static void child_fail_errno(int fd, const char *step, int e)
{
	char msg[SPAWN_ERR_BYTES];
	snprintf(msg, sizeof msg, "%s: %s", step, strerror(e));
	child_fail(fd, msg);
}

/* A private mount namespace (slave: the container's later mounts still reach
 * us, ours never reach it) with each file bound read-only over its target. */
static void apply_binds(const struct spawn_request *req, int errfd)
{
	if (req->n_binds == 0)
		return;
	if (unshare(CLONE_NEWNS) != 0)
		child_fail_errno(errfd, "unshare(CLONE_NEWNS)", errno);
	if (mount(NULL, "/", NULL, MS_REC | MS_SLAVE, NULL) != 0)
		child_fail_errno(errfd, "making / a slave mount", errno);
	for (size_t i = 0; i < req->n_binds; i++) {
		const struct sup_bind *b = &req->binds[i];
		if (b->optional && access(b->dst, F_OK) != 0)
			continue;
		if (mount(b->src, b->dst, NULL, MS_BIND, NULL) != 0)
			child_fail_errno(errfd, b->dst, errno);
		if (mount(NULL, b->dst, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) != 0)
			child_fail_errno(errfd, b->dst, errno);
	}
}

/* dup2 the three fds onto 0, 1, 2 (by way of high copies, so that one of them
 * already being 0..2 cannot clobber another). */
static void setup_stdio(const int fds[3], int errfd)
{
	int tmp[3];
	for (int i = 0; i < 3; i++) {
		tmp[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 10);
		if (tmp[i] < 0)
			child_fail_errno(errfd, "dup stdio", errno);
	}
	for (int i = 0; i < 3; i++)
		if (dup2(tmp[i], i) < 0)
			child_fail_errno(errfd, "dup2 stdio", errno);
}

static __attribute__((noreturn)) void run_child(const struct spawn_request *req, int errfd,
					       pid_t parent)
{
	char err[SPAWN_ERR_BYTES];
	reset_signals();
	if (req->new_session) {
		if (setsid() < 0)
			child_fail_errno(errfd, "setsid", errno);
	} else if (req->new_process_group && setpgid(0, 0) != 0) {
		child_fail_errno(errfd, "setpgid", errno);
	}
	/* Here, not in the parent: the group must own the terminal before exec,
	 * or a workload that reads at once is stopped (SIGTTIN) first. */
	if (req->take_terminal && sup_terminal_set_foreground(getpgrp()) != 0)
		child_fail_errno(errfd, "making the workload the terminal's foreground", errno);
	if (req->stdio)
		setup_stdio(req->stdio, errfd);
	if (req->controlling_tty && ioctl(STDIN_FILENO, TIOCSCTTY, 0) != 0)
		child_fail_errno(errfd, "TIOCSCTTY", errno);
	/* Nothing the supervisor opened may leak into the sandbox. */
	if (syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC) != 0)
		child_fail_errno(errfd, "close_range (needs Linux 5.11)", errno);
	if (req->ns) {
		int rc = netns_enter(req->ns);
		if (rc != 0)
			child_fail_errno(errfd, "entering the sandbox network namespace", -rc);
	}
	apply_binds(req, errfd);
	if (req->id && sup_drop_privileges(req->id, err, sizeof err) != 0)
		child_fail(errfd, err);
	/* After the uid change: a credential change clears the death signal. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0)
		child_fail_errno(errfd, "PR_SET_PDEATHSIG", errno);
	if (getppid() != parent)
		child_fail(errfd, "supervisor exited during spawn");
	if (req->cwd && chdir(req->cwd) != 0)
		child_fail_errno(errfd, "chdir to the workdir", errno);
	if (landlock_apply(req->landlock, err, sizeof err) != 0)
		child_fail(errfd, err);
	if (seccomp_apply(req->seccomp, err, sizeof err) != 0)
		child_fail(errfd, err);
	execvpe(req->argv[0], req->argv, req->envp);
	snprintf(err, sizeof err, "exec %s: %s", req->argv[0], strerror(errno));
	child_fail(errfd, err);
	_exit(127);
}

pid_t sup_spawn(const struct spawn_request *req, char *err, size_t errlen)
{
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) != 0) {
		snprintf(err, errlen, "pipe2: %s", strerror(errno));
		return -1;
	}
	pid_t parent = getpid();
	sigset_t all, saved;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &saved);
	pid_t pid = fork();
	int fork_errno = errno;
	if (pid != 0)
		pthread_sigmask(SIG_SETMASK, &saved, NULL);
	errno = fork_errno;
	if (pid < 0) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		close(pfd[0]);
		close(pfd[1]);
		return -1;
	}
	if (pid == 0) {
		close(pfd[0]);
		run_child(req, pfd[1], parent);
	}
	close(pfd[1]);
	if (req->new_process_group && !req->new_session && setpgid(pid, pid) != 0 &&
	    errno != EACCES && errno != ESRCH) {
		/* EACCES: the child already exec'd (it set its own group first). */
		snprintf(err, errlen, "setpgid: %s", strerror(errno));
	}
	char msg[SPAWN_ERR_BYTES];
	ssize_t n;
	do {
		n = read(pfd[0], msg, sizeof msg - 1);
	} while (n < 0 && errno == EINTR);
	close(pfd[0]);
	if (n == 0)
		return pid;
	msg[n > 0 ? n : 0] = '\0';
	snprintf(err, errlen, "%s", n > 0 ? msg : "reading the spawn status failed");
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return -1;
}
