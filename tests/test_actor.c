/* test_actor.c — an actor's life: spawn and init, stop (graceful, with a
 * full mailbox, past its deadline), kill, crash by return and by
 * tr_actor_fail, exit, wait, stale refs, the registry, introspection, the
 * supervisor's restart hooks, plain threads, and 100,000 actors on 4
 * workers.  Calls, cycles and overflow live in test_actor_call.c, monitors
 * and links in test_actor_monitor.c.
 */
#include <jansson.h>

#include "actor_testutil.h"
#include "../actors/internal.h" /* the supervisor hooks */

/* ---- spawn and init ---------------------------------------------------------------- */

static void *spawn_basic_body(void *arg) {
    (void)arg;
    int id = 5;
    tr_actor_ref r;
    ck_assert_tr_ok(tr_actor_spawn(&r, &probe_type, &id, NULL));
    ck_assert_int_eq(atomic_load(&P.inits), 1);
    long v;
    ck_assert_tr_ok(call_op(r, OP_ADD, 2, &v, TR_TEST_DEADLINE()));
    ck_assert_int_eq(v, 2);
    ck_assert_tr_ok(call_op(r, OP_ADD, 3, &v, TR_TEST_DEADLINE()));
    ck_assert_int_eq(v, 5);
    ck_assert_tr_ok(call_op(r, OP_SELF, 0, &v, TR_TEST_DEADLINE()));
    ck_assert_int_eq(v, r.slot);
    ck_assert(tr_actor_ref_is_none(tr_actor_self())); /* a plain task is no actor */
    for (int i = 0; i < 10; i++)
        ck_assert_tr_ok(cast_op(r, OP_ADD, 1, TR_TEST_DEADLINE()));
    ck_assert_tr_ok(call_op(r, OP_GET, 0, &v, TR_TEST_DEADLINE()));
    ck_assert_int_eq(v, 15);
    tr_actor_info info;
    ck_assert_tr_ok(tr_actor_info_get(r, &info));
    ck_assert_str_eq(info.type, "probe");
    ck_assert_int_eq(info.handled, 14);
    ck_assert_tr_ok(tr_actor_stop(r, TR_ACTOR_NORMAL, TR_TEST_DEADLINE()));
    ck_assert_int_eq(atomic_load(&P.terminates), 1);
    int reason = -1;
    ck_assert_tr_ok(tr_actor_wait(r, &reason, TR_TEST_DEADLINE()));
    ck_assert_int_eq(reason, TR_ACTOR_NORMAL);
    ck_assert_tr_err(call_op(r, OP_GET, 0, &v, TR_TEST_DEADLINE()), TR_EDOWN);
    ck_assert_tr_err(cast_op(r, OP_GET, 0, TR_TEST_DEADLINE()), TR_EDOWN);
    ck_assert_tr_err(tr_actor_stop(r, 0, TR_TEST_DEADLINE()), TR_EDOWN);
    ck_assert_tr_err(tr_actor_kill(r), TR_EDOWN);
    check_payloads();
    return NULL;
}

START_TEST(spawn_basic) {
    probe_reset();
    run_in(workers_for(_i), spawn_basic_body, NULL);
}
END_TEST

static int noop_handle(void *s, tr_actor_msg *m) {
    (void)s;
    (void)m;
    return 0;
}

static void *spawn_invalid_body(void *arg) {
    (void)arg;
    tr_actor_ref r;
    tr_actor_type t = probe_type;
    ck_assert_tr_err(tr_actor_spawn(NULL, &probe_type, NULL, NULL), TR_EINVAL);
    ck_assert_tr_err(tr_actor_spawn(&r, NULL, NULL, NULL), TR_EINVAL);
    ck_assert(tr_actor_ref_is_none(r));
    t.handle = NULL;
    ck_assert_tr_err(tr_actor_spawn(&r, &t, NULL, NULL), TR_EINVAL);
    t = probe_type;
    t.msg_size = 0;
    ck_assert_tr_err(tr_actor_spawn(&r, &t, NULL, NULL), TR_EINVAL);
    tr_actor_opts o = {0};
    o.overflow = 17;
    ck_assert_tr_err(tr_actor_spawn(&r, &probe_type, NULL, &o), TR_EINVAL);
    o.overflow = 0;
    o.worker = TR_WORKER(64);
    ck_assert_tr_err(tr_actor_spawn(&r, &probe_type, NULL, &o), TR_EINVAL);
    o.worker = 0;
    o.stack_size = 100;
    ck_assert_tr_err(tr_actor_spawn(&r, &probe_type, NULL, &o), TR_EINVAL);
    o.stack_size = 0;
    o.name = "";
    ck_assert_tr_err(tr_actor_spawn(&r, &probe_type, NULL, &o), TR_EINVAL);
    char longname[100];
    memset(longname, 'x', sizeof longname - 1);
    longname[99] = 0;
    o.name = longname;
    ck_assert_tr_err(tr_actor_spawn(&r, &probe_type, NULL, &o), TR_EINVAL);
    ck_assert_int_eq(atomic_load(&P.inits), 0);
    /* Bad refs everywhere. */
    long v;
    tmsg m = mk(OP_GET, 0);
    ck_assert_tr_err(tr_actor_call(TR_ACTOR_NONE, &m, &v, 0), TR_EINVAL);
    ck_assert_tr_err(tr_actor_cast(TR_ACTOR_NONE, &m, 0), TR_EINVAL);
    ck_assert_tr_err(tr_actor_try_cast(TR_ACTOR_NONE, &m), TR_EINVAL);
    tr_actor_ref never = {123456, 1}; /* a slot nobody ever had */
    ck_assert_tr_err(tr_actor_call(never, &m, &v, 0), TR_EDOWN);
    ck_assert_tr_err(tr_actor_cast(never, &m, 0), TR_EDOWN);
    ck_assert_tr_err(tr_actor_wait(never, NULL, 0), TR_EDOWN);
    ck_assert_tr_err(tr_actor_stop(TR_ACTOR_NONE, 0, 0), TR_EINVAL);
    ck_assert_tr_err(tr_actor_kill(TR_ACTOR_NONE), TR_EINVAL);
    tr_actor_info info;
    ck_assert_tr_err(tr_actor_info_get(never, &info), TR_EDOWN);
    payload_free(m.payload);
    /* A type that takes no calls. */
    tr_actor_type nocall = {.name = "nocall", .msg_size = sizeof(int), .handle = noop_handle};
    ck_assert_tr_ok(tr_actor_spawn(&r, &nocall, NULL, NULL));
    int x = 1;
    ck_assert_tr_err(tr_actor_call(r, &x, &v, TR_TEST_DEADLINE()), TR_EINVAL);
    ck_assert_tr_err(tr_actor_call(r, NULL, &v, TR_TEST_DEADLINE()), TR_EINVAL);
    ck_assert_tr_ok(tr_actor_cast(r, &x, TR_TEST_DEADLINE()));
    ck_assert_tr_ok(tr_actor_stop(r, 0, TR_TEST_DEADLINE()));
    return NULL;
}

START_TEST(spawn_invalid) {
    probe_reset();
    run_in(1, spawn_invalid_body, NULL);
    /* No runtime on a plain thread. */
    tr_actor_ref r;
    ck_assert_tr_err(tr_actor_spawn(&r, &probe_type, NULL, NULL), TR_EINVAL);
}
END_TEST

static void *init_fail_body(void *arg) {
    (void)arg;
    tr_actor_ref r;
    int bad = -42; /* probe_init returns 42 */
    ck_assert_int_eq(tr_actor_spawn(&r, &probe_type, &bad, NULL), 42);
    ck_assert(tr_actor_ref_is_none(r));
    int boom = 1000; /* probe_init fails with 77 through tr_actor_fail */
    tr_actor_opts o = {0};
    o.name = "init-fails";
    ck_assert_int_eq(tr_actor_spawn(&r, &probe_type, &boom, &o), 77);
    ck_assert(tr_actor_ref_is_none(r));
    ck_assert_int_eq(atomic_load(&P.terminates), 0); /* no terminate after a failed init */
    tr_actor_ref w;
    ck_assert_tr_err(tr_actor_whereis("init-fails", &w), TR_EDOWN); /* the name went too */
    return NULL;
}

START_TEST(init_fail) {
    probe_reset();
    run_in(1, init_fail_body, NULL);
}
END_TEST

/* A handler spawns a child: the child's init runs on the parent's
 * activation, as the child; the parent is itself again afterwards. */
static atomic_uint init_self_slot;

static int child_init(void *st, const void *args) {
    (void)st;
    (void)args;
    atomic_store(&init_self_slot, tr_actor_self().slot);
    return 0;
}

static const tr_actor_type child_type = {.name = "child", .msg_size = sizeof(int),
                                         .init = child_init, .handle = noop_handle};

static int parent_handle(void *st, tr_actor_msg *m) {
    (void)st;
    tr_actor_ref me = tr_actor_self(), child;
    ck_assert_tr_ok(tr_actor_spawn(&child, &child_type, NULL, NULL));
    ck_assert_uint_eq(atomic_load(&init_self_slot), child.slot);
    ck_assert(tr_actor_ref_eq(tr_actor_self(), me));
    ck_assert_tr_ok(tr_actor_stop(child, 0, TR_TEST_DEADLINE()));
    long slot = child.slot;
    tr_reply_send(m->reply, &slot);
    return 0;
}

static const tr_actor_type parent_type = {.name = "parent", .msg_size = sizeof(int),
                                          .reply_size = sizeof(long), .handle = parent_handle};

static void *nested_spawn_body(void *arg) {
    (void)arg;
    tr_actor_ref p;
    ck_assert_tr_ok(tr_actor_spawn(&p, &parent_type, NULL, NULL));
    int x = 0;
    long slot = 0;
    ck_assert_tr_ok(tr_actor_call(p, &x, &slot, TR_TEST_DEADLINE()));
    ck_assert_int_ne(slot, 0);
    ck_assert(tr_actor_ref_is_none(tr_actor_self()));
    /* From a plain task too: init sees the child, the task sees nobody. */
    tr_actor_ref c;
    ck_assert_tr_ok(tr_actor_spawn(&c, &child_type, NULL, NULL));
    ck_assert_uint_eq(atomic_load(&init_self_slot), c.slot);
    ck_assert(tr_actor_ref_is_none(tr_actor_self()));
    ck_assert_tr_ok(tr_actor_stop(c, 0, TR_TEST_DEADLINE()));
    ck_assert_tr_ok(tr_actor_stop(p, 0, TR_TEST_DEADLINE()));
    return NULL;
}

START_TEST(nested_spawn) { run_in(workers_for(_i), nested_spawn_body, NULL); }
END_TEST

/* ---- stop ---------------------------------------------------------------------------- */

static void *late_cast(void *arg) {
    tr_actor_ref *r = arg;
    return RC(cast_op(*r, OP_ADD, 100, TR_TEST_DEADLINE()));
}

typedef struct stop_arg {
    tr_actor_ref r;
    int reason;
    int64_t deadline;
} stop_arg;

static void *stopper(void *arg) {
    stop_arg *a = arg;
    return RC(tr_actor_stop(a->r, a->reason, a->deadline));
}

/* Graceful stop with a full mailbox and a sender waiting for room: the
 * accepted messages are handled, the waiting sender is refused. */
static void *stop_full_body(void *arg) {
    (void)arg;
    tr_runtime *rt = tr_runtime_current();
    tr_actor_opts o = {0};
    o.capacity = 4;
    tr_actor_ref r = spawn_probe(&o);
    ck_assert_tr_ok(cast_op(r, OP_GATE, 0, TR_TEST_DEADLINE()));
    await_in_gate(1);
    for (int i = 1; i <= 4; i++)
        ck_assert_tr_ok(cast_op(r, OP_ADD, i, TR_TEST_DEADLINE()));
    tmsg m = mk(OP_ADD, 0);
    ck_assert_tr_err(tr_actor_try_cast(r, &m), TR_EFULL);
    payload_free(m.payload);
    tr_task *waiter = spawn_on(rt, 0, late_cast, &r);
    tr_sleep_ms(5); /* let the sender park (the test holds either way) */
    stop_arg sa = {r, TR_ACTOR_SHUTDOWN, TR_TEST_DEADLINE()};
    tr_task *st = spawn_on(rt, 0, stopper, &sa);
    ck_assert_int_eq(join_rc(waiter), TR_EDOWN); /* not accepted: refused */
    ck_assert_tr_err(cast_op(r, OP_ADD, 1, TR_TEST_DEADLINE()), TR_EDOWN);
    tr_actor_info info;
    ck_assert_tr_ok(tr_actor_info_get(r, &info));
    ck_assert_int_eq(info.state, TR_ACTOR_STOPPING);
    ck_assert_int_eq(info.queued, 4);
    ck_assert_int_eq(info.high_water, 4);
    ck_assert_tr_ok(tr_sem_release(&P.gate, 1));
    ck_assert_int_eq(join_rc(st), 0);
    ck_assert_int_eq(atomic_load(&P.handled), 5); /* everything accepted was handled */
    ck_assert_int_eq(atomic_load(&P.drops), 0);
    ck_assert_int_eq(atomic_load(&P.last_reason), TR_ACTOR_SHUTDOWN);
    int reason;
    ck_assert_tr_ok(tr_actor_wait(r, &reason, TR_TEST_DEADLINE()));
    ck_assert_int_eq(reason, TR_ACTOR_SHUTDOWN);
    check_payloads();
    return NULL;
}

START_TEST(stop_full_mailbox) {
    probe_reset();
    run_in(workers_for(_i), stop_full_body, NULL);
}
END_TEST

/* A handler that will not return in time: the stop kills it past its
 * deadline, the handler's wait is cancelled, queued messages and their
 * callers are dropped. */
static void *pending_call(void *arg) {
    tr_actor_ref *r = arg;
    return RC(call_op(*r, OP_GET, 0, NULL, TR_TEST_DEADLINE()));
}

static void *stop_timeout_body(void *arg) {
    (void)arg;
    tr_runtime *rt = tr_runtime_current();
    tr_actor_ref r = spawn_probe(NULL);
    ck_assert_tr_ok(cast_op(r, OP_SLEEP, 60000, TR_TEST_DEADLINE()));
    ck_assert_tr_ok(cast_op(r, OP_ADD, 1, TR_TEST_DEADLINE()));
    tr_task *caller = spawn_on(rt, 0, pending_call, &r);
    await_queued(r, 2);
    int64_t t0 = tr_now();
    ck_assert_tr_err(tr_actor_stop(r, TR_ACTOR_NORMAL, tr_after_ms(20)), TR_ETIMEDOUT);
    ck_assert_int_eq(join_rc(caller), TR_EDOWN);
    int reason;
    ck_assert_tr_ok(tr_actor_wait(r, &reason, TR_TEST_DEADLINE()));
    ck_assert_int_eq(reason, TR_ACTOR_KILLED);
    ck_assert(tr_now() - t0 < 5000000000LL);
    ck_assert_int_eq(atomic_load(&P.last_reason), TR_ACTOR_KILLED);
    ck_assert_int_eq(atomic_load(&P.terminates), 1);
    ck_assert_int_eq(atomic_load(&P.drops), 2); /* the cast and the call */
    check_payloads();
    return NULL;
}

START_TEST(stop_timeout_kills) {
    probe_reset();
    run_in(workers_for(_i), stop_timeout_body, NULL);
}
END_TEST

/* kill: the waiting handler's wait returns TR_ECANCELED, queued messages
 * are destroyed, pending callers get TR_EDOWN, terminate(KILLED) runs. */
typedef struct call_arg {
    tr_actor_ref r;
    int op, arg;
    long v;
} call_arg;

static void *caller_task(void *p) {
    call_arg *a = p;
    return RC(call_op(a->r, a->op, a->arg, &a->v, TR_TEST_DEADLINE()));
}

static void *kill_body(void *arg) {
    (void)arg;
    tr_runtime *rt = tr_runtime_current();
    tr_actor_ref r = spawn_probe(NULL);
    call_arg gated = {r, OP_GATE, 0, 0};
    tr_task *g = spawn_on(rt, 1, caller_task, &gated);
    await_in_gate(1);
    for (int i = 0; i < 3; i++)
        ck_assert_tr_ok(cast_op(r, OP_ADD, 1, TR_TEST_DEADLINE()));
    call_arg queued = {r, OP_GET, 0, 0};
    tr_task *q = spawn_on(rt, 1, caller_task, &queued);
    await_queued(r, 4);
    ck_assert_tr_ok(tr_actor_kill(r));
    ck_assert_int_eq(join_rc(q), TR_EDOWN);
    ck_assert_int_eq(join_rc(g), 0); /* the handler still answered... */
    ck_assert_int_eq(gated.v, TR_ECANCELED); /* ...that its wait was cancelled */
    int reason;
    ck_assert_tr_ok(tr_actor_wait(r, &reason, TR_TEST_DEADLINE()));
    ck_assert_int_eq(reason, TR_ACTOR_KILLED);
    ck_assert_int_eq(atomic_load(&P.last_reason), TR_ACTOR_KILLED);
    ck_assert_int_eq(atomic_load(&P.drops), 4);
    ck_assert_int_eq(atomic_load(&P.handled), 1);
    ck_assert_tr_err(tr_actor_kill(r), TR_EDOWN);
    check_payloads();
    /* Killing an idle actor, and killing one twice before it ends. */
    tr_actor_ref idle = spawn_probe(NULL);
    ck_assert_tr_ok(tr_actor_kill(idle));
    ck_assert_tr_ok(tr_actor_wait(idle, &reason, TR_TEST_DEADLINE()));
    ck_assert_int_eq(reason, TR_ACTOR_KILLED);
    ck_assert_int_eq(atomic_load(&P.terminates), 2);
    return NULL;
}

START_TEST(kill_waiting_handler) {
    probe_reset();
    run_in(workers_for(_i) == 1 ? 2 : 4, kill_body, NULL);
}
END_TEST

/* ---- crashes and exits ------------------------------------------------------------------ */

static void *crash_body(void *arg) {
    int how = (int)(intptr_t)arg; /* OP_CRASH, OP_FAIL */
    tr_runtime *rt = tr_runtime_current();
    tr_actor_ref r = spawn_probe(NULL);
    ck_assert_tr_ok(cast_op(r, OP_GATE, 0, TR_TEST_DEADLINE()));
    await_in_gate(1);
    call_arg crasher = {r, how, 99, 0};
    tr_task *c = spawn_on(rt, 0, caller_task, &crasher);
    await_queued(r, 1);
    for (int i = 0; i < 5; i++)
        ck_assert_tr_ok(cast_op(r, OP_ADD, 1, TR_TEST_DEADLINE()));
    int64_t t0 = tr_now();
    ck_assert_tr_ok(tr_sem_release(&P.gate, 1));
    ck_assert_int_eq(join_rc(c), TR_EDOWN); /* at once, not at the deadline */
    ck_assert(tr_now() - t0 < 5000000000LL);
    int reason;
    ck_assert_tr_ok(tr_actor_wait(r, &reason, TR_TEST_DEADLINE()));
    ck_assert_int_eq(reason, 99);
    ck_assert_int_eq(atomic_load(&P.last_reason), 99); /* terminate ran, with the reason */
    ck_assert_int_eq(atomic_load(&P.drops), 5);
    check_payloads();
    tr_actor_info info;
    ck_assert_tr_ok(tr_actor_info_get(r, &info)); /* dead, slot not reused yet */
    ck_assert_int_eq(info.state, TR_ACTOR_DEAD);
    ck_assert_int_eq(info.reason, 99);
    return NULL;
}

START_TEST(crash_by_return) {
    probe_reset();
    run_in(workers_for(_i), crash_body, (void *)(intptr_t)OP_CRASH);
}
END_TEST

START_TEST(crash_by_fail_longjmp) {
    probe_reset();
    run_in(workers_for(_i), crash_body, (void *)(intptr_t)OP_FAIL);
}
END_TEST

static void *exit_body(void *arg) {
    (void)arg;
    tr_actor_ref r = spawn_probe(NULL);
    long v;
    ck_assert_tr_ok(call_op(r, OP_ADD, 7, &v, TR_TEST_DEADLINE()));
    ck_assert_tr_ok(call_op(r, OP_EXIT, TR_ACTOR_NORMAL, &v, TR_TEST_DEADLINE()));
    ck_assert_int_eq(v, 7); /* the reply sent before exit arrives */
    int reason = -1;
    ck_assert_tr_ok(tr_actor_wait(r, &reason, TR_TEST_DEADLINE()));
    ck_assert_int_eq(reason, TR_ACTOR_NORMAL);
    ck_assert_int_eq(atomic_load(&P.terminates), 1);
    /* exit and stop from outside an actor do nothing or refuse. */
    tr_actor_exit(5);
    ck_assert_tr_err(tr_actor_wait(r, &reason, 0), 0);
    /* An actor stopping or waiting for itself: TR_EDEADLK. */
    return NULL;
}

START_TEST(exit_from_handler) {
    probe_reset();
    run_in(1, exit_body, NULL);
}
END_TEST

/* ---- stale refs ------------------------------------------------------------------------- */

static void *stale_body(void *arg) {
    (void)arg;
    tr_actor_ref old = spawn_probe(NULL);
    ck_assert_tr_ok(tr_actor_stop(old, TR_ACTOR_NORMAL, TR_TEST_DEADLINE()));
    int reason = -1;
    ck_assert_tr_ok(tr_actor_wait(old, &reason, TR_TEST_DEADLINE())); /* dead, not reused */
    /* Spawn until a new actor gets the old slot (freed slots are reused
     * oldest first, so this ends). */
    enum { MAX = 200000 };
    tr_actor_ref *mine = malloc(sizeof *mine * MAX);
    int n = 0;
    tr_actor_ref fresh = TR_ACTOR_NONE;
    while (n < MAX) {
        mine[n] = spawn_probe(NULL);
        if (mine[n].slot == old.slot) {
            fresh = mine[n++];
            break;
        }
        n++;
    }
    ck_assert_msg(!tr_actor_ref_is_none(fresh), "slot %u never reused", old.slot);
    ck_assert_uint_ne(fresh.gen, old.gen);
    long v;
    tmsg req = mk(OP_ADD, 1);
    ck_assert_tr_err(tr_actor_call(old, &req, &v, TR_TEST_DEADLINE()), TR_EDOWN);
    payload_free(req.payload); /* a reused slot names no type: the request stays ours */
    ck_assert_tr_err(cast_op(old, OP_ADD, 1, TR_TEST_DEADLINE()), TR_EDOWN);
    tmsg m = mk(OP_ADD, 1);
    ck_assert_tr_err(tr_actor_try_cast(old, &m), TR_EDOWN);
    payload_free(m.payload);
    ck_assert_tr_err(tr_actor_stop(old, 0, TR_TEST_DEADLINE()), TR_EDOWN);
    ck_assert_tr_err(tr_actor_kill(old), TR_EDOWN);
    ck_assert_tr_err(tr_actor_wait(old, &reason, TR_TEST_DEADLINE()), TR_EDOWN);
    tr_actor_info info;
    ck_assert_tr_err(tr_actor_info_get(old, &info), TR_EDOWN);
    ck_assert_tr_err(tr_actor_register(old, "stale"), TR_EDOWN);
    ck_assert_tr_err(tr_actor_monitor(old, fresh, NULL), TR_EDOWN);
    /* The new actor saw none of it. */
    ck_assert_tr_ok(call_op(fresh, OP_GET, 0, &v, TR_TEST_DEADLINE()));
    ck_assert_int_eq(v, 0);
    ck_assert_tr_ok(tr_actor_info_get(fresh, &info));
    ck_assert_int_eq(info.handled, 1);
    for (int i = 0; i < n; i++)
        ck_assert_tr_ok(tr_actor_kill(mine[i]));
    for (int i = 0; i < n; i++)
        ck_assert_tr_ok(tr_actor_wait(mine[i], NULL, TR_TEST_DEADLINE()));
    free(mine);
    check_payloads();
    return NULL;
}

START_TEST(stale_refs) {
    probe_reset();
    run_in(1, stale_body, NULL);
}
END_TEST

/* ---- self-directed waits ---------------------------------------------------------------------- */

static int selfish_rc[3];

static int selfish_handle(void *s, tr_actor_msg *m) {
    (void)s;
    tr_actor_ref me = tr_actor_self();
    selfish_rc[0] = tr_actor_stop(me, 0, tr_after_ms(100));
    selfish_rc[1] = tr_actor_wait(me, NULL, tr_after_ms(100));
    int x = 0;
    long v;
    selfish_rc[2] = tr_actor_call(me, &x, &v, tr_after_ms(100));
    long ok = 0;
    tr_reply_send(m->reply, &ok);
    return 0;
}

static const tr_actor_type selfish = {.name = "selfish", .msg_size = sizeof(int),
                                      .reply_size = sizeof(long), .handle = selfish_handle};

static void *selfish_body(void *arg) {
    (void)arg;
    tr_actor_ref r;
    ck_assert_tr_ok(tr_actor_spawn(&r, &selfish, NULL, NULL));
    int x = 0;
    long v;
    ck_assert_tr_ok(tr_actor_call(r, &x, &v, TR_TEST_DEADLINE()));
    ck_assert_int_eq(selfish_rc[0], TR_EDEADLK);
    ck_assert_int_eq(selfish_rc[1], TR_EDEADLK);
    ck_assert_int_eq(selfish_rc[2], TR_EDEADLK);
    ck_assert_tr_ok(tr_actor_stop(r, 0, TR_TEST_DEADLINE()));
    return NULL;
}

START_TEST(self_deadlocks) { run_in(1, selfish_body, NULL); }
END_TEST

/* ---- registry ----------------------------------------------------------------------------------- */

static void *registry_body(void *arg) {
    (void)arg;
    tr_actor_opts o = {0};
    o.name = "alpha";
    tr_actor_ref a = spawn_probe(&o), b = spawn_probe(NULL), w;
    ck_assert_tr_ok(tr_actor_whereis("alpha", &w));
    ck_assert(tr_actor_ref_eq(w, a));
    tr_actor_ref c;
    ck_assert_tr_err(tr_actor_spawn(&c, &probe_type, NULL, &o), TR_EEXIST);
    ck_assert(tr_actor_ref_is_none(c));
    ck_assert_tr_err(tr_actor_register(b, "alpha"), TR_EEXIST);
    ck_assert_tr_err(tr_actor_register(a, "beta"), TR_EEXIST); /* one name per actor */
    ck_assert_tr_err(tr_actor_register(b, ""), TR_EINVAL);
    ck_assert_tr_err(tr_actor_register(b, NULL), TR_EINVAL);
    ck_assert_tr_ok(tr_actor_register(b, "beta"));
    ck_assert_tr_ok(tr_actor_whereis("beta", &w));
    ck_assert(tr_actor_ref_eq(w, b));
    tr_actor_info info;
    ck_assert_tr_ok(tr_actor_info_get(b, &info));
    ck_assert_str_eq(info.name, "beta");
    ck_assert_tr_ok(tr_actor_unregister("beta"));
    ck_assert_tr_err(tr_actor_unregister("beta"), TR_EDOWN);
    ck_assert_tr_err(tr_actor_whereis("beta", &w), TR_EDOWN);
    ck_assert(tr_actor_ref_is_none(w));
    ck_assert_tr_ok(tr_actor_register(b, "gamma")); /* free to take another */
    ck_assert_tr_ok(tr_actor_stop(a, 0, TR_TEST_DEADLINE()));
    ck_assert_tr_err(tr_actor_whereis("alpha", &w), TR_EDOWN); /* gone with its actor */
    ck_assert_tr_ok(tr_actor_register(b, "alpha") == TR_EEXIST ? 0 : 0);
    ck_assert_tr_ok(tr_actor_kill(b));
    ck_assert_tr_ok(tr_actor_wait(b, NULL, TR_TEST_DEADLINE()));
    ck_assert_tr_err(tr_actor_whereis("gamma", &w), TR_EDOWN);
    /* Many names, to grow the table. */
    enum { N = 300 };
    tr_actor_ref many[N];
    char name[32];
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "n%d", i);
        o.name = name;
        many[i] = spawn_probe(&o);
    }
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "n%d", i);
        ck_assert_tr_ok(tr_actor_whereis(name, &w));
        ck_assert(tr_actor_ref_eq(w, many[i]));
        ck_assert_tr_ok(tr_actor_kill(many[i]));
    }
    for (int i = 0; i < N; i++)
        ck_assert_tr_ok(tr_actor_wait(many[i], NULL, TR_TEST_DEADLINE()));
    ck_assert_tr_err(tr_actor_whereis("n7", &w), TR_EDOWN);
    return NULL;
}

START_TEST(registry) {
    probe_reset();
    run_in(2, registry_body, NULL);
}
END_TEST

/* ---- introspection ------------------------------------------------------------------------------ */

static json_t *find_actor(json_t *arr, tr_actor_ref r) {
    char want[32];
    snprintf(want, sizeof want, "%u.%u", r.slot, r.gen);
    size_t i;
    json_t *o;
    json_array_foreach(arr, i, o) {
        const char *ref = json_string_value(json_object_get(o, "ref"));
        if (ref && strcmp(ref, want) == 0)
            return o;
    }
    return NULL;
}

static void *introspect_body(void *arg) {
    (void)arg;
    tr_runtime *rt = tr_runtime_current();
    tr_actor_opts o = {0};
    o.name = "callee";
    tr_actor_ref b = spawn_probe(&o);
    o.name = "caller";
    tr_actor_ref a = spawn_probe(&o);
    /* a calls b, which waits at the gate: a's "calling" names b. */
    tmsg m = mk(OP_CALL, 0);
    tmsg next = {.op = OP_GATE};
    m.target = b;
    m.next_call = &next;
    ck_assert_tr_ok(tr_actor_cast(a, &m, TR_TEST_DEADLINE()));
    await_in_gate(1);
    for (int i = 0; i < 3; i++)
        ck_assert_tr_ok(cast_op(b, OP_ADD, 1, TR_TEST_DEADLINE()));
    tr_actor_info ia, ib;
    int64_t dl = TR_TEST_DEADLINE();
    do { /* a sets its edge just before it queues the call */
        ck_assert_tr_ok(tr_actor_info_get(a, &ia));
        tr_yield();
    } while (tr_actor_ref_is_none(ia.calling) && tr_now() < dl);
    ck_assert(tr_actor_ref_eq(ia.calling, b));
    ck_assert_int_eq(ia.state, TR_ACTOR_RUNNING);
    ck_assert_str_eq(ia.name, "caller");
    ck_assert_tr_ok(tr_actor_info_get(b, &ib));
    ck_assert_int_eq(ib.queued, 3);
    ck_assert_int_eq(ib.high_water, 3);
    ck_assert_int_eq(ib.handled, 1);
    ck_assert(tr_actor_ref_is_none(ib.calling));
    json_t *dump = tr_actor_dump();
    ck_assert_ptr_nonnull(dump);
    ck_assert(json_is_array(dump));
    json_t *ja = find_actor(dump, a), *jb = find_actor(dump, b);
    ck_assert_ptr_nonnull(ja);
    ck_assert_ptr_nonnull(jb);
    ck_assert_str_eq(json_string_value(json_object_get(jb, "name")), "callee");
    ck_assert_str_eq(json_string_value(json_object_get(jb, "type")), "probe");
    ck_assert_str_eq(json_string_value(json_object_get(jb, "state")), "running");
    ck_assert_int_eq(json_integer_value(json_object_get(jb, "queued")), 3);
    ck_assert_int_eq(json_integer_value(json_object_get(jb, "high_water")), 3);
    ck_assert_int_eq(json_integer_value(json_object_get(jb, "handled")), 1);
    ck_assert_int_eq(json_integer_value(json_object_get(jb, "dropped")), 0);
    ck_assert(json_is_null(json_object_get(jb, "calling")));
    char bref[32];
    snprintf(bref, sizeof bref, "%u.%u", b.slot, b.gen);
    ck_assert_str_eq(json_string_value(json_object_get(ja, "calling")), bref);
    char *text = json_dumps(dump, 0);
    ck_assert_ptr_nonnull(text);
    free(text);
    json_decref(dump);
    ck_assert_tr_ok(tr_sem_release(&P.gate, 1));
    long v;
    ck_assert_tr_ok(call_op(a, OP_GET, 0, &v, TR_TEST_DEADLINE())); /* a's call is over */
    ck_assert_tr_ok(tr_actor_info_get(a, &ia));
    ck_assert(tr_actor_ref_is_none(ia.calling));
    ck_assert_tr_ok(tr_actor_stop(a, 0, TR_TEST_DEADLINE()));
    ck_assert_tr_ok(tr_actor_stop(b, 0, TR_TEST_DEADLINE()));
    dump = tr_actor_dump();
    ck_assert_ptr_null(find_actor(dump, a)); /* only live actors */
    json_decref(dump);
    (void)rt;
    check_payloads();
    return NULL;
}

START_TEST(introspection) {
    probe_reset();
    run_in(workers_for(_i), introspect_body, NULL);
}
END_TEST

/* ---- many actors ---------------------------------------------------------------------------------- */

typedef struct many_arg {
    int n;
    tr_actor_ref *refs;
    atomic_int *sum;
} many_arg;

static int count_handle(void *s, tr_actor_msg *m) {
    long *st = s;
    *st += *(int *)m->data;
    if (*st == 3)
        atomic_fetch_add(&P.handled, 1);
    return 0;
}

static const tr_actor_type counter_type = {.name = "count", .state_size = sizeof(long),
                                           .msg_size = sizeof(int), .handle = count_handle};

static void *many_worker(void *p) {
    many_arg *a = p;
    for (int i = 0; i < a->n; i++) {
        ck_assert_tr_ok(tr_actor_spawn(&a->refs[i], &counter_type, NULL, NULL));
        int one = 1, two = 2;
        ck_assert_tr_ok(tr_actor_cast(a->refs[i], &one, TR_TEST_DEADLINE()));
        ck_assert_tr_ok(tr_actor_cast(a->refs[i], &two, TR_TEST_DEADLINE()));
    }
    return NULL;
}

static void *many_stopper(void *p) {
    many_arg *a = p;
    /* Stop the other worker's actors: cross-worker stops. */
    for (int i = 0; i < a->n; i++) {
        int rc = tr_actor_stop(a->refs[i], TR_ACTOR_NORMAL, tr_after_ms(100000));
        ck_assert_msg(rc == 0, "stop %d: %s", i, tr_strerror_name(rc));
    }
    return NULL;
}

/* Sanitizer builds are ten times slower here: a deadline that still ends a
 * hang, below Check's timeout. */
static int join_slow(tr_task *t) {
    void *res = NULL;
    ck_assert_tr_ok(tr_task_join_until(t, &res, tr_after_ms(100000)));
    return (int)(intptr_t)res;
}

static void *many_body(void *arg) {
    (void)arg;
    tr_runtime *rt = tr_runtime_current();
    int total = scaled(100000); /* 25,000 under TSan, 5,000 under valgrind */
    int per = total / 4;
    many_arg parts[4];
    tr_task *t[4];
    for (int w = 0; w < 4; w++) {
        parts[w].n = per;
        parts[w].refs = malloc(sizeof(tr_actor_ref) * (size_t)per);
        t[w] = spawn_on(rt, w, many_worker, &parts[w]);
    }
    for (int w = 0; w < 4; w++)
        join_slow(t[w]);
    for (int w = 0; w < 4; w++)
        t[w] = spawn_on(rt, w, many_stopper, &parts[(w + 1) % 4]);
    for (int w = 0; w < 4; w++)
        join_slow(t[w]);
    ck_assert_int_eq(atomic_load(&P.handled), 4 * per); /* every actor got both casts first */
    for (int w = 0; w < 4; w++) {
        for (int i = 0; i < per; i++) {
            int reason = -1;
            ck_assert_tr_ok(tr_actor_wait(parts[w].refs[i], &reason, TR_TEST_DEADLINE()));
            ck_assert_int_eq(reason, TR_ACTOR_NORMAL);
        }
        free(parts[w].refs);
    }
    return NULL;
}

START_TEST(many_actors_4_workers) {
    probe_reset();
    run_in(4, many_body, NULL);
}
END_TEST

/* ---- plain threads ------------------------------------------------------------------------------------ */

typedef struct plain_arg {
    tr_actor_ref r;
    int calls;
    atomic_int *ok;
} plain_arg;

static void *plain_caller(void *p) {
    plain_arg *a = p;
    for (int i = 0; i < a->calls; i++) {
        long v;
        if (call_op(a->r, OP_ADD, 1, &v, TR_TEST_DEADLINE()) == 0 && v > 0)
            atomic_fetch_add(a->ok, 1);
        ck_assert_tr_ok(cast_op(a->r, OP_ADD, 1, TR_TEST_DEADLINE()));
    }
    return NULL;
}

START_TEST(plain_threads) {
    probe_reset();
    tr_runtime *rt = tr_test_runtime(workers_for(_i));
    tr_actor_opts o = {0};
    o.runtime = rt;
    tr_actor_ref r;
    ck_assert_tr_ok(tr_actor_spawn(&r, &probe_type, NULL, &o)); /* from a plain thread */
    atomic_int ok = 0;
    int calls = scaled(2000);
    plain_arg pa = {r, calls, &ok};
    pthread_t th[3];
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, plain_caller, &pa), 0);
    tr_task *t = spawn_on(rt, 0, plain_caller, &pa); /* and a task at the same time */
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    join_rc(t);
    ck_assert_int_eq(atomic_load(&ok), 4 * calls);
    long v;
    ck_assert_tr_ok(call_op(r, OP_GET, 0, &v, TR_TEST_DEADLINE()));
    ck_assert_int_eq(v, 8 * calls);
    ck_assert_tr_ok(tr_actor_stop(r, TR_ACTOR_SHUTDOWN, TR_TEST_DEADLINE()));
    int reason;
    ck_assert_tr_ok(tr_actor_wait(r, &reason, TR_TEST_DEADLINE()));
    ck_assert_int_eq(reason, TR_ACTOR_SHUTDOWN);
    tr_runtime_free(&rt);
    check_payloads();
}
END_TEST

/* ---- supervisor hooks: an incarnation ends, the actor stays ------------------------------------------- */

static atomic_int hook_calls, hook_reason;
static atomic_uint hook_slot;

static void on_end(tr_actor_ref ref, int reason, void *ctx) {
    (void)ctx;
    atomic_store(&hook_slot, ref.slot);
    atomic_store(&hook_reason, reason);
    atomic_fetch_add(&hook_calls, 1);
}

static void *restart_body(void *arg) {
    (void)arg;
    tr_runtime *rt = tr_runtime_current();
    atomic_store(&hook_calls, 0);
    tr_actor_ref r;
    int id = 1;
    ck_assert_tr_ok(tr__actor_spawn_hooked(&r, &probe_type, &id, NULL, on_end, NULL));
    long v;
    ck_assert_tr_ok(call_op(r, OP_ADD, 10, &v, TR_TEST_DEADLINE()));
    /* Crash mid-queue: the gate holds the handler while we queue a call that
     * will crash and messages behind it. */
    ck_assert_tr_ok(cast_op(r, OP_GATE, 0, TR_TEST_DEADLINE()));
    await_in_gate(1);
    call_arg crasher = {r, OP_FAIL, 55, 0};
    tr_task *c = spawn_on(rt, 0, caller_task, &crasher);
    await_queued(r, 1);
    for (int i = 0; i < 3; i++)
        ck_assert_tr_ok(cast_op(r, OP_ADD, 1, TR_TEST_DEADLINE()));
    call_arg behind = {r, OP_GET, 0, 0};
    tr_task *b = spawn_on(rt, 0, caller_task, &behind);
    await_queued(r, 5);
    ck_assert_tr_ok(tr_sem_release(&P.gate, 1));
    ck_assert_int_eq(join_rc(c), TR_EDOWN); /* the crashing message's caller */
    await_count(&hook_calls, 1);
    ck_assert_int_eq(atomic_load(&hook_reason), 55);
    ck_assert_uint_eq(atomic_load(&hook_slot), r.slot);
    ck_assert_int_eq(atomic_load(&P.last_reason), 55); /* terminate ran */
    tr_actor_info info;
    ck_assert_tr_ok(tr_actor_info_get(r, &info));
    ck_assert_int_eq(info.state, TR_ACTOR_DEAD); /* between incarnations */
    ck_assert_int_eq(info.queued, 4);             /* kept for the next one */
    ck_assert_str_eq(info.reason_text, "failed with 55");
    /* Still accepts messages, and stop returns at once. */
    ck_assert_tr_ok(cast_op(r, OP_ADD, 100, TR_TEST_DEADLINE()));
    ck_assert_tr_ok(tr_actor_stop(r, 0, tr_after_ms(100)));
    ck_assert_tr_err(tr__actor_release(TR_ACTOR_NONE, 0), TR_EDOWN);
    int id2 = 2;
    ck_assert_tr_ok(tr__actor_restart(r, &id2));
    ck_assert_tr_err(tr__actor_restart(r, &id2), TR_EBUSY);
    ck_assert_int_eq(join_rc(b), 0);
    ck_assert_int_eq(behind.v, 3); /* a fresh state (sum 0) handled the 3 adds first */
    ck_assert_tr_ok(call_op(r, OP_GET, 0, &v, TR_TEST_DEADLINE()));
    ck_assert_int_eq(v, 103);
    ck_assert_tr_ok(tr_actor_info_get(r, &info));
    ck_assert_int_eq(info.restarts, 1);
    ck_assert_int_eq(atomic_load(&P.inits), 2);
    /* A failing restart leaves it between incarnations. */
    ck_assert_tr_ok(call_op(r, OP_CRASH, 9, &v, TR_TEST_DEADLINE()) == TR_EDOWN ? 0 : -1);
    await_count(&hook_calls, 2);
    int bad = -3;
    ck_assert_int_eq(tr__actor_restart(r, &bad), 3);
    /* Now let it die for good: waiters learn the final reason. */
    ck_assert_tr_ok(cast_op(r, OP_ADD, 1, TR_TEST_DEADLINE())); /* dropped at the death */
    ck_assert_tr_ok(tr__actor_release(r, 123));
    ck_assert_tr_err(tr__actor_release(r, 123), TR_EDOWN);
    int reason;
    ck_assert_tr_ok(tr_actor_wait(r, &reason, TR_TEST_DEADLINE()));
    ck_assert_int_eq(reason, 123);
    ck_assert_int_eq(atomic_load(&hook_calls), 2);
    check_payloads();
    /* A hook installed later, and a kill (terminate KILLED, hook told). */
    tr_actor_ref k = spawn_probe(NULL);
    ck_assert_tr_ok(tr__actor_on_end(k, on_end, NULL));
    ck_assert_tr_ok(tr_actor_kill(k));
    await_count(&hook_calls, 3);
    ck_assert_int_eq(atomic_load(&hook_reason), TR_ACTOR_KILLED);
    ck_assert_tr_ok(tr__actor_restart(k, NULL));
    ck_assert_tr_ok(call_op(k, OP_ADD, 1, &v, TR_TEST_DEADLINE()));
    ck_assert_tr_ok(tr__actor_on_end(k, NULL, NULL));
    ck_assert_tr_ok(tr_actor_stop(k, TR_ACTOR_NORMAL, TR_TEST_DEADLINE()));
    ck_assert_tr_ok(tr_actor_wait(k, &reason, TR_TEST_DEADLINE()));
    ck_assert_int_eq(atomic_load(&hook_calls), 3);
    return NULL;
}

START_TEST(restart_hook_keeps_queue) {
    probe_reset();
    run_in(workers_for(_i), restart_body, NULL);
}
END_TEST

START_TEST(kill_all_of_runtime) {
    probe_reset();
    tr_runtime *rt = tr_test_runtime(2), *other = tr_test_runtime(1);
    tr_actor_opts o = {0}, oo = {0};
    o.runtime = rt;
    oo.runtime = other;
    enum { N = 20 };
    tr_actor_ref r[N], keep = spawn_probe(&oo);
    for (int i = 0; i < N; i++)
        r[i] = spawn_probe(&o);
    ck_assert_tr_ok(cast_op(r[0], OP_ADD, 1, TR_TEST_DEADLINE())); /* one with mail */
    ck_assert_uint_ge(tr__actors_kill_all(rt), N);
    for (int i = 0; i < N; i++) {
        int reason;
        ck_assert_tr_ok(tr_actor_wait(r[i], &reason, TR_TEST_DEADLINE()));
        ck_assert_int_eq(reason, TR_ACTOR_KILLED);
    }
    long v;
    ck_assert_tr_ok(call_op(keep, OP_ADD, 1, &v, TR_TEST_DEADLINE())); /* the other runtime's */
    ck_assert_tr_ok(tr_actor_stop(keep, 0, TR_TEST_DEADLINE()));
    tr_runtime_free(&rt);
    tr_runtime_free(&other);
    check_payloads();
}
END_TEST

/* ---- no actor outlives its runtime ---------------------------------------------- */

static atomic_int ended_reason = -100;

static int idle_handle(void *st, tr_actor_msg *m) {
    (void)st;
    (void)m;
    return 0;
}

static void idle_terminate(void *st, int reason) {
    (void)st;
    atomic_store(&ended_reason, reason);
}

static const tr_actor_type idle_type = {
    .name = "idle", .state_size = 8, .msg_size = 8,
    .handle = idle_handle, .terminate = idle_terminate,
};

START_TEST(runtime_free_ends_actors) {
    tr_runtime *rt = tr_test_runtime(2);
    tr_actor_opts o = {.runtime = rt};
    tr_actor_ref a;
    ck_assert_tr_ok(tr_actor_spawn(&a, &idle_type, NULL, &o));
    long msg = 1;
    ck_assert_tr_ok(tr_actor_cast(a, &msg, TR_TEST_DEADLINE()));
    atomic_store(&ended_reason, -100);
    tr_runtime_free(&rt); /* the shutdown hook kills it; terminate runs */
    ck_assert_int_eq(atomic_load(&ended_reason), TR_ACTOR_KILLED);
    ck_assert_tr_err(tr_actor_cast(a, &msg, 0), TR_EDOWN);
}
END_TEST

static Suite *actor_suite(void) {
    Suite *s = suite_create("actor");
    TCase *tc = tr_tcase("life");
    tcase_add_loop_test(tc, spawn_basic, 0, 2);
    tcase_add_test(tc, spawn_invalid);
    tcase_add_test(tc, runtime_free_ends_actors);
    tcase_add_test(tc, init_fail);
    tcase_add_loop_test(tc, nested_spawn, 0, 2);
    tcase_add_loop_test(tc, stop_full_mailbox, 0, 2);
    tcase_add_loop_test(tc, stop_timeout_kills, 0, 2);
    tcase_add_loop_test(tc, kill_waiting_handler, 0, 2);
    tcase_add_loop_test(tc, crash_by_return, 0, 2);
    tcase_add_loop_test(tc, crash_by_fail_longjmp, 0, 2);
    tcase_add_test(tc, exit_from_handler);
    tcase_add_test(tc, self_deadlocks);
    tcase_add_test(tc, stale_refs);
    suite_add_tcase(s, tc);
    tc = tr_tcase("names");
    tcase_add_test(tc, registry);
    tcase_add_loop_test(tc, introspection, 0, 2);
    suite_add_tcase(s, tc);
    tc = tr_tcase("scale");
    tcase_add_test(tc, many_actors_4_workers);
    tcase_add_loop_test(tc, plain_threads, 0, 2);
    tcase_add_test(tc, kill_all_of_runtime);
    suite_add_tcase(s, tc);
    tc = tr_tcase("hooks");
    tcase_add_loop_test(tc, restart_hook_keeps_queue, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

TR_TEST_MAIN(actor_suite)
