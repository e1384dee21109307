/* peers.c: the fleet's other coordinators, and which agents are this one's to assign. */
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

/* Whether candidate outranks best for agent (ties, which need a 64-bit collision, go to the
 * smaller id). */
static bool outranks(const char *agent, const char *candidate, const char *best)
{
    uint64_t c = coord_peers_score(agent, candidate), b = coord_peers_score(agent, best);
    return c > b || (c == b && strcmp(candidate, best) < 0);
}

bool coord_peers_owns(const coord_peers *p, const char *agent)
{
    for (size_t i = 0; i < p->count; i++)
        if (outranks(agent, p->peers[i].id, p->self))
            return false;
    return true;
}

static coord_peer *find(coord_peers *p, const char *id)
{
    for (size_t i = 0; i < p->count; i++)
        if (strcmp(p->peers[i].id, id) == 0)
            return &p->peers[i];
    return NULL;
}

coord_peers_change coord_peers_update(coord_peers *p, const fleet_msg_coordinator_state *s)
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
        snprintf(known->stream, sizeof known->stream, "%s", s->stream);
        return COORD_PEERS_SAME;
    }
    if (p->count == COORD_MAX_PEERS)
        return COORD_PEERS_FULL;
    coord_peer *n = &p->peers[p->count++];
    snprintf(n->id, sizeof n->id, "%s", s->coordinator);
    snprintf(n->stream, sizeof n->stream, "%s", s->stream);
    return COORD_PEERS_CHANGED;
}

size_t coord_peers_claim(const coord_peers *p, coord_members *m)
{
    size_t changed = 0;
    for (size_t i = 0; i < m->count; i++) {
        bool ours = coord_peers_owns(p, m->agents[i].id);
        changed += ours != m->agents[i].ours;
        m->agents[i].ours = ours;
    }
    return changed;
}
