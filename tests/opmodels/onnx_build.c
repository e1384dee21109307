/* onnx_build.c: arena-backed construction and serialization of ONNX ModelProto messages. */
#include "onnx_build.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Fixed capacities keep the arrays simple; the case table is ours, so overflowing one is a
 * programming error and aborts. */
enum {
    OB_MAX_NODES = 64,
    OB_MAX_INITIALIZERS = 96,
    OB_MAX_VALUES = 8,
    OB_MAX_ATTRS = 8,
    OB_OPSET_COUNT = 1,
};

typedef struct ob_block {
    struct ob_block *next;
    max_align_t align; /* the payload starts here, suitably aligned for anything */
} ob_block;

struct ob_model {
    ob_block *blocks;
    int typed_data;
    Onnx__ModelProto proto;
    Onnx__GraphProto graph;
    Onnx__OperatorSetIdProto opset;
    Onnx__OperatorSetIdProto *opsets[OB_OPSET_COUNT];
};

static void ob__die(const char *what)
{
    fprintf(stderr, "onnx_build: %s\n", what);
    abort();
}

/* Zeroed arena memory that lives until ob_destroy(). */
static void *ob__alloc(ob_model *model, size_t size)
{
    ob_block *block = calloc(1, sizeof(ob_block) + size);
    if (block == NULL) {
        ob__die("out of memory");
    }
    block->next = model->blocks;
    model->blocks = block;
    return &block->align;
}

static char *ob__strdup(ob_model *model, const char *text)
{
    size_t len = strlen(text);
    char *copy = ob__alloc(model, len + 1);
    memcpy(copy, text, len);
    return copy;
}

/* Stores floats little-endian whatever the host, as raw_data requires. */
static void ob__put_le(uint8_t *out, uint64_t bits, size_t bytes)
{
    for (size_t i = 0; i < bytes; i++) {
        out[i] = (uint8_t)(bits >> (8 * i));
    }
}

ob_model *ob_create(const char *graph_name, int64_t opset, int typed_data)
{
    ob_model *model = calloc(1, sizeof(*model));
    if (model == NULL) {
        ob__die("out of memory");
    }
    model->typed_data = typed_data;
    onnx__model_proto__init(&model->proto);
    onnx__graph_proto__init(&model->graph);
    onnx__operator_set_id_proto__init(&model->opset);

    model->opset.domain = "";
    model->opset.has_version = 1;
    model->opset.version = opset;
    model->opsets[0] = &model->opset;

    model->proto.has_ir_version = 1;
    model->proto.ir_version = 7;
    model->proto.producer_name = "fleetinfer-opmodels";
    model->proto.n_opset_import = OB_OPSET_COUNT;
    model->proto.opset_import = model->opsets;
    model->proto.graph = &model->graph;

    model->graph.name = ob__strdup(model, graph_name);
    model->graph.node = ob__alloc(model, OB_MAX_NODES * sizeof(Onnx__NodeProto *));
    model->graph.initializer = ob__alloc(model, OB_MAX_INITIALIZERS * sizeof(Onnx__TensorProto *));
    model->graph.input = ob__alloc(model, OB_MAX_NODES * sizeof(Onnx__ValueInfoProto *));
    model->graph.output = ob__alloc(model, OB_MAX_NODES * sizeof(Onnx__ValueInfoProto *));
    return model;
}

void ob_destroy(ob_model *model)
{
    if (model == NULL) {
        return;
    }
    while (model->blocks != NULL) {
        ob_block *next = model->blocks->next;
        free(model->blocks);
        model->blocks = next;
    }
    free(model);
}

const char *ob_name(ob_model *model, const char *fmt, ...)
{
    char buf[128];
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (len < 0 || (size_t)len >= sizeof(buf)) {
        ob__die("name too long");
    }
    return ob__strdup(model, buf);
}

static Onnx__ValueInfoProto *ob__value_info(ob_model *model, const char *name)
{
    Onnx__ValueInfoProto *info = ob__alloc(model, sizeof(*info));
    Onnx__TypeProto *type = ob__alloc(model, sizeof(*type));
    Onnx__TypeProto__Tensor *tensor = ob__alloc(model, sizeof(*tensor));
    onnx__value_info_proto__init(info);
    onnx__type_proto__init(type);
    onnx__type_proto__tensor__init(tensor);
    tensor->has_elem_type = 1;
    tensor->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    type->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    type->tensor_type = tensor;
    info->name = ob__strdup(model, name);
    info->type = type;
    return info;
}

void ob_add_input(ob_model *model, const char *name, size_t rank, const int64_t *dims,
                  const char *dim0_param)
{
    if (model->graph.n_input == OB_MAX_NODES) {
        ob__die("too many inputs");
    }
    Onnx__ValueInfoProto *info = ob__value_info(model, name);
    Onnx__TensorShapeProto *shape = ob__alloc(model, sizeof(*shape));
    onnx__tensor_shape_proto__init(shape);
    shape->n_dim = rank;
    shape->dim = ob__alloc(model, rank * sizeof(*shape->dim));
    for (size_t i = 0; i < rank; i++) {
        Onnx__TensorShapeProto__Dimension *dim = ob__alloc(model, sizeof(*dim));
        onnx__tensor_shape_proto__dimension__init(dim);
        if (i == 0 && dim0_param != NULL) {
            dim->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            dim->dim_param = ob__strdup(model, dim0_param);
        } else {
            dim->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            dim->dim_value = dims[i];
        }
        shape->dim[i] = dim;
    }
    info->type->tensor_type->shape = shape;
    model->graph.input[model->graph.n_input++] = info;
}

void ob_add_output(ob_model *model, const char *name)
{
    if (model->graph.n_output == OB_MAX_NODES) {
        ob__die("too many outputs");
    }
    model->graph.output[model->graph.n_output++] = ob__value_info(model, name);
}

static Onnx__TensorProto *ob__tensor(ob_model *model, const char *name, int32_t type, size_t rank,
                                     const int64_t *dims)
{
    Onnx__TensorProto *tensor = ob__alloc(model, sizeof(*tensor));
    onnx__tensor_proto__init(tensor);
    if (name != NULL) {
        tensor->name = ob__strdup(model, name);
    }
    tensor->has_data_type = 1;
    tensor->data_type = type;
    tensor->n_dims = rank;
    tensor->dims = ob__alloc(model, rank * sizeof(int64_t) + 1);
    memcpy(tensor->dims, dims, rank * sizeof(int64_t));
    return tensor;
}

Onnx__TensorProto *ob_tensor_f32(ob_model *model, const char *name, size_t rank,
                                 const int64_t *dims, const float *values)
{
    Onnx__TensorProto *tensor =
        ob__tensor(model, name, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, rank, dims);
    size_t count = 1;
    for (size_t i = 0; i < rank; i++) {
        count *= (size_t)dims[i];
    }
    if (model->typed_data) {
        tensor->n_float_data = count;
        tensor->float_data = ob__alloc(model, count * sizeof(float) + 1);
        memcpy(tensor->float_data, values, count * sizeof(float));
        return tensor;
    }
    uint8_t *raw = ob__alloc(model, count * sizeof(float) + 1);
    for (size_t i = 0; i < count; i++) {
        uint32_t bits;
        memcpy(&bits, &values[i], sizeof(bits));
        ob__put_le(raw + 4 * i, bits, 4);
    }
    tensor->has_raw_data = 1;
    tensor->raw_data.data = raw;
    tensor->raw_data.len = count * sizeof(float);
    return tensor;
}

Onnx__TensorProto *ob_tensor_i64(ob_model *model, const char *name, size_t count,
                                 const int64_t *values)
{
    int64_t dims[1] = {(int64_t)count};
    Onnx__TensorProto *tensor =
        ob__tensor(model, name, ONNX__TENSOR_PROTO__DATA_TYPE__INT64, 1, dims);
    if (model->typed_data) {
        tensor->n_int64_data = count;
        tensor->int64_data = ob__alloc(model, count * sizeof(int64_t) + 1);
        memcpy(tensor->int64_data, values, count * sizeof(int64_t));
        return tensor;
    }
    uint8_t *raw = ob__alloc(model, count * sizeof(int64_t) + 1);
    for (size_t i = 0; i < count; i++) {
        ob__put_le(raw + 8 * i, (uint64_t)values[i], 8);
    }
    tensor->has_raw_data = 1;
    tensor->raw_data.data = raw;
    tensor->raw_data.len = count * sizeof(int64_t);
    return tensor;
}

void ob_add_initializer(ob_model *model, Onnx__TensorProto *tensor)
{
    if (model->graph.n_initializer == OB_MAX_INITIALIZERS) {
        ob__die("too many initializers");
    }
    model->graph.initializer[model->graph.n_initializer++] = tensor;
}

Onnx__NodeProto *ob_add_node(ob_model *model, const char *op_type, size_t n_inputs,
                             const char *const *inputs, const char *output)
{
    if (model->graph.n_node == OB_MAX_NODES) {
        ob__die("too many nodes");
    }
    Onnx__NodeProto *node = ob__alloc(model, sizeof(*node));
    onnx__node_proto__init(node);
    node->op_type = ob__strdup(model, op_type);
    /* Node names make the runtime's error messages point at the failing operator. */
    node->name = (char *)ob_name(model, "%s_%zu", op_type, model->graph.n_node);
    node->n_input = n_inputs;
    node->input = ob__alloc(model, n_inputs * sizeof(char *) + 1);
    for (size_t i = 0; i < n_inputs; i++) {
        node->input[i] = ob__strdup(model, inputs[i]);
    }
    node->n_output = 1;
    node->output = ob__alloc(model, sizeof(char *));
    node->output[0] = ob__strdup(model, output);
    node->attribute = ob__alloc(model, OB_MAX_ATTRS * sizeof(Onnx__AttributeProto *));
    model->graph.node[model->graph.n_node++] = node;
    return node;
}

static Onnx__AttributeProto *ob__attr(ob_model *model, Onnx__NodeProto *node, const char *name,
                                      Onnx__AttributeProto__AttributeType type)
{
    if (node->n_attribute == OB_MAX_ATTRS) {
        ob__die("too many attributes");
    }
    Onnx__AttributeProto *attr = ob__alloc(model, sizeof(*attr));
    onnx__attribute_proto__init(attr);
    attr->name = ob__strdup(model, name);
    attr->has_type = 1;
    attr->type = type;
    node->attribute[node->n_attribute++] = attr;
    return attr;
}

void ob_attr_int(ob_model *model, Onnx__NodeProto *node, const char *name, int64_t value)
{
    Onnx__AttributeProto *attr =
        ob__attr(model, node, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    attr->has_i = 1;
    attr->i = value;
}

void ob_attr_float(ob_model *model, Onnx__NodeProto *node, const char *name, float value)
{
    Onnx__AttributeProto *attr =
        ob__attr(model, node, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    attr->has_f = 1;
    attr->f = value;
}

void ob_attr_string(ob_model *model, Onnx__NodeProto *node, const char *name, const char *value)
{
    Onnx__AttributeProto *attr =
        ob__attr(model, node, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
    attr->has_s = 1;
    attr->s.data = (uint8_t *)ob__strdup(model, value);
    attr->s.len = strlen(value);
}

void ob_attr_ints(ob_model *model, Onnx__NodeProto *node, const char *name, size_t count,
                  const int64_t *values)
{
    if (count > OB_MAX_VALUES) {
        ob__die("too many attribute values");
    }
    Onnx__AttributeProto *attr =
        ob__attr(model, node, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    attr->n_ints = count;
    attr->ints = ob__alloc(model, count * sizeof(int64_t) + 1);
    memcpy(attr->ints, values, count * sizeof(int64_t));
}

void ob_attr_floats(ob_model *model, Onnx__NodeProto *node, const char *name, size_t count,
                    const float *values)
{
    if (count > OB_MAX_VALUES) {
        ob__die("too many attribute values");
    }
    Onnx__AttributeProto *attr =
        ob__attr(model, node, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS);
    attr->n_floats = count;
    attr->floats = ob__alloc(model, count * sizeof(float) + 1);
    memcpy(attr->floats, values, count * sizeof(float));
}

void ob_attr_tensor(ob_model *model, Onnx__NodeProto *node, const char *name,
                    Onnx__TensorProto *tensor)
{
    Onnx__AttributeProto *attr =
        ob__attr(model, node, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR);
    attr->t = tensor;
}

void ob_pack(const ob_model *model, uint8_t **bytes, size_t *size)
{
    size_t len = onnx__model_proto__get_packed_size(&model->proto);
    uint8_t *buf = malloc(len + 1);
    if (buf == NULL) {
        ob__die("out of memory");
    }
    size_t written = onnx__model_proto__pack(&model->proto, buf);
    if (written != len) {
        ob__die("protobuf-c packed a different size than it measured");
    }
    *bytes = buf;
    *size = len;
}
