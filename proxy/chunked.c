/* chunked.c - strict streaming validator for chunked framing (RFC 9112 7.1).
 * See chunked.h. */
#include "proxy/chunked.h"

#include "proxy/http_head.h"

void chunked_init(struct chunked_parser *p)
{
	*p = (struct chunked_parser){ .state = CHUNKED_SIZE };
}

bool chunked_done(const struct chunked_parser *p)
{
	return p->state == CHUNKED_DONE;
}

static int hex_value(unsigned char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

static bool fail(struct chunked_parser *p, const char *why)
{
	p->state = CHUNKED_ERROR;
	p->error = why;
	return false;
}

static bool is_field_value_byte(unsigned char ch)
{
	return ch == '\t' || ch == ' ' || (ch >= 0x21 && ch != 0x7f);
}

/* End of a chunk-size line: a zero size starts the trailer section. */
static void size_line_done(struct chunked_parser *p)
{
	p->state = p->size == 0 ? CHUNKED_TRAILER_START : CHUNKED_DATA;
}

static bool step_size(struct chunked_parser *p, unsigned char ch)
{
	int v = hex_value(ch);
	if (v >= 0) {
		if (++p->digits > CHUNKED_MAX_SIZE_DIGITS)
			return fail(p, "chunk size too large");
		p->size = p->size * 16 + (uint64_t)v;
		return true;
	}
	if (p->digits == 0)
		return fail(p, "chunk size missing");
	if (ch == '\r')
		p->state = CHUNKED_SIZE_LF;
	else if (ch == ';')
		p->state = CHUNKED_EXT;
	else if (ch == ' ' || ch == '\t')
		p->state = CHUNKED_SIZE_WS;
	else
		return fail(p, "invalid byte in chunk size");
	return true;
}

/* One byte of framing (everything except chunk data). */
static bool step(struct chunked_parser *p, unsigned char ch)
{
	switch (p->state) {
	case CHUNKED_SIZE:
		return step_size(p, ch);
	case CHUNKED_SIZE_WS:
		if (ch == ';')
			p->state = CHUNKED_EXT;
		else if (ch != ' ' && ch != '\t')
			return fail(p, "invalid byte after chunk size");
		return true;
	case CHUNKED_EXT:
		if (++p->ext_bytes > CHUNKED_MAX_EXT_BYTES)
			return fail(p, "chunk extension too long");
		if (ch == '\r')
			p->state = CHUNKED_SIZE_LF;
		else if (!is_field_value_byte(ch))
			return fail(p, "control byte in chunk extension");
		return true;
	case CHUNKED_SIZE_LF:
		if (ch != '\n')
			return fail(p, "bare CR in chunk size line");
		size_line_done(p);
		return true;
	case CHUNKED_DATA_CR:
		if (ch != '\r')
			return fail(p, "chunk data not followed by CRLF");
		p->state = CHUNKED_DATA_LF;
		return true;
	case CHUNKED_DATA_LF:
		if (ch != '\n')
			return fail(p, "chunk data not followed by CRLF");
		p->state = CHUNKED_SIZE;
		p->size = 0;
		p->digits = 0;
		p->ext_bytes = 0;
		return true;
	case CHUNKED_TRAILER_START:
		if (ch == '\r') {
			p->state = CHUNKED_FINAL_LF;
			return true;
		}
		if (!http_is_tchar(ch))
			return fail(p, "invalid trailer field name");
		p->state = CHUNKED_TRAILER_NAME;
		return true;
	case CHUNKED_TRAILER_NAME:
		if (ch == ':')
			p->state = CHUNKED_TRAILER_VALUE;
		else if (!http_is_tchar(ch))
			return fail(p, "invalid trailer field name");
		return true;
	case CHUNKED_TRAILER_VALUE:
		if (ch == '\r')
			p->state = CHUNKED_TRAILER_LF;
		else if (!is_field_value_byte(ch))
			return fail(p, "control byte in trailer field");
		return true;
	case CHUNKED_TRAILER_LF:
		if (ch != '\n')
			return fail(p, "bare CR in trailer section");
		p->state = CHUNKED_TRAILER_START;
		return true;
	case CHUNKED_FINAL_LF:
		if (ch != '\n')
			return fail(p, "bare CR at end of chunked body");
		p->state = CHUNKED_DONE;
		return true;
	default:
		return fail(p, "internal state error");
	}
}

ssize_t chunked_feed(struct chunked_parser *p, const char *buf, size_t n)
{
	if (p->state == CHUNKED_ERROR)
		return -1;
	size_t i = 0;
	while (i < n && p->state != CHUNKED_DONE) {
		if (p->state == CHUNKED_DATA) {
			size_t avail = n - i;
			size_t take = p->size < avail ? (size_t)p->size : avail;
			i += take;
			p->size -= take;
			if (p->size == 0)
				p->state = CHUNKED_DATA_CR;
			continue;
		}
		if (p->state >= CHUNKED_TRAILER_START && p->state <= CHUNKED_FINAL_LF &&
		    ++p->trailer_bytes > CHUNKED_MAX_TRAILER_BYTES) {
			fail(p, "trailer section too large");
			return -1;
		}
		if (!step(p, (unsigned char)buf[i]))
			return -1;
		i++;
	}
	return (ssize_t)i;
}
