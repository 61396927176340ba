/* fuzz_canon.c - libFuzzer target for request-target canonicalization.
 * Invariants: a canonical path starts with '/', holds no "/../", "/./",
 * "//" (except as the whole path "/"), no trailing "/." or "/..", no byte
 * outside printable ASCII, and canonicalizing it again is a no-op. The
 * first input byte selects allow_encoded_slash. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/canon.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char p1[CANON_MAX_PATH_BYTES + 1], q1[CANON_MAX_QUERY_BYTES + 1];
static char p2[CANON_MAX_PATH_BYTES + 1], q2[CANON_MAX_QUERY_BYTES + 1];
static char t[CANON_MAX_PATH_BYTES + CANON_MAX_QUERY_BYTES + 2];

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

static void check_path(const char *p, bool allow_slash)
{
	if (p[0] != '/' || strlen(p) > CANON_MAX_PATH_BYTES)
		abort();
	if (strstr(p, "/../") || strstr(p, "/./") || strstr(p, "//") || strchr(p, ';') ||
	    ends_with(p, "/..") || ends_with(p, "/.") || strchr(p, '\\'))
		abort();
	for (const char *c = p; *c; c++)
		if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f)
			abort();
	if (!allow_slash && (strstr(p, "%2F") || strstr(p, "%2f")))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	bool allow = data[0] & 1;
	/* Copy so that reads past the end are caught by ASan. */
	char *in = malloc(size - 1 ? size - 1 : 1);
	if (!in)
		return 0;
	memcpy(in, data + 1, size - 1);
	const char *err = NULL;
	int r = canon_request_target(in, size - 1, allow, p1, sizeof(p1), q1, sizeof(q1), &err);
	if ((r == 0) != (err == NULL))
		abort();
	if (r == 0) {
		check_path(p1, allow);
		if (strchr(q1, '#'))
			abort();
		size_t n = canon_format_target(p1, q1, t, sizeof(t));
		if (n == 0)
			abort();
		if (canon_request_target(t, n, allow, p2, sizeof(p2), q2, sizeof(q2), &err) != 0)
			abort();
		if (strcmp(p1, p2) != 0 || strcmp(q1, q2) != 0)
			abort();
	}
	free(in);
	return 0;
}
