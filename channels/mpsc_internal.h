/* mpsc_internal.h — the channel struct and the locked helpers that the
 * mpsc sources share (mpsc.c: life cycle and storage; mpsc_send.c: the
 * sending side; mpsc_recv.c: the receiving side).
 *
 * One lock guards everything.  A lock-free list (Tokio's) would let
 * senders and the receiver work without meeting, but every operation here
 * is a handful of loads and stores plus a copy of one value, and a single
 * short section keeps close/drop/permit races easy to reason about.  The
 * fields written on every operation sit together in one cache line, after
 * the read-only ones, so that a send or a receive moves one line between
 * cores.
 *
 * The lock is biased (see "the lock" below): a channel whose every
 * operation comes from one thread — producers and consumer that are tasks
 * of one worker, which is where tr_spawn() puts them — is locked and
 * unlocked with plain stores.  The first operation from another thread
 * revokes the bias with one membarrier() system call and the lock is an
 * ordinary tr_spin again, until one thread has taken it many times in a
 * row; each revocation doubles that count, so a channel that really is
 * shared pays a bounded, shrinking number of system calls.
 *
 * Bookkeeping of a bounded channel, always true under the lock:
 *
 *     cap == avail + len + permits_out + (slots granted to queued waiters)
 *
 * and avail > 0 only while no sender waits (a freed slot goes to the
 * oldest waiter at once).  Waiting senders are tr_wait entries inside a
 * tr_clause (a select's, or one on the stack of a plain call): c->n is
 * what the caller asked for, e->n what it still lacks, so whoever unlinks
 * an entry from sendq can settle its partial grant.  Rule: the one who
 * unlinks a sender entry settles it — completes it if it claimed the
 * waiter, else gives c->n - e->n slots back.
 *
 * Values are handed straight to a parked receiver (copied into its
 * buffer) instead of passing through the queue; a receiver only parks on
 * an empty queue, so this keeps FIFO order and saves it a second trip
 * through the lock.
 */
#ifndef TR_MPSC_INTERNAL_H
#define TR_MPSC_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tr_mpsc.h"
#include "tr_select.h"
#include "tr_wait.h"

/* The handles are addresses inside the channel; their types exist only so
 * that a tx cannot be passed where an rx is expected. */
struct tr_mpsc_tx {
    char unused;
};
struct tr_mpsc_rx {
    char unused;
};
struct tr_mpsc_weak {
    char unused;
};

/* ---- the lock ----------------------------------------------------------------
 *
 * A biased lock (the JVM's idea, with Linux's membarrier() for the
 * asymmetric fence, as in liburcu).  `bias` names the thread that owns the
 * bias, or is NULL.  The owner enters with
 *
 *     owner_in = 1; (compiler barrier) if (bias == me) enter; else back off
 *
 * and leaves with owner_in = 0 — no read-modify-write, no fence.  Every
 * other thread takes `spin`; finding a bias there, it revokes it:
 *
 *     bias = NULL; membarrier(); wait while owner_in
 *
 * membarrier(PRIVATE_EXPEDITED) makes every thread of the process pass a
 * full barrier before it returns, which is what the owner's missing fence
 * needs: either the owner's load of bias comes after that barrier and sees
 * NULL (it backs off to `spin`, which the revoker holds), or its store of
 * owner_in came before it and the revoker sees 1 and waits for the owner's
 * release.  Only the thread that took `spin` many times in a row
 * (bias_after) makes itself the owner, under `spin`; bias_after doubles at
 * every revocation.  Without membarrier (old kernel, seccomp) nothing is
 * ever biased and this is a tr_spin plus one predictable branch.
 *
 * Sections never wait and never run user code, so an owner inside one is
 * running (or preempted by the kernel: the revoker yields while it waits).
 * Tasks never change thread, so "the same thread" covers every task of a
 * worker. */

/* The running thread, as the address of a thread-local byte. */
extern __thread char mpsc_tid_anchor __attribute__((tls_model("initial-exec"), visibility("hidden")));

static inline void *mpsc_self(void) { return &mpsc_tid_anchor; }

typedef struct mpsc_block {
    struct mpsc_block *next;
    unsigned char slots[]; /* TR_MPSC_BLOCK_CAP * elem */
} mpsc_block;

typedef struct tr_mpsc_chan {
    /* ---- fixed at creation ---- */
    size_t elem;
    size_t cap; /* bounded capacity; 0 = unbounded */
    unsigned char *ring;
    size_t ring_bytes; /* cap * elem */
    tr_drop_fn drop;
    void *drop_ctx;

    /* ---- written on every operation ---- */
    _Alignas(64) tr_spin lock; /* see "the lock" */
    atomic_int owner_in;       /* the bias owner is inside */
    _Atomic(void *) bias;      /* the thread the lock is biased to, or NULL */
    bool lk_fast;              /* the holder came in by the owner's path */
    bool rx_closed;  /* close() called or receiver dropped */
    bool rx_dropped;
    size_t len;      /* values queued */
    size_t avail;    /* bounded: free slots */
    size_t head_off; /* bounded: byte offset in ring of the oldest value */
    size_t tail_off; /* bounded: byte offset in ring of the next free slot */
    tr_waitq rxq;    /* parked receivers (one, unless misused) */
    tr_waitq sendq;  /* waiting senders / reservers, FIFO */
    /* The entry of a plain recv parked alone in rxq and its thread: a
     * sender on that thread claims it with a load and a store (see
     * mpsc_rx_claim_locked).  Whoever unlinks it clears rx_plain. */
    tr_wait *rx_plain;
    void *rx_tid;

    /* ---- unbounded storage, under the lock ---- */
    _Alignas(64) mpsc_block *hblk, *tblk; /* oldest / newest block */
    size_t hidx, tidx;                    /* next slot to read / write */
    mpsc_block *cache;                    /* emptied blocks kept */
    size_t ncache, nblocks;               /* cached / all blocks held */

    /* ---- rarely written, under the lock ---- */
    void *lk_last;               /* the thread that last took `lock` */
    unsigned lk_streak;          /* ... how many times in a row */
    unsigned lk_bias_after;      /* the streak that biases the lock */
    size_t permits_out; /* slots held by outstanding permits */
    size_t strong, weak;
    size_t refs;        /* handles + permits holding slots */
    tr_waitq closedq;   /* tr_mpsc_tx_closed waiters */

    struct tr_mpsc_tx tx_h;
    struct tr_mpsc_rx rx_h;
    struct tr_mpsc_weak weak_h;
} tr_mpsc_chan;

#define MPSC_CONTAINER(ptr, member) \
    ((tr_mpsc_chan *)((char *)(ptr) - offsetof(tr_mpsc_chan, member)))

static inline tr_mpsc_chan *chan_of_tx(const tr_mpsc_tx *tx) {
    return MPSC_CONTAINER(tx, tx_h);
}
static inline tr_mpsc_chan *chan_of_rx(const tr_mpsc_rx *rx) {
    return MPSC_CONTAINER(rx, rx_h);
}
static inline tr_mpsc_chan *chan_of_weak(const tr_mpsc_weak *w) {
    return MPSC_CONTAINER(w, weak_h);
}

void mpsc_lock_slow(tr_mpsc_chan *ch, void *me);

static inline void mpsc_lock(tr_mpsc_chan *ch) {
    void *me = mpsc_self();
    if (__builtin_expect(atomic_load_explicit(&ch->bias, memory_order_relaxed) == me, 1)) {
        atomic_store_explicit(&ch->owner_in, 1, memory_order_relaxed);
        atomic_signal_fence(memory_order_seq_cst); /* the store stays before the load */
        if (__builtin_expect(atomic_load_explicit(&ch->bias, memory_order_acquire) == me, 1)) {
            ch->lk_fast = true;
            return;
        }
        atomic_store_explicit(&ch->owner_in, 0, memory_order_release); /* revoked */
    }
    mpsc_lock_slow(ch, me);
}

static inline void mpsc_unlock(tr_mpsc_chan *ch) {
    if (__builtin_expect(ch->lk_fast, 1))
        atomic_store_explicit(&ch->owner_in, 0, memory_order_release);
    else
        tr_spin_unlock(&ch->lock);
}

static inline tr_clause *clause_of(tr_wait *e) {
    return (tr_clause *)((char *)e - offsetof(tr_clause, entry));
}

/* memcpy with the common sizes inlined. */
static inline void mpsc_copy(void *dst, const void *src, size_t n) {
    switch (n) {
    case 8: memcpy(dst, src, 8); break;
    case 4: memcpy(dst, src, 4); break;
    case 16: memcpy(dst, src, 16); break;
    default: memcpy(dst, src, n); break;
    }
}

/* Chains a claimed entry for waking after the unlock. */
static inline void wake_list_add(tr_wait **list, tr_wait *e) {
    e->next = *list;
    *list = e;
}

/* The receiver is finished: nothing queued, no permit out, and the
 * senders are gone or the receiver closed. */
static inline bool rx_done_locked(const tr_mpsc_chan *ch) {
    return ch->len == 0 && ch->permits_out == 0 && (ch->rx_closed || ch->strong == 0);
}

/* ---- shared by the sources (mpsc.c) ---- */

/* Bounded: appends a value to the ring, which has a free slot. */
static inline void ring_push_locked(tr_mpsc_chan *ch, const void *value) {
    size_t t = ch->tail_off, elem = ch->elem;
    mpsc_copy(ch->ring + t, value, elem);
    t += elem;
    ch->tail_off = t == ch->ring_bytes ? 0 : t;
    ch->len++;
}

/* Bounded: takes the oldest value (len > 0). */
static inline void ring_pop_locked(tr_mpsc_chan *ch, void *out) {
    size_t h = ch->head_off, elem = ch->elem;
    mpsc_copy(out, ch->ring + h, elem);
    h += elem;
    ch->head_off = h == ch->ring_bytes ? 0 : h;
    ch->len--;
}

/* Appends a value to the queue.  The caller made room: a slot (bounded)
 * or a block with a free slot (unbounded, see unb_room_locked). */
static inline void queue_push_locked(tr_mpsc_chan *ch, const void *value) {
    if (ch->cap) {
        ring_push_locked(ch, value);
        return;
    } else {
        mpsc_copy(ch->tblk->slots + ch->tidx * ch->elem, value, ch->elem);
        ch->tidx++;
    }
    ch->len++;
}

/* Unbounded: whether the newest block has a free slot. */
static inline bool unb_has_room(const tr_mpsc_chan *ch) {
    return ch->tidx < TR_MPSC_BLOCK_CAP;
}

/* Takes the oldest value (len > 0).  Returns an emptied block the caller
 * must free after unlocking, or NULL. */
mpsc_block *mpsc_unb_pop_locked(tr_mpsc_chan *ch, void *out);

static inline mpsc_block *queue_pop_locked(tr_mpsc_chan *ch, void *out) {
    if (ch->cap) {
        ring_pop_locked(ch, out);
        return NULL;
    }
    return mpsc_unb_pop_locked(ch, out);
}

/* Unbounded: makes the newest block have a free slot, taking a cached
 * block or allocating one — with the lock dropped around malloc, so the
 * caller must re-check the channel's state when this returns 1.  Returns
 * 0 (room, lock held, nothing changed), 1 (room, but the lock was dropped
 * meanwhile), TR_ENOMEM (lock held). */
int mpsc_unb_room_locked(tr_mpsc_chan *ch);

/* Frees a chain of blocks (linked through next); no lock needed. */
void mpsc_free_blocks(mpsc_block *b);

/* Pops the parked receivers until one is claimed; NULL if none could be.
 * A plain recv parked on this very thread (rx_plain, rx_tid) is claimed
 * with a load and a store: its waiter has that one entry, claims of it
 * happen under our lock, and its deadline and cancellation run on its
 * worker's thread — ours, busy with us.  (The runtime's join of a task of
 * the same worker does the same.) */
tr_wait *mpsc_rx_claim_locked(tr_mpsc_chan *ch);

/* The same, with its common case inline: one plain recv of this thread,
 * alone in rxq, still waiting. */
static inline tr_wait *mpsc_rx_claim_fast_locked(tr_mpsc_chan *ch) {
    tr_wait *e = ch->rxq.head;
    if (e && e == ch->rx_plain && !e->next && ch->rx_tid == mpsc_self()) {
        tr_waiter *w = e->waiter;
        if (atomic_load_explicit(&w->state, memory_order_relaxed) == TR_WAITER_WAITING) {
            atomic_store_explicit(&w->state, TR_WAITER_CLAIMED, memory_order_relaxed);
            w->winner = e;
            ch->rxq.head = ch->rxq.tail = NULL;
            e->linked = false; /* next and prev are NULL already */
            ch->rx_plain = NULL;
            return e;
        }
    }
    return mpsc_rx_claim_locked(ch);
}

/* Unlinks every parked receiver (to claim them all). */
static inline void rxq_forget_plain(tr_mpsc_chan *ch) { ch->rx_plain = NULL; }

/* Hands a value to a parked receiver if one can be claimed (then true:
 * the value is received, the entry is on *wake); else false and the
 * caller queues it.  The common case, nobody parked, is one inline test. */
bool mpsc_handoff_slow(tr_mpsc_chan *ch, const void *value, tr_wait **wake);

static inline bool mpsc_handoff_locked(tr_mpsc_chan *ch, const void *value, tr_wait **wake) {
    return !tr_waitq_empty(&ch->rxq) && mpsc_handoff_slow(ch, value, wake);
}

/* Delivers a value whose slot is already accounted for: to a parked
 * receiver, or into the queue.  A handed-over value frees its slot at
 * once (bounded), which may complete waiting senders. */
void mpsc_deliver_locked(tr_mpsc_chan *ch, const void *value, tr_wait **wake);

/* Gives k slots back (bounded) and assigns them to waiting senders in
 * order, completing those that are now whole. */
void mpsc_release_locked(tr_mpsc_chan *ch, size_t k, tr_wait **wake);

/* Wakes parked receivers with TR_ECLOSED if the receiver is finished. */
void mpsc_check_done_locked(tr_mpsc_chan *ch, tr_wait **wake);

/* Marks the receiver closed: fails waiting senders, wakes closed waiters. */
void mpsc_close_locked(tr_mpsc_chan *ch, tr_wait **wake);

/* Drops one reference; returns true if the caller must free the channel
 * (after unlocking, with mpsc_chan_free). */
static inline bool mpsc_unref_locked(tr_mpsc_chan *ch) {
    return --ch->refs == 0;
}
void mpsc_chan_free(tr_mpsc_chan *ch);

/* Permits: fill / empty the caller's struct (lock held). */
static inline void permit_fill_locked(tr_mpsc_chan *ch, tr_mpsc_permit *p, size_t n) {
    if (n == 0) {
        p->chan = NULL;
        p->n = 0;
        return;
    }
    ch->permits_out += n;
    ch->refs++;
    p->chan = ch;
    p->n = n;
}

/* The clause ops, shared between the plain calls and tr_select. */
extern const tr_clause_ops mpsc_send_ops;
extern const tr_clause_ops mpsc_reserve_ops;

#endif
