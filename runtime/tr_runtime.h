/* tr_runtime.h — workers and stackful tasks.
 *
 * A runtime is N workers; each worker is one OS thread running one libev
 * loop and a run queue of tasks.  A task is a function running on its own
 * stack, so code that waits reads top to bottom: a call that must wait
 * suspends the task, and the worker runs another one meanwhile.  A task
 * stays on the worker it was spawned on for its whole life; that keeps the
 * run queues free of locks and lets a task's timers and fd watchers live in
 * its worker's loop.
 *
 * Every call that can wait works from a task (it suspends the task) and
 * from an ordinary thread (it blocks the thread), so a program can feed a
 * runtime from threads it already has.  Inside a task, every waiting call
 * also checks for cancellation: once tr_task_cancel() has been called on a
 * task, each of its waits returns TR_ECANCELED until the task returns.
 */
#ifndef TR_RUNTIME_H
#define TR_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tr_error.h"
#include "tr_time.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tr_runtime tr_runtime;
typedef struct tr_task tr_task;

/* A task's body.  What it returns is what tr_task_join() hands back. */
typedef void *(*tr_task_fn)(void *arg);

/* The smallest stack a task may ask for, and the default.  Stacks are
 * mmap'd and only touched pages cost memory, so the default is generous. */
#define TR_STACK_MIN     (16u * 1024u)
#define TR_STACK_DEFAULT (256u * 1024u)

/* Options for tr_runtime_new().  Zero-initialise and set what you need. */
typedef struct tr_runtime_opts {
    int workers;        /* worker threads; 0 = one per CPU */
    size_t stack_size;  /* default task stack; 0 = TR_STACK_DEFAULT */
    int blocking_max;   /* threads in the blocking pool at most; 0 = 64 */
} tr_runtime_opts;

/* Creates a runtime and starts its workers, which then sleep until there is
 * work.  opts may be NULL for the defaults.  Returns TR_EINVAL for a
 * negative worker count or a stack below TR_STACK_MIN, TR_ENOMEM when
 * memory or threads cannot be had.  Never waits. */
int tr_runtime_new(tr_runtime **out, const tr_runtime_opts *opts);

/* Runs fn(arg) as a task on the runtime and waits, on this thread, until it
 * returns; *result (if not NULL) gets its return value.  Call it from a
 * plain thread, not from a task (TR_EPERM).  Waits. */
int tr_runtime_block_on(tr_runtime *rt, tr_task_fn fn, void *arg, void **result);

/* Stops the runtime: every task still alive is cancelled (each of its waits
 * returns TR_ECANCELED from then on), the workers run until every task has
 * returned, and then their threads are joined.  Tasks not yet started still
 * run, cancelled, so that they can release what their argument owns.
 * Returns TR_ETIMEDOUT if tasks were still alive at the deadline (the
 * workers keep running them; call again), TR_EPERM from inside a task of
 * this runtime.  Waits. */
int tr_runtime_shutdown(tr_runtime *rt, int64_t deadline);

/* Shuts the runtime down (without a deadline) if that has not been done,
 * frees it and sets *rt to NULL.  Task handles that were neither joined nor
 * detached die with it.  A NULL or already NULL pointer is ignored. */
void tr_runtime_free(tr_runtime **rt);

/* The number of workers; 0 for NULL. */
int tr_runtime_workers(const tr_runtime *rt);

/* The runtime of the calling task, or NULL on a plain thread. */
tr_runtime *tr_runtime_current(void);

/* The index of the calling task's worker, or -1 on a plain thread. */
int tr_worker_current(void);

/* Where tr_spawn_ex() puts a task. */
#define TR_WORKER_DEFAULT  0    /* the caller's worker; balanced from a plain thread */
#define TR_WORKER_BALANCED (-1) /* the worker with the fewest live tasks */
#define TR_WORKER(i)       ((i) + 1) /* worker i, counted from 0 */

typedef struct tr_spawn_opts {
    int worker;         /* TR_WORKER_DEFAULT, TR_WORKER_BALANCED or TR_WORKER(i) */
    size_t stack_size;  /* 0 = the runtime's default */
    const char *name;   /* copied (up to 31 bytes); shown in reports */
} tr_spawn_opts;

/* Spawns fn(arg) on the caller's worker.  Call it from a task; from a plain
 * thread use tr_spawn_ex() with a runtime.  *out gets a handle to join or
 * detach; out may be NULL to detach at once.  Never waits.  Returns
 * TR_EINVAL (NULL fn, no runtime), TR_ENOMEM (no memory or stack),
 * TR_ESHUTDOWN (the runtime is shutting down). */
int tr_spawn(tr_task **out, tr_task_fn fn, void *arg);

/* The general form: rt may be NULL inside a task (its own runtime); opts may
 * be NULL for the defaults.  Works from tasks and plain threads.  Never
 * waits. */
int tr_spawn_ex(tr_runtime *rt, const tr_spawn_opts *opts, tr_task **out,
                tr_task_fn fn, void *arg);

/* Waits until t has returned and hands back its result; the handle is gone
 * afterwards.  Returns TR_ECANCELED if the *caller* is cancelled and
 * TR_ETIMEDOUT at the deadline; in both cases the handle stays valid.
 * TR_EDEADLK if a task joins itself.  Waits. */
int tr_task_join(tr_task *t, void **result);
int tr_task_join_until(tr_task *t, void **result, int64_t deadline);

/* Gives the handle up: the task runs on and frees itself when it returns.
 * Never waits. */
void tr_task_detach(tr_task *t);

/* Cancels t: from now on each wait inside t returns TR_ECANCELED, and a
 * wait it is in now returns at once.  Works from any thread; cancelling a
 * task that has returned does nothing.  Never waits. */
int tr_task_cancel(tr_task *t);

/* ---- kill and cleanups -----------------------------------------------------
 *
 * Cancellation asks a task to unwind through its own return paths.  Kill
 * is for a task that does not: it is cancelled, and from then on it never
 * gets control back from troupe.  C has no preemption and no unwinding, so
 * "never" is counted from the task's next call into the runtime: a wait it
 * is parked in when killed returns TR_ECANCELED as on a cancel (the
 * primitive must unlink itself), and the next call that may wait
 * (tr_wait_enter: every wait, sleep, join, select, tr_yield) does not
 * return: the task's registered cleanups run, most recent first, on its
 * own stack, and the task ends as if its function had returned
 * TR_TASK_KILLED; its stack is reclaimed.  A task spinning without ever
 * calling troupe cannot be killed.
 *
 * A cleanup is caller storage, usually in the frame that owns the
 * resource, registered with push and removed with pop before that frame
 * returns (LIFO, like pthread_cleanup_push). */
typedef struct tr_cleanup {
    struct tr_cleanup *next;
    void (*fn)(void *arg);
    void *arg;
} tr_cleanup;

/* What tr_task_join gives for a killed task. */
#define TR_TASK_KILLED ((void *)(intptr_t)-1)

/* Registers c on the calling task: fn(arg) runs if the task is killed
 * before tr_cleanup_pop(c).  On a plain thread (which cannot be killed)
 * it does nothing.  Never waits. */
void tr_cleanup_push(tr_cleanup *c, void (*fn)(void *arg), void *arg);
/* Removes c, the most recent registration of the calling task, and runs
 * it if run is true (on a plain thread too).  Registrations made after c
 * and never popped (their frames were left by a longjmp, as
 * tr_actor_fail does) are removed with it, unrun.  Popping a c that is not
 * registered only runs it (if run).  Never waits. */
void tr_cleanup_pop(tr_cleanup *c, bool run);

/* Kills t (see above).  Works from any thread; t must be a handle the
 * caller may use (as for tr_task_cancel).  While its cleanups run, the
 * dying task's waits return TR_ECANCELED: a cleanup must not wait.  Returns 0, or TR_EINVAL
 * (NULL).  Killing a task that has returned, or killing twice, does
 * nothing.  A task that kills itself ends at once (after its cleanups),
 * and this call does not return.  Never waits. */
int tr_task_kill(tr_task *t);

/* Whether t has been killed. */
bool tr_task_killed(const tr_task *t);

/* The calling task, or NULL on a plain thread. */
tr_task *tr_task_self(void);

/* Whether the calling task has been cancelled (0 on a plain thread). */
int tr_task_cancelled(void);

/* For troupe's upper layers, not for programs: a function the runtime calls
 * on a task's own stack when its body has returned, before its joiners
 * wake (the debug build's "task ended holding a lock" report uses it).
 * One hook per process; NULL (the default) for none. */
typedef void (*tr_task_exit_hook)(tr_task *t);
void tr__set_task_exit_hook(tr_task_exit_hook fn);

/* For troupe's upper layers: fn(rt) runs once at the start of the
 * runtime's shutdown, on the thread that shuts it down, while the workers
 * still run (the actor layer ends its actors there, so that none outlives
 * the runtime).  Registering the same fn twice registers it once.  Returns
 * 0, TR_EINVAL, or TR_ENOMEM when TR_SHUTDOWN_HOOKS are taken. */
#define TR_SHUTDOWN_HOOKS 4
typedef void (*tr_runtime_shutdown_hook)(tr_runtime *rt);
int tr__runtime_on_shutdown(tr_runtime *rt, tr_runtime_shutdown_hook fn);

/* A task's id (unique within the process, from 1) and name ("" if none). */
uint64_t tr_task_id(const tr_task *t);
const char *tr_task_name(const tr_task *t);

/* Lets the other runnable tasks of this worker run, then continues.  On a
 * plain thread it yields the thread.  Returns TR_ECANCELED in a cancelled
 * task.  Waits (briefly). */
int tr_yield(void);

/* Sleeps until the deadline, or for ms milliseconds.  Returns 0, or
 * TR_ECANCELED if the caller is cancelled before then.  Waits. */
int tr_sleep_until(int64_t deadline);
int tr_sleep_ms(int64_t ms);

#ifdef __cplusplus
}
#endif
#endif
