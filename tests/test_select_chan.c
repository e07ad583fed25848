/* test_select_chan.c — select over real channels, under fire.
 *
 * Producers on two workers and on two plain threads send numbered values
 * into three bounded mpsc channels at random; consumer tasks on four
 * workers take them with tr_select() over the three receive clauses, with
 * random short deadlines and TR_SELECT_RANDOM, while a chaos task cancels
 * consumers at random (each cancelled consumer is replaced).  Afterwards
 * every value must have been received exactly once: a select whose
 * clause lost, or that timed out or was cancelled, took nothing.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "testutil.h"
#include "tr_mpsc.h"

#define NCHAN 3
#define PER_PRODUCER 4000
#define NPROD 4
#define TOTAL (NPROD * PER_PRODUCER)

static tr_mpsc_tx *txs[NCHAN];
static tr_mpsc_rx *rxs[NCHAN];
static atomic_int seen[TOTAL];
static atomic_int producers_done;
static atomic_long received;

static uint64_t next_rand(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void produce(int id) {
    uint64_t s = (uint64_t)id * 0x9E3779B97F4A7C15ull + 7;
    tr_mpsc_tx *mine[NCHAN];
    for (int c = 0; c < NCHAN; c++)
        ck_assert_tr_ok(tr_mpsc_tx_clone(txs[c], &mine[c]));
    for (int i = 0; i < PER_PRODUCER; i++) {
        uint32_t v = (uint32_t)(id * PER_PRODUCER + i);
        ck_assert_tr_ok(tr_mpsc_send(mine[next_rand(&s) % NCHAN], &v, TR_TEST_DEADLINE()));
    }
    for (int c = 0; c < NCHAN; c++)
        tr_mpsc_tx_drop(&mine[c]);
    atomic_fetch_add(&producers_done, 1);
}

static void *producer_task(void *arg) {
    produce((int)(intptr_t)arg);
    return NULL;
}

static void *producer_thread(void *arg) {
    produce((int)(intptr_t)arg);
    return NULL;
}

static void take(uint32_t v) {
    ck_assert_uint_lt(v, TOTAL);
    ck_assert_int_eq(atomic_fetch_add(&seen[v], 1), 0);
    atomic_fetch_add(&received, 1);
}

/* Selects until cancelled or until every value has been received. */
static void *consumer(void *arg) {
    uint64_t s = (uint64_t)(intptr_t)arg * 31 + 1;
    while (atomic_load(&received) < TOTAL) {
        uint32_t v[NCHAN];
        tr_clause c[NCHAN];
        for (int k = 0; k < NCHAN; k++)
            ck_assert_tr_ok(tr_mpsc_recv_clause(&c[k], rxs[k], &v[k]));
        int64_t dl = tr_after_us((int64_t)(next_rand(&s) % 300));
        int i = tr_select(c, NCHAN, dl, TR_SELECT_RANDOM);
        if (i == TR_ECANCELED)
            return RC(1);
        if (i == TR_ETIMEDOUT)
            continue;
        ck_assert_int_ge(i, 0);
        ck_assert_tr_ok(c[i].result);
        take(v[i]);
    }
    return RC(0);
}

START_TEST(test_select_exactly_once) {
    tr_runtime *rt = tr_test_runtime(4);
    for (int c = 0; c < NCHAN; c++)
        ck_assert_tr_ok(tr_mpsc_new(&txs[c], &rxs[c], 16, sizeof(uint32_t)));
    for (int i = 0; i < TOTAL; i++)
        atomic_init(&seen[i], 0);
    atomic_store(&producers_done, 0);
    atomic_store(&received, 0);

    enum { NCONS = 4 };
    tr_task *cons[NCONS];
    for (int k = 0; k < NCONS; k++)
        cons[k] = spawn_on(rt, k, consumer, (void *)(intptr_t)k);
    tr_task *pt[2];
    pthread_t th[2];
    for (int k = 0; k < 2; k++) {
        pt[k] = spawn_on(rt, k + 1, producer_task, (void *)(intptr_t)k);
        ck_assert_int_eq(pthread_create(&th[k], NULL, producer_thread, (void *)(intptr_t)(k + 2)),
                         0);
    }
    /* Chaos: cancel a random consumer every few hundred microseconds and
     * start a fresh one in its place. */
    uint64_t s = 12345;
    int cancelled = 0, seed = NCONS;
    int64_t dl = TR_TEST_DEADLINE();
    while (atomic_load(&received) < TOTAL) {
        ck_assert_msg(tr_now() < dl, "stuck at %ld of %d", atomic_load(&received), TOTAL);
        struct timespec ts = {0, 200000};
        nanosleep(&ts, NULL);
        int k = (int)(next_rand(&s) % NCONS);
        ck_assert_tr_ok(tr_task_cancel(cons[k]));
        void *r;
        ck_assert_tr_ok(tr_task_join_until(cons[k], &r, TR_TEST_DEADLINE()));
        cancelled += r == RC(1);
        cons[k] = spawn_on(rt, k, consumer, (void *)(intptr_t)++seed);
    }
    for (int k = 0; k < NCONS; k++)
        ck_assert_int_eq(join_rc(cons[k]), 0);
    for (int k = 0; k < 2; k++) {
        join_rc(pt[k]);
        pthread_join(th[k], NULL);
    }
    for (int i = 0; i < TOTAL; i++)
        ck_assert_int_eq(atomic_load(&seen[i]), 1);
    ck_assert_int_gt(cancelled, 0); /* the chaos did hit selects */
    for (int c = 0; c < NCHAN; c++) {
        uint32_t v;
        ck_assert_tr_err(tr_mpsc_try_recv(rxs[c], &v), TR_EEMPTY);
        tr_mpsc_tx_drop(&txs[c]);
        ck_assert_tr_err(tr_mpsc_try_recv(rxs[c], &v), TR_ECLOSED);
        tr_mpsc_rx_drop(&rxs[c]);
    }
    tr_runtime_free(&rt);
}
END_TEST

static Suite *select_chan_suite(void) {
    Suite *s = suite_create("select_chan");
    TCase *tc = tr_tcase("races");
    tcase_add_test(tc, test_select_exactly_once);
    suite_add_tcase(s, tc);
    return s;
}

TR_TEST_MAIN(select_chan_suite)
