/* internal.h: the agent's parts and the state they share (not installed). */
#ifndef FLEET_AGENT_INTERNAL_H
#define FLEET_AGENT_INTERNAL_H

#include "fleet_agent.h"
#include "fleet_link.h"
#include "fleet_ensemble.h"
#include "fleet_models.h"
#include "fleet_topics.h"

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>

#define AGENT_MAX_CHUNKS 1024

fleet_agent_status agent_fail(fleet_agent_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void agent_log(int level, int threshold, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A model being fetched chunk by chunk. */
typedef struct agent_download {
    bool active;
    uint32_t chunks;
    uint64_t total;
    uint8_t *parts[AGENT_MAX_CHUNKS]; /* owned copies, NULL until received */
    size_t sizes[AGENT_MAX_CHUNKS];
    uint32_t received;
    double last_progress_us;
    int tries;
} agent_download;

/* A loaded model with its input and output buffers (every output needs one). */
typedef struct agent_model {
    fleet_model *model;
    float *input;
    size_t input_count;
    float *outputs[4];
    size_t output_counts[4];
    size_t n_outputs;
} agent_model;

void agent_model_close(agent_model *m);
fleet_agent_status agent_model_run(agent_model *m);

/* One assigned variant. */
typedef struct agent_variant {
    fleet_assigned_variant spec;
    agent_model *model; /* NULL until the model is cached and loaded */
    uint32_t latency_us;
    agent_download download;
} agent_variant;

typedef struct agent_queue {
    fleet_link_message **items; /* ring buffer, owned */
    size_t capacity, head, count;
    bool closed;
    pthread_cond_t ready;
} agent_queue;

struct fleet_agent {
    fleet_agent_config cfg;
    fleet_link *link;
    char topic_state[FLEET_TOPICS_MAX_TOPIC], topic_heartbeat[FLEET_TOPICS_MAX_TOPIC];
    char topic_assignment[FLEET_TOPICS_MAX_TOPIC], topic_chunk[FLEET_TOPICS_MAX_TOPIC];
    char topic_get[FLEET_TOPICS_MAX_TOPIC], topic_result[FLEET_TOPICS_MAX_TOPIC];
    pthread_mutex_t lock; /* variants, stream, queue, counters */
    agent_variant variants[FLEET_TOPICS_MAX_VARIANTS];
    size_t n_variants;
    char stream[FLEET_TOPICS_MAX_ID + 1];
    uint64_t epoch, bdseq, heartbeat_seq;
    agent_queue queue;
    pthread_t worker;
    bool worker_started;
    fleet_agent_stats stats;
    double latency_ewma_us;
    volatile sig_atomic_t stopping;
};

/* cache.c: the model cache directory and chunked downloads. */
fleet_agent_status agent_cache_prepare(fleet_agent *a);
agent_model *agent_cache_load(fleet_agent *a, const char *digest, uint32_t *latency_us);
void agent_download_reset(agent_download *d);
/* Stores a chunk; returns the assembled, verified and cached model when complete. */
agent_model *agent_download_chunk(fleet_agent *a, agent_variant *v, const fleet_msg_chunk *c,
                                  uint32_t *latency_us);
void agent_download_request(fleet_agent *a, agent_variant *v);

/* work.c: the bounded request queue and the inference worker. */
fleet_agent_status agent_queue_init(agent_queue *q, size_t capacity);
void agent_queue_free(agent_queue *q);
/* Takes ownership of m; returns true when an older request had to make room. */
bool agent_queue_push(fleet_agent *a, fleet_link_message *m);
void agent_queue_close(fleet_agent *a);
void *agent_worker(void *arg);

/* agent.c */
void agent_publish_birth(fleet_agent *a);

#endif
