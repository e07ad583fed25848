/* tr_error.h — troupe's error codes.
 *
 * Every troupe function that can fail returns an int: 0 (TR_OK) on success or
 * a negative TR_E... code.  Codes that have an errno twin *are* that errno,
 * negated (TR_ETIMEDOUT == -ETIMEDOUT), so an I/O helper can hand a system
 * error straight back and tr_strerror() still names it.  troupe's own
 * conditions (a closed channel, a lagging receiver, ...) live below -4000,
 * far from any errno, the way libuv keeps UV_EOF apart.
 */
#ifndef TR_ERROR_H
#define TR_ERROR_H

#include <errno.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TR_OK 0

/* Twins of errno values. */
#define TR_EINVAL    (-EINVAL)    /* a bad argument; nothing was done */
#define TR_ENOMEM    (-ENOMEM)    /* memory, a stack or a mapping could not be had */
#define TR_ETIMEDOUT (-ETIMEDOUT) /* the deadline passed first */
#define TR_ECANCELED (-ECANCELED) /* the calling task has been cancelled */
#define TR_EDEADLK   (-EDEADLK)   /* waiting would deadlock (own lock, call cycle) */
#define TR_EAGAIN    (-EAGAIN)    /* try again later (non-blocking I/O) */
#define TR_EPERM     (-EPERM)     /* not allowed from this context */
#define TR_EBUSY     (-EBUSY)     /* the object is in use */
#define TR_EEXIST    (-EEXIST)    /* already set (a once cell, a name) */

/* troupe's own conditions. */
#define TR_ECLOSED   (-4001) /* the other side is gone or the object is closed */
#define TR_EFULL     (-4002) /* no capacity right now */
#define TR_EEMPTY    (-4003) /* nothing to take right now */
#define TR_ELAGGED   (-4004) /* a broadcast receiver fell behind */
#define TR_EDOWN     (-4005) /* the actor is gone */
#define TR_ESHUTDOWN (-4006) /* the runtime is shutting down */

/* A short English description of code (never NULL).  Also names negated
 * errno values that the I/O helpers return. */
const char *tr_strerror(int code);

/* The symbolic name, e.g. "TR_ECLOSED" (never NULL). */
const char *tr_strerror_name(int code);

#ifdef __cplusplus
}
#endif
#endif
