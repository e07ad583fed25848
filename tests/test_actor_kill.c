/* test_actor_kill.c — tr__actor_kill_hard, the supervisor's last resort:
 * an actor stuck in a handler (or in terminate) that ignores its
 * cancellation outlives tr_actor_stop's deadline and a kill, and is ended
 * by a hard kill: reason TR_ACTOR_KILLED, terminate not called, the
 * handler's tr_cleanup run, the code after its wait never run; supervised
 * (hooked) actors go to LIMBO and restart behind the same ref.  Idle
 * actors are killed as tr_actor_kill does.  Every test runs on 1 worker
 * and on 2. */
#include "actor_testutil.h"
#include "../actors/internal.h" /* tr__actor_kill_hard and the supervisor hooks */

enum { K_ADD = 1, K_STUCK, K_SELFKILL };

typedef struct kmsg {
    int op;
    int *payload; /* freed by the handler or by drop_msg */
} kmsg;

static struct {
    atomic_int made, freed, handled, terminates, last_reason;
    atomic_int in_stuck, loops, cleanups, after, hooks, hook_reason;
    atomic_int stuck_terminate, call_rc;
} K;

static void k_reset(void) {
    memset(&K, 0, sizeof K);
    atomic_store(&K.call_rc, 1);
}

static kmsg kmk(int op) {
    kmsg m = {op, malloc(sizeof(int))};
    *m.payload = 7;
    atomic_fetch_add(&K.made, 1);
    return m;
}

static void kfree(int *p) {
    if (!p)
        return;
    ck_assert_int_eq(*p, 7);
    *p = 0;
    free(p);
    atomic_fetch_add(&K.freed, 1);
}

static void k_cleanup(void *arg) {
    (void)arg;
    atomic_fetch_add(&K.cleanups, 1);
}

/* Waits in a loop that ignores TR_ECANCELED: only a hard kill ends it. */
static void stuck_loop(void) {
    tr_cleanup c;
    tr_cleanup_push(&c, k_cleanup, NULL);
    atomic_fetch_add(&K.in_stuck, 1);
    for (;;) {
        atomic_fetch_add(&K.loops, 1);
        tr_sleep_ms(2);
    }
    atomic_store(&K.after, 1); /* never */
    tr_cleanup_pop(&c, false);
}

static int k_handle(void *st, tr_actor_msg *m) {
    (void)st;
    kmsg *km = m->data;
    kfree(km->payload);
    atomic_fetch_add(&K.handled, 1);
    switch (km->op) {
    case K_STUCK:
        stuck_loop();
        return 0;
    case K_SELFKILL:
        tr__actor_kill_hard(tr_actor_self());
        atomic_store(&K.after, 1); /* never */
        return 0;
    default:
        if (m->reply)
            tr_reply_send(m->reply, &(long){0});
        return 0;
    }
}

static void k_terminate(void *st, int reason) {
    (void)st;
    atomic_fetch_add(&K.terminates, 1);
    atomic_store(&K.last_reason, reason);
    if (atomic_load(&K.stuck_terminate))
        stuck_loop();
}

static void k_drop(void *v, void *ctx) {
    (void)ctx;
    kfree(((kmsg *)v)->payload);
}

static const tr_actor_type k_type = {
    .name = "stuck",
    .msg_size = sizeof(kmsg),
    .reply_size = sizeof(long),
    .handle = k_handle,
    .terminate = k_terminate,
    .drop_msg = k_drop,
};

static int kcast(tr_actor_ref r, int op) {
    kmsg m = kmk(op);
    int rc = tr_actor_cast(r, &m, TR_TEST_DEADLINE());
    if (rc)
        kfree(m.payload);
    return rc;
}

static tr_actor_opts k_opts(void) {
    tr_actor_opts o = {0};
    o.worker = TR_WORKER(tr_runtime_workers(tr_runtime_current()) - 1); /* the last */
    return o;
}

/* The actor is still running its stuck code: its loop count keeps
 * growing (polled with a deadline, no sleeps) and it is not dead. */
static void await_still_running(tr_actor_ref r) {
    int from = atomic_load(&K.loops);
    await_count(&K.loops, from + 3);
    tr_actor_info info;
    ck_assert_tr_ok(tr_actor_info_get(r, &info));
    ck_assert_int_ne(info.state, TR_ACTOR_DEAD);
}

/* Waits until the actor has no activation (polled with a deadline). */
static void await_idle(tr_actor_ref r) {
    int64_t dl = TR_TEST_DEADLINE();
    tr_actor_info info;
    for (;;) {
        ck_assert_tr_ok(tr_actor_info_get(r, &info));
        if (info.state == TR_ACTOR_IDLE)
            return;
        ck_assert_msg(tr_now() < dl, "actor never went idle (state %d)", info.state);
        tr_yield();
    }
}

static void *caller_task(void *arg) {
    tr_actor_ref *r = arg;
    kmsg m = kmk(K_STUCK);
    long v;
    atomic_store(&K.call_rc, tr_actor_call(*r, &m, &v, TR_TEST_DEADLINE()));
    return NULL;
}

/* ---- a stuck handler ------------------------------------------------------------- */

static void *stuck_handler_body(void *arg) {
    (void)arg;
    tr_actor_opts o = k_opts();
    tr_actor_ref r;
    ck_assert_tr_ok(tr_actor_spawn(&r, &k_type, NULL, &o));
    tr_task *caller;
    ck_assert_tr_ok(tr_spawn(&caller, caller_task, &r));
    await_count(&K.in_stuck, 1);
    for (int i = 0; i < 3; i++) /* queued behind it: dropped by the kill */
        ck_assert_tr_ok(kcast(r, K_ADD));
    /* A graceful stop, then the kill it does at its deadline: neither
     * ends a handler that ignores its cancellation. */
    ck_assert_tr_err(tr_actor_stop(r, TR_ACTOR_SHUTDOWN, tr_after_ms(30)), TR_ETIMEDOUT);
    await_still_running(r);
    ck_assert_tr_ok(tr_actor_kill(r));
    await_still_running(r);
    ck_assert_tr_ok(tr__actor_kill_hard(r));
    int reason = -1;
    ck_assert_tr_ok(tr_actor_wait(r, &reason, TR_TEST_DEADLINE()));
    ck_assert_int_eq(reason, TR_ACTOR_KILLED);
    ck_assert_tr_ok(tr_task_join_until(caller, NULL, TR_TEST_DEADLINE()));
    ck_assert_int_eq(atomic_load(&K.call_rc), TR_EDOWN);
    ck_assert_int_eq(atomic_load(&K.terminates), 0);
    ck_assert_int_eq(atomic_load(&K.cleanups), 1);
    ck_assert_int_eq(atomic_load(&K.after), 0);
    ck_assert_int_eq(atomic_load(&K.handled), 1);
    ck_assert_int_eq(atomic_load(&K.freed), atomic_load(&K.made));
    ck_assert_tr_err(tr__actor_kill_hard(r), TR_EDOWN);
    ck_assert_tr_err(tr__actor_kill_hard(TR_ACTOR_NONE), TR_EINVAL);
    return NULL;
}

START_TEST(stuck_handler) {
    k_reset();
    run_in(_i + 1, stuck_handler_body, NULL);
}
END_TEST

/* ---- supervised: LIMBO, the hook, a restart -------------------------------------- */

static void k_hook(tr_actor_ref ref, int reason, void *ctx) {
    (void)ref;
    ck_assert_ptr_eq(ctx, &K);
    atomic_store(&K.hook_reason, reason);
    atomic_fetch_add(&K.hooks, 1);
}

static void *hooked_body(void *arg) {
    (void)arg;
    tr_actor_opts o = k_opts();
    tr_actor_ref r;
    ck_assert_tr_ok(tr__actor_spawn_hooked(&r, &k_type, NULL, &o, k_hook, &K));
    ck_assert_tr_ok(kcast(r, K_STUCK));
    await_count(&K.in_stuck, 1);
    ck_assert_tr_ok(kcast(r, K_ADD)); /* queued before the kill: a kill drops it */
    ck_assert_tr_ok(tr__actor_kill_hard(r));
    await_count(&K.hooks, 1);
    ck_assert_int_eq(atomic_load(&K.hook_reason), TR_ACTOR_KILLED);
    ck_assert_int_eq(atomic_load(&K.terminates), 0);
    ck_assert_int_eq(atomic_load(&K.cleanups), 1);
    ck_assert_int_eq(atomic_load(&K.after), 0);
    tr_actor_info info;
    ck_assert_tr_ok(tr_actor_info_get(r, &info));
    ck_assert_int_eq(info.state, TR_ACTOR_DEAD); /* LIMBO */
    ck_assert_int_eq(info.queued, 0);
    ck_assert_int_eq(info.dropped, 1);
    ck_assert_int_eq(atomic_load(&K.freed), atomic_load(&K.made));
    /* In LIMBO the mailbox is open: what is queued there is handled by
     * the next incarnation, behind the same ref. */
    ck_assert_tr_ok(kcast(r, K_ADD));
    ck_assert_tr_ok(kcast(r, K_ADD));
    await_queued(r, 2);
    ck_assert_tr_ok(tr__actor_restart(r, NULL));
    await_count(&K.handled, 3);
    long v = -1;
    kmsg m = kmk(K_ADD);
    ck_assert_tr_ok(tr_actor_call(r, &m, &v, TR_TEST_DEADLINE()));
    ck_assert_tr_ok(tr_actor_info_get(r, &info));
    ck_assert_int_eq(info.restarts, 1);
    /* A hard kill of the idle new incarnation is a kill: terminate runs. */
    await_idle(r);
    ck_assert_tr_ok(tr__actor_kill_hard(r));
    await_count(&K.hooks, 2);
    ck_assert_int_eq(atomic_load(&K.terminates), 1);
    ck_assert_int_eq(atomic_load(&K.last_reason), TR_ACTOR_KILLED);
    ck_assert_tr_ok(tr__actor_release(r, TR_ACTOR_SHUTDOWN));
    int reason = -1;
    ck_assert_tr_ok(tr_actor_wait(r, &reason, TR_TEST_DEADLINE()));
    ck_assert_int_eq(reason, TR_ACTOR_SHUTDOWN);
    ck_assert_int_eq(atomic_load(&K.freed), atomic_load(&K.made));
    return NULL;
}

START_TEST(hooked_limbo_restart) {
    k_reset();
    run_in(_i + 1, hooked_body, NULL);
}
END_TEST

/* ---- a stuck terminate ------------------------------------------------------------ */

static void *stuck_terminate_body(void *arg) {
    (void)arg;
    tr_actor_opts o = k_opts();
    tr_actor_ref r;
    ck_assert_tr_ok(tr_actor_spawn(&r, &k_type, NULL, &o));
    atomic_store(&K.stuck_terminate, 1);
    ck_assert_tr_err(tr_actor_stop(r, TR_ACTOR_SHUTDOWN, tr_after_ms(30)), TR_ETIMEDOUT);
    await_count(&K.in_stuck, 1);
    await_still_running(r);
    ck_assert_int_eq(atomic_load(&K.terminates), 1);
    ck_assert_tr_ok(tr__actor_kill_hard(r));
    int reason = -1;
    ck_assert_tr_ok(tr_actor_wait(r, &reason, TR_TEST_DEADLINE()));
    ck_assert_int_eq(reason, TR_ACTOR_KILLED);
    ck_assert_int_eq(atomic_load(&K.cleanups), 1);
    ck_assert_int_eq(atomic_load(&K.after), 0);
    ck_assert_int_eq(atomic_load(&K.terminates), 1);
    return NULL;
}

START_TEST(stuck_terminate) {
    k_reset();
    run_in(_i + 1, stuck_terminate_body, NULL);
}
END_TEST

/* ---- idle, and self ---------------------------------------------------------------- */

static void *idle_body(void *arg) {
    (void)arg;
    tr_actor_opts o = k_opts();
    tr_actor_ref r;
    ck_assert_tr_ok(tr_actor_spawn(&r, &k_type, NULL, &o));
    long v;
    kmsg m = kmk(K_ADD);
    ck_assert_tr_ok(tr_actor_call(r, &m, &v, TR_TEST_DEADLINE()));
    /* The reply comes before the handler returns: wait for idle (a hard
     * kill landing while the handler still runs ends it without terminate). */
    await_idle(r);
    ck_assert_tr_ok(tr__actor_kill_hard(r)); /* = tr_actor_kill */
    int reason = -1;
    ck_assert_tr_ok(tr_actor_wait(r, &reason, TR_TEST_DEADLINE()));
    ck_assert_int_eq(reason, TR_ACTOR_KILLED);
    ck_assert_int_eq(atomic_load(&K.terminates), 1);
    ck_assert_int_eq(atomic_load(&K.last_reason), TR_ACTOR_KILLED);
    /* An actor hard-killing itself from its handler ends there. */
    ck_assert_tr_ok(tr_actor_spawn(&r, &k_type, NULL, &o));
    ck_assert_tr_ok(kcast(r, K_SELFKILL));
    ck_assert_tr_ok(tr_actor_wait(r, &reason, TR_TEST_DEADLINE()));
    ck_assert_int_eq(reason, TR_ACTOR_KILLED);
    ck_assert_int_eq(atomic_load(&K.after), 0);
    ck_assert_int_eq(atomic_load(&K.terminates), 1);
    ck_assert_int_eq(atomic_load(&K.freed), atomic_load(&K.made));
    return NULL;
}

START_TEST(idle_and_self) {
    k_reset();
    run_in(_i + 1, idle_body, NULL);
}
END_TEST

/* ---- killed by the runtime's shutdown, stuck ----------------------------------------
 * A stuck actor left to tr_runtime_free: the shutdown cancels it, and only
 * a hard kill from the test ends it, after which the free completes. */

static void *spawn_stuck(void *arg) {
    tr_actor_ref *r = arg;
    tr_actor_opts o = k_opts();
    ck_assert_tr_ok(tr_actor_spawn(r, &k_type, NULL, &o));
    ck_assert_tr_ok(kcast(*r, K_STUCK));
    return NULL;
}

START_TEST(shutdown_then_hard_kill) {
    k_reset();
    tr_runtime *rt = tr_test_runtime(_i + 1);
    tr_actor_ref r;
    ck_assert_tr_ok(tr_runtime_block_on(rt, spawn_stuck, &r, NULL));
    await_count(&K.in_stuck, 1);
    ck_assert_tr_err(tr_runtime_shutdown(rt, tr_after_ms(30)), TR_ETIMEDOUT);
    ck_assert_tr_ok(tr__actor_kill_hard(r)); /* from a plain thread */
    ck_assert_tr_ok(tr_runtime_shutdown(rt, TR_TEST_DEADLINE()));
    ck_assert_int_eq(atomic_load(&K.cleanups), 1);
    ck_assert_int_eq(atomic_load(&K.terminates), 0);
    tr_runtime_free(&rt);
    ck_assert_int_eq(atomic_load(&K.freed), atomic_load(&K.made));
}
END_TEST

static Suite *actor_kill_suite(void) {
    Suite *s = suite_create("actor_kill");
    TCase *tc = tr_tcase("actor_kill");
    tcase_add_loop_test(tc, stuck_handler, 0, 2);
    tcase_add_loop_test(tc, hooked_limbo_restart, 0, 2);
    tcase_add_loop_test(tc, stuck_terminate, 0, 2);
    tcase_add_loop_test(tc, idle_and_self, 0, 2);
    tcase_add_loop_test(tc, shutdown_then_hard_kill, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

TR_TEST_MAIN(actor_kill_suite)
