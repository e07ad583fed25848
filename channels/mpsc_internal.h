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
 * bias, or is 0.  The owner enters with
 *
 *     owner_in = 1; (compiler barrier) if (bias == me) enter; else back off
 *
 * and leaves with owner_in = 0 — no read-modify-write, no fence.  Every
 * other thread takes `lock` (a tr_spin); finding a bias there, it
 * revokes it:
 *
 *     bias = 0; membarrier(); wait while owner_in
 *
 * membarrier(PRIVATE_EXPEDITED) makes every thread of the process pass a
 * full barrier before it returns, which is what the owner's missing fence
 * needs: either the owner's load of bias comes after that barrier and sees
 * 0 (it backs off to `lock`, which the revoker holds), or its store of
 * owner_in came before it and the revoker sees 1 and waits for the owner's
 * release.  Only a thread that took `lock` about 64 times in a row (two
 * full counts of lk_cand, see below) makes itself the owner, under
 * `lock`; every revocation doubles the counts the next bias needs.
 * Without membarrier (old kernel, seccomp) nothing is ever biased and
 * this is a tr_spin plus a count.
 *
 * What it costs a channel that threads really share: a load of `bias`
 * (a line of its own that stays shared) before the exchange on `lock`,
 * and a store of lk_cand in the line the exchange has just taken.  Spin
 * locks between two busy cores are sensitive to how long a section is
 * and to who wins the race after an unlock; the benches' spread variants
 * (tasks on two workers) move by +-20% from run to run and from one code
 * layout to the next, with or without this.
 *
 * Sections never wait and never run user code, so an owner inside one is
 * running (or preempted by the kernel: the revoker yields while it waits).
 * Tasks never change thread, so "the same thread" covers every task of a
 * worker. */

/* The running thread, as the address of a thread-local byte (aligned, so
 * that the candidate word has room for a count below it). */
extern __thread char mpsc_tid_anchor
    __attribute__((tls_model("initial-exec"), visibility("hidden"), aligned(64)));

static inline uintptr_t mpsc_self(void) { return (uintptr_t)&mpsc_tid_anchor; }

/* For the functions on the benchmarks' hot paths: start them on a cache
 * line, so that how they decode does not depend on where the rest of the
 * library happens to put them. */
#define MPSC_HOT __attribute__((aligned(64)))

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
    /* The owner of the lock's bias, or 0: read by every operation before
     * it takes the lock, so it stays out of the line the lock word is in
     * (a read there first would cost a cache line's trip between cores
     * that share the channel); written only to bias and to revoke. */
    _Atomic uintptr_t bias;

    /* ---- written on every operation: one cache line ---- */
    _Alignas(64) tr_spin lock;      /* see "the lock" */
    _Atomic unsigned char owner_in; /* the bias owner is inside */
    bool lk_fast;    /* an owner's section is running (true only then) */
    bool rx_closed;  /* close() called or receiver dropped */
    bool rx_dropped;
    uintptr_t lk_cand; /* under `lock`: the candidate for a bias, or 0 */
    size_t len;      /* values queued */
    size_t avail;    /* bounded: free slots */
    size_t head_off; /* bounded: byte offset in ring of the oldest value */
    size_t tail_off; /* bounded: byte offset in ring of the next free slot */
    tr_waitq rxq;    /* parked receivers (one, unless misused) */

    /* ---- read on every operation, written when a sender waits ---- */
    tr_waitq sendq;  /* waiting senders / reservers, FIFO */

    /* ---- unbounded storage, under the lock ---- */
    _Alignas(64) mpsc_block *hblk, *tblk; /* oldest / newest block */
    size_t hidx, tidx;                    /* next slot to read / write */
    mpsc_block *cache;                    /* emptied blocks kept */
    size_t ncache, nblocks;               /* cached / all blocks held */

    /* ---- rarely written, under the lock ---- */
    unsigned lk_rounds;          /* full counts still to make before a bias */
    unsigned lk_rounds_after;    /* what lk_rounds restarts from: grows */
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

/* The candidate word: 0, or thread | count << 1 | 1, the thread (its
 * anchor, 64-byte aligned) that took `lock` count times in a row (1..31).
 * It lives in the line the lock word is in, so that counting costs one
 * store in a line every operation writes anyway. */
#define BIAS_CAND 1u
#define BIAS_COUNT_MASK 62u /* count << 1 */

/* The owner's way in: true if the lock is biased to this thread and is
 * now held by it; false otherwise (then nothing is held). */
static inline bool mpsc_lock_owner(tr_mpsc_chan *ch, uintptr_t me) {
    if (__builtin_expect(atomic_load_explicit(&ch->bias, memory_order_relaxed) == me, 1)) {
        atomic_store_explicit(&ch->owner_in, 1, memory_order_relaxed);
        atomic_signal_fence(memory_order_seq_cst); /* the store stays before the load */
        if (__builtin_expect(atomic_load_explicit(&ch->bias, memory_order_acquire) == me, 1)) {
            ch->lk_fast = true;
            return true;
        }
        atomic_store_explicit(&ch->owner_in, 0, memory_order_release); /* revoked */
    }
    return false;
}

/* `lock` is held, the lock biased to another thread: revokes the bias. */
void mpsc_lock_revoke(tr_mpsc_chan *ch);
/* `lock` is held by `me`, which made a full count. */
void mpsc_lock_round(tr_mpsc_chan *ch, uintptr_t me);

/* Everyone else's way in: `lock`, then the bookkeeping of the bias, all
 * inline — on a lock that threads share, the section's length is what
 * the other thread waits for, and a call in it showed. */
static inline __attribute__((always_inline)) void mpsc_lock_spin(tr_mpsc_chan *ch, uintptr_t me) {
    tr_spin_lock(&ch->lock);
    if (__builtin_expect(atomic_load_explicit(&ch->bias, memory_order_relaxed) != 0, 0))
        mpsc_lock_revoke(ch); /* another thread's (we would have entered as the owner) */
    uintptr_t c = ch->lk_cand;
    if ((c & ~(uintptr_t)BIAS_COUNT_MASK) != (me | BIAS_CAND))
        ch->lk_cand = me | BIAS_CAND | 2; /* count 1 */
    else if (__builtin_expect((c & BIAS_COUNT_MASK) != BIAS_COUNT_MASK, 1))
        ch->lk_cand = c + 2;
    else
        mpsc_lock_round(ch, me);
}

/* The lock, either way (out of line but for the owner's path: for the
 * calls that are not on a hot path). */
void mpsc_lock_slow(tr_mpsc_chan *ch, uintptr_t me);

static inline void mpsc_lock(tr_mpsc_chan *ch) {
    uintptr_t me = mpsc_self();
    if (!mpsc_lock_owner(ch, me))
        mpsc_lock_slow(ch, me);
}

/* Unlocking when the way in is known.  lk_fast goes back to false before
 * the release, so that a revoker taking over finds it false. */
static inline void mpsc_unlock_owner(tr_mpsc_chan *ch) {
    ch->lk_fast = false;
    atomic_store_explicit(&ch->owner_in, 0, memory_order_release);
}
static inline void mpsc_unlock_spin(tr_mpsc_chan *ch) { tr_spin_unlock(&ch->lock); }

static inline void mpsc_unlock(tr_mpsc_chan *ch) {
    if (__builtin_expect(ch->lk_fast, 1))
        mpsc_unlock_owner(ch);
    else
        mpsc_unlock_spin(ch);
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
 * A plain recv parked on this very thread (its entry says so) is claimed
 * with a load and a store: its waiter has that one entry, claims of it
 * happen under our lock, and its deadline and cancellation run on its
 * worker's thread — ours, busy with us.  (The runtime's join of a task of
 * the same worker does the same.) */
tr_wait *mpsc_rx_claim_locked(tr_mpsc_chan *ch);

/* Entries of plain recv / recv_many calls say so in `clause` (a select's
 * entries have their index there, >= 0) and carry their thread in `n`. */
enum { RX_PLAIN = -1, RX_PLAIN_MANY = -2 };

/* What a value handed to entry e reports: 1 for a recv_many, else 0. */
static inline int rx_handoff_result(const tr_wait *e) {
    return e->clause == RX_PLAIN_MANY || (e->clause >= 0 && e->n) ? 1 : 0;
}

/* A plain recv's entry of this thread, still waiting: claimed with a load
 * and a store (see mpsc_rx_claim_locked). */
static inline bool rx_claim_local(tr_wait *e) {
    tr_waiter *w = e->waiter;
    if (atomic_load_explicit(&w->state, memory_order_relaxed) != TR_WAITER_WAITING)
        return false;
    atomic_store_explicit(&w->state, TR_WAITER_CLAIMED, memory_order_relaxed);
    w->winner = e;
    return true;
}

/* mpsc_rx_claim_locked with its common case inline: the first parked
 * receiver is a plain recv of this thread, still waiting. */
static inline tr_wait *mpsc_rx_claim_fast_locked(tr_mpsc_chan *ch) {
    tr_wait *e = ch->rxq.head;
    if (e && e->clause < 0 && e->n == mpsc_self() && rx_claim_local(e)) {
        tr_waitq_remove(&ch->rxq, e);
        return e;
    }
    return mpsc_rx_claim_locked(ch);
}

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
