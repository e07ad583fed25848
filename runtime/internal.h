/* internal.h — what the runtime's own files share and nobody else sees.
 *
 * The structs here are private so that the public headers can stay opaque
 * handles; channels and actors use only tr_wait.h.
 */
#ifndef TR_INTERNAL_H
#define TR_INTERNAL_H

#include "config.h" /* first: it defines _GNU_SOURCE */

#include <ev.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "context.h"
#include "tr_runtime.h"
#include "tr_wait.h"

#if defined(__SANITIZE_ADDRESS__)
#define TR_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TR_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define TR_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TR_TSAN 1
#endif
#endif

/* Branch hints for the hot paths (switch, spawn, join): they lay the
 * common case out straight, without taken jumps. */
#define TR_LIKELY(x) __builtin_expect(!!(x), 1)
#define TR_UNLIKELY(x) __builtin_expect(!!(x), 0)

#define TR_BUDGET 128          /* ready waits before a forced yield, as Tokio */
#define TR_POLL_EVERY 61       /* task switches between two visits to the scheduler */
#define TR_POLL_NS 50000       /* a busy worker looks at its loop this often, at most */
#define TR_TASK_CACHE_MAX 1024 /* free task structs a worker keeps */
#define TR_LIFO_MAX 3          /* LIFO-slot picks in a row, as Tokio */
/* A task's first frame starts its stack's colour, a multiple of
 * TR_STACK_COLOR_STEP below TR_STACK_COLORS * TR_STACK_COLOR_STEP, below the
 * top of the stack.  Stacks are page-aligned, so without this every task's
 * hot frames share their low 12 address bits: a switch's pops then alias
 * the pushes just made on the other stack (the CPU's 4K-aliasing stall),
 * and many tasks crowd the same L1 sets.  Stacks are mapped that much
 * larger, so a task still gets the size it asked for. */
#define TR_STACK_COLORS 16
#define TR_STACK_COLOR_STEP 64

typedef struct tr_worker tr_worker;

/* ---- cross-thread inject queue: a Treiber stack, drained all at once ---- */

enum { TR_INJ_WAKE, TR_INJ_NEW, TR_INJ_POKE, TR_INJ_CALL, TR_INJ_FREE };

typedef struct tr_inode {
    struct tr_inode *next;
    int kind;
} tr_inode;

/* A function to run on a worker's own thread (signal watchers, shutdown). */
typedef struct tr_injcall {
    tr_inode node;
    void (*fn)(tr_worker *w, struct tr_injcall *call);
} tr_injcall;

/* Pushes n for worker w; wakes w's loop on the empty-to-non-empty edge. */
void tr__inject(tr_worker *w, tr_inode *n);

/* ---- stacks ------------------------------------------------------------- */

typedef struct tr_stack {
    char *map;     /* start of the mapping: the guard page(s) */
    char *lo;      /* lowest usable byte */
    size_t size;   /* usable bytes, lo .. lo + size */
    unsigned vg_id; /* valgrind's id for the stack (0 when not built with it) */
    unsigned color; /* bytes left unused at the top: see TR_STACK_COLORS */
    struct tr_stack *next_free; /* only while pooled (kept in the mapping) */
} tr_stack;

typedef struct tr_stack_pool {
    tr_stack *free;
    int count, max;
} tr_stack_pool;

int tr__stack_get(tr_stack_pool *pool, size_t size, tr_stack *out);
/* Bytes at the top of a stack that going back to a pool never trims. */
#define TR_STACK_TRIM_KEEP (32u * 1024u)
/* Whether the task of st went deeper than its top TR_STACK_TRIM_KEEP bytes:
 * two words just below that mark are not both zero (stack.c tells why this
 * is enough).  st must be larger than TR_STACK_TRIM_KEEP + 4096. */
static inline bool tr__stack_went_deep(const tr_stack *st) {
    const volatile uintptr_t *probe =
        (const volatile uintptr_t *)(st->lo + st->size - TR_STACK_TRIM_KEEP);
    return probe[-1] != 0 || probe[-256] != 0;
}
/* Puts st first in pool, its record kept in the stack's own top bytes: no
 * allocation. */
static inline void tr__stack_pool_link(tr_stack_pool *pool, const tr_stack *st) {
    tr_stack *rec = (tr_stack *)(st->lo + st->size - sizeof(tr_stack));
    *rec = *st;
    rec->next_free = pool->free;
    pool->free = rec;
    pool->count++;
}
/* tr__stack_put()'s common case, inline: the pool has room and the stack
 * needs no trimming.  False: call tr__stack_put(). */
static inline bool tr__stack_pool_give(tr_stack_pool *pool, const tr_stack *st) {
    if (pool->count >= pool->max ||
        (st->size > TR_STACK_TRIM_KEEP + 4096 && tr__stack_went_deep(st)))
        return false;
    tr__stack_pool_link(pool, st);
    return true;
}
/* size rounded up to whole pages, as the pools keep it. */
size_t tr__stack_round(size_t size);
/* tr__stack_get()'s common case, inline: the pool's first stack, if it has
 * exactly the (rounded) size wanted.  False: call tr__stack_get(). */
static inline bool tr__stack_pool_take(tr_stack_pool *pool, size_t size, tr_stack *out) {
    tr_stack *st = pool->free;
    if (!st || st->size != size)
        return false;
    pool->free = st->next_free;
    pool->count--;
    *out = *st; /* the record lives inside the stack it describes */
    out->next_free = NULL;
    return true;
}
void tr__stack_put(tr_stack_pool *pool, tr_stack *st);
void tr__stack_pool_drain(tr_stack_pool *pool);
size_t tr__page_size(void);
/* Installs the SIGSEGV handler that names a task whose stack overflowed. */
void tr__stack_overflow_init(void);
/* Gives the calling thread an alternate signal stack (freed at exit). */
void tr__stack_altstack_init(void);

/* ---- sanitizer bookkeeping for one context ------------------------------ */

typedef struct tr_san {
    const void *bottom; /* ASan: stack bounds of the context */
    size_t size;
    void *fiber;        /* TSan: its fiber */
} tr_san;

/* ---- tasks -------------------------------------------------------------- */

struct tr_task {
    tr_ctx ctx;
    tr_san san;
    tr_worker *worker;
    tr_task *next;              /* run queue */
    tr_task *all_prev, *all_next; /* the worker's list of task structs */
    tr_inode wake_node;         /* TR_INJ_NEW, then _WAKE, at the end _FREE */
    tr_inode poke_node;         /* TR_INJ_POKE: cancellation */
    atomic_int poke_queued;
    tr_stack stack;
    tr_task_fn fn;
    void *arg;
    void *result;
    atomic_int refs;            /* the handle, the running body, a queued poke */
    atomic_bool cancelled;
    /* Killed (kill.c): set once, before cancelled, by tr_task_kill. */
    atomic_bool killed;
    /* The die path runs (its cleanups): waits return TR_ECANCELED rather
     * than entering it again.  Own thread only. */
    bool dying;
    tr_cleanup *cleanups;       /* registered, most recent first; own thread only */
    tr_waiter *waiter;          /* set while parked; worker thread only */
    int budget;
    tr_spin lock;               /* guards done and joiners */
    bool done;
    tr_waitq joiners;
    /* A plain tr_task_join() from a task of this same worker parks here
     * instead of in joiners, without the lock: see tr_task_join_until().
     * Only this worker's thread reads or writes it. */
    tr_wait *local_joiner;
    /* Set when tr__task_finish() woke a local joiner: the body's reference
     * then goes to that joiner, which drops both at once, rather than to
     * reap().  Worker thread only. */
    bool body_ref_passed;
    uint64_t id;
    char name[32];
};

/* ---- workers ------------------------------------------------------------ */

struct tr_worker {
    tr_runtime *rt;
    int id;
    pthread_t thread;
    struct ev_loop *loop;
    ev_async async;
    _Atomic(tr_inode *) inject;
    tr_ctx sched_ctx;
    tr_san sched_san;
    tr_task *current;           /* running task; NULL in the scheduler */
    tr_task *runq_head, *runq_tail;
    tr_task *lifo;              /* runs next: the task last woken by a task */
    int lifo_streak;
    tr_task *zombie;            /* returned; its stack goes back after the switch */
    int poll_in;                /* picks left before one goes through the scheduler */
    int64_t last_poll;          /* when a busy worker last looked at its loop */
    /* Tasks spawned here and not yet returned: those adopted by this thread
     * (written only by it, so no read-modify-write) plus those spawned from
     * elsewhere and still on their way in. */
    atomic_long live_local;
    atomic_long live_remote;
    tr_stack_pool pool;
    tr_task *task_cache;
    int task_cache_n;
    tr_task *all;               /* every task struct of this worker (its thread only) */
    tr_injcall stop_call;
};

struct tr_runtime {
    int nworkers;
    tr_worker *workers;
    size_t stack_size;
    size_t stack_rounded;       /* a default stack as mapped: with colour room, in pages */
    int blocking_max;
    atomic_bool stopping;       /* shutdown started: cancel everything */
    atomic_bool exiting;        /* every task is gone: workers leave */
    bool joined;
    atomic_uint rr;             /* round robin for balancing ties */
    pthread_mutex_t idle_mu;    /* shutdown waits here for no live task */
    pthread_cond_t idle_cv;
    pthread_mutex_t pool_mu;    /* the shared stack pool */
    tr_stack_pool pool;
    struct tr_blocking_pool *blocking;
    struct tr_signal_hub *signals;
    tr_runtime_shutdown_hook hooks[TR_SHUTDOWN_HOOKS]; /* under idle_mu */
};

/* The worker whose thread this is, NULL on a plain thread.  initial-exec:
 * read on every switch, it must not cost a call to __tls_get_addr. */
#define TR_TLS __thread __attribute__((tls_model("initial-exec")))
extern TR_TLS tr_worker *tr__tls_worker;

static inline tr_task *tr__current(void) {
    tr_worker *w = tr__tls_worker;
    return w ? w->current : NULL;
}

/* Suspends the current task until something schedules it again. */
void tr__suspend(void);
/* The killed task self dies (kill.c): its cleanups run, most recent first,
 * then it ends as if it had returned TR_TASK_KILLED.  Called only where
 * self has nothing linked in a wait queue and holds no runtime lock. */
void tr__task_die(tr_task *self) __attribute__((noreturn, noinline));
/* Leaves a task that has finished (tr__task_finish done) for good: its
 * stack goes back to the pool after the switch (worker.c). */
void tr__task_leave(tr_task *self) __attribute__((noreturn));
/* A safe point: a killed task dies here (unless it is already dying).
 * killed is set before cancelled, so callers on a hot path may test
 * cancelled first and come here only then. */
static inline void tr__kill_point(tr_task *self) {
    if (TR_UNLIKELY(atomic_load_explicit(&self->killed, memory_order_relaxed)) && !self->dying)
        tr__task_die(self);
}
/* The cancelled branch of a wait's entry and of tr_yield (worker.c): a
 * kill's safe point, and the cooperative budget still spent, with a yield
 * that the cancel does not cut short when it runs out.  A task looping on
 * waits that return TR_ECANCELED at once would otherwise keep its worker
 * to itself, and its killer (a task of the same worker) would never run. */
void tr__cancelled_point(tr_task *self);
/* tr_wait_enter() for a caller that knows its task (NULL: a plain thread).
 * Every wait starts here, with nothing linked: it is a kill's safe point. */
static inline int tr__wait_enter(tr_task *self) {
    if (!self)
        return 0;
    if (atomic_load_explicit(&self->cancelled, memory_order_relaxed)) {
        tr__cancelled_point(self);
        return TR_ECANCELED;
    }
    if (--self->budget <= 0)
        return tr_yield();
    return 0;
}
/* tr_waiter_init() for the task self. */
static inline void tr__waiter_init_task(tr_waiter *w, tr_task *self) {
    w->task = self;
    atomic_init(&w->state, TR_WAITER_WAITING);
    atomic_init(&w->woken, 0);
    w->winner = NULL;
    w->timer = NULL;
    atomic_init(&w->wake_fd, -1);
}
/* tr_waiter_park() for a waiter of the task t, with no lock to release. */
int tr__park_task(tr_waiter *w, tr_task *t, int64_t deadline);

/* select on a plain thread with fd clauses (wait.c): sleeps in ppoll() on
 * pfds[0..n) and the thread's wake-up eventfd (pfds has room for n + 1);
 * a ready fd claims the waiter for entries[i].  Returns like
 * tr_waiter_park(). */
struct pollfd;
int tr__park_thread_poll(tr_waiter *w, struct pollfd *pfds, tr_wait **entries, int n,
                         int64_t deadline);
/* The fd clause's ops, which select.c recognises on plain threads (io.c). */
struct tr_clause_ops;
extern const struct tr_clause_ops tr__fd_clause_ops;
/* The pollfd an fd clause stands for (io.c). */
struct tr_clause;
void tr__fd_clause_pollfd(const struct tr_clause *c, struct pollfd *p);
/* Makes t runnable on its worker, from any thread. */
void tr__schedule(tr_task *t);
/* Puts a new task first in the run queue (its worker's thread only). */
void tr__schedule_front(tr_task *t);
/* What a new context runs first: the task's body, then its end (never
 * returns). */
void tr__task_entry(void *arg) __attribute__((noreturn));
/* Runs the worker's scheduler loop on this thread until the runtime exits. */
void *tr__worker_main(void *arg);
int tr__worker_init(tr_runtime *rt, tr_worker *w, int id);
void tr__worker_destroy(tr_worker *w);
/* Adds a new task to its worker (on that worker's thread). */
void tr__worker_adopt(tr_worker *w, tr_task *t);
/* Sets t's cancel flag's effect on its current wait (worker thread only). */
void tr__task_poke(tr_task *t);
/* Drops one reference; frees t at zero. */
void tr__task_release(tr_task *t);
/* A task's body returned: marks it done, wakes its joiners and counts it
 * out; the caller then leaves it for good. */
void tr__task_finish(tr_task *t);
/* A task of w returned (or a spawn was undone): counts it out and wakes
 * a shutdown waiting for the last one. */
void tr__runtime_task_gone(tr_worker *w, bool adopted);
/* Changes w's local live count; only w's own thread calls it, so a plain
 * load and a release store do, without a read-modify-write. */
static inline void tr__live_local_add(tr_worker *w, long delta) {
    atomic_store_explicit(&w->live_local,
                          atomic_load_explicit(&w->live_local, memory_order_relaxed) + delta,
                          memory_order_release);
}
/* How many tasks of w are alive (any thread). */
long tr__worker_live(tr_worker *w);
void tr__worker_adopt_remote(tr_worker *w, tr_task *t);
/* Frees a task struct whose last reference is gone (its worker's thread). */
void tr__task_free_local(tr_task *t);
/* The runtime's blocking pool and signal hub (may be NULL), torn down. */
void tr__blocking_free(tr_runtime *rt);
void tr__signals_free(tr_runtime *rt);

#endif
