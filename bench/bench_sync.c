/* bench_sync.c — locks, semaphore, notify and select, measured.
 *
 * These have no peer programs; each line compares with what a C
 * programmer would otherwise use, or just gives the cost:
 *
 *   mutex_uncontended  one task locks and unlocks a tr_mutex n times, then
 *                      the same with a pthread_mutex_t in the same process;
 *                      the line's ns is troupe's, pthread_ns= and ratio= are
 *                      beside it (the target is ratio <= 2)
 *   mutex_contended    8 tasks on 2 workers share one tr_mutex, n locks in all
 *   semaphore_10, semaphore_5   6 tasks on 2 workers acquire and release one
 *                      permit, n times in all, with 10 and with 5 permits
 *   notify_one         8 waiter tasks loop on tr_notify_notified(); one task
 *                      calls tr_notify_one() until n notifications have been
 *                      received; ns per notification received
 *   select4            4 producer tasks each send n/4 u64 on their own mpsc
 *                      (capacity 1024); one consumer takes them all with
 *                      tr_select() over 4 receive clauses; ns per message
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "tr_error.h"
#include "tr_mpsc.h"
#include "tr_mutex.h"
#include "tr_notify.h"
#include "tr_runtime.h"
#include "tr_select.h"
#include "tr_semaphore.h"
#include "tr_time.h"

static int spawn_on(tr_task **t, int worker, tr_task_fn fn, void *arg) {
    tr_spawn_opts o;
    memset(&o, 0, sizeof o);
    o.worker = TR_WORKER(worker % tr_runtime_workers(tr_runtime_current()));
    return tr_spawn_ex(NULL, &o, t, fn, arg);
}

/* ---- mutex, uncontended ----------------------------------------------------------- */

static uint64_t shared_counter;

void *mutex_uncontended_body(void *p) {
    bench_out *out = p;
    tr_mutex m;
    tr_mutex_init(&m);
    int ok = 1;
    int64_t t0 = tr_now();
    for (uint64_t i = 0; i < out->n; i++) {
        ok &= tr_mutex_lock(&m, TR_NEVER) == 0;
        shared_counter++;
        tr_mutex_unlock(&m);
    }
    out->ns = tr_now() - t0;
    pthread_mutex_t pm = PTHREAD_MUTEX_INITIALIZER;
    int64_t t1 = tr_now();
    for (uint64_t i = 0; i < out->n; i++) {
        pthread_mutex_lock(&pm);
        shared_counter++;
        pthread_mutex_unlock(&pm);
    }
    int64_t pns = tr_now() - t1;
    tr_mutex_destroy(&m);
    out->ok = ok && shared_counter == 2 * out->n;
    append(out->extra, sizeof out->extra, "pthread_ns=%.2f ratio=%.2f",
           (double)pns / (double)out->n, (double)out->ns / (double)(pns ? pns : 1));
    return NULL;
}

/* ---- mutex, contended: 8 tasks on 2 workers ----------------------------------------- */

typedef struct {
    tr_mutex *m;
    uint64_t n;
    int err;
} locker_arg;

static void *locker(void *p) {
    locker_arg *a = p;
    for (uint64_t i = 0; i < a->n; i++) {
        if (tr_mutex_lock(a->m, TR_NEVER) != 0) {
            a->err = 1;
            return NULL;
        }
        shared_counter++;
        tr_mutex_unlock(a->m);
    }
    return NULL;
}

void *mutex_contended_body(void *p) {
    bench_out *out = p;
    enum { T = 8 };
    tr_mutex m;
    tr_mutex_init(&m);
    shared_counter = 0;
    locker_arg a[T];
    tr_task *t[T];
    uint64_t per = out->n / T;
    out->n = per * T;
    int64_t t0 = tr_now();
    for (int i = 0; i < T; i++) {
        a[i] = (locker_arg){&m, per, 0};
        spawn_on(&t[i], i, locker, &a[i]);
    }
    int err = 0;
    for (int i = 0; i < T; i++) {
        tr_task_join(t[i], NULL);
        err |= a[i].err;
    }
    out->ns = tr_now() - t0;
    tr_mutex_destroy(&m);
    out->ok = !err && shared_counter == out->n;
    append(out->extra, sizeof out->extra, "tasks=%d", T);
    return NULL;
}

/* ---- semaphore: 6 tasks on 10 or 5 permits ------------------------------------------ */

typedef struct {
    tr_sem *s;
    uint64_t n;
    atomic_int *inside, *peak;
    int err;
} sem_arg;

static void *sem_user(void *p) {
    sem_arg *a = p;
    for (uint64_t i = 0; i < a->n; i++) {
        if (tr_sem_acquire(a->s, TR_NEVER) != 0) {
            a->err = 1;
            return NULL;
        }
        int now = atomic_fetch_add_explicit(a->inside, 1, memory_order_relaxed) + 1;
        int peak = atomic_load_explicit(a->peak, memory_order_relaxed);
        if (now > peak)
            atomic_compare_exchange_strong(a->peak, &peak, now);
        atomic_fetch_sub_explicit(a->inside, 1, memory_order_relaxed);
        tr_sem_release(a->s, 1);
    }
    return NULL;
}

static void sem_run(bench_out *out, size_t permits) {
    enum { T = 6 };
    tr_sem s;
    tr_sem_init(&s, permits);
    atomic_int inside = 0, peak = 0;
    sem_arg a[T];
    tr_task *t[T];
    uint64_t per = out->n / T;
    out->n = per * T;
    int64_t t0 = tr_now();
    for (int i = 0; i < T; i++) {
        a[i] = (sem_arg){&s, per, &inside, &peak, 0};
        spawn_on(&t[i], i, sem_user, &a[i]);
    }
    int err = 0;
    for (int i = 0; i < T; i++) {
        tr_task_join(t[i], NULL);
        err |= a[i].err;
    }
    out->ns = tr_now() - t0;
    out->ok = !err && (size_t)atomic_load(&peak) <= permits &&
              tr_sem_available_permits(&s) == permits;
    tr_sem_destroy(&s);
    append(out->extra, sizeof out->extra, "tasks=%d permits=%zu peak_holders=%d", T, permits,
           atomic_load(&peak));
}

void *semaphore_10_body(void *p) {
    sem_run(p, 10);
    return NULL;
}

void *semaphore_5_body(void *p) {
    sem_run(p, 5);
    return NULL;
}

/* ---- notify_one to 8 waiters ----------------------------------------------------------- */

typedef struct {
    tr_notify *n;
    atomic_uint_fast64_t *received;
} waiter_arg;

static void *notify_waiter(void *p) {
    waiter_arg *a = p;
    while (tr_notify_notified(a->n, TR_NEVER) == 0)
        atomic_fetch_add_explicit(a->received, 1, memory_order_relaxed);
    return NULL; /* cancelled at the end */
}

void *notify_one_body(void *p) {
    bench_out *out = p;
    enum { W = 8 };
    tr_notify n;
    tr_notify_init(&n);
    atomic_uint_fast64_t received = 0;
    waiter_arg a = {&n, &received};
    tr_task *t[W];
    for (int i = 0; i < W; i++)
        spawn_on(&t[i], i, notify_waiter, &a);
    int64_t t0 = tr_now();
    uint64_t sent = 0;
    /* A notify_one with nobody registered stores one permit at most, so
     * the notifier keeps going until the waiters have received n. */
    while (atomic_load_explicit(&received, memory_order_relaxed) < out->n) {
        tr_notify_one(&n);
        sent++;
        if ((sent & 7) == 0)
            tr_yield();
    }
    out->ns = tr_now() - t0;
    uint64_t got = atomic_load(&received);
    for (int i = 0; i < W; i++) {
        tr_task_cancel(t[i]);
        tr_task_join(t[i], NULL);
    }
    tr_notify_destroy(&n);
    out->ok = got >= out->n;
    append(out->extra, sizeof out->extra, "waiters=%d notify_calls=%" PRIu64, W, sent);
    return NULL;
}

/* ---- select over 4 channels ---------------------------------------------------------------- */

typedef struct {
    tr_mpsc_tx *tx;
    uint64_t start, count;
} sel_producer_arg;

static void *sel_producer(void *p) {
    sel_producer_arg *a = p;
    for (uint64_t v = a->start; v < a->start + a->count; v++)
        if (tr_mpsc_send(a->tx, &v, TR_NEVER) != 0)
            break;
    tr_mpsc_tx_drop(&a->tx);
    return NULL;
}

void *select4_body(void *p) {
    bench_out *out = p;
    enum { C = 4 };
    uint64_t per = out->n / C;
    out->n = per * C;
    tr_mpsc_rx *rx[C];
    sel_producer_arg a[C];
    tr_task *t[C];
    for (int i = 0; i < C; i++) {
        if (tr_mpsc_new(&a[i].tx, &rx[i], 1024, sizeof(uint64_t)) != 0)
            return NULL;
        a[i].start = (uint64_t)i * per;
        a[i].count = per;
    }
    int64_t t0 = tr_now();
    for (int i = 0; i < C; i++)
        tr_spawn(&t[i], sel_producer, &a[i]);
    uint64_t sum = 0, got = 0;
    uint64_t v[C];
    tr_clause cl[C];
    int open = C;
    while (open > 0) {
        for (int i = 0; i < C; i++)
            if (rx[i])
                tr_mpsc_recv_clause(&cl[i], rx[i], &v[i]);
            else
                tr_clause_never(&cl[i]);
        int i = tr_select(cl, C, TR_NEVER, 0);
        if (i < 0)
            break;
        if (cl[i].result == 0) {
            sum += v[i];
            got++;
        } else { /* that producer is done */
            tr_mpsc_rx_drop(&rx[i]);
            open--;
        }
    }
    out->ns = tr_now() - t0;
    for (int i = 0; i < C; i++) {
        tr_task_join(t[i], NULL);
        if (rx[i])
            tr_mpsc_rx_drop(&rx[i]);
    }
    out->ok = got == out->n && sum == out->n * (out->n - 1) / 2;
    append(out->extra, sizeof out->extra, "channels=%d", C);
    return NULL;
}
