/* test_semaphore.c — tr_sem: Tokio's sync_semaphore.rs and semaphore_batch.rs
 * scenarios, then what a threaded C port needs: select clauses, partial
 * grants given back by waiters that time out or are cancelled, and tasks on
 * 4 workers plus plain threads hammering one semaphore with a bound check.
 *
 * Tokio's tests poll a future and ask whether it is woken; here a waiter is
 * a task (or thread) and "pending" is read off the semaphore's queue: a
 * waiter that has not been handed its permits cannot return, so "still
 * queued" is a definite answer, not a race.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "testutil.h"
#include "tr_semaphore.h"

/* ---- helpers ------------------------------------------------------------------- */

static int queued(tr_sem *s) {
    int n = 0;
    tr_spin_lock(&s->lock);
    for (tr_wait *e = s->waiters.head; e; e = e->next)
        n++;
    tr_spin_unlock(&s->lock);
    return n;
}

static void await_queued(tr_sem *s, int n) {
    int64_t dl = TR_TEST_DEADLINE();
    while (queued(s) != n) {
        ck_assert_msg(tr_now() < dl, "queue stuck at %d, want %d", queued(s), n);
        if (tr_task_self())
            tr_yield();
        else
            sched_yield();
    }
}

typedef struct acq {
    tr_sem *s;
    size_t n;
    int64_t deadline; /* 0: the test deadline */
    bool release;     /* give the permits back before returning */
    atomic_int done;
    int rc;
} acq;

static void *acq_body(void *arg) {
    acq *a = arg;
    int64_t dl = a->deadline ? a->deadline : TR_TEST_DEADLINE();
    a->rc = tr_sem_acquire_many(a->s, a->n, dl);
    if (a->rc == 0 && a->release)
        tr_sem_release(a->s, a->n);
    atomic_store(&a->done, 1);
    return RC(a->rc);
}

/* Spawns an acquirer task and waits until the queue holds `expect`. */
static tr_task *spawn_waiter(tr_runtime *rt, acq *a, tr_sem *s, size_t n, int expect) {
    a->s = s;
    a->n = n;
    atomic_store(&a->done, 0);
    tr_task *t = spawn_on(rt, 0, acq_body, a);
    await_queued(s, expect);
    return t;
}

/* ---- arguments ------------------------------------------------------------------ */

START_TEST(test_invalid) {
    tr_sem s;
    ck_assert_tr_err(tr_sem_init(NULL, 1), TR_EINVAL);
    ck_assert_tr_err(tr_sem_init(&s, TR_SEM_MAX_PERMITS + 1), TR_EINVAL);
    ck_assert_tr_ok(tr_sem_init(&s, TR_SEM_MAX_PERMITS)); /* max_permits_doesnt_panic */
    ck_assert_tr_ok(tr_sem_init(&s, 0));                  /* no_permits */
    ck_assert_tr_err(tr_sem_acquire(NULL, 0), TR_EINVAL);
    ck_assert_tr_err(tr_sem_acquire_many(&s, TR_SEM_MAX_PERMITS + 1, 0), TR_EINVAL);
    ck_assert_tr_err(tr_sem_try_acquire(NULL), TR_EINVAL);
    ck_assert_tr_err(tr_sem_try_acquire_many(&s, TR_SEM_MAX_PERMITS + 1), TR_EINVAL);
    ck_assert_tr_err(tr_sem_release(NULL, 1), TR_EINVAL);
    ck_assert_tr_err(tr_sem_add_permits(NULL, 1), TR_EINVAL);
    ck_assert_tr_err(tr_sem_close(NULL), TR_EINVAL);
    ck_assert_tr_err(tr_sem_destroy(NULL), TR_EINVAL);
    ck_assert_int_eq(tr_sem_forget_permits(NULL, 3), 0);
    ck_assert_int_eq(tr_sem_available_permits(NULL), 0);
    ck_assert(!tr_sem_is_closed(NULL));
    ck_assert_int_eq(tr_sem_available_permits(&s), 0); /* nothing happened */

    tr_clause c[1];
    ck_assert_tr_err(tr_sem_acquire_clause(NULL, &s, 1), TR_EINVAL);
    ck_assert_tr_err(tr_sem_acquire_clause(&c[0], NULL, 1), TR_EINVAL);
    ck_assert_tr_err(tr_select(c, 1, 0, 0), TR_EINVAL);
    ck_assert_tr_err(tr_sem_acquire_clause(&c[0], &s, TR_SEM_MAX_PERMITS + 1), TR_EINVAL);
    ck_assert_tr_err(tr_select(c, 1, 0, 0), TR_EINVAL);

    tr_sem *h = NULL;
    ck_assert_tr_err(tr_sem_new(NULL, 1), TR_EINVAL);
    ck_assert_tr_err(tr_sem_new(&h, TR_SEM_MAX_PERMITS + 1), TR_EINVAL);
    ck_assert_tr_ok(tr_sem_new(&h, 3));
    ck_assert_int_eq(tr_sem_available_permits(h), 3);
    ck_assert_tr_ok(tr_sem_free(&h));
    ck_assert_ptr_null(h);
    ck_assert_tr_err(tr_sem_free(&h), TR_EINVAL); /* double free is caught */
    ck_assert_tr_err(tr_sem_free(NULL), TR_EINVAL);
    ck_assert_tr_ok(tr_sem_destroy(&s));
}
END_TEST

START_TEST(test_static_init) {
    static tr_sem s = TR_SEM_INIT(4);
    ck_assert_int_eq(tr_sem_available_permits(&s), 4);
    ck_assert_tr_ok(tr_sem_try_acquire_many(&s, 4));
    ck_assert_tr_err(tr_sem_try_acquire(&s), TR_EBUSY);
    ck_assert_tr_ok(tr_sem_release(&s, 4));
}
END_TEST

/* ---- sync_semaphore.rs ------------------------------------------------------------ */

START_TEST(test_try_acquire) {
    tr_sem s;
    tr_sem_init(&s, 1);
    ck_assert_tr_ok(tr_sem_try_acquire(&s));
    ck_assert_tr_err(tr_sem_try_acquire(&s), TR_EBUSY);
    ck_assert_tr_ok(tr_sem_release(&s, 1));
    ck_assert_tr_ok(tr_sem_try_acquire(&s));
}
END_TEST

START_TEST(test_acquire_waits) { /* acquire, add_permits */
    tr_runtime *rt = tr_test_runtime(2);
    tr_sem s;
    tr_sem_init(&s, _i);
    if (_i)
        ck_assert_tr_ok(tr_sem_try_acquire(&s));
    acq a = {.release = true};
    tr_task *t = spawn_waiter(rt, &a, &s, 1, 1);
    if (_i)
        ck_assert_tr_ok(tr_sem_release(&s, 1)); /* drop(p1) */
    else
        ck_assert_tr_ok(tr_sem_add_permits(&s, 1));
    ck_assert_tr_ok(join_rc(t));
    ck_assert_int_eq(tr_sem_available_permits(&s), 1);
    tr_runtime_free(&rt);
}
END_TEST

START_TEST(test_add_forget_open_closed) {
    for (size_t size = 0; size < 4; size++)
        for (size_t k = 0; k < 4; k++) {
            tr_sem s;
            tr_sem_init(&s, size);
            if (_i)
                tr_sem_close(&s);
            ck_assert_tr_ok(tr_sem_add_permits(&s, k));
            ck_assert_int_eq(tr_sem_available_permits(&s), size + k);
            ck_assert_int_eq(tr_sem_is_closed(&s), _i);

            tr_sem_init(&s, size);
            if (_i)
                tr_sem_close(&s);
            size_t expect = size > k ? size - k : 0;
            ck_assert_int_eq(tr_sem_forget_permits(&s, k), size - expect);
            ck_assert_int_eq(tr_sem_available_permits(&s), expect);
            ck_assert_int_eq(tr_sem_is_closed(&s), _i);
        }
}
END_TEST

START_TEST(test_forget_permit) {
    tr_sem s;
    tr_sem_init(&s, 1);
    tr_sem_permit p;
    ck_assert_tr_ok(tr_sem_permit_try_acquire(&p, &s, 1));
    ck_assert_int_eq(tr_sem_available_permits(&s), 0);
    ck_assert_tr_ok(tr_sem_permit_forget(&p));
    ck_assert_tr_ok(tr_sem_permit_release(&p)); /* nothing left to give back */
    ck_assert_int_eq(tr_sem_available_permits(&s), 0);
    ck_assert_tr_err(tr_sem_try_acquire(&s), TR_EBUSY);
}
END_TEST

START_TEST(test_merge_split) {
    tr_sem s, other;
    tr_sem_init(&s, 3);
    tr_sem_init(&other, 3);
    tr_sem_permit p1, p2, p3, bad;
    ck_assert_tr_ok(tr_sem_permit_try_acquire(&p1, &s, 1));
    ck_assert_int_eq(tr_sem_available_permits(&s), 2);
    ck_assert_tr_ok(tr_sem_permit_try_acquire(&p2, &s, 2));
    ck_assert_int_eq(tr_sem_available_permits(&s), 0);
    ck_assert_tr_ok(tr_sem_permit_merge(&p1, &p2));
    ck_assert_int_eq(p1.n, 3);
    ck_assert_int_eq(p2.n, 0);
    ck_assert_tr_ok(tr_sem_permit_try_acquire(&bad, &other, 1));
    ck_assert_tr_err(tr_sem_permit_merge(&p1, &bad), TR_EINVAL); /* merge_unrelated_permits */
    ck_assert_int_eq(p1.n, 3);
    ck_assert_tr_ok(tr_sem_permit_release(&bad));
    ck_assert_tr_ok(tr_sem_permit_release(&p1));
    ck_assert_int_eq(tr_sem_available_permits(&s), 3);

    /* split */
    tr_sem_init(&s, 5);
    tr_sem_permit q1, q2, q3, q4;
    ck_assert_tr_ok(tr_sem_permit_try_acquire(&q1, &s, 3));
    ck_assert_int_eq(tr_sem_available_permits(&s), 2);
    ck_assert_tr_ok(tr_sem_permit_split(&q1, 1, &q2));
    ck_assert_int_eq(q1.n, 2);
    ck_assert_int_eq(q2.n, 1);
    ck_assert_tr_ok(tr_sem_permit_split(&q1, 0, &q3));
    ck_assert_int_eq(q3.n, 0);
    ck_assert_tr_ok(tr_sem_permit_release(&q1));
    ck_assert_int_eq(tr_sem_available_permits(&s), 4);
    ck_assert_tr_ok(tr_sem_permit_split(&q2, 1, &q4));
    ck_assert_int_eq(q2.n, 0);
    ck_assert_tr_err(tr_sem_permit_split(&q2, 1, &p3), TR_EINVAL);
    ck_assert_tr_ok(tr_sem_permit_release(&q2));
    ck_assert_tr_ok(tr_sem_permit_release(&q3));
    ck_assert_int_eq(tr_sem_available_permits(&s), 4);
    ck_assert_tr_ok(tr_sem_permit_release(&q4));
    ck_assert_int_eq(tr_sem_available_permits(&s), 5);
    ck_assert_tr_err(tr_sem_permit_release(NULL), TR_EINVAL);
    ck_assert_tr_err(tr_sem_permit_try_acquire(NULL, &s, 1), TR_EINVAL);
}
END_TEST

#define STRESS_TASKS 1000

START_TEST(test_stress) {
    tr_runtime *rt = tr_test_runtime(4);
    tr_sem s;
    tr_sem_init(&s, 5);
    static acq a[STRESS_TASKS];
    tr_task *t[STRESS_TASKS];
    for (int i = 0; i < STRESS_TASKS; i++) {
        a[i] = (acq){.s = &s, .n = 1, .release = true};
        t[i] = spawn_on(rt, i, acq_body, &a[i]);
    }
    for (int i = 0; i < STRESS_TASKS; i++)
        ck_assert_tr_ok(join_rc(t[i]));
    for (int i = 0; i < 5; i++)
        ck_assert_tr_ok(tr_sem_try_acquire(&s));
    ck_assert_tr_err(tr_sem_try_acquire(&s), TR_EBUSY);
    tr_runtime_free(&rt);
}
END_TEST

START_TEST(test_max_permits) {
    tr_sem s;
    tr_sem_init(&s, 0);
    ck_assert_tr_ok(tr_sem_add_permits(&s, TR_SEM_MAX_PERMITS));
    ck_assert_int_eq(tr_sem_available_permits(&s), TR_SEM_MAX_PERMITS);

    tr_sem_init(&s, 1);
    ck_assert_tr_err(tr_sem_add_permits(&s, TR_SEM_MAX_PERMITS), TR_EINVAL);
    ck_assert_int_eq(tr_sem_available_permits(&s), 1); /* no side effect */

    tr_sem_init(&s, TR_SEM_MAX_PERMITS - 1);
    ck_assert_tr_ok(tr_sem_add_permits(&s, 1));
    ck_assert_tr_err(tr_sem_add_permits(&s, 1), TR_EINVAL);
    ck_assert_int_eq(tr_sem_available_permits(&s), TR_SEM_MAX_PERMITS);
}
END_TEST

/* blocking_acquire*: the same calls block a plain thread. */
START_TEST(test_plain_thread) {
    tr_sem s;
    tr_sem_init(&s, 1);
    ck_assert_tr_ok(tr_sem_acquire(&s, TR_TEST_DEADLINE()));
    ck_assert_int_eq(tr_sem_available_permits(&s), 0);
    ck_assert_tr_ok(tr_sem_release(&s, 1));
    ck_assert_int_eq(tr_sem_available_permits(&s), 1);

    tr_sem_init(&s, 5);
    ck_assert_tr_ok(tr_sem_acquire_many(&s, 3, TR_TEST_DEADLINE()));
    ck_assert_int_eq(tr_sem_available_permits(&s), 2);
    ck_assert_tr_ok(tr_sem_release(&s, 3));
    ck_assert_int_eq(tr_sem_available_permits(&s), 5);

    /* blocking_acquire_waits_for_permit: a thread waits, a thread adds */
    tr_sem_init(&s, 0);
    acq a = {.s = &s, .n = 1};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, acq_body, &a), 0);
    await_queued(&s, 1);
    ck_assert_tr_ok(tr_sem_add_permits(&s, 1));
    pthread_join(th, NULL);
    ck_assert_tr_ok(a.rc);
    ck_assert_int_eq(tr_sem_available_permits(&s), 0);

    /* blocking_acquire_closed */
    tr_sem_init(&s, 1);
    tr_sem_close(&s);
    ck_assert_tr_err(tr_sem_acquire(&s, TR_TEST_DEADLINE()), TR_ECLOSED);
    ck_assert_tr_err(tr_sem_acquire_many(&s, 2, TR_TEST_DEADLINE()), TR_ECLOSED);

    /* a deadline: a thread times out and holds nothing */
    tr_sem_init(&s, 0);
    int64_t dl = tr_after_ms(20);
    ck_assert_tr_err(tr_sem_acquire(&s, dl), TR_ETIMEDOUT);
    ck_assert_int_ge(tr_now(), dl);
    ck_assert_int_eq(queued(&s), 0);
    ck_assert_tr_err(tr_sem_acquire(&s, 0), TR_ETIMEDOUT); /* past: no wait */
}
END_TEST

/* ---- semaphore_batch.rs ------------------------------------------------------------ */

START_TEST(test_acquire_available) {
    tr_sem s;
    tr_sem_init(&s, 100);
    ck_assert_tr_ok(tr_sem_acquire(&s, 0)); /* free permits are taken even past the deadline */
    ck_assert_int_eq(tr_sem_available_permits(&s), 99);
    ck_assert_tr_ok(tr_sem_acquire_many(&s, 5, TR_TEST_DEADLINE()));
    ck_assert_int_eq(tr_sem_available_permits(&s), 94);
    ck_assert_tr_ok(tr_sem_try_acquire_many(&s, 5));
    ck_assert_int_eq(tr_sem_available_permits(&s), 89);
    ck_assert_tr_ok(tr_sem_try_acquire(&s));
    ck_assert_int_eq(tr_sem_available_permits(&s), 88);
}
END_TEST

START_TEST(test_acquire_one_unavailable) {
    tr_runtime *rt = tr_test_runtime(1);
    tr_sem s;
    tr_sem_init(&s, 1);
    ck_assert_tr_ok(tr_sem_acquire(&s, TR_TEST_DEADLINE()));
    ck_assert_int_eq(tr_sem_available_permits(&s), 0);
    acq a = {0};
    tr_task *t = spawn_waiter(rt, &a, &s, 1, 1);
    ck_assert_int_eq(tr_sem_available_permits(&s), 0);
    ck_assert_tr_ok(tr_sem_release(&s, 1));
    ck_assert_int_eq(tr_sem_available_permits(&s), 0); /* handed over, not pooled */
    ck_assert_tr_ok(join_rc(t));
    ck_assert_int_eq(tr_sem_available_permits(&s), 0);
    ck_assert_tr_ok(tr_sem_release(&s, 1));
    ck_assert_int_eq(tr_sem_available_permits(&s), 1);
    tr_runtime_free(&rt);
}
END_TEST

/* The partial-assignment FIFO: a big request at the head soaks up what is
 * freed, and a smaller one behind it is not served first. */
START_TEST(test_acquire_many_unavailable) {
    tr_runtime *rt = tr_test_runtime(2);
    tr_sem s;
    tr_sem_init(&s, 5);
    ck_assert_tr_ok(tr_sem_try_acquire(&s));
    ck_assert_int_eq(tr_sem_available_permits(&s), 4);
    acq a2 = {0}, a3 = {0};
    tr_task *t2 = spawn_waiter(rt, &a2, &s, 5, 1);
    ck_assert_int_eq(tr_sem_available_permits(&s), 0); /* took the 4 */
    tr_task *t3 = spawn_waiter(rt, &a3, &s, 3, 2);
    ck_assert_int_eq(tr_sem_available_permits(&s), 0);
    ck_assert_tr_err(tr_sem_try_acquire(&s), TR_EBUSY); /* no barging */

    ck_assert_tr_ok(tr_sem_release(&s, 1));
    ck_assert_tr_ok(join_rc(t2));
    ck_assert_int_eq(queued(&s), 1);
    ck_assert(!atomic_load(&a3.done));
    ck_assert_int_eq(tr_sem_available_permits(&s), 0);

    ck_assert_tr_ok(tr_sem_release(&s, 1)); /* assigned to a3, which needs 2 more */
    ck_assert_int_eq(queued(&s), 1);
    ck_assert(!atomic_load(&a3.done));
    ck_assert_int_eq(tr_sem_available_permits(&s), 0);

    ck_assert_tr_ok(tr_sem_release(&s, 2));
    ck_assert_tr_ok(join_rc(t3));
    ck_assert_int_eq(tr_sem_available_permits(&s), 0);
    ck_assert_tr_ok(tr_sem_release(&s, 8));
    ck_assert_int_eq(tr_sem_available_permits(&s), 8);
    tr_runtime_free(&rt);
}
END_TEST

START_TEST(test_try_acquire_many_unavailable) {
    tr_sem s;
    tr_sem_init(&s, 5);
    ck_assert_tr_ok(tr_sem_try_acquire(&s));
    ck_assert_int_eq(tr_sem_available_permits(&s), 4);
    ck_assert_tr_err(tr_sem_try_acquire_many(&s, 5), TR_EBUSY);
    ck_assert_tr_ok(tr_sem_release(&s, 1));
    ck_assert_int_eq(tr_sem_available_permits(&s), 5);
    ck_assert_tr_ok(tr_sem_try_acquire_many(&s, 5));
    ck_assert_tr_ok(tr_sem_release(&s, 1));
    ck_assert_int_eq(tr_sem_available_permits(&s), 1);
    ck_assert_tr_ok(tr_sem_release(&s, 1));
    ck_assert_int_eq(tr_sem_available_permits(&s), 2);
}
END_TEST

START_TEST(test_zero_permits_and_zero_requests) {
    tr_runtime *rt = tr_test_runtime(1);
    tr_sem s;
    tr_sem_init(&s, 0);
    acq a = {0};
    tr_task *t = spawn_waiter(rt, &a, &s, 1, 1); /* poll_acquire_one_zero_permits */
    /* n == 0 succeeds at once, even behind a waiter */
    ck_assert_tr_ok(tr_sem_acquire_many(&s, 0, TR_TEST_DEADLINE()));
    ck_assert_tr_ok(tr_sem_try_acquire_many(&s, 0));
    ck_assert_tr_ok(tr_sem_release(&s, 1));
    ck_assert_tr_ok(join_rc(t));
    tr_sem_close(&s);
    ck_assert_tr_err(tr_sem_acquire_many(&s, 0, TR_TEST_DEADLINE()), TR_ECLOSED);
    ck_assert_tr_err(tr_sem_try_acquire_many(&s, 0), TR_ECLOSED);
    tr_runtime_free(&rt);
}
END_TEST

START_TEST(test_close_prevents_acquire) {
    tr_sem s;
    tr_sem_init(&s, 5);
    ck_assert_tr_ok(tr_sem_close(&s));
    ck_assert_tr_ok(tr_sem_close(&s)); /* idempotent */
    ck_assert(tr_sem_is_closed(&s));
    ck_assert_int_eq(tr_sem_available_permits(&s), 5);
    ck_assert_tr_err(tr_sem_acquire(&s, TR_TEST_DEADLINE()), TR_ECLOSED);
    ck_assert_int_eq(tr_sem_available_permits(&s), 5);
    ck_assert_tr_err(tr_sem_try_acquire(&s), TR_ECLOSED); /* closed comes before "no permits" */
    ck_assert_tr_err(tr_sem_try_acquire_many(&s, 6), TR_ECLOSED);
    ck_assert_int_eq(tr_sem_available_permits(&s), 5);
}
END_TEST

START_TEST(test_close_wakes_waiters) {
    tr_runtime *rt = tr_test_runtime(2);
    tr_sem s;
    tr_sem_init(&s, 2);
    ck_assert_tr_ok(tr_sem_try_acquire(&s));
    ck_assert_tr_ok(tr_sem_try_acquire(&s));
    acq a3 = {0}, a4 = {0}, a5 = {0};
    tr_task *t3 = spawn_waiter(rt, &a3, &s, 1, 1);
    tr_task *t4 = spawn_waiter(rt, &a4, &s, 1, 2);
    ck_assert_tr_ok(tr_sem_release(&s, 1)); /* a3 gets it */
    ck_assert_tr_ok(join_rc(t3));
    tr_task *t5 = spawn_waiter(rt, &a5, &s, 3, 2); /* behind a4; nothing assigned yet */
    ck_assert_tr_ok(tr_sem_close(&s));
    ck_assert_tr_err(join_rc(t4), TR_ECLOSED);
    ck_assert_tr_err(join_rc(t5), TR_ECLOSED);
    ck_assert_int_eq(tr_sem_available_permits(&s), 0);
    ck_assert_tr_ok(tr_sem_release(&s, 1)); /* held permits stay valid */
    ck_assert_int_eq(tr_sem_available_permits(&s), 1);
    ck_assert_tr_err(tr_sem_acquire(&s, TR_TEST_DEADLINE()), TR_ECLOSED);
    ck_assert_tr_ok(tr_sem_release(&s, 1));
    ck_assert_int_eq(tr_sem_available_permits(&s), 2);
    ck_assert_tr_ok(tr_sem_destroy(&s));
    tr_runtime_free(&rt);
}
END_TEST

/* A waiter holding a partial grant when the semaphore closes gives it back. */
START_TEST(test_close_returns_partial) {
    tr_runtime *rt = tr_test_runtime(1);
    tr_sem s;
    tr_sem_init(&s, 3);
    acq a = {0};
    tr_task *t = spawn_waiter(rt, &a, &s, 5, 1);
    ck_assert_int_eq(tr_sem_available_permits(&s), 0);
    ck_assert_tr_ok(tr_sem_release(&s, 1)); /* 4 of 5 assigned */
    ck_assert_tr_ok(tr_sem_close(&s));
    ck_assert_tr_err(join_rc(t), TR_ECLOSED);
    ck_assert_int_eq(tr_sem_available_permits(&s), 4);
    tr_runtime_free(&rt);
}
END_TEST

START_TEST(test_cancel_releases_permits) {
    tr_runtime *rt = tr_test_runtime(2);
    tr_sem s;
    tr_sem_init(&s, 10);
    ck_assert_tr_ok(tr_sem_try_acquire_many(&s, 4));
    ck_assert_int_eq(tr_sem_available_permits(&s), 6);
    acq a = {0};
    tr_task *t = spawn_waiter(rt, &a, &s, 8, 1);
    ck_assert_int_eq(tr_sem_available_permits(&s), 0);
    ck_assert_tr_ok(tr_task_cancel(t));
    ck_assert_tr_err(join_rc(t), TR_ECANCELED);
    ck_assert_int_eq(tr_sem_available_permits(&s), 6);
    ck_assert_tr_ok(tr_sem_try_acquire_many(&s, 6));
    tr_runtime_free(&rt);
}
END_TEST

START_TEST(test_forget_permits_basic) {
    tr_sem s;
    tr_sem_init(&s, 10);
    ck_assert_int_eq(tr_sem_forget_permits(&s, 4), 4);
    ck_assert_int_eq(tr_sem_available_permits(&s), 6);
    ck_assert_int_eq(tr_sem_forget_permits(&s, 10), 6);
    ck_assert_int_eq(tr_sem_available_permits(&s), 0);
    ck_assert_int_eq(tr_sem_forget_permits(&s, 0), 0);
}
END_TEST

START_TEST(test_update_permits_many_times) {
    tr_runtime *rt = tr_test_runtime(1);
    tr_sem s;
    tr_sem_init(&s, 5);
    acq a = {0};
    tr_task *t = spawn_waiter(rt, &a, &s, 7, 1);
    ck_assert_int_eq(tr_sem_forget_permits(&s, 1), 0); /* assigned permits are not the pool's */
    ck_assert_tr_ok(tr_sem_release(&s, 5));
    ck_assert_tr_ok(join_rc(t));
    ck_assert_int_eq(tr_sem_available_permits(&s), 3);
    ck_assert_int_eq(tr_sem_forget_permits(&s, 3), 3);
    ck_assert_int_eq(tr_sem_available_permits(&s), 0);
    tr_runtime_free(&rt);
}
END_TEST

/* The brief's scenario: the big head waiter times out (or is cancelled),
 * and what it had been assigned goes to the smaller waiter behind it. */
START_TEST(test_partial_grant_passes_on) {
    tr_runtime *rt = tr_test_runtime(2);
    tr_sem s;
    tr_sem_init(&s, 4);
    ck_assert_tr_ok(tr_sem_try_acquire_many(&s, 2));
    acq big = {.deadline = _i ? 0 : tr_after_ms(50)}, small = {0};
    tr_task *tb = spawn_waiter(rt, &big, &s, 4, 1); /* takes the 2 free ones */
    ck_assert_int_eq(tr_sem_available_permits(&s), 0);
    tr_task *ts = spawn_waiter(rt, &small, &s, 2, 2);
    ck_assert_tr_err(tr_sem_try_acquire(&s), TR_EBUSY);
    ck_assert(!atomic_load(&small.done));
    if (_i)
        ck_assert_tr_ok(tr_task_cancel(tb));
    ck_assert_tr_err(join_rc(tb), _i ? TR_ECANCELED : TR_ETIMEDOUT);
    ck_assert_tr_ok(join_rc(ts)); /* served by the 2 the big one gave back */
    ck_assert_int_eq(tr_sem_available_permits(&s), 0);
    ck_assert_tr_ok(tr_sem_release(&s, 4));
    ck_assert_int_eq(tr_sem_available_permits(&s), 4);
    ck_assert_int_eq(queued(&s), 0);
    tr_runtime_free(&rt);
}
END_TEST

START_TEST(test_destroy_busy) {
    tr_runtime *rt = tr_test_runtime(1);
    tr_sem s;
    tr_sem_init(&s, 0);
    acq a = {0};
    tr_task *t = spawn_waiter(rt, &a, &s, 1, 1);
    ck_assert_tr_err(tr_sem_destroy(&s), TR_EBUSY);
    ck_assert_tr_ok(tr_sem_release(&s, 1));
    ck_assert_tr_ok(join_rc(t));
    ck_assert_tr_ok(tr_sem_destroy(&s));
    tr_runtime_free(&rt);
}
END_TEST

/* ---- select -------------------------------------------------------------------------- */

static tr_sem sel_a, sel_b;

static void *add_b_later(void *arg) {
    (void)arg;
    /* Once the selector's clauses are armed (both queues hold it)... */
    await_queued(&sel_b, 1);
    ck_assert_int_eq(queued(&sel_a), 1);
    tr_sem_release(&sel_a, 1); /* a partial grant for clause 0 */
    tr_sem_add_permits(&sel_b, 1);
    return NULL;
}

START_TEST(test_select) {
    tr_runtime *rt = tr_test_runtime(2);
    tr_clause c[2];

    /* Both ready: the first wins, the second takes nothing. */
    tr_sem_init(&sel_a, 1);
    tr_sem_init(&sel_b, 1);
    tr_sem_acquire_clause(&c[0], &sel_a, 1);
    tr_sem_acquire_clause(&c[1], &sel_b, 1);
    ck_assert_int_eq(tr_select(c, 2, TR_TEST_DEADLINE(), 0), 0);
    ck_assert_tr_ok(c[0].result);
    ck_assert_int_eq(tr_sem_available_permits(&sel_a), 0);
    ck_assert_int_eq(tr_sem_available_permits(&sel_b), 1);

    /* Clause 0 waits holding a partial grant; clause 1 wins; the grant goes back. */
    tr_sem_init(&sel_a, 1);
    tr_sem_init(&sel_b, 0);
    tr_sem_acquire_clause(&c[0], &sel_a, 3);
    tr_sem_acquire_clause(&c[1], &sel_b, 1);
    tr_task *t = spawn_on(rt, 0, add_b_later, NULL);
    ck_assert_int_eq(tr_select(c, 2, TR_TEST_DEADLINE(), 0), 1);
    ck_assert_tr_ok(c[1].result);
    ck_assert_tr_ok(join_rc(t));
    ck_assert_int_eq(tr_sem_available_permits(&sel_a), 2);
    ck_assert_int_eq(queued(&sel_a), 0);
    ck_assert_int_eq(tr_sem_available_permits(&sel_b), 0); /* we hold it */

    /* Timeout: nothing held, partial grants back. */
    tr_sem_init(&sel_a, 2);
    tr_sem_init(&sel_b, 0);
    tr_sem_acquire_clause(&c[0], &sel_a, 4);
    tr_sem_acquire_clause(&c[1], &sel_b, 1);
    ck_assert_tr_err(tr_select(c, 2, tr_after_ms(20), 0), TR_ETIMEDOUT);
    ck_assert_int_eq(tr_sem_available_permits(&sel_a), 2);
    ck_assert_int_eq(queued(&sel_a), 0);
    ck_assert_int_eq(queued(&sel_b), 0);

    /* A closed semaphore is an outcome. */
    tr_sem_close(&sel_b);
    ck_assert_int_eq(tr_select(c, 2, TR_TEST_DEADLINE(), 0), 1);
    ck_assert_tr_err(c[1].result, TR_ECLOSED);
    ck_assert_int_eq(tr_sem_available_permits(&sel_a), 2);
    tr_runtime_free(&rt);
}
END_TEST

static void *close_b_later(void *arg) {
    (void)arg;
    await_queued(&sel_b, 1);
    tr_sem_close(&sel_b);
    return NULL;
}

/* Inside a task, woken by a close. */
static void *select_in_task(void *arg) {
    (void)arg;
    tr_sem_init(&sel_a, 0);
    tr_sem_init(&sel_b, 0);
    tr_clause c[2];
    tr_sem_acquire_clause(&c[0], &sel_a, 1);
    tr_sem_acquire_clause(&c[1], &sel_b, 1);
    tr_task *t;
    ck_assert_tr_ok(tr_spawn(&t, close_b_later, NULL));
    ck_assert_int_eq(tr_select(c, 2, TR_TEST_DEADLINE(), 0), 1);
    ck_assert_tr_err(c[1].result, TR_ECLOSED);
    ck_assert_tr_ok(tr_task_join(t, NULL));
    ck_assert_int_eq(queued(&sel_a), 0);
    return NULL;
}

START_TEST(test_select_in_task) {
    tr_runtime *rt = tr_test_runtime(1 + _i);
    ck_assert_tr_ok(tr_runtime_block_on(rt, select_in_task, NULL, NULL));
    tr_runtime_free(&rt);
}
END_TEST

/* ---- hammer: 4 workers + plain threads, random deadlines and cancels ---------------- */

#define H_PERMITS 5
#define H_TASKS 12
#define H_THREADS 3
#define H_ITERS 3000

static tr_sem hs;
static atomic_long in_use, max_seen, grants;

static void *hammer(void *arg) {
    unsigned seed = (unsigned)(uintptr_t)arg;
    for (int i = 0; i < H_ITERS; i++) {
        size_t n = 1 + rand_r(&seed) % 3;
        int64_t dl = (rand_r(&seed) % 4 == 0) ? tr_after_us(rand_r(&seed) % 100) : TR_TEST_DEADLINE();
        int rc;
        if (rand_r(&seed) % 8 == 0) {
            tr_clause c;
            tr_sem_acquire_clause(&c, &hs, n);
            rc = tr_select(&c, 1, dl, 0);
            if (rc == 0)
                rc = c.result;
        } else {
            rc = tr_sem_acquire_many(&hs, n, dl);
        }
        if (rc == TR_ECANCELED)
            return NULL;
        if (rc == TR_ETIMEDOUT)
            continue;
        ck_assert_tr_ok(rc);
        long now = atomic_fetch_add(&in_use, (long)n) + (long)n;
        ck_assert_int_le(now, H_PERMITS);
        long m = atomic_load(&max_seen);
        while (now > m && !atomic_compare_exchange_weak(&max_seen, &m, now))
            ;
        atomic_fetch_add(&grants, 1);
        if (rand_r(&seed) % 4 == 0) {
            if (tr_task_self())
                tr_yield();
            else
                sched_yield();
        }
        atomic_fetch_sub(&in_use, (long)n);
        ck_assert_tr_ok(tr_sem_release(&hs, n));
    }
    return NULL;
}

static bool hammered_enough(void) { return atomic_load(&grants) >= 2000; }

START_TEST(test_hammer) {
    tr_sem_init(&hs, H_PERMITS);
    atomic_store(&in_use, 0);
    atomic_store(&max_seen, 0);
    atomic_store(&grants, 0);
    tr_runtime *rt = tr_test_runtime(4);
    tr_test_hammer(rt, hammer, H_TASKS, H_THREADS, 100, hammered_enough);
    ck_assert_int_eq(atomic_load(&in_use), 0);
    ck_assert_int_eq(tr_sem_available_permits(&hs), H_PERMITS); /* nothing leaked */
    ck_assert_int_eq(queued(&hs), 0);
    ck_assert_int_le(atomic_load(&max_seen), H_PERMITS);
    ck_assert_tr_ok(tr_sem_destroy(&hs));
    tr_runtime_free(&rt);
}
END_TEST

/* Waiters queued behind big requests, cancelled and timing out at random
 * while permits are released in odd amounts: at the end every permit is
 * back. */
#define C_WAITERS 40

static void *cancel_target(void *arg) {
    acq *a = arg;
    a->rc = tr_sem_acquire_many(a->s, a->n, a->deadline);
    if (a->rc == 0) {
        tr_yield();
        tr_sem_release(a->s, a->n);
    }
    return NULL;
}

START_TEST(test_random_cancel) {
    tr_runtime *rt = tr_test_runtime(4);
    tr_sem s;
    tr_sem_init(&s, 6);
    unsigned seed = 7 + (unsigned)_i;
    acq a[C_WAITERS];
    tr_task *t[C_WAITERS];
    ck_assert_tr_ok(tr_sem_try_acquire_many(&s, 6)); /* everybody queues at first */
    for (int i = 0; i < C_WAITERS; i++) {
        a[i] = (acq){.s = &s, .n = 1 + rand_r(&seed) % 6,
                     .deadline = rand_r(&seed) % 3 ? TR_TEST_DEADLINE() : tr_after_ms(rand_r(&seed) % 5)};
        t[i] = spawn_on(rt, i, cancel_target, &a[i]);
    }
    size_t held = 6;
    for (int i = 0; i < C_WAITERS; i++) {
        if (rand_r(&seed) % 2)
            /* The same task may be picked again: repeated cancels race
             * the worker's handling of the first, as a supervisor's kill
             * after a cancel does. */
            ck_assert_tr_ok(tr_task_cancel(t[rand_r(&seed) % C_WAITERS]));
        if (held > 0 && rand_r(&seed) % 2) {
            ck_assert_tr_ok(tr_sem_release(&s, 1));
            held--;
        }
        if (rand_r(&seed) % 4 == 0)
            sched_yield();
    }
    ck_assert_tr_ok(tr_sem_release(&s, held));
    for (int i = 0; i < C_WAITERS; i++) {
        ck_assert_tr_ok(tr_task_join_until(t[i], NULL, TR_TEST_DEADLINE()));
        ck_assert(a[i].rc == 0 || a[i].rc == TR_ECANCELED || a[i].rc == TR_ETIMEDOUT);
    }
    ck_assert_int_eq(tr_sem_available_permits(&s), 6);
    ck_assert_int_eq(queued(&s), 0);
    tr_runtime_free(&rt);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("semaphore");
    TCase *tc = tr_tcase("tokio");
    tcase_add_test(tc, test_invalid);
    tcase_add_test(tc, test_static_init);
    tcase_add_test(tc, test_try_acquire);
    tcase_add_loop_test(tc, test_acquire_waits, 0, 2);
    tcase_add_loop_test(tc, test_add_forget_open_closed, 0, 2);
    tcase_add_test(tc, test_forget_permit);
    tcase_add_test(tc, test_merge_split);
    tcase_add_test(tc, test_stress);
    tcase_add_test(tc, test_max_permits);
    tcase_add_test(tc, test_plain_thread);
    suite_add_tcase(s, tc);
    tc = tr_tcase("batch");
    tcase_add_test(tc, test_acquire_available);
    tcase_add_test(tc, test_acquire_one_unavailable);
    tcase_add_test(tc, test_acquire_many_unavailable);
    tcase_add_test(tc, test_try_acquire_many_unavailable);
    tcase_add_test(tc, test_zero_permits_and_zero_requests);
    tcase_add_test(tc, test_close_prevents_acquire);
    tcase_add_test(tc, test_close_wakes_waiters);
    tcase_add_test(tc, test_close_returns_partial);
    tcase_add_test(tc, test_cancel_releases_permits);
    tcase_add_test(tc, test_forget_permits_basic);
    tcase_add_test(tc, test_update_permits_many_times);
    tcase_add_loop_test(tc, test_partial_grant_passes_on, 0, 2);
    tcase_add_test(tc, test_destroy_busy);
    suite_add_tcase(s, tc);
    tc = tr_tcase("select");
    tcase_add_test(tc, test_select);
    tcase_add_loop_test(tc, test_select_in_task, 0, 2);
    suite_add_tcase(s, tc);
    tc = tr_tcase("stress");
    tcase_add_test(tc, test_hammer);
    tcase_add_loop_test(tc, test_random_cancel, 0, 3);
    suite_add_tcase(s, tc);
    return s;
}

TR_TEST_MAIN(suite)
