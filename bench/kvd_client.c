/* kvd_client.c — load for kvd: N clients, each a connection doing
 * request/reply in a loop; requests per second and mean latency.
 *
 *   bench/kvd-client [--host 127.0.0.1] [--port 7379] [--clients 64]
 *                    [--requests 100000] [--ratio 0.9]
 *
 * --requests is the total over all clients; --ratio the fraction of gets
 * (the rest are sets).  Each client owns 16 keys and sets them all first,
 * so every get finds its key and every reply must be {"ok":true...}; any
 * other reply, a timeout or a closed connection counts as an error, and
 * the exit status is 1 if there was one.
 *
 * Why troupe tasks rather than threads: 64 clients that each wait on a
 * socket most of the time are what tasks are for, and the load generator
 * then costs the machine (which the daemon shares, on loopback) two
 * threads, not 64.  Each client waits for its reply before sending the
 * next request (no pipelining), so the latency measured is a full round
 * trip through the daemon: parse, a call to a shard actor, the reply.
 *
 * The same file is linked into troupe-bench, whose `kvd` bench starts
 * the daemon and runs this load (bench_kvd.c); KVD_CLIENT_MAIN gives the
 * standalone program its main.  Every wait has a deadline: a daemon that
 * stops answering fails the run, it never hangs it.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "tr_error.h"
#include "tr_io.h"
#include "tr_runtime.h"
#include "tr_time.h"

#define KEYS_PER_CLIENT 16
#define OP_MS 10000 /* no single round trip may take longer */

typedef struct {
    kvd_load *load;
    int index;
    uint64_t requests;
    uint64_t done, errors;
    int64_t lat_ns;
    char first_error[160];
} client;

static void client_error(client *c, const char *what, const char *detail) {
    if (c->errors++ == 0)
        snprintf(c->first_error, sizeof c->first_error, "%s: %.120s", what, detail);
}

static void *client_main(void *arg) {
    client *c = arg;
    kvd_load *l = c->load;
    int fd = tr_tcp_connect(l->host, l->port, tr_after_ms(OP_MS));
    if (fd < 0) {
        client_error(c, "connect", tr_strerror(fd));
        c->errors += c->requests - 1;
        return NULL;
    }
    char buf[4096];
    size_t have = 0;
    uint64_t rng = 0x9E3779B97F4A7C15ull * (uint64_t)(c->index + 1);
    uint32_t cut = (uint32_t)(l->get_ratio * 4294967295.0);
    for (uint64_t i = 0; i < c->requests; i++) {
        rng ^= rng << 13; /* xorshift64: cheap, reproducible per client */
        rng ^= rng >> 7;
        rng ^= rng << 17;
        unsigned key = (unsigned)(i % KEYS_PER_CLIENT);
        bool get = i >= KEYS_PER_CLIENT && (uint32_t)(rng >> 32) < cut;
        char req[160];
        int len = get ? snprintf(req, sizeof req, "{\"cmd\":\"get\",\"key\":\"c%d-k%u\"}\n",
                                 c->index, key)
                      : snprintf(req, sizeof req,
                                 "{\"cmd\":\"set\",\"key\":\"c%d-k%u\",\"value\":%" PRIu64 "}\n",
                                 c->index, key, i);
        int64_t t0 = tr_now();
        int64_t deadline = t0 + (int64_t)OP_MS * 1000000;
        ssize_t w = tr_write(fd, req, (size_t)len, deadline);
        if (w < 0) {
            client_error(c, "write", tr_strerror((int)w));
            break;
        }
        /* One reply line; replies to this client's requests are small. */
        char *nl;
        while (!(nl = memchr(buf, '\n', have))) {
            if (have == sizeof buf) {
                client_error(c, "read", "a reply line longer than 4 KiB");
                goto done;
            }
            ssize_t n = tr_read(fd, buf + have, sizeof buf - have, deadline);
            if (n <= 0) {
                client_error(c, "read", n == 0 ? "the daemon closed" : tr_strerror((int)n));
                goto done;
            }
            have += (size_t)n;
        }
        c->lat_ns += tr_now() - t0;
        c->done++;
        if (strncmp(buf, "{\"ok\":true", 10) != 0) {
            *nl = '\0';
            client_error(c, "reply", buf);
        }
        size_t used = (size_t)(nl - buf) + 1;
        memmove(buf, nl + 1, have - used);
        have -= used;
    }
done:
    close(fd);
    return NULL;
}

int kvd_load_run(kvd_load *l) {
    if (l->clients <= 0 || l->requests < (uint64_t)l->clients)
        return TR_EINVAL;
    client *cs = calloc((size_t)l->clients, sizeof *cs);
    tr_task **ts = calloc((size_t)l->clients, sizeof *ts);
    if (!cs || !ts) {
        free(cs);
        free(ts);
        return TR_ENOMEM;
    }
    int started = 0, rc = 0;
    int64_t t0 = tr_now();
    for (int i = 0; i < l->clients; i++) {
        cs[i].load = l;
        cs[i].index = i;
        cs[i].requests = l->requests / (uint64_t)l->clients +
                         ((uint64_t)i < l->requests % (uint64_t)l->clients);
        tr_spawn_opts o = {.worker = TR_WORKER_BALANCED, .name = "kvd-client"};
        if ((rc = tr_spawn_ex(NULL, &o, &ts[i], client_main, &cs[i])) != 0)
            break;
        started++;
    }
    l->done = l->errors = 0;
    l->lat_ns = 0;
    l->first_error[0] = '\0';
    for (int i = 0; i < started; i++) {
        tr_task_join(ts[i], NULL); /* each client bounds its own waits */
        l->done += cs[i].done;
        l->errors += cs[i].errors;
        l->lat_ns += cs[i].lat_ns;
        if (!l->first_error[0] && cs[i].first_error[0])
            snprintf(l->first_error, sizeof l->first_error, "client %d: %s", i,
                     cs[i].first_error);
    }
    l->ns = tr_now() - t0;
    free(cs);
    free(ts);
    return rc;
}

#ifdef KVD_CLIENT_MAIN
static void *run_task(void *arg) { return (void *)(intptr_t)kvd_load_run(arg); }

static int usage(void) {
    fprintf(stderr, "usage: kvd-client [--host ADDR] [--port N] [--clients N] "
                    "[--requests M] [--ratio GETS]\n");
    return 2;
}

int main(int argc, char **argv) {
    kvd_load l = {.host = "127.0.0.1", .port = 7379, .clients = 64, .requests = 100000,
                  .get_ratio = 0.9};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if (!v)
            return usage();
        if (strcmp(a, "--host") == 0)
            l.host = v;
        else if (strcmp(a, "--port") == 0)
            l.port = (int)strtol(v, &end, 10);
        else if (strcmp(a, "--clients") == 0)
            l.clients = (int)strtol(v, &end, 10);
        else if (strcmp(a, "--requests") == 0)
            l.requests = strtoull(v, &end, 10);
        else if (strcmp(a, "--ratio") == 0)
            l.get_ratio = strtod(v, &end);
        else
            return usage();
        if (end && *end)
            return usage();
        i++;
    }
    if (l.port < 1 || l.port > 65535 || l.clients < 1 || l.clients > 100000 ||
        l.requests < (uint64_t)l.clients || l.get_ratio < 0 || l.get_ratio > 1)
        return usage();
    tr_runtime *rt = NULL;
    int rc = tr_runtime_new(&rt, NULL);
    void *res = NULL;
    if (rc == 0)
        rc = tr_runtime_block_on(rt, run_task, &l, &res);
    tr_runtime_free(&rt);
    if (rc == 0)
        rc = (int)(intptr_t)res;
    if (rc != 0) {
        fprintf(stderr, "kvd-client: %s\n", tr_strerror(rc));
        return 1;
    }
    double secs = (double)l.ns / 1e9;
    printf("kvd-client: %d clients, %" PRIu64 " requests (%.0f%% get) in %.3f s: "
           "%.0f requests/s, mean latency %.1f us, %" PRIu64 " errors\n",
           l.clients, l.done, l.get_ratio * 100, secs, (double)l.done / secs,
           l.done ? (double)l.lat_ns / (double)l.done / 1e3 : 0.0, l.errors);
    if (l.errors)
        fprintf(stderr, "kvd-client: first error: %s\n", l.first_error);
    return l.errors || l.done != l.requests ? 1 : 0;
}
#endif
