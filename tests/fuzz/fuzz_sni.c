/* fuzz_sni.c - libFuzzer target for the flow identification of transparent
 * capture: TLS ClientHello SNI and HTTP Host from a flow's first bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/sni.h"

static void check_name(const char *name)
{
	size_t n = strnlen(name, SNI_NAME_MAX + 1);
	if (n > SNI_NAME_MAX)
		abort();
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (c >= 'A' && c <= 'Z')
			abort(); /* always lower-cased */
		if ((unsigned char)c < 0x21 || c == '/' || c == '"' || c == '\\')
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char name[SNI_NAME_MAX + 1];
	enum sni_result r = sni_parse(data, size, name, sizeof(name));
	if (r == SNI_FOUND) {
		check_name(name);
		if (name[0] == '\0')
			abort();
	}
	/* a prefix of a complete hello can never name something else */
	if (r == SNI_FOUND && size > 0) {
		char prefix_name[SNI_NAME_MAX + 1];
		enum sni_result p = sni_parse(data, size - 1, prefix_name, sizeof(prefix_name));
		if (p == SNI_FOUND && strcmp(prefix_name, name) != 0)
			abort();
	}
	for (int final = 0; final < 2; final++) {
		enum peek_kind k = peek_identify(data, size, final != 0, name, sizeof(name));
		if (final && k == PEEK_MORE)
			abort(); /* a final look always decides */
		check_name(name);
	}
	return 0;
}
