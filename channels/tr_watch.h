/* tr_watch.h — one value many can watch (tokio::sync::watch).
 *
 * A watch holds the latest value of something (a configuration, a state, a
 * shutdown flag).  Senders replace or modify it; every receiver can read
 * it at any time and wait until it changes.  Intermediate values may be
 * skipped: a receiver learns "it changed", not every change.
 *
 * Reading: borrow, not copy, where it matters.  There are two ways to read
 * a value that a writer may be replacing at the same moment, and a watch
 * picks one at creation:
 *
 *   seqlock + copy  (values up to TR_WATCH_INLINE bytes without a
 *                   destructor — flags, counters, small structs).  A borrow
 *                   copies the value into the tr_watch_ref and checks that
 *                   no write overlapped; readers never write shared memory
 *                   and never hold up a writer, so a send costs one atomic
 *                   instruction even while readers hammer the value.
 *   reader count    (larger values, and any value with a destructor, e.g.
 *                   a pointer to a heap configuration).  A borrow holds a
 *                   read lock and the ref points into the channel, like
 *                   tokio's RwLock-backed Ref: no copy, and a replaced
 *                   value is destroyed only when no reader can still see
 *                   it.  The price: a writer waits (spinning, then yielding
 *                   the thread) until borrows are released.
 *
 * Either way: release a ref soon, never wait (recv, sleep, lock) while
 * holding one, and never send on the same watch while holding one — with a
 * reader count the writer would wait for you forever.  The callbacks given
 * to send_modify/send_if_modified/wait_for run under the channel's lock
 * and must not wait or touch the same watch either.
 *
 * Senders are cheap when nobody waits: a receiver that parks in changed()
 * sets a flag in the word a writer updates anyway, so a send wakes anyone
 * only when someone is parked, and a burst of sends while receivers are
 * busy costs them one wake-up (changes coalesce).
 *
 * Semantics follow tokio 1.53: versions, "seen" per receiver (a new
 * receiver has seen the current value), send failing with no receivers,
 * changed() failing only when closed and seen, has_changed() failing iff
 * every sender is gone.
 */
#ifndef TR_WATCH_H
#define TR_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tr_chan.h"
#include "tr_select.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Largest value read through the seqlock (copied into the ref). */
#define TR_WATCH_INLINE 64

typedef struct tr_watch_tx tr_watch_tx;
typedef struct tr_watch_rx tr_watch_rx;

/* A borrowed value.  `value` is valid until tr_watch_ref_release(); do not
 * write through it.  has_changed: whether the value was unseen by the
 * receiver when borrowed (always false for a sender's borrow).  The other
 * fields are private.  The ref is the caller's (usually on the stack); do
 * not copy it (value may point into it). */
typedef struct tr_watch_ref {
    const void *value;
    bool has_changed;
    int held_;
    void *chan_;
    union {
        uint64_t words_[TR_WATCH_INLINE / 8];
        max_align_t align_;
        unsigned char bytes_[TR_WATCH_INLINE];
    } copy_;
} tr_watch_ref;

typedef void (*tr_watch_modify_fn)(void *value, void *ctx);
typedef bool (*tr_watch_if_fn)(void *value, void *ctx);
typedef bool (*tr_watch_pred_fn)(const void *value, void *ctx);

/* ---- creation and handles ----------------------------------------------- */

/* Creates a watch holding a copy of *initial (all zero bytes if initial is
 * NULL), with one sender and one receiver that has seen it.  The _ex form
 * takes options (may be NULL): the destructor runs on every value replaced
 * by send() and on the value left when the last handle goes.  Returns 0,
 * TR_EINVAL (NULL out-parameters, zero size), TR_ENOMEM.  Never waits. */
int tr_watch_new(tr_watch_tx **tx, tr_watch_rx **rx, size_t elem_size, const void *initial);
int tr_watch_new_ex(tr_watch_tx **tx, tr_watch_rx **rx, size_t elem_size, const void *initial,
                    const tr_chan_opts *opts);

/* New handles: another sender; another receiver with the same seen state
 * (rx_clone); a receiver that has seen the current value (subscribe, which
 * reopens a watch whose receivers were all dropped).  Return 0, TR_EINVAL,
 * TR_ENOMEM.  Never wait. */
int tr_watch_tx_clone(tr_watch_tx *tx, tr_watch_tx **out);
int tr_watch_rx_clone(tr_watch_rx *rx, tr_watch_rx **out);
int tr_watch_subscribe(tr_watch_tx *tx, tr_watch_rx **out);

/* Drop a handle and set it to NULL.  The last sender's drop closes the
 * watch (parked changed() calls return); the last receiver's drop wakes
 * tr_watch_closed().  TR_EINVAL for NULL or an already dropped handle.
 * Release every ref taken through a handle before dropping it.  Never
 * wait. */
int tr_watch_tx_drop(tr_watch_tx **tx);
int tr_watch_rx_drop(tr_watch_rx **rx);

/* Counts; 0 for NULL.  Never wait. */
size_t tr_watch_receiver_count(tr_watch_tx *tx);
size_t tr_watch_sender_count(tr_watch_tx *tx);

/* Whether there are no receivers (a send would fail).  True for NULL.
 * Never waits. */
bool tr_watch_tx_is_closed(tr_watch_tx *tx);

/* ---- sending (never waits; callbacks run under the lock) ----------------- */

/* Stores a copy of *value and notifies receivers, unless there are no
 * receivers: then TR_ECLOSED and nothing is stored (the value stays with
 * the caller).  The replaced value goes to the destructor.  Returns 0,
 * TR_ECLOSED, TR_EINVAL. */
int tr_watch_send(tr_watch_tx *tx, const void *value);

/* Stores a copy of *value even without receivers, notifies, and moves the
 * replaced value to *old_out (or to the destructor if old_out is NULL).
 * Returns 0 or TR_EINVAL. */
int tr_watch_send_replace(tr_watch_tx *tx, const void *value, void *old_out);

/* Calls fn(value, ctx) on the current value in place and always notifies,
 * even without receivers.  Returns 0 or TR_EINVAL. */
int tr_watch_send_modify(tr_watch_tx *tx, tr_watch_modify_fn fn, void *ctx);

/* Calls fn(value, ctx) in place; notifies only if it returns true (a change
 * made while returning false is visible but not announced).  Returns 1 if
 * receivers were notified, 0 if not, TR_EINVAL. */
int tr_watch_send_if_modified(tr_watch_tx *tx, tr_watch_if_fn fn, void *ctx);

/* Waits until there are no receivers.  May wait.  Returns 0, TR_ETIMEDOUT,
 * TR_ECANCELED, TR_EINVAL.  Cancel safe. */
int tr_watch_closed(tr_watch_tx *tx, int64_t deadline);

/* ---- reading (never waits, except for a writer's short section) ---------- */

/* Borrows the current value without marking it seen (borrow), or marking
 * it seen (borrow_and_update); a sender can borrow too.  Returns 0 or
 * TR_EINVAL.  Release with tr_watch_ref_release() (0, or TR_EINVAL for a
 * ref not held). */
int tr_watch_borrow(tr_watch_rx *rx, tr_watch_ref *ref);
int tr_watch_borrow_and_update(tr_watch_rx *rx, tr_watch_ref *ref);
int tr_watch_tx_borrow(tr_watch_tx *tx, tr_watch_ref *ref);
int tr_watch_ref_release(tr_watch_ref *ref);

/* Copies the current value into out (elem_size bytes) without marking it
 * seen.  Returns 0 or TR_EINVAL.  With a destructor, the copy is shallow:
 * what it points to may be destroyed by the next send — borrow instead. */
int tr_watch_get(tr_watch_rx *rx, void *out);

/* 1 if the current value is unseen, 0 if seen, TR_ECLOSED if every sender
 * is gone (even with an unseen value, as tokio), TR_EINVAL. */
int tr_watch_has_changed(tr_watch_rx *rx);

/* Mark the current value unseen (changed() then returns at once) or seen.
 * Return 0 or TR_EINVAL. */
int tr_watch_mark_changed(tr_watch_rx *rx);
int tr_watch_mark_unchanged(tr_watch_rx *rx);

/* ---- waiting ---------------------------------------------------------------- */

/* Waits until the value is unseen, then marks it seen.  Returns 0 at once
 * if it is unseen already (even when closed); TR_ECLOSED if every sender is
 * gone and the value is seen; TR_ETIMEDOUT, TR_ECANCELED (nothing marked
 * seen), TR_EINVAL.  May wait.  Cancel safe. */
int tr_watch_changed(tr_watch_rx *rx, int64_t deadline);

/* Waits until pred(value, ctx) holds: tests the current value first (even
 * if seen), then each new value (intermediate ones may be skipped); every
 * value tested is marked seen.  The value that satisfied pred is copied to
 * out (if not NULL).  Returns 0, TR_ECLOSED (senders gone and pred false on
 * the last value), TR_ETIMEDOUT, TR_ECANCELED, TR_EINVAL.  pred runs while
 * the value is borrowed.  May wait.  Cancel safe: the last value marked
 * seen failed pred.  (No clause form: a select loops over
 * tr_watch_changed_clause and tests the value itself.) */
int tr_watch_wait_for(tr_watch_rx *rx, tr_watch_pred_fn pred, void *ctx, void *out,
                      int64_t deadline);

/* Select clauses.  changed: c->result as tr_watch_changed (0 or
 * TR_ECLOSED), the value marked seen on 0.  closed: c->result 0 once there
 * are no receivers.  Return 0, or TR_EINVAL (then c->ops is NULL and
 * tr_select() refuses the array).  Never wait. */
int tr_watch_changed_clause(tr_clause *c, tr_watch_rx *rx);
int tr_watch_closed_clause(tr_clause *c, tr_watch_tx *tx);

#ifdef __cplusplus
}
#endif
#endif
