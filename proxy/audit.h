/* audit.h - OCSF-shaped audit lines for proxy decisions (private to proxy/). */
#ifndef OPENSHELL_PROXY_AUDIT_H
#define OPENSHELL_PROXY_AUDIT_H

#include <stdbool.h>
#include <stdint.h>

struct audit_event {
	bool allow;
	const char *method;     /* "CONNECT", "GET", ... */
	const char *host;
	uint16_t port;
	const char *dst_ip;     /* first address to dial, NULL when unknown */
	const char *rule_name;  /* matched policy rule, NULL when none */
	const char *rule_type;  /* "opa" (policy) or "ssrf" */
	const char *reason;     /* status_detail; NULL/"" -> null */
	const char *message;    /* short human summary */
	const char *src_ip;     /* client address, NULL when unknown */
	uint16_t src_port;
	int64_t time_ms;        /* ms since the epoch */
	const char *path;       /* "explicit" (NULL), "transparent" or "dns" */
	const char *url_path;   /* request path (L7 and tool calls), NULL: none */
	const char *binary;     /* calling process, NULL when not resolved */
	long pid;               /* its pid, 0 when not resolved */
};

/* One JSON object (no newline), malloc'd; NULL on allocation failure. */
char *audit_event_json(const struct audit_event *e);

int64_t audit_now_ms(void);

#endif
