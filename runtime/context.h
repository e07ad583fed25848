/* context.h — switching stacks (private).
 *
 * A context is the saved stack pointer of a suspended flow of control; the
 * callee-saved registers are pushed on that stack before the switch.  The
 * assembly versions (context_x86_64.S, context_aarch64.S) save only what
 * the ABI makes callee-saved, which is what makes a switch cost a few
 * nanoseconds; the floating-point control words (rounding mode) are not
 * saved, so tasks share their worker thread's.  The portable fallback,
 * picked by configure where there is no assembly, uses ucontext and is
 * about a hundred times slower but runs anywhere POSIX does.
 */
#ifndef TR_CONTEXT_H
#define TR_CONTEXT_H

#include <stddef.h>

#include "config.h"

#ifdef TR_CONTEXT_UCONTEXT
#include <ucontext.h>
typedef struct tr_ctx {
    ucontext_t uc;
} tr_ctx;
#else
typedef struct tr_ctx {
    void *sp;
} tr_ctx;
#endif

/* Prepares ctx so that switching to it calls fn(arg) on the stack
 * [lo, lo + size).  fn must never return: it ends by switching away. */
void tr__ctx_make(tr_ctx *ctx, void *lo, size_t size, void (*fn)(void *), void *arg);

/* Saves the current flow in *from and resumes *to. */
void tr__ctx_switch(tr_ctx *from, tr_ctx *to);

#endif
