/* seccomp.c - compile a profile to BPF in the parent, install it in the child.
 *
 * libseccomp 2.5 (Debian 12) can only export BPF to a file descriptor, so the
 * program goes through a memfd and is read back into a buffer the plan owns.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "seccomp/sc_int.h"
#include "seccomp/seccomp.h"

struct seccomp_plan {
	char profile[SECCOMP_PROFILE_NAME_MAX];
	struct sock_fprog prog;     /* prog.filter points to insns */
	struct sock_filter *insns;
};

static int make_ctx(scmp_filter_ctx *out, char *err, size_t errlen)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	if (!ctx) {
		snprintf(err, errlen, "seccomp_init failed");
		return -1;
	}
	int rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
#if defined(__x86_64__)
	/* Same rules for the 32-bit ABIs the kernel may run on this machine. */
	if (rc == 0)
		rc = seccomp_arch_add(ctx, SCMP_ARCH_X86);
	if (rc == 0)
		rc = seccomp_arch_add(ctx, SCMP_ARCH_X32);
#endif
	if (rc != 0) {
		snprintf(err, errlen, "seccomp: setting up the filter: %s", strerror(-rc));
		seccomp_release(ctx);
		return -1;
	}
	*out = ctx;
	return 0;
}

static int export_fd(void)
{
	int fd = memfd_create("openshell-seccomp", MFD_CLOEXEC);
	if (fd >= 0 || (errno != ENOSYS && errno != EPERM))
		return fd;
	FILE *f = tmpfile(); /* memfd unavailable: an unlinked temporary file */
	if (!f)
		return -1;
	int dup_fd = fcntl(fileno(f), F_DUPFD_CLOEXEC, 0);
	fclose(f);
	return dup_fd;
}

static int read_all(int fd, void *buf, size_t len)
{
	size_t got = 0;
	while (got < len) {
		ssize_t n = pread(fd, (char *)buf + got, len - got, (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	return 0;
}

/* Export ctx as BPF into plan->insns / plan->prog. */
static int export_program(scmp_filter_ctx ctx, struct seccomp_plan *plan, char *err,
			  size_t errlen)
{
	int fd = export_fd();
	if (fd < 0) {
		snprintf(err, errlen, "seccomp: no file to export the filter to: %s",
			 strerror(errno));
		return -1;
	}
	int ret = -1;
	struct stat st;
	int rc = seccomp_export_bpf(ctx, fd);
	if (rc != 0) {
		snprintf(err, errlen, "seccomp_export_bpf: %s", strerror(-rc));
	} else if (fstat(fd, &st) != 0) {
		snprintf(err, errlen, "seccomp: fstat of the exported filter: %s", strerror(errno));
	} else if (st.st_size <= 0 || st.st_size % (off_t)sizeof(struct sock_filter) != 0 ||
		   st.st_size / (off_t)sizeof(struct sock_filter) > SECCOMP_MAX_PROG_INSNS) {
		snprintf(err, errlen, "seccomp: exported filter has a bad size (%lld bytes)",
			 (long long)st.st_size);
	} else if (!(plan->insns = malloc((size_t)st.st_size))) {
		snprintf(err, errlen, "out of memory");
	} else if (read_all(fd, plan->insns, (size_t)st.st_size) != 0) {
		snprintf(err, errlen, "seccomp: reading the exported filter failed");
	} else {
		plan->prog.len = (unsigned short)(st.st_size / (off_t)sizeof(struct sock_filter));
		plan->prog.filter = plan->insns;
		ret = 0;
	}
	close(fd);
	return ret;
}

int seccomp_prepare(const char *profile, struct seccomp_plan **out, char *err, size_t errlen)
{
	*out = NULL;
	if (!profile || strcmp(profile, "off") == 0)
		return 0;
	const struct sc_profile *prof = sc_profile_find(profile);
	if (!prof) {
		snprintf(err, errlen,
			 "unknown seccomp profile \"%.32s\" (expected baseline, strict, nested or off)",
			 profile);
		return -1;
	}
	struct seccomp_plan *plan = calloc(1, sizeof *plan);
	if (!plan) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	snprintf(plan->profile, sizeof plan->profile, "%s", prof->name);
	scmp_filter_ctx ctx;
	if (make_ctx(&ctx, err, errlen) != 0) {
		free(plan);
		return -1;
	}
	int rc = sc_profile_add_rules(ctx, prof, err, errlen);
	if (rc == 0)
		rc = export_program(ctx, plan, err, errlen);
	seccomp_release(ctx);
	if (rc != 0) {
		seccomp_plan_free(plan);
		return -1;
	}
	*out = plan;
	return 0;
}

/* Async-signal-safe "msg (errno N)". */
static void child_err(char *err, size_t errlen, const char *msg, int e)
{
	if (!err || errlen == 0)
		return;
	size_t n = 0;
	for (; *msg && n + 1 < errlen; msg++)
		err[n++] = *msg;
	char num[16];
	size_t k = 0;
	unsigned v = e > 0 ? (unsigned)e : 0;
	do {
		num[k++] = (char)('0' + v % 10);
		v /= 10;
	} while (v && k < sizeof num);
	for (const char *pre = " (errno "; *pre && n + 1 < errlen; pre++)
		err[n++] = *pre;
	while (k && n + 1 < errlen)
		err[n++] = num[--k];
	if (n + 1 < errlen)
		err[n++] = ')';
	err[n] = '\0';
}

int seccomp_apply(const struct seccomp_plan *plan, char *err, size_t errlen)
{
	if (!plan)
		return 0;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
		child_err(err, errlen, "seccomp: PR_SET_NO_NEW_PRIVS failed", errno);
		return -1;
	}
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &plan->prog, 0, 0) != 0) {
		child_err(err, errlen, "seccomp: installing the filter failed", errno);
		return -1;
	}
	return 0;
}

const char *seccomp_plan_profile(const struct seccomp_plan *plan)
{
	return plan ? plan->profile : "off";
}

static int obj_add(json_object *o, const char *key, json_object *val)
{
	if (val && json_object_object_add(o, key, val) == 0)
		return 0;
	json_object_put(val);
	return 1;
}

static int arr_add(json_object *a, json_object *val)
{
	if (val && json_object_array_add(a, val) == 0)
		return 0;
	json_object_put(val);
	return 1;
}

static int describe_plan(json_object *root, const struct seccomp_plan *plan)
{
	int bad = 0;
	json_object *arches = json_object_new_array();
#if defined(__x86_64__)
	static const char *const names[] = { "x86_64", "x86", "x32" };
	for (size_t i = 0; arches && i < sizeof names / sizeof names[0]; i++)
		bad |= arr_add(arches, json_object_new_string(names[i]));
#endif
	bad |= obj_add(root, "arches", arches);
	bad |= obj_add(root, "default", json_object_new_string("allow"));
	bad |= obj_add(root, "bpf_insns", json_object_new_int(plan->prog.len));
	return bad;
}

int seccomp_describe(const struct seccomp_plan *plan, char *buf, size_t len)
{
	json_object *root = json_object_new_object();
	if (!root)
		return -1;
	int bad = obj_add(root, "profile", json_object_new_string(seccomp_plan_profile(plan)));
	bad |= obj_add(root, "enabled", json_object_new_boolean(plan != NULL));
	if (plan)
		bad |= describe_plan(root, plan);
	const char *txt = bad ? NULL : json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN);
	int n = -1;
	if (txt) {
		size_t tl = strlen(txt);
		n = (int)tl;
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

void seccomp_plan_free(struct seccomp_plan *plan)
{
	if (!plan)
		return;
	free(plan->insns);
	free(plan);
}
