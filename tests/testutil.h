/* testutil.h — what every Check suite of troupe shares.
 *
 * Each test file defines its test cases and calls TR_TEST_MAIN with a
 * function that builds its Suite.  Tests run forked (Check's default), so a
 * crash fails one test instead of the run; every wait in a test takes a
 * deadline, and the Check timeout below is only the last line of defence.
 */
#ifndef TR_TESTUTIL_H
#define TR_TESTUTIL_H

#include <check.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <troupe.h>

/* ThreadSanitizer and libev's lazy epoll bookkeeping.  When the last
 * watcher on an fd stops, libev leaves the fd in the kernel's epoll set and
 * only removes it (epoll_ctl) when an event for it turns up later, on the
 * worker's thread, at a moment nothing orders with the close() another
 * thread makes after joining the task that waited.  TSan models an fd as
 * memory and reports that as a race between close and epoll_ctl.  It is
 * benign by libev's design: an epoll_ctl on an fd that is closed or reused
 * fails, and libev then rebuilds its kernel state.  So races whose stack
 * contains epoll_ctl are suppressed in every suite, and nothing else is. */
#if defined(__SANITIZE_THREAD__)
#define TR_TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TR_TEST_TSAN 1
#endif
#endif
#ifdef TR_TEST_TSAN
const char *__tsan_default_suppressions(void);
const char *__tsan_default_suppressions(void) { return "race:epoll_ctl\n"; }
#endif

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

/* valgrind and TSan are slow (TSan: a fiber per task, every atomic
 * instrumented): scale big loops down under them, not elsewhere. */
static inline int scaled(int n) {
#ifdef TR_TEST_TSAN
    n /= 4;
#endif
    if (RUNNING_ON_VALGRIND)
        n /= 20;
    return n > 0 ? n : 1;
}

/* Generous: sanitizer builds run several times slower. */
#define TR_TEST_TIMEOUT 120

/* A deadline for waits that must not hang a test: 10 s from now. */
#define TR_TEST_DEADLINE() tr_after_ms(10000)

#define ck_assert_tr_ok(expr)                                                        \
    do {                                                                             \
        int ck_rc_ = (expr);                                                         \
        ck_assert_msg(ck_rc_ == 0, "%s returned %s (%d)", #expr,                     \
                      tr_strerror_name(ck_rc_), ck_rc_);                             \
    } while (0)

#define ck_assert_tr_err(expr, code)                                                 \
    do {                                                                             \
        int ck_rc_ = (expr);                                                         \
        ck_assert_msg(ck_rc_ == (code), "%s returned %s (%d), expected %s", #expr,   \
                      tr_strerror_name(ck_rc_), ck_rc_, tr_strerror_name(code));     \
    } while (0)

static inline TCase *tr_tcase(const char *name) {
    TCase *tc = tcase_create(name);
    tcase_set_timeout(tc, TR_TEST_TIMEOUT);
    return tc;
}

static inline tr_runtime *tr_test_runtime(int workers) {
    tr_runtime *rt = NULL;
    tr_runtime_opts o = {0};
    o.workers = workers;
    int rc = tr_runtime_new(&rt, &o);
    ck_assert_msg(rc == 0, "tr_runtime_new: %s", tr_strerror(rc));
    return rt;
}

/* ---- helpers the suites share --------------------------------------------- */

/* Loop tests: _i even runs on 1 worker, odd on 4. */
static inline int workers_for(int i) { return (i % 2) ? 4 : 1; }

/* A task's int result travels through its void * return value. */
#define RC(x) ((void *)(intptr_t)(x))

/* Spawns fn(arg) on worker `index` (modulo the worker count). */
static inline tr_task *spawn_on(tr_runtime *rt, int index, tr_task_fn fn, void *arg) {
    tr_spawn_opts o = {0};
    o.worker = TR_WORKER(index % tr_runtime_workers(rt));
    tr_task *t = NULL;
    ck_assert_tr_ok(tr_spawn_ex(rt, &o, &t, fn, arg));
    return t;
}

/* Joins t within the test deadline and returns its int result. */
static inline int join_rc(tr_task *t) {
    void *res = NULL;
    ck_assert_tr_ok(tr_task_join_until(t, &res, TR_TEST_DEADLINE()));
    return (int)(intptr_t)res;
}

/* Waits, in a task or a plain thread, until *flag reaches n; bounded so
 * that a bug fails the test instead of hanging it. */
static inline void await_count(atomic_int *flag, int n) {
    int64_t dl = TR_TEST_DEADLINE();
    while (atomic_load(flag) < n) {
        ck_assert_msg(tr_now() < dl, "count stuck at %d of %d", atomic_load(flag), n);
        if (tr_task_self())
            tr_yield();
        else
            sched_yield();
    }
}

/* The lock suites' stress run: fn on ntasks tasks (on the workers in
 * turn, argument i + 1) and on nthreads plain threads (argument
 * thread_arg + i) at once.  Once enough() says the lock has changed hands
 * often enough (or at the test deadline) every third task is cancelled,
 * wherever it is; then everyone is joined. */
static inline void tr_test_hammer(tr_runtime *rt, tr_task_fn fn, int ntasks, int nthreads,
                                  uintptr_t thread_arg, bool (*enough)(void)) {
    tr_task **t = calloc((size_t)ntasks, sizeof *t);
    pthread_t *th = calloc((size_t)nthreads, sizeof *th);
    ck_assert(t && th);
    for (int i = 0; i < ntasks; i++)
        t[i] = spawn_on(rt, i, fn, (void *)(uintptr_t)(i + 1));
    for (int i = 0; i < nthreads; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, fn, (void *)(thread_arg + (uintptr_t)i)), 0);
    int64_t dl = TR_TEST_DEADLINE();
    while (!enough() && tr_now() < dl)
        sched_yield();
    for (int i = 0; i < ntasks; i += 3)
        ck_assert_tr_ok(tr_task_cancel(t[i]));
    for (int i = 0; i < nthreads; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < ntasks; i++)
        join_rc(t[i]);
    free(th);
    free(t);
}

#define TR_TEST_MAIN(suite_fn)                                                       \
    int main(void) {                                                                 \
        SRunner *sr = srunner_create(suite_fn());                                    \
        srunner_run_all(sr, CK_NORMAL);                                              \
        int failed = srunner_ntests_failed(sr);                                      \
        srunner_free(sr);                                                            \
        return failed ? EXIT_FAILURE : EXIT_SUCCESS;                                 \
    }

#endif
