/* response.h - proxy-generated HTTP responses (private to proxy/). */
#ifndef OPENSHELL_PROXY_RESPONSE_H
#define OPENSHELL_PROXY_RESPONSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bare responses (no body), as the reference sends them. */
#define RESPONSE_400_BARE "HTTP/1.1 400 Bad Request\r\n\r\n"
#define RESPONSE_408_BARE "HTTP/1.1 408 Request Timeout\r\n\r\n"
#define RESPONSE_431_BARE "HTTP/1.1 431 Request Header Fields Too Large\r\n\r\n"
#define RESPONSE_400_HTTPS \
	"HTTP/1.1 400 Bad Request\r\nContent-Length: 27\r\n\r\nUse CONNECT for HTTPS URLs"
#define RESPONSE_200_CONNECT "HTTP/1.1 200 Connection Established\r\n\r\n"

/* Fields of the 403 policy_denied body. rule_name and reason may be NULL. */
struct denial_info {
	const char *detail;
	const char *reason;
	const char *host;
	uint16_t port;
	const char *rule_name;
};

/* `HTTP/1.1 <status> <phrase>` with a JSON body {"error":..,"detail":..},
 * Content-Type/Content-Length/Connection: close. malloc'd, NULL on OOM. */
char *response_json_error(int status, const char *error, const char *detail, size_t *len);

/* 403 policy_denied with reason, host, port, policy and suggested_rule. */
char *response_policy_denied(const struct denial_info *d, size_t *len);

/* YAML endpoint snippet that would allow host:port, malloc'd. */
char *response_suggested_rule(const char *host, uint16_t port);

const char *response_status_phrase(int status);

/* A request inside an intercepted tunnel denied by L7 rules. */
struct l7_denial {
	const char *method;
	const char *path;       /* canonical, without the query */
	const char *host;
	uint16_t port;
	const char *reason;
	const char *rule_name;  /* may be NULL */
};

/* 403 policy_denied (layer l7) with X-OpenShell-Policy; `close` adds
 * `Connection: close`, otherwise the tunnel stays usable. malloc'd. */
char *response_l7_denied(const struct l7_denial *d, bool close, size_t *len);

#endif
