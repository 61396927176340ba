/* bypass.c - the NFLOG listener for the fence's rejected packets.
 *
 * NFLOG is per network namespace and a socket stays in the namespace it was
 * created in, so the socket is made inside the sandbox namespace
 * (netns_run_inside) and then read from the supervisor's own thread.
 * libnl-nf binds the group and parses the netlink attributes; the packet
 * bytes are parsed by bypass_parse.c. Only messages from the kernel that
 * carry this namespace's log prefix count.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_log.h>
#include <linux/netlink.h>
#include <netlink/msg.h>
#include <netlink/netfilter/log.h>
#include <netlink/netfilter/log_msg.h>
#include <netlink/netfilter/nfnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "netns/netns.h"

/* One datagram: with queue-threshold 1 the kernel sends one message of at
 * most NETNS_LOG_SNAPLEN packet bytes plus attributes; larger is truncated
 * and counted as lost. */
#define BYPASS_DGRAM_MAX 8192
#define BYPASS_PREFIX_MAX (sizeof(NETNS_LOG_PREFIX) + NETNS_RUN_ID_MAX + 3)

struct netns_bypass {
	struct nl_sock *sk;
	char prefix[BYPASS_PREFIX_MAX];  /* NETNS_LOG_PREFIX "<run id>: " */
	_Alignas(struct nlmsghdr) uint8_t buf[BYPASS_DGRAM_MAX]; /* read as nlmsghdr */
};

static int fail(char *err, size_t errlen, int nlerr, const char *what)
{
	snprintf(err, errlen, "bypass listener: %s: %s", what, nl_geterror(nlerr));
	return -1;
}

struct open_job {
	struct nl_sock *sk;
	int nlerr;
};

/* Runs inside the sandbox namespace: the socket belongs to it from now on. */
static int connect_inside(void *arg)
{
	struct open_job *job = arg;
	job->nlerr = nfnl_connect(job->sk);
	return job->nlerr < 0 ? -1 : 0;
}

static int bind_group(struct nl_sock *sk, char *err, size_t errlen)
{
	struct nfnl_log *log = nfnl_log_alloc();
	if (log == NULL) {
		snprintf(err, errlen, "bypass listener: out of memory");
		return -1;
	}
	nfnl_log_set_group(log, NETNS_LOG_GROUP);
	nfnl_log_set_copy_mode(log, NFNL_LOG_COPY_PACKET);
	nfnl_log_set_copy_range(log, NETNS_LOG_SNAPLEN);
	nfnl_log_set_queue_threshold(log, 1); /* deliver at once: the sender is looked up live */
	int rc = nfnl_log_create(sk, log);
	nfnl_log_put(log);
	if (rc < 0)
		return fail(err, errlen, rc, "bind NFLOG group");
	return 0;
}

static int configure(struct netns_bypass *b, const struct netns *ns, char *err, size_t errlen)
{
	struct open_job job = { b->sk, 0 };
	if (netns_run_inside(ns, connect_inside, &job) != 0) {
		if (job.nlerr < 0)
			return fail(err, errlen, job.nlerr, "netfilter netlink socket");
		snprintf(err, errlen, "bypass listener: cannot enter the sandbox namespace");
		return -1;
	}
	if (bind_group(b->sk, err, errlen) != 0)
		return -1;
	int rc = nl_socket_set_buffer_size(b->sk, NETNS_BYPASS_RCVBUF, 0);
	if (rc < 0)
		return fail(err, errlen, rc, "receive buffer");
	rc = nl_socket_set_nonblocking(b->sk);
	if (rc < 0)
		return fail(err, errlen, rc, "non-blocking");
	int fd = nl_socket_get_fd(b->sk);
	if (fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
		snprintf(err, errlen, "bypass listener: FD_CLOEXEC: %s", strerror(errno));
		return -1;
	}
	return 0;
}

struct netns_bypass *netns_bypass_open(const struct netns *ns, char *err, size_t errlen)
{
	char scratch[NETNS_ERR_MIN];
	if (err == NULL || errlen == 0) {
		err = scratch;
		errlen = sizeof scratch;
	}
	if (ns == NULL || ns->ns_fd < 0 || ns->run_id[0] == '\0') {
		snprintf(err, errlen, "bypass listener: no sandbox namespace");
		return NULL;
	}
	struct netns_bypass *b = calloc(1, sizeof *b);
	if (b == NULL) {
		snprintf(err, errlen, "bypass listener: out of memory");
		return NULL;
	}
	snprintf(b->prefix, sizeof b->prefix, "%s%s: ", NETNS_LOG_PREFIX, ns->run_id);
	b->sk = nl_socket_alloc();
	if (b->sk == NULL) {
		snprintf(err, errlen, "bypass listener: out of memory");
		free(b);
		return NULL;
	}
	if (configure(b, ns, err, errlen) != 0) {
		netns_bypass_close(b);
		return NULL;
	}
	return b;
}

int netns_bypass_fd(const struct netns_bypass *b)
{
	return b != NULL ? nl_socket_get_fd(b->sk) : -1;
}

/* One NFULNL_MSG_PACKET message: 0 and *ev filled, or -1 (not ours / bad). */
static int event_from_msg(const struct netns_bypass *b, struct nlmsghdr *nlh,
			  struct netns_bypass_event *ev)
{
	if (nlh->nlmsg_type != ((NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET))
		return -1;
	struct nfnl_log_msg *msg = NULL;
	if (nfnlmsg_log_msg_parse(nlh, &msg) < 0 || msg == NULL)
		return -1;
	int rc = -1;
	const char *prefix = nfnl_log_msg_get_prefix(msg);
	int len = 0;
	const void *pkt = nfnl_log_msg_get_payload(msg, &len);
	if (prefix != NULL && strcmp(prefix, b->prefix) == 0 && pkt != NULL && len > 0 &&
	    netns_bypass_parse_packet(pkt, (size_t)len, ev) == 0) {
		ev->has_uid = nfnl_log_msg_test_uid(msg) != 0;
		ev->uid = ev->has_uid ? nfnl_log_msg_get_uid(msg) : 0;
		rc = 0;
	}
	nfnl_log_msg_put(msg);
	return rc;
}

/* Every message of one datagram; returns the events delivered. */
static int handle_dgram(struct netns_bypass *b, size_t n, netns_bypass_cb cb, void *ud,
			unsigned long *lost)
{
	int delivered = 0;
	int rem = (int)n;
	for (struct nlmsghdr *nlh = (struct nlmsghdr *)b->buf; nlmsg_ok(nlh, rem);
	     nlh = nlmsg_next(nlh, &rem)) {
		if (nlh->nlmsg_type == NLMSG_DONE || nlh->nlmsg_type == NLMSG_NOOP)
			continue;
		struct netns_bypass_event ev;
		if (event_from_msg(b, nlh, &ev) != 0) {
			(*lost)++;
			continue;
		}
		cb(ud, &ev);
		delivered++;
	}
	if (rem > 0)
		(*lost)++; /* trailing bytes that are no whole message */
	return delivered;
}

enum recv_result { RECV_DATA, RECV_SKIPPED, RECV_EMPTY, RECV_ERROR };

/* One datagram into b->buf (*n bytes). Overruns, truncated datagrams and
 * anything not sent by the kernel are skipped and counted as lost. */
static enum recv_result recv_dgram(struct netns_bypass *b, size_t *n, unsigned long *lost)
{
	struct sockaddr_nl from;
	struct iovec iov = { b->buf, sizeof b->buf };
	struct msghdr mh = { .msg_name = &from, .msg_namelen = sizeof from,
			     .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t got;
	do
		got = recvmsg(nl_socket_get_fd(b->sk), &mh, MSG_DONTWAIT);
	while (got < 0 && errno == EINTR);
	if (got < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return RECV_EMPTY;
		if (errno != ENOBUFS)
			return RECV_ERROR;
		(*lost)++; /* the kernel dropped messages: at least one */
		return RECV_SKIPPED;
	}
	if ((mh.msg_flags & MSG_TRUNC) || mh.msg_namelen != sizeof from || from.nl_pid != 0) {
		(*lost)++;
		return RECV_SKIPPED;
	}
	*n = (size_t)got;
	return RECV_DATA;
}

int netns_bypass_read(struct netns_bypass *b, netns_bypass_cb cb, void *ud, unsigned long *lost)
{
	unsigned long scratch = 0;
	if (lost == NULL)
		lost = &scratch;
	if (b == NULL || cb == NULL)
		return -1;
	int delivered = 0;
	for (int i = 0; i < NETNS_BYPASS_BATCH; i++) {
		size_t n = 0;
		switch (recv_dgram(b, &n, lost)) {
		case RECV_DATA:
			delivered += handle_dgram(b, n, cb, ud, lost);
			break;
		case RECV_SKIPPED:
			break;
		case RECV_EMPTY:
			return delivered;
		case RECV_ERROR:
			return -1;
		}
	}
	return delivered;
}

void netns_bypass_close(struct netns_bypass *b)
{
	if (b == NULL)
		return;
	nl_socket_free(b->sk); /* closes the socket */
	free(b);
}
