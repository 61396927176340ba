/* upstream.c - the upstream (corporate) proxy flags: which combinations are
 * allowed, the auth file, and the parsed settings handed to the proxy.
 *
 * The flags are read from argv only (never from the supervisor's or the
 * image's environment, which the sandbox's owner may control). The
 * credentials are read once at start from a root-owned private file, kept
 * only inside the proxy's settings (wiped at exit) and never logged, audited
 * or put into any child's environment. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proxy/proxy.h"
#include "supervisor/sup.h"

static int flag_needs(bool given, const char *flag, bool have, const char *needed)
{
	if (given && !have) {
		fprintf(stderr, "openshell-sandbox: %s requires %s\n", flag, needed);
		return -1;
	}
	return 0;
}

int sup_upstream_check_flags(const struct sup_options *opt)
{
	bool proxy = opt->upstream_proxy != NULL;
	bool any = proxy || opt->upstream_no_proxy || opt->upstream_auth_file ||
		   opt->upstream_auth_insecure || opt->upstream_by_hostname;
	if (any && !(opt->mode & SUP_MODE_NETWORK)) {
		fprintf(stderr, "openshell-sandbox: the --upstream-* flags configure the proxy; "
			"--mode process runs none\n");
		return -1;
	}
	if (flag_needs(opt->upstream_no_proxy != NULL, "--upstream-no-proxy", proxy,
		       "--upstream-proxy") ||
	    flag_needs(opt->upstream_by_hostname, "--upstream-proxy-connect-by-hostname", proxy,
		       "--upstream-proxy") ||
	    flag_needs(opt->upstream_auth_file != NULL, "--upstream-proxy-auth-file", proxy,
		       "--upstream-proxy") ||
	    flag_needs(opt->upstream_auth_insecure, "--upstream-proxy-auth-allow-insecure",
		       opt->upstream_auth_file != NULL, "--upstream-proxy-auth-file"))
		return -1;
	if (opt->upstream_auth_file != NULL && !opt->upstream_auth_insecure) {
		fprintf(stderr, "openshell-sandbox: --upstream-proxy-auth-file %s: the credentials "
			"would cross the network in clear text (Basic authentication to an http:// "
			"proxy); add --upstream-proxy-auth-allow-insecure to accept that\n",
			opt->upstream_auth_file);
		return -1;
	}
	return 0;
}

/* The opened file must be a regular file owned by root that nobody else
 * may read or write. */
static int check_private(int fd, const char *path, char *err, size_t errlen)
{
	struct stat st;
	if (fstat(fd, &st) != 0)
		snprintf(err, errlen, "%s: cannot stat: %s", path, strerror(errno));
	else if (!S_ISREG(st.st_mode))
		snprintf(err, errlen, "%s: not a regular file", path);
	else if (st.st_uid != 0)
		snprintf(err, errlen, "%s: must be owned by root (owner uid %u)", path,
			 (unsigned)st.st_uid);
	else if (st.st_mode & 077)
		snprintf(err, errlen, "%s: mode %04o gives group/other access; it must be 0600 "
			 "or stricter", path, (unsigned)(st.st_mode & 07777));
	else if ((unsigned long long)st.st_size > PROXY_UPSTREAM_MAX_AUTH_BYTES + 2)
		snprintf(err, errlen, "%s: larger than %u bytes", path,
			 PROXY_UPSTREAM_MAX_AUTH_BYTES);
	else
		return 0;
	return -1;
}

/* Read the whole (small) file into buf; returns the length or -1. */
static ssize_t read_auth_file(const char *path, char *buf, size_t cap, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	ssize_t total = check_private(fd, path, err, errlen) == 0 ? 0 : -1;
	while (total >= 0 && (size_t)total < cap) {
		ssize_t r = read(fd, buf + total, cap - (size_t)total);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(err, errlen, "%s: read error: %s", path, strerror(errno));
			total = -1;
		} else if (r == 0) {
			break;
		} else {
			total += r;
		}
	}
	close(fd);
	if (total >= 0 && (size_t)total >= cap) {
		snprintf(err, errlen, "%s: larger than %u bytes", path,
			 PROXY_UPSTREAM_MAX_AUTH_BYTES);
		total = -1;
	}
	return total;
}

int sup_upstream_prepare(struct sup_ctx *ctx)
{
	const struct sup_options *opt = &ctx->opt;
	if (opt->upstream_proxy == NULL)
		return 0;
	char err[768] = "";
	/* user:pass plus a line end, and one byte to notice a longer file */
	char cred[PROXY_UPSTREAM_MAX_AUTH_BYTES + 3];
	ssize_t cred_len = 0;
	if (opt->upstream_auth_file != NULL) {
		cred_len = read_auth_file(opt->upstream_auth_file, cred, sizeof(cred), err,
					  sizeof(err));
		if (cred_len < 0) {
			explicit_bzero(cred, sizeof(cred));
			sup_log(ctx, LOG_ERROR, "--upstream-proxy-auth-file %s", err);
			return -1;
		}
	}
	struct proxy_upstream_options o = {
		.url = opt->upstream_proxy,
		.no_proxy = opt->upstream_no_proxy,
		.credentials = opt->upstream_auth_file ? cred : NULL,
		.credentials_len = (size_t)cred_len,
		.connect_by_hostname = opt->upstream_by_hostname,
	};
	ctx->upstream = proxy_upstream_create(&o, err, sizeof(err));
	explicit_bzero(cred, sizeof(cred));
	if (ctx->upstream == NULL) {
		sup_log(ctx, LOG_ERROR, "%s", err); /* names the flag; never the credentials */
		return -1;
	}
	sup_log(ctx, LOG_INFO, "upstream proxy %s (%zu address%s), CONNECT by %s, %s, %s",
		proxy_upstream_name(ctx->upstream), proxy_upstream_address_count(ctx->upstream),
		proxy_upstream_address_count(ctx->upstream) == 1 ? "" : "es",
		opt->upstream_by_hostname ? "host name" : "checked address",
		opt->upstream_no_proxy ? "with a no-proxy list" : "no no-proxy list",
		opt->upstream_auth_file ? "Basic credentials" : "no credentials");
	return 0;
}

void sup_upstream_free(struct sup_ctx *ctx)
{
	proxy_upstream_free(ctx->upstream);
	ctx->upstream = NULL;
}
