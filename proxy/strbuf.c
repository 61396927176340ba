/* strbuf.c - see strbuf.h. */
#include "proxy/strbuf.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#define STRBUF_FIRST_BYTES 1024u

/* Room for n more bytes and the NUL; a new block, the old one wiped (realloc
 * would leave copies of secrets behind in freed memory). */
static bool reserve(struct strbuf *b, size_t n)
{
	if (b->len + n + 1 <= b->cap)
		return true;
	size_t cap = b->cap ? b->cap : STRBUF_FIRST_BYTES;
	while (cap < b->len + n + 1)
		cap *= 2;
	char *p = malloc(cap);
	if (p == NULL)
		return false;
	if (b->p != NULL) {
		memcpy(p, b->p, b->len);
		OPENSSL_cleanse(b->p, b->cap);
		free(b->p);
	}
	b->p = p;
	b->cap = cap;
	return true;
}

void strbuf_put(struct strbuf *b, const char *d, size_t n)
{
	if (b->failed)
		return;
	if (!reserve(b, n)) {
		b->failed = true;
		return;
	}
	memcpy(b->p + b->len, d, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void strbuf_puts(struct strbuf *b, const char *s)
{
	strbuf_put(b, s, strlen(s));
}

void strbuf_free(struct strbuf *b)
{
	if (b->p != NULL) {
		OPENSSL_cleanse(b->p, b->cap);
		free(b->p);
	}
	memset(b, 0, sizeof(*b));
}
