/* blocking.c — the blocking pool behind tr_spawn_blocking().
 *
 * Plain pthreads, a mutex and a condition variable: the jobs this pool runs
 * take milliseconds to seconds, so a lock-free queue would buy nothing, and
 * pthread_cond_timedwait() gives the idle timeout for free.
 *
 * The pool is made on a runtime's first job.  A submitter starts a new
 * thread when the queued jobs outnumber the idle threads and the pool is
 * below blocking_max; otherwise it wakes an idle one, or the job waits its
 * turn.  A thread idle for TR_BLOCKING_IDLE_NS exits.  Threads are never
 * detached: each exiting thread leaves its id in a one-slot "zombie" and
 * joins the thread that was there before it, so at most one exited thread
 * is ever unjoined and tr__blocking_free() joins that last one; nothing is
 * left for LeakSanitizer or valgrind to find, and no thread can still be
 * running its exit path when the pool's memory goes.
 *
 * A job and its caller meet through the tr_wait.h protocol under the job's
 * own spin lock.  The job lives on the heap, not on the caller's stack,
 * because the caller may leave first (deadline, cancellation); then the
 * flag `abandoned` tells the pool thread to pass the result to drop().  If
 * the job finishes while the caller is on its way out, the caller finds
 * `done` set under the lock and drops the result itself, so exactly one
 * side frees the job and drops the result, whatever the interleaving.
 */
#include "config.h"

#include <stdlib.h>
#include <time.h>

#include "internal.h"
#include "tr_blocking.h"

#define TR_BLOCKING_IDLE_NS (10 * 1000000000LL) /* idle threads exit after this */
#define TR_BLOCKING_MAX_DEFAULT 64

typedef struct tr_blocking_pool tr_blocking_pool;

typedef struct tr_job {
    struct tr_job *next;     /* the pool's queue */
    tr_blocking_fn fn;
    void *arg;
    void (*drop)(void *);
    tr_spin lock;            /* guards the fields below */
    void *result;            /* valid once done */
    tr_wait *wait;           /* the parked caller's entry, if parked */
    bool done;               /* fn has returned */
    bool abandoned;          /* the caller has gone: the finisher drops */
} tr_job;

struct tr_blocking_pool {
    pthread_mutex_t mu;
    pthread_cond_t work_cv;  /* idle threads wait here for jobs */
    pthread_cond_t gone_cv;  /* tr__blocking_free() waits for threads == 0 */
    tr_job *head, *tail;
    int queued;              /* jobs in the queue, not yet taken */
    int threads;             /* alive, busy or idle */
    int idle;                /* waiting on work_cv */
    int max;
    bool closing;
    bool has_zombie;         /* zombie: the last thread that exited, unjoined */
    pthread_t zombie;
};

/* ---- a job ends ------------------------------------------------------------- */

/* Hands r to whoever asked for it: *result, or drop when unwanted. */
static void deliver(void *r, void **result, void (*drop)(void *)) {
    if (result)
        *result = r;
    else if (drop)
        drop(r);
}

static void job_finish(tr_job *j, void *r) {
    tr_spin_lock(&j->lock);
    j->done = true;
    j->result = r;
    tr_wait *e = j->wait;
    if (e) {
        j->wait = NULL;
        if (tr_waiter_claim(e->waiter, e)) {
            *(void **)e->data = r;
            tr_spin_unlock(&j->lock);
            free(j);
            tr_waiter_wake(e->waiter);
            return;
        }
        /* The deadline or a cancellation won: the caller will lock, find
         * `done` and drop the result. */
        tr_spin_unlock(&j->lock);
        return;
    }
    if (j->abandoned) {
        tr_spin_unlock(&j->lock);
        if (j->drop)
            j->drop(r);
        free(j);
        return;
    }
    tr_spin_unlock(&j->lock); /* the caller has not parked yet: it takes r */
}

/* ---- pool threads ------------------------------------------------------------ */

static void *pool_main(void *arg) {
    tr_blocking_pool *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        tr_job *j = p->head;
        if (j) {
            p->head = j->next;
            if (!p->head)
                p->tail = NULL;
            p->queued--;
            pthread_mutex_unlock(&p->mu);
            job_finish(j, j->fn(j->arg));
            pthread_mutex_lock(&p->mu);
            continue;
        }
        if (p->closing)
            break;
        int64_t until = tr_now() + TR_BLOCKING_IDLE_NS;
        struct timespec ts = {.tv_sec = until / 1000000000, .tv_nsec = until % 1000000000};
        p->idle++;
        int rc = pthread_cond_timedwait(&p->work_cv, &p->mu, &ts);
        p->idle--;
        if (rc == ETIMEDOUT && !p->head)
            break;
    }
    bool reap = p->has_zombie;
    pthread_t prev = p->zombie;
    p->zombie = pthread_self();
    p->has_zombie = true;
    if (--p->threads == 0)
        pthread_cond_broadcast(&p->gone_cv);
    pthread_mutex_unlock(&p->mu);
    if (reap)
        pthread_join(prev, NULL);
    return NULL;
}

/* Queues j, starting a thread if none is free.  TR_ENOMEM (j not queued)
 * only when no thread exists and none can be made. */
static int pool_submit(tr_blocking_pool *p, tr_job *j) {
    pthread_mutex_lock(&p->mu);
    j->next = NULL;
    if (p->tail)
        p->tail->next = j;
    else
        p->head = j;
    p->tail = j;
    p->queued++;
    if (p->queued > p->idle && p->threads < p->max) {
        pthread_t tid;
        if (pthread_create(&tid, NULL, pool_main, p) == 0) {
            p->threads++;
        } else if (p->threads == 0) { /* nobody would ever run j */
            tr_job **link = &p->head;
            p->tail = NULL;
            while (*link != j) {
                p->tail = *link;
                link = &(*link)->next;
            }
            *link = NULL; /* j is the last one */
            p->queued--;
            pthread_mutex_unlock(&p->mu);
            return TR_ENOMEM;
        }
    }
    if (p->idle > 0)
        pthread_cond_signal(&p->work_cv);
    pthread_mutex_unlock(&p->mu);
    return 0;
}

/* rt's pool, made on first use; NULL when out of memory. */
static tr_blocking_pool *pool_get(tr_runtime *rt) {
    tr_blocking_pool *p = __atomic_load_n(&rt->blocking, __ATOMIC_ACQUIRE);
    if (p)
        return p;
    tr_blocking_pool *made = calloc(1, sizeof *made);
    if (!made)
        return NULL;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* tr_now()'s clock */
    pthread_mutex_init(&made->mu, NULL);
    pthread_cond_init(&made->work_cv, &ca);
    pthread_cond_init(&made->gone_cv, NULL);
    pthread_condattr_destroy(&ca);
    made->max = rt->blocking_max > 0 ? rt->blocking_max : TR_BLOCKING_MAX_DEFAULT;
    tr_blocking_pool *expect = NULL;
    if (__atomic_compare_exchange_n(&rt->blocking, &expect, made, false, __ATOMIC_ACQ_REL,
                                    __ATOMIC_ACQUIRE))
        return made;
    pthread_mutex_destroy(&made->mu); /* another thread made it first */
    pthread_cond_destroy(&made->work_cv);
    pthread_cond_destroy(&made->gone_cv);
    free(made);
    return expect;
}

/* ---- the API ------------------------------------------------------------------ */

int tr_spawn_blocking(tr_blocking_fn fn, void *arg, void **result, int64_t deadline,
                      void (*drop)(void *result)) {
    if (!fn)
        return TR_EINVAL;
    if (!tr__current()) { /* a plain thread may block: run it here */
        deliver(fn(arg), result, drop);
        return 0;
    }
    tr_runtime *rt = tr_runtime_current();
    /* Cancelled already: the job still runs, so that arg is released the
     * same way on every path; only the waiting is skipped. */
    int entry = tr_wait_enter();
    tr_blocking_pool *p = pool_get(rt);
    if (!p)
        return TR_ENOMEM;
    tr_job *j = calloc(1, sizeof *j);
    if (!j)
        return TR_ENOMEM;
    j->fn = fn;
    j->arg = arg;
    j->drop = drop;
    tr_spin_init(&j->lock);
    j->abandoned = entry != 0;
    int rc = pool_submit(p, j);
    if (rc) {
        free(j);
        return rc;
    }
    if (entry)
        return entry;

    void *r = NULL;
    tr_waiter w;
    tr_wait e;
    tr_waiter_init(&w);
    tr_wait_init(&e, &w, &r);
    tr_spin_lock(&j->lock);
    if (j->done) { /* finished before we could park */
        r = j->result;
        tr_spin_unlock(&j->lock);
        free(j);
    } else {
        j->wait = &e;
        rc = tr_waiter_park(&w, &j->lock, deadline);
        if (rc != 0) {
            tr_spin_lock(&j->lock);
            j->wait = NULL;
            if (j->done) { /* it finished, but too late */
                r = j->result;
                tr_spin_unlock(&j->lock);
                free(j);
                if (drop)
                    drop(r);
            } else {
                j->abandoned = true;
                tr_spin_unlock(&j->lock);
            }
            return rc;
        }
        /* Claimed: the pool thread wrote r and freed the job. */
    }
    deliver(r, result, drop);
    return 0;
}

int tr_blocking_threads(tr_runtime *rt) {
    if (!rt)
        rt = tr_runtime_current();
    if (!rt)
        return 0;
    tr_blocking_pool *p = __atomic_load_n(&rt->blocking, __ATOMIC_ACQUIRE);
    if (!p)
        return 0;
    pthread_mutex_lock(&p->mu);
    int n = p->threads;
    pthread_mutex_unlock(&p->mu);
    return n;
}

void tr__blocking_free(tr_runtime *rt) {
    tr_blocking_pool *p = rt->blocking;
    if (!p)
        return;
    rt->blocking = NULL;
    pthread_mutex_lock(&p->mu);
    p->closing = true;
    pthread_cond_broadcast(&p->work_cv);
    /* Threads drain the queue before they leave, so this waits for every
     * queued and running job, and for the drops of abandoned ones. */
    while (p->threads > 0)
        pthread_cond_wait(&p->gone_cv, &p->mu);
    bool reap = p->has_zombie;
    pthread_t last = p->zombie;
    pthread_mutex_unlock(&p->mu);
    if (reap)
        pthread_join(last, NULL); /* which joined the one before it, and so on */
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->work_cv);
    pthread_cond_destroy(&p->gone_cv);
    free(p);
}
