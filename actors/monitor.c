/* monitor.c — monitors (one-way DOWN notifications) and links (two-way
 * exit signals), Erlang's two ways of hearing that an actor ended.
 *
 * Both are kept on the watched side only where possible: a monitor lives
 * in the target's list (the watcher learns through its system lane), so
 * monitoring costs the watcher nothing; a link lives in both actors'
 * lists (either end may die first).  Lists are small arrays in the
 * extension block, grown by doubling.  They fire at the actor's death,
 * not at the end of an incarnation a supervisor will restart (a ref stays
 * valid across restarts, so nothing has died for the watcher).
 *
 * A monitor id packs the target's slot (upper 32 bits) with a process-wide
 * sequence number, so demonitor finds the target's list without a table
 * of its own.
 */
#include "internal.h"

#include <stdlib.h>

static atomic_uint mon_seq = 1;

static bool grow(void **arr, uint32_t *cap, uint32_t n, size_t elem) {
    if (n < *cap)
        return true;
    uint32_t ncap = *cap ? *cap * 2 : 2;
    void *p = realloc(*arr, (size_t)ncap * elem);
    if (!p)
        return false;
    *arr = p;
    *cap = ncap;
    return true;
}

int tr_actor_monitor(tr_actor_ref watcher, tr_actor_ref target, uint64_t *id) {
    if (id)
        *id = 0;
    if (tr_actor_ref_is_none(watcher) || tr_actor_ref_is_none(target) ||
        tr_actor_ref_eq(watcher, target))
        return TR_EINVAL;
    tr__actor *w = tr__actor_lock(watcher);
    if (!w)
        return TR_EDOWN;
    tr_spin_unlock(&w->slot->lock);
    uint32_t seq = atomic_fetch_add_explicit(&mon_seq, 1, memory_order_relaxed);
    if (seq == 0)
        seq = atomic_fetch_add_explicit(&mon_seq, 1, memory_order_relaxed);
    uint64_t mid = ((uint64_t)target.slot << 32) | seq;
    tr__actor *a = tr__actor_lock(target);
    if (a) {
        tr__ext *x = tr__ext_get(a);
        if (!x || !grow((void **)&x->mons, &x->capmons, x->nmons, sizeof(tr__mon))) {
            tr_spin_unlock(&a->slot->lock);
            return TR_ENOMEM;
        }
        x->mons[x->nmons].watcher = watcher;
        x->mons[x->nmons].id = mid;
        x->nmons++;
        tr_spin_unlock(&a->slot->lock);
    } else {
        tr__sys_post(watcher, TR__SYS_DOWN, target, TR_EDOWN, mid); /* gone already */
    }
    if (id)
        *id = mid;
    return 0;
}

/* Takes a queued DOWN with id out of the watcher's system lane. */
static bool flush_down(tr_actor_ref watcher, uint64_t id) {
    tr__actor *w = tr__actor_lock(watcher);
    if (!w)
        return false;
    tr__sysnode *found = NULL;
    tr__ext *x = w->ext;
    if (x) {
        tr__sysnode *prev = NULL;
        for (tr__sysnode *sn = x->sys_head; sn; prev = sn, sn = sn->next) {
            if (sn->kind != TR__SYS_DOWN || sn->id != id)
                continue;
            if (prev)
                prev->next = sn->next;
            else
                x->sys_head = sn->next;
            if (x->sys_tail == sn)
                x->sys_tail = prev;
            w->has_sys = x->sys_head != NULL;
            found = sn;
            break;
        }
    }
    tr_spin_unlock(&w->slot->lock);
    free(found);
    return found != NULL;
}

int tr_actor_demonitor(tr_actor_ref watcher, uint64_t id) {
    if (tr_actor_ref_is_none(watcher) || id == 0)
        return TR_EINVAL;
    bool found = false;
    tr__slot *s = tr__slot_get((uint32_t)(id >> 32));
    if (s) {
        tr_spin_lock(&s->lock);
        tr__ext *x = s->a ? s->a->ext : NULL;
        for (uint32_t i = 0; x && i < x->nmons; i++) {
            if (x->mons[i].id == id && tr_actor_ref_eq(x->mons[i].watcher, watcher)) {
                x->mons[i] = x->mons[--x->nmons];
                found = true;
                break;
            }
        }
        tr_spin_unlock(&s->lock);
    }
    if (!found)
        found = flush_down(watcher, id);
    return found ? 0 : TR_EINVAL;
}

/* ---- links ------------------------------------------------------------------------------ */

/* Locks the slots of a and b (lower index first; once if they share one),
 * returned in sa and sb for unlock2, and gives their live actors (NULL for
 * a gone one). */
static void lock2(tr_actor_ref ra, tr_actor_ref rb, tr__slot **sa, tr__slot **sb,
                  tr__actor **A, tr__actor **B) {
    *sa = tr__slot_get(ra.slot);
    *sb = tr__slot_get(rb.slot);
    tr__slot *first = *sa, *second = *sb;
    if (ra.slot > rb.slot) {
        first = *sb;
        second = *sa;
    }
    if (first)
        tr_spin_lock(&first->lock);
    if (second && second != first)
        tr_spin_lock(&second->lock);
    *A = *sa && (*sa)->gen == ra.gen ? (*sa)->a : NULL;
    *B = *sb && (*sb)->gen == rb.gen ? (*sb)->a : NULL;
}

static void unlock2(tr__slot *sa, tr__slot *sb) {
    if (sa)
        tr_spin_unlock(&sa->lock);
    if (sb && sb != sa)
        tr_spin_unlock(&sb->lock);
}

static bool has_link(const tr__ext *x, tr_actor_ref r) {
    for (uint32_t i = 0; i < x->nlinks; i++)
        if (tr_actor_ref_eq(x->links[i], r))
            return true;
    return false;
}

static bool add_link(tr__ext *x, tr_actor_ref r) {
    if (has_link(x, r))
        return true;
    if (!grow((void **)&x->links, &x->caplinks, x->nlinks, sizeof(tr_actor_ref)))
        return false;
    x->links[x->nlinks++] = r;
    return true;
}

static void remove_link(tr__ext *x, tr_actor_ref r) {
    for (uint32_t i = 0; x && i < x->nlinks; i++) {
        if (tr_actor_ref_eq(x->links[i], r)) {
            x->links[i] = x->links[--x->nlinks];
            return;
        }
    }
}

int tr_actor_link(tr_actor_ref a, tr_actor_ref b) {
    if (tr_actor_ref_is_none(a) || tr_actor_ref_is_none(b) || tr_actor_ref_eq(a, b))
        return TR_EINVAL;
    tr__slot *sa, *sb;
    tr__actor *A, *B;
    lock2(a, b, &sa, &sb, &A, &B);
    if (A && B) {
        tr__ext *xa = tr__ext_get(A), *xb = tr__ext_get(B);
        bool ok = xa && xb && add_link(xa, b);
        if (ok && !add_link(xb, a)) {
            remove_link(xa, b);
            ok = false;
        }
        unlock2(sa, sb);
        return ok ? 0 : TR_ENOMEM;
    }
    unlock2(sa, sb);
    /* One (or both) gone: the live one hears of it at once. */
    if (A)
        tr__exit_signal(a, b, TR_EDOWN);
    if (B)
        tr__exit_signal(b, a, TR_EDOWN);
    return TR_EDOWN;
}

int tr_actor_unlink(tr_actor_ref a, tr_actor_ref b) {
    if (tr_actor_ref_is_none(a) || tr_actor_ref_is_none(b) || tr_actor_ref_eq(a, b))
        return TR_EINVAL;
    tr__slot *sa, *sb;
    tr__actor *A, *B;
    lock2(a, b, &sa, &sb, &A, &B);
    if (A)
        remove_link(A->ext, b);
    if (B)
        remove_link(B->ext, a);
    unlock2(sa, sb);
    return A || B ? 0 : TR_EDOWN;
}

void tr__exit_signal(tr_actor_ref to, tr_actor_ref from, int reason) {
    tr__actor *a = tr__actor_lock(to);
    if (!a)
        return;
    if (a->type->on_exit) { /* traps exits: a system message */
        tr_spin_unlock(&a->slot->lock);
        tr__sys_post(to, TR__SYS_EXIT, from, reason, 0);
        return;
    }
    /* Does not trap: ends as if killed (a waiting handler is cancelled). */
    tr__spill sp = {0};
    bool spawn = tr__kill_locked(a, TR_ACTOR_LINKED, &sp);
    const tr_actor_type *t = a->type;
    tr_spin_unlock(&a->slot->lock);
    tr__spill_finish(t, &sp);
    if (spawn)
        tr__activate_or_end(a);
}

void tr__notify_death(tr_actor_ref me, int reason, tr__mon *mons, uint32_t nmons,
                      tr_actor_ref *links, uint32_t nlinks) {
    for (uint32_t i = 0; i < nmons; i++)
        tr__sys_post(mons[i].watcher, TR__SYS_DOWN, me, reason, mons[i].id);
    free(mons);
    bool abnormal = tr_actor_reason_abnormal(reason);
    for (uint32_t i = 0; i < nlinks; i++) {
        tr__actor *l = tr__actor_lock(links[i]);
        if (!l)
            continue;
        remove_link(l->ext, me);
        tr_spin_unlock(&l->slot->lock);
        if (abnormal)
            tr__exit_signal(links[i], me, reason);
    }
    free(links);
}
