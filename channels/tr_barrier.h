/* tr_barrier.h — n parties meet, then all go on (tokio::sync::Barrier).
 *
 * The first n-1 callers of tr_barrier_wait() in a generation wait; the
 * n-th completes the generation, wakes them all and is its leader: exactly
 * one caller per generation is told it leads (the last to arrive, as in
 * tokio).  The barrier is then empty again and serves the next generation,
 * indefinitely.
 *
 * Giving up.  tokio's wait is not cancel safe: a dropped wait stays counted
 * as arrived.  A C caller that times out or is cancelled instead withdraws:
 * its arrival is taken back, so the generation still needs n callers that
 * stay.  If the generation completes at the very moment the caller gives
 * up (the leader released it first), it has passed the barrier and the
 * wait returns 0 — every caller counted in a completed generation gets 0,
 * so the others never go on counting on someone who reported failure.
 *
 * There is no select clause on purpose: a clause that loses its select
 * after the generation counted it would leave the barrier thinking it
 * arrived while the caller believes it did not — the cancel-unsafety above
 * in a form the caller could not even detect.
 *
 * Works from tasks on any worker and from plain threads.
 */
#ifndef TR_BARRIER_H
#define TR_BARRIER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tr_wait.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Public only so that callers can own it; use the functions. */
typedef struct tr_barrier {
    tr_spin lock;
    size_t parties;      /* n (0 was made 1) */
    size_t arrived;      /* in the current generation */
    uint64_t generation; /* completed generations */
    tr_waitq waiters;
    uint32_t magic;
} tr_barrier;

/* Makes a barrier for n parties; n == 0 behaves as 1 (every wait returns
 * at once as leader).  Never waits.  Returns 0 or TR_EINVAL for NULL. */
int tr_barrier_init(tr_barrier *b, size_t n);

/* Ends b.  Never waits.  Returns 0; TR_EINVAL for NULL or a barrier not
 * initialised; TR_EBUSY, doing nothing, while callers are waiting in it. */
int tr_barrier_destroy(tr_barrier *b);

/* Arrives and waits until n parties have arrived in this generation.  May
 * wait.  Returns 0 when the generation completed, with *is_leader (if
 * is_leader is not NULL) true for exactly one caller of the generation;
 * TR_ETIMEDOUT or TR_ECANCELED after withdrawing (see the top of this
 * file); TR_EINVAL for a bad barrier. */
int tr_barrier_wait(tr_barrier *b, bool *is_leader, int64_t deadline);

/* Completed generations so far (a snapshot).  Never waits; 0 for NULL. */
uint64_t tr_barrier_generation(tr_barrier *b);

#ifdef __cplusplus
}
#endif
#endif
