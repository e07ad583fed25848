/* barrier.c — tr_barrier: a count, a generation and one wait queue.
 *
 * The n-th arrival does all the work in one locked section: it claims
 * every queued waiter (all of the generation's other parties), resets the
 * count and bumps the generation, then wakes them after the unlock.  So
 * the leader is decided under the lock and there is exactly one per
 * generation.
 *
 * A waiter that gives up takes the lock again; if its entry is still
 * queued, the generation has not completed, so it unlinks and takes its
 * arrival back.  If the entry is gone, the leader popped it while
 * completing the generation (the claim lost to the deadline by a hair):
 * the caller was counted, so it reports 0 like the rest.
 */
#include "tr_barrier.h"

#define BARRIER_MAGIC 0x42617272u

static bool valid(const tr_barrier *b) { return b && b->magic == BARRIER_MAGIC; }

int tr_barrier_init(tr_barrier *b, size_t n) {
    if (!b)
        return TR_EINVAL;
    tr_spin_init(&b->lock);
    b->parties = n ? n : 1;
    b->arrived = 0;
    b->generation = 0;
    tr_waitq_init(&b->waiters);
    b->magic = BARRIER_MAGIC;
    return 0;
}

int tr_barrier_destroy(tr_barrier *b) {
    if (!valid(b))
        return TR_EINVAL;
    tr_spin_lock(&b->lock);
    bool busy = !tr_waitq_empty(&b->waiters);
    if (!busy)
        b->magic = 0;
    tr_spin_unlock(&b->lock);
    return busy ? TR_EBUSY : 0;
}

uint64_t tr_barrier_generation(tr_barrier *b) {
    if (!valid(b))
        return 0;
    tr_spin_lock(&b->lock);
    uint64_t g = b->generation;
    tr_spin_unlock(&b->lock);
    return g;
}

int tr_barrier_wait(tr_barrier *b, bool *is_leader, int64_t deadline) {
    if (!valid(b))
        return TR_EINVAL;
    int rc = tr_wait_enter();
    if (rc)
        return rc;
    tr_spin_lock(&b->lock);
    if (++b->arrived == b->parties) {
        tr_wait *list = NULL;
        tr_waitq_claim_all(&b->waiters, 0, &list);
        b->arrived = 0;
        b->generation++;
        tr_spin_unlock(&b->lock);
        tr_wait_wake_all(list);
        if (is_leader)
            *is_leader = true;
        return 0;
    }
    tr_waiter w;
    tr_wait e;
    tr_waiter_init(&w);
    tr_wait_init(&e, &w, NULL);
    tr_waitq_push(&b->waiters, &e);
    rc = tr_waiter_park(&w, &b->lock, deadline);
    if (rc != 0) {
        tr_spin_lock(&b->lock);
        if (e.linked) {
            tr_waitq_remove(&b->waiters, &e);
            b->arrived--; /* withdraw */
        } else {
            rc = 0; /* the generation completed with us in it */
        }
        tr_spin_unlock(&b->lock);
        if (rc != 0)
            return rc;
    }
    if (is_leader)
        *is_leader = false;
    return 0;
}
