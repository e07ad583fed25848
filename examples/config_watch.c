/* config_watch.c — the seeds' watch: workers follow the latest config.
 *
 * A watch holds one value, here a small Config struct.  Three worker
 * tasks wait for a change with tr_watch_changed(), then read the current
 * value; the main task publishes a new config, and later drops the
 * sender, which ends the workers' loops (changed() returns TR_ECLOSED).
 * Intermediate values may be skipped — a worker only ever needs the
 * latest — which is what makes a watch the right channel for
 * configuration, feature flags and shutdown signals.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <troupe.h>

typedef struct {
    uint32_t max_connections;
    uint64_t timeout_ms;
    bool debug_mode;
} config;

typedef struct {
    tr_watch_rx *rx;
    int id;
    uint32_t last_max_conn; /* what this worker saw last */
} worker_state;

static void *worker(void *arg) {
    worker_state *w = arg;
    for (;;) {
        if (tr_watch_changed(w->rx, tr_after_ms(5000)) != 0)
            break; /* sender dropped (or, in a broken run, the deadline) */
        tr_watch_ref ref;
        tr_watch_borrow(w->rx, &ref); /* a read guard: release it soon */
        const config *c = ref.value;
        w->last_max_conn = c->max_connections;
        printf("worker %d: config updated - max_conn=%u timeout=%llums debug=%d\n", w->id,
               c->max_connections, (unsigned long long)c->timeout_ms, c->debug_mode);
        tr_watch_ref_release(&ref);
    }
    tr_watch_rx_drop(&w->rx);
    return NULL;
}

static void *main_task(void *arg) {
    (void)arg;
    config initial = {100, 5000, false};
    tr_watch_tx *tx;
    tr_watch_rx *rx;
    if (tr_watch_new(&tx, &rx, sizeof(config), &initial) != 0)
        return (void *)1;
    worker_state workers[3];
    tr_task *tasks[3];
    for (int i = 0; i < 3; i++) {
        workers[i] = (worker_state){NULL, i, initial.max_connections};
        tr_watch_rx_clone(rx, &workers[i].rx); /* each clone has seen `initial` */
        tr_spawn_ex(NULL, &(tr_spawn_opts){.worker = TR_WORKER_BALANCED}, &tasks[i], worker,
                    &workers[i]);
    }
    tr_watch_rx_drop(&rx);

    tr_sleep_ms(100);
    config updated = {200, 3000, true};
    tr_watch_send(tx, &updated); /* all workers notified */
    tr_sleep_ms(100);
    tr_watch_tx_drop(&tx); /* ends the workers' loops */

    int bad = 0;
    for (int i = 0; i < 3; i++) {
        tr_task_join(tasks[i], NULL);
        bad |= workers[i].last_max_conn != 200;
    }
    printf("%s\n", bad ? "a worker missed the update" : "every worker saw max_conn=200");
    return (void *)(intptr_t)bad;
}

int main(void) {
    tr_runtime *rt;
    if (tr_runtime_new(&rt, NULL) != 0)
        return 1;
    void *status = NULL;
    int rc = tr_runtime_block_on(rt, main_task, NULL, &status);
    tr_runtime_free(&rt);
    return rc == 0 && status == NULL ? 0 : 1;
}
