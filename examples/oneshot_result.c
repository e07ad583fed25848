/* oneshot_result.c — the seeds' oneshot: a task hands back one result.
 *
 * "Go do this work and tell me the answer": the caller makes a oneshot,
 * gives the sending end to a task, and waits on the receiving end.  Three
 * endings, as in the guide:
 *   1. the worker sends its answer: the caller gets it;
 *   2. the worker gives up and drops its sender without sending: the
 *      caller gets TR_ECLOSED instead of waiting forever;
 *   3. the same computation returned through the task's own join, which is
 *      the simplest way when the task produces exactly one result.
 * The oneshot here lives in the caller's frame (tr_oneshot_init): a
 * request/response round trip needs no allocation.
 */
#include <stdint.h>
#include <stdio.h>

#include <troupe.h>

static uint64_t expensive_computation(void) {
    tr_sleep_ms(5); /* stands for real work that waits */
    return 42;
}

static void *answer(void *arg) {
    tr_oneshot *reply = arg;
    uint64_t v = expensive_computation();
    tr_oneshot_send(reply, &v); /* usable once; ends the sending side */
    return NULL;
}

static void *give_up(void *arg) {
    tr_oneshot *reply = arg;
    tr_oneshot_tx_drop(reply); /* no answer after all */
    return NULL;
}

static void *compute(void *arg) {
    (void)arg;
    return (void *)(uintptr_t)expensive_computation();
}

/* Runs `worker` with a fresh oneshot and reports what came back. */
static int ask(tr_task_fn worker, uint64_t *value) {
    tr_oneshot reply;
    tr_oneshot_init(&reply, sizeof(uint64_t), NULL);
    tr_task *t;
    tr_spawn(&t, worker, &reply);
    int rc = tr_oneshot_recv(&reply, value, tr_after_ms(5000));
    tr_oneshot_rx_drop(&reply);
    tr_task_join(t, NULL); /* reply lives in this frame: let the worker finish */
    return rc;
}

static void *main_task(void *arg) {
    (void)arg;
    int bad = 0;
    uint64_t v = 0;
    int rc = ask(answer, &v);
    if (rc == 0)
        printf("the answer is %llu\n", (unsigned long long)v);
    bad |= rc != 0 || v != 42;

    rc = ask(give_up, &v);
    if (rc == TR_ECLOSED)
        printf("the worker dropped the sender without sending\n");
    bad |= rc != TR_ECLOSED;

    tr_task *t;
    void *result;
    tr_spawn(&t, compute, NULL);
    tr_task_join(t, &result);
    printf("through join: %llu\n", (unsigned long long)(uintptr_t)result);
    bad |= (uintptr_t)result != 42;
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
