/* broadcast_handles.c — making a broadcast channel, its handles, and the
 * queries that never wait.
 *
 * A receiver is its own cache line (aligned_alloc 64): its cursor is
 * written by every receive and must not share a line with another's.
 * The channel is freed when the last handle of either kind goes; then
 * every value still stored is destroyed once.
 */
#include "broadcast_internal.h"

/* ---- creation and handles --------------------------------------------------- */

static tr_broadcast_rx *rx_alloc(chan *ch) {
    tr_broadcast_rx *rx = aligned_alloc(64, sizeof(tr_broadcast_rx));
    if (rx) {
        atomic_init(&rx->next, 0);
        rx->ch = ch;
        rx->slots = ch->slots;
        rx->mask = ch->mask;
        rx->elem_size = ch->elem_size;
        rx->slot_size = ch->slot_size;
        rx->fast = !ch->clone && ch->elem_size <= FAST_MAX;
        rx->track = ch->track;
        rx->prev = rx->succ = NULL;
    }
    return rx;
}

/* Lock held (or the channel not yet shared). */
static void rx_link(chan *ch, tr_broadcast_rx *rx) {
    rx->prev = NULL;
    rx->succ = ch->rxs;
    if (ch->rxs)
        ch->rxs->prev = rx;
    ch->rxs = rx;
}

static void rx_unlink(chan *ch, tr_broadcast_rx *rx) {
    if (rx->prev)
        rx->prev->succ = rx->succ;
    else
        ch->rxs = rx->succ;
    if (rx->succ)
        rx->succ->prev = rx->prev;
}

static void chan_free(chan *ch) {
    for (uint64_t i = 0; ch->track && i <= ch->mask; i++) {
        slot *s = slot_at(ch, i);
        if (rem_of(atomic_load_explicit(&s->state, memory_order_relaxed)) > 0)
            destroy(ch, s);
    }
    free(ch->slots);
    free(ch);
}

int tr_broadcast_new_clone(tr_broadcast_tx **tx, tr_broadcast_rx **rx, size_t capacity,
                           size_t elem_size, const tr_chan_opts *opts,
                           tr_broadcast_clone_fn clone) {
    if (!tx || !rx || capacity == 0 || capacity > SIZE_MAX / 2 || elem_size == 0 ||
        elem_size > SIZE_MAX / 4)
        return TR_EINVAL;
    size_t len = 1;
    while (len < capacity)
        len <<= 1;
    size_t slot_size = (sizeof(slot) + elem_size + 15) & ~(size_t)15;
    if (len > (SIZE_MAX - 63) / slot_size)
        return TR_ENOMEM;
    chan *ch = aligned_alloc(64, (sizeof *ch + 63) & ~(size_t)63);
    if (!ch)
        return TR_ENOMEM;
    memset(ch, 0, sizeof *ch);
    ch->slots = aligned_alloc(64, (len * slot_size + 63) & ~(size_t)63);
    if (!ch->slots) {
        free(ch);
        return TR_ENOMEM;
    }
    ch->mask = len - 1;
    ch->elem_size = elem_size;
    ch->slot_size = slot_size;
    if (opts) {
        ch->drop = opts->drop;
        ch->ctx = opts->drop_ctx;
    }
    ch->clone = clone;
    ch->track = ch->drop != NULL;
    tr_broadcast_rx *r = rx_alloc(ch);
    if (!r) {
        free(ch->slots);
        free(ch);
        return TR_ENOMEM;
    }
    for (size_t i = 0; i < len; i++) {
        slot *s = slot_at(ch, i);
        /* "One lap before i", empty: a receiver at i finds nothing. */
        atomic_init(&s->state, mkstate((uint64_t)i - len, 0));
        atomic_init(&s->pos, (uint64_t)i - len);
        for (size_t w = 0; w < (slot_size - sizeof(slot)) / 8; w++)
            atomic_init(&s->val[w], 0);
    }
    tr_spin_init(&ch->lock);
    tr_waitq_init(&ch->rxq);
    tr_waitq_init(&ch->closedq);
    ch->tail = 0;
    ch->rx_cnt = 1;
    ch->tx_cnt = 1;
    ch->tx_gone = false;
    rx_link(ch, r);
    *tx = ch;
    *rx = r;
    return 0;
}

int tr_broadcast_new_ex(tr_broadcast_tx **tx, tr_broadcast_rx **rx, size_t capacity,
                        size_t elem_size, const tr_chan_opts *opts) {
    return tr_broadcast_new_clone(tx, rx, capacity, elem_size, opts, NULL);
}

int tr_broadcast_new(tr_broadcast_tx **tx, tr_broadcast_rx **rx, size_t capacity,
                     size_t elem_size) {
    return tr_broadcast_new_clone(tx, rx, capacity, elem_size, NULL, NULL);
}

int tr_broadcast_tx_clone(tr_broadcast_tx *tx, tr_broadcast_tx **out) {
    if (!tx || !out)
        return TR_EINVAL;
    tr_spin_lock(&tx->lock);
    tx->tx_cnt++;
    tr_spin_unlock(&tx->lock);
    *out = tx;
    return 0;
}

int tr_broadcast_tx_drop(tr_broadcast_tx **txp) {
    if (!txp || !*txp)
        return TR_EINVAL;
    chan *ch = *txp;
    *txp = NULL;
    tr_wait *woken = NULL;
    tr_spin_lock(&ch->lock);
    bool last = --ch->tx_cnt == 0;
    if (last) {
        /* Parked receivers are caught up (they park only then): each
         * receive ends with TR_ECLOSED. */
        ch->tx_gone = true;
        tr_waitq_claim_all(&ch->rxq, TR_ECLOSED, &woken);
    }
    bool free_it = last && ch->rx_cnt == 0;
    tr_spin_unlock(&ch->lock);
    tr_wait_wake_all(woken);
    if (free_it)
        chan_free(ch);
    return 0;
}

/* Adds a receiver at the tail.  Lock not held. */
static int subscribe(chan *ch, tr_broadcast_rx **out) {
    tr_broadcast_rx *rx = rx_alloc(ch);
    if (!rx)
        return TR_ENOMEM;
    tr_spin_lock(&ch->lock);
    if (ch->rx_cnt >= REM_MAX) {
        tr_spin_unlock(&ch->lock);
        free(rx);
        return TR_ENOMEM;
    }
    ch->rx_cnt++;
    set_cursor(rx, ch->tail);
    rx_link(ch, rx);
    tr_spin_unlock(&ch->lock);
    *out = rx;
    return 0;
}

int tr_broadcast_subscribe(tr_broadcast_tx *tx, tr_broadcast_rx **out) {
    if (!tx || !out)
        return TR_EINVAL;
    return subscribe(tx, out);
}

int tr_broadcast_resubscribe(tr_broadcast_rx *rx, tr_broadcast_rx **out) {
    if (!rx || !out)
        return TR_EINVAL;
    return subscribe(rx->ch, out);
}

int tr_broadcast_rx_drop(tr_broadcast_rx **rxp) {
    if (!rxp || !*rxp)
        return TR_EINVAL;
    tr_broadcast_rx *rx = *rxp;
    chan *ch = rx->ch;
    *rxp = NULL;
    tr_wait *woken = NULL;
    tr_spin_lock(&ch->lock);
    /* Release what it was still owed: from its cursor, or from the oldest
     * value kept if it lagged (the older ones were destroyed on
     * overwrite). */
    uint64_t from = cursor(rx);
    if (ch->tail - from > ring_len(ch))
        from = ch->tail - ring_len(ch);
    for (uint64_t p = from; ch->track && p != ch->tail; p++)
        release_locked(ch, slot_at(ch, p));
    rx_unlink(ch, rx);
    bool last = --ch->rx_cnt == 0;
    if (last)
        tr_waitq_claim_all(&ch->closedq, 0, &woken);
    bool free_it = last && ch->tx_cnt == 0;
    tr_spin_unlock(&ch->lock);
    tr_wait_wake_all(woken);
    free(rx);
    if (free_it)
        chan_free(ch);
    return 0;
}

/* ---- queries -------------------------------------------------------------------- */

/* Queries lock a channel they were handed as const: the lock is not part
 * of the channel's observable state. */
static inline chan *unconst(const chan *ch) { return (chan *)(uintptr_t)ch; }

size_t tr_broadcast_receiver_count(const tr_broadcast_tx *tx) {
    if (!tx)
        return 0;
    chan *ch = unconst(tx);
    tr_spin_lock(&ch->lock);
    size_t n = ch->rx_cnt;
    tr_spin_unlock(&ch->lock);
    return n;
}

size_t tr_broadcast_sender_count(const tr_broadcast_tx *tx) {
    if (!tx)
        return 0;
    chan *ch = unconst(tx);
    tr_spin_lock(&ch->lock);
    size_t n = ch->tx_cnt;
    tr_spin_unlock(&ch->lock);
    return n;
}

size_t tr_broadcast_capacity(const tr_broadcast_tx *tx) { return tx ? tx->mask + 1 : 0; }

/* Values some receiver has not seen, at most L: tokio's Sender::len, which
 * counts slots with rem > 0.  Computed from the cursors rather than from
 * rem (kept only when a destructor needs it): every receiver counted for a
 * value and not done with it has its cursor at or before it, and one that
 * subscribed later has its cursor after it, so the owed values are those
 * from the slowest cursor (or the oldest value kept) to the tail — tokio's
 * own invariant, tx.len() == min(max(rx_i.len()), L).  Lock held. */
static uint64_t owed_locked(const chan *ch) {
    uint64_t most = 0;
    for (const tr_broadcast_rx *rx = ch->rxs; rx; rx = rx->succ) {
        uint64_t behind = ch->tail - cursor(rx);
        if (behind > most)
            most = behind;
    }
    return most < ring_len(ch) ? most : ring_len(ch);
}

size_t tr_broadcast_len(const tr_broadcast_tx *tx) {
    if (!tx)
        return 0;
    chan *ch = unconst(tx);
    tr_spin_lock(&ch->lock);
    size_t n = (size_t)owed_locked(ch);
    tr_spin_unlock(&ch->lock);
    return n;
}

bool tr_broadcast_is_empty(const tr_broadcast_tx *tx) { return tr_broadcast_len(tx) == 0; }

bool tr_broadcast_same_channel(const tr_broadcast_tx *a, const tr_broadcast_tx *b) {
    return a && a == b;
}

uint64_t tr_broadcast_rx_len(const tr_broadcast_rx *rx) {
    if (!rx)
        return 0;
    chan *ch = rx->ch;
    tr_spin_lock(&ch->lock);
    uint64_t n = ch->tail - cursor(rx);
    tr_spin_unlock(&ch->lock);
    return n;
}

bool tr_broadcast_rx_is_empty(const tr_broadcast_rx *rx) { return tr_broadcast_rx_len(rx) == 0; }

bool tr_broadcast_rx_is_closed(const tr_broadcast_rx *rx) {
    if (!rx)
        return true;
    chan *ch = rx->ch;
    tr_spin_lock(&ch->lock);
    bool gone = ch->tx_gone;
    tr_spin_unlock(&ch->lock);
    return gone;
}

bool tr_broadcast_rx_same_channel(const tr_broadcast_rx *a, const tr_broadcast_rx *b) {
    return a && b && a->ch == b->ch;
}
