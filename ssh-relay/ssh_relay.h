/* ssh_relay.h - the embedded SSH server of openshell-sandbox.
 *
 * Trust model: the server listens on a Unix socket that only root can reach
 * (parent directory 0700 and socket 0600, both root-owned; or an abstract
 * socket, which exists only in the supervisor's network namespace and so
 * cannot be reached from the sandbox's; as an abstract name has no file mode,
 * and a process-only supervisor shares its namespace with the agent, a peer
 * on it must also be root or our uid (SO_PEERCRED) unless authorized keys are
 * configured). Reaching the socket IS the
 * authentication: `none` and any public key are accepted and the user name is
 * ignored, unless `authorized_keys` names a file, in which case only the
 * public keys listed there are accepted. Password and keyboard-interactive
 * authentication are never offered.
 *
 * The relay never forks: every session child (shell, exec, sftp) is started
 * by the host's spawn callback, which gives it the workload's namespace,
 * identity, Landlock, seccomp and environment. Likewise every TCP forward is
 * dialled by the host's connect_inside callback. The host (the supervisor,
 * which is PID 1 and reaps every child) reports each reaped child through
 * ssh_relay_child_exited().
 *
 * Threads: one acceptor thread, plus one thread per client connection
 * (at most SSH_RELAY_MAX_CONNECTIONS). A libssh session is only ever used by
 * its own connection thread. Relay threads run with every signal blocked.
 */
#ifndef OPENSHELL_SSH_RELAY_H
#define OPENSHELL_SSH_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SSH_RELAY_DEFAULT_SOCKET "/run/openshell/ssh.sock"
#define SSH_RELAY_SFTP_SERVER "/usr/lib/openssh/sftp-server"

/* Limits. Connections over the limit are closed right after accept. */
#define SSH_RELAY_MAX_CONNECTIONS 64      /* concurrent client connections */
#define SSH_RELAY_MAX_CHANNELS 32         /* open channels (sessions + forwards) per connection */
#define SSH_RELAY_MAX_ENV 64              /* accepted `env` requests per channel */
#define SSH_RELAY_MAX_ENV_NAME 128        /* bytes */
#define SSH_RELAY_MAX_ENV_VALUE 4096      /* bytes */
#define SSH_RELAY_MAX_TERM 64             /* bytes of the pty-req terminal name */
#define SSH_RELAY_MAX_COMMAND 65536       /* bytes of an exec command */
#define SSH_RELAY_MAX_AUTH_FAILURES 10    /* then the connection is dropped */
#define SSH_RELAY_MAX_AUTHORIZED_KEYS 256 /* keys read from authorized_keys */
#define SSH_RELAY_IO_BUF 32768            /* per direction per channel */
#define SSH_RELAY_HANDSHAKE_TIMEOUT_S 10  /* key exchange */
#define SSH_RELAY_AUTH_TIMEOUT_S 30       /* from accept to authenticated */
#define SSH_RELAY_DRAIN_MS 2000           /* output quiet time after a child exit */
#define SSH_RELAY_KILL_GRACE_MS 1000      /* SIGHUP -> SIGKILL of a dropped session */
#define SSH_RELAY_REAP_WAIT_MS 2000       /* waiting for a killed child to exit */

/* Levels of the log callback (the supervisor's enum uses the same values). */
enum ssh_relay_log_level {
	SSH_RELAY_LOG_ERROR = 0,
	SSH_RELAY_LOG_WARN,
	SSH_RELAY_LOG_INFO,
	SSH_RELAY_LOG_DEBUG,
};

/* What a session channel asks the host to start. All pointers are valid only
 * during the spawn call. */
struct ssh_relay_session_req {
	const char *command;      /* NULL: interactive/login shell; else run it
	                             with /bin/sh -c COMMAND, like OpenSSH */
	const char *subsystem;    /* "sftp" (command is then SSH_RELAY_SFTP_SERVER)
	                             or NULL */
	bool pty;
	const char *term;         /* pty-req terminal name ("xterm-256color" if
	                             the client sent none); NULL without a pty */
	unsigned cols, rows;      /* pty size (>= 1), 0 without a pty */
	char *const *client_env;  /* NULL-terminated KEY=VALUE list from `env`
	                             requests, already filtered by
	                             ssh_relay_env_name_allowed(); apply it BEFORE
	                             the forced identity/proxy/TLS variables */
	int stdin_fd, stdout_fd, stderr_fd;
	                          /* The child's ends (close-on-exec: the child
	                             must dup2 them onto 0, 1, 2). With a pty all
	                             three are the pty slave. The relay closes
	                             them after spawn returns. */
};

/* Callbacks of the host (the supervisor). All may be called concurrently from
 * several relay threads. */
struct ssh_relay_host {
	/* Start a session child. It must call setsid() (so its pid is its
	 * process group id, which the relay signals) and, with a pty, make the
	 * slave its controlling terminal (ioctl TIOCSCTTY); it may fchown the
	 * slave to the sandbox user. The pid must be a direct child of this
	 * process (the relay peeks at it with waitid(WNOWAIT) while stopping);
	 * note that a PR_SET_PDEATHSIG set by the child fires when the calling
	 * relay thread ends, i.e. after its connection is torn down. Returns
	 * the pid (> 0), or -1 with a message in err. */
	pid_t (*spawn)(void *ud, const struct ssh_relay_session_req *req,
		       char *err, size_t errlen);
	/* Connect to host:port INSIDE the sandbox network namespace. host is
	 * always a numeric loopback address ("127.x.y.z" or "::1"). Returns a
	 * connected TCP socket fd (the relay makes it non-blocking and owns
	 * it), or -errno. */
	int (*connect_inside)(void *ud, const char *host, uint16_t port);
	/* Optional. msg has no trailing newline. */
	void (*log)(void *ud, int level, const char *msg);
	void *ud;
};

struct ssh_relay_config {
	const char *socket_path;      /* leading '@': abstract socket */
	const char *authorized_keys;  /* NULL: any key or `none` is accepted */
	struct ssh_relay_host host;
};

struct ssh_relay;

/* Generates an ephemeral Ed25519 host key, binds and listens (parent dir made
 * 0700 unless it is a shared sticky directory such as /tmp, socket created
 * 0600, a stale socket file removed; refused if the path is a non-socket or a
 * live server answers there, or if the directory or any ancestor is not owned
 * by root (or us) or is group/other-writable without the sticky bit), then
 * serves on its own threads. Returns NULL
 * with a message in err on failure (no socket is left behind). */
struct ssh_relay *ssh_relay_start(const struct ssh_relay_config *cfg,
				  char *err, size_t errlen);

/* The host reaped pid (thread-safe; unknown pids are ignored). */
void ssh_relay_child_exited(struct ssh_relay *r, pid_t pid, int wait_status);

/* Stops accepting, SIGHUPs every session's process group, sends each
 * session's exit-status (SIGKILL after SSH_RELAY_KILL_GRACE_MS), closes every
 * connection, joins the threads, unlinks the socket and frees r. Does not need
 * ssh_relay_child_exited() calls meanwhile (it peeks with waitid(WNOWAIT)),
 * so the host may call it from its reaping thread. NULL is a no-op. */
void ssh_relay_stop(struct ssh_relay *r);

/* `openshell-sandbox ssh-proxy --socket P`: copies stdin to the socket and the
 * socket to stdout until the server side has ended and been written out.
 * Returns 0, or 255 with a message on stderr (as ssh does). */
int ssh_relay_bridge(const char *socket_path);

/* `openshell-sandbox connect [--socket P] [-- CMD...]`: execs OpenSSH `ssh`
 * with `ProxyCommand '<self_exe>' ssh-proxy --socket '<socket_path>'`, no
 * host-key checking (the key is ephemeral) and CMD (NULL or empty: an
 * interactive shell). Returns only on failure, with 255. */
int ssh_relay_connect_exec(const char *self_exe, const char *socket_path,
			   char *const *cmd);

/* Policy checks, exposed for the host and for tests. */
/* true if an `env` request may set NAME: a well-formed name that is not
 * OPENSHELL_*, *_PROXY (any case), NODE_USE_ENV_PROXY, LD_*, HOME, USER, LOGNAME,
 * SHELL, PATH, TERM (from pty-req) or a TLS trust variable (checks.c). */
bool ssh_relay_env_name_allowed(const char *name);
/* If host names a loopback destination ("localhost", 127/8, ::1, ::ffff:127/104,
 * optionally in brackets), writes its numeric form to out and returns 0;
 * else returns -1. */
int ssh_relay_loopback_target(const char *host, char *out, size_t outlen);

#endif
