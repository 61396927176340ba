/* bypass.c - the bypass audit: every packet the sandbox's fence rejects
 * becomes one audit line (OCSF Network Activity, action deny, type "bypass")
 * naming the destination, the protocol, the sending process where it can be
 * found, and what would allow such traffic.
 *
 * Two limiters: the fence's nft rule (NETNS_LOG_RATE/BURST) decides which
 * packets reach the listener at all; here at most SUP_BYPASS_PER_WINDOW
 * events per SUP_BYPASS_WINDOW_MS are written (and looked up), the rest are
 * counted into one "suppressed" summary line when the window ends.
 */
#include <json-c/json.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "proxy/proxy.h"
#include "supervisor/sup.h"

#define BYPASS_EXE_MAX 4096
#define BYPASS_HINT_MAX 320
#define BYPASS_DNS_PORT 53

enum {
	OCSF_CLASS_NETWORK_ACTIVITY = 4001,
	OCSF_ACTIVITY_REFUSE = 5,
	OCSF_SEVERITY_MEDIUM = 3,
	OCSF_ACTION_DENIED = 2,
	OCSF_DISPOSITION_BLOCKED = 2,
};

/* One event as written: the packet plus who sent it. */
struct bypass_record {
	const struct netns_bypass_event *ev;
	char src_ip[INET6_ADDRSTRLEN], dst_ip[INET6_ADDRSTRLEN];
	uint16_t src_port, dst_port;  /* host order, 0 without ports */
	pid_t pid;                    /* -1: not found */
	char exe[BYPASS_EXE_MAX];     /* "": unknown */
	char hint[BYPASS_HINT_MAX];
};

static void addr_text(const struct sockaddr_storage *ss, char *buf, size_t len, uint16_t *port)
{
	if (!proxy_addr_text(ss, buf, len, port))
		snprintf(buf, len, "?");
}

static bool is_capture_port(const struct bypass_record *r)
{
	return r->ev->ipproto == IPPROTO_TCP && r->ev->family == AF_INET &&
	       strcmp(r->dst_ip, "127.0.0.1") == 0 &&
	       (r->dst_port == PROXY_CAPTURE_TCP_PORT || r->dst_port == PROXY_CAPTURE_DNS_PORT);
}

/* What would allow traffic like this, if anything. */
static void make_hint(struct bypass_record *r)
{
	size_t n = sizeof r->hint;
	switch (r->ev->ipproto) {
	case IPPROTO_TCP:
		if (is_capture_port(r))
			snprintf(r->hint, n, "127.0.0.1:%u is the sandbox's capture listener and "
				 "takes only redirected connections: connect to the real "
				 "destination or through the proxy", (unsigned)r->dst_port);
		else
			snprintf(r->hint, n, "TCP leaves the sandbox only through the proxy "
				 "(HTTPS_PROXY/HTTP_PROXY, IPv4): a policy endpoint with the "
				 "host name and port %u allows it", (unsigned)r->dst_port);
		return;
	case IPPROTO_UDP:
		if (r->dst_port == BYPASS_DNS_PORT)
			snprintf(r->hint, n, "DNS is answered only by the sandbox's resolver "
				 "(IPv4, as /etc/resolv.conf says); no policy allows other "
				 "DNS servers");
		else
			snprintf(r->hint, n, "UDP is not proxied: no policy can allow it; use TCP "
				 "through the proxy");
		return;
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		snprintf(r->hint, n, "ICMP is not allowed from the sandbox; no policy can "
			 "allow it");
		return;
	default:
		snprintf(r->hint, n, "IP protocol %u is not allowed from the sandbox; only "
			 "TCP through the proxy leaves it", (unsigned)r->ev->ipproto);
		return;
	}
}

static void fill_record(struct sup_ctx *ctx, const struct netns_bypass_event *ev,
			struct bypass_record *r)
{
	memset(r, 0, sizeof *r);
	r->ev = ev;
	r->pid = -1;
	addr_text(&ev->src, r->src_ip, sizeof r->src_ip, &r->src_port);
	addr_text(&ev->dst, r->dst_ip, sizeof r->dst_ip, &r->dst_port);
	if (ev->has_ports && !ctx->workload_exited &&
	    sup_peer_lookup(ctx->workload_pid, ev->ipproto, &ev->src, &r->pid, r->exe,
			    sizeof r->exe) != 0)
		r->pid = -1;
	make_hint(r);
}

static json_object *port_or_null(const struct bypass_record *r, uint16_t port)
{
	return r->ev->has_ports ? json_object_new_int(port) : NULL;
}

static bool put_endpoints(json_object *root, const struct bypass_record *r)
{
	const struct netns_bypass_event *ev = r->ev;
	json_object *conn = proxy_json_child(root, "connection_info");
	json_object *dst = proxy_json_child(root, "dst_endpoint");
	json_object *src = proxy_json_child(root, "src_endpoint");
	json_object *proc = proxy_json_child(root, "process");
	return conn != NULL && dst != NULL && src != NULL && proc != NULL &&
	       proxy_json_put(conn, "protocol_name",
			      json_object_new_string(netns_bypass_proto_name(ev->ipproto))) &&
	       proxy_json_put(conn, "protocol_num", json_object_new_int(ev->ipproto)) &&
	       proxy_json_put(conn, "protocol_ver_id",
			      json_object_new_int(ev->family == AF_INET ? 4 : 6)) &&
	       proxy_json_put(dst, "hostname", NULL) &&
	       proxy_json_put(dst, "ip", json_object_new_string(r->dst_ip)) &&
	       proxy_json_put(dst, "port", port_or_null(r, r->dst_port)) &&
	       proxy_json_put(src, "ip", json_object_new_string(r->src_ip)) &&
	       proxy_json_put(src, "port", port_or_null(r, r->src_port)) &&
	       proxy_json_put(proc, "pid", r->pid > 0 ? json_object_new_int(r->pid) : NULL) &&
	       proxy_json_put(proc, "path", proxy_json_str_or_null(r->exe)) &&
	       proxy_json_put(proc, "uid",
			      ev->has_uid ? json_object_new_int64(ev->uid) : NULL);
}

/* The common head of both line kinds: class, time, deny. */
static json_object *event_new(const char *type, const char *message)
{
	json_object *root = json_object_new_object();
	if (root == NULL)
		return NULL;
	bool ok = proxy_json_put(root, "class_uid",
				 json_object_new_int(OCSF_CLASS_NETWORK_ACTIVITY)) &&
		  proxy_json_put(root, "class_name", json_object_new_string("Network Activity")) &&
		  proxy_json_put(root, "activity_id", json_object_new_int(OCSF_ACTIVITY_REFUSE)) &&
		  proxy_json_put(root, "activity_name", json_object_new_string("Refuse")) &&
		  proxy_json_put(root, "time", json_object_new_int64(proxy_audit_now_ms())) &&
		  proxy_json_put(root, "severity_id", json_object_new_int(OCSF_SEVERITY_MEDIUM)) &&
		  proxy_json_put(root, "severity", json_object_new_string("Medium")) &&
		  proxy_json_put(root, "action_id", json_object_new_int(OCSF_ACTION_DENIED)) &&
		  proxy_json_put(root, "action", json_object_new_string("deny")) &&
		  proxy_json_put(root, "disposition_id",
				 json_object_new_int(OCSF_DISPOSITION_BLOCKED)) &&
		  proxy_json_put(root, "disposition", json_object_new_string("Blocked")) &&
		  proxy_json_put(root, "type", json_object_new_string(type)) &&
		  proxy_json_put(root, "path", json_object_new_string("fence")) &&
		  proxy_json_put(root, "message", json_object_new_string(message));
	if (!ok) {
		json_object_put(root);
		return NULL;
	}
	return root;
}

/* Write root as one audit line and free it. */
static void emit(struct sup_ctx *ctx, json_object *root)
{
	const char *s = root != NULL ? json_object_to_json_string_ext(
		root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE) : NULL;
	if (s != NULL)
		sup_audit_line(ctx, s);
	else
		sup_log(ctx, LOG_ERROR, "bypass audit: out of memory building an event");
	json_object_put(root);
}

static void who_text(const struct bypass_record *r, char *buf, size_t len)
{
	char uid[24] = "uid ?";
	if (r->ev->has_uid)
		snprintf(uid, sizeof uid, "uid %u", (unsigned)r->ev->uid);
	if (r->pid > 0)
		snprintf(buf, len, "%s (pid %d, %s)", r->exe[0] ? r->exe : "?", (int)r->pid, uid);
	else
		snprintf(buf, len, "an unknown process (%s)", uid);
}

static void write_event(struct sup_ctx *ctx, const struct netns_bypass_event *ev)
{
	struct bypass_record r;
	fill_record(ctx, ev, &r);
	char who[BYPASS_EXE_MAX + 64], dst[INET6_ADDRSTRLEN + 16], msg[BYPASS_EXE_MAX + 256];
	who_text(&r, who, sizeof who);
	if (ev->has_ports)
		snprintf(dst, sizeof dst, ev->family == AF_INET ? "%s:%u" : "[%s]:%u", r.dst_ip,
			 (unsigned)r.dst_port);
	else
		snprintf(dst, sizeof dst, "%s", r.dst_ip);
	snprintf(msg, sizeof msg, "bypass: %s to %s from %s rejected by the fence",
		 netns_bypass_proto_name(ev->ipproto), dst, who);
	sup_log(ctx, LOG_INFO, "%s; %s", msg, r.hint);
	json_object *root = event_new("bypass", msg);
	if (root != NULL && (!proxy_json_put(root, "hint", json_object_new_string(r.hint)) ||
			     !put_endpoints(root, &r))) {
		json_object_put(root);
		root = NULL;
	}
	emit(ctx, root);
}

/* The end of a window: one line for everything not written in it. */
static void write_summary(struct sup_ctx *ctx)
{
	unsigned long suppressed = ctx->bypass_suppressed, lost = ctx->bypass_lost;
	if (suppressed == 0 && lost == 0)
		return;
	ctx->bypass_suppressed = ctx->bypass_lost = 0;
	char msg[320], lost_text[64] = "";
	if (lost > 0)
		snprintf(lost_text, sizeof lost_text, "; %lu more could not be read", lost);
	/* Beyond the fence's own limit packets are rejected without a report. */
	snprintf(msg, sizeof msg, "bypass: suppressed %lu events over the limit of %d per %u ms%s "
		 "(the fence reports at most %d per second, burst %d)", suppressed,
		 SUP_BYPASS_PER_WINDOW, SUP_BYPASS_WINDOW_MS, lost_text, NETNS_LOG_RATE,
		 NETNS_LOG_BURST);
	sup_log(ctx, LOG_WARN, "%s", msg);
	json_object *root = event_new("bypass_suppressed", msg);
	if (root != NULL &&
	    (!proxy_json_put(root, "suppressed", json_object_new_int64((int64_t)suppressed)) ||
	     !proxy_json_put(root, "lost", json_object_new_int64((int64_t)lost)) ||
	     !proxy_json_put(root, "limit", json_object_new_int(SUP_BYPASS_PER_WINDOW)) ||
	     !proxy_json_put(root, "window_ms", json_object_new_int(SUP_BYPASS_WINDOW_MS)))) {
		json_object_put(root);
		root = NULL;
	}
	emit(ctx, root);
}

static void on_window_end(uv_timer_t *t)
{
	write_summary(t->data);
}

/* Start a new window if the current one is over; returns true if ev may be
 * written in it. */
static bool admit(struct sup_ctx *ctx)
{
	uint64_t now = uv_now(&ctx->loop);
	if (now - ctx->bypass_window_start >= SUP_BYPASS_WINDOW_MS) {
		write_summary(ctx); /* the old window's, before anything of the new */
		if (ctx->bypass_handles)
			uv_timer_stop(&ctx->bypass_timer);
		ctx->bypass_window_start = now;
		ctx->bypass_in_window = 0;
	}
	if (ctx->bypass_in_window < SUP_BYPASS_PER_WINDOW) {
		ctx->bypass_in_window++;
		return true;
	}
	if (ctx->bypass_suppressed++ == 0 && ctx->bypass_handles) {
		uint64_t left = ctx->bypass_window_start + SUP_BYPASS_WINDOW_MS - now;
		if (uv_timer_start(&ctx->bypass_timer, on_window_end, left, 0) != 0)
			sup_log(ctx, LOG_WARN, "bypass audit: cannot start the window timer");
	}
	return false;
}

static void on_event(void *ud, const struct netns_bypass_event *ev)
{
	struct sup_ctx *ctx = ud;
	if (admit(ctx))
		write_event(ctx, ev);
}

static void drain(struct sup_ctx *ctx)
{
	unsigned long lost = 0;
	if (netns_bypass_read(ctx->bypass, on_event, ctx, &lost) < 0)
		sup_log(ctx, LOG_WARN, "bypass audit: reading the listener failed");
	ctx->bypass_lost += lost;
}

static void on_readable(uv_poll_t *h, int status, int events)
{
	struct sup_ctx *ctx = h->data;
	if (status < 0) {
		sup_log(ctx, LOG_WARN, "bypass audit: poll: %s", uv_strerror(status));
		return;
	}
	drain(ctx);
}

static void close_handles(struct sup_ctx *ctx)
{
	if (!ctx->bypass_handles)
		return;
	ctx->bypass_handles = false;
	uv_close((uv_handle_t *)&ctx->bypass_poll, NULL);
	uv_close((uv_handle_t *)&ctx->bypass_timer, NULL);
}

int sup_bypass_start(struct sup_ctx *ctx)
{
	char err[256] = "";
	ctx->bypass = netns_bypass_open(&ctx->ns, err, sizeof err);
	if (ctx->bypass == NULL) {
		sup_log(ctx, LOG_ERROR, "bypass audit: %s", err);
		return -1;
	}
	if (uv_poll_init(&ctx->loop, &ctx->bypass_poll, netns_bypass_fd(ctx->bypass)) != 0) {
		sup_log(ctx, LOG_ERROR, "bypass audit: cannot watch the listener");
		return -1;
	}
	if (uv_timer_init(&ctx->loop, &ctx->bypass_timer) != 0) {
		uv_close((uv_handle_t *)&ctx->bypass_poll, NULL);
		sup_log(ctx, LOG_ERROR, "bypass audit: cannot create the window timer");
		return -1;
	}
	ctx->bypass_poll.data = ctx->bypass_timer.data = ctx;
	ctx->bypass_handles = true;
	ctx->bypass_window_start = uv_now(&ctx->loop);
	if (uv_poll_start(&ctx->bypass_poll, UV_READABLE, on_readable) != 0) {
		sup_log(ctx, LOG_ERROR, "bypass audit: cannot watch the listener");
		close_handles(ctx);
		return -1;
	}
	return 0;
}

void sup_bypass_stop(struct sup_ctx *ctx)
{
	if (ctx->bypass == NULL)
		return;
	drain(ctx); /* what the last moments of the run sent */
	write_summary(ctx);
	close_handles(ctx);
}

void sup_bypass_free(struct sup_ctx *ctx)
{
	netns_bypass_close(ctx->bypass); /* after its poll handle closed */
	ctx->bypass = NULL;
}
