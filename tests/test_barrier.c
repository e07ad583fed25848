/* test_barrier.c — tr_barrier, ported from tokio's tests/sync_barrier.rs,
 * plus generations across workers and plain threads (exactly one leader
 * each, nobody passes early) and the C rule for giving up: a waiter that
 * times out or is cancelled withdraws its arrival.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "testutil.h"
#include "tr_barrier.h"

static tr_barrier gb;

/* White box: waits (bounded) until someone is parked in the barrier. */
static void await_parked(tr_barrier *b) {
    int64_t dl = TR_TEST_DEADLINE();
    for (;;) {
        tr_spin_lock(&b->lock);
        bool parked = !tr_waitq_empty(&b->waiters);
        tr_spin_unlock(&b->lock);
        if (parked)
            return;
        ck_assert_msg(tr_now() < dl, "nobody parked");
        sched_yield();
    }
}

START_TEST(zero_does_not_block) {
    tr_barrier b;
    ck_assert_tr_ok(tr_barrier_init(&b, 0));
    for (int i = 0; i < 2; i++) {
        bool leader = false;
        ck_assert_tr_ok(tr_barrier_wait(&b, &leader, 0));
        ck_assert(leader);
    }
    ck_assert_tr_ok(tr_barrier_destroy(&b));
}
END_TEST

START_TEST(single) {
    tr_barrier b;
    ck_assert_tr_ok(tr_barrier_init(&b, 1));
    for (int i = 0; i < 3; i++) {
        bool leader = false;
        ck_assert_tr_ok(tr_barrier_wait(&b, &leader, 0));
        ck_assert(leader);
    }
    ck_assert_int_eq(tr_barrier_generation(&b), 3);
    ck_assert_tr_ok(tr_barrier_wait(&b, NULL, 0)); /* is_leader may be NULL */
    ck_assert_tr_ok(tr_barrier_destroy(&b));
}
END_TEST

static atomic_int arrived_count;

static void *wait_and_report(void *arg) {
    (void)arg;
    bool leader = false;
    atomic_fetch_add(&arrived_count, 1);
    int rc = tr_barrier_wait(&gb, &leader, TR_TEST_DEADLINE());
    ck_assert_tr_ok(rc);
    return RC(leader ? 1 : 0);
}

START_TEST(tango) {
    tr_runtime *rt = tr_test_runtime(workers_for(_i));
    tr_barrier_init(&gb, 2);
    atomic_store(&arrived_count, 0);
    tr_task *t = spawn_on(rt, 1, wait_and_report, NULL);
    await_count(&arrived_count, 1);
    tr_sleep_ms(2);
    ck_assert_int_eq(tr_barrier_generation(&gb), 0); /* w1 pending */
    bool leader = false;
    ck_assert_tr_ok(tr_barrier_wait(&gb, &leader, TR_TEST_DEADLINE()));
    int other = join_rc(t);
    ck_assert_int_eq((int)leader + other, 1);
    ck_assert_tr_ok(tr_barrier_destroy(&gb));
    tr_runtime_free(&rt);
}
END_TEST

/* tokio's `lots`: 100 parties, 10 rounds; 99 wait, the 100th releases. */
START_TEST(lots) {
    enum { N = 100 };
    tr_runtime *rt = tr_test_runtime(workers_for(_i));
    tr_barrier_init(&gb, N);
    for (int round = 0; round < 10; round++) {
        atomic_store(&arrived_count, 0);
        tr_task *t[N - 1];
        for (int i = 0; i < N - 1; i++)
            t[i] = spawn_on(rt, i, wait_and_report, NULL);
        await_count(&arrived_count, N - 1);
        ck_assert_int_eq(tr_barrier_generation(&gb), (uint64_t)round);
        bool leader = false;
        ck_assert_tr_ok(tr_barrier_wait(&gb, &leader, TR_TEST_DEADLINE()));
        int leaders = leader;
        for (int i = 0; i < N - 1; i++)
            leaders += join_rc(t[i]);
        ck_assert_int_eq(leaders, 1);
    }
    ck_assert_tr_ok(tr_barrier_destroy(&gb));
    tr_runtime_free(&rt);
}
END_TEST

/* ---- generations across 4 workers and plain threads ---------------------------------- */

#define PARTIES 8
#define GENERATIONS 400

static atomic_int gen_leaders[GENERATIONS], gen_arrivals[GENERATIONS];

static void *party(void *arg) {
    (void)arg;
    for (int g = 0; g < GENERATIONS; g++) {
        atomic_fetch_add(&gen_arrivals[g], 1);
        bool leader = false;
        ck_assert_tr_ok(tr_barrier_wait(&gb, &leader, TR_TEST_DEADLINE()));
        /* nobody passes generation g before all parties reached it */
        ck_assert_int_eq(atomic_load(&gen_arrivals[g]), PARTIES);
        if (leader)
            atomic_fetch_add(&gen_leaders[g], 1);
    }
    return NULL;
}

START_TEST(generations_workers_and_threads) {
    tr_runtime *rt = tr_test_runtime(4);
    tr_barrier_init(&gb, PARTIES);
    for (int g = 0; g < GENERATIONS; g++) {
        atomic_store(&gen_leaders[g], 0);
        atomic_store(&gen_arrivals[g], 0);
    }
    tr_task *t[PARTIES / 2];
    pthread_t th[PARTIES / 2];
    for (int i = 0; i < PARTIES / 2; i++) {
        t[i] = spawn_on(rt, i, party, NULL);
        pthread_create(&th[i], NULL, party, NULL);
    }
    for (int i = 0; i < PARTIES / 2; i++) {
        join_rc(t[i]);
        pthread_join(th[i], NULL);
    }
    for (int g = 0; g < GENERATIONS; g++)
        ck_assert_msg(atomic_load(&gen_leaders[g]) == 1, "generation %d had %d leaders", g,
                      atomic_load(&gen_leaders[g]));
    ck_assert_int_eq(tr_barrier_generation(&gb), GENERATIONS);
    ck_assert_tr_ok(tr_barrier_destroy(&gb));
    tr_runtime_free(&rt);
}
END_TEST

/* ---- giving up withdraws --------------------------------------------------------------- */

START_TEST(timeout_withdraws) {
    tr_barrier b;
    tr_barrier_init(&b, 2);
    int64_t dl = tr_after_ms(10);
    ck_assert_tr_err(tr_barrier_wait(&b, NULL, dl), TR_ETIMEDOUT);
    ck_assert_int_ge(tr_now(), dl);
    /* Had the first arrival stayed counted, this one would lead at once. */
    ck_assert_tr_err(tr_barrier_wait(&b, NULL, 0), TR_ETIMEDOUT);
    ck_assert_int_eq(tr_barrier_generation(&b), 0);
    ck_assert_tr_ok(tr_barrier_destroy(&b));
}
END_TEST

static void *wait_forever(void *arg) {
    (void)arg;
    atomic_fetch_add(&arrived_count, 1);
    return RC(tr_barrier_wait(&gb, NULL, TR_NEVER));
}

START_TEST(cancel_withdraws) {
    tr_runtime *rt = tr_test_runtime(2);
    tr_barrier_init(&gb, 2);
    atomic_store(&arrived_count, 0);
    tr_task *t = spawn_on(rt, 1, wait_forever, NULL);
    await_parked(&gb);
    ck_assert_tr_err(tr_barrier_destroy(&gb), TR_EBUSY);
    tr_task_cancel(t);
    ck_assert_int_eq(join_rc(t), TR_ECANCELED);
    ck_assert_tr_err(tr_barrier_wait(&gb, NULL, 0), TR_ETIMEDOUT);
    /* and the barrier still works for two that stay */
    atomic_store(&arrived_count, 0);
    t = spawn_on(rt, 0, wait_and_report, NULL);
    bool leader = false;
    ck_assert_tr_ok(tr_barrier_wait(&gb, &leader, TR_TEST_DEADLINE()));
    ck_assert_int_eq(join_rc(t) + (int)leader, 1);
    ck_assert_tr_ok(tr_barrier_destroy(&gb));
    tr_runtime_free(&rt);
}
END_TEST

/* Parties that keep timing out and retrying: since every generation needs
 * all of them, each still passes every generation exactly once, with one
 * leader per generation, whatever the withdrawals in between. */
#define FLAKY_PARTIES 6
#define FLAKY_GENERATIONS 150

static atomic_int flaky_timeouts;

static void *flaky_party(void *arg) {
    unsigned seed = (unsigned)(uintptr_t)arg;
    int passed = 0;
    while (passed < FLAKY_GENERATIONS) {
        bool leader = false;
        int rc = tr_barrier_wait(&gb, &leader, tr_after_us(rand_r(&seed) % 400));
        if (rc == TR_ETIMEDOUT) {
            atomic_fetch_add(&flaky_timeouts, 1);
            continue;
        }
        ck_assert_tr_ok(rc);
        if (leader) {
            /* nobody can complete the next generation without us */
            uint64_t g = tr_barrier_generation(&gb);
            ck_assert_uint_ge(g, 1);
            ck_assert_uint_le(g, FLAKY_GENERATIONS);
            atomic_fetch_add(&gen_leaders[g - 1], 1);
        }
        passed++;
    }
    return NULL;
}

START_TEST(stress_timeouts_and_retries) {
    tr_runtime *rt = tr_test_runtime(4);
    tr_barrier_init(&gb, FLAKY_PARTIES);
    atomic_store(&flaky_timeouts, 0);
    for (int g = 0; g < FLAKY_GENERATIONS; g++)
        atomic_store(&gen_leaders[g], 0);
    tr_task *t[FLAKY_PARTIES - 2];
    for (int i = 0; i < FLAKY_PARTIES - 2; i++)
        t[i] = spawn_on(rt, i, flaky_party, (void *)(uintptr_t)(i + 1));
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, flaky_party, (void *)(uintptr_t)(100 + i));
    for (int i = 0; i < FLAKY_PARTIES - 2; i++)
        join_rc(t[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    ck_assert_int_eq(tr_barrier_generation(&gb), FLAKY_GENERATIONS);
    for (int g = 0; g < FLAKY_GENERATIONS; g++)
        ck_assert_int_eq(atomic_load(&gen_leaders[g]), 1);
    ck_assert_int_gt(atomic_load(&flaky_timeouts), 0);
    ck_assert_tr_ok(tr_barrier_destroy(&gb));
    tr_runtime_free(&rt);
}
END_TEST

START_TEST(bad_input) {
    ck_assert_tr_err(tr_barrier_init(NULL, 3), TR_EINVAL);
    ck_assert_tr_err(tr_barrier_wait(NULL, NULL, 0), TR_EINVAL);
    ck_assert_tr_err(tr_barrier_destroy(NULL), TR_EINVAL);
    tr_barrier zero = {0};
    ck_assert_tr_err(tr_barrier_wait(&zero, NULL, 0), TR_EINVAL);
    ck_assert_tr_err(tr_barrier_destroy(&zero), TR_EINVAL);
    ck_assert_uint_eq(tr_barrier_generation(NULL), 0);
    tr_barrier b;
    tr_barrier_init(&b, 1);
    ck_assert_tr_ok(tr_barrier_destroy(&b));
    ck_assert_tr_err(tr_barrier_destroy(&b), TR_EINVAL);
    ck_assert_tr_err(tr_barrier_wait(&b, NULL, 0), TR_EINVAL);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("barrier");
    TCase *tc = tr_tcase("tokio");
    tcase_add_test(tc, zero_does_not_block);
    tcase_add_test(tc, single);
    tcase_add_loop_test(tc, tango, 0, 2);
    tcase_add_loop_test(tc, lots, 0, 2);
    tcase_add_test(tc, bad_input);
    suite_add_tcase(s, tc);
    tc = tr_tcase("threads");
    tcase_add_test(tc, generations_workers_and_threads);
    tcase_add_test(tc, timeout_withdraws);
    tcase_add_test(tc, cancel_withdraws);
    tcase_add_test(tc, stress_timeouts_and_retries);
    suite_add_tcase(s, tc);
    return s;
}

TR_TEST_MAIN(suite)
