/* netns.c - anonymous sandbox network namespace, its links, routes and fence.
 *
 * The namespace is never bind-mounted anywhere: it lives exactly as long as
 * ns_fd and the processes inside it, so a killed supervisor leaves nothing
 * behind that could block the next start. Every link, address and rule is
 * inside it; the caller's namespace is only read (which subnets it uses).
 * Namespace switches are per thread (/proc/thread-self) and always verified
 * by comparing nsfs inodes.
 */
#include "netns/netns.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "netns/fence.h"
#include "netns/nlops.h"
#include "netns/plan.h"

#define THREAD_NS_PATH "/proc/thread-self/ns/net"

static int open_thread_ns(void)
{
	return open(THREAD_NS_PATH, O_RDONLY | O_CLOEXEC);
}

/* 1 if the calling thread is in the namespace fd refers to, 0 if not, or -errno. */
static int thread_in_ns(int fd)
{
	struct stat want, have;

	if (fstat(fd, &want) != 0)
		return -errno;
	if (stat(THREAD_NS_PATH, &have) != 0)
		return -errno;
	return want.st_dev == have.st_dev && want.st_ino == have.st_ino;
}

/* Move the calling thread into the namespace target and check it arrived.
 * Only async-signal-safe calls: netns_enter uses it after fork. */
static int switch_to(int target)
{
	if (setns(target, CLONE_NEWNET) != 0)
		return -errno;
	int in = thread_in_ns(target);
	if (in < 0)
		return in;
	return in ? 0 : -EIO;
}

/* Going back to a namespace we hold an fd to cannot fail short of a kernel
 * or /proc problem; carrying on in the wrong namespace would be worse. */
static void return_or_abort(int orig)
{
	int rc = switch_to(orig);
	if (rc == 0)
		return;
	fprintf(stderr, "openshell-sandbox: netns: cannot return thread to its network "
		"namespace: %s; aborting\n", strerror(-rc));
	abort();
}

/* Run fn(arg) inside ns_fd. *ret gets fn's value. Returns 0, or -errno if the
 * thread could not switch in (then fn did not run). */
static int run_in(int ns_fd, int (*fn)(void *), void *arg, int *ret)
{
	int orig = open_thread_ns();
	if (orig < 0)
		return -errno;
	int rc = switch_to(ns_fd);
	if (rc == 0)
		*ret = fn(arg);
	return_or_abort(orig);
	close(orig);
	return rc;
}

int netns_run_inside(const struct netns *ns, int (*fn)(void *arg), void *arg)
{
	int ret = -1;

	if (ns == NULL || ns->ns_fd < 0 || fn == NULL)
		return -1;
	if (run_in(ns->ns_fd, fn, arg, &ret) != 0)
		return -1;
	return ret;
}

int netns_enter(const struct netns *ns)
{
	if (ns == NULL || ns->ns_fd < 0)
		return -EBADF;
	return switch_to(ns->ns_fd);
}

/* unshare a fresh namespace for this thread, keep an fd to it, go back. */
static int create_anonymous_ns(int *out, char *err, size_t errlen)
{
	int orig = open_thread_ns();
	if (orig < 0) {
		snprintf(err, errlen, "open %s: %s", THREAD_NS_PATH, strerror(errno));
		return -1;
	}
	if (unshare(CLONE_NEWNET) != 0) {
		snprintf(err, errlen, "unshare(CLONE_NEWNET): %s (needs CAP_SYS_ADMIN)",
			 strerror(errno));
		close(orig);
		return -1;
	}
	int fd = open_thread_ns();
	int open_errno = errno;
	return_or_abort(orig);
	close(orig);
	if (fd < 0) {
		snprintf(err, errlen, "open new namespace %s: %s", THREAD_NS_PATH,
			 strerror(open_errno));
		return -1;
	}
	if (thread_in_ns(fd) != 0) {
		snprintf(err, errlen, "new network namespace is not distinct from the caller's");
		close(fd);
		return -1;
	}
	*out = fd;
	return 0;
}

struct build {
	struct netns *ns;
	struct nl_sock *sk;       /* opened inside the sandbox namespace */
	char *err;
	size_t errlen;
};

static int init_names(struct netns *ns, const struct netns_config *cfg, char *err, size_t errlen)
{
	if (cfg->run_id != NULL) {
		if (!netns_run_id_valid(cfg->run_id)) {
			snprintf(err, errlen, "run id must be 1..%d characters of [0-9A-Za-z]",
				 NETNS_RUN_ID_MAX);
			return -1;
		}
		snprintf(ns->run_id, sizeof(ns->run_id), "%s", cfg->run_id);
	} else {
		int rc = netns_run_id_random(ns->run_id, sizeof(ns->run_id));
		if (rc != 0) {
			snprintf(err, errlen, "getrandom for run id: %s", strerror(-rc));
			return -1;
		}
	}
	if (netns_ifnames(ns->run_id, ns->sandbox_if, sizeof(ns->sandbox_if),
			  ns->peer_if, sizeof(ns->peer_if)) != 0) {
		snprintf(err, errlen, "cannot form interface names from run id %s", ns->run_id);
		return -1;
	}
	return 0;
}

/* The first 10.200.N.0/24 with no address in the caller's namespace: the
 * sandbox's own addresses would hide such a destination from it (its
 * connections to there would stay inside instead of reaching the proxy). */
static int pick_subnet(struct netns *ns, char *err, size_t errlen)
{
	uint8_t used[NETNS_SUBNET_BITMAP_BYTES] = { 0 };
	struct nl_sock *sk = nlops_open(err, errlen);
	if (sk == NULL)
		return -1;
	int rc = nlops_used_subnets(sk, used, err, errlen);
	nlops_close(sk);
	if (rc != 0)
		return -1;
	int n = netns_subnet_pick(used, 0);
	if (n < 0) {
		snprintf(err, errlen, "no free subnet: every %d.%d.N.0/24 (N=0..%d) already has "
			 "an address here", NETNS_SUBNET_BASE_A, NETNS_SUBNET_BASE_B,
			 NETNS_SUBNET_MAX);
		return -1;
	}
	if (netns_subnet_ip(ns->proxy_ip, sizeof(ns->proxy_ip), (unsigned)n,
			    NETNS_PROXY_OCTET) != 0 ||
	    netns_subnet_ip(ns->sandbox_ip, sizeof(ns->sandbox_ip), (unsigned)n,
			    NETNS_SANDBOX_OCTET) != 0) {
		snprintf(err, errlen, "cannot format subnet %d", n);
		return -1;
	}
	return 0;
}

static int open_sandbox_sock(void *arg)
{
	struct build *b = arg;
	b->sk = nlops_open(b->err, b->errlen);
	return b->sk != NULL ? 0 : -1;
}

/* The socket was opened inside, so every step below acts there while the
 * thread stays in the caller's namespace. The veth pair only gives the
 * default route a link with carrier (programs that check for a network see
 * one); its peer has no address and does not forward, so whatever reached
 * it would be dropped (the fence lets nothing out to it in the first place). */
static int sandbox_links(struct build *b)
{
	struct netns *ns = b->ns;
	int idx, lo, ret = -1;

	int rc = run_in(ns->ns_fd, open_sandbox_sock, b, &ret);
	if (rc != 0) {
		snprintf(b->err, b->errlen, "enter sandbox namespace: %s", strerror(-rc));
		return -1;
	}
	if (ret != 0)
		return -1;
	if (nlops_veth_create(b->sk, ns->sandbox_if, ns->peer_if, b->err, b->errlen) != 0 ||
	    nlops_ifindex(b->sk, ns->sandbox_if, &idx, b->err, b->errlen) != 0 ||
	    nlops_ifindex(b->sk, "lo", &lo, b->err, b->errlen) != 0 ||
	    nlops_addr_add(b->sk, idx, ns->sandbox_ip, ns->prefix, b->err, b->errlen) != 0 ||
	    nlops_addr_add(b->sk, lo, ns->proxy_ip, 32, b->err, b->errlen) != 0 ||
	    nlops_no_ipv6_autoconf(b->sk, ns->sandbox_if, b->err, b->errlen) != 0 ||
	    nlops_no_ipv6_autoconf(b->sk, ns->peer_if, b->err, b->errlen) != 0 ||
	    nlops_no_forwarding(b->sk, ns->peer_if, b->err, b->errlen) != 0 ||
	    nlops_link_up(b->sk, ns->peer_if, b->err, b->errlen) != 0 ||
	    nlops_link_up(b->sk, ns->sandbox_if, b->err, b->errlen) != 0 ||
	    nlops_link_up(b->sk, "lo", b->err, b->errlen) != 0 ||
	    /* (once both are up) the sandbox's connections to the proxy come
	     * from its own address: audit lines name 10.200.N.2, not the proxy's */
	    nlops_local_source(b->sk, lo, ns->proxy_ip, ns->sandbox_ip, b->err, b->errlen) != 0 ||
	    nlops_default_route(b->sk, idx, b->err, b->errlen) != 0)
		return -1;
	return 0;
}

struct fence_job {
	const char *ruleset;
	char *err;
	size_t errlen;
};

static int load_fence(void *arg)
{
	struct fence_job *job = arg;
	return netns_fence_load(job->ruleset, job->err, job->errlen);
}

static int fence(struct build *b, const struct netns_config *cfg)
{
	char ruleset[NETNS_FENCE_MAX];
	int ret = -1;

	if (netns_fence_ruleset_capture(ruleset, sizeof(ruleset), b->ns->proxy_ip, cfg->proxy_port,
					b->ns->run_id, cfg->capture_tcp_port,
					cfg->capture_dns_port) < 0) {
		snprintf(b->err, b->errlen, "nftables fence: cannot build ruleset");
		return -1;
	}
	struct fence_job job = { ruleset, b->err, b->errlen };
	int rc = run_in(b->ns->ns_fd, load_fence, &job, &ret);
	if (rc != 0) {
		snprintf(b->err, b->errlen, "enter sandbox namespace: %s", strerror(-rc));
		return -1;
	}
	return ret;
}

static int build_all(struct build *b, const struct netns_config *cfg)
{
	if (pick_subnet(b->ns, b->err, b->errlen) != 0 ||
	    create_anonymous_ns(&b->ns->ns_fd, b->err, b->errlen) != 0 ||
	    sandbox_links(b) != 0)
		return -1;
	return fence(b, cfg);
}

/* Everything made so far is inside the namespace: closing it is the undo. */
static void undo(struct netns *ns)
{
	if (ns->ns_fd >= 0)
		close(ns->ns_fd);
	ns->ns_fd = -1;
	ns->sandbox_if[0] = '\0';
	ns->peer_if[0] = '\0';
	ns->proxy_ip[0] = '\0';
	ns->sandbox_ip[0] = '\0';
}

static void init_struct(struct netns *ns)
{
	memset(ns, 0, sizeof(*ns));
	ns->ns_fd = -1;
	ns->prefix = NETNS_PREFIX_LEN;
}

int netns_create(struct netns *ns, const struct netns_config *cfg, char *err, size_t errlen)
{
	char scratch[NETNS_ERR_MIN];

	if (err == NULL || errlen == 0) {
		err = scratch;
		errlen = sizeof(scratch);
	}
	err[0] = '\0';
	if (ns == NULL || cfg == NULL) {
		snprintf(err, errlen, "missing netns or config argument");
		return -1;
	}
	init_struct(ns);
	if (cfg->proxy_port == 0) {
		snprintf(err, errlen, "proxy port must not be 0");
		return -1;
	}
	if (init_names(ns, cfg, err, errlen) != 0)
		return -1;

	struct build b = { .ns = ns, .err = err, .errlen = errlen };
	int rc = build_all(&b, cfg);
	if (rc != 0)
		undo(ns);
	nlops_close(b.sk);
	return rc == 0 ? 0 : -1;
}

void netns_destroy(struct netns *ns)
{
	if (ns != NULL && ns->ns_fd >= 0) {
		close(ns->ns_fd);
		ns->ns_fd = -1;
	}
}
