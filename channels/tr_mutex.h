/* tr_mutex.h — a mutex that may be held across waits (tokio::sync::Mutex).
 *
 * Why it exists: a task that must keep shared state locked while it waits
 * (for a reply, a channel, a timer) cannot hold a pthread_mutex_t — the
 * seeds' rule "never hold a blocking lock across an .await": the worker
 * thread would block, and every other task of that worker with it, and a
 * task of the same worker wanting the lock would deadlock the thread.  A
 * tr_mutex suspends the task that waits for it, not the thread.
 *
 * Which one to use:
 *  - pthread_mutex_t (or a tr_spin) when the critical section is short and
 *    never waits: no channel call, no sleep, no lock of ours, no I/O.  It is
 *    the faster one and the right default, as Tokio's docs say of
 *    std::sync::Mutex.  Holding it across a troupe wait is a bug.
 *  - tr_mutex when the section waits (its lock call is itself a wait:
 *    cancellable, with a deadline), or when many tasks contend for long
 *    sections and FIFO fairness matters.  Often an actor owning the state
 *    is simpler still.
 *
 * Behaviour, as Tokio's (a semaphore of one permit):
 *  - Strict FIFO hand-off: unlocking with waiters gives the lock directly
 *    to the oldest one; no barging, so tr_mutex_try_lock() fails while the
 *    woken waiter has not run yet.  A waiter that times out or is
 *    cancelled loses its place and holds nothing.
 *  - No poisoning.
 * Added because C has no guards: the mutex knows its owner (a task, or a
 * plain thread).  Locking a mutex you already hold returns TR_EDEADLK
 * instead of hanging; unlocking one you do not hold returns TR_EPERM.  So
 * the lock is tied to the task (or thread) that took it: unlock it from
 * the same one.
 *
 * Speed: the struct is the caller's; an uncontended lock is one
 * compare-and-swap of the owner word and an unlock is one more, with no
 * spin lock taken (the lead benchmarks it against pthread_mutex_t).  The
 * spin lock and the queue are touched only when somebody has to wait.
 *
 * Debug builds (./configure --enable-debug) keep a registry of held troupe
 * locks (mutexes and rwlock write locks) with their owners, so that a task
 * that ends while holding one can be reported, naming the task and the
 * lock (tr_mutex_set_name): see tr_lock_debug_report().
 */
#ifndef TR_MUTEX_H
#define TR_MUTEX_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "tr_runtime.h"
#include "tr_select.h"
#include "tr_wait.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bookkeeping for debug builds; present in every build so that the
 * struct layout does not depend on how the library was configured. */
typedef struct tr_lock_debug {
    struct tr_lock_debug *next, *prev;
    const char *name;  /* tr_mutex_set_name(); the caller's string */
    const char *kind;  /* "mutex", "rwlock" */
    const void *lock;  /* the lock this belongs to, for reports */
    uintptr_t owner;
    bool listed;
} tr_lock_debug;

/* Fields are private; the struct is public only so that it can live in the
 * caller's memory. */
typedef struct tr_mutex {
    _Atomic uintptr_t state; /* 0 = free, else the owner's id | CONTENDED */
    tr_spin lock;            /* guards the queue and hand-overs */
    tr_waitq waiters;        /* FIFO */
    tr_lock_debug dbg;
} tr_mutex;

/* A static initialiser: an unlocked mutex without a name. */
#define TR_MUTEX_INIT {0, TR_SPIN_INIT, {NULL, NULL}, {NULL, NULL, NULL, "mutex", NULL, 0, false}}

/* Initialises *m, unlocked.  0 or TR_EINVAL (NULL).  Never waits. */
int tr_mutex_init(tr_mutex *m);

/* Ends the life of *m (nothing to free).  TR_EBUSY if it is locked or
 * somebody waits for it (then nothing is done), TR_EINVAL for NULL. */
int tr_mutex_destroy(tr_mutex *m);

/* Locks m, waiting (FIFO) until it is handed to the caller, the deadline
 * passes or the calling task is cancelled.  May wait.  Returns 0 (the
 * caller owns m), TR_EDEADLK (the caller already owns it; nothing done),
 * TR_ETIMEDOUT, TR_ECANCELED (the caller does not own it), TR_EINVAL. */
int tr_mutex_lock(tr_mutex *m, int64_t deadline);

/* Locks m if it is free right now.  Never waits.  0, TR_EBUSY (held by
 * anybody, the caller included, or handed to a waiter not yet running),
 * TR_EINVAL. */
int tr_mutex_try_lock(tr_mutex *m);

/* Unlocks m, handing it to the oldest waiter if there is one.  Never
 * waits.  0, TR_EPERM (the caller — this task, or this plain thread — does
 * not own m; nothing done), TR_EINVAL. */
int tr_mutex_unlock(tr_mutex *m);

/* Whether m is locked (by anybody) / owned by the caller.  Snapshots;
 * false for NULL.  Never wait. */
bool tr_mutex_is_locked(const tr_mutex *m);
bool tr_mutex_is_held(const tr_mutex *m);

/* Names m in debug reports.  The string is not copied: it must outlive
 * the mutex (a literal, usually).  0 or TR_EINVAL. */
int tr_mutex_set_name(tr_mutex *m, const char *name);
const char *tr_mutex_name(const tr_mutex *m); /* "" if none */

/* A select clause that locks m: in the chosen clause c->result is 0 (the
 * caller owns m) or TR_EDEADLK; clauses not chosen leave m alone.
 * TR_EINVAL (and a clause tr_select() rejects) for NULL.  Never waits. */
int tr_mutex_lock_clause(tr_clause *c, tr_mutex *m);

/* Debug builds: writes to stderr one line per troupe lock (mutex, rwlock
 * write lock) that task t holds, naming the task and the lock
 * ('troupe: task 7 "bookkeeper" still holds mutex "accounts" (0x...)'),
 * and returns how many; t == NULL means the caller (task or plain thread).
 * Release builds keep no registry and return 0.  Never waits.
 * Debug builds also run it by themselves on every task whose body returns
 * (through the runtime's task-exit hook), so a task that ends holding a
 * lock is named on stderr.  Readers of a rwlock are not tracked. */
int tr_lock_debug_report(const tr_task *t);

/* ---- for rwlock.c only; not part of the API -------------------------------- */

/* The caller's owner id: its tr_task, or a per-thread tag (low bit 0). */
uintptr_t tr__lock_owner_self(void);
/* Debug registry: d (part of `lock`) is now held by owner / is no longer
 * held.  No-ops in release builds. */
void tr__lock_debug_hold(tr_lock_debug *d, const void *lock, uintptr_t owner);
void tr__lock_debug_drop(tr_lock_debug *d);

#ifdef __cplusplus
}
#endif
#endif
