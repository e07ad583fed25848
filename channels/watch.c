/* watch.c — the latest value, for many readers, with cheap writes.
 *
 * Everything a writer and a waiting reader agree on lives in one 64-bit
 * word beside the version counter and, for small values, the value itself
 * (one cache line, so a send moves one line between cores):
 *
 *   word = gen << 3 | CLOSED | WAITERS | WRITING
 *
 *   WRITING  a sender is inside its section.  It is the senders' mutex and
 *            the "odd" phase of the seqlock; nobody but its holder changes
 *            the word while it is set, so the holder unlocks with a store.
 *   WAITERS  some receiver is parked in changed().  A parker sets it under
 *            the queue lock, by CAS, only while no write is in progress, so
 *            the writer learns it from the same CAS that locks: a send
 *            costs that one atomic instruction unless somebody waits.
 *   CLOSED   every sender is gone.
 *   gen      counts every write, announced or silent, for the seqlock.
 *
 * `vers` counts announced changes only (what "seen" compares with).  A
 * woken writer hands the queue over under the queue lock and claims only
 * the receivers whose wait is really over (version moved or closed), so a
 * claimed select clause is never a spurious wake-up.
 *
 * Two reading modes (see tr_watch.h): small plain values are read through
 * the seqlock with relaxed atomic word copies (race-free for TSan and the
 * C11 model, and readers write nothing shared); larger values and values
 * with a destructor are read under a reader count that writers drain, so
 * a ref can point into the channel and a replaced value is destroyed only
 * when nobody can see it.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "watch_internal.h"


/* ---- the value ------------------------------------------------------------- */

static void seq_copy_out(chan *ch, uint64_t *dst) {
    for (size_t i = 0; i < ch->nwords; i++)
        dst[i] = atomic_load_explicit(&ch->words[i], memory_order_relaxed);
}

static inline void seq_copy_in(chan *ch, const void *src) {
    const unsigned char *p = src;
    size_t full = ch->size / 8, i;
    for (i = 0; i < full; i++) { /* constant-size copies: no call */
        uint64_t x;
        memcpy(&x, p + 8 * i, 8);
        atomic_store_explicit(&ch->words[i], x, memory_order_relaxed);
    }
    if (ch->size % 8) {
        uint64_t x = 0; /* the padding of the last word */
        memcpy(&x, p + 8 * i, ch->size % 8);
        atomic_store_explicit(&ch->words[i], x, memory_order_relaxed);
    }
}

/* A consistent copy of the value in seqlock mode; returns its version. */
static uint64_t seq_read(chan *ch, uint64_t *dst) {
    unsigned spins = 0;
    for (;;) {
        uint64_t s1 = word_load(ch, memory_order_acquire);
        if (s1 & W_WRITING) {
            relax(&spins);
            continue;
        }
        seq_copy_out(ch, dst);
        uint64_t v = atomic_load_explicit(&ch->vers, memory_order_relaxed);
        atomic_thread_fence(memory_order_acquire);
        uint64_t s2 = word_load(ch, memory_order_relaxed);
        if (((s1 ^ s2) & ~(uint64_t)(W_WAITERS | W_CLOSED)) == 0)
            return v;
    }
}

/* Reader-count mode.  Reader: count in, then check for a writer; writer:
 * lock the word, then wait for the count to drain.  Both sides are
 * sequentially consistent, so at least one of them sees the other. */
static void rd_lock(chan *ch) {
    unsigned spins = 0;
    for (;;) {
        atomic_fetch_add_explicit(&ch->readers, 1, memory_order_seq_cst);
        if (!(word_load(ch, memory_order_seq_cst) & W_WRITING))
            return;
        atomic_fetch_sub_explicit(&ch->readers, 1, memory_order_release);
        while (word_load(ch, memory_order_relaxed) & W_WRITING)
            relax(&spins);
    }
}

static void rd_unlock(chan *ch) {
    atomic_fetch_sub_explicit(&ch->readers, 1, memory_order_release);
}

/* ---- writers ------------------------------------------------------------------ */

static void wake_changed(chan *ch) __attribute__((noinline));

/* Takes WRITING; returns the word as it was (WAITERS tells whether anyone
 * is parked).  In reader-count mode also waits until readers are gone. */
static inline uint64_t w_lock(chan *ch) {
    unsigned spins = 0;
    /* fetch_or of one bit whose old value alone is tested: one `lock bts`.
     * Nobody else changes the word while WRITING is set, so the load that
     * follows sees it exactly as it was (WAITERS included). */
    while (atomic_fetch_or_explicit(&ch->word, W_WRITING, memory_order_seq_cst) & W_WRITING) {
        do
            relax(&spins);
        while (word_load(ch, memory_order_relaxed) & W_WRITING);
    }
    uint64_t w = word_load(ch, memory_order_relaxed) & ~(uint64_t)W_WRITING;
    if (ch->seq) {
        atomic_thread_fence(memory_order_release); /* seqlock: odd before data */
    } else {
        spins = 0;
        while (atomic_load_explicit(&ch->readers, memory_order_seq_cst) != 0)
            relax(&spins);
    }
    return w;
}

/* Ends the section; `notify` bumps the version and wakes parked receivers. */
static inline void w_unlock(chan *ch, uint64_t w, bool notify) {
    uint64_t nw = w + W_GEN;
    if (notify) {
        uint64_t v = atomic_load_explicit(&ch->vers, memory_order_relaxed);
        atomic_store_explicit(&ch->vers, v + 1, memory_order_release);
        nw &= ~(uint64_t)W_WAITERS;
    }
    atomic_store_explicit(&ch->word, nw, memory_order_release);
    if (notify && (w & W_WAITERS))
        wake_changed(ch);
}

/* Claims the parked receivers whose wait is over; re-arms WAITERS for the
 * others (they wait for a later version). */
static void wake_changed(chan *ch) {
    tr_wait *list = NULL;
    unsigned spins = 0;
    tr_spin_lock(&ch->qlock);
    for (;;) {
        uint64_t w = word_load(ch, memory_order_acquire);
        if (w & W_WRITING) { /* its own unlock will look again */
            relax(&spins);
            continue;
        }
        uint64_t v = vers_load(ch);
        for (tr_wait *e = tr_waitq_peek(&ch->changed_q), *next; e; e = next) {
            next = e->next;
            const tr_watch_rx *rx = e->data;
            if (!(w & W_CLOSED) && rx->seen == v)
                continue;
            tr_waitq_remove(&ch->changed_q, e);
            if (tr_waiter_claim(e->waiter, e)) {
                e->result = 0;
                e->next = list;
                list = e;
            }
        }
        if (tr_waitq_empty(&ch->changed_q) || (w & W_WAITERS))
            break;
        if (atomic_compare_exchange_strong_explicit(&ch->word, &w, w | W_WAITERS,
                                                    memory_order_seq_cst, memory_order_relaxed))
            break;
    }
    tr_spin_unlock(&ch->qlock);
    tr_wait_wake_all(list);
}

/* The last sender is gone: set CLOSED between writes, wake every waiter. */
static void close_chan(chan *ch) {
    unsigned spins = 0;
    uint64_t w = word_load(ch, memory_order_relaxed);
    for (;;) {
        if (w & W_WRITING) {
            relax(&spins);
            w = word_load(ch, memory_order_relaxed);
            continue;
        }
        if (atomic_compare_exchange_weak_explicit(&ch->word, &w,
                                                  (w | W_CLOSED) & ~(uint64_t)W_WAITERS,
                                                  memory_order_seq_cst, memory_order_relaxed))
            break;
    }
    if (w & W_WAITERS)
        wake_changed(ch);
}

/* Replaces the value in seqlock mode (no destructor there). */
static inline void seq_store(chan *ch, const void *value, void *old_out) {
    uint64_t w = w_lock(ch);
    if (old_out) {
        uint64_t tmp[MAX_WORDS];
        seq_copy_out(ch, tmp);
        memcpy(old_out, tmp, ch->size);
    }
    seq_copy_in(ch, value);
    w_unlock(ch, w, true);
}

/* Replaces the value in reader-count mode.  The old one goes to old_out,
 * or to the destructor once no reader can see it (after the section, from
 * a copy).  Out of line: its stack buffer stays off the seqlock path. */
static __attribute__((noinline)) void rw_store(chan *ch, const void *value, void *old_out) {
    union {
        max_align_t align;
        unsigned char bytes[RW_STACK];
    } stack;
    void *old = NULL;
    if (!old_out && ch->drop)
        old = ch->size <= RW_STACK ? stack.bytes : malloc(ch->size);
    uint64_t w = w_lock(ch);
    if (old_out)
        memcpy(old_out, ch->val, ch->size);
    else if (old)
        memcpy(old, ch->val, ch->size);
    else if (ch->drop) /* no memory for a copy: destroy it in place, under the lock */
        ch->drop(ch->val, ch->drop_ctx);
    memcpy(ch->val, value, ch->size);
    w_unlock(ch, w, true);
    if (old) {
        ch->drop(old, ch->drop_ctx);
        if (old != stack.bytes)
            free(old);
    }
}

static inline void store_value(chan *ch, const void *value, void *old_out) {
    if (ch->seq)
        seq_store(ch, value, old_out);
    else
        rw_store(ch, value, old_out);
}

/* send_modify (mfn) and send_if_modified (ifn); returns whether notified. */
static bool modify_value(chan *ch, tr_watch_modify_fn mfn, tr_watch_if_fn ifn, void *ctx) {
    uint64_t w = w_lock(ch);
    bool notify = true;
    if (ch->seq) {
        union {
            uint64_t words[MAX_WORDS];
            max_align_t align;
        } tmp;
        seq_copy_out(ch, tmp.words);
        if (mfn)
            mfn(tmp.words, ctx);
        else
            notify = ifn(tmp.words, ctx);
        seq_copy_in(ch, tmp.words); /* a silent change is still published */
    } else {
        if (mfn)
            mfn(ch->val, ctx);
        else
            notify = ifn(ch->val, ctx);
    }
    w_unlock(ch, w, notify);
    return notify;
}

/* ---- creation and handles ------------------------------------------------------ */

static void chan_unref(chan *ch) {
    if (atomic_fetch_sub_explicit(&ch->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (ch->drop) /* only reader-count mode has a destructor */
        ch->drop(ch->val, ch->drop_ctx);
    free(ch);
}

static tr_watch_tx *tx_new(chan *ch) {
    tr_watch_tx *tx = malloc(sizeof *tx);
    if (!tx)
        return NULL;
    tx->ch = ch;
    atomic_fetch_add_explicit(&ch->refs, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&ch->tx_count, 1, memory_order_relaxed);
    return tx;
}

static tr_watch_rx *rx_new(chan *ch, uint64_t seen) {
    tr_watch_rx *rx = malloc(sizeof *rx);
    if (!rx)
        return NULL;
    rx->ch = ch;
    rx->seen = seen;
    atomic_fetch_add_explicit(&ch->refs, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&ch->rx_count, 1, memory_order_relaxed);
    return rx;
}

int tr_watch_new_ex(tr_watch_tx **tx, tr_watch_rx **rx, size_t elem_size, const void *initial,
                    const tr_chan_opts *opts) {
    if (!tx || !rx || elem_size == 0 || elem_size > SIZE_MAX / 4)
        return TR_EINVAL;
    bool seq = !(opts && opts->drop) && elem_size <= TR_WATCH_INLINE;
    size_t nwords = (elem_size + 7) / 8;
    size_t extra = seq ? (nwords > INL_WORDS ? nwords * 8 : 0) : nwords * 8;
    void *p = NULL;
    if (posix_memalign(&p, 64, sizeof(chan) + extra) != 0)
        return TR_ENOMEM;
    chan *ch = p;
    memset(ch, 0, sizeof *ch);
    atomic_init(&ch->word, 0);
    atomic_init(&ch->vers, 0);
    atomic_init(&ch->readers, 0);
    atomic_init(&ch->rx_count, 0);
    atomic_init(&ch->tx_count, 0);
    atomic_init(&ch->refs, 0);
    for (int i = 0; i < INL_WORDS; i++)
        atomic_init(&ch->inl[i], 0);
    ch->size = elem_size;
    ch->nwords = nwords;
    ch->seq = seq;
    ch->drop = opts ? opts->drop : NULL;
    ch->drop_ctx = opts ? opts->drop_ctx : NULL;
    tr_spin_init(&ch->qlock);
    tr_waitq_init(&ch->changed_q);
    tr_waitq_init(&ch->closed_q);
    if (seq) {
        ch->words = nwords > INL_WORDS ? (_Atomic uint64_t *)(void *)(ch + 1) : ch->inl;
        for (size_t i = 0; i < nwords; i++)
            atomic_init(&ch->words[i], 0);
        if (initial)
            seq_copy_in(ch, initial);
    } else {
        ch->val = (unsigned char *)(ch + 1);
        if (initial)
            memcpy(ch->val, initial, elem_size);
        else
            memset(ch->val, 0, elem_size);
    }
    *tx = tx_new(ch);
    *rx = *tx ? rx_new(ch, 0) : NULL;
    if (!*rx) {
        free(*tx);
        free(ch); /* the initial value was never the channel's to destroy */
        *tx = NULL;
        return TR_ENOMEM;
    }
    return 0;
}

int tr_watch_new(tr_watch_tx **tx, tr_watch_rx **rx, size_t elem_size, const void *initial) {
    return tr_watch_new_ex(tx, rx, elem_size, initial, NULL);
}

int tr_watch_tx_clone(tr_watch_tx *tx, tr_watch_tx **out) {
    if (!tx || !out)
        return TR_EINVAL;
    *out = tx_new(tx->ch);
    return *out ? 0 : TR_ENOMEM;
}

int tr_watch_rx_clone(tr_watch_rx *rx, tr_watch_rx **out) {
    if (!rx || !out)
        return TR_EINVAL;
    *out = rx_new(rx->ch, rx->seen);
    return *out ? 0 : TR_ENOMEM;
}

int tr_watch_subscribe(tr_watch_tx *tx, tr_watch_rx **out) {
    if (!tx || !out)
        return TR_EINVAL;
    *out = rx_new(tx->ch, vers_load(tx->ch));
    return *out ? 0 : TR_ENOMEM;
}

int tr_watch_tx_drop(tr_watch_tx **ptx) {
    if (!ptx || !*ptx)
        return TR_EINVAL;
    chan *ch = (*ptx)->ch;
    free(*ptx);
    *ptx = NULL;
    if (atomic_fetch_sub_explicit(&ch->tx_count, 1, memory_order_acq_rel) == 1)
        close_chan(ch);
    chan_unref(ch);
    return 0;
}

int tr_watch_rx_drop(tr_watch_rx **prx) {
    if (!prx || !*prx)
        return TR_EINVAL;
    chan *ch = (*prx)->ch;
    free(*prx);
    *prx = NULL;
    if (atomic_fetch_sub_explicit(&ch->rx_count, 1, memory_order_acq_rel) == 1) {
        tr_wait *list = NULL;
        tr_spin_lock(&ch->qlock);
        tr_waitq_claim_all(&ch->closed_q, 0, &list);
        tr_spin_unlock(&ch->qlock);
        tr_wait_wake_all(list);
    }
    chan_unref(ch);
    return 0;
}

size_t tr_watch_receiver_count(tr_watch_tx *tx) {
    return tx ? (size_t)atomic_load_explicit(&tx->ch->rx_count, memory_order_acquire) : 0;
}

size_t tr_watch_sender_count(tr_watch_tx *tx) {
    return tx ? (size_t)atomic_load_explicit(&tx->ch->tx_count, memory_order_acquire) : 0;
}

bool tr_watch_tx_is_closed(tr_watch_tx *tx) { return tr_watch_receiver_count(tx) == 0; }

/* ---- sending -------------------------------------------------------------------- */

int tr_watch_send(tr_watch_tx *tx, const void *value) {
    if (!tx || !value)
        return TR_EINVAL;
    if (atomic_load_explicit(&tx->ch->rx_count, memory_order_relaxed) == 0)
        return TR_ECLOSED;
    store_value(tx->ch, value, NULL);
    return 0;
}

int tr_watch_send_replace(tr_watch_tx *tx, const void *value, void *old_out) {
    if (!tx || !value)
        return TR_EINVAL;
    store_value(tx->ch, value, old_out);
    return 0;
}

int tr_watch_send_modify(tr_watch_tx *tx, tr_watch_modify_fn fn, void *ctx) {
    if (!tx || !fn)
        return TR_EINVAL;
    modify_value(tx->ch, fn, NULL, ctx);
    return 0;
}

int tr_watch_send_if_modified(tr_watch_tx *tx, tr_watch_if_fn fn, void *ctx) {
    if (!tx || !fn)
        return TR_EINVAL;
    return modify_value(tx->ch, NULL, fn, ctx) ? 1 : 0;
}

/* ---- reading ---------------------------------------------------------------------- */

/* Fills ref with the current value; returns its version. */
uint64_t tr__watch_borrow_into(chan *ch, tr_watch_ref *ref) {
    uint64_t v;
    if (ch->seq) {
        v = seq_read(ch, ref->copy_.words_);
        ref->value = ref->copy_.bytes_;
        ref->held_ = 1;
    } else {
        rd_lock(ch);
        v = vers_load(ch);
        ref->value = ch->val;
        ref->held_ = 2;
    }
    ref->chan_ = ch;
    ref->has_changed = false;
    return v;
}

int tr_watch_borrow(tr_watch_rx *rx, tr_watch_ref *ref) {
    if (!rx || !ref)
        return TR_EINVAL;
    ref->has_changed = tr__watch_borrow_into(rx->ch, ref) != rx->seen;
    return 0;
}

int tr_watch_borrow_and_update(tr_watch_rx *rx, tr_watch_ref *ref) {
    if (!rx || !ref)
        return TR_EINVAL;
    uint64_t v = tr__watch_borrow_into(rx->ch, ref);
    ref->has_changed = v != rx->seen;
    rx->seen = v;
    return 0;
}

int tr_watch_tx_borrow(tr_watch_tx *tx, tr_watch_ref *ref) {
    if (!tx || !ref)
        return TR_EINVAL;
    tr__watch_borrow_into(tx->ch, ref);
    return 0;
}

int tr_watch_ref_release(tr_watch_ref *ref) {
    if (!ref || (ref->held_ != 1 && ref->held_ != 2))
        return TR_EINVAL;
    if (ref->held_ == 2)
        rd_unlock(ref->chan_);
    ref->held_ = 0;
    ref->value = NULL;
    ref->chan_ = NULL;
    return 0;
}

int tr_watch_get(tr_watch_rx *rx, void *out) {
    if (!rx || !out)
        return TR_EINVAL;
    chan *ch = rx->ch;
    if (ch->seq) {
        uint64_t tmp[MAX_WORDS];
        seq_read(ch, tmp);
        memcpy(out, tmp, ch->size);
    } else {
        rd_lock(ch);
        memcpy(out, ch->val, ch->size);
        rd_unlock(ch);
    }
    return 0;
}

int tr_watch_has_changed(tr_watch_rx *rx) {
    if (!rx)
        return TR_EINVAL;
    if (word_load(rx->ch, memory_order_acquire) & W_CLOSED)
        return TR_ECLOSED;
    return vers_load(rx->ch) != rx->seen;
}

int tr_watch_mark_changed(tr_watch_rx *rx) {
    if (!rx)
        return TR_EINVAL;
    rx->seen = vers_load(rx->ch) - 1; /* wraps; differs from the current either way */
    return 0;
}

int tr_watch_mark_unchanged(tr_watch_rx *rx) {
    if (!rx)
        return TR_EINVAL;
    rx->seen = vers_load(rx->ch);
    return 0;
}
