/* bench_actors.c — the actor layer, measured.
 *
 *   actor_pingpong    the peers' pingpong (the tokio::sync docs' counter
 *                     task) through tr_actor_call: n calls to a counter
 *                     actor that replies with its value before the
 *                     increment; ns per round trip.  Same work as
 *                     `pingpong` (mpsc + oneshot by hand), so the two
 *                     lines show what the actor layer costs on top.
 *   count             Savina's Counting Actor: n casts to a counting actor,
 *                     then one call for the total; ns per message.
 *   threadring        Savina's Thread Ring: 100 actors in a ring pass a
 *                     token n hops, each casting the decremented token to
 *                     the next; the caller's reply slot travels with the
 *                     token (tr_reply_keep) and the actor that sees 0
 *                     answers; ns per hop.
 *   actor_memory      n idle actors with default mailboxes and an 8-byte
 *                     state; bytes_per_actor= is the RSS growth (from
 *                     /proc/self/statm) over the creation divided by n;
 *                     ns_per_op is per creation; then all are stopped
 *                     (stop_ns_per_actor=).
 *   fork_join_create  n times: spawn an actor, call it once, stop it;
 *                     ns per actor.
 *
 * Placement: actors are spawned with TR_WORKER_DEFAULT (the bench task's
 * worker), what a user's code does by default; --place=spread puts them
 * round robin on the workers, starting with the one after the bench
 * task's, so that calls and hops cross threads.  variant= says which.
 * Every wait is TR_NEVER: a hang is a bug the bench should show.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "tr_actor.h"
#include "tr_error.h"
#include "tr_runtime.h"
#include "tr_time.h"

#define RING 100

static const char *place_name(void) { return opt.spread ? "spread" : "local"; }

/* Options for the i-th actor a bench spawns. */
static tr_actor_opts place(uint64_t i) {
    tr_actor_opts o;
    memset(&o, 0, sizeof o);
    if (opt.spread) {
        int workers = tr_runtime_workers(tr_runtime_current());
        int self = tr_worker_current();
        o.worker = TR_WORKER((int)(((uint64_t)self + 1 + i) % (uint64_t)workers));
    }
    return o;
}

/* ---- a counter: actor_pingpong, count ---------------------------------------- */

enum { CNT_FETCH_ADD, CNT_GET };

/* Replies (to a call) with the count before the command; FETCH_ADD
 * increments, GET does not. */
static int counter_handle(void *state, tr_actor_msg *m) {
    uint64_t *count = state;
    uint64_t before = *count;
    if (*(const uint64_t *)m->data == CNT_FETCH_ADD)
        (*count)++;
    if (m->reply)
        tr_reply_send(m->reply, &before);
    return 0;
}

static const tr_actor_type counter_type = {
    .name = "bench_counter",
    .state_size = sizeof(uint64_t),
    .msg_size = sizeof(uint64_t),
    .reply_size = sizeof(uint64_t),
    .handle = counter_handle,
};

void *actor_pingpong_body(void *p) {
    bench_out *out = p;
    tr_actor_opts o = place(0);
    tr_actor_ref c;
    if (tr_actor_spawn(&c, &counter_type, NULL, &o) != 0)
        return NULL;
    const uint64_t cmd = CNT_FETCH_ADD;
    uint64_t last = UINT64_MAX, wrong = 0;
    int rc = 0;
    int64_t t0 = tr_now();
    for (uint64_t i = 0; i < out->n; i++) {
        if ((rc = tr_actor_call(c, &cmd, &last, TR_NEVER)) != 0)
            break;
        wrong += last != i;
    }
    out->ns = tr_now() - t0;
    const uint64_t get = CNT_GET;
    uint64_t final = 0;
    int rc2 = tr_actor_call(c, &get, &final, TR_NEVER);
    int rc3 = tr_actor_stop(c, TR_ACTOR_NORMAL, TR_NEVER);
    out->ok = rc == 0 && rc2 == 0 && rc3 == 0 && wrong == 0 && last == out->n - 1 &&
              final == out->n;
    append(out->extra, sizeof out->extra, "last=%" PRIu64 " variant=%s", last, place_name());
    if (rc)
        append(out->extra, sizeof out->extra, " error=%s", tr_strerror_name(rc));
    return NULL;
}

void *count_body(void *p) {
    bench_out *out = p;
    tr_actor_opts o = place(0);
    tr_actor_ref c;
    if (tr_actor_spawn(&c, &counter_type, NULL, &o) != 0)
        return NULL;
    const uint64_t inc = CNT_FETCH_ADD, get = CNT_GET;
    uint64_t total = 0;
    int rc = 0;
    int64_t t0 = tr_now();
    for (uint64_t i = 0; i < out->n && rc == 0; i++)
        rc = tr_actor_cast(c, &inc, TR_NEVER);
    if (rc == 0)
        rc = tr_actor_call(c, &get, &total, TR_NEVER);
    out->ns = tr_now() - t0;
    int rc2 = tr_actor_stop(c, TR_ACTOR_NORMAL, TR_NEVER);
    out->ok = rc == 0 && rc2 == 0 && total == out->n;
    append(out->extra, sizeof out->extra, "total=%" PRIu64 " cap=%d variant=%s", total,
           TR_ACTOR_DEFAULT_CAPACITY, place_name());
    if (rc)
        append(out->extra, sizeof out->extra, " error=%s", tr_strerror_name(rc));
    return NULL;
}

/* ---- threadring ----------------------------------------------------------------- */

enum { RING_LINK, RING_TOKEN };

typedef struct {
    int kind;
    uint64_t token;     /* hops still to go */
    tr_actor_ref next;  /* RING_LINK */
    tr_reply *reply;    /* RING_TOKEN: the caller's slot, kept by the first actor */
} ring_msg;

typedef struct {
    tr_actor_ref next;
    int index;
} ring_state;

static int ring_init(void *state, const void *args) {
    ((ring_state *)state)->index = *(const int *)args;
    return 0;
}

static int ring_handle(void *state, tr_actor_msg *m) {
    ring_state *st = state;
    const ring_msg *in = m->data;
    if (in->kind == RING_LINK) {
        st->next = in->next;
        return 0;
    }
    /* The call arrives at the first actor; from there the slot rides along. */
    tr_reply *r = m->reply ? tr_reply_keep(m) : in->reply;
    if (in->token == 0) {
        tr_reply_send(r, &st->index); /* TR_ECLOSED only if the caller gave up */
        return 0;
    }
    ring_msg fwd = {RING_TOKEN, in->token - 1, TR_ACTOR_NONE, r};
    int rc = tr_actor_cast(st->next, &fwd, TR_NEVER);
    if (rc != 0)
        tr_reply_drop(r); /* the caller hears TR_EDOWN instead of hanging */
    return rc;
}

static const tr_actor_type ring_type = {
    .name = "ring",
    .state_size = sizeof(ring_state),
    .msg_size = sizeof(ring_msg),
    .reply_size = sizeof(int),
    .init = ring_init,
    .handle = ring_handle,
};

void *threadring_body(void *p) {
    bench_out *out = p;
    tr_actor_ref ring[RING];
    int rc = 0, spawned = 0;
    for (int i = 0; i < RING && rc == 0; i++) {
        tr_actor_opts o = place((uint64_t)i);
        if ((rc = tr_actor_spawn(&ring[i], &ring_type, &i, &o)) == 0)
            spawned++;
    }
    for (int i = 0; i < spawned && rc == 0; i++) {
        ring_msg link = {RING_LINK, 0, ring[(i + 1) % RING], NULL};
        rc = tr_actor_cast(ring[i], &link, TR_NEVER);
    }
    int who = -1;
    int64_t t0 = tr_now();
    if (rc == 0) {
        ring_msg start = {RING_TOKEN, out->n, TR_ACTOR_NONE, NULL};
        rc = tr_actor_call(ring[0], &start, &who, TR_NEVER);
    }
    out->ns = tr_now() - t0;
    int stop_err = 0;
    for (int i = 0; i < spawned; i++)
        stop_err |= tr_actor_stop(ring[i], TR_ACTOR_NORMAL, TR_NEVER) != 0;
    out->ok = rc == 0 && stop_err == 0 && who == (int)(out->n % RING);
    append(out->extra, sizeof out->extra, "actors=%d last=%d variant=%s", RING, who,
           place_name());
    if (rc)
        append(out->extra, sizeof out->extra, " error=%s", tr_strerror_name(rc));
    return NULL;
}

/* ---- actor_memory --------------------------------------------------------------- */

static int idle_handle(void *state, tr_actor_msg *m) {
    (void)state;
    (void)m;
    return 0;
}

static const tr_actor_type idle_type = {
    .name = "idle",
    .state_size = 8,
    .msg_size = 8,
    .reply_size = 8,
    .handle = idle_handle,
};

/* Resident bytes of this process, or -1. */
static long rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return -1;
    long size, resident;
    int got = fscanf(f, "%ld %ld", &size, &resident);
    fclose(f);
    return got == 2 ? resident * sysconf(_SC_PAGESIZE) : -1;
}

void *actor_memory_body(void *p) {
    bench_out *out = p;
    uint64_t n = out->n;
    /* The refs are the bench's, not the actors': made resident before
     * measuring.  Not with zeros: the compiler turns malloc + memset 0
     * into calloc, whose fresh pages stay untouched until the spawns
     * write them, which would charge 8 bytes per actor to the layer. */
    tr_actor_ref *refs = malloc(n * sizeof *refs);
    if (!refs)
        return NULL;
    memset(refs, 0xff, n * sizeof *refs);
    long before = rss_bytes();
    uint64_t made = 0;
    int rc = 0;
    int64_t t0 = tr_now();
    for (; made < n; made++) {
        tr_actor_opts o = place(made);
        if ((rc = tr_actor_spawn(&refs[made], &idle_type, NULL, &o)) != 0)
            break;
    }
    out->ns = tr_now() - t0;
    long after = rss_bytes();
    uint64_t stop_err = 0;
    int64_t t1 = tr_now();
    for (uint64_t i = 0; i < made; i++)
        stop_err += tr_actor_stop(refs[i], TR_ACTOR_NORMAL, TR_NEVER) != 0;
    int64_t stop_ns = tr_now() - t1;
    free(refs);
    long per = made ? (after - before) / (long)made : 0;
    out->ok = rc == 0 && stop_err == 0 && before > 0 && after > 0;
    append(out->extra, sizeof out->extra,
           "bytes_per_actor=%ld rss_before_kb=%ld rss_after_kb=%ld stop_ns_per_actor=%.0f "
           "target=256 variant=%s",
           per, before / 1024, after / 1024, made ? (double)stop_ns / (double)made : 0.0,
           place_name());
    if (rc)
        append(out->extra, sizeof out->extra, " error=%s made=%" PRIu64, tr_strerror_name(rc),
               made);
    if (stop_err)
        append(out->extra, sizeof out->extra, " stop_errors=%" PRIu64, stop_err);
    return NULL;
}

/* ---- fork_join_create ---------------------------------------------------------- */

static int echo_init(void *state, const void *args) {
    *(uint64_t *)state = *(const uint64_t *)args;
    return 0;
}

/* Replies with its start argument plus the request. */
static int echo_handle(void *state, tr_actor_msg *m) {
    uint64_t v = *(uint64_t *)state + *(const uint64_t *)m->data;
    return m->reply ? tr_reply_send(m->reply, &v) : 0;
}

static const tr_actor_type echo_type = {
    .name = "echo",
    .state_size = sizeof(uint64_t),
    .msg_size = sizeof(uint64_t),
    .reply_size = sizeof(uint64_t),
    .init = echo_init,
    .handle = echo_handle,
};

void *fork_join_create_body(void *p) {
    bench_out *out = p;
    uint64_t wrong = 0, i;
    int rc = 0;
    int64_t t0 = tr_now();
    for (i = 0; i < out->n && rc == 0; i++) {
        tr_actor_opts o = place(i);
        tr_actor_ref a;
        if ((rc = tr_actor_spawn(&a, &echo_type, &i, &o)) != 0)
            break;
        uint64_t one = 1, v = 0;
        rc = tr_actor_call(a, &one, &v, TR_NEVER);
        wrong += v != i + 1;
        int rc2 = tr_actor_stop(a, TR_ACTOR_NORMAL, TR_NEVER);
        if (rc == 0)
            rc = rc2;
    }
    out->ns = tr_now() - t0;
    out->ok = rc == 0 && wrong == 0;
    append(out->extra, sizeof out->extra, "variant=%s", place_name());
    if (rc)
        append(out->extra, sizeof out->extra, " error=%s at=%" PRIu64, tr_strerror_name(rc), i);
    return NULL;
}
