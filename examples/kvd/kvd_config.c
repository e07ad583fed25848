/* kvd_config.c — kvd's settings, read from the configuration document,
 * and its log.
 *
 * Why here and not in each actor: the listener and every connection read
 * the same settings, and tr_sup_run's check_config must refuse a bad file
 * before it is published (a SIGHUP with a typo keeps the old settings and
 * says why on stderr).  One parser serves both.
 *
 * The document (every key optional):
 *
 *   { "host": "127.0.0.1", "port": 7379,       numeric address; port 0: ephemeral
 *     "max_line": 4096,                        bytes per request line
 *     "max_conns": 1024,                       connections served at once
 *     "log_level": "info",                     error | warn | info | debug
 *     "request_ms": 10000,                     a connection's wait for a shard
 *     "tree": { ... } }                        the supervision tree (kvd_main.c)
 *
 * Unknown keys are errors, as in troupe's JSON trees: a misspelt limit
 * must not be silently ignored.  The log level is process-wide (an
 * atomic), set when a document is accepted; the other settings are read
 * by each actor from tr_sup_config_get when the configuration watch
 * changes.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "kvd.h"

#define MAX_LINE_LIMIT (16u << 20) /* a request line above 16 MiB is a config error */

static atomic_int log_level = KVD_LOG_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void kvd_settings_default(kvd_settings *s) {
    memset(s, 0, sizeof *s);
    strcpy(s->host, "127.0.0.1");
    s->port = 7379;
    s->max_line = 4096;
    s->max_conns = 1024;
    s->log_level = KVD_LOG_INFO;
    s->request_ms = 10000;
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* An integer member in lo..hi; absent leaves *out alone. */
static int get_int(const json_t *cfg, const char *key, json_int_t lo, json_int_t hi,
                   json_int_t *out, char *err, size_t errlen) {
    json_t *v = json_object_get(cfg, key);
    if (!v)
        return 0;
    if (!json_is_integer(v))
        return fail(err, errlen, "%s: expected an integer", key);
    json_int_t i = json_integer_value(v);
    if (i < lo || i > hi)
        return fail(err, errlen, "%s: %lld is outside %lld..%lld", key, (long long)i,
                    (long long)lo, (long long)hi);
    *out = i;
    return 0;
}

int kvd_settings_parse(const json_t *config, kvd_settings *s, char *err, size_t errlen) {
    kvd_settings_default(s);
    if (!config)
        return 0;
    if (!json_is_object(config))
        return fail(err, errlen, "the configuration is not a JSON object");
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)config, key, v) {
        static const char *const known[] = {"host",      "port",       "max_line", "max_conns",
                                            "log_level", "request_ms", "tree"};
        bool ok = false;
        for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
            ok = ok || strcmp(key, known[i]) == 0;
        if (!ok)
            return fail(err, errlen, "%s: unknown key", key);
    }
    json_t *host = json_object_get(config, "host");
    if (host) {
        if (!json_is_string(host) || json_string_length(host) == 0 ||
            json_string_length(host) >= sizeof s->host)
            return fail(err, errlen, "host: expected a numeric address");
        strcpy(s->host, json_string_value(host));
    }
    json_int_t port = s->port, max_line = (json_int_t)s->max_line,
               max_conns = (json_int_t)s->max_conns, request_ms = s->request_ms;
    if (get_int(config, "port", 0, 65535, &port, err, errlen) != 0 ||
        get_int(config, "max_line", 16, MAX_LINE_LIMIT, &max_line, err, errlen) != 0 ||
        get_int(config, "max_conns", 1, 1000000, &max_conns, err, errlen) != 0 ||
        get_int(config, "request_ms", 1, 3600000, &request_ms, err, errlen) != 0)
        return -1;
    s->port = (int)port;
    s->max_line = (size_t)max_line;
    s->max_conns = (size_t)max_conns;
    s->request_ms = request_ms;
    json_t *lv = json_object_get(config, "log_level");
    if (lv) {
        int found = -1;
        for (int i = 0; json_is_string(lv) && i < 4; i++)
            if (strcmp(json_string_value(lv), level_names[i]) == 0)
                found = i;
        if (found < 0)
            return fail(err, errlen, "log_level: expected one of error, warn, info, debug");
        s->log_level = found;
    }
    json_t *tree = json_object_get(config, "tree");
    if (tree && !json_is_object(tree))
        return fail(err, errlen, "tree: expected an object");
    return 0;
}

void kvd_settings_current(kvd_settings *s) {
    json_t *cfg = tr_sup_config_get();
    char err[160];
    /* The document was checked before it was published; only a missing
     * one (no tr_sup_run) leaves the defaults. */
    if (kvd_settings_parse(cfg, s, err, sizeof err) != 0)
        kvd_settings_default(s);
    json_decref(cfg);
}

void kvd_log_set_level(int level) { atomic_store(&log_level, level); }

void kvd_log(int level, const char *fmt, ...) {
    if (level > atomic_load_explicit(&log_level, memory_order_relaxed))
        return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    /* One fprintf per line: stdio locks the stream, so lines from
     * different workers do not interleave. */
    fprintf(stderr, "kvd: %s: %s\n", level_names[level], line);
}
