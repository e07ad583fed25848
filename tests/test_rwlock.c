/* test_rwlock.c — tr_rwlock: Tokio's sync_rwlock.rs scenarios, downgrade,
 * the owner rules (TR_EDEADLK, TR_EPERM), select clauses, cancellation, and
 * readers and writers on 4 workers plus plain threads checking that no
 * reader ever overlaps a writer and at most max_readers read at once.
 *
 * "Pending" is read off the queue of the semaphore the lock is made of: a
 * waiter not yet granted cannot return, so "still queued" is definite.
 */
#include "config.h" /* TR_DEBUG: whether the lock registry exists */

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "testutil.h"
#include "tr_rwlock.h"

/* ---- helpers ------------------------------------------------------------------- */

static int queued(tr_rwlock *l) {
    int n = 0;
    tr_spin_lock(&l->sem.lock);
    for (tr_wait *e = l->sem.waiters.head; e; e = e->next)
        n++;
    tr_spin_unlock(&l->sem.lock);
    return n;
}

static void await_queued(tr_rwlock *l, int n) {
    int64_t dl = TR_TEST_DEADLINE();
    while (queued(l) != n) {
        ck_assert_msg(tr_now() < dl, "queue stuck at %d, want %d", queued(l), n);
        if (tr_task_self())
            tr_yield();
        else
            sched_yield();
    }
}

typedef struct locker {
    tr_rwlock *l;
    bool write;
    bool unlock;      /* unlock before returning */
    int64_t deadline; /* 0: the test deadline */
    int rc;
    atomic_int done;
} locker;

static void *locker_body(void *arg) {
    locker *k = arg;
    int64_t dl = k->deadline ? k->deadline : TR_TEST_DEADLINE();
    k->rc = k->write ? tr_rwlock_write(k->l, dl) : tr_rwlock_read(k->l, dl);
    if (k->rc == 0 && k->unlock)
        ck_assert_tr_ok(k->write ? tr_rwlock_write_unlock(k->l) : tr_rwlock_read_unlock(k->l));
    atomic_store(&k->done, 1);
    return RC(k->rc);
}

static tr_task *spawn_locker(tr_runtime *rt, locker *k, tr_rwlock *l, bool write, int expect) {
    k->l = l;
    k->write = write;
    atomic_store(&k->done, 0);
    tr_task *t = spawn_on(rt, 0, locker_body, k);
    if (expect >= 0)
        await_queued(l, expect);
    return t;
}

/* ---- arguments ------------------------------------------------------------------ */

START_TEST(test_invalid) {
    tr_rwlock l;
    ck_assert_tr_err(tr_rwlock_init(NULL), TR_EINVAL);
    ck_assert_tr_err(tr_rwlock_init_max(&l, 0), TR_EINVAL); /* zero_max_readers */
    ck_assert_tr_err(tr_rwlock_init_max(&l, TR_RWLOCK_MAX_READERS + 1), TR_EINVAL);
    ck_assert_tr_ok(tr_rwlock_init_max(&l, TR_RWLOCK_MAX_READERS));
    ck_assert_tr_err(tr_rwlock_read(NULL, 0), TR_EINVAL);
    ck_assert_tr_err(tr_rwlock_write(NULL, 0), TR_EINVAL);
    ck_assert_tr_err(tr_rwlock_try_read(NULL), TR_EINVAL);
    ck_assert_tr_err(tr_rwlock_try_write(NULL), TR_EINVAL);
    ck_assert_tr_err(tr_rwlock_read_unlock(NULL), TR_EINVAL);
    ck_assert_tr_err(tr_rwlock_write_unlock(NULL), TR_EINVAL);
    ck_assert_tr_err(tr_rwlock_downgrade(NULL), TR_EINVAL);
    ck_assert_tr_err(tr_rwlock_destroy(NULL), TR_EINVAL);
    ck_assert_tr_err(tr_rwlock_set_name(NULL, "x"), TR_EINVAL);
    tr_clause c;
    ck_assert_tr_err(tr_rwlock_read_clause(NULL, &l), TR_EINVAL);
    ck_assert_tr_err(tr_rwlock_read_clause(&c, NULL), TR_EINVAL);
    ck_assert_tr_err(tr_select(&c, 1, 0, 0), TR_EINVAL);
    ck_assert_tr_err(tr_rwlock_write_clause(&c, NULL), TR_EINVAL);
    ck_assert_tr_err(tr_select(&c, 1, 0, 0), TR_EINVAL);

    ck_assert_tr_ok(tr_rwlock_init(&l));
    ck_assert_tr_ok(tr_rwlock_set_name(&l, "config"));
    ck_assert_tr_ok(tr_rwlock_read(&l, 0));
    ck_assert_tr_err(tr_rwlock_destroy(&l), TR_EBUSY);
    ck_assert_tr_ok(tr_rwlock_read_unlock(&l));
    ck_assert_tr_ok(tr_rwlock_write(&l, 0));
    ck_assert_tr_err(tr_rwlock_destroy(&l), TR_EBUSY);
    ck_assert_tr_ok(tr_rwlock_write_unlock(&l));
    ck_assert_tr_ok(tr_rwlock_destroy(&l));

    static tr_rwlock sl = TR_RWLOCK_INIT;
    ck_assert_tr_ok(tr_rwlock_try_write(&sl));
    ck_assert_tr_err(tr_rwlock_try_read(&sl), TR_EBUSY);
    ck_assert_tr_ok(tr_rwlock_write_unlock(&sl));
    ck_assert_tr_ok(tr_rwlock_try_read(&sl));
    ck_assert_tr_ok(tr_rwlock_read_unlock(&sl));
}
END_TEST

/* ---- sync_rwlock.rs --------------------------------------------------------------- */

START_TEST(test_read_shared) {
    tr_rwlock l;
    tr_rwlock_init(&l);
    ck_assert_tr_ok(tr_rwlock_read(&l, 0));
    ck_assert_tr_ok(tr_rwlock_read(&l, 0));
    ck_assert_tr_ok(tr_rwlock_read_unlock(&l));
    ck_assert_tr_ok(tr_rwlock_read_unlock(&l));
    ck_assert_tr_ok(tr_rwlock_destroy(&l));
}
END_TEST

/* write_shared_pending + write_shared_drop (_i 0), read_exclusive_pending
 * (_i 1), write_exclusive_pending (_i 2): the second waits until the first
 * lets go. */
START_TEST(test_pending_then_granted) {
    tr_runtime *rt = tr_test_runtime(2);
    tr_rwlock l;
    tr_rwlock_init(&l);
    bool first_write = _i != 0, second_write = _i != 1;
    ck_assert_tr_ok(first_write ? tr_rwlock_write(&l, 0) : tr_rwlock_read(&l, 0));
    locker k = {.unlock = true};
    tr_task *t = spawn_locker(rt, &k, &l, second_write, 1);
    ck_assert(!atomic_load(&k.done));
    ck_assert_tr_ok(first_write ? tr_rwlock_write_unlock(&l) : tr_rwlock_read_unlock(&l));
    ck_assert_tr_ok(join_rc(t));
    ck_assert_tr_ok(tr_rwlock_destroy(&l));
    tr_runtime_free(&rt);
}
END_TEST

START_TEST(test_exhaust_reading) {
    tr_runtime *rt = tr_test_runtime(2);
    tr_rwlock l;
    tr_rwlock_init_max(&l, 1024);
    int reads = 0;
    while (tr_rwlock_read(&l, 0) == 0) /* "poll" with a past deadline */
        reads++;
    ck_assert_int_eq(reads, 1024);
    ck_assert_tr_err(tr_rwlock_try_read(&l), TR_EBUSY);
    locker k = {.unlock = true};
    tr_task *t = spawn_locker(rt, &k, &l, false, 1);
    ck_assert_tr_ok(tr_rwlock_read_unlock(&l));
    ck_assert_tr_ok(join_rc(t));
    for (int i = 1; i < reads; i++)
        ck_assert_tr_ok(tr_rwlock_read_unlock(&l));
    ck_assert_tr_err(tr_rwlock_read_unlock(&l), TR_EPERM); /* no reader left */
    ck_assert_tr_ok(tr_rwlock_destroy(&l));
    tr_runtime_free(&rt);
}
END_TEST

/* write_read_shared_pending: a queued writer blocks later readers. */
START_TEST(test_write_preferring) {
    tr_runtime *rt = tr_test_runtime(2);
    tr_rwlock l;
    tr_rwlock_init(&l);
    ck_assert_tr_ok(tr_rwlock_read(&l, 0));
    ck_assert_tr_ok(tr_rwlock_read(&l, 0));
    locker w = {.unlock = true}, r = {.unlock = true};
    tr_task *tw = spawn_locker(rt, &w, &l, true, 1);
    tr_task *tr = spawn_locker(rt, &r, &l, false, 2);
    ck_assert_tr_err(tr_rwlock_try_read(&l), TR_EBUSY);
    ck_assert_tr_err(tr_rwlock_read(&l, 0), TR_ETIMEDOUT);
    ck_assert_tr_ok(tr_rwlock_read_unlock(&l));
    ck_assert(!atomic_load(&w.done));
    ck_assert(!atomic_load(&r.done));
    ck_assert_tr_ok(tr_rwlock_read_unlock(&l));
    ck_assert_tr_ok(join_rc(tw));
    ck_assert_tr_ok(join_rc(tr));
    ck_assert_tr_ok(tr_rwlock_destroy(&l));
    tr_runtime_free(&rt);
}
END_TEST

/* write_read_shared_drop_pending: the queued writer goes away (cancelled or
 * timed out) and the reader behind it gets in at once. */
START_TEST(test_writer_leaves) {
    tr_runtime *rt = tr_test_runtime(2);
    tr_rwlock l;
    tr_rwlock_init(&l);
    ck_assert_tr_ok(tr_rwlock_read(&l, 0));
    locker w = {.deadline = _i ? 0 : tr_after_ms(30)}, r = {.unlock = true};
    tr_task *tw = spawn_locker(rt, &w, &l, true, 1);
    tr_task *tr = spawn_locker(rt, &r, &l, false, 2);
    if (_i)
        ck_assert_tr_ok(tr_task_cancel(tw));
    ck_assert_tr_err(join_rc(tw), _i ? TR_ECANCELED : TR_ETIMEDOUT);
    ck_assert_tr_ok(join_rc(tr)); /* while we still read */
    ck_assert_tr_ok(tr_rwlock_read_unlock(&l));
    ck_assert_int_eq(tr_sem_available_permits(&l.sem), TR_RWLOCK_MAX_READERS);
    ck_assert_tr_ok(tr_rwlock_destroy(&l));
    tr_runtime_free(&rt);
}
END_TEST

static void *uncontested(void *arg) {
    tr_rwlock *l = arg;
    static int value = 100;
    ck_assert_tr_ok(tr_rwlock_read(l, TR_TEST_DEADLINE()));
    ck_assert_int_eq(value, 100);
    ck_assert_tr_ok(tr_rwlock_read_unlock(l));
    ck_assert_tr_ok(tr_rwlock_write(l, TR_TEST_DEADLINE()));
    value += 50;
    ck_assert_int_eq(value, 150);
    value = 100;
    ck_assert_tr_ok(tr_rwlock_write_unlock(l));
    return NULL;
}

START_TEST(test_uncontested) {
    tr_rwlock l;
    tr_rwlock_init(&l);
    uncontested(&l);
    tr_runtime *rt = tr_test_runtime(1);
    ck_assert_tr_ok(tr_runtime_block_on(rt, uncontested, &l, NULL));
    tr_runtime_free(&rt);
}
END_TEST

/* write_order: writers are served in the order they queued. */
#define ORDER_N 8
static int order[ORDER_N];
static atomic_int order_pos;

typedef struct order_arg {
    tr_rwlock *l;
    int index;
} order_arg;

static void *order_writer(void *arg) {
    order_arg *a = arg;
    ck_assert_tr_ok(tr_rwlock_write(a->l, TR_TEST_DEADLINE()));
    order[atomic_fetch_add(&order_pos, 1)] = a->index;
    tr_yield();
    ck_assert_tr_ok(tr_rwlock_write_unlock(a->l));
    return NULL;
}

START_TEST(test_write_order) {
    tr_runtime *rt = tr_test_runtime(4);
    tr_rwlock l;
    tr_rwlock_init(&l);
    atomic_store(&order_pos, 0);
    ck_assert_tr_ok(tr_rwlock_read(&l, 0));
    order_arg a[ORDER_N];
    tr_task *t[ORDER_N];
    for (int i = 0; i < ORDER_N; i++) {
        a[i] = (order_arg){&l, i};
        t[i] = spawn_on(rt, i, order_writer, &a[i]);
        await_queued(&l, i + 1);
    }
    ck_assert_tr_ok(tr_rwlock_read_unlock(&l));
    for (int i = 0; i < ORDER_N; i++)
        join_rc(t[i]);
    for (int i = 0; i < ORDER_N; i++)
        ck_assert_int_eq(order[i], i);
    tr_runtime_free(&rt);
}
END_TEST

/* multithreaded: four writers adding 2, 3, 5, 7 a thousand times each. */
static tr_rwlock mt_lock;
static unsigned mt_value;

static void *mt_writer(void *arg) {
    unsigned add = (unsigned)(uintptr_t)arg;
    for (int i = 0; i < 1000; i++) {
        ck_assert_tr_ok(tr_rwlock_write(&mt_lock, TR_TEST_DEADLINE()));
        unsigned v = mt_value;
        if (i % 7 == 0)
            tr_yield();
        mt_value = v + add;
        ck_assert_tr_ok(tr_rwlock_write_unlock(&mt_lock));
    }
    return NULL;
}

START_TEST(test_multithreaded) {
    tr_runtime *rt = tr_test_runtime(4);
    tr_rwlock_init(&mt_lock);
    mt_value = 0;
    unsigned adds[4] = {2, 3, 5, 7};
    tr_task *t[4];
    for (int i = 0; i < 4; i++)
        t[i] = spawn_on(rt, i, mt_writer, (void *)(uintptr_t)adds[i]);
    for (int i = 0; i < 4; i++)
        join_rc(t[i]);
    ck_assert_tr_ok(tr_rwlock_read(&mt_lock, TR_TEST_DEADLINE()));
    ck_assert_uint_eq(mt_value, 17000);
    ck_assert_tr_ok(tr_rwlock_read_unlock(&mt_lock));
    tr_runtime_free(&rt);
}
END_TEST

START_TEST(test_try_read_try_write) {
    tr_rwlock l;
    tr_rwlock_init(&l);
    ck_assert_tr_ok(tr_rwlock_read(&l, 0)); /* try_write */
    ck_assert_tr_err(tr_rwlock_try_write(&l), TR_EBUSY);
    ck_assert_tr_ok(tr_rwlock_read_unlock(&l));
    ck_assert_tr_ok(tr_rwlock_try_write(&l));
    ck_assert_tr_ok(tr_rwlock_write_unlock(&l));

    ck_assert_tr_ok(tr_rwlock_try_read(&l)); /* try_read_try_write */
    ck_assert_tr_err(tr_rwlock_try_write(&l), TR_EBUSY);
    ck_assert_tr_ok(tr_rwlock_try_read(&l));
    ck_assert_tr_ok(tr_rwlock_read_unlock(&l));
    ck_assert_tr_ok(tr_rwlock_read_unlock(&l));
    ck_assert_tr_ok(tr_rwlock_try_write(&l));
    ck_assert_tr_err(tr_rwlock_try_read(&l), TR_EBUSY);
    ck_assert_tr_err(tr_rwlock_try_write(&l), TR_EBUSY);
    ck_assert_tr_ok(tr_rwlock_write_unlock(&l));
    ck_assert_tr_ok(tr_rwlock_try_read(&l));
    ck_assert_tr_ok(tr_rwlock_read_unlock(&l));
}
END_TEST

/* ---- downgrade ------------------------------------------------------------------------ */

START_TEST(test_downgrade) {
    tr_runtime *rt = tr_test_runtime(2);
    tr_rwlock l;
    tr_rwlock_init_max(&l, 4);
    ck_assert_tr_ok(tr_rwlock_write(&l, 0));
    locker r1 = {0}, w = {.unlock = true}, r2 = {.unlock = true};
    tr_task *t1 = spawn_locker(rt, &r1, &l, false, 1);
    tr_task *tw = spawn_locker(rt, &w, &l, true, 2);
    tr_task *t2 = spawn_locker(rt, &r2, &l, false, 3);
    ck_assert_tr_ok(tr_rwlock_downgrade(&l));
    ck_assert_tr_err(tr_rwlock_downgrade(&l), TR_EPERM); /* no longer the writer */
    /* r1, ahead of the writer, gets in; r2, behind it, does not. */
    ck_assert_tr_ok(join_rc(t1));
    ck_assert_int_eq(queued(&l), 2);
    ck_assert(!atomic_load(&w.done));
    ck_assert(!atomic_load(&r2.done));
    ck_assert_tr_err(tr_rwlock_try_read(&l), TR_EBUSY);
    ck_assert_tr_ok(tr_rwlock_read_unlock(&l)); /* ours, downgraded */
    ck_assert(!atomic_load(&w.done));
    ck_assert_tr_ok(tr_rwlock_read_unlock(&l)); /* r1's (readers are not told apart) */
    ck_assert_tr_ok(join_rc(tw));
    ck_assert_tr_ok(join_rc(t2));
    ck_assert_int_eq(tr_sem_available_permits(&l.sem), 4);

    /* Downgrading with max 1 keeps the one permit; a reader still waits. */
    tr_rwlock_init_max(&l, 1);
    ck_assert_tr_ok(tr_rwlock_write(&l, 0));
    ck_assert_tr_ok(tr_rwlock_downgrade(&l));
    ck_assert_tr_err(tr_rwlock_try_read(&l), TR_EBUSY);
    ck_assert_tr_ok(tr_rwlock_read_unlock(&l));
    ck_assert_tr_ok(tr_rwlock_destroy(&l));
    tr_runtime_free(&rt);
}
END_TEST

/* ---- owner rules -------------------------------------------------------------------------- */

static void *owner_rules(void *arg) {
    tr_rwlock *l = arg;
    ck_assert_tr_err(tr_rwlock_write_unlock(l), TR_EPERM);
    ck_assert_tr_err(tr_rwlock_read_unlock(l), TR_EPERM); /* nobody reads */
    ck_assert_tr_err(tr_rwlock_downgrade(l), TR_EPERM);
    ck_assert_tr_ok(tr_rwlock_write(l, TR_TEST_DEADLINE()));
    ck_assert_tr_err(tr_rwlock_write(l, TR_TEST_DEADLINE()), TR_EDEADLK);
    ck_assert_tr_err(tr_rwlock_read(l, TR_TEST_DEADLINE()), TR_EDEADLK);
    ck_assert_tr_err(tr_rwlock_try_write(l), TR_EBUSY);
    ck_assert_tr_err(tr_rwlock_read_unlock(l), TR_EPERM); /* a writer holds it */
    tr_clause c[2];
    tr_rwlock_write_clause(&c[0], l);
    tr_rwlock_read_clause(&c[1], l);
    ck_assert_int_eq(tr_select(&c[0], 1, TR_TEST_DEADLINE(), 0), 0);
    ck_assert_tr_err(c[0].result, TR_EDEADLK);
    ck_assert_int_eq(tr_select(&c[1], 1, TR_TEST_DEADLINE(), 0), 0);
    ck_assert_tr_err(c[1].result, TR_EDEADLK);
    ck_assert_tr_ok(tr_rwlock_write_unlock(l));
    ck_assert_tr_err(tr_rwlock_write_unlock(l), TR_EPERM);
    ck_assert_int_eq(tr_sem_available_permits(&l->sem), l->max_readers);
    return NULL;
}

static void *unlock_write_other(void *arg) { return RC(tr_rwlock_write_unlock(arg)); }

START_TEST(test_owner_rules) {
    tr_rwlock l;
    tr_rwlock_init(&l);
    owner_rules(&l);
    tr_runtime *rt = tr_test_runtime(1);
    ck_assert_tr_ok(tr_runtime_block_on(rt, owner_rules, &l, NULL));
    /* Another task or thread cannot unlock our write lock. */
    ck_assert_tr_ok(tr_rwlock_write(&l, 0));
    tr_task *t = spawn_on(rt, 0, unlock_write_other, &l);
    ck_assert_int_eq(join_rc(t), TR_EPERM);
    pthread_t th;
    void *r;
    ck_assert_int_eq(pthread_create(&th, NULL, unlock_write_other, &l), 0);
    pthread_join(th, &r);
    ck_assert_int_eq((int)(intptr_t)r, TR_EPERM);
    ck_assert_tr_ok(tr_rwlock_write_unlock(&l));
    tr_runtime_free(&rt);
}
END_TEST

/* ---- debug report --------------------------------------------------------------------- */

static void *write_and_report(void *arg) {
    tr_rwlock *l = arg;
    ck_assert_tr_ok(tr_rwlock_write(l, TR_TEST_DEADLINE()));
    int held = tr_lock_debug_report(NULL); /* what the task-exit hook will do */
#ifdef TR_DEBUG
    ck_assert_int_eq(held, 1);
#else
    ck_assert_int_eq(held, 0);
#endif
    ck_assert_tr_ok(tr_rwlock_downgrade(l));
    ck_assert_int_eq(tr_lock_debug_report(NULL), 0); /* readers are not tracked */
    ck_assert_tr_ok(tr_rwlock_read_unlock(l));
    return NULL;
}

START_TEST(test_debug_report) {
    tr_rwlock l;
    tr_rwlock_init(&l);
    tr_rwlock_set_name(&l, "config");
    tr_spawn_opts o = {.name = "publisher"};
    tr_runtime *rt = tr_test_runtime(1);
    tr_task *t;
    ck_assert_tr_ok(tr_spawn_ex(rt, &o, &t, write_and_report, &l));
    join_rc(t);
    write_and_report(&l); /* a plain thread */
    ck_assert_tr_ok(tr_rwlock_destroy(&l));
    tr_runtime_free(&rt);
}
END_TEST

/* ---- select ---------------------------------------------------------------------------------- */

static tr_rwlock sel_l1, sel_l2;
static atomic_int sel_go;

static void *write_l2_until_go(void *arg) {
    (void)arg;
    ck_assert_tr_ok(tr_rwlock_write(&sel_l2, TR_TEST_DEADLINE()));
    atomic_store(&sel_go, 1);
    await_queued(&sel_l2, 1); /* the select's read clause is queued */
    ck_assert_int_eq(queued(&sel_l1), 1);
    ck_assert_tr_ok(tr_rwlock_write_unlock(&sel_l2));
    return NULL;
}

START_TEST(test_select) {
    tr_runtime *rt = tr_test_runtime(2);
    tr_rwlock_init_max(&sel_l1, 8);
    tr_rwlock_init_max(&sel_l2, 8);
    atomic_store(&sel_go, 0);
    tr_clause c[2];

    /* Both free: the write clause (first) wins; the read takes nothing. */
    tr_rwlock_write_clause(&c[0], &sel_l1);
    tr_rwlock_read_clause(&c[1], &sel_l2);
    ck_assert_int_eq(tr_select(c, 2, TR_TEST_DEADLINE(), 0), 0);
    ck_assert_tr_ok(c[0].result);
    ck_assert_int_eq(tr_sem_available_permits(&sel_l2.sem), 8);
    ck_assert_tr_ok(tr_rwlock_write_unlock(&sel_l1)); /* we are its writer */

    /* The write clause queues on l1 behind a reader, soaking up 7 of 8
     * permits; the read clause on l2 wins when l2's writer lets go; the
     * partial grant goes back. */
    tr_task *t = spawn_on(rt, 0, write_l2_until_go, NULL);
    await_count(&sel_go, 1);
    locker reader = {0};
    pthread_t th;
    reader.l = &sel_l1;
    ck_assert_int_eq(pthread_create(&th, NULL, locker_body, &reader), 0);
    pthread_join(th, NULL); /* a plain thread now holds a read lock on l1 */
    ck_assert_tr_ok(reader.rc);
    tr_rwlock_write_clause(&c[0], &sel_l1);
    tr_rwlock_read_clause(&c[1], &sel_l2);
    ck_assert_int_eq(tr_select(c, 2, TR_TEST_DEADLINE(), 0), 1);
    ck_assert_tr_ok(c[1].result);
    ck_assert_tr_ok(join_rc(t));
    ck_assert_int_eq(queued(&sel_l1), 0);
    ck_assert_int_eq(tr_sem_available_permits(&sel_l1.sem), 7);
    ck_assert_tr_ok(tr_rwlock_try_read(&sel_l1)); /* no writer queued any more */
    ck_assert_tr_ok(tr_rwlock_read_unlock(&sel_l1));
    ck_assert_tr_ok(tr_rwlock_read_unlock(&sel_l1)); /* the thread's */
    ck_assert_tr_ok(tr_rwlock_read_unlock(&sel_l2));

    /* Timeout: nothing held. */
    ck_assert_tr_ok(tr_rwlock_read(&sel_l1, 0));
    tr_rwlock_write_clause(&c[0], &sel_l1);
    ck_assert_tr_err(tr_select(c, 1, tr_after_ms(10), 0), TR_ETIMEDOUT);
    ck_assert_int_eq(tr_sem_available_permits(&sel_l1.sem), 7);
    ck_assert_tr_ok(tr_rwlock_read_unlock(&sel_l1));
    ck_assert_tr_ok(tr_rwlock_destroy(&sel_l1));
    ck_assert_tr_ok(tr_rwlock_destroy(&sel_l2));
    tr_runtime_free(&rt);
}
END_TEST

/* ---- hammer: readers and writers, 4 workers + plain threads -------------------------------- */

#define H_MAX_READERS 3
#define H_TASKS 10
#define H_THREADS 2
#define H_ITERS 3000

static tr_rwlock hl;
static atomic_int h_readers, h_writers;
static long h_data; /* written only under the write lock */
static atomic_long h_writes, h_reads;

static void *hammer(void *arg) {
    unsigned seed = (unsigned)(uintptr_t)arg;
    bool task = tr_task_self() != NULL;
    for (int i = 0; i < H_ITERS; i++) {
        bool write = rand_r(&seed) % 4 == 0;
        int64_t dl = rand_r(&seed) % 5 == 0 ? tr_after_us(rand_r(&seed) % 100) : TR_TEST_DEADLINE();
        int rc;
        if (rand_r(&seed) % 8 == 0) {
            tr_clause c;
            if (write)
                tr_rwlock_write_clause(&c, &hl);
            else
                tr_rwlock_read_clause(&c, &hl);
            rc = tr_select(&c, 1, dl, 0);
            if (rc == 0)
                rc = c.result;
        } else if (rand_r(&seed) % 8 == 0) {
            rc = write ? tr_rwlock_try_write(&hl) : tr_rwlock_try_read(&hl);
            if (rc == TR_EBUSY)
                continue;
        } else {
            rc = write ? tr_rwlock_write(&hl, dl) : tr_rwlock_read(&hl, dl);
        }
        if (rc == TR_ECANCELED)
            return NULL;
        if (rc == TR_ETIMEDOUT)
            continue;
        ck_assert_tr_ok(rc);
        bool yield = rand_r(&seed) % 8 == 0;
        if (write) {
            ck_assert_int_eq(atomic_fetch_add(&h_writers, 1), 0);
            ck_assert_int_eq(atomic_load(&h_readers), 0);
            long v = h_data;
            if (yield)
                task ? (void)tr_yield() : (void)sched_yield();
            h_data = v + 1;
            atomic_fetch_add(&h_writes, 1);
            bool down = rand_r(&seed) % 3 == 0;
            atomic_fetch_sub(&h_writers, 1);
            if (down) { /* keep reading what we wrote */
                atomic_fetch_add(&h_readers, 1);
                ck_assert_tr_ok(tr_rwlock_downgrade(&hl));
                ck_assert_int_eq(h_data, v + 1);
                atomic_fetch_sub(&h_readers, 1);
                ck_assert_tr_ok(tr_rwlock_read_unlock(&hl));
            } else {
                ck_assert_tr_ok(tr_rwlock_write_unlock(&hl));
            }
        } else {
            int r = atomic_fetch_add(&h_readers, 1) + 1;
            ck_assert_int_le(r, H_MAX_READERS);
            ck_assert_int_eq(atomic_load(&h_writers), 0);
            long v = h_data;
            if (yield)
                task ? (void)tr_yield() : (void)sched_yield();
            ck_assert_int_eq(h_data, v); /* no writer got in */
            atomic_fetch_add(&h_reads, 1);
            atomic_fetch_sub(&h_readers, 1);
            ck_assert_tr_ok(tr_rwlock_read_unlock(&hl));
        }
    }
    return NULL;
}

static bool hammered_enough(void) {
    return atomic_load(&h_writes) + atomic_load(&h_reads) >= 3000;
}

START_TEST(test_hammer) {
    tr_rwlock_init_max(&hl, H_MAX_READERS);
    atomic_store(&h_readers, 0);
    atomic_store(&h_writers, 0);
    atomic_store(&h_writes, 0);
    atomic_store(&h_reads, 0);
    h_data = 0;
    tr_runtime *rt = tr_test_runtime(4);
    tr_test_hammer(rt, hammer, H_TASKS, H_THREADS, 70, hammered_enough);
    ck_assert_int_eq(h_data, atomic_load(&h_writes));
    ck_assert_int_gt(atomic_load(&h_writes), 0);
    ck_assert_int_gt(atomic_load(&h_reads), 0);
    ck_assert_int_eq(tr_sem_available_permits(&hl.sem), H_MAX_READERS); /* nothing leaked */
    ck_assert_int_eq(queued(&hl), 0);
    ck_assert_tr_ok(tr_rwlock_destroy(&hl));
    tr_runtime_free(&rt);
}
END_TEST

/* Readers and writers queued and cancelled at random: every permit is back. */
#define C_WAITERS 40

START_TEST(test_random_cancel) {
    tr_runtime *rt = tr_test_runtime(4);
    tr_rwlock l;
    tr_rwlock_init_max(&l, 5);
    unsigned seed = 3 + (unsigned)_i;
    ck_assert_tr_ok(tr_rwlock_write(&l, 0));
    locker k[C_WAITERS];
    tr_task *t[C_WAITERS];
    for (int i = 0; i < C_WAITERS; i++) {
        k[i] = (locker){.l = &l, .write = rand_r(&seed) % 3 == 0, .unlock = true,
                        .deadline = rand_r(&seed) % 3 ? 0 : tr_after_ms(rand_r(&seed) % 5)};
        t[i] = spawn_on(rt, i, locker_body, &k[i]);
    }
    for (int i = 0; i < C_WAITERS; i++) {
        if (rand_r(&seed) % 2)
            /* The same task may be picked again: repeated cancels race
             * the worker's handling of the first, as a supervisor's kill
             * after a cancel does. */
            ck_assert_tr_ok(tr_task_cancel(t[rand_r(&seed) % C_WAITERS]));
        if (i == C_WAITERS / 2)
            ck_assert_tr_ok(tr_rwlock_downgrade(&l));
        if (rand_r(&seed) % 4 == 0)
            sched_yield();
    }
    ck_assert_tr_ok(tr_rwlock_read_unlock(&l));
    for (int i = 0; i < C_WAITERS; i++) {
        join_rc(t[i]);
        ck_assert(k[i].rc == 0 || k[i].rc == TR_ECANCELED || k[i].rc == TR_ETIMEDOUT);
    }
    ck_assert_int_eq(tr_sem_available_permits(&l.sem), 5);
    ck_assert_int_eq(queued(&l), 0);
    ck_assert_tr_ok(tr_rwlock_destroy(&l));
    tr_runtime_free(&rt);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("rwlock");
    TCase *tc = tr_tcase("tokio");
    tcase_add_test(tc, test_invalid);
    tcase_add_test(tc, test_read_shared);
    tcase_add_loop_test(tc, test_pending_then_granted, 0, 3);
    tcase_add_test(tc, test_exhaust_reading);
    tcase_add_test(tc, test_write_preferring);
    tcase_add_loop_test(tc, test_writer_leaves, 0, 2);
    tcase_add_test(tc, test_uncontested);
    tcase_add_test(tc, test_write_order);
    tcase_add_test(tc, test_multithreaded);
    tcase_add_test(tc, test_try_read_try_write);
    suite_add_tcase(s, tc);
    tc = tr_tcase("more");
    tcase_add_test(tc, test_downgrade);
    tcase_add_test(tc, test_owner_rules);
    tcase_add_test(tc, test_select);
    tcase_add_test(tc, test_debug_report);
    suite_add_tcase(s, tc);
    tc = tr_tcase("stress");
    tcase_add_test(tc, test_hammer);
    tcase_add_loop_test(tc, test_random_cancel, 0, 3);
    suite_add_tcase(s, tc);
    return s;
}

TR_TEST_MAIN(suite)
