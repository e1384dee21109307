/* op_models.c: turns the rows of op_cases.c into serialized ONNX models and input data. */
#include "op_models.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_build.h"
#include "op_cases.h"

enum { OPM_MAX_NODES = 32 };

/* Input data and weights come from separate streams so that adding a weight to a case leaves
 * its inputs alone. */
#define OPM_INPUT_STREAM 0x9e3779b97f4a7c15ULL

typedef struct opm_build {
    const opm_case *c;
    ob_model *ob;
    op_model *out;
    uint64_t rng;       /* weights */
    size_t n_weights;   /* for naming initializers */
    size_t n_constants; /* for naming Constant outputs */
    const char *input_names[OP_MODEL_MAX_INPUTS];
    const char *node_outputs[OPM_MAX_NODES];
} opm_build;

static void opm__die(const char *case_name, const char *what)
{
    fprintf(stderr, "op_models: case %s: %s\n", case_name, what);
    abort();
}

static void *opm__xcalloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size);
    if (p == NULL) {
        opm__die("-", "out of memory");
    }
    return p;
}

uint64_t op_models_fnv1a64(const void *data, size_t size)
{
    const uint8_t *bytes = data;
    uint64_t hash = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < size; i++) {
        hash ^= bytes[i];
        hash *= 0x100000001b3ULL;
    }
    return hash;
}

static uint64_t opm__splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* 24 random bits scaled into [lo, hi): exact in float and the same on every IEEE host. */
static void opm__fill(uint64_t *state, float *values, size_t count, float lo, float hi)
{
    if (lo == 0.0f && hi == 0.0f) {
        lo = -1.0f;
        hi = 1.0f;
    }
    for (size_t i = 0; i < count; i++) {
        double unit = (double)(opm__splitmix64(state) >> 40) / 16777216.0;
        values[i] = (float)(lo + (hi - lo) * unit);
    }
}

static size_t opm__count(const opm_tensor *t)
{
    size_t count = 1;
    for (size_t i = 0; i < t->rank; i++) {
        count *= (size_t)t->dims[i];
    }
    return count;
}

/* The float tensor a weight or Constant spec describes: its explicit values or random ones. */
static Onnx__TensorProto *opm__float_tensor(opm_build *b, const opm_tensor *t, const char *name)
{
    size_t count = opm__count(t);
    float *values = opm__xcalloc(count, sizeof(float));
    if (t->values != NULL) {
        if (t->count != count) {
            opm__die(b->c->name, "explicit values do not match the shape");
        }
        memcpy(values, t->values, count * sizeof(float));
    } else {
        opm__fill(&b->rng, values, count, t->lo, t->hi);
    }
    Onnx__TensorProto *tensor = ob_tensor_f32(b->ob, name, t->rank, t->dims, values);
    free(values);
    return tensor;
}

static const char *opm__graph_input(opm_build *b, const opm_tensor *t)
{
    op_model *m = b->out;
    size_t k = m->n_inputs;
    if (k == OP_MODEL_MAX_INPUTS || t->rank > OP_MODEL_MAX_DIMS || t->rank == 0) {
        opm__die(b->c->name, "bad graph input");
    }
    op_model_input *in = &m->inputs[k];
    in->rank = t->rank;
    for (size_t i = 0; i < t->rank; i++) {
        in->dims[i] = (size_t)t->dims[i];
    }
    in->count = opm__count(t);
    in->data = opm__xcalloc(in->count, sizeof(float));
    uint64_t stream = op_models_fnv1a64(b->c->name, strlen(b->c->name)) ^ OPM_INPUT_STREAM ^ k;
    opm__fill(&stream, in->data, in->count, t->lo, t->hi);
    if (k > 0 && in->dims[0] != m->batch) {
        opm__die(b->c->name, "inputs disagree on the batch size");
    }
    m->batch = in->dims[0];
    m->n_inputs++;

    const char *name = ob_name(b->ob, "x%zu", k);
    int fixed = (b->c->flags & OPM_FLAG_FIXED_BATCH) != 0;
    ob_add_input(b->ob, name, t->rank, t->dims, fixed ? NULL : "N");
    b->input_names[k] = name;
    return name;
}

/* The tensor name a node input refers to, creating the input, initializer or Constant node
 * it describes. */
static const char *opm__source(opm_build *b, size_t node_index, const opm_tensor *t)
{
    switch (t->source) {
    case OPM_GRAPH_INPUT:
        return opm__graph_input(b, t);
    case OPM_INPUT_REF:
        if (t->ref >= b->out->n_inputs) {
            opm__die(b->c->name, "reference to an undeclared graph input");
        }
        return b->input_names[t->ref];
    case OPM_WEIGHT: {
        const char *name = ob_name(b->ob, "w%zu", b->n_weights++);
        ob_add_initializer(b->ob, opm__float_tensor(b, t, name));
        return name;
    }
    case OPM_WEIGHT_I64: {
        const char *name = ob_name(b->ob, "w%zu", b->n_weights++);
        ob_add_initializer(b->ob, ob_tensor_i64(b->ob, name, t->count, t->ints));
        return name;
    }
    case OPM_CONSTANT: {
        const char *name = ob_name(b->ob, "c%zu", b->n_constants++);
        Onnx__NodeProto *node = ob_add_node(b->ob, "Constant", 0, NULL, name);
        ob_attr_tensor(b->ob, node, "value", opm__float_tensor(b, t, NULL));
        return name;
    }
    case OPM_PREVIOUS:
        if (node_index == 0) {
            opm__die(b->c->name, "first node has no previous node");
        }
        return b->node_outputs[node_index - 1];
    case OPM_NODE_REF:
        if (t->ref >= node_index) {
            opm__die(b->c->name, "reference to a later node");
        }
        return b->node_outputs[t->ref];
    case OPM_ABSENT:
        return "";
    case OPM_END:
        break;
    }
    opm__die(b->c->name, "bad input source");
    return NULL;
}

static void opm__attr(opm_build *b, Onnx__NodeProto *node, const opm_attr *a)
{
    switch (a->kind) {
    case OPM_ATTR_INT:
        ob_attr_int(b->ob, node, a->name, a->i);
        return;
    case OPM_ATTR_FLOAT:
        ob_attr_float(b->ob, node, a->name, a->f);
        return;
    case OPM_ATTR_STRING:
        ob_attr_string(b->ob, node, a->name, a->s);
        return;
    case OPM_ATTR_INTS:
        ob_attr_ints(b->ob, node, a->name, a->count, a->ints);
        return;
    case OPM_ATTR_FLOATS:
        ob_attr_floats(b->ob, node, a->name, a->count, a->floats);
        return;
    case OPM_ATTR_END:
        break;
    }
    opm__die(b->c->name, "bad attribute kind");
}

/* The last used slot decides the input count, so absent inputs in the middle stay "". */
static size_t opm__input_count(const opm_node *n)
{
    size_t count = 0;
    for (size_t i = 0; i < OPM_MAX_NODE_INPUTS; i++) {
        if (n->in[i].source != OPM_END) {
            count = i + 1;
        }
    }
    return count;
}

static void opm__node(opm_build *b, size_t index)
{
    const opm_node *n = &b->c->nodes[index];
    const char *inputs[OPM_MAX_NODE_INPUTS];
    size_t n_inputs = opm__input_count(n);
    for (size_t i = 0; i < n_inputs; i++) {
        inputs[i] = opm__source(b, index, &n->in[i]);
    }
    const char *output = ob_name(b->ob, "t%zu", index);
    Onnx__NodeProto *node = ob_add_node(b->ob, n->op, n_inputs, inputs, output);
    for (size_t i = 0; i < OPM_MAX_NODE_ATTRS && n->attrs[i].kind != OPM_ATTR_END; i++) {
        opm__attr(b, node, &n->attrs[i]);
    }
    b->node_outputs[index] = output;
}

static void opm__outputs(opm_build *b)
{
    const opm_case *c = b->c;
    for (size_t i = 0; i < c->n_nodes; i++) {
        if (c->nodes[i].graph_output) {
            ob_add_output(b->ob, b->node_outputs[i]);
            b->out->n_outputs++;
        }
    }
    if (b->out->n_outputs == 0) {
        ob_add_output(b->ob, b->node_outputs[c->n_nodes - 1]);
        b->out->n_outputs = 1;
    }
}

size_t op_models_count(void)
{
    return opm_case_count;
}

const char *op_models_name(size_t index)
{
    return index < opm_case_count ? opm_cases[index].name : NULL;
}

int op_models_build(size_t index, op_model *out)
{
    int rc = -1;
    op_model m = {0};
    opm_build b = {0};
    memset(out, 0, sizeof(*out));
    if (index >= opm_case_count) {
        goto cleanup;
    }
    b.c = &opm_cases[index];
    if (b.c->n_nodes == 0 || b.c->n_nodes > OPM_MAX_NODES) {
        opm__die(b.c->name, "bad node count");
    }
    b.out = &m;
    b.rng = op_models_fnv1a64(b.c->name, strlen(b.c->name));
    b.ob = ob_create(b.c->name, b.c->opset, (b.c->flags & OPM_FLAG_TYPED_DATA) != 0);
    m.name = b.c->name;
    m.batch_fixed = (b.c->flags & OPM_FLAG_FIXED_BATCH) != 0;
    for (size_t i = 0; i < b.c->n_nodes; i++) {
        opm__node(&b, i);
    }
    opm__outputs(&b);
    ob_pack(b.ob, &m.bytes, &m.size);
    *out = m;
    memset(&m, 0, sizeof(m));
    rc = 0;
cleanup:
    ob_destroy(b.ob);
    op_models_free(&m);
    return rc;
}

void op_models_free(op_model *model)
{
    if (model == NULL) {
        return;
    }
    for (size_t i = 0; i < model->n_inputs; i++) {
        free(model->inputs[i].data);
    }
    free(model->bytes);
    memset(model, 0, sizeof(*model));
}
