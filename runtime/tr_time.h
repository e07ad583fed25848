/* tr_time.h — the monotonic clock and deadlines.
 *
 * Every troupe call that can wait takes a deadline: an absolute point on the
 * monotonic clock in nanoseconds, the way libdill does it.  Absolute rather
 * than relative because a loop that retries ("wait again until the same
 * deadline") then needs no arithmetic, and because a deadline can be handed
 * down through several calls unchanged.  TR_NEVER waits without limit; any
 * deadline in the past means "do not wait at all".
 */
#ifndef TR_TIME_H
#define TR_TIME_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The deadline that never comes. */
#define TR_NEVER INT64_MAX

/* Nanoseconds on the monotonic clock (CLOCK_MONOTONIC).  Never waits. */
int64_t tr_now(void);

/* Deadlines relative to now, saturating at TR_NEVER.  Never wait. */
int64_t tr_after_ns(int64_t ns);
int64_t tr_after_us(int64_t us);
int64_t tr_after_ms(int64_t ms);

#ifdef __cplusplus
}
#endif
#endif
