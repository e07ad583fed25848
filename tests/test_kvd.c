/* test_kvd.c — the flagship daemon, tested the way its users meet it: as
 * a program, over a socket.
 *
 * Each test starts examples/kvd/kvd (KVD_BIN, from the build) as a
 * subprocess with its own configuration file on port 0, learns the port
 * from the daemon's "kvd listening on 127.0.0.1:PORT" line, talks JSON
 * lines to it, and ends it with SIGTERM, expecting exit status 0 — so a
 * sanitizer build of the daemon that finds a leak or a race fails the
 * test too.  Covered: set/get/delete/stats, every kind of bad request
 * (the connection stays usable after each), several clients at once,
 * max_conns, a SIGHUP that lowers max_line and moves the port while a
 * connection stays open and keeps working (and a broken file on SIGHUP
 * that changes nothing), and pipelined requests written just before
 * SIGTERM, every one of which must be answered before the daemon exits.
 *
 * The test side is plain POSIX (poll, waitpid) and jansson: no troupe
 * runtime, so that the daemon is judged from outside.  Every wait has a
 * deadline (poll with a timeout, waitpid loops); a daemon that hangs is
 * killed and the test fails, it never blocks CI.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "proc_testutil.h"

#ifndef KVD_BIN
#error "KVD_BIN must name the daemon (kvd.am defines it)"
#endif

extern char **environ;

#define WAIT_MS 10000 /* any single step; sanitizer builds are slow to start */

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for fd to be ready until deadline_ms; 0 ready, -1 timed out. */
static int wait_fd(int fd, short events, int64_t deadline_ms) {
    for (;;) {
        int64_t left = deadline_ms - now_ms();
        if (left < 0)
            left = 0;
        struct pollfd p = {fd, events, 0};
        int r = poll(&p, 1, (int)left);
        if (r > 0)
            return 0;
        if (r == 0)
            return -1;
        if (errno != EINTR)
            return -1;
    }
}

/* ---- the daemon ---------------------------------------------------------------- */

typedef struct {
    pid_t pid;
    int out; /* its stdout */
    char buf[1024];
    size_t len;
    int port;
    char cfg[64];
} kvd_proc;

/* The next line the daemon prints on stdout, within the deadline. */
static bool daemon_line(kvd_proc *d, char *line, size_t cap, int64_t deadline_ms) {
    for (;;) {
        char *nl = memchr(d->buf, '\n', d->len);
        if (nl) {
            size_t n = (size_t)(nl - d->buf);
            snprintf(line, cap, "%.*s", (int)n, d->buf);
            memmove(d->buf, nl + 1, d->len - n - 1);
            d->len -= n + 1;
            return true;
        }
        if (d->len == sizeof d->buf || wait_fd(d->out, POLLIN, deadline_ms) != 0)
            return false;
        ssize_t r = read(d->out, d->buf + d->len, sizeof d->buf - d->len);
        if (r <= 0)
            return false;
        d->len += (size_t)r;
    }
}

/* Spawns the daemon with doc as its configuration.  Returns false if it
 * did not print its listening line (d->pid is then still to be reaped). */
static bool daemon_spawn(kvd_proc *d, const char *doc) {
    memset(d, 0, sizeof *d);
    d->pid = -1;
    snprintf(d->cfg, sizeof d->cfg, "/tmp/test_kvd_%d.json", (int)getpid());
    tr_test_write_file(d->cfg, doc);
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    fcntl(p[0], F_SETFD, FD_CLOEXEC); /* only the daemon's copy of p[1] survives exec */
    fcntl(p[1], F_SETFD, FD_CLOEXEC);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    char *argv[] = {(char *)KVD_BIN, d->cfg, NULL};
    int rc = posix_spawn(&d->pid, KVD_BIN, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(p[1]);
    d->out = p[0];
    ck_assert_msg(rc == 0, "spawn %s: %s", KVD_BIN, strerror(rc));
    char line[256];
    if (!daemon_line(d, line, sizeof line, now_ms() + WAIT_MS))
        return false;
    ck_assert_msg(sscanf(line, "kvd listening on 127.0.0.1:%d", &d->port) == 1,
                  "unexpected first line: %s", line);
    return true;
}

static void daemon_start(kvd_proc *d, const char *doc) {
    ck_assert_msg(daemon_spawn(d, doc), "the daemon did not say it was listening");
}

/* Waits for the daemon's exit until the deadline; its wait status, or -1
 * (it was then killed). */
static int daemon_wait(kvd_proc *d, int64_t deadline_ms) {
    /* now_ms() and tr_now() both read CLOCK_MONOTONIC */
    int status = tr_test_waitpid(d->pid, deadline_ms * 1000000);
    d->pid = -1;
    close(d->out);
    unlink(d->cfg);
    return status;
}

/* SIGTERM, then the exit status must be 0. */
static void daemon_stop(kvd_proc *d) {
    ck_assert_int_eq(kill(d->pid, SIGTERM), 0);
    int status = daemon_wait(d, now_ms() + WAIT_MS);
    ck_assert_msg(status != -1, "the daemon did not exit within %d ms of SIGTERM", WAIT_MS);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "the daemon's wait status was 0x%x", status);
}

static bool daemon_alive(kvd_proc *d) { return waitpid(d->pid, NULL, WNOHANG) == 0; }

/* ---- a client -------------------------------------------------------------------- */

typedef struct {
    int fd;
    char buf[1 << 16];
    size_t len;
} client;

static int tcp_connect(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) { /* loopback: never waits long */
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

static client *client_open(int port) {
    client *c = calloc(1, sizeof *c);
    ck_assert_ptr_nonnull(c);
    c->fd = tcp_connect(port);
    ck_assert_msg(c->fd >= 0, "connect to %d: %s", port, strerror(-c->fd));
    return c;
}

static void client_close(client *c) {
    close(c->fd);
    free(c);
}

/* Sends all n bytes; false if the daemon closed the connection. */
static bool try_send_all(client *c, const char *s, size_t n) {
    int64_t deadline = now_ms() + WAIT_MS;
    while (n > 0) {
        ssize_t w = send(c->fd, s, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            ck_assert_msg(wait_fd(c->fd, POLLOUT, deadline) == 0, "send: timed out");
            continue;
        }
        if (w < 0 && (errno == EPIPE || errno == ECONNRESET))
            return false;
        ck_assert_msg(w > 0, "send: %s", strerror(errno));
        s += w;
        n -= (size_t)w;
    }
    return true;
}

static void send_all(client *c, const char *s, size_t n) {
    ck_assert_msg(try_send_all(c, s, n), "send: the daemon closed the connection");
}

static void send_line(client *c, const char *line) {
    send_all(c, line, strlen(line));
    send_all(c, "\n", 1);
}

/* The next reply line (NUL-terminated in a static-lifetime copy the
 * caller frees), or NULL at EOF.  Fails the test on a timeout. */
static char *recv_line(client *c) {
    int64_t deadline = now_ms() + WAIT_MS;
    for (;;) {
        char *nl = memchr(c->buf, '\n', c->len);
        if (nl) {
            size_t n = (size_t)(nl - c->buf);
            char *line = strndup(c->buf, n);
            memmove(c->buf, nl + 1, c->len - n - 1);
            c->len -= n + 1;
            return line;
        }
        ck_assert_msg(c->len < sizeof c->buf, "a reply line longer than 64 KiB");
        ck_assert_msg(wait_fd(c->fd, POLLIN, deadline) == 0, "no reply within %d ms", WAIT_MS);
        ssize_t r = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
        if (r == 0 || (r < 0 && errno == ECONNRESET))
            return NULL;
        ck_assert_msg(r > 0 || errno == EINTR, "recv: %s", strerror(errno));
        if (r > 0)
            c->len += (size_t)r;
    }
}

/* The next reply, parsed; the caller json_decrefs it. */
static json_t *recv_reply(client *c) {
    char *line = recv_line(c);
    ck_assert_msg(line != NULL, "the daemon closed the connection");
    json_error_t je;
    json_t *r = json_loads(line, 0, &je);
    ck_assert_msg(json_is_object(r), "a reply that is not a JSON object: %s", line);
    ck_assert_msg(json_is_boolean(json_object_get(r, "ok")), "a reply without ok: %s", line);
    free(line);
    return r;
}

static json_t *rpc(client *c, const char *line) {
    send_line(c, line);
    return recv_reply(c);
}

static bool reply_ok(const json_t *r) { return json_is_true(json_object_get(r, "ok")); }

static const char *reply_error(const json_t *r) {
    return json_string_value(json_object_get(r, "error"));
}

/* Asserts an ok reply (and its value, if want is not NULL). */
static void expect_ok(client *c, const char *line, const char *want_value) {
    json_t *r = rpc(c, line);
    ck_assert_msg(reply_ok(r), "%s: got error %s", line, reply_error(r));
    if (want_value) {
        json_t *want = json_loads(want_value, JSON_DECODE_ANY, NULL);
        ck_assert_ptr_nonnull(want);
        ck_assert_msg(json_equal(json_object_get(r, "value"), want), "%s: wrong value", line);
        json_decref(want);
    }
    json_decref(r);
}

/* Asserts an error reply whose message contains want. */
static void expect_error(client *c, const char *line, const char *want) {
    json_t *r = rpc(c, line);
    ck_assert_msg(!reply_ok(r), "%.80s: expected an error", line);
    ck_assert_msg(reply_error(r) && strstr(reply_error(r), want), "%.80s: error %s, wanted %s",
                  line, reply_error(r), want);
    json_decref(r);
}

#define QUIET "\"port\":0,\"log_level\":\"warn\""

/* ---- the tests ------------------------------------------------------------------------- */

START_TEST(test_commands) {
    kvd_proc d;
    daemon_start(&d, "{" QUIET "}");
    client *c = client_open(d.port);
    json_t *r = rpc(c, "{\"cmd\":\"set\",\"key\":\"a\",\"value\":1}");
    ck_assert(reply_ok(r));
    ck_assert(json_is_false(json_object_get(r, "replaced")));
    json_decref(r);
    expect_ok(c, "{\"cmd\":\"get\",\"key\":\"a\"}", "1");
    r = rpc(c, "{\"cmd\":\"set\",\"key\":\"a\",\"value\":{\"x\":[1,2,\"three\"]}}");
    ck_assert(json_is_true(json_object_get(r, "replaced")));
    json_decref(r);
    expect_ok(c, "{\"cmd\":\"get\",\"key\":\"a\"}", "{\"x\":[1,2,\"three\"]}");
    expect_ok(c, "{\"cmd\":\"set\",\"key\":\"\",\"value\":null}", NULL); /* "" is a key */
    expect_ok(c, "{\"cmd\":\"get\",\"key\":\"\"}", "null");
    expect_ok(c, "{\"cmd\":\"delete\",\"key\":\"a\"}", NULL);
    expect_error(c, "{\"cmd\":\"get\",\"key\":\"a\"}", "not found");
    expect_error(c, "{\"cmd\":\"delete\",\"key\":\"a\"}", "not found");
    /* The id comes back, on success and on error. */
    r = rpc(c, "{\"cmd\":\"get\",\"key\":\"\",\"id\":[7]}");
    ck_assert_int_eq(json_integer_value(json_array_get(json_object_get(r, "id"), 0)), 7);
    json_decref(r);
    r = rpc(c, "{\"cmd\":\"get\",\"key\":\"nope\",\"id\":\"q\"}");
    ck_assert_str_eq(json_string_value(json_object_get(r, "id")), "q");
    json_decref(r);
    /* stats: the supervision tree, with this connection in it. */
    r = rpc(c, "{\"cmd\":\"stats\"}");
    ck_assert(reply_ok(r));
    json_t *tree = json_object_get(r, "value");
    ck_assert_msg(json_is_array(json_object_get(tree, "children")), "stats: no children");
    ck_assert_int_eq(json_array_size(json_object_get(tree, "children")), 3);
    json_decref(r);
    client_close(c);
    daemon_stop(&d);
}
END_TEST

START_TEST(test_bad_requests) {
    kvd_proc d;
    daemon_start(&d, "{" QUIET "}");
    client *c = client_open(d.port);
    static const struct {
        const char *line, *error;
    } bad[] = {
        {"hello", "not JSON"},
        {"{\"cmd\":\"get\",\"key\":\"a\"} trailing", "not JSON"},
        {"{\"cmd\":", "not JSON"},
        {"[1,2]", "not a JSON object"},
        {"42", "not a JSON object"},
        {"{\"key\":\"a\"}", "cmd: missing"},
        {"{\"cmd\":7}", "cmd: expected a string"},
        {"{\"cmd\":\"frobnicate\",\"key\":\"a\"}", "unknown command"},
        {"{\"cmd\":\"get\"}", "key: missing"},
        {"{\"cmd\":\"delete\",\"key\":5}", "key: expected a string"},
        {"{\"cmd\":\"get\",\"key\":\"a\\u0000b\"}", "not JSON"}, /* NUL is refused */
        {"{\"cmd\":\"set\",\"key\":\"a\"}", "value: missing"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        expect_error(c, bad[i].line, bad[i].error);
        /* ... and the connection still works. */
        char ok[96];
        snprintf(ok, sizeof ok, "{\"cmd\":\"set\",\"key\":\"k%zu\",\"value\":%zu}", i, i);
        expect_ok(c, ok, NULL);
        snprintf(ok, sizeof ok, "{\"cmd\":\"get\",\"key\":\"k%zu\"}", i);
        char want[16];
        snprintf(want, sizeof want, "%zu", i);
        expect_ok(c, ok, want);
    }
    /* An error echoes the id too. */
    json_t *r = rpc(c, "{\"cmd\":\"frob\",\"id\":\"x\"}");
    ck_assert_str_eq(json_string_value(json_object_get(r, "id")), "x");
    json_decref(r);
    /* Blank lines are skipped: the next reply is the next request's. */
    send_all(c, "\n   \n", 5);
    expect_ok(c, "{\"cmd\":\"get\",\"key\":\"k0\"}", "0");

    /* Oversized lines (max_line 4096): a valid request that is too long
     * is refused and not executed... */
    size_t big = 5000;
    char *line = malloc(big + 64);
    ck_assert_ptr_nonnull(line);
    int n = snprintf(line, big + 64, "{\"cmd\":\"set\",\"key\":\"big\",\"value\":\"");
    memset(line + n, 'v', big);
    strcpy(line + n + big, "\"}");
    expect_error(c, line, "line longer than 4096 bytes");
    expect_error(c, "{\"cmd\":\"get\",\"key\":\"big\"}", "not found");
    /* ... one sent in pieces gets exactly one error, then the next
     * request is answered normally ... */
    memset(line, 'x', big);
    send_all(c, line, 3000);
    send_all(c, line, 3000);
    send_all(c, line, 10);
    send_all(c, "\n", 1);
    r = recv_reply(c);
    ck_assert(!reply_ok(r));
    ck_assert(strstr(reply_error(r), "line longer than 4096 bytes"));
    json_decref(r);
    expect_ok(c, "{\"cmd\":\"get\",\"key\":\"k1\",\"id\":1}", "1");
    /* ... and a line of exactly max_line bytes is fine. */
    n = snprintf(line, big, "{\"cmd\":\"get\",\"key\":\"k2\",\"pad\":\"");
    memset(line + n, 'p', 4096 - (size_t)n - 2);
    strcpy(line + 4096 - 2, "\"}");
    ck_assert_uint_eq(strlen(line), 4096);
    expect_ok(c, line, "2");
    free(line);
    client_close(c);
    daemon_stop(&d);
}
END_TEST

START_TEST(test_many_clients) {
    enum { N = 8, KEYS = 20 };
    kvd_proc d;
    daemon_start(&d, "{" QUIET "}");
    client *c[N];
    for (int i = 0; i < N; i++)
        c[i] = client_open(d.port);
    /* All clients write their batch first, then all read: the daemon
     * serves them at once. */
    char line[128];
    for (int i = 0; i < N; i++)
        for (int k = 0; k < KEYS; k++) {
            snprintf(line, sizeof line, "{\"cmd\":\"set\",\"key\":\"c%d-%d\",\"value\":%d}", i,
                     k, i * 1000 + k);
            send_line(c[i], line);
        }
    for (int i = 0; i < N; i++)
        for (int k = 0; k < KEYS; k++) {
            json_t *r = recv_reply(c[i]);
            ck_assert(reply_ok(r));
            json_decref(r);
        }
    /* Each reads what the others wrote. */
    for (int i = 0; i < N; i++)
        for (int k = 0; k < KEYS; k++) {
            int j = (i + 1 + k) % N;
            snprintf(line, sizeof line, "{\"cmd\":\"get\",\"key\":\"c%d-%d\",\"id\":%d}", j, k,
                     k);
            send_line(c[i], line);
        }
    for (int i = 0; i < N; i++)
        for (int k = 0; k < KEYS; k++) {
            json_t *r = recv_reply(c[i]);
            ck_assert(reply_ok(r));
            ck_assert_int_eq(json_integer_value(json_object_get(r, "id")), k);
            ck_assert_int_eq(json_integer_value(json_object_get(r, "value")),
                             ((i + 1 + k) % N) * 1000 + k);
            json_decref(r);
        }
    for (int i = 0; i < N; i++)
        client_close(c[i]);
    daemon_stop(&d);
}
END_TEST

START_TEST(test_max_conns) {
    kvd_proc d;
    daemon_start(&d, "{" QUIET ",\"max_conns\":2}");
    client *a = client_open(d.port), *b = client_open(d.port);
    expect_ok(a, "{\"cmd\":\"set\",\"key\":\"x\",\"value\":1}", NULL);
    expect_ok(b, "{\"cmd\":\"get\",\"key\":\"x\"}", "1");
    client *c = client_open(d.port);
    json_t *r = recv_reply(c);
    ck_assert_str_eq(reply_error(r), "too many connections");
    json_decref(r);
    char *eof = recv_line(c);
    ck_assert_ptr_null(eof);
    client_close(c);
    /* When one leaves, a newcomer gets in (once the daemon has noticed:
     * retried within the deadline). */
    client_close(b);
    int64_t deadline = now_ms() + WAIT_MS;
    for (;;) {
        /* Refused: an error line, EOF, or a reset when our request met
         * the closed socket.  Admitted: the answer. */
        static const char get[] = "{\"cmd\":\"get\",\"key\":\"x\"}\n";
        c = client_open(d.port);
        char *line = try_send_all(c, get, sizeof get - 1) ? recv_line(c) : NULL;
        bool in = line && strcmp(line, "{\"ok\":true,\"value\":1}") == 0;
        free(line);
        if (in)
            break;
        client_close(c);
        ck_assert_msg(now_ms() < deadline, "still refused after a client left");
        poll(NULL, 0, 10);
    }
    expect_ok(a, "{\"cmd\":\"get\",\"key\":\"x\"}", "1");
    client_close(c);
    client_close(a);
    daemon_stop(&d);
}
END_TEST

/* A free port: bound, read, released (the daemon binds it next). */
static int free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

START_TEST(test_sighup_reload) {
    kvd_proc d;
    daemon_start(&d, "{" QUIET ",\"max_line\":4096}");
    int old_port = d.port;
    client *c = client_open(d.port);
    expect_ok(c, "{\"cmd\":\"set\",\"key\":\"k\",\"value\":\"v\"}", NULL);
    /* A 100-byte request: fine under max_line 4096. */
    char padded[128];
    int n = snprintf(padded, sizeof padded, "{\"cmd\":\"get\",\"key\":\"k\",\"pad\":\"");
    memset(padded + n, 'p', 100 - (size_t)n - 2);
    strcpy(padded + 98, "\"}");
    expect_ok(c, padded, "\"v\"");

    /* Reload: max_line 64, and a new port. */
    int port = free_port();
    char doc[160];
    snprintf(doc, sizeof doc, "{\"port\":%d,\"log_level\":\"warn\",\"max_line\":64}", port);
    tr_test_write_file(d.cfg, doc);
    ck_assert_int_eq(kill(d.pid, SIGHUP), 0);
    /* The listener re-binds and says where. */
    char line[256], want[64];
    ck_assert_msg(daemon_line(&d, line, sizeof line, now_ms() + WAIT_MS),
                  "no new listening line after SIGHUP");
    snprintf(want, sizeof want, "kvd listening on 127.0.0.1:%d", port);
    ck_assert_str_eq(line, want);
    /* The open connection picks up the new limit for its next requests
     * (its own config watch; retried until it has, within the deadline). */
    int64_t deadline = now_ms() + WAIT_MS;
    for (;;) {
        json_t *r = rpc(c, padded);
        bool refused = !reply_ok(r);
        if (refused)
            ck_assert_str_eq(reply_error(r), "line longer than 64 bytes");
        json_decref(r);
        if (refused)
            break;
        ck_assert_msg(now_ms() < deadline, "max_line 64 never took effect");
        poll(NULL, 0, 10);
    }
    /* ... and it stays up, with the data. */
    expect_ok(c, "{\"cmd\":\"get\",\"key\":\"k\"}", "\"v\"");
    /* The new port serves; the old one is closed. */
    client *c2 = client_open(port);
    expect_ok(c2, "{\"cmd\":\"get\",\"key\":\"k\"}", "\"v\"");
    expect_error(c2, padded, "line longer than 64 bytes");
    int fd = tcp_connect(old_port);
    ck_assert_msg(fd == -ECONNREFUSED, "the old port still accepts (%d)", fd);

    /* A broken file on SIGHUP changes nothing: the daemon says why on
     * stderr and goes on with the settings it has. */
    tr_test_write_file(d.cfg, "{\"port\": 0, \"max_line\": ");
    ck_assert_int_eq(kill(d.pid, SIGHUP), 0);
    tr_test_write_file(d.cfg, "{\"port\":0,\"max_line\":\"big\"}");
    ck_assert_int_eq(kill(d.pid, SIGHUP), 0);
    for (int i = 0; i < 20; i++)
        expect_error(c, padded, "line longer than 64 bytes");
    expect_ok(c2, "{\"cmd\":\"get\",\"key\":\"k\"}", "\"v\"");
    ck_assert(daemon_alive(&d));
    client_close(c2);
    client_close(c);
    daemon_stop(&d);
}
END_TEST

START_TEST(test_sigterm_drain) {
    enum { CONNS = 3, PIPELINED = 300 };
    kvd_proc d;
    daemon_start(&d, "{" QUIET "}");
    client *c[CONNS];
    for (int i = 0; i < CONNS; i++) {
        c[i] = client_open(d.port);
        expect_ok(c[i], "{\"cmd\":\"set\",\"key\":\"warm\",\"value\":0}", NULL);
    }
    /* Each connection writes a batch it does not read yet... */
    size_t cap = PIPELINED * 80;
    char *batch = malloc(cap);
    ck_assert_ptr_nonnull(batch);
    for (int i = 0; i < CONNS; i++) {
        size_t len = 0;
        for (int k = 0; k < PIPELINED; k++)
            len += (size_t)snprintf(batch + len, cap - len,
                                    k % 2 ? "{\"cmd\":\"get\",\"key\":\"d%d-%d\",\"id\":%d}\n"
                                          : "{\"cmd\":\"set\",\"key\":\"d%d-%d\",\"value\":1,"
                                            "\"id\":%d}\n",
                                    i, k - k % 2, k);
        send_all(c[i], batch, len);
    }
    free(batch);
    /* ... and the daemon is told to stop right after. */
    ck_assert_int_eq(kill(d.pid, SIGTERM), 0);
    /* Every request already sent is answered, in order, then EOF. */
    for (int i = 0; i < CONNS; i++) {
        for (int k = 0; k < PIPELINED; k++) {
            json_t *r = recv_reply(c[i]);
            ck_assert_msg(reply_ok(r), "conn %d request %d: %s", i, k, reply_error(r));
            ck_assert_int_eq(json_integer_value(json_object_get(r, "id")), k);
            if (k % 2)
                ck_assert_int_eq(json_integer_value(json_object_get(r, "value")), 1);
            json_decref(r);
        }
        char *eof = recv_line(c[i]);
        ck_assert_msg(eof == NULL, "more after the drain: %s", eof);
        client_close(c[i]);
    }
    int status = daemon_wait(&d, now_ms() + WAIT_MS);
    ck_assert_msg(status != -1, "the daemon did not exit after draining");
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "wait status 0x%x", status);
}
END_TEST

START_TEST(test_bad_config) {
    /* A bad setting: exit status 1, nothing listening. */
    kvd_proc d;
    ck_assert(!daemon_spawn(&d, "{\"port\":0,\"max_lines\":5}"));
    int status = daemon_wait(&d, now_ms() + WAIT_MS);
    ck_assert_msg(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 1,
                  "wait status 0x%x", status);
    /* A bad tree: the same, and the path of the problem on stderr. */
    ck_assert(!daemon_spawn(&d, "{\"port\":0,\"tree\":{\"children\":[{\"id\":\"x\","
                                "\"type\":\"kvd_store\",\"restart\":\"sometimes\"}]}}"));
    status = daemon_wait(&d, now_ms() + WAIT_MS);
    ck_assert_msg(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 1,
                  "wait status 0x%x", status);
}
END_TEST

static Suite *kvd_suite(void) {
    Suite *s = suite_create("kvd");
    TCase *tc = tr_tcase("daemon");
    tcase_add_test(tc, test_commands);
    tcase_add_test(tc, test_bad_requests);
    tcase_add_test(tc, test_many_clients);
    tcase_add_test(tc, test_max_conns);
    tcase_add_test(tc, test_sighup_reload);
    tcase_add_test(tc, test_sigterm_drain);
    tcase_add_test(tc, test_bad_config);
    suite_add_tcase(s, tc);
    return s;
}

TR_TEST_MAIN(kvd_suite)
