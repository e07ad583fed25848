/* shared_counter.c — the seeds' two mutexes: which one, and when.
 *
 * Two pieces of shared state, guarded two ways, the way the guide's
 * "Locks: when you do share state" section does it in Rust:
 *
 *  - `hits`, a counter whose critical section is a single increment: a
 *    plain pthread_mutex_t, locked and unlocked with no wait in between.
 *    This is the common case and the faster lock.
 *  - `lines`, a log that each task appends to after "fetching" a line,
 *    where the fetch must happen while the lock is held (the next line
 *    depends on the last one).  The fetch waits (tr_sleep_ms stands for I/O),
 *    so this lock must be a tr_mutex: it suspends the waiting task instead
 *    of blocking the worker thread.  Holding the pthread mutex across that
 *    wait instead would stall every task on the worker and could deadlock
 *    it — the seeds' rule "never hold a blocking lock across an .await".
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <troupe.h>

#define TASKS 8
#define ROUNDS 5

static pthread_mutex_t hits_mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t hits;

static tr_mutex lines_mu = TR_MUTEX_INIT;
static char lines[TASKS * ROUNDS][64];
static int nlines;

/* Stands for a network read: it waits, so no blocking lock may be held. */
static void fetch_line(char *out, size_t len, int task, int round, int after) {
    tr_sleep_ms(1);
    snprintf(out, len, "task %d round %d after #%d", task, round, after);
}

static void *worker(void *arg) {
    int id = (int)(intptr_t)arg;
    for (int r = 0; r < ROUNDS; r++) {
        /* Short and never waits: the plain mutex. */
        pthread_mutex_lock(&hits_mu);
        hits++;
        pthread_mutex_unlock(&hits_mu);

        /* Held across a wait: the troupe mutex. */
        int rc = tr_mutex_lock(&lines_mu, tr_after_ms(5000));
        if (rc != 0) {
            fprintf(stderr, "task %d: lock: %s\n", id, tr_strerror(rc));
            return (void *)1;
        }
        int n = nlines;
        fetch_line(lines[n], sizeof lines[n], id, r, n - 1);
        nlines = n + 1; /* nobody else appended meanwhile: we held the lock */
        tr_mutex_unlock(&lines_mu);
    }
    return NULL;
}

static void *main_task(void *arg) {
    (void)arg;
    tr_mutex_set_name(&lines_mu, "lines");
    tr_task *tasks[TASKS];
    tr_spawn_opts anywhere = {.worker = TR_WORKER_BALANCED};
    for (int i = 0; i < TASKS; i++)
        tr_spawn_ex(NULL, &anywhere, &tasks[i], worker, (void *)(intptr_t)i);
    int failed = 0;
    for (int i = 0; i < TASKS; i++) {
        void *r;
        tr_task_join(tasks[i], &r);
        failed |= r != NULL;
    }
    /* Each line names the one before it: no two tasks ever interleaved. */
    for (int i = 0; i < nlines; i++) {
        int after = -2;
        sscanf(strstr(lines[i], "#") + 1, "%d", &after);
        failed |= after != i - 1;
    }
    printf("hits=%llu lines=%d, first: \"%s\", last: \"%s\"\n", (unsigned long long)hits, nlines,
           lines[0], lines[nlines - 1]);
    failed |= hits != TASKS * ROUNDS || nlines != TASKS * ROUNDS;
    return (void *)(intptr_t)failed;
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
