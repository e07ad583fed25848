/* notify.c — tr_notify: one stored permit and a queue of registered
 * waiters (tokio::sync::Notify).
 *
 * Every waiter — a plain tr_notify_notified() call, a select clause, a
 * registered tr_notified — is one tr_wait node in n->waiters, oldest at
 * the head.  A notifier pops the node it chooses, writes *how* it was
 * notified into node->result (one / last / all) and, if a waiter is
 * parked on the node, claims and wakes it after dropping the lock.
 *
 * Why the notifier marks the chosen node instead of skipping nodes whose
 * claim fails (as tr_waitq_claim_next does): a registered tr_notified has
 * no parked waiter at all while its owner is busy elsewhere, yet tokio's
 * rules make it a legitimate target of notify_one.  So "chosen" is a fact
 * recorded in the node, and whoever owns the node settles it later: the
 * owner of a waiter that timed out, a select that another clause won, or
 * a tr_notified being dropped passes a one/last notification on with the
 * same rule (unregister_locked).  That keeps one invariant — the queue is
 * exactly the registered waiters, in order — at the price of a second
 * locked section in a race that is rare by nature.
 *
 * notify_waiters() bumps a call counter (so a tr_notified initialised
 * before it, but not yet registered, completes on its first enable) and
 * empties the queue in one locked walk; the wake-ups run after the unlock.
 * notify_one is one short locked section: pop, mark, claim.
 */
#include "tr_notify.h"

#include <stddef.h>

/* How a node was notified (node->result); 0 = not yet. */
enum { HOW_NONE = 0, HOW_ONE = 1, HOW_LAST = 2, HOW_ALL = 3 };

/* tr_notified.state */
enum { ND_INIT = 0, ND_WAITING = 1, ND_DONE = 2, ND_DROPPED = 3 };

static bool valid(const tr_notify *n) { return n && n->magic == TR__NOTIFY_MAGIC; }

int tr_notify_init(tr_notify *n) {
    if (!n)
        return TR_EINVAL;
    tr_spin_init(&n->lock);
    n->permit = false;
    tr_waitq_init(&n->waiters);
    atomic_init(&n->calls, 0);
    n->magic = TR__NOTIFY_MAGIC;
    return 0;
}

int tr_notify_destroy(tr_notify *n) {
    if (!valid(n))
        return TR_EINVAL;
    tr_spin_lock(&n->lock);
    bool busy = !tr_waitq_empty(&n->waiters);
    if (!busy)
        n->magic = 0;
    tr_spin_unlock(&n->lock);
    return busy ? TR_EBUSY : 0;
}

/* Lock held.  Gives a one/last notification to the chosen node, or stores
 * the permit.  Returns the waiter to wake after the unlock, if any. */
static tr_waiter *notify_locked(tr_notify *n, int how) {
    tr_wait *e = how == HOW_LAST ? n->waiters.tail : n->waiters.head;
    if (!e) {
        n->permit = true;
        return NULL;
    }
    tr_waitq_remove(&n->waiters, e);
    e->result = how;
    tr_waiter *w = e->waiter;
    if (w && tr_waiter_claim(w, e))
        return w;
    return NULL; /* not parked, or giving up: its owner settles it */
}

/* Lock held.  Takes node e out of the notify for good: unlinks it if it is
 * still registered, or passes on a one/last notification that chose it
 * and was not observed.  Returns a waiter to wake after the unlock. */
static tr_waiter *unregister_locked(tr_notify *n, tr_wait *e) {
    if (e->linked) {
        tr_waitq_remove(&n->waiters, e);
        return NULL;
    }
    if (e->result == HOW_ONE || e->result == HOW_LAST) {
        int how = e->result;
        e->result = HOW_NONE;
        return notify_locked(n, how);
    }
    return NULL;
}

static int notify_common(tr_notify *n, int how) {
    if (!valid(n))
        return TR_EINVAL;
    tr_spin_lock(&n->lock);
    tr_waiter *w = notify_locked(n, how);
    tr_spin_unlock(&n->lock);
    if (w)
        tr_waiter_wake(w);
    return 0;
}

int tr_notify_one(tr_notify *n) { return notify_common(n, HOW_ONE); }

int tr_notify_last(tr_notify *n) { return notify_common(n, HOW_LAST); }

int tr_notify_waiters(tr_notify *n) {
    if (!valid(n))
        return TR_EINVAL;
    tr_wait *first = NULL, *last = NULL, *e;
    tr_spin_lock(&n->lock);
    atomic_store_explicit(&n->calls, atomic_load_explicit(&n->calls, memory_order_relaxed) + 1,
                          memory_order_release);
    while ((e = tr_waitq_pop(&n->waiters)) != NULL) {
        e->result = HOW_ALL;
        if (e->waiter && tr_waiter_claim(e->waiter, e)) {
            /* Chain in queue order through the now unused link. */
            e->next = NULL;
            if (last)
                last->next = e;
            else
                first = e;
            last = e;
        }
    }
    tr_spin_unlock(&n->lock);
    tr_wait_wake_all(first);
    return 0;
}

/* ---- waiting in one call ------------------------------------------------------ */

int tr_notify_notified(tr_notify *n, int64_t deadline) {
    if (!valid(n))
        return TR_EINVAL;
    int rc = tr_wait_enter();
    if (rc)
        return rc;
    tr_spin_lock(&n->lock);
    if (n->permit) {
        n->permit = false;
        tr_spin_unlock(&n->lock);
        return 0;
    }
    tr_waiter w;
    tr_wait e;
    tr_waiter_init(&w);
    tr_wait_init(&e, &w, NULL);
    tr_waitq_push(&n->waiters, &e);
    rc = tr_waiter_park(&w, &n->lock, deadline);
    if (rc == 0)
        return 0;
    tr_spin_lock(&n->lock);
    tr_waiter *pass = unregister_locked(n, &e);
    tr_spin_unlock(&n->lock);
    if (pass)
        tr_waiter_wake(pass);
    return rc;
}

/* ---- the select clause -------------------------------------------------------- */

static int clause_arm(tr_clause *c, tr_wait *e) {
    tr_notify *n = c->obj;
    tr_spin_lock(&n->lock);
    if (n->permit) {
        if (!tr_waiter_claim(e->waiter, e)) {
            tr_spin_unlock(&n->lock);
            return TR_SELECT_LOST;
        }
        n->permit = false;
        tr_spin_unlock(&n->lock);
        c->result = 0;
        return TR_SELECT_DONE;
    }
    e->result = HOW_NONE;
    tr_waitq_push(&n->waiters, e);
    tr_spin_unlock(&n->lock);
    return TR_SELECT_ARMED;
}

static void clause_disarm(tr_clause *c, tr_wait *e) {
    tr_notify *n = c->obj;
    tr_spin_lock(&n->lock);
    tr_waiter *pass = unregister_locked(n, e);
    tr_spin_unlock(&n->lock);
    if (pass)
        tr_waiter_wake(pass);
}

static void clause_finish(tr_clause *c, tr_wait *e) {
    (void)e;
    c->result = 0;
}

static const tr_clause_ops notified_ops = {clause_arm, clause_disarm, clause_finish};

int tr_notify_notified_clause(tr_clause *c, tr_notify *n) {
    if (!c)
        return TR_EINVAL;
    if (!valid(n)) {
        c->ops = NULL;
        return TR_EINVAL;
    }
    c->ops = &notified_ops;
    c->obj = n;
    c->buf = c->aux = NULL;
    c->n = 0;
    c->result = 0;
    return 0;
}

/* ---- register first, wait later ------------------------------------------------ */

static bool nd_valid(const tr_notified *nd) {
    return nd && nd->state != ND_DROPPED && valid(nd->notify);
}

int tr_notified_init(tr_notified *nd, tr_notify *n) {
    if (!nd || !valid(n))
        return TR_EINVAL;
    nd->notify = n;
    nd->calls = atomic_load_explicit(&n->calls, memory_order_acquire);
    nd->state = ND_INIT;
    tr_wait_init(&nd->node, NULL, NULL);
    return 0;
}

/* Lock held.  Returns 1 if nd is notified (and marks it observed), 0 if it
 * is registered and still waiting. */
static int enable_locked(tr_notified *nd) {
    tr_notify *n = nd->notify;
    switch (nd->state) {
    case ND_INIT:
        /* A notify_waiters() since init completes nd and leaves the
         * permit for someone else (tokio 1.53). */
        if (atomic_load_explicit(&n->calls, memory_order_relaxed) != nd->calls) {
            nd->state = ND_DONE;
            return 1;
        }
        if (n->permit) {
            n->permit = false;
            nd->state = ND_DONE;
            return 1;
        }
        nd->node.result = HOW_NONE;
        nd->node.waiter = NULL;
        tr_waitq_push(&n->waiters, &nd->node);
        nd->state = ND_WAITING;
        return 0;
    case ND_WAITING:
        if (nd->node.linked)
            return 0;
        nd->state = ND_DONE; /* a notifier chose it: observed now */
        return 1;
    default:
        return 1;
    }
}

int tr_notified_enable(tr_notified *nd) {
    if (!nd_valid(nd))
        return TR_EINVAL;
    if (nd->state == ND_DONE)
        return 1;
    tr_notify *n = nd->notify;
    tr_spin_lock(&n->lock);
    int r = enable_locked(nd);
    tr_spin_unlock(&n->lock);
    return r;
}

int tr_notified_wait(tr_notified *nd, int64_t deadline) {
    if (!nd_valid(nd))
        return TR_EINVAL;
    int rc = tr_wait_enter();
    if (rc)
        return rc;
    if (nd->state == ND_DONE)
        return 0;
    tr_notify *n = nd->notify;
    tr_spin_lock(&n->lock);
    if (enable_locked(nd)) {
        tr_spin_unlock(&n->lock);
        return 0;
    }
    tr_waiter w;
    tr_waiter_init(&w);
    nd->node.waiter = &w;
    rc = tr_waiter_park(&w, &n->lock, deadline);
    if (rc == 0) {
        /* The notifier unlinked the node and will not touch it again. */
        nd->node.waiter = NULL;
        nd->state = ND_DONE;
        return 0;
    }
    /* Keep the registration (and a notification that raced the deadline)
     * for the next wait or the drop; just stop pointing at this frame. */
    tr_spin_lock(&n->lock);
    nd->node.waiter = NULL;
    tr_spin_unlock(&n->lock);
    return rc;
}

int tr_notified_drop(tr_notified *nd) {
    if (!nd || nd->state == ND_DROPPED || !nd->notify)
        return TR_EINVAL;
    tr_notify *n = nd->notify;
    tr_waiter *pass = NULL;
    if (nd->state == ND_WAITING) {
        tr_spin_lock(&n->lock);
        pass = unregister_locked(n, &nd->node);
        tr_spin_unlock(&n->lock);
    }
    nd->state = ND_DROPPED;
    nd->notify = NULL;
    if (pass)
        tr_waiter_wake(pass);
    return 0;
}
