/* worker.c — one OS thread, one libev loop, one run queue.
 *
 * The scheduler is deliberately small.  Each worker owns a FIFO run queue
 * that only its own thread touches, so pushing and popping cost a few
 * pointer writes.  Other threads hand work over through the inject queue:
 * a Treiber stack that they push with one CAS and that the worker empties
 * with one exchange; ev_async wakes the loop only when a push finds the
 * stack empty, so a burst of cross-thread wakes costs one syscall.
 *
 * A task that suspends switches straight to the next runnable task rather
 * than through the scheduler context, which halves the switches on the hot
 * path.  The scheduler context (the thread's own stack) runs only when the
 * run queue is empty, where it sleeps in ev_run until a timer, an fd, a
 * signal or an inject wakes it, and, while tasks keep each other busy, once
 * TR_POLL_NS have passed (looked at every TR_POLL_EVERY switches), so that
 * timers and fds are looked at all the same.
 *
 * Spawned tasks go to the front of the queue and wakes to the back: a
 * parent that spawns children and then joins them runs its tree depth
 * first, so a million-task tree needs stacks for one path, not one level.
 */
#include "internal.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>


#if TR_ASAN
#include <sanitizer/common_interface_defs.h>
#endif
#if TR_TSAN
#include <sanitizer/tsan_interface.h>
#endif

TR_TLS tr_worker *tr__tls_worker;

/* ---- run queue (worker thread only) ----------------------------------- */

static void runq_push_back(tr_worker *w, tr_task *t) {
    t->next = NULL;
    if (w->runq_tail)
        w->runq_tail->next = t;
    else
        w->runq_head = t;
    w->runq_tail = t;
}

static void runq_push_front(tr_worker *w, tr_task *t) {
    t->next = w->runq_head;
    w->runq_head = t;
    if (!w->runq_tail)
        w->runq_tail = t;
}

/* The next task from the queue proper, not the LIFO slot. */
static tr_task *runq_pop(tr_worker *w) {
    tr_task *t = w->runq_head;
    if (t) {
        w->runq_head = t->next;
        if (!w->runq_head)
            w->runq_tail = NULL;
    }
    return t;
}

/* ---- inject queue ----------------------------------------------------------- */

void tr__inject(tr_worker *w, tr_inode *n) {
    tr_inode *old = atomic_load_explicit(&w->inject, memory_order_relaxed);
    do {
        n->next = old;
    } while (!atomic_compare_exchange_weak_explicit(&w->inject, &old, n, memory_order_release,
                                                    memory_order_relaxed));
    if (old == NULL)
        ev_async_send(w->loop, &w->async);
}

static void drain_inject(tr_worker *w) {
    if (!atomic_load_explicit(&w->inject, memory_order_relaxed))
        return;
    tr_inode *n = atomic_exchange_explicit(&w->inject, NULL, memory_order_acquire);
    tr_inode *fifo = NULL; /* the stack holds newest first: reverse it */
    while (n) {
        tr_inode *next = n->next;
        n->next = fifo;
        fifo = n;
        n = next;
    }
    while (fifo) {
        n = fifo;
        fifo = n->next;
        switch (n->kind) {
        case TR_INJ_WAKE:
            runq_push_back(w, (tr_task *)((char *)n - offsetof(tr_task, wake_node)));
            break;
        case TR_INJ_NEW:
            tr__worker_adopt_remote(w, (tr_task *)((char *)n - offsetof(tr_task, wake_node)));
            break;
        case TR_INJ_POKE: {
            tr_task *t = (tr_task *)((char *)n - offsetof(tr_task, poke_node));
            atomic_store_explicit(&t->poke_queued, 0, memory_order_release);
            tr__task_poke(t);
            tr__task_release(t);
            break;
        }
        case TR_INJ_FREE:
            tr__task_free_local((tr_task *)((char *)n - offsetof(tr_task, wake_node)));
            break;
        case TR_INJ_CALL: {
            tr_injcall *c = (tr_injcall *)n;
            c->fn(w, c);
            break;
        }
        }
    }
}

/* ---- switching -------------------------------------------------------------- */

static inline void switch_ctx(tr_ctx *from, tr_ctx *to, const tr_san *to_san, bool from_dies) {
#if TR_ASAN
    void *fake = NULL;
    __sanitizer_start_switch_fiber(from_dies ? NULL : &fake, to_san->bottom, to_san->size);
#endif
#if TR_TSAN
    __tsan_switch_to_fiber(to_san->fiber, 0);
#endif
    (void)to_san;
    (void)from_dies;
    tr__ctx_switch(from, to);
#if TR_ASAN
    __sanitizer_finish_switch_fiber(fake, NULL, NULL);
#endif
}

/* Gives the stack of the task that just returned back to the pool; it could
 * not do so itself while running on it. */
static __attribute__((noinline)) void reap_zombie(tr_worker *w, tr_task *t) {
    w->zombie = NULL;
    if (!tr__stack_pool_give(&w->pool, &t->stack)) {
        if (w->pool.count < w->pool.max) {
            tr__stack_put(&w->pool, &t->stack); /* went deep: trimmed, then kept */
        } else {
            /* Full.  Tasks spawned here from other workers brought their
             * stacks from elsewhere, so this pool only grows while theirs
             * drain: the surplus goes to the runtime's shared pool, where
             * those spawners look before mapping a new stack. */
            pthread_mutex_lock(&w->rt->pool_mu);
            tr__stack_put(&w->rt->pool, &t->stack);
            pthread_mutex_unlock(&w->rt->pool_mu);
        }
    }
    t->stack.map = NULL;
#if TR_TSAN
    __tsan_destroy_fiber(t->san.fiber);
    t->san.fiber = NULL;
#endif
    if (!t->body_ref_passed)
        tr__task_release(t);
}

/* After every switch: the test inline, the work (after a task's end only)
 * out of line, so that a yield's fast path stays a leaf but for the
 * switch. */
static inline void reap(tr_worker *w) {
    tr_task *t = w->zombie;
    if (TR_UNLIKELY(t != NULL))
        reap_zombie(w, t);
}

/* The LIFO slot first, unless it has been taken TR_LIFO_MAX times in a row
 * (two tasks waking each other would starve the rest), then the queue. */
static tr_task *runq_next(tr_worker *w) {
    tr_task *t = w->lifo;
    if (t && w->lifo_streak < TR_LIFO_MAX) {
        w->lifo = NULL;
        w->lifo_streak++;
        return t;
    }
    w->lifo_streak = 0;
    t = runq_pop(w);
    if (!t && w->lifo) {
        t = w->lifo;
        w->lifo = NULL;
    }
    return t;
}

/* The next task to run, or NULL to go through the scheduler (nothing
 * runnable, or time to look at the loop). */
/* Every TR_POLL_EVERY picks: take in what other threads sent, and say
 * whether it is time to go through the scheduler to look at the loop.  Only
 * then: the round trip through its context is two more switches,
 * mispredicted, and it reads the clock again. */
static __attribute__((noinline)) bool poll_due(tr_worker *w) {
    w->poll_in = TR_POLL_EVERY;
    drain_inject(w);
    return tr_now() - w->last_poll >= TR_POLL_NS;
}

/* Inline (it is on every switch); the countdown is a decrement and a
 * branch. */
static inline tr_task *pick_next(tr_worker *w) {
    if (TR_UNLIKELY(--w->poll_in == 0) && poll_due(w))
        return NULL;
    tr_task *t = runq_next(w);
    if (TR_UNLIKELY(!t)) {
        drain_inject(w);
        t = runq_next(w);
    }
    return t;
}

/* Always inline: tr__task_entry must make a task's last switch itself
 * (see there), and with a second caller (tr__task_leave) GCC stopped
 * inlining it, which cost spawn + join about 20%. */
static inline __attribute__((always_inline)) void switch_away(tr_worker *w, tr_task *from,
                                                              tr_task *next, bool from_dies) {
    if (next) {
        w->current = next;
        switch_ctx(&from->ctx, &next->ctx, &next->san, from_dies);
    } else {
        w->current = NULL;
        switch_ctx(&from->ctx, &w->sched_ctx, &w->sched_san, from_dies);
    }
    /* Back in `from`, on the same worker: tasks never migrate. */
    reap(w);
}

void tr__suspend(void) {
    tr_worker *w = tr__tls_worker;
    tr_task *self = w->current;
    tr_task *next = pick_next(w);
    if (next == self)
        return; /* woken while we looked for the next task */
    switch_away(w, self, next, false);
}


void tr__schedule(tr_task *t) {
    tr_worker *w = t->worker;
    if (tr__tls_worker != w) {
        tr__inject(w, &t->wake_node);
    } else if (w->current && w->current != t) {
        /* Woken by a task of this worker: run it next, while what the waker
         * just wrote is still in cache (Go's runnext, Tokio's LIFO slot).
         * It also keeps a joining parent close behind its children. */
        if (w->lifo)
            runq_push_back(w, w->lifo);
        w->lifo = t;
    } else {
        runq_push_back(w, t);
    }
}

void tr__schedule_front(tr_task *t) {
    runq_push_front(t->worker, t);
}

/* Here rather than in task.c for the run queue's inline helpers.  The
 * common case (another task is queued, the LIFO slot is empty and it is not
 * the scheduler's turn) is open-coded: swap the first task of the queue
 * for ourselves at its back, and switch.  That is what tr__schedule() and
 * tr__suspend() would do, without their calls and tests; two tasks that
 * yield to each other spend their time nowhere else. */
int tr_yield(void) {
    tr_worker *w = tr__tls_worker;
    tr_task *self = w ? w->current : NULL;
    if (TR_UNLIKELY(!self)) {
        sched_yield();
        return 0;
    }
    if (TR_UNLIKELY(atomic_load_explicit(&self->cancelled, memory_order_relaxed))) {
        tr__cancelled_point(self);
        return TR_ECANCELED;
    }
    self->budget = TR_BUDGET;
    tr_task *next = w->runq_head;
    if (TR_LIKELY(next && !w->lifo && w->poll_in > 1)) {
        w->poll_in--;
        w->lifo_streak = 0;
        w->runq_head = next->next;
        self->next = NULL;
        if (w->runq_head)
            w->runq_tail->next = self;
        else
            w->runq_head = self;
        w->runq_tail = self;
        w->current = next;
        switch_ctx(&self->ctx, &next->ctx, &next->san, false);
        reap(w);
        tr__kill_point(self); /* killed while it waited its turn */
        return 0;
    }
    tr__schedule(self);
    tr__suspend();
    tr__kill_point(self);
    return 0;
}

void tr__cancelled_point(tr_task *self) {
    tr__kill_point(self);
    if (--self->budget > 0)
        return;
    self->budget = TR_BUDGET;
    tr__schedule(self);
    tr__suspend();
    tr__kill_point(self);
}

/* The first thing a new task runs (jumped to, not called: see
 * tr__ctx_entry).  Its last switch is made here, not in a function it
 * calls: the return-stack predictor then holds, above the entries of the
 * task switched to, only this call's, so that the one return mispredicted
 * is the switch's own, and the returns that follow in the task switched to
 * (out of its park, its join...) are predicted again. */
void tr__task_entry(void *arg) {
    tr_task *t = arg;
#if TR_ASAN
    __sanitizer_finish_switch_fiber(NULL, NULL, NULL);
#endif
    reap(t->worker);
    t->result = t->fn(t->arg);
    tr__task_finish(t);
    tr_worker *w = t->worker;
    w->zombie = t;
    switch_away(w, t, pick_next(w), true);
    abort(); /* a returned task is never resumed */
}

/* tr__task_entry's end for a task that dies rather than returns (kill.c):
 * its frames below are abandoned, never resumed. */
void tr__task_leave(tr_task *t) {
    tr_worker *w = t->worker;
    w->zombie = t;
    switch_away(w, t, pick_next(w), true);
    abort();
}

/* ---- the worker thread --------------------------------------------------------- */

static void on_async(struct ev_loop *loop, ev_async *a, int revents) {
    (void)loop;
    (void)a;
    (void)revents; /* the scheduler loop drains the inject queue itself */
}

int tr__worker_init(tr_runtime *rt, tr_worker *w, int id) {
    memset(w, 0, sizeof *w);
    w->rt = rt;
    w->id = id;
    w->loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK);
    if (!w->loop)
        return TR_ENOMEM;
    atomic_init(&w->inject, NULL);
    atomic_init(&w->live_local, 0);
    atomic_init(&w->live_remote, 0);
    ev_async_init(&w->async, on_async);
    /* Active and referenced, so that ev_run(EVRUN_ONCE) on an idle worker
     * sleeps until something happens instead of returning at once. */
    ev_async_start(w->loop, &w->async);
    w->pool.max = 128;
    w->poll_in = TR_POLL_EVERY;
    return 0;
}

void *tr__worker_main(void *arg) {
    tr_worker *w = arg;
    tr_runtime *rt = w->rt;
    tr__tls_worker = w;
    tr__stack_altstack_init();
#if TR_TSAN
    w->sched_san.fiber = __tsan_get_current_fiber();
#endif
#if TR_ASAN
    pthread_attr_t attr;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        void *addr;
        size_t size;
        pthread_attr_getstack(&attr, &addr, &size);
        w->sched_san.bottom = addr;
        w->sched_san.size = size;
        pthread_attr_destroy(&attr);
    }
#endif
    for (;;) {
        drain_inject(w);
        tr_task *t = runq_next(w);
        if (t) {
            w->current = t;
            switch_ctx(&w->sched_ctx, &t->ctx, &t->san, false);
            reap(w);
            /* Busy: look at timers, fds and signals without sleeping, but
             * at most every TR_POLL_NS: the look is a syscall.  pick_next()
             * comes back here when that time has come. */
            if (w->runq_head || w->lifo) {
                int64_t now = tr_now();
                if (now - w->last_poll >= TR_POLL_NS) {
                    w->last_poll = now;
                    ev_run(w->loop, EVRUN_NOWAIT);
                }
            }
            continue;
        }
        if (atomic_load_explicit(&rt->exiting, memory_order_acquire))
            break;
        ev_run(w->loop, EVRUN_ONCE);
    }
    drain_inject(w); /* pokes of returned tasks still hold references */
    tr__tls_worker = NULL;
    return NULL;
}

void tr__worker_destroy(tr_worker *w) {
    while (w->all) { /* handles that were never joined nor detached */
        tr_task *t = w->all;
        w->all = t->all_next;
        free(t);
    }
    while (w->task_cache) {
        tr_task *t = w->task_cache;
        w->task_cache = t->next;
        free(t);
    }
    tr__stack_pool_drain(&w->pool);
    if (w->loop) {
        ev_async_stop(w->loop, &w->async);
        ev_loop_destroy(w->loop);
        w->loop = NULL;
    }
}
