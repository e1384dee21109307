/* test_topics.c: every message round-trips; every decoder refuses bad payloads clearly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fleet_topics.h"

#include <msgpack.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char digest[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
static uint8_t pixels[784];

static fleet_msg_request sample_request(void)
{
    fleet_msg_request r;
    memset(&r, 0, sizeof r);
    strcpy(r.id, "req-1");
    strcpy(r.stream, "line-3");
    r.deadline_ms = 250;
    r.tensor = (fleet_tensor){.dtype = FLEET_DTYPE_U8,
                              .scale = 1.0f / 255,
                              .zero_point = 0,
                              .shape = {1, 1, 28, 28},
                              .rank = 4,
                              .data = pixels,
                              .size = 784};
    return r;
}

static fleet_msg_result sample_result(void)
{
    fleet_msg_result r;
    memset(&r, 0, sizeof r);
    strcpy(r.id, "req-1");
    strcpy(r.stream, "line-3");
    strcpy(r.agent, "gw-01");
    r.variant = 2;
    r.epoch = 99;
    r.infer_us = 321;
    r.k = 3;
    for (int i = 0; i < 3; i++) {
        r.classes[i] = (uint16_t)(7 - i);
        r.probs[i] = 0.5f / (float)(i + 1);
    }
    return r;
}

static fleet_msg_decision sample_decision(void)
{
    fleet_msg_decision d;
    memset(&d, 0, sizeof d);
    strcpy(d.id, "req-\"1\"");
    strcpy(d.stream, "line-3");
    strcpy(d.coordinator, "main");
    strcpy(d.rule, "vp-topk");
    d.cls = 7;
    d.confidence = 0.75f;
    d.k = 2;
    d.classes[0] = 7, d.probs[0] = 0.75f, d.classes[1] = 1, d.probs[1] = 0.25f;
    d.used[0] = 0, d.used[1] = 2, d.n_used = 2;
    d.missing[0] = 1, d.n_missing = 1;
    d.degraded = true;
    d.total_us = 1200, d.slowest_infer_us = 300, d.aggregate_us = 3;
    return d;
}

static void test_round_trips(void **state)
{
    (void)state;
    uint8_t *buf = NULL;
    size_t len = 0;
    fleet_msg_birth b = {.bdseq = 3, .cores = 4, .memory_mb = 2048, .time_ms = 1, .n_models = 1};
    strcpy(b.agent, "gw-01");
    strcpy(b.cpu, "aarch64 neon");
    strcpy(b.runtime, "fleetinfer 0.1.0");
    strcpy(b.models[0].digest, digest);
    b.models[0].latency_us = 250;
    assert_int_equal(fleet_msg_birth_encode(&b, &buf, &len), FLEET_TOPICS_OK);
    fleet_msg_agent_state s;
    assert_int_equal(fleet_msg_agent_state_decode(buf, len, &s), FLEET_TOPICS_OK);
    assert_true(s.alive);
    assert_memory_equal(&s.birth, &b, sizeof b);
    fleet_msg_death dead;
    assert_int_equal(fleet_msg_death_decode(buf, len, &dead), FLEET_TOPICS_EMALFORMED);
    free(buf);

    fleet_msg_request r = sample_request(), r2;
    assert_int_equal(fleet_msg_request_encode(&r, &buf, &len), FLEET_TOPICS_OK);
    assert_int_equal(fleet_msg_request_decode(buf, len, &r2), FLEET_TOPICS_OK);
    assert_string_equal(r2.id, "req-1");
    assert_int_equal(r2.tensor.rank, 4);
    assert_int_equal(r2.tensor.size, 784);
    assert_true(r2.tensor.data >= buf && r2.tensor.data + 784 <= buf + len); /* borrowed */
    free(buf);

    fleet_msg_result res = sample_result(), res2;
    assert_int_equal(fleet_msg_result_encode(&res, &buf, &len), FLEET_TOPICS_OK);
    assert_int_equal(fleet_msg_result_decode(buf, len, &res2), FLEET_TOPICS_OK);
    assert_memory_equal(&res, &res2, sizeof res);
    free(buf);

    fleet_msg_decision d = sample_decision(), d2;
    memset(d.id, 0, sizeof d.id);
    strcpy(d.id, "req-1");
    assert_int_equal(fleet_msg_decision_encode(&d, &buf, &len), FLEET_TOPICS_OK);
    assert_int_equal(fleet_msg_decision_decode(buf, len, &d2), FLEET_TOPICS_OK);
    assert_memory_equal(&d, &d2, sizeof d);
    free(buf);
    strcpy(d.error, "tensor of 729 elements; the stream's models take 784"); /* a refusal */
    d.cls = -1;
    assert_int_equal(fleet_msg_decision_encode(&d, &buf, &len), FLEET_TOPICS_OK);
    assert_int_equal(fleet_msg_decision_decode(buf, len, &d2), FLEET_TOPICS_OK);
    assert_memory_equal(&d, &d2, sizeof d);
    free(buf);

    fleet_msg_assignment a;
    memset(&a, 0, sizeof a);
    strcpy(a.agent, "gw-01"), strcpy(a.coordinator, "main"), strcpy(a.stream, "line-3");
    a.epoch = 12, a.n_variants = 1, a.deadline_ms = 2500;
    a.variants[0] =
        (fleet_assigned_variant){.variant = 3, .model_bytes = 1000, .k = 2, .temperature = 1.5f};
    strcpy(a.variants[0].digest, digest);
    fleet_msg_assignment a2;
    assert_int_equal(fleet_msg_assignment_encode(&a, &buf, &len), FLEET_TOPICS_OK);
    assert_int_equal(fleet_msg_assignment_decode(buf, len, &a2), FLEET_TOPICS_OK);
    assert_memory_equal(&a, &a2, sizeof a);
    free(buf);

    fleet_msg_chunk c = {.index = 1, .chunks = 2, .total_bytes = 20, .data = pixels, .size = 10},
                    c2;
    strcpy(c.digest, digest);
    assert_int_equal(fleet_msg_chunk_encode(&c, &buf, &len), FLEET_TOPICS_OK);
    assert_int_equal(fleet_msg_chunk_decode(buf, len, &c2), FLEET_TOPICS_OK);
    assert_int_equal(c2.size, 10);
    assert_int_equal(c2.total_bytes, 20);
    free(buf);

    fleet_msg_heartbeat h = {.bdseq = 2,
                             .seq = 7,
                             .load = 0.5f,
                             .queue = 3,
                             .latency_ewma_us = 90,
                             .processed = 100,
                             .dropped_expired = 1,
                             .dropped_full = 2,
                             .dropped_moved = 4,
                             .failed = 3,
                             .time_ms = 5},
                        h2;
    strcpy(h.agent, "gw-01");
    assert_int_equal(fleet_msg_heartbeat_encode(&h, &buf, &len), FLEET_TOPICS_OK);
    assert_int_equal(fleet_msg_heartbeat_decode(buf, len, &h2), FLEET_TOPICS_OK);
    assert_memory_equal(&h, &h2, sizeof h);
    free(buf);

    fleet_msg_model_get g = {.first = 2, .count = 5}, g2;
    strcpy(g.agent, "gw-01"), strcpy(g.digest, digest);
    assert_int_equal(fleet_msg_model_get_encode(&g, &buf, &len), FLEET_TOPICS_OK);
    assert_int_equal(fleet_msg_model_get_decode(buf, len, &g2), FLEET_TOPICS_OK);
    assert_memory_equal(&g, &g2, sizeof g);
    free(buf);

    fleet_msg_coordinator_state cs = {.online = true, .time_ms = 9}, cs2;
    strcpy(cs.coordinator, "main");
    assert_int_equal(fleet_msg_coordinator_state_encode(&cs, &buf, &len), FLEET_TOPICS_OK);
    assert_int_equal(fleet_msg_coordinator_state_decode(buf, len, &cs2), FLEET_TOPICS_OK);
    assert_memory_equal(&cs, &cs2, sizeof cs);
    free(buf);
    strcpy(cs.stream, "line-3"); /* optional: announced by coordinators since 2026-11-30 */
    assert_int_equal(fleet_msg_coordinator_state_encode(&cs, &buf, &len), FLEET_TOPICS_OK);
    assert_int_equal(fleet_msg_coordinator_state_decode(buf, len, &cs2), FLEET_TOPICS_OK);
    assert_memory_equal(&cs, &cs2, sizeof cs);
    free(buf);
    cs.online = false, cs.drained = true; /* optional: a coordinator that left on purpose */
    assert_int_equal(fleet_msg_coordinator_state_encode(&cs, &buf, &len), FLEET_TOPICS_OK);
    assert_int_equal(fleet_msg_coordinator_state_decode(buf, len, &cs2), FLEET_TOPICS_OK);
    assert_memory_equal(&cs, &cs2, sizeof cs);
    free(buf);
    cs.online = true, cs.backup = true; /* drained means nothing online: not sent */
    assert_int_equal(fleet_msg_coordinator_state_encode(&cs, &buf, &len), FLEET_TOPICS_OK);
    assert_int_equal(fleet_msg_coordinator_state_decode(buf, len, &cs2), FLEET_TOPICS_OK);
    assert_false(cs2.drained);
    assert_true(cs2.backup);
    free(buf);
    cs.online = false, cs.drained = false; /* backup means nothing offline: not sent */
    assert_int_equal(fleet_msg_coordinator_state_encode(&cs, &buf, &len), FLEET_TOPICS_OK);
    assert_int_equal(fleet_msg_coordinator_state_decode(buf, len, &cs2), FLEET_TOPICS_OK);
    assert_false(cs2.backup);
    free(buf);
    cs.backup = false;
    strcpy(cs.stream, "line/3"); /* not an id: would break topic names */
    assert_int_not_equal(fleet_msg_coordinator_state_encode(&cs, &buf, &len), FLEET_TOPICS_OK);
}

/* Writes a map of the given key/value pairs (values already packed by the callback). */
typedef void (*packer_fn)(msgpack_packer *pk);

static uint8_t *pack(packer_fn fn, size_t *len)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    fn(&pk);
    *len = sb.size;
    return (uint8_t *)sb.data;
}

static void key(msgpack_packer *pk, const char *k)
{
    msgpack_pack_str(pk, strlen(k));
    msgpack_pack_str_body(pk, k, strlen(k));
}

static void str(msgpack_packer *pk, const char *k, const char *v)
{
    key(pk, k);
    key(pk, v);
}

static void result_wrong_pair(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 6);
    key(pk, "v"), msgpack_pack_uint8(pk, 1);
    str(pk, "id", "r"), str(pk, "stream", "s"), str(pk, "agent", "a");
    key(pk, "variant"), msgpack_pack_uint8(pk, 0);
    key(pk, "topk"), msgpack_pack_array(pk, 1), msgpack_pack_array(pk, 3);
    msgpack_pack_uint8(pk, 1), msgpack_pack_float(pk, 0.5f), msgpack_pack_nil(pk);
}

static void result_negative_variant(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 6);
    key(pk, "v"), msgpack_pack_uint8(pk, 1);
    str(pk, "id", "r"), str(pk, "stream", "s"), str(pk, "agent", "a");
    key(pk, "variant"), msgpack_pack_int8(pk, -1);
    key(pk, "topk"), msgpack_pack_array(pk, 0);
}

static void result_future_version(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 1);
    key(pk, "v"), msgpack_pack_uint8(pk, FLEET_TOPICS_VERSION + 1);
}

static void result_slash_in_id(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 6);
    key(pk, "v"), msgpack_pack_uint8(pk, 1);
    str(pk, "id", "a/b"), str(pk, "stream", "s"), str(pk, "agent", "a");
    key(pk, "variant"), msgpack_pack_uint8(pk, 0);
    key(pk, "topk"), msgpack_pack_array(pk, 0);
}

static void result_with_extras(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 8);
    key(pk, "v"), msgpack_pack_uint8(pk, 1);
    str(pk, "id", "r"), str(pk, "stream", "s"), str(pk, "agent", "a");
    key(pk, "variant"), msgpack_pack_uint8(pk, 0);
    key(pk, "topk"), msgpack_pack_array(pk, 0);
    str(pk, "from_the_future", "ignored");
    key(pk, "nested"), msgpack_pack_map(pk, 1), str(pk, "x", "y");
}

static void test_decoders_refuse_bad_payloads(void **state)
{
    (void)state;
    fleet_msg_result r;
    size_t len;
    uint8_t *buf;
    struct {
        packer_fn fn;
        fleet_topics_status want;
        const char *words;
    } cases[] = {
        {result_wrong_pair, FLEET_TOPICS_ETYPE, "entry 0 is not a [class, prob] pair"},
        {result_negative_variant, FLEET_TOPICS_ERANGE, "negative"},
        {result_future_version, FLEET_TOPICS_EVERSION, "newer"},
        {result_slash_in_id, FLEET_TOPICS_ERANGE, "'/'"},
        {result_with_extras, FLEET_TOPICS_OK, ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        buf = pack(cases[i].fn, &len);
        fleet_topics_status st = fleet_msg_result_decode(buf, len, &r);
        if (st != cases[i].want || !strstr(fleet_topics_last_error(), cases[i].words))
            fail_msg("case %zu: status %d '%s'", i, st, fleet_topics_last_error());
        free(buf);
    }
    /* A map claiming four billion entries in five bytes. */
    const uint8_t claim[] = {0xdf, 0xff, 0xff, 0xff, 0xff};
    assert_int_equal(fleet_msg_result_decode(claim, sizeof claim, &r), FLEET_TOPICS_EMALFORMED);
    const uint8_t array[] = {0x93, 1, 2, 3};
    assert_int_equal(fleet_msg_result_decode(array, sizeof array, &r), FLEET_TOPICS_EMALFORMED);
    assert_int_equal(fleet_msg_result_decode((const uint8_t *)"{\"json\":1}", 10, &r),
                     FLEET_TOPICS_EMALFORMED);
    assert_int_equal(fleet_msg_result_decode(NULL, 0, &r), FLEET_TOPICS_EMALFORMED);
    static uint8_t big[(8 << 20) + 1];
    assert_int_equal(fleet_msg_result_decode(big, sizeof big, &r), FLEET_TOPICS_ERANGE);
}

/* Every proper prefix of every valid message fails cleanly; trailing bytes are refused. */
static void test_truncations_and_missing_keys(void **state)
{
    (void)state;
    fleet_msg_request req = sample_request();
    fleet_msg_result res = sample_result();
    fleet_msg_decision dec = sample_decision();
    strcpy(dec.id, "d1");
    uint8_t *bufs[3];
    size_t lens[3];
    assert_int_equal(fleet_msg_request_encode(&req, &bufs[0], &lens[0]), FLEET_TOPICS_OK);
    assert_int_equal(fleet_msg_result_encode(&res, &bufs[1], &lens[1]), FLEET_TOPICS_OK);
    assert_int_equal(fleet_msg_decision_encode(&dec, &bufs[2], &lens[2]), FLEET_TOPICS_OK);
    for (size_t n = 0; n < lens[0]; n++)
        assert_int_not_equal(fleet_msg_request_decode(bufs[0], n, &req), FLEET_TOPICS_OK);
    for (size_t n = 0; n < lens[1]; n++)
        assert_int_not_equal(fleet_msg_result_decode(bufs[1], n, &res), FLEET_TOPICS_OK);
    for (size_t n = 0; n < lens[2]; n++)
        assert_int_not_equal(fleet_msg_decision_decode(bufs[2], n, &dec), FLEET_TOPICS_OK);
    uint8_t *longer = malloc(lens[1] + 1);
    memcpy(longer, bufs[1], lens[1]);
    longer[lens[1]] = 0xc0;
    assert_int_equal(fleet_msg_result_decode(longer, lens[1] + 1, &res), FLEET_TOPICS_EMALFORMED);
    /* Rename each key of the request in turn: every one of them is required. */
    const char *required[] = {"id", "stream", "tensor"};
    for (size_t k = 0; k < 3; k++) {
        uint8_t *copy = malloc(lens[0]);
        memcpy(copy, bufs[0], lens[0]);
        size_t n = strlen(required[k]);
        for (size_t i = 0; i + n < lens[0]; i++)
            if (copy[i] == (0xa0 | n) && memcmp(copy + i + 1, required[k], n) == 0) {
                copy[i + 1] = 'X'; /* the key no longer exists */
                break;
            }
        assert_int_equal(fleet_msg_request_decode(copy, lens[0], &req), FLEET_TOPICS_EMISSING);
        assert_non_null(strstr(fleet_topics_last_error(), required[k]));
        free(copy);
    }
    free(longer);
    for (int i = 0; i < 3; i++)
        free(bufs[i]);
}

static void test_encoders_validate(void **state)
{
    (void)state;
    uint8_t *buf = NULL;
    size_t len;
    fleet_msg_request r = sample_request();
    r.tensor.size = 783;
    assert_int_equal(fleet_msg_request_encode(&r, &buf, &len), FLEET_TOPICS_EINVAL);
    r = sample_request();
    strcpy(r.stream, "a+b");
    assert_int_equal(fleet_msg_request_encode(&r, &buf, &len), FLEET_TOPICS_EINVAL);
    fleet_msg_result res = sample_result();
    res.k = FLEET_TOPICS_MAX_TOPK + 1;
    assert_int_equal(fleet_msg_result_encode(&res, &buf, &len), FLEET_TOPICS_EINVAL);
    fleet_msg_chunk c = {.index = 2, .chunks = 2, .total_bytes = 1};
    strcpy(c.digest, digest);
    assert_int_equal(fleet_msg_chunk_encode(&c, &buf, &len), FLEET_TOPICS_EINVAL);
    fleet_msg_assignment a = {.agent = "gw-1", .coordinator = "main", .stream = "s"};
    a.deadline_ms = FLEET_TOPICS_MAX_DEADLINE_MS + 1;
    assert_int_equal(fleet_msg_assignment_encode(&a, &buf, &len), FLEET_TOPICS_EINVAL);
    assert_null(buf);
}

/* kind and id under prefix build `expected`, which parses back to them. */
static void assert_topic(const char *prefix, fleet_topic_kind kind, const char *id,
                         const char *expected)
{
    char topic[FLEET_TOPICS_MAX_TOPIC];
    fleet_topic_ref t;
    assert_int_equal(fleet_topic_build(prefix, kind, id, topic, sizeof topic), FLEET_TOPICS_OK);
    assert_string_equal(topic, expected);
    assert_int_equal(fleet_topic_parse(prefix, topic, &t), FLEET_TOPICS_OK);
    assert_int_equal(t.kind, kind);
    assert_string_equal(t.id, id);
    assert_string_equal(t.agent, "");
}

static void test_topics_build_and_parse(void **state)
{
    (void)state;
    assert_topic("plant/a", FLEET_TOPIC_STREAM_REQUEST, "line-3", "plant/a/stream/line-3/request");
    assert_topic("p", FLEET_TOPIC_AGENT_MODEL_GET, "gw-2", "p/agent/gw-2/model-get");
    assert_topic("p", FLEET_TOPIC_COORDINATOR_STATE, "main", "p/coordinator/main/state");
    char topic[FLEET_TOPICS_MAX_TOPIC];
    assert_int_equal(
        fleet_topic_build("plant/a", FLEET_TOPIC_AGENT_STATE, "+", topic, sizeof topic),
        FLEET_TOPICS_OK);
    assert_string_equal(topic, "plant/a/agent/+/state"); /* a filter: it does not parse */
}

/* A result topic names the stream and, last, the agent that sent it: the ACL's %u. */
static void test_result_topics_name_their_agent(void **state)
{
    (void)state;
    char topic[FLEET_TOPICS_MAX_TOPIC];
    fleet_topic_ref t;
    assert_int_equal(fleet_topic_build_result("p", "s1", "gw-7", topic, sizeof topic),
                     FLEET_TOPICS_OK);
    assert_string_equal(topic, "p/stream/s1/result/gw-7");
    assert_int_equal(fleet_topic_parse("p", topic, &t), FLEET_TOPICS_OK);
    assert_int_equal(t.kind, FLEET_TOPIC_STREAM_RESULT);
    assert_string_equal(t.id, "s1");
    assert_string_equal(t.agent, "gw-7");
    assert_int_equal(fleet_topic_build_result("p", "s1", "+", topic, sizeof topic),
                     FLEET_TOPICS_OK);
    assert_string_equal(topic, "p/stream/s1/result/+");
    /* Without its agent it is no topic at all. */
    assert_int_equal(fleet_topic_build("p", FLEET_TOPIC_STREAM_RESULT, "s1", topic, sizeof topic),
                     FLEET_TOPICS_EINVAL);
    assert_int_equal(fleet_topic_build_result("p", "s1", NULL, topic, sizeof topic),
                     FLEET_TOPICS_EINVAL);
    assert_int_equal(fleet_topic_build_result("p", "s1", "a/b", topic, sizeof topic),
                     FLEET_TOPICS_EINVAL);
    assert_int_equal(fleet_topic_parse("p", "p/stream/s1/result", &t), FLEET_TOPICS_ETOPIC);
    /* The longest prefix and ids fit the buffer every program uses for a topic. */
    char prefix[FLEET_TOPICS_MAX_PREFIX + 2], stream[FLEET_TOPICS_MAX_ID + 1],
        agent[FLEET_TOPICS_MAX_ID + 1];
    memset(prefix, 'p', sizeof prefix - 1), prefix[FLEET_TOPICS_MAX_PREFIX] = '\0';
    memset(stream, 's', sizeof stream - 1), stream[FLEET_TOPICS_MAX_ID] = '\0';
    memset(agent, 'a', sizeof agent - 1), agent[FLEET_TOPICS_MAX_ID] = '\0';
    assert_int_equal(fleet_topic_build_result(prefix, stream, agent, topic, sizeof topic),
                     FLEET_TOPICS_OK);
    assert_int_equal(fleet_topic_parse(prefix, topic, &t), FLEET_TOPICS_OK);
    assert_string_equal(t.agent, agent);
    prefix[FLEET_TOPICS_MAX_PREFIX] = 'p', prefix[FLEET_TOPICS_MAX_PREFIX + 1] = '\0';
    assert_int_equal(fleet_topic_build_result(prefix, stream, agent, topic, sizeof topic),
                     FLEET_TOPICS_EINVAL);
}

static void test_topics_refused(void **state)
{
    (void)state;
    char topic[FLEET_TOPICS_MAX_TOPIC];
    fleet_topic_ref t;
    const char *foreign[] = {"q/stream/s/request",
                             "p/stream/s/request/x",
                             "p/stream//request",
                             "p/stream/s/other",
                             "p/stream/s/result/",
                             "p/stream/s/result/+",
                             "p/stream/+/result/a",
                             "p/stream/s/result/a/b",
                             "p/agent/a",
                             "p/agent/#/state",
                             "p/model/get",
                             "pp/agent/a/state",
                             "p"};
    for (size_t i = 0; i < sizeof foreign / sizeof foreign[0]; i++)
        assert_int_equal(fleet_topic_parse("p", foreign[i], &t), FLEET_TOPICS_ETOPIC);
    assert_int_equal(fleet_topic_parse("p", "p/agent/a/state", NULL), FLEET_TOPICS_EINVAL);
    assert_int_equal(fleet_topic_build("p/", FLEET_TOPIC_AGENT_STATE, "a", topic, sizeof topic),
                     FLEET_TOPICS_EINVAL);
    assert_int_equal(fleet_topic_build("p", FLEET_TOPIC_AGENT_STATE, "a/b", topic, sizeof topic),
                     FLEET_TOPICS_EINVAL);
    assert_int_equal(fleet_topic_build("p", FLEET_TOPIC_AGENT_STATE, NULL, topic, sizeof topic),
                     FLEET_TOPICS_EINVAL);
    assert_int_equal(fleet_topic_build("p", FLEET_TOPIC_AGENT_STATE, "a", topic, 8),
                     FLEET_TOPICS_EINVAL);
}

static void test_decision_json(void **state)
{
    (void)state;
    fleet_msg_decision d = sample_decision();
    char *json = NULL;
    assert_int_equal(fleet_msg_decision_to_json(&d, &json), FLEET_TOPICS_OK);
    assert_string_equal(json, "{\"id\":\"req-\\\"1\\\"\",\"stream\":\"line-3\",\"coordinator\":"
                              "\"main\",\"class\":7,\"confidence\":0.75,\"topk\":[[7,0.75],[1,"
                              "0.25]],\"used\":[0,2],\"missing\":[1],\"degraded\":true,\"rule\":"
                              "\"vp-topk\",\"total_us\":1200,\"slowest_infer_us\":300,"
                              "\"aggregate_us\":3}");
    free(json);
    strcpy(d.error, "tensor of 2 elements");
    assert_int_equal(fleet_msg_decision_to_json(&d, &json), FLEET_TOPICS_OK);
    const char *tail = ",\"aggregate_us\":3,\"error\":\"tensor of 2 elements\"}";
    assert_string_equal(json + strlen(json) - strlen(tail), tail);
    free(json);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_decoders_refuse_bad_payloads),
        cmocka_unit_test(test_truncations_and_missing_keys),
        cmocka_unit_test(test_encoders_validate),
        cmocka_unit_test(test_topics_build_and_parse),
        cmocka_unit_test(test_result_topics_name_their_agent),
        cmocka_unit_test(test_topics_refused),
        cmocka_unit_test(test_decision_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
