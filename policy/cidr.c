/* cidr.c - allowed_ips networks: parsing, containment, blocked ranges. */
#include <arpa/inet.h>
#include <ctype.h>
#include <string.h>
#include <sys/socket.h>

#include "policy/load_int.h"

/* Loopback, link-local, unspecified, and their IPv4-mapped forms: never
 * reachable, whatever allowed_ips says. */
static const char *const blocked_ranges[] = {
	"127.0.0.0/8", "169.254.0.0/16", "0.0.0.0/32",
	"::1/128", "::/128", "fe80::/10",
	"::ffff:127.0.0.0/104", "::ffff:169.254.0.0/112", "::ffff:0.0.0.0/128",
};

static bool prefix_equal(const uint8_t *a, const uint8_t *b, unsigned bits)
{
	unsigned bytes = bits / 8, rest = bits % 8;

	if (memcmp(a, b, bytes) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((a[bytes] ^ b[bytes]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

static void mask_host_bits(struct policy_cidr *c)
{
	unsigned len = c->family == AF_INET ? 4 : 16;

	for (unsigned i = 0; i < len; i++) {
		unsigned lo = i * 8;

		if (c->prefix <= lo)
			c->addr[i] = 0;
		else if (c->prefix < lo + 8)
			c->addr[i] &= (uint8_t)(0xff << (lo + 8 - c->prefix));
	}
}

static int parse_prefix(const char *s, unsigned max, uint8_t *out)
{
	unsigned v = 0;

	if (!*s || strlen(s) > 3)
		return -1;
	for (; *s; s++) {
		if (!isdigit((unsigned char)*s))
			return -1;
		v = v * 10 + (unsigned)(*s - '0');
	}
	if (v > max)
		return -1;
	*out = (uint8_t)v;
	return 0;
}

int policy_cidr_parse(const char *s, struct policy_cidr *out)
{
	char buf[INET6_ADDRSTRLEN + 8];
	char *slash;
	size_t len;

	if (!s || !out)
		return -1;
	len = strlen(s);
	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, s, len + 1);
	slash = strchr(buf, '/');
	if (slash)
		*slash++ = '\0';
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, buf, out->addr) == 1) {
		out->family = AF_INET;
		out->prefix = 32;
	} else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
		out->family = AF_INET6;
		out->prefix = 128;
	} else {
		return -1;
	}
	if (slash && parse_prefix(slash, out->prefix, &out->prefix) != 0)
		return -1;
	mask_host_bits(out);
	return 0;
}

bool policy_cidr_contains(const struct policy_cidr *c, int family, const void *addr)
{
	static const uint8_t v4_mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	const uint8_t *a = addr;

	if (!c || !addr)
		return false;
	if (c->family == AF_INET && family == AF_INET6 && memcmp(a, v4_mapped, 12) == 0) {
		a += 12;
		family = AF_INET;
	}
	if (family != c->family)
		return false;
	return prefix_equal(c->addr, a, c->prefix);
}

static bool cidrs_overlap(const struct policy_cidr *a, const struct policy_cidr *b)
{
	if (a->family != b->family)
		return false;
	return prefix_equal(a->addr, b->addr, a->prefix < b->prefix ? a->prefix : b->prefix);
}

bool cidr_overlaps_blocked(const struct policy_cidr *c)
{
	for (size_t i = 0; i < sizeof(blocked_ranges) / sizeof(blocked_ranges[0]); i++) {
		struct policy_cidr b;

		if (policy_cidr_parse(blocked_ranges[i], &b) == 0 && cidrs_overlap(c, &b))
			return true;
	}
	return false;
}
