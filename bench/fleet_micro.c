/* fleet_micro.c: bench/fleet's in-process measurements: the coordinator's aggregation path
 * (decode result, aggregate, encode decision) on one core, and the raw broker round trip. */
#include "broker.h"
#include "fleet_link.h"
#include "fleet_topics.h"
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
        coord_stream_request(&s, &env, &req, now, now + 1e6, &reply);
        for (int v = 0; v < VARIANTS; v++) {
            fleet_msg_result r;
            fleet_msg_result_decode(wire[i * VARIANTS + v], lens[i * VARIANTS + v], &r);
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

/* A Paho ping-pong through the broker: publish 64 bytes, receive them back. */
static int round_trip(double *median, double *p99)
{
    const char *agents[] = {"bench"};
    fleetctl_broker broker;
    if (fleetctl_broker_start(fleetctl_broker_config_dir(), agents, 1, &broker) != 0)
        return -1;
    fleet_link_options o;
    fleet_link_options_init(&o);
    o.url = broker.url;
    o.client_id = "ping";
    o.username = "coordinator";
    o.password = FLEETCTL_BROKER_SECRET;
    fleet_link *link = NULL;
    int rc = -1;
    enum { rounds = 2000 };
    static double t[rounds];
    uint8_t payload[64] = {0};
    if (fleet_link_create(&o, &link) != FLEET_LINK_OK ||
        fleet_link_subscribe(link, "fleet/bench/ping", 0) != FLEET_LINK_OK)
        goto cleanup;
    for (int i = 0; i < rounds; i++) {
        double t0 = fleet_link_now_us();
        fleet_link_message *m = NULL;
        fleet_link_publish(link, "fleet/bench/ping", payload, sizeof payload, 0, 0, NULL);
        if (fleet_link_receive(link, 2000, &m) != FLEET_LINK_OK)
            goto cleanup;
        t[i] = fleet_link_now_us() - t0;
        fleet_link_message_free(m);
    }
    qsort(t, rounds, sizeof t[0], compare);
    *median = t[rounds / 2];
    *p99 = t[rounds * 99 / 100];
    rc = 0;
cleanup:
    fleet_link_destroy(link);
    fleetctl_broker_stop(&broker);
    return rc;
}

int main(void)
{
    double rate = aggregation_rate(), median = 0, p99 = 0;
    if (round_trip(&median, &p99) != 0) {
        fprintf(stderr, "fleet_micro: the broker round trip failed\n");
        return 1;
    }
    printf("{\"aggregation_results_per_s\":%.0f,\"rtt_median_us\":%.1f,\"rtt_p99_us\":%.1f}\n",
           rate, median, p99);
    return 0;
}
