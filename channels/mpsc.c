/* mpsc.c — the mpsc channel's life cycle, storage and bookkeeping.
 *
 * Why this file: creation, handle counting (strong, weak, the receiver and
 * outstanding permits all keep the memory alive; only strong senders and
 * permits keep it open), the two storages, and the locked helpers both
 * sides use to hand values and slots around (see mpsc_internal.h for the
 * invariants).  mpsc_send.c and mpsc_recv.c hold the operations.
 *
 * Storage trade-offs:
 *   bounded    one ring, allocated with the channel in one block, so a
 *              steady stream of sends and receives never allocates.
 *   unbounded  a list of blocks of TR_MPSC_BLOCK_CAP slots.  A block the
 *              receiver has read to the end goes to a cache of
 *              TR_MPSC_BLOCK_CACHE blocks, or back to the allocator when
 *              the cache is full, so after a burst the channel shrinks to
 *              at most 1 + TR_MPSC_BLOCK_CACHE blocks (Tokio keeps all of
 *              them, tokio#4321).  A new block is malloc'd with the lock
 *              dropped, so other senders and the receiver never wait on
 *              the allocator.
 */
#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "mpsc_internal.h"

/* ---- the biased lock (see mpsc_internal.h) --------------------------------------- */

__thread char mpsc_tid_anchor __attribute__((aligned(64)));

/* Full counts (31 takes in a row each) that bias a lock: at first, and at
 * most after revocations have doubled it. */
#define ROUNDS_FIRST 2u
#define ROUNDS_MAX (1u << 15)

static pthread_once_t asym_once = PTHREAD_ONCE_INIT;
static bool asym_ok;

/* ThreadSanitizer cannot see membarrier()'s fence: to it the owner's way
 * in and a revoker's look like two threads in the same section with
 * nothing ordering them, and it reports races that the fence excludes
 * (seen in test_mpsc's ping-pong about one run in eight).  Under TSan the
 * lock therefore never biases, and TSan checks everything else; the
 * biased path is exercised by the plain and ASan builds' stress tests. */
#if defined(__SANITIZE_THREAD__)
#define MPSC_BIAS_ALLOWED 0
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MPSC_BIAS_ALLOWED 0
#endif
#endif
#ifndef MPSC_BIAS_ALLOWED
#define MPSC_BIAS_ALLOWED 1
#endif

static void asym_init(void) {
    asym_ok = MPSC_BIAS_ALLOWED &&
              syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
}

/* Whether biasing is possible: membarrier() works here.  Asked by a lock
 * about to be biased; the answer comes from the registration below. */
static bool asym_available(void) {
    pthread_once(&asym_once, asym_init);
    return asym_ok;
}

/* Registering is cheap (a few microseconds) only while the process has a
 * single thread: with more, the kernel waits for an RCU grace period,
 * 15-25 ms measured here, which a lock about to be biased would spend
 * with its spin lock held.  So it is done when the library is loaded,
 * before main() starts any thread (a dlopen() into a threaded process
 * pays the grace period there, once).  The registration is inherited
 * across fork(). */
__attribute__((constructor)) static void asym_register_early(void) {
    pthread_once(&asym_once, asym_init);
}

/* Every thread of the process passes a full barrier before this returns.
 * Registered already (a bias exists only if asym_available() said so), so
 * it does not fail; if it ever did, the global form (an RCU grace period)
 * is slower but as good, and without either the owner could not be
 * excluded. */
static void asym_barrier(void) {
    if (syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0)
        return;
    if (syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0) == 0)
        return;
    abort();
}

void mpsc_lock_revoke(tr_mpsc_chan *ch) {
    atomic_store_explicit(&ch->bias, 0, memory_order_relaxed);
    asym_barrier();
    for (unsigned spins = 0; atomic_load_explicit(&ch->owner_in, memory_order_acquire); spins++) {
        if (spins < 64) {
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
        } else {
            sched_yield(); /* the owner was preempted inside */
        }
    }
    if (ch->lk_rounds_after < ROUNDS_MAX)
        ch->lk_rounds_after *= 2;
    ch->lk_rounds = ch->lk_rounds_after;
    ch->lk_cand = 0;
}

void mpsc_lock_round(tr_mpsc_chan *ch, uintptr_t me) {
    /* lk_rounds is shared by all threads' counts, which only makes the
     * heuristic a little more eager; it is written once per full count. */
    ch->lk_cand = me | BIAS_CAND | 2; /* count again (should the bias go) */
    if (ch->lk_rounds > 1)
        ch->lk_rounds--;
    else if (asym_available()) /* ours from the next time on; this section ends on `lock` */
        atomic_store_explicit(&ch->bias, me, memory_order_relaxed);
}

void mpsc_lock_slow(tr_mpsc_chan *ch, uintptr_t me) { mpsc_lock_spin(ch, me); }

/* ---- unbounded storage -------------------------------------------------- */

static size_t block_bytes(const tr_mpsc_chan *ch) {
    return sizeof(mpsc_block) + (size_t)TR_MPSC_BLOCK_CAP * ch->elem;
}

/* Keeps an emptied block in the cache, or returns it for freeing. */
static mpsc_block *retire_block_locked(tr_mpsc_chan *ch, mpsc_block *b) {
    if (ch->ncache < TR_MPSC_BLOCK_CACHE) {
        b->next = ch->cache;
        ch->cache = b;
        ch->ncache++;
        return NULL;
    }
    ch->nblocks--;
    b->next = NULL;
    return b;
}

mpsc_block *mpsc_unb_pop_locked(tr_mpsc_chan *ch, void *out) {
    mpsc_block *b = ch->hblk;
    mpsc_copy(out, b->slots + ch->hidx * ch->elem, ch->elem);
    ch->len--;
    if (++ch->hidx < TR_MPSC_BLOCK_CAP)
        return NULL;
    if (b->next) { /* read to the end: move on, give the block up */
        ch->hblk = b->next;
        ch->hidx = 0;
        return retire_block_locked(ch, b);
    }
    /* The only block, written and read to the end: start it over. */
    ch->hidx = ch->tidx = 0;
    return NULL;
}

static void link_tail_locked(tr_mpsc_chan *ch, mpsc_block *b) {
    b->next = NULL;
    ch->tblk->next = b;
    ch->tblk = b;
    ch->tidx = 0;
}

int mpsc_unb_room_locked(tr_mpsc_chan *ch) {
    if (ch->rx_closed)
        return 1; /* nothing may enter; the caller re-checks and fails */
    if (unb_has_room(ch))
        return 0;
    if (ch->cache) {
        mpsc_block *b = ch->cache;
        ch->cache = b->next;
        ch->ncache--;
        link_tail_locked(ch, b);
        return 0;
    }
    mpsc_unlock(ch);
    mpsc_block *b = malloc(block_bytes(ch));
    mpsc_lock(ch);
    if (!b)
        return TR_ENOMEM;
    ch->nblocks++;
    if (ch->rx_closed || unb_has_room(ch)) {
        /* Closed, or another sender (or the receiver starting the block
         * over) made room meanwhile: keep the block for later. */
        b->next = ch->cache;
        ch->cache = b;
        ch->ncache++;
    } else {
        link_tail_locked(ch, b);
    }
    return 1;
}

void mpsc_free_blocks(mpsc_block *b) {
    while (b) {
        mpsc_block *next = b->next;
        free(b);
        b = next;
    }
}

/* ---- handing values and slots around ------------------------------------ */

tr_wait *mpsc_rx_claim_locked(tr_mpsc_chan *ch) {
    tr_wait *e;
    while ((e = tr_waitq_pop(&ch->rxq)) != NULL) {
        if (e->clause < 0 && e->n == mpsc_self()) {
            if (rx_claim_local(e))
                return e;
            continue; /* timed out or cancelled: it unparks itself */
        }
        if (tr_waiter_claim(e->waiter, e))
            return e;
    }
    return NULL;
}

bool mpsc_handoff_slow(tr_mpsc_chan *ch, const void *value, tr_wait **wake) {
    tr_wait *e = mpsc_rx_claim_fast_locked(ch);
    if (!e)
        return false;
    mpsc_copy(e->data, value, ch->elem);
    e->result = rx_handoff_result(e);
    wake_list_add(wake, e);
    return true;
}

void mpsc_deliver_locked(tr_mpsc_chan *ch, const void *value, tr_wait **wake) {
    if (mpsc_handoff_locked(ch, value, wake))
        mpsc_release_locked(ch, 1, wake);
    else
        queue_push_locked(ch, value);
}

void mpsc_release_locked(tr_mpsc_chan *ch, size_t k, tr_wait **wake) {
    ch->avail += k;
    tr_wait *e;
    while (ch->avail > 0 && (e = tr_waitq_peek(&ch->sendq)) != NULL) {
        if (e->n > ch->avail) { /* a partial grant to the head waiter */
            e->n -= ch->avail;
            ch->avail = 0;
            return;
        }
        ch->avail -= e->n;
        e->n = 0;
        tr_waitq_remove(&ch->sendq, e);
        tr_clause *c = clause_of(e);
        if (!tr_waiter_claim(e->waiter, e)) {
            ch->avail += c->n; /* stale: all it was granted comes back */
            continue;
        }
        if (c->ops == &mpsc_send_ops) {
            /* The slot is the sender's now; the value fills it, unless a
             * parked receiver takes it straight away and frees it. */
            if (mpsc_handoff_locked(ch, c->buf, wake))
                ch->avail++;
            else
                queue_push_locked(ch, c->buf);
        } else {
            permit_fill_locked(ch, c->aux, c->n);
        }
        e->result = 0;
        wake_list_add(wake, e);
    }
}

void mpsc_check_done_locked(tr_mpsc_chan *ch, tr_wait **wake) {
    if (!tr_waitq_empty(&ch->rxq) && rx_done_locked(ch))
        tr_waitq_claim_all(&ch->rxq, TR_ECLOSED, wake);
}

void mpsc_close_locked(tr_mpsc_chan *ch, tr_wait **wake) {
    if (ch->rx_closed)
        return;
    ch->rx_closed = true;
    tr_wait *e;
    while ((e = tr_waitq_pop(&ch->sendq)) != NULL) {
        tr_clause *c = clause_of(e);
        ch->avail += c->n - e->n; /* what it was partly granted */
        if (tr_waiter_claim(e->waiter, e)) {
            e->result = TR_ECLOSED;
            wake_list_add(wake, e);
        }
    }
    tr_waitq_claim_all(&ch->closedq, 0, wake);
    mpsc_check_done_locked(ch, wake);
}

/* ---- creation and freeing ------------------------------------------------ */

static int chan_new(tr_mpsc_tx **tx, tr_mpsc_rx **rx, size_t cap, bool bounded, size_t elem,
                    const tr_chan_opts *opts) {
    if (!tx || !rx || elem == 0)
        return TR_EINVAL;
    if (bounded && (cap == 0 || cap > TR_MPSC_MAX_CAPACITY))
        return TR_EINVAL;
    size_t hdr = (sizeof(tr_mpsc_chan) + 63) & ~(size_t)63;
    size_t ring = 0;
    if (bounded) {
        if (cap > (SIZE_MAX - hdr) / elem)
            return TR_ENOMEM;
        ring = cap * elem;
    }
    void *mem = NULL;
    if (posix_memalign(&mem, 64, hdr + ring) != 0)
        return TR_ENOMEM;
    tr_mpsc_chan *ch = mem;
    memset(ch, 0, sizeof *ch);
    ch->elem = elem;
    ch->cap = bounded ? cap : 0;
    ch->ring = bounded ? (unsigned char *)mem + hdr : NULL;
    ch->ring_bytes = ring;
    if (opts) {
        ch->drop = opts->drop;
        ch->drop_ctx = opts->drop_ctx;
    }
    tr_spin_init(&ch->lock);
    atomic_init(&ch->owner_in, 0);
    atomic_init(&ch->bias, 0);
    ch->lk_rounds = ch->lk_rounds_after = ROUNDS_FIRST;
    ch->avail = ch->cap;
    tr_waitq_init(&ch->rxq);
    tr_waitq_init(&ch->sendq);
    tr_waitq_init(&ch->closedq);
    if (!bounded) {
        mpsc_block *b = malloc(block_bytes(ch));
        if (!b) {
            free(mem);
            return TR_ENOMEM;
        }
        b->next = NULL;
        ch->hblk = ch->tblk = b;
        ch->nblocks = 1;
    }
    ch->strong = 1;
    ch->refs = 2; /* the sender and the receiver */
    *tx = &ch->tx_h;
    *rx = &ch->rx_h;
    return 0;
}

int tr_mpsc_new(tr_mpsc_tx **tx, tr_mpsc_rx **rx, size_t capacity, size_t elem_size) {
    return chan_new(tx, rx, capacity, true, elem_size, NULL);
}

int tr_mpsc_new_ex(tr_mpsc_tx **tx, tr_mpsc_rx **rx, size_t capacity, size_t elem_size,
                   const tr_chan_opts *opts) {
    return chan_new(tx, rx, capacity, true, elem_size, opts);
}

int tr_mpsc_unbounded_new(tr_mpsc_tx **tx, tr_mpsc_rx **rx, size_t elem_size) {
    return chan_new(tx, rx, 0, false, elem_size, NULL);
}

int tr_mpsc_unbounded_new_ex(tr_mpsc_tx **tx, tr_mpsc_rx **rx, size_t elem_size,
                             const tr_chan_opts *opts) {
    return chan_new(tx, rx, 0, false, elem_size, opts);
}

/* The last reference is gone; the receiver's drop already destroyed what
 * was queued, so only memory is left. */
void mpsc_chan_free(tr_mpsc_chan *ch) {
    mpsc_free_blocks(ch->hblk);
    mpsc_free_blocks(ch->cache);
    free(ch);
}

/* ---- sender handles --------------------------------------------------------- */

/* One more handle of a kind (*count) for a handle of a kind that must
 * still be alive (*alive): TR_EINVAL if it has been dropped. */
static int add_handle(tr_mpsc_chan *ch, const size_t *alive, size_t *count) {
    mpsc_lock(ch);
    if (*alive == 0) {
        mpsc_unlock(ch);
        return TR_EINVAL;
    }
    (*count)++;
    ch->refs++;
    mpsc_unlock(ch);
    return 0;
}

int tr_mpsc_tx_clone(tr_mpsc_tx *tx, tr_mpsc_tx **out) {
    if (!tx || !out)
        return TR_EINVAL;
    tr_mpsc_chan *ch = chan_of_tx(tx);
    int rc = add_handle(ch, &ch->strong, &ch->strong);
    if (rc == 0)
        *out = tx;
    return rc;
}

int tr_mpsc_tx_drop(tr_mpsc_tx **txp) {
    if (!txp || !*txp)
        return TR_EINVAL;
    tr_mpsc_chan *ch = chan_of_tx(*txp);
    tr_wait *wake = NULL;
    mpsc_lock(ch);
    if (ch->strong == 0) {
        mpsc_unlock(ch);
        return TR_EINVAL;
    }
    if (--ch->strong == 0)
        mpsc_check_done_locked(ch, &wake);
    bool last = mpsc_unref_locked(ch);
    mpsc_unlock(ch);
    *txp = NULL;
    tr_wait_wake_all(wake);
    if (last)
        mpsc_chan_free(ch);
    return 0;
}

int tr_mpsc_tx_downgrade(tr_mpsc_tx *tx, tr_mpsc_weak **out) {
    if (!tx || !out)
        return TR_EINVAL;
    tr_mpsc_chan *ch = chan_of_tx(tx);
    int rc = add_handle(ch, &ch->strong, &ch->weak);
    if (rc == 0)
        *out = &ch->weak_h;
    return rc;
}

int tr_mpsc_weak_upgrade(tr_mpsc_weak *weak, tr_mpsc_tx **out) {
    if (!weak || !out)
        return TR_EINVAL;
    tr_mpsc_chan *ch = chan_of_weak(weak);
    int rc = 0;
    mpsc_lock(ch);
    if (ch->weak == 0) {
        rc = TR_EINVAL;
    } else if (ch->strong == 0 && ch->permits_out == 0) {
        rc = TR_ECLOSED; /* no sender can come back: never again */
    } else {
        ch->strong++;
        ch->refs++;
    }
    mpsc_unlock(ch);
    if (rc == 0)
        *out = &ch->tx_h;
    return rc;
}

int tr_mpsc_weak_clone(tr_mpsc_weak *weak, tr_mpsc_weak **out) {
    if (!weak || !out)
        return TR_EINVAL;
    tr_mpsc_chan *ch = chan_of_weak(weak);
    int rc = add_handle(ch, &ch->weak, &ch->weak);
    if (rc == 0)
        *out = weak;
    return rc;
}

int tr_mpsc_weak_drop(tr_mpsc_weak **wp) {
    if (!wp || !*wp)
        return TR_EINVAL;
    tr_mpsc_chan *ch = chan_of_weak(*wp);
    mpsc_lock(ch);
    if (ch->weak == 0) {
        mpsc_unlock(ch);
        return TR_EINVAL;
    }
    ch->weak--;
    bool last = mpsc_unref_locked(ch);
    mpsc_unlock(ch);
    *wp = NULL;
    if (last)
        mpsc_chan_free(ch);
    return 0;
}

/* ---- queries -------------------------------------------------------------------- *
 * Under the lock: the counters are plain fields, and a query is rare. */

enum { Q_STRONG, Q_WEAK, Q_AVAIL, Q_CAP, Q_LEN, Q_RX_CLOSED, Q_TX_CLOSED, Q_BLOCKS };

static size_t query(tr_mpsc_chan *ch, int what) {
    size_t v = 0;
    mpsc_lock(ch);
    switch (what) {
    case Q_STRONG: v = ch->strong; break;
    case Q_WEAK: v = ch->weak; break;
    case Q_AVAIL: v = ch->cap ? ch->avail : SIZE_MAX; break;
    case Q_CAP: v = ch->cap ? ch->cap : SIZE_MAX; break;
    case Q_LEN: v = ch->len; break;
    case Q_RX_CLOSED: v = ch->rx_closed || (ch->strong == 0 && ch->permits_out == 0); break;
    case Q_TX_CLOSED: v = ch->rx_closed; break;
    case Q_BLOCKS: v = ch->nblocks; break;
    }
    mpsc_unlock(ch);
    return v;
}

#define TXQ(tx, what) ((tx) ? query(chan_of_tx(tx), (what)) : 0)
#define RXQ(rx, what) ((rx) ? query(chan_of_rx(rx), (what)) : 0)
#define WKQ(w, what)  ((w) ? query(chan_of_weak(w), (what)) : 0)

bool tr_mpsc_tx_is_closed(const tr_mpsc_tx *tx) { return TXQ(tx, Q_TX_CLOSED) != 0; }
size_t tr_mpsc_capacity(const tr_mpsc_tx *tx) { return TXQ(tx, Q_AVAIL); }
size_t tr_mpsc_max_capacity(const tr_mpsc_tx *tx) { return TXQ(tx, Q_CAP); }
size_t tr_mpsc_tx_strong_count(const tr_mpsc_tx *tx) { return TXQ(tx, Q_STRONG); }
size_t tr_mpsc_tx_weak_count(const tr_mpsc_tx *tx) { return TXQ(tx, Q_WEAK); }
size_t tr_mpsc_weak_strong_count(const tr_mpsc_weak *w) { return WKQ(w, Q_STRONG); }
size_t tr_mpsc_weak_weak_count(const tr_mpsc_weak *w) { return WKQ(w, Q_WEAK); }

bool tr_mpsc_same_channel(const tr_mpsc_tx *a, const tr_mpsc_tx *b) {
    return a && b && chan_of_tx(a) == chan_of_tx(b);
}

bool tr_mpsc_rx_is_closed(const tr_mpsc_rx *rx) { return RXQ(rx, Q_RX_CLOSED) != 0; }
bool tr_mpsc_rx_is_empty(const tr_mpsc_rx *rx) { return RXQ(rx, Q_LEN) == 0; }
size_t tr_mpsc_rx_len(const tr_mpsc_rx *rx) { return RXQ(rx, Q_LEN); }
size_t tr_mpsc_rx_capacity(const tr_mpsc_rx *rx) { return RXQ(rx, Q_AVAIL); }
size_t tr_mpsc_rx_max_capacity(const tr_mpsc_rx *rx) { return RXQ(rx, Q_CAP); }
size_t tr_mpsc_rx_sender_strong_count(const tr_mpsc_rx *rx) { return RXQ(rx, Q_STRONG); }
size_t tr_mpsc_rx_sender_weak_count(const tr_mpsc_rx *rx) { return RXQ(rx, Q_WEAK); }
size_t tr_mpsc_rx_blocks(const tr_mpsc_rx *rx) { return RXQ(rx, Q_BLOCKS); }

static size_t waitq_count(const tr_waitq *q) {
    size_t n = 0;
    for (const tr_wait *e = q->head; e; e = e->next)
        n++;
    return n;
}

int tr_mpsc_rx_stats(const tr_mpsc_rx *rx, tr_mpsc_stats *out) {
    if (!rx || !out)
        return TR_EINVAL;
    tr_mpsc_chan *ch = chan_of_rx(rx);
    mpsc_lock(ch);
    out->len = ch->len;
    out->blocks = ch->nblocks;
    out->cached_blocks = ch->ncache;
    out->waiting_senders = waitq_count(&ch->sendq);
    out->waiting_receivers = waitq_count(&ch->rxq);
    out->permits_out = ch->permits_out;
    mpsc_unlock(ch);
    return 0;
}
