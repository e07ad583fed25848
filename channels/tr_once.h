/* tr_once.h — cells written once: tr_once (tokio::sync::OnceCell) and
 * tr_setonce (tokio::sync::SetOnce).
 *
 * Both copy one value of the element size given at init into a slot they
 * own, and hand out copies of it (a shallow copy: if the value owns
 * memory, the cell keeps owning it).  A destructor given in tr_chan_opts
 * runs on the stored value when the cell is destroyed, exactly once; a
 * value taken out with tr_once_take() belongs to the taker.
 *
 * tr_once: lazily initialised.  tr_once_get_or_init() runs one initializer
 * at a time; the other callers wait for its value.  If the initializer
 * fails (returns non-zero — including TR_ECANCELED when its own waits are
 * cancelled), its error goes back to its caller, the cell stays empty and
 * the next waiter (first come, first served) runs its own initializer.
 *
 * tr_setonce: "an event with a value".  tr_setonce_set() succeeds once;
 * tr_setonce_wait() waits until it has.  There is no "being initialised"
 * state: the value is stored and published in one locked section.
 *
 * Error codes: a set on a cell that already holds a value returns
 * TR_EEXIST (a get on an empty cell, TR_EEMPTY).  TR_EBUSY means a
 * tr_once initializer is running right now.
 *
 * Works from tasks on any worker and from plain threads.
 */
#ifndef TR_ONCE_H
#define TR_ONCE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tr_chan.h"
#include "tr_select.h"
#include "tr_wait.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- tr_once: OnceCell ------------------------------------------------------- */

/* Public only so that callers can own it; use the functions. */
typedef struct tr_once {
    tr_spin lock;
    int state;          /* private: empty / initialising / set */
    size_t elem_size;
    void *value;        /* the slot, elem_size bytes */
    void *owner;        /* who runs the initializer, to catch recursion */
    tr_chan_opts opts;
    tr_waitq waiters;   /* get_or_init callers waiting for the initializer */
    uint32_t magic;
} tr_once;

/* Runs to produce the value: writes elem_size bytes to value_out and
 * returns 0, or returns a non-zero error (a negative TR_E... code is
 * expected) and the cell stays empty.  It may wait. */
typedef int (*tr_once_init_fn)(void *value_out, void *ctx);

/* Makes an empty cell for values of elem_size bytes.  opts (may be NULL)
 * gives the destructor run on the stored value by tr_once_destroy().
 * Never waits.  Returns 0, TR_EINVAL (NULL o, elem_size 0), TR_ENOMEM. */
int tr_once_init(tr_once *o, size_t elem_size, const tr_chan_opts *opts);

/* Drops the stored value (if any) through the destructor and frees the
 * slot.  Never waits.  Returns 0; TR_EINVAL for NULL or a cell not
 * initialised; TR_EBUSY, doing nothing, while an initializer runs. */
int tr_once_destroy(tr_once *o);

/* Whether the cell holds a value.  Never waits; false for NULL. */
bool tr_once_initialized(tr_once *o);

/* Copies the value to out.  Never waits.  Returns 0, TR_EEMPTY if the cell
 * holds none (also while it is being initialised), TR_EINVAL. */
int tr_once_get(tr_once *o, void *out);

/* Stores *value if the cell is empty (the caller's value then belongs to
 * the cell).  Wakes callers waiting in get_or_init.  Never waits.  Returns
 * 0; TR_EEXIST if it already holds a value and TR_EBUSY while an
 * initializer runs (the value stays with the caller in both); TR_EINVAL. */
int tr_once_set(tr_once *o, const void *value);

/* Copies the value to out (out may be NULL), first running
 * init(slot, ctx) if the cell is empty.  Only one initializer runs at a
 * time; other callers wait (FIFO) and then copy its value, or — if it
 * failed — the next of them runs its own.  The deadline bounds the waiting
 * for other initializers, not init itself (pass it through ctx if init
 * waits).  May wait.  Returns 0; init's own error if this caller's init
 * failed; TR_ETIMEDOUT / TR_ECANCELED while waiting; TR_EDEADLK if called
 * from inside this cell's initializer; TR_EINVAL (NULL o or init). */
int tr_once_get_or_init(tr_once *o, tr_once_init_fn init, void *ctx, void *out,
                        int64_t deadline);

/* Moves the value out (to out, or through the destructor when out is
 * NULL) and leaves the cell empty, ready to be initialised again.  Never
 * waits.  Returns 0, TR_EEMPTY if it holds none, TR_EBUSY while an
 * initializer runs, TR_EINVAL. */
int tr_once_take(tr_once *o, void *out);

/* ---- tr_setonce: SetOnce ----------------------------------------------------- */

typedef struct tr_setonce {
    tr_spin lock;
    atomic_bool set;    /* published with release once the slot is written */
    size_t elem_size;
    void *value;
    tr_chan_opts opts;
    tr_waitq waiters;
    uint32_t magic;
} tr_setonce;

/* Makes an unset cell.  Never waits.  Returns 0, TR_EINVAL (NULL s,
 * elem_size 0), TR_ENOMEM. */
int tr_setonce_init(tr_setonce *s, size_t elem_size, const tr_chan_opts *opts);

/* Drops the value (if set) through the destructor and frees the slot.
 * Never waits.  Returns 0; TR_EINVAL; TR_EBUSY, doing nothing, while
 * callers wait in it. */
int tr_setonce_destroy(tr_setonce *s);

/* Whether it is set.  Never waits; false for NULL. */
bool tr_setonce_initialized(tr_setonce *s);

/* Stores *value and wakes every waiter; exactly one set ever succeeds.
 * Never waits.  Returns 0, TR_EEXIST if already set (the value stays with
 * the caller), TR_EINVAL. */
int tr_setonce_set(tr_setonce *s, const void *value);

/* Copies the value to out (out may be NULL).  Never waits (no lock once
 * set).  Returns 0, TR_EEMPTY if not set yet, TR_EINVAL. */
int tr_setonce_get(tr_setonce *s, void *out);

/* Waits until the cell is set, then copies the value to out (may be
 * NULL).  Cancel safe.  May wait.  Returns 0, TR_ETIMEDOUT, TR_ECANCELED,
 * TR_EINVAL. */
int tr_setonce_wait(tr_setonce *s, void *out, int64_t deadline);

/* The same wait as a select clause (out may be NULL); c->result is 0 when
 * it wins.  Returns 0, or TR_EINVAL (c->ops is then NULL). */
int tr_setonce_wait_clause(tr_clause *c, tr_setonce *s, void *out);

#ifdef __cplusplus
}
#endif
#endif
