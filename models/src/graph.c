/* graph.c: graph passes (aliases, BatchNorm folding, activation fusion, dead code) and cuts. */
#include "model_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int fm_resolve(const fm_graph *g, int value)
{
    while (value >= 0 && g->values[value].alias >= 0)
        value = g->values[value].alias;
    return value;
}

static bool fm_is_output(const fm_graph *g, int value)
{
    for (size_t i = 0; i < g->n_outputs; i++)
        if (fm_resolve(g, g->outputs[i]) == value)
            return true;
    return false;
}

size_t fm_count_consumers(const fm_graph *g, int value)
{
    size_t count = 0;
    for (size_t i = 0; i < g->n_nodes; i++) {
        const fm_node *n = &g->nodes[i];
        if (n->dead)
            continue;
        for (size_t k = 0; k < n->n_in; k++)
            if (n->in[k] >= 0 && fm_resolve(g, n->in[k]) == value)
                count++;
    }
    return count;
}

/* Identity and Dropout only forward their input: readers are sent to the input instead. */
static fleet_model_status fm_fold_aliases(fm_graph *g)
{
    for (size_t i = 0; i < g->n_nodes; i++) {
        fm_node *n = &g->nodes[i];
        if (n->dead || (n->op != FM_OP_IDENTITY && n->op != FM_OP_DROPOUT))
            continue;
        if (n->n_out > 1 && n->out[1] >= 0 && fm_count_consumers(g, n->out[1]) > 0)
            return fm_fail_node(n, FLEET_MODEL_EUNSUPPORTED, "the dropout mask is not supported");
        if (fm_is_output(g, n->out[0]) && g->values[fm_resolve(g, n->in[0])].producer < 0)
            continue; /* graph output straight from an input: keep a real node */
        g->values[n->out[0]].alias = fm_resolve(g, n->in[0]);
        n->dead = true;
    }
    return FLEET_MODEL_OK;
}

/* The single live consumer of value, or NULL when there are none or several. */
static fm_node *fm_sole_consumer(fm_graph *g, int value)
{
    fm_node *found = NULL;
    for (size_t i = 0; i < g->n_nodes; i++) {
        fm_node *n = &g->nodes[i];
        if (n->dead)
            continue;
        for (size_t k = 0; k < n->n_in; k++) {
            if (n->in[k] < 0 || fm_resolve(g, n->in[k]) != value)
                continue;
            if (found && found != n)
                return NULL;
            found = n;
        }
    }
    return found;
}

/* Conv -> BatchNormalization becomes one Conv with scaled weights and a shifted bias. */
static fleet_model_status fm_fold_batchnorm(fm_graph *g, fm_node *bn)
{
    int x = fm_resolve(g, bn->in[0]);
    int producer = g->values[x].producer;
    if (producer < 0 || g->nodes[producer].op != FM_OP_CONV || fm_is_output(g, x) ||
        fm_sole_consumer(g, x) != bn)
        return FLEET_MODEL_OK;
    fm_node *conv = &g->nodes[producer];
    fm_value *w = &g->values[fm_resolve(g, conv->in[1])];
    const float *scale = g->values[fm_resolve(g, bn->in[1])].data;
    const float *shift = g->values[fm_resolve(g, bn->in[2])].data;
    const float *mean = g->values[fm_resolve(g, bn->in[3])].data;
    const float *var = g->values[fm_resolve(g, bn->in[4])].data;
    size_t channels = (size_t)w->dims[0], per_channel = w->count / channels;
    /* Weights may be shared with another node, so the folded ones are new constants. */
    char name[64];
    snprintf(name, sizeof name, "%s#bnfold", bn->name);
    int nw = fm_graph_add_value(g, name), nb = nw >= 0 ? fm_graph_add_value(g, name) : -1;
    if (nw < 0 || nb < 0)
        return fm_fail(FLEET_MODEL_ENOMEM, "out of memory");
    w = &g->values[fm_resolve(g, conv->in[1])]; /* the value array may have moved */
    fm_value *fw = &g->values[nw], *fb = &g->values[nb];
    fw->data = malloc(w->count * sizeof(float));
    fb->data = malloc(channels * sizeof(float));
    if (!fw->data || !fb->data)
        return fm_fail(FLEET_MODEL_ENOMEM, "out of memory");
    const float *old_bias =
        conv->n_in > 2 && conv->in[2] >= 0 ? g->values[fm_resolve(g, conv->in[2])].data : NULL;
    for (size_t c = 0; c < channels; c++) {
        float s = scale[c] / sqrtf(var[c] + bn->a.epsilon);
        for (size_t k = 0; k < per_channel; k++)
            fw->data[c * per_channel + k] = w->data[c * per_channel + k] * s;
        fb->data[c] = ((old_bias ? old_bias[c] : 0.0f) - mean[c]) * s + shift[c];
    }
    fw->is_const = fb->is_const = fw->has_shape = fb->has_shape = true;
    fw->rank = 4;
    memcpy(fw->dims, w->dims, sizeof fw->dims);
    fw->count = w->count;
    fb->rank = 1;
    fb->dims[0] = (int64_t)channels;
    fb->count = channels;
    if (conv->n_in < 3) {
        int *grown = realloc(conv->in, 3 * sizeof *grown);
        if (!grown)
            return fm_fail(FLEET_MODEL_ENOMEM, "out of memory");
        conv->in = grown;
        conv->n_in = 3;
    }
    conv->in[1] = nw;
    conv->in[2] = nb;
    g->values[bn->out[0]].alias = x;
    bn->dead = true;
    return FLEET_MODEL_OK;
}

static bool fm_can_fuse_activation(fm_op op)
{
    return op == FM_OP_CONV || op == FM_OP_GEMM || op == FM_OP_MATMUL || op == FM_OP_ADD ||
           op == FM_OP_MUL || op == FM_OP_MAXPOOL || op == FM_OP_AVGPOOL ||
           op == FM_OP_GLOBALAVGPOOL || op == FM_OP_REDUCEMEAN;
}

/* Relu and constant Clip after an operator with an output range become that range. */
static fleet_model_status fm_fuse_activation(fm_graph *g, fm_node *act)
{
    float lo = 0.0f, hi = INFINITY;
    if (act->op == FM_OP_CLIP) {
        lo = act->a.clip_min;
        hi = act->a.clip_max;
        if (g->opset >= 11) {
            for (size_t k = 1; k < 3 && k < act->n_in; k++) {
                if (act->in[k] < 0)
                    continue;
                const fm_value *b = &g->values[fm_resolve(g, act->in[k])];
                if (!b->is_const || b->is_int || b->count != 1)
                    return FLEET_MODEL_OK; /* compile reports the unsupported bound */
                *(k == 1 ? &lo : &hi) = b->data[0];
            }
        }
    }
    int x = fm_resolve(g, act->in[0]);
    int producer = g->values[x].producer;
    if (producer < 0 || fm_is_output(g, x) || fm_sole_consumer(g, x) != act)
        return FLEET_MODEL_OK;
    fm_node *p = &g->nodes[producer];
    if (!fm_can_fuse_activation(p->op) || p->dead)
        return FLEET_MODEL_OK;
    p->out_min = fmaxf(p->out_min, lo);
    p->out_max = fminf(p->out_max, hi);
    g->values[act->out[0]].alias = x;
    act->dead = true;
    return FLEET_MODEL_OK;
}

/* Marks nodes that no graph output depends on as dead. */
static fleet_model_status fm_remove_dead(fm_graph *g)
{
    bool *needed = calloc(g->n_values + 1, sizeof *needed);
    if (!needed)
        return fm_fail(FLEET_MODEL_ENOMEM, "out of memory");
    for (size_t i = 0; i < g->n_outputs; i++)
        needed[fm_resolve(g, g->outputs[i])] = true;
    for (size_t i = g->n_nodes; i-- > 0;) {
        fm_node *n = &g->nodes[i];
        if (n->dead)
            continue;
        bool live = false;
        for (size_t k = 0; k < n->n_out; k++)
            live |= n->out[k] >= 0 && needed[n->out[k]];
        if (!live) {
            n->dead = true;
            continue;
        }
        for (size_t k = 0; k < n->n_in; k++)
            if (n->in[k] >= 0)
                needed[fm_resolve(g, n->in[k])] = true;
    }
    free(needed);
    return FLEET_MODEL_OK;
}

fleet_model_status fm_optimize(fm_graph *g)
{
    fleet_model_status st = fm_fold_aliases(g);
    for (size_t i = 0; st == FLEET_MODEL_OK && i < g->n_nodes; i++)
        if (!g->nodes[i].dead && g->nodes[i].op == FM_OP_BATCHNORM)
            st = fm_fold_batchnorm(g, &g->nodes[i]);
    for (size_t i = 0; st == FLEET_MODEL_OK && i < g->n_nodes; i++) {
        fm_node *n = &g->nodes[i];
        if (!n->dead && (n->op == FM_OP_RELU || n->op == FM_OP_CLIP))
            st = fm_fuse_activation(g, n);
    }
    if (st == FLEET_MODEL_OK)
        st = fm_remove_dead(g);
    return st;
}

/* HEAD: the cut tensor becomes the only output. TAIL: it becomes the only input. */
fleet_model_status fm_apply_cut(fm_graph *g, fleet_model_part part, const char *tensor)
{
    if (part == FLEET_MODEL_PART_FULL)
        return FLEET_MODEL_OK;
    if (!tensor)
        return fm_fail(FLEET_MODEL_EINVAL, "a head or tail needs a cut tensor name");
    int v = fm_graph_find_value(g, tensor);
    if (v < 0 || g->values[v].is_const)
        return fm_fail(FLEET_MODEL_ENOTFOUND, "tensor '%s' is not computed by the graph", tensor);
    if (g->values[v].producer < 0)
        return fm_fail(FLEET_MODEL_EINVAL, "tensor '%s' is a graph input, not a cut", tensor);
    if (part == FLEET_MODEL_PART_HEAD) {
        g->outputs[0] = v;
        g->n_outputs = 1;
        return fm_remove_dead(g);
    }
    fleet_model_status st = fm_remove_dead(g);
    if (st != FLEET_MODEL_OK)
        return st;
    g->nodes[g->values[v].producer].dead = true;
    g->values[v].producer = -1;
    st = fm_remove_dead(g);
    if (st != FLEET_MODEL_OK)
        return st;
    for (size_t i = 0; i < g->n_inputs; i++)
        if (fm_count_consumers(g, g->inputs[i]) > 0 || fm_is_output(g, g->inputs[i]))
            return fm_fail(FLEET_MODEL_EINVAL,
                           "tensor '%s' is not a cut: the tail still needs input '%s'", tensor,
                           g->values[g->inputs[i]].name);
    /* Dead nodes that still name the removed inputs are never compiled. */
    g->inputs[0] = v;
    g->n_inputs = 1;
    return FLEET_MODEL_OK;
}

static size_t fm_bytes(const fm_value *v)
{
    return fm_value_numel(v) / (size_t)(v->dims[0] ? v->dims[0] : 1);
}

/* A cut after node i exists when exactly one computed tensor is alive across that point. */
fleet_model_status fm_find_cuts(const fm_graph *g, fm_cut_list *out)
{
    fleet_model_status st = FLEET_MODEL_OK;
    int *last_use = malloc((g->n_values + 1) * sizeof *last_use);
    fleet_model_cut *cuts = calloc(g->n_nodes + 1, sizeof *cuts);
    if (!last_use || !cuts) {
        st = fm_fail(FLEET_MODEL_ENOMEM, "out of memory");
        goto cleanup;
    }
    for (size_t v = 0; v < g->n_values; v++)
        last_use[v] = -1;
    for (size_t i = 0; i < g->n_nodes; i++) {
        const fm_node *n = &g->nodes[i];
        for (size_t k = 0; !n->dead && k < n->n_in; k++)
            if (n->in[k] >= 0)
                last_use[fm_resolve(g, n->in[k])] = (int)i;
    }
    for (size_t i = 0; i < g->n_outputs; i++)
        last_use[fm_resolve(g, g->outputs[i])] = (int)g->n_nodes;
    size_t input_bytes = 0, count = 0, smallest = SIZE_MAX;
    for (size_t i = 0; i < g->n_inputs; i++)
        input_bytes += fm_bytes(&g->values[g->inputs[i]]) * sizeof(float);
    for (size_t i = 0; i + 1 < g->n_nodes; i++) {
        if (g->nodes[i].dead)
            continue;
        int alive = -1, crossing = 0;
        for (size_t v = 0; v < g->n_values; v++) {
            const fm_value *val = &g->values[v];
            bool made = !val->is_const && (val->producer < 0 || val->producer <= (int)i);
            if (made && val->alias < 0 && last_use[v] > (int)i) {
                crossing++;
                alive = (int)v;
            }
        }
        if (crossing != 1 || g->values[alive].producer < 0 || last_use[alive] == (int)g->n_nodes)
            continue;
        if (count > 0 && strcmp(cuts[count - 1].tensor, g->values[alive].name) == 0)
            continue;
        const fm_value *val = &g->values[alive];
        fleet_model_cut *c = &cuts[count++];
        c->tensor = val->name;
        c->node_index = i;
        c->rank = val->rank;
        for (size_t d = 0; d < val->rank; d++)
            c->dims[d] = d == 0 ? 1 : (size_t)val->dims[d];
        c->bytes_int8 = fm_bytes(val);
        c->bytes_f32 = c->bytes_int8 * sizeof(float);
        c->natural_bottleneck = c->bytes_f32 < input_bytes && c->bytes_f32 < smallest;
        if (c->bytes_f32 < smallest)
            smallest = c->bytes_f32;
    }
    out->cuts = cuts;
    out->count = count;
    cuts = NULL;
cleanup:
    free(last_use);
    free(cuts);
    return st;
}
