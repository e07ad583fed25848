/* kv_store.c — a key-value store owned by one actor.
 *
 * The seeds' request/response pattern ("a task is spawned to synchronize
 * a resource and waits on commands received on an mpsc channel; each
 * command includes a oneshot Sender on which the result of the command is
 * sent"), with the tutorial's Get / Set commands plus Delete.  The
 * resource is a hash table.  In tokio the table would sit in the task's
 * locals; here it is the actor's state, and each command is a
 * tr_actor_call whose answer comes back through the call's reply slot.
 *
 * Why it is written this way:
 *  - The table needs no lock and no atomic: only the handler touches it.
 *    Callers on any worker just call.
 *  - Requests and replies are fixed-size structs (keys up to 31 bytes,
 *    values up to 63), copied into the mailbox and into the caller's
 *    buffer.  Nothing crosses the mailbox that somebody must free, so a
 *    call that fails (timed out, the store gone) leaks nothing on either
 *    side.  The table keeps its own heap copies, made by the handler;
 *    terminate frees them when the store stops.
 *  - The table is a small chained hash (FNV-1a, power-of-two buckets,
 *    doubled at load 3/4).  It starts tiny so that the self-check makes
 *    it grow several times under load.
 *  - kv_get / kv_set / kv_delete are the store's API: they hide the
 *    message layout and check lengths before anything is sent.
 *  - Out of memory in the handler is an answer (TR_ENOMEM to that
 *    caller), not a crash: the store and every other key stay fine.
 *
 * The self-check: 8 tasks on the workers each own 200 keys; they set,
 * read back, overwrite, delete half, delete again, and read back again,
 * checking every answer; then the store's count must be what is left.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <troupe.h>
#include <tr_actor.h>

#define KEY_MAX 32
#define VALUE_MAX 64
#define CALL_MS 10000 /* far more than any call needs: only a bug reaches it */

/* ---- the table ------------------------------------------------------------------ */

typedef struct entry {
    struct entry *next;
    uint32_t hash;
    char *value;  /* heap copy, replaced on overwrite */
    char key[];   /* inline: the key never changes */
} entry;

typedef struct {
    entry **buckets;
    size_t nbuckets; /* a power of two */
    size_t count;
} kv_table;

static uint32_t fnv1a(const char *s) {
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

/* The link that points at key's entry, or at the NULL ending its chain. */
static entry **kv_slot(kv_table *t, const char *key, uint32_t h) {
    entry **p = &t->buckets[h & (t->nbuckets - 1)];
    while (*p && ((*p)->hash != h || strcmp((*p)->key, key) != 0))
        p = &(*p)->next;
    return p;
}

/* Doubles the buckets.  If memory is short the table keeps its size:
 * chains get longer, nothing breaks. */
static void kv_grow(kv_table *t) {
    size_t n = t->nbuckets * 2;
    entry **b = calloc(n, sizeof *b);
    if (!b)
        return;
    for (size_t i = 0; i < t->nbuckets; i++)
        for (entry *e = t->buckets[i], *next; e; e = next) {
            next = e->next;
            e->next = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
        }
    free(t->buckets);
    t->buckets = b;
    t->nbuckets = n;
}

/* Sets key to value; *replaced says whether it was there.  0 or TR_ENOMEM. */
static int kv_put(kv_table *t, const char *key, const char *value, bool *replaced) {
    uint32_t h = fnv1a(key);
    entry **p = kv_slot(t, key, h);
    char *copy = strdup(value);
    if (!copy)
        return TR_ENOMEM;
    *replaced = *p != NULL;
    if (*p) {
        free((*p)->value);
        (*p)->value = copy;
        return 0;
    }
    size_t klen = strlen(key) + 1;
    entry *e = malloc(sizeof *e + klen);
    if (!e) {
        free(copy);
        return TR_ENOMEM;
    }
    e->next = NULL;
    e->hash = h;
    e->value = copy;
    memcpy(e->key, key, klen);
    *p = e;
    if (++t->count > t->nbuckets / 4 * 3)
        kv_grow(t);
    return 0;
}

static bool kv_remove(kv_table *t, const char *key) {
    entry **p = kv_slot(t, key, fnv1a(key));
    entry *e = *p;
    if (!e)
        return false;
    *p = e->next;
    free(e->value);
    free(e);
    t->count--;
    return true;
}

/* ---- the actor ---------------------------------------------------------------------- */

enum kv_op { KV_GET, KV_SET, KV_DELETE, KV_COUNT };

typedef struct {
    int op;
    char key[KEY_MAX];
    char value[VALUE_MAX]; /* KV_SET only */
} kv_request;

typedef struct {
    int status;   /* 0, or TR_ENOMEM for a SET that could not be stored */
    bool found;   /* GET: the key was there; SET: it was replaced; DELETE: it was removed */
    size_t count; /* keys in the store after the command */
    char value[VALUE_MAX]; /* GET */
} kv_reply;

static int kv_init(void *state, const void *args) {
    (void)args;
    kv_table *t = state;
    t->nbuckets = 8;
    t->buckets = calloc(t->nbuckets, sizeof *t->buckets);
    return t->buckets ? 0 : TR_ENOMEM; /* spawn returns it; nothing is left behind */
}

static int kv_handle(void *state, tr_actor_msg *m) {
    kv_table *t = state;
    const kv_request *rq = m->data;
    kv_reply rp = {0};
    switch (rq->op) {
    case KV_GET: {
        entry *e = *kv_slot(t, rq->key, fnv1a(rq->key));
        if (e) {
            rp.found = true;
            memcpy(rp.value, e->value, strlen(e->value) + 1);
        }
        break;
    }
    case KV_SET:
        rp.status = kv_put(t, rq->key, rq->value, &rp.found);
        break;
    case KV_DELETE:
        rp.found = kv_remove(t, rq->key);
        break;
    case KV_COUNT:
        break;
    }
    rp.count = t->count;
    if (m->reply) /* a cast (nobody waits) still does the work */
        tr_reply_send(m->reply, &rp);
    return 0;
}

static void kv_terminate(void *state, int reason) {
    (void)reason;
    kv_table *t = state;
    for (size_t i = 0; i < t->nbuckets; i++)
        for (entry *e = t->buckets[i], *next; e; e = next) {
            next = e->next;
            free(e->value);
            free(e);
        }
    free(t->buckets);
}

static const tr_actor_type kv_type = {
    .name = "kv_store",
    .state_size = sizeof(kv_table),
    .msg_size = sizeof(kv_request),
    .reply_size = sizeof(kv_reply),
    .init = kv_init,
    .handle = kv_handle,
    .terminate = kv_terminate,
};

/* ---- its client API ----------------------------------------------------------------------- */

/* Each returns 0 or a negative code; *found as in kv_reply. */
static int kv_command(tr_actor_ref kv, int op, const char *key, const char *value,
                      kv_reply *rp) {
    kv_request rq = {.op = op};
    if (key && strlen(key) >= KEY_MAX)
        return TR_EINVAL;
    if (value && strlen(value) >= VALUE_MAX)
        return TR_EINVAL;
    if (key)
        strcpy(rq.key, key);
    if (value)
        strcpy(rq.value, value);
    int rc = tr_actor_call(kv, &rq, rp, tr_after_ms(CALL_MS));
    return rc != 0 ? rc : rp->status;
}

/* value_out: VALUE_MAX bytes, set to "" when the key is absent. */
static int kv_get(tr_actor_ref kv, const char *key, char *value_out, bool *found) {
    kv_reply rp;
    int rc = kv_command(kv, KV_GET, key, NULL, &rp);
    if (rc == 0) {
        *found = rp.found;
        memcpy(value_out, rp.value, VALUE_MAX);
    }
    return rc;
}

static int kv_set(tr_actor_ref kv, const char *key, const char *value, bool *replaced) {
    kv_reply rp;
    int rc = kv_command(kv, KV_SET, key, value, &rp);
    if (rc == 0)
        *replaced = rp.found;
    return rc;
}

static int kv_delete(tr_actor_ref kv, const char *key, bool *removed) {
    kv_reply rp;
    int rc = kv_command(kv, KV_DELETE, key, NULL, &rp);
    if (rc == 0)
        *removed = rp.found;
    return rc;
}

static int kv_count(tr_actor_ref kv, size_t *count) {
    kv_reply rp;
    int rc = kv_command(kv, KV_COUNT, NULL, NULL, &rp);
    if (rc == 0)
        *count = rp.count;
    return rc;
}

/* ---- the self-check ----------------------------------------------------------------------- */

#define TASKS 8
#define KEYS 200

typedef struct {
    tr_actor_ref kv;
    int id;
    int errors;
} client;

/* Counts a wrong answer, and shows the first few. */
static void wrong(client *c, const char *what, const char *key, int rc) {
    if (c->errors++ < 5)
        fprintf(stderr, "kv_store: task %d: %s %s: %s\n", c->id, what, key,
                rc ? tr_strerror(rc) : "wrong answer");
}

static void *client_task(void *arg) {
    client *c = arg;
    char key[KEY_MAX], want[VALUE_MAX], got[VALUE_MAX];
    bool flag;
    int rc;
    for (int round = 1; round <= 2; round++)
        for (int k = 0; k < KEYS; k++) {
            snprintf(key, sizeof key, "task%d/key%d", c->id, k);
            snprintf(want, sizeof want, "value %d of task %d, round %d", k, c->id, round);
            if ((rc = kv_set(c->kv, key, want, &flag)) != 0 || flag != (round == 2))
                wrong(c, "set", key, rc);
            if ((rc = kv_get(c->kv, key, got, &flag)) != 0 || !flag || strcmp(got, want) != 0)
                wrong(c, "get", key, rc);
        }
    for (int k = 1; k < KEYS; k += 2) {
        snprintf(key, sizeof key, "task%d/key%d", c->id, k);
        if ((rc = kv_delete(c->kv, key, &flag)) != 0 || !flag)
            wrong(c, "delete", key, rc);
        if ((rc = kv_delete(c->kv, key, &flag)) != 0 || flag)
            wrong(c, "delete again", key, rc);
    }
    for (int k = 0; k < KEYS; k++) {
        snprintf(key, sizeof key, "task%d/key%d", c->id, k);
        snprintf(want, sizeof want, "value %d of task %d, round 2", k, c->id);
        bool present = k % 2 == 0;
        if ((rc = kv_get(c->kv, key, got, &flag)) != 0 || flag != present ||
            strcmp(got, present ? want : "") != 0)
            wrong(c, "final get", key, rc);
    }
    /* A key too long is refused before anything is sent. */
    if (kv_set(c->kv, "a key that is far too long to fit in the request", "x", &flag) !=
        TR_EINVAL)
        wrong(c, "set long key", "", 0);
    return NULL;
}

static void *main_task(void *arg) {
    (void)arg;
    tr_actor_ref kv;
    int rc = tr_actor_spawn(&kv, &kv_type, NULL, NULL);
    if (rc != 0) {
        fprintf(stderr, "kv_store: spawn: %s\n", tr_strerror(rc));
        return (void *)1;
    }
    int workers = tr_runtime_workers(tr_runtime_current());
    client clients[TASKS];
    tr_task *tasks[TASKS];
    for (int i = 0; i < TASKS; i++) {
        clients[i] = (client){kv, i, 0};
        tr_spawn_opts where = {.worker = TR_WORKER(i % workers)};
        if (tr_spawn_ex(NULL, &where, &tasks[i], client_task, &clients[i]) != 0)
            return (void *)1;
    }
    int errors = 0;
    for (int i = 0; i < TASKS; i++) {
        tr_task_join(tasks[i], NULL);
        errors += clients[i].errors;
    }
    size_t count = 0;
    if ((rc = kv_count(kv, &count)) != 0) {
        fprintf(stderr, "kv_store: count: %s\n", tr_strerror(rc));
        errors++;
    }
    /* terminate frees the table; the leak checker of a sanitizer build
     * would notice if it missed an entry. */
    if ((rc = tr_actor_stop(kv, TR_ACTOR_NORMAL, tr_after_ms(CALL_MS))) != 0) {
        fprintf(stderr, "kv_store: stop: %s\n", tr_strerror(rc));
        errors++;
    }
    printf("kv_store: %d tasks x %d keys, %zu keys left (want %d), %d wrong answers\n", TASKS,
           KEYS, count, TASKS * KEYS / 2, errors);
    return (void *)(intptr_t)(errors != 0 || count != TASKS * KEYS / 2);
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
