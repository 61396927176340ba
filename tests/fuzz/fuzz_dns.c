/* fuzz_dns.c - libFuzzer target for the policy DNS responder's wire format:
 * query parsing, the decision on it and the reply built from it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"
#include "proxy/dns.h"
#include "proxy/dns_msg.h"

static const char POLICY[] =
	"version: 1\n"
	"network_policies:\n"
	"  web:\n"
	"    endpoints:\n"
	"      - host: api.allowed.test\n"
	"        port: 443\n"
	"      - host: \"*.wild.test\"\n"
	"        port: 80\n";

static struct policy *policy_once(void)
{
	static struct policy *p; /* read-only after the first call */
	if (p == NULL) {
		struct policy_errors errs = { 0 };
		p = policy_load_buffer(POLICY, sizeof(POLICY) - 1, "<fuzz>", &errs);
		policy_errors_free(&errs);
		if (p == NULL)
			abort();
	}
	return p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dns_query q;
	enum dns_parse r = dns_parse_query(data, size, &q);
	if (strnlen(q.name, sizeof(q.name)) > DNS_NAME_MAX)
		abort();
	if (r == DNS_PARSE_OK &&
	    (q.question != data + DNS_HEADER_LEN || q.question_len > size - DNS_HEADER_LEN))
		abort();
	struct dns_decision d;
	dns_decide(policy_once(), "myhost", r, &q, &d);
	if (d.action == DNS_ACT_RESOLVE && (d.rule == NULL || !q.name_ok))
		abort(); /* only allowed, clean names are ever looked up */
	uint8_t out[DNS_REPLY_MAX];
	const uint8_t addrs[DNS_MAX_ANSWERS * 4] = { 198, 51, 100, 10 };
	size_t len = dns_build_reply(&q, d.action == DNS_ACT_REPLY ? d.rcode : DNS_RCODE_NOERROR,
				     addrs, 4, DNS_MAX_ANSWERS, out, sizeof(out));
	if (r != DNS_PARSE_DROP && len < DNS_HEADER_LEN)
		abort(); /* every answerable query gets a reply that fits */
	if (len > 0) {
		struct dns_query back;
		out[2] &= 0x7f; /* as a query again: it must parse the same way */
		if (q.question_len > 0 &&
		    (dns_parse_query(out, len, &back) != DNS_PARSE_OK || strcmp(back.name, q.name)))
			abort();
	}
	return 0;
}
