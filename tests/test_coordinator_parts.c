/* test_coordinator_parts.c: membership, placement and aggregation without a broker. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* A family of four variants that only needs digests for these tests. */
static void fake_family(coord_family *f, size_t count)
{
    memset(f, 0, sizeof *f);
    f->count = count;
    f->classes = 10;
    for (size_t v = 0; v < count; v++) {
        snprintf(f->variants[v].digest, sizeof f->variants[v].digest, "%064zu", v);
        f->variants[v].vp_weight = 1.0f;
        f->variants[v].val_accuracy = 0.9f;
    }
}

static fleet_msg_birth birth(const char *id, uint64_t bdseq, const coord_family *f, uint32_t loaded)
{
    fleet_msg_birth b;
    memset(&b, 0, sizeof b);
    snprintf(b.agent, sizeof b.agent, "%s", id);
    b.bdseq = bdseq;
    b.cores = 1;
    for (size_t v = 0; v < f->count; v++)
        if (loaded >> v & 1u) {
            snprintf(b.models[b.n_models].digest, sizeof b.models[0].digest, "%s",
                     f->variants[v].digest);
            b.models[b.n_models++].latency_us = 100;
        }
    return b;
}

static void test_bdseq_keeps_reborn_agents_alive(void **state)
{
    (void)state;
    coord_family f;
    fake_family(&f, 4);
    static coord_members m;
    memset(&m, 0, sizeof m);
    fleet_msg_birth b1 = birth("a", 1, &f, 0);
    assert_true(coord_members_birth(&m, &b1, 0));
    fleet_msg_birth b2 = birth("a", 2, &f, 0);
    assert_true(coord_members_birth(&m, &b2, 10)); /* reconnected: a new session */
    fleet_msg_death late = {.agent = "a", .bdseq = 1};
    assert_false(coord_members_death(&m, &late)); /* the old session's will comes late */
    assert_int_equal(coord_members_live(&m), 1);
    assert_false(coord_members_birth(&m, &b1, 20)); /* a replayed older birth changes nothing */
    fleet_msg_death now = {.agent = "a", .bdseq = 2};
    assert_true(coord_members_death(&m, &now));
    assert_int_equal(coord_members_live(&m), 0);
    fleet_msg_death unknown = {.agent = "ghost", .bdseq = 9};
    assert_false(coord_members_death(&m, &unknown));
}

/* Two coordinators publishing at once can leave the agent following one assignment and the
 * broker retaining another (a lower epoch published later): either is a contest. */
static void test_contested_by_followed_or_retained(void **state)
{
    (void)state;
    coord_agent a;
    memset(&a, 0, sizeof a);
    a.ours = a.alive = true;
    assert_false(coord_members_contested(&a)); /* nothing seen yet: our placement speaks first */
    assert_true(coord_members_saw_assignment(&a, "first", 10, "first"));
    assert_false(coord_members_contested(&a));
    /* The other's older epoch, delivered after ours: the agent ignores it, the broker keeps it. */
    assert_false(coord_members_saw_assignment(&a, "second", 9, "first"));
    assert_true(coord_members_contested(&a));
    assert_true(coord_members_saw_assignment(&a, "first", 11, "first")); /* our restatement */
    assert_false(coord_members_contested(&a));
    /* The other's newer epoch, then an older echo of ours: retained is ours, followed is not. */
    assert_true(coord_members_saw_assignment(&a, "second", 12, "first"));
    assert_false(coord_members_saw_assignment(&a, "first", 11, "first"));
    assert_true(coord_members_contested(&a));
    assert_true(coord_members_saw_assignment(&a, "first", 13, "first"));
    assert_false(coord_members_contested(&a));
    /* Only an agent of ours that is alive is worth a word. */
    assert_true(coord_members_saw_assignment(&a, "second", 14, "first"));
    a.alive = false;
    assert_false(coord_members_contested(&a));
    a.alive = true;
    a.ours = false;
    assert_false(coord_members_contested(&a));
    /* Even an epoch of 0 (a foreign publisher's) is a word seen. */
    memset(&a, 0, sizeof a);
    a.ours = a.alive = true;
    assert_true(coord_members_saw_assignment(&a, "second", 0, "first"));
    assert_true(coord_members_contested(&a));
}

static void test_heartbeat_timeout(void **state)
{
    (void)state;
    coord_family f;
    fake_family(&f, 1);
    static coord_members m;
    memset(&m, 0, sizeof m);
    fleet_msg_birth b = birth("a", 1, &f, 0);
    coord_members_birth(&m, &b, 0);
    fleet_msg_heartbeat h = {.agent = "a", .bdseq = 1};
    coord_members_heartbeat(&m, &h, 2e6);
    assert_false(coord_members_expire(&m, 4e6, 3e6));
    assert_true(coord_members_expire(&m, 5.1e6, 3e6));
    assert_int_equal(coord_members_live(&m), 0);
}

static int owners(const coord_members *m, size_t v)
{
    int n = 0;
    for (size_t i = 0; i < m->count; i++)
        n += m->agents[i].alive && (m->agents[i].assigned >> v & 1u);
    return n;
}

static void test_assignment_covers_moves_little_and_fails_over(void **state)
{
    (void)state;
    coord_family f;
    fake_family(&f, 4);
    static coord_members m;
    memset(&m, 0, sizeof m);
    bool changed[COORD_MAX_AGENTS];
    const char *ids[] = {"a", "b", "c", "d"};
    for (int i = 0; i < 4; i++) {
        fleet_msg_birth b = birth(ids[i], 1, &f, 0);
        coord_members_birth(&m, &b, 0);
    }
    assert_int_equal(coord_assign(&m, &f, 1, changed), 4);
    for (size_t v = 0; v < 4; v++)
        assert_int_equal(owners(&m, v), 1);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(__builtin_popcount(m.agents[i].assigned), 1);
    assert_int_equal(coord_assign(&m, &f, 1, changed), 0); /* stable: nothing moves */
    uint32_t c_had = m.agents[2].assigned;
    fleet_msg_death dead = {.agent = "c", .bdseq = 1};
    coord_members_death(&m, &dead);
    assert_int_equal(coord_assign(&m, &f, 1, changed), 1); /* only the orphan moves */
    assert_int_equal(owners(&m, (size_t)__builtin_ctz(c_had)), 1);
    /* A fifth agent joining takes a variant from an agent holding two: one move each side. */
    fleet_msg_birth e = birth("e", 1, &f, 0);
    coord_members_birth(&m, &e, 0);
    assert_int_equal(coord_assign(&m, &f, 1, changed), 2);
    for (size_t i = 0; i < m.count; i++)
        if (m.agents[i].alive)
            assert_int_equal(__builtin_popcount(m.agents[i].assigned), 1);
    /* Replication 2 over four live agents: every variant twice. */
    coord_assign(&m, &f, 2, changed);
    for (size_t v = 0; v < 4; v++)
        assert_int_equal(owners(&m, v), 2);
}

/* The view of coordinator ids[self] when ids[0..n) are online serving streams[0..n): its
 * peers are the others. */
static void view(coord_peers *p, size_t self, const char *const *ids, const char *const *streams,
                 size_t n)
{
    memset(p, 0, sizeof *p);
    snprintf(p->self, sizeof p->self, "%s", ids[self]);
    snprintf(p->stream, sizeof p->stream, "%s", streams[self]);
    for (size_t i = 0; i < n; i++) {
        fleet_msg_coordinator_state s = {.online = true};
        snprintf(s.coordinator, sizeof s.coordinator, "%s", ids[i]);
        snprintf(s.stream, sizeof s.stream, "%s", streams[i]);
        coord_peers_update(p, &s);
    }
}

/* Coordinators sharing a fleet agree on every agent's owner without talking, share the agents
 * about evenly, move only the leaving coordinator's agents, and place variants on their own. */
static void test_peers_split_agents(void **state)
{
    (void)state;
    static const char *const coords[] = {"north", "south", "east"};
    static const char *const streams[] = {"line-1", "line-2", "line-3"};
    enum { N = 300 };
    static coord_peers views[3];
    for (int c = 0; c < 3; c++)
        view(&views[c], (size_t)c, coords, streams, 3);
    assert_int_equal(views[0].count, 2); /* its own state is not a peer */
    int owned[3] = {0}, owner_of[N];
    for (int i = 0; i < N; i++) {
        char agent[16];
        snprintf(agent, sizeof agent, "gw-%d", i);
        int n_owners = 0;
        for (int c = 0; c < 3; c++)
            if (coord_peers_owns(&views[c], agent)) {
                owner_of[i] = c;
                owned[c]++;
                n_owners++;
            }
        assert_int_equal(n_owners, 1);
    }
    for (int c = 0; c < 3; c++)
        assert_in_range(owned[c], N / 3 - 40, N / 3 + 40);

    /* "east" goes offline (its will): only its agents move, to the two left. */
    fleet_msg_coordinator_state gone = {.coordinator = "east", .online = false};
    assert_int_equal(coord_peers_update(&views[0], &gone), COORD_PEERS_CHANGED);
    assert_int_equal(coord_peers_update(&views[0], &gone), COORD_PEERS_SAME);
    assert_int_equal(coord_peers_update(&views[1], &gone), COORD_PEERS_CHANGED);
    for (int i = 0; i < N; i++) {
        char agent[16];
        snprintf(agent, sizeof agent, "gw-%d", i);
        bool north = coord_peers_owns(&views[0], agent), south = coord_peers_owns(&views[1], agent);
        assert_true(north != south);
        if (owner_of[i] != 2)
            assert_int_equal(north ? 0 : 1, owner_of[i]);
    }
    fleet_msg_coordinator_state self = {.coordinator = "north", .online = false};
    assert_int_equal(coord_peers_update(&views[0], &self), COORD_PEERS_SAME); /* an old will */

    /* Placement uses only the agents a coordinator owns. */
    coord_family f;
    fake_family(&f, 2);
    static coord_members m;
    memset(&m, 0, sizeof m);
    bool changed[COORD_MAX_AGENTS];
    for (int i = 0; i < 8; i++) {
        char agent[16];
        snprintf(agent, sizeof agent, "gw-%d", i);
        fleet_msg_birth b = birth(agent, 1, &f, 0);
        coord_members_birth(&m, &b, 0);
    }
    coord_assign(&m, &f, 1, changed); /* alone: its agents all */
    size_t mine = 8 - coord_peers_claim(&views[0], &m);
    assert_true(mine >= 2 && mine < 8); /* gw-0..7 fall to both sides with these names */
    coord_assign(&m, &f, 1, changed);
    for (size_t i = 0; i < m.count; i++) {
        assert_int_equal(m.agents[i].ours, coord_peers_owns(&views[0], m.agents[i].id));
        if (!m.agents[i].ours)
            assert_int_equal(m.agents[i].assigned, 0);
    }
    for (size_t v = 0; v < 2; v++)
        assert_int_equal(owners(&m, v), 1);

    /* A full table refuses the next coordinator rather than mis-assigning. */
    coord_peers full;
    memset(&full, 0, sizeof full);
    strcpy(full.self, "me");
    for (int i = 0; i <= COORD_MAX_PEERS; i++) {
        fleet_msg_coordinator_state s = {.online = true};
        snprintf(s.coordinator, sizeof s.coordinator, "c%d", i);
        assert_int_equal(coord_peers_update(&full, &s),
                         i < COORD_MAX_PEERS ? COORD_PEERS_CHANGED : COORD_PEERS_FULL);
    }
}

/* Two coordinators on one stream: the smaller id leads and alone assigns agents, requests are
 * split between the two by id, the follower mirrors the leader's assignments, and when the
 * leader goes the follower takes over its placement without moving a variant. */
static void test_peers_stream_group(void **state)
{
    (void)state;
    static const char *const ids[] = {"a", "b", "c"};
    static const char *const streams[] = {"s", "s", "t"};
    static coord_peers va, vb, vc;
    view(&va, 0, ids, streams, 3);
    view(&vb, 1, ids, streams, 3);
    view(&vc, 2, ids, streams, 3);
    assert_true(coord_peers_leader(&va));
    assert_false(coord_peers_leader(&vb));
    assert_true(coord_peers_leader(&vc));
    assert_true(coord_peers_leader_is(&vb, "a"));
    int a_agents = 0, c_agents = 0, a_requests = 0;
    for (int i = 0; i < 200; i++) {
        char id[16];
        snprintf(id, sizeof id, "gw-%d", i);
        assert_false(coord_peers_owns(&vb, id)); /* a follower assigns none */
        bool a = coord_peers_owns(&va, id), c = coord_peers_owns(&vc, id);
        assert_true(a != c);
        a_agents += a, c_agents += c;
        snprintf(id, sizeof id, "req-%d", i);
        bool by_a = coord_peers_decides(&va, id), by_b = coord_peers_decides(&vb, id);
        assert_true(by_a != by_b);
        a_requests += by_a;
        assert_true(coord_peers_decides(&vc, id)); /* alone on its stream */
    }
    assert_in_range(a_agents, 60, 140);
    assert_in_range(a_requests, 60, 140);

    /* The follower mirrors what the leader assigns, and nothing from other streams. */
    coord_family f;
    fake_family(&f, 2);
    static coord_members m;
    memset(&m, 0, sizeof m);
    bool changed[COORD_MAX_AGENTS];
    const char *agents[] = {"gw-10", "gw-1"}; /* a's; when a goes, b's and c's */
    for (int i = 0; i < 2; i++) {
        fleet_msg_birth b = birth(agents[i], 1, &f, 3);
        coord_members_birth(&m, &b, 0);
    }
    assert_int_equal(coord_peers_claim(&vb, &m), 2); /* neither is the follower's */
    fleet_msg_assignment as = {
        .agent = "gw-10", .coordinator = "a", .stream = "s", .epoch = 7, .n_variants = 2};
    for (uint32_t v = 0; v < 2; v++) {
        as.variants[v].variant = v;
        snprintf(as.variants[v].digest, sizeof as.variants[v].digest, "%s", f.variants[v].digest);
    }
    assert_true(coord_members_follow(&m, &f, &as, true));
    assert_int_equal(m.agents[0].assigned, 3);
    assert_true(coord_members_serving(&m, &f, 0) && coord_members_serving(&m, &f, 1));
    snprintf(as.variants[1].digest, sizeof as.variants[1].digest, "%064d", 9);
    assert_true(coord_members_follow(&m, &f, &as, true)); /* not our family's variant 1 */
    assert_int_equal(m.agents[0].assigned, 1);
    fleet_msg_assignment other = {.agent = "gw-1", .coordinator = "c", .stream = "t", .epoch = 8};
    assert_false(coord_members_follow(&m, &f, &other, false)); /* serves none of ours */
    assert_int_equal(m.agents[1].assigned, 0);
    snprintf(as.variants[1].digest, sizeof as.variants[1].digest, "%s", f.variants[1].digest);
    coord_members_follow(&m, &f, &as, true);

    /* The leader goes: the follower leads and owns gw-10 (gw-1 goes to c, the other stream's
     * leader), keeping what a placed on it: nothing moves. */
    fleet_msg_coordinator_state gone = {.coordinator = "a", .online = false};
    assert_int_equal(coord_peers_update(&vb, &gone), COORD_PEERS_CHANGED);
    assert_true(coord_peers_leader(&vb));
    assert_int_equal(coord_peers_claim(&vb, &m), 1);
    assert_true(m.agents[0].ours);
    assert_false(m.agents[1].ours);
    assert_int_equal(m.agents[0].assigned, 3);
    assert_int_equal(coord_assign(&m, &f, 1, changed), 0);
}

/* Aggregation: a sink that records decisions. */
static fleet_msg_decision last;
static int delivered;
static char last_topic[128];

static int last_qos;
static const coord_reply no_reply = {NULL, NULL, 0, 0};

static void record(void *ctx, const fleet_msg_decision *d, const coord_reply *reply)
{
    (void)ctx;
    last = *d;
    delivered++;
    last_qos = reply->qos;
    snprintf(last_topic, sizeof last_topic, "%s", reply->topic ? reply->topic : "");
}

static fleet_msg_result result(const char *id, uint32_t variant, uint16_t top, float p)
{
    fleet_msg_result r;
    memset(&r, 0, sizeof r);
    snprintf(r.id, sizeof r.id, "%s", id);
    r.variant = variant;
    r.output = FLEET_OUTPUT_TOPK;
    r.k = 2;
    r.classes[0] = top;
    r.probs[0] = p;
    r.classes[1] = (uint16_t)((top + 1) % 10);
    r.probs[1] = 1.0f - p;
    r.infer_us = 100 + variant;
    return r;
}

static void test_stream_decides_dedups_and_ignores_late(void **state)
{
    (void)state;
    coord_family f;
    fake_family(&f, 3);
    fleet_coordinator_stats stats;
    memset(&stats, 0, sizeof stats);
    coord_stream s;
    assert_int_equal(coord_stream_init(&s, "s", 8, f.count, f.classes), FLEET_COORDINATOR_OK);
    coord_stream_env env = {&f, FLEET_ENSEMBLE_MEAN_SOFTMAX, "c1", 0x7, {record, NULL}, &stats};
    fleet_msg_request req;
    memset(&req, 0, sizeof req);
    snprintf(req.id, sizeof req.id, "r1");
    delivered = 0;
    coord_reply reply = {"reply/x", (const uint8_t *)"c", 1, 1};
    coord_stream_request(&s, &env, &req, 0, 1e6, &reply);
    fleet_msg_result r = result("r1", 0, 3, 0.9f);
    coord_stream_result(&s, &env, &r, 10, 1e6);
    coord_stream_result(&s, &env, &r, 11, 1e6); /* a replica of variant 0 */
    assert_int_equal(stats.duplicate_results, 1);
    r = result("r1", 1, 3, 0.6f);
    coord_stream_result(&s, &env, &r, 12, 1e6);
    assert_int_equal(delivered, 0);
    r = result("r1", 2, 5, 0.7f);
    coord_stream_result(&s, &env, &r, 13, 1e6);
    assert_int_equal(delivered, 1); /* all three expected variants answered */
    assert_int_equal(last.cls, 3);
    assert_false(last.degraded);
    assert_int_equal(last.n_used, 3);
    assert_string_equal(last_topic, "reply/x");
    assert_int_equal(last_qos, 1); /* as the request came */
    assert_int_equal(last.slowest_infer_us, 102);
    coord_stream_result(&s, &env, &r, 20, 1e6); /* after the decision */
    assert_int_equal(stats.late_results, 1);
    assert_int_equal(delivered, 1);
    coord_stream_free(&s);
}

/* A tensor that is not the models' input size is refused at once, once, with the reason; a
 * result that came before it is dropped with it. */
static void test_stream_refuses_misfit_tensors(void **state)
{
    (void)state;
    coord_family f;
    fake_family(&f, 2);
    f.input_count = 4;
    fleet_coordinator_stats stats;
    memset(&stats, 0, sizeof stats);
    coord_stream s;
    assert_int_equal(coord_stream_init(&s, "s", 8, f.count, f.classes), FLEET_COORDINATOR_OK);
    coord_stream_env env = {&f, FLEET_ENSEMBLE_MEAN_SOFTMAX, "c1", 0x3, {record, NULL}, &stats};
    fleet_msg_request req;
    memset(&req, 0, sizeof req);
    snprintf(req.id, sizeof req.id, "bad");
    static const uint8_t pixels[3] = {1, 2, 3};
    req.tensor = (fleet_tensor){
        .dtype = FLEET_DTYPE_U8, .scale = 1.0f, .shape = {3}, .rank = 1, .data = pixels, .size = 3};
    fleet_msg_result early = result("bad", 0, 3, 0.9f);
    coord_stream_result(&s, &env, &early, 0, 1e6);
    delivered = 0;
    assert_false(coord_stream_request(&s, &env, &req, 1, 1e6, &no_reply));
    assert_int_equal(delivered, 1);
    assert_int_equal(last.cls, -1);
    assert_true(last.degraded);
    assert_string_equal(last.error, "the tensor has 3 elements; the stream's models take 4");
    assert_string_equal(last.id, "bad");
    coord_stream_request(&s, &env, &req, 2, 1e6, &no_reply); /* a retransmission */
    fleet_msg_result late = result("bad", 1, 3, 0.9f);
    coord_stream_result(&s, &env, &late, 3, 1e6);
    assert_int_equal(delivered, 1);
    assert_int_equal(stats.refused, 1);
    assert_int_equal(stats.requests, 1);
    assert_int_equal(stats.late_results, 1);
    coord_stream_sweep(&s, &env, 2e6); /* nothing pending is left to decide */
    assert_int_equal(delivered, 1);

    static const float fits[4] = {0};
    snprintf(req.id, sizeof req.id, "good");
    req.tensor = (fleet_tensor){.dtype = FLEET_DTYPE_F32,
                                .scale = 1.0f,
                                .shape = {1, 4},
                                .rank = 2,
                                .data = (const uint8_t *)fits,
                                .size = sizeof fits};
    assert_true(coord_stream_request(&s, &env, &req, 4, 1e6, &no_reply));
    assert_int_equal(delivered, 1); /* waits for its variants */
    assert_int_equal(stats.refused, 1);
    coord_stream_free(&s);
}

static void test_stream_deadline_degrades_and_bounds_memory(void **state)
{
    (void)state;
    coord_family f;
    fake_family(&f, 2);
    fleet_coordinator_stats stats;
    memset(&stats, 0, sizeof stats);
    coord_stream s;
    coord_stream_init(&s, "s", 4, f.count, f.classes);
    coord_stream_env env = {&f, FLEET_ENSEMBLE_VP_TOPK, "c1", 0x3, {record, NULL}, &stats};
    fleet_msg_request req;
    memset(&req, 0, sizeof req);
    delivered = 0;
    snprintf(req.id, sizeof req.id, "slow");
    coord_stream_request(&s, &env, &req, 0, 5000, &no_reply);
    fleet_msg_result r = result("slow", 1, 7, 0.8f);
    coord_stream_result(&s, &env, &r, 100, 1e6);
    coord_stream_sweep(&s, &env, 4000);
    assert_int_equal(delivered, 0);
    coord_stream_sweep(&s, &env, 10000); /* sweeps run every 5 ms */
    assert_int_equal(delivered, 1);
    assert_true(last.degraded);
    assert_int_equal(last.cls, 7);
    assert_int_equal(last.n_missing, 1);
    assert_int_equal(last.missing[0], 0);
    /* Nothing can answer: decided at once, degraded, class -1. */
    env.expected = 0;
    snprintf(req.id, sizeof req.id, "orphan");
    coord_stream_request(&s, &env, &req, 11000, 19000, &no_reply);
    assert_int_equal(delivered, 2);
    assert_int_equal(last.cls, -1);
    /* More requests than max_pending: the oldest are decided early, never more held. */
    env.expected = 0x3;
    for (int i = 0; i < 20; i++) {
        snprintf(req.id, sizeof req.id, "flood-%d", i);
        coord_stream_request(&s, &env, &req, 20000 + i, 1e9, &no_reply);
        if (!(s.pending <= 4 && s.count <= 8)) /* in flight, plus remembered decisions */
            fail_msg("pending %zu count %zu decided %zu", s.pending, s.count, s.decided_count);
    }
    assert_true(stats.evicted >= 16);
    coord_stream_free(&s);
}

/* int8 features of variant v of the zoo family: all at level q. */
static fleet_msg_result features_result(const char *id, uint32_t variant, const int8_t *q,
                                        size_t count)
{
    fleet_msg_result r;
    memset(&r, 0, sizeof r);
    snprintf(r.id, sizeof r.id, "%s", id);
    r.variant = variant;
    r.output = FLEET_OUTPUT_INT8;
    r.features = (fleet_tensor){.dtype = FLEET_DTYPE_I8,
                                .scale = 0.05f,
                                .zero_point = -128,
                                .shape = {(uint32_t)count},
                                .rank = 1,
                                .data = (const uint8_t *)q,
                                .size = count};
    return r;
}

/* rule fusion on the committed zoo: only well-formed feature results count; a missing variant
 * is zeros, and the decision says which. */
static void test_stream_fusion_checks_features(void **state)
{
    (void)state;
    fleet_coordinator_config cfg;
    fleet_coordinator_config_init(&cfg);
    for (int v = 0; v < 4; v++)
        snprintf(cfg.variants[cfg.n_variants++], sizeof cfg.variants[0],
                 "models/zoo/variant-%d.onnx", v);
    assert_int_equal(fleet_coordinator_config_set(&cfg, "rule", "fusion"), FLEET_COORDINATOR_OK);
    coord_family f;
    assert_int_equal(coord_family_load(&cfg, &f), FLEET_COORDINATOR_EINVAL); /* no head */
    coord_family_free(&f);
    snprintf(cfg.fusion_model, sizeof cfg.fusion_model, "models/zoo/variant-0.onnx");
    assert_int_equal(coord_family_load(&cfg, &f), FLEET_COORDINATOR_EMODEL); /* not a head */
    coord_family_free(&f);
    snprintf(cfg.fusion_model, sizeof cfg.fusion_model, "models/zoo/fusion.onnx");
    assert_int_equal(coord_family_load(&cfg, &f), FLEET_COORDINATOR_OK);
    fleet_coordinator_stats stats;
    memset(&stats, 0, sizeof stats);
    coord_stream s;
    assert_int_equal(coord_stream_init(&s, "s", 4, f.count, f.classes), FLEET_COORDINATOR_OK);
    assert_int_equal(coord_stream_enable_fusion(&s, &f), FLEET_COORDINATOR_OK);
    coord_stream_env env = {&f, FLEET_ENSEMBLE_MEAN_SOFTMAX, "c1", 0xF, {record, NULL}, &stats};
    fleet_msg_request req;
    memset(&req, 0, sizeof req);
    snprintf(req.id, sizeof req.id, "r1");
    static const uint8_t image[784];
    req.tensor = (fleet_tensor){.dtype = FLEET_DTYPE_U8,
                                .scale = 1.0f / 255.0f,
                                .shape = {1, 1, 28, 28},
                                .rank = 4,
                                .data = image,
                                .size = sizeof image};
    delivered = 0;
    coord_stream_request(&s, &env, &req, 0, 5000, &no_reply);
    int8_t q[512];
    memset(q, -100, sizeof q);
    fleet_msg_result r = result("r1", 0, 3, 0.9f); /* Top-k pairs: not what fusion takes */
    coord_stream_result(&s, &env, &r, 10, 1e6);
    r = features_result("r1", 0, q, f.variants[0].feature_count + 1); /* wrong size */
    coord_stream_result(&s, &env, &r, 11, 1e6);
    r = features_result("r1", 0, q, f.variants[0].feature_count);
    r.features.scale = NAN;
    coord_stream_result(&s, &env, &r, 12, 1e6);
    assert_int_equal(stats.bad_messages, 3);
    for (uint32_t v = 0; v < 3; v++) { /* variant 3 never answers */
        r = features_result("r1", v, q, f.variants[v].feature_count);
        coord_stream_result(&s, &env, &r, 20 + v, 1e6);
    }
    assert_int_equal(delivered, 0);
    coord_stream_sweep(&s, &env, 6000);
    assert_int_equal(delivered, 1);
    assert_true(last.degraded);
    assert_string_equal(last.rule, "fusion");
    assert_true(last.cls >= 0 && last.cls < 10);
    assert_true(last.confidence > 0.0f && last.confidence <= 1.0f);
    assert_int_equal(last.n_used, 3);
    assert_int_equal(last.missing[0], 3);
    coord_stream_free(&s);
    coord_family_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bdseq_keeps_reborn_agents_alive),
        cmocka_unit_test(test_heartbeat_timeout),
        cmocka_unit_test(test_contested_by_followed_or_retained),
        cmocka_unit_test(test_assignment_covers_moves_little_and_fails_over),
        cmocka_unit_test(test_peers_split_agents),
        cmocka_unit_test(test_peers_stream_group),
        cmocka_unit_test(test_stream_decides_dedups_and_ignores_late),
        cmocka_unit_test(test_stream_refuses_misfit_tensors),
        cmocka_unit_test(test_stream_fusion_checks_features),
        cmocka_unit_test(test_stream_deadline_degrades_and_bounds_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
