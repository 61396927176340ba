/* fuzz_target.c - libFuzzer target for the request-target parser: CONNECT
 * authority-form and absolute-form URIs (proxy/target.c). Whatever it
 * accepts is a host the policy can be asked about: non-empty, lower-case,
 * DNS name bytes or a canonical IP literal, no empty label, no root dot. */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "proxy/target.h"

static bool name_byte(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
	       c == '_';
}

static void check_host(const struct proxy_target *t)
{
	size_t n = strnlen(t->host, sizeof(t->host));
	if (n == 0 || n > TARGET_MAX_HOST || t->port == 0)
		abort();
	if (t->is_ip && t->family == AF_INET6) {
		unsigned char a[16];
		if (inet_pton(AF_INET6, t->host, a) != 1 || memcmp(a, t->addr, 16) != 0)
			abort();
		return;
	}
	for (size_t i = 0; i < n; i++)
		if (!name_byte(t->host[i]))
			abort();
	if (t->host[0] == '.' || t->host[n - 1] == '.' || strstr(t->host, "..") != NULL)
		abort(); /* an empty label, or the root's dot, never reaches the policy */
	unsigned char a4[4];
	if ((inet_pton(AF_INET, t->host, a4) == 1) != (t->is_ip && t->family == AF_INET))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxy_target t;
	if (target_parse_connect((const char *)data, size, &t) == TARGET_OK)
		check_host(&t);
	if (target_parse_absolute((const char *)data, size, &t) == TARGET_OK) {
		check_host(&t);
		if (t.path_len > 0 && (t.path < (const char *)data ||
				       t.path + t.path_len != (const char *)data + size))
			abort(); /* the path is the rest of the input */
	}
	return 0;
}
