/* json.c: a decision as one JSON object, for dashboards and rule engines that speak JSON. */
#include "codec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Ids are restricted on encode but a decoded decision's rule may hold anything printable. */
static void put_string(char **p, const char *s)
{
    *(*p)++ = '"';
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            *p += sprintf(*p, "\\%c", c);
        else if (c < 0x20)
            *p += sprintf(*p, "\\u%04x", c);
        else
            *(*p)++ = (char)c;
    }
    *(*p)++ = '"';
}

static void put_indices(char **p, const uint32_t *v, size_t n)
{
    *(*p)++ = '[';
    for (size_t i = 0; i < n; i++)
        *p += sprintf(*p, "%s%u", i ? "," : "", v[i]);
    *(*p)++ = ']';
}

fleet_topics_status fleet_msg_decision_to_json(const fleet_msg_decision *m, char **json)
{
    if (!m || !json || m->k > FLEET_TOPICS_MAX_TOPK || m->n_used > FLEET_TOPICS_MAX_VARIANTS ||
        m->n_missing > FLEET_TOPICS_MAX_VARIANTS)
        return topics_fail(FLEET_TOPICS_EINVAL, "decision to JSON: bad arguments");
    /* Escaped strings at most 6x, numbers at most ~24 characters each. */
    size_t cap = 6 * (3 * FLEET_TOPICS_MAX_ID + sizeof m->rule + sizeof m->error) + 48 * m->k +
                 16 * (m->n_used + m->n_missing) + 512;
    char *out = malloc(cap), *p = out;
    if (!out)
        return topics_fail(FLEET_TOPICS_ENOMEM, "out of memory");
    p += sprintf(p, "{\"id\":");
    put_string(&p, m->id);
    p += sprintf(p, ",\"stream\":");
    put_string(&p, m->stream);
    p += sprintf(p, ",\"coordinator\":");
    put_string(&p, m->coordinator);
    p += sprintf(p, ",\"class\":%d,\"confidence\":%.6g,\"topk\":[", m->cls, (double)m->confidence);
    for (size_t i = 0; i < m->k; i++)
        p += sprintf(p, "%s[%u,%.6g]", i ? "," : "", m->classes[i], (double)m->probs[i]);
    p += sprintf(p, "],\"used\":");
    put_indices(&p, m->used, m->n_used);
    p += sprintf(p, ",\"missing\":");
    put_indices(&p, m->missing, m->n_missing);
    p += sprintf(p, ",\"degraded\":%s,\"rule\":", m->degraded ? "true" : "false");
    put_string(&p, m->rule);
    p += sprintf(p, ",\"total_us\":%u,\"slowest_infer_us\":%u,\"aggregate_us\":%u", m->total_us,
                 m->slowest_infer_us, m->aggregate_us);
    if (m->error[0]) {
        p += sprintf(p, ",\"error\":");
        put_string(&p, m->error);
    }
    sprintf(p, "}");
    *json = out;
    return FLEET_TOPICS_OK;
}
