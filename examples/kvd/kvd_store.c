/* kvd_store.c — a store shard: an actor that owns one slice of the keys.
 *
 * Why shards: one actor handles one message at a time, so a single store
 * would serialise every request of every connection.  N shards (the
 * tree's "stores" supervisor lists them; the key's hash picks one) let
 * requests for different keys run on different workers.  Inside a shard
 * nothing is locked: only its handler touches its table.
 *
 * Why a jansson object as the table: values are JSON already, keys are
 * strings, and jansson's object is a hash table that keeps its own copy
 * of each key.  Values are shared by reference, never copied: a GET hands
 * the connection a new reference to the stored value, and since nobody
 * mutates a stored value (a SET replaces it), jansson's atomic reference
 * counts make that safe across workers.
 *
 * Supervision: shards are permanent children of a one_for_one
 * supervisor.  A shard that crashes is restarted behind the same ref and
 * name, with the requests queued at the crash still in its mailbox (they
 * are answered by the new incarnation); its table, being process memory
 * of the old incarnation, starts empty — an in-memory store's honest
 * failure mode, visible in stats as a restart.
 *
 * Messages own references (key, value): drop_msg releases them when a
 * message is never handled (a kill, a crash with messages queued is not
 * that: they survive), so nothing leaks whatever happens to a call.
 */
#include <string.h>

#include "kvd.h"

typedef struct {
    int op;        /* enum kvd_store_op */
    json_t *key;   /* a reference the message owns */
    json_t *value; /* SET: a reference the message owns */
} store_msg;

typedef struct {
    bool found;
    json_t *value; /* GET: a reference for the caller */
    int err;       /* SET: TR_ENOMEM when the value could not be stored */
} store_reply;

typedef struct {
    json_t *table; /* key -> value */
    uint64_t ops;
} store_state;

uint32_t kvd_hash(const char *s, size_t len) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

/* JSON trees pass the child's "args" (unused: a shard needs none). */
static int store_init(void *state, const void *args) {
    (void)args;
    store_state *st = state;
    st->table = json_object();
    return st->table ? 0 : TR_ENOMEM;
}

static void msg_release(store_msg *m) {
    json_decref(m->key);
    json_decref(m->value);
}

static int store_handle(void *state, tr_actor_msg *m) {
    store_state *st = state;
    store_msg *rq = m->data;
    store_reply rp = {false, NULL, 0};
    const char *key = json_string_value(rq->key);
    st->ops++;
    switch (rq->op) {
    case KVD_STORE_GET:
        /* A copy: connections on other workers never share a json_t (and
         * its reference count, which jansson does not make safe to share
         * between threads) with the table or with each other. */
        rp.value = json_object_get(st->table, key);
        rp.found = rp.value != NULL;
        if (rp.found && !(rp.value = json_deep_copy(rp.value)))
            rp.err = TR_ENOMEM;
        break;
    case KVD_STORE_SET:
        rp.found = json_object_get(st->table, key) != NULL;
        /* The table keeps its own copy (see GET).  Out of memory keeps
         * the old value, and the client is told. */
        if (json_object_set_new(st->table, key, json_deep_copy(rq->value)) != 0) {
            kvd_log(KVD_LOG_ERROR, "store: out of memory setting a key");
            rp.err = TR_ENOMEM;
        }
        break;
    case KVD_STORE_DELETE:
        rp.found = json_object_del(st->table, key) == 0;
        break;
    }
    msg_release(rq);
    if (m->reply && tr_reply_send(m->reply, &rp) == 0)
        return 0;
    json_decref(rp.value); /* a cast, or a caller that gave up */
    return 0;
}

static void store_terminate(void *state, int reason) {
    (void)reason;
    store_state *st = state;
    json_decref(st->table);
    st->table = NULL;
}

static void store_drop_msg(void *msg, void *ctx) {
    (void)ctx;
    msg_release(msg);
}

const tr_actor_type kvd_store_type = {
    .name = "kvd_store",
    .state_size = sizeof(store_state),
    .msg_size = sizeof(store_msg),
    .reply_size = sizeof(store_reply),
    .init = store_init,
    .handle = store_handle,
    .terminate = store_terminate,
    .drop_msg = store_drop_msg,
};

int kvd_store_ask(tr_actor_ref store, int op, json_t *key, json_t *value, bool *found,
                  json_t **value_out, int64_t deadline) {
    store_msg rq = {op, json_incref(key), value ? json_incref(value) : NULL};
    store_reply rp = {false, NULL, 0};
    int rc = tr_actor_call(store, &rq, &rp, deadline);
    if (rc == TR_EINVAL || rc == TR_ENOMEM)
        msg_release(&rq); /* the only returns that leave the request with us */
    /* (A TR_EDOWN for a ref whose slot was reused would leave it too; the
     * shards outlive every connection — they stop after them — so a
     * connection never holds such a ref.) */
    if (rc == 0)
        rc = rp.err;
    if (rc != 0)
        return rc;
    *found = rp.found;
    if (value_out)
        *value_out = rp.value;
    else
        json_decref(rp.value);
    return 0;
}
