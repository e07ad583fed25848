/* test_signal.c — waiting for Unix signals from tasks and plain threads.
 *
 * Signals are sent to ourselves with raise() (to the calling thread) and
 * kill(getpid()) (to whichever thread the kernel picks), from tasks on
 * worker 0 and on other workers, so that the path "handler on some thread
 * -> worker 0's loop -> a waiter on any worker" is crossed in every
 * direction.  SIGHUP and SIGUSR1 kill the process by default, so a watcher
 * that was not really started when tr_signal_open() returned fails the test
 * loudly rather than flakily.
 *
 * Ordering comes from the deliveries themselves: "the callback has run" is
 * known when a receive on a second handle returns, which is when the first
 * handle's count can be checked without a sleep.  Every wait has a
 * deadline.  Tests run forked (Check's default), so the signal
 * dispositions one test changes do not leak into the next.
 *
 * kill() may land on the main thread, which waits in a join meanwhile.
 * Those joins take a deadline: ThreadSanitizer runs a signal handler only
 * when the thread next enters the C library, and a futex wait without a
 * timeout is restarted by the kernel after the handler, never returning
 * to let it run; with a timeout the wait returns EINTR and the handler
 * runs.  (Outside TSan the handler runs at once wherever it lands.)
 *
 * Loop tests: _i even runs on 1 worker, odd on 4.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"






static void send_self(int signo, bool to_process) {
    if (to_process)
        ck_assert_int_eq(kill(getpid(), signo), 0);
    else
        ck_assert_int_eq(raise(signo), 0);
}

static void *handler_of(int signo) {
    struct sigaction sa;
    ck_assert_int_eq(sigaction(signo, NULL, &sa), 0);
    return (void *)sa.sa_handler;
}

/* ==== delivery ============================================================== */

typedef struct raise_args {
    int signo;
    bool to_process;
} raise_args;

static void *raise_body(void *arg) {
    raise_args *a = arg;
    tr_signal *s = NULL;
    ck_assert_tr_ok(tr_signal_open(NULL, a->signo, &s));
    ck_assert_int_eq(tr_signal_signo(s), a->signo);
    ck_assert_int_eq(tr_signal_pending(s), 0);
    send_self(a->signo, a->to_process);
    ck_assert_tr_ok(tr_signal_recv(s, TR_TEST_DEADLINE()));
    ck_assert_int_eq(tr_signal_pending(s), 0);
    ck_assert_tr_err(tr_signal_try_recv(s), TR_EEMPTY);
    /* Again, to show the watcher stays on after a delivery. */
    send_self(a->signo, !a->to_process);
    ck_assert_tr_ok(tr_signal_recv(s, TR_TEST_DEADLINE()));
    tr_signal_close(&s);
    ck_assert_ptr_null(s);
    /* The last close gave the signal back its default action. */
    ck_assert_ptr_eq(handler_of(a->signo), (void *)SIG_DFL);
    return NULL;
}

/* _i: bit 0 the worker count, bit 1 SIGHUP or SIGUSR1, bit 2 raise() or
 * kill(); the task runs on the last worker, so with 4 workers the wake-up
 * crosses from worker 0 to worker 3. */
START_TEST(test_raise_recv) {
    tr_runtime *rt = tr_test_runtime(workers_for(_i));
    raise_args a = {.signo = (_i & 2) ? SIGUSR1 : SIGHUP, .to_process = (_i & 4) != 0};
    tr_task *t = spawn_on(rt, tr_runtime_workers(rt) - 1, raise_body, &a);
    join_rc(t);
    tr_runtime_free(&rt);
}
END_TEST

/* Two handles both see a delivery; the one nobody waits on remembers it,
 * and deliveries that pile up are taken by one receive. */
static void *two_handles_body(void *arg) {
    (void)arg;
    tr_signal *a = NULL, *b = NULL;
    ck_assert_tr_ok(tr_signal_open(NULL, SIGUSR1, &a));
    ck_assert_tr_ok(tr_signal_open(NULL, SIGUSR1, &b));

    raise(SIGUSR1);
    ck_assert_tr_ok(tr_signal_recv(b, TR_TEST_DEADLINE())); /* the callback has run */
    ck_assert_int_eq(tr_signal_pending(a), 1);
    ck_assert_int_eq(tr_signal_pending(b), 0);

    raise(SIGUSR1);
    ck_assert_tr_ok(tr_signal_recv(b, TR_TEST_DEADLINE()));
    ck_assert_int_eq(tr_signal_pending(a), 2);

    /* One receive takes both, without waiting even with a past deadline. */
    ck_assert_tr_ok(tr_signal_recv(a, 0));
    ck_assert_int_eq(tr_signal_pending(a), 0);
    ck_assert_tr_err(tr_signal_recv(a, 0), TR_ETIMEDOUT);
    ck_assert_tr_err(tr_signal_try_recv(a), TR_EEMPTY);

    /* Closing one handle leaves the other catching. */
    tr_signal_close(&b);
    kill(getpid(), SIGUSR1);
    ck_assert_tr_ok(tr_signal_recv(a, TR_TEST_DEADLINE()));
    tr_signal_close(&a);
    return NULL;
}

START_TEST(test_two_handles_remember) {
    tr_runtime *rt = tr_test_runtime(workers_for(_i));
    join_rc(spawn_on(rt, tr_runtime_workers(rt) - 1, two_handles_body, NULL));
    tr_runtime_free(&rt);
}
END_TEST

/* Many tasks on every worker each hold a handle; one delivery reaches all. */
enum { FAN = 12 };

typedef struct fan_args {
    atomic_int opened;
    atomic_int got;
} fan_args;

static void *fan_waiter(void *arg) {
    fan_args *f = arg;
    tr_signal *s = NULL;
    ck_assert_tr_ok(tr_signal_open(NULL, SIGUSR2, &s));
    atomic_fetch_add(&f->opened, 1);
    int rc = tr_signal_recv(s, TR_TEST_DEADLINE());
    if (rc == 0)
        atomic_fetch_add(&f->got, 1);
    tr_signal_close(&s);
    return RC(rc);
}

static void *fan_main(void *arg) {
    fan_args *f = arg;
    tr_task *t[FAN];
    for (int i = 0; i < FAN; i++)
        t[i] = spawn_on(tr_runtime_current(), i, fan_waiter, f);
    await_count(&f->opened, FAN);
    kill(getpid(), SIGUSR2);
    for (int i = 0; i < FAN; i++)
        ck_assert_tr_ok(join_rc(t[i]));
    ck_assert_int_eq(atomic_load(&f->got), FAN);
    return NULL;
}

START_TEST(test_fan_out) {
    tr_runtime *rt = tr_test_runtime(workers_for(_i));
    fan_args f = {0};
    join_rc(spawn_on(rt, 0, fan_main, &f));
    tr_runtime_free(&rt);
}
END_TEST

/* Opens and closes racing on every worker leave the watcher in the right
 * state: caught while a handle is open, given back when none is. */
static void *churn_body(void *arg) {
    (void)arg;
    for (int i = 0; i < 50; i++) {
        tr_signal *s = NULL;
        ck_assert_tr_ok(tr_signal_open(NULL, SIGHUP, &s));
        if (i % 10 == 0) { /* while open, SIGHUP must not kill us */
            raise(SIGHUP);
            ck_assert_tr_ok(tr_signal_recv(s, TR_TEST_DEADLINE()));
        }
        tr_signal_close(&s);
    }
    return NULL;
}

START_TEST(test_open_close_churn) {
    tr_runtime *rt = tr_test_runtime(workers_for(_i));
    tr_task *t[4];
    for (int i = 0; i < 4; i++)
        t[i] = spawn_on(rt, i, churn_body, NULL);
    for (int i = 0; i < 4; i++)
        join_rc(t[i]);
    ck_assert_ptr_eq(handler_of(SIGHUP), (void *)SIG_DFL);
    tr_signal *s = NULL;
    ck_assert_tr_ok(tr_signal_open(rt, SIGHUP, &s));
    raise(SIGHUP);
    ck_assert_tr_ok(tr_signal_recv(s, TR_TEST_DEADLINE()));
    tr_signal_close(&s);
    tr_runtime_free(&rt);
}
END_TEST

/* ==== deadlines and cancellation ============================================= */

static void *deadline_body(void *arg) {
    (void)arg;
    tr_signal *s = NULL;
    ck_assert_tr_ok(tr_signal_open(tr_runtime_current(), SIGUSR2, &s));
    int64_t dl = tr_after_ms(50);
    ck_assert_tr_err(tr_signal_recv(s, dl), TR_ETIMEDOUT);
    ck_assert(tr_now() >= dl);
    ck_assert_tr_err(tr_signal_recv(s, 0), TR_ETIMEDOUT);
    ck_assert_tr_err(tr_signal_recv(s, tr_now() - 1), TR_ETIMEDOUT);
    /* A timed-out receive leaves nothing behind that could eat a delivery. */
    raise(SIGUSR2);
    ck_assert_tr_ok(tr_signal_recv(s, TR_TEST_DEADLINE()));
    tr_signal_close(&s);
    return NULL;
}

START_TEST(test_deadline_task) {
    tr_runtime *rt = tr_test_runtime(workers_for(_i));
    join_rc(spawn_on(rt, tr_runtime_workers(rt) - 1, deadline_body, NULL));
    tr_runtime_free(&rt);
}
END_TEST

typedef struct cancel_args {
    tr_signal *s;
    atomic_int started;
} cancel_args;

static void *cancel_waiter(void *arg) {
    cancel_args *c = arg;
    atomic_store(&c->started, 1);
    return RC(tr_signal_recv(c->s, TR_TEST_DEADLINE()));
}

/* A task parked in recv returns TR_ECANCELED when cancelled, and the
 * handle, still open, loses no delivery to the abandoned wait. */
static void *cancel_main(void *arg) {
    (void)arg;
    tr_runtime *rt = tr_runtime_current();
    cancel_args c = {0};
    ck_assert_tr_ok(tr_signal_open(rt, SIGUSR1, &c.s));
    tr_task *t = spawn_on(rt, tr_runtime_workers(rt) - 1, cancel_waiter, &c);
    await_count(&c.started, 1);
    /* On one worker this yield runs the waiter up to its park. */
    tr_yield();
    ck_assert_tr_ok(tr_task_cancel(t));
    ck_assert_tr_err(join_rc(t), TR_ECANCELED);

    /* Cancelled before it even waits. */
    t = spawn_on(rt, 0, cancel_waiter, &c);
    ck_assert_tr_ok(tr_task_cancel(t));
    ck_assert_tr_err(join_rc(t), TR_ECANCELED);

    raise(SIGUSR1);
    ck_assert_tr_ok(tr_signal_recv(c.s, TR_TEST_DEADLINE()));
    tr_signal_close(&c.s);
    return NULL;
}

START_TEST(test_cancel) {
    tr_runtime *rt = tr_test_runtime(workers_for(_i));
    ck_assert_tr_ok(tr_runtime_block_on(rt, cancel_main, NULL, NULL));
    tr_runtime_free(&rt);
}
END_TEST

/* Shutting the runtime down cancels a task parked in recv; it closes its
 * handle on the way out (in a cancelled task, so without waiting for the
 * watcher to stop) and freeing the runtime finishes the job. */
typedef struct shutdown_args {
    tr_signal *s;
    atomic_int started;
    atomic_int rc;
} shutdown_args;

static void *shutdown_waiter(void *arg) {
    shutdown_args *a = arg;
    atomic_store(&a->started, 1);
    int rc = tr_signal_recv(a->s, TR_TEST_DEADLINE());
    tr_signal_close(&a->s);
    atomic_store(&a->rc, rc);
    return NULL;
}

START_TEST(test_shutdown_cancels_recv) {
    tr_runtime *rt = tr_test_runtime(workers_for(_i));
    shutdown_args a = {0};
    atomic_store(&a.rc, 1);
    void *before = handler_of(SIGTERM); /* Check's own, in its forked child */
    ck_assert_tr_ok(tr_signal_open(rt, SIGTERM, &a.s));
    ck_assert_ptr_ne(handler_of(SIGTERM), before);
    tr_task_detach(spawn_on(rt, tr_runtime_workers(rt) - 1, shutdown_waiter, &a));
    await_count(&a.started, 1);
    tr_runtime_free(&rt);
    ck_assert_tr_err(atomic_load(&a.rc), TR_ECANCELED);
    ck_assert_ptr_null(a.s);
    ck_assert_ptr_eq(handler_of(SIGTERM), before);
}
END_TEST

/* A receive parked in a handle that gets closed returns TR_ECLOSED.  On one
 * worker, so that a yield puts the waiter in its park before the close. */
static void *closed_waiter(void *arg) { return RC(tr_signal_recv(arg, TR_TEST_DEADLINE())); }

static void *close_wakes_main(void *arg) {
    (void)arg;
    tr_signal *s = NULL, *keep = NULL;
    ck_assert_tr_ok(tr_signal_open(NULL, SIGUSR1, &keep));
    ck_assert_tr_ok(tr_signal_open(NULL, SIGUSR1, &s));
    tr_task *t = spawn_on(tr_runtime_current(), 0, closed_waiter, s);
    tr_yield();
    tr_signal_close(&s);
    ck_assert_tr_err(join_rc(t), TR_ECLOSED);
    raise(SIGUSR1);
    ck_assert_tr_ok(tr_signal_recv(keep, TR_TEST_DEADLINE()));
    tr_signal_close(&keep);
    return NULL;
}

START_TEST(test_close_wakes_waiter) {
    tr_runtime *rt = tr_test_runtime(1);
    ck_assert_tr_ok(tr_runtime_block_on(rt, close_wakes_main, NULL, NULL));
    tr_runtime_free(&rt);
}
END_TEST

/* ==== plain threads ============================================================ */

typedef struct thread_args {
    tr_signal *s;
    atomic_int started;
    int rc;
} thread_args;

static void *thread_recv(void *arg) {
    thread_args *a = arg;
    atomic_store(&a->started, 1);
    a->rc = tr_signal_recv(a->s, TR_TEST_DEADLINE());
    return NULL;
}

START_TEST(test_plain_thread) {
    tr_runtime *rt = tr_test_runtime(workers_for(_i));
    tr_signal *s = NULL;
    ck_assert_tr_err(tr_signal_open(NULL, SIGUSR1, &s), TR_EINVAL); /* no runtime here */
    ck_assert_ptr_null(s);
    ck_assert_tr_ok(tr_signal_open(rt, SIGUSR1, &s));
    kill(getpid(), SIGUSR1);
    ck_assert_tr_ok(tr_signal_recv(s, TR_TEST_DEADLINE()));
    int64_t dl = tr_after_ms(30);
    ck_assert_tr_err(tr_signal_recv(s, dl), TR_ETIMEDOUT);
    ck_assert(tr_now() >= dl);

    /* Another thread waits; this one sends. */
    thread_args a = {.s = s};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, thread_recv, &a), 0);
    await_count(&a.started, 1);
    raise(SIGUSR1);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_tr_ok(a.rc);
    tr_signal_close(&s);
    tr_runtime_free(&rt);
}
END_TEST

/* A handle outlives its runtime: deliveries already seen are handed out,
 * then every receive says TR_ECLOSED, and a thread parked in one is woken. */
START_TEST(test_runtime_freed_first) {
    tr_runtime *rt = tr_test_runtime(workers_for(_i));
    tr_signal *seen = NULL, *sync = NULL, *parked = NULL;
    ck_assert_tr_ok(tr_signal_open(rt, SIGHUP, &seen));
    ck_assert_tr_ok(tr_signal_open(rt, SIGHUP, &sync));
    ck_assert_tr_ok(tr_signal_open(rt, SIGUSR2, &parked));
    raise(SIGHUP);
    ck_assert_tr_ok(tr_signal_recv(sync, TR_TEST_DEADLINE()));

    thread_args a = {.s = parked};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, thread_recv, &a), 0);
    await_count(&a.started, 1);
    tr_runtime_free(&rt);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_tr_err(a.rc, TR_ECLOSED);

    ck_assert_ptr_eq(handler_of(SIGHUP), (void *)SIG_DFL);
    ck_assert_int_eq(tr_signal_pending(seen), 1);
    ck_assert_tr_ok(tr_signal_recv(seen, TR_TEST_DEADLINE()));
    ck_assert_tr_err(tr_signal_recv(seen, TR_TEST_DEADLINE()), TR_ECLOSED);
    ck_assert_tr_err(tr_signal_try_recv(sync), TR_ECLOSED);
    tr_signal_close(&seen);
    tr_signal_close(&sync);
    tr_signal_close(&parked);
}
END_TEST

/* ==== dispositions and runtimes ================================================= */

/* The disposition a signal had before the first open comes back with the
 * last close, even if it was not the default. */
START_TEST(test_disposition_restored) {
    tr_runtime *rt = tr_test_runtime(workers_for(_i));
    struct sigaction ign = {0};
    ign.sa_handler = SIG_IGN;
    ck_assert_int_eq(sigaction(SIGUSR2, &ign, NULL), 0);

    tr_signal *a = NULL, *b = NULL;
    ck_assert_tr_ok(tr_signal_open(rt, SIGUSR2, &a));
    ck_assert_tr_ok(tr_signal_open(rt, SIGUSR2, &b));
    ck_assert_ptr_ne(handler_of(SIGUSR2), (void *)SIG_IGN); /* caught now */
    tr_signal_close(&a);
    ck_assert_ptr_ne(handler_of(SIGUSR2), (void *)SIG_IGN); /* b still open */
    raise(SIGUSR2);
    ck_assert_tr_ok(tr_signal_recv(b, TR_TEST_DEADLINE()));
    tr_signal_close(&b);
    ck_assert_ptr_eq(handler_of(SIGUSR2), (void *)SIG_IGN);
    raise(SIGUSR2); /* ignored again: harmless */
    tr_runtime_free(&rt);
}
END_TEST

/* One signal, one runtime at a time; other signals are free to go to the
 * other runtime, and a close hands the signal over at once. */
START_TEST(test_busy_other_runtime) {
    tr_runtime *rt1 = tr_test_runtime(1), *rt2 = tr_test_runtime(4);
    tr_signal *s1 = NULL, *s2 = NULL, *other = NULL;
    ck_assert_tr_ok(tr_signal_open(rt1, SIGUSR2, &s1));
    ck_assert_tr_err(tr_signal_open(rt2, SIGUSR2, &s2), TR_EBUSY);
    ck_assert_ptr_null(s2);
    ck_assert_tr_ok(tr_signal_open(rt2, SIGUSR1, &other));
    tr_signal_close(&s1);
    ck_assert_tr_ok(tr_signal_open(rt2, SIGUSR2, &s2));
    raise(SIGUSR2);
    ck_assert_tr_ok(tr_signal_recv(s2, TR_TEST_DEADLINE()));
    ck_assert_tr_err(tr_signal_open(rt1, SIGUSR2, &s1), TR_EBUSY);
    tr_signal_close(&s2);
    tr_signal_close(&other);

    /* Freeing a runtime hands its signals back too. */
    ck_assert_tr_ok(tr_signal_open(rt2, SIGUSR1, &other));
    tr_runtime_free(&rt2);
    ck_assert_tr_ok(tr_signal_open(rt1, SIGUSR1, &s1));
    kill(getpid(), SIGUSR1);
    ck_assert_tr_ok(tr_signal_recv(s1, TR_TEST_DEADLINE()));
    tr_signal_close(&s1);
    tr_signal_close(&other);
    tr_runtime_free(&rt1);
}
END_TEST

/* ==== bad arguments ============================================================== */

START_TEST(test_bad_args) {
    tr_runtime *rt = tr_test_runtime(1);
    static const int bad[] = {0, -1, NSIG, 1000, SIGKILL, SIGSTOP, SIGSEGV, SIGBUS, SIGFPE,
                              SIGILL, 32};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tr_signal *s = (tr_signal *)&s; /* anything but NULL: must come back NULL */
        ck_assert_tr_err(tr_signal_open(rt, bad[i], &s), TR_EINVAL);
        ck_assert_ptr_null(s);
    }
    ck_assert_tr_err(tr_signal_open(rt, SIGUSR1, NULL), TR_EINVAL);
    ck_assert_tr_err(tr_signal_recv(NULL, 0), TR_EINVAL);
    ck_assert_tr_err(tr_signal_try_recv(NULL), TR_EINVAL);
    ck_assert_int_eq(tr_signal_pending(NULL), 0);
    ck_assert_int_eq(tr_signal_signo(NULL), 0);
    tr_signal_close(NULL);
    tr_signal *none = NULL;
    tr_signal_close(&none);
    /* A real-time signal is fine. */
    tr_signal *rtsig = NULL;
    ck_assert_tr_ok(tr_signal_open(rt, SIGRTMIN + 1, &rtsig));
    raise(SIGRTMIN + 1);
    ck_assert_tr_ok(tr_signal_recv(rtsig, TR_TEST_DEADLINE()));
    tr_signal_close(&rtsig);
    tr_runtime_free(&rt);
}
END_TEST

/* A cancelled task cannot open; a shut-down runtime refuses. */
static void *cancelled_open(void *arg) {
    (void)arg;
    tr_task_cancel(tr_task_self());
    tr_signal *s = NULL;
    int rc = tr_signal_open(NULL, SIGUSR1, &s);
    ck_assert_ptr_null(s);
    return RC(rc);
}

START_TEST(test_open_refused) {
    tr_runtime *rt = tr_test_runtime(1);
    void *res = NULL;
    ck_assert_tr_ok(tr_runtime_block_on(rt, cancelled_open, NULL, &res));
    ck_assert_tr_err((int)(intptr_t)res, TR_ECANCELED);
    ck_assert_tr_ok(tr_runtime_shutdown(rt, TR_TEST_DEADLINE()));
    tr_signal *s = NULL;
    ck_assert_tr_err(tr_signal_open(rt, SIGUSR1, &s), TR_ESHUTDOWN);
    ck_assert_ptr_null(s);
    tr_runtime_free(&rt);
}
END_TEST

static Suite *signal_suite(void) {
    Suite *s = suite_create("signal");
    TCase *tc = tr_tcase("delivery");
    tcase_add_loop_test(tc, test_raise_recv, 0, 8);
    tcase_add_loop_test(tc, test_two_handles_remember, 0, 2);
    tcase_add_loop_test(tc, test_fan_out, 0, 2);
    tcase_add_loop_test(tc, test_open_close_churn, 0, 2);
    suite_add_tcase(s, tc);

    tc = tr_tcase("waiting");
    tcase_add_loop_test(tc, test_deadline_task, 0, 2);
    tcase_add_loop_test(tc, test_cancel, 0, 2);
    tcase_add_loop_test(tc, test_shutdown_cancels_recv, 0, 2);
    tcase_add_test(tc, test_close_wakes_waiter);
    tcase_add_loop_test(tc, test_plain_thread, 0, 2);
    tcase_add_loop_test(tc, test_runtime_freed_first, 0, 2);
    suite_add_tcase(s, tc);

    tc = tr_tcase("ownership");
    tcase_add_loop_test(tc, test_disposition_restored, 0, 2);
    tcase_add_test(tc, test_busy_other_runtime);
    tcase_add_test(tc, test_bad_args);
    tcase_add_test(tc, test_open_refused);
    suite_add_tcase(s, tc);
    return s;
}

TR_TEST_MAIN(signal_suite)
