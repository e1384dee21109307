/* membership.c: who is alive, by Sparkplug-style births, deaths (bdseq) and heartbeats. */
#include "internal.h"

#include <stdio.h>
#include <string.h>

coord_agent *coord_members_find(coord_members *m, const char *id)
{
    for (size_t i = 0; i < m->count; i++)
        if (strcmp(m->agents[i].id, id) == 0)
            return &m->agents[i];
    return NULL;
}

/* Whether a should give its slot rather than b: dead by a death before dead for silence
 * alone (that session may still be alive), then the one last seen earlier. */
static bool evicts_before(const coord_agent *a, const coord_agent *b)
{
    if (a->silent != b->silent)
        return !a->silent;
    return a->last_seen_us < b->last_seen_us;
}

/* A slot for a new agent: a free one, else the one dead the longest (the table holds the
 * fleet, not its history). NULL when every agent in the table is alive. */
static coord_agent *new_slot(coord_members *m)
{
    if (m->count < COORD_MAX_AGENTS)
        return &m->agents[m->count++];
    coord_agent *victim = NULL;
    for (size_t i = 0; i < m->count; i++)
        if (!m->agents[i].alive && (!victim || evicts_before(&m->agents[i], victim)))
            victim = &m->agents[i];
    return victim;
}

coord_birth_outcome coord_members_birth(coord_members *m, const fleet_msg_birth *b, double now_us)
{
    coord_agent *a = coord_members_find(m, b->agent);
    if (!a) {
        if (!(a = new_slot(m)))
            return COORD_BIRTH_FULL;
        memset(a, 0, sizeof *a);
        snprintf(a->id, sizeof a->id, "%s", b->agent);
        a->ours = true; /* alone in the fleet until peers.c says otherwise */
    } else if (b->bdseq < a->bdseq && (a->alive || a->silent)) {
        /* A replayed old birth (its session may live on when only silent). A dead agent's
         * lower bdseq is a gateway that lost its state (reflashed) and counts from 1 again:
         * it is let in. */
        return COORD_BIRTH_UNCHANGED;
    }
    bool changed = !a->alive || b->bdseq != a->bdseq || b->n_models != a->n_models ||
                   memcmp(a->models, b->models, b->n_models * sizeof *b->models) != 0;
    if (b->bdseq != a->bdseq)
        a->assigned = 0; /* a new session starts without an assignment */
    a->bdseq = b->bdseq;
    a->alive = true;
    a->silent = false;
    a->last_seen_us = now_us;
    a->cores = b->cores ? b->cores : 1;
    a->n_models = b->n_models;
    memcpy(a->models, b->models, b->n_models * sizeof *b->models);
    return changed ? COORD_BIRTH_CHANGED : COORD_BIRTH_UNCHANGED;
}

bool coord_members_death(coord_members *m, const fleet_msg_death *d)
{
    coord_agent *a = coord_members_find(m, d->agent);
    /* A will from an older session must not kill the agent's newer one. */
    if (!a || d->bdseq < a->bdseq)
        return false;
    a->silent = false; /* the session has ended: its late heartbeats revive nothing */
    if (!a->alive)
        return false;
    a->alive = false;
    return true;
}

bool coord_members_heartbeat(coord_members *m, const fleet_msg_heartbeat *h, double now_us)
{
    coord_agent *a = coord_members_find(m, h->agent);
    if (!a || h->bdseq != a->bdseq || (!a->alive && !a->silent))
        return false;
    a->last_seen_us = now_us;
    a->latency_ewma_us = h->latency_ewma_us;
    if (a->alive)
        return false;
    /* Declared dead for silence only (our own stall, a congested link): its session never
     * ended, so its heartbeat brings it back; no new birth would come. */
    a->alive = true;
    a->silent = false;
    return true;
}

bool coord_members_expire(coord_members *m, double now_us, double timeout_us)
{
    bool any = false;
    for (size_t i = 0; i < m->count; i++) {
        coord_agent *a = &m->agents[i];
        if (a->alive && now_us - a->last_seen_us > timeout_us) {
            a->alive = false;
            a->silent = true;
            any = true;
        }
    }
    return any;
}

size_t coord_members_live(const coord_members *m)
{
    size_t n = 0;
    for (size_t i = 0; i < m->count; i++)
        n += m->agents[i].alive;
    return n;
}

static bool has_model(const coord_agent *a, const char *digest)
{
    for (size_t i = 0; i < a->n_models; i++)
        if (strcmp(a->models[i].digest, digest) == 0)
            return true;
    return false;
}

bool coord_members_serving(const coord_members *m, const coord_family *f, size_t v)
{
    for (size_t i = 0; i < m->count; i++) {
        const coord_agent *a = &m->agents[i];
        if (a->alive && (a->assigned >> v & 1u) && has_model(a, f->variants[v].digest))
            return true;
    }
    return false;
}

bool coord_members_follow(coord_members *m, const coord_family *f, const fleet_msg_assignment *as,
                          bool from_leader)
{
    coord_agent *a = coord_members_find(m, as->agent);
    if (!a || (a->ours && !from_leader))
        return false; /* unknown yet (its birth comes first), or ours: our view decides */
    uint32_t assigned = from_leader ? coord_family_named(f, as) : 0;
    bool changed = assigned != a->assigned;
    a->assigned = assigned;
    a->assigned_epoch = as->epoch;
    return changed;
}

bool coord_members_saw_assignment(coord_agent *a, const char *author, uint64_t epoch,
                                  const char *self)
{
    bool mine = strcmp(author, self) == 0;
    a->seen_assignment = true;
    a->retained_mine = mine;
    if (epoch < a->seen_epoch)
        return false; /* stale: the agent ignores it too */
    a->seen_epoch = epoch;
    a->followed_mine = mine;
    return true;
}

bool coord_members_contested(const coord_agent *a)
{
    return a->ours && a->alive && a->seen_assignment && !(a->followed_mine && a->retained_mine);
}

void coord_members_note_assignment(coord_agent *a, const coord_family *f,
                                   const fleet_msg_assignment *as, const char *stream)
{
    uint32_t named = strcmp(as->stream, stream) == 0 ? coord_family_named(f, as) : 0;
    a->ever_assigned |= named;
    if (as->epoch >= a->seen_epoch) {
        snprintf(a->followed_by, sizeof a->followed_by, "%s", as->coordinator);
        a->followed_named = named;
    }
}

bool coord_members_may_answer(coord_members *m, const char *agent, uint32_t variant)
{
    const coord_agent *a = coord_members_find(m, agent);
    return a && variant < 32 && (a->ever_assigned >> variant & 1u);
}

bool coord_members_forget(coord_members *m, const char *id)
{
    coord_agent *a = coord_members_find(m, id);
    if (!a || a->alive || a->silent)
        return false;
    *a = m->agents[--m->count]; /* nothing keeps an index into the table */
    return true;
}
