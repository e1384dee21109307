/* fleet_micro.c: bench/fleet's in-process measurements: the coordinator's aggregation path
 * (decode result, aggregate, encode decision) on one core, and the raw broker round trip. */
#include "broker.h"
#include "fleet_link.h"
#include "fleet_topics.h"
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define VARIANTS 4
#define REQUESTS 50000

static size_t decisions;

/* Encodes the decision as the coordinator would before publishing it. */
static void encode_decision(void *ctx, const fleet_msg_decision *d, const coord_reply *reply)
{
    (void)ctx, (void)reply;
    uint8_t *buf = NULL;
    size_t n = 0;
    if (fleet_msg_decision_encode(d, &buf, &n) == FLEET_TOPICS_OK)
        decisions++;
    free(buf);
}

static double aggregation_rate(void)
{
    coord_family family;
    memset(&family, 0, sizeof family);
    family.count = VARIANTS;
    family.classes = 10;
    for (int v = 0; v < VARIANTS; v++) {
        snprintf(family.variants[v].digest, sizeof family.variants[v].digest, "%064d", v);
        family.variants[v].vp_weight = 1.0f;
    }
    fleet_coordinator_stats stats;
    memset(&stats, 0, sizeof stats);
    coord_stream s;
    coord_stream_init(&s, "bench", 4096, VARIANTS, 10);
    coord_stream_env env = {&family,
                            FLEET_ENSEMBLE_MEAN_SOFTMAX,
                            "bench",
                            (1u << VARIANTS) - 1,
                            {encode_decision, NULL},
                            &stats};
    /* One agent per variant, as in the demo: a result is taken only from the agent that was
     * given its variant (coordinator.c checks every result this way). */
    static coord_members members;
    for (int v = 0; v < VARIANTS; v++) {
        coord_agent *a = &members.agents[members.count++];
        snprintf(a->id, sizeof a->id, "agent-%d", v);
        a->alive = true;
        a->ever_assigned = 1u << v;
    }
    /* Every result as it arrives on the wire: ten (class, probability) pairs. */
    uint8_t **wire = malloc(REQUESTS * VARIANTS * sizeof *wire);
    size_t *lens = malloc(REQUESTS * VARIANTS * sizeof *lens);
    for (int i = 0; i < REQUESTS; i++)
        for (int v = 0; v < VARIANTS; v++) {
            fleet_msg_result r;
            memset(&r, 0, sizeof r);
            snprintf(r.id, sizeof r.id, "req-%d", i);
            snprintf(r.stream, sizeof r.stream, "bench");
            snprintf(r.agent, sizeof r.agent, "agent-%d", v);
            r.variant = (uint32_t)v;
            r.k = 10;
            for (int c = 0; c < 10; c++) {
                r.classes[c] = (uint16_t)((c + i + v) % 10);
                r.probs[c] = 0.1f;
            }
            fleet_msg_result_encode(&r, &wire[i * VARIANTS + v], &lens[i * VARIANTS + v]);
        }
    double t0 = fleet_link_now_us();
    for (int i = 0; i < REQUESTS; i++) {
        fleet_msg_request req;
        memset(&req, 0, sizeof req);
        snprintf(req.id, sizeof req.id, "req-%d", i);
        double now = fleet_link_now_us();
        coord_reply reply = {"reply/x", NULL, 0, 0};
        coord_stream_request(&s, &env, &req, now, now + 1e6, &reply, NULL);
        for (int v = 0; v < VARIANTS; v++) {
            fleet_msg_result r;
            fleet_msg_result_decode(wire[i * VARIANTS + v], lens[i * VARIANTS + v], &r);
            if (coord_members_may_answer(&members, r.agent, r.variant))
                coord_stream_result(&s, &env, &r, now, 1e6);
        }
        coord_stream_sweep(&s, &env, now);
    }
    double seconds = (fleet_link_now_us() - t0) / 1e6;
    for (int i = 0; i < REQUESTS * VARIANTS; i++)
        free(wire[i]);
    free(wire);
    free(lens);
    coord_stream_free(&s);
    if (decisions != REQUESTS)
        fprintf(stderr, "fleet_micro: %zu decisions for %d requests\n", decisions, REQUESTS);
    return (double)(REQUESTS * VARIANTS) / seconds;
}

static int compare(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Echoes each ping back on the pong topic from Paho's receive thread, as a responder would. */
static bool echo_pong(void *ctx, fleet_link_message *m)
{
    fleet_link **pong = ctx;
    fleet_link_publish(*pong, "fleet/bench/pong", m->payload, m->len, 0, 0, NULL);
    fleet_link_message_free(m);
    return true;
}

static fleet_link *open_bench_link(const fleetctl_broker *broker, const char *client_id,
                                   const char *topic, fleet_link_options *o)
{
    o->url = broker->url;
    o->client_id = client_id;
    o->username = "coordinator";
    o->password = FLEETCTL_BROKER_SECRET;
    fleet_link *link = NULL;
    if (fleet_link_create(o, &link) != FLEET_LINK_OK)
        return NULL;
    if (fleet_link_subscribe(link, topic, 0) != FLEET_LINK_OK) {
        fleet_link_destroy(link);
        return NULL;
    }
    return link;
}

typedef struct timing {
    double median, p99;
} timing;

/* Times `rounds` publishes from `link`, each until one message comes back to it, with the
 * process asleep idle_us between rounds. */
static int time_rounds(fleet_link *link, const char *topic, double idle_us, timing *out)
{
    enum { rounds = 2000 };
    static double t[rounds];
    uint8_t payload[64] = {0};
    for (int i = 0; i < rounds; i++) {
        struct timespec idle = {0, (long)(idle_us * 1e3)};
        if (idle_us > 0)
            nanosleep(&idle, NULL);
        double t0 = fleet_link_now_us();
        fleet_link_message *m = NULL;
        fleet_link_publish(link, topic, payload, sizeof payload, 0, 0, NULL);
        if (fleet_link_receive(link, 2000, &m) != FLEET_LINK_OK)
            return -1;
        t[i] = m->received_us - t0; /* on Paho's receive thread, as fleetctl demo times */
        fleet_link_message_free(m);
    }
    qsort(t, rounds, sizeof t[0], compare);
    out->median = t[rounds / 2];
    out->p99 = t[rounds * 99 / 100];
    return 0;
}

/* The raw broker round trip, a Paho ping-pong between two clients (two broker passes, as a
 * request and its reply take): back to back, and with every process idle idle_us between
 * rounds, as broker and coordinator are while agents infer (an idle core wakes slower). For
 * reference one pass: a client's publish coming back to its own subscription. */
static int round_trips(double idle_us, timing *rtt, timing *rtt_idle, timing *pass)
{
    const char *agents[] = {"bench"};
    fleetctl_broker broker;
    if (fleetctl_broker_start(fleetctl_broker_config_dir(), agents, 1, &broker) != 0)
        return -1;
    int rc = -1;
    fleet_link_options ping_options, pong_options, loop_options;
    fleet_link_options_init(&ping_options);
    fleet_link_options_init(&pong_options);
    fleet_link_options_init(&loop_options);
    fleet_link *pong = NULL;
    pong_options.deliver = echo_pong;
    pong_options.deliver_ctx = &pong;
    fleet_link *ping = open_bench_link(&broker, "ping", "fleet/bench/pong", &ping_options);
    pong = open_bench_link(&broker, "pong", "fleet/bench/ping", &pong_options);
    fleet_link *loop = open_bench_link(&broker, "loop", "fleet/bench/loop", &loop_options);
    if (ping && pong && loop && time_rounds(ping, "fleet/bench/ping", 0, rtt) == 0 &&
        time_rounds(ping, "fleet/bench/ping", idle_us, rtt_idle) == 0 &&
        time_rounds(loop, "fleet/bench/loop", 0, pass) == 0)
        rc = 0;
    fleet_link_destroy(ping);
    fleet_link_destroy(pong);
    fleet_link_destroy(loop);
    fleetctl_broker_stop(&broker);
    return rc;
}

int main(int argc, char **argv)
{
    double idle_us = argc > 1 ? atof(argv[1]) : 0.0;
    if (argc > 2 || idle_us < 0 || idle_us >= 1e6 || (argc > 1 && strcmp(argv[1], "--help") == 0)) {
        fprintf(stderr, "usage: fleet_micro [IDLE_US]\n"
                        "The coordinator's aggregation rate on one core and the raw broker round "
                        "trip\n(back to back, and with IDLE_US of idleness between rounds), as "
                        "one JSON object.\n");
        return 2;
    }
    double rate = aggregation_rate();
    timing rtt, rtt_idle, pass;
    if (round_trips(idle_us, &rtt, &rtt_idle, &pass) != 0) {
        fprintf(stderr, "fleet_micro: the broker round trip failed\n");
        return 1;
    }
    printf("{\"aggregation_results_per_s\":%.0f,\"rtt_median_us\":%.1f,\"rtt_p99_us\":%.1f,"
           "\"idle_us\":%.0f,\"rtt_idle_median_us\":%.1f,\"rtt_idle_p99_us\":%.1f,"
           "\"one_pass_median_us\":%.1f,\"one_pass_p99_us\":%.1f}\n",
           rate, rtt.median, rtt.p99, idle_us, rtt_idle.median, rtt_idle.p99, pass.median,
           pass.p99);
    return 0;
}
