/* agent.c: the agent's life: create, the main loop, stop, destroy; errors and logs. */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "fleet_agent_stop needs a lock-free atomic int");

#define AGENT_POLL_MS 50 /* the longest the main loop waits: how fast a stop is seen */

static _Thread_local char agent_error[512] = "no error";

fleet_agent_status agent_fail(fleet_agent_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    /* Through a copy: an argument may be the last error itself, wrapped in a new one. */
    char text[sizeof agent_error];
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    memcpy(agent_error, text, sizeof text);
    return status;
}

const char *fleet_agent_last_error(void)
{
    return agent_error;
}

const char *fleet_agent_strerror(fleet_agent_status status)
{
    static const char *const text[] = {"success", "invalid configuration or argument",
                                       "out of memory", "system error",
                                       "broker unreachable or refusing"};
    return (size_t)status < sizeof text / sizeof text[0] ? text[status] : "unknown status";
}

void agent_log(const fleet_agent *a, int level, const char *fmt, ...)
{
    if (level > a->cfg.log_level)
        return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fleet_log("fleet-agent", level, a->cfg.log_level, "%s: %s", a->cfg.id, line);
}

void agent_count(fleet_agent *a, uint64_t *counter, uint64_t n)
{
    pthread_mutex_lock(&a->lock);
    *counter += n;
    pthread_mutex_unlock(&a->lock);
}

static fleet_agent_status build_topics(fleet_agent *a)
{
    const char *p = a->cfg.prefix, *id = a->cfg.id;
    if (fleet_topic_build(p, FLEET_TOPIC_AGENT_STATE, id, a->topic_state, sizeof a->topic_state) ||
        fleet_topic_build(p, FLEET_TOPIC_AGENT_HEARTBEAT, id, a->topic_heartbeat,
                          sizeof a->topic_heartbeat) ||
        fleet_topic_build(p, FLEET_TOPIC_AGENT_ASSIGNMENT, id, a->topic_assignment,
                          sizeof a->topic_assignment) ||
        fleet_topic_build(p, FLEET_TOPIC_AGENT_CHUNK, id, a->topic_chunk, sizeof a->topic_chunk) ||
        fleet_topic_build(p, FLEET_TOPIC_AGENT_MODEL_GET, id, a->topic_get, sizeof a->topic_get) ||
        fleet_topic_build(p, FLEET_TOPIC_COORDINATOR_STATE, "+", a->topic_coordinators,
                          sizeof a->topic_coordinators))
        return agent_fail(FLEET_AGENT_EINVAL, "bad id '%s' or prefix '%s': %s", id, p,
                          fleet_topics_last_error());
    return FLEET_AGENT_OK;
}

static bool deliver_message(void *ctx, fleet_link_message *m);

/* The will: the broker publishes this retained death if the session vanishes. */
static fleet_agent_status connect_link(fleet_agent *a)
{
    fleet_msg_death will = {.bdseq = a->bdseq};
    snprintf(will.agent, sizeof will.agent, "%s", a->cfg.id);
    uint8_t *buf = NULL;
    size_t len = 0;
    if (fleet_msg_death_encode(&will, &buf, &len) != FLEET_TOPICS_OK)
        return agent_fail(FLEET_AGENT_EINVAL, "will: %s", fleet_topics_last_error());
    fleet_link_options o;
    fleet_link_options_init(&o);
    o.url = a->cfg.broker;
    o.client_id = a->cfg.id;
    o.username = a->cfg.user[0] ? a->cfg.user : a->cfg.id;
    o.password = a->cfg.password[0] ? a->cfg.password : NULL;
    o.will_topic = a->topic_state;
    o.will_payload = buf;
    o.will_len = len;
    o.will_qos = 1;
    o.will_retained = 1;
    o.deliver = deliver_message;
    o.deliver_ctx = a;
    fleet_link_status ls = fleet_link_create(&o, &a->link);
    free(buf);
    if (ls != FLEET_LINK_OK)
        return agent_fail(FLEET_AGENT_ELINK, "%s", fleet_link_last_error());
    if (fleet_link_subscribe(a->link, a->topic_assignment, 1) != FLEET_LINK_OK ||
        fleet_link_subscribe(a->link, a->topic_chunk, 1) != FLEET_LINK_OK ||
        fleet_link_subscribe(a->link, a->topic_coordinators, 1) != FLEET_LINK_OK)
        return agent_fail(FLEET_AGENT_ELINK, "%s", fleet_link_last_error());
    return FLEET_AGENT_OK;
}

/* beat_wake waits on CLOCK_MONOTONIC: a gateway's wall clock may be stepped (NTP after boot),
 * and a step back would stretch a wait and silence the heartbeats. */
static void init_beat_sync(fleet_agent *a)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&a->beat_wake, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&a->beat_lock, NULL);
}

fleet_agent_status fleet_agent_create(const fleet_agent_config *config, fleet_agent **out)
{
    if (!config || !out || !config->id[0])
        return agent_fail(FLEET_AGENT_EINVAL, "an agent id is required");
    fleet_agent *a = calloc(1, sizeof *a);
    if (!a)
        return agent_fail(FLEET_AGENT_ENOMEM, "out of memory");
    a->cfg = *config;
    if (!a->cfg.cache[0])
        snprintf(a->cfg.cache, sizeof a->cfg.cache, "/var/lib/fleetinfer/%s", a->cfg.id);
    pthread_mutex_init(&a->models_lock, NULL);
    pthread_mutex_init(&a->lock, NULL);
    init_beat_sync(a);
    atomic_init(&a->stopping, 0);
    fleet_agent_status st = build_topics(a);
    if (st == FLEET_AGENT_OK)
        st = agent_queue_init(&a->queue, a->cfg.queue ? a->cfg.queue : 64);
    if (st == FLEET_AGENT_OK)
        st = agent_cache_prepare(a);
    if (st == FLEET_AGENT_OK)
        st = connect_link(a);
    if (st == FLEET_AGENT_OK && pthread_create(&a->worker, NULL, agent_worker, a) != 0)
        st = agent_fail(FLEET_AGENT_ESYSERR, "cannot start the worker thread");
    if (st != FLEET_AGENT_OK)
        goto fail;
    a->worker_started = true;
    agent_publish_birth(a);
    if ((st = agent_beat_start(a)) != FLEET_AGENT_OK)
        goto fail; /* destroy publishes the death of the birth just sent */
    agent_log(a, FLEET_LOG_INFO, "up (bdseq %llu) at %s, cache %s", (unsigned long long)a->bdseq,
              a->cfg.broker, a->cfg.cache);
    *out = a;
    return FLEET_AGENT_OK;
fail:
    fleet_agent_destroy(a);
    return st;
}

/* Main thread: it is the only writer of the variants, so it reads them without the lock. */
static bool any_ready(const fleet_agent *a)
{
    for (size_t i = 0; i < a->n_variants; i++)
        if (a->variants[i].model)
            return true;
    return false;
}

static void dispatch(fleet_agent *a, fleet_link_message *m)
{
    fleet_topic_ref t;
    if (fleet_topic_parse(a->cfg.prefix, m->topic, &t) != FLEET_TOPICS_OK)
        t = (fleet_topic_ref){.kind = FLEET_TOPIC_STREAM_DECISION}; /* nothing we listen to */
    bool mine = strcmp(t.id, a->cfg.id) == 0;
    if (t.kind == FLEET_TOPIC_AGENT_ASSIGNMENT && mine)
        agent_on_assignment(a, m);
    else if (t.kind == FLEET_TOPIC_AGENT_CHUNK && mine)
        agent_on_chunk(a, m);
    else if (t.kind == FLEET_TOPIC_COORDINATOR_STATE)
        agent_on_coordinator(a, m, t.id);
    fleet_link_message_free(m);
}

/* Paho's receive thread: requests go straight to the work queue (no hop through the main
 * thread); everything else to the main thread. */
static bool deliver_message(void *ctx, fleet_link_message *m)
{
    fleet_agent *a = ctx;
    fleet_topic_ref t;
    if (fleet_topic_parse(a->cfg.prefix, m->topic, &t) != FLEET_TOPICS_OK ||
        t.kind != FLEET_TOPIC_STREAM_REQUEST)
        return false;
    agent_queue_offer(a, t.id, m);
    return true;
}

/* A new broker session (fleet_link reconnects and resubscribes by itself) needs a new birth:
 * the broker has published the will of the lost one. */
static void check_reconnect(fleet_agent *a)
{
    fleet_link_stats ls;
    fleet_link_get_stats(a->link, &ls);
    if (ls.reconnects == a->link_reconnects)
        return;
    agent_count(a, &a->stats.reconnects, ls.reconnects - a->link_reconnects);
    a->link_reconnects = ls.reconnects;
    agent_log(a, FLEET_LOG_WARN, "reconnected to %s; publishing the birth again", a->cfg.broker);
    agent_publish_birth(a);
}

/* The death is the last thing the session says: the beat thread is joined first. */
static void publish_death_last(fleet_agent *a)
{
    agent_beat_stop(a);
    agent_publish_death(a);
    a->death_published = true;
}

/* Heartbeats are not this loop's job (the beat thread's): a step here may take seconds. */
fleet_agent_status fleet_agent_run(fleet_agent *a)
{
    while (!atomic_load(&a->stopping)) {
        agent_tick_downloads(a, fleet_link_now_us());
        check_reconnect(a);
        fleet_link_message *m = NULL;
        fleet_link_status st = fleet_link_receive(a->link, AGENT_POLL_MS, &m);
        if (st == FLEET_LINK_OK)
            dispatch(a, m);
        else if (st == FLEET_LINK_ECLOSED)
            break;
        /* An assignment or a finished download may change which requests can be served. */
        agent_queue_admit(a, a->stream, any_ready(a));
    }
    size_t discarded = agent_queue_close(a);
    if (a->worker_started) { /* the request in flight finishes first */
        pthread_join(a->worker, NULL);
        a->worker_started = false;
    }
    publish_death_last(a); /* at once, rather than the will after a keep-alive timeout */
    agent_log(a, FLEET_LOG_INFO, "stopping (bdseq %llu, %zu queued request(s) discarded)",
              (unsigned long long)a->bdseq, discarded);
    return FLEET_AGENT_OK;
}

void fleet_agent_stop(fleet_agent *a)
{
    if (a)
        atomic_store(&a->stopping, 1);
}

void fleet_agent_get_stats(fleet_agent *a, fleet_agent_stats *stats)
{
    pthread_mutex_lock(&a->models_lock);
    pthread_mutex_lock(&a->lock);
    *stats = a->stats;
    stats->queued = (uint32_t)a->queue.count;
    pthread_mutex_unlock(&a->lock);
    stats->bdseq = a->bdseq;
    stats->epoch = a->epoch;
    stats->variants_assigned = (uint32_t)a->n_variants;
    stats->variants_ready = 0;
    for (size_t i = 0; i < a->n_variants; i++)
        stats->variants_ready += a->variants[i].model != NULL;
    pthread_mutex_unlock(&a->models_lock);
}

void fleet_agent_destroy(fleet_agent *a)
{
    if (!a)
        return;
    if (a->worker_started) {
        agent_queue_close(a);
        pthread_join(a->worker, NULL);
    }
    if (a->link && !a->death_published) /* destroyed without run: still say goodbye */
        publish_death_last(a);
    fleet_link_destroy(a->link); /* a clean DISCONNECT: no will */
    agent_variants_free(a);
    agent_queue_free(&a->queue);
    pthread_cond_destroy(&a->beat_wake);
    pthread_mutex_destroy(&a->beat_lock);
    pthread_mutex_destroy(&a->lock);
    pthread_mutex_destroy(&a->models_lock);
    free(a);
}
