/* audit.c - OCSF Network Activity (class 4001) lines for proxy decisions. */
#include "proxy/audit.h"

#include <json-c/json.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proxy/strbuf.h"

enum {
	OCSF_CLASS_NETWORK_ACTIVITY = 4001,
	OCSF_ACTIVITY_OPEN = 1,
	OCSF_ACTIVITY_REFUSE = 5,
	OCSF_SEVERITY_INFORMATIONAL = 1,
	OCSF_SEVERITY_MEDIUM = 3,
	OCSF_ACTION_ALLOWED = 1,
	OCSF_ACTION_DENIED = 2,
	OCSF_DISPOSITION_ALLOWED = 1,
	OCSF_DISPOSITION_BLOCKED = 2,
};

int64_t audit_now_ms(void)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
		return 0;
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t proxy_audit_now_ms(void)
{
	return audit_now_ms();
}

bool proxy_json_put(struct json_object *o, const char *k, struct json_object *v)
{
	if (json_object_object_add(o, k, v) != 0) {
		json_object_put(v);
		return false;
	}
	return true;
}

struct json_object *proxy_json_str_or_null(const char *s)
{
	return s != NULL && s[0] != '\0' ? json_object_new_string(s) : NULL;
}

struct json_object *proxy_json_child(struct json_object *parent, const char *k)
{
	struct json_object *o = json_object_new_object();
	if (o == NULL || !proxy_json_put(parent, k, o))
		return NULL;
	return o;
}

/* The line is written directly into a strbuf (json-c's object tree cost a
 * few dozen allocations per event, and there is one event per request):
 * plain JSON, keys in a fixed order, strings escaped as json-c escapes them
 * (control bytes, '"', '\\'; other bytes unchanged; '/' not escaped). */
/* ',"key":', without the comma for an object's first key. */
static void jb_key(struct strbuf *b, const char *key)
{
	if (b->len > 0 && b->p[b->len - 1] != '{')
		strbuf_put(b, ",", 1);
	strbuf_put(b, "\"", 1);
	strbuf_puts(b, key);
	strbuf_put(b, "\":", 2);
}

static void jb_escaped(struct strbuf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	strbuf_put(b, "\"", 1);
	const char *run = s;
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		strbuf_put(b, run, (size_t)(s - run));
		run = s + 1;
		char esc[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };
		size_t n = 2;
		switch (c) {
		case '"': esc[1] = '"'; break;
		case '\\': esc[1] = '\\'; break;
		case '\b': esc[1] = 'b'; break;
		case '\f': esc[1] = 'f'; break;
		case '\n': esc[1] = 'n'; break;
		case '\r': esc[1] = 'r'; break;
		case '\t': esc[1] = 't'; break;
		default: n = 6; break;
		}
		strbuf_put(b, esc, n);
	}
	strbuf_put(b, run, (size_t)(s - run));
	strbuf_put(b, "\"", 1);
}

/* "key":"value", or "key":null for NULL or "". */
static void jb_str(struct strbuf *b, const char *key, const char *v)
{
	jb_key(b, key);
	if (v == NULL || v[0] == '\0')
		strbuf_puts(b, "null");
	else
		jb_escaped(b, v);
}

/* Decimal without snprintf: an event has up to nine numbers, and their
 * snprintf calls were ~15 % of building the line. */
static void jb_int(struct strbuf *b, const char *key, int64_t v)
{
	char num[24];
	char *end = num + sizeof(num), *p = end;
	uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
	do
		*--p = (char)('0' + u % 10);
	while ((u /= 10) != 0);
	if (v < 0)
		*--p = '-';
	jb_key(b, key);
	strbuf_put(b, p, (size_t)(end - p));
}

static void add_endpoints(struct strbuf *b, const struct audit_event *e)
{
	jb_key(b, "dst_endpoint");
	strbuf_put(b, "{", 1);
	jb_str(b, "hostname", e->host);
	jb_int(b, "port", e->port);
	jb_str(b, "ip", e->dst_ip);
	strbuf_put(b, "}", 1);
	jb_key(b, "src_endpoint");
	strbuf_put(b, "{", 1);
	jb_str(b, "ip", e->src_ip);
	if (e->src_ip != NULL)
		jb_int(b, "port", e->src_port);
	else
		jb_str(b, "port", NULL);
	strbuf_put(b, "}", 1);
	jb_key(b, "process");
	strbuf_put(b, "{", 1);
	if (e->pid > 0)
		jb_int(b, "pid", e->pid);
	else
		jb_str(b, "pid", NULL);
	jb_str(b, "path", e->binary);
	strbuf_put(b, "}", 1);
	if (e->url_path != NULL) {
		jb_key(b, "http_request");
		strbuf_puts(b, "{\"url\":{\"path\":");
		jb_escaped(b, e->url_path);
		strbuf_puts(b, "}}");
	}
	jb_key(b, "firewall_rule");
	strbuf_put(b, "{", 1);
	jb_str(b, "name", e->rule_name);
	jb_str(b, "type", e->rule_type);
	strbuf_put(b, "}", 1);
}

char *audit_event_json(const struct audit_event *e)
{
	struct strbuf b = { 0 };
	bool allow = e->allow;
	strbuf_put(&b, "{", 1);
	jb_int(&b, "class_uid", OCSF_CLASS_NETWORK_ACTIVITY);
	jb_str(&b, "class_name", "Network Activity");
	jb_int(&b, "activity_id", allow ? OCSF_ACTIVITY_OPEN : OCSF_ACTIVITY_REFUSE);
	jb_str(&b, "activity_name", allow ? "Open" : "Refuse");
	jb_int(&b, "time", e->time_ms);
	jb_int(&b, "severity_id", allow ? OCSF_SEVERITY_INFORMATIONAL : OCSF_SEVERITY_MEDIUM);
	jb_str(&b, "severity", allow ? "Informational" : "Medium");
	jb_int(&b, "action_id", allow ? OCSF_ACTION_ALLOWED : OCSF_ACTION_DENIED);
	jb_str(&b, "action", allow ? "allow" : "deny");
	jb_int(&b, "disposition_id", allow ? OCSF_DISPOSITION_ALLOWED : OCSF_DISPOSITION_BLOCKED);
	jb_str(&b, "disposition", allow ? "Allowed" : "Blocked");
	jb_str(&b, "message", e->message);
	jb_str(&b, "status_detail", e->reason);
	jb_key(&b, "path");
	jb_escaped(&b, e->path ? e->path : "explicit");
	jb_str(&b, "method", e->method);
	add_endpoints(&b, e);
	strbuf_put(&b, "}", 1);
	if (b.failed) {
		strbuf_free(&b);
		return NULL;
	}
	return b.p;
}
