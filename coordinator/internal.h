/* internal.h: the coordinator's parts and the state they share (not installed). */
#ifndef FLEET_COORDINATOR_INTERNAL_H
#define FLEET_COORDINATOR_INTERNAL_H

#include "fleet_coordinator.h"
#include "fleet_link.h"
#include "fleet_models.h"
#include "fleet_topics.h"

#include <signal.h>
#include <stdbool.h>

#define COORD_MAX_AGENTS 256
#define COORD_CHUNK_BYTES 65536u
#define COORD_MAX_CLASSES 64
#define COORD_MAX_REPLY_BYTES 1024 /* a request's response topic, its correlation data */

fleet_coordinator_status coord_fail(fleet_coordinator_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void coord_log(int level, int threshold, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* family.c: the variant models this coordinator distributes. */
typedef struct coord_variant {
    uint8_t *bytes; /* the ONNX file; owned */
    size_t size;
    char digest[FLEET_TOPICS_DIGEST_HEX + 1];
    float vp_weight;    /* (resolution / max) * (width / 0.35)^2 from metadata, else 1 */
    float val_accuracy; /* from metadata, else 1 */
    float temperature;  /* from metadata, else 1 */
    size_t classes;
    size_t input_count;    /* its one input's elements */
    size_t feature_count;  /* its second output's elements (0: none) */
    size_t feature_offset; /* where they start in the fusion head's input */
} coord_variant;

typedef struct coord_family {
    coord_variant variants[FLEET_COORDINATOR_MAX_VARIANTS];
    size_t count;
    size_t classes;
    size_t input_count; /* every variant reads the same request tensor */
    /* rule = fusion: the head's ONNX file (owned), its input size, its temperature */
    uint8_t *fusion_bytes;
    size_t fusion_size, fusion_inputs;
    float fusion_temperature;
} coord_family;

fleet_coordinator_status coord_family_load(const fleet_coordinator_config *cfg,
                                           coord_family *family);
void coord_family_free(coord_family *family);
/* The variants of family that assignment names, as a bitmask (a variant whose digest differs
 * is another family's: not named). */
uint32_t coord_family_named(const coord_family *family, const fleet_msg_assignment *assignment);
void coord_sha256_hex(const uint8_t *data, size_t size, char *hex);

/* membership.c: agents as their births, deaths and heartbeats describe them. */
typedef struct coord_agent {
    char id[FLEET_TOPICS_MAX_ID + 1];
    uint64_t bdseq;
    bool alive;
    bool silent; /* dead by heartbeat timeout, its session not ended: a heartbeat revives it */
    double last_seen_us;
    uint32_t cores;
    fleet_model_latency models[FLEET_TOPICS_MAX_VARIANTS]; /* loaded, from the latest birth */
    size_t n_models;
    uint32_t latency_ewma_us;
    uint32_t assigned;      /* bitmask of variants */
    uint32_t ever_assigned; /* every variant of ours an assignment of it has named: the only
                               ones it may send results for */
    uint64_t assigned_epoch;
    bool ours; /* this coordinator assigns it (peers.c); true until other coordinators show */
    bool seen_assignment; /* any assignment of it seen (by any coordinator) */
    uint64_t seen_epoch;  /* the highest epoch of an assignment seen for it (any author) */
    char followed_by[FLEET_TOPICS_MAX_ID + 1]; /* that assignment's author */
    uint32_t followed_named; /* the variants of ours it names (none: another stream's) */
    bool followed_mine;      /* that assignment, which the agent follows, is ours */
    bool retained_mine;      /* the latest one delivered, which the broker retains, is ours */
    double published_us;     /* when we last published an assignment to it */
} coord_agent;

typedef struct coord_members {
    coord_agent agents[COORD_MAX_AGENTS];
    size_t count;
} coord_members;

typedef enum coord_birth_outcome {
    COORD_BIRTH_UNCHANGED, /* nothing new, or a replayed old birth */
    COORD_BIRTH_CHANGED,   /* an agent came, came back, or loaded other models */
    COORD_BIRTH_FULL,      /* a new agent, and every agent of a full table is alive */
} coord_birth_outcome;

/* A new agent takes a free slot, else that of the agent dead the longest. */
coord_birth_outcome coord_members_birth(coord_members *m, const fleet_msg_birth *b, double now_us);
/* True when membership changed (the agent went). */
bool coord_members_death(coord_members *m, const fleet_msg_death *d);
/* True when the heartbeat brought back an agent declared dead for silence alone. */
bool coord_members_heartbeat(coord_members *m, const fleet_msg_heartbeat *h, double now_us);
/* Marks agents silent for longer than timeout as dead; true when any died. */
bool coord_members_expire(coord_members *m, double now_us, double timeout_us);
size_t coord_members_live(const coord_members *m);
coord_agent *coord_members_find(coord_members *m, const char *id);
/* Removes a dead agent whose session has ended (not one dead for silence alone, which may
 * come back); false when it is unknown, alive or silent. */
bool coord_members_forget(coord_members *m, const char *id);
/* True when a live agent assigned variant v has its model loaded. */
bool coord_members_serving(const coord_members *m, const coord_family *f, size_t v);
/* Another coordinator's assignment of an agent that is not ours: from our stream's leader, it
 * says which of our variants the agent serves (digests checked against the family); from
 * anyone else, that it serves none of ours. Returns true when that changed. */
bool coord_members_follow(coord_members *m, const coord_family *f, const fleet_msg_assignment *as,
                          bool from_leader);
/* Notes which of our variants an assignment of a (by anyone, ourselves included) names when
 * it is for stream, ours: the agent may send results for those from then on. One not older than
 * any seen is kept as what the agent follows (before or after coord_members_saw_assignment). */
void coord_members_note_assignment(coord_agent *a, const coord_family *f,
                                   const fleet_msg_assignment *as, const char *stream);
/* Whether agent may send a result for variant: it is known, and an assignment for our stream
 * once named the variant for it (the first result per variant counts, so an agent answering
 * for every variant would otherwise decide every request). */
bool coord_members_may_answer(coord_members *m, const char *agent, uint32_t variant);
/* Notes an assignment of agent a by author seen on the broker, where agents follow the highest
 * epoch and the broker retains the latest one published (delivered to us in the broker's order).
 * self is this coordinator's id. Returns true when it is fresh: the agent follows it. */
bool coord_members_saw_assignment(coord_agent *a, const char *author, uint64_t epoch,
                                  const char *self);
/* True when a is ours and alive but another coordinator's assignment is the one it follows or
 * the one the broker retains (for agents that connect later): ours must be given again. Two
 * coordinators that publish at once can leave either, whatever the epochs. */
bool coord_members_contested(const coord_agent *a);

/* peers.c: the other coordinators that share the fleet (from their retained states).
 * Coordinators of one stream form its group; the one with the smallest id leads it: it alone
 * assigns agents for the stream, the others follow its assignments (coord_members_follow).
 * Each agent belongs to the group leader with the highest coord_peers_score(agent, leader),
 * and each request of the stream to the group member with the highest
 * coord_peers_score(request id, member): coordinators that see the same peers agree without
 * talking, and a coordinator's coming or going moves only what it gains or loses. */
#define COORD_MAX_PEERS 64
#define COORD_STATE_REFRESH_US 5e6 /* every coordinator restates its online state this often */
#define COORD_PEER_SILENCE_US 16e6 /* a peer not heard from for this long is taken as gone */

typedef struct coord_peer {
    char id[FLEET_TOPICS_MAX_ID + 1];
    char stream[FLEET_TOPICS_MAX_ID + 1]; /* the stream it serves ("" when not announced) */
    double heard_us;                      /* its latest online state arrived then */
    bool backup;                          /* it holds backups and hands over (its state says) */
    uint64_t incarnation; /* which of its runs: a new number each time it comes online */
} coord_peer;

typedef struct coord_peers {
    char self[FLEET_TOPICS_MAX_ID + 1];
    char stream[FLEET_TOPICS_MAX_ID + 1]; /* the one self serves */
    coord_peer peers[COORD_MAX_PEERS];    /* online, self excluded */
    size_t count;
    uint64_t incarnations; /* the last number given to a peer that came online */
} coord_peers;

typedef enum coord_peers_change {
    COORD_PEERS_SAME,    /* nothing that moves an agent */
    COORD_PEERS_CHANGED, /* a coordinator came or went */
    COORD_PEERS_FULL,    /* a new coordinator, but COORD_MAX_PEERS are known: not counted */
} coord_peers_change;

uint64_t coord_peers_score(const char *agent, const char *coordinator);
/* Whether self leads its stream's group; whether coordinator id does. */
bool coord_peers_leader(const coord_peers *p);
bool coord_peers_leader_is(const coord_peers *p, const char *id);
/* Whether self assigns the agent. */
bool coord_peers_owns(const coord_peers *p, const char *agent);

/* What self does with a request of its stream: the group member that scores highest decides
 * it; the second, when both take part in backups (their states say so), holds a backup copy
 * and decides it if the first leaves. */
typedef enum coord_peers_role {
    COORD_PEERS_DECIDES,  /* self ranks first */
    COORD_PEERS_BACKS_UP, /* self ranks second, the first takes part */
    COORD_PEERS_OTHERS,   /* not its business */
} coord_peers_role;

/* Who holds a request besides self, as self sees it when the request arrives. */
typedef struct coord_roles {
    char owner[FLEET_TOPICS_MAX_ID + 1]; /* "": ours to decide; else we back up its request */
    uint64_t backup; /* ours: the run (incarnation) of the member next for it, which takes
                        part in backups and so holds one from now on; 0: none */
} coord_roles;

/* Also fills roles (owner when self backs up, backup when self decides). */
coord_peers_role coord_peers_role_for(const coord_peers *p, const char *request,
                                      coord_roles *roles);
/* Whether the peer run noted as incarnation (unique over all peers) is still online. */
bool coord_peers_present(const coord_peers *p, uint64_t incarnation);
/* A coordinator's state, arrived at now_us (coordinators restate theirs every
 * COORD_STATE_REFRESH_US, which keeps them from expiring). */
coord_peers_change coord_peers_update(coord_peers *p, const fleet_msg_coordinator_state *s,
                                      double now_us);
/* Removes one peer not heard from for longer than silence_us (its will may never come: it died
 * while the broker was down, and the broker then crashed, keeping its retained online state);
 * copies it into gone and returns true, or returns false when there is none. */
bool coord_peers_expire_one(coord_peers *p, double now_us, double silence_us, coord_peer *gone);
/* Removes peer id (its retained state was cleared); copies it into gone and returns true, or
 * returns false when it is not known. */
bool coord_peers_forget(coord_peers *p, const char *id, coord_peer *gone);
/* Sets every agent's `ours`; one that is not ours serves what its latest assignment names
 * of ours when our stream's leader wrote it, else none (that assignment may have come before
 * its author was known to lead). Returns how many agents changed hands. */
size_t coord_peers_claim(const coord_peers *p, coord_members *m);

/* assign.c: places every variant on `replication` live agents of ours, moving as little as
 * possible.
 * changed[i] is set for every agent index whose variants changed; returns how many. */
size_t coord_assign(coord_members *m, const coord_family *f, uint32_t replication, bool *changed);

/* stream.c: requests in flight for one stream and their decisions. */
typedef struct coord_pending coord_pending;

typedef struct coord_decided {
    char id[FLEET_TOPICS_MAX_ID + 1];
    uint64_t serial; /* one per decision, so that an id used again is another entry */
} coord_decided;

typedef struct coord_stream {
    char name[FLEET_TOPICS_MAX_ID + 1];
    coord_pending *slots; /* open addressing, linear probing */
    size_t capacity;      /* power of two, above twice max_pending */
    size_t count;         /* occupied slots (pending and recently decided) */
    size_t pending;       /* of which not decided yet */
    size_t max_pending;
    coord_decided *decided; /* in decision order: a ring of max_pending */
    uint64_t decided_serial;
    char (*due)[FLEET_TOPICS_MAX_ID + 1];     /* max_pending ids a scan is about to settle */
    char refusal[FLEET_TOPICS_MAX_ERROR + 1]; /* why coord_stream_request last refused */
    size_t decided_head, decided_count;
    fleet_ensemble_score *scores; /* max_pending blocks of variants x classes pairs */
    uint32_t *free_blocks;        /* a stack of unused block numbers */
    size_t n_free, variants, classes;
    double earliest_deadline_us; /* no pending request expires before this */
    double next_cleanup_us;
    /* rule = fusion (coord_stream_enable_fusion): this stream's own instance of the head, and
     * per pending request its input, the dequantized features (zeros for a missing variant) */
    fleet_model *fusion;
    float *features; /* max_pending blocks of fusion_inputs floats */
    size_t fusion_inputs;
    float fusion_temperature;
} coord_stream;

/* Where a decision goes: the request's MQTT v5 response topic (NULL: the stream's decision
 * topic) and correlation data, at the QoS the request arrived with (the requester chose the
 * guarantee; a QoS 0 request gets a QoS 0 decision and costs no acknowledgement). */
typedef struct coord_reply {
    const char *topic;
    const uint8_t *correlation;
    size_t correlation_len;
    int qos;
} coord_reply;

typedef struct coord_decision_sink {
    /* Called with each finished decision and where it goes; returns nothing. */
    void (*deliver)(void *ctx, const fleet_msg_decision *d, const coord_reply *reply);
    void *ctx;
} coord_decision_sink;

typedef struct coord_stream_env {
    const coord_family *family;
    fleet_ensemble_rule rule;
    const char *coordinator_id;
    uint32_t expected; /* variants that can answer now */
    coord_decision_sink sink;
    fleet_coordinator_stats *stats;
} coord_stream_env;

/* Memory is sized once: max_pending requests of `variants` results of up to `classes` pairs. */
fleet_coordinator_status coord_stream_init(coord_stream *s, const char *name, size_t max_pending,
                                           size_t variants, size_t classes);
/* From now on the stream takes int8 feature results only and decides with the family's
 * fusion head (loaded here, one instance per stream). */
fleet_coordinator_status coord_stream_enable_fusion(coord_stream *s, const coord_family *family);
void coord_stream_free(coord_stream *s);
/* False when this arrival was refused and answered at once with the reason, which
 * s->refusal also holds: its tensor does not fit the models, or its id is still remembered
 * from another requester (another response topic or correlation data). The same request
 * again (a retransmission) is ignored. roles (NULL: ours, no backup) say who else holds it:
 * held as a backup it collects results like any other but is released without a decision
 * when complete or due, unless coord_stream_owner_gone makes it ours. */
bool coord_stream_request(coord_stream *s, const coord_stream_env *env, const fleet_msg_request *r,
                          double arrival_us, double deadline_us, const coord_reply *reply,
                          const coord_roles *roles);
/* Answers a request at once with why as its error (the request is not held). */
void coord_stream_refuse(coord_stream *s, const coord_stream_env *env, const char *id,
                         double arrival_us, const coord_reply *reply, const char *why);
void coord_stream_result(coord_stream *s, const coord_stream_env *env, const fleet_msg_result *r,
                         double now_us, double default_deadline_us);
/* Whether the request is pending here (arrived and not decided yet). */
bool coord_stream_holds(const coord_stream *s, const char *id);
/* Decides what reached its deadline or can no longer grow; forgets old decisions. */
void coord_stream_sweep(coord_stream *s, const coord_stream_env *env, double now_us);
/* Re-evaluates pending requests after the set of answering variants shrank. */
void coord_stream_expected_changed(coord_stream *s, const coord_stream_env *env, double now_us);
/* Coordinator owner left (drained, its will, silence, a cleared state): the backups of its
 * requests become ours and are decided, at once when complete; those due by due_by_us (its
 * drained state's arrival: it decided them) are let go instead. */
void coord_stream_owner_gone(coord_stream *s, const coord_stream_env *env, const char *owner,
                             double due_by_us, double now_us);
/* We are leaving: lets go, without a decision, every request of ours due after cut_us (our
 * drained state's echo) whose backup holder is still there, taken(ctx, its incarnation): it
 * takes the request over. The rest stay ours to decide. */
void coord_stream_hand_over(coord_stream *s, const coord_stream_env *env,
                            bool (*taken)(void *ctx, uint64_t holder), void *ctx, double cut_us,
                            double now_us);
/* Decides every pending request now, with what it has (a coordinator that stops); backups
 * are released. */
void coord_stream_decide_all(coord_stream *s, const coord_stream_env *env, double now_us);

#endif
