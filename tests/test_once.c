/* test_once.c — tr_once (OnceCell) and tr_setonce (SetOnce), ported from
 * tokio's tests/sync_once_cell.rs and sync_set_once.rs, plus races across
 * workers and plain threads: the initializer runs exactly once when it
 * succeeds, is retried by the next waiter after it fails or its task is
 * cancelled, and every stored value is destroyed exactly once.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "testutil.h"
#include "tr_notify.h"
#include "tr_once.h"

static atomic_int drops;

static void count_drop(void *value, void *ctx) {
    (void)value;
    atomic_fetch_add((atomic_int *)ctx, 1);
}

static const tr_chan_opts counting = {count_drop, &drops};

/* ---- OnceCell: tokio's scenarios ------------------------------------------------------ */

START_TEST(drop_cell) {
    atomic_store(&drops, 0);
    tr_once o;
    ck_assert_tr_ok(tr_once_init(&o, sizeof(int), &counting));
    int v = 1;
    ck_assert_tr_ok(tr_once_set(&o, &v));
    ck_assert(tr_once_initialized(&o));
    ck_assert_tr_ok(tr_once_destroy(&o));
    ck_assert_int_eq(atomic_load(&drops), 1);
    /* an empty cell drops nothing */
    ck_assert_tr_ok(tr_once_init(&o, sizeof(int), &counting));
    ck_assert_tr_ok(tr_once_destroy(&o));
    ck_assert_int_eq(atomic_load(&drops), 1);
}
END_TEST

START_TEST(drop_into_inner_and_take) {
    atomic_store(&drops, 0);
    tr_once o;
    tr_once_init(&o, sizeof(int), &counting);
    int v = 7, out = 0;
    ck_assert_tr_ok(tr_once_set(&o, &v));
    ck_assert_tr_ok(tr_once_take(&o, &out)); /* the value is ours now */
    ck_assert_int_eq(out, 7);
    ck_assert_int_eq(atomic_load(&drops), 0);
    ck_assert(!tr_once_initialized(&o));
    ck_assert_tr_err(tr_once_take(&o, &out), TR_EEMPTY);
    /* empty again: can be set again; take(NULL) destroys in place */
    v = 8;
    ck_assert_tr_ok(tr_once_set(&o, &v));
    ck_assert_tr_ok(tr_once_take(&o, NULL));
    ck_assert_int_eq(atomic_load(&drops), 1);
    ck_assert_tr_ok(tr_once_destroy(&o));
    ck_assert_int_eq(atomic_load(&drops), 1);
}
END_TEST

START_TEST(set_get_twice_uninit) {
    atomic_store(&drops, 0);
    tr_once o;
    tr_once_init(&o, sizeof(int), &counting);
    int out = 0;
    ck_assert_tr_err(tr_once_get(&o, &out), TR_EEMPTY);
    int v = 5;
    ck_assert_tr_ok(tr_once_set(&o, &v));
    ck_assert_tr_ok(tr_once_get(&o, &out));
    ck_assert_int_eq(out, 5);
    v = 6;
    ck_assert_tr_err(tr_once_set(&o, &v), TR_EEXIST); /* already initialised */
    ck_assert_int_eq(atomic_load(&drops), 0);        /* 6 stayed with us */
    ck_assert_tr_ok(tr_once_get(&o, &out));
    ck_assert_int_eq(out, 5);
    ck_assert_tr_ok(tr_once_destroy(&o));
    ck_assert_int_eq(atomic_load(&drops), 1);
}
END_TEST

static tr_once go;
static tr_notify gate;
static atomic_int init_calls, started;

static int init_5(void *out, void *ctx) {
    (void)ctx;
    atomic_fetch_add(&init_calls, 1);
    *(int *)out = 5;
    return 0;
}

static int init_sleep_10(void *out, void *ctx) {
    (void)ctx;
    atomic_fetch_add(&init_calls, 1);
    atomic_fetch_add(&started, 1);
    int rc = tr_sleep_ms(2);
    if (rc)
        return rc;
    *(int *)out = 10;
    return 0;
}

/* Waits on the gate inside the initializer: cancelled, it fails. */
static int init_gated(void *out, void *ctx) {
    atomic_fetch_add(&init_calls, 1);
    atomic_fetch_add(&started, 1);
    int rc = tr_notify_notified(&gate, TR_TEST_DEADLINE());
    if (rc)
        return rc;
    *(int *)out = (int)(intptr_t)ctx;
    return 0;
}

static int init_fail(void *out, void *ctx) {
    (void)out;
    (void)ctx;
    atomic_fetch_add(&init_calls, 1);
    return TR_EAGAIN;
}

typedef struct call {
    tr_once_init_fn fn;
    void *ctx;
    int64_t deadline;
    int out;
} call;

static void *get_or_init_task(void *arg) {
    call *c = arg;
    atomic_fetch_add(&started, 1);
    return RC(tr_once_get_or_init(&go, c->fn, c->ctx, &c->out,
                                  c->deadline ? c->deadline : TR_TEST_DEADLINE()));
}

START_TEST(get_or_init) {
    tr_runtime *rt = tr_test_runtime(workers_for(_i));
    tr_once_init(&go, sizeof(int), NULL);
    atomic_store(&init_calls, 0);
    atomic_store(&started, 0);
    call a = {init_sleep_10, NULL, 0, 0}, b = {init_5, NULL, 0, 0};
    tr_task *ta = spawn_on(rt, 0, get_or_init_task, &a);
    await_count(&started, 2); /* a is inside its initializer */
    tr_task *tb = spawn_on(rt, 1, get_or_init_task, &b);
    ck_assert_int_eq(join_rc(ta), 0);
    ck_assert_int_eq(join_rc(tb), 0);
    ck_assert_int_eq(a.out, 10);
    ck_assert_int_eq(b.out, 10); /* b waited for a's value */
    ck_assert_int_eq(atomic_load(&init_calls), 1);
    ck_assert_tr_ok(tr_once_destroy(&go));
    tr_runtime_free(&rt);
}
END_TEST

/* tokio's get_or_init_panic: the initializer's task dies (here: is
 * cancelled inside its initializer); the waiter runs its own. */
START_TEST(get_or_init_cancelled_initializer) {
    tr_runtime *rt = tr_test_runtime(workers_for(_i));
    tr_once_init(&go, sizeof(int), NULL);
    tr_notify_init(&gate);
    atomic_store(&init_calls, 0);
    atomic_store(&started, 0);
    call a = {init_gated, (void *)(intptr_t)1, 0, 0}, b = {init_5, NULL, 0, 0};
    tr_task *ta = spawn_on(rt, 0, get_or_init_task, &a);
    await_count(&started, 2);
    tr_task *tb = spawn_on(rt, 1, get_or_init_task, &b);
    await_count(&started, 3);
    tr_sleep_ms(2); /* b likely waiting; correct either way */
    tr_task_cancel(ta);
    ck_assert_int_eq(join_rc(ta), TR_ECANCELED);
    ck_assert_int_eq(join_rc(tb), 0);
    ck_assert_int_eq(b.out, 5);
    ck_assert_int_eq(atomic_load(&init_calls), 2);
    ck_assert_tr_ok(tr_once_destroy(&go));
    tr_runtime_free(&rt);
}
END_TEST

START_TEST(set_while_initializing) {
    tr_runtime *rt = tr_test_runtime(2);
    tr_once_init(&go, sizeof(int), NULL);
    tr_notify_init(&gate);
    atomic_store(&started, 0);
    call a = {init_gated, (void *)(intptr_t)5, 0, 0};
    tr_task *ta = spawn_on(rt, 0, get_or_init_task, &a);
    await_count(&started, 2);
    int v = 10, out = 0;
    ck_assert_tr_err(tr_once_set(&go, &v), TR_EBUSY);
    ck_assert_tr_err(tr_once_get(&go, &out), TR_EEMPTY);
    ck_assert_tr_err(tr_once_take(&go, &out), TR_EBUSY);
    ck_assert_tr_err(tr_once_destroy(&go), TR_EBUSY);
    ck_assert(!tr_once_initialized(&go));
    tr_notify_one(&gate);
    ck_assert_int_eq(join_rc(ta), 0);
    ck_assert_tr_ok(tr_once_get(&go, &out));
    ck_assert_int_eq(out, 5);
    ck_assert_tr_err(tr_once_set(&go, &v), TR_EEXIST);
    ck_assert_tr_ok(tr_once_destroy(&go));
    tr_runtime_free(&rt);
}
END_TEST

START_TEST(get_or_try_init) {
    tr_once o;
    tr_once_init(&o, sizeof(int), NULL);
    atomic_store(&init_calls, 0);
    int out = 0;
    ck_assert_tr_err(tr_once_get_or_init(&o, init_fail, NULL, &out, TR_TEST_DEADLINE()),
                     TR_EAGAIN);
    ck_assert(!tr_once_initialized(&o));
    ck_assert_tr_ok(tr_once_get_or_init(&o, init_5, NULL, &out, TR_TEST_DEADLINE()));
    ck_assert_int_eq(out, 5);
    ck_assert_tr_ok(tr_once_get_or_init(&o, init_fail, NULL, NULL, TR_TEST_DEADLINE()));
    ck_assert_int_eq(atomic_load(&init_calls), 2); /* set: init not called */
    ck_assert_tr_ok(tr_once_destroy(&o));
}
END_TEST

static int init_recursive(void *out, void *ctx) {
    (void)ctx;
    int inner = 0;
    int rc = tr_once_get_or_init(&go, init_5, NULL, &inner, TR_TEST_DEADLINE());
    ck_assert_tr_err(rc, TR_EDEADLK);
    *(int *)out = 3;
    return 0;
}

static void *recursive_task(void *arg) {
    (void)arg;
    int out = 0;
    ck_assert_tr_ok(tr_once_get_or_init(&go, init_recursive, NULL, &out, TR_TEST_DEADLINE()));
    ck_assert_int_eq(out, 3);
    return NULL;
}

START_TEST(recursive_init_is_edeadlk) {
    tr_once_init(&go, sizeof(int), NULL);
    recursive_task(NULL); /* plain thread */
    tr_once_take(&go, NULL);
    tr_runtime *rt = tr_test_runtime(1);
    ck_assert_tr_ok(tr_runtime_block_on(rt, recursive_task, NULL, NULL));
    ck_assert_tr_ok(tr_once_destroy(&go));
    tr_runtime_free(&rt);
}
END_TEST

START_TEST(waiting_times_out) {
    tr_runtime *rt = tr_test_runtime(2);
    tr_once_init(&go, sizeof(int), NULL);
    tr_notify_init(&gate);
    atomic_store(&started, 0);
    call a = {init_gated, (void *)(intptr_t)9, 0, 0};
    tr_task *ta = spawn_on(rt, 0, get_or_init_task, &a);
    await_count(&started, 2);
    int out = 0;
    int64_t dl = tr_after_ms(10);
    ck_assert_tr_err(tr_once_get_or_init(&go, init_5, NULL, &out, dl), TR_ETIMEDOUT);
    ck_assert_int_ge(tr_now(), dl);
    tr_notify_one(&gate);
    ck_assert_int_eq(join_rc(ta), 0);
    ck_assert_tr_ok(tr_once_get_or_init(&go, init_5, NULL, &out, 0));
    ck_assert_int_eq(out, 9);
    ck_assert_tr_ok(tr_once_destroy(&go));
    tr_runtime_free(&rt);
}
END_TEST

/* ---- the race: 16 tasks on 4 workers and 4 threads -------------------------------------- */

#define RACERS 16
#define RACE_THREADS 4
#define FAILURES 3

static atomic_int race_errors;

/* Fails the first FAILURES times, yielding inside so others pile up. */
static int init_flaky(void *out, void *ctx) {
    (void)ctx;
    int k = atomic_fetch_add(&init_calls, 1);
    for (int i = 0; i < 3; i++) {
        if (tr_task_self())
            tr_yield();
        else
            sched_yield();
    }
    if (k < FAILURES)
        return TR_EAGAIN;
    *(int *)out = 1000 + k;
    return 0;
}

static void *racer(void *arg) {
    (void)arg;
    atomic_fetch_add(&started, 1);
    await_count(&started, RACERS + RACE_THREADS); /* line up */
    int out = -1;
    int rc = tr_once_get_or_init(&go, init_flaky, NULL, &out, TR_TEST_DEADLINE());
    if (rc == TR_EAGAIN) {
        atomic_fetch_add(&race_errors, 1);
        return RC(0);
    }
    ck_assert_tr_ok(rc);
    ck_assert_int_eq(out, 1000 + FAILURES);
    return RC(0);
}

START_TEST(race_init_once_retry_after_failure) {
    tr_runtime *rt = tr_test_runtime(4);
    atomic_store(&drops, 0);
    tr_once_init(&go, sizeof(int), &counting);
    atomic_store(&init_calls, 0);
    atomic_store(&started, 0);
    atomic_store(&race_errors, 0);
    tr_task *t[RACERS];
    for (int i = 0; i < RACERS; i++)
        t[i] = spawn_on(rt, i, racer, NULL);
    pthread_t th[RACE_THREADS];
    for (int i = 0; i < RACE_THREADS; i++)
        pthread_create(&th[i], NULL, racer, NULL);
    for (int i = 0; i < RACERS; i++)
        join_rc(t[i]);
    for (int i = 0; i < RACE_THREADS; i++)
        pthread_join(th[i], NULL);
    ck_assert_int_eq(atomic_load(&init_calls), FAILURES + 1); /* one success */
    ck_assert_int_eq(atomic_load(&race_errors), FAILURES);   /* each failure to its caller */
    ck_assert_tr_ok(tr_once_destroy(&go));
    ck_assert_int_eq(atomic_load(&drops), 1);
    tr_runtime_free(&rt);
}
END_TEST

/* Random cancellation of racers, some of them inside the initializer. */
static int init_slow(void *out, void *ctx) {
    (void)ctx;
    atomic_fetch_add(&init_calls, 1);
    int rc = tr_sleep_ms(1);
    if (rc)
        return rc;
    *(int *)out = 77;
    return 0;
}

static void *cancellable_racer(void *arg) {
    (void)arg;
    int out = -1;
    int rc = tr_once_get_or_init(&go, init_slow, NULL, &out, TR_TEST_DEADLINE());
    if (rc == 0)
        ck_assert_int_eq(out, 77);
    else
        ck_assert_tr_err(rc, TR_ECANCELED);
    return RC(rc);
}

START_TEST(race_with_cancellation) {
    for (int round = 0; round < 20; round++) {
        tr_runtime *rt = tr_test_runtime(4);
        tr_once_init(&go, sizeof(int), NULL);
        atomic_store(&init_calls, 0);
        tr_task *t[RACERS];
        for (int i = 0; i < RACERS; i++)
            t[i] = spawn_on(rt, i, cancellable_racer, NULL);
        unsigned seed = (unsigned)round;
        for (int i = 0; i < RACERS; i += 1 + rand_r(&seed) % 4)
            tr_task_cancel(t[i]);
        int ok = 0;
        for (int i = 0; i < RACERS; i++)
            ok += join_rc(t[i]) == 0;
        int out = 0;
        if (ok) {
            ck_assert_tr_ok(tr_once_get(&go, &out));
            ck_assert_int_eq(out, 77);
        }
        /* one init per cancelled initializer, plus the one that stuck */
        ck_assert_int_le(atomic_load(&init_calls), RACERS - ok + 1);
        ck_assert_tr_ok(tr_once_destroy(&go));
        tr_runtime_free(&rt);
    }
}
END_TEST

START_TEST(once_bad_input) {
    tr_once o;
    ck_assert_tr_err(tr_once_init(NULL, 4, NULL), TR_EINVAL);
    ck_assert_tr_err(tr_once_init(&o, 0, NULL), TR_EINVAL);
    tr_once zero = {0};
    int v = 1;
    ck_assert_tr_err(tr_once_get(&zero, &v), TR_EINVAL);
    ck_assert_tr_err(tr_once_set(&zero, &v), TR_EINVAL);
    ck_assert_tr_err(tr_once_take(&zero, &v), TR_EINVAL);
    ck_assert_tr_err(tr_once_destroy(&zero), TR_EINVAL);
    ck_assert_tr_err(tr_once_get_or_init(&zero, init_5, NULL, &v, 0), TR_EINVAL);
    ck_assert(!tr_once_initialized(NULL));
    ck_assert_tr_ok(tr_once_init(&o, sizeof v, NULL));
    ck_assert_tr_err(tr_once_get_or_init(&o, NULL, NULL, &v, 0), TR_EINVAL);
    ck_assert_tr_err(tr_once_set(&o, NULL), TR_EINVAL);
    ck_assert_tr_ok(tr_once_destroy(&o));
    ck_assert_tr_err(tr_once_destroy(&o), TR_EINVAL);
    ck_assert_tr_err(tr_once_get(&o, &v), TR_EINVAL);
}
END_TEST

/* ---- SetOnce ------------------------------------------------------------------------------ */

static tr_setonce gs;

START_TEST(setonce_drop_and_twice) {
    atomic_store(&drops, 0);
    tr_setonce s;
    ck_assert_tr_ok(tr_setonce_init(&s, sizeof(int), &counting));
    int out = 0, v = 5;
    ck_assert_tr_err(tr_setonce_get(&s, &out), TR_EEMPTY);
    ck_assert(!tr_setonce_initialized(&s));
    ck_assert_tr_ok(tr_setonce_set(&s, &v));
    ck_assert_tr_ok(tr_setonce_get(&s, &out));
    ck_assert_int_eq(out, 5);
    v = 6;
    ck_assert_tr_err(tr_setonce_set(&s, &v), TR_EEXIST);
    ck_assert_int_eq(atomic_load(&drops), 0);
    ck_assert_tr_ok(tr_setonce_wait(&s, &out, 0)); /* set: no wait */
    ck_assert_int_eq(out, 5);
    ck_assert_tr_ok(tr_setonce_destroy(&s));
    ck_assert_int_eq(atomic_load(&drops), 1);
    /* unset: nothing dropped */
    tr_setonce_init(&s, sizeof(int), &counting);
    ck_assert_tr_ok(tr_setonce_destroy(&s));
    ck_assert_int_eq(atomic_load(&drops), 1);
}
END_TEST

static atomic_int waiting;

static void *setonce_waiter(void *arg) {
    (void)arg;
    int out = -1;
    atomic_fetch_add(&waiting, 1);
    int rc = tr_setonce_wait(&gs, &out, TR_TEST_DEADLINE());
    ck_assert_tr_ok(rc);
    return RC(out);
}

static void *setonce_setter(void *arg) {
    int v = (int)(intptr_t)arg;
    return RC(tr_setonce_set(&gs, &v));
}

START_TEST(setonce_set_and_wait_tasks_threads) {
    enum { TASKS = 12, THREADS = 3 };
    tr_runtime *rt = tr_test_runtime(4);
    tr_setonce_init(&gs, sizeof(int), NULL);
    atomic_store(&waiting, 0);
    tr_task *t[TASKS];
    pthread_t th[THREADS];
    for (int i = 0; i < TASKS; i++)
        t[i] = spawn_on(rt, i, setonce_waiter, NULL);
    for (int i = 0; i < THREADS; i++)
        pthread_create(&th[i], NULL, setonce_waiter, NULL);
    await_count(&waiting, TASKS + THREADS);
    tr_sleep_ms(2);
    /* two setters race, a task and a thread: exactly one wins */
    tr_task *st = spawn_on(rt, 2, setonce_setter, (void *)(intptr_t)4);
    pthread_t sth;
    pthread_create(&sth, NULL, setonce_setter, (void *)(intptr_t)3);
    int r1 = join_rc(st);
    void *r2;
    pthread_join(sth, &r2);
    ck_assert((r1 == 0) != ((int)(intptr_t)r2 == 0));
    ck_assert_int_eq(r1 == 0 ? (int)(intptr_t)r2 : r1, TR_EEXIST);
    int winner = r1 == 0 ? 4 : 3;
    for (int i = 0; i < TASKS; i++)
        ck_assert_int_eq(join_rc(t[i]), winner);
    for (int i = 0; i < THREADS; i++) {
        void *r;
        pthread_join(th[i], &r);
        ck_assert_int_eq((int)(intptr_t)r, winner);
    }
    ck_assert_tr_ok(tr_setonce_destroy(&gs));
    tr_runtime_free(&rt);
}
END_TEST

static void *setonce_wait_forever(void *arg) {
    (void)arg;
    atomic_fetch_add(&waiting, 1);
    return RC(tr_setonce_wait(&gs, NULL, TR_NEVER));
}

START_TEST(setonce_timeout_and_cancel) {
    tr_runtime *rt = tr_test_runtime(2);
    tr_setonce_init(&gs, sizeof(int), NULL);
    atomic_store(&waiting, 0);
    int64_t dl = tr_after_ms(10);
    int out = -1;
    ck_assert_tr_err(tr_setonce_wait(&gs, &out, dl), TR_ETIMEDOUT);
    ck_assert_int_ge(tr_now(), dl);
    ck_assert_int_eq(out, -1);
    tr_task *t = spawn_on(rt, 1, setonce_wait_forever, NULL);
    await_count(&waiting, 1);
    tr_sleep_ms(2);
    tr_task_cancel(t);
    ck_assert_int_eq(join_rc(t), TR_ECANCELED);
    ck_assert_tr_ok(tr_setonce_destroy(&gs)); /* nobody left registered */
    tr_runtime_free(&rt);
}
END_TEST

START_TEST(setonce_select) {
    tr_setonce a, b;
    tr_setonce_init(&a, sizeof(int), NULL);
    tr_setonce_init(&b, sizeof(int), NULL);
    int va = -1, vb = -1, v = 2;
    tr_setonce_set(&b, &v);
    tr_clause c[2];
    ck_assert_tr_ok(tr_setonce_wait_clause(&c[0], &a, &va));
    ck_assert_tr_ok(tr_setonce_wait_clause(&c[1], &b, &vb));
    ck_assert_int_eq(tr_select(c, 2, TR_TEST_DEADLINE(), 0), 1);
    ck_assert_int_eq(c[1].result, 0);
    ck_assert_int_eq(vb, 2);
    ck_assert_int_eq(va, -1);
    tr_clause_never(&c[1]);
    ck_assert_tr_err(tr_select(c, 2, tr_after_ms(2), 0), TR_ETIMEDOUT);
    ck_assert_tr_ok(tr_setonce_destroy(&a)); /* the timed-out clause left nothing */
    ck_assert_tr_ok(tr_setonce_destroy(&b));
    ck_assert_tr_err(tr_setonce_wait_clause(&c[0], &a, &va), TR_EINVAL);
    ck_assert_tr_err(tr_select(c, 1, 0, 0), TR_EINVAL);
}
END_TEST

START_TEST(setonce_bad_input) {
    tr_setonce s;
    int v = 0;
    ck_assert_tr_err(tr_setonce_init(NULL, 4, NULL), TR_EINVAL);
    ck_assert_tr_err(tr_setonce_init(&s, 0, NULL), TR_EINVAL);
    tr_setonce zero = {0};
    ck_assert_tr_err(tr_setonce_set(&zero, &v), TR_EINVAL);
    ck_assert_tr_err(tr_setonce_get(&zero, &v), TR_EINVAL);
    ck_assert_tr_err(tr_setonce_wait(&zero, &v, 0), TR_EINVAL);
    ck_assert_tr_err(tr_setonce_destroy(&zero), TR_EINVAL);
    ck_assert_tr_err(tr_setonce_wait_clause(NULL, &zero, &v), TR_EINVAL);
    ck_assert(!tr_setonce_initialized(NULL));
    tr_setonce_init(&s, sizeof v, NULL);
    ck_assert_tr_err(tr_setonce_set(&s, NULL), TR_EINVAL);
    ck_assert_tr_ok(tr_setonce_destroy(&s));
    ck_assert_tr_err(tr_setonce_destroy(&s), TR_EINVAL);
    ck_assert_tr_err(tr_setonce_set(&s, &v), TR_EINVAL);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("once");
    TCase *tc = tr_tcase("oncecell");
    tcase_add_test(tc, drop_cell);
    tcase_add_test(tc, drop_into_inner_and_take);
    tcase_add_test(tc, set_get_twice_uninit);
    tcase_add_loop_test(tc, get_or_init, 0, 2);
    tcase_add_loop_test(tc, get_or_init_cancelled_initializer, 0, 2);
    tcase_add_test(tc, set_while_initializing);
    tcase_add_test(tc, get_or_try_init);
    tcase_add_test(tc, recursive_init_is_edeadlk);
    tcase_add_test(tc, waiting_times_out);
    tcase_add_test(tc, race_init_once_retry_after_failure);
    tcase_add_test(tc, race_with_cancellation);
    tcase_add_test(tc, once_bad_input);
    suite_add_tcase(s, tc);
    tc = tr_tcase("setonce");
    tcase_add_test(tc, setonce_drop_and_twice);
    tcase_add_test(tc, setonce_set_and_wait_tasks_threads);
    tcase_add_test(tc, setonce_timeout_and_cancel);
    tcase_add_test(tc, setonce_select);
    tcase_add_test(tc, setonce_bad_input);
    suite_add_tcase(s, tc);
    return s;
}

TR_TEST_MAIN(suite)
