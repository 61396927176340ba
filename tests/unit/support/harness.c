/* harness.c - see harness.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "tests/unit/support/harness.h"

struct policy *tu_policy_load(const char *yaml)
{
	struct policy_errors errs = { 0 };
	struct policy *p = policy_load_buffer(yaml, strlen(yaml), "<test>", &errs);
	if (p == NULL) {
		for (size_t i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.msgs[i]);
		fail_msg("test policy refused: %s", errs.n > 0 ? errs.msgs[0] : "no message");
	}
	policy_errors_free(&errs);
	return p;
}

struct policy *tu_rest_policy(uint16_t port, const char *fields)
{
	char yaml[1024];
	snprintf(yaml, sizeof(yaml),
		 "version: 1\nnetwork_policies:\n  l7:\n    endpoints:\n"
		 "      - { host: 127.0.0.1, port: %u, protocol: rest, enforcement: enforce, %s }\n",
		 (unsigned)port, fields);
	return tu_policy_load(yaml);
}

void tu_log_hook(void *ud, int level, const char *msg)
{
	if (getenv("PROXY_TEST_VERBOSE") != NULL)
		fprintf(stderr, "[proxy %d] %s\n", level, msg);
}

void tu_audit_hook(void *ud, const char *line)
{
	struct tu_proxy_thread *t = ud;
	pthread_mutex_lock(&t->mu);
	size_t n = strlen(line);
	if (t->audit_len + n + 2 < sizeof(t->audit)) {
		memcpy(t->audit + t->audit_len, line, n);
		t->audit_len += n;
		t->audit[t->audit_len++] = '\n';
		t->audit[t->audit_len] = '\0';
	}
	pthread_mutex_unlock(&t->mu);
}

static void on_proxy_done(void *arg)
{
	struct tu_proxy_thread *t = arg;
	t->stopped++;
}

static void on_stop_async(uv_async_t *a)
{
	struct tu_proxy_thread *t = a->data;
	for (size_t i = 0; i < t->n_px; i++)
		proxy_stop(t->px[i], on_proxy_done, t);
	uv_close((uv_handle_t *)a, NULL);
	uv_close((uv_handle_t *)&t->call_async, NULL);
}

static void on_call_async(uv_async_t *a)
{
	struct tu_proxy_thread *t = a->data;
	proxy_set_policy(t->call_px, t->call_policy);
	uv_sem_post(&t->call_done);
}

static void *loop_main(void *arg)
{
	struct tu_proxy_thread *t = arg;
	uv_run(&t->loop, UV_RUN_DEFAULT);
	return NULL;
}

void tu_pt_init(struct tu_proxy_thread *t)
{
	pthread_mutex_init(&t->mu, NULL);
	assert_int_equal(uv_loop_init(&t->loop), 0);
}

struct proxy *tu_pt_start(struct tu_proxy_thread *t, const struct proxy_config *cfg,
			  const struct policy *policy)
{
	assert_true(t->n_px < TU_MAX_PROXIES);
	char err[256];
	struct proxy *px = proxy_start(&t->loop, cfg, policy, err, sizeof(err));
	if (px == NULL)
		fail_msg("proxy_start: %s", err);
	t->px[t->n_px++] = px;
	return px;
}

void tu_pt_run(struct tu_proxy_thread *t)
{
	assert_int_equal(uv_async_init(&t->loop, &t->stop_async, on_stop_async), 0);
	t->stop_async.data = t;
	assert_int_equal(uv_async_init(&t->loop, &t->call_async, on_call_async), 0);
	t->call_async.data = t;
	assert_int_equal(uv_sem_init(&t->call_done, 0), 0);
	assert_int_equal(pthread_create(&t->thread, NULL, loop_main, t), 0);
}

void tu_pt_stop(struct tu_proxy_thread *t)
{
	uv_async_send(&t->stop_async);
	pthread_join(t->thread, NULL);
	assert_int_equal(t->stopped, t->n_px);
	assert_int_equal(uv_loop_close(&t->loop), 0); /* every handle closed */
	uv_sem_destroy(&t->call_done);
	pthread_mutex_destroy(&t->mu);
}

void tu_pt_set_policy(struct tu_proxy_thread *t, struct proxy *px, const struct policy *policy)
{
	t->call_px = px;
	t->call_policy = policy;
	assert_int_equal(uv_async_send(&t->call_async), 0);
	uv_sem_wait(&t->call_done);
}

bool tu_pt_audit_has(struct tu_proxy_thread *t, const char *needle)
{
	pthread_mutex_lock(&t->mu);
	bool found = strstr(t->audit, needle) != NULL;
	pthread_mutex_unlock(&t->mu);
	return found;
}
