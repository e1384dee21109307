/* fleet_agent.h: the fleet agent: runs its assigned variants on every request of its stream. */
#ifndef FLEET_AGENT_H
#define FLEET_AGENT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum fleet_agent_status {
    FLEET_AGENT_OK = 0,
    FLEET_AGENT_EINVAL, /* a bad configuration value or argument */
    FLEET_AGENT_ENOMEM,
    FLEET_AGENT_ESYSERR, /* the cache directory or a thread could not be set up */
    FLEET_AGENT_ELINK,   /* the broker could not be reached */
} fleet_agent_status;

const char *fleet_agent_strerror(fleet_agent_status status);
const char *fleet_agent_last_error(void);

typedef struct fleet_agent_config {
    char id[65];      /* agent id: MQTT client id and user name (the ACL's %u) */
    char broker[256]; /* "tcp://127.0.0.1:1883" */
    char password[128];
    char prefix[128];      /* "fleet/default" */
    char cache[512];       /* model cache and bdseq file ("/var/lib/fleetinfer/<id>") */
    uint32_t threads;      /* intra-op threads per inference (0: the worker thread alone) */
    uint32_t queue;        /* requests waiting; when full the oldest is dropped (64) */
    uint32_t heartbeat_ms; /* (1000) */
    int log_level;         /* 0 error .. 3 debug (2) */
} fleet_agent_config;

void fleet_agent_config_init(fleet_agent_config *config);
fleet_agent_status fleet_agent_config_load(const char *path, fleet_agent_config *config);
fleet_agent_status fleet_agent_config_set(fleet_agent_config *config, const char *key,
                                          const char *value);
/* fleet_agent_config_set in the shape of a fleet_conf_setter (ctx: the config). */
int fleet_agent_config_setter(void *ctx, const char *key, const char *value, char *detail,
                              size_t size);

typedef struct fleet_agent fleet_agent;

/* Prepares the cache, bumps the birth sequence, connects (will: a retained death). */
fleet_agent_status fleet_agent_create(const fleet_agent_config *config, fleet_agent **out);
/* Serves until fleet_agent_stop; publishes the death, lets the in-flight request finish. */
fleet_agent_status fleet_agent_run(fleet_agent *agent);
/* Async-signal-safe. */
void fleet_agent_stop(fleet_agent *agent);
void fleet_agent_destroy(fleet_agent *agent);

typedef struct fleet_agent_stats {
    uint64_t processed, dropped_expired, dropped_full, failed, bad_messages;
    uint64_t bdseq, epoch;
    uint32_t variants_ready;
} fleet_agent_stats;

void fleet_agent_get_stats(fleet_agent *agent, fleet_agent_stats *stats);

#ifdef __cplusplus
}
#endif
#endif
