/* config.c: the agent's configuration, from a `key = value` file and from flags. */
#include "internal.h"

#include "fleet_conf.h"

#include <stddef.h>
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

#define STRING_KEY(name, field)                                                                    \
    {                                                                                              \
        name, FLEET_CONF_STRING, offsetof(fleet_agent_config, field),                              \
            sizeof((fleet_agent_config *)0)->field, 0, 0                                           \
    }
#define U32_KEY(name, field, min, max)                                                             \
    {                                                                                              \
        name, FLEET_CONF_U32, offsetof(fleet_agent_config, field), 0, min, max                     \
    }

static const fleet_conf_key agent_keys[] = {
    STRING_KEY("id", id),
    STRING_KEY("broker", broker),
    STRING_KEY("password", password),
    {"password_file", FLEET_CONF_SECRET_FILE, offsetof(fleet_agent_config, password),
     sizeof((fleet_agent_config *)0)->password, 0, 0},
    STRING_KEY("prefix", prefix),
    STRING_KEY("cache", cache),
    U32_KEY("threads", threads, 0, 64),
    U32_KEY("queue", queue, 1, 65536),
    U32_KEY("heartbeat_ms", heartbeat_ms, 50, 600000),
    {"log_level", FLEET_CONF_LOG_LEVEL, offsetof(fleet_agent_config, log_level), 0, 0, 0},
};

fleet_agent_status fleet_agent_config_set(fleet_agent_config *c, const char *key, const char *value)
{
    int rc = fleet_conf_apply(agent_keys, sizeof agent_keys / sizeof agent_keys[0], c, key, value);
    if (rc > 0)
        return agent_fail(FLEET_AGENT_EINVAL, "unknown key '%s'", key);
    if (rc < 0)
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
