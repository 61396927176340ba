/* relay_int.h - private to ssh-relay/: the relay object shared by the
 * acceptor (relay.c) and the connection threads (conn.c).
 */
#ifndef OPENSHELL_SSH_RELAY_INT_H
#define OPENSHELL_SSH_RELAY_INT_H

#include <libssh/libssh.h>
#include <libssh/server.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/types.h>

#include "ssh-relay/ssh_relay.h"

#define RELAY_MAX_CHILDREN (SSH_RELAY_MAX_CONNECTIONS * SSH_RELAY_MAX_CHANNELS)

/* One session child known to the relay; guarded by ssh_relay.mu. */
struct child_slot {
	pid_t pid;        /* 0: free */
	int wake_fd;      /* the owning connection's eventfd */
	bool exited;
	int status;       /* wait status, valid once exited */
};

struct ssh_relay {
	struct ssh_relay_host host;
	char *socket_path;
	bool abstract;
	dev_t sock_dev;
	ino_t sock_ino;
	ssh_key *auth_keys;       /* NULL: authentication by socket access only */
	size_t n_auth_keys;
	ssh_bind bind;            /* used by the acceptor thread only */
	int listen_fd;
	int stop_fd;              /* eventfd, written once by ssh_relay_stop */
	pthread_t acceptor;
	bool acceptor_started;

	pthread_mutex_t mu;
	pthread_cond_t conns_done;
	int n_conns;              /* live connection threads */
	unsigned next_conn_id;
	int stopping;             /* read with __atomic_load_n */
	struct child_slot slots[RELAY_MAX_CHILDREN];
};

void relay_log(const struct ssh_relay *r, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
bool relay_is_stopping(struct ssh_relay *r);
bool relay_key_allowed(const struct ssh_relay *r, ssh_key key);

/* Calls host.spawn with the registry locked, so that the child's exit cannot
 * be reported before it is registered. Returns the pid and its slot, or -1. */
pid_t relay_spawn(struct ssh_relay *r, const struct ssh_relay_session_req *req,
		  int wake_fd, int *slot, char *err, size_t errlen);
/* true once the slot's child exited; *status is its wait status. */
bool relay_slot_exited(struct ssh_relay *r, int slot, int *status);
void relay_slot_release(struct ssh_relay *r, int slot);

/* Uncounts a finished connection thread (its last touch of r). */
void relay_conn_finished(struct ssh_relay *r);
/* Starts a detached thread with every signal blocked; 0 or -1. */
int relay_start_detached(void *(*fn)(void *), void *arg);

/* conn.c: serves one accepted session on a new detached thread. The caller
 * has already counted it in r->n_conns; the thread uncounts it at its end.
 * Returns 0, or -1 (session freed, nothing counted down). */
int conn_spawn_thread(struct ssh_relay *r, ssh_session session, unsigned id);

#endif
