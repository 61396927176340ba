/* ssh.c - wires the embedded SSH server (ssh-relay/) to the supervisor: session
 * children are spawned exactly like the workload (same env builder, netns,
 * identity, Landlock, seccomp), forwards are dialled inside the sandbox netns,
 * and reaped pids are reported back. Also the `connect` / `ssh-proxy`
 * subcommands.
 */
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ssh-relay/ssh_relay.h"
#include "supervisor/sup.h"

extern char **environ;

#define SSH_ENV_MAX 8192u

/* The supervisor's environment with the client's accepted variables on top
 * (later entries win in child_env_build; the forced variables win over both). */
static char **merge_env(char *const *base, char *const *client)
{
	size_t nb = 0, nc = 0;
	while (base && base[nb])
		nb++;
	while (client && client[nc])
		nc++;
	if (nb + nc >= SSH_ENV_MAX)
		return NULL;
	char **out = calloc(nb + nc + 1, sizeof *out);
	if (!out)
		return NULL;
	size_t n = 0;
	for (size_t i = 0; i < nb; i++) {
		const char *eq = strchr(base[i], '=');
		bool overridden = false;
		for (size_t j = 0; eq && j < nc; j++)
			if (strncmp(client[j], base[i], (size_t)(eq - base[i]) + 1) == 0)
				overridden = true;
		if (!overridden)
			out[n++] = base[i];
	}
	for (size_t j = 0; j < nc; j++)
		out[n++] = client[j];
	out[n] = NULL;
	return out;
}

static pid_t ssh_spawn(void *ud, const struct ssh_relay_session_req *req, char *err,
		       size_t errlen)
{
	struct sup_ctx *ctx = ud;
	char *sh_argv[] = { "/bin/sh", "-c", (char *)req->command, NULL };
	char *shell_pty[] = { "/bin/bash", "-i", NULL };
	char *shell_pipe[] = { "/bin/bash", NULL };
	char **merged = merge_env(environ, req->client_env);
	if (!merged) {
		snprintf(err, errlen, "environment too large");
		return -1;
	}
	int stdio[3] = { req->stdin_fd, req->stdout_fd, req->stderr_fd };
	if (req->pty && fchown(req->stdin_fd, ctx->id.uid, (gid_t)-1) != 0)
		sup_log(ctx, LOG_WARN, "ssh: chown of the pty slave: %s", strerror(errno));
	struct sandboxed_child child = {
		.argv = req->command ? sh_argv : req->pty ? shell_pty : shell_pipe,
		.inherited = merged,
		.term = req->pty ? req->term : "dumb",
		.stdio = stdio, .new_session = true, .controlling_tty = req->pty,
	};
	pid_t pid = sup_spawn_sandboxed(ctx, &child, err, errlen);
	free(merged);
	return pid;
}

struct dial {
	const char *host;
	uint16_t port;
};

static int dial_inside(void *arg)
{
	const struct dial *d = arg;
	struct sockaddr_storage ss;
	socklen_t len;
	memset(&ss, 0, sizeof ss);
	if (strchr(d->host, ':')) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons(d->port);
		if (inet_pton(AF_INET6, d->host, &a->sin6_addr) != 1)
			return -EINVAL;
		len = sizeof *a;
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		a->sin_family = AF_INET;
		a->sin_port = htons(d->port);
		if (inet_pton(AF_INET, d->host, &a->sin_addr) != 1)
			return -EINVAL;
		len = sizeof *a;
	}
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int one = 1;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (connect(fd, (struct sockaddr *)&ss, len) != 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

static int ssh_connect_inside(void *ud, const char *host, uint16_t port)
{
	struct sup_ctx *ctx = ud;
	struct dial d = { .host = host, .port = port };
	if (!ctx->have_ns)
		return dial_inside(&d);   /* process-only mode: we are in its netns */
	int rc = netns_run_inside(&ctx->ns, dial_inside, &d);
	return rc == -1 ? -EIO : rc;   /* -1 alone: could not enter the netns */
}

static void ssh_log(void *ud, int level, const char *msg)
{
	sup_log(ud, level, "%s", msg);
}

int sup_ssh_start(struct sup_ctx *ctx)
{
	if (!ctx->opt.ssh_socket_path)
		return 0;
	struct ssh_relay_config cfg = {
		.socket_path = ctx->opt.ssh_socket_path,
		.authorized_keys = ctx->opt.ssh_authorized_keys,
		.host = { .spawn = ssh_spawn, .connect_inside = ssh_connect_inside,
			  .log = ssh_log, .ud = ctx },
	};
	char err[512] = "";
	ctx->ssh = ssh_relay_start(&cfg, err, sizeof err);
	if (!ctx->ssh) {
		sup_log(ctx, LOG_ERROR, "ssh server: %s", err);
		return -1;
	}
	return 0;
}

void sup_ssh_stop(struct sup_ctx *ctx)
{
	ssh_relay_stop(ctx->ssh);
	ctx->ssh = NULL;
}

void sup_ssh_child_exited(struct sup_ctx *ctx, pid_t pid, int status)
{
	if (ctx->ssh)
		ssh_relay_child_exited(ctx->ssh, pid, status);
}

/* connect [--socket P] [-- CMD...] | ssh-proxy --socket P */
int sup_ssh_subcommand(int argc, char **argv)
{
	const char *sock = getenv("OPENSHELL_SSH_SOCKET_PATH");
	int i = 1;
	if (!sock || !*sock)
		sock = SSH_RELAY_DEFAULT_SOCKET;
	for (; i < argc; i++) {
		if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc) {
			sock = argv[++i];
		} else if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		} else {
			break;
		}
	}
	if (strcmp(argv[0], "ssh-proxy") == 0) {
		if (i != argc) {
			fprintf(stderr, "usage: openshell-sandbox ssh-proxy --socket P\n");
			return 2;
		}
		return ssh_relay_bridge(sock);
	}
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n <= 0) {
		fprintf(stderr, "openshell-sandbox connect: /proc/self/exe: %s\n", strerror(errno));
		return 255;
	}
	self[n] = '\0';
	return ssh_relay_connect_exec(self, sock, argv + i);
}
