/* config.c: the agent's configuration, from a `key = value` file and from flags. */
#include "internal.h"

#include "fleet_conf.h"

#include <stdio.h>
#include <string.h>

void fleet_agent_config_init(fleet_agent_config *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->broker, sizeof c->broker, "tcp://127.0.0.1:1883");
    snprintf(c->prefix, sizeof c->prefix, "fleet/default");
    c->queue = 64;
    c->heartbeat_ms = 1000;
    c->log_level = 2;
}

fleet_agent_status fleet_agent_config_set(fleet_agent_config *c, const char *key, const char *value)
{
    int rc;
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
    else if (strcmp(key, "cache") == 0)
        rc = fleet_conf_string(c->cache, sizeof c->cache, value);
    else if (strcmp(key, "threads") == 0)
        rc = fleet_conf_u32(&c->threads, value, 0, 64);
    else if (strcmp(key, "queue") == 0)
        rc = fleet_conf_u32(&c->queue, value, 1, 65536);
    else if (strcmp(key, "heartbeat_ms") == 0)
        rc = fleet_conf_u32(&c->heartbeat_ms, value, 50, 600000);
    else if (strcmp(key, "log_level") == 0)
        rc = fleet_conf_log_level(&c->log_level, value);
    else
        return agent_fail(FLEET_AGENT_EINVAL, "unknown key '%s'", key);
    if (rc != 0)
        return agent_fail(FLEET_AGENT_EINVAL, "bad value '%s' for '%s'", value, key);
    return FLEET_AGENT_OK;
}

int fleet_agent_config_setter(void *ctx, const char *key, const char *value, char *detail,
                              size_t size)
{
    if (fleet_agent_config_set(ctx, key, value) == FLEET_AGENT_OK)
        return 0;
    snprintf(detail, size, "%s", fleet_agent_last_error());
    return -1;
}

fleet_agent_status fleet_agent_config_load(const char *path, fleet_agent_config *c)
{
    char error[400];
    if (fleet_conf_read(path, fleet_agent_config_setter, c, error, sizeof error) != 0)
        return agent_fail(FLEET_AGENT_EINVAL, "%s", error);
    return FLEET_AGENT_OK;
}
