/*
 * js_store_mem_apikey.c - the in-memory backend's API keys (js_apikey.h): an array in name
 *			   order under the backend's lock.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/dj_err.h"
#include "store/js_apikey.h"
#include "store/js_store_mem_internal.h"

/* key_find - the index of \p name, or where it would go (*found false) */
static size_t key_find(const struct js_store__mem *m, const char *name, bool *found)
{
	size_t i;

	*found = false;
	for (i = 0; i < m->keys_n; i++) {
		int c = strcmp(m->keys[i].name, name);

		if (c == 0)
			*found = true;
		if (c >= 0)
			break;
	}
	return i;
}

static int mem_key_put(struct js_store *s, const struct js_apikey *k, const char *actor)
{
	struct js_store__mem *m = s->be;
	char detail[JS_AUDIT_DETAIL_MAX];
	bool found;
	size_t i;
	int ret = DJ_EOK;

	pthread_mutex_lock(&m->lock);
	i = key_find(m, k->name, &found);
	if (found) {
		ret = DJ_EEXIST;
		goto out;
	}
	if (m->keys_n == m->keys_cap) {
		size_t cap = m->keys_cap == 0 ? 8 : 2 * m->keys_cap;
		struct js_apikey *v = realloc(m->keys, cap * sizeof(*v));

		if (v == NULL) {
			ret = DJ_ENOMEM;
			goto out;
		}
		m->keys = v;
		m->keys_cap = cap;
	}
	ret = js_store__mem_audit_reserve(m, 1);
	if (ret != DJ_EOK)
		goto out;
	memmove(&m->keys[i + 1], &m->keys[i], (m->keys_n - i) * sizeof(*m->keys));
	m->keys[i] = *k;
	m->keys[i].revoked_at = 0;
	m->keys_n++;
	snprintf(detail, sizeof(detail), "name=%s scope=%s", k->name,
		 js_apikey_scope_name(k->scope));
	ret = js_store__mem_audit_add(s, NULL, JS_APIKEY_CREATE_EVENT, actor, detail);
out:
	pthread_mutex_unlock(&m->lock);
	return ret;
}

static int mem_key_revoke(struct js_store *s, const char *name, int64_t at, const char *actor)
{
	struct js_store__mem *m = s->be;
	char detail[JS_AUDIT_DETAIL_MAX];
	bool found;
	size_t i;
	int ret;

	pthread_mutex_lock(&m->lock);
	i = key_find(m, name, &found);
	if (!found || m->keys[i].revoked_at != 0) {
		ret = DJ_ENOENT;
		goto out;
	}
	ret = js_store__mem_audit_reserve(m, 1);
	if (ret != DJ_EOK)
		goto out;
	m->keys[i].revoked_at = at > 0 ? at : 1;
	snprintf(detail, sizeof(detail), "name=%s", name);
	ret = js_store__mem_audit_add(s, NULL, JS_APIKEY_REVOKE_EVENT, actor, detail);
out:
	pthread_mutex_unlock(&m->lock);
	return ret;
}

/* mem_key_foreach - each key copied under the lock, cb run unlocked */
static int mem_key_foreach(struct js_store *s, int (*cb)(const struct js_apikey *k, void *arg),
			   void *arg)
{
	struct js_store__mem *m = s->be;
	struct js_apikey k;
	int ret = DJ_EOK;

	for (size_t i = 0; ret == DJ_EOK; i++) {
		bool have;

		pthread_mutex_lock(&m->lock);
		have = i < m->keys_n;
		if (have)
			k = m->keys[i];
		pthread_mutex_unlock(&m->lock);
		if (!have)
			break;
		ret = cb(&k, arg);
	}
	return ret;
}

const struct js_store_apikey_ops js_store__mem_apikey_ops = {
	.put = mem_key_put,
	.revoke = mem_key_revoke,
	.foreach = mem_key_foreach,
};
