/* plan.c - pure helpers: run ids, interface names, subnet choice. */
#include "netns/plan.h"

#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "netns/netns.h"

static bool is_id_char(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

bool netns_run_id_valid(const char *id)
{
	if (id == NULL)
		return false;
	size_t n = strnlen(id, NETNS_RUN_ID_MAX + 1);
	if (n == 0 || n > NETNS_RUN_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!is_id_char(id[i]))
			return false;
	}
	return true;
}

int netns_run_id_random(char *out, size_t outlen)
{
	static const char hex[] = "0123456789abcdef";
	uint8_t raw[NETNS_RUN_ID_MAX / 2];

	if (out == NULL || outlen < NETNS_RUN_ID_MAX + 1)
		return -EINVAL;
	ssize_t got;
	do {
		got = getrandom(raw, sizeof(raw), 0);
	} while (got < 0 && errno == EINTR);
	if (got < 0)
		return -errno;
	if ((size_t)got != sizeof(raw))
		return -EIO;
	for (size_t i = 0; i < sizeof(raw); i++) {
		out[2 * i] = hex[raw[i] >> 4];
		out[2 * i + 1] = hex[raw[i] & 0xf];
	}
	out[NETNS_RUN_ID_MAX] = '\0';
	return 0;
}

static int format_ifname(char *buf, size_t len, const char *run_id, char side)
{
	if (buf == NULL || len < IFNAMSIZ)
		return -1;
	int n = snprintf(buf, len, "osh-%s-%c", run_id, side);
	if (n < 0 || n >= IFNAMSIZ)
		return -1;
	return 0;
}

int netns_ifnames(const char *run_id, char *sandbox_if, size_t sandbox_len,
		  char *peer_if, size_t peer_len)
{
	if (!netns_run_id_valid(run_id))
		return -1;
	if (format_ifname(sandbox_if, sandbox_len, run_id, 's') != 0)
		return -1;
	return format_ifname(peer_if, peer_len, run_id, 'p');
}

void netns_subnet_mark(uint8_t used[NETNS_SUBNET_BITMAP_BYTES], const uint8_t addr[4])
{
	if (addr[0] != NETNS_SUBNET_BASE_A || addr[1] != NETNS_SUBNET_BASE_B)
		return;
	used[addr[2] / 8] |= (uint8_t)(1u << (addr[2] % 8));
}

bool netns_subnet_used(const uint8_t used[NETNS_SUBNET_BITMAP_BYTES], unsigned n)
{
	if (n > NETNS_SUBNET_MAX)
		return true;
	return (used[n / 8] & (1u << (n % 8))) != 0;
}

int netns_subnet_pick(const uint8_t used[NETNS_SUBNET_BITMAP_BYTES], unsigned from)
{
	for (unsigned n = from; n <= NETNS_SUBNET_MAX; n++) {
		if (!netns_subnet_used(used, n))
			return (int)n;
	}
	return -1;
}

int netns_subnet_ip(char *buf, size_t len, unsigned n, unsigned host)
{
	if (buf == NULL || n > NETNS_SUBNET_MAX || host == 0 || host > 254)
		return -1;
	int w = snprintf(buf, len, "%u.%u.%u.%u", NETNS_SUBNET_BASE_A, NETNS_SUBNET_BASE_B, n, host);
	if (w < 0 || (size_t)w >= len)
		return -1;
	return 0;
}
