/* cli.c - command line of the main command (flags compatible with the
 * reference where they exist there). */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "supervisor/sup.h"

enum {
	OPT_POLICY_DATA = 1000,
	OPT_POLICY_RULES,
	OPT_LOG_LEVEL,
	OPT_AUDIT_LOG,
	OPT_PROXY_PORT,
	OPT_SANDBOX_ID,
	OPT_SANDBOX,
	OPT_VERSION,
	OPT_SSH_SOCKET_PATH,
	OPT_SSH_AUTHORIZED_KEYS,
	OPT_MODE,
	OPT_PROXY_LISTEN,
	OPT_PROXY_URL,
	OPT_TLS_DIR,
	OPT_READY_TIMEOUT,
	OPT_UPSTREAM_CA, /* TLS interception wiring (issue 4) */
	OPT_CREDENTIALS,
	OPT_TOOL_BROKER, /* egress integrations (issue 9) */
	OPT_TOOL_HOST,
	OPT_UPSTREAM_PROXY, /* upstream proxy chaining (issue 9) */
	OPT_UPSTREAM_NO_PROXY,
	OPT_UPSTREAM_AUTH_FILE,
	OPT_UPSTREAM_AUTH_INSECURE,
	OPT_UPSTREAM_BY_HOSTNAME,
};

static const struct option long_opts[] = {
	{ "policy-data", required_argument, NULL, OPT_POLICY_DATA },
	{ "policy-rules", required_argument, NULL, OPT_POLICY_RULES },
	{ "workdir", required_argument, NULL, 'w' },
	{ "timeout", required_argument, NULL, 't' },
	{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
	{ "audit-log", required_argument, NULL, OPT_AUDIT_LOG },
	{ "proxy-port", required_argument, NULL, OPT_PROXY_PORT },
	{ "sandbox-id", required_argument, NULL, OPT_SANDBOX_ID },
	{ "sandbox", required_argument, NULL, OPT_SANDBOX },
	{ "ssh-socket-path", required_argument, NULL, OPT_SSH_SOCKET_PATH },
	{ "ssh-authorized-keys", required_argument, NULL, OPT_SSH_AUTHORIZED_KEYS },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ "mode", required_argument, NULL, OPT_MODE },
	{ "proxy-listen", required_argument, NULL, OPT_PROXY_LISTEN },
	{ "proxy-url", required_argument, NULL, OPT_PROXY_URL },
	{ "tls-dir", required_argument, NULL, OPT_TLS_DIR },
	{ "ready-timeout", required_argument, NULL, OPT_READY_TIMEOUT },
	{ "upstream-ca", required_argument, NULL, OPT_UPSTREAM_CA },
	{ "credentials", required_argument, NULL, OPT_CREDENTIALS },
	{ "tool-broker", required_argument, NULL, OPT_TOOL_BROKER },
	{ "tool-host", required_argument, NULL, OPT_TOOL_HOST },
	{ "upstream-proxy", required_argument, NULL, OPT_UPSTREAM_PROXY },
	{ "upstream-no-proxy", required_argument, NULL, OPT_UPSTREAM_NO_PROXY },
	{ "upstream-proxy-auth-file", required_argument, NULL, OPT_UPSTREAM_AUTH_FILE },
	{ "upstream-proxy-auth-allow-insecure", no_argument, NULL, OPT_UPSTREAM_AUTH_INSECURE },
	{ "upstream-proxy-connect-by-hostname", no_argument, NULL, OPT_UPSTREAM_BY_HOSTNAME },
	{ NULL, 0, NULL, 0 },
};

static void usage(FILE *out)
{
	fputs("usage: openshell-sandbox [OPTIONS] [--] [COMMAND [ARG...]]\n"
	      "       openshell-sandbox policy check FILE...\n"
	      "       openshell-sandbox connect [--socket P] [-- COMMAND...]\n"
	      "       openshell-sandbox ssh-proxy --socket P\n"
	      "\n"
	      "  --policy-data FILE   YAML policy (env OPENSHELL_POLICY_DATA); default: deny all egress\n"
	      "  --policy-rules FILE  accepted for compatibility; the YAML is evaluated natively\n"
	      "  -w, --workdir DIR    working directory of the workload\n"
	      "  -t, --timeout SECS   SIGTERM the workload after SECS (exit 124), 0 = never\n"
	      "  --log-level LEVEL    error|warn|info|debug (env OPENSHELL_LOG_LEVEL, default warn)\n"
	      "  --audit-log FILE     JSONL audit events (default stderr)\n"
	      "  --proxy-port PORT    proxy port on the sandbox's proxy address (default 3128)\n"
	      "  --sandbox-id ID      sandbox id for logs (env OPENSHELL_SANDBOX_ID)\n"
	      "  --sandbox NAME       sandbox name for logs (env OPENSHELL_SANDBOX)\n"
	      "  --mode LIST          network,process (default), network or process (sidecar)\n"
	      "  --proxy-listen A:P   network mode: proxy address (default 0.0.0.0:3128)\n"
	      "  --proxy-url URL      process mode: the sidecar proxy, http://HOST:PORT\n"
	      "  --tls-dir DIR        CA files and .ready (env OPENSHELL_PROXY_TLS_DIR,\n"
	      "                       default /etc/openshell-tls)\n"
	      "  --ready-timeout S    process mode: wait for DIR/.ready (default 30)\n"
	      "  --upstream-ca FILE   extra PEM CAs trusted for upstream TLS (repeatable)\n"
	      "  --credentials FILE   credential values replacing placeholders (root, 0600)\n"
	      "  --tool-broker B      tool calls go to B: unix:/PATH or http://IP:PORT\n"
	      "  --tool-host NAME     the tool route's name (default tools.openshell.internal)\n"
	      "  --upstream-proxy URL chain egress through a corporate proxy http://HOST:PORT\n"
	      "  --upstream-no-proxy LIST  destinations dialed directly (names, .suffix,\n"
	      "                       CIDRs; each optionally :PORT)\n"
	      "  --upstream-proxy-auth-file FILE  user:pass for the corporate proxy (root,\n"
	      "                       0600); needs --upstream-proxy-auth-allow-insecure\n"
	      "  --upstream-proxy-auth-allow-insecure  accept sending them in clear text\n"
	      "  --upstream-proxy-connect-by-hostname  name the host upstream, not its address\n"
	      "  --ssh-socket-path P  embedded SSH server on Unix socket P, '@name' = abstract\n"
	      "                       (env OPENSHELL_SSH_SOCKET_PATH); reaching it authenticates\n"
	      "  --ssh-authorized-keys FILE  require one of these public keys for SSH\n"
	      "  --version, --help\n"
	      "\n"
	      "COMMAND defaults to OPENSHELL_MAIN_PROCESS_SPEC, else /bin/bash -l.\n", out);
}

static int parse_u32(const char *s, unsigned long max, unsigned long *out)
{
	char *end = NULL;
	if (!s || !*s || *s == '-' || *s == '+')
		return -1;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || *end || v > max)
		return -1;
	*out = v;
	return 0;
}

static const char *env_or(const char *name, const char *fallback)
{
	const char *v = getenv(name);
	return (v && *v) ? v : fallback;
}

static int parse_tool_broker(const char *arg, struct sup_options *opt)
{
	char err[256];
	if (proxy_tool_broker_parse(arg, &opt->tool_broker, err, sizeof err) != 0) {
		fprintf(stderr, "openshell-sandbox: %s\n", err);
		return 2;
	}
	return 0;
}

/* A DNS name of letters, digits, '-' and '.', not the host alias. */
static int parse_tool_host(const char *arg, struct sup_options *opt)
{
	size_t n = strlen(arg);
	bool ok = n > 0 && n <= 253 && arg[0] != '.' && arg[0] != '-' && arg[n - 1] != '.' &&
		  strstr(arg, "..") == NULL && strcasecmp(arg, PROXY_HOST_ALIAS) != 0;
	for (size_t i = 0; ok && i < n; i++)
		ok = isalnum((unsigned char)arg[i]) || arg[i] == '-' || arg[i] == '.';
	if (!ok) {
		fprintf(stderr, "openshell-sandbox: --tool-host: '%s' is not a DNS name "
			"(letters, digits, '-', '.'; not %s)\n", arg, PROXY_HOST_ALIAS);
		return 2;
	}
	opt->tool_host = arg;
	return 0;
}

/* Flags whose second value would silently win are refused instead. */
static int set_once(const char **slot, const char *arg, const char *flag)
{
	if (*slot != NULL) {
		fprintf(stderr, "openshell-sandbox: %s given more than once\n", flag);
		return 2;
	}
	*slot = arg;
	return 0;
}

static int apply_option(int c, const char *arg, struct sup_options *opt)
{
	unsigned long v;
	switch (c) {
	case OPT_POLICY_DATA: opt->policy_data = arg; return 0;
	case OPT_POLICY_RULES: opt->policy_rules = arg; return 0;
	case 'w': opt->workdir = arg; return 0;
	case OPT_AUDIT_LOG: opt->audit_log = arg; return 0;
	case OPT_SANDBOX_ID: opt->sandbox_id = arg; return 0;
	case OPT_SANDBOX: opt->sandbox_name = arg; return 0;
	case OPT_SSH_SOCKET_PATH: opt->ssh_socket_path = arg; return 0;
	case OPT_SSH_AUTHORIZED_KEYS: opt->ssh_authorized_keys = arg; return 0;
	case 't':
		if (parse_u32(arg, UINT_MAX, &v) != 0) {
			fprintf(stderr, "openshell-sandbox: --timeout: '%s' is not a number of seconds\n", arg);
			return 2;
		}
		opt->timeout_secs = (unsigned)v;
		return 0;
	case OPT_PROXY_PORT:
		if (parse_u32(arg, 65535, &v) != 0 || v == 0) {
			fprintf(stderr, "openshell-sandbox: --proxy-port: '%s' is not a port (1-65535)\n", arg);
			return 2;
		}
		opt->proxy_port = (uint16_t)v;
		return 0;
	case OPT_MODE:
		if (sup_parse_mode(arg, &opt->mode) != 0)
			return 2;
		return 0;
	case OPT_PROXY_LISTEN: opt->proxy_listen = arg; return 0;
	case OPT_PROXY_URL: opt->proxy_url = arg; return 0;
	case OPT_TLS_DIR: opt->tls_dir = arg; return 0;
	case OPT_CREDENTIALS: opt->credentials = arg; return 0; /* issue 4 */
	case OPT_TOOL_BROKER: return parse_tool_broker(arg, opt);
	case OPT_TOOL_HOST: return parse_tool_host(arg, opt);
	case OPT_UPSTREAM_PROXY: return set_once(&opt->upstream_proxy, arg, "--upstream-proxy");
	case OPT_UPSTREAM_NO_PROXY:
		return set_once(&opt->upstream_no_proxy, arg, "--upstream-no-proxy");
	case OPT_UPSTREAM_AUTH_FILE:
		return set_once(&opt->upstream_auth_file, arg, "--upstream-proxy-auth-file");
	case OPT_UPSTREAM_AUTH_INSECURE: opt->upstream_auth_insecure = true; return 0;
	case OPT_UPSTREAM_BY_HOSTNAME: opt->upstream_by_hostname = true; return 0;
	case OPT_UPSTREAM_CA: /* TLS interception wiring (issue 4) */
		if (opt->n_upstream_ca >= sizeof(opt->upstream_ca) / sizeof(opt->upstream_ca[0])) {
			fprintf(stderr, "openshell-sandbox: too many --upstream-ca files\n");
			return 2;
		}
		opt->upstream_ca[opt->n_upstream_ca++] = arg;
		return 0;
	case OPT_READY_TIMEOUT:
		if (parse_u32(arg, 3600, &v) != 0) {
			fprintf(stderr, "openshell-sandbox: --ready-timeout: '%s' is not 0-3600 seconds\n", arg);
			return 2;
		}
		opt->ready_timeout_secs = (unsigned)v;
		return 0;
	case OPT_LOG_LEVEL:
		opt->log_level = sup_parse_log_level(arg);
		if (opt->log_level < 0) {
			fprintf(stderr, "openshell-sandbox: --log-level: unknown level '%s'\n", arg);
			return 2;
		}
		return 0;
	default:
		return 2;
	}
}

static char **copy_argv(char **argv, int n)
{
	char **out = calloc((size_t)n + 1, sizeof *out);
	if (!out)
		return NULL;
	for (int i = 0; i < n; i++) {
		out[i] = strdup(argv[i]);
		if (!out[i]) {
			sup_argv_free(out);
			return NULL;
		}
	}
	return out;
}

static int resolve_workload_argv(struct sup_options *opt, int argc, char **argv)
{
	if (argc > 0) {
		opt->argv = copy_argv(argv, argc);
		return opt->argv ? 0 : 1;
	}
	const char *spec = getenv("OPENSHELL_MAIN_PROCESS_SPEC");
	if (spec && *spec) {
		char err[256];
		if (sup_parse_process_spec(spec, &opt->argv, err, sizeof err) != 0) {
			fprintf(stderr, "openshell-sandbox: OPENSHELL_MAIN_PROCESS_SPEC: %s\n", err);
			return 1;
		}
		return 0;
	}
	char *def[] = { "/bin/bash", "-l" };
	opt->argv = copy_argv(def, 2);
	return opt->argv ? 0 : 1;
}

int sup_parse_cli(int argc, char **argv, struct sup_options *opt)
{
	memset(opt, 0, sizeof *opt);
	opt->proxy_port = SUP_DEFAULT_PROXY_PORT;
	opt->policy_data = env_or("OPENSHELL_POLICY_DATA", NULL);
	opt->policy_rules = env_or("OPENSHELL_POLICY_RULES", NULL);
	opt->sandbox_id = env_or("OPENSHELL_SANDBOX_ID", NULL);
	opt->sandbox_name = env_or("OPENSHELL_SANDBOX", NULL);
	opt->ssh_socket_path = env_or("OPENSHELL_SSH_SOCKET_PATH", NULL);
	opt->log_level = sup_parse_log_level(env_or("OPENSHELL_LOG_LEVEL", "warn"));
	opt->tls_dir = env_or("OPENSHELL_PROXY_TLS_DIR", SUP_DEFAULT_TLS_DIR);
	opt->ready_timeout_secs = SUP_DEFAULT_READY_TIMEOUT;
	opt->mode = sup_mode_from_env();
	if (opt->log_level < 0)
		opt->log_level = LOG_WARN;

	optind = 1;
	int c;
	/* '+': stop at the first non-option so the workload's flags stay its own. */
	while ((c = getopt_long(argc, argv, "+w:t:h", long_opts, NULL)) != -1) {
		if (c == 'h') {
			usage(stdout);
			return -1;
		}
		if (c == OPT_VERSION) {
			printf("openshell-sandbox %s\n", SUP_VERSION);
			return -1;
		}
		if (c == '?') {
			usage(stderr);
			return 2;
		}
		int rc = apply_option(c, optarg, opt);
		if (rc)
			return rc;
	}
	if (opt->mode == 0) {
		fprintf(stderr, "openshell-sandbox: OPENSHELL_MODE/OPENSHELL_PROXY_MODE name no mode\n");
		return 2;
	}
	if (sup_upstream_check_flags(opt) != 0)
		return 2;
	if (!(opt->mode & SUP_MODE_PROCESS)) {
		if (argc > optind) {
			fprintf(stderr, "openshell-sandbox: --mode network runs no workload; "
				"remove the command\n");
			return 2;
		}
		return 0;
	}
	return resolve_workload_argv(opt, argc - optind, argv + optind);
}

/* "network,process" -> bits. Unknown or empty lists are usage errors. */
int sup_parse_mode(const char *list, unsigned *mode)
{
	unsigned m = 0;
	const char *p = list;
	while (*p) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		while (len && (*p == ' ' || *p == '\t')) {
			p++;
			len--;
		}
		while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if (len == 7 && strncmp(p, "network", 7) == 0) {
			m |= SUP_MODE_NETWORK;
		} else if (len == 7 && strncmp(p, "process", 7) == 0) {
			m |= SUP_MODE_PROCESS;
		} else if (len) {
			fprintf(stderr, "openshell-sandbox: --mode: unknown mode '%.*s' "
				"(network, process)\n", (int)len, p);
			return -1;
		}
		if (!end)
			break;
		p = end + 1;
	}
	if (!m) {
		fprintf(stderr, "openshell-sandbox: --mode: at least one of network, process\n");
		return -1;
	}
	*mode = m;
	return 0;
}

/* OPENSHELL_MODE=proxy selects network-only, OPENSHELL_PROXY_MODE=sidecar
 * process-only; --mode overrides both. */
unsigned sup_mode_from_env(void)
{
	const char *m = getenv("OPENSHELL_MODE");
	const char *pm = getenv("OPENSHELL_PROXY_MODE");
	bool net_only = m && strcmp(m, "proxy") == 0;
	bool proc_only = pm && strcmp(pm, "sidecar") == 0;
	if (net_only && proc_only)
		return 0;
	if (net_only)
		return SUP_MODE_NETWORK;
	if (proc_only)
		return SUP_MODE_PROCESS;
	return SUP_MODE_NETWORK | SUP_MODE_PROCESS;
}

void sup_options_free(struct sup_options *opt)
{
	sup_argv_free(opt->argv);
	opt->argv = NULL;
}
