/* test_mutex.c — tr_mutex: Tokio's sync_mutex.rs scenarios, then the rules a
 * C port adds (owner checks: TR_EDEADLK, TR_EPERM), FIFO hand-off without
 * barging, select clauses, cancellation of waiters, and tasks on 4 workers
 * plus plain threads hammering a counter that must come out exact.
 *
 * "Pending" is read off the mutex's queue: a waiter that has not been
 * handed the lock cannot return, so "still queued" is definite.
 */
#include "config.h" /* TR_DEBUG: whether the lock registry exists */

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"
#include "tr_mutex.h"

/* ---- helpers ------------------------------------------------------------------- */

static int queued(tr_mutex *m) {
    int n = 0;
    tr_spin_lock(&m->lock);
    for (tr_wait *e = m->waiters.head; e; e = e->next)
        n++;
    tr_spin_unlock(&m->lock);
    return n;
}

static void await_queued(tr_mutex *m, int n) {
    int64_t dl = TR_TEST_DEADLINE();
    while (queued(m) != n) {
        ck_assert_msg(tr_now() < dl, "queue stuck at %d, want %d", queued(m), n);
        if (tr_task_self())
            tr_yield();
        else
            sched_yield();
    }
}

/* The owner word without the contended bit set: the next unlock is one CAS. */
static bool uncontended(tr_mutex *m) { return (atomic_load(&m->state) & 1) == 0; }

typedef struct locker {
    tr_mutex *m;
    int64_t deadline; /* 0: the test deadline */
    bool unlock;      /* unlock before returning */
    int rc;
    atomic_int done;
} locker;

static void *locker_body(void *arg) {
    locker *l = arg;
    l->rc = tr_mutex_lock(l->m, l->deadline ? l->deadline : TR_TEST_DEADLINE());
    if (l->rc == 0) {
        ck_assert(tr_mutex_is_held(l->m));
        if (l->unlock)
            ck_assert_tr_ok(tr_mutex_unlock(l->m));
    }
    atomic_store(&l->done, 1);
    return RC(l->rc);
}

/* ---- arguments ------------------------------------------------------------------ */

START_TEST(test_invalid) {
    ck_assert_tr_err(tr_mutex_init(NULL), TR_EINVAL);
    ck_assert_tr_err(tr_mutex_destroy(NULL), TR_EINVAL);
    ck_assert_tr_err(tr_mutex_lock(NULL, TR_TEST_DEADLINE()), TR_EINVAL);
    ck_assert_tr_err(tr_mutex_try_lock(NULL), TR_EINVAL);
    ck_assert_tr_err(tr_mutex_unlock(NULL), TR_EINVAL);
    ck_assert_tr_err(tr_mutex_set_name(NULL, "x"), TR_EINVAL);
    ck_assert(!tr_mutex_is_locked(NULL));
    ck_assert(!tr_mutex_is_held(NULL));
    ck_assert_str_eq(tr_mutex_name(NULL), "");
    tr_clause c;
    ck_assert_tr_err(tr_mutex_lock_clause(NULL, NULL), TR_EINVAL);
    ck_assert_tr_err(tr_mutex_lock_clause(&c, NULL), TR_EINVAL);
    ck_assert_tr_err(tr_select(&c, 1, 0, 0), TR_EINVAL);

    tr_mutex m;
    ck_assert_tr_ok(tr_mutex_init(&m));
    ck_assert_str_eq(tr_mutex_name(&m), "");
    ck_assert_tr_ok(tr_mutex_set_name(&m, "accounts"));
    ck_assert_str_eq(tr_mutex_name(&m), "accounts");
    ck_assert_tr_ok(tr_mutex_lock(&m, 0));
    ck_assert_tr_err(tr_mutex_destroy(&m), TR_EBUSY); /* locked: nothing done */
    ck_assert_tr_ok(tr_mutex_unlock(&m));
    ck_assert_tr_ok(tr_mutex_destroy(&m));

    static tr_mutex sm = TR_MUTEX_INIT;
    ck_assert_tr_ok(tr_mutex_try_lock(&sm));
    ck_assert_tr_ok(tr_mutex_unlock(&sm));
}
END_TEST

/* ---- sync_mutex.rs --------------------------------------------------------------- */

static void *straight(void *arg) {
    tr_mutex *m = arg;
    int value = 100;
    for (int i = 0; i < 3; i++) {
        ck_assert_tr_ok(tr_mutex_lock(m, TR_TEST_DEADLINE()));
        ck_assert_int_eq(value, 100 - i);
        value--;
        ck_assert_tr_ok(tr_mutex_unlock(m));
    }
    ck_assert(!tr_mutex_is_locked(m));
    return NULL;
}

START_TEST(test_straight_execution) {
    tr_mutex m;
    tr_mutex_init(&m);
    straight(&m); /* plain thread */
    tr_runtime *rt = tr_test_runtime(1);
    ck_assert_tr_ok(tr_runtime_block_on(rt, straight, &m, NULL));
    tr_runtime_free(&rt);
}
END_TEST

/* A task holds until told to let go. */
static atomic_int let_go;

static void *hold_until_told(void *arg) {
    tr_mutex *m = arg;
    ck_assert_tr_ok(tr_mutex_lock(m, TR_TEST_DEADLINE()));
    atomic_store(&let_go, 1);
    await_count(&let_go, 2);
    ck_assert_tr_ok(tr_mutex_unlock(m));
    return NULL;
}

/* _i == 0: a plain thread holds and a task waits; 1: the other way round. */
START_TEST(test_readiness) {
    tr_runtime *rt = tr_test_runtime(2);
    tr_mutex m;
    tr_mutex_init(&m);
    locker waiter = {.m = &m, .unlock = true};
    if (_i == 0) {
        ck_assert_tr_ok(tr_mutex_lock(&m, TR_TEST_DEADLINE()));
        tr_task *t = spawn_on(rt, 0, locker_body, &waiter);
        await_queued(&m, 1);
        ck_assert(!atomic_load(&waiter.done));
        ck_assert_tr_ok(tr_mutex_unlock(&m));
        ck_assert_tr_ok(join_rc(t));
    } else {
        atomic_store(&let_go, 0);
        tr_task *t = spawn_on(rt, 0, hold_until_told, &m);
        await_count(&let_go, 1);
        ck_assert(tr_mutex_is_locked(&m));
        ck_assert(!tr_mutex_is_held(&m));
        ck_assert_tr_err(tr_mutex_unlock(&m), TR_EPERM); /* not this thread's */
        pthread_t th;
        ck_assert_int_eq(pthread_create(&th, NULL, locker_body, &waiter), 0);
        await_queued(&m, 1);
        ck_assert(!atomic_load(&waiter.done));
        atomic_store(&let_go, 2);
        pthread_join(th, NULL);
        ck_assert_tr_ok(waiter.rc);
        ck_assert_tr_ok(join_rc(t));
    }
    ck_assert(!tr_mutex_is_locked(&m));
    ck_assert_tr_ok(tr_mutex_destroy(&m));
    tr_runtime_free(&rt);
}
END_TEST

/* aborted_future_1: a task holding the lock is cancelled in a wait; it
 * unwinds through its own unlock, so the lock is free again. */
static void *hold_and_sleep(void *arg) {
    tr_mutex *m = arg;
    ck_assert_tr_ok(tr_mutex_lock(m, TR_TEST_DEADLINE()));
    int rc = tr_sleep_ms(10000);
    ck_assert_tr_ok(tr_mutex_unlock(m));
    return RC(rc);
}

START_TEST(test_aborted_holder) {
    tr_runtime *rt = tr_test_runtime(2);
    tr_mutex m;
    tr_mutex_init(&m);
    tr_task *t = spawn_on(rt, 0, hold_and_sleep, &m);
    int64_t dl = TR_TEST_DEADLINE();
    while (!tr_mutex_is_locked(&m) && tr_now() < dl)
        sched_yield();
    ck_assert_tr_ok(tr_task_cancel(t));
    ck_assert_tr_err(join_rc(t), TR_ECANCELED);
    ck_assert_tr_ok(tr_mutex_lock(&m, tr_after_ms(1000)));
    ck_assert_tr_ok(tr_mutex_unlock(&m));
    tr_runtime_free(&rt);
}
END_TEST

/* aborted_future_2: a waiter times out (or is cancelled) and leaves no
 * trace: the holder's unlock is the one-CAS kind again and the lock is
 * free at once. */
START_TEST(test_aborted_waiter) {
    tr_runtime *rt = tr_test_runtime(2);
    tr_mutex m;
    tr_mutex_init(&m);
    ck_assert_tr_ok(tr_mutex_lock(&m, TR_TEST_DEADLINE()));
    locker w = {.m = &m, .deadline = _i ? 0 : tr_after_ms(5)};
    tr_task *t = spawn_on(rt, 0, locker_body, &w);
    if (_i) {
        await_queued(&m, 1);
        ck_assert_tr_ok(tr_task_cancel(t));
    }
    ck_assert_tr_err(join_rc(t), _i ? TR_ECANCELED : TR_ETIMEDOUT);
    ck_assert_int_eq(queued(&m), 0);
    ck_assert(uncontended(&m));
    ck_assert(tr_mutex_is_held(&m));
    ck_assert_tr_ok(tr_mutex_unlock(&m));
    ck_assert_tr_ok(tr_mutex_lock(&m, tr_after_ms(1)));
    ck_assert_tr_ok(tr_mutex_unlock(&m));
    /* The same from a plain thread, with a past deadline: no wait at all. */
    ck_assert_tr_ok(tr_mutex_lock(&m, TR_TEST_DEADLINE()));
    locker w2 = {.m = &m, .deadline = 1};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, locker_body, &w2), 0);
    pthread_join(th, NULL);
    ck_assert_tr_err(w2.rc, TR_ETIMEDOUT);
    ck_assert_int_eq(queued(&m), 0);
    ck_assert_tr_ok(tr_mutex_unlock(&m));
    tr_runtime_free(&rt);
}
END_TEST

START_TEST(test_try_lock) {
    tr_mutex m;
    tr_mutex_init(&m);
    ck_assert_tr_ok(tr_mutex_try_lock(&m));
    ck_assert_tr_err(tr_mutex_try_lock(&m), TR_EBUSY);
    ck_assert_tr_ok(tr_mutex_unlock(&m));
    ck_assert_tr_ok(tr_mutex_try_lock(&m));
    ck_assert_tr_ok(tr_mutex_unlock(&m));
}
END_TEST

/* ---- owner rules ------------------------------------------------------------------- */

static void *relock(void *arg) {
    tr_mutex *m = arg;
    ck_assert_tr_ok(tr_mutex_lock(m, TR_TEST_DEADLINE()));
    ck_assert_tr_err(tr_mutex_lock(m, TR_TEST_DEADLINE()), TR_EDEADLK);
    ck_assert_tr_err(tr_mutex_lock(m, 0), TR_EDEADLK);
    ck_assert_tr_err(tr_mutex_try_lock(m), TR_EBUSY);
    tr_clause c;
    ck_assert_tr_ok(tr_mutex_lock_clause(&c, m));
    ck_assert_int_eq(tr_select(&c, 1, TR_TEST_DEADLINE(), 0), 0);
    ck_assert_tr_err(c.result, TR_EDEADLK);
    ck_assert(tr_mutex_is_held(m));
    ck_assert_tr_ok(tr_mutex_unlock(m));
    ck_assert_tr_err(tr_mutex_unlock(m), TR_EPERM); /* not held any more */
    return NULL;
}

START_TEST(test_relock_deadlk) {
    tr_mutex m;
    tr_mutex_init(&m);
    relock(&m);
    tr_runtime *rt = tr_test_runtime(1);
    ck_assert_tr_ok(tr_runtime_block_on(rt, relock, &m, NULL));
    tr_runtime_free(&rt);
}
END_TEST

/* Relocking while others wait is still TR_EDEADLK, found in the slow path. */
START_TEST(test_relock_contended) {
    tr_runtime *rt = tr_test_runtime(1);
    tr_mutex m;
    tr_mutex_init(&m);
    ck_assert_tr_ok(tr_mutex_lock(&m, TR_TEST_DEADLINE()));
    locker w = {.m = &m, .unlock = true};
    tr_task *t = spawn_on(rt, 0, locker_body, &w);
    await_queued(&m, 1);
    ck_assert_tr_err(tr_mutex_lock(&m, TR_TEST_DEADLINE()), TR_EDEADLK);
    ck_assert_tr_ok(tr_mutex_unlock(&m));
    ck_assert_tr_ok(join_rc(t));
    tr_runtime_free(&rt);
}
END_TEST

static void *unlock_other(void *arg) { return RC(tr_mutex_unlock(arg)); }

START_TEST(test_unlock_not_owner) {
    tr_mutex m;
    tr_mutex_init(&m);
    ck_assert_tr_err(tr_mutex_unlock(&m), TR_EPERM); /* nobody holds it */
    ck_assert_tr_ok(tr_mutex_lock(&m, TR_TEST_DEADLINE()));
    pthread_t th;
    void *r;
    ck_assert_int_eq(pthread_create(&th, NULL, unlock_other, &m), 0);
    pthread_join(th, &r);
    ck_assert_int_eq((int)(intptr_t)r, TR_EPERM); /* another thread */
    tr_runtime *rt = tr_test_runtime(1);
    tr_task *t = spawn_on(rt, 0, unlock_other, &m);
    ck_assert_int_eq(join_rc(t), TR_EPERM); /* a task */
    ck_assert(tr_mutex_is_held(&m));
    ck_assert_tr_ok(tr_mutex_unlock(&m));
    tr_runtime_free(&rt);
}
END_TEST

/* ---- FIFO hand-off ------------------------------------------------------------------ */

static void *no_barging(void *arg) {
    tr_mutex *m = arg;
    ck_assert_tr_ok(tr_mutex_lock(m, TR_TEST_DEADLINE()));
    locker w = {.m = m, .unlock = true};
    tr_task *t;
    ck_assert_tr_ok(tr_spawn(&t, locker_body, &w)); /* same worker */
    await_queued(m, 1);
    ck_assert_tr_ok(tr_mutex_unlock(m));
    /* Handed to w, which cannot have run: we have not yielded. */
    ck_assert(!atomic_load(&w.done));
    ck_assert(tr_mutex_is_locked(m));
    ck_assert(!tr_mutex_is_held(m));
    ck_assert_tr_err(tr_mutex_try_lock(m), TR_EBUSY);
    ck_assert_tr_ok(tr_mutex_lock(m, TR_TEST_DEADLINE())); /* waits for w's turn */
    ck_assert(atomic_load(&w.done));
    ck_assert_tr_ok(tr_mutex_unlock(m));
    ck_assert_tr_ok(tr_task_join(t, NULL));
    ck_assert_tr_ok(w.rc);
    return NULL;
}

START_TEST(test_no_barging) {
    tr_runtime *rt = tr_test_runtime(1);
    tr_mutex m;
    tr_mutex_init(&m);
    ck_assert_tr_ok(tr_runtime_block_on(rt, no_barging, &m, NULL));
    tr_runtime_free(&rt);
}
END_TEST

#define FIFO_N 12
static int fifo_order[FIFO_N];
static atomic_int fifo_pos;

typedef struct fifo_arg {
    tr_mutex *m;
    int index;
} fifo_arg;

static void *fifo_body(void *arg) {
    fifo_arg *a = arg;
    ck_assert_tr_ok(tr_mutex_lock(a->m, TR_TEST_DEADLINE()));
    fifo_order[atomic_fetch_add(&fifo_pos, 1)] = a->index;
    tr_yield(); /* held across a wait */
    ck_assert_tr_ok(tr_mutex_unlock(a->m));
    return NULL;
}

START_TEST(test_fifo_order) {
    tr_runtime *rt = tr_test_runtime(4);
    tr_mutex m;
    tr_mutex_init(&m);
    atomic_store(&fifo_pos, 0);
    ck_assert_tr_ok(tr_mutex_lock(&m, TR_TEST_DEADLINE()));
    fifo_arg a[FIFO_N];
    tr_task *t[FIFO_N];
    for (int i = 0; i < FIFO_N; i++) {
        a[i] = (fifo_arg){&m, i};
        t[i] = spawn_on(rt, i, fifo_body, &a[i]); /* spread over the workers */
        await_queued(&m, i + 1);
    }
    ck_assert_tr_ok(tr_mutex_unlock(&m));
    for (int i = 0; i < FIFO_N; i++)
        join_rc(t[i]);
    for (int i = 0; i < FIFO_N; i++)
        ck_assert_int_eq(fifo_order[i], i);
    tr_runtime_free(&rt);
}
END_TEST

/* Held across a wait: the worker keeps running its other tasks. */
static atomic_int ticks;

static void *ticker(void *arg) {
    (void)arg;
    for (int i = 0; i < 10; i++) {
        atomic_fetch_add(&ticks, 1);
        tr_yield();
    }
    return NULL;
}

static void *hold_across_wait(void *arg) {
    tr_mutex *m = arg;
    ck_assert_tr_ok(tr_mutex_lock(m, TR_TEST_DEADLINE()));
    tr_task *t;
    ck_assert_tr_ok(tr_spawn(&t, ticker, NULL));
    ck_assert_tr_ok(tr_sleep_ms(5)); /* the ticker runs on this very worker */
    ck_assert_int_gt(atomic_load(&ticks), 0);
    ck_assert_tr_ok(tr_mutex_unlock(m));
    ck_assert_tr_ok(tr_task_join(t, NULL));
    return NULL;
}

START_TEST(test_held_across_wait) {
    tr_runtime *rt = tr_test_runtime(1);
    tr_mutex m;
    tr_mutex_init(&m);
    atomic_store(&ticks, 0);
    ck_assert_tr_ok(tr_runtime_block_on(rt, hold_across_wait, &m, NULL));
    tr_runtime_free(&rt);
}
END_TEST

/* ---- select ---------------------------------------------------------------------------- */

static tr_mutex sel_m1, sel_m2;
static atomic_int sel_go;

static void *hold_m1_until_go(void *arg) {
    (void)arg;
    ck_assert_tr_ok(tr_mutex_lock(&sel_m1, TR_TEST_DEADLINE()));
    atomic_store(&sel_go, 1);
    await_count(&sel_go, 2);
    ck_assert_tr_ok(tr_mutex_unlock(&sel_m1));
    return NULL;
}

START_TEST(test_select) {
    tr_runtime *rt = tr_test_runtime(2);
    tr_mutex_init(&sel_m1);
    tr_mutex_init(&sel_m2);
    atomic_store(&sel_go, 0);
    tr_task *h = spawn_on(rt, 0, hold_m1_until_go, NULL);
    await_count(&sel_go, 1);
    tr_clause c[2];

    /* m1 held by h, m2 free: m2 wins and m1 is left alone. */
    tr_mutex_lock_clause(&c[0], &sel_m1);
    tr_mutex_lock_clause(&c[1], &sel_m2);
    ck_assert_int_eq(tr_select(c, 2, TR_TEST_DEADLINE(), 0), 1);
    ck_assert_tr_ok(c[1].result);
    ck_assert(tr_mutex_is_held(&sel_m2));
    ck_assert(!tr_mutex_is_held(&sel_m1));
    ck_assert_int_eq(queued(&sel_m1), 0);
    ck_assert(uncontended(&sel_m1));

    /* m1 alone, still held by h: the deadline passes, nothing is left queued. */
    ck_assert_tr_err(tr_select(c, 1, tr_after_ms(10), 0), TR_ETIMEDOUT);
    ck_assert_int_eq(queued(&sel_m1), 0);
    ck_assert(uncontended(&sel_m1));
    ck_assert_tr_ok(tr_mutex_unlock(&sel_m2));

    /* Parked on m1 (beside a clause that never fires): h's unlock hands
     * m1 straight to the select. */
    tr_clause one[2];
    tr_mutex_lock_clause(&one[0], &sel_m1);
    tr_clause_never(&one[1]);
    atomic_store(&sel_go, 2);
    ck_assert_int_eq(tr_select(one, 2, TR_TEST_DEADLINE(), 0), 0);
    ck_assert_tr_ok(one[0].result);
    ck_assert(tr_mutex_is_held(&sel_m1));
    ck_assert_tr_ok(join_rc(h));
    ck_assert_tr_ok(tr_mutex_unlock(&sel_m1));
    ck_assert(!tr_mutex_is_locked(&sel_m1));
    tr_runtime_free(&rt);
}
END_TEST

/* Two selects race for two mutexes each way round; every select wins
 * exactly one, and afterwards nothing is held. */
static tr_mutex race_m[2];
static atomic_long race_wins;

static void *select_racer(void *arg) {
    unsigned seed = (unsigned)(uintptr_t)arg;
    for (int i = 0; i < 2000; i++) {
        tr_clause c[2];
        int first = rand_r(&seed) % 2;
        tr_mutex_lock_clause(&c[0], &race_m[first]);
        tr_mutex_lock_clause(&c[1], &race_m[!first]);
        int r = tr_select(c, 2, rand_r(&seed) % 4 ? TR_TEST_DEADLINE() : tr_after_us(50),
                          TR_SELECT_RANDOM);
        if (r == TR_ETIMEDOUT)
            continue;
        ck_assert_int_ge(r, 0);
        ck_assert_tr_ok(c[r].result);
        tr_mutex *won = c[r].obj, *other = c[!r].obj;
        ck_assert(tr_mutex_is_held(won));
        ck_assert(!tr_mutex_is_held(other));
        atomic_fetch_add(&race_wins, 1);
        if (rand_r(&seed) % 3 == 0)
            tr_yield();
        ck_assert_tr_ok(tr_mutex_unlock(won));
    }
    return NULL;
}

START_TEST(test_select_race) {
    tr_runtime *rt = tr_test_runtime(4);
    tr_mutex_init(&race_m[0]);
    tr_mutex_init(&race_m[1]);
    atomic_store(&race_wins, 0);
    tr_task *t[6];
    for (int i = 0; i < 6; i++)
        t[i] = spawn_on(rt, i, select_racer, (void *)(uintptr_t)(i + 1));
    select_racer((void *)(uintptr_t)99); /* and a plain thread */
    for (int i = 0; i < 6; i++)
        join_rc(t[i]);
    ck_assert_int_gt(atomic_load(&race_wins), 0);
    for (int k = 0; k < 2; k++) {
        ck_assert(!tr_mutex_is_locked(&race_m[k]));
        ck_assert_int_eq(queued(&race_m[k]), 0);
        ck_assert_tr_ok(tr_mutex_destroy(&race_m[k]));
    }
    tr_runtime_free(&rt);
}
END_TEST

/* ---- hammer: 4 workers + plain threads, counter must be exact -------------------------- */

#define H_TASKS 8
#define H_THREADS 2
#define H_ITERS 4000

static tr_mutex hm;
static long counter;          /* guarded by hm; deliberately not atomic */
static atomic_long increments; /* how many critical sections ran */
static atomic_int inside;

static void *hammer(void *arg) {
    unsigned seed = (unsigned)(uintptr_t)arg;
    bool task = tr_task_self() != NULL;
    for (int i = 0; i < H_ITERS; i++) {
        int how = rand_r(&seed) % 8, rc;
        if (how == 0) {
            rc = tr_mutex_try_lock(&hm);
            if (rc == TR_EBUSY)
                continue;
        } else if (how == 1) {
            tr_clause c;
            tr_mutex_lock_clause(&c, &hm);
            rc = tr_select(&c, 1, tr_after_us(rand_r(&seed) % 200), 0);
            if (rc == 0)
                rc = c.result;
        } else if (how == 2) {
            rc = tr_mutex_lock(&hm, tr_after_us(rand_r(&seed) % 100));
        } else {
            rc = tr_mutex_lock(&hm, TR_TEST_DEADLINE());
        }
        if (rc == TR_ECANCELED)
            return NULL;
        if (rc == TR_ETIMEDOUT)
            continue;
        ck_assert_tr_ok(rc);
        ck_assert_int_eq(atomic_exchange(&inside, 1), 0);
        long v = counter;
        if (rand_r(&seed) % 16 == 0) { /* held across a wait */
            if (task)
                tr_yield();
            else
                sched_yield();
        }
        counter = v + 1;
        atomic_fetch_add(&increments, 1);
        atomic_store(&inside, 0);
        ck_assert_tr_ok(tr_mutex_unlock(&hm));
    }
    return NULL;
}

static bool hammered_enough(void) { return atomic_load(&increments) >= 3000; }

START_TEST(test_hammer) {
    tr_mutex_init(&hm);
    counter = 0;
    atomic_store(&increments, 0);
    atomic_store(&inside, 0);
    tr_runtime *rt = tr_test_runtime(4);
    tr_test_hammer(rt, hammer, H_TASKS, H_THREADS, 50, hammered_enough);
    ck_assert_int_eq(counter, atomic_load(&increments));
    ck_assert_int_gt(counter, 0);
    ck_assert(!tr_mutex_is_locked(&hm));
    ck_assert_int_eq(queued(&hm), 0);
    ck_assert_tr_ok(tr_mutex_destroy(&hm));
    tr_runtime_free(&rt);
}
END_TEST

/* Waiters cancelled and timing out at random while the lock changes hands:
 * at the end it is free and nobody is queued. */
#define C_WAITERS 40

START_TEST(test_random_cancel) {
    tr_runtime *rt = tr_test_runtime(4);
    tr_mutex m;
    tr_mutex_init(&m);
    unsigned seed = 11 + (unsigned)_i;
    ck_assert_tr_ok(tr_mutex_lock(&m, TR_TEST_DEADLINE()));
    locker l[C_WAITERS];
    tr_task *t[C_WAITERS];
    for (int i = 0; i < C_WAITERS; i++) {
        l[i] = (locker){.m = &m, .unlock = true,
                        .deadline = rand_r(&seed) % 3 ? 0 : tr_after_ms(rand_r(&seed) % 5)};
        t[i] = spawn_on(rt, i, locker_body, &l[i]);
    }
    for (int i = 0; i < C_WAITERS; i++) {
        if (rand_r(&seed) % 2)
            /* The same task may be picked again: repeated cancels race
             * the worker's handling of the first, as a supervisor's kill
             * after a cancel does. */
            ck_assert_tr_ok(tr_task_cancel(t[rand_r(&seed) % C_WAITERS]));
        if (rand_r(&seed) % 4 == 0)
            sched_yield();
    }
    ck_assert_tr_ok(tr_mutex_unlock(&m));
    for (int i = 0; i < C_WAITERS; i++) {
        join_rc(t[i]);
        ck_assert(l[i].rc == 0 || l[i].rc == TR_ECANCELED || l[i].rc == TR_ETIMEDOUT);
    }
    ck_assert(!tr_mutex_is_locked(&m));
    ck_assert_int_eq(queued(&m), 0);
    ck_assert_tr_ok(tr_mutex_try_lock(&m));
    ck_assert_tr_ok(tr_mutex_unlock(&m));
    tr_runtime_free(&rt);
}
END_TEST

/* ---- debug report --------------------------------------------------------------------- */

static void *end_holding(void *arg) {
    tr_mutex *m = arg;
    ck_assert_tr_ok(tr_mutex_lock(m, TR_TEST_DEADLINE()));
    /* What the runtime's task-exit hook will do. */
    int held = tr_lock_debug_report(NULL);
#ifdef TR_DEBUG
    ck_assert_int_eq(held, 1);
#else
    ck_assert_int_eq(held, 0);
#endif
    ck_assert_tr_ok(tr_mutex_unlock(m));
    ck_assert_int_eq(tr_lock_debug_report(tr_task_self()), 0);
    return NULL;
}

START_TEST(test_debug_report) {
    tr_mutex m;
    tr_mutex_init(&m);
    tr_mutex_set_name(&m, "accounts");
    tr_spawn_opts o = {.name = "bookkeeper"};
    tr_runtime *rt = tr_test_runtime(1);
    tr_task *t;
    ck_assert_tr_ok(tr_spawn_ex(rt, &o, &t, end_holding, &m));
    join_rc(t);
    end_holding(&m); /* a plain thread */
    tr_runtime_free(&rt);
}
END_TEST

/* The runtime's exit hook reports a task that returns holding a lock, by
 * itself: run one in a child whose stderr goes to a pipe. */
static void *return_holding(void *arg) {
    ck_assert_tr_ok(tr_mutex_lock(arg, TR_TEST_DEADLINE()));
    return NULL; /* the bug under test: the mutex stays locked */
}

START_TEST(test_exit_hook_reports) {
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(p[1], 2);
        close(p[0]);
        tr_mutex m;
        tr_mutex_init(&m);
        tr_mutex_set_name(&m, "ledger");
        tr_spawn_opts o = {.name = "forgetful"};
        tr_runtime *rt = tr_test_runtime(1);
        tr_task *t;
        if (tr_spawn_ex(rt, &o, &t, return_holding, &m) != 0 ||
            tr_task_join_until(t, NULL, TR_TEST_DEADLINE()) != 0)
            _exit(2);
        tr_runtime_free(&rt);
        _exit(0);
    }
    close(p[1]);
    char buf[512] = "";
    size_t len = 0;
    ssize_t r;
    while (len < sizeof buf - 1 && (r = read(p[0], buf + len, sizeof buf - 1 - len)) > 0)
        len += (size_t)r;
    buf[len] = 0;
    close(p[0]);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
#ifdef TR_DEBUG
    ck_assert_msg(strstr(buf, "\"forgetful\" still holds mutex \"ledger\"") != NULL,
                  "stderr was: %s", buf);
#else
    ck_assert_str_eq(buf, ""); /* release builds keep no registry */
#endif
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("mutex");
    TCase *tc = tr_tcase("tokio");
    tcase_add_test(tc, test_invalid);
    tcase_add_test(tc, test_exit_hook_reports);
    tcase_add_test(tc, test_straight_execution);
    tcase_add_loop_test(tc, test_readiness, 0, 2);
    tcase_add_test(tc, test_aborted_holder);
    tcase_add_loop_test(tc, test_aborted_waiter, 0, 2);
    tcase_add_test(tc, test_try_lock);
    suite_add_tcase(s, tc);
    tc = tr_tcase("owner");
    tcase_add_test(tc, test_relock_deadlk);
    tcase_add_test(tc, test_relock_contended);
    tcase_add_test(tc, test_unlock_not_owner);
    tcase_add_test(tc, test_debug_report);
    suite_add_tcase(s, tc);
    tc = tr_tcase("fifo");
    tcase_add_test(tc, test_no_barging);
    tcase_add_test(tc, test_fifo_order);
    tcase_add_test(tc, test_held_across_wait);
    suite_add_tcase(s, tc);
    tc = tr_tcase("select");
    tcase_add_test(tc, test_select);
    tcase_add_test(tc, test_select_race);
    suite_add_tcase(s, tc);
    tc = tr_tcase("stress");
    tcase_add_test(tc, test_hammer);
    tcase_add_loop_test(tc, test_random_cancel, 0, 3);
    suite_add_tcase(s, tc);
    return s;
}

TR_TEST_MAIN(suite)
