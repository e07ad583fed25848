/* oneshot.c — one value, one sender, one receiver.
 *
 * The whole state is a handful of bits changed under the struct's spin
 * lock; they are also stored atomically so that the cheap questions
 * (is_closed, an empty try_recv) need no lock.  A receiver that parks
 * leaves its out buffer in its wait entry and the sender copies the value
 * straight there after dropping the lock, so a request/reply round trip
 * costs one locked section per side and one copy.
 *
 * End of life.  Each side ends with one call (send or tx_drop; rx_drop)
 * that sets its bit under the lock; the call that finds the other bit
 * already set is the last one, and only it runs the destructor on a value
 * left in the slot and then the release hook.  Every call touches the
 * struct only before its unlock (what follows touches the parked peer's
 * frame or the caller's own value), which is what lets the owner free the
 * storage as soon as both sides have ended.
 *
 * The same fact gives the receiver lock-free fast paths: once the state
 * says the sender ended and the lock word reads free, the sender has left
 * its last section for good (its ending was written under that lock, so a
 * free lock seen after it is the sender's own release), and nobody but
 * the receiver will touch the struct again.  So taking a value that came
 * before recv, and dropping a receiver after the reply, cost no atomic
 * read-modify-write at all — what a request/reply round trip spends.
 *
 * And the sender gets one when the receiver is parked in a plain recv on
 * the sender's own thread (a task of the same worker: the usual reply to
 * a request from a task spawned next to the server).  The parked recv
 * records its thread in the state word (above the flags: the thread is
 * the address of a 64-byte aligned thread-local); a sender that finds
 * its own thread there
 * knows that the receiver cannot run while it does, and neither can the
 * receiver's deadline timer or cancellation, which run on that worker's
 * thread too.  The receiver's calls do not overlap (see tr_oneshot.h), so
 * nobody else touches os: the sender completes the receive with plain
 * loads and stores, without the lock and without the claim's
 * compare-and-swap (as the runtime's join of a task of the same worker
 * does).  A request/reply round trip between two tasks of one worker then
 * spends a single read-modify-write on its oneshot: the receiver's lock
 * when it parks.  The thread is set only by a recv that parks into an
 * empty queue, and every call that unlinks an entry from rxq_ writes the
 * state without it, so a thread found there always belongs to the entry
 * at the head.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "tr_oneshot.h"

#define OS_MAGIC 0x6f6e6531u /* "one1" */

/* The state word: these flags, and above them the thread of a plain recv
 * parked alone (see above), or 0. */
typedef uintptr_t ost;

#define S_VALUE ((ost)1 << 0)      /* a value sits in the slot */
#define S_TX_DONE ((ost)1 << 1)    /* the sender side ended */
#define S_CLOSED ((ost)1 << 2)     /* the receiver closed (or was dropped) */
#define S_RX_DROPPED ((ost)1 << 3) /* the receiver side ended */
#define S_TERM ((ost)1 << 4)       /* recv/try_recv returned a value or TR_ECLOSED */
#define S_FLAGS ((ost)63)          /* the thread's address is 64-byte aligned */

static inline bool valid(const tr_oneshot *os) { return os && os->magic_ == OS_MAGIC; }

/* The running thread, as the address of a thread-local: tasks run on
 * their worker's thread, so two calls see the same address exactly when
 * they run on the same thread.  Aligned, so that it leaves the flags'
 * bits of the state word free. */
static __thread _Alignas(64) char tid_anchor __attribute__((tls_model("initial-exec")));

static inline ost self_tid(void) { return (ost)&tid_anchor; }

static inline ost st_get(tr_oneshot *os) {
    return atomic_load_explicit(&os->state_, memory_order_relaxed);
}

static inline void st_set(tr_oneshot *os, ost st) {
    atomic_store_explicit(&os->state_, st, memory_order_release);
}

static inline ost st_peek(tr_oneshot *os) {
    return atomic_load_explicit(&os->state_, memory_order_acquire);
}

/* An entry left rxq_ (lock held): forget the parked thread. */
static inline void rx_tid_clear(tr_oneshot *os) { st_set(os, st_get(os) & S_FLAGS); }

/* Values are mostly a word or a pointer: copy those without a call. */
static inline void copy_value(void *dst, const void *src, size_t n) {
    if (n == sizeof(uint64_t))
        memcpy(dst, src, sizeof(uint64_t));
    else if (n == sizeof(uint32_t))
        memcpy(dst, src, sizeof(uint32_t));
    else
        memcpy(dst, src, n);
}

/* The receiver is alone with os: the sender ended and left its section.
 * st must have been read (acquire) before the lock word. */
static inline bool rx_alone(tr_oneshot *os, ost st) {
    return (st & S_TX_DONE) && !atomic_load_explicit(&os->lock_.locked, memory_order_acquire);
}

static int init_common(tr_oneshot *os, void *buf, size_t size, const tr_chan_opts *opts) {
    tr_spin_init(&os->lock_);
    atomic_init(&os->state_, 0);
    os->size_ = size;
    os->buf_ = buf ? buf : os->inline_.bytes_;
    tr_waitq_init(&os->rxq_);
    tr_waitq_init(&os->txq_);
    os->drop_ = opts ? opts->drop : NULL;
    os->drop_ctx_ = opts ? opts->drop_ctx : NULL;
    os->release_ = NULL;
    os->release_ctx_ = NULL;
    os->magic_ = OS_MAGIC;
    return 0;
}

int tr_oneshot_init(tr_oneshot *os, size_t elem_size, const tr_chan_opts *opts) {
    if (!os || elem_size == 0 || elem_size > TR_ONESHOT_INLINE)
        return TR_EINVAL;
    return init_common(os, NULL, elem_size, opts);
}

int tr_oneshot_init_buf(tr_oneshot *os, void *buf, size_t elem_size, const tr_chan_opts *opts) {
    if (!os || !buf || elem_size == 0)
        return TR_EINVAL;
    return init_common(os, buf, elem_size, opts);
}

int tr_oneshot_set_release(tr_oneshot *os, tr_oneshot_release_fn fn, void *ctx) {
    if (!valid(os))
        return TR_EINVAL;
    tr_spin_lock(&os->lock_);
    os->release_ = fn;
    os->release_ctx_ = ctx;
    tr_spin_unlock(&os->lock_);
    return 0;
}

int tr_oneshot_reset(tr_oneshot *os) {
    if (!valid(os))
        return TR_EINVAL;
    ost st = st_peek(os);
    if ((st & S_RX_DROPPED) && rx_alone(os, st)) { /* both ended and gone */
        st_set(os, 0);
        return 0;
    }
    tr_spin_lock(&os->lock_);
    st = st_get(os);
    if ((st & (S_TX_DONE | S_RX_DROPPED)) != (S_TX_DONE | S_RX_DROPPED)) {
        tr_spin_unlock(&os->lock_);
        return TR_EBUSY;
    }
    st_set(os, 0);
    tr_spin_unlock(&os->lock_);
    return 0;
}

/* After the last side's unlock: nothing of os is touched by anyone else.
 * Inline for its common case, nothing to do. */
static inline void finish_last(tr_oneshot *os, bool drop_value) {
    if (drop_value && os->drop_)
        os->drop_(os->buf_, os->drop_ctx_);
    if (os->release_)
        os->release_(os, os->release_ctx_);
}

/* ---- sender ------------------------------------------------------------------ */

/* The receiver is parked in a plain recv on this thread (the state said so):
 * it, its deadline and its cancellation all wait for us to return, so a
 * load and a store claim it.  False if it timed out or was cancelled
 * before we came (it will unlink itself), or if another recv (misuse) is
 * queued behind it: then the locked path. */
static bool send_local(tr_oneshot *os, const void *value) {
    tr_wait *e = os->rxq_.head;
    tr_waiter *w = e->waiter;
    if (e->next || atomic_load_explicit(&w->state, memory_order_relaxed) != TR_WAITER_WAITING)
        return false;
    atomic_store_explicit(&w->state, TR_WAITER_CLAIMED, memory_order_relaxed);
    w->winner = e;
    tr_waitq_remove(&os->rxq_, e);
    size_t size = os->size_;
    st_set(os, (st_get(os) & S_FLAGS) | S_TX_DONE | S_TERM); /* our last touch of os */
    copy_value(e->data, value, size);
    e->result = 0;
    tr_waiter_wake(w);
    return true;
}

int tr_oneshot_send(tr_oneshot *os, const void *value) {
    if (!valid(os) || !value)
        return TR_EINVAL;
    if ((st_get(os) & ~S_FLAGS) == self_tid() && send_local(os, value))
        return 0;
    tr_spin_lock(&os->lock_);
    /* Whatever happens below leaves rxq_ empty: no parked thread. */
    ost st = st_get(os) & S_FLAGS;
    if (st & S_TX_DONE) {
        tr_spin_unlock(&os->lock_);
        return TR_EINVAL;
    }
    st |= S_TX_DONE;
    if (st & S_CLOSED) {
        bool last = st & S_RX_DROPPED;
        st_set(os, st);
        tr_spin_unlock(&os->lock_);
        if (last)
            finish_last(os, false);
        return TR_ECLOSED;
    }
    tr_wait *e = tr_waitq_claim_next(&os->rxq_);
    if (!e) {
        copy_value(os->buf_, value, os->size_);
        st_set(os, st | S_VALUE);
        tr_spin_unlock(&os->lock_);
        return 0;
    }
    /* A parked receiver: it has the value the moment it is claimed.  Any
     * other parked receiver (a misuse: two concurrent recvs) sees the
     * value already taken. */
    tr_wait *rest = NULL;
    tr_waitq_claim_all(&os->rxq_, TR_ECLOSED, &rest);
    size_t size = os->size_;
    st_set(os, st | S_TERM);
    tr_spin_unlock(&os->lock_);
    copy_value(e->data, value, size);
    e->result = 0;
    tr_waiter_wake(e->waiter);
    tr_wait_wake_all(rest);
    return 0;
}

int tr_oneshot_tx_drop(tr_oneshot *os) {
    if (!valid(os))
        return TR_EINVAL;
    tr_spin_lock(&os->lock_);
    ost st = st_get(os) & S_FLAGS; /* rxq_ ends empty */
    if (st & S_TX_DONE) {
        tr_spin_unlock(&os->lock_);
        return TR_EINVAL;
    }
    st |= S_TX_DONE;
    tr_wait *list = NULL;
    tr_waitq_claim_all(&os->rxq_, TR_ECLOSED, &list);
    if (list)
        st |= S_TERM;
    bool last = st & S_RX_DROPPED;
    st_set(os, st);
    tr_spin_unlock(&os->lock_);
    tr_wait_wake_all(list);
    if (last)
        finish_last(os, false);
    return 0;
}

bool tr_oneshot_is_closed(tr_oneshot *os) {
    return valid(os) && (st_peek(os) & S_CLOSED);
}

bool tr_oneshot_tx_ended(tr_oneshot *os) {
    if (!valid(os))
        return false;
    if (rx_alone(os, st_peek(os)))
        return true;
    /* Under the lock, so that a sender still inside its last section has
     * left it when we say it ended. */
    tr_spin_lock(&os->lock_);
    bool ended = st_get(os) & S_TX_DONE;
    tr_spin_unlock(&os->lock_);
    return ended;
}

/* closed(): 0 if the receiver closed, TR_EINVAL if the sender ended, 1 to wait. */
static int closed_ready_locked(tr_oneshot *os) {
    ost st = st_get(os);
    if (st & S_TX_DONE)
        return TR_EINVAL;
    return (st & S_CLOSED) ? 0 : 1;
}

int tr_oneshot_closed(tr_oneshot *os, int64_t deadline) {
    if (!valid(os) || (st_peek(os) & S_TX_DONE))
        return TR_EINVAL;
    int rc = tr_wait_enter();
    if (rc)
        return rc;
    if (st_peek(os) & S_CLOSED)
        return 0;
    tr_spin_lock(&os->lock_);
    rc = closed_ready_locked(os);
    if (rc != 1) {
        tr_spin_unlock(&os->lock_);
        return rc;
    }
    tr_waiter w;
    tr_wait e;
    tr_waiter_init(&w);
    tr_wait_init(&e, &w, NULL);
    tr_waitq_push(&os->txq_, &e);
    rc = tr_waiter_park(&w, &os->lock_, deadline);
    if (rc) {
        tr_spin_lock(&os->lock_);
        if (e.linked)
            tr_waitq_remove(&os->txq_, &e);
        tr_spin_unlock(&os->lock_);
        return rc;
    }
    return e.result;
}

/* ---- receiver ---------------------------------------------------------------- */

/* Whether a recv would complete now (with a value or an error). */
static inline bool recv_ready(ost st) {
    return st & (S_VALUE | S_TX_DONE | S_CLOSED | S_RX_DROPPED | S_TERM);
}

/* The outcome of a receive, under the lock.  `again` is what a terminated
 * receiver gets: TR_EINVAL for recv, TR_ECLOSED for try_recv (as tokio). */
static int take_locked(tr_oneshot *os, void *out, int again) {
    ost st = st_get(os);
    if (st & S_RX_DROPPED)
        return TR_EINVAL;
    if (st & S_TERM)
        return again;
    if (st & S_VALUE) {
        copy_value(out, os->buf_, os->size_);
        st_set(os, (st & ~S_VALUE) | S_TERM);
        return 0;
    }
    if (st & (S_TX_DONE | S_CLOSED)) {
        st_set(os, st | S_TERM);
        return TR_ECLOSED;
    }
    return TR_EEMPTY;
}

int tr_oneshot_recv(tr_oneshot *os, void *out, int64_t deadline) {
    if (!valid(os) || !out || (st_peek(os) & (S_RX_DROPPED | S_TERM)))
        return TR_EINVAL;
    int rc = tr_wait_enter();
    if (rc)
        return rc;
    if (rx_alone(os, st_peek(os)))
        return take_locked(os, out, TR_EINVAL);
    tr_spin_lock(&os->lock_);
    if (recv_ready(st_get(os))) {
        rc = take_locked(os, out, TR_EINVAL);
        tr_spin_unlock(&os->lock_);
        return rc;
    }
    tr_waiter w;
    tr_wait e;
    tr_waiter_init(&w);
    tr_wait_init(&e, &w, out);
    if (tr_waitq_empty(&os->rxq_))
        st_set(os, st_get(os) | self_tid());
    tr_waitq_push(&os->rxq_, &e);
    rc = tr_waiter_park(&w, &os->lock_, deadline);
    if (rc) {
        tr_spin_lock(&os->lock_);
        if (e.linked) {
            tr_waitq_remove(&os->rxq_, &e);
            rx_tid_clear(os);
        }
        tr_spin_unlock(&os->lock_);
        return rc;
    }
    return e.result;
}

int tr_oneshot_try_recv(tr_oneshot *os, void *out) {
    if (!valid(os) || !out)
        return TR_EINVAL;
    ost st = st_peek(os);
    if (st & S_RX_DROPPED)
        return TR_EINVAL;
    if (!recv_ready(st))
        return TR_EEMPTY; /* no lock: nothing to take yet */
    if (rx_alone(os, st))
        return take_locked(os, out, TR_ECLOSED);
    tr_spin_lock(&os->lock_);
    int rc = take_locked(os, out, TR_ECLOSED);
    tr_spin_unlock(&os->lock_);
    return rc;
}

int tr_oneshot_close(tr_oneshot *os) {
    if (!valid(os))
        return TR_EINVAL;
    tr_spin_lock(&os->lock_);
    ost st = st_get(os);
    if (st & S_RX_DROPPED) {
        tr_spin_unlock(&os->lock_);
        return TR_EINVAL;
    }
    if (st & (S_TERM | S_CLOSED)) {
        tr_spin_unlock(&os->lock_);
        return 0;
    }
    st |= S_CLOSED;
    tr_wait *txs = NULL, *rxs = NULL;
    tr_waitq_claim_all(&os->txq_, 0, &txs);
    if (!(st & S_VALUE)) { /* a recv parked elsewhere now ends with TR_ECLOSED */
        st &= S_FLAGS;
        tr_waitq_claim_all(&os->rxq_, TR_ECLOSED, &rxs);
        if (rxs)
            st |= S_TERM;
    }
    st_set(os, st);
    tr_spin_unlock(&os->lock_);
    tr_wait_wake_all(txs);
    tr_wait_wake_all(rxs);
    return 0;
}

int tr_oneshot_rx_drop(tr_oneshot *os) {
    if (!valid(os))
        return TR_EINVAL;
    ost st = st_peek(os);
    if (!(st & S_RX_DROPPED) && rx_alone(os, st)) { /* the usual end of a reply */
        st_set(os, (st & S_FLAGS & ~S_VALUE) | S_RX_DROPPED | S_CLOSED);
        finish_last(os, st & S_VALUE);
        return 0;
    }
    tr_spin_lock(&os->lock_);
    st = st_get(os);
    if (st & S_RX_DROPPED) {
        tr_spin_unlock(&os->lock_);
        return TR_EINVAL;
    }
    bool had_value = st & S_VALUE;
    st = (st & S_FLAGS & ~S_VALUE) | S_RX_DROPPED | S_CLOSED; /* rxq_ ends empty */
    tr_wait *txs = NULL, *rxs = NULL;
    tr_waitq_claim_all(&os->txq_, 0, &txs);
    tr_waitq_claim_all(&os->rxq_, TR_ECLOSED, &rxs);
    bool last = st & S_TX_DONE; /* a value implies the sender ended */
    st_set(os, st);
    tr_spin_unlock(&os->lock_);
    tr_wait_wake_all(txs);
    tr_wait_wake_all(rxs);
    if (last)
        finish_last(os, had_value);
    return 0;
}

bool tr_oneshot_is_terminated(tr_oneshot *os) {
    return valid(os) && (st_peek(os) & S_TERM);
}

bool tr_oneshot_is_empty(tr_oneshot *os) {
    return !valid(os) || !(st_peek(os) & S_VALUE);
}

/* ---- select clauses ---------------------------------------------------------- */

static int recv_arm(tr_clause *c, tr_wait *e) {
    tr_oneshot *os = c->obj;
    tr_spin_lock(&os->lock_);
    if (recv_ready(st_get(os))) {
        if (!tr_waiter_claim(e->waiter, e)) {
            tr_spin_unlock(&os->lock_);
            return TR_SELECT_LOST;
        }
        c->result = take_locked(os, c->buf, TR_EINVAL);
        tr_spin_unlock(&os->lock_);
        return TR_SELECT_DONE;
    }
    tr_waitq_push(&os->rxq_, e);
    tr_spin_unlock(&os->lock_);
    return TR_SELECT_ARMED;
}

static void recv_disarm(tr_clause *c, tr_wait *e) {
    tr_oneshot *os = c->obj;
    tr_spin_lock(&os->lock_);
    if (e->linked) {
        tr_waitq_remove(&os->rxq_, e);
        rx_tid_clear(os);
    }
    tr_spin_unlock(&os->lock_);
}

static const tr_clause_ops recv_ops = {recv_arm, recv_disarm, NULL};

int tr_oneshot_recv_clause(tr_clause *c, tr_oneshot *os, void *out) {
    if (!c)
        return TR_EINVAL;
    c->ops = NULL;
    if (!valid(os) || !out)
        return TR_EINVAL;
    c->ops = &recv_ops;
    c->obj = os;
    c->buf = out;
    c->n = 0;
    c->aux = NULL;
    c->result = 0;
    return 0;
}

static int closed_arm(tr_clause *c, tr_wait *e) {
    tr_oneshot *os = c->obj;
    tr_spin_lock(&os->lock_);
    int r = closed_ready_locked(os);
    if (r != 1) {
        if (!tr_waiter_claim(e->waiter, e)) {
            tr_spin_unlock(&os->lock_);
            return TR_SELECT_LOST;
        }
        c->result = r;
        tr_spin_unlock(&os->lock_);
        return TR_SELECT_DONE;
    }
    tr_waitq_push(&os->txq_, e);
    tr_spin_unlock(&os->lock_);
    return TR_SELECT_ARMED;
}

static void closed_disarm(tr_clause *c, tr_wait *e) {
    tr_oneshot *os = c->obj;
    tr_spin_lock(&os->lock_);
    if (e->linked)
        tr_waitq_remove(&os->txq_, e);
    tr_spin_unlock(&os->lock_);
}

static const tr_clause_ops closed_ops = {closed_arm, closed_disarm, NULL};

int tr_oneshot_closed_clause(tr_clause *c, tr_oneshot *os) {
    if (!c)
        return TR_EINVAL;
    c->ops = NULL;
    if (!valid(os))
        return TR_EINVAL;
    c->ops = &closed_ops;
    c->obj = os;
    c->buf = NULL;
    c->n = 0;
    c->aux = NULL;
    c->result = 0;
    return 0;
}

/* ---- the heap form ------------------------------------------------------------ */

/* The handles are the tr_oneshot itself, typed apart so the compiler keeps
 * the two ends from being mixed up; the release hook frees the block. */
#define OS_OF(h) ((tr_oneshot *)(void *)(h))

static void heap_release(tr_oneshot *os, void *ctx) {
    (void)ctx;
    free(os);
}

/* Large values go right after the struct, in the same block. */
static size_t heap_head(void) {
    size_t a = _Alignof(max_align_t);
    return (sizeof(tr_oneshot) + a - 1) / a * a;
}

int tr_oneshot_new_ex(tr_oneshot_tx **tx, tr_oneshot_rx **rx, size_t elem_size,
                      const tr_chan_opts *opts) {
    if (!tx || !rx || elem_size == 0 || elem_size > SIZE_MAX / 2)
        return TR_EINVAL;
    bool big = elem_size > TR_ONESHOT_INLINE;
    tr_oneshot *os = malloc(big ? heap_head() + elem_size : sizeof *os);
    if (!os)
        return TR_ENOMEM;
    if (big)
        tr_oneshot_init_buf(os, (char *)os + heap_head(), elem_size, opts);
    else
        tr_oneshot_init(os, elem_size, opts);
    os->release_ = heap_release;
    *tx = (tr_oneshot_tx *)(void *)os;
    *rx = (tr_oneshot_rx *)(void *)os;
    return 0;
}

int tr_oneshot_new(tr_oneshot_tx **tx, tr_oneshot_rx **rx, size_t elem_size) {
    return tr_oneshot_new_ex(tx, rx, elem_size, NULL);
}

int tr_oneshot_tx_send(tr_oneshot_tx **tx, const void *value) {
    if (!tx || !*tx)
        return TR_EINVAL;
    int rc = tr_oneshot_send(OS_OF(*tx), value);
    if (rc != TR_EINVAL)
        *tx = NULL;
    return rc;
}

int tr_oneshot_tx_free(tr_oneshot_tx **tx) {
    if (!tx || !*tx)
        return TR_EINVAL;
    int rc = tr_oneshot_tx_drop(OS_OF(*tx));
    *tx = NULL;
    return rc;
}

int tr_oneshot_tx_closed(tr_oneshot_tx *tx, int64_t deadline) {
    return tx ? tr_oneshot_closed(OS_OF(tx), deadline) : TR_EINVAL;
}

int tr_oneshot_tx_closed_clause(tr_clause *c, tr_oneshot_tx *tx) {
    return tr_oneshot_closed_clause(c, tx ? OS_OF(tx) : NULL);
}

bool tr_oneshot_tx_is_closed(tr_oneshot_tx *tx) {
    return tx && tr_oneshot_is_closed(OS_OF(tx));
}

int tr_oneshot_rx_recv(tr_oneshot_rx *rx, void *out, int64_t deadline) {
    return rx ? tr_oneshot_recv(OS_OF(rx), out, deadline) : TR_EINVAL;
}

int tr_oneshot_rx_try_recv(tr_oneshot_rx *rx, void *out) {
    return rx ? tr_oneshot_try_recv(OS_OF(rx), out) : TR_EINVAL;
}

int tr_oneshot_rx_close(tr_oneshot_rx *rx) {
    return rx ? tr_oneshot_close(OS_OF(rx)) : TR_EINVAL;
}

int tr_oneshot_rx_recv_clause(tr_clause *c, tr_oneshot_rx *rx, void *out) {
    return tr_oneshot_recv_clause(c, rx ? OS_OF(rx) : NULL, out);
}

int tr_oneshot_rx_free(tr_oneshot_rx **rx) {
    if (!rx || !*rx)
        return TR_EINVAL;
    int rc = tr_oneshot_rx_drop(OS_OF(*rx));
    *rx = NULL;
    return rc;
}
