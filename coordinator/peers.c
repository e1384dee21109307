/* peers.c: the fleet's other coordinators, which agents are this one's to assign, and which
 * requests of its stream are its to decide. */
#include "internal.h"

#include <stdio.h>
#include <string.h>

/* Rendezvous (highest random weight) hashing: every coordinator that sees the same online
 * coordinators computes the same owner for every agent, with no messages between them, and
 * when a coordinator comes or goes only the agents it gains or loses move. */
uint64_t coord_peers_score(const char *agent, const char *coordinator)
{
    uint64_t h = 0xcbf29ce484222325u; /* FNV-1a over agent, a zero byte, coordinator */
    for (const char *p = agent;; p++) {
        h = (h ^ (uint8_t)*p) * 0x100000001b3u;
        if (!*p)
            break;
    }
    for (const char *p = coordinator; *p; p++)
        h = (h ^ (uint8_t)*p) * 0x100000001b3u;
    h ^= h >> 30; /* splitmix64's finalizer: FNV alone mixes the last bytes poorly */
    h *= 0xbf58476d1ce4e5b9u;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebu;
    return h ^ (h >> 31);
}

/* Whether candidate outranks self for x, self scoring mine (ties, which need a 64-bit
 * collision, go to the smaller id). */
static bool outranks(const coord_peers *p, const char *x, const char *candidate, uint64_t mine)
{
    uint64_t theirs = coord_peers_score(x, candidate);
    return theirs > mine || (theirs == mine && strcmp(candidate, p->self) < 0);
}

/* Whether a coordinator of stream with this id leads the stream's group: no other online
 * coordinator of the stream has a smaller id. */
static bool leads(const coord_peers *p, const char *id, const char *stream)
{
    if (strcmp(p->stream, stream) == 0 && strcmp(p->self, id) < 0)
        return false;
    for (size_t i = 0; i < p->count; i++)
        if (strcmp(p->peers[i].stream, stream) == 0 && strcmp(p->peers[i].id, id) < 0)
            return false;
    return true;
}

bool coord_peers_leader(const coord_peers *p)
{
    return leads(p, p->self, p->stream);
}

bool coord_peers_leader_is(const coord_peers *p, const char *id)
{
    return leads(p, id, p->stream);
}

bool coord_peers_owns(const coord_peers *p, const char *agent)
{
    if (!coord_peers_leader(p))
        return false;
    uint64_t mine = coord_peers_score(agent, p->self);
    for (size_t i = 0; i < p->count; i++)
        if (leads(p, p->peers[i].id, p->peers[i].stream) &&
            outranks(p, agent, p->peers[i].id, mine))
            return false;
    return true;
}

coord_peers_role coord_peers_role_for(const coord_peers *p, const char *request, coord_roles *roles)
{
    *roles = (coord_roles){0};
    if (p->count == 0)
        return COORD_PEERS_DECIDES; /* alone: no hashing on the request path */
    /* One pass: the members of the group that outrank self (a second one makes self third),
     * and the group's best peer, which is next after self when none does. */
    uint64_t mine = coord_peers_score(request, p->self), best = 0;
    const coord_peer *above = NULL, *top = NULL;
    for (size_t i = 0; i < p->count; i++) {
        const coord_peer *peer = &p->peers[i];
        if (strcmp(peer->stream, p->stream) != 0)
            continue;
        uint64_t theirs = coord_peers_score(request, peer->id);
        if (!top || theirs > best || (theirs == best && strcmp(peer->id, top->id) < 0)) {
            top = peer;
            best = theirs;
        }
        if (theirs > mine || (theirs == mine && strcmp(peer->id, p->self) < 0)) {
            if (above)
                return COORD_PEERS_OTHERS;
            above = peer;
        }
    }
    if (!above) {
        roles->backup = top && top->backup ? top->incarnation : 0;
        return COORD_PEERS_DECIDES;
    }
    if (!above->backup)
        return COORD_PEERS_OTHERS; /* it decides alone, as coordinators before backups did */
    snprintf(roles->owner, sizeof roles->owner, "%s", above->id);
    return COORD_PEERS_BACKS_UP;
}

bool coord_peers_present(const coord_peers *p, uint64_t incarnation)
{
    for (size_t i = 0; i < p->count; i++)
        if (p->peers[i].incarnation == incarnation)
            return true;
    return false;
}

static coord_peer *find(coord_peers *p, const char *id)
{
    for (size_t i = 0; i < p->count; i++)
        if (strcmp(p->peers[i].id, id) == 0)
            return &p->peers[i];
    return NULL;
}

coord_peers_change coord_peers_update(coord_peers *p, const fleet_msg_coordinator_state *s,
                                      double now_us)
{
    if (strcmp(s->coordinator, p->self) == 0)
        return COORD_PEERS_SAME; /* our own state, or the will of our previous run */
    coord_peer *known = find(p, s->coordinator);
    if (!s->online) {
        if (!known)
            return COORD_PEERS_SAME;
        *known = p->peers[--p->count];
        return COORD_PEERS_CHANGED;
    }
    if (known) {
        bool moved = strcmp(known->stream, s->stream) != 0; /* restarted on another stream */
        snprintf(known->stream, sizeof known->stream, "%s", s->stream);
        known->heard_us = now_us;
        known->backup = s->backup;
        return moved ? COORD_PEERS_CHANGED : COORD_PEERS_SAME;
    }
    if (p->count == COORD_MAX_PEERS)
        return COORD_PEERS_FULL;
    coord_peer *n = &p->peers[p->count++];
    snprintf(n->id, sizeof n->id, "%s", s->coordinator);
    snprintf(n->stream, sizeof n->stream, "%s", s->stream);
    n->heard_us = now_us;
    n->backup = s->backup;
    n->incarnation = ++p->incarnations;
    return COORD_PEERS_CHANGED;
}

/* Copies peer i into gone and removes it. */
static void remove_peer(coord_peers *p, size_t i, coord_peer *gone)
{
    *gone = p->peers[i];
    p->peers[i] = p->peers[--p->count];
}

bool coord_peers_expire_one(coord_peers *p, double now_us, double silence_us, coord_peer *gone)
{
    for (size_t i = 0; i < p->count; i++)
        if (now_us - p->peers[i].heard_us > silence_us) {
            remove_peer(p, i, gone);
            return true;
        }
    return false;
}

bool coord_peers_forget(coord_peers *p, const char *id, coord_peer *gone)
{
    coord_peer *known = find(p, id);
    if (known)
        remove_peer(p, (size_t)(known - p->peers), gone);
    return known != NULL;
}

size_t coord_peers_claim(const coord_peers *p, coord_members *m)
{
    size_t changed = 0;
    for (size_t i = 0; i < m->count; i++) {
        coord_agent *a = &m->agents[i];
        bool ours = coord_peers_owns(p, a->id);
        if (!ours)
            a->assigned = a->followed_by[0] && coord_peers_leader_is(p, a->followed_by)
                              ? a->followed_named
                              : 0;
        changed += ours != a->ours;
        a->ours = ours;
    }
    return changed;
}
