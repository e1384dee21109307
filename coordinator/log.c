/* log.c: the coordinator's error detail and levelled logging on stderr. */
#include "internal.h"

#include "fleet_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char coord_error[384] = "no error";

fleet_coordinator_status coord_fail(fleet_coordinator_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    /* Through a copy: an argument may be the last error itself, wrapped in a new one. */
    char text[sizeof coord_error];
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    memcpy(coord_error, text, sizeof text);
    return status;
}

const char *fleet_coordinator_last_error(void)
{
    return coord_error;
}

const char *fleet_coordinator_strerror(fleet_coordinator_status status)
{
    static const char *const text[] = {"success", "invalid configuration", "out of memory",
                                       "model error", "broker unreachable"};
    return (size_t)status < sizeof text / sizeof text[0] ? text[status] : "unknown status";
}

void coord_log(int level, int threshold, const char *fmt, ...)
{
    if (level > threshold) /* debug lines sit on per-message paths: no formatting for nothing */
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fleet_log("fleet-coordinator", level, threshold, "%s", line);
}
