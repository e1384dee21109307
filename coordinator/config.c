/* config.c: the coordinator's `key = value` configuration, shared by file and flags. */
#include "internal.h"

#include "fleet_conf.h"

#include <errno.h>
#include <stddef.h>
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
    c->backup = 1;
    c->log_level = 2;
}

#define STRING_KEY(name, field)                                                                    \
    {                                                                                              \
        name, FLEET_CONF_STRING, offsetof(fleet_coordinator_config, field),                        \
            sizeof((fleet_coordinator_config *)0)->field, 0, 0                                     \
    }
#define U32_KEY(name, field, min, max)                                                             \
    {                                                                                              \
        name, FLEET_CONF_U32, offsetof(fleet_coordinator_config, field), 0, min, max               \
    }

static const fleet_conf_key coordinator_keys[] = {
    STRING_KEY("id", id),
    STRING_KEY("broker", broker),
    STRING_KEY("user", user),
    STRING_KEY("password", password),
    {"password_file", FLEET_CONF_SECRET_FILE, offsetof(fleet_coordinator_config, password),
     sizeof((fleet_coordinator_config *)0)->password, 0, 0},
    STRING_KEY("prefix", prefix),
    STRING_KEY("stream", stream),
    U32_KEY("k", k, 1, FLEET_TOPICS_MAX_TOPK),
    U32_KEY("replication", replication, 1, 16),
    U32_KEY("deadline_ms", deadline_ms, 1, 3600000),
    U32_KEY("heartbeat_timeout_ms", heartbeat_timeout_ms, 100, 3600000),
    U32_KEY("max_pending", max_pending, 1, 1u << 20),
    U32_KEY("backup", backup, 0, 1),
    STRING_KEY("mirror_topic", mirror_topic),
    STRING_KEY("input_filter", input_filter),
    STRING_KEY("fusion_model", fusion_model),
    {"log_level", FLEET_CONF_LOG_LEVEL, offsetof(fleet_coordinator_config, log_level), 0, 0, 0},
};

/* Keys that are more than a field: a list, an enum, a closed set of words. */
static int set_special(fleet_coordinator_config *c, const char *key, const char *value)
{
    if (strcmp(key, "variant") == 0) {
        if (c->n_variants == FLEET_COORDINATOR_MAX_VARIANTS ||
            fleet_conf_string(c->variants[c->n_variants], sizeof c->variants[0], value) != 0)
            return -1;
        c->n_variants++;
        return 0;
    }
    if (strcmp(key, "rule") == 0) {
        c->fusion = strcmp(value, "fusion") == 0;
        return c->fusion ? 0 : fleet_ensemble_rule_parse(value, &c->rule);
    }
    if (strcmp(key, "input_format") == 0)
        return strcmp(value, "u8") == 0 || strcmp(value, "f32") == 0
                   ? fleet_conf_string(c->input_format, sizeof c->input_format, value)
                   : -1;
    return 1;
}

fleet_coordinator_status fleet_coordinator_config_set(fleet_coordinator_config *c, const char *key,
                                                      const char *value)
{
    int rc = set_special(c, key, value);
    if (rc > 0)
        rc = fleet_conf_apply(coordinator_keys,
                              sizeof coordinator_keys / sizeof coordinator_keys[0], c, key, value);
    if (rc > 0)
        return coord_fail(FLEET_COORDINATOR_EINVAL, "unknown key '%s'", key);
    if (rc < 0)
        return coord_fail(FLEET_COORDINATOR_EINVAL, "bad value '%s' for '%s'", value, key);
    return FLEET_COORDINATOR_OK;
}

int fleet_coordinator_config_setter(void *ctx, const char *key, const char *value, char *detail,
                                    size_t size)
{
    if (fleet_coordinator_config_set(ctx, key, value) == FLEET_COORDINATOR_OK)
        return 0;
    snprintf(detail, size, "%s", fleet_coordinator_last_error());
    return -1;
}

fleet_coordinator_status fleet_coordinator_config_load(const char *path,
                                                       fleet_coordinator_config *c)
{
    char error[400];
    if (fleet_conf_read(path, fleet_coordinator_config_setter, c, error, sizeof error) != 0)
        return coord_fail(FLEET_COORDINATOR_EINVAL, "%s", error);
    return FLEET_COORDINATOR_OK;
}
