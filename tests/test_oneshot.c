/* test_oneshot.c — tr_oneshot, after tokio/tests/sync_oneshot.rs.
 *
 * Tokio's tests poll futures by hand and look at wakers; here a "pending
 * poll" is a wait that times out or a task that is still parked, and "is
 * woken" is the parked wait returning.  Beyond tokio's scenarios: both
 * sides on different workers and plain threads, cancellation of a parked
 * recv, select with the clauses, the heap form, and a stress run that
 * counts every value as received or destroyed exactly once.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "testutil.h"
#include "tr_oneshot.h"

static tr_oneshot os1;

/* Hands v to os1 from a task or thread after letting the receiver park. */
static void *send_later(void *arg) {
    int v = (int)(intptr_t)arg;
    if (tr_task_self())
        tr_sleep_ms(5);
    else
        sched_yield();
    return RC(tr_oneshot_send(&os1, &v));
}

static void *drop_tx_later(void *arg) {
    (void)arg;
    if (tr_task_self())
        tr_sleep_ms(5);
    return RC(tr_oneshot_tx_drop(&os1));
}

static void *drop_rx_later(void *arg) {
    (void)arg;
    if (tr_task_self())
        tr_sleep_ms(5);
    return RC(tr_oneshot_rx_drop(&os1));
}

static void *recv_task(void *arg) {
    int *out = arg;
    return RC(tr_oneshot_recv(&os1, out, TR_TEST_DEADLINE()));
}

/* ---- tokio's scenarios --------------------------------------------------------- */

static void *send_recv_body(void *arg) {
    (void)arg;
    ck_assert_tr_ok(tr_oneshot_init(&os1, sizeof(int), NULL));
    int out = 0;
    /* pending first */
    ck_assert_tr_err(tr_oneshot_recv(&os1, &out, tr_after_ms(1)), TR_ETIMEDOUT);
    tr_task *t = spawn_on(tr_runtime_current(), 1, send_later, RC(1));
    ck_assert_tr_ok(tr_oneshot_recv(&os1, &out, TR_TEST_DEADLINE()));
    ck_assert_int_eq(out, 1);
    ck_assert_int_eq(join_rc(t), 0);
    ck_assert(tr_oneshot_is_terminated(&os1));
    ck_assert_tr_ok(tr_oneshot_rx_drop(&os1));
    return NULL;
}

START_TEST(test_send_recv) {
    tr_runtime *rt = tr_test_runtime(workers_for(_i));
    ck_assert_tr_ok(tr_runtime_block_on(rt, send_recv_body, NULL, NULL));
    tr_runtime_free(&rt);
}
END_TEST

START_TEST(test_async_send_recv) {
    tr_oneshot os;
    int v = 1, out = 0;
    ck_assert_tr_ok(tr_oneshot_init(&os, sizeof v, NULL));
    ck_assert_tr_ok(tr_oneshot_send(&os, &v));
    ck_assert_tr_ok(tr_oneshot_recv(&os, &out, TR_TEST_DEADLINE()));
    ck_assert_int_eq(out, 1);
    ck_assert_tr_ok(tr_oneshot_rx_drop(&os));
}
END_TEST

START_TEST(test_close_tx) {
    tr_runtime *rt = tr_test_runtime(2);
    ck_assert_tr_ok(tr_oneshot_init(&os1, sizeof(int), NULL));
    int out = 0;
    tr_task *t = spawn_on(rt, 0, recv_task, &out);
    tr_task *d = spawn_on(rt, 1, drop_tx_later, NULL);
    ck_assert_int_eq(join_rc(t), TR_ECLOSED);
    ck_assert_int_eq(join_rc(d), 0);
    ck_assert(tr_oneshot_is_terminated(&os1));
    ck_assert_tr_ok(tr_oneshot_rx_drop(&os1));
    tr_runtime_free(&rt);
}
END_TEST

static void *closed_task(void *arg) {
    (void)arg;
    return RC(tr_oneshot_closed(&os1, TR_TEST_DEADLINE()));
}

START_TEST(test_close_rx) {
    /* First, without closed(): the receiver is gone, send hands the value back. */
    tr_oneshot os;
    int v = 1;
    ck_assert_tr_ok(tr_oneshot_init(&os, sizeof v, NULL));
    ck_assert_tr_ok(tr_oneshot_rx_drop(&os));
    ck_assert(tr_oneshot_is_closed(&os));
    ck_assert_tr_err(tr_oneshot_send(&os, &v), TR_ECLOSED);
    ck_assert_int_eq(v, 1);

    /* Second, via closed(): pending, then woken by the drop. */
    tr_runtime *rt = tr_test_runtime(2);
    ck_assert_tr_ok(tr_oneshot_init(&os1, sizeof v, NULL));
    ck_assert_tr_err(tr_oneshot_closed(&os1, tr_after_ms(1)), TR_ETIMEDOUT);
    tr_task *t = spawn_on(rt, 0, closed_task, NULL);
    tr_task *d = spawn_on(rt, 1, drop_rx_later, NULL);
    ck_assert_int_eq(join_rc(t), 0);
    ck_assert_int_eq(join_rc(d), 0);
    ck_assert(tr_oneshot_is_closed(&os1));
    ck_assert_tr_ok(tr_oneshot_closed(&os1, 0)); /* ready now */
    ck_assert_tr_err(tr_oneshot_send(&os1, &v), TR_ECLOSED);
    tr_runtime_free(&rt);
}
END_TEST

START_TEST(test_rx_closed_from_plain_thread) {
    /* the sender waits on a plain thread; a task drops the receiver */
    tr_runtime *rt = tr_test_runtime(1);
    ck_assert_tr_ok(tr_oneshot_init(&os1, sizeof(int), NULL));
    tr_task *d = spawn_on(rt, 0, drop_rx_later, NULL);
    ck_assert_tr_ok(tr_oneshot_closed(&os1, TR_TEST_DEADLINE()));
    ck_assert_int_eq(join_rc(d), 0);
    ck_assert_tr_ok(tr_oneshot_tx_drop(&os1));
    tr_runtime_free(&rt);
}
END_TEST

START_TEST(test_explicit_close_poll) {
    tr_oneshot os;
    int v = 1, out = 0;
    /* First, with the message sent: still receivable after close. */
    ck_assert_tr_ok(tr_oneshot_init(&os, sizeof v, NULL));
    ck_assert_tr_ok(tr_oneshot_send(&os, &v));
    ck_assert_tr_ok(tr_oneshot_close(&os));
    ck_assert_tr_ok(tr_oneshot_recv(&os, &out, TR_TEST_DEADLINE()));
    ck_assert_int_eq(out, 1);
    ck_assert_tr_ok(tr_oneshot_rx_drop(&os));

    /* Second, without: closed() becomes ready, send fails, recv errs. */
    tr_runtime *rt = tr_test_runtime(2);
    ck_assert_tr_ok(tr_oneshot_init(&os1, sizeof v, NULL));
    tr_task *t = spawn_on(rt, 1, closed_task, NULL);
    tr_sleep_ms(5);
    ck_assert_tr_ok(tr_oneshot_close(&os1));
    ck_assert_int_eq(join_rc(t), 0);
    ck_assert(tr_oneshot_is_closed(&os1));
    ck_assert_tr_err(tr_oneshot_send(&os1, &v), TR_ECLOSED);
    ck_assert_tr_err(tr_oneshot_recv(&os1, &out, TR_TEST_DEADLINE()), TR_ECLOSED);
    ck_assert_tr_ok(tr_oneshot_rx_drop(&os1));

    /* Again, with the sender still alive: recv errs at once. */
    ck_assert_tr_ok(tr_oneshot_init(&os1, sizeof v, NULL));
    ck_assert_tr_ok(tr_oneshot_close(&os1));
    ck_assert(tr_oneshot_is_closed(&os1));
    ck_assert_tr_ok(tr_oneshot_closed(&os1, TR_TEST_DEADLINE()));
    ck_assert_tr_err(tr_oneshot_recv(&os1, &out, TR_TEST_DEADLINE()), TR_ECLOSED);
    ck_assert_tr_ok(tr_oneshot_tx_drop(&os1));
    ck_assert_tr_ok(tr_oneshot_rx_drop(&os1));
    tr_runtime_free(&rt);
}
END_TEST

START_TEST(test_explicit_close_try_recv) {
    tr_oneshot os;
    int v = 1, out = 0;
    ck_assert_tr_ok(tr_oneshot_init(&os, sizeof v, NULL));
    ck_assert_tr_ok(tr_oneshot_send(&os, &v));
    ck_assert_tr_ok(tr_oneshot_close(&os));
    ck_assert_tr_ok(tr_oneshot_try_recv(&os, &out));
    ck_assert_int_eq(out, 1);
    ck_assert_tr_ok(tr_oneshot_rx_drop(&os));

    ck_assert_tr_ok(tr_oneshot_init(&os, sizeof v, NULL));
    ck_assert_tr_err(tr_oneshot_try_recv(&os, &out), TR_EEMPTY);
    ck_assert_tr_ok(tr_oneshot_close(&os));
    ck_assert(tr_oneshot_is_closed(&os));
    ck_assert_tr_err(tr_oneshot_try_recv(&os, &out), TR_ECLOSED);
    ck_assert_tr_ok(tr_oneshot_tx_drop(&os));
    ck_assert_tr_ok(tr_oneshot_rx_drop(&os));
}
END_TEST

START_TEST(test_close_try_recv_poll) {
    /* tokio panics when a completed receiver is polled; we refuse. */
    tr_oneshot os;
    int out;
    ck_assert_tr_ok(tr_oneshot_init(&os, sizeof(int), NULL));
    ck_assert_tr_ok(tr_oneshot_close(&os));
    ck_assert_tr_err(tr_oneshot_try_recv(&os, &out), TR_ECLOSED);
    ck_assert_tr_err(tr_oneshot_recv(&os, &out, TR_TEST_DEADLINE()), TR_EINVAL);
    ck_assert_tr_ok(tr_oneshot_tx_drop(&os));
    ck_assert_tr_ok(tr_oneshot_rx_drop(&os));
}
END_TEST

START_TEST(test_after_completion) {
    tr_oneshot os;
    int v = 17, out = 0;
    /* close_after_recv + try_recv_after_completion */
    ck_assert_tr_ok(tr_oneshot_init(&os, sizeof v, NULL));
    ck_assert_tr_ok(tr_oneshot_send(&os, &v));
    ck_assert_tr_ok(tr_oneshot_try_recv(&os, &out));
    ck_assert_int_eq(out, 17);
    ck_assert_tr_err(tr_oneshot_try_recv(&os, &out), TR_ECLOSED);
    ck_assert_tr_ok(tr_oneshot_close(&os));
    ck_assert_tr_ok(tr_oneshot_rx_drop(&os));
    /* try_recv_after_completion_await */
    ck_assert_tr_ok(tr_oneshot_init(&os, sizeof v, NULL));
    ck_assert_tr_ok(tr_oneshot_send(&os, &v));
    out = 0;
    ck_assert_tr_ok(tr_oneshot_recv(&os, &out, TR_TEST_DEADLINE()));
    ck_assert_int_eq(out, 17);
    ck_assert_tr_err(tr_oneshot_try_recv(&os, &out), TR_ECLOSED);
    ck_assert_tr_ok(tr_oneshot_close(&os));
    ck_assert_tr_ok(tr_oneshot_rx_drop(&os));
}
END_TEST

static void *recv_short(void *arg) {
    int *out = arg;
    return RC(tr_oneshot_recv(&os1, out, tr_after_ms(2)));
}

START_TEST(test_receiver_changes_task) {
    /* a first wait gives up; only the second waiter gets the value */
    tr_runtime *rt = tr_test_runtime(2);
    ck_assert_tr_ok(tr_oneshot_init(&os1, sizeof(int), NULL));
    int out1 = 0, out2 = 0;
    tr_task *t1 = spawn_on(rt, 0, recv_short, &out1);
    ck_assert_int_eq(join_rc(t1), TR_ETIMEDOUT);
    tr_task *t2 = spawn_on(rt, 1, recv_task, &out2);
    tr_task *s = spawn_on(rt, 0, send_later, RC(1));
    ck_assert_int_eq(join_rc(t2), 0);
    ck_assert_int_eq(join_rc(s), 0);
    ck_assert_int_eq(out1, 0);
    ck_assert_int_eq(out2, 1);
    ck_assert_tr_ok(tr_oneshot_rx_drop(&os1));
    tr_runtime_free(&rt);
}
END_TEST

static void *closed_short(void *arg) {
    (void)arg;
    return RC(tr_oneshot_closed(&os1, tr_after_ms(2)));
}

START_TEST(test_sender_changes_task) {
    tr_runtime *rt = tr_test_runtime(2);
    ck_assert_tr_ok(tr_oneshot_init(&os1, sizeof(int), NULL));
    ck_assert_int_eq(join_rc(spawn_on(rt, 0, closed_short, NULL)), TR_ETIMEDOUT);
    tr_task *t2 = spawn_on(rt, 1, closed_task, NULL);
    tr_task *d = spawn_on(rt, 0, drop_rx_later, NULL);
    ck_assert_int_eq(join_rc(t2), 0);
    ck_assert_int_eq(join_rc(d), 0);
    ck_assert_tr_ok(tr_oneshot_tx_drop(&os1));
    tr_runtime_free(&rt);
}
END_TEST

START_TEST(test_is_terminated_and_empty) {
    tr_oneshot os;
    int v = 17, out = 0;
    /* after send, terminated only once read (by recv) */
    ck_assert_tr_ok(tr_oneshot_init(&os, sizeof v, NULL));
    ck_assert(!tr_oneshot_is_terminated(&os));
    ck_assert(tr_oneshot_is_empty(&os));
    ck_assert_tr_ok(tr_oneshot_send(&os, &v));
    ck_assert(!tr_oneshot_is_terminated(&os));
    ck_assert(!tr_oneshot_is_empty(&os));
    ck_assert_tr_ok(tr_oneshot_recv(&os, &out, TR_TEST_DEADLINE()));
    ck_assert_int_eq(out, 17);
    ck_assert(tr_oneshot_is_terminated(&os));
    ck_assert(tr_oneshot_is_empty(&os));
    ck_assert_tr_ok(tr_oneshot_rx_drop(&os));
    /* by try_recv */
    ck_assert_tr_ok(tr_oneshot_init(&os, sizeof v, NULL));
    ck_assert_tr_ok(tr_oneshot_send(&os, &v));
    ck_assert_tr_ok(tr_oneshot_try_recv(&os, &out));
    ck_assert(tr_oneshot_is_terminated(&os));
    ck_assert(tr_oneshot_is_empty(&os));
    ck_assert_tr_ok(tr_oneshot_rx_drop(&os));
    /* sender dropped: not terminated until polled */
    ck_assert_tr_ok(tr_oneshot_init(&os, sizeof v, NULL));
    ck_assert_tr_ok(tr_oneshot_tx_drop(&os));
    ck_assert(!tr_oneshot_is_terminated(&os));
    ck_assert(tr_oneshot_is_empty(&os));
    ck_assert_tr_err(tr_oneshot_recv(&os, &out, TR_TEST_DEADLINE()), TR_ECLOSED);
    ck_assert(tr_oneshot_is_terminated(&os));
    ck_assert_tr_ok(tr_oneshot_rx_drop(&os));
    /* receiver closed: likewise */
    ck_assert_tr_ok(tr_oneshot_init(&os, sizeof v, NULL));
    ck_assert_tr_ok(tr_oneshot_close(&os));
    ck_assert(!tr_oneshot_is_terminated(&os));
    ck_assert(tr_oneshot_is_empty(&os));
    ck_assert_tr_err(tr_oneshot_recv(&os, &out, TR_TEST_DEADLINE()), TR_ECLOSED);
    ck_assert(tr_oneshot_is_terminated(&os));
    ck_assert_tr_ok(tr_oneshot_tx_drop(&os));
    ck_assert_tr_ok(tr_oneshot_rx_drop(&os));
}
END_TEST

/* ---- bad input, lifetime, destructor -------------------------------------------- */

START_TEST(test_einval) {
    tr_oneshot os;
    memset(&os, 0, sizeof os);
    int v = 1, out;
    char big[64];
    ck_assert_tr_err(tr_oneshot_init(NULL, 4, NULL), TR_EINVAL);
    ck_assert_tr_err(tr_oneshot_init(&os, 0, NULL), TR_EINVAL);
    ck_assert_tr_err(tr_oneshot_init(&os, TR_ONESHOT_INLINE + 1, NULL), TR_EINVAL);
    ck_assert_tr_err(tr_oneshot_init_buf(&os, NULL, 8, NULL), TR_EINVAL);
    ck_assert_tr_err(tr_oneshot_init_buf(&os, big, 0, NULL), TR_EINVAL);
    /* never initialised */
    ck_assert_tr_err(tr_oneshot_send(&os, &v), TR_EINVAL);
    ck_assert_tr_err(tr_oneshot_recv(&os, &out, 0), TR_EINVAL);
    ck_assert_tr_err(tr_oneshot_try_recv(&os, &out), TR_EINVAL);
    ck_assert_tr_err(tr_oneshot_rx_drop(&os), TR_EINVAL);
    ck_assert_tr_err(tr_oneshot_tx_drop(&os), TR_EINVAL);
    ck_assert_tr_err(tr_oneshot_close(&os), TR_EINVAL);
    ck_assert_tr_err(tr_oneshot_closed(&os, 0), TR_EINVAL);
    ck_assert_tr_err(tr_oneshot_reset(&os), TR_EINVAL);
    ck_assert(!tr_oneshot_is_closed(NULL));

    ck_assert_tr_ok(tr_oneshot_init(&os, sizeof v, NULL));
    ck_assert_tr_err(tr_oneshot_send(&os, NULL), TR_EINVAL);
    ck_assert_tr_err(tr_oneshot_recv(&os, NULL, 0), TR_EINVAL);
    ck_assert_tr_err(tr_oneshot_try_recv(&os, NULL), TR_EINVAL);
    ck_assert_tr_err(tr_oneshot_reset(&os), TR_EBUSY);
    ck_assert(!tr_oneshot_tx_ended(&os));
    ck_assert_tr_ok(tr_oneshot_send(&os, &v));
    ck_assert(tr_oneshot_tx_ended(&os));
    ck_assert_tr_err(tr_oneshot_send(&os, &v), TR_EINVAL);   /* second send */
    ck_assert_tr_err(tr_oneshot_tx_drop(&os), TR_EINVAL);    /* sender ended */
    ck_assert_tr_err(tr_oneshot_closed(&os, 0), TR_EINVAL);
    ck_assert_tr_err(tr_oneshot_reset(&os), TR_EBUSY);
    ck_assert_tr_ok(tr_oneshot_rx_drop(&os));
    ck_assert_tr_err(tr_oneshot_rx_drop(&os), TR_EINVAL);    /* double drop */
    ck_assert_tr_err(tr_oneshot_recv(&os, &out, 0), TR_EINVAL);
    ck_assert_tr_err(tr_oneshot_try_recv(&os, &out), TR_EINVAL);
    ck_assert_tr_err(tr_oneshot_close(&os), TR_EINVAL);

    tr_clause c;
    ck_assert_tr_err(tr_oneshot_recv_clause(NULL, &os, &out), TR_EINVAL);
    ck_assert_tr_err(tr_oneshot_recv_clause(&c, NULL, &out), TR_EINVAL);
    ck_assert_ptr_null(c.ops);
    ck_assert_tr_err(tr_select(&c, 1, 0, 0), TR_EINVAL);
    ck_assert_tr_err(tr_oneshot_closed_clause(&c, NULL), TR_EINVAL);

    /* heap form */
    tr_oneshot_tx *tx = NULL;
    tr_oneshot_rx *rx = NULL;
    ck_assert_tr_err(tr_oneshot_new(NULL, &rx, 4), TR_EINVAL);
    ck_assert_tr_err(tr_oneshot_new(&tx, &rx, 0), TR_EINVAL);
    ck_assert_tr_err(tr_oneshot_tx_send(&tx, &v), TR_EINVAL);
    ck_assert_tr_err(tr_oneshot_tx_free(&tx), TR_EINVAL);
    ck_assert_tr_err(tr_oneshot_rx_free(&rx), TR_EINVAL);
    ck_assert_tr_err(tr_oneshot_rx_recv(NULL, &out, 0), TR_EINVAL);
}
END_TEST

typedef struct { atomic_int drops; atomic_int releases; } counters;

static void count_drop(void *value, void *ctx) {
    (void)value;
    atomic_fetch_add(&((counters *)ctx)->drops, 1);
}

static void count_release(tr_oneshot *os, void *ctx) {
    (void)os;
    atomic_fetch_add(&((counters *)ctx)->releases, 1);
}

START_TEST(test_destructor_exactly_once) {
    counters k = {0, 0};
    tr_chan_opts o = {.drop = count_drop, .drop_ctx = &k};
    tr_oneshot os;
    int v = 5, out = 0;
    /* sent, never received: destroyed at rx_drop, once */
    ck_assert_tr_ok(tr_oneshot_init(&os, sizeof v, &o));
    ck_assert_tr_ok(tr_oneshot_set_release(&os, count_release, &k));
    ck_assert_tr_ok(tr_oneshot_send(&os, &v));
    ck_assert_int_eq(atomic_load(&k.drops), 0);
    ck_assert_tr_ok(tr_oneshot_rx_drop(&os));
    ck_assert_int_eq(atomic_load(&k.drops), 1);
    ck_assert_int_eq(atomic_load(&k.releases), 1);
    /* reused after reset: received, so never destroyed */
    ck_assert_tr_ok(tr_oneshot_reset(&os));
    ck_assert_tr_ok(tr_oneshot_send(&os, &v));
    ck_assert_tr_ok(tr_oneshot_recv(&os, &out, TR_TEST_DEADLINE()));
    ck_assert_tr_ok(tr_oneshot_rx_drop(&os));
    ck_assert_int_eq(atomic_load(&k.drops), 1);
    ck_assert_int_eq(atomic_load(&k.releases), 2);
    /* refused (receiver gone first): the value stays with the sender */
    ck_assert_tr_ok(tr_oneshot_reset(&os));
    ck_assert_tr_ok(tr_oneshot_rx_drop(&os));
    ck_assert_int_eq(atomic_load(&k.releases), 2);
    ck_assert_tr_err(tr_oneshot_send(&os, &v), TR_ECLOSED);
    ck_assert_int_eq(atomic_load(&k.drops), 1);
    ck_assert_int_eq(atomic_load(&k.releases), 3); /* the sender ended last */
    /* sent before close, dropped after: destroyed once */
    ck_assert_tr_ok(tr_oneshot_reset(&os));
    ck_assert_tr_ok(tr_oneshot_send(&os, &v));
    ck_assert_tr_ok(tr_oneshot_close(&os));
    ck_assert_tr_ok(tr_oneshot_rx_drop(&os));
    ck_assert_int_eq(atomic_load(&k.drops), 2);
    ck_assert_int_eq(atomic_load(&k.releases), 4);
}
END_TEST

typedef struct blob { char s[100]; } blob;

START_TEST(test_large_values) {
    blob buf, in, out;
    memset(&in, 'x', sizeof in);
    tr_oneshot os;
    ck_assert_tr_ok(tr_oneshot_init_buf(&os, &buf, sizeof(blob), NULL));
    ck_assert_tr_ok(tr_oneshot_send(&os, &in));
    ck_assert_tr_ok(tr_oneshot_recv(&os, &out, TR_TEST_DEADLINE()));
    ck_assert(memcmp(&in, &out, sizeof in) == 0);
    ck_assert_tr_ok(tr_oneshot_rx_drop(&os));

    tr_oneshot_tx *tx;
    tr_oneshot_rx *rx;
    ck_assert_tr_ok(tr_oneshot_new(&tx, &rx, sizeof(blob)));
    memset(&in, 'y', sizeof in);
    ck_assert_tr_ok(tr_oneshot_tx_send(&tx, &in));
    ck_assert_ptr_null(tx);
    ck_assert_tr_ok(tr_oneshot_rx_recv(rx, &out, TR_TEST_DEADLINE()));
    ck_assert(memcmp(&in, &out, sizeof in) == 0);
    ck_assert_tr_ok(tr_oneshot_rx_free(&rx));
    ck_assert_ptr_null(rx);
}
END_TEST

/* ---- the heap form across threads --------------------------------------------- */

static void *heap_sender(void *arg) {
    tr_oneshot_tx *tx = arg;
    long v = 42;
    if (tr_task_self())
        tr_yield();
    return RC(tr_oneshot_tx_send(&tx, &v));
}

START_TEST(test_heap_form) {
    tr_runtime *rt = tr_test_runtime(2);
    counters k = {0, 0};
    tr_chan_opts o = {.drop = count_drop, .drop_ctx = &k};
    for (int round = 0; round < 4; round++) {
        tr_oneshot_tx *tx;
        tr_oneshot_rx *rx;
        ck_assert_tr_ok(tr_oneshot_new_ex(&tx, &rx, sizeof(long), &o));
        long out = 0;
        if (round == 0) { /* sender task, receiver plain thread */
            tr_task *t = spawn_on(rt, 1, heap_sender, tx);
            ck_assert_tr_ok(tr_oneshot_rx_recv(rx, &out, TR_TEST_DEADLINE()));
            ck_assert_int_eq(out, 42);
            ck_assert_int_eq(join_rc(t), 0);
            ck_assert_tr_ok(tr_oneshot_rx_free(&rx));
        } else if (round == 1) { /* receiver first, then sender fails */
            ck_assert_tr_ok(tr_oneshot_rx_free(&rx));
            ck_assert(tr_oneshot_tx_is_closed(tx));
            ck_assert_tr_ok(tr_oneshot_tx_closed(tx, TR_TEST_DEADLINE()));
            long v = 1;
            ck_assert_tr_err(tr_oneshot_tx_send(&tx, &v), TR_ECLOSED);
            ck_assert_ptr_null(tx);
        } else if (round == 2) { /* sender dropped */
            ck_assert_tr_ok(tr_oneshot_tx_free(&tx));
            ck_assert_tr_err(tr_oneshot_rx_try_recv(rx, &out), TR_ECLOSED);
            ck_assert_tr_ok(tr_oneshot_rx_free(&rx));
        } else { /* sent, closed, never received: destroyed */
            long v = 3;
            ck_assert_tr_ok(tr_oneshot_tx_send(&tx, &v));
            ck_assert_tr_ok(tr_oneshot_rx_close(rx));
            ck_assert_tr_ok(tr_oneshot_rx_free(&rx));
        }
    }
    ck_assert_int_eq(atomic_load(&k.drops), 1);
    tr_runtime_free(&rt);
}
END_TEST

/* ---- cancellation and select ----------------------------------------------------- */

static void *recv_forever(void *arg) {
    int *out = arg;
    return RC(tr_oneshot_recv(&os1, out, TR_NEVER));
}

START_TEST(test_cancel_parked_recv) {
    tr_runtime *rt = tr_test_runtime(2);
    ck_assert_tr_ok(tr_oneshot_init(&os1, sizeof(int), NULL));
    int out = 0;
    tr_task *t = spawn_on(rt, 1, recv_forever, &out);
    tr_sleep_ms(2);
    ck_assert_tr_ok(tr_task_cancel(t));
    ck_assert_int_eq(join_rc(t), TR_ECANCELED);
    /* nothing taken: the value sent afterwards is still there */
    int v = 9;
    ck_assert_tr_ok(tr_oneshot_send(&os1, &v));
    ck_assert(!tr_oneshot_is_terminated(&os1));
    ck_assert_tr_ok(tr_oneshot_try_recv(&os1, &out));
    ck_assert_int_eq(out, 9);
    ck_assert_tr_ok(tr_oneshot_rx_drop(&os1));
    tr_runtime_free(&rt);
}
END_TEST

static tr_oneshot os2;

static void *select_two(void *arg) {
    int *out = arg;
    tr_clause c[2];
    ck_assert_tr_ok(tr_oneshot_recv_clause(&c[0], &os1, &out[0]));
    ck_assert_tr_ok(tr_oneshot_recv_clause(&c[1], &os2, &out[1]));
    int i = tr_select(c, 2, TR_TEST_DEADLINE(), 0);
    ck_assert_int_ge(i, 0);
    ck_assert_int_eq(c[i].result, 0);
    return RC(i);
}

static void *send_os2_later(void *arg) {
    int v = (int)(intptr_t)arg;
    tr_sleep_ms(5);
    return RC(tr_oneshot_send(&os2, &v));
}

START_TEST(test_select_recv) {
    tr_runtime *rt = tr_test_runtime(workers_for(_i));
    ck_assert_tr_ok(tr_oneshot_init(&os1, sizeof(int), NULL));
    ck_assert_tr_ok(tr_oneshot_init(&os2, sizeof(int), NULL));
    int out[2] = {0, 0};
    tr_task *t = spawn_on(rt, 0, select_two, out);
    tr_task *s = spawn_on(rt, 1, send_os2_later, RC(7));
    ck_assert_int_eq(join_rc(t), 1);
    ck_assert_int_eq(join_rc(s), 0);
    ck_assert_int_eq(out[1], 7);
    ck_assert_int_eq(out[0], 0);
    /* the losing clause took nothing and left no entry behind */
    int v = 8;
    ck_assert_tr_ok(tr_oneshot_send(&os1, &v));
    ck_assert_tr_ok(tr_oneshot_try_recv(&os1, &out[0]));
    ck_assert_int_eq(out[0], 8);
    /* ready at arm: completes at once */
    tr_clause c[2];
    ck_assert_tr_ok(tr_oneshot_init(&os1, sizeof(int), NULL));
    ck_assert_tr_ok(tr_oneshot_send(&os1, &v));
    ck_assert_tr_ok(tr_oneshot_recv_clause(&c[0], &os2, &out[1]));
    ck_assert_tr_ok(tr_oneshot_recv_clause(&c[1], &os1, &out[0]));
    out[0] = 0;
    /* os2 is terminated: its clause completes at once with TR_EINVAL */
    ck_assert_int_eq(tr_select(c, 2, 0, 0), 0);
    ck_assert_int_eq(c[0].result, TR_EINVAL);
    ck_assert_tr_ok(tr_oneshot_rx_drop(&os2));
    ck_assert_tr_ok(tr_oneshot_recv_clause(&c[0], &os1, &out[0]));
    ck_assert_int_eq(tr_select(c, 1, 0, 0), 0);
    ck_assert_int_eq(c[0].result, 0);
    ck_assert_int_eq(out[0], 8);
    ck_assert_tr_ok(tr_oneshot_rx_drop(&os1));
    tr_runtime_free(&rt);
}
END_TEST

START_TEST(test_select_closed_clause) {
    tr_runtime *rt = tr_test_runtime(2);
    ck_assert_tr_ok(tr_oneshot_init(&os1, sizeof(int), NULL));
    ck_assert_tr_ok(tr_oneshot_init(&os2, sizeof(int), NULL));
    tr_clause c[2];
    int out;
    /* sender of os1 waits for os1's receiver to go, or for a reply on os2 */
    ck_assert_tr_ok(tr_oneshot_closed_clause(&c[0], &os1));
    ck_assert_tr_ok(tr_oneshot_recv_clause(&c[1], &os2, &out));
    ck_assert_int_eq(tr_select(c, 2, tr_after_ms(2), 0), TR_ETIMEDOUT);
    tr_task *d = spawn_on(rt, 1, drop_rx_later, NULL);
    ck_assert_int_eq(tr_select(c, 2, TR_TEST_DEADLINE(), 0), 0);
    ck_assert_int_eq(c[0].result, 0);
    ck_assert_int_eq(join_rc(d), 0);
    ck_assert_tr_ok(tr_oneshot_tx_drop(&os1));
    ck_assert_tr_ok(tr_oneshot_tx_drop(&os2));
    ck_assert_tr_ok(tr_oneshot_rx_drop(&os2));
    tr_runtime_free(&rt);
}
END_TEST

/* ---- stress: 4 workers and plain threads, timeouts and cancellation ------------- */

#define PAIRS 400

typedef struct pair {
    tr_oneshot os;
    atomic_int got; /* the receiver's outcome for the stress check */
} pair;

static pair pairs[PAIRS];
static counters stress_k;
static atomic_long received_sum, dropped_sum, refused_sum;

static void sum_drop(void *value, void *ctx) {
    (void)ctx;
    atomic_fetch_add(&dropped_sum, *(long *)value);
    atomic_fetch_add(&stress_k.drops, 1);
}

static void *stress_send(void *arg) {
    intptr_t first = (intptr_t)arg;
    unsigned seed = (unsigned)first + 1;
    for (intptr_t i = first; i < PAIRS; i += 4) {
        if (rand_r(&seed) % 8 == 0 && tr_task_self())
            tr_yield();
        long v = i + 1;
        int rc = (i % 7 == 3) ? tr_oneshot_tx_drop(&pairs[i].os) : tr_oneshot_send(&pairs[i].os, &v);
        ck_assert(rc == 0 || rc == TR_ECLOSED);
        if (rc == TR_ECLOSED && i % 7 != 3)
            atomic_fetch_add(&refused_sum, v); /* handed back to us */
    }
    return NULL;
}

static void *stress_recv(void *arg) {
    intptr_t first = (intptr_t)arg;
    unsigned seed = (unsigned)first + 100;
    for (intptr_t i = first; i < PAIRS; i += 4) {
        long out = 0;
        int64_t dl = (rand_r(&seed) % 3 == 0) ? tr_after_us(rand_r(&seed) % 300) : TR_TEST_DEADLINE();
        int rc = tr_oneshot_recv(&pairs[i].os, &out, dl);
        if (rc == 0)
            atomic_fetch_add(&received_sum, out);
        ck_assert(rc == 0 || rc == TR_ECLOSED || rc == TR_ETIMEDOUT || rc == TR_ECANCELED);
        atomic_store(&pairs[i].got, rc == 0 ? 1 : 2);
        ck_assert_tr_ok(tr_oneshot_rx_drop(&pairs[i].os));
    }
    return NULL;
}

START_TEST(test_stress_exactly_once) {
    atomic_store(&received_sum, 0);
    atomic_store(&dropped_sum, 0);
    atomic_store(&refused_sum, 0);
    atomic_store(&stress_k.drops, 0);
    atomic_store(&stress_k.releases, 0);
    tr_chan_opts o = {.drop = sum_drop, .drop_ctx = NULL};
    for (int i = 0; i < PAIRS; i++) {
        ck_assert_tr_ok(tr_oneshot_init(&pairs[i].os, sizeof(long), &o));
        ck_assert_tr_ok(tr_oneshot_set_release(&pairs[i].os, count_release, &stress_k));
        atomic_store(&pairs[i].got, 0);
    }
    tr_runtime *rt = tr_test_runtime(4);
    /* residue classes 0,1 sent by tasks, 2,3 by plain threads; receivers
     * are tasks for 0,2 and plain threads for 1,3; some tasks cancelled */
    tr_task *st[2], *rt_[2];
    pthread_t sth[2], rth[2];
    for (int k = 0; k < 2; k++) {
        rt_[k] = spawn_on(rt, k * 2, stress_recv, (void *)(intptr_t)(k * 2));
        st[k] = spawn_on(rt, k * 2 + 1, stress_send, (void *)(intptr_t)k);
        ck_assert_int_eq(pthread_create(&sth[k], NULL, stress_send, (void *)(intptr_t)(k + 2)), 0);
        ck_assert_int_eq(pthread_create(&rth[k], NULL, stress_recv, (void *)(intptr_t)(k * 2 + 1)), 0);
    }
    tr_sleep_ms(1);
    tr_task_cancel(rt_[1]);
    for (int k = 0; k < 2; k++) {
        join_rc(st[k]);
        join_rc(rt_[k]);
        pthread_join(sth[k], NULL);
        pthread_join(rth[k], NULL);
    }
    long expect = 0;
    for (int i = 0; i < PAIRS; i++) {
        if (i % 7 != 3)
            expect += i + 1;
        ck_assert_int_ne(atomic_load(&pairs[i].got), 0);
    }
    /* Every value was received, destroyed or handed back, exactly once. */
    ck_assert_int_eq(atomic_load(&received_sum) + atomic_load(&dropped_sum) +
                         atomic_load(&refused_sum), expect);
    ck_assert_int_eq(atomic_load(&stress_k.releases), PAIRS);
    tr_runtime_free(&rt);
}
END_TEST

/* ---- a sender on the parked receiver's own worker (the lock-free send) ---------- */

/* A request/reply server and its clients, all tasks of one worker: every
 * reply finds its receiver parked on the sender's thread.  Some clients
 * give up early (short deadlines), so some replies find a receiver that
 * timed out; those stay in the slot and the receiver's drop destroys
 * them.  Every reply is received or destroyed exactly once, and every
 * oneshot's release hook runs once. */
#define LOCAL_CLIENTS 8
#define LOCAL_CALLS 300

typedef struct local_req {
    tr_oneshot *reply;
    long v;
} local_req;

typedef struct local_srv {
    tr_oneshot *slots[LOCAL_CLIENTS * LOCAL_CALLS];
    int n;
    atomic_int pending; /* requests made, not yet answered */
} local_srv;

static local_srv lsrv;
static counters local_k;
static atomic_long local_received, local_dropped, local_sent;

static void local_drop(void *value, void *ctx) {
    (void)ctx;
    atomic_fetch_add(&local_dropped, *(long *)value);
}

/* The server: answers in the order asked, yielding now and then so that
 * the clients' short deadlines run out while it has requests queued. */
static void *local_server(void *arg) {
    (void)arg;
    int done = 0;
    unsigned seed = 3;
    while (done < LOCAL_CLIENTS * LOCAL_CALLS) {
        if (atomic_load(&lsrv.pending) == 0 || rand_r(&seed) % 4 == 0) {
            tr_yield();
            continue;
        }
        tr_oneshot *os = lsrv.slots[done++];
        long v = done;
        atomic_fetch_sub(&lsrv.pending, 1);
        ck_assert_tr_ok(tr_oneshot_send(os, &v));
        atomic_fetch_add(&local_sent, v);
    }
    return NULL;
}

static void *local_client(void *arg) {
    unsigned seed = (unsigned)(intptr_t)arg + 11;
    tr_chan_opts o = {.drop = local_drop, .drop_ctx = NULL};
    for (int i = 0; i < LOCAL_CALLS; i++) {
        tr_oneshot os;
        ck_assert_tr_ok(tr_oneshot_init(&os, sizeof(long), &o));
        ck_assert_tr_ok(tr_oneshot_set_release(&os, count_release, &local_k));
        lsrv.slots[lsrv.n++] = &os; /* one worker: no race on n */
        atomic_fetch_add(&lsrv.pending, 1);
        long out = 0;
        int64_t dl = rand_r(&seed) % 5 == 0 ? tr_after_us(rand_r(&seed) % 50) : TR_TEST_DEADLINE();
        int rc = tr_oneshot_recv(&os, &out, dl);
        if (rc == 0)
            atomic_fetch_add(&local_received, out);
        else
            ck_assert_int_eq(rc, TR_ETIMEDOUT);
        /* A timed-out receiver leaves; the reply is still to come, so
         * wait for the sender's end before the frame goes. */
        while (!tr_oneshot_tx_ended(&os))
            tr_yield();
        ck_assert_tr_ok(tr_oneshot_rx_drop(&os));
    }
    return NULL;
}

START_TEST(test_same_worker_reply) {
    memset(&lsrv, 0, sizeof lsrv);
    atomic_store(&local_k.releases, 0);
    atomic_store(&local_received, 0);
    atomic_store(&local_dropped, 0);
    atomic_store(&local_sent, 0);
    tr_runtime *rt = tr_test_runtime(2);
    tr_task *srv = spawn_on(rt, 1, local_server, NULL);
    tr_task *c[LOCAL_CLIENTS];
    for (int i = 0; i < LOCAL_CLIENTS; i++)
        c[i] = spawn_on(rt, 1, local_client, (void *)(intptr_t)i);
    for (int i = 0; i < LOCAL_CLIENTS; i++)
        join_rc(c[i]);
    join_rc(srv);
    long n = LOCAL_CLIENTS * LOCAL_CALLS;
    ck_assert_int_eq(atomic_load(&local_sent), n * (n + 1) / 2);
    ck_assert_int_eq(atomic_load(&local_received) + atomic_load(&local_dropped), n * (n + 1) / 2);
    ck_assert_int_eq(atomic_load(&local_k.releases), n);
    tr_runtime_free(&rt);
}
END_TEST

/* The receiver's deadline has fired (it is runnable, not yet run) when a
 * sender of its worker comes: the sender must not claim it, and the value
 * stays for the next receive.  Both timers expire while a third task
 * keeps the worker busy; the sender's, earlier, runs first.  Correct in
 * either order. */
static int64_t stale_t0;
static int stale_rc;

static void *stale_recv(void *arg) {
    int *out = arg;
    stale_rc = tr_oneshot_recv(&os1, out, stale_t0 + 2000000);
    return NULL;
}

static void *stale_send(void *arg) {
    int v = (int)(intptr_t)arg;
    tr_sleep_until(stale_t0 + 1000000);
    return RC(tr_oneshot_send(&os1, &v));
}

static void *stale_busy(void *arg) {
    (void)arg;
    while (tr_now() < stale_t0 + 5000000)
        ; /* no yield: both deadlines pass meanwhile */
    return NULL;
}

START_TEST(test_same_worker_stale_receiver) {
    tr_runtime *rt = tr_test_runtime(1);
    ck_assert_tr_ok(tr_oneshot_init(&os1, sizeof(int), NULL));
    int out = 0;
    stale_t0 = tr_now();
    tr_task *r = spawn_on(rt, 0, stale_recv, &out);
    tr_task *s = spawn_on(rt, 0, stale_send, RC(42));
    tr_task *b = spawn_on(rt, 0, stale_busy, NULL);
    join_rc(b);
    ck_assert_int_eq(join_rc(s), 0);
    join_rc(r);
    if (stale_rc == 0) {
        ck_assert_int_eq(out, 42);
    } else {
        ck_assert_int_eq(stale_rc, TR_ETIMEDOUT);
        ck_assert_int_eq(out, 0);
        ck_assert_tr_ok(tr_oneshot_try_recv(&os1, &out));
        ck_assert_int_eq(out, 42);
    }
    ck_assert_tr_ok(tr_oneshot_rx_drop(&os1));
    tr_runtime_free(&rt);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("oneshot");
    TCase *tc = tr_tcase("tokio");
    tcase_add_loop_test(tc, test_send_recv, 0, 2);
    tcase_add_test(tc, test_async_send_recv);
    tcase_add_test(tc, test_close_tx);
    tcase_add_test(tc, test_close_rx);
    tcase_add_test(tc, test_rx_closed_from_plain_thread);
    tcase_add_test(tc, test_explicit_close_poll);
    tcase_add_test(tc, test_explicit_close_try_recv);
    tcase_add_test(tc, test_close_try_recv_poll);
    tcase_add_test(tc, test_after_completion);
    tcase_add_test(tc, test_receiver_changes_task);
    tcase_add_test(tc, test_sender_changes_task);
    tcase_add_test(tc, test_is_terminated_and_empty);
    suite_add_tcase(s, tc);
    tc = tr_tcase("troupe");
    tcase_add_test(tc, test_einval);
    tcase_add_test(tc, test_destructor_exactly_once);
    tcase_add_test(tc, test_large_values);
    tcase_add_test(tc, test_heap_form);
    tcase_add_test(tc, test_cancel_parked_recv);
    tcase_add_loop_test(tc, test_select_recv, 0, 2);
    tcase_add_test(tc, test_select_closed_clause);
    tcase_add_test(tc, test_stress_exactly_once);
    tcase_add_test(tc, test_same_worker_reply);
    tcase_add_test(tc, test_same_worker_stale_receiver);
    suite_add_tcase(s, tc);
    return s;
}

TR_TEST_MAIN(suite)
