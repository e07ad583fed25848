/* mpsc_internal.h — the channel struct and the locked helpers that the
 * mpsc sources share (mpsc.c: life cycle and storage; mpsc_send.c: the
 * sending side; mpsc_recv.c: the receiving side).
 *
 * One tr_spin guards everything.  A lock-free list (Tokio's) would let
 * senders and the receiver work without meeting, but every operation here
 * is a handful of loads and stores plus a copy of one value, and a single
 * short section keeps close/drop/permit races easy to reason about.  The
 * fields written on every operation sit together in one cache line, after
 * the read-only ones, so that a send or a receive moves one line between
 * cores.
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

typedef struct mpsc_block {
    struct mpsc_block *next;
    unsigned char slots[]; /* TR_MPSC_BLOCK_CAP * elem */
} mpsc_block;

typedef struct tr_mpsc_chan {
    /* ---- fixed at creation ---- */
    size_t elem;
    size_t cap; /* bounded capacity; 0 = unbounded */
    unsigned char *ring;
    tr_drop_fn drop;
    void *drop_ctx;

    /* ---- written on every operation ---- */
    _Alignas(64) tr_spin lock;
    bool rx_closed;  /* close() called or receiver dropped */
    bool rx_dropped;
    size_t len;      /* values queued */
    size_t avail;    /* bounded: free slots */
    size_t head;     /* bounded: ring index of the oldest value */
    tr_waitq rxq;    /* parked receivers (one, unless misused) */
    tr_waitq sendq;  /* waiting senders / reservers, FIFO */

    /* ---- unbounded storage, under the lock ---- */
    _Alignas(64) mpsc_block *hblk, *tblk; /* oldest / newest block */
    size_t hidx, tidx;                    /* next slot to read / write */
    mpsc_block *cache;                    /* emptied blocks kept */
    size_t ncache, nblocks;               /* cached / all blocks held */

    /* ---- rarely written, under the lock ---- */
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

/* Appends a value to the queue.  The caller made room: a slot (bounded)
 * or a block with a free slot (unbounded, see unb_room_locked). */
static inline void queue_push_locked(tr_mpsc_chan *ch, const void *value) {
    if (ch->cap) {
        size_t t = ch->head + ch->len;
        if (t >= ch->cap)
            t -= ch->cap;
        mpsc_copy(ch->ring + t * ch->elem, value, ch->elem);
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
        mpsc_copy(out, ch->ring + ch->head * ch->elem, ch->elem);
        if (++ch->head == ch->cap)
            ch->head = 0;
        ch->len--;
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
