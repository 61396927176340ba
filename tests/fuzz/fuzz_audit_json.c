/* fuzz_audit_json.c - libFuzzer target for the audit line writer: whatever
 * bytes a request puts into its fields, the line is one JSON object on one
 * line, and json-c reads every field back exactly as it went in. */
#include <json-c/json.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/audit.h"

enum { N_FIELDS = 10 };

/* Field i of the input: the bytes up to the next NUL (the last field gets
 * the rest). Returns pointers into buf, which holds a NUL-ended copy. */
static void split_fields(char *buf, size_t n, const char *field[N_FIELDS])
{
	size_t at = 0;
	for (int i = 0; i < N_FIELDS; i++) {
		field[i] = at < n ? buf + at : NULL;
		while (at < n && buf[at] != '\0')
			at++;
		at++;
	}
}

/* A string field: null for NULL or "", else the same bytes. */
static void check_str(struct json_object *obj, const char *key, const char *want)
{
	struct json_object *v = NULL;
	if (!json_object_object_get_ex(obj, key, &v))
		abort();
	if (want == NULL || want[0] == '\0') {
		if (v != NULL)
			abort();
		return;
	}
	if (!json_object_is_type(v, json_type_string) || strcmp(json_object_get_string(v), want))
		abort();
}

static struct json_object *member(struct json_object *obj, const char *key)
{
	struct json_object *v = NULL;
	if (!json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_object))
		abort();
	return v;
}

static void check_line(const char *line, const struct audit_event *e)
{
	for (const char *p = line; *p; p++)
		if ((unsigned char)*p < 0x20)
			abort(); /* one line, no raw control bytes */
	struct json_tokener *tok = json_tokener_new();
	if (tok == NULL)
		return;
	struct json_object *root = json_tokener_parse_ex(tok, line, (int)strlen(line) + 1);
	if (root == NULL || json_tokener_get_error(tok) != json_tokener_success ||
	    !json_object_is_type(root, json_type_object))
		abort();
	check_str(root, "message", e->message);
	check_str(root, "status_detail", e->reason);
	check_str(root, "method", e->method);
	struct json_object *dst = member(root, "dst_endpoint");
	check_str(dst, "hostname", e->host);
	check_str(dst, "ip", e->dst_ip);
	if (json_object_get_int(json_object_object_get(dst, "port")) != e->port ||
	    json_object_get_int64(json_object_object_get(root, "time")) != e->time_ms ||
	    json_object_get_int(json_object_object_get(member(root, "process"), "pid")) !=
		    (e->pid > 0 ? e->pid : 0))
		abort();
	check_str(member(root, "src_endpoint"), "ip", e->src_ip);
	check_str(member(root, "process"), "path", e->binary);
	check_str(member(root, "firewall_rule"), "name", e->rule_name);
	check_str(member(root, "firewall_rule"), "type", e->rule_type);
	if (e->url_path != NULL) {
		struct json_object *url = member(member(root, "http_request"), "url");
		struct json_object *v = NULL;
		if (!json_object_object_get_ex(url, "path", &v) ||
		    strcmp(json_object_get_string(v), e->url_path) != 0)
			abort();
	}
	json_object_put(root);
	json_tokener_free(tok);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 4)
		return 0;
	char *buf = malloc(size - 3);
	if (buf == NULL)
		return 0;
	memcpy(buf, data + 4, size - 4);
	buf[size - 4] = '\0';
	const char *f[N_FIELDS];
	split_fields(buf, size - 4, f);
	struct audit_event e = {
		.allow = data[0] & 1, .port = (uint16_t)(data[1] << 8 | data[2]),
		.src_port = data[2], .pid = data[3], /* both signs, INT64_MIN included */
		.time_ms = (int64_t)((uint64_t)data[1] << 56 | (uint64_t)data[3]),
		.method = f[0], .host = f[1], .dst_ip = f[2], .rule_name = f[3],
		.rule_type = f[4], .reason = f[5], .message = f[6], .src_ip = f[7],
		.url_path = f[8], .binary = f[9],
	};
	char *line = audit_event_json(&e);
	if (line != NULL)
		check_line(line, &e);
	free(line);
	free(buf);
	return 0;
}
