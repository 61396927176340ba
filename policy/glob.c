/* glob.c - allocation-free glob matchers: '/'-delimited path globs (binaries,
 * REST rule paths) and single-level value globs (query values, names). */
#include <string.h>

#include "policy/load_int.h"


enum tok_kind { TOK_SEG, TOK_ANY_SEGS, TOK_SOME_SEGS };

struct tok {
	const char *p;
	size_t n;
	enum tok_kind kind;
};

/* Matches a '[...]' class at p (inside [p, end)); sets *len to the class
 * length, or 0 when it is not a well-formed class (then '[' is literal). */
static bool class_match(const char *p, const char *end, char ch, size_t *len)
{
	const char *q = p + 1;
	bool neg = false, hit = false;

	if (q < end && (*q == '!' || *q == '^')) {
		neg = true;
		q++;
	}
	for (const char *first = q; q < end && (*q != ']' || q == first); q++) {
		if (q + 2 < end && q[1] == '-' && q[2] != ']') {
			if ((unsigned char)ch >= (unsigned char)q[0] &&
			    (unsigned char)ch <= (unsigned char)q[2])
				hit = true;
			q += 2;
		} else if (*q == ch) {
			hit = true;
		}
	}
	if (q >= end) {
		*len = 0;
		return false;
	}
	*len = (size_t)(q - p) + 1;
	return hit != neg;
}

/* One pattern element at p against ch; *len = pattern bytes used. */
static bool elem_match(const char *p, const char *end, char ch, char delim, size_t *len)
{
	if (*p == '?') {
		*len = 1;
		return ch != delim;
	}
	if (*p == '[') {
		bool m = class_match(p, end, ch, len);

		if (*len)
			return m && ch != delim;
	}
	if (*p == '\\' && p + 1 < end) {
		*len = 2;
		return p[1] == ch;
	}
	*len = 1;
	return *p == ch;
}

/* Classic single-star backtracking glob; '*' never crosses `delim`. */
static bool glob_span(const char *p, size_t pn, const char *s, size_t sn, char delim)
{
	const char *pe = p + pn, *se = s + sn;
	const char *star_p = NULL, *star_s = NULL;

	while (s < se) {
		size_t len;

		if (p < pe && *p == '*') {
			while (p < pe && *p == '*')
				p++;
			star_p = p;
			star_s = s;
		} else if (p < pe && elem_match(p, pe, *s, delim, &len)) {
			p += len;
			s++;
		} else if (star_p && *star_s != delim) {
			p = star_p;
			s = ++star_s;
		} else {
			return false;
		}
	}
	while (p < pe && *p == '*')
		p++;
	return p == pe;
}

static bool is_dstar(const char *p, size_t n)
{
	return n == 2 && p[0] == '*' && p[1] == '*';
}

static bool path_match_plain(const char *pat, const char *path)
{
	struct tok t[POLICY_MAX_GLOB_SEGMENTS];
	bool dp[POLICY_MAX_GLOB_SEGMENTS + 1], next[POLICY_MAX_GLOB_SEGMENTS + 1];
	size_t m = 0;

	if (strcmp(pat, "**") == 0)
		return true;
	for (const char *p = pat;; m++) {
		const char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);

		if (m == POLICY_MAX_GLOB_SEGMENTS)
			return false;
		t[m] = (struct tok){ p, n, is_dstar(p, n) ? TOK_ANY_SEGS : TOK_SEG };
		if (!slash)
			break;
		p = slash + 1;
	}
	m++;
	if (m > 1 && t[m - 1].kind == TOK_ANY_SEGS)
		t[m - 1].kind = TOK_SOME_SEGS;
	dp[0] = true;
	for (size_t j = 0; j < m; j++)
		dp[j + 1] = dp[j] && t[j].kind == TOK_ANY_SEGS;
	for (const char *s = path;;) {
		const char *slash = strchr(s, '/');
		size_t n = slash ? (size_t)(slash - s) : strlen(s);

		next[0] = false;
		for (size_t j = 0; j < m; j++) {
			if (t[j].kind == TOK_ANY_SEGS)
				next[j + 1] = next[j] || dp[j + 1];
			else if (t[j].kind == TOK_SOME_SEGS)
				next[j + 1] = dp[j] || dp[j + 1];
			else
				next[j + 1] = dp[j] && glob_span(t[j].p, t[j].n, s, n, '/');
		}
		memcpy(dp, next, (m + 1) * sizeof(bool));
		if (!slash)
			break;
		s = slash + 1;
	}
	return dp[m];
}

typedef bool (*plain_match_fn)(const char *pat, const char *subject, char delim);

/* Finds the first '{' with a matching '}'; false when there is none. */
static bool find_braces(const char *pat, const char **open, const char **close)
{
	for (const char *p = pat; *p; p++) {
		int depth = 0;

		if (*p == '\\' && p[1]) {
			p++;
			continue;
		}
		if (*p != '{')
			continue;
		for (const char *q = p; *q; q++) {
			if (*q == '\\' && q[1])
				q++;
			else if (*q == '{')
				depth++;
			else if (*q == '}' && --depth == 0) {
				*open = p;
				*close = q;
				return true;
			}
		}
		return false;
	}
	return false;
}

/* Expands the first {a,b,...} group and recurses; each alternative is a new
 * pattern (prefix + alternative + suffix) built on the stack. */
static bool brace_match(const char *pat, const char *subject, char delim,
			plain_match_fn fn, unsigned depth, unsigned *budget)
{
	const char *open, *close, *alt;
	char buf[POLICY_MAX_PATH_BYTES + 1];
	size_t prefix;
	int nest = 0;

	if (!find_braces(pat, &open, &close))
		return fn(pat, subject, delim);
	if (depth >= POLICY_MAX_GLOB_BRACE_DEPTH || strlen(pat) > POLICY_MAX_PATH_BYTES)
		return false;
	prefix = (size_t)(open - pat);
	alt = open + 1;
	for (const char *q = alt; q <= close; q++) {
		if (*q == '\\' && q < close) {
			q++;
			continue;
		}
		if (*q == '{')
			nest++;
		else if (*q == '}' && q != close)
			nest--;
		if (nest != 0 || (*q != ',' && q != close))
			continue;
		if (*budget == 0)
			return false;
		(*budget)--;
		memcpy(buf, pat, prefix);
		memcpy(buf + prefix, alt, (size_t)(q - alt));
		strcpy(buf + prefix + (size_t)(q - alt), close + 1);
		if (brace_match(buf, subject, delim, fn, depth + 1, budget))
			return true;
		alt = q + 1;
	}
	return false;
}

static bool path_plain_fn(const char *pat, const char *subject, char delim)
{
	(void)delim;
	return path_match_plain(pat, subject);
}

static bool value_plain_fn(const char *pat, const char *subject, char delim)
{
	return glob_span(pat, strlen(pat), subject, strlen(subject), delim);
}

bool policy_path_glob_match(const char *pattern, const char *path)
{
	unsigned budget = POLICY_MAX_GLOB_ALTERNATIVES;

	if (!pattern || !path)
		return false;
	return brace_match(pattern, path, '/', path_plain_fn, 0, &budget);
}

bool value_glob_match(const char *pattern, const char *value, char delim)
{
	unsigned budget = POLICY_MAX_GLOB_ALTERNATIVES;

	if (!pattern || !value)
		return false;
	return brace_match(pattern, value, delim, value_plain_fn, 0, &budget);
}

bool policy_value_glob_match(const char *pattern, const char *value)
{
	return value_glob_match(pattern, value, '.');
}

static bool has_glob_meta_n(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strchr("*?[]{}", s[i]))
			return true;
	return false;
}

static bool match_all_pattern(const char *p)
{
	return !p || !*p || strcmp(p, "**") == 0 || strcmp(p, "/**") == 0;
}

bool policy_endpoint_path_match(const char *pattern, const char *path)
{
	size_t n;

	if (match_all_pattern(pattern))
		return path != NULL;
	if (!path)
		return false;
	n = strlen(pattern);
	if (n > 3 && strcmp(pattern + n - 3, "/**") == 0 &&
	    strncmp(pattern, path, n - 3) == 0 &&
	    !has_glob_meta_n(pattern, n - 3) &&
	    (path[n - 3] == '\0' || path[n - 3] == '/'))
		return true;
	return value_glob_match(pattern, path, 0);
}

size_t policy_endpoint_path_specificity(const char *pattern)
{
	size_t n = 0;

	for (; pattern && *pattern; pattern++)
		n += *pattern != '*';
	return n;
}

bool has_glob_meta(const char *s)
{
	return strpbrk(s, "*?[]{}") != NULL;
}
