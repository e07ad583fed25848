/* mutex.c — a FIFO, owner-aware mutex on troupe's wait queue.
 *
 * The whole fast path is the owner word: 0 when free, else the owner's id
 * (its tr_task pointer, or the address of a per-thread tag for a plain
 * thread; both even) with bit 0, CONTENDED, meaning "the queue may hold
 * waiters: unlock through the slow path".  Locking a free mutex is
 * CAS(0 -> me); unlocking an uncontended one is CAS(me -> 0).  Knowing the
 * owner costs nothing more and buys TR_EDEADLK and TR_EPERM.
 *
 * Who may change the word: the fast paths only CAS from 0 or from a bare
 * owner id; everything else (setting CONTENDED before queueing, handing
 * the lock to a waiter, clearing CONTENDED when the last waiter leaves)
 * happens under the spin lock.  So once CONTENDED is set the word is
 * stable under the spin lock, and the owner's unlock, finding its CAS
 * refused, takes the spin lock and hands over: it claims the oldest
 * waiter that can still be claimed and stores that waiter's id (it travels
 * in e->data) as the new owner before waking it.  That is the no-barging
 * rule: the lock is never free between the two owners.
 *
 * The debug registry (TR_DEBUG) is a plain list under a pthread mutex:
 * only debug builds pay for it, on every lock and unlock.
 */
#include "config.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>

#include "tr_mutex.h"

#define CONTENDED ((uintptr_t)1)
#define OWNER(s) ((s) & ~CONTENDED)

/* initial-exec: read on every lock by a plain thread, no __tls_get_addr. */
static __thread __attribute__((tls_model("initial-exec"))) long thread_tag;

static inline uintptr_t self_id(void) {
    tr_task *t = tr_task_self();
    return t ? (uintptr_t)t : (uintptr_t)&thread_tag;
}

uintptr_t tr__lock_owner_self(void) { return self_id(); }

/* ---- the debug registry ------------------------------------------------------------ */

#ifdef TR_DEBUG
static pthread_mutex_t dbg_mu = PTHREAD_MUTEX_INITIALIZER;
static tr_lock_debug *dbg_head;

/* Every task's end is checked: a task that returns holding a troupe lock
 * is a bug that would otherwise show up later as a hang. */
static void report_at_exit(tr_task *t) { tr_lock_debug_report(t); }

__attribute__((constructor)) static void install_exit_hook(void) {
    tr__set_task_exit_hook(report_at_exit);
}
#endif

void tr__lock_debug_hold(tr_lock_debug *d, const void *lock, uintptr_t owner) {
#ifdef TR_DEBUG
    pthread_mutex_lock(&dbg_mu);
    d->lock = lock;
    d->owner = owner;
    if (!d->listed) {
        d->prev = NULL;
        d->next = dbg_head;
        if (dbg_head)
            dbg_head->prev = d;
        dbg_head = d;
        d->listed = true;
    }
    pthread_mutex_unlock(&dbg_mu);
#else
    (void)d;
    (void)lock;
    (void)owner;
#endif
}

void tr__lock_debug_drop(tr_lock_debug *d) {
#ifdef TR_DEBUG
    pthread_mutex_lock(&dbg_mu);
    if (d->listed) {
        if (d->prev)
            d->prev->next = d->next;
        else
            dbg_head = d->next;
        if (d->next)
            d->next->prev = d->prev;
        d->next = d->prev = NULL;
        d->listed = false;
    }
    d->owner = 0;
    pthread_mutex_unlock(&dbg_mu);
#else
    (void)d;
#endif
}

int tr_lock_debug_report(const tr_task *t) {
#ifdef TR_DEBUG
    uintptr_t who = t ? (uintptr_t)t : self_id();
    const tr_task *task = t ? t : tr_task_self();
    int count = 0;
    pthread_mutex_lock(&dbg_mu);
    for (tr_lock_debug *d = dbg_head; d; d = d->next) {
        if (d->owner != who)
            continue;
        count++;
        const char *name = d->name ? d->name : "";
        if (task)
            fprintf(stderr, "troupe: task %" PRIu64 " \"%s\" still holds %s \"%s\" (%p)\n",
                    tr_task_id(task), tr_task_name(task), d->kind, name, d->lock);
        else
            fprintf(stderr, "troupe: a plain thread still holds %s \"%s\" (%p)\n", d->kind,
                    name, d->lock);
    }
    pthread_mutex_unlock(&dbg_mu);
    return count;
#else
    (void)t;
    return 0;
#endif
}

static inline void debug_hold(tr_mutex *m, uintptr_t me) {
#ifdef TR_DEBUG
    tr__lock_debug_hold(&m->dbg, m, me);
#else
    (void)m;
    (void)me;
#endif
}

/* ---- lifecycle --------------------------------------------------------------------- */

int tr_mutex_init(tr_mutex *m) {
    if (!m)
        return TR_EINVAL;
    atomic_init(&m->state, 0);
    tr_spin_init(&m->lock);
    tr_waitq_init(&m->waiters);
    m->dbg = (tr_lock_debug){NULL, NULL, NULL, "mutex", m, 0, false};
    return 0;
}

int tr_mutex_destroy(tr_mutex *m) {
    if (!m)
        return TR_EINVAL;
    tr_spin_lock(&m->lock);
    bool busy = atomic_load_explicit(&m->state, memory_order_acquire) != 0 ||
                !tr_waitq_empty(&m->waiters);
    tr_spin_unlock(&m->lock);
    return busy ? TR_EBUSY : 0;
}

int tr_mutex_set_name(tr_mutex *m, const char *name) {
    if (!m)
        return TR_EINVAL;
    m->dbg.name = name;
    return 0;
}

const char *tr_mutex_name(const tr_mutex *m) { return m && m->dbg.name ? m->dbg.name : ""; }

bool tr_mutex_is_locked(const tr_mutex *m) {
    return m && atomic_load_explicit((_Atomic uintptr_t *)&m->state, memory_order_acquire) != 0;
}

bool tr_mutex_is_held(const tr_mutex *m) {
    return m && OWNER(atomic_load_explicit((_Atomic uintptr_t *)&m->state,
                                           memory_order_acquire)) == self_id();
}

/* ---- locking ------------------------------------------------------------------------- */

/* Lock held.  Takes m if free (1), refuses a relock (TR_EDEADLK), or sets
 * CONTENDED so that the owner's unlock will come for the queue (0). */
static int try_or_mark_locked(tr_mutex *m, uintptr_t me) {
    uintptr_t s = atomic_load_explicit(&m->state, memory_order_relaxed);
    for (;;) {
        if (s == 0) {
            if (atomic_compare_exchange_weak_explicit(&m->state, &s, me, memory_order_acquire,
                                                      memory_order_relaxed))
                return 1;
            continue;
        }
        if (OWNER(s) == me)
            return TR_EDEADLK;
        if ((s & CONTENDED) ||
            atomic_compare_exchange_weak_explicit(&m->state, &s, s | CONTENDED,
                                                  memory_order_relaxed, memory_order_relaxed))
            return 0;
    }
}

/* Unlinks e if still queued; the last waiter out clears CONTENDED, so
 * the owner's next unlock is the one-CAS kind again. */
static void mutex_leave(tr_mutex *m, tr_wait *e) {
    tr_spin_lock(&m->lock);
    if (e->linked) {
        tr_waitq_remove(&m->waiters, e);
        if (tr_waitq_empty(&m->waiters))
            atomic_fetch_and_explicit(&m->state, ~CONTENDED, memory_order_relaxed);
    }
    tr_spin_unlock(&m->lock);
}

/* noinline: keeps the fast path's frame small (no saved registers). */
__attribute__((noinline)) static int lock_slow(tr_mutex *m, uintptr_t me, int64_t deadline) {
    tr_waiter w;
    tr_wait e;
    tr_waiter_init(&w);
    tr_wait_init(&e, &w, (void *)me);
    tr_spin_lock(&m->lock);
    int rc = try_or_mark_locked(m, me);
    if (rc != 0) {
        tr_spin_unlock(&m->lock);
        if (rc == 1) {
            debug_hold(m, me);
            return 0;
        }
        return rc;
    }
    tr_waitq_push(&m->waiters, &e);
    rc = tr_waiter_park(&w, &m->lock, deadline);
    if (rc == 0) { /* handed over: the owner word is already ours */
        debug_hold(m, me);
        return 0;
    }
    mutex_leave(m, &e);
    return rc;
}

int tr_mutex_lock(tr_mutex *m, int64_t deadline) {
    if (!m)
        return TR_EINVAL;
    int rc = tr_wait_enter();
    if (rc)
        return rc;
    uintptr_t me = self_id();
    uintptr_t s = 0;
    if (atomic_compare_exchange_strong_explicit(&m->state, &s, me, memory_order_acquire,
                                                memory_order_relaxed)) {
        debug_hold(m, me);
        return 0;
    }
    if (OWNER(s) == me)
        return TR_EDEADLK;
    return lock_slow(m, me, deadline);
}

int tr_mutex_try_lock(tr_mutex *m) {
    if (!m)
        return TR_EINVAL;
    uintptr_t me = self_id();
    uintptr_t s = 0;
    if (!atomic_compare_exchange_strong_explicit(&m->state, &s, me, memory_order_acquire,
                                                 memory_order_relaxed))
        return TR_EBUSY;
    debug_hold(m, me);
    return 0;
}

/* ---- unlocking ----------------------------------------------------------------------- */

__attribute__((noinline)) static int unlock_slow(tr_mutex *m) {
    tr_spin_lock(&m->lock);
    tr_wait *e = tr_waitq_claim_next(&m->waiters);
    if (e) {
        uintptr_t next = (uintptr_t)e->data;
        if (!tr_waitq_empty(&m->waiters))
            next |= CONTENDED;
        e->result = 0;
        atomic_store_explicit(&m->state, next, memory_order_release);
    } else {
        atomic_store_explicit(&m->state, 0, memory_order_release);
    }
    tr_spin_unlock(&m->lock);
    if (e)
        tr_waiter_wake(e->waiter);
    return 0;
}

int tr_mutex_unlock(tr_mutex *m) {
    if (!m)
        return TR_EINVAL;
    uintptr_t me = self_id();
#ifdef TR_DEBUG
    if (OWNER(atomic_load_explicit(&m->state, memory_order_relaxed)) != me)
        return TR_EPERM;
    tr__lock_debug_drop(&m->dbg);
#endif
    uintptr_t s = me;
    if (atomic_compare_exchange_strong_explicit(&m->state, &s, 0, memory_order_release,
                                                memory_order_relaxed))
        return 0;
    if (OWNER(s) != me)
        return TR_EPERM;
    return unlock_slow(m);
}

/* ---- the select clause ------------------------------------------------------------------ */

static int clause_arm(tr_clause *c, tr_wait *e) {
    tr_mutex *m = c->obj;
    uintptr_t me = self_id();
    e->data = (void *)me; /* who to hand the lock to */
    tr_spin_lock(&m->lock);
    if (atomic_load_explicit(&e->waiter->state, memory_order_acquire) != TR_WAITER_WAITING) {
        tr_spin_unlock(&m->lock);
        return TR_SELECT_LOST; /* an earlier clause won */
    }
    int rc = try_or_mark_locked(m, me);
    if (rc == 0) {
        tr_waitq_push(&m->waiters, e);
        tr_spin_unlock(&m->lock);
        return TR_SELECT_ARMED;
    }
    if (!tr_waiter_claim(e->waiter, e)) {
        /* Taken under the lock from 0: nobody can have queued behind us,
         * so plain release is the whole undo. */
        if (rc == 1)
            atomic_store_explicit(&m->state, 0, memory_order_release);
        tr_spin_unlock(&m->lock);
        return TR_SELECT_LOST;
    }
    tr_spin_unlock(&m->lock);
    if (rc == 1) {
        debug_hold(m, me);
        rc = 0;
    }
    c->result = rc;
    return TR_SELECT_DONE;
}

static void clause_disarm(tr_clause *c, tr_wait *e) { mutex_leave(c->obj, e); }

static void clause_finish(tr_clause *c, tr_wait *e) {
    c->result = e->result;
    if (e->result == 0)
        debug_hold(c->obj, (uintptr_t)e->data);
}

static const tr_clause_ops lock_ops = {clause_arm, clause_disarm, clause_finish};

int tr_mutex_lock_clause(tr_clause *c, tr_mutex *m) {
    if (!c)
        return TR_EINVAL;
    c->obj = m;
    c->buf = c->aux = NULL;
    c->n = 0;
    c->result = 0;
    c->ops = m ? &lock_ops : NULL; /* NULL: tr_select() refuses it */
    return m ? 0 : TR_EINVAL;
}
