/* test_wait.c — the wait queue, through a tiny primitive built on it.
 *
 * A "token box" hands tokens to waiters one at a time, the way a channel
 * hands values: put() gives a token straight to the oldest waiter that can
 * still be claimed, or keeps it; take() takes a kept one or parks.  The
 * stress test checks the protocol's promise: with takers timing out and
 * being cancelled while putters on other workers and plain threads race
 * them, every token put is taken exactly once or left in the box.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "testutil.h"

typedef struct box {
    tr_spin lock;
    long tokens;
    tr_waitq takers;
} box;

static void box_init(box *b) {
    tr_spin_init(&b->lock);
    b->tokens = 0;
    tr_waitq_init(&b->takers);
}

static void box_put(box *b) {
    tr_spin_lock(&b->lock);
    tr_wait *e = tr_waitq_claim_next(&b->takers);
    if (!e) {
        b->tokens++;
        tr_spin_unlock(&b->lock);
        return;
    }
    tr_spin_unlock(&b->lock);
    e->result = 1; /* written into the taker's frame after the unlock: it can't have left */
    tr_waiter_wake(e->waiter);
}

static int box_take(box *b, int64_t deadline) {
    int rc = tr_wait_enter();
    if (rc)
        return rc;
    tr_spin_lock(&b->lock);
    if (b->tokens > 0) {
        b->tokens--;
        tr_spin_unlock(&b->lock);
        return 0;
    }
    tr_waiter w;
    tr_wait e;
    tr_waiter_init(&w);
    tr_wait_init(&e, &w, NULL);
    tr_waitq_push(&b->takers, &e);
    rc = tr_waiter_park(&w, &b->lock, deadline);
    if (rc != 0) {
        tr_spin_lock(&b->lock);
        if (e.linked)
            tr_waitq_remove(&b->takers, &e);
        tr_spin_unlock(&b->lock);
        return rc;
    }
    ck_assert_ptr_eq(w.winner, &e);
    ck_assert_int_eq(e.result, 1);
    return 0;
}

static box the_box;

/* ---- simple cases --------------------------------------------------------------- */

static void *taker(void *arg) {
    (void)arg;
    return (void *)(intptr_t)box_take(&the_box, TR_TEST_DEADLINE());
}

static void *put_later(void *arg) {
    (void)arg;
    tr_yield();
    box_put(&the_box);
    return NULL;
}

static void *wake_across_workers(void *arg) {
    (void)arg;
    box_init(&the_box);
    int n = tr_runtime_workers(tr_runtime_current());
    tr_task *t, *p;
    void *r;
    ck_assert_tr_ok(tr_spawn_ex(NULL, &(tr_spawn_opts){.worker = TR_WORKER(0)}, &t, taker, NULL));
    ck_assert_tr_ok(tr_spawn_ex(NULL, &(tr_spawn_opts){.worker = TR_WORKER(n - 1)}, &p,
                                put_later, NULL));
    ck_assert_tr_ok(tr_task_join(t, &r));
    ck_assert_int_eq((int)(intptr_t)r, 0);
    ck_assert_tr_ok(tr_task_join(p, NULL));
    return NULL;
}

START_TEST(test_wake_task_from_task) {
    tr_runtime *rt = tr_test_runtime(_i == 0 ? 1 : 4);
    ck_assert_tr_ok(tr_runtime_block_on(rt, wake_across_workers, NULL, NULL));
    tr_runtime_free(&rt);
}
END_TEST

START_TEST(test_wake_task_from_plain_thread) {
    box_init(&the_box);
    tr_runtime *rt = tr_test_runtime(2);
    tr_task *t;
    ck_assert_tr_ok(tr_spawn_ex(rt, NULL, &t, taker, NULL));
    box_put(&the_box);
    void *r;
    ck_assert_tr_ok(tr_task_join_until(t, &r, TR_TEST_DEADLINE()));
    ck_assert_int_eq((int)(intptr_t)r, 0);
    tr_runtime_free(&rt);
}
END_TEST

static void *plain_taker(void *arg) {
    (void)arg;
    return (void *)(intptr_t)box_take(&the_box, TR_TEST_DEADLINE());
}

static void *put_from_task(void *arg) {
    (void)arg;
    box_put(&the_box);
    return NULL;
}

START_TEST(test_wake_plain_thread_from_task) {
    box_init(&the_box);
    tr_runtime *rt = tr_test_runtime(2);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, plain_taker, NULL), 0);
    ck_assert_tr_ok(tr_runtime_block_on(rt, put_from_task, NULL, NULL));
    void *r;
    pthread_join(th, &r);
    ck_assert_int_eq((int)(intptr_t)r, 0);
    tr_runtime_free(&rt);
}
END_TEST

static void *take_with_deadline(void *arg) {
    (void)arg;
    int64_t deadline = tr_after_ms(20);
    ck_assert_tr_err(box_take(&the_box, deadline), TR_ETIMEDOUT);
    ck_assert_int_ge(tr_now(), deadline);
    ck_assert(tr_waitq_empty(&the_box.takers));
    ck_assert_tr_err(box_take(&the_box, 0), TR_ETIMEDOUT); /* past: no wait */
    return NULL;
}

START_TEST(test_deadline_expires) {
    box_init(&the_box);
    tr_runtime *rt = tr_test_runtime(1);
    ck_assert_tr_ok(tr_runtime_block_on(rt, take_with_deadline, NULL, NULL));
    take_with_deadline(NULL); /* plain thread */
    tr_runtime_free(&rt);
}
END_TEST

static void *take_forever(void *arg) {
    (void)arg;
    return (void *)(intptr_t)box_take(&the_box, TR_NEVER);
}

START_TEST(test_cancel_parked_taker) {
    box_init(&the_box);
    tr_runtime *rt = tr_test_runtime(2);
    tr_task *t;
    ck_assert_tr_ok(tr_spawn_ex(rt, NULL, &t, take_forever, NULL));
    ck_assert_tr_ok(tr_task_cancel(t));
    void *r;
    ck_assert_tr_ok(tr_task_join_until(t, &r, TR_TEST_DEADLINE()));
    ck_assert_int_eq((int)(intptr_t)r, TR_ECANCELED);
    ck_assert(tr_waitq_empty(&the_box.takers)); /* it unlinked itself */
    box_put(&the_box);                          /* so this token is kept */
    ck_assert_int_eq(the_box.tokens, 1);
    tr_runtime_free(&rt);
}
END_TEST

/* ---- the stress test --------------------------------------------------------------- */

#define PUTTERS 4
#define PUTS 5000
#define TAKERS 16

static atomic_long taken;
static atomic_int putters_done;

static void *stress_taker(void *arg) {
    unsigned seed = (unsigned)(uintptr_t)arg;
    int64_t end = TR_TEST_DEADLINE();
    while (tr_now() < end) {
        int64_t dl = (rand_r(&seed) % 4 == 0) ? tr_after_us(rand_r(&seed) % 200) : tr_after_ms(5);
        int rc = box_take(&the_box, dl);
        if (rc == 0)
            atomic_fetch_add(&taken, 1);
        else if (rc == TR_ECANCELED)
            return NULL;
        else if (atomic_load(&putters_done) == PUTTERS)
            return NULL;
    }
    return NULL;
}

static void *stress_putter(void *arg) {
    (void)arg;
    for (int i = 0; i < PUTS; i++) {
        box_put(&the_box);
        if (i % 64 == 0)
            tr_yield();
    }
    atomic_fetch_add(&putters_done, 1);
    return NULL;
}

START_TEST(test_stress_nothing_lost) {
    box_init(&the_box);
    atomic_store(&taken, 0);
    atomic_store(&putters_done, 0);
    tr_runtime *rt = tr_test_runtime(4);
    tr_task *takers[TAKERS], *putters[PUTTERS / 2];
    tr_spawn_opts bal = {.worker = TR_WORKER_BALANCED};
    for (int i = 0; i < TAKERS; i++)
        ck_assert_tr_ok(tr_spawn_ex(rt, &bal, &takers[i], stress_taker, (void *)(uintptr_t)(i + 1)));
    for (int i = 0; i < PUTTERS / 2; i++)
        ck_assert_tr_ok(tr_spawn_ex(rt, &bal, &putters[i], stress_putter, NULL));
    pthread_t th[PUTTERS / 2];
    for (int i = 0; i < PUTTERS / 2; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, stress_putter, NULL), 0);
    /* Cancel a few takers midway, from this thread. */
    for (int i = 0; i < TAKERS; i += 5)
        ck_assert_tr_ok(tr_task_cancel(takers[i]));
    for (int i = 0; i < PUTTERS / 2; i++) {
        pthread_join(th[i], NULL);
        ck_assert_tr_ok(tr_task_join_until(putters[i], NULL, TR_TEST_DEADLINE()));
    }
    for (int i = 0; i < TAKERS; i++)
        ck_assert_tr_ok(tr_task_join_until(takers[i], NULL, TR_TEST_DEADLINE()));
    ck_assert_int_eq(atomic_load(&taken) + the_box.tokens, (long)PUTTERS * PUTS);
    ck_assert(tr_waitq_empty(&the_box.takers));
    tr_runtime_free(&rt);
}
END_TEST

static void *spin_contender(void *arg) {
    tr_spin *s = arg;
    static long shared;
    for (int i = 0; i < 100000; i++) {
        tr_spin_lock(s);
        shared++;
        tr_spin_unlock(s);
    }
    tr_spin_lock(s);
    long seen = shared;
    tr_spin_unlock(s);
    return (void *)seen;
}

START_TEST(test_spin_lock) {
    tr_spin s = TR_SPIN_INIT;
    ck_assert(tr_spin_trylock(&s));
    ck_assert(!tr_spin_trylock(&s));
    tr_spin_unlock(&s);
    pthread_t th[3];
    for (int i = 0; i < 3; i++)
        pthread_create(&th[i], NULL, spin_contender, &s);
    void *r, *max = NULL;
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], &r);
        if (r > max)
            max = r;
    }
    ck_assert_int_eq((long)max, 300000);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("wait");
    TCase *tc = tr_tcase("wake");
    tcase_add_loop_test(tc, test_wake_task_from_task, 0, 2);
    tcase_add_test(tc, test_wake_task_from_plain_thread);
    tcase_add_test(tc, test_wake_plain_thread_from_task);
    tcase_add_test(tc, test_deadline_expires);
    tcase_add_test(tc, test_cancel_parked_taker);
    tcase_add_test(tc, test_spin_lock);
    suite_add_tcase(s, tc);
    tc = tr_tcase("stress");
    tcase_add_test(tc, test_stress_nothing_lost);
    suite_add_tcase(s, tc);
    return s;
}

TR_TEST_MAIN(suite)
