/* assign.c: the variant-to-agent placement: replicas on the least loaded agents, few moves. */
#include "internal.h"

#include <string.h>

/* What variant v costs agent a per request: its own measurement, else the fleet's, else 1. */
static double variant_cost(const coord_members *m, const coord_family *f, const coord_agent *a,
                           size_t v)
{
    double sum = 0.0;
    size_t n = 0;
    for (size_t i = 0; i < m->count; i++)
        for (size_t k = 0; k < m->agents[i].n_models; k++)
            if (strcmp(m->agents[i].models[k].digest, f->variants[v].digest) == 0) {
                if (&m->agents[i] == a)
                    return (double)m->agents[i].models[k].latency_us + 1.0;
                sum += (double)m->agents[i].models[k].latency_us + 1.0;
                n++;
            }
    return n ? sum / (double)n : 1.0;
}

static double agent_load(const coord_members *m, const coord_family *f, const coord_agent *a,
                         uint32_t assigned)
{
    double load = 0.0;
    for (size_t v = 0; v < f->count; v++)
        if (assigned >> v & 1u)
            load += variant_cost(m, f, a, v);
    return load / (double)(a->cores ? a->cores : 1);
}

/* Alive and this coordinator's to assign (another coordinator assigns the rest). */
static bool usable(const coord_agent *a)
{
    return a->alive && a->ours;
}

static size_t replicas(const coord_members *m, size_t v)
{
    size_t n = 0;
    for (size_t i = 0; i < m->count; i++)
        n += usable(&m->agents[i]) && (m->agents[i].assigned >> v & 1u);
    return n;
}

/* The live agent without v whose load after taking v is smallest; -1 when none. */
static int least_loaded_without(const coord_members *m, const coord_family *f, size_t v)
{
    int best = -1;
    double best_load = 0.0;
    for (size_t i = 0; i < m->count; i++) {
        const coord_agent *a = &m->agents[i];
        if (!usable(a) || (a->assigned >> v & 1u))
            continue;
        double load = agent_load(m, f, a, a->assigned | 1u << v);
        if (best < 0 || load < best_load) {
            best = (int)i;
            best_load = load;
        }
    }
    return best;
}

static size_t count_bits(uint32_t x)
{
    size_t n = 0;
    for (; x; x &= x - 1)
        n++;
    return n;
}

/* An idle agent takes one variant from the busiest agent that has two or more. */
static bool balance_once(coord_members *m, const coord_family *f, uint32_t *before, bool *changed)
{
    int idle = -1, busy = -1;
    double busy_load = 0.0;
    for (size_t i = 0; i < m->count; i++) {
        coord_agent *a = &m->agents[i];
        if (!usable(a))
            continue;
        if (a->assigned == 0 && idle < 0)
            idle = (int)i;
        double load = agent_load(m, f, a, a->assigned);
        if (count_bits(a->assigned) >= 2 && (busy < 0 || load > busy_load)) {
            busy = (int)i;
            busy_load = load;
        }
    }
    if (idle < 0 || busy < 0)
        return false;
    for (size_t v = f->count; v-- > 0;)
        if ((m->agents[busy].assigned >> v & 1u) && !(m->agents[idle].assigned >> v & 1u)) {
            m->agents[busy].assigned &= ~(1u << v);
            m->agents[idle].assigned |= 1u << v;
            break;
        }
    changed[busy] = m->agents[busy].assigned != before[busy];
    changed[idle] = m->agents[idle].assigned != before[idle];
    return true;
}

size_t coord_assign(coord_members *m, const coord_family *f, uint32_t replication, bool *changed)
{
    uint32_t before[COORD_MAX_AGENTS];
    size_t live = 0;
    for (size_t i = 0; i < m->count; i++) {
        before[i] = m->agents[i].assigned;
        changed[i] = false;
        live += usable(&m->agents[i]);
        /* Ours and dead: orphaned, picked up below. Another's keeps what its owner said,
         * which a silent agent's return (same session, no new assignment) resumes. */
        if (!m->agents[i].alive && m->agents[i].ours)
            m->agents[i].assigned = 0;
    }
    size_t target = replication < live ? replication : live;
    for (size_t v = 0; v < f->count; v++) {
        while (replicas(m, v) > target) /* replication lowered: drop from the busiest */
            for (size_t i = m->count; i-- > 0;)
                if (usable(&m->agents[i]) && (m->agents[i].assigned >> v & 1u)) {
                    m->agents[i].assigned &= ~(1u << v);
                    break;
                }
        while (replicas(m, v) < target) {
            int a = least_loaded_without(m, f, v);
            if (a < 0)
                break;
            m->agents[a].assigned |= 1u << v;
        }
    }
    for (size_t guard = 0; guard < m->count && balance_once(m, f, before, changed); guard++)
        ;
    size_t n = 0;
    for (size_t i = 0; i < m->count; i++) {
        changed[i] = usable(&m->agents[i]) && m->agents[i].assigned != before[i];
        n += changed[i];
    }
    return n;
}
