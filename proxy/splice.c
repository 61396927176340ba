/* splice.c - raw tunnel relay between two TCP sockets: socket -> pipe ->
 * socket with splice(2), so the payload is never copied through user space.
 *
 * Each direction borrows a pipe only while bytes are in it (idle tunnels
 * hold none); drained pipes go back to the proxy's spare list.
 *
 * Readiness comes from one uv_poll_t per socket (the conn's uv_tcp_t
 * handles own the descriptors and stay idle). Interest is exact, so the
 * level-triggered poll never spins:
 *   - a direction reads its source only while its pipe is empty,
 *   - and waits for its destination to be writable only while its pipe
 *     holds bytes.
 * Hence at most one pipe (PROXY_SPLICE_PIPE_BYTES) per direction sits in
 * the proxy (backpressure), and EAGAIN from a splice into an empty pipe
 * always means the source has nothing to read.
 */
#include "proxy/splice.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proxy/proxy_int.h"

enum { CLIENT, UPSTREAM };

struct splice_dir {
	int src, dst;
	int pipe_r, pipe_w;    /* -1: no pipe held */
	size_t fill;           /* bytes in the pipe */
	bool eof;              /* the source ended */
	bool done;             /* ... and the destination was shut down for writing */
};

struct splice_relay {
	struct proxy *px;
	const struct splice_hooks *hooks;
	void *owner;
	uv_poll_t poll[2];         /* [CLIENT], [UPSTREAM] socket readiness */
	int events[2];             /* interest registered on each */
	struct splice_dir dir[2];  /* [CLIENT]: client -> upstream, [UPSTREAM]: back */
	unsigned open_polls;
	bool closing;
};

/* ---- spare pipes ---- */

void splice_pool_drain(struct splice_pool *pool)
{
	for (unsigned i = 0; i < pool->n; i++) {
		close(pool->fds[i][0]);
		close(pool->fds[i][1]);
	}
	pool->n = 0;
}

static bool acquire_pipe(struct proxy *px, struct splice_dir *d)
{
	if (d->pipe_r >= 0)
		return true;
	struct splice_pool *pool = &px->spare_pipes;
	if (pool->n > 0) {
		pool->n--;
		d->pipe_r = pool->fds[pool->n][0];
		d->pipe_w = pool->fds[pool->n][1];
		return true;
	}
	int fds[2];
	if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0)
		return false;
	/* A smaller pipe (the system's pipe-max-size or per-user limits) still
	 * works, with more wake-ups. */
	(void)fcntl(fds[1], F_SETPIPE_SZ, (int)PROXY_SPLICE_PIPE_BYTES);
	d->pipe_r = fds[0];
	d->pipe_w = fds[1];
	return true;
}

/* An empty pipe goes back to the spare list (or is closed when it is full);
 * one still holding bytes is closed, dropping them. */
static void release_pipe(struct proxy *px, struct splice_dir *d)
{
	if (d->pipe_r < 0)
		return;
	struct splice_pool *pool = &px->spare_pipes;
	if (d->fill == 0 && pool->n < PROXY_SPLICE_SPARE_PIPES) {
		pool->fds[pool->n][0] = d->pipe_r;
		pool->fds[pool->n][1] = d->pipe_w;
		pool->n++;
	} else {
		close(d->pipe_r);
		close(d->pipe_w);
	}
	d->pipe_r = d->pipe_w = -1;
	d->fill = 0;
}

/* ---- moving bytes ---- */

static bool fail(struct splice_relay *s, const char *what, int err)
{
	s->hooks->failed(s->owner, what, err);
	return false;
}

static bool shut_dst(struct splice_relay *s, struct splice_dir *d)
{
	if (shutdown(d->dst, SHUT_WR) < 0)
		return fail(s, "shutdown", uv_translate_sys_error(errno));
	d->done = true;
	return true;
}

/* Pipe -> destination. False: failed (reported). *blocked: the destination
 * took less than the pipe held. */
static bool drain_pipe(struct splice_relay *s, struct splice_dir *d, size_t *moved, bool *blocked)
{
	ssize_t n;
	do
		n = splice(d->pipe_r, NULL, d->dst, NULL, d->fill,
			   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno != EAGAIN)
		return fail(s, "write", uv_translate_sys_error(errno));
	if (n > 0) {
		d->fill -= (size_t)n;
		*moved += (size_t)n;
	}
	*blocked = d->fill > 0;
	return true;
}

/* Source -> (empty) pipe. False: failed (reported). *empty: nothing to read. */
static bool fill_pipe(struct splice_relay *s, struct splice_dir *d, bool *empty)
{
	if (!acquire_pipe(s->px, d))
		return fail(s, "pipe", uv_translate_sys_error(errno));
	ssize_t n;
	do
		n = splice(d->src, NULL, d->pipe_w, NULL, PROXY_SPLICE_PIPE_BYTES,
			   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
	while (n < 0 && errno == EINTR);
	*empty = false;
	if (n > 0)
		d->fill = (size_t)n;
	else if (n == 0)
		d->eof = true;
	else if (errno == EAGAIN)
		*empty = true;
	else
		return fail(s, "read", uv_translate_sys_error(errno));
	return true;
}

/* Moves bytes one way until the source is empty, the destination is full
 * or the burst is used up. False: failed (reported). */
static bool pump(struct splice_relay *s, struct splice_dir *d)
{
	size_t moved = 0;
	bool short_read = false;
	while (!d->done && moved < PROXY_SPLICE_BURST_BYTES) {
		if (d->fill > 0) {
			bool blocked;
			if (!drain_pipe(s, d, &moved, &blocked))
				return false;
			/* A short read emptied the socket (or filled the pipe's
			 * slots): the poll says when there is more, which saves
			 * a splice that would fail with EAGAIN per message. */
			if (blocked || short_read)
				return true;
		}
		if (d->eof)
			return shut_dst(s, d);
		bool empty;
		if (!fill_pipe(s, d, &empty))
			return false;
		if (empty)
			return true;
		short_read = d->fill < PROXY_SPLICE_PIPE_BYTES;
	}
	return true;
}

/* ---- readiness ---- */

static void on_ready(uv_poll_t *h, int status, int events);

/* Socket i is the source of dir[i] and the destination of the other. */
static int wanted_events(const struct splice_relay *s, int i)
{
	const struct splice_dir *out = &s->dir[i], *in = &s->dir[1 - i];
	int ev = 0;
	if (!out->eof && out->fill == 0)
		ev |= UV_READABLE;
	if (in->fill > 0)
		ev |= UV_WRITABLE;
	return ev;
}

/* Re-register only what changed (each change costs epoll_ctl calls). */
static bool update_interest(struct splice_relay *s)
{
	for (int i = 0; i < 2; i++) {
		int ev = wanted_events(s, i);
		if (ev == s->events[i])
			continue;
		int rc = ev != 0 ? uv_poll_start(&s->poll[i], ev, on_ready)
				 : uv_poll_stop(&s->poll[i]);
		if (rc < 0)
			return fail(s, "poll", rc);
		s->events[i] = ev;
	}
	return true;
}

/* After moving bytes: give back empty pipes, end or re-arm. */
static void settle(struct splice_relay *s)
{
	for (int i = 0; i < 2; i++)
		if (s->dir[i].fill == 0)
			release_pipe(s->px, &s->dir[i]);
	if (s->dir[CLIENT].done && s->dir[UPSTREAM].done) {
		s->hooks->finished(s->owner);
		return;
	}
	update_interest(s);
}

static int socket_error(int fd)
{
	int err = 0;
	socklen_t len = sizeof(err);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err == 0)
		return UV_EIO;
	return uv_translate_sys_error(err);
}

static void on_ready(uv_poll_t *h, int status, int events)
{
	struct splice_relay *s = h->data;
	int i = h == &s->poll[CLIENT] ? CLIENT : UPSTREAM;
	if (s->closing)
		return;
	if (status < 0) { /* POLLERR: libuv has stopped this handle */
		s->events[i] = 0;
		fail(s, "poll", status == UV_EBADF ? socket_error(s->dir[i].src) : status);
		return;
	}
	if ((events & UV_READABLE) && !pump(s, &s->dir[i]))
		return;
	if ((events & UV_WRITABLE) && !pump(s, &s->dir[1 - i]))
		return;
	settle(s);
}

/* ---- lifetime ---- */

static void on_poll_closed(uv_handle_t *h)
{
	struct splice_relay *s = h->data;
	if (--s->open_polls > 0)
		return;
	const struct splice_hooks *hooks = s->hooks;
	void *owner = s->owner;
	bool notify = s->closing; /* false: a failed start, the owner never saw it */
	free(s);
	if (notify)
		hooks->closed(owner);
}

struct splice_relay *splice_start(struct proxy *px, int client_fd, int upstream_fd,
				  const struct splice_hooks *hooks, void *owner)
{
	struct splice_relay *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	s->px = px;
	s->hooks = hooks;
	s->owner = owner;
	s->dir[CLIENT] = (struct splice_dir){ .src = client_fd, .dst = upstream_fd,
					      .pipe_r = -1, .pipe_w = -1 };
	s->dir[UPSTREAM] = (struct splice_dir){ .src = upstream_fd, .dst = client_fd,
						.pipe_r = -1, .pipe_w = -1 };
	int fds[2] = { client_fd, upstream_fd };
	for (int i = 0; i < 2; i++) {
		if (uv_poll_init_socket(px->loop, &s->poll[i], fds[i]) < 0)
			break;
		s->poll[i].data = s;
		s->open_polls++;
	}
	if (s->open_polls == 2) {
		for (int i = 0; i < 2; i++) {
			s->events[i] = UV_READABLE;
			if (uv_poll_start(&s->poll[i], UV_READABLE, on_ready) < 0)
				break;
			if (i == 1)
				return s;
		}
	}
	/* Undo quietly: the poll handles stop at once, memory goes with them. */
	if (s->open_polls == 0) {
		free(s);
		return NULL;
	}
	for (int i = 0; i < (int)s->open_polls; i++)
		uv_close((uv_handle_t *)&s->poll[i], on_poll_closed);
	return NULL;
}

void splice_close(struct splice_relay *s)
{
	if (s == NULL || s->closing)
		return;
	s->closing = true;
	for (int i = 0; i < 2; i++)
		release_pipe(s->px, &s->dir[i]);
	for (int i = 0; i < 2; i++)
		uv_close((uv_handle_t *)&s->poll[i], on_poll_closed);
}
