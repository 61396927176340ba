/* plan.h - pure helpers of netns/: run ids, interface names, subnet choice.
 * Private to netns/ and its unit tests. No system calls except getrandom. */
#ifndef OPENSHELL_NETNS_PLAN_H
#define OPENSHELL_NETNS_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One bit per third octet N of 10.200.N.0/24. */
#define NETNS_SUBNET_BITMAP_BYTES 32

/* True if id is 1..NETNS_RUN_ID_MAX characters of [0-9A-Za-z]. */
bool netns_run_id_valid(const char *id);

/* Write NETNS_RUN_ID_MAX lowercase hex characters from getrandom(2).
 * out must hold NETNS_RUN_ID_MAX + 1 bytes. Returns 0 or -errno. */
int netns_run_id_random(char *out, size_t outlen);

/* Names of the veth pair inside the sandbox for a valid run id: "osh-<id>-s"
 * (the sandbox end) and "osh-<id>-p" (its peer). Both buffers must hold
 * IFNAMSIZ (16) bytes. Returns 0 or -1 (invalid id). */
int netns_ifnames(const char *run_id, char *sandbox_if, size_t sandbox_len,
		  char *peer_if, size_t peer_len);

/* Mark the /24 of an IPv4 address (network byte order bytes) as used if it
 * lies in NETNS_SUBNET_BASE_A.NETNS_SUBNET_BASE_B.0.0/16. */
void netns_subnet_mark(uint8_t used[NETNS_SUBNET_BITMAP_BYTES], const uint8_t addr[4]);

bool netns_subnet_used(const uint8_t used[NETNS_SUBNET_BITMAP_BYTES], unsigned n);

/* First third octet N >= from that is not used, or -1 if none is left. */
int netns_subnet_pick(const uint8_t used[NETNS_SUBNET_BITMAP_BYTES], unsigned from);

/* "10.200.<n>.<host>" into buf (16 bytes). Returns 0 or -1. */
int netns_subnet_ip(char *buf, size_t len, unsigned n, unsigned host);

#endif
