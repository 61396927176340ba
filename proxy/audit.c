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

/* Add v under k, taking ownership of v even on failure. A NULL v is a JSON
 * null. Returns false on allocation failure. */
static bool put(struct json_object *o, const char *k, struct json_object *v)
{
	if (json_object_object_add(o, k, v) != 0) {
		json_object_put(v);
		return false;
	}
	return true;
}

static struct json_object *str_or_null(const char *s)
{
	return s != NULL && s[0] != '\0' ? json_object_new_string(s) : NULL;
}

/* A new empty object stored under k in parent; NULL on failure. */
static struct json_object *child(struct json_object *parent, const char *k)
{
	struct json_object *o = json_object_new_object();
	if (o == NULL || !put(parent, k, o))
		return NULL;
	return o;
}

static bool add_endpoints(struct json_object *root, const struct audit_event *e)
{
	struct json_object *dst = child(root, "dst_endpoint");
	if (dst == NULL || !put(dst, "hostname", str_or_null(e->host)) ||
	    !put(dst, "port", json_object_new_int(e->port)) ||
	    !put(dst, "ip", str_or_null(e->dst_ip)))
		return false;
	struct json_object *src = child(root, "src_endpoint");
	if (src == NULL || !put(src, "ip", str_or_null(e->src_ip)) ||
	    !put(src, "port", e->src_ip ? json_object_new_int(e->src_port) : NULL))
		return false;
	struct json_object *proc = child(root, "process");
	if (proc == NULL ||
	    !put(proc, "pid", e->pid > 0 ? json_object_new_int64(e->pid) : NULL) ||
	    !put(proc, "path", str_or_null(e->binary)))
		return false;
	if (e->url_path != NULL) {
		struct json_object *req = child(root, "http_request");
		struct json_object *url = req ? child(req, "url") : NULL;
		if (url == NULL || !put(url, "path", json_object_new_string(e->url_path)))
			return false;
	}
	struct json_object *rule = child(root, "firewall_rule");
	return rule != NULL && put(rule, "name", str_or_null(e->rule_name)) &&
	       put(rule, "type", str_or_null(e->rule_type));
}

char *audit_event_json(const struct audit_event *e)
{
	struct json_object *root = json_object_new_object();
	if (root == NULL)
		return NULL;
	bool ok =
		put(root, "class_uid", json_object_new_int(OCSF_CLASS_NETWORK_ACTIVITY)) &&
		put(root, "class_name", json_object_new_string("Network Activity")) &&
		put(root, "activity_id",
		    json_object_new_int(e->allow ? OCSF_ACTIVITY_OPEN : OCSF_ACTIVITY_REFUSE)) &&
		put(root, "activity_name", json_object_new_string(e->allow ? "Open" : "Refuse")) &&
		put(root, "time", json_object_new_int64(e->time_ms)) &&
		put(root, "severity_id",
		    json_object_new_int(e->allow ? OCSF_SEVERITY_INFORMATIONAL : OCSF_SEVERITY_MEDIUM)) &&
		put(root, "severity",
		    json_object_new_string(e->allow ? "Informational" : "Medium")) &&
		put(root, "action_id",
		    json_object_new_int(e->allow ? OCSF_ACTION_ALLOWED : OCSF_ACTION_DENIED)) &&
		put(root, "action", json_object_new_string(e->allow ? "allow" : "deny")) &&
		put(root, "disposition_id",
		    json_object_new_int(e->allow ? OCSF_DISPOSITION_ALLOWED : OCSF_DISPOSITION_BLOCKED)) &&
		put(root, "disposition", json_object_new_string(e->allow ? "Allowed" : "Blocked")) &&
		put(root, "message", str_or_null(e->message)) &&
		put(root, "status_detail", str_or_null(e->reason)) &&
		put(root, "path", json_object_new_string(e->path ? e->path : "explicit")) &&
		put(root, "method", str_or_null(e->method)) &&
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
