/* dns_msg.h - the DNS wire format the policy DNS responder needs (private
 * to proxy/).
 *
 * Hand-written on purpose: the responder reads only the 12-byte header and
 * one question of a query, and writes one fixed shape of answer (the
 * question echoed, then A or AAAA records pointing back at it). That is
 * less code than the glue for a general DNS library, it never allocates,
 * and it is fuzzed (tests/fuzz/fuzz_dns.c). Compression pointers are not
 * accepted in a query's question (no resolver sends them there).
 */
#ifndef OPENSHELL_PROXY_DNS_MSG_H
#define OPENSHELL_PROXY_DNS_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DNS_MSG_MAX 1232u        /* largest query read (UDP datagram or TCP message) */
#define DNS_NAME_MAX 253u        /* presentation length of a name, no trailing dot */
#define DNS_WIRE_NAME_MAX 255u   /* RFC 1035 limit of an encoded name */
#define DNS_HEADER_LEN 12u
#define DNS_MAX_ANSWERS 8u       /* address records in one answer */
#define DNS_ANSWER_TTL 30u       /* seconds, for every record we give */
#define DNS_REPLY_MAX 512u       /* every reply we build fits a classic datagram */

enum dns_rcode {
	DNS_RCODE_NOERROR = 0,
	DNS_RCODE_FORMERR = 1,
	DNS_RCODE_SERVFAIL = 2,
	DNS_RCODE_NXDOMAIN = 3,
	DNS_RCODE_NOTIMP = 4,
	DNS_RCODE_REFUSED = 5,
};

#define DNS_TYPE_A 1u
#define DNS_TYPE_AAAA 28u
#define DNS_CLASS_IN 1u

enum dns_parse {
	DNS_PARSE_OK = 0,     /* one question parsed */
	DNS_PARSE_DROP,       /* shorter than a header, or a response: no answer at all */
	DNS_PARSE_FORMERR,    /* header readable, question not: answer FORMERR */
	DNS_PARSE_NOTIMP,     /* opcode other than QUERY: answer NOTIMP */
};

struct dns_query {
	uint16_t id;
	bool rd;                         /* recursion desired (echoed) */
	char name[DNS_NAME_MAX + 1];     /* lower-case, no trailing dot; "" = root */
	bool name_ok;                    /* only [a-z0-9_-] labels; else name has '?' */
	uint16_t qtype, qclass;
	const uint8_t *question;         /* the question section inside the query */
	size_t question_len;             /* 0 when there is none to echo */
};

/* Parse a query. q is always filled as far as the header allows. */
enum dns_parse dns_parse_query(const uint8_t *msg, size_t len, struct dns_query *q);

/* Build a reply to q into out (at least DNS_REPLY_MAX bytes): rcode, and
 * n_addrs address records of length addr_len (4: A, 16: AAAA) when rcode is
 * NOERROR (n_addrs is capped at DNS_MAX_ANSWERS). The question is echoed
 * when q has one. Returns the length, or 0 if out is too small or an
 * argument is invalid. */
size_t dns_build_reply(const struct dns_query *q, enum dns_rcode rcode, const uint8_t *addrs,
		       size_t addr_len, size_t n_addrs, uint8_t *out, size_t outlen);

#endif
