/* test_sup_ops.c — the supervisor's operations and their errors
 * (start/terminate/restart/delete, which/count), tr_sup_check's messages
 * with paths, args ownership (args_drop called exactly once), and
 * tr_sup_dump's fields including a nested supervisor.
 */
#include <jansson.h>

#include "sup_testutil.h"

static atomic_int drops;
static void count_drop(void *p, void *ctx) {
    (void)ctx;
    free(p);
    atomic_fetch_add(&drops, 1);
}

static void *ops_body(void *p) {
    (void)p;
    wk_reset();
    wargs a[2] = {{1, 0, 0}, {2, 0, 0}};
    tr_child_spec kids[2] = {wk_child("a", &a[0], TR_RESTART_PERMANENT),
                             wk_child("b", &a[1], TR_RESTART_PERMANENT)};
    tr_sup_spec spec = {.children = kids, .nchildren = 2};
    tr_actor_ref sup, refs[2];
    ck_assert_tr_ok(tr_sup_start(&sup, &spec, NULL));
    child_refs(sup, refs, 2);
    /* start_child: duplicate id, bad spec, then a good one */
    ck_assert_tr_err(tr_sup_start_child(sup, &kids[0], NULL, TR_TEST_DEADLINE()), TR_EEXIST);
    tr_child_spec bad = wk_child("c", &a[0], 17);
    ck_assert_tr_err(tr_sup_start_child(sup, &bad, NULL, TR_TEST_DEADLINE()), TR_EINVAL);
    ck_assert_tr_err(tr_sup_start_child(sup, NULL, NULL, TR_TEST_DEADLINE()), TR_EINVAL);
    wargs ca = {3, 0, 0};
    tr_child_spec c = wk_child("c", &ca, TR_RESTART_TRANSIENT);
    tr_actor_ref cref;
    ck_assert_tr_ok(tr_sup_start_child(sup, &c, &cref, TR_TEST_DEADLINE()));
    ck_assert_int_eq(wk_ping(cref), 3);
    /* an init failure: the spec is not kept */
    wargs fa = {4, 33, 0};
    tr_child_spec f = wk_child("f", &fa, TR_RESTART_PERMANENT);
    ck_assert_tr_err(tr_sup_start_child(sup, &f, NULL, TR_TEST_DEADLINE()), 33);
    /* args_drop: called once, whatever happens */
    int *owned = malloc(sizeof *owned);
    *owned = 1;
    tr_child_spec d = wk_child("d", NULL, TR_RESTART_PERMANENT);
    d.args = &ca; /* init reads a wargs; the dropped block is separate */
    d.args_size = 0;
    d.args_drop = count_drop;
    d.args = owned;
    d.type = &probe_type; /* probe's init reads an int: 1 is fine */
    atomic_store(&drops, 0);
    ck_assert_tr_ok(tr_sup_start_child(sup, &d, NULL, TR_TEST_DEADLINE()));
    ck_assert_int_eq(atomic_load(&drops), 0);
    /* which / count */
    tr_sup_child_info info[8];
    size_t n;
    ck_assert_tr_ok(tr_sup_which_children(sup, info, 8, &n, TR_TEST_DEADLINE()));
    ck_assert_int_eq(n, 4);
    ck_assert_str_eq(info[2].id, "c");
    ck_assert_str_eq(info[3].id, "d");
    ck_assert_int_eq(info[2].restart, TR_RESTART_TRANSIENT);
    ck_assert(!info[0].is_supervisor);
    ck_assert_tr_ok(tr_sup_which_children(sup, info, 1, &n, TR_TEST_DEADLINE()));
    ck_assert_int_eq(n, 4); /* more than cap */
    /* terminate / restart / delete */
    ck_assert_tr_err(tr_sup_delete_child(sup, "a", TR_TEST_DEADLINE()), TR_EBUSY);
    ck_assert_tr_err(tr_sup_restart_child(sup, "a", NULL, TR_TEST_DEADLINE()), TR_EBUSY);
    ck_assert_tr_err(tr_sup_terminate_child(sup, "zz", TR_TEST_DEADLINE()), TR_EINVAL);
    ck_assert_tr_err(tr_sup_delete_child(sup, "zz", TR_TEST_DEADLINE()), TR_EINVAL);
    ck_assert_tr_err(tr_sup_terminate_child(sup, NULL, TR_TEST_DEADLINE()), TR_EINVAL);
    ck_assert_tr_ok(tr_sup_terminate_child(sup, "a", TR_TEST_DEADLINE()));
    ck_assert_int_eq(atomic_load(&G.terms[1]), 1);
    ck_assert_tr_ok(tr_sup_terminate_child(sup, "a", TR_TEST_DEADLINE())); /* not running: 0 */
    tr_sup_counts cnt;
    ck_assert_tr_ok(tr_sup_count_children(sup, &cnt, TR_TEST_DEADLINE()));
    ck_assert_int_eq(cnt.specs, 4);
    ck_assert_int_eq(cnt.active, 3);
    ck_assert_int_eq(cnt.workers, 4);
    ck_assert_int_eq(cnt.supervisors, 0);
    tr_actor_ref again;
    ck_assert_tr_ok(tr_sup_restart_child(sup, "a", &again, TR_TEST_DEADLINE()));
    ck_assert(tr_actor_ref_eq(again, refs[0])); /* kept: same ref */
    ck_assert_int_eq(wk_ping(again), 1);
    ck_assert_tr_ok(tr_sup_terminate_ref(sup, refs[1], TR_TEST_DEADLINE()));
    ck_assert_tr_ok(tr_sup_delete_child(sup, "b", TR_TEST_DEADLINE()));
    ck_assert_tr_err(tr_sup_restart_child(sup, "b", NULL, TR_TEST_DEADLINE()), TR_EINVAL);
    int r;
    ck_assert_tr_ok(tr_actor_wait(refs[1], &r, TR_TEST_DEADLINE())); /* let go: dead */
    /* not a supervisor */
    ck_assert_tr_err(tr_sup_count_children(refs[0], &cnt, TR_TEST_DEADLINE()), TR_EINVAL);
    ck_assert_tr_err(tr_sup_count_children(TR_ACTOR_NONE, &cnt, TR_TEST_DEADLINE()), TR_EINVAL);
    ck_assert_tr_ok(tr_sup_stop(sup, TR_TEST_DEADLINE()));
    ck_assert_int_eq(atomic_load(&drops), 1);
    ck_assert_tr_err(tr_sup_count_children(sup, &cnt, TR_TEST_DEADLINE()), TR_EDOWN);
    ck_assert_tr_err(tr_sup_start_child(sup, &c, NULL, TR_TEST_DEADLINE()), TR_EDOWN);
    return NULL;
}
START_TEST(operations) { run_in(2, ops_body, NULL); }
END_TEST

/* A child terminating itself through its supervisor: TR_EDEADLK. */
typedef struct selfterm {
    tr_actor_ref sup;
} selfterm;
static atomic_int selfterm_rc;
static int st_init(void *st, const void *args) {
    (void)args;
    (void)st;
    return 0;
}
static int st_handle(void *st, tr_actor_msg *m) {
    (void)st;
    tr_actor_ref sup = *(tr_actor_ref *)m->data;
    atomic_store(&selfterm_rc, tr_sup_terminate_ref(sup, tr_actor_self(), TR_TEST_DEADLINE()));
    return 0;
}
static const tr_actor_type st_type = {.name = "selfterm", .msg_size = sizeof(tr_actor_ref),
                                      .init = st_init, .handle = st_handle};

static void *edeadlk_body(void *p) {
    (void)p;
    tr_child_spec kid = {.id = "s", .type = &st_type};
    tr_sup_spec spec = {.children = &kid, .nchildren = 1};
    tr_actor_ref sup, ref;
    ck_assert_tr_ok(tr_sup_start(&sup, &spec, NULL));
    child_refs(sup, &ref, 1);
    atomic_store(&selfterm_rc, 1);
    ck_assert_tr_ok(tr_actor_cast(ref, &sup, TR_TEST_DEADLINE()));
    int64_t dl = TR_TEST_DEADLINE();
    while (atomic_load(&selfterm_rc) == 1 && tr_now() < dl)
        tr_yield();
    ck_assert_int_eq(atomic_load(&selfterm_rc), TR_EDEADLK);
    ck_assert_tr_ok(tr_sup_stop(sup, TR_TEST_DEADLINE()));
    return NULL;
}
START_TEST(terminate_self_edeadlk) { run_in(1, edeadlk_body, NULL); }
END_TEST

/* ---- tr_sup_check ------------------------------------------------------------------ */

START_TEST(check_paths) {
    wargs a = {1, 0, 0};
    char err[256];
    tr_child_spec in[2] = {wk_child("a", &a, 0), wk_child("a", &a, 0)};
    tr_sup_spec inner = {.children = in, .nchildren = 2};
    tr_child_spec out[2] = {wk_child("x", &a, 0), {.id = "y", .sup = &inner}};
    tr_sup_spec spec = {.children = out, .nchildren = 2};
    ck_assert_tr_err(tr_sup_check(&spec, err, sizeof err), TR_EINVAL);
    ck_assert_str_eq(err, "children[1].sup.children[1].id: \"a\" is used twice");
    in[1].id = "b";
    ck_assert_tr_ok(tr_sup_check(&spec, err, sizeof err));
    out[0].restart = 9;
    ck_assert_tr_err(tr_sup_check(&spec, err, sizeof err), TR_EINVAL);
    ck_assert_str_eq(err, "children[0].restart: not a tr_restart value");
    out[0].restart = 0;
    out[0].significant = true;
    ck_assert_tr_err(tr_sup_check(&spec, err, sizeof err), TR_EINVAL);
    ck_assert_str_eq(err, "children[0].significant: a permanent child cannot be significant");
    out[0].significant = false;
    out[0].sup = &inner;
    ck_assert_tr_err(tr_sup_check(&spec, err, sizeof err), TR_EINVAL);
    ck_assert_str_eq(err, "children[0].type: exactly one of type and sup must be set");
    out[0].sup = NULL;
    out[0].id = "";
    ck_assert_tr_err(tr_sup_check(&spec, NULL, 0), TR_EINVAL);
    out[0].id = "x";
    out[0].shutdown_ms = -3;
    ck_assert_tr_err(tr_sup_check(&spec, err, sizeof err), TR_EINVAL);
    ck_assert_str_eq(err, "children[0].shutdown_ms: not a timeout or TR_SHUTDOWN_ value");
    out[0].shutdown_ms = TR_SHUTDOWN_BRUTAL;
    spec.strategy = 7;
    ck_assert_tr_err(tr_sup_check(&spec, err, sizeof err), TR_EINVAL);
    ck_assert_str_eq(err, "strategy: not a tr_sup_strategy value");
    spec.strategy = TR_SUP_DYNAMIC;
    ck_assert_tr_err(tr_sup_check(&spec, err, sizeof err), TR_EINVAL);
    ck_assert_str_eq(err, "children: a DYNAMIC supervisor takes exactly one template");
    spec.nchildren = 1;
    out[0].id = NULL; /* ignored for DYNAMIC */
    ck_assert_tr_ok(tr_sup_check(&spec, err, sizeof err));
    spec.intensity = -1;
    ck_assert_tr_err(tr_sup_check(&spec, err, sizeof err), TR_EINVAL);
    ck_assert_str_eq(err, "intensity: negative");
    ck_assert_tr_err(tr_sup_check(NULL, err, sizeof err), TR_EINVAL);
    tr_actor_ref r;
    ck_assert_tr_err(tr_sup_start(&r, &spec, NULL), TR_EINVAL);
    ck_assert_tr_err(tr_sup_start(NULL, &inner, NULL), TR_EINVAL);
}
END_TEST

/* ---- dump ------------------------------------------------------------------------ */

static void *dump_body(void *p) {
    (void)p;
    wk_reset();
    wargs a[2] = {{1, 0, 0}, {2, 0, 0}};
    tr_child_spec leaf = wk_child("leaf", &a[1], TR_RESTART_TRANSIENT);
    tr_sup_spec inner = {.strategy = TR_SUP_REST_FOR_ONE, .children = &leaf, .nchildren = 1};
    tr_child_spec kids[2] = {wk_child("w", &a[0], TR_RESTART_PERMANENT),
                             {.id = "inner", .sup = &inner}};
    tr_sup_spec spec = {.intensity = 5, .period_ms = 3000, .children = kids, .nchildren = 2};
    tr_actor_opts o = {.name = "dumproot"};
    tr_actor_ref sup, refs[2];
    ck_assert_tr_ok(tr_sup_start(&sup, &spec, &o));
    child_refs(sup, refs, 2);
    ck_assert_tr_ok(wk_cast(refs[0], W_CRASH, 5));
    wait_count(&G.inits[1], 2);
    ck_assert_int_eq(wk_ping(refs[0]), 1);
    json_t *d = tr_sup_dump(sup, TR_TEST_DEADLINE());
    ck_assert_ptr_nonnull(d);
    ck_assert_str_eq(json_string_value(json_object_get(d, "name")), "dumproot");
    ck_assert_str_eq(json_string_value(json_object_get(d, "strategy")), "one_for_one");
    ck_assert_str_eq(json_string_value(json_object_get(d, "state")), "running");
    ck_assert_int_eq(json_integer_value(json_object_get(d, "intensity")), 5);
    ck_assert_int_eq(json_integer_value(json_object_get(d, "period_ms")), 3000);
    ck_assert_int_eq(json_integer_value(json_object_get(d, "restarts")), 1);
    ck_assert(json_is_string(json_object_get(d, "ref")));
    json_t *ch = json_object_get(d, "children");
    ck_assert_int_eq(json_array_size(ch), 2);
    json_t *w = json_array_get(ch, 0);
    ck_assert_str_eq(json_string_value(json_object_get(w, "id")), "w");
    ck_assert_str_eq(json_string_value(json_object_get(w, "type")), "wk");
    ck_assert_str_eq(json_string_value(json_object_get(w, "state")), "running");
    ck_assert_str_eq(json_string_value(json_object_get(w, "restart")), "permanent");
    ck_assert_int_eq(json_integer_value(json_object_get(w, "restarts")), 1);
    ck_assert_int_eq(json_integer_value(json_object_get(w, "last_reason")), 5);
    ck_assert_int_eq(json_array_size(json_object_get(w, "restart_times_ms")), 1);
    ck_assert(json_is_integer(json_object_get(w, "queued")));
    ck_assert_int_ge(json_integer_value(json_object_get(w, "handled")), 1);
    ck_assert(json_is_false(json_object_get(w, "significant")));
    json_t *in = json_object_get(json_array_get(ch, 1), "supervisor");
    ck_assert(json_is_object(in));
    ck_assert_str_eq(json_string_value(json_object_get(in, "strategy")), "rest_for_one");
    json_t *l = json_array_get(json_object_get(in, "children"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(l, "id")), "leaf");
    ck_assert_str_eq(json_string_value(json_object_get(l, "restart")), "transient");
    json_decref(d);
    ck_assert_ptr_null(tr_sup_dump(refs[0], TR_TEST_DEADLINE()));
    ck_assert_tr_ok(tr_sup_stop(sup, TR_TEST_DEADLINE()));
    ck_assert_ptr_null(tr_sup_dump(sup, TR_TEST_DEADLINE()));
    return NULL;
}
START_TEST(dump) { run_in(2, dump_body, NULL); }
END_TEST

/* From a plain thread (the runtime given in opts). */
START_TEST(plain_thread) {
    wk_reset();
    tr_runtime *rt = tr_test_runtime(2);
    wargs a = {1, 0, 0};
    tr_child_spec kid = wk_child("a", &a, TR_RESTART_PERMANENT);
    tr_sup_spec spec = {.children = &kid, .nchildren = 1};
    tr_actor_opts o = {.runtime = rt};
    tr_actor_ref sup, ref;
    ck_assert_tr_ok(tr_sup_start(&sup, &spec, &o));
    child_refs(sup, &ref, 1);
    ck_assert_tr_ok(wk_cast(ref, W_CRASH, 3));
    wait_count(&G.inits[1], 2);
    ck_assert_int_eq(wk_ping(ref), 1);
    ck_assert_tr_ok(tr_sup_stop(sup, TR_TEST_DEADLINE()));
    tr_runtime_free(&rt);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("sup_ops");
    TCase *tc = tr_tcase("ops");
    tcase_add_test(tc, operations);
    tcase_add_test(tc, terminate_self_edeadlk);
    tcase_add_test(tc, check_paths);
    tcase_add_test(tc, dump);
    tcase_add_test(tc, plain_thread);
    suite_add_tcase(s, tc);
    return s;
}

TR_TEST_MAIN(suite)
