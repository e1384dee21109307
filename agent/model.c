/* model.c: a loaded variant model, its input and output buffers, and its measured latency. */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define AGENT_LATENCY_RUNS 9

void agent_model_close(agent_model *m)
{
    if (!m)
        return;
    fleet_model_destroy(m->model);
    free(m->input);
    for (size_t i = 0; i < m->n_outputs; i++)
        free(m->outputs[i]);
    free(m->features);
    free(m);
}

fleet_agent_status agent_model_run(agent_model *m)
{
    const float *ins[1] = {m->input};
    if (fleet_model_run(m->model, ins, m->outputs) != FLEET_MODEL_OK)
        return agent_fail(FLEET_AGENT_EINVAL, "inference failed: %s", fleet_model_last_error());
    return FLEET_AGENT_OK;
}

static int compare_doubles(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* Median of single-sample runs on zeros: what this gateway tells the coordinator. */
static fleet_agent_status measure_latency(agent_model *m)
{
    double t[AGENT_LATENCY_RUNS];
    for (int i = 0; i < AGENT_LATENCY_RUNS; i++) {
        double t0 = fleet_link_now_us();
        fleet_agent_status st = agent_model_run(m);
        if (st != FLEET_AGENT_OK)
            return st;
        t[i] = fleet_link_now_us() - t0;
    }
    qsort(t, AGENT_LATENCY_RUNS, sizeof t[0], compare_doubles);
    double median = t[AGENT_LATENCY_RUNS / 2];
    m->latency_us = median < 1.0 ? 1 : median > 4e9 ? UINT32_MAX : (uint32_t)median;
    return FLEET_AGENT_OK;
}

/* One input; up to AGENT_MAX_OUTPUTS outputs, class scores first (at most 65536 classes). */
static fleet_agent_status allocate_buffers(agent_model *m)
{
    fleet_model_tensor_info info;
    size_t outputs = fleet_model_output_count(m->model);
    if (fleet_model_input_count(m->model) != 1 || outputs < 1 || outputs > AGENT_MAX_OUTPUTS)
        return agent_fail(FLEET_AGENT_EINVAL, "a variant has one input and 1 to %d outputs",
                          AGENT_MAX_OUTPUTS);
    fleet_model_input_info(m->model, 0, &info);
    m->input_count = info.count;
    if (!(m->input = calloc(info.count, sizeof(float))))
        return agent_fail(FLEET_AGENT_ENOMEM, "out of memory for the model's input");
    for (; m->n_outputs < outputs; m->n_outputs++) {
        fleet_model_output_info(m->model, m->n_outputs, &info);
        m->output_counts[m->n_outputs] = info.count;
        if (!(m->outputs[m->n_outputs] = calloc(info.count, sizeof(float))))
            return agent_fail(FLEET_AGENT_ENOMEM, "out of memory for the model's outputs");
    }
    if (m->output_counts[0] < 1 || m->output_counts[0] > 65536)
        return agent_fail(FLEET_AGENT_EINVAL, "the first output has %zu classes (1 to 65536)",
                          m->output_counts[0]);
    if (outputs > 1 && m->output_counts[1] <= FLEET_TOPICS_MAX_TENSOR &&
        !(m->features = malloc(m->output_counts[1])))
        return agent_fail(FLEET_AGENT_ENOMEM, "out of memory for the model's features");
    return FLEET_AGENT_OK;
}

/* feature_scale > 0 and an integer feature_zero_point in [-128, 127], both or neither. */
static void read_feature_qparams(agent_model *m)
{
    const char *scale = fleet_model_metadata(m->model, "feature_scale");
    const char *zero = fleet_model_metadata(m->model, "feature_zero_point");
    if (!scale || !zero)
        return;
    char *end_scale = NULL, *end_zero = NULL;
    float s = strtof(scale, &end_scale);
    long z = strtol(zero, &end_zero, 10);
    if (*end_scale || *end_zero || !(s > 0.0f) || !isfinite(s) || z < -128 || z > 127)
        return;
    m->feature_q = (fleet_model_qparams){.scale = s, .zero_point = (int32_t)z};
    m->feature_q_fixed = true;
}

fleet_agent_status agent_model_load(const fleet_agent *a, const uint8_t *data, size_t size,
                                    agent_model **out)
{
    fleet_model_options o;
    fleet_model_options_init(&o);
    o.threads = a->cfg.threads;
    o.max_file_bytes = AGENT_MAX_MODEL_BYTES;
    agent_model *m = calloc(1, sizeof *m);
    if (!m)
        return agent_fail(FLEET_AGENT_ENOMEM, "out of memory");
    fleet_agent_status st = FLEET_AGENT_OK;
    if (fleet_model_load_buffer(data, size, &o, &m->model) != FLEET_MODEL_OK) {
        st = agent_fail(FLEET_AGENT_EINVAL, "%s", fleet_model_last_error());
        goto fail;
    }
    if ((st = allocate_buffers(m)) != FLEET_AGENT_OK || (st = measure_latency(m)) != FLEET_AGENT_OK)
        goto fail;
    read_feature_qparams(m);
    *out = m;
    return FLEET_AGENT_OK;
fail:
    agent_model_close(m);
    return st;
}
