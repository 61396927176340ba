/* forward.c - forward-proxy request heads: origin-form for the origin,
 * absolute-form for an upstream proxy. See forward.h. */
#include "proxy/forward.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static const char *const always_stripped[] = {
	"host", "connection", "proxy-connection", "proxy-authorization", "proxy-authenticate",
	"keep-alive", "te", "trailer", "upgrade",
};

static bool is_stripped(const struct http_head *h, struct http_slice name)
{
	for (size_t i = 0; i < sizeof(always_stripped) / sizeof(always_stripped[0]); i++)
		if (http_slice_eq_nocase(name, always_stripped[i]))
			return true;
	/* Headers nominated by any Connection header are hop-by-hop too. */
	char tmp[256];
	if (name.len >= sizeof(tmp))
		return false;
	memcpy(tmp, name.p, name.len);
	tmp[name.len] = '\0';
	for (size_t i = 0; i < h->n_headers; i++)
		if (http_slice_eq_nocase(h->headers[i].name, "connection") &&
		    http_list_has_token(h->headers[i].value, tmp))
			return true;
	return false;
}

struct outbuf {
	char *p;
	size_t len, cap;
};

static void emit(struct outbuf *o, const char *s, size_t n)
{
	/* cap is computed up front as an upper bound; never exceeded */
	if (o->len + n > o->cap)
		abort();
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

static void emit_str(struct outbuf *o, const char *s)
{
	emit(o, s, strlen(s));
}

char *forward_build_head(const struct http_head *h, const struct proxy_target *t, size_t *len)
{
	char host[TARGET_MAX_HOST + 16];
	target_format_host_header(t, host, sizeof(host));
	/* Upper bound: the original head (which contains method, path and all
	 * kept headers; each may gain one byte for the space after ':') plus
	 * what we add. */
	struct outbuf o = { .cap = h->head_len + h->n_headers + strlen(host) + 128 };
	o.p = malloc(o.cap);
	if (o.p == NULL)
		return NULL;

	emit(&o, h->method.p, h->method.len);
	emit_str(&o, " ");
	if (t->path_len == 0 || t->path[0] != '/')
		emit_str(&o, "/");
	emit(&o, t->path, t->path_len);
	emit_str(&o, h->minor_version == 1 ? " HTTP/1.1\r\n" : " HTTP/1.0\r\n");
	bool has_via = false;
	for (size_t i = 0; i < h->n_headers; i++) {
		const struct http_header *hd = &h->headers[i];
		if (is_stripped(h, hd->name))
			continue;
		if (http_slice_eq_nocase(hd->name, "via"))
			has_via = true;
		emit(&o, hd->name.p, hd->name.len);
		emit_str(&o, ": ");
		emit(&o, hd->value.p, hd->value.len);
		emit_str(&o, "\r\n");
	}
	emit_str(&o, "Host: ");
	emit_str(&o, host);
	emit_str(&o, "\r\nConnection: close\r\n");
	if (!has_via)
		emit_str(&o, "Via: " FORWARD_VIA "\r\n");
	emit_str(&o, "\r\n");
	*len = o.len;
	return o.p;
}

char *forward_absolute_head(const char *head, size_t len, const char *authority,
			    const char *extra, size_t extra_len, size_t *out_len)
{
	static const char scheme[] = "http://";
	const char *eol = memmem(head, len, "\r\n", 2);
	const char *sp = eol ? memchr(head, ' ', (size_t)(eol - head)) : NULL;
	if (sp == NULL || sp + 1 >= eol || sp[1] != '/' || len < 4 ||
	    memcmp(head + len - 4, "\r\n\r\n", 4) != 0)
		return NULL;
	size_t alen = strlen(authority), before = (size_t)(sp + 1 - head);
	size_t rest = len - 2 - before; /* target .. last header line's CRLF */
	struct outbuf o = { .cap = len + sizeof(scheme) + alen + extra_len };
	o.p = malloc(o.cap);
	if (o.p == NULL)
		return NULL;
	emit(&o, head, before);
	emit_str(&o, scheme);
	emit(&o, authority, alen);
	emit(&o, head + before, rest);
	if (extra != NULL)
		emit(&o, extra, extra_len);
	emit_str(&o, "\r\n");
	*out_len = o.len;
	return o.p;
}
