/* sup_dump.c — tr_sup_dump's body: a supervisor's tree as JSON, built on
 * the supervisor's own task (a DUMP request, sup_ops.c) so that it reads
 * its records without a lock.  A nested supervisor is asked in turn with a
 * call (its records are its own); one that does not answer by the deadline
 * shows as "supervisor": null rather than failing the whole dump.  Actor
 * numbers (queued, handled) come from tr_actor_info_get, as in
 * tr_actor_dump (introspect.c), whose "slot.gen" ref form this reuses.
 */
#include "sup_internal.h"

#include <jansson.h>
#include <stdio.h>

static const char *const strategy_names[] = {"one_for_one", "one_for_all", "rest_for_one",
                                             "simple_one_for_one"};
static const char *const restart_names[] = {"permanent", "transient", "temporary"};
static const char *const state_names[] = {"running", "restarting", "terminated"};

static json_t *ref_json(tr_actor_ref r) {
    if (tr_actor_ref_is_none(r))
        return json_null();
    char buf[32];
    snprintf(buf, sizeof buf, "%u.%u", r.slot, r.gen);
    return json_string(buf);
}

/* Adds key = v to o (v stolen); false on failure. */
static bool put(json_t *o, const char *key, json_t *v) {
    return v && json_object_set_new(o, key, v) == 0;
}

static json_t *child_json(tr__sup *c, tr__child *k, int64_t deadline) {
    (void)c;
    json_t *o = json_object();
    if (!o)
        return NULL;
    tr_actor_ref ref = k->live ? k->ref : TR_ACTOR_NONE;
    int st = k->live ? TR_CHILD_RUNNING
                     : k->state == TR_CHILD_RUNNING ? TR_CHILD_RESTARTING : k->state;
    tr_actor_info info = {0};
    bool have = !tr_actor_ref_is_none(k->ref) && tr_actor_info_get(k->ref, &info) == 0;
    json_t *times = json_array();
    uint32_t nt = k->ntimes < TR__SUP_TIMES ? k->ntimes : TR__SUP_TIMES;
    for (uint32_t i = 0; times && i < nt; i++) /* oldest first, newest last */
        json_array_append_new(times,
                              json_integer(k->times[(k->ntimes - nt + i) % TR__SUP_TIMES]));
    bool ok = put(o, "id", json_string(k->cs->id ? k->cs->id : "")) &&
              put(o, "type", json_string(tr__sup_is_sup(k) ? "supervisor"
                                         : k->cs->type->name ? k->cs->type->name : "")) &&
              put(o, "ref", ref_json(ref)) && put(o, "state", json_string(state_names[st])) &&
              put(o, "restart", json_string(restart_names[k->cs->restart])) &&
              put(o, "significant", json_boolean(k->cs->significant)) &&
              put(o, "restarts", json_integer(k->restarts)) &&
              put(o, "restart_times_ms", times) &&
              put(o, "last_reason", json_integer(k->last_reason)) &&
              put(o, "queued", json_integer(have ? (json_int_t)info.queued : 0)) &&
              put(o, "handled", json_integer(have ? (json_int_t)info.handled : 0));
    if (ok && tr__sup_is_sup(k)) {
        json_t *sub = k->live ? tr_sup_dump(k->ref, deadline) : NULL;
        ok = put(o, "supervisor", sub ? sub : json_null());
    }
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *tr__sup_dump_core(tr__sup *c, int64_t deadline) {
    tr_actor_info info = {0};
    tr_actor_info_get(c->self, &info);
    int st = TR_SUP_RUNNING;
    tr_watch_ref wr;
    if (tr_watch_tx_borrow(c->node->tx, &wr) == 0) {
        st = *(const int *)wr.value;
        tr_watch_ref_release(&wr);
    }
    json_t *o = json_object();
    json_t *kids = json_array();
    bool ok = o && kids && put(o, "ref", ref_json(c->self)) &&
              put(o, "name", json_string(info.name)) &&
              put(o, "strategy", json_string(strategy_names[c->strategy])) &&
              put(o, "state", json_string(st == TR_SUP_STOPPING ? "stopping" : "running")) &&
              put(o, "intensity", json_integer(c->intensity)) &&
              put(o, "period_ms", json_integer(c->period_ms)) &&
              put(o, "restarts", json_integer((json_int_t)c->restarts));
    for (size_t i = 0; ok && i < c->n; i++) {
        json_t *k = child_json(c, c->kids[i], deadline);
        ok = k && json_array_append_new(kids, k) == 0;
    }
    if (ok) {
        ok = put(o, "children", kids);
        kids = NULL;
    }
    json_decref(kids);
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}
