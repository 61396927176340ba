/* policy.h - the sandbox policy model, its YAML loader and the L4 matcher.
 *
 * One public header for the policy/ module. The model mirrors the OpenShell
 * policy schema (version 1): every key is parsed and validated, including keys
 * whose enforcement lives in other modules. A loaded policy is immutable; it is
 * owned by whoever called policy_load_*() and freed with policy_free().
 */
#ifndef OPENSHELL_POLICY_H
#define OPENSHELL_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define POLICY_MAX_FILE_BYTES 262144u   /* serialized policy size limit */
#define POLICY_MAX_FS_PATHS 256u        /* read_only + read_write entries */
#define POLICY_MAX_PATH_BYTES 4096u
#define POLICY_MAX_ERRORS 100u          /* loader stops collecting after this many
					 * (one extra "too many errors" line follows) */
#define POLICY_MAX_NODE_VISITS 262144u  /* YAML nodes walked, aliases counted each
					 * time they are used (alias-bomb guard) */
#define POLICY_MAX_CONFIG_DEPTH 32u     /* nesting of a middleware `config` value */
#define POLICY_MAX_ENDPOINTS 4096u     /* endpoints across all network_policies */
#define POLICY_MAX_MIDDLEWARES 10u      /* network_middlewares entries */
#define POLICY_MAX_MW_PATTERNS 32u      /* include + exclude per middleware */
#define POLICY_MAX_HOST_BYTES 253u      /* endpoint host / decide() host */
#define POLICY_MAX_HOST_LABELS 127u
#define POLICY_MAX_GLOB_SEGMENTS 256u   /* '/' segments in a path glob pattern */
#define POLICY_DEFAULT_BODY_BYTES 65536u /* graphql/json-rpc body limit when absent */
#define POLICY_MAX_GLOB_BRACE_DEPTH 8u  /* nested/sequential {a,b} groups in a glob */
#define POLICY_MAX_GLOB_ALTERNATIVES 256u /* {a,b} alternatives tried per match */
#define POLICY_REASON_MAX_PORTS 16u     /* ports listed in a port-deny reason */

enum policy_protocol {
	POLICY_PROTO_NONE = 0, /* L4 through the explicit proxy */
	POLICY_PROTO_TCP,
	POLICY_PROTO_REST,
	POLICY_PROTO_WEBSOCKET,
	POLICY_PROTO_GRAPHQL,
	POLICY_PROTO_SQL,
	POLICY_PROTO_JSON_RPC,
	POLICY_PROTO_MCP,
};

enum policy_tls {
	POLICY_TLS_AUTO = 0,
	POLICY_TLS_SKIP,
	POLICY_TLS_TERMINATE,   /* deprecated, behaves as auto (warned at load) */
	POLICY_TLS_PASSTHROUGH, /* deprecated, behaves as auto (warned at load) */
};

enum policy_enforcement {
	POLICY_ENFORCE_AUDIT = 0, /* default when omitted, as the reference */
	POLICY_ENFORCE_ENFORCE,
};

enum policy_access {
	POLICY_ACCESS_NONE = 0,
	POLICY_ACCESS_READ_ONLY,
	POLICY_ACCESS_READ_WRITE,
	POLICY_ACCESS_FULL,
};

enum policy_landlock_compat {
	POLICY_LANDLOCK_BEST_EFFORT = 0,
	POLICY_LANDLOCK_HARD_REQUIREMENT,
};

/* An IP network from allowed_ips (a bare IP is a /32 or /128). */
struct policy_cidr {
	int family;         /* AF_INET or AF_INET6 */
	uint8_t addr[16];   /* network byte order; IPv4 uses the first 4 bytes */
	uint8_t prefix;
};

/* A query matcher: `key: glob` or `key: {any: [g...]}` (the reference YAML
 * schema has no `{glob: g}` form, so the loader rejects it). */
struct policy_query_matcher {
	char *key;
	char **globs;
	size_t n_globs;
	bool any;           /* true for {any: [...]} */
};

/* One L7 rule. An allow rule comes from `rules: [{allow: {...}}]`, a deny rule
 * from `deny_rules: [{...}]`; both share this shape. Fields a protocol does not
 * use stay NULL/0. */
struct policy_l7_rule {
	char *method;             /* HTTP method, "*", WEBSOCKET_TEXT, JSON-RPC/MCP method */
	char *path;               /* glob with '/' as separator; NULL = any */
	struct policy_query_matcher *query;
	size_t n_query;
	/* graphql */
	char *operation_type;
	char *operation_name;
	char **fields;
	size_t n_fields;
	/* mcp */
	struct policy_query_matcher *tool; /* NULL when absent; key unused */
	/* sql */
	char *command;
};

struct policy_graphql_pq {
	char *id;
	char *operation_type;
	char *operation_name;
	char **fields;
	size_t n_fields;
};

struct policy_endpoint {
	char *host;               /* lower-cased; "" for hostless allowed_ips endpoints */
	bool host_is_wildcard;    /* contains '*' */
	uint16_t *ports;          /* effective list (port or ports), sorted, unique */
	size_t n_ports;
	char *path;               /* endpoint path selector; NULL = all */
	enum policy_protocol protocol;
	enum policy_tls tls;
	enum policy_enforcement enforcement;
	enum policy_access access;
	struct policy_l7_rule *rules;       /* allow rules, presets already expanded */
	size_t n_rules;
	struct policy_l7_rule *deny_rules;
	size_t n_deny_rules;
	struct policy_cidr *allowed_ips;
	size_t n_allowed_ips;
	bool allow_encoded_slash;
	bool websocket_credential_rewrite;
	bool request_body_credential_rewrite;
	bool allow_uninspected_credentials;
	char *credential_signing;
	char *signing_service;
	char *signing_region;
	char *credential_binding_provider;
	char *persisted_queries;
	struct policy_graphql_pq *graphql_persisted_queries;
	size_t n_graphql_persisted_queries;
	uint32_t graphql_max_body_bytes;   /* POLICY_DEFAULT_BODY_BYTES when absent */
	uint32_t json_rpc_max_body_bytes;  /* from json_rpc or mcp (mcp wins); same default */
	bool mcp_strict_tool_names;
	bool mcp_allow_all_known_methods;
	unsigned line, col;       /* where the endpoint starts in the file */
};

struct policy_binary {
	char *path;               /* exact path or glob ('/' separated) */
};

struct policy_rule {
	char *key;                /* map key under network_policies */
	char *name;               /* display name; defaults to key */
	struct policy_endpoint *endpoints;
	size_t n_endpoints;
	struct policy_binary *binaries;
	size_t n_binaries;          /* 0 = any binary */
	unsigned line, col;
};

struct policy_middleware {
	char *key;
	char *name;               /* display name; defaults to key */
	char *middleware;
	int32_t order;
	bool fail_open;           /* on_error: fail_open (default fail_closed) */
	unsigned line, col;       /* where the entry starts in the file */
	/* Remaining middleware keys are validated and kept opaque for now. */
	char **endpoints_include;
	size_t n_endpoints_include;
	char **endpoints_exclude;
	size_t n_endpoints_exclude;
};

struct policy {
	uint32_t version;
	/* filesystem_policy (static) */
	bool has_filesystem_policy;
	bool include_workdir;          /* true when the section is absent */
	char **read_only;
	size_t n_read_only;
	char **read_write;
	size_t n_read_write;
	/* landlock (static) */
	enum policy_landlock_compat landlock_compat;
	/* process (static); NULL when omitted or empty; otherwise "sandbox" or a
	 * canonical decimal id in 1..4294967294 (a leading "+" is dropped) */
	char *run_as_user;
	char *run_as_group;
	char *seccomp_profile;         /* extension: baseline|strict|nested|off; NULL = off */
	/* network_policies (dynamic), sorted by key */
	struct policy_rule *rules;
	size_t n_rules;
	struct policy_middleware *middlewares;
	size_t n_middlewares;
	char *source;                  /* file name the policy came from, for messages */
	/* Non-fatal findings, "file:line:col: msg", for the log: deprecated tls
	 * values, rules admitting any binary, broad allowed_ips, ... (at most
	 * POLICY_MAX_ERRORS). */
	char **warnings;
	size_t n_warnings;
};

/* Error list filled by the loader: one entry per problem, "file:line:col: msg"
 * (1-based position of the offending YAML node; 1:1 for whole-file problems),
 * sorted by position. Start from a zeroed struct; loads append to it. At most
 * POLICY_MAX_ERRORS problems are listed, then one "too many errors" line. */
struct policy_errors {
	char **msgs;
	size_t n;
};

void policy_errors_free(struct policy_errors *errs);

/* Load and validate. Returns NULL and fills errs (never empty on failure).
 * `name` is used in messages (the file path, or "<embedded>"). */
struct policy *policy_load_file(const char *path, struct policy_errors *errs);
struct policy *policy_load_buffer(const char *buf, size_t len, const char *name,
				  struct policy_errors *errs);
void policy_free(struct policy *p);

/* The built-in default: version 1, no network access, process user "sandbox". */
struct policy *policy_load_default(struct policy_errors *errs);

/* ---- matching (L4) ---- */

/* Case-insensitive DNS glob: '*' within one label, '**' as the whole first label
 * = one or more labels. `host` must already be lower-case without trailing dot. */
bool policy_host_match(const char *pattern, const char *host);

struct policy_decision {
	bool allowed;
	const struct policy_rule *rule;        /* allowing rule with the smallest key;
						 * on deny, the rule the reason names
						 * (binary or port miss) or NULL */
	const struct policy_endpoint *endpoint; /* first matching endpoint of `rule`
						 * with extended config, else first match */
	bool exact_host;                       /* matched a declared non-wildcard host
						 * (false for hostless allowed_ips) */
	char reason[256];                      /* deny reason, "" when allowed */
};

/* Decide host:port (host lower-cased, no brackets). `binary` is the peer's
 * executable path or NULL when unknown; binaries are matched only when
 * `match_binaries` is set (endpoint-only otherwise). Never allocates. */
void policy_decide(const struct policy *p, const char *host, uint16_t port,
		   const char *binary, bool match_binaries,
		   struct policy_decision *out);

/* Parse "10.0.0.0/8", "10.1.2.3", "fd00::/8". Returns 0 on success. */
int policy_cidr_parse(const char *s, struct policy_cidr *out);
bool policy_cidr_contains(const struct policy_cidr *c, int family, const void *addr);

/* "none", "tcp", "rest", "websocket", "graphql", "sql", "json-rpc", "mcp". */
const char *policy_protocol_name(enum policy_protocol p);

/* '/'-delimited glob (binaries[].path, REST/WebSocket rule paths): '*' and '?'
 * stay within one segment, '[...]'/'[!...]' classes, '{a,b}' alternatives,
 * backslash escapes; a whole-segment '**' spans zero or more segments (one or
 * more when it is the last segment: "/a/" followed by "**" matches "/a/x"
 * but not "/a"); the pattern "**" alone matches everything. Case-sensitive.
 * Never allocates (bounded stack use: POLICY_MAX_GLOB_* limits). */
bool policy_path_glob_match(const char *pattern, const char *path);

/* Value glob (query values, GraphQL operation_name/fields, MCP tool and
 * method): '*' and '?' never cross '.', classes and {a,b} as above;
 * case-sensitive. Never allocates. */
bool policy_value_glob_match(const char *pattern, const char *value);

/* Endpoint `path` selector: NULL, "", "**" and "/" + "**" match every path;
 * "X/" + "**" matches X and everything below it; anything else is a glob in
 * which '*' also crosses '/'. Never allocates. */
bool policy_endpoint_path_match(const char *pattern, const char *path);
/* Tie-break between matching selectors: count of non-'*' characters. */
size_t policy_endpoint_path_specificity(const char *pattern);

/* ---- L7 evaluation (policy/l7.c) ----
 * REST/WebSocket request rules (proxy.md §2.6). Never allocates: the decoded
 * query lives in a bounded stack area; going over a limit denies. */

#define POLICY_L7_MAX_QUERY_BYTES 16384u /* raw query after '?' -> deny beyond */
#define POLICY_L7_MAX_QUERY_PARAMS 64u   /* key=value pairs -> deny beyond */
#define POLICY_L7_MAX_PATH_BYTES 4096u   /* canonical path -> deny beyond */
#define POLICY_L7_MAX_METHOD_BYTES 32u   /* request method -> deny beyond */

enum policy_l7_verdict {
	POLICY_L7_ALLOW = 0,
	POLICY_L7_DENY,       /* enforce (or a malformed request): answer 403 */
	POLICY_L7_AUDIT_DENY, /* enforcement audit: log the violation, forward */
};

struct policy_l7_result {
	enum policy_l7_verdict verdict;
	const struct policy_rule *rule;         /* owner of `endpoint` */
	const struct policy_endpoint *endpoint; /* NULL: no L7 endpoint for host:port
						 * (L4 decided) or none whose `path`
						 * selects the request; otherwise the
						 * endpoint whose deny rule fired, else
						 * whose allow rule matched, else the
						 * selected (most specific) one */
	char reason[256];                       /* "" when allowed */
};

/* True for endpoints whose requests are inspected and judged per request:
 * protocol rest, websocket, graphql, json-rpc or mcp (sql is audit-only
 * passthrough, tcp/none are L4). Only rest and websocket rules are evaluated
 * here; a request selected onto a graphql/json-rpc/mcp endpoint is denied
 * ("not supported") under enforce and audit-denied under audit. */
bool policy_endpoint_needs_l7(const struct policy_endpoint *ep);

/* Judge one request. host: lower-case, no brackets; path: canonical (see
 * proxy/canon.h), placeholders already redacted; query: raw text after '?'
 * or NULL. Candidates are the L7 endpoints matching host:port in policies
 * whose binaries match `binary` (every policy when !match_binaries). The
 * endpoint `path` selector picks the most specific candidate (its
 * enforcement applies; on a tie an enforcing endpoint wins). Allowed iff an
 * allow rule of a candidate selecting the path matches and no deny rule of
 * any candidate matches. Malformed input (bad query escapes, non-UTF-8,
 * limits) and "no L7 endpoint path matched request" give POLICY_L7_DENY
 * whatever the enforcement. */
void policy_l7_evaluate_binary(const struct policy *p, const char *host, uint16_t port,
			       const char *binary, bool match_binaries, const char *method,
			       const char *path, const char *query,
			       struct policy_l7_result *out);

/* Same with every policy's endpoints considered (endpoint-only identity mode).
 * Use policy_l7_evaluate_binary() when the peer binary was matched at L4:
 * otherwise another binary's policy could allow the request. */
void policy_l7_evaluate(const struct policy *p, const char *host, uint16_t port,
			const char *method, const char *path, const char *query,
			struct policy_l7_result *out);

/* How a connection to host:port must be relayed, over the same candidates
 * as policy_l7_evaluate_binary() (all policies, not only the one the L4
 * decision named): inspect when any L7 endpoint matches; %2F is allowed in
 * paths only when every such endpoint sets allow_encoded_slash (the path is
 * canonicalized before an endpoint is selected). */
struct policy_l7_route {
	bool inspect;
	bool allow_encoded_slash;
	size_t n_endpoints;       /* L7 endpoints matching host:port */
};

void policy_l7_route(const struct policy *p, const char *host, uint16_t port,
		     const char *binary, bool match_binaries, struct policy_l7_route *out);

#endif
