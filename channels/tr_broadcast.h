/* tr_broadcast.h — a multi-producer, multi-consumer broadcast channel.
 *
 * Every value sent is seen by every receiver that existed when it was sent,
 * as with tokio::sync::broadcast.  The channel keeps the last `capacity`
 * values (rounded up to a power of two) in a ring; a send never waits, it
 * overwrites the oldest value instead, and a receiver that was still owed
 * the overwritten values learns it on its next receive: TR_ELAGGED with the
 * number it missed, after which it carries on from the oldest value kept.
 *
 * Values.  Each receiver gets a copy (memcpy of elem_size bytes) of the one
 * value the channel stores.  The stored value is destroyed (passed to the
 * destructor of tr_chan_opts, if any) exactly once: when every receiver
 * counted at its send has received it, skipped it (lag) or been dropped; or
 * when a send overwrites it; or when the channel ends.  So:
 *  - Plain data (numbers, structs without owning pointers): nothing to do.
 *  - Values that own something shared by the receivers (a pointer to a
 *    reference-counted object): a receiver's bitwise copy is only borrowed
 *    and may dangle as soon as the last receiver has it.  Create the channel
 *    with tr_broadcast_new_clone(): the clone hook then runs on each
 *    receiver's copy while the stored value is still alive (take a
 *    reference there), and the receiver owns its copy, as a Rust receiver
 *    owns its T::clone().
 * The destructor and the clone hook may run while the channel's lock is
 * held, or while a send waits for the slot they work on: keep them short
 * (free(), a reference count), never wait in them and never call this
 * channel from them.
 *
 * Trade-offs taken: a receive that finds its value takes no lock: it reads
 * the slot like a seqlock (and, when a destructor is set, counts itself
 * off the slot with one compare-and-swap), so receivers on many cores do
 * not queue on one lock.  Values up to 64 bytes take that path; bigger ones
 * and channels with a clone hook receive under the channel's spin lock.  A
 * send is one short locked section and never allocates.  A send completes
 * the receive of every *parked* receiver itself (copies the value into its
 * buffer) and wakes only those; receivers that are running find the value
 * when they come back, so a burst of sends to busy receivers wakes nobody.
 * At most 2^24 - 2 receivers at once.
 *
 * Handles.  A sender handle may be cloned and used from any number of
 * tasks and threads at once.  A receiver is one cursor: use it from one
 * task or thread at a time (tokio's &mut self); tr_broadcast_resubscribe()
 * makes another.  Dropping the last sender closes the channel for the
 * receivers once they have read what is left; dropping the last receiver
 * makes sends fail (TR_ECLOSED) until someone subscribes again.
 *
 * Every call works from tasks on any worker and from plain threads.
 */
#ifndef TR_BROADCAST_H
#define TR_BROADCAST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tr_chan.h"
#include "tr_error.h"
#include "tr_select.h"
#include "tr_time.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tr_broadcast_tx tr_broadcast_tx;
typedef struct tr_broadcast_rx tr_broadcast_rx;

/* Makes the value at `value` (a fresh bitwise copy in a receiver's buffer)
 * the receiver's own, e.g. by taking a reference on what it points to.
 * ctx is the drop_ctx of the channel's tr_chan_opts. */
typedef void (*tr_broadcast_clone_fn)(void *value, void *ctx);

/* ---- creation ------------------------------------------------------------ */

/* Creates a channel keeping `capacity` values (rounded up to a power of
 * two) of elem_size bytes, with one sender *tx and one receiver *rx.
 * Returns TR_EINVAL (NULL out-pointer, capacity 0 or above SIZE_MAX / 2,
 * elem_size 0) or TR_ENOMEM; *tx and *rx are untouched on failure.  Never
 * waits. */
int tr_broadcast_new(tr_broadcast_tx **tx, tr_broadcast_rx **rx, size_t capacity,
                     size_t elem_size);

/* The same with options (the destructor); opts may be NULL. */
int tr_broadcast_new_ex(tr_broadcast_tx **tx, tr_broadcast_rx **rx, size_t capacity,
                        size_t elem_size, const tr_chan_opts *opts);

/* The same with a clone hook run on every copy a receiver gets (see the
 * top of this file); clone may be NULL (then this is tr_broadcast_new_ex). */
int tr_broadcast_new_clone(tr_broadcast_tx **tx, tr_broadcast_rx **rx, size_t capacity,
                           size_t elem_size, const tr_chan_opts *opts,
                           tr_broadcast_clone_fn clone);

/* ---- senders ------------------------------------------------------------- */

/* Sends a copy of *value to every current receiver.  Never waits.  Returns
 * 0 and, if receivers_out is not NULL, the number of receivers it went to;
 * TR_ECLOSED when there is no receiver (the value stays with the caller:
 * no destructor runs); TR_EINVAL for NULL arguments.  When the ring is full
 * the oldest value is overwritten (and destroyed if someone was still owed
 * it). */
int tr_broadcast_send(tr_broadcast_tx *tx, const void *value, size_t *receivers_out);

/* A new receiver that sees only values sent after this call; reopens a
 * channel whose receivers were all dropped.  Returns 0, TR_EINVAL or
 * TR_ENOMEM.  Never waits. */
int tr_broadcast_subscribe(tr_broadcast_tx *tx, tr_broadcast_rx **out);

/* Another sender handle for the same channel.  Returns 0 or TR_EINVAL.
 * Never waits. */
int tr_broadcast_tx_clone(tr_broadcast_tx *tx, tr_broadcast_tx **out);

/* Drops the sender *tx and sets *tx to NULL.  Dropping the last sender
 * closes the channel: receivers get what is left, then TR_ECLOSED.  Returns
 * 0, or TR_EINVAL for a NULL or already dropped (NULL) handle.  Never
 * waits. */
int tr_broadcast_tx_drop(tr_broadcast_tx **tx);

/* Live receivers; 0 for NULL.  Never waits. */
size_t tr_broadcast_receiver_count(const tr_broadcast_tx *tx);

/* Live sender handles; 0 for NULL.  Never waits. */
size_t tr_broadcast_sender_count(const tr_broadcast_tx *tx);

/* Values stored that some receiver counted at their send has not yet seen
 * (tokio's Sender::len: at most the rounded capacity); 0 for NULL.  Never
 * waits. */
size_t tr_broadcast_len(const tr_broadcast_tx *tx);

/* Whether every receiver has seen the newest value (true for NULL).  Never
 * waits. */
bool tr_broadcast_is_empty(const tr_broadcast_tx *tx);

/* The rounded capacity (the ring's length); 0 for NULL.  Never waits. */
size_t tr_broadcast_capacity(const tr_broadcast_tx *tx);

/* Waits until the channel has no receiver (at once if it has none now).
 * Returns 0, TR_ETIMEDOUT, TR_ECANCELED, TR_EINVAL.  May wait. */
int tr_broadcast_closed(tr_broadcast_tx *tx, int64_t deadline);

/* Whether two senders belong to one channel.  Never waits. */
bool tr_broadcast_same_channel(const tr_broadcast_tx *a, const tr_broadcast_tx *b);

/* ---- receivers ----------------------------------------------------------- */

/* Receives the next value into out (elem_size bytes).  May wait.  Returns:
 *   0            a value was copied into out;
 *   TR_ELAGGED   the receiver fell more than the capacity behind and values
 *                it was owed were overwritten; *missed (if missed is not
 *                NULL) gets how many, the cursor moves to the oldest value
 *                kept, and the next receive returns that value.  out is
 *                untouched.
 *   TR_ECLOSED   every sender is gone and this receiver has read everything
 *                left for it;
 *   TR_ETIMEDOUT, TR_ECANCELED  nothing was taken, the cursor is unchanged;
 *   TR_EINVAL    NULL rx or out.
 * *missed is written only with TR_ELAGGED. */
int tr_broadcast_recv(tr_broadcast_rx *rx, void *out, uint64_t *missed, int64_t deadline);

/* The same without waiting: TR_EEMPTY when this receiver has read
 * everything and senders remain. */
int tr_broadcast_try_recv(tr_broadcast_rx *rx, void *out, uint64_t *missed);

/* The receive as a select clause: c->result gets what tr_broadcast_recv()
 * would have returned (TR_ELAGGED and TR_ECLOSED included), out and *missed
 * likewise.  A clause that is not chosen takes nothing. */
void tr_broadcast_recv_clause(tr_clause *c, tr_broadcast_rx *rx, void *out, uint64_t *missed);

/* tr_broadcast_closed() as a select clause (result 0 when chosen). */
void tr_broadcast_closed_clause(tr_clause *c, tr_broadcast_tx *tx);

/* A new receiver for rx's channel, starting at the channel's current tail
 * (not at rx's cursor): it sees only values sent after this call.  Works
 * after the senders are gone (the new receiver then reports TR_ECLOSED).
 * Returns 0, TR_EINVAL or TR_ENOMEM.  Never waits. */
int tr_broadcast_resubscribe(tr_broadcast_rx *rx, tr_broadcast_rx **out);

/* Drops the receiver *rx and sets *rx to NULL.  The values it had not read
 * are released (destroyed if it was the last one owed them); dropping the
 * last receiver completes tr_broadcast_closed().  Returns 0 or TR_EINVAL.
 * Never waits.  Must not be called while another call uses rx. */
int tr_broadcast_rx_drop(tr_broadcast_rx **rx);

/* Values sent since this receiver's cursor, counting those already
 * overwritten (tokio's Receiver::len: above the capacity, the next receive
 * reports TR_ELAGGED); 0 for NULL.  Never waits. */
uint64_t tr_broadcast_rx_len(const tr_broadcast_rx *rx);

/* Whether tr_broadcast_rx_len() is 0 (true for NULL).  Never waits. */
bool tr_broadcast_rx_is_empty(const tr_broadcast_rx *rx);

/* Whether every sender is gone (values may still be left to read); true
 * for NULL.  Never waits. */
bool tr_broadcast_rx_is_closed(const tr_broadcast_rx *rx);

/* Whether two receivers belong to one channel.  Never waits. */
bool tr_broadcast_rx_same_channel(const tr_broadcast_rx *a, const tr_broadcast_rx *b);

#ifdef __cplusplus
}
#endif
#endif
