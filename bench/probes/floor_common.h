/* floor_common.h - what the two floor relays (connect_floor.c, tls_floor.c)
 * share: names resolved once per run, the listener (in this network
 * namespace or in another one), and small socket helpers. Bench tools, not
 * part of the sandbox: static functions, included by each probe. */
#ifndef FLOOR_COMMON_H
#define FLOOR_COMMON_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

enum { FLOOR_NAMES_MAX = 32, FLOOR_MAX_EVENTS = 64 };

struct floor_names {
	struct {
		char host[300];
		struct sockaddr_in addr;
	} name[FLOOR_NAMES_MAX];
	int n;
};

/* host's IPv4 address, looked up once per run (the last slot is reused
 * beyond FLOOR_NAMES_MAX names). */
static const struct sockaddr_in *floor_resolve(struct floor_names *c, const char *host)
{
	for (int i = 0; i < c->n; i++)
		if (strcmp(c->name[i].host, host) == 0)
			return &c->name[i].addr;
	struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res;
	if (getaddrinfo(host, NULL, &hints, &res) != 0)
		return NULL;
	int k = c->n < FLOOR_NAMES_MAX ? c->n++ : FLOOR_NAMES_MAX - 1;
	snprintf(c->name[k].host, sizeof c->name[k].host, "%s", host);
	memcpy(&c->name[k].addr, res->ai_addr, sizeof c->name[k].addr);
	freeaddrinfo(res);
	return &c->name[k].addr;
}

/* Best effort: a broken socket is noticed by the caller's next step. */
static void floor_write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

static void floor_set_nodelay(int fd)
{
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* More of the CONNECT head into head (cap bytes with the NUL): 1 once its
 * blank line is in, 0 to wait for more, -1 on EOF, an error or overflow. */
static int floor_read_head(int fd, char *head, size_t cap, size_t *hlen)
{
	ssize_t r = read(fd, head + *hlen, cap - 1 - *hlen);
	if (r < 0 && errno == EAGAIN)
		return 0;
	if (r <= 0)
		return -1;
	*hlen += (size_t)r;
	head[*hlen] = '\0';
	if (memmem(head, *hlen, "\r\n\r\n", 4))
		return 1;
	return *hlen + 1 < cap ? 0 : -1;
}

/* Dials the target of a CONNECT head ("CONNECT host:port HTTP/1.x"),
 * nonblocking, TCP_NODELAY: the socket, its connect in progress, or -1.
 * host (FLOOR_HOST_MAX bytes) gets the host, *port the port. */
enum { FLOOR_HOST_MAX = 300 };
static int floor_dial(struct floor_names *names, const char *head, char *host,
		      unsigned short *port)
{
	if (sscanf(head, "CONNECT %299s HTTP/1.", host) != 1)
		return -1;
	char *colon = strrchr(host, ':');
	if (!colon)
		return -1;
	*colon = '\0';
	*port = (unsigned short)atoi(colon + 1);
	const struct sockaddr_in *a = floor_resolve(names, host);
	if (!a)
		return -1;
	struct sockaddr_in to = *a;
	to.sin_port = htons(*port);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	floor_set_nodelay(fd);
	if (connect(fd, (struct sockaddr *)&to, sizeof to) < 0 && errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	return fd;
}

static int floor_listen_on(const char *ip, const char *port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(port))};
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || inet_pton(AF_INET, ip, &a.sin_addr) != 1 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
	    bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 4096) < 0)
		return -1;
	return fd;
}

/* The listener in the network namespace at ns_path (NULL: this one), then
 * back to our own, where the upstream sockets are opened: the sandbox's
 * topology (openshell listens in the sandbox namespace and dials from the
 * container's). */
static int floor_listen(const char *ns_path, const char *ip, const char *port)
{
	if (ns_path == NULL)
		return floor_listen_on(ip, port);
	int own = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	int other = open(ns_path, O_RDONLY | O_CLOEXEC);
	int fd = -1;
	if (own >= 0 && other >= 0 && setns(other, CLONE_NEWNET) == 0) {
		fd = floor_listen_on(ip, port);
		if (setns(own, CLONE_NEWNET) != 0) {
			perror("floor: back to the starting namespace");
			exit(1);
		}
	}
	if (own >= 0)
		close(own);
	if (other >= 0)
		close(other);
	return fd;
}

/* The epoll interest in fd becomes `events`; *cur is the current one,
 * (unsigned)-1 while fd is not added yet. ptr comes back with its events. */
static int floor_watch(int ep, int fd, unsigned *cur, unsigned events, void *ptr)
{
	if (*cur == events)
		return 0;
	struct epoll_event ev = {.events = events, .data.ptr = ptr};
	int op = *cur == (unsigned)-1 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
	if (epoll_ctl(ep, op, fd, &ev) < 0)
		return -1;
	*cur = events;
	return 0;
}

struct floor_ops {
	void (*accept_all)(void *state);
	void (*on_event)(void *state, void *ptr, unsigned events);
	void (*after_batch)(void *state); /* frees what the batch closed */
};

/* The relay's loop, for ever: the listener's readiness (data.ptr NULL) goes
 * to accept_all, every other event to on_event. Returns 1 on a failure. */
static int floor_run(const char *name, int ep, int listener, const struct floor_ops *ops,
		     void *state)
{
	struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
	if (listener < 0 || ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, listener, &lev) < 0) {
		fprintf(stderr, "%s: listen: %s\n", name, strerror(errno));
		return 1;
	}
	for (;;) {
		struct epoll_event evs[FLOOR_MAX_EVENTS];
		int n = epoll_wait(ep, evs, FLOOR_MAX_EVENTS, -1);
		if (n < 0 && errno != EINTR) {
			fprintf(stderr, "%s: epoll_wait: %s\n", name, strerror(errno));
			return 1;
		}
		for (int i = 0; i < n; i++) {
			if (evs[i].data.ptr == NULL)
				ops->accept_all(state);
			else
				ops->on_event(state, evs[i].data.ptr, evs[i].events);
		}
		ops->after_batch(state);
	}
}

#endif
