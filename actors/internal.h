/* actors/internal.h — what the actor layer's files share, and the hooks the
 * supervisor (next layer up, same folder) builds on.  Nothing here is
 * installed.
 *
 * The layout, and why:
 *
 *  - A ref is (slot, gen).  Slots live in a chunked table that is never
 *    freed, so a slot entry is stable memory: its spin lock can be taken
 *    for any ref, stale or not, without first making sure an actor struct
 *    still exists.  That lock is also the mailbox lock and guards every
 *    mutable field of the actor except its private state.  Resolving a ref
 *    and pushing a message thus cost one locked section and no reference
 *    count.  An actor struct is freed only after its slot entry has been
 *    pointed away from it under that lock.
 *  - "The actor" (slot, mailbox, monitors, links, name, waiters) is kept
 *    apart from "an incarnation" (the state's contents, the run record of
 *    the activation).  A supervisor may install an end hook: the actor then
 *    waits in LIMBO when an incarnation ends (mailbox kept and still open)
 *    until the supervisor restarts it or lets it die.
 *  - An actor struct holds what every actor needs (mailbox, counters,
 *    state inline); the rest (name, monitors, links, system lane, waiters,
 *    kept replies, reason text, end hook) is an extension block allocated
 *    the first time it is needed, so an idle actor is one malloc block plus
 *    its slot entry.
 *  - A run record (tr__run) lives on the stack of whoever runs the actor's
 *    code: an activation task, or the spawner running init inline.  It
 *    holds the jmp_buf tr_actor_fail unwinds to, the message being handled
 *    and the actor this one is waiting on in a call (cycle detection).
 */
#ifndef TR_ACTORS_INTERNAL_H
#define TR_ACTORS_INTERNAL_H

#include "config.h"

#include <setjmp.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tr_actor.h"
#include "tr_wait.h"

#define TR__TLS __thread __attribute__((tls_model("initial-exec")))

typedef struct tr__actor tr__actor;
typedef struct tr__run tr__run;

/* ---- slots (slots.c) ----------------------------------------------------------- */

typedef struct tr__slot {
    tr_spin lock;
    uint32_t gen;                       /* of the actor using it, or of the last one */
    tr__actor *a;                       /* NULL: free, or the actor has died */
    _Atomic(const tr_actor_type *) type;/* of the last actor; read lock-free by senders */
    int reason;                         /* why the last actor died (a == NULL) */
    char *reason_text;                  /* its text (tr_actor_fail...), or NULL */
    uint32_t next_free;
} tr__slot;

/* A free slot for a new actor (its gen already bumped, a still NULL), or
 * NULL (TR_ENOMEM). */
tr__slot *tr__slot_alloc(uint32_t *idx);
/* Returns a slot whose actor has died (a == NULL) to the free list.  Its
 * gen and reason stay readable until the slot is reused. */
void tr__slot_free(uint32_t idx);
#define TR__CHUNK_SHIFT 12u
#define TR__CHUNK (1u << TR__CHUNK_SHIFT)
#define TR__NCHUNKS 4096u /* 16M actors alive at once at most */
extern _Atomic(tr__slot *) tr__chunks[TR__NCHUNKS];
extern atomic_uint tr__slot_next; /* the next fresh index; 0 is never used */

/* The entry for index idx, or NULL if no actor ever had it. */
static inline tr__slot *tr__slot_get(uint32_t idx) {
    if (idx == 0 || idx >= atomic_load_explicit(&tr__slot_next, memory_order_acquire))
        return NULL;
    tr__slot *c = atomic_load_explicit(&tr__chunks[idx >> TR__CHUNK_SHIFT], memory_order_acquire);
    return c ? &c[idx & (TR__CHUNK - 1)] : NULL;
}
/* Number of slot indexes handed out so far (for iteration: 1 .. n-1). */
static inline uint32_t tr__slot_count(void) {
    return atomic_load_explicit(&tr__slot_next, memory_order_acquire);
}

/* Locks the slot of ref if ref's generation is the slot's.  NULL (nothing
 * locked) for a ref that never was or whose slot has been reused. */
static inline tr__slot *tr__slot_lock(tr_actor_ref ref) {
    tr__slot *s = tr__slot_get(ref.slot);
    if (!s)
        return NULL;
    tr_spin_lock(&s->lock);
    if (s->gen != ref.gen || ref.gen == 0) {
        tr_spin_unlock(&s->lock);
        return NULL;
    }
    return s;
}

/* The live actor of ref with its slot locked, or NULL (nothing locked). */
static inline tr__actor *tr__actor_lock(tr_actor_ref ref) {
    tr__slot *s = tr__slot_lock(ref);
    if (!s)
        return NULL;
    if (!s->a) {
        tr_spin_unlock(&s->lock);
        return NULL;
    }
    return s->a;
}

/* ---- "which actor runs on this task" (slots.c) ------------------------------------ */

typedef struct tr__self_ent {
    tr_task *task;
    tr__run *run;
} tr__self_ent;
typedef struct tr__self_map {
    tr__self_ent *tab;
    size_t cap, n; /* cap: a power of two, or 0 */
} tr__self_map;
extern TR__TLS tr__self_map tr__smap;
extern TR__TLS tr__run *tr__plain_self; /* plain threads running an init inline */

static inline size_t tr__self_hash(const tr_task *t, size_t cap) {
    uint64_t h = (uint64_t)(uintptr_t)t * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 32) & (cap - 1);
}

/* The run record of the actor whose code runs on the calling task or plain
 * thread, or NULL. */
static inline tr__run *tr__self(void) {
    tr_task *t = tr_task_self();
    if (!t)
        return tr__plain_self;
    if (!tr__smap.cap)
        return NULL;
    for (size_t i = tr__self_hash(t, tr__smap.cap);; i = (i + 1) & (tr__smap.cap - 1)) {
        if (tr__smap.tab[i].task == t)
            return tr__smap.tab[i].run;
        if (!tr__smap.tab[i].task)
            return NULL;
    }
}
/* Makes r the record of the calling task/thread; returns the one it hides
 * (an actor spawning another runs the child's init on its own task). */
tr__run *tr__self_push(tr__run *r);
/* Undoes tr__self_push: prev is what it returned. */
void tr__self_pop(tr__run *r, tr__run *prev);

/* ---- messages (mailbox.c) -------------------------------------------------------- */

typedef struct tr__mnode {
    struct tr__mnode *next;
    tr_reply *reply;        /* NULL for a cast */
    tr_actor_ref from;
    int8_t size_class;      /* the pool's class, or -1: malloc'd for its size */
    max_align_t data[];     /* msg_size bytes */
} tr__mnode;

enum { TR__SYS_DOWN = 1, TR__SYS_EXIT };

typedef struct tr__sysnode {
    struct tr__sysnode *next;
    int kind;
    int reason;
    tr_actor_ref who;
    uint64_t id; /* the monitor, for DOWN */
} tr__sysnode;

tr__mnode *tr__mnode_new(size_t msg_size, const void *msg);
void tr__mnode_free(tr__mnode *n);
/* Destroys a message that will never be handled: drop_msg, its caller (if
 * any) gets TR_EDOWN, the node is freed.  No lock held. */
void tr__mnode_drop(const tr_actor_type *t, tr__mnode *n);

/* What tr__post does with a message. */
enum {
    TR__POST_WAIT = 0, /* the actor's policy, waiting up to the deadline under WAIT */
    TR__POST_TRY       /* never waits: WAIT behaves as FAIL */
};

/* tr__post's result for a ref whose slot now belongs to another actor (or
 * never had one): like TR_EDOWN, but the caller cannot even tell the type,
 * so a call's request stays the caller's.  Positive: never escapes. */
#define TR__STALE 1

/* Posts n to the actor of ref (s: its slot, never NULL), whose type t the caller read lock-free from
 * the slot (right whenever the generation still matches).  Returns 0 (n is
 * the mailbox's now; *dropped_new set if the DROP_NEWEST policy dropped n
 * itself: the caller destroys it), or an error with n still the caller's:
 * TR__STALE, TR_EDOWN, TR_EFULL, TR_ETIMEDOUT, TR_ECANCELED.  *waited says
 * whether the caller parked for room (then n may already be handled when
 * this returns), and before parking n->reply's caller side is made
 * PENDING (see call.c).  waited may be NULL for casts. */
int tr__post(tr__slot *s, tr_actor_ref ref, const tr_actor_type *t, tr__mnode *n, int mode,
             int64_t deadline, bool *dropped_new, bool *waited);

/* Everything a dying or killed mailbox gives up, gathered under the lock
 * and dealt with after it (destructors and wakes never run under a lock). */
typedef struct tr__spill {
    tr__mnode *msgs;       /* user messages: destroyed */
    tr__sysnode *sys;      /* system messages: freed */
    tr_wait *woken;        /* claimed waiters (senders, wait/stop callers) */
} tr__spill;

/* Moves the user lane, the system lane and the waiting senders (TR_EDOWN)
 * of a into sp; counts the user messages as dropped.  Lock held. */
void tr__mailbox_spill_locked(tr__actor *a, tr__spill *sp);
/* Senders waiting for room get TR_EDOWN (stop: no new messages).  Lock held. */
void tr__senders_refuse_locked(tr__actor *a, tr__spill *sp);
/* Deals with sp (no lock held); t destroys the messages. */
void tr__spill_finish(const tr_actor_type *t, tr__spill *sp);

/* Pops the next message to handle, system lane first: a user node in *n or
 * a system node in *sys (both NULL: empty).  A sender waiting for room is
 * let in (claimed into *wake).  Lock held. */
void tr__mailbox_pop_locked(tr__actor *a, tr__mnode **n, tr__sysnode **sys, tr_wait **wake);
/* Appends a system message; returns whether an activation must be spawned
 * (the caller does that after unlocking).  Lock held; ext must exist. */
bool tr__sys_push_locked(tr__actor *a, tr__sysnode *sn);
/* Sends a DOWN or EXIT system message to `to` (dropped if `to` is gone or
 * its type ignores it).  No lock held. */
void tr__sys_post(tr_actor_ref to, int kind, tr_actor_ref who, int reason, uint64_t id);

/* ---- the actor ----------------------------------------------------------------------- */

/* Where an actor's scheduling stands (guarded by the slot lock). */
enum {
    TR__SCHED_IDLE = 0, /* no activation, none coming: a message must spawn one */
    TR__SCHED_SCHEDULED,/* an activation has been spawned and has not started */
    TR__SCHED_RUNNING,  /* an activation (or init, or an inline end) runs */
    TR__SCHED_LIMBO     /* an incarnation ended; the end hook's owner decides */
};

/* Its life (guarded by the slot lock). */
enum {
    TR__LIFE_INIT = 0, /* init runs; messages queue */
    TR__LIFE_ALIVE,
    TR__LIFE_STOPPING, /* graceful stop: no new messages, the queued ones are handled */
    TR__LIFE_KILLED,   /* killed (or linked, or shut down): mailbox gone, ends asap */
    TR__LIFE_ENDING,   /* terminate runs (mailbox closed unless the actor has an end hook) */
    TR__LIFE_LIMBO     /* between incarnations (end hook): mailbox open, nothing runs */
};

typedef void (*tr__actor_end_fn)(tr_actor_ref ref, int reason, void *ctx);

typedef struct tr__mon {
    tr_actor_ref watcher;
    uint64_t id;
} tr__mon;

typedef struct tr__ext {
    char *name;                 /* registered name (the registry holds it too) */
    tr_waitq waiters;           /* tr_actor_wait (clause 0) and tr_actor_stop (clause 1) */
    tr__sysnode *sys_head, *sys_tail;
    tr__mon *mons;              /* who monitors this actor */
    uint32_t nmons, capmons;
    uint32_t nlinks, caplinks;
    tr_actor_ref *links;
    tr_reply *kept;             /* replies kept by handlers, answered later */
    tr__actor_end_fn on_end;    /* supervisor hook */
    void *on_end_ctx;
    uint32_t restarts;
    bool hooked_end;            /* the current end goes to LIMBO (decided at its start) */
    char reason_text[128];
} tr__ext;

struct tr__actor {
    const tr_actor_type *type;
    tr_runtime *rt;
    tr__slot *slot;
    tr__mnode *head, *tail;     /* user lane */
    tr_waitq senders;           /* waiting for room (TR_OVERFLOW_WAIT) */
    tr__ext *ext;
    tr__run *run;               /* while an activation (or init) runs its code */
    _Atomic uint32_t queued;    /* user messages queued; written under the lock */
    uint32_t capacity;
    uint32_t high_water;
    uint32_t dropped;
    uint64_t handled;
    uint32_t idx, gen;          /* its ref */
    uint32_t stack_size;
    int end_reason;             /* STOPPING / KILLED: the reason to end with */
    int16_t worker;             /* tr_spawn_opts.worker for activations */
    uint8_t overflow;
    uint8_t sched;              /* TR__SCHED_ */
    uint8_t life;               /* TR__LIFE_ */
    _Atomic bool has_sys;       /* the system lane is not empty; written under the lock */
    alignas(max_align_t) unsigned char state[];
};

enum { TR__PHASE_NONE = 0, TR__PHASE_INIT, TR__PHASE_HANDLE, TR__PHASE_SYS, TR__PHASE_TERMINATE };

struct tr__run {
    tr__actor *a;
    tr_task *task;              /* the activation's task (cancelled by kill); NULL: not ours */
    tr__run *prev;              /* the record this one hides on its task */
    int phase;                  /* what runs now (TR__PHASE_) */
    int fail_reason;            /* tr_actor_fail's reason, read after the longjmp */
    int end_reason;             /* while terminate runs */
    bool exit_set;              /* tr_actor_exit was called */
    int exit_reason;
    bool sent, kept;            /* the current message's reply was used / taken over */
    tr_actor_msg msg;
    tr__mnode *node;            /* the node of msg */
    _Atomic uint64_t calling;   /* packed ref of the actor it waits on in a call; 0: none */
    jmp_buf jb;
};

static inline tr_actor_ref tr__ref_of(const tr__actor *a) {
    return (tr_actor_ref){a->idx, a->gen};
}
static inline uint64_t tr__ref_pack(tr_actor_ref r) {
    return ((uint64_t)r.slot << 32) | r.gen;
}
static inline tr_actor_ref tr__ref_unpack(uint64_t v) {
    return (tr_actor_ref){(uint32_t)(v >> 32), (uint32_t)v};
}

/* The extension block, allocated on first use.  Lock held.  NULL: no memory. */
tr__ext *tr__ext_get(tr__actor *a);

/* Marks an idle actor scheduled; true if the caller must spawn its
 * activation (after unlocking).  Lock held. */
bool tr__want_activation_locked(tr__actor *a);
/* Spawns the activation of a (after tr__want_activation_locked said so).
 * No lock held. */
void tr__activate(tr__actor *a);

/* The same for an actor that was scheduled to end (stop, kill): ends it
 * on the calling task or thread when there is nothing to run on its own
 * stack (no messages, no terminate).  No lock held. */
void tr__activate_or_end(tr__actor *a);

/* Kills a (lock held) with reason: mailbox into sp, a waiting handler
 * cancelled.  Returns whether the caller must spawn an activation to run
 * the end (after unlocking and finishing sp). */
bool tr__kill_locked(tr__actor *a, int reason, tr__spill *sp);

/* Drops a monitored/linked actor's bookkeeping when it dies (monitor.c):
 * notifies the monitors (DOWN) and linked actors (exit signals). */
void tr__notify_death(tr_actor_ref me, int reason, tr__mon *mons, uint32_t nmons,
                      tr_actor_ref *links, uint32_t nlinks);
/* An exit signal from a linked actor to `to` (no lock held). */
void tr__exit_signal(tr_actor_ref to, tr_actor_ref from, int reason);

/* ---- replies (call.c) -------------------------------------------------------------------- */

/* The caller gets TR_EDOWN; the reply is used up.  No lock held. */
void tr__reply_drop(tr_reply *r);
/* Kept replies of an ending incarnation: their callers get TR_EDOWN now
 * (claimed into *woken, to wake after unlocking); the keepers still own the
 * slots (their send returns TR_ECLOSED).  Lock of the actor held. */
void tr__kept_fail_locked(tr__actor *a, tr_wait **woken);
/* A reply's caller is about to wait for room in the mailbox: until it
 * parks on the reply, a replier leaves the value in its buffer. */
void tr__reply_pending(tr_reply *r);
/* The handler is about to run with this reply: tr_reply_send/drop mark
 * *flag so the activation knows the reply was used. */
void tr__reply_bind(tr_reply *r, bool *flag);

/* ---- registry (registry.c) --------------------------------------------------------------- */

/* Forgets name if it still names ref (an actor died).  Frees name. */
void tr__registry_forget(char *name, tr_actor_ref ref);
/* Registers under the registry lock; used by spawn with opts->name. */
int tr__registry_add(tr_actor_ref ref, const char *name);

/* ---- hooks for the supervisor --------------------------------------------------------------
 *
 * A supervised actor does not die when an incarnation ends.  Its end hook
 * is called instead (from the ending activation, or from the thread that
 * killed an idle actor; it must not wait — post to your own mailbox), and
 * the actor waits in LIMBO: its slot, ref, mailbox (messages queued at the
 * end are kept, and new ones are still accepted), monitors, links and name
 * stay.  The message being handled when it crashed is not retried; its
 * caller already got TR_EDOWN, as did callers of kept replies.
 * tr_actor_stop() returns when the incarnation has ended (LIMBO), while
 * tr_actor_wait() waits for the real death.  Then exactly one of:
 *
 *   tr__actor_restart(ref, args)   a new incarnation: the state is zeroed
 *                                  and init(args) runs on the caller's task
 *                                  or thread; the queued messages are then
 *                                  handled.  Returns 0, init's reason (the
 *                                  actor stays in LIMBO: restart again or
 *                                  release), TR_EDOWN, TR_EBUSY (not in
 *                                  LIMBO).
 *   tr__actor_release(ref, reason) the actor dies for good with reason:
 *                                  mailbox dropped, monitors and links told,
 *                                  name dropped, waiters woken.  Returns 0,
 *                                  TR_EDOWN, TR_EBUSY (not in LIMBO).
 */

/* Installs (fn != NULL) or removes the end hook of a live actor.  Returns
 * 0, TR_EDOWN, TR_ENOMEM. */
int tr__actor_on_end(tr_actor_ref ref, tr__actor_end_fn fn, void *ctx);
/* tr_actor_spawn with the end hook installed before init runs, so no end
 * can slip by.  An init failure is still returned (no hook call). */
int tr__actor_spawn_hooked(tr_actor_ref *out, const tr_actor_type *type, const void *args,
                           const tr_actor_opts *opts, tr__actor_end_fn fn, void *ctx);
int tr__actor_restart(tr_actor_ref ref, const void *args);
int tr__actor_release(tr_actor_ref ref, int reason);

/* The supervisor's last resort, after a kill (tr_actor_kill: mailbox
 * dropped, handler cancelled) did not end an incarnation in time: the
 * task running the actor's code is killed with tr_task_kill.  Its
 * handler (or terminate) is never resumed past its next troupe call, the
 * tr_cleanup handlers it registered run, and the incarnation ends with
 * TR_ACTOR_KILLED without terminate (its state may be half-updated): the
 * end hook and LIMBO, or death, follow as on any end.  An actor with
 * nothing running is killed as tr_actor_kill does.  Returns 0, TR_EDOWN,
 * TR_EINVAL.  Never waits. */
int tr__actor_kill_hard(tr_actor_ref ref);

/* Waits until the current incarnation of ref has ended (LIMBO, for a
 * hooked actor) or the actor has died; *reason (may be NULL) gets the
 * end's reason.  Unlike tr_actor_stop it asks nothing of the actor and
 * does nothing at the deadline.  Returns 0 (also when already ended),
 * TR_EDOWN (no such actor), TR_ETIMEDOUT, TR_ECANCELED, TR_EDEADLK (self),
 * TR_ENOMEM. */
int tr__actor_await_end(tr_actor_ref ref, int *reason, int64_t deadline);

/* The end hook's ctx of ref (the supervisor's record of it), or NULL when
 * it has no end hook.  Never waits. */
void *tr__actor_end_ctx(tr_actor_ref ref);

/* Kills every actor of rt (supervised ones go to LIMBO with their hook
 * told, as on any kill).  For a runtime about to be shut down: an idle
 * actor has no task, so the runtime's shutdown does not see it, and a
 * message sent to it after tr_runtime_free() would spawn its activation on
 * freed memory.  Returns how many were killed.  Never waits. */
size_t tr__actors_kill_all(tr_runtime *rt);

#endif
