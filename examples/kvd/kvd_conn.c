/* kvd_conn.c — one client connection: an actor that reads request lines,
 * asks the store shards, and writes the replies back in order.
 *
 * Why an actor per connection (and not a bare task): it is then a child
 * of the dynamic "conns" supervisor, which counts it (max_conns), shows
 * it in stats with its mailbox and state, and stops it — drain first,
 * cancel if it overruns its shutdown timeout, kill if even that fails —
 * when the daemon shuts down.  Connections are temporary children: a
 * socket cannot be reopened, so a connection that ends is simply gone.
 *
 * How it runs: init takes the socket and casts the actor one SERVE
 * message; its handler is the connection's whole life, a loop that
 * selects on three things at once:
 *   - the socket becoming readable: read what is there, answer every
 *     complete line (a batch of pipelined requests gets one write);
 *   - the supervisor's shutdown watch (tr_sup_signal): on STOPPING, read
 *     whatever the client had already sent, answer every complete line,
 *     flush, and close — "every request already read is answered";
 *   - the configuration watch: a SIGHUP reload changes max_line and the
 *     other limits for the requests that follow (the socket stays open).
 * Replies keep request order because one handler does everything, in
 * order; the shards are called synchronously, one request at a time.
 *
 * Oversized lines: at most max_line bytes before the '\n' are kept.  A
 * longer line gets one error reply as soon as it is known to be too long,
 * and its remaining bytes are skipped up to the next '\n'; the
 * connection then goes on.  So memory per connection stays max_line plus
 * one read's worth, whatever a client sends.
 *
 * If the task is killed (past its shutdown and grace), terminate does
 * not run; a tr_cleanup registered for the handler frees the socket and
 * buffers instead.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kvd.h"
#include "kvd_proto.h"

#define READ_CHUNK 16384
#define WRITE_MS 10000    /* a client that reads nothing for this long is dropped */
#define STATS_MS 5000
#define OUT_KEEP (1 << 20) /* a reply buffer larger than this is freed after use */

enum { CONN_SERVE = 1 };

typedef struct {
    int fd;
    unsigned long serial; /* for the log */
    tr_actor_ref stores[KVD_MAX_SHARDS];
    size_t nstores;
    tr_watch_rx *cfg;     /* the configuration watch; NULL without tr_sup_run */
    kvd_settings set;
    char *in;             /* bytes read, not yet answered */
    size_t in_len, in_cap;
    size_t scanned;       /* in[0..scanned) holds no '\n' */
    bool skipping;        /* inside an oversized line, already answered */
    kvd_buf out;          /* replies not yet written */
    tr_cleanup cleanup;
} conn_state;

static atomic_ulong conn_serial;

static void conn_free(conn_state *c) {
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    if (c->cfg)
        tr_watch_rx_drop(&c->cfg);
    free(c->in);
    c->in = NULL;
    kvd_buf_free(&c->out);
}

static void conn_killed(void *arg) { conn_free(arg); }

/* Room for max_line bytes of a line plus one read. */
static int ensure_room(conn_state *c) {
    size_t want = c->set.max_line + 1 + READ_CHUNK;
    if (c->in_cap >= want)
        return 0;
    char *p = realloc(c->in, want);
    if (!p)
        return -1;
    c->in = p;
    c->in_cap = want;
    return 0;
}

/* Picks up a reloaded configuration, if there is one. */
static void refresh(conn_state *c) {
    if (!c->cfg || tr_watch_has_changed(c->cfg) != 1)
        return;
    tr_watch_mark_unchanged(c->cfg);
    kvd_settings_current(&c->set);
    kvd_log(KVD_LOG_DEBUG, "conn %lu: configuration reloaded (max_line %zu)", c->serial,
            c->set.max_line);
}

/* ---- one request ---------------------------------------------------------------- */

static int do_stats(conn_state *c, const json_t *id) {
    tr_actor_ref root;
    json_t *dump = NULL;
    if (tr_actor_whereis(KVD_ROOT_NAME, &root) == 0)
        dump = tr_sup_dump(root, tr_after_ms(STATS_MS));
    if (!dump)
        return kvd_reply_error(&c->out, id, "stats unavailable");
    int rc = kvd_reply_ok(&c->out, id, dump, NULL);
    json_decref(dump);
    return rc;
}

static int do_store(conn_state *c, const kvd_request *rq) {
    static const int ops[] = {[KVD_CMD_GET] = KVD_STORE_GET,
                              [KVD_CMD_SET] = KVD_STORE_SET,
                              [KVD_CMD_DELETE] = KVD_STORE_DELETE};
    const char *k = json_string_value(rq->key);
    size_t shard = kvd_hash(k, json_string_length(rq->key)) % c->nstores;
    bool found = false;
    json_t *value = NULL;
    int rc = kvd_store_ask(c->stores[shard], ops[rq->cmd], rq->key, rq->value, &found,
                           rq->cmd == KVD_CMD_GET ? &value : NULL,
                           tr_after_ms(c->set.request_ms));
    if (rc == TR_ECANCELED)
        return kvd_reply_error(&c->out, rq->id, "shutting down");
    if (rc == TR_ENOMEM)
        return kvd_reply_error(&c->out, rq->id, "out of memory: the value was not stored");
    if (rc != 0)
        return kvd_reply_error(&c->out, rq->id, "store unavailable: %s", tr_strerror(rc));
    if (rq->cmd == KVD_CMD_SET) {
        json_t *extra = json_pack("{s:b}", "replaced", found);
        rc = kvd_reply_ok(&c->out, rq->id, NULL, extra);
        json_decref(extra);
        return rc;
    }
    if (!found)
        return kvd_reply_error(&c->out, rq->id, "not found");
    rc = kvd_reply_ok(&c->out, rq->id, value, NULL);
    json_decref(value);
    return rc;
}

/* Answers one line (without its '\n') into c->out.  -1: out of memory
 * (no reply could be written, so the connection must close to keep the
 * one-reply-per-request rule). */
static int handle_line(conn_state *c, const char *line, size_t len) {
    if (len > c->set.max_line)
        return kvd_reply_error(&c->out, NULL, "line longer than %zu bytes", c->set.max_line);
    if (len > 0 && line[len - 1] == '\r')
        len--;
    kvd_request rq;
    char err[200];
    int r = kvd_request_parse(line, len, &rq, err, sizeof err);
    if (r == 0)
        return 0;
    int rc;
    if (r < 0) {
        kvd_log(KVD_LOG_DEBUG, "conn %lu: bad request: %s", c->serial, err);
        rc = kvd_reply_error(&c->out, rq.id, "%s", err);
    } else if (rq.cmd == KVD_CMD_STATS) {
        rc = do_stats(c, rq.id);
    } else {
        rc = do_store(c, &rq);
    }
    kvd_request_clear(&rq);
    return rc;
}

/* Answers every complete line in the input buffer, keeps the partial
 * one, and enforces max_line on it.  -1: out of memory. */
static int process(conn_state *c) {
    size_t start = 0;
    for (;;) {
        size_t from = start > c->scanned ? start : c->scanned;
        char *nl = memchr(c->in + from, '\n', c->in_len - from);
        if (!nl)
            break;
        size_t len = (size_t)(nl - (c->in + start));
        if (c->skipping)
            c->skipping = false; /* the oversized line ends here; answered already */
        else if (handle_line(c, c->in + start, len) != 0)
            return -1;
        start += len + 1;
    }
    memmove(c->in, c->in + start, c->in_len - start);
    c->in_len -= start;
    c->scanned = c->in_len;
    if (!c->skipping && c->in_len > c->set.max_line) {
        if (kvd_reply_error(&c->out, NULL, "line longer than %zu bytes", c->set.max_line) != 0)
            return -1;
        c->skipping = true;
    }
    if (c->skipping)
        c->in_len = c->scanned = 0;
    return 0;
}

/* Writes the pending replies.  0, or a negative code (the client is gone,
 * or reads nothing). */
static int flush(conn_state *c) {
    if (c->out.len == 0)
        return 0;
    ssize_t n = tr_write(c->fd, c->out.data, c->out.len, tr_after_ms(WRITE_MS));
    if (c->out.cap > OUT_KEEP)
        kvd_buf_free(&c->out);
    c->out.len = 0;
    return n < 0 ? (int)n : 0;
}

/* Reads once without waiting.  >0 bytes, 0 EOF, <0 nothing (TR_ETIMEDOUT)
 * or an error. */
static ssize_t read_now(conn_state *c) {
    if (ensure_room(c) != 0)
        return TR_ENOMEM;
    ssize_t n = tr_read(c->fd, c->in + c->in_len, c->in_cap - c->in_len, tr_now());
    if (n > 0)
        c->in_len += (size_t)n;
    return n;
}

/* The shutdown path: answer what the client has sent so far, then go. */
static void drain(conn_state *c) {
    refresh(c);
    int rc = 0;
    while (rc == 0 && read_now(c) > 0)
        rc = process(c);
    if (rc == 0)
        rc = process(c);
    if (rc == 0 && flush(c) == 0)
        shutdown(c->fd, SHUT_WR);
    kvd_log(KVD_LOG_DEBUG, "conn %lu: drained", c->serial);
}

/* ---- the connection's life ------------------------------------------------------- */

static void serve(conn_state *c) {
    tr_watch_rx *sig = tr_sup_signal();
    bool cfg_open = c->cfg != NULL;
    for (;;) {
        refresh(c);
        if (tr_sup_stopping()) {
            drain(c);
            return;
        }
        tr_clause cl[3];
        tr_fd_clause(&cl[0], c->fd, TR_READABLE);
        if (!sig || tr_watch_changed_clause(&cl[1], sig) != 0)
            tr_clause_never(&cl[1]);
        if (!cfg_open || tr_watch_changed_clause(&cl[2], c->cfg) != 0)
            tr_clause_never(&cl[2]);
        int i = tr_select(cl, 3, TR_NEVER, 0);
        if (i < 0) /* TR_ECANCELED: past our shutdown timeout */
            return;
        if (i == 1 && cl[1].result != 0)
            sig = NULL; /* the supervisor is gone; nothing more to watch */
        if (i == 2 && cl[2].result != 0)
            cfg_open = false;
        if (i == 2 && cl[2].result == 0) {
            tr_watch_mark_changed(c->cfg); /* the clause marked it seen: refresh() reads it */
            continue;
        }
        if (i != 0)
            continue;
        ssize_t n = read_now(c);
        if (n < 0 && n != TR_ETIMEDOUT) {
            kvd_log(KVD_LOG_DEBUG, "conn %lu: read: %s", c->serial, tr_strerror((int)n));
            return;
        }
        if (process(c) != 0 || flush(c) != 0)
            return;
        if (n == 0) { /* EOF: everything sent has been answered */
            kvd_log(KVD_LOG_DEBUG, "conn %lu: closed by the client", c->serial);
            return;
        }
    }
}

static int conn_handle(void *state, tr_actor_msg *m) {
    conn_state *c = state;
    if (*(int *)m->data != CONN_SERVE)
        return 0;
    tr_cleanup_push(&c->cleanup, conn_killed, c);
    serve(c);
    tr_cleanup_pop(&c->cleanup, false);
    conn_free(c); /* close now: the client sees EOF without waiting for the stop */
    tr_actor_exit(TR_ACTOR_NORMAL);
    return 0;
}

/* args: {"fd": N}, the accepted socket, which this actor owns from a
 * successful init on (on failure it stays the listener's to close). */
static int conn_init(void *state, const void *args) {
    conn_state *c = state;
    c->fd = -1;
    json_t *fdv = json_object_get(args, "fd");
    if (!json_is_integer(fdv) || json_integer_value(fdv) < 0)
        return TR_EINVAL;
    for (c->nstores = 0; c->nstores < KVD_MAX_SHARDS; c->nstores++) {
        char name[64];
        snprintf(name, sizeof name, KVD_STORE_PREFIX "%zu", c->nstores);
        if (tr_actor_whereis(name, &c->stores[c->nstores]) != 0)
            break;
    }
    if (c->nstores == 0) {
        kvd_log(KVD_LOG_ERROR, "no store shard is running (%s0)", KVD_STORE_PREFIX);
        return TR_EDOWN;
    }
    if (tr_sup_config_subscribe(&c->cfg) != 0)
        c->cfg = NULL; /* no tr_sup_run: the defaults, for good */
    kvd_settings_current(&c->set);
    int serve_msg = CONN_SERVE;
    int rc = ensure_room(c) != 0 ? TR_ENOMEM : tr_actor_try_cast(tr_actor_self(), &serve_msg);
    if (rc != 0) {
        conn_free(c);
        return rc;
    }
    c->fd = (int)json_integer_value(fdv);
    c->serial = atomic_fetch_add(&conn_serial, 1) + 1;
    kvd_log(KVD_LOG_DEBUG, "conn %lu: open (fd %d)", c->serial, c->fd);
    return 0;
}

static void conn_terminate(void *state, int reason) {
    (void)reason;
    conn_free(state);
}

const tr_actor_type kvd_conn_type = {
    .name = "kvd_conn",
    .state_size = sizeof(conn_state),
    .msg_size = sizeof(int),
    .init = conn_init,
    .handle = conn_handle,
    .terminate = conn_terminate,
};
