/* tr_actor.h — actors: private state behind a mailbox, call and cast.
 *
 * The seeds' counter task made first class: an actor owns its state, and
 * the only way to touch that state is to send the actor a message, which
 * its handler processes one at a time.  A request that wants an answer
 * carries a reply slot (a pooled oneshot); the caller waits on it with a
 * deadline.  No locks around the state, ever: the mailbox serialises.
 *
 *     static int counter_handle(void *state, tr_actor_msg *m) {
 *         uint64_t *count = state;
 *         uint64_t prev = (*count)++;
 *         if (m->reply)
 *             tr_reply_send(m->reply, &prev);
 *         return 0;
 *     }
 *     static const tr_actor_type counter = {
 *         .name = "counter", .state_size = sizeof(uint64_t),
 *         .msg_size = sizeof(int), .reply_size = sizeof(uint64_t),
 *         .handle = counter_handle,
 *     };
 *     tr_actor_ref c;
 *     tr_actor_spawn(&c, &counter, NULL, NULL);
 *     uint64_t v;
 *     int cmd = 0;
 *     tr_actor_call(c, &cmd, &v, tr_after_ms(100));
 *
 * The model, and the choices behind it:
 *
 *  - Idle actors hold no stack.  An actor with an empty mailbox is a
 *    struct (its state inline) and nothing else.  The first message that
 *    arrives schedules an activation: a task that borrows a pooled stack,
 *    runs handlers while messages remain, and returns the stack when the
 *    mailbox is empty again.  A handler may wait (call another actor,
 *    sleep, read a socket); the activation is a task like any other.
 *  - The mailbox is an mpsc queue made for actors: bounded (capacity per
 *    actor, default TR_ACTOR_DEFAULT_CAPACITY), FIFO, with tr_wait's
 *    park/claim protocol for senders that wait, and no memory held when
 *    empty (a tr_mpsc ring per actor would cost kilobytes per idle actor).
 *    An overflow policy says what a full mailbox does to a sender.  A
 *    system lane (stop, exit signals, down notifications) overtakes user
 *    messages and is never full.
 *  - References are values (slot, generation): copy them freely.  A ref
 *    stays valid while the actor lives and across restarts by a supervisor
 *    (the mailbox outlives an incarnation); once the actor is gone every
 *    use returns TR_EDOWN, and a stale ref never reaches a new actor that
 *    reuses the slot.
 *  - A call allocates nothing in the steady state: reply slots come from a
 *    pool and are generation-checked, so a reply that arrives after the
 *    caller timed out or was cancelled is destroyed, never written into a
 *    frame that is gone.  If the callee ends, crashes, or drops the request
 *    without replying, the caller gets TR_EDOWN at once.
 *  - A call that would close a cycle of actors waiting on each other
 *    (A calls B calls C calls A) returns TR_EDEADLK instead of hanging.
 *  - Reasons are ints: TR_ACTOR_NORMAL (0), TR_ACTOR_SHUTDOWN,
 *    TR_ACTOR_KILLED, a negative TR_E... code, or any positive code of the
 *    program's own.  A reason may carry a short text (tr_actor_fail).
 *
 * Threads: every function here works from tasks on any worker and, except
 * where it says otherwise, from plain threads (a wait blocks the thread).
 */
#ifndef TR_ACTOR_H
#define TR_ACTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tr_chan.h"
#include "tr_runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- references ------------------------------------------------------------ */

typedef struct tr_actor_ref {
    uint32_t slot; /* 0: no actor */
    uint32_t gen;
} tr_actor_ref;

#define TR_ACTOR_NONE ((tr_actor_ref){0, 0})

static inline bool tr_actor_ref_eq(tr_actor_ref a, tr_actor_ref b) {
    return a.slot == b.slot && a.gen == b.gen;
}
static inline bool tr_actor_ref_is_none(tr_actor_ref a) { return a.slot == 0; }

/* ---- reasons ------------------------------------------------------------------- */

#define TR_ACTOR_NORMAL 0        /* ended by its own choice, or a graceful stop */
#define TR_ACTOR_SHUTDOWN 1      /* stopped by its supervisor or the runtime */
#define TR_ACTOR_KILLED 2        /* killed: terminate ran at once, mailbox dropped */
#define TR_ACTOR_LINKED 3        /* a linked actor crashed and this one does not trap exits */
/* A reason is abnormal when it is not NORMAL or SHUTDOWN (OTP's rule). */
static inline bool tr_actor_reason_abnormal(int reason) {
    return reason != TR_ACTOR_NORMAL && reason != TR_ACTOR_SHUTDOWN;
}

/* ---- messages and replies ------------------------------------------------------- */

typedef struct tr_reply tr_reply; /* a reply slot; opaque */

/* What a handler gets.  data points at the message (msg_size bytes),
 * valid until the handler returns.  reply is NULL for a cast; for a call
 * the handler answers through it — at once (tr_reply_send), or later after
 * tr_reply_keep(), possibly from another actor.  A handler that returns
 * with the reply neither sent nor kept drops it: the caller gets
 * TR_EDOWN. */
typedef struct tr_actor_msg {
    void *data;
    tr_reply *reply;
    tr_actor_ref from; /* the calling or casting actor; TR_ACTOR_NONE from a plain task */
} tr_actor_msg;

/* ---- actor types ----------------------------------------------------------------- */

typedef struct tr_actor_type {
    const char *name;   /* for introspection and error messages */
    size_t state_size;  /* private state, allocated with the actor, zeroed before init */
    size_t msg_size;    /* every message is copied into the mailbox: > 0 */
    size_t reply_size;  /* every reply is copied into the caller's buffer; 0: no calls */
    /* Builds the state from the start arguments.  Returns 0, or a reason
     * (the spawn fails with it and nothing is left behind; terminate is not
     * called).  NULL: the zeroed state is fine.  Runs before
     * tr_actor_spawn returns, on the spawner's task or thread, as the
     * actor: tr_actor_self() is the new actor and tr_actor_fail() fails
     * the spawn.  It may wait (its waits are the spawner's). */
    int (*init)(void *state, const void *args);
    /* One message.  Returns 0 to go on, or a reason to end the actor (a
     * crash, unless the reason is NORMAL or SHUTDOWN).  Required. */
    int (*handle)(void *state, tr_actor_msg *msg);
    /* Cleanup, given the reason; the last call with this state.  NULL: none. */
    void (*terminate)(void *state, int reason);
    /* A monitored actor ended (tr_actor_monitor).  NULL: ignored. */
    void (*on_down)(void *state, tr_actor_ref who, int reason);
    /* An exit signal from a linked actor, when trapping exits.  Returns 0 to
     * go on or a reason to end.  NULL: this type does not trap exits, and
     * a linked actor's abnormal end ends this one (TR_ACTOR_LINKED). */
    int (*on_exit)(void *state, tr_actor_ref who, int reason);
    /* Destroys a message that will never be handled (mailbox dropped on
     * kill or crash, DROP_* overflow).  NULL: messages own nothing. */
    tr_drop_fn drop_msg;
    void *drop_ctx;
} tr_actor_type;

/* What a full mailbox does to a sender. */
enum {
    TR_OVERFLOW_WAIT = 0,   /* the sender waits for room (backpressure), up to its deadline */
    TR_OVERFLOW_FAIL,       /* the send returns TR_EFULL; the message stays the sender's */
    TR_OVERFLOW_DROP_NEWEST,/* the new message is dropped (destroyed, counted); returns 0 */
    TR_OVERFLOW_DROP_OLDEST /* the oldest queued message is dropped to make room; returns 0 */
};

#define TR_ACTOR_DEFAULT_CAPACITY 64

typedef struct tr_actor_opts {
    size_t capacity;    /* mailbox capacity; 0: TR_ACTOR_DEFAULT_CAPACITY */
    int overflow;       /* TR_OVERFLOW_... */
    const char *name;   /* registers the actor under this name (copied); NULL: none */
    int worker;         /* where activations run: TR_WORKER_DEFAULT (the spawner's
                           worker; from a plain thread or another runtime:
                           balanced), TR_WORKER(i), TR_WORKER_BALANCED (each
                           activation goes to the least busy worker) */
    size_t stack_size;  /* for activations; 0: the runtime's default */
    tr_runtime *runtime;/* NULL: the current task's runtime (required on plain threads) */
} tr_actor_opts;

/* ---- life ------------------------------------------------------------------------- */

/* Creates an actor and runs its init with args (inline: see init).  Waits
 * as long as init does.  Returns 0 (*out is the new ref), the init's
 * failure reason (positive, or a TR_E code; *out is TR_ACTOR_NONE),
 * TR_EINVAL (NULL out/type/handle, msg_size 0, a bad option, a name that
 * is empty or 64 bytes or longer, no runtime on a plain thread), TR_EEXIST
 * (the name is taken), TR_ENOMEM. */
int tr_actor_spawn(tr_actor_ref *out, const tr_actor_type *type, const void *args,
                   const tr_actor_opts *opts);

/* Graceful stop: the actor accepts no new messages (senders get TR_EDOWN),
 * handles what it had accepted, runs terminate(reason) and ends; monitors
 * and links are told.  Waits until it has ended or the deadline passes;
 * past the deadline it is killed (and TR_ETIMEDOUT returns at once, not
 * waiting for the kill to finish).  Senders waiting for room get TR_EDOWN.
 * Returns 0, TR_EDOWN (already gone), TR_ETIMEDOUT (it was killed),
 * TR_EDEADLK (an actor stopping itself: use tr_actor_exit), TR_ECANCELED
 * (the stop stays requested), TR_EINVAL (TR_ACTOR_NONE), TR_ENOMEM. */
int tr_actor_stop(tr_actor_ref ref, int reason, int64_t deadline);

/* Kill: the queued messages are dropped (pending callers get TR_EDOWN), a
 * handler that is waiting is cancelled (its waits return TR_ECANCELED),
 * and terminate(TR_ACTOR_KILLED) runs as soon as the handler returns
 * (for an idle actor: on a fresh activation; on the calling thread when
 * the type has no terminate).  Never waits.  Returns 0, TR_EDOWN, or
 * TR_EINVAL (TR_ACTOR_NONE). */
int tr_actor_kill(tr_actor_ref ref);

/* Waits until the actor has ended; *reason (if not NULL) gets why.
 * Returns 0, TR_ETIMEDOUT, TR_ECANCELED, TR_EDEADLK (an actor waiting for
 * itself), TR_EINVAL (TR_ACTOR_NONE), TR_ENOMEM, TR_EDOWN only for a ref
 * that was never valid (a ref of an actor that ended returns 0 with its
 * reason as long as its slot has not been reused — freed slots are reused
 * oldest first; after that TR_EDOWN). */
int tr_actor_wait(tr_actor_ref ref, int *reason, int64_t deadline);

/* From inside a handler (or on_down / on_exit): end this actor after the
 * handler returns, with reason (as if handle had returned it; NORMAL
 * too).  Does nothing anywhere else. */
void tr_actor_exit(int reason);

/* From inside a handler: end this actor now with reason and a short text
 * (printf format, may be NULL; kept up to 127 bytes, shown by
 * introspection).  Does not return: the handler is abandoned (its frame is
 * unwound with longjmp, so it must not hold resources only its own return
 * path would free); the caller of the message gets TR_EDOWN.  In init it
 * fails the spawn with reason; in terminate it ends terminate.  Called
 * outside any actor's code it is a programming error: it prints and
 * aborts. */
__attribute__((noreturn, format(printf, 2, 3))) void tr_actor_fail(int reason, const char *fmt,
                                                                  ...);

/* The actor whose handler is running on the calling task; TR_ACTOR_NONE
 * elsewhere. */
tr_actor_ref tr_actor_self(void);

/* ---- messages ------------------------------------------------------------------------ */

/* Sends request (msg_size bytes) and waits for the reply (reply_size bytes,
 * copied to reply_out).  May wait (also for room, under WAIT, up to the
 * same deadline).  Returns 0; TR_EDOWN (the actor is gone, stopping,
 * ended before replying, or dropped the request, or the DROP_* policy
 * dropped it); TR_ETIMEDOUT / TR_ECANCELED (a reply that comes later is
 * refused: tr_reply_send returns TR_ECLOSED to its sender, and nothing is
 * written into reply_out after the call returned); TR_EFULL (FAIL policy,
 * mailbox full); TR_EDEADLK (the callee is, directly or through others,
 * waiting on the caller, or is the caller); TR_EINVAL (TR_ACTOR_NONE, NULL
 * buffers, a type with reply_size 0); TR_ENOMEM.
 * The request is consumed on every return but TR_EINVAL and TR_ENOMEM:
 * handled, or destroyed with drop_msg if it never will be — with one
 * exception: a ref whose slot has since been reused by another actor (or
 * that never named one) gives TR_EDOWN and leaves the request to the
 * caller, since its type, and so its destructor, is unknown by then. */
int tr_actor_call(tr_actor_ref ref, const void *request, void *reply_out, int64_t deadline);

/* Sends msg without a reply.  Under TR_OVERFLOW_WAIT it may wait for room
 * until the deadline (waiting senders get in first come, first served).
 * Returns 0, TR_EDOWN, TR_EFULL, TR_ETIMEDOUT, TR_ECANCELED, TR_EINVAL,
 * TR_ENOMEM; on any error the message stays the caller's. */
int tr_actor_cast(tr_actor_ref ref, const void *msg, int64_t deadline);

/* tr_actor_cast that never waits: TR_EFULL when full, whatever the policy
 * (DROP_* policies still drop and return 0). */
int tr_actor_try_cast(tr_actor_ref ref, const void *msg);

/* The handler takes over the reply slot of the message being handled, to
 * answer later (from this or any actor, task or thread).  Returns
 * m->reply (NULL for a cast).  If this actor's incarnation ends before the
 * kept reply is answered, the caller gets TR_EDOWN then; the slot stays
 * the keeper's until it sends (TR_ECLOSED) or drops it. */
tr_reply *tr_reply_keep(tr_actor_msg *m);

/* Answers a call: copies value (reply_size bytes) to the caller.  Uses the
 * slot up (the pointer is invalid afterwards).  Returns 0, TR_ECLOSED when
 * the caller has given up (the value stays the replier's: destroy it), or
 * TR_EINVAL (NULL).  Never waits. */
int tr_reply_send(tr_reply *r, const void *value);

/* Gives up on answering; the caller gets TR_EDOWN.  Uses the slot up. */
void tr_reply_drop(tr_reply *r);

/* Whether the caller still waits for this reply (skip work nobody will
 * receive). */
bool tr_reply_is_waiting(const tr_reply *r);

/* ---- monitors and links ---------------------------------------------------------------- */

/* watcher will be told, through its type's on_down, when target ends
 * (at once, with TR_EDOWN as the reason, if target is already gone).
 * "Ends" is the actor's death, not the end of an incarnation that a
 * supervisor restarts behind the same ref.  DOWN travels the watcher's
 * system lane: it overtakes the user messages queued there.
 * *id (may be NULL) names the monitor for tr_actor_demonitor.  Returns 0,
 * TR_EDOWN (the watcher is gone), TR_EINVAL (NONE refs, watcher ==
 * target), TR_ENOMEM.  Never waits. */
int tr_actor_monitor(tr_actor_ref watcher, tr_actor_ref target, uint64_t *id);
/* Removes a monitor, and its DOWN if that is already queued.  Returns 0
 * (no DOWN will be delivered), TR_EINVAL (no such monitor: its DOWN has
 * been, or is being, delivered).  Never waits. */
int tr_actor_demonitor(tr_actor_ref watcher, uint64_t id);

/* Links a and b: when one dies abnormally, the other gets an exit signal
 * (on_exit if its type traps exits, else it is killed with reason
 * TR_ACTOR_LINKED: its waiting handler is cancelled, its mailbox
 * dropped).  Linking twice is one link.  Linking to an actor already gone
 * signals the live one at once (reason TR_EDOWN) and returns TR_EDOWN.
 * Returns 0, TR_EDOWN, TR_EINVAL (NONE refs, a == b), TR_ENOMEM.  unlink:
 * 0, or TR_EDOWN when both are gone.  Never wait. */
int tr_actor_link(tr_actor_ref a, tr_actor_ref b);
int tr_actor_unlink(tr_actor_ref a, tr_actor_ref b);

/* ---- names ---------------------------------------------------------------------------- */

/* A name per actor at most, unique in the process; dropped when the actor
 * ends.  register: 0, TR_EEXIST (taken, or the actor already has a name),
 * TR_EDOWN, TR_EINVAL (NONE, a NULL or empty name, 64 bytes or longer),
 * TR_ENOMEM.  unregister: 0 or TR_EDOWN (no such name).  whereis: 0 or
 * TR_EDOWN (no such name; *out is NONE).  Never wait. */
int tr_actor_register(tr_actor_ref ref, const char *name);
int tr_actor_unregister(const char *name);
int tr_actor_whereis(const char *name, tr_actor_ref *out);

/* ---- introspection --------------------------------------------------------------------- */

typedef struct tr_actor_info {
    const char *type;        /* the type's name */
    char name[64];           /* registered name, or "" */
    int state;               /* TR_ACTOR_IDLE, _RUNNING, _STOPPING, _DEAD */
    size_t queued;           /* messages in the mailbox now */
    size_t high_water;       /* the most ever queued at once */
    uint64_t handled;        /* messages handled */
    uint64_t dropped;        /* messages dropped by the overflow policy or a kill */
    uint64_t restarts;       /* incarnations after the first (supervisors) */
    tr_actor_ref calling;    /* the actor it is waiting on in a call, or NONE */
    int reason;              /* once dead */
    char reason_text[128];
} tr_actor_info;

enum { TR_ACTOR_IDLE = 0, TR_ACTOR_RUNNING, TR_ACTOR_STOPPING, TR_ACTOR_DEAD };

/* Fills *out.  Returns 0 (also for an actor that has ended and whose slot
 * is not reused yet: state TR_ACTOR_DEAD, reason, type; a supervised
 * actor between incarnations is DEAD too, with its mailbox still
 * counted), TR_EDOWN, TR_EINVAL.  Never waits. */
int tr_actor_info_get(tr_actor_ref ref, tr_actor_info *out);

/* A JSON array (jansson; the caller owns the reference) with one object per
 * live actor: ref ("slot.gen"), type, name ("" if none), state ("idle",
 * "running", "stopping", "dead"), queued, high_water, handled, dropped,
 * restarts, calling ("slot.gen" or null).  Each actor is read under its
 * own lock, one after the other.  NULL on out of memory.  Never waits. */
struct json_t;
struct json_t *tr_actor_dump(void);

#ifdef __cplusplus
}
#endif
#endif
