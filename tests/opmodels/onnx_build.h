/* onnx_build.h: internal to op_models; assembles an ONNX ModelProto from protobuf-c structs. */
#ifndef OPMODELS_ONNX_BUILD_H
#define OPMODELS_ONNX_BUILD_H

#include <stddef.h>
#include <stdint.h>

#include <onnx/onnx.pb-c.h>

/* Out-of-memory policy: every allocation here aborts the process on failure. This code only
 * runs in tests and fixture generators, where a clean error path would buy nothing. */

/* A model under construction. Every string, array and message hangs off an arena owned by the
 * builder, so one ob_destroy() frees the whole protobuf tree. */
typedef struct ob_model ob_model;

/* typed_data: store initializer values in float_data/int64_data instead of raw_data, so the
 * importer's second encoding gets exercised too. */
ob_model *ob_create(const char *graph_name, int64_t opset, int typed_data);
void ob_destroy(ob_model *model);

/* Arena copy of a printf-formatted string. */
const char *ob_name(ob_model *model, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Declares a graph input of type float. dim0_param names dimension 0 symbolically ("N");
 * NULL keeps dims[0] as a fixed value. */
void ob_add_input(ob_model *model, const char *name, size_t rank, const int64_t *dims,
                  const char *dim0_param);
/* Declares a graph output of type float, shape left to inference. */
void ob_add_output(ob_model *model, const char *name);

/* Tensors copy their values into the arena. rank 0 is a scalar. */
Onnx__TensorProto *ob_tensor_f32(ob_model *model, const char *name, size_t rank,
                                 const int64_t *dims, const float *values);
Onnx__TensorProto *ob_tensor_i64(ob_model *model, const char *name, size_t count,
                                 const int64_t *values);
void ob_add_initializer(ob_model *model, Onnx__TensorProto *tensor);

/* Appends a node with one output; inputs may be "" for absent optional inputs. */
Onnx__NodeProto *ob_add_node(ob_model *model, const char *op_type, size_t n_inputs,
                             const char *const *inputs, const char *output);

void ob_attr_int(ob_model *model, Onnx__NodeProto *node, const char *name, int64_t value);
void ob_attr_float(ob_model *model, Onnx__NodeProto *node, const char *name, float value);
void ob_attr_string(ob_model *model, Onnx__NodeProto *node, const char *name, const char *value);
void ob_attr_ints(ob_model *model, Onnx__NodeProto *node, const char *name, size_t count,
                  const int64_t *values);
void ob_attr_floats(ob_model *model, Onnx__NodeProto *node, const char *name, size_t count,
                    const float *values);
void ob_attr_tensor(ob_model *model, Onnx__NodeProto *node, const char *name,
                    Onnx__TensorProto *tensor);

/* Serializes the model into a malloc'd buffer the caller frees. protobuf-c writes fields in
 * field-number order, so equal models give equal bytes. */
void ob_pack(const ob_model *model, uint8_t **bytes, size_t *size);

#endif
