/* errors.c - the loader's error list: "file:line:col: message" entries. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/load_int.h"

void policy_errors_free(struct policy_errors *errs)
{
	if (!errs)
		return;
	for (size_t i = 0; i < errs->n; i++)
		free(errs->msgs[i]);
	free(errs->msgs);
	errs->msgs = NULL;
	errs->n = 0;
}

static void push_to(struct load_ctx *c, struct policy_errors *list, char *msg)
{
	char **grown = realloc(list->msgs, (list->n + 1) * sizeof(*grown));

	if (!grown) {
		free(msg);
		c->oom = true;
		return;
	}
	list->msgs = grown;
	list->msgs[list->n++] = msg;
}

static void push_msg(struct load_ctx *c, char *msg)
{
	push_to(c, c->errs, msg);
}

void warn_at(struct load_ctx *c, const yaml_node_t *node, const char *fmt, ...)
{
	va_list ap;
	char *body = NULL, *msg = NULL;
	int r;

	if (++c->n_warnings > POLICY_MAX_ERRORS)
		return;
	va_start(ap, fmt);
	r = vasprintf(&body, fmt, ap);
	va_end(ap);
	if (r < 0) {
		c->oom = true;
		return;
	}
	if (asprintf(&msg, "%s:%u:%u: %s", c->name, node_line(node), node_col(node),
		     body) < 0)
		c->oom = true;
	else
		push_to(c, &c->warns, msg);
	free(body);
}

__attribute__((format(printf, 4, 0)))
static void verr_pos(struct load_ctx *c, unsigned line, unsigned col,
		     const char *fmt, va_list ap)
{
	char *body = NULL;
	char *msg = NULL;

	c->n_errors++;
	if (c->n_errors > POLICY_MAX_ERRORS)
		return;
	if (vasprintf(&body, fmt, ap) < 0) {
		c->oom = true;
		return;
	}
	if (asprintf(&msg, "%s:%u:%u: %s", c->name, line, col, body) < 0) {
		free(body);
		c->oom = true;
		return;
	}
	free(body);
	push_msg(c, msg);
}

void err_pos(struct load_ctx *c, unsigned line, unsigned col, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verr_pos(c, line, col, fmt, ap);
	va_end(ap);
}

void err_at(struct load_ctx *c, const yaml_node_t *node, const char *fmt, ...)
{
	va_list ap;
	unsigned line = node ? node_line(node) : 1;
	unsigned col = node ? node_col(node) : 1;

	va_start(ap, fmt);
	verr_pos(c, line, col, fmt, ap);
	va_end(ap);
}

void note_oom(struct load_ctx *c)
{
	c->oom = true;
}

/* Reads "line:col" following the "name:" prefix of a message. */
static void msg_pos(const struct load_ctx *c, const char *msg, unsigned long *line,
		    unsigned long *col)
{
	size_t skip = strlen(c->name) + 1;
	char *end;

	*line = *col = 0;
	if (strlen(msg) <= skip)
		return;
	*line = strtoul(msg + skip, &end, 10);
	if (*end == ':')
		*col = strtoul(end + 1, NULL, 10);
}

static bool msg_before(const struct load_ctx *c, const char *a, const char *b)
{
	unsigned long la, ca, lb, cb;

	msg_pos(c, a, &la, &ca);
	msg_pos(c, b, &lb, &cb);
	return la < lb || (la == lb && ca < cb);
}

/* Stable insertion sort of this load's messages by position (n is small). */
static void sort_by_position(struct load_ctx *c, struct policy_errors *list, size_t first)
{
	char **m = list->msgs;

	for (size_t i = first + 1; i < list->n; i++) {
		char *cur = m[i];
		size_t j = i;

		for (; j > first && msg_before(c, cur, m[j - 1]); j--)
			m[j] = m[j - 1];
		m[j] = cur;
	}
}

void warnings_finish(struct load_ctx *c)
{
	sort_by_position(c, &c->warns, 0);
}

void errors_finish(struct load_ctx *c)
{
	char *msg = NULL;

	if (c->errs->n > c->first_msg)
		sort_by_position(c, c->errs, c->first_msg);

	if (c->n_errors > POLICY_MAX_ERRORS &&
	    asprintf(&msg, "%s: too many errors (%zu), only the first %u are shown",
		     c->name, c->n_errors, POLICY_MAX_ERRORS) >= 0)
		push_msg(c, msg);
	if (c->oom) {
		msg = NULL;
		if (asprintf(&msg, "%s:1:1: out of memory while loading the policy",
			     c->name) >= 0)
			push_msg(c, msg);
	}
}
