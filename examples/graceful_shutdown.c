/* graceful_shutdown.c — the seeds' shutdown signal through a watch.
 *
 * A watch<bool> starts at false.  One task waits for SIGINT (or SIGTERM)
 * and publishes true.  Each worker loops on one tr_select() over two
 * clauses — its own job queue and `shutdown changed` — so it handles jobs
 * as they come and notices the signal at once, even while idle.  On shutdown
 * a worker finishes the job in hand, drains nothing new, cleans up and
 * returns; main joins them all and exits 0.
 *
 * Run it and press Ctrl-C; with --selftest it sends itself SIGINT after
 * feeding some jobs and checks that every worker stopped cleanly.
 */
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <troupe.h>

#define WORKERS 3

typedef struct {
    int id;
    tr_mpsc_rx *jobs; /* this worker's own queue */
    tr_watch_rx *shutdown;
    int done;
} worker_state;

static void *worker(void *arg) {
    worker_state *w = arg;
    for (;;) {
        int job;
        tr_clause c[2];
        tr_mpsc_recv_clause(&c[0], w->jobs, &job);
        tr_watch_changed_clause(&c[1], w->shutdown);
        int i = tr_select(c, 2, TR_NEVER, 0);
        if (i == 0 && c[0].result == 0) {
            tr_sleep_ms(1); /* do_work() */
            w->done++;
            continue;
        }
        if (i == 1) {
            bool stop = false;
            tr_watch_get(w->shutdown, &stop);
            if (!stop)
                continue;
            printf("worker %d: shutdown signal received, cleaning up after %d jobs\n", w->id,
                   w->done);
        }
        break; /* shutdown, or the job queue closed */
    }
    tr_watch_rx_drop(&w->shutdown);
    tr_mpsc_rx_drop(&w->jobs); /* jobs never taken are simply dropped */
    return NULL;
}

/* The seeds' shutdown_signal(): wait for Ctrl-C, publish true. */
static void *signal_watcher(void *arg) {
    tr_watch_tx *tx = arg;
    tr_signal *sigint = NULL, *sigterm = NULL;
    tr_runtime *rt = tr_runtime_current();
    tr_signal_open(rt, SIGINT, &sigint);
    tr_signal_open(rt, SIGTERM, &sigterm);
    while (tr_signal_recv(sigint, tr_after_ms(20)) == TR_ETIMEDOUT &&
           tr_signal_try_recv(sigterm) != 0)
        ;
    bool stop = true;
    tr_watch_send(tx, &stop);
    tr_signal_close(&sigint);
    tr_signal_close(&sigterm);
    tr_watch_tx_drop(&tx);
    return NULL;
}

static bool selftest;

static void *main_task(void *arg) {
    (void)arg;
    bool running = false;
    tr_watch_tx *shutdown_tx;
    tr_watch_rx *shutdown_rx;
    tr_mpsc_tx *jobs_tx[WORKERS];
    if (tr_watch_new(&shutdown_tx, &shutdown_rx, sizeof(bool), &running) != 0)
        return (void *)1;
    tr_task *watcher, *tasks[WORKERS];
    worker_state ws[WORKERS];
    tr_spawn(&watcher, signal_watcher, shutdown_tx);
    for (int i = 0; i < WORKERS; i++) {
        ws[i] = (worker_state){i, NULL, NULL, 0};
        if (tr_mpsc_new(&jobs_tx[i], &ws[i].jobs, 16, sizeof(int)) != 0)
            return (void *)1;
        tr_watch_rx_clone(shutdown_rx, &ws[i].shutdown);
        tr_spawn_ex(NULL, &(tr_spawn_opts){.worker = TR_WORKER_BALANCED}, &tasks[i], worker,
                    &ws[i]);
    }
    printf("running; press Ctrl-C to stop\n");
    for (int j = 0; !selftest || j < 200; j++) {
        if (selftest && j == 100)
            kill(getpid(), SIGINT);
        if (tr_mpsc_send(jobs_tx[j % WORKERS], &j, tr_after_ms(100)) != 0)
            break;
        if (tr_watch_has_changed(shutdown_rx) == 1)
            break; /* stop feeding too */
        tr_sleep_ms(1);
    }
    int bad = 0, total = 0;
    for (int i = 0; i < WORKERS; i++) {
        bad |= tr_task_join_until(tasks[i], NULL, tr_after_ms(5000)) != 0;
        total += ws[i].done;
    }
    tr_task_join(watcher, NULL);
    for (int i = 0; i < WORKERS; i++)
        tr_mpsc_tx_drop(&jobs_tx[i]);
    tr_watch_rx_drop(&shutdown_rx);
    printf("all %d workers stopped; %d jobs done\n", WORKERS, total);
    return (void *)(intptr_t)(bad || total == 0);
}

int main(int argc, char **argv) {
    selftest = argc > 1 && strcmp(argv[1], "--selftest") == 0;
    tr_runtime *rt;
    if (tr_runtime_new(&rt, NULL) != 0)
        return 1;
    void *status = NULL;
    int rc = tr_runtime_block_on(rt, main_task, NULL, &status);
    tr_runtime_free(&rt);
    return rc == 0 && status == NULL ? 0 : 1;
}
