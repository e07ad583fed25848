/* test_sup.c — supervisors: start/stop order, strategies, restart types,
 * intensity and escalation, shutdown rules, no lost messages, significant
 * children, the shutdown watch.  Operations, checks and dumps are in
 * test_sup_ops.c.
 *
 * The worker type "wk" logs its inits and terminates into one shared log
 * (id*10+1 for an init, id*10+2 for a terminate) so that order can be
 * asserted.  Every wait has a deadline; conditions are polled with a
 * deadline (wait_for), never slept for.
 */
#include "sup_testutil.h"

/* ---- order ------------------------------------------------------------------------ */

static void *order_body(void *p) {
    (void)p;
    wk_reset();
    wargs a[3] = {{1, 0, 0}, {2, 0, 0}, {3, 0, 0}};
    tr_child_spec kids[3];
    for (int i = 0; i < 3; i++)
        kids[i] = wk_child(ids[i], &a[i], TR_RESTART_PERMANENT);
    tr_sup_spec spec = {.strategy = TR_SUP_ONE_FOR_ONE, .children = kids, .nchildren = 3};
    tr_actor_ref sup;
    ck_assert_tr_ok(tr_sup_start(&sup, &spec, NULL));
    ck_assert_int_eq(atomic_load(&G.nlog), 3); /* every init ran before the start returned */
    ck_assert_tr_ok(tr_sup_stop(sup, TR_TEST_DEADLINE()));
    int want[] = {11, 21, 31, 32, 22, 12};
    check_log(want, 6);
    int r;
    ck_assert_tr_ok(tr_actor_wait(sup, &r, TR_TEST_DEADLINE()));
    ck_assert_int_eq(r, TR_ACTOR_SHUTDOWN);
    return NULL;
}
START_TEST(start_and_stop_order) { run_in(2, order_body, NULL); }
END_TEST

static void *init_fail_body(void *p) {
    (void)p;
    wk_reset();
    wargs a[3] = {{1, 0, 0}, {2, 42, 0}, {3, 0, 0}};
    tr_child_spec kids[3];
    for (int i = 0; i < 3; i++)
        kids[i] = wk_child(ids[i], &a[i], TR_RESTART_PERMANENT);
    tr_sup_spec spec = {.strategy = TR_SUP_ONE_FOR_ONE, .children = kids, .nchildren = 3};
    wargs b[3] = {{4, 0, 0}, {5, 0, 0}, {6, 0, 0}};
    tr_child_spec inner_kids[3];
    for (int i = 0; i < 3; i++)
        inner_kids[i] = wk_child(ids[i], &b[i], TR_RESTART_PERMANENT);
    tr_sup_spec inner = {.children = inner_kids, .nchildren = 3};
    tr_child_spec outer_kids[2] = {{.id = "inner", .sup = &inner},
                                   {.id = "bad", .sup = &spec}};
    tr_sup_spec outer = {.children = outer_kids, .nchildren = 2};
    tr_actor_ref sup = {7, 7};
    ck_assert_tr_err(tr_sup_start(&sup, &spec, NULL), 42);
    ck_assert(tr_actor_ref_is_none(sup));
    int want[] = {11, 21, 12}; /* 2's init failed: 1 is stopped, 3 never starts */
    check_log(want, 3);
    wk_reset();
    ck_assert_tr_err(tr_sup_start(&sup, &outer, NULL), 42); /* nested: the whole tree unwinds */
    int want2[] = {41, 51, 61, 11, 21, 12, 62, 52, 42};
    check_log(want2, 9);
    return NULL;
}
START_TEST(failing_init_unwinds) { run_in(1, init_fail_body, NULL); }
END_TEST

/* ---- strategies ------------------------------------------------------------------- */

typedef struct strat_case {
    int strategy;
    int want[16];
    int nwant;
} strat_case;

static void *strategy_body(void *p) {
    const strat_case *sc = p;
    wk_reset();
    wargs a[3] = {{1, 0, 0}, {2, 0, 0}, {3, 0, 0}};
    tr_child_spec kids[3];
    for (int i = 0; i < 3; i++)
        kids[i] = wk_child(ids[i], &a[i], TR_RESTART_PERMANENT);
    tr_sup_spec spec = {.strategy = sc->strategy, .intensity = 10, .period_ms = 10000,
                        .children = kids, .nchildren = 3};
    tr_actor_ref sup, refs[3];
    ck_assert_tr_ok(tr_sup_start(&sup, &spec, NULL));
    child_refs(sup, refs, 3);
    atomic_store(&G.nlog, 0);
    ck_assert_tr_ok(wk_cast(refs[1], W_CRASH, 99));
    wait_for_log(sc->nwant);
    check_log(sc->want, sc->nwant);
    tr_actor_ref after[3];
    child_refs(sup, after, 3);
    for (int i = 0; i < 3; i++) /* restarts keep the actor */
        ck_assert(tr_actor_ref_eq(after[i], refs[i]));
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(wk_ping(refs[i]), i + 1);
    tr_sup_child_info info[3];
    size_t n;
    ck_assert_tr_ok(tr_sup_which_children(sup, info, 3, &n, TR_TEST_DEADLINE()));
    ck_assert_int_eq(info[1].restarts, 1);
    ck_assert_int_eq(info[1].last_reason, 99);
    ck_assert_tr_ok(tr_sup_stop(sup, TR_TEST_DEADLINE()));
    return NULL;
}

static const strat_case strat_cases[] = {
    {TR_SUP_ONE_FOR_ONE, {22, 21}, 2},
    {TR_SUP_ONE_FOR_ALL, {22, 32, 12, 11, 21, 31}, 6},
    {TR_SUP_REST_FOR_ONE, {22, 32, 21, 31}, 4},
};
START_TEST(strategies) { run_in(workers_for(_i), strategy_body, (void *)&strat_cases[_i / 2]); }
END_TEST

/* ---- restart types ------------------------------------------------------------------- */

static void *restart_types_body(void *p) {
    (void)p;
    wk_reset();
    wargs a[4] = {{1, 0, 0}, {2, 0, 0}, {3, 0, 0}, {4, 0, 0}};
    tr_child_spec kids[4] = {
        wk_child("perm", &a[0], TR_RESTART_PERMANENT),
        wk_child("trans", &a[1], TR_RESTART_TRANSIENT),
        wk_child("temp", &a[2], TR_RESTART_TEMPORARY),
        wk_child("trans2", &a[3], TR_RESTART_TRANSIENT),
    };
    tr_sup_spec spec = {.intensity = 10, .period_ms = 10000, .children = kids, .nchildren = 4};
    tr_actor_ref sup, refs[4];
    ck_assert_tr_ok(tr_sup_start(&sup, &spec, NULL));
    child_refs(sup, refs, 4);
    /* transient, abnormal: restarted */
    ck_assert_tr_ok(wk_cast(refs[1], W_CRASH, 5));
    wait_count(&G.inits[2], 2);
    ck_assert_int_eq(wk_ping(refs[1]), 2);
    /* transient, normal (and SHUTDOWN): let go, spec kept */
    ck_assert_tr_ok(wk_cast(refs[1], W_CRASH, TR_ACTOR_NORMAL));
    ck_assert_tr_ok(wk_cast(refs[3], W_CRASH, TR_ACTOR_SHUTDOWN));
    int r;
    ck_assert_tr_ok(tr_actor_wait(refs[1], &r, TR_TEST_DEADLINE()));
    ck_assert_int_eq(r, TR_ACTOR_NORMAL);
    ck_assert_tr_ok(tr_actor_wait(refs[3], &r, TR_TEST_DEADLINE()));
    ck_assert_int_eq(r, TR_ACTOR_SHUTDOWN);
    /* temporary, abnormal: never restarted, spec removed */
    ck_assert_tr_ok(wk_cast(refs[2], W_CRASH, 7));
    ck_assert_tr_ok(tr_actor_wait(refs[2], &r, TR_TEST_DEADLINE()));
    ck_assert_int_eq(r, 7);
    tr_sup_counts cnt;
    ck_assert_tr_ok(tr_sup_count_children(sup, &cnt, TR_TEST_DEADLINE()));
    ck_assert_int_eq(cnt.specs, 3);
    ck_assert_int_eq(cnt.active, 1);
    ck_assert_int_eq(atomic_load(&G.inits[3]), 1);
    tr_sup_child_info info[4];
    size_t n;
    ck_assert_tr_ok(tr_sup_which_children(sup, info, 4, &n, TR_TEST_DEADLINE()));
    ck_assert_int_eq(n, 3);
    ck_assert_str_eq(info[1].id, "trans");
    ck_assert_int_eq(info[1].state, TR_CHILD_TERMINATED);
    ck_assert(tr_actor_ref_is_none(info[1].ref));
    /* restart_child of a let-go child: a new actor */
    tr_actor_ref nr;
    ck_assert_tr_ok(tr_sup_restart_child(sup, "trans", &nr, TR_TEST_DEADLINE()));
    ck_assert(!tr_actor_ref_eq(nr, refs[1]));
    ck_assert_int_eq(wk_ping(nr), 2);
    ck_assert_tr_ok(tr_sup_stop(sup, TR_TEST_DEADLINE()));
    return NULL;
}
START_TEST(restart_types) { run_in(2, restart_types_body, NULL); }
END_TEST

/* A temporary child stopped by a sibling's crash (one_for_all) is removed. */
static void *temp_sibling_body(void *p) {
    (void)p;
    wk_reset();
    wargs a[3] = {{1, 0, 0}, {2, 0, 0}, {3, 0, 0}};
    tr_child_spec kids[3] = {
        wk_child("a", &a[0], TR_RESTART_PERMANENT),
        wk_child("b", &a[1], TR_RESTART_TEMPORARY),
        wk_child("c", &a[2], TR_RESTART_PERMANENT),
    };
    tr_sup_spec spec = {.strategy = TR_SUP_ONE_FOR_ALL, .intensity = 10, .period_ms = 10000,
                        .children = kids, .nchildren = 3};
    tr_actor_ref sup, refs[3];
    ck_assert_tr_ok(tr_sup_start(&sup, &spec, NULL));
    child_refs(sup, refs, 3);
    ck_assert_tr_ok(wk_cast(refs[2], W_CRASH, 9));
    int r;
    ck_assert_tr_ok(tr_actor_wait(refs[1], &r, TR_TEST_DEADLINE()));
    ck_assert_int_eq(r, TR_ACTOR_SHUTDOWN);
    wait_count(&G.inits[3], 2);
    tr_sup_counts cnt;
    ck_assert_tr_ok(tr_sup_count_children(sup, &cnt, TR_TEST_DEADLINE()));
    ck_assert_int_eq(cnt.specs, 2);
    ck_assert_int_eq(cnt.active, 2);
    ck_assert_int_eq(atomic_load(&G.inits[2]), 1);
    ck_assert_tr_ok(tr_sup_stop(sup, TR_TEST_DEADLINE()));
    return NULL;
}
START_TEST(temporary_sibling_removed) { run_in(2, temp_sibling_body, NULL); }
END_TEST

/* ---- intensity ------------------------------------------------------------------------ */

/* leaf crashes -> mid gives up (intensity 1) -> root restarts mid -> ...
 * root (intensity 2) gives up on the third mid failure. */
static void *escalation_body(void *p) {
    (void)p;
    wk_reset();
    wargs a = {1, 0, 0};
    tr_child_spec leaf = wk_child("leaf", &a, TR_RESTART_PERMANENT);
    tr_sup_spec mid = {.intensity = 1, .period_ms = 60000, .children = &leaf, .nchildren = 1};
    tr_child_spec midc = {.id = "mid", .sup = &mid};
    tr_sup_spec root = {.intensity = 2, .period_ms = 60000, .children = &midc, .nchildren = 1};
    tr_actor_ref sup;
    ck_assert_tr_ok(tr_sup_start(&sup, &root, NULL));
    tr_actor_ref midref;
    child_refs(sup, &midref, 1);
    for (int round = 0; round < 3; round++) {
        for (int k = 0; k < 2; k++) { /* 2 crashes: 1 restart allowed, the 2nd gives up */
            tr_actor_ref leafref;
            int before = atomic_load(&G.inits[1]);
            wait_child_running(midref, &leafref);
            ck_assert_tr_ok(wk_cast(leafref, W_CRASH, 66));
            if (k == 0)
                wait_count(&G.inits[1], before + 1);
            else
                wait_count(&G.terms[1], 2 * round + 2);
        }
        if (round < 2)
            wait_count(&G.inits[1], 2 * round + 3); /* root restarted mid */
    }
    int r;
    ck_assert_tr_ok(tr_actor_wait(sup, &r, TR_TEST_DEADLINE()));
    ck_assert_int_eq(r, TR_ACTOR_SHUTDOWN);
    /* (its reason text, "reached max restart intensity", goes with it: a
     * dead actor's info keeps the reason only) */
    ck_assert_int_eq(atomic_load(&G.inits[1]), 6);
    ck_assert_int_eq(atomic_load(&G.terms[1]), 6);
    ck_assert_int_eq(midref.slot != 0, 1);
    ck_assert_tr_ok(tr_actor_wait(midref, &r, TR_TEST_DEADLINE()));
    return NULL;
}
START_TEST(intensity_escalation) { run_in(workers_for(_i), escalation_body, NULL); }
END_TEST

/* An init that fails on restart counts as another restart: with intensity
 * 3 the supervisor gives up after the crash and 3 failed inits. */
static void *restart_init_fail_body(void *p) {
    (void)p;
    wk_reset();
    wargs a = {1, 0, 0};
    tr_child_spec kid = wk_child("a", &a, TR_RESTART_PERMANENT);
    tr_sup_spec spec = {.intensity = 3, .period_ms = 60000, .children = &kid, .nchildren = 1};
    tr_actor_ref sup, ref;
    ck_assert_tr_ok(tr_sup_start(&sup, &spec, NULL));
    child_refs(sup, &ref, 1);
    atomic_store(&G.fail_init[1], 100);
    ck_assert_tr_ok(wk_cast(ref, W_CRASH, 3));
    int r;
    ck_assert_tr_ok(tr_actor_wait(sup, &r, TR_TEST_DEADLINE()));
    ck_assert_int_eq(r, TR_ACTOR_SHUTDOWN);
    ck_assert_int_eq(atomic_load(&G.inits[1]), 1 + 3); /* the first, then 3 failed tries */
    ck_assert_tr_ok(tr_actor_wait(ref, &r, TR_TEST_DEADLINE()));
    return NULL;
}
START_TEST(restart_init_failure) { run_in(1, restart_init_fail_body, NULL); }
END_TEST

/* ---- no message lost across restarts ------------------------------------------------- */

static void *no_loss_body(void *p) {
    int seed = *(int *)p;
    wk_reset();
    atomic_store(&G.seed, seed);
    wargs a = {1, 0, 0};
    tr_child_spec kid = wk_child("a", &a, TR_RESTART_PERMANENT);
    kid.opts.capacity = 256;
    tr_sup_spec spec = {.intensity = 100000, .period_ms = 1000, .children = &kid,
                        .nchildren = 1};
    tr_actor_ref sup, ref;
    ck_assert_tr_ok(tr_sup_start(&sup, &spec, NULL));
    child_refs(sup, &ref, 1);
    const int n = 10000;
    int crashes = 0;
    for (int i = 0; i < n; i++) {
        ck_assert_tr_ok(wk_cast(ref, W_COUNT, i));
        crashes += i % 97 == seed;
    }
    wait_count(&G.counted, n);
    ck_assert_int_eq(atomic_load(&G.handled) + atomic_load(&G.crashed), n);
    ck_assert_int_eq(atomic_load(&G.crashed), crashes);
    ck_assert_int_eq(atomic_load(&G.inits[1]), 1 + crashes);
    ck_assert_tr_ok(tr_sup_stop(sup, TR_TEST_DEADLINE()));
    return NULL;
}
static int seeds[] = {0, 13, 96};
START_TEST(no_message_lost) { run_in(workers_for(_i), no_loss_body, &seeds[_i % 3]); }
END_TEST

/* ---- shutdown rules --------------------------------------------------------------------- */

/* A child stuck in a handler ignoring TR_ECANCELED: past shutdown_ms it is
 * cancelled, past kill_grace_ms killed; its cleanup runs, not terminate. */
static void *stuck_body(void *p) {
    (void)p;
    wk_reset();
    wargs a[2] = {{1, 0, 0}, {2, 0, 0}};
    tr_child_spec kids[2] = {wk_child("a", &a[0], TR_RESTART_PERMANENT),
                             wk_child("stuck", &a[1], TR_RESTART_PERMANENT)};
    kids[1].shutdown_ms = 50;
    tr_sup_spec spec = {.kill_grace_ms = 50, .children = kids, .nchildren = 2};
    tr_actor_ref sup, refs[2];
    ck_assert_tr_ok(tr_sup_start(&sup, &spec, NULL));
    child_refs(sup, refs, 2);
    ck_assert_tr_ok(wk_cast(refs[1], W_STUCK, 0));
    wait_count(&G.in_stuck, 1);
    ck_assert_tr_ok(tr_sup_stop(sup, TR_TEST_DEADLINE()));
    ck_assert_int_eq(atomic_load(&G.cleanup_ran), 1);
    ck_assert_int_eq(atomic_load(&G.terms[2]), 0); /* killed: no terminate */
    ck_assert_int_eq(atomic_load(&G.terms[1]), 1);
    int r;
    ck_assert_tr_ok(tr_actor_wait(refs[1], &r, TR_TEST_DEADLINE()));
    ck_assert_int_eq(r, TR_ACTOR_KILLED);
    return NULL;
}
START_TEST(shutdown_cancel_then_kill) { run_in(workers_for(_i), stuck_body, NULL); }
END_TEST

/* A killed supervisor kills its children; BRUTAL children are killed. */
static void *killed_body(void *p) {
    (void)p;
    wk_reset();
    wargs a[2] = {{1, 0, 0}, {2, 0, 0}};
    tr_child_spec kids[2] = {wk_child("a", &a[0], TR_RESTART_PERMANENT),
                             wk_child("b", &a[1], TR_RESTART_PERMANENT)};
    kids[1].shutdown_ms = TR_SHUTDOWN_BRUTAL;
    tr_sup_spec spec = {.children = kids, .nchildren = 2};
    tr_actor_ref sup, refs[2];
    ck_assert_tr_ok(tr_sup_start(&sup, &spec, NULL));
    child_refs(sup, refs, 2);
    ck_assert_tr_ok(tr_sup_terminate_child(sup, "b", TR_TEST_DEADLINE()));
    ck_assert_int_eq(atomic_load(&G.term_reason[2]), TR_ACTOR_KILLED);
    ck_assert_tr_ok(tr_actor_kill(sup));
    int r;
    ck_assert_tr_ok(tr_actor_wait(refs[0], &r, TR_TEST_DEADLINE()));
    ck_assert_int_eq(r, TR_ACTOR_KILLED);
    ck_assert_tr_ok(tr_actor_wait(refs[1], &r, TR_TEST_DEADLINE())); /* let go too */
    ck_assert_tr_ok(tr_actor_wait(sup, &r, TR_TEST_DEADLINE()));
    ck_assert_int_eq(r, TR_ACTOR_KILLED);
    return NULL;
}
START_TEST(killed_supervisor) { run_in(workers_for(_i), killed_body, NULL); }
END_TEST

/* A child selecting on tr_sup_signal() beside a long wait sees STOPPING. */
static void *signal_body(void *p) {
    (void)p;
    wk_reset();
    ck_assert_ptr_null(tr_sup_signal());
    ck_assert(!tr_sup_stopping());
    wargs a = {1, 0, 0};
    tr_child_spec kid = wk_child("a", &a, TR_RESTART_PERMANENT);
    tr_sup_spec inner = {.children = &kid, .nchildren = 1};
    tr_child_spec ic = {.id = "inner", .sup = &inner};
    tr_sup_spec spec = {.children = &ic, .nchildren = 1};
    tr_actor_ref sup, inref, ref;
    ck_assert_tr_ok(tr_sup_start(&sup, &spec, NULL));
    child_refs(sup, &inref, 1);
    child_refs(inref, &ref, 1);
    tr_watch_rx *rx;
    ck_assert_tr_ok(tr_sup_subscribe(sup, &rx, TR_TEST_DEADLINE()));
    tr_watch_rx *rx2 = NULL;
    ck_assert_tr_err(tr_sup_subscribe(ref, &rx2, TR_TEST_DEADLINE()), TR_EINVAL);
    ck_assert_ptr_null(rx2);
    ck_assert_tr_ok(wk_cast(ref, W_SIGWAIT, 0));
    wait_count(&G.in_sig, 1);
    int64_t t0 = tr_now();
    ck_assert_tr_ok(tr_sup_stop(sup, TR_TEST_DEADLINE()));
    ck_assert_msg(tr_now() - t0 < 5000000000LL, "the child did not see STOPPING");
    ck_assert_int_eq(atomic_load(&G.sig_seen), 1);
    int st = -1;
    ck_assert_tr_ok(tr_watch_get(rx, &st));
    ck_assert_int_eq(st, TR_SUP_STOPPING);
    tr_watch_rx_drop(&rx);
    return NULL;
}
START_TEST(shutdown_signal) { run_in(workers_for(_i), signal_body, NULL); }
END_TEST

/* ---- significant children ----------------------------------------------------------------- */

static void *significant_body(void *p) {
    int mode = *(int *)p;
    wk_reset();
    wargs a[3] = {{1, 0, 0}, {2, 0, 0}, {3, 0, 0}};
    tr_child_spec kids[3] = {wk_child("a", &a[0], TR_RESTART_PERMANENT),
                             wk_child("b", &a[1], TR_RESTART_TRANSIENT),
                             wk_child("c", &a[2], TR_RESTART_TEMPORARY)};
    kids[1].significant = kids[2].significant = true;
    tr_sup_spec spec = {.auto_shutdown = mode, .intensity = 5, .period_ms = 10000,
                        .children = kids, .nchildren = 3};
    tr_actor_ref sup, refs[3];
    ck_assert_tr_ok(tr_sup_start(&sup, &spec, NULL));
    child_refs(sup, refs, 3);
    ck_assert_tr_ok(wk_cast(refs[1], W_CRASH, 5)); /* abnormal: restarted, no shutdown */
    wait_count(&G.inits[2], 2);
    ck_assert_tr_ok(wk_cast(refs[1], W_CRASH, TR_ACTOR_NORMAL));
    int r;
    ck_assert_tr_ok(tr_actor_wait(refs[1], &r, TR_TEST_DEADLINE()));
    if (mode == TR_AUTO_SHUTDOWN_ALL_SIGNIFICANT) {
        tr_sup_counts cnt;
        ck_assert_tr_ok(tr_sup_count_children(sup, &cnt, TR_TEST_DEADLINE()));
        ck_assert_int_eq(cnt.active, 2); /* c is still running */
        ck_assert_tr_ok(wk_cast(refs[2], W_CRASH, 4));
    }
    ck_assert_tr_ok(tr_actor_wait(sup, &r, TR_TEST_DEADLINE()));
    ck_assert_int_eq(r, TR_ACTOR_SHUTDOWN);
    ck_assert_int_eq(atomic_load(&G.terms[1]), 1);
    return NULL;
}
static int sig_modes[] = {TR_AUTO_SHUTDOWN_ANY_SIGNIFICANT, TR_AUTO_SHUTDOWN_ALL_SIGNIFICANT};
START_TEST(significant) { run_in(2, significant_body, &sig_modes[_i]); }
END_TEST

/* ---- dynamic ------------------------------------------------------------------------------ */

/* 100 children whose terminate sleeps 50 ms stop in parallel: sequentially
 * that is 5 s; the bound (2 s) only tells parallel from sequential, it is
 * not a speed test. */
static void *dynamic_body(void *p) {
    (void)p;
    wk_reset();
    wargs t = {1, 0, 50};
    tr_child_spec tmpl = wk_child(NULL, &t, TR_RESTART_PERMANENT);
    tr_sup_spec spec = {.strategy = TR_SUP_DYNAMIC, .intensity = 10, .period_ms = 10000,
                        .children = &tmpl, .nchildren = 1};
    tr_actor_ref sup;
    ck_assert_tr_ok(tr_sup_start(&sup, &spec, NULL));
    ck_assert_int_eq(atomic_load(&G.nlog), 0);
    tr_actor_ref kids[100];
    for (int i = 0; i < 100; i++)
        ck_assert_tr_ok(tr_sup_start_child(sup, NULL, &kids[i], TR_TEST_DEADLINE()));
    wargs own = {2, 0, 50};
    tr_child_spec cs = {.args = &own, .args_size = sizeof own};
    tr_actor_ref extra;
    ck_assert_tr_ok(tr_sup_start_child(sup, &cs, &extra, TR_TEST_DEADLINE()));
    ck_assert_int_eq(wk_ping(extra), 2);
    ck_assert_tr_err(tr_sup_terminate_child(sup, "x", TR_TEST_DEADLINE()), TR_EINVAL);
    ck_assert_tr_err(tr_sup_restart_child(sup, "x", NULL, TR_TEST_DEADLINE()), TR_EINVAL);
    ck_assert_tr_ok(tr_sup_terminate_ref(sup, extra, TR_TEST_DEADLINE()));
    ck_assert_tr_err(tr_sup_terminate_ref(sup, extra, TR_TEST_DEADLINE()), TR_EINVAL);
    /* a crash restarts that child only, same ref */
    ck_assert_tr_ok(wk_cast(kids[5], W_CRASH, 8));
    wait_count(&G.inits[1], 101);
    ck_assert_int_eq(wk_ping(kids[5]), 1);
    tr_sup_counts cnt;
    ck_assert_tr_ok(tr_sup_count_children(sup, &cnt, TR_TEST_DEADLINE()));
    ck_assert_int_eq(cnt.specs, 100);
    ck_assert_int_eq(cnt.active, 100);
    int64_t t0 = tr_now();
    ck_assert_tr_ok(tr_sup_stop(sup, TR_TEST_DEADLINE()));
    int64_t ms = (tr_now() - t0) / 1000000;
    ck_assert_msg(ms < 2000, "100 x 50 ms terminates took %lld ms: not in parallel",
                  (long long)ms);
    ck_assert_int_eq(atomic_load(&G.terms[1]), 101);
    return NULL;
}
START_TEST(dynamic_parallel_stop) { run_in(2, dynamic_body, NULL); }
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("sup");
    TCase *tc = tr_tcase("order");
    tcase_add_test(tc, start_and_stop_order);
    tcase_add_test(tc, failing_init_unwinds);
    suite_add_tcase(s, tc);
    tc = tr_tcase("strategies");
    tcase_add_loop_test(tc, strategies, 0, 6);
    tcase_add_test(tc, restart_types);
    tcase_add_test(tc, temporary_sibling_removed);
    tcase_add_loop_test(tc, significant, 0, 2);
    tcase_add_test(tc, dynamic_parallel_stop);
    suite_add_tcase(s, tc);
    tc = tr_tcase("intensity");
    tcase_add_loop_test(tc, intensity_escalation, 0, 2);
    tcase_add_test(tc, restart_init_failure);
    tcase_add_loop_test(tc, no_message_lost, 0, 3);
    suite_add_tcase(s, tc);
    tc = tr_tcase("shutdown");
    tcase_add_loop_test(tc, shutdown_cancel_then_kill, 0, 2);
    tcase_add_loop_test(tc, shutdown_signal, 0, 2);
    tcase_add_loop_test(tc, killed_supervisor, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

TR_TEST_MAIN(suite)
