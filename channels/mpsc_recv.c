/* mpsc_recv.c — receiving: recv, recv_many, try_recv, close, drop.
 *
 * Why this shape: a receiver that finds values takes them under the lock
 * and, when no sender waits, only bumps the free-slot count — it never
 * touches a waiter.  When senders do wait, the slots it frees go to them
 * in order (mpsc_release_locked completes their sends into the queue), and
 * they are woken only then: a full channel costs one wake per freed slot
 * that a waiter was actually queued for, not one per message.  A receiver
 * parks only on an empty queue, and the next sender copies its value
 * straight into the parked receiver's buffer.
 *
 * Dropping the receiver destroys what is queued with the destructor
 * outside the lock, because a value may own a sender of this very channel
 * (a request carrying its reply path) whose drop takes the lock again.
 */
#include <stdlib.h>

#include "mpsc_internal.h"

/* Takes up to max values (len > 0) and frees their slots.  Emptied blocks
 * of an unbounded channel are chained onto *blocks for freeing after the
 * unlock. */
static size_t take_locked(tr_mpsc_chan *ch, unsigned char *out, size_t max, tr_wait **wake,
                          mpsc_block **blocks) {
    size_t n = ch->len < max ? ch->len : max;
    for (size_t i = 0; i < n; i++) {
        mpsc_block *b = queue_pop_locked(ch, out + i * ch->elem);
        if (b) {
            b->next = *blocks;
            *blocks = b;
        }
    }
    if (ch->cap) {
        if (tr_waitq_empty(&ch->sendq))
            ch->avail += n; /* nobody waits: no bookkeeping beyond this */
        else
            mpsc_release_locked(ch, n, wake);
    }
    return n;
}

static void after_unlock(tr_wait *wake, mpsc_block *blocks) {
    if (wake)
        tr_wait_wake_all(wake);
    if (blocks)
        mpsc_free_blocks(blocks);
}

/* Takes what is queued (len > 0): recv and recv_many.  Called with the
 * lock held; returns with it released. */
static int take_and_unlock(tr_mpsc_chan *ch, void *out, size_t max, bool many) {
    tr_wait *wake = NULL;
    mpsc_block *blocks = NULL;
    size_t n = take_locked(ch, out, max, &wake, &blocks);
    mpsc_unlock(ch);
    after_unlock(wake, blocks);
    return many ? (int)n : 0;
}

/* Nothing queued (lock held): the receiver is finished, or parks until a
 * sender hands it a value.  Returns with the lock released.  Inlined into
 * its callers, so that a wake-up returns straight into the call the user
 * made (one return fewer to mispredict after the switch).  The entry
 * carries our thread, for a sender of the same thread to claim it without
 * a compare-and-swap. */
static inline __attribute__((always_inline)) int park_and_unlock(tr_mpsc_chan *ch, void *out,
                                                                 size_t max, bool many,
                                                                 int64_t deadline) {
    if (ch->rx_dropped || rx_done_locked(ch)) {
        int rc = ch->rx_dropped ? TR_EINVAL : TR_ECLOSED;
        mpsc_unlock(ch);
        return rc;
    }
    tr_waiter w;
    tr_wait e;
    tr_waiter_init(&w);
    tr_wait_init(&e, &w, out);
    e.clause = many ? RX_PLAIN_MANY : RX_PLAIN; /* what a sender reports, and */
    e.n = mpsc_self();                          /* our thread (see the claim) */
    tr_waitq_push(&ch->rxq, &e);
    mpsc_unlock(ch);
    int rc = tr_waiter_park(&w, NULL, deadline);
    if (__builtin_expect(rc != 0, 0)) {
        mpsc_lock(ch);
        if (e.linked)
            tr_waitq_remove(&ch->rxq, &e);
        mpsc_unlock(ch);
        return rc;
    }
    return e.result;
}

/* tr_mpsc_recv but for its fast path (lock held; returns with it
 * released).  A tail call, so a wake-up returns straight to the user. */
static MPSC_HOT __attribute__((noinline)) int recv_slow_locked(tr_mpsc_chan *ch, void *out,
                                                      int64_t deadline) {
    if (ch->len > 0)
        return take_and_unlock(ch, out, 1, false);
    return park_and_unlock(ch, out, 1, false, deadline);
}

/* Lock held: the fast path of a receive applies — a bounded channel with
 * a value queued and no sender waiting touches nothing but the queue. */
static inline bool recv_fast_ok(const tr_mpsc_chan *ch) {
    return __builtin_expect(ch->len > 0 && ch->cap && tr_waitq_empty(&ch->sendq), 1);
}

/* tr_mpsc_recv from a thread that does not own the bias (a tail call). */
static MPSC_HOT __attribute__((noinline)) int recv_spin(tr_mpsc_chan *ch, void *out,
                                                        int64_t deadline) {
    mpsc_lock_spin(ch, mpsc_self());
    if (recv_fast_ok(ch)) {
        ring_pop_locked(ch, out);
        ch->avail++;
        mpsc_unlock_spin(ch);
        return 0;
    }
    return recv_slow_locked(ch, out, deadline);
}

MPSC_HOT int tr_mpsc_recv(tr_mpsc_rx *rx, void *out, int64_t deadline) {
    if (!rx || !out)
        return TR_EINVAL;
    tr_mpsc_chan *ch = chan_of_rx(rx);
    int rc = tr_wait_enter();
    if (rc != 0)
        return rc;
    if (!mpsc_lock_owner(ch, mpsc_self()))
        return recv_spin(ch, out, deadline);
    if (recv_fast_ok(ch)) {
        ring_pop_locked(ch, out);
        ch->avail++;
        mpsc_unlock_owner(ch);
        return 0;
    }
    return recv_slow_locked(ch, out, deadline);
}

int tr_mpsc_recv_many(tr_mpsc_rx *rx, void *out, size_t max, int64_t deadline) {
    if (!rx || !out)
        return TR_EINVAL;
    if (max == 0)
        return 0;
    if (max > INT32_MAX)
        max = INT32_MAX; /* the count travels in an int */
    tr_mpsc_chan *ch = chan_of_rx(rx);
    int rc = tr_wait_enter();
    if (rc != 0)
        return rc;
    mpsc_lock(ch);
    if (ch->len > 0)
        return take_and_unlock(ch, out, max, true);
    return park_and_unlock(ch, out, max, true, deadline);
}

int tr_mpsc_try_recv(tr_mpsc_rx *rx, void *out) {
    if (!rx || !out)
        return TR_EINVAL;
    tr_mpsc_chan *ch = chan_of_rx(rx);
    tr_wait *wake = NULL;
    mpsc_block *blocks = NULL;
    int rc = 0;
    mpsc_lock(ch);
    if (ch->len > 0)
        take_locked(ch, out, 1, &wake, &blocks);
    else if (ch->rx_dropped)
        rc = TR_EINVAL;
    else
        rc = rx_done_locked(ch) ? TR_ECLOSED : TR_EEMPTY;
    mpsc_unlock(ch);
    after_unlock(wake, blocks);
    return rc;
}

int tr_mpsc_rx_close(tr_mpsc_rx *rx) {
    if (!rx)
        return TR_EINVAL;
    tr_mpsc_chan *ch = chan_of_rx(rx);
    tr_wait *wake = NULL;
    mpsc_lock(ch);
    if (ch->rx_dropped) {
        mpsc_unlock(ch);
        return TR_EINVAL;
    }
    mpsc_close_locked(ch, &wake);
    mpsc_unlock(ch);
    tr_wait_wake_all(wake);
    return 0;
}

int tr_mpsc_rx_drop(tr_mpsc_rx **rxp) {
    if (!rxp || !*rxp)
        return TR_EINVAL;
    tr_mpsc_chan *ch = chan_of_rx(*rxp);
    tr_wait *wake = NULL;
    mpsc_lock(ch);
    if (ch->rx_dropped) {
        mpsc_unlock(ch);
        return TR_EINVAL;
    }
    mpsc_close_locked(ch, &wake);
    ch->rx_dropped = true;
    tr_waitq_claim_all(&ch->rxq, TR_ECLOSED, &wake); /* only if misused */
    /* Detach what is queued.  Nothing enters the queue from now on (sends
     * fail, permit sends destroy their value), so it can be destroyed
     * after the unlock without the lock. */
    size_t n = ch->len, head = ch->cap ? ch->head_off / ch->elem : 0;
    mpsc_block *list = NULL;
    size_t hidx = ch->hidx;
    ch->len = 0;
    if (ch->cap) {
        ch->avail += n; /* nobody waits any more: close failed them all */
    } else {
        list = ch->hblk;
        for (mpsc_block *b = list; b; b = b->next)
            ch->nblocks--;
        ch->hblk = ch->tblk = NULL;
        ch->hidx = ch->tidx = 0;
    }
    mpsc_unlock(ch);
    *rxp = NULL;
    tr_wait_wake_all(wake);

    if (ch->drop) {
        mpsc_block *b = list;
        for (size_t i = 0, k = ch->cap ? head : hidx; i < n; i++, k++) {
            unsigned char *v;
            if (ch->cap) {
                if (k == ch->cap)
                    k = 0;
                v = ch->ring + k * ch->elem;
            } else {
                if (k == TR_MPSC_BLOCK_CAP) {
                    b = b->next;
                    k = 0;
                }
                v = b->slots + k * ch->elem;
            }
            ch->drop(v, ch->drop_ctx);
        }
    }
    mpsc_free_blocks(list);

    mpsc_lock(ch);
    bool last = mpsc_unref_locked(ch);
    mpsc_unlock(ch);
    if (last)
        mpsc_chan_free(ch);
    return 0;
}

/* ---- select clauses --------------------------------------------------------------- */

static int recv_arm_common(tr_clause *c, tr_wait *e, bool many) {
    tr_mpsc_chan *ch = c->obj;
    tr_wait *wake = NULL;
    mpsc_block *blocks = NULL;
    mpsc_lock(ch);
    bool ready = ch->len > 0 || ch->rx_dropped || rx_done_locked(ch) || (many && c->n == 0);
    if (!ready) {
        e->n = many ? c->n : 0;
        tr_waitq_push(&ch->rxq, e);
        mpsc_unlock(ch);
        return TR_SELECT_ARMED;
    }
    if (!tr_waiter_claim(e->waiter, e)) {
        mpsc_unlock(ch);
        return TR_SELECT_LOST;
    }
    if (many && c->n == 0)
        c->result = 0;
    else if (ch->len > 0) {
        size_t n = take_locked(ch, c->buf, many ? c->n : 1, &wake, &blocks);
        c->result = many ? (int)n : 0;
    } else
        c->result = ch->rx_dropped ? TR_EINVAL : TR_ECLOSED;
    mpsc_unlock(ch);
    after_unlock(wake, blocks);
    return TR_SELECT_DONE;
}

static int recv_arm(tr_clause *c, tr_wait *e) { return recv_arm_common(c, e, false); }
static int recv_many_arm(tr_clause *c, tr_wait *e) { return recv_arm_common(c, e, true); }

static void recv_disarm(tr_clause *c, tr_wait *e) {
    tr_mpsc_chan *ch = c->obj;
    mpsc_lock(ch);
    if (e->linked)
        tr_waitq_remove(&ch->rxq, e);
    mpsc_unlock(ch);
}

static const tr_clause_ops recv_ops = {recv_arm, recv_disarm, NULL};
static const tr_clause_ops recv_many_ops = {recv_many_arm, recv_disarm, NULL};

static int fill(tr_clause *c, const tr_clause_ops *ops, tr_mpsc_rx *rx, void *out, size_t n) {
    c->ops = ops;
    c->obj = chan_of_rx(rx);
    c->buf = out;
    c->n = n;
    c->aux = NULL;
    c->result = 0;
    return 0;
}

int tr_mpsc_recv_clause(tr_clause *c, tr_mpsc_rx *rx, void *out) {
    if (!c || !rx || !out) {
        if (c)
            c->ops = NULL;
        return TR_EINVAL;
    }
    return fill(c, &recv_ops, rx, out, 1);
}

int tr_mpsc_recv_many_clause(tr_clause *c, tr_mpsc_rx *rx, void *out, size_t max) {
    if (!c || !rx || !out) {
        if (c)
            c->ops = NULL;
        return TR_EINVAL;
    }
    return fill(c, &recv_many_ops, rx, out, max > INT32_MAX ? INT32_MAX : max);
}
