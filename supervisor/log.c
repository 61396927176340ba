/* log.c - human log on stderr and the JSONL audit sink. */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "supervisor/sup.h"

static const char *const level_names[] = { "error", "warn", "info", "debug" };

int sup_parse_log_level(const char *s)
{
	for (int i = 0; i <= LOG_DEBUG; i++)
		if (strcasecmp(s, level_names[i]) == 0)
			return i;
	if (strcasecmp(s, "trace") == 0)
		return LOG_DEBUG;
	return -1;
}

static void __attribute__((format(printf, 3, 0)))
vlog(int max_level, int level, const char *fmt, va_list ap)
{
	if (level > max_level)
		return;
	char msg[2048];
	vsnprintf(msg, sizeof msg, fmt, ap);
	struct timespec ts;
	struct tm tm;
	char stamp[32] = "";
	if (clock_gettime(CLOCK_REALTIME, &ts) == 0 && gmtime_r(&ts.tv_sec, &tm))
		strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
	fprintf(stderr, "%s openshell-sandbox %s: %s\n", stamp, level_names[level], msg);
}

void sup_log(const struct sup_ctx *ctx, int level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(ctx ? ctx->opt.log_level : LOG_WARN, level, fmt, ap);
	va_end(ap);
}

/* The proxy's lines name their part themselves ("proxy: ", "dns: ",
 * "capture: "). */
void sup_proxy_log(void *ud, int level, const char *msg)
{
	sup_log(ud, level, "%s", msg);
}

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* Why the opened audit file is refused, or NULL. The path is looked at
 * again after the open and must still lead to what was opened, so a swap
 * between the two is refused too. */
static const char *audit_file_refusal(const char *path, const struct stat *opened)
{
	struct stat at, target;
	if (lstat(path, &at) != 0)
		return "vanished while it was being opened";
	if (S_ISLNK(at.st_mode)) {
		if (at.st_uid != 0)
			return "is a symbolic link not owned by root";
		if (stat(path, &target) != 0 || !same_file(&target, opened))
			return "changed while it was being opened";
	} else if (!same_file(&at, opened)) {
		return "changed while it was being opened";
	}
	if (!S_ISREG(opened->st_mode))
		return NULL; /* a pipe or terminal, e.g. /dev/stdout */
	if (opened->st_uid != geteuid())
		return "is owned by another user, who could rewrite it";
	if ((opened->st_mode & S_IWOTH) ||
	    ((opened->st_mode & S_IWGRP) && opened->st_gid != getegid()))
		return "is writable by other users";
	return NULL;
}

int sup_open_audit_file(const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "%s", strerror(errno));
		return -1;
	}
	struct stat opened;
	const char *why = fstat(fd, &opened) != 0 ? strerror(errno)
						  : audit_file_refusal(path, &opened);
	if (why != NULL) {
		snprintf(err, errlen, "%s", why);
		close(fd);
		return -1;
	}
	return fd;
}

static void audit_flush(struct sup_ctx *ctx)
{
	ctx->audit_pending = false;
	if (fflush(ctx->audit) != 0)
		sup_log(ctx, LOG_ERROR, "audit log write failed");
}

void sup_audit_line(void *ud, const char *json_line)
{
	struct sup_ctx *ctx = ud;
	if (!ctx->audit)
		return;
	if (fputs(json_line, ctx->audit) == EOF || putc('\n', ctx->audit) == EOF) {
		sup_log(ctx, LOG_ERROR, "audit log write failed");
		return;
	}
	if (ctx->audit_batching)
		ctx->audit_pending = true;
	else
		audit_flush(ctx);
}

/* Runs once per loop iteration, after the I/O callbacks that wrote lines. */
static void on_audit_check(uv_check_t *h)
{
	struct sup_ctx *ctx = h->data;
	if (ctx->audit_pending)
		audit_flush(ctx);
}

int sup_audit_batch_start(struct sup_ctx *ctx)
{
	if (!ctx->audit_owned) /* stderr: unbuffered, shared with the log */
		return 0;
	if (uv_check_init(&ctx->loop, &ctx->audit_flush) != 0)
		return -1;
	ctx->audit_flush.data = ctx;
	if (uv_check_start(&ctx->audit_flush, on_audit_check) != 0) {
		uv_close((uv_handle_t *)&ctx->audit_flush, NULL);
		return -1;
	}
	uv_unref((uv_handle_t *)&ctx->audit_flush); /* never what keeps the loop alive */
	ctx->audit_batching = true;
	return 0;
}

void sup_audit_batch_stop(struct sup_ctx *ctx)
{
	if (!ctx->audit_batching)
		return;
	ctx->audit_batching = false;
	if (ctx->audit_pending)
		audit_flush(ctx);
	uv_close((uv_handle_t *)&ctx->audit_flush, NULL);
}

/* An OCSF "Device Config State" (5002) event with its time and message; the
 * caller adds its fields, emits it with sup_audit_line and puts it. */
json_object *sup_config_event_new(const char *message)
{
	json_object *ev = json_object_new_object();
	if (!ev)
		return NULL;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	json_object_object_add(ev, "class_uid", json_object_new_int(5002));
	json_object_object_add(ev, "class_name", json_object_new_string("Device Config State"));
	json_object_object_add(ev, "time",
			       json_object_new_int64((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000));
	json_object_object_add(ev, "message", json_object_new_string(message));
	return ev;
}
