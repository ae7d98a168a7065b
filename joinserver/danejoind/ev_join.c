/*
 * ev_join.c - the MQTT events of an answered join (ev_join.h): encoded for the outbox, AppSKeys
 * only wrapped under an application server's KEK, every node wiped when freed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "bi/bi_kek.h"
#include "common/dj_err.h"
#include "common/dj_log.h"
#include "engine/js_engine.h"
#include "ev_join.h"

/* One event of a list, with the strings its audit entry points to. */
struct ev_node {
	struct js_event ev;		/* first: a struct js_event * is a struct ev_node * */
	char actor[JS_AUDIT_ACTOR_MAX];
	char detail[JS_AUDIT_DETAIL_MAX];
	uint8_t body[JS_EVENT_BODY_MAX];
};

void ev_list_free(struct js_event *list)
{
	while (list != NULL) {
		struct ev_node *n = (struct ev_node *)list;

		list = (struct js_event *)(uintptr_t)list->next;
		OPENSSL_clear_free(n, sizeof(*n));
	}
}

int ev_join_events(const struct ev_join *j, const struct ev_as_target *targets, unsigned n,
		   const struct lw_key *app_s_key, struct js_event **out)
{
	struct js_event *head = NULL, **tail = &head;
	struct ev_node *nd;
	struct bi_key_envelope env;
	struct ev_appskey a;
	size_t len;
	int ret = DJ_ENOMEM;

	memset(&env, 0, sizeof(env));
	nd = OPENSSL_zalloc(sizeof(*nd));
	if (nd == NULL)
		goto out;
	*tail = &nd->ev;
	tail = (struct js_event **)(uintptr_t)&nd->ev.next;
	ret = ev_encode_join(j, nd->body, sizeof(nd->body), &len);
	if (ret != DJ_EOK)
		goto out;
	nd->ev.body = nd->body;
	nd->ev.len = (uint32_t)len;
	if (!j->accepted || app_s_key == NULL)
		goto done;
	for (unsigned i = 0; i < n && i + 1 < JS_COMMIT_EVENTS_MAX; i++) {
		ret = DJ_ENOMEM;
		nd = OPENSSL_zalloc(sizeof(*nd));
		if (nd == NULL)
			goto out;
		*tail = &nd->ev;
		tail = (struct js_event **)(uintptr_t)&nd->ev.next;
		ret = bi_kek_envelope(targets[i].kek, app_s_key, &env);
		if (ret != DJ_EOK)
			goto out;
		memset(&a, 0, sizeof(a));
		memcpy(a.dev_eui, j->dev_eui, LW_EUI_LEN);
		memcpy(a.join_eui, j->join_eui, LW_EUI_LEN);
		a.as_id = targets[i].as_id;
		a.session_id = j->session_id;
		a.session_id_len = j->session_id_len;
		a.env = &env;
		a.time_ms = j->time_ms;
		ret = ev_encode_appskey(&a, nd->body, sizeof(nd->body), &len);
		OPENSSL_cleanse(&env, sizeof(env));
		if (ret != DJ_EOK)
			goto out;
		nd->ev.body = nd->body;
		nd->ev.len = (uint32_t)len;
		snprintf(nd->actor, sizeof(nd->actor), "%s", targets[i].identity);
		js_release_detail(nd->detail, j->session_id, j->session_id_len,
				  bi_kek_label(targets[i].kek), "mqtt");
		nd->ev.audit_event = "appskey-release";
		nd->ev.audit_actor = nd->actor;
		nd->ev.audit_detail = nd->detail;
	}
done:
	*out = head;
	head = NULL;
	ret = DJ_EOK;
out:
	OPENSSL_cleanse(&env, sizeof(env));
	ev_list_free(head);
	return ret;
}

/* An events-only commit that frees itself. */
struct ev_rec {
	struct js_commit c;
	struct js_event *list;
};

/* rec_done - committer: the refused join's event is in the outbox (or was lost: logged) */
static void rec_done(struct js_commit *c, void *arg)
{
	struct ev_rec *r = arg;

	if (c->result != DJ_EOK)
		dj_warn("mqtt: writing an event to the outbox failed: %s", dj_strerror(c->result));
	ev_list_free(r->list);
	free(r);
}

void ev_record(struct js_store *store, const uint8_t dev_eui[LW_EUI_LEN], struct js_event *list)
{
	struct ev_rec *r = calloc(1, sizeof(*r));

	if (r == NULL) {
		dj_warn("mqtt: out of memory: an event is lost");
		ev_list_free(list);
		return;
	}
	r->list = list;
	r->c.kind = JS_COMMIT_EVENTS;
	memcpy(r->c.dev_eui, dev_eui, LW_EUI_LEN);
	r->c.events = list;
	r->c.done = rec_done;
	r->c.done_arg = r;
	if (js_store_submit(store, &r->c) != DJ_EOK) {
		dj_warn("mqtt: the store refused an event (shutting down?): it is lost");
		ev_list_free(list);
		free(r);
	}
}
