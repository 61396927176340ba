/* seccomp.h - the agent's syscall filter (libseccomp), opt-in by profile.
 *
 * Profiles (policy `process.seccomp`; NULL or "off" = no filter):
 *   baseline  default allow; EPERM for the mount family, setns, bpf,
 *             perf_event_open, userfaultfd, kexec and module calls, ptrace,
 *             process_vm_*, pidfd_getfd, io_uring, AF_PACKET (also spelt
 *             AF_INET + SOCK_PACKET) / AF_BLUETOOTH / AF_VSOCK sockets and netlink other than NETLINK_ROUTE, clone or
 *             unshare with CLONE_NEWUSER, installing another seccomp filter;
 *             clone3 answers ENOSYS so libc falls back to clone (filterable);
 *             ioctl TIOCSTI / TIOCLINUX (terminal input injection).
 *   strict    baseline plus the rest of the reference's list (memfd_create,
 *             pidfd_open, pidfd_send_signal, execveat with AT_EMPTY_PATH) and
 *             keyrings, acct, swap, reboot, clock setting, syslog, quotactl,
 *             file handles, kcmp, process_madvise, iopl/ioperm, legacy and
 *             obsolete calls, personality other than the common values.
 *   nested    for rootless Podman / bubblewrap inside the sandbox: user
 *             namespaces, mount family, setns, every netlink protocol and
 *             seccomp filters are allowed; everything else as baseline.
 *   minimal   only the terminal-injection ioctls (TIOCSTI, TIOCLINUX); not a
 *             policy value: for the supervisor to apply when the policy says
 *             off (the workload shares the supervisor's controlling terminal).
 * nice()/setpriority are allowed in every profile. The exact lists are in
 * seccomp/profiles.c and README.
 *
 * Architectures: one BPF program covers x86_64, 32-bit x86 and x32 with the
 * same rules (any other architecture kills the process). On 32-bit x86,
 * socketcall(SYS_SOCKET) cannot have its arguments inspected and so is denied
 * with EPERM; the direct socket() call is filtered like on x86_64.
 *
 * Prepare in the parent (libseccomp allocates), apply in the forked child
 * (prctl only: no allocation, no locks).
 */
#ifndef OPENSHELL_SECCOMP_H
#define OPENSHELL_SECCOMP_H

#include <stddef.h>

#define SECCOMP_MAX_PROG_INSNS 4096u  /* BPF_MAXINSNS: longest program accepted */
#define SECCOMP_PROFILE_NAME_MAX 16u
#define SECCOMP_ERR_MIN 256u          /* err buffers should hold at least this */

struct seccomp_plan;

/* profile: "baseline", "strict", "nested", "minimal", "off" or NULL. For "off"/NULL
 * returns 0 with *out = NULL. An unknown name or a build failure returns -1
 * with err filled. */
int seccomp_prepare(const char *profile, struct seccomp_plan **out, char *err, size_t errlen);

/* In the child: PR_SET_NO_NEW_PRIVS then install the program. plan may be NULL
 * (nothing to do). Returns 0, or -1 with err filled. */
int seccomp_apply(const struct seccomp_plan *plan, char *err, size_t errlen);

/* The profile name, or "off" for NULL. */
const char *seccomp_plan_profile(const struct seccomp_plan *plan);

/* {"profile":"baseline","enabled":true,"arches":["x86_64","x86","x32"],
 *  "default":"allow","bpf_insns":N} or {"profile":"off","enabled":false}.
 * Returns the JSON length like snprintf (>= len: truncated, buf holds ""). */
int seccomp_describe(const struct seccomp_plan *plan, char *buf, size_t len);

void seccomp_plan_free(struct seccomp_plan *plan);

#endif
