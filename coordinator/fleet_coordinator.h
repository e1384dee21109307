/* fleet_coordinator.h: the fleet coordinator: membership, assignment, model serving, decisions. */
#ifndef FLEET_COORDINATOR_H
#define FLEET_COORDINATOR_H

#include "fleet_ensemble.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum fleet_coordinator_status {
    FLEET_COORDINATOR_OK = 0,
    FLEET_COORDINATOR_EINVAL, /* a bad configuration value or argument */
    FLEET_COORDINATOR_ENOMEM,
    FLEET_COORDINATOR_EMODEL, /* a family model could not be read or loaded */
    FLEET_COORDINATOR_ELINK,  /* the broker could not be reached */
} fleet_coordinator_status;

const char *fleet_coordinator_strerror(fleet_coordinator_status status);
const char *fleet_coordinator_last_error(void);

#define FLEET_COORDINATOR_MAX_VARIANTS 16

typedef struct fleet_coordinator_config {
    char id[65];      /* coordinator id; MQTT client id "coordinator-<id>" */
    char broker[256]; /* "tcp://127.0.0.1:1883" */
    char user[64];    /* "coordinator" */
    char password[128];
    char prefix[128];                                   /* "fleet/default" */
    char stream[65];                                    /* the stream this coordinator serves */
    char variants[FLEET_COORDINATOR_MAX_VARIANTS][512]; /* the family's ONNX files */
    size_t n_variants;
    fleet_ensemble_rule rule;      /* a Top-k rule; ignored when fusion is set */
    int fusion;                    /* rule = fusion: the agents publish int8 features and the
                                      fusion_model head over their concatenation decides */
    char fusion_model[512];        /* the head (fusion.onnx): input [1, sum of feature sizes] */
    uint32_t k;                    /* pairs each agent publishes (default: all classes) */
    uint32_t replication;          /* agents per variant (default 1) */
    uint32_t deadline_ms;          /* default answer budget when a request names none (1000) */
    uint32_t heartbeat_timeout_ms; /* silence that counts as death (3000) */
    uint32_t max_pending;          /* requests in flight per stream (4096) */
    uint32_t backup;        /* 1 (default): with other coordinators on the stream, also hold the
                               requests this one ranks second for, and decide them if their owner
                               leaves; hand its own to theirs when it stops. 0: neither */
    char mirror_topic[256]; /* decisions also as JSON here (optional) */
    char input_filter[256]; /* raw inputs from an existing topic filter (optional) */
    char input_format[16];  /* "u8" or "f32": a raw [1,1,28,28]-sized payload */
    int log_level;          /* 0 error, 1 warn, 2 info, 3 debug */
} fleet_coordinator_config;

void fleet_coordinator_config_init(fleet_coordinator_config *config);
/* Reads `key = value` lines; unknown keys and bad values fail naming file and line. */
fleet_coordinator_status fleet_coordinator_config_load(const char *path,
                                                       fleet_coordinator_config *config);
/* Sets one key as the config file would (flags use this too). */
fleet_coordinator_status fleet_coordinator_config_set(fleet_coordinator_config *config,
                                                      const char *key, const char *value);
/* fleet_coordinator_config_set in the shape of a fleet_conf_setter (ctx: the config). */
int fleet_coordinator_config_setter(void *ctx, const char *key, const char *value, char *detail,
                                    size_t size);

typedef struct fleet_coordinator fleet_coordinator;

/* Reads and hashes the family, connects, publishes the retained online state. */
fleet_coordinator_status fleet_coordinator_create(const fleet_coordinator_config *config,
                                                  fleet_coordinator **out);
/* Serves until fleet_coordinator_stop; returns FLEET_COORDINATOR_OK on a clean stop. */
/* Messages are handled as they arrive, on Paho's receive thread (no hand-off); the calling
 * thread keeps time: deadlines, heartbeat timeouts, subscriptions after a reconnect. */
fleet_coordinator_status fleet_coordinator_run(fleet_coordinator *c);
/* Async-signal-safe: may be called from a signal handler. */
void fleet_coordinator_stop(fleet_coordinator *c);
/* Publishes the retained offline state, disconnects, frees. NULL is a no-op. */
void fleet_coordinator_destroy(fleet_coordinator *c);

typedef struct fleet_coordinator_stats {
    uint64_t requests, decisions, degraded, results, late_results, duplicate_results;
    uint64_t bad_messages, reassignments, evicted;
    uint64_t refused; /* requests whose tensor the models cannot take (answered with an error) */
    uint64_t others_requests;  /* requests and results another coordinator of the stream decides */
    uint64_t backups;          /* requests held as a backup of the coordinator that decides them */
    uint64_t backups_released; /* of those, let go undecided: complete or due (their owner
                                  decides), evicted, refused, or at our stop */
    uint64_t taken_over;       /* of those, made ours: their owner left */
    uint64_t handed_over;      /* requests of ours let go to their backup, which decides them */
    uint32_t live_agents;
    uint64_t epoch;
} fleet_coordinator_stats;

void fleet_coordinator_get_stats(fleet_coordinator *c, fleet_coordinator_stats *stats);

#ifdef __cplusplus
}
#endif
#endif
