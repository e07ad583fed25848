/* troupe-bench.c — troupe's side of the peer benchmarks.
 *
 * Why: speed and memory are measured here, never in timed tests.
 * The peer programs (tokio, Go, Erlang; ../shared/peers/) print one line
 * per result, and this program prints exactly the same form with
 * impl=troupe, so that one script runs both, interleaved, and prints the
 * medians and a troupe-versus-fastest-peer ratio per bench:
 *
 *   bench=NAME impl=troupe n=OPS secs=S ops_per_sec=X ns_per_op=Y ok=1 threads=W [k=v ...]
 *
 * secs is wall time taken with tr_now() inside a task, so creating and
 * shutting down the runtime is not counted (as for the peers).  ok=1 only
 * when the bench's check passed; otherwise ok=0 and the exit status is 1.
 *
 * Benches:
 *   switch  two tasks on one worker yield to each other (tr_yield), n yields
 *           in all (default 10,000,000); ns per switch.  1 worker.
 *   spawn   a task spawns and joins an empty task, n times (default
 *           1,000,000); ns per spawn + join.  1 worker.
 *   skynet  the peers' skynet: n leaves (default 1,000,000; a power of 10) in
 *           a 10-ary tree (1,111,111 tasks); a leaf returns its number, a
 *           parent spawns its 10 children, then joins them and returns the
 *           sum; the check is sum == n(n-1)/2.  One worker per CPU.
 *           ns_per_op is per leaf, as for the peers.
 *   mpsc_1p1c, mpsc_4p1c   2,000,000 u64 through a channel of capacity
 *           1024 from 1 (4) producer tasks to one consumer task that sums.
 *   pingpong   the tokio::sync docs' counter task: 500,000 requests over an
 *           mpsc of capacity 100, each carrying a oneshot reply slot (in
 *           the caller's frame); ns per round trip.
 *   broadcast_fanout   200,000 u64 to 8 receiver tasks through a broadcast
 *           of capacity 1024; the sender holds a credit window of 1024 per
 *           receiver (a semaphore each, 64 permits at a time), so lagged=0.
 *   watch_updates   1,000,000 sends of a u64 on a watch, 4 reader tasks
 *           doing changed() then borrow_and_update(); secs is the writer's
 *           loop, total_secs until every reader saw the last value.
 *           The channel benches run on one worker per CPU (bench_channels.c).
 *   mutex_uncontended, mutex_contended, semaphore_10, semaphore_5,
 *   notify_one, select4   the locks' and select's own benches, described
 *           in bench_sync.c (no peer runs them).
 *   actor_pingpong   pingpong's work through tr_actor_call to a counter
 *           actor (500,000 calls); ns per round trip.
 *   count   Savina: 1,000,000 casts to a counting actor, then one call for
 *           the total; ns per message.
 *   threadring   Savina: 100 actors in a ring pass a token 1,000,000 hops;
 *           ns per hop.
 *   actor_memory   1,000,000 idle actors (default mailbox, 8-byte state);
 *           bytes_per_actor= is the RSS growth divided by the count.
 *   fork_join_create   100,000 times: spawn an actor, call it, stop it;
 *           ns per actor.  The actor benches are described in
 *           bench_actors.c; they run on one worker per CPU and take
 *           --place=spread too.
 *   kvd     the flagship daemon (examples/kvd/kvd) as a subprocess, 64
 *           clients on loopback doing request/reply, n requests in all
 *           (default 100,000); ns per request, requests/s, and
 *           mean_latency_us=.  Described in bench_kvd.c.
 *   all     each of the above, each in a fresh (forked) process.
 *
 * Run it beside the peers, from the top of the source tree:
 *
 *   TROUPE_BENCH=bench/troupe-bench ../shared/peers/run_all.sh
 *   TROUPE_BENCH=bench/troupe-bench BENCHES=skynet REPS=3 ../shared/peers/run_all.sh
 *
 * If the peers were built in a copy elsewhere (e.g. /tmp/peers, so that no
 * build output lands in the shared, read-only directory), give an absolute
 * path, because that script changes into its own directory:
 *
 *   TROUPE_BENCH=$PWD/bench/troupe-bench BENCHES=skynet /tmp/peers/run_all.sh
 *
 * Alone:  bench/troupe-bench [options] <bench|all> [n]
 * Options (they may also sit in TROUPE_BENCH, before the bench name):
 *   --workers=N     worker threads (0 = one per CPU); default 1 for switch
 *                   and spawn, one per CPU for skynet
 *   --skynet=MODE   local:  every task spawns its children on its own worker
 *                           (tr_spawn); the whole tree lives on one worker
 *                   spread: the top levels (the root's 10 children with 2
 *                           workers; more levels when 10 does not divide
 *                           evenly) go round robin to TR_WORKER(i), and each
 *                           subtree then stays on its worker (default)
 *                   balanced: like spread but with TR_WORKER_BALANCED
 *   --stack=BYTES   task stack size for the runtime (0 = TR_STACK_DEFAULT)
 *   --place=MODE    channel and actor benches: local (default): tasks spawned with
 *                   tr_spawn(), on the spawning task's worker, as a user's
 *                   code would; spread: round robin over the workers
 *   --stats         skynet: count the tasks alive at once (one shared
 *                   atomic, so it costs time) and print peak_live=
 *
 * Extra fields: variant= (skynet mode or placement), peak_rss_kb= (getrusage of this
 * process; run_all.sh adds its own max_rss_kb= from /usr/bin/time).
 */
#include <errno.h>
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
#include "bench.h"

/* ---- options and the result line ----------------------------------------- */

const char *const skynet_mode_names[] = {"local", "spread", "balanced"};

bench_opts opt = {-1, SKY_SPREAD, 0, 0, 0};

static long peak_rss_kb(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return -1;
    return ru.ru_maxrss; /* kilobytes on Linux */
}

static void report(const char *bench, uint64_t n, int64_t ns, int ok, int threads,
                   const char *extra) {
    double secs = (double)ns / 1e9;
    if (secs <= 0)
        secs = 1e-9;
    printf("bench=%s impl=troupe n=%" PRIu64 " secs=%.6f ops_per_sec=%.0f ns_per_op=%.2f ok=%d "
           "threads=%d%s%s peak_rss_kb=%ld\n",
           bench, n, secs, (double)n / secs, secs * 1e9 / (double)n, ok ? 1 : 0, threads,
           extra[0] ? " " : "", extra, peak_rss_kb());
    fflush(stdout);
}

/* Creates the runtime, runs body(arg) as a task and frees the runtime.
 * Returns the worker count, or -1 (after a message) on failure. */
static int run_on_runtime(int default_workers, tr_task_fn body, void *arg) {
    tr_runtime_opts ro;
    memset(&ro, 0, sizeof ro);
    ro.workers = opt.workers >= 0 ? opt.workers : default_workers;
    ro.stack_size = opt.stack;
    tr_runtime *rt = NULL;
    int rc = tr_runtime_new(&rt, &ro);
    if (rc != 0) {
        fprintf(stderr, "troupe-bench: tr_runtime_new: %s\n", tr_strerror(rc));
        return -1;
    }
    int workers = tr_runtime_workers(rt);
    rc = tr_runtime_block_on(rt, body, arg, NULL);
    tr_runtime_free(&rt);
    if (rc != 0) {
        fprintf(stderr, "troupe-bench: tr_runtime_block_on: %s\n", tr_strerror(rc));
        return -1;
    }
    return workers;
}

/* ---- switch: two tasks on one worker yield to each other ------------------ */

void append(char *buf, size_t cap, const char *fmt, ...) {
    size_t len = strlen(buf);
    if (len + 1 >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + len, cap - len, fmt, ap);
    va_end(ap);
}

/* ---- the driver ----------------------------------------------------------------- */

static const struct bench {
    const char *name;
    tr_task_fn body;
    uint64_t default_n;
    int default_workers; /* 0: one per CPU */
} benches[] = {
    {"switch", switch_body, 10000000, 1},
    {"spawn", spawn_body, 1000000, 1},
    {"skynet", skynet_body, 1000000, 0},
    {"mpsc_1p1c", mpsc_1p1c_body, 2000000, 0},
    {"mpsc_4p1c", mpsc_4p1c_body, 2000000, 0},
    {"pingpong", pingpong_body, 500000, 0},
    {"broadcast_fanout", broadcast_fanout_body, 200000, 0},
    {"watch_updates", watch_updates_body, 1000000, 0},
    {"mutex_uncontended", mutex_uncontended_body, 10000000, 0},
    {"mutex_contended", mutex_contended_body, 1000000, 2},
    {"semaphore_10", semaphore_10_body, 1000000, 2},
    {"semaphore_5", semaphore_5_body, 1000000, 2},
    {"notify_one", notify_one_body, 1000000, 0},
    {"select4", select4_body, 2000000, 0},
    {"actor_pingpong", actor_pingpong_body, 500000, 0},
    {"count", count_body, 1000000, 0},
    {"threadring", threadring_body, 1000000, 0},
    {"actor_memory", actor_memory_body, 1000000, 0},
    {"fork_join_create", fork_join_create_body, 100000, 0},
    {"sup_restart", sup_restart_body, 100000, 0}, {"sup_shutdown", sup_shutdown_body, 10000, 0},
    {"kvd", kvd_body, 100000, 0},
};
#define NBENCH (sizeof benches / sizeof benches[0])

static void usage(FILE *f) {
    fprintf(f,
            "usage: troupe-bench [--workers=N] [--skynet=local|spread|balanced] [--stack=BYTES]\n"
            "                    [--place=local|spread] [--stats] <bench|all> [n]\n"
            "benches: switch spawn skynet mpsc_1p1c mpsc_4p1c pingpong broadcast_fanout\n"
            "         watch_updates mutex_uncontended mutex_contended semaphore_10\n"
            "         semaphore_5 notify_one select4 actor_pingpong count threadring\n"
            "         actor_memory fork_join_create kvd\n"
            "Prints bench=NAME impl=troupe n=.. secs=.. ops_per_sec=.. ns_per_op=.. ok=.. "
            "threads=..\n");
}

/* Runs one bench in this process: 0 when its check passed, 1 when it
 * failed, 2 when it could not run. */
static int run_bench(const struct bench *b, uint64_t n) {
    bench_out out;
    memset(&out, 0, sizeof out);
    out.n = n;
    int workers = run_on_runtime(b->default_workers, b->body, &out);
    if (workers < 0)
        return 2;
    report(b->name, n, out.ns, out.ok, workers, out.extra);
    return out.ok ? 0 : 1;
}

static int parse_u64(const char *s, uint64_t *out) {
    char *end;
    if (!*s || *s == '-')
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv) {
    const char *name = NULL, *nstr = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        uint64_t v;
        if (strncmp(a, "--workers=", 10) == 0 && parse_u64(a + 10, &v) == 0 && v <= 4096) {
            opt.workers = (int)v;
        } else if (strcmp(a, "--skynet=local") == 0) {
            opt.sky = SKY_LOCAL;
        } else if (strcmp(a, "--skynet=spread") == 0) {
            opt.sky = SKY_SPREAD;
        } else if (strcmp(a, "--skynet=balanced") == 0) {
            opt.sky = SKY_BALANCED;
        } else if (strncmp(a, "--stack=", 8) == 0 && parse_u64(a + 8, &v) == 0 &&
                   v <= (uint64_t)1 << 30) {
            opt.stack = (size_t)v;
        } else if (strcmp(a, "--place=local") == 0) {
            opt.spread = 0;
        } else if (strcmp(a, "--place=spread") == 0) {
            opt.spread = 1;
        } else if (strcmp(a, "--stats") == 0) {
            opt.stats = 1;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (a[0] == '-') {
            fprintf(stderr, "troupe-bench: bad option %s\n", a);
            usage(stderr);
            return 2;
        } else if (!name) {
            name = a;
        } else if (!nstr) {
            nstr = a;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (!name) {
        usage(stderr);
        return 2;
    }

    skynet_setup();

    if (strcmp(name, "all") == 0) {
        if (nstr) {
            fprintf(stderr, "troupe-bench: 'all' takes no n\n");
            return 2;
        }
        /* A fresh process per bench, as run_all.sh does: the heap and the
         * stack pool one bench leaves behind would colour the next. */
        int status = 0;
        for (size_t i = 0; i < NBENCH; i++) {
            fflush(stdout);
            pid_t pid = fork();
            if (pid < 0) {
                perror("troupe-bench: fork");
                return 2;
            }
            if (pid == 0) {
                int rc = run_bench(&benches[i], benches[i].default_n);
                fflush(stdout);
                _exit(rc);
            }
            int ws;
            if (waitpid(pid, &ws, 0) < 0) {
                perror("troupe-bench: waitpid");
                return 2;
            }
            if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
                fprintf(stderr, "troupe-bench: %s failed (status 0x%x)\n", benches[i].name, ws);
                status = 1;
            }
        }
        return status;
    }

    const struct bench *b = NULL;
    for (size_t i = 0; i < NBENCH; i++)
        if (strcmp(name, benches[i].name) == 0)
            b = &benches[i];
    if (!b) {
        fprintf(stderr, "troupe-bench: unknown bench '%s'\n", name);
        usage(stderr);
        return 2;
    }
    uint64_t n = b->default_n;
    if (nstr && (parse_u64(nstr, &n) != 0 || n == 0)) {
        fprintf(stderr, "troupe-bench: bad n '%s'\n", nstr);
        return 2;
    }
    if (b->body == skynet_body) {
        if (!skynet_n_ok(n)) {
            fprintf(stderr, "troupe-bench: skynet needs n = a power of 10 (that fits a word)\n");
            return 2;
        }
    }
    return run_bench(b, n);
}
