/* broadcast.c — tokio::sync::broadcast for C: a ring of slots, read
 * without a lock.
 *
 * The bookkeeping is tokio's.  The slot of position `pos` (index pos % L)
 * holds the value and `rem`, the number of receivers counted at its send
 * that have neither received nor skipped it.  A value is destroyed exactly
 * once, by whoever ends its life:
 *   - the receive (or receiver drop) that takes rem from 1 to 0;
 *   - the send that overwrites it while rem > 0 (someone lagged);
 *   - freeing the channel, if rem > 0 then (cannot happen: when the last
 *     receiver goes every rem is 0; kept as a safety net).
 * rem == 0 thus also means "the slot holds no live value".  rem is kept
 * only when there is a destructor to run (`track`); without one nothing
 * depends on it, and tokio's Sender::len() is computed from the receivers'
 * cursors instead (see owed_locked()).
 *
 * Why receivers take no lock.  A first version guarded everything with the
 * channel's spin lock; with eight receivers on two cores, half the time
 * went into spinning on it.  Now a slot's position tag and rem share one
 * atomic word, `state`, and a send marks it BUSY before rewriting the slot
 * and stores the new tag after: a seqlock whose sequence number is the
 * position.  A receive loads state, checks the tag, copies the value, then
 *   - without a destructor: loads state again; unchanged means the copy is
 *     whole.  No atomic read-modify-write at all: the slot's cache line is
 *     only read by the receivers, which is what makes fan-out cheap;
 *   - with one: compare-and-swaps rem - 1 into state, which both proves the
 *     copy whole and counts the receiver off.  The receiver that takes rem
 *     from 1 to 0 holds the word at BUSY while it runs the destructor; a
 *     send that wants the slot waits for BUSY to clear, and destroys the
 *     old value itself if rem was still > 0.
 * Copies go through acquire/release atomics, word by word, so the races
 * the seqlock resolves are not data races (ThreadSanitizer agrees).
 *
 * The channel lock remains for what is rare or must be atomic as a whole:
 * sending (tail + slot + hand-over), parking, subscribing, dropping, and
 * receives that are not the plain "a value is here" case (empty, lag,
 * closed), and every receive of a channel with a clone hook (the clone
 * must run on a value no send can overwrite) or with values over 64 bytes
 * (the fast path copies into a stack buffer first, so that a receive that
 * loses the race leaves the caller's buffer untouched).
 *
 * Waiting.  A receiver parks only when it has read everything (its cursor
 * equals the tail, checked under the lock), so the next send's value is
 * the one each parked receiver wants: the send completes their receives
 * itself (copy, cursor + 1, rem - 1), as tr_select's clause rules ask, and
 * wakes them after unlocking.  Running receivers are not in the queue and
 * are not woken: they find the value on their next receive.
 */
#include "broadcast_internal.h"

/* ---- the lock-free receive ------------------------------------------------------ */

/* Takes the value at the receiver's cursor if it is there; false sends the
 * caller to the locked path (empty, lagged, closed, or a race it would
 * rather not settle).  Reads go through acquire loads: if one of them reads
 * a replacing send's store, that send's claim of the slot (BUSY, a new tag)
 * is visible to the state access that follows, which then fails. */
static inline bool fast_take(tr_broadcast_rx *rx, void *out) {
    uint64_t next = cursor(rx);
    slot *s = (slot *)(rx->slots + (size_t)(next & rx->mask) * rx->slot_size);
    unsigned char buf[FAST_MAX];
    uint64_t st = atomic_load_explicit(&s->state, memory_order_acquire);
    for (;;) {
        uint64_t rem = rem_of(st);
        if (!tag_is(st, next) || rem == REM_BUSY || (rx->track && rem == 0))
            return false;
        if (atomic_load_explicit(&s->pos, memory_order_acquire) != next)
            return false;
        load_val(s, buf, rx->elem_size, memory_order_acquire);
        if (!rx->track) {
            /* A seqlock read: the state unchanged means the copy is whole. */
            uint64_t again = atomic_load_explicit(&s->state, memory_order_relaxed);
            if (again == st)
                break;
            st = again;
            continue;
        }
        /* Counting: the CAS both proves the copy whole and counts us.  It
         * fails mostly because another receiver counted itself off; the
         * copy stays good as long as the tag is ours and no send has
         * marked the slot BUSY, so then only the CAS is retried. */
        for (;;) {
            bool last = rem == 1;
            uint64_t to = last ? (st | REM_BUSY) : st - 1;
            if (atomic_compare_exchange_weak_explicit(&s->state, &st, to,
                                                      memory_order_acq_rel,
                                                      memory_order_acquire)) {
                if (last) {
                    destroy(rx->ch, s);
                    atomic_store_explicit(&s->state, st & ~REM_MASK, memory_order_release);
                }
                goto taken;
            }
            rem = rem_of(st);
            if (!tag_is(st, next) || rem == REM_BUSY || rem == 0)
                return false; /* overwritten meanwhile: the locked path sorts it out */
        }
    }
taken:
    copy_out(out, buf, rx->elem_size);
    set_cursor(rx, next + 1);
    return true;
}

/* ---- the locked receive ---------------------------------------------------------- */

enum { ST_VALUE, ST_EMPTY, ST_CLOSED, ST_LAGGED };

/* What a receive would find now.  Lock held: the positions in
 * [tail - L, tail) are all in the ring, nothing older is. */
static inline int peek(const chan *ch, const tr_broadcast_rx *rx) {
    uint64_t behind = ch->tail - cursor(rx);
    if (behind == 0)
        return ch->tx_gone ? ST_CLOSED : ST_EMPTY;
    return behind > ring_len(ch) ? ST_LAGGED : ST_VALUE;
}

/* Completes a receive whose state `st` (not ST_EMPTY) peek() just gave.
 * Lock held.  Returns the receive's result. */
static int complete(chan *ch, tr_broadcast_rx *rx, int st, void *out, uint64_t *missed) {
    switch (st) {
    case ST_VALUE:
        take_locked(ch, rx, slot_at(ch, cursor(rx)), out);
        return 0;
    case ST_CLOSED:
        return TR_ECLOSED;
    default: {
        /* Overrun: everything before tail - L is gone.  The overwritten
         * values counted this receiver and were destroyed by the sends that
         * overwrote them; from `oldest` on, rem still counts it. */
        uint64_t oldest = ch->tail - ring_len(ch);
        if (missed)
            *missed = oldest - cursor(rx);
        set_cursor(rx, oldest);
        return TR_ELAGGED;
    }
    }
}

/* ---- send ------------------------------------------------------------------------ */

/* The receive a parked clause was waiting for: container_of its entry. */
static inline tr_clause *clause_of(tr_wait *e) {
    return (tr_clause *)((char *)e - offsetof(tr_clause, entry));
}

/* Takes slot s away from its old value before a send rewrites it, marking
 * it BUSY: the seqlock's "writing" mark.  When counting, first waits out a
 * receiver that is destroying the old value, and destroys it itself if a
 * receiver was still owed it (that receiver lagged).  Lock held. */
static inline void claim_slot(chan *ch, slot *s) {
    uint64_t st = atomic_load_explicit(&s->state, memory_order_acquire);
    if (!ch->track) { /* nobody else writes state */
        atomic_store_explicit(&s->state, st | REM_BUSY, memory_order_relaxed);
        return;
    }
    for (unsigned spins = 0;; spins++) {
        if (rem_of(st) == REM_BUSY) {
            /* The last receiver is running the destructor: brief, but its
             * thread may have been preempted, so yield after a while. */
            if (spins < 64) {
#if defined(__x86_64__) || defined(__i386__)
                __builtin_ia32_pause();
#endif
            } else {
                sched_yield();
            }
            st = atomic_load_explicit(&s->state, memory_order_acquire);
            continue;
        }
        if (atomic_compare_exchange_weak_explicit(&s->state, &st, st | REM_BUSY,
                                                  memory_order_acq_rel, memory_order_acquire))
            break;
    }
    if (rem_of(st) > 0)
        destroy(ch, s);
}

int tr_broadcast_send(tr_broadcast_tx *tx, const void *value, size_t *receivers_out) {
    if (!tx || !value)
        return TR_EINVAL;
    chan *ch = tx;
    tr_spin_lock(&ch->lock);
    size_t n = ch->rx_cnt;
    if (n == 0) {
        tr_spin_unlock(&ch->lock);
        return TR_ECLOSED;
    }
    uint64_t pos = ch->tail++;
    slot *s = slot_at(ch, pos);
    claim_slot(ch, s);
    /* Release stores: a receiver whose acquire load reads one of them also
     * sees the BUSY mark above (see fast_take). */
    atomic_store_explicit(&s->pos, pos, memory_order_release);
    store_val(s, value, ch->elem_size);
    atomic_store_explicit(&s->state, mkstate(pos, ch->track ? n : 0), memory_order_release);
    /* Hand the value to every parked receiver (each is at `pos`). */
    tr_wait *woken = NULL, *e;
    while ((e = tr_waitq_claim_next(&ch->rxq)) != NULL) {
        tr_clause *c = clause_of(e);
        take_locked(ch, c->obj, s, c->buf);
        e->result = 0;
        e->next = woken;
        woken = e;
    }
    tr_spin_unlock(&ch->lock);
    tr_wait_wake_all(woken);
    if (receivers_out)
        *receivers_out = n;
    return 0;
}

/* ---- receive ------------------------------------------------------------------- */

int tr_broadcast_try_recv(tr_broadcast_rx *rx, void *out, uint64_t *missed) {
    if (!rx || !out)
        return TR_EINVAL;
    if (rx->fast && fast_take(rx, out))
        return 0;
    chan *ch = rx->ch;
    tr_spin_lock(&ch->lock);
    int st = peek(ch, rx);
    int rc = st == ST_EMPTY ? TR_EEMPTY : complete(ch, rx, st, out, missed);
    tr_spin_unlock(&ch->lock);
    return rc;
}

static int recv_arm(tr_clause *c, tr_wait *e) {
    tr_broadcast_rx *rx = c->obj;
    if (!rx || !c->buf) {
        if (!tr_waiter_claim(e->waiter, e))
            return TR_SELECT_LOST;
        c->result = TR_EINVAL;
        return TR_SELECT_DONE;
    }
    chan *ch = rx->ch;
    tr_spin_lock(&ch->lock);
    int st = peek(ch, rx);
    if (st == ST_EMPTY) {
        tr_waitq_push(&ch->rxq, e);
        tr_spin_unlock(&ch->lock);
        return TR_SELECT_ARMED;
    }
    if (!tr_waiter_claim(e->waiter, e)) {
        tr_spin_unlock(&ch->lock);
        return TR_SELECT_LOST;
    }
    c->result = complete(ch, rx, st, c->buf, c->aux);
    tr_spin_unlock(&ch->lock);
    return TR_SELECT_DONE;
}

static void recv_disarm(tr_clause *c, tr_wait *e) {
    tr_broadcast_rx *rx = c->obj;
    if (!rx || !c->buf)
        return;
    chan *ch = rx->ch;
    tr_spin_lock(&ch->lock);
    if (e->linked)
        tr_waitq_remove(&ch->rxq, e);
    tr_spin_unlock(&ch->lock);
}

static const tr_clause_ops recv_ops = {recv_arm, recv_disarm, NULL};

void tr_broadcast_recv_clause(tr_clause *c, tr_broadcast_rx *rx, void *out, uint64_t *missed) {
    c->ops = &recv_ops;
    c->obj = rx;
    c->buf = out;
    c->aux = missed;
    c->n = 0;
    c->result = 0;
}

/* Everything but "a value is here": lag, closed, parking.  Out of line, so
 * that the fast path keeps a small frame. */
static __attribute__((noinline)) int recv_slow(tr_broadcast_rx *rx, void *out,
                                               uint64_t *missed, int64_t deadline) {
    chan *ch = rx->ch;
    tr_spin_lock(&ch->lock);
    int st = peek(ch, rx);
    if (st != ST_EMPTY) {
        int rc = complete(ch, rx, st, out, missed);
        tr_spin_unlock(&ch->lock);
        return rc;
    }
    /* Park as a one-clause select would, so that send() completes plain
     * receives and select clauses alike. */
    tr_clause c;
    tr_broadcast_recv_clause(&c, rx, out, missed);
    tr_waiter w;
    tr_waiter_init(&w);
    tr_wait_init(&c.entry, &w, out);
    tr_waitq_push(&ch->rxq, &c.entry);
    int rc = tr_waiter_park(&w, &ch->lock, deadline);
    if (rc != 0) {
        tr_spin_lock(&ch->lock);
        if (c.entry.linked)
            tr_waitq_remove(&ch->rxq, &c.entry);
        tr_spin_unlock(&ch->lock);
        return rc;
    }
    return c.entry.result;
}

int tr_broadcast_recv(tr_broadcast_rx *rx, void *out, uint64_t *missed, int64_t deadline) {
    if (!rx || !out)
        return TR_EINVAL;
    int rc = tr_wait_enter();
    if (rc != 0)
        return rc;
    if (rx->fast && fast_take(rx, out))
        return 0;
    return recv_slow(rx, out, missed, deadline);
}

/* ---- closed ------------------------------------------------------------------- */

static int closed_arm(tr_clause *c, tr_wait *e) {
    chan *ch = c->obj;
    if (ch)
        tr_spin_lock(&ch->lock);
    if (ch && ch->rx_cnt > 0) {
        tr_waitq_push(&ch->closedq, e);
        tr_spin_unlock(&ch->lock);
        return TR_SELECT_ARMED;
    }
    bool won = tr_waiter_claim(e->waiter, e);
    if (ch)
        tr_spin_unlock(&ch->lock);
    if (!won)
        return TR_SELECT_LOST;
    c->result = ch ? 0 : TR_EINVAL;
    return TR_SELECT_DONE;
}

static void closed_disarm(tr_clause *c, tr_wait *e) {
    chan *ch = c->obj;
    if (!ch)
        return;
    tr_spin_lock(&ch->lock);
    if (e->linked)
        tr_waitq_remove(&ch->closedq, e);
    tr_spin_unlock(&ch->lock);
}

static const tr_clause_ops closed_ops = {closed_arm, closed_disarm, NULL};

void tr_broadcast_closed_clause(tr_clause *c, tr_broadcast_tx *tx) {
    c->ops = &closed_ops;
    c->obj = tx;
    c->buf = c->aux = NULL;
    c->n = 0;
    c->result = 0;
}

int tr_broadcast_closed(tr_broadcast_tx *tx, int64_t deadline) {
    if (!tx)
        return TR_EINVAL;
    int rc = tr_wait_enter();
    if (rc != 0)
        return rc;
    chan *ch = tx;
    tr_spin_lock(&ch->lock);
    if (ch->rx_cnt == 0) {
        tr_spin_unlock(&ch->lock);
        return 0;
    }
    tr_waiter w;
    tr_wait e;
    tr_waiter_init(&w);
    tr_wait_init(&e, &w, NULL);
    tr_waitq_push(&ch->closedq, &e);
    rc = tr_waiter_park(&w, &ch->lock, deadline);
    if (rc != 0) {
        tr_spin_lock(&ch->lock);
        if (e.linked)
            tr_waitq_remove(&ch->closedq, &e);
        tr_spin_unlock(&ch->lock);
    }
    return rc;
}
