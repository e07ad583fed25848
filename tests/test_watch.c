/* test_watch.c — tr_watch, after tokio/tests/sync_watch.rs.
 *
 * A tokio "pending poll" is a changed()/closed() with a past deadline
 * (TR_ETIMEDOUT); "is woken" is a task parked in the wait returning.
 * Beyond tokio's scenarios: both reading modes checked for torn reads
 * under concurrent writes, readers on 4 workers and plain threads, a
 * parked changed() cancelled, select with the clauses (the shutdown
 * pattern), destructor counts, and bad input.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "testutil.h"
#include "tr_watch.h"

#define PENDING(expr) ck_assert_tr_err((expr), TR_ETIMEDOUT)

static const char *str_of(tr_watch_rx *rx) {
    const char *s = NULL;
    ck_assert_tr_ok(tr_watch_get(rx, &s));
    return s;
}

static const char *ONE = "one", *TWO = "two", *THREE = "three", *FOUR = "four";

static tr_watch_rx *g_rx;
static tr_watch_tx *g_tx;

static void *changed_task(void *arg) {
    tr_watch_rx *rx = arg ? arg : g_rx;
    return RC(tr_watch_changed(rx, TR_TEST_DEADLINE()));
}

/* ---- tokio's scenarios --------------------------------------------------------- */

START_TEST(test_single_rx_recv) {
    tr_runtime *rt = tr_test_runtime(workers_for(_i));
    ck_assert_tr_ok(tr_watch_new(&g_tx, &g_rx, sizeof(char *), &ONE));
    PENDING(tr_watch_changed(g_rx, 0)); /* not initially notified */
    ck_assert_str_eq(str_of(g_rx), "one");

    tr_task *t = spawn_on(rt, 1, changed_task, NULL);
    tr_sleep_ms(2);
    ck_assert_tr_ok(tr_watch_send(g_tx, &TWO));
    ck_assert_int_eq(join_rc(t), 0);
    ck_assert_str_eq(str_of(g_rx), "two");

    t = spawn_on(rt, 0, changed_task, NULL);
    tr_sleep_ms(2);
    ck_assert_tr_ok(tr_watch_tx_drop(&g_tx));
    ck_assert_int_eq(join_rc(t), TR_ECLOSED);
    ck_assert_str_eq(str_of(g_rx), "two");
    ck_assert_tr_ok(tr_watch_rx_drop(&g_rx));
    tr_runtime_free(&rt);
}
END_TEST

START_TEST(test_rx_version_underflow) {
    tr_watch_tx *tx;
    tr_watch_rx *rx;
    ck_assert_tr_ok(tr_watch_new(&tx, &rx, sizeof(char *), &ONE));
    ck_assert_tr_ok(tr_watch_mark_changed(rx));
    ck_assert_tr_ok(tr_watch_mark_changed(rx));
    ck_assert_int_eq(tr_watch_has_changed(rx), 1);
    ck_assert_tr_ok(tr_watch_changed(rx, 0));
    ck_assert_int_eq(tr_watch_has_changed(rx), 0);
    tr_watch_tx_drop(&tx);
    tr_watch_rx_drop(&rx);
}
END_TEST

START_TEST(test_rx_mark_changed) {
    tr_watch_tx *tx;
    tr_watch_rx *rx, *rx2, *rx3, *rx4;
    tr_watch_ref r;
    ck_assert_tr_ok(tr_watch_new(&tx, &rx, sizeof(char *), &ONE));
    ck_assert_tr_ok(tr_watch_rx_clone(rx, &rx2));
    ck_assert_tr_ok(tr_watch_rx_clone(rx, &rx3));
    ck_assert_tr_ok(tr_watch_rx_clone(rx, &rx4));

    ck_assert_tr_ok(tr_watch_mark_changed(rx));
    ck_assert_int_eq(tr_watch_has_changed(rx), 1);
    ck_assert_tr_ok(tr_watch_changed(rx, 0));

    ck_assert_int_eq(tr_watch_has_changed(rx2), 0);
    PENDING(tr_watch_changed(rx2, 0));

    ck_assert_tr_ok(tr_watch_mark_changed(rx3));
    ck_assert_str_eq(str_of(rx3), "one");
    ck_assert_int_eq(tr_watch_has_changed(rx3), 1);
    ck_assert_tr_ok(tr_watch_borrow_and_update(rx3, &r));
    ck_assert(r.has_changed);
    ck_assert_str_eq(*(const char *const *)r.value, "one");
    ck_assert_tr_ok(tr_watch_ref_release(&r));
    ck_assert_int_eq(tr_watch_has_changed(rx3), 0);
    PENDING(tr_watch_changed(rx3, 0));

    ck_assert_tr_ok(tr_watch_send(tx, &TWO));
    ck_assert_int_eq(tr_watch_has_changed(rx4), 1);
    ck_assert_tr_ok(tr_watch_borrow_and_update(rx4, &r));
    ck_assert_str_eq(*(const char *const *)r.value, "two");
    ck_assert_tr_ok(tr_watch_ref_release(&r));
    ck_assert_tr_ok(tr_watch_mark_changed(rx4));
    ck_assert_int_eq(tr_watch_has_changed(rx4), 1);
    ck_assert_tr_ok(tr_watch_borrow_and_update(rx4, &r));
    ck_assert_str_eq(*(const char *const *)r.value, "two");
    ck_assert_tr_ok(tr_watch_ref_release(&r));

    ck_assert_str_eq(str_of(rx), "two");
    tr_watch_rx_drop(&rx);
    tr_watch_rx_drop(&rx2);
    tr_watch_rx_drop(&rx3);
    tr_watch_rx_drop(&rx4);
    tr_watch_tx_drop(&tx);
}
END_TEST

START_TEST(test_rx_mark_unchanged) {
    tr_watch_tx *tx;
    tr_watch_rx *rx, *rx2;
    ck_assert_tr_ok(tr_watch_new(&tx, &rx, sizeof(char *), &ONE));
    ck_assert_tr_ok(tr_watch_rx_clone(rx, &rx2));
    ck_assert_int_eq(tr_watch_has_changed(rx), 0);
    tr_watch_mark_changed(rx);
    ck_assert_int_eq(tr_watch_has_changed(rx), 1);
    tr_watch_mark_unchanged(rx);
    ck_assert_int_eq(tr_watch_has_changed(rx), 0);
    PENDING(tr_watch_changed(rx, 0));

    ck_assert_int_eq(tr_watch_has_changed(rx2), 0);
    ck_assert_tr_ok(tr_watch_send(tx, &TWO));
    ck_assert_int_eq(tr_watch_has_changed(rx2), 1);
    tr_watch_mark_unchanged(rx2);
    ck_assert_int_eq(tr_watch_has_changed(rx2), 0);
    tr_watch_ref r;
    ck_assert_tr_ok(tr_watch_borrow_and_update(rx2, &r));
    ck_assert(!r.has_changed);
    ck_assert_str_eq(*(const char *const *)r.value, "two");
    tr_watch_ref_release(&r);
    ck_assert_str_eq(str_of(rx), "two");
    tr_watch_rx_drop(&rx);
    tr_watch_rx_drop(&rx2);
    tr_watch_tx_drop(&tx);
}
END_TEST

START_TEST(test_multi_rx) {
    tr_runtime *rt = tr_test_runtime(workers_for(_i));
    tr_watch_tx *tx;
    tr_watch_rx *rx1, *rx2;
    ck_assert_tr_ok(tr_watch_new(&tx, &rx1, sizeof(char *), &ONE));
    ck_assert_tr_ok(tr_watch_rx_clone(rx1, &rx2));
    PENDING(tr_watch_changed(rx1, 0));
    PENDING(tr_watch_changed(rx2, 0));

    tr_task *t1 = spawn_on(rt, 0, changed_task, rx1);
    tr_task *t2 = spawn_on(rt, 1, changed_task, rx2);
    tr_sleep_ms(2);
    ck_assert_tr_ok(tr_watch_send(tx, &TWO));
    ck_assert_int_eq(join_rc(t1), 0);
    ck_assert_int_eq(join_rc(t2), 0);
    ck_assert_str_eq(str_of(rx1), "two");

    /* two sends while nobody looks: one change to see */
    ck_assert_tr_ok(tr_watch_send(tx, &THREE));
    ck_assert_tr_ok(tr_watch_send(tx, &FOUR));
    ck_assert_tr_ok(tr_watch_changed(rx1, 0));
    ck_assert_tr_ok(tr_watch_changed(rx2, 0));
    PENDING(tr_watch_changed(rx1, 0));
    PENDING(tr_watch_changed(rx2, 0));
    ck_assert_str_eq(str_of(rx1), "four");
    ck_assert_str_eq(str_of(rx2), "four");
    tr_watch_rx_drop(&rx1);
    tr_watch_rx_drop(&rx2);
    tr_watch_tx_drop(&tx);
    tr_runtime_free(&rt);
}
END_TEST

START_TEST(test_rx_observes_final_value) {
    tr_runtime *rt = tr_test_runtime(2);
    tr_watch_tx *tx;
    tr_watch_rx *rx;
    /* initial value */
    ck_assert_tr_ok(tr_watch_new(&tx, &rx, sizeof(char *), &ONE));
    tr_watch_tx_drop(&tx);
    ck_assert_tr_err(tr_watch_changed(rx, 0), TR_ECLOSED);
    ck_assert_str_eq(str_of(rx), "one");
    tr_watch_rx_drop(&rx);
    /* sending a value */
    ck_assert_tr_ok(tr_watch_new(&tx, &rx, sizeof(char *), &ONE));
    ck_assert_tr_ok(tr_watch_send(tx, &TWO));
    ck_assert_tr_ok(tr_watch_changed(rx, 0));
    ck_assert_str_eq(str_of(rx), "two");
    tr_task *t = spawn_on(rt, 1, changed_task, rx);
    tr_sleep_ms(2);
    ck_assert_tr_ok(tr_watch_send(tx, &THREE));
    tr_watch_tx_drop(&tx);
    ck_assert_int_eq(join_rc(t), 0);
    ck_assert_str_eq(str_of(rx), "three");
    ck_assert_tr_err(tr_watch_changed(rx, 0), TR_ECLOSED);
    ck_assert_str_eq(str_of(rx), "three");
    tr_watch_rx_drop(&rx);
    tr_runtime_free(&rt);
}
END_TEST

static void *closed_wait_task(void *arg) {
    return RC(tr_watch_closed(arg, TR_TEST_DEADLINE()));
}

START_TEST(test_poll_close) {
    tr_runtime *rt = tr_test_runtime(2);
    tr_watch_tx *tx;
    tr_watch_rx *rx;
    ck_assert_tr_ok(tr_watch_new(&tx, &rx, sizeof(char *), &ONE));
    PENDING(tr_watch_closed(tx, 0));
    tr_task *t = spawn_on(rt, 1, closed_wait_task, tx);
    tr_sleep_ms(2);
    tr_watch_rx_drop(&rx);
    ck_assert_int_eq(join_rc(t), 0);
    ck_assert_tr_err(tr_watch_send(tx, &TWO), TR_ECLOSED);
    tr_watch_tx_drop(&tx);
    tr_runtime_free(&rt);
}
END_TEST

START_TEST(test_borrow_and_update) {
    tr_watch_tx *tx;
    tr_watch_rx *rx;
    tr_watch_ref r;
    ck_assert_tr_ok(tr_watch_new(&tx, &rx, sizeof(char *), &ONE));
    ck_assert_int_eq(tr_watch_has_changed(rx), 0);
    ck_assert_tr_ok(tr_watch_send(tx, &TWO));
    ck_assert_int_eq(tr_watch_has_changed(rx), 1);
    ck_assert_tr_ok(tr_watch_changed(rx, 0));
    PENDING(tr_watch_changed(rx, 0));
    ck_assert_int_eq(tr_watch_has_changed(rx), 0);

    ck_assert_tr_ok(tr_watch_send(tx, &THREE));
    ck_assert_int_eq(tr_watch_has_changed(rx), 1);
    ck_assert_tr_ok(tr_watch_borrow_and_update(rx, &r));
    ck_assert_str_eq(*(const char *const *)r.value, "three");
    tr_watch_ref_release(&r);
    PENDING(tr_watch_changed(rx, 0));
    ck_assert_int_eq(tr_watch_has_changed(rx), 0);

    tr_watch_tx_drop(&tx);
    ck_assert_tr_ok(tr_watch_borrow_and_update(rx, &r));
    ck_assert_str_eq(*(const char *const *)r.value, "three");
    tr_watch_ref_release(&r);
    ck_assert_tr_err(tr_watch_changed(rx, 0), TR_ECLOSED);
    ck_assert_tr_err(tr_watch_has_changed(rx), TR_ECLOSED);
    tr_watch_rx_drop(&rx);
}
END_TEST

START_TEST(test_reopened_after_subscribe) {
    tr_watch_tx *tx;
    tr_watch_rx *rx;
    ck_assert_tr_ok(tr_watch_new(&tx, &rx, sizeof(char *), &ONE));
    ck_assert(!tr_watch_tx_is_closed(tx));
    tr_watch_rx_drop(&rx);
    ck_assert(tr_watch_tx_is_closed(tx));
    ck_assert_tr_ok(tr_watch_subscribe(tx, &rx));
    ck_assert(!tr_watch_tx_is_closed(tx));
    ck_assert_int_eq(tr_watch_has_changed(rx), 0); /* subscribe: seen */
    tr_watch_rx_drop(&rx);
    ck_assert(tr_watch_tx_is_closed(tx));
    tr_watch_tx_drop(&tx);
}
END_TEST

static void set_str(void *value, void *ctx) { *(const char **)value = ctx; }

START_TEST(test_send_modify) {
    /* send_modify_panic without the panic: modify in place, always notify */
    tr_watch_tx *tx;
    tr_watch_rx *rx, *rx2;
    tr_watch_ref r;
    ck_assert_tr_ok(tr_watch_new(&tx, &rx, sizeof(char *), &ONE));
    ck_assert_tr_ok(tr_watch_send_modify(tx, set_str, (void *)TWO));
    ck_assert_tr_ok(tr_watch_borrow_and_update(rx, &r));
    ck_assert_str_eq(*(const char *const *)r.value, "two");
    tr_watch_ref_release(&r);
    ck_assert_tr_ok(tr_watch_rx_clone(rx, &rx2));
    PENDING(tr_watch_changed(rx2, 0));
    ck_assert_tr_ok(tr_watch_send_modify(tx, set_str, (void *)THREE));
    ck_assert_tr_ok(tr_watch_changed(rx2, 0));
    ck_assert_str_eq(str_of(rx), "three");
    /* works with no receivers at all */
    tr_watch_rx_drop(&rx);
    tr_watch_rx_drop(&rx2);
    ck_assert_tr_ok(tr_watch_send_modify(tx, set_str, (void *)FOUR));
    ck_assert_tr_ok(tr_watch_tx_borrow(tx, &r));
    ck_assert(!r.has_changed);
    ck_assert_str_eq(*(const char *const *)r.value, "four");
    tr_watch_ref_release(&r);
    tr_watch_tx_drop(&tx);
}
END_TEST

static atomic_int first_seen;

static void *two_changes(void *arg) {
    tr_watch_rx *rx = arg;
    long v[2];
    for (int i = 0; i < 2; i++) {
        if (tr_watch_changed(rx, TR_TEST_DEADLINE()) != 0)
            return RC(-1);
        tr_watch_ref r;
        ck_assert_tr_ok(tr_watch_borrow_and_update(rx, &r));
        v[i] = *(const long *)r.value;
        tr_watch_ref_release(&r);
        atomic_store(&first_seen, 1);
    }
    return RC(v[0] * 10 + v[1]);
}

START_TEST(test_multiple_sender) {
    tr_runtime *rt = tr_test_runtime(1);
    tr_watch_tx *tx1, *tx2;
    tr_watch_rx *rx;
    long zero = 0, one = 1, two = 2;
    ck_assert_tr_ok(tr_watch_new(&tx1, &rx, sizeof(long), &zero));
    ck_assert_tr_ok(tr_watch_tx_clone(tx1, &tx2));
    ck_assert_int_eq(tr_watch_sender_count(tx1), 2);
    /* sync points: the task sees 1 before 2 is sent */
    atomic_store(&first_seen, 0);
    ck_assert_tr_ok(tr_watch_send(tx1, &one));
    tr_task *t = spawn_on(rt, 0, two_changes, rx);
    await_count(&first_seen, 1);
    ck_assert_tr_ok(tr_watch_send(tx2, &two));
    ck_assert_int_eq(join_rc(t), 12);
    tr_watch_tx_drop(&tx1);
    ck_assert_int_eq(tr_watch_sender_count(tx2), 1);
    tr_watch_tx_drop(&tx2);
    tr_watch_rx_drop(&rx);
    tr_runtime_free(&rt);
}
END_TEST

START_TEST(test_notified_when_last_sender_dropped) {
    tr_runtime *rt = tr_test_runtime(2);
    tr_watch_tx *tx1, *tx2;
    tr_watch_rx *rx;
    long zero = 0;
    ck_assert_tr_ok(tr_watch_new(&tx1, &rx, sizeof(long), &zero));
    ck_assert_tr_ok(tr_watch_tx_clone(tx1, &tx2));
    tr_task *t = spawn_on(rt, 1, changed_task, rx);
    tr_sleep_ms(2);
    tr_watch_tx_drop(&tx1);
    ck_assert_tr_err(tr_task_join_until(t, NULL, tr_after_ms(20)), TR_ETIMEDOUT); /* not woken */
    tr_watch_tx_drop(&tx2);
    ck_assert_int_eq(join_rc(t), TR_ECLOSED);
    tr_watch_rx_drop(&rx);
    tr_runtime_free(&rt);
}
END_TEST

/* Cooperative: a task that never waits (every wait ready) still lets
 * another task of its worker run, through the budget. */
static atomic_int other_ran;

static void *set_flag(void *arg) {
    (void)arg;
    atomic_store(&other_ran, 1);
    return NULL;
}

static bool is_one(const void *value, void *ctx) {
    (void)ctx;
    return *(const long *)value == 1;
}

static void *coop_body(void *arg) {
    int kind = (int)(intptr_t)arg;
    long zero = 0, one = 1;
    tr_watch_tx *tx;
    tr_watch_rx *rx;
    ck_assert_tr_ok(tr_watch_new(&tx, &rx, sizeof(long), &zero));
    if (kind == 0 || kind == 2)
        tr_watch_tx_drop(&tx);
    if (kind == 4)
        tr_watch_rx_drop(&rx);
    atomic_store(&other_ran, 0);
    tr_task *t;
    ck_assert_tr_ok(tr_spawn(&t, set_flag, NULL));
    int n = 0;
    while (!atomic_load(&other_ran)) {
        ck_assert_int_lt(++n, 10000);
        switch (kind) {
        case 0: ck_assert_tr_err(tr_watch_changed(rx, TR_TEST_DEADLINE()), TR_ECLOSED); break;
        case 1:
            ck_assert_tr_ok(tr_watch_send(tx, &one));
            ck_assert_tr_ok(tr_watch_changed(rx, TR_TEST_DEADLINE()));
            break;
        case 2: ck_assert_tr_err(tr_watch_wait_for(rx, is_one, NULL, NULL, TR_TEST_DEADLINE()), TR_ECLOSED); break;
        case 3:
            ck_assert_tr_ok(tr_watch_send(tx, &one));
            ck_assert_tr_ok(tr_watch_wait_for(rx, is_one, NULL, NULL, TR_TEST_DEADLINE()));
            break;
        default: ck_assert_tr_ok(tr_watch_closed(tx, TR_TEST_DEADLINE())); break;
        }
    }
    ck_assert_tr_ok(tr_task_join(t, NULL));
    tr_watch_tx_drop(&tx);
    tr_watch_rx_drop(&rx);
    return NULL;
}

START_TEST(test_cooperative) {
    tr_runtime *rt = tr_test_runtime(1);
    ck_assert_tr_ok(tr_runtime_block_on(rt, coop_body, RC(_i), NULL));
    tr_runtime_free(&rt);
}
END_TEST

START_TEST(test_closed_with_unseen_value) {
    tr_watch_tx *tx;
    tr_watch_rx *rx;
    /* changed_succeeds_on_closed_channel_with_unseen_value */
    ck_assert_tr_ok(tr_watch_new(&tx, &rx, sizeof(char *), &ONE));
    ck_assert_tr_ok(tr_watch_send(tx, &TWO));
    tr_watch_tx_drop(&tx);
    ck_assert_tr_err(tr_watch_has_changed(rx), TR_ECLOSED); /* even unseen */
    ck_assert_tr_ok(tr_watch_changed(rx, TR_TEST_DEADLINE()));
    ck_assert_tr_err(tr_watch_changed(rx, TR_TEST_DEADLINE()), TR_ECLOSED);
    tr_watch_rx_drop(&rx);
    /* changed_errors_on_closed_channel_with_seen_value */
    ck_assert_tr_ok(tr_watch_new(&tx, &rx, sizeof(char *), &ONE));
    tr_watch_tx_drop(&tx);
    ck_assert_tr_err(tr_watch_has_changed(rx), TR_ECLOSED);
    ck_assert_tr_err(tr_watch_changed(rx, TR_TEST_DEADLINE()), TR_ECLOSED);
    tr_watch_rx_drop(&rx);
}
END_TEST

static bool always(const void *value, void *ctx) {
    (void)value;
    (void)ctx;
    return true;
}

START_TEST(test_wait_for_closed_true_predicate) {
    tr_watch_tx *tx;
    tr_watch_rx *rx;
    const char *out = NULL;
    ck_assert_tr_ok(tr_watch_new(&tx, &rx, sizeof(char *), &ONE));
    ck_assert_tr_ok(tr_watch_send(tx, &TWO));
    tr_watch_tx_drop(&tx);
    ck_assert_tr_ok(tr_watch_wait_for(rx, always, NULL, &out, TR_TEST_DEADLINE()));
    ck_assert_str_eq(out, "two");
    tr_watch_rx_drop(&rx);
}
END_TEST

/* ---- send rules, wait_for, destructor ------------------------------------------ */

static bool bump_if_even(void *value, void *ctx) {
    (void)ctx;
    long *v = value;
    bool even = *v % 2 == 0;
    *v += 1; /* changed either way: odd values change silently */
    return even;
}

START_TEST(test_send_rules) {
    tr_watch_tx *tx;
    tr_watch_rx *rx;
    long v = 10, old = 0;
    ck_assert_tr_ok(tr_watch_new(&tx, &rx, sizeof(long), &v));
    ck_assert_int_eq(tr_watch_receiver_count(tx), 1);
    tr_watch_rx_drop(&rx);
    ck_assert_int_eq(tr_watch_receiver_count(tx), 0);
    v = 11;
    ck_assert_tr_err(tr_watch_send(tx, &v), TR_ECLOSED); /* not stored */
    ck_assert_tr_ok(tr_watch_subscribe(tx, &rx));
    long got;
    ck_assert_tr_ok(tr_watch_get(rx, &got));
    ck_assert_int_eq(got, 10);
    tr_watch_rx_drop(&rx);
    v = 12;
    ck_assert_tr_ok(tr_watch_send_replace(tx, &v, &old)); /* stored anyway */
    ck_assert_int_eq(old, 10);
    ck_assert_tr_ok(tr_watch_subscribe(tx, &rx));
    ck_assert_int_eq(tr_watch_has_changed(rx), 0);
    ck_assert_int_eq(tr_watch_send_if_modified(tx, bump_if_even, NULL), 1); /* 12 -> 13 */
    ck_assert_int_eq(tr_watch_has_changed(rx), 1);
    ck_assert_tr_ok(tr_watch_changed(rx, 0));
    ck_assert_int_eq(tr_watch_send_if_modified(tx, bump_if_even, NULL), 0); /* 13 -> 14, silent */
    ck_assert_int_eq(tr_watch_has_changed(rx), 0);
    PENDING(tr_watch_changed(rx, 0));
    ck_assert_tr_ok(tr_watch_get(rx, &got));
    ck_assert_int_eq(got, 14);
    tr_watch_tx_drop(&tx);
    tr_watch_rx_drop(&rx);
}
END_TEST

static bool at_least(const void *value, void *ctx) {
    return *(const long *)value >= (long)(intptr_t)ctx;
}

static void *wait_for_task(void *arg) {
    long out = 0;
    int rc = tr_watch_wait_for(arg, at_least, RC(5), &out, TR_TEST_DEADLINE());
    return RC(rc ? rc : out);
}

START_TEST(test_wait_for) {
    tr_runtime *rt = tr_test_runtime(2);
    tr_watch_tx *tx;
    tr_watch_rx *rx;
    long v = 0, out = 0;
    ck_assert_tr_ok(tr_watch_new(&tx, &rx, sizeof(long), &v));
    /* the current value is tested first, even if seen */
    ck_assert_tr_ok(tr_watch_wait_for(rx, at_least, RC(0), &out, 0));
    PENDING(tr_watch_wait_for(rx, at_least, RC(5), &out, tr_after_ms(1)));
    tr_task *t = spawn_on(rt, 1, wait_for_task, rx);
    for (v = 1; v <= 7; v++) {
        ck_assert_tr_ok(tr_watch_send(tx, &v));
        tr_sleep_ms(1);
    }
    long got = (long)(intptr_t)join_rc(t);
    ck_assert_int_ge(got, 5);
    /* closed with pred false on the last value */
    tr_watch_tx_drop(&tx);
    ck_assert_tr_err(tr_watch_wait_for(rx, at_least, RC(100), &out, TR_TEST_DEADLINE()), TR_ECLOSED);
    tr_watch_rx_drop(&rx);
    tr_runtime_free(&rt);
}
END_TEST

/* Values that own memory: every one created is destroyed once or handed
 * back (send_replace), never both. */
static atomic_int live_values;

static void free_value(void *value, void *ctx) {
    (void)ctx;
    free(*(char **)value);
    atomic_fetch_sub(&live_values, 1);
}

static char *new_value(int i) {
    char *s = malloc(16);
    snprintf(s, 16, "v%d", i);
    atomic_fetch_add(&live_values, 1);
    return s;
}

START_TEST(test_destructor_exactly_once) {
    atomic_store(&live_values, 0);
    tr_chan_opts o = {.drop = free_value, .drop_ctx = NULL};
    tr_watch_tx *tx, *tx2;
    tr_watch_rx *rx, *rx2;
    char *v = new_value(0);
    ck_assert_tr_ok(tr_watch_new_ex(&tx, &rx, sizeof v, &v, &o));
    for (int i = 1; i <= 10; i++) {
        v = new_value(i);
        ck_assert_tr_ok(tr_watch_send(tx, &v)); /* the old one is destroyed */
    }
    ck_assert_int_eq(atomic_load(&live_values), 1);
    tr_watch_ref r;
    ck_assert_tr_ok(tr_watch_borrow(rx, &r));
    ck_assert_str_eq(*(char *const *)r.value, "v10");
    tr_watch_ref_release(&r);
    char *old = NULL;
    v = new_value(11);
    ck_assert_tr_ok(tr_watch_send_replace(tx, &v, &old));
    ck_assert_str_eq(old, "v10");
    free_value(&old, NULL); /* ours now */
    ck_assert_int_eq(atomic_load(&live_values), 1);
    tr_watch_rx_drop(&rx);
    v = new_value(12);
    ck_assert_tr_err(tr_watch_send(tx, &v), TR_ECLOSED); /* stays ours */
    free_value(&v, NULL);
    ck_assert_tr_ok(tr_watch_subscribe(tx, &rx));
    ck_assert_tr_ok(tr_watch_rx_clone(rx, &rx2));
    ck_assert_tr_ok(tr_watch_tx_clone(tx, &tx2));
    tr_watch_tx_drop(&tx);
    tr_watch_tx_drop(&tx2);
    tr_watch_rx_drop(&rx);
    ck_assert_int_eq(atomic_load(&live_values), 1);
    tr_watch_rx_drop(&rx2); /* the last handle: the final value goes */
    ck_assert_int_eq(atomic_load(&live_values), 0);
}
END_TEST

START_TEST(test_einval) {
    tr_watch_tx *tx = NULL;
    tr_watch_rx *rx = NULL;
    long v = 0;
    tr_watch_ref r;
    memset(&r, 0, sizeof r);
    ck_assert_tr_err(tr_watch_new(NULL, &rx, 8, &v), TR_EINVAL);
    ck_assert_tr_err(tr_watch_new(&tx, NULL, 8, &v), TR_EINVAL);
    ck_assert_tr_err(tr_watch_new(&tx, &rx, 0, &v), TR_EINVAL);
    ck_assert_tr_err(tr_watch_send(NULL, &v), TR_EINVAL);
    ck_assert_tr_err(tr_watch_send_replace(NULL, &v, NULL), TR_EINVAL);
    ck_assert_tr_err(tr_watch_send_modify(NULL, set_str, NULL), TR_EINVAL);
    ck_assert_tr_err(tr_watch_send_if_modified(NULL, bump_if_even, NULL), TR_EINVAL);
    ck_assert_tr_err(tr_watch_changed(NULL, 0), TR_EINVAL);
    ck_assert_tr_err(tr_watch_closed(NULL, 0), TR_EINVAL);
    ck_assert_tr_err(tr_watch_has_changed(NULL), TR_EINVAL);
    ck_assert_tr_err(tr_watch_borrow(NULL, &r), TR_EINVAL);
    ck_assert_tr_err(tr_watch_ref_release(&r), TR_EINVAL);
    ck_assert_tr_err(tr_watch_ref_release(NULL), TR_EINVAL);
    ck_assert_tr_err(tr_watch_get(NULL, &v), TR_EINVAL);
    ck_assert_tr_err(tr_watch_wait_for(NULL, always, NULL, NULL, 0), TR_EINVAL);
    ck_assert_tr_err(tr_watch_tx_drop(&tx), TR_EINVAL);
    ck_assert_tr_err(tr_watch_rx_drop(NULL), TR_EINVAL);
    ck_assert_int_eq(tr_watch_receiver_count(NULL), 0);
    ck_assert(tr_watch_tx_is_closed(NULL));

    ck_assert_tr_ok(tr_watch_new(&tx, &rx, sizeof v, NULL)); /* zero initial */
    ck_assert_tr_ok(tr_watch_get(rx, &v));
    ck_assert_int_eq(v, 0);
    ck_assert_tr_err(tr_watch_send(tx, NULL), TR_EINVAL);
    ck_assert_tr_err(tr_watch_send_modify(tx, NULL, NULL), TR_EINVAL);
    ck_assert_tr_err(tr_watch_wait_for(rx, NULL, NULL, NULL, 0), TR_EINVAL);
    ck_assert_tr_err(tr_watch_get(rx, NULL), TR_EINVAL);
    ck_assert_tr_err(tr_watch_tx_clone(tx, NULL), TR_EINVAL);
    ck_assert_tr_err(tr_watch_subscribe(NULL, &rx), TR_EINVAL);
    ck_assert_tr_ok(tr_watch_borrow(rx, &r));
    ck_assert_tr_ok(tr_watch_ref_release(&r));
    ck_assert_tr_err(tr_watch_ref_release(&r), TR_EINVAL); /* twice */
    tr_clause c;
    ck_assert_tr_err(tr_watch_changed_clause(&c, NULL), TR_EINVAL);
    ck_assert_ptr_null(c.ops);
    ck_assert_tr_err(tr_watch_closed_clause(NULL, tx), TR_EINVAL);
    ck_assert_tr_ok(tr_watch_tx_drop(&tx));
    ck_assert_ptr_null(tx);
    ck_assert_tr_err(tr_watch_tx_drop(&tx), TR_EINVAL); /* double drop */
    ck_assert_tr_ok(tr_watch_rx_drop(&rx));
    ck_assert_tr_err(tr_watch_rx_drop(&rx), TR_EINVAL);
}
END_TEST

/* ---- cancellation, select, the shutdown pattern ----------------------------------- */

static void *changed_forever(void *arg) {
    return RC(tr_watch_changed(arg, TR_NEVER));
}

START_TEST(test_cancel_parked_changed) {
    tr_runtime *rt = tr_test_runtime(2);
    tr_watch_tx *tx;
    tr_watch_rx *rx;
    long v = 0;
    ck_assert_tr_ok(tr_watch_new(&tx, &rx, sizeof v, &v));
    tr_task *t = spawn_on(rt, 1, changed_forever, rx);
    tr_sleep_ms(2);
    ck_assert_tr_ok(tr_task_cancel(t));
    ck_assert_int_eq(join_rc(t), TR_ECANCELED);
    v = 1;
    ck_assert_tr_ok(tr_watch_send(tx, &v));
    ck_assert_int_eq(tr_watch_has_changed(rx), 1); /* nothing was marked seen */
    tr_watch_tx_drop(&tx);
    tr_watch_rx_drop(&rx);
    tr_runtime_free(&rt);
}
END_TEST

/* Workers select on shutdown.changed() beside their work (a second watch
 * standing in for a mailbox), the seeds' graceful shutdown. */
typedef struct worker_arg {
    tr_watch_rx *shutdown, *work;
    atomic_long *seen_work;
} worker_arg;

static void *shutdown_worker(void *arg) {
    worker_arg *a = arg;
    for (;;) {
        tr_clause c[2];
        ck_assert_tr_ok(tr_watch_changed_clause(&c[0], a->shutdown));
        ck_assert_tr_ok(tr_watch_changed_clause(&c[1], a->work));
        int i = tr_select(c, 2, TR_TEST_DEADLINE(), 0);
        if (i == 0) {
            bool stop = false;
            tr_watch_get(a->shutdown, &stop);
            if (stop || c[0].result == TR_ECLOSED)
                break;
        } else if (i == 1) {
            ck_assert_int_eq(c[1].result, 0);
            atomic_fetch_add(a->seen_work, 1);
        } else {
            return RC(i);
        }
    }
    tr_watch_rx_drop(&a->shutdown);
    tr_watch_rx_drop(&a->work);
    return RC(0);
}

START_TEST(test_select_shutdown) {
    tr_runtime *rt = tr_test_runtime(4);
    tr_watch_tx *stx, *wtx;
    tr_watch_rx *srx, *wrx;
    bool no = false, yes = true;
    long n = 0;
    atomic_long seen_work = 0;
    ck_assert_tr_ok(tr_watch_new(&stx, &srx, sizeof(bool), &no));
    ck_assert_tr_ok(tr_watch_new(&wtx, &wrx, sizeof(long), &n));
    enum { W = 6 };
    worker_arg args[W];
    tr_task *t[W];
    for (int i = 0; i < W; i++) {
        ck_assert_tr_ok(tr_watch_rx_clone(srx, &args[i].shutdown));
        ck_assert_tr_ok(tr_watch_rx_clone(wrx, &args[i].work));
        args[i].seen_work = &seen_work;
        t[i] = spawn_on(rt, i, shutdown_worker, &args[i]);
    }
    for (n = 1; n <= 50; n++) {
        ck_assert_tr_ok(tr_watch_send(wtx, &n));
        if (n % 10 == 0)
            tr_sleep_ms(1);
    }
    ck_assert_tr_ok(tr_watch_send(stx, &yes));
    for (int i = 0; i < W; i++)
        ck_assert_int_eq(join_rc(t[i]), 0);
    ck_assert_int_gt(atomic_load(&seen_work), 0);
    ck_assert_int_eq(tr_watch_receiver_count(stx), 1);
    /* the losing clauses left nothing queued: closed() only sees srx */
    tr_watch_rx_drop(&srx);
    ck_assert_tr_ok(tr_watch_closed(stx, 0));
    tr_watch_tx_drop(&stx);
    tr_watch_tx_drop(&wtx);
    tr_watch_rx_drop(&wrx);
    tr_runtime_free(&rt);
}
END_TEST

static void *drop_rx_later(void *arg) {
    tr_watch_rx *rx = arg;
    tr_sleep_ms(3);
    return RC(tr_watch_rx_drop(&rx));
}

START_TEST(test_select_closed_and_ready) {
    tr_runtime *rt = tr_test_runtime(2);
    tr_watch_tx *tx;
    tr_watch_rx *rx, *rx2;
    long v = 0;
    ck_assert_tr_ok(tr_watch_new(&tx, &rx, sizeof v, &v));
    ck_assert_tr_ok(tr_watch_rx_clone(rx, &rx2));
    tr_clause c[2];
    ck_assert_tr_ok(tr_watch_closed_clause(&c[0], tx));
    ck_assert_tr_ok(tr_watch_changed_clause(&c[1], rx2));
    ck_assert_int_eq(tr_select(c, 2, tr_after_ms(1), 0), TR_ETIMEDOUT);
    /* a ready changed clause completes at arm and marks the value seen */
    v = 1;
    ck_assert_tr_ok(tr_watch_send(tx, &v));
    ck_assert_int_eq(tr_select(c, 2, TR_TEST_DEADLINE(), 0), 1);
    ck_assert_int_eq(c[1].result, 0);
    ck_assert_int_eq(tr_watch_has_changed(rx2), 0);
    tr_watch_rx_drop(&rx2);
    tr_task *d = spawn_on(rt, 1, drop_rx_later, rx);
    ck_assert_int_eq(tr_select(c, 1, TR_TEST_DEADLINE(), 0), 0);
    ck_assert_int_eq(c[0].result, 0);
    ck_assert_int_eq(join_rc(d), 0);
    tr_watch_tx_drop(&tx);
    tr_runtime_free(&rt);
}
END_TEST

/* ---- torn reads and many readers -------------------------------------------------- */

/* A value whose words or bytes all carry the same counter: a torn read
 * shows two.  Checked without ck_assert in the loop (each one writes to
 * Check's pipe); a reader returns what went wrong instead. */
typedef struct big { uint64_t n; unsigned char b[192]; } big; /* reader-count mode */
typedef struct small { uint64_t w[8]; } small;                /* seqlock mode, 64 bytes */

#define UPDATES 20000
enum { TORN = 1001, BACKWARDS = 1002 };

typedef struct reader_arg {
    tr_watch_rx *rx;
    int kind; /* 0: u64, 1: small, 2: big */
} reader_arg;

static int check_value(int kind, const void *value, uint64_t *v) {
    if (kind == 0) {
        *v = *(const uint64_t *)value;
    } else if (kind == 1) {
        const small *s = value;
        *v = s->w[0];
        for (int i = 1; i < 8; i++)
            if (s->w[i] != *v)
                return TORN;
    } else {
        const big *b = value;
        *v = b->n;
        for (size_t i = 0; i < sizeof b->b; i++)
            if (b->b[i] != (unsigned char)(*v & 255))
                return TORN;
    }
    return 0;
}

static void *reader(void *arg) {
    reader_arg *a = arg;
    uint64_t last = 0;
    while (last != UPDATES) {
        int rc = tr_watch_changed(a->rx, TR_TEST_DEADLINE());
        if (rc)
            return RC(rc);
        tr_watch_ref r;
        tr_watch_borrow_and_update(a->rx, &r);
        uint64_t v = 0;
        rc = check_value(a->kind, r.value, &v);
        tr_watch_ref_release(&r);
        if (rc)
            return RC(rc);
        if (v < last)
            return RC(BACKWARDS);
        last = v;
    }
    tr_watch_rx_drop(&a->rx);
    return RC(0);
}

static void write_kind(tr_watch_tx *tx, int kind, uint64_t v) {
    if (kind == 0) {
        tr_watch_send(tx, &v);
    } else if (kind == 1) {
        small s;
        for (int i = 0; i < 8; i++)
            s.w[i] = v;
        tr_watch_send(tx, &s);
    } else {
        big b;
        b.n = v;
        memset(b.b, (int)(v & 255), sizeof b.b);
        tr_watch_send(tx, &b);
    }
}

static void *writer(void *arg) {
    reader_arg *a = arg; /* the kind; the sender is g_tx */
    for (uint64_t v = 1; v <= UPDATES; v++) {
        write_kind(g_tx, a->kind, v);
        if (v % 1024 == 0 && tr_task_self())
            tr_yield();
    }
    return RC(0);
}

static void *plain_reader(void *arg) { return reader(arg); }

START_TEST(test_readers_everywhere) {
    int kind = _i;
    tr_runtime *rt = tr_test_runtime(4);
    tr_watch_rx *rx;
    small zero;
    memset(&zero, 0, sizeof zero);
    size_t size = kind == 0 ? sizeof(uint64_t) : kind == 1 ? sizeof(small) : sizeof(big);
    big bzero;
    memset(&bzero, 0, sizeof bzero);
    ck_assert_tr_ok(tr_watch_new(&g_tx, &rx, size, kind == 2 ? (void *)&bzero : (void *)&zero));
    enum { TASKS = 4, THREADS = 2 };
    reader_arg args[TASKS + THREADS];
    tr_task *t[TASKS];
    pthread_t th[THREADS];
    for (int i = 0; i < TASKS + THREADS; i++) {
        ck_assert_tr_ok(tr_watch_rx_clone(rx, &args[i].rx));
        args[i].kind = kind;
    }
    for (int i = 0; i < TASKS; i++)
        t[i] = spawn_on(rt, i, reader, &args[i]);
    for (int i = 0; i < THREADS; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, plain_reader, &args[TASKS + i]), 0);
    reader_arg wa = {NULL, kind};
    tr_task *w = spawn_on(rt, 0, writer, &wa);
    ck_assert_int_eq(join_rc(w), 0);
    for (int i = 0; i < TASKS; i++)
        ck_assert_int_eq(join_rc(t[i]), 0);
    for (int i = 0; i < THREADS; i++) {
        void *r;
        pthread_join(th[i], &r);
        ck_assert_int_eq((int)(intptr_t)r, 0);
    }
    tr_watch_tx_drop(&g_tx);
    tr_watch_rx_drop(&rx);
    tr_runtime_free(&rt);
}
END_TEST

/* Writers on a plain thread and a task at once, through cloned senders. */
static atomic_long sum_written;

static void add_one(void *value, void *ctx) {
    (void)ctx;
    *(long *)value += 1;
}

static void *modifier(void *arg) {
    tr_watch_tx *tx = arg;
    for (int i = 0; i < 5000; i++)
        ck_assert_tr_ok(tr_watch_send_modify(tx, add_one, NULL));
    atomic_fetch_add(&sum_written, 5000);
    ck_assert_tr_ok(tr_watch_tx_drop(&tx));
    return NULL;
}

START_TEST(test_concurrent_modify) {
    tr_runtime *rt = tr_test_runtime(4);
    tr_watch_tx *tx, *c[4];
    tr_watch_rx *rx;
    long v = 0;
    atomic_store(&sum_written, 0);
    ck_assert_tr_ok(tr_watch_new(&tx, &rx, sizeof v, &v));
    for (int i = 0; i < 4; i++)
        ck_assert_tr_ok(tr_watch_tx_clone(tx, &c[i]));
    tr_task *t0 = spawn_on(rt, 1, modifier, c[0]);
    tr_task *t1 = spawn_on(rt, 2, modifier, c[1]);
    pthread_t th[2];
    pthread_create(&th[0], NULL, modifier, c[2]);
    pthread_create(&th[1], NULL, modifier, c[3]);
    join_rc(t0);
    join_rc(t1);
    pthread_join(th[0], NULL);
    pthread_join(th[1], NULL);
    ck_assert_int_eq(tr_watch_sender_count(tx), 1);
    ck_assert_tr_ok(tr_watch_get(rx, &v));
    ck_assert_int_eq(v, atomic_load(&sum_written)); /* no update lost */
    tr_watch_tx_drop(&tx);
    ck_assert_tr_ok(tr_watch_changed(rx, 0)); /* unseen, even though closed */
    ck_assert_tr_err(tr_watch_changed(rx, 0), TR_ECLOSED);
    tr_watch_rx_drop(&rx);
    tr_runtime_free(&rt);
}
END_TEST

/* Readers that time out and get cancelled while a plain thread writes: a
 * wait that gives up leaves no entry behind (ASan would see a writer
 * touch a dead frame), and the readers that stay see the last value. */
#define CANCEL_UPDATES 5000

static void *flaky_reader(void *arg) {
    tr_watch_rx *rx = arg;
    unsigned seed = (unsigned)(uintptr_t)arg;
    uint64_t last = 0;
    int rc = 0;
    while (last != CANCEL_UPDATES) {
        rc = tr_watch_changed(rx, tr_after_us(rand_r(&seed) % 300));
        if (rc == TR_ETIMEDOUT)
            continue;
        if (rc)
            break;
        uint64_t v;
        tr_watch_get(rx, &v);
        if (v < last) {
            rc = BACKWARDS;
            break;
        }
        last = v;
    }
    tr_watch_rx_drop(&rx);
    return RC(rc);
}

static void *plain_writer(void *arg) {
    tr_watch_tx *tx = arg;
    for (uint64_t v = 1; v <= CANCEL_UPDATES; v++) {
        tr_watch_send(tx, &v);
        if (v % 64 == 0)
            sched_yield();
    }
    return NULL;
}

START_TEST(test_random_cancel) {
    tr_runtime *rt = tr_test_runtime(4);
    tr_watch_tx *tx;
    tr_watch_rx *rx;
    uint64_t zero = 0;
    ck_assert_tr_ok(tr_watch_new(&tx, &rx, sizeof zero, &zero));
    enum { R = 12 };
    tr_task *t[R];
    for (int i = 0; i < R; i++) {
        tr_watch_rx *c;
        ck_assert_tr_ok(tr_watch_rx_clone(rx, &c));
        t[i] = spawn_on(rt, i, flaky_reader, c);
    }
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, plain_writer, tx), 0);
    unsigned seed = 7;
    for (int i = 0; i < R; i += 3) {
        tr_sleep_ms(rand_r(&seed) % 3);
        tr_task_cancel(t[i]);
    }
    pthread_join(th, NULL);
    for (int i = 0; i < R; i++) {
        int rc = join_rc(t[i]);
        if (i % 3 == 0)
            ck_assert_msg(rc == 0 || rc == TR_ECANCELED, "reader %d: %d", i, rc);
        else
            ck_assert_msg(rc == 0, "reader %d: %d", i, rc);
    }
    ck_assert_int_eq(tr_watch_receiver_count(tx), 1);
    uint64_t more = CANCEL_UPDATES + 1;
    ck_assert_tr_ok(tr_watch_send(tx, &more)); /* must find no stale entry */
    ck_assert_tr_ok(tr_watch_changed(rx, 0));
    tr_watch_tx_drop(&tx);
    tr_watch_rx_drop(&rx);
    tr_runtime_free(&rt);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("watch");
    TCase *tc = tr_tcase("tokio");
    tcase_add_loop_test(tc, test_single_rx_recv, 0, 2);
    tcase_add_test(tc, test_rx_version_underflow);
    tcase_add_test(tc, test_rx_mark_changed);
    tcase_add_test(tc, test_rx_mark_unchanged);
    tcase_add_loop_test(tc, test_multi_rx, 0, 2);
    tcase_add_test(tc, test_rx_observes_final_value);
    tcase_add_test(tc, test_poll_close);
    tcase_add_test(tc, test_borrow_and_update);
    tcase_add_test(tc, test_reopened_after_subscribe);
    tcase_add_test(tc, test_send_modify);
    tcase_add_test(tc, test_multiple_sender);
    tcase_add_test(tc, test_notified_when_last_sender_dropped);
    tcase_add_loop_test(tc, test_cooperative, 0, 5);
    tcase_add_test(tc, test_closed_with_unseen_value);
    tcase_add_test(tc, test_wait_for_closed_true_predicate);
    suite_add_tcase(s, tc);
    tc = tr_tcase("troupe");
    tcase_add_test(tc, test_send_rules);
    tcase_add_test(tc, test_wait_for);
    tcase_add_test(tc, test_destructor_exactly_once);
    tcase_add_test(tc, test_einval);
    tcase_add_test(tc, test_cancel_parked_changed);
    tcase_add_test(tc, test_select_shutdown);
    tcase_add_test(tc, test_select_closed_and_ready);
    tcase_add_loop_test(tc, test_readers_everywhere, 0, 3);
    tcase_add_test(tc, test_concurrent_modify);
    tcase_add_test(tc, test_random_cancel);
    suite_add_tcase(s, tc);
    return s;
}

TR_TEST_MAIN(suite)
