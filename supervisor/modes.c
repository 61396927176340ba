/* modes.c - the sidecar topology: a network-only supervisor (proxy, no
 * workload) and a process-only one (workload, no namespace of its own) that
 * meet through a shared TLS directory and its .ready file. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "supervisor/sup.h"

#define READY_POLL_MS 20

/* "ADDR:PORT" (IPv4) into ip/port. */
int sup_parse_listen(const char *s, char *ip, size_t iplen, uint16_t *port)
{
	const char *colon = strrchr(s, ':');
	if (!colon || colon == s || (size_t)(colon - s) >= iplen)
		return -1;
	char *end = NULL;
	errno = 0;
	unsigned long p = strtoul(colon + 1, &end, 10);
	if (errno || !end || *end || p == 0 || p > 65535 || colon[1] == '+' || colon[1] == '-')
		return -1;
	memcpy(ip, s, (size_t)(colon - s));
	ip[colon - s] = '\0';
	*port = (uint16_t)p;
	return 0;
}

/* The proxy URL given to a process-only supervisor: http://HOST:PORT. */
int sup_check_proxy_url(const char *url, char *err, size_t errlen)
{
	static const char scheme[] = "http://";
	char host[256];
	uint16_t port;
	if (!url) {
		snprintf(err, errlen, "--mode process needs --proxy-url http://HOST:PORT");
		return -1;
	}
	if (strlen(url) > 255 || strncmp(url, scheme, sizeof scheme - 1) != 0 ||
	    sup_parse_listen(url + sizeof scheme - 1, host, sizeof host, &port) != 0 ||
	    strpbrk(host, "/@?# ") != NULL) {
		snprintf(err, errlen, "--proxy-url '%s' is not http://HOST:PORT", url);
		return -1;
	}
	return 0;
}

static void ready_path(const struct sup_ctx *ctx, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", ctx->opt.tls_dir, SUP_READY_FILE);
}

/* Written only after every listener accepts; atomically (rename), so a
 * reader never sees a half-written file. */
int sup_write_ready(struct sup_ctx *ctx)
{
	char path[4096], tmp[4200];
	ready_path(ctx, path, sizeof path);
	snprintf(tmp, sizeof tmp, "%s.%d.tmp", path, (int)getpid());
	if (mkdir(ctx->opt.tls_dir, 0755) != 0 && errno != EEXIST) {
		sup_log(ctx, LOG_ERROR, "creating %s: %s", ctx->opt.tls_dir, strerror(errno));
		return -1;
	}
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0) {
		sup_log(ctx, LOG_ERROR, "writing %s: %s", tmp, strerror(errno));
		return -1;
	}
	char body[128];
	int n = snprintf(body, sizeof body, "%s\n", ctx->proxy_url);
	bool ok = write(fd, body, (size_t)n) == n;
	ok = (close(fd) == 0) && ok;
	if (!ok || rename(tmp, path) != 0) {
		sup_log(ctx, LOG_ERROR, "writing %s: %s", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	ctx->ready_written = true;
	sup_log(ctx, LOG_INFO, "ready: %s", path);
	return 0;
}

void sup_remove_ready(struct sup_ctx *ctx)
{
	char path[4096];
	if (!ctx->ready_written)
		return;
	ready_path(ctx, path, sizeof path);
	if (unlink(path) != 0 && errno != ENOENT)
		sup_log(ctx, LOG_WARN, "removing %s: %s", path, strerror(errno));
}

int sup_wait_ready(struct sup_ctx *ctx)
{
	char path[4096];
	ready_path(ctx, path, sizeof path);
	struct timespec nap = { 0, READY_POLL_MS * 1000000L };
	long waited = 0, limit = (long)ctx->opt.ready_timeout_secs * 1000;
	while (access(path, F_OK) != 0) {
		if (waited >= limit) {
			sup_log(ctx, LOG_ERROR, "the network sidecar is not ready: %s did not appear "
				"within %us", path, ctx->opt.ready_timeout_secs);
			return -1;
		}
		nanosleep(&nap, NULL);
		waited += READY_POLL_MS;
	}
	return 0;
}
