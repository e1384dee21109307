/* fleet_ops.h: what fleetctl's fleet commands share: an operator session and fleet views. */
#ifndef FLEETCTL_FLEET_OPS_H
#define FLEETCTL_FLEET_OPS_H

#include "fleet_link.h"
#include "fleet_topics.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define FLEET_OPS_MAX_AGENTS 64

/* The fleet as its retained topics and heartbeats describe it. */
typedef struct fleet_ops_agent {
    char id[FLEET_TOPICS_MAX_ID + 1];
    bool alive;
    uint64_t bdseq;
    uint32_t variants[FLEET_TOPICS_MAX_VARIANTS];
    size_t n_variants;
    uint64_t epoch;
    uint32_t latency_ewma_us;
    uint64_t processed, dropped;
    double heard_us; /* when its latest heartbeat arrived (fleet_link_now_us); 0: none yet */
    size_t n_models;
} fleet_ops_agent;

typedef struct fleet_ops_coordinator {
    char id[FLEET_TOPICS_MAX_ID + 1];
    char stream[FLEET_TOPICS_MAX_ID + 1]; /* "" when its state names none */
    bool online;
    bool drained; /* offline on purpose (SIGTERM), not by its will */
} fleet_ops_coordinator;

typedef struct fleet_ops_view {
    fleet_ops_agent agents[FLEET_OPS_MAX_AGENTS];
    size_t n_agents;
    fleet_ops_coordinator coordinators[8];
    size_t n_coordinators;
} fleet_ops_view;

/* Connects as `user` and subscribes to every agent and coordinator topic under prefix. */
fleet_link *fleet_ops_connect(const char *url, const char *user, const char *password,
                              const char *prefix, const char *client_id);

/* Folds one message into the view; false when it is not a fleet state message. */
bool fleet_ops_update(fleet_ops_view *view, const char *prefix, const fleet_link_message *m);

/* Prints the view as a table. */
void fleet_ops_print(const fleet_ops_view *view, FILE *out);

/* A u8 image request [1,1,28,28] with scale 1/255, encoded; the caller frees *buf. */
fleet_topics_status fleet_ops_encode_image(const char *id, const char *stream,
                                           const uint8_t *pixels, uint32_t deadline_ms,
                                           uint8_t **buf, size_t *len);

#endif
