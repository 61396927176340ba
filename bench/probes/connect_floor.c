/* connect_floor.c - the least a TCP-terminating CONNECT proxy can do, run by
 * `make bench` as the contender "floor" in the tunnel scenarios (P1, P2).
 *
 * One thread, level-triggered epoll, no policy, no audit, no limits: read the
 * CONNECT head, resolve the name once (cached for the run), dial, answer 200,
 * then splice(2) each direction through a 1 MiB pipe, as openshell's raw relay
 * does. What the floor loses against the direct path is what terminating TCP
 * twice costs on this kernel; what openshell loses against the floor is its own.
 * A bench tool, not part of the sandbox: it trusts its clients.
 *
 * With a third argument, a network namespace file (/proc/PID/ns/net), the
 * listener is opened in that namespace and the upstream sockets in the one
 * the floor was started in: the sandbox's topology (floor_common.h), so the
 * floor can be measured on openshell's own path as well.
 *
 *   cc -O2 -o floor bench/probes/connect_floor.c && ./floor 127.0.0.1 13132
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "floor_common.h"

enum { HEAD_MAX = 4096, PIPE_BYTES = 1 << 20 };

struct dir {
	int from, to;
	int pipe[2];
	size_t inpipe;
	bool eof, done;
};

struct conn;
struct end {
	struct conn *c;
	int fd;
	unsigned events; /* what epoll watches now */
};

struct conn {
	enum { HEAD, DIAL, RELAY, DEAD } state;
	struct conn *next_dead;
	struct end ends[2]; /* 0: client, 1: upstream */
	struct dir dirs[2]; /* 0: client -> upstream, 1: upstream -> client */
	char head[HEAD_MAX];
	size_t hlen, body; /* body: bytes after the head, sent upstream once dialed */
};

struct floor_state {
	int ep, listener;
	struct floor_names names;
	struct conn *dead; /* closed in this batch of events, freed after it */
};

static void conn_close(struct floor_state *s, struct conn *c)
{
	for (int i = 0; i < 2; i++) {
		if (c->ends[i].fd >= 0) {
			epoll_ctl(s->ep, EPOLL_CTL_DEL, c->ends[i].fd, NULL);
			close(c->ends[i].fd);
		}
		for (int k = 0; k < 2; k++)
			if (c->dirs[i].pipe[k] >= 0)
				close(c->dirs[i].pipe[k]);
	}
	c->state = DEAD;
	c->next_dead = s->dead;
	s->dead = c;
}

static void free_dead(void *state)
{
	struct floor_state *s = state;
	while (s->dead) {
		struct conn *c = s->dead;
		s->dead = c->next_dead;
		free(c);
	}
}

static int watch(struct floor_state *s, struct end *e, unsigned events)
{
	return floor_watch(s->ep, e->fd, &e->events, events, e);
}

/* In RELAY: read an end while its outgoing pipe has room, write it while its
 * incoming pipe holds bytes. */
static int rewatch(struct floor_state *s, struct conn *c)
{
	for (int i = 0; i < 2; i++) {
		const struct dir *out = &c->dirs[i], *in = &c->dirs[1 - i];
		unsigned ev = 0;
		if (!out->eof && out->inpipe < PIPE_BYTES)
			ev |= EPOLLIN;
		if (in->inpipe > 0)
			ev |= EPOLLOUT;
		if (watch(s, &c->ends[i], ev) < 0)
			return -1;
	}
	return 0;
}

/* Moves what it can; -1 on a socket error. */
static int pump(struct dir *d)
{
	for (;;) {
		bool moved = false;
		if (!d->eof && d->inpipe < PIPE_BYTES) {
			ssize_t r = splice(d->from, NULL, d->pipe[1], NULL, PIPE_BYTES - d->inpipe,
					   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (r > 0) {
				d->inpipe += (size_t)r;
				moved = true;
			} else if (r == 0) {
				d->eof = true;
			} else if (errno != EAGAIN) {
				return -1;
			}
		}
		if (d->inpipe > 0) {
			ssize_t w = splice(d->pipe[0], NULL, d->to, NULL, d->inpipe,
					   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (w > 0) {
				d->inpipe -= (size_t)w;
				moved = true;
			} else if (w < 0 && errno != EAGAIN) {
				return -1;
			}
		}
		if (!moved)
			break;
	}
	if (d->eof && d->inpipe == 0 && !d->done) {
		shutdown(d->to, SHUT_WR);
		d->done = true;
	}
	return 0;
}

static void relay(struct floor_state *s, struct conn *c)
{
	if (pump(&c->dirs[0]) < 0 || pump(&c->dirs[1]) < 0 ||
	    (c->dirs[0].done && c->dirs[1].done) || rewatch(s, c) < 0)
		conn_close(s, c);
}

static int dial(struct floor_state *s, struct conn *c)
{
	char host[FLOOR_HOST_MAX];
	unsigned short port;
	c->body = (size_t)((char *)memmem(c->head, c->hlen, "\r\n\r\n", 4) + 4 - c->head);
	c->ends[1].fd = floor_dial(&s->names, c->head, host, &port);
	if (c->ends[1].fd < 0)
		return -1;
	c->state = DIAL;
	if (watch(s, &c->ends[0], 0) < 0 || watch(s, &c->ends[1], EPOLLOUT) < 0)
		return -1;
	return 0;
}

static int open_pipe(struct dir *d)
{
	if (pipe2(d->pipe, O_NONBLOCK | O_CLOEXEC) < 0)
		return -1;
	fcntl(d->pipe[1], F_SETPIPE_SZ, PIPE_BYTES); /* best effort, as openshell */
	return 0;
}

static int dialed(struct floor_state *s, struct conn *c)
{
	static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
	static const char bad[] = "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n";
	int err = 0;
	socklen_t len = sizeof err;
	if (getsockopt(c->ends[1].fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
		floor_write_all(c->ends[0].fd, bad, sizeof bad - 1);
		return -1;
	}
	floor_write_all(c->ends[0].fd, ok, sizeof ok - 1);
	floor_write_all(c->ends[1].fd, c->head + c->body, c->hlen - c->body);
	if (open_pipe(&c->dirs[0]) < 0 || open_pipe(&c->dirs[1]) < 0)
		return -1;
	c->dirs[0].from = c->dirs[1].to = c->ends[0].fd;
	c->dirs[1].from = c->dirs[0].to = c->ends[1].fd;
	c->state = RELAY;
	return rewatch(s, c);
}

static int read_head(struct floor_state *s, struct conn *c)
{
	int r = floor_read_head(c->ends[0].fd, c->head, sizeof c->head, &c->hlen);
	return r > 0 ? dial(s, c) : r;
}

static void accept_all(void *state)
{
	struct floor_state *s = state;
	for (;;) {
		int fd = accept4(s->listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		struct conn *c = calloc(1, sizeof *c);
		if (!c) {
			close(fd);
			continue;
		}
		for (int i = 0; i < 2; i++) {
			c->ends[i] = (struct end){.c = c, .fd = -1, .events = (unsigned)-1};
			c->dirs[i].pipe[0] = c->dirs[i].pipe[1] = -1;
		}
		c->ends[0].fd = fd;
		floor_set_nodelay(fd);
		if (watch(s, &c->ends[0], EPOLLIN) < 0)
			conn_close(s, c);
	}
}

static void on_event(void *state, void *ptr, unsigned events)
{
	struct floor_state *s = state;
	struct end *e = ptr;
	struct conn *c = e->c;
	int rc = 0;
	if (c->state == DEAD)
		return;
	if (c->state == HEAD)
		rc = read_head(s, c);
	else if (c->state == DIAL && e == &c->ends[1])
		rc = dialed(s, c);
	else if (c->state == DIAL)
		rc = events & (EPOLLHUP | EPOLLERR) ? -1 : 0; /* the client gave up */
	else
		relay(s, c); /* closes c itself */
	if (rc < 0)
		conn_close(s, c);
}

int main(int argc, char **argv)
{
	static struct floor_state s;
	if (argc != 3 && argc != 4) {
		fprintf(stderr, "usage: %s IP PORT [LISTENER_NETNS_FILE]\n", argv[0]);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	s.listener = floor_listen(argc == 4 ? argv[3] : NULL, argv[1], argv[2]);
	s.ep = epoll_create1(EPOLL_CLOEXEC);
	static const struct floor_ops ops = {accept_all, on_event, free_dead};
	return floor_run("floor", s.ep, s.listener, &ops, &s);
}
