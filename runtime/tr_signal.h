/* tr_signal.h — waiting for Unix signals from tasks and threads.
 *
 * A program shuts down on SIGINT or SIGTERM and reloads on SIGHUP by
 * waiting for the signal the way it waits for a message: a task parks in
 * tr_signal_recv() and its worker runs other tasks meanwhile; a plain thread
 * blocks.  Like Tokio's signal streams, a handle remembers deliveries that
 * arrive while nobody waits, so none is lost between two receives, and
 * several handles on the same signal each see every delivery.
 *
 * Trade-offs, chosen on purpose:
 *  - Deliveries coalesce.  The kernel already merges a standard signal
 *    sent twice before it is handled, so an exact count would be a lie;
 *    tr_signal_recv() returns once for any number of deliveries that
 *    arrived since the last receive (tr_signal_pending() says how many the
 *    runtime saw).  A reload handler reloads once, not once per SIGHUP.
 *  - The signal's disposition belongs to troupe while any handle for it is
 *    open: the first open installs a handler (the default action, death for
 *    SIGINT, no longer happens), and closing the last handle puts back the
 *    disposition the signal had before the first open.
 *  - One runtime at a time.  libev can watch a signal in one event loop
 *    only, process-wide, so while runtime A has a handle open for SIGINT,
 *    opening SIGINT on runtime B fails with TR_EBUSY.  Different signals
 *    can go to different runtimes.
 *  - Signals that report a fault of the thread itself (SIGSEGV, SIGBUS,
 *    SIGFPE, SIGILL) cannot be waited for: the faulting code would run on
 *    into the fault again.  SIGKILL and SIGSTOP cannot be caught at all.
 *
 * Handles are not meant to be shared between threads while one of them
 * closes it; close a handle after everyone who uses it is done (a receive
 * already parked in it when it closes returns TR_ECLOSED).
 */
#ifndef TR_SIGNAL_H
#define TR_SIGNAL_H

#include <stdint.h>

#include "tr_error.h"
#include "tr_runtime.h"
#include "tr_time.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tr_signal tr_signal;

/* Starts catching signo for runtime rt (NULL: the calling task's runtime)
 * and hands back a handle in *out.  Deliveries are counted from the moment
 * this returns, so raise() right after it is seen.  Works from tasks and
 * plain threads.  Waits, briefly: the handler is installed on the runtime's
 * first worker, and this call returns once it is in place.
 * Returns 0, TR_EINVAL (out NULL, no runtime, signo out of range, one of
 * SIGKILL, SIGSTOP, SIGSEGV, SIGBUS, SIGFPE, SIGILL, or a real-time signal
 * below SIGRTMIN, which glibc keeps for its threads), TR_EBUSY (another
 * runtime catches signo), TR_ENOMEM, TR_ESHUTDOWN (the runtime is shutting
 * down) or TR_ECANCELED (the calling task is cancelled); *out is NULL on
 * every error. */
int tr_signal_open(tr_runtime *rt, int signo, tr_signal **out);

/* Waits until signo has been delivered at least once since the previous
 * receive on this handle (or since the open), and takes those deliveries.
 * Returns 0 at once if deliveries are pending, otherwise waits; a deadline
 * in the past only takes what is pending.  Returns 0, TR_ETIMEDOUT,
 * TR_ECANCELED in a cancelled task, TR_ECLOSED when the handle is closed
 * while waiting or its runtime has been freed (pending deliveries are still
 * handed out first), TR_EINVAL for NULL.  Waits. */
int tr_signal_recv(tr_signal *s, int64_t deadline);

/* tr_signal_recv() that never waits: 0 if deliveries were pending (they are
 * taken), TR_EEMPTY if none, TR_ECLOSED if none and the runtime has been
 * freed, TR_EINVAL for NULL. */
int tr_signal_try_recv(tr_signal *s);

/* Deliveries seen by this handle and not yet taken by a receive (0 for
 * NULL).  Never waits. */
int tr_signal_pending(const tr_signal *s);

/* The signal number this handle catches (0 for NULL).  Never waits. */
int tr_signal_signo(const tr_signal *s);

/* Closes *s and sets it to NULL; a NULL or already NULL pointer is ignored.
 * A receive parked in the handle returns TR_ECLOSED.  Closing the last
 * handle for a signal restores the disposition the signal had before it
 * was first opened; the call then waits (briefly) until that is done, so
 * that another runtime may open the signal right after, except in a
 * cancelled task, where it does not wait and the restore follows a moment
 * later.  A handle may outlive its runtime: close it whenever. */
void tr_signal_close(tr_signal **s);

#ifdef __cplusplus
}
#endif
#endif
