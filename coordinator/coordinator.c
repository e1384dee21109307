/* coordinator.c: the coordinator's event loop: dispatching messages, assignments, decisions. */
#include "internal.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define COORD_TICK_MS 20
#define JOIN_WAIT_US 2e6 /* for the echo of our online state, before taking requests anyway */

/* Threads: Paho's receive thread handles every message (deliver_message); the thread in
 * fleet_coordinator_run keeps time (deadlines, heartbeat timeouts) and the subscriptions.
 * state_lock covers everything below but cfg, link and stopping. */
typedef struct coord_outgoing coord_outgoing;

struct fleet_coordinator {
    fleet_coordinator_config cfg;
    fleet_link *link;
    pthread_mutex_t state_lock;
    pthread_cond_t tick; /* wakes the timekeeper early for an earlier deadline */
    double next_tick_us; /* when the timekeeper wakes up next */
    bool lock_ready;
    coord_family family;
    coord_members members;
    coord_peers peers;   /* the other coordinators: who assigns which agent */
    coord_stream stream; /* state is per stream; this daemon serves one */
    fleet_coordinator_stats stats;
    uint64_t epoch;
    uint32_t serving; /* variants a live agent has loaded: kept current on membership events */
    volatile sig_atomic_t stopping;
    bool announced; /* our online state went out at create: a stop says goodbye (drain) */
    /* Its echo came back (or JOIN_WAIT_US passed): the others count us from the same point of
     * the broker's order, so from then on we take our share of the requests, not before. */
    bool joined;
    double announced_us;
    /* Leaving on purpose: our drained offline state is out; once its echo is back (the broker's
     * order: the requests before it are ours, none after) we take no more. */
    bool draining, drain_echoed;
    double drain_cut_us; /* when the echo came: requests due after it are handed over */
    uint64_t raw_inputs;
    double next_expire_us;
    double next_state_us; /* our online state is restated then */
    uint64_t reconnects;  /* fleet_link's count when the online state was last published */
    /* The timekeeper's messages wait here until it has let go of state_lock: Paho's receive
     * thread may be blocked on state_lock inside a Paho callback, holding Paho's own lock,
     * which fleet_link_publish would wait for (a deadlock). Timekeeper only. */
    bool deferring;
    coord_outgoing *outbox;
    size_t outbox_count, outbox_capacity;
};

#define LOG(c, level, ...) coord_log(level, (c)->cfg.log_level, __VA_ARGS__)

/* A message the timekeeper publishes once it has let go of state_lock (all fields owned). */
struct coord_outgoing {
    char *topic;
    uint8_t *payload, *correlation;
    size_t len, correlation_len;
    int qos, retained;
};

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Takes payload (owned) into the outbox; false, freeing nothing, when memory runs out. */
static bool hold_outgoing(fleet_coordinator *c, const char *topic, uint8_t *payload, size_t len,
                          int qos, int retained, const fleet_link_props *props)
{
    if (c->outbox_count == c->outbox_capacity) {
        size_t n = c->outbox_capacity ? 2 * c->outbox_capacity : 16;
        coord_outgoing *grown = realloc(c->outbox, n * sizeof *grown);
        if (!grown)
            return false;
        c->outbox = grown;
        c->outbox_capacity = n;
    }
    coord_outgoing o = {
        .topic = strdup(topic), .payload = payload, .len = len, .qos = qos, .retained = retained};
    if (props && props->correlation) { /* it lives in the request, which may be gone by then */
        o.correlation = malloc(props->correlation_len ? props->correlation_len : 1);
        o.correlation_len = props->correlation_len;
        if (o.correlation)
            memcpy(o.correlation, props->correlation, o.correlation_len);
    }
    if (!o.topic || (props && props->correlation && !o.correlation)) {
        free(o.topic), free(o.correlation);
        return false;
    }
    c->outbox[c->outbox_count++] = o;
    return true;
}

/* Every publish goes through here and takes payload (malloc'd; owned): straight to Paho, or
 * via the outbox from the timekeeper. */
static void send_message(fleet_coordinator *c, const char *topic, uint8_t *payload, size_t len,
                         int qos, int retained, const fleet_link_props *props)
{
    if (c->deferring && hold_outgoing(c, topic, payload, len, qos, retained, props))
        return;
    if (c->deferring)
        LOG(c, 0, "out of memory: a message to %s is lost", topic);
    else if (fleet_link_publish(c->link, topic, payload, len, qos, retained, props) !=
             FLEET_LINK_OK)
        LOG(c, 1, "publish to %s: %s", topic, fleet_link_last_error());
    free(payload);
}

static void free_outgoing(coord_outgoing *o)
{
    free(o->topic), free(o->payload), free(o->correlation);
}

/* The timekeeper, without state_lock: publishes what it held back. */
static void flush_outbox(fleet_coordinator *c)
{
    for (size_t i = 0; i < c->outbox_count; i++) {
        coord_outgoing *o = &c->outbox[i];
        fleet_link_props props = {.correlation = o->correlation,
                                  .correlation_len = o->correlation_len};
        if (fleet_link_publish(c->link, o->topic, o->payload, o->len, o->qos, o->retained,
                               o->correlation ? &props : NULL) != FLEET_LINK_OK)
            LOG(c, 1, "publish to %s: %s", o->topic, fleet_link_last_error());
        free_outgoing(o);
    }
    c->outbox_count = 0;
}

/* Takes buf (owned), the encoder's output. */
static void publish_encoded(fleet_coordinator *c, const char *topic, fleet_topics_status st,
                            uint8_t *buf, size_t len, int qos, int retained,
                            const fleet_link_props *props)
{
    if (st == FLEET_TOPICS_OK) {
        send_message(c, topic, buf, len, qos, retained, props);
        return;
    }
    LOG(c, 0, "cannot encode for %s: %s", topic, fleet_topics_last_error());
    free(buf);
}

static void publish_state(fleet_coordinator *c, bool online, bool drained)
{
    fleet_msg_coordinator_state s = {
        .online = online, .time_ms = wall_ms(), .drained = drained, .backup = c->cfg.backup};
    snprintf(s.coordinator, sizeof s.coordinator, "%s", c->cfg.id);
    snprintf(s.stream, sizeof s.stream, "%s", c->cfg.stream);
    char topic[FLEET_TOPICS_MAX_TOPIC];
    fleet_topic_build(c->cfg.prefix, FLEET_TOPIC_COORDINATOR_STATE, c->cfg.id, topic, sizeof topic);
    uint8_t *buf = NULL;
    size_t len = 0;
    fleet_topics_status st = fleet_msg_coordinator_state_encode(&s, &buf, &len);
    publish_encoded(c, topic, st, buf, len, 1, 1, NULL);
}

/* A new epoch: above the wall clock's and every epoch seen (a Lamport clock), so that an
 * agent can order any two assignments, whichever coordinators wrote them. */
static void next_epoch(fleet_coordinator *c)
{
    uint64_t now = wall_ms();
    if (now > c->epoch)
        c->epoch = now;
    else if (c->epoch < UINT64_MAX) /* a bogus huge epoch seen must not wrap ours to 0 */
        c->epoch++;
}

static void publish_assignment(fleet_coordinator *c, coord_agent *a)
{
    fleet_msg_assignment m;
    memset(&m, 0, sizeof m);
    snprintf(m.agent, sizeof m.agent, "%s", a->id);
    snprintf(m.coordinator, sizeof m.coordinator, "%s", c->cfg.id);
    snprintf(m.stream, sizeof m.stream, "%s", c->cfg.stream);
    m.deadline_ms = c->cfg.deadline_ms;
    m.epoch = a->assigned_epoch = c->epoch;
    a->published_us = fleet_link_now_us();
    for (size_t v = 0; v < c->family.count; v++) {
        if (!(a->assigned >> v & 1u))
            continue;
        fleet_assigned_variant *av = &m.variants[m.n_variants++];
        const coord_variant *var = &c->family.variants[v];
        av->variant = (uint32_t)v;
        snprintf(av->digest, sizeof av->digest, "%s", var->digest);
        av->model_bytes = var->size;
        av->output = c->cfg.fusion ? FLEET_OUTPUT_INT8 : FLEET_OUTPUT_TOPK;
        av->k = c->cfg.fusion ? 0 : c->cfg.k ? c->cfg.k : (uint32_t)c->family.classes;
        av->temperature = var->temperature;
    }
    char topic[FLEET_TOPICS_MAX_TOPIC];
    fleet_topic_build(c->cfg.prefix, FLEET_TOPIC_AGENT_ASSIGNMENT, a->id, topic, sizeof topic);
    /* Its results may be taken from now on: they travel at QoS 0 and can overtake the QoS 1
     * echo of this assignment. */
    coord_members_note_assignment(a, &c->family, &m, c->cfg.stream);
    uint8_t *buf = NULL;
    size_t len = 0;
    fleet_topics_status st = fleet_msg_assignment_encode(&m, &buf, &len);
    publish_encoded(c, topic, st, buf, len, 1, 1, NULL);
}

static uint32_t serving_mask(const fleet_coordinator *c)
{
    uint32_t mask = 0;
    for (size_t v = 0; v < c->family.count; v++)
        if (coord_members_serving(&c->members, &c->family, v))
            mask |= 1u << v;
    return mask;
}

static void deliver_decision(void *ctx, const fleet_msg_decision *d, const coord_reply *reply)
{
    fleet_coordinator *c = ctx;
    char topic[FLEET_TOPICS_MAX_TOPIC];
    const char *to = reply->topic;
    if (!to) {
        fleet_topic_build(c->cfg.prefix, FLEET_TOPIC_STREAM_DECISION, d->stream, topic,
                          sizeof topic);
        to = topic;
    }
    fleet_link_props props = {.correlation = reply->correlation,
                              .correlation_len = reply->correlation_len};
    uint8_t *buf = NULL;
    size_t len = 0;
    fleet_topics_status st = fleet_msg_decision_encode(d, &buf, &len);
    publish_encoded(c, to, st, buf, len, reply->qos, 0, reply->correlation ? &props : NULL);
    if (c->cfg.mirror_topic[0]) {
        char *json = NULL;
        if (fleet_msg_decision_to_json(d, &json) == FLEET_TOPICS_OK)
            send_message(c, c->cfg.mirror_topic, (uint8_t *)json, strlen(json), 0, 0, NULL);
        else
            free(json);
    }
}

static coord_stream_env stream_env(fleet_coordinator *c)
{
    return (coord_stream_env){.family = &c->family,
                              .rule = c->cfg.rule,
                              .coordinator_id = c->cfg.id,
                              .expected = c->serving,
                              .sink = {deliver_decision, c},
                              .stats = &c->stats};
}

/* Re-places variants after membership changed and tells the agents whose share moved. */
static void reassign(fleet_coordinator *c, const char *why)
{
    bool changed[COORD_MAX_AGENTS];
    size_t moved = coord_assign(&c->members, &c->family, c->cfg.replication, changed);
    if (moved > 0) {
        next_epoch(c);
        c->stats.reassignments++;
        LOG(c, 2, "%s: epoch %llu, %zu agent(s) get new variants", why,
            (unsigned long long)c->epoch, moved);
        for (size_t i = 0; i < c->members.count; i++)
            if (changed[i] && c->members.agents[i].alive)
                publish_assignment(c, &c->members.agents[i]);
    }
    c->serving = serving_mask(c);
    coord_stream_env env = stream_env(c);
    coord_stream_expected_changed(&c->stream, &env, fleet_link_now_us());
}

/* An agent of ours that (re)joined hears from us even with nothing to do, which replaces any
 * retained assignment another coordinator, or our view before it left, gave it. */
static void tell_newcomer(fleet_coordinator *c, coord_agent *a)
{
    if (a->ours && a->assigned_epoch != c->epoch) {
        next_epoch(c);
        publish_assignment(c, a);
    }
}

/* Whether a message decoded; one that did not is counted and logged (at level: requests
 * and results, which come in floods, only at debug). */
static bool decoded(fleet_coordinator *c, const fleet_link_message *m, const char *what, int level,
                    fleet_topics_status st)
{
    if (st == FLEET_TOPICS_OK)
        return true;
    c->stats.bad_messages++;
    LOG(c, level, "bad %s on %s: %s", what, m->topic, fleet_topics_last_error());
    return false;
}

/* The ACL lets an agent write only on topics that name it (fleet_topics.h), so the topic says
 * who wrote; a payload naming another agent is refused (it would speak for that agent). */
static bool speaks_for_itself(fleet_coordinator *c, const fleet_link_message *m,
                              const char *topic_agent, const char *payload_agent)
{
    if (strcmp(topic_agent, payload_agent) == 0)
        return true;
    c->stats.bad_messages++;
    LOG(c, 1, "message on %s names agent '%s': refused", m->topic, payload_agent);
    return false;
}

/* An empty retained message is how MQTT removes a retained one: an operator decommissioned a
 * dead agent (docs/PROTOCOL.md). It is forgotten, and its owner removes the retained
 * assignment too, so that nothing of it is left on the broker. */
static void on_agent_state_cleared(fleet_coordinator *c, const char *agent)
{
    const coord_agent *a = coord_members_find(&c->members, agent);
    bool ours = a && a->ours;
    if (!coord_members_forget(&c->members, agent)) {
        if (a)
            LOG(c, 1, "agent %s's retained state was cleared while its session lives: ignored",
                agent);
        return;
    }
    LOG(c, 2, "agent %s forgotten: its retained state was cleared", agent);
    char topic[FLEET_TOPICS_MAX_TOPIC];
    if (ours && fleet_topic_build(c->cfg.prefix, FLEET_TOPIC_AGENT_ASSIGNMENT, agent, topic,
                                  sizeof topic) == FLEET_TOPICS_OK)
        send_message(c, topic, NULL, 0, 1, 1, NULL);
}

static void on_agent_state(fleet_coordinator *c, const fleet_link_message *m, const char *agent)
{
    if (m->len == 0) {
        on_agent_state_cleared(c, agent);
        return;
    }
    fleet_msg_agent_state s;
    if (!decoded(c, m, "agent state", 1, fleet_msg_agent_state_decode(m->payload, m->len, &s)) ||
        !speaks_for_itself(c, m, agent, s.alive ? s.birth.agent : s.death.agent))
        return;
    if (s.alive) {
        bool fresh = !coord_members_find(&c->members, s.birth.agent) ||
                     !coord_members_find(&c->members, s.birth.agent)->alive;
        coord_birth_outcome outcome = coord_members_birth(&c->members, &s.birth, m->received_us);
        if (outcome == COORD_BIRTH_FULL)
            LOG(c, 1, "agent %s ignored: %d agents, all alive, fill the table", s.birth.agent,
                COORD_MAX_AGENTS);
        if (outcome == COORD_BIRTH_CHANGED) {
            coord_peers_claim(&c->peers, &c->members);
            coord_agent *a = coord_members_find(&c->members, s.birth.agent);
            LOG(c, 2, "agent %s %s (bdseq %llu, %zu models%s)", a->id, fresh ? "born" : "updated",
                (unsigned long long)a->bdseq, a->n_models,
                a->ours ? "" : ", another coordinator's");
            reassign(c, "birth");
            if (fresh)
                tell_newcomer(c, a);
        }
    } else if (coord_members_death(&c->members, &s.death)) {
        LOG(c, 1, "agent %s died (bdseq %llu)", s.death.agent, (unsigned long long)s.death.bdseq);
        reassign(c, "death");
    }
}

static void peers_changed(fleet_coordinator *c, const char *who, const char *how,
                          const char *stream);

/* A coordinator left (how: drained, its will, ...): the backups we hold of its requests are
 * ours to decide now; it decides none of them (it handed them over, or died). */
static void owner_gone(fleet_coordinator *c, const char *coordinator, const char *how,
                       double due_by_us)
{
    uint64_t before = c->stats.taken_over;
    coord_stream_env env = stream_env(c);
    coord_stream_owner_gone(&c->stream, &env, coordinator, due_by_us, fleet_link_now_us());
    if (c->stats.taken_over > before)
        LOG(c, 2, "coordinator %s left (%s): %llu of its requests are ours to decide now",
            coordinator, how, (unsigned long long)(c->stats.taken_over - before));
}

/* Whether the member that took a backup of one of our requests is still there, in the same
 * run: it takes the request over when we leave. */
static bool backup_holder_present(void *ctx, uint64_t incarnation)
{
    const fleet_coordinator *c = ctx;
    return coord_peers_present(&c->peers, incarnation);
}

/* Another coordinator's state: when the set of online coordinators changes, agents and
 * requests change hands (peers.c) and the variants are placed again over our agents. */
static void on_coordinator_state(fleet_coordinator *c, const fleet_link_message *m,
                                 const char *coordinator)
{
    fleet_msg_coordinator_state s;
    if (m->len == 0) { /* its retained state was removed (an operator clearing a ghost) */
        coord_peer gone;
        if (strcmp(coordinator, c->cfg.id) == 0 && c->announced && !c->draining) {
            publish_state(c, true, false); /* ours: we are here */
        } else if (coord_peers_forget(&c->peers, coordinator, &gone)) {
            owner_gone(c, gone.id, "its retained state was cleared", 0);
            peers_changed(c, gone.id, "had its retained state cleared, taken as offline",
                          gone.stream);
        }
        return;
    }
    if (!decoded(c, m, "coordinator state", 1,
                 fleet_msg_coordinator_state_decode(m->payload, m->len, &s)))
        return;
    /* Our own state before we announced ourselves (still subscribing) is an earlier run's: an
     * online state now would make the others leave us requests we are not subscribed to yet;
     * create announces us once every subscription is in place. */
    if (strcmp(s.coordinator, c->cfg.id) == 0 && !c->announced)
        return;
    if (strcmp(s.coordinator, c->cfg.id) == 0 && s.online)
        c->joined = true;
    if (strcmp(s.coordinator, c->cfg.id) == 0 && !s.online) {
        if (c->draining && s.drained) { /* our goodbye's echo: every request before it came */
            c->drain_echoed = true;
            c->drain_cut_us = m->received_us;
            pthread_cond_broadcast(&c->tick);
        } else if (!c->draining) { /* our will, from a lost session or an earlier run: what the
                                      others took over meanwhile we may decide too (at least
                                      once), since whether they saw the will is unknown */
            publish_state(c, true, false);
        }
        return;
    }
    coord_peers_change change = coord_peers_update(&c->peers, &s, m->received_us);
    if (change == COORD_PEERS_FULL)
        LOG(c, 0, "coordinator %s ignored: %d other coordinators known already", s.coordinator,
            COORD_MAX_PEERS);
    if (change == COORD_PEERS_CHANGED && !s.online)
        owner_gone(c, s.coordinator, s.drained ? "stopped" : "its will",
                   s.drained ? m->received_us : 0); /* it decided what was due by then */
    if (change == COORD_PEERS_CHANGED)
        peers_changed(c, s.coordinator,
                      s.online    ? "online"
                      : s.drained ? "offline (drained)"
                                  : "offline",
                      s.stream);
}

/* Agents and requests change hands after a coordinator came or went; the variants are placed
 * again over our agents, and agents we took over hear from us. */
static void peers_changed(fleet_coordinator *c, const char *who, const char *how,
                          const char *stream)
{
    bool was_ours[COORD_MAX_AGENTS];
    for (size_t i = 0; i < c->members.count; i++)
        was_ours[i] = c->members.agents[i].ours;
    size_t moved = coord_peers_claim(&c->peers, &c->members);
    LOG(c, 2,
        "coordinator %s %s (stream '%s'): %zu online, this one %s stream '%s', %zu agent(s) "
        "change hands",
        who, how, stream, c->peers.count + 1,
        coord_peers_leader(&c->peers) ? "leads" : "follows the leader of", c->cfg.stream, moved);
    reassign(c, "coordinators changed");            /* also when none moved: the leader may have */
    uint64_t placed = c->epoch;                     /* what reassign published carries this one */
    for (size_t i = 0; i < c->members.count; i++) { /* taken over: it follows us from now on */
        coord_agent *a = &c->members.agents[i];
        if (a->ours && !was_ours[i] && a->alive && a->assigned_epoch != placed) {
            next_epoch(c);
            publish_assignment(c, a);
        }
    }
}

/* Assignments are retained per agent: a coordinator that follows its stream's leader learns
 * from them which of its variants each agent serves; any coordinator learns that an agent it
 * counted on now serves someone else. */
static void on_assignment(fleet_coordinator *c, const fleet_link_message *m, const char *agent)
{
    fleet_msg_assignment as;
    if (m->len == 0) { /* a retained assignment removed: nothing to follow */
        coord_agent *cleared = coord_members_find(&c->members, agent);
        if (cleared)
            cleared->retained_mine = false; /* one of ours alive gets it again (restate) */
        return;
    }
    if (!decoded(c, m, "assignment", 1, fleet_msg_assignment_decode(m->payload, m->len, &as)))
        return;
    coord_agent *a = coord_members_find(&c->members, as.agent);
    if (!a)
        return; /* its birth comes first; until then it is nobody's to us */
    if (as.epoch > c->epoch)
        c->epoch = as.epoch; /* ours stay above it (next_epoch) */
    coord_members_note_assignment(a, &c->family, &as, c->cfg.stream); /* we hear our own too */
    bool was_contested = coord_members_contested(a);
    bool fresh = coord_members_saw_assignment(a, as.coordinator, as.epoch, c->cfg.id);
    if (a->ours && a->alive) {
        /* Another coordinator's word over an agent of ours (followed, or merely retained): that
         * one had not seen us yet, or sees other coordinators than we do. restate_contested
         * gives our word again. */
        if (coord_members_contested(a) && !was_contested)
            LOG(c, 2, "agent %s was assigned by coordinator %s; it is ours", a->id, as.coordinator);
        return;
    }
    if (!fresh || strcmp(as.coordinator, c->cfg.id) == 0)
        return;
    bool from_leader =
        strcmp(as.stream, c->cfg.stream) == 0 && coord_peers_leader_is(&c->peers, as.coordinator);
    if (coord_members_follow(&c->members, &c->family, &as, from_leader)) {
        LOG(c, 3, "agent %s serves variants 0x%x of ours (coordinator %s assigned it)", a->id,
            (unsigned)a->assigned, as.coordinator);
        reassign(c, "the stream's leader assigned");
    }
}

static void on_model_get(fleet_coordinator *c, const fleet_link_message *m, const char *agent)
{
    fleet_msg_model_get g;
    if (!decoded(c, m, "model request", 3, fleet_msg_model_get_decode(m->payload, m->len, &g)) ||
        !speaks_for_itself(c, m, agent, g.agent))
        return;
    if (!coord_peers_owns(&c->peers, g.agent))
        return; /* its own coordinator answers */
    const coord_variant *var = NULL;
    for (size_t v = 0; v < c->family.count && !var; v++)
        if (strcmp(c->family.variants[v].digest, g.digest) == 0)
            var = &c->family.variants[v];
    if (!var) {
        LOG(c, 1, "agent %s asked for unknown model %s", g.agent, g.digest);
        return;
    }
    uint32_t chunks = (uint32_t)((var->size + COORD_CHUNK_BYTES - 1) / COORD_CHUNK_BYTES);
    char topic[FLEET_TOPICS_MAX_TOPIC];
    if (fleet_topic_build(c->cfg.prefix, FLEET_TOPIC_AGENT_CHUNK, g.agent, topic, sizeof topic) !=
        FLEET_TOPICS_OK)
        return;
    for (uint32_t i = g.first; i < chunks && i - g.first < g.count; i++) {
        size_t off = (size_t)i * COORD_CHUNK_BYTES;
        fleet_msg_chunk ch = {.index = i,
                              .chunks = chunks,
                              .total_bytes = var->size,
                              .data = var->bytes + off,
                              .size = var->size - off < COORD_CHUNK_BYTES ? var->size - off
                                                                          : COORD_CHUNK_BYTES};
        snprintf(ch.digest, sizeof ch.digest, "%s", var->digest);
        uint8_t *buf = NULL;
        size_t len = 0;
        fleet_topics_status st = fleet_msg_chunk_encode(&ch, &buf, &len);
        publish_encoded(c, topic, st, buf, len, 1, 0, NULL);
    }
}

static double request_deadline_us(const fleet_coordinator *c, const fleet_link_message *m,
                                  const fleet_msg_request *r)
{
    double budget_ms = m->expiry_s      ? m->expiry_s * 1000.0
                       : r->deadline_ms ? r->deadline_ms
                                        : c->cfg.deadline_ms;
    return m->received_us + budget_ms * 1000.0;
}

/* A response topic the coordinator would not publish to: one inside the fleet's own topics
 * (the coordinator may write there, a requester may not, and must not do so through us), or
 * a topic or correlation data longer than a pending request keeps. NULL when fine. */
static const char *reply_refusal(const fleet_coordinator *c, const fleet_link_message *m)
{
    size_t prefix = strlen(c->cfg.prefix);
    if (m->response_topic && strncmp(m->response_topic, c->cfg.prefix, prefix) == 0 &&
        (m->response_topic[prefix] == '/' || m->response_topic[prefix] == '\0'))
        return "the response topic is inside the fleet's own topics";
    if (m->response_topic && strlen(m->response_topic) > COORD_MAX_REPLY_BYTES)
        return "the response topic is longer than 1024 bytes";
    if (m->correlation_len > COORD_MAX_REPLY_BYTES)
        return "the correlation data is longer than 1024 bytes";
    return NULL;
}

/* Whether this coordinator takes request id of its stream: to decide it, or as the backup of
 * roles->owner. Ours records who holds its backup (with backups on here). */
static bool takes_request(fleet_coordinator *c, const char *id, coord_roles *roles)
{
    if (!c->joined && (!c->announced || fleet_link_now_us() - c->announced_us < JOIN_WAIT_US))
        return false; /* the others do not count us yet: theirs to decide */
    c->joined = true;
    coord_peers_role role = coord_peers_role_for(&c->peers, id, roles);
    if (!c->cfg.backup)
        roles->backup = 0; /* nobody backs up what we do not hand over */
    if (role == COORD_PEERS_DECIDES || (role == COORD_PEERS_BACKS_UP && c->cfg.backup))
        return true;
    c->stats.others_requests++;
    return false;
}

static void on_request(fleet_coordinator *c, const fleet_link_message *m)
{
    fleet_msg_request r;
    coord_roles roles;
    if (!decoded(c, m, "request", 3, fleet_msg_request_decode(m->payload, m->len, &r)) ||
        !takes_request(c, r.id, &roles))
        return;
    coord_stream_env env = stream_env(c);
    coord_reply reply = {m->response_topic, m->correlation, m->correlation_len, m->qos > 0};
    const char *why = reply_refusal(c, m);
    if (why && roles.owner[0]) /* the owner answers it */
        return;
    if (why) { /* answered on the stream's decision topic instead */
        coord_reply fallback = {NULL, NULL, 0, reply.qos};
        coord_stream_refuse(&c->stream, &env, r.id, m->received_us, &fallback, why);
        LOG(c, 3, "request %s on %s refused: %s", r.id, m->topic, why);
        return;
    }
    if (!coord_stream_request(&c->stream, &env, &r, m->received_us, request_deadline_us(c, m, &r),
                              &reply, &roles))
        LOG(c, 3, "request %s on %s refused: %s", r.id, m->topic, c->stream.refusal);
    else
        LOG(c, 3, "request %s held (%s%s)", r.id, roles.owner[0] ? "backup for " : "ours",
            roles.owner);
}

static bool may_answer(fleet_coordinator *c, const fleet_link_message *m, const fleet_msg_result *r)
{
    if (coord_members_may_answer(&c->members, r->agent, r->variant))
        return true;
    c->stats.bad_messages++;
    LOG(c, 3, "result on %s for variant %u: never assigned to that agent", m->topic,
        (unsigned)r->variant);
    return false;
}

static void on_result(fleet_coordinator *c, const fleet_link_message *m, const char *agent)
{
    fleet_msg_result r;
    if (!decoded(c, m, "result", 3, fleet_msg_result_decode(m->payload, m->len, &r)) ||
        !speaks_for_itself(c, m, agent, r.agent) || !may_answer(c, m, &r))
        return;
    /* Another member's request; but one already held stays held when members change. */
    coord_roles roles;
    if (!coord_stream_holds(&c->stream, r.id) && !takes_request(c, r.id, &roles))
        return;
    coord_stream_env env = stream_env(c);
    coord_stream_result(&c->stream, &env, &r, m->received_us, c->cfg.deadline_ms * 1000.0);
}

static void on_heartbeat(fleet_coordinator *c, const fleet_link_message *m, const char *agent)
{
    fleet_msg_heartbeat h;
    if (!decoded(c, m, "heartbeat", 3, fleet_msg_heartbeat_decode(m->payload, m->len, &h)) ||
        !speaks_for_itself(c, m, agent, h.agent))
        return;
    if (coord_members_heartbeat(&c->members, &h, m->received_us)) {
        LOG(c, 2, "agent %s is back (heartbeats again, bdseq %llu)", h.agent,
            (unsigned long long)h.bdseq);
        reassign(c, "heartbeat");
        tell_newcomer(c, coord_members_find(&c->members, h.agent));
    }
}

/* A raw tensor from an existing topic (input_filter) becomes one of our requests. */
static void on_raw_input(fleet_coordinator *c, const fleet_link_message *m)
{
    bool f32 = strcmp(c->cfg.input_format, "f32") == 0;
    size_t want = 28 * 28 * (f32 ? 4 : 1);
    if (m->len != want) {
        c->stats.bad_messages++;
        LOG(c, 1, "raw input on %s has %zu bytes, expected %zu (%s [1,1,28,28])", m->topic, m->len,
            want, c->cfg.input_format);
        return;
    }
    fleet_msg_request r;
    memset(&r, 0, sizeof r);
    snprintf(r.id, sizeof r.id, "%.40s-%llu", c->cfg.id, (unsigned long long)++c->raw_inputs);
    snprintf(r.stream, sizeof r.stream, "%s", c->cfg.stream);
    r.tensor = (fleet_tensor){.dtype = f32 ? FLEET_DTYPE_F32 : FLEET_DTYPE_U8,
                              .scale = f32 ? 1.0f : 1.0f / 255.0f,
                              .shape = {1, 1, 28, 28},
                              .rank = 4,
                              .data = m->payload,
                              .size = m->len};
    char topic[FLEET_TOPICS_MAX_TOPIC];
    fleet_topic_build(c->cfg.prefix, FLEET_TOPIC_STREAM_REQUEST, c->cfg.stream, topic,
                      sizeof topic);
    uint8_t *buf = NULL;
    size_t len = 0;
    fleet_topics_status st = fleet_msg_request_encode(&r, &buf, &len);
    publish_encoded(c, topic, st, buf, len, 0, 0, NULL);
}

static void dispatch(fleet_coordinator *c, const fleet_link_message *m)
{
    if (c->drain_echoed) /* leaving: our view stays as it was at our drained state */
        return;
    fleet_topic_ref t;
    if (fleet_topic_parse(c->cfg.prefix, m->topic, &t) != FLEET_TOPICS_OK) {
        size_t n = strlen(c->cfg.prefix);
        bool fleets = strncmp(m->topic, c->cfg.prefix, n) == 0 && m->topic[n] == '/';
        if (fleets) { /* e.g. a result topic naming an id longer than ids may be */
            c->stats.bad_messages++;
            LOG(c, 3, "message on %s: %s", m->topic, fleet_topics_last_error());
        } else if (c->cfg.input_filter[0]) {
            on_raw_input(c, m); /* only what the input filter brought is outside the fleet */
        }
        return;
    }
    const char *id = t.id;
    bool ours = strcmp(id, c->cfg.stream) == 0;
    switch (t.kind) {
    case FLEET_TOPIC_AGENT_STATE:
        on_agent_state(c, m, id);
        break;
    case FLEET_TOPIC_AGENT_HEARTBEAT:
        on_heartbeat(c, m, id);
        break;
    case FLEET_TOPIC_AGENT_MODEL_GET:
        on_model_get(c, m, id);
        break;
    case FLEET_TOPIC_COORDINATOR_STATE:
        on_coordinator_state(c, m, id);
        break;
    case FLEET_TOPIC_AGENT_ASSIGNMENT:
        on_assignment(c, m, id);
        break;
    case FLEET_TOPIC_STREAM_REQUEST:
        if (ours)
            on_request(c, m);
        break;
    case FLEET_TOPIC_STREAM_RESULT:
        if (ours)
            on_result(c, m, t.agent);
        break;
    default:
        break;
    }
}

static fleet_coordinator_status subscribe_all(fleet_coordinator *c)
{
    static const struct {
        fleet_topic_kind kind;
        int qos;
    } subs[] = {{FLEET_TOPIC_COORDINATOR_STATE, 1}, /* first: peers known before any agent */
                {FLEET_TOPIC_AGENT_STATE, 1},
                {FLEET_TOPIC_AGENT_ASSIGNMENT, 1}, /* after the births they refer to */
                {FLEET_TOPIC_AGENT_HEARTBEAT, 0},
                {FLEET_TOPIC_AGENT_MODEL_GET, 1},
                {FLEET_TOPIC_STREAM_REQUEST, 1}, /* a QoS 1 request keeps QoS 1 to us */
                {FLEET_TOPIC_STREAM_RESULT, 0}};
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
        char filter[FLEET_TOPICS_MAX_TOPIC];
        fleet_topics_status st =
            subs[i].kind == FLEET_TOPIC_STREAM_RESULT /* from every agent */
                ? fleet_topic_build_result(c->cfg.prefix, c->cfg.stream, "+", filter, sizeof filter)
                : fleet_topic_build(c->cfg.prefix, subs[i].kind,
                                    subs[i].kind == FLEET_TOPIC_STREAM_REQUEST ? c->cfg.stream
                                                                               : "+",
                                    filter, sizeof filter);
        if (st != FLEET_TOPICS_OK ||
            fleet_link_subscribe(c->link, filter, subs[i].qos) != FLEET_LINK_OK)
            return coord_fail(FLEET_COORDINATOR_ELINK, "subscribe: %s", fleet_link_last_error());
    }
    /* A shared subscription (MQTT v5): with several coordinators on the stream, one of them
     * turns each frame into a request. */
    char shared[sizeof c->cfg.input_filter + FLEET_TOPICS_MAX_ID + 32];
    snprintf(shared, sizeof shared, "$share/fleetinfer-%s/%s", c->cfg.stream, c->cfg.input_filter);
    if (c->cfg.input_filter[0] && fleet_link_subscribe(c->link, shared, 0) != FLEET_LINK_OK)
        return coord_fail(FLEET_COORDINATOR_ELINK, "subscribe: %s", fleet_link_last_error());
    return FLEET_COORDINATOR_OK;
}

/* Paho's receive thread, for every message: no hand-off to another thread. */
static bool deliver_message(void *ctx, fleet_link_message *m)
{
    fleet_coordinator *c = ctx;
    pthread_mutex_lock(&c->state_lock);
    dispatch(c, m);
    if (c->stream.earliest_deadline_us < c->next_tick_us)
        pthread_cond_signal(&c->tick);
    pthread_mutex_unlock(&c->state_lock);
    fleet_link_message_free(m);
    return true;
}

static fleet_coordinator_status connect_link(fleet_coordinator *c)
{
    char client_id[96], will_topic[FLEET_TOPICS_MAX_TOPIC];
    snprintf(client_id, sizeof client_id, "coordinator-%s", c->cfg.id);
    if (fleet_topic_build(c->cfg.prefix, FLEET_TOPIC_COORDINATOR_STATE, c->cfg.id, will_topic,
                          sizeof will_topic) != FLEET_TOPICS_OK)
        return coord_fail(FLEET_COORDINATOR_EINVAL, "bad prefix or id: %s",
                          fleet_topics_last_error());
    fleet_msg_coordinator_state offline = {.online = false};
    snprintf(offline.coordinator, sizeof offline.coordinator, "%s", c->cfg.id);
    snprintf(offline.stream, sizeof offline.stream, "%s", c->cfg.stream);
    uint8_t *will = NULL;
    size_t will_len = 0;
    if (fleet_msg_coordinator_state_encode(&offline, &will, &will_len) != FLEET_TOPICS_OK)
        return coord_fail(FLEET_COORDINATOR_EINVAL, "%s", fleet_topics_last_error());
    fleet_link_options o;
    fleet_link_options_init(&o);
    o.url = c->cfg.broker;
    o.client_id = client_id;
    o.username = c->cfg.user[0] ? c->cfg.user : NULL;
    o.password = c->cfg.password[0] ? c->cfg.password : NULL;
    o.will_topic = will_topic;
    o.will_payload = will;
    o.will_len = will_len;
    o.will_qos = 1;
    o.will_retained = 1;
    o.deliver = deliver_message;
    o.deliver_ctx = c;
    fleet_link_status ls = fleet_link_create(&o, &c->link);
    free(will);
    if (ls != FLEET_LINK_OK)
        return coord_fail(FLEET_COORDINATOR_ELINK, "%s", fleet_link_last_error());
    return FLEET_COORDINATOR_OK;
}

fleet_coordinator_status fleet_coordinator_create(const fleet_coordinator_config *config,
                                                  fleet_coordinator **out)
{
    if (!config || !out || !config->id[0] || !config->stream[0])
        return coord_fail(FLEET_COORDINATOR_EINVAL, "id and stream are required");
    fleet_coordinator *c = calloc(1, sizeof *c);
    if (!c)
        return coord_fail(FLEET_COORDINATOR_ENOMEM, "out of memory");
    c->cfg = *config;
    snprintf(c->peers.self, sizeof c->peers.self, "%s", c->cfg.id);
    snprintf(c->peers.stream, sizeof c->peers.stream, "%s", c->cfg.stream);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC); /* fleet_link_now_us's clock */
    pthread_mutex_init(&c->state_lock, NULL);
    pthread_cond_init(&c->tick, &attr);
    pthread_condattr_destroy(&attr);
    c->lock_ready = true;
    /* Epochs start at the wall clock so that a restarted coordinator outranks its old
     * retained assignments. */
    c->epoch = wall_ms();
    fleet_coordinator_status st = coord_family_load(&c->cfg, &c->family);
    if (st == FLEET_COORDINATOR_OK)
        st = coord_stream_init(&c->stream, c->cfg.stream, c->cfg.max_pending, c->family.count,
                               c->family.classes);
    if (st == FLEET_COORDINATOR_OK && c->cfg.fusion)
        st = coord_stream_enable_fusion(&c->stream, &c->family);
    if (st == FLEET_COORDINATOR_OK)
        st = connect_link(c);
    if (st == FLEET_COORDINATOR_OK)
        st = subscribe_all(c);
    if (st != FLEET_COORDINATOR_OK) {
        fleet_coordinator_destroy(c);
        return st;
    }
    pthread_mutex_lock(&c->state_lock);
    c->announced_us = fleet_link_now_us();
    c->announced = true;
    pthread_mutex_unlock(&c->state_lock);
    publish_state(c, true, false);
    c->next_state_us = fleet_link_now_us() + COORD_STATE_REFRESH_US;
    LOG(c, 2, "serving stream '%s' with %zu variants (%s) at %s", c->cfg.stream, c->family.count,
        c->cfg.fusion ? "fusion" : fleet_ensemble_rule_name(c->cfg.rule), c->cfg.broker);
    *out = c;
    return FLEET_COORDINATOR_OK;
}

/* Restates our assignment to every agent of ours that follows, or whose retained assignment
 * is, another coordinator's; at most five times a second per agent (our last word's echo may
 * be on its way, and two views may stay apart for a while, each coordinator insisting on what
 * it sees). */
static void restate_contested(fleet_coordinator *c, double now)
{
    for (size_t i = 0; i < c->members.count; i++) {
        coord_agent *a = &c->members.agents[i];
        if (coord_members_contested(a) && now - a->published_us > 200e3) {
            next_epoch(c);
            publish_assignment(c, a);
        }
    }
}

static void housekeeping(fleet_coordinator *c, double now)
{
    restate_contested(c, now);
    fleet_link_stats ls;
    fleet_link_get_stats(c->link, &ls);
    /* Restated after a reconnect (the broker has published our will meanwhile), and every
     * few seconds, so that peers can tell a coordinator whose will never came. */
    if (ls.reconnects != c->reconnects || now >= c->next_state_us) {
        c->reconnects = ls.reconnects;
        c->next_state_us = now + COORD_STATE_REFRESH_US;
        publish_state(c, true, false);
    }
    coord_peer gone;
    while (coord_peers_expire_one(&c->peers, now, COORD_PEER_SILENCE_US, &gone)) {
        owner_gone(c, gone.id, "silent for 16 s", 0);
        peers_changed(c, gone.id, "silent for 16 s, taken as offline", gone.stream);
    }
    if (now >= c->next_expire_us) {
        c->next_expire_us = now + 100e3; /* a silent agent is noticed within 100 ms */
        if (coord_members_expire(&c->members, now, c->cfg.heartbeat_timeout_ms * 1000.0))
            reassign(c, "heartbeat timeout");
    }
    coord_stream_env env = stream_env(c);
    coord_stream_sweep(&c->stream, &env, now);
}

/* Sleeps until the next tick, the earliest pending deadline or an expiry check, whichever
 * comes first; deliver_message wakes it when a request brings an earlier deadline. */
static void wait_for_tick(fleet_coordinator *c, double now)
{
    double until = now + COORD_TICK_MS * 1000.0;
    until = fmin(until, fmax(c->stream.earliest_deadline_us, now));
    until = fmin(until, c->next_expire_us);
    c->next_tick_us = until;
    struct timespec ts = {.tv_sec = (time_t)(until / 1e6),
                          .tv_nsec = (long)(fmod(until, 1e6) * 1000.0)};
    pthread_cond_timedwait(&c->tick, &c->state_lock, &ts);
}

fleet_coordinator_status fleet_coordinator_run(fleet_coordinator *c)
{
    while (!c->stopping) {
        /* Every message goes to deliver_message; this keeps the subscriptions after a
         * reconnect, and would take any message it declined. */
        fleet_link_message *m = NULL;
        fleet_link_status st = fleet_link_receive(c->link, 0, &m);
        if (st == FLEET_LINK_ECLOSED)
            break;
        pthread_mutex_lock(&c->state_lock);
        c->deferring = true;
        if (st == FLEET_LINK_OK)
            dispatch(c, m);
        housekeeping(c, fleet_link_now_us());
        c->deferring = false;
        pthread_mutex_unlock(&c->state_lock);
        flush_outbox(c);
        fleet_link_message_free(m);
        pthread_mutex_lock(&c->state_lock);
        wait_for_tick(c, fleet_link_now_us());
        pthread_mutex_unlock(&c->state_lock);
    }
    return FLEET_COORDINATOR_OK;
}

void fleet_coordinator_stop(fleet_coordinator *c)
{
    c->stopping = 1;
}

void fleet_coordinator_get_stats(fleet_coordinator *c, fleet_coordinator_stats *stats)
{
    pthread_mutex_lock(&c->state_lock);
    *stats = c->stats;
    stats->live_agents = (uint32_t)coord_members_live(&c->members);
    stats->epoch = c->epoch;
    pthread_mutex_unlock(&c->state_lock);
}

/* What this run did, for the operator (fleet_coordinator_get_stats while it runs). */
static void log_totals(const fleet_coordinator *c)
{
    const fleet_coordinator_stats *s = &c->stats;
    LOG(c, 2,
        "stopped: %llu requests, %llu decisions (%llu degraded), %llu results; backups held "
        "%llu (released %llu, taken over %llu), handed over %llu",
        (unsigned long long)s->requests, (unsigned long long)s->decisions,
        (unsigned long long)s->degraded, (unsigned long long)s->results,
        (unsigned long long)s->backups, (unsigned long long)s->backups_released,
        (unsigned long long)s->taken_over, (unsigned long long)s->handed_over);
}

/* Leaving on purpose: our drained offline state tells the others to take our requests: the
 * member that ranks next for each has a backup of those that came before it (when both take
 * part in backups) and owns those after it. We take none after its echo (at most 2 s: the
 * broker may be gone), stop deliveries, let go of what a backup decides and decide the rest
 * with what it has. */
static void drain(fleet_coordinator *c)
{
    pthread_mutex_lock(&c->state_lock);
    c->draining = true;
    pthread_mutex_unlock(&c->state_lock);
    publish_state(c, false, true);
    double until = fleet_link_now_us() + 2e6;
    bool echoed = false;
    while (!echoed && fleet_link_now_us() < until) {
        pthread_mutex_lock(&c->state_lock);
        c->deferring = true;
        coord_stream_env env = stream_env(c);
        coord_stream_sweep(&c->stream, &env, fleet_link_now_us()); /* deadlines go on */
        c->deferring = false;
        double wake = fmin(until, fleet_link_now_us() + COORD_TICK_MS * 1000.0);
        struct timespec ts = {.tv_sec = (time_t)(wake / 1e6),
                              .tv_nsec = (long)(fmod(wake, 1e6) * 1000.0)};
        if (!c->drain_echoed)
            pthread_cond_timedwait(&c->tick, &c->state_lock, &ts);
        echoed = c->drain_echoed;
        pthread_mutex_unlock(&c->state_lock);
        flush_outbox(c);
    }
    pthread_mutex_lock(&c->state_lock);
    c->drain_echoed = true; /* from here on nothing is taken in */
    pthread_mutex_unlock(&c->state_lock);
    fleet_link_close(c->link);
    pthread_mutex_lock(&c->state_lock);
    coord_stream_env env = stream_env(c);
    c->deferring = true;
    if (echoed) /* the others took our leaving at the same point as we did */
        coord_stream_hand_over(&c->stream, &env, backup_holder_present, c, c->drain_cut_us,
                               fleet_link_now_us());
    else
        LOG(c, 1, "our offline state did not come back within 2 s: deciding all we hold");
    coord_stream_decide_all(&c->stream, &env, fleet_link_now_us());
    c->deferring = false;
    pthread_mutex_unlock(&c->state_lock);
    flush_outbox(c);
}

void fleet_coordinator_destroy(fleet_coordinator *c)
{
    if (!c)
        return;
    if (c->link && c->announced)
        drain(c);
    fleet_link_destroy(c->link); /* no deliver_message runs after this */
    if (c->announced)
        log_totals(c);
    for (size_t i = 0; i < c->outbox_count; i++) /* the timekeeper flushes before it stops */
        free_outgoing(&c->outbox[i]);
    free(c->outbox);
    coord_stream_free(&c->stream);
    coord_family_free(&c->family);
    if (c->lock_ready) {
        pthread_mutex_destroy(&c->state_lock);
        pthread_cond_destroy(&c->tick);
    }
    free(c);
}
