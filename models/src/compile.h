/* compile.h: state shared by the XNNPACK compile driver (compile.c) and the operator lowerings. */
#ifndef FLEET_MODEL_COMPILE_H
#define FLEET_MODEL_COMPILE_H

#include "model_internal.h"

#include <xnnpack.h>

/* How a value's elements are laid out in XNNPACK memory. */
typedef enum fm_layout {
    FM_LAYOUT_PLAIN,    /* same order as ONNX */
    FM_LAYOUT_NHWC,     /* a 4-D NCHW tensor stored channels-last */
    FM_LAYOUT_FLAT_HWC, /* [N, C*H*W] flattened from NHWC: element order H, W, C */
} fm_layout;

typedef struct fm_slot {
    uint32_t id; /* XNNPACK value id, XNN_INVALID_VALUE_ID until defined */
    fm_layout layout;
    int64_t c, h, w; /* FLAT_HWC: the image the values came from */
    size_t rank;
    size_t dims[FM_MAX_DIMS]; /* physical (XNNPACK) dims */
} fm_slot;

typedef struct fm_ctx {
    const fm_graph *g;
    xnn_subgraph_t subgraph;
    fm_slot *slots; /* one per graph value */
    float **owned;  /* converted weights; they must outlive the runtime */
    size_t n_owned, cap_owned;
    size_t xnn_nodes;
} fm_ctx;

/* compile.c */
const fm_value *fm_ctx_value(const fm_ctx *cx, const fm_node *n, size_t i);
fm_slot *fm_ctx_slot(fm_ctx *cx, const fm_node *n, size_t i);
float *fm_ctx_alloc(fm_ctx *cx, size_t count);
fleet_model_status fm_ctx_static(fm_ctx *cx, const fm_node *n, float *data, size_t rank,
                                 const size_t *dims, uint32_t *id);
fleet_model_status fm_ctx_output(fm_ctx *cx, const fm_node *n, fm_layout layout, size_t rank,
                                 const size_t *dims);
fleet_model_status fm_ctx_check(fm_ctx *cx, const fm_node *n, enum xnn_status status,
                                const char *what);
void fm_nhwc_dims(const int64_t *nchw, size_t *out);

/* compile_ops.c */
fleet_model_status fm_lower_node(fm_ctx *cx, const fm_node *n);

#endif
