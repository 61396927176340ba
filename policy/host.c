/* host.c - endpoint host validation and DNS-glob host matching. */
#include <arpa/inet.h>
#include <ctype.h>
#include <string.h>

#include "policy/load_int.h"

#define MAX_LABEL_BYTES 63u

struct span {
	const char *p;
	size_t n;
};

/* Splits `s` at '.'; false when there are more than `max` labels. */
static bool split_labels(const char *s, struct span *out, size_t max, size_t *n)
{
	*n = 0;
	for (;;) {
		const char *dot = strchr(s, '.');
		size_t len = dot ? (size_t)(dot - s) : strlen(s);

		if (*n == max)
			return false;
		out[(*n)++] = (struct span){ s, len };
		if (!dot)
			return true;
		s = dot + 1;
	}
}

/* '*' = any run of characters inside one label; case-insensitive. */
static bool label_glob(struct span pat, struct span s)
{
	size_t pi = 0, si = 0, star_p = SIZE_MAX, star_s = 0;

	while (si < s.n) {
		if (pi < pat.n && pat.p[pi] == '*') {
			star_p = ++pi;
			star_s = si;
		} else if (pi < pat.n &&
			   tolower((unsigned char)pat.p[pi]) == tolower((unsigned char)s.p[si])) {
			pi++;
			si++;
		} else if (star_p != SIZE_MAX) {
			pi = star_p;
			si = ++star_s;
		} else {
			return false;
		}
	}
	while (pi < pat.n && pat.p[pi] == '*')
		pi++;
	return pi == pat.n;
}

static bool is_double_star(struct span l)
{
	return l.n == 2 && l.p[0] == '*' && l.p[1] == '*';
}

bool policy_host_match(const char *pattern, const char *host)
{
	struct span pl[POLICY_MAX_HOST_LABELS + 1], hl[POLICY_MAX_HOST_LABELS + 1];
	bool dp[POLICY_MAX_HOST_LABELS + 2], next[POLICY_MAX_HOST_LABELS + 2];
	size_t m, n;

	if (!pattern || !host || !*pattern || !*host ||
	    strlen(host) > POLICY_MAX_HOST_BYTES)
		return false;
	if (!strchr(pattern, '*'))
		return strcasecmp(pattern, host) == 0;
	if (!split_labels(pattern, pl, POLICY_MAX_HOST_LABELS + 1, &m) ||
	    !split_labels(host, hl, POLICY_MAX_HOST_LABELS + 1, &n))
		return false;
	/* dp[j]: the first j pattern labels match the host labels seen so far;
	 * a "**" label matches one or more whole labels. */
	memset(dp, 0, sizeof(dp));
	dp[0] = true;
	for (size_t i = 0; i < n; i++) {
		next[0] = false;
		for (size_t j = 0; j < m; j++) {
			if (is_double_star(pl[j]))
				next[j + 1] = dp[j] || dp[j + 1];
			else
				next[j + 1] = dp[j] && hl[i].n > 0 && label_glob(pl[j], hl[i]);
		}
		memcpy(dp, next, (m + 1) * sizeof(bool));
	}
	return dp[m];
}

bool host_is_ip_literal(const char *host)
{
	unsigned char buf[16];

	return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

static bool host_char_ok(char ch)
{
	return isalnum((unsigned char)ch) || ch == '.' || ch == '-' || ch == '_' ||
	       ch == '*' || ch == ':';
}

/* Wildcard shape rules shared by endpoint hosts (§7.2). */
static void check_wildcard_shape(struct load_ctx *c, yaml_node_t *node,
				 const char *host, const struct span *l, size_t n)
{
	if (strcmp(host, "*") == 0 || strcmp(host, "**") == 0) {
		err_at(c, node, "host '%s': a bare wildcard would match every host", host);
		return;
	}
	if (n < 3) {
		err_at(c, node, "host '%s': a wildcard host needs at least 3 labels "
		       "(TLD wildcards are not allowed)", SHOW(host));
		return;
	}
	if (memmem(l[0].p, l[0].n, "**", 2) && !is_double_star(l[0]))
		err_at(c, node, "host '%s': '**' must be the whole first label", SHOW(host));
	for (size_t i = 1; i < n; i++) {
		if (memchr(l[i].p, '*', l[i].n) && !(l[i].n == 1))
			err_at(c, node, "host '%s': a wildcard after the first label "
			       "must be a whole label '*'", SHOW(host));
	}
}

static void check_tcp_host(struct load_ctx *c, yaml_node_t *node, const char *host,
			   const struct span *l, size_t n)
{
	if (host_is_ip_literal(host)) {
		err_at(c, node, "host '%s': protocol tcp needs a DNS name, not an IP "
		       "literal (use allowed_ips)", SHOW(host));
		return;
	}
	for (size_t i = 0; i < n; i++) {
		for (size_t k = 0; k < l[i].n; k++) {
			char ch = l[i].p[k];

			if (!isalnum((unsigned char)ch) && ch != '-' && ch != '_' && ch != '*') {
				err_at(c, node, "host '%s': not a valid DNS name for "
				       "protocol tcp", SHOW(host));
				return;
			}
		}
	}
}

void check_endpoint_host(struct load_ctx *c, yaml_node_t *node, const char *host,
			 bool is_tcp)
{
	struct span l[POLICY_MAX_HOST_LABELS + 1];
	size_t n;

	if (strlen(host) > POLICY_MAX_HOST_BYTES) {
		err_at(c, node, "host is longer than %u bytes", POLICY_MAX_HOST_BYTES);
		return;
	}
	for (const char *p = host; *p; p++) {
		if (!host_char_ok(*p)) {
			err_at(c, node, "host '%s' contains an invalid character "
			       "(whitespace, '/', ...)", SHOW(host));
			return;
		}
	}
	if (strchr(host, ':')) {
		if (strchr(host, '*') || !host_is_ip_literal(host))
			err_at(c, node, "host '%s' contains ':' but is not an IPv6 address "
			       "(ports go in 'port' or 'ports')", SHOW(host));
		else if (is_tcp)
			check_tcp_host(c, node, host, NULL, 0);
		return;
	}
	if (!split_labels(host, l, POLICY_MAX_HOST_LABELS + 1, &n) ||
	    n > POLICY_MAX_HOST_LABELS) {
		err_at(c, node, "host '%s' has too many labels", SHOW(host));
		return;
	}
	for (size_t i = 0; i < n; i++) {
		if (l[i].n == 0 || l[i].n > MAX_LABEL_BYTES) {
			err_at(c, node, "host '%s' has an empty label, a trailing dot or "
			       "a label longer than %u bytes", SHOW(host), MAX_LABEL_BYTES);
			return;
		}
	}
	if (strchr(host, '*'))
		check_wildcard_shape(c, node, host, l, n);
	if (is_tcp)
		check_tcp_host(c, node, host, l, n);
}

bool check_selector_pattern(struct load_ctx *c, yaml_node_t *node, const char *pat)
{
	struct span l[POLICY_MAX_HOST_LABELS + 1];
	size_t n;

	if (!*pat) {
		err_at(c, node, "middleware endpoint pattern must not be empty");
		return false;
	}
	for (const char *p = pat; *p; p++) {
		if (!host_char_ok(*p)) {
			err_at(c, node, "middleware endpoint pattern '%s' contains an "
			       "invalid character (whitespace, braces, ...)", SHOW(pat));
			return false;
		}
	}
	if (!split_labels(pat, l, POLICY_MAX_HOST_LABELS + 1, &n) ||
	    n > POLICY_MAX_HOST_LABELS) {
		err_at(c, node, "middleware endpoint pattern '%s' has too many labels",
		       SHOW(pat));
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		if (l[i].n == 0 || (memmem(l[i].p, l[i].n, "**", 2) && !is_double_star(l[i]))) {
			err_at(c, node, "middleware endpoint pattern '%s' has an empty "
			       "label or a '**' that is not a whole label", SHOW(pat));
			return false;
		}
	}
	return true;
}

/* Replaces every wildcard run with one letter: a host the pattern matches. */
static void sample_host(const char *pat, char *out, size_t size)
{
	size_t o = 0;

	for (; *pat && o + 1 < size; pat++) {
		if (*pat != '*')
			out[o++] = *pat;
		else if (o == 0 || out[o - 1] != 'x' || pat[-1] != '*')
			out[o++] = 'x';
	}
	out[o] = '\0';
}

bool host_patterns_overlap(const char *a, const char *b)
{
	char sa[POLICY_MAX_HOST_BYTES + 1], sb[POLICY_MAX_HOST_BYTES + 1];

	if (!*a || !*b)
		return true;
	sample_host(a, sa, sizeof(sa));
	sample_host(b, sb, sizeof(sb));
	return policy_host_match(a, sb) || policy_host_match(b, sa) ||
	       strcasecmp(a, b) == 0;
}
