/* bench_runtime.c — the runtime's benches: switch, spawn, skynet.
 *
 * What each does is described in troupe-bench.c, beside the others.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tr_error.h"
#include "tr_runtime.h"
#include "tr_time.h"

/* ---- options and the result line ----------------------------------------- */

#include "bench.h"

typedef struct {
    uint64_t per[2];      /* yields each task makes */
    int started;          /* both tasks are on the same worker: no atomics */
    int last;             /* the task that ran last: strict alternation */
    uint64_t repeats;     /* times a task found itself running twice in a row */
    int err;              /* first error from tr_yield */
    int worker[2];
    int64_t t0, t1;
} switch_state;

typedef struct {
    switch_state *s;
    int me;
} switch_arg;

static void *switch_task(void *p) {
    switch_arg *a = p;
    switch_state *s = a->s;
    int me = a->me;
    s->worker[me] = tr_worker_current();
    /* Start the clock only when both tasks exist, so that the loop times
     * nothing but yields between the two. */
    if (++s->started == 2)
        s->t0 = tr_now();
    while (s->started < 2) {
        int rc = tr_yield();
        if (rc != 0) {
            s->err = rc;
            return NULL;
        }
    }
    for (uint64_t i = s->per[me]; i > 0; i--) {
        if (s->last == me)
            s->repeats++;
        s->last = me;
        int rc = tr_yield();
        if (rc != 0) {
            if (!s->err)
                s->err = rc;
            return NULL;
        }
    }
    s->t1 = tr_now();
    return (void *)(uintptr_t)(me + 1);
}


void *switch_body(void *p) {
    bench_out *out = p;
    switch_state s;
    memset(&s, 0, sizeof s);
    s.per[0] = out->n - out->n / 2;
    s.per[1] = out->n / 2;
    s.last = -1;
    switch_arg args[2] = {{&s, 0}, {&s, 1}};
    tr_task *t[2] = {NULL, NULL};
    int ok = 1;
    for (int i = 0; i < 2; i++) {
        int rc = tr_spawn(&t[i], switch_task, &args[i]);
        if (rc != 0) {
            fprintf(stderr, "troupe-bench: switch: tr_spawn: %s\n", tr_strerror(rc));
            ok = 0;
            t[i] = NULL;
        }
    }
    for (int i = 0; i < 2; i++) {
        void *r = NULL;
        if (!t[i])
            continue;
        int rc = tr_task_join(t[i], &r);
        if (rc != 0 || r != (void *)(uintptr_t)(i + 1)) {
            fprintf(stderr, "troupe-bench: switch: task %d: join %s, result %p\n", i,
                    tr_strerror(rc), r);
            ok = 0;
        }
    }
    if (s.err) {
        fprintf(stderr, "troupe-bench: switch: tr_yield: %s\n", tr_strerror(s.err));
        ok = 0;
    }
    if (s.worker[0] != s.worker[1]) {
        fprintf(stderr, "troupe-bench: switch: tasks ran on workers %d and %d\n", s.worker[0],
                s.worker[1]);
        ok = 0;
    }
    if (s.repeats != 0) {
        fprintf(stderr, "troupe-bench: switch: %" PRIu64 " yields did not switch tasks\n",
                s.repeats);
        ok = 0;
    }
    out->ns = s.t1 - s.t0;
    out->ok = ok;
    append(out->extra, sizeof out->extra, "repeats=%" PRIu64, s.repeats);
    return NULL;
}

/* ---- spawn: spawn + join of an empty task ---------------------------------- */

static void *empty_task(void *arg) { return arg; }

void *spawn_body(void *p) {
    bench_out *out = p;
    uint64_t bad = 0;
    int err = 0;
    int64_t t0 = tr_now();
    for (uint64_t i = 0; i < out->n; i++) {
        tr_task *t;
        void *r = NULL;
        void *want = (void *)(uintptr_t)(i + 1);
        int rc = tr_spawn(&t, empty_task, want);
        if (rc == 0)
            rc = tr_task_join(t, &r);
        if (rc != 0) {
            err = rc;
            break;
        }
        if (r != want)
            bad++;
    }
    out->ns = tr_now() - t0;
    if (err)
        fprintf(stderr, "troupe-bench: spawn: %s\n", tr_strerror(err));
    if (bad)
        fprintf(stderr, "troupe-bench: spawn: %" PRIu64 " wrong results\n", bad);
    out->ok = !err && !bad;
    return NULL;
}

/* ---- skynet ------------------------------------------------------------------
 * A node's argument packs its first leaf number and its level (log10 of the
 * leaves under it) into one word: (num << 6) | level.  Results come back
 * through the task's void * result.  On a 32-bit host the sum wraps, and the
 * check compares the wrapped values.
 */

#define SKY_DIV 10
#define SKY_LEVEL_BITS 6
#define SKY_MAX_LEVEL 19

static uintptr_t sky_pow10[SKY_MAX_LEVEL + 1];
static unsigned sky_root_level;
static int sky_spread_levels;   /* levels below the root that leave their worker */
static int sky_workers;
static atomic_int sky_err;      /* first spawn/join error */
static atomic_long sky_live, sky_peak;
#define SKY_STAT_WORKERS 16
static atomic_long sky_leaves_on[SKY_STAT_WORKERS]; /* --stats: leaves run per worker */

static void *skynet_node(void *arg);

static inline void *sky_pack(uintptr_t num, unsigned level) {
    return (void *)((num << SKY_LEVEL_BITS) | level);
}

/* --stats: tasks spawned and not yet returned, and the most at once. */
static void sky_count_spawn(void) {
    long now = atomic_fetch_add_explicit(&sky_live, 1, memory_order_relaxed) + 1;
    long peak = atomic_load_explicit(&sky_peak, memory_order_relaxed);
    while (now > peak && !atomic_compare_exchange_weak_explicit(
                             &sky_peak, &peak, now, memory_order_relaxed, memory_order_relaxed))
        ;
}

static int sky_spawn(tr_task **t, uintptr_t num, unsigned level, int depth) {
    if (opt.stats)
        sky_count_spawn();
    if (depth < 0 || depth >= sky_spread_levels) /* the root (-1) and deep levels */
        return tr_spawn(t, skynet_node, sky_pack(num, level));
    tr_spawn_opts so;
    memset(&so, 0, sizeof so);
    if (opt.sky == SKY_BALANCED)
        so.worker = TR_WORKER_BALANCED;
    else /* this node's ordinal within its level, round robin */
        so.worker = TR_WORKER((int)((num / sky_pow10[level]) % (uintptr_t)sky_workers));
    return tr_spawn_ex(NULL, &so, t, skynet_node, sky_pack(num, level));
}

static void sky_fail(int rc) {
    int zero = 0;
    atomic_compare_exchange_strong(&sky_err, &zero, rc);
}

static void *skynet_node(void *arg) {
    uintptr_t a = (uintptr_t)arg;
    unsigned level = (unsigned)(a & ((1u << SKY_LEVEL_BITS) - 1));
    uintptr_t num = a >> SKY_LEVEL_BITS;
    if (level == 0) {
        if (opt.stats) {
            atomic_fetch_sub_explicit(&sky_live, 1, memory_order_relaxed);
            int w = tr_worker_current();
            if (w >= 0 && w < SKY_STAT_WORKERS)
                atomic_fetch_add_explicit(&sky_leaves_on[w], 1, memory_order_relaxed);
        }
        return (void *)num;
    }

    /* How far below the root this node's children are (the root's
     * children: 0); it decides whether they leave this worker. */
    int depth = (int)(sky_root_level - level);

    uintptr_t sub = sky_pow10[level - 1];
    tr_task *kids[SKY_DIV];
    int spawned = 0;
    for (int i = 0; i < SKY_DIV; i++) {
        int rc = sky_spawn(&kids[i], num + (uintptr_t)i * sub, level - 1, depth);
        if (rc != 0) {
            sky_fail(rc);
            break;
        }
        spawned++;
    }
    uintptr_t sum = 0;
    for (int i = 0; i < spawned; i++) {
        void *r = NULL;
        int rc = tr_task_join(kids[i], &r);
        if (rc != 0) {
            sky_fail(rc);
            continue;
        }
        sum += (uintptr_t)r;
    }
    if (opt.stats)
        atomic_fetch_sub_explicit(&sky_live, 1, memory_order_relaxed);
    return (void *)sum;
}

void *skynet_body(void *p) {
    bench_out *out = p;
    sky_workers = tr_runtime_workers(tr_runtime_current());
    sky_root_level = 0;
    for (uint64_t s = out->n; s > 1; s /= SKY_DIV)
        sky_root_level++;
    /* Spread as many levels as it takes for the subtrees to divide evenly
     * among the workers, or to number at least 10 per worker: one level (the
     * root's 10 children) for 2, 5 or 10 workers, two for 4 or 3, three for
     * 16.  Below those levels every task spawns on its own worker. */
    sky_spread_levels = 0;
    if (opt.sky != SKY_LOCAL && sky_workers > 1) {
        uint64_t nodes = 1;
        while ((unsigned)sky_spread_levels < sky_root_level &&
               (nodes == 1 || (nodes % (uint64_t)sky_workers != 0 &&
                               nodes < (uint64_t)SKY_DIV * (uint64_t)sky_workers))) {
            nodes *= SKY_DIV;
            sky_spread_levels++;
        }
    }

    uint64_t n = out->n;
    uint64_t want = n % 2 ? n * ((n - 1) / 2) : n / 2 * (n - 1);
    tr_task *root = NULL;
    void *r = NULL;
    int64_t t0 = tr_now();
    int rc = sky_spawn(&root, 0, sky_root_level, -1);
    if (rc == 0)
        rc = tr_task_join(root, &r);
    out->ns = tr_now() - t0;

    int ok = 1;
    if (rc != 0) {
        fprintf(stderr, "troupe-bench: skynet: root: %s\n", tr_strerror(rc));
        ok = 0;
    }
    int err = atomic_load(&sky_err);
    if (err != 0) {
        fprintf(stderr, "troupe-bench: skynet: first failure: %s\n", tr_strerror(err));
        ok = 0;
    }
    uintptr_t sum = (uintptr_t)r;
    if (sum != (uintptr_t)want) {
        fprintf(stderr, "troupe-bench: skynet: sum %" PRIuPTR ", want %" PRIu64 "\n", sum, want);
        ok = 0;
    }
    out->ok = ok;
    append(out->extra, sizeof out->extra, "variant=%s sum=%" PRIuPTR,
           skynet_mode_names[opt.sky], sum);
    if (opt.stats) {
        append(out->extra, sizeof out->extra, " peak_live=%ld", atomic_load(&sky_peak));
        for (int w = 0; w < sky_workers && w < SKY_STAT_WORKERS; w++)
            append(out->extra, sizeof out->extra, "%s%ld", w ? "/" : " leaves_per_worker=",
                   atomic_load(&sky_leaves_on[w]));
    }
    return NULL;
}


void skynet_setup(void) {
    sky_pow10[0] = 1;
    for (int l = 1; l <= SKY_MAX_LEVEL; l++)
        sky_pow10[l] = sky_pow10[l - 1] * SKY_DIV; /* wraps on 32 bits; unused there */
}

int skynet_n_ok(uint64_t n) {
    uint64_t p = 1;
    while (p < n && p <= UINT64_MAX / SKY_DIV)
        p *= SKY_DIV;
    return p == n && n <= (uint64_t)(UINTPTR_MAX >> SKY_LEVEL_BITS);
}
