/* describe.c - the JSON description of a Landlock plan for the startup event. */
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "landlock/landlock.h"
#include "landlock/ll_int.h"

static const struct {
	uint64_t bit;
	const char *name;
} FS_RIGHTS[] = {
	{ LANDLOCK_ACCESS_FS_EXECUTE, "execute" },
	{ LANDLOCK_ACCESS_FS_WRITE_FILE, "write_file" },
	{ LANDLOCK_ACCESS_FS_READ_FILE, "read_file" },
	{ LANDLOCK_ACCESS_FS_READ_DIR, "read_dir" },
	{ LANDLOCK_ACCESS_FS_REMOVE_DIR, "remove_dir" },
	{ LANDLOCK_ACCESS_FS_REMOVE_FILE, "remove_file" },
	{ LANDLOCK_ACCESS_FS_MAKE_CHAR, "make_char" },
	{ LANDLOCK_ACCESS_FS_MAKE_DIR, "make_dir" },
	{ LANDLOCK_ACCESS_FS_MAKE_REG, "make_reg" },
	{ LANDLOCK_ACCESS_FS_MAKE_SOCK, "make_sock" },
	{ LANDLOCK_ACCESS_FS_MAKE_FIFO, "make_fifo" },
	{ LANDLOCK_ACCESS_FS_MAKE_BLOCK, "make_block" },
	{ LANDLOCK_ACCESS_FS_MAKE_SYM, "make_sym" },
	{ LANDLOCK_ACCESS_FS_REFER, "refer" },
	{ LANDLOCK_ACCESS_FS_TRUNCATE, "truncate" },
	{ LANDLOCK_ACCESS_FS_IOCTL_DEV, "ioctl_dev" },
};

/* json-c reports allocation failure through NULL returns; every add goes
 * through these helpers, which count failures instead of crashing. */
struct jb {
	int failed;
};

static void put(struct jb *b, json_object *obj, const char *key, json_object *val)
{
	if (!val || json_object_object_add(obj, key, val) != 0) {
		json_object_put(val);
		b->failed = 1;
	}
}

static void push(struct jb *b, json_object *arr, json_object *val)
{
	if (!val || json_object_array_add(arr, val) != 0) {
		json_object_put(val);
		b->failed = 1;
	}
}

static json_object *rights_array(struct jb *b, uint64_t mask)
{
	json_object *arr = json_object_new_array();
	for (size_t i = 0; arr && i < sizeof FS_RIGHTS / sizeof FS_RIGHTS[0]; i++)
		if (mask & FS_RIGHTS[i].bit)
			push(b, arr, json_object_new_string(FS_RIGHTS[i].name));
	return arr;
}

static json_object *scoped_array(struct jb *b, uint64_t scoped)
{
	json_object *arr = json_object_new_array();
	if (arr && (scoped & LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET))
		push(b, arr, json_object_new_string("abstract_unix_socket"));
	if (arr && (scoped & LANDLOCK_SCOPE_SIGNAL))
		push(b, arr, json_object_new_string("signal"));
	return arr;
}

static json_object *entry_object(struct jb *b, const struct ll_entry *e)
{
	json_object *o = json_object_new_object();
	if (!o)
		return NULL;
	put(b, o, "path", json_object_new_string(e->path));
	if (e->applied) {
		put(b, o, "access", json_object_new_string(e->grant == LL_GRANT_RW ? "read_write"
										   : "read_only"));
		put(b, o, "type", json_object_new_string(e->is_dir ? "dir" : "file"));
	} else {
		put(b, o, "reason", json_object_new_string(e->skip_reason ? e->skip_reason
									  : "not opened"));
	}
	put(b, o, "source", json_object_new_string(ll_source_name(e->source)));
	return o;
}

static void describe_paths(struct jb *b, json_object *root, const struct landlock_plan *plan)
{
	json_object *rules = json_object_new_array();
	json_object *skipped = json_object_new_array();
	for (size_t i = 0; rules && skipped && i < plan->n_entries; i++) {
		const struct ll_entry *e = &plan->entries[i];
		push(b, e->applied ? rules : skipped, entry_object(b, e));
	}
	put(b, root, "rules", rules);
	put(b, root, "skipped", skipped);
}

static void describe_plan(struct jb *b, json_object *root, const struct landlock_plan *plan)
{
	put(b, root, "enabled", json_object_new_boolean(1));
	put(b, root, "enforced", json_object_new_boolean(plan->ruleset_fd >= 0));
	put(b, root, "abi", json_object_new_int(plan->abi > 0 ? plan->abi : 0));
	put(b, root, "compatibility",
	    json_object_new_string(plan->hard ? "hard_requirement" : "best_effort"));
	if (plan->ruleset_fd < 0) {
		put(b, root, "reason", json_object_new_string(plan->unavailable ? plan->unavailable
										 : "not enforced"));
		return;
	}
	put(b, root, "handled_access_fs", rights_array(b, plan->handled_fs));
	put(b, root, "scoped", scoped_array(b, plan->scoped));
	put(b, root, "log_new_exec", json_object_new_boolean(
		(plan->restrict_flags & LANDLOCK_RESTRICT_SELF_LOG_NEW_EXEC_ON) != 0));
	describe_paths(b, root, plan);
	json_object *deg = json_object_new_array();
	for (size_t i = 0; deg && i < plan->n_degraded; i++)
		push(b, deg, json_object_new_string(plan->degraded[i]));
	put(b, root, "degraded", deg);
}

int landlock_describe(const struct landlock_plan *plan, char *buf, size_t len)
{
	struct jb b = { 0 };
	json_object *root = json_object_new_object();
	if (!root)
		return -1;
	if (plan) {
		describe_plan(&b, root, plan);
	} else {
		put(&b, root, "enabled", json_object_new_boolean(0));
		put(&b, root, "reason", json_object_new_string("no filesystem_policy"));
	}
	int n = -1;
	const char *txt = b.failed ? NULL
				   : json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN |
									  JSON_C_TO_STRING_NOSLASHESCAPE);
	if (txt) {
		size_t tl = strlen(txt);
		n = tl > (size_t)__INT_MAX__ ? -1 : (int)tl;
		if (buf && len > 0) {
			if (tl < len)
				memcpy(buf, txt, tl + 1);
			else
				buf[0] = '\0';
		}
	}
	json_object_put(root);
	return n;
}
