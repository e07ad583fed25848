/* test_mpsc_weak.c — weak senders, ported from tokio's sync_mpsc_weak.rs.
 *
 * Weak senders do not keep a channel open; an upgrade succeeds only while
 * a strong sender (or a permit, which stands for tokio's OwnedPermit)
 * exists, and never again once they are all gone.  Both flavours.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "testutil.h"
#include "tr_mpsc.h"

static int make(int unbounded, tr_mpsc_tx **tx, tr_mpsc_rx **rx, size_t cap,
                const tr_chan_opts *o) {
    return unbounded ? tr_mpsc_unbounded_new_ex(tx, rx, sizeof(int64_t), o)
                     : tr_mpsc_new_ex(tx, rx, cap, sizeof(int64_t), o);
}

/* ---- weak_sender / weak_unbounded_sender --------------------------------- */

typedef struct {
    tr_mpsc_tx *tx;
    int unbounded;
    tr_mpsc_weak *weak_out;
} weak_sender_arg;

static void *weak_sender_task(void *p) {
    weak_sender_arg *a = p;
    tr_mpsc_tx *tx = a->tx, *c = NULL, *tx2 = NULL;
    tr_mpsc_weak *weak = NULL;
    ck_assert_tr_ok(tr_mpsc_tx_clone(tx, &c));
    ck_assert_tr_ok(tr_mpsc_tx_downgrade(c, &weak));
    ck_assert_tr_ok(tr_mpsc_tx_drop(&c));
    for (int64_t i = 0; i < 10; i++)
        ck_assert_tr_ok(tr_mpsc_send(tx, &i, TR_TEST_DEADLINE()));
    ck_assert_tr_ok(tr_mpsc_weak_upgrade(weak, &tx2)); /* tx is still alive */
    int64_t v = 20;
    ck_assert_tr_ok(tr_mpsc_send(tx2, &v, TR_TEST_DEADLINE()));
    ck_assert_tr_ok(tr_mpsc_weak_drop(&weak));
    ck_assert_tr_ok(tr_mpsc_tx_downgrade(tx2, &a->weak_out));
    ck_assert_tr_ok(tr_mpsc_tx_drop(&tx2));
    ck_assert_tr_ok(tr_mpsc_tx_drop(&a->tx));
    return NULL;
}

START_TEST(test_weak_sender) {
    int unbounded = _i;
    tr_runtime *rt = tr_test_runtime(2);
    tr_mpsc_tx *tx;
    tr_mpsc_rx *rx;
    ck_assert_tr_ok(make(unbounded, &tx, &rx, 11, NULL));
    weak_sender_arg a = {tx, unbounded, NULL};
    tr_task *t = spawn_on(rt, 1, weak_sender_task, &a);
    ck_assert_int_eq(join_rc(t), 0);
    int got = 0;
    for (int i = 0; i < 12; i++) {
        int64_t v;
        int rc = tr_mpsc_recv(rx, &v, TR_TEST_DEADLINE());
        if (rc == 0) {
            if (i == 10)
                ck_assert_int_eq(v, 20);
            else
                ck_assert_int_eq(v, i);
            got++;
        } else {
            ck_assert_int_eq(rc, TR_ECLOSED);
            ck_assert_int_eq(i, 11);
            break;
        }
    }
    ck_assert_int_eq(got, 11);
    tr_mpsc_tx *up = NULL;
    ck_assert_tr_err(tr_mpsc_weak_upgrade(a.weak_out, &up), TR_ECLOSED);
    ck_assert_ptr_null(up);
    ck_assert_tr_ok(tr_mpsc_weak_drop(&a.weak_out));
    ck_assert_tr_ok(tr_mpsc_rx_drop(&rx));
    tr_runtime_free(&rt);
}
END_TEST

/* ---- actor_weak_sender: an actor that keeps a weak handle to its own
 * mailbox, so that it stops when its last outside handle goes. ----------- */

enum { MSG_GET_ID = 1, MSG_SELF = 2 };

typedef struct {
    int kind;
    tr_mpsc_tx *reply; /* MSG_GET_ID: a channel of one int64_t */
} actor_msg;

typedef struct {
    tr_mpsc_rx *rx;
    tr_mpsc_weak *self;
    int64_t next_id;
    int received_self;
} actor;

static void *actor_run(void *p) {
    actor *a = p;
    actor_msg m;
    int i = 0;
    int rc;
    while ((rc = tr_mpsc_recv(a->rx, &m, TR_TEST_DEADLINE())) == 0) {
        if (m.kind == MSG_GET_ID) {
            a->next_id++;
            tr_mpsc_send(m.reply, &a->next_id, TR_TEST_DEADLINE());
            tr_mpsc_tx_drop(&m.reply);
        } else {
            a->received_self = 1;
        }
        if (i++ == 0) { /* send a message to itself through an upgrade */
            tr_mpsc_tx *me = NULL;
            if (tr_mpsc_weak_upgrade(a->self, &me) == 0) {
                actor_msg s = {MSG_SELF, NULL};
                ck_assert_tr_ok(tr_mpsc_send(me, &s, TR_TEST_DEADLINE()));
                ck_assert_tr_ok(tr_mpsc_tx_drop(&me));
            }
        }
    }
    ck_assert_int_eq(rc, TR_ECLOSED);
    ck_assert(a->received_self);
    return NULL;
}

typedef struct {
    tr_mpsc_tx *handle;
    int unbounded;
} client_arg;

static void *client_run(void *p) {
    client_arg *c = p;
    tr_mpsc_tx *rtx;
    tr_mpsc_rx *rrx;
    ck_assert_tr_ok(tr_mpsc_new(&rtx, &rrx, 1, sizeof(int64_t)));
    actor_msg m = {MSG_GET_ID, rtx};
    ck_assert_tr_ok(tr_mpsc_send(c->handle, &m, TR_TEST_DEADLINE()));
    int64_t id = 0;
    ck_assert_tr_ok(tr_mpsc_recv(rrx, &id, TR_TEST_DEADLINE()));
    ck_assert_int_eq(id, 1);
    ck_assert_tr_ok(tr_mpsc_rx_drop(&rrx));
    ck_assert_tr_ok(tr_mpsc_tx_drop(&c->handle));
    return NULL;
}

/* One worker, as tokio's current-thread test: the actor upgrades its weak
 * handle right after replying, before the client can run and drop the
 * last outside handle.  (On two workers that is a race the actor may
 * lose, which is the point of a weak handle, but not of this test.) */
START_TEST(test_actor_weak_sender) {
    int unbounded = _i;
    tr_runtime *rt = tr_test_runtime(1);
    tr_mpsc_tx *tx;
    actor a = {0};
    ck_assert_tr_ok(unbounded ? tr_mpsc_unbounded_new(&tx, &a.rx, sizeof(actor_msg))
                              : tr_mpsc_new(&tx, &a.rx, 8, sizeof(actor_msg)));
    ck_assert_tr_ok(tr_mpsc_tx_downgrade(tx, &a.self));
    tr_task *at = spawn_on(rt, 0, actor_run, &a);
    client_arg c = {tx, unbounded};
    tr_task *ct = spawn_on(rt, 1, client_run, &c);
    ck_assert_int_eq(join_rc(ct), 0);
    ck_assert_int_eq(join_rc(at), 0); /* ended: the weak handle did not keep it open */
    ck_assert_tr_ok(tr_mpsc_weak_drop(&a.self));
    ck_assert_tr_ok(tr_mpsc_rx_drop(&a.rx));
    tr_runtime_free(&rt);
}
END_TEST

/* ---- test_msgs_dropped_on_rx_drop ---------------------------------------- */

static void count_drop(void *v, void *ctx) {
    (void)v;
    atomic_fetch_add((atomic_int *)ctx, 1);
}

START_TEST(test_msgs_dropped_on_rx_drop) {
    atomic_int dropped = 0;
    tr_chan_opts o = {count_drop, &dropped};
    tr_mpsc_tx *tx;
    tr_mpsc_rx *rx;
    ck_assert_tr_ok(make(_i, &tx, &rx, 3, &o));
    int64_t v = 1, out;
    ck_assert_tr_ok(tr_mpsc_send(tx, &v, TR_TEST_DEADLINE()));
    ck_assert_tr_ok(tr_mpsc_send(tx, &v, TR_TEST_DEADLINE()));
    ck_assert_tr_ok(tr_mpsc_send(tx, &v, TR_TEST_DEADLINE()));
    ck_assert_tr_ok(tr_mpsc_recv(rx, &out, TR_TEST_DEADLINE()));
    ck_assert_tr_ok(tr_mpsc_recv(rx, &out, TR_TEST_DEADLINE()));
    ck_assert_tr_ok(tr_mpsc_rx_drop(&rx));
    ck_assert_int_eq(atomic_load(&dropped), 1); /* the one still queued */
    /* Nothing enters the channel after the receiver went; the value stays
     * with the caller, so the channel does not destroy it. */
    ck_assert_tr_err(tr_mpsc_send(tx, &v, TR_TEST_DEADLINE()), TR_ECLOSED);
    ck_assert_int_eq(atomic_load(&dropped), 1);
    ck_assert_tr_ok(tr_mpsc_tx_drop(&tx));
}
END_TEST

/* ---- upgrade / downgrade -------------------------------------------------------- */

START_TEST(test_downgrade_upgrade_success) {
    tr_mpsc_tx *tx, *up = NULL;
    tr_mpsc_rx *rx;
    tr_mpsc_weak *w;
    ck_assert_tr_ok(make(_i, &tx, &rx, 1, NULL));
    ck_assert_tr_ok(tr_mpsc_tx_downgrade(tx, &w));
    ck_assert_tr_ok(tr_mpsc_weak_upgrade(w, &up));
    ck_assert(tr_mpsc_same_channel(tx, up));
    ck_assert_uint_eq(tr_mpsc_tx_strong_count(tx), 2);
    ck_assert_tr_ok(tr_mpsc_tx_drop(&up));
    ck_assert_tr_ok(tr_mpsc_weak_drop(&w));
    ck_assert_tr_ok(tr_mpsc_tx_drop(&tx));
    ck_assert_tr_ok(tr_mpsc_rx_drop(&rx));
}
END_TEST

START_TEST(test_downgrade_upgrade_failure) {
    tr_mpsc_tx *tx, *up = NULL;
    tr_mpsc_rx *rx;
    tr_mpsc_weak *w;
    ck_assert_tr_ok(make(_i, &tx, &rx, 1, NULL));
    ck_assert_tr_ok(tr_mpsc_tx_downgrade(tx, &w));
    ck_assert_tr_ok(tr_mpsc_tx_drop(&tx));
    ck_assert_tr_err(tr_mpsc_weak_upgrade(w, &up), TR_ECLOSED);
    /* and never again, even while the weak handle and receiver live */
    ck_assert_tr_err(tr_mpsc_weak_upgrade(w, &up), TR_ECLOSED);
    ck_assert_ptr_null(up);
    ck_assert(tr_mpsc_rx_is_closed(rx));
    int64_t v;
    ck_assert_tr_err(tr_mpsc_recv(rx, &v, TR_TEST_DEADLINE()), TR_ECLOSED);
    ck_assert_tr_ok(tr_mpsc_weak_drop(&w));
    ck_assert_tr_ok(tr_mpsc_rx_drop(&rx));
}
END_TEST

START_TEST(test_downgrade_drop_upgrade) {
    tr_mpsc_tx *tx, *c, *up = NULL;
    tr_mpsc_rx *rx;
    tr_mpsc_weak *w;
    ck_assert_tr_ok(make(_i, &tx, &rx, 1, NULL));
    ck_assert_tr_ok(tr_mpsc_tx_clone(tx, &c));
    ck_assert_tr_ok(tr_mpsc_tx_downgrade(c, &w));
    ck_assert_tr_ok(tr_mpsc_tx_drop(&c));
    ck_assert_tr_ok(tr_mpsc_tx_drop(&tx));
    ck_assert_tr_err(tr_mpsc_weak_upgrade(w, &up), TR_ECLOSED);
    ck_assert_tr_ok(tr_mpsc_weak_drop(&w));
    ck_assert_tr_ok(tr_mpsc_rx_drop(&rx));
}
END_TEST

/* A permit stands for tokio's OwnedPermit, which holds a sender. */
START_TEST(test_downgrade_get_permit_upgrade_no_senders) {
    tr_mpsc_tx *tx, *up = NULL;
    tr_mpsc_rx *rx;
    tr_mpsc_weak *w;
    tr_mpsc_permit p = TR_MPSC_PERMIT_INIT;
    ck_assert_tr_ok(tr_mpsc_new(&tx, &rx, 1, sizeof(int64_t)));
    ck_assert_tr_ok(tr_mpsc_tx_downgrade(tx, &w));
    ck_assert_tr_ok(tr_mpsc_reserve(tx, &p, TR_TEST_DEADLINE()));
    ck_assert_tr_ok(tr_mpsc_tx_drop(&tx)); /* reserve_owned consumed it */
    ck_assert(!tr_mpsc_rx_is_closed(rx));
    ck_assert_tr_ok(tr_mpsc_weak_upgrade(w, &up));
    int64_t v = 5, out = 0;
    ck_assert_tr_ok(tr_mpsc_permit_send(&p, &v));
    ck_assert_tr_ok(tr_mpsc_tx_drop(&up));
    ck_assert_tr_ok(tr_mpsc_recv(rx, &out, TR_TEST_DEADLINE()));
    ck_assert_int_eq(out, 5);
    ck_assert_tr_err(tr_mpsc_recv(rx, &out, TR_TEST_DEADLINE()), TR_ECLOSED);
    ck_assert_tr_err(tr_mpsc_weak_upgrade(w, &up), TR_ECLOSED);
    ck_assert_tr_ok(tr_mpsc_weak_drop(&w));
    ck_assert_tr_ok(tr_mpsc_rx_drop(&rx));
}
END_TEST

START_TEST(test_downgrade_upgrade_get_permit_no_senders) {
    tr_mpsc_tx *tx, *tx2, *up = NULL;
    tr_mpsc_rx *rx;
    tr_mpsc_weak *w;
    tr_mpsc_permit p = TR_MPSC_PERMIT_INIT;
    ck_assert_tr_ok(tr_mpsc_new(&tx, &rx, 1, sizeof(int64_t)));
    ck_assert_tr_ok(tr_mpsc_tx_clone(tx, &tx2));
    ck_assert_tr_ok(tr_mpsc_reserve(tx, &p, TR_TEST_DEADLINE()));
    ck_assert_tr_ok(tr_mpsc_tx_drop(&tx));
    ck_assert_tr_ok(tr_mpsc_tx_downgrade(tx2, &w));
    ck_assert_tr_ok(tr_mpsc_tx_drop(&tx2));
    ck_assert_tr_ok(tr_mpsc_weak_upgrade(w, &up));
    ck_assert_tr_ok(tr_mpsc_tx_drop(&up));
    ck_assert_tr_ok(tr_mpsc_permit_release(&p));
    ck_assert_tr_err(tr_mpsc_weak_upgrade(w, &up), TR_ECLOSED);
    ck_assert_tr_ok(tr_mpsc_weak_drop(&w));
    ck_assert_tr_ok(tr_mpsc_rx_drop(&rx));
}
END_TEST

START_TEST(test_tx_count_weak_sender) {
    tr_mpsc_tx *tx, *up = NULL;
    tr_mpsc_rx *rx;
    tr_mpsc_weak *w1, *w2;
    ck_assert_tr_ok(make(_i, &tx, &rx, 1, NULL));
    ck_assert_tr_ok(tr_mpsc_tx_downgrade(tx, &w1));
    ck_assert_tr_ok(tr_mpsc_tx_downgrade(tx, &w2));
    ck_assert_uint_eq(tr_mpsc_tx_strong_count(tx), 1);
    ck_assert_uint_eq(tr_mpsc_tx_weak_count(tx), 2);
    ck_assert_uint_eq(tr_mpsc_rx_sender_weak_count(rx), 2);
    ck_assert_tr_ok(tr_mpsc_tx_drop(&tx));
    ck_assert_tr_err(tr_mpsc_weak_upgrade(w1, &up), TR_ECLOSED);
    ck_assert_tr_err(tr_mpsc_weak_upgrade(w2, &up), TR_ECLOSED);
    ck_assert_tr_ok(tr_mpsc_weak_drop(&w1));
    ck_assert_tr_ok(tr_mpsc_weak_drop(&w2));
    ck_assert_tr_ok(tr_mpsc_rx_drop(&rx));
}
END_TEST

/* ---- counts (tokio's test_strong_weak_count family) ----------------------------- */

START_TEST(test_counts) {
    tr_mpsc_tx *tx, *tx2, *up;
    tr_mpsc_rx *rx;
    tr_mpsc_weak *w, *w2;
    ck_assert_tr_ok(make(_i, &tx, &rx, 4, NULL));
    ck_assert_uint_eq(tr_mpsc_tx_strong_count(tx), 1);
    ck_assert_uint_eq(tr_mpsc_tx_weak_count(tx), 0);
    ck_assert_tr_ok(tr_mpsc_tx_clone(tx, &tx2));
    ck_assert_uint_eq(tr_mpsc_tx_strong_count(tx), 2);
    ck_assert_uint_eq(tr_mpsc_rx_sender_strong_count(rx), 2);
    ck_assert_tr_ok(tr_mpsc_tx_downgrade(tx2, &w));
    ck_assert_uint_eq(tr_mpsc_weak_strong_count(w), 2);
    ck_assert_uint_eq(tr_mpsc_weak_weak_count(w), 1);
    ck_assert_tr_ok(tr_mpsc_weak_clone(w, &w2));
    ck_assert_uint_eq(tr_mpsc_weak_weak_count(w), 2);
    ck_assert_tr_ok(tr_mpsc_weak_upgrade(w2, &up));
    ck_assert_uint_eq(tr_mpsc_tx_strong_count(tx), 3);
    ck_assert_uint_eq(tr_mpsc_tx_weak_count(tx), 2);
    ck_assert_tr_ok(tr_mpsc_tx_drop(&up));
    ck_assert_tr_ok(tr_mpsc_tx_drop(&tx2));
    ck_assert_tr_ok(tr_mpsc_weak_drop(&w2));
    ck_assert_uint_eq(tr_mpsc_tx_strong_count(tx), 1);
    ck_assert_uint_eq(tr_mpsc_tx_weak_count(tx), 1);
    /* double drops and stale handles are refused, not crashes */
    ck_assert_tr_err(tr_mpsc_weak_drop(&w2), TR_EINVAL);
    ck_assert_tr_err(tr_mpsc_tx_drop(&tx2), TR_EINVAL);
    ck_assert_tr_err(tr_mpsc_weak_drop(NULL), TR_EINVAL);
    ck_assert_tr_err(tr_mpsc_weak_upgrade(NULL, &up), TR_EINVAL);
    ck_assert_tr_err(tr_mpsc_weak_upgrade(w, NULL), TR_EINVAL);
    ck_assert_tr_err(tr_mpsc_weak_clone(NULL, &w2), TR_EINVAL);
    ck_assert_tr_err(tr_mpsc_tx_downgrade(NULL, &w2), TR_EINVAL);
    ck_assert_uint_eq(tr_mpsc_weak_strong_count(NULL), 0);
    /* The weak handle outlives the receiver and the sender. */
    ck_assert_tr_ok(tr_mpsc_rx_drop(&rx));
    ck_assert_tr_ok(tr_mpsc_tx_drop(&tx));
    ck_assert_uint_eq(tr_mpsc_weak_strong_count(w), 0);
    ck_assert_tr_err(tr_mpsc_weak_upgrade(w, &up), TR_ECLOSED);
    ck_assert_tr_ok(tr_mpsc_weak_drop(&w));
}
END_TEST

/* ---- weak handles racing the last strong drop ------------------------------------ */

typedef struct {
    tr_mpsc_weak *w;
    atomic_int ups;
} race_arg;

static void *upgrader(void *p) {
    race_arg *a = p;
    for (int i = 0; i < 2000; i++) {
        tr_mpsc_tx *t = NULL;
        int rc = tr_mpsc_weak_upgrade(a->w, &t);
        if (rc == TR_ECLOSED)
            break;
        ck_assert_tr_ok(rc);
        int64_t v = i;
        int s = tr_mpsc_try_send(t, &v);
        ck_assert(s == 0 || s == TR_EFULL || s == TR_ECLOSED);
        ck_assert_tr_ok(tr_mpsc_tx_drop(&t));
        atomic_fetch_add(&a->ups, 1);
    }
    return NULL;
}

START_TEST(test_upgrade_race) {
    tr_mpsc_tx *tx;
    tr_mpsc_rx *rx;
    ck_assert_tr_ok(make(_i, &tx, &rx, 16, NULL));
    race_arg a = {NULL, 0};
    ck_assert_tr_ok(tr_mpsc_tx_downgrade(tx, &a.w));
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, upgrader, &a), 0);
    /* drain while they upgrade, then drop the last strong sender */
    int64_t v;
    for (int i = 0; i < 100; i++)
        (void)tr_mpsc_try_recv(rx, &v);
    ck_assert_tr_ok(tr_mpsc_tx_drop(&tx));
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    /* every upgraded sender is gone: the receiver ends after the drain */
    int rc;
    while ((rc = tr_mpsc_recv(rx, &v, TR_TEST_DEADLINE())) == 0)
        ;
    ck_assert_int_eq(rc, TR_ECLOSED);
    tr_mpsc_tx *t = NULL;
    ck_assert_tr_err(tr_mpsc_weak_upgrade(a.w, &t), TR_ECLOSED);
    ck_assert_tr_ok(tr_mpsc_weak_drop(&a.w));
    ck_assert_tr_ok(tr_mpsc_rx_drop(&rx));
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("mpsc_weak");
    TCase *tc = tr_tcase("weak");
    /* _i: 0 bounded, 1 unbounded */
    tcase_add_loop_test(tc, test_weak_sender, 0, 2);
    tcase_add_loop_test(tc, test_actor_weak_sender, 0, 2);
    tcase_add_loop_test(tc, test_msgs_dropped_on_rx_drop, 0, 2);
    tcase_add_loop_test(tc, test_downgrade_upgrade_success, 0, 2);
    tcase_add_loop_test(tc, test_downgrade_upgrade_failure, 0, 2);
    tcase_add_loop_test(tc, test_downgrade_drop_upgrade, 0, 2);
    tcase_add_test(tc, test_downgrade_get_permit_upgrade_no_senders);
    tcase_add_test(tc, test_downgrade_upgrade_get_permit_no_senders);
    tcase_add_loop_test(tc, test_tx_count_weak_sender, 0, 2);
    tcase_add_loop_test(tc, test_counts, 0, 2);
    tcase_add_loop_test(tc, test_upgrade_race, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

TR_TEST_MAIN(suite)
