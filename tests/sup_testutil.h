/* sup_testutil.h — the worker type the supervisor suites share.
 *
 * "wk" does what a message says (answer its id, crash with a reason, wait
 * on its supervisor's shutdown signal, get stuck ignoring cancellation,
 * count) and logs its inits and terminates (id*10+1, id*10+2) into one
 * global log, so a test can assert start and stop order.  Helpers poll
 * for conditions with a deadline instead of sleeping.
 */
#ifndef TR_SUP_TESTUTIL_H
#define TR_SUP_TESTUTIL_H

#include <string.h>

#include "actor_testutil.h"
#include "tr_sup.h"
#include "tr_watch.h"

enum { W_PING = 1, W_CRASH, W_SIGWAIT, W_STUCK, W_COUNT };

typedef struct wmsg {
    int op;
    int arg;
} wmsg;

typedef struct wargs {
    int id;
    int init_fail; /* init returns this (0: succeeds) */
    int term_ms;   /* terminate sleeps this long */
} wargs;

typedef struct wst {
    int id, term_ms;
} wst;

typedef struct wk_global {
    atomic_int log[256];
    atomic_int nlog;
    atomic_int inits[16], terms[16], fail_init[16], term_reason[16];
    atomic_int handled, crashed, counted, seed;
    atomic_int in_stuck, cleanup_ran, in_sig, sig_seen;
} wk_global;

static wk_global G;

static const char *const ids[] = {"a", "b", "c", "d", "e", "f"};

static inline void wk_reset(void) { memset(&G, 0, sizeof G); }

static inline void wk_log(int ev) {
    int n = atomic_fetch_add(&G.nlog, 1);
    if (n < 256)
        atomic_store(&G.log[n], ev);
}

static int wk_init(void *st, const void *args) {
    const wargs *a = args;
    wst *s = st;
    s->id = a->id;
    s->term_ms = a->term_ms;
    atomic_fetch_add(&G.inits[a->id], 1);
    wk_log(a->id * 10 + 1);
    int f = atomic_load(&G.fail_init[a->id]);
    if (f > 0) {
        atomic_fetch_sub(&G.fail_init[a->id], 1);
        return 42;
    }
    return a->init_fail;
}

static void wk_terminate(void *st, int reason) {
    wst *s = st;
    if (s->term_ms)
        tr_sleep_ms(s->term_ms);
    wk_log(s->id * 10 + 2);
    atomic_store(&G.term_reason[s->id], reason);
    atomic_fetch_add(&G.terms[s->id], 1);
}

static void wk_cleanup(void *arg) { atomic_fetch_add((atomic_int *)arg, 1); }

static int wk_handle(void *st, tr_actor_msg *m) {
    wst *s = st;
    wmsg *w = m->data;
    long v = s->id;
    switch (w->op) {
    case W_PING:
        break;
    case W_CRASH: /* ends with arg (0: a normal exit) */
        if (w->arg == 0)
            tr_actor_exit(0);
        return w->arg;
    case W_SIGWAIT: {
        tr_watch_rx *rx = tr_sup_signal();
        ck_assert_ptr_nonnull(rx);
        ck_assert(!tr_sup_stopping());
        tr_clause c;
        ck_assert_tr_ok(tr_watch_changed_clause(&c, rx));
        atomic_store(&G.in_sig, 1);
        int rc = tr_select(&c, 1, tr_after_ms(8000), 0); /* the "long wait" */
        if (rc == 0 && tr_sup_stopping())
            atomic_store(&G.sig_seen, 1);
        break;
    }
    case W_STUCK: { /* ignores cancellation; bounded so a missing kill fails, not hangs */
        tr_cleanup c;
        tr_cleanup_push(&c, wk_cleanup, &G.cleanup_ran);
        atomic_store(&G.in_stuck, 1);
        int64_t end = tr_after_ms(8000);
        while (tr_now() < end)
            if (tr_sleep_ms(5) == TR_ECANCELED)
                sched_yield(); /* a cancelled task's waits return at once */
        tr_cleanup_pop(&c, false);
        break;
    }
    case W_COUNT:
        if (w->arg % 97 == atomic_load(&G.seed)) {
            atomic_fetch_add(&G.crashed, 1);
            atomic_fetch_add(&G.counted, 1);
            return 99;
        }
        atomic_fetch_add(&G.handled, 1);
        atomic_fetch_add(&G.counted, 1);
        break;
    }
    if (m->reply)
        tr_reply_send(m->reply, &v);
    return 0;
}

static const tr_actor_type wk_type = {
    .name = "wk",
    .state_size = sizeof(wst),
    .msg_size = sizeof(wmsg),
    .reply_size = sizeof(long),
    .init = wk_init,
    .handle = wk_handle,
    .terminate = wk_terminate,
};

static inline tr_child_spec wk_child(const char *id, const wargs *a, int restart) {
    tr_child_spec c;
    memset(&c, 0, sizeof c);
    c.id = id;
    c.type = &wk_type;
    c.args = a;
    c.args_size = sizeof *a;
    c.restart = restart;
    return c;
}

static inline int wk_cast(tr_actor_ref r, int op, int arg) {
    wmsg m = {op, arg};
    return tr_actor_cast(r, &m, TR_TEST_DEADLINE());
}

static inline long wk_ping(tr_actor_ref r) {
    wmsg m = {W_PING, 0};
    long v = -1;
    ck_assert_tr_ok(tr_actor_call(r, &m, &v, TR_TEST_DEADLINE()));
    return v;
}

static inline void pause_a_bit(void) {
    if (tr_task_self())
        tr_yield();
    else
        sched_yield();
}

static inline void wait_count(atomic_int *c, int n) {
    int64_t dl = TR_TEST_DEADLINE();
    while (atomic_load(c) < n) {
        ck_assert_msg(tr_now() < dl, "count stuck at %d of %d", atomic_load(c), n);
        pause_a_bit();
    }
}

static inline void wait_for_log(int n) { wait_count(&G.nlog, n); }

static inline void check_log(const int *want, int n) {
    ck_assert_int_eq(atomic_load(&G.nlog), n);
    for (int i = 0; i < n; i++)
        ck_assert_msg(atomic_load(&G.log[i]) == want[i], "log[%d] = %d, expected %d", i,
                      atomic_load(&G.log[i]), want[i]);
}

/* The refs of the first n children of sup (which must have them). */
static inline void child_refs(tr_actor_ref sup, tr_actor_ref *out, size_t n) {
    tr_sup_child_info info[16];
    size_t cnt;
    ck_assert_tr_ok(tr_sup_which_children(sup, info, 16, &cnt, TR_TEST_DEADLINE()));
    ck_assert_uint_ge(cnt, n);
    for (size_t i = 0; i < n; i++)
        out[i] = info[i].ref;
}

/* Waits until sup's first child runs; its ref in *out. */
static inline void wait_child_running(tr_actor_ref sup, tr_actor_ref *out) {
    int64_t dl = TR_TEST_DEADLINE();
    for (;;) {
        tr_sup_child_info info[4];
        size_t cnt = 0;
        int rc = tr_sup_which_children(sup, info, 4, &cnt, TR_TEST_DEADLINE());
        if (rc == 0 && cnt > 0 && info[0].state == TR_CHILD_RUNNING) {
            *out = info[0].ref;
            return;
        }
        ck_assert_msg(tr_now() < dl, "no running child (rc %d)", rc);
        pause_a_bit();
    }
}

#endif
