/* ssrf.c - destination address classification. See ssrf.h. */
#include "proxy/ssrf.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "policy/policy.h"

struct range4 {
	uint8_t net[4];
	uint8_t prefix;
	enum ssrf_class cls;
	const char *name;
};

struct range6 {
	uint8_t net[16];
	uint8_t prefix;
	enum ssrf_class cls;
	const char *name;
};

/* First match wins, so narrower blocked ranges precede wider ones. */
static const struct range4 ranges4[] = {
	{ { 0, 0, 0, 0 }, 8, SSRF_BLOCKED, "unspecified/this-network 0.0.0.0/8" },
	{ { 127, 0, 0, 0 }, 8, SSRF_BLOCKED, "loopback 127.0.0.0/8" },
	{ { 169, 254, 169, 254 }, 32, SSRF_BLOCKED, "cloud metadata 169.254.169.254" },
	{ { 169, 254, 0, 0 }, 16, SSRF_BLOCKED, "link-local 169.254.0.0/16" },
	{ { 224, 0, 0, 0 }, 4, SSRF_BLOCKED, "multicast 224.0.0.0/4" },
	{ { 255, 255, 255, 255 }, 32, SSRF_BLOCKED, "broadcast 255.255.255.255" },
	{ { 240, 0, 0, 0 }, 4, SSRF_BLOCKED, "reserved 240.0.0.0/4" },
	{ { 10, 0, 0, 0 }, 8, SSRF_INTERNAL, "private 10.0.0.0/8" },
	{ { 172, 16, 0, 0 }, 12, SSRF_INTERNAL, "private 172.16.0.0/12" },
	{ { 192, 168, 0, 0 }, 16, SSRF_INTERNAL, "private 192.168.0.0/16" },
	{ { 100, 64, 0, 0 }, 10, SSRF_INTERNAL, "shared address space 100.64.0.0/10" },
	{ { 192, 0, 0, 0 }, 24, SSRF_INTERNAL, "IETF protocol assignments 192.0.0.0/24" },
	{ { 192, 0, 2, 0 }, 24, SSRF_INTERNAL, "documentation 192.0.2.0/24" },
	{ { 198, 51, 100, 0 }, 24, SSRF_INTERNAL, "documentation 198.51.100.0/24" },
	{ { 203, 0, 113, 0 }, 24, SSRF_INTERNAL, "documentation 203.0.113.0/24" },
	{ { 198, 18, 0, 0 }, 15, SSRF_INTERNAL, "benchmarking 198.18.0.0/15" },
};

static const struct range6 ranges6[] = {
	{ { 0 }, 128, SSRF_BLOCKED, "unspecified ::" },
	{ { [15] = 1 }, 128, SSRF_BLOCKED, "loopback ::1" },
	{ { 0xfe, 0x80 }, 10, SSRF_BLOCKED, "link-local fe80::/10" },
	{ { 0xff }, 8, SSRF_BLOCKED, "multicast ff00::/8" },
	{ { 0xfe, 0xc0 }, 10, SSRF_INTERNAL, "site-local fec0::/10" },
	{ { 0xfc }, 7, SSRF_INTERNAL, "unique local fc00::/7" },
	{ { 0x00, 0x64, 0xff, 0x9b }, 96, SSRF_INTERNAL, "NAT64 64:ff9b::/96" },
	{ { 0x00, 0x64, 0xff, 0x9b, 0x00, 0x01 }, 48, SSRF_INTERNAL, "local NAT64 64:ff9b:1::/48" },
	{ { 0x20, 0x01, 0x0d, 0xb8 }, 32, SSRF_INTERNAL, "documentation 2001:db8::/32" },
	{ { 0x20, 0x01, 0x00, 0x00 }, 32, SSRF_INTERNAL, "Teredo 2001::/32" },
	{ { 0x01 }, 64, SSRF_INTERNAL, "discard-only 100::/64" },
};

static const uint16_t control_plane_ports[] = { 2379, 2380, 6443, 10250, 10255 };

static bool prefix_match(const uint8_t *a, const uint8_t *net, unsigned prefix)
{
	unsigned full = prefix / 8, rest = prefix % 8;
	if (memcmp(a, net, full) != 0)
		return false;
	if (rest == 0)
		return true;
	uint8_t mask = (uint8_t)(0xffu << (8 - rest));
	return (a[full] & mask) == (net[full] & mask);
}

static enum ssrf_class classify4(const uint8_t *a, const char **range)
{
	for (size_t i = 0; i < sizeof(ranges4) / sizeof(ranges4[0]); i++) {
		if (prefix_match(a, ranges4[i].net, ranges4[i].prefix)) {
			*range = ranges4[i].name;
			return ranges4[i].cls;
		}
	}
	*range = "public";
	return SSRF_PUBLIC;
}

/* IPv6 forms that carry an IPv4 address a stack may reach: ::ffff:a.b.c.d
 * (mapped), ::ffff:0:a.b.c.d (SIIT translated), ::a.b.c.d (deprecated
 * compatible, not :: or ::1), and 6to4
 * 2002:aabb:ccdd::/16. Returns a pointer to the 4 embedded bytes or NULL. */
enum v4_form { V4_MAPPED, V4_TRANSLATED, V4_COMPATIBLE, V4_6TO4 };

static const uint8_t *embedded_v4(const uint8_t *a, enum v4_form *form)
{
	static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };
	static const uint8_t translated[12] = { [8] = 0xff, [9] = 0xff };
	static const uint8_t zeros[12] = { 0 };
	if (memcmp(a, mapped, 12) == 0) {
		*form = V4_MAPPED;
		return a + 12;
	}
	if (memcmp(a, translated, 12) == 0) { /* SIIT ::ffff:0:a.b.c.d (RFC 2765) */
		*form = V4_TRANSLATED;
		return a + 12;
	}
	if (memcmp(a, zeros, 12) == 0 && !(a[12] == 0 && a[13] == 0 && a[14] == 0 && a[15] <= 1)) {
		*form = V4_COMPATIBLE;
		return a + 12;
	}
	if (a[0] == 0x20 && a[1] == 0x02) {
		*form = V4_6TO4;
		return a + 2;
	}
	return NULL;
}

static enum ssrf_class classify6(const uint8_t *a, const char **range)
{
	static const uint8_t nat64[12] = { 0x00, 0x64, 0xff, 0x9b };
	if (memcmp(a, nat64, 12) == 0) {
		/* 64:ff9b::/96 reaches a.b.c.d through the NAT64 translator: the
		 * prefix is internal, and what IPv4 always blocks (metadata,
		 * loopback, link-local) stays blocked even with allowed_ips. */
		if (classify4(a + 12, range) == SSRF_BLOCKED)
			return SSRF_BLOCKED;
	}
	enum v4_form form;
	const uint8_t *v4 = embedded_v4(a, &form);
	if (v4 != NULL) {
		enum ssrf_class c = classify4(v4, range);
		if (c != SSRF_PUBLIC)
			return c;
		if (form == V4_TRANSLATED) {
			/* SIIT reaches a.b.c.d only through a translator: the
			 * prefix is internal whatever the address. */
			*range = "SIIT ::ffff:0:0/96";
			return SSRF_INTERNAL;
		}
		if (form != V4_6TO4) /* mapped/compatible: the v4 class */
			return c;
		/* 6to4 with a public embedded address: an ordinary public address */
	}
	for (size_t i = 0; i < sizeof(ranges6) / sizeof(ranges6[0]); i++) {
		if (prefix_match(a, ranges6[i].net, ranges6[i].prefix)) {
			*range = ranges6[i].name;
			return ranges6[i].cls;
		}
	}
	*range = "public";
	return SSRF_PUBLIC;
}

enum ssrf_class ssrf_classify(int family, const uint8_t *addr, const char **range)
{
	const char *dummy;
	if (range == NULL)
		range = &dummy;
	if (family == AF_INET)
		return classify4(addr, range);
	if (family == AF_INET6)
		return classify6(addr, range);
	*range = "unknown address family";
	return SSRF_BLOCKED;
}

bool ssrf_is_control_plane_port(uint16_t port)
{
	for (size_t i = 0; i < sizeof(control_plane_ports) / sizeof(control_plane_ports[0]); i++)
		if (control_plane_ports[i] == port)
			return true;
	return false;
}

static bool is_loopback(int family, const uint8_t *a)
{
	static const uint8_t v6_loop[16] = { [15] = 1 };
	return (family == AF_INET && a[0] == 127) ||
	       (family == AF_INET6 && memcmp(a, v6_loop, 16) == 0);
}

/* allowed_ips membership; an IPv4-mapped address also matches v4 entries. */
static bool in_allowed(int family, const uint8_t *a, const struct policy_cidr *allowed,
		       size_t n_allowed)
{
	static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };
	bool is_mapped = family == AF_INET6 && memcmp(a, mapped, 12) == 0;
	for (size_t i = 0; i < n_allowed; i++) {
		if (allowed[i].family == family && policy_cidr_contains(&allowed[i], family, a))
			return true;
		if (is_mapped && allowed[i].family == AF_INET &&
		    policy_cidr_contains(&allowed[i], AF_INET, a + 12))
			return true;
	}
	return false;
}

bool ssrf_check_address(const struct sockaddr *sa, uint16_t port,
			const struct policy_cidr *allowed, size_t n_allowed,
			const struct ssrf_options *opt, char *why, size_t whylen)
{
	int family = sa->sa_family;
	const uint8_t *a;
	if (family == AF_INET)
		a = (const uint8_t *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr;
	else if (family == AF_INET6)
		a = (const uint8_t *)&((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
	else {
		snprintf(why, whylen, "address of unsupported family %d", family);
		return false;
	}
	char text[INET6_ADDRSTRLEN];
	if (inet_ntop(family, a, text, sizeof(text)) == NULL)
		snprintf(text, sizeof(text), "?");

	const char *range;
	enum ssrf_class cls = ssrf_classify(family, a, &range);
	if (opt != NULL && opt->allow_loopback && is_loopback(family, a))
		cls = SSRF_PUBLIC; /* test-only */

	if (cls == SSRF_BLOCKED) {
		snprintf(why, whylen, "address %s is always blocked (%s)", text, range);
		return false;
	}
	if (cls == SSRF_INTERNAL && ssrf_is_control_plane_port(port)) {
		snprintf(why, whylen, "address %s is internal (%s) and port %u is a control-plane port",
			 text, range, (unsigned)port);
		return false;
	}
	if (n_allowed > 0 && !in_allowed(family, a, allowed, n_allowed)) {
		snprintf(why, whylen, "address %s (%s) is not inside the endpoint's allowed_ips", text,
			 cls == SSRF_INTERNAL ? range : "public");
		return false;
	}
	if (cls == SSRF_INTERNAL && n_allowed == 0) {
		snprintf(why, whylen, "address %s is internal (%s) and the endpoint has no allowed_ips",
			 text, range);
		return false;
	}
	return true;
}
