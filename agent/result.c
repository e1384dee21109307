/* result.c: one request through one variant: input conversion, the run, the published result. */
#include "internal.h"

#include "fleet_ensemble.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AGENT_EWMA_ALPHA 0.2

bool agent_tensor_to_floats(const fleet_tensor *t, float *out, size_t count)
{
    size_t width = fleet_dtype_width(t->dtype);
    if (width == 0 || t->size % width != 0 || t->size / width != count)
        return false;
    for (size_t i = 0; i < count; i++) {
        if (t->dtype == FLEET_DTYPE_F32) {
            memcpy(&out[i], t->data + 4 * i, 4); /* little-endian hosts only (x86-64, arm64) */
        } else {
            int32_t q =
                t->dtype == FLEET_DTYPE_U8 ? (int32_t)t->data[i] : (int32_t)(int8_t)t->data[i];
            out[i] = t->scale * (float)(q - t->zero_point);
        }
    }
    return true;
}

/* TOPK: softmax(logits / temperature) over every class, then the k best. */
static void fill_topk(const agent_variant *v, fleet_msg_result *res)
{
    agent_model *m = v->model;
    size_t classes = m->output_counts[0];
    size_t k = v->spec.k ? v->spec.k : classes;
    fleet_ensemble_score top[FLEET_TOPICS_MAX_TOPK];
    fleet_ensemble_softmax(m->outputs[0], classes, v->spec.temperature);
    res->output = FLEET_OUTPUT_TOPK;
    res->k = fleet_ensemble_topk(m->outputs[0], classes,
                                 k < FLEET_TOPICS_MAX_TOPK ? k : FLEET_TOPICS_MAX_TOPK, top);
    for (size_t i = 0; i < res->k; i++) {
        res->classes[i] = top[i].cls;
        res->probs[i] = top[i].prob;
    }
}

/* INT8: the second output, quantized; false when the model has none. */
static bool fill_features(const agent_variant *v, fleet_msg_result *res)
{
    agent_model *m = v->model;
    if (m->n_outputs < 2 || !m->features)
        return false;
    size_t n = m->output_counts[1];
    fleet_model_qparams q =
        m->feature_q_fixed ? m->feature_q : fleet_model_qparams_for(m->outputs[1], n);
    fleet_model_quantize_int8(m->outputs[1], n, q, m->features);
    res->output = FLEET_OUTPUT_INT8;
    res->features = (fleet_tensor){.dtype = FLEET_DTYPE_I8,
                                   .scale = q.scale,
                                   .zero_point = q.zero_point,
                                   .shape = {(uint32_t)n},
                                   .rank = 1,
                                   .data = (const uint8_t *)m->features,
                                   .size = n};
    return true;
}

static void update_ewma(fleet_agent *a, double took_us)
{
    pthread_mutex_lock(&a->lock);
    a->latency_ewma_us = a->latency_ewma_us > 0.0 ? (1.0 - AGENT_EWMA_ALPHA) * a->latency_ewma_us +
                                                        AGENT_EWMA_ALPHA * took_us
                                                  : took_us;
    pthread_mutex_unlock(&a->lock);
}

bool agent_run_variant(fleet_agent *a, const agent_variant *v, const fleet_msg_request *r)
{
    double t0 = fleet_link_now_us();
    if (agent_model_run(v->model) != FLEET_AGENT_OK) {
        agent_log(a, FLEET_LOG_WARN, "request %s, variant %u: %s", r->id, v->spec.variant,
                  fleet_agent_last_error());
        return false;
    }
    double took = fleet_link_now_us() - t0;
    update_ewma(a, took);
    fleet_msg_result res;
    memset(&res, 0, sizeof res);
    snprintf(res.id, sizeof res.id, "%s", r->id);
    snprintf(res.stream, sizeof res.stream, "%s", r->stream);
    snprintf(res.agent, sizeof res.agent, "%s", a->cfg.id);
    res.variant = v->spec.variant;
    res.epoch = a->epoch;
    res.infer_us = took < 4e9 ? (uint32_t)took : UINT32_MAX;
    if (v->spec.output == FLEET_OUTPUT_INT8) {
        if (!fill_features(v, &res)) {
            agent_log(a, FLEET_LOG_DEBUG, "variant %u: int8 features need a second output",
                      v->spec.variant);
            return false;
        }
    } else {
        fill_topk(v, &res);
    }
    uint8_t *buf = NULL;
    size_t len = 0;
    fleet_topics_status st = fleet_msg_result_encode(&res, &buf, &len);
    agent_publish(a, a->topic_result, st, buf, len, 0, 0);
    return st == FLEET_TOPICS_OK;
}
