/* tls_floor.c - the least a TLS-intercepting explicit CONNECT proxy can do,
 * run by `make bench` as the contender "floor-tls" in the interception
 * scenarios (P3, P8).
 *
 * One thread, level-triggered epoll, nonblocking sockets, TCP_NODELAY on both
 * ends. At start: a P-256 CA and one P-256 leaf signed by it, in memory, sent
 * as leaf + CA like openshell's chain; one leaf for every host (openshell's
 * leaf cache is warm while it is measured; the clients do not verify). Per
 * connection: read the CONNECT head, resolve the name once (cached for the
 * run), dial, answer 200 once the dial is up; then, on the client's first
 * bytes, both TLS handshakes at once, each driven by its own socket: the
 * client's server flight first, then the ClientHello upstream, as openshell
 * does (proxy/http_relay.c, start_tls). Bytes flow once both are done.
 *
 * As openshell: TLS >= 1.2; towards the client a server session cache and
 * one ticket per handshake, ALPN http/1.1 only; upstream SNI = the CONNECT
 * host, the peer verified against UPSTREAM_CA_FILE and the name checked,
 * ALPN http/1.1 offered, sessions resumed per host:port (each ticket kept
 * from SSL_CTX_sess_set_new_cb, the latest unused one offered, each once, as
 * openshell's pool, proxy/tls_sessions.c). Then SSL_read into 16 KiB and
 * SSL_write to the other side, a side not read while its output waits.
 * Not done: no HTTP parsing, no policy, no audit, no limits, no timeouts,
 * no per-host leaf, certificate and key set once on the context; bytes sent
 * after the CONNECT head before the 200 close the connection. A bench tool,
 * not part of the sandbox: it trusts its clients. A fifth argument opens the
 * listener in another network namespace, as connect_floor.c's fourth.
 *
 *   cc -O2 -o tls_floor bench/probes/tls_floor.c -lssl -lcrypto
 *   ./tls_floor 127.0.0.1 13133 upstream-ca.pem
 */
#define _GNU_SOURCE
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "floor_common.h"

enum {
	HEAD_MAX = 4096,
	BUF_BYTES = 16384,
	SESSION_HOSTS = 32,
	SESSIONS_PER_HOST = 64,
};

static const unsigned char alpn_http11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
static const unsigned char session_ctx_id[] = "tls-floor";

struct conn;
struct end {
	struct conn *c;
	int fd;
	unsigned events; /* what epoll watches now; (unsigned)-1: not added */
	unsigned want;   /* what this side's SSL calls wait for now */
	SSL *ssl;
	bool hs_done, eof, shut; /* eof: its close (or TCP EOF) read; shut: ours sent */
};

struct dir {
	size_t len; /* read from one end, not yet written to the other */
	char buf[BUF_BYTES];
};

struct sessions {
	char key[FLOOR_HOST_MAX + 8]; /* host:port */
	SSL_SESSION *sess[SESSIONS_PER_HOST]; /* oldest first */
	int n;
};

struct conn {
	enum { HEAD, DIAL, HANDSHAKE, RELAY, DEAD } state;
	struct conn *next_dead;
	struct end ends[2]; /* 0: client, 1: upstream */
	char host[300];
	struct sessions *sessions;
	size_t hlen;
	char head[HEAD_MAX];
	struct dir dirs[2]; /* 0: client -> upstream, 1: upstream -> client */
};

struct floor_state {
	int ep, listener;
	SSL_CTX *server, *client;
	struct floor_names names;
	struct sessions hosts[SESSION_HOSTS];
	int nhosts;
	struct conn *dead; /* closed in this batch of events, freed after it */
};

static void conn_close(struct floor_state *s, struct conn *c)
{
	for (int i = 0; i < 2; i++) {
		struct end *e = &c->ends[i];
		if (e->ssl) {
			/* An unclean end must not make the session unresumable. */
			if (e->hs_done)
				SSL_set_shutdown(e->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
			SSL_free(e->ssl);
		}
		if (e->fd >= 0) {
			epoll_ctl(s->ep, EPOLL_CTL_DEL, e->fd, NULL);
			close(e->fd);
		}
	}
	ERR_clear_error();
	c->state = DEAD;
	c->next_dead = s->dead;
	s->dead = c;
}

static void free_dead(void *state)
{
	struct floor_state *s = state;
	while (s->dead) {
		struct conn *c = s->dead;
		s->dead = c->next_dead;
		free(c);
	}
}

static int watch(struct floor_state *s, struct end *e, unsigned events)
{
	return floor_watch(s->ep, e->fd, &e->events, events, e);
}

/* After an SSL call on e returned r <= 0: 0 and e->want set when it must wait. */
static int blocked(struct end *e, int r)
{
	switch (SSL_get_error(e->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		e->want |= EPOLLIN;
		return 0;
	case SSL_ERROR_WANT_WRITE:
		e->want |= EPOLLOUT;
		return 0;
	default:
		return -1;
	}
}

/* Moves what it can from end i to the other; -1 on an error. SSL_read is
 * repeated until it wants the socket, so nothing stays in SSL_pending(). */
static int pump(struct conn *c, int i)
{
	struct end *from = &c->ends[i], *to = &c->ends[1 - i];
	struct dir *d = &c->dirs[i];
	for (;;) {
		if (d->len > 0) {
			int w = SSL_write(to->ssl, d->buf, (int)d->len);
			if (w <= 0)
				return blocked(to, w);
			d->len = 0;
		}
		if (from->eof)
			break;
		int r = SSL_read(from->ssl, d->buf, sizeof d->buf);
		if (r > 0) {
			d->len = (size_t)r;
		} else if (SSL_get_error(from->ssl, r) == SSL_ERROR_ZERO_RETURN) {
			from->eof = true; /* close_notify, or EOF (SSL_OP_IGNORE_UNEXPECTED_EOF) */
		} else {
			return blocked(from, r);
		}
	}
	if (!to->shut) {
		int r = SSL_shutdown(to->ssl); /* 0: our close_notify sent */
		if (r < 0)
			return blocked(to, r);
		to->shut = true;
		shutdown(to->fd, SHUT_WR);
	}
	return 0;
}

static void relay(struct floor_state *s, struct conn *c, struct end *e, unsigned events)
{
	c->ends[0].want = c->ends[1].want = 0;
	if (pump(c, 0) < 0 || pump(c, 1) < 0 || (c->ends[0].shut && c->ends[1].shut) ||
	    events & EPOLLERR || (events & EPOLLHUP && e->eof) ||
	    watch(s, &c->ends[0], c->ends[0].want) < 0 || watch(s, &c->ends[1], c->ends[1].want) < 0)
		conn_close(s, c);
}

static int step_handshake(struct end *e)
{
	if (e->hs_done)
		return 0;
	e->want = 0;
	int r = SSL_do_handshake(e->ssl);
	if (r == 1) {
		e->hs_done = true;
		return 0;
	}
	return blocked(e, r);
}

/* The client's side on its bytes (it starts the upstream handshake after its
 * own first step), the upstream's on its own. */
static void handshake(struct floor_state *s, struct conn *c, struct end *e, unsigned events)
{
	struct end *cl = &c->ends[0], *up = &c->ends[1];
	if (events & (EPOLLERR | EPOLLHUP))
		goto fail;
	if (e == cl && step_handshake(cl) < 0)
		goto fail;
	if ((e == up || up->want == 0) && step_handshake(up) < 0)
		goto fail;
	if (cl->hs_done && up->hs_done) {
		c->state = RELAY;
		relay(s, c, e, 0); /* the client's request may be waiting already */
		return;
	}
	if (watch(s, cl, cl->hs_done ? 0 : cl->want) == 0 &&
	    watch(s, up, up->hs_done ? 0 : up->want) == 0)
		return;
fail:
	conn_close(s, c);
}

/* Where host:port's upstream sessions are kept. */
static struct sessions *sessions_of(struct floor_state *s, const char *key)
{
	for (int i = 0; i < s->nhosts; i++)
		if (strcmp(s->hosts[i].key, key) == 0)
			return &s->hosts[i];
	struct sessions *k = &s->hosts[s->nhosts < SESSION_HOSTS ? s->nhosts++ : 0];
	while (k->n > 0)
		SSL_SESSION_free(k->sess[--k->n]);
	snprintf(k->key, sizeof k->key, "%s", key);
	return k;
}

/* Each new upstream session (TLS 1.3: a ticket, after the handshake) is kept,
 * the oldest dropped beyond SESSIONS_PER_HOST. */
static int new_session(SSL *ssl, SSL_SESSION *sess)
{
	struct sessions *k = SSL_get_app_data(ssl);
	if (!k || !SSL_SESSION_is_resumable(sess))
		return 0;
	if (k->n == SESSIONS_PER_HOST) {
		SSL_SESSION_free(k->sess[0]);
		memmove(&k->sess[0], &k->sess[1], (SESSIONS_PER_HOST - 1) * sizeof k->sess[0]);
		k->n--;
	}
	k->sess[k->n++] = sess;
	return 1;
}

/* The latest session not offered yet: OpenSSL marks a TLS 1.3 session not
 * resumable once a handshake resumed it (SSL_SESS_CACHE_CLIENT), and its
 * successors arrive a round trip later, so concurrent connections sharing
 * one session would mostly get full handshakes. */
static void offer_session(struct sessions *k, SSL *ssl)
{
	if (k->n == 0)
		return;
	SSL_SESSION *sess = k->sess[--k->n];
	if (SSL_set_session(ssl, sess) != 1)
		ERR_clear_error();
	SSL_SESSION_free(sess);
}

static int dial(struct floor_state *s, struct conn *c)
{
	char *end = memmem(c->head, c->hlen, "\r\n\r\n", 4);
	unsigned short port;
	if (end + 4 != c->head + c->hlen) /* bytes before the 200: not for a floor */
		return -1;
	c->ends[1].fd = floor_dial(&s->names, c->head, c->host, &port);
	if (c->ends[1].fd < 0)
		return -1;
	char key[FLOOR_HOST_MAX + 8];
	snprintf(key, sizeof key, "%s:%u", c->host, (unsigned)port);
	c->sessions = sessions_of(s, key);
	c->state = DIAL;
	if (watch(s, &c->ends[0], 0) < 0 || watch(s, &c->ends[1], EPOLLOUT) < 0)
		return -1;
	return 0;
}

static int new_ssls(struct floor_state *s, struct conn *c)
{
	SSL *cl = c->ends[0].ssl = SSL_new(s->server);
	SSL *up = c->ends[1].ssl = SSL_new(s->client);
	if (!cl || !up || SSL_set_fd(cl, c->ends[0].fd) != 1 || SSL_set_fd(up, c->ends[1].fd) != 1)
		return -1;
	SSL_set_accept_state(cl);
	unsigned char ip[16];
	if (inet_pton(AF_INET, c->host, ip) == 1 || inet_pton(AF_INET6, c->host, ip) == 1) {
		if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(up), c->host) != 1)
			return -1;
	} else if (SSL_set_tlsext_host_name(up, c->host) != 1 || SSL_set1_host(up, c->host) != 1) {
		return -1;
	}
	SSL_set_hostflags(up, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	SSL_set_app_data(up, c->sessions);
	offer_session(c->sessions, up);
	SSL_set_connect_state(up);
	return 0;
}

static int dialed(struct floor_state *s, struct conn *c)
{
	static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
	static const char bad[] = "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n";
	int err = 0;
	socklen_t len = sizeof err;
	if (getsockopt(c->ends[1].fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
		floor_write_all(c->ends[0].fd, bad, sizeof bad - 1);
		return -1;
	}
	if (new_ssls(s, c) < 0)
		return -1;
	floor_write_all(c->ends[0].fd, ok, sizeof ok - 1);
	c->state = HANDSHAKE;
	c->ends[0].want = EPOLLIN; /* the ClientHello */
	c->ends[1].want = 0;       /* not started */
	if (watch(s, &c->ends[0], EPOLLIN) < 0 || watch(s, &c->ends[1], 0) < 0)
		return -1;
	return 0;
}

static int read_head(struct floor_state *s, struct conn *c)
{
	int r = floor_read_head(c->ends[0].fd, c->head, sizeof c->head, &c->hlen);
	return r > 0 ? dial(s, c) : r;
}

static void accept_all(void *state)
{
	struct floor_state *s = state;
	for (;;) {
		int fd = accept4(s->listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		struct conn *c = malloc(sizeof *c);
		if (!c) {
			close(fd);
			continue;
		}
		memset(c, 0, offsetof(struct conn, head)); /* not the buffers */
		c->dirs[0].len = c->dirs[1].len = 0;
		for (int i = 0; i < 2; i++)
			c->ends[i] = (struct end){.c = c, .fd = -1, .events = (unsigned)-1};
		c->ends[0].fd = fd;
		floor_set_nodelay(fd);
		if (watch(s, &c->ends[0], EPOLLIN) < 0)
			conn_close(s, c);
	}
}

static void on_event(void *state, void *ptr, unsigned events)
{
	struct floor_state *s = state;
	struct end *e = ptr;
	struct conn *c = e->c;
	int rc = 0;
	if (c->state == DEAD)
		return;
	ERR_clear_error(); /* SSL_get_error() reads the queue */
	if (c->state == HEAD)
		rc = read_head(s, c);
	else if (c->state == DIAL && e == &c->ends[1])
		rc = dialed(s, c);
	else if (c->state == DIAL)
		rc = events & (EPOLLHUP | EPOLLERR) ? -1 : 0; /* the client gave up */
	else if (c->state == HANDSHAKE)
		handshake(s, c, e, events); /* closes c itself */
	else
		relay(s, c, e, events); /* closes c itself */
	if (rc < 0)
		conn_close(s, c);
}

/* ---- set-up: certificates and contexts ---- */

static bool add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX v3;
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, issuer, cert, NULL, NULL, 0);
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	bool ok = ext && X509_add_ext(cert, ext, -1) == 1;
	X509_EXTENSION_free(ext);
	return ok;
}

/* A certificate for key, named cn, signed by issuer (NULL: by itself). */
static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key,
		       long serial)
{
	X509 *x = X509_new();
	if (!x)
		return NULL;
	X509_NAME *n = X509_get_subject_name(x);
	X509 *iss = issuer ? issuer : x;
	bool ok = X509_set_version(x, 2) == 1 &&
		  ASN1_INTEGER_set(X509_get_serialNumber(x), serial) == 1 &&
		  X509_gmtime_adj(X509_getm_notBefore(x), -86400) &&
		  X509_gmtime_adj(X509_getm_notAfter(x), 30 * 86400L) &&
		  X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1,
					     -1, 0) == 1 &&
		  X509_set_issuer_name(x, X509_get_subject_name(iss)) == 1 &&
		  X509_set_pubkey(x, key) == 1;
	if (ok && !issuer)
		ok = add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") &&
		     add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign") &&
		     add_ext(x, x, NID_subject_key_identifier, "hash");
	else if (ok)
		ok = add_ext(x, iss, NID_basic_constraints, "critical,CA:FALSE") &&
		     add_ext(x, iss, NID_key_usage, "critical,digitalSignature") &&
		     add_ext(x, iss, NID_ext_key_usage, "serverAuth") &&
		     add_ext(x, iss, NID_subject_alt_name, "DNS:*.test") &&
		     add_ext(x, iss, NID_authority_key_identifier, "keyid:always");
	if (!ok || X509_sign(x, issuer_key, EVP_sha256()) <= 0) {
		X509_free(x);
		return NULL;
	}
	return x;
}

/* Only http/1.1; a client that offers ALPN without it is refused (as openshell). */
static int select_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
		       const unsigned char *in, unsigned int inlen, void *arg)
{
	unsigned char *sel = NULL;
	unsigned char sel_len = 0;
	(void)ssl;
	(void)arg;
	if (SSL_select_next_proto(&sel, &sel_len, alpn_http11, sizeof alpn_http11, in, inlen) !=
	    OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	*out = sel;
	*outlen = sel_len;
	return SSL_TLSEXT_ERR_OK;
}

static int make_contexts(struct floor_state *s, const char *upstream_ca)
{
	EVP_PKEY *ca_key = EVP_EC_gen("P-256"), *leaf_key = EVP_EC_gen("P-256");
	X509 *ca = ca_key ? make_cert(ca_key, "tls-floor CA", NULL, ca_key, 1) : NULL;
	X509 *leaf = ca && leaf_key ? make_cert(leaf_key, "tls-floor", ca, ca_key, 2) : NULL;
	s->server = SSL_CTX_new(TLS_server_method());
	s->client = SSL_CTX_new(TLS_client_method());
	int rc = -1;
	if (!leaf || !s->server || !s->client ||
	    SSL_CTX_set_min_proto_version(s->server, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_min_proto_version(s->client, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_session_id_context(s->server, session_ctx_id, sizeof session_ctx_id - 1) != 1 ||
	    SSL_CTX_set_num_tickets(s->server, 1) != 1 ||
	    SSL_CTX_use_certificate(s->server, leaf) != 1 ||
	    SSL_CTX_use_PrivateKey(s->server, leaf_key) != 1 ||
	    SSL_CTX_add1_chain_cert(s->server, ca) != 1 ||
	    SSL_CTX_load_verify_locations(s->client, upstream_ca, NULL) != 1 ||
	    SSL_CTX_set_alpn_protos(s->client, alpn_http11, sizeof alpn_http11) != 0)
		goto out;
	SSL_CTX_set_session_cache_mode(s->server, SSL_SESS_CACHE_SERVER);
	SSL_CTX_set_alpn_select_cb(s->server, select_alpn, NULL);
	SSL_CTX_set_verify(s->client, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_session_cache_mode(s->client,
				       SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(s->client, new_session);
	SSL_CTX_set_options(s->server, SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_options(s->client, SSL_OP_IGNORE_UNEXPECTED_EOF);
	rc = 0;
out:
	X509_free(leaf);
	X509_free(ca);
	EVP_PKEY_free(leaf_key);
	EVP_PKEY_free(ca_key);
	return rc;
}

int main(int argc, char **argv)
{
	static struct floor_state s;
	if (argc != 4 && argc != 5) {
		fprintf(stderr, "usage: %s IP PORT UPSTREAM_CA_FILE [LISTENER_NETNS_FILE]\n",
			argv[0]);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if (make_contexts(&s, argv[3]) < 0) {
		fprintf(stderr, "tls_floor: TLS set-up failed\n");
		ERR_print_errors_fp(stderr);
		return 1;
	}
	s.listener = floor_listen(argc == 5 ? argv[4] : NULL, argv[1], argv[2]);
	s.ep = epoll_create1(EPOLL_CLOEXEC);
	static const struct floor_ops ops = {accept_all, on_event, free_dead};
	return floor_run("tls_floor", s.ep, s.listener, &ops, &s);
}
