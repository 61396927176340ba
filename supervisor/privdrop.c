/* privdrop.c - drop to the agent identity in a forked child, verifying each
 * step (bubblewrap style: never assume a call did what it says).
 *
 * Order: supplementary groups, gid, empty capability bounding set (needs
 * CAP_SETPCAP, so while still root), uid, then prove root cannot be regained,
 * no_new_privs, and no capability left in any set. Runs after fork in a
 * possibly multi-threaded parent, so it never allocates.
 */
#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "supervisor/sup.h"

static int fail(char *err, size_t errlen, const char *step, int e)
{
	snprintf(err, errlen, "%s: %s", step, strerror(e));
	return -1;
}

static int set_groups(const struct sup_identity *id, char *err, size_t errlen)
{
	if (setgroups((size_t)id->n_groups, id->groups) != 0)
		return fail(err, errlen, "setgroups", errno);
	gid_t now[SUP_MAX_GROUPS];
	int n = getgroups(SUP_MAX_GROUPS, now);
	if (n != id->n_groups || memcmp(now, id->groups, (size_t)n * sizeof *now) != 0)
		return fail(err, errlen, "setgroups verification", EPERM);
	return 0;
}

static int set_gid(gid_t gid, char *err, size_t errlen)
{
	gid_t r, e, s;
	if (setresgid(gid, gid, gid) != 0)
		return fail(err, errlen, "setresgid", errno);
	if (getresgid(&r, &e, &s) != 0 || r != gid || e != gid || s != gid)
		return fail(err, errlen, "setresgid verification", EPERM);
	return 0;
}

static int clear_bounding_set(char *err, size_t errlen)
{
	cap_value_t last = (cap_value_t)cap_max_bits();
	for (cap_value_t c = 0; c < last; c++) {
		if (cap_drop_bound(c) != 0 && errno != EINVAL)
			return fail(err, errlen, "cap_drop_bound", errno);
	}
	for (cap_value_t c = 0; c < last; c++) {
		if (cap_get_bound(c) > 0)
			return fail(err, errlen, "capability bounding set still has entries", EPERM);
	}
	if (cap_reset_ambient() != 0)
		return fail(err, errlen, "cap_reset_ambient", errno);
	return 0;
}

static int set_uid(uid_t uid, char *err, size_t errlen)
{
	uid_t r, e, s;
	if (setresuid(uid, uid, uid) != 0)
		return fail(err, errlen, "setresuid", errno);
	if (getresuid(&r, &e, &s) != 0 || r != uid || e != uid || s != uid)
		return fail(err, errlen, "setresuid verification", EPERM);
	if (setuid(0) == 0 || seteuid(0) == 0)
		return fail(err, errlen, "root could be regained after setresuid", EPERM);
	return 0;
}

/* setresuid() from root clears the permitted and effective sets but not the
 * inheritable one, which some runtimes fill: clear it explicitly. Raw capset:
 * libcap's cap_set_proc allocates. */
static int clear_inheritable(char *err, size_t errlen)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2];
	memset(data, 0, sizeof data);
	if (syscall(SYS_capset, &hdr, data) != 0)
		return fail(err, errlen, "capset (clearing every capability set)", errno);
	return 0;
}

/* Raw capget: libcap's cap_get_proc allocates. */
static int verify_no_capabilities(char *err, size_t errlen)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2];
	memset(data, 0, sizeof data);
	if (syscall(SYS_capget, &hdr, data) != 0)
		return fail(err, errlen, "capget", errno);
	for (int i = 0; i < 2; i++) {
		if (data[i].effective || data[i].permitted || data[i].inheritable)
			return fail(err, errlen, "capabilities remain after dropping to the agent user", EPERM);
	}
	return 0;
}

static int set_no_new_privs(char *err, size_t errlen)
{
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		return fail(err, errlen, "PR_SET_NO_NEW_PRIVS", errno);
	if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
		return fail(err, errlen, "PR_SET_NO_NEW_PRIVS verification", EPERM);
	return 0;
}

int sup_drop_privileges(const struct sup_identity *id, char *err, size_t errlen)
{
	if (set_groups(id, err, errlen) || set_gid(id->gid, err, errlen) ||
	    clear_bounding_set(err, errlen) || set_uid(id->uid, err, errlen) ||
	    clear_inheritable(err, errlen) || verify_no_capabilities(err, errlen) ||
	    set_no_new_privs(err, errlen))
		return -1;
	return 0;
}
