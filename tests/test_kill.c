/* test_kill.c — tr_task_kill and cleanups: a killed task is never resumed
 * past its next safe point, its cleanups run most recent first exactly
 * once, joiners get TR_TASK_KILLED, detached killed tasks are reaped and
 * their stacks go back to the pool; from tasks on the same and on other
 * workers and from plain threads. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "testutil.h"

/* Joins t, which must have been killed (not have returned). */
static void join_killed(tr_task *t) {
    void *res = NULL;
    ck_assert_tr_ok(tr_task_join_until(t, &res, TR_TEST_DEADLINE()));
    ck_assert_ptr_eq(res, TR_TASK_KILLED);
}

/* What the tasks of one test report. */
static atomic_int entered, after, cleanups, wait_rc, exits;
static atomic_int order[16], norder;

/* Tests may share a process (CK_FORK=no, valgrind): start each afresh. */
static void reset(void) {
    atomic_store(&entered, 0);
    atomic_store(&after, 0);
    atomic_store(&cleanups, 0);
    atomic_store(&wait_rc, 1);
    atomic_store(&exits, 0);
    atomic_store(&norder, 0);
    for (int i = 0; i < 16; i++)
        atomic_store(&order[i], 0);
}

static void count_cleanup(void *arg) {
    (void)arg;
    atomic_fetch_add(&cleanups, 1);
}

static void record(void *arg) {
    int i = atomic_fetch_add(&norder, 1);
    if (i < 16)
        atomic_store(&order[i], (int)(intptr_t)arg);
}

/* ---- a parked task ------------------------------------------------------ */

static void *parked_body(void *arg) {
    (void)arg;
    tr_cleanup c;
    tr_cleanup_push(&c, count_cleanup, NULL);
    atomic_store(&entered, 1);
    atomic_store(&wait_rc, tr_sleep_until(TR_TEST_DEADLINE()));
    tr_sleep_ms(1); /* the next wait: the task dies here */
    atomic_store(&after, 1);
    tr_cleanup_pop(&c, false);
    return RC(7);
}

static void *kill_task(void *arg) { return RC(tr_task_kill(arg)); }

START_TEST(test_parked_killed) {
    /* One worker: the killer runs only once the victim has parked. */
    tr_runtime *rt = tr_test_runtime(1);
    tr_task *t = spawn_on(rt, 0, parked_body, NULL);
    await_count(&entered, 1);
    tr_task *k = spawn_on(rt, 0, kill_task, t);
    ck_assert_int_eq(join_rc(k), 0);
    join_killed(t);
    ck_assert_int_eq(atomic_load(&wait_rc), TR_ECANCELED);
    ck_assert_int_eq(atomic_load(&after), 0);
    ck_assert_int_eq(atomic_load(&cleanups), 1);
    tr_runtime_free(&rt);
}
END_TEST

/* ---- a task that never waits but yields --------------------------------- */

static void *yield_loop(void *arg) {
    (void)arg;
    tr_cleanup c;
    tr_cleanup_push(&c, count_cleanup, NULL);
    atomic_store(&entered, 1);
    for (;;)
        tr_yield();
    return NULL;
}

/* _i: 0 killed by a task on another worker, 1 by a plain thread, 2 by a
 * task of the same (only) worker. */
START_TEST(test_yield_loop_killed) {
    tr_runtime *rt = tr_test_runtime(_i == 2 ? 1 : 4);
    tr_task *t = spawn_on(rt, 0, yield_loop, NULL);
    await_count(&entered, 1);
    if (_i == 1) {
        ck_assert_tr_ok(tr_task_kill(t));
    } else {
        tr_task *k = spawn_on(rt, _i == 0 ? 1 : 0, kill_task, t);
        ck_assert_int_eq(join_rc(k), 0);
    }
    join_killed(t);
    ck_assert_int_eq(atomic_load(&cleanups), 1);
    tr_runtime_free(&rt);
}
END_TEST

/* ---- a task that ignores its cancellation ------------------------------- */

static void *stubborn(void *arg) {
    (void)arg;
    tr_cleanup c;
    tr_cleanup_push(&c, count_cleanup, NULL);
    atomic_store(&entered, 1);
    while (1)
        tr_sleep_ms(10);
    return NULL;
}

START_TEST(test_ignores_cancel_killed) {
    tr_runtime *rt = tr_test_runtime(workers_for(_i));
    tr_task *t = spawn_on(rt, 0, stubborn, NULL);
    await_count(&entered, 1);
    /* A cancel alone does not end it... */
    ck_assert_tr_ok(tr_task_cancel(t));
    ck_assert_tr_err(tr_task_join_until(t, NULL, tr_after_ms(30)), TR_ETIMEDOUT);
    ck_assert(!tr_task_killed(t));
    /* ...a kill does. */
    ck_assert_tr_ok(tr_task_kill(t));
    ck_assert(tr_task_killed(t));
    join_killed(t);
    ck_assert_int_eq(atomic_load(&cleanups), 1);
    tr_runtime_free(&rt);
}
END_TEST

/* ---- cleanups: LIFO, once, popped ones not run, nesting ----------------- */

static void nested(void) {
    tr_cleanup c5;
    tr_cleanup_push(&c5, record, (void *)5);
    tr_cleanup_pop(&c5, true); /* runs now, and never again */
}

static void *cleanup_body(void *arg) {
    (void)arg;
    tr_cleanup c1, c2, c3, c4;
    tr_cleanup_push(&c1, record, (void *)1);
    tr_cleanup_push(&c2, record, (void *)2);
    tr_cleanup_push(&c3, record, (void *)3);
    tr_cleanup_pop(&c3, false);
    tr_cleanup_push(&c4, record, (void *)4);
    nested();
    atomic_store(&entered, 1);
    while (1)
        tr_sleep_until(TR_TEST_DEADLINE());
    return NULL;
}

START_TEST(test_cleanups_lifo) {
    tr_runtime *rt = tr_test_runtime(workers_for(_i));
    tr_task *t = spawn_on(rt, 0, cleanup_body, NULL);
    await_count(&entered, 1);
    ck_assert_tr_ok(tr_task_kill(t));
    join_killed(t);
    ck_assert_int_eq(atomic_load(&norder), 4);
    ck_assert_int_eq(atomic_load(&order[0]), 5);
    ck_assert_int_eq(atomic_load(&order[1]), 4);
    ck_assert_int_eq(atomic_load(&order[2]), 2);
    ck_assert_int_eq(atomic_load(&order[3]), 1);
    tr_runtime_free(&rt);
}
END_TEST

START_TEST(test_cleanup_plain_thread) {
    tr_cleanup c;
    tr_cleanup_push(&c, count_cleanup, NULL); /* nothing to register on */
    tr_cleanup_pop(&c, false);
    ck_assert_int_eq(atomic_load(&cleanups), 0);
    tr_cleanup_push(&c, count_cleanup, NULL);
    tr_cleanup_pop(&c, true); /* pop(run) still runs it, as pthread's does */
    ck_assert_int_eq(atomic_load(&cleanups), 1);
    tr_cleanup_push(NULL, count_cleanup, NULL);
    tr_cleanup_pop(NULL, true);
    ck_assert_tr_err(tr_task_kill(NULL), TR_EINVAL);
    ck_assert(!tr_task_killed(NULL));
}
END_TEST

/* ---- self-kill, the exit hook, waits while dying ------------------------ */

static void exit_hook(tr_task *t) {
    (void)t;
    atomic_fetch_add(&exits, 1);
}

static void dying_cleanup(void *arg) {
    (void)arg;
    /* While dying, a wait fails fast and a second kill is nothing. */
    atomic_store(&wait_rc, tr_sleep_until(TR_TEST_DEADLINE()));
    if (tr_task_kill(tr_task_self()) == 0 && tr_yield() == TR_ECANCELED)
        atomic_fetch_add(&cleanups, 1);
}

static void *self_kill(void *arg) {
    (void)arg;
    tr_cleanup c;
    tr_cleanup_push(&c, dying_cleanup, NULL);
    tr_task_kill(tr_task_self());
    atomic_store(&after, 1);
    return RC(3);
}

START_TEST(test_self_kill) {
    tr__set_task_exit_hook(exit_hook);
    tr_runtime *rt = tr_test_runtime(workers_for(_i));
    tr_task *t = spawn_on(rt, 0, self_kill, NULL);
    join_killed(t);
    ck_assert_int_eq(atomic_load(&after), 0);
    ck_assert_int_eq(atomic_load(&wait_rc), TR_ECANCELED);
    ck_assert_int_eq(atomic_load(&cleanups), 1);
    ck_assert_int_eq(atomic_load(&exits), 1);
    tr_runtime_free(&rt);
    tr__set_task_exit_hook(NULL);
}
END_TEST

/* ---- kill after return, kill twice -------------------------------------- */

static void *returns(void *arg) {
    atomic_store(&entered, 1);
    return arg;
}

static void *kill_returned(void *arg) {
    tr_task *t = arg;
    await_count(&entered, 1);
    tr_yield(); /* t (this worker's) has finished by now: it ran to its return */
    int rc = tr_task_kill(t);
    return RC(rc == 0 && !tr_task_killed(t) ? 0 : -1);
}

START_TEST(test_kill_after_return) {
    tr_runtime *rt = tr_test_runtime(1);
    /* From a plain thread. */
    tr_task *t = spawn_on(rt, 0, returns, RC(42));
    await_count(&entered, 1);
    ck_assert_tr_ok(tr_task_kill(t));
    ck_assert_int_eq(join_rc(t), 42);
    /* From a task of its own worker, which can tell it has returned. */
    atomic_store(&entered, 0);
    t = spawn_on(rt, 0, returns, RC(43));
    tr_task *k = spawn_on(rt, 0, kill_returned, t);
    ck_assert_int_eq(join_rc(k), 0);
    ck_assert_int_eq(join_rc(t), 43);
    tr_runtime_free(&rt);
}
END_TEST

START_TEST(test_kill_twice) {
    tr_runtime *rt = tr_test_runtime(workers_for(_i));
    tr_task *t = spawn_on(rt, 0, parked_body, NULL);
    await_count(&entered, 1);
    ck_assert_tr_ok(tr_task_kill(t));
    ck_assert_tr_ok(tr_task_kill(t));
    join_killed(t);
    ck_assert_int_eq(atomic_load(&cleanups), 1);
    ck_assert_int_eq(atomic_load(&after), 0);
    tr_runtime_free(&rt);
}
END_TEST

/* ---- a killed joiner: its join unlinks itself, then it dies ------------- */

static void *joiner(void *arg) {
    tr_cleanup c;
    tr_cleanup_push(&c, count_cleanup, NULL);
    atomic_store(&entered, 1);
    atomic_store(&wait_rc, tr_task_join_until(arg, NULL, TR_TEST_DEADLINE()));
    tr_yield();
    atomic_store(&after, 1);
    return NULL;
}

START_TEST(test_killed_joiner) {
    tr_runtime *rt = tr_test_runtime(workers_for(_i));
    tr_task *sleeper = spawn_on(rt, 1, stubborn, NULL);
    tr_task *j = spawn_on(rt, 0, joiner, sleeper);
    await_count(&entered, 1);
    ck_assert_tr_ok(tr_task_kill(j));
    join_killed(j);
    ck_assert_int_eq(atomic_load(&after), 0);
    /* The handle of sleeper is still good: kill and join it. */
    ck_assert_tr_ok(tr_task_kill(sleeper));
    join_killed(sleeper);
    ck_assert_int_eq(atomic_load(&cleanups), 2);
    tr_runtime_free(&rt);
}
END_TEST

/* ---- many: joined, detached, and left to the shutdown ------------------- */

static void *many_body(void *arg) {
    tr_cleanup c;
    tr_cleanup_push(&c, count_cleanup, NULL);
    atomic_fetch_add(&entered, 1);
    if ((intptr_t)arg % 2) {
        for (;;)
            tr_yield();
    }
    while (1)
        tr_sleep_until(TR_TEST_DEADLINE());
    return NULL;
}

START_TEST(test_many_killed) {
    tr_runtime *rt = tr_test_runtime(4);
    int n = scaled(10000);
    tr_task **ts = calloc((size_t)n, sizeof *ts);
    ck_assert_ptr_nonnull(ts);
    for (int round = 0; round < 2; round++) { /* round 2 runs on reused stacks */
        atomic_store(&entered, 0);
        atomic_store(&cleanups, 0);
        for (int i = 0; i < n; i++) {
            tr_spawn_opts o = {.worker = TR_WORKER_BALANCED, .stack_size = 32 * 1024};
            ck_assert_tr_ok(tr_spawn_ex(rt, &o, &ts[i], many_body, (void *)(intptr_t)i));
        }
        /* Some are killed before they ever run: they still run up to
         * their first safe point (their cleanup is registered by then). */
        for (int i = 0; i < n; i += 3)
            ck_assert_tr_ok(tr_task_kill(ts[i]));
        await_count(&entered, n);
        for (int i = 0; i < n; i++)
            if (i % 3)
                ck_assert_tr_ok(tr_task_kill(ts[i]));
        for (int i = 0; i < n; i++) {
            if (i % 2) {
                tr_task_detach(ts[i]); /* reaped on its own */
                continue;
            }
            join_killed(ts[i]);
        }
        await_count(&cleanups, n);
        ck_assert_int_eq(atomic_load(&cleanups), n);
    }
    free(ts);
    tr_runtime_free(&rt); /* completes: every task, detached or not, is gone */
}
END_TEST

/* Killed tasks still parked or queued when the runtime shuts down. */
START_TEST(test_shutdown_with_killed) {
    tr_runtime *rt = tr_test_runtime(workers_for(_i));
    for (int i = 0; i < 100; i++) {
        tr_task *t = NULL;
        tr_spawn_opts o = {.worker = TR_WORKER_BALANCED};
        ck_assert_tr_ok(tr_spawn_ex(rt, &o, &t, many_body, (void *)(intptr_t)i));
        ck_assert_tr_ok(tr_task_kill(t));
        if (i % 2)
            tr_task_detach(t); /* the others' handles die with the runtime */
    }
    ck_assert_tr_ok(tr_runtime_shutdown(rt, TR_TEST_DEADLINE()));
    ck_assert_int_eq(atomic_load(&cleanups), atomic_load(&entered));
    tr_runtime_free(&rt);
}
END_TEST

static Suite *kill_suite(void) {
    Suite *s = suite_create("kill");
    TCase *tc = tr_tcase("kill");
    tcase_add_checked_fixture(tc, reset, NULL);
    tcase_add_test(tc, test_parked_killed);
    tcase_add_loop_test(tc, test_yield_loop_killed, 0, 3);
    tcase_add_loop_test(tc, test_ignores_cancel_killed, 0, 2);
    tcase_add_loop_test(tc, test_cleanups_lifo, 0, 2);
    tcase_add_test(tc, test_cleanup_plain_thread);
    tcase_add_loop_test(tc, test_self_kill, 0, 2);
    tcase_add_test(tc, test_kill_after_return);
    tcase_add_loop_test(tc, test_kill_twice, 0, 2);
    tcase_add_loop_test(tc, test_killed_joiner, 0, 2);
    tcase_add_test(tc, test_many_killed);
    tcase_add_loop_test(tc, test_shutdown_with_killed, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

TR_TEST_MAIN(kill_suite)
