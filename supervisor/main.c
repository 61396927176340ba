/* main.c - openshell-sandbox entry point: wires policy, netns, proxy and the
 * workload together and performs PID 1 duties until the workload exits. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "policy/policy.h"
#include "proxy/proxy.h"
#include "supervisor/sup.h"

extern char **environ;

static int policy_check_cmd(int argc, char **argv)
{
	if (argc < 3 || strcmp(argv[1], "check") != 0) {
		fprintf(stderr, "usage: openshell-sandbox policy check FILE...\n");
		return 2;
	}
	int rc = 0;
	for (int i = 2; i < argc; i++) {
		struct policy_errors errs = { 0 };
		struct policy *p = policy_load_file(argv[i], &errs);
		if (p) {
			printf("ok %s\n", argv[i]);
		} else {
			for (size_t e = 0; e < errs.n; e++)
				fprintf(stderr, "%s\n", errs.msgs[e]);
			rc = 1;
		}
		policy_free(p);
		policy_errors_free(&errs);
	}
	return rc;
}

static int load_policy(struct sup_ctx *ctx)
{
	struct policy_errors errs = { 0 };
	ctx->policy = ctx->opt.policy_data ? policy_load_file(ctx->opt.policy_data, &errs)
					   : policy_load_default(&errs);
	if (!ctx->policy) {
		for (size_t i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.msgs[i]);
		sup_log(ctx, LOG_ERROR, "policy %s rejected; not starting",
			ctx->opt.policy_data ? ctx->opt.policy_data : "<embedded default>");
	}
	policy_errors_free(&errs);
	if (!ctx->policy)
		return -1;
	if (ctx->opt.policy_rules)
		sup_log(ctx, LOG_WARN, "--policy-rules %s ignored: the YAML policy is evaluated natively",
			ctx->opt.policy_rules);
	for (size_t i = 0; i < ctx->policy->n_rules; i++) {
		if (ctx->policy->rules[i].n_binaries) {
			sup_log(ctx, LOG_WARN, "policy binaries are not enforced yet: endpoints are "
				"allowed for every process in the sandbox");
			break;
		}
	}
	return 0;
}

static int open_audit(struct sup_ctx *ctx)
{
	if (!ctx->opt.audit_log) {
		ctx->audit = stderr;
		return 0;
	}
	char err[256];
	int fd = sup_open_audit_file(ctx->opt.audit_log, err, sizeof err);
	if (fd < 0) {
		sup_log(ctx, LOG_ERROR, "--audit-log %s: %s", ctx->opt.audit_log, err);
		return -1;
	}
	ctx->audit = fdopen(fd, "a");
	if (!ctx->audit) {
		sup_log(ctx, LOG_ERROR, "--audit-log %s: %s", ctx->opt.audit_log, strerror(errno));
		close(fd);
		return -1;
	}
	ctx->audit_owned = true;
	/* Without it (out of memory, or setvbuf refusing) stdio's default
	 * buffer still works, with more writes per iteration. */
	ctx->audit_buf = malloc(SUP_AUDIT_BUFFER_BYTES);
	if (ctx->audit_buf &&
	    setvbuf(ctx->audit, ctx->audit_buf, _IOFBF, SUP_AUDIT_BUFFER_BYTES) != 0) {
		free(ctx->audit_buf);
		ctx->audit_buf = NULL;
	}
	return 0;
}

static void raise_nofile_limit(struct sup_ctx *ctx)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	/* Room for PROXY_MAX_CONNECTIONS; a hard limit is raised only with
	 * CAP_SYS_RESOURCE. */
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < PROXY_NOFILE_WANTED) {
		struct rlimit want = { .rlim_cur = PROXY_NOFILE_WANTED,
				       .rlim_max = PROXY_NOFILE_WANTED };
		if (setrlimit(RLIMIT_NOFILE, &want) == 0)
			return;
		sup_log(ctx, LOG_INFO, "RLIMIT_NOFILE hard limit %llu is below the %u wanted for "
			"%u proxy connections (raising it: %s); descriptors run out first",
			(unsigned long long)rl.rlim_max, PROXY_NOFILE_WANTED,
			PROXY_MAX_CONNECTIONS, strerror(errno));
	}
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		sup_log(ctx, LOG_WARN, "raising RLIMIT_NOFILE: %s", strerror(errno));
}

/* ---- event loop callbacks ---- */

static void kill_workload_group(struct sup_ctx *ctx, int sig)
{
	if (ctx->workload_pid > 0 && kill(-ctx->workload_pid, sig) != 0 && errno != ESRCH)
		sup_log(ctx, LOG_WARN, "kill(-%d, %d): %s", (int)ctx->workload_pid, sig, strerror(errno));
}

static void begin_shutdown(struct sup_ctx *ctx);

static void on_forward_signal(uv_signal_t *h, int signum)
{
	struct sup_ctx *ctx = h->data;
	if (signum == SIGHUP && ctx->opt.policy_data) {
		sup_reload_policy(ctx, "SIGHUP");
		return;
	}
	if (!(ctx->opt.mode & SUP_MODE_PROCESS)) {
		sup_log(ctx, LOG_INFO, "signal %d: stopping the network sidecar", signum);
		ctx->exit_code = 0;
		begin_shutdown(ctx);
		return;
	}
	sup_log(ctx, LOG_INFO, "forwarding signal %d to the workload", signum);
	kill_workload_group(ctx, signum);
}

static void on_kill_timer(uv_timer_t *t)
{
	struct sup_ctx *ctx = t->data;
	sup_log(ctx, LOG_WARN, "workload ignored SIGTERM for %ums; sending SIGKILL",
		SUP_TIMEOUT_GRACE_MS);
	kill_workload_group(ctx, SIGKILL);
}

static void on_timeout(uv_timer_t *t)
{
	struct sup_ctx *ctx = t->data;
	sup_log(ctx, LOG_WARN, "timeout of %us reached; terminating the workload",
		ctx->opt.timeout_secs);
	ctx->timed_out = true;
	kill_workload_group(ctx, SIGTERM);
	if (uv_timer_start(&ctx->kill_timer, on_kill_timer, SUP_TIMEOUT_GRACE_MS, 0) != 0)
		kill_workload_group(ctx, SIGKILL);
}

static void close_handle(uv_handle_t *h)
{
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

static void begin_shutdown(struct sup_ctx *ctx)
{
	if (!ctx->handles_open)
		return;
	ctx->handles_open = false;
	/* Sessions are hung up and told their exit status before anything is
	 * killed outright. */
	sup_ssh_stop(ctx);
	kill_workload_group(ctx, SIGKILL); /* leftovers of the workload's group */
	close_handle((uv_handle_t *)&ctx->sig_term);
	close_handle((uv_handle_t *)&ctx->sig_int);
	close_handle((uv_handle_t *)&ctx->sig_hup);
	close_handle((uv_handle_t *)&ctx->sig_chld);
	close_handle((uv_handle_t *)&ctx->timeout_timer);
	close_handle((uv_handle_t *)&ctx->kill_timer);
	sup_audit_batch_stop(ctx); /* lines from here on are flushed one by one */
	sup_bypass_stop(ctx);
	sup_reload_stop(ctx);
	if (ctx->proxy) {
		proxy_stop(ctx->proxy, NULL, NULL);
		ctx->proxy = NULL;
	}
}

static bool is_terminal_stop(int sig)
{
	return sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU;
}

static void on_sigchld(uv_signal_t *h, int signum)
{
	struct sup_ctx *ctx = h->data;
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG | WUNTRACED)) > 0) {
		if (WIFSTOPPED(status)) {
			if (pid == ctx->workload_pid && !ctx->workload_exited &&
			    is_terminal_stop(WSTOPSIG(status)))
				sup_terminal_workload_stopped(ctx, WSTOPSIG(status));
			continue; /* SIGSTOP, or a session's child: someone else's business */
		}
		sup_ssh_child_exited(ctx, pid, status);
		if (pid != ctx->workload_pid || ctx->workload_exited)
			continue; /* an adopted orphan: reaped, nothing else to do */
		ctx->workload_exited = true;
		sup_terminal_reclaim(ctx); /* before our own lines go to it */
		ctx->exit_code = ctx->timed_out ? 124 : sup_exit_code_from_status(status);
		sup_log(ctx, LOG_INFO, "workload %d exited; exit code %d", (int)pid, ctx->exit_code);
	}
	if (ctx->workload_exited)
		begin_shutdown(ctx);
}

static int init_loop(struct sup_ctx *ctx)
{
	if (uv_loop_init(&ctx->loop) != 0)
		return -1;
	ctx->loop_inited = true;
	uv_signal_t *sigs[] = { &ctx->sig_term, &ctx->sig_int, &ctx->sig_hup, &ctx->sig_chld };
	for (size_t i = 0; i < 4; i++) {
		if (uv_signal_init(&ctx->loop, sigs[i]) != 0)
			return -1;
		sigs[i]->data = ctx;
	}
	if (uv_timer_init(&ctx->loop, &ctx->timeout_timer) != 0 ||
	    uv_timer_init(&ctx->loop, &ctx->kill_timer) != 0)
		return -1;
	ctx->timeout_timer.data = ctx;
	ctx->kill_timer.data = ctx;
	if (sup_audit_batch_start(ctx) != 0)
		return -1;
	ctx->handles_open = true;
	if (uv_signal_start(&ctx->sig_term, on_forward_signal, SIGTERM) != 0 ||
	    uv_signal_start(&ctx->sig_int, on_forward_signal, SIGINT) != 0 ||
	    uv_signal_start(&ctx->sig_hup, on_forward_signal, SIGHUP) != 0 ||
	    uv_signal_start(&ctx->sig_chld, on_sigchld, SIGCHLD) != 0)
		return -1;
	return 0;
}

/* Where the proxy listens: the proxy address inside the namespace, or --proxy-listen
 * (default 0.0.0.0:3128) for a network-only sidecar. */
static int proxy_address(struct sup_ctx *ctx, char *ip, size_t iplen, uint16_t *port)
{
	if (ctx->have_ns) {
		snprintf(ip, iplen, "%s", ctx->ns.proxy_ip);
		*port = ctx->opt.proxy_port;
		return 0;
	}
	const char *listen = ctx->opt.proxy_listen ? ctx->opt.proxy_listen : "0.0.0.0:3128";
	if (sup_parse_listen(listen, ip, iplen, port) != 0) {
		sup_log(ctx, LOG_ERROR, "--proxy-listen '%s' is not ADDR:PORT", listen);
		return -1;
	}
	return 0;
}

/* TLS interception wiring (issue 4): a fresh CA in memory, its certificate
 * and the combined bundle written into the TLS dir. Failure disables
 * termination (tunnels that need it get 503) but is not fatal. */
static void create_sandbox_ca(struct sup_ctx *ctx)
{
	char err[512] = "";
	ctx->ca = proxy_ca_create(err, sizeof err);
	if (ctx->ca == NULL) {
		sup_log(ctx, LOG_ERROR, "sandbox CA: %s; TLS termination disabled", err);
		return;
	}
	if (proxy_ca_write_files(ctx->ca, ctx->opt.tls_dir, ctx->ca_cert_path,
				 sizeof ctx->ca_cert_path, ctx->ca_bundle_path,
				 sizeof ctx->ca_bundle_path, err, sizeof err) != 0) {
		sup_log(ctx, LOG_ERROR, "sandbox CA files: %s; TLS termination disabled", err);
		proxy_ca_free(ctx->ca);
		ctx->ca = NULL;
		ctx->ca_cert_path[0] = ctx->ca_bundle_path[0] = '\0';
		return;
	}
	sup_log(ctx, LOG_INFO, "sandbox CA written to %s", ctx->ca_cert_path);
}

struct inside_job {
	const char *ip;
	uint16_t port;
	int listen_fd;
	struct proxy_capture_fds *fds;
	char err[256];
};

/* Runs with the thread inside the sandbox namespace (netns_run_inside). */
static int open_listeners_inside(void *arg)
{
	struct inside_job *job = arg;
	job->listen_fd = proxy_listener_open(job->ip, job->port, job->err, sizeof job->err);
	if (job->listen_fd < 0)
		return -1;
	if (proxy_capture_open(job->fds, job->err, sizeof job->err) == 0)
		return 0;
	close(job->listen_fd);
	job->listen_fd = -1;
	return -1;
}

/* Every listener of the proxy lives inside the sandbox namespace: the
 * explicit one on the proxy address of its loopback, the capture ones where
 * nftables there redirects to (SO_ORIGINAL_DST needs that namespace's
 * conntrack). They are the sandbox's only way out. */
static int open_listeners(struct sup_ctx *ctx, const char *ip, uint16_t port, int *listen_fd,
			  struct proxy_capture_fds *fds)
{
	struct inside_job job = { .ip = ip, .port = port, .listen_fd = -1, .fds = fds };
	fds->tcp = fds->dns_udp = fds->dns_tcp = -1;
	if (netns_run_inside(&ctx->ns, open_listeners_inside, &job) != 0) {
		sup_log(ctx, LOG_ERROR, "proxy listeners in the sandbox namespace: %s",
			job.err[0] ? job.err : "cannot enter the namespace");
		return -1;
	}
	*listen_fd = job.listen_fd;
	return 0;
}

/* sup_proxy_log passes the proxy's levels through as the supervisor's. */
_Static_assert((int)PROXY_LOG_ERROR == (int)LOG_ERROR, "log levels differ");
_Static_assert((int)PROXY_LOG_WARN == (int)LOG_WARN, "log levels differ");
_Static_assert((int)PROXY_LOG_INFO == (int)LOG_INFO, "log levels differ");
_Static_assert((int)PROXY_LOG_DEBUG == (int)LOG_DEBUG, "log levels differ");

static int start_proxy(struct sup_ctx *ctx)
{
	char ip[64];
	uint16_t port;
	if (proxy_address(ctx, ip, sizeof ip, &port) != 0)
		return -1;
	struct proxy_config cfg = {
		.listen_ip = ip,
		.listen_port = port,
		.hooks = { .audit = sup_audit_line, .log = sup_proxy_log,
			   .log_level = ctx->opt.log_level,
			   .identify = sup_proxy_identify, .ud = ctx },
		.ca = ctx->ca,
		.upstream_ca_files = ctx->opt.upstream_ca,
		.n_upstream_ca_files = ctx->opt.n_upstream_ca,
		.creds = ctx->creds,
		.tool_host = ctx->opt.tool_host,
		.tool_broker = &ctx->opt.tool_broker,
		.sandbox_id = ctx->opt.sandbox_id,
		.upstream = ctx->upstream,
	};
	struct proxy_capture_fds capture;
	int listen_fd = -1;
	if (ctx->have_ns) {
		if (open_listeners(ctx, ip, port, &listen_fd, &capture) != 0)
			return -1;
		cfg.capture = &capture;
		cfg.listen_fd = &listen_fd;
	}
	char err[256] = "";
	ctx->proxy = proxy_start(&ctx->loop, &cfg, ctx->policy, err, sizeof err);
	if (cfg.capture) /* the proxy keeps duplicates */
		proxy_capture_close(&capture);
	if (listen_fd >= 0)
		close(listen_fd);
	if (!ctx->proxy) {
		sup_log(ctx, LOG_ERROR, "proxy on %s:%u: %s", ip, (unsigned)port, err);
		return -1;
	}
	snprintf(ctx->proxy_url, sizeof ctx->proxy_url, "http://%s:%u", ip, (unsigned)port);
	sup_log(ctx, LOG_INFO, "proxy listening on %s:%u", ip, (unsigned)port);
	return 0;
}

static int spawn_workload(struct sup_ctx *ctx)
{
	/* An interactive workload (bash -l) on the terminal we own in the
	 * foreground gets it for as long as it runs. */
	ctx->terminal_lent = sup_terminal_is_foreground();
	struct sandboxed_child child = { .argv = ctx->opt.argv, .inherited = environ,
					 .take_terminal = ctx->terminal_lent };
	char err[512] = "";
	ctx->workload_pid = sup_spawn_sandboxed(ctx, &child, err, sizeof err);
	if (ctx->workload_pid < 0) {
		sup_terminal_reclaim(ctx);
		sup_log(ctx, LOG_ERROR, "starting the workload failed: %s", err);
		return -1;
	}
	sup_log(ctx, LOG_INFO, "workload %s started as pid %d (uid %u gid %u)", ctx->opt.argv[0],
		(int)ctx->workload_pid, (unsigned)ctx->id.uid, (unsigned)ctx->id.gid);
	if (ctx->opt.timeout_secs &&
	    uv_timer_start(&ctx->timeout_timer, on_timeout, ctx->opt.timeout_secs * 1000ull, 0) != 0)
		return -1;
	return 0;
}

static int resolve_identity(struct sup_ctx *ctx)
{
	char err[512] = "";
	if (sup_resolve_identity(ctx->policy, &ctx->id, err, sizeof err) != 0) {
		sup_log(ctx, LOG_ERROR, "agent identity: %s", err);
		return -1;
	}
	return 0;
}

/* The CA and the credentials exist before confinement is prepared: Landlock
 * must admit the CA files, the environment carries the placeholders. */
static int prepare_network_secrets(struct sup_ctx *ctx)
{
	create_sandbox_ca(ctx);
	if (!ctx->opt.credentials)
		return 0;
	char err[512] = "";
	ctx->creds = proxy_credentials_load(ctx->opt.credentials, err, sizeof err);
	if (!ctx->creds) {
		sup_log(ctx, LOG_ERROR, "--credentials: %s", err);
		return -1;
	}
	if (sup_build_credential_env(ctx) != 0) {
		sup_log(ctx, LOG_ERROR, "--credentials: building the placeholder environment failed");
		return -1;
	}
	return 0;
}

static int create_namespace(struct sup_ctx *ctx)
{
	char err[512] = "";
	struct netns_config ncfg = { .proxy_port = ctx->opt.proxy_port,
				     /* transparent capture wiring (issue 3) */
				     .capture_tcp_port = PROXY_CAPTURE_TCP_PORT,
				     .capture_dns_port = PROXY_CAPTURE_DNS_PORT };
	if (netns_create(&ctx->ns, &ncfg, err, sizeof err) != 0) {
		sup_log(ctx, LOG_ERROR, "sandbox network namespace: %s (needs root with "
			"CAP_NET_ADMIN and CAP_SYS_ADMIN)", err);
		return -1;
	}
	ctx->have_ns = true;
	sup_log(ctx, LOG_INFO, "sandbox namespace %s: sandbox %s, proxy %s", ctx->ns.run_id,
		ctx->ns.sandbox_ip, ctx->ns.proxy_ip);
	return 0;
}

/* Process-only sidecar: the proxy is someone else's; wait until it is ready. */
static int join_sidecar_proxy(struct sup_ctx *ctx)
{
	char err[256];
	if (sup_check_proxy_url(ctx->opt.proxy_url, err, sizeof err) != 0) {
		sup_log(ctx, LOG_ERROR, "%s", err);
		return -1;
	}
	snprintf(ctx->proxy_url, sizeof ctx->proxy_url, "%s", ctx->opt.proxy_url);
	if (sup_wait_ready(ctx) != 0)
		return -1;
	sup_find_sidecar_ca_files(ctx);
	return 0;
}

static int setup(struct sup_ctx *ctx)
{
	unsigned mode = ctx->opt.mode;
	bool combined = mode == (SUP_MODE_NETWORK | SUP_MODE_PROCESS);
	/* Upstream proxy flags first: a bad value stops the start before anything exists. */
	if (sup_upstream_prepare(ctx) != 0 || open_audit(ctx) || load_policy(ctx))
		return -1;
	if ((mode & SUP_MODE_PROCESS) && resolve_identity(ctx) != 0)
		return -1;
	raise_nofile_limit(ctx);
	if (sup_become_subreaper() != 0)
		sup_log(ctx, LOG_WARN, "PR_SET_CHILD_SUBREAPER: %s", strerror(errno));
	if ((mode & SUP_MODE_NETWORK) && prepare_network_secrets(ctx) != 0)
		return -1;
	if (!(mode & SUP_MODE_NETWORK) && join_sidecar_proxy(ctx) != 0)
		return -1;
	if ((mode & SUP_MODE_PROCESS) && sup_prepare_confinement(ctx) != 0)
		return -1;
	if (combined && create_namespace(ctx) != 0)
		return -1;
	if (init_loop(ctx) != 0) {
		sup_log(ctx, LOG_ERROR, "event loop initialisation failed");
		return -1;
	}
	if ((mode & SUP_MODE_NETWORK) && start_proxy(ctx) != 0)
		return -1;
	if (ctx->have_ns && sup_bypass_start(ctx) != 0)
		return -1;
	if (sup_reload_init(ctx) != 0)
		return -1;
	if (!(mode & SUP_MODE_PROCESS))
		return sup_write_ready(ctx);
	if (sup_ssh_start(ctx) != 0)
		return -1;
	return spawn_workload(ctx);
}

/* What the run allocated; nothing in here touches the namespace. */
static void free_run_state(struct sup_ctx *ctx)
{
	sup_free_confinement(ctx);
	proxy_ca_free(ctx->ca); /* after the proxy: it borrows the CA and credentials */
	ctx->ca = NULL;
	proxy_credentials_free(ctx->creds);
	ctx->creds = NULL;
	sup_upstream_free(ctx); /* after the proxy, which borrows it; wipes the credentials */
	sup_argv_free(ctx->cred_env);
	ctx->cred_env = NULL;
	if (ctx->startup_policy != ctx->policy)
		policy_free(ctx->startup_policy);
	policy_free(ctx->policy);
	ctx->startup_policy = ctx->policy = NULL;
}

/* Everything of the sandbox's network is inside its namespace: closing our
 * fd lets the kernel take it once its last process and socket are gone. */
static void release_namespace(struct sup_ctx *ctx)
{
	if (!ctx->have_ns)
		return;
	netns_destroy(&ctx->ns);
	ctx->have_ns = false;
}

static void teardown(struct sup_ctx *ctx)
{
	if (ctx->loop_inited) {
		begin_shutdown(ctx);
		uv_run(&ctx->loop, UV_RUN_DEFAULT);
		int rc = uv_loop_close(&ctx->loop);
		if (rc != 0)
			sup_log(ctx, LOG_WARN, "event loop did not close cleanly: %s", uv_strerror(rc));
	}
	sup_bypass_free(ctx); /* the last socket of ours inside the namespace */
	sup_remove_ready(ctx);
	sup_ssh_stop(ctx);
	sup_kill_all_children(); /* and every process below us, wherever it is */
	sup_terminal_reclaim(ctx); /* if a job of the workload still held it */
	free_run_state(ctx);
	release_namespace(ctx);
	if (ctx->audit_owned)
		fclose(ctx->audit);
	free(ctx->audit_buf);
	sup_options_free(&ctx->opt);
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "policy") == 0)
		return policy_check_cmd(argc - 1, argv + 1);
	if (argc >= 2 && (strcmp(argv[1], "connect") == 0 || strcmp(argv[1], "ssh-proxy") == 0))
		return sup_ssh_subcommand(argc - 1, argv + 1);

	struct sup_ctx ctx;
	memset(&ctx, 0, sizeof ctx);
	int rc = sup_parse_cli(argc, argv, &ctx.opt);
	if (rc != 0) {
		sup_options_free(&ctx.opt);
		return rc < 0 ? 0 : rc;
	}
	ctx.exit_code = 1;
	/* A peer resetting a socket mid-write must not kill the supervisor, nor
	 * may a log line written while the workload owns the terminal (stty
	 * tostop) stop it; children get default dispositions back in sup_spawn(). */
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR || signal(SIGTTOU, SIG_IGN) == SIG_ERR) {
		perror("openshell-sandbox: ignoring SIGPIPE and SIGTTOU");
		sup_options_free(&ctx.opt);
		return 1;
	}
	if (setup(&ctx) == 0)
		uv_run(&ctx.loop, UV_RUN_DEFAULT);
	else
		ctx.exit_code = 1;
	teardown(&ctx);
	return ctx.exit_code;
}
