/* sup.h - private to supervisor/: the supervisor's context and its pieces.
 *
 * The supervisor is the only place that wires modules together. All mutable
 * state of a run lives in struct sup_ctx (one per process, on main's stack).
 */
#ifndef OPENSHELL_SUP_H
#define OPENSHELL_SUP_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <uv.h>

#include "netns/netns.h"
#include "proxy/proxy.h"

struct policy;
struct proxy;
struct ssh_relay;
struct landlock_plan;
struct seccomp_plan;

#define SUP_VERSION "0.1.0"
#define SUP_DEFAULT_PROXY_PORT 3128
#define SUP_TIMEOUT_GRACE_MS 2000u      /* SIGTERM -> SIGKILL on --timeout */
#define SUP_SWEEP_TIMEOUT_MS 5000u      /* waiting for leftover children at exit */
#define SUP_MAX_GROUPS 256              /* supplementary groups of the agent */
#define SUP_NOBODY_ID 65534u
#define SUP_AUDIT_BUFFER_BYTES 65536u   /* --audit-log stdio buffer: the lines of one
					 * loop iteration go out in one write up to
					 * this much (stdio's own is 4 KiB, ~7 lines) */
/* bypass audit (bypass.c, peer.c) */
#define SUP_BYPASS_PER_WINDOW 10        /* bypass events written per window ... */
#define SUP_BYPASS_WINDOW_MS 1000u      /* ... the rest counted in one summary */
#define SUP_PEER_MAX_SOCKETS 65536      /* socket table lines read per lookup */
#define SUP_PEER_MAX_PROCS 4096         /* processes looked at per lookup */
#define SUP_PEER_MAX_FDS 65536          /* fd entries looked at per lookup */

enum sup_log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

struct sup_options {
	const char *policy_data;     /* --policy-data / OPENSHELL_POLICY_DATA */
	const char *policy_rules;    /* accepted for compatibility, unused */
	const char *workdir;
	const char *audit_log;
	const char *sandbox_id;
	const char *sandbox_name;
	const char *ssh_socket_path;     /* NULL: no SSH server */
	const char *ssh_authorized_keys;
	unsigned timeout_secs;
	uint16_t proxy_port;
	int log_level;
	char **argv;                 /* workload argv (NULL-terminated), owned */
	/* topology (modes.c) */
	unsigned mode;               /* SUP_MODE_* bits; default both */
	const char *proxy_listen;    /* --proxy-listen ADDR:PORT (network-only mode) */
	const char *proxy_url;       /* --proxy-url http://HOST:PORT (process-only mode) */
	const char *tls_dir;         /* --tls-dir / OPENSHELL_PROXY_TLS_DIR */
	unsigned ready_timeout_secs; /* process-only: wait for <tls_dir>/.ready */
	/* TLS interception wiring (issue 4) */
	const char *upstream_ca[16]; /* --upstream-ca FILE (repeatable) */
	size_t n_upstream_ca;
	const char *credentials;     /* --credentials FILE */
	/* upstream proxy chaining (upstream.c); argv only, never the env */
	const char *upstream_proxy;      /* --upstream-proxy URL */
	const char *upstream_no_proxy;   /* --upstream-no-proxy LIST */
	const char *upstream_auth_file;  /* --upstream-proxy-auth-file FILE */
	bool upstream_auth_insecure;     /* --upstream-proxy-auth-allow-insecure */
	bool upstream_by_hostname;       /* --upstream-proxy-connect-by-hostname */
	/* egress integrations (issue 9) */
	struct proxy_tool_broker tool_broker; /* --tool-broker, kind NONE if absent */
	const char *tool_host;       /* --tool-host NAME, NULL: the default */
};

#define SUP_MODE_NETWORK 1u
#define SUP_MODE_PROCESS 2u
#define SUP_DEFAULT_TLS_DIR "/etc/openshell-tls"
#define SUP_DEFAULT_READY_TIMEOUT 30u
#define SUP_READY_FILE ".ready"
#define SUP_GIT_SSH_DISABLED \
	"printf 'openshell: SSH disabled — use HTTPS\\n' >&2; false"

/* Who the agent runs as, resolved once before any child exists. */
struct sup_identity {
	uid_t uid;
	gid_t gid;
	gid_t groups[SUP_MAX_GROUPS];
	int n_groups;
	char user[64];               /* USER / LOGNAME */
	char home[256];
};

struct sup_ctx {
	struct sup_options opt;
	struct policy *policy;
	struct sup_identity id;
	struct netns ns;
	bool have_ns;
	struct proxy *proxy;
	struct ssh_relay *ssh;
	char proxy_url[288];        /* http://HOST:PORT */
	/* TLS interception wiring (issue 4): the CA (key in memory only) and
	 * the two files written into opt.tls_dir; paths "" when not written. */
	struct proxy_ca *ca;
	struct cred_store *creds;    /* --credentials, NULL when not given */
	struct proxy_upstream *upstream; /* --upstream-proxy, NULL when not given */
	char ca_cert_path[4096];
	char ca_bundle_path[4096];
	char **cred_env;             /* NAME=openshell:resolve:env:NAME, owned */
	struct landlock_plan *landlock;  /* NULL: no filesystem_policy */
	struct seccomp_plan *seccomp;    /* NULL: profile off */
	FILE *audit;
	bool audit_owned;
	char *audit_buf;                 /* its buffer (owned file only), freed after fclose */
	/* An --audit-log file is flushed once per loop iteration (a check
	 * handle) instead of once per line: one write for all the lines of the
	 * iteration. audit_batching: the handle is running. */
	uv_check_t audit_flush;
	bool audit_batching;
	bool audit_pending;          /* lines written since the last flush */

	uv_loop_t loop;
	uv_signal_t sig_term, sig_int, sig_hup, sig_chld;
	uv_timer_t timeout_timer, kill_timer;
	bool loop_inited;
	bool handles_open;

	/* hot reload (reload.c) */
	struct policy *startup_policy; /* static sections in force; owned when != policy */
	uv_poll_t policy_watch;      /* on policy_watch_fd, an inotify fd */
	int policy_watch_fd;
	bool policy_watch_inited;    /* the handle (and so the fd) exist */
	uv_timer_t reload_timer;
	bool reload_inited;
	char policy_base[256];       /* file name watched in its directory */
	char policy_hash[65];        /* sha256 of the policy in force */
	unsigned long generation;    /* 0 at start, +1 per applied reload */

	bool ready_written;

	pid_t workload_pid;
	bool workload_exited;
	bool terminal_lent;          /* the workload's group was made the terminal's foreground */
	bool timed_out;
	int exit_code;

	/* bypass audit (bypass.c): the fence's rejected packets */
	struct netns_bypass *bypass;
	uv_poll_t bypass_poll;
	uv_timer_t bypass_timer;     /* ends a window with suppressed events */
	bool bypass_handles;         /* poll and timer initialised, not closed */
	uint64_t bypass_window_start; /* uv_now() of the current window */
	unsigned bypass_in_window;   /* events written in it */
	unsigned long bypass_suppressed; /* over the limit, not yet summarised */
	unsigned long bypass_lost;   /* unreadable (overrun, malformed), idem */
};

/* log.c */
void sup_log(const struct sup_ctx *ctx, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void sup_audit_line(void *ud, const char *json_line);
/* Open --audit-log FILE for appending as root, refusing what someone else
 * could have planted at that path (a symlink not owned by root, a file owned
 * or writable by another user). The fd, or -1 with err set. */
int sup_open_audit_file(const char *path, char *err, size_t errlen);
/* Start batching (after the loop exists) / flush and stop (shutdown). */
int sup_audit_batch_start(struct sup_ctx *ctx);
void sup_audit_batch_stop(struct sup_ctx *ctx);
struct json_object;
struct json_object *sup_config_event_new(const char *message);
void sup_proxy_log(void *ud, int level, const char *msg);
int sup_parse_log_level(const char *s);

/* cli.c: returns 0 to run, 1 on error (message printed), 2 on usage error,
 * -1 when --help/--version was printed. */
int sup_parse_cli(int argc, char **argv, struct sup_options *opt);
void sup_options_free(struct sup_options *opt);
int sup_parse_mode(const char *list, unsigned *mode);
unsigned sup_mode_from_env(void);

/* spec.c: OPENSHELL_MAIN_PROCESS_SPEC -> argv. Returns 0 and a NULL-terminated
 * heap argv, or -1 with a message in err. */
int sup_parse_process_spec(const char *spec, char ***argv_out, char *err, size_t errlen);
void sup_argv_free(char **argv);

/* identity.c */
int sup_resolve_identity(const struct policy *p, struct sup_identity *id,
			 char *err, size_t errlen);

/* child_env.c: the ONE function that builds every sandboxed child's env. */
struct child_env_params {
	const char *proxy_url;       /* NULL: no proxy variables */
	const char *ca_cert_path;    /* NULL: no TLS variables */
	const char *ca_bundle_path;
	const char *home;
	const char *user;
	const char *term;            /* NULL: keep inherited TERM, else "dumb" */
	bool disable_git_ssh;        /* sidecar: git over SSH cannot pass the proxy */
	char *const *extra;          /* KEY=VALUE over the inherited ones (placeholders) */
};
char **child_env_build(char *const *inherited, const struct child_env_params *p);
void child_env_free(char **env);
const char *child_env_get(char *const *env, const char *name);

/* privdrop.c: runs in the forked child. Returns 0, or -1 with the failing
 * step written to err (async-signal-safe, no allocation). */
int sup_drop_privileges(const struct sup_identity *id, char *err, size_t errlen);

/* spawn.c */
#define SUP_MAX_BINDS 16

/* A read-only file bind mount in the child's private mount namespace, e.g.
 * the sandbox's resolv.conf or CA bundle over the container's own file. */
struct sup_bind {
	const char *src;
	const char *dst;
	bool optional;               /* skip when dst does not exist */
};

struct spawn_request {
	char *const *argv;
	char *const *envp;
	const char *cwd;             /* NULL: unchanged */
	const struct sup_identity *id;
	const struct netns *ns;      /* NULL: stay in the current namespace */
	bool new_process_group;
	const struct landlock_plan *landlock; /* applied last, before exec */
	const struct seccomp_plan *seccomp;
	const struct sup_bind *binds;  /* non-empty: child gets its own mount namespace */
	size_t n_binds;
	const int *stdio;             /* NULL: inherit; else dup2'ed onto 0, 1, 2 */
	bool new_session;             /* setsid(): pid = pgid = sid */
	bool controlling_tty;         /* stdin is a pty slave: make it the ctty */
	bool take_terminal;           /* new group: foreground of the terminal on stdin */
};

/* Fork and exec; returns the pid, or -1 with why in err (the child's own
 * failure is reported through a CLOEXEC pipe before we return). */
pid_t sup_spawn(const struct spawn_request *req, char *err, size_t errlen);

/* ssh.c: the embedded SSH server (ssh-relay/) wired to this supervisor. */
int sup_ssh_start(struct sup_ctx *ctx);     /* no-op without a socket path */
void sup_ssh_stop(struct sup_ctx *ctx);     /* idempotent */
void sup_ssh_child_exited(struct sup_ctx *ctx, pid_t pid, int status);
int sup_ssh_subcommand(int argc, char **argv); /* argv[0]: connect | ssh-proxy */

/* upstream.c: the corporate proxy flags. check_flags (from the CLI): a
 * dependent flag without its prerequisite -> message, -1. prepare: read
 * the auth file, parse and resolve everything (ctx->upstream); -1 with a
 * message naming the flag and value. free: wipes the credentials. */
int sup_upstream_check_flags(const struct sup_options *opt);
int sup_upstream_prepare(struct sup_ctx *ctx);
void sup_upstream_free(struct sup_ctx *ctx);

/* confine.c */
int sup_prepare_confinement(struct sup_ctx *ctx);
void sup_free_confinement(struct sup_ctx *ctx);

/* terminal.c: the terminal on the supervisor's stdin. is_foreground: it is
 * our controlling terminal and our group its foreground group.
 * set_foreground: tcsetpgrp() that cannot stop the caller (async-signal-safe,
 * used in the spawned child). reclaim: once the workload is gone, our group
 * is the foreground again (no-op unless ctx->terminal_lent).
 * has_controlling_terminal: one every child left in our session can open as
 * /dev/tty, whatever its stdio (true as well when that cannot be ruled out). */
bool sup_terminal_is_foreground(void);
int sup_terminal_set_foreground(pid_t pgrp);
void sup_terminal_reclaim(struct sup_ctx *ctx);
/* The workload was stopped by SIGTSTP, SIGTTIN or SIGTTOU: stop the
 * supervisor's job as well, then continue the workload (terminal.c). */
void sup_terminal_workload_stopped(struct sup_ctx *ctx, int sig);
bool sup_has_controlling_terminal(void);

/* modes.c */
int sup_parse_listen(const char *s, char *ip, size_t iplen, uint16_t *port);
int sup_check_proxy_url(const char *url, char *err, size_t errlen);
int sup_write_ready(struct sup_ctx *ctx);
void sup_remove_ready(struct sup_ctx *ctx);
int sup_wait_ready(struct sup_ctx *ctx);

/* reload.c */
int sup_reload_init(struct sup_ctx *ctx);
/* Close the watch and the debounce timer (shutdown); safe without init. */
void sup_reload_stop(struct sup_ctx *ctx);
void sup_reload_policy(struct sup_ctx *ctx, const char *why);

/* sandboxed.c: the one way into the sandbox (workload and session children). */
struct sandboxed_child {
	char *const *argv;
	char *const *inherited;      /* environment to start from (then forced values) */
	const char *term;            /* NULL: inherited TERM, else "dumb" */
	const int *stdio;            /* NULL: inherit the supervisor's */
	bool new_session;            /* setsid (SSH sessions), else own process group */
	bool controlling_tty;
	bool take_terminal;          /* the workload on the supervisor's terminal */
};
pid_t sup_spawn_sandboxed(struct sup_ctx *ctx, const struct sandboxed_child *c, char *err,
			  size_t errlen);
void sup_find_sidecar_ca_files(struct sup_ctx *ctx);
int sup_build_credential_env(struct sup_ctx *ctx);

/* bypass.c: audit what the fence rejects (only with a sandbox namespace). */
int sup_bypass_start(struct sup_ctx *ctx);  /* after init_loop; 0 or -1 (logged) */
void sup_bypass_stop(struct sup_ctx *ctx);  /* drain, summarise, close handles */
void sup_bypass_free(struct sup_ctx *ctx);  /* after the loop ran out: the socket */

/* peer.c: the process in ns_pid's network namespace that owns the socket
 * whose own (sandbox-side) address is sock_local, for IPPROTO_TCP or
 * IPPROTO_UDP. Returns 0 with *pid_out and exe (its /proc/PID/exe, "" if
 * unreadable), or -1 if no process, more than one process (an inherited or
 * passed socket) or none within the SUP_PEER_MAX_* limits holds it. */
int sup_peer_lookup(pid_t ns_pid, int ipproto, const struct sockaddr_storage *sock_local,
		    pid_t *pid_out, char *exe, size_t exelen);
/* proxy_hooks.identify for the proxy (ud: the sup_ctx). */
bool sup_proxy_identify(void *ud, const struct sockaddr_storage *peer, char *binary,
			size_t binary_len, long *pid);

/* reaper.c */
int sup_become_subreaper(void);
void sup_kill_all_children(void);   /* SIGKILL + reap every remaining child */
int sup_exit_code_from_status(int status);

#endif
