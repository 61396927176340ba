/* cred.h - credential placeholders (private to proxy/; proxy.md §6).
 *
 * The sandboxed agent only ever sees placeholders: its environment holds
 * NAME=openshell:resolve:env:NAME. The relay swaps a placeholder for the
 * real value on the wire, after policy admission, and only when the request
 * host is one the credential is scoped to. Anything that looks like a
 * placeholder but cannot be resolved fails closed.
 *
 * Credentials file (--credentials FILE), YAML:
 *
 *   GITHUB_TOKEN:                    # [A-Z_][A-Z0-9_]*, at most 128 bytes
 *     value: "ghp_..."               # or value_file: /abs/path (one trailing
 *     hosts: [api.github.com, "*.github.com"]  # newline stripped)
 *
 * The file and every value_file must be regular files owned by root with no
 * group/other permission bits (mode 0600 or stricter); they are opened
 * following symlinks and checked on the opened descriptor. Values must be
 * non-empty, free of control bytes and of placeholder markers. Hosts are
 * exact names or DNS globs (policy_host_match): no bare "*"/"**", and a
 * wildcard needs at least three labels.
 *
 * Placeholder grammar (resolution is case-sensitive):
 *   openshell:resolve:env:KEY          KEY = [A-Za-z0-9_]+ (maximal run)
 *   openshell:resolve:env:v<N>_KEY     revision form: resolves KEY
 *   openshell:resolve:env:s<64 hex>_KEY  handle form: resolves KEY
 * The alias form (...OPENSHELL-RESOLVE-ENV-KEY) and any case or
 * percent-encoded variant of either marker are recognised by
 * cred_contains_placeholder() but never resolved: they fail closed.
 */
#ifndef OPENSHELL_PROXY_CRED_H
#define OPENSHELL_PROXY_CRED_H

#include <stdbool.h>
#include <stddef.h>

#define CRED_MAX_ENTRIES 256u          /* credentials per file */
#define CRED_MAX_NAME_BYTES 128u       /* variable name */
#define CRED_MAX_VALUE_BYTES 16384u    /* one value (after newline stripping) */
#define CRED_MAX_HOSTS 64u             /* hosts per credential */
#define CRED_MAX_FILE_BYTES 1048576u   /* the credentials file itself */
#define CRED_PLACEHOLDER_PREFIX "openshell:resolve:env:"
#define CRED_ALIAS_MARKER "OPENSHELL-RESOLVE-ENV-"
#define CRED_REDACTED_PLACEHOLDER "[CREDENTIAL]"

enum cred_result {
	CRED_OK = 0,          /* out holds the rewritten text */
	CRED_NO_PLACEHOLDER,  /* nothing to do: forward the input; out untouched */
	CRED_OUT_OF_SCOPE,    /* credential not scoped to this host -> 403 */
	CRED_UNKNOWN,         /* unresolvable placeholder or marker -> 403 */
	CRED_TOO_LONG,        /* result does not fit in cap -> fail closed */
	CRED_REFUSED,         /* value unusable in this context (e.g. '/' in a
			       * path segment) or malformed input -> 403 */
};

struct cred_store;

/* Load and validate. NULL on error with a message in err: "file:line:col:
 * problem" for YAML/schema problems, "path: problem" for file problems. */
struct cred_store *cred_load(const char *path, char *err, size_t errlen);
void cred_free(struct cred_store *s); /* wipes the values; NULL is fine */

size_t cred_count(const struct cred_store *s);
const char *cred_name(const struct cred_store *s, size_t i);

/* "NAME=openshell:resolve:env:NAME" for the child environment. Returns the
 * length, or 0 if it does not fit (or i is out of range). */
size_t cred_env_entry(const struct cred_store *s, size_t i, char *out, size_t cap);

/* Rewrite one header value (vlen bytes, no NUL needed). Placeholders are
 * replaced wherever they occur in the value (whole value, "Bearer <ph>",
 * ...), and inside the base64 user:pass of "Basic <b64>" (re-encoded).
 * `name` is the header name (informational). `host` is the request host,
 * lower-case; NULL (no Host) puts every credential out of scope. s may be
 * NULL (no credentials file): any placeholder is then CRED_UNKNOWN. On
 * CRED_OK, out[0..*outlen) holds the result (NUL-terminated when it fits)
 * and is guaranteed free of any placeholder marker. */
int cred_rewrite_header(const struct cred_store *s, const char *host, const char *name,
			const char *value, size_t vlen, char *out, size_t cap,
			size_t *outlen);

/* Rewrite an origin-form request target ("/path?query"): placeholders in
 * path segments (also embedded: /bot<ph>/send; the value must not contain
 * '/', '\', '?', '#' or "..") and in query values (percent-decoded first,
 * so an encoded placeholder is found). Substituted values are
 * percent-encoded (every byte outside RFC 3986 unreserved). Same result
 * codes and guarantees as cred_rewrite_header(). */
int cred_rewrite_target(const struct cred_store *s, const char *host, const char *target,
			size_t tlen, char *out, size_t cap, size_t *outlen);

/* True if buf holds a placeholder marker: either marker, any letter case,
 * raw or percent-decoded, also inside the base64 of a "Basic " token. */
bool cred_contains_placeholder(const char *buf, size_t len);

/* Copy in[0..len) to out replacing every known real value with
 * "[REDACTED:NAME]" (longest value first). Returns CRED_OK or CRED_TOO_LONG;
 * out is NUL-terminated and *outlen set on CRED_OK. Raw values only:
 * percent-encoded copies are not recognised, so log redacted inputs
 * (cred_redact_placeholders on the pre-rewrite request), never the
 * rewritten upstream bytes. */
int cred_redact(const struct cred_store *s, const char *in, size_t len, char *out, size_t cap,
		size_t *outlen);

/* Copy in[0..len) to out replacing each canonical placeholder token
 * (prefix + KEY) with "[CREDENTIAL]": the form policy evaluation and logs
 * see. Returns CRED_OK or CRED_TOO_LONG (out NUL-terminated on CRED_OK). */
int cred_redact_placeholders(const char *in, size_t len, char *out, size_t cap,
			     size_t *outlen);

/* "ok", "no placeholder", "credential not scoped to host", ... */
const char *cred_result_str(int r);

#endif
