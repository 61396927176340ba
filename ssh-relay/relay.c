/* relay.c - the relay object: listening socket, host key, acceptor thread,
 * registry of session children, start and stop.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ssh-relay/relay_int.h"

#define LISTEN_BACKLOG 64
#define ACCEPT_RETRY_MS 100   /* after EMFILE/ENFILE */

void relay_log(const struct ssh_relay *r, int level, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (r->host.log == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	r->host.log(r->host.ud, level, msg);
}

bool relay_is_stopping(struct ssh_relay *r)
{
	return __atomic_load_n(&r->stopping, __ATOMIC_ACQUIRE) != 0;
}

bool relay_key_allowed(const struct ssh_relay *r, ssh_key key)
{
	if (r->auth_keys == NULL)
		return true;
	for (size_t i = 0; i < r->n_auth_keys; i++)
		if (ssh_key_cmp(r->auth_keys[i], key, SSH_KEY_CMP_PUBLIC) == 0)
			return true;
	return false;
}

/* ---- registry of session children ---- */

pid_t relay_spawn(struct ssh_relay *r, const struct ssh_relay_session_req *req,
		  int wake_fd, int *slot, char *err, size_t errlen)
{
	pid_t pid = -1;
	int free_slot = -1;

	pthread_mutex_lock(&r->mu);
	for (int i = 0; i < RELAY_MAX_CHILDREN; i++) {
		if (r->slots[i].pid == 0) {
			free_slot = i;
			break;
		}
	}
	if (free_slot < 0) {
		snprintf(err, errlen, "too many session children");
	} else {
		pid = r->host.spawn(r->host.ud, req, err, errlen);
		if (pid > 0) {
			r->slots[free_slot] = (struct child_slot){
				.pid = pid, .wake_fd = wake_fd,
			};
			*slot = free_slot;
		} else {
			pid = -1;
		}
	}
	pthread_mutex_unlock(&r->mu);
	return pid;
}

bool relay_slot_exited(struct ssh_relay *r, int slot, int *status)
{
	bool exited;

	pthread_mutex_lock(&r->mu);
	exited = r->slots[slot].exited;
	if (exited)
		*status = r->slots[slot].status;
	pthread_mutex_unlock(&r->mu);
	return exited;
}

void relay_slot_release(struct ssh_relay *r, int slot)
{
	pthread_mutex_lock(&r->mu);
	r->slots[slot] = (struct child_slot){ .pid = 0, .wake_fd = -1 };
	pthread_mutex_unlock(&r->mu);
}

void ssh_relay_child_exited(struct ssh_relay *r, pid_t pid, int wait_status)
{
	if (r == NULL || pid <= 0)
		return;
	pthread_mutex_lock(&r->mu);
	for (int i = 0; i < RELAY_MAX_CHILDREN; i++) {
		struct child_slot *s = &r->slots[i];
		if (s->pid != pid || s->exited)
			continue;
		s->exited = true;
		s->status = wait_status;
		uint64_t one = 1;
		if (write(s->wake_fd, &one, sizeof one) < 0 && errno != EAGAIN)
			relay_log(r, SSH_RELAY_LOG_WARN, "ssh: waking session: %s",
				  strerror(errno));
		break;
	}
	pthread_mutex_unlock(&r->mu);
}

/* ---- authorized keys ---- */

static int add_auth_key(struct ssh_relay *r, ssh_key key, char *err, size_t errlen)
{
	if (r->n_auth_keys >= SSH_RELAY_MAX_AUTHORIZED_KEYS) {
		snprintf(err, errlen, "more than %d keys", SSH_RELAY_MAX_AUTHORIZED_KEYS);
		return -1;
	}
	if (r->auth_keys == NULL) {
		r->auth_keys = calloc(SSH_RELAY_MAX_AUTHORIZED_KEYS, sizeof *r->auth_keys);
		if (r->auth_keys == NULL) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
	}
	r->auth_keys[r->n_auth_keys++] = key;
	return 0;
}

/* One authorized_keys line: "TYPE BASE64 [comment]". Options before the type
 * (from=, command=, ...) are not supported and refused rather than ignored. */
static int parse_key_line(struct ssh_relay *r, char *line, char *err, size_t errlen)
{
	char *save = NULL;
	char *type = strtok_r(line, " \t", &save);
	char *b64 = strtok_r(NULL, " \t", &save);
	enum ssh_keytypes_e kt;
	ssh_key key = NULL;

	if (type == NULL || type[0] == '#')
		return 0;
	kt = ssh_key_type_from_name(type);
	if (kt == SSH_KEYTYPE_UNKNOWN) {
		snprintf(err, errlen, "unknown key type '%.40s' (key options are not supported)",
			 type);
		return -1;
	}
	if (b64 == NULL || ssh_pki_import_pubkey_base64(b64, kt, &key) != SSH_OK) {
		snprintf(err, errlen, "invalid %s key", type);
		return -1;
	}
	if (add_auth_key(r, key, err, errlen) != 0) {
		ssh_key_free(key);
		return -1;
	}
	return 0;
}

static int load_authorized_keys(struct ssh_relay *r, const char *path,
				char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	char *line = NULL;
	size_t cap = 0;
	unsigned lineno = 0;
	int rc = 0;

	if (f == NULL) {
		snprintf(err, errlen, "authorized keys %s: %s", path, strerror(errno));
		return -1;
	}
	while (getline(&line, &cap, f) >= 0) {
		char why[256];
		lineno++;
		line[strcspn(line, "\r\n")] = '\0';
		if (parse_key_line(r, line, why, sizeof why) != 0) {
			snprintf(err, errlen, "authorized keys %s:%u: %s", path, lineno, why);
			rc = -1;
			break;
		}
	}
	if (rc == 0 && ferror(f)) {
		snprintf(err, errlen, "authorized keys %s: read error", path);
		rc = -1;
	}
	if (rc == 0 && r->n_auth_keys == 0) {
		snprintf(err, errlen, "authorized keys %s: no keys", path);
		rc = -1;
	}
	free(line);
	fclose(f);
	return rc;
}

/* ---- listening socket ---- */

static int mkdir_parents(char *dir, char *err, size_t errlen)
{
	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		int rc = mkdir(dir, 0700);
		*p = '/';
		if (rc != 0 && errno != EEXIST) {
			snprintf(err, errlen, "mkdir %s: %s", dir, strerror(errno));
			return -1;
		}
	}
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "mkdir %s: %s", dir, strerror(errno));
		return -1;
	}
	return 0;
}

static bool trusted_owner(uid_t uid)
{
	return uid == 0 || uid == geteuid();
}

/* Whoever may rename entries in a directory on the way to the socket (its
 * owner, or anyone when it is group/other-writable without the sticky bit)
 * can swap the socket for their own and serve the operator's next session
 * with it (the host key is ephemeral, so the client checks nothing). Every
 * ancestor of dir must therefore be root's (or ours) and not writable by
 * others unless sticky, like OpenSSH's safe_path(). */
static int check_ancestors(const char *dir, char *err, size_t errlen)
{
	char p[sizeof(((struct sockaddr_un *)0)->sun_path)];
	snprintf(p, sizeof p, "%s", dir);
	for (;;) {
		char *slash = strrchr(p, '/');
		if (slash == NULL)
			return 0;      /* relative: the cwd is the operator's choice */
		if (slash == p)
			slash[1] = '\0';
		else
			*slash = '\0';
		struct stat st;
		if (stat(p, &st) != 0) {
			snprintf(err, errlen, "stat %s: %s", p, strerror(errno));
			return -1;
		}
		if (!trusted_owner(st.st_uid) ||
		    ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX))) {
			snprintf(err, errlen, "socket path: %s is %s; refusing (its owner could "
				 "replace the socket)", p, trusted_owner(st.st_uid)
				 ? "writable by others" : "not owned by root");
			return -1;
		}
		if (strcmp(p, "/") == 0)
			return 0;
	}
}

/* The socket's directory: created 0700, or tightened to 0700 unless it is a
 * shared sticky directory like /tmp (then the socket's own 0600 mode, set
 * before bind, is the barrier). It and its ancestors must be root's. */
static int prepare_parent(const struct ssh_relay *r, const char *path,
			  char *err, size_t errlen)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct stat st;
	char *slash;

	snprintf(dir, sizeof dir, "%s", path);
	slash = strrchr(dir, '/');
	if (slash == NULL)
		return 0;              /* relative name: the cwd */
	if (slash == dir)
		return 0;              /* in "/" itself */
	*slash = '\0';
	if (mkdir_parents(dir, err, errlen) != 0)
		return -1;
	if (lstat(dir, &st) != 0) {
		snprintf(err, errlen, "stat %s: %s", dir, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s is not a directory", dir);
		return -1;
	}
	if (!trusted_owner(st.st_uid)) {
		snprintf(err, errlen, "socket directory %s is owned by uid %u, not root; "
			 "refusing (its owner could replace the socket)", dir,
			 (unsigned)st.st_uid);
		return -1;
	}
	if (check_ancestors(dir, err, errlen) != 0)
		return -1;
	if (st.st_mode & S_ISVTX) {
		relay_log(r, SSH_RELAY_LOG_WARN,
			  "ssh: socket directory %s is shared (sticky); leaving its mode", dir);
		return 0;
	}
	if ((st.st_mode & 07777) != 0700 && chmod(dir, 0700) != 0) {
		snprintf(err, errlen, "chmod 0700 %s: %s", dir, strerror(errno));
		return -1;
	}
	return 0;
}

/* true if a server accepts connections on the socket file at path. */
static bool socket_in_use(const struct sockaddr_un *sa, socklen_t salen)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool used;

	if (fd < 0)
		return false;
	used = connect(fd, (const struct sockaddr *)sa, salen) == 0;
	close(fd);
	return used;
}

static int remove_stale_socket(const char *path, const struct sockaddr_un *sa,
			       socklen_t salen, char *err, size_t errlen)
{
	struct stat st;

	if (lstat(path, &st) != 0) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "stat %s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "%s exists and is not a socket", path);
		return -1;
	}
	if (socket_in_use(sa, salen)) {
		snprintf(err, errlen, "%s: another server is listening there", path);
		return -1;
	}
	if (unlink(path) != 0) {
		snprintf(err, errlen, "removing stale socket %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* Fills sa from "@name" (abstract) or a path; returns the address length. */
static socklen_t socket_address(const char *spec, struct sockaddr_un *sa,
				char *err, size_t errlen)
{
	size_t len = strlen(spec);

	memset(sa, 0, sizeof *sa);
	sa->sun_family = AF_UNIX;
	if (spec[0] == '@') {
		if (len < 2 || len > sizeof sa->sun_path) {
			snprintf(err, errlen, "abstract socket name '%s' must be 1..%zu bytes",
				 spec, sizeof sa->sun_path - 1);
			return 0;
		}
		memcpy(sa->sun_path + 1, spec + 1, len - 1);
		return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	}
	if (len == 0 || len >= sizeof sa->sun_path) {
		snprintf(err, errlen, "socket path '%s' must be 1..%zu bytes", spec,
			 sizeof sa->sun_path - 1);
		return 0;
	}
	memcpy(sa->sun_path, spec, len);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
}

static int bind_listener(struct ssh_relay *r, char *err, size_t errlen)
{
	struct sockaddr_un sa;
	socklen_t salen = socket_address(r->socket_path, &sa, err, errlen);
	struct stat st;
	int fd;

	if (salen == 0)
		return -1;
	if (!r->abstract && (prepare_parent(r, r->socket_path, err, errlen) != 0 ||
			     remove_stale_socket(r->socket_path, &sa, salen, err, errlen) != 0))
		return -1;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	/* Linux creates the socket file with this mode (minus umask): there is
	 * no moment at which it is more open than 0600. */
	if (!r->abstract && fchmod(fd, 0600) != 0) {
		snprintf(err, errlen, "fchmod socket: %s", strerror(errno));
		goto fail;
	}
	if (bind(fd, (struct sockaddr *)&sa, salen) != 0) {
		snprintf(err, errlen, "bind %s: %s", r->socket_path, strerror(errno));
		goto fail;
	}
	if (!r->abstract) {
		if (chmod(r->socket_path, 0600) != 0 || lstat(r->socket_path, &st) != 0) {
			snprintf(err, errlen, "chmod 0600 %s: %s", r->socket_path,
				 strerror(errno));
			unlink(r->socket_path);
			goto fail;
		}
		r->sock_dev = st.st_dev;
		r->sock_ino = st.st_ino;
	}
	if (listen(fd, LISTEN_BACKLOG) != 0) {
		snprintf(err, errlen, "listen %s: %s", r->socket_path, strerror(errno));
		if (!r->abstract)
			unlink(r->socket_path);
		goto fail;
	}
	r->listen_fd = fd;
	return 0;
fail:
	close(fd);
	return -1;
}

static void unlink_own_socket(const struct ssh_relay *r)
{
	struct stat st;

	if (r->abstract || r->sock_ino == 0)
		return;
	/* Only the socket we created, not whatever replaced it. */
	if (lstat(r->socket_path, &st) == 0 && st.st_dev == r->sock_dev &&
	    st.st_ino == r->sock_ino && unlink(r->socket_path) != 0)
		relay_log(r, SSH_RELAY_LOG_WARN, "ssh: unlink %s: %s", r->socket_path,
			  strerror(errno));
}

/* ---- host key ---- */

static int setup_bind(struct ssh_relay *r, char *err, size_t errlen)
{
	ssh_key key = NULL;
	bool no = false;
	int verbosity = SSH_LOG_NOLOG;

	if (ssh_pki_generate(SSH_KEYTYPE_ED25519, 0, &key) != SSH_OK) {
		snprintf(err, errlen, "generating the Ed25519 host key failed");
		return -1;
	}
	r->bind = ssh_bind_new();
	if (r->bind == NULL) {
		ssh_key_free(key);
		snprintf(err, errlen, "ssh_bind_new: out of memory");
		return -1;
	}
	/* No /etc/ssh/libssh_server_config: behaviour is fixed here. */
	if (ssh_bind_options_set(r->bind, SSH_BIND_OPTIONS_PROCESS_CONFIG, &no) != SSH_OK ||
	    ssh_bind_options_set(r->bind, SSH_BIND_OPTIONS_LOG_VERBOSITY, &verbosity) != SSH_OK) {
		ssh_key_free(key);
		snprintf(err, errlen, "ssh bind options: %s", ssh_get_error(r->bind));
		return -1;
	}
	/* On success the bind owns the key and frees it in ssh_bind_free. */
	if (ssh_bind_options_set(r->bind, SSH_BIND_OPTIONS_IMPORT_KEY, key) != SSH_OK) {
		ssh_key_free(key);
		snprintf(err, errlen, "importing the host key: %s", ssh_get_error(r->bind));
		return -1;
	}
	return 0;
}

/* ---- acceptor ---- */

static bool admit_connection(struct ssh_relay *r, unsigned *id)
{
	bool ok;

	pthread_mutex_lock(&r->mu);
	ok = r->n_conns < SSH_RELAY_MAX_CONNECTIONS;
	if (ok) {
		r->n_conns++;
		*id = ++r->next_conn_id;
	}
	pthread_mutex_unlock(&r->mu);
	return ok;
}

void relay_conn_finished(struct ssh_relay *r)
{
	pthread_mutex_lock(&r->mu);
	r->n_conns--;
	pthread_cond_broadcast(&r->conns_done);
	pthread_mutex_unlock(&r->mu);
}

/* Waits up to ms for the stop eventfd; true if stopping. */
static bool wait_stop(struct ssh_relay *r, int ms)
{
	struct pollfd p = { .fd = r->stop_fd, .events = POLLIN };
	return poll(&p, 1, ms) > 0 || relay_is_stopping(r);
}

/* An abstract socket has no file mode: anyone in the network namespace can
 * connect, which includes the agent when the supervisor runs without a
 * namespace of its own (process-only mode), and any other user of the
 * container. Without authorized keys reaching the socket is the whole
 * authentication, so there only root (or our own uid) may connect. */
static bool peer_allowed(const struct ssh_relay *r, int fd)
{
	struct ucred cred;
	socklen_t len = sizeof cred;

	if (!r->abstract || r->auth_keys != NULL)
		return true;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || len != sizeof cred) {
		relay_log(r, SSH_RELAY_LOG_WARN, "ssh: SO_PEERCRED: %s; refusing the connection",
			  strerror(errno));
		return false;
	}
	if (cred.uid == 0 || cred.uid == geteuid())
		return true;
	relay_log(r, SSH_RELAY_LOG_WARN,
		  "ssh: refusing a connection from uid %u (pid %d) on the abstract socket "
		  "(only root; use authorized keys to admit others)",
		  (unsigned)cred.uid, (int)cred.pid);
	return false;
}

static void serve_accepted(struct ssh_relay *r, int fd)
{
	unsigned id;
	ssh_session s;

	if (!peer_allowed(r, fd)) {
		close(fd);
		return;
	}
	if (!admit_connection(r, &id)) {
		relay_log(r, SSH_RELAY_LOG_WARN,
			  "ssh: refusing a connection: %d connections already open",
			  SSH_RELAY_MAX_CONNECTIONS);
		close(fd);
		return;
	}
	s = ssh_new();
	if (s == NULL) {
		relay_log(r, SSH_RELAY_LOG_ERROR, "ssh: ssh_new: out of memory");
		close(fd);
		relay_conn_finished(r);
		return;
	}
	/* From here the session owns fd (ssh_free closes it). */
	if (ssh_bind_accept_fd(r->bind, s, fd) != SSH_OK) {
		relay_log(r, SSH_RELAY_LOG_ERROR, "ssh: accepting connection: %s",
			  ssh_get_error(r->bind));
		ssh_free(s);
		relay_conn_finished(r);
		return;
	}
	if (conn_spawn_thread(r, s, id) != 0)
		relay_conn_finished(r);
}

static void *acceptor_main(void *arg)
{
	struct ssh_relay *r = arg;

	for (;;) {
		struct pollfd p[2] = {
			{ .fd = r->listen_fd, .events = POLLIN },
			{ .fd = r->stop_fd, .events = POLLIN },
		};
		if (poll(p, 2, -1) < 0 && errno != EINTR) {
			relay_log(r, SSH_RELAY_LOG_ERROR, "ssh: poll: %s", strerror(errno));
			if (wait_stop(r, ACCEPT_RETRY_MS))
				break;
			continue;
		}
		if (p[1].revents || relay_is_stopping(r))
			break;
		if (!(p[0].revents & POLLIN))
			continue;
		int fd = accept4(r->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				relay_log(r, SSH_RELAY_LOG_WARN, "ssh: accept: %s",
					  strerror(errno));
				if (wait_stop(r, ACCEPT_RETRY_MS))
					break;
			}
			continue;
		}
		serve_accepted(r, fd);
	}
	return NULL;
}

/* Relay threads run with every signal blocked: the host handles signals, and
 * a write to a closed pipe must fail with EPIPE rather than raise SIGPIPE. */
static int start_thread_blocked(pthread_t *t, void *(*fn)(void *), void *arg, bool detached)
{
	sigset_t all, old;
	pthread_attr_t attr;
	int rc;

	sigfillset(&all);
	if (pthread_attr_init(&attr) != 0)
		return -1;
	if (detached)
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(t, &attr, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	return rc == 0 ? 0 : -1;
}

int relay_start_detached(void *(*fn)(void *), void *arg)
{
	pthread_t t;
	return start_thread_blocked(&t, fn, arg, true);
}

/* ---- start / stop ---- */

static void relay_free(struct ssh_relay *r)
{
	if (r->listen_fd >= 0)
		close(r->listen_fd);
	if (r->stop_fd >= 0)
		close(r->stop_fd);
	if (r->bind)
		ssh_bind_free(r->bind);
	for (size_t i = 0; i < r->n_auth_keys; i++)
		ssh_key_free(r->auth_keys[i]);
	free(r->auth_keys);
	free(r->socket_path);
	pthread_cond_destroy(&r->conns_done);
	pthread_mutex_destroy(&r->mu);
	free(r);
}

static int validate_config(const struct ssh_relay_config *cfg, char *err, size_t errlen)
{
	if (cfg == NULL || cfg->socket_path == NULL || cfg->socket_path[0] == '\0') {
		snprintf(err, errlen, "ssh: no socket path");
		return -1;
	}
	if (cfg->host.spawn == NULL || cfg->host.connect_inside == NULL) {
		snprintf(err, errlen, "ssh: host callbacks missing");
		return -1;
	}
	return 0;
}

struct ssh_relay *ssh_relay_start(const struct ssh_relay_config *cfg,
				  char *err, size_t errlen)
{
	struct ssh_relay *r;

	if (validate_config(cfg, err, errlen) != 0)
		return NULL;
	r = calloc(1, sizeof *r);
	if (r == NULL) {
		snprintf(err, errlen, "ssh: out of memory");
		return NULL;
	}
	r->listen_fd = -1;
	r->host = cfg->host;
	r->abstract = cfg->socket_path[0] == '@';
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->conns_done, NULL);
	for (int i = 0; i < RELAY_MAX_CHILDREN; i++)
		r->slots[i].wake_fd = -1;
	r->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	r->socket_path = strdup(cfg->socket_path);
	if (r->stop_fd < 0 || r->socket_path == NULL) {
		snprintf(err, errlen, "ssh: %s", strerror(errno));
		goto fail;
	}
	if (cfg->authorized_keys &&
	    load_authorized_keys(r, cfg->authorized_keys, err, errlen) != 0)
		goto fail;
	if (setup_bind(r, err, errlen) != 0 || bind_listener(r, err, errlen) != 0)
		goto fail;
	if (start_thread_blocked(&r->acceptor, acceptor_main, r, false) != 0) {
		snprintf(err, errlen, "ssh: starting the acceptor thread failed");
		unlink_own_socket(r);
		goto fail;
	}
	r->acceptor_started = true;
	relay_log(r, SSH_RELAY_LOG_INFO, "ssh: listening on %s (%s)", r->socket_path,
		  r->auth_keys ? "authorized keys required" : "socket access authenticates");
	return r;
fail:
	relay_free(r);
	return NULL;
}

void ssh_relay_stop(struct ssh_relay *r)
{
	uint64_t one = 1;

	if (r == NULL)
		return;
	__atomic_store_n(&r->stopping, 1, __ATOMIC_RELEASE);
	if (write(r->stop_fd, &one, sizeof one) < 0)
		relay_log(r, SSH_RELAY_LOG_WARN, "ssh: stop signal: %s", strerror(errno));
	if (r->acceptor_started)
		pthread_join(r->acceptor, NULL);
	close(r->listen_fd);
	r->listen_fd = -1;
	unlink_own_socket(r);
	pthread_mutex_lock(&r->mu);
	while (r->n_conns > 0)
		pthread_cond_wait(&r->conns_done, &r->mu);
	pthread_mutex_unlock(&r->mu);
	relay_log(r, SSH_RELAY_LOG_INFO, "ssh: stopped");
	relay_free(r);
}
