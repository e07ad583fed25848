/* counter.c — the seeds' fetch-and-increment counter, as an actor.
 *
 * The tokio::sync docs close their mpsc section with this pattern: "use a
 * task to synchronize a u64 counter.  Each task sends a 'fetch and
 * increment' command.  The counter value before the increment is sent
 * over the provided oneshot channel."  In tokio that takes three pieces —
 * a task, an mpsc of commands, a oneshot sender inside every command.  In
 * troupe they are one thing, an actor: the u64 is its state, the mpsc is
 * its mailbox, and tr_actor_call() puts the reply slot into the request
 * and waits on it with a deadline.
 *
 * Why it is written this way:
 *  - The counter has no lock.  Only the handler touches it, and the
 *    mailbox hands it one message at a time, so "fetch and increment" is
 *    atomic by construction.  That is the whole point of the seed.
 *  - Callers come from everywhere at once: 16 tasks spread over 4 workers,
 *    plus one plain thread (calls block a plain thread the way they
 *    suspend a task), which finds the counter by its registered name.
 *  - Callers go through two small functions (counter_fetch_add,
 *    counter_get) that hide the message layout, the way an Erlang
 *    gen_server module exports its API.
 *  - The self-check is the seed's promise: the previous values handed
 *    out are exactly 0..N-1, each once, and the final count is N.  A lost
 *    or doubled increment would show.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <troupe.h>
#include <tr_actor.h>

#define WORKERS 4
#define TASKS 16
#define CALLS_PER_TASK 2000
#define THREAD_CALLS 2000
#define TOTAL (TASKS * CALLS_PER_TASK + THREAD_CALLS)
#define CALL_MS 10000 /* far more than any call needs: only a bug reaches it */

/* ---- the actor ------------------------------------------------------------ */

enum counter_cmd { COUNTER_FETCH_ADD, COUNTER_GET };

static int counter_handle(void *state, tr_actor_msg *m) {
    uint64_t *count = state;
    int cmd = *(const int *)m->data;
    uint64_t before = *count;
    if (cmd == COUNTER_FETCH_ADD)
        (*count)++;
    if (m->reply) /* NULL for a cast: nobody asked for the value */
        tr_reply_send(m->reply, &before);
    return 0;
}

static const tr_actor_type counter_type = {
    .name = "counter",
    .state_size = sizeof(uint64_t), /* zeroed: the count starts at 0 */
    .msg_size = sizeof(int),
    .reply_size = sizeof(uint64_t),
    .handle = counter_handle,
};

/* ---- its client API ----------------------------------------------------------- */

static int counter_fetch_add(tr_actor_ref c, uint64_t *before) {
    int cmd = COUNTER_FETCH_ADD;
    return tr_actor_call(c, &cmd, before, tr_after_ms(CALL_MS));
}

static int counter_get(tr_actor_ref c, uint64_t *value) {
    int cmd = COUNTER_GET;
    return tr_actor_call(c, &cmd, value, tr_after_ms(CALL_MS));
}

/* ---- the callers ----------------------------------------------------------------- */

/* Every value any caller got back, each caller writing its own stretch. */
static uint64_t got[TOTAL];

typedef struct {
    tr_actor_ref counter;
    uint64_t *out;
    int calls;
    int err; /* the first failure, or 0 */
} caller;

static void call_many(caller *c) {
    for (int i = 0; i < c->calls; i++) {
        int rc = counter_fetch_add(c->counter, &c->out[i]);
        if (rc != 0) {
            c->err = rc;
            return;
        }
    }
}

static void *caller_task(void *arg) {
    call_many(arg);
    return NULL;
}

/* A thread the program already had: it knows the counter only by name. */
static void *caller_thread(void *arg) {
    caller *c = arg;
    c->err = tr_actor_whereis("counter", &c->counter);
    if (c->err == 0)
        call_many(c);
    return NULL;
}

static void *join_thread(void *arg) {
    pthread_join(*(pthread_t *)arg, NULL);
    return NULL;
}

static void *main_task(void *arg) {
    (void)arg;
    tr_actor_ref counter;
    tr_actor_opts o = {.name = "counter"};
    int rc = tr_actor_spawn(&counter, &counter_type, NULL, &o);
    if (rc != 0) {
        fprintf(stderr, "counter: spawn: %s\n", tr_strerror(rc));
        return (void *)1;
    }

    caller callers[TASKS + 1];
    tr_task *tasks[TASKS];
    for (int i = 0; i < TASKS; i++) {
        callers[i] = (caller){counter, &got[i * CALLS_PER_TASK], CALLS_PER_TASK, 0};
        tr_spawn_opts where = {.worker = TR_WORKER(i % WORKERS)};
        if (tr_spawn_ex(NULL, &where, &tasks[i], caller_task, &callers[i]) != 0)
            return (void *)1;
    }
    callers[TASKS] = (caller){TR_ACTOR_NONE, &got[TASKS * CALLS_PER_TASK], THREAD_CALLS, 0};
    pthread_t thread;
    if (pthread_create(&thread, NULL, caller_thread, &callers[TASKS]) != 0)
        return (void *)1;

    for (int i = 0; i < TASKS; i++)
        tr_task_join(tasks[i], NULL);
    /* pthread_join() would block this worker's thread, and with it the
     * counter, whose handler runs here: the thread's calls could never be
     * answered.  The blocking pool joins it instead while this task waits. */
    tr_spawn_blocking(join_thread, &thread, NULL, TR_NEVER, NULL);

    int failed = 0;
    for (int i = 0; i <= TASKS; i++)
        if (callers[i].err) {
            fprintf(stderr, "counter: caller %d: %s\n", i, tr_strerror(callers[i].err));
            failed = 1;
        }

    /* Each previous value 0..TOTAL-1 exactly once. */
    static unsigned char seen[TOTAL];
    int dup = 0, out_of_range = 0;
    for (int i = 0; i < TOTAL && !failed; i++) {
        if (got[i] >= TOTAL)
            out_of_range++;
        else if (seen[got[i]]++)
            dup++;
    }

    uint64_t final = 0;
    rc = counter_get(counter, &final);
    if (rc != 0) {
        fprintf(stderr, "counter: get: %s\n", tr_strerror(rc));
        failed = 1;
    }
    rc = tr_actor_stop(counter, TR_ACTOR_NORMAL, tr_after_ms(CALL_MS));
    if (rc != 0) {
        fprintf(stderr, "counter: stop: %s\n", tr_strerror(rc));
        failed = 1;
    }
    /* Once stopped, the ref is dead: calls say so instead of hanging. */
    uint64_t v;
    rc = counter_fetch_add(counter, &v);
    if (rc != TR_EDOWN) {
        fprintf(stderr, "counter: call after stop: %s, wanted TR_EDOWN\n", tr_strerror(rc));
        failed = 1;
    }

    printf("counter: %d callers on %d workers + 1 thread, %d calls, final count %llu, "
           "%d duplicates, %d out of range\n",
           TASKS, WORKERS, TOTAL, (unsigned long long)final, dup, out_of_range);
    failed |= final != TOTAL || dup != 0 || out_of_range != 0;
    return (void *)(intptr_t)failed;
}

int main(void) {
    tr_runtime *rt;
    tr_runtime_opts ro = {.workers = WORKERS};
    if (tr_runtime_new(&rt, &ro) != 0)
        return 1;
    void *status = NULL;
    int rc = tr_runtime_block_on(rt, main_task, NULL, &status);
    tr_runtime_free(&rt);
    return rc == 0 && status == NULL ? 0 : 1;
}
