/* chat.c — the seeds' broadcast: a chat room on loopback.
 *
 * Every line a client sends goes to every connected client.  The server
 * gives each connection one task, which selects over two clauses: its
 * socket becoming readable (a line from this client: broadcast it) and
 * the room's broadcast receiver (a line from anyone: write it out).  A
 * receiver that falls more than the room's capacity behind gets
 * TR_ELAGGED with the number of lines it missed, and the client is told:
 * "*** you missed N lines" — the seeds' Lagged case, handled.
 *
 *   chat [PORT]       serve on 127.0.0.1 (0 or nothing: any free port)
 *   chat --selftest   serve, then run four client tasks against it: one
 *                     talks, two listen, one pauses its connection and
 *                     must be told exactly how many lines it missed
 *
 * Try it by hand with `nc 127.0.0.1 PORT` in a few terminals.  A client
 * can send "/pause" to stop receiving (it then lags) and "/resume".
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <troupe.h>

#define ROOM_CAP 16 /* lines the room keeps for slow receivers */
#define LINE_MAX_ 120

typedef struct {
    int from;
    char text[LINE_MAX_];
} chat_line; /* copied bitwise into the broadcast's slots */

/* ---- line reading: one buffer per connection ------------------------------- */

typedef struct {
    char buf[512];
    size_t len;
} line_reader;

/* Takes the next complete line out of r into out (without the newline).
 * Returns true if there was one. */
static bool next_line(line_reader *r, char *out, size_t cap) {
    char *nl = memchr(r->buf, '\n', r->len);
    if (!nl) {
        if (r->len == sizeof r->buf) /* a line too long: cut it */
            nl = r->buf + r->len - 1;
        else
            return false;
    }
    size_t n = (size_t)(nl - r->buf);
    size_t keep = n < cap ? n : cap - 1;
    memcpy(out, r->buf, keep);
    out[keep] = 0;
    if (keep && out[keep - 1] == '\r')
        out[keep - 1] = 0;
    r->len -= n + 1;
    memmove(r->buf, nl + 1, r->len);
    return true;
}

/* ---- the server: one task per connection ----------------------------------------- */

typedef struct {
    int fd, id;
    tr_broadcast_tx *room;
} conn;

static int say(int fd, const char *text) {
    return tr_write(fd, text, strlen(text), tr_after_ms(5000)) < 0 ? -1 : 0;
}

static void *connection(void *arg) {
    conn *c = arg;
    tr_broadcast_rx *rx;
    tr_broadcast_subscribe(c->room, &rx); /* sees lines sent from now on */
    line_reader in = {.len = 0};
    bool paused = false;
    char out[LINE_MAX_ + 64];
    snprintf(out, sizeof out, "*** welcome, you are client %d\n", c->id);
    say(c->fd, out);
    for (;;) {
        chat_line line;
        uint64_t missed = 0;
        tr_clause cl[2];
        tr_fd_clause(&cl[0], c->fd, TR_READABLE);
        if (paused)
            tr_clause_never(&cl[1]);
        else
            tr_broadcast_recv_clause(&cl[1], rx, &line, &missed);
        int i = tr_select(cl, 2, TR_NEVER, 0);
        if (i == 0) { /* from this client */
            ssize_t n = tr_read(c->fd, in.buf + in.len, sizeof in.buf - in.len, tr_after_ms(5000));
            if (n <= 0)
                break; /* gone */
            in.len += (size_t)n;
            chat_line mine = {.from = c->id};
            while (next_line(&in, mine.text, sizeof mine.text)) {
                if (strcmp(mine.text, "/pause") == 0) {
                    paused = true;
                    say(c->fd, "*** paused\n");
                } else if (strcmp(mine.text, "/resume") == 0) {
                    paused = false;
                } else {
                    size_t receivers;
                    tr_broadcast_send(c->room, &mine, &receivers);
                }
            }
        } else if (i == 1 && cl[1].result == 0) { /* from the room */
            snprintf(out, sizeof out, "[%d] %s\n", line.from, line.text);
            if (say(c->fd, out) != 0)
                break;
        } else if (i == 1 && cl[1].result == TR_ELAGGED) {
            snprintf(out, sizeof out, "*** you missed %llu lines\n", (unsigned long long)missed);
            if (say(c->fd, out) != 0)
                break;
        } else {
            break; /* the room closed, or an error */
        }
    }
    tr_broadcast_rx_drop(&rx);
    tr_broadcast_tx_drop(&c->room);
    close(c->fd);
    free(c);
    return NULL;
}

typedef struct {
    int lfd;
    tr_broadcast_tx *room;
} server_state;

static void *acceptor(void *arg) {
    server_state *s = arg;
    for (int id = 1;; id++) {
        int fd = tr_accept(s->lfd, NULL, NULL, TR_NEVER);
        if (fd < 0)
            break; /* cancelled: the server is stopping */
        conn *c = malloc(sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        *c = (conn){fd, id, NULL};
        tr_broadcast_tx_clone(s->room, &c->room); /* each connection its own sender */
        tr_spawn_ex(NULL, &(tr_spawn_opts){.worker = TR_WORKER_BALANCED}, NULL, connection, c);
    }
    return NULL;
}

/* ---- the self-test's clients --------------------------------------------------------- */

typedef struct {
    int port, fd;
    line_reader in;
} client;

static int client_open(client *cl, int port) {
    cl->in.len = 0;
    cl->fd = tr_tcp_connect("127.0.0.1", port, tr_after_ms(5000));
    return cl->fd < 0 ? -1 : 0;
}

/* Reads the next line the server sent; -1 on timeout or close. */
static int client_line(client *cl, char *out, size_t cap) {
    while (!next_line(&cl->in, out, cap)) {
        ssize_t n = tr_read(cl->fd, cl->in.buf + cl->in.len, sizeof cl->in.buf - cl->in.len,
                            tr_after_ms(5000));
        if (n <= 0)
            return -1;
        cl->in.len += (size_t)n;
    }
    return 0;
}

static int selftest(int port) {
    enum { TALKER, L1, L2, SLOW, N };
    client cl[N];
    char line[256];
    for (int i = 0; i < N; i++)
        if (client_open(&cl[i], port) != 0 || client_line(&cl[i], line, sizeof line) != 0)
            return -1; /* the welcome: the connection task has subscribed */
    say(cl[SLOW].fd, "/pause\n");
    if (client_line(&cl[SLOW], line, sizeof line) != 0 || strcmp(line, "*** paused") != 0)
        return -1;
    /* Lines go out in batches smaller than the room, and each batch is read
     * by every listener before the next: a listener that keeps up never
     * lags, whatever the scheduling. */
    const int lines = 40, batch = 10;
    for (int k0 = 0; k0 < lines; k0 += batch) {
        for (int k = k0; k < k0 + batch; k++) {
            snprintf(line, sizeof line, "hello %d\n", k);
            say(cl[TALKER].fd, line);
        }
        for (int who = TALKER; who <= L2; who++) /* the talker hears itself too */
            for (int k = k0; k < k0 + batch; k++) {
                char want[64];
                snprintf(want, sizeof want, "[1] hello %d", k);
                if (client_line(&cl[who], line, sizeof line) != 0 || strcmp(line, want) != 0) {
                    fprintf(stderr, "client %d: got \"%s\", wanted \"%s\"\n", who, line, want);
                    return -1;
                }
            }
    }
    /* The paused one missed all but the room's last ROOM_CAP lines. */
    say(cl[SLOW].fd, "/resume\n");
    char want[64];
    snprintf(want, sizeof want, "*** you missed %d lines", lines - ROOM_CAP);
    if (client_line(&cl[SLOW], line, sizeof line) != 0 || strcmp(line, want) != 0) {
        fprintf(stderr, "slow client: got \"%s\", wanted \"%s\"\n", line, want);
        return -1;
    }
    printf("slow client was told: %s\n", line);
    for (int k = lines - ROOM_CAP; k < lines; k++) {
        snprintf(want, sizeof want, "[1] hello %d", k);
        if (client_line(&cl[SLOW], line, sizeof line) != 0 || strcmp(line, want) != 0)
            return -1;
    }
    for (int i = 0; i < N; i++)
        close(cl[i].fd);
    printf("selftest: %d lines reached 3 clients; the paused one missed %d\n", lines,
           lines - ROOM_CAP);
    return 0;
}

static int port_arg;
static bool run_selftest;

static void *main_task(void *arg) {
    (void)arg;
    int port = 0;
    int lfd = tr_tcp_listen("127.0.0.1", port_arg, 64, &port);
    if (lfd < 0) {
        fprintf(stderr, "listen: %s\n", tr_strerror(lfd));
        return (void *)1;
    }
    server_state s = {lfd, NULL};
    tr_broadcast_rx *keep;
    if (tr_broadcast_new(&s.room, &keep, ROOM_CAP, sizeof(chat_line)) != 0)
        return (void *)1;
    tr_broadcast_rx_drop(&keep); /* connections subscribe their own */
    printf("chat room on 127.0.0.1:%d\n", port);
    fflush(stdout);
    tr_task *acc;
    tr_spawn(&acc, acceptor, &s);
    int rc = 0;
    if (run_selftest) {
        rc = selftest(port);
        tr_task_cancel(acc);
    }
    tr_task_join(acc, NULL);
    /* Connections still open end when the runtime shuts down: their
     * select returns TR_ECANCELED and they clean up. */
    tr_broadcast_tx_drop(&s.room);
    close(lfd);
    return (void *)(intptr_t)(rc != 0);
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--selftest") == 0)
        run_selftest = true;
    else if (argc > 1)
        port_arg = atoi(argv[1]);
    tr_runtime *rt;
    if (tr_runtime_new(&rt, NULL) != 0)
        return 1;
    void *status = NULL;
    int rc = tr_runtime_block_on(rt, main_task, NULL, &status);
    tr_runtime_free(&rt);
    return rc == 0 && status == NULL ? 0 : 1;
}
