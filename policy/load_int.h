/* load_int.h - private helpers shared by the policy loader's source files.
 * Included only by the policy/ sources and the policy unit tests. */
#ifndef OPENSHELL_POLICY_LOAD_INT_H
#define OPENSHELL_POLICY_LOAD_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

#include "policy/policy.h"

/* State of one load: the parsed document and the error list being filled. */
struct load_ctx {
	yaml_document_t *doc;
	const char *name;            /* file name for messages */
	struct policy_errors *errs;
	size_t first_msg;            /* errs->n when this load started */
	size_t n_errors;             /* problems found, including unrecorded ones */
	size_t visits;               /* nodes walked so far (alias-bomb guard) */
	bool over_budget;            /* POLICY_MAX_NODE_VISITS reached */
	bool oom;
	struct policy_errors warns;  /* moved into the policy on success */
	size_t n_warnings;
	size_t n_endpoints;          /* across all rules, for POLICY_MAX_ENDPOINTS */
};

/* One key/value pair of a struct-like mapping, NULL when the key is absent. */
struct kv {
	yaml_node_t *key;
	yaml_node_t *val;
};

/* ---- errors.c ---- */
void err_at(struct load_ctx *c, const yaml_node_t *node, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void err_pos(struct load_ctx *c, unsigned line, unsigned col, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void warn_at(struct load_ctx *c, const yaml_node_t *node, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void note_oom(struct load_ctx *c);
/* Adds the "too many errors" line when needed, and a fallback on OOM. */
void errors_finish(struct load_ctx *c);
/* Sorts the warnings by position. */
void warnings_finish(struct load_ctx *c);

/* ---- yaml_util.c ---- */
/* Counts one visit of `node`; false (error reported once) when over budget. */
bool visit(struct load_ctx *c, const yaml_node_t *node);
yaml_node_t *node_at(struct load_ctx *c, int index);
unsigned node_line(const yaml_node_t *n);
unsigned node_col(const yaml_node_t *n);
/* The scalar's bytes (NUL-terminated by libyaml) or NULL if not a scalar. */
const char *scalar_text(const yaml_node_t *n);
/* Printable, truncated copy of untrusted text for messages. */
const char *safe_text(const char *s, char *buf, size_t size);
#define SHOW(s) safe_text((s), (char[80]){0}, 80)
/* An empty plain scalar: YAML's "no value", read as empty list/map. */
bool is_empty_plain(const yaml_node_t *n);

/* Read a struct-like mapping: every key must be in names[] (n entries);
 * unknown keys, duplicates, non-scalar keys and '<<' are reported. out[i]
 * receives the pair for names[i]. `what` names the mapping in messages.
 * An empty plain scalar reads as an empty mapping. Returns false (error
 * reported) when `map` is not a mapping. */
bool read_struct(struct load_ctx *c, yaml_node_t *map, const char *what,
		 const char *const *names, size_t n, struct kv *out);

/* Iterate a map-typed field (names are data): reports non-mapping values,
 * non-scalar / '<<' / duplicate keys. Calls fn for every valid pair. */
typedef void (*map_entry_fn)(struct load_ctx *c, yaml_node_t *key,
			     yaml_node_t *val, void *arg);
bool read_map(struct load_ctx *c, yaml_node_t *map, const char *what,
	      map_entry_fn fn, void *arg);

/* Number of items of a sequence (empty plain scalar = 0 items); -1 and an
 * error when `seq` is not a sequence. */
long seq_len(struct load_ctx *c, yaml_node_t *seq, const char *what);
yaml_node_t *seq_item(struct load_ctx *c, yaml_node_t *seq, long i);

/* Typed scalars (serde_yml rules). Each reports its own error and returns
 * false on a bad value; the key name `what` is used in messages. */
bool get_string(struct load_ctx *c, yaml_node_t *n, const char *what, char **out);
bool get_bool(struct load_ctx *c, yaml_node_t *n, const char *what, bool *out);
bool get_int(struct load_ctx *c, yaml_node_t *n, const char *what,
	     int64_t min, int64_t max, int64_t *out);
/* A list of strings; every item must be a scalar string. */
bool get_string_list(struct load_ctx *c, yaml_node_t *n, const char *what,
		     char ***out, size_t *n_out);
/* The same, calling check(c, item_node, text, arg) for every string read. */
typedef void (*string_check_fn)(struct load_ctx *c, yaml_node_t *item, const char *s,
				void *arg);
bool get_checked_string_list(struct load_ctx *c, yaml_node_t *n, const char *what,
			     char ***out, size_t *n_out, string_check_fn check, void *arg);

/* Validate an arbitrary JSON-like value (middleware config). */
void check_any_value(struct load_ctx *c, yaml_node_t *n, unsigned depth);

/* ---- endpoint.c ---- */
void load_endpoint(struct load_ctx *c, yaml_node_t *node, struct policy_endpoint *ep);
void free_endpoint(struct policy_endpoint *ep);

/* ---- host.c ---- */
/* Validate an endpoint host / selector pattern; reports errors at `node`. */
void check_endpoint_host(struct load_ctx *c, yaml_node_t *node, const char *host,
			 bool is_tcp);
bool check_selector_pattern(struct load_ctx *c, yaml_node_t *node, const char *pat);
bool host_is_ip_literal(const char *host);
/* Could some host match both patterns? (approximate, errs on "yes") */
bool host_patterns_overlap(const char *a, const char *b);

/* ---- glob.c ---- */
/* Single-level glob with '*', '?', classes; `delim` (may be 0) is never
 * crossed by '*' or '?'. */
bool value_glob_match(const char *pattern, const char *value, char delim);
/* Pattern has glob metacharacters. */
bool has_glob_meta(const char *s);

/* ---- cidr.c ---- */
/* Overlaps an always-blocked range (loopback, link-local, unspecified...). */
bool cidr_overlaps_blocked(const struct policy_cidr *c);

#endif
