/* work.c: the bounded request queue and the worker that runs the variants on each request. */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

fleet_agent_status agent_queue_init(agent_queue *q, size_t capacity)
{
    memset(q, 0, sizeof *q);
    q->capacity = capacity;
    q->items = calloc(capacity, sizeof *q->items);
    if (!q->items)
        return agent_fail(FLEET_AGENT_ENOMEM, "out of memory for a queue of %zu", capacity);
    pthread_cond_init(&q->ready, NULL);
    return FLEET_AGENT_OK;
}

void agent_queue_free(agent_queue *q)
{
    for (size_t i = 0; q->items && i < q->count; i++)
        fleet_link_message_free(q->items[(q->head + i) % q->capacity]);
    free(q->items);
    if (q->items)
        pthread_cond_destroy(&q->ready);
    memset(q, 0, sizeof *q);
}

bool agent_queue_push(fleet_agent *a, fleet_link_message *m)
{
    agent_queue *q = &a->queue;
    fleet_link_message *dropped = NULL;
    pthread_mutex_lock(&a->lock);
    if (q->count == q->capacity) { /* the oldest is the likeliest to miss its deadline */
        dropped = q->items[q->head];
        q->head = (q->head + 1) % q->capacity;
        q->count--;
        a->stats.dropped_full++;
    }
    q->items[(q->head + q->count) % q->capacity] = m;
    q->count++;
    pthread_cond_signal(&q->ready);
    pthread_mutex_unlock(&a->lock);
    fleet_link_message_free(dropped);
    return dropped != NULL;
}

void agent_queue_close(fleet_agent *a)
{
    pthread_mutex_lock(&a->lock);
    a->queue.closed = true;
    pthread_cond_broadcast(&a->queue.ready);
    pthread_mutex_unlock(&a->lock);
}

static fleet_link_message *pop(fleet_agent *a)
{
    agent_queue *q = &a->queue;
    pthread_mutex_lock(&a->lock);
    while (!q->closed && q->count == 0)
        pthread_cond_wait(&q->ready, &a->lock);
    fleet_link_message *m = NULL;
    if (q->count > 0) { /* after a close, what is queued still gets served */
        m = q->items[q->head];
        q->head = (q->head + 1) % q->capacity;
        q->count--;
    }
    pthread_mutex_unlock(&a->lock);
    return m;
}

/* The request's tensor as the model's float input; false when the sizes disagree. */
static bool to_floats(const fleet_tensor *t, float *out, size_t count)
{
    size_t n = t->size / fleet_dtype_width(t->dtype);
    if (n != count)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (t->dtype == FLEET_DTYPE_F32)
            memcpy(&out[i], t->data + 4 * i, 4);
        else if (t->dtype == FLEET_DTYPE_U8)
            out[i] = t->scale * (float)((int32_t)t->data[i] - t->zero_point);
        else
            out[i] = t->scale * (float)((int32_t)(int8_t)t->data[i] - t->zero_point);
    }
    return true;
}

static void publish_result(fleet_agent *a, const agent_variant *v, const fleet_msg_request *r,
                           uint32_t infer_us, const char *topic)
{
    fleet_msg_result res;
    int8_t features[4096];
    memset(&res, 0, sizeof res);
    snprintf(res.id, sizeof res.id, "%s", r->id);
    snprintf(res.stream, sizeof res.stream, "%s", r->stream);
    snprintf(res.agent, sizeof res.agent, "%s", a->cfg.id);
    res.variant = v->spec.variant;
    res.epoch = a->epoch;
    res.infer_us = infer_us;
    res.output = v->spec.output;
    agent_model *m = v->model;
    if (v->spec.output == FLEET_OUTPUT_INT8 && m->n_outputs > 1 && m->output_counts[1] <= 4096) {
        size_t n = m->output_counts[1];
        fleet_model_qparams q = fleet_model_qparams_for(m->outputs[1], n);
        fleet_model_quantize_int8(m->outputs[1], n, q, features);
        res.features = (fleet_tensor){.dtype = FLEET_DTYPE_I8,
                                      .scale = q.scale,
                                      .zero_point = q.zero_point,
                                      .shape = {(uint32_t)n},
                                      .rank = 1,
                                      .data = (const uint8_t *)features,
                                      .size = n};
    } else {
        size_t classes = m->output_counts[0] < FLEET_TOPICS_MAX_TOPK ? m->output_counts[0]
                                                                     : FLEET_TOPICS_MAX_TOPK;
        fleet_ensemble_score top[FLEET_TOPICS_MAX_TOPK];
        fleet_ensemble_softmax(m->outputs[0], classes, v->spec.temperature);
        res.output = FLEET_OUTPUT_TOPK;
        res.k = fleet_ensemble_topk(m->outputs[0], classes, v->spec.k ? v->spec.k : classes, top);
        for (size_t i = 0; i < res.k; i++) {
            res.classes[i] = top[i].cls;
            res.probs[i] = top[i].prob;
        }
    }
    uint8_t *buf = NULL;
    size_t len = 0;
    if (fleet_msg_result_encode(&res, &buf, &len) == FLEET_TOPICS_OK)
        fleet_link_publish(a->link, topic, buf, len, 0, 0, NULL);
    else
        agent_log(1, a->cfg.log_level, "result not encoded: %s", fleet_topics_last_error());
    free(buf);
}

static double deadline_us(const fleet_link_message *m, const fleet_msg_request *r)
{
    double ms = m->expiry_s ? m->expiry_s * 1000.0 : r->deadline_ms ? r->deadline_ms : 1000.0;
    return m->received_us + ms * 1000.0;
}

static void serve(fleet_agent *a, const fleet_link_message *m)
{
    fleet_msg_request r;
    if (fleet_msg_request_decode(m->payload, m->len, &r) != FLEET_TOPICS_OK) {
        agent_log(3, a->cfg.log_level, "bad request: %s", fleet_topics_last_error());
        pthread_mutex_lock(&a->lock);
        a->stats.bad_messages++;
        pthread_mutex_unlock(&a->lock);
        return;
    }
    pthread_mutex_lock(&a->lock);
    if (strcmp(r.stream, a->stream) != 0) {
        pthread_mutex_unlock(&a->lock);
        return;
    }
    if (fleet_link_now_us() > deadline_us(m, &r)) {
        a->stats.dropped_expired++;
        pthread_mutex_unlock(&a->lock);
        return;
    }
    bool ran = false, failed = false;
    for (size_t i = 0; i < a->n_variants; i++) {
        agent_variant *v = &a->variants[i];
        if (!v->model)
            continue;
        if (!to_floats(&r.tensor, v->model->input, v->model->input_count)) {
            failed = true;
            continue;
        }
        double t0 = fleet_link_now_us();
        if (agent_model_run(v->model) != FLEET_AGENT_OK) {
            failed = true;
            continue;
        }
        double took = fleet_link_now_us() - t0;
        a->latency_ewma_us = a->latency_ewma_us ? 0.8 * a->latency_ewma_us + 0.2 * took : took;
        publish_result(a, v, &r, (uint32_t)took, a->topic_result);
        ran = true;
    }
    a->stats.processed += ran;
    a->stats.failed += failed;
    pthread_mutex_unlock(&a->lock);
}

void *agent_worker(void *arg)
{
    fleet_agent *a = arg;
    fleet_link_message *m;
    while ((m = pop(a)) != NULL) {
        serve(a, m);
        fleet_link_message_free(m);
    }
    return NULL;
}
