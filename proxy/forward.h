/* forward.h - absolute-form to origin-form request rewrite (private to proxy/). */
#ifndef OPENSHELL_PROXY_FORWARD_H
#define OPENSHELL_PROXY_FORWARD_H

#include <stddef.h>

#include "proxy/http_head.h"
#include "proxy/target.h"

#define FORWARD_VIA "1.1 openshell-sandbox"

/* Build the origin-form head to send upstream (no body): request line with
 * the URI's path+query, all headers except proxy/hop-by-hop ones (Host,
 * Connection and what it nominates, Proxy-Connection, Proxy-Authorization,
 * Proxy-Authenticate, Keep-Alive, TE, Trailer, Upgrade), then Host from the
 * URI authority, `Connection: close`, and Via unless the client sent one.
 * malloc'd; NULL on allocation failure. */
char *forward_build_head(const struct http_head *h, const struct proxy_target *t, size_t *len);

#endif
