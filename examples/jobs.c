/* jobs.c — the seeds' mpsc job queue: several producers, one consumer.
 *
 * Five producer tasks each send ten messages into one bounded channel of
 * capacity 32 (a full channel makes a producer wait: backpressure).  The
 * consumer loops on tr_mpsc_recv() until it returns TR_ECLOSED, which
 * happens only when every sender is gone — so main drops its own sender
 * right after cloning one per producer.  Forget that drop and the loop
 * never ends: the seeds' "count your senders" gotcha.
 *
 * The messages are heap strings.  The channel copies the pointer; whoever
 * receives it frees it, and the channel's destructor frees any that are
 * never received, so nothing leaks even if the consumer stops early.
 */
#define _GNU_SOURCE /* asprintf */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <troupe.h>

static void free_string(void *value, void *ctx) {
    (void)ctx;
    free(*(char **)value);
}

typedef struct {
    tr_mpsc_tx *tx; /* this producer's own clone */
    int id;
} producer;

static void *produce(void *arg) {
    producer *p = arg;
    for (int j = 0; j < 10; j++) {
        char *msg = NULL;
        if (asprintf(&msg, "producer-%d message-%d", p->id, j) < 0)
            break;
        /* Waits while the channel is full.  On failure the string is
         * still ours. */
        if (tr_mpsc_send(p->tx, &msg, TR_NEVER) != 0) {
            free(msg);
            break;
        }
    }
    tr_mpsc_tx_drop(&p->tx); /* one less sender */
    return NULL;
}

static void *main_task(void *arg) {
    (void)arg;
    tr_mpsc_tx *tx;
    tr_mpsc_rx *rx;
    tr_chan_opts opts = {.drop = free_string};
    int rc = tr_mpsc_new_ex(&tx, &rx, 32, sizeof(char *), &opts);
    if (rc != 0) {
        fprintf(stderr, "tr_mpsc_new: %s\n", tr_strerror(rc));
        return (void *)1;
    }
    producer producers[5];
    tr_task *tasks[5];
    tr_spawn_opts anywhere = {.worker = TR_WORKER_BALANCED};
    for (int i = 0; i < 5; i++) {
        producers[i].id = i;
        tr_mpsc_tx_clone(tx, &producers[i].tx); /* a sender per producer */
        tr_spawn_ex(NULL, &anywhere, &tasks[i], produce, &producers[i]);
    }
    /* Drop the original, so that recv() reports the end once all the
     * producers are done. */
    tr_mpsc_tx_drop(&tx);

    int received = 0;
    char *msg;
    while (tr_mpsc_recv(rx, &msg, TR_NEVER) == 0) {
        printf("%s\n", msg);
        free(msg);
        received++;
    }
    printf("channel closed after %d messages\n", received);
    tr_mpsc_rx_drop(&rx);
    for (int i = 0; i < 5; i++) /* producers[] lives in this frame */
        tr_task_join(tasks[i], NULL);
    return (void *)(intptr_t)(received == 50 ? 0 : 1);
}

int main(void) {
    tr_runtime *rt;
    int rc = tr_runtime_new(&rt, NULL);
    if (rc != 0) {
        fprintf(stderr, "tr_runtime_new: %s\n", tr_strerror(rc));
        return 1;
    }
    void *status = NULL;
    rc = tr_runtime_block_on(rt, main_task, NULL, &status);
    tr_runtime_free(&rt);
    return rc == 0 && status == NULL ? 0 : 1;
}
