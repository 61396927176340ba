/* dns_map.h - bounded memory of the addresses the policy DNS responder gave
 * out, address -> name (private to proxy/). A transparent TCP flow that is
 * neither TLS with SNI nor HTTP is decided by the name the sandbox resolved
 * to reach that address. Oldest entries are overwritten when full. */
#ifndef OPENSHELL_PROXY_DNS_MAP_H
#define OPENSHELL_PROXY_DNS_MAP_H

#include <stddef.h>
#include <stdint.h>

#include "proxy/dns_msg.h"

#define DNS_MAP_MAX 1024u        /* (address, name) pairs remembered */
#define DNS_MAP_NAMES_MAX 4u     /* names returned for one address */

struct dns_map;

struct dns_map *dns_map_new(void);
void dns_map_free(struct dns_map *m);

/* Remember that name resolved to addr (family AF_INET: 4 bytes, AF_INET6:
 * 16). A known pair becomes the newest. Names longer than DNS_NAME_MAX are
 * ignored. */
void dns_map_add(struct dns_map *m, int family, const uint8_t *addr, const char *name);

#define DNS_MAP_HOSTS_MAX_BYTES 65536u /* /etc/hosts text read at start */

/* Add the (address, name) pairs of hosts(5) text: the names a sandbox
 * process may have resolved without asking the DNS responder. Lines that do
 * not parse are skipped. Returns the number of pairs added. */
size_t dns_map_add_hosts(struct dns_map *m, const char *text, size_t len);

/* Names for addr, newest first, at most max (<= DNS_MAP_NAMES_MAX). The
 * pointers stay valid until the next dns_map_add. Returns how many. */
size_t dns_map_lookup(const struct dns_map *m, int family, const uint8_t *addr,
		      const char **names, size_t max);

#endif
