/* test_agent.c: one fleet-agent against a real broker, with the test playing the coordinator. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "broker.h"
#include "fleet_agent.h"
#include "fleet_ensemble.h"
#include "fleet_link.h"
#include "fleet_models.h"
#include "fleet_topics.h"

#include <openssl/evp.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PREFIX "fleet/at"
#define MODEL "tests/fixtures/models/tiny_cnn"

static fleetctl_broker broker;
static fleet_link *coord;
static fleet_agent *agent;
static pthread_t agent_thread;
static uint8_t *model_bytes;
static size_t model_size;
static char digest[65];
static char cache[64] = "/tmp/fleet-agent-test-XXXXXX";

static void *run_agent(void *arg)
{
    (void)arg;
    fleet_agent_run(agent);
    return NULL;
}

static uint8_t *slurp(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    *size = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *data = malloc(*size);
    if (fread(data, 1, *size, f) != *size) {
        free(data);
        data = NULL;
    }
    fclose(f);
    return data;
}

static int setup(void **state)
{
    (void)state;
    const char *ids[] = {"gw-1"};
    unsigned char d[32];
    unsigned int n;
    if (!mkdtemp(cache) || !(model_bytes = slurp(MODEL ".onnx", &model_size)) ||
        fleetctl_broker_start(fleetctl_broker_config_dir(), ids, 1, &broker) != 0)
        return -1;
    EVP_Digest(model_bytes, model_size, d, &n, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++)
        snprintf(digest + 2 * i, 3, "%02x", d[i]);
    fleet_link_options o;
    fleet_link_options_init(&o);
    o.url = broker.url;
    o.client_id = "test-coordinator";
    o.username = "coordinator";
    o.password = FLEETCTL_BROKER_SECRET;
    if (fleet_link_create(&o, &coord) != FLEET_LINK_OK ||
        fleet_link_subscribe(coord, PREFIX "/agent/gw-1/state", 1) != FLEET_LINK_OK ||
        fleet_link_subscribe(coord, PREFIX "/model/get", 1) != FLEET_LINK_OK ||
        fleet_link_subscribe(coord, PREFIX "/stream/s/result", 0) != FLEET_LINK_OK)
        return -1;
    fleet_agent_config cfg;
    fleet_agent_config_init(&cfg);
    fleet_agent_config_set(&cfg, "id", "gw-1");
    fleet_agent_config_set(&cfg, "broker", broker.url);
    fleet_agent_config_set(&cfg, "password", FLEETCTL_BROKER_SECRET);
    fleet_agent_config_set(&cfg, "prefix", PREFIX);
    fleet_agent_config_set(&cfg, "cache", cache);
    fleet_agent_config_set(&cfg, "heartbeat_ms", "100");
    fleet_agent_config_set(&cfg, "queue", "8");
    fleet_agent_config_set(&cfg, "log_level", "error");
    if (fleet_agent_create(&cfg, &agent) != FLEET_AGENT_OK)
        return -1;
    return pthread_create(&agent_thread, NULL, run_agent, NULL);
}

static int teardown(void **state)
{
    (void)state;
    fleet_link_destroy(coord);
    fleetctl_broker_stop(&broker);
    free(model_bytes);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", cache);
    return system(cmd) == 0 ? 0 : -1;
}

/* The next message on topic, skipping others, within timeout_ms. */
static fleet_link_message *await(const char *topic, int timeout_ms)
{
    double until = fleet_link_now_us() + 1e3 * timeout_ms;
    while (fleet_link_now_us() < until) {
        fleet_link_message *m = NULL;
        if (fleet_link_receive(coord, 50, &m) != FLEET_LINK_OK)
            continue;
        if (strcmp(m->topic, topic) == 0)
            return m;
        fleet_link_message_free(m);
    }
    fail_msg("nothing on %s within %d ms", topic, timeout_ms);
    return NULL;
}

static void publish(const char *topic, uint8_t *buf, size_t len, int retained)
{
    assert_int_equal(fleet_link_publish(coord, topic, buf, len, 1, retained, NULL), FLEET_LINK_OK);
    free(buf);
}

static void assign(uint64_t epoch, int n_variants)
{
    fleet_msg_assignment a;
    memset(&a, 0, sizeof a);
    strcpy(a.agent, "gw-1"), strcpy(a.coordinator, "test"), strcpy(a.stream, "s");
    a.epoch = epoch;
    a.n_variants = (size_t)n_variants;
    a.variants[0] = (fleet_assigned_variant){
        .variant = 0, .model_bytes = model_size, .k = 3, .temperature = 1.0f};
    strcpy(a.variants[0].digest, digest);
    uint8_t *buf;
    size_t len;
    assert_int_equal(fleet_msg_assignment_encode(&a, &buf, &len), FLEET_TOPICS_OK);
    publish(PREFIX "/agent/gw-1/assignment", buf, len, 1);
}

/* Answers one model_get with the model in two chunks, one byte flipped when corrupt. */
static void serve_model(bool corrupt)
{
    fleet_link_message *m = await(PREFIX "/model/get", 6000);
    fleet_msg_model_get g;
    assert_int_equal(fleet_msg_model_get_decode(m->payload, m->len, &g), FLEET_TOPICS_OK);
    assert_string_equal(g.digest, digest);
    fleet_link_message_free(m);
    uint8_t *copy = malloc(model_size);
    memcpy(copy, model_bytes, model_size);
    if (corrupt)
        copy[model_size / 2] ^= 0x40;
    size_t half = model_size / 2;
    for (uint32_t i = 0; i < 2; i++) {
        fleet_msg_chunk c = {.index = i,
                             .chunks = 2,
                             .total_bytes = model_size,
                             .data = copy + i * half,
                             .size = i ? model_size - half : half};
        strcpy(c.digest, digest);
        uint8_t *buf;
        size_t len;
        assert_int_equal(fleet_msg_chunk_encode(&c, &buf, &len), FLEET_TOPICS_OK);
        publish(PREFIX "/agent/gw-1/chunk", buf, len, 0);
    }
    free(copy);
}

static fleet_msg_birth await_birth(size_t models)
{
    for (;;) {
        fleet_link_message *m = await(PREFIX "/agent/gw-1/state", 8000);
        fleet_msg_agent_state s;
        assert_int_equal(fleet_msg_agent_state_decode(m->payload, m->len, &s), FLEET_TOPICS_OK);
        fleet_link_message_free(m);
        if (s.alive && s.birth.n_models == models)
            return s.birth;
    }
}

static void send_request(const char *id, uint32_t deadline_ms, const float *pixels)
{
    fleet_msg_request r;
    memset(&r, 0, sizeof r);
    strcpy(r.id, id), strcpy(r.stream, "s");
    r.deadline_ms = deadline_ms;
    r.tensor = (fleet_tensor){.dtype = FLEET_DTYPE_F32,
                              .scale = 1,
                              .shape = {1, 1, 28, 28},
                              .rank = 4,
                              .data = (const uint8_t *)pixels,
                              .size = 784 * 4};
    uint8_t *buf;
    size_t len;
    assert_int_equal(fleet_msg_request_encode(&r, &buf, &len), FLEET_TOPICS_OK);
    assert_int_equal(fleet_link_publish(coord, PREFIX "/stream/s/request", buf, len, 0, 0, NULL),
                     FLEET_LINK_OK);
    free(buf);
}

static void test_agent_life(void **state)
{
    (void)state;
    fleet_msg_birth b = await_birth(0);
    assert_int_equal(b.bdseq, 1);
    assert_true(b.cores >= 1);
    assign(10, 1);
    serve_model(true);  /* damaged in transit: refused, asked for again */
    serve_model(false); /* now it verifies */
    b = await_birth(1);
    assert_string_equal(b.models[0].digest, digest);

    /* A request gets the same top-3 as running the model here. */
    size_t n;
    float *pixels = (float *)slurp(MODEL ".in.f32", &n);
    fleet_model *m = NULL;
    assert_int_equal(fleet_model_load_buffer(model_bytes, model_size, NULL, &m), FLEET_MODEL_OK);
    float logits[10];
    const float *ins[1] = {pixels};
    float *outs[1] = {logits};
    fleet_model_run(m, ins, outs);
    fleet_ensemble_softmax(logits, 10, 1.0f);
    fleet_ensemble_score top[3];
    fleet_ensemble_topk(logits, 10, 3, top);
    send_request("q1", 2000, pixels);
    fleet_link_message *msg = await(PREFIX "/stream/s/result", 5000);
    fleet_msg_result r;
    assert_int_equal(fleet_msg_result_decode(msg->payload, msg->len, &r), FLEET_TOPICS_OK);
    fleet_link_message_free(msg);
    assert_string_equal(r.id, "q1");
    assert_int_equal(r.k, 3);
    assert_int_equal(r.epoch, 10);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(r.classes[i], top[i].cls);
        assert_float_equal(r.probs[i], top[i].prob, 1e-6f);
    }

    /* An older epoch (a stale retained assignment) changes nothing. */
    assign(5, 0);
    send_request("q2", 2000, pixels);
    msg = await(PREFIX "/stream/s/result", 5000);
    fleet_link_message_free(msg);

    /* Garbage on every topic the agent listens to: counted, never fatal. */
    const char *topics[] = {PREFIX "/agent/gw-1/assignment", PREFIX "/agent/gw-1/chunk",
                            PREFIX "/stream/s/request"};
    for (int i = 0; i < 3; i++)
        fleet_link_publish(coord, topics[i], "\xc1\x00garbage", 9, 1, 0, NULL);
    send_request("q3", 2000, pixels);
    msg = await(PREFIX "/stream/s/result", 5000);
    fleet_link_message_free(msg);
    fleet_agent_stats stats;
    fleet_agent_get_stats(agent, &stats);
    assert_true(stats.bad_messages >= 2);
    assert_int_equal(stats.epoch, 10);

    /* A burst with a 1 ms budget: the queue (8) overflows and what waits too long expires. */
    for (int i = 0; i < 200; i++) {
        char id[16];
        snprintf(id, sizeof id, "burst-%d", i);
        send_request(id, 1, pixels);
    }
    double until = fleet_link_now_us() + 5e6;
    do {
        fleet_agent_get_stats(agent, &stats);
    } while (stats.dropped_expired + stats.dropped_full + stats.processed < 200 + 3 &&
             fleet_link_now_us() < until);
    assert_true(stats.dropped_expired + stats.dropped_full > 0);

    /* Stopping says goodbye with the birth's sequence number. */
    fleet_agent_stop(agent);
    pthread_join(agent_thread, NULL);
    for (;;) {
        msg = await(PREFIX "/agent/gw-1/state", 5000);
        fleet_msg_agent_state s;
        assert_int_equal(fleet_msg_agent_state_decode(msg->payload, msg->len, &s), FLEET_TOPICS_OK);
        fleet_link_message_free(msg);
        if (!s.alive) {
            assert_int_equal(s.death.bdseq, 1);
            break;
        }
    }
    fleet_agent_destroy(agent);
    fleet_model_destroy(m);
    free(pixels);
}

static void test_config_errors(void **state)
{
    (void)state;
    fleet_agent_config cfg;
    fleet_agent_config_init(&cfg);
    assert_int_equal(fleet_agent_config_set(&cfg, "queue", "0"), FLEET_AGENT_EINVAL);
    assert_int_equal(fleet_agent_config_set(&cfg, "bogus", "1"), FLEET_AGENT_EINVAL);
    assert_int_equal(fleet_agent_config_set(&cfg, "log_level", "loud"), FLEET_AGENT_EINVAL);
    char path[96];
    snprintf(path, sizeof path, "%s/bad.conf", cache);
    FILE *f = fopen(path, "w");
    fputs("# a comment\nid = gw-9\nthreads = many\n", f);
    fclose(f);
    assert_int_equal(fleet_agent_config_load(path, &cfg), FLEET_AGENT_EINVAL);
    assert_non_null(strstr(fleet_agent_last_error(), "bad.conf:3"));
    fleet_agent *none = NULL;
    fleet_agent_config_init(&cfg);
    assert_int_equal(fleet_agent_create(&cfg, &none), FLEET_AGENT_EINVAL); /* no id */
    assert_null(none);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_agent_life),
        cmocka_unit_test(test_config_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
