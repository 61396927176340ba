/* confine.c - prepare Landlock and seccomp once (in the privileged parent),
 * create missing read_write directories for the agent, and announce what
 * confinement is in force in one startup audit event. The plans are applied
 * by every sandboxed child through sup_spawn(). */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "landlock/landlock.h"
#include "policy/policy.h"
#include "seccomp/seccomp.h"
#include "supervisor/sup.h"

static void landlock_warn(void *ud, const char *msg)
{
	sup_log(ud, LOG_WARN, "landlock: %s", msg);
}

/* Opens the next component below dirfd without following a symlink, unless
 * root owns the link (the image's own, like /var/run); a link anyone else made
 * could point a root-run mkdir/chown anywhere. */
static int open_component(int dirfd, const char *name)
{
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0 || (errno != ELOOP && errno != ENOTDIR))
		return fd;
	struct stat st;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return -1;
	if (!S_ISLNK(st.st_mode) || st.st_uid != 0) {
		errno = ELOOP;
		return -1;
	}
	return openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

/* Creates a missing component for the agent: only directories we create are
 * chowned, through the descriptor of what we just made. */
static int create_component(struct sup_ctx *ctx, int dirfd, const char *name)
{
	if (mkdirat(dirfd, name, 0755) != 0 && errno != EEXIST)
		return -1;
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (fchown(fd, ctx->id.uid, ctx->id.gid) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* mkdir -p for one read_write path, walking from / one component at a time. */
static int make_rw_dir(struct sup_ctx *ctx, const char *path)
{
	char buf[POLICY_MAX_PATH_BYTES + 1];
	if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) {
		errno = ENAMETOOLONG;
		return -1;
	}
	int dirfd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	char *save = NULL;
	for (char *c = strtok_r(buf, "/", &save); c && dirfd >= 0; c = strtok_r(NULL, "/", &save)) {
		if (strcmp(c, ".") == 0)
			continue;
		int fd = open_component(dirfd, c);
		if (fd < 0 && errno == ENOENT) {
			fd = create_component(ctx, dirfd, c);
			if (fd >= 0)
				sup_log(ctx, LOG_INFO, "created %s (component '%s') for the agent", path, c);
		}
		int e = errno;
		close(dirfd);
		dirfd = fd;
		errno = e;
	}
	if (dirfd < 0)
		return -1;
	close(dirfd);
	return 0;
}

static void create_rw_dirs(struct sup_ctx *ctx)
{
	const struct policy *p = ctx->policy;
	for (size_t i = 0; i < p->n_read_write; i++) {
		const char *path = p->read_write[i];
		if (strncmp(path, "/dev/", 5) == 0 || strncmp(path, "/proc", 5) == 0 ||
		    strncmp(path, "/sys", 4) == 0)
			continue;
		if (make_rw_dir(ctx, path) != 0)
			sup_log(ctx, LOG_WARN, "creating read_write directory %s: %s", path,
				strerror(errno));
	}
}

static json_object *describe_json(int (*describe)(const void *, char *, size_t), const void *plan)
{
	int n = describe(plan, NULL, 0);
	if (n < 0)
		return NULL;
	char *buf = malloc((size_t)n + 1);
	if (!buf)
		return NULL;
	json_object *obj = NULL;
	if (describe(plan, buf, (size_t)n + 1) == n)
		obj = json_tokener_parse(buf);
	free(buf);
	return obj;
}

static int describe_landlock(const void *plan, char *buf, size_t len)
{
	return landlock_describe(plan, buf, len);
}

static int describe_seccomp(const void *plan, char *buf, size_t len)
{
	return seccomp_describe(plan, buf, len);
}

static void emit_config_event(struct sup_ctx *ctx)
{
	json_object *ev = sup_config_event_new("sandbox confinement in force");
	if (!ev)
		return;
	json_object_object_add(ev, "policy", json_object_new_string(
		ctx->opt.policy_data ? ctx->opt.policy_data : "<embedded default>"));
	json_object *who = json_object_new_object();
	json_object_object_add(who, "uid", json_object_new_int64(ctx->id.uid));
	json_object_object_add(who, "gid", json_object_new_int64(ctx->id.gid));
	json_object_object_add(who, "user", json_object_new_string(ctx->id.user));
	json_object_object_add(ev, "identity", who);
	json_object_object_add(ev, "landlock", describe_json(describe_landlock, ctx->landlock));
	json_object_object_add(ev, "seccomp", describe_json(describe_seccomp, ctx->seccomp));
	sup_audit_line(ctx, json_object_to_json_string_ext(ev, JSON_C_TO_STRING_PLAIN));
	json_object_put(ev);
}

/* With seccomp off, an agent that shares the supervisor's terminal could still
 * push keystrokes into it (TIOCSTI) that run after the sandbox exits. It
 * shares it when any of our standard streams is a terminal, and also when they
 * are all redirected (nohup ... </dev/null >log 2>&1 &) but we have a
 * controlling terminal: the agent, in our session, opens /dev/tty. Then the
 * "minimal" filter (only the terminal-injection ioctls) stands in for "off". */
static bool shares_a_terminal(void)
{
	return isatty(STDIN_FILENO) || isatty(STDOUT_FILENO) || isatty(STDERR_FILENO) ||
	       sup_has_controlling_terminal();
}

static const char *effective_seccomp_profile(const struct sup_ctx *ctx)
{
	const char *profile = ctx->policy->seccomp_profile;
	bool off = !profile || strcmp(profile, "off") == 0;
	if (off && shares_a_terminal())
		return "minimal";
	return profile;
}

int sup_prepare_confinement(struct sup_ctx *ctx)
{
	char err[512] = "";
	char cwd[POLICY_MAX_PATH_BYTES];
	const char *workdir = ctx->opt.workdir;
	if (!workdir && getcwd(cwd, sizeof cwd))
		workdir = cwd;
	if (ctx->policy->has_filesystem_policy)
		create_rw_dirs(ctx);
	struct landlock_event_sink sink = { .warn = landlock_warn, .ud = ctx };
	/* The CA files must stay readable whatever filesystem_policy says: the
	 * bundle is also bound over the system bundle paths. */
	const char *ca_files[] = { ctx->ca_cert_path, ctx->ca_bundle_path, NULL };
	const char *const *extra_ro = ctx->ca_cert_path[0] ? ca_files : NULL;
	if (landlock_prepare(ctx->policy, workdir, extra_ro, NULL, &sink, &ctx->landlock, err,
			     sizeof err) != 0) {
		sup_log(ctx, LOG_ERROR, "landlock: %s", err);
		return -1;
	}
	if (seccomp_prepare(effective_seccomp_profile(ctx), &ctx->seccomp, err, sizeof err) != 0) {
		sup_log(ctx, LOG_ERROR, "seccomp: %s", err);
		return -1;
	}
	emit_config_event(ctx);
	return 0;
}

void sup_free_confinement(struct sup_ctx *ctx)
{
	landlock_plan_free(ctx->landlock);
	seccomp_plan_free(ctx->seccomp);
	ctx->landlock = NULL;
	ctx->seccomp = NULL;
}
