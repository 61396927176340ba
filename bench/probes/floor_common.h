/* floor_common.h - what the two floor relays (connect_floor.c, tls_floor.c)
 * share: names resolved once per run, the listener (in this network
 * namespace or in another one), and small socket helpers. Bench tools, not
 * part of the sandbox: static functions, included by each probe. */
#ifndef FLOOR_COMMON_H
#define FLOOR_COMMON_H

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum { FLOOR_NAMES_MAX = 32 };

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

#endif
