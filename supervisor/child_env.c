/* child_env.c - the ONE function that builds the environment of every child
 * the supervisor starts inside the sandbox (the workload now, SSH/exec session
 * children later). Keeping a single builder is what stops the proxy and CA
 * variables from going missing in one kind of child (the reference's most
 * repeated regression).
 */
#include <stdlib.h>
#include <string.h>

#include "supervisor/sup.h"

#define ENV_MAX_ENTRIES 8192u
#define ENV_MAX_NO_PROXY 4096u

/* Supervisor-only variables: never visible to a sandboxed child. */
static const char *const secret_vars[] = {
	"OPENSHELL_OCI_IMAGE_USER", "OPENSHELL_SANDBOX_UID", "OPENSHELL_SANDBOX_GID",
	"OPENSHELL_SANDBOX_TOKEN", "OPENSHELL_SANDBOX_TOKEN_FILE", "OPENSHELL_K8S_SA_TOKEN_FILE",
	"OPENSHELL_TLS_CA", "OPENSHELL_TLS_CERT", "OPENSHELL_TLS_KEY",
	"OPENSHELL_PROVIDER_SPIFFE_WORKLOAD_API_SOCKET", "OPENSHELL_NETWORK_RUNTIME_CAPABILITIES",
	NULL,
};

static const char *const proxy_url_vars[] = {
	"ALL_PROXY", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "grpc_proxy", NULL,
};

static const char default_no_proxy[] = "127.0.0.1,localhost,::1";

struct envbuf {
	char **v;
	size_t n, cap;
	bool failed;
};

static bool name_is(const char *entry, const char *name)
{
	size_t len = strlen(name);
	return strncmp(entry, name, len) == 0 && entry[len] == '=';
}

static bool is_secret(const char *entry)
{
	for (const char *const *s = secret_vars; *s; s++)
		if (name_is(entry, *s))
			return true;
	return false;
}

const char *child_env_get(char *const *env, const char *name)
{
	for (; env && *env; env++)
		if (name_is(*env, name))
			return *env + strlen(name) + 1;
	return NULL;
}

static void env_push(struct envbuf *b, char *entry)
{
	if (!entry || b->failed || b->n + 1 >= ENV_MAX_ENTRIES) {
		free(entry);
		b->failed = true;
		return;
	}
	if (b->n + 1 >= b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 64;
		char **v = realloc(b->v, cap * sizeof *v);
		if (!v) {
			free(entry);
			b->failed = true;
			return;
		}
		b->v = v;
		b->cap = cap;
	}
	b->v[b->n++] = entry;
	b->v[b->n] = NULL;
}

static char *join_kv(const char *name, const char *value)
{
	size_t ln = strlen(name), lv = strlen(value);
	char *s = malloc(ln + lv + 2);
	if (!s)
		return NULL;
	memcpy(s, name, ln);
	s[ln] = '=';
	memcpy(s + ln + 1, value, lv + 1);
	return s;
}

/* Sets name=value, replacing an existing entry. */
static void env_set(struct envbuf *b, const char *name, const char *value)
{
	char *entry = join_kv(name, value);
	if (!entry) {
		b->failed = true;
		return;
	}
	for (size_t i = 0; i < b->n; i++) {
		if (name_is(b->v[i], name)) {
			free(b->v[i]);
			b->v[i] = entry;
			return;
		}
	}
	env_push(b, entry);
}

static bool list_has(const char *list, const char *item, size_t len)
{
	const char *p = list;
	while (*p) {
		const char *comma = strchr(p, ',');
		size_t l = comma ? (size_t)(comma - p) : strlen(p);
		if (l == len && strncmp(p, item, len) == 0)
			return true;
		if (!comma)
			break;
		p = comma + 1;
	}
	return false;
}

/* Appends the entries of `user` (comma separated, trimmed) not yet in out. */
static void merge_no_proxy(char *out, size_t outlen, const char *user)
{
	for (const char *p = user; p && *p;) {
		const char *comma = strchr(p, ',');
		const char *end = comma ? comma : p + strlen(p);
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		const char *e = end;
		while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		size_t len = (size_t)(e - p), used = strlen(out);
		if (len && !list_has(out, p, len) && used + len + 2 <= outlen) {
			out[used] = ',';
			memcpy(out + used + 1, p, len);
			out[used + 1 + len] = '\0';
		}
		p = comma ? comma + 1 : end;
	}
}

static void set_proxy_vars(struct envbuf *b, char *const *inherited, const char *url)
{
	char no_proxy[ENV_MAX_NO_PROXY];
	memcpy(no_proxy, default_no_proxy, sizeof default_no_proxy);
	merge_no_proxy(no_proxy, sizeof no_proxy, child_env_get(inherited, "NO_PROXY"));
	merge_no_proxy(no_proxy, sizeof no_proxy, child_env_get(inherited, "no_proxy"));
	for (const char *const *v = proxy_url_vars; *v; v++)
		env_set(b, *v, url);
	env_set(b, "NO_PROXY", no_proxy);
	env_set(b, "no_proxy", no_proxy);
	env_set(b, "NODE_USE_ENV_PROXY", "1");
}

static void set_tls_vars(struct envbuf *b, const char *cert, const char *bundle)
{
	env_set(b, "NODE_EXTRA_CA_CERTS", cert);
	env_set(b, "DENO_CERT", cert);
	env_set(b, "SSL_CERT_FILE", bundle);
	env_set(b, "REQUESTS_CA_BUNDLE", bundle);
	env_set(b, "CURL_CA_BUNDLE", bundle);
	env_set(b, "GIT_SSL_CAINFO", bundle);
}

char **child_env_build(char *const *inherited, const struct child_env_params *p)
{
	struct envbuf b = { 0 };
	for (char *const *e = inherited; e && *e; e++) {
		if (strchr(*e, '=') && !is_secret(*e))
			env_push(&b, strdup(*e));
	}
	for (char *const *e = p->extra; e && *e; e++) {
		const char *eq = strchr(*e, '=');
		char name[256];
		if (!eq || (size_t)(eq - *e) >= sizeof name) {
			b.failed = true;
			break;
		}
		memcpy(name, *e, (size_t)(eq - *e));
		name[eq - *e] = '\0';
		env_set(&b, name, eq + 1);
	}
	env_set(&b, "OPENSHELL_SANDBOX", "1");
	if (p->home)
		env_set(&b, "HOME", p->home);
	if (p->user) {
		env_set(&b, "USER", p->user);
		env_set(&b, "LOGNAME", p->user);
	}
	if (!child_env_get(b.v, "SHELL"))
		env_set(&b, "SHELL", "/bin/bash");
	if (p->term)
		env_set(&b, "TERM", p->term);
	else if (!child_env_get(b.v, "TERM"))
		env_set(&b, "TERM", "dumb");
	if (!child_env_get(b.v, "PATH"))
		env_set(&b, "PATH", "/usr/local/bin:/usr/bin:/bin");
	if (p->proxy_url)
		set_proxy_vars(&b, inherited, p->proxy_url);
	if (p->ca_cert_path && p->ca_bundle_path)
		set_tls_vars(&b, p->ca_cert_path, p->ca_bundle_path);
	if (p->disable_git_ssh)
		env_set(&b, "GIT_SSH_COMMAND", SUP_GIT_SSH_DISABLED);
	if (b.failed || !b.v) {
		child_env_free(b.v);
		return NULL;
	}
	return b.v;
}

void child_env_free(char **env)
{
	if (!env)
		return;
	for (char **e = env; *e; e++)
		free(*e);
	free(env);
}
