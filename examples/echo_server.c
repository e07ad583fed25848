/* echo_server.c — a TCP echo server: one task per connection.
 *
 * This is the shape of every troupe network server, in the smallest
 * program that has it: a listener task accepts, each connection gets a
 * task of its own that reads and writes as if it had the machine to
 * itself, and the workers multiplex them all.  Code that waits reads top
 * to bottom; no callbacks, no state machines.
 *
 *   echo_server [port]                 serve on 127.0.0.1:port (default
 *                                      7777; 0 picks a free one) until
 *                                      killed
 *   echo_server --selftest [clients]   serve on a free port, run that many
 *                                      client tasks (default 50) against
 *                                      it in the same process, print one
 *                                      summary line; exit 0 if every echo
 *                                      came back intact, 1 otherwise
 *
 * Trade-offs, kept simple on purpose: the server binds 127.0.0.1 only (an
 * example should not open a port to the network); it echoes raw bytes, so
 * "lines" are simply what clients send; an idle connection is dropped
 * after a minute so that forgotten clients do not hold tasks forever; and
 * serving stops only when the process is killed, because signal handling
 * belongs to another part of troupe.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <troupe.h>

#define HOST "127.0.0.1"
#define DEFAULT_PORT 7777
#define IDLE_MS 60000            /* drop a connection silent for this long */
#define SELFTEST_MESSAGES 5      /* per client */
#define SELFTEST_OP_MS 10000     /* the longest any one selftest step may take */

/* ---- the server --------------------------------------------------------- */

/* One connection: echo until the peer closes, goes silent, or fails. */
static void *conn_main(void *arg) {
    int fd = (int)(intptr_t)arg;
    char buf[16384];
    for (;;) {
        /* A fresh deadline per read: it measures idleness, not age. */
        ssize_t n = tr_read(fd, buf, sizeof buf, tr_after_ms(IDLE_MS));
        if (n <= 0)
            break; /* 0: EOF; < 0: idle, reset, or the runtime is stopping */
        /* tr_write waits for room itself, so a client that reads slowly
         * slows only its own task. */
        if (tr_write(fd, buf, (size_t)n, tr_after_ms(IDLE_MS)) < 0)
            break;
    }
    close(fd);
    return NULL;
}

/* Accepts until cancelled.  Each connection's task is detached: nobody
 * needs its result, and it frees itself when it returns. */
static void *listener_main(void *arg) {
    int lfd = (int)(intptr_t)arg;
    for (;;) {
        int fd = tr_accept(lfd, NULL, NULL, TR_NEVER);
        if (fd == TR_ECANCELED)
            return NULL;
        if (fd == -EMFILE || fd == -ENFILE) {
            /* Out of descriptors: the pending connection stays queued, so
             * retrying at once would spin.  Let some connections close. */
            fprintf(stderr, "echo_server: accept: %s\n", tr_strerror(fd));
            if (tr_sleep_ms(100) == TR_ECANCELED)
                return NULL;
            continue;
        }
        if (fd < 0) {
            fprintf(stderr, "echo_server: accept: %s\n", tr_strerror(fd));
            continue;
        }
        /* Balanced: connections spread over the workers, whichever one
         * the listener happens to live on. */
        tr_spawn_opts o = {.worker = TR_WORKER_BALANCED, .name = "conn"};
        int rc = tr_spawn_ex(NULL, &o, NULL, conn_main, (void *)(intptr_t)fd);
        if (rc) {
            fprintf(stderr, "echo_server: spawn: %s\n", tr_strerror(rc));
            close(fd);
        }
    }
}

/* ---- serving until killed --------------------------------------------------- */

static void *serve_main(void *arg) {
    int port = *(int *)arg, bound = 0;
    int lfd = tr_tcp_listen(HOST, port, 0, &bound);
    if (lfd < 0) {
        fprintf(stderr, "echo_server: listen on %s:%d: %s\n", HOST, port, tr_strerror(lfd));
        return (void *)(intptr_t)1;
    }
    printf("echo_server: listening on %s:%d\n", HOST, bound);
    fflush(stdout);
    listener_main((void *)(intptr_t)lfd); /* this task is the listener */
    close(lfd);
    return NULL;
}

/* ---- the self-test ----------------------------------------------------------- */

typedef struct selftest {
    int port;
    int clients;
} selftest;

/* Reads exactly len bytes, or fails. */
static int read_exact(int fd, char *buf, size_t len, int64_t deadline) {
    size_t got = 0;
    while (got < len) {
        ssize_t n = tr_read(fd, buf + got, len - got, deadline);
        if (n == 0)
            return TR_ECLOSED; /* the server hung up early */
        if (n < 0)
            return (int)n;
        got += (size_t)n;
    }
    return 0;
}

/* One client: a few messages, each checked as it comes back, then a
 * half-close to see the server hang up in turn. */
static void *client_main(void *arg) {
    const selftest *st = arg;
    int64_t deadline = tr_after_ms(SELFTEST_OP_MS);
    int fd = tr_tcp_connect(HOST, st->port, deadline);
    if (fd < 0)
        return (void *)(intptr_t)fd;
    int rc = 0;
    for (int i = 0; i < SELFTEST_MESSAGES && rc == 0; i++) {
        char msg[128], back[128];
        int len = snprintf(msg, sizeof msg, "task %llu says hello, message %d\n",
                           (unsigned long long)tr_task_id(tr_task_self()), i);
        ssize_t n = tr_write(fd, msg, (size_t)len, deadline);
        if (n < 0)
            rc = (int)n;
        else if ((rc = read_exact(fd, back, (size_t)len, deadline)) == 0 &&
                 memcmp(msg, back, (size_t)len) != 0)
            rc = TR_EINVAL; /* came back different */
    }
    if (rc == 0) {
        /* Done sending: the server must see EOF and close its side. */
        shutdown(fd, SHUT_WR);
        char c;
        ssize_t n = tr_read(fd, &c, 1, deadline);
        if (n != 0)
            rc = n < 0 ? (int)n : TR_EINVAL;
    }
    close(fd);
    return (void *)(intptr_t)rc;
}

static void *selftest_main(void *arg) {
    selftest *st = arg;
    int64_t start = tr_now();
    int lfd = tr_tcp_listen(HOST, 0, 0, &st->port);
    if (lfd < 0) {
        fprintf(stderr, "echo_server: listen: %s\n", tr_strerror(lfd));
        return (void *)(intptr_t)1;
    }
    tr_task *listener = NULL;
    int rc = tr_spawn(&listener, listener_main, (void *)(intptr_t)lfd);
    if (rc) {
        fprintf(stderr, "echo_server: spawn listener: %s\n", tr_strerror(rc));
        close(lfd);
        return (void *)(intptr_t)1;
    }

    tr_task **clients = calloc((size_t)st->clients, sizeof *clients);
    int failed = 0, spawned = 0;
    for (int i = 0; clients && i < st->clients; i++) {
        tr_spawn_opts o = {.worker = TR_WORKER_BALANCED, .name = "client"};
        rc = tr_spawn_ex(NULL, &o, &clients[i], client_main, st);
        if (rc) {
            fprintf(stderr, "echo_server: spawn client: %s\n", tr_strerror(rc));
            break;
        }
        spawned++;
    }
    failed += st->clients - spawned;
    for (int i = 0; i < spawned; i++) {
        void *res = NULL;
        tr_task_join(clients[i], &res);
        int crc = (int)(intptr_t)res;
        if (crc) {
            if (failed++ < 5) /* a few are enough to see what went wrong */
                fprintf(stderr, "echo_server: client %d: %s\n", i, tr_strerror(crc));
        }
    }
    free(clients);

    /* The listener waits without a deadline; cancelling it is how it ends. */
    tr_task_cancel(listener);
    tr_task_join(listener, NULL);
    close(lfd);

    double secs = (double)(tr_now() - start) / 1e9;
    printf("selftest: %d clients, %d messages each, %d failed, %.3f s\n", st->clients,
           SELFTEST_MESSAGES, failed, secs);
    return (void *)(intptr_t)(failed ? 1 : 0);
}

/* ---- main -------------------------------------------------------------------- */

static bool parse_int(const char *s, int lo, int hi, int *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < lo || v > hi)
        return false;
    *out = (int)v;
    return true;
}

static int usage(void) {
    fprintf(stderr, "usage: echo_server [port]\n"
                    "       echo_server --selftest [clients]\n");
    return 2;
}

int main(int argc, char **argv) {
    bool self = argc > 1 && strcmp(argv[1], "--selftest") == 0;
    int n = self ? 50 : DEFAULT_PORT;
    int rest = self ? 2 : 1;
    if (argc > rest + 1)
        return usage();
    if (argc == rest + 1 && !(self ? parse_int(argv[rest], 1, 100000, &n)
                                   : parse_int(argv[rest], 0, 65535, &n)))
        return usage();

    tr_runtime *rt = NULL;
    int rc = tr_runtime_new(&rt, NULL); /* one worker per CPU */
    if (rc) {
        fprintf(stderr, "echo_server: runtime: %s\n", tr_strerror(rc));
        return 1;
    }
    void *res = NULL;
    selftest st = {.clients = n};
    rc = self ? tr_runtime_block_on(rt, selftest_main, &st, &res)
              : tr_runtime_block_on(rt, serve_main, &n, &res);
    tr_runtime_free(&rt);
    if (rc) {
        fprintf(stderr, "echo_server: %s\n", tr_strerror(rc));
        return 1;
    }
    return res ? 1 : 0;
}
