/* semaphore.c — Tokio's fair batch semaphore on troupe's wait queue.
 *
 * One atomic word holds the free permits (shifted left by two) and two
 * flags: CLOSED, and WAITERS ("the queue is not empty").  The invariant
 * that makes the fast paths lock-free: while WAITERS is set the pool is 0,
 * and the word changes only under the spin lock.  So an acquire that finds
 * WAITERS clear and enough permits takes them with one compare-and-swap,
 * and a release that finds WAITERS clear adds them with one; everybody else
 * takes the lock.  A releaser racing with a task that is about to queue
 * cannot lose permits: both change the same word, and the CAS that sets
 * WAITERS (and empties the pool into the queuer's request) makes the
 * releaser's CAS fail and send it to the locked path, where it finds the
 * queued entry.
 *
 * Each queued tr_wait keeps in e->n the permits it still needs and in
 * e->data a pointer to the count it asked for, so that whoever unlinks it
 * can tell how many it had been assigned.  Only the head can hold part of
 * its request (a new waiter takes the pool only when the queue was empty;
 * releases fill the head first).  An entry whose waiter is no longer
 * WAITING (it timed out, was cancelled, or another clause of its select
 * won) is stale: the releaser that meets it unlinks it and takes back
 * what it had been assigned, and its owner, finding it unlinked, gives
 * back nothing.  An owner that finds its entry still linked unlinks it and
 * hands its assigned permits on itself.  Either way each permit has
 * exactly one keeper.
 */
#include "config.h"

#include <stdlib.h>

#include "tr_semaphore.h"

#define CLOSED  ((size_t)1)
#define WAITERS ((size_t)2)
#define SHIFT   2
#define POOL(st) ((st) >> SHIFT)

enum { TAKEN = 1, QUEUED = 2 }; /* sem_arm_locked(), beside TR_ECLOSED */

static size_t requested(const tr_wait *e) { return *(const size_t *)e->data; }
static size_t assigned(const tr_wait *e) { return requested(e) - e->n; }

static size_t load_state(const tr_sem *s) {
    return atomic_load_explicit((_Atomic size_t *)&s->state, memory_order_acquire);
}

static bool cas_state(tr_sem *s, size_t *expect, size_t want) {
    return atomic_compare_exchange_weak_explicit(&s->state, expect, want, memory_order_acq_rel,
                                                 memory_order_acquire);
}

/* Lock held.  Hands `avail` permits to the queue in order; claimed entries
 * are chained on *woken for waking after the unlock.  What is left when
 * the queue runs empty goes to the pool, and WAITERS is cleared. */
static void distribute_locked(tr_sem *s, size_t avail, tr_wait **woken) {
    tr_wait *e;
    while ((e = tr_waitq_peek(&s->waiters)) != NULL) {
        if (atomic_load_explicit(&e->waiter->state, memory_order_acquire) != TR_WAITER_WAITING) {
            tr_waitq_remove(&s->waiters, e); /* stale: its permits are ours again */
            avail += assigned(e);
            continue;
        }
        if (avail == 0)
            break;
        size_t give = avail < e->n ? avail : e->n;
        e->n -= give;
        avail -= give;
        if (e->n > 0)
            break; /* the head still needs more; avail is 0 */
        tr_waitq_remove(&s->waiters, e);
        if (!tr_waiter_claim(e->waiter, e)) { /* went stale just now */
            avail += requested(e);
            continue;
        }
        e->result = 0;
        e->next = *woken;
        *woken = e;
    }
    if (!tr_waitq_empty(&s->waiters))
        return;
    size_t st = load_state(s);
    while (!cas_state(s, &st, (st & ~WAITERS) + (avail << SHIFT)))
        ;
}

/* Lock held.  Takes all n permits (TAKEN), or takes what is free and
 * queues e for the rest (QUEUED), or TR_ECLOSED. */
static int sem_arm_locked(tr_sem *s, tr_wait *e, size_t n) {
    size_t st = load_state(s);
    for (;;) {
        if (st & CLOSED)
            return TR_ECLOSED;
        if (n == 0)
            return TAKEN; /* even behind waiters, as Tokio */
        if (!(st & WAITERS) && POOL(st) >= n) {
            if (cas_state(s, &st, st - (n << SHIFT)))
                return TAKEN;
            continue;
        }
        size_t take = POOL(st); /* 0 when WAITERS is set */
        if (cas_state(s, &st, (st & CLOSED) | WAITERS)) {
            e->n = n - take;
            tr_waitq_push(&s->waiters, e);
            return QUEUED;
        }
    }
}

/* After a failed park or a lost select: leave the queue, handing on what
 * had been assigned to us.  An unlinked entry was dealt with by its
 * unlinker. */
static void sem_leave(tr_sem *s, tr_wait *e) {
    tr_wait *woken = NULL;
    tr_spin_lock(&s->lock);
    if (e->linked) {
        tr_waitq_remove(&s->waiters, e);
        distribute_locked(s, assigned(e), &woken);
    }
    tr_spin_unlock(&s->lock);
    tr_wait_wake_all(woken);
}

/* The lock-free attempt: 0, TR_ECLOSED, or TR_EBUSY (queue or too few). */
static int try_take(tr_sem *s, size_t n) {
    size_t st = atomic_load_explicit(&s->state, memory_order_relaxed);
    for (;;) {
        if (st & CLOSED)
            return TR_ECLOSED;
        if (n == 0)
            return 0;
        if ((st & WAITERS) || POOL(st) < n)
            return TR_EBUSY;
        if (cas_state(s, &st, st - (n << SHIFT)))
            return 0;
    }
}

/* ---- lifecycle ------------------------------------------------------------------ */

int tr_sem_init(tr_sem *s, size_t permits) {
    if (!s || permits > TR_SEM_MAX_PERMITS)
        return TR_EINVAL;
    atomic_init(&s->state, permits << SHIFT);
    tr_spin_init(&s->lock);
    tr_waitq_init(&s->waiters);
    return 0;
}

int tr_sem_destroy(tr_sem *s) {
    if (!s)
        return TR_EINVAL;
    tr_spin_lock(&s->lock);
    bool busy = !tr_waitq_empty(&s->waiters);
    tr_spin_unlock(&s->lock);
    return busy ? TR_EBUSY : 0;
}

int tr_sem_new(tr_sem **out, size_t permits) {
    if (!out || permits > TR_SEM_MAX_PERMITS)
        return TR_EINVAL;
    tr_sem *s = malloc(sizeof *s);
    if (!s)
        return TR_ENOMEM;
    tr_sem_init(s, permits);
    *out = s;
    return 0;
}

int tr_sem_free(tr_sem **s) {
    if (!s || !*s)
        return TR_EINVAL;
    int rc = tr_sem_destroy(*s);
    if (rc)
        return rc;
    free(*s);
    *s = NULL;
    return 0;
}

/* ---- acquiring ------------------------------------------------------------------ */

int tr_sem_acquire_many(tr_sem *s, size_t n, int64_t deadline) {
    if (!s || n > TR_SEM_MAX_PERMITS)
        return TR_EINVAL;
    int rc = tr_wait_enter();
    if (rc)
        return rc;
    rc = try_take(s, n);
    if (rc != TR_EBUSY)
        return rc;

    tr_waiter w;
    tr_wait e;
    tr_waiter_init(&w);
    tr_wait_init(&e, &w, &n);
    tr_spin_lock(&s->lock);
    rc = sem_arm_locked(s, &e, n);
    if (rc != QUEUED) {
        tr_spin_unlock(&s->lock);
        return rc == TAKEN ? 0 : rc;
    }
    rc = tr_waiter_park(&w, &s->lock, deadline);
    if (rc == 0)
        return e.result; /* 0: all n are ours; or TR_ECLOSED */
    sem_leave(s, &e);
    return rc;
}

int tr_sem_acquire(tr_sem *s, int64_t deadline) { return tr_sem_acquire_many(s, 1, deadline); }

int tr_sem_try_acquire_many(tr_sem *s, size_t n) {
    if (!s || n > TR_SEM_MAX_PERMITS)
        return TR_EINVAL;
    return try_take(s, n);
}

int tr_sem_try_acquire(tr_sem *s) { return tr_sem_try_acquire_many(s, 1); }

/* ---- releasing ------------------------------------------------------------------ */

int tr__sem_release_capped(tr_sem *s, size_t n, size_t cap, int err) {
    if (!s)
        return TR_EINVAL;
    if (n == 0)
        return 0;
    for (;;) {
        size_t st = atomic_load_explicit(&s->state, memory_order_relaxed);
        while (!(st & WAITERS)) { /* nobody to hand to: one CAS */
            if (POOL(st) > cap || n > cap - POOL(st))
                return err;
            if (cas_state(s, &st, st + (n << SHIFT)))
                return 0;
        }
        tr_wait *woken = NULL;
        tr_spin_lock(&s->lock);
        st = load_state(s);
        if (!(st & WAITERS)) { /* the queue emptied meanwhile */
            tr_spin_unlock(&s->lock);
            continue;
        }
        /* The pool is 0; only the head may hold assigned permits. */
        tr_wait *head = tr_waitq_peek(&s->waiters);
        size_t held = head ? assigned(head) : 0;
        if (held > cap || n > cap - held) {
            tr_spin_unlock(&s->lock);
            return err;
        }
        distribute_locked(s, n, &woken);
        tr_spin_unlock(&s->lock);
        tr_wait_wake_all(woken);
        return 0;
    }
}

int tr_sem_release(tr_sem *s, size_t n) {
    return tr__sem_release_capped(s, n, TR_SEM_MAX_PERMITS, TR_EINVAL);
}

int tr_sem_add_permits(tr_sem *s, size_t n) { return tr_sem_release(s, n); }

size_t tr_sem_forget_permits(tr_sem *s, size_t n) {
    if (!s)
        return 0;
    size_t st = atomic_load_explicit(&s->state, memory_order_relaxed);
    for (;;) {
        size_t take = n < POOL(st) ? n : POOL(st);
        if (take == 0)
            return 0;
        if (cas_state(s, &st, st - (take << SHIFT)))
            return take;
    }
}

/* ---- closing and looking -------------------------------------------------------- */

int tr_sem_close(tr_sem *s) {
    if (!s)
        return TR_EINVAL;
    tr_wait *woken = NULL, *e;
    size_t back = 0;
    tr_spin_lock(&s->lock);
    atomic_fetch_or_explicit(&s->state, CLOSED, memory_order_acq_rel);
    while ((e = tr_waitq_pop(&s->waiters)) != NULL) {
        back += assigned(e); /* a waiter that fails holds nothing */
        if (tr_waiter_claim(e->waiter, e)) {
            e->result = TR_ECLOSED;
            e->next = woken;
            woken = e;
        }
    }
    size_t st = load_state(s);
    while (!cas_state(s, &st, (st & ~WAITERS) + (back << SHIFT)))
        ;
    tr_spin_unlock(&s->lock);
    tr_wait_wake_all(woken);
    return 0;
}

bool tr_sem_is_closed(const tr_sem *s) { return s && (load_state(s) & CLOSED); }

size_t tr_sem_available_permits(const tr_sem *s) { return s ? POOL(load_state(s)) : 0; }

/* ---- the select clause ------------------------------------------------------------ */

static int clause_arm(tr_clause *c, tr_wait *e) {
    tr_sem *s = c->obj;
    size_t n = c->n;
    e->data = &c->n; /* what releasers read as "requested" */
    tr_spin_lock(&s->lock);
    /* An earlier clause already won: take nothing, not even a part. */
    if (atomic_load_explicit(&e->waiter->state, memory_order_acquire) != TR_WAITER_WAITING) {
        tr_spin_unlock(&s->lock);
        return TR_SELECT_LOST;
    }
    int r = sem_arm_locked(s, e, n);
    if (r == QUEUED) {
        tr_spin_unlock(&s->lock);
        return TR_SELECT_ARMED;
    }
    if (!tr_waiter_claim(e->waiter, e)) {
        /* Taken without WAITERS and under the lock: nobody queued since,
         * so the permits go straight back to the pool. */
        if (r == TAKEN)
            atomic_fetch_add_explicit(&s->state, n << SHIFT, memory_order_acq_rel);
        tr_spin_unlock(&s->lock);
        return TR_SELECT_LOST;
    }
    tr_spin_unlock(&s->lock);
    c->result = r == TAKEN ? 0 : r;
    return TR_SELECT_DONE;
}

static void clause_disarm(tr_clause *c, tr_wait *e) { sem_leave(c->obj, e); }

const tr_clause_ops tr__sem_acquire_ops = {clause_arm, clause_disarm, NULL};

int tr_sem_acquire_clause(tr_clause *c, tr_sem *s, size_t n) {
    if (!c)
        return TR_EINVAL;
    c->obj = s;
    c->buf = c->aux = NULL;
    c->n = n;
    c->result = 0;
    if (!s || n > TR_SEM_MAX_PERMITS) {
        c->ops = NULL; /* tr_select() refuses it */
        return TR_EINVAL;
    }
    c->ops = &tr__sem_acquire_ops;
    return 0;
}

/* ---- permits as values ------------------------------------------------------------ */

int tr_sem_permit_acquire(tr_sem_permit *out, tr_sem *s, size_t n, int64_t deadline) {
    if (!out)
        return TR_EINVAL;
    out->sem = s;
    out->n = 0;
    int rc = tr_sem_acquire_many(s, n, deadline);
    if (rc == 0)
        out->n = n;
    return rc;
}

int tr_sem_permit_try_acquire(tr_sem_permit *out, tr_sem *s, size_t n) {
    if (!out)
        return TR_EINVAL;
    out->sem = s;
    out->n = 0;
    int rc = tr_sem_try_acquire_many(s, n);
    if (rc == 0)
        out->n = n;
    return rc;
}

int tr_sem_permit_release(tr_sem_permit *p) {
    if (!p || (!p->sem && p->n))
        return TR_EINVAL;
    if (p->n == 0)
        return 0;
    int rc = tr_sem_release(p->sem, p->n);
    if (rc == 0)
        p->n = 0;
    return rc;
}

int tr_sem_permit_forget(tr_sem_permit *p) {
    if (!p)
        return TR_EINVAL;
    p->n = 0;
    return 0;
}

int tr_sem_permit_split(tr_sem_permit *p, size_t n, tr_sem_permit *out) {
    if (!p || !out || n > p->n)
        return TR_EINVAL;
    p->n -= n;
    out->sem = p->sem;
    out->n = n;
    return 0;
}

int tr_sem_permit_merge(tr_sem_permit *p, tr_sem_permit *other) {
    if (!p || !other || p == other || p->sem != other->sem)
        return TR_EINVAL;
    p->n += other->n;
    other->n = 0;
    return 0;
}
