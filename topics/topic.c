/* topic.c: the fleet's topic names under a configurable prefix, built and recognised. */
#include "codec.h"

#include <stdio.h>
#include <string.h>

static const struct {
    fleet_topic_kind kind;
    const char *head; /* before the id */
    const char *tail; /* after the id (and before the sending agent's id, if any) */
    bool sender;      /* ends with the id of the agent that publishes it */
} topic_forms[] = {
    {FLEET_TOPIC_AGENT_STATE, "agent", "state", false},
    {FLEET_TOPIC_AGENT_HEARTBEAT, "agent", "heartbeat", false},
    {FLEET_TOPIC_AGENT_ASSIGNMENT, "agent", "assignment", false},
    {FLEET_TOPIC_AGENT_CHUNK, "agent", "chunk", false},
    {FLEET_TOPIC_AGENT_MODEL_GET, "agent", "model-get", false},
    {FLEET_TOPIC_COORDINATOR_STATE, "coordinator", "state", false},
    {FLEET_TOPIC_STREAM_REQUEST, "stream", "request", false},
    {FLEET_TOPIC_STREAM_RESULT, "stream", "result", true},
    {FLEET_TOPIC_STREAM_DECISION, "stream", "decision", false},
};

#define N_FORMS (sizeof topic_forms / sizeof topic_forms[0])

_Static_assert(FLEET_TOPICS_MAX_PREFIX + sizeof "/stream/" - 1 + FLEET_TOPICS_MAX_ID +
                       sizeof "/result/" - 1 + FLEET_TOPICS_MAX_ID <
                   FLEET_TOPICS_MAX_TOPIC,
               "the longest result topic must fit FLEET_TOPICS_MAX_TOPIC");

static fleet_topics_status check_prefix(const char *prefix)
{
    size_t n = prefix ? strlen(prefix) : 0;
    if (n == 0 || n > FLEET_TOPICS_MAX_PREFIX || prefix[n - 1] == '/' || prefix[0] == '/' ||
        strpbrk(prefix, "+#"))
        return topics_fail(FLEET_TOPICS_EINVAL,
                           "prefix '%s' must be a non-empty topic without "
                           "wildcards or a leading or trailing '/'",
                           prefix ? prefix : "");
    return FLEET_TOPICS_OK;
}

/* An id, or "+" for a subscription filter. */
static fleet_topics_status check_id_or_wildcard(const char *what, const char *id)
{
    if (!id)
        return topics_fail(FLEET_TOPICS_EINVAL, "%s is required", what);
    return strcmp(id, "+") == 0 ? FLEET_TOPICS_OK : topics_check_id(what, id);
}

static fleet_topics_status build(const char *prefix, fleet_topic_kind kind, const char *id,
                                 const char *agent, char *out, size_t out_size)
{
    fleet_topics_status st = check_prefix(prefix);
    if (st != FLEET_TOPICS_OK || !out)
        return st ? st : topics_fail(FLEET_TOPICS_EINVAL, "no output buffer");
    if ((size_t)kind >= N_FORMS)
        return topics_fail(FLEET_TOPICS_EINVAL, "unknown topic kind %d", (int)kind);
    if ((st = check_id_or_wildcard("id", id)) ||
        (agent && (st = check_id_or_wildcard("agent", agent))))
        return st;
    int n = snprintf(out, out_size, "%s/%s/%s/%s%s%s", prefix, topic_forms[kind].head, id,
                     topic_forms[kind].tail, agent ? "/" : "", agent ? agent : "");
    if (n < 0 || (size_t)n >= out_size)
        return topics_fail(FLEET_TOPICS_EINVAL, "topic longer than %zu bytes", out_size);
    return FLEET_TOPICS_OK;
}

fleet_topics_status fleet_topic_build(const char *prefix, fleet_topic_kind kind, const char *id,
                                      char *out, size_t out_size)
{
    if ((size_t)kind < N_FORMS && topic_forms[kind].sender)
        return topics_fail(FLEET_TOPICS_EINVAL,
                           "a result topic names its agent too (fleet_topic_build_result)");
    return build(prefix, kind, id, NULL, out, out_size);
}

fleet_topics_status fleet_topic_build_result(const char *prefix, const char *stream,
                                             const char *agent, char *out, size_t out_size)
{
    if (!agent)
        return topics_fail(FLEET_TOPICS_EINVAL, "agent is required");
    return build(prefix, FLEET_TOPIC_STREAM_RESULT, stream, agent, out, out_size);
}

/* Copies the id between start and end (exclusive) into out: 1 to FLEET_TOPICS_MAX_ID
 * characters, no wildcard. */
static bool take_id(const char *start, const char *end, char *out)
{
    size_t n = (size_t)(end - start);
    if (n == 0 || n > FLEET_TOPICS_MAX_ID)
        return false;
    memcpy(out, start, n);
    out[n] = '\0';
    return strpbrk(out, "+#") == NULL;
}

fleet_topics_status fleet_topic_parse(const char *prefix, const char *topic, fleet_topic_ref *out)
{
    fleet_topics_status st = check_prefix(prefix);
    if (st != FLEET_TOPICS_OK)
        return st;
    if (!out)
        return topics_fail(FLEET_TOPICS_EINVAL, "no output");
    size_t plen = strlen(prefix);
    if (!topic || strncmp(topic, prefix, plen) != 0 || topic[plen] != '/')
        return topics_fail(FLEET_TOPICS_ETOPIC, "topic is not under '%s'", prefix);
    /* head/id/tail[/agent] */
    const char *rest = topic + plen + 1;
    const char *slash1 = strchr(rest, '/');
    const char *slash2 = slash1 ? strchr(slash1 + 1, '/') : NULL;
    const char *slash3 = slash2 ? strchr(slash2 + 1, '/') : NULL;
    if (!slash1 || !slash2 || (slash3 && strchr(slash3 + 1, '/')))
        return topics_fail(FLEET_TOPICS_ETOPIC, "'%s' is not a fleet topic", topic);
    size_t head = (size_t)(slash1 - rest);
    const char *tail = slash2 + 1, *tail_end = slash3 ? slash3 : tail + strlen(tail);
    for (size_t i = 0; i < N_FORMS; i++) {
        const char *h = topic_forms[i].head, *t = topic_forms[i].tail;
        if (strlen(h) != head || strncmp(rest, h, head) != 0 ||
            strlen(t) != (size_t)(tail_end - tail) || strncmp(tail, t, strlen(t)) != 0 ||
            topic_forms[i].sender != (slash3 != NULL))
            continue;
        out->agent[0] = '\0';
        if (!take_id(slash1 + 1, slash2, out->id) ||
            (slash3 && !take_id(slash3 + 1, slash3 + 1 + strlen(slash3 + 1), out->agent)))
            return topics_fail(FLEET_TOPICS_ETOPIC, "'%s' has a bad id", topic);
        out->kind = topic_forms[i].kind;
        return FLEET_TOPICS_OK;
    }
    return topics_fail(FLEET_TOPICS_ETOPIC, "'%s' is not a fleet topic", topic);
}
