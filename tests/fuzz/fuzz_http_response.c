/* fuzz_http_response.c - libFuzzer target for the relay's response-head
 * parser, the tunnel authority check and the TLS/HTTP sniffer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/http_relay.h"
#include "proxy/tls.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	struct http_resp_head h;
	const char *why = NULL;
	enum http_resp_result r = http_resp_parse(buf, size, &h, &why);
	if (r == HTTP_RESP_OK) {
		if (h.head_len < 16 || h.head_len > size || h.status < 100 || h.status > 999)
			abort();
		if (memcmp(buf + h.head_len - 4, "\r\n\r\n", 4) != 0)
			abort();
		if (h.chunked && h.has_content_length)
			abort();
		if (h.n_upgrade > 0 &&
		    (h.upgrade.p < buf || h.upgrade.p + h.upgrade.len > buf + h.head_len))
			abort();
		/* The verdict depends only on the head: trailing bytes change nothing. */
		struct http_resp_head h2;
		if (http_resp_parse(buf, h.head_len, &h2, NULL) != HTTP_RESP_OK ||
		    memcmp(&h, &h2, sizeof(h)) != 0)
			abort();
	} else if (r == HTTP_RESP_BAD && why == NULL) {
		abort();
	}
	/* A prefix of an incomplete head is never OK. */
	if (r == HTTP_RESP_INCOMPLETE && size > 0 &&
	    http_resp_parse(buf, size - 1, &h, NULL) == HTTP_RESP_OK)
		abort();
	if (size > 2) {
		size_t split = (unsigned char)buf[0] % size;
		(void)hr_authority_matches(buf + 1, split, "example.com", 443, 443);
		(void)hr_authority_matches(buf + 1, split, "2001:db8::1", 8443, 443);
	}
	(void)tls_sniff(data, size > 24 ? 24 : size);
	return 0;
}
