/* fuzz_policy.c - libFuzzer target: arbitrary bytes through the policy
 * loader; every result (policy or error list) is freed, and a loaded policy
 * is exercised through policy_decide(). The same bytes, split at the first
 * newline into a pattern and a subject, also drive the glob matchers. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_matchers(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	size_t plen = nl ? (size_t)(nl - data) : size;
	char *pat = strndup((const char *)data, plen);
	char *subj = nl ? strndup((const char *)nl + 1, size - plen - 1) : strdup("");
	struct policy_cidr cidr;

	if (pat && subj) {
		(void)policy_host_match(pat, subj);
		(void)policy_path_glob_match(pat, subj);
		(void)policy_value_glob_match(pat, subj);
		(void)policy_endpoint_path_match(pat, subj);
		if (policy_cidr_parse(pat, &cidr) == 0)
			(void)policy_cidr_contains(&cidr, cidr.family, cidr.addr);
	}
	free(pat);
	free(subj);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct policy_errors errs = { 0 };
	struct policy *p = policy_load_buffer((const char *)data, size, "fuzz.yaml", &errs);
	struct policy_decision d;

	if (p) {
		policy_decide(p, "api.example.com", 443, "/usr/bin/curl", true, &d);
		policy_decide(p, "a.b.example.com", 8443, NULL, false, &d);
		policy_free(p);
	} else if (errs.n == 0) {
		__builtin_trap(); /* a failed load must always explain itself */
	}
	policy_errors_free(&errs);
	if (size <= 8192)
		fuzz_matchers(data, size);
	return 0;
}
