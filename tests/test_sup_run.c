/* test_sup_run.c — tr_sup_run as a daemon runs it: in a forked process,
 * driven by real signals.  The daemon's actors and its log report through
 * a pipe, one line per event ("init a", "cfg 2", "term a", "log: ..."), so
 * the test waits for what it needs with poll and a deadline, never a
 * sleep.  Covered: the tree is up, SIGHUP reloads and a watcher actor sees
 * the new value, a broken file on SIGHUP keeps the old configuration,
 * SIGTERM stops the tree (terminate ran, exit 0), a bad configuration at
 * start (exit 1, nothing started), a refused one, a stop past its
 * deadline (exit 2), and what is left after the return (no configuration,
 * no subscription, the signal dispositions as they were).
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "actor_testutil.h"
#include "proc_testutil.h"
#include "tr_sup.h"

static int ev_fd = -1; /* the daemon's end of the event pipe */
static tr_runtime *d_rt;

__attribute__((format(printf, 1, 2))) static void emit(const char *fmt, ...) {
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if (n > (int)sizeof line - 2)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    ssize_t w = write(ev_fd, line, (size_t)n); /* < PIPE_BUF: one piece */
    (void)w;
}

/* ---- the daemon's actor types ------------------------------------------------------ */

typedef struct named {
    char id[16];
} named;

static int named_init(void *st, const void *args) {
    const json_t *a = args;
    snprintf(((named *)st)->id, sizeof((named *)st)->id, "%s",
             json_is_string(a) ? json_string_value(a) : "?");
    emit("init %s", ((named *)st)->id);
    return 0;
}

static int named_handle(void *st, tr_actor_msg *m) {
    (void)st;
    (void)m;
    return 0;
}

static void named_terminate(void *st, int reason) {
    emit("term %s %d", ((named *)st)->id, reason);
}

static const tr_actor_type named_type = {
    .name = "named", .state_size = sizeof(named), .msg_size = sizeof(int),
    .init = named_init, .handle = named_handle, .terminate = named_terminate,
};

/* Follows the configuration: a task waits on the watch and reports each
 * new "value"; it ends when the watch closes (tr_sup_run returned). */
static int cfg_value(void) {
    json_t *c = tr_sup_config_get();
    int v = (int)json_integer_value(json_object_get(c, "value"));
    json_decref(c);
    return v;
}

static void *watch_task(void *arg) {
    tr_watch_rx *rx = arg;
    while (tr_watch_changed(rx, TR_NEVER) == 0)
        emit("cfg %d", cfg_value());
    tr_watch_rx_drop(&rx);
    return NULL;
}

static int watcher_init(void *st, const void *args) {
    (void)st;
    (void)args;
    tr_watch_rx *rx = NULL;
    ck_assert_tr_ok(tr_sup_config_subscribe(&rx));
    emit("cfg %d", cfg_value());
    ck_assert_tr_ok(tr_spawn_ex(d_rt, NULL, NULL, watch_task, rx));
    return 0;
}

static const tr_actor_type watcher_type = {
    .name = "watcher", .state_size = 1, .msg_size = sizeof(int),
    .init = watcher_init, .handle = named_handle,
};

/* Takes 1.5 s to terminate, whatever happens (cancelled sleeps return at
 * once, so the loop is bounded by the clock, not by the sleeps). */
static void slow_terminate(void *st, int reason) {
    (void)st;
    (void)reason;
    emit("slow terminating");
    int64_t end = tr_after_ms(1500);
    while (tr_now() < end)
        tr_sleep_ms(20);
}

static const tr_actor_type slow_type = {
    .name = "slow", .state_size = sizeof(named), .msg_size = sizeof(int),
    .init = named_init, .handle = named_handle, .terminate = slow_terminate,
};

/* Crashes (reason 7) on the message its init sends itself: every
 * incarnation crashes once, so its supervisor soon gives up. */
static int crasher_init(void *st, const void *args) {
    (void)args;
    named *n = st;
    snprintf(n->id, sizeof n->id, "crasher");
    emit("init crasher");
    int m = 0;
    return tr_actor_try_cast(tr_actor_self(), &m);
}

static int crasher_handle(void *st, tr_actor_msg *m) {
    (void)st;
    (void)m;
    return 7;
}

static const tr_actor_type crasher_type = {
    .name = "crasher", .state_size = sizeof(named), .msg_size = sizeof(int),
    .init = crasher_init, .handle = crasher_handle,
};

/* Ends normally on the message its init sends itself. */
static int quitter_handle(void *st, tr_actor_msg *m) {
    (void)st;
    (void)m;
    emit("quitter quits");
    tr_actor_exit(TR_ACTOR_NORMAL); /* returning 0 would mean "go on" */
    return 0;
}

static const tr_actor_type quitter_type = {
    .name = "quitter", .state_size = sizeof(named), .msg_size = sizeof(int),
    .init = crasher_init, .handle = quitter_handle,
};

/* ---- the daemon process ---------------------------------------------------------------- */

typedef struct daemon_cfg {
    const char *tree;         /* JSON, or NULL for the C spec below */
    const char *config_path;
    int64_t shutdown_ms;
    bool refuse;              /* check_config refuses everything */
} daemon_cfg;

static void log_line(const char *line, void *ctx) {
    (void)ctx;
    emit("log: %s", line);
}

static int check_cfg(const json_t *config, char *err, size_t errlen, void *ctx) {
    const daemon_cfg *d = ctx;
    if (d->refuse || !json_is_integer(json_object_get(config, "value"))) {
        snprintf(err, errlen, "\"value\" must be an integer");
        return 1;
    }
    return 0;
}

static int daemon_main(const daemon_cfg *d) {
    struct sigaction before, after;
    sigaction(SIGTERM, NULL, &before);
    tr_runtime_opts ro = {0};
    ro.workers = 2;
    ck_assert_tr_ok(tr_runtime_new(&d_rt, &ro));
    int rc = tr_sup_register_type("named", &named_type);
    rc = rc ? rc : tr_sup_register_type("watcher", &watcher_type);
    rc = rc ? rc : tr_sup_register_type("slow", &slow_type);
    rc = rc ? rc : tr_sup_register_type("crasher", &crasher_type);
    rc = rc ? rc : tr_sup_register_type("quitter", &quitter_type);
    ck_assert_tr_ok(rc);
    tr_sup_run_opts o = {0};
    o.config_path = d->config_path;
    o.shutdown_ms = d->shutdown_ms;
    o.check_config = check_cfg;
    o.ctx = (void *)d;
    o.log = log_line;
    int status;
    if (d->tree) {
        json_error_t je;
        json_t *tree = json_loads(d->tree, 0, &je);
        ck_assert_ptr_nonnull(tree);
        status = tr_sup_run(d_rt, NULL, tree, &o);
        json_decref(tree);
    } else {
        json_t *slow_args = json_string("slow");
        tr_child_spec kids[2] = {
            {.id = "a", .type = &named_type, .args = slow_args},
            {.id = "slow", .type = &slow_type, .args = slow_args,
             .shutdown_ms = TR_SHUTDOWN_INFINITY},
        };
        json_t *a_args = json_string("a");
        kids[0].args = a_args;
        tr_sup_spec spec = {.strategy = TR_SUP_ONE_FOR_ONE, .children = kids, .nchildren = 2};
        status = tr_sup_run(d_rt, &spec, NULL, &o);
        json_decref(a_args);
        json_decref(slow_args);
    }
    /* Nothing left behind. */
    tr_watch_rx *rx = NULL;
    json_t *c = tr_sup_config_get();
    sigaction(SIGTERM, NULL, &after);
    emit("after subscribe=%d config=%s disposition=%s", tr_sup_config_subscribe(&rx),
         c ? "kept" : "none", after.sa_handler == before.sa_handler ? "restored" : "changed");
    json_decref(c);
    tr_runtime_free(&d_rt);
    return status;
}

/* ---- the test's side -------------------------------------------------------------------- */

typedef struct dproc {
    pid_t pid;
    int fd;          /* read end */
    char buf[8192];
    size_t len;
    char path[64];   /* the config file */
} dproc;

static void start_daemon(dproc *dm, daemon_cfg *d, const char *config_text) {
    memset(dm, 0, sizeof *dm);
    snprintf(dm->path, sizeof dm->path, "/tmp/tr_sup_run_%d.json", (int)getpid());
    if (config_text) {
        tr_test_write_file(dm->path, config_text);
        d->config_path = dm->path;
    }
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    fflush(NULL);
    dm->pid = fork();
    ck_assert_int_ge(dm->pid, 0);
    if (dm->pid == 0) {
        close(p[0]);
        ev_fd = p[1];
        exit(daemon_main(d)); /* exit, not _exit: LSan checks the daemon too */
    }
    close(p[1]);
    dm->fd = p[0];
}

/* Finds a buffered line that starts with prefix, removes it, and returns
 * true; the other lines stay, so that events from different threads
 * (the log, the watcher) may be expected in any order. */
static bool take_line(dproc *dm, const char *prefix) {
    char *line = dm->buf, *end = dm->buf + dm->len, *nl;
    while (line < end && (nl = memchr(line, '\n', (size_t)(end - line)))) {
        if (strncmp(line, prefix, strlen(prefix)) == 0 && (size_t)(nl - line) >= strlen(prefix)) {
            if (getenv("TR_TEST_VERBOSE"))
                fprintf(stderr, "daemon: %.*s\n", (int)(nl - line), line);
            memmove(line, nl + 1, (size_t)(end - nl - 1));
            dm->len -= (size_t)(nl - line) + 1;
            return true;
        }
        line = nl + 1;
    }
    return false;
}

/* Waits for a line that starts with prefix.  Fails the test at the
 * deadline or when the daemon closes the pipe first. */
static void expect(dproc *dm, const char *prefix) {
    int64_t dl = TR_TEST_DEADLINE();
    while (!take_line(dm, prefix)) {
        int64_t left = (dl - tr_now()) / 1000000;
        ck_assert_msg(left > 0, "no line \"%s\" from the daemon; it said:\n%s", prefix, dm->buf);
        ck_assert_msg(dm->len < sizeof dm->buf - 1, "the daemon's lines fill the buffer");
        struct pollfd pfd = {.fd = dm->fd, .events = POLLIN};
        if (poll(&pfd, 1, (int)left) <= 0)
            continue;
        ssize_t r = read(dm->fd, dm->buf + dm->len, sizeof dm->buf - dm->len - 1);
        dm->buf[dm->len + (r > 0 ? (size_t)r : 0)] = '\0';
        ck_assert_msg(r > 0, "the daemon closed its pipe before \"%s\"; it said:\n%s", prefix,
                      dm->buf);
        dm->len += (size_t)r;
    }
}

/* Reaps the daemon within the test deadline and returns its exit status. */
static int reap(dproc *dm) {
    int st = tr_test_waitpid(dm->pid, TR_TEST_DEADLINE());
    ck_assert_msg(st != -1, "the daemon did not exit");
    close(dm->fd);
    unlink(dm->path);
    ck_assert_msg(WIFEXITED(st), "the daemon died of signal %d", WTERMSIG(st));
    return WEXITSTATUS(st);
}

static const char *tree_doc =
    "{\"children\":[{\"id\":\"a\",\"type\":\"named\",\"args\":\"a\"},"
    "{\"id\":\"w\",\"type\":\"watcher\"}]}";

START_TEST(reload_then_term) {
    dproc dm;
    daemon_cfg d = {.tree = tree_doc};
    start_daemon(&dm, &d, "{\"value\": 1}");
    expect(&dm, "init a");
    expect(&dm, "cfg 1");
    tr_test_write_file(dm.path, "{\"value\": 2}");
    kill(dm.pid, SIGHUP);
    expect(&dm, "cfg 2");
    expect(&dm, "log: troupe: reloaded /tmp/tr_sup_run_");
    /* A broken file keeps the old configuration, reported with its place. */
    tr_test_write_file(dm.path, "{\"value\": 3,\n oops}");
    kill(dm.pid, SIGHUP);
    char want[128];
    snprintf(want, sizeof want, "log: troupe: %s:2:", dm.path);
    expect(&dm, want);
    expect(&dm, "log: troupe: keeping the previous configuration");
    /* So does one check_config refuses. */
    tr_test_write_file(dm.path, "{\"value\": \"four\"}");
    kill(dm.pid, SIGHUP);
    expect(&dm, "log: troupe: /tmp/tr_sup_run_");
    expect(&dm, "log: troupe: keeping the previous configuration");
    tr_test_write_file(dm.path, "{\"value\": 5}");
    kill(dm.pid, SIGHUP);
    expect(&dm, "cfg 5");
    ck_assert(!take_line(&dm, "cfg 3")); /* they were never published */
    ck_assert(!take_line(&dm, "cfg 0")); /* "four" reads as 0 */
    kill(dm.pid, SIGTERM);
    expect(&dm, "log: troupe: SIGTERM: stopping");
    expect(&dm, "term a 1");
    expect(&dm, "after subscribe=-");
    ck_assert_int_eq(reap(&dm), 0);
}
END_TEST

START_TEST(sigint_no_config) {
    dproc dm;
    daemon_cfg d = {.tree = "{\"children\":[{\"id\":\"a\",\"type\":\"named\",\"args\":\"a\"}]}"};
    start_daemon(&dm, &d, NULL);
    expect(&dm, "init a");
    kill(dm.pid, SIGHUP); /* no configuration: nothing to reload, nothing dies */
    kill(dm.pid, SIGINT);
    expect(&dm, "log: troupe: SIGINT: stopping");
    expect(&dm, "term a 1");
    char want[128];
    snprintf(want, sizeof want, "after subscribe=%d config=none disposition=restored", TR_EINVAL);
    expect(&dm, want);
    ck_assert_int_eq(reap(&dm), 0);
}
END_TEST

START_TEST(bad_config_at_start) {
    dproc dm;
    daemon_cfg d = {.tree = tree_doc};
    start_daemon(&dm, &d, "{\"value\": ");
    char want[128];
    snprintf(want, sizeof want, "log: troupe: %s:1:", dm.path);
    expect(&dm, want);
    expect(&dm, "after subscribe=");
    ck_assert(!take_line(&dm, "init")); /* nothing was started */
    ck_assert_int_eq(reap(&dm), 1);
}
END_TEST

START_TEST(refused_config_at_start) {
    dproc dm;
    daemon_cfg d = {.tree = tree_doc, .refuse = true};
    start_daemon(&dm, &d, "{\"value\": 1}");
    char want[160];
    snprintf(want, sizeof want, "log: troupe: %s: refused: \"value\" must be an integer", dm.path);
    expect(&dm, want);
    ck_assert_int_eq(reap(&dm), 1);
}
END_TEST

START_TEST(bad_tree_at_start) {
    dproc dm;
    daemon_cfg d = {.tree = "{\"children\":[{\"id\":\"a\",\"type\":\"nosuch\"}]}"};
    start_daemon(&dm, &d, NULL);
    expect(&dm, "log: troupe: the tree could not start: children[0].type: \"nosuch\" is not a "
                "registered actor type");
    ck_assert_int_eq(reap(&dm), 1);
}
END_TEST

START_TEST(stop_past_deadline) {
    dproc dm;
    daemon_cfg d = {.tree = NULL, .shutdown_ms = 200}; /* the C spec, with a slow child */
    start_daemon(&dm, &d, NULL);
    expect(&dm, "init a");
    expect(&dm, "init slow");
    kill(dm.pid, SIGTERM);
    expect(&dm, "slow terminating");
    expect(&dm, "log: troupe: the shutdown took longer than 200 ms");
    ck_assert_int_eq(reap(&dm), 2);
}
END_TEST

/* A root that gives up (restart intensity) ends the run: exit 1. */
START_TEST(root_gives_up) {
    dproc dm;
    daemon_cfg d = {.tree = "{\"intensity\":2,\"period_ms\":60000,\"children\":["
                            "{\"id\":\"a\",\"type\":\"named\",\"args\":\"a\"},"
                            "{\"id\":\"c\",\"type\":\"crasher\"}]}"};
    start_daemon(&dm, &d, NULL);
    expect(&dm, "init a");
    expect(&dm, "log: troupe: the root supervisor gave up: reached max restart intensity");
    expect(&dm, "term a 1");
    ck_assert_int_eq(reap(&dm), 1);
}
END_TEST

/* A root that ends by auto_shutdown (its significant child finished) ends
 * the run normally: exit 0. */
START_TEST(root_auto_shutdown) {
    dproc dm;
    daemon_cfg d = {.tree = "{\"auto_shutdown\":\"any_significant\",\"children\":["
                            "{\"id\":\"a\",\"type\":\"named\",\"args\":\"a\"},"
                            "{\"id\":\"q\",\"type\":\"quitter\",\"restart\":\"transient\","
                            "\"significant\":true}]}"};
    start_daemon(&dm, &d, NULL);
    expect(&dm, "quitter quits");
    expect(&dm, "term a 1");
    expect(&dm, "log: troupe: the root supervisor ended");
    ck_assert_int_eq(reap(&dm), 0);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("sup_run");
    TCase *tc = tr_tcase("run");
    tcase_add_test(tc, reload_then_term);
    tcase_add_test(tc, sigint_no_config);
    tcase_add_test(tc, bad_config_at_start);
    tcase_add_test(tc, refused_config_at_start);
    tcase_add_test(tc, bad_tree_at_start);
    tcase_add_test(tc, stop_past_deadline);
    tcase_add_test(tc, root_gives_up);
    tcase_add_test(tc, root_auto_shutdown);
    suite_add_tcase(s, tc);
    return s;
}

TR_TEST_MAIN(suite)
