/* http_relay_int.h - state shared by the relay's core (http_relay.c: I/O,
 * TLS, sniffing, framing, raw relay) and its request side
 * (http_relay_req.c: authority, canonical target, L7 policy, credential
 * placeholders). Private to those two files. */
#ifndef OPENSHELL_PROXY_HTTP_RELAY_INT_H
#define OPENSHELL_PROXY_HTTP_RELAY_INT_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "proxy/chunked.h"
#include "proxy/http_head.h"
#include "proxy/http_relay.h"
#include "proxy/proxy.h"

struct policy;

#define HR_IBUF_BYTES (PROXY_L7_MAX_HEAD_BYTES + PROXY_RELAY_READ_BYTES)
#define HR_HIGH_WATER (PROXY_RELAY_BUF_BYTES - PROXY_RELAY_READ_BYTES)
#define HR_MAX_STEPS 256 /* process() iterations per event (fairness guard) */
#define HR_MAX_UPGRADE_BYTES 256 /* the client's Upgrade list kept for the 101 */

enum { CL = 0, UP = 1 };

enum hr_mode { M_SNIFF, M_HANDSHAKE, M_HTTP, M_RAW, M_ENDING };
enum hr_rq { RQ_HEAD, RQ_BODY, RQ_DISCARD, RQ_WAIT };
enum hr_rs { RS_IDLE, RS_HEAD, RS_BODY, RS_EOF };

struct hside {
	struct hr_session *s;
	uv_stream_t *stream;
	SSL *ssl;
	bool hs_done;
	bool reading;
	bool tcp_eof;      /* the socket said EOF */
	bool eof;          /* no more plaintext will come */
	bool truncated;    /* ... because TCP ended without a TLS close_notify */
	bool wr_shut;      /* our write side is shut down (or shutting) */
	uv_shutdown_t shut_req;
	size_t ifill;
	char *ibuf;        /* HR_IBUF_BYTES */
	char *rbuf;        /* PROXY_RELAY_READ_BYTES, TLS sides only */
};

struct hr_session {
	struct proxy *px;
	void *owner;
	void (*close_owner)(void *owner);
	uv_timer_t *timer;
	bool detached, closing;
	enum hr_mode mode;
	struct hside side[2];
	unsigned shut_pending;

	char host[PROXY_MAX_HOST_BYTES + 1];
	uint16_t port;
	char *rule_name;
	char src_ip[64];
	uint16_t src_port;
	bool l7;
	unsigned long policy_gen;      /* px->policy_gen when the tunnel was decided */
	bool (*recheck_owner)(void *owner);
	bool allow_encoded_slash;
	bool tls;
	bool tool;                     /* tool route (http_relay.h hr_params) */
	char *tool_identity;
	bool upstream_reused;          /* side[UP] came from upool.c */
	bool keepable;                 /* ... and may go back there: keep_peer */
	struct sockaddr_storage keep_peer;

	enum hr_rq rq;
	uint64_t rq_left;
	bool rq_chunked;
	struct chunked_parser rq_chunk;
	bool req_is_head, req_upgrade, req_close;
	/* req_close by a lone `Connection: close`, not sent upstream: the
	 * client's connection ends after the response, the upstream's may be
	 * kept (keepable sessions only) */
	bool req_close_here;
	/* req_upgrade: the protocols asked for, every Upgrade line joined by ',' */
	size_t req_upgrade_len;
	char req_upgrade_protos[HR_MAX_UPGRADE_BYTES];

	enum hr_rs rs;
	uint64_t rs_left;
	bool rs_chunked;
	struct chunked_parser rs_chunk;
	bool rs_close;
	unsigned long n_requests;
};

/* http_relay.c */
void hr_log(struct hr_session *s, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Close the tunnel now (why: logged at info when non-NULL). */
void hr_fail(struct hr_session *s, const char *why);
/* End gracefully: stop reading, flush to the client, close. */
void hr_finish(struct hr_session *s);
/* Send plaintext to a side; false (tunnel failing) on error. */
bool hr_side_write(struct hr_session *s, struct hside *sd, const char *data, size_t len);
/* Drop the first n bytes of a side's input buffer. */
void hr_consume(struct hside *sd, size_t n);

/* http_relay_req.c */
/* One parsed request head at the start of the client's buffer: answer it
 * ourselves (denied, malformed) or forward it and set up its body. */
void hr_handle_request(struct hr_session *s, const struct http_head *h);
/* Send a proxy-made response (malloc'd, consumed; NULL: fail). keep: the
 * tunnel stays usable, else it ends after the response. */
void hr_answer(struct hr_session *s, char *resp, size_t len, bool keep);
void hr_audit_request(struct hr_session *s, bool allow, const char *method, const char *path,
		      const char *reason, const char *what);

#endif
