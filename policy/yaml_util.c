/* yaml_util.c - typed access to libyaml document nodes with serde_yml rules:
 * strict scalars, unknown/duplicate keys, no merge keys. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "policy/load_int.h"

bool visit(struct load_ctx *c, const yaml_node_t *node)
{
	if (c->over_budget)
		return false;
	if (++c->visits > POLICY_MAX_NODE_VISITS) {
		c->over_budget = true;
		err_at(c, node, "policy too complex: more than %u YAML nodes to "
		       "walk (aliases count every time they are used)",
		       POLICY_MAX_NODE_VISITS);
		return false;
	}
	return true;
}

yaml_node_t *node_at(struct load_ctx *c, int index)
{
	return yaml_document_get_node(c->doc, index);
}

unsigned node_line(const yaml_node_t *n)
{
	return (unsigned)n->start_mark.line + 1;
}

unsigned node_col(const yaml_node_t *n)
{
	return (unsigned)n->start_mark.column + 1;
}

const char *scalar_text(const yaml_node_t *n)
{
	if (!n || n->type != YAML_SCALAR_NODE)
		return NULL;
	return (const char *)n->data.scalar.value;
}

const char *safe_text(const char *s, char *buf, size_t size)
{
	size_t o = 0;

	if (!s)
		s = "";
	for (; *s && o + 4 < size; s++)
		buf[o++] = (*s >= 0x20 && *s < 0x7f) ? *s : '?';
	if (*s) {
		buf[o++] = '.';
		buf[o++] = '.';
		buf[o++] = '.';
	}
	buf[o] = '\0';
	return buf;
}

bool is_empty_plain(const yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE && n->data.scalar.length == 0 &&
	       n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

static bool is_null_word(const yaml_node_t *n)
{
	static const char *const nulls[] = { "~", "null", "Null", "NULL" };
	const char *t = scalar_text(n);

	if (!t || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
		if (strcmp(t, nulls[i]) == 0)
			return true;
	return false;
}

static const char *kind_name(const yaml_node_t *n)
{
	if (n->type == YAML_MAPPING_NODE)
		return "a mapping";
	if (n->type == YAML_SEQUENCE_NODE)
		return "a list";
	if (is_null_word(n))
		return "null";
	return "a scalar";
}

/* Checks a mapping key; returns its text or NULL (error reported). */
static const char *key_text(struct load_ctx *c, yaml_node_t *k, const char *what)
{
	const char *t = scalar_text(k);

	if (!t) {
		err_at(c, k, "keys of %s must be strings", what);
		return NULL;
	}
	if (strlen(t) != k->data.scalar.length) {
		err_at(c, k, "key in %s contains a NUL byte", what);
		return NULL;
	}
	if (strcmp(t, "<<") == 0 && k->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
		err_at(c, k, "YAML merge keys ('<<') are not supported (in %s)", what);
		return NULL;
	}
	return t;
}

bool read_struct(struct load_ctx *c, yaml_node_t *map, const char *what,
		 const char *const *names, size_t n, struct kv *out)
{
	memset(out, 0, n * sizeof(*out));
	if (!visit(c, map))
		return false;
	if (is_empty_plain(map))
		return true;
	if (map->type != YAML_MAPPING_NODE) {
		err_at(c, map, "%s must be a mapping, not %s", what, kind_name(map));
		return false;
	}
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
	     p < map->data.mapping.pairs.top; p++) {
		yaml_node_t *k = node_at(c, p->key);
		yaml_node_t *v = node_at(c, p->value);
		const char *t;
		size_t i;

		if (!k || !v || !(t = key_text(c, k, what)))
			continue;
		for (i = 0; i < n && strcmp(names[i], t) != 0; i++)
			;
		if (i == n)
			err_at(c, k, "unknown key '%s' in %s", SHOW(t), what);
		else if (out[i].key)
			err_at(c, k, "duplicate key '%s' in %s (first at line %u)",
			       SHOW(t), what, node_line(out[i].key));
		else
			out[i] = (struct kv){ k, v };
	}
	return true;
}

struct map_key {
	const char *text;
	size_t pos;
};

static int cmp_map_key(const void *a, const void *b)
{
	const struct map_key *x = a, *y = b;
	int r = strcmp(x->text, y->text);

	if (r)
		return r;
	return (x->pos > y->pos) - (x->pos < y->pos);
}

/* Marks dup[i] for every key equal to an earlier one; reports each. */
static bool find_duplicates(struct load_ctx *c, yaml_node_t *map, const char *what,
			    bool *dup)
{
	size_t n = (size_t)(map->data.mapping.pairs.top - map->data.mapping.pairs.start);
	struct map_key *keys = calloc(n ? n : 1, sizeof(*keys));
	size_t m = 0;

	if (!keys) {
		note_oom(c);
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		const char *t = scalar_text(node_at(c, map->data.mapping.pairs.start[i].key));

		if (t)
			keys[m++] = (struct map_key){ t, i };
	}
	qsort(keys, m, sizeof(*keys), cmp_map_key);
	for (size_t i = 1; i < m; i++) {
		if (strcmp(keys[i].text, keys[i - 1].text) != 0)
			continue;
		dup[keys[i].pos] = true;
		err_at(c, node_at(c, map->data.mapping.pairs.start[keys[i].pos].key),
		       "duplicate key '%s' in %s", SHOW(keys[i].text), what);
	}
	free(keys);
	return true;
}

bool read_map(struct load_ctx *c, yaml_node_t *map, const char *what,
	      map_entry_fn fn, void *arg)
{
	size_t n;
	bool *dup;

	if (!visit(c, map))
		return false;
	if (is_empty_plain(map))
		return true;
	if (map->type != YAML_MAPPING_NODE) {
		err_at(c, map, "%s must be a mapping, not %s", what, kind_name(map));
		return false;
	}
	n = (size_t)(map->data.mapping.pairs.top - map->data.mapping.pairs.start);
	dup = calloc(n ? n : 1, sizeof(*dup));
	if (!dup) {
		note_oom(c);
		return false;
	}
	if (find_duplicates(c, map, what, dup)) {
		for (size_t i = 0; i < n && !c->over_budget; i++) {
			yaml_node_pair_t *p = &map->data.mapping.pairs.start[i];
			yaml_node_t *k = node_at(c, p->key);
			yaml_node_t *v = node_at(c, p->value);

			if (k && v && !dup[i] && key_text(c, k, what))
				fn(c, k, v, arg);
		}
	}
	free(dup);
	return true;
}

long seq_len(struct load_ctx *c, yaml_node_t *seq, const char *what)
{
	if (!visit(c, seq))
		return -1;
	if (is_empty_plain(seq))
		return 0;
	if (seq->type != YAML_SEQUENCE_NODE) {
		err_at(c, seq, "'%s' must be a list, not %s", what, kind_name(seq));
		return -1;
	}
	return (long)(seq->data.sequence.items.top - seq->data.sequence.items.start);
}

yaml_node_t *seq_item(struct load_ctx *c, yaml_node_t *seq, long i)
{
	return node_at(c, seq->data.sequence.items.start[i]);
}

bool get_string(struct load_ctx *c, yaml_node_t *n, const char *what, char **out)
{
	const char *t = scalar_text(n);

	*out = NULL;
	if (!visit(c, n))
		return false;
	if (!t || is_null_word(n)) {
		err_at(c, n, "'%s' must be a string, not %s", what, kind_name(n));
		return false;
	}
	if (strlen(t) != n->data.scalar.length) {
		err_at(c, n, "'%s' contains a NUL byte", what);
		return false;
	}
	*out = strdup(t);
	if (!*out) {
		note_oom(c);
		return false;
	}
	return true;
}

bool get_bool(struct load_ctx *c, yaml_node_t *n, const char *what, bool *out)
{
	static const char *const yes[] = { "true", "True", "TRUE" };
	static const char *const no[] = { "false", "False", "FALSE" };
	const char *t = scalar_text(n);

	if (!visit(c, n))
		return false;
	if (t && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
		for (size_t i = 0; i < 3; i++) {
			if (strcmp(t, yes[i]) == 0 || strcmp(t, no[i]) == 0) {
				*out = strcmp(t, yes[i]) == 0;
				return true;
			}
		}
	}
	if (t && n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		err_at(c, n, "'%s' must be an unquoted boolean (true or false), "
		       "not a quoted string", what);
	else if (t)
		err_at(c, n, "'%s' must be true or false, not '%s'", what, SHOW(t));
	else
		err_at(c, n, "'%s' must be true or false, not %s", what, kind_name(n));
	return false;
}

/* Parses serde_yml's integer syntax: [+-](decimal | 0x.. | 0o.. | 0b..),
 * no leading zeros in decimal, no underscores. */
static bool parse_yaml_int(const char *t, int64_t *out)
{
	bool neg = false;
	int base = 10;
	unsigned __int128 v = 0;

	if (*t == '+' || *t == '-')
		neg = (*t++ == '-');
	if (t[0] == '0' && (t[1] == 'x' || t[1] == 'o' || t[1] == 'b')) {
		base = t[1] == 'x' ? 16 : t[1] == 'o' ? 8 : 2;
		t += 2;
	} else if (t[0] == '0' && t[1] != '\0') {
		return false; /* leading zero */
	}
	if (*t == '\0')
		return false;
	for (; *t; t++) {
		int d;

		if (isdigit((unsigned char)*t))
			d = *t - '0';
		else if (isxdigit((unsigned char)*t))
			d = tolower((unsigned char)*t) - 'a' + 10;
		else
			return false;
		if (d >= base)
			return false;
		v = v * (unsigned)base + (unsigned)d;
		if (v > (unsigned __int128)INT64_MAX + 1)
			return false;
	}
	if (!neg && v > INT64_MAX)
		return false;
	*out = neg ? (int64_t)(0 - (uint64_t)v) : (int64_t)v;
	return true;
}

bool get_int(struct load_ctx *c, yaml_node_t *n, const char *what,
	     int64_t min, int64_t max, int64_t *out)
{
	const char *t = scalar_text(n);
	int64_t v;

	if (!visit(c, n))
		return false;
	if (!t) {
		err_at(c, n, "'%s' must be an integer, not %s", what, kind_name(n));
		return false;
	}
	if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) {
		err_at(c, n, "'%s' must be an unquoted integer, not a quoted string",
		       what);
		return false;
	}
	if (!parse_yaml_int(t, &v) || v < min || v > max) {
		err_at(c, n, "'%s' must be an integer in %lld..%lld, not '%s'", what,
		       (long long)min, (long long)max, SHOW(t));
		return false;
	}
	*out = v;
	return true;
}

bool get_string_list(struct load_ctx *c, yaml_node_t *n, const char *what,
		     char ***out, size_t *n_out)
{
	return get_checked_string_list(c, n, what, out, n_out, NULL, NULL);
}

bool get_checked_string_list(struct load_ctx *c, yaml_node_t *n, const char *what,
			     char ***out, size_t *n_out, string_check_fn check, void *arg)
{
	long len = seq_len(c, n, what);
	bool ok = true;

	*out = NULL;
	*n_out = 0;
	if (len < 0)
		return false;
	if (len == 0)
		return true;
	*out = calloc((size_t)len, sizeof(**out));
	if (!*out) {
		note_oom(c);
		return false;
	}
	for (long i = 0; i < len; i++) {
		yaml_node_t *item = seq_item(c, n, i);
		char *s;

		if (!get_string(c, item, what, &s)) {
			ok = false;
			continue;
		}
		(*out)[(*n_out)++] = s;
		if (check)
			check(c, item, s, arg);
	}
	return ok;
}

struct any_arg {
	unsigned depth;
};

static void any_entry(struct load_ctx *c, yaml_node_t *k, yaml_node_t *v, void *arg)
{
	const struct any_arg *a = arg;

	(void)k;
	check_any_value(c, v, a->depth + 1);
}

void check_any_value(struct load_ctx *c, yaml_node_t *n, unsigned depth)
{
	struct any_arg a = { depth };

	if (depth > POLICY_MAX_CONFIG_DEPTH) {
		err_at(c, n, "value nested deeper than %u levels", POLICY_MAX_CONFIG_DEPTH);
		return;
	}
	if (n->type == YAML_MAPPING_NODE) {
		read_map(c, n, "config", any_entry, &a);
		return;
	}
	if (!visit(c, n))
		return;
	if (n->type == YAML_SEQUENCE_NODE) {
		for (yaml_node_item_t *i = n->data.sequence.items.start;
		     i < n->data.sequence.items.top && !c->over_budget; i++) {
			yaml_node_t *item = node_at(c, *i);

			if (item)
				check_any_value(c, item, depth + 1);
		}
	}
}
