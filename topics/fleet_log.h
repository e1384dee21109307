/* fleet_log.h: levelled, timestamped log lines on stderr for the fleet daemons. */
#ifndef FLEET_LOG_H
#define FLEET_LOG_H

enum { FLEET_LOG_ERROR = 0, FLEET_LOG_WARN, FLEET_LOG_INFO, FLEET_LOG_DEBUG };

/* Prints "2026-11-22T10:00:00 program level: message" when level <= threshold. */
void fleet_log(const char *program, int level, int threshold, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
