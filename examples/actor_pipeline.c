/* actor_pipeline.c — the seeds' pipeline (fetch → parse → store) as actors.
 *
 * The seed wires three tasks with two mpsc channels; end of input ripples
 * down as each stage's sender is dropped.  Here each stage is an actor
 * that casts its output to the next one, so a stage is a handler for one
 * item and nothing else: no loop, no channel ends to hand around.
 *
 * Why it is written this way:
 *  - Each actor knows only the next stage's ref, given at spawn as its
 *    start argument; so the stages are spawned back to front.
 *  - The stages are spread round robin over the workers, so items flow
 *    between threads, as in a tokio multi-thread runtime.
 *  - Backpressure, as with the seed's bounded channels: every mailbox
 *    holds 4 items, and a cast to a full one waits (TR_OVERFLOW_WAIT).
 *    The "network" is slow (fetch sleeps 1 ms per page: a handler may
 *    wait), so the main task's casts and the later stages keep pace with
 *    it rather than queueing everything at once.
 *  - The end ripples down as in the seed, by stopping the stages in
 *    order: a graceful stop handles everything the actor had accepted,
 *    so once tr_actor_stop(fetch) returns, every page is in parse's
 *    mailbox or past it; then parse is stopped the same way; then one
 *    call asks store for the totals.
 *  - A stage that cannot pass an item on ends with that error as its
 *    reason (a crash); the totals then come out short and the self-check
 *    says so.
 *
 * The self-check: the store's totals (pages, words, bytes) equal what the
 * main task computes on its own, and pages reached the store in order
 * (each mailbox is FIFO and each stage handles one item at a time).
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <troupe.h>
#include <tr_actor.h>

#define PAGES 50
#define MAILBOX 4
#define STEP_MS 10000 /* far more than any step needs: only a bug reaches it */

typedef struct {
    int id;
    char url[48];
    char body[96];
} raw_page;

typedef struct {
    int id;
    int words;
    size_t bytes;
} parsed_page;

/* A page's body: its number, then id % 10 more words. */
static void page_body(char *buf, size_t cap, int id) {
    int len = snprintf(buf, cap, "page %d", id);
    for (int w = 0; w < id % 10; w++)
        len += snprintf(buf + len, cap - (size_t)len, " w%d", w);
}

/* ---- stage 1: fetch ----------------------------------------------------------- */

typedef struct {
    tr_actor_ref next;
} stage_state;

static int stage_init(void *state, const void *args) {
    ((stage_state *)state)->next = *(const tr_actor_ref *)args;
    return 0;
}

static int fetch_handle(void *state, tr_actor_msg *m) {
    stage_state *st = state;
    raw_page page = {.id = *(const int *)m->data};
    snprintf(page.url, sizeof page.url, "https://example.org/%d", page.id);
    tr_sleep_ms(1); /* the network */
    page_body(page.body, sizeof page.body, page.id);
    return tr_actor_cast(st->next, &page, tr_after_ms(STEP_MS));
}

static const tr_actor_type fetch_type = {
    .name = "fetch",
    .state_size = sizeof(stage_state),
    .msg_size = sizeof(int),
    .init = stage_init,
    .handle = fetch_handle,
};

/* ---- stage 2: parse ------------------------------------------------------------- */

static int parse_handle(void *state, tr_actor_msg *m) {
    stage_state *st = state;
    const raw_page *raw = m->data;
    parsed_page out = {.id = raw->id, .bytes = strlen(raw->body)};
    for (const char *s = raw->body; *s; s++)
        if (*s != ' ' && (s == raw->body || s[-1] == ' '))
            out.words++;
    return tr_actor_cast(st->next, &out, tr_after_ms(STEP_MS));
}

static const tr_actor_type parse_type = {
    .name = "parse",
    .state_size = sizeof(stage_state),
    .msg_size = sizeof(raw_page),
    .init = stage_init,
    .handle = parse_handle,
};

/* ---- stage 3: store ---------------------------------------------------------------- */

typedef struct {
    uint64_t pages, words, bytes;
    int next_id;       /* the id expected next */
    int out_of_order;
} totals;

static int store_handle(void *state, tr_actor_msg *m) {
    totals *t = state;
    if (m->reply) { /* the one call: how much was stored */
        tr_reply_send(m->reply, t);
        return 0;
    }
    const parsed_page *p = m->data;
    t->pages++;
    t->words += (uint64_t)p->words;
    t->bytes += p->bytes;
    t->out_of_order += p->id != t->next_id;
    t->next_id = p->id + 1;
    return 0;
}

static const tr_actor_type store_type = {
    .name = "store",
    .state_size = sizeof(totals),
    .msg_size = sizeof(parsed_page),
    .reply_size = sizeof(totals),
    .handle = store_handle,
};

/* ---- the program ---------------------------------------------------------------------- */

/* Spawns the stages back to front, round robin over the workers.  0, or
 * the failing spawn's error with nothing left running. */
static int spawn_stages(tr_actor_ref *fetch, tr_actor_ref *parse, tr_actor_ref *store) {
    int workers = tr_runtime_workers(tr_runtime_current());
    tr_actor_opts o = {.capacity = MAILBOX, .overflow = TR_OVERFLOW_WAIT};
    o.worker = TR_WORKER(2 % workers);
    int rc = tr_actor_spawn(store, &store_type, NULL, &o);
    if (rc != 0)
        return rc;
    o.worker = TR_WORKER(1 % workers);
    if ((rc = tr_actor_spawn(parse, &parse_type, store, &o)) != 0) {
        tr_actor_stop(*store, TR_ACTOR_SHUTDOWN, tr_after_ms(STEP_MS));
        return rc;
    }
    o.worker = TR_WORKER(0);
    if ((rc = tr_actor_spawn(fetch, &fetch_type, parse, &o)) != 0) {
        tr_actor_stop(*parse, TR_ACTOR_SHUTDOWN, tr_after_ms(STEP_MS));
        tr_actor_stop(*store, TR_ACTOR_SHUTDOWN, tr_after_ms(STEP_MS));
    }
    return rc;
}

static void *main_task(void *arg) {
    (void)arg;
    tr_actor_ref fetch, parse, store;
    int rc = spawn_stages(&fetch, &parse, &store);
    if (rc != 0) {
        fprintf(stderr, "actor_pipeline: spawn: %s\n", tr_strerror(rc));
        return (void *)1;
    }

    int failed = 0;
    for (int id = 0; id < PAGES; id++)
        if ((rc = tr_actor_cast(fetch, &id, tr_after_ms(STEP_MS))) != 0) {
            fprintf(stderr, "actor_pipeline: cast page %d: %s\n", id, tr_strerror(rc));
            failed = 1;
            break;
        }

    /* The end of input ripples down, stage by stage. */
    tr_actor_ref stages[] = {fetch, parse};
    for (int i = 0; i < 2; i++)
        if ((rc = tr_actor_stop(stages[i], TR_ACTOR_NORMAL, tr_after_ms(STEP_MS))) != 0) {
            fprintf(stderr, "actor_pipeline: stop stage %d: %s\n", i + 1, tr_strerror(rc));
            failed = 1;
        }
    totals t = {0};
    parsed_page ask = {.id = -1}; /* a call's request is a message like any other */
    if ((rc = tr_actor_call(store, &ask, &t, tr_after_ms(STEP_MS))) != 0) {
        fprintf(stderr, "actor_pipeline: totals: %s\n", tr_strerror(rc));
        failed = 1;
    }
    tr_actor_stop(store, TR_ACTOR_NORMAL, tr_after_ms(STEP_MS));

    /* What the store should have seen, worked out here on our own. */
    uint64_t words = 0, bytes = 0;
    for (int id = 0; id < PAGES; id++) {
        char body[96];
        page_body(body, sizeof body, id);
        words += 2 + (uint64_t)(id % 10);
        bytes += strlen(body);
    }
    printf("actor_pipeline: stored %llu of %d pages, %llu words (want %llu), %llu bytes "
           "(want %llu), %d out of order\n",
           (unsigned long long)t.pages, PAGES, (unsigned long long)t.words,
           (unsigned long long)words, (unsigned long long)t.bytes, (unsigned long long)bytes,
           t.out_of_order);
    failed |= t.pages != PAGES || t.words != words || t.bytes != bytes || t.out_of_order != 0;
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
