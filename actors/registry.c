/* registry.c — process-wide names for actors.
 *
 * A chained hash table under one mutex: names are looked up when a program
 * starts talking to a service, not per message, so a lock is fine and keeps
 * register / unregister / "the actor died" trivially consistent.  The
 * actor's extension block holds the same name string, so its death can
 * forget the name without a search; a name is only forgotten if it still
 * names that actor (it may have been unregistered and taken by another).
 *
 * Lock order: the registry mutex, then a slot lock (register).  A dying
 * actor drops its slot lock before it comes here.
 */
#include "internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct regent {
    struct regent *next;
    tr_actor_ref ref;
    char *name; /* shared with the actor's ext->name */
} regent;

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static regent **buckets;
static size_t nbuckets, nentries;

static size_t hash_name(const char *s) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211ull;
    return (size_t)h;
}

static regent **find(const char *name) {
    if (!nbuckets)
        return NULL;
    regent **p = &buckets[hash_name(name) & (nbuckets - 1)];
    while (*p && strcmp((*p)->name, name) != 0)
        p = &(*p)->next;
    return p;
}

static bool grow(void) {
    size_t n = nbuckets ? nbuckets * 2 : 64;
    regent **b = calloc(n, sizeof *b);
    if (!b)
        return false;
    for (size_t i = 0; i < nbuckets; i++) {
        regent *e = buckets[i];
        while (e) {
            regent *next = e->next;
            size_t j = hash_name(e->name) & (n - 1);
            e->next = b[j];
            b[j] = e;
            e = next;
        }
    }
    free(buckets);
    buckets = b;
    nbuckets = n;
    return true;
}

static bool valid_name(const char *name) {
    return name && name[0] && strlen(name) < sizeof(((tr_actor_info *)0)->name);
}

int tr__registry_add(tr_actor_ref ref, const char *name) {
    if (!valid_name(name))
        return TR_EINVAL;
    pthread_mutex_lock(&reg_mu);
    int rc = 0;
    regent **p = find(name);
    if (p && *p) {
        rc = TR_EEXIST;
        goto out;
    }
    if (nentries + 1 > nbuckets && !grow()) {
        rc = TR_ENOMEM;
        goto out;
    }
    regent *e = malloc(sizeof *e);
    char *copy = strdup(name);
    if (!e || !copy) {
        free(e);
        free(copy);
        rc = TR_ENOMEM;
        goto out;
    }
    tr__actor *a = tr__actor_lock(ref);
    if (!a) {
        rc = TR_EDOWN;
    } else {
        tr__ext *x = tr__ext_get(a);
        if (!x)
            rc = TR_ENOMEM;
        else if (x->name)
            rc = TR_EEXIST; /* one name per actor */
        else
            x->name = copy;
        tr_spin_unlock(&a->slot->lock);
    }
    if (rc) {
        free(e);
        free(copy);
        goto out;
    }
    e->ref = ref;
    e->name = copy;
    p = find(name);
    e->next = *p;
    *p = e;
    nentries++;
out:
    pthread_mutex_unlock(&reg_mu);
    return rc;
}

int tr_actor_register(tr_actor_ref ref, const char *name) {
    if (tr_actor_ref_is_none(ref))
        return TR_EINVAL;
    return tr__registry_add(ref, name);
}

int tr_actor_unregister(const char *name) {
    if (!name)
        return TR_EINVAL;
    pthread_mutex_lock(&reg_mu);
    regent **p = find(name);
    regent *e = p ? *p : NULL;
    if (!e) {
        pthread_mutex_unlock(&reg_mu);
        return TR_EDOWN;
    }
    *p = e->next;
    nentries--;
    /* The actor drops its copy (the same string) unless it is dying, in
     * which case its death finds the name gone and frees it. */
    char *free_me = NULL;
    tr__actor *a = tr__actor_lock(e->ref);
    if (a) {
        if (a->ext && a->ext->name == e->name) {
            a->ext->name = NULL;
            free_me = e->name;
        }
        tr_spin_unlock(&a->slot->lock);
    }
    pthread_mutex_unlock(&reg_mu);
    free(free_me);
    free(e);
    return 0;
}

void tr__registry_forget(char *name, tr_actor_ref ref) {
    pthread_mutex_lock(&reg_mu);
    regent **p = find(name);
    regent *e = p ? *p : NULL;
    if (e && e->name == name && tr_actor_ref_eq(e->ref, ref)) {
        *p = e->next;
        nentries--;
        free(e);
    }
    pthread_mutex_unlock(&reg_mu);
    free(name);
}

int tr_actor_whereis(const char *name, tr_actor_ref *out) {
    if (!name || !out)
        return TR_EINVAL;
    *out = TR_ACTOR_NONE;
    pthread_mutex_lock(&reg_mu);
    regent **p = find(name);
    int rc = TR_EDOWN;
    if (p && *p) {
        *out = (*p)->ref;
        rc = 0;
    }
    pthread_mutex_unlock(&reg_mu);
    return rc;
}
