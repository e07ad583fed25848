/* bench_kvd.c — the flagship daemon's request rate, measured end to end.
 *
 *   kvd   starts examples/kvd/kvd as a subprocess with a temporary
 *         configuration (127.0.0.1, port 0, log level warn), reads the
 *         port from its "kvd listening on 127.0.0.1:PORT" line, runs 64
 *         clients on loopback (kvd_client.c: request/reply, 90% gets)
 *         for n requests in all (default 100,000), then stops the daemon
 *         with SIGTERM and checks that it exits with status 0.  ns_per_op
 *         is wall time per request over all clients (so ops_per_sec is
 *         requests/s); mean_latency_us= is the mean round trip one client
 *         sees.  ok=1 only if every reply was {"ok":true...} and the exit
 *         was clean.
 *
 * Why a subprocess and not the daemon's actors in this process: the
 * figure users care about is the daemon's, with its sockets, parsing and
 * supervision, measured the way a client sees it.  The daemon and the
 * clients share the machine's CPUs, which is what loopback means.
 *
 * The binary is found relative to /proc/self/exe (bench/troupe-bench, or
 * bench/.libs/ when libtool wraps it), or from $KVD_BIN.  Every wait has
 * a deadline; a daemon that does not stop within 20 s is killed and the
 * bench fails.
 */
#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "tr_error.h"
#include "tr_io.h"
#include "tr_runtime.h"
#include "tr_time.h"

extern char **environ;

#define CLIENTS 64
#define START_MS 20000
#define STOP_MS 20000

/* The daemon's path into out; 0, or -1 when it cannot be found. */
static int find_kvd(char *out, size_t cap) {
    const char *env = getenv("KVD_BIN");
    if (env) {
        snprintf(out, cap, "%s", env);
        return access(out, X_OK) == 0 ? 0 : -1;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return -1;
    exe[n] = '\0';
    const char *dir = dirname(exe);
    static const char *const rel[] = {"/../examples/kvd/kvd", "/../../examples/kvd/kvd"};
    for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
        snprintf(out, cap, "%s%s", dir, rel[i]);
        if (access(out, X_OK) == 0)
            return 0;
    }
    return -1;
}

/* Reads the daemon's first stdout line and parses the port.  0 or -1. */
static int read_port(int fd, int *port) {
    char line[256];
    size_t have = 0;
    int64_t deadline = tr_after_ms(START_MS);
    while (have < sizeof line - 1) {
        ssize_t n = tr_read(fd, line + have, sizeof line - 1 - have, deadline);
        if (n <= 0)
            return -1;
        have += (size_t)n;
        line[have] = '\0';
        if (strchr(line, '\n'))
            return sscanf(line, "kvd listening on 127.0.0.1:%d", port) == 1 ? 0 : -1;
    }
    return -1;
}

/* Waits for pid until the deadline; -1 if it is still running. */
static int wait_exit(pid_t pid, int *status, int64_t deadline) {
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid)
            return 0;
        if (r < 0 && errno != EINTR)
            return -1;
        if (tr_now() >= deadline)
            return -1;
        tr_sleep_ms(10);
    }
}

void *kvd_body(void *p) {
    bench_out *out = p;
    char bin[PATH_MAX + 64];
    if (find_kvd(bin, sizeof bin) != 0) {
        fprintf(stderr, "troupe-bench: kvd: examples/kvd/kvd not found (set KVD_BIN)\n");
        return NULL;
    }
    char cfg[] = "/tmp/kvd-bench-XXXXXX";
    int cfd = mkstemp(cfg);
    if (cfd < 0)
        return NULL;
    static const char doc[] =
        "{\"host\":\"127.0.0.1\",\"port\":0,\"log_level\":\"warn\",\"max_conns\":1024}\n";
    bool wrote = write(cfd, doc, sizeof doc - 1) == (ssize_t)(sizeof doc - 1);
    close(cfd);
    int pfd[2] = {-1, -1};
    pid_t pid = -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (wrote && pipe(pfd) == 0) {
        posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
        posix_spawn_file_actions_addclose(&fa, pfd[0]);
        posix_spawn_file_actions_addclose(&fa, pfd[1]);
        char *argv[] = {bin, cfg, NULL};
        if (posix_spawn(&pid, bin, &fa, NULL, argv, environ) != 0)
            pid = -1;
        close(pfd[1]);
    }
    posix_spawn_file_actions_destroy(&fa);
    int port = 0, status = -1;
    kvd_load l = {.host = "127.0.0.1", .clients = CLIENTS, .requests = out->n, .get_ratio = 0.9};
    if (pid > 0 && tr_fd_nonblock(pfd[0]) == 0 && read_port(pfd[0], &port) == 0) {
        l.port = port;
        int rc = kvd_load_run(&l);
        if (rc != 0)
            fprintf(stderr, "troupe-bench: kvd: load: %s\n", tr_strerror(rc));
    } else {
        fprintf(stderr, "troupe-bench: kvd: the daemon did not start (%s)\n", bin);
    }
    if (pid > 0) {
        kill(pid, SIGTERM);
        if (wait_exit(pid, &status, tr_after_ms(STOP_MS)) != 0) {
            fprintf(stderr, "troupe-bench: kvd: no exit %d s after SIGTERM; killing it\n",
                    STOP_MS / 1000);
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            status = -1;
        }
    }
    if (pfd[0] >= 0)
        close(pfd[0]);
    unlink(cfg);
    bool clean = status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (l.errors)
        fprintf(stderr, "troupe-bench: kvd: %" PRIu64 " errors; first: %s\n", l.errors,
                l.first_error);
    if (status >= 0 && !clean)
        fprintf(stderr, "troupe-bench: kvd: the daemon's exit status was 0x%x\n", status);
    out->ns = l.ns;
    out->ok = clean && l.errors == 0 && l.done == out->n;
    append(out->extra, sizeof out->extra, "clients=%d mean_latency_us=%.1f exit=%d", CLIENTS,
           l.done ? (double)l.lat_ns / (double)l.done / 1e3 : 0.0,
           clean ? 0 : (status >= 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1));
    return NULL;
}
