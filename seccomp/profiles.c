/* profiles.c - the seccomp profiles as data, and adding them to a filter.
 *
 * Every argument test looks at the low 32 bits only (the kernel truncates
 * these int arguments, so a value with junk in the high half must still match):
 * LO32_EQ masks with 0xffffffff, HAS_BITS tests that all given flag bits are
 * set. The only 64-bit comparison is the netlink protocol test, where a
 * non-zero high half is denied too (fail closed).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "seccomp/sc_int.h"

#define LO32_EQ(a, v) { .arg = (a), .op = SCMP_CMP_MASKED_EQ, .datum_a = 0xffffffffu, .datum_b = (v) }
#define HAS_BITS(a, f) { .arg = (a), .op = SCMP_CMP_MASKED_EQ, .datum_a = (f), .datum_b = (f) }
#define NOT_ZERO(a) { .arg = (a), .op = SCMP_CMP_NE, .datum_a = 0 }

#define DENY(n) { .name = (n), .err = EPERM }
#define DENY_IF(n, ...) { .name = (n), .err = EPERM, \
	.n_cmp = sizeof((struct scmp_arg_cmp[]){ __VA_ARGS__ }) / sizeof(struct scmp_arg_cmp), \
	.cmp = { __VA_ARGS__ } }
#define GROUP(id, r) { .name = id, .rules = r, .n_rules = sizeof r / sizeof r[0] }

/* NETLINK_ROUTE is protocol 0 (getifaddrs needs it). */
#define SC_NETLINK_ROUTE 0

static const struct sc_rule MOUNT_RULES[] = {
	DENY("mount"), DENY("umount"), DENY("umount2"), DENY("pivot_root"),
	DENY("fsopen"), DENY("fsconfig"), DENY("fsmount"), DENY("fspick"),
	DENY("move_mount"), DENY("open_tree"), DENY("mount_setattr"),
};

static const struct sc_rule NAMESPACE_RULES[] = {
	DENY("setns"),
	DENY_IF("unshare", HAS_BITS(0, CLONE_NEWUSER)),
	DENY_IF("clone", HAS_BITS(0, CLONE_NEWUSER)),
};

static const struct sc_rule KERNEL_RULES[] = {
	DENY("bpf"), DENY("perf_event_open"), DENY("userfaultfd"),
	DENY("kexec_load"), DENY("kexec_file_load"),
	DENY("init_module"), DENY("finit_module"), DENY("delete_module"),
	DENY("create_module"), DENY("query_module"), DENY("get_kernel_syms"),
	DENY("io_uring_setup"), DENY("io_uring_enter"), DENY("io_uring_register"),
};

/* Reaching into other processes. ptrace is denied entirely (PTRACE_TRACEME
 * included): debuggers and strace do not work in these profiles. */
static const struct sc_rule TRACE_RULES[] = {
	DENY("ptrace"), DENY("process_vm_readv"), DENY("process_vm_writev"),
	DENY("pidfd_getfd"),
};

/* A second filter could not loosen this one, but the reference denies it and
 * so do we, through both entry points. */
static const struct sc_rule SECCOMP_RULES[] = {
	DENY_IF("seccomp", LO32_EQ(0, SECCOMP_SET_MODE_FILTER)),
	DENY_IF("prctl", LO32_EQ(0, PR_SET_SECCOMP), LO32_EQ(1, SECCOMP_MODE_FILTER)),
};

/* The kernel turns the obsolete socket(AF_INET, SOCK_PACKET, ...) into a
 * PF_PACKET socket (__sock_create), so it is denied with AF_PACKET; the type
 * argument may carry SOCK_NONBLOCK / SOCK_CLOEXEC above the low four bits. */
#define SC_SOCK_TYPE_MASK 0xfu

static const struct sc_rule SOCKET_RULES[] = {
	DENY_IF("socket", LO32_EQ(0, AF_PACKET)),
	DENY_IF("socket", LO32_EQ(0, AF_INET),
		{ .arg = 1, .op = SCMP_CMP_MASKED_EQ, .datum_a = SC_SOCK_TYPE_MASK,
		  .datum_b = SOCK_PACKET }),
	DENY_IF("socket", LO32_EQ(0, AF_BLUETOOTH)),
	DENY_IF("socket", LO32_EQ(0, AF_VSOCK)),
};

static const struct sc_rule NETLINK_RULES[] = {
	DENY_IF("socket", LO32_EQ(0, AF_NETLINK), NOT_ZERO(2)),
};

/* Terminal input injection: TIOCSTI pushes bytes into the input queue of the
 * controlling terminal, TIOCLINUX (TIOCL_PASTESEL, ...) pastes the console
 * selection. The workload shares the supervisor's session and so its terminal:
 * whatever it injects is read by the shell that started the supervisor, as
 * root, after the sandbox exits (bubblewrap CVE-2017-5226, snapd
 * CVE-2023-1523). The request argument is an unsigned int: low 32 bits. */
static const struct sc_rule TTY_RULES[] = {
	DENY_IF("ioctl", LO32_EQ(1, TIOCSTI)),
	DENY_IF("ioctl", LO32_EQ(1, TIOCLINUX)),
};

/* ENOSYS, not EPERM: glibc then falls back to clone(), whose flags the
 * filter can see (clone3 passes them in memory). */
static const struct sc_rule CLONE3_RULES[] = {
	{ .name = "clone3", .err = ENOSYS },
};

/* strict: calls an agent's toolchain does not make. The first block completes
 * the reference's deny list (left out of baseline: runc/crun, Chromium,
 * .NET and systemd use memfd_create; pidfds give no more than kill(), which
 * Landlock scoping governs; fexecve falls back to /proc/self/fd anyway). The
 * rest is denied by Docker's default profile too, where ordinary builds run. */
static const struct sc_rule STRICT_RULES[] = {
	DENY("memfd_create"), DENY("pidfd_open"), DENY("pidfd_send_signal"),
	DENY_IF("execveat", HAS_BITS(4, AT_EMPTY_PATH)),
	DENY("keyctl"), DENY("add_key"), DENY("request_key"),
	DENY("acct"), DENY("swapon"), DENY("swapoff"), DENY("reboot"),
	DENY("syslog"), DENY("quotactl"), DENY("quotactl_fd"),
	DENY("settimeofday"), DENY("stime"), DENY("clock_settime"), DENY("clock_settime64"),
	DENY("clock_adjtime"), DENY("clock_adjtime64"),
	DENY("name_to_handle_at"), DENY("open_by_handle_at"),
	DENY("kcmp"), DENY("process_madvise"),
	DENY("iopl"), DENY("ioperm"), DENY("vm86"), DENY("vm86old"),
	DENY("uselib"), DENY("lookup_dcookie"), DENY("nfsservctl"), DENY("_sysctl"),
	DENY("sysfs"), DENY("ustat"), DENY("vhangup"),
};

static const struct sc_group G_MOUNT = GROUP("mount", MOUNT_RULES);
static const struct sc_group G_NAMESPACE = GROUP("namespace", NAMESPACE_RULES);
static const struct sc_group G_KERNEL = GROUP("kernel", KERNEL_RULES);
static const struct sc_group G_TRACE = GROUP("trace", TRACE_RULES);
static const struct sc_group G_SECCOMP = GROUP("seccomp", SECCOMP_RULES);
static const struct sc_group G_SOCKET = GROUP("socket", SOCKET_RULES);
static const struct sc_group G_NETLINK = GROUP("netlink", NETLINK_RULES);
static const struct sc_group G_CLONE3 = GROUP("clone3", CLONE3_RULES);
static const struct sc_group G_TTY = GROUP("tty", TTY_RULES);
static const struct sc_group G_STRICT = { .name = "strict", .rules = STRICT_RULES,
					  .n_rules = sizeof STRICT_RULES / sizeof STRICT_RULES[0],
					  .personality_allowlist = 1 };

static const struct sc_group *const BASELINE_GROUPS[] = {
	&G_CLONE3, &G_TTY, &G_MOUNT, &G_NAMESPACE, &G_KERNEL, &G_TRACE, &G_SECCOMP, &G_SOCKET,
	&G_NETLINK,
};
static const struct sc_group *const STRICT_GROUPS[] = {
	&G_CLONE3, &G_TTY, &G_MOUNT, &G_NAMESPACE, &G_KERNEL, &G_TRACE, &G_SECCOMP, &G_SOCKET,
	&G_NETLINK, &G_STRICT,
};
/* nested: no mount, namespace, seccomp or netlink-protocol groups. */
static const struct sc_group *const NESTED_GROUPS[] = {
	&G_CLONE3, &G_TTY, &G_KERNEL, &G_TRACE, &G_SOCKET,
};

/* minimal: not a policy value (the loader accepts baseline, strict, nested,
 * off); what the supervisor can install when the policy says off, since the
 * terminal-injection ioctls are an escape whatever else the agent may do. */
static const struct sc_group *const MINIMAL_GROUPS[] = {
	&G_TTY,
};

#define PROFILE(n, g) { .name = n, .groups = g, .n_groups = sizeof g / sizeof g[0] }
static const struct sc_profile PROFILES[] = {
	PROFILE("baseline", BASELINE_GROUPS),
	PROFILE("strict", STRICT_GROUPS),
	PROFILE("nested", NESTED_GROUPS),
	PROFILE("minimal", MINIMAL_GROUPS),
};

const struct sc_profile *sc_profile_find(const char *name)
{
	for (size_t i = 0; name && i < sizeof PROFILES / sizeof PROFILES[0]; i++)
		if (strcmp(PROFILES[i].name, name) == 0)
			return &PROFILES[i];
	return NULL;
}

static int add_rule(scmp_filter_ctx ctx, const char *name, int err, unsigned n_cmp,
		    const struct scmp_arg_cmp *cmp, char *errbuf, size_t errlen)
{
	int nr = seccomp_syscall_resolve_name(name);
	if (nr == __NR_SCMP_ERROR) {
		snprintf(errbuf, errlen, "seccomp: libseccomp does not know the syscall %s", name);
		return -1;
	}
	int rc = seccomp_rule_add_array(ctx, SCMP_ACT_ERRNO((unsigned)err), nr, n_cmp, cmp);
	if (rc != 0) {
		snprintf(errbuf, errlen, "seccomp: adding the rule for %s: %s", name, strerror(-rc));
		return -1;
	}
	return 0;
}

/* personality(): allow only PER_LINUX, PER_LINUX32, UNAME26 and their
 * combination (values whose bits are within 0x20008), and the query value
 * 0xffffffff; deny everything else (READ_IMPLIES_EXEC, ADDR_NO_RANDOMIZE,
 * MMAP_PAGE_ZERO, other execution domains). libseccomp allows one test per
 * argument in a rule, so the set is written with two-bit masks:
 *   bit 31 clear and a disallowed bit b set  -> deny (one rule per b)
 *   bit 31 set and any bit b < 31 clear      -> deny (one rule per b)
 * The only value with bit 31 set that passes is 0xffffffff. */
#define SC_PERSONALITY_ALLOWED_BITS 0x20008u
#define SC_BIT31 0x80000000u

static int add_personality_rules(scmp_filter_ctx ctx, char *err, size_t errlen)
{
	for (unsigned b = 0; b < 31; b++) {
		uint32_t bit = 1u << b;
		if (!(bit & SC_PERSONALITY_ALLOWED_BITS)) {
			struct scmp_arg_cmp c = { .arg = 0, .op = SCMP_CMP_MASKED_EQ,
						  .datum_a = bit | SC_BIT31, .datum_b = bit };
			if (add_rule(ctx, "personality", EPERM, 1, &c, err, errlen) != 0)
				return -1;
		}
		struct scmp_arg_cmp c2 = { .arg = 0, .op = SCMP_CMP_MASKED_EQ,
					   .datum_a = bit | SC_BIT31, .datum_b = SC_BIT31 };
		if (add_rule(ctx, "personality", EPERM, 1, &c2, err, errlen) != 0)
			return -1;
	}
	return 0;
}

int sc_profile_add_rules(scmp_filter_ctx ctx, const struct sc_profile *prof, char *err,
			 size_t errlen)
{
	for (size_t g = 0; g < prof->n_groups; g++) {
		const struct sc_group *grp = prof->groups[g];
		for (size_t i = 0; i < grp->n_rules; i++) {
			const struct sc_rule *r = &grp->rules[i];
			if (add_rule(ctx, r->name, r->err, r->n_cmp, r->cmp, err, errlen) != 0)
				return -1;
		}
		if (grp->personality_allowlist && add_personality_rules(ctx, err, errlen) != 0)
			return -1;
	}
	return 0;
}
