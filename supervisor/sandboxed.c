/* sandboxed.c - the ONE way a child enters the sandbox: the workload and every
 * SSH/exec session child are started here, with the same environment builder,
 * the same bind mounts (the CA bundle over the system bundles, the policy-DNS
 * resolv.conf), the same namespace, identity, Landlock and seccomp. Keeping a
 * single path is what stops the proxy and CA settings from going missing in
 * one kind of child (the reference's most repeated regression).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proxy/proxy.h"
#include "supervisor/sup.h"

#define CRED_ENV_ENTRY_MAX 512

/* A process-only sidecar trusts the CA files its network sidecar wrote into
 * the shared TLS dir, when both exist. */
void sup_find_sidecar_ca_files(struct sup_ctx *ctx)
{
	snprintf(ctx->ca_cert_path, sizeof ctx->ca_cert_path, "%s/%s", ctx->opt.tls_dir,
		 PROXY_CA_CERT_FILE);
	snprintf(ctx->ca_bundle_path, sizeof ctx->ca_bundle_path, "%s/%s", ctx->opt.tls_dir,
		 PROXY_CA_BUNDLE_FILE);
	if (access(ctx->ca_cert_path, R_OK) != 0 || access(ctx->ca_bundle_path, R_OK) != 0)
		ctx->ca_cert_path[0] = ctx->ca_bundle_path[0] = '\0';
}

/* NAME=openshell:resolve:env:NAME for every credential: the agent only ever
 * sees placeholders; the proxy swaps in real values for hosts in scope. */
int sup_build_credential_env(struct sup_ctx *ctx)
{
	size_t n = ctx->creds ? proxy_credentials_count(ctx->creds) : 0;
	if (n == 0)
		return 0;
	ctx->cred_env = calloc(n + 1, sizeof *ctx->cred_env);
	if (!ctx->cred_env)
		return -1;
	for (size_t i = 0; i < n; i++) {
		char entry[CRED_ENV_ENTRY_MAX];
		if (proxy_credentials_env_entry(ctx->creds, i, entry, sizeof entry) == 0 ||
		    !(ctx->cred_env[i] = strdup(entry)))
			return -1;
	}
	return 0;
}

/* The combined bundle over every system bundle path that exists, so a child
 * that scrubs its environment (env -i) still trusts the proxy. */
static size_t add_ca_binds(const struct sup_ctx *ctx, struct sup_bind *out, size_t cap)
{
	size_t n = 0;
	const char *const *sys = proxy_system_bundle_paths();
	for (size_t i = 0; ctx->ca_bundle_path[0] && sys[i] && n < cap; i++)
		out[n++] = (struct sup_bind){ .src = ctx->ca_bundle_path, .dst = sys[i],
					      .optional = true };
	return n;
}

/* The sandbox's resolv.conf names the policy DNS responder (any address
 * works, port 53 is redirected; the proxy address reads best in logs). It is bound
 * read-only over /etc/resolv.conf in the child's own mount namespace and
 * unlinked once the child has exec'd; the container's file is never touched.
 * Returns 0 and the path, or -1. */
static int write_resolv_conf(struct sup_ctx *ctx, char *path, size_t len)
{
	snprintf(path, len, "%s/openshell-resolv-XXXXXX",
		 access("/run", W_OK) == 0 ? "/run" : "/tmp");
	int fd = mkstemp(path);
	if (fd < 0) {
		sup_log(ctx, LOG_ERROR, "sandbox resolv.conf %s: %s", path, strerror(errno));
		return -1;
	}
	char text[128];
	int n = snprintf(text, sizeof text, "# openshell-sandbox policy DNS\nnameserver %s\n",
			 ctx->ns.proxy_ip);
	bool ok = fchmod(fd, 0644) == 0 && write(fd, text, (size_t)n) == n;
	ok = close(fd) == 0 && ok;
	if (!ok) {
		sup_log(ctx, LOG_ERROR, "sandbox resolv.conf %s: %s", path, strerror(errno));
		unlink(path);
		return -1;
	}
	return 0;
}

pid_t sup_spawn_sandboxed(struct sup_ctx *ctx, const struct sandboxed_child *c, char *err,
			  size_t errlen)
{
	struct child_env_params ep = {
		.proxy_url = ctx->proxy_url[0] ? ctx->proxy_url : NULL,
		.ca_cert_path = ctx->ca_cert_path[0] ? ctx->ca_cert_path : NULL,
		.ca_bundle_path = ctx->ca_bundle_path[0] ? ctx->ca_bundle_path : NULL,
		.home = ctx->id.home,
		.user = ctx->id.user,
		.term = c->term,
		.extra = ctx->cred_env,
		.disable_git_ssh = !(ctx->opt.mode & SUP_MODE_NETWORK),
	};
	struct sup_bind binds[SUP_MAX_BINDS];
	size_t n_binds = add_ca_binds(ctx, binds, SUP_MAX_BINDS - 1);
	char resolv[64] = "";
	if (ctx->have_ns) {
		if (write_resolv_conf(ctx, resolv, sizeof resolv) != 0) {
			snprintf(err, errlen, "writing the sandbox resolv.conf failed");
			return -1;
		}
		binds[n_binds++] = (struct sup_bind){ .src = resolv, .dst = "/etc/resolv.conf",
						      .optional = true };
	}
	char **envp = child_env_build(c->inherited, &ep);
	pid_t pid = -1;
	if (!envp) {
		snprintf(err, errlen, "building the child environment failed");
	} else {
		struct spawn_request req = {
			.argv = c->argv, .envp = envp, .cwd = ctx->opt.workdir,
			.id = &ctx->id, .ns = ctx->have_ns ? &ctx->ns : NULL,
			.new_process_group = true, .new_session = c->new_session,
			.stdio = c->stdio, .controlling_tty = c->controlling_tty,
			.take_terminal = c->take_terminal,
			.landlock = ctx->landlock, .seccomp = ctx->seccomp,
			.binds = binds, .n_binds = n_binds,
		};
		pid = sup_spawn(&req, err, errlen);
	}
	child_env_free(envp);
	if (resolv[0]) /* the child has mounted it (it exec'd) or is gone */
		unlink(resolv);
	return pid;
}
