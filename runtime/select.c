/* select.c — tr_select(): arm every clause, park once, keep one winner.
 *
 * The primitives do the real work in their clause ops; this file only
 * orders them.  The one subtle rule is in arming: a clause that finds its
 * operation ready must first claim the shared waiter, because a clause
 * armed before it may already have been claimed by a waker on another
 * thread — then that earlier clause is the winner and this one must take
 * nothing.  Exactly one claim succeeds, so exactly one clause completes.
 */
#include "internal.h"
#include "tr_select.h"

#include <poll.h>

#include <stdint.h>

static int never_arm(tr_clause *c, tr_wait *e) {
    (void)c;
    (void)e;
    return TR_SELECT_ARMED; /* never queued anywhere: nothing can claim it */
}

static void never_disarm(tr_clause *c, tr_wait *e) {
    (void)c;
    (void)e;
}

static const tr_clause_ops never_ops = {never_arm, never_disarm, NULL};

void tr_clause_never(tr_clause *c) {
    c->ops = &never_ops;
    c->obj = c->buf = c->aux = NULL;
    c->n = 0;
    c->result = 0;
}

/* xorshift per thread: fairness needs spread, not quality. */
static size_t random_start(size_t n) {
    static __thread uint64_t s;
    if (s == 0)
        s = (uint64_t)tr_now() ^ (uint64_t)(uintptr_t)&s ^ 0x9E3779B97F4A7C15ull;
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return (size_t)(s % n);
}

static void disarm_others(tr_clause *c, size_t n, size_t start, size_t armed, size_t keep) {
    for (size_t k = 0; k < armed; k++) {
        size_t i = (start + k) % n;
        if (i != keep)
            c[i].ops->disarm(&c[i], &c[i].entry);
    }
}

/* A plain thread has no loop to watch fds for it: with fd clauses armed it
 * polls them itself, beside an eventfd that wakers write. */
#define TR_SELECT_MAX_FDS 64

static int park_thread(tr_waiter *w, tr_clause *c, size_t n, size_t start, size_t armed,
                       int64_t deadline) {
    struct pollfd pfds[TR_SELECT_MAX_FDS + 1];
    tr_wait *entries[TR_SELECT_MAX_FDS];
    int nfds = 0;
    for (size_t k = 0; k < armed; k++) {
        size_t i = (start + k) % n;
        if (c[i].ops != &tr__fd_clause_ops)
            continue; /* at most TR_SELECT_MAX_FDS: tr_select() counted them */
        tr__fd_clause_pollfd(&c[i], &pfds[nfds]);
        entries[nfds++] = &c[i].entry;
    }
    if (nfds == 0)
        return tr_waiter_park(w, NULL, deadline);
    return tr__park_thread_poll(w, pfds, entries, nfds, deadline);
}

int tr_select(tr_clause *c, size_t n, int64_t deadline, unsigned flags) {
    if (n > 0 && c == NULL)
        return TR_EINVAL;
    size_t fds = 0;
    for (size_t i = 0; i < n; i++) {
        if (c[i].ops == NULL || c[i].ops->arm == NULL || c[i].ops->disarm == NULL)
            return TR_EINVAL;
        fds += c[i].ops == &tr__fd_clause_ops;
    }
    if (fds > TR_SELECT_MAX_FDS && !tr__current())
        return TR_EINVAL;
    int rc = tr_wait_enter();
    if (rc != 0)
        return rc;

    tr_waiter w;
    tr_waiter_init(&w);
    size_t start = (n > 1 && (flags & TR_SELECT_RANDOM)) ? random_start(n) : 0;
    size_t armed = 0;
    bool lost = false;
    for (; armed < n; armed++) {
        size_t i = (start + armed) % n;
        tr_wait_init(&c[i].entry, &w, c[i].buf);
        c[i].entry.n = c[i].n;
        c[i].entry.clause = (int)i;
        c[i].result = 0;
        int r = c[i].ops->arm(&c[i], &c[i].entry);
        if (r == TR_SELECT_DONE) {
            disarm_others(c, n, start, armed, i);
            return (int)i;
        }
        if (r == TR_SELECT_LOST) {
            lost = true;
            break;
        }
    }

    /* Lost: an earlier clause was claimed and its wake is on the way; the
     * park below only collects it (the state is no longer WAITING, so the
     * deadline and cancellation cannot win any more). */
    if (!lost && !w.task)
        rc = park_thread(&w, c, n, start, armed, deadline);
    else
        rc = tr_waiter_park(&w, NULL, lost ? TR_NEVER : deadline);
    if (rc != 0) {
        disarm_others(c, n, start, armed, SIZE_MAX);
        return rc;
    }
    tr_wait *won = w.winner;
    size_t i = (size_t)won->clause;
    disarm_others(c, n, start, armed, i);
    if (c[i].ops->finish)
        c[i].ops->finish(&c[i], won);
    else
        c[i].result = won->result;
    return (int)i;
}
