/* sockmap_vs_splice.c - would an eBPF sockmap redirect beat the splice relay
 * for a bulk tunnel (P1)? One 1 GiB download over loopback, interleaved
 * rounds of: direct (no relay), a splice(2) relay through a 1 MiB pipe (what
 * openshell does), and a sockmap relay whose sk_skb verdict program sends
 * every segment received on one socket out of its peer socket
 * (bpf_sk_redirect_map to egress), once with the stream parser attached
 * (BPF_SK_SKB_STREAM_VERDICT) and once without (BPF_SK_SKB_VERDICT).
 *
 * The BPF program is 18 instructions, assembled here so the probe needs no
 * BPF toolchain. A probe, not a relay: the sockmap relay keeps the tunnel
 * open until the client closes (a redirect still queued when the upstream
 * ends would otherwise be lost), and the client sends a one-byte request
 * before the server writes (see forward_request).
 *
 *   cc -O2 -o /tmp/smprobe bench/probes/sockmap_vs_splice.c
 *   unshare -n /tmp/smprobe 5      # root: bpf(2), and a private loopback
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TOTAL (1LL << 30)
#define PIPE_BYTES (1 << 20)
enum { SERVER = 9000, SPLICE = 9001, STRP = 9002, VERDICT = 9003, MAX_ROUNDS = 20 };

static __attribute__((noreturn)) void die(const char *what)
{
	perror(what);
	exit(1);
}

static int tcp_socket(int port, int listening)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket");
	if (listening) {
		if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
		    bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 16) < 0)
			die("listen");
	} else if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
		die("connect");
	}
	return fd;
}

static void serve(int listener)
{
	static char buf[1 << 20];
	memset(buf, 'x', sizeof buf);
	for (;;) {
		int c = accept(listener, NULL, NULL);
		char go;
		if (c >= 0 && read(c, &go, 1) != 1) { /* the request: nothing is sent before it */
			close(c);
			continue;
		}
		for (long long left = TOTAL; c >= 0 && left > 0;) {
			ssize_t w = write(c, buf, left < (long long)sizeof buf ? (size_t)left : sizeof buf);
			if (w <= 0)
				break;
			left -= w;
		}
		close(c);
	}
}

/* ---- splice relay ---- */

/* The one-byte request, client to upstream. The server sends nothing before
 * it, so a sockmap relay pairs the sockets before any download byte exists
 * (bytes queued before pairing would stay in the upstream socket). */
static void forward_request(int c, int u)
{
	char go;
	if (read(c, &go, 1) != 1 || write(u, &go, 1) != 1)
		die("request");
}

static void splice_once(int from, int to, int pipefd[2], size_t *fill)
{
	ssize_t r = splice(from, NULL, pipefd[1], NULL, PIPE_BYTES, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
	if (r > 0)
		*fill += (size_t)r;
	while (*fill > 0) {
		ssize_t w = splice(pipefd[0], NULL, to, NULL, *fill, SPLICE_F_MOVE);
		if (w <= 0)
			return;
		*fill -= (size_t)w;
	}
}

static void relay_splice(int listener)
{
	for (;;) {
		int c = accept(listener, NULL, NULL), u = tcp_socket(SERVER, 0), p[2];
		size_t fill = 0;
		if (c < 0 || pipe2(p, 0) < 0)
			die("relay");
		forward_request(c, u);
		(void)fcntl(p[1], F_SETPIPE_SZ, PIPE_BYTES);
		for (;;) { /* the download direction only: the client sends nothing */
			struct pollfd f[2] = {{u, POLLIN, 0}, {c, POLLRDHUP, 0}};
			if (poll(f, 2, -1) < 0 || f[1].revents)
				break;
			splice_once(u, c, p, &fill);
		}
		close(c), close(u), close(p[0]), close(p[1]);
	}
}

/* ---- sockmap relay ---- */

static long bpf(int cmd, union bpf_attr *a)
{
	return syscall(__NR_bpf, cmd, a, sizeof *a);
}

static int map_create(enum bpf_map_type type, unsigned key, unsigned value)
{
	union bpf_attr a = {.map_type = type, .key_size = key, .value_size = value, .max_entries = 64};
	int fd = (int)bpf(BPF_MAP_CREATE, &a);
	if (fd < 0)
		die("bpf map");
	return fd;
}

#define I(c, d, s, o, i) ((struct bpf_insn){.code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i)})
#define LD_MAP(d, fd) I(BPF_LD | BPF_DW | BPF_IMM, d, BPF_PSEUDO_MAP_FD, 0, fd), I(0, 0, 0, 0, 0)

/* peer = peers[socket cookie of skb]; return bpf_sk_redirect_map(skb, socks, peer, 0),
 * or SK_PASS (to user space) for a socket without a peer. */
static int load_verdict(int peers, int socks)
{
	struct bpf_insn prog[] = {
		I(BPF_ALU64 | BPF_MOV | BPF_X, 6, 1, 0, 0),              /* r6 = skb */
		I(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_get_socket_cookie),
		I(BPF_STX | BPF_MEM | BPF_DW, 10, 0, -8, 0),             /* key on the stack */
		I(BPF_ALU64 | BPF_MOV | BPF_X, 2, 10, 0, 0),
		I(BPF_ALU64 | BPF_ADD | BPF_K, 2, 0, 0, -8),
		LD_MAP(1, peers),
		I(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_map_lookup_elem),
		I(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 7, 0),                /* no peer: pass */
		I(BPF_LDX | BPF_MEM | BPF_W, 3, 0, 0, 0),                /* r3 = peer slot */
		I(BPF_ALU64 | BPF_MOV | BPF_X, 1, 6, 0, 0),
		LD_MAP(2, socks),
		I(BPF_ALU64 | BPF_MOV | BPF_K, 4, 0, 0, 0),              /* flags: egress */
		I(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_sk_redirect_map),
		I(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
		I(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, SK_PASS),
		I(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
	};
	static char log[16384];
	union bpf_attr a = {.prog_type = BPF_PROG_TYPE_SK_SKB, .insns = (uintptr_t)prog,
			    .insn_cnt = sizeof prog / sizeof prog[0], .license = (uintptr_t)"GPL",
			    .log_buf = (uintptr_t)log, .log_size = sizeof log, .log_level = 1};
	int fd = (int)bpf(BPF_PROG_LOAD, &a);
	if (fd < 0) {
		fputs(log, stderr);
		die("bpf prog");
	}
	return fd;
}

static void map_put(int map, const void *key, const void *value)
{
	union bpf_attr a = {.map_fd = (uint32_t)map, .key = (uintptr_t)key,
			    .value = (uintptr_t)value, .flags = BPF_ANY};
	if (bpf(BPF_MAP_UPDATE_ELEM, &a) < 0)
		die("bpf map update");
}

static void pair_up(int peers, int socks, int c, int u)
{
	uint32_t slot_c = 0, slot_u = 1;
	uint64_t cookie;
	socklen_t len = sizeof cookie;
	map_put(socks, &slot_c, &c);
	map_put(socks, &slot_u, &u);
	if (getsockopt(c, SOL_SOCKET, SO_COOKIE, &cookie, &len) < 0)
		die("SO_COOKIE");
	map_put(peers, &cookie, &slot_u);
	if (getsockopt(u, SOL_SOCKET, SO_COOKIE, &cookie, &len) < 0)
		die("SO_COOKIE");
	map_put(peers, &cookie, &slot_c);
}

static void relay_sockmap(int listener, enum bpf_attach_type how)
{
	int peers = map_create(BPF_MAP_TYPE_HASH, 8, 4), socks = map_create(BPF_MAP_TYPE_SOCKMAP, 4, 4);
	union bpf_attr a = {.target_fd = (uint32_t)socks,
			    .attach_bpf_fd = (uint32_t)load_verdict(peers, socks), .attach_type = how};
	if (bpf(BPF_PROG_ATTACH, &a) < 0)
		die("bpf attach");
	for (;;) {
		int c = accept(listener, NULL, NULL), u = tcp_socket(SERVER, 0);
		if (c < 0)
			die("accept");
		char go;
		if (read(c, &go, 1) != 1)
			die("request");
		pair_up(peers, socks, c, u);
		if (write(u, &go, 1) != 1)
			die("request");
		struct pollfd f = {c, POLLRDHUP, 0};
		while (poll(&f, 1, -1) == 0 || !f.revents)
			;
		close(c), close(u);
	}
}

/* ---- client ---- */

static double download_mibs(int port)
{
	static char buf[1 << 20];
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int s = tcp_socket(port, 0);
	long long got = 0;
	if (write(s, "g", 1) != 1)
		die("request");
	while (got < TOTAL) {
		ssize_t r = read(s, buf, sizeof buf);
		if (r <= 0)
			break;
		got += r;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	close(s);
	if (got < TOTAL)
		return 0;
	return (double)got / ((double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9) / (1 << 20);
}

static pid_t spawn(void (*fn)(int), int port)
{
	int l = tcp_socket(port, 1);
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		fn(l);
		_exit(0);
	}
	close(l);
	return pid;
}

static pid_t spawn_sockmap(int port, enum bpf_attach_type how)
{
	int l = tcp_socket(port, 1);
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		relay_sockmap(l, how);
		_exit(0);
	}
	close(l);
	return pid;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static void loopback_up(void)
{
	struct ifreq ifr = {.ifr_name = "lo"};
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		die("lo");
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
		die("lo up");
	close(fd);
}

int main(int argc, char **argv)
{
	static const struct { const char *name; int port; } paths[] = {
		{"direct", SERVER}, {"splice relay", SPLICE},
		{"sockmap, stream parser", STRP}, {"sockmap, verdict only", VERDICT}};
	enum { N = sizeof paths / sizeof paths[0] };
	int rounds = argc > 1 ? atoi(argv[1]) : 5;
	if (rounds < 1 || rounds > MAX_ROUNDS)
		rounds = 5;
	signal(SIGPIPE, SIG_IGN);
	loopback_up();
	pid_t kids[] = {spawn(serve, SERVER), spawn(relay_splice, SPLICE),
			spawn_sockmap(STRP, BPF_SK_SKB_STREAM_VERDICT),
			spawn_sockmap(VERDICT, BPF_SK_SKB_VERDICT)};
	double r[N][MAX_ROUNDS];
	for (int i = 0; i < rounds; i++)
		for (int k = 0; k < N; k++) {
			int j = (k + i) % N; /* rotate the order each round */
			r[j][i] = download_mibs(paths[j].port);
		}
	for (unsigned k = 0; k < sizeof kids / sizeof kids[0]; k++)
		kill(kids[k], SIGKILL), waitpid(kids[k], NULL, 0);
	double direct = 0;
	for (int k = 0; k < N; k++) {
		qsort(r[k], (size_t)rounds, sizeof r[k][0], cmp);
		double med = r[k][rounds / 2];
		if (k == 0)
			direct = med;
		printf("%-24s %6.0f MiB/s median (%.0f-%.0f), %.2f x direct\n", paths[k].name, med,
		       r[k][0], r[k][rounds - 1], direct > 0 ? med / direct : 0);
	}
	return 0;
}
