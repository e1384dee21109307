/* announce.c: what the agent says about itself: birth, death, and heartbeats from their own
 * thread. */
#define _DEFAULT_SOURCE /* getloadavg */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#define AGENT_RUNTIME "fleetinfer 0.1.0"

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void agent_publish(fleet_agent *a, const char *topic, fleet_topics_status encoded, uint8_t *buf,
                   size_t len, int qos, int retained)
{
    if (encoded != FLEET_TOPICS_OK)
        agent_log(a, FLEET_LOG_ERROR, "cannot encode for %s: %s", topic, fleet_topics_last_error());
    else if (fleet_link_publish(a->link, topic, buf, len, qos, retained, NULL) != FLEET_LINK_OK)
        agent_log(a, FLEET_LOG_WARN, "publish to %s: %s", topic, fleet_link_last_error());
    free(buf);
}

/* Whether the space-separated flag list holds flag as a whole word. */
static bool has_flag(const char *flags, const char *flag)
{
    size_t n = strlen(flag);
    for (const char *p = strstr(flags, flag); p; p = strstr(p + 1, flag))
        if ((p == flags || p[-1] == ' ' || p[-1] == '\t') &&
            (p[n] == ' ' || p[n] == '\n' || p[n] == '\0'))
            return true;
    return false;
}

/* "x86_64 avx2 avx512f": the machine and the SIMD levels that matter to XNNPACK. */
static void cpu_summary(char *out, size_t size)
{
    static const char *const wanted[] = {"avx",  "avx2",  "fma",    "avx512f",
                                         "neon", "asimd", "asimddp"};
    struct utsname u;
    snprintf(out, size, "%.20s", uname(&u) == 0 ? u.machine : "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[8192];
    while (f && fgets(line, sizeof line, f)) {
        if (strncmp(line, "flags", 5) != 0 && strncmp(line, "Features", 8) != 0)
            continue;
        const char *colon = strchr(line, ':');
        for (size_t i = 0; colon && i < sizeof wanted / sizeof wanted[0]; i++)
            if (has_flag(colon + 1, wanted[i]) && strlen(out) + 1 + strlen(wanted[i]) < size)
                strcat(strcat(out, " "), wanted[i]);
        break;
    }
    if (f)
        fclose(f);
}

static uint32_t online_cores(void)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    return cores > 0 ? (uint32_t)cores : 1;
}

/* Main thread: the loaded models with their measured latency (no lock: it is the writer). */
void agent_publish_birth(fleet_agent *a)
{
    fleet_msg_birth b;
    memset(&b, 0, sizeof b);
    snprintf(b.agent, sizeof b.agent, "%s", a->cfg.id);
    snprintf(b.runtime, sizeof b.runtime, AGENT_RUNTIME);
    cpu_summary(b.cpu, sizeof b.cpu);
    b.bdseq = a->bdseq;
    b.cores = online_cores();
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    b.memory_mb = pages > 0 && page > 0 ? (uint32_t)((uint64_t)pages * (uint64_t)page >> 20) : 0;
    b.time_ms = wall_ms();
    for (size_t i = 0; i < a->n_variants; i++)
        if (a->variants[i].model) {
            fleet_model_latency *m = &b.models[b.n_models++];
            snprintf(m->digest, sizeof m->digest, "%s", a->variants[i].spec.digest);
            m->latency_us = a->variants[i].model->latency_us;
        }
    uint8_t *buf = NULL;
    size_t len = 0;
    fleet_topics_status st = fleet_msg_birth_encode(&b, &buf, &len);
    agent_publish(a, a->topic_state, st, buf, len, 1, 1);
}

void agent_publish_death(fleet_agent *a)
{
    fleet_msg_death d = {.bdseq = a->bdseq};
    snprintf(d.agent, sizeof d.agent, "%s", a->cfg.id);
    uint8_t *buf = NULL;
    size_t len = 0;
    fleet_topics_status st = fleet_msg_death_encode(&d, &buf, &len);
    agent_publish(a, a->topic_state, st, buf, len, 1, 1);
}

/* The beat thread (or anyone): counters under `lock`, the rest fixed at create. */
void agent_publish_heartbeat(fleet_agent *a)
{
    fleet_msg_heartbeat h;
    memset(&h, 0, sizeof h);
    snprintf(h.agent, sizeof h.agent, "%s", a->cfg.id);
    double load[1] = {0};
    if (getloadavg(load, 1) == 1)
        h.load = (float)(load[0] / (double)online_cores());
    h.bdseq = a->bdseq;
    h.time_ms = wall_ms();
    pthread_mutex_lock(&a->lock);
    h.seq = ++a->heartbeat_seq;
    h.queue = (uint32_t)a->queue.count;
    h.latency_ewma_us = (uint32_t)a->latency_ewma_us;
    h.processed = a->stats.processed;
    h.dropped_expired = a->stats.dropped_expired;
    h.dropped_full = a->stats.dropped_full;
    h.dropped_moved = a->stats.dropped_moved;
    h.failed = a->stats.failed;
    pthread_mutex_unlock(&a->lock);
    uint8_t *buf = NULL;
    size_t len = 0;
    fleet_topics_status st = fleet_msg_heartbeat_encode(&h, &buf, &len);
    agent_publish(a, a->topic_heartbeat, st, buf, len, 0, 0);
}

/* Now plus ms on CLOCK_MONOTONIC, beat_wake's clock. */
static struct timespec beat_deadline(uint32_t ms)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    t.tv_sec += (time_t)(ms / 1000u);
    t.tv_nsec += (long)(ms % 1000u) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

/* The beat thread. A heartbeat reads only what create fixed and what `lock` guards, so it
 * needs nothing from the main thread, and fleet_link_publish may be called from any thread. */
static void *agent_beat_main(void *arg)
{
    fleet_agent *a = arg;
    pthread_mutex_lock(&a->beat_lock);
    while (!a->beat_stop) {
        pthread_mutex_unlock(&a->beat_lock); /* a leaf lock: never held across a publish */
        agent_publish_heartbeat(a);
        struct timespec next = beat_deadline(a->cfg.heartbeat_ms);
        pthread_mutex_lock(&a->beat_lock);
        /* 0: signalled or woken spuriously; ETIMEDOUT: the next beat is due. */
        while (!a->beat_stop && pthread_cond_timedwait(&a->beat_wake, &a->beat_lock, &next) == 0)
            ;
    }
    pthread_mutex_unlock(&a->beat_lock);
    return NULL;
}

fleet_agent_status agent_beat_start(fleet_agent *a)
{
    if (pthread_create(&a->beat, NULL, agent_beat_main, a) != 0)
        return agent_fail(FLEET_AGENT_ESYSERR, "cannot start the heartbeat thread");
    a->beat_started = true;
    return FLEET_AGENT_OK;
}

void agent_beat_stop(fleet_agent *a)
{
    if (!a->beat_started)
        return;
    pthread_mutex_lock(&a->beat_lock);
    a->beat_stop = true;
    pthread_cond_signal(&a->beat_wake);
    pthread_mutex_unlock(&a->beat_lock);
    pthread_join(a->beat, NULL); /* a heartbeat being published goes out before this returns */
    a->beat_started = false;
}
