/* landlock.c - build a Landlock ruleset in the supervisor, apply it in the child.
 *
 * The ruleset is created and filled in the parent (path fds are opened as
 * root and closed again once their rule is in the ruleset); the child only
 * calls landlock_restrict_self() on the ruleset fd, which allocates nothing in
 * user space.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "landlock/landlock.h"
#include "landlock/ll_int.h"
#include "policy/policy.h"

#define LL_MAX_DEGRADED 4 /* entries of the missing-feature table below */

struct baseline_path {
	const char *path;
	enum ll_grant grant;
};

/* Paths every program needs (listed in README). Added only when the policy
 * does not name the same path itself, and only when they exist. */
static const struct baseline_path BASELINE[] = {
#if defined(__x86_64__)
	{ "/lib64/ld-linux-x86-64.so.2", LL_GRANT_RO }, /* the dynamic loader */
	{ "/lib/ld-linux.so.2", LL_GRANT_RO },          /* 32-bit x86 loader */
#elif defined(__aarch64__)
	{ "/lib/ld-linux-aarch64.so.1", LL_GRANT_RO },
#endif
	{ "/etc/ld.so.cache", LL_GRANT_RO },
	{ "/proc", LL_GRANT_RO },
	{ "/dev/null", LL_GRANT_RW },
	{ "/dev/zero", LL_GRANT_RO },
	{ "/dev/random", LL_GRANT_RO },
	{ "/dev/urandom", LL_GRANT_RO },
	{ "/dev/tty", LL_GRANT_RW },
	{ "/tmp", LL_GRANT_RW },
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	if (!err || errlen == 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static void warn(const struct landlock_event_sink *sink, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void warn(const struct landlock_event_sink *sink, const char *fmt, ...)
{
	if (!sink || !sink->warn)
		return;
	char msg[LANDLOCK_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	sink->warn(sink->ud, msg);
}

int landlock_abi_version(void)
{
	long v = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
	if (v < 0)
		return errno > 0 ? -errno : -EINVAL;
	return v > 0 ? (int)v : -EINVAL;
}

const char *ll_probe_error_text(int neg_errno)
{
	switch (-neg_errno) {
	case ENOSYS:
		return "not implemented by this kernel";
	case EOPNOTSUPP:
		return "built in but disabled (not in the lsm= list)";
	case EPERM:
		return "blocked by the runtime's seccomp filter";
	default:
		return "unexpected probe error";
	}
}

uint64_t ll_handled_fs_for_abi(int abi)
{
	uint64_t a = LL_ACCESS_FS_V1;
	if (abi >= 2)
		a |= LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		a |= LANDLOCK_ACCESS_FS_TRUNCATE;
	if (abi >= 5)
		a |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
	return abi >= 1 ? a : 0;
}

const char *ll_source_name(enum ll_source s)
{
	switch (s) {
	case LL_SRC_POLICY:
		return "policy";
	case LL_SRC_WORKDIR:
		return "workdir";
	case LL_SRC_SUPERVISOR:
		return "supervisor";
	case LL_SRC_BASELINE:
		return "baseline";
	}
	return "?";
}

static const char *open_error_text(int e)
{
	switch (e) {
	case ENOENT:
		return "path does not exist";
	case EACCES:
		return "permission denied";
	case ELOOP:
		return "too many symlink levels";
	case ENAMETOOLONG:
		return "path name too long";
	case ENOTDIR:
		return "path component is not a directory";
	default:
		return "unexpected error";
	}
}

/* open_trusted() result for a symlink the supervisor does not own. */
#define LL_UNTRUSTED_LINK (-100000)
#define LL_MAX_LINKS 40          /* like the kernel's MAXSYMLINKS */
#define LL_RESOLVE_BYTES (2 * POLICY_MAX_PATH_BYTES + 8)

/* Open path (O_PATH) the way the kernel would resolve it, one component at a
 * time, but refuse to follow a symlink owned by anyone but root (or us): the
 * agent may have planted one on an earlier run (a persistent, agent-writable
 * workspace), and following it as root would hand the grant of a policy path
 * to whatever the link names. Links of the image (root's, e.g. /lib64 ->
 * usr/lib64) resolve as usual. Returns an fd, or -errno, or LL_UNTRUSTED_LINK. */
static int open_trusted(const char *path)
{
	char rest[LL_RESOLVE_BYTES];
	char target[POLICY_MAX_PATH_BYTES + 1];
	int links = 0;
	if (snprintf(rest, sizeof rest, "%s", path) >= (int)sizeof rest)
		return -ENAMETOOLONG;
	int cur = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (cur < 0)
		return -errno;
	char *p = rest;
	for (;;) {
		while (*p == '/')
			p++;
		if (*p == '\0')
			return cur;
		char *end = strchr(p, '/');
		size_t clen = end ? (size_t)(end - p) : strlen(p);
		char comp[POLICY_MAX_PATH_BYTES + 1];
		if (clen >= sizeof comp) {
			close(cur);
			return -ENAMETOOLONG;
		}
		memcpy(comp, p, clen);
		comp[clen] = '\0';
		p += clen;
		if (strcmp(comp, ".") == 0)
			continue;
		int next = openat(cur, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0) {
			int e = errno;
			close(cur);
			return -e;
		}
		struct stat st;
		if (fstat(next, &st) != 0) {
			int e = errno;
			close(next);
			close(cur);
			return -e;
		}
		if (!S_ISLNK(st.st_mode)) {
			close(cur);
			cur = next;
			if (*p != '\0' && !S_ISDIR(st.st_mode)) {
				close(cur);
				return -ENOTDIR;
			}
			continue;
		}
		if ((st.st_uid != 0 && st.st_uid != geteuid()) || ++links > LL_MAX_LINKS) {
			close(next);
			close(cur);
			return links > LL_MAX_LINKS ? -ELOOP : LL_UNTRUSTED_LINK;
		}
		ssize_t n = readlinkat(next, "", target, sizeof target - 1);
		int e = errno;
		close(next);
		if (n <= 0 || (size_t)n >= sizeof target - 1) {
			close(cur);
			return n < 0 ? -e : -ENAMETOOLONG;
		}
		target[n] = '\0';
		/* rest becomes target + what was left after the link */
		char tail[LL_RESOLVE_BYTES];
		if (snprintf(tail, sizeof tail, "%s", p) >= (int)sizeof tail ||
		    snprintf(rest, sizeof rest, "%s/%s", target, tail) >= (int)sizeof rest) {
			close(cur);
			return -ENAMETOOLONG;
		}
		p = rest;
		if (target[0] == '/') {
			close(cur);
			cur = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
			if (cur < 0)
				return -errno;
		}
	}
}

static struct ll_entry *find_entry(struct landlock_plan *plan, const char *path)
{
	for (size_t i = 0; i < plan->n_entries; i++)
		if (strcmp(plan->entries[i].path, path) == 0)
			return &plan->entries[i];
	return NULL;
}

/* Add a path to the list; the same path twice keeps the wider grant and the
 * first source. Returns 0, or -1 with err. */
static int add_entry(struct landlock_plan *plan, const char *path, enum ll_grant grant,
		     enum ll_source src, char *err, size_t errlen)
{
	if (path[0] != '/') {
		set_err(err, errlen, "Landlock path must be absolute: \"%s\" (%s)", path,
			ll_source_name(src));
		return -1;
	}
	if (strlen(path) >= POLICY_MAX_PATH_BYTES) {
		set_err(err, errlen, "Landlock path longer than %u bytes (%s)",
			POLICY_MAX_PATH_BYTES, ll_source_name(src));
		return -1;
	}
	struct ll_entry *e = find_entry(plan, path);
	if (e) {
		if (grant > e->grant)
			e->grant = grant;
		return 0;
	}
	if (plan->n_entries >= LANDLOCK_MAX_PATHS) {
		set_err(err, errlen, "more than %u Landlock paths", LANDLOCK_MAX_PATHS);
		return -1;
	}
	char *copy = strdup(path);
	if (!copy) {
		set_err(err, errlen, "out of memory");
		return -1;
	}
	plan->entries[plan->n_entries++] = (struct ll_entry){ .path = copy, .grant = grant,
							      .source = src };
	return 0;
}

static int add_list(struct landlock_plan *plan, char *const *paths, size_t n,
		    enum ll_grant grant, enum ll_source src, char *err, size_t errlen)
{
	for (size_t i = 0; i < n; i++)
		if (add_entry(plan, paths[i], grant, src, err, errlen) != 0)
			return -1;
	return 0;
}

static int add_extra(struct landlock_plan *plan, const char *const *paths, enum ll_grant grant,
		     size_t *count, char *err, size_t errlen)
{
	for (; paths && *paths; paths++) {
		if (++*count > LANDLOCK_MAX_EXTRA_PATHS) {
			set_err(err, errlen, "more than %u supervisor Landlock paths",
				LANDLOCK_MAX_EXTRA_PATHS);
			return -1;
		}
		if (add_entry(plan, *paths, grant, LL_SRC_SUPERVISOR, err, errlen) != 0)
			return -1;
	}
	return 0;
}

static int collect_paths(struct landlock_plan *plan, const struct policy *p, const char *workdir,
			 const char *const *extra_ro, const char *const *extra_rw, char *err,
			 size_t errlen)
{
	size_t n_extra = 0;
	if (add_list(plan, p->read_write, p->n_read_write, LL_GRANT_RW, LL_SRC_POLICY, err,
		     errlen) != 0 ||
	    add_list(plan, p->read_only, p->n_read_only, LL_GRANT_RO, LL_SRC_POLICY, err,
		     errlen) != 0)
		return -1;
	if (p->include_workdir && workdir &&
	    add_entry(plan, workdir, LL_GRANT_RW, LL_SRC_WORKDIR, err, errlen) != 0)
		return -1;
	if (add_extra(plan, extra_rw, LL_GRANT_RW, &n_extra, err, errlen) != 0 ||
	    add_extra(plan, extra_ro, LL_GRANT_RO, &n_extra, err, errlen) != 0)
		return -1;
	/* A path the policy names keeps the policy's grant (an explicit read-only
	 * /tmp stays read-only). */
	for (size_t i = 0; i < sizeof BASELINE / sizeof BASELINE[0]; i++) {
		if (find_entry(plan, BASELINE[i].path))
			continue;
		if (add_entry(plan, BASELINE[i].path, BASELINE[i].grant, LL_SRC_BASELINE, err,
			      errlen) != 0)
			return -1;
	}
	return 0;
}

static int note_degraded(struct landlock_plan *plan, const struct landlock_event_sink *sink,
			 const char *msg, char *err, size_t errlen)
{
	char *copy = strdup(msg);
	if (!copy) {
		set_err(err, errlen, "out of memory");
		return -1;
	}
	plan->degraded[plan->n_degraded++] = copy;
	warn(sink, "landlock degraded: %s", msg);
	return 0;
}

/* Record what this kernel cannot enforce. hard_requirement refuses ABIs below
 * LANDLOCK_MIN_HARD_ABI: without REFER a read-write tree breaks renames, and
 * without TRUNCATE read-only files can be truncated. Missing ioctl control and
 * scoping are hardening beyond the policy: warned about in both modes. */
static int check_abi_features(struct landlock_plan *plan, const struct landlock_event_sink *sink,
			      char *err, size_t errlen)
{
	int abi = plan->abi;
	if (plan->hard && abi < LANDLOCK_MIN_HARD_ABI) {
		set_err(err, errlen,
			"Landlock ABI %d is below %d, required by landlock.compatibility "
			"hard_requirement (REFER and TRUNCATE rights)",
			abi, LANDLOCK_MIN_HARD_ABI);
		return -1;
	}
	static const struct {
		int min_abi;
		const char *msg;
	} missing[LL_MAX_DEGRADED] = {
		{ 2, "ABI 1: cross-directory rename and link are always denied (EXDEV)" },
		{ 3, "ABI < 3: truncate() of read-only files is not restricted" },
		{ 5, "ABI < 5: ioctl on device files is not restricted" },
		{ 6, "ABI < 6: signals and abstract Unix sockets are not scoped; the agent can "
		     "signal processes of its uid outside the sandbox" },
	};
	for (size_t i = 0; i < LL_MAX_DEGRADED; i++)
		if (abi < missing[i].min_abi &&
		    note_degraded(plan, sink, missing[i].msg, err, errlen) != 0)
			return -1;
	return 0;
}

static int create_ruleset(struct landlock_plan *plan, char *err, size_t errlen)
{
	struct ll_ruleset_attr attr = { .handled_access_fs = plan->handled_fs,
					.scoped = plan->scoped };
	size_t size = plan->abi >= 6   ? sizeof attr
		      : plan->abi >= 4 ? offsetof(struct ll_ruleset_attr, scoped)
				       : offsetof(struct ll_ruleset_attr, handled_access_net);
	long fd = syscall(SYS_landlock_create_ruleset, &attr, size, 0);
	if (fd < 0) {
		set_err(err, errlen, "landlock_create_ruleset (ABI %d): %s", plan->abi,
			strerror(errno));
		return -1;
	}
	plan->ruleset_fd = (int)fd;
	return 0;
}

static uint64_t grant_access(const struct landlock_plan *plan, enum ll_grant g, bool is_dir)
{
	uint64_t a = g == LL_GRANT_RW ? plan->handled_fs : LL_ACCESS_READ_ONLY;
	a &= plan->handled_fs;
	return is_dir ? a : a & LL_ACCESS_FILE;
}

/* Open one path as the caller (root) and add its rule. Returns 0 (applied or
 * skipped) or -1 with err. */
static int apply_entry(struct landlock_plan *plan, struct ll_entry *e,
		       const struct landlock_event_sink *sink, char *err, size_t errlen)
{
	int fd = open_trusted(e->path);
	if (fd < 0) {
		e->skip_reason = fd == LL_UNTRUSTED_LINK
			? "path goes through a symlink not owned by root"
			: open_error_text(-fd);
		if (e->source == LL_SRC_BASELINE)
			return 0;
		if (plan->hard) {
			set_err(err, errlen,
				"Landlock path unavailable in hard_requirement mode: %s (%s, %s)",
				e->path, e->skip_reason, ll_source_name(e->source));
			return -1;
		}
		warn(sink, "landlock: skipping %s path %s (%s)", ll_source_name(e->source), e->path,
		     e->skip_reason);
		return 0;
	}
	struct stat st;
	if (fstat(fd, &st) != 0) {
		set_err(err, errlen, "fstat %s: %s", e->path, strerror(errno));
		close(fd);
		return -1;
	}
	e->is_dir = S_ISDIR(st.st_mode);
	e->access = grant_access(plan, e->grant, e->is_dir);
	struct landlock_path_beneath_attr pb = { .allowed_access = e->access, .parent_fd = fd };
	long rc = syscall(SYS_landlock_add_rule, plan->ruleset_fd, LANDLOCK_RULE_PATH_BENEATH, &pb,
			  0);
	int ae = errno;
	close(fd);
	if (rc != 0) {
		set_err(err, errlen, "landlock_add_rule %s: %s", e->path, strerror(ae));
		return -1;
	}
	e->applied = true;
	return 0;
}

static struct landlock_plan *plan_alloc(const struct policy *p, char *err, size_t errlen)
{
	struct landlock_plan *plan = calloc(1, sizeof *plan);
	if (plan) {
		plan->ruleset_fd = -1;
		plan->hard = p->landlock_compat == POLICY_LANDLOCK_HARD_REQUIREMENT;
		plan->entries = calloc(LANDLOCK_MAX_PATHS, sizeof *plan->entries);
		plan->degraded = calloc(LL_MAX_DEGRADED, sizeof *plan->degraded);
	}
	if (!plan || !plan->entries || !plan->degraded) {
		landlock_plan_free(plan);
		set_err(err, errlen, "out of memory");
		return NULL;
	}
	return plan;
}

/* Landlock is unusable: fatal under hard_requirement, else a plan that
 * enforces nothing. */
static int unavailable(struct landlock_plan *plan, const struct landlock_event_sink *sink,
		       char *err, size_t errlen)
{
	plan->unavailable = ll_probe_error_text(plan->abi);
	if (plan->hard) {
		set_err(err, errlen, "Landlock unavailable (%s) and landlock.compatibility is "
			"hard_requirement", plan->unavailable);
		return -1;
	}
	warn(sink, "landlock unavailable (%s): the filesystem policy is NOT enforced",
	     plan->unavailable);
	return 0;
}

int landlock_prepare(const struct policy *p, const char *workdir, const char *const *extra_ro,
		     const char *const *extra_rw, const struct landlock_event_sink *sink,
		     struct landlock_plan **out, char *err, size_t errlen)
{
	*out = NULL;
	if (!p->has_filesystem_policy)
		return 0;
	struct ll_inputs in = { .p = p, .workdir = workdir, .extra_ro = extra_ro,
				.extra_rw = extra_rw, .sink = sink };
	return ll_prepare_abi(&in, landlock_abi_version(), out, err, errlen);
}

int ll_prepare_abi(const struct ll_inputs *in, int abi, struct landlock_plan **out, char *err,
		   size_t errlen)
{
	const struct landlock_event_sink *sink = in->sink;
	*out = NULL;
	struct landlock_plan *plan = plan_alloc(in->p, err, errlen);
	if (!plan)
		return -1;
	if (collect_paths(plan, in->p, in->workdir, in->extra_ro, in->extra_rw, err, errlen) != 0)
		goto fail;
	plan->abi = abi;
	if (plan->abi <= 0) {
		if (unavailable(plan, sink, err, errlen) != 0)
			goto fail;
		*out = plan;
		return 0;
	}
	plan->handled_fs = ll_handled_fs_for_abi(plan->abi);
	if (plan->abi >= 6)
		plan->scoped = LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | LANDLOCK_SCOPE_SIGNAL;
	if (plan->abi >= 7)
		plan->restrict_flags = LANDLOCK_RESTRICT_SELF_LOG_NEW_EXEC_ON;
	if (check_abi_features(plan, sink, err, errlen) != 0 ||
	    create_ruleset(plan, err, errlen) != 0)
		goto fail;
	for (size_t i = 0; i < plan->n_entries; i++)
		if (apply_entry(plan, &plan->entries[i], sink, err, errlen) != 0)
			goto fail;
	*out = plan;
	return 0;
fail:
	landlock_plan_free(plan);
	return -1;
}

/* "msg (errno N)" into err without stdio or locale data (async-signal-safe). */
static void child_err(char *err, size_t errlen, const char *msg, int e)
{
	if (!err || errlen == 0)
		return;
	size_t n = 0;
	for (; *msg && n + 1 < errlen; msg++)
		err[n++] = *msg;
	char num[16];
	size_t k = 0;
	unsigned v = e > 0 ? (unsigned)e : 0;
	do {
		num[k++] = (char)('0' + v % 10);
		v /= 10;
	} while (v && k < sizeof num);
	const char *pre = " (errno ";
	for (; *pre && n + 1 < errlen; pre++)
		err[n++] = *pre;
	while (k && n + 1 < errlen)
		err[n++] = num[--k];
	if (n + 1 < errlen)
		err[n++] = ')';
	err[n] = '\0';
}

/* Runs in the forked child: no allocation, no locks, no stdio. */
int landlock_apply(const struct landlock_plan *plan, char *err, size_t errlen)
{
	if (!plan || plan->ruleset_fd < 0)
		return 0;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
		child_err(err, errlen, "landlock: PR_SET_NO_NEW_PRIVS failed", errno);
		return -1;
	}
	if (syscall(SYS_landlock_restrict_self, plan->ruleset_fd, plan->restrict_flags) != 0) {
		child_err(err, errlen, "landlock_restrict_self failed, the sandbox cannot be "
			  "confined", errno);
		return -1;
	}
	return 0;
}

bool landlock_plan_enforced(const struct landlock_plan *plan)
{
	return plan && plan->ruleset_fd >= 0;
}

void landlock_plan_free(struct landlock_plan *plan)
{
	if (!plan)
		return;
	if (plan->ruleset_fd >= 0)
		close(plan->ruleset_fd);
	for (size_t i = 0; plan->entries && i < plan->n_entries; i++)
		free(plan->entries[i].path);
	free(plan->entries);
	for (size_t i = 0; plan->degraded && i < plan->n_degraded; i++)
		free(plan->degraded[i]);
	free(plan->degraded);
	free(plan);
}
