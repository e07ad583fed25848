/* tr_blocking.h — running blocking code without blocking a worker.
 *
 * A task that calls read() on a file, getaddrinfo() or a long computation
 * stops every other task of its worker for as long as that takes.
 * tr_spawn_blocking() hands such a function to a pool of ordinary threads
 * kept beside the workers and parks the task until the result is back, the
 * way Tokio's spawn_blocking does.
 *
 * Trade-offs, chosen on purpose:
 *  - A job cannot be stopped once queued: C has no way to interrupt a thread
 *    stuck in a system call.  When the caller gives up (deadline,
 *    cancellation) the job still runs to the end, and its result goes to
 *    the caller's `drop` function instead of being lost in silence.  So
 *    whatever arg owns is always released by fn, never by the caller.
 *  - Threads are made on demand, up to the runtime's blocking_max
 *    (tr_runtime_opts; 64 by default); past that, jobs queue in order.  A
 *    thread with nothing to do for 10 s exits, so a burst of jobs costs
 *    threads only while it lasts.  Threads are joined, never detached, so
 *    freeing the runtime leaves nothing behind.
 *  - Freeing the runtime waits for every queued and running job: a pool
 *    thread cannot be abandoned safely while it runs user code.
 */
#ifndef TR_BLOCKING_H
#define TR_BLOCKING_H

#include <stdint.h>

#include "tr_error.h"
#include "tr_runtime.h"
#include "tr_time.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A blocking job: runs on a pool thread; what it returns is the result. */
typedef void *(*tr_blocking_fn)(void *arg);

/* Runs fn(arg) on the calling task's runtime's blocking pool and waits for
 * it; *result (if result is not NULL) gets what fn returned.
 *
 * In a task: parks until the job is done.  Returns 0; TR_ETIMEDOUT at the
 * deadline or TR_ECANCELED if the task is (or gets) cancelled, in which
 * case fn(arg) still runs (or goes on running) to the end and its result is
 * passed to drop (if drop is not NULL), on the pool thread or in this call.
 * A deadline in the past still queues the job.  Because fn runs on every
 * return but TR_EINVAL and TR_ENOMEM, ownership of arg is never in doubt.
 * When result is NULL the result is not wanted and goes to drop as well.
 *
 * On a plain thread (no runtime of its own), including a pool thread: runs
 * fn(arg) right here and returns 0; deadline is not looked at.
 *
 * Returns TR_EINVAL for a NULL fn, TR_ENOMEM when neither the job nor a
 * first pool thread can be had (fn did not run).  Waits. */
int tr_spawn_blocking(tr_blocking_fn fn, void *arg, void **result, int64_t deadline,
                      void (*drop)(void *result));

/* The threads rt's blocking pool has now, busy or idle (rt NULL: the calling
 * task's runtime; 0 without a runtime or before the first job).  For
 * reports and tests.  Never waits. */
int tr_blocking_threads(tr_runtime *rt);

#ifdef __cplusplus
}
#endif
#endif
