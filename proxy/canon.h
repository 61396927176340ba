/* canon.h - request-target canonicalization (private to proxy/).
 *
 * The canonical path is both the L7 policy input and what is sent upstream,
 * so the policy always judges the bytes the server will see. Origin-form
 * only ("/path?query"); the caller strips an absolute-form authority first.
 *
 * Path transform, in order:
 *   1. reject raw control bytes (C0, 0x7F), space, bytes >= 0x80, '#', '\'
 *   2. percent-decode each '/'-separated segment; reject malformed escapes,
 *      encoded controls (%00-%1F, %7F) and %5C; %2F is rejected unless
 *      allow_encoded_slash, in which case it stays data (re-encoded as %2F,
 *      never a separator) and a segment whose %2F-separated parts include
 *      "." or ".." is still rejected (no hidden dot segments)
 *   3. strip ";params" from every segment (before dot resolution, so "..;x"
 *      cannot hide a "..")
 *   4. resolve "." and ".." (RFC 3986 5.2.4; encoded dots count, because the
 *      decoding happened first); ".." above the root is rejected; a final
 *      "." or ".." leaves a trailing slash
 *   5. collapse empty segments ("//"), keeping a single trailing slash
 *   6. re-encode every byte outside unreserved / sub-delims / ':' / '@' as
 *      uppercase %HH
 * The query (after the first '?') is kept verbatim after validation: no
 * control bytes, space, bytes >= 0x80, '#', malformed escapes or %00. An
 * empty query ("/x?") canonicalizes to no query.
 *
 * Canonicalization is idempotent: canon(canon(x)) == canon(x) for the same
 * allow_encoded_slash setting.
 */
#ifndef OPENSHELL_PROXY_CANON_H
#define OPENSHELL_PROXY_CANON_H

#include <stdbool.h>
#include <stddef.h>

#define CANON_MAX_PATH_BYTES 4096u   /* raw path and canonical path -> reject beyond */
#define CANON_MAX_QUERY_BYTES 16384u /* raw query -> reject beyond */

/* Canonicalize target[0..len) (no NUL needed). On success returns 0 and
 * writes NUL-terminated path_out (starts with '/') and query_out (without
 * the '?'; "" when absent). On failure returns -1, *err (if non-NULL) is a
 * static description, and the output buffers hold no meaningful data.
 * path_cap should be >= CANON_MAX_PATH_BYTES + 1 and query_cap >=
 * CANON_MAX_QUERY_BYTES + 1; smaller buffers reject longer results. */
int canon_request_target(const char *target, size_t len, bool allow_encoded_slash,
			 char *path_out, size_t path_cap, char *query_out, size_t query_cap,
			 const char **err);

/* "path" or "path?query" into out (NUL-terminated). Returns the length, or
 * 0 if it does not fit. */
size_t canon_format_target(const char *path, const char *query, char *out, size_t cap);

#endif
