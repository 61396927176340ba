/* ca.c - the sandbox CA, leaf minting and the leaf cache. */
#include "proxy/ca.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proxy/proxy.h"

#define CA_COMMON_NAME "OpenShell Sandbox CA"
#define CA_ORG "OpenShell"
#define CA_VALID_DAYS 3650L
#define LEAF_VALID_DAYS 365L
#define BACKDATE_SECS (24L * 3600L)   /* clients with a slightly late clock */
#define MAX_BUNDLE_BYTES (16u << 20)   /* a system bundle larger than this is refused */

static const char *const system_bundles[] = {
	"/etc/ssl/certs/ca-certificates.crt",
	"/etc/pki/tls/certs/ca-bundle.crt",
	"/etc/ssl/ca-bundle.pem",
	"/etc/ssl/cert.pem",
	NULL,
};

const char *const *proxy_system_bundle_paths(void)
{
	return system_bundles;
}

const char *ca_system_bundle_path(void)
{
	for (size_t i = 0; system_bundles[i] != NULL; i++) {
		struct stat st;
		if (stat(system_bundles[i], &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0)
			return system_bundles[i];
	}
	return NULL;
}

static void ssl_err(char *err, size_t errlen, const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256] = "";
	if (e != 0)
		ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	snprintf(err, errlen, "%s%s%s", what, buf[0] ? ": " : "", buf);
}

static EVP_PKEY *new_p256_key(void)
{
	return EVP_EC_gen("P-256");
}

static bool random_serial(X509 *x)
{
	unsigned char raw[16];
	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return false;
	raw[0] &= 0x7f; /* positive */
	raw[0] |= 0x01; /* never zero, full length */
	BIGNUM *bn = BN_bin2bn(raw, sizeof(raw), NULL);
	if (bn == NULL)
		return false;
	ASN1_INTEGER *serial = BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
	BN_free(bn);
	return serial != NULL;
}

static bool add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX v3;
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, issuer, cert, NULL, NULL, 0);
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	if (ext == NULL)
		return false;
	int ok = X509_add_ext(cert, ext, -1);
	X509_EXTENSION_free(ext);
	return ok == 1;
}

static bool set_validity(X509 *x, long days)
{
	return X509_gmtime_adj(X509_getm_notBefore(x), -BACKDATE_SECS) != NULL &&
	       X509_gmtime_adj(X509_getm_notAfter(x), days * 24L * 3600L) != NULL;
}

static X509 *make_ca_cert(EVP_PKEY *key)
{
	X509 *x = X509_new();
	if (x == NULL)
		return NULL;
	X509_NAME *name = X509_get_subject_name(x);
	bool ok = X509_set_version(x, 2) == 1 && random_serial(x) &&
		  set_validity(x, CA_VALID_DAYS) &&
		  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
					     (const unsigned char *)CA_COMMON_NAME, -1, -1, 0) == 1 &&
		  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
					     (const unsigned char *)CA_ORG, -1, -1, 0) == 1 &&
		  X509_set_issuer_name(x, name) == 1 && X509_set_pubkey(x, key) == 1 &&
		  /* pathlen:0: it signs leaves only, never another CA */
		  add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") &&
		  add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign") &&
		  add_ext(x, x, NID_subject_key_identifier, "hash") &&
		  X509_sign(x, key, EVP_sha256()) > 0;
	if (!ok) {
		X509_free(x);
		return NULL;
	}
	return x;
}

static char *cert_pem(X509 *x)
{
	BIO *b = BIO_new(BIO_s_mem());
	if (b == NULL)
		return NULL;
	char *out = NULL;
	if (PEM_write_bio_X509(b, x) == 1) {
		char *data = NULL;
		long n = BIO_get_mem_data(b, &data);
		if (n > 0 && (out = malloc((size_t)n + 1)) != NULL) {
			memcpy(out, data, (size_t)n);
			out[n] = '\0';
		}
	}
	BIO_free(b);
	return out;
}

struct proxy_ca *proxy_ca_create(char *err, size_t errlen)
{
	struct proxy_ca *ca = calloc(1, sizeof(*ca));
	if (ca == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	ca->lru_head = ca->lru_tail = -1;
	for (size_t i = 0; i < sizeof(ca->buckets) / sizeof(ca->buckets[0]); i++)
		ca->buckets[i] = -1;
	ca->ca_key = new_p256_key();
	ca->leaf_key = ca->ca_key ? new_p256_key() : NULL;
	if (ca->leaf_key == NULL) {
		ssl_err(err, errlen, "generating a P-256 key");
		proxy_ca_free(ca);
		return NULL;
	}
	ca->ca_cert = make_ca_cert(ca->ca_key);
	if (ca->ca_cert == NULL) {
		ssl_err(err, errlen, "building the CA certificate");
		proxy_ca_free(ca);
		return NULL;
	}
	ca->ca_pem = cert_pem(ca->ca_cert);
	if (ca->ca_pem == NULL) {
		ssl_err(err, errlen, "encoding the CA certificate");
		proxy_ca_free(ca);
		return NULL;
	}
	return ca;
}

void proxy_ca_free(struct proxy_ca *ca)
{
	if (ca == NULL)
		return;
	for (int i = 0; i < ca->n_entries; i++)
		X509_free(ca->entries[i].cert);
	EVP_PKEY_free(ca->ca_key);
	EVP_PKEY_free(ca->leaf_key);
	X509_free(ca->ca_cert);
	free(ca->ca_pem);
	/* No OPENSSL_cleanse of the struct: the keys were wiped by EVP_PKEY_free,
	 * the rest is host names and indices, and touching the 280 KiB leaf table
	 * cost a millisecond of page faults at every exit. */
	free(ca);
}

/* ---- files ---- */

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* The system bundle to prepend: an open regular file (bounded), its size
 * and path, or fd -1 when the machine has none. -1 with errno on failure. */
static int open_system_bundle(int *fd, size_t *len, const char **path)
{
	*fd = -1;
	*len = 0;
	*path = ca_system_bundle_path();
	if (*path == NULL)
		return 0;
	int f = open(*path, O_RDONLY | O_CLOEXEC);
	if (f < 0)
		return -1;
	struct stat st;
	int e = 0;
	if (fstat(f, &st) != 0)
		e = errno;
	else if (!S_ISREG(st.st_mode))
		e = EINVAL;
	else if ((uint64_t)st.st_size > MAX_BUNDLE_BYTES)
		e = EFBIG;
	if (e != 0) {
		close(f);
		errno = e;
		return -1;
	}
	*fd = f;
	*len = (size_t)st.st_size;
	return 0;
}

/* Copy len bytes of in (from offset 0) to out inside the kernel, then a
 * newline if they do not end with one. */
static int copy_bundle(int out, int in, size_t len)
{
	off_t off = 0;
	while ((size_t)off < len) {
		ssize_t n = sendfile(out, in, &off, len - (size_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO; /* the file shrank under us */
			return -1;
		}
	}
	char last = '\n';
	if (len > 0 && pread(in, &last, 1, (off_t)len - 1) != 1)
		return -1;
	return last == '\n' ? 0 : write_all(out, "\n", 1);
}

/* Write name in dir atomically (temp file + rename), mode 0644: the first
 * copy_len bytes of copy_fd (when >= 0), then text. */
static int write_file_atomic(const char *dir, const char *name, int copy_fd, size_t copy_len,
			     const char *text, char *out, size_t outlen, char *err, size_t errlen)
{
	char tmp[4096];
	if ((size_t)snprintf(out, outlen, "%s/%s", dir, name) >= outlen ||
	    (size_t)snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name) >= sizeof(tmp)) {
		snprintf(err, errlen, "%s/%s: path too long", dir, name);
		return -1;
	}
	/* A fresh file: whatever sits at tmp (a FIFO that would block the open,
	 * a hard link to another file that O_TRUNC would clobber) is removed,
	 * and O_EXCL refuses anything that appears there in between. */
	if (unlink(tmp) != 0 && errno != ENOENT) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		return -1;
	}
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		return -1;
	}
	int rc = copy_fd >= 0 ? copy_bundle(fd, copy_fd, copy_len) : 0;
	if (rc == 0)
		rc = write_all(fd, text, strlen(text));
	if (rc == 0)
		rc = fchmod(fd, 0644);
	int saved = errno;
	if (close(fd) != 0 && rc == 0) {
		rc = -1;
		saved = errno;
	}
	if (rc == 0 && rename(tmp, out) != 0) {
		rc = -1;
		saved = errno;
	}
	if (rc != 0) {
		unlink(tmp);
		snprintf(err, errlen, "%s: %s", out, strerror(saved));
	}
	return rc;
}

int proxy_ca_write_files(const struct proxy_ca *ca, const char *dir, char *cert_path,
			 size_t cert_len, char *bundle_path, size_t bundle_len, char *err,
			 size_t errlen)
{
	if (mkdir(dir, 0755) == 0) {
		/* the sandbox user must read it whatever our umask is */
		if (chmod(dir, 0755) != 0) {
			snprintf(err, errlen, "%s: %s", dir, strerror(errno));
			return -1;
		}
	} else if (errno != EEXIST) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return -1;
	}
	struct stat st;
	if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s: not a directory", dir);
		return -1;
	}
	if (write_file_atomic(dir, PROXY_CA_CERT_FILE, -1, 0, ca->ca_pem, cert_path, cert_len,
			      err, errlen) != 0)
		return -1;
	/* The bundle is the system's followed by ours, copied by the kernel:
	 * no 200 KiB buffer to fault in at every start. */
	int sys_fd;
	size_t sys_len;
	const char *sys_path;
	if (open_system_bundle(&sys_fd, &sys_len, &sys_path) != 0) {
		snprintf(err, errlen, "%s: %s", sys_path, strerror(errno));
		return -1;
	}
	int rc = write_file_atomic(dir, PROXY_CA_BUNDLE_FILE, sys_fd, sys_len, ca->ca_pem,
				   bundle_path, bundle_len, err, errlen);
	if (sys_fd >= 0)
		close(sys_fd);
	return rc;
}

/* ---- leaves ---- */

static bool inet_pton_any(const char *host, unsigned char *buf)
{
	return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

static X509 *mint_leaf(const struct proxy_ca *ca, const char *host)
{
	unsigned char ipbuf[16];
	bool is_ip = inet_pton_any(host, ipbuf);
	char san[PROXY_MAX_HOST_BYTES + 8];
	snprintf(san, sizeof(san), "%s:%s", is_ip ? "IP" : "DNS", host);
	X509 *x = X509_new();
	if (x == NULL)
		return NULL;
	X509_NAME *name = X509_get_subject_name(x);
	/* A CN longer than 64 bytes is invalid; the SAN is what clients check. */
	const char *cn = strlen(host) <= 64 ? host : "openshell-leaf";
	bool ok = X509_set_version(x, 2) == 1 && random_serial(x) &&
		  set_validity(x, LEAF_VALID_DAYS) &&
		  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn,
					     -1, -1, 0) == 1 &&
		  X509_set_issuer_name(x, X509_get_subject_name(ca->ca_cert)) == 1 &&
		  X509_set_pubkey(x, ca->leaf_key) == 1 &&
		  add_ext(x, ca->ca_cert, NID_basic_constraints, "critical,CA:FALSE") &&
		  add_ext(x, ca->ca_cert, NID_key_usage, "critical,digitalSignature") &&
		  add_ext(x, ca->ca_cert, NID_ext_key_usage, "serverAuth") &&
		  add_ext(x, ca->ca_cert, NID_subject_alt_name, san) &&
		  add_ext(x, ca->ca_cert, NID_authority_key_identifier, "keyid:always") &&
		  X509_sign(x, ca->ca_key, EVP_sha256()) > 0;
	if (!ok) {
		X509_free(x);
		ERR_clear_error();
		return NULL;
	}
	return x;
}

static unsigned host_hash(const char *s)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 16777619u;
	}
	return h % (2 * PROXY_LEAF_CACHE_ENTRIES);
}

static void lru_unlink(struct proxy_ca *ca, int i)
{
	struct leaf_entry *e = &ca->entries[i];
	if (e->lru_prev >= 0)
		ca->entries[e->lru_prev].lru_next = e->lru_next;
	else
		ca->lru_head = e->lru_next;
	if (e->lru_next >= 0)
		ca->entries[e->lru_next].lru_prev = e->lru_prev;
	else
		ca->lru_tail = e->lru_prev;
	e->lru_prev = e->lru_next = -1;
}

static void lru_push_front(struct proxy_ca *ca, int i)
{
	struct leaf_entry *e = &ca->entries[i];
	e->lru_prev = -1;
	e->lru_next = ca->lru_head;
	if (ca->lru_head >= 0)
		ca->entries[ca->lru_head].lru_prev = i;
	ca->lru_head = i;
	if (ca->lru_tail < 0)
		ca->lru_tail = i;
}

static void bucket_remove(struct proxy_ca *ca, int i)
{
	int *link = &ca->buckets[host_hash(ca->entries[i].host)];
	while (*link >= 0 && *link != i)
		link = &ca->entries[*link].bucket_next;
	if (*link == i)
		*link = ca->entries[i].bucket_next;
}

static int cache_find(const struct proxy_ca *ca, const char *host)
{
	for (int i = ca->buckets[host_hash(host)]; i >= 0; i = ca->entries[i].bucket_next)
		if (strcmp(ca->entries[i].host, host) == 0)
			return i;
	return -1;
}

/* A slot for a new entry: a free one, else the least recently used. */
static int cache_slot(struct proxy_ca *ca)
{
	if (ca->n_entries < (int)PROXY_LEAF_CACHE_ENTRIES)
		return ca->n_entries++;
	int i = ca->lru_tail;
	lru_unlink(ca, i);
	bucket_remove(ca, i);
	X509_free(ca->entries[i].cert);
	ca->entries[i].cert = NULL;
	return i;
}

X509 *ca_leaf_for_host(struct proxy_ca *ca, const char *host)
{
	if (host == NULL || host[0] == '\0' || strlen(host) > PROXY_MAX_HOST_BYTES)
		return NULL;
	int i = cache_find(ca, host);
	if (i < 0) {
		X509 *x = mint_leaf(ca, host);
		if (x == NULL)
			return NULL;
		ca->minted++;
		i = cache_slot(ca);
		struct leaf_entry *e = &ca->entries[i];
		snprintf(e->host, sizeof(e->host), "%s", host);
		e->cert = x;
		unsigned b = host_hash(host);
		e->bucket_next = ca->buckets[b];
		ca->buckets[b] = i;
		e->lru_prev = e->lru_next = -1;
	} else {
		lru_unlink(ca, i);
	}
	lru_push_front(ca, i);
	X509 *x = ca->entries[i].cert;
	if (X509_up_ref(x) != 1)
		return NULL;
	return x;
}

int ca_cached_leaves(const struct proxy_ca *ca)
{
	return ca->n_entries;
}
