/* checks.c - what a client may ask for: env names and forward destinations. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "ssh-relay/ssh_relay.h"

/* Set by the supervisor for every session child; a client must not replace
 * them (identity, search path, terminal from pty-req, TLS trust). */
static const char *const env_forced[] = {
	"HOME", "USER", "LOGNAME", "SHELL", "PATH", "TERM",
	"NODE_EXTRA_CA_CERTS", "DENO_CERT", "SSL_CERT_FILE", "SSL_CERT_DIR",
	"REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "GIT_SSL_CAINFO", "GIT_SSL_CAPATH",
	"NODE_USE_ENV_PROXY",
};

static bool env_name_well_formed(const char *name)
{
	size_t len = strlen(name);
	if (len == 0 || len > SSH_RELAY_MAX_ENV_NAME)
		return false;
	if (!(isalpha((unsigned char)name[0]) || name[0] == '_'))
		return false;
	for (size_t i = 1; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		if (!(isalnum(c) || c == '_'))
			return false;
	}
	return true;
}

static bool ends_with_ci(const char *s, const char *suffix)
{
	size_t ls = strlen(s), lx = strlen(suffix);
	return ls >= lx && strcasecmp(s + ls - lx, suffix) == 0;
}

bool ssh_relay_env_name_allowed(const char *name)
{
	if (name == NULL || !env_name_well_formed(name))
		return false;
	if (strncasecmp(name, "OPENSHELL_", 10) == 0)
		return false;
	/* Proxy variables in any spelling: HTTP_PROXY, https_proxy, NO_PROXY, ... */
	if (ends_with_ci(name, "_PROXY"))
		return false;
	/* Dynamic-loader variables (LD_PRELOAD, LD_LIBRARY_PATH, LD_AUDIT, ...). */
	if (strncmp(name, "LD_", 3) == 0)
		return false;
	for (size_t i = 0; i < sizeof env_forced / sizeof env_forced[0]; i++)
		if (strcmp(name, env_forced[i]) == 0)
			return false;
	return true;
}

static int copy_out(const char *s, char *out, size_t outlen)
{
	int n = snprintf(out, outlen, "%s", s);
	return (n < 0 || (size_t)n >= outlen) ? -1 : 0;
}

/* Strips one pair of surrounding brackets into buf. */
static int unbracket(const char *host, char *buf, size_t buflen)
{
	size_t len = strlen(host);
	if (len >= 2 && host[0] == '[' && host[len - 1] == ']') {
		if (len - 2 >= buflen)
			return -1;
		memcpy(buf, host + 1, len - 2);
		buf[len - 2] = '\0';
		return 0;
	}
	return copy_out(host, buf, buflen);
}

int ssh_relay_loopback_target(const char *host, char *out, size_t outlen)
{
	char h[INET6_ADDRSTRLEN + 8];
	struct in_addr a4;
	struct in6_addr a6;

	if (host == NULL || out == NULL || unbracket(host, h, sizeof h) != 0)
		return -1;
	if (strcasecmp(h, "localhost") == 0)
		return copy_out("127.0.0.1", out, outlen);
	if (inet_pton(AF_INET, h, &a4) == 1) {
		if ((ntohl(a4.s_addr) >> 24) != 127)
			return -1;
		return inet_ntop(AF_INET, &a4, out, (socklen_t)outlen) ? 0 : -1;
	}
	if (inet_pton(AF_INET6, h, &a6) == 1) {
		if (IN6_IS_ADDR_LOOPBACK(&a6))
			return copy_out("::1", out, outlen);
		if (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127) {
			memcpy(&a4.s_addr, &a6.s6_addr[12], 4);
			return inet_ntop(AF_INET, &a4, out, (socklen_t)outlen) ? 0 : -1;
		}
	}
	return -1;
}
