/* terminal.c - the terminal the supervisor was started on (docker run -it, or
 * a shell's foreground job). The workload runs in its own process group, so
 * that group must be the terminal's foreground group while it runs: the
 * kernel stops a background group that reads the terminal (SIGTTIN). The
 * supervisor's group is the foreground again once the workload is gone.
 * Whether there is a controlling terminal at all decides the seccomp
 * profile (confine.c). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "supervisor/sup.h"

bool sup_terminal_is_foreground(void)
{
	pid_t fg = tcgetpgrp(STDIN_FILENO); /* -1: not our controlling terminal */
	return fg > 0 && fg == getpgrp();
}

/* tcsetpgrp() from a background group raises SIGTTOU unless the caller
 * blocks or ignores it; blocked (in this thread only, leaving the process's
 * dispositions alone), no signal is generated and the call just works. */
int sup_terminal_set_foreground(pid_t pgrp)
{
	sigset_t ttou, saved;
	if (sigemptyset(&ttou) != 0 || sigaddset(&ttou, SIGTTOU) != 0)
		return -1;
	int e = pthread_sigmask(SIG_BLOCK, &ttou, &saved);
	if (e != 0) {
		errno = e;
		return -1;
	}
	int rc = tcsetpgrp(STDIN_FILENO, pgrp);
	int set_errno = errno;
	e = pthread_sigmask(SIG_SETMASK, &saved, NULL);
	if (rc != 0) {
		errno = set_errno;
		return -1;
	}
	if (e != 0) {
		errno = e;
		return -1;
	}
	return 0;
}

/* Only the workload's own group, or a group nobody is left in (a job of the
 * workload's shell, already killed), is taken over: any other foreground
 * group was put there by someone else (the shell that started us, if we were
 * stopped and resumed in the background) and stays. */
static bool foreground_is_ours_to_take(const struct sup_ctx *ctx, pid_t fg)
{
	if (fg == ctx->workload_pid)
		return true;
	return kill(-fg, 0) != 0 && errno == ESRCH;
}

void sup_terminal_reclaim(struct sup_ctx *ctx)
{
	if (!ctx->terminal_lent)
		return;
	pid_t fg = tcgetpgrp(STDIN_FILENO);
	if (fg > 0 && fg != getpgrp() && !foreground_is_ours_to_take(ctx, fg))
		return; /* teardown tries again, once every child is gone */
	ctx->terminal_lent = false;
	if (fg <= 0 || fg == getpgrp())
		return; /* hung up, or nothing to do */
	if (sup_terminal_set_foreground(getpgrp()) != 0)
		sup_log(ctx, LOG_WARN, "taking the terminal back from the workload: %s",
			strerror(errno));
}

/* A job-control shell above us: our session has a terminal and a leader that
 * is not us, and we were not adopted by init (docker run --init, a service
 * manager: nothing there resumes a stopped child). */
static bool job_control_above(void)
{
	return getsid(0) != getpid() && getppid() != 1 && sup_has_controlling_terminal();
}

/* Before a workload stopped by a background read or write goes on: the
 * terminal's foreground becomes its group when we or a group nobody is left
 * in hold it. False when another group holds it (the workload would only stop
 * again) or stdin is not the terminal. */
static bool terminal_for_workload(struct sup_ctx *ctx)
{
	pid_t fg = tcgetpgrp(STDIN_FILENO);
	if (fg == ctx->workload_pid)
		return true;
	if (fg <= 0 || (fg != getpgrp() && !foreground_is_ours_to_take(ctx, fg)))
		return false;
	if (sup_terminal_set_foreground(ctx->workload_pid) != 0) {
		sup_log(ctx, LOG_WARN, "giving the terminal to the workload: %s", strerror(errno));
		return false;
	}
	ctx->terminal_lent = true;
	return true;
}

/* The workload was stopped from the terminal: Ctrl-Z (SIGTSTP), or it read or
 * wrote the terminal from the background (SIGTTIN, SIGTTOU). A shell that
 * started the supervisor as a job waits for the supervisor, not for the
 * workload, so the supervisor's own group stops too: the shell shows the job
 * stopped, and `fg` or `bg` continues it here. With no job control above
 * (docker run -it, where the supervisor leads the session; --init; a service)
 * nobody could resume a stopped job: the workload goes on at once, as a
 * container's PID 1 ignores Ctrl-Z (after a background read or write only
 * once it can have the terminal, or it would stop again at once). */
void sup_terminal_workload_stopped(struct sup_ctx *ctx, int sig)
{
	if (job_control_above()) {
		sup_log(ctx, LOG_INFO, "workload stopped by %s; stopping the supervisor's job too",
			strsignal(sig));
		if (kill(0, SIGTSTP) != 0)
			sup_log(ctx, LOG_WARN, "stopping the supervisor's job: %s", strerror(errno));
		/* Continued. After `fg` the terminal is ours: the workload's group
		 * gets it, as at its start; after `bg` it goes on in the background
		 * (and stops the job again if it reads the terminal). */
		(void)terminal_for_workload(ctx);
	} else if (sig != SIGTSTP && !terminal_for_workload(ctx)) {
		sup_log(ctx, LOG_WARN, "workload stopped by %s while another process group holds "
			"the terminal; it stays stopped", strsignal(sig));
		return;
	}
	if (kill(-ctx->workload_pid, SIGCONT) != 0)
		sup_log(ctx, LOG_WARN, "continuing the workload: %s", strerror(errno));
}

/* Only ENXIO says "no controlling terminal"; any other failure (say, no
 * /dev/tty node in the image) counts as one, which costs at most the "minimal"
 * seccomp filter. O_NONBLOCK: opening a serial line may wait for carrier. */
bool sup_has_controlling_terminal(void)
{
	int fd = open("/dev/tty", O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return errno != ENXIO;
	close(fd); /* read-only, nothing written: no error to lose */
	return true;
}
