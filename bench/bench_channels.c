/* bench_channels.c — the peers' channel benches, the same work in troupe.
 *
 * Each bench is the tokio program of ../shared/peers/tokio/src/main.rs
 * written with troupe's channels: same N, same capacities, same checks.
 * Tasks are spawned with tr_spawn(), which puts them on the spawning
 * task's worker — what a user's code does by default — unless
 * --place=spread asks for round robin over the workers (TR_WORKER(i)).
 * The line's variant= says which.
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "tr_broadcast.h"
#include "tr_error.h"
#include "tr_mpsc.h"
#include "tr_oneshot.h"
#include "tr_runtime.h"
#include "tr_semaphore.h"
#include "tr_time.h"
#include "tr_watch.h"

#define MPSC_CAP 1024
#define PINGPONG_CAP 100
#define BCAST_CAP 1024
#define BCAST_RECEIVERS 8
#define CREDIT_BATCH 64
#define WATCH_READERS 4

static const char *place_name(void) { return opt.spread ? "spread" : "local"; }

/* Spawns fn(arg): on this worker, or round robin with --place=spread. */
static int spawn(tr_task **t, tr_task_fn fn, void *arg) {
    static int next;
    if (!opt.spread)
        return tr_spawn(t, fn, arg);
    tr_spawn_opts o;
    memset(&o, 0, sizeof o);
    o.worker = TR_WORKER(next++ % tr_runtime_workers(tr_runtime_current()));
    return tr_spawn_ex(NULL, &o, t, fn, arg);
}

static void *join(tr_task *t) {
    void *r = NULL;
    if (tr_task_join(t, &r) != 0)
        return NULL;
    return r;
}

/* ---- mpsc_1p1c, mpsc_4p1c -------------------------------------------------------- */

typedef struct {
    tr_mpsc_tx *tx;
    uint64_t start, count;
    int err;
} producer_arg;

static void *mpsc_producer(void *p) {
    producer_arg *a = p;
    for (uint64_t v = a->start; v < a->start + a->count; v++) {
        int rc = tr_mpsc_send(a->tx, &v, TR_NEVER);
        if (rc != 0) {
            a->err = rc;
            break;
        }
    }
    tr_mpsc_tx_drop(&a->tx);
    return NULL;
}

static void *mpsc_consumer(void *p) {
    tr_mpsc_rx *rx = p;
    uint64_t sum = 0, v;
    while (tr_mpsc_recv(rx, &v, TR_NEVER) == 0)
        sum += v;
    tr_mpsc_rx_drop(&rx);
    return (void *)(uintptr_t)sum;
}

static void mpsc_run(bench_out *out, uint64_t producers) {
    uint64_t per = out->n / producers;
    uint64_t n = per * producers;
    out->n = n;
    tr_mpsc_tx *tx;
    tr_mpsc_rx *rx;
    if (tr_mpsc_new(&tx, &rx, MPSC_CAP, sizeof(uint64_t)) != 0)
        return;
    producer_arg args[4];
    tr_task *tasks[4], *consumer;
    int64_t t0 = tr_now();
    if (spawn(&consumer, mpsc_consumer, rx) != 0)
        return;
    for (uint64_t p = 0; p < producers; p++) {
        args[p].start = p * per;
        args[p].count = per;
        args[p].err = 0;
        tr_mpsc_tx_clone(tx, &args[p].tx);
        if (spawn(&tasks[p], mpsc_producer, &args[p]) != 0)
            return;
    }
    tr_mpsc_tx_drop(&tx);
    uint64_t sum = (uint64_t)(uintptr_t)join(consumer);
    out->ns = tr_now() - t0;
    int err = 0;
    for (uint64_t p = 0; p < producers; p++) {
        join(tasks[p]);
        err |= args[p].err;
    }
    out->ok = err == 0 && sum == n * (n - 1) / 2;
    append(out->extra, sizeof out->extra, "sum=%" PRIu64 " cap=%d variant=%s", sum, MPSC_CAP,
           place_name());
}

void *mpsc_1p1c_body(void *p) {
    mpsc_run(p, 1);
    return NULL;
}

void *mpsc_4p1c_body(void *p) {
    mpsc_run(p, 4);
    return NULL;
}

/* ---- pingpong: the counter actor of the tokio::sync docs ------------------------- */

/* A request carries its reply slot: a oneshot in the caller's frame, so a
 * round trip allocates nothing. */
typedef struct {
    int cmd; /* 0: increment */
    tr_oneshot *reply;
} counter_req;

static void *counter_server(void *p) {
    tr_mpsc_rx *rx = p;
    uint64_t counter = 0;
    counter_req req;
    while (tr_mpsc_recv(rx, &req, TR_NEVER) == 0) {
        uint64_t prev = counter++;
        tr_oneshot_send(req.reply, &prev);
    }
    tr_mpsc_rx_drop(&rx);
    return (void *)(uintptr_t)counter;
}

typedef struct {
    tr_mpsc_tx *tx;
    uint64_t n, last;
    int ok;
} pingpong_client_arg;

static void *pingpong_client(void *p) {
    pingpong_client_arg *a = p;
    a->ok = 1;
    for (uint64_t i = 0; i < a->n; i++) {
        tr_oneshot reply;
        tr_oneshot_init(&reply, sizeof(uint64_t), NULL);
        counter_req req = {0, &reply};
        if (tr_mpsc_send(a->tx, &req, TR_NEVER) != 0 ||
            tr_oneshot_recv(&reply, &a->last, TR_NEVER) != 0) {
            a->ok = 0;
            break;
        }
        tr_oneshot_rx_drop(&reply); /* both ends done: the slot may be reused */
        if (a->last != i)
            a->ok = 0;
    }
    tr_mpsc_tx_drop(&a->tx);
    return NULL;
}

void *pingpong_body(void *p) {
    bench_out *out = p;
    tr_mpsc_tx *tx;
    tr_mpsc_rx *rx;
    if (tr_mpsc_new(&tx, &rx, PINGPONG_CAP, sizeof(counter_req)) != 0)
        return NULL;
    pingpong_client_arg a = {tx, out->n, 0, 0};
    tr_task *server, *client;
    int64_t t0 = tr_now();
    if (spawn(&server, counter_server, rx) != 0 || spawn(&client, pingpong_client, &a) != 0)
        return NULL;
    join(client);
    out->ns = tr_now() - t0;
    uint64_t counter = (uint64_t)(uintptr_t)join(server);
    out->ok = a.ok && counter == out->n && a.last == out->n - 1;
    append(out->extra, sizeof out->extra, "last=%" PRIu64 " variant=%s", a.last, place_name());
    return NULL;
}

/* ---- broadcast_fanout ------------------------------------------------------------------ */

/* The sender never blocks in a broadcast, so, as in the peers, it holds a
 * credit window of BCAST_CAP per receiver (a semaphore each), taken and
 * given back CREDIT_BATCH at a time: no receiver can lag. */
typedef struct {
    tr_broadcast_rx *rx;
    tr_sem *credit;
    uint64_t sum, lagged;
} bcast_rx_arg;

static void *bcast_receiver(void *p) {
    bcast_rx_arg *a = p;
    uint64_t got = 0, v, missed;
    for (;;) {
        int rc = tr_broadcast_recv(a->rx, &v, &missed, TR_NEVER);
        if (rc == 0) {
            a->sum += v;
            if (++got % CREDIT_BATCH == 0)
                tr_sem_add_permits(a->credit, CREDIT_BATCH);
        } else if (rc == TR_ELAGGED) {
            a->lagged += missed;
        } else {
            break;
        }
    }
    tr_broadcast_rx_drop(&a->rx);
    return NULL;
}

typedef struct {
    tr_broadcast_tx *tx;
    tr_sem *credits;
    uint64_t n;
    int err;
} bcast_tx_arg;

static void *bcast_sender(void *p) {
    bcast_tx_arg *a = p;
    for (uint64_t v = 0; v < a->n; v++) {
        if (v % CREDIT_BATCH == 0)
            for (int r = 0; r < BCAST_RECEIVERS; r++) {
                int rc = tr_sem_acquire_many(&a->credits[r], CREDIT_BATCH, TR_NEVER);
                if (rc != 0) {
                    a->err = rc;
                    return NULL;
                }
                /* The permits are forgotten: the receiver adds them back. */
            }
        size_t receivers;
        int rc = tr_broadcast_send(a->tx, &v, &receivers);
        if (rc != 0) {
            a->err = rc;
            break;
        }
    }
    tr_broadcast_tx_drop(&a->tx);
    return NULL;
}

void *broadcast_fanout_body(void *p) {
    bench_out *out = p;
    tr_broadcast_tx *tx;
    tr_broadcast_rx *rx0;
    if (tr_broadcast_new(&tx, &rx0, BCAST_CAP, sizeof(uint64_t)) != 0)
        return NULL;
    tr_sem credits[BCAST_RECEIVERS];
    bcast_rx_arg ra[BCAST_RECEIVERS];
    tr_task *rt[BCAST_RECEIVERS], *st;
    for (int r = 0; r < BCAST_RECEIVERS; r++) {
        tr_sem_init(&credits[r], BCAST_CAP);
        memset(&ra[r], 0, sizeof ra[r]);
        ra[r].credit = &credits[r];
        tr_broadcast_subscribe(tx, &ra[r].rx);
        if (spawn(&rt[r], bcast_receiver, &ra[r]) != 0)
            return NULL;
    }
    tr_broadcast_rx_drop(&rx0);
    bcast_tx_arg sa = {tx, credits, out->n, 0};
    int64_t t0 = tr_now();
    if (spawn(&st, bcast_sender, &sa) != 0)
        return NULL;
    join(st);
    uint64_t lagged = 0;
    int ok = sa.err == 0;
    for (int r = 0; r < BCAST_RECEIVERS; r++) {
        join(rt[r]);
        lagged += ra[r].lagged;
        ok &= ra[r].sum == out->n * (out->n - 1) / 2;
    }
    out->ns = tr_now() - t0;
    for (int r = 0; r < BCAST_RECEIVERS; r++)
        tr_sem_destroy(&credits[r]);
    out->ok = ok && lagged == 0;
    append(out->extra, sizeof out->extra,
           "receivers=%d deliveries=%" PRIu64 " lagged=%" PRIu64 " cap=%d variant=%s",
           BCAST_RECEIVERS, out->n * BCAST_RECEIVERS, lagged, BCAST_CAP, place_name());
    return NULL;
}

/* ---- watch_updates ------------------------------------------------------------------------ */

typedef struct {
    tr_watch_rx *rx;
    uint64_t n, last, wakeups;
} watch_reader_arg;

static void *watch_reader(void *p) {
    watch_reader_arg *a = p;
    while (a->last != a->n) {
        if (tr_watch_changed(a->rx, TR_NEVER) != 0)
            break;
        a->wakeups++;
        tr_watch_ref ref;
        tr_watch_borrow_and_update(a->rx, &ref);
        a->last = *(const uint64_t *)ref.value;
        tr_watch_ref_release(&ref);
    }
    tr_watch_rx_drop(&a->rx);
    return NULL;
}

typedef struct {
    tr_watch_tx *tx;
    uint64_t n;
    int64_t t0, ns;
    int err;
} watch_writer_arg;

static void *watch_writer(void *p) {
    watch_writer_arg *a = p;
    for (uint64_t v = 1; v <= a->n; v++) {
        int rc = tr_watch_send(a->tx, &v);
        if (rc != 0) {
            a->err = rc;
            break;
        }
    }
    a->ns = tr_now() - a->t0;
    return NULL; /* tx stays alive until the readers are done */
}

void *watch_updates_body(void *p) {
    bench_out *out = p;
    uint64_t zero = 0;
    tr_watch_tx *tx;
    tr_watch_rx *rx0;
    if (tr_watch_new(&tx, &rx0, sizeof(uint64_t), &zero) != 0)
        return NULL;
    watch_reader_arg ra[WATCH_READERS];
    tr_task *rt[WATCH_READERS], *wt;
    for (int r = 0; r < WATCH_READERS; r++) {
        memset(&ra[r], 0, sizeof ra[r]);
        ra[r].n = out->n;
        tr_watch_rx_clone(rx0, &ra[r].rx);
        if (spawn(&rt[r], watch_reader, &ra[r]) != 0)
            return NULL;
    }
    tr_watch_rx_drop(&rx0);
    watch_writer_arg wa = {tx, out->n, tr_now(), 0, 0};
    if (spawn(&wt, watch_writer, &wa) != 0)
        return NULL;
    join(wt);
    int ok = wa.err == 0;
    for (int r = 0; r < WATCH_READERS; r++) {
        join(rt[r]);
        ok &= ra[r].last == out->n;
    }
    int64_t total = tr_now() - wa.t0;
    tr_watch_tx_drop(&tx);
    out->ns = wa.ns;
    out->ok = ok;
    append(out->extra, sizeof out->extra, "total_secs=%.6f finals=", (double)total / 1e9);
    for (int r = 0; r < WATCH_READERS; r++)
        append(out->extra, sizeof out->extra, "%s%" PRIu64, r ? "," : "", ra[r].last);
    append(out->extra, sizeof out->extra, " wakeups=");
    for (int r = 0; r < WATCH_READERS; r++)
        append(out->extra, sizeof out->extra, "%s%" PRIu64, r ? "," : "", ra[r].wakeups);
    append(out->extra, sizeof out->extra, " variant=%s", place_name());
    return NULL;
}
