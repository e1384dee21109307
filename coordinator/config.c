/* config.c: the coordinator's `key = value` configuration, shared by file and flags. */
#include "internal.h"

#include "fleet_conf.h"

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

fleet_coordinator_status fleet_coordinator_config_set(fleet_coordinator_config *c, const char *key,
                                                      const char *value)
{
    int rc = -1;
    if (strcmp(key, "id") == 0)
        rc = fleet_conf_string(c->id, sizeof c->id, value);
    else if (strcmp(key, "broker") == 0)
        rc = fleet_conf_string(c->broker, sizeof c->broker, value);
    else if (strcmp(key, "user") == 0)
        rc = fleet_conf_string(c->user, sizeof c->user, value);
    else if (strcmp(key, "password") == 0)
        rc = fleet_conf_string(c->password, sizeof c->password, value);
    else if (strcmp(key, "password_file") == 0)
        rc = fleet_conf_secret_file(c->password, sizeof c->password, value);
    else if (strcmp(key, "prefix") == 0)
        rc = fleet_conf_string(c->prefix, sizeof c->prefix, value);
    else if (strcmp(key, "stream") == 0)
        rc = fleet_conf_string(c->stream, sizeof c->stream, value);
    else if (strcmp(key, "variant") == 0)
        rc = c->n_variants < FLEET_COORDINATOR_MAX_VARIANTS
                 ? fleet_conf_string(c->variants[c->n_variants], sizeof c->variants[0], value)
                 : -1;
    else if (strcmp(key, "rule") == 0)
        rc = fleet_ensemble_rule_parse(value, &c->rule);
    else if (strcmp(key, "k") == 0)
        rc = fleet_conf_u32(&c->k, value, 1, FLEET_TOPICS_MAX_TOPK);
    else if (strcmp(key, "replication") == 0)
        rc = fleet_conf_u32(&c->replication, value, 1, 16);
    else if (strcmp(key, "deadline_ms") == 0)
        rc = fleet_conf_u32(&c->deadline_ms, value, 1, 3600000);
    else if (strcmp(key, "heartbeat_timeout_ms") == 0)
        rc = fleet_conf_u32(&c->heartbeat_timeout_ms, value, 100, 3600000);
    else if (strcmp(key, "max_pending") == 0)
        rc = fleet_conf_u32(&c->max_pending, value, 1, 1u << 20);
    else if (strcmp(key, "mirror_topic") == 0)
        rc = fleet_conf_string(c->mirror_topic, sizeof c->mirror_topic, value);
    else if (strcmp(key, "input_filter") == 0)
        rc = fleet_conf_string(c->input_filter, sizeof c->input_filter, value);
    else if (strcmp(key, "input_format") == 0)
        rc = strcmp(value, "u8") == 0 || strcmp(value, "f32") == 0
                 ? fleet_conf_string(c->input_format, sizeof c->input_format, value)
                 : -1;
    else if (strcmp(key, "log_level") == 0)
        rc = fleet_conf_log_level(&c->log_level, value);
    else
        return coord_fail(FLEET_COORDINATOR_EINVAL, "unknown key '%s'", key);
    if (rc != 0)
        return coord_fail(FLEET_COORDINATOR_EINVAL, "bad value '%s' for '%s'", value, key);
    if (strcmp(key, "variant") == 0)
        c->n_variants++;
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
