/* audit.c - OCSF Network Activity (class 4001) lines for proxy decisions. */
#include "proxy/audit.h"

#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

static bool add_endpoints(struct json_object *root, const struct audit_event *e)
{
	struct json_object *dst = proxy_json_child(root, "dst_endpoint");
	if (dst == NULL || !proxy_json_put(dst, "hostname", proxy_json_str_or_null(e->host)) ||
	    !proxy_json_put(dst, "port", json_object_new_int(e->port)) ||
	    !proxy_json_put(dst, "ip", proxy_json_str_or_null(e->dst_ip)))
		return false;
	struct json_object *src = proxy_json_child(root, "src_endpoint");
	if (src == NULL || !proxy_json_put(src, "ip", proxy_json_str_or_null(e->src_ip)) ||
	    !proxy_json_put(src, "port", e->src_ip ? json_object_new_int(e->src_port) : NULL))
		return false;
	struct json_object *proc = proxy_json_child(root, "process");
	if (proc == NULL ||
	    !proxy_json_put(proc, "pid", e->pid > 0 ? json_object_new_int64(e->pid) : NULL) ||
	    !proxy_json_put(proc, "path", proxy_json_str_or_null(e->binary)))
		return false;
	if (e->url_path != NULL) {
		struct json_object *req = proxy_json_child(root, "http_request");
		struct json_object *url = req ? proxy_json_child(req, "url") : NULL;
		if (url == NULL ||
		    !proxy_json_put(url, "path", json_object_new_string(e->url_path)))
			return false;
	}
	struct json_object *rule = proxy_json_child(root, "firewall_rule");
	return rule != NULL &&
	       proxy_json_put(rule, "name", proxy_json_str_or_null(e->rule_name)) &&
	       proxy_json_put(rule, "type", proxy_json_str_or_null(e->rule_type));
}

char *audit_event_json(const struct audit_event *e)
{
	struct json_object *root = json_object_new_object();
	if (root == NULL)
		return NULL;
	bool allow = e->allow;
	bool ok =
		proxy_json_put(root, "class_uid",
			       json_object_new_int(OCSF_CLASS_NETWORK_ACTIVITY)) &&
		proxy_json_put(root, "class_name", json_object_new_string("Network Activity")) &&
		proxy_json_put(root, "activity_id",
			       json_object_new_int(allow ? OCSF_ACTIVITY_OPEN
							 : OCSF_ACTIVITY_REFUSE)) &&
		proxy_json_put(root, "activity_name",
			       json_object_new_string(allow ? "Open" : "Refuse")) &&
		proxy_json_put(root, "time", json_object_new_int64(e->time_ms)) &&
		proxy_json_put(root, "severity_id",
			       json_object_new_int(allow ? OCSF_SEVERITY_INFORMATIONAL
							 : OCSF_SEVERITY_MEDIUM)) &&
		proxy_json_put(root, "severity",
			       json_object_new_string(allow ? "Informational" : "Medium")) &&
		proxy_json_put(root, "action_id",
			       json_object_new_int(allow ? OCSF_ACTION_ALLOWED
							 : OCSF_ACTION_DENIED)) &&
		proxy_json_put(root, "action", json_object_new_string(allow ? "allow" : "deny")) &&
		proxy_json_put(root, "disposition_id",
			       json_object_new_int(allow ? OCSF_DISPOSITION_ALLOWED
							 : OCSF_DISPOSITION_BLOCKED)) &&
		proxy_json_put(root, "disposition",
			       json_object_new_string(allow ? "Allowed" : "Blocked")) &&
		proxy_json_put(root, "message", proxy_json_str_or_null(e->message)) &&
		proxy_json_put(root, "status_detail", proxy_json_str_or_null(e->reason)) &&
		proxy_json_put(root, "path",
			       json_object_new_string(e->path ? e->path : "explicit")) &&
		proxy_json_put(root, "method", proxy_json_str_or_null(e->method)) &&
		add_endpoints(root, e);
	char *out = NULL;
	if (ok) {
		const char *s = json_object_to_json_string_ext(
			root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
		if (s != NULL)
			out = strdup(s);
	}
	json_object_put(root);
	return out;
}
