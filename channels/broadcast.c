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
#include "tr_broadcast.h"

#include <sched.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "tr_wait.h"

/* state = tag << REM_BITS | rem, tag = pos mod 2^40.  The tag only has to
 * change when the slot is rewritten (the full position sits in `pos`), so
 * its width only bounds receivers: at most REM_MAX at once. */
#define REM_BITS 24
#define REM_MASK ((UINT64_C(1) << REM_BITS) - 1)
#define REM_BUSY REM_MASK /* the value is being destroyed or replaced */
#define REM_MAX (REM_MASK - 1)
#define FAST_MAX 64 /* largest value received without the lock */

static inline uint64_t mkstate(uint64_t pos, uint64_t rem) { return pos << REM_BITS | rem; }
static inline uint64_t rem_of(uint64_t st) { return st & REM_MASK; }
static inline bool tag_is(uint64_t st, uint64_t pos) {
    return (st & ~REM_MASK) == pos << REM_BITS;
}

/* A slot: state, the full position, then the value (16-aligned, for
 * destructors that read it as a struct). */
typedef struct slot {
    _Atomic uint64_t state;
    _Atomic uint64_t pos;
    _Atomic uint64_t val[];
} slot;

/* The channel.  A sender handle is a pointer to it (cloning a sender only
 * counts).  What receivers read on every receive is fixed at creation and
 * kept in each receiver; the fields the sender writes on every send live on
 * their own cache line. */
struct tr_broadcast_tx {
    /* Fixed at creation. */
    unsigned char *slots;
    size_t mask; /* L - 1 */
    size_t elem_size;
    size_t slot_size;
    tr_drop_fn drop;
    tr_broadcast_clone_fn clone;
    void *ctx;
    bool track; /* rem is kept (a destructor must run at rem 0) */
    /* Under lock. */
    alignas(64) tr_spin lock;
    uint64_t tail;    /* the next position to write */
    size_t rx_cnt;    /* live receivers */
    size_t tx_cnt;    /* live sender handles */
    bool tx_gone;     /* tx_cnt reached 0: receivers close once caught up */
    tr_waitq rxq;     /* parked receives (clauses of tr_broadcast_recv) */
    tr_waitq closedq; /* tr_broadcast_closed() waiters */
    tr_broadcast_rx *rxs; /* every live receiver, for len() */
};

typedef struct tr_broadcast_tx chan;

/* One cache line per receiver, so that cursors of receivers on different
 * cores never share one. */
struct tr_broadcast_rx {
    /* The next position this receiver wants.  Written by its owner (or by
     * a send completing its parked receive), read by len() under the lock. */
    alignas(64) _Atomic uint64_t next;
    chan *ch;
    unsigned char *slots; /* copies of ch's, to spare a line per receive */
    size_t mask, elem_size, slot_size;
    bool fast;  /* may receive without the lock */
    bool track; /* ch->track */
    struct tr_broadcast_rx *prev, *succ; /* ch->rxs, under the lock */
};

static inline uint64_t cursor(const tr_broadcast_rx *rx) {
    return atomic_load_explicit(&rx->next, memory_order_relaxed);
}

static inline void set_cursor(tr_broadcast_rx *rx, uint64_t pos) {
    atomic_store_explicit(&rx->next, pos, memory_order_relaxed);
}

static inline slot *slot_at(const chan *ch, uint64_t pos) {
    return (slot *)(ch->slots + (size_t)(pos & ch->mask) * ch->slot_size);
}

static inline uint64_t ring_len(const chan *ch) { return (uint64_t)ch->mask + 1; }

/* ---- values, word by word ---------------------------------------------------- */

static inline void load_val(slot *s, void *dst, size_t n, memory_order mo) {
    unsigned char *d = dst;
    size_t i = 0;
    for (; n >= 8; n -= 8, i++) {
        uint64_t v = atomic_load_explicit(&s->val[i], mo);
        memcpy(d + 8 * i, &v, 8);
    }
    if (n) {
        uint64_t v = atomic_load_explicit(&s->val[i], mo);
        memcpy(d + 8 * i, &v, n);
    }
}

static inline void store_val(slot *s, const void *src, size_t n) {
    const unsigned char *p = src;
    size_t i = 0;
    for (; n >= 8; n -= 8, i++) {
        uint64_t v;
        memcpy(&v, p + 8 * i, 8);
        atomic_store_explicit(&s->val[i], v, memory_order_release);
    }
    if (n) {
        uint64_t v = 0;
        memcpy(&v, p + 8 * i, n);
        atomic_store_explicit(&s->val[i], v, memory_order_release);
    }
}

/* memcpy with the common sizes inlined: the copy sits in every receive. */
static inline void copy_out(void *dst, const void *src, size_t n) {
    switch (n) {
    case 4: memcpy(dst, src, 4); break;
    case 8: memcpy(dst, src, 8); break;
    case 16: memcpy(dst, src, 16); break;
    default: memcpy(dst, src, n); break;
    }
}

static inline void destroy(chan *ch, slot *s) {
    if (ch->drop)
        ch->drop((void *)s->val, ch->ctx);
}

/* One counted receiver is done with the value in s.  Lock held, so no send
 * can be replacing it, and since the caller is counted nobody else can be
 * destroying it: whoever brings rem to 0 destroys it right here. */
static inline void release_locked(chan *ch, slot *s) {
    if (!ch->track)
        return;
    uint64_t old = atomic_fetch_sub_explicit(&s->state, 1, memory_order_acq_rel);
    if (rem_of(old) == 1)
        destroy(ch, s);
}

/* Copies the value at the receiver's cursor into out and advances it.  Lock
 * held; the value at the cursor is live and counts rx. */
static inline void take_locked(chan *ch, tr_broadcast_rx *rx, slot *s, void *out) {
    load_val(s, out, ch->elem_size, memory_order_relaxed);
    if (ch->clone)
        ch->clone(out, ch->ctx);
    set_cursor(rx, cursor(rx) + 1);
    release_locked(ch, s);
}

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
