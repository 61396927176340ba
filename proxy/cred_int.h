/* cred_int.h - the credential store's layout, shared by proxy/cred.c
 * (loading) and proxy/cred_rewrite.c (placeholder rewriting) and their tests. */
#ifndef OPENSHELL_PROXY_CRED_INT_H
#define OPENSHELL_PROXY_CRED_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "proxy/cred.h"

struct cred_entry {
	char *name;
	char *value;      /* never logged; wiped on free */
	size_t vlen;
	char **hosts;     /* lower-case names or DNS globs */
	size_t n_hosts;
};

struct cred_store {
	struct cred_entry *e;
	size_t n;
};

/* The entry named name[0..n), or NULL. */
const struct cred_entry *cred_find(const struct cred_store *s, const char *name, size_t n);

/* host (lower-case) is one of the entry's hosts; false for NULL. */
bool cred_in_scope(const struct cred_entry *e, const char *host);

#endif
