/* test_broadcast.c — the broadcast channel.
 *
 * First tokio's tests/sync_broadcast.rs, scenario by scenario (a "poll
 * that returns Pending" becomes a task parked in tr_broadcast_recv, "is
 * woken" becomes its join).  Then what a threaded C channel needs: senders
 * on four workers and on plain threads at once, slow receivers whose lag
 * counts add up exactly (received + missed == sent, per receiver),
 * cancellation and timeouts that take nothing, a destructor that sees every
 * stored value exactly once, the clone hook, select, and bad arguments.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "testutil.h"
#include "tr_broadcast.h"

/* ---- helpers ---------------------------------------------------------------- */

/* Check's assertions record their location on every *passing* check (a
 * write to the parent), which dominates loops that check every value, and
 * is very slow under valgrind.  These report only on failure. */
#define HOT(cond)                                                                    \
    do {                                                                             \
        if (!(cond))                                                                 \
            ck_abort_msg("%s:%d: %s", __FILE__, __LINE__, #cond);                    \
    } while (0)

#define HOT_EQ(a, b)                                                                 \
    do {                                                                             \
        unsigned long long a_ = (unsigned long long)(a), b_ = (unsigned long long)(b); \
        if (a_ != b_)                                                                \
            ck_abort_msg("%s:%d: %s == %s: %llu != %llu", __FILE__, __LINE__, #a, #b, a_, b_); \
    } while (0)

#define HOT_OK(expr)                                                                 \
    do {                                                                             \
        int hr_ = (expr);                                                            \
        if (hr_ != 0)                                                                \
            ck_abort_msg("%s:%d: %s returned %s", __FILE__, __LINE__, #expr,         \
                         tr_strerror_name(hr_));                                     \
    } while (0)


#define RECV_EQ(rx, want)                                                            \
    do {                                                                             \
        uint64_t v_ = 0, m_ = 0;                                                     \
        ck_assert_tr_ok(tr_broadcast_try_recv((rx), &v_, &m_));                      \
        ck_assert_uint_eq(v_, (want));                                               \
    } while (0)

#define EMPTY(rx)                                                                    \
    do {                                                                             \
        uint64_t v_ = 0;                                                             \
        ck_assert_tr_err(tr_broadcast_try_recv((rx), &v_, NULL), TR_EEMPTY);         \
    } while (0)

#define CLOSED(rx)                                                                   \
    do {                                                                             \
        uint64_t v_ = 0;                                                             \
        ck_assert_tr_err(tr_broadcast_try_recv((rx), &v_, NULL), TR_ECLOSED);        \
    } while (0)

#define LAGGED(rx, n)                                                                \
    do {                                                                             \
        uint64_t v_ = 7777, m_ = 0;                                                  \
        ck_assert_tr_err(tr_broadcast_try_recv((rx), &v_, &m_), TR_ELAGGED);         \
        ck_assert_uint_eq(m_, (n));                                                  \
        ck_assert_uint_eq(v_, 7777); /* out untouched */                             \
    } while (0)

static void send_u64(tr_broadcast_tx *tx, uint64_t v) {
    ck_assert_tr_ok(tr_broadcast_send(tx, &v, NULL));
}

static void new_u64(tr_broadcast_tx **tx, tr_broadcast_rx **rx, size_t cap) {
    ck_assert_tr_ok(tr_broadcast_new(tx, rx, cap, sizeof(uint64_t)));
}

/* A destructor that counts, and refuses to see a value twice. */
#define MAXV 400000
static atomic_uchar destroyed_once[MAXV];
static atomic_long destroyed;

static void count_drop(void *value, void *ctx) {
    (void)ctx;
    uint64_t v;
    memcpy(&v, value, sizeof v);
    HOT(v < MAXV);
    unsigned char before = atomic_fetch_add(&destroyed_once[v], 1);
    HOT(before == 0);
    atomic_fetch_add(&destroyed, 1);
}

static void reset_drops(void) {
    for (size_t i = 0; i < MAXV; i++)
        atomic_store(&destroyed_once[i], 0);
    atomic_store(&destroyed, 0);
}

static const tr_chan_opts counting = {count_drop, NULL};

/* Receives on rx in a task or a thread; returns the result, value in *got. */
typedef struct recv_job {
    tr_broadcast_rx *rx;
    uint64_t value;
    uint64_t missed;
    int64_t deadline;
} recv_job;

static void *recv_job_fn(void *arg) {
    recv_job *j = arg;
    int64_t dl = j->deadline ? j->deadline : TR_TEST_DEADLINE();
    return RC(tr_broadcast_recv(j->rx, &j->value, &j->missed, dl));
}

/* Spawns a receive and gives it time to park (correct either way). */
static tr_task *spawn_recv(tr_runtime *rt, int worker, recv_job *j) {
    tr_task *t = spawn_on(rt, worker, recv_job_fn, j);
    tr_sleep_ms(20);
    return t;
}

/* ---- tokio: basic send and receive ------------------------------------------ */

START_TEST(test_send_try_recv_bounded) {
    tr_broadcast_tx *tx;
    tr_broadcast_rx *rx;
    new_u64(&tx, &rx, 16);
    EMPTY(rx);
    size_t n = 0;
    uint64_t v = 42;
    ck_assert_tr_ok(tr_broadcast_send(tx, &v, &n));
    ck_assert_uint_eq(n, 1);
    RECV_EQ(rx, 42);
    EMPTY(rx);
    tr_broadcast_rx_drop(&rx);
    tr_broadcast_tx_drop(&tx);
}
END_TEST

START_TEST(test_send_two_recv) {
    tr_broadcast_tx *tx;
    tr_broadcast_rx *rx1, *rx2;
    new_u64(&tx, &rx1, 16);
    ck_assert_tr_ok(tr_broadcast_subscribe(tx, &rx2));
    EMPTY(rx1);
    EMPTY(rx2);
    size_t n = 0;
    uint64_t v = 1;
    ck_assert_tr_ok(tr_broadcast_send(tx, &v, &n));
    ck_assert_uint_eq(n, 2);
    RECV_EQ(rx1, 1);
    RECV_EQ(rx2, 1);
    EMPTY(rx1);
    EMPTY(rx2);
    tr_broadcast_rx_drop(&rx1);
    tr_broadcast_rx_drop(&rx2);
    tr_broadcast_tx_drop(&tx);
}
END_TEST

/* send_recv_bounded, send_two_recv_bounded: parked receives (tasks on
 * either worker, and a plain thread) all get the value a send hands over. */
START_TEST(test_send_wakes_parked) {
    tr_runtime *rt = tr_test_runtime(2);
    tr_broadcast_tx *tx;
    tr_broadcast_rx *rx1, *rx2, *rx3;
    new_u64(&tx, &rx1, 16);
    ck_assert_tr_ok(tr_broadcast_subscribe(tx, &rx2));
    ck_assert_tr_ok(tr_broadcast_subscribe(tx, &rx3));
    recv_job j1 = {.rx = rx1}, j2 = {.rx = rx2}, j3 = {.rx = rx3};
    tr_task *t1 = spawn_recv(rt, 0, &j1);
    tr_task *t2 = spawn_recv(rt, 1, &j2);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, recv_job_fn, &j3), 0);
    tr_sleep_ms(20);
    size_t n;
    uint64_t v = 5;
    ck_assert_tr_ok(tr_broadcast_send(tx, &v, &n));
    ck_assert_uint_eq(n, 3);
    ck_assert_int_eq(join_rc(t1), 0);
    ck_assert_int_eq(join_rc(t2), 0);
    void *r;
    pthread_join(th, &r);
    ck_assert_int_eq((int)(intptr_t)r, 0);
    ck_assert_uint_eq(j1.value, 5);
    ck_assert_uint_eq(j2.value, 5);
    ck_assert_uint_eq(j3.value, 5);
    EMPTY(rx1);
    /* Second round: one parked, one not; both see the value. */
    t1 = spawn_recv(rt, 1, &j1);
    v = 6;
    ck_assert_tr_ok(tr_broadcast_send(tx, &v, NULL));
    ck_assert_int_eq(join_rc(t1), 0);
    ck_assert_uint_eq(j1.value, 6);
    RECV_EQ(rx2, 6);
    RECV_EQ(rx3, 6);
    tr_broadcast_rx_drop(&rx1);
    tr_broadcast_rx_drop(&rx2);
    tr_broadcast_rx_drop(&rx3);
    tr_broadcast_tx_drop(&tx);
    tr_runtime_free(&rt);
}
END_TEST

/* send_slow_rx */
START_TEST(test_send_slow_rx) {
    tr_runtime *rt = tr_test_runtime(2);
    tr_broadcast_tx *tx;
    tr_broadcast_rx *rx1, *rx2;
    new_u64(&tx, &rx1, 16);
    ck_assert_tr_ok(tr_broadcast_subscribe(tx, &rx2));
    recv_job j1 = {.rx = rx1}, j2 = {.rx = rx2};
    tr_task *t2 = spawn_recv(rt, 0, &j2);
    tr_task *t1 = spawn_recv(rt, 1, &j1);
    send_u64(tx, 1);
    send_u64(tx, 2);
    ck_assert_int_eq(join_rc(t1), 0);
    ck_assert_uint_eq(j1.value, 1);
    RECV_EQ(rx1, 2);
    t1 = spawn_recv(rt, 1, &j1);
    send_u64(tx, 3);
    ck_assert_int_eq(join_rc(t1), 0);
    ck_assert_uint_eq(j1.value, 3);
    ck_assert_int_eq(join_rc(t2), 0);
    ck_assert_uint_eq(j2.value, 1);
    RECV_EQ(rx2, 2);
    RECV_EQ(rx2, 3);
    tr_broadcast_rx_drop(&rx1);
    tr_broadcast_rx_drop(&rx2);
    tr_broadcast_tx_drop(&tx);
    tr_runtime_free(&rt);
}
END_TEST

/* drop_rx_while_values_remain, unconsumed_messages_are_dropped */
START_TEST(test_drop_rx_releases_values) {
    reset_drops();
    tr_broadcast_tx *tx;
    tr_broadcast_rx *rx1, *rx2;
    ck_assert_tr_ok(tr_broadcast_new_ex(&tx, &rx1, 16, sizeof(uint64_t), &counting));
    ck_assert_tr_ok(tr_broadcast_subscribe(tx, &rx2));
    send_u64(tx, 1);
    send_u64(tx, 2);
    RECV_EQ(rx1, 1);
    ck_assert_int_eq(atomic_load(&destroyed), 0);
    RECV_EQ(rx2, 1);
    ck_assert_int_eq(atomic_load(&destroyed), 1); /* seen by both */
    ck_assert_tr_ok(tr_broadcast_rx_drop(&rx2));
    ck_assert_ptr_null(rx2);
    ck_assert_int_eq(atomic_load(&destroyed), 1); /* rx1 still owed 2 */
    ck_assert_tr_ok(tr_broadcast_rx_drop(&rx1));
    ck_assert_int_eq(atomic_load(&destroyed), 2);
    ck_assert_uint_eq(atomic_load(&destroyed_once[2]), 1);
    tr_broadcast_tx_drop(&tx);
    ck_assert_int_eq(atomic_load(&destroyed), 2);
}
END_TEST

START_TEST(test_lagging_rx) {
    tr_broadcast_tx *tx;
    tr_broadcast_rx *rx1, *rx2;
    new_u64(&tx, &rx1, 2);
    ck_assert_tr_ok(tr_broadcast_subscribe(tx, &rx2));
    send_u64(tx, 1);
    send_u64(tx, 2);
    RECV_EQ(rx1, 1);
    send_u64(tx, 3);
    LAGGED(rx2, 1);
    RECV_EQ(rx2, 2);
    RECV_EQ(rx1, 2);
    RECV_EQ(rx1, 3);
    send_u64(tx, 4);
    send_u64(tx, 5);
    LAGGED(rx2, 1);
    send_u64(tx, 6);
    LAGGED(rx2, 1);
    tr_broadcast_rx_drop(&rx1);
    tr_broadcast_rx_drop(&rx2);
    tr_broadcast_tx_drop(&tx);
}
END_TEST

/* send_no_rx: the value stays with the caller (no destructor). */
START_TEST(test_send_no_rx) {
    reset_drops();
    tr_broadcast_tx *tx;
    tr_broadcast_rx *rx;
    ck_assert_tr_ok(tr_broadcast_new_ex(&tx, &rx, 16, sizeof(uint64_t), &counting));
    tr_broadcast_rx_drop(&rx);
    uint64_t v = 1;
    size_t n = 99;
    ck_assert_tr_err(tr_broadcast_send(tx, &v, &n), TR_ECLOSED);
    ck_assert_uint_eq(n, 99);
    ck_assert_int_eq(atomic_load(&destroyed), 0);
    ck_assert_tr_ok(tr_broadcast_subscribe(tx, &rx));
    send_u64(tx, 2);
    RECV_EQ(rx, 2);
    tr_broadcast_rx_drop(&rx);
    tr_broadcast_tx_drop(&tx);
    ck_assert_int_eq(atomic_load(&destroyed), 1);
}
END_TEST

/* zero_capacity, capacity_too_big, and every other bad argument. */
START_TEST(test_bad_arguments) {
    tr_broadcast_tx *tx = NULL;
    tr_broadcast_rx *rx = NULL;
    ck_assert_tr_err(tr_broadcast_new(&tx, &rx, 0, 8), TR_EINVAL);
    ck_assert_tr_err(tr_broadcast_new(&tx, &rx, (SIZE_MAX >> 1) + 1, 8), TR_EINVAL);
    ck_assert_tr_err(tr_broadcast_new(&tx, &rx, 4, 0), TR_EINVAL);
    ck_assert_tr_err(tr_broadcast_new(NULL, &rx, 4, 8), TR_EINVAL);
    ck_assert_tr_err(tr_broadcast_new(&tx, NULL, 4, 8), TR_EINVAL);
    ck_assert_ptr_null(tx);
    ck_assert_ptr_null(rx);
    new_u64(&tx, &rx, 3);
    ck_assert_uint_eq(tr_broadcast_capacity(tx), 4);
    uint64_t v = 0, m = 0;
    ck_assert_tr_err(tr_broadcast_send(NULL, &v, NULL), TR_EINVAL);
    ck_assert_tr_err(tr_broadcast_send(tx, NULL, NULL), TR_EINVAL);
    ck_assert_tr_err(tr_broadcast_recv(NULL, &v, &m, TR_NEVER), TR_EINVAL);
    ck_assert_tr_err(tr_broadcast_recv(rx, NULL, &m, TR_NEVER), TR_EINVAL);
    ck_assert_tr_err(tr_broadcast_try_recv(NULL, &v, &m), TR_EINVAL);
    ck_assert_tr_err(tr_broadcast_try_recv(rx, NULL, &m), TR_EINVAL);
    ck_assert_tr_err(tr_broadcast_subscribe(NULL, &rx), TR_EINVAL);
    ck_assert_tr_err(tr_broadcast_subscribe(tx, NULL), TR_EINVAL);
    ck_assert_tr_err(tr_broadcast_resubscribe(NULL, &rx), TR_EINVAL);
    ck_assert_tr_err(tr_broadcast_resubscribe(rx, NULL), TR_EINVAL);
    ck_assert_tr_err(tr_broadcast_tx_clone(NULL, &tx), TR_EINVAL);
    ck_assert_tr_err(tr_broadcast_tx_clone(tx, NULL), TR_EINVAL);
    ck_assert_tr_err(tr_broadcast_closed(NULL, TR_NEVER), TR_EINVAL);
    ck_assert_tr_err(tr_broadcast_tx_drop(NULL), TR_EINVAL);
    ck_assert_tr_err(tr_broadcast_rx_drop(NULL), TR_EINVAL);
    ck_assert_uint_eq(tr_broadcast_receiver_count(NULL), 0);
    ck_assert_uint_eq(tr_broadcast_len(NULL), 0);
    ck_assert(tr_broadcast_is_empty(NULL));
    ck_assert_uint_eq(tr_broadcast_rx_len(NULL), 0);
    ck_assert(!tr_broadcast_same_channel(NULL, NULL));
    ck_assert(!tr_broadcast_rx_same_channel(rx, NULL));
    tr_clause c;
    tr_broadcast_recv_clause(&c, NULL, &v, &m);
    ck_assert_int_eq(tr_select(&c, 1, TR_NEVER, 0), 0);
    ck_assert_int_eq(c.result, TR_EINVAL);
    /* Nothing above had a side effect. */
    ck_assert_uint_eq(tr_broadcast_receiver_count(tx), 1);
    ck_assert_uint_eq(tr_broadcast_sender_count(tx), 1);
    EMPTY(rx);
    /* A double drop is an error, not a crash. */
    ck_assert_tr_ok(tr_broadcast_rx_drop(&rx));
    ck_assert_tr_err(tr_broadcast_rx_drop(&rx), TR_EINVAL);
    ck_assert_tr_ok(tr_broadcast_tx_drop(&tx));
    ck_assert_tr_err(tr_broadcast_tx_drop(&tx), TR_EINVAL);
}
END_TEST

/* dropping_tx_notifies_rx: parked receives close only with the last
 * sender. */
START_TEST(test_dropping_tx_notifies_rx) {
    tr_runtime *rt = tr_test_runtime(2);
    tr_broadcast_tx *tx, *tx2;
    tr_broadcast_rx *rx1, *rx2;
    new_u64(&tx, &rx1, 16);
    ck_assert_tr_ok(tr_broadcast_subscribe(tx, &rx2));
    ck_assert_tr_ok(tr_broadcast_tx_clone(tx, &tx2));
    ck_assert(tr_broadcast_same_channel(tx, tx2));
    ck_assert_uint_eq(tr_broadcast_sender_count(tx), 2);
    recv_job j1 = {.rx = rx1}, j2 = {.rx = rx2};
    tr_task *t1 = spawn_recv(rt, 0, &j1);
    tr_task *t2 = spawn_recv(rt, 1, &j2);
    ck_assert_tr_ok(tr_broadcast_tx_drop(&tx));
    ck_assert(!tr_broadcast_rx_is_closed(rx1));
    void *r;
    ck_assert_tr_err(tr_task_join_until(t1, &r, tr_after_ms(30)), TR_ETIMEDOUT);
    ck_assert_tr_ok(tr_broadcast_tx_drop(&tx2));
    ck_assert(tr_broadcast_rx_is_closed(rx1));
    ck_assert_int_eq(join_rc(t1), TR_ECLOSED);
    ck_assert_int_eq(join_rc(t2), TR_ECLOSED);
    CLOSED(rx1);
    tr_broadcast_rx_drop(&rx1);
    tr_broadcast_rx_drop(&rx2);
    tr_runtime_free(&rt);
}
END_TEST

/* single_capacity_recvs, _after_drop_1, _after_drop_2,
 * dropping_sender_does_not_overwrite */
START_TEST(test_single_capacity) {
    tr_broadcast_tx *tx;
    tr_broadcast_rx *rx;
    new_u64(&tx, &rx, 1);
    send_u64(tx, 1);
    RECV_EQ(rx, 1);
    EMPTY(rx);
    send_u64(tx, 1);
    tr_broadcast_tx_drop(&tx);
    RECV_EQ(rx, 1);
    CLOSED(rx);
    CLOSED(rx);
    tr_broadcast_rx_drop(&rx);

    new_u64(&tx, &rx, 1);
    send_u64(tx, 1);
    send_u64(tx, 2);
    tr_broadcast_tx_drop(&tx);
    LAGGED(rx, 1);
    RECV_EQ(rx, 2);
    CLOSED(rx);
    tr_broadcast_rx_drop(&rx);

    new_u64(&tx, &rx, 2);
    send_u64(tx, 1);
    send_u64(tx, 2);
    tr_broadcast_tx_drop(&tx);
    RECV_EQ(rx, 1);
    RECV_EQ(rx, 2);
    CLOSED(rx);
    tr_broadcast_rx_drop(&rx);
}
END_TEST

/* lagging_receiver_recovers_after_wrap_closed_1/_2/_open */
START_TEST(test_lag_recovers_after_wrap) {
    tr_broadcast_tx *tx;
    tr_broadcast_rx *rx;
    for (int sends = 3; sends <= 4; sends++) {
        new_u64(&tx, &rx, 2);
        for (int i = 1; i <= sends; i++)
            send_u64(tx, (uint64_t)i);
        tr_broadcast_tx_drop(&tx);
        LAGGED(rx, (uint64_t)sends - 2);
        RECV_EQ(rx, (uint64_t)sends - 1);
        RECV_EQ(rx, (uint64_t)sends);
        CLOSED(rx);
        tr_broadcast_rx_drop(&rx);
    }
    new_u64(&tx, &rx, 2);
    send_u64(tx, 1);
    send_u64(tx, 2);
    send_u64(tx, 3);
    LAGGED(rx, 1);
    RECV_EQ(rx, 2);
    RECV_EQ(rx, 3);
    EMPTY(rx);
    tr_broadcast_rx_drop(&rx);
    tr_broadcast_tx_drop(&tx);
}
END_TEST

START_TEST(test_receiver_len_with_lagged) {
    tr_broadcast_tx *tx;
    tr_broadcast_rx *rx;
    new_u64(&tx, &rx, 3);
    for (uint64_t v = 10; v <= 40; v += 10)
        send_u64(tx, v);
    ck_assert_uint_eq(tr_broadcast_rx_len(rx), 4);
    RECV_EQ(rx, 10);
    send_u64(tx, 50);
    send_u64(tx, 60);
    ck_assert_uint_eq(tr_broadcast_rx_len(rx), 5);
    LAGGED(rx, 1);
    tr_broadcast_rx_drop(&rx);
    tr_broadcast_tx_drop(&tx);
}
END_TEST

/* resubscribe_points_to_tail, resubscribe_lagged, resubscribe_to_closed */
START_TEST(test_resubscribe) {
    tr_broadcast_tx *tx;
    tr_broadcast_rx *rx, *rs;
    new_u64(&tx, &rx, 3);
    send_u64(tx, 1);
    ck_assert_tr_ok(tr_broadcast_resubscribe(rx, &rs));
    ck_assert(tr_broadcast_rx_same_channel(rx, rs));
    EMPTY(rs);
    RECV_EQ(rx, 1);
    send_u64(tx, 2);
    RECV_EQ(rs, 2);
    send_u64(tx, 3);
    RECV_EQ(rx, 2);
    RECV_EQ(rx, 3);
    EMPTY(rx);
    RECV_EQ(rs, 3);
    EMPTY(rs);
    tr_broadcast_rx_drop(&rx);
    tr_broadcast_rx_drop(&rs);
    tr_broadcast_tx_drop(&tx);

    new_u64(&tx, &rx, 1);
    send_u64(tx, 1);
    send_u64(tx, 2);
    ck_assert_tr_ok(tr_broadcast_resubscribe(rx, &rs));
    LAGGED(rx, 1);
    EMPTY(rs);
    RECV_EQ(rx, 2);
    EMPTY(rx);
    EMPTY(rs);
    tr_broadcast_rx_drop(&rx);
    tr_broadcast_rx_drop(&rs);
    tr_broadcast_tx_drop(&tx);

    new_u64(&tx, &rx, 2);
    tr_broadcast_tx_drop(&tx);
    ck_assert_tr_ok(tr_broadcast_resubscribe(rx, &rs));
    CLOSED(rs);
    ck_assert(tr_broadcast_rx_is_closed(rs));
    tr_broadcast_rx_drop(&rx);
    tr_broadcast_rx_drop(&rs);
}
END_TEST

START_TEST(test_sender_len) {
    tr_broadcast_tx *tx;
    tr_broadcast_rx *rx1, *rx2;
    new_u64(&tx, &rx1, 4);
    ck_assert_tr_ok(tr_broadcast_subscribe(tx, &rx2));
    ck_assert_uint_eq(tr_broadcast_len(tx), 0);
    ck_assert(tr_broadcast_is_empty(tx));
    send_u64(tx, 1);
    send_u64(tx, 2);
    send_u64(tx, 3);
    ck_assert_uint_eq(tr_broadcast_len(tx), 3);
    ck_assert(!tr_broadcast_is_empty(tx));
    RECV_EQ(rx1, 1);
    RECV_EQ(rx1, 2);
    ck_assert_uint_eq(tr_broadcast_len(tx), 3);
    RECV_EQ(rx2, 1);
    ck_assert_uint_eq(tr_broadcast_len(tx), 2);
    ck_assert(!tr_broadcast_is_empty(tx));
    send_u64(tx, 4);
    send_u64(tx, 5);
    send_u64(tx, 6);
    ck_assert_uint_eq(tr_broadcast_len(tx), 4);
    ck_assert(!tr_broadcast_is_empty(tx));
    tr_broadcast_rx_drop(&rx1);
    tr_broadcast_rx_drop(&rx2);
    ck_assert_uint_eq(tr_broadcast_len(tx), 0);
    tr_broadcast_tx_drop(&tx);
}
END_TEST

/* sender_len_random: tx.len() == min(max(rx_i.len()), L), with and without
 * a destructor (the two keep different books). */
START_TEST(test_sender_len_random) {
    reset_drops();
    tr_broadcast_tx *tx;
    tr_broadcast_rx *rx1, *rx2;
    ck_assert_tr_ok(tr_broadcast_new_ex(&tx, &rx1, 16, sizeof(uint64_t),
                                        _i ? &counting : NULL));
    ck_assert_tr_ok(tr_broadcast_subscribe(tx, &rx2));
    unsigned seed = 7;
    uint64_t sent = 0, v, m;
    for (int i = 0; i < 2000; i++) {
        switch (rand_r(&seed) % 4) {
        case 0: tr_broadcast_try_recv(rx1, &v, &m); break;
        case 1: tr_broadcast_try_recv(rx2, &v, &m); break;
        default: send_u64(tx, sent++);
        }
        uint64_t l1 = tr_broadcast_rx_len(rx1), l2 = tr_broadcast_rx_len(rx2);
        uint64_t want = l1 > l2 ? l1 : l2;
        if (want > 16)
            want = 16;
        ck_assert_uint_eq(tr_broadcast_len(tx), want);
        ck_assert(tr_broadcast_is_empty(tx) == (want == 0));
    }
    tr_broadcast_rx_drop(&rx1);
    tr_broadcast_rx_drop(&rx2);
    tr_broadcast_tx_drop(&tx);
    if (_i)
        ck_assert_int_eq(atomic_load(&destroyed), (long)sent);
}
END_TEST

/* receiver_recv_is_cooperative: a task that always finds a value still lets
 * the other tasks of its worker run. */
static atomic_int coop_flag;

static void *set_flag(void *arg) {
    (void)arg;
    atomic_store(&coop_flag, 1);
    return NULL;
}

static void *coop_loop(void *arg) {
    (void)arg;
    tr_broadcast_tx *tx;
    tr_broadcast_rx *rx;
    new_u64(&tx, &rx, 8);
    tr_task *other;
    ck_assert_tr_ok(tr_spawn(&other, set_flag, NULL));
    long rounds = 0;
    while (!atomic_load(&coop_flag) && rounds < 10000000) {
        uint64_t v = 1;
        HOT_OK(tr_broadcast_send(tx, &v, NULL));
        HOT_OK(tr_broadcast_recv(rx, &v, NULL, TR_TEST_DEADLINE()));
        rounds++;
    }
    ck_assert_msg(atomic_load(&coop_flag), "recv never yielded");
    ck_assert_tr_ok(tr_task_join(other, NULL));
    tr_broadcast_rx_drop(&rx);
    tr_broadcast_tx_drop(&tx);
    return NULL;
}

START_TEST(test_recv_is_cooperative) {
    atomic_store(&coop_flag, 0);
    tr_runtime *rt = tr_test_runtime(1);
    ck_assert_tr_ok(tr_runtime_block_on(rt, coop_loop, NULL, NULL));
    tr_runtime_free(&rt);
}
END_TEST

/* broadcast_sender_closed, _with_extra_subscribe */
static void *closed_job(void *arg) { return RC(tr_broadcast_closed(arg, TR_TEST_DEADLINE())); }

START_TEST(test_sender_closed) {
    tr_runtime *rt = tr_test_runtime(2);
    tr_broadcast_tx *tx;
    tr_broadcast_rx *rx, *rx2, *rx3;
    new_u64(&tx, &rx, 1);
    ck_assert_tr_ok(tr_broadcast_subscribe(tx, &rx2));
    tr_task *t = spawn_on(rt, 1, closed_job, tx);
    tr_sleep_ms(20);
    tr_broadcast_rx_drop(&rx);
    void *r;
    ck_assert_tr_err(tr_task_join_until(t, &r, tr_after_ms(30)), TR_ETIMEDOUT);
    ck_assert_uint_eq(tr_broadcast_receiver_count(tx), 1);
    tr_broadcast_rx_drop(&rx2);
    ck_assert_int_eq(join_rc(t), 0);
    ck_assert_uint_eq(tr_broadcast_receiver_count(tx), 0);
    ck_assert_tr_ok(tr_broadcast_closed(tx, 0)); /* closed: no wait */
    /* Reopened by a subscribe: waits again, for the new receiver. */
    ck_assert_tr_ok(tr_broadcast_subscribe(tx, &rx3));
    ck_assert_tr_err(tr_broadcast_closed(tx, tr_after_ms(10)), TR_ETIMEDOUT);
    t = spawn_on(rt, 0, closed_job, tx);
    tr_sleep_ms(20);
    tr_broadcast_rx_drop(&rx3);
    ck_assert_int_eq(join_rc(t), 0);
    /* From a plain thread too. */
    ck_assert_tr_ok(tr_broadcast_subscribe(tx, &rx3));
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, closed_job, tx), 0);
    tr_sleep_ms(20);
    tr_broadcast_rx_drop(&rx3);
    pthread_join(th, &r);
    ck_assert_int_eq((int)(intptr_t)r, 0);
    tr_broadcast_tx_drop(&tx);
    tr_runtime_free(&rt);
}
END_TEST

/* ---- tokio: lagging semantics ------------------------------------------------- */

START_TEST(test_lag_semantics) {
    tr_broadcast_tx *tx;
    tr_broadcast_rx *rx, *fast;

    /* slow_receiver_within_capacity_does_not_lag */
    new_u64(&tx, &rx, 2);
    ck_assert_tr_ok(tr_broadcast_subscribe(tx, &fast));
    send_u64(tx, 1);
    send_u64(tx, 2);
    RECV_EQ(fast, 1);
    RECV_EQ(fast, 2);
    EMPTY(fast);
    RECV_EQ(rx, 1);
    RECV_EQ(rx, 2);
    EMPTY(rx);
    tr_broadcast_rx_drop(&rx);
    tr_broadcast_rx_drop(&fast);
    tr_broadcast_tx_drop(&tx);

    /* lag_is_per_receiver */
    new_u64(&tx, &rx, 2);
    ck_assert_tr_ok(tr_broadcast_subscribe(tx, &fast));
    send_u64(tx, 1);
    send_u64(tx, 2);
    RECV_EQ(fast, 1);
    RECV_EQ(fast, 2);
    send_u64(tx, 3);
    send_u64(tx, 4);
    RECV_EQ(fast, 3);
    RECV_EQ(fast, 4);
    LAGGED(rx, 2);
    RECV_EQ(rx, 3);
    RECV_EQ(rx, 4);
    EMPTY(rx);
    EMPTY(fast);
    tr_broadcast_rx_drop(&rx);
    tr_broadcast_rx_drop(&fast);
    tr_broadcast_tx_drop(&tx);

    /* lagged_count_matches_number_of_overwritten_messages */
    new_u64(&tx, &rx, 4);
    for (uint64_t i = 1; i <= 4; i++)
        send_u64(tx, i);
    RECV_EQ(rx, 1);
    for (uint64_t i = 5; i <= 8; i++)
        send_u64(tx, i);
    LAGGED(rx, 3);
    for (uint64_t i = 5; i <= 8; i++)
        RECV_EQ(rx, i);
    EMPTY(rx);
    tr_broadcast_rx_drop(&rx);
    tr_broadcast_tx_drop(&tx);

    /* lag_uses_power_of_two_buffer_length */
    new_u64(&tx, &rx, 3);
    for (uint64_t i = 1; i <= 4; i++)
        send_u64(tx, i);
    ck_assert_uint_eq(tr_broadcast_rx_len(rx), 4);
    RECV_EQ(rx, 1);
    send_u64(tx, 5);
    ck_assert_uint_eq(tr_broadcast_rx_len(rx), 4);
    send_u64(tx, 6);
    ck_assert_uint_eq(tr_broadcast_rx_len(rx), 5);
    LAGGED(rx, 1);
    for (uint64_t i = 3; i <= 6; i++)
        RECV_EQ(rx, i);
    EMPTY(rx);
    tr_broadcast_rx_drop(&rx);
    tr_broadcast_tx_drop(&tx);

    /* lag_catch_up_then_lag_again, lag_again_before_reading_retained */
    new_u64(&tx, &rx, 2);
    send_u64(tx, 1);
    send_u64(tx, 2);
    send_u64(tx, 3);
    LAGGED(rx, 1);
    RECV_EQ(rx, 2);
    RECV_EQ(rx, 3);
    EMPTY(rx);
    send_u64(tx, 4);
    send_u64(tx, 5);
    send_u64(tx, 6);
    LAGGED(rx, 1);
    send_u64(tx, 7);
    send_u64(tx, 8);
    send_u64(tx, 9);
    LAGGED(rx, 3); /* was at 5; 5, 6 and 7 are gone */
    RECV_EQ(rx, 8);
    RECV_EQ(rx, 9);
    EMPTY(rx);
    tr_broadcast_rx_drop(&rx);
    tr_broadcast_tx_drop(&tx);

    /* single_slot_capacity_lag_semantics */
    new_u64(&tx, &rx, 1);
    send_u64(tx, 1);
    RECV_EQ(rx, 1);
    send_u64(tx, 2);
    send_u64(tx, 3);
    LAGGED(rx, 1);
    RECV_EQ(rx, 3);
    EMPTY(rx);
    tr_broadcast_rx_drop(&rx);
    tr_broadcast_tx_drop(&tx);

    /* receiver_len_after_lag_error_advances_cursor */
    new_u64(&tx, &rx, 2);
    for (uint64_t i = 1; i <= 4; i++)
        send_u64(tx, i);
    ck_assert_uint_eq(tr_broadcast_rx_len(rx), 4);
    LAGGED(rx, 2);
    ck_assert_uint_eq(tr_broadcast_rx_len(rx), 2);
    RECV_EQ(rx, 3);
    ck_assert_uint_eq(tr_broadcast_rx_len(rx), 1);
    ck_assert(!tr_broadcast_rx_is_empty(rx));
    RECV_EQ(rx, 4);
    ck_assert_uint_eq(tr_broadcast_rx_len(rx), 0);
    ck_assert(tr_broadcast_rx_is_empty(rx));
    tr_broadcast_rx_drop(&rx);
    tr_broadcast_tx_drop(&tx);
}
END_TEST

/* async_recv_lagged_then_resumes_from_oldest_retained: the waiting receive
 * reports lag the same way, in a task and on a plain thread. */
static void *async_lag(void *arg) {
    (void)arg;
    tr_broadcast_tx *tx;
    tr_broadcast_rx *rx;
    new_u64(&tx, &rx, 2);
    send_u64(tx, 10);
    send_u64(tx, 20);
    send_u64(tx, 30);
    uint64_t v = 0, m = 0;
    ck_assert_tr_err(tr_broadcast_recv(rx, &v, &m, TR_TEST_DEADLINE()), TR_ELAGGED);
    ck_assert_uint_eq(m, 1);
    ck_assert_tr_ok(tr_broadcast_recv(rx, &v, &m, TR_TEST_DEADLINE()));
    ck_assert_uint_eq(v, 20);
    ck_assert_tr_ok(tr_broadcast_recv(rx, &v, &m, TR_TEST_DEADLINE()));
    ck_assert_uint_eq(v, 30);
    ck_assert_tr_err(tr_broadcast_recv(rx, &v, &m, tr_after_ms(10)), TR_ETIMEDOUT);
    tr_broadcast_tx_drop(&tx);
    ck_assert_tr_err(tr_broadcast_recv(rx, &v, &m, TR_TEST_DEADLINE()), TR_ECLOSED);
    tr_broadcast_rx_drop(&rx);
    return NULL;
}

START_TEST(test_recv_lagged_waiting) {
    tr_runtime *rt = tr_test_runtime(1);
    ck_assert_tr_ok(tr_runtime_block_on(rt, async_lag, NULL, NULL));
    tr_runtime_free(&rt);
    async_lag(NULL);
}
END_TEST

/* receiver_count_on_channel_constructor and friends. */
START_TEST(test_receiver_count) {
    tr_broadcast_tx *tx;
    tr_broadcast_rx *rx1, *rx2, *rx3;
    new_u64(&tx, &rx1, 16);
    ck_assert_uint_eq(tr_broadcast_receiver_count(tx), 1);
    ck_assert_tr_ok(tr_broadcast_resubscribe(rx1, &rx2));
    ck_assert_uint_eq(tr_broadcast_receiver_count(tx), 2);
    ck_assert_tr_ok(tr_broadcast_subscribe(tx, &rx3));
    ck_assert_uint_eq(tr_broadcast_receiver_count(tx), 3);
    tr_broadcast_rx_drop(&rx3);
    tr_broadcast_rx_drop(&rx1);
    ck_assert_uint_eq(tr_broadcast_receiver_count(tx), 1);
    tr_broadcast_rx_drop(&rx2);
    ck_assert_uint_eq(tr_broadcast_receiver_count(tx), 0);
    tr_broadcast_tx_drop(&tx);
}
END_TEST

/* ---- values of other sizes; the locked path ------------------------------------ */

typedef struct big {
    uint64_t id;
    unsigned char fill[93]; /* 101 bytes: above the lock-free limit, odd */
} big;

START_TEST(test_value_sizes) {
    size_t sizes[] = {1, 3, 4, 8, 12, 16, 24, 64, 65, sizeof(big)};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t es = sizes[k];
        tr_broadcast_tx *tx;
        tr_broadcast_rx *rx, *rx2;
        ck_assert_tr_ok(tr_broadcast_new(&tx, &rx, 4, es));
        ck_assert_tr_ok(tr_broadcast_subscribe(tx, &rx2));
        unsigned char in[sizeof(big)], out[sizeof(big) + 8];
        for (int round = 0; round < 6; round++) {
            for (size_t b = 0; b < es; b++)
                in[b] = (unsigned char)(round * 31 + b * 7 + 1);
            ck_assert_tr_ok(tr_broadcast_send(tx, in, NULL));
            memset(out, 0xEE, sizeof out);
            ck_assert_tr_ok(tr_broadcast_try_recv(rx, out, NULL));
            ck_assert_int_eq(memcmp(in, out, es), 0);
            ck_assert_uint_eq(out[es], 0xEE); /* nothing past elem_size */
        }
        LAGGED(rx2, 2);
        for (int round = 2; round < 6; round++) {
            ck_assert_tr_ok(tr_broadcast_try_recv(rx2, out, NULL));
            ck_assert_uint_eq(out[0], (unsigned char)(round * 31 + 1));
        }
        tr_broadcast_rx_drop(&rx);
        tr_broadcast_rx_drop(&rx2);
        tr_broadcast_tx_drop(&tx);
    }
}
END_TEST

/* ---- cancellation, timeouts ------------------------------------------------------ */

static void *recv_forever(void *arg) {
    uint64_t v;
    return RC(tr_broadcast_recv(arg, &v, NULL, TR_NEVER));
}

START_TEST(test_cancel_parked_recv) {
    tr_runtime *rt = tr_test_runtime(2);
    tr_broadcast_tx *tx;
    tr_broadcast_rx *rx;
    new_u64(&tx, &rx, 4);
    send_u64(tx, 1);
    RECV_EQ(rx, 1);
    tr_task *t = spawn_on(rt, 1, recv_forever, rx);
    tr_sleep_ms(20);
    ck_assert_tr_ok(tr_task_cancel(t));
    ck_assert_int_eq(join_rc(t), TR_ECANCELED);
    /* Nothing consumed, cursor unchanged, nobody left parked. */
    ck_assert_uint_eq(tr_broadcast_rx_len(rx), 0);
    send_u64(tx, 2);
    RECV_EQ(rx, 2);
    /* A timed-out receive leaves the same state. */
    uint64_t v = 55;
    ck_assert_tr_err(tr_broadcast_recv(rx, &v, NULL, tr_after_ms(10)), TR_ETIMEDOUT);
    ck_assert_uint_eq(v, 55);
    send_u64(tx, 3);
    RECV_EQ(rx, 3);
    tr_broadcast_rx_drop(&rx);
    tr_broadcast_tx_drop(&tx);
    tr_runtime_free(&rt);
}
END_TEST

/* ---- select ------------------------------------------------------------------------ */

static void *select_two(void *arg) {
    tr_broadcast_rx **rxs = arg;
    uint64_t a = 0, b = 0, ma = 0, mb = 0;
    tr_clause c[2];
    tr_broadcast_recv_clause(&c[0], rxs[0], &a, &ma);
    tr_broadcast_recv_clause(&c[1], rxs[1], &b, &mb);
    int i = tr_select(c, 2, TR_TEST_DEADLINE(), 0);
    ck_assert_int_eq(i, 1);
    ck_assert_int_eq(c[1].result, 0);
    return RC((int)b);
}

START_TEST(test_select) {
    tr_runtime *rt = tr_test_runtime(2);
    tr_broadcast_tx *tx1, *tx2;
    tr_broadcast_rx *rx1, *rx2;
    new_u64(&tx1, &rx1, 2);
    new_u64(&tx2, &rx2, 2);
    uint64_t a = 0, b = 0, ma = 0, mb = 0;
    tr_clause c[2];
    /* Nothing ready: the deadline. */
    tr_broadcast_recv_clause(&c[0], rx1, &a, &ma);
    tr_broadcast_recv_clause(&c[1], rx2, &b, &mb);
    ck_assert_int_eq(tr_select(c, 2, tr_after_ms(10), 0), TR_ETIMEDOUT);
    /* Ready at arming; the other clause takes nothing. */
    send_u64(tx1, 11);
    send_u64(tx2, 22);
    ck_assert_int_eq(tr_select(c, 2, TR_TEST_DEADLINE(), 0), 0);
    ck_assert_int_eq(c[0].result, 0);
    ck_assert_uint_eq(a, 11);
    ck_assert_uint_eq(tr_broadcast_rx_len(rx2), 1);
    RECV_EQ(rx2, 22);
    /* Lag is the clause's result. */
    send_u64(tx1, 1);
    send_u64(tx1, 2);
    send_u64(tx1, 3);
    ck_assert_int_eq(tr_select(c, 2, TR_TEST_DEADLINE(), 0), 0);
    ck_assert_int_eq(c[0].result, TR_ELAGGED);
    ck_assert_uint_eq(ma, 1);
    RECV_EQ(rx1, 2);
    RECV_EQ(rx1, 3);
    /* Parked in a task; a send on the second channel completes it. */
    tr_broadcast_rx *pair[2] = {rx1, rx2};
    tr_task *t = spawn_on(rt, 1, select_two, pair);
    tr_sleep_ms(20);
    send_u64(tx2, 77);
    ck_assert_int_eq(join_rc(t), 77);
    EMPTY(rx1);
    EMPTY(rx2);
    /* Closed is a result too, and the closed clause works. */
    tr_broadcast_tx_drop(&tx2);
    ck_assert_int_eq(tr_select(c, 2, TR_TEST_DEADLINE(), 0), 1);
    ck_assert_int_eq(c[1].result, TR_ECLOSED);
    tr_clause cc[2];
    tr_broadcast_closed_clause(&cc[0], tx1);
    tr_broadcast_recv_clause(&cc[1], rx1, &a, &ma);
    ck_assert_int_eq(tr_select(cc, 2, tr_after_ms(10), 0), TR_ETIMEDOUT);
    tr_broadcast_rx_drop(&rx1);
    ck_assert_int_eq(tr_select(cc, 1, TR_TEST_DEADLINE(), 0), 0);
    ck_assert_int_eq(cc[0].result, 0);
    tr_broadcast_rx_drop(&rx2);
    tr_broadcast_tx_drop(&tx1);
    tr_runtime_free(&rt);
}
END_TEST

/* ---- clone hook ------------------------------------------------------------------- */

typedef struct obj {
    atomic_int refs;
    uint64_t id;
} obj;

static atomic_int objs_live;

static void obj_unref(obj *o) {
    if (atomic_fetch_sub(&o->refs, 1) == 1) {
        atomic_fetch_sub(&objs_live, 1);
        free(o);
    }
}

static void obj_drop(void *value, void *ctx) {
    (void)ctx;
    obj *o;
    memcpy(&o, value, sizeof o);
    obj_unref(o);
}

static void obj_clone(void *value, void *ctx) {
    ck_assert_ptr_eq(ctx, &objs_live);
    obj *o;
    memcpy(&o, value, sizeof o);
    atomic_fetch_add(&o->refs, 1);
}

START_TEST(test_clone_hook) {
    atomic_store(&objs_live, 0);
    tr_chan_opts o = {obj_drop, &objs_live};
    tr_broadcast_tx *tx;
    tr_broadcast_rx *rx1, *rx2;
    ck_assert_tr_ok(tr_broadcast_new_clone(&tx, &rx1, 2, sizeof(obj *), &o, obj_clone));
    ck_assert_tr_ok(tr_broadcast_subscribe(tx, &rx2));
    for (uint64_t i = 0; i < 5; i++) {
        obj *p = malloc(sizeof *p);
        atomic_init(&p->refs, 1);
        p->id = i;
        atomic_fetch_add(&objs_live, 1);
        ck_assert_tr_ok(tr_broadcast_send(tx, &p, NULL));
        obj *got;
        ck_assert_tr_ok(tr_broadcast_try_recv(rx1, &got, NULL));
        ck_assert_ptr_eq(got, p);
        /* rx1 owns a reference of its own: its object outlives the
         * channel's copy, which rx2 ends (or an overwrite does). */
        ck_assert_int_ge(atomic_load(&got->refs), 2);
        obj_unref(got);
    }
    LAGGED(rx2, 3);
    obj *got;
    ck_assert_tr_ok(tr_broadcast_try_recv(rx2, &got, NULL));
    ck_assert_uint_eq(got->id, 3);
    ck_assert_int_eq(atomic_load(&got->refs), 1); /* the channel let go: ours alone */
    obj_unref(got);
    ck_assert_int_eq(atomic_load(&objs_live), 1); /* 4, owed to rx2 */
    tr_broadcast_rx_drop(&rx2);
    ck_assert_int_eq(atomic_load(&objs_live), 0);
    tr_broadcast_rx_drop(&rx1);
    tr_broadcast_tx_drop(&tx);
}
END_TEST

/* ---- concurrency ----------------------------------------------------------------- */

#define SENDERS 8 /* 4 tasks on 4 workers, 4 plain threads */
#define PER_SENDER 5000
#define TOTAL ((uint64_t)SENDERS * PER_SENDER)
#define RECEIVERS 6

typedef struct rx_stats {
    tr_broadcast_rx *rx;
    int index;
    uint64_t got, missed;
    int64_t last[SENDERS];
    int cancels, timeouts;
    bool stop; /* cancelled: hand the receiver back unfinished */
} rx_stats;

static tr_broadcast_tx *stress_tx;
static size_t stress_words; /* values of 1 or 6 words; 6 can tear */

/* Word k of value v: all must match, or a receive copied a torn value. */
static uint64_t word_of(uint64_t v, size_t k) { return k ? v * (k + 1) ^ 0x5A5A5A5A5A5A5A5Aull : v; }

/* Value = sender << 20 | i, with i counting from 1; as a destructor index:
 * sender * PER_SENDER + i - 1. */
static void stress_drop(void *value, void *ctx) {
    (void)ctx;
    uint64_t v;
    memcpy(&v, value, sizeof v);
    uint64_t idx = (v >> 20) * PER_SENDER + (v & 0xFFFFF) - 1;
    HOT(idx < TOTAL);
    unsigned char before = atomic_fetch_add(&destroyed_once[idx], 1);
    HOT(before == 0);
    atomic_fetch_add(&destroyed, 1);
}

static void *stress_send(void *arg) {
    uint64_t s = (uint64_t)(uintptr_t)arg;
    tr_broadcast_tx *tx;
    ck_assert_tr_ok(tr_broadcast_tx_clone(stress_tx, &tx));
    for (uint64_t i = 1; i <= PER_SENDER; i++) {
        uint64_t w[6];
        for (size_t k = 0; k < stress_words; k++)
            w[k] = word_of(s << 20 | i, k);
        size_t n;
        HOT_OK(tr_broadcast_send(tx, w, &n));
        HOT(n >= 1);
        if (i % 97 == 0) {
            if (tr_task_self())
                tr_yield();
            else
                sched_yield();
        }
    }
    tr_broadcast_tx_drop(&tx);
    return NULL;
}

/* One value arrived, or a lag was reported: check the order per sender. */
static void account(rx_stats *st, int rc, const uint64_t *w, uint64_t m) {
    if (rc == TR_ELAGGED) {
        HOT(m > 0);
        st->missed += m;
        return;
    }
    HOT_OK(rc);
    uint64_t v = w[0];
    for (size_t k = 1; k < stress_words; k++)
        HOT_EQ(w[k], word_of(v, k));
    uint64_t s = v >> 20;
    int64_t i = (int64_t)(v & 0xFFFFF);
    HOT(s < SENDERS);
    HOT(i > st->last[s]); /* each sender's values in order */
    st->last[s] = i;
    st->got++;
}

/* Receives until closed; odd receivers are slow (they lag), some use short
 * deadlines (timeouts must take nothing).  Returns at TR_ECANCELED. */
static void *stress_recv(void *arg) {
    rx_stats *st = arg;
    unsigned seed = (unsigned)st->index * 7919u + 1;
    for (;;) {
        uint64_t w[6] = {0}, m = 0;
        bool shortdl = st->index % 3 == 0 && rand_r(&seed) % 4 == 0;
        int64_t dl = shortdl ? tr_after_us(rand_r(&seed) % 300) : TR_TEST_DEADLINE();
        int rc = tr_broadcast_recv(st->rx, w, &m, dl);
        if (rc == TR_ECLOSED)
            return NULL;
        if (rc == TR_ETIMEDOUT && shortdl) {
            st->timeouts++;
            continue;
        }
        if (rc == TR_ECANCELED) {
            st->cancels++;
            st->stop = true;
            return NULL;
        }
        account(st, rc, w, m);
        if (st->index % 2 == 1 && rand_r(&seed) % 64 == 0) {
            if (tr_task_self())
                tr_sleep_ms(1);
            else
                sched_yield();
        }
    }
}

static void check_complete(rx_stats *st) {
    ck_assert_msg(st->got + st->missed == TOTAL,
                  "receiver %d: got %llu + missed %llu != %llu", st->index,
                  (unsigned long long)st->got, (unsigned long long)st->missed,
                  (unsigned long long)TOTAL);
}

/* _i: 0 capacity 16 (lag), 1 capacity 16 with a destructor, 2 capacity
 * 2^17 (nothing may be missed), 3 capacity 4 with a destructor and random
 * cancellation of receiver tasks; 4 and 5 as 0 and 1 with 48-byte values
 * and capacity 2, so that receives race overwrites all the time. */
START_TEST(test_stress) {
    reset_drops();
    bool counting_drops = _i == 1 || _i == 3 || _i == 5;
    size_t cap = _i == 2 ? (1u << 17) : _i == 3 ? 4 : _i >= 4 ? 2 : 16;
    stress_words = _i >= 4 ? 6 : 1;
    tr_chan_opts o = {stress_drop, NULL};
    tr_broadcast_rx *first;
    ck_assert_tr_ok(tr_broadcast_new_ex(&stress_tx, &first, cap, stress_words * 8,
                                        counting_drops ? &o : NULL));
    tr_runtime *rt = tr_test_runtime(4);
    rx_stats st[RECEIVERS];
    memset(st, 0, sizeof st);
    st[0].rx = first;
    for (int r = 0; r < RECEIVERS; r++) {
        st[r].index = r;
        for (int s = 0; s < SENDERS; s++)
            st[r].last[s] = 0;
        if (r > 0)
            ck_assert_tr_ok(tr_broadcast_subscribe(stress_tx, &st[r].rx));
    }
    /* Receivers: 4 tasks on workers 0..3, 2 plain threads. */
    tr_task *rt_tasks[4];
    for (int r = 0; r < 4; r++)
        rt_tasks[r] = spawn_on(rt, r, stress_recv, &st[r]);
    pthread_t rth[2];
    for (int r = 0; r < 2; r++)
        ck_assert_int_eq(pthread_create(&rth[r], NULL, stress_recv, &st[4 + r]), 0);
    tr_task *senders[SENDERS / 2];
    for (int s = 0; s < SENDERS / 2; s++)
        senders[s] = spawn_on(rt, s, stress_send, (void *)(uintptr_t)s);
    pthread_t sth[SENDERS / 2];
    for (int s = 0; s < SENDERS / 2; s++)
        ck_assert_int_eq(pthread_create(&sth[s], NULL, stress_send,
                                        (void *)(uintptr_t)(SENDERS / 2 + s)),
                         0);
    if (_i == 3) {
        tr_sleep_ms(2);
        ck_assert_tr_ok(tr_task_cancel(rt_tasks[1]));
        tr_sleep_ms(3);
        ck_assert_tr_ok(tr_task_cancel(rt_tasks[2]));
    }
    for (int s = 0; s < SENDERS / 2; s++) {
        pthread_join(sth[s], NULL);
        ck_assert_tr_ok(tr_task_join_until(senders[s], NULL, TR_TEST_DEADLINE()));
    }
    ck_assert_tr_ok(tr_broadcast_tx_drop(&stress_tx)); /* the last sender */
    for (int r = 0; r < 4; r++)
        ck_assert_tr_ok(tr_task_join_until(rt_tasks[r], NULL, TR_TEST_DEADLINE()));
    for (int r = 0; r < 2; r++)
        pthread_join(rth[r], NULL);
    /* A cancelled receiver lost nothing: finish it here. */
    for (int r = 0; r < RECEIVERS; r++)
        if (st[r].stop)
            stress_recv(&st[r]);
    for (int r = 0; r < RECEIVERS; r++) {
        check_complete(&st[r]);
        if (_i == 2)
            ck_assert_uint_eq(st[r].missed, 0);
        ck_assert_tr_ok(tr_broadcast_rx_drop(&st[r].rx));
    }
    if (_i == 3)
        ck_assert_int_ge(st[1].cancels + st[2].cancels, 1);
    if (counting_drops) {
        ck_assert_int_eq(atomic_load(&destroyed), (long)TOTAL);
        for (uint64_t k = 0; k < TOTAL; k++)
            HOT_EQ(atomic_load(&destroyed_once[k]), 1);
    }
    tr_runtime_free(&rt);
}
END_TEST

/* A sender and a receiver on two threads fight over a one-slot ring of
 * 64-byte values: most receives race an overwrite.  A torn copy (words of
 * two different values) must never be returned, and every value must be
 * received or reported missed.  _i: without and with a destructor. */
#define TORN_N 100000

static atomic_int torn_done;

static void *torn_sender(void *arg) {
    tr_broadcast_tx *tx = arg;
    unsigned seed = 3;
    for (uint64_t v = 0; v < TORN_N; v++) {
        uint64_t w[8];
        for (size_t k = 0; k < 8; k++)
            w[k] = word_of(v, k);
        HOT_OK(tr_broadcast_send(tx, w, NULL));
        /* A short, varying pause: the receiver catches up and its copies
         * overlap the next send instead of always finding it lagged. */
        for (volatile int spin = rand_r(&seed) % 256; spin > 0; spin--)
            ;
    }
    atomic_store(&torn_done, 1);
    return NULL;
}

static void torn_drop(void *value, void *ctx) {
    (void)ctx;
    uint64_t v;
    memcpy(&v, value, sizeof v);
    HOT(v < MAXV);
    HOT(atomic_fetch_add(&destroyed_once[v], 1) == 0);
    atomic_fetch_add(&destroyed, 1);
}

START_TEST(test_torn_reads) {
    reset_drops();
    tr_chan_opts o = {torn_drop, NULL};
    tr_broadcast_tx *tx;
    tr_broadcast_rx *rx;
    ck_assert_tr_ok(tr_broadcast_new_ex(&tx, &rx, 1, 64, _i ? &o : NULL));
    atomic_store(&torn_done, 0);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, torn_sender, tx), 0);
    uint64_t got = 0, missed = 0, last = 0;
    bool first = true;
    for (;;) {
        uint64_t w[8], m = 0;
        bool done = atomic_load(&torn_done);
        int rc = tr_broadcast_try_recv(rx, w, &m);
        if (rc == TR_EEMPTY) {
            if (done)
                break;
            continue;
        }
        if (rc == TR_ELAGGED) {
            missed += m;
            continue;
        }
        HOT_OK(rc);
        for (size_t k = 1; k < 8; k++)
            HOT_EQ(w[k], word_of(w[0], k));
        HOT(first || w[0] > last);
        first = false;
        last = w[0];
        got++;
    }
    pthread_join(th, NULL);
    ck_assert_uint_eq(got + missed, TORN_N);
    tr_broadcast_rx_drop(&rx);
    tr_broadcast_tx_drop(&tx);
    if (_i)
        ck_assert_int_eq(atomic_load(&destroyed), TORN_N);
}
END_TEST

/* Receivers come and go while senders send: drops with values queued,
 * resubscribes, lag; every value is destroyed exactly once in the end. */
static atomic_int churn_stop;

static void *churn_recv(void *arg) {
    tr_broadcast_rx *rx = arg;
    unsigned seed = (unsigned)(uintptr_t)arg;
    long n = 0;
    while (!atomic_load(&churn_stop)) {
        uint64_t v, m;
        int rc = tr_broadcast_recv(rx, &v, &m, tr_after_ms(1));
        HOT(rc == 0 || rc == TR_ELAGGED || rc == TR_ETIMEDOUT || rc == TR_ECLOSED);
        if (rc == TR_ECLOSED)
            break;
        if (++n % 50 == 0 && rand_r(&seed) % 2) {
            tr_broadcast_rx *next;
            HOT_OK(tr_broadcast_resubscribe(rx, &next));
            HOT_OK(tr_broadcast_rx_drop(&rx));
            rx = next;
        }
    }
    tr_broadcast_rx_drop(&rx);
    return NULL;
}

START_TEST(test_churn_exactly_once) {
    reset_drops();
    stress_words = 1;
    tr_chan_opts o = {stress_drop, NULL};
    tr_broadcast_rx *first;
    ck_assert_tr_ok(tr_broadcast_new_ex(&stress_tx, &first, 8, sizeof(uint64_t), &o));
    atomic_store(&churn_stop, 0);
    tr_runtime *rt = tr_test_runtime(4);
    tr_task *rx_tasks[4];
    for (int r = 0; r < 4; r++) {
        tr_broadcast_rx *rx = first;
        if (r > 0)
            ck_assert_tr_ok(tr_broadcast_subscribe(stress_tx, &rx));
        rx_tasks[r] = spawn_on(rt, r, churn_recv, rx);
    }
    tr_task *senders[SENDERS / 2];
    for (int s = 0; s < SENDERS / 2; s++)
        senders[s] = spawn_on(rt, s, stress_send, (void *)(uintptr_t)s);
    pthread_t sth[SENDERS / 2];
    for (int s = 0; s < SENDERS / 2; s++)
        ck_assert_int_eq(pthread_create(&sth[s], NULL, stress_send,
                                        (void *)(uintptr_t)(SENDERS / 2 + s)),
                         0);
    for (int s = 0; s < SENDERS / 2; s++) {
        pthread_join(sth[s], NULL);
        ck_assert_tr_ok(tr_task_join_until(senders[s], NULL, TR_TEST_DEADLINE()));
    }
    atomic_store(&churn_stop, 1);
    for (int r = 0; r < 4; r++)
        ck_assert_tr_ok(tr_task_join_until(rx_tasks[r], NULL, TR_TEST_DEADLINE()));
    ck_assert_uint_eq(tr_broadcast_receiver_count(stress_tx), 0);
    ck_assert_tr_ok(tr_broadcast_tx_drop(&stress_tx));
    ck_assert_int_eq(atomic_load(&destroyed), (long)TOTAL);
    tr_runtime_free(&rt);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("broadcast");
    TCase *tc = tr_tcase("tokio");
    tcase_add_test(tc, test_send_try_recv_bounded);
    tcase_add_test(tc, test_send_two_recv);
    tcase_add_test(tc, test_send_wakes_parked);
    tcase_add_test(tc, test_send_slow_rx);
    tcase_add_test(tc, test_drop_rx_releases_values);
    tcase_add_test(tc, test_lagging_rx);
    tcase_add_test(tc, test_send_no_rx);
    tcase_add_test(tc, test_bad_arguments);
    tcase_add_test(tc, test_dropping_tx_notifies_rx);
    tcase_add_test(tc, test_single_capacity);
    tcase_add_test(tc, test_lag_recovers_after_wrap);
    tcase_add_test(tc, test_receiver_len_with_lagged);
    tcase_add_test(tc, test_resubscribe);
    tcase_add_test(tc, test_sender_len);
    tcase_add_loop_test(tc, test_sender_len_random, 0, 2);
    tcase_add_test(tc, test_recv_is_cooperative);
    tcase_add_test(tc, test_sender_closed);
    tcase_add_test(tc, test_lag_semantics);
    tcase_add_test(tc, test_recv_lagged_waiting);
    tcase_add_test(tc, test_receiver_count);
    suite_add_tcase(s, tc);
    tc = tr_tcase("more");
    tcase_add_test(tc, test_value_sizes);
    tcase_add_test(tc, test_cancel_parked_recv);
    tcase_add_test(tc, test_select);
    tcase_add_test(tc, test_clone_hook);
    suite_add_tcase(s, tc);
    tc = tr_tcase("stress");
    tcase_add_loop_test(tc, test_stress, 0, 6);
    tcase_add_test(tc, test_churn_exactly_once);
    tcase_add_loop_test(tc, test_torn_reads, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

TR_TEST_MAIN(suite)
