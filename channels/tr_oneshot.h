/* tr_oneshot.h — a channel for exactly one value (tokio::sync::oneshot).
 *
 * Why a struct the caller owns.  The actors layer answers every `call`
 * through a oneshot, and a call must allocate nothing: the reply slot
 * lives in the caller's frame (or in a pool).  So the primary form is a
 * tr_oneshot the caller declares and initialises; its two ends are not
 * separate objects but operations on it, each side ending explicitly:
 *
 *     tr_oneshot os;                      // caller's storage
 *     tr_oneshot_init(&os, sizeof(long), NULL);
 *     ...hand &os to the sender (another task, worker or thread)...
 *     long v;
 *     int rc = tr_oneshot_recv(&os, &v, tr_after_ms(100));
 *     tr_oneshot_rx_drop(&os);           // receiver's end of life
 *
 *     // sender side, elsewhere:
 *     tr_oneshot_send(os, &answer);       // sending ends the sender
 *     // or tr_oneshot_tx_drop(os) to give up without sending
 *
 * Sender and receiver may run on different workers or plain threads at
 * the same time; every operation is one short section under the struct's
 * spin lock, and the waits use the runtime's wait queue.  A receiver that
 * is parked when the value comes gets it copied straight into its buffer
 * (and a sender on the parked receiver's own worker does that without
 * the lock: see oneshot.c).  Each side is one party, as in tokio where
 * both ends take `&mut self`: the receiver's calls (recv, try_recv,
 * close, rx_drop, a recv clause in a select) must not overlap each other,
 * nor the sender's (send, tx_drop, closed) each other.
 *
 * Lifetime rule (precise).  The storage (and the buffer given to
 * tr_oneshot_init_buf) must stay valid until BOTH sides have ended:
 *   - the sender side ends when tr_oneshot_send() returns anything but
 *     TR_EINVAL (success or TR_ECLOSED), or tr_oneshot_tx_drop() returns 0;
 *   - the receiver side ends when tr_oneshot_rx_drop() returns 0.
 * A side's call touches the struct for the last time inside that call, so
 * once both calls have returned the storage may be freed, or reused after
 * tr_oneshot_reset().  Because the other side usually runs elsewhere, the
 * owner often cannot see its call return; tr_oneshot_set_release()
 * installs a hook that runs exactly once, on the thread of whichever side
 * ends last, after that side's last touch — a pool can recycle the slot
 * from there.  The receiver may also rely on this: if tr_oneshot_recv()
 * or tr_oneshot_try_recv() returned 0, or tr_oneshot_tx_ended() returned
 * true, the sender has ended and touches the struct no more.
 *
 * The heap form (tr_oneshot_new) is the simple case: two handles that free
 * the shared state when both have ended, through the same release hook.
 *
 * Values are copied in and out (elem_size bytes).  Values up to
 * TR_ONESHOT_INLINE bytes live inside the struct; larger ones need a
 * buffer from the caller (tr_oneshot_init_buf), so nothing is allocated.
 * With a destructor in the options, a value sent but never received is
 * destroyed exactly once, when the receiver is dropped.
 */
#ifndef TR_ONESHOT_H
#define TR_ONESHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tr_chan.h"
#include "tr_select.h"
#include "tr_wait.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Largest value kept inside the struct itself. */
#define TR_ONESHOT_INLINE 32

typedef struct tr_oneshot tr_oneshot;

/* Runs once, after both sides ended (see the lifetime rule above). */
typedef void (*tr_oneshot_release_fn)(tr_oneshot *os, void *ctx);

/* The caller's storage.  Every field is private: use the functions. */
struct tr_oneshot {
    /* what a request/reply touches, in its first 64 bytes */
    tr_spin lock_;
    uint32_t magic_;
    _Atomic uintptr_t state_; /* written under lock_, read lock-free */
    size_t size_;
    void *buf_;
    tr_waitq rxq_; /* receivers parked in recv (one, unless misused) */
    tr_oneshot_release_fn release_;
    tr_drop_fn drop_;
    /* the rest */
    tr_waitq txq_; /* the sender parked in closed() */
    void *drop_ctx_;
    void *release_ctx_;
    union {
        max_align_t align_;
        unsigned char bytes_[TR_ONESHOT_INLINE];
    } inline_;
};

/* ---- the caller-owned form ----------------------------------------------- */

/* Prepares os for one value of elem_size bytes (1..TR_ONESHOT_INLINE);
 * opts may be NULL.  Returns 0 or TR_EINVAL (NULL os, bad size).  Never
 * waits, never allocates. */
int tr_oneshot_init(tr_oneshot *os, size_t elem_size, const tr_chan_opts *opts);

/* The same with the value kept in buf (elem_size bytes, any size > 0,
 * suitably aligned for the value, valid as long as os).  TR_EINVAL for a
 * NULL os or buf or a zero size.  Never waits. */
int tr_oneshot_init_buf(tr_oneshot *os, void *buf, size_t elem_size,
                        const tr_chan_opts *opts);

/* Installs the hook run once both sides have ended (NULL removes it).
 * Call it before handing os to the other side.  Returns 0 or TR_EINVAL.
 * Never waits. */
int tr_oneshot_set_release(tr_oneshot *os, tr_oneshot_release_fn fn, void *ctx);

/* Makes an ended oneshot (both sides ended) ready for another value, with
 * the same size, buffer, options and hook.  Returns 0, TR_EBUSY if a side
 * is still alive, TR_EINVAL for an uninitialised os.  Never waits. */
int tr_oneshot_reset(tr_oneshot *os);

/* Sender: sends value (copied) and ends the sender side.  Never waits.
 * Returns 0 when the value was delivered or stored (which does not mean
 * it will be received: the receiver may drop it); TR_ECLOSED when the
 * receiver has closed or been dropped — the value stays with the caller
 * and the sender side has ended all the same; TR_EINVAL for NULL
 * arguments or a sender side that already ended (a second send). */
int tr_oneshot_send(tr_oneshot *os, const void *value);

/* Sender: ends the sender side without sending; the receiver then gets
 * TR_ECLOSED.  Returns 0, or TR_EINVAL if the side already ended.  Never
 * waits. */
int tr_oneshot_tx_drop(tr_oneshot *os);

/* Sender: waits until the receiver closes or is dropped.  May wait.
 * Returns 0, TR_ETIMEDOUT, TR_ECANCELED, or TR_EINVAL (NULL os, sender
 * side ended).  Cancel safe. */
int tr_oneshot_closed(tr_oneshot *os, int64_t deadline);

/* Sender: whether a send would fail (receiver closed or dropped).  False
 * for NULL.  Never waits. */
bool tr_oneshot_is_closed(tr_oneshot *os);

/* Whether the sender side has ended (sent, failed to send, or dropped).
 * When true the sender touches os no more.  Never waits. */
bool tr_oneshot_tx_ended(tr_oneshot *os);

/* Receiver: waits for the value and copies it into out.  May wait.
 * Returns 0 (value received; the receiver is now terminated), TR_ECLOSED
 * (the sender ended without a value, or the receiver closed before a
 * value came; also terminates), TR_ETIMEDOUT / TR_ECANCELED (nothing
 * taken, call again), TR_EINVAL (NULL arguments, receiver dropped, or
 * already terminated: tokio panics when a completed receiver is polled).
 * Cancel safe. */
int tr_oneshot_recv(tr_oneshot *os, void *out, int64_t deadline);

/* Receiver: takes the value if it is there.  Never waits.  Returns 0,
 * TR_EEMPTY (not sent yet, sender alive, not closed), TR_ECLOSED (sender
 * ended without a value, closed without a value, or value already taken),
 * TR_EINVAL (NULL arguments, receiver dropped). */
int tr_oneshot_try_recv(tr_oneshot *os, void *out);

/* Receiver: refuses any future send (it will return TR_ECLOSED) and wakes
 * the sender's closed().  A value sent before stays receivable.  No-op on
 * a terminated receiver.  Returns 0 or TR_EINVAL (receiver dropped).
 * Never waits. */
int tr_oneshot_close(tr_oneshot *os);

/* Receiver: ends the receiver side (closing it).  A value sent but not
 * received is passed to the destructor now, exactly once.  Returns 0 or
 * TR_EINVAL (already dropped).  Never waits. */
int tr_oneshot_rx_drop(tr_oneshot *os);

/* Receiver: tokio's is_terminated (a value or TR_ECLOSED was returned) and
 * is_empty (no value waiting).  Never wait. */
bool tr_oneshot_is_terminated(tr_oneshot *os);
bool tr_oneshot_is_empty(tr_oneshot *os);

/* Select clauses.  recv: c->result as tr_oneshot_recv, value in out.
 * closed: c->result 0 once the receiver closed (TR_EINVAL for an ended
 * sender).  Return 0, or TR_EINVAL for NULL arguments (then c->ops is
 * NULL, so tr_select() refuses the array).  Never wait. */
int tr_oneshot_recv_clause(tr_clause *c, tr_oneshot *os, void *out);
int tr_oneshot_closed_clause(tr_clause *c, tr_oneshot *os);

/* ---- the heap form: two handles, freed when both have ended ------------- */

typedef struct tr_oneshot_tx tr_oneshot_tx;
typedef struct tr_oneshot_rx tr_oneshot_rx;

/* Allocates a oneshot for values of elem_size bytes (any size > 0) and
 * returns its two ends.  Returns 0, TR_EINVAL, TR_ENOMEM.  Never waits. */
int tr_oneshot_new(tr_oneshot_tx **tx, tr_oneshot_rx **rx, size_t elem_size);
int tr_oneshot_new_ex(tr_oneshot_tx **tx, tr_oneshot_rx **rx, size_t elem_size,
                      const tr_chan_opts *opts);

/* As tr_oneshot_send; consumes the sender: *tx becomes NULL on every
 * outcome but TR_EINVAL. */
int tr_oneshot_tx_send(tr_oneshot_tx **tx, const void *value);
/* Drops the sender without sending (*tx = NULL).  TR_EINVAL if NULL. */
int tr_oneshot_tx_free(tr_oneshot_tx **tx);
int tr_oneshot_tx_closed(tr_oneshot_tx *tx, int64_t deadline);
int tr_oneshot_tx_closed_clause(tr_clause *c, tr_oneshot_tx *tx);
bool tr_oneshot_tx_is_closed(tr_oneshot_tx *tx);

/* As tr_oneshot_recv / try_recv / close / recv_clause. */
int tr_oneshot_rx_recv(tr_oneshot_rx *rx, void *out, int64_t deadline);
int tr_oneshot_rx_try_recv(tr_oneshot_rx *rx, void *out);
int tr_oneshot_rx_close(tr_oneshot_rx *rx);
int tr_oneshot_rx_recv_clause(tr_clause *c, tr_oneshot_rx *rx, void *out);
/* Drops the receiver (*rx = NULL), destroying an unreceived value.
 * TR_EINVAL if NULL. */
int tr_oneshot_rx_free(tr_oneshot_rx **rx);

#ifdef __cplusplus
}
#endif
#endif
