/* kvd.h — what the parts of kvd, the supervised key-value daemon, share.
 *
 * kvd is split by concern, one file each, so that a reader can take the
 * daemon apart the way a supervision tree takes it apart:
 *
 *   kvd_proto.c     the wire protocol: JSON lines in, JSON lines out
 *   kvd_config.c    the settings (bind address, limits, log level) and
 *                   the log
 *   kvd_store.c     a store shard: an actor owning one slice of the keys
 *   kvd_conn.c      one connection: an actor reading requests, asking the
 *                   shards, writing replies, draining on shutdown
 *   kvd_listener.c  the listener: accepts, starts connection actors under
 *                   the dynamic supervisor, re-binds on a port change
 *   kvd_main.c      the tree (from the config file's "tree" section) and
 *                   the process level (tr_sup_run: SIGHUP, SIGTERM)
 *
 * The actors find each other by registered name rather than by refs
 * passed around, because the tree comes from a JSON document: the names
 * are in the document ("name": "kvd.store.0"), the code only knows the
 * naming rule below.  A restart keeps an actor's name and ref, so a
 * connection can look the shards up once and keep the refs.
 */
#ifndef KVD_H
#define KVD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <troupe.h>

/* ---- names -------------------------------------------------------------------- */

#define KVD_ROOT_NAME "kvd"            /* the root supervisor (stats dumps it) */
#define KVD_CONNS_NAME "kvd.conns"     /* the dynamic supervisor of connections */
#define KVD_STORE_PREFIX "kvd.store."  /* shards are kvd.store.0 .. kvd.store.N-1 */
#define KVD_MAX_SHARDS 64

/* ---- settings (kvd_config.c) ------------------------------------------------------ */

enum kvd_log_level { KVD_LOG_ERROR = 0, KVD_LOG_WARN, KVD_LOG_INFO, KVD_LOG_DEBUG };

typedef struct kvd_settings {
    char host[64];       /* numeric address to bind; "127.0.0.1" by default */
    int port;            /* 0: an ephemeral port */
    size_t max_line;     /* longest request line accepted, bytes before '\n' */
    size_t max_conns;    /* connections served at once; more get an error and close */
    int log_level;       /* enum kvd_log_level */
    int64_t request_ms;  /* how long a connection waits for a shard's answer */
} kvd_settings;

/* The defaults: 127.0.0.1:7379, max_line 4096, max_conns 1024, info. */
void kvd_settings_default(kvd_settings *s);

/* Reads the settings from a configuration document (every key optional;
 * unknown keys and bad values are errors; "tree" is allowed and ignored
 * here).  Returns 0, or -1 with err naming the key and the problem. */
int kvd_settings_parse(const json_t *config, kvd_settings *s, char *err, size_t errlen);

/* The settings of the configuration tr_sup_run published last (the
 * defaults when there is none).  Never waits. */
void kvd_settings_current(kvd_settings *s);

/* The process-wide log level, set when a configuration is accepted. */
void kvd_log_set_level(int level);
/* One line on stderr, "kvd: ...", when level is enabled. */
void kvd_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- the actors' types (registered with tr_sup_register_type) --------------------- */

extern const tr_actor_type kvd_store_type;    /* "kvd_store" */
extern const tr_actor_type kvd_conn_type;     /* "kvd_conn" */
extern const tr_actor_type kvd_listener_type; /* "kvd_listener" */

/* ---- the store's client API (kvd_store.c) ------------------------------------------- */

enum kvd_store_op { KVD_STORE_GET = 0, KVD_STORE_SET, KVD_STORE_DELETE };

/* Asks a shard.  key is borrowed; value (SET) is borrowed and the shard
 * takes its own reference.  *found: GET/DELETE found the key, SET
 * replaced one.  *value_out (GET, found): a new reference for the caller.
 * Values cross as copies: the shard stores a copy of a SET's value and
 * answers a GET with a copy, so no json_t is shared between threads.
 * Returns 0, TR_ENOMEM (no memory for the copy; a SET keeps the old
 * value), or the call's error (TR_EDOWN, TR_ETIMEDOUT, ...). */
int kvd_store_ask(tr_actor_ref store, int op, json_t *key, json_t *value, bool *found,
                  json_t **value_out, int64_t deadline);

/* FNV-1a of the key's bytes: which shard owns it is hash % nshards. */
uint32_t kvd_hash(const char *s, size_t len);

#endif
