/* net.c - see net.h. */
#include "tests/unit/support/net.h"

#include <setjmp.h>
#include <stdarg.h>

#include <arpa/inet.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

struct sockaddr_storage tu_sockaddr(const char *ip)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1)
		s4->sin_family = AF_INET;
	else if (inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1)
		s6->sin6_family = AF_INET6;
	else
		fail_msg("bad test address %s", ip);
	return ss;
}

int tu_listen_loopback(uint16_t *port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	struct sockaddr_in sa = { .sin_family = AF_INET };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof(sa);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 16), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	*port = ntohs(sa.sin_port);
	return fd;
}

int tu_dial_loopback(uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(tu_set_timeouts(fd, TU_IO_TIMEOUT_S), 0);
	return fd;
}

int tu_set_timeouts(int fd, int seconds)
{
	struct timeval tv = { .tv_sec = seconds };
	int rc = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0)
		rc = -1;
	return rc;
}

bool tu_send_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n > 0) {
		ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
		if (w <= 0)
			return false;
		c += w;
		n -= (size_t)w;
	}
	return true;
}

size_t tu_read_exact(int fd, char *buf, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = recv(fd, buf + got, n - got, 0);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	return got;
}

void tu_echo_until_eof(int fd)
{
	char buf[16384];
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n <= 0 || !tu_send_all(fd, buf, (size_t)n))
			break;
	}
	shutdown(fd, SHUT_WR);
}

char *tu_read_all(int fd, size_t *out_len)
{
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap + 1);
	assert_non_null(buf);
	for (;;) {
		if (len == cap) {
			cap *= 2;
			buf = realloc(buf, cap + 1);
			assert_non_null(buf);
		}
		ssize_t n = recv(fd, buf + len, cap - len, 0);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	if (out_len)
		*out_len = len;
	return buf;
}

char *tu_exchange(uint16_t port, const char *req, size_t req_len)
{
	int fd = tu_dial_loopback(port);
	assert_true(tu_send_all(fd, req, req_len));
	char *resp = tu_read_all(fd, NULL);
	close(fd);
	return resp;
}

char *tu_exchange_str(uint16_t port, const char *req)
{
	return tu_exchange(port, req, strlen(req));
}

int tu_enter_own_netns(const char *who)
{
	if (geteuid() != 0) {
		fprintf(stderr, "SKIP %s: needs root\n", who);
		return 0;
	}
	if (unshare(CLONE_NEWNET) != 0) {
		fprintf(stderr, "SKIP %s: unshare(CLONE_NEWNET): %s\n", who, strerror(errno));
		return 0;
	}
	return 1;
}
