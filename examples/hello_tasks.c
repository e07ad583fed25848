/* hello_tasks.c — troupe's first example: tasks on several workers.
 *
 * Spawns a task per worker plus a batch of balanced ones; each sleeps a
 * little, says where it ran, and returns a number that main adds up.  It
 * shows the shape of every troupe program: make a runtime, run a main task
 * with block_on, spawn and join inside it, free the runtime.
 */
#include <stdint.h>
#include <stdio.h>

#include <troupe.h>

static void *greet(void *arg) {
    intptr_t n = (intptr_t)arg;
    tr_sleep_ms(10 + n % 5); /* suspends this task, not the worker */
    printf("task %2ld ran on worker %d\n", (long)n, tr_worker_current());
    return (void *)(n * n);
}

static void *main_task(void *arg) {
    (void)arg;
    tr_runtime *rt = tr_runtime_current();
    int workers = tr_runtime_workers(rt);
    enum { N = 12 };
    tr_task *tasks[N];
    for (int i = 0; i < N; i++) {
        tr_spawn_opts o = {.worker = i < workers ? TR_WORKER(i) : TR_WORKER_BALANCED};
        int rc = tr_spawn_ex(NULL, &o, &tasks[i], greet, (void *)(intptr_t)i);
        if (rc != 0) {
            fprintf(stderr, "spawn: %s\n", tr_strerror(rc));
            return (void *)1;
        }
    }
    intptr_t sum = 0;
    for (int i = 0; i < N; i++) {
        void *r;
        tr_task_join(tasks[i], &r);
        sum += (intptr_t)r;
    }
    printf("sum of squares 0..%d = %ld on %d workers\n", N - 1, (long)sum, workers);
    return (void *)(intptr_t)(sum == 506 ? 0 : 1);
}

int main(void) {
    tr_runtime *rt;
    tr_runtime_opts opts = {.workers = 4};
    int rc = tr_runtime_new(&rt, &opts);
    if (rc != 0) {
        fprintf(stderr, "tr_runtime_new: %s\n", tr_strerror(rc));
        return 1;
    }
    void *status;
    rc = tr_runtime_block_on(rt, main_task, NULL, &status);
    tr_runtime_free(&rt);
    return rc == 0 && status == NULL ? 0 : 1;
}
