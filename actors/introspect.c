/* introspect.c — what an actor looks like from outside: tr_actor_info_get
 * for one, tr_actor_dump (a jansson array) for all.
 *
 * Everything is read under the actor's slot lock, one actor at a time, so
 * a dump is a consistent picture of each actor but not a snapshot of all
 * of them at one instant (that would stop the world).  JSON is built after
 * the lock is dropped: jansson allocates.
 */
#include "internal.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

/* Fills *out from the slot s (locked by the caller). */
static void fill_locked(tr__slot *s, tr_actor_info *out) {
    memset(out, 0, sizeof *out);
    const tr_actor_type *t = atomic_load_explicit(&s->type, memory_order_relaxed);
    out->type = t && t->name ? t->name : "";
    out->calling = TR_ACTOR_NONE;
    tr__actor *a = s->a;
    if (!a) {
        out->state = TR_ACTOR_DEAD;
        out->reason = s->reason;
        if (s->reason_text)
            snprintf(out->reason_text, sizeof out->reason_text, "%s", s->reason_text);
        return;
    }
    tr__ext *x = a->ext;
    if (x && x->name)
        snprintf(out->name, sizeof out->name, "%s", x->name);
    switch (a->life) {
    case TR__LIFE_INIT:
    case TR__LIFE_ALIVE:
        out->state = a->sched == TR__SCHED_IDLE ? TR_ACTOR_IDLE : TR_ACTOR_RUNNING;
        break;
    case TR__LIFE_LIMBO:
        out->state = TR_ACTOR_DEAD; /* between incarnations: the supervisor decides */
        break;
    default:
        out->state = TR_ACTOR_STOPPING;
        break;
    }
    out->queued = atomic_load_explicit(&a->queued, memory_order_relaxed);
    out->high_water = a->high_water;
    out->handled = a->handled;
    out->dropped = a->dropped;
    out->restarts = x ? x->restarts : 0;
    out->reason = a->end_reason;
    if (a->run) {
        uint64_t c = atomic_load_explicit(&a->run->calling, memory_order_relaxed);
        if (c)
            out->calling = tr__ref_unpack(c);
    }
    if (x)
        snprintf(out->reason_text, sizeof out->reason_text, "%s", x->reason_text);
}

int tr_actor_info_get(tr_actor_ref ref, tr_actor_info *out) {
    if (!out || tr_actor_ref_is_none(ref))
        return TR_EINVAL;
    tr__slot *s = tr__slot_lock(ref);
    if (!s)
        return TR_EDOWN;
    fill_locked(s, out);
    tr_spin_unlock(&s->lock);
    return 0;
}

static const char *state_name(int st) {
    switch (st) {
    case TR_ACTOR_IDLE: return "idle";
    case TR_ACTOR_RUNNING: return "running";
    case TR_ACTOR_STOPPING: return "stopping";
    default: return "dead";
    }
}

static json_t *ref_json(tr_actor_ref r) {
    char buf[32];
    snprintf(buf, sizeof buf, "%u.%u", r.slot, r.gen);
    return json_string(buf);
}

json_t *tr_actor_dump(void) {
    json_t *arr = json_array();
    if (!arr)
        return NULL;
    uint32_t n = tr__slot_count();
    for (uint32_t i = 1; i < n; i++) {
        tr__slot *s = tr__slot_get(i);
        if (!s)
            continue;
        tr_actor_info info;
        tr_actor_ref ref;
        tr_spin_lock(&s->lock);
        bool live = s->a != NULL;
        if (live) {
            fill_locked(s, &info);
            ref = tr__ref_of(s->a);
        }
        tr_spin_unlock(&s->lock);
        if (!live)
            continue;
        json_t *o = json_pack("{s:o, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I}",
                              "ref", ref_json(ref), "type", info.type, "name", info.name,
                              "state", state_name(info.state), "queued", (json_int_t)info.queued,
                              "high_water", (json_int_t)info.high_water,
                              "handled", (json_int_t)info.handled,
                              "dropped", (json_int_t)info.dropped,
                              "restarts", (json_int_t)info.restarts);
        if (!o) {
            json_decref(arr);
            return NULL;
        }
        json_t *calling = tr_actor_ref_is_none(info.calling) ? json_null() : ref_json(info.calling);
        if (json_object_set_new(o, "calling", calling) != 0) { /* _new steals, even on failure */
            json_decref(o);
            json_decref(arr);
            return NULL;
        }
        if (json_array_append_new(arr, o) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}
