/* actor_testutil.h — the probe actor the actor suites share.
 *
 * One actor type that does what a message tells it (add, answer, wait at a
 * gate, crash, fail, exit, call another actor, keep its reply...), and
 * counts everything that happens to it in one global struct, so that a
 * test can check "every message was handled or destroyed exactly once".
 * Each message may carry a heap payload: the handler or drop_msg frees it,
 * so a message lost or destroyed twice shows up in the counters, in ASan
 * and in valgrind.
 */
#ifndef TR_ACTOR_TESTUTIL_H
#define TR_ACTOR_TESTUTIL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>


#include "testutil.h"
#include "tr_actor.h"
#include "tr_semaphore.h"

enum {
    OP_ADD = 1,   /* sum += arg; reply sum */
    OP_GET,       /* reply sum */
    OP_GATE,      /* wait at P.gate, reply the wait's result, return arg */
    OP_CRASH,     /* return arg (a reason) */
    OP_FAIL,      /* tr_actor_fail(arg) */
    OP_EXIT,      /* reply, tr_actor_exit(arg) */
    OP_NOREPLY,   /* return 0 without touching the reply */
    OP_DROPREPLY, /* tr_reply_drop */
    OP_CALL,      /* call target with OP_GET (or next_call); reply its error or value */
    OP_KEEP,      /* keep the reply in P.kept, reply later from the test */
    OP_SELF,      /* reply tr_actor_self().slot */
    OP_SLEEP,     /* sleep arg ms (cancellable), reply the sleep's result */
    OP_FORWARD,   /* keep the reply and cast it to target, which answers it (OP_ANSWER) */
    OP_ANSWER     /* answer the reply carried in `reply` with sum */
};

typedef struct tmsg {
    int op;
    int arg;
    int *payload;           /* malloc'd; freed by the handler or by drop_msg */
    tr_actor_ref target;    /* OP_CALL, OP_FORWARD */
    struct tmsg *next_call; /* OP_CALL: what to send target (NULL: OP_GET) */
    tr_reply *reply;        /* OP_ANSWER */
} tmsg;

typedef struct pstate {
    long sum;
    int id;
} pstate;

typedef struct probe_ctx {
    atomic_int inits, terminates, handled, drops, payloads, freed;
    atomic_int downs, exits, in_gate, gate_rc;
    atomic_int last_reason, last_down_reason, last_exit_reason;
    atomic_uint last_down_slot, last_exit_slot;
    atomic_int order[64];
    atomic_int norder;
    atomic_int trap_result;
    atomic_int sys_before_user; /* a DOWN handled while user messages were queued */
    _Atomic(tr_reply *) kept;
    tr_sem gate;
} probe_ctx;

static probe_ctx P;

static inline void probe_reset(void) {
    tr_sem_destroy(&P.gate);
    memset(&P, 0, sizeof P);
    tr_sem_init(&P.gate, 0);
}

static inline int *payload_new(void) {
    int *p = malloc(sizeof *p);
    *p = 1;
    atomic_fetch_add(&P.payloads, 1);
    return p;
}

static inline void payload_free(int *p) {
    if (!p)
        return;
    ck_assert_int_eq(*p, 1); /* a double free shows here or in the sanitizer */
    *p = 0;
    free(p);
    atomic_fetch_add(&P.freed, 1);
}

static inline tmsg mk(int op, int arg) {
    tmsg m;
    memset(&m, 0, sizeof m);
    m.op = op;
    m.arg = arg;
    m.payload = payload_new();
    return m;
}

static void probe_drop(void *v, void *ctx) {
    (void)ctx;
    tmsg *m = v;
    payload_free(m->payload);
    atomic_fetch_add(&P.drops, 1);
}

static int probe_init(void *st, const void *args) {
    pstate *s = st;
    atomic_fetch_add(&P.inits, 1);
    ck_assert_int_eq(s->sum, 0); /* zeroed, also on a restart */
    if (!args)
        return 0;
    int a = *(const int *)args;
    if (a < 0)
        return -a;
    if (a == 1000)
        tr_actor_fail(77, "init failed with %d", a);
    s->id = a;
    return 0;
}

static void probe_terminate(void *st, int reason) {
    (void)st;
    atomic_store(&P.last_reason, reason);
    atomic_fetch_add(&P.terminates, 1);
}

static inline void reply_long(tr_actor_msg *m, long v) {
    if (m->reply)
        ck_assert_tr_ok(tr_reply_send(m->reply, &v));
}

static int probe_handle(void *st, tr_actor_msg *m) {
    pstate *s = st;
    tmsg *t = m->data;
    payload_free(t->payload);
    t->payload = NULL;
    int n = atomic_fetch_add(&P.norder, 1);
    if (n < 64)
        atomic_store(&P.order[n], t->arg);
    atomic_fetch_add(&P.handled, 1);
    switch (t->op) {
    case OP_ADD:
        s->sum += t->arg;
        reply_long(m, s->sum);
        return 0;
    case OP_GET:
        reply_long(m, s->sum);
        return 0;
    case OP_GATE: {
        atomic_fetch_add(&P.in_gate, 1);
        int rc = tr_sem_acquire(&P.gate, TR_TEST_DEADLINE());
        atomic_store(&P.gate_rc, rc);
        atomic_fetch_sub(&P.in_gate, 1);
        if (m->reply)
            tr_reply_send(m->reply, &(long){rc}); /* the caller may be gone */
        return t->arg;
    }
    case OP_CRASH:
        return t->arg;
    case OP_FAIL:
        tr_actor_fail(t->arg, "failed with %d", t->arg);
    case OP_EXIT:
        reply_long(m, s->sum);
        tr_actor_exit(t->arg);
        return 0;
    case OP_NOREPLY:
        return 0;
    case OP_DROPREPLY:
        tr_reply_drop(m->reply);
        return 0;
    case OP_CALL: {
        long v = 0;
        tmsg q = t->next_call ? *t->next_call : mk(OP_GET, 0);
        if (t->next_call)
            q.payload = payload_new();
        int rc = tr_actor_call(t->target, &q, &v, TR_TEST_DEADLINE());
        if (rc == TR_EINVAL || rc == TR_ENOMEM)
            payload_free(q.payload);
        reply_long(m, rc ? rc : v); /* a chain of calls answers the innermost value */
        return 0;
    }
    case OP_KEEP:
        atomic_store(&P.kept, tr_reply_keep(m));
        return 0;
    case OP_SELF:
        reply_long(m, tr_actor_self().slot);
        return 0;
    case OP_SLEEP: {
        int rc = tr_sleep_ms(t->arg);
        if (m->reply)
            tr_reply_send(m->reply, &(long){rc});
        return 0;
    }
    case OP_FORWARD: {
        tmsg f;
        memset(&f, 0, sizeof f);
        f.op = OP_ANSWER;
        f.reply = tr_reply_keep(m);
        ck_assert_tr_ok(tr_actor_cast(t->target, &f, TR_TEST_DEADLINE()));
        return 0;
    }
    case OP_ANSWER:
        ck_assert_tr_ok(tr_reply_send(t->reply, &(long){s->sum + 1000}));
        return 0;
    }
    return 0;
}

static void probe_on_down(void *st, tr_actor_ref who, int reason) {
    (void)st;
    atomic_store(&P.last_down_slot, who.slot);
    atomic_store(&P.last_down_reason, reason);
    int n = atomic_fetch_add(&P.norder, 1);
    if (n < 64)
        atomic_store(&P.order[n], -1000); /* marks the DOWN in the handling order */
    atomic_fetch_add(&P.downs, 1);
}

static int probe_on_exit(void *st, tr_actor_ref who, int reason) {
    (void)st;
    atomic_store(&P.last_exit_slot, who.slot);
    atomic_store(&P.last_exit_reason, reason);
    atomic_fetch_add(&P.exits, 1);
    return atomic_load(&P.trap_result);
}

static const tr_actor_type probe_type = {
    .name = "probe",
    .state_size = sizeof(pstate),
    .msg_size = sizeof(tmsg),
    .reply_size = sizeof(long),
    .init = probe_init,
    .handle = probe_handle,
    .terminate = probe_terminate,
    .on_down = probe_on_down,
    .drop_msg = probe_drop,
};

/* The same, trapping exits. */
static const tr_actor_type trap_type = {
    .name = "trap",
    .state_size = sizeof(pstate),
    .msg_size = sizeof(tmsg),
    .reply_size = sizeof(long),
    .init = probe_init,
    .handle = probe_handle,
    .terminate = probe_terminate,
    .on_down = probe_on_down,
    .on_exit = probe_on_exit,
    .drop_msg = probe_drop,
};

static inline tr_actor_ref spawn_probe(const tr_actor_opts *o) {
    tr_actor_ref r;
    ck_assert_tr_ok(tr_actor_spawn(&r, &probe_type, NULL, o));
    ck_assert(!tr_actor_ref_is_none(r));
    return r;
}

/* Casts op/arg with a payload (freed here if the cast fails). */
static inline int cast_op(tr_actor_ref r, int op, int arg, int64_t deadline) {
    tmsg m = mk(op, arg);
    int rc = tr_actor_cast(r, &m, deadline);
    if (rc)
        payload_free(m.payload);
    return rc;
}

/* Calls op/arg; the request is consumed unless TR_EINVAL/ENOMEM. */
static inline int call_op(tr_actor_ref r, int op, int arg, long *out, int64_t deadline) {
    tmsg m = mk(op, arg);
    long v = -1;
    int rc = tr_actor_call(r, &m, &v, deadline);
    if (rc == TR_EINVAL || rc == TR_ENOMEM)
        payload_free(m.payload);
    if (out)
        *out = v;
    return rc;
}

/* Every payload made was freed exactly once (handled or destroyed). */
static inline void check_payloads(void) {
    ck_assert_int_eq(atomic_load(&P.freed), atomic_load(&P.payloads));
}

/* Runs body(arg) as a task of a fresh runtime with `workers` workers. */
static inline void run_in(int workers, tr_task_fn body, void *arg) {
    tr_runtime *rt = tr_test_runtime(workers);
    ck_assert_tr_ok(tr_runtime_block_on(rt, body, arg, NULL));
    tr_runtime_free(&rt);
}

/* Waits until the gate has n handlers inside it. */
static inline void await_in_gate(int n) { await_count(&P.in_gate, n); }

/* Waits until the actor's mailbox holds n messages. */
static inline void await_queued(tr_actor_ref r, size_t n) {
    int64_t dl = TR_TEST_DEADLINE();
    tr_actor_info info;
    for (;;) {
        ck_assert_tr_ok(tr_actor_info_get(r, &info));
        if (info.queued >= n)
            return;
        ck_assert_msg(tr_now() < dl, "queued stuck at %zu of %zu", info.queued, n);
        if (tr_task_self())
            tr_yield();
        else
            sched_yield();
    }
}

#endif
