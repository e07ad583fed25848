/* context.c — building a fresh context on a stack.
 *
 * The switch itself is assembly (or swapcontext); what is left in C is
 * laying out a new stack so that the first switch to it "returns" into
 * tr__ctx_entry with the entry function and its argument in registers.
 */
#include <stdint.h>
#include <string.h>

#include "context.h"

#if defined(TR_CONTEXT_UCONTEXT)

/* makecontext passes ints; split the pointers into halves. */
static void uc_entry(unsigned fh, unsigned fl, unsigned ah, unsigned al) {
    void (*fn)(void *) = (void (*)(void *))(((uintptr_t)fh << 32) | fl);
    void *arg = (void *)(((uintptr_t)ah << 32) | al);
    fn(arg);
}

void tr__ctx_make(tr_ctx *ctx, void *lo, size_t size, void (*fn)(void *), void *arg) {
    uintptr_t f = (uintptr_t)fn, a = (uintptr_t)arg;
    getcontext(&ctx->uc);
    ctx->uc.uc_stack.ss_sp = lo;
    ctx->uc.uc_stack.ss_size = size;
    ctx->uc.uc_link = NULL;
    makecontext(&ctx->uc, (void (*)(void))uc_entry, 4, (unsigned)(f >> 32), (unsigned)f,
                (unsigned)(a >> 32), (unsigned)a);
}

void tr__ctx_switch(tr_ctx *from, tr_ctx *to) { swapcontext(&from->uc, &to->uc); }

#elif defined(__x86_64__)

void tr__ctx_entry(void);

void tr__ctx_make(tr_ctx *ctx, void *lo, size_t size, void (*fn)(void *), void *arg) {
    uintptr_t top = ((uintptr_t)lo + size) & ~(uintptr_t)15;
    void **sp = (void **)top;
    *--sp = (void *)tr__ctx_entry;   /* the switch's ret lands there with rsp = top */
    *--sp = NULL;                    /* rbp */
    *--sp = NULL;                    /* rbx */
    *--sp = (void *)fn;              /* r12 */
    *--sp = arg;                     /* r13 */
    *--sp = NULL;                    /* r14 */
    *--sp = NULL;                    /* r15 */
    ctx->sp = sp;
}

#elif defined(__aarch64__)

void tr__ctx_entry(void);

void tr__ctx_make(tr_ctx *ctx, void *lo, size_t size, void (*fn)(void *), void *arg) {
    uintptr_t top = ((uintptr_t)lo + size) & ~(uintptr_t)15;
    void **frame = (void **)(top - 160);
    memset(frame, 0, 160);
    frame[0] = (void *)fn;             /* x19 */
    frame[1] = arg;                    /* x20 */
    frame[11] = (void *)tr__ctx_entry; /* x30 */
    ctx->sp = frame;
}

#else
#error "no assembly context switch for this CPU: configure --with-context=ucontext"
#endif
