/* test_actor_monitor.c — monitors and links: DOWN on a crash, on an actor
 * already gone, demonitor (also of a DOWN already queued), the system lane
 * overtaking queued user messages, links ending the other side (and
 * cancelling its waiting handler), normal ends that do not, trapped exits,
 * links to an actor already gone, unlink, and many watchers across workers.
 */
#include "actor_testutil.h"

static void await_downs(int n) { await_count(&P.downs, n); }

static void *down_body(void *arg) {
    (void)arg;
    tr_actor_ref w = spawn_probe(NULL), t = spawn_probe(NULL);
    uint64_t id = 0;
    ck_assert_tr_ok(tr_actor_monitor(w, t, &id));
    ck_assert_uint_ne(id, 0);
    ck_assert_tr_err(call_op(t, OP_CRASH, 7, NULL, TR_TEST_DEADLINE()), TR_EDOWN);
    await_downs(1);
    ck_assert_uint_eq(atomic_load(&P.last_down_slot), t.slot);
    ck_assert_int_eq(atomic_load(&P.last_down_reason), 7);
    ck_assert_tr_err(tr_actor_demonitor(w, id), TR_EINVAL); /* delivered already */
    /* A target already gone: DOWN at once, with TR_EDOWN. */
    ck_assert_tr_ok(tr_actor_monitor(w, t, &id));
    await_downs(2);
    ck_assert_int_eq(atomic_load(&P.last_down_reason), TR_EDOWN);
    /* Normal ends are reported too. */
    tr_actor_ref t2 = spawn_probe(NULL);
    ck_assert_tr_ok(tr_actor_monitor(w, t2, NULL));
    ck_assert_tr_ok(tr_actor_stop(t2, TR_ACTOR_SHUTDOWN, TR_TEST_DEADLINE()));
    await_downs(3);
    ck_assert_int_eq(atomic_load(&P.last_down_reason), TR_ACTOR_SHUTDOWN);
    /* Bad arguments. */
    ck_assert_tr_err(tr_actor_monitor(w, w, NULL), TR_EINVAL);
    ck_assert_tr_err(tr_actor_monitor(TR_ACTOR_NONE, t2, NULL), TR_EINVAL);
    ck_assert_tr_err(tr_actor_monitor(t2, w, NULL), TR_EDOWN); /* the watcher is gone */
    ck_assert_tr_err(tr_actor_demonitor(w, 0), TR_EINVAL);
    ck_assert_tr_ok(tr_actor_stop(w, 0, TR_TEST_DEADLINE()));
    ck_assert_int_eq(atomic_load(&P.downs), 3);
    check_payloads();
    return NULL;
}

START_TEST(monitor_down) {
    probe_reset();
    run_in(workers_for(_i), down_body, NULL);
}
END_TEST

static void *demonitor_body(void *arg) {
    (void)arg;
    tr_actor_ref w = spawn_probe(NULL), t = spawn_probe(NULL);
    uint64_t id;
    ck_assert_tr_ok(tr_actor_monitor(w, t, &id));
    ck_assert_tr_ok(tr_actor_demonitor(w, id));
    ck_assert_tr_err(tr_actor_demonitor(w, id), TR_EINVAL);
    ck_assert_tr_ok(tr_actor_kill(t));
    ck_assert_tr_ok(tr_actor_wait(t, NULL, TR_TEST_DEADLINE()));
    /* A DOWN already queued in the watcher's system lane is taken back:
     * hold the watcher at the gate while its target dies. */
    tr_actor_ref t2 = spawn_probe(NULL);
    ck_assert_tr_ok(tr_actor_monitor(w, t2, &id));
    ck_assert_tr_ok(cast_op(w, OP_GATE, 0, TR_TEST_DEADLINE()));
    await_in_gate(1);
    ck_assert_tr_ok(tr_actor_kill(t2));
    ck_assert_tr_ok(tr_actor_wait(t2, NULL, TR_TEST_DEADLINE()));
    ck_assert_tr_ok(tr_actor_demonitor(w, id)); /* flushed */
    ck_assert_tr_ok(tr_sem_release(&P.gate, 1));
    long v;
    ck_assert_tr_ok(call_op(w, OP_GET, 0, &v, TR_TEST_DEADLINE()));
    ck_assert_int_eq(atomic_load(&P.downs), 0);
    ck_assert_tr_ok(tr_actor_stop(w, 0, TR_TEST_DEADLINE()));
    check_payloads();
    return NULL;
}

START_TEST(demonitor) {
    probe_reset();
    run_in(workers_for(_i), demonitor_body, NULL);
}
END_TEST

/* The system lane overtakes user messages already queued. */
static void *overtake_body(void *arg) {
    (void)arg;
    tr_actor_ref w = spawn_probe(NULL), t = spawn_probe(NULL);
    ck_assert_tr_ok(tr_actor_monitor(w, t, NULL));
    ck_assert_tr_ok(cast_op(w, OP_GATE, 0, TR_TEST_DEADLINE()));
    await_in_gate(1);
    for (int i = 1; i <= 3; i++)
        ck_assert_tr_ok(cast_op(w, OP_ADD, i, TR_TEST_DEADLINE()));
    ck_assert_tr_ok(tr_actor_stop(t, 0, TR_TEST_DEADLINE()));
    ck_assert_tr_ok(tr_sem_release(&P.gate, 1));
    await_downs(1);
    long v;
    ck_assert_tr_ok(call_op(w, OP_GET, 0, &v, TR_TEST_DEADLINE()));
    ck_assert_int_eq(v, 6);
    /* order: the gate (0), the DOWN (-1000), then 1, 2, 3 */
    ck_assert_int_eq(atomic_load(&P.order[0]), 0);
    ck_assert_int_eq(atomic_load(&P.order[1]), -1000);
    ck_assert_int_eq(atomic_load(&P.order[2]), 1);
    ck_assert_int_eq(atomic_load(&P.order[4]), 3);
    ck_assert_tr_ok(tr_actor_stop(w, 0, TR_TEST_DEADLINE()));
    check_payloads();
    return NULL;
}

START_TEST(system_lane_overtakes) {
    probe_reset();
    run_in(workers_for(_i), overtake_body, NULL);
}
END_TEST

/* ---- links --------------------------------------------------------------------------------- */

static void *link_crash_body(void *arg) {
    (void)arg;
    tr_actor_opts o = {0};
    int nw = tr_runtime_workers(tr_runtime_current());
    o.worker = TR_WORKER(nw - 1);
    tr_actor_ref a = spawn_probe(NULL), b = spawn_probe(&o);
    ck_assert_tr_ok(tr_actor_link(a, b));
    ck_assert_tr_ok(tr_actor_link(b, a)); /* linking twice is one link */
    /* b waits in a handler when a crashes: the handler is cancelled. */
    ck_assert_tr_ok(cast_op(b, OP_GATE, 0, TR_TEST_DEADLINE()));
    await_in_gate(1);
    ck_assert_tr_ok(cast_op(b, OP_ADD, 1, TR_TEST_DEADLINE())); /* queued: dropped */
    ck_assert_tr_ok(cast_op(a, OP_CRASH, 31, TR_TEST_DEADLINE()));
    int reason;
    ck_assert_tr_ok(tr_actor_wait(a, &reason, TR_TEST_DEADLINE()));
    ck_assert_int_eq(reason, 31);
    ck_assert_tr_ok(tr_actor_wait(b, &reason, TR_TEST_DEADLINE()));
    ck_assert_int_eq(reason, TR_ACTOR_LINKED);
    ck_assert_int_eq(atomic_load(&P.gate_rc), TR_ECANCELED);
    ck_assert_int_eq(atomic_load(&P.terminates), 2);
    ck_assert_int_eq(atomic_load(&P.drops), 1);
    check_payloads();
    return NULL;
}

START_TEST(link_crash_ends_other) {
    probe_reset();
    run_in(workers_for(_i), link_crash_body, NULL);
}
END_TEST

static void *link_normal_body(void *arg) {
    (void)arg;
    tr_actor_ref a = spawn_probe(NULL), b = spawn_probe(NULL), c = spawn_probe(NULL);
    ck_assert_tr_ok(tr_actor_link(a, b));
    ck_assert_tr_ok(tr_actor_stop(a, TR_ACTOR_NORMAL, TR_TEST_DEADLINE()));
    ck_assert_tr_ok(tr_actor_link(b, c));
    ck_assert_tr_ok(tr_actor_stop(c, TR_ACTOR_SHUTDOWN, TR_TEST_DEADLINE()));
    long v;
    ck_assert_tr_ok(call_op(b, OP_ADD, 1, &v, TR_TEST_DEADLINE())); /* b lives */
    /* unlink: a crash no longer travels. */
    tr_actor_ref d = spawn_probe(NULL);
    ck_assert_tr_ok(tr_actor_link(b, d));
    ck_assert_tr_ok(tr_actor_unlink(d, b));
    ck_assert_tr_err(call_op(d, OP_FAIL, 5, &v, TR_TEST_DEADLINE()), TR_EDOWN);
    ck_assert_tr_ok(tr_actor_wait(d, NULL, TR_TEST_DEADLINE()));
    ck_assert_tr_ok(call_op(b, OP_ADD, 1, &v, TR_TEST_DEADLINE()));
    ck_assert_int_eq(v, 2);
    /* Bad arguments, and links to actors already gone. */
    ck_assert_tr_err(tr_actor_link(b, b), TR_EINVAL);
    ck_assert_tr_err(tr_actor_link(TR_ACTOR_NONE, b), TR_EINVAL);
    ck_assert_tr_err(tr_actor_unlink(a, c), TR_EDOWN);
    ck_assert_tr_err(tr_actor_link(a, c), TR_EDOWN);
    ck_assert_tr_err(tr_actor_link(b, a), TR_EDOWN); /* b is signalled: it ends */
    int reason;
    ck_assert_tr_ok(tr_actor_wait(b, &reason, TR_TEST_DEADLINE()));
    ck_assert_int_eq(reason, TR_ACTOR_LINKED);
    check_payloads();
    return NULL;
}

START_TEST(link_normal_and_unlink) {
    probe_reset();
    run_in(workers_for(_i), link_normal_body, NULL);
}
END_TEST

static void *trap_body(void *arg) {
    (void)arg;
    tr_actor_ref t;
    ck_assert_tr_ok(tr_actor_spawn(&t, &trap_type, NULL, NULL));
    tr_actor_ref a = spawn_probe(NULL), b = spawn_probe(NULL);
    ck_assert_tr_ok(tr_actor_link(t, a));
    ck_assert_tr_ok(tr_actor_link(b, t));
    ck_assert_tr_err(call_op(a, OP_CRASH, 12, NULL, TR_TEST_DEADLINE()), TR_EDOWN);
    await_count(&P.exits, 1);
    ck_assert_uint_eq(atomic_load(&P.last_exit_slot), a.slot);
    ck_assert_int_eq(atomic_load(&P.last_exit_reason), 12);
    long v;
    ck_assert_tr_ok(call_op(t, OP_ADD, 1, &v, TR_TEST_DEADLINE())); /* trapped: alive */
    /* on_exit returning a reason ends the trapping actor with it; its own
     * links then hear of it (nothing left here). */
    atomic_store(&P.trap_result, 44);
    ck_assert_tr_ok(tr_actor_kill(b));
    int reason;
    ck_assert_tr_ok(tr_actor_wait(t, &reason, TR_TEST_DEADLINE()));
    ck_assert_int_eq(reason, 44);
    ck_assert_int_eq(atomic_load(&P.last_exit_reason), TR_ACTOR_KILLED);
    check_payloads();
    return NULL;
}

START_TEST(trap_exits) {
    probe_reset();
    run_in(workers_for(_i), trap_body, NULL);
}
END_TEST

/* ---- many watchers on several workers ------------------------------------------------------------ */

static void *many_watchers_body(void *arg) {
    (void)arg;
    enum { NW = 16 };
    tr_actor_ref w[NW], t;
    for (int i = 0; i < NW; i++) {
        tr_actor_opts o = {0};
        o.worker = TR_WORKER(i % 4);
        w[i] = spawn_probe(&o);
    }
    t = spawn_probe(NULL);
    for (int i = 0; i < NW; i++) {
        ck_assert_tr_ok(tr_actor_monitor(w[i], t, NULL));
        ck_assert_tr_ok(tr_actor_link(w[i], t));
        ck_assert_tr_ok(tr_actor_unlink(t, w[i])); /* links come and go, monitors stay */
    }
    ck_assert_tr_ok(tr_actor_link(w[0], t));
    ck_assert_tr_ok(cast_op(t, OP_FAIL, 3, TR_TEST_DEADLINE()));
    await_downs(NW - 1); /* w[0] dies with t: its DOWN may not be handled */
    int reason;
    ck_assert_tr_ok(tr_actor_wait(w[0], &reason, TR_TEST_DEADLINE()));
    ck_assert_int_eq(reason, TR_ACTOR_LINKED);
    for (int i = 1; i < NW; i++)
        ck_assert_tr_ok(tr_actor_stop(w[i], 0, TR_TEST_DEADLINE()));
    check_payloads();
    return NULL;
}

START_TEST(many_watchers) {
    probe_reset();
    run_in(4, many_watchers_body, NULL);
}
END_TEST

static Suite *monitor_suite(void) {
    Suite *s = suite_create("actor_monitor");
    TCase *tc = tr_tcase("monitors");
    tcase_add_loop_test(tc, monitor_down, 0, 2);
    tcase_add_loop_test(tc, demonitor, 0, 2);
    tcase_add_loop_test(tc, system_lane_overtakes, 0, 2);
    tcase_add_test(tc, many_watchers);
    suite_add_tcase(s, tc);
    tc = tr_tcase("links");
    tcase_add_loop_test(tc, link_crash_ends_other, 0, 2);
    tcase_add_loop_test(tc, link_normal_and_unlink, 0, 2);
    tcase_add_loop_test(tc, trap_exits, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

TR_TEST_MAIN(monitor_suite)
