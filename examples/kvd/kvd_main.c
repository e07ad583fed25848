/* kvd_main.c — kvd, troupe's flagship: a supervised key-value daemon.
 *
 *   kvd CONFIG.json          serve until SIGTERM or SIGINT; SIGHUP reloads
 *   kvd --check CONFIG.json  validate the settings and the tree, start nothing
 *
 * Talk to it with JSON lines (kvd_proto.h has the protocol):
 *
 *   printf '{"cmd":"set","key":"a","value":1}\n{"cmd":"get","key":"a"}\n' |
 *       nc -N 127.0.0.1 7379
 *
 * Why this file is short: the daemon is a supervision tree described in
 * the configuration file's "tree" section (a built-in default when there
 * is none) and run by tr_sup_run, which owns the process level — it
 * loads the file, starts the tree, reloads the file on SIGHUP and
 * publishes it on the configuration watch, and on SIGTERM/SIGINT stops
 * the tree gracefully and returns the exit status.  What is left here is
 * registering the daemon's actor types by name, so that the document can
 * name them, and checking a reloaded file before it is published.
 *
 * The tree (the default, and kvd.json's):
 *
 *   kvd (rest_for_one)
 *   ├── stores (one_for_one)      kvd.store.0 .. kvd.store.3, permanent
 *   ├── conns (simple_one_for_one, name kvd.conns)
 *   │     └── kvd_conn ...        one per client, temporary
 *   └── listener                  kvd_listener, permanent
 *
 * Start order is that order, so a connection always finds its shards and
 * the listener its supervisor; stop order is the reverse: the listener
 * stops accepting, the connections drain (every request already read is
 * answered), then the shards go.  rest_for_one at the root: if the
 * stores supervisor gives up (its shards crash too often) everything
 * after it restarts too, since connections hold refs to the shards.
 *
 * On SIGHUP the settings (limits, log level, host and port) change
 * without dropping a connection; the tree itself is read once, at start
 * (a changed "tree" is reported and takes effect at the next start).
 */
#include <stdio.h>
#include <string.h>

#include "kvd.h"

static const char default_tree[] =
    "{\"strategy\":\"rest_for_one\",\"intensity\":3,\"period_ms\":5000,\"children\":["
    " {\"id\":\"stores\",\"supervisor\":{\"strategy\":\"one_for_one\",\"intensity\":10,"
    "  \"period_ms\":1000,\"children\":["
    "  {\"id\":\"store0\",\"type\":\"kvd_store\",\"name\":\"kvd.store.0\"},"
    "  {\"id\":\"store1\",\"type\":\"kvd_store\",\"name\":\"kvd.store.1\"},"
    "  {\"id\":\"store2\",\"type\":\"kvd_store\",\"name\":\"kvd.store.2\"},"
    "  {\"id\":\"store3\",\"type\":\"kvd_store\",\"name\":\"kvd.store.3\"}]}},"
    " {\"id\":\"conns\",\"name\":\"kvd.conns\",\"supervisor\":{\"strategy\":"
    "  \"simple_one_for_one\",\"children\":[{\"id\":\"conn\",\"type\":\"kvd_conn\","
    "  \"restart\":\"temporary\",\"shutdown\":5000}]}},"
    " {\"id\":\"listener\",\"type\":\"kvd_listener\",\"args\":{\"conns\":\"kvd.conns\"}}]}";

typedef struct {
    json_t *tree; /* the tree that was started */
} kvd_main_ctx;

/* tr_sup_run's check: at start and on every SIGHUP, before publishing. */
static int check_config(const json_t *config, char *err, size_t errlen, void *ctx) {
    kvd_main_ctx *m = ctx;
    kvd_settings s;
    if (kvd_settings_parse(config, &s, err, errlen) != 0)
        return -1;
    json_t *tree = json_object_get(config, "tree");
    if (tree && m->tree && !json_equal(tree, m->tree))
        kvd_log(KVD_LOG_WARN, "tree: changes take effect at the next start");
    /* Accepted from here on (returning 0 publishes it): the log level is
     * process-wide, so it is set here rather than by some actor. */
    kvd_log_set_level(s.log_level);
    return 0;
}

static int usage(void) {
    fprintf(stderr, "usage: kvd CONFIG.json\n"
                    "       kvd --check CONFIG.json\n");
    return 2;
}

int main(int argc, char **argv) {
    bool check = argc == 3 && strcmp(argv[1], "--check") == 0;
    if (!(argc == 2 && argv[1][0] != '-') && !check)
        return usage();
    const char *path = argv[argc - 1];

    json_error_t je;
    json_t *config = json_load_file(path, 0, &je);
    if (!config) {
        fprintf(stderr, "kvd: %s:%d:%d: %s\n", path, je.line, je.column, je.text);
        return 1;
    }
    char err[256];
    kvd_settings s;
    if (kvd_settings_parse(config, &s, err, sizeof err) != 0) {
        fprintf(stderr, "kvd: %s: %s\n", path, err);
        json_decref(config);
        return 1;
    }
    json_t *tree = json_incref(json_object_get(config, "tree"));
    if (!tree)
        tree = json_loads(default_tree, 0, NULL);
    json_decref(config);
    if (!tree) {
        fprintf(stderr, "kvd: out of memory\n");
        return 1;
    }

    int status = 1;
    int rc = 0;
    if ((rc = tr_sup_register_type("kvd_store", &kvd_store_type)) != 0 ||
        (rc = tr_sup_register_type("kvd_conn", &kvd_conn_type)) != 0 ||
        (rc = tr_sup_register_type("kvd_listener", &kvd_listener_type)) != 0) {
        fprintf(stderr, "kvd: registering types: %s\n", tr_strerror(rc));
        goto out;
    }
    if (tr_sup_check_json(tree, err, sizeof err) != 0) {
        fprintf(stderr, "kvd: %s: tree.%s\n", path, err);
        goto out;
    }
    if (check) {
        printf("kvd: %s is valid\n", path);
        status = 0;
        goto out;
    }

    tr_runtime *rt = NULL;
    if ((rc = tr_runtime_new(&rt, NULL)) != 0) {
        fprintf(stderr, "kvd: runtime: %s\n", tr_strerror(rc));
        goto out;
    }
    kvd_main_ctx ctx = {tree};
    tr_actor_opts root = {.name = KVD_ROOT_NAME};
    tr_sup_run_opts ro = {
        .config_path = path,
        .root_opts = &root,
        .check_config = check_config,
        .ctx = &ctx,
    };
    status = tr_sup_run(rt, NULL, tree, &ro);
    tr_runtime_free(&rt);
out:
    json_decref(tree);
    return status;
}
