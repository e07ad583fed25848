/* mpsc_send.c — sending: send, try_send, reservations, permits, closed().
 *
 * Why this shape: the fast path of a bounded send is one lock, a check,
 * one copy into the ring (or straight into a parked receiver's buffer)
 * and an unlock — no waiter, no allocation, no wake unless the receiver
 * is parked.  Only a send that must wait builds a waiter, and it waits as
 * a one-clause select would: its tr_wait lives in a tr_clause on its own
 * stack, so the receiver that frees a slot completes plain sends, select
 * clauses and reservations with the same code (mpsc_release_locked), and
 * a wait that times out or is cancelled undoes itself with the same
 * disarm a select uses.  Capacity is granted first come, first served,
 * partly to the head waiter of a reserve_many, and a grant that is not
 * taken up (timeout, cancellation, another clause won) is given back.
 */
#include "mpsc_internal.h"

/* ---- unbounded ---------------------------------------------------------------- */

/* Lock held on entry and on return (dropped meanwhile to allocate). */
static int unb_send_locked(tr_mpsc_chan *ch, const void *value, tr_wait **wake) {
    for (;;) {
        if (ch->strong == 0)
            return TR_EINVAL;
        if (ch->rx_closed)
            return TR_ECLOSED;
        if (mpsc_handoff_locked(ch, value, wake))
            return 0;
        if (unb_has_room(ch)) {
            queue_push_locked(ch, value);
            return 0;
        }
        int r = mpsc_unb_room_locked(ch);
        if (r < 0)
            return r;
        /* r == 1: the lock was dropped; look at everything again. */
    }
}

static int unb_send(tr_mpsc_chan *ch, const void *value) {
    tr_wait *wake = NULL;
    mpsc_lock(ch);
    int rc = unb_send_locked(ch, value, &wake);
    mpsc_unlock(ch);
    tr_wait_wake_all(wake);
    return rc;
}

/* ---- waiting senders ------------------------------------------------------------ */

/* Bounded, lock held, a slot free: the value takes it. */
static inline void take_slot_and_send_locked(tr_mpsc_chan *ch, const void *value, tr_wait **wake) {
    ch->avail--;
    if (mpsc_handoff_locked(ch, value, wake))
        ch->avail++; /* received at once: the slot is free again */
    else
        queue_push_locked(ch, value);
}

static void sender_disarm(tr_clause *c, tr_wait *e) {
    tr_mpsc_chan *ch = c->obj;
    tr_wait *wake = NULL;
    mpsc_lock(ch);
    if (e->linked) { /* nobody settled it: give back what it was granted */
        tr_waitq_remove(&ch->sendq, e);
        size_t granted = c->n - e->n;
        if (granted)
            mpsc_release_locked(ch, granted, &wake);
        mpsc_check_done_locked(ch, &wake);
    }
    mpsc_unlock(ch);
    tr_wait_wake_all(wake);
}

/* Queues the caller (lock held; `lacking` of its n slots still to come)
 * and parks.  Returns with the lock released. */
static int sender_wait(tr_mpsc_chan *ch, const tr_clause_ops *ops, const void *value,
                       tr_mpsc_permit *permit, size_t n, size_t lacking, int64_t deadline) {
    tr_waiter w;
    tr_clause c;
    tr_waiter_init(&w);
    c.ops = ops;
    c.obj = ch;
    c.buf = (void *)value;
    c.n = n;
    c.aux = permit;
    c.result = 0;
    tr_wait_init(&c.entry, &w, c.buf);
    c.entry.n = lacking;
    tr_waitq_push(&ch->sendq, &c.entry);
    mpsc_unlock(ch);
    int rc = tr_waiter_park(&w, NULL, deadline);
    if (rc != 0) {
        sender_disarm(&c, &c.entry);
        return rc;
    }
    return c.entry.result; /* completed (0) or failed by close */
}

/* ---- send --------------------------------------------------------------------- */

/* Bounded, lock held, and not the fast path of tr_mpsc_send: a receiver
 * to hand the value to, no room, or no sending at all.  Returns with the
 * lock released.  Out of line (a tail call), so that the fast path keeps
 * a short prologue. */
static MPSC_HOT __attribute__((noinline)) int send_slow_locked(tr_mpsc_chan *ch, const void *value,
                                                      int64_t deadline) {
    int rc;
    if (ch->strong == 0 || ch->rx_closed) {
        rc = ch->strong == 0 ? TR_EINVAL : TR_ECLOSED;
        mpsc_unlock(ch);
        return rc;
    }
    if (ch->avail == 0)
        return sender_wait(ch, &mpsc_send_ops, value, NULL, 1, 1, deadline);
    /* A parked receiver (so nothing is queued): the value goes straight
     * into its buffer and takes no slot.  Claimed, the receiver does not
     * run before the wake, so the copy can follow the unlock. */
    size_t elem = ch->elem;
    tr_wait *e = mpsc_rx_claim_fast_locked(ch);
    if (e) {
        mpsc_unlock(ch);
        mpsc_copy(e->data, value, elem);
        e->result = rx_handoff_result(e);
        tr_waiter_wake(e->waiter);
        return 0;
    }
    ch->avail--; /* every parked receiver was stale */
    ring_push_locked(ch, value);
    mpsc_unlock(ch);
    return 0;
}

/* Lock held: the fast path of a bounded send applies. */
static inline bool send_fast_ok(const tr_mpsc_chan *ch) {
    return __builtin_expect(ch->avail > 0 && tr_waitq_empty(&ch->rxq) && ch->strong != 0 &&
                                !ch->rx_closed,
                            1);
}

/* tr_mpsc_send from a thread that does not own the bias: the same, with
 * the lock taken by `lock` (a tail call, so that tr_mpsc_send itself stays
 * the owner's short path). */
static MPSC_HOT __attribute__((noinline)) int send_spin(tr_mpsc_chan *ch, const void *value,
                                                        int64_t deadline) {
    mpsc_lock_spin(ch, mpsc_self());
    if (send_fast_ok(ch)) {
        ch->avail--;
        ring_push_locked(ch, value);
        mpsc_unlock_spin(ch);
        return 0;
    }
    return send_slow_locked(ch, value, deadline);
}

MPSC_HOT int tr_mpsc_send(tr_mpsc_tx *tx, const void *value, int64_t deadline) {
    if (!tx || !value)
        return TR_EINVAL;
    tr_mpsc_chan *ch = chan_of_tx(tx);
    if (!ch->cap)
        return unb_send(ch, value);
    int rc = tr_wait_enter();
    if (rc != 0)
        return rc;
    if (!mpsc_lock_owner(ch, mpsc_self()))
        return send_spin(ch, value, deadline);
    if (send_fast_ok(ch)) {
        ch->avail--;
        ring_push_locked(ch, value);
        mpsc_unlock_owner(ch);
        return 0;
    }
    return send_slow_locked(ch, value, deadline);
}

int tr_mpsc_try_send(tr_mpsc_tx *tx, const void *value) {
    if (!tx || !value)
        return TR_EINVAL;
    tr_mpsc_chan *ch = chan_of_tx(tx);
    if (!ch->cap)
        return unb_send(ch, value);
    tr_wait *wake = NULL;
    int rc = 0;
    mpsc_lock(ch);
    if (ch->strong == 0)
        rc = TR_EINVAL;
    else if (ch->rx_closed)
        rc = TR_ECLOSED;
    else if (ch->avail == 0)
        rc = TR_EFULL;
    else
        take_slot_and_send_locked(ch, value, &wake);
    mpsc_unlock(ch);
    tr_wait_wake_all(wake);
    return rc;
}

/* ---- reservations ------------------------------------------------------------------ */

static void permit_clear(tr_mpsc_permit *p) {
    p->chan = NULL;
    p->n = 0;
}

int tr_mpsc_reserve_many(tr_mpsc_tx *tx, tr_mpsc_permit *permit, size_t n, int64_t deadline) {
    if (!tx || !permit)
        return TR_EINVAL;
    permit_clear(permit);
    tr_mpsc_chan *ch = chan_of_tx(tx);
    if (!ch->cap || n > ch->cap)
        return TR_EINVAL;
    int rc = tr_wait_enter();
    if (rc != 0)
        return rc;
    mpsc_lock(ch);
    if (ch->strong == 0)
        rc = TR_EINVAL;
    else if (ch->rx_closed)
        rc = TR_ECLOSED;
    else if (n == 0)
        rc = 0;
    else if (ch->avail >= n) {
        ch->avail -= n;
        permit_fill_locked(ch, permit, n);
    } else {
        size_t lacking = n - ch->avail; /* take what is free, queue for the rest */
        ch->avail = 0;
        return sender_wait(ch, &mpsc_reserve_ops, NULL, permit, n, lacking, deadline);
    }
    mpsc_unlock(ch);
    return rc;
}

int tr_mpsc_reserve(tr_mpsc_tx *tx, tr_mpsc_permit *permit, int64_t deadline) {
    return tr_mpsc_reserve_many(tx, permit, 1, deadline);
}

int tr_mpsc_try_reserve_many(tr_mpsc_tx *tx, tr_mpsc_permit *permit, size_t n) {
    if (!tx || !permit)
        return TR_EINVAL;
    permit_clear(permit);
    tr_mpsc_chan *ch = chan_of_tx(tx);
    if (!ch->cap)
        return TR_EINVAL;
    int rc = 0;
    mpsc_lock(ch);
    if (ch->strong == 0)
        rc = TR_EINVAL;
    else if (n > ch->cap)
        rc = TR_EFULL; /* before closed, as tokio */
    else if (ch->rx_closed)
        rc = TR_ECLOSED;
    else if (n == 0)
        rc = 0;
    else if (ch->avail < n)
        rc = TR_EFULL; /* avail > 0 means nobody waits: no barging */
    else {
        ch->avail -= n;
        permit_fill_locked(ch, permit, n);
    }
    mpsc_unlock(ch);
    return rc;
}

int tr_mpsc_try_reserve(tr_mpsc_tx *tx, tr_mpsc_permit *permit) {
    return tr_mpsc_try_reserve_many(tx, permit, 1);
}

/* ---- permits ---------------------------------------------------------------------- */

size_t tr_mpsc_permit_len(const tr_mpsc_permit *p) {
    return (p && p->chan) ? p->n : 0;
}

int tr_mpsc_permit_send(tr_mpsc_permit *p, const void *value) {
    if (!p || !value || !p->chan || p->n == 0)
        return TR_EINVAL;
    tr_mpsc_chan *ch = p->chan;
    tr_wait *wake = NULL;
    bool destroy = false, last = false;
    tr_drop_fn drop = ch->drop;
    void *drop_ctx = ch->drop_ctx;
    mpsc_lock(ch);
    ch->permits_out--;
    if (ch->rx_dropped) {
        /* Nobody will receive it: it is destroyed, its slot is free. */
        destroy = true;
        mpsc_release_locked(ch, 1, &wake);
    } else {
        mpsc_deliver_locked(ch, value, &wake);
    }
    if (--p->n == 0) {
        p->chan = NULL;
        last = mpsc_unref_locked(ch);
    }
    mpsc_check_done_locked(ch, &wake);
    mpsc_unlock(ch);
    tr_wait_wake_all(wake);
    if (destroy && drop)
        drop((void *)value, drop_ctx); /* the value was given to the channel */
    if (last)
        mpsc_chan_free(ch);
    return 0;
}

int tr_mpsc_permit_release(tr_mpsc_permit *p) {
    if (!p)
        return TR_EINVAL;
    if (!p->chan || p->n == 0) {
        permit_clear(p);
        return 0;
    }
    tr_mpsc_chan *ch = p->chan;
    tr_wait *wake = NULL;
    mpsc_lock(ch);
    ch->permits_out -= p->n;
    mpsc_release_locked(ch, p->n, &wake);
    permit_clear(p);
    bool last = mpsc_unref_locked(ch);
    mpsc_check_done_locked(ch, &wake);
    mpsc_unlock(ch);
    tr_wait_wake_all(wake);
    if (last)
        mpsc_chan_free(ch);
    return 0;
}

/* ---- closed() ------------------------------------------------------------------------ */

int tr_mpsc_tx_closed(tr_mpsc_tx *tx, int64_t deadline) {
    if (!tx)
        return TR_EINVAL;
    tr_mpsc_chan *ch = chan_of_tx(tx);
    int rc = tr_wait_enter();
    if (rc != 0)
        return rc;
    mpsc_lock(ch);
    if (ch->strong == 0 || ch->rx_closed) {
        rc = ch->strong == 0 ? TR_EINVAL : 0;
        mpsc_unlock(ch);
        return rc;
    }
    tr_waiter w;
    tr_wait e;
    tr_waiter_init(&w);
    tr_wait_init(&e, &w, NULL);
    tr_waitq_push(&ch->closedq, &e);
    mpsc_unlock(ch);
    rc = tr_waiter_park(&w, NULL, deadline);
    if (rc != 0) {
        mpsc_lock(ch);
        if (e.linked)
            tr_waitq_remove(&ch->closedq, &e);
        mpsc_unlock(ch);
    }
    return rc;
}

/* ---- select clauses ------------------------------------------------------------------- */

/* The end of an arm that claimed the waiter and did the operation:
 * records the outcome, unlocks, wakes whoever the operation completed. */
static int arm_finish(tr_mpsc_chan *ch, tr_clause *c, int rc, tr_wait **wake) {
    c->result = rc;
    mpsc_unlock(ch);
    tr_wait_wake_all(*wake);
    return TR_SELECT_DONE;
}

static int arm_lost(tr_mpsc_chan *ch) {
    mpsc_unlock(ch);
    return TR_SELECT_LOST;
}

static int send_arm(tr_clause *c, tr_wait *e) {
    tr_mpsc_chan *ch = c->obj;
    tr_wait *wake = NULL;
    int rc = 0;
    mpsc_lock(ch);
    if (ch->strong == 0)
        rc = TR_EINVAL;
    else if (ch->rx_closed)
        rc = TR_ECLOSED;
    else if (ch->cap && ch->avail == 0) {
        e->n = c->n;
        tr_waitq_push(&ch->sendq, e);
        mpsc_unlock(ch);
        return TR_SELECT_ARMED;
    }
    if (!tr_waiter_claim(e->waiter, e))
        return arm_lost(ch);
    if (rc == 0) {
        if (ch->cap)
            take_slot_and_send_locked(ch, c->buf, &wake);
        else
            rc = unb_send_locked(ch, c->buf, &wake);
    }
    return arm_finish(ch, c, rc, &wake);
}

static int reserve_arm(tr_clause *c, tr_wait *e) {
    tr_mpsc_chan *ch = c->obj;
    tr_wait *wake = NULL;
    size_t n = c->n;
    int rc = 0;
    mpsc_lock(ch);
    if (ch->strong == 0)
        rc = TR_EINVAL;
    else if (ch->rx_closed)
        rc = TR_ECLOSED;
    else if (n > 0 && ch->avail < n) {
        e->n = n - ch->avail;
        ch->avail = 0;
        tr_waitq_push(&ch->sendq, e);
        mpsc_unlock(ch);
        return TR_SELECT_ARMED;
    }
    if (!tr_waiter_claim(e->waiter, e))
        return arm_lost(ch);
    if (rc == 0 && n > 0) {
        ch->avail -= n;
        permit_fill_locked(ch, c->aux, n);
    }
    return arm_finish(ch, c, rc, &wake);
}

const tr_clause_ops mpsc_send_ops = {send_arm, sender_disarm, NULL};
const tr_clause_ops mpsc_reserve_ops = {reserve_arm, sender_disarm, NULL};

static int closed_arm(tr_clause *c, tr_wait *e) {
    tr_mpsc_chan *ch = c->obj;
    tr_wait *wake = NULL;
    mpsc_lock(ch);
    if (ch->strong != 0 && !ch->rx_closed) {
        tr_waitq_push(&ch->closedq, e);
        mpsc_unlock(ch);
        return TR_SELECT_ARMED;
    }
    if (!tr_waiter_claim(e->waiter, e))
        return arm_lost(ch);
    return arm_finish(ch, c, ch->strong == 0 ? TR_EINVAL : 0, &wake);
}

static void closed_disarm(tr_clause *c, tr_wait *e) {
    tr_mpsc_chan *ch = c->obj;
    mpsc_lock(ch);
    if (e->linked)
        tr_waitq_remove(&ch->closedq, e);
    mpsc_unlock(ch);
}

static const tr_clause_ops closed_ops = {closed_arm, closed_disarm, NULL};

static int clause_fill(tr_clause *c, const tr_clause_ops *ops, tr_mpsc_chan *ch, const void *buf,
                       size_t n, void *aux) {
    c->ops = ops;
    c->obj = ch;
    c->buf = (void *)buf;
    c->n = n;
    c->aux = aux;
    c->result = 0;
    return 0;
}

static int clause_bad(tr_clause *c) {
    if (c)
        c->ops = NULL; /* tr_select() then reports TR_EINVAL */
    return TR_EINVAL;
}

int tr_mpsc_send_clause(tr_clause *c, tr_mpsc_tx *tx, const void *value) {
    if (!c || !tx || !value)
        return clause_bad(c);
    return clause_fill(c, &mpsc_send_ops, chan_of_tx(tx), value, 1, NULL);
}

int tr_mpsc_reserve_many_clause(tr_clause *c, tr_mpsc_tx *tx, tr_mpsc_permit *permit,
                                size_t n) {
    if (!c || !tx || !permit)
        return clause_bad(c);
    tr_mpsc_chan *ch = chan_of_tx(tx);
    if (!ch->cap || n > ch->cap)
        return clause_bad(c);
    permit_clear(permit);
    return clause_fill(c, &mpsc_reserve_ops, ch, NULL, n, permit);
}

int tr_mpsc_reserve_clause(tr_clause *c, tr_mpsc_tx *tx, tr_mpsc_permit *permit) {
    return tr_mpsc_reserve_many_clause(c, tx, permit, 1);
}

int tr_mpsc_tx_closed_clause(tr_clause *c, tr_mpsc_tx *tx) {
    if (!c || !tx)
        return clause_bad(c);
    return clause_fill(c, &closed_ops, chan_of_tx(tx), NULL, 0, NULL);
}
