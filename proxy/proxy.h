/* proxy.h - the embedded egress proxy (libuv).
 *
 * Serves HTTP CONNECT and absolute-form http:// requests on one listener,
 * decides each destination with the policy, guards against SSRF on every
 * resolved address, and relays bytes both ways with bounded buffers.
 * Everything runs on the caller's uv loop; the proxy owns all its handles.
 *
 * Behaviour worth knowing (details in the proxy/ sources):
 * - Decisions are endpoint-only for now: policy_decide(..., NULL, false, ...);
 *   binaries are not matched (peer identity is not resolved yet).
 * - A denied host is never resolved. Every resolved address is SSRF-checked
 *   (proxy/ssrf.h); only checked addresses are dialed, in resolver order.
 * - Forward requests: Content-Length bodies are forwarded byte-exact;
 *   chunked bodies are relayed unchanged through a strict framing validator
 *   that stops at the end of the body (bad framing: 400 before dialing, or
 *   the connection is closed mid-stream). Pipelined requests are dropped.
 * - With an upstream (corporate) proxy configured, destinations that passed
 *   the decision and the SSRF checks and are not in its no-proxy list are
 *   reached through it (proxy/upstream.h): tunnels by CONNECT to the checked
 *   address, forwarded http:// requests in absolute form.
 * - At PROXY_MAX_CONNECTIONS, a new connection gets a best-effort 503 JSON
 *   `proxy_busy` and is closed.
 * - The embedding program must ignore SIGPIPE (libuv writes with write(2));
 *   proxy_start() logs a warning if it does not.
 * - All functions must be called on the loop's thread.
 */
#ifndef OPENSHELL_PROXY_H
#define OPENSHELL_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <uv.h>

struct policy;
struct proxy_ca;
struct cred_store;

/* Explicit limits (documented in README "Limits"). */
#define PROXY_MAX_HEAD_BYTES 8192u          /* request head -> 431 beyond */
#define PROXY_HEAD_TIMEOUT_MS 10000u        /* full head not read -> 408 */
#define PROXY_CONNECT_TIMEOUT_MS 10000u     /* upstream connect -> 504 */
#define PROXY_DNS_TIMEOUT_MS 10000u         /* resolution -> 504 */
#define PROXY_RELAY_BUF_BYTES 65536u        /* max bytes buffered per direction */
#define PROXY_MAX_CONNECTIONS 16384u        /* accepted client connections at once;
					     * beyond it: best-effort 503, close */
#define PROXY_FDS_PER_CONNECTION 6u         /* client + upstream socket, and a pipe per
					     * direction while spliced bytes are in it */
#define PROXY_NOFILE_WANTED (PROXY_MAX_CONNECTIONS * PROXY_FDS_PER_CONNECTION + 4096u)
					    /* RLIMIT_NOFILE the supervisor raises itself
					     * to (+ listeners, DNS, ssh, logs) */
#define PROXY_RELAY_READ_BYTES 16384u       /* one read; stop reading when the other
					     * side's queue + one read would exceed
					     * PROXY_RELAY_BUF_BYTES */
#define PROXY_SPLICE_PIPE_BYTES 1048576u    /* raw tunnel (TCP both ends) relayed with
					     * splice(2): pipe size asked for, the most
					     * bytes in the proxy per direction */
#define PROXY_SPLICE_BURST_BYTES 2097152u   /* bytes one direction moves per wake-up
					     * before other connections get a turn */
#define PROXY_SPLICE_SPARE_PIPES 16u        /* drained pipes kept for reuse; a tunnel
					     * holds a pipe only while bytes are in it */
#define PROXY_NAME_CACHE_SLOTS 256u        /* host names whose resolution is kept
					     * (hash-mapped; a collision replaces) */
#define PROXY_NAME_CACHE_TTL_MS 5000u       /* a resolution is reused this long
					     * (getaddrinfo reports no TTL); every use is
					     * SSRF-checked again */
#define PROXY_MAX_DIAL_ADDRS 16u            /* resolved addresses tried, in order (all
					     * resolved addresses are SSRF-checked) */
#define PROXY_LINGER_MS 2000u               /* after an error response: drain the client
					     * this long at most, then close */
#define PROXY_ACCEPT_BACKOFF_MIN_MS 100u    /* accept pause after EMFILE/ENFILE/ENOBUFS/
					     * ENOMEM, doubling per consecutive error */
#define PROXY_ACCEPT_BACKOFF_MAX_MS 5000u
#define PROXY_LISTEN_BACKLOG 511
#define PROXY_MAX_HEADER_FIELDS 100u        /* request header lines -> 431 beyond */
#define PROXY_MAX_HOST_BYTES 253u           /* request host name -> 400 beyond */
#define PROXY_CHUNK_SIZE_MAX_DIGITS 15u     /* chunk-size hex digits (< 2^60) */
#define PROXY_CHUNK_EXT_MAX_BYTES 1024u     /* chunk extensions per chunk */
#define PROXY_CHUNK_TRAILER_MAX_BYTES 8192u /* trailer section of a chunked body */
/* TLS interception and the HTTP/1.1 relay inside tunnels (proxy/tls*.c,
 * proxy/http_relay*.c). */
#define PROXY_LEAF_CACHE_ENTRIES 1024u      /* minted leaf certificates kept (LRU) */
#define PROXY_L7_MAX_HEAD_BYTES 16384u      /* inspected request head -> 431; response
					     * head beyond it -> connection closed */
#define PROXY_TLS_HANDSHAKE_TIMEOUT_MS 10000u /* client + upstream handshakes -> close */
#define PROXY_TLS_PEEK_TIMEOUT_MS 10000u    /* first client bytes of a tunnel that may
					     * be intercepted -> close */
#define PROXY_MAX_UPSTREAM_CA_FILES 16u     /* --upstream-ca files */
#define PROXY_TLS_SESSION_HOSTS 64u         /* upstream host:port whose TLS sessions
					     * are kept for resumption (LRU) */
#define PROXY_TLS_SESSIONS_PER_HOST 128u    /* sessions kept per host:port, each
					     * offered once: as deep as the
					     * connections to one host that start
					     * together (4 resumed 22 % at c=64) */
#define PROXY_TLS_SESSIONS_MAX 512u         /* sessions kept in all: 1.3 KiB each
					     * (5.5 KiB from a full handshake, which
					     * holds its own parsed certificate); the
					     * least recently used host's oldest goes
					     * first */
#define PROXY_TLS_BUFFER_RELEASE_MS 1000u  /* an intercepted tunnel frees its TLS record
					     * buffers (~34 KiB a side) when it has read
					     * nothing for this long */
#define PROXY_TLS_TICKETS_PER_HANDSHAKE 1u /* TLS 1.3 session tickets sent to a client per
					     * full handshake (OpenSSL's default is 2) */
#define PROXY_TCP_KEEPALIVE_S 60u          /* TCP keepalive idle time on intercepted
					     * tunnels (they have no idle timeout) */
#define PROXY_UPSTREAM_KEEP_MAX 256u       /* idle upstream TLS connections kept for
					     * the next intercepted tunnel to the same
					     * host, port and address (upool.c) */
#define PROXY_UPSTREAM_KEEP_PER_HOST 64u   /* ... of them for one host:port: as many
					     * as a client has connections at once
					     * (at 8, 64 connections at a time found a
					     * kept one for 1 in 8: 1100 vs 1800 req/s) */
#define PROXY_UPSTREAM_KEEP_IDLE_MS 2000u  /* ... each for at most this long: a tunnel
					     * that takes one has 3 s for its first
					     * request before the 5 s keep-alive of
					     * common servers ends it */
#define PROXY_TLS_DIR_DEFAULT "/etc/openshell-tls"
#define PROXY_CA_CERT_FILE "openshell-ca.pem"
#define PROXY_CA_BUNDLE_FILE "ca-bundle.pem"

/* Transparent capture and policy DNS (proxy/transparent.c, proxy/dns*.c). */
#define PROXY_CAPTURE_TCP_PORT 15001u       /* transparent listener, 127.0.0.1 in the
					     * sandbox namespace */
#define PROXY_CAPTURE_DNS_PORT 15053u       /* DNS responder (UDP + TCP), same place */
#define PROXY_CAPTURE_FIRST_BYTE_MS 500u    /* no client byte by then: server-first
					     * protocol, decide by address */
#define PROXY_CAPTURE_PEEK_MS 5000u         /* ClientHello / request head complete
					     * within this, else decide with what came */
#define PROXY_CAPTURE_MAX_PEEKING 1024u     /* captured flows being identified at once */
#define PROXY_DNS_MAX_PENDING 256u          /* DNS lookups in flight -> SERVFAIL beyond */
#define PROXY_DNS_MAX_TCP 64u               /* DNS-over-TCP connections at once */
#define PROXY_DNS_TCP_IDLE_MS 10000u        /* idle DNS-over-TCP connection closed */

/* Upstream (corporate) proxy chaining (proxy/upstream.c). */
#define PROXY_UPSTREAM_HANDSHAKE_TIMEOUT_MS 30000u /* connect + CONNECT reply -> 504 */
#define PROXY_UPSTREAM_MAX_REPLY_HEAD_BYTES 8192u  /* CONNECT reply head -> 502 beyond */
#define PROXY_UPSTREAM_MAX_ADDRS 8u         /* addresses of the proxy's host, tried in order */
#define PROXY_UPSTREAM_MAX_NO_PROXY 64u     /* --upstream-no-proxy entries */
#define PROXY_UPSTREAM_MAX_URL_BYTES 512u   /* --upstream-proxy value */
#define PROXY_UPSTREAM_MAX_LIST_BYTES 4096u /* --upstream-no-proxy value */
#define PROXY_UPSTREAM_MAX_AUTH_BYTES 1024u /* user:pass of the auth file */

/* Reserved names (proxy/reserved.c). The host alias reaches a service on the
 * supervisor's own loopback, only on ports a policy endpoint declares for
 * exactly this name; the tool route is answered by the proxy itself and
 * forwarded to the tool broker. */
#define PROXY_HOST_ALIAS "host.openshell.internal"
#define PROXY_TOOL_HOST_DEFAULT "tools.openshell.internal"
#define PROXY_TOOL_DISCOVERY_PATH "/v1/tools"   /* GET: forwarded whenever the route
					     * is declared */
#define PROXY_TOOL_HEADER_PREFIX "x-openshell-" /* stripped from tool calls */
#define PROXY_TOOL_HEADER_SANDBOX "X-OpenShell-Sandbox-Id"
#define PROXY_TOOL_HEADER_BINARY "X-OpenShell-Caller-Binary"
#define PROXY_TOOL_HEADER_PID "X-OpenShell-Caller-Pid"
#define PROXY_IDENTITY_MAX 4096u            /* caller binary path bytes */

enum proxy_log_level { PROXY_LOG_ERROR = 0, PROXY_LOG_WARN, PROXY_LOG_INFO, PROXY_LOG_DEBUG };

struct proxy_hooks {
	/* One OCSF-shaped JSON object (no trailing newline) per decision. */
	void (*audit)(void *ud, const char *json_line);
	/* Human-readable log line at `level`. */
	void (*log)(void *ud, int level, const char *msg);
	/* The most verbose level `log` takes (enum proxy_log_level): a line
	 * above it is not even formatted, so filtered-out detail costs nothing
	 * per connection. */
	int log_level;
	/* Optional: the process behind a sandbox client socket whose address
	 * (as the proxy sees it) is `peer`. Fills binary (NUL-terminated) and
	 * pid and returns true when found. Called on the loop thread. */
	bool (*identify)(void *ud, const struct sockaddr_storage *peer, char *binary,
			 size_t binary_len, long *pid);
	void *ud;
};

/* Where tool calls go (--tool-broker unix:PATH | http://IP:PORT). */
enum proxy_broker_kind { PROXY_BROKER_NONE = 0, PROXY_BROKER_UNIX, PROXY_BROKER_TCP };
struct proxy_tool_broker {
	enum proxy_broker_kind kind;
	char path[108];                   /* UNIX: socket path (sun_path size) */
	struct sockaddr_storage addr;     /* TCP: address and port */
};

/* Parse a --tool-broker value; 0, or -1 with a message naming the value. */
int proxy_tool_broker_parse(const char *spec, struct proxy_tool_broker *out, char *err,
			    size_t errlen);

struct proxy_config {
	/* Transparent capture: NULL = off. proxy_start() duplicates the fds;
	 * the caller closes its own (proxy_capture_close) whatever it returned.
	 * local_hostname is answered by the DNS responder like `localhost`
	 * (NULL: gethostname()). */
	const struct proxy_capture_fds *capture;
	const char *local_hostname;
	const char *listen_ip;    /* e.g. "10.200.0.1" */
	uint16_t listen_port;     /* e.g. 3128 */
	/* NULL: proxy_start binds listen_ip:listen_port itself. Else a listener
	 * from proxy_listener_open() on listen_ip (the supervisor opens it inside
	 * the sandbox namespace); proxy_start duplicates it, the caller closes
	 * its own whatever proxy_start returned. */
	const int *listen_fd;
	struct proxy_hooks hooks;
	/* TEST ONLY: treat loopback (127.0.0.0/8, ::1) destinations as public
	 * so unit tests can reach an upstream on 127.0.0.1. The supervisor
	 * never sets this. */
	bool test_allow_loopback_upstream;
	/* TLS interception. ca NULL: no termination (a tunnel that needs it is
	 * refused with 503 tls_termination_unavailable). The CA is borrowed and
	 * must outlive the proxy; the proxy updates its leaf cache. */
	struct proxy_ca *ca;
	/* Extra PEM files trusted for upstream TLS, added to the system bundle. */
	const char *const *upstream_ca_files;
	size_t n_upstream_ca_files;
	/* Credential placeholders (proxy/cred.h), borrowed; NULL: none (any
	 * placeholder in an intercepted request is then refused). A host in a
	 * credential's scope is intercepted so the placeholder can be replaced. */
	const struct cred_store *creds;
	/* The tool route: its reserved name (NULL: PROXY_TOOL_HOST_DEFAULT),
	 * the broker (NULL or NONE: tool calls get 503 JSON) and the sandbox id
	 * sent to the broker (NULL: "unknown"). All copied. */
	const char *tool_host;
	const struct proxy_tool_broker *tool_broker;
	const char *sandbox_id;
	/* Upstream (corporate) proxy, borrowed (must outlive the proxy); NULL:
	 * destinations are dialed directly. */
	const struct proxy_upstream *upstream;
};

/* Listening sockets of transparent capture, made by proxy_capture_open()
 * with the calling thread inside the sandbox namespace (run it through
 * netns_run_inside): a socket stays in the namespace it was created in. */
struct proxy_capture_fds {
	int tcp;       /* 127.0.0.1:PROXY_CAPTURE_TCP_PORT, listening */
	int dns_udp;   /* 127.0.0.1:PROXY_CAPTURE_DNS_PORT */
	int dns_tcp;   /* 127.0.0.1:PROXY_CAPTURE_DNS_PORT, listening */
};

/* Returns 0, or -1 with err set and every fd -1. */
int proxy_capture_open(struct proxy_capture_fds *fds, char *err, size_t errlen);
/* Close what is open (fds become -1); for error paths before proxy_start. */
void proxy_capture_close(struct proxy_capture_fds *fds);

/* A listening TCP socket on ip:port (IPv4 or IPv6 literal; port 0: any) in
 * the calling thread's network namespace, non-blocking and close-on-exec,
 * backlog PROXY_LISTEN_BACKLOG. Returns the fd, or -1 with err set. */
int proxy_listener_open(const char *ip, uint16_t port, char *err, size_t errlen);

struct proxy;

/* Create and bind the listener. The policy is borrowed: it must outlive the
 * proxy or be replaced with proxy_set_policy() first. Returns NULL and writes
 * a message into err on failure. */
struct proxy *proxy_start(uv_loop_t *loop, const struct proxy_config *cfg,
			  const struct policy *policy, char *err, size_t errlen);

/* The bound port (useful when listen_port was 0). */
uint16_t proxy_listen_port(const struct proxy *px);

/* Swap the policy used for new decisions (the caller frees the old one
 * right after; no connection keeps a pointer into it). Established raw
 * tunnels, captured raw flows and upgraded (after a 101) intercepted tunnels
 * are re-judged at once: one whose host:port the new policy no longer
 * allows, whose dialed address its allowed_ips no longer admit, or whose
 * endpoint now has L7 rules it cannot honour uninspected, is reset (and
 * audited); the others continue. Intercepted HTTP tunnels end before their
 * next request; flows still resolving or dialing are re-judged when the
 * dial completes. */
void proxy_set_policy(struct proxy *px, const struct policy *policy);

/* Stop listening, close every connection, then call done(arg) once all
 * handles are closed; after that the proxy is freed. */
void proxy_stop(struct proxy *px, void (*done)(void *arg), void *arg);

/* ---- upstream (corporate) proxy (proxy/upstream.c), for the supervisor ---- */

struct proxy_upstream;

struct proxy_upstream_options {
	const char *url;              /* --upstream-proxy http://HOST:PORT */
	const char *no_proxy;         /* --upstream-no-proxy LIST, NULL: none */
	const char *credentials;      /* "user:pass" (not NUL-terminated), NULL: none */
	size_t credentials_len;
	bool connect_by_hostname;     /* CONNECT names the host, not the checked address */
};

/* Parse and validate every setting and resolve the proxy's host (once,
 * now). NULL with a message naming the flag and the value (never the
 * credentials). The caller wipes its copy of the credentials. */
struct proxy_upstream *proxy_upstream_create(const struct proxy_upstream_options *o, char *err,
					     size_t errlen);
/* Wipes the credentials. NULL is fine. */
void proxy_upstream_free(struct proxy_upstream *u);
/* "HOST:PORT" of the upstream proxy, for logs. */
const char *proxy_upstream_name(const struct proxy_upstream *u);
size_t proxy_upstream_address_count(const struct proxy_upstream *u);

/* ---- the sandbox CA (proxy/ca.c) ---- */

/* A fresh ECDSA P-256 CA, in memory. NULL with a message on failure. */
struct proxy_ca *proxy_ca_create(char *err, size_t errlen);
void proxy_ca_free(struct proxy_ca *ca);

/* Write <dir>/openshell-ca.pem (the CA certificate only) and
 * <dir>/ca-bundle.pem (the first non-empty system bundle, a newline if
 * missing, then the CA), mode 0644, dir created 0755 if missing. The CA
 * key is never written. Fills the two paths; 0 or -1 with a message. */
int proxy_ca_write_files(const struct proxy_ca *ca, const char *dir, char *cert_path,
			 size_t cert_len, char *bundle_path, size_t bundle_len, char *err,
			 size_t errlen);

/* ---- credential placeholders (proxy/cred.c), for the supervisor ---- */

/* Load --credentials FILE (format in proxy/cred.h). NULL with a message. */
struct cred_store *proxy_credentials_load(const char *path, char *err, size_t errlen);
void proxy_credentials_free(struct cred_store *s);
size_t proxy_credentials_count(const struct cred_store *s);
/* "NAME=openshell:resolve:env:NAME" for entry i of the child environment;
 * returns the length, 0 when it does not fit. */
size_t proxy_credentials_env_entry(const struct cred_store *s, size_t i, char *out, size_t cap);

/* The well-known system bundle paths (NULL-terminated), in lookup order:
 * the combined bundle is bind-mounted over those that exist. */
const char *const *proxy_system_bundle_paths(void);

/* ---- helpers shared with the supervisor ---- */

/* The IP text of an AF_INET or AF_INET6 address, and its port (host order)
 * unless port is NULL (proxy/target.c). false with ip "" (port 0 for another
 * family) when the family is neither or the text does not fit. */
bool proxy_addr_text(const struct sockaddr_storage *ss, char *ip, size_t iplen,
		     uint16_t *port);

/* Read a small private file (proxy/cred.c): opened following symlinks, then
 * checked on the descriptor: a regular file owned by root, no group/other
 * permission bits, at most max bytes. buf holds max + 1 bytes and gets the
 * contents, NUL-terminated. Returns the length, or -1 with a message naming
 * path (nothing read is left in buf). */
ssize_t proxy_read_private_file(const char *path, char *buf, size_t max, char *err,
				size_t errlen);

/* Building blocks of OCSF audit lines (proxy/audit.c), shared with the
 * supervisor's bypass audit. */
struct json_object;
/* Milliseconds since the epoch; 0 if the clock cannot be read. */
int64_t proxy_audit_now_ms(void);
/* Add v (NULL: JSON null) under k, taking ownership of v even on failure;
 * false on allocation failure. */
bool proxy_json_put(struct json_object *o, const char *k, struct json_object *v);
/* A new empty object stored under k in parent; NULL on failure. */
struct json_object *proxy_json_child(struct json_object *parent, const char *k);
/* A JSON string, or NULL (JSON null) for NULL or "". */
struct json_object *proxy_json_str_or_null(const char *s);

#endif
