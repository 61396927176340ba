/* load.c - policy document loading: top-level keys, filesystem_policy,
 * landlock, process, network_policies and network_middlewares. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy/load_int.h"
#include "policy/load_parts.h"

static const char default_policy_yaml[] =
	"version: 1\n"
	"process:\n"
	"  run_as_user: sandbox\n"
	"  run_as_group: sandbox\n";

static bool path_has_dotdot(const char *p)
{
	for (const char *s = p; (s = strstr(s, "..")) != NULL; s += 2)
		if ((s == p || s[-1] == '/') && (s[2] == '\0' || s[2] == '/'))
			return true;
	return false;
}

static void check_fs_path(struct load_ctx *c, yaml_node_t *n, const char *p, void *arg)
{
	bool rw = *(const bool *)arg;

	if (strlen(p) > POLICY_MAX_PATH_BYTES)
		err_at(c, n, "filesystem path is longer than %u bytes", POLICY_MAX_PATH_BYTES);
	else if (p[0] != '/')
		err_at(c, n, "filesystem path '%s' must be absolute", SHOW(p));
	else if (path_has_dotdot(p))
		err_at(c, n, "filesystem path '%s' must not contain a '..' component", SHOW(p));
	else if (rw && strspn(p, "/") == strlen(p))
		err_at(c, n, "read_write path '%s' is too broad (the whole filesystem)",
		       SHOW(p));
}

static void load_fs_list(struct load_ctx *c, yaml_node_t *n, const char *what, bool rw,
			 char ***out, size_t *n_out)
{
	get_checked_string_list(c, n, what, out, n_out, check_fs_path, &rw);
}

static void load_filesystem(struct load_ctx *c, struct kv sec, struct policy *p)
{
	static const char *const keys[] = { "include_workdir", "read_only", "read_write" };
	struct kv f[3];

	p->include_workdir = true;
	if (!sec.val || is_empty_plain(sec.val))
		return;
	p->has_filesystem_policy = true;
	p->include_workdir = false;
	if (!read_struct(c, sec.val, "filesystem_policy", keys, 3, f))
		return;
	if (f[0].val)
		get_bool(c, f[0].val, "include_workdir", &p->include_workdir);
	if (f[1].val)
		load_fs_list(c, f[1].val, "read_only", false, &p->read_only, &p->n_read_only);
	if (f[2].val)
		load_fs_list(c, f[2].val, "read_write", true, &p->read_write, &p->n_read_write);
	if (p->n_read_only + p->n_read_write > POLICY_MAX_FS_PATHS)
		err_at(c, sec.key, "filesystem_policy has %zu paths, more than the limit "
		       "of %u", p->n_read_only + p->n_read_write, POLICY_MAX_FS_PATHS);
}

static void load_landlock(struct load_ctx *c, struct kv sec, struct policy *p)
{
	static const char *const keys[] = { "compatibility" };
	struct kv f[1];
	char *s;

	if (!sec.val || is_empty_plain(sec.val) ||
	    !read_struct(c, sec.val, "landlock", keys, 1, f) || !f[0].val ||
	    !get_string(c, f[0].val, "compatibility", &s))
		return;
	if (strcmp(s, "hard_requirement") == 0)
		p->landlock_compat = POLICY_LANDLOCK_HARD_REQUIREMENT;
	else if (s[0] && strcmp(s, "best_effort") != 0)
		err_at(c, f[0].val, "unknown landlock compatibility '%s' (best_effort or "
		       "hard_requirement)", SHOW(s));
	free(s);
}

/* "sandbox" or a decimal id in 1..4294967294 (leading '+' allowed); the
 * result is canonical ("+0042" -> "42"). "" means omitted (NULL). */
static void load_identity(struct load_ctx *c, yaml_node_t *n, const char *what, char **out)
{
	char *s;
	const char *d;
	uint64_t v = 0;

	if (!get_string(c, n, what, &s))
		return;
	if (!s[0] || strcmp(s, "sandbox") == 0) {
		*out = s[0] ? s : NULL;
		if (!s[0])
			free(s);
		return;
	}
	d = s + (s[0] == '+');
	for (const char *q = d; *q && v <= UINT32_MAX; q++)
		v = (*q >= '0' && *q <= '9') ? v * 10 + (uint64_t)(*q - '0') : UINT64_MAX;
	if (!*d || v == 0 || v >= UINT32_MAX) {
		err_at(c, n, "'%s' must be 'sandbox' or a numeric id in 1..4294967294, "
		       "not '%s'", what, SHOW(s));
		free(s);
		return;
	}
	free(s);
	if (asprintf(out, "%llu", (unsigned long long)v) < 0) {
		*out = NULL;
		note_oom(c);
	}
}

static void load_process(struct load_ctx *c, struct kv sec, struct policy *p)
{
	static const char *const keys[] = { "run_as_user", "run_as_group", "seccomp" };
	static const char *const profiles[] = { "baseline", "strict", "nested", "off" };
	struct kv f[3];
	bool known = false;

	if (!sec.val || is_empty_plain(sec.val) ||
	    !read_struct(c, sec.val, "process", keys, 3, f))
		return;
	if (f[0].val)
		load_identity(c, f[0].val, "run_as_user", &p->run_as_user);
	if (f[1].val)
		load_identity(c, f[1].val, "run_as_group", &p->run_as_group);
	if (!f[2].val || !get_string(c, f[2].val, "seccomp", &p->seccomp_profile))
		return;
	for (size_t i = 0; i < 4; i++)
		known = known || strcmp(p->seccomp_profile, profiles[i]) == 0;
	if (!known)
		err_at(c, f[2].val, "unknown seccomp profile '%s' (baseline, strict, "
		       "nested or off)", SHOW(p->seccomp_profile));
}

static void load_version(struct load_ctx *c, struct kv f, yaml_node_t *root,
			 struct policy *p)
{
	int64_t v;

	if (!f.val) {
		err_at(c, root, "missing required key 'version'");
		return;
	}
	if (!get_int(c, f.val, "version", 0, UINT32_MAX, &v))
		return;
	p->version = (uint32_t)v;
	if (v != 1)
		err_at(c, f.val, "unsupported policy version %lld (only 1 is supported)",
		       (long long)v);
}

static void load_root(struct load_ctx *c, yaml_node_t *root, struct policy *p)
{
	static const char *const keys[] = { "version", "filesystem_policy", "landlock",
					    "process", "network_policies",
					    "network_middlewares", "inference" };
	struct kv f[7];

	if (!read_struct(c, root, "the top level", keys, 7, f))
		return;
	if (f[6].key)
		err_at(c, f[6].key, "unknown top-level key 'inference' (removed from the "
		       "schema; inference routing is configured outside the policy)");
	load_version(c, f[0], root, p);
	load_filesystem(c, f[1], p);
	load_landlock(c, f[2], p);
	load_process(c, f[3], p);
	if (f[4].val)
		load_network_policies(c, f[4].val, p);
	if (f[5].val)
		load_middlewares(c, f[5].val, p);
	check_middleware_tls_skip(c, p);
	if (c->n_errors == 0)
		check_endpoint_ambiguity(c, p);
}

static void report_parser_error(struct load_ctx *c, const yaml_parser_t *parser)
{
	const yaml_mark_t *m = &parser->problem_mark;

	if (parser->error == YAML_MEMORY_ERROR) {
		note_oom(c);
		return;
	}
	if (parser->context)
		err_pos(c, (unsigned)m->line + 1, (unsigned)m->column + 1,
			"YAML syntax error: %s %s", parser->problem ? parser->problem : "error",
			parser->context);
	else
		err_pos(c, (unsigned)m->line + 1, (unsigned)m->column + 1,
			"YAML syntax error: %s", parser->problem ? parser->problem : "error");
}

/* Loads the single document of buf; false (error reported) on failure. */
static bool parse_document(struct load_ctx *c, const char *buf, size_t len,
			   yaml_document_t *doc)
{
	yaml_parser_t parser;
	yaml_document_t extra;
	bool ok = false;

	if (!yaml_parser_initialize(&parser)) {
		note_oom(c);
		return false;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	if (!yaml_parser_load(&parser, doc)) {
		report_parser_error(c, &parser);
		yaml_parser_delete(&parser);
		return false;
	}
	if (!yaml_parser_load(&parser, &extra)) {
		report_parser_error(c, &parser);
	} else {
		yaml_node_t *r = yaml_document_get_root_node(&extra);

		if (r)
			err_at(c, r, "a policy file must hold one YAML document, found more");
		else
			ok = true;
		yaml_document_delete(&extra);
	}
	if (!ok)
		yaml_document_delete(doc);
	yaml_parser_delete(&parser);
	return ok;
}

struct policy *policy_load_buffer(const char *buf, size_t len, const char *name,
				  struct policy_errors *errs)
{
	struct load_ctx c = { .name = name ? name : "<buffer>", .errs = errs };
	yaml_document_t doc;
	struct policy *p = NULL;

	if (!errs)
		return NULL;
	c.first_msg = errs->n;
	if (!buf || len > POLICY_MAX_FILE_BYTES) {
		err_pos(&c, 1, 1, "policy is larger than the limit of %u bytes",
			POLICY_MAX_FILE_BYTES);
	} else if (parse_document(&c, buf, len, &doc)) {
		yaml_node_t *root = yaml_document_get_root_node(&doc);

		c.doc = &doc;
		p = calloc(1, sizeof(*p));
		if (!p)
			note_oom(&c);
		else if (!root)
			err_pos(&c, 1, 1, "missing required key 'version' (empty document)");
		else
			load_root(&c, root, p);
		if (p && !(p->source = strdup(c.name)))
			note_oom(&c);
		yaml_document_delete(&doc);
	}
	if (c.n_errors || c.oom) {
		errors_finish(&c);
		policy_errors_free(&c.warns);
		policy_free(p);
		return NULL;
	}
	warnings_finish(&c);
	p->warnings = c.warns.msgs;
	p->n_warnings = c.warns.n;
	return p;
}

/* Reads at most POLICY_MAX_FILE_BYTES + 1 bytes so oversize is detected. */
static char *read_policy_file(const char *path, size_t *len, int *err)
{
	size_t cap = POLICY_MAX_FILE_BYTES + 1, n = 0;
	char *buf;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	struct stat st;

	if (fd < 0) {
		*err = errno;
		return NULL;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		*err = fstat(fd, &st) != 0 ? errno : S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
		close(fd);
		return NULL;
	}
	buf = malloc(cap + 1);
	if (!buf) {
		*err = ENOMEM;
		close(fd);
		return NULL;
	}
	while (n < cap) {
		ssize_t r = read(fd, buf + n, cap - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			*err = errno;
			free(buf);
			close(fd);
			return NULL;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	buf[n] = '\0';
	*len = n;
	return buf;
}

struct policy *policy_load_file(const char *path, struct policy_errors *errs)
{
	struct load_ctx c = { .name = path ? path : "<null>", .errs = errs };
	struct policy *p;
	size_t len = 0;
	int err = 0;
	char *buf;

	if (!errs)
		return NULL;
	c.first_msg = errs->n;
	buf = path ? read_policy_file(path, &len, &err) : NULL;
	if (!buf) {
		err_pos(&c, 1, 1, "cannot read policy file: %s", strerror(err ? err : EINVAL));
		errors_finish(&c);
		return NULL;
	}
	p = policy_load_buffer(buf, len, path, errs);
	free(buf);
	return p;
}

struct policy *policy_load_default(struct policy_errors *errs)
{
	return policy_load_buffer(default_policy_yaml, sizeof(default_policy_yaml) - 1,
				  "<embedded>", errs);
}

static void free_strv(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void policy_free(struct policy *p)
{
	if (!p)
		return;
	free_strv(p->read_only, p->n_read_only);
	free_strv(p->read_write, p->n_read_write);
	free(p->run_as_user);
	free(p->run_as_group);
	free(p->seccomp_profile);
	for (size_t i = 0; i < p->n_rules; i++)
		free_rule_model(&p->rules[i]);
	free(p->rules);
	for (size_t i = 0; i < p->n_middlewares; i++)
		free_middleware_model(&p->middlewares[i]);
	free(p->middlewares);
	free(p->source);
	free_strv(p->warnings, p->n_warnings);
	free(p);
}
