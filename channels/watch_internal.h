/* watch_internal.h — what watch.c (values, sends, borrows) and
 * watch_wait.c (changed, wait_for, closed, clauses) share: the channel
 * layout and the word protocol described at the top of watch.c.
 */
#ifndef TR_WATCH_INTERNAL_H
#define TR_WATCH_INTERNAL_H

#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "tr_watch.h"

enum { W_WRITING = 1, W_WAITERS = 2, W_CLOSED = 4, W_GEN = 8 };

#define INL_WORDS 6
#define MAX_WORDS (TR_WATCH_INLINE / 8)
#define RW_STACK 256 /* old values up to this size are destroyed from the stack */

typedef struct chan {
    /* the hot line: written by every send, read by every reader */
    _Alignas(64) _Atomic uint64_t word;
    _Atomic uint64_t vers;
    _Atomic uint64_t inl[INL_WORDS];
    /* reader count (reader-count mode only) */
    _Alignas(64) atomic_long readers;
    /* read-mostly */
    _Alignas(64) atomic_long rx_count;
    atomic_long tx_count;
    atomic_long refs; /* handles of either kind */
    size_t size, nwords;
    bool seq;
    _Atomic uint64_t *words; /* seqlock mode: the value */
    unsigned char *val;      /* reader-count mode: the value */
    tr_drop_fn drop;
    void *drop_ctx;
    /* parked receivers and senders */
    _Alignas(64) tr_spin qlock;
    tr_waitq changed_q; /* entries' data: their tr_watch_rx */
    tr_waitq closed_q;
} chan;

struct tr_watch_tx {
    chan *ch;
};

struct tr_watch_rx {
    chan *ch;
    uint64_t seen; /* the version this receiver has seen */
};

static inline void relax(unsigned *spins) {
    if (++*spins < 64) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#elif defined(__aarch64__)
        __asm__ __volatile__("yield");
#endif
    } else {
        sched_yield();
    }
}

static inline uint64_t word_load(chan *ch, memory_order mo) {
    return atomic_load_explicit(&ch->word, mo);
}

static inline uint64_t vers_load(chan *ch) {
    return atomic_load_explicit(&ch->vers, memory_order_acquire);
}

/* Borrows the current value into ref and returns its version (watch.c). */
uint64_t tr__watch_borrow_into(chan *ch, tr_watch_ref *ref);

#endif
