/* error.c — names and descriptions for TR_E... codes.
 *
 * Kept as one switch so that adding a code means adding two lines here and
 * nothing else; errno twins fall through to strerror so that the I/O helpers
 * can return any -errno without a table of their own.
 */
#include <string.h>

#include "tr_error.h"

const char *tr_strerror(int code) {
    switch (code) {
    case TR_OK:        return "success";
    case TR_EINVAL:    return "invalid argument";
    case TR_ENOMEM:    return "out of memory";
    case TR_ETIMEDOUT: return "deadline expired";
    case TR_ECANCELED: return "task cancelled";
    case TR_EDEADLK:   return "waiting would deadlock";
    case TR_EAGAIN:    return "resource temporarily unavailable";
    case TR_EPERM:     return "operation not permitted here";
    case TR_EBUSY:     return "resource busy";
    case TR_EEXIST:    return "already set";
    case TR_ECLOSED:   return "channel closed";
    case TR_EFULL:     return "no available capacity";
    case TR_EEMPTY:    return "nothing available";
    case TR_ELAGGED:   return "receiver lagged behind";
    case TR_EDOWN:     return "actor is down";
    case TR_ESHUTDOWN: return "runtime is shutting down";
    }
    if (code < 0 && code > -4000)
        return strerror(-code);
    return "unknown error";
}

const char *tr_strerror_name(int code) {
    switch (code) {
    case TR_OK:        return "TR_OK";
    case TR_EINVAL:    return "TR_EINVAL";
    case TR_ENOMEM:    return "TR_ENOMEM";
    case TR_ETIMEDOUT: return "TR_ETIMEDOUT";
    case TR_ECANCELED: return "TR_ECANCELED";
    case TR_EDEADLK:   return "TR_EDEADLK";
    case TR_EAGAIN:    return "TR_EAGAIN";
    case TR_EPERM:     return "TR_EPERM";
    case TR_EBUSY:     return "TR_EBUSY";
    case TR_EEXIST:    return "TR_EEXIST";
    case TR_ECLOSED:   return "TR_ECLOSED";
    case TR_EFULL:     return "TR_EFULL";
    case TR_EEMPTY:    return "TR_EEMPTY";
    case TR_ELAGGED:   return "TR_ELAGGED";
    case TR_EDOWN:     return "TR_EDOWN";
    case TR_ESHUTDOWN: return "TR_ESHUTDOWN";
    }
    return "TR_E?";
}
