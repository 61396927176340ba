/* name_cache.c - see name_cache.h. */
#include "proxy/name_cache.h"

#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

union cached_addr {     /* as getaddrinfo returned it (IPv6 scope kept) */
	struct sockaddr sa;
	struct sockaddr_in v4;
	struct sockaddr_in6 v6;
};

struct name_cache_entry {
	uint64_t stored_ms;
	char *host;
	size_t n;
	union cached_addr addrs[];
};

static size_t slot_of(const char *host)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (const unsigned char *p = (const unsigned char *)host; *p; p++)
		h = (h ^ *p) * 16777619u;
	return h % PROXY_NAME_CACHE_SLOTS;
}

static void entry_free(struct name_cache_entry *e)
{
	if (e == NULL)
		return;
	free(e->host);
	free(e);
}

static bool fresh(const struct name_cache_entry *e, uint64_t now_ms)
{
	return now_ms >= e->stored_ms && now_ms - e->stored_ms < PROXY_NAME_CACHE_TTL_MS;
}

static void to_sockaddr(const union cached_addr *a, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	memcpy(ss, a, a->sa.sa_family == AF_INET ? sizeof(a->v4) : sizeof(a->v6));
}

size_t name_cache_get(struct name_cache *nc, const char *host, uint64_t now_ms,
		      struct sockaddr_storage *out, size_t max)
{
	struct name_cache_entry **slot = &nc->slot[slot_of(host)];
	struct name_cache_entry *e = *slot;
	if (e == NULL || strcmp(e->host, host) != 0)
		return 0;
	if (!fresh(e, now_ms)) {
		entry_free(e);
		*slot = NULL;
		return 0;
	}
	size_t n = e->n < max ? e->n : max;
	for (size_t i = 0; i < n; i++)
		to_sockaddr(&e->addrs[i], &out[i]);
	return n;
}

/* How many addresses to cache; 0 when res must not be cached: it has an
 * address of another family, or more than PROXY_MAX_DIAL_ADDRS (a cache hit
 * must check exactly what a fresh resolution would). */
static size_t cacheable(const struct addrinfo *res)
{
	size_t n = 0;
	for (const struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
		size_t len = ai->ai_family == AF_INET    ? sizeof(struct sockaddr_in)
			     : ai->ai_family == AF_INET6 ? sizeof(struct sockaddr_in6)
							 : 0;
		if (len == 0 || ai->ai_addrlen < len || ++n > PROXY_MAX_DIAL_ADDRS)
			return 0;
	}
	return n;
}

void name_cache_put(struct name_cache *nc, const char *host, const struct addrinfo *res,
		    uint64_t now_ms)
{
	size_t n = cacheable(res);
	if (n == 0)
		return;
	struct name_cache_entry *e = malloc(sizeof(*e) + n * sizeof(e->addrs[0]));
	if (e == NULL)
		return;
	e->host = strdup(host);
	if (e->host == NULL) {
		free(e);
		return;
	}
	e->stored_ms = now_ms;
	e->n = 0;
	for (const struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
		memset(&e->addrs[e->n], 0, sizeof(e->addrs[0]));
		memcpy(&e->addrs[e->n], ai->ai_addr,
		       ai->ai_family == AF_INET ? sizeof(struct sockaddr_in)
						: sizeof(struct sockaddr_in6));
		e->n++;
	}
	struct name_cache_entry **slot = &nc->slot[slot_of(host)];
	entry_free(*slot);
	*slot = e;
}

void name_cache_clear(struct name_cache *nc)
{
	for (size_t i = 0; i < PROXY_NAME_CACHE_SLOTS; i++) {
		entry_free(nc->slot[i]);
		nc->slot[i] = NULL;
	}
}
