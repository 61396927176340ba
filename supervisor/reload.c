/* reload.c - hot policy reload: SIGHUP or a change of the policy file.
 *
 * The directory holding the file is watched with inotify (editors replace
 * files by rename, which a watch on the file itself would miss); events are
 * debounced,
 * the whole file is loaded and validated, and the network part is swapped in
 * one step. An invalid file changes nothing. Static sections (filesystem,
 * landlock, process) only take effect at the next start; a change to them is
 * reported, not applied. Every outcome is one audit event with the
 * generation number and the content hash.
 */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <libgen.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy/policy.h"
#include "proxy/proxy.h"
#include "supervisor/sup.h"

#define RELOAD_DEBOUNCE_MS 10u
/* What can change the file the policy path names. Not IN_MODIFY: a writer is
 * seen when it closes the file, and an audit log kept in the same directory
 * would otherwise wake the loop at every flush. */
#define RELOAD_WATCH_MASK (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | \
			   IN_DELETE | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF)
#define RELOAD_WATCH_BUF 4096u /* inotify bytes read per read(2) */

static bool str_eq(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool list_eq(char **a, size_t na, char **b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (strcmp(a[i], b[i]) != 0)
			return false;
	return true;
}

/* Names of static sections that differ, comma separated, into buf. */
static void static_changes(const struct policy *old, const struct policy *new, char *buf,
			   size_t len)
{
	buf[0] = '\0';
	bool fs = old->has_filesystem_policy != new->has_filesystem_policy ||
		  old->include_workdir != new->include_workdir ||
		  !list_eq(old->read_only, old->n_read_only, new->read_only, new->n_read_only) ||
		  !list_eq(old->read_write, old->n_read_write, new->read_write, new->n_read_write);
	bool ll = old->landlock_compat != new->landlock_compat;
	bool proc = !str_eq(old->run_as_user, new->run_as_user) ||
		    !str_eq(old->run_as_group, new->run_as_group) ||
		    !str_eq(old->seccomp_profile, new->seccomp_profile);
	snprintf(buf, len, "%s%s%s%s%s", fs ? "filesystem_policy" : "",
		 fs && (ll || proc) ? "," : "", ll ? "landlock" : "", ll && proc ? "," : "",
		 proc ? "process" : "");
}

/* A policy anyone but root can write is egress control for whoever that is
 * (the agent, say): a reload refuses it. */
static bool policy_file_trusted(int fd, const char *path, char *err, size_t errlen)
{
	struct stat st;
	if (fstat(fd, &st) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return false;
	}
	if (!S_ISREG(st.st_mode) || st.st_uid != 0 || (st.st_mode & 022)) {
		snprintf(err, errlen, "%s: must be a regular file owned by root and writable by "
			 "no one else (mode %04o, uid %u)", path, (unsigned)(st.st_mode & 07777),
			 (unsigned)st.st_uid);
		return false;
	}
	return true;
}

static int read_file(const char *path, char **out, size_t *outlen, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (!policy_file_trusted(fd, path, err, errlen)) {
		close(fd);
		return -1;
	}
	char *buf = malloc(POLICY_MAX_FILE_BYTES + 1);
	size_t n = 0;
	ssize_t r = 0;
	while (buf && n <= POLICY_MAX_FILE_BYTES &&
	       (r = read(fd, buf + n, POLICY_MAX_FILE_BYTES + 1 - n)) > 0)
		n += (size_t)r;
	int saved = errno;
	close(fd);
	if (!buf || r < 0) {
		snprintf(err, errlen, "%s: %s", path, buf ? strerror(saved) : "out of memory");
		free(buf);
		return -1;
	}
	*out = buf;
	*outlen = n; /* > POLICY_MAX_FILE_BYTES: the loader reports the size limit */
	return 0;
}

static void sha256_hex(const char *buf, size_t len, char hex[65])
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	hex[0] = '\0';
	if (EVP_Digest(buf, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
		return;
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

static void emit_reload_event(struct sup_ctx *ctx, bool ok, const char *hash,
			      const char *static_changed, const struct policy_errors *errs)
{
	json_object *ev = sup_config_event_new(
		ok ? "policy reloaded" : "policy reload rejected; previous policy stays in force");
	if (!ev)
		return;
	json_object_object_add(ev, "status", json_object_new_string(ok ? "Success" : "Failure"));
	json_object_object_add(ev, "policy", json_object_new_string(ctx->opt.policy_data));
	json_object_object_add(ev, "generation", json_object_new_int64((int64_t)ctx->generation));
	json_object_object_add(ev, "sha256", json_object_new_string(hash));
	if (static_changed && *static_changed)
		json_object_object_add(ev, "restart_required", json_object_new_string(static_changed));
	if (errs && errs->n) {
		json_object *arr = json_object_new_array();
		for (size_t i = 0; i < errs->n; i++)
			json_object_array_add(arr, json_object_new_string(errs->msgs[i]));
		json_object_object_add(ev, "errors", arr);
	}
	sup_audit_line(ctx, json_object_to_json_string_ext(ev, JSON_C_TO_STRING_PLAIN));
	json_object_put(ev);
}

void sup_reload_policy(struct sup_ctx *ctx, const char *why)
{
	char err[512], hash[65] = "";
	char *buf = NULL;
	size_t len = 0;
	if (read_file(ctx->opt.policy_data, &buf, &len, err, sizeof err) != 0) {
		sup_log(ctx, LOG_ERROR, "policy reload (%s): %s; previous policy stays", why, err);
		return;
	}
	sha256_hex(buf, len, hash);
	if (strcmp(hash, ctx->policy_hash) == 0) {
		free(buf);
		return; /* unchanged content: editors often write twice */
	}
	struct policy_errors errs = { 0 };
	struct policy *np = policy_load_buffer(buf, len, ctx->opt.policy_data, &errs);
	free(buf);
	if (!np) {
		for (size_t i = 0; i < errs.n; i++)
			sup_log(ctx, LOG_ERROR, "policy reload rejected: %s", errs.msgs[i]);
		emit_reload_event(ctx, false, hash, NULL, &errs);
		policy_errors_free(&errs);
		return;
	}
	policy_errors_free(&errs);
	char changed[64];
	static_changes(ctx->startup_policy, np, changed, sizeof changed);
	if (*changed)
		sup_log(ctx, LOG_WARN, "policy reload: %s changed; applied at the next start only",
			changed);
	if (ctx->proxy)
		proxy_set_policy(ctx->proxy, np);
	/* The identity and the Landlock/seccomp plans were built at start and
	 * never read the policy again, so static changes stay inert. */
	if (ctx->policy != ctx->startup_policy)
		policy_free(ctx->policy);
	ctx->policy = np;
	ctx->generation++;
	memcpy(ctx->policy_hash, hash, sizeof ctx->policy_hash);
	sup_log(ctx, LOG_INFO, "policy reloaded (%s): generation %lu", why, ctx->generation);
	emit_reload_event(ctx, true, hash, changed, NULL);
}

static void on_debounce(uv_timer_t *t)
{
	sup_reload_policy(t->data, "file changed");
}

/* An event on the directory itself (deleted, moved, watch dropped, queue
 * overflowed) may hide one on the file: treat it as a change. */
static bool concerns_policy(const struct sup_ctx *ctx, const struct inotify_event *ev)
{
	if (ev->mask & (IN_Q_OVERFLOW | IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF))
		return true;
	return ev->len > 0 && strcmp(ev->name, ctx->policy_base) == 0;
}

/* Drain the inotify queue; true if an event concerns the policy file. */
static bool drain_watch(struct sup_ctx *ctx, int *read_errno)
{
	char buf[RELOAD_WATCH_BUF] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool hit = false;
	*read_errno = 0;
	for (;;) {
		ssize_t n = read(ctx->policy_watch_fd, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN)
			*read_errno = errno;
		if (n <= 0)
			return hit;
		for (ssize_t off = 0; off + (ssize_t)sizeof(struct inotify_event) <= n;) {
			const struct inotify_event *ev = (const void *)(buf + off);
			hit = hit || concerns_policy(ctx, ev);
			off += (ssize_t)(sizeof *ev + ev->len);
		}
	}
}

static void on_watch_readable(uv_poll_t *h, int status, int events)
{
	(void)events;
	struct sup_ctx *ctx = h->data;
	int read_errno = 0;
	bool hit = status == 0 && drain_watch(ctx, &read_errno);
	if (status < 0 || read_errno != 0) {
		sup_log(ctx, LOG_WARN, "watching the policy file stopped: %s; SIGHUP still reloads",
			status < 0 ? uv_strerror(status) : strerror(read_errno));
		uv_poll_stop(h);
		return;
	}
	if (hit && uv_timer_start(&ctx->reload_timer, on_debounce, RELOAD_DEBOUNCE_MS, 0) != 0)
		sup_reload_policy(ctx, "file changed");
}

/* 0, or a negative errno / libuv error. On failure after the handle was
 * initialised, sup_reload_stop closes it and the fd. */
static int start_watch(struct sup_ctx *ctx, const char *dir)
{
	int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (inotify_add_watch(fd, dir, RELOAD_WATCH_MASK) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	int rc = uv_poll_init(&ctx->loop, &ctx->policy_watch, fd);
	if (rc != 0) {
		close(fd);
		return rc;
	}
	ctx->policy_watch.data = ctx;
	ctx->policy_watch_fd = fd;
	ctx->policy_watch_inited = true;
	return uv_poll_start(&ctx->policy_watch, UV_READABLE, on_watch_readable);
}

void sup_reload_stop(struct sup_ctx *ctx)
{
	if (ctx->reload_inited && !uv_is_closing((uv_handle_t *)&ctx->reload_timer))
		uv_close((uv_handle_t *)&ctx->reload_timer, NULL);
	if (!ctx->policy_watch_inited)
		return;
	/* uv_close stops polling at once, so the fd can go now */
	uv_close((uv_handle_t *)&ctx->policy_watch, NULL);
	close(ctx->policy_watch_fd);
	ctx->policy_watch_inited = false;
}

int sup_reload_init(struct sup_ctx *ctx)
{
	ctx->startup_policy = ctx->policy; /* static sections in force until restart */
	if (!ctx->opt.policy_data)
		return 0;
	char *buf = NULL;
	size_t len = 0;
	char err[512];
	if (read_file(ctx->opt.policy_data, &buf, &len, err, sizeof err) == 0) {
		sha256_hex(buf, len, ctx->policy_hash);
		free(buf);
	} else {
		sup_log(ctx, LOG_WARN, "policy reload will refuse this file: %s", err);
	}
	char dcopy[PATH_MAX], bcopy[PATH_MAX];
	snprintf(dcopy, sizeof dcopy, "%s", ctx->opt.policy_data);
	snprintf(bcopy, sizeof bcopy, "%s", ctx->opt.policy_data);
	snprintf(ctx->policy_base, sizeof ctx->policy_base, "%s", basename(bcopy));
	if (uv_timer_init(&ctx->loop, &ctx->reload_timer) != 0)
		return -1;
	ctx->reload_timer.data = ctx;
	ctx->reload_inited = true;
	int rc = start_watch(ctx, dirname(dcopy));
	if (rc != 0)
		sup_log(ctx, LOG_WARN, "cannot watch %s for changes (%s); SIGHUP still reloads",
			ctx->opt.policy_data, uv_strerror(rc));
	return 0;
}
