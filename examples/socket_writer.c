/* socket_writer.c — the seeds' resource manager: one actor owns a socket.
 *
 * The tokio::sync docs: "if multiple tasks need to send data over a
 * single socket, spawn a task to manage the socket and use a channel to
 * synchronize", with ten tasks sending through an mpsc of capacity 100 to
 * the one task that calls write_all().  Here the managing task is an
 * actor: its state is the connected fd, its mailbox is the channel, and
 * the ten tasks cast their data to it.
 *
 * Why it is written this way:
 *  - One owner, so writes never interleave.  Each record is one message
 *    and one tr_write() by the only task that ever writes the fd; no
 *    lock, and no record is ever split by another's bytes.  Records of
 *    one sender arrive in the order it sent them (the mailbox is FIFO
 *    per sender); records of different senders interleave freely.
 *  - The actor connects in init, so a spawn that returns 0 means the
 *    connection is up, and a failed connect is the spawn's error.
 *  - Backpressure, as in the seed: the mailbox holds 100 messages, and
 *    casts under the default overflow policy (wait) slow the senders down
 *    to the speed of the socket instead of queueing without limit.
 *  - A write error ends the actor with that error as its reason; senders
 *    then get TR_EDOWN instead of pouring data into a dead connection.
 *  - The end is two steps.  A call (FLUSH) queues behind every cast
 *    accepted before it, so its answer — the bytes written so far — is a
 *    barrier: everything sent before has reached the kernel.  Then a
 *    graceful stop runs terminate, which closes the socket, and the
 *    receiver sees EOF.
 *  - The example brings its own receiving server (tr_tcp_listen on a free
 *    loopback port, tr_accept, tr_read), which checks every line: the
 *    sender and record numbers in order per sender, the payload intact,
 *    and the byte total equal to what the senders cast.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <troupe.h>
#include <tr_actor.h>

#define HOST "127.0.0.1"
#define SENDERS 10     /* the seed's `for _ in 0..10` */
#define RECORDS 500    /* per sender */
#define MAILBOX 100    /* the seed's mpsc::channel(100) */
#define IO_MS 10000    /* far more than any step needs: only a bug reaches it */
#define LINE_MAX_ 120

/* ---- the writer actor --------------------------------------------------------- */

enum { WRITE, FLUSH };

typedef struct {
    int kind;
    uint32_t len;
    char bytes[LINE_MAX_];
} writer_msg;

typedef struct {
    int fd;
    uint64_t written;
} writer_state;

static int writer_init(void *state, const void *args) {
    writer_state *w = state;
    w->fd = tr_tcp_connect(HOST, *(const int *)args, tr_after_ms(IO_MS));
    return w->fd < 0 ? w->fd : 0; /* a failed connect is the spawn's error */
}

static int writer_handle(void *state, tr_actor_msg *m) {
    writer_state *w = state;
    const writer_msg *msg = m->data;
    if (msg->kind == WRITE) {
        ssize_t n = tr_write(w->fd, msg->bytes, msg->len, tr_after_ms(IO_MS));
        if (n < 0)
            return (int)n; /* ends the actor: the connection is no good */
        w->written += (uint64_t)n;
    }
    if (m->reply)
        tr_reply_send(m->reply, &w->written);
    return 0;
}

static void writer_terminate(void *state, int reason) {
    (void)reason;
    writer_state *w = state;
    if (w->fd >= 0)
        close(w->fd); /* the receiver reads EOF after the last byte */
}

static const tr_actor_type writer_type = {
    .name = "socket_writer",
    .state_size = sizeof(writer_state),
    .msg_size = sizeof(writer_msg),
    .reply_size = sizeof(uint64_t),
    .init = writer_init,
    .handle = writer_handle,
    .terminate = writer_terminate,
};

/* ---- the senders ------------------------------------------------------------------- */

/* Record r of sender s: a header, then a payload whose length and letter
 * the receiver can recompute. */
static int format_record(char *buf, size_t cap, int s, int r) {
    int len = snprintf(buf, cap, "sender %d record %d ", s, r);
    int plen = (r * 7 + s) % 60 + 1;
    memset(buf + len, 'a' + (s + r) % 26, (size_t)plen);
    buf[len + plen] = '\n';
    return len + plen + 1;
}

typedef struct {
    tr_actor_ref writer;
    int id;
    uint64_t bytes; /* cast and accepted */
    int err;
} sender;

static void *sender_task(void *arg) {
    sender *s = arg;
    for (int r = 0; r < RECORDS; r++) {
        writer_msg msg = {.kind = WRITE};
        msg.len = (uint32_t)format_record(msg.bytes, sizeof msg.bytes, s->id, r);
        int rc = tr_actor_cast(s->writer, &msg, tr_after_ms(IO_MS));
        if (rc != 0) {
            s->err = rc;
            break;
        }
        s->bytes += msg.len;
    }
    return NULL;
}

/* ---- the receiving server ------------------------------------------------------------- */

typedef struct {
    int lfd;
    uint64_t bytes;
    int lines;
    int next[SENDERS]; /* the record each sender should send next */
    int errors;
} receiver;

static void check_line(receiver *rv, const char *line) {
    int s, r, hdr = 0;
    char want[LINE_MAX_ + 1];
    rv->lines++;
    if (sscanf(line, "sender %d record %d %n", &s, &r, &hdr) != 2 || hdr == 0 || s < 0 ||
        s >= SENDERS || r != rv->next[s]) {
        if (rv->errors++ < 5)
            fprintf(stderr, "socket_writer: unexpected line \"%s\"\n", line);
        return;
    }
    rv->next[s]++;
    int len = format_record(want, sizeof want, s, r);
    want[len - 1] = '\0'; /* the line came without its newline */
    if (strcmp(line, want) != 0 && rv->errors++ < 5)
        fprintf(stderr, "socket_writer: damaged line \"%s\"\n", line);
}

static void *receiver_task(void *arg) {
    receiver *rv = arg;
    int fd = tr_accept(rv->lfd, NULL, NULL, tr_after_ms(IO_MS));
    if (fd < 0) {
        fprintf(stderr, "socket_writer: accept: %s\n", tr_strerror(fd));
        rv->errors++;
        return NULL;
    }
    char buf[4096], line[LINE_MAX_ + 1];
    size_t have = 0;
    for (;;) {
        ssize_t n = tr_read(fd, buf, sizeof buf, tr_after_ms(IO_MS));
        if (n == 0)
            break; /* EOF: the writer closed the connection */
        if (n < 0) {
            fprintf(stderr, "socket_writer: read: %s\n", tr_strerror((int)n));
            rv->errors++;
            break;
        }
        rv->bytes += (uint64_t)n;
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] == '\n') {
                line[have] = '\0';
                check_line(rv, line);
                have = 0;
            } else if (have < LINE_MAX_) {
                line[have++] = buf[i];
            }
        }
    }
    if (have != 0)
        rv->errors++; /* a partial last line */
    close(fd);
    return NULL;
}

/* ---- the program ----------------------------------------------------------------------- */

static void *main_task(void *arg) {
    (void)arg;
    int port = 0;
    receiver rv = {0};
    rv.lfd = tr_tcp_listen(HOST, 0, 0, &port);
    if (rv.lfd < 0) {
        fprintf(stderr, "socket_writer: listen: %s\n", tr_strerror(rv.lfd));
        return (void *)1;
    }
    tr_task *server;
    if (tr_spawn(&server, receiver_task, &rv) != 0)
        return (void *)1;

    tr_actor_ref writer;
    tr_actor_opts o = {.capacity = MAILBOX, .overflow = TR_OVERFLOW_WAIT};
    int rc = tr_actor_spawn(&writer, &writer_type, &port, &o);
    if (rc != 0) {
        fprintf(stderr, "socket_writer: spawn (connect): %s\n", tr_strerror(rc));
        tr_task_cancel(server);
        tr_task_join(server, NULL);
        close(rv.lfd);
        return (void *)1;
    }

    int workers = tr_runtime_workers(tr_runtime_current());
    sender senders[SENDERS];
    tr_task *tasks[SENDERS];
    for (int i = 0; i < SENDERS; i++) {
        senders[i] = (sender){writer, i, 0, 0};
        tr_spawn_opts where = {.worker = TR_WORKER(i % workers)};
        if (tr_spawn_ex(NULL, &where, &tasks[i], sender_task, &senders[i]) != 0)
            return (void *)1;
    }
    uint64_t sent = 0;
    int failed = 0;
    for (int i = 0; i < SENDERS; i++) {
        tr_task_join(tasks[i], NULL);
        sent += senders[i].bytes;
        if (senders[i].err) {
            fprintf(stderr, "socket_writer: sender %d: %s\n", i, tr_strerror(senders[i].err));
            failed = 1;
        }
    }

    /* The barrier: answered only after every earlier cast was written. */
    uint64_t written = 0;
    writer_msg flush = {.kind = FLUSH};
    if ((rc = tr_actor_call(writer, &flush, &written, tr_after_ms(IO_MS))) != 0) {
        fprintf(stderr, "socket_writer: flush: %s\n", tr_strerror(rc));
        failed = 1;
    }
    if ((rc = tr_actor_stop(writer, TR_ACTOR_NORMAL, tr_after_ms(IO_MS))) != 0) {
        fprintf(stderr, "socket_writer: stop: %s\n", tr_strerror(rc));
        failed = 1;
    }
    tr_task_join(server, NULL);
    close(rv.lfd);

    int in_order = 1;
    for (int i = 0; i < SENDERS; i++)
        in_order &= rv.next[i] == RECORDS;
    printf("socket_writer: %d senders cast %llu bytes; the writer wrote %llu; the server read "
           "%llu bytes, %d lines, %d bad, all in order per sender: %s\n",
           SENDERS, (unsigned long long)sent, (unsigned long long)written,
           (unsigned long long)rv.bytes, rv.lines, rv.errors, in_order ? "yes" : "no");
    failed |= written != sent || rv.bytes != sent || rv.lines != SENDERS * RECORDS ||
              rv.errors != 0 || !in_order;
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
