/* watch_wait.c — waiting on a watch: changed(), wait_for(), closed() and
 * their select clauses.
 *
 * A receiver waits only while its seen version equals the channel's; it
 * parks under the queue lock after setting WAITERS in the word, so that a
 * send learns there is someone to wake from the same atomic instruction
 * that locks (see watch.c).  Writers claim only the receivers whose wait
 * is over, so a wake-up is never spurious.
 */
#include "config.h"

#include <string.h>

#include "watch_internal.h"

/* ---- waiting ---------------------------------------------------------------------- */

/* Lock-free: 0 (unseen value, now marked seen), TR_ECLOSED, or 1 (wait).
 * The word is read first: seeing CLOSED then guarantees the final version. */
static int changed_ready(tr_watch_rx *rx) {
    uint64_t w = word_load(rx->ch, memory_order_acquire);
    uint64_t v = vers_load(rx->ch);
    if (v != rx->seen) {
        rx->seen = v;
        return 0;
    }
    return (w & W_CLOSED) ? TR_ECLOSED : 1;
}

/* Under qlock: true if the wait is over, else e is queued and WAITERS set.
 * Spins past a write in progress (whose holder never takes qlock). */
static bool arm_changed_locked(chan *ch, tr_watch_rx *rx, tr_wait *e) {
    unsigned spins = 0;
    uint64_t w = word_load(ch, memory_order_acquire);
    for (;;) {
        if (w & W_WRITING) {
            relax(&spins);
            w = word_load(ch, memory_order_acquire);
            continue;
        }
        if (vers_load(ch) != rx->seen || (w & W_CLOSED))
            return true;
        if ((w & W_WAITERS) ||
            atomic_compare_exchange_weak_explicit(&ch->word, &w, w | W_WAITERS,
                                                  memory_order_seq_cst, memory_order_acquire)) {
            e->data = rx;
            tr_waitq_push(&ch->changed_q, e);
            return false;
        }
    }
}

static int changed_wait(tr_watch_rx *rx, int64_t deadline) {
    chan *ch = rx->ch;
    for (;;) {
        int r = changed_ready(rx);
        if (r != 1)
            return r;
        tr_waiter w;
        tr_wait e;
        tr_waiter_init(&w);
        tr_wait_init(&e, &w, rx);
        tr_spin_lock(&ch->qlock);
        if (arm_changed_locked(ch, rx, &e)) {
            tr_spin_unlock(&ch->qlock);
            continue;
        }
        int rc = tr_waiter_park(&w, &ch->qlock, deadline);
        if (rc) {
            tr_spin_lock(&ch->qlock);
            if (e.linked)
                tr_waitq_remove(&ch->changed_q, &e);
            tr_spin_unlock(&ch->qlock);
            return rc;
        }
        /* claimed only once the wait is over, so the next check returns */
    }
}

int tr_watch_changed(tr_watch_rx *rx, int64_t deadline) {
    if (!rx)
        return TR_EINVAL;
    int rc = tr_wait_enter();
    if (rc)
        return rc;
    return changed_wait(rx, deadline);
}

int tr_watch_wait_for(tr_watch_rx *rx, tr_watch_pred_fn pred, void *ctx, void *out,
                      int64_t deadline) {
    if (!rx || !pred)
        return TR_EINVAL;
    int rc = tr_wait_enter();
    if (rc)
        return rc;
    for (;;) {
        tr_watch_ref ref;
        rx->seen = tr__watch_borrow_into(rx->ch, &ref);
        bool ok = pred(ref.value, ctx);
        if (ok && out)
            memcpy(out, ref.value, rx->ch->size);
        tr_watch_ref_release(&ref);
        if (ok)
            return 0;
        rc = changed_wait(rx, deadline);
        if (rc)
            return rc;
    }
}

int tr_watch_closed(tr_watch_tx *tx, int64_t deadline) {
    if (!tx)
        return TR_EINVAL;
    int rc = tr_wait_enter();
    if (rc)
        return rc;
    chan *ch = tx->ch;
    if (atomic_load_explicit(&ch->rx_count, memory_order_acquire) == 0)
        return 0;
    tr_waiter w;
    tr_wait e;
    tr_waiter_init(&w);
    tr_wait_init(&e, &w, NULL);
    tr_spin_lock(&ch->qlock);
    if (atomic_load_explicit(&ch->rx_count, memory_order_acquire) == 0) {
        tr_spin_unlock(&ch->qlock);
        return 0;
    }
    tr_waitq_push(&ch->closed_q, &e);
    rc = tr_waiter_park(&w, &ch->qlock, deadline);
    if (rc) {
        tr_spin_lock(&ch->qlock);
        if (e.linked)
            tr_waitq_remove(&ch->closed_q, &e);
        tr_spin_unlock(&ch->qlock);
    }
    return rc;
}

/* ---- select clauses ------------------------------------------------------------------ */

static int changed_result(tr_watch_rx *rx) {
    int r = changed_ready(rx);
    return r == 1 ? 0 : r; /* 1 cannot happen: versions and CLOSED only move on */
}

static int changed_arm(tr_clause *c, tr_wait *e) {
    tr_watch_rx *rx = c->obj;
    chan *ch = rx->ch;
    uint64_t w = word_load(ch, memory_order_acquire);
    bool ready = vers_load(ch) != rx->seen || (w & W_CLOSED);
    if (!ready) {
        tr_spin_lock(&ch->qlock);
        ready = arm_changed_locked(ch, rx, e);
        tr_spin_unlock(&ch->qlock);
        if (!ready)
            return TR_SELECT_ARMED;
    }
    if (!tr_waiter_claim(e->waiter, e))
        return TR_SELECT_LOST;
    c->result = changed_result(rx);
    return TR_SELECT_DONE;
}

static void changed_disarm(tr_clause *c, tr_wait *e) {
    tr_watch_rx *rx = c->obj;
    tr_spin_lock(&rx->ch->qlock);
    if (e->linked)
        tr_waitq_remove(&rx->ch->changed_q, e);
    tr_spin_unlock(&rx->ch->qlock);
}

static void changed_finish(tr_clause *c, tr_wait *e) {
    (void)e;
    c->result = changed_result(c->obj);
}

static const tr_clause_ops changed_ops = {changed_arm, changed_disarm, changed_finish};

int tr_watch_changed_clause(tr_clause *c, tr_watch_rx *rx) {
    if (!c)
        return TR_EINVAL;
    c->ops = NULL;
    if (!rx)
        return TR_EINVAL;
    c->ops = &changed_ops;
    c->obj = rx;
    c->buf = rx; /* becomes the entry's data, which wakers read */
    c->n = 0;
    c->aux = NULL;
    c->result = 0;
    return 0;
}

static int closed_arm(tr_clause *c, tr_wait *e) {
    chan *ch = ((tr_watch_tx *)c->obj)->ch;
    tr_spin_lock(&ch->qlock);
    if (atomic_load_explicit(&ch->rx_count, memory_order_acquire) == 0) {
        bool won = tr_waiter_claim(e->waiter, e);
        tr_spin_unlock(&ch->qlock);
        c->result = 0;
        return won ? TR_SELECT_DONE : TR_SELECT_LOST;
    }
    tr_waitq_push(&ch->closed_q, e);
    tr_spin_unlock(&ch->qlock);
    return TR_SELECT_ARMED;
}

static void closed_disarm(tr_clause *c, tr_wait *e) {
    chan *ch = ((tr_watch_tx *)c->obj)->ch;
    tr_spin_lock(&ch->qlock);
    if (e->linked)
        tr_waitq_remove(&ch->closed_q, e);
    tr_spin_unlock(&ch->qlock);
}

static const tr_clause_ops closed_ops = {closed_arm, closed_disarm, NULL};

int tr_watch_closed_clause(tr_clause *c, tr_watch_tx *tx) {
    if (!c)
        return TR_EINVAL;
    c->ops = NULL;
    if (!tx)
        return TR_EINVAL;
    c->ops = &closed_ops;
    c->obj = tx;
    c->buf = NULL;
    c->n = 0;
    c->aux = NULL;
    c->result = 0;
    return 0;
}
