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

/* The workload was stopped from the terminal: Ctrl-Z (SIGTSTP), or it read or
 * wrote the terminal from the background (SIGTTIN, SIGTTOU). The shell that
 * started the supervisor as a job waits for the supervisor, not for the
 * workload, so the supervisor's own group stops too: the shell shows the job
 * stopped, and `fg` or `bg` continues it here. Where there is no job control
 * above the supervisor (docker run -it: it leads the session, so its group is
 * orphaned) the kernel discards that stop, and the workload simply goes on,
 * as PID 1 of a container ignores Ctrl-Z; nobody else could resume it. */
void sup_terminal_workload_stopped(struct sup_ctx *ctx, int sig)
{
	sup_log(ctx, LOG_INFO, "workload stopped by %s; stopping the supervisor's job too",
		strsignal(sig));
	if (kill(0, SIGTSTP) != 0)
		sup_log(ctx, LOG_WARN, "stopping the supervisor's group: %s", strerror(errno));
	/* Continued (or the stop was discarded). `fg` gave us the terminal: the
	 * workload's group gets it, as at its start. */
	if (sup_terminal_is_foreground()) {
		if (sup_terminal_set_foreground(ctx->workload_pid) == 0)
			ctx->terminal_lent = true;
		else
			sup_log(ctx, LOG_WARN, "giving the terminal back to the workload: %s",
				strerror(errno));
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
