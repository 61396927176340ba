/* sc_int.h - private to seccomp/: profile tables and the filter builder. */
#ifndef OPENSHELL_SC_INT_H
#define OPENSHELL_SC_INT_H

#include <seccomp.h>
#include <stddef.h>

#define SC_MAX_ARGS 2

/* One deny rule: the syscall (by name, resolved per architecture by
 * libseccomp), the errno it answers, and up to SC_MAX_ARGS argument tests that
 * must all hold. */
struct sc_rule {
	const char *name;
	int err;
	unsigned n_cmp;
	struct scmp_arg_cmp cmp[SC_MAX_ARGS];
};

struct sc_group {
	const char *name;
	const struct sc_rule *rules;
	size_t n_rules;
	int personality_allowlist; /* set: add the personality rules (strict) */
};

struct sc_profile {
	const char *name;
	const struct sc_group *const *groups;
	size_t n_groups;
};

/* NULL when the name is not a profile ("off" is not a profile). */
const struct sc_profile *sc_profile_find(const char *name);

/* Add every rule of the profile to ctx. Returns 0 or -1 with err. */
int sc_profile_add_rules(scmp_filter_ctx ctx, const struct sc_profile *prof, char *err,
			 size_t errlen);

#endif
