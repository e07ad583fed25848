/* sup_hooks.c — the supervisor's side of the actor layer's hooks: the end
 * hook itself, tr__actor_end_ctx (declared in internal.h; it lives here so
 * that actor.c stays the actor layer's, while tr__actor_await_end shares
 * tr_actor_wait's code in life.c), and a few small operations on an
 * actor's internals that only the supervisor needs (a stop request that
 * does not wait, detaching a hook).  Each works under the actor's slot
 * lock, like life.c does.
 */
#include "sup_internal.h"

#include <stdio.h>
#include <stdlib.h>

/* ---- the end hook ------------------------------------------------------------ */

void tr__sup_hook(tr_actor_ref ref, int reason, void *ctx) {
    tr__child *k = ctx;
    tr__sysnode *sn = k->note; /* the supervisor reuses it only after hook_calls moves */
    k->note = NULL;
    k->hook_reason = reason;
    bool spawn = false;
    tr__actor *sa = NULL;
    if (sn) {
        sn->kind = TR__SYS_DOWN;
        sn->reason = reason;
        sn->who = ref;
        sn->id = 0;
        sa = tr__actor_lock(k->sup_ref);
        if (sa) {
            /* Ending for good (not hooked) or killed: its terminate collects
             * the children itself, nobody would read the note. */
            bool live = sa->life != TR__LIFE_KILLED &&
                        !(sa->life == TR__LIFE_ENDING && !(sa->ext && sa->ext->hooked_end));
            if (live && sa->ext) {
                spawn = tr__sys_push_locked(sa, sn);
                sn = NULL;
            }
            tr_spin_unlock(&sa->slot->lock);
        }
        free(sn);
    }
    /* Last: from here on the record may be reused or freed. */
    atomic_fetch_add_explicit(&k->hook_calls, 1, memory_order_release);
    if (spawn)
        tr__activate(sa); /* SCHEDULED by us: it cannot go away before that */
}

/* ---- hooks declared in internal.h ---------------------------------------------- */

void *tr__actor_end_ctx(tr_actor_ref ref) {
    tr__actor *a = tr__actor_lock(ref);
    if (!a)
        return NULL;
    void *ctx = a->ext && a->ext->on_end ? a->ext->on_end_ctx : NULL;
    tr_spin_unlock(&a->slot->lock);
    return ctx;
}

/* ---- small operations ---------------------------------------------------------- */

int tr__sup_stop_request(tr_actor_ref ref, int reason) {
    tr__actor *a = tr__actor_lock(ref);
    if (!a)
        return TR_EDOWN;
    tr__slot *s = a->slot;
    tr__spill sp = {0};
    bool spawn = false;
    if (a->life == TR__LIFE_ALIVE || a->life == TR__LIFE_INIT) {
        a->life = TR__LIFE_STOPPING;
        a->end_reason = reason;
        tr__senders_refuse_locked(a, &sp);
        spawn = tr__want_activation_locked(a);
    }
    const tr_actor_type *t = a->type;
    tr_spin_unlock(&s->lock);
    tr__spill_finish(t, &sp);
    if (spawn)
        tr__activate_or_end(a);
    return 0;
}

int tr__sup_detach(tr_actor_ref ref, bool *limbo) {
    *limbo = false;
    tr__actor *a = tr__actor_lock(ref);
    if (!a)
        return TR_EDOWN;
    *limbo = a->life == TR__LIFE_LIMBO;
    if (a->ext) {
        a->ext->on_end = NULL;
        a->ext->on_end_ctx = NULL;
    }
    tr_spin_unlock(&a->slot->lock);
    return 0;
}

int tr__sup_ensure_ext(tr_actor_ref self) {
    tr__actor *a = tr__actor_lock(self);
    if (!a)
        return TR_EDOWN;
    tr__ext *x = tr__ext_get(a);
    tr_spin_unlock(&a->slot->lock);
    return x ? 0 : TR_ENOMEM;
}

void tr__sup_reason_text(tr_actor_ref self, const char *text) {
    tr__actor *a = tr__actor_lock(self);
    if (!a)
        return;
    if (a->ext)
        snprintf(a->ext->reason_text, sizeof a->ext->reason_text, "%s", text);
    tr_spin_unlock(&a->slot->lock);
}

bool tr__sup_self_stopping(tr_actor_ref self) {
    tr__actor *a = tr__actor_lock(self);
    if (!a)
        return true;
    bool st = a->life == TR__LIFE_STOPPING || a->life == TR__LIFE_KILLED ||
              a->life == TR__LIFE_ENDING;
    tr_spin_unlock(&a->slot->lock);
    return st;
}

tr_runtime *tr__sup_runtime(tr_actor_ref self) {
    tr__actor *a = tr__actor_lock(self);
    if (!a)
        return NULL;
    tr_runtime *rt = a->rt;
    tr_spin_unlock(&a->slot->lock);
    return rt;
}
