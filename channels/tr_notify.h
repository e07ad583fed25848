/* tr_notify.h — wake one task, or all of them, without passing data
 * (tokio::sync::Notify).
 *
 * A tr_notify is a caller-owned struct: a queue of registered waiters and
 * at most one stored permit.  tr_notify_one() wakes the oldest registered
 * waiter, or stores the permit when nobody is registered (many calls, one
 * permit); the next wait consumes it at once.  tr_notify_last() is the
 * same but wakes the newest waiter.  tr_notify_waiters() wakes every
 * waiter registered before the call and stores nothing.
 *
 * Two ways to wait:
 *
 *   tr_notify_notified(&n, deadline)   register and wait in one call.
 *
 *   tr_notified nd;                    register first, wait later — the
 *   tr_notified_init(&nd, &n);         C form of tokio's Notified::enable.
 *   tr_notified_enable(&nd);           Without it, "check the condition,
 *   if (!condition())                  then wait" loses a notify_waiters()
 *       tr_notified_wait(&nd, dl);     that lands between the two.  A
 *   tr_notified_drop(&nd);             registered tr_notified is a waiter
 *                                      like any other: notify_one() may
 *                                      choose it while its owner is still
 *                                      busy elsewhere.
 *
 * "Chosen, then gone" — tokio's rule that a Notified future picked by
 * notify_one but dropped before it observed the notification passes the
 * notification on — has three C analogues, all handled:
 *   - a registered tr_notified dropped (tr_notified_drop) before a wait or
 *     enable observed the notification;
 *   - a waiter chosen at the very moment its deadline or cancellation won
 *     (the claim failed): it returns TR_ETIMEDOUT / TR_ECANCELED;
 *   - a select whose notify clause was chosen after another clause had
 *     already won.
 * In each case the notification goes to the next waiter by the same rule
 * (oldest for notify_one, newest for notify_last), or becomes the stored
 * permit.  A notify_waiters() notification is never passed on.
 *
 * Once a wait has returned 0, or enable has returned 1, the notification
 * has been observed and nothing is passed on.
 *
 * Thread safety: every function may be called from any task on any worker
 * and from plain threads.  One tr_notified belongs to one caller at a time.
 */
#ifndef TR_NOTIFY_H
#define TR_NOTIFY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "tr_select.h"
#include "tr_wait.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The struct is public only so that callers can own it (on the stack, in
 * their own structs, static); touch it only through the functions. */
typedef struct tr_notify {
    tr_spin lock;
    bool permit;            /* the one stored notify_one permit */
    tr_waitq waiters;       /* registered waiters, oldest first */
    _Atomic uint64_t calls; /* notify_waiters() calls so far */
    uint32_t magic;         /* TR__NOTIFY_MAGIC while usable */
} tr_notify;

#define TR__NOTIFY_MAGIC 0x4e6f7479u

/* A static initialiser, equal to what tr_notify_init() makes
 * (tokio's Notify::const_new). */
#define TR_NOTIFY_INIT {TR_SPIN_INIT, false, {NULL, NULL}, 0, TR__NOTIFY_MAGIC}

/* Makes *n an empty notify: no permit, no waiters.  Never waits.
 * Returns 0, or TR_EINVAL for NULL. */
int tr_notify_init(tr_notify *n);

/* Ends *n.  Never waits.  Returns 0; TR_EINVAL for NULL or a notify not
 * initialised (or already destroyed); TR_EBUSY, doing nothing, while any
 * waiter or tr_notified is still registered. */
int tr_notify_destroy(tr_notify *n);

/* Wakes the oldest registered waiter, or stores the permit if there is
 * none (at most one permit is ever stored).  Never waits; the wake-up
 * happens after the lock is dropped.  Returns 0 or TR_EINVAL. */
int tr_notify_one(tr_notify *n);

/* As tr_notify_one(), but wakes the newest registered waiter. */
int tr_notify_last(tr_notify *n);

/* Wakes every waiter registered before this call, and every tr_notified
 * initialised before it even if never enabled; stores no permit and does
 * not touch a stored one.  Never waits.  Returns 0 or TR_EINVAL. */
int tr_notify_waiters(tr_notify *n);

/* Waits for a notification: consumes the stored permit at once if there
 * is one, otherwise registers (at the back of the queue) and waits.  May
 * wait.  Returns 0 when notified, TR_ETIMEDOUT at the deadline (a past
 * deadline makes it a non-waiting try), TR_ECANCELED in a cancelled task,
 * TR_EINVAL for a bad notify.  On an error nothing was consumed: a
 * notify_one notification that chose this waiter as it gave up is passed
 * on. */
int tr_notify_notified(tr_notify *n, int64_t deadline);

/* The same wait as a select clause; c->result is 0 when it wins.
 * Returns 0, or TR_EINVAL (c->ops is then NULL, so tr_select() refuses
 * the array too). */
int tr_notify_notified_clause(tr_clause *c, tr_notify *n);

/* ---- register first, wait later ------------------------------------------ */

typedef struct tr_notified {
    tr_notify *notify; /* NULL once dropped */
    uint64_t calls;    /* n->calls when initialised */
    int state;         /* private: TR__NOTIFIED_... */
    tr_wait node;      /* the registration in notify->waiters */
} tr_notified;

/* Prepares nd to wait on n.  Registers nothing yet, but a later
 * tr_notify_waiters() already counts nd (as tokio counts a Notified from
 * its creation).  Never waits.  Returns 0 or TR_EINVAL. */
int tr_notified_init(tr_notified *nd, tr_notify *n);

/* Registers nd as a waiter without waiting (tokio's Notified::enable):
 * from now on notify_one may choose it.  Consumes the stored permit if
 * there is one.  Calling it again only reports.  Never waits.  Returns 1
 * if nd is already notified (a wait returns 0 at once), 0 if it is
 * registered and waiting, TR_EINVAL for an nd not initialised or dropped. */
int tr_notified_enable(tr_notified *nd);

/* Enables nd if needed, then waits until it is notified.  Once it has
 * returned 0 it keeps returning 0 at once (tokio's Notified is fused).
 * May wait.  Returns 0, TR_ETIMEDOUT, TR_ECANCELED or TR_EINVAL.  After an
 * error nd stays registered with its place in the queue (and any
 * notification that arrived meanwhile): wait again, or drop it. */
int tr_notified_wait(tr_notified *nd, int64_t deadline);

/* Unregisters nd.  If notify_one/notify_last chose nd and nobody observed
 * it yet, the notification is passed on to the next waiter (or stored as
 * the permit).  Never waits.  Returns 0, or TR_EINVAL for NULL or a second
 * drop.  Every initialised tr_notified must be dropped before its memory
 * is reused (cheap when it was never enabled). */
int tr_notified_drop(tr_notified *nd);

#ifdef __cplusplus
}
#endif
#endif
