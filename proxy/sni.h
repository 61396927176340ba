/* sni.h - who a transparently captured TCP flow wants to reach, from its
 * first bytes (private to proxy/): the server_name of a TLS ClientHello, or
 * the Host header of an HTTP/1.x request. Pure functions, no allocation;
 * fuzzed by tests/fuzz/fuzz_sni.c. */
#ifndef OPENSHELL_PROXY_SNI_H
#define OPENSHELL_PROXY_SNI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SNI_PEEK_MAX 16384u      /* bytes of a flow examined at most */
#define SNI_NAME_MAX 253u

enum sni_result {
	SNI_FOUND = 0,        /* name written */
	SNI_NONE,             /* complete ClientHello (or TLS we cannot read): no name */
	SNI_INCOMPLETE,       /* could still be TLS with a name: read more */
	SNI_NOT_TLS,          /* the bytes are not a TLS handshake */
};

/* Look for the host_name server_name in a TLS ClientHello at buf[0..len),
 * which may span several TLS records. The name is lower-cased, without a
 * trailing dot, and only [a-z0-9.-_] (else SNI_NONE). */
enum sni_result sni_parse(const uint8_t *buf, size_t len, char *name, size_t namelen);

enum peek_kind {
	PEEK_MORE = 0,        /* undecided: read more (if the limits allow) */
	PEEK_TLS,             /* TLS handshake; name set if it had an SNI */
	PEEK_HTTP,            /* HTTP/1.x request head; name set from Host */
	PEEK_OTHER,           /* neither */
};

/* Classify the first bytes of a flow. `final`: no more bytes will come
 * (peek limit, timeout or EOF), so answer with what is there. name gets
 * the host (TLS SNI or HTTP Host without port; possibly an IP literal) or
 * "" when there is none. */
enum peek_kind peek_identify(const uint8_t *buf, size_t len, bool final, char *name,
			     size_t namelen);

#endif
