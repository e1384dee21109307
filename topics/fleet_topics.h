/* fleet_topics.h: the fleet's wire contract: topic names and the msgpack codec of every message. */
#ifndef FLEET_TOPICS_H
#define FLEET_TOPICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Version written into every message ("v"); decoders accept this and any older version. */
#define FLEET_TOPICS_VERSION 1

#define FLEET_TOPICS_MAX_ID 64                 /* agent, coordinator, stream and request ids */
#define FLEET_TOPICS_MAX_ERROR 160             /* a refused request's explanation */
#define FLEET_TOPICS_MAX_DEADLINE_MS 86400000u /* a day: requests and assignments */
#define FLEET_TOPICS_MAX_PREFIX 128            /* the topic prefix, "fleet/<fleet-id>" */
#define FLEET_TOPICS_MAX_TOPIC                                                                     \
    288                                    /* a whole topic name: the longest, a result topic with \
                                              the longest prefix and ids, is 272 bytes */
#define FLEET_TOPICS_MAX_VARIANTS 16       /* variants in one assignment, decision or birth */
#define FLEET_TOPICS_MAX_TOPK 64           /* (class, probability) pairs in one result */
#define FLEET_TOPICS_MAX_DIMS 6            /* tensor rank */
#define FLEET_TOPICS_MAX_TENSOR (1u << 22) /* tensor and feature bytes (4 MiB) */
#define FLEET_TOPICS_MAX_CHUNK (1u << 18)  /* model chunk bytes (256 KiB) */
#define FLEET_TOPICS_DIGEST_HEX 64         /* SHA-256 as lowercase hex */

typedef enum fleet_topics_status {
    FLEET_TOPICS_OK = 0,
    FLEET_TOPICS_EINVAL,     /* a NULL or out-of-range argument, or a message that breaks a rule
                                on encode (an id too long, too many pairs, ...) */
    FLEET_TOPICS_ENOMEM,     /* an allocation failed */
    FLEET_TOPICS_EMALFORMED, /* not msgpack, or not the expected map */
    FLEET_TOPICS_ETYPE,      /* a known key has the wrong type */
    FLEET_TOPICS_EMISSING,   /* a required key is absent */
    FLEET_TOPICS_ERANGE,     /* a value is outside its bounds (size, count, id length, ...) */
    FLEET_TOPICS_EVERSION,   /* "v" is newer than this build understands */
    FLEET_TOPICS_ETOPIC,     /* a topic does not belong to the fleet or does not parse */
} fleet_topics_status;

const char *fleet_topics_strerror(fleet_topics_status status);
/* Detail of the calling thread's last failure ("result: key 'topk': expected an array"). */
const char *fleet_topics_last_error(void);

/* ---- Topics ---------------------------------------------------------------------------- */

/* Every topic lives under a prefix, "fleet/<fleet-id>" by default, so that a fleet can be
 * mounted inside an existing namespace:
 *   <p>/agent/<agent>/state            retained, QoS 1: birth, or death (also the MQTT will)
 *   <p>/agent/<agent>/heartbeat        QoS 0
 *   <p>/agent/<agent>/assignment       retained, QoS 1: what the agent runs
 *   <p>/agent/<agent>/chunk            QoS 1: model chunks for this agent
 *   <p>/agent/<agent>/model-get        QoS 1: the agent asks for chunks of a model by digest
 *   <p>/coordinator/<id>/state         retained, QoS 1: online, or offline (also the will)
 *   <p>/stream/<stream>/request        QoS 0 or 1: inference requests (clients publish)
 *   <p>/stream/<stream>/result/<agent> QoS 0: variant results (agents publish)
 *   <p>/stream/<stream>/decision       QoS 1: decisions without a response topic
 * Everything an agent publishes names it in the topic, so the broker's ACL (one pattern per
 * topic, %u) lets an agent speak only for itself.
 */
typedef enum fleet_topic_kind {
    FLEET_TOPIC_AGENT_STATE,
    FLEET_TOPIC_AGENT_HEARTBEAT,
    FLEET_TOPIC_AGENT_ASSIGNMENT,
    FLEET_TOPIC_AGENT_CHUNK,
    FLEET_TOPIC_AGENT_MODEL_GET,
    FLEET_TOPIC_COORDINATOR_STATE,
    FLEET_TOPIC_STREAM_REQUEST,
    FLEET_TOPIC_STREAM_RESULT,
    FLEET_TOPIC_STREAM_DECISION,
} fleet_topic_kind;

/* Writes the topic for kind and id (agent, coordinator or stream id; "+" gives a
 * subscription filter) into out. Ids may not contain '/', '+', '#' or NUL, nor be longer
 * than FLEET_TOPICS_MAX_ID; the prefix may not end in '/'. STREAM_RESULT names an agent too:
 * fleet_topic_build_result. */
fleet_topics_status fleet_topic_build(const char *prefix, fleet_topic_kind kind, const char *id,
                                      char *out, size_t out_size);

/* The topic on which agent publishes results for stream (either may be "+"). */
fleet_topics_status fleet_topic_build_result(const char *prefix, const char *stream,
                                             const char *agent, char *out, size_t out_size);

/* What a fleet topic names. */
typedef struct fleet_topic_ref {
    fleet_topic_kind kind;
    char id[FLEET_TOPICS_MAX_ID + 1];    /* the agent, coordinator or stream */
    char agent[FLEET_TOPICS_MAX_ID + 1]; /* STREAM_RESULT: the agent that sent it; else "" */
} fleet_topic_ref;

/* Recognises a topic under prefix. FLEET_TOPICS_ETOPIC for anything else (also for a
 * wildcard in place of an id). */
fleet_topics_status fleet_topic_parse(const char *prefix, const char *topic, fleet_topic_ref *out);

/* ---- Messages ------------------------------------------------------------------------- */

/* Encoders write into a malloc'd buffer that the caller owns and frees with free().
 * Decoders fill a caller-owned struct; byte arrays in decoded messages point INTO the payload
 * (borrowed: valid while the payload is), strings are copied into the struct. Unknown keys
 * are ignored so that newer peers can add fields. */

typedef struct fleet_model_latency {
    char digest[FLEET_TOPICS_DIGEST_HEX + 1];
    uint32_t latency_us; /* measured median inference time for one sample */
} fleet_model_latency;

/* Agent birth: published retained on <p>/agent/<agent>/state when the agent connects. */
typedef struct fleet_msg_birth {
    char agent[FLEET_TOPICS_MAX_ID + 1];
    uint64_t bdseq; /* birth/death sequence: grows with every agent start (a reconnect
                       reuses it: the will, fixed at connect, carries it too) */
    uint32_t cores;
    char cpu[64]; /* e.g. "x86_64 avx2 avx512f" */
    uint32_t memory_mb;
    char runtime[32];                                      /* fleetinfer version */
    fleet_model_latency models[FLEET_TOPICS_MAX_VARIANTS]; /* cached models */
    size_t n_models;
    uint64_t time_ms; /* agent's wall clock, Unix ms */
} fleet_msg_birth;

/* Agent death: the MQTT will (retained, same topic), or published on a clean shutdown. */
typedef struct fleet_msg_death {
    char agent[FLEET_TOPICS_MAX_ID + 1];
    uint64_t bdseq; /* the birth it ends; a newer birth makes it stale */
} fleet_msg_death;

/* Decodes either message on an agent state topic. */
typedef struct fleet_msg_agent_state {
    bool alive; /* birth (true) or death (false) */
    fleet_msg_birth birth;
    fleet_msg_death death;
} fleet_msg_agent_state;

typedef struct fleet_msg_heartbeat {
    char agent[FLEET_TOPICS_MAX_ID + 1];
    uint64_t bdseq;
    uint64_t seq;             /* heartbeat number within this birth */
    float load;               /* 1-minute load average over cores */
    uint32_t queue;           /* requests waiting */
    uint32_t latency_ewma_us; /* inference latency, exponentially weighted */
    uint64_t processed, dropped_expired, dropped_full, failed;
    uint64_t dropped_moved; /* queued for a stream the agent no longer served when their turn
                               came (its assignment moved it) */
    uint64_t time_ms;
} fleet_msg_heartbeat;

typedef struct fleet_msg_coordinator_state {
    char coordinator[FLEET_TOPICS_MAX_ID + 1];
    bool online;
    uint64_t time_ms;
    char stream[FLEET_TOPICS_MAX_ID + 1]; /* the stream it serves; "" when not said */
    /* Online only: it holds backups of its stream's requests for the member that ranks first,
     * and hands its own over to theirs when it leaves (docs/PROTOCOL.md, several coordinators). */
    bool backup;
    /* Offline only: it left on purpose (SIGTERM), not by its will. */
    bool drained;
} fleet_msg_coordinator_state;

typedef enum fleet_output_kind {
    FLEET_OUTPUT_TOPK = 0, /* (class, probability) pairs */
    FLEET_OUTPUT_INT8 = 1, /* int8 features with scale and zero point */
} fleet_output_kind;

typedef struct fleet_assigned_variant {
    uint32_t variant; /* index in the family */
    char digest[FLEET_TOPICS_DIGEST_HEX + 1];
    uint64_t model_bytes;
    fleet_output_kind output;
    uint32_t k;        /* TOPK: pairs to publish */
    float temperature; /* softmax temperature (calibrated) */
} fleet_assigned_variant;

/* Retained on <p>/agent/<agent>/assignment. An agent ignores an epoch lower than the one it
 * follows. An empty variant list means: stand by. */
typedef struct fleet_msg_assignment {
    char agent[FLEET_TOPICS_MAX_ID + 1];
    char coordinator[FLEET_TOPICS_MAX_ID + 1];
    uint64_t epoch;
    char stream[FLEET_TOPICS_MAX_ID + 1]; /* the stream whose requests to serve */
    /* The stream's deadline for a request that states none (0, absent: 1 s), which the
     * agent must share with the coordinator to drop what the coordinator no longer awaits. */
    uint32_t deadline_ms;
    fleet_assigned_variant variants[FLEET_TOPICS_MAX_VARIANTS];
    size_t n_variants;
} fleet_msg_assignment;

/* <p>/agent/<agent>/model-get: chunks [first, first + count) of a model; answered on the
 * agent's chunk topic. */
typedef struct fleet_msg_model_get {
    char agent[FLEET_TOPICS_MAX_ID + 1];
    char digest[FLEET_TOPICS_DIGEST_HEX + 1];
    uint32_t first;
    uint32_t count;
} fleet_msg_model_get;

typedef struct fleet_msg_chunk {
    char digest[FLEET_TOPICS_DIGEST_HEX + 1];
    uint32_t index;       /* chunk number */
    uint32_t chunks;      /* total chunks of the model */
    uint64_t total_bytes; /* whole model size */
    const uint8_t *data;  /* borrowed from the payload on decode */
    size_t size;
} fleet_msg_chunk;

typedef enum fleet_dtype {
    FLEET_DTYPE_U8 = 0,  /* raw pixels: real = scale * (q - zero_point) */
    FLEET_DTYPE_F32 = 1, /* little-endian float32 */
    FLEET_DTYPE_I8 = 2,  /* quantized: real = scale * (q - zero_point) */
} fleet_dtype;

typedef struct fleet_tensor {
    fleet_dtype dtype;
    float scale;        /* U8, I8 */
    int32_t zero_point; /* U8, I8 */
    uint32_t shape[FLEET_TOPICS_MAX_DIMS];
    size_t rank;
    const uint8_t *data; /* borrowed from the payload on decode */
    size_t size;         /* bytes; must equal the shape's elements times the dtype's width */
} fleet_tensor;

/* <p>/stream/<stream>/request. MQTT v5 properties carry the rest: a response topic and
 * correlation data (the decision goes there), and message expiry (the deadline). */
typedef struct fleet_msg_request {
    char id[FLEET_TOPICS_MAX_ID + 1];
    char stream[FLEET_TOPICS_MAX_ID + 1];
    uint32_t deadline_ms; /* answer within this budget from arrival; 0 = the stream's default */
    fleet_tensor tensor;
} fleet_msg_request;

typedef struct fleet_msg_result {
    char id[FLEET_TOPICS_MAX_ID + 1];
    char stream[FLEET_TOPICS_MAX_ID + 1];
    char agent[FLEET_TOPICS_MAX_ID + 1];
    uint32_t variant;
    uint64_t epoch; /* the assignment it ran under */
    fleet_output_kind output;
    uint16_t classes[FLEET_TOPICS_MAX_TOPK]; /* TOPK */
    float probs[FLEET_TOPICS_MAX_TOPK];
    size_t k;
    fleet_tensor features; /* INT8: dtype I8, rank 1 */
    uint32_t infer_us;     /* the variant's own inference time */
} fleet_msg_result;

typedef struct fleet_msg_decision {
    char id[FLEET_TOPICS_MAX_ID + 1];
    char stream[FLEET_TOPICS_MAX_ID + 1];
    char coordinator[FLEET_TOPICS_MAX_ID + 1];
    int32_t cls; /* -1 when no variant answered in time */
    float confidence;
    uint16_t classes[FLEET_TOPICS_MAX_TOPK]; /* combined top-k */
    float probs[FLEET_TOPICS_MAX_TOPK];
    size_t k;
    uint32_t used[FLEET_TOPICS_MAX_VARIANTS]; /* variants that answered in time */
    size_t n_used;
    uint32_t missing[FLEET_TOPICS_MAX_VARIANTS]; /* assigned variants that did not */
    size_t n_missing;
    bool degraded;
    char rule[24];     /* aggregation rule name */
    uint32_t total_us; /* request arrival at the coordinator to decision sent */
    uint32_t slowest_infer_us;
    uint32_t aggregate_us;
    char error[FLEET_TOPICS_MAX_ERROR + 1]; /* why the request was refused; "" when decided */
} fleet_msg_decision;

/* Each message type has an encoder and a decoder:
 *   fleet_topics_status fleet_msg_X_encode(const fleet_msg_X *m, uint8_t **buf, size_t *len);
 *   fleet_topics_status fleet_msg_X_decode(const uint8_t *buf, size_t len, fleet_msg_X *m);
 */
#define FLEET_TOPICS_CODEC(name)                                                                   \
    fleet_topics_status fleet_msg_##name##_encode(const fleet_msg_##name *m, uint8_t **buf,        \
                                                  size_t *len);                                    \
    fleet_topics_status fleet_msg_##name##_decode(const uint8_t *buf, size_t len,                  \
                                                  fleet_msg_##name *m)
FLEET_TOPICS_CODEC(birth);
FLEET_TOPICS_CODEC(death);
FLEET_TOPICS_CODEC(heartbeat);
FLEET_TOPICS_CODEC(coordinator_state);
FLEET_TOPICS_CODEC(assignment);
FLEET_TOPICS_CODEC(model_get);
FLEET_TOPICS_CODEC(chunk);
FLEET_TOPICS_CODEC(request);
FLEET_TOPICS_CODEC(result);
FLEET_TOPICS_CODEC(decision);
#undef FLEET_TOPICS_CODEC

/* Birth or death, told apart by their "type" key. */
fleet_topics_status fleet_msg_agent_state_decode(const uint8_t *buf, size_t len,
                                                 fleet_msg_agent_state *m);

/* Bytes per element of a dtype (1 or 4). */
size_t fleet_dtype_width(fleet_dtype dtype);

/* The decision as one JSON object (for mirroring to existing dashboards); malloc'd. */
fleet_topics_status fleet_msg_decision_to_json(const fleet_msg_decision *m, char **json);

#ifdef __cplusplus
}
#endif
#endif
