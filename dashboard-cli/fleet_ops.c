/* fleet_ops.c: the operator's view of a fleet, built from retained state and heartbeats. */
#include "fleet_ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

fleet_link *fleet_ops_connect(const char *url, const char *user, const char *password,
                              const char *prefix, const char *client_id)
{
    fleet_link_options o;
    fleet_link_options_init(&o);
    o.url = url;
    o.client_id = client_id;
    o.username = user;
    o.password = password;
    fleet_link *link = NULL;
    if (fleet_link_create(&o, &link) != FLEET_LINK_OK) {
        fprintf(stderr, "fleetctl: %s\n", fleet_link_last_error());
        return NULL;
    }
    static const fleet_topic_kind kinds[] = {FLEET_TOPIC_AGENT_STATE, FLEET_TOPIC_AGENT_ASSIGNMENT,
                                             FLEET_TOPIC_AGENT_HEARTBEAT,
                                             FLEET_TOPIC_COORDINATOR_STATE};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        char filter[FLEET_TOPICS_MAX_TOPIC];
        if (fleet_topic_build(prefix, kinds[i], "+", filter, sizeof filter) != FLEET_TOPICS_OK ||
            fleet_link_subscribe(link, filter, 1) != FLEET_LINK_OK) {
            fprintf(stderr, "fleetctl: cannot subscribe under '%s'\n", prefix);
            fleet_link_destroy(link);
            return NULL;
        }
    }
    return link;
}

/* The agent's entry; a new one only when add (its state makes an agent known: a retained
 * assignment or a heartbeat alone may be what is left of a decommissioned one). States come
 * first: they are subscribed to first (fleet_ops_connect). */
static fleet_ops_agent *agent(fleet_ops_view *v, const char *id, bool add)
{
    for (size_t i = 0; i < v->n_agents; i++)
        if (strcmp(v->agents[i].id, id) == 0)
            return &v->agents[i];
    if (!add || v->n_agents == FLEET_OPS_MAX_AGENTS)
        return NULL;
    fleet_ops_agent *a = &v->agents[v->n_agents++];
    memset(a, 0, sizeof *a);
    snprintf(a->id, sizeof a->id, "%s", id);
    return a;
}

/* An empty retained state: an operator removed a decommissioned agent or a ghost coordinator
 * (docs/PROTOCOL.md); the view forgets it, keeping the others in order. */
static void forget_agent(fleet_ops_view *v, const char *id)
{
    for (size_t i = 0; i < v->n_agents; i++)
        if (strcmp(v->agents[i].id, id) == 0) {
            memmove(&v->agents[i], &v->agents[i + 1], (--v->n_agents - i) * sizeof v->agents[0]);
            return;
        }
}

static void forget_coordinator(fleet_ops_view *v, const char *id)
{
    for (size_t i = 0; i < v->n_coordinators; i++)
        if (strcmp(v->coordinators[i].id, id) == 0) {
            memmove(&v->coordinators[i], &v->coordinators[i + 1],
                    (--v->n_coordinators - i) * sizeof v->coordinators[0]);
            return;
        }
}

static void update_state(fleet_ops_view *v, const char *id, const fleet_link_message *m)
{
    if (m->len == 0) {
        forget_agent(v, id);
        return;
    }
    fleet_msg_agent_state s;
    fleet_ops_agent *a = NULL;
    if (fleet_msg_agent_state_decode(m->payload, m->len, &s) != FLEET_TOPICS_OK ||
        !(a = agent(v, id, true)))
        return;
    uint64_t bdseq = s.alive ? s.birth.bdseq : s.death.bdseq;
    if (bdseq < a->bdseq)
        return;
    a->bdseq = bdseq;
    a->alive = s.alive;
    if (s.alive)
        a->n_models = s.birth.n_models;
}

static void update_assignment(fleet_ops_view *v, const char *id, const fleet_link_message *m)
{
    fleet_msg_assignment s;
    fleet_ops_agent *a = NULL; /* an unreadable message makes no entry */
    if (fleet_msg_assignment_decode(m->payload, m->len, &s) != FLEET_TOPICS_OK ||
        !(a = agent(v, id, false)) || s.epoch < a->epoch)
        return;
    a->epoch = s.epoch;
    a->n_variants = s.n_variants;
    for (size_t i = 0; i < s.n_variants; i++)
        a->variants[i] = s.variants[i].variant;
}

static void update_heartbeat(fleet_ops_view *v, const char *id, const fleet_link_message *m)
{
    fleet_msg_heartbeat h;
    fleet_ops_agent *a = NULL;
    if (fleet_msg_heartbeat_decode(m->payload, m->len, &h) != FLEET_TOPICS_OK ||
        !(a = agent(v, id, false)))
        return;
    a->latency_ewma_us = h.latency_ewma_us;
    a->heard_us = m->received_us;
    a->processed = h.processed;
    a->dropped = h.dropped_expired + h.dropped_full + h.dropped_moved;
}

static void update_coordinator(fleet_ops_view *v, const char *id, const fleet_link_message *m)
{
    if (m->len == 0) {
        forget_coordinator(v, id);
        return;
    }
    fleet_msg_coordinator_state s;
    if (fleet_msg_coordinator_state_decode(m->payload, m->len, &s) != FLEET_TOPICS_OK)
        return;
    size_t i = 0;
    while (i < v->n_coordinators && strcmp(v->coordinators[i].id, id) != 0)
        i++;
    fleet_ops_coordinator *c = &v->coordinators[i];
    if (i == v->n_coordinators) {
        if (i == sizeof v->coordinators / sizeof v->coordinators[0])
            return;
        snprintf(c->id, sizeof c->id, "%s", id);
        v->n_coordinators++;
    }
    c->online = s.online;
    c->drained = s.drained;
    if (s.stream[0]) /* states written before 2026-11-30 name none */
        snprintf(c->stream, sizeof c->stream, "%s", s.stream);
}

bool fleet_ops_update(fleet_ops_view *v, const char *prefix, const fleet_link_message *m)
{
    fleet_topic_ref t;
    if (fleet_topic_parse(prefix, m->topic, &t) != FLEET_TOPICS_OK)
        return false;
    const char *id = t.id;
    switch (t.kind) {
    case FLEET_TOPIC_AGENT_STATE:
        update_state(v, id, m);
        return true;
    case FLEET_TOPIC_AGENT_ASSIGNMENT:
        update_assignment(v, id, m);
        return true;
    case FLEET_TOPIC_AGENT_HEARTBEAT:
        update_heartbeat(v, id, m);
        return true;
    case FLEET_TOPIC_COORDINATOR_STATE:
        update_coordinator(v, id, m);
        return true;
    default:
        return false;
    }
}

void fleet_ops_print(const fleet_ops_view *v, FILE *out)
{
    for (size_t i = 0; i < v->n_coordinators; i++) {
        const fleet_ops_coordinator *c = &v->coordinators[i];
        fprintf(out, "coordinator %-20s %-8s stream %s\n", c->id,
                c->online    ? "online"
                : c->drained ? "stopped"
                             : "offline",
                c->stream[0] ? c->stream : "?");
    }
    fprintf(out, "%-20s %-6s %-10s %-12s %12s %12s %10s\n", "agent", "state", "bdseq", "variants",
            "latency_us", "processed", "dropped");
    for (size_t i = 0; i < v->n_agents; i++) {
        const fleet_ops_agent *a = &v->agents[i];
        char variants[64] = "-";
        int at = 0;
        for (size_t k = 0; a->alive && k < a->n_variants && at < 50; k++) /* dead: none */
            at += snprintf(variants + at, sizeof variants - (size_t)at, "%s%u", k ? "," : "",
                           a->variants[k]);
        fprintf(out, "%-20s %-6s %-10llu %-12s %12u %12llu %10llu\n", a->id,
                a->alive ? "alive" : "dead", (unsigned long long)a->bdseq, variants,
                a->latency_ewma_us, (unsigned long long)a->processed,
                (unsigned long long)a->dropped);
    }
}

fleet_topics_status fleet_ops_encode_image(const char *id, const char *stream,
                                           const uint8_t *pixels, uint32_t deadline_ms,
                                           uint8_t **buf, size_t *len)
{
    fleet_msg_request r;
    memset(&r, 0, sizeof r);
    snprintf(r.id, sizeof r.id, "%s", id);
    snprintf(r.stream, sizeof r.stream, "%s", stream);
    r.deadline_ms = deadline_ms;
    r.tensor = (fleet_tensor){.dtype = FLEET_DTYPE_U8,
                              .scale = 1.0f / 255.0f,
                              .zero_point = 0,
                              .shape = {1, 1, 28, 28},
                              .rank = 4,
                              .data = pixels,
                              .size = 28 * 28};
    return fleet_msg_request_encode(&r, buf, len);
}
