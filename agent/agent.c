/* agent.c: the agent's life: birth and will, heartbeats, assignments, model chunks, requests. */
#define _DEFAULT_SOURCE /* getloadavg */
#include "internal.h"

#include "fleet_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#define AGENT_DOWNLOAD_RETRY_US 2e6
#define AGENT_DOWNLOAD_TRIES 5

static _Thread_local char agent_error[384] = "no error";

fleet_agent_status agent_fail(fleet_agent_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(agent_error, sizeof agent_error, fmt, ap);
    va_end(ap);
    return status;
}

const char *fleet_agent_last_error(void)
{
    return agent_error;
}

const char *fleet_agent_strerror(fleet_agent_status status)
{
    static const char *const text[] = {"success", "invalid configuration", "out of memory",
                                       "system error", "broker unreachable"};
    return (size_t)status < sizeof text / sizeof text[0] ? text[status] : "unknown status";
}

void agent_log(int level, int threshold, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fleet_log("fleet-agent", level, threshold, "%s", line);
}

#define LOG(a, level, ...) agent_log(level, (a)->cfg.log_level, __VA_ARGS__)

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void publish(fleet_agent *a, const char *topic, fleet_topics_status st, uint8_t *buf,
                    size_t len, int qos, int retained)
{
    if (st != FLEET_TOPICS_OK)
        LOG(a, 0, "cannot encode for %s: %s", topic, fleet_topics_last_error());
    else if (fleet_link_publish(a->link, topic, buf, len, qos, retained, NULL) != FLEET_LINK_OK)
        LOG(a, 1, "publish to %s: %s", topic, fleet_link_last_error());
    free(buf);
}

/* "x86_64 avx2 avx512f": the machine and the SIMD levels that matter to XNNPACK. */
static void cpu_summary(char *out, size_t size)
{
    struct utsname u;
    snprintf(out, size, "%.20s", uname(&u) == 0 ? u.machine : "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[4096];
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "flags", 5) == 0 || strncmp(line, "Features", 8) == 0) {
            const char *wanted[] = {" avx2", " avx512f", " fma", " neon", " asimd"};
            for (size_t i = 0; i < sizeof wanted / sizeof wanted[0]; i++)
                if (strstr(line, wanted[i]) && strlen(out) + strlen(wanted[i]) < size)
                    strcat(out, wanted[i]);
            break;
        }
    if (f)
        fclose(f);
}

void agent_publish_birth(fleet_agent *a)
{
    fleet_msg_birth b;
    memset(&b, 0, sizeof b);
    snprintf(b.agent, sizeof b.agent, "%s", a->cfg.id);
    snprintf(b.runtime, sizeof b.runtime, "fleetinfer 0.1.0");
    cpu_summary(b.cpu, sizeof b.cpu);
    b.bdseq = a->bdseq;
    long cores = sysconf(_SC_NPROCESSORS_ONLN), pages = sysconf(_SC_PHYS_PAGES);
    b.cores = cores > 0 ? (uint32_t)cores : 1;
    b.memory_mb =
        pages > 0 ? (uint32_t)((uint64_t)pages * (uint64_t)sysconf(_SC_PAGESIZE) >> 20) : 0;
    b.time_ms = wall_ms();
    pthread_mutex_lock(&a->lock);
    for (size_t i = 0; i < a->n_variants; i++)
        if (a->variants[i].model) {
            fleet_model_latency *m = &b.models[b.n_models++];
            snprintf(m->digest, sizeof m->digest, "%s", a->variants[i].spec.digest);
            m->latency_us = a->variants[i].latency_us;
        }
    pthread_mutex_unlock(&a->lock);
    uint8_t *buf = NULL;
    size_t len = 0;
    fleet_topics_status st = fleet_msg_birth_encode(&b, &buf, &len);
    publish(a, a->topic_state, st, buf, len, 1, 1);
}

static void publish_death(fleet_agent *a)
{
    fleet_msg_death d = {.bdseq = a->bdseq};
    snprintf(d.agent, sizeof d.agent, "%s", a->cfg.id);
    uint8_t *buf = NULL;
    size_t len = 0;
    fleet_topics_status st = fleet_msg_death_encode(&d, &buf, &len);
    publish(a, a->topic_state, st, buf, len, 1, 1);
}

static void publish_heartbeat(fleet_agent *a)
{
    fleet_msg_heartbeat h;
    memset(&h, 0, sizeof h);
    snprintf(h.agent, sizeof h.agent, "%s", a->cfg.id);
    double load[1] = {0};
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (getloadavg(load, 1) == 1 && cores > 0)
        h.load = (float)(load[0] / (double)cores);
    pthread_mutex_lock(&a->lock);
    h.bdseq = a->bdseq;
    h.seq = ++a->heartbeat_seq;
    h.queue = (uint32_t)a->queue.count;
    h.latency_ewma_us = (uint32_t)a->latency_ewma_us;
    h.processed = a->stats.processed;
    h.dropped_expired = a->stats.dropped_expired;
    h.dropped_full = a->stats.dropped_full;
    h.failed = a->stats.failed;
    pthread_mutex_unlock(&a->lock);
    h.time_ms = wall_ms();
    uint8_t *buf = NULL;
    size_t len = 0;
    fleet_topics_status st = fleet_msg_heartbeat_encode(&h, &buf, &len);
    publish(a, a->topic_heartbeat, st, buf, len, 0, 0);
}

/* Keeps the models of variants that stay; loads or fetches the new ones. */
static bool apply_assignment(fleet_agent *a, const fleet_msg_assignment *m)
{
    agent_variant next[FLEET_TOPICS_MAX_VARIANTS];
    bool loaded = false;
    memset(next, 0, sizeof next);
    for (size_t i = 0; i < m->n_variants; i++) {
        next[i].spec = m->variants[i];
        for (size_t k = 0; k < a->n_variants; k++)
            if (a->variants[k].model &&
                strcmp(a->variants[k].spec.digest, next[i].spec.digest) == 0) {
                next[i].model = a->variants[k].model;
                next[i].latency_us = a->variants[k].latency_us;
                a->variants[k].model = NULL;
            }
        if (!next[i].model &&
            (next[i].model = agent_cache_load(a, next[i].spec.digest, &next[i].latency_us)))
            loaded = true;
    }
    for (size_t k = 0; k < a->n_variants; k++) {
        agent_model_close(a->variants[k].model);
        agent_download_reset(&a->variants[k].download);
    }
    memcpy(a->variants, next, sizeof next);
    a->n_variants = m->n_variants;
    a->epoch = m->epoch;
    snprintf(a->stream, sizeof a->stream, "%s", m->stream);
    return loaded;
}

static void on_assignment(fleet_agent *a, const fleet_link_message *msg)
{
    fleet_msg_assignment m;
    if (fleet_msg_assignment_decode(msg->payload, msg->len, &m) != FLEET_TOPICS_OK ||
        strcmp(m.agent, a->cfg.id) != 0) {
        LOG(a, 1, "ignoring a bad assignment: %s", fleet_topics_last_error());
        a->stats.bad_messages++;
        return;
    }
    pthread_mutex_lock(&a->lock);
    bool stale = m.epoch < a->epoch;
    bool loaded = !stale && apply_assignment(a, &m);
    pthread_mutex_unlock(&a->lock);
    if (stale) {
        LOG(a, 2, "ignoring assignment epoch %llu (following %llu)", (unsigned long long)m.epoch,
            (unsigned long long)a->epoch);
        return;
    }
    LOG(a, 2, "assignment epoch %llu: %zu variant(s) on stream '%s'", (unsigned long long)m.epoch,
        m.n_variants, m.stream);
    if (fleet_topic_build(a->cfg.prefix, FLEET_TOPIC_STREAM_RESULT, m.stream, a->topic_result,
                          sizeof a->topic_result) == FLEET_TOPICS_OK) {
        char filter[FLEET_TOPICS_MAX_TOPIC];
        fleet_topic_build(a->cfg.prefix, FLEET_TOPIC_STREAM_REQUEST, m.stream, filter,
                          sizeof filter);
        fleet_link_subscribe(a->link, filter, 0); /* the link ignores nothing: serve filters */
    }
    pthread_mutex_lock(&a->lock);
    for (size_t i = 0; i < a->n_variants; i++)
        if (!a->variants[i].model)
            agent_download_request(a, &a->variants[i]);
    pthread_mutex_unlock(&a->lock);
    if (loaded || m.n_variants == 0)
        agent_publish_birth(a);
}

static void on_chunk(fleet_agent *a, const fleet_link_message *msg)
{
    fleet_msg_chunk c;
    if (fleet_msg_chunk_decode(msg->payload, msg->len, &c) != FLEET_TOPICS_OK) {
        a->stats.bad_messages++;
        return;
    }
    bool loaded = false;
    pthread_mutex_lock(&a->lock);
    for (size_t i = 0; i < a->n_variants; i++) {
        agent_variant *v = &a->variants[i];
        if (v->model || strcmp(v->spec.digest, c.digest) != 0)
            continue;
        if ((v->model = agent_download_chunk(a, v, &c, &v->latency_us)))
            loaded = true;
    }
    pthread_mutex_unlock(&a->lock);
    if (loaded) {
        LOG(a, 2, "model %.12s fetched, verified and loaded", c.digest);
        agent_publish_birth(a);
    }
}

/* Downloads that stalled (a lost chunk, a damaged model) are asked for again. */
static void retry_downloads(fleet_agent *a)
{
    double now = fleet_link_now_us();
    pthread_mutex_lock(&a->lock);
    for (size_t i = 0; i < a->n_variants; i++) {
        agent_variant *v = &a->variants[i];
        if (v->model || now - v->download.last_progress_us < AGENT_DOWNLOAD_RETRY_US)
            continue;
        if (v->download.tries >= AGENT_DOWNLOAD_TRIES) {
            if (v->download.tries++ == AGENT_DOWNLOAD_TRIES)
                LOG(a, 0, "giving up on model %.12s after %d tries", v->spec.digest,
                    AGENT_DOWNLOAD_TRIES);
            continue;
        }
        int tries = v->download.tries;
        agent_download_reset(&v->download);
        v->download.tries = tries;
        agent_download_request(a, v);
    }
    pthread_mutex_unlock(&a->lock);
}

static void dispatch(fleet_agent *a, fleet_link_message *m)
{
    fleet_topic_kind kind;
    char id[FLEET_TOPICS_MAX_ID + 1];
    if (fleet_topic_parse(a->cfg.prefix, m->topic, &kind, id) != FLEET_TOPICS_OK) {
        fleet_link_message_free(m);
        return;
    }
    if (kind == FLEET_TOPIC_STREAM_REQUEST) {
        agent_queue_push(a, m); /* the worker owns it now */
        return;
    }
    if (kind == FLEET_TOPIC_AGENT_ASSIGNMENT && strcmp(id, a->cfg.id) == 0)
        on_assignment(a, m);
    else if (kind == FLEET_TOPIC_AGENT_CHUNK && strcmp(id, a->cfg.id) == 0)
        on_chunk(a, m);
    else if (kind == FLEET_TOPIC_COORDINATOR_STATE) {
        fleet_msg_coordinator_state s;
        if (fleet_msg_coordinator_state_decode(m->payload, m->len, &s) == FLEET_TOPICS_OK)
            LOG(a, 2, "coordinator %s is %s", s.coordinator, s.online ? "online" : "offline");
    }
    fleet_link_message_free(m);
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
        fleet_topic_build(p, FLEET_TOPIC_MODEL_GET, NULL, a->topic_get, sizeof a->topic_get))
        return agent_fail(FLEET_AGENT_EINVAL, "bad id or prefix: %s", fleet_topics_last_error());
    return FLEET_AGENT_OK;
}

static fleet_agent_status connect_link(fleet_agent *a)
{
    fleet_msg_death will = {.bdseq = a->bdseq};
    snprintf(will.agent, sizeof will.agent, "%s", a->cfg.id);
    uint8_t *buf = NULL;
    size_t len = 0;
    if (fleet_msg_death_encode(&will, &buf, &len) != FLEET_TOPICS_OK)
        return agent_fail(FLEET_AGENT_EINVAL, "%s", fleet_topics_last_error());
    fleet_link_options o;
    fleet_link_options_init(&o);
    o.url = a->cfg.broker;
    o.client_id = a->cfg.id;
    o.username = a->cfg.id;
    o.password = a->cfg.password[0] ? a->cfg.password : NULL;
    o.will_topic = a->topic_state;
    o.will_payload = buf;
    o.will_len = len;
    o.will_qos = 1;
    o.will_retained = 1;
    fleet_link_status ls = fleet_link_create(&o, &a->link);
    free(buf);
    if (ls != FLEET_LINK_OK)
        return agent_fail(FLEET_AGENT_ELINK, "%s", fleet_link_last_error());
    char coordinators[FLEET_TOPICS_MAX_TOPIC];
    fleet_topic_build(a->cfg.prefix, FLEET_TOPIC_COORDINATOR_STATE, "+", coordinators,
                      sizeof coordinators);
    if (fleet_link_subscribe(a->link, a->topic_assignment, 1) != FLEET_LINK_OK ||
        fleet_link_subscribe(a->link, a->topic_chunk, 1) != FLEET_LINK_OK ||
        fleet_link_subscribe(a->link, coordinators, 1) != FLEET_LINK_OK)
        return agent_fail(FLEET_AGENT_ELINK, "subscribe: %s", fleet_link_last_error());
    return FLEET_AGENT_OK;
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
    pthread_mutex_init(&a->lock, NULL);
    fleet_agent_status st = build_topics(a);
    if (st == FLEET_AGENT_OK)
        st = agent_cache_prepare(a);
    if (st == FLEET_AGENT_OK)
        st = agent_queue_init(&a->queue, a->cfg.queue ? a->cfg.queue : 64);
    if (st == FLEET_AGENT_OK)
        st = connect_link(a);
    if (st == FLEET_AGENT_OK && pthread_create(&a->worker, NULL, agent_worker, a) != 0)
        st = agent_fail(FLEET_AGENT_ESYSERR, "cannot start the worker thread");
    a->worker_started = st == FLEET_AGENT_OK;
    if (st != FLEET_AGENT_OK) {
        fleet_agent_destroy(a);
        return st;
    }
    agent_publish_birth(a);
    LOG(a, 2, "agent %s up (bdseq %llu) at %s", a->cfg.id, (unsigned long long)a->bdseq,
        a->cfg.broker);
    *out = a;
    return FLEET_AGENT_OK;
}

fleet_agent_status fleet_agent_run(fleet_agent *a)
{
    double next_beat = fleet_link_now_us();
    while (!a->stopping) {
        double now = fleet_link_now_us();
        if (now >= next_beat) {
            publish_heartbeat(a);
            retry_downloads(a);
            next_beat = now + a->cfg.heartbeat_ms * 1000.0;
        }
        int wait_ms = (int)((next_beat - now) / 1000.0) + 1;
        fleet_link_message *m = NULL;
        fleet_link_status st = fleet_link_receive(a->link, wait_ms < 50 ? wait_ms : 50, &m);
        if (st == FLEET_LINK_OK)
            dispatch(a, m);
        else if (st == FLEET_LINK_ECLOSED)
            break;
    }
    /* Finish what is queued, then say goodbye before the broker would (the will). */
    agent_queue_close(a);
    if (a->worker_started) {
        pthread_join(a->worker, NULL);
        a->worker_started = false;
    }
    publish_death(a);
    LOG(a, 2, "agent %s stopping", a->cfg.id);
    return FLEET_AGENT_OK;
}

void fleet_agent_stop(fleet_agent *a)
{
    a->stopping = 1;
}

void fleet_agent_get_stats(fleet_agent *a, fleet_agent_stats *stats)
{
    pthread_mutex_lock(&a->lock);
    *stats = a->stats;
    stats->bdseq = a->bdseq;
    stats->epoch = a->epoch;
    stats->variants_ready = 0;
    for (size_t i = 0; i < a->n_variants; i++)
        stats->variants_ready += a->variants[i].model != NULL;
    pthread_mutex_unlock(&a->lock);
}

void fleet_agent_destroy(fleet_agent *a)
{
    if (!a)
        return;
    if (a->worker_started) {
        agent_queue_close(a);
        pthread_join(a->worker, NULL);
    }
    fleet_link_destroy(a->link);
    for (size_t i = 0; i < a->n_variants; i++) {
        agent_model_close(a->variants[i].model);
        agent_download_reset(&a->variants[i].download);
    }
    agent_queue_free(&a->queue);
    pthread_mutex_destroy(&a->lock);
    free(a);
}
