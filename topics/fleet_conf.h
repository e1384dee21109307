/* fleet_conf.h: the daemons' `key = value` configuration, command lines and signals. */
#ifndef FLEET_CONF_H
#define FLEET_CONF_H

#include <stddef.h>
#include <stdint.h>

/* Called for every `key = value` line; returns 0, or -1 with a message in detail. */
typedef int (*fleet_conf_setter)(void *ctx, const char *key, const char *value, char *detail,
                                 size_t detail_size);

/* Reads path: blank lines and lines starting with '#' are skipped, whitespace around keys
 * and values is trimmed. Returns 0, or -1 with "path:line: reason" in error. */
int fleet_conf_read(const char *path, fleet_conf_setter set, void *ctx, char *error,
                    size_t error_size);

/* A daemon's command line: --config FILE first, then every --KEY VALUE flag (keys as in the
 * file; dashes and underscores alike) through set. Prints usage for --help and errors to
 * stderr. Returns 0 to go on, 1 after --help, 2 on a usage error. */
int fleet_conf_cli(int argc, char **argv, const char *program, const char *usage,
                   const char *const *keys, size_t n_keys, fleet_conf_setter set, void *ctx);

/* A daemon's signals: SIGINT and SIGTERM call on_stop (which must be async-signal-safe);
 * SIGPIPE is ignored (a broken connection is fleet_link's business, not a signal). */
void fleet_conf_catch_signals(void (*on_stop)(int));

/* A configuration key described as data: where in the config struct it lands and how. */
typedef enum fleet_conf_type {
    FLEET_CONF_STRING,      /* char[size] */
    FLEET_CONF_SECRET_FILE, /* char[size] read from the file the value names */
    FLEET_CONF_U32,         /* uint32_t in [min, max] */
    FLEET_CONF_LOG_LEVEL,   /* int: error | warn | info | debug */
} fleet_conf_type;

typedef struct fleet_conf_key {
    const char *name;
    fleet_conf_type type;
    size_t offset; /* offsetof the field in the config struct */
    size_t size;   /* STRING, SECRET_FILE: the field's size */
    uint32_t min, max;
} fleet_conf_key;

/* Sets key in config from the table: 0, 1 when the table has no such key, -1 for a bad value. */
int fleet_conf_apply(const fleet_conf_key *keys, size_t n_keys, void *config, const char *key,
                     const char *value);

/* Helpers for setters: each returns 0 or -1. */
int fleet_conf_string(char *dst, size_t size, const char *value);
int fleet_conf_u32(uint32_t *dst, const char *value, uint32_t min, uint32_t max);
int fleet_conf_secret_file(char *dst, size_t size, const char *path);
int fleet_conf_log_level(int *dst, const char *value); /* error|warn|info|debug -> 0..3 */

#endif
