/* runtime.c — creating, running, stopping and freeing a runtime.
 *
 * Shutdown is cooperative: every live task is cancelled, so each of its
 * waits returns TR_ECANCELED and it unwinds through its own return paths,
 * releasing what it owns.  Each worker counts its live tasks; the workers
 * are told to leave only when every count is zero, so no task is ever
 * abandoned on a stack nobody will resume.
 */
#include "internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>


long tr__worker_live(tr_worker *w) {
    /* remote first: adoption adds to local before it takes from remote */
    long remote = atomic_load(&w->live_remote);
    return remote + atomic_load(&w->live_local);
}

/* Wakes a shutdown waiting for the last task, to look at the counts again. */
static void wake_shutdown(tr_runtime *rt) {
    pthread_mutex_lock(&rt->idle_mu);
    pthread_cond_broadcast(&rt->idle_cv);
    pthread_mutex_unlock(&rt->idle_mu);
}

void tr__runtime_task_gone(tr_worker *w, bool adopted) {
    tr_runtime *rt = w->rt;
    /* No fence here, on the hot path: an exit that still saw stopping
     * false happened on this worker before cancel_all(), which wakes the
     * shutdown itself once it has run here. */
    if (adopted)
        tr__live_local_add(w, -1);
    else
        atomic_fetch_sub(&w->live_remote, 1);
    if (atomic_load_explicit(&rt->stopping, memory_order_relaxed))
        wake_shutdown(rt);
}

static int cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int tr_runtime_new(tr_runtime **out, const tr_runtime_opts *opts) {
    if (!out)
        return TR_EINVAL;
    *out = NULL;
    tr_runtime_opts o = {0};
    if (opts)
        o = *opts;
    if (o.workers < 0 || o.blocking_max < 0 || (o.stack_size && o.stack_size < TR_STACK_MIN))
        return TR_EINVAL;
    if (o.workers == 0)
        o.workers = cpu_count();
    if (o.workers > 1024)
        return TR_EINVAL;
    tr_runtime *rt = calloc(1, sizeof *rt);
    if (!rt)
        return TR_ENOMEM;
    rt->nworkers = o.workers;
    rt->stack_size = o.stack_size ? o.stack_size : TR_STACK_DEFAULT;
    /* 0 for an impossible size: then every spawn takes tr_spawn_ex()'s way,
     * which says TR_ENOMEM. */
    if (rt->stack_size <= SIZE_MAX / 2)
        rt->stack_rounded =
            tr__stack_round(rt->stack_size + TR_STACK_COLORS * TR_STACK_COLOR_STEP);
    rt->blocking_max = o.blocking_max ? o.blocking_max : 64;
    rt->pool.max = 256;
    pthread_mutex_init(&rt->pool_mu, NULL);
    pthread_mutex_init(&rt->idle_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&rt->idle_cv, &ca);
    pthread_condattr_destroy(&ca);
    rt->workers = calloc((size_t)o.workers, sizeof *rt->workers);
    if (!rt->workers)
        goto fail;
    tr__stack_overflow_init();
    int started = 0;
    for (int i = 0; i < o.workers; i++)
        if (tr__worker_init(rt, &rt->workers[i], i) != 0)
            goto fail_workers;
    for (; started < o.workers; started++)
        if (pthread_create(&rt->workers[started].thread, NULL, tr__worker_main,
                           &rt->workers[started]) != 0)
            goto fail_threads;
    *out = rt;
    return 0;

fail_threads:
    atomic_store(&rt->exiting, true);
    for (int i = 0; i < started; i++) {
        ev_async_send(rt->workers[i].loop, &rt->workers[i].async);
        pthread_join(rt->workers[i].thread, NULL);
    }
fail_workers:
    for (int i = 0; i < o.workers; i++)
        tr__worker_destroy(&rt->workers[i]);
fail:
    free(rt->workers);
    pthread_mutex_destroy(&rt->pool_mu);
    pthread_mutex_destroy(&rt->idle_mu);
    pthread_cond_destroy(&rt->idle_cv);
    free(rt);
    return TR_ENOMEM;
}

int tr_runtime_workers(const tr_runtime *rt) { return rt ? rt->nworkers : 0; }

tr_runtime *tr_runtime_current(void) {
    tr_worker *w = tr__tls_worker;
    return w ? w->rt : NULL;
}

int tr_worker_current(void) {
    tr_worker *w = tr__tls_worker;
    return w ? w->id : -1;
}

int tr_runtime_block_on(tr_runtime *rt, tr_task_fn fn, void *arg, void **result) {
    if (!rt || !fn)
        return TR_EINVAL;
    if (tr__tls_worker)
        return TR_EPERM; /* a worker thread blocked here would stall its tasks */
    tr_spawn_opts o = {.worker = TR_WORKER_BALANCED, .name = "main"};
    tr_task *t;
    int rc = tr_spawn_ex(rt, &o, &t, fn, arg);
    if (rc)
        return rc;
    return tr_task_join(t, result);
}

/* On each worker's own thread: cancel every task it has. */
static void cancel_all(tr_worker *w, tr_injcall *call) {
    (void)call;
    /* Only this thread changes the list, and a poke only pushes onto this
     * worker's own run queue. */
    for (tr_task *t = w->all; t; t = t->all_next) {
        atomic_store_explicit(&t->cancelled, true, memory_order_release);
        tr__task_poke(t);
    }
    /* Tasks of this worker that returned before this ran may have missed
     * the stopping flag and not woken the shutdown: do it for them. */
    wake_shutdown(w->rt);
}

static bool any_live(tr_runtime *rt) {
    for (int i = 0; i < rt->nworkers; i++)
        if (tr__worker_live(&rt->workers[i]) != 0)
            return true;
    return false;
}

int tr__runtime_on_shutdown(tr_runtime *rt, tr_runtime_shutdown_hook fn) {
    if (!rt || !fn)
        return TR_EINVAL;
    int rc = TR_ENOMEM;
    pthread_mutex_lock(&rt->idle_mu);
    for (int i = 0; i < TR_SHUTDOWN_HOOKS; i++) {
        if (rt->hooks[i] == fn) {
            rc = 0;
            break;
        }
        if (!rt->hooks[i]) {
            rt->hooks[i] = fn;
            rc = 0;
            break;
        }
    }
    pthread_mutex_unlock(&rt->idle_mu);
    return rc;
}

/* Runs the upper layers' hooks once, before anything is cancelled. */
static void run_shutdown_hooks(tr_runtime *rt) {
    tr_runtime_shutdown_hook hooks[TR_SHUTDOWN_HOOKS];
    pthread_mutex_lock(&rt->idle_mu);
    memcpy(hooks, rt->hooks, sizeof hooks);
    memset(rt->hooks, 0, sizeof rt->hooks);
    pthread_mutex_unlock(&rt->idle_mu);
    for (int i = 0; i < TR_SHUTDOWN_HOOKS && hooks[i]; i++)
        hooks[i](rt);
}

int tr_runtime_shutdown(tr_runtime *rt, int64_t deadline) {
    if (!rt)
        return TR_EINVAL;
    if (tr__tls_worker && tr__tls_worker->rt == rt)
        return TR_EPERM;
    if (rt->joined)
        return 0;
    if (!atomic_load(&rt->stopping))
        run_shutdown_hooks(rt);
    if (!atomic_exchange(&rt->stopping, true)) {
        for (int i = 0; i < rt->nworkers; i++) {
            tr_worker *w = &rt->workers[i];
            w->stop_call.node.kind = TR_INJ_CALL;
            w->stop_call.fn = cancel_all;
            tr__inject(w, &w->stop_call.node);
        }
    }
    pthread_mutex_lock(&rt->idle_mu);
    while (any_live(rt)) {
        if (deadline == TR_NEVER) {
            pthread_cond_wait(&rt->idle_cv, &rt->idle_mu);
            continue;
        }
        if (tr_now() >= deadline) {
            pthread_mutex_unlock(&rt->idle_mu);
            return TR_ETIMEDOUT;
        }
        struct timespec ts = {.tv_sec = deadline / 1000000000, .tv_nsec = deadline % 1000000000};
        pthread_cond_timedwait(&rt->idle_cv, &rt->idle_mu, &ts);
    }
    pthread_mutex_unlock(&rt->idle_mu);
    atomic_store_explicit(&rt->exiting, true, memory_order_release);
    for (int i = 0; i < rt->nworkers; i++)
        ev_async_send(rt->workers[i].loop, &rt->workers[i].async);
    for (int i = 0; i < rt->nworkers; i++)
        pthread_join(rt->workers[i].thread, NULL);
    rt->joined = true;
    return 0;
}

void tr_runtime_free(tr_runtime **prt) {
    if (!prt || !*prt)
        return;
    tr_runtime *rt = *prt;
    tr_runtime_shutdown(rt, TR_NEVER);
    tr__blocking_free(rt);
    tr__signals_free(rt);
    for (int i = 0; i < rt->nworkers; i++)
        tr__worker_destroy(&rt->workers[i]);
    tr__stack_pool_drain(&rt->pool);
    free(rt->workers);
    pthread_mutex_destroy(&rt->pool_mu);
    pthread_mutex_destroy(&rt->idle_mu);
    pthread_cond_destroy(&rt->idle_cv);
    free(rt);
    *prt = NULL;
}
