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

static fleet_msg_birth birth(const char *id, uint64_t bdseq, const coord_family *f,
                             uint32_t loaded);

/* A table of n agents, all born (bdseq 1) with the models in loaded, over a family of count. */
static void born_members(coord_members *m, coord_family *f, size_t count, const char *const *ids,
                         size_t n, uint32_t loaded)
{
    fake_family(f, count);
    memset(m, 0, sizeof *m);
    for (size_t i = 0; i < n; i++) {
        fleet_msg_birth b = birth(ids[i], 1, f, loaded);
        assert_int_equal(coord_members_birth(m, &b, 0), COORD_BIRTH_CHANGED);
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
    assert_int_equal(coord_members_birth(&m, &b1, 0), COORD_BIRTH_CHANGED);
    fleet_msg_birth b2 = birth("a", 2, &f, 0);
    assert_int_equal(coord_members_birth(&m, &b2, 10), COORD_BIRTH_CHANGED); /* a new session */
    fleet_msg_death late = {.agent = "a", .bdseq = 1};
    assert_false(coord_members_death(&m, &late)); /* the old session's will comes late */
    assert_int_equal(coord_members_live(&m), 1);
    /* A replayed older birth changes nothing while the agent lives. */
    assert_int_equal(coord_members_birth(&m, &b1, 20), COORD_BIRTH_UNCHANGED);
    fleet_msg_death now = {.agent = "a", .bdseq = 2};
    assert_true(coord_members_death(&m, &now));
    assert_int_equal(coord_members_live(&m), 0);
    fleet_msg_death unknown = {.agent = "ghost", .bdseq = 9};
    assert_false(coord_members_death(&m, &unknown));
    /* Dead, it may come back counting from 1 (a reflashed gateway lost its bdseq). */
    assert_int_equal(coord_members_birth(&m, &b1, 30), COORD_BIRTH_CHANGED);
    assert_int_equal(coord_members_live(&m), 1);
    assert_int_equal(coord_members_find(&m, "a")->bdseq, 1);
}

/* The table holds the fleet, not its history: a newcomer to a full table takes the place of
 * the agent dead the longest, and is refused only when every agent in it lives. */
static void test_full_table_forgets_the_longest_dead(void **state)
{
    (void)state;
    coord_family f;
    fake_family(&f, 1);
    static coord_members m;
    memset(&m, 0, sizeof m);
    char id[16];
    for (int i = 0; i < COORD_MAX_AGENTS; i++) {
        snprintf(id, sizeof id, "gw-%d", i);
        fleet_msg_birth b = birth(id, 1, &f, 0);
        assert_int_equal(coord_members_birth(&m, &b, i), COORD_BIRTH_CHANGED);
    }
    fleet_msg_birth newcomer = birth("late", 1, &f, 0);
    assert_int_equal(coord_members_birth(&m, &newcomer, 1000), COORD_BIRTH_FULL);
    assert_null(coord_members_find(&m, "late"));
    fleet_msg_death d7 = {.agent = "gw-7", .bdseq = 1}, d3 = {.agent = "gw-3", .bdseq = 1};
    assert_true(coord_members_death(&m, &d7));
    assert_true(coord_members_death(&m, &d3)); /* last seen earlier than gw-7 */
    assert_int_equal(coord_members_birth(&m, &newcomer, 1001), COORD_BIRTH_CHANGED);
    assert_null(coord_members_find(&m, "gw-3"));
    assert_non_null(coord_members_find(&m, "gw-7"));
    assert_true(coord_members_find(&m, "late")->alive);
    assert_int_equal(m.count, COORD_MAX_AGENTS);
    /* An agent dead for silence alone (its session may live on) goes after one that died. */
    for (int i = 0; i < COORD_MAX_AGENTS; i++) {
        fleet_msg_heartbeat h = {.bdseq = 1};
        snprintf(h.agent, sizeof h.agent, "%s", m.agents[i].id);
        coord_members_heartbeat(&m, &h, i == 0 ? 2000 : 9000); /* m.agents[0] falls silent */
    }
    assert_true(coord_members_expire(&m, 5000, 2500));
    assert_true(coord_members_death(&m, &(fleet_msg_death){.agent = "late", .bdseq = 1}));
    fleet_msg_birth another = birth("another", 1, &f, 0);
    char silent[FLEET_TOPICS_MAX_ID + 1];
    snprintf(silent, sizeof silent, "%s", m.agents[0].id);
    assert_int_equal(coord_members_birth(&m, &another, 9500), COORD_BIRTH_CHANGED);
    assert_null(coord_members_find(&m, "gw-7")); /* dead the longest */
    fleet_msg_birth third = birth("third", 1, &f, 0);
    assert_int_equal(coord_members_birth(&m, &third, 9600), COORD_BIRTH_CHANGED);
    assert_null(coord_members_find(&m, "late")); /* seen after the silent one, but dead */
    assert_non_null(coord_members_find(&m, silent));
}

/* An agent may answer only for variants an assignment for our stream once gave it (by us or
 * anyone: followers hear the leader's); a later assignment does not take the right back, so
 * results still in flight after a move count. */
static void test_results_only_for_assigned_variants(void **state)
{
    (void)state;
    coord_family f;
    static coord_members m;
    static const char *const ids[] = {"gw-1"};
    born_members(&m, &f, 4, ids, 1, 15);
    coord_agent *a = coord_members_find(&m, "gw-1");
    for (uint32_t v = 0; v < 4; v++)
        assert_false(coord_members_may_answer(&m, "gw-1", v)); /* loaded is not assigned */
    fleet_msg_assignment as = {
        .agent = "gw-1", .coordinator = "main", .stream = "s", .epoch = 1, .n_variants = 1};
    as.variants[0].variant = 2;
    snprintf(as.variants[0].digest, sizeof as.variants[0].digest, "%s", f.variants[2].digest);
    coord_members_note_assignment(a, &f, &as, "t"); /* another stream's */
    assert_false(coord_members_may_answer(&m, "gw-1", 2));
    coord_members_note_assignment(a, &f, &as, "s");
    assert_true(coord_members_may_answer(&m, "gw-1", 2));
    assert_false(coord_members_may_answer(&m, "gw-1", 1));
    assert_false(coord_members_may_answer(&m, "gw-1", 40)); /* no such bit */
    assert_false(coord_members_may_answer(&m, "gw-2", 2));  /* unknown */
    as.variants[0].variant = 1;                             /* with variant 2's digest */
    coord_members_note_assignment(a, &f, &as, "s");
    assert_false(coord_members_may_answer(&m, "gw-1", 1));
    snprintf(as.variants[0].digest, sizeof as.variants[0].digest, "%s", f.variants[1].digest);
    coord_members_note_assignment(a, &f, &as, "s");
    assert_true(coord_members_may_answer(&m, "gw-1", 1));
    assert_true(coord_members_may_answer(&m, "gw-1", 2)); /* moved away, still in flight */
}

/* A decommissioned agent (its retained state cleared) is forgotten only once its session has
 * ended: not alive, and not merely silent (a silent one may come back with a heartbeat). */
static void test_forget_only_the_dead(void **state)
{
    (void)state;
    coord_family f;
    static coord_members m;
    static const char *const ids[] = {"gw-1", "gw-2", "gw-3"};
    born_members(&m, &f, 1, ids, 3, 1);
    assert_false(coord_members_forget(&m, "gw-1"));   /* alive */
    assert_false(coord_members_forget(&m, "gw-9"));   /* unknown */
    assert_true(coord_members_expire(&m, 10e6, 1e6)); /* all silent */
    assert_false(coord_members_forget(&m, "gw-1"));
    fleet_msg_death d = {.agent = "gw-1", .bdseq = 1};
    coord_members_death(&m, &d); /* its session ends (already dead for silence: no change) */
    assert_true(coord_members_forget(&m, "gw-1"));
    assert_int_equal(m.count, 2);
    assert_null(coord_members_find(&m, "gw-1"));
    assert_string_equal(m.agents[0].id, "gw-3"); /* the last took its place, whole */
    assert_true(m.agents[0].silent && !m.agents[0].alive);
    assert_int_equal(m.agents[0].bdseq, 1);
    assert_int_equal(m.agents[0].n_models, 1);
    assert_ptr_equal(coord_members_find(&m, "gw-2"), &m.agents[1]);
    assert_false(coord_members_forget(&m, "gw-1"));
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
    assert_false(coord_members_heartbeat(&m, &h, 2e6));
    assert_false(coord_members_expire(&m, 4e6, 3e6));
    assert_true(coord_members_expire(&m, 5.1e6, 3e6));
    assert_int_equal(coord_members_live(&m), 0);
    /* Declared dead for silence only (a stall on our side): the same session's heartbeat
     * brings it back; another session's does not. */
    fleet_msg_heartbeat other = {.agent = "a", .bdseq = 2};
    assert_false(coord_members_heartbeat(&m, &other, 5.2e6));
    assert_int_equal(coord_members_live(&m), 0);
    assert_true(coord_members_heartbeat(&m, &h, 5.3e6));
    assert_int_equal(coord_members_live(&m), 1);
    assert_false(coord_members_heartbeat(&m, &h, 5.4e6)); /* alive already: nothing new */
    /* A death ends the session: its heartbeats (late ones) bring nothing back. */
    fleet_msg_death d = {.agent = "a", .bdseq = 1};
    assert_true(coord_members_death(&m, &d));
    assert_false(coord_members_heartbeat(&m, &h, 5.5e6));
    assert_int_equal(coord_members_live(&m), 0);
    /* The same when the death (its will) comes after the silence was noticed. */
    fleet_msg_birth b2 = birth("a", 2, &f, 0);
    fleet_msg_heartbeat h2 = {.agent = "a", .bdseq = 2};
    assert_int_equal(coord_members_birth(&m, &b2, 6e6), COORD_BIRTH_CHANGED);
    assert_true(coord_members_expire(&m, 9.1e6, 3e6));
    /* Silent, its session may live on: an old birth replayed now is still ignored. */
    assert_int_equal(coord_members_birth(&m, &b, 9.2e6), COORD_BIRTH_UNCHANGED);
    fleet_msg_death d2 = {.agent = "a", .bdseq = 2};
    assert_false(coord_members_death(&m, &d2)); /* dead already */
    assert_false(coord_members_heartbeat(&m, &h2, 9.3e6));
    assert_int_equal(coord_members_live(&m), 0);
}

/* An agent another coordinator assigns keeps what that coordinator said while it is silent,
 * so its return (same session, no new assignment coming) makes its variants count again. */
static void test_silent_agent_of_another_keeps_its_assignment(void **state)
{
    (void)state;
    coord_family f;
    fake_family(&f, 2);
    static coord_members m;
    memset(&m, 0, sizeof m);
    fleet_msg_birth b = birth("a", 1, &f, 0x3);
    coord_members_birth(&m, &b, 0);
    m.agents[0].ours = false;
    fleet_msg_assignment as = {.agent = "a", .coordinator = "leader", .epoch = 5, .n_variants = 2};
    for (uint32_t v = 0; v < 2; v++) {
        as.variants[v].variant = v;
        snprintf(as.variants[v].digest, sizeof as.variants[v].digest, "%s", f.variants[v].digest);
    }
    assert_true(coord_members_follow(&m, &f, &as, true));
    assert_true(coord_members_serving(&m, &f, 1));
    assert_true(coord_members_expire(&m, 4e6, 3e6));
    assert_false(coord_members_serving(&m, &f, 1));
    bool changed[COORD_MAX_AGENTS];
    coord_assign(&m, &f, 1, changed); /* what a coordinator runs when an agent dies */
    fleet_msg_heartbeat h = {.agent = "a", .bdseq = 1};
    assert_true(coord_members_heartbeat(&m, &h, 4.5e6));
    coord_assign(&m, &f, 1, changed);
    assert_true(coord_members_serving(&m, &f, 0));
    assert_true(coord_members_serving(&m, &f, 1));
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
        fleet_msg_coordinator_state s = {.online = true, .backup = true};
        snprintf(s.coordinator, sizeof s.coordinator, "%s", ids[i]);
        snprintf(s.stream, sizeof s.stream, "%s", streams[i]);
        coord_peers_update(p, &s, 0);
    }
}

/* A follower that saw the leader's assignment of an agent before it knew the leader (it took
 * the agent for its own then) still learns from it what the agent serves once the leader's
 * state arrives: nobody publishes that assignment again. */
static void test_follower_learns_the_leader_late(void **state)
{
    (void)state;
    coord_family f;
    static coord_members m;
    static const char *const agents[] = {"gw-10"};
    born_members(&m, &f, 2, agents, 1, 3);
    static const char *const ids[] = {"b"};
    static const char *const streams[] = {"s"};
    static coord_peers vb;
    view(&vb, 0, ids, streams, 1);
    coord_peers_claim(&vb, &m);
    assert_true(m.agents[0].ours); /* alone: every agent is ours */
    fleet_msg_assignment as = {
        .agent = "gw-10", .coordinator = "a", .stream = "s", .epoch = 7, .n_variants = 2};
    for (uint32_t v = 0; v < 2; v++) {
        as.variants[v].variant = v;
        snprintf(as.variants[v].digest, sizeof as.variants[v].digest, "%s", f.variants[v].digest);
    }
    coord_members_note_assignment(&m.agents[0], &f, &as, "s");
    coord_members_saw_assignment(&m.agents[0], "a", 7, "b");
    assert_false(coord_members_follow(&m, &f, &as, false)); /* ours: our view decides */
    fleet_msg_coordinator_state leader = {.coordinator = "a", .online = true, .stream = "s"};
    assert_int_equal(coord_peers_update(&vb, &leader, 0), COORD_PEERS_CHANGED);
    assert_int_equal(coord_peers_claim(&vb, &m), 1);
    assert_false(m.agents[0].ours);
    assert_int_equal(m.agents[0].assigned, 3);
    assert_true(coord_members_serving(&m, &f, 0) && coord_members_serving(&m, &f, 1));
    fleet_msg_coordinator_state gone = {.coordinator = "a", .online = false, .stream = "s"};
    coord_peers_update(&vb, &gone, 0);
    coord_peers_claim(&vb, &m); /* ours again: we place it ourselves */
    assert_true(m.agents[0].ours);
}

/* In a group of three on one stream every request has one owner, one backup that names the
 * owner, and the third leaves it alone; when the owner goes, its backup owns it. */
static bool decides(const coord_peers *p, const char *request)
{
    coord_roles roles;
    return coord_peers_role_for(p, request, &roles) == COORD_PEERS_DECIDES;
}

/* A view of p without peer id (it went offline). */
static void without(coord_peers *out, const coord_peers *p, const char *id)
{
    *out = *p;
    fleet_msg_coordinator_state gone = {.online = false};
    snprintf(gone.coordinator, sizeof gone.coordinator, "%s", id);
    coord_peers_update(out, &gone, 0);
}

static void test_peers_backup_ranks_second(void **state)
{
    (void)state;
    static const char *const ids[] = {"a", "b", "c", "d"};
    static const char *const streams[] = {"s", "s", "s", "t"};
    static coord_peers v[3];
    for (size_t i = 0; i < 3; i++)
        view(&v[i], i, ids, streams, 4);
    int backups_by[3] = {0};
    for (int n = 0; n < 300; n++) {
        char id[16];
        snprintf(id, sizeof id, "req-%d", n);
        int decider = -1, backs = -1, others = 0;
        coord_roles roles[3];
        for (int i = 0; i < 3; i++) {
            coord_peers_role role = coord_peers_role_for(&v[i], id, &roles[i]);
            if (role == COORD_PEERS_DECIDES)
                decider = i;
            else if (role == COORD_PEERS_BACKS_UP)
                backs = i;
            else
                others++;
        }
        assert_true(decider >= 0 && backs >= 0 && backs != decider);
        assert_int_equal(others, 1);
        assert_string_equal(roles[backs].owner, ids[decider]);
        backups_by[backs]++;
        /* The decider counts on that very member, in its current run, for the backup. */
        static coord_peers after;
        assert_true(coord_peers_present(&v[decider], roles[decider].backup));
        without(&after, &v[decider], ids[backs]);
        assert_false(coord_peers_present(&after, roles[decider].backup));
        /* Its owner gone, the backup decides it. */
        without(&after, &v[backs], ids[decider]);
        assert_true(decides(&after, id));
    }
    for (int i = 0; i < 3; i++)
        assert_in_range(backups_by[i], 60, 140);

    /* A member that does not take part (an older coordinator, or backup = 0): nobody backs up
     * its requests, and it counts on no backup for its own. */
    static const char *const pair[] = {"a", "b"};
    static const char *const one_stream[] = {"s", "s"};
    static coord_peers va, vb;
    view(&va, 0, pair, one_stream, 2);
    view(&vb, 1, pair, one_stream, 2);
    fleet_msg_coordinator_state plain = {.coordinator = "a", .online = true, .stream = "s"};
    coord_peers_update(&vb, &plain, 0);
    fleet_msg_coordinator_state taking_part = plain;
    snprintf(taking_part.coordinator, sizeof taking_part.coordinator, "b");
    taking_part.backup = true;
    coord_peers_update(&va, &taking_part, 0);
    uint64_t before = 0; /* b's run that backs up a's requests */
    for (int n = 0; n < 50; n++) {
        char id[16];
        snprintf(id, sizeof id, "req-%d", n);
        coord_roles roles;
        if (coord_peers_role_for(&va, id, &roles) == COORD_PEERS_DECIDES) {
            assert_int_equal(coord_peers_role_for(&vb, id, &roles), COORD_PEERS_OTHERS);
            coord_peers_role_for(&va, id, &roles);
            assert_true(roles.backup != 0); /* b does take part */
            assert_true(coord_peers_present(&va, roles.backup));
            before = roles.backup;
        } else {
            assert_int_equal(roles.backup, 0); /* a does not */
        }
    }
    /* b restarts: the backups its earlier run held are gone with it. */
    assert_true(before != 0);
    fleet_msg_coordinator_state gone = taking_part;
    gone.online = false;
    coord_peers_update(&va, &gone, 0);
    assert_false(coord_peers_present(&va, before));
    coord_peers_update(&va, &taking_part, 0);
    assert_false(coord_peers_present(&va, before));
}

/* A peer that has not restated its online state for the silence limit is taken as gone (its
 * will may never come); one that restates it stays, and coming back makes it a peer again. */
static void test_peers_forget_the_silent(void **state)
{
    (void)state;
    static const char *const ids[] = {"a", "b", "c"};
    static const char *const streams[] = {"s", "s", "t"};
    coord_peers p;
    view(&p, 1, ids, streams, 3); /* heard at 0 */
    fleet_msg_coordinator_state c = {.coordinator = "c", .online = true, .stream = "t"};
    assert_int_equal(coord_peers_update(&p, &c, 10e6), COORD_PEERS_SAME); /* c restates */
    coord_peer gone;
    assert_false(coord_peers_expire_one(&p, 16e6, COORD_PEER_SILENCE_US, &gone));
    assert_true(coord_peers_expire_one(&p, 16.1e6, COORD_PEER_SILENCE_US, &gone));
    assert_string_equal(gone.id, "a");
    assert_string_equal(gone.stream, "s");
    assert_false(coord_peers_expire_one(&p, 16.1e6, COORD_PEER_SILENCE_US, &gone));
    assert_true(coord_peers_leader(&p)); /* b leads stream s now */
    fleet_msg_coordinator_state a = {.coordinator = "a", .online = true, .stream = "s"};
    assert_int_equal(coord_peers_update(&p, &a, 17e6), COORD_PEERS_CHANGED);
    assert_false(coord_peers_leader(&p));
    /* A cleared retained state takes the peer away at once, whatever its silence. */
    assert_true(coord_peers_forget(&p, "a", &gone));
    assert_string_equal(gone.id, "a");
    assert_string_equal(gone.stream, "s");
    assert_true(coord_peers_leader(&p));
    assert_false(coord_peers_forget(&p, "a", &gone));
    assert_false(coord_peers_forget(&p, "nobody", &gone));
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
    assert_int_equal(coord_peers_update(&views[0], &gone, 0), COORD_PEERS_CHANGED);
    assert_int_equal(coord_peers_update(&views[0], &gone, 0), COORD_PEERS_SAME);
    assert_int_equal(coord_peers_update(&views[1], &gone, 0), COORD_PEERS_CHANGED);
    for (int i = 0; i < N; i++) {
        char agent[16];
        snprintf(agent, sizeof agent, "gw-%d", i);
        bool north = coord_peers_owns(&views[0], agent), south = coord_peers_owns(&views[1], agent);
        assert_true(north != south);
        if (owner_of[i] != 2)
            assert_int_equal(north ? 0 : 1, owner_of[i]);
    }
    fleet_msg_coordinator_state self = {.coordinator = "north", .online = false};
    assert_int_equal(coord_peers_update(&views[0], &self, 0), COORD_PEERS_SAME); /* an old will */

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
        assert_int_equal(coord_peers_update(&full, &s, 0),
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
        bool by_a = decides(&va, id), by_b = decides(&vb, id);
        assert_true(by_a != by_b);
        a_requests += by_a;
        assert_true(decides(&vc, id)); /* alone on its stream */
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
    assert_int_equal(coord_peers_update(&vb, &gone, 0), COORD_PEERS_CHANGED);
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

/* One stream over a fake family, its decisions going to record(). Lives where it was made:
 * env points into it. */
typedef struct stream_fixture {
    coord_family family;
    fleet_coordinator_stats stats;
    coord_stream stream;
    coord_stream_env env;
    fleet_msg_request req; /* an empty tensor, which the fake family takes */
} stream_fixture;

static void stream_setup(stream_fixture *t, size_t variants, size_t max_pending,
                         fleet_ensemble_rule rule, uint32_t expected)
{
    memset(t, 0, sizeof *t);
    fake_family(&t->family, variants);
    assert_int_equal(coord_stream_init(&t->stream, "s", max_pending, variants, t->family.classes),
                     FLEET_COORDINATOR_OK);
    t->env = (coord_stream_env){&t->family, rule, "c1", expected, {record, NULL}, &t->stats};
    delivered = 0;
}

static bool stream_request(stream_fixture *t, const char *id, double arrival_us, double deadline_us,
                           const coord_reply *reply)
{
    snprintf(t->req.id, sizeof t->req.id, "%s", id);
    return coord_stream_request(&t->stream, &t->env, &t->req, arrival_us, deadline_us, reply, NULL);
}

static void stream_result(stream_fixture *t, const fleet_msg_result *r, double now_us)
{
    coord_stream_result(&t->stream, &t->env, r, now_us, 1e6);
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
    static stream_fixture t;
    stream_setup(&t, 3, 8, FLEET_ENSEMBLE_MEAN_SOFTMAX, 0x7);
    coord_reply reply = {"reply/x", (const uint8_t *)"c", 1, 1};
    stream_request(&t, "r1", 0, 1e6, &reply);
    fleet_msg_result r = result("r1", 0, 3, 0.9f);
    stream_result(&t, &r, 10);
    stream_result(&t, &r, 11); /* a replica of variant 0 */
    assert_int_equal(t.stats.duplicate_results, 1);
    r = result("r1", 1, 3, 0.6f);
    stream_result(&t, &r, 12);
    assert_int_equal(delivered, 0);
    r = result("r1", 2, 5, 0.7f);
    stream_result(&t, &r, 13);
    assert_int_equal(delivered, 1); /* all three expected variants answered */
    assert_int_equal(last.cls, 3);
    assert_false(last.degraded);
    assert_int_equal(last.n_used, 3);
    assert_string_equal(last_topic, "reply/x");
    assert_int_equal(last_qos, 1); /* as the request came */
    assert_int_equal(last.slowest_infer_us, 102);
    stream_result(&t, &r, 20); /* after the decision */
    assert_int_equal(t.stats.late_results, 1);
    assert_int_equal(delivered, 1);
    coord_stream_free(&t.stream);
}

/* A tensor that is not the models' input size is refused at once, once, with the reason; a
 * result that came before it is dropped with it. */
static void test_stream_refuses_misfit_tensors(void **state)
{
    (void)state;
    static stream_fixture t;
    stream_setup(&t, 2, 8, FLEET_ENSEMBLE_MEAN_SOFTMAX, 0x3);
    t.family.input_count = 4;
    static const uint8_t pixels[3] = {1, 2, 3};
    t.req.tensor = (fleet_tensor){
        .dtype = FLEET_DTYPE_U8, .scale = 1.0f, .shape = {3}, .rank = 1, .data = pixels, .size = 3};
    fleet_msg_result early = result("bad", 0, 3, 0.9f);
    stream_result(&t, &early, 0);
    assert_false(stream_request(&t, "bad", 1, 1e6, &no_reply));
    assert_int_equal(delivered, 1);
    assert_int_equal(last.cls, -1);
    assert_true(last.degraded);
    assert_string_equal(last.error, "the tensor has 3 elements; the stream's models take 4");
    assert_string_equal(last.id, "bad");
    stream_request(&t, "bad", 2, 1e6, &no_reply); /* a retransmission */
    fleet_msg_result late = result("bad", 1, 3, 0.9f);
    stream_result(&t, &late, 3);
    assert_int_equal(delivered, 1);
    assert_int_equal(t.stats.refused, 1);
    assert_int_equal(t.stats.requests, 1);
    assert_int_equal(t.stats.late_results, 1);
    coord_stream_sweep(&t.stream, &t.env, 2e6); /* nothing pending is left to decide */
    assert_int_equal(delivered, 1);

    static const float fits[4] = {0};
    t.req.tensor = (fleet_tensor){.dtype = FLEET_DTYPE_F32,
                                  .scale = 1.0f,
                                  .shape = {1, 4},
                                  .rank = 2,
                                  .data = (const uint8_t *)fits,
                                  .size = sizeof fits};
    assert_true(stream_request(&t, "good", 4, 1e6, &no_reply));
    assert_int_equal(delivered, 1); /* waits for its variants */
    assert_int_equal(t.stats.refused, 1);
    coord_stream_free(&t.stream);
}

static void test_stream_deadline_degrades_and_bounds_memory(void **state)
{
    (void)state;
    static stream_fixture t;
    stream_setup(&t, 2, 4, FLEET_ENSEMBLE_VP_TOPK, 0x3);
    coord_stream *s = &t.stream;
    stream_request(&t, "slow", 0, 5000, &no_reply);
    fleet_msg_result r = result("slow", 1, 7, 0.8f);
    stream_result(&t, &r, 100);
    coord_stream_sweep(s, &t.env, 4000);
    assert_int_equal(delivered, 0);
    coord_stream_sweep(s, &t.env, 10000); /* sweeps run every 5 ms */
    assert_int_equal(delivered, 1);
    assert_true(last.degraded);
    assert_int_equal(last.cls, 7);
    assert_int_equal(last.n_missing, 1);
    assert_int_equal(last.missing[0], 0);
    /* Nothing can answer: decided at once, degraded, class -1. */
    t.env.expected = 0;
    stream_request(&t, "orphan", 11000, 19000, &no_reply);
    assert_int_equal(delivered, 2);
    assert_int_equal(last.cls, -1);
    /* More requests than max_pending: the oldest are decided early, never more held. */
    t.env.expected = 0x3;
    for (int i = 0; i < 20; i++) {
        char id[32];
        snprintf(id, sizeof id, "flood-%d", i);
        stream_request(&t, id, 20000 + i, 1e9, &no_reply);
        if (!(s->pending <= 4 && s->count <= 8)) /* in flight, plus remembered decisions */
            fail_msg("pending %zu count %zu decided %zu", s->pending, s->count, s->decided_count);
    }
    assert_true(t.stats.evicted >= 16);
    /* A wait longer than 32 bits of microseconds hold (71 minutes) is reported as their
     * maximum, not as what is left of it modulo 2^32. */
    stream_request(&t, "patient", 0, 5e9, &no_reply);
    coord_stream_sweep(s, &t.env, 2e9); /* the flood's deadlines */
    coord_stream_sweep(s, &t.env, 5e9);
    assert_string_equal(last.id, "patient");
    assert_int_equal(last.total_us, UINT32_MAX);
    coord_stream_free(s);
}

/* A Top-k result that names no class of the family, repeats one, or scores outside [0, 1] is
 * refused: it neither counts its variant as used nor blocks that variant's good replica. */
static void test_stream_refuses_bad_topk(void **state)
{
    (void)state;
    static stream_fixture t;
    stream_setup(&t, 2, 8, FLEET_ENSEMBLE_MEAN_SOFTMAX, 0x3);
    stream_request(&t, "r", 0, 1e6, &no_reply);
    fleet_msg_result bad[6];
    for (int i = 0; i < 6; i++)
        bad[i] = result("r", 0, 3, 0.5f);
    bad[0].classes[0] = 12; /* of 10 */
    bad[1].probs[0] = 7.0f;
    bad[2].probs[1] = -0.25f;
    bad[3].probs[0] = NAN;
    bad[4].k = 0;
    bad[5].classes[1] = 3; /* class 3 twice */
    for (int i = 0; i < 6; i++)
        stream_result(&t, &bad[i], 1 + i);
    assert_int_equal(t.stats.bad_messages, 6);
    fleet_msg_result good = result("r", 0, 3, 0.9f);
    stream_result(&t, &good, 10);
    assert_int_equal(t.stats.duplicate_results, 0); /* the replica counts */
    good = result("r", 1, 3, 0.8f);
    stream_result(&t, &good, 11);
    assert_int_equal(delivered, 1);
    assert_false(last.degraded);
    assert_int_equal(last.n_used, 2);
    assert_int_equal(last.cls, 3);
    coord_stream_free(&t.stream);
}

/* Ids are unique per stream: the same request again (same response topic and correlation
 * data) is a retransmission, ignored; another requester's request with an id still
 * remembered is answered at once with an error, and the first request keeps its decision.
 * A decision far before its deadline is remembered for a minute, not until the deadline. */
static void test_stream_ids_per_requester(void **state)
{
    (void)state;
    static stream_fixture t;
    stream_setup(&t, 1, 8, FLEET_ENSEMBLE_MEAN_SOFTMAX, 0x1);
    coord_reply a = {"reply/a", (const uint8_t *)"1", 1, 0};
    coord_reply b = {"reply/b", (const uint8_t *)"1", 1, 0};
    coord_reply a2 = {"reply/a", (const uint8_t *)"2", 1, 0};
    assert_true(stream_request(&t, "7", 0, 3600e6, &a));
    assert_true(stream_request(&t, "7", 1, 3600e6, &a)); /* retransmitted */
    assert_int_equal(delivered, 0);
    assert_false(stream_request(&t, "7", 2, 3600e6, &b));
    assert_int_equal(delivered, 1);
    assert_string_equal(last_topic, "reply/b");
    assert_int_equal(last.cls, -1);
    assert_non_null(strstr(last.error, "request id '7' is in use"));
    assert_false(stream_request(&t, "7", 3, 3600e6, &a2)); /* other correlation data */
    assert_int_equal(delivered, 2);
    fleet_msg_result r = result("7", 0, 4, 0.9f);
    stream_result(&t, &r, 10);
    assert_int_equal(delivered, 3);
    assert_string_equal(last_topic, "reply/a");
    assert_int_equal(last.cls, 4);
    assert_string_equal(last.error, "");
    assert_false(stream_request(&t, "7", 20, 3600e6, &b)); /* decided, still remembered */
    assert_int_equal(t.stats.refused, 3);
    coord_stream_sweep(&t.stream, &t.env, 63e6);
    assert_true(stream_request(&t, "7", 63e6, 64e6, &b)); /* forgotten: a new request */
    assert_int_equal(delivered, 4);
    coord_stream_free(&t.stream);
}

/* The ring of decided ids forgets by decision, not by id: an id the sweep forgot and a new
 * request used again is not erased when the ring reaches the old entry. A request that comes
 * after its results were given up is told so. */
static void test_stream_ring_and_late_requests(void **state)
{
    (void)state;
    static stream_fixture t;
    stream_setup(&t, 1, 2, FLEET_ENSEMBLE_MEAN_SOFTMAX, 0x1);
    fleet_msg_result r = result("a", 0, 2, 0.9f);
    stream_request(&t, "a", 0, 1e6, &no_reply);
    stream_result(&t, &r, 1);
    coord_stream_sweep(&t.stream, &t.env, 4e6);   /* forgotten: 2 s past its deadline */
    stream_request(&t, "a", 5e6, 6e6, &no_reply); /* the id, used again */
    stream_result(&t, &r, 5e6 + 1);
    assert_int_equal(delivered, 2);
    r = result("b", 0, 2, 0.9f);
    stream_request(&t, "b", 5e6 + 2, 6e6, &no_reply);
    stream_result(&t, &r, 5e6 + 3); /* the ring (two entries) drops the first "a" */
    assert_true(stream_request(&t, "a", 5e6 + 4, 6e6, &no_reply)); /* retransmitted */
    assert_false(coord_stream_holds(&t.stream, "a"));
    assert_int_equal(delivered, 3);
    r = result("c", 0, 2, 0.9f);
    stream_result(&t, &r, 7e6); /* results, and no request for 1 s */
    coord_stream_sweep(&t.stream, &t.env, 8.1e6);
    assert_false(stream_request(&t, "c", 8.2e6, 9e6, &no_reply));
    assert_int_equal(delivered, 4);
    assert_non_null(strstr(last.error, "came after its variants' results were given up"));
    coord_stream_free(&t.stream);
}

/* A request waits for the variants that could answer when it came: one that comes back later
 * never saw it. */
static void test_stream_waits_only_for_variants_it_could_have(void **state)
{
    (void)state;
    static stream_fixture t;
    stream_setup(&t, 3, 8, FLEET_ENSEMBLE_MEAN_SOFTMAX, 0x3);
    stream_request(&t, "r", 0, 1e6, &no_reply);
    t.env.expected = 0x7; /* variant 2's agent is back */
    coord_stream_expected_changed(&t.stream, &t.env, 5);
    fleet_msg_result r = result("r", 0, 1, 0.9f);
    stream_result(&t, &r, 10);
    r = result("r", 1, 1, 0.9f);
    stream_result(&t, &r, 11);
    assert_int_equal(delivered, 1); /* at once, not at the deadline */
    assert_true(last.degraded);
    assert_int_equal(last.n_missing, 1);
    assert_int_equal(last.missing[0], 2);
    coord_stream_free(&t.stream);
}

/* FNV-1a, as stream.c places ids in its table. */
static size_t home_slot(const char *id, size_t capacity)
{
    uint64_t h = 1469598103934665603ull;
    for (; *id; id++)
        h = (h ^ (uint8_t)*id) * 1099511628211ull;
    return (h ? h : 1) & (capacity - 1);
}

/* Deciding inside a scan makes the ring of decided ids forget its oldest, whose erase shifts
 * slots backwards under the scan: no pending request may be stepped over. Four ids share one
 * home slot; the ring holds two. */
static void test_stream_scans_survive_shifting_slots(void **state)
{
    (void)state;
    static stream_fixture t;
    stream_setup(&t, 2, 2, FLEET_ENSEMBLE_MEAN_SOFTMAX, 0x3);
    char ids[4][16];
    int n = 0;
    for (int i = 0; n < 4; i++) {
        snprintf(ids[n], sizeof ids[n], "q%d", i);
        n += home_slot(ids[n], t.stream.capacity) == 3;
    }
    for (int i = 0; i < 4; i++) {
        stream_request(&t, ids[i], i, 1e6, &no_reply);
        fleet_msg_result r = result(ids[i], 0, 1, 0.9f);
        stream_result(&t, &r, i);
        if (i < 2) {
            r = result(ids[i], 1, 1, 0.9f);
            stream_result(&t, &r, i);
        }
    }
    assert_int_equal(delivered, 2);
    assert_int_equal(t.stream.pending, 2);
    t.env.expected = 0x1; /* variant 1's agent died: both pending requests are complete */
    coord_stream_expected_changed(&t.stream, &t.env, 10);
    assert_int_equal(delivered, 4);
    assert_int_equal(t.stream.pending, 0);
    coord_stream_free(&t.stream);
}

/* A coordinator that stops answers what it holds, with what it has. */
static void test_stream_decide_all(void **state)
{
    (void)state;
    static stream_fixture t;
    stream_setup(&t, 2, 8, FLEET_ENSEMBLE_MEAN_SOFTMAX, 0x3);
    stream_request(&t, "a", 0, 1e6, &no_reply);
    stream_request(&t, "b", 0, 1e6, &no_reply);
    fleet_msg_result r = result("b", 1, 6, 0.9f);
    stream_result(&t, &r, 1);
    fleet_msg_result orphan = result("c", 0, 6, 0.9f); /* results only: nothing to answer */
    stream_result(&t, &orphan, 2);
    coord_stream_decide_all(&t.stream, &t.env, 3);
    assert_int_equal(delivered, 2);
    assert_int_equal(t.stream.pending, 0);
    assert_true(last.degraded);
    coord_stream_free(&t.stream);
}

/* A backup copy (its owner named) collects results but is let go without a decision when
 * complete (as we see the fleet, which is the owner's view), due, or at our shutdown; when its
 * owner leaves it becomes ours and is decided. It never answers a refusal: the owner does. */
static void test_stream_backups(void **state)
{
    (void)state;
    static stream_fixture t;
    stream_setup(&t, 2, 8, FLEET_ENSEMBLE_MEAN_SOFTMAX, 0x3);
    coord_stream *s = &t.stream;
    const char *ids[] = {"done", "orphaned", "due", "left-late", "closing"};
    const char *owners[] = {"a", "a", "b", "c", "d"};
    for (size_t i = 0; i < 5; i++) {
        snprintf(t.req.id, sizeof t.req.id, "%s", ids[i]);
        coord_roles backup_of = {0};
        snprintf(backup_of.owner, sizeof backup_of.owner, "%s", owners[i]);
        assert_true(coord_stream_request(s, &t.env, &t.req, 0, 1e6, &no_reply, &backup_of));
        fleet_msg_result r = result(ids[i], 0, 4, 0.9f);
        stream_result(&t, &r, 1);
    }
    assert_int_equal(t.stats.backups, 5);
    assert_int_equal(t.stats.requests, 0);
    fleet_msg_result r = result("done", 1, 4, 0.9f);
    stream_result(&t, &r, 2); /* complete: its owner decides it */
    assert_int_equal(delivered, 0);
    assert_int_equal(t.stats.backups_released, 1);
    t.env.expected = 0x1; /* variant 1 is not served: complete with variant 0 alone */
    snprintf(t.req.id, sizeof t.req.id, "partial");
    coord_stream_request(s, &t.env, &t.req, 2, 1e6, &no_reply, &(coord_roles){.owner = "b"});
    r = result("partial", 0, 4, 0.9f);
    stream_result(&t, &r, 2);
    t.env.expected = 0x3;
    assert_int_equal(t.stats.backups_released, 2);

    coord_stream_owner_gone(s, &t.env, "a", 0, 3); /* a left: "orphaned" is ours */
    assert_int_equal(t.stats.taken_over, 1);
    assert_int_equal(t.stats.requests, 1);
    assert_int_equal(delivered, 0); /* still waits for variant 1 */
    r = result("orphaned", 1, 4, 0.9f);
    stream_result(&t, &r, 4);
    assert_int_equal(delivered, 1);
    assert_string_equal(last.id, "orphaned");
    assert_false(last.degraded);

    coord_stream_sweep(s, &t.env, 2e6); /* "due", "left-late", "closing": their owners live */
    assert_int_equal(t.stats.backups_released, 5);
    coord_stream_owner_gone(s, &t.env, "c", 0, 2e6 + 1); /* too late: let go at its deadline */
    assert_int_equal(t.stats.taken_over, 1);
    assert_int_equal(delivered, 1);
    assert_int_equal(s->pending, 0);

    /* An owner that stopped decided what was due by its drained state: let go, not ours. */
    snprintf(t.req.id, sizeof t.req.id, "due-at-stop");
    coord_stream_request(s, &t.env, &t.req, 2e6, 2.5e6, &no_reply, &(coord_roles){.owner = "f"});
    snprintf(t.req.id, sizeof t.req.id, "after-stop");
    coord_stream_request(s, &t.env, &t.req, 2e6, 4e6, &no_reply, &(coord_roles){.owner = "f"});
    coord_stream_owner_gone(s, &t.env, "f", 3e6, 3e6 + 1);
    assert_int_equal(t.stats.taken_over, 2);
    assert_false(coord_stream_holds(s, "due-at-stop"));
    assert_true(coord_stream_holds(s, "after-stop"));
    coord_stream_sweep(s, &t.env, 5e6);
    assert_int_equal(delivered, 2);
    assert_string_equal(last.id, "after-stop");

    snprintf(t.req.id, sizeof t.req.id, "held");
    assert_true(
        coord_stream_request(s, &t.env, &t.req, 6e6, 7e6, &no_reply, &(coord_roles){.owner = "e"}));
    coord_stream_decide_all(s, &t.env, 6e6 + 1); /* we stop: e decides its own */
    assert_int_equal(delivered, 2);
    assert_int_equal(s->pending, 0);

    t.family.input_count = 4; /* a misfit tensor: the owner answers the refusal, not us */
    snprintf(t.req.id, sizeof t.req.id, "misfit");
    assert_true(
        coord_stream_request(s, &t.env, &t.req, 8e6, 9e6, &no_reply, &(coord_roles){.owner = "e"}));
    assert_int_equal(delivered, 2);
    assert_int_equal(t.stats.refused, 0);
    coord_stream_free(s);

    /* Memory full: a backup, then results without their request, make room before any
     * request of ours is decided early. */
    stream_setup(&t, 2, 3, FLEET_ENSEMBLE_MEAN_SOFTMAX, 0x3);
    stream_request(&t, "mine", 0, 1e6, &no_reply);
    snprintf(t.req.id, sizeof t.req.id, "theirs");
    coord_stream_request(s, &t.env, &t.req, 1, 1e6, &no_reply, &(coord_roles){.owner = "a"});
    r = result("early", 0, 4, 0.9f);
    stream_result(&t, &r, 2);
    stream_request(&t, "mine-too", 3, 1e6, &no_reply);
    assert_int_equal(t.stats.backups_released, 1);
    stream_request(&t, "mine-three", 4, 1e6, &no_reply);
    assert_int_equal(delivered, 0);
    assert_int_equal(t.stats.evicted, 0);
    assert_int_equal(t.stats.decisions, 0);
    assert_true(coord_stream_holds(s, "mine") && !coord_stream_holds(s, "theirs"));
    coord_stream_free(s);
}

/* The backup holders still online: only the run numbered 1 (runs are numbered over all peers:
 * 2 is a later run of the same member, 3 another member, both gone). */
static bool holder_present(void *ctx, uint64_t holder)
{
    (void)ctx;
    return holder == 1;
}

/* Leaving: a request of ours is let go undecided only when the member that took its backup is
 * still there, in the same run, and it is due after our drained state; the rest are ours to
 * decide. Backups and results without a request are not ours to hand over. */
static void test_stream_hand_over(void **state)
{
    (void)state;
    static stream_fixture t;
    stream_setup(&t, 2, 8, FLEET_ENSEMBLE_MEAN_SOFTMAX, 0x3);
    coord_stream *s = &t.stream;
    static const struct {
        const char *id;
        uint64_t holder;
        double deadline_us;
    } ours[] = {
        {"handed", 1, 1e6},    /* its holder is there: it decides it */
        {"restarted", 2, 1e6}, /* held by a run that is gone */
        {"left", 3, 1e6},      /* its holder left before us */
        {"due", 1, 10},        /* due by our drained state: its holder let it go */
        {"alone", 0, 1e6},     /* nobody took a backup */
    };
    for (size_t i = 0; i < sizeof ours / sizeof ours[0]; i++) {
        snprintf(t.req.id, sizeof t.req.id, "%s", ours[i].id);
        coord_roles roles = {.backup = ours[i].holder};
        coord_stream_request(s, &t.env, &t.req, 0, ours[i].deadline_us, &no_reply, &roles);
    }
    snprintf(t.req.id, sizeof t.req.id, "theirs");
    coord_stream_request(s, &t.env, &t.req, 0, 1e6, &no_reply, &(coord_roles){.owner = "a"});
    fleet_msg_result r = result("early", 0, 4, 0.9f);
    stream_result(&t, &r, 1);
    coord_stream_hand_over(s, &t.env, holder_present, NULL, 20, 21);
    assert_int_equal(t.stats.handed_over, 1);
    assert_false(coord_stream_holds(s, "handed"));
    coord_stream_decide_all(s, &t.env, 22);
    assert_int_equal(delivered, 4); /* restarted, left, due, alone */
    assert_int_equal(t.stats.backups_released, 1);
    coord_stream_free(s);
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
    coord_stream_request(&s, &env, &req, 0, 5000, &no_reply, NULL);
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
        cmocka_unit_test(test_full_table_forgets_the_longest_dead),
        cmocka_unit_test(test_heartbeat_timeout),
        cmocka_unit_test(test_contested_by_followed_or_retained),
        cmocka_unit_test(test_results_only_for_assigned_variants),
        cmocka_unit_test(test_forget_only_the_dead),
        cmocka_unit_test(test_assignment_covers_moves_little_and_fails_over),
        cmocka_unit_test(test_peers_split_agents),
        cmocka_unit_test(test_peers_forget_the_silent),
        cmocka_unit_test(test_peers_stream_group),
        cmocka_unit_test(test_peers_backup_ranks_second),
        cmocka_unit_test(test_follower_learns_the_leader_late),
        cmocka_unit_test(test_stream_decides_dedups_and_ignores_late),
        cmocka_unit_test(test_stream_refuses_misfit_tensors),
        cmocka_unit_test(test_stream_fusion_checks_features),
        cmocka_unit_test(test_stream_deadline_degrades_and_bounds_memory),
        cmocka_unit_test(test_stream_refuses_bad_topk),
        cmocka_unit_test(test_stream_ids_per_requester),
        cmocka_unit_test(test_stream_waits_only_for_variants_it_could_have),
        cmocka_unit_test(test_stream_scans_survive_shifting_slots),
        cmocka_unit_test(test_stream_decide_all),
        cmocka_unit_test(test_stream_backups),
        cmocka_unit_test(test_stream_hand_over),
        cmocka_unit_test(test_stream_ring_and_late_requests),
        cmocka_unit_test(test_silent_agent_of_another_keeps_its_assignment),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
