/* test_fleet.c: a real fleet (mosquitto, fleet-coordinator, four fleet-agent processes). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "broker.h"
#include "dataset.h"
#include "fleet_ensemble.h"
#include "fleet_link.h"
#include "fleet_models.h"
#include "fleet_topics.h"
#include "garbage.h"
#include "spawn.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef FLEET_BINARY_DIR
#define FLEET_BINARY_DIR "."
#endif

#define PREFIX "fleet/test"
#define STREAM "s1"
#define REPLY "reply/operator/test"
#define N_AGENTS 4
#define N_VARIANTS 4

typedef struct fleet_fixture {
    fleetctl_broker broker;
    fleetctl_dataset data;
    pid_t coordinator, second_coordinator, third_coordinator, agents[N_AGENTS];
    char dir[64];
    fleet_link *client;
    char zoo[512];
} fleet_fixture;

static fleet_fixture fx;

static void start_agent(int i)
{
    char id[32], cache[128], log[128];
    snprintf(id, sizeof id, "agent-%d", i + 1);
    snprintf(cache, sizeof cache, "%s/cache-%d", fx.dir, i + 1);
    snprintf(log, sizeof log, "%s/agent-%d.log", fx.dir, i + 1);
    char *argv[] = {FLEET_BINARY_DIR "/agent/fleet-agent",
                    "--id",
                    id,
                    "--broker",
                    fx.broker.url,
                    "--password",
                    FLEETCTL_BROKER_SECRET,
                    "--prefix",
                    PREFIX,
                    "--cache",
                    cache,
                    "--heartbeat-ms",
                    "200",
                    "--log-level",
                    "info",
                    NULL};
    /* Never under the wrapper: XNNPACK's AVX code runs ~1000x slower in valgrind, too slow for
     * heartbeats; the agent is valgrind-checked by test_agent. */
    fx.agents[i] = test_spawn(argv, log, false);
}

/* Coordinator id serving stream; extra: more "--flag", "value" pairs, NULL-terminated (or
 * NULL). Returns its pid. */
static pid_t start_coordinator_as(const char *id, const char *stream, const char *rule,
                                  const char *const *extra)
{
    char v[N_VARIANTS][600], log[128];
    for (int i = 0; i < N_VARIANTS; i++)
        snprintf(v[i], sizeof v[i], "%s/variant-%d.onnx", fx.zoo, i);
    snprintf(log, sizeof log, "%s/coordinator-%s.log", fx.dir, id);
    char *argv[40] = {FLEET_BINARY_DIR "/coordinator/fleet-coordinator",
                      "--id",
                      (char *)id,
                      "--broker",
                      fx.broker.url,
                      "--password",
                      FLEETCTL_BROKER_SECRET,
                      "--prefix",
                      PREFIX,
                      "--stream",
                      (char *)stream,
                      "--rule",
                      (char *)rule,
                      "--replication",
                      "1",
                      "--heartbeat_timeout_ms",
                      "1000",
                      "--deadline_ms",
                      "3000",
                      "--log_level",
                      "info"};
    int n = 21;
    for (int i = 0; i < N_VARIANTS; i++) {
        argv[n++] = "--variant";
        argv[n++] = v[i];
    }
    for (size_t i = 0; extra && extra[i] && n < 38; i++)
        argv[n++] = (char *)extra[i];
    argv[n] = NULL;
    return test_spawn(argv, log, true);
}

/* False when a daemon did not shut down cleanly (exit 0 after SIGTERM). */
static bool stop_fleet(void)
{
    bool clean = true;
    for (int i = 0; i < N_AGENTS; i++)
        if (fx.agents[i] > 0) {
            kill(fx.agents[i], SIGCONT); /* a test that paused it may have failed */
            clean &= test_stop_cleanly(fx.agents[i], "fleet-agent");
            fx.agents[i] = 0;
        }
    pid_t *coordinators[] = {&fx.coordinator, &fx.second_coordinator, &fx.third_coordinator};
    for (int i = 0; i < 3; i++)
        if (*coordinators[i] > 0) {
            clean &= test_stop_cleanly(*coordinators[i], "fleet-coordinator");
            *coordinators[i] = 0;
        }
    return clean;
}

/* A failed test leaves its fleet running; the next one starts from none. */
static int stop_fleet_after(void **state)
{
    (void)state;
    return stop_fleet() ? 0 : -1;
}

static int setup(void **state)
{
    (void)state;
    const char *zoo = getenv("FLEET_TEST_ZOO");
    snprintf(fx.zoo, sizeof fx.zoo, "%s", zoo ? zoo : "models/zoo");
    snprintf(fx.dir, sizeof fx.dir, "/tmp/fleet-test-XXXXXX");
    const char *ids[N_AGENTS] = {"agent-1", "agent-2", "agent-3", "agent-4"};
    if (!mkdtemp(fx.dir) ||
        fleetctl_dataset_load(FLEETCTL_DATASET_DEFAULT_DIR, "t10k", &fx.data) != 0 ||
        fleetctl_broker_start(fleetctl_broker_config_dir(), ids, N_AGENTS, &fx.broker) != 0)
        return -1;
    fleet_link_options o;
    fleet_link_options_init(&o);
    o.url = fx.broker.url;
    o.client_id = "test-client";
    o.username = "operator";
    o.password = FLEETCTL_BROKER_SECRET;
    if (fleet_link_create(&o, &fx.client) != FLEET_LINK_OK ||
        fleet_link_subscribe(fx.client, REPLY, 0) != FLEET_LINK_OK)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    stop_fleet();
    fleet_link_destroy(fx.client);
    fleetctl_broker_stop(&fx.broker);
    fleetctl_dataset_free(&fx.data);
    if (getenv("FLEET_TEST_KEEP_LOGS")) { /* for a failure's post-mortem */
        fprintf(stderr, "test_fleet: logs kept in %s\n", fx.dir);
        return 0;
    }
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx.dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* How much longer liveness waits may take: coordinators under valgrind are many times slower. */
static double patience(void)
{
    const char *wrapper = getenv("FLEET_TEST_WRAPPER");
    return wrapper && *wrapper ? 4.0 : 1.0;
}

/* The end of every daemon's log on stderr, so that a failure in CI can be read after the fact. */
static void show_logs(void)
{
    char cmd[160];
    snprintf(cmd, sizeof cmd, "tail -n 25 '%s'/*.log >&2", fx.dir);
    if (system(cmd) != 0)
        fprintf(stderr, "test_fleet: cannot show the logs in %s\n", fx.dir);
}

#define fail_with_logs(...)                                                                        \
    do {                                                                                           \
        show_logs();                                                                               \
        fail_msg(__VA_ARGS__);                                                                     \
    } while (0)

static void send_tensor_replying(const char *stream, const fleet_tensor *tensor, const char *id,
                                 const char *response_topic, int qos)
{
    fleet_msg_request r;
    memset(&r, 0, sizeof r);
    snprintf(r.id, sizeof r.id, "%s", id);
    snprintf(r.stream, sizeof r.stream, "%s", stream);
    r.deadline_ms = 3000;
    r.tensor = *tensor;
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(fleet_msg_request_encode(&r, &buf, &len), FLEET_TOPICS_OK);
    fleet_link_props props = {.response_topic = response_topic};
    char topic[128];
    snprintf(topic, sizeof topic, PREFIX "/stream/%s/request", stream);
    assert_int_equal(fleet_link_publish(fx.client, topic, buf, len, qos, 0, &props), FLEET_LINK_OK);
    free(buf);
}

static void send_tensor_to(const char *stream, const fleet_tensor *tensor, const char *id)
{
    send_tensor_replying(stream, tensor, id, REPLY, 0);
}

static void send_image_to(const char *stream, size_t index, const char *id)
{
    fleet_tensor t = {.dtype = FLEET_DTYPE_U8,
                      .scale = 1.0f / 255.0f,
                      .shape = {1, 1, 28, 28},
                      .rank = 4,
                      .data = fx.data.pixels + index * 784,
                      .size = 784};
    send_tensor_to(stream, &t, id);
}

static void send_image(size_t index, const char *id)
{
    send_image_to(STREAM, index, id);
}

/* The next decision on the reply topic, or false after timeout_ms. */
static bool next_decision(int timeout_ms, fleet_msg_decision *d)
{
    fleet_link_message *m = NULL;
    if (fleet_link_receive(fx.client, timeout_ms, &m) != FLEET_LINK_OK)
        return false;
    bool ok = fleet_msg_decision_decode(m->payload, m->len, d) == FLEET_TOPICS_OK;
    fleet_link_message_free(m);
    return ok;
}

/* Probes stream until a decision (by coordinator, when not NULL) uses every variant: its
 * agents have their models and the coordinator knows it. */
/* Only decisions for this call's probes count: a late decision for an earlier probe (one that
 * took longer than 300 ms, as under valgrind) waits in the reply queue, and an earlier test's
 * healthy fleet must not pass for this one before its coordinator is even up. */
static void wait_until_healthy_by(const char *stream, const char *coordinator)
{
    static unsigned round;
    char prefix[32];
    snprintf(prefix, sizeof prefix, "probe-%u-", ++round);
    for (int probe = 0; probe < 200; probe++) {
        char id[48];
        snprintf(id, sizeof id, "%s%d", prefix, probe);
        send_image_to(stream, 0, id);
        fleet_msg_decision d;
        while (next_decision(300, &d))
            if (!d.degraded && d.n_used == N_VARIANTS && strcmp(d.stream, stream) == 0 &&
                strncmp(d.id, prefix, strlen(prefix)) == 0 &&
                (!coordinator || strcmp(d.coordinator, coordinator) == 0))
                return;
    }
    fail_with_logs("stream %s never became healthy", stream);
}

static void wait_until_healthy_on(const char *stream)
{
    wait_until_healthy_by(stream, NULL);
}

/* A connection to the fleet's broker as one of its users (broker-config/fleet.acl). */
static fleet_link *open_link_as(const char *user, const char *client_id)
{
    fleet_link_options o;
    fleet_link_options_init(&o);
    o.url = fx.broker.url;
    o.client_id = client_id;
    o.username = user;
    o.password = FLEETCTL_BROKER_SECRET;
    fleet_link *link = NULL;
    assert_int_equal(fleet_link_create(&o, &link), FLEET_LINK_OK);
    return link;
}

/* Until every agent's latest birth lists a loaded model: placement has settled. A healthy
 * decision alone can come while three agents hold the four variants, and the fourth agent's
 * birth then moves a variant to it (degraded decisions while it downloads the model). */
static void wait_until_agents_loaded(void)
{
    fleet_link *watch = open_link_as("operator", "placement-watcher");
    assert_int_equal(fleet_link_subscribe(watch, PREFIX "/agent/+/state", 1), FLEET_LINK_OK);
    size_t loaded[N_AGENTS] = {0}, ready = 0;
    double until = fleet_link_now_us() + 60e6 * patience();
    while (ready < N_AGENTS && fleet_link_now_us() < until) {
        fleet_link_message *m = NULL;
        if (fleet_link_receive(watch, 200, &m) != FLEET_LINK_OK)
            continue;
        fleet_msg_agent_state st;
        int i = 0;
        if (fleet_msg_agent_state_decode(m->payload, m->len, &st) == FLEET_TOPICS_OK &&
            sscanf(st.alive ? st.birth.agent : st.death.agent, "agent-%d", &i) == 1 && i >= 1 &&
            i <= N_AGENTS)
            loaded[i - 1] = st.alive ? st.birth.n_models : 0;
        fleet_link_message_free(m);
        ready = 0;
        for (int a = 0; a < N_AGENTS; a++)
            ready += loaded[a] > 0;
    }
    fleet_link_destroy(watch);
    if (ready < N_AGENTS)
        fail_with_logs("only %zu of %d agents loaded a model", ready, N_AGENTS);
}

static void wait_until_healthy(void)
{
    wait_until_agents_loaded();
    wait_until_healthy_on(STREAM);
}

static void start_agents(void)
{
    for (int i = 0; i < N_AGENTS; i++)
        start_agent(i);
}

/* The usual fleet: coordinator "main" on STREAM with rule (and extra "--flag", "value" pairs,
 * NULL-terminated, or NULL), every agent; returns once it is healthy. */
static void start_fleet(const char *rule, const char *const *extra)
{
    fx.coordinator = start_coordinator_as("main", STREAM, rule, extra);
    start_agents();
    wait_until_healthy();
}

/* What the coordinator must decide for image index: the same rule over the same variants. */
static void offline_decision(fleet_model *const *models, const float *temps, const float *weights,
                             fleet_ensemble_rule rule, size_t index, int *cls, float *confidence)
{
    fleet_ensemble_score scores[N_VARIANTS][10];
    fleet_ensemble_vote votes[N_VARIANTS];
    float x[784], outs[N_VARIANTS][4][512];
    fleetctl_dataset_image(&fx.data, index, x);
    for (int v = 0; v < N_VARIANTS; v++) {
        const float *ins[1] = {x};
        float *o[4] = {outs[v][0], outs[v][1], outs[v][2], outs[v][3]};
        assert_int_equal(fleet_model_run(models[v], ins, o), FLEET_MODEL_OK);
        fleet_ensemble_softmax(outs[v][0], 10, temps[v]);
        votes[v] = (fleet_ensemble_vote){
            scores[v], fleet_ensemble_topk(outs[v][0], 10, 10, scores[v]), weights[v]};
    }
    fleet_ensemble_decision d;
    fleet_ensemble_decide(rule, votes, N_VARIANTS, 10, NULL, &d);
    *cls = d.cls;
    *confidence = d.confidence;
}

static float meta(const fleet_model *m, const char *key, float fallback)
{
    const char *text = fleet_model_metadata(m, key);
    return text ? strtof(text, NULL) : fallback;
}

/* What the fleet must decide for image index, computed offline. */
typedef void (*offline_fn)(void *ctx, size_t index, int *cls, float *confidence);

/* Streams test images 0..count-1, 16 in flight, and checks every decision: each image
 * answered once, not degraded, decided by rule, and equal to offline's class and confidence. */
static void expect_offline_decisions(size_t count, const char *rule, offline_fn offline, void *ctx)
{
    enum { window = 16, max_count = 1000 };
    static bool seen[max_count];
    assert_true(count <= max_count);
    memset(seen, 0, sizeof seen);
    size_t sent = 0, got = 0;
    while (got < count) {
        while (sent < count && sent - got < window) {
            char id[32];
            snprintf(id, sizeof id, "img-%zu", sent);
            send_image(sent++, id);
        }
        fleet_msg_decision d;
        if (!next_decision(5000, &d))
            fail_with_logs("only %zu of %zu decisions arrived", got, count);
        size_t index;
        if (sscanf(d.id, "img-%zu", &index) != 1)
            continue; /* a late probe */
        if (index >= count || seen[index])
            fail_with_logs("decision for %s: not sent, or decided twice", d.id);
        seen[index] = true;
        got++;
        if (d.degraded)
            fail_with_logs(
                "%s degraded: %zu of %d variants used, first missing %u, after %u us%s%s", d.id,
                d.n_used, N_VARIANTS, d.n_missing ? d.missing[0] : 0, d.total_us,
                d.error[0] ? ": " : "", d.error);
        assert_string_equal(d.rule, rule);
        int cls;
        float confidence;
        offline(ctx, index, &cls, &confidence);
        if (d.cls != cls || fabsf(d.confidence - confidence) > 1e-6f)
            fail_msg("image %zu: fleet decided %d (%.7f), offline %d (%.7f)", index, d.cls,
                     (double)d.confidence, cls, (double)confidence);
    }
}

typedef struct ensemble_ctx {
    fleet_model *const *models;
    const float *temps, *weights;
} ensemble_ctx;

static void offline_ensemble(void *ctx, size_t index, int *cls, float *confidence)
{
    const ensemble_ctx *e = ctx;
    offline_decision(e->models, e->temps, e->weights, FLEET_ENSEMBLE_VP_TOPK, index, cls,
                     confidence);
}

static void test_500_decisions_match_offline_ensemble(void **state)
{
    (void)state;
    start_fleet("vp-topk", NULL);
    fleet_model *models[N_VARIANTS];
    float temps[N_VARIANTS], weights[N_VARIANTS], res[N_VARIANTS], width[N_VARIANTS], max_res = 0;
    for (int v = 0; v < N_VARIANTS; v++) {
        char path[600];
        snprintf(path, sizeof path, "%s/variant-%d.onnx", fx.zoo, v);
        assert_int_equal(fleet_model_load_file(path, NULL, &models[v]), FLEET_MODEL_OK);
        temps[v] = meta(models[v], "temperature", 1.0f);
        res[v] = meta(models[v], "input_resolution", 28.0f);
        width[v] = meta(models[v], "width", 0.35f);
        max_res = fmaxf(max_res, res[v]);
    }
    for (int v = 0; v < N_VARIANTS; v++)
        weights[v] = res[v] / max_res * (width[v] / 0.35f) * (width[v] / 0.35f);
    ensemble_ctx ctx = {models, temps, weights};
    expect_offline_decisions(500, "vp-topk", offline_ensemble, &ctx);
    for (int v = 0; v < N_VARIANTS; v++)
        fleet_model_destroy(models[v]);
    assert_true(stop_fleet());
}

/* The fusion head over int8 features, computed here as the fleet must: each variant's features
 * quantized with its metadata's parameters, dequantized, concatenated, the head, softmax / T. */
static void offline_fusion(fleet_model *const *models, fleet_model *head, size_t index, int *cls,
                           float *confidence)
{
    float x[784], outs[N_VARIANTS][2][512], joined[4 * 512], scores[10];
    int8_t q[512];
    size_t off = 0;
    for (size_t i = 0; i < 784; i++) /* as the agent reads a u8 tensor of scale 1/255 */
        x[i] = (1.0f / 255.0f) * (float)fx.data.pixels[index * 784 + i];
    for (int v = 0; v < N_VARIANTS; v++) {
        const float *ins[1] = {x};
        float *o[2] = {outs[v][0], outs[v][1]};
        assert_int_equal(fleet_model_run(models[v], ins, o), FLEET_MODEL_OK);
        fleet_model_tensor_info info;
        fleet_model_output_info(models[v], 1, &info);
        assert_true(info.count <= 512);
        fleet_model_qparams qp = {meta(models[v], "feature_scale", 0.0f),
                                  (int32_t)meta(models[v], "feature_zero_point", 0.0f)};
        assert_true(qp.scale > 0.0f);
        fleet_model_quantize_int8(outs[v][1], info.count, qp, q);
        fleet_model_dequantize_int8(q, info.count, qp, joined + off);
        off += info.count;
    }
    const float *ins[1] = {joined};
    float *o[1] = {scores};
    assert_int_equal(fleet_model_run(head, ins, o), FLEET_MODEL_OK);
    fleet_ensemble_softmax(scores, 10, meta(head, "temperature", 1.0f));
    fleet_ensemble_score best;
    fleet_ensemble_topk(scores, 10, 1, &best);
    *cls = best.cls;
    *confidence = best.prob;
}

typedef struct fusion_ctx {
    fleet_model *const *models;
    fleet_model *head;
} fusion_ctx;

static void offline_fusion_decision(void *ctx, size_t index, int *cls, float *confidence)
{
    const fusion_ctx *f = ctx;
    offline_fusion(f->models, f->head, index, cls, confidence);
}

/* rule fusion: the agents send int8 features, the coordinator's head decides, exactly as the
 * offline computation does. */
static void test_fusion_decisions_match_offline(void **state)
{
    (void)state;
    char head_path[600];
    snprintf(head_path, sizeof head_path, "%s/fusion.onnx", fx.zoo);
    const char *const extra[] = {"--fusion_model", head_path, NULL};
    start_fleet("fusion", extra);
    fleet_model *models[N_VARIANTS], *head = NULL;
    for (int v = 0; v < N_VARIANTS; v++) {
        char path[600];
        snprintf(path, sizeof path, "%s/variant-%d.onnx", fx.zoo, v);
        assert_int_equal(fleet_model_load_file(path, NULL, &models[v]), FLEET_MODEL_OK);
    }
    assert_int_equal(fleet_model_load_file(head_path, NULL, &head), FLEET_MODEL_OK);
    fusion_ctx ctx = {models, head};
    expect_offline_decisions(200, "fusion", offline_fusion_decision, &ctx);
    for (int v = 0; v < N_VARIANTS; v++)
        fleet_model_destroy(models[v]);
    fleet_model_destroy(head);
    assert_true(stop_fleet());
}

/* kill -9 of an agent mid-run: every request is still answered, and degraded answers stop
 * once its variant has been reassigned and loaded elsewhere. */
static void test_kill_agent_every_request_answered(void **state)
{
    (void)state;
    enum { count = 600 };
    start_fleet("mean-softmax", NULL);
    size_t answered = 0, degraded_late = 0, degraded = 0;
    double killed_at = 0;
    for (size_t i = 0; i < count; i++) {
        if (i == 100) {
            kill(fx.agents[0], SIGKILL);
            waitpid(fx.agents[0], NULL, 0);
            fx.agents[0] = 0;
            killed_at = fleet_link_now_us();
        }
        char id[32];
        snprintf(id, sizeof id, "k-%zu", i);
        double sent_at = fleet_link_now_us();
        send_image(i, id);
        fleet_msg_decision d;
        while (next_decision(4000, &d)) {
            if (strcmp(d.id, id) != 0)
                continue; /* a probe's late answer */
            answered++;
            degraded += d.degraded;
            /* Two seconds after the kill the orphaned variant must be served again. */
            degraded_late += d.degraded && sent_at - killed_at > 2e6 && killed_at > 0;
            break;
        }
        struct timespec pace = {0, 5000000}; /* 200 requests/s: the run outlives failover */
        nanosleep(&pace, NULL);
    }
    assert_int_equal(answered, count);
    assert_int_equal(degraded_late, 0);
    print_message("kill -9: %zu of %d decisions degraded during failover\n", degraded, count);
    assert_true(stop_fleet());
}

/* Which coordinator each agent's retained assignment names, read by a fresh subscriber;
 * returns how many agents name `coordinator`. */
static int agents_assigned_by(const char *coordinator)
{
    fleet_link *watcher = open_link_as("operator", "assignment-watcher");
    assert_int_equal(fleet_link_subscribe(watcher, PREFIX "/agent/+/assignment", 1), FLEET_LINK_OK);
    int n = 0, seen = 0;
    fleet_link_message *m = NULL;
    while (seen < N_AGENTS && fleet_link_receive(watcher, 2000, &m) == FLEET_LINK_OK) {
        fleet_msg_assignment a;
        assert_int_equal(fleet_msg_assignment_decode(m->payload, m->len, &a), FLEET_TOPICS_OK);
        fleet_link_message_free(m);
        seen++;
        n += strcmp(a.coordinator, coordinator) == 0;
    }
    assert_int_equal(seen, N_AGENTS);
    fleet_link_destroy(watcher);
    return n;
}

/* Waits up to 10 s (times patience()) for exactly n agents to follow coordinator's assignment
 * (coordinators settle a simultaneous start by restating their assignments). */
static void await_agents_assigned_by(const char *coordinator, int n)
{
    double give_up = fleet_link_now_us() + 10e6 * patience();
    while (agents_assigned_by(coordinator) != n) {
        if (fleet_link_now_us() > give_up)
            fail_with_logs("%d agents never followed coordinator %s", n, coordinator);
        struct timespec pause = {0, 100000000};
        nanosleep(&pause, NULL);
    }
}

/* What `fleetctl status` prints for this fleet. */
static void fleetctl_status(char *out, size_t size)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             FLEET_BINARY_DIR "/dashboard-cli/fleetctl status --broker %s --password %s "
                              "--prefix " PREFIX " --wait-ms 500",
             fx.broker.url, FLEETCTL_BROKER_SECRET);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, size - 1, p);
    out[n] = '\0';
    assert_int_equal(pclose(p), 0);
}

/* What collect_once saw of the decisions for requests "<prefix><n>", n < count. */
typedef struct once_tally {
    size_t decided;  /* requests decided (each once) */
    size_t by;       /* of those, by the coordinator named */
    size_t degraded; /* of those, degraded */
} once_tally;

/* Reads decisions until every request "<prefix><n>" (n < count, at most 4000) has one, each
 * waited for up to wait_ms; then, for quiet_ms more, that none comes a second time (the test
 * fails on a second one). Decisions for other ids (late probes) are skipped. */
static once_tally collect_once(const char *prefix, size_t count, const char *by, int wait_ms,
                               int quiet_ms)
{
    static bool answered[4000];
    assert_true(count <= sizeof answered);
    memset(answered, 0, sizeof answered);
    once_tally t = {0};
    size_t n = strlen(prefix), index;
    char format[64];
    snprintf(format, sizeof format, "%s%%zu", prefix);
    fleet_msg_decision d;
    while (t.decided < count && next_decision(wait_ms, &d)) {
        if (sscanf(d.id, format, &index) != 1 || index >= count)
            continue;
        if (answered[index])
            fail_msg("request %s decided twice (again by %s)", d.id, d.coordinator);
        answered[index] = true;
        t.decided++;
        t.by += strcmp(d.coordinator, by) == 0;
        t.degraded += d.degraded;
    }
    while (next_decision(quiet_ms, &d))
        if (strncmp(d.id, prefix, n) == 0 && sscanf(d.id, format, &index) == 1 && index < count)
            fail_msg("request %s decided twice (again by %s)", d.id, d.coordinator);
    return t;
}

/* `fleetctl status` on this fleet prints `line` among its lines. */
static void expect_status(const char *line)
{
    char out[8192];
    fleetctl_status(out, sizeof out);
    if (!strstr(out, line))
        fail_msg("fleetctl status lacks \"%s\":\n%s", line, out);
}

/* Two coordinators, each serving its own stream, share the four agents with no configuration:
 * each assigns the agents it owns by rendezvous hashing (for these ids two each), both streams
 * get full decisions; when one is killed (-9), the other takes its agents over and goes on
 * answering every request. */
static void test_two_coordinators_share_the_agents(void **state)
{
    (void)state;
    fx.coordinator = start_coordinator_as("left", STREAM, "mean-softmax", NULL);
    fx.second_coordinator = start_coordinator_as("right", "s2", "mean-softmax", NULL);
    start_agents();
    wait_until_healthy_on(STREAM);
    wait_until_healthy_on("s2");
    await_agents_assigned_by("left", 2);
    await_agents_assigned_by("right", 2);
    expect_status("coordinator left                 online   stream " STREAM "\n");
    expect_status("coordinator right                online   stream s2\n");

    enum { count = 300 };
    size_t answered = 0;
    for (size_t i = 0; i < count; i++) {
        if (i == 50) {
            kill(fx.second_coordinator, SIGKILL);
            waitpid(fx.second_coordinator, NULL, 0);
            fx.second_coordinator = 0;
        }
        char id[32];
        snprintf(id, sizeof id, "shared-%zu", i);
        send_image(i, id);
        fleet_msg_decision d;
        while (next_decision(4000, &d))
            if (strcmp(d.id, id) == 0) {
                answered++;
                break;
            }
        struct timespec pace = {0, 5000000};
        nanosleep(&pace, NULL);
    }
    assert_int_equal(answered, count);
    await_agents_assigned_by("left", N_AGENTS); /* the survivor took them over */
    wait_until_healthy_on(STREAM);              /* all four variants, now over all four agents */
    assert_true(stop_fleet());
}

/* Two coordinators on one stream: the smaller id leads and assigns, the requests are split
 * between the two by id, and when the leader stops (SIGTERM: its drained offline state, no
 * will) the follower leads on with the same agents and placement. Every request is decided
 * exactly once: the leader decides those that reached it before its drained state, the
 * follower those after; every request sent after the stop is answered undegraded. */
static void test_two_coordinators_share_a_stream(void **state)
{
    (void)state;
    fx.coordinator = start_coordinator_as("first", STREAM, "mean-softmax", NULL);
    fx.second_coordinator = start_coordinator_as("second", STREAM, "mean-softmax", NULL);
    start_agents();
    wait_until_healthy();
    await_agents_assigned_by("first", N_AGENTS);

    enum { count = 400, stop_at = 150 };
    static bool answered[count];
    static double sent_at[count];
    memset(answered, 0, sizeof answered);
    size_t by_first = 0, by_second = 0, late = 0, late_answered = 0, late_degraded = 0;
    double stopped_at = 0;
    for (size_t i = 0; i < count; i++) {
        if (i == stop_at) {
            assert_true(test_stop_cleanly(fx.coordinator, "fleet-coordinator (leader)"));
            fx.coordinator = 0;
            stopped_at = fleet_link_now_us();
        }
        char id[32];
        snprintf(id, sizeof id, "group-%zu", i);
        sent_at[i] = fleet_link_now_us();
        /* Half a second after the stop the follower has its offline state, whatever the
         * machine's load: from then on every request is its to answer. */
        late += stopped_at > 0 && sent_at[i] - stopped_at > 0.5e6;
        send_image(i, id);
        struct timespec pace = {0, 5000000};
        nanosleep(&pace, NULL);
    }
    /* Decisions are read after the fact: a slow machine delays them, it loses none (each is
     * decided by its deadline, 3 s, degraded at worst). */
    fleet_msg_decision d;
    size_t decided = 0;
    while (decided < count && next_decision(5000, &d)) {
        size_t index;
        if (sscanf(d.id, "group-%zu", &index) != 1 || index >= count)
            continue;                  /* a probe's late answer */
        assert_false(answered[index]); /* decided once */
        answered[index] = true;
        decided++;
        by_first += strcmp(d.coordinator, "first") == 0;
        by_second += strcmp(d.coordinator, "second") == 0;
        if (stopped_at > 0 && sent_at[index] - stopped_at > 0.5e6) {
            late_answered++;
            late_degraded += d.degraded;
        }
    }
    assert_true(late > 50);
    assert_int_equal(decided, count);
    assert_false(next_decision(500, &d) && strncmp(d.id, "group-", 6) == 0); /* no second */
    assert_int_equal(late_answered, late);
    assert_int_equal(late_degraded, 0);
    assert_true(by_first > 20 && by_second > 20);
    print_message("leader stopped: the follower decided %zu of %d requests, the leader %zu\n",
                  by_second, count, by_first);
    expect_status("coordinator first                stopped  stream " STREAM
                  "\n"); /* it left on purpose: drained */
    assert_true(stop_fleet());
}

static size_t lines_in_log(const char *daemon, const char *needle);

/* A coordinator joins a stream while requests flow, as a restart: the will of its earlier run
 * is retained. It takes its share only from the echo of its own online state on, the point in
 * the broker's order from which the other counts it too, and it announces itself only once it
 * is subscribed (before, the earlier run's will made it announce itself at once, and the
 * other left it requests it did not receive yet: about 15 of these 500 were lost). So no
 * request is decided by both, nor by neither. */
static void test_joining_coordinator_decides_each_request_once(void **state)
{
    (void)state;
    fx.coordinator = start_coordinator_as("first", STREAM, "mean-softmax", NULL);
    start_agents();
    wait_until_healthy_by(STREAM, "first");
    enum { most = 4000, join_at = 100, after_join = 300 };
    fleet_msg_coordinator_state earlier = {
        .coordinator = "second", .online = false, .time_ms = 1, .stream = STREAM};
    uint8_t *will = NULL;
    size_t will_len = 0;
    assert_int_equal(fleet_msg_coordinator_state_encode(&earlier, &will, &will_len),
                     FLEET_TOPICS_OK);
    fleet_link *writer = open_link_as("coordinator", "earlier-run");
    assert_int_equal(
        fleet_link_publish(writer, PREFIX "/coordinator/second/state", will, will_len, 1, 1, NULL),
        FLEET_LINK_OK);
    fleet_link_destroy(writer);
    free(will);
    size_t count = 0, until = most;
    /* Requests flow before, during and after the join (start, connect, subscribe, announce:
     * seconds under valgrind), every 2 ms. */
    for (; count < until; count++) {
        if (count == join_at)
            fx.second_coordinator = start_coordinator_as("second", STREAM, "mean-softmax", NULL);
        if (count > join_at && until == most && count % 50 == 0 &&
            lines_in_log("coordinator-second", "serving stream") > 0)
            until = count + after_join;
        char id[32];
        snprintf(id, sizeof id, "join-%zu", count);
        send_image(count, id);
        struct timespec pace = {0, 2000000};
        nanosleep(&pace, NULL);
    }
    assert_true(until < most); /* it came up */
    /* A second decision would come at the latest by the deadline (3 s) of a request the joiner
     * took before the other counted it. */
    once_tally t =
        collect_once("join-", count, "second", (int)(5000 * patience()), (int)(4000 * patience()));
    assert_int_equal(t.decided, count);
    assert_true(t.by > 0); /* it did join */
    print_message("coordinator second joined: it decided %zu of %zu requests\n", t.by, count);
    assert_true(stop_fleet());
}

/* Malformed msgpack on every topic the coordinator reads, from each user allowed to write there,
 * and well-formed messages about agents and requests it does not know: it keeps deciding. A
 * request whose tensor the models cannot take is answered at once with the reason. */
/* Lines of the coordinator's log that contain needle. */
/* Lines of a daemon's log (e.g. "coordinator-main", "agent-1") that contain needle. */
static size_t lines_in_log(const char *daemon, const char *needle)
{
    char path[128], line[1024];
    snprintf(path, sizeof path, "%s/%s.log", fx.dir, daemon);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = 0;
    while (fgets(line, sizeof line, f))
        n += strstr(line, needle) != NULL;
    fclose(f);
    return n;
}

static size_t log_lines_with(const char *coordinator, const char *needle)
{
    char daemon[64];
    snprintf(daemon, sizeof daemon, "coordinator-%s", coordinator);
    return lines_in_log(daemon, needle);
}

/* Until a daemon's log ("coordinator-main", "agent-1") has a line with needle (the test fails
 * after a while). */
static void await_log_line(const char *daemon, const char *needle)
{
    double until = fleet_link_now_us() + 30e6 * patience();
    while (lines_in_log(daemon, needle) == 0) {
        if (fleet_link_now_us() > until)
            fail_with_logs("%s never logged \"%s\"", daemon, needle);
        struct timespec pause = {0, 100000000};
        nanosleep(&pause, NULL);
    }
}

static void test_coordinator_survives_bad_input(void **state)
{
    (void)state;
    static const char *const debug_log[] = {"--log_level", "debug", NULL}; /* every refusal */
    start_fleet("mean-softmax", debug_log);
    fleet_link *agent = open_link_as("agent-4", "garbage-agent");
    fleet_link *coordinator = open_link_as("coordinator", "garbage-coordinator");
    static const struct {
        int from; /* 0: an agent, 1: a coordinator, 2: an operator (the test's client) */
        const char *topic;
    } targets[] = {
        {0, PREFIX "/agent/agent-4/state"},
        {0, PREFIX "/agent/agent-4/heartbeat"},
        {0, PREFIX "/stream/" STREAM "/result/agent-4"},
        {0, PREFIX "/agent/agent-4/model-get"},
        {1, PREFIX "/coordinator/intruder/state"},
        {1, PREFIX "/agent/agent-1/assignment"},
        {2, PREFIX "/stream/" STREAM "/request"},
    };
    fleet_link *from[] = {agent, coordinator, fx.client};
    for (size_t t = 0; t < sizeof targets / sizeof targets[0]; t++)
        for (size_t i = 0; i < TEST_N_GARBAGE; i++)
            assert_int_equal(fleet_link_publish(from[targets[t].from], targets[t].topic,
                                                TEST_GARBAGE[i].bytes, TEST_GARBAGE[i].len, 1, 0,
                                                NULL),
                             FLEET_LINK_OK);
    /* Well-formed, about others, each on agent-4's own topics: a ghost agent's heartbeat,
     * agent-1's death (the last bdseq there is), a result and a model request in agent-1's
     * name; and in its own name, a result for a variant no assignment gave it. */
    fleet_msg_heartbeat h = {.agent = "ghost", .bdseq = 1};
    fleet_msg_death forged = {.agent = "agent-1", .bdseq = UINT64_MAX};
    fleet_msg_result res = {.id = "never-sent", .stream = STREAM, .agent = "agent-1", .k = 1};
    res.classes[0] = 3, res.probs[0] = 1.0f;
    fleet_msg_model_get get = {.agent = "agent-1", .count = 1};
    memset(get.digest, 'a', FLEET_TOPICS_DIGEST_HEX);
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(fleet_msg_heartbeat_encode(&h, &buf, &len), FLEET_TOPICS_OK);
    assert_int_equal(
        fleet_link_publish(agent, PREFIX "/agent/agent-4/heartbeat", buf, len, 1, 0, NULL),
        FLEET_LINK_OK);
    free(buf);
    assert_int_equal(fleet_msg_death_encode(&forged, &buf, &len), FLEET_TOPICS_OK);
    assert_int_equal(fleet_link_publish(agent, PREFIX "/agent/agent-4/state", buf, len, 1, 0, NULL),
                     FLEET_LINK_OK);
    free(buf);
    assert_int_equal(fleet_msg_model_get_encode(&get, &buf, &len), FLEET_TOPICS_OK);
    assert_int_equal(
        fleet_link_publish(agent, PREFIX "/agent/agent-4/model-get", buf, len, 1, 0, NULL),
        FLEET_LINK_OK);
    free(buf);
    for (int own = 0; own < 2; own++) {
        snprintf(res.agent, sizeof res.agent, "%s", own ? "agent-4" : "agent-1");
        res.variant = own ? 9 : 0; /* a family of four: nobody's */
        assert_int_equal(fleet_msg_result_encode(&res, &buf, &len), FLEET_TOPICS_OK);
        assert_int_equal(fleet_link_publish(agent, PREFIX "/stream/" STREAM "/result/agent-4", buf,
                                            len, 1, 0, NULL),
                         FLEET_LINK_OK);
        free(buf);
    }
    fleet_link_destroy(agent); /* closing lets the QoS 1 handshakes finish */
    fleet_link_destroy(coordinator);

    fleet_tensor small = {.dtype = FLEET_DTYPE_U8,
                          .scale = 1.0f / 255.0f,
                          .shape = {1, 1, 27, 27},
                          .rank = 4,
                          .data = fx.data.pixels,
                          .size = 27 * 27};
    send_tensor_to(STREAM, &small, "too-small");
    fleet_msg_decision d;
    do
        assert_true(next_decision(5000 * (int)patience(), &d));
    while (strcmp(d.id, "too-small") != 0);
    assert_int_equal(d.cls, -1);
    assert_true(d.degraded);
    assert_non_null(strstr(d.error, "729 elements"));
    /* A response topic inside the fleet's topics (where the coordinator may write and the
     * client may not): refused, and the refusal goes to the stream's decision topic. */
    assert_int_equal(fleet_link_subscribe(fx.client, PREFIX "/stream/" STREAM "/decision", 0),
                     FLEET_LINK_OK);
    fleet_tensor image = small;
    image.shape[2] = image.shape[3] = 28;
    image.size = 784;
    send_tensor_replying(STREAM, &image, "hijack", PREFIX "/agent/agent-1/chunk", 0);
    do
        assert_true(next_decision(5000 * (int)patience(), &d));
    while (strcmp(d.id, "hijack") != 0);
    assert_int_equal(d.cls, -1);
    assert_non_null(strstr(d.error, "inside the fleet's own topics"));
    /* A QoS 1 request gets its decision at QoS 1 (the coordinator takes requests at QoS 1). */
    assert_int_equal(fleet_link_subscribe(fx.client, REPLY "/qos1", 1), FLEET_LINK_OK);
    send_tensor_replying(STREAM, &image, "qos-1", REPLY "/qos1", 1);
    for (;;) {
        fleet_link_message *m = NULL;
        assert_int_equal(fleet_link_receive(fx.client, 5000 * (int)patience(), &m), FLEET_LINK_OK);
        bool mine = strcmp(m->topic, REPLY "/qos1") == 0;
        int qos = m->qos;
        fleet_link_message_free(m);
        if (mine) {
            assert_int_equal(qos, 1);
            break;
        }
    }

    enum { count = 50 };
    for (size_t i = 0; i < count; i++) {
        char id[16];
        snprintf(id, sizeof id, "after-%zu", i);
        send_image(i, id);
    }
    size_t healthy = 0;
    while (healthy < count && next_decision(5000 * (int)patience(), &d))
        healthy +=
            strncmp(d.id, "after-", 6) == 0 && !d.degraded && d.n_used == N_VARIANTS && !d.error[0];
    assert_int_equal(healthy, count);
    /* The garbage did reach the coordinator (the ACL allowed it) and was refused, every piece
     * but the empty one on retained topics, which removes a retained message (PROTOCOL.md). */
    static const struct {
        const char *line;
        bool retained;
    } refusals[] = {{"bad agent state", true},       {"bad heartbeat", false},
                    {"bad result", false},           {"bad model request", false},
                    {"bad coordinator state", true}, {"bad assignment", true},
                    {"bad request", false}};
    for (size_t i = 0; i < sizeof refusals / sizeof refusals[0]; i++) {
        size_t want = TEST_N_GARBAGE - refusals[i].retained;
        size_t seen = log_lines_with("main", refusals[i].line);
        if (seen != want)
            fail_with_logs("%zu lines with '%s', expected %zu", seen, refusals[i].line, want);
    }
    assert_int_equal(log_lines_with("main", "refused: the tensor has 729 elements"), 1);
    assert_int_equal(log_lines_with("main", "names agent 'ghost': refused"), 1);
    assert_int_equal(log_lines_with("main", "names agent 'agent-1': refused"), 3);
    assert_int_equal(log_lines_with("main", "for variant 9: never assigned to that agent"), 1);
    assert_int_equal(log_lines_with("main", "agent agent-1 died"), 0);
    assert_true(stop_fleet());
}

/* Clients that never saw our code: mosquitto_pub (MQTT v5 response topic) sends msgpack bytes
 * written by hand from docs/PROTOCOL.md (fixmap, fixstr keys, bin16 pixels), mosquitto_sub
 * receives the decision. Each try uses a new request id: the coordinator answers an id once. */
static void test_third_party_client_gets_decision(void **state)
{
    (void)state;
    start_fleet("mean-softmax", NULL);
    uint8_t req[1024], *p = req;
    const uint8_t head[] = {0x85, 0xa1, 'v',  0x01, 0xa2, 'i', 'd',  0xa3, 'r',  'r',  '0',  0xa6,
                            's',  't',  'r',  'e',  'a',  'm', 0xa2, 's',  '1',  0xab, 'd',  'e',
                            'a',  'd',  'l',  'i',  'n',  'e', '_',  'm',  's',  0xcd, 0x0b, 0xb8,
                            0xa6, 't',  'e',  'n',  's',  'o', 'r',  0x84, 0xa5, 'd',  't',  'y',
                            'p',  'e',  0x00, 0xa5, 's',  'c', 'a',  'l',  'e',  0xca, 0x3b, 0x80,
                            0x80, 0x81, 0xa5, 's',  'h',  'a', 'p',  'e',  0x94, 0x01, 0x01, 0x1c,
                            0x1c, 0xa4, 'd',  'a',  't',  'a', 0xc5, 0x03, 0x10};
    memcpy(p, head, sizeof head);
    p += sizeof head;
    memcpy(p, fx.data.pixels + 5 * 784, 784);
    p += 784;
    char path[128], out[128], port[16];
    snprintf(path, sizeof path, "%s/request.mp", fx.dir);
    snprintf(out, sizeof out, "%s/decision.mp", fx.dir);
    snprintf(port, sizeof port, "%u", fx.broker.port);
    char *sub[] = {"/usr/bin/mosquitto_sub",
                   "-V",
                   "mqttv5",
                   "-p",
                   port,
                   "-u",
                   "client",
                   "-P",
                   FLEETCTL_BROKER_SECRET,
                   "-t",
                   "reply/client/rr",
                   "-C",
                   "1",
                   "-N",
                   "-W",
                   "30",
                   NULL};
    pid_t subscriber = fork();
    if (subscriber == 0) {
        if (!freopen(out, "w", stdout))
            _exit(126);
        execv(sub[0], sub);
        _exit(127);
    }
    int status = 0;
    for (char attempt = '1'; attempt <= '9'; attempt++) {
        req[10] = (uint8_t)attempt; /* the id: rr1, rr2, ... */
        FILE *f = fopen(path, "wb");
        fwrite(req, 1, (size_t)(p - req), f);
        fclose(f);
        char cmd[512];
        snprintf(cmd, sizeof cmd,
                 "mosquitto_pub -V mqttv5 -p %u -u client -P %s -t " PREFIX "/stream/" STREAM
                 "/request -D publish response-topic reply/client/rr -f %s",
                 fx.broker.port, FLEETCTL_BROKER_SECRET, path);
        assert_int_equal(system(cmd), 0);
        struct timespec wait = {0, 500000000};
        nanosleep(&wait, NULL);
        if (waitpid(subscriber, &status, WNOHANG) == subscriber)
            break;
        if (attempt == '9') {
            kill(subscriber, SIGKILL);
            waitpid(subscriber, &status, 0);
        }
    }
    uint8_t answer[4096];
    FILE *f = fopen(out, "rb");
    size_t size = fread(answer, 1, sizeof answer, f);
    fclose(f);
    fleet_msg_decision d;
    assert_int_equal(fleet_msg_decision_decode(answer, size, &d), FLEET_TOPICS_OK);
    assert_int_equal(strncmp(d.id, "rr", 2), 0);
    assert_true(d.cls >= 0 && d.cls < 10);
    assert_true(stop_fleet());
}

/* An existing publisher's raw frames become requests; decisions come back as JSON. */
static void test_existing_topics_in_json_out(void **state)
{
    (void)state;
    const char *const extra[] = {"--input_filter", "cameras/+/frame", "--mirror_topic",
                                 "mirror/line-1", NULL};
    start_fleet("mean-softmax", extra);
    fleet_link_options o;
    fleet_link_options_init(&o);
    o.url = fx.broker.url;
    o.password = FLEETCTL_BROKER_SECRET;
    o.client_id = o.username = "camera";
    fleet_link *camera = NULL, *dashboard = NULL;
    assert_int_equal(fleet_link_create(&o, &camera), FLEET_LINK_OK);
    o.client_id = o.username = "dashboard";
    assert_int_equal(fleet_link_create(&o, &dashboard), FLEET_LINK_OK);
    assert_int_equal(fleet_link_subscribe(dashboard, "mirror/line-1", 0), FLEET_LINK_OK);
    /* A frame's size on a fleet topic the coordinator reads but cannot parse (an agent id
     * over 64 characters) is refused, not taken for a camera's frame: one decision comes. */
    fleet_link *stranger = open_link_as("coordinator", "stranger");
    char long_topic[256];
    snprintf(long_topic, sizeof long_topic, PREFIX "/stream/" STREAM "/result/%070d", 7);
    assert_int_equal(fleet_link_publish(stranger, long_topic, fx.data.pixels, 784, 1, 0, NULL),
                     FLEET_LINK_OK);
    fleet_link_destroy(stranger); /* its publish has been handed over */
    assert_int_equal(
        fleet_link_publish(camera, "cameras/7/frame", fx.data.pixels + 3 * 784, 784, 0, 0, NULL),
        FLEET_LINK_OK);
    assert_int_equal(fleet_link_publish(camera, "cameras/7/frame", "short", 5, 0, 0, NULL),
                     FLEET_LINK_OK); /* the wrong size is refused and logged, nothing else */
    fleet_link_message *m = NULL;
    assert_int_equal(fleet_link_receive(dashboard, 5000, &m), FLEET_LINK_OK);
    char json[2048];
    snprintf(json, sizeof json, "%.*s", (int)m->len, (const char *)m->payload);
    fleet_link_message_free(m);
    assert_non_null(strstr(json, "\"class\":"));
    assert_non_null(strstr(json, "\"degraded\":false"));
    assert_int_equal(fleet_link_receive(dashboard, 1000, &m), FLEET_LINK_ETIMEOUT);
    fleet_link_destroy(camera);
    fleet_link_destroy(dashboard);
    assert_true(stop_fleet());
}

static void publish_ghost_state(fleet_link *writer, const char *id, bool present)
{
    fleet_msg_coordinator_state ghost = {.online = true, .time_ms = 1, .stream = STREAM};
    snprintf(ghost.coordinator, sizeof ghost.coordinator, "%s", id);
    uint8_t *buf = NULL;
    size_t len = 0;
    if (present)
        assert_int_equal(fleet_msg_coordinator_state_encode(&ghost, &buf, &len), FLEET_TOPICS_OK);
    char topic[128];
    snprintf(topic, sizeof topic, PREFIX "/coordinator/%s/state", id);
    /* An empty retained message removes the retained one. */
    assert_int_equal(fleet_link_publish(writer, topic, buf, len, 1, 1, NULL), FLEET_LINK_OK);
    free(buf);
}

/* A coordinator whose will never came (it died while the broker was down, and the broker then
 * crashed, keeping its retained online state) is taken as gone once it has not restated its
 * state for 16 s. Here that state is written by hand for "a-ghost", whose smaller id would
 * lead the stream forever and leave the real coordinator following nobody. */
static void test_coordinator_without_will_is_forgotten(void **state)
{
    (void)state;
    fleet_link *writer = open_link_as("coordinator", "ghost-writer");
    publish_ghost_state(writer, "a-ghost", true);
    start_fleet("mean-softmax", NULL);
    publish_ghost_state(writer, "a-ghost", false);
    fleet_link_destroy(writer);
    /* The agents may serve at once (their models cached, the last test's assignments still
     * retained), so the ghost's end is awaited in the log. */
    double until = fleet_link_now_us() + 40e6 * patience();
    while (log_lines_with("main", "coordinator a-ghost silent for 16 s") == 0 &&
           fleet_link_now_us() < until) {
        struct timespec pause = {0, 200000000};
        nanosleep(&pause, NULL);
    }
    if (log_lines_with("main", "coordinator a-ghost online") != 1 ||
        log_lines_with("main", "follows the leader of stream") != 1)
        fail_with_logs("the coordinator never followed the ghost coordinator");
    if (log_lines_with("main", "coordinator a-ghost silent for 16 s") != 1)
        fail_with_logs("the ghost coordinator was never taken as offline");
    wait_until_healthy();             /* now led by main */
    for (size_t i = 0; i < 50; i++) { /* and the stream is served whole */
        char id[32];
        snprintf(id, sizeof id, "after-ghost-%zu", i);
        send_image(i, id);
        fleet_msg_decision d;
        do
            assert_true(next_decision(5000 * (int)patience(), &d));
        while (strcmp(d.id, id) != 0);
        assert_false(d.degraded);
    }
    assert_true(stop_fleet());
}

/* An operator removes what is gone for good by clearing its retained state (an empty retained
 * message, the MQTT way): a ghost coordinator is taken as offline at once (not 16 s later),
 * a decommissioned agent is forgotten and its retained assignment removed by its coordinator,
 * and `fleetctl status` lists neither any more. */
static void test_cleared_states_are_forgotten(void **state)
{
    (void)state;
    start_fleet("mean-softmax", NULL);
    fleet_link *writer = open_link_as("coordinator", "operator-with-rights");
    publish_ghost_state(writer, "a-ghost-2", true);
    await_log_line("coordinator-main", "coordinator a-ghost-2 online");
    publish_ghost_state(writer, "a-ghost-2", false);
    await_log_line("coordinator-main", "coordinator a-ghost-2 had its retained state cleared");
    await_log_line("agent-1", "coordinator a-ghost-2 is gone (its retained state was cleared)");
    wait_until_healthy_on(STREAM); /* main leads again */

    assert_true(test_stop_cleanly(fx.agents[3], "fleet-agent")); /* agent-4 goes for good */
    fx.agents[3] = 0;
    await_log_line("coordinator-main", "agent agent-4 died");
    assert_int_equal(fleet_link_publish(writer, PREFIX "/agent/agent-4/state", NULL, 0, 1, 1, NULL),
                     FLEET_LINK_OK);
    fleet_link_destroy(writer);
    await_log_line("coordinator-main", "agent agent-4 forgotten: its retained state was cleared");
    char out[8192];
    for (int tries = 0;; tries++) { /* the assignment's removal may still be on its way */
        fleetctl_status(out, sizeof out);
        if (!strstr(out, "agent-4") && !strstr(out, "a-ghost-2"))
            break;
        if (tries == 20)
            fail_msg("fleetctl status still lists agent-4 or a-ghost-2:\n%s", out);
    }
    assert_non_null(strstr(out, "agent-3"));
    assert_int_equal(log_lines_with("main", "bad "), 0); /* nothing taken for garbage */
    wait_until_healthy_on(STREAM);                       /* three agents serve the family */
    assert_true(stop_fleet());
}

/* The number after needle in the first line of a daemon's log that has it (-1: none). */
static long number_after(const char *daemon, const char *needle)
{
    char path[128], line[1024];
    snprintf(path, sizeof path, "%s/%s.log", fx.dir, daemon);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    long n = -1;
    while (n < 0 && fgets(line, sizeof line, f)) {
        const char *at = strstr(line, needle);
        if (at)
            n = strtol(at + strlen(needle), NULL, 10);
    }
    fclose(f);
    return n;
}

/* The coordinators ids[0..n) (ids[0] the smallest: the leader) on STREAM, pids where their pids
 * go, and the agents. Once each of them decides healthily, the agents are paused and count
 * requests "<prefix><i>" sent; returns when every one is held by exactly two coordinators,
 * its owner and its backup (their debug logs say so). Patient settings: nobody takes a paused
 * agent for dead or reaches a deadline meanwhile. */
static void hold_requests_paused(const char *const *ids, pid_t *const *pids, size_t n,
                                 const char *prefix, size_t count)
{
    const char *const patient[] = {
        "--heartbeat_timeout_ms", "30000", "--deadline_ms", "30000", "--log_level", "debug", NULL};
    for (size_t i = 0; i < n; i++)
        *pids[i] = start_coordinator_as(ids[i], STREAM, "mean-softmax", patient);
    start_agents();
    for (size_t i = 0; i < n; i++)
        wait_until_healthy_by(STREAM, ids[i]); /* each knows what every agent serves */
    await_agents_assigned_by(ids[0], N_AGENTS);
    for (int i = 0; i < N_AGENTS; i++)
        kill(fx.agents[i], SIGSTOP);
    for (size_t i = 0; i < count; i++) {
        char id[32];
        snprintf(id, sizeof id, "%s%zu", prefix, i);
        send_image(i, id);
    }
    char needle[48];
    snprintf(needle, sizeof needle, "request %s", prefix);
    double until = fleet_link_now_us() + 30e6 * patience();
    for (size_t held = 0; held != 2 * count;) {
        if (fleet_link_now_us() > until)
            fail_with_logs("%zu holdings of %zu requests, not two each", held, count);
        struct timespec pause = {0, 20000000};
        nanosleep(&pause, NULL);
        held = 0;
        for (size_t i = 0; i < n; i++) {
            char daemon[64];
            snprintf(daemon, sizeof daemon, "coordinator-%s", ids[i]);
            held += lines_in_log(daemon, needle);
        }
    }
}

/* Two coordinators on one stream, and the leader leaves while it holds requests: the agents
 * are paused, so nothing is decided yet. The follower holds a backup of every request the
 * leader owns; when the leader goes (kill -9: its will; SIGTERM: its drained state, after it
 * let its requests go to the backups) the follower makes them its own, and once the agents
 * resume it decides each of them once, undegraded. Without backups (--backup 0) half would
 * never be answered. */
static void leader_leaves_holding_requests(bool killed)
{
    static const char *const ids[] = {"first", "second"};
    pid_t *const pids[] = {&fx.coordinator, &fx.second_coordinator};
    enum { count = 40 };
    hold_requests_paused(ids, pids, 2, "held-", count);
    kill(fx.coordinator, killed ? SIGKILL : SIGTERM);
    await_log_line("coordinator-second", "coordinator first offline");
    /* Paused no longer than needed: the broker drops a silent agent after 7.5 s (keep-alive),
     * and a valgrind-run leader takes seconds to exit. */
    for (int i = 0; i < N_AGENTS; i++)
        kill(fx.agents[i], SIGCONT);
    if (killed)
        waitpid(fx.coordinator, NULL, 0);
    else
        assert_true(test_stop_cleanly(fx.coordinator, "fleet-coordinator (leader)"));
    fx.coordinator = 0;
    long taken = number_after("coordinator-second", killed ? "coordinator first left (its will): "
                                                           : "coordinator first left (stopped): ");
    assert_true(taken > 0 && taken < count); /* its share of the requests */
    if (!killed)                             /* it let each of them go, deciding none */
        assert_int_equal(number_after("coordinator-first", "handed over "), taken);

    once_tally t = collect_once("held-", count, "second", (int)(10000 * patience()), 500);
    assert_int_equal(t.decided, count);
    assert_int_equal(t.by, count);   /* all by the follower, */
    assert_int_equal(t.degraded, 0); /* with every variant */
    if (killed)                      /* its will: it died */
        expect_status("coordinator first                offline  stream " STREAM "\n");
    else /* it left on purpose */
        expect_status("coordinator first                stopped  stream " STREAM "\n");
    assert_true(stop_fleet());
}

/* Three coordinators on one stream; with the agents paused two of them stop at once (SIGTERM)
 * while every request is held. Whatever order their drained states take, each request is
 * decided exactly once: a backup that left first is no one to hand over to, and a request taken
 * over from the other leaver is not handed on to a member that never held it. */
static void test_two_of_three_stop_at_once(void **state)
{
    (void)state;
    static const char *const ids[] = {"c1", "c2", "c3"};
    pid_t *const pids[] = {&fx.coordinator, &fx.second_coordinator, &fx.third_coordinator};
    enum { count = 60 };
    hold_requests_paused(ids, pids, 3, "trio-", count);
    kill(fx.coordinator, SIGTERM);
    kill(fx.second_coordinator, SIGTERM);
    await_log_line("coordinator-c3", "coordinator c1 offline");
    await_log_line("coordinator-c3", "coordinator c2 offline");
    for (int i = 0; i < N_AGENTS; i++)
        kill(fx.agents[i], SIGCONT);
    assert_true(test_stop_cleanly(fx.coordinator, "fleet-coordinator c1"));
    assert_true(test_stop_cleanly(fx.second_coordinator, "fleet-coordinator c2"));
    fx.coordinator = fx.second_coordinator = 0;

    once_tally t = collect_once("trio-", count, "c3", (int)(10000 * patience()), 1000);
    assert_int_equal(t.decided, count);
    assert_true(t.by > count / 3); /* its own, and what the leavers handed over */
    print_message("two of three stopped at once: c3 decided %zu of %d requests\n", t.by, count);
    assert_true(stop_fleet());
}

static void test_killed_leader_requests_are_taken_over(void **state)
{
    (void)state;
    leader_leaves_holding_requests(true);
}

static void test_stopped_leader_hands_requests_over(void **state)
{
    (void)state;
    leader_leaves_holding_requests(false);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_500_decisions_match_offline_ensemble, stop_fleet_after),
        cmocka_unit_test_teardown(test_fusion_decisions_match_offline, stop_fleet_after),
        cmocka_unit_test_teardown(test_kill_agent_every_request_answered, stop_fleet_after),
        cmocka_unit_test_teardown(test_two_coordinators_share_the_agents, stop_fleet_after),
        cmocka_unit_test_teardown(test_two_coordinators_share_a_stream, stop_fleet_after),
        cmocka_unit_test_teardown(test_joining_coordinator_decides_each_request_once,
                                  stop_fleet_after),
        cmocka_unit_test_teardown(test_coordinator_survives_bad_input, stop_fleet_after),
        cmocka_unit_test_teardown(test_third_party_client_gets_decision, stop_fleet_after),
        cmocka_unit_test_teardown(test_existing_topics_in_json_out, stop_fleet_after),
        cmocka_unit_test_teardown(test_coordinator_without_will_is_forgotten, stop_fleet_after),
        cmocka_unit_test_teardown(test_cleared_states_are_forgotten, stop_fleet_after),
        cmocka_unit_test_teardown(test_killed_leader_requests_are_taken_over, stop_fleet_after),
        cmocka_unit_test_teardown(test_stopped_leader_hands_requests_over, stop_fleet_after),
        cmocka_unit_test_teardown(test_two_of_three_stop_at_once, stop_fleet_after),
    };
    if (getenv("FLEET_TEST_FILTER")) /* e.g. "*coordinators*": one test while debugging */
        cmocka_set_test_filter(getenv("FLEET_TEST_FILTER"));
    return cmocka_run_group_tests(tests, setup, teardown);
}
