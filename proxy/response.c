/* response.c - proxy-generated HTTP responses with JSON bodies. */
#include "proxy/response.h"

#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *response_status_phrase(int status)
{
	switch (status) {
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 408: return "Request Timeout";
	case 411: return "Length Required";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default: return "Error";
	}
}

static bool put(struct json_object *o, const char *k, struct json_object *v)
{
	if (v == NULL || json_object_object_add(o, k, v) != 0) {
		json_object_put(v);
		return false;
	}
	return true;
}

/* Serialize body into a full response; consumes body. */
static char *finish(int status, struct json_object *body, bool ok, size_t *len)
{
	char *out = NULL;
	const char *js = ok ? json_object_to_json_string_ext(
				      body, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
			    : NULL;
	if (js != NULL) {
		size_t blen = strlen(js);
		int n = asprintf(&out,
				 "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
				 "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
				 status, response_status_phrase(status), blen, js);
		if (n < 0)
			out = NULL;
		else
			*len = (size_t)n;
	}
	json_object_put(body);
	return out;
}

char *response_json_error(int status, const char *error, const char *detail, size_t *len)
{
	struct json_object *body = json_object_new_object();
	if (body == NULL)
		return NULL;
	bool ok = put(body, "error", json_object_new_string(error)) &&
		  put(body, "detail", json_object_new_string(detail));
	return finish(status, body, ok, len);
}

/* Quote a YAML scalar unless it is a plain DNS name or IPv4 address. */
static bool needs_quotes(const char *s)
{
	if (s[0] == '\0' || s[0] == '-' || s[0] == '.')
		return true;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' ||
		      *p == '.' || *p == '_'))
			return true;
	return false;
}

char *response_suggested_rule(const char *host, uint16_t port)
{
	char *out = NULL;
	/* Hosts reaching here are validated names or IP literals (no quotes or
	 * backslashes), so double quoting needs no escaping. */
	const char *q = needs_quotes(host) ? "\"" : "";
	if (asprintf(&out, "- host: %s%s%s\n  port: %u\n", q, host, q, (unsigned)port) < 0)
		return NULL;
	return out;
}

char *response_policy_denied(const struct denial_info *d, size_t *len)
{
	struct json_object *body = json_object_new_object();
	if (body == NULL)
		return NULL;
	char *rule = response_suggested_rule(d->host, d->port);
	bool ok = rule != NULL && put(body, "error", json_object_new_string("policy_denied")) &&
		  put(body, "detail", json_object_new_string(d->detail)) &&
		  (d->reason == NULL || d->reason[0] == '\0' ||
		   put(body, "reason", json_object_new_string(d->reason))) &&
		  put(body, "host", json_object_new_string(d->host)) &&
		  put(body, "port", json_object_new_int(d->port)) &&
		  (d->rule_name == NULL || put(body, "policy", json_object_new_string(d->rule_name))) &&
		  put(body, "suggested_rule", json_object_new_string(rule));
	free(rule);
	return finish(403, body, ok, len);
}

static bool put_l7_fields(struct json_object *o, const struct l7_denial *d)
{
	return put(o, "method", json_object_new_string(d->method)) &&
	       put(o, "path", json_object_new_string(d->path)) &&
	       put(o, "host", json_object_new_string(d->host)) &&
	       put(o, "port", json_object_new_int(d->port));
}

static bool header_safe(const char *s)
{
	for (; s != NULL && *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

char *response_l7_denied(const struct l7_denial *d, bool close, size_t *len)
{
	const char *pol = d->rule_name != NULL && header_safe(d->rule_name) ? d->rule_name : NULL;
	struct json_object *body = json_object_new_object();
	struct json_object *missing = json_object_new_object();
	char *rule = NULL;
	if (body == NULL || missing == NULL ||
	    asprintf(&rule, "%s %s", d->method, d->path) < 0) {
		json_object_put(body);
		json_object_put(missing);
		return NULL;
	}
	bool ok = put(body, "error", json_object_new_string("policy_denied")) &&
		  (d->rule_name == NULL || put(body, "policy", json_object_new_string(d->rule_name))) &&
		  put(body, "rule", json_object_new_string(rule)) &&
		  put(body, "detail", json_object_new_string(d->reason ? d->reason : "")) &&
		  put(body, "layer", json_object_new_string("l7")) &&
		  put(body, "protocol", json_object_new_string("rest")) && put_l7_fields(body, d) &&
		  put(missing, "type", json_object_new_string("rest_allow")) &&
		  put(missing, "layer", json_object_new_string("l7")) && put_l7_fields(missing, d);
	free(rule);
	if (!ok || !put(body, "rule_missing", missing)) {
		if (ok)
			missing = NULL; /* put() took it */
		json_object_put(missing);
		json_object_put(body);
		return NULL;
	}
	const char *js = json_object_to_json_string_ext(
		body, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	char *out = NULL;
	if (js != NULL) {
		int n = asprintf(&out,
				 "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\n"
				 "Content-Length: %zu\r\n%s%s%s%s\r\n%s",
				 strlen(js), pol ? "X-OpenShell-Policy: " : "", pol ? pol : "",
				 pol ? "\r\n" : "",
				 close ? "Connection: close\r\n" : "", js);
		if (n < 0)
			out = NULL;
		else
			*len = (size_t)n;
	}
	json_object_put(body);
	return out;
}
