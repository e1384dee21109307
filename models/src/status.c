/* status.c: status strings and the per-thread detail message behind fleet_model_last_error(). */
#include "model_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char fm_error_detail[512] = "no error";

const char *fleet_model_strerror(fleet_model_status status)
{
    switch (status) {
    case FLEET_MODEL_OK:
        return "success";
    case FLEET_MODEL_EINVAL:
        return "invalid argument";
    case FLEET_MODEL_ENOMEM:
        return "out of memory";
    case FLEET_MODEL_ESYSERR:
        return "system error";
    case FLEET_MODEL_EMALFORMED:
        return "malformed model";
    case FLEET_MODEL_EUNSUPPORTED:
        return "unsupported operator or attribute";
    case FLEET_MODEL_ESHAPE:
        return "tensor shape mismatch";
    case FLEET_MODEL_ENOTFOUND:
        return "not found";
    case FLEET_MODEL_ETOOBIG:
        return "too big";
    case FLEET_MODEL_EBACKEND:
        return "XNNPACK backend error";
    }
    return "unknown status";
}

const char *fleet_model_last_error(void)
{
    return fm_error_detail;
}

fleet_model_status fm_fail(fleet_model_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    /* Through a copy: an argument may be the last error itself, wrapped in a new one. */
    char text[sizeof fm_error_detail];
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    memcpy(fm_error_detail, text, sizeof text);
    return status;
}

fleet_model_status fm_fail_node(const fm_node *node, fleet_model_status status, const char *fmt,
                                ...)
{
    char reason[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    return fm_fail(status, "node '%s' (%s): %s", node->name, node->op_type, reason);
}
