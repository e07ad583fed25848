/* config_reload.c — the seeds' config reload, made real.
 *
 * The configuration lives in a JSON file ({"timeout_ms": 300, "name":
 * "..."}), read with jansson.  A reloader task re-reads it on every SIGHUP
 * and publishes it on a watch; a file that does not parse or validate is
 * reported and the old config stays.  Worker tasks run operations with a
 * timeout from the config.  While an operation runs, its worker selects
 * over three things at once: the operation's end, the config watch, and
 * the deadline.  When the config changes, the worker recomputes the
 * deadline from the operation's start and the new timeout — the timeout
 * is reset, the operation is not restarted.
 *
 *   config_reload FILE          run until SIGINT; `kill -HUP` to reload
 *   config_reload --selftest    write a temporary file, change it, raise
 *                               SIGHUP, and check the workers followed
 */
#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <troupe.h>

typedef struct {
    int64_t timeout_ms;
    char name[32];
} config;

/* Parses and validates the file; on error, says where and keeps *out. */
static int load_config(const char *path, config *out) {
    json_error_t err;
    json_t *root = json_load_file(path, 0, &err);
    if (!root) {
        fprintf(stderr, "config: %s:%d: %s\n", path, err.line, err.text);
        return -1;
    }
    json_t *t = json_object_get(root, "timeout_ms");
    json_t *n = json_object_get(root, "name");
    int rc = -1;
    if (!json_is_integer(t) || json_integer_value(t) <= 0)
        fprintf(stderr, "config: %s: timeout_ms: expected a positive integer\n", path);
    else if (n && !json_is_string(n))
        fprintf(stderr, "config: %s: name: expected a string\n", path);
    else {
        out->timeout_ms = json_integer_value(t);
        snprintf(out->name, sizeof out->name, "%s", n ? json_string_value(n) : "");
        rc = 0;
    }
    json_decref(root);
    return rc;
}

/* ---- the reloader: SIGHUP → re-read → publish ------------------------------- */

typedef struct {
    const char *path;
    tr_watch_tx *tx;
    tr_signal *hup;
} reloader_state;

static void *reloader(void *arg) {
    reloader_state *r = arg;
    while (tr_signal_recv(r->hup, TR_NEVER) == 0) {
        config c;
        if (load_config(r->path, &c) == 0) {
            printf("reloaded %s: timeout_ms=%lld name=%s\n", r->path, (long long)c.timeout_ms,
                   c.name);
            tr_watch_send(r->tx, &c);
        }
    }
    return NULL; /* cancelled at the end */
}

/* ---- workers ---------------------------------------------------------------------- */

typedef struct {
    int id;
    tr_watch_rx *cfg;
    int64_t op_ms;     /* how long each operation takes */
    int ops;
    int completed, timed_out, extended;
} worker_state;

static void *operation(void *arg) {
    tr_sleep_ms((int64_t)(intptr_t)arg); /* stands for a slow request */
    return NULL;
}

static void *worker(void *arg) {
    worker_state *w = arg;
    for (int k = 0; k < w->ops; k++) {
        config c;
        tr_watch_get(w->cfg, &c);
        int64_t start = tr_now();
        int64_t deadline = start + c.timeout_ms * 1000000;
        tr_task *op;
        if (tr_spawn(&op, operation, (void *)(intptr_t)w->op_ms) != 0)
            return (void *)1;
        for (;;) {
            tr_clause cl[2];
            tr_task_join_clause(&cl[0], op, NULL);
            tr_watch_changed_clause(&cl[1], w->cfg);
            int i = tr_select(cl, 2, deadline, 0);
            if (i == 0) {
                w->completed++;
                break;
            }
            if (i == 1 && cl[1].result == 0) { /* new config: same op, new deadline */
                tr_watch_get(w->cfg, &c);
                deadline = start + c.timeout_ms * 1000000;
                w->extended++;
                printf("worker %d: timeout now %lldms (op %d keeps running)\n", w->id,
                       (long long)c.timeout_ms, k);
                continue;
            }
            /* The deadline (or the config's sender is gone): give up on it. */
            tr_task_cancel(op);
            tr_task_join(op, NULL);
            w->timed_out++;
            printf("worker %d: op %d timed out after %lldms\n", w->id, k, (long long)c.timeout_ms);
            break;
        }
    }
    return NULL;
}

static int write_file(const char *path, int64_t timeout_ms, const char *name) {
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f, "{\"timeout_ms\": %lld, \"name\": \"%s\"}\n", (long long)timeout_ms, name);
    return fclose(f);
}

static const char *path;
static bool selftest;

static void *main_task(void *arg) {
    (void)arg;
    config c;
    if (load_config(path, &c) != 0)
        return (void *)1;
    tr_watch_tx *tx;
    tr_watch_rx *rx;
    if (tr_watch_new(&tx, &rx, sizeof(config), &c) != 0)
        return (void *)1;
    reloader_state rs = {path, tx, NULL};
    if (tr_signal_open(NULL, SIGHUP, &rs.hup) != 0)
        return (void *)1;
    tr_task *rl;
    tr_spawn(&rl, reloader, &rs);

    enum { W = 2 };
    worker_state ws[W];
    tr_task *tasks[W];
    for (int i = 0; i < W; i++) {
        ws[i] = (worker_state){i, NULL, selftest ? 600 : 1000, selftest ? 2 : 1000000, 0, 0, 0};
        tr_watch_rx_clone(rx, &ws[i].cfg);
        tr_spawn_ex(NULL, &(tr_spawn_opts){.worker = TR_WORKER_BALANCED}, &tasks[i], worker,
                    &ws[i]);
    }
    int bad = 0;
    if (selftest) {
        /* Op 0 starts with a 300 ms timeout and takes 600 ms: a reload to
         * 2000 ms lets it finish.  Op 1 then starts with 2000 ms, and a
         * reload to 100 ms makes it time out, counted from its start. */
        tr_sleep_ms(50);
        write_file(path, 2000, "patient");
        kill(getpid(), SIGHUP);
        tr_sleep_ms(700);
        write_file(path, 100, "impatient");
        kill(getpid(), SIGHUP);
    }
    for (int i = 0; i < W; i++) {
        tr_task_join(tasks[i], NULL);
        printf("worker %d: %d completed, %d timed out, %d timeout changes\n", i,
               ws[i].completed, ws[i].timed_out, ws[i].extended);
        if (selftest)
            bad |= ws[i].completed != 1 || ws[i].timed_out != 1 || ws[i].extended < 2;
        tr_watch_rx_drop(&ws[i].cfg);
    }
    tr_task_cancel(rl);
    tr_task_join(rl, NULL);
    tr_signal_close(&rs.hup);
    tr_watch_rx_drop(&rx);
    tr_watch_tx_drop(&tx);
    return (void *)(intptr_t)bad;
}

int main(int argc, char **argv) {
    char tmp[] = "/tmp/troupe-config-XXXXXX";
    if (argc > 1 && strcmp(argv[1], "--selftest") == 0) {
        selftest = true;
        int fd = mkstemp(tmp);
        if (fd < 0)
            return 1;
        close(fd);
        path = tmp;
        write_file(path, 300, "hasty");
    } else if (argc == 2) {
        path = argv[1];
    } else {
        fprintf(stderr, "usage: config_reload FILE | --selftest\n");
        return 2;
    }
    tr_runtime *rt;
    if (tr_runtime_new(&rt, NULL) != 0)
        return 1;
    void *status = NULL;
    int rc = tr_runtime_block_on(rt, main_task, NULL, &status);
    tr_runtime_free(&rt);
    if (selftest)
        unlink(tmp);
    return rc == 0 && status == NULL ? 0 : 1;
}
