/* sup_json_internal.h — what the JSON tree files share (sup_json.c: the
 * type registry, the translation and tr_sup_start_json; sup_json_check.c:
 * the validation).  Not installed.
 */
#ifndef TR_SUP_JSON_INTERNAL_H
#define TR_SUP_JSON_INTERNAL_H

#include <stdbool.h>

#include "tr_actor.h"

/* The type registered under name, or NULL.  *wrapped (if not NULL) gets the
 * registry's copy of it whose init unwraps a tr__jarg (see sup_json.c): the
 * type a static JSON child is started with.  Never waits. */
const tr_actor_type *tr__sup_json_lookup(const char *name, const tr_actor_type **wrapped);

/* The words the documents use, in enum order (tr_sup.h): NULL-terminated. */
extern const char *const tr__sup_json_strategies[];
extern const char *const tr__sup_json_restarts[];
extern const char *const tr__sup_json_autoshut[];
extern const char *const tr__sup_json_overflows[];

/* The index of s in words, or -1. */
int tr__sup_json_word(const char *const *words, const char *s);

#endif
