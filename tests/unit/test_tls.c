/* test_tls.c - the sandbox CA, leaf cache, CA files, TLS contexts (in-memory
 * handshakes) and the tunnel sniffer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "proxy/ca.h"
#include "proxy/proxy.h"
#include "proxy/tls.h"

static struct proxy_ca *new_ca(void)
{
	char err[256];
	struct proxy_ca *ca = proxy_ca_create(err, sizeof(err));
	assert_non_null(ca);
	return ca;
}

static bool verifies(X509 *leaf, X509 *ca_cert, const char *host)
{
	X509_STORE *st = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	assert_non_null(st);
	assert_non_null(ctx);
	assert_int_equal(X509_STORE_add_cert(st, ca_cert), 1);
	assert_int_equal(X509_STORE_CTX_init(ctx, st, leaf, NULL), 1);
	X509_VERIFY_PARAM *p = X509_STORE_CTX_get0_param(ctx);
	if (strchr(host, ':') != NULL || strspn(host, "0123456789.") == strlen(host))
		X509_VERIFY_PARAM_set1_ip_asc(p, host);
	else
		X509_VERIFY_PARAM_set1_host(p, host, 0);
	X509_VERIFY_PARAM_set_purpose(p, X509_PURPOSE_SSL_SERVER);
	bool ok = X509_verify_cert(ctx) == 1;
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(st);
	return ok;
}

static void test_ca_certificate(void **state)
{
	struct proxy_ca *ca = new_ca();
	assert_non_null(strstr(ca->ca_pem, "-----BEGIN CERTIFICATE-----"));
	assert_null(strstr(ca->ca_pem, "PRIVATE"));
	assert_int_equal(X509_check_ca(ca->ca_cert), 1);
	assert_int_equal(X509_get_pathlen(ca->ca_cert), 0); /* signs leaves only */
	EVP_PKEY *pub = X509_get0_pubkey(ca->ca_cert);
	assert_int_equal(EVP_PKEY_get_id(pub), EVP_PKEY_EC);
	assert_int_equal(EVP_PKEY_get_bits(pub), 256);
	proxy_ca_free(ca);
}

static void test_leaf_dns_and_ip(void **state)
{
	struct proxy_ca *ca = new_ca();
	X509 *leaf = ca_leaf_for_host(ca, "api.example.com");
	assert_non_null(leaf);
	assert_true(verifies(leaf, ca->ca_cert, "api.example.com"));
	assert_false(verifies(leaf, ca->ca_cert, "other.example.com"));
	X509 *ip = ca_leaf_for_host(ca, "203.0.113.10");
	assert_true(verifies(ip, ca->ca_cert, "203.0.113.10"));
	X509 *ip6 = ca_leaf_for_host(ca, "2001:db8::1");
	assert_true(verifies(ip6, ca->ca_cert, "2001:db8::1"));
	/* another CA's leaf does not chain */
	struct proxy_ca *other = new_ca();
	assert_false(verifies(leaf, other->ca_cert, "api.example.com"));
	X509_free(leaf);
	X509_free(ip);
	X509_free(ip6);
	proxy_ca_free(other);
	proxy_ca_free(ca);
}

static void test_leaf_cache_lru(void **state)
{
	struct proxy_ca *ca = new_ca();
	X509 *a = ca_leaf_for_host(ca, "a.example");
	X509 *a2 = ca_leaf_for_host(ca, "a.example");
	assert_ptr_equal(a, a2); /* cached: the identical leaf */
	X509_free(a2);
	char host[64];
	/* fill the cache; keep touching a.example so it stays most recent */
	for (unsigned i = 0; i < PROXY_LEAF_CACHE_ENTRIES; i++) {
		snprintf(host, sizeof(host), "h%u.example", i);
		X509 *x = ca_leaf_for_host(ca, host);
		assert_non_null(x);
		X509_free(x);
		if (i % 100 == 0) {
			x = ca_leaf_for_host(ca, "a.example");
			X509_free(x);
		}
	}
	assert_int_equal(ca_cached_leaves(ca), (int)PROXY_LEAF_CACHE_ENTRIES);
	unsigned long minted = ca->minted;
	X509 *again = ca_leaf_for_host(ca, "a.example");
	assert_ptr_equal(again, a); /* survived: recently used */
	X509_free(again);
	X509 *h0 = ca_leaf_for_host(ca, "h0.example"); /* evicted: least recent */
	assert_int_equal(ca->minted, minted + 1);
	X509_free(h0);
	X509_free(a);
	assert_null(ca_leaf_for_host(ca, ""));
	proxy_ca_free(ca);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	static char buf[1 << 20];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return buf;
}

static void test_ca_files(void **state)
{
	struct proxy_ca *ca = new_ca();
	char dir[] = "/tmp/test-tls-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char sub[64];
	snprintf(sub, sizeof(sub), "%s/tls", dir);
	char cert[4096], bundle[4096], err[256];
	assert_int_equal(proxy_ca_write_files(ca, sub, cert, sizeof(cert), bundle, sizeof(bundle),
					      err, sizeof(err)), 0);
	struct stat st;
	assert_int_equal(stat(sub, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0755);
	assert_int_equal(stat(cert, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0644);
	assert_string_equal(slurp(cert), ca->ca_pem);
	char *b = strdup(slurp(bundle));
	assert_non_null(b);
	size_t blen = strlen(b), plen = strlen(ca->ca_pem);
	assert_true(blen >= plen);
	assert_string_equal(b + blen - plen, ca->ca_pem); /* the CA comes last */
	if (ca_system_bundle_path() != NULL) { /* the system bundle, whole, comes first */
		char *sys = strdup(slurp(ca_system_bundle_path()));
		assert_non_null(sys);
		size_t slen = strlen(sys);
		assert_true(slen > 0);
		assert_int_equal(blen, slen + (sys[slen - 1] != '\n') + plen);
		assert_memory_equal(b, sys, slen);
		free(sys);
	}
	assert_null(strstr(b, "PRIVATE KEY"));
	free(b);
	unlink(cert);
	unlink(bundle);
	rmdir(sub);
	rmdir(dir);
	/* an unwritable place is an error with a message */
	assert_int_equal(proxy_ca_write_files(ca, "/proc/nonexistent/tls", cert, sizeof(cert),
					      bundle, sizeof(bundle), err, sizeof(err)), -1);
	assert_true(err[0] != '\0');
	proxy_ca_free(ca);
}

/* What someone who can write the directory left at the temporary names (a
 * FIFO the open would block on, a hard link to a file O_TRUNC would empty)
 * is replaced, not opened. */
static void test_ca_files_replace_planted_temporaries(void **state)
{
	struct proxy_ca *ca = new_ca();
	char dir[] = "/tmp/test-tls-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char fifo[256], hard[256], victim[256];
	snprintf(fifo, sizeof(fifo), "%s/.%s.tmp", dir, PROXY_CA_CERT_FILE);
	snprintf(hard, sizeof(hard), "%s/.%s.tmp", dir, PROXY_CA_BUNDLE_FILE);
	snprintf(victim, sizeof(victim), "%s/victim", dir);
	assert_int_equal(mkfifo(fifo, 0666), 0);
	FILE *f = fopen(victim, "w");
	assert_non_null(f);
	assert_true(fputs("keep me\n", f) >= 0);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(link(victim, hard), 0);
	char cert[4096], bundle[4096], err[256];
	assert_int_equal(proxy_ca_write_files(ca, dir, cert, sizeof(cert), bundle, sizeof(bundle),
					      err, sizeof(err)), 0);
	assert_string_equal(slurp(victim), "keep me\n");
	assert_string_equal(slurp(cert), ca->ca_pem);
	assert_int_equal(access(fifo, F_OK), -1);
	unlink(cert);
	unlink(bundle);
	unlink(victim);
	rmdir(dir);
	proxy_ca_free(ca);
}

static void test_sniff(void **state)
{
	const unsigned char tls10[] = { 0x16, 0x03, 0x01, 0x02, 0x00 };
	const unsigned char tls13[] = { 0x16, 0x03, 0x03 };
	const unsigned char tls00[] = { 0x16, 0x03, 0x00 };
	const unsigned char appdata[] = { 0x17, 0x03, 0x03 };
	const unsigned char bad_minor[] = { 0x16, 0x03, 0x05 };
	assert_int_equal(tls_sniff(tls10, sizeof(tls10)), TLS_SNIFF_TLS);
	assert_int_equal(tls_sniff(tls13, sizeof(tls13)), TLS_SNIFF_TLS);
	assert_int_equal(tls_sniff(tls00, sizeof(tls00)), TLS_SNIFF_TLS);
	assert_int_equal(tls_sniff(appdata, sizeof(appdata)), TLS_SNIFF_OTHER);
	assert_int_equal(tls_sniff(bad_minor, sizeof(bad_minor)), TLS_SNIFF_OTHER);
	assert_int_equal(tls_sniff(tls13, 2), TLS_SNIFF_MORE);
	assert_int_equal(tls_sniff(tls13, 0), TLS_SNIFF_MORE);
	assert_int_equal(tls_sniff((const unsigned char *)"GET / HTTP/1.1", 14), TLS_SNIFF_HTTP);
	assert_int_equal(tls_sniff((const unsigned char *)"CONNECT h:443", 13), TLS_SNIFF_HTTP);
	assert_int_equal(tls_sniff((const unsigned char *)"GE", 2), TLS_SNIFF_MORE);
	assert_int_equal(tls_sniff((const unsigned char *)"SSH-2.0-x", 9), TLS_SNIFF_OTHER);
	assert_int_equal(tls_sniff((const unsigned char *)"PRI * HTTP/2.0", 14), TLS_SNIFF_OTHER);
}

/* ---- in-memory handshakes ---- */

/* Shuttle bytes between two SSLs with memory BIOs until both finish or
 * one fails. Returns true when both handshakes completed. */
static bool handshake(SSL *client, SSL *server)
{
	for (int i = 0; i < 50; i++) {
		/* SSL_get_error right after each call: moving bytes into the
		 * peer's read BIO clears its retry flags. */
		int rc = SSL_do_handshake(client);
		int ec = rc == 1 ? SSL_ERROR_NONE : SSL_get_error(client, rc);
		int rs = SSL_do_handshake(server);
		int es = rs == 1 ? SSL_ERROR_NONE : SSL_get_error(server, rs);
		char buf[65536];
		int n;
		while ((n = BIO_read(SSL_get_wbio(client), buf, sizeof(buf))) > 0)
			BIO_write(SSL_get_rbio(server), buf, n);
		while ((n = BIO_read(SSL_get_wbio(server), buf, sizeof(buf))) > 0)
			BIO_write(SSL_get_rbio(client), buf, n);
		if (rc == 1 && rs == 1)
			return true;
		if ((ec != SSL_ERROR_NONE && ec != SSL_ERROR_WANT_READ) ||
		    (es != SSL_ERROR_NONE && es != SSL_ERROR_WANT_READ))
			return false;
	}
	return false;
}

static SSL *mem_client(SSL_CTX *ctx, const char *sni)
{
	SSL *s = SSL_new(ctx);
	assert_non_null(s);
	SSL_set_bio(s, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
	if (sni != NULL)
		SSL_set_tlsext_host_name(s, sni);
	SSL_set_connect_state(s);
	return s;
}

static SSL_CTX *client_trusting(X509 *ca_cert)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	assert_non_null(ctx);
	X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), ca_cert);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	return ctx;
}

/* Freed without a shutdown, OpenSSL marks the client's session not
 * resumable; this frees it as after a clean close. */
static void free_resumable(SSL *c)
{
	SSL_set_shutdown(c, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
	SSL_free(c);
}

static void test_server_side_alpn_and_chain(void **state)
{
	struct proxy_ca *ca = new_ca();
	char err[256];
	struct proxy_tls *t = tls_create(ca, NULL, 0, err, sizeof(err));
	if (t == NULL && ca_system_bundle_path() == NULL)
		skip(); /* no system bundle and no extra CA: upstream trust is empty */
	assert_non_null(t);
	SSL_CTX *cctx = client_trusting(ca->ca_cert);
	/* h2 + http/1.1 offered: http/1.1 chosen */
	static const unsigned char both[] = "\x02h2\x08http/1.1";
	SSL_CTX_set_alpn_protos(cctx, both, sizeof(both) - 1);
	SSL *c = mem_client(cctx, "svc.example");
	SSL_set1_host(c, "svc.example");
	SSL *s = tls_new_server(t, "svc.example");
	assert_non_null(s);
	assert_true(handshake(c, s));
	const unsigned char *alpn = NULL;
	unsigned alpn_len = 0;
	SSL_get0_alpn_selected(c, &alpn, &alpn_len);
	assert_int_equal(alpn_len, 8);
	assert_memory_equal(alpn, "http/1.1", 8);
	STACK_OF(X509) *chain = SSL_get_peer_cert_chain(c);
	assert_int_equal(sk_X509_num(chain), 2); /* leaf + CA */
	SSL_SESSION *sess = SSL_get1_session(c);
	SSL_free(c);
	SSL_free(s);
	/* only h2 offered: refused */
	static const unsigned char h2[] = "\x02h2";
	SSL_CTX_set_alpn_protos(cctx, h2, sizeof(h2) - 1);
	c = mem_client(cctx, "svc.example");
	s = tls_new_server(t, "svc.example");
	assert_false(handshake(c, s));
	SSL_free(c);
	SSL_free(s);
	ERR_clear_error();
	SSL_SESSION_free(sess);
	SSL_CTX_free(cctx);
	tls_free(t);
	proxy_ca_free(ca);
}

/* The proxy's TLS state for ca; the test is skipped where it cannot be made. */
static struct proxy_tls *tls_or_skip(struct proxy_ca *ca)
{
	char err[256];
	struct proxy_tls *t = tls_create(ca, NULL, 0, err, sizeof(err));
	if (t == NULL)
		skip();
	return t;
}

static void test_session_resumption(void **state)
{
	struct proxy_ca *ca = new_ca();
	struct proxy_tls *t = tls_or_skip(ca);
	SSL_CTX *cctx = client_trusting(ca->ca_cert);
	SSL_CTX_set_max_proto_version(cctx, TLS1_2_VERSION); /* session after handshake */
	SSL *c = mem_client(cctx, "r.example");
	SSL *s = tls_new_server(t, "r.example");
	assert_true(handshake(c, s));
	SSL_SESSION *sess = SSL_get1_session(c);
	assert_non_null(sess);
	free_resumable(c);
	SSL_free(s);
	c = mem_client(cctx, "r.example");
	SSL_set_session(c, sess);
	s = tls_new_server(t, "r.example");
	assert_true(handshake(c, s));
	assert_int_equal(SSL_session_reused(c), 1);
	SSL_free(c);
	SSL_free(s);
	SSL_SESSION_free(sess);
	SSL_CTX_free(cctx);
	tls_free(t);
	proxy_ca_free(ca);
}

/* TLS 1.3: PROXY_TLS_TICKETS_PER_HANDSHAKE tickets per connection, and one
 * is enough to resume the next connection (which brings a fresh one). */
static int tickets_seen;
static SSL_SESSION *last_ticket;

static int on_new_session(SSL *ssl, SSL_SESSION *sess)
{
	tickets_seen++;
	SSL_SESSION_free(last_ticket);
	last_ticket = sess;
	return 1; /* we keep the reference */
}

/* The client reads what the server sent after the handshake (its tickets). */
static void take_tickets(SSL *c)
{
	char buf[64];
	assert_true(SSL_read(c, buf, sizeof(buf)) <= 0);
	assert_int_equal(SSL_get_error(c, -1), SSL_ERROR_WANT_READ);
}

static void test_tls13_tickets(void **state)
{
	struct proxy_ca *ca = new_ca();
	struct proxy_tls *t = tls_or_skip(ca);
	SSL_CTX *cctx = client_trusting(ca->ca_cert);
	SSL_CTX_set_min_proto_version(cctx, TLS1_3_VERSION);
	SSL_CTX_set_session_cache_mode(cctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL);
	SSL_CTX_sess_set_new_cb(cctx, on_new_session);
	tickets_seen = 0;
	for (int round = 0; round < 3; round++) {
		SSL *c = mem_client(cctx, "t.example");
		if (last_ticket != NULL)
			assert_int_equal(SSL_set_session(c, last_ticket), 1);
		SSL *s = tls_new_server(t, "t.example");
		assert_true(handshake(c, s));
		take_tickets(c);
		assert_int_equal(tickets_seen, (round + 1) * (int)PROXY_TLS_TICKETS_PER_HANDSHAKE);
		assert_int_equal(SSL_session_reused(c), round > 0);
		free_resumable(c);
		SSL_free(s);
	}
	SSL_SESSION_free(last_ticket);
	last_ticket = NULL;
	SSL_CTX_free(cctx);
	tls_free(t);
	proxy_ca_free(ca);
}

/* The upstream side checks the name against the extra CA's leaf. */
static void test_upstream_verification(void **state)
{
	struct proxy_ca *ca = new_ca();       /* the sandbox CA */
	struct proxy_ca *world = new_ca();    /* stands in for a private upstream CA */
	char dir[] = "/tmp/test-tls-up-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char cafile[128];
	snprintf(cafile, sizeof(cafile), "%s/world.pem", dir);
	FILE *f = fopen(cafile, "w");
	assert_non_null(f);
	fputs(world->ca_pem, f);
	fclose(f);
	const char *files[] = { cafile };
	char err[256];
	struct proxy_tls *t = tls_create(ca, files, 1, err, sizeof(err));
	assert_non_null(t);
	struct proxy_tls *wt = tls_create(world, files, 1, err, sizeof(err));
	assert_non_null(wt);
	/* good name */
	SSL *up = tls_new_client(t, "up.example", 443);
	SSL *srv = tls_new_server(wt, "up.example");
	assert_true(handshake(up, srv));
	SSL_free(up);
	SSL_free(srv);
	/* wrong name: the upstream presents a leaf for another host */
	up = tls_new_client(t, "up.example", 443);
	srv = tls_new_server(wt, "evil.example");
	assert_false(handshake(up, srv));
	assert_int_not_equal(SSL_get_verify_result(up), X509_V_OK);
	SSL_free(up);
	SSL_free(srv);
	/* untrusted issuer: the sandbox CA itself is not trusted upstream */
	up = tls_new_client(t, "up.example", 443);
	srv = tls_new_server(t, "up.example");
	assert_false(handshake(up, srv));
	SSL_free(up);
	SSL_free(srv);
	ERR_clear_error();
	/* a missing extra CA file is a start-up error */
	const char *missing[] = { "/nonexistent/ca.pem" };
	assert_null(tls_create(ca, missing, 1, err, sizeof(err)));
	assert_non_null(strstr(err, "/nonexistent/ca.pem"));
	/* no CA: interception off, not an error */
	assert_null(tls_create(NULL, NULL, 0, err, sizeof(err)));
	assert_int_equal(err[0], '\0');
	tls_free(t);
	tls_free(wt);
	unlink(cafile);
	rmdir(dir);
	proxy_ca_free(world);
	proxy_ca_free(ca);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ca_certificate),
		cmocka_unit_test(test_leaf_dns_and_ip),
		cmocka_unit_test(test_leaf_cache_lru),
		cmocka_unit_test(test_ca_files),
		cmocka_unit_test(test_ca_files_replace_planted_temporaries),
		cmocka_unit_test(test_sniff),
		cmocka_unit_test(test_server_side_alpn_and_chain),
		cmocka_unit_test(test_session_resumption),
		cmocka_unit_test(test_tls13_tickets),
		cmocka_unit_test(test_upstream_verification),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
