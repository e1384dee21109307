/* fleet_agent.h: the fleet agent: runs its assigned variants on every request of its stream.
 *
 * One agent is one MQTT session (client id and user name = the agent id). It announces itself
 * with a retained birth (the will is a retained death), follows the retained assignment the
 * coordinator publishes for it, fetches missing models in chunks and verifies their SHA-256,
 * and runs every loaded variant on each request of its stream, publishing Top-k pairs or int8
 * features. docs/agent.md is the reference; docs/PROTOCOL.md the wire contract.
 *
 * Threads: fleet_agent_run's thread handles assignments, chunks, model downloads and loading,
 * and the subscriptions; one worker thread runs the models and publishes the results; a beat
 * thread publishes the heartbeats, so that they keep coming while the main thread is busy for
 * seconds (loading and timing a large model, waiting for a SUBACK). Out-of-memory policy:
 * allocation failures are reported (FLEET_AGENT_ENOMEM, or a failed request / download that is
 * logged), never aborts. */
#ifndef FLEET_AGENT_H
#define FLEET_AGENT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum fleet_agent_status {
    FLEET_AGENT_OK = 0,
    FLEET_AGENT_EINVAL,  /* a bad configuration value or argument */
    FLEET_AGENT_ENOMEM,  /* an allocation failed */
    FLEET_AGENT_ESYSERR, /* the cache directory, its files or a thread could not be set up */
    FLEET_AGENT_ELINK,   /* the broker could not be reached or refused a subscription */
} fleet_agent_status;

const char *fleet_agent_strerror(fleet_agent_status status);
/* Detail of the calling thread's last failure ("agent.conf:3: bad value 'x' for 'queue'"). */
const char *fleet_agent_last_error(void);

typedef struct fleet_agent_config {
    char id[65];      /* agent id (required): MQTT client id, and user name unless `user` */
    char broker[256]; /* "tcp://127.0.0.1:1883" */
    char user[65];    /* MQTT user name; empty: the id (the project's ACL needs user == id) */
    char password[128];
    char prefix[128];      /* "fleet/default" */
    char cache[512];       /* model cache and bdseq file; empty: "/var/lib/fleetinfer/<id>" */
    uint32_t threads;      /* intra-op threads per inference (0: the worker thread alone) */
    uint32_t queue;        /* requests waiting; when full the oldest is dropped (64) */
    uint32_t heartbeat_ms; /* (1000) */
    int log_level;         /* 0 error, 1 warn, 2 info, 3 debug (2) */
} fleet_agent_config;

/* The defaults above; no id. */
void fleet_agent_config_init(fleet_agent_config *config);
/* Reads `key = value` lines ('#' starts a comment) over config's current values. Unknown keys
 * and bad values fail with "path:line: reason" in fleet_agent_last_error; config may then be
 * partly updated. Keys: id, broker, user, password, password_file, prefix, cache, threads,
 * queue, heartbeat_ms, log_level (error | warn | info | debug). */
fleet_agent_status fleet_agent_config_load(const char *path, fleet_agent_config *config);
/* Sets one key as the file would (flags use this too). key and value are borrowed. */
fleet_agent_status fleet_agent_config_set(fleet_agent_config *config, const char *key,
                                          const char *value);
/* fleet_agent_config_set in the shape of a fleet_conf_setter (ctx: the config). */
int fleet_agent_config_setter(void *ctx, const char *key, const char *value, char *detail,
                              size_t size);

typedef struct fleet_agent fleet_agent;

/* Creates the cache directory, bumps the birth sequence stored there (<cache>/bdseq),
 * connects with a retained death as the will, subscribes, starts the worker thread, publishes
 * the retained birth and then starts the beat thread (heartbeats from now on, whether or not
 * fleet_agent_run is called). config is copied. *out is written only on success. On
 * failure what is left behind is the incremented bdseq and, when the connection had been
 * made, the retained death of that bdseq (harmless: a death never outranks a later birth). */
fleet_agent_status fleet_agent_create(const fleet_agent_config *config, fleet_agent **out);

/* Serves until fleet_agent_stop (call once, from one thread). On stop it takes no more
 * requests, discards the queued ones, lets the one in flight finish, stops the heartbeats and
 * publishes the retained death (same bdseq as the birth; no heartbeat follows it). Returns
 * FLEET_AGENT_OK on a clean stop. */
fleet_agent_status fleet_agent_run(fleet_agent *agent);

/* Asks fleet_agent_run to return: within ~50 ms plus the request in flight, or once the main
 * thread's current step is done (loading and timing a newly downloaded model, or waiting up to
 * 5 s for a SUBACK); the heartbeats go on meanwhile, until just before the death. Only sets a
 * flag: async-signal-safe and thread-safe, may be called from a SIGTERM handler, before or
 * during run. */
void fleet_agent_stop(fleet_agent *agent);

/* Disconnects cleanly (the broker does not publish the will) and frees everything. Call after
 * fleet_agent_run has returned, or instead of it (then it stops the heartbeats and publishes the
 * death itself). NULL is a no-op. */
void fleet_agent_destroy(fleet_agent *agent);

typedef struct fleet_agent_stats {
    uint64_t processed;       /* requests on which at least one variant ran */
    uint64_t dropped_expired; /* requests whose deadline passed before the worker took them */
    uint64_t dropped_full;    /* requests pushed out of a full queue (the oldest go first) */
    uint64_t dropped_moved;   /* requests queued for a stream the agent had left by their turn */
    uint64_t failed;          /* requests a variant could not run (wrong size, model error) */
    uint64_t bad_messages;    /* undecodable or inconsistent messages on any topic */
    uint64_t reconnects;      /* broker sessions re-established (each with a new birth) */
    uint64_t bdseq, epoch;    /* this session's birth sequence; the assignment followed */
    uint32_t variants_assigned, variants_ready; /* ready: model loaded */
    uint32_t queued;                            /* requests waiting now */
} fleet_agent_stats;

/* A consistent snapshot; safe from any thread while the agent exists. */
void fleet_agent_get_stats(fleet_agent *agent, fleet_agent_stats *stats);

#ifdef __cplusplus
}
#endif
#endif
