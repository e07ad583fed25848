/* kill_stub.c — TEMPORARY stand-in for tr__actor_kill_hard until the "kill"
 * branch (which owns it in actor.c/life.c) is merged into main.  It only
 * cancels (tr_actor_kill): a handler that ignores TR_ECANCELED is not
 * killed by it.  Delete this file (and its line in sup.am) after merging. */
#include "internal.h"

int tr__actor_kill_hard(tr_actor_ref r) { return tr_actor_kill(r); }

/* The same for cleanups (runtime/, also the kill branch's): registered
 * nowhere, so a kill never runs them; pop runs one when asked to. */
void tr_cleanup_push(tr_cleanup *c, void (*fn)(void *arg), void *arg) {
    c->next = NULL;
    c->fn = fn;
    c->arg = arg;
}

void tr_cleanup_pop(tr_cleanup *c, bool run) {
    if (run)
        c->fn(c->arg);
}
