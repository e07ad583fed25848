/* test_select.c — tr_select() with the runtime's own clauses and a toy one.
 *
 * The channel and lock suites test their own clauses; this suite tests the
 * mechanism: order and random choice, deadlines, cancellation, bad input,
 * a task's end, fd readiness in tasks and on plain threads, and — with a
 * tiny "token box" primitive whose take is a clause — the promise that
 * exactly one clause takes something, however putters on other workers
 * and threads race the select.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <unistd.h>

#include "testutil.h"

/* ---- a token box whose take is a select clause ------------------------------- */

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
    e->result = 1; /* the token is the taker's now */
    tr_waiter_wake(e->waiter);
}

static int box_arm(tr_clause *c, tr_wait *e) {
    box *b = c->obj;
    tr_spin_lock(&b->lock);
    if (b->tokens > 0) {
        if (!tr_waiter_claim(e->waiter, e)) {
            tr_spin_unlock(&b->lock);
            return TR_SELECT_LOST;
        }
        b->tokens--;
        tr_spin_unlock(&b->lock);
        c->result = 1;
        return TR_SELECT_DONE;
    }
    tr_waitq_push(&b->takers, e);
    tr_spin_unlock(&b->lock);
    return TR_SELECT_ARMED;
}

static void box_disarm(tr_clause *c, tr_wait *e) {
    box *b = c->obj;
    tr_spin_lock(&b->lock);
    if (e->linked)
        tr_waitq_remove(&b->takers, e);
    tr_spin_unlock(&b->lock);
}

static const tr_clause_ops box_ops = {box_arm, box_disarm, NULL};

static void box_clause(tr_clause *c, box *b) {
    c->ops = &box_ops;
    c->obj = b;
    c->buf = c->aux = NULL;
    c->n = 0;
}

/* ---- basics --------------------------------------------------------------------- */

static void *empty_select_times_out(void *arg) {
    (void)arg;
    int64_t dl = tr_after_ms(20);
    ck_assert_tr_err(tr_select(NULL, 0, dl, 0), TR_ETIMEDOUT);
    ck_assert(tr_now() >= dl);
    tr_clause c;
    tr_clause_never(&c);
    dl = tr_after_ms(10);
    ck_assert_tr_err(tr_select(&c, 1, dl, 0), TR_ETIMEDOUT);
    ck_assert(tr_now() >= dl);
    return NULL;
}

START_TEST(test_deadline_only) {
    tr_runtime *rt = tr_test_runtime(workers_for(_i));
    ck_assert_tr_ok(tr_runtime_block_on(rt, empty_select_times_out, NULL, NULL));
    tr_runtime_free(&rt);
    empty_select_times_out(NULL); /* and on a plain thread */
}
END_TEST

START_TEST(test_bad_input) {
    tr_clause c[2];
    ck_assert_tr_err(tr_select(NULL, 1, TR_NEVER, 0), TR_EINVAL);
    tr_task_join_clause(&c[0], NULL, NULL);
    ck_assert_tr_err(tr_select(c, 1, TR_NEVER, 0), TR_EINVAL);
    tr_fd_clause(&c[0], -1, TR_READABLE);
    ck_assert_tr_err(tr_select(c, 1, TR_NEVER, 0), TR_EINVAL);
    tr_fd_clause(&c[0], 0, 0);
    ck_assert_tr_err(tr_select(c, 1, TR_NEVER, 0), TR_EINVAL);
    tr_clause_never(&c[0]);
    tr_fd_clause(&c[1], 0, 8);
    ck_assert_tr_err(tr_select(c, 2, tr_after_ms(1), 0), TR_EINVAL);
}
END_TEST

/* ---- a task's end ---------------------------------------------------------------- */

static void *sleep_then(void *arg) {
    tr_sleep_ms((intptr_t)arg);
    return arg;
}

static void *join_body(void *arg) {
    tr_runtime *rt = arg;
    tr_task *slow = spawn_on(rt, 1, sleep_then, (void *)(intptr_t)5000);
    tr_task *fast = spawn_on(rt, 2, sleep_then, (void *)(intptr_t)10);
    tr_clause c[2];
    void *res_slow = NULL, *res_fast = NULL;
    tr_task_join_clause(&c[0], slow, &res_slow);
    tr_task_join_clause(&c[1], fast, &res_fast);
    int i = tr_select(c, 2, TR_TEST_DEADLINE(), 0);
    ck_assert_int_eq(i, 1);
    ck_assert_tr_ok(c[1].result);
    ck_assert_ptr_eq(res_fast, (void *)(intptr_t)10);
    ck_assert_ptr_null(res_slow);
    /* The clause not chosen left its handle intact. */
    ck_assert_tr_ok(tr_task_cancel(slow));
    ck_assert_int_eq(join_rc(slow), 5000);

    /* Joining oneself is a deadlock, reported as such. */
    tr_task_join_clause(&c[0], tr_task_self(), NULL);
    ck_assert_int_eq(tr_select(c, 1, TR_TEST_DEADLINE(), 0), 0);
    ck_assert_tr_err(c[0].result, TR_EDEADLK);
    return NULL;
}

START_TEST(test_join_clause) {
    tr_runtime *rt = tr_test_runtime(workers_for(_i));
    ck_assert_tr_ok(tr_runtime_block_on(rt, join_body, rt, NULL));
    tr_runtime_free(&rt);
}
END_TEST

/* A plain thread selects on a task's end and a pipe: the task's wake must
 * reach a thread that sleeps in ppoll(), not on its futex. */
START_TEST(test_join_clause_plain_thread) {
    tr_runtime *rt = tr_test_runtime(2);
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    tr_task *t = NULL;
    ck_assert_tr_ok(tr_spawn_ex(rt, NULL, &t, sleep_then, (void *)(intptr_t)20));
    tr_clause c[2];
    void *res = NULL;
    tr_fd_clause(&c[0], p[0], TR_READABLE);
    tr_task_join_clause(&c[1], t, &res);
    ck_assert_int_eq(tr_select(c, 2, TR_TEST_DEADLINE(), 0), 1);
    ck_assert_ptr_eq(res, (void *)(intptr_t)20);
    close(p[0]);
    close(p[1]);
    tr_runtime_free(&rt);
}
END_TEST

/* ---- fd readiness ----------------------------------------------------------------- */

static void *write_later(void *arg) {
    int fd = (int)(intptr_t)arg;
    tr_sleep_ms(20);
    char ch = 'x';
    ck_assert_int_eq(write(fd, &ch, 1), 1);
    return NULL;
}

static void fd_case(tr_runtime *rt) {
    int a[2], b[2];
    ck_assert_int_eq(pipe(a), 0);
    ck_assert_int_eq(pipe(b), 0);
    tr_clause c[2];
    tr_fd_clause(&c[0], a[0], TR_READABLE);
    tr_fd_clause(&c[1], b[0], TR_READABLE);
    /* Nothing ready: the deadline. */
    int64_t dl = tr_after_ms(15);
    ck_assert_tr_err(tr_select(c, 2, dl, 0), TR_ETIMEDOUT);
    ck_assert(tr_now() >= dl);
    /* b becomes readable later. */
    tr_task *t = spawn_on(rt, 1, write_later, (void *)(intptr_t)b[1]);
    ck_assert_int_eq(tr_select(c, 2, TR_TEST_DEADLINE(), 0), 1);
    ck_assert_tr_ok(c[1].result);
    join_rc(t);
    /* Both ready: the first in order, every time. */
    char ch = 'y';
    ck_assert_int_eq(write(a[1], &ch, 1), 1);
    for (int k = 0; k < 50; k++)
        ck_assert_int_eq(tr_select(c, 2, TR_TEST_DEADLINE(), 0), 0);
    /* TR_SELECT_RANDOM spreads among ready clauses. */
    int seen[2] = {0, 0};
    for (int k = 0; k < 200; k++) {
        int i = tr_select(c, 2, TR_TEST_DEADLINE(), TR_SELECT_RANDOM);
        ck_assert(i == 0 || i == 1);
        seen[i]++;
    }
    ck_assert_int_gt(seen[0], 0);
    ck_assert_int_gt(seen[1], 0);
    for (int k = 0; k < 2; k++) {
        close(a[k]);
        close(b[k]);
    }
}

static void *fd_body(void *arg) {
    fd_case(arg);
    return NULL;
}

START_TEST(test_fd_clause_task) {
    tr_runtime *rt = tr_test_runtime(workers_for(_i));
    ck_assert_tr_ok(tr_runtime_block_on(rt, fd_body, rt, NULL));
    tr_runtime_free(&rt);
}
END_TEST

START_TEST(test_fd_clause_plain_thread) {
    tr_runtime *rt = tr_test_runtime(2);
    fd_case(rt);
    tr_runtime_free(&rt);
}
END_TEST

/* ---- cancellation ------------------------------------------------------------------- */

static void *select_forever(void *arg) {
    box *b = arg;
    tr_clause c[2];
    box_clause(&c[0], b);
    tr_clause_never(&c[1]);
    return RC(tr_select(c, 2, TR_TEST_DEADLINE(), 0));
}

static void *cancel_body(void *arg) {
    tr_runtime *rt = arg;
    box b;
    box_init(&b);
    tr_task *t = spawn_on(rt, 1, select_forever, &b);
    tr_sleep_ms(5);
    ck_assert_tr_ok(tr_task_cancel(t));
    ck_assert_int_eq(join_rc(t), TR_ECANCELED);
    /* The cancelled select left nothing queued and took nothing. */
    ck_assert(tr_waitq_empty(&b.takers));
    box_put(&b);
    ck_assert_int_eq(b.tokens, 1);
    /* A cancelled task's select fails at once, even with a token ready. */
    tr_task_cancel(tr_task_self());
    tr_clause c;
    box_clause(&c, &b);
    ck_assert_tr_err(tr_select(&c, 1, TR_TEST_DEADLINE(), 0), TR_ECANCELED);
    ck_assert_int_eq(b.tokens, 1);
    return NULL;
}

START_TEST(test_cancel) {
    tr_runtime *rt = tr_test_runtime(workers_for(_i));
    ck_assert_tr_ok(tr_runtime_block_on(rt, cancel_body, rt, NULL));
    tr_runtime_free(&rt);
}
END_TEST

/* ---- exactly one winner under races -------------------------------------------------- */

#define NBOX 3
#define PUTS_PER 3000
#define NPUTTERS 4 /* two tasks, two plain threads */

static box boxes[NBOX];
static atomic_long taken;
static atomic_int putters_done;

static void put_many(intptr_t seed) {
    uint64_t s = (uint64_t)seed * 0x9E3779B97F4A7C15ull + 1;
    for (int k = 0; k < PUTS_PER; k++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        box_put(&boxes[s % NBOX]);
        if ((k & 63) == 0 && tr_task_self())
            tr_yield();
    }
    atomic_fetch_add(&putters_done, 1);
}

static void *put_task(void *arg) {
    put_many((intptr_t)arg);
    return NULL;
}

static void *put_thread(void *arg) {
    put_many((intptr_t)arg);
    return NULL;
}

/* Selects on all boxes with short deadlines until the putters are done and
 * the boxes are empty; timeouts and random order race the putters. */
static void take_all(void) {
    tr_clause c[NBOX];
    for (;;) {
        for (int i = 0; i < NBOX; i++)
            box_clause(&c[i], &boxes[i]);
        int i = tr_select(c, NBOX, tr_after_us(200), TR_SELECT_RANDOM);
        if (i >= 0) {
            ck_assert_int_eq(c[i].result, 1);
            atomic_fetch_add(&taken, 1);
            continue;
        }
        ck_assert_tr_err(i, TR_ETIMEDOUT);
        if (atomic_load(&putters_done) == NPUTTERS && atomic_load(&taken) == NPUTTERS * PUTS_PER)
            return;
        long left = 0;
        for (int b = 0; b < NBOX; b++) {
            tr_spin_lock(&boxes[b].lock);
            left += boxes[b].tokens;
            tr_spin_unlock(&boxes[b].lock);
        }
        if (atomic_load(&putters_done) == NPUTTERS && left == 0)
            return;
    }
}

static void *taker_task(void *arg) {
    (void)arg;
    take_all();
    return NULL;
}

static void *taker_thread(void *arg) {
    (void)arg;
    take_all();
    return NULL;
}

START_TEST(test_exactly_once) {
    tr_runtime *rt = tr_test_runtime(4);
    for (int i = 0; i < NBOX; i++)
        box_init(&boxes[i]);
    atomic_store(&taken, 0);
    atomic_store(&putters_done, 0);
    tr_task *takers[3], *puts[2];
    for (int i = 0; i < 3; i++)
        takers[i] = spawn_on(rt, i, taker_task, NULL);
    pthread_t tt, pt[2];
    ck_assert_int_eq(pthread_create(&tt, NULL, taker_thread, NULL), 0);
    for (int i = 0; i < 2; i++) {
        puts[i] = spawn_on(rt, i + 1, put_task, (void *)(intptr_t)(i + 1));
        ck_assert_int_eq(pthread_create(&pt[i], NULL, put_thread, (void *)(intptr_t)(i + 10)), 0);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(pt[i], NULL);
        ck_assert_tr_ok(tr_task_join_until(puts[i], NULL, TR_TEST_DEADLINE()));
    }
    for (int i = 0; i < 3; i++)
        ck_assert_tr_ok(tr_task_join_until(takers[i], NULL, TR_TEST_DEADLINE()));
    pthread_join(tt, NULL);
    long left = 0;
    for (int i = 0; i < NBOX; i++) {
        left += boxes[i].tokens;
        ck_assert(tr_waitq_empty(&boxes[i].takers));
    }
    ck_assert_int_eq(atomic_load(&taken) + left, NPUTTERS * PUTS_PER);
    ck_assert_int_eq(left, 0);
    tr_runtime_free(&rt);
}
END_TEST

static Suite *select_suite(void) {
    Suite *s = suite_create("select");
    TCase *tc = tr_tcase("core");
    tcase_add_loop_test(tc, test_deadline_only, 0, 2);
    tcase_add_test(tc, test_bad_input);
    tcase_add_loop_test(tc, test_join_clause, 0, 2);
    tcase_add_test(tc, test_join_clause_plain_thread);
    tcase_add_loop_test(tc, test_fd_clause_task, 0, 2);
    tcase_add_test(tc, test_fd_clause_plain_thread);
    tcase_add_loop_test(tc, test_cancel, 0, 2);
    tcase_add_test(tc, test_exactly_once);
    suite_add_tcase(s, tc);
    return s;
}

TR_TEST_MAIN(select_suite)
