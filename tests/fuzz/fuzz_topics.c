/* fuzz_topics.c: libFuzzer target for every message decoder and the topic parser, with
 * re-encode round trips. */
#include "fleet_topics.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ROUND_TRIP(name, type)                                                                     \
    do {                                                                                           \
        type m, again;                                                                             \
        uint8_t *buf = NULL;                                                                       \
        size_t len = 0;                                                                            \
        if (fleet_msg_##name##_decode(data, size, &m) == FLEET_TOPICS_OK &&                        \
            fleet_msg_##name##_encode(&m, &buf, &len) == FLEET_TOPICS_OK) {                        \
            if (fleet_msg_##name##_decode(buf, len, &again) != FLEET_TOPICS_OK)                    \
                abort(); /* what we decoded we must be able to say again */                        \
        }                                                                                          \
        free(buf);                                                                                 \
    } while (0)

/* Topic names come from the broker as any bytes: what parses must build back to itself. */
static void topic_round_trip(const uint8_t *data, size_t size)
{
    char topic[FLEET_TOPICS_MAX_TOPIC + 64], again[FLEET_TOPICS_MAX_TOPIC];
    size_t n = size < sizeof topic - 1 ? size : sizeof topic - 1;
    memcpy(topic, data, n);
    topic[n] = '\0';
    fleet_topic_ref t;
    if (fleet_topic_parse("p/q", topic, &t) != FLEET_TOPICS_OK)
        return;
    fleet_topics_status st =
        t.kind == FLEET_TOPIC_STREAM_RESULT
            ? fleet_topic_build_result("p/q", t.id, t.agent, again, sizeof again)
            : fleet_topic_build("p/q", t.kind, t.id, again, sizeof again);
    if (st != FLEET_TOPICS_OK || strcmp(again, topic) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    topic_round_trip(data, size);
    ROUND_TRIP(birth, fleet_msg_birth);
    ROUND_TRIP(death, fleet_msg_death);
    ROUND_TRIP(heartbeat, fleet_msg_heartbeat);
    ROUND_TRIP(coordinator_state, fleet_msg_coordinator_state);
    ROUND_TRIP(assignment, fleet_msg_assignment);
    ROUND_TRIP(model_get, fleet_msg_model_get);
    ROUND_TRIP(chunk, fleet_msg_chunk);
    ROUND_TRIP(request, fleet_msg_request);
    ROUND_TRIP(result, fleet_msg_result);
    ROUND_TRIP(decision, fleet_msg_decision);
    { /* a decision holds no pointers: its round trip must give the same struct, every field */
        fleet_msg_decision m, again;
        uint8_t *buf = NULL;
        size_t len = 0;
        if (fleet_msg_decision_decode(data, size, &m) == FLEET_TOPICS_OK &&
            fleet_msg_decision_encode(&m, &buf, &len) == FLEET_TOPICS_OK &&
            (fleet_msg_decision_decode(buf, len, &again) != FLEET_TOPICS_OK ||
             memcmp(&m, &again, sizeof m) != 0))
            abort();
        free(buf);
    }
    fleet_msg_agent_state s;
    fleet_msg_agent_state_decode(data, size, &s);
    fleet_msg_decision d;
    char *json = NULL;
    if (fleet_msg_decision_decode(data, size, &d) == FLEET_TOPICS_OK &&
        fleet_msg_decision_to_json(&d, &json) == FLEET_TOPICS_OK)
        free(json);
    return 0;
}
