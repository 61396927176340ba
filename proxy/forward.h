/* forward.h - forward-proxy request rewrites: absolute-form to origin-form for
 * the origin, back to absolute-form for an upstream proxy (private to proxy/). */
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

/* The same head for an upstream (corporate) proxy: the origin-form
 * request-target of `head` (as forward_build_head made it, possibly with a
 * canonicalised target since) becomes absolute-form
 * `http://<authority><target>`; the Host header is left as it is (the
 * original host); `extra` header lines (CRLF-terminated, may be NULL) are
 * added before the empty line. malloc'd; NULL on allocation failure or a
 * head that is not origin-form ending in an empty line. */
char *forward_absolute_head(const char *head, size_t len, const char *authority,
			    const char *extra, size_t extra_len, size_t *out_len);

#endif
