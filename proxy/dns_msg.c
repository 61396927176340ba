/* dns_msg.c - DNS query parsing and reply building. See dns_msg.h. */
#include "proxy/dns_msg.h"

#include <string.h>

#define FLAG_QR 0x8000u
#define FLAG_RD 0x0100u
#define FLAG_RA 0x0080u
#define OPCODE_SHIFT 11
#define OPCODE_MASK 0xfu
#define LABEL_MAX 63u

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static char name_char(uint8_t c, bool *ok)
{
	if (c >= 'A' && c <= 'Z')
		return (char)(c - 'A' + 'a');
	if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_')
		return (char)c;
	*ok = false;
	return '?';
}

/* Decode the uncompressed name at msg[*off]; advance *off past it.
 * Returns false on a malformed name. */
static bool read_name(const uint8_t *msg, size_t len, size_t *off, struct dns_query *q)
{
	size_t o = *off, wire = 0, out = 0;
	q->name_ok = true;
	for (;;) {
		if (o >= len)
			return false;
		uint8_t l = msg[o++];
		wire += 1u + l;
		if (wire > DNS_WIRE_NAME_MAX)
			return false;
		if (l == 0)
			break;
		if (l > LABEL_MAX || l > len - o) /* also rejects compression (0xc0) */
			return false;
		if (out > 0)
			q->name[out++] = '.';
		for (uint8_t i = 0; i < l; i++) {
			if (out >= DNS_NAME_MAX)
				return false;
			q->name[out++] = name_char(msg[o + i], &q->name_ok);
		}
		o += l;
	}
	q->name[out] = '\0';
	*off = o;
	return true;
}

enum dns_parse dns_parse_query(const uint8_t *msg, size_t len, struct dns_query *q)
{
	memset(q, 0, sizeof(*q));
	if (msg == NULL || len < DNS_HEADER_LEN)
		return DNS_PARSE_DROP;
	uint16_t flags = get16(msg + 2);
	q->id = get16(msg);
	q->rd = (flags & FLAG_RD) != 0;
	if (flags & FLAG_QR)
		return DNS_PARSE_DROP;
	if (((flags >> OPCODE_SHIFT) & OPCODE_MASK) != 0)
		return DNS_PARSE_NOTIMP;
	if (get16(msg + 4) != 1)
		return DNS_PARSE_FORMERR;
	size_t off = DNS_HEADER_LEN;
	if (!read_name(msg, len, &off, q) || len - off < 4) {
		q->name[0] = '\0';
		q->name_ok = false;
		return DNS_PARSE_FORMERR;
	}
	q->qtype = get16(msg + off);
	q->qclass = get16(msg + off + 2);
	off += 4;
	q->question = msg + DNS_HEADER_LEN;
	q->question_len = off - DNS_HEADER_LEN;
	return DNS_PARSE_OK;
}

size_t dns_build_reply(const struct dns_query *q, enum dns_rcode rcode, const uint8_t *addrs,
		       size_t addr_len, size_t n_addrs, uint8_t *out, size_t outlen)
{
	if (q == NULL || out == NULL || (unsigned)rcode > 15u)
		return 0;
	if (rcode != DNS_RCODE_NOERROR || q->question_len == 0)
		n_addrs = 0;
	if (n_addrs > DNS_MAX_ANSWERS)
		n_addrs = DNS_MAX_ANSWERS;
	if (n_addrs > 0 && ((addr_len != 4 && addr_len != 16) || addrs == NULL))
		return 0;
	size_t need = DNS_HEADER_LEN + q->question_len + n_addrs * (12u + addr_len);
	if (need > outlen || q->question_len > DNS_WIRE_NAME_MAX + 4u)
		return 0;
	uint16_t flags = FLAG_QR | FLAG_RA | (q->rd ? FLAG_RD : 0) | (uint16_t)rcode;
	put16(out, q->id);
	put16(out + 2, flags);
	put16(out + 4, q->question_len > 0 ? 1 : 0);
	put16(out + 6, (uint16_t)n_addrs);
	put16(out + 8, 0);
	put16(out + 10, 0);
	size_t o = DNS_HEADER_LEN;
	if (q->question_len > 0) {
		memcpy(out + o, q->question, q->question_len);
		o += q->question_len;
	}
	for (size_t i = 0; i < n_addrs; i++) {
		put16(out + o, 0xc000u | DNS_HEADER_LEN); /* the question's name */
		put16(out + o + 2, addr_len == 4 ? DNS_TYPE_A : DNS_TYPE_AAAA);
		put16(out + o + 4, DNS_CLASS_IN);
		put16(out + o + 6, 0);
		put16(out + o + 8, DNS_ANSWER_TTL);
		put16(out + o + 10, (uint16_t)addr_len);
		memcpy(out + o + 12, addrs + i * addr_len, addr_len);
		o += 12u + addr_len;
	}
	return o;
}
