/* shape.c: static shape inference for the supported operators, at the graph's batch size. */
#include "model_internal.h"

#include <math.h>
#include <string.h>

size_t fm_value_numel(const fm_value *v)
{
    size_t n = 1;
    for (size_t i = 0; i < v->rank; i++)
        n *= (size_t)v->dims[i];
    return n;
}

static const fm_value *fm_in(const fm_graph *g, const fm_node *n, size_t i)
{
    if (i >= n->n_in || n->in[i] == FM_NO_VALUE)
        return NULL;
    return &g->values[fm_resolve(g, n->in[i])];
}

static void fm_set_shape(fm_graph *g, const fm_node *n, size_t rank, const int64_t *dims)
{
    fm_value *v = &g->values[n->out[0]];
    v->rank = rank;
    memmove(v->dims, dims, rank * sizeof *dims);
    v->has_shape = true;
}

/* Output length of one spatial axis; resolves auto_pad into pads[begin]/pads[end]. */
static fleet_model_status fm_window(const fm_node *n, int64_t in, int64_t k, int64_t s, int64_t d,
                                    int64_t *pad_begin, int64_t *pad_end, int ceil_mode,
                                    int64_t *out)
{
    int64_t span = (k - 1) * d + 1;
    if (k < 1 || s < 1 || d < 1)
        return fm_fail_node(n, FLEET_MODEL_EMALFORMED, "kernel, stride and dilation must be >= 1");
    if (n->a.auto_pad == FM_PAD_SAME_UPPER || n->a.auto_pad == FM_PAD_SAME_LOWER) {
        int64_t o = (in + s - 1) / s;
        int64_t total = (o - 1) * s + span - in;
        if (total < 0)
            total = 0;
        *pad_begin = n->a.auto_pad == FM_PAD_SAME_UPPER ? total / 2 : total - total / 2;
        *pad_end = total - *pad_begin;
        *out = o;
        return FLEET_MODEL_OK;
    }
    if (n->a.auto_pad == FM_PAD_VALID)
        *pad_begin = *pad_end = 0;
    int64_t room = in + *pad_begin + *pad_end - span;
    if (room < 0)
        return fm_fail_node(n, FLEET_MODEL_ESHAPE, "window of %lld is larger than the input (%lld)",
                            (long long)span, (long long)(in + *pad_begin + *pad_end));
    int64_t o = (ceil_mode ? (room + s - 1) / s : room / s) + 1;
    if (ceil_mode && (o - 1) * s >= in + *pad_begin)
        o--; /* ONNX: the last window must start inside the input or the leading padding */
    *out = o;
    return FLEET_MODEL_OK;
}

static fleet_model_status fm_shape_window(fm_graph *g, fm_node *n, const fm_value *x,
                                          const int64_t *kernel, int64_t channels)
{
    if (x->rank != 4)
        return fm_fail_node(n, FLEET_MODEL_EUNSUPPORTED, "input must be 4-D NCHW, got %zu-D",
                            x->rank);
    int64_t dims[4] = {x->dims[0], channels, 0, 0};
    for (int axis = 0; axis < 2; axis++) {
        fleet_model_status st =
            fm_window(n, x->dims[2 + axis], kernel[axis], n->a.strides[axis], n->a.dilations[axis],
                      &n->a.pads[axis], &n->a.pads[2 + axis], n->a.ceil_mode, &dims[2 + axis]);
        if (st != FLEET_MODEL_OK)
            return st;
    }
    fm_set_shape(g, n, 4, dims);
    return FLEET_MODEL_OK;
}

static fleet_model_status fm_shape_conv(fm_graph *g, fm_node *n)
{
    const fm_value *x = fm_in(g, n, 0), *w = fm_in(g, n, 1), *b = fm_in(g, n, 2);
    if (!w || !w->is_const || w->is_int || w->rank != 4)
        return fm_fail_node(n, FLEET_MODEL_EUNSUPPORTED, "weights must be a constant 4-D tensor");
    if (x->rank != 4)
        return fm_fail_node(n, FLEET_MODEL_EUNSUPPORTED,
                            "only 2-D convolution (4-D input) is "
                            "supported");
    int64_t group = n->a.group;
    if (x->dims[1] % group || w->dims[0] % group || w->dims[1] * group != x->dims[1])
        return fm_fail_node(n, FLEET_MODEL_ESHAPE,
                            "weights [%lld,%lld,..] do not fit %lld input channels in %lld groups",
                            (long long)w->dims[0], (long long)w->dims[1], (long long)x->dims[1],
                            (long long)group);
    if (b && (!b->is_const || b->is_int || b->count != (size_t)w->dims[0]))
        return fm_fail_node(n, FLEET_MODEL_ESHAPE, "bias must be a constant of %lld values",
                            (long long)w->dims[0]);
    int64_t kernel[2] = {w->dims[2], w->dims[3]};
    if (n->a.has_kernel && (n->a.kernel[0] != kernel[0] || n->a.kernel[1] != kernel[1]))
        return fm_fail_node(n, FLEET_MODEL_ESHAPE, "kernel_shape disagrees with the weights");
    return fm_shape_window(g, n, x, kernel, w->dims[0]);
}

static fleet_model_status fm_shape_pool(fm_graph *g, fm_node *n)
{
    const fm_value *x = fm_in(g, n, 0);
    if (!n->a.has_kernel)
        return fm_fail_node(n, FLEET_MODEL_EMALFORMED, "kernel_shape is required");
    return fm_shape_window(g, n, x, n->a.kernel, x->rank == 4 ? x->dims[1] : 0);
}

static fleet_model_status fm_shape_gemm(fm_graph *g, fm_node *n)
{
    const fm_value *a = fm_in(g, n, 0), *b = fm_in(g, n, 1), *c = fm_in(g, n, 2);
    if (!b || !b->is_const || b->is_int || b->rank != 2)
        return fm_fail_node(n, FLEET_MODEL_EUNSUPPORTED, "B must be a constant 2-D matrix");
    bool gemm = n->op == FM_OP_GEMM;
    if (gemm && a->rank != 2)
        return fm_fail_node(n, FLEET_MODEL_ESHAPE, "A must be 2-D, got %zu-D", a->rank);
    if (a->rank < 1)
        return fm_fail_node(n, FLEET_MODEL_ESHAPE, "A must have at least one dimension");
    int64_t k = gemm && n->a.trans_b ? b->dims[1] : b->dims[0];
    int64_t cols = gemm && n->a.trans_b ? b->dims[0] : b->dims[1];
    if (a->dims[a->rank - 1] != k)
        return fm_fail_node(n, FLEET_MODEL_ESHAPE, "A has %lld columns but B has %lld rows",
                            (long long)a->dims[a->rank - 1], (long long)k);
    if (c && (!c->is_const || c->is_int || (c->count != (size_t)cols && c->count != 1)))
        return fm_fail_node(n, FLEET_MODEL_EUNSUPPORTED,
                            "C must be a constant of %lld values (or one) broadcast over rows",
                            (long long)cols);
    int64_t dims[FM_MAX_DIMS];
    memcpy(dims, a->dims, sizeof dims);
    dims[a->rank - 1] = cols;
    fm_set_shape(g, n, a->rank, dims);
    return FLEET_MODEL_OK;
}

static fleet_model_status fm_shape_broadcast(fm_graph *g, fm_node *n)
{
    const fm_value *a = fm_in(g, n, 0), *b = fm_in(g, n, 1);
    if (!a || !b)
        return fm_fail_node(n, FLEET_MODEL_EMALFORMED, "needs two inputs");
    size_t rank = a->rank > b->rank ? a->rank : b->rank;
    int64_t dims[FM_MAX_DIMS];
    for (size_t i = 0; i < rank; i++) {
        int64_t da = i < rank - a->rank ? 1 : a->dims[i - (rank - a->rank)];
        int64_t db = i < rank - b->rank ? 1 : b->dims[i - (rank - b->rank)];
        if (da != db && da != 1 && db != 1)
            return fm_fail_node(n, FLEET_MODEL_ESHAPE,
                                "shapes do not broadcast at axis %zu "
                                "(%lld vs %lld)",
                                i, (long long)da, (long long)db);
        dims[i] = da > db ? da : db;
    }
    fm_set_shape(g, n, rank, dims);
    return FLEET_MODEL_OK;
}

static fleet_model_status fm_shape_reshape(fm_graph *g, fm_node *n)
{
    const fm_value *x = fm_in(g, n, 0), *s = fm_in(g, n, 1);
    if (!s || !s->is_const || !s->is_int || s->rank != 1 || s->count < 1 || s->count > FM_MAX_DIMS)
        return fm_fail_node(n, FLEET_MODEL_EUNSUPPORTED,
                            "the shape must be a constant int64 "
                            "vector of 1 to %d values",
                            FM_MAX_DIMS);
    int64_t dims[FM_MAX_DIMS];
    int64_t known = 1;
    int infer = -1;
    for (size_t i = 0; i < s->count; i++) {
        int64_t d = s->ints[i];
        if (d == 0 && !n->a.allowzero && i < x->rank)
            d = x->dims[i];
        else if (i == 0 && d > 0 && d == g->declared_batch)
            d = x->dims[0]; /* dimension 0 is the batch, whatever batch the file was exported at */
        if (d > FM_MAX_DIM) {
            return fm_fail_node(n, FLEET_MODEL_ETOOBIG, "shape value %lld is too large",
                                (long long)d);
        } else if (d == -1) {
            if (infer >= 0)
                return fm_fail_node(n, FLEET_MODEL_EMALFORMED, "more than one -1 in the shape");
            infer = (int)i;
            d = 1;
        } else if (d <= 0) {
            return fm_fail_node(n, FLEET_MODEL_EUNSUPPORTED, "shape value %lld is not supported",
                                (long long)s->ints[i]);
        }
        dims[i] = d;
        known *= d;
        if (known > FM_MAX_ELEMENTS)
            return fm_fail_node(n, FLEET_MODEL_ETOOBIG, "new shape is too large");
    }
    int64_t total = (int64_t)fm_value_numel(x);
    if (infer >= 0) {
        if (known == 0 || total % known)
            return fm_fail_node(n, FLEET_MODEL_ESHAPE, "cannot infer -1 for %lld elements",
                                (long long)total);
        dims[infer] = total / known;
    } else if (known != total) {
        return fm_fail_node(n, FLEET_MODEL_ESHAPE, "new shape holds %lld elements, input %lld",
                            (long long)known, (long long)total);
    }
    if (dims[0] != x->dims[0])
        return fm_fail_node(n, FLEET_MODEL_EUNSUPPORTED,
                            "reshape must keep dimension 0 (the batch)");
    fm_set_shape(g, n, s->count, dims);
    return FLEET_MODEL_OK;
}

static fleet_model_status fm_shape_flatten(fm_graph *g, fm_node *n)
{
    const fm_value *x = fm_in(g, n, 0);
    int64_t axis = n->a.axis < 0 ? n->a.axis + (int64_t)x->rank : n->a.axis;
    if (axis != 1)
        return fm_fail_node(n, FLEET_MODEL_EUNSUPPORTED,
                            "only axis 1 (keeping the batch) is "
                            "supported");
    int64_t dims[2] = {x->dims[0], (int64_t)fm_value_numel(x) / (x->dims[0] ? x->dims[0] : 1)};
    fm_set_shape(g, n, 2, dims);
    return FLEET_MODEL_OK;
}

static fleet_model_status fm_const_ints(const fm_node *n, const fm_value *v, size_t want,
                                        const char *what)
{
    if (!v || !v->is_const || !v->is_int || v->count != want)
        return fm_fail_node(n, FLEET_MODEL_EUNSUPPORTED,
                            "%s must be a constant int64 vector of "
                            "%zu values",
                            what, want);
    return FLEET_MODEL_OK;
}

static fleet_model_status fm_shape_pad(fm_graph *g, fm_node *n)
{
    const fm_value *x = fm_in(g, n, 0);
    int64_t dims[FM_MAX_DIMS];
    const int64_t *pads = n->a.pad_attr;
    if (g->opset >= 11) {
        const fm_value *p = fm_in(g, n, 1);
        fleet_model_status st = fm_const_ints(n, p, 2 * x->rank, "pads");
        if (st != FLEET_MODEL_OK)
            return st;
        pads = p->ints;
    } else if ((size_t)n->a.pad_attr_count != 2 * x->rank) {
        return fm_fail_node(n, FLEET_MODEL_EMALFORMED, "pads must have %zu values", 2 * x->rank);
    }
    for (size_t i = 0; i < x->rank; i++) {
        if (pads[i] < 0 || pads[i + x->rank] < 0)
            return fm_fail_node(n, FLEET_MODEL_EUNSUPPORTED, "negative pads are not supported");
        if (pads[i] > FM_MAX_DIM || pads[i + x->rank] > FM_MAX_DIM)
            return fm_fail_node(n, FLEET_MODEL_ETOOBIG, "pads are too large");
        dims[i] = x->dims[i] + pads[i] + pads[i + x->rank];
    }
    if (pads[0] || pads[x->rank])
        return fm_fail_node(n, FLEET_MODEL_EUNSUPPORTED, "padding the batch is not supported");
    fm_set_shape(g, n, x->rank, dims);
    return FLEET_MODEL_OK;
}

static fleet_model_status fm_shape_resize(fm_graph *g, fm_node *n)
{
    const fm_value *x = fm_in(g, n, 0), *scales = fm_in(g, n, 2), *sizes = fm_in(g, n, 3);
    if (g->opset < 11)
        scales = fm_in(g, n, 1);
    if (x->rank != 4)
        return fm_fail_node(n, FLEET_MODEL_EUNSUPPORTED, "input must be 4-D NCHW");
    int64_t dims[4];
    if (sizes && sizes->count > 0) {
        fleet_model_status st = fm_const_ints(n, sizes, 4, "sizes");
        if (st != FLEET_MODEL_OK)
            return st;
        memcpy(dims, sizes->ints, sizeof dims);
        dims[0] = x->dims[0];
        if (dims[2] > FM_MAX_DIM || dims[3] > FM_MAX_DIM)
            return fm_fail_node(n, FLEET_MODEL_ETOOBIG, "sizes are too large");
    } else if (scales && scales->is_const && !scales->is_int && scales->count == 4) {
        for (int i = 0; i < 4; i++) {
            if (!(scales->data[i] > 0.0f) || scales->data[i] > 4096.0f ||
                (double)x->dims[i] * (double)scales->data[i] > (double)FM_MAX_DIM)
                return fm_fail_node(n, FLEET_MODEL_EMALFORMED, "scale %g is out of range",
                                    (double)scales->data[i]);
            dims[i] = (int64_t)floor((double)x->dims[i] * (double)scales->data[i]);
        }
    } else {
        return fm_fail_node(n, FLEET_MODEL_EUNSUPPORTED,
                            "needs constant scales (4 floats) or sizes (4 int64)");
    }
    if (dims[0] != x->dims[0] || dims[1] != x->dims[1] || dims[2] < 1 || dims[3] < 1)
        return fm_fail_node(n, FLEET_MODEL_EUNSUPPORTED, "only height and width may be resized");
    if (dims[2] * dims[3] > FM_MAX_RESIZE_PIXELS)
        return fm_fail_node(n, FLEET_MODEL_ETOOBIG, "output of %lldx%lld pixels is too large",
                            (long long)dims[2], (long long)dims[3]);
    fm_set_shape(g, n, 4, dims);
    return FLEET_MODEL_OK;
}

static fleet_model_status fm_shape_node(fm_graph *g, fm_node *n)
{
    const fm_value *x = fm_in(g, n, 0);
    if (!x)
        return fm_fail_node(n, FLEET_MODEL_EMALFORMED, "first input is missing");
    if (!x->has_shape)
        return fm_fail_node(n, FLEET_MODEL_EMALFORMED, "input shape is unknown");
    switch (n->op) {
    case FM_OP_CONV:
        return fm_shape_conv(g, n);
    case FM_OP_MAXPOOL:
    case FM_OP_AVGPOOL:
        return fm_shape_pool(g, n);
    case FM_OP_GEMM:
    case FM_OP_MATMUL:
        return fm_shape_gemm(g, n);
    case FM_OP_ADD:
    case FM_OP_MUL:
        return fm_shape_broadcast(g, n);
    case FM_OP_GLOBALAVGPOOL: {
        if (x->rank != 4)
            return fm_fail_node(n, FLEET_MODEL_EUNSUPPORTED, "input must be 4-D NCHW");
        int64_t dims[4] = {x->dims[0], x->dims[1], 1, 1};
        fm_set_shape(g, n, 4, dims);
        return FLEET_MODEL_OK;
    }
    case FM_OP_REDUCEMEAN: {
        /* Only the spatial mean of an image (global average pooling) is supported. */
        int64_t axes[2] = {0, 0};
        for (int i = 0; i < n->a.n_axes && i < 2; i++)
            axes[i] = n->a.axes[i] < 0 ? n->a.axes[i] + (int64_t)x->rank : n->a.axes[i];
        bool spatial = x->rank == 4 && n->a.n_axes == 2 &&
                       ((axes[0] == 2 && axes[1] == 3) || (axes[0] == 3 && axes[1] == 2));
        if (!spatial || n->n_in > 1)
            return fm_fail_node(n, FLEET_MODEL_EUNSUPPORTED,
                                "only the mean over axes (2, 3) of a 4-D tensor is supported");
        int64_t dims[4] = {x->dims[0], x->dims[1], 1, 1};
        fm_set_shape(g, n, n->a.keepdims ? 4 : 2, dims);
        return FLEET_MODEL_OK;
    }
    case FM_OP_FLATTEN:
        return fm_shape_flatten(g, n);
    case FM_OP_RESHAPE:
        return fm_shape_reshape(g, n);
    case FM_OP_PAD:
        return fm_shape_pad(g, n);
    case FM_OP_RESIZE:
        return fm_shape_resize(g, n);
    case FM_OP_BATCHNORM:
        for (size_t i = 1; i < 5; i++) {
            const fm_value *p = fm_in(g, n, i);
            if (x->rank < 2 || !p || !p->is_const || p->is_int || p->count != (size_t)x->dims[1])
                return fm_fail_node(n, FLEET_MODEL_EUNSUPPORTED,
                                    "scale, bias, mean and var must be constants of one value per "
                                    "channel");
        }
        fm_set_shape(g, n, x->rank, x->dims);
        return FLEET_MODEL_OK;
    default:
        fm_set_shape(g, n, x->rank, x->dims);
        return FLEET_MODEL_OK;
    }
}

fleet_model_status fm_infer_shapes(fm_graph *g)
{
    int64_t activations = 0;
    for (size_t i = 0; i < g->n_inputs; i++) {
        fm_value *v = &g->values[g->inputs[i]];
        v->dims[0] = (int64_t)g->batch;
    }
    for (size_t i = 0; i < g->n_nodes; i++) {
        fm_node *n = &g->nodes[i];
        if (n->dead || n->op == FM_OP_CONSTANT)
            continue;
        fleet_model_status st = fm_shape_node(g, n);
        if (st != FLEET_MODEL_OK)
            return st;
        const fm_value *y = &g->values[n->out[0]];
        int64_t elements = 1;
        for (size_t d = 0; d < y->rank; d++) {
            if (y->dims[d] <= 0 || y->dims[d] > FM_MAX_DIM)
                return fm_fail_node(n, FLEET_MODEL_ESHAPE, "output dimension %zu is %lld", d,
                                    (long long)y->dims[d]);
            elements *= y->dims[d];
            if (elements > FM_MAX_ELEMENTS)
                return fm_fail_node(n, FLEET_MODEL_ETOOBIG, "output of %lld+ values is too large",
                                    (long long)elements);
        }
        activations += elements;
        if (activations > FM_MAX_ACTIVATIONS)
            return fm_fail_node(n, FLEET_MODEL_ETOOBIG,
                                "the activations up to here need more than %lld MiB",
                                (long long)(FM_MAX_ACTIVATIONS * 4 >> 20));
    }
    return FLEET_MODEL_OK;
}

uint64_t fm_node_macs(const fm_graph *g, const fm_node *n)
{
    if (n->dead || n->op == FM_OP_CONSTANT)
        return 0;
    const fm_value *out = &g->values[n->out[0]];
    const fm_value *w = fm_in(g, n, 1);
    uint64_t outputs = fm_value_numel(out) / (uint64_t)(out->dims[0] ? out->dims[0] : 1);
    if (n->op == FM_OP_CONV && w)
        return outputs * (uint64_t)(w->dims[1] * w->dims[2] * w->dims[3]);
    if ((n->op == FM_OP_GEMM || n->op == FM_OP_MATMUL) && w)
        return outputs * (uint64_t)(n->op == FM_OP_GEMM && n->a.trans_b ? w->dims[1] : w->dims[0]);
    return 0;
}
