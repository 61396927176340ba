/* chunked.h - streaming validator for a chunked request body (private to
 * proxy/). It does not decode: the proxy forwards the framing unchanged and
 * uses the validator to find exactly where the body ends (so a pipelined
 * next request is never forwarded) and to refuse malformed framing. */
#ifndef OPENSHELL_PROXY_CHUNKED_H
#define OPENSHELL_PROXY_CHUNKED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "proxy/proxy.h"

#define CHUNKED_MAX_SIZE_DIGITS PROXY_CHUNK_SIZE_MAX_DIGITS
#define CHUNKED_MAX_EXT_BYTES PROXY_CHUNK_EXT_MAX_BYTES
#define CHUNKED_MAX_TRAILER_BYTES PROXY_CHUNK_TRAILER_MAX_BYTES

enum chunked_state {
	CHUNKED_SIZE = 0,
	CHUNKED_SIZE_WS,      /* BWS after the size, before ';' */
	CHUNKED_EXT,
	CHUNKED_SIZE_LF,
	CHUNKED_DATA,
	CHUNKED_DATA_CR,
	CHUNKED_DATA_LF,
	CHUNKED_TRAILER_START,
	CHUNKED_TRAILER_NAME,
	CHUNKED_TRAILER_VALUE,
	CHUNKED_TRAILER_LF,
	CHUNKED_FINAL_LF,
	CHUNKED_DONE,
	CHUNKED_ERROR,
};

struct chunked_parser {
	enum chunked_state state;
	uint64_t size;        /* chunk-size being read / data bytes left */
	unsigned digits;
	size_t ext_bytes;
	size_t trailer_bytes;
	const char *error;    /* set when state == CHUNKED_ERROR */
};

void chunked_init(struct chunked_parser *p);

/* Feed the next n bytes of the stream. Returns how many of them belong to
 * the body (all of them unless the body ended inside this buffer), or -1 on
 * a framing error (p->error says why). Once chunked_done(), further bytes
 * are not body and 0 is returned. */
ssize_t chunked_feed(struct chunked_parser *p, const char *buf, size_t n);

bool chunked_done(const struct chunked_parser *p);

#endif
