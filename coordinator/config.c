/* config.c: the coordinator's `key = value` configuration, shared by file and flags. */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fleet_coordinator_config_init(fleet_coordinator_config *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->id, sizeof c->id, "main");
    snprintf(c->broker, sizeof c->broker, "tcp://127.0.0.1:1883");
    snprintf(c->user, sizeof c->user, "coordinator");
    snprintf(c->prefix, sizeof c->prefix, "fleet/default");
    snprintf(c->stream, sizeof c->stream, "default");
    snprintf(c->input_format, sizeof c->input_format, "u8");
    c->rule = FLEET_ENSEMBLE_MEAN_SOFTMAX;
    c->replication = 1;
    c->deadline_ms = 1000;
    c->heartbeat_timeout_ms = 3000;
    c->max_pending = 4096;
    c->log_level = 2;
}

static int set_string(char *dst, size_t size, const char *value)
{
    if (strlen(value) >= size)
        return -1;
    memcpy(dst, value, strlen(value) + 1);
    return 0;
}

static int set_u32(uint32_t *dst, const char *value, uint32_t min, uint32_t max)
{
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(value, &end, 10);
    if (!value[0] || *end || errno || value[0] == '-' || v < min || v > max)
        return -1;
    *dst = (uint32_t)v;
    return 0;
}

static int read_secret(char *dst, size_t size, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f || !fgets(dst, (int)size, f)) {
        if (f)
            fclose(f);
        return -1;
    }
    fclose(f);
    dst[strcspn(dst, "\r\n")] = '\0';
    return 0;
}

static int set_log_level(int *dst, const char *value)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < 4; i++)
        if (strcmp(value, names[i]) == 0) {
            *dst = i;
            return 0;
        }
    return -1;
}

fleet_coordinator_status fleet_coordinator_config_set(fleet_coordinator_config *c, const char *key,
                                                      const char *value)
{
    int rc = -1;
    if (strcmp(key, "id") == 0)
        rc = set_string(c->id, sizeof c->id, value);
    else if (strcmp(key, "broker") == 0)
        rc = set_string(c->broker, sizeof c->broker, value);
    else if (strcmp(key, "user") == 0)
        rc = set_string(c->user, sizeof c->user, value);
    else if (strcmp(key, "password") == 0)
        rc = set_string(c->password, sizeof c->password, value);
    else if (strcmp(key, "password_file") == 0)
        rc = read_secret(c->password, sizeof c->password, value);
    else if (strcmp(key, "prefix") == 0)
        rc = set_string(c->prefix, sizeof c->prefix, value);
    else if (strcmp(key, "stream") == 0)
        rc = set_string(c->stream, sizeof c->stream, value);
    else if (strcmp(key, "variant") == 0)
        rc = c->n_variants < FLEET_COORDINATOR_MAX_VARIANTS
                 ? set_string(c->variants[c->n_variants], sizeof c->variants[0], value)
                 : -1;
    else if (strcmp(key, "rule") == 0)
        rc = fleet_ensemble_rule_parse(value, &c->rule);
    else if (strcmp(key, "k") == 0)
        rc = set_u32(&c->k, value, 1, FLEET_TOPICS_MAX_TOPK);
    else if (strcmp(key, "replication") == 0)
        rc = set_u32(&c->replication, value, 1, 16);
    else if (strcmp(key, "deadline_ms") == 0)
        rc = set_u32(&c->deadline_ms, value, 1, 3600000);
    else if (strcmp(key, "heartbeat_timeout_ms") == 0)
        rc = set_u32(&c->heartbeat_timeout_ms, value, 100, 3600000);
    else if (strcmp(key, "max_pending") == 0)
        rc = set_u32(&c->max_pending, value, 1, 1u << 20);
    else if (strcmp(key, "mirror_topic") == 0)
        rc = set_string(c->mirror_topic, sizeof c->mirror_topic, value);
    else if (strcmp(key, "input_filter") == 0)
        rc = set_string(c->input_filter, sizeof c->input_filter, value);
    else if (strcmp(key, "input_format") == 0)
        rc = strcmp(value, "u8") == 0 || strcmp(value, "f32") == 0
                 ? set_string(c->input_format, sizeof c->input_format, value)
                 : -1;
    else if (strcmp(key, "log_level") == 0)
        rc = set_log_level(&c->log_level, value);
    else
        return coord_fail(FLEET_COORDINATOR_EINVAL, "unknown key '%s'", key);
    if (rc != 0)
        return coord_fail(FLEET_COORDINATOR_EINVAL, "bad value '%s' for '%s'", value, key);
    if (strcmp(key, "variant") == 0)
        c->n_variants++;
    return FLEET_COORDINATOR_OK;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    char *end = s + strlen(s);
    while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\n' || end[-1] == '\r'))
        *--end = '\0';
    return s;
}

fleet_coordinator_status fleet_coordinator_config_load(const char *path,
                                                       fleet_coordinator_config *c)
{
    char line[1024];
    FILE *f = fopen(path, "r");
    if (!f)
        return coord_fail(FLEET_COORDINATOR_EINVAL, "%s: %s", path, strerror(errno));
    fleet_coordinator_status st = FLEET_COORDINATOR_OK;
    for (int number = 1; st == FLEET_COORDINATOR_OK && fgets(line, sizeof line, f); number++) {
        char *text = trim(line), *eq = strchr(text, '=');
        if (!text[0] || text[0] == '#')
            continue;
        if (!eq) {
            st =
                coord_fail(FLEET_COORDINATOR_EINVAL, "%s:%d: expected 'key = value'", path, number);
            break;
        }
        *eq = '\0';
        st = fleet_coordinator_config_set(c, trim(text), trim(eq + 1));
        if (st != FLEET_COORDINATOR_OK) {
            char detail[256];
            snprintf(detail, sizeof detail, "%s", fleet_coordinator_last_error());
            coord_fail(st, "%s:%d: %s", path, number, detail);
        }
    }
    fclose(f);
    return st;
}
