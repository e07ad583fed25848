/* test_sup_json.c — supervision trees written as JSON: the registry of
 * type names, every validation error with its exact path and message (a
 * table), documents that are valid, nothing started from an invalid one,
 * the args a child's init sees (also after the document is gone), and an
 * init failure naming its child.
 */
#include <jansson.h>
#include <string.h>

#include "actor_testutil.h"
#include "tr_sup.h"

/* ---- a type that reads its JSON args ------------------------------------------- */

static atomic_int j_inits, j_terms, j_last_v;

typedef struct jstate {
    long v;
} jstate;

/* args: {"v": n} stores n; {"fail": n} fails init with n; {"abort": n}
 * fails it through tr_actor_fail. */
static int jprobe_init(void *st, const void *args) {
    const json_t *a = args;
    ck_assert_ptr_nonnull(a); /* JSON null when absent, never NULL */
    atomic_fetch_add(&j_inits, 1);
    if (json_is_integer(json_object_get(a, "fail")))
        return (int)json_integer_value(json_object_get(a, "fail"));
    if (json_is_integer(json_object_get(a, "abort")))
        tr_actor_fail((int)json_integer_value(json_object_get(a, "abort")), "abort");
    ((jstate *)st)->v = json_is_null(a) ? -1 : (long)json_integer_value(json_object_get(a, "v"));
    atomic_store(&j_last_v, (int)((jstate *)st)->v);
    return 0;
}

static int jprobe_handle(void *st, tr_actor_msg *m) {
    if (m->reply)
        tr_reply_send(m->reply, &((jstate *)st)->v);
    return 0;
}

static void jprobe_terminate(void *st, int reason) {
    (void)st;
    (void)reason;
    atomic_fetch_add(&j_terms, 1);
}

static const tr_actor_type jprobe_type = {
    .name = "jprobe",
    .state_size = sizeof(jstate),
    .msg_size = sizeof(int),
    .reply_size = sizeof(long),
    .init = jprobe_init,
    .handle = jprobe_handle,
    .terminate = jprobe_terminate,
};

/* Registered once per process (the registry is process-wide and tests may
 * run unforked). */
static void register_types(void) {
    int rc = tr_sup_register_type("jprobe", &jprobe_type);
    ck_assert(rc == 0 || rc == TR_EEXIST);
    rc = tr_sup_register_type("worker", &jprobe_type);
    ck_assert(rc == 0 || rc == TR_EEXIST);
    atomic_store(&j_inits, 0);
    atomic_store(&j_terms, 0);
}

static json_t *parse(const char *text) {
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    ck_assert_msg(j != NULL, "bad test JSON: %s: %s", text, je.text);
    return j;
}

/* ---- the registry ------------------------------------------------------------------ */

START_TEST(registry) {
    register_types();
    ck_assert_tr_err(tr_sup_register_type("jprobe", &jprobe_type), TR_EEXIST);
    ck_assert_tr_err(tr_sup_register_type("jprobe", &probe_type), TR_EEXIST);
    ck_assert_tr_err(tr_sup_register_type(NULL, &jprobe_type), TR_EINVAL);
    ck_assert_tr_err(tr_sup_register_type("", &jprobe_type), TR_EINVAL);
    ck_assert_tr_err(tr_sup_register_type("x", NULL), TR_EINVAL);
    char big[65];
    memset(big, 'a', 64);
    big[64] = '\0';
    ck_assert_tr_err(tr_sup_register_type(big, &jprobe_type), TR_EINVAL);
    big[63] = '\0';
    ck_assert_tr_ok(tr_sup_register_type(big, &jprobe_type)); /* 63 bytes is fine */
    tr_actor_type nohandle = jprobe_type;
    nohandle.handle = NULL;
    ck_assert_tr_err(tr_sup_register_type("nohandle", &nohandle), TR_EINVAL);
    tr_actor_type nomsg = jprobe_type;
    nomsg.msg_size = 0;
    ck_assert_tr_err(tr_sup_register_type("nomsg", &nomsg), TR_EINVAL);
    /* A name refused is not taken. */
    ck_assert_tr_ok(tr_sup_register_type("nohandle", &jprobe_type));
    char err[256];
    json_t *t = parse("{\"children\":[{\"id\":\"a\",\"type\":\"nohandle\"}]}");
    ck_assert_tr_ok(tr_sup_check_json(t, err, sizeof err));
    json_decref(t);
}
END_TEST

/* ---- validation: one row per error ----------------------------------------------------- */

typedef struct bad {
    const char *doc;
    const char *err;
} bad;

static const bad bad_docs[] = {
    {"[]", "expected an object"},
    {"{\"strategie\":\"one_for_one\"}", "unknown key \"strategie\""},
    {"{\"strategy\":\"one_for_none\"}",
     "strategy: expected one of one_for_one, one_for_all, rest_for_one, simple_one_for_one"},
    {"{\"strategy\":3}",
     "strategy: expected one of one_for_one, one_for_all, rest_for_one, simple_one_for_one"},
    {"{\"intensity\":-1}", "intensity: expected a non-negative integer"},
    {"{\"intensity\":1.5}", "intensity: expected a non-negative integer"},
    {"{\"intensity\":\"3\"}", "intensity: expected a non-negative integer"},
    {"{\"period_ms\":0}", "period_ms: expected a positive integer"},
    {"{\"period_ms\":\"5s\"}", "period_ms: expected a positive integer"},
    {"{\"auto_shutdown\":\"always\"}",
     "auto_shutdown: expected one of never, any_significant, all_significant"},
    {"{\"kill_grace_ms\":-5}", "kill_grace_ms: expected a positive integer"},
    {"{\"children\":{}}", "children: expected an array"},
    {"{\"children\":[1]}", "children[0]: expected an object"},
    {"{\"children\":[{\"id\":\"a\",\"type\":\"jprobe\",\"restrat\":\"permanent\"}]}",
     "children[0]: unknown key \"restrat\""},
    {"{\"children\":[{\"type\":\"jprobe\"}]}", "children[0]: missing \"id\""},
    {"{\"children\":[{\"id\":\"\",\"type\":\"jprobe\"}]}",
     "children[0].id: expected a string of 1 to 63 bytes"},
    {"{\"children\":[{\"id\":7,\"type\":\"jprobe\"}]}",
     "children[0].id: expected a string of 1 to 63 bytes"},
    {"{\"children\":[{\"id\":\"a\"}]}",
     "children[0]: needs exactly one of \"type\" or \"supervisor\""},
    {"{\"children\":[{\"id\":\"a\",\"type\":\"jprobe\",\"supervisor\":{}}]}",
     "children[0]: needs exactly one of \"type\" or \"supervisor\""},
    {"{\"children\":[{\"id\":\"a\",\"type\":\"jprobe\"},{\"id\":\"b\",\"type\":\"kv\"}]}",
     "children[1].type: \"kv\" is not a registered actor type"},
    {"{\"children\":[{\"id\":\"a\",\"type\":5}]}", "children[0].type: expected a string"},
    {"{\"children\":[{\"id\":\"a\",\"type\":\"jprobe\"},{\"id\":\"b\",\"type\":\"jprobe\"},"
     "{\"id\":\"c\",\"type\":\"jprobe\",\"restart\":\"always\"}]}",
     "children[2].restart: expected one of permanent, transient, temporary"},
    {"{\"children\":[{\"id\":\"a\",\"type\":\"jprobe\",\"shutdown\":0}]}",
     "children[0].shutdown: expected a positive integer, \"infinity\" or \"brutal_kill\""},
    {"{\"children\":[{\"id\":\"a\",\"type\":\"jprobe\",\"shutdown\":\"forever\"}]}",
     "children[0].shutdown: expected a positive integer, \"infinity\" or \"brutal_kill\""},
    {"{\"children\":[{\"id\":\"a\",\"type\":\"jprobe\",\"significant\":\"yes\"}]}",
     "children[0].significant: expected true or false"},
    {"{\"children\":[{\"id\":\"a\",\"type\":\"jprobe\",\"significant\":true}]}",
     "children[0].significant: a permanent child cannot be significant (make it transient or "
     "temporary)"},
    {"{\"children\":[{\"id\":\"a\",\"type\":\"jprobe\",\"name\":\"\"}]}",
     "children[0].name: expected a string of 1 to 63 bytes"},
    {"{\"children\":[{\"id\":\"a\",\"type\":\"jprobe\",\"capacity\":0}]}",
     "children[0].capacity: expected a positive integer"},
    {"{\"children\":[{\"id\":\"a\",\"type\":\"jprobe\",\"overflow\":\"block\"}]}",
     "children[0].overflow: expected one of wait, fail, drop_newest, drop_oldest"},
    {"{\"children\":[{\"id\":\"a\",\"supervisor\":{},\"args\":1}]}",
     "children[0].args: only a \"type\" child takes args"},
    {"{\"children\":[{\"id\":\"store\",\"type\":\"jprobe\"},{\"id\":\"b\",\"type\":\"jprobe\"},"
     "{\"id\":\"c\",\"type\":\"jprobe\"},{\"id\":\"store\",\"type\":\"jprobe\"}]}",
     "children[3].id: \"store\" is used twice"},
    {"{\"strategy\":\"simple_one_for_one\",\"children\":[]}",
     "children: simple_one_for_one needs exactly one child (the template), got 0"},
    {"{\"strategy\":\"simple_one_for_one\",\"children\":[{\"type\":\"jprobe\"},"
     "{\"type\":\"jprobe\"}]}",
     "children: simple_one_for_one needs exactly one child (the template), got 2"},
    {"{\"strategy\":\"simple_one_for_one\",\"children\":[{\"type\":\"jprobe\",\"name\":\"c\"}]}",
     "children[0].name: simple_one_for_one children cannot be named (they would share the name)"},
    {"{\"strategy\":\"simple_one_for_one\",\"auto_shutdown\":\"any_significant\","
     "\"children\":[{\"type\":\"jprobe\",\"restart\":\"transient\",\"significant\":true}]}",
     "auto_shutdown: must be never for simple_one_for_one (as in OTP)"},
    /* nested */
    {"{\"children\":[{\"id\":\"a\",\"type\":\"jprobe\"},{\"id\":\"conns\",\"supervisor\":"
     "{\"children\":[{\"id\":\"x\",\"type\":\"jprobe\",\"shutdown\":-3}]}}]}",
     "children[1].supervisor.children[0].shutdown: expected a positive integer, \"infinity\" or "
     "\"brutal_kill\""},
    {"{\"children\":[{\"id\":\"s\",\"supervisor\":{\"strategy\":\"rest_for_all\"}}]}",
     "children[0].supervisor.strategy: expected one of one_for_one, one_for_all, rest_for_one, "
     "simple_one_for_one"},
    {"{\"children\":[{\"id\":\"s\",\"supervisor\":[]}]}",
     "children[0].supervisor: expected an object"},
    {"{\"children\":[{\"id\":\"s\",\"supervisor\":{\"chidren\":[]}}]}",
     "children[0].supervisor: unknown key \"chidren\""},
    {"{\"children\":[{\"id\":\"s\",\"supervisor\":{\"children\":[{\"id\":\"s\",\"supervisor\":"
     "{\"children\":[{\"id\":\"a\",\"type\":\"jprobe\"},{\"id\":\"a\",\"type\":\"jprobe\"}]}}]}}]}",
     "children[0].supervisor.children[0].supervisor.children[1].id: \"a\" is used twice"},
};

START_TEST(invalid_docs) {
    register_types();
    const bad *b = &bad_docs[_i];
    json_t *t = parse(b->doc);
    char err[512];
    ck_assert_tr_err(tr_sup_check_json(t, err, sizeof err), TR_EINVAL);
    ck_assert_msg(strcmp(err, b->err) == 0, "doc %s\n got: %s\nwant: %s", b->doc, err, b->err);
    /* The same from tr_sup_start_json, and nothing started. */
    tr_actor_ref r = {7, 7};
    char err2[512];
    ck_assert_tr_err(tr_sup_start_json(&r, t, NULL, err2, sizeof err2), TR_EINVAL);
    ck_assert_str_eq(err2, b->err);
    ck_assert(tr_actor_ref_is_none(r));
    ck_assert_int_eq(atomic_load(&j_inits), 0);
    /* A short buffer is cut, not overrun; no buffer is fine. */
    char tiny[8];
    ck_assert_tr_err(tr_sup_check_json(t, tiny, sizeof tiny), TR_EINVAL);
    ck_assert_int_eq(strlen(tiny), 7);
    ck_assert_int_eq(strncmp(tiny, b->err, 7), 0);
    ck_assert_tr_err(tr_sup_check_json(t, NULL, 0), TR_EINVAL);
    json_decref(t);
}
END_TEST

START_TEST(null_doc) {
    char err[64];
    ck_assert_tr_err(tr_sup_check_json(NULL, err, sizeof err), TR_EINVAL);
    ck_assert_str_eq(err, "no document (NULL)");
    tr_actor_ref r;
    ck_assert_tr_err(tr_sup_start_json(&r, NULL, NULL, err, sizeof err), TR_EINVAL);
    json_t *t = parse("{}");
    ck_assert_tr_err(tr_sup_start_json(NULL, t, NULL, err, sizeof err), TR_EINVAL);
    json_decref(t);
}
END_TEST

static const char *const good_docs[] = {
    "{}",
    "{\"children\":[]}",
    "{\"strategy\":\"rest_for_one\",\"intensity\":0,\"period_ms\":1,\"auto_shutdown\":"
    "\"any_significant\",\"kill_grace_ms\":10,\"children\":[{\"id\":\"store\",\"type\":\"jprobe\","
    "\"restart\":\"transient\",\"shutdown\":\"brutal_kill\",\"significant\":true,\"name\":\"st\","
    "\"capacity\":1024,\"overflow\":\"drop_oldest\",\"args\":{\"v\":[1,{\"x\":null}]}},"
    "{\"id\":\"conns\",\"restart\":\"permanent\",\"shutdown\":\"infinity\",\"supervisor\":"
    "{\"strategy\":\"simple_one_for_one\",\"children\":[{\"type\":\"worker\",\"restart\":"
    "\"temporary\",\"args\":null}]}}]}",
    "{\"strategy\":\"simple_one_for_one\",\"children\":[{\"id\":\"t\",\"type\":\"jprobe\"}]}",
    "{\"children\":[{\"id\":\"a\",\"type\":\"jprobe\",\"significant\":false},"
    "{\"id\":\"b\",\"type\":\"jprobe\",\"restart\":\"temporary\",\"significant\":true,"
    "\"shutdown\":1}]}",
    /* the same id under different supervisors is fine */
    "{\"children\":[{\"id\":\"a\",\"type\":\"jprobe\"},{\"id\":\"s\",\"supervisor\":"
    "{\"children\":[{\"id\":\"a\",\"type\":\"jprobe\"}]}}]}",
};

START_TEST(valid_docs) {
    register_types();
    json_t *t = parse(good_docs[_i]);
    char err[256] = "untouched";
    ck_assert_tr_ok(tr_sup_check_json(t, err, sizeof err));
    ck_assert_str_eq(err, "");
    json_decref(t);
}
END_TEST

/* ---- starting ------------------------------------------------------------------------------ */

static long call_v(tr_actor_ref r) {
    long v = -100;
    int op = 0;
    ck_assert_tr_ok(tr_actor_call(r, &op, &v, TR_TEST_DEADLINE()));
    return v;
}

static void *start_body(void *arg) {
    (void)arg;
    json_t *t = parse("{\"strategy\":\"one_for_all\",\"children\":["
                      "{\"id\":\"a\",\"type\":\"jprobe\",\"name\":\"ja\",\"args\":{\"v\":41}},"
                      "{\"id\":\"b\",\"type\":\"jprobe\",\"name\":\"jb\"},"
                      "{\"id\":\"s\",\"supervisor\":{\"children\":["
                      "{\"id\":\"c\",\"type\":\"worker\",\"name\":\"jc\",\"args\":{\"v\":7}}]}},"
                      "{\"id\":\"d\",\"supervisor\":{\"strategy\":\"simple_one_for_one\","
                      "\"children\":[{\"type\":\"worker\",\"args\":{\"v\":9}}]}}]}");
    tr_actor_ref root;
    char err[256];
    ck_assert_tr_ok(tr_sup_start_json(&root, t, NULL, err, sizeof err));
    json_decref(t); /* the supervisor holds what it needs */
    ck_assert_int_eq(atomic_load(&j_inits), 3);
    tr_actor_ref a, b, c;
    ck_assert_tr_ok(tr_actor_whereis("ja", &a));
    ck_assert_tr_ok(tr_actor_whereis("jb", &b));
    ck_assert_tr_ok(tr_actor_whereis("jc", &c));
    ck_assert_int_eq(call_v(a), 41);
    ck_assert_int_eq(call_v(b), -1); /* no args: JSON null */
    ck_assert_int_eq(call_v(c), 7);
    tr_actor_info info;
    ck_assert_tr_ok(tr_actor_info_get(a, &info));
    ck_assert_str_eq(info.type, "jprobe"); /* the registry's copy keeps the name */
    ck_assert_tr_ok(tr_sup_stop(root, TR_TEST_DEADLINE()));
    ck_assert_int_eq(atomic_load(&j_terms), 3);
    ck_assert_tr_err(tr_actor_whereis("ja", &a), TR_EDOWN);
    return NULL;
}

START_TEST(start_tree) {
    register_types();
    run_in(workers_for(_i), start_body, NULL);
}
END_TEST

typedef struct failcase {
    const char *doc;
    int reason;
    const char *err;
    int inits, terms;
} failcase;

static const failcase fail_cases[] = {
    {"{\"children\":[{\"id\":\"a\",\"type\":\"jprobe\"},"
     "{\"id\":\"store\",\"type\":\"jprobe\",\"args\":{\"fail\":5}},"
     "{\"id\":\"c\",\"type\":\"jprobe\"}]}",
     5, "children[1] (\"store\"): init failed: reason 5", 2, 1},
    {"{\"children\":[{\"id\":\"a\",\"type\":\"jprobe\"},{\"id\":\"s\",\"supervisor\":"
     "{\"children\":[{\"id\":\"b\",\"type\":\"jprobe\"},"
     "{\"id\":\"x\",\"type\":\"worker\",\"args\":{\"abort\":7}}]}}]}",
     7, "children[1].supervisor.children[1] (\"x\"): init failed: reason 7", 3, 2},
    {"{\"children\":[{\"id\":\"a\",\"type\":\"jprobe\",\"args\":{\"fail\":-12}}]}", -12,
     "children[0] (\"a\"): init failed: reason -12", 1, 0},
};

static void *fail_body(void *arg) {
    const failcase *f = arg;
    json_t *t = parse(f->doc);
    tr_actor_ref root;
    char err[256];
    ck_assert_tr_err(tr_sup_start_json(&root, t, NULL, err, sizeof err), f->reason);
    ck_assert_str_eq(err, f->err);
    ck_assert(tr_actor_ref_is_none(root));
    ck_assert_int_eq(atomic_load(&j_inits), f->inits);
    ck_assert_int_eq(atomic_load(&j_terms), f->terms); /* the started ones were stopped */
    json_decref(t);
    return NULL;
}

START_TEST(init_failure_named) {
    register_types();
    run_in(1, fail_body, (void *)&fail_cases[_i]);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("sup_json");
    TCase *tc = tr_tcase("registry");
    tcase_add_test(tc, registry);
    tcase_add_test(tc, null_doc);
    suite_add_tcase(s, tc);
    tc = tr_tcase("check");
    tcase_add_loop_test(tc, invalid_docs, 0, (int)(sizeof bad_docs / sizeof bad_docs[0]));
    tcase_add_loop_test(tc, valid_docs, 0, (int)(sizeof good_docs / sizeof good_docs[0]));
    suite_add_tcase(s, tc);
    tc = tr_tcase("start");
    tcase_add_loop_test(tc, start_tree, 0, 2);
    tcase_add_loop_test(tc, init_failure_named, 0,
                        (int)(sizeof fail_cases / sizeof fail_cases[0]));
    suite_add_tcase(s, tc);
    return s;
}

TR_TEST_MAIN(suite)
