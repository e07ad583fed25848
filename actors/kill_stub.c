/* kill_stub.c — TEMPORARY stand-in for tr__actor_kill_hard until the "kill"
 * branch (which owns it in actor.c/life.c) is merged into main.  It only
 * cancels (tr_actor_kill): a handler that ignores TR_ECANCELED is not
 * killed by it.  Delete this file (and its line in sup.am) after merging. */
#include "internal.h"

int tr__actor_kill_hard(tr_actor_ref r) { return tr_actor_kill(r); }

