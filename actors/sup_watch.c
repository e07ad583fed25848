/* sup_watch.c — the supervisor's shutdown watch: the nodes that carry
 * TR_SUP_RUNNING / TR_SUP_STOPPING down a tree, and tr_sup_signal /
 * tr_sup_stopping for a child's own code.
 *
 * Every supervisor core has a node with a tr_watch_tx of int; a nested
 * supervisor's node is registered in its parent's, so a stop publishes
 * STOPPING on the whole subtree at once, under the nodes' mutexes, taken
 * top-down only (a node unregistering itself takes only its parent's, so
 * there is no cycle).  The value is set with send_modify, which updates
 * the watch even when nobody listens yet (a later subscriber sees it).
 * A child finds its record (and its receiver) through its end hook's ctx.
 */
#include "sup_internal.h"

#include <stdlib.h>

/* ---- the shutdown watch's nodes -------------------------------------------------- */

tr__sup_node *tr__sup_node_new(tr__sup_node *parent) {
    tr__sup_node *n = calloc(1, sizeof *n);
    if (!n)
        return NULL;
    int st = TR_SUP_RUNNING;
    tr_watch_rx *rx = NULL;
    if (tr_watch_new(&n->tx, &rx, sizeof(int), &st) != 0) {
        free(n);
        return NULL;
    }
    tr_watch_rx_drop(&rx);
    pthread_mutex_init(&n->mu, NULL);
    if (parent) {
        pthread_mutex_lock(&parent->mu);
        if (parent->nkids == parent->capkids) {
            size_t cap = parent->capkids ? parent->capkids * 2 : 4;
            tr__sup_node **k = realloc(parent->kids, cap * sizeof *k);
            if (!k) {
                pthread_mutex_unlock(&parent->mu);
                tr_watch_tx_drop(&n->tx);
                pthread_mutex_destroy(&n->mu);
                free(n);
                return NULL;
            }
            parent->kids = k;
            parent->capkids = cap;
        }
        parent->kids[parent->nkids++] = n;
        n->parent = parent;
        if (parent->state == TR_SUP_STOPPING) /* born into a stopping tree */
            n->state = TR_SUP_STOPPING;
        pthread_mutex_unlock(&parent->mu);
    }
    return n;
}

static void set_stopping(void *v, void *ctx) {
    (void)ctx;
    *(int *)v = TR_SUP_STOPPING;
}

/* STOPPING on n and every node below it (mutexes taken top-down). */
void tr__sup_node_publish(tr__sup_node *n) {
    pthread_mutex_lock(&n->mu);
    n->state = TR_SUP_STOPPING;
    tr_watch_send_modify(n->tx, set_stopping, NULL); /* updates with no receivers too */
    for (size_t i = 0; i < n->nkids; i++)
        tr__sup_node_publish(n->kids[i]);
    pthread_mutex_unlock(&n->mu);
}

void tr__sup_node_free(tr__sup_node *n) {
    if (!n)
        return;
    if (n->parent) {
        pthread_mutex_lock(&n->parent->mu);
        for (size_t i = 0; i < n->parent->nkids; i++)
            if (n->parent->kids[i] == n) {
                n->parent->kids[i] = n->parent->kids[--n->parent->nkids];
                break;
            }
        pthread_mutex_unlock(&n->parent->mu);
    }
    tr_watch_tx_drop(&n->tx);
    free(n->kids);
    pthread_mutex_destroy(&n->mu);
    free(n);
}

tr_watch_rx *tr_sup_signal(void) {
    tr_actor_ref me = tr_actor_self();
    if (tr_actor_ref_is_none(me))
        return NULL;
    tr__actor *a = tr__actor_lock(me);
    if (!a)
        return NULL;
    tr__child *k = a->ext && a->ext->on_end == tr__sup_hook ? a->ext->on_end_ctx : NULL;
    tr_spin_unlock(&a->slot->lock);
    return k ? k->sig : NULL;
}

bool tr_sup_stopping(void) {
    tr_watch_rx *rx = tr_sup_signal();
    int st = TR_SUP_RUNNING;
    if (rx)
        tr_watch_get(rx, &st);
    return st == TR_SUP_STOPPING;
}
