/* kvd_listener.c — the listener: accepts clients and starts a connection
 * actor for each under the dynamic "conns" supervisor.
 *
 * Why an actor: it is a permanent child of the root, started last (after
 * the shards and the conns supervisor it hands work to) and so stopped
 * first: on SIGTERM the daemon stops accepting before the connections
 * drain.  Its init binds and prints the one line users and tests read,
 *
 *     kvd listening on 127.0.0.1:PORT
 *
 * on stdout, flushed: with "port": 0 that line is how anyone learns the
 * ephemeral port.  A bind failure fails init, so tr_sup_run exits with
 * status 1 and the reason on stderr.
 *
 * Its handler is a loop that selects on the listening socket, the
 * shutdown watch and the configuration watch.  On STOPPING it closes the
 * socket (pending connections in the backlog are refused by the kernel)
 * and returns.
 *
 * SIGHUP and the port: when a reload changes "host" or "port", the
 * listener binds the new address first and, if that works, closes the
 * old socket and prints a new "kvd listening on" line; connections
 * already open are separate actors and carry on untouched.  If the new
 * bind fails (the port is taken, or it overlaps the old address), it
 * says so on stderr and keeps listening where it was; a later reload may
 * try again.  max_conns takes effect for the next accept.
 *
 * max_conns: before starting a connection the listener asks the conns
 * supervisor how many children are active (tr_sup_count_children);
 * past the limit the client gets {"ok":false,"error":"too many
 * connections"} and is closed.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kvd.h"

#define START_MS 5000 /* starting one connection actor takes microseconds */

enum { LISTENER_SERVE = 1 };

typedef struct {
    int lfd;
    kvd_settings set; /* host and port: what lfd is bound to (as configured) */
    int bound;        /* the port actually bound */
    tr_watch_rx *cfg;
    tr_actor_ref conns;
    tr_cleanup cleanup;
} listener_state;

static void listener_free(listener_state *l) {
    if (l->lfd >= 0) {
        close(l->lfd);
        l->lfd = -1;
    }
    if (l->cfg)
        tr_watch_rx_drop(&l->cfg);
}

static void listener_killed(void *arg) { listener_free(arg); }

/* Binds host:port and says so on stdout.  The fd, or a negative code. */
static int bind_and_announce(const char *host, int port, int *bound) {
    int fd = tr_tcp_listen(host, port, 0, bound);
    if (fd < 0)
        return fd;
    bool v6 = strchr(host, ':') != NULL;
    printf("kvd listening on %s%s%s:%d\n", v6 ? "[" : "", host, v6 ? "]" : "", *bound);
    fflush(stdout);
    return fd;
}

static void json_drop(void *value, void *ctx) {
    (void)ctx;
    json_decref(value);
}

static void refuse(int fd, const char *why) {
    static const char line[] = "{\"ok\":false,\"error\":\"too many connections\"}\n";
    tr_write(fd, line, sizeof line - 1, tr_after_ms(100));
    kvd_log(KVD_LOG_WARN, "refused a client: %s", why);
    close(fd);
}

/* Hands a new client to the conns supervisor. */
static void admit(listener_state *l, int fd) {
    tr_sup_counts n;
    if (tr_sup_count_children(l->conns, &n, tr_after_ms(START_MS)) == 0 &&
        n.active >= l->set.max_conns) {
        refuse(fd, "max_conns reached");
        return;
    }
    json_t *args = json_pack("{s:i}", "fd", fd);
    if (!args) {
        close(fd);
        return;
    }
    tr_child_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.args = args; /* the supervisor owns it from here on */
    spec.args_drop = json_drop;
    int rc = tr_sup_start_child(l->conns, &spec, NULL, tr_after_ms(START_MS));
    if (rc == TR_ETIMEDOUT || rc == TR_ECANCELED) {
        /* The start may still complete, and the child then owns fd. */
        kvd_log(KVD_LOG_ERROR, "starting a connection: %s", tr_strerror(rc));
    } else if (rc != 0) {
        kvd_log(KVD_LOG_ERROR, "starting a connection: %s", tr_strerror(rc));
        close(fd);
    }
}

static void accept_all(listener_state *l) {
    for (;;) {
        int fd = tr_accept(l->lfd, NULL, NULL, tr_now()); /* what is there, no wait */
        if (fd >= 0) {
            admit(l, fd);
            continue;
        }
        if (fd != TR_ETIMEDOUT) {
            kvd_log(KVD_LOG_ERROR, "accept: %s", tr_strerror(fd));
            /* Out of descriptors: the client stays in the backlog, so
             * retrying at once would spin; let connections close first. */
            if (fd == -EMFILE || fd == -ENFILE)
                tr_sleep_ms(100);
        }
        return;
    }
}

/* A reload: new limits, and a re-bind if the address changed. */
static void reconfigure(listener_state *l) {
    kvd_settings ns;
    kvd_settings_current(&ns);
    kvd_log(KVD_LOG_INFO, "configuration reloaded");
    if (strcmp(ns.host, l->set.host) != 0 || ns.port != l->set.port) {
        int bound = 0;
        int fd = bind_and_announce(ns.host, ns.port, &bound);
        if (fd < 0) {
            kvd_log(KVD_LOG_ERROR, "cannot listen on %s:%d (%s); still on %s:%d", ns.host,
                    ns.port, tr_strerror(fd), l->set.host, l->bound);
            strcpy(ns.host, l->set.host);
            ns.port = l->set.port;
        } else {
            kvd_log(KVD_LOG_INFO, "moved from port %d to %d; open connections kept", l->bound,
                    bound);
            close(l->lfd);
            l->lfd = fd;
            l->bound = bound;
        }
    }
    l->set = ns;
}

static void serve(listener_state *l) {
    tr_watch_rx *sig = tr_sup_signal();
    bool cfg_open = l->cfg != NULL;
    while (!tr_sup_stopping()) {
        tr_clause cl[3];
        tr_fd_clause(&cl[0], l->lfd, TR_READABLE);
        if (!sig || tr_watch_changed_clause(&cl[1], sig) != 0)
            tr_clause_never(&cl[1]);
        if (!cfg_open || tr_watch_changed_clause(&cl[2], l->cfg) != 0)
            tr_clause_never(&cl[2]);
        int i = tr_select(cl, 3, TR_NEVER, 0);
        if (i < 0)
            return; /* cancelled */
        if (i == 0)
            accept_all(l);
        else if (i == 1 && cl[1].result != 0)
            sig = NULL;
        else if (i == 2 && cl[2].result != 0)
            cfg_open = false;
        else if (i == 2)
            reconfigure(l);
    }
}

static int listener_handle(void *state, tr_actor_msg *m) {
    listener_state *l = state;
    if (*(int *)m->data != LISTENER_SERVE)
        return 0;
    tr_cleanup_push(&l->cleanup, listener_killed, l);
    serve(l);
    tr_cleanup_pop(&l->cleanup, false);
    kvd_log(KVD_LOG_INFO, "stopped accepting on port %d", l->bound);
    listener_free(l); /* close at once: new clients are refused from now on */
    return 0;
}

/* args (JSON, optional): {"conns": "<the conns supervisor's name>"}. */
static int listener_init(void *state, const void *args) {
    listener_state *l = state;
    l->lfd = -1;
    const char *conns = KVD_CONNS_NAME;
    json_t *cv = json_object_get(args, "conns");
    if (json_is_string(cv))
        conns = json_string_value(cv);
    if (tr_actor_whereis(conns, &l->conns) != 0) {
        kvd_log(KVD_LOG_ERROR, "listener: no supervisor named \"%s\"", conns);
        return TR_EDOWN;
    }
    kvd_settings_current(&l->set);
    l->lfd = bind_and_announce(l->set.host, l->set.port, &l->bound);
    if (l->lfd < 0) {
        int rc = l->lfd;
        kvd_log(KVD_LOG_ERROR, "cannot listen on %s:%d: %s", l->set.host, l->set.port,
                tr_strerror(rc));
        return rc;
    }
    if (tr_sup_config_subscribe(&l->cfg) != 0)
        l->cfg = NULL;
    int serve_msg = LISTENER_SERVE;
    int rc = tr_actor_try_cast(tr_actor_self(), &serve_msg);
    if (rc != 0)
        listener_free(l);
    return rc;
}

static void listener_terminate(void *state, int reason) {
    (void)reason;
    listener_free(state);
}

const tr_actor_type kvd_listener_type = {
    .name = "kvd_listener",
    .state_size = sizeof(listener_state),
    .msg_size = sizeof(int),
    .init = listener_init,
    .handle = listener_handle,
    .terminate = listener_terminate,
};
