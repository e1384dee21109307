/* internal.h: the agent's parts and the state they share (not installed).
 *
 * Three threads and Paho's. Paho's receive thread puts requests into the queue
 * (agent_queue_offer) and leaves every other message to the main thread (fleet_agent_run), which
 * keeps the assignment and the downloads and is the only writer of the variants, the stream and
 * the epoch. The worker runs the models. The beat thread publishes the heartbeats, so that they
 * keep coming while the main thread loads and times a model or waits for a SUBACK; it reads only
 * what is fixed at create and what `lock` guards. Locks, always taken in this order:
 *   models_lock  variants[], n_variants, stream, epoch, topic_result. The main thread takes it
 *                only to change them (its own reads need no lock); the worker holds it while
 *                it serves one request, so a model is never closed under it.
 *   lock         the queue (and what it admits), the counters, the latency EWMA, the heartbeat
 *                sequence. Held briefly; never while running a model or waiting for the broker.
 *   beat_lock    beat_stop, with beat_wake. A leaf: nothing else is taken, and nothing is
 *                published, while it is held. */
#ifndef FLEET_AGENT_INTERNAL_H
#define FLEET_AGENT_INTERNAL_H

#include "fleet_agent.h"
#include "fleet_link.h"
#include "fleet_log.h"
#include "fleet_models.h"
#include "fleet_topics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#define AGENT_RETRY_US 2e6                   /* a download without progress is asked again */
#define AGENT_TRIES 5                        /* model_get requests before giving up */
#define AGENT_MAX_MODEL_BYTES (256ull << 20) /* the runtime's default file limit */
#define AGENT_MAX_CHUNKS 65536u              /* chunks of one model */
#define AGENT_MAX_STREAMS 24                 /* request subscriptions kept over a lifetime */
#define AGENT_MAX_OUTPUTS 4
#define AGENT_MAX_COORDINATORS 16 /* whose online state changes are logged (the rest: always) */
#define AGENT_PATH_MAX 640        /* <cache (511)>/<digest (64)>.suffix */

fleet_agent_status agent_fail(fleet_agent_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

typedef struct fleet_agent fleet_agent;

void agent_log(const fleet_agent *a, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- model.c: a loaded model with its buffers ---------------------------------------------- */

typedef struct agent_model {
    fleet_model *model;
    float *input;
    size_t input_count; /* elements per sample */
    float *outputs[AGENT_MAX_OUTPUTS];
    size_t output_counts[AGENT_MAX_OUTPUTS];
    size_t n_outputs;
    int8_t *features; /* quantized second output (INT8 results); NULL without one */
    /* Fixed int8 parameters from the metadata (feature_scale, feature_zero_point): a fusion
     * head is trained on exactly these. Without them each result gets its own range. */
    fleet_model_qparams feature_q;
    bool feature_q_fixed;
    uint32_t latency_us;
} agent_model;

/* Loads from memory (data borrowed) and measures the median latency at batch 1. */
fleet_agent_status agent_model_load(const fleet_agent *a, const uint8_t *data, size_t size,
                                    agent_model **out);
fleet_agent_status agent_model_run(agent_model *m);
void agent_model_close(agent_model *m);

/* ---- cache.c: the cache directory: models by digest, the birth sequence --------------------- */

fleet_agent_status agent_cache_prepare(fleet_agent *a);
void agent_cache_path(const fleet_agent *a, const char *digest, const char *suffix, char *out,
                      size_t size);
/* Loads <cache>/<digest>.onnx when present and intact (a damaged file is removed).
 * FLEET_AGENT_OK with *out NULL: not cached. */
fleet_agent_status agent_cache_load(const fleet_agent *a, const char *digest, agent_model **out);

/* ---- download.c: one model fetched in chunks into <cache>/<digest>.part -------------------- */

typedef struct agent_download agent_download;

typedef enum agent_chunk_outcome {
    AGENT_CHUNK_IGNORED,  /* a duplicate, another model's, or inconsistent with the first */
    AGENT_CHUNK_PROGRESS, /* stored; more to come */
    AGENT_CHUNK_COMPLETE, /* the model is verified and in the cache */
    AGENT_CHUNK_DAMAGED,  /* assembled but the digest differs: discarded and asked again */
} agent_chunk_outcome;

/* Opens the temporary file and asks for every chunk. */
fleet_agent_status agent_download_start(fleet_agent *a, const fleet_assigned_variant *spec,
                                        agent_download **out);
agent_chunk_outcome agent_download_chunk(fleet_agent *a, agent_download *d,
                                         const fleet_msg_chunk *c);
/* Asks again for what is missing after AGENT_RETRY_US without progress; false once given up. */
bool agent_download_tick(fleet_agent *a, agent_download *d, double now_us);
/* Starts over with a fresh number of tries (the coordinator came back, a new assignment). */
void agent_download_restart(fleet_agent *a, agent_download *d);
bool agent_download_gave_up(const agent_download *d);
/* Closes and removes the temporary file. NULL is a no-op. */
void agent_download_free(agent_download *d);

/* ---- assign.c: the assignment, model chunks, request subscriptions ------------------------- */

typedef struct agent_variant {
    fleet_assigned_variant spec;
    agent_model *model;       /* NULL until loaded; see the lock rules above */
    agent_download *download; /* main thread only */
} agent_variant;

void agent_on_assignment(fleet_agent *a, const fleet_link_message *msg);
void agent_on_chunk(fleet_agent *a, const fleet_link_message *msg);
void agent_on_coordinator(fleet_agent *a, const fleet_link_message *msg, const char *id);
void agent_tick_downloads(fleet_agent *a, double now_us);
void agent_variants_free(fleet_agent *a);

/* ---- announce.c: birth, death, heartbeat ---------------------------------------------------- */

void agent_publish(fleet_agent *a, const char *topic, fleet_topics_status encoded, uint8_t *buf,
                   size_t len, int qos, int retained);
void agent_publish_birth(fleet_agent *a);
void agent_publish_death(fleet_agent *a);
void agent_publish_heartbeat(fleet_agent *a);
/* The beat thread: a heartbeat at once and then every heartbeat_ms until agent_beat_stop. Start
 * it after the birth (the birth is the first thing a session says). */
fleet_agent_status agent_beat_start(fleet_agent *a);
/* Wakes the beat thread and joins it; a no-op when it is not running. Call before the death is
 * published, so that no heartbeat follows it. Not async-signal-safe (a condition variable). */
void agent_beat_stop(fleet_agent *a);

/* ---- work.c: the bounded request queue and the worker ------------------------------------- */

typedef struct agent_queue {
    fleet_link_message **items; /* ring buffer; the queue owns what it holds */
    size_t capacity, head, count;
    bool closed, held;
    pthread_cond_t ready;
    /* What Paho's receive thread may queue: requests of this stream while a model is loaded
     * (set by the main thread through agent_queue_admit). */
    char stream[FLEET_TOPICS_MAX_ID + 1];
    bool accepting;
} agent_queue;

fleet_agent_status agent_queue_init(agent_queue *q, size_t capacity);
void agent_queue_free(agent_queue *q);
/* Paho's receive thread: takes ownership of a request that arrived on stream's topic and
 * queues it (when full the oldest request makes room, counted), or frees it when the agent
 * does not serve that stream or has no model yet. */
void agent_queue_offer(fleet_agent *a, const char *stream, fleet_link_message *m);
/* Main thread: which requests agent_queue_offer takes from now on. */
void agent_queue_admit(fleet_agent *a, const char *stream, bool accepting);
/* No more pops; returns how many queued requests were discarded. */
size_t agent_queue_close(fleet_agent *a);
/* Tests: while held the worker takes nothing from the queue (it still fills and overflows). */
void agent_queue_hold(fleet_agent *a, bool hold);
void *agent_worker(void *arg);

/* ---- result.c: one request through one variant --------------------------------------------- */

/* The request's tensor as the model's float input; false when the element counts differ. */
bool agent_tensor_to_floats(const fleet_tensor *t, float *out, size_t count);
/* Runs v on r (input already converted) and publishes its result; false on failure. */
bool agent_run_variant(fleet_agent *a, const agent_variant *v, const fleet_msg_request *r);

/* ---- the agent ---------------------------------------------------------------------------- */

struct fleet_agent {
    fleet_agent_config cfg;
    fleet_link *link;
    char topic_state[FLEET_TOPICS_MAX_TOPIC], topic_heartbeat[FLEET_TOPICS_MAX_TOPIC];
    char topic_assignment[FLEET_TOPICS_MAX_TOPIC], topic_chunk[FLEET_TOPICS_MAX_TOPIC];
    char topic_get[FLEET_TOPICS_MAX_TOPIC], topic_coordinators[FLEET_TOPICS_MAX_TOPIC];
    uint64_t bdseq; /* fixed at create */

    pthread_mutex_t models_lock;
    agent_variant variants[FLEET_TOPICS_MAX_VARIANTS];
    size_t n_variants;
    char stream[FLEET_TOPICS_MAX_ID + 1];
    uint32_t deadline_ms; /* the stream's default (its assignment; 0: 1 s) */
    uint64_t epoch;
    char topic_result[FLEET_TOPICS_MAX_TOPIC];

    /* main thread only */
    struct {
        char id[FLEET_TOPICS_MAX_ID + 1];
        bool online;
    } coordinators[AGENT_MAX_COORDINATORS]; /* as last heard, to log changes only */
    size_t n_coordinators;
    char streams[AGENT_MAX_STREAMS][FLEET_TOPICS_MAX_ID + 1]; /* request subscriptions */
    size_t n_streams;
    uint64_t link_reconnects;
    bool death_published;

    pthread_mutex_t lock;
    agent_queue queue;
    fleet_agent_stats stats; /* counters only; the rest is filled by get_stats */
    double latency_ewma_us;
    uint64_t heartbeat_seq;

    pthread_t worker;
    bool worker_started;
    atomic_int stopping; /* lock-free (checked at compile time): set from signal handlers */

    pthread_mutex_t beat_lock;
    pthread_cond_t beat_wake; /* CLOCK_MONOTONIC: a stepped wall clock must not stretch a wait */
    bool beat_stop;           /* under beat_lock */
    pthread_t beat;
    bool beat_started;
};

/* Adds n to one of the counters in stats (under lock). */
void agent_count(fleet_agent *a, uint64_t *counter, uint64_t n);

#endif
