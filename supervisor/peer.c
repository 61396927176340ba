/* peer.c - name the process behind a socket of the sandbox.
 *
 * The socket's local address and port -> its inode in the namespace's socket
 * table (/proc/<ns_pid>/net/{tcp,udp}{,6}) -> the process of that namespace
 * holding socket:[inode] among its fds -> /proc/<pid>/exe. Every step is
 * bounded (SUP_PEER_MAX_*); a socket already closed, a process already gone
 * or a limit reached is simply "not found".
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "supervisor/sup.h"

#define PEER_LINE_MAX 512
#define PEER_TABLE_FIELDS 10 /* "sl: local rem st tx:rx tr:when retr uid timeout inode" */

struct peer_want {
	int family;              /* of the table being read */
	struct in6_addr addr;    /* IPv4 as ::ffff:a.b.c.d */
	uint16_t port;           /* host order */
};

static const struct in6_addr v4mapped_any = { .s6_addr = { [10] = 0xff, [11] = 0xff } };

static void v4_to_mapped(struct in_addr a, struct in6_addr *out)
{
	*out = v4mapped_any;
	memcpy(&out->s6_addr[12], &a, 4);
}

/* The want of sock_local as an IPv6 address (v4-mapped for IPv4). */
static int want_from(const struct sockaddr_storage *ss, struct peer_want *w)
{
	memset(w, 0, sizeof *w);
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)ss;
		v4_to_mapped(s->sin_addr, &w->addr);
		w->port = ntohs(s->sin_port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)ss;
		w->addr = s->sin6_addr;
		w->port = ntohs(s->sin6_port);
	} else {
		return -1;
	}
	return w->port != 0 ? 0 : -1;
}

/* n hex digits of s as one 32-bit word, in the order the kernel printed it. */
static int hex_word(const char *s, uint32_t *out)
{
	uint32_t v = 0;
	for (int i = 0; i < 8; i++) {
		if (!isxdigit((unsigned char)s[i]))
			return -1;
		int c = tolower((unsigned char)s[i]);
		v = (v << 4) | (uint32_t)(isdigit(c) ? c - '0' : c - 'a' + 10);
	}
	*out = v;
	return 0;
}

/* "0100007F:0035" (IPv4) or 32 hex digits ":" 4 (IPv6): the kernel prints
 * each 32-bit word of the address as a native integer, so storing the
 * parsed words back natively restores the bytes. */
static int parse_local(const char *tok, int family, struct in6_addr *addr, uint16_t *port)
{
	size_t words = family == AF_INET ? 1 : 4;
	if (strlen(tok) != words * 8 + 5 || tok[words * 8] != ':')
		return -1;
	uint32_t w[4] = { 0 }, p;
	for (size_t i = 0; i < words; i++)
		if (hex_word(tok + i * 8, &w[i]) != 0)
			return -1;
	char port_hex[9] = "0000";
	memcpy(port_hex + 4, tok + words * 8 + 1, 4);
	if (hex_word(port_hex, &p) != 0)
		return -1;
	*port = (uint16_t)p;
	if (family == AF_INET) {
		struct in_addr a;
		memcpy(&a, &w[0], 4);
		v4_to_mapped(a, addr);
	} else {
		memcpy(addr, w, 16);
	}
	return 0;
}

enum match { MATCH_NONE, MATCH_WILDCARD, MATCH_EXACT };

static enum match line_match(char *line, const struct peer_want *w, unsigned long *inode)
{
	char *tok[PEER_TABLE_FIELDS], *save = NULL;
	int n = 0;
	for (char *t = strtok_r(line, " \t\n", &save); t != NULL && n < PEER_TABLE_FIELDS;
	     t = strtok_r(NULL, " \t\n", &save))
		tok[n++] = t;
	struct in6_addr addr;
	uint16_t port;
	if (n < PEER_TABLE_FIELDS || parse_local(tok[1], w->family, &addr, &port) != 0 ||
	    port != w->port)
		return MATCH_NONE;
	char *end = NULL;
	errno = 0;
	unsigned long ino = strtoul(tok[9], &end, 10);
	if (errno != 0 || end == tok[9] || *end != '\0' || ino == 0)
		return MATCH_NONE; /* e.g. TIME_WAIT: no socket left */
	*inode = ino;
	if (memcmp(&addr, &w->addr, sizeof addr) == 0)
		return MATCH_EXACT;
	if (IN6_IS_ADDR_UNSPECIFIED(&addr) || memcmp(&addr, &v4mapped_any, sizeof addr) == 0)
		return MATCH_WILDCARD;
	return MATCH_NONE;
}

/* Scan one table; keeps the best match so far in *best / *inode. */
static void scan_table(pid_t ns_pid, const char *name, const struct peer_want *w,
		       enum match *best, unsigned long *inode)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/net/%s", (int)ns_pid, name);
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return;
	char line[PEER_LINE_MAX];
	for (unsigned n = 0; n < SUP_PEER_MAX_SOCKETS && *best != MATCH_EXACT &&
			     fgets(line, sizeof line, f) != NULL; n++) {
		unsigned long ino = 0;
		enum match m = line_match(line, w, &ino);
		if (m > *best) {
			*best = m;
			*inode = ino;
		}
	}
	fclose(f);
}

/* The inode of the socket bound to sock_local, 0 if none. IPv4 sockets are
 * also looked for in the v6 table (dual-stack sockets send IPv4 too). */
static unsigned long socket_inode(pid_t ns_pid, int ipproto,
				  const struct sockaddr_storage *sock_local)
{
	struct peer_want w;
	const char *base = ipproto == IPPROTO_TCP ? "tcp" : ipproto == IPPROTO_UDP ? "udp" : NULL;
	if (base == NULL || want_from(sock_local, &w) != 0)
		return 0;
	char v6[8];
	snprintf(v6, sizeof v6, "%s6", base);
	enum match best = MATCH_NONE;
	unsigned long inode = 0;
	if (sock_local->ss_family == AF_INET) {
		w.family = AF_INET;
		scan_table(ns_pid, base, &w, &best, &inode);
	}
	w.family = AF_INET6;
	scan_table(ns_pid, v6, &w, &best, &inode);
	return best != MATCH_NONE ? inode : 0;
}

static bool same_netns(int procfd, int pid, const struct stat *ns)
{
	char path[64];
	struct stat st;
	snprintf(path, sizeof path, "%d/ns/net", pid);
	return fstatat(procfd, path, &st, 0) == 0 && st.st_dev == ns->st_dev &&
	       st.st_ino == ns->st_ino;
}

/* Does process pid hold socket:[inode]? *fd_budget counts fd entries left. */
static bool holds_socket(int procfd, int pid, const char *want, long *fd_budget)
{
	char path[64];
	snprintf(path, sizeof path, "%d/fd", pid);
	int dfd = openat(procfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return false;
	DIR *d = fdopendir(dfd);
	if (d == NULL) {
		close(dfd);
		return false;
	}
	bool found = false;
	struct dirent *e;
	while (!found && *fd_budget > 0 && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		(*fd_budget)--;
		char link[64];
		ssize_t n = readlinkat(dirfd(d), e->d_name, link, sizeof link - 1);
		if (n <= 0)
			continue;
		link[n] = '\0';
		found = strcmp(link, want) == 0;
	}
	closedir(d);
	return found;
}

/* A /proc entry that is a process: its pid, else -1. */
static int proc_pid(const char *name)
{
	char *end = NULL;
	errno = 0;
	long v = strtol(name, &end, 10);
	if (!isdigit((unsigned char)name[0]) || errno != 0 || *end != '\0' || v <= 0 ||
	    v > INT_MAX)
		return -1;
	return (int)v;
}

/* The one process in ns_pid's network namespace holding the socket. -1 when
 * none does, when two do (a socket inherited or passed on names nobody for
 * sure: the first holder may have exec'ed something else since), or when the
 * limits end the scan before that could be told. */
static pid_t socket_owner(pid_t ns_pid, unsigned long inode)
{
	char want[48], nspath[64];
	struct stat ns;
	snprintf(want, sizeof want, "socket:[%lu]", inode);
	snprintf(nspath, sizeof nspath, "/proc/%d/ns/net", (int)ns_pid);
	if (stat(nspath, &ns) != 0)
		return -1;
	int procfd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (procfd < 0)
		return -1;
	DIR *d = fdopendir(procfd);
	if (d == NULL) {
		close(procfd);
		return -1;
	}
	pid_t owner = -1;
	bool shared = false, cut_short = false;
	long fd_budget = SUP_PEER_MAX_FDS;
	unsigned procs = 0;
	struct dirent *e;
	while (!shared && (e = readdir(d)) != NULL) {
		int pid = proc_pid(e->d_name);
		if (pid < 0)
			continue;
		if (++procs > SUP_PEER_MAX_PROCS || fd_budget <= 0) {
			cut_short = true;
			break;
		}
		if (!same_netns(dirfd(d), pid, &ns) || !holds_socket(dirfd(d), pid, want, &fd_budget))
			continue;
		if (owner < 0)
			owner = (pid_t)pid;
		else
			shared = true;
	}
	closedir(d);
	return shared || cut_short ? -1 : owner;
}

int sup_peer_lookup(pid_t ns_pid, int ipproto, const struct sockaddr_storage *sock_local,
		    pid_t *pid_out, char *exe, size_t exelen)
{
	if (exe != NULL && exelen > 0)
		exe[0] = '\0';
	if (ns_pid <= 0 || sock_local == NULL)
		return -1;
	unsigned long inode = socket_inode(ns_pid, ipproto, sock_local);
	if (inode == 0)
		return -1;
	pid_t pid = socket_owner(ns_pid, inode);
	if (pid <= 0)
		return -1;
	if (pid_out != NULL)
		*pid_out = pid;
	if (exe != NULL && exelen > 1) {
		char path[64];
		snprintf(path, sizeof path, "/proc/%d/exe", (int)pid);
		ssize_t n = readlink(path, exe, exelen - 1);
		/* gone, unreadable or too long for exe: the pid only */
		exe[n > 0 && (size_t)n < exelen - 1 ? n : 0] = '\0';
	}
	return 0;
}

/* proxy_hooks.identify: the sandbox process behind a proxy client. */
bool sup_proxy_identify(void *ud, const struct sockaddr_storage *peer, char *binary,
			size_t binary_len, long *pid)
{
	struct sup_ctx *ctx = ud;
	pid_t owner = 0;
	if (sup_peer_lookup(ctx->workload_pid, IPPROTO_TCP, peer, &owner, binary, binary_len) != 0)
		return false;
	*pid = (long)owner;
	return true;
}
