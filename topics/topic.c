/* topic.c: the fleet's topic names under a configurable prefix, built and recognised. */
#include "codec.h"

#include <stdio.h>
#include <string.h>

static const struct {
    fleet_topic_kind kind;
    const char *head; /* before the id */
    const char *tail; /* after the id; NULL when the topic has no id */
} topic_forms[] = {
    {FLEET_TOPIC_AGENT_STATE, "agent", "state"},
    {FLEET_TOPIC_AGENT_HEARTBEAT, "agent", "heartbeat"},
    {FLEET_TOPIC_AGENT_ASSIGNMENT, "agent", "assignment"},
    {FLEET_TOPIC_AGENT_CHUNK, "agent", "chunk"},
    {FLEET_TOPIC_COORDINATOR_STATE, "coordinator", "state"},
    {FLEET_TOPIC_MODEL_GET, "model", NULL},
    {FLEET_TOPIC_STREAM_REQUEST, "stream", "request"},
    {FLEET_TOPIC_STREAM_RESULT, "stream", "result"},
    {FLEET_TOPIC_STREAM_DECISION, "stream", "decision"},
};

static fleet_topics_status check_prefix(const char *prefix)
{
    size_t n = prefix ? strlen(prefix) : 0;
    if (n == 0 || n > FLEET_TOPICS_MAX_TOPIC / 2 || prefix[n - 1] == '/' || prefix[0] == '/' ||
        strpbrk(prefix, "+#"))
        return topics_fail(FLEET_TOPICS_EINVAL,
                           "prefix '%s' must be a non-empty topic without "
                           "wildcards or a leading or trailing '/'",
                           prefix ? prefix : "");
    return FLEET_TOPICS_OK;
}

fleet_topics_status fleet_topic_build(const char *prefix, fleet_topic_kind kind, const char *id,
                                      char *out, size_t out_size)
{
    fleet_topics_status st = check_prefix(prefix);
    if (st != FLEET_TOPICS_OK || !out)
        return st ? st : topics_fail(FLEET_TOPICS_EINVAL, "no output buffer");
    if ((size_t)kind >= sizeof topic_forms / sizeof topic_forms[0])
        return topics_fail(FLEET_TOPICS_EINVAL, "unknown topic kind %d", (int)kind);
    int n;
    if (!topic_forms[kind].tail) {
        n = snprintf(out, out_size, "%s/model/get", prefix);
    } else {
        if (!id || (strcmp(id, "+") != 0 && (st = topics_check_id("id", id))))
            return st ? st : topics_fail(FLEET_TOPICS_EINVAL, "an id is required");
        n = snprintf(out, out_size, "%s/%s/%s/%s", prefix, topic_forms[kind].head, id,
                     topic_forms[kind].tail);
    }
    if (n < 0 || (size_t)n >= out_size)
        return topics_fail(FLEET_TOPICS_EINVAL, "topic longer than %zu bytes", out_size);
    return FLEET_TOPICS_OK;
}

fleet_topics_status fleet_topic_parse(const char *prefix, const char *topic, fleet_topic_kind *kind,
                                      char *id)
{
    fleet_topics_status st = check_prefix(prefix);
    if (st != FLEET_TOPICS_OK)
        return st;
    size_t plen = strlen(prefix);
    if (!topic || strncmp(topic, prefix, plen) != 0 || topic[plen] != '/')
        return topics_fail(FLEET_TOPICS_ETOPIC, "topic is not under '%s'", prefix);
    const char *rest = topic + plen + 1;
    if (strcmp(rest, "model/get") == 0) {
        *kind = FLEET_TOPIC_MODEL_GET;
        id[0] = '\0';
        return FLEET_TOPICS_OK;
    }
    const char *slash1 = strchr(rest, '/');
    const char *slash2 = slash1 ? strchr(slash1 + 1, '/') : NULL;
    if (!slash1 || !slash2 || strchr(slash2 + 1, '/'))
        return topics_fail(FLEET_TOPICS_ETOPIC, "'%s' is not a fleet topic", topic);
    size_t head = (size_t)(slash1 - rest), idlen = (size_t)(slash2 - slash1 - 1);
    if (idlen == 0 || idlen > FLEET_TOPICS_MAX_ID)
        return topics_fail(FLEET_TOPICS_ETOPIC, "'%s' has a bad id", topic);
    for (size_t i = 0; i < sizeof topic_forms / sizeof topic_forms[0]; i++) {
        const char *h = topic_forms[i].head, *t = topic_forms[i].tail;
        if (t && strlen(h) == head && strncmp(rest, h, head) == 0 && strcmp(slash2 + 1, t) == 0) {
            memcpy(id, slash1 + 1, idlen);
            id[idlen] = '\0';
            if (strpbrk(id, "+#"))
                break;
            *kind = topic_forms[i].kind;
            return FLEET_TOPICS_OK;
        }
    }
    return topics_fail(FLEET_TOPICS_ETOPIC, "'%s' is not a fleet topic", topic);
}
