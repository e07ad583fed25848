/* test_mpsc.c — bounded and unbounded mpsc channels.
 *
 * The first part ports the scenarios of tokio's tests/sync_mpsc.rs.  Where
 * tokio polls a future by hand and asks "is it woken?", these tests run
 * the wait on a plain thread or a task (a `bg` below) and read the
 * channel's stats: an entry leaves the wait queue exactly when a waker
 * claims it, so "still queued" is a deterministic "not woken".
 *
 * The second part is what a threaded C implementation needs on top:
 * FIFO order of waiting senders, deadlines and cancellation at every wait
 * point (nothing taken, nothing lost), destructors run exactly once,
 * select over several channels, bad arguments, the unbounded channel
 * giving blocks back after a burst, and stress runs with producers on
 * four workers and on plain threads at once, with random cancellation and
 * a receiver dropped midway, proving per value that everything sent was
 * received or destroyed exactly once.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "testutil.h"
#include "tr_mpsc.h"

#define V sizeof(int64_t)

static int make(int unbounded, tr_mpsc_tx **tx, tr_mpsc_rx **rx, size_t cap) {
    return unbounded ? tr_mpsc_unbounded_new(tx, rx, V) : tr_mpsc_new(tx, rx, cap, V);
}

static void count_drop(void *v, void *ctx) {
    (void)v;
    atomic_fetch_add((atomic_int *)ctx, 1);
}

static tr_mpsc_stats stats(tr_mpsc_rx *rx) {
    tr_mpsc_stats s;
    ck_assert_tr_ok(tr_mpsc_rx_stats(rx, &s));
    return s;
}

/* Polls until the channel shows n waiting senders / receivers. */
static void await_senders(tr_mpsc_rx *rx, size_t n) {
    int64_t dl = TR_TEST_DEADLINE();
    while (stats(rx).waiting_senders != n) {
        ck_assert_msg(tr_now() < dl, "waiting senders stuck at %zu, want %zu",
                      stats(rx).waiting_senders, n);
        tr_task_self() ? (void)tr_yield() : (void)sched_yield();
    }
}

static void await_receivers(tr_mpsc_rx *rx, size_t n) {
    int64_t dl = TR_TEST_DEADLINE();
    while (stats(rx).waiting_receivers != n) {
        ck_assert_msg(tr_now() < dl, "waiting receivers stuck");
        tr_task_self() ? (void)tr_yield() : (void)sched_yield();
    }
}

/* ---- one waiting operation, run in the background -------------------------- */

enum { BG_SEND, BG_RESERVE, BG_RESERVE_MANY, BG_RECV, BG_RECV_MANY, BG_CLOSED };

typedef struct bg {
    int op;
    tr_mpsc_tx *tx;
    tr_mpsc_rx *rx;
    int64_t value;         /* BG_SEND */
    size_t n;              /* BG_RESERVE_MANY, BG_RECV_MANY */
    tr_mpsc_permit permit; /* BG_RESERVE* */
    int64_t out[8];        /* BG_RECV* */
    int64_t deadline;
    atomic_int done;
    int rc;
    pthread_t th;
    tr_task *task;
} bg;

static void *bg_run(void *p) {
    bg *b = p;
    switch (b->op) {
    case BG_SEND: b->rc = tr_mpsc_send(b->tx, &b->value, b->deadline); break;
    case BG_RESERVE: b->rc = tr_mpsc_reserve(b->tx, &b->permit, b->deadline); break;
    case BG_RESERVE_MANY:
        b->rc = tr_mpsc_reserve_many(b->tx, &b->permit, b->n, b->deadline);
        break;
    case BG_RECV: b->rc = tr_mpsc_recv(b->rx, &b->out[0], b->deadline); break;
    case BG_RECV_MANY: b->rc = tr_mpsc_recv_many(b->rx, b->out, b->n, b->deadline); break;
    case BG_CLOSED: b->rc = tr_mpsc_tx_closed(b->tx, b->deadline); break;
    }
    atomic_store(&b->done, 1);
    return RC(b->rc);
}

static void bg_init(bg *b, int op, tr_mpsc_tx *tx, tr_mpsc_rx *rx) {
    memset(b, 0, sizeof *b);
    b->op = op;
    b->tx = tx;
    b->rx = rx;
    b->deadline = TR_TEST_DEADLINE();
}

/* Starts an initialised bg on a plain thread. */
static void bg_start_thread(bg *b) {
    ck_assert_int_eq(pthread_create(&b->th, NULL, bg_run, b), 0);
}

/* On a plain thread. */
static void bg_thread(bg *b, int op, tr_mpsc_tx *tx, tr_mpsc_rx *rx) {
    bg_init(b, op, tx, rx);
    bg_start_thread(b);
}

/* As a task of rt, on worker w. */
static void bg_task(bg *b, tr_runtime *rt, int w, int op, tr_mpsc_tx *tx, tr_mpsc_rx *rx) {
    bg_init(b, op, tx, rx);
    b->task = spawn_on(rt, w, bg_run, b);
}

static int bg_join(bg *b) {
    if (b->task) {
        int rc = join_rc(b->task);
        b->task = NULL;
        return rc;
    }
    void *r;
    pthread_join(b->th, &r);
    return (int)(intptr_t)r;
}

/* ---- tokio: basics ---------------------------------------------------------- */

START_TEST(test_send_recv_with_buffer) {
    tr_mpsc_tx *tx;
    tr_mpsc_rx *rx;
    ck_assert_tr_ok(tr_mpsc_new(&tx, &rx, 16, V));
    tr_mpsc_permit p;
    ck_assert_tr_ok(tr_mpsc_reserve(tx, &p, TR_TEST_DEADLINE()));
    int64_t v = 1, out = 0;
    ck_assert_tr_ok(tr_mpsc_permit_send(&p, &v));
    v = 2;
    ck_assert_tr_ok(tr_mpsc_try_send(tx, &v));
    ck_assert_tr_ok(tr_mpsc_tx_drop(&tx));
    ck_assert_tr_ok(tr_mpsc_recv(rx, &out, TR_TEST_DEADLINE()));
    ck_assert_int_eq(out, 1);
    ck_assert_tr_ok(tr_mpsc_recv(rx, &out, TR_TEST_DEADLINE()));
    ck_assert_int_eq(out, 2);
    ck_assert_tr_err(tr_mpsc_recv(rx, &out, TR_TEST_DEADLINE()), TR_ECLOSED);
    ck_assert_tr_ok(tr_mpsc_rx_drop(&rx));
}
END_TEST

static void *send_1_2(void *p) {
    tr_mpsc_tx *tx = p;
    int64_t v = 1;
    ck_assert_tr_ok(tr_mpsc_send(tx, &v, TR_TEST_DEADLINE()));
    v = 2;
    ck_assert_tr_ok(tr_mpsc_send(tx, &v, TR_TEST_DEADLINE()));
    ck_assert_tr_ok(tr_mpsc_tx_drop(&tx));
    return NULL;
}

/* async_send_recv_with_buffer / async_send_recv_unbounded, the receiver a
 * task (_i 0, 1) or a plain thread (_i 2, 3). */
START_TEST(test_async_send_recv) {
    int unbounded = _i & 1;
    tr_runtime *rt = tr_test_runtime(2);
    tr_mpsc_tx *tx;
    tr_mpsc_rx *rx;
    ck_assert_tr_ok(make(unbounded, &tx, &rx, 16));
    if (_i < 2) {
        bg r;
        tr_task *t = spawn_on(rt, 1, send_1_2, tx);
        bg_task(&r, rt, 0, BG_RECV, NULL, rx);
        ck_assert_tr_ok(bg_join(&r));
        ck_assert_int_eq(r.out[0], 1);
        bg_task(&r, rt, 0, BG_RECV, NULL, rx);
        ck_assert_tr_ok(bg_join(&r));
        ck_assert_int_eq(r.out[0], 2);
        bg_task(&r, rt, 0, BG_RECV, NULL, rx);
        ck_assert_tr_err(bg_join(&r), TR_ECLOSED);
        join_rc(t);
    } else {
        tr_task *t = spawn_on(rt, 0, send_1_2, tx);
        int64_t out;
        ck_assert_tr_ok(tr_mpsc_recv(rx, &out, TR_TEST_DEADLINE()));
        ck_assert_int_eq(out, 1);
        ck_assert_tr_ok(tr_mpsc_recv(rx, &out, TR_TEST_DEADLINE()));
        ck_assert_int_eq(out, 2);
        ck_assert_tr_err(tr_mpsc_recv(rx, &out, TR_TEST_DEADLINE()), TR_ECLOSED);
        join_rc(t);
    }
    ck_assert_tr_ok(tr_mpsc_rx_drop(&rx));
    tr_runtime_free(&rt);
}
END_TEST

static void *send_1_2_7_0(void *p) {
    tr_mpsc_tx *tx = p;
    int64_t vals[] = {1, 2, 7, 0};
    for (int i = 0; i < 4; i++)
        ck_assert_tr_ok(tr_mpsc_send(tx, &vals[i], TR_TEST_DEADLINE()));
    ck_assert_tr_ok(tr_mpsc_tx_drop(&tx));
    return NULL;
}

/* async_send_recv_many_with_buffer */
START_TEST(test_recv_many_with_buffer) {
    tr_runtime *rt = tr_test_runtime(2);
    tr_mpsc_tx *tx;
    tr_mpsc_rx *rx;
    ck_assert_tr_ok(tr_mpsc_new(&tx, &rx, 2, V));
    int64_t buf[8];
    ck_assert_int_eq(tr_mpsc_recv_many(rx, buf, 0, TR_TEST_DEADLINE()), 0);
    tr_task *t = spawn_on(rt, 1, send_1_2_7_0, tx);
    int count = 0;
    while (count < 4) {
        int n = tr_mpsc_recv_many(rx, buf + count, 3, TR_TEST_DEADLINE());
        ck_assert_int_gt(n, 0);
        ck_assert_int_le(n, 3);
        count += n;
    }
    ck_assert_int_eq(count, 4);
    ck_assert_int_eq(buf[0], 1);
    ck_assert_int_eq(buf[1], 2);
    ck_assert_int_eq(buf[2], 7);
    ck_assert_int_eq(buf[3], 0);
    ck_assert_tr_err(tr_mpsc_recv_many(rx, buf, 3, TR_TEST_DEADLINE()), TR_ECLOSED);
    join_rc(t);
    ck_assert_tr_ok(tr_mpsc_rx_drop(&rx));
    tr_runtime_free(&rt);
}
END_TEST

/* send_recv_many_unbounded / send_recv_many_*_capacity */
START_TEST(test_recv_many_limits) {
    int unbounded = _i;
    tr_mpsc_tx *tx;
    tr_mpsc_rx *rx;
    ck_assert_tr_ok(make(unbounded, &tx, &rx, 100));
    int64_t buf[64];
    ck_assert_int_eq(tr_mpsc_recv_many(rx, buf, 0, TR_TEST_DEADLINE()), 0);
    int64_t in[] = {7, 13, 100, 1002};
    for (int i = 0; i < 4; i++)
        ck_assert_tr_ok(tr_mpsc_send(tx, &in[i], TR_TEST_DEADLINE()));
    ck_assert_int_eq(tr_mpsc_recv_many(rx, buf, 0, TR_TEST_DEADLINE()), 0);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(tr_mpsc_recv_many(rx, buf, 1, TR_TEST_DEADLINE()), 1);
        ck_assert_int_eq(buf[0], in[i]);
    }
    /* 9 then one more: a limit of 9 takes 9, the next call the rest */
    for (int64_t i = 0; i < 10; i++)
        ck_assert_tr_ok(tr_mpsc_send(tx, &i, TR_TEST_DEADLINE()));
    ck_assert_int_eq(tr_mpsc_recv_many(rx, buf, 9, TR_TEST_DEADLINE()), 9);
    for (int i = 0; i < 9; i++)
        ck_assert_int_eq(buf[i], i);
    ck_assert_int_eq(tr_mpsc_recv_many(rx, buf, 9, TR_TEST_DEADLINE()), 1);
    ck_assert_int_eq(buf[0], 9);
    /* across unbounded block boundaries, in one call */
    for (int64_t i = 0; i < 60; i++)
        ck_assert_tr_ok(tr_mpsc_send(tx, &i, TR_TEST_DEADLINE()));
    ck_assert_int_eq(tr_mpsc_recv_many(rx, buf, 64, TR_TEST_DEADLINE()), 60);
    for (int i = 0; i < 60; i++)
        ck_assert_int_eq(buf[i], i);
    ck_assert_tr_ok(tr_mpsc_tx_drop(&tx));
    ck_assert_tr_err(tr_mpsc_recv_many(rx, buf, 4, TR_TEST_DEADLINE()), TR_ECLOSED);
    ck_assert_tr_err(tr_mpsc_recv(rx, buf, TR_TEST_DEADLINE()), TR_ECLOSED);
    ck_assert_tr_ok(tr_mpsc_rx_drop(&rx));
}
END_TEST

/* recv_many_with_non_empty_buffer_*_rx_closed_and_idle */
START_TEST(test_recv_many_closed_and_idle) {
    tr_mpsc_tx *tx;
    tr_mpsc_rx *rx;
    ck_assert_tr_ok(make(_i, &tx, &rx, 1));
    int64_t buf[2] = {1, 99};
    ck_assert_tr_ok(tr_mpsc_rx_close(rx));
    ck_assert_tr_err(tr_mpsc_recv_many(rx, buf + 1, 1, TR_TEST_DEADLINE()), TR_ECLOSED);
    ck_assert_int_eq(buf[0], 1);
    ck_assert_int_eq(buf[1], 99); /* untouched */
    ck_assert_tr_ok(tr_mpsc_tx_drop(&tx));
    ck_assert_tr_ok(tr_mpsc_rx_drop(&rx));
}
END_TEST

/* reserve_disarm */
START_TEST(test_reserve_disarm) {
    tr_mpsc_tx *tx1, *tx2, *tx3, *tx4;
    tr_mpsc_rx *rx;
    ck_assert_tr_ok(tr_mpsc_new(&tx1, &rx, 2, V));
    ck_assert_tr_ok(tr_mpsc_tx_clone(tx1, &tx2));
    ck_assert_tr_ok(tr_mpsc_tx_clone(tx1, &tx3));
    ck_assert_tr_ok(tr_mpsc_tx_clone(tx1, &tx4));
    tr_mpsc_permit p1, p2;
    ck_assert_tr_ok(tr_mpsc_reserve(tx1, &p1, TR_TEST_DEADLINE()));
    ck_assert_tr_ok(tr_mpsc_reserve(tx2, &p2, TR_TEST_DEADLINE()));
    bg r3, r4;
    bg_thread(&r3, BG_RESERVE, tx3, NULL);
    await_senders(rx, 1);
    bg_thread(&r4, BG_RESERVE, tx4, NULL);
    await_senders(rx, 2);
    int64_t v = 1, out;
    ck_assert_tr_ok(tr_mpsc_permit_send(&p1, &v));
    ck_assert_uint_eq(stats(rx).waiting_senders, 2); /* sending frees nothing */
    ck_assert_tr_ok(tr_mpsc_recv(rx, &out, TR_TEST_DEADLINE()));
    ck_assert_tr_ok(bg_join(&r3)); /* receiving does */
    ck_assert_uint_eq(stats(rx).waiting_senders, 1);
    ck_assert_tr_ok(tr_mpsc_permit_release(&p2)); /* and so does a release */
    ck_assert_tr_ok(bg_join(&r4));
    ck_assert_uint_eq(tr_mpsc_capacity(tx1), 0);
    ck_assert_tr_err(tr_mpsc_try_reserve(tx1, &p1), TR_EFULL);
    ck_assert_tr_ok(tr_mpsc_permit_release(&r3.permit));
    ck_assert_tr_ok(tr_mpsc_permit_release(&r4.permit));
    ck_assert_uint_eq(tr_mpsc_capacity(tx1), 2);
    tr_mpsc_tx_drop(&tx1);
    tr_mpsc_tx_drop(&tx2);
    tr_mpsc_tx_drop(&tx3);
    tr_mpsc_tx_drop(&tx4);
    ck_assert_tr_ok(tr_mpsc_rx_drop(&rx));
}
END_TEST

/* start_send_past_cap: a cancelled (here: timed out) reservation does not
 * keep the slot that frees up; the next waiter gets it. */
START_TEST(test_start_send_past_cap) {
    tr_mpsc_tx *tx1, *tx2;
    tr_mpsc_rx *rx;
    ck_assert_tr_ok(tr_mpsc_new(&tx1, &rx, 1, V));
    ck_assert_tr_ok(tr_mpsc_tx_clone(tx1, &tx2));
    int64_t v = 0, out;
    ck_assert_tr_ok(tr_mpsc_try_send(tx1, &v));
    tr_mpsc_permit p;
    ck_assert_tr_err(tr_mpsc_reserve(tx1, &p, tr_after_ms(5)), TR_ETIMEDOUT);
    ck_assert_uint_eq(tr_mpsc_permit_len(&p), 0);
    bg r2;
    bg_thread(&r2, BG_RESERVE, tx2, NULL);
    await_senders(rx, 1);
    ck_assert_tr_ok(tr_mpsc_recv(rx, &out, TR_TEST_DEADLINE()));
    ck_assert_tr_ok(bg_join(&r2));
    ck_assert_tr_ok(tr_mpsc_permit_release(&r2.permit));
    ck_assert_tr_ok(tr_mpsc_tx_drop(&tx1));
    ck_assert_tr_ok(tr_mpsc_tx_drop(&tx2));
    ck_assert_tr_err(tr_mpsc_recv(rx, &out, TR_TEST_DEADLINE()), TR_ECLOSED);
    ck_assert_tr_ok(tr_mpsc_rx_drop(&rx));
}
END_TEST

/* send_recv_unbounded */
START_TEST(test_send_recv_unbounded) {
    tr_mpsc_tx *tx;
    tr_mpsc_rx *rx;
    ck_assert_tr_ok(tr_mpsc_unbounded_new(&tx, &rx, V));
    int64_t v = 1, out;
    ck_assert_tr_ok(tr_mpsc_send(tx, &v, TR_NEVER));
    v = 2;
    ck_assert_tr_ok(tr_mpsc_try_send(tx, &v));
    ck_assert_tr_ok(tr_mpsc_recv(rx, &out, TR_TEST_DEADLINE()));
    ck_assert_int_eq(out, 1);
    ck_assert_tr_ok(tr_mpsc_recv(rx, &out, TR_TEST_DEADLINE()));
    ck_assert_int_eq(out, 2);
    ck_assert_tr_ok(tr_mpsc_tx_drop(&tx));
    ck_assert_tr_err(tr_mpsc_recv(rx, &out, TR_TEST_DEADLINE()), TR_ECLOSED);
    ck_assert_tr_ok(tr_mpsc_rx_drop(&rx));
}
END_TEST

/* send_recv_buffer_limited */
START_TEST(test_send_recv_buffer_limited) {
    tr_mpsc_tx *tx;
    tr_mpsc_rx *rx;
    ck_assert_tr_ok(tr_mpsc_new(&tx, &rx, 1, V));
    tr_mpsc_permit p1;
    ck_assert_tr_ok(tr_mpsc_reserve(tx, &p1, TR_TEST_DEADLINE()));
    int64_t v = 1, out;
    ck_assert_tr_ok(tr_mpsc_permit_send(&p1, &v));
    ck_assert_uint_eq(tr_mpsc_permit_len(&p1), 0);
    bg r;
    bg_thread(&r, BG_RESERVE, tx, NULL);
    await_senders(rx, 1);
    ck_assert_tr_ok(tr_mpsc_recv(rx, &out, TR_TEST_DEADLINE()));
    ck_assert_tr_ok(bg_join(&r));
    /* the freed slot went to the waiter: no barging */
    v = 1337;
    ck_assert_tr_err(tr_mpsc_try_send(tx, &v), TR_EFULL);
    v = 2;
    ck_assert_tr_ok(tr_mpsc_permit_send(&r.permit, &v));
    ck_assert_tr_ok(tr_mpsc_recv(rx, &out, TR_TEST_DEADLINE()));
    ck_assert_int_eq(out, 2);
    ck_assert_tr_ok(tr_mpsc_tx_drop(&tx));
    ck_assert_tr_ok(tr_mpsc_rx_drop(&rx));
}
END_TEST

/* recv_close_gets_none_idle / tx_close_gets_none */
START_TEST(test_recv_close_gets_none_idle) {
    tr_mpsc_tx *tx;
    tr_mpsc_rx *rx;
    ck_assert_tr_ok(make(_i, &tx, &rx, 10));
    ck_assert_tr_ok(tr_mpsc_rx_close(rx));
    ck_assert_tr_ok(tr_mpsc_rx_close(rx)); /* idempotent */
    int64_t v = 1;
    ck_assert_tr_err(tr_mpsc_recv(rx, &v, TR_TEST_DEADLINE()), TR_ECLOSED);
    ck_assert_tr_err(tr_mpsc_send(tx, &v, TR_TEST_DEADLINE()), TR_ECLOSED);
    ck_assert_tr_ok(tr_mpsc_tx_drop(&tx));
    ck_assert_tr_ok(tr_mpsc_rx_drop(&rx));

    ck_assert_tr_ok(make(_i, &tx, &rx, 10));
    ck_assert_tr_ok(tr_mpsc_tx_drop(&tx));
    ck_assert_tr_err(tr_mpsc_recv(rx, &v, TR_TEST_DEADLINE()), TR_ECLOSED);
    ck_assert_tr_ok(tr_mpsc_rx_drop(&rx));
}
END_TEST

/* recv_close_gets_none_reserved */
START_TEST(test_recv_close_gets_none_reserved) {
    tr_mpsc_tx *tx1, *tx2;
    tr_mpsc_rx *rx;
    ck_assert_tr_ok(tr_mpsc_new(&tx1, &rx, 1, V));
    ck_assert_tr_ok(tr_mpsc_tx_clone(tx1, &tx2));
    tr_mpsc_permit p1;
    ck_assert_tr_ok(tr_mpsc_reserve(tx1, &p1, TR_TEST_DEADLINE()));
    bg r2;
    bg_thread(&r2, BG_RESERVE, tx2, NULL);
    await_senders(rx, 1);
    ck_assert_tr_ok(tr_mpsc_rx_close(rx));
    ck_assert_tr_err(bg_join(&r2), TR_ECLOSED); /* woken with the error */
    ck_assert_uint_eq(tr_mpsc_permit_len(&r2.permit), 0);
    bg rv;
    bg_thread(&rv, BG_RECV, NULL, rx);
    await_receivers(rx, 1);
    int64_t v = 123;
    ck_assert_tr_ok(tr_mpsc_permit_send(&p1, &v)); /* an outstanding permit still sends */
    ck_assert_tr_ok(bg_join(&rv));
    ck_assert_int_eq(rv.out[0], 123);
    ck_assert_tr_err(tr_mpsc_recv(rx, &v, TR_TEST_DEADLINE()), TR_ECLOSED);
    tr_mpsc_tx_drop(&tx1);
    tr_mpsc_tx_drop(&tx2);
    ck_assert_tr_ok(tr_mpsc_rx_drop(&rx));
}
END_TEST

/* failed_reserve_many_wakes_closed_receiver / cancelled_reserve_many_...:
 * a reserve_many that was partly granted and then fails (close) or is
 * cancelled gives its slots back, and a receiver waiting for the channel
 * to become idle sees TR_ECLOSED.  (Here the close itself returns the
 * partial grant, a little earlier than tokio, which waits for the failed
 * future to be polled.) */
START_TEST(test_failed_reserve_many_wakes_closed_receiver) {
    int cancel = _i;
    tr_runtime *rt = tr_test_runtime(2);
    tr_mpsc_tx *tx;
    tr_mpsc_rx *rx;
    ck_assert_tr_ok(tr_mpsc_new(&tx, &rx, 2, V));
    tr_mpsc_permit p;
    ck_assert_tr_ok(tr_mpsc_try_reserve(tx, &p));
    bg r;
    bg_init(&r, BG_RESERVE_MANY, tx, NULL);
    r.n = 2;
    r.task = spawn_on(rt, 1, bg_run, &r);
    await_senders(rx, 1);
    ck_assert_uint_eq(tr_mpsc_capacity(tx), 0); /* one slot granted to it */
    if (cancel) {
        ck_assert_tr_ok(tr_task_cancel(r.task));
        ck_assert_tr_err(bg_join(&r), TR_ECANCELED);
        ck_assert_uint_eq(tr_mpsc_capacity(tx), 1); /* the grant came back */
        ck_assert_tr_ok(tr_mpsc_rx_close(rx));
    } else {
        ck_assert_tr_ok(tr_mpsc_rx_close(rx));
        ck_assert_tr_err(bg_join(&r), TR_ECLOSED);
    }
    ck_assert_uint_eq(tr_mpsc_permit_len(&r.permit), 0);
    bg rv;
    bg_thread(&rv, BG_RECV, NULL, rx);
    await_receivers(rx, 1);
    ck_assert_tr_ok(tr_mpsc_permit_release(&p)); /* idle now */
    ck_assert_tr_err(bg_join(&rv), TR_ECLOSED);
    ck_assert_uint_eq(tr_mpsc_capacity(tx), 2);
    tr_mpsc_tx_drop(&tx);
    ck_assert_tr_ok(tr_mpsc_rx_drop(&rx));
    tr_runtime_free(&rt);
}
END_TEST

/* failed_reserve_wakes_closed_receiver / cancelled_reserve_wakes_...:
 * the waiter was already assigned the slot when the close (or the
 * cancellation) comes; tr_mpsc_reserve has then succeeded — the slot is
 * its permit — and giving it back makes the closed channel idle. */
START_TEST(test_assigned_reserve_then_close) {
    tr_mpsc_tx *tx;
    tr_mpsc_rx *rx;
    ck_assert_tr_ok(tr_mpsc_new(&tx, &rx, 1, V));
    tr_mpsc_permit p;
    ck_assert_tr_ok(tr_mpsc_try_reserve(tx, &p));
    bg r;
    bg_thread(&r, BG_RESERVE, tx, NULL);
    await_senders(rx, 1);
    ck_assert_tr_ok(tr_mpsc_permit_release(&p)); /* assigned to the waiter */
    ck_assert_tr_ok(bg_join(&r));
    ck_assert_uint_eq(tr_mpsc_permit_len(&r.permit), 1);
    ck_assert_tr_ok(tr_mpsc_rx_close(rx));
    bg rv;
    bg_thread(&rv, BG_RECV, NULL, rx);
    await_receivers(rx, 1);
    int64_t v;
    ck_assert_tr_err(tr_mpsc_try_recv(rx, &v), TR_EEMPTY);
    ck_assert_tr_ok(tr_mpsc_permit_release(&r.permit));
    ck_assert_tr_err(bg_join(&rv), TR_ECLOSED);
    tr_mpsc_tx_drop(&tx);
    ck_assert_tr_ok(tr_mpsc_rx_drop(&rx));
}
END_TEST

/* try_send_fail / try_send_fail_with_try_recv */
START_TEST(test_try_send_fail) {
    int with_try_recv = _i;
    tr_mpsc_tx *tx;
    tr_mpsc_rx *rx;
    ck_assert_tr_ok(tr_mpsc_new(&tx, &rx, 1, V));
    int64_t v = 1, out;
    ck_assert_tr_ok(tr_mpsc_try_send(tx, &v));
    v = 2;
    ck_assert_tr_err(tr_mpsc_try_send(tx, &v), TR_EFULL);
    ck_assert_tr_ok(with_try_recv ? tr_mpsc_try_recv(rx, &out)
                                  : tr_mpsc_recv(rx, &out, TR_TEST_DEADLINE()));
    ck_assert_int_eq(out, 1);
    v = 3;
    ck_assert_tr_ok(tr_mpsc_try_send(tx, &v));
    ck_assert_tr_ok(tr_mpsc_tx_drop(&tx));
    ck_assert_tr_ok(with_try_recv ? tr_mpsc_try_recv(rx, &out)
                                  : tr_mpsc_recv(rx, &out, TR_TEST_DEADLINE()));
    ck_assert_int_eq(out, 3);
    ck_assert_tr_err(with_try_recv ? tr_mpsc_try_recv(rx, &out)
                                   : tr_mpsc_recv(rx, &out, TR_TEST_DEADLINE()),
                     TR_ECLOSED);
    ck_assert_tr_ok(tr_mpsc_rx_drop(&rx));
}
END_TEST

/* reserve_many_above_cap, try_reserve_many_zero, reserve_many_zero,
 * try_reserve_many_edge_cases, reserve_many_on_closed_channel,
 * try_reserve_many_on_closed_channel */
START_TEST(test_reserve_many_edges) {
    tr_mpsc_tx *tx;
    tr_mpsc_rx *rx;
    tr_mpsc_permit p;
    ck_assert_tr_ok(tr_mpsc_new(&tx, &rx, 1, V));
    ck_assert_tr_err(tr_mpsc_reserve_many(tx, &p, 2, TR_TEST_DEADLINE()), TR_EINVAL);
    ck_assert_tr_err(tr_mpsc_reserve_many(tx, &p, TR_MPSC_MAX_CAPACITY + 1, TR_TEST_DEADLINE()),
                     TR_EINVAL);
    ck_assert_tr_err(tr_mpsc_reserve_many(tx, &p, SIZE_MAX, TR_TEST_DEADLINE()), TR_EINVAL);
    ck_assert_tr_ok(tr_mpsc_try_reserve_many(tx, &p, 0));
    ck_assert_uint_eq(tr_mpsc_permit_len(&p), 0);
    ck_assert_tr_ok(tr_mpsc_reserve_many(tx, &p, 0, TR_TEST_DEADLINE()));
    ck_assert_tr_err(tr_mpsc_try_reserve_many(tx, &p, TR_MPSC_MAX_CAPACITY + 1), TR_EFULL);
    ck_assert_tr_err(tr_mpsc_try_reserve_many(tx, &p, SIZE_MAX), TR_EFULL);
    int64_t v = 1;
    ck_assert_tr_ok(tr_mpsc_try_send(tx, &v)); /* full */
    ck_assert_tr_ok(tr_mpsc_try_reserve_many(tx, &p, 0));
    ck_assert_tr_ok(tr_mpsc_reserve_many(tx, &p, 0, TR_TEST_DEADLINE()));
    ck_assert_tr_ok(tr_mpsc_permit_release(&p)); /* an empty permit: no-op */
    ck_assert_tr_err(tr_mpsc_permit_send(&p, &v), TR_EINVAL);
    ck_assert_tr_ok(tr_mpsc_rx_drop(&rx));
    ck_assert_tr_err(tr_mpsc_try_reserve_many(tx, &p, 0), TR_ECLOSED);
    ck_assert_tr_err(tr_mpsc_reserve_many(tx, &p, 0, TR_TEST_DEADLINE()), TR_ECLOSED);
    ck_assert_tr_err(tr_mpsc_try_reserve_many(tx, &p, 2), TR_EFULL); /* before closed */
    ck_assert_tr_ok(tr_mpsc_tx_drop(&tx));

    ck_assert_tr_ok(tr_mpsc_new(&tx, &rx, 100, V));
    ck_assert_tr_ok(tr_mpsc_rx_drop(&rx));
    ck_assert_tr_err(tr_mpsc_reserve_many(tx, &p, 10, TR_TEST_DEADLINE()), TR_ECLOSED);
    ck_assert_tr_err(tr_mpsc_try_reserve_many(tx, &p, 10), TR_ECLOSED);
    ck_assert_tr_err(tr_mpsc_reserve(tx, &p, TR_TEST_DEADLINE()), TR_ECLOSED);
    ck_assert_tr_err(tr_mpsc_try_reserve(tx, &p), TR_ECLOSED);
    ck_assert_tr_ok(tr_mpsc_tx_drop(&tx));
}
END_TEST

/* try_reserve_fails */
START_TEST(test_try_reserve_fails) {
    tr_mpsc_tx *tx;
    tr_mpsc_rx *rx;
    ck_assert_tr_ok(tr_mpsc_new(&tx, &rx, 1, V));
    tr_mpsc_permit p, q;
    ck_assert_tr_ok(tr_mpsc_try_reserve(tx, &p));
    ck_assert_tr_err(tr_mpsc_try_reserve(tx, &q), TR_EFULL);
    int64_t v = 42, out;
    ck_assert_tr_ok(tr_mpsc_permit_send(&p, &v));
    ck_assert_tr_ok(tr_mpsc_recv(rx, &out, TR_TEST_DEADLINE()));
    ck_assert_int_eq(out, 42);
    ck_assert_tr_ok(tr_mpsc_try_reserve(tx, &p));
    ck_assert_tr_ok(tr_mpsc_permit_release(&p));
    ck_assert_tr_ok(tr_mpsc_try_reserve(tx, &p));
    ck_assert_tr_ok(tr_mpsc_permit_release(&p));
    ck_assert_tr_ok(tr_mpsc_tx_drop(&tx));
    ck_assert_tr_ok(tr_mpsc_rx_drop(&rx));
}
END_TEST

/* reserve_many_and_send / try_reserve_many_and_send */
START_TEST(test_reserve_many_and_send) {
    int try = _i;
    tr_mpsc_tx *tx;
    tr_mpsc_rx *rx;
    ck_assert_tr_ok(tr_mpsc_new(&tx, &rx, 100, V));
    for (size_t i = 0; i < 100; i++) {
        tr_mpsc_permit p;
        ck_assert_tr_ok(try ? tr_mpsc_try_reserve_many(tx, &p, i)
                            : tr_mpsc_reserve_many(tx, &p, i, TR_TEST_DEADLINE()));
        ck_assert_uint_eq(tr_mpsc_permit_len(&p), i);
        for (size_t k = 0; k < i; k++) {
            int64_t v = (int64_t)k, out;
            ck_assert_tr_ok(tr_mpsc_permit_send(&p, &v));
            ck_assert_tr_ok(tr_mpsc_recv(rx, &out, TR_TEST_DEADLINE()));
            ck_assert_int_eq(out, (int64_t)k);
        }
        ck_assert_uint_eq(tr_mpsc_permit_len(&p), 0);
        int64_t out;
        ck_assert_tr_err(tr_mpsc_try_recv(rx, &out), TR_EEMPTY);
    }
    ck_assert_uint_eq(tr_mpsc_capacity(tx), 100);
    ck_assert_tr_ok(tr_mpsc_tx_drop(&tx));
    ck_assert_tr_ok(tr_mpsc_rx_drop(&rx));
}
END_TEST

/* try_reserve_many_full */
START_TEST(test_try_reserve_many_full) {
    for (size_t n = 1; n < 40; n++) {
        for (size_t k = 0; k < n; k++) {
            tr_mpsc_tx *tx;
            tr_mpsc_rx *rx;
            ck_assert_tr_ok(tr_mpsc_new(&tx, &rx, n, V));
            tr_mpsc_permit p, q;
            ck_assert_tr_ok(tr_mpsc_try_reserve_many(tx, &p, n));
            ck_assert_uint_eq(tr_mpsc_permit_len(&p), n);
            ck_assert_uint_eq(tr_mpsc_capacity(tx), 0);
            ck_assert_tr_err(tr_mpsc_try_reserve_many(tx, &q, 1), TR_EFULL);
            int64_t zero = 0, out;
            for (size_t i = 0; i < k; i++)
                ck_assert_tr_ok(tr_mpsc_permit_send(&p, &zero));
            ck_assert_tr_ok(tr_mpsc_permit_release(&p)); /* drop the rest */
            ck_assert_uint_eq(tr_mpsc_capacity(tx), n - k);
            ck_assert_tr_ok(tr_mpsc_try_reserve_many(tx, &q, 1));
            ck_assert_tr_ok(tr_mpsc_permit_release(&q));
            ck_assert_tr_err(tr_mpsc_try_reserve_many(tx, &q, n - k + 1), TR_EFULL);
            for (size_t i = 0; i < k; i++)
                ck_assert_tr_ok(tr_mpsc_recv(rx, &out, TR_TEST_DEADLINE()));
            ck_assert_uint_eq(tr_mpsc_capacity(tx), n);
            ck_assert_tr_ok(tr_mpsc_tx_drop(&tx));
            ck_assert_tr_ok(tr_mpsc_rx_drop(&rx));
        }
    }
}
END_TEST

/* drop_permit_releases_permit / drop_permit_iterator_releases_permits */
START_TEST(test_release_permits_wakes_reserver) {
    for (size_t n = 1; n < 20; n++) {
        tr_mpsc_tx *tx1, *tx2;
        tr_mpsc_rx *rx;
        ck_assert_tr_ok(tr_mpsc_new(&tx1, &rx, n, V));
        ck_assert_tr_ok(tr_mpsc_tx_clone(tx1, &tx2));
        tr_mpsc_permit p;
        ck_assert_tr_ok(tr_mpsc_reserve_many(tx1, &p, n, TR_TEST_DEADLINE()));
        bg r;
        bg_init(&r, BG_RESERVE_MANY, tx2, NULL);
        r.n = n;
        bg_start_thread(&r);
        await_senders(rx, 1);
        ck_assert_tr_ok(tr_mpsc_permit_release(&p));
        ck_assert_tr_ok(bg_join(&r));
        ck_assert_uint_eq(tr_mpsc_permit_len(&r.permit), n);
        ck_assert_tr_ok(tr_mpsc_permit_release(&r.permit));
        ck_assert_uint_eq(tr_mpsc_capacity(tx1), n);
        tr_mpsc_tx_drop(&tx1);
        tr_mpsc_tx_drop(&tx2);
        ck_assert_tr_ok(tr_mpsc_rx_drop(&rx));
    }
}
END_TEST

/* dropping_last_permit_wakes_closed_receiver, sending_last_permit_...,
 * releasing_last_owned_permit_..., ready_close_cancel_bounded,
 * the iterator variants: _i = 0 release, 1 send, 2 reserve_many(3) then
 * use one and release two. */
START_TEST(test_last_permit_wakes_closed_receiver) {
    tr_mpsc_tx *tx, *tx2;
    tr_mpsc_rx *rx;
    ck_assert_tr_ok(tr_mpsc_new(&tx, &rx, 100, V));
    ck_assert_tr_ok(tr_mpsc_tx_clone(tx, &tx2));
    tr_mpsc_permit p;
    ck_assert_tr_ok(tr_mpsc_try_reserve_many(tx, &p, _i == 2 ? 3 : 1));
    ck_assert_tr_ok(tr_mpsc_rx_close(rx));
    ck_assert(tr_mpsc_rx_is_closed(rx));
    bg rv;
    bg_thread(&rv, BG_RECV, NULL, rx);
    await_receivers(rx, 1);
    int64_t v = 9;
    if (_i == 0) {
        ck_assert_tr_ok(tr_mpsc_permit_release(&p));
        ck_assert_tr_err(bg_join(&rv), TR_ECLOSED);
    } else {
        ck_assert_tr_ok(tr_mpsc_permit_send(&p, &v));
        ck_assert_tr_ok(bg_join(&rv));
        ck_assert_int_eq(rv.out[0], 9);
        bg_thread(&rv, BG_RECV, NULL, rx);
        if (_i == 2) {
            await_receivers(rx, 1);
            ck_assert_tr_ok(tr_mpsc_permit_release(&p));
        }
        ck_assert_tr_err(bg_join(&rv), TR_ECLOSED);
    }
    tr_mpsc_tx_drop(&tx);
    tr_mpsc_tx_drop(&tx2);
    ck_assert_tr_ok(tr_mpsc_rx_drop(&rx));
}
END_TEST

/* permit_available_not_acquired_close */
START_TEST(test_permit_available_not_acquired_close) {
    tr_mpsc_tx *tx1, *tx2;
    tr_mpsc_rx *rx;
    ck_assert_tr_ok(tr_mpsc_new(&tx1, &rx, 1, V));
    ck_assert_tr_ok(tr_mpsc_tx_clone(tx1, &tx2));
    tr_mpsc_permit p1;
    ck_assert_tr_ok(tr_mpsc_reserve(tx1, &p1, TR_TEST_DEADLINE()));
    bg r2;
    bg_thread(&r2, BG_RESERVE, tx2, NULL);
    await_senders(rx, 1);
    ck_assert_tr_ok(tr_mpsc_rx_close(rx));
    ck_assert_tr_err(bg_join(&r2), TR_ECLOSED);
    ck_assert_tr_ok(tr_mpsc_permit_release(&p1));
    int64_t v;
    ck_assert_tr_err(tr_mpsc_recv(rx, &v, TR_TEST_DEADLINE()), TR_ECLOSED);
    tr_mpsc_tx_drop(&tx1);
    tr_mpsc_tx_drop(&tx2);
    ck_assert_tr_ok(tr_mpsc_rx_drop(&rx));
}
END_TEST

/* dropping_rx_closes_channel(_for_try), unconsumed_messages_are_dropped */
START_TEST(test_dropping_rx_closes_channel) {
    atomic_int drops = 0;
    tr_chan_opts o = {count_drop, &drops};
    tr_mpsc_tx *tx;
    tr_mpsc_rx *rx;
    ck_assert_tr_ok(_i ? tr_mpsc_unbounded_new_ex(&tx, &rx, V, &o)
                       : tr_mpsc_new_ex(&tx, &rx, 100, V, &o));
    int64_t v = 1;
    ck_assert_tr_ok(tr_mpsc_try_send(tx, &v));
    ck_assert_tr_ok(tr_mpsc_rx_drop(&rx));
    ck_assert_ptr_null(rx);
    ck_assert_int_eq(atomic_load(&drops), 1);
    ck_assert(tr_mpsc_tx_is_closed(tx));
    tr_mpsc_permit p;
    if (!_i) {
        ck_assert_tr_err(tr_mpsc_reserve(tx, &p, TR_TEST_DEADLINE()), TR_ECLOSED);
        ck_assert_tr_err(tr_mpsc_reserve_many(tx, &p, 10, TR_TEST_DEADLINE()), TR_ECLOSED);
        ck_assert_tr_err(tr_mpsc_try_reserve(tx, &p), TR_ECLOSED);
    }
    ck_assert_tr_err(tr_mpsc_try_send(tx, &v), TR_ECLOSED);
    ck_assert_tr_err(tr_mpsc_send(tx, &v, TR_TEST_DEADLINE()), TR_ECLOSED);
    ck_assert_int_eq(atomic_load(&drops), 1); /* failed sends keep their value */
    ck_assert_tr_ok(tr_mpsc_tx_closed(tx, TR_TEST_DEADLINE()));
    ck_assert_tr_ok(tr_mpsc_tx_drop(&tx));
    ck_assert_int_eq(atomic_load(&drops), 1);
}
END_TEST

/* blocking_recv / blocking_send: a plain thread on one end, a task on the
 * other. */
static void *send_10(void *p) {
    int64_t v = 10;
    ck_assert_tr_ok(tr_mpsc_send(p, &v, TR_TEST_DEADLINE()));
    return NULL;
}

START_TEST(test_blocking_recv_and_send) {
    tr_runtime *rt = tr_test_runtime(2);
    tr_mpsc_tx *tx;
    tr_mpsc_rx *rx;
    ck_assert_tr_ok(tr_mpsc_new(&tx, &rx, 1, V));
    bg r;
    bg_thread(&r, BG_RECV, NULL, rx);
    ck_assert_tr_ok(tr_runtime_block_on(rt, send_10, tx, NULL));
    ck_assert_tr_ok(bg_join(&r));
    ck_assert_int_eq(r.out[0], 10);
    /* the other way: a plain thread blocks in send on a full channel */
    int64_t v = 1;
    ck_assert_tr_ok(tr_mpsc_try_send(tx, &v));
    bg s;
    bg_init(&s, BG_SEND, tx, NULL);
    s.value = 10;
    bg_start_thread(&s);
    await_senders(rx, 1);
    bg_task(&r, rt, 0, BG_RECV, NULL, rx);
    ck_assert_tr_ok(bg_join(&r));
    ck_assert_int_eq(r.out[0], 1);
    ck_assert_tr_ok(bg_join(&s));
    bg_task(&r, rt, 1, BG_RECV, NULL, rx);
    ck_assert_tr_ok(bg_join(&r));
    ck_assert_int_eq(r.out[0], 10);
    ck_assert_tr_ok(tr_mpsc_tx_drop(&tx));
    ck_assert_tr_ok(tr_mpsc_rx_drop(&rx));
    tr_runtime_free(&rt);
}
END_TEST

/* try_recv_bounded */
START_TEST(test_try_recv_bounded) {
    tr_mpsc_tx *tx;
    tr_mpsc_rx *rx;
    ck_assert_tr_ok(tr_mpsc_new(&tx, &rx, 5, V));
    int64_t v = 0, out;
    for (int i = 0; i < 5; i++, v++)
        ck_assert_tr_ok(tr_mpsc_try_send(tx, &v));
    ck_assert_tr_err(tr_mpsc_try_send(tx, &v), TR_EFULL);
    for (int i = 0; i < 5; i++) {
        ck_assert_tr_ok(tr_mpsc_try_recv(rx, &out));
        ck_assert_int_eq(out, i);
    }
    ck_assert_tr_err(tr_mpsc_try_recv(rx, &out), TR_EEMPTY);
    int64_t next = 5;
    for (int i = 0; i < 4; i++, v++)
        ck_assert_tr_ok(tr_mpsc_try_send(tx, &v));
    ck_assert_tr_ok(tr_mpsc_try_recv(rx, &out));
    ck_assert_int_eq(out, next++);
    for (int i = 0; i < 2; i++, v++)
        ck_assert_tr_ok(tr_mpsc_try_send(tx, &v));
    ck_assert_tr_err(tr_mpsc_try_send(tx, &v), TR_EFULL);
    for (int i = 0; i < 5; i++) {
        ck_assert_tr_ok(tr_mpsc_try_recv(rx, &out));
        ck_assert_int_eq(out, next++);
    }
    ck_assert_tr_err(tr_mpsc_try_recv(rx, &out), TR_EEMPTY);
    for (int i = 0; i < 3; i++, v++)
        ck_assert_tr_ok(tr_mpsc_try_send(tx, &v));
    ck_assert_tr_ok(tr_mpsc_tx_drop(&tx));
    for (int i = 0; i < 3; i++) {
        ck_assert_tr_ok(tr_mpsc_try_recv(rx, &out));
        ck_assert_int_eq(out, next++);
    }
    ck_assert_tr_err(tr_mpsc_try_recv(rx, &out), TR_ECLOSED);
    ck_assert_tr_ok(tr_mpsc_rx_drop(&rx));
}
END_TEST

/* try_recv_unbounded */
START_TEST(test_try_recv_unbounded) {
    for (int64_t num = 0; num < 100; num++) {
        tr_mpsc_tx *tx;
        tr_mpsc_rx *rx;
        ck_assert_tr_ok(tr_mpsc_unbounded_new(&tx, &rx, V));
        for (int64_t i = 0; i < num; i++)
            ck_assert_tr_ok(tr_mpsc_send(tx, &i, TR_NEVER));
        int64_t out;
        for (int64_t i = 0; i < num; i++) {
            ck_assert_tr_ok(tr_mpsc_try_recv(rx, &out));
            ck_assert_int_eq(out, i);
        }
        ck_assert_tr_err(tr_mpsc_try_recv(rx, &out), TR_EEMPTY);
        ck_assert_tr_ok(tr_mpsc_tx_drop(&tx));
        ck_assert_tr_err(tr_mpsc_try_recv(rx, &out), TR_ECLOSED);
        ck_assert_tr_ok(tr_mpsc_rx_drop(&rx));
    }
}
END_TEST

/* try_recv_after_receiver_close(_with_permit), try_recv_close_while_empty_* */
START_TEST(test_try_recv_after_close) {
    tr_mpsc_tx *tx;
    tr_mpsc_rx *rx;
    int64_t out;
    ck_assert_tr_ok(make(_i, &tx, &rx, 5));
    ck_assert_tr_err(tr_mpsc_try_recv(rx, &out), TR_EEMPTY);
    ck_assert_tr_ok(tr_mpsc_rx_close(rx));
    ck_assert_tr_err(tr_mpsc_try_recv(rx, &out), TR_ECLOSED); /* 1.53 */
    ck_assert_tr_ok(tr_mpsc_tx_drop(&tx));
    ck_assert_tr_ok(tr_mpsc_rx_drop(&rx));

    ck_assert_tr_ok(make(_i, &tx, &rx, 5));
    ck_assert_tr_err(tr_mpsc_try_recv(rx, &out), TR_EEMPTY);
    ck_assert_tr_ok(tr_mpsc_tx_drop(&tx));
    ck_assert_tr_err(tr_mpsc_try_recv(rx, &out), TR_ECLOSED);
    ck_assert_tr_ok(tr_mpsc_rx_drop(&rx));

    if (_i)
        return;
    tr_mpsc_permit p;
    ck_assert_tr_ok(tr_mpsc_new(&tx, &rx, 5, V));
    ck_assert_tr_ok(tr_mpsc_try_reserve(tx, &p));
    ck_assert_tr_err(tr_mpsc_try_recv(rx, &out), TR_EEMPTY);
    ck_assert_tr_ok(tr_mpsc_rx_close(rx));
    ck_assert_tr_err(tr_mpsc_try_recv(rx, &out), TR_EEMPTY);
    ck_assert_tr_ok(tr_mpsc_permit_release(&p));
    ck_assert_tr_err(tr_mpsc_try_recv(rx, &out), TR_ECLOSED);
    ck_assert_tr_ok(tr_mpsc_tx_drop(&tx));
    ck_assert_tr_ok(tr_mpsc_rx_drop(&rx));
}
END_TEST

/* recv_timeout (tokio's send_timeout test) */
START_TEST(test_send_timeout) {
    tr_mpsc_tx *tx;
    tr_mpsc_rx *rx;
    ck_assert_tr_ok(tr_mpsc_new(&tx, &rx, 5, V));
    for (int64_t v = 10; v <= 50; v += 10)
        ck_assert_tr_ok(tr_mpsc_send(tx, &v, tr_after_ms(1000)));
    int64_t v = 60;
    int64_t dl = tr_after_ms(20);
    ck_assert_tr_err(tr_mpsc_send(tx, &v, dl), TR_ETIMEDOUT);
    ck_assert_int_ge(tr_now(), dl);
    ck_assert_int_eq(v, 60);
    ck_assert_uint_eq(stats(rx).waiting_senders, 0);
    ck_assert_tr_ok(tr_mpsc_rx_drop(&rx));
    v = 70;
    ck_assert_tr_err(tr_mpsc_send(tx, &v, tr_after_ms(1000)), TR_ECLOSED);
    ck_assert_tr_ok(tr_mpsc_tx_drop(&tx));
}
END_TEST

/* test_tx_capacity */
START_TEST(test_tx_capacity) {
    tr_mpsc_tx *tx;
    tr_mpsc_rx *rx;
    ck_assert_tr_ok(tr_mpsc_new(&tx, &rx, 10, V));
    ck_assert_uint_eq(tr_mpsc_capacity(tx), 10);
    ck_assert_uint_eq(tr_mpsc_max_capacity(tx), 10);
    tr_mpsc_permit p;
    ck_assert_tr_ok(tr_mpsc_reserve(tx, &p, TR_TEST_DEADLINE()));
    ck_assert_uint_eq(tr_mpsc_capacity(tx), 9);
    ck_assert_uint_eq(tr_mpsc_max_capacity(tx), 10);
    int64_t v = 0;
    ck_assert_tr_ok(tr_mpsc_send(tx, &v, TR_TEST_DEADLINE()));
    ck_assert_uint_eq(tr_mpsc_capacity(tx), 8);
    ck_assert_uint_eq(tr_mpsc_rx_capacity(rx), 8);
    ck_assert_uint_eq(tr_mpsc_rx_max_capacity(rx), 10);
    ck_assert_tr_ok(tr_mpsc_permit_release(&p));
    ck_assert_tr_ok(tr_mpsc_tx_drop(&tx));
    ck_assert_tr_ok(tr_mpsc_rx_drop(&rx));
    /* unbounded: the documented values */
    ck_assert_tr_ok(tr_mpsc_unbounded_new(&tx, &rx, V));
    ck_assert_uint_eq(tr_mpsc_capacity(tx), SIZE_MAX);
    ck_assert_uint_eq(tr_mpsc_max_capacity(tx), SIZE_MAX);
    ck_assert_tr_err(tr_mpsc_reserve(tx, &p, TR_TEST_DEADLINE()), TR_EINVAL);
    ck_assert_tr_err(tr_mpsc_try_reserve(tx, &p), TR_EINVAL);
    ck_assert_tr_err(tr_mpsc_reserve_many(tx, &p, 0, TR_TEST_DEADLINE()), TR_EINVAL);
    tr_clause c;
    ck_assert_tr_err(tr_mpsc_reserve_clause(&c, tx, &p), TR_EINVAL);
    ck_assert_tr_ok(tr_mpsc_tx_drop(&tx));
    ck_assert_tr_ok(tr_mpsc_rx_drop(&rx));
}
END_TEST

/* the test_rx_is_closed_*, test_rx_is_empty_*, test_rx_len_* families,
 * for both flavours */
START_TEST(test_rx_is_closed_is_empty_len) {
    int unbounded = _i;
    tr_mpsc_tx *tx, *tx2;
    tr_mpsc_rx *rx;
    int64_t v, out;
    ck_assert_tr_ok(make(unbounded, &tx, &rx, 100));
    ck_assert(!tr_mpsc_rx_is_closed(rx));
    ck_assert(tr_mpsc_rx_is_empty(rx));
    ck_assert_uint_eq(tr_mpsc_rx_len(rx), 0);
    for (v = 0; v < 100; v++) {
        ck_assert_tr_ok(tr_mpsc_send(tx, &v, TR_TEST_DEADLINE()));
        ck_assert_uint_eq(tr_mpsc_rx_len(rx), (size_t)v + 1);
    }
    ck_assert(!tr_mpsc_rx_is_closed(rx));
    ck_assert(!tr_mpsc_rx_is_empty(rx));
    ck_assert_tr_ok(tr_mpsc_tx_clone(tx, &tx2));
    ck_assert_tr_ok(tr_mpsc_tx_drop(&tx));
    ck_assert(!tr_mpsc_rx_is_closed(rx));
    ck_assert_tr_ok(tr_mpsc_tx_drop(&tx2));
    ck_assert(tr_mpsc_rx_is_closed(rx)); /* closed with values queued */
    ck_assert_uint_eq(tr_mpsc_rx_len(rx), 100);
    for (size_t i = 100; i > 1; i--) {
        ck_assert_tr_ok(tr_mpsc_recv(rx, &out, TR_TEST_DEADLINE()));
        ck_assert_uint_eq(tr_mpsc_rx_len(rx), i - 1);
        ck_assert(!tr_mpsc_rx_is_empty(rx));
    }
    ck_assert_tr_ok(tr_mpsc_recv(rx, &out, TR_TEST_DEADLINE()));
    ck_assert(tr_mpsc_rx_is_empty(rx));
    ck_assert_uint_eq(tr_mpsc_rx_len(rx), 0);
    ck_assert_tr_ok(tr_mpsc_rx_drop(&rx));

    /* close() with a sender alive, values queued: len unchanged */
    ck_assert_tr_ok(make(unbounded, &tx, &rx, 100));
    v = 1;
    ck_assert_tr_ok(tr_mpsc_send(tx, &v, TR_TEST_DEADLINE()));
    ck_assert_tr_ok(tr_mpsc_rx_close(rx));
    ck_assert(tr_mpsc_rx_is_closed(rx));
    ck_assert_uint_eq(tr_mpsc_rx_len(rx), 1);
    ck_assert_tr_ok(tr_mpsc_tx_drop(&tx));
    ck_assert_uint_eq(tr_mpsc_rx_len(rx), 1);
    ck_assert_tr_ok(tr_mpsc_recv(rx, &out, TR_TEST_DEADLINE()));
    ck_assert_tr_err(tr_mpsc_recv(rx, &out, TR_TEST_DEADLINE()), TR_ECLOSED);
    ck_assert_tr_ok(tr_mpsc_rx_drop(&rx));

    /* no sender, an outstanding permit: not closed (the OwnedPermit case) */
    if (!unbounded) {
        tr_mpsc_permit p;
        ck_assert_tr_ok(make(unbounded, &tx, &rx, 10));
        ck_assert_tr_ok(tr_mpsc_reserve(tx, &p, TR_TEST_DEADLINE()));
        ck_assert_tr_ok(tr_mpsc_tx_drop(&tx));
        ck_assert(!tr_mpsc_rx_is_closed(rx));
        ck_assert_tr_ok(tr_mpsc_permit_release(&p));
        ck_assert(tr_mpsc_rx_is_closed(rx));
        ck_assert_tr_ok(tr_mpsc_rx_drop(&rx));
    }
}
END_TEST

/* test_is_empty_32_msgs: a full block, read to its end */
START_TEST(test_is_empty_32_msgs) {
    tr_mpsc_tx *tx;
    tr_mpsc_rx *rx;
    ck_assert_tr_ok(tr_mpsc_unbounded_new(&tx, &rx, V));
    for (int round = 0; round < 3; round++) {
        for (int64_t i = 0; i < 32; i++)
            ck_assert_tr_ok(tr_mpsc_send(tx, &i, TR_NEVER));
        int64_t out;
        for (int64_t i = 0; i < 32; i++) {
            ck_assert(!tr_mpsc_rx_is_empty(rx));
            ck_assert_tr_ok(tr_mpsc_recv(rx, &out, TR_TEST_DEADLINE()));
            ck_assert_int_eq(out, i);
        }
        ck_assert(tr_mpsc_rx_is_empty(rx));
        ck_assert_uint_eq(tr_mpsc_rx_blocks(rx), 1);
    }
    ck_assert_tr_ok(tr_mpsc_tx_drop(&tx));
    ck_assert_tr_ok(tr_mpsc_rx_drop(&rx));
}
END_TEST

/* ==== beyond tokio's tests ==================================================== */

/* Waiting senders are served first come, first served: on tasks of four
 * workers (_i 0) or on plain threads (_i 1). */
START_TEST(test_fifo_waiting_senders) {
    tr_runtime *rt = tr_test_runtime(4);
    tr_mpsc_tx *tx;
    tr_mpsc_rx *rx;
    ck_assert_tr_ok(tr_mpsc_new(&tx, &rx, 1, V));
    int64_t v = 0, out;
    ck_assert_tr_ok(tr_mpsc_try_send(tx, &v));
    enum { K = 6 };
    bg s[K];
    for (int k = 0; k < K; k++) {
        bg_init(&s[k], BG_SEND, tx, NULL);
        s[k].value = k + 1;
        if (_i == 0)
            s[k].task = spawn_on(rt, k, bg_run, &s[k]);
        else
            bg_start_thread(&s[k]);
        await_senders(rx, (size_t)k + 1); /* queued in this order */
    }
    ck_assert_tr_err(tr_mpsc_try_send(tx, &v), TR_EFULL);
    for (int k = 0; k <= K; k++) {
        ck_assert_tr_ok(tr_mpsc_recv(rx, &out, TR_TEST_DEADLINE()));
        ck_assert_int_eq(out, k);
    }
    for (int k = 0; k < K; k++)
        ck_assert_tr_ok(bg_join(&s[k]));
    ck_assert_tr_ok(tr_mpsc_tx_drop(&tx));
    ck_assert_tr_ok(tr_mpsc_rx_drop(&rx));
    tr_runtime_free(&rt);
}
END_TEST

/* A reserve_many at the head takes freed slots one by one; the smaller
 * request behind it does not overtake it. */
START_TEST(test_fifo_reserve_many_head) {
    tr_mpsc_tx *tx;
    tr_mpsc_rx *rx;
    ck_assert_tr_ok(tr_mpsc_new(&tx, &rx, 3, V));
    tr_mpsc_permit p;
    ck_assert_tr_ok(tr_mpsc_try_reserve_many(tx, &p, 3));
    int64_t v = 7, out;
    for (int i = 0; i < 3; i++)
        ck_assert_tr_ok(tr_mpsc_permit_send(&p, &v));
    bg a, b;
    bg_init(&a, BG_RESERVE_MANY, tx, NULL);
    a.n = 2;
    bg_start_thread(&a);
    await_senders(rx, 1);
    bg_thread(&b, BG_RESERVE, tx, NULL);
    await_senders(rx, 2);
    ck_assert_tr_ok(tr_mpsc_recv(rx, &out, TR_TEST_DEADLINE()));
    ck_assert_uint_eq(stats(rx).waiting_senders, 2); /* a partly granted, b behind */
    ck_assert_uint_eq(tr_mpsc_capacity(tx), 0);
    ck_assert_tr_ok(tr_mpsc_recv(rx, &out, TR_TEST_DEADLINE()));
    ck_assert_tr_ok(bg_join(&a));
    ck_assert_uint_eq(tr_mpsc_permit_len(&a.permit), 2);
    ck_assert_uint_eq(stats(rx).waiting_senders, 1);
    ck_assert_tr_ok(tr_mpsc_recv(rx, &out, TR_TEST_DEADLINE()));
    ck_assert_tr_ok(bg_join(&b));
    ck_assert_uint_eq(tr_mpsc_permit_len(&b.permit), 1);
    ck_assert_uint_eq(stats(rx).permits_out, 3);
    ck_assert_tr_ok(tr_mpsc_permit_release(&a.permit));
    ck_assert_tr_ok(tr_mpsc_permit_release(&b.permit));
    ck_assert_tr_ok(tr_mpsc_tx_drop(&tx));
    ck_assert_tr_ok(tr_mpsc_rx_drop(&rx));
}
END_TEST

/* A send that times out leaves the value with the caller: the destructor
 * does not see it, and the same value can be sent again.  From a plain
 * thread (_i 0) and a task (_i 1). */
static atomic_int timeout_drops;

static void *send_timeout_body(void *p) {
    (void)p;
    tr_chan_opts o = {count_drop, &timeout_drops};
    tr_mpsc_tx *tx;
    tr_mpsc_rx *rx;
    ck_assert_tr_ok(tr_mpsc_new_ex(&tx, &rx, 1, V, &o));
    int64_t v = 1, out;
    ck_assert_tr_ok(tr_mpsc_send(tx, &v, TR_TEST_DEADLINE()));
    v = 2;
    int64_t dl = tr_after_ms(20);
    ck_assert_tr_err(tr_mpsc_send(tx, &v, dl), TR_ETIMEDOUT);
    ck_assert_int_ge(tr_now(), dl);
    ck_assert_tr_err(tr_mpsc_send(tx, &v, 0), TR_ETIMEDOUT); /* past: no wait */
    ck_assert_int_eq(atomic_load(&timeout_drops), 0);
    ck_assert_uint_eq(stats(rx).waiting_senders, 0);
    ck_assert_uint_eq(tr_mpsc_rx_len(rx), 1);
    ck_assert_tr_ok(tr_mpsc_recv(rx, &out, TR_TEST_DEADLINE()));
    ck_assert_int_eq(out, 1);
    ck_assert_tr_ok(tr_mpsc_send(tx, &v, 0)); /* room: a past deadline still sends */
    ck_assert_tr_ok(tr_mpsc_recv(rx, &out, TR_TEST_DEADLINE()));
    ck_assert_int_eq(out, 2);
    /* the receive side */
    dl = tr_after_ms(20);
    ck_assert_tr_err(tr_mpsc_recv(rx, &out, dl), TR_ETIMEDOUT);
    ck_assert_int_ge(tr_now(), dl);
    ck_assert_uint_eq(stats(rx).waiting_receivers, 0);
    ck_assert_tr_err(tr_mpsc_recv_many(rx, &out, 4, tr_after_ms(5)), TR_ETIMEDOUT);
    tr_mpsc_permit pm, pm2;
    ck_assert_tr_ok(tr_mpsc_reserve(tx, &pm, TR_TEST_DEADLINE()));
    ck_assert_tr_err(tr_mpsc_reserve(tx, &pm2, tr_after_ms(5)), TR_ETIMEDOUT);
    ck_assert_uint_eq(tr_mpsc_permit_len(&pm2), 0);
    ck_assert_uint_eq(tr_mpsc_capacity(tx), 0);
    ck_assert_tr_ok(tr_mpsc_permit_release(&pm));
    ck_assert_tr_err(tr_mpsc_tx_closed(tx, tr_after_ms(5)), TR_ETIMEDOUT);
    ck_assert_int_eq(atomic_load(&timeout_drops), 0);
    ck_assert_tr_ok(tr_mpsc_tx_drop(&tx));
    ck_assert_tr_ok(tr_mpsc_rx_drop(&rx));
    return NULL;
}

START_TEST(test_timeouts_keep_values) {
    atomic_store(&timeout_drops, 0);
    if (_i == 0) {
        send_timeout_body(NULL);
    } else {
        tr_runtime *rt = tr_test_runtime(2);
        ck_assert_tr_ok(tr_runtime_block_on(rt, send_timeout_body, NULL, NULL));
        tr_runtime_free(&rt);
    }
}
END_TEST

/* Cancelling a task blocked in send, recv, recv_many, reserve and closed:
 * nothing taken, nothing lost, nothing left queued. */
static void *cancelled_first(void *p) {
    tr_mpsc_tx *tx = p;
    tr_task_cancel(tr_task_self());
    int64_t v = 99;
    ck_assert_tr_err(tr_mpsc_send(tx, &v, TR_TEST_DEADLINE()), TR_ECANCELED);
    tr_mpsc_permit q;
    ck_assert_tr_err(tr_mpsc_reserve(tx, &q, TR_TEST_DEADLINE()), TR_ECANCELED);
    return NULL;
}

START_TEST(test_cancel_blocked) {
    atomic_int drops = 0;
    tr_chan_opts o = {count_drop, &drops};
    tr_runtime *rt = tr_test_runtime(2);
    tr_mpsc_tx *tx;
    tr_mpsc_rx *rx;
    ck_assert_tr_ok(tr_mpsc_new_ex(&tx, &rx, 1, V, &o));
    int64_t v = 1, out;
    ck_assert_tr_ok(tr_mpsc_try_send(tx, &v));
    /* send */
    bg s;
    bg_init(&s, BG_SEND, tx, NULL);
    s.value = 2;
    s.deadline = TR_NEVER;
    s.task = spawn_on(rt, 1, bg_run, &s);
    await_senders(rx, 1);
    ck_assert_tr_ok(tr_task_cancel(s.task));
    ck_assert_tr_err(bg_join(&s), TR_ECANCELED);
    ck_assert_uint_eq(stats(rx).waiting_senders, 0);
    ck_assert_tr_ok(tr_mpsc_recv(rx, &out, TR_TEST_DEADLINE()));
    ck_assert_int_eq(out, 1);
    ck_assert_tr_err(tr_mpsc_try_recv(rx, &out), TR_EEMPTY); /* 2 never went in */
    ck_assert_uint_eq(tr_mpsc_capacity(tx), 1);
    /* reserve */
    tr_mpsc_permit p;
    ck_assert_tr_ok(tr_mpsc_try_reserve(tx, &p));
    bg_task(&s, rt, 1, BG_RESERVE, tx, NULL);
    await_senders(rx, 1);
    ck_assert_tr_ok(tr_task_cancel(s.task));
    ck_assert_tr_err(bg_join(&s), TR_ECANCELED);
    ck_assert_uint_eq(tr_mpsc_permit_len(&s.permit), 0);
    ck_assert_tr_ok(tr_mpsc_permit_release(&p));
    ck_assert_uint_eq(tr_mpsc_capacity(tx), 1);
    /* recv and recv_many */
    for (int op = BG_RECV; op <= BG_RECV_MANY; op++) {
        bg r;
        bg_init(&r, op, NULL, rx);
        r.n = 4;
        r.deadline = TR_NEVER;
        r.task = spawn_on(rt, 0, bg_run, &r);
        await_receivers(rx, 1);
        ck_assert_tr_ok(tr_task_cancel(r.task));
        ck_assert_tr_err(bg_join(&r), TR_ECANCELED);
        ck_assert_uint_eq(stats(rx).waiting_receivers, 0);
        v = 3 + op;
        ck_assert_tr_ok(tr_mpsc_try_send(tx, &v));
        ck_assert_tr_ok(tr_mpsc_try_recv(rx, &out)); /* nothing lost */
        ck_assert_int_eq(out, 3 + op);
    }
    /* closed */
    bg_task(&s, rt, 1, BG_CLOSED, tx, NULL);
    tr_sleep_ms(5); /* likely parked by now; correct either way */
    ck_assert_tr_ok(tr_task_cancel(s.task));
    ck_assert_tr_err(bg_join(&s), TR_ECANCELED);
    /* a task cancelled before it waits */
    tr_task *t = spawn_on(rt, 0, cancelled_first, tx);
    join_rc(t);
    ck_assert_tr_err(tr_mpsc_try_recv(rx, &out), TR_EEMPTY);
    ck_assert_int_eq(atomic_load(&drops), 0);
    ck_assert_tr_ok(tr_mpsc_tx_drop(&tx));
    ck_assert_tr_ok(tr_mpsc_rx_drop(&rx));
    tr_runtime_free(&rt);
}
END_TEST

/* tr_mpsc_tx_closed returns when the receiver closes (_i 0) or goes (1). */
START_TEST(test_tx_closed) {
    tr_runtime *rt = tr_test_runtime(2);
    tr_mpsc_tx *tx;
    tr_mpsc_rx *rx;
    ck_assert_tr_ok(tr_mpsc_new(&tx, &rx, 4, V));
    bg a, b;
    bg_task(&a, rt, 1, BG_CLOSED, tx, NULL);
    bg_thread(&b, BG_CLOSED, tx, NULL);
    tr_sleep_ms(5); /* likely both parked; correct either way */
    ck_assert(!atomic_load(&a.done));
    ck_assert(!tr_mpsc_tx_is_closed(tx));
    if (_i == 0)
        ck_assert_tr_ok(tr_mpsc_rx_close(rx));
    else
        ck_assert_tr_ok(tr_mpsc_rx_drop(&rx));
    ck_assert_tr_ok(bg_join(&a));
    ck_assert_tr_ok(bg_join(&b));
    ck_assert(tr_mpsc_tx_is_closed(tx));
    ck_assert_tr_ok(tr_mpsc_tx_closed(tx, 0)); /* at once */
    ck_assert_tr_ok(tr_mpsc_tx_drop(&tx));
    if (rx)
        ck_assert_tr_ok(tr_mpsc_rx_drop(&rx));
    tr_runtime_free(&rt);
}
END_TEST

/* Dropping the receiver destroys each queued value exactly once: bounded
 * with the ring wrapped (_i 0), unbounded across blocks (_i 1). */
typedef struct {
    atomic_int count[256];
} drop_tally;

static void tally_drop(void *v, void *ctx) {
    drop_tally *t = ctx;
    int64_t id = *(int64_t *)v;
    ck_assert(id >= 0 && id < 256);
    atomic_fetch_add(&t->count[id], 1);
}

START_TEST(test_drop_rx_destroys_queued) {
    static drop_tally t;
    memset(&t, 0, sizeof t);
    tr_chan_opts o = {tally_drop, &t};
    tr_mpsc_tx *tx;
    tr_mpsc_rx *rx;
    int64_t id = 0, out;
    int first_queued;
    if (_i == 0) {
        ck_assert_tr_ok(tr_mpsc_new_ex(&tx, &rx, 8, V, &o));
        for (; id < 5; id++)
            ck_assert_tr_ok(tr_mpsc_try_send(tx, &id));
        for (int i = 0; i < 5; i++)
            ck_assert_tr_ok(tr_mpsc_try_recv(rx, &out));
        first_queued = 5;
        for (; id < 13; id++) /* wraps around the ring */
            ck_assert_tr_ok(tr_mpsc_try_send(tx, &id));
    } else {
        ck_assert_tr_ok(tr_mpsc_unbounded_new_ex(&tx, &rx, V, &o));
        for (; id < 200; id++)
            ck_assert_tr_ok(tr_mpsc_send(tx, &id, TR_NEVER));
        for (int i = 0; i < 45; i++)
            ck_assert_tr_ok(tr_mpsc_try_recv(rx, &out));
        first_queued = 45;
        ck_assert_uint_ge(tr_mpsc_rx_blocks(rx), 200 / TR_MPSC_BLOCK_CAP - 1);
    }
    for (int i = 0; i < 256; i++)
        ck_assert_int_eq(atomic_load(&t.count[i]), 0);
    ck_assert_tr_ok(tr_mpsc_rx_drop(&rx));
    for (int i = 0; i < 256; i++)
        ck_assert_int_eq(atomic_load(&t.count[i]), i >= first_queued && i < id ? 1 : 0);
    /* a permit sending after the drop: the value goes to the destructor */
    ck_assert_tr_ok(tr_mpsc_tx_drop(&tx));

    ck_assert_tr_ok(tr_mpsc_new_ex(&tx, &rx, 2, V, &o));
    tr_mpsc_permit p;
    ck_assert_tr_ok(tr_mpsc_try_reserve_many(tx, &p, 2));
    ck_assert_tr_ok(tr_mpsc_rx_drop(&rx));
    id = 250;
    ck_assert_tr_ok(tr_mpsc_permit_send(&p, &id));
    ck_assert_int_eq(atomic_load(&t.count[250]), 1);
    ck_assert_tr_ok(tr_mpsc_tx_drop(&tx)); /* the permit keeps the memory */
    id = 251;
    ck_assert_tr_ok(tr_mpsc_permit_send(&p, &id)); /* last slot: frees the channel */
    ck_assert_int_eq(atomic_load(&t.count[251]), 1);
}
END_TEST

/* A value may own a sender of its own channel: the destructor drops it,
 * which takes the channel's lock again and may free the channel. */
static void drop_tx_value(void *v, void *ctx) {
    (void)ctx;
    tr_mpsc_tx **h = v;
    ck_assert_tr_ok(tr_mpsc_tx_drop(h));
}

START_TEST(test_destructor_reenters) {
    tr_chan_opts o = {drop_tx_value, NULL};
    tr_mpsc_tx *tx;
    tr_mpsc_rx *rx;
    ck_assert_tr_ok(_i ? tr_mpsc_unbounded_new_ex(&tx, &rx, sizeof(tr_mpsc_tx *), &o)
                       : tr_mpsc_new_ex(&tx, &rx, 4, sizeof(tr_mpsc_tx *), &o));
    for (int i = 0; i < 3; i++) {
        tr_mpsc_tx *c;
        ck_assert_tr_ok(tr_mpsc_tx_clone(tx, &c));
        ck_assert_tr_ok(tr_mpsc_try_send(tx, &c));
    }
    ck_assert_uint_eq(tr_mpsc_tx_strong_count(tx), 4);
    ck_assert_tr_ok(tr_mpsc_tx_drop(&tx));
    ck_assert(!tr_mpsc_rx_is_closed(rx)); /* the queued clones are senders */
    ck_assert_tr_ok(tr_mpsc_rx_drop(&rx)); /* drops them all, then frees */
}
END_TEST

/* The unbounded channel gives blocks back after a burst. */
START_TEST(test_unbounded_blocks_after_burst) {
    tr_mpsc_tx *tx;
    tr_mpsc_rx *rx;
    ck_assert_tr_ok(tr_mpsc_unbounded_new(&tx, &rx, V));
    ck_assert_uint_eq(tr_mpsc_rx_blocks(rx), 1);
    enum { BURST = 10000 };
    for (int round = 0; round < 2; round++) {
        for (int64_t i = 0; i < BURST; i++)
            ck_assert_tr_ok(tr_mpsc_send(tx, &i, TR_NEVER));
        tr_mpsc_stats s = stats(rx);
        ck_assert_uint_eq(s.len, BURST);
        ck_assert_uint_ge(s.blocks, BURST / TR_MPSC_BLOCK_CAP);
        ck_assert_uint_le(s.blocks, BURST / TR_MPSC_BLOCK_CAP + 2 + TR_MPSC_BLOCK_CACHE);
        int64_t buf[100];
        for (int64_t i = 0; i < BURST; i += 100) {
            ck_assert_int_eq(tr_mpsc_recv_many(rx, buf, 100, TR_TEST_DEADLINE()), 100);
            ck_assert_int_eq(buf[0], i);
            ck_assert_int_eq(buf[99], i + 99);
        }
        s = stats(rx);
        ck_assert_uint_eq(s.len, 0);
        ck_assert_uint_le(s.blocks, 1 + TR_MPSC_BLOCK_CACHE);
        ck_assert_uint_le(s.cached_blocks, TR_MPSC_BLOCK_CACHE);
    }
    /* a steady stream with a backlog stays within a few blocks */
    for (int64_t i = 0; i < 40; i++)
        ck_assert_tr_ok(tr_mpsc_send(tx, &i, TR_NEVER));
    for (int64_t i = 0; i < 5000; i++) {
        int64_t out, v = 40 + i;
        ck_assert_tr_ok(tr_mpsc_send(tx, &v, TR_NEVER));
        ck_assert_tr_ok(tr_mpsc_try_recv(rx, &out));
        ck_assert_int_eq(out, i);
        ck_assert_uint_le(tr_mpsc_rx_blocks(rx), 3 + TR_MPSC_BLOCK_CACHE);
    }
    ck_assert_tr_ok(tr_mpsc_tx_drop(&tx));
    ck_assert_tr_ok(tr_mpsc_rx_drop(&rx));
}
END_TEST

/* ---- select ------------------------------------------------------------------ */

typedef struct {
    tr_mpsc_tx *tx;
    int64_t first, n;
} feeder_arg;

static void *feeder(void *p) {
    feeder_arg *f = p;
    for (int64_t i = 0; i < f->n; i++) {
        int64_t v = f->first + i;
        ck_assert_tr_ok(tr_mpsc_send(f->tx, &v, TR_TEST_DEADLINE()));
    }
    ck_assert_tr_ok(tr_mpsc_tx_drop(&f->tx));
    return NULL;
}

typedef struct {
    tr_mpsc_rx *rx[2];
    int64_t got[2];
} selector_arg;

static void *selector(void *p) {
    selector_arg *s = p;
    int64_t next[2] = {0, 1000000}, v[2];
    bool closed[2] = {false, false};
    while (!closed[0] || !closed[1]) {
        tr_clause c[2];
        for (int k = 0; k < 2; k++) {
            if (closed[k])
                tr_clause_never(&c[k]);
            else
                ck_assert_tr_ok(tr_mpsc_recv_clause(&c[k], s->rx[k], &v[k]));
        }
        int i = tr_select(c, 2, TR_TEST_DEADLINE(), TR_SELECT_RANDOM);
        ck_assert_int_ge(i, 0);
        if (c[i].result == TR_ECLOSED) {
            closed[i] = true;
            continue;
        }
        ck_assert_int_eq(c[i].result, 0);
        ck_assert_int_eq(v[i], next[i]); /* FIFO per channel */
        next[i]++;
        s->got[i]++;
    }
    return NULL;
}

/* A task selects over two receivers (bounded and unbounded) fed by a task
 * on another worker and a plain thread. */
START_TEST(test_select_two_receivers) {
    tr_runtime *rt = tr_test_runtime(4);
    tr_mpsc_tx *ta, *tb;
    selector_arg s = {{NULL, NULL}, {0, 0}};
    ck_assert_tr_ok(tr_mpsc_new(&ta, &s.rx[0], 4, V));
    ck_assert_tr_ok(tr_mpsc_unbounded_new(&tb, &s.rx[1], V));
    enum { N = 3000 };
    feeder_arg fa = {ta, 0, N}, fb = {tb, 1000000, N};
    tr_task *sel = spawn_on(rt, 0, selector, &s);
    tr_task *f = spawn_on(rt, 2, feeder, &fa);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, feeder, &fb), 0);
    join_rc(f);
    pthread_join(th, NULL);
    join_rc(sel);
    ck_assert_int_eq(s.got[0], N);
    ck_assert_int_eq(s.got[1], N);
    ck_assert_tr_ok(tr_mpsc_rx_drop(&s.rx[0]));
    ck_assert_tr_ok(tr_mpsc_rx_drop(&s.rx[1]));
    tr_runtime_free(&rt);
}
END_TEST

/* The clauses not chosen take nothing; a timed out select leaves nothing
 * queued. */
START_TEST(test_select_takes_from_one) {
    tr_mpsc_tx *ta, *tb;
    tr_mpsc_rx *ra, *rb;
    ck_assert_tr_ok(tr_mpsc_new(&ta, &ra, 2, V));
    ck_assert_tr_ok(tr_mpsc_unbounded_new(&tb, &rb, V));
    int64_t va = -1, vb = -1, buf[4];
    tr_clause c[2];
    ck_assert_tr_ok(tr_mpsc_recv_clause(&c[0], ra, &va));
    ck_assert_tr_ok(tr_mpsc_recv_many_clause(&c[1], rb, buf, 4));
    ck_assert_int_eq(tr_select(c, 2, tr_after_ms(10), 0), TR_ETIMEDOUT);
    ck_assert_uint_eq(stats(ra).waiting_receivers, 0);
    ck_assert_uint_eq(stats(rb).waiting_receivers, 0);
    int64_t x = 1, y = 2;
    ck_assert_tr_ok(tr_mpsc_try_send(ta, &x));
    ck_assert_tr_ok(tr_mpsc_try_send(tb, &y));
    ck_assert_tr_ok(tr_mpsc_try_send(tb, &y));
    ck_assert_tr_ok(tr_mpsc_recv_clause(&c[0], ra, &va));
    ck_assert_tr_ok(tr_mpsc_recv_many_clause(&c[1], rb, buf, 4));
    ck_assert_int_eq(tr_select(c, 2, TR_TEST_DEADLINE(), 0), 0);
    ck_assert_int_eq(c[0].result, 0);
    ck_assert_int_eq(va, 1);
    ck_assert_uint_eq(tr_mpsc_rx_len(rb), 2); /* untouched */
    ck_assert_tr_ok(tr_mpsc_recv_clause(&c[0], ra, &va));
    ck_assert_tr_ok(tr_mpsc_recv_many_clause(&c[1], rb, buf, 4));
    ck_assert_int_eq(tr_select(c, 2, TR_TEST_DEADLINE(), 0), 1);
    ck_assert_int_eq(c[1].result, 2);
    ck_assert_int_eq(buf[0], 2);
    ck_assert_int_eq(buf[1], 2);
    /* send clauses: a full channel and one with room */
    ck_assert_tr_ok(tr_mpsc_try_send(ta, &x));
    ck_assert_tr_ok(tr_mpsc_try_send(ta, &x)); /* ta full */
    x = 5;
    ck_assert_tr_ok(tr_mpsc_send_clause(&c[0], ta, &x));
    ck_assert_tr_ok(tr_mpsc_send_clause(&c[1], tb, &x));
    ck_assert_int_eq(tr_select(c, 2, TR_TEST_DEADLINE(), 0), 1);
    ck_assert_int_eq(c[1].result, 0);
    ck_assert_uint_eq(tr_mpsc_rx_len(ra), 2);
    ck_assert_uint_eq(stats(ra).waiting_senders, 0);
    ck_assert_tr_ok(tr_mpsc_try_recv(rb, &vb));
    ck_assert_int_eq(vb, 5);
    /* a closed channel is an event: a send clause reports TR_ECLOSED */
    tr_mpsc_permit p;
    ck_assert_tr_ok(tr_mpsc_rx_close(rb));
    ck_assert_tr_ok(tr_mpsc_reserve_clause(&c[0], ta, &p));
    ck_assert_tr_ok(tr_mpsc_send_clause(&c[1], tb, &x));
    ck_assert_int_eq(tr_select(c, 2, TR_TEST_DEADLINE(), 0), 1);
    ck_assert_int_eq(c[1].result, TR_ECLOSED);
    ck_assert_uint_eq(tr_mpsc_permit_len(&p), 0);
    ck_assert_uint_eq(stats(ra).waiting_senders, 0);
    ck_assert_uint_eq(tr_mpsc_capacity(ta), 0);
    ck_assert_tr_ok(tr_mpsc_tx_drop(&ta));
    ck_assert_tr_ok(tr_mpsc_tx_drop(&tb));
    ck_assert_tr_ok(tr_mpsc_rx_drop(&ra));
    ck_assert_tr_ok(tr_mpsc_rx_drop(&rb));
}
END_TEST

/* Clauses that wait and are completed by a waker: a send clause gets the
 * freed slot, a reserve_many clause that had a partial grant gives it
 * back when another clause wins, a closed clause fires on close. */
typedef struct {
    tr_clause c[2];
    int which;
} sel_wait;

static void *select_wait(void *p) {
    sel_wait *s = p;
    s->which = tr_select(s->c, 2, TR_TEST_DEADLINE(), 0);
    return NULL;
}

START_TEST(test_select_wakers) {
    tr_runtime *rt = tr_test_runtime(2);
    tr_mpsc_tx *ta, *tc;
    tr_mpsc_rx *ra, *rc;
    ck_assert_tr_ok(tr_mpsc_new(&ta, &ra, 2, V));
    ck_assert_tr_ok(tr_mpsc_new(&tc, &rc, 2, V));
    int64_t x = 1, out = 0, y = 0;
    ck_assert_tr_ok(tr_mpsc_try_send(ta, &x));
    ck_assert_tr_ok(tr_mpsc_try_send(ta, &x));
    /* 1: send to full ta | recv on empty rc; then a slot frees in ta */
    sel_wait s;
    int64_t val = 42;
    ck_assert_tr_ok(tr_mpsc_send_clause(&s.c[0], ta, &val));
    ck_assert_tr_ok(tr_mpsc_recv_clause(&s.c[1], rc, &y));
    tr_task *t = spawn_on(rt, 1, select_wait, &s);
    await_senders(ra, 1);
    await_receivers(rc, 1);
    ck_assert_tr_ok(tr_mpsc_recv(ra, &out, TR_TEST_DEADLINE()));
    join_rc(t);
    ck_assert_int_eq(s.which, 0);
    ck_assert_int_eq(s.c[0].result, 0);
    ck_assert_uint_eq(stats(rc).waiting_receivers, 0);
    ck_assert_tr_ok(tr_mpsc_recv(ra, &out, TR_TEST_DEADLINE()));
    ck_assert_tr_ok(tr_mpsc_recv(ra, &out, TR_TEST_DEADLINE()));
    ck_assert_int_eq(out, 42);
    /* 2: reserve_many(2) on ta with one slot held elsewhere | recv rc */
    tr_mpsc_permit held, got;
    ck_assert_tr_ok(tr_mpsc_try_reserve(ta, &held));
    ck_assert_tr_ok(tr_mpsc_reserve_many_clause(&s.c[0], ta, &got, 2));
    ck_assert_tr_ok(tr_mpsc_recv_clause(&s.c[1], rc, &y));
    t = spawn_on(rt, 1, select_wait, &s);
    await_senders(ra, 1);
    await_receivers(rc, 1);
    ck_assert_uint_eq(tr_mpsc_capacity(ta), 0); /* one slot granted to the clause */
    x = 77;
    ck_assert_tr_ok(tr_mpsc_try_send(tc, &x));
    join_rc(t);
    ck_assert_int_eq(s.which, 1);
    ck_assert_int_eq(y, 77);
    ck_assert_uint_eq(tr_mpsc_permit_len(&got), 0);
    ck_assert_uint_eq(tr_mpsc_capacity(ta), 1); /* given back */
    ck_assert_uint_eq(stats(ra).waiting_senders, 0);
    /* 3: the same, but the reservation completes */
    ck_assert_tr_ok(tr_mpsc_reserve_many_clause(&s.c[0], ta, &got, 2));
    ck_assert_tr_ok(tr_mpsc_recv_clause(&s.c[1], rc, &y));
    t = spawn_on(rt, 1, select_wait, &s);
    await_senders(ra, 1);
    ck_assert_tr_ok(tr_mpsc_permit_release(&held));
    join_rc(t);
    ck_assert_int_eq(s.which, 0);
    ck_assert_int_eq(s.c[0].result, 0);
    ck_assert_uint_eq(tr_mpsc_permit_len(&got), 2);
    ck_assert_tr_ok(tr_mpsc_permit_release(&got));
    /* 4: closed clause | recv rc; the receiver of ta closes */
    ck_assert_tr_ok(tr_mpsc_tx_closed_clause(&s.c[0], ta));
    ck_assert_tr_ok(tr_mpsc_recv_clause(&s.c[1], rc, &y));
    t = spawn_on(rt, 1, select_wait, &s);
    await_receivers(rc, 1);
    ck_assert_tr_ok(tr_mpsc_rx_close(ra));
    join_rc(t);
    ck_assert_int_eq(s.which, 0);
    ck_assert_int_eq(s.c[0].result, 0);
    /* 5: recv clause woken by the last sender's drop */
    ck_assert_tr_ok(tr_mpsc_recv_clause(&s.c[0], rc, &y));
    tr_clause_never(&s.c[1]);
    t = spawn_on(rt, 1, select_wait, &s);
    await_receivers(rc, 1);
    ck_assert_tr_ok(tr_mpsc_tx_drop(&tc));
    join_rc(t);
    ck_assert_int_eq(s.which, 0);
    ck_assert_int_eq(s.c[0].result, TR_ECLOSED);
    ck_assert_tr_ok(tr_mpsc_tx_drop(&ta));
    ck_assert_tr_ok(tr_mpsc_rx_drop(&ra));
    ck_assert_tr_ok(tr_mpsc_rx_drop(&rc));
    tr_runtime_free(&rt);
}
END_TEST

/* ---- bad input ------------------------------------------------------------------- */

START_TEST(test_bad_input) {
    tr_mpsc_tx *tx = NULL, *tx2 = NULL;
    tr_mpsc_rx *rx = NULL;
    tr_mpsc_permit p = TR_MPSC_PERMIT_INIT;
    int64_t v = 1;
    ck_assert_tr_err(tr_mpsc_new(NULL, &rx, 1, V), TR_EINVAL);
    ck_assert_tr_err(tr_mpsc_new(&tx, NULL, 1, V), TR_EINVAL);
    ck_assert_tr_err(tr_mpsc_new(&tx, &rx, 0, V), TR_EINVAL);
    ck_assert_tr_err(tr_mpsc_new(&tx, &rx, 1, 0), TR_EINVAL);
    ck_assert_tr_err(tr_mpsc_new(&tx, &rx, TR_MPSC_MAX_CAPACITY + 1, V), TR_EINVAL);
    ck_assert_tr_err(tr_mpsc_new(&tx, &rx, TR_MPSC_MAX_CAPACITY, 1024), TR_ENOMEM);
    ck_assert_tr_err(tr_mpsc_unbounded_new(&tx, &rx, 0), TR_EINVAL);
    ck_assert_tr_err(tr_mpsc_unbounded_new(NULL, &rx, V), TR_EINVAL);
    ck_assert_ptr_null(tx);
    ck_assert_ptr_null(rx);

    ck_assert_tr_err(tr_mpsc_send(NULL, &v, 0), TR_EINVAL);
    ck_assert_tr_err(tr_mpsc_try_send(NULL, &v), TR_EINVAL);
    ck_assert_tr_err(tr_mpsc_recv(NULL, &v, 0), TR_EINVAL);
    ck_assert_tr_err(tr_mpsc_recv_many(NULL, &v, 1, 0), TR_EINVAL);
    ck_assert_tr_err(tr_mpsc_try_recv(NULL, &v), TR_EINVAL);
    ck_assert_tr_err(tr_mpsc_reserve(NULL, &p, 0), TR_EINVAL);
    ck_assert_tr_err(tr_mpsc_try_reserve_many(NULL, &p, 1), TR_EINVAL);
    ck_assert_tr_err(tr_mpsc_tx_closed(NULL, 0), TR_EINVAL);
    ck_assert_tr_err(tr_mpsc_tx_clone(NULL, &tx2), TR_EINVAL);
    ck_assert_tr_err(tr_mpsc_tx_drop(NULL), TR_EINVAL);
    ck_assert_tr_err(tr_mpsc_tx_drop(&tx), TR_EINVAL);
    ck_assert_tr_err(tr_mpsc_rx_drop(NULL), TR_EINVAL);
    ck_assert_tr_err(tr_mpsc_rx_drop(&rx), TR_EINVAL);
    ck_assert_tr_err(tr_mpsc_rx_close(NULL), TR_EINVAL);
    ck_assert_tr_err(tr_mpsc_permit_send(NULL, &v), TR_EINVAL);
    ck_assert_tr_err(tr_mpsc_permit_send(&p, &v), TR_EINVAL);
    ck_assert_tr_err(tr_mpsc_permit_release(NULL), TR_EINVAL);
    ck_assert_tr_err(tr_mpsc_rx_stats(NULL, NULL), TR_EINVAL);
    ck_assert(!tr_mpsc_tx_is_closed(NULL));
    ck_assert(!tr_mpsc_rx_is_closed(NULL));
    ck_assert(tr_mpsc_rx_is_empty(NULL));
    ck_assert(!tr_mpsc_same_channel(NULL, NULL));
    ck_assert_uint_eq(tr_mpsc_capacity(NULL), 0);
    ck_assert_uint_eq(tr_mpsc_rx_len(NULL), 0);
    ck_assert_uint_eq(tr_mpsc_permit_len(NULL), 0);

    ck_assert_tr_ok(tr_mpsc_new(&tx, &rx, 2, V));
    ck_assert_tr_err(tr_mpsc_send(tx, NULL, 0), TR_EINVAL);
    ck_assert_tr_err(tr_mpsc_try_send(tx, NULL), TR_EINVAL);
    ck_assert_tr_err(tr_mpsc_recv(rx, NULL, 0), TR_EINVAL);
    ck_assert_tr_err(tr_mpsc_try_recv(rx, NULL), TR_EINVAL);
    ck_assert_tr_err(tr_mpsc_reserve(tx, NULL, 0), TR_EINVAL);
    ck_assert_tr_err(tr_mpsc_tx_clone(tx, NULL), TR_EINVAL);
    ck_assert_tr_err(tr_mpsc_rx_stats(rx, NULL), TR_EINVAL);
    /* clauses with bad arguments have no ops, so the select refuses */
    tr_clause c[2];
    ck_assert_tr_err(tr_mpsc_recv_clause(&c[0], NULL, &v), TR_EINVAL);
    ck_assert_ptr_null(c[0].ops);
    ck_assert_tr_ok(tr_mpsc_recv_clause(&c[1], rx, &v));
    ck_assert_int_eq(tr_select(c, 2, 0, 0), TR_EINVAL);
    ck_assert_tr_err(tr_mpsc_send_clause(&c[0], tx, NULL), TR_EINVAL);
    ck_assert_tr_err(tr_mpsc_recv_many_clause(&c[0], rx, NULL, 1), TR_EINVAL);
    ck_assert_tr_err(tr_mpsc_reserve_clause(&c[0], tx, NULL), TR_EINVAL);
    ck_assert_tr_err(tr_mpsc_reserve_many_clause(&c[0], tx, &p, 3), TR_EINVAL);
    ck_assert_tr_err(tr_mpsc_tx_closed_clause(&c[0], NULL), TR_EINVAL);
    ck_assert_tr_err(tr_mpsc_recv_clause(NULL, rx, &v), TR_EINVAL);
    ck_assert_uint_eq(tr_mpsc_rx_len(rx), 0); /* nothing happened */
    ck_assert_uint_eq(tr_mpsc_capacity(tx), 2);

    /* handles whose count reached zero, while the memory still lives */
    tr_mpsc_tx *stale = tx;
    ck_assert_tr_ok(tr_mpsc_tx_drop(&tx));
    ck_assert_ptr_null(tx);
    ck_assert_tr_err(tr_mpsc_tx_drop(&tx), TR_EINVAL); /* double drop */
    ck_assert_tr_err(tr_mpsc_send(stale, &v, 0), TR_EINVAL);
    ck_assert_tr_err(tr_mpsc_try_send(stale, &v), TR_EINVAL);
    ck_assert_tr_err(tr_mpsc_try_reserve(stale, &p), TR_EINVAL);
    ck_assert_tr_err(tr_mpsc_tx_clone(stale, &tx2), TR_EINVAL);
    ck_assert_tr_err(tr_mpsc_tx_drop(&stale), TR_EINVAL);
    ck_assert_tr_err(tr_mpsc_recv(rx, &v, TR_TEST_DEADLINE()), TR_ECLOSED);
    ck_assert_tr_ok(tr_mpsc_rx_drop(&rx));
    ck_assert_tr_err(tr_mpsc_rx_drop(&rx), TR_EINVAL);
}
END_TEST

/* ---- stress: exactly once ------------------------------------------------------------ */

#define ST_TASKS   4
#define ST_THREADS 2
#define ST_PER     2000
#define ST_IDS     ((ST_TASKS + ST_THREADS) * ST_PER)

static atomic_uchar st_sent[ST_IDS], st_seen[ST_IDS];
static atomic_int st_cancelled_sends;

static void st_drop(void *v, void *ctx) {
    (void)ctx;
    int64_t id = *(int64_t *)v;
    ck_assert(id >= 0 && id < ST_IDS);
    atomic_fetch_add(&st_seen[id], 1);
}

typedef struct {
    tr_mpsc_tx *tx;
    int64_t first;
    int unbounded;
} st_prod;

/* Sends its ids with a mix of calls; stops when the receiver is gone or
 * the task is cancelled.  A value counts as sent only on success. */
static void *st_producer(void *p) {
    st_prod *a = p;
    unsigned seed = (unsigned)a->first + 1;
    for (int64_t id = a->first; id < a->first + ST_PER; id++) {
        int rc, mode = rand_r(&seed) % 5;
        if (a->unbounded && mode == 2)
            mode = 0;
        switch (mode) {
        case 0: rc = tr_mpsc_send(a->tx, &id, TR_TEST_DEADLINE()); break;
        case 1:
            while ((rc = tr_mpsc_try_send(a->tx, &id)) == TR_EFULL) {
                int y = tr_task_self() ? tr_yield() : (sched_yield(), 0);
                if (y != 0) {
                    rc = y;
                    break;
                }
            }
            break;
        case 2: {
            tr_mpsc_permit pm;
            rc = tr_mpsc_reserve(a->tx, &pm, TR_TEST_DEADLINE());
            if (rc == 0)
                ck_assert_tr_ok(tr_mpsc_permit_send(&pm, &id));
            break;
        }
        case 3: rc = tr_mpsc_send(a->tx, &id, tr_after_us(rand_r(&seed) % 50)); break;
        default: {
            tr_clause c;
            ck_assert_tr_ok(tr_mpsc_send_clause(&c, a->tx, &id));
            rc = tr_select(&c, 1, TR_TEST_DEADLINE(), 0);
            if (rc == 0)
                rc = c.result;
            break;
        }
        }
        if (rc == 0) {
            atomic_store(&st_sent[id], 1);
        } else if (rc == TR_ETIMEDOUT) {
            continue; /* not sent; the value is still ours */
        } else if (rc == TR_ECANCELED) {
            atomic_fetch_add(&st_cancelled_sends, 1);
            break;
        } else {
            ck_assert_int_eq(rc, TR_ECLOSED);
            break;
        }
    }
    ck_assert_tr_ok(tr_mpsc_tx_drop(&a->tx));
    return NULL;
}

typedef struct {
    tr_mpsc_rx *rx;
    long stop_after; /* > 0: drop the receiver after this many */
    long got;
    int ended;       /* 1: saw TR_ECLOSED, 2: dropped the receiver */
} st_cons;

static void st_take(int64_t id) {
    ck_assert(id >= 0 && id < ST_IDS);
    ck_assert_int_eq(atomic_fetch_add(&st_seen[id], 1), 0);
}

static void *st_consumer(void *p) {
    st_cons *c = p;
    unsigned seed = 7;
    for (;;) {
        int64_t buf[16];
        int rc, mode = rand_r(&seed) % 4;
        if (mode == 0) {
            rc = tr_mpsc_recv_many(c->rx, buf, 1 + rand_r(&seed) % 16, TR_TEST_DEADLINE());
        } else if (mode == 1) {
            rc = tr_mpsc_recv(c->rx, buf, tr_after_us(rand_r(&seed) % 100));
            rc = rc == 0 ? 1 : rc;
        } else {
            rc = tr_mpsc_recv(c->rx, buf, TR_TEST_DEADLINE());
            rc = rc == 0 ? 1 : rc;
        }
        if (rc == TR_ETIMEDOUT)
            continue;
        if (rc == TR_ECANCELED)
            return NULL; /* a new consumer takes over */
        if (rc == TR_ECLOSED) {
            c->ended = 1;
            return NULL;
        }
        ck_assert_int_gt(rc, 0);
        for (int i = 0; i < rc; i++)
            st_take(buf[i]);
        c->got += rc;
        if (c->stop_after > 0 && c->got >= c->stop_after) {
            ck_assert_tr_ok(tr_mpsc_rx_drop(&c->rx));
            c->ended = 2;
            return NULL;
        }
    }
}

/* _i: bit 0 unbounded, bit 1 drop the receiver midway (else drain to the
 * end, with the first consumer task cancelled and replaced). */
START_TEST(test_stress_exactly_once) {
    int unbounded = _i & 1, drop_midway = (_i >> 1) & 1;
    memset(st_sent, 0, sizeof st_sent);
    memset(st_seen, 0, sizeof st_seen);
    atomic_store(&st_cancelled_sends, 0);
    tr_runtime *rt = tr_test_runtime(4);
    tr_chan_opts o = {st_drop, NULL};
    tr_mpsc_tx *tx;
    tr_mpsc_rx *rx;
    ck_assert_tr_ok(unbounded ? tr_mpsc_unbounded_new_ex(&tx, &rx, V, &o)
                              : tr_mpsc_new_ex(&tx, &rx, 64, V, &o));
    st_prod prods[ST_TASKS + ST_THREADS];
    for (int i = 0; i < ST_TASKS + ST_THREADS; i++) {
        ck_assert_tr_ok(tr_mpsc_tx_clone(tx, &prods[i].tx));
        prods[i].first = (int64_t)i * ST_PER;
        prods[i].unbounded = unbounded;
    }
    ck_assert_tr_ok(tr_mpsc_tx_drop(&tx));
    st_cons cons = {rx, drop_midway ? ST_IDS / 4 : 0, 0, 0};
    tr_task *ct = spawn_on(rt, 0, st_consumer, &cons);
    tr_task *pt[ST_TASKS];
    for (int i = 0; i < ST_TASKS; i++)
        pt[i] = spawn_on(rt, i, st_producer, &prods[i]);
    pthread_t th[ST_THREADS];
    for (int i = 0; i < ST_THREADS; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, st_producer, &prods[ST_TASKS + i]), 0);
    /* random cancellation: two producer tasks, and (when draining) the
     * consumer, which a second consumer on another worker replaces */
    tr_sleep_ms(2);
    ck_assert_tr_ok(tr_task_cancel(pt[1]));
    if (!drop_midway) {
        ck_assert_tr_ok(tr_task_cancel(ct));
        join_rc(ct);
        ck_assert_int_eq(cons.ended, 0);
        ct = spawn_on(rt, 2, st_consumer, &cons);
    }
    tr_sleep_ms(1);
    ck_assert_tr_ok(tr_task_cancel(pt[3]));
    for (int i = 0; i < ST_THREADS; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < ST_TASKS; i++)
        join_rc(pt[i]);
    join_rc(ct);
    ck_assert_int_eq(cons.ended, drop_midway ? 2 : 1);
    if (cons.rx)
        ck_assert_tr_ok(tr_mpsc_rx_drop(&cons.rx));
    long sent = 0, seen = 0;
    for (int i = 0; i < ST_IDS; i++) {
        ck_assert_msg(atomic_load(&st_seen[i]) == atomic_load(&st_sent[i]),
                      "id %d: sent %d, received or destroyed %d times", i,
                      atomic_load(&st_sent[i]), atomic_load(&st_seen[i]));
        sent += atomic_load(&st_sent[i]);
        seen += atomic_load(&st_seen[i]);
    }
    ck_assert_int_eq(sent, seen);
    ck_assert_int_gt(sent, 0);
    if (!drop_midway)
        ck_assert_int_eq(cons.got, sent); /* drained: all received */
    tr_runtime_free(&rt);
}
END_TEST

/* Ping-pong between a producer and a consumer on different workers over
 * a channel of capacity 1: every send and every receive parks and is
 * woken, so the hand-over paths run millions of times under the
 * sanitizers' eyes. */
typedef struct {
    tr_mpsc_tx *tx;
    tr_mpsc_rx *rx;
    int n;
    int64_t sum;
} pp_arg;

static void *pp_produce(void *p) {
    pp_arg *a = p;
    for (int64_t i = 0; i < a->n; i++)
        ck_assert_tr_ok(tr_mpsc_send(a->tx, &i, TR_TEST_DEADLINE()));
    ck_assert_tr_ok(tr_mpsc_tx_drop(&a->tx));
    return NULL;
}

static void *pp_consume(void *p) {
    pp_arg *a = p;
    int64_t v;
    int rc;
    while ((rc = tr_mpsc_recv(a->rx, &v, TR_TEST_DEADLINE())) == 0)
        a->sum += v;
    ck_assert_int_eq(rc, TR_ECLOSED);
    return NULL;
}

START_TEST(test_handoff_pingpong) {
    tr_runtime *rt = tr_test_runtime(2);
    pp_arg a = {NULL, NULL, 20000, 0};
    ck_assert_tr_ok(_i ? tr_mpsc_unbounded_new(&a.tx, &a.rx, V) : tr_mpsc_new(&a.tx, &a.rx, 1, V));
    tr_task *c = spawn_on(rt, 0, pp_consume, &a);
    if (_i < 2) {
        tr_task *p = spawn_on(rt, 1, pp_produce, &a);
        join_rc(p);
    } else {
        pp_produce(&a); /* a plain thread feeding a task */
    }
    join_rc(c);
    ck_assert_int_eq(a.sum, (int64_t)a.n * (a.n - 1) / 2);
    ck_assert_tr_ok(tr_mpsc_rx_drop(&a.rx));
    tr_runtime_free(&rt);
}
END_TEST

/* ---- one worker's tasks among themselves -------------------------------------------
 *
 * Producers and consumer that are tasks of one worker: the lock is then
 * biased to that worker's thread (plain stores), and a sender claims the
 * parked consumer with a load and a store.  The consumer's short
 * deadlines make some of those claims find it timed out and not yet
 * resumed.  _i: 0 recv, 1 recv_many, 2 unbounded. */
#define SW_PRODUCERS 3
#define SW_PER       3000

typedef struct {
    tr_mpsc_tx *tx;
    int64_t first;
} sw_prod;

static void *sw_produce(void *p) {
    sw_prod *a = p;
    unsigned seed = (unsigned)a->first + 5;
    for (int64_t v = a->first; v < a->first + SW_PER; v++) {
        ck_assert_tr_ok(tr_mpsc_send(a->tx, &v, TR_TEST_DEADLINE()));
        if (rand_r(&seed) % 8 == 0)
            tr_yield();
    }
    ck_assert_tr_ok(tr_mpsc_tx_drop(&a->tx));
    return NULL;
}

typedef struct {
    tr_mpsc_rx *rx;
    int many;
    int64_t sum, got, timeouts;
} sw_cons;

static void *sw_consume(void *p) {
    sw_cons *c = p;
    unsigned seed = 9;
    for (;;) {
        int64_t buf[4];
        int64_t dl = rand_r(&seed) % 3 == 0 ? tr_after_us(rand_r(&seed) % 30) : TR_TEST_DEADLINE();
        int rc = c->many ? tr_mpsc_recv_many(c->rx, buf, 4, dl) : tr_mpsc_recv(c->rx, buf, dl);
        if (rc == TR_ETIMEDOUT) {
            c->timeouts++;
            continue;
        }
        if (rc == TR_ECLOSED)
            return NULL;
        if (!c->many)
            ck_assert_int_eq(rc, 0);
        int n = c->many ? rc : 1;
        ck_assert_int_gt(n, 0);
        for (int i = 0; i < n; i++)
            c->sum += buf[i];
        c->got += n;
    }
}

START_TEST(test_same_worker_handoff) {
    tr_runtime *rt = tr_test_runtime(2);
    tr_mpsc_tx *tx;
    tr_mpsc_rx *rx;
    ck_assert_tr_ok(_i == 2 ? tr_mpsc_unbounded_new(&tx, &rx, V) : tr_mpsc_new(&tx, &rx, 1, V));
    sw_cons c = {rx, _i == 1, 0, 0, 0};
    tr_task *ct = spawn_on(rt, 1, sw_consume, &c);
    sw_prod a[SW_PRODUCERS];
    tr_task *pt[SW_PRODUCERS];
    for (int i = 0; i < SW_PRODUCERS; i++) {
        a[i].first = (int64_t)i * SW_PER;
        ck_assert_tr_ok(tr_mpsc_tx_clone(tx, &a[i].tx));
        pt[i] = spawn_on(rt, 1, sw_produce, &a[i]);
    }
    ck_assert_tr_ok(tr_mpsc_tx_drop(&tx));
    for (int i = 0; i < SW_PRODUCERS; i++)
        join_rc(pt[i]);
    join_rc(ct);
    int64_t n = SW_PRODUCERS * SW_PER;
    ck_assert_int_eq(c.got, n);
    ck_assert_int_eq(c.sum, n * (n - 1) / 2);
    ck_assert_tr_ok(tr_mpsc_rx_drop(&rx));
    tr_runtime_free(&rt);
}
END_TEST

/* The bias changing hands: rounds in which one worker's tasks have the
 * channel to themselves (long enough to bias the lock to that thread),
 * then a task of another worker and a plain thread (which also asks for
 * the capacity) send at the same time as that worker's producer, so the
 * bias is revoked while its owner is busy in the channel.  Each round
 * doubles the streak the next bias needs.  Values carry their producer
 * and sequence number: the consumer checks that nothing is lost,
 * duplicated or reordered per producer. */
#define BH_ROUNDS 8
#define BH_SOLO   600
#define BH_MIXED  300
#define BH_PRODS  3 /* 0: worker 0's task, 1: worker 1's task, 2: a plain thread */

typedef struct {
    tr_mpsc_tx *tx;
    int id, n;
    int64_t *seq;
} bh_prod;

static void *bh_produce(void *p) {
    bh_prod *a = p;
    for (int i = 0; i < a->n; i++) {
        int64_t v = (int64_t)a->id << 32 | (*a->seq)++;
        ck_assert_tr_ok(tr_mpsc_send(a->tx, &v, TR_TEST_DEADLINE()));
        if (a->id == 2 && i % 16 == 0)
            ck_assert_uint_le(tr_mpsc_capacity(a->tx), 16);
    }
    ck_assert_tr_ok(tr_mpsc_tx_drop(&a->tx));
    return NULL;
}

typedef struct {
    tr_mpsc_rx *rx;
    int64_t next[BH_PRODS];
    int64_t got;
} bh_cons;

static void *bh_consume(void *p) {
    bh_cons *c = p;
    int64_t v;
    int rc;
    while ((rc = tr_mpsc_recv(c->rx, &v, TR_TEST_DEADLINE())) == 0) {
        int id = (int)(v >> 32);
        ck_assert(id >= 0 && id < BH_PRODS);
        ck_assert_int_eq(v & 0xffffffff, c->next[id]);
        c->next[id]++;
        c->got++;
    }
    ck_assert_int_eq(rc, TR_ECLOSED);
    return NULL;
}

START_TEST(test_bias_changes_hands) {
    tr_runtime *rt = tr_test_runtime(2);
    tr_mpsc_tx *tx;
    tr_mpsc_rx *rx;
    ck_assert_tr_ok(tr_mpsc_new(&tx, &rx, 16, V));
    bh_cons c = {rx, {0}, 0};
    tr_task *ct = spawn_on(rt, 0, bh_consume, &c);
    int64_t seq[BH_PRODS] = {0};
    int64_t total = 0;
    for (int r = 0; r < BH_ROUNDS; r++) {
        /* solo: worker 0's producer and the consumer */
        bh_prod solo = {NULL, 0, BH_SOLO << (r / 2), &seq[0]};
        ck_assert_tr_ok(tr_mpsc_tx_clone(tx, &solo.tx));
        join_rc(spawn_on(rt, 0, bh_produce, &solo));
        total += solo.n;
        /* mixed: all three at once */
        bh_prod m[BH_PRODS];
        for (int i = 0; i < BH_PRODS; i++) {
            m[i] = (bh_prod){NULL, i, BH_MIXED, &seq[i]};
            ck_assert_tr_ok(tr_mpsc_tx_clone(tx, &m[i].tx));
        }
        tr_task *t0 = spawn_on(rt, 0, bh_produce, &m[0]);
        tr_task *t1 = spawn_on(rt, 1, bh_produce, &m[1]);
        bh_produce(&m[2]);
        join_rc(t0);
        join_rc(t1);
        total += BH_PRODS * BH_MIXED;
    }
    ck_assert_tr_ok(tr_mpsc_tx_drop(&tx));
    join_rc(ct);
    ck_assert_int_eq(c.got, total);
    for (int i = 0; i < BH_PRODS; i++)
        ck_assert_int_eq(c.next[i], seq[i]);
    ck_assert_tr_ok(tr_mpsc_rx_drop(&rx));
    tr_runtime_free(&rt);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("mpsc");
    TCase *tc = tr_tcase("tokio");
    tcase_add_test(tc, test_send_recv_with_buffer);
    tcase_add_loop_test(tc, test_async_send_recv, 0, 4);
    tcase_add_test(tc, test_recv_many_with_buffer);
    tcase_add_loop_test(tc, test_recv_many_limits, 0, 2);
    tcase_add_loop_test(tc, test_recv_many_closed_and_idle, 0, 2);
    tcase_add_test(tc, test_reserve_disarm);
    tcase_add_test(tc, test_start_send_past_cap);
    tcase_add_test(tc, test_send_recv_unbounded);
    tcase_add_test(tc, test_send_recv_buffer_limited);
    tcase_add_loop_test(tc, test_recv_close_gets_none_idle, 0, 2);
    tcase_add_test(tc, test_recv_close_gets_none_reserved);
    tcase_add_loop_test(tc, test_failed_reserve_many_wakes_closed_receiver, 0, 2);
    tcase_add_test(tc, test_assigned_reserve_then_close);
    tcase_add_loop_test(tc, test_try_send_fail, 0, 2);
    tcase_add_test(tc, test_reserve_many_edges);
    tcase_add_test(tc, test_try_reserve_fails);
    tcase_add_loop_test(tc, test_reserve_many_and_send, 0, 2);
    tcase_add_test(tc, test_try_reserve_many_full);
    tcase_add_test(tc, test_release_permits_wakes_reserver);
    tcase_add_loop_test(tc, test_last_permit_wakes_closed_receiver, 0, 3);
    tcase_add_test(tc, test_permit_available_not_acquired_close);
    tcase_add_loop_test(tc, test_dropping_rx_closes_channel, 0, 2);
    tcase_add_test(tc, test_blocking_recv_and_send);
    tcase_add_test(tc, test_try_recv_bounded);
    tcase_add_test(tc, test_try_recv_unbounded);
    tcase_add_loop_test(tc, test_try_recv_after_close, 0, 2);
    tcase_add_test(tc, test_send_timeout);
    tcase_add_test(tc, test_tx_capacity);
    tcase_add_loop_test(tc, test_rx_is_closed_is_empty_len, 0, 2);
    tcase_add_test(tc, test_is_empty_32_msgs);
    suite_add_tcase(s, tc);

    tc = tr_tcase("more");
    tcase_add_loop_test(tc, test_fifo_waiting_senders, 0, 2);
    tcase_add_test(tc, test_fifo_reserve_many_head);
    tcase_add_loop_test(tc, test_timeouts_keep_values, 0, 2);
    tcase_add_test(tc, test_cancel_blocked);
    tcase_add_loop_test(tc, test_tx_closed, 0, 2);
    tcase_add_loop_test(tc, test_drop_rx_destroys_queued, 0, 2);
    tcase_add_loop_test(tc, test_destructor_reenters, 0, 2);
    tcase_add_test(tc, test_unbounded_blocks_after_burst);
    tcase_add_test(tc, test_select_two_receivers);
    tcase_add_test(tc, test_select_takes_from_one);
    tcase_add_test(tc, test_select_wakers);
    tcase_add_test(tc, test_bad_input);
    suite_add_tcase(s, tc);

    tc = tr_tcase("stress");
    tcase_add_loop_test(tc, test_stress_exactly_once, 0, 4);
    tcase_add_loop_test(tc, test_handoff_pingpong, 0, 3);
    tcase_add_loop_test(tc, test_same_worker_handoff, 0, 3);
    tcase_add_test(tc, test_bias_changes_hands);
    suite_add_tcase(s, tc);
    return s;
}

TR_TEST_MAIN(suite)
