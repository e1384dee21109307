/* onnx_import.c: turns an ONNX ModelProto (decoded by protobuf-c) into the graph IR. */
#include "model_internal.h"

#include <onnx/onnx.pb-c.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct fm_op_spec {
    const char *type;
    fm_op op;
    const char *attrs; /* space-separated attribute names the importer understands */
} fm_op_spec;

static const fm_op_spec fm_op_specs[] = {
    {"Conv", FM_OP_CONV, " kernel_shape strides pads dilations group auto_pad "},
    {"Gemm", FM_OP_GEMM, " alpha beta transA transB "},
    {"MatMul", FM_OP_MATMUL, " "},
    {"Add", FM_OP_ADD, " "},
    {"Mul", FM_OP_MUL, " "},
    {"Relu", FM_OP_RELU, " "},
    {"Clip", FM_OP_CLIP, " min max "},
    {"Sigmoid", FM_OP_SIGMOID, " "},
    {"HardSwish", FM_OP_HARDSWISH, " "},
    {"HardSigmoid", FM_OP_HARDSIGMOID, " alpha beta "},
    {"MaxPool", FM_OP_MAXPOOL,
     " kernel_shape strides pads dilations auto_pad ceil_mode storage_order "},
    {"AveragePool", FM_OP_AVGPOOL,
     " kernel_shape strides pads auto_pad ceil_mode count_include_pad "},
    {"GlobalAveragePool", FM_OP_GLOBALAVGPOOL, " "},
    {"ReduceMean", FM_OP_REDUCEMEAN, " axes keepdims "},
    {"Flatten", FM_OP_FLATTEN, " axis "},
    {"Reshape", FM_OP_RESHAPE, " allowzero "},
    {"BatchNormalization", FM_OP_BATCHNORM, " epsilon momentum training_mode spatial is_test "},
    {"Softmax", FM_OP_SOFTMAX, " axis "},
    {"Pad", FM_OP_PAD, " mode pads value "},
    {"Resize", FM_OP_RESIZE,
     " mode coordinate_transformation_mode nearest_mode cubic_coeff_a exclude_outside "
     "extrapolation_value "},
    {"Constant", FM_OP_CONSTANT, " value value_float value_floats value_int value_ints "},
    {"Identity", FM_OP_IDENTITY, " "},
    {"Dropout", FM_OP_DROPOUT, " ratio seed is_test "},
};

static char *fm_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *copy = malloc(n);
    if (copy)
        memcpy(copy, s, n);
    return copy;
}

int fm_graph_find_value(const fm_graph *g, const char *name)
{
    for (size_t i = 0; i < g->n_values; i++)
        if (strcmp(g->values[i].name, name) == 0)
            return (int)i;
    return FM_NO_VALUE;
}

/* Returns the new value's index, or -1 when out of memory. */
int fm_graph_add_value(fm_graph *g, const char *name)
{
    if (g->n_values == g->cap_values) {
        size_t cap = g->cap_values ? 2 * g->cap_values : 64;
        fm_value *grown = realloc(g->values, cap * sizeof *grown);
        if (!grown)
            return -1;
        g->values = grown;
        g->cap_values = cap;
    }
    fm_value *v = &g->values[g->n_values];
    memset(v, 0, sizeof *v);
    v->name = fm_strdup(name);
    if (!v->name)
        return -1;
    v->producer = -1;
    v->alias = -1;
    return (int)g->n_values++;
}

void fm_graph_free(fm_graph *g)
{
    if (!g)
        return;
    for (size_t i = 0; i < g->n_values; i++) {
        free(g->values[i].name);
        free(g->values[i].data);
        free(g->values[i].ints);
    }
    for (size_t i = 0; i < g->n_nodes; i++) {
        free(g->nodes[i].name);
        free(g->nodes[i].op_type);
        free(g->nodes[i].in);
        free(g->nodes[i].out);
    }
    for (size_t i = 0; i < g->n_meta; i++) {
        free(g->meta_keys[i]);
        free(g->meta_values[i]);
    }
    free(g->meta_keys);
    free(g->meta_values);
    free(g->values);
    free(g->nodes);
    free(g->inputs);
    free(g->outputs);
    free(g);
}

static fleet_model_status fm_tensor_count(const Onnx__TensorProto *t, size_t *count)
{
    size_t n = 1;
    if (t->n_dims > FM_MAX_DIMS)
        return fm_fail(FLEET_MODEL_EUNSUPPORTED, "tensor '%s' has %zu dimensions (at most %d)",
                       t->name ? t->name : "", t->n_dims, FM_MAX_DIMS);
    for (size_t i = 0; i < t->n_dims; i++) {
        if (t->dims[i] < 0)
            return fm_fail(FLEET_MODEL_EMALFORMED, "tensor '%s' has a negative dimension",
                           t->name ? t->name : "");
        if (t->dims[i] > 0 && n > (size_t)FM_MAX_ELEMENTS / (size_t)t->dims[i])
            return fm_fail(FLEET_MODEL_ETOOBIG, "tensor '%s' is too large", t->name ? t->name : "");
        n *= (size_t)t->dims[i];
    }
    *count = n;
    return FLEET_MODEL_OK;
}

/* Copies a float or int64 TensorProto into value v (which takes ownership of the copy). */
static fleet_model_status fm_load_tensor(const Onnx__TensorProto *t, fm_value *v)
{
    size_t count = 0;
    fleet_model_status st = fm_tensor_count(t, &count);
    if (st != FLEET_MODEL_OK)
        return st;
    if (t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
        return fm_fail(FLEET_MODEL_EUNSUPPORTED, "tensor '%s' uses external data", v->name);
    int type = t->has_data_type ? t->data_type : 0;
    size_t width = type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT   ? sizeof(float)
                   : type == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 ? sizeof(int64_t)
                   : type == ONNX__TENSOR_PROTO__DATA_TYPE__INT32 ? sizeof(int32_t)
                                                                  : 0;
    if (width == 0)
        return fm_fail(FLEET_MODEL_EUNSUPPORTED,
                       "tensor '%s' has data type %d (float32 and int64 "
                       "only)",
                       v->name, type);
    size_t given = t->has_raw_data                                ? t->raw_data.len / width
                   : type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT ? t->n_float_data
                   : type == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 ? t->n_int64_data
                                                                  : t->n_int32_data;
    if (given != count || (t->has_raw_data && t->raw_data.len != count * width))
        return fm_fail(FLEET_MODEL_EMALFORMED, "tensor '%s' holds %zu values for a shape of %zu",
                       v->name, given, count);
    v->rank = t->n_dims;
    for (size_t i = 0; i < t->n_dims; i++)
        v->dims[i] = t->dims[i];
    v->has_shape = true;
    v->is_const = true;
    v->count = count;
    if (type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT) {
        v->data = malloc(count ? count * sizeof(float) : 1);
        if (!v->data)
            return fm_fail(FLEET_MODEL_ENOMEM, "out of memory for tensor '%s'", v->name);
        if (t->has_raw_data)
            memcpy(v->data, t->raw_data.data, count * sizeof(float));
        else if (count)
            memcpy(v->data, t->float_data, count * sizeof(float));
        return FLEET_MODEL_OK;
    }
    v->is_int = true;
    v->ints = malloc(count ? count * sizeof(int64_t) : 1);
    if (!v->ints)
        return fm_fail(FLEET_MODEL_ENOMEM, "out of memory for tensor '%s'", v->name);
    for (size_t i = 0; i < count; i++) {
        if (type == ONNX__TENSOR_PROTO__DATA_TYPE__INT64) {
            if (t->has_raw_data)
                memcpy(&v->ints[i], t->raw_data.data + i * width, width);
            else
                v->ints[i] = t->int64_data[i];
        } else {
            int32_t x;
            if (t->has_raw_data)
                memcpy(&x, t->raw_data.data + i * width, width);
            else
                x = t->int32_data[i];
            v->ints[i] = x;
        }
    }
    return FLEET_MODEL_OK;
}

static const fm_op_spec *fm_find_op(const char *type)
{
    for (size_t i = 0; i < sizeof fm_op_specs / sizeof fm_op_specs[0]; i++)
        if (strcmp(fm_op_specs[i].type, type) == 0)
            return &fm_op_specs[i];
    return NULL;
}

static bool fm_attr_is(const Onnx__AttributeProto *a, const char *name)
{
    return strcmp(a->name, name) == 0;
}

static bool fm_attr_str(const Onnx__AttributeProto *a, const char *text)
{
    return a->has_s && a->s.len == strlen(text) && memcmp(a->s.data, text, a->s.len) == 0;
}

static void fm_attrs_default(fm_attrs *a)
{
    memset(a, 0, sizeof *a);
    a->strides[0] = a->strides[1] = 1;
    a->dilations[0] = a->dilations[1] = 1;
    a->group = 1;
    a->alpha = 1.0f;
    a->beta = 1.0f;
    a->axis = 1;
    a->epsilon = 1e-5f;
    a->clip_min = -INFINITY;
    a->clip_max = INFINITY;
    a->resize_mode = FM_RESIZE_NEAREST;
    a->resize_coords = FM_COORD_HALF_PIXEL;
    a->pad_constant_mode = 1;
    a->keepdims = 1;
}

static fleet_model_status fm_ints2(const fm_node *n, const Onnx__AttributeProto *a, int64_t *dst,
                                   size_t want)
{
    if (a->n_ints != want)
        return fm_fail_node(n, FLEET_MODEL_EUNSUPPORTED,
                            "attribute '%s' has %zu values; only 2-D operators are supported",
                            a->name, a->n_ints);
    for (size_t i = 0; i < want; i++) {
        if (a->ints[i] < 0 || a->ints[i] > 65536)
            return fm_fail_node(n, FLEET_MODEL_EMALFORMED, "attribute '%s' is out of range",
                                a->name);
        dst[i] = a->ints[i];
    }
    return FLEET_MODEL_OK;
}

static fleet_model_status fm_parse_string_attr(fm_node *n, const Onnx__AttributeProto *a)
{
    fm_attrs *x = &n->a;
    if (fm_attr_is(a, "auto_pad")) {
        if (fm_attr_str(a, "NOTSET") || fm_attr_str(a, ""))
            x->auto_pad = FM_PAD_NOTSET;
        else if (fm_attr_str(a, "SAME_UPPER"))
            x->auto_pad = FM_PAD_SAME_UPPER;
        else if (fm_attr_str(a, "SAME_LOWER"))
            x->auto_pad = FM_PAD_SAME_LOWER;
        else if (fm_attr_str(a, "VALID"))
            x->auto_pad = FM_PAD_VALID;
        else
            return fm_fail_node(n, FLEET_MODEL_EUNSUPPORTED, "unknown auto_pad value");
    } else if (fm_attr_is(a, "mode") && n->op == FM_OP_PAD) {
        if (!fm_attr_str(a, "constant"))
            return fm_fail_node(n, FLEET_MODEL_EUNSUPPORTED, "only constant padding is supported");
    } else if (fm_attr_is(a, "mode")) {
        if (fm_attr_str(a, "nearest"))
            x->resize_mode = FM_RESIZE_NEAREST;
        else if (fm_attr_str(a, "linear") || fm_attr_str(a, "bilinear"))
            x->resize_mode = FM_RESIZE_LINEAR;
        else
            return fm_fail_node(n, FLEET_MODEL_EUNSUPPORTED,
                                "only nearest and linear resizing are supported");
    } else if (fm_attr_is(a, "coordinate_transformation_mode")) {
        x->resize_coords = fm_attr_str(a, "half_pixel")           ? FM_COORD_HALF_PIXEL
                           : fm_attr_str(a, "pytorch_half_pixel") ? FM_COORD_PYTORCH_HALF_PIXEL
                           : fm_attr_str(a, "align_corners")      ? FM_COORD_ALIGN_CORNERS
                           : fm_attr_str(a, "asymmetric")         ? FM_COORD_ASYMMETRIC
                                                                  : FM_COORD_OTHER;
        if (x->resize_coords == FM_COORD_OTHER)
            return fm_fail_node(n, FLEET_MODEL_EUNSUPPORTED,
                                "coordinate_transformation_mode '%.*s' is not supported",
                                (int)a->s.len, (const char *)a->s.data);
    } else if (fm_attr_is(a, "nearest_mode")) {
        x->nearest_floor = fm_attr_str(a, "floor");
        if (!x->nearest_floor && !fm_attr_str(a, "round_prefer_floor"))
            return fm_fail_node(n, FLEET_MODEL_EUNSUPPORTED,
                                "nearest_mode '%.*s' is not supported (floor, round_prefer_floor)",
                                (int)a->s.len, (const char *)a->s.data);
    }
    return FLEET_MODEL_OK;
}

/* Parses one attribute of a node whose op already passed the name whitelist. */
static fleet_model_status fm_parse_attr(fm_graph *g, fm_node *n, const Onnx__AttributeProto *a)
{
    fm_attrs *x = &n->a;
    if (a->has_s)
        return fm_parse_string_attr(n, a);
    if (fm_attr_is(a, "kernel_shape")) {
        x->has_kernel = 1;
        return fm_ints2(n, a, x->kernel, 2);
    }
    if (fm_attr_is(a, "strides"))
        return fm_ints2(n, a, x->strides, 2);
    if (fm_attr_is(a, "dilations"))
        return fm_ints2(n, a, x->dilations, 2);
    if (fm_attr_is(a, "pads") && n->op == FM_OP_PAD) {
        if (a->n_ints > 2 * FM_MAX_DIMS)
            return fm_fail_node(n, FLEET_MODEL_EUNSUPPORTED, "too many pads");
        for (size_t i = 0; i < a->n_ints; i++)
            x->pad_attr[i] = a->ints[i];
        x->pad_attr_count = (int)a->n_ints;
        return FLEET_MODEL_OK;
    }
    if (fm_attr_is(a, "pads")) {
        fleet_model_status st = fm_ints2(n, a, x->pads, 4);
        /* ONNX orders pads [h_begin, w_begin, h_end, w_end]: top, left, bottom, right. */
        return st;
    }
    if (fm_attr_is(a, "group")) {
        if (a->i < 1 || a->i > 65536)
            return fm_fail_node(n, FLEET_MODEL_EMALFORMED, "group %lld is out of range",
                                (long long)a->i);
        x->group = a->i;
    } else if (fm_attr_is(a, "ceil_mode"))
        x->ceil_mode = a->i != 0;
    else if (fm_attr_is(a, "count_include_pad"))
        x->count_include_pad = a->i != 0;
    else if (fm_attr_is(a, "alpha"))
        x->alpha = a->f;
    else if (fm_attr_is(a, "beta"))
        x->beta = a->f;
    else if (fm_attr_is(a, "transA") && a->i != 0)
        return fm_fail_node(n, FLEET_MODEL_EUNSUPPORTED, "transA=1 is not supported");
    else if (fm_attr_is(a, "transB"))
        x->trans_b = a->i != 0;
    else if (fm_attr_is(a, "axis"))
        x->axis = a->i;
    else if (fm_attr_is(a, "epsilon"))
        x->epsilon = a->f;
    else if (fm_attr_is(a, "min"))
        x->clip_min = a->f;
    else if (fm_attr_is(a, "max"))
        x->clip_max = a->f;
    else if (fm_attr_is(a, "value") && n->op == FM_OP_PAD)
        x->pad_value = a->f;
    else if (fm_attr_is(a, "keepdims"))
        x->keepdims = a->i != 0;
    else if (fm_attr_is(a, "axes")) {
        if (a->n_ints > FM_MAX_DIMS)
            return fm_fail_node(n, FLEET_MODEL_EMALFORMED, "too many axes");
        for (size_t i = 0; i < a->n_ints; i++)
            x->axes[i] = a->ints[i];
        x->n_axes = (int)a->n_ints;
    } else if (fm_attr_is(a, "allowzero"))
        x->allowzero = a->i != 0;
    else if ((fm_attr_is(a, "training_mode") && a->i != 0) ||
             (fm_attr_is(a, "spatial") && a->i != 1) ||
             (fm_attr_is(a, "exclude_outside") && a->i != 0))
        return fm_fail_node(n, FLEET_MODEL_EUNSUPPORTED, "attribute '%s'=%lld is not supported",
                            a->name, (long long)a->i);
    (void)g;
    return FLEET_MODEL_OK;
}

/* A Constant node becomes a constant value; the node stays (dead) for statistics. */
static fleet_model_status fm_import_constant(fm_graph *g, fm_node *n, const Onnx__NodeProto *p)
{
    if (p->n_attribute != 1 || n->n_out != 1)
        return fm_fail_node(n, FLEET_MODEL_EMALFORMED, "needs exactly one value attribute");
    const Onnx__AttributeProto *a = p->attribute[0];
    fm_value *v = &g->values[n->out[0]];
    n->dead = true;
    if (a->name && fm_attr_is(a, "value") && a->t)
        return fm_load_tensor(a->t, v);
    bool scalar = a->name && (fm_attr_is(a, "value_float") || fm_attr_is(a, "value_int"));
    bool is_float = a->name && (fm_attr_is(a, "value_float") || fm_attr_is(a, "value_floats"));
    bool list = a->name && (fm_attr_is(a, "value_floats") || fm_attr_is(a, "value_ints"));
    if (!scalar && !list)
        return fm_fail_node(n, FLEET_MODEL_EUNSUPPORTED, "attribute '%s' is not supported",
                            a->name ? a->name : "");
    size_t count = !list ? 1 : is_float ? a->n_floats : a->n_ints;
    if (scalar && !(is_float ? a->has_f : a->has_i))
        return fm_fail_node(n, FLEET_MODEL_EMALFORMED, "attribute '%s' has no value", a->name);
    v->is_const = true;
    v->has_shape = true;
    v->rank = scalar ? 0 : 1;
    v->dims[0] = (int64_t)count;
    v->count = count;
    if (is_float) {
        v->data = malloc(count * sizeof(float) + 1);
        if (!v->data)
            return fm_fail(FLEET_MODEL_ENOMEM, "out of memory");
        for (size_t i = 0; i < count; i++)
            v->data[i] = scalar ? a->f : a->floats[i];
        return FLEET_MODEL_OK;
    }
    v->is_int = true;
    v->ints = malloc(count * sizeof(int64_t) + 1);
    if (!v->ints)
        return fm_fail(FLEET_MODEL_ENOMEM, "out of memory");
    for (size_t i = 0; i < count; i++)
        v->ints[i] = scalar ? a->i : a->ints[i];
    return FLEET_MODEL_OK;
}

static fleet_model_status fm_import_node(fm_graph *g, const Onnx__NodeProto *p, size_t index)
{
    fm_node *n = &g->nodes[g->n_nodes];
    memset(n, 0, sizeof *n);
    fm_attrs_default(&n->a);
    n->out_min = -INFINITY;
    n->out_max = INFINITY;
    char fallback[32];
    snprintf(fallback, sizeof fallback, "#%zu", index);
    n->name = fm_strdup(p->name && p->name[0] ? p->name : fallback);
    n->op_type = fm_strdup(p->op_type ? p->op_type : "");
    n->in = calloc(p->n_input + 1, sizeof *n->in);
    n->out = calloc(p->n_output + 1, sizeof *n->out);
    g->n_nodes++; /* owned from here on, so fm_graph_free releases a half-built node */
    if (!n->name || !n->op_type || !n->in || !n->out)
        return fm_fail(FLEET_MODEL_ENOMEM, "out of memory");
    if (p->domain && p->domain[0] && strcmp(p->domain, "ai.onnx") != 0)
        return fm_fail_node(n, FLEET_MODEL_EUNSUPPORTED, "operator domain '%s' is not supported",
                            p->domain);
    const fm_op_spec *spec = fm_find_op(n->op_type);
    if (!spec)
        return fm_fail_node(n, FLEET_MODEL_EUNSUPPORTED, "operator not supported");
    n->op = spec->op;
    for (size_t i = 0; i < p->n_input; i++) {
        if (!p->input[i][0]) {
            n->in[n->n_in++] = FM_NO_VALUE;
            continue;
        }
        int v = fm_graph_find_value(g, p->input[i]);
        if (v < 0)
            return fm_fail_node(n, FLEET_MODEL_EMALFORMED,
                                "input '%s' is not produced by any earlier node, initializer or "
                                "graph input",
                                p->input[i]);
        n->in[n->n_in++] = v;
    }
    for (size_t i = 0; i < p->n_output; i++) {
        if (!p->output[i][0]) {
            n->out[n->n_out++] = FM_NO_VALUE;
            continue;
        }
        if (fm_graph_find_value(g, p->output[i]) >= 0)
            return fm_fail_node(n, FLEET_MODEL_EMALFORMED, "output '%s' is defined twice",
                                p->output[i]);
        int v = fm_graph_add_value(g, p->output[i]);
        if (v < 0)
            return fm_fail(FLEET_MODEL_ENOMEM, "out of memory");
        g->values[v].producer = (int)(g->n_nodes - 1);
        n->out[n->n_out++] = v;
    }
    if (n->n_out == 0 || n->out[0] == FM_NO_VALUE)
        return fm_fail_node(n, FLEET_MODEL_EMALFORMED, "has no output");
    if (n->op == FM_OP_CONSTANT)
        return fm_import_constant(g, n, p);
    if (n->op == FM_OP_IDENTITY && n->n_in == 1 && n->in[0] >= 0 && g->values[n->in[0]].is_const) {
        /* Exporters share equal initializers through Identity nodes; readers of the copy
         * must see a constant (a Conv bias, say) before any pass runs. */
        g->values[n->out[0]].alias = n->in[0];
        n->dead = true;
        return FLEET_MODEL_OK;
    }
    if (n->op == FM_OP_SOFTMAX && g->opset >= 13)
        n->a.axis = -1; /* the default moved from 1 to -1 in opset 13 */
    if (n->op == FM_OP_HARDSIGMOID) {
        n->a.alpha = 0.2f; /* ONNX defaults differ from Gemm's 1.0 */
        n->a.beta = 0.5f;
    }
    for (size_t i = 0; i < p->n_attribute; i++) {
        const Onnx__AttributeProto *a = p->attribute[i];
        char key[96];
        snprintf(key, sizeof key, " %s ", a->name ? a->name : "");
        if (!a->name || !strstr(spec->attrs, key))
            return fm_fail_node(n, FLEET_MODEL_EUNSUPPORTED, "attribute '%s' is not supported",
                                a->name ? a->name : "");
        fleet_model_status st = fm_parse_attr(g, n, a);
        if (st != FLEET_MODEL_OK)
            return st;
    }
    return FLEET_MODEL_OK;
}

static fleet_model_status fm_import_input(fm_graph *g, const Onnx__ValueInfoProto *vi)
{
    if (!vi->name || fm_graph_find_value(g, vi->name) >= 0)
        return FLEET_MODEL_OK; /* an initializer listed as an input (older exporters) */
    const Onnx__TypeProto *type = vi->type;
    if (!type || type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !type->tensor_type)
        return fm_fail(FLEET_MODEL_EUNSUPPORTED, "input '%s' is not a tensor", vi->name);
    const Onnx__TypeProto__Tensor *tt = type->tensor_type;
    if (!tt->has_elem_type || tt->elem_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
        return fm_fail(FLEET_MODEL_EUNSUPPORTED, "input '%s' is not float32", vi->name);
    if (!tt->shape || tt->shape->n_dim == 0 || tt->shape->n_dim > FM_MAX_DIMS)
        return fm_fail(FLEET_MODEL_EUNSUPPORTED,
                       "input '%s' needs a static shape of 1 to %d dimensions", vi->name,
                       FM_MAX_DIMS);
    int idx = fm_graph_add_value(g, vi->name);
    if (idx < 0)
        return fm_fail(FLEET_MODEL_ENOMEM, "out of memory");
    fm_value *v = &g->values[idx];
    v->rank = tt->shape->n_dim;
    for (size_t d = 0; d < v->rank; d++) {
        const Onnx__TensorShapeProto__Dimension *dim = tt->shape->dim[d];
        bool known = dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
        if (d > 0 && (!known || dim->dim_value <= 0 || dim->dim_value > FM_MAX_DIM))
            return fm_fail(FLEET_MODEL_EUNSUPPORTED,
                           "input '%s': dimension %zu must be a fixed positive size (only the "
                           "batch dimension may be symbolic)",
                           vi->name, d);
        v->dims[d] = known ? dim->dim_value : 0;
    }
    if (g->n_inputs == 0)
        g->declared_batch = v->dims[0];
    v->has_shape = true;
    int *grown = realloc(g->inputs, (g->n_inputs + 1) * sizeof *grown);
    if (!grown)
        return fm_fail(FLEET_MODEL_ENOMEM, "out of memory");
    g->inputs = grown;
    g->inputs[g->n_inputs++] = idx;
    return FLEET_MODEL_OK;
}

static fleet_model_status fm_import_metadata(fm_graph *g, const Onnx__ModelProto *m)
{
    g->meta_keys = calloc(m->n_metadata_props + 1, sizeof(char *));
    g->meta_values = calloc(m->n_metadata_props + 1, sizeof(char *));
    if (!g->meta_keys || !g->meta_values)
        return fm_fail(FLEET_MODEL_ENOMEM, "out of memory");
    for (size_t i = 0; i < m->n_metadata_props; i++) {
        const Onnx__StringStringEntryProto *e = m->metadata_props[i];
        g->meta_keys[i] = fm_strdup(e->key ? e->key : "");
        g->meta_values[i] = fm_strdup(e->value ? e->value : "");
        g->n_meta++;
        if (!g->meta_keys[i] || !g->meta_values[i])
            return fm_fail(FLEET_MODEL_ENOMEM, "out of memory");
    }
    return FLEET_MODEL_OK;
}

static fleet_model_status fm_import_graph(fm_graph *g, const Onnx__GraphProto *gp)
{
    fleet_model_status st = FLEET_MODEL_OK;
    for (size_t i = 0; i < gp->n_initializer; i++) {
        const Onnx__TensorProto *t = gp->initializer[i];
        if (!t->name || fm_graph_find_value(g, t->name) >= 0)
            return fm_fail(FLEET_MODEL_EMALFORMED, "initializer #%zu has no or a duplicate name",
                           i);
        int v = fm_graph_add_value(g, t->name);
        if (v < 0)
            return fm_fail(FLEET_MODEL_ENOMEM, "out of memory");
        if ((st = fm_load_tensor(t, &g->values[v])) != FLEET_MODEL_OK)
            return st;
    }
    for (size_t i = 0; i < gp->n_input; i++)
        if ((st = fm_import_input(g, gp->input[i])) != FLEET_MODEL_OK)
            return st;
    if (g->n_inputs == 0)
        return fm_fail(FLEET_MODEL_EMALFORMED, "the graph has no runtime input");
    g->nodes = calloc(gp->n_node + 1, sizeof *g->nodes);
    if (!g->nodes)
        return fm_fail(FLEET_MODEL_ENOMEM, "out of memory");
    for (size_t i = 0; i < gp->n_node; i++)
        if ((st = fm_import_node(g, gp->node[i], i)) != FLEET_MODEL_OK)
            return st;
    g->imported_nodes = g->n_nodes;
    g->outputs = calloc(gp->n_output + 1, sizeof *g->outputs);
    if (!g->outputs)
        return fm_fail(FLEET_MODEL_ENOMEM, "out of memory");
    for (size_t i = 0; i < gp->n_output; i++) {
        const char *name = gp->output[i]->name;
        int v = name ? fm_graph_find_value(g, name) : FM_NO_VALUE;
        if (v < 0)
            return fm_fail(FLEET_MODEL_EMALFORMED, "graph output '%s' is never produced",
                           name ? name : "");
        g->outputs[g->n_outputs++] = v;
    }
    if (g->n_outputs == 0)
        return fm_fail(FLEET_MODEL_EMALFORMED, "the graph has no output");
    return FLEET_MODEL_OK;
}

fleet_model_status fm_import(const void *data, size_t size, fm_graph **out)
{
    fleet_model_status st = FLEET_MODEL_OK;
    fm_graph *g = NULL;
    Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, size, data);
    if (!m)
        return fm_fail(FLEET_MODEL_EMALFORMED, "not an ONNX model (protobuf decoding failed)");
    if (!m->graph) {
        st = fm_fail(FLEET_MODEL_EMALFORMED, "not an ONNX model (no graph)");
        goto cleanup;
    }
    g = calloc(1, sizeof *g);
    if (!g) {
        st = fm_fail(FLEET_MODEL_ENOMEM, "out of memory");
        goto cleanup;
    }
    g->opset = 0;
    for (size_t i = 0; i < m->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = m->opset_import[i];
        if ((!o->domain || !o->domain[0] || strcmp(o->domain, "ai.onnx") == 0) && o->has_version)
            g->opset = o->version;
    }
    if (g->opset <= 0) {
        st = fm_fail(FLEET_MODEL_EMALFORMED, "the model imports no ai.onnx operator set");
        goto cleanup;
    }
    if ((st = fm_import_metadata(g, m)) != FLEET_MODEL_OK)
        goto cleanup;
    if ((st = fm_import_graph(g, m->graph)) != FLEET_MODEL_OK)
        goto cleanup;
    *out = g;
    g = NULL;
cleanup:
    fm_graph_free(g);
    onnx__model_proto__free_unpacked(m, NULL);
    return st;
}
