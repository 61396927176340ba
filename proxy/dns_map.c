/* dns_map.c - address -> name ring. See dns_map.h. Linear scans: the map is
 * small and consulted once per transparent non-TLS, non-HTTP flow. */
#include "proxy/dns_map.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct dns_map_entry {
	uint64_t seq;                    /* 0: empty slot */
	int family;
	uint8_t addr[16];
	char name[DNS_NAME_MAX + 1];
};

struct dns_map {
	uint64_t next_seq;
	size_t next_slot;
	struct dns_map_entry e[DNS_MAP_MAX];
};

struct dns_map *dns_map_new(void)
{
	struct dns_map *m = calloc(1, sizeof(*m));
	if (m != NULL)
		m->next_seq = 1;
	return m;
}

void dns_map_free(struct dns_map *m)
{
	free(m);
}

static size_t addr_len(int family)
{
	return family == AF_INET ? 4 : family == AF_INET6 ? 16 : 0;
}

static bool same_addr(const struct dns_map_entry *e, int family, const uint8_t *addr)
{
	return e->seq != 0 && e->family == family && memcmp(e->addr, addr, addr_len(family)) == 0;
}

void dns_map_add(struct dns_map *m, int family, const uint8_t *addr, const char *name)
{
	size_t alen = addr_len(family);
	if (m == NULL || addr == NULL || name == NULL || alen == 0 ||
	    strlen(name) > DNS_NAME_MAX)
		return;
	for (size_t i = 0; i < DNS_MAP_MAX; i++) {
		struct dns_map_entry *e = &m->e[i];
		if (same_addr(e, family, addr) && strcmp(e->name, name) == 0) {
			e->seq = m->next_seq++;
			return;
		}
	}
	struct dns_map_entry *e = &m->e[m->next_slot];
	m->next_slot = (m->next_slot + 1) % DNS_MAP_MAX;
	memset(e, 0, sizeof(*e));
	e->seq = m->next_seq++;
	e->family = family;
	memcpy(e->addr, addr, alen);
	memcpy(e->name, name, strlen(name) + 1);
}

size_t dns_map_lookup(const struct dns_map *m, int family, const uint8_t *addr,
		      const char **names, size_t max)
{
	const struct dns_map_entry *found[DNS_MAP_NAMES_MAX];
	size_t n = 0;
	if (max > DNS_MAP_NAMES_MAX)
		max = DNS_MAP_NAMES_MAX;
	if (m == NULL || addr == NULL || names == NULL || addr_len(family) == 0 || max == 0)
		return 0;
	for (size_t i = 0; i < DNS_MAP_MAX; i++) {
		const struct dns_map_entry *e = &m->e[i];
		if (!same_addr(e, family, addr))
			continue;
		/* keep the `max` newest, sorted newest first (insertion sort) */
		size_t pos = n < max ? n : max;
		while (pos > 0 && found[pos - 1]->seq < e->seq)
			pos--;
		if (pos >= max)
			continue;
		size_t last = n < max ? n : max - 1;
		for (size_t j = last; j > pos; j--)
			found[j] = found[j - 1];
		found[pos] = e;
		if (n < max)
			n++;
	}
	for (size_t i = 0; i < n; i++)
		names[i] = found[i]->name;
	return n;
}

static bool host_name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > DNS_NAME_MAX || s[0] == '.' || s[n - 1] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
			  c == '_' || (c == '.' && s[i - 1] != '.');
		if (!ok)
			return false;
	}
	return true;
}

/* One hosts(5) line (NUL-terminated, comment removed). */
static size_t add_hosts_line(struct dns_map *m, char *line)
{
	char *save = NULL, *tok = strtok_r(line, " \t\r", &save);
	uint8_t addr[16];
	int family = AF_INET;
	if (tok == NULL)
		return 0;
	if (inet_pton(AF_INET, tok, addr) != 1) {
		family = AF_INET6;
		if (inet_pton(AF_INET6, tok, addr) != 1)
			return 0;
	}
	size_t added = 0;
	while ((tok = strtok_r(NULL, " \t\r", &save)) != NULL) {
		for (char *c = tok; *c; c++)
			if (*c >= 'A' && *c <= 'Z')
				*c = (char)(*c - 'A' + 'a');
		if (host_name_ok(tok)) {
			dns_map_add(m, family, addr, tok);
			added++;
		}
	}
	return added;
}

size_t dns_map_add_hosts(struct dns_map *m, const char *text, size_t len)
{
	char line[1024];
	size_t added = 0, i = 0;
	if (m == NULL || text == NULL)
		return 0;
	if (len > DNS_MAP_HOSTS_MAX_BYTES)
		len = DNS_MAP_HOSTS_MAX_BYTES;
	while (i < len) {
		const char *nl = memchr(text + i, '\n', len - i);
		size_t n = nl != NULL ? (size_t)(nl - (text + i)) : len - i;
		if (n < sizeof(line)) { /* longer lines are skipped */
			memcpy(line, text + i, n);
			line[n] = '\0';
			char *hash = strchr(line, '#');
			if (hash != NULL)
				*hash = '\0';
			added += add_hosts_line(m, line);
		}
		i += n + 1;
	}
	return added;
}
