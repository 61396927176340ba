/* tls_sessions.c - upstream TLS sessions kept for resumption. */
#include "proxy/tls_sessions.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static bool make_key(char *key, size_t len, const char *host, unsigned port)
{
	int n = snprintf(key, len, "%s:%u", host, port);
	return n > 0 && (size_t)n < len;
}

static struct tls_session_slot *find_slot(struct tls_sessions *c, const char *key)
{
	for (size_t i = 0; i < PROXY_TLS_SESSION_HOSTS; i++)
		if (c->slot[i].key[0] != '\0' && strcmp(c->slot[i].key, key) == 0)
			return &c->slot[i];
	return NULL;
}

static void slot_clear(struct tls_session_slot *s)
{
	for (unsigned i = 0; i < s->n; i++)
		SSL_SESSION_free(s->sess[i]);
	memset(s, 0, sizeof(*s));
}

static void drop_oldest(struct tls_session_slot *s)
{
	SSL_SESSION_free(s->sess[0]);
	memmove(&s->sess[0], &s->sess[1], (s->n - 1) * sizeof(s->sess[0]));
	s->sess[--s->n] = NULL;
}

unsigned tls_sessions_count(const struct tls_sessions *c)
{
	unsigned n = 0;
	for (size_t i = 0; i < PROXY_TLS_SESSION_HOSTS; i++)
		n += c->slot[i].n;
	return n;
}

/* At the overall cap: the least recently used host that has a session
 * gives up its oldest. */
static void make_room_overall(struct tls_sessions *c)
{
	if (tls_sessions_count(c) < PROXY_TLS_SESSIONS_MAX)
		return;
	struct tls_session_slot *lru = NULL;
	for (size_t i = 0; i < PROXY_TLS_SESSION_HOSTS; i++)
		if (c->slot[i].n > 0 && (lru == NULL || c->slot[i].used < lru->used))
			lru = &c->slot[i];
	if (lru != NULL)
		drop_oldest(lru);
}

static bool expired(const SSL_SESSION *sess, time_t now)
{
	return SSL_SESSION_get_time(sess) + SSL_SESSION_get_timeout(sess) <= now;
}

SSL_SESSION *tls_sessions_take(struct tls_sessions *c, const char *host, unsigned port)
{
	char key[sizeof(c->slot[0].key)];
	if (!make_key(key, sizeof(key), host, port))
		return NULL;
	struct tls_session_slot *s = find_slot(c, key);
	time_t now = time(NULL);
	while (s != NULL && s->n > 0) {
		SSL_SESSION *sess = s->sess[--s->n];
		s->sess[s->n] = NULL;
		if (!expired(sess, now)) {
			s->used = ++c->clock;
			return sess;
		}
		SSL_SESSION_free(sess);
	}
	return NULL;
}

static struct tls_session_slot *claim_slot(struct tls_sessions *c, const char *key)
{
	struct tls_session_slot *s = find_slot(c, key);
	if (s != NULL)
		return s;
	s = &c->slot[0];
	for (size_t i = 0; i < PROXY_TLS_SESSION_HOSTS; i++) {
		if (c->slot[i].key[0] == '\0') {
			s = &c->slot[i];
			break;
		}
		if (c->slot[i].used < s->used)
			s = &c->slot[i];
	}
	slot_clear(s);
	snprintf(s->key, sizeof(s->key), "%s", key);
	return s;
}

void tls_sessions_put(struct tls_sessions *c, const char *host, unsigned port,
		      SSL_SESSION *sess)
{
	char key[sizeof(c->slot[0].key)];
	if (sess == NULL)
		return;
	if (!SSL_SESSION_is_resumable(sess) || expired(sess, time(NULL)) ||
	    !make_key(key, sizeof(key), host, port)) {
		SSL_SESSION_free(sess);
		return;
	}
	struct tls_session_slot *s = claim_slot(c, key);
	if (s->n == PROXY_TLS_SESSIONS_PER_HOST)
		drop_oldest(s);
	else
		make_room_overall(c);
	s->sess[s->n++] = sess;
	s->used = ++c->clock;
}

void tls_sessions_clear(struct tls_sessions *c)
{
	for (size_t i = 0; i < PROXY_TLS_SESSION_HOSTS; i++)
		slot_clear(&c->slot[i]);
}
