/* compile.c: builds one XNNPACK subgraph and runtime from the IR and moves data across its edge. */
#include "compile.h"

#include <pthreadpool.h>

#include <stdlib.h>
#include <string.h>

typedef struct fm_ext {
    float *buffer; /* physical layout, XNN_EXTRA_BYTES of slack */
    size_t count;
    fm_slot slot;
    int64_t dims[FM_MAX_DIMS]; /* logical (ONNX) dims */
    size_t rank;
} fm_ext;

struct fm_compiled {
    xnn_runtime_t runtime;
    pthreadpool_t pool;
    float **owned;
    size_t n_owned;
    fm_ext *inputs, *outputs;
    size_t n_inputs, n_outputs;
    size_t xnn_nodes;
};

const fm_value *fm_ctx_value(const fm_ctx *cx, const fm_node *n, size_t i)
{
    if (i >= n->n_in || n->in[i] == FM_NO_VALUE)
        return NULL;
    return &cx->g->values[fm_resolve(cx->g, n->in[i])];
}

fm_slot *fm_ctx_slot(fm_ctx *cx, const fm_node *n, size_t i)
{
    if (i >= n->n_in || n->in[i] == FM_NO_VALUE)
        return NULL;
    return &cx->slots[fm_resolve(cx->g, n->in[i])];
}

float *fm_ctx_alloc(fm_ctx *cx, size_t count)
{
    if (cx->n_owned == cx->cap_owned) {
        size_t cap = cx->cap_owned ? 2 * cx->cap_owned : 32;
        float **grown = realloc(cx->owned, cap * sizeof *grown);
        if (!grown)
            return NULL;
        cx->owned = grown;
        cx->cap_owned = cap;
    }
    float *p = calloc(count + XNN_EXTRA_BYTES / sizeof(float) + 1, sizeof(float));
    if (p)
        cx->owned[cx->n_owned++] = p;
    return p;
}

fleet_model_status fm_ctx_check(fm_ctx *cx, const fm_node *n, enum xnn_status status,
                                const char *what)
{
    if (status == xnn_status_success) {
        cx->xnn_nodes++;
        return FLEET_MODEL_OK;
    }
    return fm_fail_node(n, FLEET_MODEL_EBACKEND, "XNNPACK rejected %s (status %d)", what,
                        (int)status);
}

/* Defines a static tensor; data must come from fm_ctx_alloc (owned until the runtime dies). */
fleet_model_status fm_ctx_static(fm_ctx *cx, const fm_node *n, float *data, size_t rank,
                                 const size_t *dims, uint32_t *id)
{
    enum xnn_status s = xnn_define_tensor_value(cx->subgraph, xnn_datatype_fp32, rank, dims, data,
                                                XNN_INVALID_VALUE_ID, 0, id);
    if (s != xnn_status_success)
        return fm_fail_node(n, FLEET_MODEL_EBACKEND, "XNNPACK rejected a constant (status %d)",
                            (int)s);
    return FLEET_MODEL_OK;
}

static int fm_output_index(const fm_graph *g, int value)
{
    for (size_t i = 0; i < g->n_outputs; i++)
        if (fm_resolve(g, g->outputs[i]) == value)
            return (int)i;
    return -1;
}

/* Defines the node's first output; graph outputs become XNNPACK external outputs. */
fleet_model_status fm_ctx_output(fm_ctx *cx, const fm_node *n, fm_layout layout, size_t rank,
                                 const size_t *dims)
{
    int value = n->out[0];
    fm_slot *slot = &cx->slots[value];
    int out = fm_output_index(cx->g, value);
    uint32_t external = out >= 0 ? (uint32_t)(cx->g->n_inputs + (size_t)out) : XNN_INVALID_VALUE_ID;
    enum xnn_status s =
        xnn_define_tensor_value(cx->subgraph, xnn_datatype_fp32, rank, dims, NULL, external,
                                out >= 0 ? XNN_VALUE_FLAG_EXTERNAL_OUTPUT : 0, &slot->id);
    if (s != xnn_status_success)
        return fm_fail_node(n, FLEET_MODEL_EBACKEND, "XNNPACK rejected the output (status %d)",
                            (int)s);
    slot->layout = layout;
    slot->rank = rank;
    memcpy(slot->dims, dims, rank * sizeof *dims);
    return FLEET_MODEL_OK;
}

void fm_nhwc_dims(const int64_t *nchw, size_t *out)
{
    out[0] = (size_t)nchw[0];
    out[1] = (size_t)nchw[2];
    out[2] = (size_t)nchw[3];
    out[3] = (size_t)nchw[1];
}

static fleet_model_status fm_define_inputs(fm_ctx *cx)
{
    for (size_t i = 0; i < cx->g->n_inputs; i++) {
        int value = cx->g->inputs[i];
        const fm_value *v = &cx->g->values[value];
        fm_slot *slot = &cx->slots[value];
        slot->rank = v->rank;
        slot->layout = v->rank == 4 ? FM_LAYOUT_NHWC : FM_LAYOUT_PLAIN;
        if (v->rank == 4)
            fm_nhwc_dims(v->dims, slot->dims);
        else
            for (size_t d = 0; d < v->rank; d++)
                slot->dims[d] = (size_t)v->dims[d];
        enum xnn_status s =
            xnn_define_tensor_value(cx->subgraph, xnn_datatype_fp32, slot->rank, slot->dims, NULL,
                                    (uint32_t)i, XNN_VALUE_FLAG_EXTERNAL_INPUT, &slot->id);
        if (s != xnn_status_success)
            return fm_fail(FLEET_MODEL_EBACKEND, "XNNPACK rejected input '%s' (status %d)", v->name,
                           (int)s);
    }
    return FLEET_MODEL_OK;
}

static fleet_model_status fm_make_ext(const fm_graph *g, fm_slot *slots, int value, fm_ext *e)
{
    const fm_value *v = &g->values[value];
    e->slot = slots[value];
    e->rank = v->rank;
    memcpy(e->dims, v->dims, sizeof e->dims);
    e->count = fm_value_numel(v);
    e->buffer = calloc(e->count + XNN_EXTRA_BYTES / sizeof(float) + 1, sizeof(float));
    if (!e->buffer)
        return fm_fail(FLEET_MODEL_ENOMEM, "out of memory for tensor '%s'", v->name);
    return FLEET_MODEL_OK;
}

static fleet_model_status fm_bind_externals(fm_compiled *c, const fm_graph *g, fm_slot *slots)
{
    fleet_model_status st = FLEET_MODEL_OK;
    size_t n = g->n_inputs + g->n_outputs;
    struct xnn_external_value *ext = calloc(n, sizeof *ext);
    c->inputs = calloc(g->n_inputs, sizeof *c->inputs);
    c->outputs = calloc(g->n_outputs, sizeof *c->outputs);
    if (!ext || !c->inputs || !c->outputs) {
        st = fm_fail(FLEET_MODEL_ENOMEM, "out of memory");
        goto cleanup;
    }
    for (size_t i = 0; i < g->n_inputs && st == FLEET_MODEL_OK; i++, c->n_inputs++)
        st = fm_make_ext(g, slots, g->inputs[i], &c->inputs[i]);
    for (size_t i = 0; i < g->n_outputs && st == FLEET_MODEL_OK; i++, c->n_outputs++)
        st = fm_make_ext(g, slots, fm_resolve(g, g->outputs[i]), &c->outputs[i]);
    if (st != FLEET_MODEL_OK)
        goto cleanup;
    for (size_t i = 0; i < n; i++) {
        ext[i].id = (uint32_t)i;
        ext[i].data = i < g->n_inputs ? c->inputs[i].buffer : c->outputs[i - g->n_inputs].buffer;
    }
    enum xnn_status s = xnn_setup_runtime(c->runtime, n, ext);
    if (s != xnn_status_success)
        st = fm_fail(FLEET_MODEL_EBACKEND, "XNNPACK could not set up the runtime (status %d)",
                     (int)s);
cleanup:
    free(ext);
    return st;
}

static fleet_model_status fm_check_outputs(const fm_graph *g)
{
    for (size_t i = 0; i < g->n_outputs; i++) {
        const fm_value *v = &g->values[fm_resolve(g, g->outputs[i])];
        if (v->producer < 0 || v->is_const)
            return fm_fail(FLEET_MODEL_EUNSUPPORTED,
                           "graph output '%s' is an input or a constant, not a computed tensor",
                           v->name);
        for (size_t k = 0; k < i; k++)
            if (fm_resolve(g, g->outputs[k]) == fm_resolve(g, g->outputs[i]))
                return fm_fail(FLEET_MODEL_EUNSUPPORTED, "graph output '%s' is listed twice",
                               v->name);
    }
    return FLEET_MODEL_OK;
}

static fleet_model_status fm_build_subgraph(fm_ctx *cx)
{
    const fm_graph *g = cx->g;
    enum xnn_status s =
        xnn_create_subgraph((uint32_t)(g->n_inputs + g->n_outputs), 0, &cx->subgraph);
    if (s != xnn_status_success)
        return fm_fail(FLEET_MODEL_EBACKEND, "XNNPACK could not create a subgraph (status %d)",
                       (int)s);
    fleet_model_status st = fm_define_inputs(cx);
    for (size_t i = 0; i < g->n_nodes && st == FLEET_MODEL_OK; i++)
        if (!g->nodes[i].dead)
            st = fm_lower_node(cx, &g->nodes[i]);
    return st;
}

fleet_model_status fm_compile(const fm_graph *g, size_t threads, fm_compiled **out)
{
    fleet_model_status st = FLEET_MODEL_OK;
    fm_ctx cx = {.g = g};
    fm_compiled *c = calloc(1, sizeof *c);
    cx.slots = calloc(g->n_values + 1, sizeof *cx.slots);
    if (!c || !cx.slots) {
        st = fm_fail(FLEET_MODEL_ENOMEM, "out of memory");
        goto cleanup;
    }
    if (xnn_initialize(NULL) != xnn_status_success) {
        st = fm_fail(FLEET_MODEL_EBACKEND, "XNNPACK does not support this CPU");
        goto cleanup;
    }
    for (size_t i = 0; i < g->n_values; i++)
        cx.slots[i].id = XNN_INVALID_VALUE_ID;
    if ((st = fm_check_outputs(g)) != FLEET_MODEL_OK ||
        (st = fm_build_subgraph(&cx)) != FLEET_MODEL_OK)
        goto cleanup;
    if (threads > 1 && !(c->pool = pthreadpool_create(threads))) {
        st = fm_fail(FLEET_MODEL_ESYSERR, "could not start %zu threads", threads);
        goto cleanup;
    }
    enum xnn_status s = xnn_create_runtime_v2(cx.subgraph, c->pool, 0, &c->runtime);
    if (s != xnn_status_success) {
        st = fm_fail(FLEET_MODEL_EBACKEND, "XNNPACK could not create the runtime (status %d)",
                     (int)s);
        goto cleanup;
    }
    c->owned = cx.owned;
    c->n_owned = cx.n_owned;
    cx.owned = NULL;
    cx.n_owned = 0;
    c->xnn_nodes = cx.xnn_nodes;
    if ((st = fm_bind_externals(c, g, cx.slots)) != FLEET_MODEL_OK)
        goto cleanup;
    *out = c;
    c = NULL;
cleanup:
    if (cx.subgraph)
        xnn_delete_subgraph(cx.subgraph);
    for (size_t i = 0; i < cx.n_owned; i++)
        free(cx.owned[i]);
    free(cx.owned);
    free(cx.slots);
    fm_compiled_free(c);
    return st;
}

void fm_compiled_free(fm_compiled *c)
{
    if (!c)
        return;
    if (c->runtime)
        xnn_delete_runtime(c->runtime);
    if (c->pool)
        pthreadpool_destroy(c->pool);
    for (size_t i = 0; i < c->n_owned; i++)
        free(c->owned[i]);
    for (size_t i = 0; i < c->n_inputs; i++)
        free(c->inputs[i].buffer);
    for (size_t i = 0; i < c->n_outputs; i++)
        free(c->outputs[i].buffer);
    free(c->owned);
    free(c->inputs);
    free(c->outputs);
    free(c);
}

size_t fm_compiled_xnn_nodes(const fm_compiled *c)
{
    return c->xnn_nodes;
}

/* Copies between ONNX order and the physical order; to_physical picks the direction. */
static void fm_convert(const fm_ext *e, float *physical, float *onnx, int to_physical)
{
    const fm_slot *s = &e->slot;
    size_t n = (size_t)e->dims[0], c, hw;
    if (s->layout == FM_LAYOUT_NHWC) {
        c = (size_t)e->dims[1];
        hw = (size_t)(e->dims[2] * e->dims[3]);
    } else if (s->layout == FM_LAYOUT_FLAT_HWC) {
        c = (size_t)s->c;
        hw = (size_t)(s->h * s->w);
    } else {
        c = hw = 1;
    }
    if (c == 1 || hw == 1) {
        if (to_physical)
            memcpy(physical, onnx, e->count * sizeof(float));
        else
            memcpy(onnx, physical, e->count * sizeof(float));
        return;
    }
    for (size_t b = 0; b < n; b++) {
        float *p = physical + b * c * hw, *o = onnx + b * c * hw;
        for (size_t ch = 0; ch < c; ch++)
            for (size_t i = 0; i < hw; i++) {
                if (to_physical)
                    p[i * c + ch] = o[ch * hw + i];
                else
                    o[ch * hw + i] = p[i * c + ch];
            }
    }
}

fleet_model_status fm_compiled_run(fm_compiled *c, const float *const *inputs,
                                   float *const *outputs)
{
    for (size_t i = 0; i < c->n_inputs; i++)
        fm_convert(&c->inputs[i], c->inputs[i].buffer, (float *)inputs[i], 1);
    enum xnn_status s = xnn_invoke_runtime(c->runtime);
    if (s != xnn_status_success)
        return fm_fail(FLEET_MODEL_EBACKEND, "XNNPACK failed to run (status %d)", (int)s);
    for (size_t i = 0; i < c->n_outputs; i++)
        fm_convert(&c->outputs[i], c->outputs[i].buffer, outputs[i], 0);
    return FLEET_MODEL_OK;
}
