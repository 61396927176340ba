/* Unit tests for landlock/: preparing and describing plans, and a forked child
 * that applies a plan over a scratch tree (runs as root: the paths are opened
 * privileged, then Landlock confines the child regardless of its uid). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "landlock/landlock.h"
#include "landlock/ll_int.h"
#include "policy/policy.h"

#define TREE_TEMPLATE "/var/tmp/osll-test.XXXXXX" /* not under the /tmp baseline */

struct tree {
	char base[64];
	char ro[128], ro_file[160], rw[128], rw_a[160], rw_b[160], hidden[128], lone[160];
	char missing[128];
	char outside[96]; /* a sibling of base: outside every rule */
};

static void write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static void join(char *out, size_t len, const char *a, const char *b)
{
	int n = snprintf(out, len, "%s/%s", a, b);
	assert_true(n > 0 && (size_t)n < len);
}

static int tree_setup(void **state)
{
	struct tree *t = calloc(1, sizeof *t);
	assert_non_null(t);
	snprintf(t->base, sizeof t->base, "%s", TREE_TEMPLATE);
	assert_non_null(mkdtemp(t->base));
	join(t->ro, sizeof t->ro, t->base, "ro");
	join(t->ro_file, sizeof t->ro_file, t->ro, "file.txt");
	join(t->rw, sizeof t->rw, t->base, "rw");
	join(t->rw_a, sizeof t->rw_a, t->rw, "a");
	join(t->rw_b, sizeof t->rw_b, t->rw, "b");
	join(t->hidden, sizeof t->hidden, t->base, "hidden");
	join(t->lone, sizeof t->lone, t->base, "lone.txt");
	join(t->missing, sizeof t->missing, t->base, "does-not-exist");
	snprintf(t->outside, sizeof t->outside, "%s.outside", t->base);
	const char *dirs[] = { t->ro, t->rw, t->rw_a, t->rw_b, t->hidden };
	for (size_t i = 0; i < 5; i++)
		assert_int_equal(mkdir(dirs[i], 0755), 0);
	write_file(t->ro_file, "read me");
	write_file(t->lone, "lone file");
	char p[256];
	join(p, sizeof p, t->hidden, "secret.txt");
	write_file(p, "secret");
	join(p, sizeof p, t->rw_a, "moved.txt");
	write_file(p, "move me");
	*state = t;
	return 0;
}

static int tree_teardown(void **state)
{
	struct tree *t = *state;
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf -- '%s'", t->base);
	int rc = system(cmd);
	unlink(t->outside); /* only exists if confinement failed */
	free(t);
	return rc == 0 ? 0 : -1;
}

/* A policy built by hand (the loader is tested elsewhere). */
struct fs_policy {
	struct policy p;
	char *ro[4], *rw[4];
};

static void fs_policy_init(struct fs_policy *fp, const struct tree *t,
			   enum policy_landlock_compat compat)
{
	memset(fp, 0, sizeof *fp);
	fp->ro[0] = (char *)t->ro;
	fp->ro[1] = (char *)t->lone;
	fp->rw[0] = (char *)t->rw;
	fp->p.version = 1;
	fp->p.has_filesystem_policy = true;
	fp->p.read_only = fp->ro;
	fp->p.n_read_only = 2;
	fp->p.read_write = fp->rw;
	fp->p.n_read_write = 1;
	fp->p.landlock_compat = compat;
}

struct warnings {
	char text[2048];
	int count;
};

static void collect_warning(void *ud, const char *msg)
{
	struct warnings *w = ud;
	w->count++;
	size_t used = strlen(w->text);
	snprintf(w->text + used, sizeof w->text - used, "%s\n", msg);
}

static json_object *describe_json(const struct landlock_plan *plan)
{
	char buf[16384];
	int n = landlock_describe(plan, buf, sizeof buf);
	assert_true(n > 0 && (size_t)n < sizeof buf);
	json_object *o = json_tokener_parse(buf);
	assert_non_null(o);
	return o;
}

static json_object *get(json_object *o, const char *key)
{
	json_object *v = NULL;
	assert_true(json_object_object_get_ex(o, key, &v));
	return v;
}

/* The entry for path in the "rules" or "skipped" array, or NULL. */
static json_object *find_path(json_object *root, const char *list, const char *path)
{
	json_object *arr = get(root, list);
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *e = json_object_array_get_idx(arr, i);
		if (strcmp(json_object_get_string(get(e, "path")), path) == 0)
			return e;
	}
	return NULL;
}

static void test_abi_probe(void **state)
{
	(void)state;
	int abi = landlock_abi_version();
	if (abi <= 0)
		skip();
	assert_true(abi >= 1);
}

static void test_no_filesystem_policy(void **state)
{
	(void)state;
	struct policy p = { .version = 1, .include_workdir = true };
	struct landlock_plan *plan = (struct landlock_plan *)1;
	char err[LANDLOCK_ERR_MIN] = "";
	assert_int_equal(landlock_prepare(&p, "/work", NULL, NULL, NULL, &plan, err, sizeof err), 0);
	assert_null(plan);
	assert_false(landlock_plan_enforced(NULL));
	assert_int_equal(landlock_apply(NULL, err, sizeof err), 0);
	char buf[128];
	int n = landlock_describe(NULL, buf, sizeof buf);
	assert_true(n > 0);
	assert_string_equal(buf, "{\"enabled\":false,\"reason\":\"no filesystem_policy\"}");
	landlock_plan_free(NULL);
}

static void test_prepare_describe(void **state)
{
	struct tree *t = *state;
	if (landlock_abi_version() <= 0)
		skip();
	struct fs_policy fp;
	fs_policy_init(&fp, t, POLICY_LANDLOCK_BEST_EFFORT);
	fp.p.include_workdir = true;
	fp.ro[2] = "/tmp"; /* an explicit read-only /tmp stays read-only */
	fp.p.n_read_only = 3;
	const char *extra_ro[] = { t->hidden, NULL };
	struct landlock_plan *plan = NULL;
	char err[LANDLOCK_ERR_MIN] = "";
	assert_int_equal(landlock_prepare(&fp.p, t->rw_b, extra_ro, NULL, NULL, &plan, err,
					  sizeof err), 0);
	assert_non_null(plan);
	assert_true(landlock_plan_enforced(plan));
	json_object *root = describe_json(plan);
	assert_true(json_object_get_boolean(get(root, "enabled")));
	assert_true(json_object_get_boolean(get(root, "enforced")));
	assert_int_equal(json_object_get_int(get(root, "abi")), landlock_abi_version());
	assert_string_equal(json_object_get_string(get(root, "compatibility")), "best_effort");
	json_object *e = find_path(root, "rules", t->rw);
	assert_non_null(e);
	assert_string_equal(json_object_get_string(get(e, "access")), "read_write");
	assert_string_equal(json_object_get_string(get(e, "type")), "dir");
	e = find_path(root, "rules", t->lone);
	assert_non_null(e);
	assert_string_equal(json_object_get_string(get(e, "type")), "file");
	e = find_path(root, "rules", t->rw_b);
	assert_non_null(e);
	assert_string_equal(json_object_get_string(get(e, "source")), "workdir");
	e = find_path(root, "rules", t->hidden);
	assert_non_null(e);
	assert_string_equal(json_object_get_string(get(e, "source")), "supervisor");
	e = find_path(root, "rules", "/tmp");
	assert_non_null(e);
	assert_string_equal(json_object_get_string(get(e, "access")), "read_only");
	assert_string_equal(json_object_get_string(get(e, "source")), "policy");
	e = find_path(root, "rules", "/dev/null");
	assert_non_null(e);
	assert_string_equal(json_object_get_string(get(e, "source")), "baseline");
	const char *handled = json_object_to_json_string(get(root, "handled_access_fs"));
	assert_non_null(strstr(handled, "\"read_file\""));
	if (landlock_abi_version() >= 2)
		assert_non_null(strstr(handled, "\"refer\""));
	if (landlock_abi_version() >= 3)
		assert_non_null(strstr(handled, "\"truncate\""));
	if (landlock_abi_version() >= 5)
		assert_non_null(strstr(handled, "\"ioctl_dev\""));
	if (landlock_abi_version() >= 6)
		assert_string_equal(json_object_to_json_string(get(root, "scoped")),
				    "[ \"abstract_unix_socket\", \"signal\" ]");
	json_object_put(root);
	char tiny[16];
	int n = landlock_describe(plan, tiny, sizeof tiny);
	assert_true(n >= (int)sizeof tiny);
	assert_string_equal(tiny, "");
	landlock_plan_free(plan);
}

static void test_hard_requirement_missing_path(void **state)
{
	struct tree *t = *state;
	if (landlock_abi_version() < LANDLOCK_MIN_HARD_ABI)
		skip();
	struct fs_policy fp;
	fs_policy_init(&fp, t, POLICY_LANDLOCK_HARD_REQUIREMENT);
	fp.rw[1] = t->missing;
	fp.p.n_read_write = 2;
	struct landlock_plan *plan = NULL;
	char err[LANDLOCK_ERR_MIN] = "";
	assert_int_equal(landlock_prepare(&fp.p, NULL, NULL, NULL, NULL, &plan, err, sizeof err),
			 -1);
	assert_null(plan);
	assert_non_null(strstr(err, "hard_requirement"));
	assert_non_null(strstr(err, t->missing));
	assert_non_null(strstr(err, "path does not exist"));
}

static void test_best_effort_skips_missing_path(void **state)
{
	struct tree *t = *state;
	if (landlock_abi_version() <= 0)
		skip();
	struct fs_policy fp;
	fs_policy_init(&fp, t, POLICY_LANDLOCK_BEST_EFFORT);
	fp.ro[2] = t->missing;
	fp.p.n_read_only = 3;
	struct warnings w = { .count = 0 };
	struct landlock_event_sink sink = { .warn = collect_warning, .ud = &w };
	struct landlock_plan *plan = NULL;
	char err[LANDLOCK_ERR_MIN] = "";
	assert_int_equal(landlock_prepare(&fp.p, NULL, NULL, NULL, &sink, &plan, err, sizeof err),
			 0);
	assert_non_null(plan);
	assert_non_null(strstr(w.text, t->missing));
	json_object *root = describe_json(plan);
	json_object *e = find_path(root, "skipped", t->missing);
	assert_non_null(e);
	assert_string_equal(json_object_get_string(get(e, "reason")), "path does not exist");
	assert_null(find_path(root, "rules", t->missing));
	json_object_put(root);
	landlock_plan_free(plan);
}

/* A symlink the agent could have planted (owned by its uid, e.g. left in a
 * persistent workspace by an earlier run) must not carry a grant to where it
 * points; links owned by root (the image's, like /lib64) resolve as usual,
 * relative or absolute, and a root link into an agent link is refused too. */
static void test_untrusted_symlinks_are_not_followed(void **state)
{
	struct tree *t = *state;
	if (landlock_abi_version() <= 0 || geteuid() != 0)
		skip();
	char agent_link[192], root_link[192], chained[192], root_rel[192], via[224];
	join(agent_link, sizeof agent_link, t->base, "agent-link");
	join(root_link, sizeof root_link, t->base, "root-link");
	join(chained, sizeof chained, t->base, "chained");
	join(root_rel, sizeof root_rel, t->base, "root-rel");
	join(via, sizeof via, agent_link, "secret.txt");
	assert_int_equal(symlink(t->hidden, agent_link), 0);
	assert_int_equal(lchown(agent_link, 1500, 1500), 0);
	assert_int_equal(symlink(t->rw_a, root_link), 0);
	assert_int_equal(symlink(agent_link, chained), 0);
	assert_int_equal(symlink("rw/b", root_rel), 0);
	struct fs_policy fp;
	fs_policy_init(&fp, t, POLICY_LANDLOCK_BEST_EFFORT);
	fp.rw[1] = agent_link;
	fp.rw[2] = root_link;
	fp.rw[3] = chained;
	fp.p.n_read_write = 4;
	fp.ro[2] = via;
	fp.ro[3] = root_rel;
	fp.p.n_read_only = 4;
	struct warnings w = { .count = 0 };
	struct landlock_event_sink sink = { .warn = collect_warning, .ud = &w };
	struct landlock_plan *plan = NULL;
	char err[LANDLOCK_ERR_MIN] = "";
	assert_int_equal(landlock_prepare(&fp.p, NULL, NULL, NULL, &sink, &plan, err, sizeof err),
			 0);
	assert_non_null(plan);
	json_object *root = describe_json(plan);
	const char *refused[] = { agent_link, chained, via };
	for (size_t i = 0; i < 3; i++) {
		json_object *e = find_path(root, "skipped", refused[i]);
		assert_non_null(e);
		assert_string_equal(json_object_get_string(get(e, "reason")),
				    "path goes through a symlink not owned by root");
		assert_null(find_path(root, "rules", refused[i]));
		assert_non_null(strstr(w.text, refused[i]));
	}
	json_object *ok = find_path(root, "rules", root_link);
	assert_non_null(ok);
	assert_string_equal(json_object_get_string(get(ok, "type")), "dir");
	assert_non_null(find_path(root, "rules", root_rel));
	json_object_put(root);
	landlock_plan_free(plan);
	/* hard_requirement: fatal, with the reason */
	fs_policy_init(&fp, t, POLICY_LANDLOCK_HARD_REQUIREMENT);
	fp.rw[1] = agent_link;
	fp.p.n_read_write = 2;
	plan = NULL;
	if (landlock_abi_version() >= LANDLOCK_MIN_HARD_ABI) {
		assert_int_equal(landlock_prepare(&fp.p, NULL, NULL, NULL, NULL, &plan, err,
						  sizeof err), -1);
		assert_null(plan);
		assert_non_null(strstr(err, "symlink not owned by root"));
	}
}

static void test_bad_extra_paths(void **state)
{
	struct tree *t = *state;
	struct fs_policy fp;
	fs_policy_init(&fp, t, POLICY_LANDLOCK_BEST_EFFORT);
	struct landlock_plan *plan = NULL;
	char err[LANDLOCK_ERR_MIN] = "";
	const char *relative[] = { "etc/ssl", NULL };
	assert_int_equal(landlock_prepare(&fp.p, NULL, relative, NULL, NULL, &plan, err,
					  sizeof err), -1);
	assert_null(plan);
	assert_non_null(strstr(err, "must be absolute"));
	const char *many[LANDLOCK_MAX_EXTRA_PATHS + 2];
	for (size_t i = 0; i < LANDLOCK_MAX_EXTRA_PATHS + 1; i++)
		many[i] = "/usr";
	many[LANDLOCK_MAX_EXTRA_PATHS + 1] = NULL;
	assert_int_equal(landlock_prepare(&fp.p, NULL, NULL, many, NULL, &plan, err, sizeof err),
			 -1);
	assert_non_null(strstr(err, "supervisor Landlock paths"));
}

/* ---- enforcement in a forked child ---- */

struct probe {
	int fd;
	int failures;
};

static void report(struct probe *p, int line, const char *what, int err)
{
	char buf[512];
	int n = snprintf(buf, sizeof buf, "line %d: %s (errno %d)\n", line, what, err);
	if (n > 0 && write(p->fd, buf, (size_t)n) < 0)
		_exit(3);
	p->failures++;
}

#define CHECK(p, cond)                                          \
	do {                                                    \
		errno = 0;                                      \
		if (!(cond))                                    \
			report((p), __LINE__, #cond, errno);    \
	} while (0)

static int open_errno(const char *path, int flags)
{
	int fd = open(path, flags | O_CLOEXEC, 0644);
	if (fd >= 0) {
		close(fd);
		return 0;
	}
	return errno;
}

static void landlock_checks(struct probe *p, const struct tree *t, int abi, const char *sock)
{
	char path[256], path2[256];
	/* not listed: invisible */
	join(path, sizeof path, t->hidden, "secret.txt");
	CHECK(p, open_errno(path, O_RDONLY) == EACCES);
	CHECK(p, open_errno(t->hidden, O_RDONLY | O_DIRECTORY) == EACCES);
	join(path, sizeof path, t->base, "new.txt");
	CHECK(p, open_errno(path, O_WRONLY | O_CREAT) == EACCES);
	CHECK(p, open_errno(t->outside, O_WRONLY | O_CREAT) == EACCES);
	/* read_only: read yes, write no */
	CHECK(p, open_errno(t->ro_file, O_RDONLY) == 0);
	CHECK(p, open_errno(t->ro, O_RDONLY | O_DIRECTORY) == 0);
	CHECK(p, open_errno(t->ro_file, O_WRONLY) == EACCES);
	join(path, sizeof path, t->ro, "new.txt");
	CHECK(p, open_errno(path, O_WRONLY | O_CREAT) == EACCES);
	CHECK(p, unlink(t->ro_file) == -1 && errno == EACCES);
	if (abi >= 3)
		CHECK(p, truncate(t->ro_file, 0) == -1 && errno == EACCES);
	/* a read-only file rule */
	CHECK(p, open_errno(t->lone, O_RDONLY) == 0);
	CHECK(p, open_errno(t->lone, O_WRONLY) == EACCES);
	/* read_write: create, write, cross-directory rename (REFER, the uv case) */
	join(path, sizeof path, t->rw_a, "made.txt");
	CHECK(p, open_errno(path, O_WRONLY | O_CREAT) == 0);
	join(path, sizeof path, t->rw_a, "moved.txt");
	join(path2, sizeof path2, t->rw_b, "moved.txt");
	if (abi >= 2)
		CHECK(p, rename(path, path2) == 0);
	join(path, sizeof path, t->rw_a, "sub");
	CHECK(p, mkdir(path, 0755) == 0);
	CHECK(p, rmdir(path) == 0);
	/* out of the tree into read-only: denied */
	join(path, sizeof path, t->rw_a, "made.txt");
	join(path2, sizeof path2, t->ro, "made.txt");
	CHECK(p, rename(path, path2) == -1 && (errno == EACCES || errno == EXDEV));
	/* baseline */
	CHECK(p, open_errno("/dev/null", O_WRONLY) == 0);
	CHECK(p, open_errno("/proc/self/status", O_RDONLY) == 0);
	if (abi >= 6) {
		/* scoping: the test process is outside the domain */
		CHECK(p, kill(getppid(), 0) == -1 && errno == EPERM);
		CHECK(p, kill(getpid(), 0) == 0);
		int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		size_t sl = strlen(sock + 1);
		memcpy(sa.sun_path + 1, sock + 1, sl);
		socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + sl);
		CHECK(p, s >= 0 && connect(s, (struct sockaddr *)&sa, alen) == -1 &&
			 errno == EPERM);
		if (s >= 0)
			close(s);
	}
}

/* An abstract socket listening outside the sandbox. */
static int listen_abstract(const char *name)
{
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(s >= 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t sl = strlen(name + 1);
	memcpy(sa.sun_path + 1, name + 1, sl);
	socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + sl);
	assert_int_equal(bind(s, (struct sockaddr *)&sa, alen), 0);
	assert_int_equal(listen(s, 1), 0);
	return s;
}

static void test_enforced_in_child(void **state)
{
	struct tree *t = *state;
	int abi = landlock_abi_version();
	if (abi <= 0)
		skip();
	struct fs_policy fp;
	fs_policy_init(&fp, t, POLICY_LANDLOCK_BEST_EFFORT);
	struct landlock_plan *plan = NULL;
	char err[LANDLOCK_ERR_MIN] = "";
	assert_int_equal(landlock_prepare(&fp.p, NULL, NULL, NULL, NULL, &plan, err, sizeof err), 0);
	assert_non_null(plan);
	char sock[64];
	snprintf(sock, sizeof sock, "@osll-test-%d", (int)getpid());
	int ls = listen_abstract(sock);
	int pfd[2];
	assert_int_equal(pipe(pfd), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(pfd[0]);
		struct probe pr = { .fd = pfd[1] };
		char cerr[LANDLOCK_ERR_MIN];
		if (landlock_apply(plan, cerr, sizeof cerr) != 0) {
			report(&pr, __LINE__, cerr, errno);
			_exit(2);
		}
		landlock_checks(&pr, t, abi, sock);
		_exit(pr.failures ? 1 : 0);
	}
	close(pfd[1]);
	char out[4096];
	size_t got = 0;
	ssize_t n;
	while ((n = read(pfd[0], out + got, sizeof out - 1 - got)) > 0)
		got += (size_t)n;
	out[got] = '\0';
	close(pfd[0]);
	close(ls);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (got)
		print_error("[landlock child]\n%s", out);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	/* the plan is reusable and the parent stays unconfined */
	char path[256];
	join(path, sizeof path, t->hidden, "secret.txt");
	assert_int_equal(open_errno(path, O_RDONLY), 0);
	landlock_plan_free(plan);
}

/* ---- older kernels, simulated by handling fewer rights ---- */

static struct landlock_plan *prepare_at_abi(const struct tree *t, int abi,
					    enum policy_landlock_compat compat,
					    struct warnings *w, char *err, size_t errlen, int *rc)
{
	struct fs_policy fp;
	fs_policy_init(&fp, t, compat);
	struct landlock_event_sink sink = { .warn = collect_warning, .ud = w };
	struct ll_inputs in = { .p = &fp.p, .sink = &sink };
	struct landlock_plan *plan = NULL;
	*rc = ll_prepare_abi(&in, abi, &plan, err, errlen);
	return plan;
}

static void test_old_abi_best_effort_degrades(void **state)
{
	struct tree *t = *state;
	int real = landlock_abi_version();
	if (real < 2)
		skip();
	static const struct {
		int abi;
		const char *absent_right;
		const char *warning;
	} cases[] = {
		{ 1, "\"refer\"", "cross-directory rename" },
		{ 2, "\"truncate\"", "truncate() of read-only files" },
		{ 4, "\"ioctl_dev\"", "ioctl on device files" },
		{ 5, NULL, "not scoped" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		if (cases[i].abi >= real)
			continue;
		struct warnings w = { .count = 0 };
		char err[LANDLOCK_ERR_MIN] = "";
		int rc;
		struct landlock_plan *plan = prepare_at_abi(t, cases[i].abi,
							    POLICY_LANDLOCK_BEST_EFFORT, &w, err,
							    sizeof err, &rc);
		assert_int_equal(rc, 0);
		assert_true(landlock_plan_enforced(plan));
		assert_non_null(strstr(w.text, cases[i].warning));
		assert_non_null(strstr(w.text, "not scoped"));
		json_object *root = describe_json(plan);
		const char *handled = json_object_to_json_string(get(root, "handled_access_fs"));
		if (cases[i].absent_right)
			assert_null(strstr(handled, cases[i].absent_right));
		assert_int_equal(json_object_array_length(get(root, "scoped")), 0);
		assert_true(json_object_array_length(get(root, "degraded")) >= 1);
		json_object_put(root);
		landlock_plan_free(plan);
	}
}

static void test_old_abi_hard_requirement(void **state)
{
	struct tree *t = *state;
	int real = landlock_abi_version();
	if (real < LANDLOCK_MIN_HARD_ABI)
		skip();
	struct warnings w = { .count = 0 };
	char err[LANDLOCK_ERR_MIN] = "";
	int rc;
	struct landlock_plan *plan = prepare_at_abi(t, 2, POLICY_LANDLOCK_HARD_REQUIREMENT, &w, err,
						    sizeof err, &rc);
	assert_int_equal(rc, -1);
	assert_null(plan);
	assert_non_null(strstr(err, "ABI 2 is below 3"));
	/* ABI 3 meets the policy; the missing extras are warnings */
	memset(&w, 0, sizeof w);
	plan = prepare_at_abi(t, LANDLOCK_MIN_HARD_ABI, POLICY_LANDLOCK_HARD_REQUIREMENT, &w, err,
			      sizeof err, &rc);
	assert_int_equal(rc, 0);
	assert_true(landlock_plan_enforced(plan));
	if (real > LANDLOCK_MIN_HARD_ABI)
		assert_non_null(strstr(w.text, "not scoped"));
	landlock_plan_free(plan);
}

static void test_unavailable(void **state)
{
	struct tree *t = *state;
	struct warnings w = { .count = 0 };
	char err[LANDLOCK_ERR_MIN] = "";
	int rc;
	struct landlock_plan *plan = prepare_at_abi(t, -ENOSYS, POLICY_LANDLOCK_BEST_EFFORT, &w, err,
						    sizeof err, &rc);
	assert_int_equal(rc, 0);
	assert_non_null(plan);
	assert_false(landlock_plan_enforced(plan));
	assert_non_null(strstr(w.text, "NOT enforced"));
	assert_int_equal(landlock_apply(plan, err, sizeof err), 0); /* nothing to apply */
	json_object *root = describe_json(plan);
	assert_true(json_object_get_boolean(get(root, "enabled")));
	assert_false(json_object_get_boolean(get(root, "enforced")));
	assert_string_equal(json_object_get_string(get(root, "reason")),
			    "not implemented by this kernel");
	json_object_put(root);
	landlock_plan_free(plan);
	plan = prepare_at_abi(t, -EOPNOTSUPP, POLICY_LANDLOCK_HARD_REQUIREMENT, &w, err, sizeof err,
			      &rc);
	assert_int_equal(rc, -1);
	assert_null(plan);
	assert_non_null(strstr(err, "Landlock unavailable (built in but disabled"));
}

/* Without REFER handled (ABI 1) a cross-directory rename is always denied:
 * the uv failure the REFER right fixes. */
static void test_abi1_denies_cross_directory_rename(void **state)
{
	struct tree *t = *state;
	if (landlock_abi_version() < 2)
		skip();
	struct warnings w = { .count = 0 };
	char err[LANDLOCK_ERR_MIN] = "";
	int rc;
	struct landlock_plan *plan = prepare_at_abi(t, 1, POLICY_LANDLOCK_BEST_EFFORT, &w, err,
						    sizeof err, &rc);
	assert_int_equal(rc, 0);
	char from[256], to[256];
	join(from, sizeof from, t->rw_a, "moved.txt");
	join(to, sizeof to, t->rw_b, "moved.txt");
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char cerr[LANDLOCK_ERR_MIN];
		if (landlock_apply(plan, cerr, sizeof cerr) != 0)
			_exit(2);
		_exit(rename(from, to) == -1 && errno == EXDEV ? 0 : 1);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	landlock_plan_free(plan);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_abi_probe),
		cmocka_unit_test(test_no_filesystem_policy),
		cmocka_unit_test_setup_teardown(test_prepare_describe, tree_setup, tree_teardown),
		cmocka_unit_test_setup_teardown(test_hard_requirement_missing_path, tree_setup,
						tree_teardown),
		cmocka_unit_test_setup_teardown(test_best_effort_skips_missing_path, tree_setup,
						tree_teardown),
		cmocka_unit_test_setup_teardown(test_bad_extra_paths, tree_setup, tree_teardown),
		cmocka_unit_test_setup_teardown(test_untrusted_symlinks_are_not_followed,
						tree_setup, tree_teardown),
		cmocka_unit_test_setup_teardown(test_enforced_in_child, tree_setup, tree_teardown),
		cmocka_unit_test_setup_teardown(test_old_abi_best_effort_degrades, tree_setup,
						tree_teardown),
		cmocka_unit_test_setup_teardown(test_old_abi_hard_requirement, tree_setup,
						tree_teardown),
		cmocka_unit_test_setup_teardown(test_unavailable, tree_setup, tree_teardown),
		cmocka_unit_test_setup_teardown(test_abi1_denies_cross_directory_rename, tree_setup,
						tree_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
