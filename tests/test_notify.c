/* test_notify.c — tr_notify, ported from tokio's tests/sync_notify.rs plus
 * what a threaded C implementation needs.
 *
 * tokio's tests poll futures by hand: "poll() is Pending" registers the
 * future, "is_woken()/poll() is Ready" asks whether it was notified.  The
 * registration form maps onto that one to one: tr_notified_enable()
 * registers and answers 1 once notified, so those scenarios run on one
 * thread, deterministically.  Real parked tasks and threads come after,
 * then select, then a stress run with timeouts and cancellation that would
 * hang (and fail at its deadline) if a notification were ever lost.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "testutil.h"
#include "tr_notify.h"
#include "tr_once.h"

/* White box: how many waiters are registered right now. */
static int queued(tr_notify *n) {
    int k = 0;
    tr_spin_lock(&n->lock);
    for (tr_wait *e = n->waiters.head; e; e = e->next)
        k++;
    tr_spin_unlock(&n->lock);
    return k;
}

/* A stored permit, observed without waiting (and consumed). */
static bool take_permit(tr_notify *n) { return tr_notify_notified(n, 0) == 0; }

/* ---- tokio's sync_notify.rs, single-threaded -------------------------------------- */

START_TEST(notify_notified_one) {
    tr_notify n;
    ck_assert_tr_ok(tr_notify_init(&n));
    tr_notified nd;
    ck_assert_tr_ok(tr_notified_init(&nd, &n));
    ck_assert_tr_ok(tr_notify_one(&n));
    ck_assert_tr_ok(tr_notified_wait(&nd, 0));
    ck_assert_tr_ok(tr_notified_drop(&nd));
    /* and the one-call form */
    ck_assert_tr_ok(tr_notify_one(&n));
    ck_assert_tr_ok(tr_notify_notified(&n, 0));
    ck_assert_tr_err(tr_notify_notified(&n, 0), TR_ETIMEDOUT);
    ck_assert_int_eq(queued(&n), 0);
    ck_assert_tr_ok(tr_notify_destroy(&n));
}
END_TEST

START_TEST(notify_multi_notified_one) {
    tr_notify n = TR_NOTIFY_INIT;
    tr_notified a, b;
    tr_notified_init(&a, &n);
    tr_notified_init(&b, &n);
    ck_assert_int_eq(tr_notified_enable(&a), 0);
    ck_assert_int_eq(tr_notified_enable(&b), 0);
    ck_assert_tr_ok(tr_notify_one(&n));
    ck_assert_int_eq(tr_notified_enable(&a), 1);
    ck_assert_int_eq(tr_notified_enable(&b), 0);
    ck_assert_tr_ok(tr_notified_drop(&a));
    ck_assert_tr_ok(tr_notified_drop(&b));
    ck_assert(!take_permit(&n));
    ck_assert_tr_ok(tr_notify_destroy(&n));
}
END_TEST

START_TEST(notify_multi_notified_last) {
    tr_notify n = TR_NOTIFY_INIT;
    tr_notified a, b;
    tr_notified_init(&a, &n);
    tr_notified_init(&b, &n);
    ck_assert_int_eq(tr_notified_enable(&a), 0);
    ck_assert_int_eq(tr_notified_enable(&b), 0);
    ck_assert_tr_ok(tr_notify_last(&n));
    ck_assert_int_eq(tr_notified_enable(&a), 0);
    ck_assert_int_eq(tr_notified_enable(&b), 1);
    tr_notified_drop(&a);
    tr_notified_drop(&b);
    ck_assert(!take_permit(&n));
}
END_TEST

START_TEST(notify_notified_multi) {
    tr_notify n = TR_NOTIFY_INIT;
    ck_assert_tr_ok(tr_notify_one(&n));
    ck_assert_tr_ok(tr_notify_one(&n)); /* still one permit */
    tr_notified a, b;
    tr_notified_init(&a, &n);
    tr_notified_init(&b, &n);
    ck_assert_int_eq(tr_notified_enable(&a), 1);
    ck_assert_int_eq(tr_notified_enable(&b), 0);
    ck_assert_tr_ok(tr_notify_one(&n));
    ck_assert_int_eq(tr_notified_enable(&b), 1);
    ck_assert_tr_ok(tr_notified_wait(&b, 0));
    tr_notified_drop(&a);
    tr_notified_drop(&b);
    ck_assert(!take_permit(&n));
}
END_TEST

START_TEST(notified_drop_notified_notify) {
    tr_notify n = TR_NOTIFY_INIT;
    tr_notified a, b;
    tr_notified_init(&a, &n);
    tr_notified_init(&b, &n);
    ck_assert_int_eq(tr_notified_enable(&a), 0);
    tr_notified_drop(&a);
    ck_assert_int_eq(tr_notified_enable(&b), 0);
    tr_notify_one(&n);
    ck_assert_int_eq(tr_notified_enable(&b), 1);
    tr_notified_drop(&b);
    ck_assert(!take_permit(&n));
}
END_TEST

START_TEST(notified_multi_notify_drop_one) {
    tr_notify n = TR_NOTIFY_INIT;
    tr_notified a, b;
    tr_notified_init(&a, &n);
    tr_notified_init(&b, &n);
    ck_assert_int_eq(tr_notified_enable(&a), 0);
    ck_assert_int_eq(tr_notified_enable(&b), 0);
    tr_notify_one(&n);
    ck_assert_tr_ok(tr_notified_drop(&a)); /* chosen, never observed: passed on */
    ck_assert_int_eq(tr_notified_enable(&b), 1);
    tr_notified_drop(&b);
    ck_assert(!take_permit(&n));
}
END_TEST

START_TEST(notified_multi_notify_one_drop) {
    tr_notify n = TR_NOTIFY_INIT;
    tr_notified a, b, c;
    tr_notified_init(&a, &n);
    tr_notified_init(&b, &n);
    tr_notified_init(&c, &n);
    ck_assert_int_eq(tr_notified_enable(&a), 0);
    ck_assert_int_eq(tr_notified_enable(&b), 0);
    ck_assert_int_eq(tr_notified_enable(&c), 0);
    tr_notify_one(&n);
    tr_notified_drop(&a);
    ck_assert_tr_ok(tr_notified_wait(&b, 0));
    ck_assert_tr_err(tr_notified_wait(&c, 0), TR_ETIMEDOUT);
    tr_notified_drop(&b);
    tr_notified_drop(&c);
    ck_assert(!take_permit(&n));
}
END_TEST

START_TEST(notified_multi_notify_last_drop) {
    tr_notify n = TR_NOTIFY_INIT;
    tr_notified a, b, c;
    tr_notified_init(&a, &n);
    tr_notified_init(&b, &n);
    tr_notified_init(&c, &n);
    ck_assert_int_eq(tr_notified_enable(&a), 0);
    ck_assert_int_eq(tr_notified_enable(&b), 0);
    ck_assert_int_eq(tr_notified_enable(&c), 0);
    tr_notify_last(&n);
    tr_notified_drop(&c); /* passed on LIFO: to b */
    ck_assert_tr_ok(tr_notified_wait(&b, 0));
    ck_assert_tr_err(tr_notified_wait(&a, 0), TR_ETIMEDOUT);
    tr_notified_drop(&a);
    tr_notified_drop(&b);
}
END_TEST

START_TEST(notified_chosen_dropped_alone_stores_permit) {
    tr_notify n = TR_NOTIFY_INIT;
    tr_notified a;
    tr_notified_init(&a, &n);
    ck_assert_int_eq(tr_notified_enable(&a), 0);
    tr_notify_one(&n);
    tr_notified_drop(&a);
    ck_assert(take_permit(&n));
    ck_assert(!take_permit(&n));
    /* observed notifications are not passed on */
    tr_notified_init(&a, &n);
    ck_assert_int_eq(tr_notified_enable(&a), 0);
    tr_notify_one(&n);
    ck_assert_int_eq(tr_notified_enable(&a), 1);
    tr_notified_drop(&a);
    ck_assert(!take_permit(&n));
}
END_TEST

START_TEST(notify_one_after_dropped_all) {
    tr_notify n = TR_NOTIFY_INIT;
    tr_notified a, b;
    tr_notified_init(&a, &n);
    ck_assert_int_eq(tr_notified_enable(&a), 0);
    tr_notify_waiters(&n);
    tr_notify_one(&n);
    tr_notified_drop(&a); /* a notify_waiters notification is not passed on */
    tr_notified_init(&b, &n);
    ck_assert_int_eq(tr_notified_enable(&b), 1); /* the stored permit */
    tr_notified_drop(&b);
    ck_assert(!take_permit(&n));
}
END_TEST

START_TEST(notify_one_not_enabled) {
    tr_notify n = TR_NOTIFY_INIT;
    tr_notified a;
    tr_notified_init(&a, &n);
    tr_notify_one(&n); /* a is not registered: the permit is stored */
    ck_assert_int_eq(queued(&n), 0);
    ck_assert_tr_ok(tr_notified_wait(&a, 0));
    tr_notified_drop(&a);
}
END_TEST

START_TEST(notify_one_after_enable) {
    tr_notify n = TR_NOTIFY_INIT;
    tr_notified a;
    tr_notified_init(&a, &n);
    ck_assert_int_eq(tr_notified_enable(&a), 0);
    tr_notify_one(&n);
    ck_assert_tr_ok(tr_notified_wait(&a, 0));
    ck_assert_int_eq(tr_notified_enable(&a), 1);
    ck_assert_tr_ok(tr_notified_wait(&a, 0)); /* fused */
    tr_notified_drop(&a);
    ck_assert(!take_permit(&n));
}
END_TEST

START_TEST(poll_after_enable_and_enable_after_poll) {
    tr_notify n = TR_NOTIFY_INIT;
    tr_notified a, b;
    tr_notified_init(&a, &n);
    ck_assert_int_eq(tr_notified_enable(&a), 0);
    ck_assert_tr_err(tr_notified_wait(&a, 0), TR_ETIMEDOUT);
    tr_notified_init(&b, &n);
    ck_assert_tr_err(tr_notified_wait(&b, 0), TR_ETIMEDOUT);
    ck_assert_int_eq(tr_notified_enable(&b), 0); /* still registered after the timeout */
    ck_assert_int_eq(queued(&n), 2);
    tr_notify_one(&n);
    tr_notify_one(&n);
    ck_assert_int_eq(tr_notified_enable(&a), 1);
    ck_assert_int_eq(tr_notified_enable(&b), 1);
    tr_notified_drop(&a);
    tr_notified_drop(&b);
    ck_assert_int_eq(queued(&n), 0);
}
END_TEST

START_TEST(enable_consumes_permit) {
    tr_notify n = TR_NOTIFY_INIT;
    tr_notify_one(&n);
    tr_notified a, b;
    tr_notified_init(&a, &n);
    ck_assert_int_eq(tr_notified_enable(&a), 1);
    tr_notified_init(&b, &n);
    ck_assert_int_eq(tr_notified_enable(&b), 0);
    tr_notified_drop(&a);
    tr_notified_drop(&b);
}
END_TEST

START_TEST(unpolled_completed_by_notify_waiters_preserves_permit) {
    tr_notify n = TR_NOTIFY_INIT;
    tr_notified a;
    tr_notified_init(&a, &n);
    tr_notify_waiters(&n);
    tr_notify_one(&n);
    ck_assert_tr_ok(tr_notified_wait(&a, 0));
    tr_notified_drop(&a);
    ck_assert(take_permit(&n));
}
END_TEST

START_TEST(notify_waiters_vs_later_waiters) {
    tr_notify n = TR_NOTIFY_INIT;
    tr_notified registered, created, later;
    tr_notified_init(&registered, &n);
    ck_assert_int_eq(tr_notified_enable(&registered), 0);
    tr_notified_init(&created, &n); /* created before, never enabled */
    ck_assert_tr_ok(tr_notify_waiters(&n));
    tr_notified_init(&later, &n); /* created after: unaffected */
    ck_assert_int_eq(tr_notified_enable(&registered), 1);
    ck_assert_int_eq(tr_notified_enable(&created), 1);
    ck_assert_int_eq(tr_notified_enable(&later), 0);
    ck_assert_tr_err(tr_notify_notified(&n, 0), TR_ETIMEDOUT); /* stores nothing */
    /* a second call reaches `later` */
    tr_notify_waiters(&n);
    ck_assert_int_eq(tr_notified_enable(&later), 1);
    tr_notified_drop(&registered);
    tr_notified_drop(&created);
    tr_notified_drop(&later);
    ck_assert(!take_permit(&n));
    ck_assert_tr_ok(tr_notify_destroy(&n));
}
END_TEST

START_TEST(bad_input) {
    ck_assert_tr_err(tr_notify_init(NULL), TR_EINVAL);
    ck_assert_tr_err(tr_notify_one(NULL), TR_EINVAL);
    ck_assert_tr_err(tr_notify_last(NULL), TR_EINVAL);
    ck_assert_tr_err(tr_notify_waiters(NULL), TR_EINVAL);
    ck_assert_tr_err(tr_notify_notified(NULL, 0), TR_EINVAL);
    ck_assert_tr_err(tr_notify_destroy(NULL), TR_EINVAL);
    tr_notify zero = {0};
    ck_assert_tr_err(tr_notify_one(&zero), TR_EINVAL); /* never initialised */
    tr_notified nd;
    ck_assert_tr_err(tr_notified_init(&nd, &zero), TR_EINVAL);
    ck_assert_tr_err(tr_notified_init(NULL, &zero), TR_EINVAL);
    ck_assert_tr_err(tr_notified_enable(NULL), TR_EINVAL);
    ck_assert_tr_err(tr_notified_wait(NULL, 0), TR_EINVAL);
    ck_assert_tr_err(tr_notified_drop(NULL), TR_EINVAL);

    tr_notify n;
    tr_notify_init(&n);
    tr_notified_init(&nd, &n);
    ck_assert_int_eq(tr_notified_enable(&nd), 0);
    ck_assert_tr_err(tr_notify_destroy(&n), TR_EBUSY); /* still registered */
    ck_assert_tr_ok(tr_notified_drop(&nd));
    ck_assert_tr_err(tr_notified_drop(&nd), TR_EINVAL);
    ck_assert_tr_err(tr_notified_enable(&nd), TR_EINVAL);
    ck_assert_tr_err(tr_notified_wait(&nd, 0), TR_EINVAL);
    ck_assert_tr_ok(tr_notify_destroy(&n));
    ck_assert_tr_err(tr_notify_destroy(&n), TR_EINVAL);
    ck_assert_tr_err(tr_notify_one(&n), TR_EINVAL);

    tr_clause c;
    ck_assert_tr_err(tr_notify_notified_clause(NULL, &n), TR_EINVAL);
    ck_assert_tr_err(tr_notify_notified_clause(&c, &n), TR_EINVAL);
    ck_assert_tr_err(tr_select(&c, 1, 0, 0), TR_EINVAL);
}
END_TEST

/* ---- real waiters: tasks on several workers, plain threads --------------------------- */

static tr_notify gn;
static atomic_int registered, finished, order[16];

/* Registers (counted), then waits; records the order in which waiters end. */
static void *ordered_waiter(void *arg) {
    int id = (int)(intptr_t)arg;
    tr_notified nd;
    tr_notified_init(&nd, &gn);
    ck_assert_int_eq(tr_notified_enable(&nd), 0);
    atomic_fetch_add(&registered, 1);
    int rc = tr_notified_wait(&nd, TR_TEST_DEADLINE());
    tr_notified_drop(&nd);
    if (rc == 0) {
        /* one waiter is woken per notify, so the slot is free: fill it,
         * then publish */
        atomic_store(&order[atomic_load(&finished)], id);
        atomic_fetch_add(&finished, 1);
    }
    return RC(rc);
}

static void run_order(tr_runtime *rt, bool last) {
    tr_notify_init(&gn);
    atomic_store(&registered, 0);
    atomic_store(&finished, 0);
    tr_task *t[3];
    pthread_t th;
    /* Register in a known order: task 0, plain thread 1, task 2. */
    t[0] = spawn_on(rt, 0, ordered_waiter, (void *)(intptr_t)0);
    await_count(&registered, 1);
    ck_assert_int_eq(pthread_create(&th, NULL, ordered_waiter, (void *)(intptr_t)1), 0);
    await_count(&registered, 2);
    t[2] = spawn_on(rt, 1, ordered_waiter, (void *)(intptr_t)2);
    await_count(&registered, 3);
    for (int k = 0; k < 3; k++) {
        ck_assert_tr_ok(last ? tr_notify_last(&gn) : tr_notify_one(&gn));
        await_count(&finished, k + 1);
        ck_assert_int_eq(atomic_load(&order[k]), last ? 2 - k : k);
    }
    ck_assert_int_eq(join_rc(t[0]), 0);
    ck_assert_int_eq(join_rc(t[2]), 0);
    void *r;
    pthread_join(th, &r);
    ck_assert_int_eq((int)(intptr_t)r, 0);
    ck_assert(!take_permit(&gn));
    ck_assert_tr_ok(tr_notify_destroy(&gn));
}

START_TEST(fifo_and_lifo_across_workers_and_threads) {
    tr_runtime *rt = tr_test_runtime(workers_for(_i));
    run_order(rt, false);
    run_order(rt, true);
    tr_runtime_free(&rt);
}
END_TEST

static void *plain_wait(void *arg) {
    (void)arg;
    int rc = tr_notify_notified(&gn, TR_TEST_DEADLINE());
    atomic_fetch_add(&finished, 1);
    return RC(rc);
}

/* Waits in a loop until one notification arrives; the sleep before makes
 * "waiting when notified" likely, but the test holds either way. */
START_TEST(notified_one_notify_task_and_thread) {
    tr_runtime *rt = tr_test_runtime(2);
    tr_notify_init(&gn);
    atomic_store(&finished, 0);
    tr_task *t = spawn_on(rt, 1, plain_wait, NULL);
    pthread_t th;
    pthread_create(&th, NULL, plain_wait, NULL);
    tr_sleep_ms(5);
    tr_notify_one(&gn);
    await_count(&finished, 1);
    tr_notify_one(&gn);
    await_count(&finished, 2);
    ck_assert_int_eq(join_rc(t), 0);
    void *r;
    pthread_join(th, &r);
    ck_assert_int_eq((int)(intptr_t)r, 0);
    ck_assert(!take_permit(&gn));
    tr_runtime_free(&rt);
}
END_TEST

static void *wait_forever(void *arg) {
    (void)arg;
    atomic_fetch_add(&registered, 1);
    return RC(tr_notify_notified(&gn, TR_NEVER));
}

START_TEST(cancel_and_timeout_unregister) {
    tr_runtime *rt = tr_test_runtime(2);
    tr_notify_init(&gn);
    atomic_store(&registered, 0);
    tr_task *t = spawn_on(rt, 0, wait_forever, NULL);
    await_count(&registered, 1);
    tr_sleep_ms(2);
    ck_assert_tr_ok(tr_task_cancel(t));
    ck_assert_int_eq(join_rc(t), TR_ECANCELED);
    ck_assert_int_eq(queued(&gn), 0);
    /* A timed-out wait leaves nothing behind either, and takes nothing. */
    int64_t dl = tr_after_ms(20);
    ck_assert_tr_err(tr_notify_notified(&gn, dl), TR_ETIMEDOUT);
    ck_assert_int_ge(tr_now(), dl);
    ck_assert_int_eq(queued(&gn), 0);
    tr_notify_one(&gn); /* nobody registered: stored */
    ck_assert(take_permit(&gn));
    ck_assert_tr_ok(tr_notify_destroy(&gn));
    tr_runtime_free(&rt);
}
END_TEST

/* tokio's test_waker_update: the same registration waited on first from a
 * plain thread (timing out), then from a task — only the latter is woken. */
static tr_notified shared_nd;

static void *wait_shared(void *arg) {
    (void)arg;
    atomic_fetch_add(&registered, 1);
    return RC(tr_notified_wait(&shared_nd, TR_TEST_DEADLINE()));
}

START_TEST(registration_moves_between_waiters) {
    tr_runtime *rt = tr_test_runtime(2);
    tr_notify_init(&gn);
    atomic_store(&registered, 0);
    tr_notified_init(&shared_nd, &gn);
    ck_assert_tr_err(tr_notified_wait(&shared_nd, tr_after_ms(5)), TR_ETIMEDOUT);
    tr_task *t = spawn_on(rt, 1, wait_shared, NULL);
    await_count(&registered, 1);
    tr_sleep_ms(2);
    tr_notify_one(&gn);
    ck_assert_int_eq(join_rc(t), 0);
    ck_assert_tr_ok(tr_notified_drop(&shared_nd));
    ck_assert(!take_permit(&gn));
    tr_runtime_free(&rt);
}
END_TEST

/* The registration form's reason to exist: a waiter registered, then got
 * busy (here: parked on something else), is chosen by notify_one, and is
 * cancelled before it ever looks.  Dropping its registration must pass the
 * notification on to the next waiter. */
static tr_notify other;

static void *register_then_block_elsewhere(void *arg) {
    (void)arg;
    tr_notified nd;
    tr_notified_init(&nd, &gn);
    ck_assert_int_eq(tr_notified_enable(&nd), 0);
    atomic_fetch_add(&registered, 1);
    int rc = tr_notify_notified(&other, TR_TEST_DEADLINE()); /* busy elsewhere */
    tr_notified_drop(&nd);
    return RC(rc);
}

START_TEST(chosen_then_cancelled_passes_on) {
    tr_runtime *rt = tr_test_runtime(workers_for(_i));
    tr_notify_init(&gn);
    tr_notify_init(&other);
    atomic_store(&registered, 0);
    atomic_store(&finished, 0);
    tr_task *busy = spawn_on(rt, 0, register_then_block_elsewhere, NULL);
    await_count(&registered, 1);
    tr_task *next = spawn_on(rt, 1, ordered_waiter, (void *)(intptr_t)7);
    await_count(&registered, 2);
    tr_notify_one(&gn); /* chooses `busy`'s registration, the oldest */
    tr_sleep_ms(5);
    ck_assert_int_eq(atomic_load(&finished), 0); /* not passed on yet */
    ck_assert_tr_ok(tr_task_cancel(busy));
    ck_assert_int_eq(join_rc(busy), TR_ECANCELED);
    ck_assert_int_eq(join_rc(next), 0); /* got it from the drop */
    ck_assert(!take_permit(&gn));
    ck_assert_int_eq(queued(&gn), 0);
    ck_assert_int_eq(queued(&other), 0);
    tr_runtime_free(&rt);
}
END_TEST

static void *wait_registered(void *arg) {
    (void)arg;
    tr_notified nd;
    tr_notified_init(&nd, &gn);
    tr_notified_enable(&nd);
    atomic_fetch_add(&registered, 1);
    int rc = tr_notified_wait(&nd, TR_TEST_DEADLINE());
    tr_notified_drop(&nd);
    atomic_fetch_add(&finished, 1);
    return RC(rc);
}

START_TEST(notify_waiters_wakes_tasks_and_threads) {
    enum { TASKS = 12, THREADS = 3 };
    tr_runtime *rt = tr_test_runtime(4);
    tr_notify_init(&gn);
    atomic_store(&registered, 0);
    atomic_store(&finished, 0);
    tr_task *t[TASKS];
    pthread_t th[THREADS];
    for (int i = 0; i < TASKS; i++)
        t[i] = spawn_on(rt, i, wait_registered, NULL);
    for (int i = 0; i < THREADS; i++)
        pthread_create(&th[i], NULL, wait_registered, NULL);
    await_count(&registered, TASKS + THREADS);
    ck_assert_tr_ok(tr_notify_waiters(&gn));
    for (int i = 0; i < TASKS; i++)
        ck_assert_int_eq(join_rc(t[i]), 0);
    for (int i = 0; i < THREADS; i++) {
        void *r;
        pthread_join(th[i], &r);
        ck_assert_int_eq((int)(intptr_t)r, 0);
    }
    ck_assert(!take_permit(&gn));
    ck_assert_tr_ok(tr_notify_destroy(&gn));
    tr_runtime_free(&rt);
}
END_TEST

/* ---- select -------------------------------------------------------------------------- */

static tr_setonce gate;

static void *select_notify_or_gate(void *arg) {
    (void)arg;
    tr_clause c[2];
    int v = 0;
    ck_assert_tr_ok(tr_notify_notified_clause(&c[0], &gn));
    ck_assert_tr_ok(tr_setonce_wait_clause(&c[1], &gate, &v));
    atomic_fetch_add(&registered, 1);
    int i = tr_select(c, 2, TR_TEST_DEADLINE(), 0);
    ck_assert_int_ge(i, 0);
    ck_assert_int_eq(c[i].result, 0);
    return RC(i == 1 ? 100 + v : i);
}

START_TEST(select_with_clauses) {
    tr_runtime *rt = tr_test_runtime(2);
    tr_notify_init(&gn);
    ck_assert_tr_ok(tr_setonce_init(&gate, sizeof(int), NULL));
    atomic_store(&registered, 0);
    /* the permit is taken by arming, at once */
    tr_notify_one(&gn);
    ck_assert_int_eq(join_rc(spawn_on(rt, 0, select_notify_or_gate, NULL)), 0);
    /* a parked select woken through its notify clause */
    tr_task *t = spawn_on(rt, 1, select_notify_or_gate, NULL);
    await_count(&registered, 2);
    tr_sleep_ms(2);
    tr_notify_one(&gn);
    ck_assert_int_eq(join_rc(t), 0);
    ck_assert_int_eq(queued(&gn), 0);
    /* ... and through the set-once clause; the notify clause takes nothing */
    t = spawn_on(rt, 0, select_notify_or_gate, NULL);
    await_count(&registered, 3);
    tr_sleep_ms(2);
    int v = 42;
    ck_assert_tr_ok(tr_setonce_set(&gate, &v));
    ck_assert_int_eq(join_rc(t), 142);
    ck_assert_int_eq(queued(&gn), 0);
    ck_assert(!take_permit(&gn));
    /* a timed-out select leaves nothing registered */
    tr_clause c;
    tr_notify_notified_clause(&c, &gn);
    ck_assert_tr_err(tr_select(&c, 1, tr_after_ms(5), 0), TR_ETIMEDOUT);
    ck_assert_int_eq(queued(&gn), 0);
    ck_assert_tr_ok(tr_setonce_destroy(&gate));
    ck_assert_tr_ok(tr_notify_destroy(&gn));
    tr_runtime_free(&rt);
}
END_TEST

/* A notify clause chosen by notify_one after another clause already won
 * its select: the clause ops, driven by hand, must pass it on on disarm. */
START_TEST(select_lost_clause_passes_on) {
    tr_notify n = TR_NOTIFY_INIT;
    tr_clause c;
    tr_notify_notified_clause(&c, &n);
    tr_waiter w;
    tr_waiter_init(&w);
    tr_wait_init(&c.entry, &w, NULL);
    ck_assert_int_eq(c.ops->arm(&c, &c.entry), TR_SELECT_ARMED);
    tr_notified later;
    tr_notified_init(&later, &n);
    ck_assert_int_eq(tr_notified_enable(&later), 0);
    tr_wait other_clause;
    tr_wait_init(&other_clause, &w, NULL);
    ck_assert(tr_waiter_claim(&w, &other_clause)); /* another clause wins */
    tr_notify_one(&n);                            /* chooses our clause's entry */
    ck_assert_int_eq(tr_notified_enable(&later), 0);
    c.ops->disarm(&c, &c.entry); /* the select cleans up: passes it on */
    ck_assert_int_eq(tr_notified_enable(&later), 1);
    tr_notified_drop(&later);
    ck_assert(!take_permit(&n));
}
END_TEST

/* ---- stress: work items announced by notify_one, no wake-up ever lost ----------------- */

#define ITEMS 20000
#define PRODUCERS 4
#define STEADY 4
#define FLAKY 12

static atomic_int work, consumed, produced_by_all, timeouts, cancels;
static atomic_bool all_done;

static bool take_work(void) {
    int w = atomic_load(&work);
    while (w > 0)
        if (atomic_compare_exchange_weak(&work, &w, w - 1))
            return true;
    return false;
}

static void *producer(void *arg) {
    (void)arg;
    for (int i = 0; i < ITEMS / PRODUCERS; i++) {
        atomic_fetch_add(&work, 1);
        tr_notify_one(&gn);
        if (i % 32 == 0) {
            if (tr_task_self())
                tr_yield();
            else
                sched_yield();
        }
    }
    atomic_fetch_add(&produced_by_all, 1);
    return NULL;
}

/* Steady consumers wait with the test deadline; flaky ones use short
 * random deadlines and may be cancelled: every one that gives up while
 * chosen must pass its notification on, or the steady ones starve. */
static void *consumer(void *arg) {
    unsigned seed = (unsigned)(uintptr_t)arg;
    bool flaky = seed > STEADY;
    for (;;) {
        if (take_work()) {
            atomic_fetch_add(&consumed, 1);
            continue;
        }
        tr_notified nd;
        tr_notified_init(&nd, &gn);
        tr_notified_enable(&nd);
        if (take_work()) { /* re-check after registering: no lost wake-up */
            atomic_fetch_add(&consumed, 1);
            tr_notified_drop(&nd);
            continue;
        }
        if (atomic_load(&all_done)) {
            tr_notified_drop(&nd);
            return NULL;
        }
        int64_t dl = flaky ? tr_after_us(rand_r(&seed) % 300) : TR_TEST_DEADLINE();
        int rc = tr_notified_wait(&nd, dl);
        tr_notified_drop(&nd);
        if (rc == TR_ECANCELED) {
            atomic_fetch_add(&cancels, 1);
            return NULL;
        }
        if (rc == TR_ETIMEDOUT) {
            ck_assert_msg(flaky, "a steady consumer timed out: a wake-up was lost");
            atomic_fetch_add(&timeouts, 1);
            if (rand_r(&seed) % 4 == 0)
                return NULL;
        }
    }
}

START_TEST(stress_no_lost_wakeup) {
    tr_runtime *rt = tr_test_runtime(4);
    tr_notify_init(&gn);
    atomic_store(&work, 0);
    atomic_store(&consumed, 0);
    atomic_store(&produced_by_all, 0);
    atomic_store(&timeouts, 0);
    atomic_store(&cancels, 0);
    atomic_store(&all_done, false);
    tr_task *c[STEADY + FLAKY], *p[PRODUCERS / 2];
    for (int i = 0; i < STEADY + FLAKY; i++)
        c[i] = spawn_on(rt, i, consumer, (void *)(uintptr_t)(i + 1));
    pthread_t th[PRODUCERS / 2], steady_thread;
    pthread_create(&steady_thread, NULL, consumer, (void *)(uintptr_t)1);
    for (int i = 0; i < PRODUCERS / 2; i++) {
        p[i] = spawn_on(rt, i, producer, NULL);
        pthread_create(&th[i], NULL, producer, NULL);
    }
    for (int i = STEADY; i < STEADY + FLAKY; i += 3)
        tr_task_cancel(c[i]);
    for (int i = 0; i < PRODUCERS / 2; i++) {
        ck_assert_int_eq(join_rc(p[i]), 0);
        pthread_join(th[i], NULL);
    }
    await_count(&consumed, ITEMS);
    atomic_store(&all_done, true);
    tr_notify_waiters(&gn);
    for (int i = 0; i < STEADY + FLAKY; i++)
        join_rc(c[i]);
    pthread_join(steady_thread, NULL);
    ck_assert_int_eq(atomic_load(&consumed), ITEMS);
    ck_assert_int_eq(atomic_load(&work), 0);
    ck_assert_int_eq(queued(&gn), 0);
    take_permit(&gn);
    ck_assert_tr_ok(tr_notify_destroy(&gn));
    tr_runtime_free(&rt);
}
END_TEST

/* Plain one-call waiters with deadlines of a few microseconds racing a
 * stream of notify_one: the notifier keeps choosing waiters whose deadline
 * is firing, which must pass the notification on in unregister_locked.
 * Counting cannot prove conservation here (permits collapse), so this run
 * is for the sanitizers and for the end state: nothing left registered,
 * and notifications still reach waiters afterwards. */
static atomic_int woke;

static void *racing_waiter(void *arg) {
    unsigned seed = (unsigned)(uintptr_t)arg;
    int64_t end = tr_after_ms(300);
    while (tr_now() < end) {
        int rc = tr_notify_notified(&gn, tr_after_us(rand_r(&seed) % 100));
        if (rc == 0)
            atomic_fetch_add(&woke, 1);
        else if (rc == TR_ECANCELED)
            break;
    }
    return NULL;
}

START_TEST(stress_racing_timeouts) {
    tr_runtime *rt = tr_test_runtime(4);
    tr_notify_init(&gn);
    atomic_store(&woke, 0);
    tr_task *t[8];
    for (int i = 0; i < 8; i++)
        t[i] = spawn_on(rt, i, racing_waiter, (void *)(uintptr_t)(i + 1));
    pthread_t th;
    pthread_create(&th, NULL, racing_waiter, (void *)(uintptr_t)99);
    int sent = 0;
    int64_t end = tr_after_ms(250);
    while (tr_now() < end) {
        tr_notify_one(&gn);
        sent++;
        if (sent % 16 == 0)
            sched_yield();
    }
    for (int i = 0; i < 8; i++)
        join_rc(t[i]);
    pthread_join(th, NULL);
    ck_assert_int_eq(queued(&gn), 0);
    ck_assert_int_le(atomic_load(&woke), sent);
    ck_assert_int_gt(atomic_load(&woke), 0);
    take_permit(&gn);
    ck_assert(!take_permit(&gn));
    tr_notify_one(&gn);
    ck_assert(take_permit(&gn));
    ck_assert_tr_ok(tr_notify_destroy(&gn));
    tr_runtime_free(&rt);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("notify");
    TCase *tc = tr_tcase("tokio");
    tcase_add_test(tc, notify_notified_one);
    tcase_add_test(tc, notify_multi_notified_one);
    tcase_add_test(tc, notify_multi_notified_last);
    tcase_add_test(tc, notify_notified_multi);
    tcase_add_test(tc, notified_drop_notified_notify);
    tcase_add_test(tc, notified_multi_notify_drop_one);
    tcase_add_test(tc, notified_multi_notify_one_drop);
    tcase_add_test(tc, notified_multi_notify_last_drop);
    tcase_add_test(tc, notified_chosen_dropped_alone_stores_permit);
    tcase_add_test(tc, notify_one_after_dropped_all);
    tcase_add_test(tc, notify_one_not_enabled);
    tcase_add_test(tc, notify_one_after_enable);
    tcase_add_test(tc, poll_after_enable_and_enable_after_poll);
    tcase_add_test(tc, enable_consumes_permit);
    tcase_add_test(tc, unpolled_completed_by_notify_waiters_preserves_permit);
    tcase_add_test(tc, notify_waiters_vs_later_waiters);
    tcase_add_test(tc, bad_input);
    suite_add_tcase(s, tc);
    tc = tr_tcase("waiters");
    tcase_add_loop_test(tc, fifo_and_lifo_across_workers_and_threads, 0, 2);
    tcase_add_test(tc, notified_one_notify_task_and_thread);
    tcase_add_test(tc, cancel_and_timeout_unregister);
    tcase_add_test(tc, registration_moves_between_waiters);
    tcase_add_loop_test(tc, chosen_then_cancelled_passes_on, 0, 2);
    tcase_add_test(tc, notify_waiters_wakes_tasks_and_threads);
    suite_add_tcase(s, tc);
    tc = tr_tcase("select");
    tcase_add_test(tc, select_with_clauses);
    tcase_add_test(tc, select_lost_clause_passes_on);
    suite_add_tcase(s, tc);
    tc = tr_tcase("stress");
    tcase_add_test(tc, stress_no_lost_wakeup);
    tcase_add_test(tc, stress_racing_timeouts);
    suite_add_tcase(s, tc);
    return s;
}

TR_TEST_MAIN(suite)
