/* model_internal.h: the graph IR shared by the importer, the passes and the XNNPACK compiler. */
#ifndef FLEET_MODEL_INTERNAL_H
#define FLEET_MODEL_INTERNAL_H

#include "fleet_models.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FM_MAX_DIMS FLEET_MODEL_MAX_DIMS
#define FM_NO_VALUE (-1)
#define FM_MAX_DIM ((int64_t)1 << 24)         /* no dimension may be larger */
#define FM_MAX_ELEMENTS ((int64_t)1 << 26)    /* no tensor may hold more values (256 MiB of f32) */
#define FM_MAX_ACTIVATIONS ((int64_t)1 << 28) /* all computed tensors together (1 GiB of f32) */
#define FM_MAX_RESIZE_PIXELS ((int64_t)1 << 22) /* XNNPACK keeps an index per output pixel */

typedef enum fm_op {
    FM_OP_CONV,
    FM_OP_GEMM,
    FM_OP_MATMUL,
    FM_OP_ADD,
    FM_OP_MUL,
    FM_OP_RELU,
    FM_OP_CLIP,
    FM_OP_SIGMOID,
    FM_OP_HARDSWISH,
    FM_OP_HARDSIGMOID,
    FM_OP_MAXPOOL,
    FM_OP_AVGPOOL,
    FM_OP_GLOBALAVGPOOL,
    FM_OP_REDUCEMEAN,
    FM_OP_FLATTEN,
    FM_OP_RESHAPE,
    FM_OP_BATCHNORM,
    FM_OP_SOFTMAX,
    FM_OP_PAD,
    FM_OP_RESIZE,
    FM_OP_CONSTANT,
    FM_OP_IDENTITY,
    FM_OP_DROPOUT,
} fm_op;

typedef enum fm_auto_pad {
    FM_PAD_NOTSET,
    FM_PAD_SAME_UPPER,
    FM_PAD_SAME_LOWER,
    FM_PAD_VALID,
} fm_auto_pad;

typedef enum fm_resize_mode { FM_RESIZE_NEAREST, FM_RESIZE_LINEAR } fm_resize_mode;

typedef enum fm_resize_coords {
    FM_COORD_HALF_PIXEL,
    FM_COORD_PYTORCH_HALF_PIXEL,
    FM_COORD_ALIGN_CORNERS,
    FM_COORD_ASYMMETRIC,
    FM_COORD_OTHER,
} fm_resize_coords;

/* Every attribute any supported operator reads; plain data, defaults set at import. */
typedef struct fm_attrs {
    int64_t kernel[2];
    int64_t strides[2];
    int64_t dilations[2];
    int64_t pads[4]; /* top, left, bottom, right (resolved from auto_pad by shape inference) */
    int64_t group;
    fm_auto_pad auto_pad;
    int ceil_mode;
    int count_include_pad;
    float alpha, beta;
    int trans_a, trans_b;
    int64_t axis;
    float epsilon;
    float clip_min, clip_max; /* attribute form (opset < 11) */
    int has_kernel;
    fm_resize_mode resize_mode;
    fm_resize_coords resize_coords;
    int nearest_floor; /* nearest_mode is floor (else round_prefer_floor and friends) */
    int pad_constant_mode;
    int64_t pad_attr[2 * FM_MAX_DIMS]; /* Pad opset < 11 */
    int pad_attr_count;
    float pad_value;
    int allowzero;
    int keepdims;
    int64_t axes[FM_MAX_DIMS];
    int n_axes;
} fm_attrs;

typedef struct fm_value {
    char *name;
    size_t rank;
    int64_t dims[FM_MAX_DIMS]; /* ONNX (logical) shape at the current batch size */
    bool has_shape;
    bool is_const;
    bool is_int;   /* int64 constant (shapes, pads, sizes) */
    float *data;   /* float constant, ONNX layout; owned */
    int64_t *ints; /* int64 constant; owned */
    size_t count;  /* elements of the constant */
    int producer;  /* node index, or -1 for inputs and constants */
    int alias;     /* Identity/Dropout folded: read this value instead (or -1) */
} fm_value;

typedef struct fm_node {
    char *name;
    char *op_type;
    fm_op op;
    int *in; /* value indices; FM_NO_VALUE for an absent optional input */
    size_t n_in;
    int *out;
    size_t n_out;
    fm_attrs a;
    bool dead;     /* removed by a pass; never compiled */
    float out_min; /* activation fused into this node */
    float out_max;
} fm_node;

typedef struct fm_graph {
    fm_value *values;
    size_t n_values, cap_values;
    fm_node *nodes;
    size_t n_nodes;
    int *inputs; /* runtime inputs */
    size_t n_inputs;
    int *outputs;
    size_t n_outputs;
    char **meta_keys;
    char **meta_values;
    size_t n_meta;
    int64_t opset;
    int64_t declared_batch; /* dimension 0 of the first input as the file declares it, or 0 */
    size_t batch;           /* the batch the shapes are inferred for */
    size_t imported_nodes;
} fm_graph;

/* Error reporting: formats the thread's detail message and returns status. */
fleet_model_status fm_fail(fleet_model_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
fleet_model_status fm_fail_node(const fm_node *node, fleet_model_status status, const char *fmt,
                                ...) __attribute__((format(printf, 3, 4)));

/* onnx_import.c */
fleet_model_status fm_import(const void *data, size_t size, fm_graph **out);
void fm_graph_free(fm_graph *g);
int fm_graph_add_value(fm_graph *g, const char *name);
int fm_graph_find_value(const fm_graph *g, const char *name);

/* shape.c: infers every value's shape for batch size g->batch. */
fleet_model_status fm_infer_shapes(fm_graph *g);
size_t fm_value_numel(const fm_value *v);
uint64_t fm_node_macs(const fm_graph *g, const fm_node *node);

/* graph.c */
int fm_resolve(const fm_graph *g, int value);
fleet_model_status fm_apply_cut(fm_graph *g, fleet_model_part part, const char *tensor);
fleet_model_status fm_optimize(fm_graph *g);
size_t fm_count_consumers(const fm_graph *g, int value);

typedef struct fm_cut_list {
    fleet_model_cut *cuts;
    size_t count;
} fm_cut_list;
fleet_model_status fm_find_cuts(const fm_graph *g, fm_cut_list *out);

/* compile.c: the compiled XNNPACK runtime for one batch size. */
typedef struct fm_compiled fm_compiled;
typedef struct fm_io {
    fm_value *value;
    size_t rank;
    size_t dims[FM_MAX_DIMS];
    size_t count;
} fm_io;

fleet_model_status fm_compile(const fm_graph *g, size_t threads, fm_compiled **out);
void fm_compiled_free(fm_compiled *c);
fleet_model_status fm_compiled_run(fm_compiled *c, const float *const *inputs,
                                   float *const *outputs);
size_t fm_compiled_xnn_nodes(const fm_compiled *c);

#endif
