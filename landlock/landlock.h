/* landlock.h - filesystem confinement of the agent with Landlock.
 *
 * Split in two so that nothing is allocated after fork():
 *   landlock_prepare()  in the supervisor, while still root: probes the ABI,
 *                       opens every path (O_PATH|O_CLOEXEC), builds the kernel
 *                       ruleset and keeps only its fd (close-on-exec). Paths are
 *                       resolved one component at a time and a symlink not
 *                       owned by root is never followed (the agent may have
 *                       planted it in its workspace on an earlier run): such a
 *                       path is skipped like a missing one (fatal under
 *                       hard_requirement).
 *   landlock_apply()    in the forked child after the privilege drop, right
 *                       before exec: no_new_privs + landlock_restrict_self().
 * A plan can be applied by any number of children (the ruleset is not consumed).
 *
 * Rights: every filesystem right the running ABI offers is handled (REFER from
 * ABI 2, TRUNCATE from 3, IOCTL_DEV from 5). read_only grants EXECUTE,
 * READ_FILE, READ_DIR; read_write grants every handled right; a path that is not
 * a directory gets only the file rights (EXECUTE, WRITE_FILE, READ_FILE,
 * TRUNCATE, IOCTL_DEV) of its grant. Network rights (ABI 4) are not handled:
 * the network namespace and the proxy confine the network.
 * Scoping (ABI 6): signals and abstract Unix sockets are scoped to the sandbox
 * domain, so the agent cannot signal the supervisor (or any process outside the
 * sandbox) nor connect to abstract sockets created outside it. Always on when
 * the kernel offers it. Denial logging (ABI 7): the agent's denials after exec
 * are sent to the kernel audit log (LANDLOCK_RESTRICT_SELF_LOG_NEW_EXEC_ON).
 */
#ifndef OPENSHELL_LANDLOCK_H
#define OPENSHELL_LANDLOCK_H

#include <stdbool.h>
#include <stddef.h>

struct policy;

/* Limits (documented in README). */
#define LANDLOCK_MAX_EXTRA_PATHS 64u   /* entries in extra_ro + extra_rw together */
#define LANDLOCK_MAX_PATHS 400u        /* policy + workdir + baseline + extra */
#define LANDLOCK_MIN_HARD_ABI 3        /* hard_requirement needs REFER and TRUNCATE */
#define LANDLOCK_ERR_MIN 256u          /* err buffers should hold at least this */
#define LANDLOCK_MSG_MAX 512u          /* longest warning passed to the sink */

/* Warnings while preparing (skipped paths, degraded ABI, Landlock unavailable).
 * May be NULL. warn() is called synchronously from landlock_prepare(). */
struct landlock_event_sink {
	void (*warn)(void *ud, const char *msg);
	void *ud;
};

struct landlock_plan;

/* Build the plan for policy p. Returns 0 with *out set, or -1 with err filled
 * (hard_requirement failures, or any error: bad extra path, too many paths,
 * out of memory). *out is NULL when the policy has no filesystem_policy
 * (Landlock is not used at all). Under best_effort an unusable Landlock gives
 * a plan that enforces nothing and says so in landlock_describe().
 * workdir may be NULL; it is added read-write when p->include_workdir.
 * extra_ro / extra_rw: NULL-terminated absolute paths the supervisor needs
 * (e.g. CA files); either may be NULL. A missing extra path is handled like a
 * policy path. Must run as the user that can open every path (root). */
int landlock_prepare(const struct policy *p, const char *workdir, const char *const *extra_ro,
		     const char *const *extra_rw, const struct landlock_event_sink *sink,
		     struct landlock_plan **out, char *err, size_t errlen);

/* In the child: set no_new_privs and restrict the calling thread. plan may be
 * NULL (nothing to do). Allocates nothing, takes no lock. Returns 0, or -1
 * with err filled; a failure of landlock_restrict_self() is fatal in both
 * compatibility modes (the supervisor already announced the confinement). */
int landlock_apply(const struct landlock_plan *plan, char *err, size_t errlen);

/* One JSON object for the startup event (plan may be NULL), e.g.
 * {"enabled":true,"enforced":true,"abi":7,"compatibility":"best_effort",
 *  "handled_access_fs":["execute",...],"scoped":["abstract_unix_socket","signal"],
 *  "log_new_exec":true,"rules":[{"path":"/usr","access":"read_only","type":"dir",
 *  "source":"policy"},...],"skipped":[{"path":"/x","reason":"path does not exist",
 *  "source":"policy"}],"degraded":[...messages]}.
 * Returns the length of the full JSON text like snprintf (so a return >= len
 * means truncated; buf then holds ""), or -1 on error. */
int landlock_describe(const struct landlock_plan *plan, char *buf, size_t len);

void landlock_plan_free(struct landlock_plan *plan);

/* The running kernel's Landlock ABI version, or <= 0 when unavailable
 * (-errno of the probe: -ENOSYS not built in, -EOPNOTSUPP disabled at boot). */
int landlock_abi_version(void);

/* True when the plan restricts anything (false for NULL and degraded plans). */
bool landlock_plan_enforced(const struct landlock_plan *plan);

#endif
