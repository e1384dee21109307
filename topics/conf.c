/* conf.c: the fleet daemons' configuration files, command lines and signals. */
#include "fleet_conf.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    char *end = s + strlen(s);
    while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\n' || end[-1] == '\r'))
        *--end = '\0';
    return s;
}

#define CONF_LINE_MAX 1022 /* characters of a line, its line ending (LF or CRLF) aside */

/* One line without its ending into line[CONF_LINE_MAX + 3]: 1, or 0 at the end of the file,
 * or -1 for a line longer than CONF_LINE_MAX (fgets would have cut it in two). */
static int read_line(FILE *f, char *line)
{
    if (!fgets(line, CONF_LINE_MAX + 3, f))
        return 0;
    bool ended = strchr(line, '\n') != NULL;
    if (!ended) {
        int next = getc(f);
        if (next != EOF) {
            ungetc(next, f);
            return -1;
        }
    }
    line[strcspn(line, "\r\n")] = '\0';
    return strlen(line) > CONF_LINE_MAX ? -1 : 1;
}

int fleet_conf_read(const char *path, fleet_conf_setter set, void *ctx, char *error,
                    size_t error_size)
{
    char line[CONF_LINE_MAX + 3], detail[256];
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(error, error_size, "%s: %s", path, strerror(errno));
        return -1;
    }
    int rc = 0, got;
    for (int number = 1; rc == 0 && (got = read_line(f, line)) != 0; number++) {
        if (got < 0) {
            snprintf(error, error_size, "%s:%d: line longer than %d characters", path, number,
                     CONF_LINE_MAX);
            rc = -1;
            break;
        }
        char *text = trim(line), *eq = strchr(text, '=');
        if (!text[0] || text[0] == '#')
            continue;
        detail[0] = '\0';
        if (!eq) {
            snprintf(error, error_size, "%s:%d: expected 'key = value'", path, number);
            rc = -1;
            break;
        }
        *eq = '\0';
        char *value = trim(eq + 1), *hash = strstr(value, " #");
        if (hash) /* a trailing comment */
            *hash = '\0';
        if (set(ctx, trim(text), trim(value), detail, sizeof detail) != 0) {
            snprintf(error, error_size, "%s:%d: %s", path, number, detail);
            rc = -1;
        }
    }
    fclose(f);
    return rc;
}

int fleet_conf_string(char *dst, size_t size, const char *value)
{
    size_t n = strlen(value);
    if (n >= size)
        return -1;
    memcpy(dst, value, n + 1);
    return 0;
}

int fleet_conf_u32(uint32_t *dst, const char *value, uint32_t min, uint32_t max)
{
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(value, &end, 10);
    if (!value[0] || *end || errno || value[0] == '-' || v < min || v > max)
        return -1;
    *dst = (uint32_t)v;
    return 0;
}

int fleet_conf_secret_file(char *dst, size_t size, const char *path)
{
    char secret[CONF_LINE_MAX + 3];
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    int got = read_line(f, secret);
    fclose(f);
    if (got <= 0)
        return -1;
    /* An empty or cut secret would fail later as a refused login, far from its cause. */
    if (!secret[0])
        return -1;
    return fleet_conf_string(dst, size, secret);
}

int fleet_conf_log_level(int *dst, const char *value)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < 4; i++)
        if (strcmp(value, names[i]) == 0) {
            *dst = i;
            return 0;
        }
    return -1;
}

/* Flags may use dashes where file keys use underscores. */
static void normalise(char *key)
{
    for (; *key; key++)
        *key = *key == '-' ? '_' : *key;
}

int fleet_conf_cli(int argc, char **argv, const char *program, const char *usage,
                   const char *const *keys, size_t n_keys, fleet_conf_setter set, void *ctx)
{
    char error[512], detail[256];
    for (int i = 1; i + 1 < argc; i += 2) /* the file first, so that flags override it */
        if (strcmp(argv[i], "--config") == 0 &&
            fleet_conf_read(argv[i + 1], set, ctx, error, sizeof error) != 0) {
            fprintf(stderr, "%s: %s\n", program, error);
            return 2;
        }
    for (int i = 1; i < argc; i += 2) { /* every flag but --help takes a value */
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            fputs(usage, stdout);
            return 1;
        }
        if (strncmp(arg, "--", 2) != 0 || i + 1 >= argc) {
            fprintf(stderr, "%s: unexpected argument '%s'\n%s", program, arg, usage);
            return 2;
        }
        char key[64];
        snprintf(key, sizeof key, "%s", arg + 2);
        normalise(key);
        bool known = strcmp(key, "config") == 0;
        for (size_t k = 0; !known && k < n_keys; k++) {
            char name[64];
            snprintf(name, sizeof name, "%s", keys[k]);
            normalise(name);
            known = strcmp(name, key) == 0;
        }
        detail[0] = '\0';
        if (!known || (strcmp(key, "config") != 0 &&
                       set(ctx, key, argv[i + 1], detail, sizeof detail) != 0)) {
            fprintf(stderr, "%s: %s\n%s", program, known ? detail : "unknown option (see --help)",
                    known ? "" : usage);
            return 2;
        }
    }
    return 0;
}

int fleet_conf_apply(const fleet_conf_key *keys, size_t n_keys, void *config, const char *key,
                     const char *value)
{
    for (size_t i = 0; i < n_keys; i++) {
        if (strcmp(keys[i].name, key) != 0)
            continue;
        char *field = (char *)config + keys[i].offset;
        switch (keys[i].type) {
        case FLEET_CONF_STRING:
            return fleet_conf_string(field, keys[i].size, value);
        case FLEET_CONF_SECRET_FILE:
            return fleet_conf_secret_file(field, keys[i].size, value);
        case FLEET_CONF_U32:
            return fleet_conf_u32((uint32_t *)(void *)field, value, keys[i].min, keys[i].max);
        case FLEET_CONF_LOG_LEVEL:
            return fleet_conf_log_level((int *)(void *)field, value);
        }
    }
    return 1;
}

void fleet_conf_catch_signals(void (*on_stop)(int))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_stop;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
}
