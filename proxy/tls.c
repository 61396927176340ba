/* tls.c - server and client TLS contexts for interception. */
#include "proxy/tls.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/ca.h"
#include "proxy/cred.h"
#include "proxy/tls_sessions.h"

static const unsigned char alpn_http11[] = { 8, 'h', 't', 't', 'p', '/', '1', '.', '1' };
static const unsigned char session_ctx_id[] = "openshell-sandbox";

void tls_last_error(char *buf, size_t len, const char *fallback)
{
	unsigned long e = ERR_get_error();
	if (e == 0)
		snprintf(buf, len, "%s", fallback);
	else
		ERR_error_string_n(e, buf, len);
	ERR_clear_error();
}

/* Only http/1.1; a client that offers ALPN without it is refused. */
static int select_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
		       const unsigned char *in, unsigned int inlen, void *arg)
{
	unsigned char *sel = NULL;
	unsigned char sel_len = 0;
	if (SSL_select_next_proto(&sel, &sel_len, alpn_http11, sizeof(alpn_http11), in, inlen) !=
	    OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	*out = sel;
	*outlen = sel_len;
	return SSL_TLSEXT_ERR_OK;
}

static SSL_CTX *server_ctx(char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL ||
	    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_session_id_context(ctx, session_ctx_id, sizeof(session_ctx_id) - 1) != 1) {
		tls_last_error(err, errlen, "server TLS context");
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
	/* Every connection, resumed or not, hands the client a fresh ticket, so
	 * one is enough to resume the next; each costs an encrypted copy of the
	 * session (~3 % of a full handshake's instructions, callgrind). */
	if (SSL_CTX_set_num_tickets(ctx, PROXY_TLS_TICKETS_PER_HANDSHAKE) != 1) {
		tls_last_error(err, errlen, "server TLS context: session tickets");
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_alpn_select_cb(ctx, select_alpn, NULL);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	/* No SSL_MODE_RELEASE_BUFFERS: it frees and reallocates the record
	 * buffers several times per request; an idle tunnel gives them back
	 * with tls_release_buffers() instead. */
	return ctx;
}

static SSL_CTX *client_ctx(const char *const *extra, size_t n_extra, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
		tls_last_error(err, errlen, "client TLS context");
		SSL_CTX_free(ctx);
		return NULL;
	}
	/* The system bundle is loaded by the first upstream handshake
	 * (tls_new_client): parsing its ~140 certificates is most of the
	 * start-up time. The --upstream-ca files are the user's: checked now. */
	size_t loaded = ca_system_bundle_path() != NULL;
	for (size_t i = 0; i < n_extra; i++) {
		if (SSL_CTX_load_verify_locations(ctx, extra[i], NULL) != 1) {
			char why[256];
			tls_last_error(why, sizeof(why), "unreadable");
			snprintf(err, errlen, "--upstream-ca %s: %s", extra[i], why);
			SSL_CTX_free(ctx);
			return NULL;
		}
		loaded++;
	}
	if (loaded == 0) {
		snprintf(err, errlen, "no CA certificates for upstream TLS (no system bundle, "
			 "no --upstream-ca)");
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (SSL_CTX_set_alpn_protos(ctx, alpn_http11, sizeof(alpn_http11)) != 0) {
		tls_last_error(err, errlen, "ALPN");
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

struct proxy_tls *tls_create(struct proxy_ca *ca, const char *const *extra_ca_files,
			     size_t n_extra, char *err, size_t errlen)
{
	err[0] = '\0';
	if (ca == NULL)
		return NULL;
	if (n_extra > PROXY_MAX_UPSTREAM_CA_FILES) {
		snprintf(err, errlen, "more than %u --upstream-ca files",
			 PROXY_MAX_UPSTREAM_CA_FILES);
		return NULL;
	}
	struct proxy_tls *t = calloc(1, sizeof(*t));
	if (t == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	t->ca = ca;
	t->system_bundle = ca_system_bundle_path();
	t->sessions = calloc(1, sizeof(*t->sessions));
	if (t->sessions == NULL) {
		snprintf(err, errlen, "out of memory");
		free(t);
		return NULL;
	}
	t->server = server_ctx(err, errlen);
	if (t->server != NULL)
		t->client = client_ctx(extra_ca_files, n_extra, err, errlen);
	if (t->client == NULL) {
		tls_free(t);
		return NULL;
	}
	return t;
}

void tls_free(struct proxy_tls *t)
{
	if (t == NULL)
		return;
	SSL_CTX_free(t->server);
	SSL_CTX_free(t->client);
	if (t->sessions != NULL)
		tls_sessions_clear(t->sessions);
	free(t->sessions);
	free(t);
}

bool tls_release_buffers(SSL *ssl)
{
	return ssl == NULL || SSL_free_buffers(ssl) == 1;
}

bool tls_input_left(SSL *ssl)
{
	return BIO_ctrl_pending(SSL_get_rbio(ssl)) > 0 || SSL_has_pending(ssl) == 1;
}

static bool attach_mem_bios(SSL *ssl)
{
	BIO *rbio = BIO_new(BIO_s_mem());
	BIO *wbio = BIO_new(BIO_s_mem());
	if (rbio == NULL || wbio == NULL) {
		BIO_free(rbio);
		BIO_free(wbio);
		return false;
	}
	/* Reading an empty memory BIO means "retry", not EOF. */
	BIO_set_mem_eof_return(rbio, -1);
	BIO_set_mem_eof_return(wbio, -1);
	SSL_set_bio(ssl, rbio, wbio);
	return true;
}

SSL *tls_new_server(struct proxy_tls *t, const char *host)
{
	X509 *leaf = ca_leaf_for_host(t->ca, host);
	if (leaf == NULL)
		return NULL;
	SSL *ssl = SSL_new(t->server);
	bool ok = ssl != NULL && SSL_use_certificate(ssl, leaf) == 1 &&
		  SSL_use_PrivateKey(ssl, t->ca->leaf_key) == 1 &&
		  SSL_add1_chain_cert(ssl, t->ca->ca_cert) == 1 && attach_mem_bios(ssl);
	X509_free(leaf);
	if (!ok) {
		SSL_free(ssl);
		return NULL;
	}
	SSL_set_accept_state(ssl);
	return ssl;
}

/* Adds the system bundle to the upstream trust store, once. A failure is
 * retried by the next handshake; until then no upstream handshake starts
 * (fail closed). */
static bool load_system_bundle(struct proxy_tls *t)
{
	if (t->system_bundle == NULL)
		return true;
	if (SSL_CTX_load_verify_locations(t->client, t->system_bundle, NULL) != 1)
		return false; /* the caller reports OpenSSL's error queue */
	t->system_bundle = NULL;
	return true;
}

/* A kept session for host:port, if any; without one the handshake is full. */
static void offer_session(struct proxy_tls *t, SSL *ssl, const char *host, unsigned port)
{
	SSL_SESSION *sess = tls_sessions_take(t->sessions, host, port);
	if (sess == NULL)
		return;
	if (SSL_set_session(ssl, sess) != 1)
		ERR_clear_error();
	SSL_SESSION_free(sess);
}

void tls_keep_client_session(struct proxy_tls *t, SSL *ssl, const char *host, unsigned port)
{
	tls_sessions_put(t->sessions, host, port, SSL_get1_session(ssl));
}

SSL *tls_new_client(struct proxy_tls *t, const char *host, unsigned port)
{
	if (!load_system_bundle(t))
		return NULL;
	SSL *ssl = SSL_new(t->client);
	if (ssl == NULL)
		return NULL;
	unsigned char ip[16];
	bool is_ip = inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1;
	bool ok;
	if (is_ip) {
		ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) == 1;
	} else {
		ok = SSL_set_tlsext_host_name(ssl, host) == 1 && SSL_set1_host(ssl, host) == 1;
		SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	}
	if (!ok || !attach_mem_bios(ssl)) {
		SSL_free(ssl);
		return NULL;
	}
	offer_session(t, ssl, host, port);
	SSL_set_connect_state(ssl);
	return ssl;
}

static bool is_http_method_prefix(const unsigned char *p, size_t n, bool *complete)
{
	static const char *const methods[] = { "GET ", "HEAD ", "POST ", "PUT ", "DELETE ",
					       "PATCH ", "OPTIONS ", "CONNECT ", "TRACE ", NULL };
	bool prefix = false;
	*complete = false;
	for (size_t i = 0; methods[i] != NULL; i++) {
		size_t m = strlen(methods[i]);
		size_t k = n < m ? n : m;
		if (memcmp(p, methods[i], k) == 0) {
			prefix = true;
			if (n >= m)
				*complete = true;
		}
	}
	return prefix;
}

enum tls_sniff tls_sniff(const unsigned char *p, size_t n)
{
	if (n == 0)
		return TLS_SNIFF_MORE;
	if (p[0] == 0x16) {
		if (n < 3)
			return (n < 2 || p[1] == 0x03) ? TLS_SNIFF_MORE : TLS_SNIFF_OTHER;
		return p[1] == 0x03 && p[2] <= 0x04 ? TLS_SNIFF_TLS : TLS_SNIFF_OTHER;
	}
	bool complete = false;
	if (is_http_method_prefix(p, n, &complete))
		return complete ? TLS_SNIFF_HTTP : TLS_SNIFF_MORE;
	return TLS_SNIFF_OTHER;
}

/* ---- public wrappers of proxy/cred.h for the supervisor ---- */

struct cred_store *proxy_credentials_load(const char *path, char *err, size_t errlen)
{
	return cred_load(path, err, errlen);
}

void proxy_credentials_free(struct cred_store *s)
{
	cred_free(s);
}

size_t proxy_credentials_count(const struct cred_store *s)
{
	return s != NULL ? cred_count(s) : 0;
}

size_t proxy_credentials_env_entry(const struct cred_store *s, size_t i, char *out, size_t cap)
{
	return cred_env_entry(s, i, out, cap);
}
