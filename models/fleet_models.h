/* fleet_models.h: load ONNX models and run them on XNNPACK (float32, CPU), whole or cut in two. */
#ifndef FLEET_MODELS_H
#define FLEET_MODELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FLEET_MODEL_MAX_DIMS 6

/* One status enum for the whole library; 0 is success. */
typedef enum fleet_model_status {
    FLEET_MODEL_OK = 0,
    FLEET_MODEL_EINVAL,       /* an argument is out of range or NULL where it may not be */
    FLEET_MODEL_ENOMEM,       /* an allocation failed */
    FLEET_MODEL_ESYSERR,      /* an OS call failed (errno is in the detail message) */
    FLEET_MODEL_EMALFORMED,   /* not a valid ONNX file, or its graph is inconsistent */
    FLEET_MODEL_EUNSUPPORTED, /* an operator, attribute or data type this runtime cannot run */
    FLEET_MODEL_ESHAPE,       /* tensor shapes do not fit together */
    FLEET_MODEL_ENOTFOUND,    /* a named tensor or metadata key does not exist */
    FLEET_MODEL_ETOOBIG,      /* the file or a tensor exceeds a configured limit */
    FLEET_MODEL_EBACKEND,     /* XNNPACK refused the graph or failed to run it */
} fleet_model_status;

/* Static text for a status code. */
const char *fleet_model_strerror(fleet_model_status status);

/* Detail of the last failure in the calling thread ("node 'conv3' (Conv): ..."). The string
 * stays valid until the next failing call in this thread. Never NULL. */
const char *fleet_model_last_error(void);

/* Which part of the graph a handle runs. */
typedef enum fleet_model_part {
    FLEET_MODEL_PART_FULL = 0, /* inputs -> outputs */
    FLEET_MODEL_PART_HEAD,     /* inputs -> cut tensor (the head's single output) */
    FLEET_MODEL_PART_TAIL,     /* cut tensor (the tail's single input) -> outputs */
} fleet_model_part;

typedef struct fleet_model_options {
    size_t batch_size;      /* dimension 0 of every input; 0 means 1 */
    size_t threads;         /* intra-op threads; 0 runs in the caller's thread only */
    fleet_model_part part;  /* FULL unless cutting */
    const char *cut_tensor; /* tensor name for HEAD/TAIL; borrowed for the call only */
    size_t max_file_bytes;  /* refuse larger files; 0 means 256 MiB */
} fleet_model_options;

/* Fills the defaults: batch 1, caller's thread, whole graph. */
void fleet_model_options_init(fleet_model_options *options);

/* A loaded, compiled model. Not thread-safe: one thread runs a handle at a time; load one
 * handle per thread to run in parallel. */
typedef struct fleet_model fleet_model;

/* Loads an ONNX file. On success *out owns everything it needs (the file is not kept open);
 * on failure *out is untouched and fleet_model_last_error() says why. options may be NULL. */
fleet_model_status fleet_model_load_file(const char *path, const fleet_model_options *options,
                                         fleet_model **out);

/* Same as fleet_model_load_file from memory; data is borrowed for the call only. */
fleet_model_status fleet_model_load_buffer(const void *data, size_t size,
                                           const fleet_model_options *options, fleet_model **out);

/* Releases the model and everything it owns. NULL is a no-op. */
void fleet_model_destroy(fleet_model *model);

/* Recompiles for another batch size (dimension 0 of every tensor). */
fleet_model_status fleet_model_set_batch_size(fleet_model *model, size_t batch_size);
size_t fleet_model_batch_size(const fleet_model *model);

/* A tensor as ONNX describes it: NCHW for images, dims[0] the batch size. */
typedef struct fleet_model_tensor_info {
    const char *name; /* owned by the model */
    size_t rank;
    size_t dims[FLEET_MODEL_MAX_DIMS];
    size_t count; /* elements at the current batch size */
} fleet_model_tensor_info;

size_t fleet_model_input_count(const fleet_model *model);
size_t fleet_model_output_count(const fleet_model *model);
fleet_model_status fleet_model_input_info(const fleet_model *model, size_t index,
                                          fleet_model_tensor_info *info);
fleet_model_status fleet_model_output_info(const fleet_model *model, size_t index,
                                           fleet_model_tensor_info *info);

/* Runs one batch. inputs[i] holds input i in ONNX layout (count floats), outputs[i] receives
 * output i in ONNX layout. Both are borrowed for the call; they may overlap nothing else. */
fleet_model_status fleet_model_run(fleet_model *model, const float *const *inputs,
                                   float *const *outputs);

/* Value of an ONNX metadata_props key; the string is owned by the model. NULL when absent. */
const char *fleet_model_metadata(const fleet_model *model, const char *key);
size_t fleet_model_metadata_count(const fleet_model *model);
/* The index-th key/value pair; pointers owned by the model. */
fleet_model_status fleet_model_metadata_at(const fleet_model *model, size_t index, const char **key,
                                           const char **value);

/* A place where the graph can be cut in two: a tensor every input-to-output path crosses. */
typedef struct fleet_model_cut {
    const char *tensor; /* owned by the model */
    size_t node_index;  /* nodes [0, node_index] form the head */
    size_t rank;
    size_t dims[FLEET_MODEL_MAX_DIMS]; /* at batch size 1 */
    size_t bytes_f32;                  /* at batch size 1 */
    size_t bytes_int8;                 /* quantized for the wire */
    int natural_bottleneck;            /* smaller than the input and than every earlier candidate */
} fleet_model_cut;

/* The cut candidates of the whole graph, in graph order (available on FULL handles only). */
size_t fleet_model_cut_count(const fleet_model *model);
fleet_model_status fleet_model_cut_at(const fleet_model *model, size_t index, fleet_model_cut *cut);

/* Static facts for `fleetctl model info`. */
typedef struct fleet_model_stats {
    size_t nodes;      /* ONNX nodes after import (Constant nodes included) */
    size_t parameters; /* float weights held by initializers and Constant nodes */
    uint64_t macs;     /* multiply-accumulates for one sample (batch 1) */
    size_t xnn_nodes;  /* operators in the compiled XNNPACK subgraph */
} fleet_model_stats;

void fleet_model_get_stats(const fleet_model *model, fleet_model_stats *stats);

/* The distinct ONNX operator types with their node counts, graph order. */
size_t fleet_model_op_count(const fleet_model *model);
fleet_model_status fleet_model_op_at(const fleet_model *model, size_t index, const char **op_type,
                                     size_t *nodes);

/* int8 affine quantization for tensors that travel: real = scale * (q - zero_point). */
typedef struct fleet_model_qparams {
    float scale;
    int32_t zero_point; /* in [-128, 127] */
} fleet_model_qparams;

/* Chooses scale and zero point covering [min(x), max(x)] and 0. count may be 0. */
fleet_model_qparams fleet_model_qparams_for(const float *values, size_t count);
void fleet_model_quantize_int8(const float *values, size_t count, fleet_model_qparams qparams,
                               int8_t *out);
void fleet_model_dequantize_int8(const int8_t *values, size_t count, fleet_model_qparams qparams,
                                 float *out);

#ifdef __cplusplus
}
#endif
#endif
