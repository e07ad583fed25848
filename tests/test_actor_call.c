/* test_actor_call.c — call and cast: replies (at once, kept, forwarded,
 * dropped, late), deadlines and cancellation of a waiting caller, call
 * cycles, the four overflow policies, calls across workers and from plain
 * threads, and a stress run where every request and every reply is
 * accounted for exactly once.
 */
#include "actor_testutil.h"

typedef struct call_arg {
    tr_actor_ref r;
    int op, arg;
    int64_t deadline;
    long v;
    long *buf; /* reply buffer; NULL: &v */
} call_arg;

static void *caller_task(void *p) {
    call_arg *a = p;
    tmsg m = mk(a->op, a->arg);
    int64_t dl = a->deadline ? a->deadline : TR_TEST_DEADLINE();
    int rc = tr_actor_call(a->r, &m, a->buf ? a->buf : &a->v, dl);
    if (rc == TR_EINVAL || rc == TR_ENOMEM)
        payload_free(m.payload);
    return RC(rc);
}

static tr_task *spawn_caller(call_arg *a, int worker) {
    return spawn_on(tr_runtime_current(), worker, caller_task, a);
}

/* ---- replies ------------------------------------------------------------------------------ */

static void *reply_kinds_body(void *arg) {
    (void)arg;
    tr_actor_ref r = spawn_probe(NULL);
    long v = 0;
    int64_t t0 = tr_now();
    ck_assert_tr_err(call_op(r, OP_NOREPLY, 0, &v, TR_TEST_DEADLINE()), TR_EDOWN);
    ck_assert_tr_err(call_op(r, OP_DROPREPLY, 0, &v, TR_TEST_DEADLINE()), TR_EDOWN);
    ck_assert(tr_now() - t0 < 5000000000LL); /* at once, not at the deadline */
    ck_assert_tr_ok(call_op(r, OP_ADD, 4, &v, TR_TEST_DEADLINE()));
    ck_assert_int_eq(v, 4); /* the actor lives on */
    /* Kept and answered by another actor. */
    tr_actor_ref b = spawn_probe(NULL);
    ck_assert_tr_ok(call_op(b, OP_ADD, 5, &v, TR_TEST_DEADLINE()));
    tmsg m = mk(OP_FORWARD, 0);
    m.target = b;
    ck_assert_tr_ok(tr_actor_call(r, &m, &v, TR_TEST_DEADLINE()));
    ck_assert_int_eq(v, 1005);
    /* A reply is a value of reply_size bytes in the caller's buffer. */
    ck_assert_tr_ok(tr_actor_stop(r, 0, TR_TEST_DEADLINE()));
    ck_assert_tr_ok(tr_actor_stop(b, 0, TR_TEST_DEADLINE()));
    check_payloads();
    return NULL;
}

START_TEST(reply_kinds) {
    probe_reset();
    run_in(workers_for(_i), reply_kinds_body, NULL);
}
END_TEST

/* The caller gives up; the reply comes later.  The caller's buffer is on
 * the heap and freed as soon as the call returns, so a late write into it
 * is a use-after-free that ASan and valgrind report; the late value (a heap
 * pointer) stays with the replier, which destroys it. */
static void *late_reply_body(void *arg) {
    (void)arg;
    tr_actor_ref r = spawn_probe(NULL);
    call_arg a = {r, OP_KEEP, 0, tr_after_ms(30), 0, malloc(sizeof(long))};
    tr_task *c = spawn_caller(&a, 0);
    int64_t dl = TR_TEST_DEADLINE();
    while (!atomic_load(&P.kept)) {
        ck_assert(tr_now() < dl);
        tr_sleep_ms(1);
    }
    tr_reply *k = atomic_load(&P.kept);
    ck_assert(tr_reply_is_waiting(k) || tr_now() >= a.deadline);
    ck_assert_int_eq(join_rc(c), TR_ETIMEDOUT);
    free(a.buf);
    ck_assert(!tr_reply_is_waiting(k));
    int *late = payload_new(); /* a reply value that owns memory */
    long lv = (long)(intptr_t)late;
    ck_assert_tr_err(tr_reply_send(k, &lv), TR_ECLOSED);
    payload_free(late); /* ECLOSED: still ours to destroy */
    /* A cancelled caller, the same way. */
    atomic_store(&P.kept, NULL);
    a.deadline = TR_NEVER;
    a.buf = malloc(sizeof(long));
    c = spawn_caller(&a, 0);
    while (!atomic_load(&P.kept)) {
        ck_assert(tr_now() < dl);
        tr_sleep_ms(1);
    }
    k = atomic_load(&P.kept);
    ck_assert(tr_reply_is_waiting(k));
    ck_assert_tr_ok(tr_task_cancel(c));
    ck_assert_int_eq(join_rc(c), TR_ECANCELED);
    free(a.buf);
    late = payload_new();
    lv = (long)(intptr_t)late;
    ck_assert_tr_err(tr_reply_send(k, &lv), TR_ECLOSED);
    payload_free(late);
    /* Kept, and the keeper dies: the caller hears at once. */
    atomic_store(&P.kept, NULL);
    a.deadline = 0;
    a.buf = NULL;
    c = spawn_caller(&a, 0);
    while (!atomic_load(&P.kept)) {
        ck_assert(tr_now() < dl);
        tr_sleep_ms(1);
    }
    k = atomic_load(&P.kept);
    int64_t t0 = tr_now();
    ck_assert_tr_ok(tr_actor_kill(r));
    ck_assert_int_eq(join_rc(c), TR_EDOWN);
    ck_assert(tr_now() - t0 < 5000000000LL);
    ck_assert(!tr_reply_is_waiting(k));
    ck_assert_tr_err(tr_reply_send(k, &lv), TR_ECLOSED); /* the keeper's slot, used up */
    check_payloads();
    return NULL;
}

START_TEST(late_reply_dropped_safely) {
    probe_reset();
    run_in(workers_for(_i), late_reply_body, NULL);
}
END_TEST

/* ---- cycles -------------------------------------------------------------------------------- */

static void *cycle_body(void *arg) {
    (void)arg;
    tr_actor_opts o[3] = {{0}, {0}, {0}};
    tr_actor_ref a, b, c;
    int nw = tr_runtime_workers(tr_runtime_current());
    for (int i = 0; i < 3; i++)
        o[i].worker = TR_WORKER(i % nw); /* the cycle spans workers when it can */
    a = spawn_probe(&o[0]);
    b = spawn_probe(&o[1]);
    c = spawn_probe(&o[2]);
    /* test -> a -> b -> c -> a: c's call would close the cycle.  Each
     * message says whom its receiver calls and with what. */
    tmsg c_msg = {.op = OP_GET};                                    /* what c sends a */
    tmsg b_msg = {.op = OP_CALL, .target = a, .next_call = &c_msg}; /* what b sends c */
    tmsg a_msg = {.op = OP_CALL, .target = c, .next_call = &b_msg}; /* what a sends b */
    tmsg a_to_b = mk(OP_CALL, 0);
    a_to_b.target = b;
    a_to_b.next_call = &a_msg;
    long v = 0;
    ck_assert_tr_ok(tr_actor_call(a, &a_to_b, &v, TR_TEST_DEADLINE()));
    ck_assert_int_eq(v, TR_EDEADLK);
    /* Two actors: a -> b -> a. */
    tmsg b_to_a = {.op = OP_CALL, .target = a};
    tmsg m = mk(OP_CALL, 0);
    m.target = b;
    m.next_call = &b_to_a;
    ck_assert_tr_ok(tr_actor_call(a, &m, &v, TR_TEST_DEADLINE()));
    ck_assert_int_eq(v, TR_EDEADLK);
    /* No cycle: a -> b -> c answers c's sum. */
    ck_assert_tr_ok(call_op(c, OP_ADD, 42, &v, TR_TEST_DEADLINE()));
    tmsg c_get = {.op = OP_GET};
    tmsg b_calls_c = {.op = OP_CALL, .target = c, .next_call = &c_get};
    m = mk(OP_CALL, 0);
    m.target = b;
    m.next_call = &b_calls_c;
    ck_assert_tr_ok(tr_actor_call(a, &m, &v, TR_TEST_DEADLINE()));
    ck_assert_int_eq(v, 42);
    /* The actors are all fine afterwards. */
    ck_assert_tr_ok(call_op(a, OP_GET, 0, &v, TR_TEST_DEADLINE()));
    ck_assert_tr_ok(tr_actor_stop(a, 0, TR_TEST_DEADLINE()));
    ck_assert_tr_ok(tr_actor_stop(b, 0, TR_TEST_DEADLINE()));
    ck_assert_tr_ok(tr_actor_stop(c, 0, TR_TEST_DEADLINE()));
    check_payloads();
    return NULL;
}

START_TEST(call_cycle_three_actors) {
    probe_reset();
    run_in(workers_for(_i), cycle_body, NULL);
}
END_TEST

/* ---- overflow policies ------------------------------------------------------------------------- */

/* An actor with capacity 2 held at the gate, so its mailbox fills. */
static tr_actor_ref gated_actor(int policy) {
    tr_actor_opts o = {0};
    o.capacity = 2;
    o.overflow = policy;
    tr_actor_ref r = spawn_probe(&o);
    ck_assert_tr_ok(cast_op(r, OP_GATE, 0, TR_TEST_DEADLINE()));
    await_in_gate(1);
    ck_assert_tr_ok(cast_op(r, OP_ADD, 1, TR_TEST_DEADLINE()));
    ck_assert_tr_ok(cast_op(r, OP_ADD, 2, TR_TEST_DEADLINE()));
    return r;
}

static void finish_gated(tr_actor_ref r, long want_sum, int want_dropped) {
    ck_assert_tr_ok(tr_sem_release(&P.gate, 1));
    int64_t dl = TR_TEST_DEADLINE();
    tr_actor_info info;
    do { /* drained: a GET now finds room under any policy */
        ck_assert(tr_now() < dl);
        tr_yield();
        ck_assert_tr_ok(tr_actor_info_get(r, &info));
    } while (info.queued > 0 || atomic_load(&P.in_gate) > 0);
    long v;
    ck_assert_tr_ok(call_op(r, OP_GET, 0, &v, TR_TEST_DEADLINE()));
    ck_assert_int_eq(v, want_sum);
    ck_assert_tr_ok(tr_actor_info_get(r, &info));
    ck_assert_int_eq(info.dropped, want_dropped);
    ck_assert_int_eq(info.high_water, 2);
    ck_assert_tr_ok(tr_actor_stop(r, 0, TR_TEST_DEADLINE()));
    check_payloads();
}

typedef struct cast_arg {
    tr_actor_ref r;
    int arg;
} cast_arg;

static void *caster(void *p) {
    cast_arg *a = p;
    return RC(cast_op(a->r, OP_ADD, a->arg, TR_TEST_DEADLINE()));
}

static void *overflow_wait_body(void *arg) {
    (void)arg;
    tr_actor_ref r = gated_actor(TR_OVERFLOW_WAIT);
    ck_assert_tr_err(cast_op(r, OP_ADD, 100, tr_after_ms(10)), TR_ETIMEDOUT);
    ck_assert_tr_err(cast_op(r, OP_ADD, 100, 0), TR_ETIMEDOUT); /* a past deadline */
    tmsg m = mk(OP_ADD, 100);
    ck_assert_tr_err(tr_actor_try_cast(r, &m), TR_EFULL); /* whatever the policy */
    payload_free(m.payload);
    /* Two senders wait; they get in in order. */
    cast_arg a1 = {r, 10}, a2 = {r, 20};
    tr_task *t1 = spawn_on(tr_runtime_current(), 0, caster, &a1);
    tr_sleep_ms(5);
    tr_task *t2 = spawn_on(tr_runtime_current(), 0, caster, &a2);
    tr_sleep_ms(5);
    /* A call waits for room too, and its answer may come before it parks
     * on the reply: that path must work (PENDING). */
    call_arg c = {r, OP_ADD, 100, 0, 0, NULL};
    tr_task *tc = spawn_on(tr_runtime_current(), 0, caller_task, &c);
    tr_sleep_ms(5);
    ck_assert_tr_ok(tr_sem_release(&P.gate, 1));
    ck_assert_int_eq(join_rc(t1), 0);
    ck_assert_int_eq(join_rc(t2), 0);
    ck_assert_int_eq(join_rc(tc), 0);
    ck_assert_int_eq(c.v, 133);
    ck_assert_int_eq(atomic_load(&P.order[1]), 1);
    ck_assert_int_eq(atomic_load(&P.order[2]), 2);
    ck_assert_int_eq(atomic_load(&P.order[3]), 10);
    ck_assert_int_eq(atomic_load(&P.order[4]), 20);
    ck_assert_int_eq(atomic_load(&P.order[5]), 100);
    tr_actor_info info;
    ck_assert_tr_ok(tr_actor_info_get(r, &info));
    ck_assert_int_eq(info.high_water, 2);
    ck_assert_int_eq(info.dropped, 0);
    ck_assert_tr_ok(tr_actor_stop(r, 0, TR_TEST_DEADLINE()));
    check_payloads();
    return NULL;
}

START_TEST(overflow_wait) {
    probe_reset();
    run_in(workers_for(_i), overflow_wait_body, NULL);
}
END_TEST

static void *overflow_fail_body(void *arg) {
    (void)arg;
    tr_actor_ref r = gated_actor(TR_OVERFLOW_FAIL);
    ck_assert_tr_err(cast_op(r, OP_ADD, 100, TR_TEST_DEADLINE()), TR_EFULL);
    long v;
    ck_assert_tr_err(call_op(r, OP_ADD, 100, &v, TR_TEST_DEADLINE()), TR_EFULL);
    ck_assert_int_eq(atomic_load(&P.drops), 1); /* the call's request was consumed */
    finish_gated(r, 3, 0);
    return NULL;
}

START_TEST(overflow_fail) {
    probe_reset();
    run_in(workers_for(_i), overflow_fail_body, NULL);
}
END_TEST

static void *overflow_drop_newest_body(void *arg) {
    (void)arg;
    tr_actor_ref r = gated_actor(TR_OVERFLOW_DROP_NEWEST);
    ck_assert_tr_ok(cast_op(r, OP_ADD, 100, TR_TEST_DEADLINE()));
    tmsg m = mk(OP_ADD, 200);
    ck_assert_tr_ok(tr_actor_try_cast(r, &m));
    long v;
    ck_assert_tr_err(call_op(r, OP_ADD, 300, &v, TR_TEST_DEADLINE()), TR_EDOWN); /* dropped */
    ck_assert_int_eq(atomic_load(&P.drops), 3);
    finish_gated(r, 3, 3);
    return NULL;
}

START_TEST(overflow_drop_newest) {
    probe_reset();
    run_in(workers_for(_i), overflow_drop_newest_body, NULL);
}
END_TEST

static void *overflow_drop_oldest_body(void *arg) {
    (void)arg;
    tr_actor_ref r = gated_actor(TR_OVERFLOW_DROP_OLDEST);
    ck_assert_tr_ok(cast_op(r, OP_ADD, 100, TR_TEST_DEADLINE()));
    tmsg m = mk(OP_ADD, 200);
    ck_assert_tr_ok(tr_actor_try_cast(r, &m));
    /* A queued call dropped as the oldest: its caller hears TR_EDOWN. */
    call_arg c = {r, OP_ADD, 1000, 0, 0, NULL};
    tr_task *tc = spawn_on(tr_runtime_current(), 0, caller_task, &c);
    await_count(&P.drops, 3); /* 1, 2, then 100 made room for it: [200, call] */
    ck_assert_tr_ok(cast_op(r, OP_ADD, 400, TR_TEST_DEADLINE())); /* [call, 400] */
    ck_assert_tr_ok(cast_op(r, OP_ADD, 500, TR_TEST_DEADLINE())); /* [400, 500] */
    ck_assert_int_eq(join_rc(tc), TR_EDOWN);
    ck_assert_int_eq(atomic_load(&P.drops), 5);
    finish_gated(r, 900, 5);
    return NULL;
}

START_TEST(overflow_drop_oldest) {
    probe_reset();
    run_in(1, overflow_drop_oldest_body, NULL);
}
END_TEST

/* ---- across workers and plain threads ------------------------------------------------------------ */

enum { NACT = 4 };

typedef struct mesh_arg {
    tr_actor_ref *actors;
    int calls;
    unsigned seed;
    long added;
} mesh_arg;

static void *mesh_caller(void *p) {
    mesh_arg *a = p;
    for (int i = 0; i < a->calls; i++) {
        tr_actor_ref r = a->actors[rand_r(&a->seed) % NACT];
        long v;
        int rc = call_op(r, OP_ADD, 1, &v, TR_TEST_DEADLINE());
        ck_assert_msg(rc == 0, "call: %s", tr_strerror_name(rc));
        ck_assert(v >= 1);
        a->added++;
        if (i % 3 == 0) {
            ck_assert_tr_ok(cast_op(r, OP_ADD, 1, TR_TEST_DEADLINE()));
            a->added++;
        }
    }
    return NULL;
}

START_TEST(calls_across_workers_and_threads) {
    probe_reset();
    tr_runtime *rt = tr_test_runtime(4);
    tr_actor_ref actors[NACT];
    for (int i = 0; i < NACT; i++) {
        tr_actor_opts o = {0};
        o.runtime = rt;
        o.worker = TR_WORKER(i);
        o.capacity = 8;
        ck_assert_tr_ok(tr_actor_spawn(&actors[i], &probe_type, NULL, &o));
    }
    enum { NTASK = 8, NTHREAD = 2 };
    mesh_arg args[NTASK + NTHREAD];
    tr_task *tasks[NTASK];
    pthread_t th[NTHREAD];
    for (int i = 0; i < NTASK + NTHREAD; i++) {
        args[i].actors = actors;
        args[i].calls = scaled(3000);
        args[i].seed = (unsigned)i * 7919u + 1;
        args[i].added = 0;
    }
    for (int i = 0; i < NTASK; i++)
        tasks[i] = spawn_on(rt, i, mesh_caller, &args[i]);
    for (int i = 0; i < NTHREAD; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, mesh_caller, &args[NTASK + i]), 0);
    for (int i = 0; i < NTASK; i++)
        join_rc(tasks[i]);
    for (int i = 0; i < NTHREAD; i++)
        pthread_join(th[i], NULL);
    long want = 0, got = 0;
    for (int i = 0; i < NTASK + NTHREAD; i++)
        want += args[i].added;
    for (int i = 0; i < NACT; i++) {
        long v;
        ck_assert_tr_ok(call_op(actors[i], OP_GET, 0, &v, TR_TEST_DEADLINE()));
        got += v;
        ck_assert_tr_ok(tr_actor_stop(actors[i], 0, TR_TEST_DEADLINE()));
    }
    ck_assert_int_eq(got, want);
    tr_runtime_free(&rt);
    check_payloads();
}
END_TEST

/* Actors calling each other across workers (no cycles: a calls b calls c). */
static void *chain_body(void *arg) {
    (void)arg;
    tr_actor_ref a[4];
    for (int i = 0; i < 4; i++) {
        tr_actor_opts o = {0};
        o.worker = TR_WORKER(i);
        a[i] = spawn_probe(&o);
    }
    ck_assert_tr_ok(call_op(a[3], OP_ADD, 9, NULL, TR_TEST_DEADLINE()));
    tmsg to3 = {.op = OP_GET}, to2 = {.op = OP_CALL, .target = a[3], .next_call = &to3};
    tmsg to1 = {.op = OP_CALL, .target = a[2], .next_call = &to2};
    for (int i = 0; i < scaled(500); i++) {
        tmsg m = mk(OP_CALL, 0);
        m.target = a[1];
        m.next_call = &to1;
        long v;
        ck_assert_tr_ok(tr_actor_call(a[0], &m, &v, TR_TEST_DEADLINE()));
        ck_assert_int_eq(v, 9);
    }
    for (int i = 0; i < 4; i++)
        ck_assert_tr_ok(tr_actor_stop(a[i], 0, TR_TEST_DEADLINE()));
    check_payloads();
    return NULL;
}

START_TEST(actor_to_actor_across_workers) {
    probe_reset();
    run_in(4, chain_body, NULL);
}
END_TEST

/* ---- stress: deadlines, cancellation, late replies, kills ---------------------------------------------- */

/* Replies are heap objects: received (freed by the caller) or refused
 * (freed by the replier) — never both, never neither. */
static atomic_int replies_made, replies_received, replies_refused;

static int slow_handle(void *s, tr_actor_msg *m) {
    unsigned *seed = s;
    tmsg *t = m->data;
    payload_free(t->payload);
    atomic_fetch_add(&P.handled, 1);
    if (rand_r(seed) % 4 == 0)
        tr_sleep_ms(rand_r(seed) % 3);
    else if (rand_r(seed) % 2)
        tr_yield();
    if (!m->reply)
        return 0;
    if (rand_r(seed) % 16 == 0)
        return 0; /* dropped: EDOWN */
    int *val = payload_new();
    atomic_fetch_add(&replies_made, 1);
    long lv = (long)(intptr_t)val;
    if (tr_reply_send(m->reply, &lv) != 0) {
        payload_free(val);
        atomic_fetch_add(&replies_refused, 1);
    }
    return 0;
}

static const tr_actor_type slow_type = {.name = "slow", .state_size = sizeof(unsigned),
                                        .msg_size = sizeof(tmsg), .reply_size = sizeof(long),
                                        .handle = slow_handle, .drop_msg = probe_drop};

typedef struct stress_arg {
    tr_actor_ref *actors;
    int n, calls;
    unsigned seed;
} stress_arg;

static void *stress_caller(void *p) {
    stress_arg *a = p;
    for (int i = 0; i < a->calls; i++) {
        tr_actor_ref r = a->actors[rand_r(&a->seed) % (unsigned)a->n];
        tmsg m = mk(OP_GET, 0);
        long v = 0;
        int64_t dl = rand_r(&a->seed) % 2 ? tr_after_us(rand_r(&a->seed) % 2000) : TR_TEST_DEADLINE();
        int rc = tr_actor_call(r, &m, &v, dl);
        if (rc == 0) {
            payload_free((int *)(intptr_t)v);
            atomic_fetch_add(&replies_received, 1);
        } else if (rc == TR_ECANCELED) {
            break;
        } else {
            ck_assert_msg(rc == TR_ETIMEDOUT || rc == TR_EDOWN || rc == TR_EFULL,
                          "call: %s", tr_strerror_name(rc));
        }
        if (rand_r(&a->seed) % 4 == 0) {
            tmsg c = mk(OP_GET, 0);
            rc = tr_actor_try_cast(r, &c);
            if (rc)
                payload_free(c.payload);
        }
    }
    return NULL;
}

START_TEST(stress_every_value_once) {
    probe_reset();
    atomic_store(&replies_made, 0);
    atomic_store(&replies_received, 0);
    atomic_store(&replies_refused, 0);
    tr_runtime *rt = tr_test_runtime(4);
    enum { NA = 6, NT = 8 };
    tr_actor_ref actors[NA];
    for (int i = 0; i < NA; i++) {
        tr_actor_opts o = {0};
        o.runtime = rt;
        o.capacity = 4;
        o.overflow = i % 2 ? TR_OVERFLOW_WAIT : TR_OVERFLOW_DROP_OLDEST;
        ck_assert_tr_ok(tr_actor_spawn(&actors[i], &slow_type, NULL, &o));
    }
    stress_arg args[NT];
    tr_task *tasks[NT];
    pthread_t th;
    for (int i = 0; i < NT; i++) {
        args[i] = (stress_arg){actors, NA, scaled(600), (unsigned)i + 11};
        tasks[i] = spawn_on(rt, i, stress_caller, &args[i]);
    }
    stress_arg targ = {actors, NA, scaled(600), 99};
    ck_assert_int_eq(pthread_create(&th, NULL, stress_caller, &targ), 0);
    /* Cancel two callers at random moments, kill an actor mid-run. */
    tr_sleep_ms(20);
    tr_task_cancel(tasks[1]);
    tr_sleep_ms(10);
    tr_task_cancel(tasks[5]);
    ck_assert_tr_ok(tr_actor_kill(actors[0]));
    for (int i = 0; i < NT; i++)
        join_rc(tasks[i]);
    pthread_join(th, NULL);
    for (int i = 0; i < NA; i++) {
        int rc = tr_actor_stop(actors[i], 0, TR_TEST_DEADLINE());
        ck_assert(rc == 0 || (i == 0 && rc == TR_EDOWN));
        ck_assert_tr_ok(tr_actor_wait(actors[i], NULL, TR_TEST_DEADLINE()));
    }
    tr_runtime_free(&rt);
    ck_assert_int_eq(atomic_load(&replies_made),
                     atomic_load(&replies_received) + atomic_load(&replies_refused));
    check_payloads();
}
END_TEST

static Suite *call_suite(void) {
    Suite *s = suite_create("actor_call");
    TCase *tc = tr_tcase("replies");
    tcase_add_loop_test(tc, reply_kinds, 0, 2);
    tcase_add_loop_test(tc, late_reply_dropped_safely, 0, 2);
    tcase_add_loop_test(tc, call_cycle_three_actors, 0, 2);
    suite_add_tcase(s, tc);
    tc = tr_tcase("overflow");
    tcase_add_loop_test(tc, overflow_wait, 0, 2);
    tcase_add_loop_test(tc, overflow_fail, 0, 2);
    tcase_add_loop_test(tc, overflow_drop_newest, 0, 2);
    tcase_add_test(tc, overflow_drop_oldest);
    suite_add_tcase(s, tc);
    tc = tr_tcase("threads");
    tcase_add_test(tc, calls_across_workers_and_threads);
    tcase_add_test(tc, actor_to_actor_across_workers);
    tcase_add_test(tc, stress_every_value_once);
    suite_add_tcase(s, tc);
    return s;
}

TR_TEST_MAIN(call_suite)
