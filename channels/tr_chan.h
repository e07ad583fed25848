/* tr_chan.h — what every troupe channel shares: how values are cleaned up.
 *
 * A channel copies values of one element size in and out of its slots,
 * the way tokio's `channel::<T>` is made for one T.  C has no Drop, so a
 * channel whose values own resources (a heap string, an fd) is given a
 * destructor: it runs on every value the channel has to throw away —
 * queued when the last receiver goes, overwritten in a broadcast or a
 * watch, still in a oneshot nobody received.  Every value sent is thus
 * either received by someone or passed to `drop` exactly once.
 */
#ifndef TR_CHAN_H
#define TR_CHAN_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Destroys one value in place (free what it owns; not the slot itself). */
typedef void (*tr_drop_fn)(void *value, void *ctx);

typedef struct tr_chan_opts {
    tr_drop_fn drop; /* NULL: values own nothing */
    void *drop_ctx;  /* passed to drop */
} tr_chan_opts;

#ifdef __cplusplus
}
#endif
#endif
