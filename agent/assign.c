/* assign.c: following the assignment: variants, their models (cached or fetched in chunks),
 * the request subscription. Main thread only; models_lock guards what the worker reads. */
#include "internal.h"

#include <stdio.h>
#include <string.h>

/* Subscribes to a stream's requests once (fleet_link renews subscriptions after reconnects). */
static void subscribe_stream(fleet_agent *a, const char *stream)
{
    for (size_t i = 0; i < a->n_streams; i++)
        if (strcmp(a->streams[i], stream) == 0)
            return;
    char filter[FLEET_TOPICS_MAX_TOPIC];
    if (a->n_streams == AGENT_MAX_STREAMS) {
        agent_log(a, FLEET_LOG_ERROR, "cannot follow a %dth stream ('%s'): restart the agent",
                  AGENT_MAX_STREAMS + 1, stream);
    } else if (fleet_topic_build(a->cfg.prefix, FLEET_TOPIC_STREAM_REQUEST, stream, filter,
                                 sizeof filter) != FLEET_TOPICS_OK ||
               fleet_link_subscribe(a->link, filter, 0) != FLEET_LINK_OK) {
        agent_log(a, FLEET_LOG_ERROR, "cannot subscribe to stream '%s': %s", stream,
                  fleet_link_last_error());
    } else {
        snprintf(a->streams[a->n_streams++], sizeof a->streams[0], "%s", stream);
    }
}

/* Installs a model for every variant of digest that lacks one (each gets its own handle). */
static bool load_cached(fleet_agent *a, const char *digest)
{
    bool loaded = false;
    for (size_t i = 0; i < a->n_variants; i++) {
        agent_variant *v = &a->variants[i];
        agent_model *m = NULL;
        if (v->model || strcmp(v->spec.digest, digest) != 0 ||
            agent_cache_load(a, digest, &m) != FLEET_AGENT_OK || !m)
            continue;
        pthread_mutex_lock(&a->models_lock);
        v->model = m;
        pthread_mutex_unlock(&a->models_lock);
        loaded = true;
        agent_log(a, FLEET_LOG_INFO, "variant %u ready: model %.12s, %u us per sample",
                  v->spec.variant, digest, m->latency_us);
    }
    return loaded;
}

/* Whether an earlier variant of next already fetches digest. */
static bool fetching(const agent_variant *next, size_t n, const char *digest)
{
    for (size_t i = 0; i < n; i++)
        if (next[i].download && strcmp(next[i].spec.digest, digest) == 0)
            return true;
    return false;
}

/* The next variant set: models and downloads of the current one move over by digest. */
static void carry_over(fleet_agent *a, const fleet_msg_assignment *m, agent_variant *next,
                       bool *model_moved, bool *download_moved)
{
    for (size_t i = 0; i < m->n_variants; i++) {
        next[i].spec = m->variants[i];
        for (size_t k = 0; k < a->n_variants; k++) {
            const agent_variant *old = &a->variants[k];
            if (strcmp(old->spec.digest, next[i].spec.digest) != 0)
                continue;
            if (!next[i].model && old->model && !model_moved[k]) {
                next[i].model = old->model;
                model_moved[k] = true;
            }
            if (!next[i].model && !next[i].download && old->download && !download_moved[k]) {
                next[i].download = old->download;
                download_moved[k] = true;
                if (agent_download_gave_up(old->download)) /* a new assignment: try again */
                    agent_download_restart(a, old->download);
            }
        }
    }
}

/* Starts what is missing: a cached model, else a download (one per digest). Returns whether
 * a model was loaded. */
static bool fill_in(fleet_agent *a, agent_variant *next, size_t n)
{
    bool loaded = false;
    for (size_t i = 0; i < n; i++) {
        agent_variant *v = &next[i];
        if (v->model || v->download || fetching(next, i, v->spec.digest))
            continue;
        if (agent_cache_load(a, v->spec.digest, &v->model) != FLEET_AGENT_OK)
            continue; /* cached and intact but refused by the runtime: fetching cannot help */
        loaded |= v->model != NULL;
        if (v->model)
            agent_log(a, FLEET_LOG_INFO, "variant %u ready from the cache: %u us per sample",
                      v->spec.variant, v->model->latency_us);
        else if (agent_download_start(a, &v->spec, &v->download) != FLEET_AGENT_OK)
            agent_log(a, FLEET_LOG_ERROR, "variant %u: %s", v->spec.variant,
                      fleet_agent_last_error());
    }
    return loaded;
}

/* Swaps the variant set in; returns whether the set of loaded models changed. */
static bool apply(fleet_agent *a, const fleet_msg_assignment *m, const char *result_topic)
{
    agent_variant next[FLEET_TOPICS_MAX_VARIANTS], old[FLEET_TOPICS_MAX_VARIANTS];
    bool model_moved[FLEET_TOPICS_MAX_VARIANTS] = {0},
         download_moved[FLEET_TOPICS_MAX_VARIANTS] = {0};
    memset(next, 0, sizeof next);
    carry_over(a, m, next, model_moved, download_moved);
    bool changed = fill_in(a, next, m->n_variants);
    size_t n_old = a->n_variants;
    pthread_mutex_lock(&a->models_lock);
    memcpy(old, a->variants, sizeof old);
    memcpy(a->variants, next, sizeof next);
    a->n_variants = m->n_variants;
    a->epoch = m->epoch;
    snprintf(a->stream, sizeof a->stream, "%s", m->stream);
    a->deadline_ms = m->deadline_ms;
    snprintf(a->topic_result, sizeof a->topic_result, "%s", result_topic);
    pthread_mutex_unlock(&a->models_lock);
    for (size_t k = 0; k < n_old; k++) { /* what did not move over is no longer needed */
        changed |= old[k].model && !model_moved[k];
        if (!model_moved[k])
            agent_model_close(old[k].model);
        if (!download_moved[k])
            agent_download_free(old[k].download);
    }
    return changed;
}

void agent_on_assignment(fleet_agent *a, const fleet_link_message *msg)
{
    fleet_msg_assignment m;
    char result_topic[FLEET_TOPICS_MAX_TOPIC];
    const char *bad = NULL;
    if (msg->len == 0) { /* the retained copy removed; what we were given still stands */
        agent_log(a, FLEET_LOG_INFO, "its retained assignment was cleared; serving on");
        return;
    }
    if (fleet_msg_assignment_decode(msg->payload, msg->len, &m) != FLEET_TOPICS_OK ||
        fleet_topic_build_result(a->cfg.prefix, m.stream, a->cfg.id, result_topic,
                                 sizeof result_topic) != FLEET_TOPICS_OK)
        bad = fleet_topics_last_error();
    else if (strcmp(m.agent, a->cfg.id) != 0)
        bad = "it names another agent";
    if (bad) {
        agent_log(a, FLEET_LOG_WARN, "ignoring a bad assignment: %s", bad);
        agent_count(a, &a->stats.bad_messages, 1);
        return;
    }
    /* Epochs are fleet-wide (coordinators keep them above every assignment they see), so a
     * lower one is stale whoever wrote it: a retained copy, or a coordinator late to learn
     * that the agent changed hands. */
    if (m.epoch < a->epoch) {
        agent_log(a, FLEET_LOG_INFO, "ignoring assignment epoch %llu (following %llu)",
                  (unsigned long long)m.epoch, (unsigned long long)a->epoch);
        return;
    }
    agent_log(a, FLEET_LOG_INFO, "assignment epoch %llu from %s: %zu variant(s) on stream '%s'",
              (unsigned long long)m.epoch, m.coordinator, m.n_variants, m.stream);
    if (m.n_variants > 0)
        subscribe_stream(a, m.stream);
    if (apply(a, &m, result_topic))
        agent_publish_birth(a);
}

void agent_on_chunk(fleet_agent *a, const fleet_link_message *msg)
{
    fleet_msg_chunk c;
    if (fleet_msg_chunk_decode(msg->payload, msg->len, &c) != FLEET_TOPICS_OK) {
        agent_log(a, FLEET_LOG_WARN, "ignoring a bad chunk: %s", fleet_topics_last_error());
        agent_count(a, &a->stats.bad_messages, 1);
        return;
    }
    for (size_t i = 0; i < a->n_variants; i++) {
        agent_variant *v = &a->variants[i];
        if (!v->download || strcmp(v->spec.digest, c.digest) != 0)
            continue;
        if (agent_download_chunk(a, v->download, &c) != AGENT_CHUNK_COMPLETE)
            return;
        agent_download_free(v->download);
        v->download = NULL;
        agent_log(a, FLEET_LOG_INFO, "model %.12s fetched and verified", c.digest);
        if (load_cached(a, c.digest))
            agent_publish_birth(a);
        return;
    }
    agent_log(a, FLEET_LOG_DEBUG, "chunk %u of model %.12s is not awaited", c.index, c.digest);
}

void agent_tick_downloads(fleet_agent *a, double now_us)
{
    for (size_t i = 0; i < a->n_variants; i++)
        if (a->variants[i].download)
            agent_download_tick(a, a->variants[i].download, now_us);
}

/* Whether coordinator id's state differs from what was last heard of it. */
static bool coordinator_changed(fleet_agent *a, const char *id, bool online)
{
    size_t i = 0;
    while (i < a->n_coordinators && strcmp(a->coordinators[i].id, id) != 0)
        i++;
    if (i == a->n_coordinators) {
        if (i == AGENT_MAX_COORDINATORS)
            return true;
        snprintf(a->coordinators[i].id, sizeof a->coordinators[i].id, "%s", id);
        a->n_coordinators++;
    } else if (a->coordinators[i].online == online) {
        return false;
    }
    a->coordinators[i].online = online;
    return true;
}

void agent_on_coordinator(fleet_agent *a, const fleet_link_message *msg, const char *id)
{
    fleet_msg_coordinator_state s;
    if (msg->len == 0) { /* its retained state removed: an operator clearing a ghost */
        if (coordinator_changed(a, id, false))
            agent_log(a, FLEET_LOG_INFO, "coordinator %s is gone (its retained state was cleared)",
                      id);
        return;
    }
    if (fleet_msg_coordinator_state_decode(msg->payload, msg->len, &s) != FLEET_TOPICS_OK) {
        agent_log(a, FLEET_LOG_WARN, "ignoring a bad coordinator state on %s: %s", msg->topic,
                  fleet_topics_last_error());
        agent_count(a, &a->stats.bad_messages, 1);
        return;
    }
    if (coordinator_changed(a, s.coordinator, s.online)) /* they restate it every 5 s */
        agent_log(a, s.online ? FLEET_LOG_INFO : FLEET_LOG_WARN, "coordinator %s is %s",
                  s.coordinator, s.online ? "online" : "offline");
    for (size_t i = 0; s.online && i < a->n_variants; i++) /* it may serve models again */
        if (a->variants[i].download && agent_download_gave_up(a->variants[i].download))
            agent_download_restart(a, a->variants[i].download);
}

/* At destroy, with the worker gone. */
void agent_variants_free(fleet_agent *a)
{
    for (size_t i = 0; i < a->n_variants; i++) {
        agent_model_close(a->variants[i].model);
        agent_download_free(a->variants[i].download);
        a->variants[i].model = NULL;
        a->variants[i].download = NULL;
    }
    a->n_variants = 0;
}
