/* tr_semaphore.h — a counting semaphore for tasks and threads (tokio::sync::Semaphore).
 *
 * Why it exists: to bound how many tasks do something at once (connections,
 * in-flight requests, memory), the way Tokio programs use Semaphore; the
 * rwlock is built on it too.
 *
 * Behaviour, as Tokio's batch semaphore:
 *  - Strict FIFO with partial assignment.  A request that cannot be met at
 *    once takes every free permit and queues for the rest; released permits
 *    go to the head of the queue first (partially if it still needs more)
 *    and only what is left over returns to the pool.  So while anybody
 *    waits, tr_sem_available_permits() is 0 and a small request cannot
 *    overtake a big one queued before it.  A waiter that times out or is
 *    cancelled gives back what it had been assigned, and that may satisfy
 *    the waiters behind it at once.
 *  - tr_sem_close() fails every waiter and every later acquire with
 *    TR_ECLOSED, even when permits are free; permits already held stay
 *    valid and may still be released; add/forget/available keep working.
 *  - Permits are plain counts: C has no guard whose drop gives them back,
 *    so the holder calls tr_sem_release(s, n) (or uses tr_sem_permit, a
 *    {sem, n} pair with release/forget/split/merge, when that reads better).
 *
 * Trade-offs: the struct is the caller's (no allocation, embed it where it
 * is used).  The state (free permits, "someone waits", "closed") is one
 * atomic word, so an uncontended acquire or release is one compare-and-swap
 * and takes no lock; the spin lock is taken only when someone has to queue
 * or be handed permits.
 *
 * Errors: TR_EINVAL for NULL or a count above TR_SEM_MAX_PERMITS (nothing
 * done); TR_EBUSY when a try_ form finds too few permits (Tokio's
 * TryAcquireError::NoPermits); TR_ECLOSED once closed (checked first, as
 * Tokio); TR_ETIMEDOUT / TR_ECANCELED from waits, which then hold nothing.
 */
#ifndef TR_SEMAPHORE_H
#define TR_SEMAPHORE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tr_select.h"
#include "tr_wait.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The most permits a semaphore may have, as Tokio's MAX_PERMITS. */
#define TR_SEM_MAX_PERMITS (SIZE_MAX >> 3)

/* Fields are private; the struct is public only so that it can live in the
 * caller's memory. */
typedef struct tr_sem {
    _Atomic size_t state; /* free permits << 2 | WAITERS | CLOSED */
    tr_spin lock;         /* guards the queue and hand-overs */
    tr_waitq waiters;     /* FIFO; only the head may hold part of its request */
} tr_sem;

/* A static initialiser, for a semaphore with n permits (n must not exceed
 * TR_SEM_MAX_PERMITS). */
#define TR_SEM_INIT(n) {((size_t)(n)) << 2, TR_SPIN_INIT, {NULL, NULL}}

/* Initialises *s with `permits` free permits (0 is fine).  TR_EINVAL for
 * NULL or permits > TR_SEM_MAX_PERMITS.  Never waits. */
int tr_sem_init(tr_sem *s, size_t permits);

/* Ends the life of *s (nothing to free).  TR_EBUSY if somebody is still
 * waiting on it (then nothing is done), TR_EINVAL for NULL.  Never waits. */
int tr_sem_destroy(tr_sem *s);

/* Heap forms: tr_sem_new() allocates and initialises (TR_ENOMEM,
 * TR_EINVAL); tr_sem_free() destroys, frees and NULLs *s (TR_EBUSY with
 * waiters, TR_EINVAL for NULL / already NULL).  Never wait. */
int tr_sem_new(tr_sem **out, size_t permits);
int tr_sem_free(tr_sem **s);

/* Takes 1 / n permits, waiting (FIFO) until they are all assigned, the
 * deadline passes or the calling task is cancelled.  May wait.  Returns 0
 * (the caller now holds n permits and must release them), TR_ECLOSED,
 * TR_ETIMEDOUT, TR_ECANCELED (then nothing is held: permits assigned while
 * queued went back), TR_EINVAL (NULL, n > TR_SEM_MAX_PERMITS).  n == 0
 * succeeds at once unless closed.  The deadline only matters if the call
 * has to wait: free permits are taken even with a past deadline. */
int tr_sem_acquire(tr_sem *s, int64_t deadline);
int tr_sem_acquire_many(tr_sem *s, size_t n, int64_t deadline);

/* Takes 1 / n permits if they are free right now (never waits).  0,
 * TR_ECLOSED, TR_EBUSY (not enough free permits, or someone is queued),
 * TR_EINVAL. */
int tr_sem_try_acquire(tr_sem *s);
int tr_sem_try_acquire_many(tr_sem *s, size_t n);

/* Gives back n permits the caller holds; they go to the waiters first
 * (FIFO), the rest to the pool.  Works after close.  Never waits.  0, or
 * TR_EINVAL (NULL, or the pool would exceed TR_SEM_MAX_PERMITS: nothing
 * done).  The semaphore cannot tell held permits from new ones, so
 * releasing permits you do not hold adds permits. */
int tr_sem_release(tr_sem *s, size_t n);

/* Adds n new permits (Tokio's add_permits; same effect as release). */
int tr_sem_add_permits(tr_sem *s, size_t n);

/* Removes up to n permits from the pool and returns how many it removed
 * (0 for NULL).  Never waits, never takes permits assigned to a waiter. */
size_t tr_sem_forget_permits(tr_sem *s, size_t n);

/* Closes: every waiter returns TR_ECLOSED, and so does every later
 * acquire.  Idempotent.  Never waits.  0 or TR_EINVAL. */
int tr_sem_close(tr_sem *s);

/* Whether closed (false for NULL); the free permits (0 for NULL).  Never
 * wait.  A snapshot: other threads may change it at once. */
bool tr_sem_is_closed(const tr_sem *s);
size_t tr_sem_available_permits(const tr_sem *s);

/* A select clause that takes n permits from s: in the chosen clause,
 * c->result is 0 (n permits held) or TR_ECLOSED; clauses not chosen hold
 * nothing.  TR_EINVAL (and a clause tr_select() rejects) for NULL or n >
 * TR_SEM_MAX_PERMITS.  Never waits. */
int tr_sem_acquire_clause(tr_clause *c, tr_sem *s, size_t n);

/* ---- permits as values ---------------------------------------------------
 * A {sem, n} pair for code that passes held permits around (Tokio's
 * SemaphorePermit without the drop).  Releasing or forgetting sets n to 0,
 * so doing it twice is harmless. */
typedef struct tr_sem_permit {
    tr_sem *sem;
    size_t n;
} tr_sem_permit;

/* tr_sem_acquire_many / tr_sem_try_acquire_many that fill *out on success
 * (and set out->n = 0 on failure).  Same returns; TR_EINVAL for NULL out. */
int tr_sem_permit_acquire(tr_sem_permit *out, tr_sem *s, size_t n, int64_t deadline);
int tr_sem_permit_try_acquire(tr_sem_permit *out, tr_sem *s, size_t n);

/* Gives the permits back (tr_sem_release) / drops them for good; n becomes
 * 0.  Never wait.  0 or TR_EINVAL. */
int tr_sem_permit_release(tr_sem_permit *p);
int tr_sem_permit_forget(tr_sem_permit *p);

/* Moves n of p's permits into *out.  TR_EINVAL if n > p->n (nothing done). */
int tr_sem_permit_split(tr_sem_permit *p, size_t n, tr_sem_permit *out);

/* Moves all of other's permits into p.  TR_EINVAL for permits of two
 * different semaphores (nothing done). */
int tr_sem_permit_merge(tr_sem_permit *p, tr_sem_permit *other);

/* ---- for rwlock.c only; not part of the API -------------------------------- */

/* tr_sem_release() that refuses (returns `err`, nothing done) when the
 * permits free or assigned to the queue would exceed cap. */
int tr__sem_release_capped(tr_sem *s, size_t n, size_t cap, int err);
/* The acquire clause's ops; c->obj is the tr_sem, c->n the count. */
extern const tr_clause_ops tr__sem_acquire_ops;

#ifdef __cplusplus
}
#endif
#endif
