/* task.c — spawning, joining, detaching and cancelling tasks.
 *
 * A task struct is shared by up to three owners, counted in refs: the
 * handle the spawner holds (until join or detach), the running body (until
 * its stack is reaped after it returns), and a cancellation poke in flight
 * to its worker.  Whoever drops the last reference frees it, back into its
 * worker's cache when that happens on the worker's own thread.
 *
 * The stack is taken at spawn time, not at first run, so that running out
 * of stacks is an error the spawner sees (TR_ENOMEM) rather than a task
 * that can never start.
 */
#include "internal.h"
#include "tr_select.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#if TR_ASAN
#include <sanitizer/asan_interface.h>
#endif
#if TR_TSAN
#include <sanitizer/tsan_interface.h>
#endif

static atomic_ullong next_id = 1;

/* Ids come from one counter, a thousand at a time per thread, so that a
 * spawn does not contend on it. */
static uint64_t new_id(void) {
    static TR_TLS uint64_t next, end;
    if (next == end) {
        next = atomic_fetch_add_explicit(&next_id, 1024, memory_order_relaxed);
        end = next + 1024;
    }
    return next++;
}

static tr_worker *pick_worker(tr_runtime *rt, int where) {
    tr_worker *self = tr__tls_worker;
    if (where >= 1)
        return &rt->workers[where - 1];
    if (where == TR_WORKER_DEFAULT && self && self->rt == rt)
        return self;
    /* Balanced: the fewest live tasks, ties broken round robin. */
    unsigned start = atomic_fetch_add_explicit(&rt->rr, 1, memory_order_relaxed);
    tr_worker *best = NULL;
    long best_live = 0;
    for (int i = 0; i < rt->nworkers; i++) {
        tr_worker *w = &rt->workers[(start + (unsigned)i) % (unsigned)rt->nworkers];
        long live = tr__worker_live(w);
        if (!best || live < best_live) {
            best = w;
            best_live = live;
        }
    }
    return best;
}

/* A task struct, uninitialised: spawn_on() sets every field itself,
 * which costs a few stores where a memset of the whole struct (rep stos)
 * was the single most expensive step of a spawn.  The cache is a LIFO, so
 * the struct that comes back is the one freed last, still in cache. */
static tr_task *task_alloc(tr_worker *w) {
    tr_task *t;
    if (tr__tls_worker == w && w->task_cache) {
        t = w->task_cache;
        w->task_cache = t->next;
        w->task_cache_n--;
    } else {
        t = malloc(sizeof *t);
    }
    return t;
}

/* The worker's list of tasks belongs to its thread; a task whose last
 * reference goes elsewhere is sent home to be freed there. */
void tr__task_free_local(tr_task *t) {
    tr_worker *w = t->worker;
    if (t->all_prev)
        t->all_prev->all_next = t->all_next;
    else
        w->all = t->all_next;
    if (t->all_next)
        t->all_next->all_prev = t->all_prev;
    if (w->task_cache_n < TR_TASK_CACHE_MAX) {
        t->next = w->task_cache;
        w->task_cache = t;
        w->task_cache_n++;
    } else {
        free(t);
    }
}

/* Drops n references. */
static void release_n(tr_task *t, int n) {
    /* A count of n is ours alone: nobody else holds a reference that could
     * add one (adding takes one, as tr_task_cancel() does with the handle),
     * so the struct can go without the read-modify-write.  The acquire pairs
     * with the release of every earlier drop.  A join on the task's own
     * worker always finds the count at n here. */
    if (atomic_load_explicit(&t->refs, memory_order_acquire) != n &&
        atomic_fetch_sub_explicit(&t->refs, n, memory_order_acq_rel) != n)
        return;
    if (tr__tls_worker == t->worker) {
        tr__task_free_local(t);
    } else {
        /* Done, so its wake node is free; after shutdown nobody drains it
         * and tr__worker_destroy frees the struct with the list. */
        t->wake_node.kind = TR_INJ_FREE;
        tr__inject(t->worker, &t->wake_node);
    }
}

void tr__task_release(tr_task *t) { release_n(t, 1); }

void tr__worker_adopt(tr_worker *w, tr_task *t) {
    t->wake_node.kind = TR_INJ_WAKE; /* from now on the node carries wakes */
    t->all_prev = NULL;
    t->all_next = w->all;
    if (w->all)
        w->all->all_prev = t;
    w->all = t;
    if (atomic_load_explicit(&w->rt->stopping, memory_order_acquire))
        atomic_store_explicit(&t->cancelled, true, memory_order_relaxed);
    tr__schedule_front(t);
}

/* A task spawned from another thread arrives: count it as ours. */
void tr__worker_adopt_remote(tr_worker *w, tr_task *t) {
    tr__live_local_add(w, 1); /* before the remote count drops: see tr__worker_live */
    atomic_fetch_sub(&w->live_remote, 1);
    tr__worker_adopt(w, t);
}

/* What every spawn does once it knows where: count the task in, take a
 * struct and a stack, fill in the struct, queue it.  stack_size is rounded
 * and includes the colour room.  Inlined into both callers, so that
 * tr_spawn()'s fast path folds its constants. */
static inline __attribute__((always_inline)) int
spawn_on(tr_runtime *rt, tr_worker *w, bool local, size_t stack_size, const char *name,
         tr_task **out, tr_task_fn fn, void *arg) {
    /* A local spawner is itself a live task of w, so w's count cannot reach
     * zero under a shutdown's eyes before this one is counted; and if the
     * stopping flag is missed here, cancel_all() will still find the task
     * on this worker's list. */
    if (local)
        tr__live_local_add(w, 1);
    else
        atomic_fetch_add(&w->live_remote, 1);
    if (atomic_load_explicit(&rt->stopping, local ? memory_order_relaxed : memory_order_seq_cst)) {
        tr__runtime_task_gone(w, local);
        return TR_ESHUTDOWN;
    }
    tr_task *t = task_alloc(w);
    if (!t) {
        tr__runtime_task_gone(w, local);
        return TR_ENOMEM;
    }
    int rc = 0;
    if (local) {
        if (!tr__stack_pool_take(&w->pool, stack_size, &t->stack))
            rc = tr__stack_get(&w->pool, stack_size, &t->stack);
    } else {
        /* Onto another worker: a spawning worker still lends from its own
         * pool (only this thread touches it); the stack comes back to the
         * target's pool, and from there, once that is full, to the shared
         * one (reap_zombie), so neither side maps and unmaps in a loop. */
        tr_worker *me = tr__tls_worker;
        if (!(me && me->rt == rt && tr__stack_pool_take(&me->pool, stack_size, &t->stack))) {
            pthread_mutex_lock(&rt->pool_mu);
            rc = tr__stack_get(&rt->pool, stack_size, &t->stack);
            pthread_mutex_unlock(&rt->pool_mu);
        }
    }
    if (rc != 0) {
        free(t);
        tr__runtime_task_gone(w, local);
        return rc;
    }
    /* Every field but stack (just filled) and ctx (tr__ctx_make below):
     * task_alloc() does not clear the struct. */
    t->san.bottom = NULL;
    t->san.size = 0;
    t->san.fiber = NULL;
#if TR_ASAN
    ASAN_UNPOISON_MEMORY_REGION(t->stack.lo, t->stack.size); /* a reused stack */
    t->san.bottom = t->stack.lo;
    t->san.size = t->stack.size;
#endif
#if TR_TSAN
    t->san.fiber = __tsan_create_fiber(0);
#endif
    t->worker = w;
    t->next = NULL;
    t->all_prev = t->all_next = NULL;
    t->fn = fn;
    t->arg = arg;
    t->result = NULL;
    t->waiter = NULL;
    t->budget = TR_BUDGET;
    t->id = new_id();
    if (name)
        snprintf(t->name, sizeof t->name, "%s", name);
    else
        t->name[0] = '\0';
    t->wake_node.next = NULL;
    t->wake_node.kind = TR_INJ_WAKE;
    t->poke_node.next = NULL;
    t->poke_node.kind = TR_INJ_POKE;
    tr_spin_init(&t->lock);
    t->done = false;
    tr_waitq_init(&t->joiners);
    t->local_joiner = NULL;
    t->body_ref_passed = false;
    atomic_init(&t->refs, out ? 2 : 1);
    atomic_init(&t->cancelled, false);
    atomic_init(&t->killed, false);
    t->dying = false;
    t->cleanups = NULL;
    atomic_init(&t->poke_queued, 0);
    tr__ctx_make(&t->ctx, t->stack.lo, t->stack.size - t->stack.color, tr__task_entry, t);
    if (out)
        *out = t;
    if (local) {
        tr__worker_adopt(w, t);
    } else {
        t->wake_node.kind = TR_INJ_NEW;
        tr__inject(w, &t->wake_node);
    }
    return 0;
}

int tr_spawn_ex(tr_runtime *rt, const tr_spawn_opts *opts, tr_task **out, tr_task_fn fn,
                void *arg) {
    if (out)
        *out = NULL;
    if (!fn)
        return TR_EINVAL;
    if (!rt)
        rt = tr_runtime_current();
    if (!rt)
        return TR_EINVAL;
    int where = opts ? opts->worker : TR_WORKER_DEFAULT;
    if (where > rt->nworkers || where < TR_WORKER_BALANCED)
        return TR_EINVAL;
    size_t stack_size = opts && opts->stack_size ? opts->stack_size : rt->stack_size;
    if (stack_size < TR_STACK_MIN)
        return TR_EINVAL;
    if (stack_size > SIZE_MAX / 2)
        return TR_ENOMEM; /* what the mapping would say, without the overflow below */
    stack_size = tr__stack_round(stack_size + TR_STACK_COLORS * TR_STACK_COLOR_STEP);
    tr_worker *w = pick_worker(rt, where);
    return spawn_on(rt, w, tr__tls_worker == w, stack_size, opts ? opts->name : NULL, out, fn,
                    arg);
}

static _Atomic(tr_task_exit_hook) exit_hook;

void tr__set_task_exit_hook(tr_task_exit_hook fn) { atomic_store(&exit_hook, fn); }

/* The common case, a task spawning on its own worker with the defaults,
 * skips tr_spawn_ex()'s checks and choices: they all have one answer. */
int tr_spawn(tr_task **out, tr_task_fn fn, void *arg) {
    tr_worker *w = tr__tls_worker;
    if (!w || !w->current || !fn || !w->rt->stack_rounded)
        return tr_spawn_ex(NULL, NULL, out, fn, arg);
    if (out)
        *out = NULL;
    return spawn_on(w->rt, w, true, w->rt->stack_rounded, NULL, out, fn, arg);
}

void tr__task_finish(tr_task *t) {
    tr_task_exit_hook hook = atomic_load_explicit(&exit_hook, memory_order_relaxed);
    if (hook)
        hook(t);
    tr_worker *w = t->worker;
    tr_wait *lj = t->local_joiner;
    if (lj) {
        /* A task of this worker is in a plain join (see join_local()); a
         * handle has one joiner at a time, so there is nobody in joiners
         * and nobody else to take the lock against.  Its waiter has this
         * one entry and only this thread settles it (its deadline timer
         * and cancellation pokes run here too), so a load and a store do
         * what the claim's compare-and-swap does elsewhere. */
        tr_waiter *jw = lj->waiter;
        t->local_joiner = NULL;
        t->done = true;
        if (atomic_load_explicit(&jw->state, memory_order_relaxed) == TR_WAITER_WAITING) {
            atomic_store_explicit(&jw->state, TR_WAITER_CLAIMED, memory_order_relaxed);
            jw->winner = lj;
            /* The joiner drops our reference with its own: it runs after
             * reap(), which then leaves the count alone. */
            t->body_ref_passed = true;
            tr__schedule(jw->task);
        }
    } else if (atomic_load_explicit(&t->refs, memory_order_acquire) == 1) {
        /* Our reference is the only one: the handle is gone (detached), so
         * nobody is joining or can start to (joining takes the handle).
         * The acquire pairs with the detach's release.  No lock, then. */
        t->done = true;
    } else {
        tr_wait *woken = NULL;
        tr_spin_lock(&t->lock);
        t->done = true;
        tr_waitq_claim_all(&t->joiners, 0, &woken);
        tr_spin_unlock(&t->lock);
        tr_wait_wake_all(woken);
    }
    tr__runtime_task_gone(w, true);
}

/* The joiner is a task of t's own worker.  Then t can only end on this
 * thread, and never while we run, so done is read without the lock, and we
 * wait in t->local_joiner, which tr__task_finish() (on this thread) settles
 * with plain stores.  This saves the three read-modify-writes of the
 * locked path (our lock, the exit's lock, its claim) on the common
 * spawn-then-join of a child. */
static int join_local(tr_task *self, tr_task *t, int64_t deadline) {
    if (t->done)
        return 0;
    tr_waiter w;
    tr_wait e;
    tr__waiter_init_task(&w, self);
    tr_wait_init(&e, &w, NULL);
    t->local_joiner = &e;
    int rc = tr__park_task(&w, self, deadline);
    if (rc != 0)
        t->local_joiner = NULL; /* timed out or cancelled: t still runs */
    return rc;
}

int tr_task_join_until(tr_task *t, void **result, int64_t deadline) {
    if (!t)
        return TR_EINVAL;
    tr_worker *self_w = tr__tls_worker;
    tr_task *self = self_w ? self_w->current : NULL;
    if (t == self)
        return TR_EDEADLK;
    int rc = tr__wait_enter(self);
    if (rc)
        return rc;
    if (self && t->worker == self_w) {
        rc = join_local(self, t, deadline);
        if (rc != 0)
            return rc;
        if (result)
            *result = t->result;
        release_n(t, t->body_ref_passed ? 2 : 1);
        return 0;
    }
    tr_spin_lock(&t->lock);
    if (!t->done) {
        tr_waiter w;
        tr_wait e;
        tr_waiter_init(&w);
        tr_wait_init(&e, &w, NULL);
        tr_waitq_push(&t->joiners, &e);
        rc = tr_waiter_park(&w, &t->lock, deadline);
        if (rc != 0) {
            tr_spin_lock(&t->lock);
            if (e.linked)
                tr_waitq_remove(&t->joiners, &e);
            tr_spin_unlock(&t->lock);
            return rc;
        }
    } else {
        tr_spin_unlock(&t->lock);
    }
    if (result)
        *result = t->result;
    tr__task_release(t);
    return 0;
}

int tr_task_join(tr_task *t, void **result) { return tr_task_join_until(t, result, TR_NEVER); }

/* ---- a task's end as a select clause ------------------------------------ */

static void join_done(tr_clause *c) {
    tr_task *t = c->obj;
    if (c->aux)
        *(void **)c->aux = t->result;
    tr__task_release(t);
    c->result = 0;
}

static int join_arm(tr_clause *c, tr_wait *e) {
    tr_task *t = c->obj;
    if (t == tr__current()) {
        if (!tr_waiter_claim(e->waiter, e))
            return TR_SELECT_LOST;
        c->result = TR_EDEADLK;
        return TR_SELECT_DONE;
    }
    tr_spin_lock(&t->lock);
    if (!t->done) {
        tr_waitq_push(&t->joiners, e);
        tr_spin_unlock(&t->lock);
        return TR_SELECT_ARMED;
    }
    bool won = tr_waiter_claim(e->waiter, e);
    tr_spin_unlock(&t->lock);
    if (!won)
        return TR_SELECT_LOST;
    join_done(c);
    return TR_SELECT_DONE;
}

static void join_disarm(tr_clause *c, tr_wait *e) {
    tr_task *t = c->obj;
    tr_spin_lock(&t->lock);
    if (e->linked)
        tr_waitq_remove(&t->joiners, e);
    tr_spin_unlock(&t->lock);
}

static void join_finish(tr_clause *c, tr_wait *e) {
    (void)e;
    join_done(c);
}

static const tr_clause_ops join_ops = {join_arm, join_disarm, join_finish};

void tr_task_join_clause(tr_clause *c, tr_task *t, void **result) {
    c->ops = t ? &join_ops : NULL; /* NULL ops: tr_select() says TR_EINVAL */
    c->obj = t;
    c->buf = NULL;
    c->aux = result;
    c->n = 0;
    c->result = 0;
}

void tr_task_detach(tr_task *t) {
    if (t)
        tr__task_release(t);
}

void tr__task_poke(tr_task *t) {
    tr_waiter *w = t->waiter;
    if (!w)
        return;
    int expect = TR_WAITER_WAITING;
    if (atomic_compare_exchange_strong_explicit(&w->state, &expect, TR_WAITER_CANCELED,
                                                memory_order_acq_rel, memory_order_acquire))
        tr__schedule(t);
}

int tr_task_cancel(tr_task *t) {
    if (!t)
        return TR_EINVAL;
    atomic_store_explicit(&t->cancelled, true, memory_order_release);
    if (atomic_exchange_explicit(&t->poke_queued, 1, memory_order_acq_rel))
        return 0; /* a poke is on its way already */
    if (tr__tls_worker == t->worker) {
        atomic_store_explicit(&t->poke_queued, 0, memory_order_release);
        tr__task_poke(t);
        return 0;
    }
    atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
    tr__inject(t->worker, &t->poke_node);
    return 0;
}

tr_task *tr_task_self(void) { return tr__current(); }

int tr_task_cancelled(void) {
    tr_task *t = tr__current();
    return t && atomic_load_explicit(&t->cancelled, memory_order_acquire);
}

uint64_t tr_task_id(const tr_task *t) { return t ? t->id : 0; }
const char *tr_task_name(const tr_task *t) { return t ? t->name : ""; }

int tr_wait_enter(void) { return tr__wait_enter(tr__current()); }

int tr_sleep_until(int64_t deadline) {
    int rc = tr_wait_enter();
    if (rc)
        return rc;
    tr_waiter w;
    tr_waiter_init(&w);
    rc = tr_waiter_park(&w, NULL, deadline);
    return rc == TR_ETIMEDOUT ? 0 : rc;
}

int tr_sleep_ms(int64_t ms) { return tr_sleep_until(tr_after_ms(ms)); }
