/* bench_sup.c — supervisors, measured.
 *
 *   sup_restart   restart latency: a one_for_one supervisor's only child
 *                 (permanent; intensity high enough never to give up) is
 *                 sent "crash" then "stamp", n times.  The crashing
 *                 handler notes tr_now() and returns an abnormal reason;
 *                 the next incarnation's "stamp" handler adds the time
 *                 since then.  ns_per_op is the average of those n
 *                 latencies (crash -> end hook -> the supervisor's
 *                 on_down -> tr__actor_restart -> init -> the queued
 *                 message handled); wall_ns= is the whole loop.
 *   sup_shutdown  a tree of n workers: a one_for_one root with 100
 *                 DYNAMIC child supervisors, each with n/100 workers
 *                 (idle, no terminate).  Time from tr_sup_stop(root) to
 *                 its return; ns_per_op is per worker.  The root stops its
 *                 100 supervisors one by one (reverse order), each stops
 *                 its workers all at once.  start_ns= is the build time.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "tr_error.h"
#include "tr_runtime.h"
#include "tr_sup.h"
#include "tr_time.h"

/* ---- sup_restart ------------------------------------------------------------------- */

enum { R_CRASH = 1, R_STAMP };

static int64_t crash_at;   /* written by the crashing incarnation, read by the next */
static int64_t latency_sum;

static int r_handle(void *st, tr_actor_msg *m) {
    (void)st;
    int op = *(const int *)m->data;
    if (op == R_CRASH) {
        crash_at = tr_now();
        return 99;
    }
    latency_sum += tr_now() - crash_at;
    int64_t v = 0;
    if (m->reply)
        tr_reply_send(m->reply, &v);
    return 0;
}

static const tr_actor_type r_type = {
    .name = "bench_restart", .msg_size = sizeof(int), .reply_size = sizeof(int64_t),
    .handle = r_handle};

void *sup_restart_body(void *p) {
    bench_out *out = p;
    tr_child_spec kid = {.id = "r", .type = &r_type};
    tr_sup_spec spec = {.intensity = 1 << 30, .period_ms = 1, .children = &kid,
                        .nchildren = 1};
    tr_actor_ref sup;
    tr_sup_child_info info;
    size_t cnt = 0;
    if (tr_sup_start(&sup, &spec, NULL) != 0 ||
        tr_sup_which_children(sup, &info, 1, &cnt, TR_NEVER) != 0 || cnt != 1)
        return NULL;
    tr_actor_ref c = info.ref;
    latency_sum = 0;
    int rc = 0;
    int64_t t0 = tr_now();
    for (uint64_t i = 0; i < out->n && rc == 0; i++) {
        const int crash = R_CRASH, stamp = R_STAMP;
        int64_t v;
        rc = tr_actor_cast(c, &crash, TR_NEVER);
        if (rc == 0)
            rc = tr_actor_call(c, &stamp, &v, TR_NEVER);
    }
    int64_t wall = tr_now() - t0;
    out->ns = latency_sum;
    tr_sup_which_children(sup, &info, 1, &cnt, TR_NEVER);
    int rc2 = tr_sup_stop(sup, TR_NEVER);
    out->ok = rc == 0 && rc2 == 0 && info.restarts == out->n;
    append(out->extra, sizeof out->extra, "wall_ns=%" PRId64 " restarts=%u", wall,
           info.restarts);
    if (rc)
        append(out->extra, sizeof out->extra, " error=%s", tr_strerror_name(rc));
    return NULL;
}

/* ---- sup_shutdown ------------------------------------------------------------------- */

static int idle_handle(void *st, tr_actor_msg *m) {
    (void)st;
    (void)m;
    return 0;
}

static const tr_actor_type idle_type = {.name = "bench_idle", .msg_size = sizeof(int),
                                        .handle = idle_handle};

#define GROUPS 100

void *sup_shutdown_body(void *p) {
    bench_out *out = p;
    uint64_t per = out->n / GROUPS ? out->n / GROUPS : 1;
    out->n = per * GROUPS;
    tr_child_spec tmpl = {.type = &idle_type};
    tr_sup_spec dyn = {.strategy = TR_SUP_DYNAMIC, .children = &tmpl, .nchildren = 1};
    static char names[GROUPS][8];
    tr_child_spec groups[GROUPS];
    memset(groups, 0, sizeof groups);
    for (int i = 0; i < GROUPS; i++) {
        snprintf(names[i], sizeof names[i], "g%d", i);
        groups[i].id = names[i];
        groups[i].sup = &dyn;
    }
    tr_sup_spec root = {.children = groups, .nchildren = GROUPS};
    int64_t t0 = tr_now();
    tr_actor_ref sup;
    if (tr_sup_start(&sup, &root, NULL) != 0)
        return NULL;
    tr_sup_child_info *info = calloc(GROUPS, sizeof *info);
    size_t cnt = 0;
    int rc = info ? tr_sup_which_children(sup, info, GROUPS, &cnt, TR_NEVER) : TR_ENOMEM;
    for (size_t g = 0; rc == 0 && g < cnt; g++)
        for (uint64_t i = 0; rc == 0 && i < per; i++)
            rc = tr_sup_start_child(info[g].ref, NULL, NULL, TR_NEVER);
    int64_t built = tr_now() - t0;
    free(info);
    t0 = tr_now();
    int rc2 = tr_sup_stop(sup, TR_NEVER);
    out->ns = tr_now() - t0;
    out->ok = rc == 0 && rc2 == 0 && cnt == GROUPS;
    append(out->extra, sizeof out->extra, "groups=%d per_group=%" PRIu64 " start_ns=%" PRId64,
           GROUPS, per, built);
    if (rc)
        append(out->extra, sizeof out->extra, " error=%s", tr_strerror_name(rc));
    return NULL;
}
