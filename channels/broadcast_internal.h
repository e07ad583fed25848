/* broadcast_internal.h — what broadcast.c (send, receive, closed) and
 * broadcast_handles.c (creation, handles, queries) share: the ring, the
 * per-slot state word and the helpers described at the top of broadcast.c.
 */
#ifndef TR_BROADCAST_INTERNAL_H
#define TR_BROADCAST_INTERNAL_H

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

#endif
