/* fuzz_cred.c - libFuzzer target for placeholder detection, rewriting and
 * redaction. The store is built in memory (cred_int.h) so no file is
 * needed. Invariants: CRED_OK output fits its cap and holds no marker;
 * CRED_NO_PLACEHOLDER only when no marker is present; a rewritten target
 * keeps its leading '/'; redaction removes every real value. The first
 * input byte selects the host and the operation. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/cred_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char v_gh[] = "ghp_secret", v_tg[] = "123:ABC", v_sl[] = "a/b c";
static char *h_gh[] = { "api.github.com", "*.github.com" };
static char *h_tg[] = { "api.telegram.org" };
static char n_gh[] = "GH_TOKEN", n_tg[] = "TG", n_sl[] = "SL";
static struct cred_entry entries[] = {
	{ n_gh, v_gh, sizeof(v_gh) - 1, h_gh, 2 },
	{ n_tg, v_tg, sizeof(v_tg) - 1, h_tg, 1 },
	{ n_sl, v_sl, sizeof(v_sl) - 1, h_gh, 1 },
};
static const struct cred_store store = { entries, 3 };

static char out[65536];

static void check_result(int r, const char *in, size_t n, size_t cap, size_t outlen)
{
	if (r == CRED_OK) {
		if (outlen > cap || cred_contains_placeholder(out, outlen))
			abort();
	} else if (r == CRED_NO_PLACEHOLDER) {
		if (cred_contains_placeholder(in, n))
			abort();
	} else if (r < CRED_OUT_OF_SCOPE || r > CRED_REFUSED) {
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const hosts[] = { "api.github.com", "x.github.com",
					     "api.telegram.org", "evil.example", NULL };
	if (size == 0)
		return 0;
	const char *host = hosts[data[0] % 5];
	size_t cap = (data[0] & 0x80) ? 64 : sizeof(out);
	char *in = malloc(size - 1 ? size - 1 : 1);
	if (!in)
		return 0;
	memcpy(in, data + 1, size - 1);
	size_t n = size - 1, outlen = 0;
	int r = cred_rewrite_header(&store, host, "Authorization", in, n, out, cap, &outlen);
	check_result(r, in, n, cap, outlen);
	outlen = 0;
	r = cred_rewrite_target(&store, host, in, n, out, cap, &outlen);
	check_result(r, in, n, cap, outlen);
	if (r == CRED_OK && (outlen == 0 || out[0] != '/'))
		abort();
	if (cred_redact(&store, in, n, out, sizeof(out), &outlen) == CRED_OK &&
	    (memmem(out, outlen, v_gh, sizeof(v_gh) - 1) || memmem(out, outlen, v_tg, sizeof(v_tg) - 1)))
		abort();
	if (cred_redact_placeholders(in, n, out, sizeof(out), &outlen) == CRED_OK &&
	    memmem(out, outlen, CRED_PLACEHOLDER_PREFIX, sizeof(CRED_PLACEHOLDER_PREFIX) - 1))
		abort();
	free(in);
	return 0;
}
