/* identity.c - resolve the agent's uid/gid/groups once, before any child.
 *
 * run_as_user / run_as_group are "sandbox" or a decimal id (the policy loader
 * has validated that). "sandbox" falls back to 65534 (nobody) when the image
 * has no such account. Root (0) is never accepted, in any position.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"
#include "supervisor/sup.h"

#define PWBUF_BYTES 16384

static bool parse_id(const char *s, unsigned long *out)
{
	char *end = NULL;
	if (!s || !*s || *s == '-')
		return false;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || *end || v == 0 || v > 4294967294ul)
		return false;
	*out = v;
	return true;
}

/* Looks up a passwd entry by name (name != NULL) or uid. Copies what we keep. */
static bool lookup_user(const char *name, uid_t uid, struct sup_identity *id, gid_t *primary)
{
	struct passwd pw, *res = NULL;
	char buf[PWBUF_BYTES];
	int rc = name ? getpwnam_r(name, &pw, buf, sizeof buf, &res)
		      : getpwuid_r(uid, &pw, buf, sizeof buf, &res);
	if (rc != 0 || !res)
		return false;
	id->uid = pw.pw_uid;
	*primary = pw.pw_gid;
	snprintf(id->user, sizeof id->user, "%s", pw.pw_name);
	snprintf(id->home, sizeof id->home, "%s", pw.pw_dir && *pw.pw_dir ? pw.pw_dir : "/sandbox");
	return true;
}

static int resolve_user(const char *spec, struct sup_identity *id, gid_t *primary, bool *has_pw)
{
	unsigned long n;
	*has_pw = false;
	if (parse_id(spec, &n)) {
		*has_pw = lookup_user(NULL, (uid_t)n, id, primary);
		if (!*has_pw) {
			id->uid = (uid_t)n;
			*primary = (gid_t)n;
			snprintf(id->user, sizeof id->user, "%lu", n);
			snprintf(id->home, sizeof id->home, "/sandbox");
		}
		return 0;
	}
	if (strcmp(spec, "sandbox") != 0)
		return -1;
	*has_pw = lookup_user("sandbox", 0, id, primary);
	if (!*has_pw) {
		id->uid = SUP_NOBODY_ID;
		*primary = SUP_NOBODY_ID;
		snprintf(id->user, sizeof id->user, "nobody");
		snprintf(id->home, sizeof id->home, "/sandbox");
	}
	return 0;
}

static int resolve_group(const char *spec, gid_t primary, gid_t *gid)
{
	unsigned long n;
	if (!spec) {
		*gid = primary;
		return 0;
	}
	if (parse_id(spec, &n)) {
		*gid = (gid_t)n;
		return 0;
	}
	if (strcmp(spec, "sandbox") != 0)
		return -1;
	struct group gr, *res = NULL;
	char buf[PWBUF_BYTES];
	if (getgrnam_r("sandbox", &gr, buf, sizeof buf, &res) == 0 && res)
		*gid = gr.gr_gid;
	else
		*gid = primary;
	return 0;
}

static int cmp_gid(const void *a, const void *b)
{
	gid_t x = *(const gid_t *)a, y = *(const gid_t *)b;
	return x < y ? -1 : x > y;
}

static int resolve_groups(struct sup_identity *id, bool has_pw, char *err, size_t errlen)
{
	id->groups[0] = id->gid;
	id->n_groups = 1;
	if (has_pw) {
		int n = SUP_MAX_GROUPS;
		if (getgrouplist(id->user, id->gid, id->groups, &n) < 0) {
			snprintf(err, errlen, "user '%s' is in more than %d groups", id->user,
				 SUP_MAX_GROUPS);
			return -1;
		}
		id->n_groups = n;
		/* The kernel keeps the list sorted; so do we, to verify it after setgroups. */
		qsort(id->groups, (size_t)n, sizeof *id->groups, cmp_gid);
	}
	for (int i = 0; i < id->n_groups; i++) {
		if (id->groups[i] == 0) {
			snprintf(err, errlen, "user '%s' is a member of group 0 (root); refusing",
				 id->user);
			return -1;
		}
	}
	return 0;
}

int sup_resolve_identity(const struct policy *p, struct sup_identity *id, char *err, size_t errlen)
{
	memset(id, 0, sizeof *id);
	const char *user = p->run_as_user ? p->run_as_user : "sandbox";
	const char *group = p->run_as_group;
	gid_t primary = 0;
	bool has_pw = false;
	if (resolve_user(user, id, &primary, &has_pw) != 0) {
		snprintf(err, errlen, "process.run_as_user '%s' must be 'sandbox' or a uid", user);
		return -1;
	}
	if (resolve_group(group, primary, &id->gid) != 0) {
		snprintf(err, errlen, "process.run_as_group '%s' must be 'sandbox' or a gid", group);
		return -1;
	}
	if (id->uid == 0 || id->gid == 0) {
		snprintf(err, errlen, "refusing to run the agent as root (uid %u gid %u)",
			 (unsigned)id->uid, (unsigned)id->gid);
		return -1;
	}
	return resolve_groups(id, has_pw, err, errlen);
}
