/* tr_select.h — wait on several things at once, take from exactly one.
 *
 * Every troupe primitive that can make a caller wait (a channel receive, a
 * permit, a lock, a notify, a task's end, fd readiness) offers its wait as
 * a clause: a small caller-owned struct naming the primitive, the operation
 * and the caller's buffer.  tr_select() waits on an array of clauses with
 * one deadline and completes exactly one of them; the others take nothing
 * (no message consumed, no permit held, no lock taken).  The clause array
 * is the caller's, usually on its stack, so a select allocates nothing.
 *
 *     tr_clause c[2];
 *     tr_mpsc_recv_clause(&c[0], mailbox, &msg);
 *     tr_watch_changed_clause(&c[1], shutdown);
 *     int i = tr_select(c, 2, tr_after_ms(500), 0);
 *     if (i == 0 && c[0].result == 0) handle(&msg);
 *     else if (i == 1) drain_and_exit();
 *     else if (i == TR_ETIMEDOUT) tick();
 *
 * How it works.  Each clause has one tr_wait entry, all pointing at one
 * tr_waiter.  tr_select() arms the clauses in order (or from a random
 * start with TR_SELECT_RANDOM): arming locks the primitive and either
 * completes the operation at once — after claiming the waiter itself, so
 * that a waker that already claimed it through an earlier clause wins —
 * or queues the entry.  Then it parks.  Whoever claims the waiter (a
 * sender handing a value over, a releaser handing a permit, the deadline,
 * cancellation) is the only winner; the other entries are removed.
 *
 * Writing a clause for a new primitive: fill a tr_clause_ops with
 *
 *   arm(c, e)     lock; if the operation can complete now: if
 *                 tr_waiter_claim(e->waiter, e) fails return TR_SELECT_LOST,
 *                 else do it, set c->result, unlock, return TR_SELECT_DONE.
 *                 Otherwise tr_waitq_push(e), unlock, return TR_SELECT_ARMED.
 *   disarm(c, e)  lock; if e->linked remove it; undo any partial hand-over
 *                 that did not make e win (a partial permit grant); unlock.
 *   finish(c, e)  (may be NULL) e won: its waker handed over through
 *                 e->data / e->n / e->result; turn that into c->result.
 *                 Default: c->result = e->result.
 *
 * A waker that claims an entry must complete the operation for it (copy the
 * value into e->data, count the permit as held) before tr_waiter_wake():
 * once claimed, the clause is the select's result.
 */
#ifndef TR_SELECT_H
#define TR_SELECT_H

#include <stddef.h>
#include <stdint.h>

#include "tr_wait.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
    TR_SELECT_ARMED = 0, /* queued; the select will park */
    TR_SELECT_DONE = 1,  /* completed at once; c->result holds the outcome */
    TR_SELECT_LOST = 2   /* another clause already won the waiter */
};

typedef struct tr_clause tr_clause;

typedef struct tr_clause_ops {
    int (*arm)(tr_clause *c, tr_wait *e);
    void (*disarm)(tr_clause *c, tr_wait *e);
    void (*finish)(tr_clause *c, tr_wait *e);
} tr_clause_ops;

struct tr_clause {
    const tr_clause_ops *ops;
    void *obj;     /* the primitive */
    void *buf;     /* the value to send, or room for the value received */
    size_t n;      /* a count: permits, a batch size */
    void *aux;     /* a second out-parameter (a permit, a lag count...) */
    int result;    /* after tr_select(): the chosen clause's outcome */
    tr_wait entry; /* storage for the wait; the caller's, no allocation */
    /* Room for a clause's private state while armed (an fd clause keeps its
     * libev watcher here), so that no clause needs to allocate. */
    union {
        void *p[8];
        uint64_t u[8];
    } priv;
};

enum {
    TR_SELECT_RANDOM = 1 /* among ready clauses, pick from a random start */
};

/* Waits until one clause completes, the deadline passes or the calling
 * task is cancelled.  May wait.  Returns the index of the clause that
 * completed (its outcome in clauses[i].result, which may itself be an
 * error such as TR_ECLOSED: "the channel closed" is an event a select
 * reports), or TR_ETIMEDOUT, TR_ECANCELED, or TR_EINVAL (NULL clauses with
 * n > 0, a clause without ops).  n == 0 waits for the deadline alone. */
int tr_select(tr_clause *clauses, size_t n, int64_t deadline, unsigned flags);

/* ---- the runtime's own clauses ----------------------------------------- */

/* A task's end.  When chosen, the task has been joined (as by
 * tr_task_join(): the handle is used up) and *result, if result is not
 * NULL, holds what it returned; clause result 0.  Not chosen, the handle
 * stays valid.  Joining the calling task itself gives TR_EDEADLK. */
void tr_task_join_clause(tr_clause *c, tr_task *t, void **result);

/* fd readiness, events TR_READABLE and/or TR_WRITABLE (from tr_io.h).
 * Clause result 0 when ready, -EBADF for a bad fd.  In a task the fd is
 * watched by the worker's libev loop; on a plain thread the select polls
 * it together with the thread's wake-up fd. */
void tr_fd_clause(tr_clause *c, int fd, int events);

/* A clause that never completes; handy to switch a clause off in an array
 * that keeps its shape (the seeds' `if cond` guard in tokio::select!). */
void tr_clause_never(tr_clause *c);

#ifdef __cplusplus
}
#endif
#endif
