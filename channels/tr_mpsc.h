/* tr_mpsc.h — multi-producer, single-consumer channels (tokio::sync::mpsc).
 *
 * Why: the mpsc channel is how tasks hand work to one another and the
 * mailbox every actor reads, so it gets Tokio's exact semantics and is
 * built for speed: one short spin-locked section per operation, a
 * receiver that finds values never touches the waiter machinery, and a
 * sender that wakes the receiver only when it is parked.  The lock is
 * biased to a thread that uses the channel alone (tasks of one worker):
 * it then costs plain stores, and another thread's first use revokes the
 * bias with a membarrier() system call.  For that the library registers
 * the process with membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED)
 * when it is loaded (see channels/mpsc_internal.h).
 *
 * Two flavours share one pair of handle types:
 *
 *   bounded    tr_mpsc_new(&tx, &rx, capacity, elem_size).  One ring of
 *              capacity * elem_size bytes is allocated at creation; sends
 *              and receives never allocate afterwards.  A sender waits for
 *              capacity; waiting senders are served first come, first
 *              served, and a slot freed by the receiver is assigned to the
 *              oldest waiter at once (a later try_send cannot barge in).
 *              Capacity comes back when the receiver takes a value, not
 *              when a permit is used to send.
 *   unbounded  tr_mpsc_unbounded_new(&tx, &rx, elem_size).  A send never
 *              waits.  Values live in blocks of TR_MPSC_BLOCK_CAP slots in
 *              a linked list; a block the receiver has emptied goes back to
 *              the allocator, except the last TR_MPSC_BLOCK_CACHE ones kept
 *              for reuse.  (Tokio recycles its blocks but never frees them,
 *              tokio#4321, so one burst pins its peak memory for the
 *              channel's life; here memory after a burst is bounded by the
 *              cache.)  Calls about capacity or permits on an unbounded
 *              channel return TR_EINVAL, or SIZE_MAX for the capacity
 *              queries.
 *
 * Values are copied in and out of slots of elem_size bytes.  A channel may
 * be given a destructor (tr_chan_opts): every value sent is either
 * received or passed to the destructor exactly once — the destructor runs
 * on values still queued when the receiver is dropped, and on values sent
 * through a permit after that.  The destructor never runs under the
 * channel's lock, so it may drop handles of the same channel.
 *
 * Handles are opaque pointers.  `_clone` gives another handle (for mpsc
 * the same pointer, counted once more), `_drop(&h)` gives one up and NULLs
 * the variable.  The channel lives until the last handle and the last
 * permit are gone.  Counting follows Tokio: the receiver sees "closed"
 * once every strong sender is dropped (or tr_mpsc_rx_close() was called)
 * and no permit is outstanding; weak senders do not keep a channel open.
 *
 * Waiting calls take an absolute deadline last (TR_NEVER: no limit), start
 * with tr_wait_enter(), work from tasks on any worker and from plain
 * threads, and return TR_ETIMEDOUT or TR_ECANCELED having taken nothing
 * and leaving the caller's value with the caller.  Every wait also has a
 * select clause (tr_select.h).  Bad arguments — NULL, zero capacity or
 * element size, a handle whose count already reached zero — return
 * TR_EINVAL and change nothing.
 */
#ifndef TR_MPSC_H
#define TR_MPSC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tr_chan.h"
#include "tr_select.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tr_mpsc_tx tr_mpsc_tx;     /* a (strong) sender */
typedef struct tr_mpsc_rx tr_mpsc_rx;     /* the receiver */
typedef struct tr_mpsc_weak tr_mpsc_weak; /* a weak sender */
struct tr_mpsc_chan;

/* Slots per block of an unbounded channel, and emptied blocks kept. */
#define TR_MPSC_BLOCK_CAP   32
#define TR_MPSC_BLOCK_CACHE 2

/* The largest capacity of a bounded channel (Tokio's MAX_PERMITS). */
#define TR_MPSC_MAX_CAPACITY (SIZE_MAX >> 3)

/* Capacity reserved for sending values later, in the caller's storage (a
 * tokio Permit / PermitIterator / OwnedPermit).  It holds `n` slots; each
 * tr_mpsc_permit_send() uses one.  While it holds slots it keeps the
 * channel alive and, like an OwnedPermit, counts as a sender for "closed".
 * Do not copy a permit that holds slots: both copies would give them back.
 * The fields are private. */
typedef struct tr_mpsc_permit {
    struct tr_mpsc_chan *chan;
    size_t n;
} tr_mpsc_permit;

#define TR_MPSC_PERMIT_INIT {NULL, 0}

/* ---- creation (never wait) ------------------------------------------------ */

/* A bounded channel of `capacity` values (1 ..= TR_MPSC_MAX_CAPACITY) of
 * elem_size bytes each.  opts may be NULL (no destructor).  Returns 0,
 * TR_EINVAL (NULL out-pointer, zero or too large capacity, zero
 * elem_size), TR_ENOMEM (capacity * elem_size cannot be had). */
int tr_mpsc_new(tr_mpsc_tx **tx, tr_mpsc_rx **rx, size_t capacity, size_t elem_size);
int tr_mpsc_new_ex(tr_mpsc_tx **tx, tr_mpsc_rx **rx, size_t capacity, size_t elem_size,
                   const tr_chan_opts *opts);

/* An unbounded channel.  Allocates its first block.  TR_EINVAL, TR_ENOMEM. */
int tr_mpsc_unbounded_new(tr_mpsc_tx **tx, tr_mpsc_rx **rx, size_t elem_size);
int tr_mpsc_unbounded_new_ex(tr_mpsc_tx **tx, tr_mpsc_rx **rx, size_t elem_size,
                             const tr_chan_opts *opts);

/* ---- senders ----------------------------------------------------------------- */

/* Sends a copy of *value.  Bounded: waits (first come, first served) for a
 * free slot.  Unbounded: never waits and skips tr_wait_enter(), like
 * tokio's synchronous UnboundedSender::send.  Returns 0 (queued: not a
 * promise of delivery — the receiver may still drop it), TR_ECLOSED (the
 * receiver is closed or dropped, also while waiting), TR_ETIMEDOUT,
 * TR_ECANCELED, TR_ENOMEM (unbounded, no block), TR_EINVAL.  On every error
 * the value stays with the caller (unlike tokio's send, which loses it on
 * cancellation). */
int tr_mpsc_send(tr_mpsc_tx *tx, const void *value, int64_t deadline);

/* Never waits.  0, TR_ECLOSED (checked first), TR_EFULL, TR_ENOMEM,
 * TR_EINVAL; the value stays with the caller on error. */
int tr_mpsc_try_send(tr_mpsc_tx *tx, const void *value);

/* Reserves one slot (bounded only) into *permit, waiting for it first come,
 * first served.  *permit is overwritten (it needs no initialising; send
 * with or release a permit before reusing its storage).  Returns 0,
 * TR_ECLOSED, TR_ETIMEDOUT, TR_ECANCELED, TR_EINVAL (also on an unbounded
 * channel).  On error *permit is empty. */
int tr_mpsc_reserve(tr_mpsc_tx *tx, tr_mpsc_permit *permit, int64_t deadline);

/* Reserves n slots at once.  Slots are granted to the head waiter as they
 * free up and held until all n are there; a wait that fails or is
 * cancelled gives back what it had.  n == 0 succeeds with an empty permit
 * even when full (TR_ECLOSED if closed).  n > max capacity can never
 * succeed: TR_EINVAL at once (tokio returns its closed error there). */
int tr_mpsc_reserve_many(tr_mpsc_tx *tx, tr_mpsc_permit *permit, size_t n, int64_t deadline);

/* Never wait.  TR_ECLOSED, TR_EFULL (fewer free slots than asked),
 * TR_EINVAL.  try_reserve_many: n > max capacity gives TR_EFULL, checked
 * before closed, as tokio does; n == 0 succeeds unless closed. */
int tr_mpsc_try_reserve(tr_mpsc_tx *tx, tr_mpsc_permit *permit);
int tr_mpsc_try_reserve_many(tr_mpsc_tx *tx, tr_mpsc_permit *permit, size_t n);

/* Sends a copy of *value with one of the permit's slots.  Never waits and
 * never fails for a permit holding a slot, even after the receiver closed
 * (the value is still received) or was dropped (the value goes to the
 * destructor).  The permit is empty when its last slot is used.  Returns
 * 0, or TR_EINVAL for NULL arguments or an empty permit. */
int tr_mpsc_permit_send(tr_mpsc_permit *permit, const void *value);

/* Gives the permit's unused slots back (they go to the oldest waiting
 * sender first) and empties it.  Never waits.  0, also for an empty
 * permit; TR_EINVAL for NULL. */
int tr_mpsc_permit_release(tr_mpsc_permit *permit);

/* Slots the permit still holds (tokio's PermitIterator::len). */
size_t tr_mpsc_permit_len(const tr_mpsc_permit *permit);

/* Waits until the receiver is closed or dropped (tokio Sender::closed).
 * 0 at once if it already is; TR_ETIMEDOUT, TR_ECANCELED, TR_EINVAL. */
int tr_mpsc_tx_closed(tr_mpsc_tx *tx, int64_t deadline);

/* Whether the receiver closed or was dropped.  Never waits; false for
 * NULL. */
bool tr_mpsc_tx_is_closed(const tr_mpsc_tx *tx);

/* Whether two senders feed the same channel.  False if either is NULL. */
bool tr_mpsc_same_channel(const tr_mpsc_tx *a, const tr_mpsc_tx *b);

/* Free slots now / the capacity given at creation.  SIZE_MAX for an
 * unbounded channel, 0 for NULL.  Never wait. */
size_t tr_mpsc_capacity(const tr_mpsc_tx *tx);
size_t tr_mpsc_max_capacity(const tr_mpsc_tx *tx);

/* *out = another strong sender (strong count + 1).  0 or TR_EINVAL. */
int tr_mpsc_tx_clone(tr_mpsc_tx *tx, tr_mpsc_tx **out);

/* Gives the sender up and sets *tx to NULL.  When the last strong sender
 * goes (and no permit is outstanding), a waiting receiver is woken and
 * sees TR_ECLOSED once the queue is drained.  0, or TR_EINVAL for a NULL
 * pointer or a NULL *tx (a double drop).  Never waits. */
int tr_mpsc_tx_drop(tr_mpsc_tx **tx);

/* Weak senders: they do not keep the channel open.  downgrade/clone give a
 * new weak handle (weak count + 1); upgrade gives a strong sender if a
 * strong sender or a permit holding slots (tokio's OwnedPermit holds a
 * sender) is alive at that moment, else TR_ECLOSED — and once both are
 * gone it never succeeds again.  All return 0 or TR_EINVAL; none waits. */
int tr_mpsc_tx_downgrade(tr_mpsc_tx *tx, tr_mpsc_weak **out);
int tr_mpsc_weak_upgrade(tr_mpsc_weak *weak, tr_mpsc_tx **out);
int tr_mpsc_weak_clone(tr_mpsc_weak *weak, tr_mpsc_weak **out);
int tr_mpsc_weak_drop(tr_mpsc_weak **weak);

/* Strong senders (not counting permits) and weak senders.  0 for NULL. */
size_t tr_mpsc_tx_strong_count(const tr_mpsc_tx *tx);
size_t tr_mpsc_tx_weak_count(const tr_mpsc_tx *tx);
size_t tr_mpsc_weak_strong_count(const tr_mpsc_weak *weak);
size_t tr_mpsc_weak_weak_count(const tr_mpsc_weak *weak);

/* ---- the receiver ----------------------------------------------------------- */

/* Takes the oldest value into *out.  Waits while the queue is empty and
 * the channel is open.  Returns 0, TR_ECLOSED (every strong sender gone or
 * tr_mpsc_rx_close() called, no permit outstanding, queue drained),
 * TR_ETIMEDOUT, TR_ECANCELED (nothing taken), TR_EINVAL. */
int tr_mpsc_recv(tr_mpsc_rx *rx, void *out, int64_t deadline);

/* Takes up to max values into out[0..max) (elem_size bytes each) and
 * returns how many (> 0).  Waits like tr_mpsc_recv for the first one,
 * then takes what is queued.  max == 0 returns 0 at once.  Errors as
 * tr_mpsc_recv (TR_ECLOSED where tokio returns 0). */
int tr_mpsc_recv_many(tr_mpsc_rx *rx, void *out, size_t max, int64_t deadline);

/* Never waits.  0, TR_EEMPTY (nothing queued, but senders or permits
 * remain), TR_ECLOSED (as recv's), TR_EINVAL. */
int tr_mpsc_try_recv(tr_mpsc_rx *rx, void *out);

/* Closes the channel from the receiving side (idempotent): sends and
 * reservations fail with TR_ECLOSED from now on, waiting ones are woken
 * with it (giving back slots they were partly granted), tr_mpsc_tx_closed
 * returns.  Values already queued and values sent through permits still
 * outstanding remain receivable.  Never waits.  0 or TR_EINVAL. */
int tr_mpsc_rx_close(tr_mpsc_rx *rx);

/* Closes the channel, passes every queued value to the destructor (after
 * the lock is released), wakes waiting senders with TR_ECLOSED and sets
 * *rx to NULL.  0, or TR_EINVAL for NULL / a double drop.  Never waits. */
int tr_mpsc_rx_drop(tr_mpsc_rx **rx);

/* Queries; never wait.  is_closed: close() was called, or no strong sender
 * and no permit is left (values may still be queued).  len / is_empty:
 * queued values (reserved slots not counted).  0 / true for NULL. */
bool tr_mpsc_rx_is_closed(const tr_mpsc_rx *rx);
bool tr_mpsc_rx_is_empty(const tr_mpsc_rx *rx);
size_t tr_mpsc_rx_len(const tr_mpsc_rx *rx);
size_t tr_mpsc_rx_capacity(const tr_mpsc_rx *rx);
size_t tr_mpsc_rx_max_capacity(const tr_mpsc_rx *rx);
size_t tr_mpsc_rx_sender_strong_count(const tr_mpsc_rx *rx);
size_t tr_mpsc_rx_sender_weak_count(const tr_mpsc_rx *rx);

/* Introspection for tests and monitoring (a mailbox's depth, memory
 * held).  A snapshot: it may be stale as soon as it returns.  Waiter
 * counts may include a waiter that has just timed out and not yet left. */
typedef struct tr_mpsc_stats {
    size_t len;               /* values queued */
    size_t blocks;            /* unbounded: blocks held, cached ones included */
    size_t cached_blocks;     /* unbounded: emptied blocks kept for reuse */
    size_t waiting_senders;   /* senders and reservers queued for capacity */
    size_t waiting_receivers; /* parked receivers */
    size_t permits_out;       /* slots held by outstanding permits */
} tr_mpsc_stats;

/* Fills *out.  Never waits.  0 or TR_EINVAL. */
int tr_mpsc_rx_stats(const tr_mpsc_rx *rx, tr_mpsc_stats *out);

/* Blocks an unbounded channel holds now (stats.blocks); 0 for bounded or
 * NULL. */
size_t tr_mpsc_rx_blocks(const tr_mpsc_rx *rx);

/* ---- select clauses ---------------------------------------------------------- *
 * Each fills c for tr_select() and returns 0, or TR_EINVAL for bad
 * arguments — then c has no ops and tr_select() reports TR_EINVAL.  After
 * the select chose the clause, c->result is what the plain call returns. */

/* Receive one value into *out: 0 or TR_ECLOSED. */
int tr_mpsc_recv_clause(tr_clause *c, tr_mpsc_rx *rx, void *out);
/* Receive up to max values: the count or TR_ECLOSED (max == 0: 0 at once). */
int tr_mpsc_recv_many_clause(tr_clause *c, tr_mpsc_rx *rx, void *out, size_t max);
/* Send a copy of *value (read when the clause completes; keep it alive and
 * unchanged until tr_select returns): 0, TR_ECLOSED or TR_ENOMEM. */
int tr_mpsc_send_clause(tr_clause *c, tr_mpsc_tx *tx, const void *value);
/* Reserve 1 or n slots into *permit (emptied now): 0, TR_ECLOSED, TR_EINVAL. */
int tr_mpsc_reserve_clause(tr_clause *c, tr_mpsc_tx *tx, tr_mpsc_permit *permit);
int tr_mpsc_reserve_many_clause(tr_clause *c, tr_mpsc_tx *tx, tr_mpsc_permit *permit,
                                size_t n);
/* The receiver closed or was dropped: result 0. */
int tr_mpsc_tx_closed_clause(tr_clause *c, tr_mpsc_tx *tx);

#ifdef __cplusplus
}
#endif
#endif
