/* bridge.c - the client side: `ssh-proxy` (stdin/stdout <-> the socket) and
 * `connect` (OpenSSH ssh with that ProxyCommand).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ssh-relay/ssh_relay.h"

#define BRIDGE_BUF 65536
#define CONNECT_MAX_ARGS 64          /* ssh options + remote command words */
#define PROXY_COMMAND_MAX 8192

struct pipe_dir {                    /* src -> dst */
	int src, dst;
	bool src_is_sock, dst_is_sock;
	bool eof, done;
	size_t len, off;
	char buf[BRIDGE_BUF];
};

static int connect_unix(const char *spec)
{
	struct sockaddr_un sa;
	size_t len = strlen(spec);
	socklen_t salen;
	int fd;

	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	if (len == 0 || len >= sizeof sa.sun_path || (spec[0] == '@' && len < 2)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (spec[0] == '@') {
		memcpy(sa.sun_path + 1, spec + 1, len - 1);
		salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	} else {
		memcpy(sa.sun_path, spec, len);
		salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, salen) != 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static void finish_dir(struct pipe_dir *d)
{
	d->done = true;
	if (d->dst_is_sock)
		shutdown(d->dst, SHUT_WR);
	else
		close(d->dst);
}

/* Moves what it can without blocking; returns -1 on a hard error. */
static int step_dir(struct pipe_dir *d, short src_rev, short dst_rev)
{
	if (d->done)
		return 0;
	if (d->len == d->off && !d->eof && (src_rev & (POLLIN | POLLHUP | POLLERR))) {
		ssize_t n = read(d->src, d->buf, sizeof d->buf);
		if (n > 0) {
			d->len = (size_t)n;
			d->off = 0;
		} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
			d->eof = true;
		}
	}
	if (d->off < d->len && (dst_rev & (POLLOUT | POLLERR | POLLHUP))) {
		ssize_t w = d->dst_is_sock
			? send(d->dst, d->buf + d->off, d->len - d->off, MSG_NOSIGNAL)
			: write(d->dst, d->buf + d->off, d->len - d->off);
		if (w < 0 && errno != EAGAIN && errno != EINTR)
			return -1;
		if (w > 0)
			d->off += (size_t)w;
	}
	if (d->eof && d->off == d->len)
		finish_dir(d);
	return 0;
}

static short dir_src_events(const struct pipe_dir *d)
{
	return (!d->done && !d->eof && d->off == d->len) ? POLLIN : 0;
}

static short dir_dst_events(const struct pipe_dir *d)
{
	return (!d->done && d->off < d->len) ? POLLOUT : 0;
}

static int bridge_loop(struct pipe_dir *up, struct pipe_dir *down)
{
	/* Done when the server side has ended and its data reached stdout. */
	while (!down->done) {
		struct pollfd p[4] = {
			{ .fd = up->src, .events = dir_src_events(up) },
			{ .fd = up->dst, .events = dir_dst_events(up) },
			{ .fd = down->src, .events = dir_src_events(down) },
			{ .fd = down->dst, .events = dir_dst_events(down) },
		};
		for (int i = 0; i < 4; i++)
			if (p[i].events == 0)
				p[i].fd = -1;
		if (poll(p, 4, -1) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		/* up->dst and down->src are the same socket: merge its events. */
		short sock_rev = p[1].revents | p[2].revents;
		if (step_dir(up, p[0].revents, sock_rev) != 0 ||
		    step_dir(down, sock_rev, p[3].revents) != 0)
			return -1;
	}
	return 0;
}

int ssh_relay_bridge(const char *socket_path)
{
	struct pipe_dir *up, *down;
	int fd, rc;
	int in_fl = fcntl(STDIN_FILENO, F_GETFL), out_fl = fcntl(STDOUT_FILENO, F_GETFL);

	signal(SIGPIPE, SIG_IGN);
	if (socket_path == NULL)
		socket_path = SSH_RELAY_DEFAULT_SOCKET;
	fd = connect_unix(socket_path);
	if (fd < 0) {
		fprintf(stderr, "openshell-sandbox ssh-proxy: connect %s: %s\n", socket_path,
			strerror(errno));
		return 255;
	}
	up = calloc(1, sizeof *up);
	down = calloc(1, sizeof *down);
	if (up == NULL || down == NULL || in_fl < 0 || out_fl < 0 ||
	    fcntl(fd, F_SETFL, O_NONBLOCK) != 0 ||
	    fcntl(STDIN_FILENO, F_SETFL, in_fl | O_NONBLOCK) != 0 ||
	    fcntl(STDOUT_FILENO, F_SETFL, out_fl | O_NONBLOCK) != 0) {
		fprintf(stderr, "openshell-sandbox ssh-proxy: setup: %s\n", strerror(errno));
		free(up);
		free(down);
		close(fd);
		return 255;
	}
	*up = (struct pipe_dir){ .src = STDIN_FILENO, .dst = fd, .dst_is_sock = true };
	*down = (struct pipe_dir){ .src = fd, .dst = STDOUT_FILENO, .src_is_sock = true };
	rc = bridge_loop(up, down);
	if (rc != 0)
		fprintf(stderr, "openshell-sandbox ssh-proxy: %s\n", strerror(errno));
	/* The descriptions may be shared (a terminal): leave them as found. */
	(void)fcntl(STDIN_FILENO, F_SETFL, in_fl);
	(void)fcntl(STDOUT_FILENO, F_SETFL, out_fl);
	free(up);
	free(down);
	close(fd);
	return rc == 0 ? 0 : 255;
}

static int append(char *out, size_t cap, size_t *len, const char *piece)
{
	size_t n = strlen(piece);
	if (*len + n + 1 > cap)
		return -1;
	memcpy(out + *len, piece, n + 1);
	*len += n;
	return 0;
}

/* Appends s single-quoted for the shell that runs ProxyCommand, with '%'
 * doubled because ssh expands %-tokens in ProxyCommand first. */
static int append_quoted(char *out, size_t cap, size_t *len, const char *s)
{
	char one[2] = { 0, 0 };

	if (append(out, cap, len, "'") != 0)
		return -1;
	for (const char *p = s; *p; p++) {
		const char *piece = one;
		if (*p == '\'')
			piece = "'\\''";
		else if (*p == '%')
			piece = "%%";
		else
			one[0] = *p;
		if (append(out, cap, len, piece) != 0)
			return -1;
	}
	return append(out, cap, len, "'");
}

static int build_proxy_command(char *out, size_t cap, const char *self, const char *sock)
{
	size_t len = 0;

	out[0] = '\0';
	if (append_quoted(out, cap, &len, self) != 0 ||
	    append(out, cap, &len, " ssh-proxy --socket ") != 0)
		return -1;
	return append_quoted(out, cap, &len, sock);
}

int ssh_relay_connect_exec(const char *self_exe, const char *socket_path, char *const *cmd)
{
	static const char *const fixed[] = {
		"-o", "StrictHostKeyChecking=no",     /* the host key is ephemeral */
		"-o", "UserKnownHostsFile=/dev/null",
		"-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "CheckHostIP=no",
		"-o", "UpdateHostKeys=no",
		"-o", "LogLevel=ERROR",
	};
	char proxy[PROXY_COMMAND_MAX];
	char proxy_opt[PROXY_COMMAND_MAX + 16];
	const char *argv[CONNECT_MAX_ARGS + 1];
	size_t n = 0;

	if (self_exe == NULL || socket_path == NULL ||
	    build_proxy_command(proxy, sizeof proxy, self_exe, socket_path) != 0) {
		fprintf(stderr, "openshell-sandbox connect: path too long\n");
		return 255;
	}
	snprintf(proxy_opt, sizeof proxy_opt, "ProxyCommand=%s", proxy);
	argv[n++] = "ssh";
	argv[n++] = "-o";
	argv[n++] = proxy_opt;
	for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
		argv[n++] = fixed[i];
	argv[n++] = "--";
	argv[n++] = "sandbox@openshell-sandbox";
	for (size_t i = 0; cmd && cmd[i]; i++) {
		if (n >= CONNECT_MAX_ARGS) {
			fprintf(stderr, "openshell-sandbox connect: more than %d arguments\n",
				CONNECT_MAX_ARGS);
			return 255;
		}
		argv[n++] = cmd[i];
	}
	argv[n] = NULL;
	execvp("ssh", (char *const *)argv);
	fprintf(stderr, "openshell-sandbox connect: exec ssh: %s\n", strerror(errno));
	return 255;
}
