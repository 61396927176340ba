/* spec.c - OPENSHELL_MAIN_PROCESS_SPEC: {"version":1,"command":[...],"tty":b},
 * plain JSON or "base64url:" + unpadded base64url of it. Never shell-parsed. */
#include <json-c/json.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "supervisor/sup.h"

#define SPEC_MAX_BYTES 65536u
#define SPEC_MAX_ARGS 4096u

void sup_argv_free(char **argv)
{
	if (!argv)
		return;
	for (char **a = argv; *a; a++)
		free(*a);
	free(argv);
}

/* Decodes unpadded base64url into a NUL-terminated heap string. */
static char *decode_base64url(const char *in, char *err, size_t errlen)
{
	size_t n = strlen(in);
	if (n > SPEC_MAX_BYTES) {
		snprintf(err, errlen, "longer than %u bytes", SPEC_MAX_BYTES);
		return NULL;
	}
	size_t padded = (n + 3) / 4 * 4;
	char *b64 = malloc(padded + 1);
	unsigned char *out = malloc(padded / 4 * 3 + 1);
	if (!b64 || !out) {
		free(b64);
		free(out);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < n; i++)
		b64[i] = in[i] == '-' ? '+' : in[i] == '_' ? '/' : in[i];
	for (size_t i = n; i < padded; i++)
		b64[i] = '=';
	b64[padded] = '\0';
	int len = padded ? EVP_DecodeBlock(out, (unsigned char *)b64, (int)padded) : 0;
	free(b64);
	if (len < 0 || n % 4 == 1) {
		free(out);
		snprintf(err, errlen, "invalid base64url");
		return NULL;
	}
	len -= (int)(padded - n); /* EVP_DecodeBlock counts padding as zero bytes */
	out[len] = '\0';
	if (memchr(out, '\0', (size_t)len)) {
		free(out);
		snprintf(err, errlen, "decoded spec contains a NUL byte");
		return NULL;
	}
	return (char *)out;
}

static int argv_from_json(json_object *cmd, char ***argv_out, char *err, size_t errlen)
{
	if (!json_object_is_type(cmd, json_type_array)) {
		snprintf(err, errlen, "\"command\" must be an array of strings");
		return -1;
	}
	size_t n = json_object_array_length(cmd);
	if (n == 0 || n > SPEC_MAX_ARGS) {
		snprintf(err, errlen, "\"command\" must have 1 to %u entries", SPEC_MAX_ARGS);
		return -1;
	}
	char **argv = calloc(n + 1, sizeof *argv);
	if (!argv) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		json_object *s = json_object_array_get_idx(cmd, i);
		if (!json_object_is_type(s, json_type_string) ||
		    (i == 0 && json_object_get_string_len(s) == 0)) {
			snprintf(err, errlen, "\"command\"[%zu] must be a%s string", i,
				 i == 0 ? " non-empty" : "");
			sup_argv_free(argv);
			return -1;
		}
		argv[i] = strdup(json_object_get_string(s));
		if (!argv[i]) {
			sup_argv_free(argv);
			snprintf(err, errlen, "out of memory");
			return -1;
		}
	}
	*argv_out = argv;
	return 0;
}

static int parse_spec_json(const char *text, char ***argv_out, char *err, size_t errlen)
{
	enum json_tokener_error jerr;
	json_object *root = json_tokener_parse_verbose(text, &jerr);
	if (!root) {
		snprintf(err, errlen, "invalid JSON: %s", json_tokener_error_desc(jerr));
		return -1;
	}
	int rc = -1;
	json_object *ver, *cmd;
	if (!json_object_is_type(root, json_type_object))
		snprintf(err, errlen, "must be a JSON object");
	else if (!json_object_object_get_ex(root, "version", &ver) ||
		 !json_object_is_type(ver, json_type_int))
		snprintf(err, errlen, "\"version\" is required and must be 1");
	else if (json_object_get_int64(ver) != 1)
		snprintf(err, errlen, "unsupported version %lld (only 1)",
			 (long long)json_object_get_int64(ver));
	else if (!json_object_object_get_ex(root, "command", &cmd))
		snprintf(err, errlen, "\"command\" is required");
	else
		rc = argv_from_json(cmd, argv_out, err, errlen);
	json_object_put(root);
	return rc;
}

int sup_parse_process_spec(const char *spec, char ***argv_out, char *err, size_t errlen)
{
	static const char prefix[] = "base64url:";
	*argv_out = NULL;
	if (strlen(spec) > SPEC_MAX_BYTES) {
		snprintf(err, errlen, "longer than %u bytes", SPEC_MAX_BYTES);
		return -1;
	}
	if (strncmp(spec, prefix, sizeof prefix - 1) != 0)
		return parse_spec_json(spec, argv_out, err, errlen);
	char *json = decode_base64url(spec + sizeof prefix - 1, err, errlen);
	if (!json)
		return -1;
	int rc = parse_spec_json(json, argv_out, err, errlen);
	free(json);
	return rc;
}
