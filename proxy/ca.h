/* ca.h - the sandbox CA and per-host leaf certificates (private to proxy/).
 *
 * The CA is an ECDSA P-256 key and a self-signed certificate created in
 * memory at start. Its private key never leaves this process: only the
 * certificate (and the combined bundle) is written to disk. Leaves are
 * minted per host name (DNS or IP SAN), all with one shared P-256 leaf key,
 * and kept in an LRU cache of PROXY_LEAF_CACHE_ENTRIES hosts.
 */
#ifndef OPENSHELL_PROXY_CA_H
#define OPENSHELL_PROXY_CA_H

#include <stdbool.h>
#include <stddef.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "proxy/proxy.h"

struct leaf_entry {
	char host[PROXY_MAX_HOST_BYTES + 1];
	X509 *cert;
	int bucket_next;            /* index in entries, -1 = end of chain */
	int lru_prev, lru_next;     /* -1 = none */
};

struct proxy_ca {
	EVP_PKEY *ca_key;
	X509 *ca_cert;
	char *ca_pem;               /* CA certificate, PEM */
	EVP_PKEY *leaf_key;         /* shared by every leaf */
	struct leaf_entry entries[PROXY_LEAF_CACHE_ENTRIES];
	int buckets[2 * PROXY_LEAF_CACHE_ENTRIES];
	int n_entries;
	int lru_head, lru_tail;     /* head = most recently used */
	unsigned long minted;       /* leaves created so far (stats, tests) */
};

/* The leaf for `host` (lower-case; an IP literal gets an iPAddress SAN),
 * from the cache or freshly minted. The caller gets its own reference
 * (X509_free it). NULL on failure. */
X509 *ca_leaf_for_host(struct proxy_ca *ca, const char *host);

/* Number of cached leaves (tests). */
int ca_cached_leaves(const struct proxy_ca *ca);

/* The first existing, non-empty system bundle among the known paths, or
 * NULL. */
const char *ca_system_bundle_path(void);

#endif
