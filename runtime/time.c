/* time.c — the one clock troupe uses.
 *
 * CLOCK_MONOTONIC through the vDSO costs about 20 ns and never jumps with
 * the wall clock, which is what deadlines need.  The relative helpers
 * saturate so that tr_after_ms(INT64_MAX) is TR_NEVER rather than a
 * deadline in the past.
 */
#include <time.h>

#include "tr_time.h"

int64_t tr_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t tr_after_ns(int64_t ns) {
    int64_t now = tr_now();
    if (ns <= 0)
        return now;
    if (ns >= TR_NEVER - now)
        return TR_NEVER;
    return now + ns;
}

static int64_t scaled(int64_t v, int64_t unit) {
    if (v >= TR_NEVER / unit)
        return TR_NEVER;
    return tr_after_ns(v * unit);
}

int64_t tr_after_us(int64_t us) { return scaled(us, 1000); }
int64_t tr_after_ms(int64_t ms) { return scaled(ms, 1000000); }
