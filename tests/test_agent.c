/* test_agent.c: fleet-agent against a real broker, with the test playing the coordinator.
 *
 * Every test starts its own agent (its own id, cache directory and stream) in this process,
 * running fleet_agent_run on a thread; the daemon test execs the fleet-agent binary. Nothing
 * waits by sleeping: each step waits for the message (or counter) it expects, with a timeout. */
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
#include "garbage.h"
#include "spawn.h"
#include "internal.h" /* agent_queue_hold: freezes the worker so queues fill deterministically */

#include <openssl/evp.h>

#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PREFIX "fleet/at"
#define TINY "tests/fixtures/models/tiny_cnn.onnx"
#define TINY_INPUT "tests/fixtures/models/tiny_cnn.in.f32"
#define VARIANT0 "models/zoo/variant-0.onnx"
#define WAIT_MS 8000

typedef struct model_file {
    uint8_t *bytes;
    size_t size;
    char digest[FLEET_TOPICS_DIGEST_HEX + 1];
} model_file;

static fleetctl_broker broker;
static fleet_link *coord;
static model_file tiny, variant0;
static float *pixels; /* the first sample of TINY_INPUT: 784 floats */
static char root[64] = "/tmp/fleet-agent-test-XXXXXX";

/* One agent under test, running on its own thread. */
typedef struct running_agent {
    const char *id;
    char cache[128], stream[32];
    fleet_agent *agent;
    pthread_t thread;
    bool started;
    fleet_agent_status run_status; /* what fleet_agent_run returned */
} running_agent;

/* ---- fixture ------------------------------------------------------------------------------- */

static uint8_t *slurp(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct stat s;
    uint8_t *data = NULL;
    if (fstat(fileno(f), &s) == 0 && (data = malloc((size_t)s.st_size + 1)) &&
        fread(data, 1, (size_t)s.st_size, f) != (size_t)s.st_size) {
        free(data);
        data = NULL;
    }
    fclose(f);
    *size = data ? (size_t)s.st_size : 0;
    return data;
}

static void sha256_hex(const uint8_t *data, size_t size, char *hex)
{
    unsigned char d[32];
    unsigned int n = 0;
    EVP_Digest(data, size, d, &n, EVP_sha256(), NULL);
    for (unsigned int i = 0; i < n; i++)
        snprintf(hex + 2 * i, 3, "%02x", d[i]);
}

static int load_model_file(const char *path, model_file *m)
{
    if (!(m->bytes = slurp(path, &m->size)))
        return -1;
    sha256_hex(m->bytes, m->size, m->digest);
    return 0;
}

static int setup(void **state)
{
    (void)state;
    static const char *const ids[] = {"gw-1", "gw-2", "gw-3", "gw-4", "gw-5",
                                      "gw-6", "gw-7", "gw-8", "gw-9", "gw-10"};
    size_t n = 0;
    if (!mkdtemp(root) || load_model_file(TINY, &tiny) || load_model_file(VARIANT0, &variant0) ||
        !(pixels = (float *)slurp(TINY_INPUT, &n)) || n < 784 * sizeof(float) ||
        fleetctl_broker_start(fleetctl_broker_config_dir(), ids, 10, &broker) != 0)
        return -1;
    fleet_link_options o;
    fleet_link_options_init(&o);
    o.url = broker.url;
    o.client_id = "test-coordinator";
    o.username = "coordinator";
    o.password = FLEETCTL_BROKER_SECRET;
    if (fleet_link_create(&o, &coord) != FLEET_LINK_OK ||
        fleet_link_subscribe(coord, PREFIX "/agent/+/state", 1) != FLEET_LINK_OK ||
        fleet_link_subscribe(coord, PREFIX "/agent/+/heartbeat", 0) != FLEET_LINK_OK ||
        fleet_link_subscribe(coord, PREFIX "/agent/+/model-get", 1) != FLEET_LINK_OK ||
        fleet_link_subscribe(coord, PREFIX "/stream/+/result/+", 0) != FLEET_LINK_OK)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    fleet_link_destroy(coord);
    fleetctl_broker_stop(&broker);
    free(tiny.bytes);
    free(variant0.bytes);
    free(pixels);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- the agent under test ------------------------------------------------------------------ */

static void *run_agent(void *arg)
{
    running_agent *r = arg; /* no cmocka asserts off the main thread */
    r->run_status = fleet_agent_run(r->agent);
    return NULL;
}

static void agent_config(running_agent *r, fleet_agent_config *cfg, const char *queue)
{
    snprintf(r->cache, sizeof r->cache, "%s/cache-%s", root, r->id);
    snprintf(r->stream, sizeof r->stream, "s-%s", r->id);
    fleet_agent_config_init(cfg);
    assert_int_equal(fleet_agent_config_set(cfg, "id", r->id), FLEET_AGENT_OK);
    assert_int_equal(fleet_agent_config_set(cfg, "broker", broker.url), FLEET_AGENT_OK);
    assert_int_equal(fleet_agent_config_set(cfg, "password", FLEETCTL_BROKER_SECRET),
                     FLEET_AGENT_OK);
    assert_int_equal(fleet_agent_config_set(cfg, "prefix", PREFIX), FLEET_AGENT_OK);
    assert_int_equal(fleet_agent_config_set(cfg, "cache", r->cache), FLEET_AGENT_OK);
    assert_int_equal(fleet_agent_config_set(cfg, "heartbeat_ms", "100"), FLEET_AGENT_OK);
    assert_int_equal(fleet_agent_config_set(cfg, "queue", queue), FLEET_AGENT_OK);
    assert_int_equal(
        fleet_agent_config_set(cfg, "log_level", getenv("FLEET_TEST_LOG") ? "debug" : "error"),
        FLEET_AGENT_OK);
}

static void start_agent_queue(running_agent *r, const char *queue)
{
    fleet_agent_config cfg;
    agent_config(r, &cfg, queue);
    if (fleet_agent_create(&cfg, &r->agent) != FLEET_AGENT_OK)
        fail_msg("agent %s: %s", r->id, fleet_agent_last_error());
    assert_int_equal(pthread_create(&r->thread, NULL, run_agent, r), 0);
    r->started = true;
}

static void start_agent(running_agent *r)
{
    start_agent_queue(r, "64");
}

static void stop_agent(running_agent *r)
{
    if (r->started) {
        fleet_agent_stop(r->agent);
        pthread_join(r->thread, NULL);
        r->started = false;
        assert_int_equal(r->run_status, FLEET_AGENT_OK);
    }
    fleet_agent_destroy(r->agent);
    r->agent = NULL;
}

/* The wire contract spelled out by hand (docs/PROTOCOL.md), not through fleet_topic_build. */
static void topic_of(char *out, size_t size, const char *kind, const char *id)
{
    snprintf(out, size, PREFIX "/%s/%s/%s", strcmp(kind, "request") == 0 ? "stream" : "agent", id,
             kind);
}

/* ---- waiting for messages ------------------------------------------------------------------ */

/* The next message on topic (others are skipped), or a test failure after timeout_ms. */
static fleet_link_message *await(const char *topic, int timeout_ms)
{
    double until = fleet_link_now_us() + 1e3 * timeout_ms;
    while (fleet_link_now_us() < until) {
        fleet_link_message *m = NULL;
        if (fleet_link_receive(coord, 20, &m) != FLEET_LINK_OK)
            continue;
        if (strcmp(m->topic, topic) == 0)
            return m;
        fleet_link_message_free(m);
    }
    fail_msg("nothing on %s within %d ms", topic, timeout_ms);
    return NULL;
}

/* The next state message of agent id, alive or dead as asked (others are skipped). */
static fleet_msg_agent_state await_state(const char *id, bool alive, size_t models)
{
    char topic[128];
    topic_of(topic, sizeof topic, "state", id);
    double until = fleet_link_now_us() + 1e3 * WAIT_MS;
    while (fleet_link_now_us() < until) {
        fleet_link_message *m = await(topic, WAIT_MS);
        fleet_msg_agent_state s;
        assert_int_equal(fleet_msg_agent_state_decode(m->payload, m->len, &s), FLEET_TOPICS_OK);
        assert_true(m->retained || m->qos == 1);
        fleet_link_message_free(m);
        if (s.alive == alive && (!alive || s.birth.n_models == models))
            return s;
    }
    fail_msg("no %s of %s with %zu models", alive ? "birth" : "death", id, models);
    return (fleet_msg_agent_state){0};
}

typedef bool (*heartbeat_test)(const fleet_msg_heartbeat *h, const void *want);

/* The first heartbeat of id for which ok(h, want) holds. */
static fleet_msg_heartbeat await_heartbeat(const char *id, heartbeat_test ok, const void *want)
{
    char topic[128];
    topic_of(topic, sizeof topic, "heartbeat", id);
    fleet_msg_heartbeat h;
    double until = fleet_link_now_us() + 1e3 * WAIT_MS;
    while (fleet_link_now_us() < until) {
        fleet_link_message *m = await(topic, WAIT_MS);
        assert_int_equal(fleet_msg_heartbeat_decode(m->payload, m->len, &h), FLEET_TOPICS_OK);
        fleet_link_message_free(m);
        if (ok(&h, want))
            return h;
    }
    fail_msg("no heartbeat of %s as expected (last: queue %u, processed %llu, expired %llu, "
             "full %llu, moved %llu, failed %llu)",
             id, h.queue, (unsigned long long)h.processed, (unsigned long long)h.dropped_expired,
             (unsigned long long)h.dropped_full, (unsigned long long)h.dropped_moved,
             (unsigned long long)h.failed);
    return h;
}

static bool heartbeat_equals(const fleet_msg_heartbeat *h, const void *want)
{
    const fleet_msg_heartbeat *w = want;
    return h->queue == w->queue && h->processed == w->processed &&
           h->dropped_expired == w->dropped_expired && h->dropped_full == w->dropped_full &&
           h->dropped_moved == w->dropped_moved && h->failed == w->failed;
}

/* The next model_get of agent id, on its own topic (other agents' requests are skipped). */
static fleet_msg_model_get await_model_get(const char *id)
{
    char topic[128];
    topic_of(topic, sizeof topic, "model-get", id);
    fleet_link_message *m = await(topic, WAIT_MS);
    fleet_msg_model_get g;
    assert_int_equal(fleet_msg_model_get_decode(m->payload, m->len, &g), FLEET_TOPICS_OK);
    fleet_link_message_free(m);
    assert_string_equal(g.agent, id);
    return g;
}

static fleet_msg_result await_result(const running_agent *r)
{
    char topic[160];
    snprintf(topic, sizeof topic, PREFIX "/stream/%s/result/%s", r->stream, r->id);
    fleet_link_message *m = await(topic, WAIT_MS);
    static uint8_t features[4096]; /* decoded features borrow the payload: keep a copy */
    fleet_msg_result res;
    assert_int_equal(fleet_msg_result_decode(m->payload, m->len, &res), FLEET_TOPICS_OK);
    if (res.output == FLEET_OUTPUT_INT8) {
        assert_true(res.features.size <= sizeof features);
        memcpy(features, res.features.data, res.features.size);
        res.features.data = features;
    }
    fleet_link_message_free(m);
    assert_string_equal(res.agent, r->id);
    assert_string_equal(res.stream, r->stream);
    return res;
}

typedef union heard_msg {
    fleet_msg_agent_state state;
    fleet_msg_heartbeat beat;
} heard_msg;

/* What the coordinator's link heard next from agent id on its state or heartbeat topic: 's' a
 * birth, 'd' a death, 'h' a heartbeat (*out filled), 0 nothing by `until` (monotonic us). */
static char next_of_agent(const char *id, double until, heard_msg *out)
{
    char state[128], beat[128];
    topic_of(state, sizeof state, "state", id);
    topic_of(beat, sizeof beat, "heartbeat", id);
    while (fleet_link_now_us() < until) {
        fleet_link_message *m = NULL;
        if (fleet_link_receive(coord, 20, &m) != FLEET_LINK_OK)
            continue;
        char kind = 0;
        if (strcmp(m->topic, state) == 0) {
            assert_int_equal(fleet_msg_agent_state_decode(m->payload, m->len, &out->state),
                             FLEET_TOPICS_OK);
            kind = out->state.alive ? 's' : 'd';
        } else if (strcmp(m->topic, beat) == 0) {
            assert_int_equal(fleet_msg_heartbeat_decode(m->payload, m->len, &out->beat),
                             FLEET_TOPICS_OK);
            kind = 'h';
        }
        fleet_link_message_free(m);
        if (kind)
            return kind;
    }
    return 0;
}

/* The birth of a new session of id first, then n heartbeats of that session with rising seq. */
static void await_birth_then_beats(const char *id, int n)
{
    heard_msg got;
    double until = fleet_link_now_us() + 1e3 * WAIT_MS;
    if (next_of_agent(id, until, &got) != 's')
        fail_msg("the first thing %s said was not its birth", id);
    uint64_t bdseq = got.state.birth.bdseq, seq = 0;
    for (int i = 0; i < n; i++) {
        char kind = next_of_agent(id, until, &got);
        if (kind != 'h')
            fail_msg("%d heartbeat(s) of %s within %d ms, then '%c'", i, id, WAIT_MS,
                     kind ? kind : '-');
        assert_int_equal(got.beat.bdseq, bdseq);
        assert_true(got.beat.seq > seq);
        seq = got.beat.seq;
    }
}

/* The death of id comes, and no heartbeat after it (within half a second). */
static void await_death_then_silence(const char *id)
{
    heard_msg got;
    double until = fleet_link_now_us() + 1e3 * WAIT_MS;
    char kind;
    while ((kind = next_of_agent(id, until, &got)) == 'h') /* sent before the death */
        ;
    if (kind != 'd')
        fail_msg("no death of %s ('%c')", id, kind ? kind : '-');
    kind = next_of_agent(id, fleet_link_now_us() + 5e5, &got);
    if (kind)
        fail_msg("'%c' from %s after its death", kind, id);
}

/* Polls the agent's own counters until bad_messages reaches want. */
static void await_bad_messages(fleet_agent *a, uint64_t want)
{
    fleet_agent_stats s;
    double until = fleet_link_now_us() + 1e3 * WAIT_MS;
    do {
        fleet_link_message *m = NULL; /* keep the coordinator's queue short meanwhile */
        if (fleet_link_receive(coord, 10, &m) == FLEET_LINK_OK)
            fleet_link_message_free(m);
        fleet_agent_get_stats(a, &s);
    } while (s.bad_messages < want && fleet_link_now_us() < until);
    assert_int_equal(s.bad_messages, want);
}

/* ---- acting as the coordinator and as a client --------------------------------------------- */

static void publish(const char *topic, uint8_t *buf, size_t len, int qos, int retained,
                    const fleet_link_props *props)
{
    assert_int_equal(fleet_link_publish(coord, topic, buf, len, qos, retained, props),
                     FLEET_LINK_OK);
    free(buf);
}

static fleet_assigned_variant variant_of(uint32_t index, const model_file *m,
                                         fleet_output_kind output, uint32_t k, float temperature)
{
    fleet_assigned_variant v = {.variant = index,
                                .model_bytes = m->size,
                                .output = output,
                                .k = k,
                                .temperature = temperature};
    strcpy(v.digest, m->digest);
    return v;
}

static uint32_t stream_deadline_ms; /* what assignments state as the stream's deadline */

static void assign_from(const char *coordinator, const char *agent, const char *stream,
                        uint64_t epoch, const fleet_assigned_variant *variants, size_t n)
{
    fleet_msg_assignment a;
    memset(&a, 0, sizeof a);
    strcpy(a.agent, agent), strcpy(a.coordinator, coordinator), strcpy(a.stream, stream);
    a.epoch = epoch;
    a.deadline_ms = stream_deadline_ms;
    a.n_variants = n;
    for (size_t i = 0; i < n; i++)
        a.variants[i] = variants[i];
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(fleet_msg_assignment_encode(&a, &buf, &len), FLEET_TOPICS_OK);
    char topic[128];
    topic_of(topic, sizeof topic, "assignment", a.agent);
    publish(topic, buf, len, 1, 1, NULL);
}

static void assign_to(const char *agent, const char *stream, uint64_t epoch,
                      const fleet_assigned_variant *variants, size_t n)
{
    assign_from("test", agent, stream, epoch, variants, n);
}

static void assign(const running_agent *r, uint64_t epoch, const fleet_assigned_variant *variants,
                   size_t n)
{
    assign_to(r->id, r->stream, epoch, variants, n);
}

/* Sends the given chunks of m (n_chunks in all) in the given order; flips a byte of chunk
 * `corrupt` (-1: none). */
static void send_chunks(const running_agent *r, const model_file *m, uint32_t n_chunks,
                        const uint32_t *order, size_t n_order, int corrupt)
{
    size_t step = (m->size + n_chunks - 1) / n_chunks;
    char topic[128];
    topic_of(topic, sizeof topic, "chunk", r->id);
    for (size_t i = 0; i < n_order; i++) {
        uint32_t index = order[i];
        size_t at = index * step, size = at + step <= m->size ? step : m->size - at;
        uint8_t *copy = malloc(size);
        memcpy(copy, m->bytes + at, size);
        if ((int)index == corrupt)
            copy[size / 2] ^= 0x40;
        fleet_msg_chunk c = {
            .index = index, .chunks = n_chunks, .total_bytes = m->size, .data = copy, .size = size};
        strcpy(c.digest, m->digest);
        uint8_t *buf = NULL;
        size_t len = 0;
        assert_int_equal(fleet_msg_chunk_encode(&c, &buf, &len), FLEET_TOPICS_OK);
        publish(topic, buf, len, 1, 0, NULL);
        free(copy);
    }
}

static void send_all_chunks(const running_agent *r, const model_file *m, int corrupt)
{
    static const uint32_t in_order[] = {0, 1, 2};
    send_chunks(r, m, 3, in_order, 3, corrupt);
}

static void send_tensor(const running_agent *r, const char *id, uint32_t deadline_ms,
                        const fleet_tensor *t, const fleet_link_props *props)
{
    fleet_msg_request q;
    memset(&q, 0, sizeof q);
    snprintf(q.id, sizeof q.id, "%s", id);
    snprintf(q.stream, sizeof q.stream, "%s", r->stream);
    q.deadline_ms = deadline_ms;
    q.tensor = *t;
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(fleet_msg_request_encode(&q, &buf, &len), FLEET_TOPICS_OK);
    char topic[128];
    topic_of(topic, sizeof topic, "request", r->stream);
    publish(topic, buf, len, 0, 0, props);
}

static fleet_tensor f32_tensor(const float *values, uint32_t count)
{
    return (fleet_tensor){.dtype = FLEET_DTYPE_F32,
                          .scale = 1,
                          .shape = {1, 1, count / 28, 28},
                          .rank = 4,
                          .data = (const uint8_t *)values,
                          .size = count * sizeof(float)};
}

static void send_request(const running_agent *r, const char *id, uint32_t deadline_ms)
{
    fleet_tensor t = f32_tensor(pixels, 784);
    send_tensor(r, id, deadline_ms, &t, NULL);
}

/* Fetches tiny as variant 0 of an assignment and waits until the agent serves it. */
static void make_ready(const running_agent *r, uint64_t epoch)
{
    fleet_assigned_variant v = variant_of(0, &tiny, FLEET_OUTPUT_TOPK, 3, 1.0f);
    assign(r, epoch, &v, 1);
    fleet_msg_model_get g = await_model_get(r->id);
    assert_string_equal(g.digest, tiny.digest);
    send_all_chunks(r, &tiny, -1);
    await_state(r->id, true, 1);
}

/* ---- the model, run here ------------------------------------------------------------------- */

/* Runs m on input; logits (and features when not NULL) receive its outputs. */
static void run_here(const model_file *m, const float *input, float *logits, float *features)
{
    fleet_model *model = NULL;
    assert_int_equal(fleet_model_load_buffer(m->bytes, m->size, NULL, &model), FLEET_MODEL_OK);
    float scratch[64];
    const float *ins[1] = {input};
    float *outs[2] = {logits, features ? features : scratch};
    assert_int_equal(fleet_model_run(model, ins, outs), FLEET_MODEL_OK);
    fleet_model_destroy(model);
}

static void expect_topk(const fleet_msg_result *r, const float *input, size_t k, float temperature)
{
    float logits[10];
    fleet_ensemble_score top[10];
    run_here(&tiny, input, logits, NULL);
    fleet_ensemble_softmax(logits, 10, temperature);
    assert_int_equal(fleet_ensemble_topk(logits, 10, k, top), k);
    assert_int_equal(r->output, FLEET_OUTPUT_TOPK);
    assert_int_equal(r->k, k);
    for (size_t i = 0; i < k; i++) {
        assert_int_equal(r->classes[i], top[i].cls);
        assert_float_equal(r->probs[i], top[i].prob, 1e-6f);
    }
}

/* ---- configuration ------------------------------------------------------------------------- */

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_config_file(void **state)
{
    (void)state;
    char conf[128], secret[128], text[4096];
    snprintf(conf, sizeof conf, "%s/agent.conf", root);
    snprintf(secret, sizeof secret, "%s/agent.secret", root);
    write_file(secret, "s3cret\n");
    snprintf(text, sizeof text,
             "# a gateway\n"
             "\n"
             "id = gw-42\n"
             "  broker =   tcp://broker.example:1884   \n"
             "user = gw-42-user\n"
             "password_file = %s\n"
             "prefix = fleet/plant-a   # a trailing comment\n"
             "cache = /var/tmp/gw-42\n"
             "threads = 2\n"
             "queue = 16\n"
             "heartbeat_ms = 250\n"
             "log_level = debug\n",
             secret);
    write_file(conf, text);
    fleet_agent_config cfg;
    fleet_agent_config_init(&cfg);
    assert_string_equal(cfg.prefix, "fleet/default");
    assert_int_equal(cfg.queue, 64);
    assert_int_equal(cfg.heartbeat_ms, 1000);
    assert_int_equal(cfg.log_level, 2);
    assert_int_equal(fleet_agent_config_load(conf, &cfg), FLEET_AGENT_OK);
    assert_string_equal(cfg.id, "gw-42");
    assert_string_equal(cfg.broker, "tcp://broker.example:1884");
    assert_string_equal(cfg.user, "gw-42-user");
    assert_string_equal(cfg.password, "s3cret");
    assert_string_equal(cfg.prefix, "fleet/plant-a");
    assert_string_equal(cfg.cache, "/var/tmp/gw-42");
    assert_int_equal(cfg.threads, 2);
    assert_int_equal(cfg.queue, 16);
    assert_int_equal(cfg.heartbeat_ms, 250);
    assert_int_equal(cfg.log_level, 3);
    /* The committed example is a valid configuration (given its secret file). */
    size_t n = 0;
    char *example = (char *)slurp("agent/fleet-agent.conf.example", &n);
    assert_non_null(example);
    example[n] = '\0';
    char *at = strstr(example, "/etc/fleetinfer/agent.secret");
    assert_non_null(at);
    snprintf(text, sizeof text, "%.*s%s%s", (int)(at - example), example, secret,
             at + strlen("/etc/fleetinfer/agent.secret"));
    free(example);
    write_file(conf, text);
    fleet_agent_config_init(&cfg);
    assert_int_equal(fleet_agent_config_load(conf, &cfg), FLEET_AGENT_OK);
    assert_string_equal(cfg.id, "gw-01");
    assert_string_equal(cfg.password, "s3cret");
}

static void expect_load_error(const char *text, const char *needle)
{
    char conf[128];
    snprintf(conf, sizeof conf, "%s/bad.conf", root);
    write_file(conf, text);
    fleet_agent_config cfg;
    fleet_agent_config_init(&cfg);
    assert_int_equal(fleet_agent_config_load(conf, &cfg), FLEET_AGENT_EINVAL);
    if (!strstr(fleet_agent_last_error(), needle))
        fail_msg("'%s' does not mention '%s'", fleet_agent_last_error(), needle);
}

static void test_config_errors(void **state)
{
    (void)state;
    expect_load_error("id = a\ncolour = blue\n", "bad.conf:2: unknown key 'colour'");
    expect_load_error("# c\n\nthreads = many\n", "bad.conf:3: bad value 'many' for 'threads'");
    expect_load_error("queue = 0\n", "bad.conf:1");
    expect_load_error("queue = -5\n", "bad.conf:1");
    expect_load_error("heartbeat_ms = 5\n", "bad.conf:1");
    expect_load_error("log_level = loud\n", "bad.conf:1");
    expect_load_error("id\n", "bad.conf:1: expected 'key = value'");
    expect_load_error("password_file = /nonexistent/secret\n", "bad.conf:1");
    char id[80];
    memset(id, 'x', sizeof id - 1);
    id[sizeof id - 1] = '\0';
    fleet_agent_config cfg;
    fleet_agent_config_init(&cfg);
    assert_int_equal(fleet_agent_config_set(&cfg, "id", id), FLEET_AGENT_EINVAL);
    assert_int_equal(fleet_agent_config_set(&cfg, "threads", "65"), FLEET_AGENT_EINVAL);
    assert_int_equal(fleet_agent_config_set(&cfg, "queue", "12x"), FLEET_AGENT_EINVAL);
    assert_int_equal(fleet_agent_config_load("/nonexistent/agent.conf", &cfg), FLEET_AGENT_EINVAL);
    assert_non_null(strstr(fleet_agent_last_error(), "/nonexistent/agent.conf"));
}

static void test_create_errors(void **state)
{
    (void)state;
    running_agent r = {.id = "gw-9"};
    fleet_agent_config cfg;
    fleet_agent *none = NULL;
    fleet_agent_config_init(&cfg);
    assert_int_equal(fleet_agent_create(&cfg, &none), FLEET_AGENT_EINVAL); /* no id */
    agent_config(&r, &cfg, "8");
    snprintf(cfg.id, sizeof cfg.id, "gw/9");
    assert_int_equal(fleet_agent_create(&cfg, &none), FLEET_AGENT_EINVAL);
    char file[128];
    agent_config(&r, &cfg, "8");
    snprintf(file, sizeof file, "%s/plain-file", root);
    write_file(file, "x");
    snprintf(cfg.cache, sizeof cfg.cache, "%s/plain-file/cache", root);
    assert_int_equal(fleet_agent_create(&cfg, &none), FLEET_AGENT_ESYSERR);
    agent_config(&r, &cfg, "8");
    snprintf(cfg.broker, sizeof cfg.broker, "tcp://127.0.0.1:1"); /* nothing listens */
    assert_int_equal(fleet_agent_create(&cfg, &none), FLEET_AGENT_ELINK);
    agent_config(&r, &cfg, "8");
    snprintf(cfg.password, sizeof cfg.password, "wrong");
    assert_int_equal(fleet_agent_create(&cfg, &none), FLEET_AGENT_ELINK);
    assert_null(none);
    fleet_agent_destroy(NULL);
    fleet_agent_stop(NULL);
}

/* ---- the agent's life ---------------------------------------------------------------------- */

/* Birth, a damaged download refused and fetched again, results equal to a local run for f32
 * and u8 tensors, a tensor of the wrong size failed and unanswered. */
static void test_fetch_verify_serve(void **state)
{
    (void)state;
    running_agent r = {.id = "gw-1"};
    start_agent(&r);
    fleet_msg_agent_state s = await_state(r.id, true, 0);
    assert_int_equal(s.birth.bdseq, 1);
    assert_true(s.birth.cores >= 1 && s.birth.memory_mb > 0);
    assert_string_equal(s.birth.runtime, "fleetinfer 0.1.0");
    assert_true(strlen(s.birth.cpu) > 0 && s.birth.time_ms > 0);

    fleet_assigned_variant v = variant_of(3, &tiny, FLEET_OUTPUT_TOPK, 3, 1.5f);
    assign(&r, 10, &v, 1);
    fleet_msg_model_get g = await_model_get(r.id);
    assert_string_equal(g.digest, tiny.digest);
    assert_int_equal(g.first, 0);
    static const uint32_t shuffled[] = {2, 0, 1}; /* out of order, and one chunk damaged */
    send_chunks(&r, &tiny, 3, shuffled, 3, 1);
    g = await_model_get(r.id); /* refused at once, asked for again */
    assert_int_equal(g.first, 0);
    send_all_chunks(&r, &tiny, -1);
    s = await_state(r.id, true, 1);
    assert_string_equal(s.birth.models[0].digest, tiny.digest);
    assert_true(s.birth.models[0].latency_us > 0);
    char path[256];
    snprintf(path, sizeof path, "%s/%s.onnx", r.cache, tiny.digest);
    assert_int_equal(access(path, R_OK), 0);
    snprintf(path, sizeof path, "%s/%s.part", r.cache, tiny.digest);
    assert_int_not_equal(access(path, F_OK), 0);

    send_request(&r, "f32", 5000);
    fleet_msg_result res = await_result(&r);
    assert_string_equal(res.id, "f32");
    assert_int_equal(res.variant, 3);
    assert_int_equal(res.epoch, 10);
    assert_true(res.infer_us < 1000000);
    expect_topk(&res, pixels, 3, 1.5f);

    uint8_t q[784];
    float dequantized[784];
    for (int i = 0; i < 784; i++) {
        q[i] = (uint8_t)lrintf(pixels[i] * 200.0f);
        dequantized[i] = 0.005f * (float)((int32_t)q[i] - 3);
    }
    fleet_tensor t = {.dtype = FLEET_DTYPE_U8,
                      .scale = 0.005f,
                      .zero_point = 3,
                      .shape = {1, 1, 28, 28},
                      .rank = 4,
                      .data = q,
                      .size = 784};
    send_tensor(&r, "u8", 5000, &t, NULL);
    res = await_result(&r);
    assert_string_equal(res.id, "u8");
    expect_topk(&res, dequantized, 3, 1.5f);

    t = f32_tensor(pixels, 392); /* half an image */
    send_tensor(&r, "half", 5000, &t, NULL);
    send_request(&r, "after", 5000);
    res = await_result(&r); /* the worker is FIFO: nothing came for "half" */
    assert_string_equal(res.id, "after");
    fleet_msg_heartbeat want = {.processed = 3, .failed = 1};
    await_heartbeat(r.id, heartbeat_equals, &want);
    stop_agent(&r);
}

/* Chunks that never arrive are asked for again, and only those. */
static void test_missing_chunks_refetched(void **state)
{
    (void)state;
    running_agent r = {.id = "gw-2"};
    start_agent(&r);
    await_state(r.id, true, 0);
    fleet_assigned_variant v = variant_of(0, &tiny, FLEET_OUTPUT_TOPK, 2, 1.0f);
    assign(&r, 1, &v, 1);
    await_model_get(r.id);
    static const uint32_t some[] = {0, 3};
    send_chunks(&r, &tiny, 4, some, 2, -1);
    fleet_msg_model_get g = await_model_get(r.id); /* after 2 s without progress */
    assert_int_equal(g.first, 1);
    assert_int_equal(g.count, 2);
    static const uint32_t rest[] = {2, 1};
    send_chunks(&r, &tiny, 4, rest, 2, -1);
    await_state(r.id, true, 1);
    send_request(&r, "q", 5000);
    fleet_msg_result res = await_result(&r);
    expect_topk(&res, pixels, 2, 1.0f);
    stop_agent(&r);
}

/* An assignment with a lower epoch changes nothing; one for another agent is refused. */
static void test_stale_epoch_ignored(void **state)
{
    (void)state;
    running_agent r = {.id = "gw-3"};
    start_agent(&r);
    await_state(r.id, true, 0);
    make_ready(&r, 10);
    assign(&r, 9, NULL, 0); /* stale: would stand the agent by */
    assign_to(r.id, "elsewhere", 9, NULL, 0);
    fleet_msg_assignment other; /* an assignment naming another agent, on this agent's topic */
    memset(&other, 0, sizeof other);
    strcpy(other.agent, "gw-4"), strcpy(other.coordinator, "test"), strcpy(other.stream, "x");
    other.epoch = 99;
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(fleet_msg_assignment_encode(&other, &buf, &len), FLEET_TOPICS_OK);
    uint8_t *misaddressed = malloc(len);
    memcpy(misaddressed, buf, len);
    size_t misaddressed_len = len;
    publish(PREFIX "/agent/gw-3/assignment", buf, len, 1, 0, NULL);
    await_bad_messages(r.agent, 1); /* processed in order: the stale ones came first */
    fleet_agent_stats st;
    fleet_agent_get_stats(r.agent, &st);
    assert_int_equal(st.epoch, 10);
    assert_int_equal(st.variants_ready, 1);
    send_request(&r, "q", 5000);
    fleet_msg_result res = await_result(&r);
    assert_int_equal(res.epoch, 10);
    /* A newer epoch with no variants stands it by: no more results. */
    assign(&r, 11, NULL, 0);
    await_state(r.id, true, 0);
    fleet_agent_get_stats(r.agent, &st);
    assert_int_equal(st.epoch, 11);
    assert_int_equal(st.variants_assigned, 0);

    /* Epochs are fleet-wide: another coordinator's assignment is followed when its epoch is
     * higher (it took the agent over), ignored when lower (a coordinator late to learn). */
    fleet_assigned_variant v = variant_of(0, &tiny, FLEET_OUTPUT_TOPK, 3, 1.0f);
    assign_from("other", r.id, r.stream, 12, &v, 1);
    await_state(r.id, true, 1); /* the model was cached: ready at once */
    send_request(&r, "taken-over", 5000);
    res = await_result(&r);
    assert_int_equal(res.epoch, 12);
    assign_from("late", r.id, r.stream, 11, NULL, 0);
    publish(PREFIX "/agent/gw-3/assignment", misaddressed, misaddressed_len, 1, 0, NULL);
    await_bad_messages(r.agent, 2);
    fleet_agent_get_stats(r.agent, &st);
    assert_int_equal(st.epoch, 12);
    assert_int_equal(st.variants_ready, 1);
    stop_agent(&r);
}

/* Garbage on every topic the agent listens to is counted and never fatal. */
static void test_garbage_everywhere(void **state)
{
    (void)state;
    running_agent r = {.id = "gw-4"};
    start_agent(&r);
    await_state(r.id, true, 0);
    make_ready(&r, 1);
    const char *topics[] = {PREFIX "/agent/gw-4/assignment", PREFIX "/agent/gw-4/chunk",
                            PREFIX "/stream/s-gw-4/request", PREFIX "/coordinator/c1/state"};
    size_t n_garbage = TEST_N_GARBAGE;
    for (size_t t = 0; t < 4; t++)
        for (size_t i = 0; i < n_garbage; i++)
            assert_int_equal(fleet_link_publish(coord, topics[t], TEST_GARBAGE[i].bytes,
                                                TEST_GARBAGE[i].len, 1, 0, NULL),
                             FLEET_LINK_OK);
    /* The empty one on a retained topic (assignment, coordinator state) removes a retained
     * message: no garbage (docs/PROTOCOL.md). */
    await_bad_messages(r.agent, 4 * n_garbage - 2);
    send_request(&r, "still-alive", 5000);
    fleet_msg_result res = await_result(&r);
    assert_string_equal(res.id, "still-alive");
    stop_agent(&r);
}

/* A full queue drops its oldest requests; requests past their deadline are dropped; both are
 * counted in the heartbeat. The worker is held so that the queue fills deterministically. */
static void test_queue_full_and_expired(void **state)
{
    (void)state;
    running_agent r = {.id = "gw-5"};
    start_agent_queue(&r, "8");
    await_state(r.id, true, 0);
    make_ready(&r, 1);

    agent_queue_hold(r.agent, true);
    for (int i = 0; i < 10; i++) {
        char id[16];
        snprintf(id, sizeof id, "r%d", i);
        send_request(&r, id, 60000);
    }
    fleet_msg_heartbeat want = {.queue = 8, .dropped_full = 2};
    await_heartbeat(r.id, heartbeat_equals, &want);
    agent_queue_hold(r.agent, false);
    for (int i = 2; i < 10; i++) { /* r0 and r1, the oldest, made room */
        char id[16];
        snprintf(id, sizeof id, "r%d", i);
        fleet_msg_result res = await_result(&r);
        assert_string_equal(res.id, id);
    }

    agent_queue_hold(r.agent, true);
    send_request(&r, "short-1", 1); /* 1 ms */
    send_request(&r, "short-2", 1);
    fleet_link_props expiry = {.expiry_s = 1}; /* MQTT expiry wins over deadline_ms */
    fleet_tensor t = f32_tensor(pixels, 784);
    send_tensor(&r, "mqtt-expiry", 60000, &t, &expiry);
    send_request(&r, "default", 0); /* no deadline: 1 s */
    send_request(&r, "keep", 60000);
    want = (fleet_msg_heartbeat){.queue = 5, .processed = 8, .dropped_full = 2};
    await_heartbeat(r.id, heartbeat_equals, &want);
    /* Every request has arrived (the heartbeat counted them); let 1 s pass. */
    double until = fleet_link_now_us() + 1.05e6;
    while (fleet_link_now_us() < until) {
        fleet_link_message *m = NULL;
        if (fleet_link_receive(coord, 20, &m) == FLEET_LINK_OK)
            fleet_link_message_free(m);
    }
    agent_queue_hold(r.agent, false);
    fleet_msg_result res = await_result(&r);
    assert_string_equal(res.id, "keep");
    want = (fleet_msg_heartbeat){.processed = 9, .dropped_expired = 4, .dropped_full = 2};
    await_heartbeat(r.id, heartbeat_equals, &want);

    /* The stream's own default, from the assignment, replaces the 1 s. */
    agent_queue_hold(r.agent, true);
    stream_deadline_ms = 60000;
    fleet_assigned_variant v = variant_of(0, &tiny, FLEET_OUTPUT_TOPK, 3, 1.0f);
    assign(&r, 2, &v, 1);
    stream_deadline_ms = 0;
    send_request(&r, "stream-default", 0);
    want =
        (fleet_msg_heartbeat){.queue = 1, .processed = 9, .dropped_expired = 4, .dropped_full = 2};
    await_heartbeat(r.id, heartbeat_equals, &want);
    until = fleet_link_now_us() + 1.05e6;
    while (fleet_link_now_us() < until) {
        fleet_link_message *m = NULL;
        if (fleet_link_receive(coord, 20, &m) == FLEET_LINK_OK)
            fleet_link_message_free(m);
    }
    agent_queue_hold(r.agent, false);
    res = await_result(&r);
    assert_string_equal(res.id, "stream-default");

    /* Requests still queued when an assignment moves the agent to another stream are dropped
     * and counted as moved. */
    agent_queue_hold(r.agent, true);
    send_request(&r, "left-behind-1", 60000);
    send_request(&r, "left-behind-2", 60000);
    want =
        (fleet_msg_heartbeat){.queue = 2, .processed = 10, .dropped_expired = 4, .dropped_full = 2};
    await_heartbeat(r.id, heartbeat_equals, &want);
    assign_to(r.id, "elsewhere", 3, &v, 1);
    double until_moved = fleet_link_now_us() + 1e3 * WAIT_MS;
    for (fleet_agent_stats st = {0}; st.epoch != 3;) {
        fleet_agent_get_stats(r.agent, &st);
        if (fleet_link_now_us() > until_moved)
            fail_msg("gw-5 never took the assignment to stream 'elsewhere'");
        struct timespec pause = {0, 10000000};
        nanosleep(&pause, NULL);
    }
    agent_queue_hold(r.agent, false);
    want = (fleet_msg_heartbeat){
        .processed = 10, .dropped_expired = 4, .dropped_full = 2, .dropped_moved = 2};
    await_heartbeat(r.id, heartbeat_equals, &want);
    stop_agent(&r);
}

/* Models found in the cache are verified (a damaged one is removed and fetched), loaded
 * without a download; an INT8 variant publishes its quantized features. */
static void test_cache_and_int8(void **state)
{
    (void)state;
    running_agent r = {.id = "gw-6"};
    char path[256];
    snprintf(r.cache, sizeof r.cache, "%s/cache-%s", root, r.id);
    assert_int_equal(mkdir(r.cache, 0700), 0);
    snprintf(path, sizeof path, "%s/%s.onnx", r.cache, variant0.digest);
    FILE *f = fopen(path, "wb");
    assert_int_equal(fwrite(variant0.bytes, 1, variant0.size, f), variant0.size);
    fclose(f);
    snprintf(path, sizeof path, "%s/%s.onnx", r.cache, tiny.digest);
    write_file(path, "not the model it claims to be");
    start_agent(&r);
    await_state(r.id, true, 0);

    fleet_assigned_variant v[2] = {variant_of(0, &tiny, FLEET_OUTPUT_TOPK, 0, 1.0f),
                                   variant_of(1, &variant0, FLEET_OUTPUT_INT8, 0, 1.0f)};
    assign(&r, 20, v, 2);
    fleet_msg_model_get g = await_model_get(r.id); /* tiny's cached copy was damaged */
    assert_string_equal(g.digest, tiny.digest);
    fleet_msg_agent_state s = await_state(r.id, true, 1); /* variant0 from the cache */
    assert_string_equal(s.birth.models[0].digest, variant0.digest);
    send_all_chunks(&r, &tiny, -1);
    await_state(r.id, true, 2);

    send_request(&r, "both", 5000);
    for (int i = 0; i < 2; i++) {
        fleet_msg_result res = await_result(&r);
        assert_string_equal(res.id, "both");
        if (res.variant == 0) {
            expect_topk(&res, pixels, 10, 1.0f); /* k 0: every class */
            continue;
        }
        assert_int_equal(res.variant, 1);
        assert_int_equal(res.output, FLEET_OUTPUT_INT8);
        assert_int_equal(res.features.dtype, FLEET_DTYPE_I8);
        assert_int_equal(res.features.size, 48);
        float logits[10], features[48], got[48];
        run_here(&variant0, pixels, logits, features);
        fleet_model_qparams q = {res.features.scale, res.features.zero_point};
        fleet_model_dequantize_int8((const int8_t *)res.features.data, 48, q, got);
        for (int k = 0; k < 48; k++)
            assert_float_equal(got[k], features[k], q.scale * 0.5f + 1e-5f);
    }
    stop_agent(&r);
}

/* When the broker drops the session (here: another client takes the id over), the broker
 * publishes the will; the agent reconnects by itself and is born again. */
static void test_reconnect_rebirth(void **state)
{
    (void)state;
    running_agent r = {.id = "gw-7"};
    start_agent(&r);
    uint64_t bdseq = await_state(r.id, true, 0).birth.bdseq;
    fleet_link_options o;
    fleet_link_options_init(&o);
    o.url = broker.url;
    o.client_id = "gw-7";
    o.username = "gw-7";
    o.password = FLEETCTL_BROKER_SECRET;
    fleet_link *intruder = NULL;
    assert_int_equal(fleet_link_create(&o, &intruder), FLEET_LINK_OK);
    fleet_link_destroy(intruder);
    fleet_msg_agent_state s = await_state(r.id, false, 0); /* the will */
    assert_int_equal(s.death.bdseq, bdseq);
    s = await_state(r.id, true, 0);
    assert_int_equal(s.birth.bdseq, bdseq);
    fleet_agent_stats st;
    fleet_agent_get_stats(r.agent, &st);
    assert_true(st.reconnects >= 1);
    make_ready(&r, 1); /* subscriptions were renewed */
    send_request(&r, "q", 5000);
    assert_string_equal(await_result(&r).id, "q");
    stop_agent(&r);
}

/* A stop publishes the death with the birth's bdseq; a restart is born with the next one and
 * follows its retained assignment from the cache. */
static void test_stop_and_restart(void **state)
{
    (void)state;
    running_agent r = {.id = "gw-8"};
    start_agent(&r);
    assert_int_equal(await_state(r.id, true, 0).birth.bdseq, 1);
    make_ready(&r, 3);
    fleet_agent_stop(r.agent);
    pthread_join(r.thread, NULL);
    r.started = false;
    assert_int_equal(await_state(r.id, false, 0).death.bdseq, 1);
    fleet_agent_destroy(r.agent);

    start_agent(&r);
    assert_int_equal(await_state(r.id, true, 0).birth.bdseq, 2);
    fleet_msg_agent_state s = await_state(r.id, true, 1); /* the retained assignment */
    assert_int_equal(s.birth.bdseq, 2);
    send_request(&r, "again", 5000);
    fleet_msg_result res = await_result(&r);
    assert_int_equal(res.epoch, 3);
    fleet_agent_stop(r.agent); /* a stop before destroy, while the worker may be busy */
    pthread_join(r.thread, NULL);
    r.started = false;
    fleet_agent_destroy(r.agent);
    assert_int_equal(await_state(r.id, false, 0).death.bdseq, 2);

    /* Destroyed without ever running: it still says goodbye. */
    fleet_agent_config cfg;
    agent_config(&r, &cfg, "8");
    assert_int_equal(fleet_agent_create(&cfg, &r.agent), FLEET_AGENT_OK);
    assert_int_equal(await_state(r.id, true, 0).birth.bdseq, 3);
    fleet_agent_destroy(r.agent);
    assert_int_equal(await_state(r.id, false, 0).death.bdseq, 3);
}

/* Heartbeats come from their own thread: without fleet_agent_run (as when the main thread
 * loads and times a large model) they still come, after the birth; none follows the death,
 * whether fleet_agent_run or fleet_agent_destroy publishes it. */
static void test_heartbeats_without_main_loop(void **state)
{
    (void)state;
    running_agent r = {.id = "gw-10"};
    fleet_agent_config cfg;
    agent_config(&r, &cfg, "8"); /* heartbeat_ms 100 */
    assert_int_equal(fleet_agent_create(&cfg, &r.agent), FLEET_AGENT_OK);
    await_birth_then_beats(r.id, 3);
    assert_int_equal(pthread_create(&r.thread, NULL, run_agent, &r), 0);
    r.started = true;
    fleet_agent_stop(r.agent);
    pthread_join(r.thread, NULL);
    r.started = false;
    assert_int_equal(r.run_status, FLEET_AGENT_OK);
    await_death_then_silence(r.id);
    fleet_agent_destroy(r.agent);

    assert_int_equal(fleet_agent_create(&cfg, &r.agent), FLEET_AGENT_OK);
    await_birth_then_beats(r.id, 3);
    fleet_agent_destroy(r.agent);
    await_death_then_silence(r.id);
}

/* ---- the daemon ---------------------------------------------------------------------------- */

/* build/agent/fleet-agent next to build/tests/test_agent; NULL when it was not built. */
static const char *daemon_path(void)
{
    static char path[PATH_MAX];
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return NULL;
    self[n] = '\0';
    snprintf(path, sizeof path, "%s/../agent/fleet-agent", dirname(self));
    return access(path, X_OK) == 0 ? path : NULL;
}

static int exit_status(char *const argv[], const char *log)
{
    int status = 0;
    pid_t pid = test_spawn(argv, log, true);
    assert_true(pid > 0);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void test_daemon(void **state)
{
    (void)state;
    const char *bin = daemon_path();
    if (!bin)
        skip();
    char log[128], cache[128];
    snprintf(log, sizeof log, "%s/daemon.log", root);
    snprintf(cache, sizeof cache, "%s/cache-daemon", root);
    char *help[] = {(char *)bin, "--help", NULL};
    assert_int_equal(exit_status(help, log), 0);
    char *no_id[] = {(char *)bin, "--queue", "4", NULL};
    assert_int_equal(exit_status(no_id, log), 2);
    char *bad_flag[] = {(char *)bin, "--id", "gw-9", "--colour", "blue", NULL};
    assert_int_equal(exit_status(bad_flag, log), 2);
    char *no_broker[] = {(char *)bin,         "--id",    "gw-9", "--broker",
                         "tcp://127.0.0.1:1", "--cache", cache,  NULL};
    assert_int_equal(exit_status(no_broker, log), 1);

    char *run[] = {(char *)bin,
                   "--id",
                   "gw-9",
                   "--broker",
                   broker.url,
                   "--password",
                   FLEETCTL_BROKER_SECRET,
                   "--prefix",
                   PREFIX,
                   "--cache",
                   cache,
                   "--log-level",
                   "debug",
                   NULL};
    pid_t pid = test_spawn(run, log, true);
    uint64_t bdseq = await_state("gw-9", true, 0).birth.bdseq;
    assert_int_equal(kill(pid, SIGTERM), 0);
    assert_int_equal(await_state("gw-9", false, 0).death.bdseq, bdseq);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* An optional argument selects tests by name (cmocka patterns: '*' and '?'). */
int main(int argc, char **argv)
{
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_file),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_create_errors),
        cmocka_unit_test(test_fetch_verify_serve),
        cmocka_unit_test(test_missing_chunks_refetched),
        cmocka_unit_test(test_stale_epoch_ignored),
        cmocka_unit_test(test_garbage_everywhere),
        cmocka_unit_test(test_queue_full_and_expired),
        cmocka_unit_test(test_cache_and_int8),
        cmocka_unit_test(test_reconnect_rebirth),
        cmocka_unit_test(test_stop_and_restart),
        cmocka_unit_test(test_heartbeats_without_main_loop),
        cmocka_unit_test(test_daemon),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
