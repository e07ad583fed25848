/* context_x86_64.S — the task switch for x86-64 (System V ABI).
 *
 * Pushes the six callee-saved registers, swaps stack pointers, pops the
 * other side's six and returns into it.  A new context is a stack laid out
 * as if it had been switched away from just before tr__ctx_entry, with the
 * entry function in r12 and its argument in r13.
 */
#if defined(__x86_64__)
        .text
        .globl  tr__ctx_switch
        .hidden tr__ctx_switch
        .type   tr__ctx_switch, @function
        .p2align 4
/* void tr__ctx_switch(tr_ctx *from (rdi), tr_ctx *to (rsi)) */
tr__ctx_switch:
        .cfi_startproc
        pushq   %rbp
        pushq   %rbx
        pushq   %r12
        pushq   %r13
        pushq   %r14
        pushq   %r15
        movq    %rsp, (%rdi)
        movq    (%rsi), %rsp
        popq    %r15
        popq    %r14
        popq    %r13
        popq    %r12
        popq    %rbx
        popq    %rbp
        ret
        .cfi_endproc
        .size   tr__ctx_switch, .-tr__ctx_switch

        .globl  tr__ctx_entry
        .hidden tr__ctx_entry
        .type   tr__ctx_entry, @function
        .p2align 4
/* First instruction a new context runs: rsp is 16-byte aligned here.  fn
 * never returns, so it is jumped to rather than called, with a null return
 * address pushed in place of a call's (the ABI's alignment at entry, and
 * the end of the stack for unwinders).  A call would leave an entry on the
 * CPU's return-stack predictor that no return ever consumes, and every
 * return after the task's last switch would then be mispredicted, in the
 * task switched to, until that stack realigned. */
tr__ctx_entry:
        .cfi_startproc
        .cfi_undefined rip
        movq    %r13, %rdi
        pushq   $0
        jmpq    *%r12
        .cfi_endproc
        .size   tr__ctx_entry, .-tr__ctx_entry
#endif
        .section .note.GNU-stack,"",@progbits
