/* cred.c - loading the --credentials file (see cred.h for its format and
 * the checks applied), and reading root-owned private files (proxy.h: also
 * the --upstream-proxy-auth-file). Loading stops at the first problem. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "policy/policy.h"
#include "proxy/cred_int.h"
#include "proxy/proxy.h"

struct load {
	const char *path;
	char *err;
	size_t errlen;
	yaml_document_t *doc;
	struct cred_store *s;
};

__attribute__((format(printf, 3, 4)))
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

__attribute__((format(printf, 3, 4)))
static bool fail_at(struct load *l, const yaml_node_t *node, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	set_err(l->err, l->errlen, "%s:%zu:%zu: %s", l->path, node->start_mark.line + 1,
		node->start_mark.column + 1, msg);
	return false;
}

static void wipe_free(char *p, size_t n)
{
	if (!p)
		return;
	explicit_bzero(p, n);
	free(p);
}

/* ---- files ---- */

/* Opens path and checks the opened file: regular, owned by root, no
 * group/other permission bits, at most max bytes. */
static int open_private(const char *path, size_t max, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	struct stat st;

	if (fd < 0) {
		set_err(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0) {
		set_err(err, errlen, "%s: cannot stat: %s", path, strerror(errno));
	} else if (!S_ISREG(st.st_mode)) {
		set_err(err, errlen, "%s: not a regular file", path);
	} else if (st.st_uid != 0) {
		set_err(err, errlen, "%s: must be owned by root (owner uid %u)", path,
			(unsigned)st.st_uid);
	} else if (st.st_mode & 077) {
		set_err(err, errlen, "%s: mode %04o gives group/other access; it must be 0600 "
			"or stricter", path, (unsigned)(st.st_mode & 07777));
	} else if ((unsigned long long)st.st_size > max) {
		set_err(err, errlen, "%s: larger than %zu bytes", path, max);
	} else {
		return fd;
	}
	close(fd);
	return -1;
}

/* Reads all of fd into buf (max + 1 bytes: one more notices a longer
 * file); returns the length, or -1 with a message. */
static ssize_t read_all(int fd, const char *path, char *buf, size_t max, char *err,
			size_t errlen)
{
	size_t n = 0;

	while (n <= max) {
		ssize_t r = read(fd, buf + n, max + 1 - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			set_err(err, errlen, "%s: read error: %s", path, strerror(errno));
			return -1;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (n > max) {
		set_err(err, errlen, "%s: larger than %zu bytes", path, max);
		return -1;
	}
	return (ssize_t)n;
}

ssize_t proxy_read_private_file(const char *path, char *buf, size_t max, char *err,
				size_t errlen)
{
	int fd = open_private(path, max, err, errlen);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read_all(fd, path, buf, max, err, errlen);
	close(fd);
	if (n < 0) {
		explicit_bzero(buf, max + 1);
		return -1;
	}
	buf[n] = '\0';
	return n;
}

/* proxy_read_private_file into a malloc'd buffer of *len + 1 bytes; wipe
 * it with wipe_free(buf, *len + 1). */
static char *read_private(const char *path, size_t max, size_t *len, char *err,
			  size_t errlen)
{
	char *buf = malloc(max + 1);
	ssize_t n;

	if (!buf) {
		set_err(err, errlen, "%s: out of memory", path);
		return NULL;
	}
	n = proxy_read_private_file(path, buf, max, err, errlen);
	if (n < 0) {
		free(buf); /* already wiped */
		return NULL;
	}
	*len = (size_t)n;
	return buf;
}

/* ---- validation ---- */

static bool name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > CRED_MAX_NAME_BYTES || (s[0] >= '0' && s[0] <= '9'))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return false;
	return true;
}

/* Returns a problem with the value, or NULL. */
static const char *value_problem(const char *v, size_t n)
{
	if (n == 0)
		return "is empty";
	if (n > CRED_MAX_VALUE_BYTES)
		return "is longer than 16384 bytes";
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];

		if (c == '\r' || c == '\n' || c == '\0')
			return "contains CR, LF or NUL";
		if (c < 0x20 || c == 0x7f)
			return "contains a control byte";
	}
	if (cred_contains_placeholder(v, n))
		return "contains a placeholder marker";
	return NULL;
}

/* Lower-cases h in place; returns a problem or NULL. */
static const char *host_problem(char *h)
{
	size_t n = strlen(h), labels = 1;

	if (n == 0 || n > POLICY_MAX_HOST_BYTES)
		return "host must be 1..253 bytes";
	for (size_t i = 0; i < n; i++) {
		if (h[i] >= 'A' && h[i] <= 'Z')
			h[i] = (char)(h[i] - 'A' + 'a');
		if (!((h[i] >= 'a' && h[i] <= 'z') || (h[i] >= '0' && h[i] <= '9') ||
		      strchr(".-*_:", h[i])))
			return "host has a character outside [a-z0-9.-_:*]";
		labels += h[i] == '.';
	}
	if (strcmp(h, "*") == 0 || strcmp(h, "**") == 0)
		return "host must not be a bare wildcard";
	if (strchr(h, '*') && labels < 3)
		return "a wildcard host needs at least three labels";
	return NULL;
}

/* ---- YAML walking (fixed depth: map -> map -> seq -> scalar) ---- */

static const char *scalar(const yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static bool load_hosts(struct load *l, yaml_node_t *seq, struct cred_entry *e)
{
	size_t n;

	if (seq->type != YAML_SEQUENCE_NODE)
		return fail_at(l, seq, "'hosts' must be a list of host names");
	n = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
	if (n == 0)
		return fail_at(l, seq, "'hosts' must not be empty");
	if (n > CRED_MAX_HOSTS)
		return fail_at(l, seq, "more than %u hosts", CRED_MAX_HOSTS);
	e->hosts = calloc(n, sizeof(*e->hosts));
	if (!e->hosts)
		return fail_at(l, seq, "out of memory");
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *item = yaml_document_get_node(l->doc,
							   seq->data.sequence.items.start[i]);
		const char *h = scalar(item), *why;

		if (!h)
			return fail_at(l, item ? item : seq, "a host must be a string");
		e->hosts[i] = strdup(h);
		if (!e->hosts[i])
			return fail_at(l, item, "out of memory");
		e->n_hosts++;
		why = host_problem(e->hosts[i]);
		if (why)
			return fail_at(l, item, "host '%s': %s", h, why);
	}
	return true;
}

static bool set_value(struct load *l, yaml_node_t *node, struct cred_entry *e,
		      const char *v, size_t n)
{
	const char *why = value_problem(v, n);

	if (why)
		return fail_at(l, node, "value of %s %s", e->name, why);
	e->value = malloc(n + 1);
	if (!e->value)
		return fail_at(l, node, "out of memory");
	memcpy(e->value, v, n);
	e->value[n] = '\0';
	e->vlen = n;
	return true;
}

static bool load_value_file(struct load *l, yaml_node_t *node, struct cred_entry *e)
{
	const char *path = scalar(node);
	char ferr[512] = "";
	size_t len = 0, n;
	char *buf;
	bool ok;

	if (!path || path[0] != '/')
		return fail_at(l, node, "'value_file' must be an absolute path");
	buf = read_private(path, CRED_MAX_VALUE_BYTES + 1, &len, ferr, sizeof(ferr));
	if (!buf)
		return fail_at(l, node, "value_file of %s: %s", e->name, ferr);
	n = len > 0 && buf[len - 1] == '\n' ? len - 1 : len;
	ok = set_value(l, node, e, buf, n);
	wipe_free(buf, len + 1);
	return ok;
}

static bool load_entry(struct load *l, yaml_node_t *map,
		       struct cred_entry *e)
{
	yaml_node_t *value = NULL, *value_file = NULL, *hosts = NULL;

	if (!map || map->type != YAML_MAPPING_NODE)
		return map ? fail_at(l, map, "%s must be a map with 'value' or 'value_file' "
				     "and 'hosts'", e->name)
			   : fail_at(l, yaml_document_get_root_node(l->doc), "bad entry %s",
				     e->name);
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
	     p < map->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(l->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(l->doc, p->value);
		const char *ks = scalar(k);
		yaml_node_t **slot = NULL;

		if (ks && strcmp(ks, "value") == 0)
			slot = &value;
		else if (ks && strcmp(ks, "value_file") == 0)
			slot = &value_file;
		else if (ks && strcmp(ks, "hosts") == 0)
			slot = &hosts;
		if (!slot)
			return fail_at(l, k ? k : map, "unknown key '%s' (value, value_file, hosts)",
				       ks ? ks : "?");
		if (*slot)
			return fail_at(l, k, "duplicate key '%s'", ks);
		*slot = v;
	}
	if (!value == !value_file)
		return fail_at(l, map, "%s needs exactly one of 'value' and 'value_file'", e->name);
	if (!hosts)
		return fail_at(l, map, "%s needs 'hosts'", e->name);
	if (value && !scalar(value))
		return fail_at(l, value, "'value' must be a string");
	if (!(value ? set_value(l, value, e, scalar(value), value->data.scalar.length)
		    : load_value_file(l, value_file, e)))
		return false;
	return load_hosts(l, hosts, e);
}

static bool load_root(struct load *l)
{
	yaml_node_t *root = yaml_document_get_root_node(l->doc);
	size_t n;

	if (!root) {
		set_err(l->err, l->errlen, "%s:1:1: no credentials defined", l->path);
		return false;
	}
	if (root->type != YAML_MAPPING_NODE)
		return fail_at(l, root, "the file must be a map NAME: {value|value_file, hosts}");
	n = (size_t)(root->data.mapping.pairs.top - root->data.mapping.pairs.start);
	if (n == 0)
		return fail_at(l, root, "no credentials defined");
	if (n > CRED_MAX_ENTRIES)
		return fail_at(l, root, "more than %u credentials", CRED_MAX_ENTRIES);
	l->s->e = calloc(n, sizeof(*l->s->e));
	if (!l->s->e)
		return fail_at(l, root, "out of memory");
	for (size_t i = 0; i < n; i++) {
		yaml_node_pair_t *p = &root->data.mapping.pairs.start[i];
		yaml_node_t *k = yaml_document_get_node(l->doc, p->key);
		const char *name = scalar(k);
		struct cred_entry *e = &l->s->e[l->s->n];

		if (!name || !name_ok(name))
			return fail_at(l, k ? k : root, "credential name '%s' must match "
				       "[A-Z_][A-Z0-9_]* (at most %u bytes)", name ? name : "?",
				       CRED_MAX_NAME_BYTES);
		if (cred_find(l->s, name, strlen(name)))
			return fail_at(l, k, "duplicate credential '%s'", name);
		e->name = strdup(name);
		if (!e->name)
			return fail_at(l, k, "out of memory");
		l->s->n++;
		if (!load_entry(l, yaml_document_get_node(l->doc, p->value), e))
			return false;
	}
	return true;
}

static bool parse(struct load *l, const char *buf, size_t len)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	bool ok;

	if (!yaml_parser_initialize(&parser)) {
		set_err(l->err, l->errlen, "%s: out of memory", l->path);
		return false;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	if (!yaml_parser_load(&parser, &doc)) {
		set_err(l->err, l->errlen, "%s:%zu:%zu: %s%s%s", l->path,
			parser.problem_mark.line + 1, parser.problem_mark.column + 1,
			parser.problem ? parser.problem : "YAML error",
			parser.context ? " " : "", parser.context ? parser.context : "");
		yaml_parser_delete(&parser);
		return false;
	}
	l->doc = &doc;
	ok = load_root(l);
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	return ok;
}

struct cred_store *cred_load(const char *path, char *err, size_t errlen)
{
	struct load l = { path, err, errlen, NULL, NULL };
	size_t len = 0;
	char *buf;

	if (err && errlen)
		err[0] = '\0';
	buf = read_private(path, CRED_MAX_FILE_BYTES, &len, err, errlen);
	if (!buf)
		return NULL;
	l.s = calloc(1, sizeof(*l.s));
	if (!l.s) {
		set_err(err, errlen, "%s: out of memory", path);
	} else if (!parse(&l, buf, len)) {
		cred_free(l.s);
		l.s = NULL;
	}
	wipe_free(buf, len + 1);
	return l.s;
}

void cred_free(struct cred_store *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++) {
		struct cred_entry *e = &s->e[i];

		free(e->name);
		wipe_free(e->value, e->vlen);
		for (size_t j = 0; j < e->n_hosts; j++)
			free(e->hosts[j]);
		free(e->hosts);
	}
	free(s->e);
	free(s);
}

size_t cred_count(const struct cred_store *s)
{
	return s ? s->n : 0;
}

const char *cred_name(const struct cred_store *s, size_t i)
{
	return s && i < s->n ? s->e[i].name : NULL;
}

size_t cred_env_entry(const struct cred_store *s, size_t i, char *out, size_t cap)
{
	int n;

	if (!s || i >= s->n || cap == 0)
		return 0;
	n = snprintf(out, cap, "%s=" CRED_PLACEHOLDER_PREFIX "%s", s->e[i].name, s->e[i].name);
	if (n < 0 || (size_t)n >= cap) {
		out[0] = '\0';
		return 0;
	}
	return (size_t)n;
}

const struct cred_entry *cred_find(const struct cred_store *s, const char *name, size_t n)
{
	for (size_t i = 0; s && i < s->n; i++)
		if (s->e[i].name && strlen(s->e[i].name) == n && memcmp(s->e[i].name, name, n) == 0)
			return &s->e[i];
	return NULL;
}

bool cred_in_scope(const struct cred_entry *e, const char *host)
{
	if (!host || !*host)
		return false;
	for (size_t i = 0; i < e->n_hosts; i++)
		if (policy_host_match(e->hosts[i], host))
			return true;
	return false;
}
