/* sup_run.c — the process level: a daemon's main() in one call.
 *
 * tr_sup_run loads the configuration, starts the root supervisor, and
 * turns SIGHUP into a reload and SIGINT / SIGTERM into a graceful stop.
 *
 * Signals.  The runtime's workers already exist when tr_sup_run is called,
 * with whatever signal mask the program had, so blocking the signals on
 * the calling thread and sigwait()ing would not work: the kernel would
 * deliver them to a worker, whose default action kills the process.
 * troupe's own signal handles (runtime/tr_signal.h) install a handler for
 * the whole process through the runtime's event loop, count deliveries
 * so none is lost, and put the previous disposition back when the last
 * handle closes — exactly "own the signals while running, leave nothing
 * behind".  A handle is waited on by one task, so three small tasks wait
 * for SIGHUP, SIGINT and SIGTERM and a fourth for the root's end; each
 * reports to the calling thread through a mutex and a condition variable,
 * which that thread sleeps on (no polling).  On the way out the tasks are
 * cancelled and joined and the handles closed, restoring the dispositions.
 *
 * The configuration is a json_t * under a mutex (tr_sup_config_get takes a
 * reference under it) and a watch of a generation counter: the watch says
 * "it changed", the getter hands out the current document.  Publishing a
 * document in the watch itself would make every reader borrow it under the
 * watch's reader count, for as long as it looks at the JSON.
 *
 * Exit statuses: 0 after a signal and a stop within the deadline, or when
 * the root ended by itself normally (reason NORMAL, or SHUTDOWN from
 * auto_shutdown); 1 when the configuration or the tree could not start, or
 * the root ended abnormally — giving up after too much restart intensity
 * counts as abnormal for a daemon, though the root's reason is SHUTDOWN as
 * in OTP: it is told apart by the reason text the supervisor leaves
 * (tr_actor_info.reason_text mentions "intensity"); 2 when the stop's
 * deadline passed.
 */
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "tr_error.h"
#include "tr_signal.h"
#include "tr_sup.h"

/* ---- the published configuration ---------------------------------------------------- */

static pthread_mutex_t cfg_mu = PTHREAD_MUTEX_INITIALIZER;
static bool run_active;
static json_t *cfg_cur;
static tr_watch_tx *cfg_tx;
static uint64_t cfg_gen;

/* A deep copy, not a reference: readers on any worker would otherwise
 * share jansson reference counts (not thread-safe: its inline incref reads
 * the count unsynchronised) with the publisher and with each other.  A
 * configuration is small and read on a change, not per request. */
json_t *tr_sup_config_get(void) {
    pthread_mutex_lock(&cfg_mu);
    json_t *j = cfg_cur ? json_deep_copy(cfg_cur) : NULL;
    pthread_mutex_unlock(&cfg_mu);
    return j;
}

int tr_sup_config_subscribe(tr_watch_rx **out) {
    if (!out)
        return TR_EINVAL;
    *out = NULL;
    pthread_mutex_lock(&cfg_mu);
    int rc = cfg_tx ? tr_watch_subscribe(cfg_tx, out) : TR_EINVAL;
    pthread_mutex_unlock(&cfg_mu);
    return rc;
}

/* Takes doc's reference. */
static void publish(json_t *doc) {
    pthread_mutex_lock(&cfg_mu);
    json_t *old = cfg_cur;
    cfg_cur = doc;
    uint64_t gen = ++cfg_gen;
    tr_watch_send_replace(cfg_tx, &gen, NULL); /* never waits; fine without receivers */
    pthread_mutex_unlock(&cfg_mu);
    json_decref(old);
}

/* ---- reports --------------------------------------------------------------------------- */

__attribute__((format(printf, 2, 3))) static void say(const tr_sup_run_opts *o,
                                                     const char *fmt, ...) {
    char line[1024] = "troupe: ";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + 8, sizeof line - 8, fmt, ap);
    va_end(ap);
    if (o && o->log)
        o->log(line, o->ctx);
    else
        fprintf(stderr, "%s\n", line);
}

/* Loads and checks the file; NULL (reported) when it cannot be used. */
static json_t *load_config(const tr_sup_run_opts *o) {
    json_error_t je;
    json_t *doc = json_load_file(o->config_path, 0, &je);
    if (!doc) {
        say(o, "%s:%d:%d: %s", o->config_path, je.line, je.column, je.text);
        return NULL;
    }
    if (o->check_config) {
        char err[512] = "";
        if (o->check_config(doc, err, sizeof err, o->ctx) != 0) {
            say(o, "%s: refused: %s", o->config_path, err[0] ? err : "(no reason given)");
            json_decref(doc);
            return NULL;
        }
    }
    return doc;
}

/* ---- events: what the waiting tasks tell the calling thread ---------------------------- */

typedef struct events {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int hups;         /* SIGHUPs not handled yet (coalesced) */
    int stop_signo;   /* SIGINT or SIGTERM, once */
    bool root_ended;
    int root_reason;
    tr_actor_ref root;
} events;

typedef struct sigwaiter {
    events *ev;
    tr_signal *h;
    int signo;
} sigwaiter;

static void *signal_task(void *arg) {
    sigwaiter *w = arg;
    while (tr_signal_recv(w->h, TR_NEVER) == 0) {
        pthread_mutex_lock(&w->ev->mu);
        if (w->signo == SIGHUP)
            w->ev->hups++;
        else if (!w->ev->stop_signo)
            w->ev->stop_signo = w->signo;
        pthread_cond_signal(&w->ev->cv);
        pthread_mutex_unlock(&w->ev->mu);
    }
    return NULL; /* cancelled, or closed */
}

static void *root_task(void *arg) {
    events *ev = arg;
    int reason = 0;
    if (tr_actor_wait(ev->root, &reason, TR_NEVER) != 0)
        return NULL; /* cancelled: tr_sup_run is leaving */
    pthread_mutex_lock(&ev->mu);
    ev->root_ended = true;
    ev->root_reason = reason;
    pthread_cond_signal(&ev->cv);
    pthread_mutex_unlock(&ev->mu);
    return NULL;
}

static const int run_signals[3] = {SIGHUP, SIGINT, SIGTERM};

static const char *signame(int signo) {
    return signo == SIGINT ? "SIGINT" : signo == SIGTERM ? "SIGTERM" : "SIGHUP";
}

/* The exit status for a root that ended by itself. */
static int status_of_end(const tr_sup_run_opts *o, tr_actor_ref root, int reason) {
    if (tr_actor_reason_abnormal(reason)) {
        say(o, "the root supervisor ended abnormally (reason %d)", reason);
        return 1;
    }
    tr_actor_info info;
    if (reason == TR_ACTOR_SHUTDOWN && tr_actor_info_get(root, &info) == 0 &&
        strstr(info.reason_text, "intensity")) {
        say(o, "the root supervisor gave up: %s", info.reason_text);
        return 1;
    }
    say(o, "the root supervisor ended (reason %d)", reason);
    return 0;
}

/* Waits for signals and the root's end until the run is over; returns the
 * exit status. */
static int serve(const tr_sup_run_opts *o, events *ev, int64_t shutdown_ms) {
    for (;;) {
        pthread_mutex_lock(&ev->mu);
        while (!ev->hups && !ev->stop_signo && !ev->root_ended)
            pthread_cond_wait(&ev->cv, &ev->mu);
        int hups = ev->hups, signo = ev->stop_signo;
        bool ended = ev->root_ended;
        int reason = ev->root_reason;
        ev->hups = 0;
        pthread_mutex_unlock(&ev->mu);
        if (ended)
            return status_of_end(o, ev->root, reason);
        if (signo) {
            say(o, "%s: stopping", signame(signo));
            int rc = tr_sup_stop(ev->root, tr_after_ms(shutdown_ms));
            if (rc == TR_ETIMEDOUT) {
                say(o, "the shutdown took longer than %lld ms: killed", (long long)shutdown_ms);
                tr_actor_wait(ev->root, NULL, tr_after_ms(5000)); /* the kill, finishing */
                return 2;
            }
            if (rc == TR_EDOWN) { /* it ended by itself meanwhile */
                int r = 0;
                if (tr_actor_wait(ev->root, &r, tr_after_ms(1000)) == 0)
                    return status_of_end(o, ev->root, r);
                return 0;
            }
            if (rc != 0) {
                say(o, "stopping the root failed: %s", tr_strerror(rc));
                return 1;
            }
            say(o, "stopped");
            return 0;
        }
        if (hups && o->config_path) {
            json_t *doc = load_config(o);
            if (doc) {
                publish(doc);
                say(o, "reloaded %s", o->config_path);
            } else {
                say(o, "keeping the previous configuration");
            }
        }
    }
}

int tr_sup_run(tr_runtime *rt, const tr_sup_spec *spec, const json_t *tree_json,
               const tr_sup_run_opts *opts) {
    tr_sup_run_opts none = {0};
    const tr_sup_run_opts *o = opts ? opts : &none;
    if (!rt || (!spec && !tree_json)) {
        say(o, "tr_sup_run: needs a runtime and a spec or a tree");
        return 1;
    }
    if (tr_task_self()) {
        say(o, "tr_sup_run: called from a task; it blocks its thread: call it from main");
        return 1;
    }
    pthread_mutex_lock(&cfg_mu);
    bool busy = run_active;
    run_active = true;
    pthread_mutex_unlock(&cfg_mu);
    if (busy) {
        say(o, "tr_sup_run: another tr_sup_run is active");
        return 1;
    }
    int64_t shutdown_ms = o->shutdown_ms > 0 ? o->shutdown_ms : 30000;
    int status = 1;
    tr_signal *handles[3] = {NULL, NULL, NULL};
    sigwaiter waiters[3];
    tr_task *tasks[4] = {NULL, NULL, NULL, NULL};
    events ev;
    memset(&ev, 0, sizeof ev);
    pthread_mutex_init(&ev.mu, NULL);
    pthread_cond_init(&ev.cv, NULL);

    tr_watch_tx *tx = NULL;
    tr_watch_rx *rx = NULL;
    uint64_t gen0 = 0;
    if (tr_watch_new(&tx, &rx, sizeof gen0, &gen0) != 0) {
        say(o, "out of memory");
        goto out;
    }
    tr_watch_rx_drop(&rx); /* subscribers come through tr_sup_config_subscribe */
    pthread_mutex_lock(&cfg_mu);
    cfg_tx = tx;
    cfg_gen = 0;
    pthread_mutex_unlock(&cfg_mu);

    if (o->config_path) {
        json_t *doc = load_config(o);
        if (!doc)
            goto out;
        publish(doc);
    }
    for (int i = 0; i < 3; i++) {
        int rc = tr_signal_open(rt, run_signals[i], &handles[i]);
        if (rc) {
            say(o, "cannot catch %s: %s", signame(run_signals[i]), tr_strerror(rc));
            goto out;
        }
    }

    tr_actor_opts ropts = o->root_opts ? *o->root_opts : (tr_actor_opts){0};
    ropts.runtime = rt;
    int rc;
    if (spec) {
        rc = tr_sup_start(&ev.root, spec, &ropts);
        if (rc == TR_EINVAL) {
            char err[512] = "";
            tr_sup_check(spec, err, sizeof err);
            say(o, "the tree is invalid: %s", err[0] ? err : tr_strerror(rc));
        } else if (rc) {
            say(o, "the tree could not start: %s (%d)", tr_strerror(rc), rc);
        }
    } else {
        char err[512] = "";
        rc = tr_sup_start_json(&ev.root, tree_json, &ropts, err, sizeof err);
        if (rc)
            say(o, "the tree could not start: %s", err[0] ? err : tr_strerror(rc));
    }
    if (rc)
        goto out;

    for (int i = 0; i < 3; i++) {
        waiters[i] = (sigwaiter){.ev = &ev, .h = handles[i], .signo = run_signals[i]};
        rc = tr_spawn_ex(rt, NULL, &tasks[i], signal_task, &waiters[i]);
        if (rc)
            break;
    }
    if (!rc)
        rc = tr_spawn_ex(rt, NULL, &tasks[3], root_task, &ev);
    if (rc) {
        say(o, "cannot wait for signals: %s", tr_strerror(rc));
        tr_sup_stop(ev.root, tr_after_ms(shutdown_ms));
        goto out;
    }
    status = serve(o, &ev, shutdown_ms);

out:
    for (int i = 0; i < 4; i++) {
        if (tasks[i]) {
            tr_task_cancel(tasks[i]);
            tr_task_join(tasks[i], NULL);
        }
    }
    for (int i = 0; i < 3; i++)
        tr_signal_close(&handles[i]); /* the last close restores the disposition */
    pthread_mutex_lock(&cfg_mu);
    json_t *doc = cfg_cur;
    cfg_cur = NULL;
    cfg_tx = NULL;
    run_active = false;
    pthread_mutex_unlock(&cfg_mu);
    json_decref(doc);
    if (tx)
        tr_watch_tx_drop(&tx); /* closes the watch: subscribers see TR_ECLOSED */
    pthread_cond_destroy(&ev.cv);
    pthread_mutex_destroy(&ev.mu);
    return status;
}
