/* tls.h - TLS contexts for interception (private to proxy/).
 *
 * One server context faces the sandbox (leaf per host from the sandbox CA,
 * ALPN http/1.1 only, TLS 1.2+, session cache and tickets for resumption);
 * one client context faces upstream (verified against the system bundle
 * plus the --upstream-ca files, hostname checked, ALPN http/1.1 only,
 * sessions resumed per host:port: tls_sessions.h).
 * All I/O goes through memory BIOs driven by the libuv loop (http_relay.c).
 */
#ifndef OPENSHELL_PROXY_TLS_H
#define OPENSHELL_PROXY_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <openssl/ssl.h>

#include "proxy/proxy.h"

struct tls_sessions;

struct proxy_tls {
	struct proxy_ca *ca;        /* borrowed */
	SSL_CTX *server;            /* towards the sandbox */
	SSL_CTX *client;            /* towards upstream */
	const char *system_bundle;  /* still to load into client's store, or NULL */
	struct tls_sessions *sessions; /* upstream sessions for resumption */
};

/* NULL ca: returns NULL without error (interception unavailable). On
 * failure returns NULL and fills err (err[0] != 0). */
struct proxy_tls *tls_create(struct proxy_ca *ca, const char *const *extra_ca_files,
			     size_t n_extra, char *err, size_t errlen);
void tls_free(struct proxy_tls *t);

/* A server-side SSL for a tunnel to `host`, with memory BIOs; NULL on error. */
SSL *tls_new_server(struct proxy_tls *t, const char *host);
/* A client-side SSL to `host` (SNI unless an IP; certificate name or IP
 * checked), with memory BIOs, offering a kept session for host:port;
 * NULL on error. */
SSL *tls_new_client(struct proxy_tls *t, const char *host, unsigned port);
/* Before freeing a client-side SSL whose handshake completed: keep its
 * session for the next connection to host:port. */
void tls_keep_client_session(struct proxy_tls *t, SSL *ssl, const char *host, unsigned port);

/* Free an SSL's record buffers if they hold nothing (OpenSSL allocates them
 * again on the next read or write): for a tunnel gone idle, as the contexts
 * keep them while a tunnel is busy. True when freed (or ssl is NULL). */
bool tls_release_buffers(SSL *ssl);
/* Ciphertext not yet decrypted (in the read BIO or the record layer) or
 * plaintext not yet returned: false means SSL_read() cannot make progress. */
bool tls_input_left(SSL *ssl);

enum tls_sniff { TLS_SNIFF_MORE = 0, TLS_SNIFF_TLS, TLS_SNIFF_HTTP, TLS_SNIFF_OTHER };
/* Classify the first bytes a client sent in a tunnel: a TLS handshake
 * record (0x16 0x03 0x00..0x04), an HTTP/1 request line, something else,
 * or "need more bytes". */
enum tls_sniff tls_sniff(const unsigned char *p, size_t n);

/* Text of the last OpenSSL error (or `fallback`), for logs. */
void tls_last_error(char *buf, size_t len, const char *fallback);

#endif
