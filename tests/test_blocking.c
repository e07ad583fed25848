/* test_blocking.c — tr_spawn_blocking() and the blocking pool.
 *
 * Jobs that must "block for a while" wait on a gate (an atomic flag the
 * test opens) rather than for a fixed time, so the outcome of each test is
 * decided by the order of events, not by how fast the machine is: a job
 * polls its gate with short sleeps (sleeping inside a job is the whole
 * point of the pool) and gives up after TR_TEST_DEADLINE, reporting that it
 * did, so a bug fails the test instead of hanging it.
 *
 * What a caller that gives up is promised — the job runs anyway and its
 * result reaches drop() exactly once — is checked after tr_runtime_free(),
 * which waits for every job, so the count is final when it is read.
 *
 * Loop tests: _i even runs on 1 worker, odd on 4.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "testutil.h"


static tr_runtime *runtime_with(int workers, int blocking_max) {
    tr_runtime *rt = NULL;
    tr_runtime_opts o = {0};
    o.workers = workers;
    o.blocking_max = blocking_max;
    ck_assert_tr_ok(tr_runtime_new(&rt, &o));
    return rt;
}


#define INT(p) ((int)(intptr_t)(p))

static void *join_res(tr_task *t) {
    void *res = NULL;
    ck_assert_tr_ok(tr_task_join_until(t, &res, TR_TEST_DEADLINE()));
    return res;
}

static void nap_ms(long ms) {
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Waits, inside a job, until *flag reaches n; false if it never does. */
static bool job_await(atomic_int *flag, int n) {
    int64_t dl = TR_TEST_DEADLINE();
    while (atomic_load(flag) < n) {
        if (tr_now() >= dl)
            return false;
        nap_ms(1);
    }
    return true;
}


/* ---- jobs ---------------------------------------------------------------- */

static void *double_it(void *arg) { return RC(INT(arg) * 2); }

/* Records where it ran, to show it was not the caller's worker. */
typedef struct where {
    int worker;        /* tr_worker_current() inside the job */
    pthread_t thread;
} where;

static void *where_job(void *arg) {
    where *w = arg;
    w->worker = tr_worker_current();
    w->thread = pthread_self();
    return arg;
}

/* A job that waits for its gate, then returns its tag. */
typedef struct gated {
    atomic_int open;
    atomic_int started;
    atomic_int finished;
    atomic_int dropped;
    atomic_int timed_out; /* the gate never opened */
} gated;

static gated *the_gate;

static void *gated_job(void *arg) {
    gated *g = the_gate;
    atomic_fetch_add(&g->started, 1);
    if (!job_await(&g->open, 1))
        atomic_fetch_add(&g->timed_out, 1);
    atomic_fetch_add(&g->finished, 1);
    return arg;
}

static void *quick_job(void *arg) {
    atomic_fetch_add(&the_gate->finished, 1);
    return arg;
}

static void *slow_job(void *arg) {
    nap_ms(50);
    atomic_fetch_add(&the_gate->finished, 1);
    return arg;
}

/* The results in these tests are tags: the address of a static. */
static char tag;

static void count_drop(void *r) {
    ck_assert_ptr_eq(r, &tag);
    atomic_fetch_add(&the_gate->dropped, 1);
}

/* ==== results ================================================================ */

static void *result_body(void *arg) {
    (void)arg;
    void *r = NULL;
    ck_assert_tr_ok(tr_spawn_blocking(double_it, RC(21), &r, TR_TEST_DEADLINE(), NULL));
    ck_assert_int_eq(INT(r), 42);

    where w = {.worker = 99};
    ck_assert_tr_ok(tr_spawn_blocking(where_job, &w, &r, TR_TEST_DEADLINE(), NULL));
    ck_assert_ptr_eq(r, &w);
    ck_assert_int_eq(w.worker, -1); /* a plain thread, not a worker */
    ck_assert(!pthread_equal(w.thread, pthread_self()));
    ck_assert_int_ge(tr_blocking_threads(NULL), 1);

    /* No place for the result: it is dropped, not lost. */
    ck_assert_tr_ok(tr_spawn_blocking(quick_job, &tag, NULL, TR_TEST_DEADLINE(), count_drop));
    ck_assert_int_eq(atomic_load(&the_gate->dropped), 1);
    /* ...and with no drop either, simply discarded. */
    ck_assert_tr_ok(tr_spawn_blocking(quick_job, &tag, NULL, TR_TEST_DEADLINE(), NULL));

    ck_assert_tr_err(tr_spawn_blocking(NULL, NULL, &r, TR_TEST_DEADLINE(), NULL), TR_EINVAL);
    return NULL;
}

START_TEST(test_result) {
    gated g = {0};
    the_gate = &g;
    tr_runtime *rt = tr_test_runtime(workers_for(_i));
    ck_assert_int_eq(tr_blocking_threads(rt), 0); /* made on first use */
    join_res(spawn_on(rt, tr_runtime_workers(rt) - 1, result_body, NULL));
    tr_runtime_free(&rt);
    ck_assert_int_eq(atomic_load(&g.finished), 2);
    ck_assert_int_eq(atomic_load(&g.dropped), 1);
}
END_TEST

/* ==== many jobs, few threads =================================================== */

enum { MANY_TASKS = 48, MANY_MAX = 3, JOBS_PER_TASK = 4 };

typedef struct many {
    atomic_int arrived;  /* jobs that have started */
    atomic_int running;
    atomic_int peak;
    atomic_int stuck;    /* a job that waited in vain for its peers */
} many;

static many *the_many;

/* The first MANY_MAX jobs meet: each waits until MANY_MAX have started,
 * which can only happen if the pool really grows to its limit.  Later jobs
 * find the count reached and just sleep a little. */
static void *many_job(void *arg) {
    many *m = the_many;
    int now = atomic_fetch_add(&m->running, 1) + 1;
    int peak = atomic_load(&m->peak);
    while (now > peak && !atomic_compare_exchange_weak(&m->peak, &peak, now)) {
    }
    atomic_fetch_add(&m->arrived, 1);
    if (!job_await(&m->arrived, MANY_MAX))
        atomic_fetch_add(&m->stuck, 1);
    nap_ms(1);
    atomic_fetch_sub(&m->running, 1);
    return RC(INT(arg) + 1);
}

static void *many_task(void *arg) {
    int base = INT(arg) * 100;
    for (int k = 0; k < JOBS_PER_TASK; k++) {
        void *r = NULL;
        int rc = tr_spawn_blocking(many_job, RC(base + k), &r, TR_TEST_DEADLINE(), NULL);
        if (rc)
            return RC(rc);
        if (INT(r) != base + k + 1)
            return RC(-1);
    }
    return RC(0);
}

START_TEST(test_many_jobs_queue) {
    many m = {0};
    the_many = &m;
    tr_runtime *rt = runtime_with(workers_for(_i), MANY_MAX);
    tr_task *t[MANY_TASKS];
    for (int i = 0; i < MANY_TASKS; i++)
        t[i] = spawn_on(rt, i, many_task, RC(i));
    for (int i = 0; i < MANY_TASKS; i++)
        ck_assert_int_eq(INT(join_res(t[i])), 0);
    ck_assert_int_eq(atomic_load(&m.arrived), MANY_TASKS * JOBS_PER_TASK);
    ck_assert_int_eq(atomic_load(&m.stuck), 0);
    ck_assert_int_le(atomic_load(&m.peak), MANY_MAX);
    ck_assert_int_ge(atomic_load(&m.peak), MANY_MAX); /* forced by the meeting */
    ck_assert_int_le(tr_blocking_threads(rt), MANY_MAX);
    tr_runtime_free(&rt);
}
END_TEST

/* ==== the worker keeps running ===================================================== */

typedef struct responsive {
    atomic_int flag;
} responsive;

static void *flag_job(void *arg) {
    responsive *r = arg;
    return RC(job_await(&r->flag, 1)); /* 1 only if the other task ran */
}

static void *flag_setter(void *arg) {
    responsive *r = arg;
    atomic_store(&r->flag, 1);
    return NULL;
}

/* A task waits for a job that waits for a second task of the same (only)
 * worker: possible only if the first task's wait leaves the worker free. */
static void *responsive_body(void *arg) {
    responsive *r = arg;
    tr_task *setter = spawn_on(tr_runtime_current(), 0, flag_setter, r);
    void *seen = NULL;
    ck_assert_tr_ok(tr_spawn_blocking(flag_job, r, &seen, TR_TEST_DEADLINE(), NULL));
    ck_assert_int_eq(INT(seen), 1);
    join_res(setter);
    return NULL;
}

START_TEST(test_worker_responsive) {
    responsive r = {0};
    tr_runtime *rt = tr_test_runtime(1);
    join_res(spawn_on(rt, 0, responsive_body, &r));
    tr_runtime_free(&rt);
}
END_TEST

/* ==== giving up: deadline and cancellation ========================================= */

static void *timeout_body(void *arg) {
    (void)arg;
    void *r = RC(7);
    int64_t dl = tr_after_ms(30);
    ck_assert_tr_err(tr_spawn_blocking(gated_job, &tag, &r, dl, count_drop), TR_ETIMEDOUT);
    ck_assert(tr_now() >= dl);
    ck_assert_ptr_eq(r, RC(7)); /* untouched */
    ck_assert_int_eq(atomic_load(&the_gate->dropped), 0); /* the job still runs */
    return NULL;
}

START_TEST(test_timeout_drops) {
    gated g = {0};
    the_gate = &g;
    tr_runtime *rt = tr_test_runtime(workers_for(_i));
    join_res(spawn_on(rt, tr_runtime_workers(rt) - 1, timeout_body, NULL));
    atomic_store(&g.open, 1);
    tr_runtime_free(&rt); /* waits for the job */
    ck_assert_int_eq(atomic_load(&g.finished), 1);
    ck_assert_int_eq(atomic_load(&g.timed_out), 0);
    ck_assert_int_eq(atomic_load(&g.dropped), 1);
}
END_TEST

/* A deadline in the past still runs the job: either the result comes back
 * (the job beat the caller to its lock) or it is dropped, never both and
 * never neither.  Many times, to cross both paths. */
enum { PAST_N = 200 };

static void *past_body(void *arg) {
    int *returned = arg;
    for (int i = 0; i < PAST_N; i++) {
        void *r = NULL;
        int rc = tr_spawn_blocking(quick_job, &tag, &r, i % 2 ? 0 : tr_now() - 1, count_drop);
        if (rc == 0) {
            ck_assert_ptr_eq(r, &tag);
            (*returned)++;
        } else {
            ck_assert_tr_err(rc, TR_ETIMEDOUT);
        }
    }
    return NULL;
}

START_TEST(test_past_deadline) {
    gated g = {0};
    the_gate = &g;
    int returned = 0;
    tr_runtime *rt = tr_test_runtime(workers_for(_i));
    join_res(spawn_on(rt, 0, past_body, &returned));
    tr_runtime_free(&rt);
    ck_assert_int_eq(atomic_load(&g.finished), PAST_N);
    ck_assert_int_eq(returned + atomic_load(&g.dropped), PAST_N);
}
END_TEST

static void *cancel_waiter(void *arg) {
    (void)arg;
    void *r = NULL;
    return RC(tr_spawn_blocking(gated_job, &tag, &r, TR_TEST_DEADLINE(), count_drop));
}

static void *self_cancelled(void *arg) {
    (void)arg;
    tr_task_cancel(tr_task_self());
    void *r = NULL;
    return RC(tr_spawn_blocking(quick_job, &tag, &r, TR_TEST_DEADLINE(), count_drop));
}

/* Cancelled while parked, and cancelled before the call: TR_ECANCELED both
 * times, both jobs run, both results dropped. */
static void *cancel_main(void *arg) {
    (void)arg;
    tr_runtime *rt = tr_runtime_current();
    tr_task *t = spawn_on(rt, tr_runtime_workers(rt) - 1, cancel_waiter, NULL);
    await_count(&the_gate->started, 1);
    tr_yield(); /* on one worker: the waiter is parked by now either way */
    ck_assert_tr_ok(tr_task_cancel(t));
    ck_assert_tr_err(INT(join_res(t)), TR_ECANCELED);

    ck_assert_tr_err(INT(join_res(spawn_on(rt, 0, self_cancelled, NULL))), TR_ECANCELED);
    atomic_store(&the_gate->open, 1);
    return NULL;
}

START_TEST(test_cancel_drops) {
    gated g = {0};
    the_gate = &g;
    tr_runtime *rt = tr_test_runtime(workers_for(_i));
    ck_assert_tr_ok(tr_runtime_block_on(rt, cancel_main, NULL, NULL));
    tr_runtime_free(&rt);
    ck_assert_int_eq(atomic_load(&g.finished), 2);
    ck_assert_int_eq(atomic_load(&g.timed_out), 0);
    ck_assert_int_eq(atomic_load(&g.dropped), 2);
}
END_TEST

/* Freeing the runtime waits for a job whose caller has long given up. */
static void *abandon_body(void *arg) {
    (void)arg;
    void *r = NULL;
    ck_assert_tr_err(tr_spawn_blocking(slow_job, &tag, &r, tr_after_ms(1), count_drop),
                     TR_ETIMEDOUT);
    return NULL;
}

START_TEST(test_free_waits_for_jobs) {
    gated g = {0};
    the_gate = &g;
    tr_runtime *rt = tr_test_runtime(workers_for(_i));
    join_res(spawn_on(rt, 0, abandon_body, NULL));
    tr_runtime_free(&rt);
    ck_assert_int_eq(atomic_load(&g.finished), 1);
    ck_assert_int_eq(atomic_load(&g.dropped), 1);
}
END_TEST

/* Shutdown cancels a task parked on a job; the job finishes before the
 * runtime is gone. */
START_TEST(test_shutdown_cancels_wait) {
    gated g = {0};
    the_gate = &g;
    tr_runtime *rt = tr_test_runtime(workers_for(_i));
    tr_task *t = spawn_on(rt, tr_runtime_workers(rt) - 1, cancel_waiter, NULL);
    await_count(&g.started, 1);
    /* Starts the shutdown; the task is still parked, or just cancelled. */
    int rc = tr_runtime_shutdown(rt, 0);
    ck_assert_msg(rc == 0 || rc == TR_ETIMEDOUT, "shutdown: %s", tr_strerror_name(rc));
    ck_assert_tr_err(INT(join_res(t)), TR_ECANCELED);
    atomic_store(&g.open, 1);
    tr_runtime_free(&rt);
    ck_assert_int_eq(atomic_load(&g.finished), 1);
    ck_assert_int_eq(atomic_load(&g.dropped), 1);
}
END_TEST

/* ==== plain threads ================================================================== */

static void *nested_job(void *arg) {
    /* A pool thread is a plain thread: a nested job runs inline. */
    void *r = NULL;
    int rc = tr_spawn_blocking(double_it, arg, &r, 0, NULL);
    return rc ? RC(rc) : r;
}

START_TEST(test_plain_thread_inline) {
    gated g = {0};
    the_gate = &g;
    tr_runtime *rt = tr_test_runtime(1); /* alive, and never used by these calls */
    void *r = NULL;
    ck_assert_tr_ok(tr_spawn_blocking(double_it, RC(21), &r, 0, NULL));
    ck_assert_int_eq(INT(r), 42);
    where w = {.worker = 99};
    ck_assert_tr_ok(tr_spawn_blocking(where_job, &w, &r, TR_TEST_DEADLINE(), NULL));
    ck_assert(pthread_equal(w.thread, pthread_self()));
    ck_assert_int_eq(w.worker, -1);
    ck_assert_tr_ok(tr_spawn_blocking(quick_job, &tag, NULL, 0, count_drop));
    ck_assert_int_eq(atomic_load(&g.dropped), 1);
    ck_assert_tr_err(tr_spawn_blocking(NULL, NULL, &r, 0, NULL), TR_EINVAL);
    ck_assert_int_eq(tr_blocking_threads(rt), 0);
    ck_assert_int_eq(tr_blocking_threads(NULL), 0);
    tr_runtime_free(&rt);
}
END_TEST

static void *nested_body(void *arg) {
    (void)arg;
    void *r = NULL;
    ck_assert_tr_ok(tr_spawn_blocking(nested_job, RC(5), &r, TR_TEST_DEADLINE(), NULL));
    ck_assert_int_eq(INT(r), 10);
    return NULL;
}

START_TEST(test_nested_inline) {
    tr_runtime *rt = tr_test_runtime(workers_for(_i));
    join_res(spawn_on(rt, 0, nested_body, NULL));
    tr_runtime_free(&rt);
}
END_TEST

static Suite *blocking_suite(void) {
    Suite *s = suite_create("blocking");
    TCase *tc = tr_tcase("results");
    tcase_add_loop_test(tc, test_result, 0, 2);
    tcase_add_loop_test(tc, test_many_jobs_queue, 0, 2);
    tcase_add_test(tc, test_worker_responsive);
    tcase_add_loop_test(tc, test_nested_inline, 0, 2);
    tcase_add_test(tc, test_plain_thread_inline);
    suite_add_tcase(s, tc);

    tc = tr_tcase("giving up");
    tcase_add_loop_test(tc, test_timeout_drops, 0, 2);
    tcase_add_loop_test(tc, test_past_deadline, 0, 2);
    tcase_add_loop_test(tc, test_cancel_drops, 0, 2);
    tcase_add_loop_test(tc, test_free_waits_for_jobs, 0, 2);
    tcase_add_loop_test(tc, test_shutdown_cancels_wait, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

TR_TEST_MAIN(blocking_suite)
