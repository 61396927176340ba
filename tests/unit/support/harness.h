/* harness.h - what the proxy unit tests share: a policy from YAML text, a
 * proxy (or two) running on a uv loop in a second thread with its audit
 * lines collected, and assert_contains. Include after <cmocka.h>.
 *
 * The loop thread runs the proxies; the test thread is the client, with
 * blocking sockets (net.h). Proxy calls are not thread-safe: a policy swap
 * goes through tu_pt_set_policy, which runs it on the loop thread. */
#ifndef TESTS_UNIT_SUPPORT_HARNESS_H
#define TESTS_UNIT_SUPPORT_HARNESS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <uv.h>

#include "policy/policy.h"
#include "proxy/proxy.h"

#define assert_contains(s, needle) \
	do { \
		if (strstr((s), (needle)) == NULL) \
			fail_msg("expected %s in: %.800s", (needle), (s)); \
	} while (0)

/* Loads and validates yaml (named "<test>"); on errors prints them all and
 * fails the test. */
struct policy *tu_policy_load(const char *yaml);
/* One enforcing rest endpoint for 127.0.0.1:port with `fields` (flow-mapping
 * text, e.g. "access: full") added to it. */
struct policy *tu_rest_policy(uint16_t port, const char *fields);

#define TU_MAX_PROXIES 2

struct tu_proxy_thread {
	uv_loop_t loop;
	uv_async_t stop_async;
	uv_async_t call_async;       /* proxy_set_policy(call_px, call_policy) */
	struct proxy *call_px;
	const struct policy *call_policy;
	uv_sem_t call_done;
	pthread_t thread;
	struct proxy *px[TU_MAX_PROXIES];
	size_t n_px;
	int stopped;                 /* proxies whose proxy_stop completed */
	pthread_mutex_t mu;          /* audit, audit_len */
	char audit[1 << 16];         /* every audit line, '\n'-terminated */
	size_t audit_len;
};

/* proxy_hooks for a proxy on t: .ud = t. tu_log_hook prints the line when
 * PROXY_TEST_VERBOSE is set; tu_audit_hook appends it to t->audit. */
void tu_log_hook(void *ud, int level, const char *msg);
void tu_audit_hook(void *ud, const char *line);

/* Initialises t (zeroed by the caller) and its loop. */
void tu_pt_init(struct tu_proxy_thread *t);

/* proxy_start on t's loop, before tu_pt_run; fails the test on error. */
struct proxy *tu_pt_start(struct tu_proxy_thread *t, const struct proxy_config *cfg,
			  const struct policy *policy);

/* Starts the loop thread. */
void tu_pt_run(struct tu_proxy_thread *t);

/* Stops every proxy and the loop thread; asserts that every proxy finished
 * stopping and that the loop closed every handle. */
void tu_pt_stop(struct tu_proxy_thread *t);

/* proxy_set_policy(px, policy) on the loop thread, as a reload does; waits
 * until it has run. */
void tu_pt_set_policy(struct tu_proxy_thread *t, struct proxy *px, const struct policy *policy);

/* Whether an audit line so far contains needle. */
bool tu_pt_audit_has(struct tu_proxy_thread *t, const char *needle);

#endif
