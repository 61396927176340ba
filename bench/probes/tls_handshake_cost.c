/* tls_handshake_cost.c - what OpenSSL itself costs per TLS 1.3 handshake on
 * this machine, without sockets: a client and a server SSL in one process
 * joined by a BIO pair, a P-256 certificate, N full handshakes and then N
 * resumed ones. CPU time per handshake pair (both ends), and each end's own
 * share (the server's and the client's calls timed apart: an intercepting
 * proxy is the server of a full handshake towards a client that keeps no
 * sessions and the client of a resumed one upstream); run it under
 * `valgrind --tool=callgrind` for instruction counts that do not depend on
 * the machine's load. Argument: "t1" to send one session ticket per
 * handshake instead of OpenSSL's default two; second argument: N.
 *
 *   cc -O2 -o /tmp/hs bench/probes/tls_handshake_cost.c -lssl -lcrypto
 *   /tmp/hs; /tmp/hs t1; valgrind --tool=callgrind /tmp/hs t1 150
 */
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double cpu_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static __attribute__((noreturn)) void die(const char *what)
{
	fprintf(stderr, "%s failed\n", what);
	ERR_print_errors_fp(stderr);
	exit(1);
}

static X509 *self_signed(EVP_PKEY *k)
{
	X509 *x = X509_new();
	if (x == NULL || X509_set_version(x, 2) != 1 ||
	    ASN1_INTEGER_set(X509_get_serialNumber(x), 1) != 1 ||
	    X509_gmtime_adj(X509_getm_notBefore(x), 0) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(x), 86400) == NULL || X509_set_pubkey(x, k) != 1)
		die("certificate");
	X509_NAME *n = X509_get_subject_name(x);
	if (X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"a.test", -1,
				       -1, 0) != 1 ||
	    X509_set_issuer_name(x, n) != 1 || X509_sign(x, k, EVP_sha256()) == 0)
		die("certificate");
	return x;
}

static double thread_cpu_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

enum { CLIENT, SERVER };

/* CPU time each end spent in its own calls. */
struct sides {
	double us[2];
};

static int timed_step(struct sides *t, int end, SSL *ssl)
{
	double t0 = thread_cpu_us();
	int rc = SSL_do_handshake(ssl);
	t->us[end] += thread_cpu_us() - t0;
	return rc;
}

static void handshake(struct sides *t, SSL *c, SSL *s)
{
	for (int i = 0; i < 20; i++) {
		int a = timed_step(t, CLIENT, c), b = timed_step(t, SERVER, s);
		if (a == 1 && b == 1)
			return;
	}
	die("handshake");
}

/* One byte of data lets the client read its tickets. */
static void exchange(struct sides *t, SSL *c, SSL *s)
{
	char buf[8];
	double t0 = thread_cpu_us();
	int w = SSL_write(s, "x", 1);
	double t1 = thread_cpu_us();
	int r = SSL_read(c, buf, sizeof(buf));
	t->us[SERVER] += t1 - t0;
	t->us[CLIENT] += thread_cpu_us() - t1;
	if (w != 1 || r != 1)
		die("data");
}

static SSL *timed_new(struct sides *t, int end, SSL_CTX *ctx)
{
	double t0 = thread_cpu_us();
	SSL *ssl = SSL_new(ctx);
	t->us[end] += thread_cpu_us() - t0;
	if (ssl == NULL)
		die("SSL_new");
	return ssl;
}

static void timed_end(struct sides *t, int end, SSL *ssl)
{
	double t0 = thread_cpu_us();
	SSL_shutdown(ssl);
	SSL_free(ssl);
	t->us[end] += thread_cpu_us() - t0;
}

/* n handshakes (after one warm-up); resume: each offers the last session. */
static void run(SSL_CTX *cc, SSL_CTX *sc, int n, int resume, const char *what)
{
	SSL_SESSION *sess = NULL;
	struct sides t = { { 0, 0 } };
	double t0 = 0;
	int reused = 0;
	for (int i = 0; i <= n; i++) {
		if (i == 1) {
			t0 = cpu_us();
			t = (struct sides){ { 0, 0 } };
		}
		SSL *c = timed_new(&t, CLIENT, cc), *s = timed_new(&t, SERVER, sc);
		BIO *b1 = NULL, *b2 = NULL;
		if (BIO_new_bio_pair(&b1, 0, &b2, 0) != 1)
			die("BIO pair");
		SSL_set_bio(c, b1, b1);
		SSL_set_bio(s, b2, b2);
		SSL_set_connect_state(c);
		SSL_set_accept_state(s);
		if (SSL_set_tlsext_host_name(c, "a.test") != 1 ||
		    (resume && sess != NULL && SSL_set_session(c, sess) != 1))
			die("client set-up");
		handshake(&t, c, s);
		exchange(&t, c, s);
		reused += SSL_session_reused(c);
		if (resume) {
			SSL_SESSION_free(sess);
			sess = SSL_get1_session(c);
		}
		timed_end(&t, CLIENT, c);
		timed_end(&t, SERVER, s);
	}
	if (n > 0)
		printf("%-34s %7.1f us CPU per handshake pair (server %.1f, client %.1f), "
		       "%d of %d resumed\n",
		       what, (cpu_us() - t0) / n, t.us[SERVER] / n, t.us[CLIENT] / n, reused,
		       n + 1);
	SSL_SESSION_free(sess);
}

int main(int argc, char **argv)
{
	const char *opt = argc > 1 ? argv[1] : "";
	int n = argc > 2 ? atoi(argv[2]) : 2000;
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (k == NULL)
		die("key");
	X509 *x = self_signed(k);
	SSL_CTX *sc = SSL_CTX_new(TLS_server_method()), *cc = SSL_CTX_new(TLS_client_method());
	if (sc == NULL || cc == NULL || SSL_CTX_use_certificate(sc, x) != 1 ||
	    SSL_CTX_use_PrivateKey(sc, k) != 1 ||
	    SSL_CTX_set_min_proto_version(sc, TLS1_3_VERSION) != 1)
		die("contexts");
	if (strcmp(opt, "t1") == 0 && SSL_CTX_set_num_tickets(sc, 1) != 1)
		die("tickets");
	SSL_CTX_set_verify(cc, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_session_cache_mode(cc, SSL_SESS_CACHE_CLIENT);
	run(cc, sc, n, 0, "full handshake (ECDHE, P-256 ECDSA)");
	run(cc, sc, n, 1, "resumed handshake (PSK + ECDHE)");
	SSL_CTX_free(cc);
	SSL_CTX_free(sc);
	X509_free(x);
	EVP_PKEY_free(k);
	return 0;
}
