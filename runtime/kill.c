/* kill.c — tr_task_kill and cleanups: ending a task that will not end.
 *
 * C has no preemption and no unwinding, so a kill is a cancel plus a
 * promise: from the killed task's next safe point on, the runtime never
 * gives it control back.  The safe points are the places where the task
 * is known to have nothing linked in any wait queue and no runtime lock
 * held: the top of every wait (tr__wait_enter, which every wait, sleep,
 * join, select and the budget's forced yield go through) and tr_yield,
 * at its entry and after it resumes.  A wait the task is parked in when it
 * is killed is woken as by a cancel (it returns TR_ECANCELED, unlinking
 * itself on the way out), so the task reaches its next safe point soon.
 * The end of a wait is deliberately not a safe point: the primitive still
 * has its entries to unlink there.
 *
 * Dying happens on the task's own stack, below the frames it abandons:
 * the registered cleanups run, most recent first (each is unlinked before
 * it runs, so each runs once), then tr__task_finish, exactly as after a
 * normal return (exit hook, joiners, detach, live count), with
 * TR_TASK_KILLED as the result, and the task switches away for good; the
 * worker gives its stack back as for any ended task.  While the cleanups
 * run, the task is "dying": its waits return TR_ECANCELED (it is
 * cancelled) rather than entering the die path again, so a cleanup that
 * tries something that may wait fails fast instead of recursing.
 *
 * Abandoned frames under ASan: like longjmp, the die path tells ASan that
 * the frames above it will never return (__asan_handle_no_return), so no
 * stale redzone poison stays on a stack that goes back to the pool (spawn
 * unpoisons a reused stack as well; this keeps the dying task's own
 * cleanups and the exit hook safe on the same stack).
 *
 * Trade-off: a task killed after it returned only has its flag set
 * (tr_task_killed says true), since telling "returned" from another thread
 * without the join's lock would race the local join's lock-free end; the
 * kill has no other effect on it.
 */
#include "internal.h"

#if TR_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

void tr_cleanup_push(tr_cleanup *c, void (*fn)(void *arg), void *arg) {
    if (!c)
        return;
    c->fn = fn;
    c->arg = arg;
    c->next = NULL;
    tr_task *self = tr__current();
    if (!self)
        return; /* a plain thread cannot be killed: nothing to register */
    c->next = self->cleanups;
    self->cleanups = c;
}

void tr_cleanup_pop(tr_cleanup *c, bool run) {
    if (!c)
        return;
    tr_task *self = tr__current();
    if (self) {
        /* c is the most recent registration when used as documented.  If
         * it is not, the ones above it belong to frames that are gone
         * without popping them (a longjmp past them, as tr_actor_fail
         * does): they go with c, unrun.  A c not registered (popped
         * already) changes nothing. */
        for (tr_cleanup *e = self->cleanups; e; e = e->next) {
            if (e == c) {
                self->cleanups = c->next;
                break;
            }
        }
    }
    c->next = NULL;
    if (run && c->fn)
        c->fn(c->arg);
}

void tr__task_die(tr_task *t) {
    t->dying = true;
    for (tr_cleanup *c; (c = t->cleanups) != NULL;) {
        t->cleanups = c->next; /* before it runs: it runs once, even if it pops */
        c->next = NULL;
        if (c->fn)
            c->fn(c->arg);
    }
#if TR_ASAN
    __asan_handle_no_return();
#endif
    t->result = TR_TASK_KILLED;
    tr__task_finish(t);
    tr__task_leave(t);
}

int tr_task_kill(tr_task *t) {
    if (!t)
        return TR_EINVAL;
    tr_task *self = tr__current();
    /* Killing a task of our own worker that has returned: done is ours to
     * read here (it is written on this thread only, or under t->lock). */
    if (t != self && tr__tls_worker == t->worker && t->done)
        return 0;
    /* killed before cancelled, so a task that sees cancelled will see
     * killed soon; the safe points load both relaxed, so at worst one
     * more wait returns TR_ECANCELED and the task dies at the next. */
    if (atomic_exchange_explicit(&t->killed, true, memory_order_acq_rel))
        return 0; /* killed already */
    tr_task_cancel(t); /* wakes a wait it is parked in */
    if (t == self && !self->dying)
        tr__task_die(self);
    return 0;
}

bool tr_task_killed(const tr_task *t) {
    return t && atomic_load_explicit(&t->killed, memory_order_acquire);
}
