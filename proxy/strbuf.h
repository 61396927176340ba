#ifndef OPENSHELL_PROXY_STRBUF_H
#define OPENSHELL_PROXY_STRBUF_H
/* strbuf.h - a growable byte buffer, always NUL-terminated once written to.
 * Growing it wipes the old block, and strbuf_free wipes the live one: it may
 * hold real credentials (the upstream request head). An allocation failure
 * sets `failed` and makes every later put a no-op. */
#include <stdbool.h>
#include <stddef.h>

struct strbuf {
	char *p;
	size_t len, cap;
	bool failed;
};

void strbuf_put(struct strbuf *b, const char *d, size_t n);
void strbuf_puts(struct strbuf *b, const char *s);
/* Wipe and free the block; the buffer is empty again. */
void strbuf_free(struct strbuf *b);

#endif
