/* conn.c - one client connection, served on its own thread.
 *
 * After the key exchange the thread runs one libssh event loop over the
 * session socket, the fds of its session children and of its TCP forwards,
 * its wake-up eventfd (child exits) and the relay's stop eventfd. libssh
 * callbacks only record requests or start children; all data moves in
 * chan_step(), which never blocks. Flow control:
 *   child/socket -> client: read at most the client's window, so the relay
 *     holds at most SSH_RELAY_IO_BUF per direction and a quiet fd is not
 *     polled while the window is closed;
 *   client -> child/socket: channel data is taken from libssh only when our
 *     buffer is empty, so libssh's buffer (and the window it grants) stays
 *     bounded by its window size.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <libssh/callbacks.h>

#include "ssh-relay/relay_int.h"

#define PUMP_ROUNDS 8              /* buffers moved per channel per wake-up */
#define LOOP_IDLE_MS 1000
#define STOP_POLL_MS 50
#define STOP_DRAIN_MS 100          /* output quiet time while stopping */
#define FLUSH_TIMEOUT_MS 1000      /* last packets before disconnect */
#define CLIENT_CLOSE_MS 500        /* stopping: time for the client to hang up */
#define DISCARD_BUF 4096
#define MAX_REGS (SSH_RELAY_MAX_CHANNELS * 3)
#define STATUS_UNKNOWN (255 << 8)  /* a wait status meaning "exit 255" */

#define CLOG(c, lvl, fmt, ...) \
	relay_log((c)->r, (lvl), "ssh[%u]: " fmt, (c)->id, ##__VA_ARGS__)

struct stream {                    /* fd -> channel */
	int fd;
	bool eof;
	bool is_stderr;
	size_t len, off;
	char buf[SSH_RELAY_IO_BUF];
};

enum chan_kind { CHAN_SESSION, CHAN_TCP };

struct conn;

struct chan {
	struct conn *c;
	ssh_channel ch;
	struct ssh_channel_callbacks_struct cb;
	enum chan_kind kind;

	/* requests before shell/exec/subsystem */
	bool pty;
	char term[SSH_RELAY_MAX_TERM + 1];
	unsigned cols, rows;
	char *env[SSH_RELAY_MAX_ENV + 1];
	int n_env;

	/* the session child */
	bool started;
	int slot;
	pid_t pid;
	bool exited;
	int status;
	long long quiet_since;     /* last output read, or the exit */
	long long kill_at;         /* after SIGHUP: SIGKILL; after SIGKILL: give up */
	bool hup_sent, kill_sent, gave_up;

	/* client -> fd */
	int in_fd;
	bool in_dead;              /* the reader is gone: discard client data */
	bool client_eof, in_shut;
	size_t in_len, in_off;
	char inbuf[SSH_RELAY_IO_BUF];

	/* fd -> client (a pty or a socket: out.fd == in_fd) */
	struct stream out, err;

	bool remote_closed;        /* the client closed the channel */
	bool broken;               /* writing to the channel failed */
	bool eof_sent;
	bool finished;             /* done: freed by sweep() */
};

struct fdreg {
	int fd;
	short events;
};

struct conn {
	struct ssh_relay *r;
	unsigned id;
	ssh_session session;
	ssh_event event;
	struct ssh_server_callbacks_struct scb;
	int wake_fd;
	bool authenticated;
	bool stopping;
	int auth_failures;
	long long auth_deadline;
	struct chan *chans[SSH_RELAY_MAX_CHANNELS];
	int n_chans;
	struct fdreg regs[MAX_REGS];
	int n_regs;
};

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static size_t min_size(size_t a, size_t b)
{
	return a < b ? a : b;
}

/* Client-chosen text, made safe for a log line. */
static void printable(char *dst, size_t n, const char *src)
{
	size_t i = 0;
	for (; src && src[i] && i + 1 < n; i++)
		dst[i] = (src[i] >= 0x20 && src[i] < 0x7f) ? src[i] : '?';
	dst[i] = '\0';
}

static int set_nonblocking(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	return (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) ? -1 : 0;
}

/* ---- fd registration with the libssh event ---- */

static void unregister_fd(struct conn *c, int fd)
{
	for (int i = 0; i < c->n_regs; i++) {
		if (c->regs[i].fd == fd) {
			ssh_event_remove_fd(c->event, fd);
			c->regs[i] = c->regs[--c->n_regs];
			return;
		}
	}
}

static void close_fd(struct conn *c, int *fd)
{
	if (*fd < 0)
		return;
	unregister_fd(c, *fd);
	close(*fd);
	*fd = -1;
}

static void chan_close_fds(struct chan *ch)
{
	int shared = ch->in_fd;

	if (ch->out.fd == shared)
		ch->out.fd = -1;
	close_fd(ch->c, &ch->in_fd);
	close_fd(ch->c, &ch->out.fd);
	close_fd(ch->c, &ch->err.fd);
	ch->out.eof = ch->err.eof = true;
	ch->in_dead = true;
}

static int fd_event_cb(socket_t fd, int revents, void *ud)
{
	return 0;   /* chan_step() does the I/O after every poll */
}

static int wake_cb(socket_t fd, int revents, void *ud)
{
	uint64_t v;
	if (read(fd, &v, sizeof v) < 0 && errno != EAGAIN)
		return 0;
	return 0;
}

static void want_fd(struct fdreg *w, int *n, int fd, short ev)
{
	if (fd < 0 || ev == 0)
		return;
	for (int i = 0; i < *n; i++) {
		if (w[i].fd == fd) {
			w[i].events |= ev;
			return;
		}
	}
	if (*n < MAX_REGS)
		w[(*n)++] = (struct fdreg){ .fd = fd, .events = ev };
}

static void want_stream(struct chan *ch, struct fdreg *w, int *n, const struct stream *s)
{
	if (s->fd >= 0 && !s->eof && s->off == s->len &&
	    ssh_channel_window_size(ch->ch) > 0)
		want_fd(w, n, s->fd, POLLIN);
}

static int wanted_fds(struct conn *c, struct fdreg *w)
{
	int n = 0;

	for (int i = 0; i < c->n_chans; i++) {
		struct chan *ch = c->chans[i];
		if (ch->finished || ch->remote_closed)
			continue;
		if (ch->in_fd >= 0 && ch->in_off < ch->in_len)
			want_fd(w, &n, ch->in_fd, POLLOUT);
		want_stream(ch, w, &n, &ch->out);
		want_stream(ch, w, &n, &ch->err);
	}
	return n;
}

static void sync_fds(struct conn *c)
{
	struct fdreg want[MAX_REGS];
	int n = wanted_fds(c, want);

	for (int i = 0; i < c->n_regs;) {
		bool keep = false;
		for (int j = 0; j < n; j++)
			if (want[j].fd == c->regs[i].fd && want[j].events == c->regs[i].events)
				keep = true;
		if (keep) {
			i++;
			continue;
		}
		ssh_event_remove_fd(c->event, c->regs[i].fd);
		c->regs[i] = c->regs[--c->n_regs];
	}
	for (int j = 0; j < n; j++) {
		bool have = false;
		for (int i = 0; i < c->n_regs; i++)
			if (c->regs[i].fd == want[j].fd)
				have = true;
		if (have || c->n_regs >= MAX_REGS)
			continue;
		if (ssh_event_add_fd(c->event, want[j].fd, want[j].events, fd_event_cb, c) != SSH_OK) {
			CLOG(c, SSH_RELAY_LOG_ERROR, "cannot poll fd %d", want[j].fd);
			continue;
		}
		c->regs[c->n_regs++] = want[j];
	}
}

/* ---- channel objects ---- */

static void set_winsize(int fd, unsigned cols, unsigned rows)
{
	struct winsize ws = { .ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols };
	if (fd >= 0)
		(void)ioctl(fd, TIOCSWINSZ, &ws);   /* a dead pty is noticed on read */
}

static unsigned clamp_dim(int v)
{
	if (v < 1)
		return 1;
	return v > 65535 ? 65535 : (unsigned)v;
}

static void chan_free(struct conn *c, struct chan *ch)
{
	chan_close_fds(ch);
	if (ch->ch) {
		ssh_remove_channel_callbacks(ch->ch, &ch->cb);
		ssh_channel_free(ch->ch);
	}
	if (ch->slot >= 0)
		relay_slot_release(c->r, ch->slot);
	for (int i = 0; i < ch->n_env; i++)
		free(ch->env[i]);
	free(ch);
}

static void sweep(struct conn *c)
{
	for (int i = 0; i < c->n_chans;) {
		if (c->chans[i]->finished) {
			chan_free(c, c->chans[i]);
			c->chans[i] = c->chans[--c->n_chans];
			c->chans[c->n_chans] = NULL;
		} else {
			i++;
		}
	}
}

static bool child_live(const struct chan *ch)
{
	return ch->pid > 0 && !ch->exited && !ch->gave_up;
}

static void hangup(struct chan *ch, long long now)
{
	kill(-ch->pid, SIGHUP);
	kill(-ch->pid, SIGCONT);     /* a stopped job must see the hangup */
	ch->hup_sent = true;
	ch->kill_at = now + SSH_RELAY_KILL_GRACE_MS;
}

static void check_kill_timer(struct chan *ch, long long now)
{
	if (!ch->hup_sent || !child_live(ch) || now < ch->kill_at)
		return;
	if (!ch->kill_sent) {
		CLOG(ch->c, SSH_RELAY_LOG_INFO, "pid %d ignored SIGHUP: SIGKILL", (int)ch->pid);
		kill(-ch->pid, SIGKILL);
		ch->kill_sent = true;
		ch->kill_at = now + SSH_RELAY_REAP_WAIT_MS;
	} else {
		CLOG(ch->c, SSH_RELAY_LOG_WARN, "pid %d not reaped after SIGKILL", (int)ch->pid);
		ch->gave_up = true;
	}
}

/* ---- moving data ---- */

static void apply_client_eof(struct chan *ch)
{
	ch->in_shut = true;
	if (ch->in_fd < 0)
		return;
	if (ch->kind == CHAN_TCP)
		shutdown(ch->in_fd, SHUT_WR);
	else if (!ch->pty)
		close_fd(ch->c, &ch->in_fd);    /* the child sees EOF on stdin */
	/* a pty cannot be half-closed: the terminal stays as it is */
}

static ssize_t write_in(struct chan *ch)
{
	const char *p = ch->inbuf + ch->in_off;
	size_t n = ch->in_len - ch->in_off;
	if (ch->kind == CHAN_TCP)
		return send(ch->in_fd, p, n, MSG_NOSIGNAL);
	return write(ch->in_fd, p, n);
}

static void pump_input(struct chan *ch)
{
	char scratch[DISCARD_BUF];

	/* Extended data from a client means nothing here; drain it so that
	 * its share of the window is returned. */
	while (ssh_channel_read_nonblocking(ch->ch, scratch, sizeof scratch, 1) > 0)
		;
	for (int round = 0; round < PUMP_ROUNDS; round++) {
		if (ch->in_off == ch->in_len) {
			ch->in_off = ch->in_len = 0;
			if (ch->client_eof)
				break;
			int n = ssh_channel_read_nonblocking(ch->ch, ch->inbuf,
							     sizeof ch->inbuf, 0);
			if (n == SSH_EOF) {
				ch->client_eof = true;
				break;
			}
			if (n <= 0)
				break;
			if (ch->in_dead || ch->in_fd < 0)
				continue;   /* nobody reads: discard */
			ch->in_len = (size_t)n;
		}
		ssize_t w = write_in(ch);
		if (w < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			ch->in_dead = true;
			ch->in_off = ch->in_len = 0;
			if (ch->kind == CHAN_TCP)
				ch->broken = true;
			else if (!ch->pty)
				close_fd(ch->c, &ch->in_fd);
			continue;
		}
		ch->in_off += (size_t)w;
	}
	if (ch->client_eof && ch->in_off == ch->in_len && !ch->in_shut)
		apply_client_eof(ch);
}

static ssize_t read_stream(const struct chan *ch, struct stream *s, size_t n)
{
	if (ch->kind == CHAN_TCP)
		return recv(s->fd, s->buf, n, 0);
	return read(s->fd, s->buf, n);
}

static void pump_output(struct chan *ch, struct stream *s)
{
	for (int round = 0; round < PUMP_ROUNDS; round++) {
		uint32_t win = ssh_channel_window_size(ch->ch);
		if (s->off == s->len) {
			s->off = s->len = 0;
			if (s->eof || s->fd < 0 || win == 0)
				break;
			ssize_t n = read_stream(ch, s, min_size(sizeof s->buf, win));
			if (n > 0) {
				s->len = (size_t)n;
				ch->quiet_since = now_ms();
			} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
				s->eof = true;   /* EOF, or EIO once a pty has no slave left */
				break;
			} else {
				break;
			}
		}
		if (win == 0)
			break;
		uint32_t len = (uint32_t)min_size(s->len - s->off, win);
		int w = s->is_stderr ? ssh_channel_write_stderr(ch->ch, s->buf + s->off, len)
				     : ssh_channel_write(ch->ch, s->buf + s->off, len);
		if (w == SSH_ERROR) {
			ch->broken = true;
			s->eof = true;
			s->off = s->len = 0;
			break;
		}
		if (w <= 0)
			break;
		s->off += (size_t)w;
	}
}

static bool streams_flushed(const struct chan *ch)
{
	return ch->out.off == ch->out.len && ch->err.off == ch->err.len;
}

/* ---- session channels ---- */

static int exit_code(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 255;
}

static void finish_session(struct chan *ch)
{
	int code = ch->exited ? exit_code(ch->status) : 128 + SIGKILL;

	ssh_channel_send_eof(ch->ch);
	ssh_channel_request_send_exit_status(ch->ch, code);
	ssh_channel_close(ch->ch);
	/* Like a terminal hangup: whatever the session left behind goes,
	 * unless it ignores SIGHUP (nohup). */
	if (ch->pid > 0)
		kill(-ch->pid, SIGHUP);
	chan_close_fds(ch);
	ch->finished = true;
	CLOG(ch->c, SSH_RELAY_LOG_DEBUG, "session pid %d done, exit-status %d",
	     (int)ch->pid, code);
}

static void close_dead_streams(struct chan *ch)
{
	if (ch->pty) {
		if (ch->out.eof)
			chan_close_fds(ch);
		return;
	}
	if (ch->out.eof && ch->out.off == ch->out.len)
		close_fd(ch->c, &ch->out.fd);
	if (ch->err.eof && ch->err.off == ch->err.len)
		close_fd(ch->c, &ch->err.fd);
}

static void step_remote_closed(struct chan *ch, long long now)
{
	if (ch->in_fd >= 0 || ch->out.fd >= 0 || ch->err.fd >= 0)
		chan_close_fds(ch);
	if (child_live(ch)) {
		if (!ch->hup_sent)
			hangup(ch, now);
		check_kill_timer(ch, now);
		return;
	}
	ch->finished = true;
}

static void step_session(struct chan *ch, long long now)
{
	struct conn *c = ch->c;

	if (ch->remote_closed || ch->broken) {
		step_remote_closed(ch, now);
		return;
	}
	if (!ch->started) {
		if (c->stopping) {
			ssh_channel_close(ch->ch);
			ch->finished = true;
		}
		return;
	}
	pump_input(ch);
	pump_output(ch, &ch->out);
	pump_output(ch, &ch->err);
	close_dead_streams(ch);
	check_kill_timer(ch, now);
	if (!(ch->exited || ch->gave_up) || !streams_flushed(ch))
		return;
	long long drain = c->stopping ? STOP_DRAIN_MS : SSH_RELAY_DRAIN_MS;
	if ((ch->out.eof && ch->err.eof) || now - ch->quiet_since >= drain)
		finish_session(ch);
}

static void step_tcp(struct chan *ch)
{
	if (ch->remote_closed || ch->broken || ch->c->stopping) {
		if (!ch->remote_closed)
			ssh_channel_close(ch->ch);
		chan_close_fds(ch);
		ch->finished = true;
		return;
	}
	pump_input(ch);
	pump_output(ch, &ch->out);
	if (ch->out.eof && ch->out.off == ch->out.len && !ch->eof_sent) {
		ssh_channel_send_eof(ch->ch);
		ch->eof_sent = true;
	}
	if (ch->eof_sent && ch->in_shut) {
		ssh_channel_close(ch->ch);
		chan_close_fds(ch);
		ch->finished = true;
	}
}

static void chan_step(struct chan *ch, long long now)
{
	if (ch->finished)
		return;
	if (ch->kind == CHAN_TCP)
		step_tcp(ch);
	else
		step_session(ch, now);
}

/* ---- child exits ---- */

static int status_from_siginfo(const siginfo_t *si)
{
	if (si->si_code == CLD_EXITED)
		return (si->si_status & 0xff) << 8;
	return si->si_status & 0x7f;
}

static void mark_exited(struct chan *ch, int status)
{
	ch->exited = true;
	ch->status = status;
	ch->quiet_since = now_ms();
	CLOG(ch->c, SSH_RELAY_LOG_DEBUG, "session pid %d exited (status 0x%x)",
	     (int)ch->pid, (unsigned)status);
}

/* peek: also look at the process itself (waitid WNOWAIT leaves the zombie to
 * the host), for when the host is not reaping (it is in ssh_relay_stop). */
static void collect_exits(struct conn *c, bool peek)
{
	for (int i = 0; i < c->n_chans; i++) {
		struct chan *ch = c->chans[i];
		int status;
		if (!child_live(ch))
			continue;
		if (relay_slot_exited(c->r, ch->slot, &status)) {
			mark_exited(ch, status);
			continue;
		}
		if (!peek)
			continue;
		siginfo_t si;
		memset(&si, 0, sizeof si);
		if (waitid(P_PID, (id_t)ch->pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0) {
			if (si.si_pid == ch->pid)
				mark_exited(ch, status_from_siginfo(&si));
		} else if (errno == ECHILD) {
			mark_exited(ch, STATUS_UNKNOWN);   /* already reaped by the host */
		}
	}
}

static bool any_live(const struct conn *c)
{
	for (int i = 0; i < c->n_chans; i++)
		if (child_live(c->chans[i]))
			return true;
	return false;
}

static void wait_children(struct conn *c, int ms)
{
	long long deadline = now_ms() + ms;

	for (;;) {
		collect_exits(c, true);
		long long now = now_ms();
		if (!any_live(c) || now >= deadline)
			return;
		struct pollfd p = { .fd = c->wake_fd, .events = POLLIN };
		long long left = deadline - now;
		if (poll(&p, 1, (int)(left < STOP_POLL_MS ? left : STOP_POLL_MS)) > 0)
			wake_cb(c->wake_fd, POLLIN, c);
	}
}

/* ---- starting a session child ---- */

/* A failed start may be followed by another request on the same channel. */
static void reset_io(struct chan *ch)
{
	ch->in_dead = ch->client_eof = ch->in_shut = false;
	ch->in_len = ch->in_off = 0;
	ch->out.eof = ch->err.eof = false;
	ch->out.len = ch->out.off = ch->err.len = ch->err.off = 0;
}

static int open_pty(struct chan *ch, int child[3])
{
	char name[64];
	int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	int s = -1;

	if (m < 0)
		return -1;
	if (grantpt(m) != 0 || unlockpt(m) != 0)
		goto fail;
	s = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (s < 0) {
		if (ptsname_r(m, name, sizeof name) != 0)
			goto fail;
		s = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (s < 0)
			goto fail;
	}
	set_winsize(m, ch->cols, ch->rows);
	if (set_nonblocking(m) != 0)
		goto fail;
	ch->in_fd = ch->out.fd = m;
	ch->err.fd = -1;
	ch->err.eof = true;
	child[0] = child[1] = child[2] = s;
	return 0;
fail:
	if (s >= 0)
		close(s);
	close(m);
	return -1;
}

static int open_pipes(struct chan *ch, int child[3])
{
	int p[3][2] = { { -1, -1 }, { -1, -1 }, { -1, -1 } };

	for (int i = 0; i < 3; i++)
		if (pipe2(p[i], O_CLOEXEC) != 0)
			goto fail;
	if (set_nonblocking(p[0][1]) || set_nonblocking(p[1][0]) || set_nonblocking(p[2][0]))
		goto fail;
	ch->in_fd = p[0][1];
	ch->out.fd = p[1][0];
	ch->err.fd = p[2][0];
	child[0] = p[0][0];
	child[1] = p[1][1];
	child[2] = p[2][1];
	return 0;
fail:
	for (int i = 0; i < 3; i++)
		for (int j = 0; j < 2; j++)
			if (p[i][j] >= 0)
				close(p[i][j]);
	return -1;
}

static void close_child_fds(int child[3])
{
	for (int i = 0; i < 3; i++) {
		if (child[i] < 0)
			continue;
		int fd = child[i];
		close(fd);
		for (int j = i; j < 3; j++)
			if (child[j] == fd)
				child[j] = -1;
	}
}

static int start_session(struct chan *ch, const char *command, const char *subsystem)
{
	struct conn *c = ch->c;
	int child[3] = { -1, -1, -1 };
	char err[256] = "";
	const char *what = subsystem ? subsystem : command ? "exec" : "shell";

	if (ch->started || c->stopping)
		return -1;
	reset_io(ch);
	if ((ch->pty ? open_pty(ch, child) : open_pipes(ch, child)) != 0) {
		CLOG(c, SSH_RELAY_LOG_ERROR, "%s: opening %s: %s", what,
		     ch->pty ? "a pty" : "pipes", strerror(errno));
		return -1;
	}
	struct ssh_relay_session_req req = {
		.command = command,
		.subsystem = subsystem,
		.pty = ch->pty,
		.term = ch->pty ? ch->term : NULL,
		.cols = ch->pty ? ch->cols : 0,
		.rows = ch->pty ? ch->rows : 0,
		.client_env = ch->env,
		.stdin_fd = child[0],
		.stdout_fd = child[1],
		.stderr_fd = child[2],
	};
	pid_t pid = relay_spawn(c->r, &req, c->wake_fd, &ch->slot, err, sizeof err);
	close_child_fds(child);
	if (pid < 0) {
		CLOG(c, SSH_RELAY_LOG_WARN, "%s: starting the session failed: %s", what, err);
		chan_close_fds(ch);
		return -1;
	}
	ch->pid = pid;
	ch->started = true;
	ch->quiet_since = now_ms();
	CLOG(c, SSH_RELAY_LOG_INFO, "%s%s started, pid %d", what, ch->pty ? " (pty)" : "",
	     (int)pid);
	return 0;
}

/* ---- channel callbacks (run inside ssh_event_dopoll) ---- */

static int on_pty_request(ssh_session s, ssh_channel channel, const char *term,
			  int width, int height, int pxwidth, int pxheight, void *ud)
{
	struct chan *ch = ud;

	if (ch->started || ch->pty)
		return -1;
	if (term == NULL || term[0] == '\0')
		term = "xterm-256color";
	if (strlen(term) > SSH_RELAY_MAX_TERM)
		return -1;
	for (const char *p = term; *p; p++)
		if (*p <= 0x20 || *p >= 0x7f)
			return -1;
	snprintf(ch->term, sizeof ch->term, "%s", term);
	ch->cols = clamp_dim(width);
	ch->rows = clamp_dim(height);
	ch->pty = true;
	return 0;
}

static int on_window_change(ssh_session s, ssh_channel channel, int width, int height,
			    int pxwidth, int pxheight, void *ud)
{
	struct chan *ch = ud;

	if (!ch->pty)
		return -1;
	ch->cols = clamp_dim(width);
	ch->rows = clamp_dim(height);
	if (ch->started)
		set_winsize(ch->out.fd, ch->cols, ch->rows);
	return 0;
}

static int on_shell(ssh_session s, ssh_channel channel, void *ud)
{
	return start_session(ud, NULL, NULL);
}

static int on_exec(ssh_session s, ssh_channel channel, const char *command, void *ud)
{
	struct chan *ch = ud;

	if (command == NULL || command[strspn(command, " \t\r\n")] == '\0' ||
	    strlen(command) > SSH_RELAY_MAX_COMMAND) {
		CLOG(ch->c, SSH_RELAY_LOG_WARN, "exec: empty or oversized command refused");
		return -1;
	}
	return start_session(ch, command, NULL);
}

static int on_subsystem(ssh_session s, ssh_channel channel, const char *name, void *ud)
{
	struct chan *ch = ud;
	char shown[64];

	if (name && strcmp(name, "sftp") == 0)
		return start_session(ch, SSH_RELAY_SFTP_SERVER, "sftp");
	printable(shown, sizeof shown, name);
	CLOG(ch->c, SSH_RELAY_LOG_WARN, "subsystem '%s' refused", shown);
	return -1;
}

static int set_env(struct chan *ch, const char *name, const char *value)
{
	size_t nlen = strlen(name);
	char *kv;

	if (asprintf(&kv, "%s=%s", name, value) < 0)
		return -1;
	for (int i = 0; i < ch->n_env; i++) {
		if (strncmp(ch->env[i], name, nlen) == 0 && ch->env[i][nlen] == '=') {
			free(ch->env[i]);
			ch->env[i] = kv;
			return 0;
		}
	}
	if (ch->n_env >= SSH_RELAY_MAX_ENV) {
		free(kv);
		return -1;
	}
	ch->env[ch->n_env++] = kv;
	ch->env[ch->n_env] = NULL;
	return 0;
}

static int on_env(ssh_session s, ssh_channel channel, const char *name, const char *value,
		  void *ud)
{
	struct chan *ch = ud;
	char shown[64];

	if (!ch->started && name && value && ssh_relay_env_name_allowed(name) &&
	    strlen(value) <= SSH_RELAY_MAX_ENV_VALUE && set_env(ch, name, value) == 0)
		return 0;
	printable(shown, sizeof shown, name);
	CLOG(ch->c, SSH_RELAY_LOG_DEBUG, "env %s refused", shown);
	return -1;
}

static int signal_from_name(const char *name)
{
	static const struct { const char *name; int sig; } sigs[] = {
		{ "ABRT", SIGABRT }, { "ALRM", SIGALRM }, { "FPE", SIGFPE },
		{ "HUP", SIGHUP }, { "ILL", SIGILL }, { "INT", SIGINT },
		{ "KILL", SIGKILL }, { "PIPE", SIGPIPE }, { "QUIT", SIGQUIT },
		{ "SEGV", SIGSEGV }, { "TERM", SIGTERM }, { "USR1", SIGUSR1 },
		{ "USR2", SIGUSR2 },
	};
	for (size_t i = 0; name && i < sizeof sigs / sizeof sigs[0]; i++)
		if (strcmp(name, sigs[i].name) == 0)
			return sigs[i].sig;
	return 0;
}

static void on_signal(ssh_session s, ssh_channel channel, const char *name, void *ud)
{
	struct chan *ch = ud;
	int sig = signal_from_name(name);

	if (sig > 0 && child_live(ch))
		kill(-ch->pid, sig);
}

static void on_close(ssh_session s, ssh_channel channel, void *ud)
{
	struct chan *ch = ud;
	ch->remote_closed = true;
}

static struct chan *chan_new(struct conn *c, enum chan_kind kind, ssh_channel channel)
{
	struct chan *ch = calloc(1, sizeof *ch);

	if (ch == NULL)
		return NULL;
	ch->c = c;
	ch->ch = channel;
	ch->kind = kind;
	ch->slot = -1;
	ch->in_fd = ch->out.fd = ch->err.fd = -1;
	ch->err.is_stderr = true;
	ssh_callbacks_init(&ch->cb);
	ch->cb.userdata = ch;
	ch->cb.channel_close_function = on_close;
	if (kind == CHAN_SESSION) {
		ch->cb.channel_pty_request_function = on_pty_request;
		ch->cb.channel_pty_window_change_function = on_window_change;
		ch->cb.channel_shell_request_function = on_shell;
		ch->cb.channel_exec_request_function = on_exec;
		ch->cb.channel_subsystem_request_function = on_subsystem;
		ch->cb.channel_env_request_function = on_env;
		ch->cb.channel_signal_function = on_signal;
	}
	if (ssh_set_channel_callbacks(channel, &ch->cb) != SSH_OK) {
		free(ch);
		return NULL;
	}
	c->chans[c->n_chans++] = ch;
	return ch;
}

/* ---- server callbacks ---- */

static int on_auth_none(ssh_session s, const char *user, void *ud)
{
	struct conn *c = ud;

	if (c->r->auth_keys != NULL)
		return SSH_AUTH_DENIED;
	c->authenticated = true;
	return SSH_AUTH_SUCCESS;
}

static int on_auth_pubkey(ssh_session s, const char *user, struct ssh_key_struct *key,
			  char state, void *ud)
{
	struct conn *c = ud;

	if (!relay_key_allowed(c->r, key)) {
		c->auth_failures++;
		return SSH_AUTH_DENIED;
	}
	if (state == SSH_PUBLICKEY_STATE_NONE)
		return SSH_AUTH_SUCCESS;   /* "this key would do": sign with it */
	if (state == SSH_PUBLICKEY_STATE_VALID) {
		c->authenticated = true;
		return SSH_AUTH_SUCCESS;
	}
	c->auth_failures++;
	return SSH_AUTH_DENIED;
}

static ssh_channel on_session_open(ssh_session s, void *ud)
{
	struct conn *c = ud;
	ssh_channel channel;

	if (!c->authenticated || c->stopping || c->n_chans >= SSH_RELAY_MAX_CHANNELS) {
		CLOG(c, SSH_RELAY_LOG_WARN, "session channel refused (%d open)", c->n_chans);
		return NULL;
	}
	channel = ssh_channel_new(s);
	if (channel == NULL)
		return NULL;
	if (chan_new(c, CHAN_SESSION, channel) == NULL) {
		ssh_channel_free(channel);
		return NULL;
	}
	return channel;
}

static int open_forward(struct conn *c, ssh_message msg)
{
	const char *dst = ssh_message_channel_request_open_destination(msg);
	int port = ssh_message_channel_request_open_destination_port(msg);
	char host[INET6_ADDRSTRLEN], shown[80];
	ssh_channel channel;
	int fd;

	printable(shown, sizeof shown, dst);
	if (!c->authenticated || c->stopping || c->n_chans >= SSH_RELAY_MAX_CHANNELS)
		return 1;
	if (port < 1 || port > 65535 || ssh_relay_loopback_target(dst, host, sizeof host) != 0) {
		CLOG(c, SSH_RELAY_LOG_WARN,
		     "forward to %s:%d refused: only loopback inside the sandbox", shown, port);
		return 1;
	}
	fd = c->r->host.connect_inside(c->r->host.ud, host, (uint16_t)port);
	if (fd < 0) {
		CLOG(c, SSH_RELAY_LOG_INFO, "forward to %s:%d: %s", host, port, strerror(-fd));
		return 1;
	}
	if (set_nonblocking(fd) != 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
		close(fd);
		return 1;
	}
	channel = ssh_message_channel_request_open_reply_accept(msg);
	if (channel == NULL) {
		close(fd);
		return 0;
	}
	struct chan *ch = chan_new(c, CHAN_TCP, channel);
	if (ch == NULL) {
		close(fd);
		ssh_channel_close(channel);
		ssh_channel_free(channel);
		return 0;
	}
	ch->in_fd = ch->out.fd = fd;
	CLOG(c, SSH_RELAY_LOG_INFO, "forward to %s:%d opened", host, port);
	return 0;
}

/* Everything the server callbacks do not handle. 1: libssh's default reply
 * (a refusal). */
static int on_message(ssh_session s, ssh_message msg, void *ud)
{
	struct conn *c = ud;
	int type = ssh_message_type(msg);
	int sub = ssh_message_subtype(msg);

	if (type == SSH_REQUEST_CHANNEL_OPEN && sub == SSH_CHANNEL_DIRECT_TCPIP)
		return open_forward(c, msg);
	if (type == SSH_REQUEST_AUTH)
		c->auth_failures++;       /* password, keyboard-interactive, ... */
	else if (type == SSH_REQUEST_CHANNEL_OPEN)
		CLOG(c, SSH_RELAY_LOG_WARN, "channel type %d refused", sub);
	return 1;
}

/* ---- the connection ---- */

static bool session_closed(struct conn *c)
{
	return !ssh_is_connected(c->session) ||
	       (ssh_get_status(c->session) & (SSH_CLOSED | SSH_CLOSED_ERROR)) != 0;
}

static int conn_handshake(struct conn *c)
{
	long timeout = SSH_RELAY_HANDSHAKE_TIMEOUT_S;

	ssh_callbacks_init(&c->scb);
	c->scb.userdata = c;
	c->scb.auth_none_function = on_auth_none;
	c->scb.auth_pubkey_function = on_auth_pubkey;
	c->scb.channel_open_request_session_function = on_session_open;
	if (ssh_set_server_callbacks(c->session, &c->scb) != SSH_OK ||
	    ssh_options_set(c->session, SSH_OPTIONS_TIMEOUT, &timeout) != SSH_OK)
		return -1;
	ssh_set_message_callback(c->session, on_message, c);
	if (ssh_handle_key_exchange(c->session) != SSH_OK) {
		CLOG(c, SSH_RELAY_LOG_INFO, "key exchange failed: %s", ssh_get_error(c->session));
		return -1;
	}
	ssh_set_auth_methods(c->session, c->r->auth_keys
				 ? SSH_AUTH_METHOD_PUBLICKEY
				 : SSH_AUTH_METHOD_NONE | SSH_AUTH_METHOD_PUBLICKEY);
	ssh_set_blocking(c->session, 0);
	c->event = ssh_event_new();
	if (c->event == NULL ||
	    ssh_event_add_session(c->event, c->session) != SSH_OK ||
	    ssh_event_add_fd(c->event, c->wake_fd, POLLIN, wake_cb, c) != SSH_OK ||
	    ssh_event_add_fd(c->event, c->r->stop_fd, POLLIN, fd_event_cb, c) != SSH_OK) {
		CLOG(c, SSH_RELAY_LOG_ERROR, "cannot set up the event loop");
		return -1;
	}
	c->auth_deadline = now_ms() + SSH_RELAY_AUTH_TIMEOUT_S * 1000LL;
	return 0;
}

static void enter_stopping(struct conn *c, long long now)
{
	c->stopping = true;
	/* Level-triggered and never drained: stop polling it. */
	ssh_event_remove_fd(c->event, c->r->stop_fd);
	for (int i = 0; i < c->n_chans; i++)
		if (child_live(c->chans[i]) && !c->chans[i]->hup_sent)
			hangup(c->chans[i], now);
}

/* Client data that libssh already holds raises no poll event: if some waits
 * while our buffer has room, go round again without sleeping. */
static bool input_pending(struct chan *ch)
{
	return !ch->finished && !ch->remote_closed && (ch->started || ch->kind == CHAN_TCP) &&
	       !ch->client_eof && ch->in_off == ch->in_len &&
	       ssh_channel_poll(ch->ch, 0) > 0;
}

static int loop_timeout(struct conn *c, long long now, long long stop_deadline)
{
	long long t = now + LOOP_IDLE_MS;

	if (!c->authenticated && c->auth_deadline < t)
		t = c->auth_deadline;
	if (c->stopping) {
		if (now + STOP_POLL_MS < t)
			t = now + STOP_POLL_MS;
		if (stop_deadline < t)
			t = stop_deadline;
	}
	for (int i = 0; i < c->n_chans; i++) {
		struct chan *ch = c->chans[i];
		if (input_pending(ch))
			return 0;
		if (ch->exited && ch->quiet_since + SSH_RELAY_DRAIN_MS < t)
			t = ch->quiet_since + SSH_RELAY_DRAIN_MS;
		if (ch->hup_sent && child_live(ch) && ch->kill_at < t)
			t = ch->kill_at;
	}
	return t <= now ? 0 : (int)(t - now);
}

static bool conn_should_end(struct conn *c, long long now)
{
	if (session_closed(c)) {
		CLOG(c, SSH_RELAY_LOG_DEBUG, "client disconnected");
		return true;
	}
	if (!c->authenticated && now >= c->auth_deadline) {
		CLOG(c, SSH_RELAY_LOG_WARN, "authentication timed out");
		return true;
	}
	if (c->auth_failures >= SSH_RELAY_MAX_AUTH_FAILURES) {
		CLOG(c, SSH_RELAY_LOG_WARN, "too many authentication failures");
		return true;
	}
	return false;
}

/* Stopping: sessions are hung up (then killed) and finish with their exit
 * status; the client, whose last channel closed, then disconnects itself
 * (OpenSSH treats a server-side disconnect as an error). */
static bool stop_done(struct conn *c, long long now, long long stop_deadline,
		      long long *idle_since)
{
	if (now >= stop_deadline)
		return true;
	if (c->n_chans > 0)
		return false;
	if (*idle_since == 0)
		*idle_since = now;
	return now >= *idle_since + CLIENT_CLOSE_MS;
}

static void conn_loop(struct conn *c)
{
	long long stop_deadline = 0, idle_since = 0;

	for (;;) {
		long long now = now_ms();
		if (!c->stopping && relay_is_stopping(c->r)) {
			enter_stopping(c, now);
			stop_deadline = now + SSH_RELAY_KILL_GRACE_MS + SSH_RELAY_REAP_WAIT_MS +
					CLIENT_CLOSE_MS;
		}
		if (conn_should_end(c, now))
			return;
		collect_exits(c, c->stopping);
		for (int i = 0; i < c->n_chans; i++)
			chan_step(c->chans[i], now);
		sweep(c);
		if (c->stopping && stop_done(c, now, stop_deadline, &idle_since))
			return;
		sync_fds(c);
		if (ssh_event_dopoll(c->event, loop_timeout(c, now, stop_deadline)) == SSH_ERROR) {
			CLOG(c, SSH_RELAY_LOG_DEBUG, "connection ended: %s",
			     ssh_get_error(c->session));
			return;
		}
	}
}

/* Hang up whatever still runs, then kill it; tell a still-connected client
 * how each session ended. */
static void conn_teardown(struct conn *c)
{
	bool connected = c->event != NULL && !session_closed(c);
	long long now = now_ms();

	for (int i = 0; i < c->n_chans; i++)
		if (child_live(c->chans[i]) && !c->chans[i]->hup_sent)
			hangup(c->chans[i], now);
	if (any_live(c))
		wait_children(c, SSH_RELAY_KILL_GRACE_MS);
	for (int i = 0; i < c->n_chans; i++) {
		if (child_live(c->chans[i])) {
			kill(-c->chans[i]->pid, SIGKILL);
			c->chans[i]->kill_sent = true;
		}
	}
	if (any_live(c))
		wait_children(c, SSH_RELAY_REAP_WAIT_MS);
	for (int i = 0; i < c->n_chans; i++) {
		struct chan *ch = c->chans[i];
		if (!connected || ch->finished || ch->remote_closed)
			continue;
		if (ch->kind == CHAN_SESSION && ch->started)
			finish_session(ch);
		else
			ssh_channel_close(ch->ch);
	}
	for (int i = 0; i < c->n_chans; i++)
		chan_free(c, c->chans[i]);
	c->n_chans = 0;
	if (connected) {
		ssh_blocking_flush(c->session, FLUSH_TIMEOUT_MS);
		ssh_disconnect(c->session);
	}
}

static void conn_free(struct conn *c)
{
	if (c->event) {
		for (int i = 0; i < c->n_regs; i++)
			ssh_event_remove_fd(c->event, c->regs[i].fd);
		ssh_event_remove_fd(c->event, c->wake_fd);
		if (!c->stopping)
			ssh_event_remove_fd(c->event, c->r->stop_fd);
		ssh_event_remove_session(c->event, c->session);
		ssh_event_free(c->event);
	}
	ssh_free(c->session);
	if (c->wake_fd >= 0)
		close(c->wake_fd);
	free(c);
}

static void *conn_main(void *arg)
{
	struct conn *c = arg;
	struct ssh_relay *r = c->r;

	if (conn_handshake(c) == 0)
		conn_loop(c);
	conn_teardown(c);
	conn_free(c);
	relay_conn_finished(r);
	return NULL;
}

int conn_spawn_thread(struct ssh_relay *r, ssh_session session, unsigned id)
{
	struct conn *c = calloc(1, sizeof *c);

	if (c == NULL) {
		ssh_free(session);
		return -1;
	}
	c->r = r;
	c->id = id;
	c->session = session;
	c->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->wake_fd < 0 || relay_start_detached(conn_main, c) != 0) {
		relay_log(r, SSH_RELAY_LOG_ERROR, "ssh: cannot start a connection thread");
		conn_free(c);
		return -1;
	}
	return 0;
}
