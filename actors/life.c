/* life.c — what others (and the actor itself) do to an actor's life: stop,
 * kill, wait for the end, exit, fail, and "who am I".
 *
 * Stop and wait park on the actor's waiter queue (in its extension block)
 * with tr_wait's protocol under the slot lock; the ending activation
 * claims them and writes the reason into their frames before waking them.
 * A stop waits for the end of the current incarnation (clause 1), a wait
 * for the actor's death (clause 0): with a supervisor's end hook the two
 * differ (LIMBO).
 */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

/* Removes a waiter entry after a timeout or cancellation: if it is still
 * linked, the actor holding the slot is still the one it was pushed to
 * (a death claims every waiter). */
static void unpark(tr_actor_ref ref, tr_wait *e) {
    tr__slot *s = tr__slot_get(ref.slot);
    tr_spin_lock(&s->lock);
    if (e->linked)
        tr_waitq_remove(&s->a->ext->waiters, e);
    tr_spin_unlock(&s->lock);
}

static bool is_self(tr_actor_ref ref) {
    tr__run *r = tr__self();
    return r && tr_actor_ref_eq(tr__ref_of(r->a), ref);
}

int tr_actor_stop(tr_actor_ref ref, int reason, int64_t deadline) {
    if (tr_actor_ref_is_none(ref))
        return TR_EINVAL;
    if (is_self(ref))
        return TR_EDEADLK;
    int rc = tr_wait_enter();
    if (rc)
        return rc;
    tr__actor *a = tr__actor_lock(ref);
    if (!a)
        return TR_EDOWN;
    tr__slot *s = a->slot;
    if (a->life == TR__LIFE_LIMBO) { /* the incarnation has ended already */
        tr_spin_unlock(&s->lock);
        return 0;
    }
    tr__ext *x = tr__ext_get(a);
    if (!x) {
        tr_spin_unlock(&s->lock);
        return TR_ENOMEM;
    }
    tr__spill sp = {0};
    bool spawn = false;
    if (a->life == TR__LIFE_ALIVE || a->life == TR__LIFE_INIT) {
        a->life = TR__LIFE_STOPPING;
        a->end_reason = reason;
        tr__senders_refuse_locked(a, &sp); /* not accepted: they get TR_EDOWN */
        spawn = tr__want_activation_locked(a);
    }
    int got = 0;
    tr_waiter w;
    tr_wait e;
    tr_waiter_init(&w);
    tr_wait_init(&e, &w, &got);
    e.clause = 1;
    tr_waitq_push(&x->waiters, &e);
    const tr_actor_type *t = a->type;
    tr_spin_unlock(&s->lock);
    tr__spill_finish(t, &sp);
    if (spawn)
        tr__activate_or_end(a); /* SCHEDULED by us: a cannot go away before its activation */
    rc = tr_waiter_park(&w, NULL, deadline);
    if (rc == 0)
        return 0;
    unpark(ref, &e);
    if (rc == TR_ETIMEDOUT) {
        tr_actor_kill(ref);
        return TR_ETIMEDOUT;
    }
    return rc;
}

int tr_actor_kill(tr_actor_ref ref) {
    if (tr_actor_ref_is_none(ref))
        return TR_EINVAL;
    tr__actor *a = tr__actor_lock(ref);
    if (!a)
        return TR_EDOWN;
    tr__spill sp = {0};
    bool spawn = tr__kill_locked(a, TR_ACTOR_KILLED, &sp);
    const tr_actor_type *t = a->type;
    tr_spin_unlock(&a->slot->lock);
    tr__spill_finish(t, &sp);
    if (spawn)
        tr__activate_or_end(a);
    return 0;
}

/* tr_actor_kill, and the task running the actor's code killed too (see
 * kill_end in actor.c for how the incarnation then ends).  Only an
 * activation's task is killed: an init running inline runs on its
 * spawner's (or restarter's) task, and an end run inline (end_inline) on
 * whoever triggered it; killing those would kill somebody else, so there
 * this is tr_actor_kill alone (the init's or terminate's waits are
 * cancelled; the incarnation ends when they return). */
int tr__actor_kill_hard(tr_actor_ref ref) {
    if (tr_actor_ref_is_none(ref))
        return TR_EINVAL;
    tr__actor *a = tr__actor_lock(ref);
    if (!a)
        return TR_EDOWN;
    tr__spill sp = {0};
    bool spawn = tr__kill_locked(a, TR_ACTOR_KILLED, &sp);
    /* Only while the actor's code runs (a handler, on_down/on_exit,
     * terminate): an activation in its own loop sees the kill under this
     * lock and ends the incarnation itself, terminate included. */
    tr__run *r = a->run;
    tr_task *victim = r && r->task && __atomic_load_n(&r->phase, __ATOMIC_RELAXED) !=
                                          TR__PHASE_NONE ? r->task : NULL;
    tr_task *self = tr_task_self();
    /* Under the lock: the activation cannot finish (and free its detached
     * task) before it has cleared a->run, which takes this lock.  Killing
     * another task never waits nor switches. */
    if (victim && victim != self)
        tr_task_kill(victim);
    const tr_actor_type *t = a->type;
    tr_spin_unlock(&a->slot->lock);
    tr__spill_finish(t, &sp);
    if (spawn)
        tr__activate_or_end(a);
    if (victim && victim == self)
        tr_task_kill(self); /* an actor killing itself hard: does not return */
    return 0;
}

/* Parks on the actor's waiter queue until its death (clause 0) or the end
 * of its current incarnation (clause 1: LIMBO, for a hooked actor, or its
 * death); *reason gets why.  The caller has checked ref and self. */
static int wait_end(tr_actor_ref ref, int *reason, int64_t deadline, int clause) {
    int rc = tr_wait_enter();
    if (rc)
        return rc;
    tr__slot *s = tr__slot_lock(ref);
    if (!s)
        return TR_EDOWN;
    tr__actor *a = s->a;
    if (!a || (clause == 1 && a->life == TR__LIFE_LIMBO)) {
        /* Dead: the slot keeps the reason.  LIMBO: the reason of a stop or
         * kill if that is what ended it (the end hook got the exact one). */
        int r = a ? a->end_reason : s->reason;
        tr_spin_unlock(&s->lock);
        if (reason)
            *reason = r;
        return 0;
    }
    tr__ext *x = tr__ext_get(a);
    if (!x) {
        tr_spin_unlock(&s->lock);
        return TR_ENOMEM;
    }
    int got = 0;
    tr_waiter w;
    tr_wait e;
    tr_waiter_init(&w);
    tr_wait_init(&e, &w, &got);
    e.clause = clause;
    tr_waitq_push(&x->waiters, &e);
    rc = tr_waiter_park(&w, &s->lock, deadline);
    if (rc != 0) {
        unpark(ref, &e);
        return rc;
    }
    if (reason)
        *reason = got;
    return 0;
}

int tr_actor_wait(tr_actor_ref ref, int *reason, int64_t deadline) {
    if (tr_actor_ref_is_none(ref))
        return TR_EINVAL;
    if (is_self(ref))
        return TR_EDEADLK;
    return wait_end(ref, reason, deadline, 0);
}

int tr__actor_await_end(tr_actor_ref ref, int *reason, int64_t deadline) {
    if (tr_actor_ref_is_none(ref))
        return TR_EDOWN;
    if (is_self(ref))
        return TR_EDEADLK;
    return wait_end(ref, reason, deadline, 1);
}

void tr_actor_exit(int reason) {
    tr__run *r = tr__self();
    if (!r || (r->phase != TR__PHASE_HANDLE && r->phase != TR__PHASE_SYS))
        return;
    r->exit_set = true;
    r->exit_reason = reason;
}

void tr_actor_fail(int reason, const char *fmt, ...) {
    char text[128];
    text[0] = 0;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(text, sizeof text, fmt, ap);
        va_end(ap);
    }
    tr__run *r = tr__self();
    if (!r || r->phase == TR__PHASE_NONE) {
        /* No handler to abandon: a programming error, said loudly. */
        fprintf(stderr, "troupe: tr_actor_fail(%d, \"%s\") outside an actor's code\n", reason,
                text);
        abort();
    }
    tr__actor *a = r->a;
    tr_spin_lock(&a->slot->lock);
    tr__ext *x = tr__ext_get(a);
    if (x)
        snprintf(x->reason_text, sizeof x->reason_text, "%s", text);
    tr_spin_unlock(&a->slot->lock);
    r->fail_reason = reason;
    _longjmp(r->jb, 1);
}

tr_actor_ref tr_actor_self(void) {
    tr__run *r = tr__self();
    return r ? tr__ref_of(r->a) : TR_ACTOR_NONE;
}

size_t tr__actors_kill_all(tr_runtime *rt) {
    size_t killed = 0;
    uint32_t n = tr__slot_count();
    for (uint32_t i = 1; i < n; i++) {
        tr__slot *s = tr__slot_get(i);
        if (!s)
            continue;
        tr_spin_lock(&s->lock);
        tr_actor_ref ref = {i, s->gen};
        bool mine = s->a && s->a->rt == rt;
        tr_spin_unlock(&s->lock);
        if (mine && tr_actor_kill(ref) == 0)
            killed++;
    }
    return killed;
}
