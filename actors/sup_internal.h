/* sup_internal.h — what the supervisor's files (supervisor.c, sup_ops.c,
 * sup_dump.c, sup_hooks.c) share.  Not installed.
 *
 * The design, and why:
 *
 *  - A supervisor is an actor of an internal type (tr__sup_type).  Its
 *    state is a pointer to a heap "core" (tr__sup): the flags of its spec,
 *    the child records in start order, the restart history and the node
 *    of its shutdown watch.  Operations are calls with a tr__sup_req; the
 *    handler does the work on the supervisor's own task, so decisions and
 *    operations are serialised, as in OTP.
 *  - Specs: tr_sup_start deep-copies the whole tree once (ids, names,
 *    args with args_size > 0, nested specs).  That copy is owned by the
 *    root; nested supervisors borrow their part of it (their record in
 *    the parent outlives every incarnation of theirs), so an args_drop is
 *    called exactly once, by whoever owns the copy.  A child added by
 *    start_child owns its own copy.
 *  - Every child record is a separate heap block: it is the end hook's
 *    ctx, so its address must not move.
 *  - End notifications never get lost: every incarnation is started with a
 *    system node allocated beforehand (rec->note; no memory, no start).  The
 *    end hook takes it and pushes it onto the supervisor's system lane
 *    itself (tr__sys_push_locked; the lane is never full), where the
 *    supervisor's on_down gets it.  If the supervisor is ending, the node
 *    is freed: its terminate collects the children directly.
 *  - Stale notifications: when the supervisor stops a child itself and
 *    waits for the end, it handles that end inline; the hook still posts
 *    its note.  rec->stale counts the notes to skip.  Notes of one child
 *    stay in order because a child is restarted only after the hook of
 *    its previous end has returned (rec->hook_calls, which the hook bumps
 *    last, is awaited: rec_await_hook) — which is also what makes freeing
 *    a record safe.
 *  - The shutdown watch: every supervisor core has a node holding a
 *    tr_watch_tx of int; a nested supervisor's node is registered in its
 *    parent's node, so STOPPING is published down the subtree at once,
 *    under the nodes' mutexes (taken top-down only).
 */
#ifndef TR_SUP_INTERNAL_H
#define TR_SUP_INTERNAL_H

#include <pthread.h>

#include "internal.h"
#include "tr_sup.h"

#define TR__SUP_TIMES 8 /* recent restart times kept per child */

typedef struct tr__sup_node {
    pthread_mutex_t mu;
    tr_watch_tx *tx;
    int state; /* enum tr_sup_state */
    struct tr__sup_node *parent;
    struct tr__sup_node **kids;
    size_t nkids, capkids;
} tr__sup_node;

struct tr__sup;

/* What a supervisor's init gets. */
typedef struct tr__sup_args {
    const tr_sup_spec *spec;   /* borrowed (from tr_sup_start's copy, or the parent's record) */
    tr__sup_node *parent;      /* the parent supervisor's node, or NULL for a root */
    tr_sup_spec *owned;        /* the root: the copy its core owns once init succeeds */
} tr__sup_args;

typedef struct tr__child {
    struct tr__sup *sup;
    tr_actor_ref sup_ref;
    const tr_child_spec *cs;   /* its spec (borrowed, or == owned) */
    tr_child_spec *owned;      /* a spec copy this record owns (start_child), or NULL */
    /* DYNAMIC children: their own args (owned copy / args_drop). */
    void *dargs;
    size_t dargs_size;
    tr_drop_fn ddrop;
    void *dctx;
    bool has_dargs;
    tr__sup_args nargs;        /* a nested supervisor's init args */
    tr_actor_ref ref;          /* NONE: no actor (never started, or let go) */
    bool live;                 /* an incarnation runs whose end was not seen yet */
    int state;                 /* enum tr_child_state */
    uint32_t restarts;
    int last_reason;
    int64_t times[TR__SUP_TIMES]; /* recent restart times (ms), ring */
    uint32_t ntimes;
    uint32_t stale;            /* notes to skip (ends handled inline) */
    uint32_t ends;             /* ends seen (inline or by note) */
    _Atomic uint32_t hook_calls; /* bumped by the hook, last thing it does */
    int hook_reason;           /* the reason the hook saw (read after hook_calls) */
    tr__sysnode *note;         /* for the current incarnation's end */
    tr_watch_rx *sig;          /* the child's view of the supervisor's watch */
} tr__child;

typedef struct tr__sup {
    tr_actor_ref self;
    const tr_sup_spec *spec;   /* borrowed or == owned */
    tr_sup_spec *owned;        /* the root owns the tree's copy */
    int strategy, intensity, auto_shutdown;
    int64_t period_ms, kill_grace_ms;
    tr__child **kids;
    size_t n, cap;
    int64_t *hist;             /* restart times (ms) within the period, oldest first */
    size_t nhist, caphist;
    uint64_t restarts;
    tr__sup_node *node;
    tr_runtime *rt;            /* children run on the supervisor's runtime */
    bool gave_up;
} tr__sup;

/* ---- requests (sup_ops.c) ---------------------------------------------------- */

enum {
    TR__SUP_OP_START_CHILD = 1,
    TR__SUP_OP_TERMINATE,
    TR__SUP_OP_TERMINATE_REF,
    TR__SUP_OP_RESTART,
    TR__SUP_OP_DELETE,
    TR__SUP_OP_WHICH,
    TR__SUP_OP_COUNT,
    TR__SUP_OP_SUBSCRIBE,
    TR__SUP_OP_DUMP
};

typedef struct tr__sup_req {
    int op;
    char id[64];
    tr_actor_ref ref;
    int64_t deadline;          /* DUMP: for the nested supervisors' dumps */
    tr_child_spec *spec;       /* START_CHILD: an owned copy (freed by drop_msg if unhandled) */
} tr__sup_req;

typedef struct tr__sup_rep {
    int rc;
    tr_actor_ref ref;
    void *ptr;                 /* heap results (which_children, subscribe, dump) */
    size_t n;
    tr_sup_counts counts;
} tr__sup_rep;

extern const tr_actor_type tr__sup_type;

/* ---- supervisor.c ---------------------------------------------------------------- */

int64_t tr__ms_now(void);
/* Stops one child by its shutdown rule and handles the end inline (the
 * record is left TERMINATED, its actor in LIMBO).  Returns 0 or TR_ECANCELED
 * (the caller's task was cancelled: the child was detached and killed). */
int tr__sup_stop_child(tr__sup *c, tr__child *k);
/* Starts a record's actor (new spawn if it has none, else restart). */
int tr__sup_start_rec(tr__sup *c, tr__child *k);
/* Lets a record's actor go (dies for good) and frees the record; removes it. */
void tr__sup_remove(tr__sup *c, size_t i);
/* Lets a stopped record's actor die (ref NONE afterwards), record kept. */
void tr__sup_let_go(tr__sup *c, tr__child *k, int reason);
tr__child *tr__sup_rec_new(tr__sup *c, const tr_child_spec *cs);
/* Frees a record that is in no list and has no actor. */
void tr__sup_rec_free(tr__child *k);
int tr__sup_add(tr__sup *c, tr__child *k);
size_t tr__sup_find_id(tr__sup *c, const char *id);
size_t tr__sup_find_ref(tr__sup *c, tr_actor_ref r);
bool tr__sup_is_sup(const tr__child *k);

/* Spec copies (supervisor.c).  A copy owns its strings and args copies;
 * with own_drop it also owns the args_drop'd args. */
tr_sup_spec *tr__spec_copy(const tr_sup_spec *s);
void tr__spec_free(tr_sup_spec *s, bool drop);
int tr__cspec_copy(tr_child_spec *dst, const tr_child_spec *src);
void tr__cspec_free(tr_child_spec *c, bool drop);
/* Checks one child spec; path prefixes the error ("children[1]"). */
int tr__cspec_check(const tr_child_spec *cs, bool dynamic, const char *path, char *err,
                    size_t errlen);
/* Drops the args_drop'd args of an original spec (a call that took it failed). */
void tr__spec_drop_args(const tr_sup_spec *s);
void tr__cspec_drop_args(const tr_child_spec *c);

/* sup_watch.c: a node (registered in parent's, if any), STOPPING down
 * from n, and freeing (unregistering) one. */
tr__sup_node *tr__sup_node_new(tr__sup_node *parent);
void tr__sup_node_publish(tr__sup_node *n);
void tr__sup_node_free(tr__sup_node *n);

/* sup_ops.c */
void tr__sup_handle_req(tr__sup *c, tr_actor_msg *m);
void tr__sup_req_drop(void *msg, void *ctx);

/* sup_dump.c: the dump of c (runs on the supervisor's task). */
struct json_t *tr__sup_dump_core(tr__sup *c, int64_t deadline);

/* ---- sup_hooks.c ------------------------------------------------------------------- */

/* The end hook every supervised child is spawned with. */
void tr__sup_hook(tr_actor_ref ref, int reason, void *ctx);
/* Asks an actor to stop (as tr_actor_stop does) without waiting. */
int tr__sup_stop_request(tr_actor_ref ref, int reason);
/* Removes the end hook; *limbo: the actor was in LIMBO (its hook was or is
 * being called).  Returns 0 or TR_EDOWN. */
int tr__sup_detach(tr_actor_ref ref, bool *limbo);
/* Makes sure the supervisor actor has its extension block (the hook pushes
 * onto its system lane).  Returns 0 or TR_ENOMEM. */
int tr__sup_ensure_ext(tr_actor_ref self);
/* Sets the reason text of the calling actor. */
void tr__sup_reason_text(tr_actor_ref self, const char *text);
/* The runtime of actor self (NULL: gone). */
tr_runtime *tr__sup_runtime(tr_actor_ref self);
/* Whether the supervisor actor self is being stopped or killed. */
bool tr__sup_self_stopping(tr_actor_ref self);

#endif
