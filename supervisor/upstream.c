/* upstream.c - the upstream (corporate) proxy flags: which combinations are
 * allowed, the auth file, and the parsed settings handed to the proxy.
 *
 * The flags are read from argv only (never from the supervisor's or the
 * image's environment, which the sandbox's owner may control). The
 * credentials are read once at start from a root-owned private file, kept
 * only inside the proxy's settings (wiped at exit) and never logged, audited
 * or put into any child's environment. */
#include <stdio.h>
#include <string.h>

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

int sup_upstream_prepare(struct sup_ctx *ctx)
{
	const struct sup_options *opt = &ctx->opt;
	if (opt->upstream_proxy == NULL)
		return 0;
	char err[768] = "";
	/* user:pass plus a line end, and one byte more (the NUL, or notices a longer file) */
	char cred[PROXY_UPSTREAM_MAX_AUTH_BYTES + 3];
	ssize_t cred_len = 0;
	if (opt->upstream_auth_file != NULL) {
		cred_len = proxy_read_private_file(opt->upstream_auth_file, cred, sizeof(cred) - 1,
						   err, sizeof(err));
		if (cred_len < 0) {
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
