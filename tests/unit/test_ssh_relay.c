/* Unit and live tests of ssh-relay/: the policy checks, then the real OpenSSH
 * client (ssh, sftp) against a relay whose host spawns with plain fork+exec
 * (no namespaces). The live tests skip when ssh is not installed.
 *
 * This binary is also its own ProxyCommand: `test_ssh_relay ssh-proxy
 * --socket P` runs ssh_relay_bridge(P).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libssh/libssh.h>
#include <sys/un.h>

#include "ssh-relay/ssh_relay.h"

#define MAX_PIDS 512

/* snprintf into an array, failing the test on truncation. */
#define FMT(buf, ...) \
	do { \
		int n_ = snprintf((buf), sizeof(buf), __VA_ARGS__); \
		assert_true(n_ >= 0 && (size_t)n_ < sizeof(buf)); \
	} while (0)
#define OUT_MAX 65536

struct harness {
	pthread_mutex_t mu;
	pid_t pids[MAX_PIDS];
	int n_pids;
	int spawned;
	struct ssh_relay *relay;      /* the main relay of the live tests */
	pthread_mutex_t relays_mu;    /* before mu; never taken inside a relay */
	struct ssh_relay *relays[2];  /* told about every reaped child */
	bool reaper_paused;           /* as a host blocked in ssh_relay_stop */
	int stop_reaper;
	pthread_t reaper;
	char dir[128];
	char sock[192];
	char exe[512];
	char ssh[1024];       /* ssh command prefix, up to the destination */
};

/* ---- the fork+exec host ---- */

static void child_exec(const struct ssh_relay_session_req *req, char *const *argv,
		       char *const *envp)
{
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* Default dispositions, as the supervisor's spawn gives: a test run
	 * under nohup must not hand its ignored SIGHUP on to the sessions. */
	signal(SIGPIPE, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	if (setsid() < 0)
		_exit(126);
	if (req->pty && ioctl(req->stdin_fd, TIOCSCTTY, 0) != 0)
		_exit(126);
	if (dup2(req->stdin_fd, 0) < 0 || dup2(req->stdout_fd, 1) < 0 ||
	    dup2(req->stderr_fd, 2) < 0)
		_exit(126);
	execve(argv[0], argv, envp);
	_exit(127);
}

static pid_t h_spawn(void *ud, const struct ssh_relay_session_req *req, char *err,
		     size_t errlen)
{
	struct harness *h = ud;
	char term[128];
	char *envp[SSH_RELAY_MAX_ENV + 8];
	size_t n = 0;
	char *argv[4] = { "/bin/sh", NULL, NULL, NULL };

	if (req->command) {
		argv[1] = "-c";
		argv[2] = (char *)req->command;
	} else if (req->pty) {
		argv[1] = "-i";
	}
	/* no cmocka asserts here: this runs on a relay thread */
	int tn = snprintf(term, sizeof term, "TERM=%s", req->term ? req->term : "dumb");
	if (tn < 0 || (size_t)tn >= sizeof term) {
		snprintf(err, errlen, "TERM too long");
		return -1;
	}
	envp[n++] = "PATH=/usr/local/bin:/usr/bin:/bin";
	envp[n++] = "HOME=/tmp";
	envp[n++] = "OPENSHELL_SANDBOX=1";
	envp[n++] = term;
	for (size_t i = 0; req->client_env && req->client_env[i]; i++)
		envp[n++] = req->client_env[i];
	envp[n] = NULL;

	pid_t pid = fork();
	if (pid < 0) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0)
		child_exec(req, argv, envp);
	pthread_mutex_lock(&h->mu);
	if (h->n_pids < MAX_PIDS)
		h->pids[h->n_pids++] = pid;
	h->spawned++;
	pthread_mutex_unlock(&h->mu);
	return pid;
}

static int h_connect(void *ud, const char *host, uint16_t port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	memset(&ss, 0, sizeof ss);
	if (strchr(host, ':')) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons(port);
		inet_pton(AF_INET6, host, &a->sin6_addr);
		len = sizeof *a;
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		a->sin_family = AF_INET;
		a->sin_port = htons(port);
		inet_pton(AF_INET, host, &a->sin_addr);
		len = sizeof *a;
	}
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&ss, len) != 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

static void h_log(void *ud, int level, const char *msg)
{
	if (getenv("SSH_RELAY_TEST_LOG"))
		fprintf(stderr, "[relay %d] %s\n", level, msg);
}

/* Reaps only the session children (ssh clients are popen's). */
static void reap_once(struct harness *h)
{
	pid_t done[MAX_PIDS];
	int st[MAX_PIDS], n = 0;

	pthread_mutex_lock(&h->mu);
	for (int i = 0; i < h->n_pids;) {
		if (waitpid(h->pids[i], &st[n], WNOHANG) == h->pids[i]) {
			done[n++] = h->pids[i];
			h->pids[i] = h->pids[--h->n_pids];
		} else {
			i++;
		}
	}
	pthread_mutex_unlock(&h->mu);
	for (int i = 0; i < n; i++)
		for (int j = 0; j < 2; j++)
			if (h->relays[j])
				ssh_relay_child_exited(h->relays[j], done[i], st[i]);
}

static void *reaper_main(void *arg)
{
	struct harness *h = arg;
	while (!__atomic_load_n(&h->stop_reaper, __ATOMIC_ACQUIRE)) {
		pthread_mutex_lock(&h->relays_mu);
		if (!h->reaper_paused)
			reap_once(h);
		pthread_mutex_unlock(&h->relays_mu);
		usleep(5000);
	}
	return NULL;
}

static void set_relay(struct harness *h, int i, struct ssh_relay *r, bool paused)
{
	pthread_mutex_lock(&h->relays_mu);
	h->relays[i] = r;
	h->reaper_paused = paused;
	pthread_mutex_unlock(&h->relays_mu);
}

/* Stops r the way the supervisor would: nobody reaps meanwhile. */
static void stop_relay(struct harness *h, int i)
{
	struct ssh_relay *r = h->relays[i];
	set_relay(h, i, r, true);
	ssh_relay_stop(r);
	set_relay(h, i, NULL, false);
}

static int live_children(struct harness *h)
{
	int n;
	pthread_mutex_lock(&h->mu);
	n = h->n_pids;
	pthread_mutex_unlock(&h->mu);
	return n;
}

static bool have_tool(const char *path)
{
	return access(path, X_OK) == 0;
}

static struct ssh_relay *start_relay(struct harness *h, const char *sock, const char *keys)
{
	char err[256] = "";
	struct ssh_relay_config cfg = {
		.socket_path = sock,
		.authorized_keys = keys,
		.host = { .spawn = h_spawn, .connect_inside = h_connect, .log = h_log, .ud = h },
	};
	struct ssh_relay *r = ssh_relay_start(&cfg, err, sizeof err);
	if (r == NULL)
		fail_msg("ssh_relay_start: %s", err);
	return r;
}

static void build_ssh_prefix(struct harness *h, const char *sock, const char *extra)
{
	FMT(h->ssh,
		 "ssh -F /dev/null -o ProxyCommand='%s ssh-proxy --socket %s' "
		 "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
		 "-o LogLevel=ERROR -o BatchMode=yes %s u@sandbox",
		 h->exe, sock, extra ? extra : "");
}

static int setup_live(void **state)
{
	static struct harness h;
	if (!have_tool("/usr/bin/ssh"))
		return 0;
	memset(&h, 0, sizeof h);
	pthread_mutex_init(&h.mu, NULL);
	pthread_mutex_init(&h.relays_mu, NULL);
	ssize_t n = readlink("/proc/self/exe", h.exe, sizeof h.exe - 1);
	if (n <= 0)
		return -1;
	h.exe[n] = '\0';
	FMT(h.dir, "/tmp/test-ssh-relay-%d/sub", (int)getpid());
	FMT(h.sock, "%s/ssh.sock", h.dir);
	h.relay = start_relay(&h, h.sock, NULL);
	h.relays[0] = h.relay;
	if (pthread_create(&h.reaper, NULL, reaper_main, &h) != 0)
		return -1;
	build_ssh_prefix(&h, h.sock, NULL);
	*state = &h;
	return 0;
}

static int teardown_live(void **state)
{
	struct harness *h = *state;
	char cmd[256];
	if (h == NULL)
		return 0;
	stop_relay(h, 0);
	__atomic_store_n(&h->stop_reaper, 1, __ATOMIC_RELEASE);
	pthread_join(h->reaper, NULL);
	reap_once(h);
	FMT(cmd, "rm -rf /tmp/test-ssh-relay-%d", (int)getpid());
	if (system(cmd) != 0)
		return -1;
	return 0;
}

#define SKIP_IF_NO_SSH(state) do { if (*(state) == NULL) { skip(); } } while (0)

/* Runs a shell command line; returns its exit code and its stdout in out. */
static int run(const char *cmdline, char *out, size_t outlen)
{
	FILE *f = popen(cmdline, "r");
	size_t n = 0;
	if (f == NULL)
		return -1;
	while (n + 1 < outlen) {
		size_t r = fread(out + n, 1, outlen - 1 - n, f);
		if (r == 0)
			break;
		n += r;
	}
	out[n] = '\0';
	int st = pclose(f);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int ssh_run(struct harness *h, const char *pre, const char *remote, const char *post,
		   char *out, size_t outlen)
{
	char cmd[4096];
	FMT(cmd, "%s %s %s %s", pre ? pre : "", h->ssh, remote, post ? post : "");
	return run(cmd, out, outlen);
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- pure checks ---- */

static void test_env_names(void **state)
{
	(void)state;
	const char *ok[] = { "LANG", "LC_ALL", "LC_CTYPE", "FOO", "my_var", "COLORTERM", "_X1" };
	const char *bad[] = { "", "1X", "A-B", "A=B", "PATH", "HOME", "USER", "LOGNAME", "SHELL",
			      "TERM", "HTTP_PROXY", "https_proxy", "ALL_PROXY", "no_proxy",
			      "grpc_proxy", "NODE_USE_ENV_PROXY", "SSL_CERT_FILE",
			      "NODE_EXTRA_CA_CERTS", "CURL_CA_BUNDLE", "REQUESTS_CA_BUNDLE",
			      "GIT_SSL_CAINFO", "DENO_CERT", "OPENSHELL_SANDBOX",
			      "openshell_sandbox_token", "LD_PRELOAD", "LD_LIBRARY_PATH" };
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
		assert_true(ssh_relay_env_name_allowed(ok[i]));
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (ssh_relay_env_name_allowed(bad[i]))
			fail_msg("env name '%s' must be refused", bad[i]);
	}
	char longname[SSH_RELAY_MAX_ENV_NAME + 2];
	memset(longname, 'A', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	assert_false(ssh_relay_env_name_allowed(longname));
	assert_false(ssh_relay_env_name_allowed(NULL));
}

static void test_loopback_targets(void **state)
{
	(void)state;
	struct { const char *in, *out; } ok[] = {
		{ "localhost", "127.0.0.1" }, { "LocalHost", "127.0.0.1" },
		{ "127.0.0.1", "127.0.0.1" }, { "127.1.2.3", "127.1.2.3" },
		{ "::1", "::1" }, { "[::1]", "::1" }, { "0:0:0:0:0:0:0:1", "::1" },
		{ "::ffff:127.0.0.5", "127.0.0.5" }, { "[127.0.0.1]", "127.0.0.1" },
	};
	const char *bad[] = { "", "10.0.0.1", "198.51.100.10", "128.0.0.1", "0.0.0.0", "::",
			      "::2", "::ffff:10.0.0.1", "localhost.", "example.com",
			      "127.0.0.1.nip.io", "127.1", "0177.0.0.1", "[::1", "2001:db8::1" };
	char out[64];
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		assert_int_equal(ssh_relay_loopback_target(ok[i].in, out, sizeof out), 0);
		assert_string_equal(out, ok[i].out);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (ssh_relay_loopback_target(bad[i], out, sizeof out) == 0)
			fail_msg("'%s' must not count as loopback", bad[i]);
	}
	assert_int_equal(ssh_relay_loopback_target(NULL, out, sizeof out), -1);
	assert_int_equal(ssh_relay_loopback_target("127.0.0.1", out, 4), -1);
}

static void test_start_errors(void **state)
{
	(void)state;
	char err[256];
	struct ssh_relay_config cfg = { .socket_path = NULL };
	assert_null(ssh_relay_start(&cfg, err, sizeof err));
	cfg.socket_path = "/tmp/x.sock";
	assert_null(ssh_relay_start(&cfg, err, sizeof err));   /* no callbacks */
	assert_non_null(strstr(err, "callbacks"));

	struct harness h;
	memset(&h, 0, sizeof h);
	cfg.host = (struct ssh_relay_host){ .spawn = h_spawn, .connect_inside = h_connect, .ud = &h };
	char path[200];
	FMT(path, "/tmp/test-ssh-relay-notsock-%d", (int)getpid());
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
	cfg.socket_path = path;
	assert_null(ssh_relay_start(&cfg, err, sizeof err));
	assert_non_null(strstr(err, "not a socket"));
	unlink(path);

	cfg.socket_path = "/tmp/x.sock";
	cfg.authorized_keys = "/nonexistent/keys";
	assert_null(ssh_relay_start(&cfg, err, sizeof err));
	assert_non_null(strstr(err, "/nonexistent/keys"));

	FMT(path, "/tmp/test-ssh-relay-badkeys-%d", (int)getpid());
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("# comment\n\ncommand=\"x\" ssh-ed25519 AAAA\n", f);
	fclose(f);
	cfg.authorized_keys = path;
	assert_null(ssh_relay_start(&cfg, err, sizeof err));
	assert_non_null(strstr(err, ":3:"));
	unlink(path);

	/* A socket directory someone else owns, or an ancestor others may write
	 * without the sticky bit: they could swap the socket for their own. */
	if (geteuid() == 0) {
		char base[128], d[192], sock[240], cmd[300];
		FMT(base, "/tmp/test-ssh-relay-own-%d", (int)getpid());
		assert_int_equal(mkdir(base, 0755), 0);
		FMT(d, "%s/agent", base);
		assert_int_equal(mkdir(d, 0700), 0);
		assert_int_equal(chown(d, 1500, 1500), 0);
		FMT(sock, "%s/ssh.sock", d);
		cfg.socket_path = sock;
		cfg.authorized_keys = NULL;
		assert_null(ssh_relay_start(&cfg, err, sizeof err));
		assert_non_null(strstr(err, "owned by uid 1500"));
		FMT(sock, "%s/sub/ssh.sock", d);      /* created inside it: still refused */
		assert_null(ssh_relay_start(&cfg, err, sizeof err));
		assert_non_null(strstr(err, "not owned by root"));
		FMT(d, "%s/open", base);
		assert_int_equal(mkdir(d, 0755), 0);
		assert_int_equal(chmod(d, 0777), 0);
		FMT(sock, "%s/sub/ssh.sock", d);
		assert_null(ssh_relay_start(&cfg, err, sizeof err));
		assert_non_null(strstr(err, "writable by others"));
		FMT(d, "%s/sticky", base);            /* like /tmp: allowed */
		assert_int_equal(mkdir(d, 0755), 0);
		assert_int_equal(chmod(d, 01777), 0);
		FMT(sock, "%s/sub/ssh.sock", d);
		struct ssh_relay *r = ssh_relay_start(&cfg, err, sizeof err);
		if (r == NULL)
			fail_msg("sticky ancestor refused: %s", err);
		ssh_relay_stop(r);
		FMT(cmd, "rm -rf -- '%s'", base);
		assert_int_equal(system(cmd), 0);
	}

	char longp[300];
	memset(longp, 'a', sizeof longp - 1);
	longp[0] = '/';
	longp[sizeof longp - 1] = '\0';
	cfg.authorized_keys = NULL;
	cfg.socket_path = longp;
	assert_null(ssh_relay_start(&cfg, err, sizeof err));
}

/* ---- live, with OpenSSH ---- */

static void test_socket_modes(void **state)
{
	SKIP_IF_NO_SSH(state);
	struct harness *h = *state;
	struct stat st;
	assert_int_equal(stat(h->dir, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	assert_int_equal(lstat(h->sock, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_uid, geteuid());
}

static void test_exec_and_exit_codes(void **state)
{
	SKIP_IF_NO_SSH(state);
	struct harness *h = *state;
	char out[OUT_MAX];
	assert_int_equal(ssh_run(h, NULL, "echo hi", NULL, out, sizeof out), 0);
	assert_string_equal(out, "hi\n");
	assert_int_equal(ssh_run(h, NULL, "'exit 7'", NULL, out, sizeof out), 7);
	assert_int_equal(ssh_run(h, NULL, "'kill -TERM $$'", NULL, out, sizeof out), 143);
	assert_int_equal(ssh_run(h, NULL, "'echo err >&2; echo out'", "2>/dev/null", out,
				 sizeof out), 0);
	assert_string_equal(out, "out\n");
	assert_int_equal(ssh_run(h, NULL, "'echo err >&2'", "2>&1", out, sizeof out), 0);
	assert_string_equal(out, "err\n");
	/* no login shell, /bin/sh -c, environment from the host */
	assert_int_equal(ssh_run(h, NULL, "'echo $OPENSHELL_SANDBOX $TERM'", NULL, out,
				 sizeof out), 0);
	assert_string_equal(out, "1 dumb\n");
}

static void test_background_job_is_hung_up(void **state)
{
	SKIP_IF_NO_SSH(state);
	struct harness *h = *state;
	char out[OUT_MAX], cmd[256];
	long long t0 = now_ms();
	/* The job keeps stdout open: the session ends after the quiet time
	 * and the job gets SIGHUP; a nohup'ed one would survive. */
	int tag = 200000 + (int)(getpid() % 100000); /* nobody else's sleep matches */
	char job[64];
	FMT(job, "'sleep %d.3 & echo started'", tag);
	assert_int_equal(ssh_run(h, NULL, job, NULL, out, sizeof out), 0);
	assert_string_equal(out, "started\n");
	assert_true(now_ms() - t0 < SSH_RELAY_DRAIN_MS + 3000);
	/* gone within 10 s (at once, normally; a loaded machine may be slow) */
	FMT(cmd, "for i in $(seq 100); do pgrep -f '[s]leep %d[.]3' >/dev/null || exit 0; "
		 "sleep 0.1; done; pgrep -f '[s]leep %d[.]3'", tag, tag);
	assert_int_equal(run(cmd, out, sizeof out), 0);
	assert_string_equal(out, "");
}

static void test_second_server_on_a_live_socket_is_refused(void **state)
{
	SKIP_IF_NO_SSH(state);
	struct harness *h = *state;
	char err[256];
	struct ssh_relay_config cfg = {
		.socket_path = h->sock,
		.host = { .spawn = h_spawn, .connect_inside = h_connect, .ud = h },
	};
	assert_null(ssh_relay_start(&cfg, err, sizeof err));
	assert_non_null(strstr(err, "another server"));
	char out[OUT_MAX];
	assert_int_equal(ssh_run(h, NULL, "echo still", NULL, out, sizeof out), 0);
	assert_string_equal(out, "still\n");
}

static void test_env_requests(void **state)
{
	SKIP_IF_NO_SSH(state);
	struct harness *h = *state;
	char out[OUT_MAX];
	assert_int_equal(ssh_run(h, "FOO=bar HTTP_PROXY=evil OPENSHELL_X=1 LANG=C.UTF-8",
				 "-o SendEnv=FOO -o SendEnv=HTTP_PROXY -o SendEnv=OPENSHELL_X "
				 "-o SendEnv=LANG -o SetEnv=PATH=/evil "
				 "'echo $FOO-$HTTP_PROXY-$OPENSHELL_X-$LANG-$PATH'",
				 NULL, out, sizeof out), 0);
	assert_string_equal(out, "bar---C.UTF-8-/usr/local/bin:/usr/bin:/bin\n");
}

static void test_stdin_and_large_transfers(void **state)
{
	SKIP_IF_NO_SSH(state);
	struct harness *h = *state;
	char out[OUT_MAX];
	assert_int_equal(ssh_run(h, "printf 'a\\nb\\n' |", "cat", NULL, out, sizeof out), 0);
	assert_string_equal(out, "a\nb\n");
	/* 10 MiB each way, through bounded buffers */
	assert_int_equal(ssh_run(h, NULL, "'head -c 10485760 /dev/zero'", "| wc -c", out,
				 sizeof out), 0);
	assert_int_equal(atol(out), 10485760);
	assert_int_equal(ssh_run(h, "head -c 10485760 /dev/zero |", "'wc -c'", NULL, out,
				 sizeof out), 0);
	assert_int_equal(atol(out), 10485760);
	/* the child closes stdin early: the rest of the input is discarded */
	assert_int_equal(ssh_run(h, "head -c 1048576 /dev/zero |", "'head -c 10 | wc -c'",
				 NULL, out, sizeof out), 0);
	assert_int_equal(atol(out), 10);
}

static void test_pty(void **state)
{
	SKIP_IF_NO_SSH(state);
	struct harness *h = *state;
	char out[OUT_MAX];
	assert_int_equal(ssh_run(h, "TERM=xterm-test", "-tt 'tty; echo $TERM; exit 3'",
				 "</dev/null", out, sizeof out), 3);
	assert_non_null(strstr(out, "/dev/pts/"));
	assert_non_null(strstr(out, "xterm-test"));
}

static void test_sftp_roundtrip(void **state)
{
	SKIP_IF_NO_SSH(state);
	struct harness *h = *state;
	char cmd[4096], out[OUT_MAX], sum1[200], sum2[200];
	if (!have_tool(SSH_RELAY_SFTP_SERVER) || !have_tool("/usr/bin/sftp"))
		skip();
	FMT(cmd,
		 "cd /tmp/test-ssh-relay-%d && head -c 10485760 /dev/urandom > in.bin && "
		 "printf 'put in.bin %%s/up.bin\\nget %%s/up.bin back.bin\\n' \"$PWD\" \"$PWD\" "
		 "> batch && "
		 "sftp -q -F /dev/null -o ProxyCommand='%s ssh-proxy --socket %s' "
		 "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR "
		 "-o BatchMode=yes -b batch u@sandbox >/dev/null && "
		 "sha256sum < in.bin && sha256sum < back.bin",
		 (int)getpid(), h->exe, h->sock);
	assert_int_equal(run(cmd, out, sizeof out), 0);
	assert_int_equal(sscanf(out, "%199s - %199s", sum1, sum2), 2);
	assert_string_equal(sum1, sum2);
}

struct echo_server {
	int fd;
	uint16_t port;
	pthread_t t;
};

static void *echo_main(void *arg)
{
	struct echo_server *e = arg;
	for (;;) {
		int c = accept(e->fd, NULL, NULL);
		if (c < 0)
			return NULL;
		char buf[4096];
		ssize_t n;
		while ((n = read(c, buf, sizeof buf)) > 0)
			if (write(c, buf, (size_t)n) != n)
				break;
		close(c);
	}
}

static void test_forwarding(void **state)
{
	SKIP_IF_NO_SSH(state);
	struct harness *h = *state;
	struct echo_server e;
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof a;
	char remote[128], out[OUT_MAX];

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	e.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(e.fd >= 0);
	assert_int_equal(bind(e.fd, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(listen(e.fd, 8), 0);
	assert_int_equal(getsockname(e.fd, (struct sockaddr *)&a, &len), 0);
	e.port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&e.t, NULL, echo_main, &e), 0);

	FMT(remote, "-W 127.0.0.1:%u", e.port);
	assert_int_equal(ssh_run(h, "echo through |", remote, NULL, out, sizeof out), 0);
	assert_string_equal(out, "through\n");
	FMT(remote, "-W localhost:%u", e.port);
	assert_int_equal(ssh_run(h, "echo again |", remote, NULL, out, sizeof out), 0);
	assert_string_equal(out, "again\n");
	/* not loopback: refused before any connection is made */
	FMT(remote, "-W 192.0.2.1:%u", e.port);
	assert_int_equal(ssh_run(h, "echo x |", remote, "2>/dev/null", out, sizeof out), 255);
	FMT(remote, "-W example.com:%u", e.port);
	assert_int_equal(ssh_run(h, "echo x |", remote, "2>/dev/null", out, sizeof out), 255);

	shutdown(e.fd, SHUT_RDWR);
	close(e.fd);
	pthread_join(e.t, NULL);
}

static void test_concurrent_sessions(void **state)
{
	SKIP_IF_NO_SSH(state);
	struct harness *h = *state;
	char cmd[4096], out[OUT_MAX];
	FMT(cmd,
		 "fail=0; pids=; for i in $(seq 20); do %s true & pids=\"$pids $!\"; done; "
		 "for p in $pids; do wait $p || fail=$((fail+1)); done; echo $fail",
		 h->ssh);
	assert_int_equal(run(cmd, out, sizeof out), 0);
	assert_string_equal(out, "0\n");
	for (int i = 0; i < 200 && live_children(h) > 0; i++)
		usleep(10000);
	assert_int_equal(live_children(h), 0);
}

static bool wait_no_children(struct harness *h, int ms)
{
	long long end = now_ms() + ms;
	while (now_ms() < end) {
		if (live_children(h) == 0)
			return true;
		usleep(10000);
	}
	return false;
}

static void test_dropped_client_kills_session(void **state)
{
	SKIP_IF_NO_SSH(state);
	struct harness *h = *state;
	char cmd[4096], out[OUT_MAX];
	int before;

	pthread_mutex_lock(&h->mu);
	before = h->spawned;
	pthread_mutex_unlock(&h->mu);
	/* ssh in the background, then killed: the session (which ignores
	 * nothing) must be hung up within the grace time. */
	/* Durations unique to this test process, so the check below cannot see
	 * anybody else's sleep. */
	int tag = 100000 + (int)(getpid() % 100000);
	FMT(cmd,
		 "%s 'sleep %d.1 & sleep %d.2' </dev/null >/dev/null 2>&1 & p=$!; sleep 1; "
		 "kill -9 $p; wait $p; echo killed", h->ssh, tag, tag);
	assert_int_equal(run(cmd, out, sizeof out), 0);
	pthread_mutex_lock(&h->mu);
	assert_int_equal(h->spawned, before + 1);
	pthread_mutex_unlock(&h->mu);
	assert_true(wait_no_children(h, SSH_RELAY_KILL_GRACE_MS + 2000));
	FMT(cmd, "pgrep -f '[s]leep %d[.][12]' || true", tag);
	assert_int_equal(run(cmd, out, sizeof out), 0);
	assert_string_equal(out, "");
}

static void test_pty_client_killed(void **state)
{
	SKIP_IF_NO_SSH(state);
	struct harness *h = *state;
	char out[OUT_MAX];
	/* a pty session whose client goes away while the command runs */
	assert_int_equal(ssh_run(h, NULL, "-tt 'sleep 300'", "</dev/null >/dev/null 2>&1 & "
				 "sleep 1; kill $!; wait $!; echo $?", out, sizeof out), 0);
	assert_true(wait_no_children(h, SSH_RELAY_KILL_GRACE_MS + 2000));
}

/* ---- requests OpenSSH cannot be scripted to send: a libssh client ---- */

static ssh_session lib_connect(const char *sock)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int verbosity = SSH_LOG_NOLOG;
	bool no = false;
	ssh_session s = ssh_new();

	assert_non_null(s);
	assert_true(fd >= 0);
	FMT(sa.sun_path, "%s", sock);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(ssh_options_set(s, SSH_OPTIONS_FD, &fd), SSH_OK);
	assert_int_equal(ssh_options_set(s, SSH_OPTIONS_HOST, "sandbox"), SSH_OK);
	assert_int_equal(ssh_options_set(s, SSH_OPTIONS_USER, "u"), SSH_OK);
	assert_int_equal(ssh_options_set(s, SSH_OPTIONS_LOG_VERBOSITY, &verbosity), SSH_OK);
	assert_int_equal(ssh_options_set(s, SSH_OPTIONS_PROCESS_CONFIG, &no), SSH_OK);
	assert_int_equal(ssh_connect(s), SSH_OK);
	assert_int_equal(ssh_userauth_none(s, NULL), SSH_AUTH_SUCCESS);
	return s;
}

/* Reads from the channel until `want` was seen; false on EOF or 10 s. */
static bool read_until(ssh_channel ch, char *acc, size_t cap, const char *want)
{
	size_t n = strlen(acc);
	for (int i = 0; i < 100 && !strstr(acc, want); i++) {
		int r = ssh_channel_read_timeout(ch, acc + n, (uint32_t)(cap - 1 - n), 0, 100);
		if (r < 0 || (r == 0 && ssh_channel_is_eof(ch)))
			break;
		n += (size_t)r;
		acc[n] = '\0';
	}
	return strstr(acc, want) != NULL;
}

static void test_signal_and_window_change_requests(void **state)
{
	SKIP_IF_NO_SSH(state);
	struct harness *h = *state;
	char acc[8192] = "";
	ssh_session s = lib_connect(h->sock);

	/* signal: delivered to the session's process group */
	ssh_channel ch = ssh_channel_new(s);
	assert_non_null(ch);
	assert_int_equal(ssh_channel_open_session(ch), SSH_OK);
	assert_int_equal(ssh_channel_request_exec(ch, "trap 'echo got-usr1' USR1; echo ready; "
						  "while :; do sleep 0.05; done"), SSH_OK);
	assert_true(read_until(ch, acc, sizeof acc, "ready"));
	assert_int_equal(ssh_channel_request_send_signal(ch, "USR1"), SSH_OK);
	assert_true(read_until(ch, acc, sizeof acc, "got-usr1"));
	assert_int_equal(ssh_channel_request_send_signal(ch, "NOSUCH"), SSH_OK);  /* ignored */
	assert_int_equal(ssh_channel_request_send_signal(ch, "TERM"), SSH_OK);
	read_until(ch, acc, sizeof acc, "\x01never");
	assert_int_equal(ssh_channel_get_exit_status(ch), 128 + SIGTERM);
	ssh_channel_close(ch);
	ssh_channel_free(ch);

	/* window-change: TIOCSWINSZ on the pty, seen by the child */
	acc[0] = '\0';
	ch = ssh_channel_new(s);
	assert_non_null(ch);
	assert_int_equal(ssh_channel_open_session(ch), SSH_OK);
	assert_int_equal(ssh_channel_request_pty_size(ch, "xterm", 100, 30), SSH_OK);
	assert_int_equal(ssh_channel_request_exec(ch, "stty size; read x; stty size"), SSH_OK);
	assert_true(read_until(ch, acc, sizeof acc, "30 100"));
	assert_int_equal(ssh_channel_change_pty_size(ch, 132, 43), SSH_OK);
	usleep(100000);
	assert_int_equal(ssh_channel_write(ch, "\n", 1), 1);
	assert_true(read_until(ch, acc, sizeof acc, "43 132"));
	read_until(ch, acc, sizeof acc, "\x01never");
	assert_int_equal(ssh_channel_get_exit_status(ch), 0);
	ssh_channel_close(ch);
	ssh_channel_free(ch);

	/* refused: other subsystems, tcpip-forward, x11-style channel types */
	ch = ssh_channel_new(s);
	assert_int_equal(ssh_channel_open_session(ch), SSH_OK);
	assert_int_not_equal(ssh_channel_request_subsystem(ch, "netconf"), SSH_OK);
	assert_int_not_equal(ssh_channel_request_exec(ch, ""), SSH_OK);
	ssh_channel_close(ch);
	ssh_channel_free(ch);
	assert_int_not_equal(ssh_channel_listen_forward(s, "127.0.0.1", 0, NULL), SSH_OK);
	ch = ssh_channel_new(s);
	assert_int_not_equal(ssh_channel_open_forward(ch, "10.0.0.1", 80, "127.0.0.1", 1), SSH_OK);
	ssh_channel_free(ch);

	ssh_disconnect(s);
	ssh_free(s);
	assert_true(wait_no_children(h, 3000));
}

static void test_abstract_socket_and_keys(void **state)
{
	SKIP_IF_NO_SSH(state);
	struct harness *h = *state;
	char sock[128], cmd[4096], out[OUT_MAX], keys[256], saved[1024];

	FMT(sock, "@test-ssh-relay-%d", (int)getpid());
	FMT(keys, "/tmp/test-ssh-relay-%d/key", (int)getpid());
	FMT(cmd, "ssh-keygen -q -t ed25519 -N '' -f %s >/dev/null && "
		 "ssh-keygen -q -t ed25519 -N '' -f %s.other >/dev/null", keys, keys);
	if (run(cmd, out, sizeof out) != 0)
		skip();
	FMT(cmd, "%s.pub", keys);
	set_relay(h, 1, start_relay(h, sock, cmd), false);
	/* abstract: no file, and a second bind of the name fails */
	char err[256];
	struct ssh_relay_config cfg = {
		.socket_path = sock,
		.host = { .spawn = h_spawn, .connect_inside = h_connect, .ud = h },
	};
	assert_null(ssh_relay_start(&cfg, err, sizeof err));
	assert_non_null(strstr(err, "Address already in use"));

	memcpy(saved, h->ssh, sizeof saved);
	FMT(cmd, "-o IdentitiesOnly=yes -i %s", keys);
	build_ssh_prefix(h, sock, cmd);
	assert_int_equal(ssh_run(h, NULL, "echo keyed", NULL, out, sizeof out), 0);
	assert_string_equal(out, "keyed\n");
	FMT(cmd, "-o IdentitiesOnly=yes -i %s.other", keys);
	build_ssh_prefix(h, sock, cmd);
	assert_int_equal(ssh_run(h, NULL, "echo no", "2>/dev/null", out, sizeof out), 255);
	build_ssh_prefix(h, sock, "-o IdentitiesOnly=yes -o PubkeyAuthentication=no");
	assert_int_equal(ssh_run(h, NULL, "echo no", "2>/dev/null", out, sizeof out), 255);
	memcpy(h->ssh, saved, sizeof saved);
	stop_relay(h, 1);
}

/* What a client running as uid gets first from the abstract socket name
 * sock, within 3 s: 'B' the SSH banner, 'C' closed without it, else an error
 * letter. Runs in a forked child and answers over a pipe (the harness reaper
 * may collect the child). */
static char first_bytes_as(const char *sock, uid_t uid)
{
	int pfd[2];
	assert_int_equal(pipe(pfd), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char r = 'E';
		close(pfd[0]);
		if (uid != 0 && (setgroups(0, NULL) != 0 || setresgid(uid, uid, uid) != 0 ||
				 setresuid(uid, uid, uid) != 0)) {
			r = 'U';
		} else {
			struct sockaddr_un sa = { .sun_family = AF_UNIX };
			size_t l = strlen(sock + 1);
			memcpy(sa.sun_path + 1, sock + 1, l);
			int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
			socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + l);
			struct timeval tv = { 3, 0 };
			char buf[4];
			if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, alen) == 0 &&
			    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0) {
				ssize_t n = recv(fd, buf, 4, MSG_WAITALL);
				r = n == 4 && memcmp(buf, "SSH-", 4) == 0 ? 'B' : n == 0 ? 'C' : 'T';
			}
		}
		if (write(pfd[1], &r, 1) != 1)
			_exit(1);
		_exit(0);
	}
	close(pfd[1]);
	char r = '?';
	if (read(pfd[0], &r, 1) != 1)
		r = '?';
	close(pfd[0]);
	return r;
}

/* Without authorized keys reaching the socket is the authentication; an
 * abstract name has no file mode, so the relay checks the peer itself. */
static void test_abstract_socket_admits_only_root(void **state)
{
	SKIP_IF_NO_SSH(state);
	struct harness *h = *state;
	if (geteuid() != 0)
		skip();
	char sock[128];
	FMT(sock, "@test-ssh-relay-peer-%d", (int)getpid());
	set_relay(h, 1, start_relay(h, sock, NULL), false);
	assert_int_equal(first_bytes_as(sock, 0), 'B');
	assert_int_equal(first_bytes_as(sock, 65534), 'C');
	assert_int_equal(first_bytes_as(sock, 1500), 'C');
	stop_relay(h, 1);
}

static void test_stop_ends_sessions(void **state)
{
	SKIP_IF_NO_SSH(state);
	struct harness *h = *state;
	char sock[200], cmd[4096], out[OUT_MAX];

	/* A second relay, stopped while a session runs: the client gets the
	 * session's exit status (SIGHUP: 129) and the socket is removed. */
	FMT(sock, "/tmp/test-ssh-relay-%d/stop/ssh.sock", (int)getpid());
	set_relay(h, 1, start_relay(h, sock, NULL), false);
	char saved[1024];
	memcpy(saved, h->ssh, sizeof saved);
	build_ssh_prefix(h, sock, NULL);
	int tag = 300000 + (int)(getpid() % 100000); /* nobody else's sleep matches */
	FMT(cmd, "%s 'sleep %d.5' </dev/null; echo rc=$?", h->ssh, tag);
	memcpy(h->ssh, saved, sizeof saved);
	FILE *f = popen(cmd, "r");
	assert_non_null(f);
	/* stop it only once the session's command runs (within 10 s); anchored,
	 * as the ssh client's own command line has the same words */
	char wait_cmd[256];
	FMT(wait_cmd, "for i in $(seq 100); do pgrep -f '^sleep %d[.]5$' >/dev/null && exit 0; "
		      "sleep 0.1; done; exit 1", tag);
	assert_int_equal(run(wait_cmd, out, sizeof out), 0);
	long long t0 = now_ms();
	stop_relay(h, 1);
	assert_true(now_ms() - t0 < SSH_RELAY_KILL_GRACE_MS + SSH_RELAY_REAP_WAIT_MS + 1500);
	size_t n = fread(out, 1, sizeof out - 1, f);
	out[n] = '\0';
	pclose(f);
	assert_string_equal(out, "rc=129\n");
	struct stat st;
	assert_int_equal(lstat(sock, &st), -1);
	assert_true(wait_no_children(h, 3000));
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "ssh-proxy") == 0 && strcmp(argv[2], "--socket") == 0)
		return ssh_relay_bridge(argv[3]);
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest pure[] = {
		cmocka_unit_test(test_env_names),
		cmocka_unit_test(test_loopback_targets),
		cmocka_unit_test(test_start_errors),
	};
	const struct CMUnitTest live[] = {
		cmocka_unit_test(test_socket_modes),
		cmocka_unit_test(test_exec_and_exit_codes),
		cmocka_unit_test(test_env_requests),
		cmocka_unit_test(test_background_job_is_hung_up),
		cmocka_unit_test(test_second_server_on_a_live_socket_is_refused),
		cmocka_unit_test(test_stdin_and_large_transfers),
		cmocka_unit_test(test_pty),
		cmocka_unit_test(test_sftp_roundtrip),
		cmocka_unit_test(test_forwarding),
		cmocka_unit_test(test_concurrent_sessions),
		cmocka_unit_test(test_dropped_client_kills_session),
		cmocka_unit_test(test_pty_client_killed),
		cmocka_unit_test(test_signal_and_window_change_requests),
		cmocka_unit_test(test_abstract_socket_and_keys),
		cmocka_unit_test(test_abstract_socket_admits_only_root),
		cmocka_unit_test(test_stop_ends_sessions),
	};
	int failed = cmocka_run_group_tests_name("ssh_relay_checks", pure, NULL, NULL);
	failed += cmocka_run_group_tests_name("ssh_relay_live", live, setup_live, teardown_live);
	return failed;
}
