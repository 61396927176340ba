/* Unit tests for seccomp/: profile preparation, description, and the filters'
 * behaviour in a forked child (which applies the plan and probes syscalls). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <linux/bpf.h>
#include <linux/netlink.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/ioctl.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "seccomp/seccomp.h"

#define X32_BIT 0x40000000L

/* ---- a child that applies a plan and reports failed checks over a pipe ---- */

struct probe {
	int fd;
	int failures;
	int ia32; /* the kernel runs 32-bit x86 system calls (int $0x80) */
};

static void report(struct probe *p, int line, const char *what, long got, int err)
{
	char buf[256];
	int n = snprintf(buf, sizeof buf, "line %d: %s (got %ld, errno %d)\n", line, what, got, err);
	if (n > 0 && write(p->fd, buf, (size_t)n) < 0)
		_exit(3);
	p->failures++;
}

/* Expect a syscall result of -1 with errno e. */
#define EXPECT_ERRNO(p, call, e)                                          \
	do {                                                              \
		errno = 0;                                                \
		long r_ = (long)(call);                                   \
		int e_ = errno;                                           \
		if (r_ != -1 || e_ != (e))                                \
			report((p), __LINE__, #call " != " #e, r_, e_);   \
	} while (0)

#define EXPECT_OK(p, call)                                                \
	do {                                                              \
		errno = 0;                                                \
		long r_ = (long)(call);                                   \
		if (r_ < 0)                                               \
			report((p), __LINE__, #call " failed", r_, errno); \
	} while (0)

#define EXPECT_FD(p, call)                                                \
	do {                                                              \
		errno = 0;                                                \
		long r_ = (long)(call);                                   \
		if (r_ < 0)                                               \
			report((p), __LINE__, #call " failed", r_, errno); \
		else                                                      \
			close((int)r_);                                   \
	} while (0)

/* A 32-bit x86 system call from this 64-bit process (int $0x80 enters the
 * kernel's ia32 path, so seccomp sees AUDIT_ARCH_I386). Returns -errno. */
static int sys32(long nr, long a, long b, long c)
{
	long ret;
	__asm__ volatile("int $0x80"
			 : "=a"(ret)
			 : "a"(nr), "b"(a), "c"(b), "d"(c)
			 : "memory", "r8", "r9", "r10", "r11");
	return (int)ret;
}

/* Expect the i386 call to return want (a -errno or a value). Kernels built or
 * booted without IA32 emulation (ia32_emulation=0) kill int $0x80 with
 * SIGSEGV before seccomp sees it; there the i386 path is unreachable and is
 * not probed. */
#define EXPECT_SYS32(p, want, nr, a, b, c)                                          \
	do {                                                                        \
		if ((p)->ia32) {                                                    \
			int r_ = sys32((nr), (a), (b), (c));                        \
			if (r_ != (want))                                           \
				report((p), __LINE__, "i386 " #nr " != " #want, r_, 0); \
		}                                                                   \
	} while (0)

#define I386_GETPID 20
#define I386_IOCTL 54
#define I386_SOCKETCALL 102
#define I386_UNSHARE 310
#define I386_BPF 357
#define I386_SOCKET 359
#define I386_CLONE3 435

/* Whether int $0x80 works here: try it in a child that dies if it does not. */
static int ia32_available(void)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		signal(SIGSEGV, SIG_DFL);
		_exit(sys32(I386_GETPID, 0, 0, 0) == getpid() ? 0 : 1);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	int ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
	if (!ok)
		print_message("[seccomp] this kernel does not run i386 system calls "
			      "(int $0x80 faults): i386 filter paths not probed\n");
	return ok;
}

/* Signals in the child take the default action: cmocka's handlers would
 * longjmp back into the test runner and run the remaining tests there. */
static void child_default_signals(void)
{
	static const int sigs[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGSYS, SIGABRT };
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		signal(sigs[i], SIG_DFL);
}

static void run_in_child(const char *profile, void (*checks)(struct probe *))
{
	int ia32 = ia32_available();
	struct seccomp_plan *plan = NULL;
	char err[SECCOMP_ERR_MIN];
	assert_int_equal(seccomp_prepare(profile, &plan, err, sizeof err), 0);
	assert_non_null(plan);
	int pfd[2];
	assert_int_equal(pipe(pfd), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(pfd[0]);
		child_default_signals();
		struct probe p = { .fd = pfd[1], .ia32 = ia32 };
		char cerr[SECCOMP_ERR_MIN];
		if (seccomp_apply(plan, cerr, sizeof cerr) != 0) {
			report(&p, __LINE__, cerr, -1, errno);
			_exit(2);
		}
		checks(&p);
		_exit(p.failures ? 1 : 0); /* _exit: no atexit (LeakSanitizer ptraces) */
	}
	close(pfd[1]);
	char out[4096];
	size_t got = 0;
	ssize_t n;
	while ((n = read(pfd[0], out + got, sizeof out - 1 - got)) > 0)
		got += (size_t)n;
	out[got] = '\0';
	close(pfd[0]);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (got)
		print_error("[%s child]\n%s", profile, out);
	if (WIFSIGNALED(status))
		print_error("[%s child] killed by signal %d\n", profile, WTERMSIG(status));
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	seccomp_plan_free(plan);
}

static void *thread_fn(void *arg)
{
	return arg;
}

static void check_common_allowed(struct probe *p)
{
	errno = 0;
	int nv = nice(5);
	if (nv == -1 && errno != 0)
		report(p, __LINE__, "nice(5)", nv, errno);
	EXPECT_OK(p, setpriority(PRIO_PROCESS, 0, 6));
	pthread_t t;
	int rc = pthread_create(&t, NULL, thread_fn, NULL);
	if (rc != 0)
		report(p, __LINE__, "pthread_create", rc, rc);
	else
		pthread_join(t, NULL);
	struct ifaddrs *ifa = NULL;
	EXPECT_OK(p, getifaddrs(&ifa));
	freeifaddrs(ifa);
	EXPECT_FD(p, socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE));
	EXPECT_FD(p, socket(AF_INET, SOCK_STREAM, 0));
	EXPECT_FD(p, socket(AF_UNIX, SOCK_STREAM, 0));
	pid_t c = fork(); /* glibc: clone3 gets ENOSYS, falls back to clone */
	if (c == 0)
		_exit(0);
	if (c < 0)
		report(p, __LINE__, "fork", c, errno);
	else
		waitpid(c, NULL, 0);
	EXPECT_SYS32(p, getpid(), I386_GETPID, 0, 0, 0);
}

/* Denied in every profile. */
static void check_common_denied(struct probe *p)
{
	EXPECT_ERRNO(p, socket(AF_PACKET, SOCK_RAW, 0), EPERM);
	EXPECT_ERRNO(p, socket(AF_BLUETOOTH, SOCK_STREAM, 0), EPERM);
	EXPECT_ERRNO(p, socket(AF_VSOCK, SOCK_STREAM, 0), EPERM);
	/* the obsolete AF_INET/SOCK_PACKET spelling of a packet socket (this test
	 * runs as root: without the rule it would succeed) */
	EXPECT_ERRNO(p, socket(AF_INET, SOCK_PACKET, htons(0x0003)), EPERM);
	EXPECT_ERRNO(p, socket(AF_INET, SOCK_PACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, htons(3)),
		     EPERM);
	EXPECT_ERRNO(p, syscall(SYS_socket, 0x100000000L | AF_INET, SOCK_PACKET, htons(3)), EPERM);
	EXPECT_SYS32(p, -EPERM, I386_SOCKET, AF_INET, SOCK_PACKET, 0x300);
	/* junk in the high half of the int argument must not slip through */
	EXPECT_ERRNO(p, syscall(SYS_socket, 0x100000000L | AF_PACKET, SOCK_RAW, 0), EPERM);
	EXPECT_ERRNO(p, syscall(SYS_clone3, NULL, 0), ENOSYS);
	EXPECT_ERRNO(p, syscall(SYS_bpf, BPF_PROG_LOAD, NULL, 0), EPERM);
	EXPECT_ERRNO(p, syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0), EPERM);
	EXPECT_ERRNO(p, syscall(SYS_userfaultfd, 0), EPERM);
	EXPECT_ERRNO(p, ptrace(PTRACE_ATTACH, getppid(), NULL, NULL), EPERM);
	EXPECT_ERRNO(p, ptrace(PTRACE_TRACEME, 0, NULL, NULL), EPERM);
	EXPECT_ERRNO(p, syscall(SYS_process_vm_readv, getppid(), NULL, 0, NULL, 0, 0), EPERM);
	EXPECT_ERRNO(p, syscall(SYS_io_uring_setup, 1, NULL), EPERM);
	EXPECT_ERRNO(p, syscall(SYS_kexec_load, 0, 0, NULL, 0), EPERM);
	/* terminal input injection, whatever the fd and the high half of the request */
	char c = 'x';
	EXPECT_ERRNO(p, ioctl(-1, TIOCSTI, &c), EPERM);
	EXPECT_ERRNO(p, syscall(SYS_ioctl, -1, 0xffffffff00000000L | TIOCSTI, &c), EPERM);
	EXPECT_ERRNO(p, ioctl(-1, TIOCLINUX, &c), EPERM);
	/* other terminal ioctls reach the kernel (EBADF for fd -1) */
	struct winsize ws;
	EXPECT_ERRNO(p, ioctl(-1, TIOCGWINSZ, &ws), EBADF);
	EXPECT_ERRNO(p, syscall(SYS_finit_module, -1, "", 0), EPERM);
	/* 32-bit x86 entry: same rules */
	EXPECT_SYS32(p, -EPERM, I386_SOCKET, AF_PACKET, SOCK_RAW, 0);
	EXPECT_SYS32(p, -EPERM, I386_SOCKETCALL, 1 /* SYS_SOCKET */, 0, 0);
	EXPECT_SYS32(p, -EPERM, I386_IOCTL, -1, TIOCSTI, 0);
	EXPECT_ERRNO(p, syscall(X32_BIT | 514 /* x32 ioctl */, -1, TIOCSTI, &c), EPERM);
	EXPECT_SYS32(p, -ENOSYS, I386_CLONE3, 0, 0, 0);
	EXPECT_SYS32(p, -EPERM, I386_BPF, 0, 0, 0);
	/* x32 numbering (the filter sees it even when the kernel lacks x32) */
	EXPECT_ERRNO(p, syscall(X32_BIT | SYS_socket, AF_PACKET, SOCK_RAW, 0), EPERM);
	EXPECT_ERRNO(p, syscall(X32_BIT | SYS_bpf, 0, NULL, 0), EPERM);
}

static void check_baseline_namespaces(struct probe *p)
{
	EXPECT_ERRNO(p, unshare(CLONE_NEWUSER), EPERM);
	EXPECT_ERRNO(p, unshare(CLONE_NEWUSER | CLONE_NEWNS), EPERM);
	EXPECT_ERRNO(p, syscall(SYS_unshare, 0xffffffff00000000L | CLONE_NEWUSER), EPERM);
	EXPECT_ERRNO(p, syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, NULL, NULL, NULL, 0), EPERM);
	EXPECT_ERRNO(p, mount("none", "/nonexistent-osll", "tmpfs", 0, NULL), EPERM);
	EXPECT_ERRNO(p, umount2("/nonexistent-osll", 0), EPERM);
	EXPECT_ERRNO(p, syscall(SYS_fsopen, "tmpfs", 0), EPERM);
	EXPECT_ERRNO(p, syscall(SYS_pivot_root, "/", "/"), EPERM);
	EXPECT_ERRNO(p, setns(0, 0), EPERM);
	EXPECT_ERRNO(p, socket(AF_NETLINK, SOCK_RAW, NETLINK_SOCK_DIAG), EPERM);
	EXPECT_ERRNO(p, syscall(SYS_socket, AF_NETLINK, SOCK_RAW, 0x100000000L), EPERM);
	EXPECT_ERRNO(p, syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, NULL), EPERM);
	EXPECT_ERRNO(p, prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, NULL, 0, 0), EPERM);
	EXPECT_SYS32(p, -EPERM, I386_UNSHARE, CLONE_NEWUSER, 0, 0);
	EXPECT_ERRNO(p, syscall(X32_BIT | SYS_unshare, CLONE_NEWUSER), EPERM);
}

static void baseline_checks(struct probe *p)
{
	check_common_allowed(p);
	check_common_denied(p);
	check_baseline_namespaces(p);
	EXPECT_OK(p, syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3 /* session */, 0));
	EXPECT_FD(p, syscall(SYS_memfd_create, "x", MFD_CLOEXEC));
	EXPECT_FD(p, syscall(SYS_pidfd_open, getpid(), 0));
	EXPECT_OK(p, personality(0xffffffff));
}

static void strict_checks(struct probe *p)
{
	check_common_allowed(p);
	check_common_denied(p);
	check_baseline_namespaces(p);
	EXPECT_ERRNO(p, syscall(SYS_keyctl, 0, -3, 0), EPERM);
	EXPECT_ERRNO(p, syscall(SYS_add_key, "user", "x", "y", 1, -3), EPERM);
	EXPECT_ERRNO(p, syscall(SYS_acct, NULL), EPERM);
	EXPECT_ERRNO(p, syscall(SYS_syslog, 3, NULL, 0), EPERM);
	EXPECT_ERRNO(p, syscall(SYS_kcmp, getpid(), getpid(), 0, 0, 0), EPERM);
	EXPECT_ERRNO(p, syscall(SYS_memfd_create, "x", 0), EPERM);
	EXPECT_ERRNO(p, syscall(SYS_pidfd_open, getpid(), 0), EPERM);
	EXPECT_ERRNO(p, syscall(SYS_execveat, -1, "", NULL, NULL, AT_EMPTY_PATH), EPERM);
	/* without AT_EMPTY_PATH execveat reaches the kernel (EBADF for fd -1) */
	EXPECT_ERRNO(p, syscall(SYS_execveat, -1, "x", NULL, NULL, 0), EBADF);
	/* personality: the query and the common domains pass, the rest does not */
	EXPECT_OK(p, personality(0xffffffff));
	EXPECT_OK(p, personality(PER_LINUX));
	EXPECT_OK(p, personality(PER_LINUX32));
	EXPECT_OK(p, personality(PER_LINUX | UNAME26));
	EXPECT_OK(p, personality(PER_LINUX));
	EXPECT_ERRNO(p, personality(PER_LINUX | ADDR_NO_RANDOMIZE), EPERM);
	EXPECT_ERRNO(p, personality(PER_LINUX | READ_IMPLIES_EXEC), EPERM);
	EXPECT_ERRNO(p, personality(0x80000000u | READ_IMPLIES_EXEC), EPERM);
	EXPECT_ERRNO(p, personality(0xfffffffe), EPERM);
	EXPECT_ERRNO(p, personality(PER_BSD), EPERM);
}

static void nested_checks(struct probe *p)
{
	check_common_allowed(p);
	check_common_denied(p);
	/* user namespaces, netlink protocols and further filters are allowed */
	EXPECT_OK(p, unshare(CLONE_NEWUSER));
	EXPECT_FD(p, socket(AF_NETLINK, SOCK_RAW, NETLINK_SOCK_DIAG));
	EXPECT_OK(p, prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
	/* after unshare we are root in a new user namespace: setns is reachable
	 * (fails with EINVAL on a bad fd rather than EPERM from the filter) */
	EXPECT_ERRNO(p, setns(-1, 0), EBADF);
}

/* minimal: the terminal-injection ioctls and nothing else. */
static void minimal_checks(struct probe *p)
{
	char c = 'x';
	EXPECT_ERRNO(p, ioctl(-1, TIOCSTI, &c), EPERM);
	EXPECT_ERRNO(p, ioctl(-1, TIOCLINUX, &c), EPERM);
	EXPECT_SYS32(p, -EPERM, I386_IOCTL, -1, TIOCSTI, 0);
	struct winsize ws;
	EXPECT_ERRNO(p, ioctl(-1, TIOCGWINSZ, &ws), EBADF);
	EXPECT_FD(p, socket(AF_NETLINK, SOCK_RAW, NETLINK_SOCK_DIAG));
	EXPECT_FD(p, syscall(SYS_memfd_create, "x", MFD_CLOEXEC));
	errno = 0;
	if (syscall(SYS_clone3, NULL, 0) != -1 || errno == ENOSYS || errno == EPERM)
		report(p, __LINE__, "clone3 reaches the kernel", -1, errno);
	EXPECT_OK(p, personality(0xffffffff));
}

static void test_minimal_in_child(void **state)
{
	(void)state;
	run_in_child("minimal", minimal_checks);
}

static void test_prepare_off_and_unknown(void **state)
{
	(void)state;
	struct seccomp_plan *plan = (struct seccomp_plan *)1;
	char err[SECCOMP_ERR_MIN] = "";
	assert_int_equal(seccomp_prepare(NULL, &plan, err, sizeof err), 0);
	assert_null(plan);
	assert_int_equal(seccomp_prepare("off", &plan, err, sizeof err), 0);
	assert_null(plan);
	assert_string_equal(seccomp_plan_profile(NULL), "off");
	assert_int_equal(seccomp_apply(NULL, err, sizeof err), 0);
	assert_int_equal(seccomp_prepare("Baseline", &plan, err, sizeof err), -1);
	assert_null(plan);
	assert_non_null(strstr(err, "unknown seccomp profile \"Baseline\""));
	assert_int_equal(seccomp_prepare("", &plan, err, sizeof err), -1);
	char buf[256];
	int n = seccomp_describe(NULL, buf, sizeof buf);
	assert_true(n > 0 && (size_t)n < sizeof buf);
	assert_string_equal(buf, "{\"profile\":\"off\",\"enabled\":false}");
}

static void test_prepare_describe_profiles(void **state)
{
	(void)state;
	const char *names[] = { "baseline", "strict", "nested" };
	for (size_t i = 0; i < 3; i++) {
		struct seccomp_plan *plan = NULL;
		char err[SECCOMP_ERR_MIN] = "";
		assert_int_equal(seccomp_prepare(names[i], &plan, err, sizeof err), 0);
		assert_non_null(plan);
		assert_string_equal(seccomp_plan_profile(plan), names[i]);
		char buf[512];
		int n = seccomp_describe(plan, buf, sizeof buf);
		assert_true(n > 0 && (size_t)n < sizeof buf);
		char want[64];
		snprintf(want, sizeof want, "\"profile\":\"%s\"", names[i]);
		assert_non_null(strstr(buf, want));
		assert_non_null(strstr(buf, "\"arches\":[\"x86_64\",\"x86\",\"x32\"]"));
		char tiny[8];
		assert_int_equal(seccomp_describe(plan, tiny, sizeof tiny), n);
		assert_string_equal(tiny, "");
		seccomp_plan_free(plan);
	}
}

static void test_baseline_in_child(void **state)
{
	(void)state;
	run_in_child("baseline", baseline_checks);
}

static void test_strict_in_child(void **state)
{
	(void)state;
	run_in_child("strict", strict_checks);
}

static void test_nested_in_child(void **state)
{
	(void)state;
	run_in_child("nested", nested_checks);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_prepare_off_and_unknown),
		cmocka_unit_test(test_prepare_describe_profiles),
		cmocka_unit_test(test_baseline_in_child),
		cmocka_unit_test(test_strict_in_child),
		cmocka_unit_test(test_nested_in_child),
		cmocka_unit_test(test_minimal_in_child),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
