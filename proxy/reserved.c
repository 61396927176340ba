/* reserved.c - the host alias and the tool route. See reserved.h. */
#include "proxy/reserved.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

#include "policy/policy.h"
#include "proxy/proxy.h"
#include "proxy/proxy_int.h"

bool reserved_is_alias(const char *host)
{
	return host != NULL && strcasecmp(host, PROXY_HOST_ALIAS) == 0;
}

static bool port_listed(const struct policy_endpoint *ep, uint16_t port)
{
	for (size_t i = 0; i < ep->n_ports; i++)
		if (ep->ports[i] == port)
			return true;
	return false;
}

bool reserved_alias_declared(const struct policy *p, uint16_t port)
{
	if (p == NULL)
		return false;
	for (size_t r = 0; r < p->n_rules; r++) {
		const struct policy_rule *rule = &p->rules[r];
		for (size_t e = 0; e < rule->n_endpoints; e++) {
			const struct policy_endpoint *ep = &rule->endpoints[e];
			if (ep->host != NULL && strcmp(ep->host, PROXY_HOST_ALIAS) == 0 &&
			    port_listed(ep, port))
				return true;
		}
	}
	return false;
}

bool reserved_is_tool_host(const struct proxy *px, const char *host)
{
	return host != NULL && strcasecmp(host, px->tool_host) == 0;
}

bool reserved_host_declared(const struct policy *p, const char *host, uint16_t port)
{
	if (p == NULL || host == NULL)
		return false;
	for (size_t r = 0; r < p->n_rules; r++) {
		const struct policy_rule *rule = &p->rules[r];
		for (size_t e = 0; e < rule->n_endpoints; e++) {
			const struct policy_endpoint *ep = &rule->endpoints[e];
			if (ep->host != NULL && !ep->host_is_wildcard &&
			    strcasecmp(ep->host, host) == 0 && port_listed(ep, port))
				return true;
		}
	}
	return false;
}

void reserved_tool_evaluate(const struct policy *p, const char *host, uint16_t port,
			    const char *method, const char *path, const char *query,
			    struct policy_l7_result *out)
{
	memset(out, 0, sizeof(*out));
	if (strcmp(method, "GET") == 0 && strcmp(path, PROXY_TOOL_DISCOVERY_PATH) == 0)
		return; /* discovery: allowed wherever the route is */
	policy_l7_evaluate(p, host, port, method, path, query, out);
	if (out->verdict != POLICY_L7_DENY && out->endpoint == NULL) {
		out->verdict = POLICY_L7_DENY;
		snprintf(out->reason, sizeof(out->reason),
			 "tool calls need L7 rules on the %s endpoint (default deny)", host);
	}
}

bool reserved_tool_header(struct http_slice name)
{
	size_t n = sizeof(PROXY_TOOL_HEADER_PREFIX) - 1;
	return name.len >= n && strncasecmp(name.p, PROXY_TOOL_HEADER_PREFIX, n) == 0;
}

/* Append value with every byte outside 0x21..0x7e (and '%') as %XX. */
static bool put_encoded(char *out, size_t cap, size_t *o, const char *v)
{
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *)v; *p != '\0'; p++) {
		bool plain = *p > 0x20 && *p < 0x7f && *p != '%';
		if (*o + (plain ? 1 : 3) >= cap)
			return false;
		if (plain) {
			out[(*o)++] = (char)*p;
		} else {
			out[(*o)++] = '%';
			out[(*o)++] = hex[*p >> 4];
			out[(*o)++] = hex[*p & 15];
		}
	}
	return true;
}

static bool put_line(char *out, size_t cap, size_t *o, const char *name, const char *value)
{
	int n = snprintf(out + *o, cap - *o, "%s: ", name);
	if (n < 0 || (size_t)n >= cap - *o)
		return false;
	*o += (size_t)n;
	if (!put_encoded(out, cap, o, value) || *o + 3 > cap)
		return false;
	out[(*o)++] = '\r';
	out[(*o)++] = '\n';
	out[*o] = '\0';
	return true;
}

size_t reserved_identity_lines(const char *sandbox_id, const char *binary, long pid,
			       char *out, size_t cap)
{
	char pidtext[24] = "unknown";
	if (pid > 0)
		snprintf(pidtext, sizeof(pidtext), "%ld", pid);
	size_t o = 0;
	if (cap == 0 ||
	    !put_line(out, cap, &o, PROXY_TOOL_HEADER_SANDBOX,
		      sandbox_id && sandbox_id[0] ? sandbox_id : "unknown") ||
	    !put_line(out, cap, &o, PROXY_TOOL_HEADER_BINARY,
		      binary && binary[0] ? binary : "unknown") ||
	    !put_line(out, cap, &o, PROXY_TOOL_HEADER_PID, pidtext))
		return 0;
	return o;
}

/* Is the header line [line, line+len) one of ours (x-openshell-*)? */
static bool line_is_tool_header(const char *line, size_t len)
{
	const char *colon = memchr(line, ':', len);
	struct http_slice name = { .p = line, .len = colon ? (size_t)(colon - line) : 0 };
	return colon != NULL && reserved_tool_header(name);
}

char *reserved_tool_head(const char *head, size_t len, const char *identity, size_t *out_len)
{
	const char *end = memmem(head, len, "\r\n\r\n", 4);
	if (end == NULL)
		return NULL;
	size_t idlen = strlen(identity);
	char *out = malloc(len + idlen + 1);
	if (out == NULL)
		return NULL;
	const char *eol = memmem(head, len, "\r\n", 2); /* request line kept */
	size_t o = (size_t)(eol + 2 - head);
	memcpy(out, head, o);
	for (const char *p = eol + 2; p < end + 2;) {
		const char *e = memmem(p, (size_t)(end + 2 - p), "\r\n", 2);
		size_t l = (size_t)(e + 2 - p);
		if (!line_is_tool_header(p, l)) {
			memcpy(out + o, p, l);
			o += l;
		}
		p = e + 2;
	}
	memcpy(out + o, identity, idlen);
	o += idlen;
	memcpy(out + o, "\r\n", 2);
	o += 2;
	*out_len = o;
	return out;
}

static int parse_unix_broker(const char *path, struct proxy_tool_broker *out, char *err,
			     size_t errlen)
{
	if (path[0] != '/' || strlen(path) >= sizeof(out->path)) {
		snprintf(err, errlen, "--tool-broker unix:%s: the socket path must be absolute and "
			 "shorter than %zu bytes", path, sizeof(out->path));
		return -1;
	}
	out->kind = PROXY_BROKER_UNIX;
	snprintf(out->path, sizeof(out->path), "%s", path);
	return 0;
}

/* "IP:PORT" or "[IPv6]:PORT", IP literals only (no DNS at start). */
static int parse_tcp_broker(const char *spec, const char *hp, struct proxy_tool_broker *out,
			    char *err, size_t errlen)
{
	char host[64];
	const char *colon = hp[0] == '[' ? strstr(hp, "]:") : strrchr(hp, ':');
	size_t hlen = colon ? (size_t)(colon - hp) : 0;
	const char *port_text = colon ? colon + (hp[0] == '[' ? 2 : 1) : NULL;
	if (hp[0] == '[' && colon != NULL) {
		hp++;
		hlen--;
	}
	char *endp = NULL;
	unsigned long port = port_text ? strtoul(port_text, &endp, 10) : 0;
	if (colon == NULL || hlen == 0 || hlen >= sizeof(host) || endp == port_text ||
	    *endp != '\0' || port == 0 || port > 65535) {
		snprintf(err, errlen, "--tool-broker %s: expected unix:/PATH or http://IP:PORT", spec);
		return -1;
	}
	memcpy(host, hp, hlen);
	host[hlen] = '\0';
	if (spec[7] != '[' && strchr(host, ':') != NULL) {
		snprintf(err, errlen, "--tool-broker %s: write an IPv6 address in brackets", spec);
		return -1;
	}
	memset(&out->addr, 0, sizeof(out->addr));
	struct sockaddr_in *s4 = (struct sockaddr_in *)&out->addr;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&out->addr;
	if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
	} else if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
	} else {
		snprintf(err, errlen, "--tool-broker %s: the host must be an IP address", spec);
		return -1;
	}
	out->kind = PROXY_BROKER_TCP;
	return 0;
}

int proxy_tool_broker_parse(const char *spec, struct proxy_tool_broker *out, char *err,
			    size_t errlen)
{
	memset(out, 0, sizeof(*out));
	if (spec != NULL && strncmp(spec, "unix:", 5) == 0)
		return parse_unix_broker(spec + 5, out, err, errlen);
	if (spec != NULL && strncmp(spec, "http://", 7) == 0) {
		char hp[128];
		size_t n = strlen(spec + 7);
		if (n > 0 && spec[7 + n - 1] == '/')
			n--; /* one trailing slash is fine */
		if (n < sizeof(hp)) {
			memcpy(hp, spec + 7, n);
			hp[n] = '\0';
			return parse_tcp_broker(spec, hp, out, err, errlen);
		}
	}
	snprintf(err, errlen, "--tool-broker %s: expected unix:/PATH or http://IP:PORT",
		 spec ? spec : "(null)");
	return -1;
}
