/* tr_wait.h — the wait queue every troupe primitive parks on.
 *
 * Channels, locks, select and join all wait the same way, and they do it
 * through this header, so that "a task or a plain thread waits with a
 * deadline and is woken from any worker or thread" is written once.
 *
 * Two structs, because select waits on several queues at once:
 *
 *   tr_waiter  the one who sleeps: a task (it suspends) or a plain thread
 *              (it blocks on a futex).  One per wait call, on its stack.
 *   tr_wait    one entry in one primitive's tr_waitq, pointing at the
 *              waiter.  A plain wait uses one; a select uses one per clause.
 *
 * The protocol, with the primitive's own tr_spin lock held around queue
 * operations:
 *
 *   waiting side                          waking side
 *   ------------                          -----------
 *   tr_waiter_init(&w)                    lock
 *   lock                                  e = tr_waitq_pop(&q)      (unlinks)
 *   if ready: take, unlock, return        if tr_waiter_claim(e->waiter, e):
 *   tr_wait_init(&e, &w, slot)                hand over through e->data
 *   tr_waitq_push(&q, &e)                     unlock
 *   rc = tr_waiter_park(&w, &lock, dl)        tr_waiter_wake(e->waiter)
 *   if rc != 0:                           else: e was stale, pop the next
 *       lock; if e.linked: remove; unlock
 *
 * Claiming is one compare-and-swap on the waiter's state, so exactly one of
 * "a waker", "the deadline" and "cancellation" wins; whoever loses leaves
 * the waiter alone.  A claimed waiter does not resume until the claimer
 * calls tr_waiter_wake(), so the claimer may write into the waiter's frame
 * (e->data) after dropping its lock and before waking.  Wakes happen after
 * locks are released, so a woken task that re-enters the primitive never
 * deadlocks.
 */
#ifndef TR_WAIT_H
#define TR_WAIT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tr_runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- a small spin lock for primitives' short critical sections ---------
 * Sections under it never wait; it spins briefly and then yields the
 * thread, so a holder that is preempted does not burn a core. */
typedef struct tr_spin {
    atomic_int locked;
} tr_spin;

#define TR_SPIN_INIT {0}

void tr_spin_lock_slow(tr_spin *s);

static inline void tr_spin_init(tr_spin *s) { atomic_init(&s->locked, 0); }

static inline void tr_spin_lock(tr_spin *s) {
    if (!atomic_exchange_explicit(&s->locked, 1, memory_order_acquire))
        return;
    tr_spin_lock_slow(s);
}

static inline bool tr_spin_trylock(tr_spin *s) {
    return !atomic_load_explicit(&s->locked, memory_order_relaxed) &&
           !atomic_exchange_explicit(&s->locked, 1, memory_order_acquire);
}

static inline void tr_spin_unlock(tr_spin *s) {
    atomic_store_explicit(&s->locked, 0, memory_order_release);
}

/* ---- waiters ------------------------------------------------------------ */

enum {
    TR_WAITER_WAITING = 0, /* parked (or about to park) */
    TR_WAITER_CLAIMED,     /* a waker won; tr_waiter_wake() follows */
    TR_WAITER_TIMEDOUT,    /* the deadline won */
    TR_WAITER_CANCELED     /* cancellation won */
};

struct tr_wait;

typedef struct tr_waiter {
    struct tr_task *task;     /* NULL: a plain thread */
    atomic_int state;         /* TR_WAITER_... */
    atomic_int woken;         /* plain threads sleep on this futex word */
    struct tr_wait *winner;   /* the entry whose claim won */
    void *timer;              /* the worker's deadline timer, while parked */
    atomic_int wake_fd;       /* plain thread polling fds in a select: its
                                 eventfd, written on wake; else -1 */
} tr_waiter;

typedef struct tr_wait {
    struct tr_wait *next, *prev;
    tr_waiter *waiter;
    void *data;    /* the primitive's hand-over slot (value, count, ...) */
    size_t n;      /* a count, for primitives that need one */
    int result;    /* set by the waker before tr_waiter_wake() */
    int clause;    /* the clause index, in a select */
    bool linked;   /* in a queue; only changed under that queue's lock */
} tr_wait;

typedef struct tr_waitq {
    tr_wait *head, *tail;
} tr_waitq;

/* Binds w to the caller: the current task, or this plain thread. */
void tr_waiter_init(tr_waiter *w);

static inline void tr_wait_init(tr_wait *e, tr_waiter *w, void *data) {
    e->next = e->prev = NULL;
    e->waiter = w;
    e->data = data;
    e->n = 0;
    e->result = 0;
    e->clause = 0;
    e->linked = false;
}

/* Tries to win w for entry e.  True: the caller owns the wake-up and must
 * call tr_waiter_wake(w) (after writing e->data / e->result).  False: w is
 * already claimed, timed out or cancelled; leave it alone. */
static inline bool tr_waiter_claim(tr_waiter *w, tr_wait *e) {
    int expect = TR_WAITER_WAITING;
    if (!atomic_compare_exchange_strong_explicit(&w->state, &expect, TR_WAITER_CLAIMED,
                                                 memory_order_acq_rel, memory_order_acquire))
        return false;
    w->winner = e;
    return true;
}

/* Makes a claimed waiter run again; from any thread, no lock needed. */
void tr_waiter_wake(tr_waiter *w);

/* Releases *lock and sleeps until w is claimed and woken, the deadline
 * passes, or (in a task) the task is cancelled.  Returns 0 when claimed
 * (then w->winner is the entry that won), TR_ETIMEDOUT or TR_ECANCELED
 * otherwise; the lock is not held on return.  After an error the caller
 * must lock again and remove its still-linked entries.  lock may be NULL
 * when nothing needs releasing. */
int tr_waiter_park(tr_waiter *w, tr_spin *lock, int64_t deadline);

/* ---- the queue itself (caller holds the primitive's lock) --------------- */

static inline void tr_waitq_init(tr_waitq *q) { q->head = q->tail = NULL; }
static inline bool tr_waitq_empty(const tr_waitq *q) { return q->head == NULL; }
static inline tr_wait *tr_waitq_peek(const tr_waitq *q) { return q->head; }

static inline void tr_waitq_push(tr_waitq *q, tr_wait *e) {
    e->next = NULL;
    e->prev = q->tail;
    if (q->tail)
        q->tail->next = e;
    else
        q->head = e;
    q->tail = e;
    e->linked = true;
}

static inline void tr_waitq_push_front(tr_waitq *q, tr_wait *e) {
    e->prev = NULL;
    e->next = q->head;
    if (q->head)
        q->head->prev = e;
    else
        q->tail = e;
    q->head = e;
    e->linked = true;
}

static inline void tr_waitq_remove(tr_waitq *q, tr_wait *e) {
    if (e->prev)
        e->prev->next = e->next;
    else
        q->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        q->tail = e->prev;
    e->next = e->prev = NULL;
    e->linked = false;
}

static inline tr_wait *tr_waitq_pop(tr_waitq *q) {
    tr_wait *e = q->head;
    if (e)
        tr_waitq_remove(q, e);
    return e;
}

/* Pops entries until one's waiter can be claimed; stale entries (a select
 * that another clause already won, a waiter that timed out) are dropped on
 * the way.  Returns the claimed entry or NULL. */
static inline tr_wait *tr_waitq_claim_next(tr_waitq *q) {
    tr_wait *e;
    while ((e = tr_waitq_pop(q)) != NULL)
        if (tr_waiter_claim(e->waiter, e))
            return e;
    return NULL;
}

/* Claims every waiter in q, gives each entry `result`, and chains the
 * claimed entries onto *list (through their now unused next links), so
 * that the caller can drop its lock before tr_wait_wake_all(*list).  For
 * "closed" and "done" broadcasts. */
static inline void tr_waitq_claim_all(tr_waitq *q, int result, tr_wait **list) {
    tr_wait *e;
    while ((e = tr_waitq_claim_next(q)) != NULL) {
        e->result = result;
        e->next = *list;
        *list = e;
    }
}

/* Wakes every entry of a list made by tr_waitq_claim_all(); no lock held. */
static inline void tr_wait_wake_all(tr_wait *list) {
    while (list) {
        tr_wait *next = list->next; /* the entry may vanish once woken */
        tr_waiter_wake(list->waiter);
        list = next;
    }
}

/* ---- entry checks every waiting call makes ------------------------------ */

/* Called at the top of every call that may wait.  Returns TR_ECANCELED in
 * a cancelled task.  Also spends one unit of the task's cooperative budget;
 * when it runs out (after 128 calls that found their condition ready, as in
 * Tokio) the task yields first, so a consumer that never waits cannot
 * starve the other tasks of its worker.  Must not be called with a lock
 * held. */
int tr_wait_enter(void);

#ifdef __cplusplus
}
#endif
#endif
