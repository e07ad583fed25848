/* tr_sup.h — supervisors: Erlang/OTP's supervision tree for troupe actors.
 *
 * A supervisor is an actor whose only job is to start children (actors,
 * or other supervisors), watch them end, and decide what happens next:
 * restart one, restart several, or give up and let its own supervisor
 * decide.  The behaviour is OTP's (supervisor(3)), names included, so a
 * reader who knows OTP can predict every case:
 *
 *     static const tr_child_spec kids[] = {
 *         { .id = "store", .type = &kv_store_type, .restart = TR_RESTART_PERMANENT },
 *         { .id = "listener", .type = &listener_type, .args = &port,
 *           .args_size = sizeof port },
 *     };
 *     tr_sup_spec spec = { .strategy = TR_SUP_REST_FOR_ONE,
 *                          .children = kids, .nchildren = 2 };
 *     tr_actor_ref root;
 *     int rc = tr_sup_start(&root, &spec, NULL); // both inits have run
 *
 * The model, and the choices behind it:
 *
 *  - Children start in spec order; tr_sup_start returns once every
 *    child's init has succeeded.  If one fails, those already started are
 *    stopped in reverse order and the start returns that child's reason.
 *    A supervisor stops its children in reverse start order.
 *  - A restart keeps the actor: same ref, same mailbox, same name.
 *    Messages queued when it crashed are handled by the next incarnation,
 *    none lost.  The message being handled at the crash is not retried;
 *    its caller got TR_EDOWN.  (OTP gives the new process a new pid and
 *    an empty mailbox; keeping both is the point of troupe's refs.)  A
 *    child that is terminated and later restarted by restart_child, or a
 *    sibling that one_for_all/rest_for_one stopped, is a restart too: same
 *    ref.  A child the supervisor lets go (temporary, transient ending
 *    normally, delete_child, the supervisor's own end) dies: its ref is
 *    TR_EDOWN from then on, and restart_child of its spec starts an actor
 *    with a new ref.
 *  - Restart intensity: more than `intensity` restarts within `period_ms`
 *    and the supervisor stops all its children and ends itself with
 *    TR_ACTOR_SHUTDOWN (OTP's `shutdown`); its own supervisor then applies
 *    its strategy to it (escalation).
 *  - Shutdown travels through a watch: every supervisor publishes its
 *    state (TR_SUP_RUNNING, then TR_SUP_STOPPING) on a tr_watch of int.  A
 *    child that runs long handlers (a connection's read loop) selects on
 *    tr_sup_signal() beside its socket and winds down when it changes.  A
 *    graceful stop publishes STOPPING down the whole subtree at once, then
 *    stops the children one by one in reverse order: each is asked to stop
 *    (tr_actor_stop: it accepts no new messages, handles those it had
 *    accepted, runs terminate).  Past the child's shutdown timeout it is
 *    cancelled (its mailbox is dropped and every wait in its handler
 *    returns TR_ECANCELED); if it still has not ended kill_grace_ms later,
 *    it is killed (tr_task_kill: its handler is never resumed past its
 *    next troupe call, its registered tr_cleanup handlers run, its stack
 *    is reclaimed, and terminate is not called).  C cannot preempt: a
 *    handler spinning without ever calling troupe cannot be killed, and
 *    its supervisor waits for it.
 *  - Operations are calls to the supervisor actor (as OTP's are calls to
 *    the supervisor process), so they are serialised with its decisions.
 *    They wait, with a deadline.  Calling them from a child's handler is
 *    allowed, except for operations on the caller itself (TR_EDEADLK).
 *
 * Threads: everything works from tasks on any worker and from plain
 * threads, like the rest of the actor layer.
 */
#ifndef TR_SUP_H
#define TR_SUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tr_actor.h"
#include "tr_watch.h"

#ifdef __cplusplus
extern "C" {
#endif

struct json_t;

/* ---- specs ------------------------------------------------------------------ */

enum tr_sup_strategy {
    TR_SUP_ONE_FOR_ONE = 0, /* only the child that ended is restarted */
    TR_SUP_ONE_FOR_ALL,     /* all children are stopped (reverse order), then all restarted */
    TR_SUP_REST_FOR_ONE,    /* the child and those started after it */
    TR_SUP_DYNAMIC          /* simple_one_for_one: one template, children added at run
                               time with tr_sup_start_child, all alike, stopped in
                               parallel; restarts are one_for_one */
};

enum tr_restart {
    TR_RESTART_PERMANENT = 0, /* always restarted */
    TR_RESTART_TRANSIENT,     /* restarted only after an abnormal end
                                 (tr_actor_reason_abnormal) */
    TR_RESTART_TEMPORARY      /* never restarted, not even when a sibling's restart
                                 stopped it; its spec is removed when it ends */
};

enum tr_auto_shutdown {
    TR_AUTO_SHUTDOWN_NEVER = 0,       /* significant flags are ignored */
    TR_AUTO_SHUTDOWN_ANY_SIGNIFICANT, /* the supervisor ends when any significant child
                                         ends (and is not restarted) */
    TR_AUTO_SHUTDOWN_ALL_SIGNIFICANT  /* ... when all significant children have ended */
};

/* tr_child_spec.shutdown_ms: a timeout > 0 in ms, or one of these. */
#define TR_SHUTDOWN_DEFAULT 0     /* 5000 ms for a worker, infinity for a supervisor (OTP) */
#define TR_SHUTDOWN_BRUTAL (-1)   /* OTP's brutal_kill: cancelled and killed at once */
#define TR_SHUTDOWN_INFINITY (-2) /* waits for the child as long as it takes */

struct tr_sup_spec;

typedef struct tr_child_spec {
    /* Unique among the supervisor's children, 1..63 bytes (copied).
     * Ignored for a DYNAMIC supervisor's template and children. */
    const char *id;
    /* A worker: its type.  Or a nested supervisor: type NULL and sup set
     * (the nested spec is copied deeply at start). */
    const tr_actor_type *type;
    const struct tr_sup_spec *sup;
    /* init's argument, at the first start and at every restart.  With
     * args_size > 0 the supervisor copies args_size bytes and passes its
     * copy.  With args_size 0 the pointer itself is passed: it must stay
     * valid while the child may restart — unless args_drop is set, in
     * which case the supervisor owns args from the moment the call that
     * takes this spec returns (whatever it returns) and calls
     * args_drop(args, args_ctx) when it no longer needs them. */
    const void *args;
    size_t args_size;
    tr_drop_fn args_drop;
    void *args_ctx;
    /* The actor's options: capacity, overflow, name, worker, stack_size.
     * runtime is ignored (the supervisor's runtime is used). */
    tr_actor_opts opts;
    int restart;         /* enum tr_restart */
    int64_t shutdown_ms; /* > 0, or TR_SHUTDOWN_DEFAULT / _BRUTAL / _INFINITY */
    bool significant;    /* for auto_shutdown; must be transient or temporary */
} tr_child_spec;

typedef struct tr_sup_spec {
    int strategy;      /* enum tr_sup_strategy */
    /* More than `intensity` restarts within `period_ms` ms and the
     * supervisor gives up.  period_ms 0: OTP's defaults for both (1 restart
     * in 5000 ms); with period_ms > 0, intensity is taken as is (0: no
     * restart is allowed). */
    int intensity;
    int64_t period_ms;
    int auto_shutdown; /* enum tr_auto_shutdown */
    /* How long a child that overran its shutdown timeout and was cancelled
     * has to end before it is killed.  0: 1000 ms. */
    int64_t kill_grace_ms;
    /* The children, started in this order.  DYNAMIC: exactly one, the
     * template every child is started from (none is started at first). */
    const tr_child_spec *children;
    size_t nchildren;
} tr_sup_spec;

/* Checks a spec (recursively) without starting anything.  Returns 0 or
 * TR_EINVAL with a description in err (if not NULL), naming the place,
 * e.g. "children[2].restart: not a tr_restart value" or
 * "children[1].sup.children[0].id: \"a\" is used twice".  Never waits. */
int tr_sup_check(const tr_sup_spec *spec, char *err, size_t errlen);

/* ---- life --------------------------------------------------------------------- */

/* Starts a supervisor and its children (in order; see the model above).
 * opts are the supervisor actor's own (name, runtime, worker); NULL for
 * defaults.  Waits for the children's inits.  Returns 0 (*out is the
 * supervisor), TR_EINVAL (a bad spec: tr_sup_check says why; NULL out),
 * a child's init reason (nothing is left running), TR_EEXIST (a name is
 * taken), TR_ENOMEM. */
int tr_sup_start(tr_actor_ref *out, const tr_sup_spec *spec, const tr_actor_opts *opts);

/* Graceful stop of a supervisor and its subtree (see the model above),
 * waiting for it until the deadline — as tr_actor_stop(sup,
 * TR_ACTOR_SHUTDOWN, deadline), which it is.  Returns its codes. */
int tr_sup_stop(tr_actor_ref sup, int64_t deadline);

/* ---- the shutdown signal ------------------------------------------------------- */

enum tr_sup_state { TR_SUP_RUNNING = 0, TR_SUP_STOPPING };

/* From a supervised child's own code (init, handlers, terminate): a
 * receiver of its supervisor's state watch (an int, enum tr_sup_state).
 * Borrowed: valid until the current incarnation ends; do not drop it.
 * Use it with tr_watch_get / tr_watch_changed / tr_watch_changed_clause.
 * NULL when the caller is not a supervised child.  Never waits. */
tr_watch_rx *tr_sup_signal(void);

/* Whether the calling child's supervisor is stopping (false outside a
 * supervised child).  Never waits. */
bool tr_sup_stopping(void);

/* A new receiver of sup's state watch, for anyone (the caller owns it:
 * tr_watch_rx_drop).  Returns 0, TR_EDOWN, TR_EINVAL (not a supervisor),
 * TR_ENOMEM, or the call's errors. */
int tr_sup_subscribe(tr_actor_ref sup, tr_watch_rx **out, int64_t deadline);

/* ---- operations (OTP's names) ---------------------------------------------------- */

/* Adds a child and starts it.  Static strategies: spec is a full child
 * spec; TR_EEXIST if its id is present (running or not).  DYNAMIC: only
 * spec->args, args_size, args_drop and args_ctx are used (the template
 * gives the rest); spec may be NULL to use the template's args.  Returns 0
 * (*out, if not NULL, is the child), the child's init reason (the spec is
 * not kept), TR_EINVAL, TR_EEXIST, TR_EDOWN (no such supervisor or it is
 * stopping), TR_ENOMEM, TR_ETIMEDOUT / TR_ECANCELED (the start may still
 * complete: the child is then supervised). */
int tr_sup_start_child(tr_actor_ref sup, const tr_child_spec *spec, tr_actor_ref *out,
                       int64_t deadline);

/* Stops a running child (its shutdown rule applies) and keeps its spec
 * (a temporary child's spec is removed).  By id; or, for any strategy and
 * the only way for DYNAMIC (whose children are then removed), by ref.
 * Returns 0, TR_EINVAL (no such id / ref), TR_EDEADLK (a child
 * terminating itself), TR_EDOWN, or the call's errors.  Terminating a
 * child that is not running returns 0. */
int tr_sup_terminate_child(tr_actor_ref sup, const char *id, int64_t deadline);
int tr_sup_terminate_ref(tr_actor_ref sup, tr_actor_ref child, int64_t deadline);

/* Starts a terminated child again from its spec.  Returns 0 (*out, if not
 * NULL, is the child: its old ref if the actor was kept, else a new one),
 * TR_EBUSY (it is running), TR_EINVAL (no such id, or DYNAMIC), init's
 * reason, TR_EDOWN, or the call's errors. */
int tr_sup_restart_child(tr_actor_ref sup, const char *id, tr_actor_ref *out, int64_t deadline);

/* Removes a terminated child's spec.  Returns 0, TR_EBUSY (running),
 * TR_EINVAL (no such id, or DYNAMIC), TR_EDOWN, or the call's errors. */
int tr_sup_delete_child(tr_actor_ref sup, const char *id, int64_t deadline);

enum tr_child_state {
    TR_CHILD_RUNNING = 0,
    TR_CHILD_RESTARTING, /* ended; the supervisor is about to restart it */
    TR_CHILD_TERMINATED  /* not running; the spec is kept (OTP's `undefined`) */
};

typedef struct tr_sup_child_info {
    char id[64];           /* "" for DYNAMIC children */
    tr_actor_ref ref;      /* TR_ACTOR_NONE when terminated */
    bool is_supervisor;
    int state;             /* enum tr_child_state */
    int restart;           /* enum tr_restart */
    bool significant;
    uint32_t restarts;     /* restarts of this child so far */
    int last_reason;       /* why its last incarnation ended (0 if none has) */
} tr_sup_child_info;

/* OTP's which_children: the children in start order.  Fills up to cap
 * entries of out and sets *count to the number of children (which may be
 * more than cap).  Returns 0, TR_EDOWN, TR_EINVAL, or the call's errors. */
int tr_sup_which_children(tr_actor_ref sup, tr_sup_child_info *out, size_t cap, size_t *count,
                          int64_t deadline);

typedef struct tr_sup_counts {
    size_t specs;       /* children, running or not */
    size_t active;      /* running */
    size_t supervisors; /* children that are supervisors */
    size_t workers;     /* children that are workers */
} tr_sup_counts;

/* OTP's count_children.  Returns 0, TR_EDOWN, TR_EINVAL, or the call's
 * errors. */
int tr_sup_count_children(tr_actor_ref sup, tr_sup_counts *out, int64_t deadline);

/* ---- JSON trees (jansson) ---------------------------------------------------------
 *
 * A tree as a document, for daemons configured from a file:
 *
 *   { "strategy": "one_for_one",          one_for_one | one_for_all | rest_for_one
 *                                         | simple_one_for_one  (default one_for_one)
 *     "intensity": 3, "period_ms": 5000,  (defaults 1 and 5000)
 *     "auto_shutdown": "never",           never | any_significant | all_significant
 *     "kill_grace_ms": 1000,
 *     "children": [
 *       { "id": "store", "type": "kv_store",       a type registered with
 *                                                   tr_sup_register_type
 *         "restart": "permanent",                   permanent | transient | temporary
 *         "shutdown": 5000,                         ms | "infinity" | "brutal_kill"
 *         "significant": false,
 *         "name": "store", "capacity": 1024,        actor options (optional; also
 *         "overflow": "wait",                       wait | fail | drop_newest | drop_oldest)
 *         "args": { ... any JSON ... } },           init gets a const json_t *
 *       { "id": "conns", "supervisor": { ... } }    a nested tree
 *     ] }
 *
 * Unknown keys are errors (a typo must not be silently ignored).  "id" is
 * required except in a simple_one_for_one template, whose child cannot
 * have a "name" (its children would share it); "args" belongs to "type"
 * children only.  Paths in errors spell a nested tree as
 * "children[1].supervisor.children[0]".  A static child's init gets its
 * args through a copy of the registered type (same name and handlers)
 * that lets tr_sup_start_json tell which child's init failed.
 */

/* Names a type for JSON trees (the name is copied; the type must outlive
 * its use).  Its init receives the child's "args" as a `const json_t *`
 * (JSON null when absent), valid for the duration of init.  Returns 0,
 * TR_EEXIST (the name is taken), TR_EINVAL, TR_ENOMEM.  Never waits. */
int tr_sup_register_type(const char *name, const tr_actor_type *type);

/* Validates a tree document.  Returns 0 or TR_EINVAL with err naming the
 * place and the problem, e.g. "children[2].restart: expected one of
 * permanent, transient, temporary" (the first problem found).  Never
 * waits. */
int tr_sup_check_json(const struct json_t *tree, char *err, size_t errlen);

/* Validates then starts a tree document; nothing is started when it is
 * invalid.  The supervisor keeps copies of the args it needs.
 * Returns tr_sup_start's codes; TR_EINVAL with err as tr_sup_check_json;
 * on a child's init failure err says which ("children[1] (\"store\"):
 * init failed: reason 5"). */
int tr_sup_start_json(tr_actor_ref *out, const struct json_t *tree, const tr_actor_opts *opts,
                      char *err, size_t errlen);

/* The running tree as JSON (a new reference; the caller owns it): the
 * supervisor (ref, name, strategy, state "running"/"stopping", intensity,
 * period_ms, restarts, children) and, per child: id, type, ref, state,
 * restart, significant, restarts, recent restart times (restart_times_ms,
 * on tr_now's clock, newest last), last_reason, mailbox depth (queued),
 * handled, and for a nested supervisor its own dump under "supervisor".
 * NULL on error (TR_EDOWN, out of memory, the call's errors).  Waits. */
struct json_t *tr_sup_dump(tr_actor_ref sup, int64_t deadline);

/* ---- the process level -------------------------------------------------------------- */

typedef struct tr_sup_run_opts {
    /* A JSON file read before the tree starts and again on every SIGHUP,
     * published on the configuration watch (tr_sup_config_*).  A file
     * that fails to load at start is an error (status 1, nothing started);
     * on SIGHUP it is reported on stderr and the previous configuration
     * stays.  NULL: no configuration. */
    const char *config_path;
    /* The graceful shutdown's deadline after SIGINT/SIGTERM; 0: 30000 ms. */
    int64_t shutdown_ms;
    /* The root's actor options (name...); NULL: defaults. */
    const tr_actor_opts *root_opts;
    /* Called (on the thread running tr_sup_run) after each configuration
     * load, the first included, before it is published; returns 0 to
     * accept it or a nonzero value to refuse it (at start: status 1; on
     * SIGHUP: the previous one stays).  err gets the reason shown on
     * stderr.  NULL: every JSON document is accepted. */
    int (*check_config)(const struct json_t *config, char *err, size_t errlen, void *ctx);
    void *ctx;
    /* Reports ("troupe: reloaded /etc/kvd.json", "troupe: SIGTERM:
     * stopping") go here; NULL: stderr. */
    void (*log)(const char *line, void *ctx);
} tr_sup_run_opts;

/* Runs a root supervisor for a daemon: loads the configuration, starts
 * the tree (spec, or tree_json when spec is NULL), and waits.  SIGHUP
 * reloads the configuration.  SIGINT or SIGTERM (or the root ending by
 * itself: auto_shutdown, intensity) stops the tree gracefully within
 * shutdown_ms.  Blocks the calling thread (a plain thread, typically
 * main, not a task) and owns SIGINT, SIGTERM and SIGHUP while it runs.
 * Returns an exit status for main: 0 after a signal and a graceful
 * shutdown or a normal end of the root (NORMAL, or SHUTDOWN by
 * auto_shutdown); 1 when the configuration or the tree could not start
 * (reported), or the root ended abnormally — giving up after too many
 * restarts counts as abnormal for a daemon (its reason is SHUTDOWN, as in
 * OTP; it is told apart by the reason text, which mentions "intensity");
 * 2 when the shutdown deadline passed and the root had to be killed.
 * Signals are taken with troupe's signal handles (tr_signal.h) on rt, so
 * the dispositions are put back when it returns; SIGHUPs that arrive
 * together reload once.  Only one tr_sup_run may be active at a time (a
 * second returns 1), and it refuses to run inside a task (1). */
int tr_sup_run(tr_runtime *rt, const tr_sup_spec *spec, const struct json_t *tree_json,
               const tr_sup_run_opts *opts);

/* A copy of the current configuration, the caller's own (json_decref
 * it; it shares nothing with other threads), or NULL when none has been
 * loaded (or out of memory).  Never waits. */
struct json_t *tr_sup_config_get(void);

/* A receiver of the configuration watch, which changes on every accepted
 * reload (select on it with tr_watch_changed_clause, then read it with
 * tr_sup_config_get).  The caller owns it (tr_watch_rx_drop).  Returns 0,
 * TR_EINVAL (no tr_sup_run is active), TR_ENOMEM.  Never waits. */
int tr_sup_config_subscribe(tr_watch_rx **out);

#ifdef __cplusplus
}
#endif
#endif
