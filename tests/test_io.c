/* test_io.c — fd readiness and socket I/O from tasks and plain threads.
 *
 * What matters about these helpers is the waiting, so every test makes
 * something wait for real and checks how it ended: woken by a writer on
 * another worker or thread, at the deadline (and not before it), or by
 * cancellation.  Ordering is forced by the data itself (a ping-pong where
 * each side writes only after it has read) rather than by sleeps, so a
 * slow sanitizer build changes the timing but not the outcome.  Every wait
 * has a deadline; a wake-up that never comes fails the test with
 * TR_ETIMEDOUT instead of hanging it.  Network traffic is loopback only,
 * 127.0.0.1.
 *
 * Most tests run as loop tests over the worker count: 1 worker (every
 * task shares one loop: wakes are local) and 4 (tasks placed on different
 * workers: wakes cross threads).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "testutil.h"






static void make_pipe(int p[2]) {
    ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
    ck_assert_tr_ok(tr_fd_nonblock(p[0]));
    ck_assert_tr_ok(tr_fd_nonblock(p[1]));
}

static void make_socketpair(int s[2]) {
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
    ck_assert_tr_ok(tr_fd_nonblock(s[0]));
    ck_assert_tr_ok(tr_fd_nonblock(s[1]));
}

static void close2(int p[2]) {
    close(p[0]);
    close(p[1]);
}

/* Waits (spinning politely) until *flag is set; for the few tests that
 * need "the other side has at least started" rather than an ordering the
 * data can carry.  Bounded, so a bug fails instead of hanging. */
static void await_flag(atomic_int *flag) {
    int64_t dl = TR_TEST_DEADLINE();
    while (!atomic_load(flag)) {
        ck_assert_msg(tr_now() < dl, "flag never set");
        if (tr_task_self())
            tr_yield();
        else
            sched_yield();
    }
}

static bool fd_has_flags(int fd) {
    int fl = fcntl(fd, F_GETFL), fdfl = fcntl(fd, F_GETFD);
    return fl >= 0 && (fl & O_NONBLOCK) && fdfl >= 0 && (fdfl & FD_CLOEXEC);
}

/* ==== deadlines =========================================================== */

/* Waits that nobody satisfies end at their deadline, never before it and
 * not long after.  Run from a task and from a plain thread alike. */
static void *deadline_body(void *arg) {
    (void)arg;
    int p[2];
    make_pipe(p);
    char c;

    int64_t dl = tr_after_ms(50);
    ck_assert_tr_err(tr_fd_wait(p[0], TR_READABLE, dl), TR_ETIMEDOUT);
    int64_t now = tr_now();
    ck_assert_msg(now >= dl, "fd_wait returned %lld ns early", (long long)(dl - now));
    ck_assert_msg(now - dl < 2000000000LL, "fd_wait returned %lld ms late",
                  (long long)((now - dl) / 1000000));

    dl = tr_after_ms(30);
    ck_assert_int_eq(tr_read(p[0], &c, 1, dl), TR_ETIMEDOUT);
    ck_assert(tr_now() >= dl);

    /* A deadline in the past: "do not wait", yet a ready fd is ready. */
    ck_assert_tr_err(tr_fd_wait(p[0], TR_READABLE, 0), TR_ETIMEDOUT);
    ck_assert_tr_err(tr_fd_wait(p[0], TR_READABLE, INT64_MIN), TR_ETIMEDOUT);
    ck_assert_int_eq(tr_read(p[0], &c, 1, 0), TR_ETIMEDOUT);
    ck_assert_int_eq(tr_read(p[0], &c, 1, INT64_MIN), TR_ETIMEDOUT);
    ck_assert_tr_ok(tr_fd_wait(p[1], TR_WRITABLE, 0));
    ck_assert_tr_ok(tr_fd_wait(p[1], TR_READABLE | TR_WRITABLE, tr_now() - 1));
    ck_assert_int_eq(write(p[1], "x", 1), 1);
    ck_assert_tr_ok(tr_fd_wait(p[0], TR_READABLE, 0));
    ck_assert_int_eq(tr_read(p[0], &c, 1, 0), 1);
    ck_assert_int_eq(c, 'x');

    /* A full pipe is not writable until the deadline. */
    static char junk[4096];
    while (write(p[1], junk, sizeof junk) > 0) {
    }
    dl = tr_after_ms(30);
    ck_assert_tr_err(tr_fd_wait(p[1], TR_WRITABLE, dl), TR_ETIMEDOUT);
    ck_assert(tr_now() >= dl);
    /* ...while the read end has plenty. */
    ck_assert_tr_ok(tr_fd_wait(p[0], TR_READABLE | TR_WRITABLE, dl));

    /* The read end's hang-up counts as readable: the next read says EOF. */
    close(p[1]);
    while (tr_read(p[0], junk, sizeof junk, TR_TEST_DEADLINE()) > 0) {
    }
    ck_assert_tr_ok(tr_fd_wait(p[0], TR_READABLE, TR_TEST_DEADLINE()));
    ck_assert_int_eq(tr_read(p[0], junk, sizeof junk, TR_TEST_DEADLINE()), 0);
    close(p[0]);
    return NULL;
}

START_TEST(test_deadline_task) {
    tr_runtime *rt = tr_test_runtime(workers_for(_i));
    ck_assert_tr_ok(tr_runtime_block_on(rt, deadline_body, NULL, NULL));
    tr_runtime_free(&rt);
}
END_TEST

START_TEST(test_deadline_thread) {
    /* With a runtime alive but unused, to show plain threads never touch it. */
    tr_runtime *rt = tr_test_runtime(1);
    deadline_body(NULL);
    tr_runtime_free(&rt);
}
END_TEST

/* Many tasks on one worker time out at their own deadlines, in order of
 * them, while the others sleep. */
typedef struct staggered {
    int fd;
    int64_t deadline;
    int64_t ended;
    int rc;
} staggered;

static void *staggered_waiter(void *arg) {
    staggered *s = arg;
    s->rc = tr_fd_wait(s->fd, TR_READABLE, s->deadline);
    s->ended = tr_now();
    return NULL;
}

static void *staggered_main(void *arg) {
    (void)arg;
    enum { N = 20 };
    int p[2];
    make_pipe(p);
    staggered s[N];
    tr_task *t[N];
    int64_t base = tr_after_ms(20);
    for (int i = 0; i < N; i++) {
        s[i] = (staggered){.fd = p[0], .deadline = base + (int64_t)(N - i) * 3000000};
        t[i] = spawn_on(tr_runtime_current(), i, staggered_waiter, &s[i]);
    }
    for (int i = 0; i < N; i++) {
        join_rc(t[i]);
        ck_assert_tr_err(s[i].rc, TR_ETIMEDOUT);
        ck_assert(s[i].ended >= s[i].deadline);
    }
    close2(p);
    return NULL;
}

START_TEST(test_deadline_many) {
    tr_runtime *rt = tr_test_runtime(workers_for(_i));
    ck_assert_tr_ok(tr_runtime_block_on(rt, staggered_main, NULL, NULL));
    tr_runtime_free(&rt);
}
END_TEST

/* ==== wake-ups: ping-pong =================================================== */

/* Two sides bounce a counter through two pipes; each side writes only
 * after it has read, so every read really waits for the other side. */
enum { PP_ROUNDS = 500 };

typedef struct pingpong {
    int a2b[2], b2a[2];
    bool raw; /* tr_fd_wait + read() instead of tr_read() */
} pingpong;

static int pp_recv(int fd, bool raw, uint8_t *b) {
    int64_t dl = TR_TEST_DEADLINE();
    if (raw) {
        for (;;) {
            int rc = tr_fd_wait(fd, TR_READABLE, dl);
            if (rc)
                return rc;
            ssize_t n = read(fd, b, 1);
            if (n == 1)
                return 0;
            if (n == 0)
                return TR_ECLOSED;
            if (errno != EAGAIN)
                return -errno;
            /* Readable but nothing there would be a bug: fail loudly. */
            return TR_EAGAIN;
        }
    }
    ssize_t n = tr_read(fd, b, 1, dl);
    return n == 1 ? 0 : n == 0 ? TR_ECLOSED : (int)n;
}

static int pp_send(int fd, uint8_t b) {
    ssize_t n = tr_write(fd, &b, 1, TR_TEST_DEADLINE());
    return n == 1 ? 0 : (int)n;
}

static void *pp_side_a(void *arg) {
    pingpong *pp = arg;
    for (int r = 0; r < PP_ROUNDS; r++) {
        uint8_t b;
        int rc = pp_send(pp->a2b[1], (uint8_t)r);
        if (!rc)
            rc = pp_recv(pp->b2a[0], pp->raw, &b);
        if (rc)
            return RC(rc);
        if (b != (uint8_t)(r ^ 0x5a))
            return RC(-1000 - r);
    }
    return RC(0);
}

static void *pp_side_b(void *arg) {
    pingpong *pp = arg;
    for (int r = 0; r < PP_ROUNDS; r++) {
        uint8_t b;
        int rc = pp_recv(pp->a2b[0], pp->raw, &b);
        if (rc)
            return RC(rc);
        if (b != (uint8_t)r)
            return RC(-2000 - r);
        rc = pp_send(pp->b2a[1], (uint8_t)(r ^ 0x5a));
        if (rc)
            return RC(rc);
    }
    return RC(0);
}

static void *pp_thread_b(void *arg) { return pp_side_b(arg); }

/* _i: bit 0 = workers, bit 1 = raw. */
START_TEST(test_pingpong_tasks) {
    tr_runtime *rt = tr_test_runtime(workers_for(_i));
    pingpong pp = {.raw = (_i & 2) != 0};
    make_pipe(pp.a2b);
    make_pipe(pp.b2a);
    /* Worker 0 and the last worker: the same one when there is only one. */
    tr_task *a = spawn_on(rt, 0, pp_side_a, &pp);
    tr_task *b = spawn_on(rt, tr_runtime_workers(rt) - 1, pp_side_b, &pp);
    int ra = join_rc(a), rb = join_rc(b);
    ck_assert_msg(ra == 0 && rb == 0, "a: %s (%d), b: %s (%d)", tr_strerror(ra), ra,
                  tr_strerror(rb), rb);
    close2(pp.a2b);
    close2(pp.b2a);
    tr_runtime_free(&rt);
}
END_TEST

/* One side a task, the other a plain thread: wakes from outside any worker
 * reach the task, and the thread's own waits are poll()s. */
START_TEST(test_pingpong_thread) {
    tr_runtime *rt = tr_test_runtime(workers_for(_i));
    pingpong pp = {.raw = (_i & 2) != 0};
    make_pipe(pp.a2b);
    make_pipe(pp.b2a);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, pp_thread_b, &pp), 0);
    tr_task *a = spawn_on(rt, 0, pp_side_a, &pp);
    int ra = join_rc(a);
    void *res;
    pthread_join(th, &res);
    int rb = (int)(intptr_t)res;
    ck_assert_msg(ra == 0 && rb == 0, "a: %s (%d), b: %s (%d)", tr_strerror(ra), ra,
                  tr_strerror(rb), rb);
    close2(pp.a2b);
    close2(pp.b2a);
    tr_runtime_free(&rt);
}
END_TEST

/* Many tasks wait on the same fd; each byte written wakes (at least) one,
 * and every one of them gets its byte. */
typedef struct herd {
    int p[2];
    atomic_int got;
} herd;

static void *herd_reader(void *arg) {
    herd *h = arg;
    char c;
    ssize_t n = tr_read(h->p[0], &c, 1, TR_TEST_DEADLINE());
    if (n == 1)
        atomic_fetch_add(&h->got, 1);
    return RC(n == 1 ? 0 : (int)n);
}

static void *herd_main(void *arg) {
    herd *h = arg;
    enum { N = 64 };
    tr_task *t[N];
    for (int i = 0; i < N; i++)
        t[i] = spawn_on(tr_runtime_current(), i, herd_reader, h);
    /* Let them all reach their wait (not needed for correctness). */
    tr_yield();
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(tr_write(h->p[1], "z", 1, TR_TEST_DEADLINE()), 1);
        if (i % 8 == 0)
            tr_yield();
    }
    for (int i = 0; i < N; i++)
        ck_assert_tr_ok(join_rc(t[i]));
    ck_assert_int_eq(atomic_load(&h->got), N);
    return NULL;
}

START_TEST(test_many_waiters_one_fd) {
    tr_runtime *rt = tr_test_runtime(workers_for(_i));
    herd h;
    make_pipe(h.p);
    atomic_init(&h.got, 0);
    ck_assert_tr_ok(tr_runtime_block_on(rt, herd_main, &h, NULL));
    close2(h.p);
    tr_runtime_free(&rt);
}
END_TEST

/* ==== cancellation ============================================================ */

enum { OP_FD_WAIT, OP_READ, OP_WRITE, OP_ACCEPT, OP_COUNT };

typedef struct victim {
    int op;
    int p[2];    /* a pipe: nothing to read, and its write end full for OP_WRITE */
    int lfd;     /* a listener nobody connects to */
    int ready[2]; /* ready[0] always has a byte to read */
    atomic_int started;
    int rc, again, ready_again;
} victim;

static void fill_pipe(int fd) {
    static char junk[4096];
    while (write(fd, junk, sizeof junk) > 0) {
    }
}

static void *victim_body(void *arg) {
    victim *v = arg;
    static char buf[65536];
    atomic_store(&v->started, 1);
    int64_t dl = TR_TEST_DEADLINE();
    switch (v->op) {
    case OP_FD_WAIT: v->rc = tr_fd_wait(v->p[0], TR_READABLE, dl); break;
    case OP_READ: v->rc = (int)tr_read(v->p[0], buf, sizeof buf, dl); break;
    case OP_WRITE: v->rc = (int)tr_write(v->p[1], buf, sizeof buf, dl); break;
    case OP_ACCEPT: v->rc = tr_accept(v->lfd, NULL, NULL, dl); break;
    }
    /* Once cancelled, every later wait says so at once, ready fd or not. */
    v->again = tr_fd_wait(v->p[0], TR_READABLE, dl);
    v->ready_again = tr_fd_wait(v->ready[0], TR_READABLE, dl);
    return NULL;
}

static void victim_setup(victim *v, int op) {
    memset(v, 0, sizeof *v);
    v->op = op;
    make_pipe(v->p);
    if (op == OP_WRITE)
        fill_pipe(v->p[1]);
    v->lfd = tr_tcp_listen("127.0.0.1", 0, 0, NULL);
    ck_assert_int_ge(v->lfd, 0);
    make_socketpair(v->ready);
    ck_assert_int_eq(write(v->ready[1], "r", 1), 1);
    atomic_init(&v->started, 0);
}

static void victim_check(victim *v, int64_t cancelled_at) {
    int64_t took = tr_now() - cancelled_at;
    ck_assert_msg(v->rc == TR_ECANCELED, "op %d returned %s (%d)", v->op, tr_strerror(v->rc),
                  v->rc);
    ck_assert_tr_err(v->again, TR_ECANCELED);
    ck_assert_tr_err(v->ready_again, TR_ECANCELED);
    /* "Promptly": the wait's own deadline is 10 s away. */
    ck_assert_msg(took < 3000000000LL, "cancellation took %lld ms", (long long)(took / 1000000));
    close2(v->p);
    close2(v->ready);
    close(v->lfd);
}

typedef struct cancel_ctx {
    victim v;
    int64_t cancelled_at;
} cancel_ctx;

static void *canceller_main(void *arg) {
    cancel_ctx *c = arg;
    tr_runtime *rt = tr_runtime_current();
    /* The victim on the last worker, this task on worker 0 (or both on the
     * only one): cancellation crosses threads when it can. */
    tr_task *t = spawn_on(rt, tr_runtime_workers(rt) - 1, victim_body, &c->v);
    await_flag(&c->v.started);
    tr_yield();
    c->cancelled_at = tr_now();
    ck_assert_tr_ok(tr_task_cancel(t));
    join_rc(t);
    return NULL;
}

/* _i: bit 0 = workers, bits 1.. = op. */
START_TEST(test_cancel_from_task) {
    tr_runtime *rt = tr_test_runtime(workers_for(_i));
    cancel_ctx c;
    victim_setup(&c.v, _i / 2);
    tr_spawn_opts o = {.worker = TR_WORKER(0)};
    tr_task *t = NULL;
    ck_assert_tr_ok(tr_spawn_ex(rt, &o, &t, canceller_main, &c));
    join_rc(t);
    victim_check(&c.v, c.cancelled_at);
    tr_runtime_free(&rt);
}
END_TEST

START_TEST(test_cancel_from_thread) {
    tr_runtime *rt = tr_test_runtime(workers_for(_i));
    victim v;
    victim_setup(&v, _i / 2);
    tr_task *t = spawn_on(rt, 0, victim_body, &v);
    await_flag(&v.started);
    int64_t at = tr_now();
    ck_assert_tr_ok(tr_task_cancel(t));
    join_rc(t);
    victim_check(&v, at);
    tr_runtime_free(&rt);
}
END_TEST

/* A task cancelled before it calls in gets TR_ECANCELED even for an fd
 * that is ready, and nothing is read or written. */
typedef struct precancel {
    int s[2];
    ssize_t rd, wr;
    int acc, con, wt;
} precancel;

static void *precancel_body(void *arg) {
    precancel *pc = arg;
    ck_assert_tr_ok(tr_task_cancel(tr_task_self()));
    char c;
    struct sockaddr_in sa = {.sin_family = AF_INET};
    pc->rd = tr_read(pc->s[0], &c, 1, TR_TEST_DEADLINE());
    pc->wr = tr_write(pc->s[0], "y", 1, TR_TEST_DEADLINE());
    pc->wt = tr_fd_wait(pc->s[0], TR_WRITABLE, TR_TEST_DEADLINE());
    pc->acc = tr_accept(pc->s[0], NULL, NULL, TR_TEST_DEADLINE());
    pc->con = tr_connect(pc->s[0], (struct sockaddr *)&sa, sizeof sa, TR_TEST_DEADLINE());
    return NULL;
}

START_TEST(test_cancel_before_wait) {
    tr_runtime *rt = tr_test_runtime(1);
    precancel pc;
    make_socketpair(pc.s);
    ck_assert_int_eq(write(pc.s[1], "x", 1), 1);
    ck_assert_tr_ok(tr_runtime_block_on(rt, precancel_body, &pc, NULL));
    ck_assert_int_eq(pc.rd, TR_ECANCELED);
    ck_assert_int_eq(pc.wr, TR_ECANCELED);
    ck_assert_tr_err(pc.wt, TR_ECANCELED);
    ck_assert_tr_err(pc.acc, TR_ECANCELED);
    ck_assert_tr_err(pc.con, TR_ECANCELED);
    /* The byte is still there and nothing was written the other way. */
    char c;
    ck_assert_int_eq(read(pc.s[0], &c, 1), 1);
    ck_assert_int_eq(read(pc.s[1], &c, 1), -1);
    close2(pc.s);
    tr_runtime_free(&rt);
}
END_TEST

/* Shutting the runtime down cancels a task parked on an fd. */
static void *parked_forever(void *arg) {
    int *p = arg;
    char c;
    return RC(tr_read(p[0], &c, 1, TR_TEST_DEADLINE()));
}

START_TEST(test_shutdown_cancels_fd_wait) {
    tr_runtime *rt = tr_test_runtime(workers_for(_i));
    int p[2];
    make_pipe(p);
    tr_task *t = spawn_on(rt, 0, parked_forever, p);
    int64_t start = tr_now();
    ck_assert_tr_ok(tr_runtime_shutdown(rt, TR_TEST_DEADLINE()));
    ck_assert(tr_now() - start < 3000000000LL);
    ck_assert_tr_err(join_rc(t), TR_ECANCELED);
    tr_runtime_free(&rt);
    close2(p);
}
END_TEST

/* ==== streams: large transfers ================================================ */

enum { BULK = 4 << 20 };

static uint8_t bulk_byte(size_t i, unsigned seed) {
    return (uint8_t)((i * 2654435761u) >> 13 ^ i ^ seed);
}

typedef struct bulk_dir {
    int wfd, rfd;
    bool shut; /* sockets: shutdown(SHUT_WR) when done; pipes: close */
    unsigned seed;
    uint8_t *out;
    size_t got;
    int wrc, rrc;
} bulk_dir;

static void *bulk_writer(void *arg) {
    bulk_dir *d = arg;
    ssize_t n = tr_write(d->wfd, d->out, BULK, TR_TEST_DEADLINE());
    d->wrc = n == BULK ? 0 : (int)n;
    if (d->shut)
        shutdown(d->wfd, SHUT_WR);
    else
        close(d->wfd);
    return NULL;
}

static void *bulk_reader(void *arg) {
    bulk_dir *d = arg;
    uint8_t buf[7919]; /* odd size: reads straddle the writer's chunks */
    for (;;) {
        ssize_t n = tr_read(d->rfd, buf, sizeof buf, TR_TEST_DEADLINE());
        if (n == 0)
            break;
        if (n < 0) {
            d->rrc = (int)n;
            return NULL;
        }
        for (ssize_t k = 0; k < n; k++)
            if (buf[k] != bulk_byte(d->got + (size_t)k, d->seed)) {
                d->rrc = -9999;
                return NULL;
            }
        d->got += (size_t)n;
    }
    d->rrc = 0;
    return NULL;
}

/* _i: bit 0 = workers, bit 1 = pipes instead of a socketpair.  Two
 * directions at once, four tasks spread over the workers; small buffers
 * make both the writers and the readers hit EAGAIN over and over. */
START_TEST(test_bulk_transfer) {
    tr_runtime *rt = tr_test_runtime(workers_for(_i));
    bool pipes = (_i & 2) != 0;
    bulk_dir d[2];
    memset(d, 0, sizeof d);
    int s[2], p1[2], p2[2];
    if (pipes) {
        make_pipe(p1);
        make_pipe(p2);
        ck_assert_int_ge(fcntl(p1[1], F_SETPIPE_SZ, 4096), 0);
        ck_assert_int_ge(fcntl(p2[1], F_SETPIPE_SZ, 4096), 0);
        d[0].wfd = p1[1], d[0].rfd = p1[0];
        d[1].wfd = p2[1], d[1].rfd = p2[0];
    } else {
        make_socketpair(s);
        int small = 8192;
        setsockopt(s[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
        setsockopt(s[1], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
        d[0].wfd = s[0], d[0].rfd = s[1];
        d[1].wfd = s[1], d[1].rfd = s[0];
    }
    tr_task *t[4];
    for (int k = 0; k < 2; k++) {
        d[k].shut = !pipes;
        d[k].seed = 17u + (unsigned)k;
        d[k].out = malloc(BULK);
        ck_assert_ptr_nonnull(d[k].out);
        for (size_t i = 0; i < BULK; i++)
            d[k].out[i] = bulk_byte(i, d[k].seed);
        t[2 * k] = spawn_on(rt, 2 * k, bulk_writer, &d[k]);
        t[2 * k + 1] = spawn_on(rt, 2 * k + 1, bulk_reader, &d[k]);
    }
    for (int k = 0; k < 4; k++)
        join_rc(t[k]);
    for (int k = 0; k < 2; k++) {
        ck_assert_msg(d[k].wrc == 0, "writer %d: %s", k, tr_strerror(d[k].wrc));
        ck_assert_msg(d[k].rrc == 0, "reader %d: %s", k, tr_strerror(d[k].rrc));
        ck_assert_uint_eq(d[k].got, BULK);
        free(d[k].out);
    }
    if (pipes) {
        close(p1[0]);
        close(p2[0]);
    } else {
        close2(s);
    }
    tr_runtime_free(&rt);
}
END_TEST

/* Partial progress, a dead peer, and EOF. */
static void *stream_edges_body(void *arg) {
    (void)arg;
    enum { BIG = 1 << 20 };
    char *big = calloc(1, BIG);
    ck_assert_ptr_nonnull(big);

    /* Nobody reads: the write times out part way, and says how far. */
    int p[2];
    make_pipe(p);
    size_t written = 12345;
    int64_t dl = tr_after_ms(30);
    ck_assert_int_eq(tr_write_some(p[1], big, BIG, &written, dl), TR_ETIMEDOUT);
    ck_assert(tr_now() >= dl);
    ck_assert_uint_gt(written, 0);
    ck_assert_uint_lt(written, BIG);
    ck_assert_int_eq(tr_write(p[1], big, BIG, tr_after_ms(10)), TR_ETIMEDOUT);
    /* Success reports everything. */
    ck_assert_int_eq(tr_write_some(p[1], big, 0, &written, 0), 0);
    ck_assert_uint_eq(written, 0);
    close2(p);

    /* A socket whose peer is gone: -EPIPE, and no SIGPIPE kills us. */
    int s[2];
    make_socketpair(s);
    ck_assert_int_eq(tr_write(s[0], "abc", 3, TR_TEST_DEADLINE()), 3);
    /* Read it first: closing with unread data would reset the peer, and
     * this is about EPIPE, not ECONNRESET. */
    ck_assert_int_eq(tr_read(s[1], big, 16, TR_TEST_DEADLINE()), 3);
    close(s[1]);
    ck_assert_int_eq(tr_write_some(s[0], big, BIG, &written, TR_TEST_DEADLINE()), -EPIPE);
    ck_assert_uint_eq(written, 0);
    /* Reading the other way: EOF at once. */
    ck_assert_int_eq(tr_read(s[0], big, 16, TR_TEST_DEADLINE()), 0);
    close(s[0]);

    /* Data, then EOF, then EOF again. */
    make_socketpair(s);
    ck_assert_int_eq(tr_write(s[1], "hello", 5, TR_TEST_DEADLINE()), 5);
    shutdown(s[1], SHUT_WR);
    char buf[16];
    ck_assert_int_eq(tr_read(s[0], buf, sizeof buf, TR_TEST_DEADLINE()), 5);
    ck_assert_int_eq(memcmp(buf, "hello", 5), 0);
    ck_assert_int_eq(tr_read(s[0], buf, sizeof buf, TR_TEST_DEADLINE()), 0);
    ck_assert_int_eq(tr_read(s[0], buf, sizeof buf, TR_TEST_DEADLINE()), 0);
    /* len 0 reads nothing and does not wait. */
    ck_assert_int_eq(tr_read(s[1], buf, 0, TR_TEST_DEADLINE()), 0);
    close2(s);
    free(big);
    return NULL;
}

START_TEST(test_stream_edges_task) {
    tr_runtime *rt = tr_test_runtime(workers_for(_i));
    ck_assert_tr_ok(tr_runtime_block_on(rt, stream_edges_body, NULL, NULL));
    tr_runtime_free(&rt);
}
END_TEST

START_TEST(test_stream_edges_thread) { stream_edges_body(NULL); }
END_TEST

/* A task that reads an fd that is always ready still lets the other tasks
 * of its worker run: the cooperative budget makes it yield. */
typedef struct hog {
    int fd;
    atomic_int stop;
    long reads;
} hog;

static void *stopper_body(void *arg) {
    hog *h = arg;
    atomic_store(&h->stop, 1);
    return NULL;
}

static void *hog_body(void *arg) {
    hog *h = arg;
    /* The stopper goes on this worker's queue; it can only run if the loop
     * below gives the worker up now and then. */
    tr_task *stopper = NULL;
    ck_assert_tr_ok(tr_spawn(&stopper, stopper_body, h));
    char buf[64];
    int64_t dl = TR_TEST_DEADLINE();
    int rc = 0;
    while (!atomic_load(&h->stop)) {
        if (tr_now() > dl) {
            rc = TR_ETIMEDOUT;
            break;
        }
        if (tr_read(h->fd, buf, sizeof buf, dl) != (ssize_t)sizeof buf) {
            rc = -1;
            break;
        }
        h->reads++;
    }
    tr_task_join(stopper, NULL);
    return RC(rc);
}

START_TEST(test_budget_yields) {
    tr_runtime *rt = tr_test_runtime(1);
    hog h = {.fd = open("/dev/zero", O_RDONLY | O_CLOEXEC)};
    ck_assert_int_ge(h.fd, 0);
    atomic_init(&h.stop, 0);
    void *res = NULL;
    ck_assert_tr_ok(tr_runtime_block_on(rt, hog_body, &h, &res));
    ck_assert_tr_ok((int)(intptr_t)res);
    ck_assert_int_gt(h.reads, 0);
    close(h.fd);
    tr_runtime_free(&rt);
}
END_TEST

/* ==== TCP over loopback ========================================================== */

typedef struct echo_srv {
    int lfd, port;
    atomic_int accepted;
    int bad_flags, bad_peer;
} echo_srv;

static void *echo_conn(void *arg) {
    int fd = (int)(intptr_t)arg;
    char buf[4096];
    for (;;) {
        ssize_t n = tr_read(fd, buf, sizeof buf, TR_TEST_DEADLINE());
        if (n <= 0)
            break;
        if (tr_write(fd, buf, (size_t)n, TR_TEST_DEADLINE()) != n)
            break;
    }
    close(fd);
    return NULL;
}

/* Accepts until cancelled; that is the only way it ends. */
static void *echo_acceptor(void *arg) {
    echo_srv *s = arg;
    for (;;) {
        struct sockaddr_in peer;
        socklen_t plen = sizeof peer;
        int fd = tr_accept(s->lfd, (struct sockaddr *)&peer, &plen, TR_TEST_DEADLINE());
        if (fd < 0)
            return RC(fd);
        atomic_fetch_add(&s->accepted, 1);
        if (!fd_has_flags(fd))
            s->bad_flags++;
        if (plen != sizeof peer || peer.sin_family != AF_INET ||
            peer.sin_addr.s_addr != htonl(INADDR_LOOPBACK))
            s->bad_peer++;
        tr_spawn_opts o = {.worker = TR_WORKER_BALANCED};
        int rc = tr_spawn_ex(NULL, &o, NULL, echo_conn, (void *)(intptr_t)fd);
        if (rc) {
            close(fd);
            return RC(rc);
        }
    }
}

typedef struct client_half {
    int fd;
    const uint8_t *msg;
    size_t len;
    ssize_t rc;
} client_half;

static void *client_writer(void *arg) {
    client_half *h = arg;
    h->rc = tr_write(h->fd, h->msg, h->len, TR_TEST_DEADLINE());
    return NULL;
}

static int read_exact(int fd, uint8_t *buf, size_t len) {
    size_t got = 0;
    while (got < len) {
        ssize_t n = tr_read(fd, buf + got, len - got, TR_TEST_DEADLINE());
        if (n <= 0)
            return n == 0 ? TR_ECLOSED : (int)n;
        got += (size_t)n;
    }
    return 0;
}

/* One client: small messages in lock step, then one large enough that it
 * must be written and read at the same time (by two tasks, on one fd). */
static void *echo_client(void *arg) {
    echo_srv *s = arg;
    static const size_t sizes[] = {1, 13, 512, 4096, 300000};
    int fd = tr_tcp_connect("127.0.0.1", s->port, TR_TEST_DEADLINE());
    if (fd < 0)
        return RC(fd);
    int rc = fd_has_flags(fd) ? 0 : -7777;
    uint8_t *out = malloc(300000), *in = malloc(300000);
    if (!out || !in)
        rc = TR_ENOMEM;
    for (size_t m = 0; !rc && m < sizeof sizes / sizeof sizes[0]; m++) {
        size_t len = sizes[m];
        for (size_t i = 0; i < len; i++)
            out[i] = bulk_byte(i, (unsigned)(fd * 7 + (int)m));
        if (len < 65536) {
            ssize_t n = tr_write(fd, out, len, TR_TEST_DEADLINE());
            if (n != (ssize_t)len) {
                rc = (int)n;
                break;
            }
            rc = read_exact(fd, in, len);
        } else {
            client_half h = {.fd = fd, .msg = out, .len = len};
            tr_task *w = NULL;
            rc = tr_spawn(&w, client_writer, &h);
            if (!rc) {
                rc = read_exact(fd, in, len);
                tr_task_join(w, NULL);
                if (!rc && h.rc != (ssize_t)len)
                    rc = (int)h.rc;
            }
        }
        if (!rc && memcmp(in, out, len) != 0)
            rc = -8888;
    }
    free(out);
    free(in);
    close(fd);
    return RC(rc);
}

static void *echo_main(void *arg) {
    echo_srv *s = arg;
    enum { CLIENTS = 100 };
    tr_runtime *rt = tr_runtime_current();
    s->lfd = tr_tcp_listen("127.0.0.1", 0, 0, &s->port);
    ck_assert_int_ge(s->lfd, 0);
    ck_assert_int_gt(s->port, 0);
    ck_assert(fd_has_flags(s->lfd));
    tr_task *acc = spawn_on(rt, 0, echo_acceptor, s);
    tr_task *c[CLIENTS];
    for (int i = 0; i < CLIENTS; i++)
        c[i] = spawn_on(rt, i, echo_client, s);
    int failed = 0, first = 0;
    for (int i = 0; i < CLIENTS; i++) {
        int rc = join_rc(c[i]);
        if (rc && !failed++)
            first = rc;
    }
    ck_assert_msg(!failed, "%d clients failed, first with %s (%d)", failed, tr_strerror(first),
                  first);
    ck_assert_int_eq(atomic_load(&s->accepted), CLIENTS);
    ck_assert_int_eq(s->bad_flags, 0);
    ck_assert_int_eq(s->bad_peer, 0);
    ck_assert_tr_ok(tr_task_cancel(acc));
    ck_assert_tr_err(join_rc(acc), TR_ECANCELED);
    close(s->lfd);
    return NULL;
}

START_TEST(test_tcp_echo_many) {
    tr_runtime *rt = tr_test_runtime(workers_for(_i));
    echo_srv s;
    memset(&s, 0, sizeof s);
    atomic_init(&s.accepted, 0);
    ck_assert_tr_ok(tr_runtime_block_on(rt, echo_main, &s, NULL));
    tr_runtime_free(&rt);
}
END_TEST

/* Refused connections, accept deadlines, and tr_connect on a socket the
 * caller made. */
static void *tcp_edges_body(void *arg) {
    (void)arg;
    int port = 0;
    int lfd = tr_tcp_listen("127.0.0.1", 0, 16, &port);
    ck_assert_int_ge(lfd, 0);

    int64_t dl = tr_after_ms(30);
    ck_assert_tr_err(tr_accept(lfd, NULL, NULL, dl), TR_ETIMEDOUT);
    ck_assert(tr_now() >= dl);

    /* A socket of our own, made non-blocking by hand. */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_tr_ok(tr_fd_nonblock(fd));
    ck_assert_tr_ok(tr_fd_nonblock(fd)); /* twice is fine */
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_tr_ok(tr_connect(fd, (struct sockaddr *)&sa, sizeof sa, TR_TEST_DEADLINE()));
    int afd = tr_accept(lfd, NULL, NULL, TR_TEST_DEADLINE());
    ck_assert_int_ge(afd, 0);
    ck_assert_int_eq(tr_write(fd, "ping", 4, TR_TEST_DEADLINE()), 4);
    char buf[8];
    ck_assert_int_eq(tr_read(afd, buf, sizeof buf, TR_TEST_DEADLINE()), 4);
    ck_assert_int_eq(memcmp(buf, "ping", 4), 0);
    close(afd);
    close(fd);

    /* Nobody listens on that port any more. */
    close(lfd);
    ck_assert_tr_err(tr_tcp_connect("127.0.0.1", port, TR_TEST_DEADLINE()), -ECONNREFUSED);

    /* The port is free again; SO_REUSEADDR lets us rebind at once. */
    int port2 = 0;
    lfd = tr_tcp_listen("127.0.0.1", port, 0, &port2);
    ck_assert_int_ge(lfd, 0);
    ck_assert_int_eq(port2, port);
    int busy = tr_tcp_listen("127.0.0.1", port, 0, NULL);
    ck_assert_tr_err(busy, -EADDRINUSE);
    close(lfd);
    return NULL;
}

START_TEST(test_tcp_edges_task) {
    tr_runtime *rt = tr_test_runtime(workers_for(_i));
    ck_assert_tr_ok(tr_runtime_block_on(rt, tcp_edges_body, NULL, NULL));
    tr_runtime_free(&rt);
}
END_TEST

START_TEST(test_tcp_edges_thread) { tcp_edges_body(NULL); }
END_TEST

/* Server on a plain thread (accept, echo), client in a task. */
static void *thread_server(void *arg) {
    echo_srv *s = arg;
    int fd = tr_accept(s->lfd, NULL, NULL, TR_TEST_DEADLINE());
    if (fd < 0)
        return RC(fd);
    echo_conn((void *)(intptr_t)fd);
    return RC(0);
}

static void *one_task_client(void *arg) {
    echo_srv *s = arg;
    int fd = tr_tcp_connect("127.0.0.1", s->port, TR_TEST_DEADLINE());
    if (fd < 0)
        return RC(fd);
    enum { LEN = 200000, CHUNK = 10000 };
    uint8_t *out = malloc(LEN), *in = malloc(LEN);
    int rc = out && in ? 0 : TR_ENOMEM;
    for (size_t i = 0; !rc && i < LEN; i++)
        out[i] = bulk_byte(i, 3);
    /* Chunks that fit the socket buffers, so one flow of control can both
     * write and read. */
    for (size_t off = 0; !rc && off < LEN; off += CHUNK) {
        ssize_t n = tr_write(fd, out + off, CHUNK, TR_TEST_DEADLINE());
        rc = n == CHUNK ? read_exact(fd, in + off, CHUNK) : (int)n;
    }
    if (!rc && memcmp(in, out, LEN) != 0)
        rc = -8888;
    free(out);
    free(in);
    close(fd);
    return RC(rc);
}

START_TEST(test_tcp_plain_thread_server) {
    tr_runtime *rt = tr_test_runtime(workers_for(_i));
    echo_srv s;
    memset(&s, 0, sizeof s);
    s.lfd = tr_tcp_listen("127.0.0.1", 0, 0, &s.port);
    ck_assert_int_ge(s.lfd, 0);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, thread_server, &s), 0);
    void *res = NULL;
    ck_assert_tr_ok(tr_runtime_block_on(rt, one_task_client, &s, &res));
    ck_assert_tr_ok((int)(intptr_t)res);
    pthread_join(th, &res);
    ck_assert_tr_ok((int)(intptr_t)res);
    close(s.lfd);
    tr_runtime_free(&rt);
}
END_TEST

/* A plain-thread client against a task server: the client code is the
 * same function, its waits are poll()s there. */
static void *thread_client(void *arg) { return one_task_client(arg); }

START_TEST(test_tcp_plain_thread_client) {
    tr_runtime *rt = tr_test_runtime(workers_for(_i));
    echo_srv s;
    memset(&s, 0, sizeof s);
    atomic_init(&s.accepted, 0);
    s.lfd = tr_tcp_listen("127.0.0.1", 0, 0, &s.port);
    ck_assert_int_ge(s.lfd, 0);
    tr_task *acc = spawn_on(rt, 0, echo_acceptor, &s);
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, thread_client, &s), 0);
    for (int i = 0; i < 4; i++) {
        void *res = NULL;
        pthread_join(th[i], &res);
        ck_assert_tr_ok((int)(intptr_t)res);
    }
    ck_assert_int_eq(atomic_load(&s.accepted), 4);
    ck_assert_tr_ok(tr_task_cancel(acc));
    ck_assert_tr_err(join_rc(acc), TR_ECANCELED);
    close(s.lfd);
    tr_runtime_free(&rt);
}
END_TEST

/* ==== bad arguments ================================================================ */

static void *bad_args_body(void *arg) {
    (void)arg;
    char buf[4];
    int p[2];
    make_pipe(p);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t alen = sizeof sa;

    ck_assert_tr_err(tr_fd_wait(-1, TR_READABLE, 0), TR_EINVAL);
    ck_assert_tr_err(tr_fd_wait(p[0], 0, 0), TR_EINVAL);
    ck_assert_tr_err(tr_fd_wait(p[0], 4, 0), TR_EINVAL);
    ck_assert_tr_err(tr_fd_wait(p[0], -1, 0), TR_EINVAL);
    ck_assert_tr_err(tr_fd_wait(p[0], TR_READABLE | 8, 0), TR_EINVAL);
    ck_assert_tr_err(tr_fd_nonblock(-3), TR_EINVAL);

    ck_assert_int_eq(tr_read(-1, buf, sizeof buf, 0), TR_EINVAL);
    ck_assert_int_eq(tr_read(p[0], NULL, 5, 0), TR_EINVAL);
    ck_assert_int_eq(tr_write(-1, buf, sizeof buf, 0), TR_EINVAL);
    ck_assert_int_eq(tr_write(p[1], NULL, 5, 0), TR_EINVAL);
    ck_assert_int_eq(tr_write(p[1], buf, (size_t)SSIZE_MAX + 1, 0), TR_EINVAL);
    size_t w = 99;
    ck_assert_int_eq(tr_write_some(p[1], NULL, 1, &w, 0), TR_EINVAL);
    ck_assert_uint_eq(w, 0);
    /* NULL with nothing to move is fine. */
    ck_assert_int_eq(tr_read(p[0], NULL, 0, 0), 0);
    ck_assert_int_eq(tr_write(p[1], NULL, 0, 0), 0);

    ck_assert_tr_err(tr_accept(-1, NULL, NULL, 0), TR_EINVAL);
    ck_assert_tr_err(tr_accept(p[0], (struct sockaddr *)&sa, NULL, 0), TR_EINVAL);
    ck_assert_tr_err(tr_connect(-1, (struct sockaddr *)&sa, alen, 0), TR_EINVAL);
    ck_assert_tr_err(tr_connect(p[0], NULL, alen, 0), TR_EINVAL);
    ck_assert_tr_err(tr_connect(p[0], (struct sockaddr *)&sa, 0, 0), TR_EINVAL);

    ck_assert_tr_err(tr_tcp_listen("127.0.0.1", -1, 0, NULL), TR_EINVAL);
    ck_assert_tr_err(tr_tcp_listen("127.0.0.1", 65536, 0, NULL), TR_EINVAL);
    ck_assert_tr_err(tr_tcp_listen("127.0.0.1", 0, -5, NULL), TR_EINVAL);
    ck_assert_tr_err(tr_tcp_listen("localhost", 0, 0, NULL), TR_EINVAL);
    ck_assert_tr_err(tr_tcp_listen("127.0.0.300", 0, 0, NULL), TR_EINVAL);
    ck_assert_tr_err(tr_tcp_listen("", 0, 0, NULL), TR_EINVAL);
    ck_assert_tr_err(tr_tcp_connect(NULL, 80, 0), TR_EINVAL);
    ck_assert_tr_err(tr_tcp_connect("127.0.0.1", 0, 0), TR_EINVAL);
    ck_assert_tr_err(tr_tcp_connect("127.0.0.1", 70000, 0), TR_EINVAL);
    ck_assert_tr_err(tr_tcp_connect("not an address", 80, 0), TR_EINVAL);

    /* Well-formed calls on the wrong kind of fd: the system's error. */
    ck_assert_tr_err(tr_accept(p[0], NULL, NULL, 0), -ENOTSOCK);
    ck_assert_tr_err(tr_connect(p[0], (struct sockaddr *)&sa, alen, 0), -ENOTSOCK);
    ck_assert_int_eq(tr_read(p[1], buf, sizeof buf, 0), -EBADF);  /* write end */

    /* An fd number that is not open. */
    int nfd = p[0];
    close2(p);
    ck_assert_tr_err(tr_fd_wait(nfd, TR_READABLE, TR_TEST_DEADLINE()), -EBADF);
    ck_assert_int_eq(tr_read(nfd, buf, sizeof buf, TR_TEST_DEADLINE()), -EBADF);
    ck_assert_int_eq(tr_write(nfd, buf, sizeof buf, TR_TEST_DEADLINE()), -EBADF);
    ck_assert_tr_err(tr_fd_nonblock(nfd), -EBADF);
    return NULL;
}

START_TEST(test_bad_args_task) {
    tr_runtime *rt = tr_test_runtime(1);
    ck_assert_tr_ok(tr_runtime_block_on(rt, bad_args_body, NULL, NULL));
    tr_runtime_free(&rt);
}
END_TEST

START_TEST(test_bad_args_thread) { bad_args_body(NULL); }
END_TEST

/* ==== plain threads ================================================================= */

typedef struct late_writer {
    int fd;
    atomic_int go;
} late_writer;

static void *late_writer_thread(void *arg) {
    late_writer *lw = arg;
    await_flag(&lw->go);
    return RC(write(lw->fd, "q", 1) == 1 ? 0 : -errno);
}

/* A plain thread blocked in tr_read (no runtime at all) is woken by a
 * write from another thread, long before its deadline. */
START_TEST(test_plain_thread_read) {
    int p[2];
    make_pipe(p);
    late_writer lw = {.fd = p[1]};
    atomic_init(&lw.go, 0);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, late_writer_thread, &lw), 0);
    atomic_store(&lw.go, 1);
    char c = 0;
    int64_t dl = TR_TEST_DEADLINE();
    ck_assert_int_eq(tr_read(p[0], &c, 1, dl), 1);
    ck_assert_int_eq(c, 'q');
    ck_assert(tr_now() < dl);
    void *res;
    pthread_join(th, &res);
    ck_assert_tr_ok((int)(intptr_t)res);
    /* And with nothing coming, its deadline. */
    dl = tr_after_ms(20);
    ck_assert_int_eq(tr_read(p[0], &c, 1, dl), TR_ETIMEDOUT);
    ck_assert(tr_now() >= dl);
    close2(p);
}
END_TEST

/* tr_read and tr_write on a plain thread also work on blocking sockets:
 * they never block past their deadline there. */
START_TEST(test_plain_thread_blocking_socket) {
    int s[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s), 0);
    char c;
    int64_t dl = tr_after_ms(20);
    ck_assert_int_eq(tr_read(s[0], &c, 1, dl), TR_ETIMEDOUT);
    ck_assert(tr_now() >= dl);
    static char big[1 << 20];
    size_t written = 0;
    dl = tr_after_ms(20);
    ck_assert_int_eq(tr_write_some(s[0], big, sizeof big, &written, dl), TR_ETIMEDOUT);
    ck_assert_uint_gt(written, 0);
    close2(s);
}
END_TEST

/* ==== the suite ====================================================================== */

static Suite *io_suite(void) {
    Suite *s = suite_create("io");
    TCase *tc;

    tc = tr_tcase("deadline");
    tcase_add_loop_test(tc, test_deadline_task, 0, 2);
    tcase_add_test(tc, test_deadline_thread);
    tcase_add_loop_test(tc, test_deadline_many, 0, 2);
    suite_add_tcase(s, tc);

    tc = tr_tcase("wake");
    tcase_add_loop_test(tc, test_pingpong_tasks, 0, 4);
    tcase_add_loop_test(tc, test_pingpong_thread, 0, 4);
    tcase_add_loop_test(tc, test_many_waiters_one_fd, 0, 2);
    suite_add_tcase(s, tc);

    tc = tr_tcase("cancel");
    tcase_add_loop_test(tc, test_cancel_from_task, 0, 2 * OP_COUNT);
    tcase_add_loop_test(tc, test_cancel_from_thread, 0, 2 * OP_COUNT);
    tcase_add_test(tc, test_cancel_before_wait);
    tcase_add_loop_test(tc, test_shutdown_cancels_fd_wait, 0, 2);
    suite_add_tcase(s, tc);

    tc = tr_tcase("stream");
    tcase_add_loop_test(tc, test_bulk_transfer, 0, 4);
    tcase_add_loop_test(tc, test_stream_edges_task, 0, 2);
    tcase_add_test(tc, test_stream_edges_thread);
    tcase_add_test(tc, test_budget_yields);
    suite_add_tcase(s, tc);

    tc = tr_tcase("tcp");
    tcase_add_loop_test(tc, test_tcp_echo_many, 0, 2);
    tcase_add_loop_test(tc, test_tcp_edges_task, 0, 2);
    tcase_add_test(tc, test_tcp_edges_thread);
    tcase_add_loop_test(tc, test_tcp_plain_thread_client, 0, 2);
    tcase_add_loop_test(tc, test_tcp_plain_thread_server, 0, 2);
    suite_add_tcase(s, tc);

    tc = tr_tcase("args");
    tcase_add_test(tc, test_bad_args_task);
    tcase_add_test(tc, test_bad_args_thread);
    suite_add_tcase(s, tc);

    tc = tr_tcase("plain");
    tcase_add_test(tc, test_plain_thread_read);
    tcase_add_test(tc, test_plain_thread_blocking_socket);
    suite_add_tcase(s, tc);

    return s;
}

TR_TEST_MAIN(io_suite)
