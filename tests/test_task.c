/* test_task.c — runtimes and tasks: spawn, join, detach, yield, sleep,
 * cancel, shutdown, from tasks and from plain threads, on 1 and 4 workers. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

/* Loop tests run once with 1 worker and once with 4. */
#define WORKERS(i) ((i) == 0 ? 1 : 4)

static void *ret_arg(void *arg) { return arg; }

START_TEST(test_runtime_bad_args) {
    tr_runtime *rt = (tr_runtime *)1;
    tr_runtime_opts o = {0};
    ck_assert_tr_err(tr_runtime_new(NULL, NULL), TR_EINVAL);
    o.workers = -1;
    ck_assert_tr_err(tr_runtime_new(&rt, &o), TR_EINVAL);
    ck_assert_ptr_null(rt);
    o.workers = 1;
    o.stack_size = TR_STACK_MIN - 1;
    ck_assert_tr_err(tr_runtime_new(&rt, &o), TR_EINVAL);
    ck_assert_tr_err(tr_runtime_block_on(NULL, ret_arg, NULL, NULL), TR_EINVAL);
    ck_assert_tr_err(tr_spawn(NULL, ret_arg, NULL), TR_EINVAL); /* no runtime here */
    ck_assert_tr_err(tr_task_join(NULL, NULL), TR_EINVAL);
    ck_assert_tr_err(tr_task_cancel(NULL), TR_EINVAL);
    ck_assert_tr_err(tr_runtime_shutdown(NULL, TR_NEVER), TR_EINVAL);
    tr_runtime_free(NULL);
    ck_assert_ptr_null(tr_task_self());
    ck_assert_int_eq(tr_worker_current(), -1);
    ck_assert_int_eq(tr_runtime_workers(NULL), 0);
}
END_TEST

START_TEST(test_runtime_default_workers) {
    tr_runtime *rt = NULL;
    ck_assert_tr_ok(tr_runtime_new(&rt, NULL));
    ck_assert_int_eq(tr_runtime_workers(rt), (int)sysconf(_SC_NPROCESSORS_ONLN));
    tr_runtime_free(&rt);
    ck_assert_ptr_null(rt);
}
END_TEST

static void *block_on_inside(void *arg) {
    tr_runtime *rt = arg;
    ck_assert_ptr_eq(tr_runtime_current(), rt);
    ck_assert_ptr_nonnull(tr_task_self());
    return (void *)(intptr_t)tr_runtime_block_on(rt, ret_arg, NULL, NULL);
}

START_TEST(test_block_on) {
    tr_runtime *rt = tr_test_runtime(WORKERS(_i));
    void *r = NULL;
    ck_assert_tr_ok(tr_runtime_block_on(rt, ret_arg, (void *)42, &r));
    ck_assert_ptr_eq(r, (void *)42);
    ck_assert_tr_ok(tr_runtime_block_on(rt, block_on_inside, rt, &r));
    ck_assert_int_eq((int)(intptr_t)r, TR_EPERM);
    tr_runtime_free(&rt);
}
END_TEST

static void *join_self(void *arg) {
    (void)arg;
    return (void *)(intptr_t)tr_task_join(tr_task_self(), NULL);
}

static void *spawn_join_main(void *arg) {
    (void)arg;
    tr_task *t;
    void *r = NULL;
    ck_assert_tr_ok(tr_spawn(&t, ret_arg, (void *)7));
    ck_assert_tr_ok(tr_task_join(t, &r));
    ck_assert_ptr_eq(r, (void *)7);
    ck_assert_tr_ok(tr_spawn(&t, join_self, NULL));
    ck_assert_tr_ok(tr_task_join(t, &r));
    ck_assert_int_eq((int)(intptr_t)r, TR_EDEADLK);
    ck_assert_tr_err(tr_spawn(&t, NULL, NULL), TR_EINVAL);
    ck_assert_ptr_null(t);
    tr_spawn_opts o = {.worker = TR_WORKER(tr_runtime_workers(tr_runtime_current()))};
    ck_assert_tr_err(tr_spawn_ex(NULL, &o, &t, ret_arg, NULL), TR_EINVAL);
    o.worker = -5;
    ck_assert_tr_err(tr_spawn_ex(NULL, &o, &t, ret_arg, NULL), TR_EINVAL);
    o.worker = 0;
    o.stack_size = 100;
    ck_assert_tr_err(tr_spawn_ex(NULL, &o, &t, ret_arg, NULL), TR_EINVAL);
    return NULL;
}

START_TEST(test_spawn_join) {
    tr_runtime *rt = tr_test_runtime(WORKERS(_i));
    ck_assert_tr_ok(tr_runtime_block_on(rt, spawn_join_main, NULL, NULL));
    tr_runtime_free(&rt);
}
END_TEST

static void *report_worker(void *arg) {
    (void)arg;
    return (void *)(intptr_t)tr_worker_current();
}

static void *chosen_worker_main(void *arg) {
    int n = tr_runtime_workers(tr_runtime_current());
    for (int i = 0; i < n; i++) {
        tr_spawn_opts o = {.worker = TR_WORKER(i), .name = "pinned"};
        tr_task *t;
        void *r;
        ck_assert_tr_ok(tr_spawn_ex(NULL, &o, &t, report_worker, NULL));
        ck_assert_str_eq(tr_task_name(t), "pinned");
        ck_assert_uint_gt(tr_task_id(t), 0);
        ck_assert_tr_ok(tr_task_join(t, &r));
        ck_assert_int_eq((int)(intptr_t)r, i);
    }
    /* The default is the spawner's own worker. */
    tr_task *t;
    void *r;
    ck_assert_tr_ok(tr_spawn(&t, report_worker, NULL));
    ck_assert_tr_ok(tr_task_join(t, &r));
    ck_assert_int_eq((int)(intptr_t)r, tr_worker_current());
    return arg;
}

START_TEST(test_chosen_worker) {
    tr_runtime *rt = tr_test_runtime(4);
    ck_assert_tr_ok(tr_runtime_block_on(rt, chosen_worker_main, NULL, NULL));
    tr_runtime_free(&rt);
}
END_TEST

static atomic_int counter;

static void *bump(void *arg) {
    atomic_fetch_add(&counter, 1);
    return arg;
}

/* ThreadSanitizer gives every task a fiber and has room for about 8k of
 * them at once; the other builds run the full ten thousand. */
#if defined(__SANITIZE_THREAD__)
#define MANY 4000
#else
#define MANY 10000
#endif

static void *many_main(void *arg) {
    (void)arg;
    static tr_task *tasks[MANY];
    tr_spawn_opts o = {.worker = TR_WORKER_BALANCED};
    for (int i = 0; i < MANY; i++)
        ck_assert_tr_ok(tr_spawn_ex(NULL, &o, &tasks[i], bump, (void *)(intptr_t)i));
    for (int i = 0; i < MANY; i++) {
        void *r;
        ck_assert_tr_ok(tr_task_join(tasks[i], &r));
        ck_assert_int_eq((int)(intptr_t)r, i);
    }
    return NULL;
}

START_TEST(test_ten_thousand_tasks) {
    atomic_store(&counter, 0);
    tr_runtime *rt = tr_test_runtime(WORKERS(_i));
    ck_assert_tr_ok(tr_runtime_block_on(rt, many_main, NULL, NULL));
    ck_assert_int_eq(atomic_load(&counter), MANY);
    tr_runtime_free(&rt);
}
END_TEST

START_TEST(test_detach_runs_to_end) {
    atomic_store(&counter, 0);
    tr_runtime *rt = tr_test_runtime(WORKERS(_i));
    for (int i = 0; i < 1000; i++) {
        tr_task *t;
        ck_assert_tr_ok(tr_spawn_ex(rt, NULL, &t, bump, NULL));
        tr_task_detach(t);
        ck_assert_tr_ok(tr_spawn_ex(rt, NULL, NULL, bump, NULL)); /* out NULL: detached */
    }
    /* Shutdown waits for every task, detached ones included. */
    ck_assert_tr_ok(tr_runtime_shutdown(rt, TR_TEST_DEADLINE()));
    ck_assert_int_eq(atomic_load(&counter), 2000);
    tr_runtime_free(&rt);
}
END_TEST

/* ---- yield ---------------------------------------------------------------------- */

static char yield_log[64];
static atomic_int yield_pos;

static void *yielder(void *arg) {
    for (int i = 0; i < 4; i++) {
        yield_log[atomic_fetch_add(&yield_pos, 1)] = *(char *)arg;
        ck_assert_tr_ok(tr_yield());
    }
    return NULL;
}

static void *yield_main(void *arg) {
    (void)arg;
    tr_task *a, *b;
    ck_assert_tr_ok(tr_spawn(&a, yielder, "a"));
    ck_assert_tr_ok(tr_spawn(&b, yielder, "b"));
    ck_assert_tr_ok(tr_task_join(a, NULL));
    ck_assert_tr_ok(tr_task_join(b, NULL));
    return NULL;
}

START_TEST(test_yield_interleaves) {
    memset(yield_log, 0, sizeof yield_log);
    atomic_store(&yield_pos, 0);
    tr_runtime *rt = tr_test_runtime(1);
    ck_assert_tr_ok(tr_runtime_block_on(rt, yield_main, NULL, NULL));
    /* Two tasks on one worker take turns. */
    ck_assert_int_eq(atomic_load(&yield_pos), 8);
    for (int i = 0; i < 8; i += 2)
        ck_assert_int_ne(yield_log[i], yield_log[i + 1]);
    ck_assert_tr_ok(tr_yield()); /* a plain thread may yield too */
    tr_runtime_free(&rt);
}
END_TEST

/* A task that keeps finding its waits ready must still let others run. */
static atomic_int budget_flag;

static void *set_flag(void *arg) {
    atomic_store(&budget_flag, 1);
    return arg;
}

static void *busy_main(void *arg) {
    (void)arg;
    atomic_store(&budget_flag, 0);
    tr_task *t;
    ck_assert_tr_ok(tr_spawn(&t, set_flag, NULL));
    long i;
    for (i = 0; i < 1000000 && !atomic_load(&budget_flag); i++)
        ck_assert_tr_ok(tr_wait_enter());
    ck_assert_msg(atomic_load(&budget_flag), "the other task never ran");
    ck_assert_int_le(i, 200); /* within about one budget of 128 */
    ck_assert_tr_ok(tr_task_join(t, NULL));
    return NULL;
}

START_TEST(test_budget_forces_yield) {
    tr_runtime *rt = tr_test_runtime(1);
    ck_assert_tr_ok(tr_runtime_block_on(rt, busy_main, NULL, NULL));
    tr_runtime_free(&rt);
}
END_TEST

/* ---- sleep and deadlines --------------------------------------------------------- */

static void *sleeper(void *arg) {
    (void)arg;
    int64_t deadline = tr_after_ms(30);
    ck_assert_tr_ok(tr_sleep_until(deadline));
    ck_assert_int_ge(tr_now(), deadline);
    int64_t t0 = tr_now();
    ck_assert_tr_ok(tr_sleep_ms(5));
    ck_assert_int_ge(tr_now() - t0, 5000000);
    ck_assert_tr_ok(tr_sleep_until(0)); /* a past deadline returns at once */
    ck_assert_tr_ok(tr_sleep_until(INT64_MIN));
    return NULL;
}

START_TEST(test_sleep) {
    tr_runtime *rt = tr_test_runtime(WORKERS(_i));
    ck_assert_tr_ok(tr_runtime_block_on(rt, sleeper, NULL, NULL));
    sleeper(NULL); /* and on a plain thread */
    tr_runtime_free(&rt);
}
END_TEST

static void *sleep_forever(void *arg) {
    (void)arg;
    return (void *)(intptr_t)tr_sleep_until(TR_NEVER);
}

static void *join_deadline_main(void *arg) {
    (void)arg;
    tr_task *t;
    ck_assert_tr_ok(tr_spawn_ex(NULL, &(tr_spawn_opts){.worker = TR_WORKER_BALANCED}, &t,
                                sleep_forever, NULL));
    int64_t deadline = tr_after_ms(20);
    ck_assert_tr_err(tr_task_join_until(t, NULL, deadline), TR_ETIMEDOUT);
    ck_assert_int_ge(tr_now(), deadline);
    /* The handle is still good. */
    ck_assert_tr_ok(tr_task_cancel(t));
    void *r;
    ck_assert_tr_ok(tr_task_join_until(t, &r, TR_TEST_DEADLINE()));
    ck_assert_int_eq((int)(intptr_t)r, TR_ECANCELED);
    return NULL;
}

START_TEST(test_join_deadline) {
    tr_runtime *rt = tr_test_runtime(WORKERS(_i));
    ck_assert_tr_ok(tr_runtime_block_on(rt, join_deadline_main, NULL, NULL));
    tr_runtime_free(&rt);
}
END_TEST

/* ---- cancellation ------------------------------------------------------------------ */

static void *cancelled_sleeper(void *arg) {
    (void)arg;
    int rc = tr_sleep_until(TR_NEVER);
    ck_assert_int_eq(rc, TR_ECANCELED);
    ck_assert(tr_task_cancelled());
    /* From now on every wait says so, even one that would not wait. */
    ck_assert_tr_err(tr_sleep_until(0), TR_ECANCELED);
    ck_assert_tr_err(tr_yield(), TR_ECANCELED);
    ck_assert_tr_err(tr_wait_enter(), TR_ECANCELED);
    return (void *)1;
}

static void *cancel_sleep_main(void *arg) {
    (void)arg;
    tr_task *t;
    ck_assert_tr_ok(tr_spawn(&t, cancelled_sleeper, NULL));
    ck_assert_tr_ok(tr_yield()); /* let it park */
    ck_assert_tr_ok(tr_task_cancel(t));
    ck_assert_tr_ok(tr_task_cancel(t)); /* twice is fine */
    void *r;
    ck_assert_tr_ok(tr_task_join_until(t, &r, TR_TEST_DEADLINE()));
    ck_assert_ptr_eq(r, (void *)1);
    /* A task on another worker, cancelled from here. */
    int other = (tr_worker_current() + 1) % tr_runtime_workers(tr_runtime_current());
    ck_assert_tr_ok(tr_spawn_ex(NULL, &(tr_spawn_opts){.worker = TR_WORKER(other)}, &t,
                                cancelled_sleeper, NULL));
    ck_assert_tr_ok(tr_task_cancel(t));
    ck_assert_tr_ok(tr_task_join_until(t, &r, TR_TEST_DEADLINE()));
    ck_assert_ptr_eq(r, (void *)1);
    return NULL;
}

START_TEST(test_cancel_sleeping) {
    tr_runtime *rt = tr_test_runtime(WORKERS(_i));
    ck_assert_tr_ok(tr_runtime_block_on(rt, cancel_sleep_main, NULL, NULL));
    tr_runtime_free(&rt);
}
END_TEST

START_TEST(test_cancel_from_plain_thread) {
    tr_runtime *rt = tr_test_runtime(WORKERS(_i));
    tr_task *t;
    ck_assert_tr_ok(tr_spawn_ex(rt, NULL, &t, cancelled_sleeper, NULL));
    ck_assert_tr_ok(tr_task_cancel(t));
    void *r;
    ck_assert_tr_ok(tr_task_join_until(t, &r, TR_TEST_DEADLINE()));
    ck_assert_ptr_eq(r, (void *)1);
    tr_runtime_free(&rt);
}
END_TEST

static void *joiner(void *arg) {
    tr_task *target = arg;
    return (void *)(intptr_t)tr_task_join(target, NULL);
}

static void *cancel_join_main(void *arg) {
    (void)arg;
    tr_task *sleeper_t, *joiner_t;
    ck_assert_tr_ok(tr_spawn(&sleeper_t, sleep_forever, NULL));
    ck_assert_tr_ok(tr_spawn(&joiner_t, joiner, sleeper_t));
    ck_assert_tr_ok(tr_yield());
    ck_assert_tr_ok(tr_task_cancel(joiner_t));
    void *r;
    ck_assert_tr_ok(tr_task_join_until(joiner_t, &r, TR_TEST_DEADLINE()));
    ck_assert_int_eq((int)(intptr_t)r, TR_ECANCELED);
    /* The joiner's failed join left the sleeper's handle alone. */
    ck_assert_tr_ok(tr_task_cancel(sleeper_t));
    ck_assert_tr_ok(tr_task_join_until(sleeper_t, &r, TR_TEST_DEADLINE()));
    ck_assert_int_eq((int)(intptr_t)r, TR_ECANCELED);
    return NULL;
}

START_TEST(test_cancel_joining) {
    tr_runtime *rt = tr_test_runtime(WORKERS(_i));
    ck_assert_tr_ok(tr_runtime_block_on(rt, cancel_join_main, NULL, NULL));
    tr_runtime_free(&rt);
}
END_TEST

/* ---- plain threads ---------------------------------------------------------------- */

static void *plain_spawner(void *arg) {
    tr_runtime *rt = arg;
    for (int i = 0; i < 200; i++) {
        tr_task *t;
        void *r;
        if (tr_spawn_ex(rt, NULL, &t, ret_arg, (void *)(intptr_t)(i + 1)) != 0)
            return (void *)1;
        if (tr_task_join_until(t, &r, TR_TEST_DEADLINE()) != 0 || r != (void *)(intptr_t)(i + 1))
            return (void *)2;
    }
    return NULL;
}

START_TEST(test_spawn_from_plain_threads) {
    tr_runtime *rt = tr_test_runtime(WORKERS(_i));
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, plain_spawner, rt), 0);
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(th[i], &r);
        ck_assert_ptr_null(r);
    }
    tr_runtime_free(&rt);
}
END_TEST

/* ---- shutdown ---------------------------------------------------------------------- */

static atomic_int saw_cancel;

static void *wait_for_shutdown(void *arg) {
    (void)arg;
    if (tr_sleep_until(TR_NEVER) == TR_ECANCELED)
        atomic_fetch_add(&saw_cancel, 1);
    return NULL;
}

START_TEST(test_shutdown_cancels_waiters) {
    atomic_store(&saw_cancel, 0);
    tr_runtime *rt = tr_test_runtime(WORKERS(_i));
    tr_task *kept;
    ck_assert_tr_ok(tr_spawn_ex(rt, NULL, &kept, wait_for_shutdown, NULL));
    for (int i = 0; i < 100; i++)
        ck_assert_tr_ok(tr_spawn_ex(rt, NULL, NULL, wait_for_shutdown, NULL));
    ck_assert_tr_ok(tr_runtime_shutdown(rt, TR_TEST_DEADLINE()));
    ck_assert_int_eq(atomic_load(&saw_cancel), 101);
    ck_assert_tr_ok(tr_runtime_shutdown(rt, TR_TEST_DEADLINE())); /* again: nothing to do */
    ck_assert_tr_err(tr_spawn_ex(rt, NULL, NULL, bump, NULL), TR_ESHUTDOWN);
    ck_assert_tr_ok(tr_task_join(kept, NULL)); /* a returned task can still be joined */
    tr_runtime_free(&rt);
}
END_TEST

static void *stubborn(void *arg) {
    (void)arg;
    /* Ignores cancellation for a while: sleeps on a plain-thread clock. */
    int64_t until = tr_after_ms(300);
    while (tr_now() < until)
        usleep(1000);
    return NULL;
}

START_TEST(test_shutdown_deadline) {
    tr_runtime *rt = tr_test_runtime(1);
    ck_assert_tr_ok(tr_spawn_ex(rt, NULL, NULL, stubborn, NULL));
    int64_t deadline = tr_after_ms(20);
    ck_assert_tr_err(tr_runtime_shutdown(rt, deadline), TR_ETIMEDOUT);
    ck_assert_int_ge(tr_now(), deadline);
    ck_assert_tr_ok(tr_runtime_shutdown(rt, TR_TEST_DEADLINE()));
    tr_runtime_free(&rt);
}
END_TEST

/* ---- stacks ------------------------------------------------------------------------ */

static void *stack_address(void *arg) {
    (void)arg;
    return __builtin_frame_address(0);
}

static void *stack_reuse_main(void *arg) {
    (void)arg;
    void *first, *again;
    tr_task *t;
    ck_assert_tr_ok(tr_spawn(&t, stack_address, NULL));
    ck_assert_tr_ok(tr_task_join(t, &first));
    ck_assert_tr_ok(tr_spawn(&t, stack_address, NULL));
    ck_assert_tr_ok(tr_task_join(t, &again));
    ck_assert_ptr_eq(first, again); /* the pooled stack came back */
    return NULL;
}

START_TEST(test_stack_reuse) {
    tr_runtime *rt = tr_test_runtime(1);
    ck_assert_tr_ok(tr_runtime_block_on(rt, stack_reuse_main, NULL, NULL));
    tr_runtime_free(&rt);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("task");
    TCase *tc = tr_tcase("runtime");
    tcase_add_test(tc, test_runtime_bad_args);
    tcase_add_test(tc, test_runtime_default_workers);
    tcase_add_loop_test(tc, test_block_on, 0, 2);
    suite_add_tcase(s, tc);

    tc = tr_tcase("spawn");
    tcase_add_loop_test(tc, test_spawn_join, 0, 2);
    tcase_add_test(tc, test_chosen_worker);
    tcase_add_loop_test(tc, test_ten_thousand_tasks, 0, 2);
    tcase_add_loop_test(tc, test_detach_runs_to_end, 0, 2);
    tcase_add_loop_test(tc, test_spawn_from_plain_threads, 0, 2);
    tcase_add_test(tc, test_stack_reuse);
    suite_add_tcase(s, tc);

    tc = tr_tcase("scheduling");
    tcase_add_test(tc, test_yield_interleaves);
    tcase_add_test(tc, test_budget_forces_yield);
    tcase_add_loop_test(tc, test_sleep, 0, 2);
    tcase_add_loop_test(tc, test_join_deadline, 0, 2);
    suite_add_tcase(s, tc);

    tc = tr_tcase("cancel");
    tcase_add_loop_test(tc, test_cancel_sleeping, 0, 2);
    tcase_add_loop_test(tc, test_cancel_from_plain_thread, 0, 2);
    tcase_add_loop_test(tc, test_cancel_joining, 0, 2);
    suite_add_tcase(s, tc);

    tc = tr_tcase("shutdown");
    tcase_add_loop_test(tc, test_shutdown_cancels_waiters, 0, 2);
    tcase_add_test(tc, test_shutdown_deadline);
    suite_add_tcase(s, tc);
    return s;
}

TR_TEST_MAIN(suite)
