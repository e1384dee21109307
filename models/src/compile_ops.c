/* compile_ops.c: lowers each ONNX operator to XNNPACK nodes, converting weights to NHWC once. */
#include "compile.h"

#include <math.h>
#include <string.h>

static bool fm_trivial_order(int64_t c, int64_t h, int64_t w)
{
    return c == 1 || h * w == 1; /* NCHW and NHWC then hold the same sequence */
}

static fleet_model_status fm_need_nhwc(const fm_node *n, const fm_slot *x)
{
    if (!x || x->layout != FM_LAYOUT_NHWC)
        return fm_fail_node(n, FLEET_MODEL_EUNSUPPORTED, "input must be a 4-D NCHW image");
    return FLEET_MODEL_OK;
}

static fleet_model_status fm_lower_conv(fm_ctx *cx, const fm_node *n)
{
    fm_slot *x = fm_ctx_slot(cx, n, 0);
    const fm_value *w = fm_ctx_value(cx, n, 1), *b = fm_ctx_value(cx, n, 2);
    const fm_value *y = &cx->g->values[n->out[0]];
    fleet_model_status st = fm_need_nhwc(n, x);
    if (st != FLEET_MODEL_OK)
        return st;
    size_t cout = (size_t)w->dims[0], cg = (size_t)w->dims[1];
    size_t kh = (size_t)w->dims[2], kw = (size_t)w->dims[3], groups = (size_t)n->a.group;
    size_t cin = cg * groups;
    bool depthwise = groups > 1 && groups == cin;
    float *filter = fm_ctx_alloc(cx, w->count), *bias = NULL;
    if (!filter)
        return fm_fail(FLEET_MODEL_ENOMEM, "out of memory");
    for (size_t o = 0; o < cout; o++)
        for (size_t i = 0; i < cg; i++)
            for (size_t r = 0; r < kh * kw; r++) {
                float v = w->data[(o * cg + i) * kh * kw + r];
                if (depthwise)
                    filter[r * cout + o] = v; /* [1, kh, kw, Cout] */
                else
                    filter[(o * kh * kw + r) * cg + i] = v; /* [Cout, kh, kw, Cin/g] */
            }
    uint32_t filter_id, bias_id = XNN_INVALID_VALUE_ID;
    size_t fdims[4] = {depthwise ? 1 : cout, kh, kw, depthwise ? cout : cg};
    if ((st = fm_ctx_static(cx, n, filter, 4, fdims, &filter_id)) != FLEET_MODEL_OK)
        return st;
    if (b) {
        if (!(bias = fm_ctx_alloc(cx, cout)))
            return fm_fail(FLEET_MODEL_ENOMEM, "out of memory");
        memcpy(bias, b->data, cout * sizeof(float));
        if ((st = fm_ctx_static(cx, n, bias, 1, &cout, &bias_id)) != FLEET_MODEL_OK)
            return st;
    }
    size_t odims[4];
    fm_nhwc_dims(y->dims, odims);
    if ((st = fm_ctx_output(cx, n, FM_LAYOUT_NHWC, 4, odims)) != FLEET_MODEL_OK)
        return st;
    const int64_t *p = n->a.pads, *s = n->a.strides, *d = n->a.dilations;
    uint32_t out = cx->slots[n->out[0]].id;
    enum xnn_status xs;
    if (depthwise)
        xs = xnn_define_depthwise_convolution_2d(
            cx->subgraph, (uint32_t)p[0], (uint32_t)p[3], (uint32_t)p[2], (uint32_t)p[1],
            (uint32_t)kh, (uint32_t)kw, (uint32_t)s[0], (uint32_t)s[1], (uint32_t)d[0],
            (uint32_t)d[1], (uint32_t)(cout / cin), cin, n->out_min, n->out_max, x->id, filter_id,
            bias_id, out, 0);
    else
        xs = xnn_define_convolution_2d(cx->subgraph, (uint32_t)p[0], (uint32_t)p[3], (uint32_t)p[2],
                                       (uint32_t)p[1], (uint32_t)kh, (uint32_t)kw, (uint32_t)s[0],
                                       (uint32_t)s[1], (uint32_t)d[0], (uint32_t)d[1],
                                       (uint32_t)groups, cg, cout / groups, n->out_min, n->out_max,
                                       x->id, filter_id, bias_id, out, 0);
    return fm_ctx_check(cx, n, xs, "the convolution");
}

/* Gemm and MatMul with constant weights: one fully connected node, weights [N, K]. */
static fleet_model_status fm_lower_dense(fm_ctx *cx, const fm_node *n)
{
    fm_slot *x = fm_ctx_slot(cx, n, 0);
    const fm_value *b = fm_ctx_value(cx, n, 1), *c = fm_ctx_value(cx, n, 2);
    const fm_value *y = &cx->g->values[n->out[0]];
    bool gemm = n->op == FM_OP_GEMM, trans = gemm && n->a.trans_b;
    if (x->layout == FM_LAYOUT_NHWC)
        return fm_fail_node(n, FLEET_MODEL_EUNSUPPORTED,
                            "a 4-D image input is not supported "
                            "(Flatten it first)");
    size_t k = (size_t)(trans ? b->dims[1] : b->dims[0]);
    size_t cols = (size_t)(trans ? b->dims[0] : b->dims[1]);
    float alpha = gemm ? n->a.alpha : 1.0f, beta = gemm ? n->a.beta : 1.0f;
    float *filter = fm_ctx_alloc(cx, k * cols), *bias = NULL;
    if (!filter)
        return fm_fail(FLEET_MODEL_ENOMEM, "out of memory");
    size_t hw = (size_t)(x->h * x->w), ch = (size_t)x->c;
    for (size_t j = 0; j < cols; j++)
        for (size_t i = 0; i < k; i++) {
            /* Physical column i of a FLAT_HWC input holds logical column (c, h, w). */
            size_t logical = x->layout == FM_LAYOUT_FLAT_HWC ? (i % ch) * hw + i / ch : i;
            float v = trans ? b->data[j * k + logical] : b->data[logical * cols + j];
            filter[j * k + i] = alpha * v;
        }
    uint32_t filter_id, bias_id = XNN_INVALID_VALUE_ID;
    size_t fdims[2] = {cols, k};
    fleet_model_status st = fm_ctx_static(cx, n, filter, 2, fdims, &filter_id);
    if (st != FLEET_MODEL_OK)
        return st;
    if (c && beta != 0.0f) {
        if (!(bias = fm_ctx_alloc(cx, cols)))
            return fm_fail(FLEET_MODEL_ENOMEM, "out of memory");
        for (size_t j = 0; j < cols; j++)
            bias[j] = beta * c->data[c->count == 1 ? 0 : j];
        if ((st = fm_ctx_static(cx, n, bias, 1, &cols, &bias_id)) != FLEET_MODEL_OK)
            return st;
    }
    size_t odims[FM_MAX_DIMS];
    for (size_t d = 0; d < y->rank; d++)
        odims[d] = (size_t)y->dims[d];
    if ((st = fm_ctx_output(cx, n, FM_LAYOUT_PLAIN, y->rank, odims)) != FLEET_MODEL_OK)
        return st;
    /* An input still shaped as the image it was flattened from is reshaped to [N, K] by the
     * layer itself (see fm_lower_reshape). */
    uint32_t flags = x->rank > 2 && y->rank == 2 ? XNN_FLAG_TENSORFLOW_RESHAPE_2D : 0;
    return fm_ctx_check(cx, n,
                        xnn_define_fully_connected(cx->subgraph, n->out_min, n->out_max, x->id,
                                                   filter_id, bias_id, cx->slots[n->out[0]].id,
                                                   flags),
                        "the fully connected layer");
}

/* A constant operand laid out like the runtime operand ref (logical rank `rank`). */
static fleet_model_status fm_const_like(fm_ctx *cx, const fm_node *n, const fm_slot *ref,
                                        size_t rank, const float *data, size_t crank,
                                        const int64_t *cdims, uint32_t *id, size_t *prank_out,
                                        size_t *pdims)
{
    int64_t d[FM_MAX_DIMS];
    size_t count = 1;
    if (crank > rank)
        return fm_fail_node(n, FLEET_MODEL_ESHAPE, "constant has more dimensions than the input");
    for (size_t i = 0; i < rank; i++) {
        d[i] = i < rank - crank ? 1 : cdims[i - (rank - crank)];
        count *= (size_t)d[i];
    }
    float *buf = fm_ctx_alloc(cx, count);
    if (!buf)
        return fm_fail(FLEET_MODEL_ENOMEM, "out of memory");
    size_t prank = rank ? rank : 1;
    for (size_t i = 0; i < rank; i++)
        pdims[i] = (size_t)d[i];
    if (rank == 0)
        pdims[0] = 1;
    if (ref->layout == FM_LAYOUT_NHWC && rank == 4) {
        fm_nhwc_dims(d, pdims);
        size_t c = (size_t)d[1], hw = (size_t)(d[2] * d[3]);
        for (size_t b = 0; b < (size_t)d[0]; b++)
            for (size_t ch = 0; ch < c; ch++)
                for (size_t i = 0; i < hw; i++)
                    buf[b * c * hw + i * c + ch] = data[b * c * hw + ch * hw + i];
    } else if (ref->layout == FM_LAYOUT_FLAT_HWC && rank == 2 && d[1] > 1) {
        size_t ch = (size_t)ref->c, hw = (size_t)(ref->h * ref->w), k = ch * hw;
        if ((size_t)d[1] != k)
            return fm_fail_node(n, FLEET_MODEL_ESHAPE, "constant does not match the features");
        for (size_t b = 0; b < (size_t)d[0]; b++)
            for (size_t i = 0; i < k; i++)
                buf[b * k + i] = data[b * k + (i % ch) * hw + i / ch];
    } else if (ref->layout != FM_LAYOUT_PLAIN && rank != ref->rank) {
        return fm_fail_node(n, FLEET_MODEL_EUNSUPPORTED, "broadcast across a layout change");
    } else {
        memcpy(buf, data, count * sizeof(float));
    }
    *prank_out = prank;
    return fm_ctx_static(cx, n, buf, prank, pdims, id);
}

static void fm_broadcast_dims(const fm_slot *a, const size_t *bd, size_t brank, size_t *rank,
                              size_t *out)
{
    *rank = a->rank > brank ? a->rank : brank;
    for (size_t i = 0; i < *rank; i++) {
        size_t da = i < *rank - a->rank ? 1 : a->dims[i - (*rank - a->rank)];
        size_t db = i < *rank - brank ? 1 : bd[i - (*rank - brank)];
        out[i] = da > db ? da : db;
    }
}

typedef enum fm_binary { FM_BIN_ADD, FM_BIN_MUL } fm_binary;

/* x (op) constant, where the constant is given in ONNX layout. */
static fleet_model_status fm_emit_binary_const(fm_ctx *cx, const fm_node *n, fm_binary kind,
                                               const fm_slot *x, size_t logical_rank,
                                               const float *data, size_t crank,
                                               const int64_t *cdims, float lo, float hi,
                                               uint32_t *out_id, bool define_output)
{
    uint32_t cid;
    size_t crank_phys = 0, cdims_phys[FM_MAX_DIMS] = {0};
    fleet_model_status st =
        fm_const_like(cx, n, x, logical_rank, data, crank, cdims, &cid, &crank_phys, cdims_phys);
    if (st != FLEET_MODEL_OK)
        return st;
    size_t rank, dims[FM_MAX_DIMS];
    fm_broadcast_dims(x, cdims_phys, crank_phys, &rank, dims);
    if (define_output) {
        fm_slot *o = &cx->slots[n->out[0]];
        if ((st = fm_ctx_output(cx, n, x->layout, rank, dims)) != FLEET_MODEL_OK)
            return st;
        o->c = x->c, o->h = x->h, o->w = x->w;
        *out_id = o->id;
    } else if (xnn_define_tensor_value(cx->subgraph, xnn_datatype_fp32, rank, dims, NULL,
                                       XNN_INVALID_VALUE_ID, 0, out_id) != xnn_status_success) {
        return fm_fail_node(n, FLEET_MODEL_EBACKEND, "XNNPACK rejected a temporary");
    }
    enum xnn_status s = kind == FM_BIN_ADD
                            ? xnn_define_add2(cx->subgraph, lo, hi, x->id, cid, *out_id, 0)
                            : xnn_define_multiply2(cx->subgraph, lo, hi, x->id, cid, *out_id, 0);
    return fm_ctx_check(cx, n, s, "an elementwise operation");
}

static fleet_model_status fm_lower_binary(fm_ctx *cx, const fm_node *n)
{
    const fm_value *a = fm_ctx_value(cx, n, 0), *b = fm_ctx_value(cx, n, 1);
    const fm_value *y = &cx->g->values[n->out[0]];
    fm_binary kind = n->op == FM_OP_ADD ? FM_BIN_ADD : FM_BIN_MUL;
    if (a->is_const && b->is_const)
        return fm_fail_node(n, FLEET_MODEL_EUNSUPPORTED, "both operands are constants");
    if (a->is_int || b->is_int)
        return fm_fail_node(n, FLEET_MODEL_EUNSUPPORTED, "integer operands are not supported");
    uint32_t id;
    if (a->is_const || b->is_const) {
        const fm_value *c = a->is_const ? a : b;
        const fm_slot *x = fm_ctx_slot(cx, n, a->is_const ? 1 : 0);
        const fm_value *xv = a->is_const ? b : a;
        if (x->layout != FM_LAYOUT_PLAIN && c->rank > xv->rank)
            return fm_fail_node(n, FLEET_MODEL_EUNSUPPORTED, "constant widens an image tensor");
        return fm_emit_binary_const(cx, n, kind, x, y->rank, c->data, c->rank, c->dims, n->out_min,
                                    n->out_max, &id, true);
    }
    fm_slot *x = fm_ctx_slot(cx, n, 0), *z = fm_ctx_slot(cx, n, 1);
    bool same_layout =
        x->layout == z->layout &&
        (x->layout != FM_LAYOUT_FLAT_HWC || (x->c == z->c && x->h == z->h && x->w == z->w)) &&
        (x->layout == FM_LAYOUT_PLAIN || x->rank == z->rank);
    if (!same_layout)
        return fm_fail_node(n, FLEET_MODEL_EUNSUPPORTED,
                            "operands are laid out differently (image vs flat tensor)");
    size_t rank, dims[FM_MAX_DIMS];
    fm_broadcast_dims(x, z->dims, z->rank, &rank, dims);
    fleet_model_status st = fm_ctx_output(cx, n, x->layout, rank, dims);
    if (st != FLEET_MODEL_OK)
        return st;
    fm_slot *o = &cx->slots[n->out[0]];
    o->c = x->c, o->h = x->h, o->w = x->w;
    enum xnn_status s =
        kind == FM_BIN_ADD
            ? xnn_define_add2(cx->subgraph, n->out_min, n->out_max, x->id, z->id, o->id, 0)
            : xnn_define_multiply2(cx->subgraph, n->out_min, n->out_max, x->id, z->id, o->id, 0);
    return fm_ctx_check(cx, n, s, "an elementwise operation");
}

/* Standalone BatchNormalization: x * scale + shift per channel (dimension 1). */
static fleet_model_status fm_lower_batchnorm(fm_ctx *cx, const fm_node *n)
{
    const fm_value *xv = fm_ctx_value(cx, n, 0);
    const float *gamma = fm_ctx_value(cx, n, 1)->data, *beta = fm_ctx_value(cx, n, 2)->data;
    const float *mean = fm_ctx_value(cx, n, 3)->data, *var = fm_ctx_value(cx, n, 4)->data;
    size_t channels = (size_t)xv->dims[1];
    float *scale = fm_ctx_alloc(cx, channels), *shift = fm_ctx_alloc(cx, channels);
    if (!scale || !shift)
        return fm_fail(FLEET_MODEL_ENOMEM, "out of memory");
    for (size_t c = 0; c < channels; c++) {
        scale[c] = gamma[c] / sqrtf(var[c] + n->a.epsilon);
        shift[c] = beta[c] - mean[c] * scale[c];
    }
    int64_t cdims[FM_MAX_DIMS];
    for (size_t i = 0; i < xv->rank - 1; i++)
        cdims[i] = i == 0 ? (int64_t)channels : 1; /* [C, 1, ...] right-aligned to dim 1 */
    fm_slot *x = fm_ctx_slot(cx, n, 0);
    uint32_t tmp, out;
    fleet_model_status st =
        fm_emit_binary_const(cx, n, FM_BIN_MUL, x, xv->rank, scale, xv->rank - 1, cdims, -INFINITY,
                             INFINITY, &tmp, false);
    if (st != FLEET_MODEL_OK)
        return st;
    fm_slot scaled = *x;
    scaled.id = tmp;
    return fm_emit_binary_const(cx, n, FM_BIN_ADD, &scaled, xv->rank, shift, xv->rank - 1, cdims,
                                n->out_min, n->out_max, &out, true);
}

static fleet_model_status fm_same_shape_output(fm_ctx *cx, const fm_node *n, const fm_slot *x)
{
    fleet_model_status st = fm_ctx_output(cx, n, x->layout, x->rank, x->dims);
    fm_slot *o = &cx->slots[n->out[0]];
    o->c = x->c, o->h = x->h, o->w = x->w;
    return st;
}

static fleet_model_status fm_clip_bounds(fm_ctx *cx, const fm_node *n, float *lo, float *hi)
{
    *lo = n->a.clip_min;
    *hi = n->a.clip_max;
    if (cx->g->opset < 11)
        return FLEET_MODEL_OK;
    for (size_t k = 1; k < 3; k++) {
        const fm_value *b = fm_ctx_value(cx, n, k);
        if (!b)
            continue;
        if (!b->is_const || b->is_int || b->count != 1)
            return fm_fail_node(n, FLEET_MODEL_EUNSUPPORTED, "bounds must be float constants");
        *(k == 1 ? lo : hi) = b->data[0];
    }
    return FLEET_MODEL_OK;
}

static fleet_model_status fm_lower_unary(fm_ctx *cx, const fm_node *n)
{
    fm_slot *x = fm_ctx_slot(cx, n, 0);
    if (n->op == FM_OP_HARDSIGMOID) {
        /* max(0, min(1, alpha * x + beta)) as a multiply and a clamped add of scalars. */
        int64_t one = 1;
        float alpha = n->a.alpha, beta = n->a.beta;
        uint32_t tmp, out;
        fleet_model_status st = fm_emit_binary_const(cx, n, FM_BIN_MUL, x, x->rank, &alpha, 1, &one,
                                                     -INFINITY, INFINITY, &tmp, false);
        if (st != FLEET_MODEL_OK)
            return st;
        fm_slot scaled = *x;
        scaled.id = tmp;
        return fm_emit_binary_const(cx, n, FM_BIN_ADD, &scaled, x->rank, &beta, 1, &one, 0.0f, 1.0f,
                                    &out, true);
    }
    bool identity = n->op == FM_OP_IDENTITY || n->op == FM_OP_DROPOUT;
    float lo = identity ? -INFINITY : 0.0f, hi = INFINITY;
    fleet_model_status st = FLEET_MODEL_OK;
    if (n->op == FM_OP_CLIP && (st = fm_clip_bounds(cx, n, &lo, &hi)) != FLEET_MODEL_OK)
        return st;
    if ((st = fm_same_shape_output(cx, n, x)) != FLEET_MODEL_OK)
        return st;
    uint32_t out = cx->slots[n->out[0]].id;
    enum xnn_status s;
    if (n->op == FM_OP_SIGMOID)
        s = xnn_define_sigmoid(cx->subgraph, x->id, out, 0);
    else if (n->op == FM_OP_HARDSWISH)
        s = xnn_define_hardswish(cx->subgraph, x->id, out, 0);
    else
        s = xnn_define_clamp(cx->subgraph, lo, hi, x->id, out, 0);
    return fm_ctx_check(cx, n, s, "an activation");
}

/* Pads (zero) in front of an average pooling that counts padded cells. */
static fleet_model_status fm_pad_before_pool(fm_ctx *cx, const fm_node *n, const fm_slot *x,
                                             uint32_t *padded)
{
    const int64_t *p = n->a.pads;
    size_t pre[4] = {0, (size_t)p[0], (size_t)p[1], 0},
           post[4] = {0, (size_t)p[2], (size_t)p[3], 0};
    size_t dims[4] = {x->dims[0], x->dims[1] + pre[1] + post[1], x->dims[2] + pre[2] + post[2],
                      x->dims[3]};
    if (xnn_define_tensor_value(cx->subgraph, xnn_datatype_fp32, 4, dims, NULL,
                                XNN_INVALID_VALUE_ID, 0, padded) != xnn_status_success)
        return fm_fail_node(n, FLEET_MODEL_EBACKEND, "XNNPACK rejected a temporary");
    return fm_ctx_check(
        cx, n, xnn_define_static_constant_pad(cx->subgraph, pre, post, 0.0f, x->id, *padded, 0),
        "padding");
}

static fleet_model_status fm_lower_pool(fm_ctx *cx, const fm_node *n)
{
    fm_slot *x = fm_ctx_slot(cx, n, 0);
    const fm_value *y = &cx->g->values[n->out[0]];
    fleet_model_status st = fm_need_nhwc(n, x);
    if (st != FLEET_MODEL_OK)
        return st;
    size_t odims[4];
    int64_t ydims[4] = {y->dims[0], y->dims[1], 1, 1};
    fm_nhwc_dims(y->rank == 4 ? y->dims : ydims, odims);
    if (n->op == FM_OP_GLOBALAVGPOOL || n->op == FM_OP_REDUCEMEAN) {
        /* keepdims=0 drops two size-1 axes: the same bytes as [N, C]. */
        bool flat = y->rank == 2;
        size_t fdims[2] = {odims[0], odims[3]};
        if ((st = fm_ctx_output(cx, n, flat ? FM_LAYOUT_PLAIN : FM_LAYOUT_NHWC, flat ? 2 : 4,
                                flat ? fdims : odims)) != FLEET_MODEL_OK)
            return st;
        return fm_ctx_check(cx, n,
                            xnn_define_global_average_pooling_2d(cx->subgraph, n->out_min,
                                                                 n->out_max, x->id,
                                                                 cx->slots[n->out[0]].id, 0),
                            "global average pooling");
    }
    int64_t pads[4];
    memcpy(pads, n->a.pads, sizeof pads);
    const int64_t *k = n->a.kernel, *s = n->a.strides, *d = n->a.dilations;
    for (int axis = 0; axis < 2; axis++) {
        /* ceil_mode: pad the far edge until the last window fits (only max pooling). */
        int64_t need = (y->dims[2 + axis] - 1) * s[axis] + (k[axis] - 1) * d[axis] + 1 -
                       (x->dims[1 + axis] + pads[axis] + pads[2 + axis]);
        if (need > 0 && n->op == FM_OP_AVGPOOL)
            return fm_fail_node(n, FLEET_MODEL_EUNSUPPORTED, "ceil_mode is not supported");
        if (need > 0)
            pads[2 + axis] += need;
    }
    if (k[0] * k[1] < 2)
        return fm_fail_node(n, FLEET_MODEL_EUNSUPPORTED, "a 1x1 pooling window is not supported");
    uint32_t in = x->id;
    bool prepad =
        n->op == FM_OP_AVGPOOL && n->a.count_include_pad && (pads[0] | pads[1] | pads[2] | pads[3]);
    if (prepad) {
        if ((st = fm_pad_before_pool(cx, n, x, &in)) != FLEET_MODEL_OK)
            return st;
        memset(pads, 0, sizeof pads);
    }
    if ((st = fm_ctx_output(cx, n, FM_LAYOUT_NHWC, 4, odims)) != FLEET_MODEL_OK)
        return st;
    uint32_t out = cx->slots[n->out[0]].id;
    enum xnn_status xs;
    if (n->op == FM_OP_MAXPOOL)
        xs = xnn_define_max_pooling_2d(
            cx->subgraph, (uint32_t)pads[0], (uint32_t)pads[3], (uint32_t)pads[2],
            (uint32_t)pads[1], (uint32_t)k[0], (uint32_t)k[1], (uint32_t)s[0], (uint32_t)s[1],
            (uint32_t)d[0], (uint32_t)d[1], n->out_min, n->out_max, in, out, 0);
    else
        xs = xnn_define_average_pooling_2d(cx->subgraph, (uint32_t)pads[0], (uint32_t)pads[3],
                                           (uint32_t)pads[2], (uint32_t)pads[1], (uint32_t)k[0],
                                           (uint32_t)k[1], (uint32_t)s[0], (uint32_t)s[1],
                                           n->out_min, n->out_max, in, out, 0);
    return fm_ctx_check(cx, n, xs, "the pooling");
}

static bool fm_is_graph_output(const fm_graph *g, int value)
{
    for (size_t i = 0; i < g->n_outputs; i++)
        if (fm_resolve(g, g->outputs[i]) == value)
            return true;
    return false;
}

/* True when every reader of value is a Gemm or MatMul (they can flatten their input). */
static bool fm_only_dense_consumers(const fm_graph *g, int value)
{
    size_t readers = 0;
    for (size_t i = 0; i < g->n_nodes; i++) {
        const fm_node *n = &g->nodes[i];
        for (size_t k = 0; !n->dead && k < n->n_in; k++) {
            if (n->in[k] < 0 || fm_resolve(g, n->in[k]) != value)
                continue;
            if ((n->op != FM_OP_GEMM && n->op != FM_OP_MATMUL) || k != 0)
                return false;
            readers++;
        }
    }
    return readers > 0;
}

/* Flatten and Reshape: usually free (the same bytes, new dims); layouts decide what is legal. */
static fleet_model_status fm_lower_reshape(fm_ctx *cx, const fm_node *n)
{
    fm_slot *x = fm_ctx_slot(cx, n, 0);
    const fm_value *xv = fm_ctx_value(cx, n, 0), *y = &cx->g->values[n->out[0]];
    fm_slot out = {.layout = FM_LAYOUT_PLAIN, .rank = y->rank};
    for (size_t d = 0; d < y->rank; d++)
        out.dims[d] = (size_t)y->dims[d];
    bool src_plain =
        x->layout == FM_LAYOUT_PLAIN ||
        (x->layout == FM_LAYOUT_NHWC && fm_trivial_order(xv->dims[1], xv->dims[2], xv->dims[3]));
    if (y->rank == 4 && src_plain && fm_trivial_order(y->dims[1], y->dims[2], y->dims[3])) {
        out.layout = FM_LAYOUT_NHWC;
        fm_nhwc_dims(y->dims, out.dims);
    } else if (y->rank == 4 && x->layout == FM_LAYOUT_FLAT_HWC && y->dims[1] == x->c &&
               y->dims[2] == x->h && y->dims[3] == x->w) {
        out.layout = FM_LAYOUT_NHWC; /* unflattening what was flattened from NHWC */
        fm_nhwc_dims(y->dims, out.dims);
    } else if (y->rank == 2 && x->layout == FM_LAYOUT_NHWC && !src_plain) {
        out.layout = FM_LAYOUT_FLAT_HWC;
        out.c = xv->dims[1], out.h = xv->dims[2], out.w = xv->dims[3];
    } else if (y->rank == 2 && x->layout == FM_LAYOUT_FLAT_HWC) {
        out.layout = FM_LAYOUT_FLAT_HWC;
        out.c = x->c, out.h = x->h, out.w = x->w;
    } else if (y->rank == 4 || !src_plain) {
        return fm_fail_node(n, FLEET_MODEL_EUNSUPPORTED,
                            "this reshape would reorder an image tensor's channels");
    }
    fm_slot *o = &cx->slots[n->out[0]];
    bool same = out.rank == x->rank && memcmp(out.dims, x->dims, out.rank * sizeof *out.dims) == 0;
    bool into_dense = out.rank == 2 && fm_only_dense_consumers(cx->g, n->out[0]);
    if (!fm_is_graph_output(cx->g, n->out[0]) && (same || into_dense)) {
        /* Nothing moves: share the XNNPACK value. A fully connected layer reads a
         * flattened image as it lies (its 2-D reshape flag), so no copy node is needed. */
        *o = out;
        o->id = x->id;
        o->rank = x->rank;
        memcpy(o->dims, x->dims, sizeof o->dims);
        return FLEET_MODEL_OK;
    }
    fleet_model_status st = fm_ctx_output(cx, n, out.layout, out.rank, out.dims);
    if (st != FLEET_MODEL_OK)
        return st;
    o->c = out.c, o->h = out.h, o->w = out.w;
    return fm_ctx_check(
        cx, n, xnn_define_static_reshape(cx->subgraph, out.rank, out.dims, x->id, o->id, 0),
        "the reshape");
}

/* Softmax over everything from dimension 1 on (opset < 13): flatten, normalise, unflatten.
 * The order inside a sample does not matter, so an NHWC image flattens as it lies. */
static fleet_model_status fm_lower_softmax_flat(fm_ctx *cx, const fm_node *n, const fm_slot *x)
{
    size_t flat[2] = {x->dims[0], 1};
    for (size_t d = 1; d < x->rank; d++)
        flat[1] *= x->dims[d];
    uint32_t a, b;
    fleet_model_status st = fm_same_shape_output(cx, n, x);
    if (st != FLEET_MODEL_OK)
        return st;
    if (xnn_define_tensor_value(cx->subgraph, xnn_datatype_fp32, 2, flat, NULL,
                                XNN_INVALID_VALUE_ID, 0, &a) != xnn_status_success ||
        xnn_define_tensor_value(cx->subgraph, xnn_datatype_fp32, 2, flat, NULL,
                                XNN_INVALID_VALUE_ID, 0, &b) != xnn_status_success)
        return fm_fail_node(n, FLEET_MODEL_EBACKEND, "XNNPACK rejected a temporary");
    if ((st = fm_ctx_check(cx, n, xnn_define_static_reshape(cx->subgraph, 2, flat, x->id, a, 0),
                           "a reshape")) != FLEET_MODEL_OK ||
        (st = fm_ctx_check(cx, n, xnn_define_softmax(cx->subgraph, a, b, 0), "the softmax")) !=
            FLEET_MODEL_OK)
        return st;
    return fm_ctx_check(
        cx, n,
        xnn_define_static_reshape(cx->subgraph, x->rank, x->dims, b, cx->slots[n->out[0]].id, 0),
        "a reshape");
}

static fleet_model_status fm_lower_softmax(fm_ctx *cx, const fm_node *n)
{
    fm_slot *x = fm_ctx_slot(cx, n, 0);
    const fm_value *xv = fm_ctx_value(cx, n, 0);
    int64_t rank = (int64_t)xv->rank, axis = n->a.axis < 0 ? n->a.axis + rank : n->a.axis;
    /* XNNPACK normalises the last physical axis. Before opset 13 ONNX normalised everything
     * from axis on (the same when nothing but size-1 axes follow). */
    bool trailing_ones = true;
    for (int64_t d = axis + 1; d < rank; d++)
        trailing_ones &= xv->dims[d] == 1;
    bool legacy = cx->g->opset < 13;
    bool last =
        x->layout == FM_LAYOUT_NHWC ? axis == 1 && (!legacy || trailing_ones) : axis == rank - 1;
    if (!last && legacy && axis == 1 && x->layout != FM_LAYOUT_FLAT_HWC)
        return fm_lower_softmax_flat(cx, n, x);
    if (!last)
        return fm_fail_node(n, FLEET_MODEL_EUNSUPPORTED,
                            "softmax over axis %lld of a %lld-D "
                            "tensor is not supported",
                            (long long)n->a.axis, (long long)rank);
    fleet_model_status st = fm_same_shape_output(cx, n, x);
    if (st != FLEET_MODEL_OK)
        return st;
    return fm_ctx_check(cx, n, xnn_define_softmax(cx->subgraph, x->id, cx->slots[n->out[0]].id, 0),
                        "the softmax");
}

static fleet_model_status fm_lower_pad(fm_ctx *cx, const fm_node *n)
{
    fm_slot *x = fm_ctx_slot(cx, n, 0);
    const fm_value *xv = fm_ctx_value(cx, n, 0), *y = &cx->g->values[n->out[0]];
    size_t rank = xv->rank, pre[FM_MAX_DIMS], post[FM_MAX_DIMS];
    float value = n->a.pad_value;
    if (cx->g->opset >= 11) {
        const fm_value *cv = fm_ctx_value(cx, n, 2);
        if (cv && (!cv->is_const || cv->is_int || cv->count != 1))
            return fm_fail_node(n, FLEET_MODEL_EUNSUPPORTED,
                                "constant_value must be a float "
                                "constant");
        value = cv ? cv->data[0] : 0.0f;
    }
    if (x->layout == FM_LAYOUT_FLAT_HWC)
        return fm_fail_node(n, FLEET_MODEL_EUNSUPPORTED, "padding a flattened image");
    for (size_t i = 0; i < rank; i++) {
        /* Logical axis i of an NHWC tensor lives at physical axis {0,3,1,2}[i]. */
        size_t phys = x->layout == FM_LAYOUT_NHWC ? (size_t) "\0\3\1\2"[i] : i;
        int64_t grown = y->dims[i] - xv->dims[i];
        const fm_value *pv = fm_ctx_value(cx, n, 1);
        int64_t before = cx->g->opset >= 11 ? pv->ints[i] : n->a.pad_attr[i];
        pre[phys] = (size_t)before;
        post[phys] = (size_t)(grown - before);
    }
    size_t dims[FM_MAX_DIMS];
    for (size_t i = 0; i < rank; i++)
        dims[i] = x->dims[i] + pre[i] + post[i];
    fleet_model_status st = fm_ctx_output(cx, n, x->layout, rank, dims);
    if (st != FLEET_MODEL_OK)
        return st;
    return fm_ctx_check(cx, n,
                        xnn_define_static_constant_pad(cx->subgraph, pre, post, value, x->id,
                                                       cx->slots[n->out[0]].id, 0),
                        "the padding");
}

/* Source index that ONNX nearest resizing reads for output index o along one axis. */
static int64_t fm_nearest_source(const fm_node *n, int64_t o, int64_t in, int64_t out, double scale)
{
    double x;
    switch (n->a.resize_coords) {
    case FM_COORD_ALIGN_CORNERS:
        x = out > 1 ? (double)o * (double)(in - 1) / (double)(out - 1) : 0.0;
        break;
    case FM_COORD_ASYMMETRIC:
        x = (double)o / scale;
        break;
    case FM_COORD_PYTORCH_HALF_PIXEL:
        x = out > 1 ? ((double)o + 0.5) / scale - 0.5 : 0.0;
        break;
    default:
        x = ((double)o + 0.5) / scale - 0.5;
        break;
    }
    double f = floor(x);
    int64_t src =
        n->a.nearest_floor ? (int64_t)f : (x - f == 0.5 ? (int64_t)f : (int64_t)llround(x));
    return src < 0 ? 0 : src >= in ? in - 1 : src;
}

static double fm_resize_scale(fm_ctx *cx, const fm_node *n, int axis, int64_t in, int64_t out)
{
    const fm_value *scales = fm_ctx_value(cx, n, cx->g->opset < 11 ? 1 : 2);
    const fm_value *sizes = fm_ctx_value(cx, n, 3);
    if ((!sizes || sizes->count == 0) && scales && scales->count == 4)
        return scales->data[2 + axis];
    return (double)out / (double)in;
}

/* Nearest resizing by whole factors: a transposed convolution copies each pixel into a block
 * (upsampling), a strided one-hot depthwise convolution picks one pixel per block (down). */
static fleet_model_status fm_lower_nearest(fm_ctx *cx, const fm_node *n, const fm_slot *x,
                                           const fm_value *xv, const fm_value *y)
{
    int64_t factor[2], offset[2];
    bool up = y->dims[2] >= xv->dims[2] && y->dims[3] >= xv->dims[3];
    for (int axis = 0; axis < 2; axis++) {
        int64_t in = xv->dims[2 + axis], out = y->dims[2 + axis];
        double scale = fm_resize_scale(cx, n, axis, in, out);
        factor[axis] = up ? out / in : in / out;
        offset[axis] = up || out > in ? 0 : fm_nearest_source(n, 0, in, out, scale);
        /* Downsampling reads pixels offset, offset + f, ...: a window of offset + 1, stride f. */
        bool whole = factor[axis] >= 1 &&
                     (up ? out % in == 0 : (in - offset[axis] - 1) / factor[axis] + 1 == out);
        for (int64_t o = 0; whole && o < out; o++) {
            int64_t want = up ? o / factor[axis] : o * factor[axis] + offset[axis];
            whole = fm_nearest_source(n, o, in, out, scale) == want;
        }
        if (!whole)
            return fm_fail_node(n, FLEET_MODEL_EUNSUPPORTED,
                                "nearest resizing %lldx%lld -> %lldx%lld is not a whole-factor "
                                "up- or downsampling",
                                (long long)xv->dims[2], (long long)xv->dims[3],
                                (long long)y->dims[2], (long long)y->dims[3]);
    }
    size_t c = (size_t)xv->dims[1];
    size_t kh = (size_t)(up ? factor[0] : offset[0] + 1),
           kw = (size_t)(up ? factor[1] : offset[1] + 1);
    float *filter = fm_ctx_alloc(cx, c * kh * kw), *bias = fm_ctx_alloc(cx, c);
    if (!filter || !bias)
        return fm_fail(FLEET_MODEL_ENOMEM, "out of memory");
    for (size_t i = 0; i < c * kh * kw; i++)
        filter[i] = up ? 1.0f : 0.0f;
    if (!up)
        for (size_t ch = 0; ch < c; ch++)
            filter[((kh - 1) * kw + (kw - 1)) * c + ch] = 1.0f; /* [1, kh, kw, C] */
    size_t fdims[4] = {up ? c : 1, kh, kw, up ? 1 : c};
    uint32_t filter_id, bias_id;
    fleet_model_status st = fm_ctx_static(cx, n, filter, 4, fdims, &filter_id);
    if (st == FLEET_MODEL_OK)
        st = fm_ctx_static(cx, n, bias, 1, &c, &bias_id);
    size_t odims[4];
    fm_nhwc_dims(y->dims, odims);
    if (st == FLEET_MODEL_OK)
        st = fm_ctx_output(cx, n, FM_LAYOUT_NHWC, 4, odims);
    if (st != FLEET_MODEL_OK)
        return st;
    uint32_t out = cx->slots[n->out[0]].id;
    enum xnn_status xs = up ? xnn_define_deconvolution_2d(
                                  cx->subgraph, 0, 0, 0, 0, 0, 0, (uint32_t)kh, (uint32_t)kw,
                                  (uint32_t)factor[0], (uint32_t)factor[1], 1, 1, (uint32_t)c, 1, 1,
                                  -INFINITY, INFINITY, x->id, filter_id, bias_id, out, 0)
                            : xnn_define_depthwise_convolution_2d(
                                  cx->subgraph, 0, 0, 0, 0, (uint32_t)kh, (uint32_t)kw,
                                  (uint32_t)factor[0], (uint32_t)factor[1], 1, 1, 1, (uint32_t)c,
                                  -INFINITY, INFINITY, x->id, filter_id, bias_id, out, 0);
    return fm_ctx_check(cx, n, xs, "nearest resizing");
}

static fleet_model_status fm_lower_resize(fm_ctx *cx, const fm_node *n)
{
    fm_slot *x = fm_ctx_slot(cx, n, 0);
    const fm_value *xv = fm_ctx_value(cx, n, 0), *y = &cx->g->values[n->out[0]];
    fleet_model_status st = fm_need_nhwc(n, x);
    if (st != FLEET_MODEL_OK)
        return st;
    if (n->a.resize_mode == FM_RESIZE_NEAREST)
        return fm_lower_nearest(cx, n, x, xv, y);
    for (int axis = 0; axis < 2; axis++) {
        int64_t in = xv->dims[2 + axis], out = y->dims[2 + axis];
        double scale = fm_resize_scale(cx, n, axis, in, out);
        if (fabs(scale * (double)in - (double)out) > 1e-6 * (double)out)
            return fm_fail_node(n, FLEET_MODEL_EUNSUPPORTED,
                                "scale %g does not map %lld pixels to a whole number", scale,
                                (long long)in);
        if (out == 1 && n->a.resize_coords == FM_COORD_PYTORCH_HALF_PIXEL)
            return fm_fail_node(n, FLEET_MODEL_EUNSUPPORTED, "pytorch_half_pixel to size 1");
    }
    uint32_t flags = n->a.resize_coords == FM_COORD_ALIGN_CORNERS ? XNN_FLAG_ALIGN_CORNERS
                     : n->a.resize_coords == FM_COORD_ASYMMETRIC  ? XNN_FLAG_TENSORFLOW_LEGACY_MODE
                                                                  : 0;
    size_t odims[4];
    fm_nhwc_dims(y->dims, odims);
    if ((st = fm_ctx_output(cx, n, FM_LAYOUT_NHWC, 4, odims)) != FLEET_MODEL_OK)
        return st;
    return fm_ctx_check(cx, n,
                        xnn_define_static_resize_bilinear_2d(cx->subgraph, odims[1], odims[2],
                                                             x->id, cx->slots[n->out[0]].id, flags),
                        "bilinear resizing");
}

fleet_model_status fm_lower_node(fm_ctx *cx, const fm_node *n)
{
    for (size_t i = 0; i < n->n_in; i++) {
        const fm_value *v = fm_ctx_value(cx, n, i);
        bool commutes = n->op == FM_OP_ADD || n->op == FM_OP_MUL;
        if (i == 0 && (!v || (v->is_const && !commutes)))
            return fm_fail_node(n, FLEET_MODEL_EUNSUPPORTED,
                                "the first input must be computed, not a constant");
        if (v && !v->is_const && cx->slots[fm_resolve(cx->g, n->in[i])].id == XNN_INVALID_VALUE_ID)
            return fm_fail_node(n, FLEET_MODEL_EMALFORMED, "input '%s' is never computed", v->name);
    }
    switch (n->op) {
    case FM_OP_CONV:
        return fm_lower_conv(cx, n);
    case FM_OP_GEMM:
    case FM_OP_MATMUL:
        return fm_lower_dense(cx, n);
    case FM_OP_ADD:
    case FM_OP_MUL:
        return fm_lower_binary(cx, n);
    case FM_OP_BATCHNORM:
        return fm_lower_batchnorm(cx, n);
    case FM_OP_RELU:
    case FM_OP_CLIP:
    case FM_OP_SIGMOID:
    case FM_OP_HARDSWISH:
    case FM_OP_HARDSIGMOID:
    case FM_OP_IDENTITY:
    case FM_OP_DROPOUT:
        return fm_lower_unary(cx, n);
    case FM_OP_MAXPOOL:
    case FM_OP_AVGPOOL:
    case FM_OP_GLOBALAVGPOOL:
    case FM_OP_REDUCEMEAN:
        return fm_lower_pool(cx, n);
    case FM_OP_FLATTEN:
    case FM_OP_RESHAPE:
        return fm_lower_reshape(cx, n);
    case FM_OP_SOFTMAX:
        return fm_lower_softmax(cx, n);
    case FM_OP_PAD:
        return fm_lower_pad(cx, n);
    case FM_OP_RESIZE:
        return fm_lower_resize(cx, n);
    case FM_OP_CONSTANT:
        return FLEET_MODEL_OK;
    }
    return fm_fail_node(n, FLEET_MODEL_EUNSUPPORTED, "operator not supported");
}
