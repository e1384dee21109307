/* op_cases.c: the table of conformance graphs, one row per case, compared against ONNX Runtime. */
#include "op_cases.h"

/* Every graph input has batch 2 in its data (dims[0] below) so batch handling is exercised;
 * the graph declares that dimension as "N". Random inputs and weights are uniform in [-1, 1]
 * unless a range is given. A case's data depends only on its name, so cases may be added or
 * reordered without changing the others' fixtures. */

/* clang-format off: it would spread each one-line macro over four lines. */
#define I64S(...) ((const int64_t[]){__VA_ARGS__})
#define F32S(...) ((const float[]){__VA_ARGS__})
#define NI64(...) (sizeof(I64S(__VA_ARGS__)) / sizeof(int64_t))
#define NF32(...) (sizeof(F32S(__VA_ARGS__)) / sizeof(float))

/* Node inputs. */
#define X(...)                                                                                     \
    {                                                                                              \
        .source = OPM_GRAPH_INPUT, .rank = NI64(__VA_ARGS__), .dims = { __VA_ARGS__ }              \
    }
#define XR(l, h, ...)                                                                              \
    {                                                                                              \
        .source = OPM_GRAPH_INPUT, .lo = l, .hi = h, .rank = NI64(__VA_ARGS__), .dims = {          \
            __VA_ARGS__                                                                            \
        }                                                                                          \
    }
#define W(...)                                                                                     \
    {                                                                                              \
        .source = OPM_WEIGHT, .rank = NI64(__VA_ARGS__), .dims = { __VA_ARGS__ }                   \
    }
#define WR(l, h, ...)                                                                              \
    {                                                                                              \
        .source = OPM_WEIGHT, .lo = l, .hi = h, .rank = NI64(__VA_ARGS__), .dims = { __VA_ARGS__ } \
    }
#define WV(...)                                                                                    \
    {                                                                                              \
        .source = OPM_WEIGHT, .rank = 1, .dims = {NF32(__VA_ARGS__)}, .count = NF32(__VA_ARGS__),  \
        .values = F32S(__VA_ARGS__)                                                                \
    }
#define WSCALAR(v)                                                                                 \
    {                                                                                              \
        .source = OPM_WEIGHT, .rank = 0, .count = 1, .values = F32S(v)                             \
    }
#define I64(...)                                                                                   \
    {                                                                                              \
        .source = OPM_WEIGHT_I64, .count = NI64(__VA_ARGS__), .ints = I64S(__VA_ARGS__)            \
    }
#define K(...)                                                                                     \
    {                                                                                              \
        .source = OPM_CONSTANT, .rank = NI64(__VA_ARGS__), .dims = { __VA_ARGS__ }                 \
    }
#define KSCALAR(v)                                                                                 \
    {                                                                                              \
        .source = OPM_CONSTANT, .rank = 0, .count = 1, .values = F32S(v)                           \
    }
#define PREV                                                                                       \
    {                                                                                              \
        .source = OPM_PREVIOUS                                                                     \
    }
#define NODE_OUT(k)                                                                                \
    {                                                                                              \
        .source = OPM_NODE_REF, .ref = k                                                           \
    }
#define INPUT(k)                                                                                   \
    {                                                                                              \
        .source = OPM_INPUT_REF, .ref = k                                                          \
    }
#define ABSENT                                                                                     \
    {                                                                                              \
        .source = OPM_ABSENT                                                                       \
    }
/* BatchNormalization scale, bias, mean, var: away from identity so folding errors show. */
#define BN_PARAMS(c) WR(0.5f, 1.5f, c), WR(-0.5f, 0.5f, c), WR(-0.5f, 0.5f, c), WR(0.25f, 1.5f, c)

/* Attributes. */
#define A_INT(n, v)                                                                                \
    {                                                                                              \
        .name = n, .kind = OPM_ATTR_INT, .i = v                                                    \
    }
#define A_FLOAT(n, v)                                                                              \
    {                                                                                              \
        .name = n, .kind = OPM_ATTR_FLOAT, .f = v                                                  \
    }
#define A_STR(n, v)                                                                                \
    {                                                                                              \
        .name = n, .kind = OPM_ATTR_STRING, .s = v                                                 \
    }
#define A_INTS(n, ...)                                                                             \
    {                                                                                              \
        .name = n, .kind = OPM_ATTR_INTS, .count = NI64(__VA_ARGS__), .ints = I64S(__VA_ARGS__)    \
    }
#define KERNEL(...) A_INTS("kernel_shape", __VA_ARGS__)
#define STRIDES(...) A_INTS("strides", __VA_ARGS__)
#define PADS(...) A_INTS("pads", __VA_ARGS__) /* begin H, begin W, end H, end W */
#define DILATIONS(...) A_INTS("dilations", __VA_ARGS__)
#define GROUP(g) A_INT("group", g)
#define AUTO_PAD(s) A_STR("auto_pad", s)
#define MODE(s) A_STR("mode", s)
#define CTM(s) A_STR("coordinate_transformation_mode", s)

/* Structure. */
#define IN(...) .in = {__VA_ARGS__}
#define ATTRS(...) .attrs = {__VA_ARGS__}
#define AS_OUTPUT .graph_output = 1
#define NODE(op_, ...)                                                                             \
    {                                                                                              \
        .op = op_, __VA_ARGS__                                                                     \
    }
#define CASE(name_, opset_, flags_, ...)                                                           \
    {                                                                                              \
        .name = name_, .opset = opset_, .flags = flags_,                                           \
        .n_nodes = sizeof((const opm_node[]){__VA_ARGS__}) / sizeof(opm_node),                     \
        .nodes = (const opm_node[])                                                                \
        {                                                                                          \
            __VA_ARGS__                                                                            \
        }                                                                                          \
    }
#define FIXED OPM_FLAG_FIXED_BATCH
#define TYPED OPM_FLAG_TYPED_DATA

/* Resize (opset 13): X, roi, scales, sizes. A sizes input names the batch too, so those cases
 * pin the batch (FIXED). */
#define RESIZE_SCALES(x, ...) IN(x, ABSENT, WV(__VA_ARGS__))
#define RESIZE_SIZES(x, ...) IN(x, ABSENT, ABSENT, I64(__VA_ARGS__))
/* clang-format on */

const opm_case opm_cases[] = {
    /* Conv: kernel sizes and shapes. */
    CASE("conv_k1x1", 13, 0,
         NODE("Conv", IN(X(2, 3, 9, 9), W(4, 3, 1, 1), W(4)), ATTRS(KERNEL(1, 1)))),
    CASE("conv_k1x1_s2", 13, 0,
         NODE("Conv", IN(X(2, 4, 8, 8), W(6, 4, 1, 1), W(6)), ATTRS(KERNEL(1, 1), STRIDES(2, 2)))),
    CASE("conv_k3_pad1", 13, 0,
         NODE("Conv", IN(X(2, 3, 9, 9), W(4, 3, 3, 3), W(4)),
              ATTRS(KERNEL(3, 3), PADS(1, 1, 1, 1)))),
    CASE("conv_k3_s2_pad1", 13, 0,
         NODE("Conv", IN(X(2, 3, 9, 9), W(4, 3, 3, 3), W(4)),
              ATTRS(KERNEL(3, 3), STRIDES(2, 2), PADS(1, 1, 1, 1)))),
    CASE("conv_k3_nopad", 13, 0,
         NODE("Conv", IN(X(2, 3, 9, 9), W(4, 3, 3, 3), W(4)), ATTRS(KERNEL(3, 3)))),
    CASE("conv_k3_nobias", 13, 0,
         NODE("Conv", IN(X(2, 3, 9, 9), W(4, 3, 3, 3)), ATTRS(KERNEL(3, 3), PADS(1, 1, 1, 1)))),
    /* kernel_shape is optional: the runtime must read it from W. */
    CASE("conv_k3_no_kernel_shape", 13, 0,
         NODE("Conv", IN(X(2, 3, 9, 9), W(4, 3, 3, 3), W(4)), ATTRS(PADS(1, 1, 1, 1)))),
    /* H != W catches swapped height and width. */
    CASE("conv_k3_s2_pad1_rect_input", 13, 0,
         NODE("Conv", IN(X(2, 3, 7, 10), W(4, 3, 3, 3), W(4)),
              ATTRS(KERNEL(3, 3), STRIDES(2, 2), PADS(1, 1, 1, 1)))),
    CASE("conv_k5_pad2", 13, 0,
         NODE("Conv", IN(X(2, 3, 9, 9), W(4, 3, 5, 5), W(4)),
              ATTRS(KERNEL(5, 5), PADS(2, 2, 2, 2)))),
    CASE("conv_k5_s2_nobias", 13, 0,
         NODE("Conv", IN(X(2, 3, 11, 11), W(4, 3, 5, 5)), ATTRS(KERNEL(5, 5), STRIDES(2, 2)))),
    CASE("conv_k5_cin1", 13, 0,
         NODE("Conv", IN(X(2, 1, 12, 12), W(4, 1, 5, 5), W(4)), ATTRS(KERNEL(5, 5)))),
    CASE("conv_k3x1_pad1x0", 13, 0,
         NODE("Conv", IN(X(2, 3, 9, 9), W(4, 3, 3, 1), W(4)),
              ATTRS(KERNEL(3, 1), PADS(1, 0, 1, 0)))),
    CASE("conv_k1x3_s1x2_pad0x1", 13, 0,
         NODE("Conv", IN(X(2, 3, 9, 9), W(4, 3, 1, 3), W(4)),
              ATTRS(KERNEL(1, 3), STRIDES(1, 2), PADS(0, 1, 0, 1)))),

    /* Conv: padding. */
    CASE("conv_k3_pad_asym", 13, 0,
         NODE("Conv", IN(X(2, 3, 9, 9), W(4, 3, 3, 3), W(4)),
              ATTRS(KERNEL(3, 3), PADS(1, 0, 2, 1)))),
    CASE("conv_k3_s2_pad_asym", 13, 0,
         NODE("Conv", IN(X(2, 4, 8, 8), W(6, 4, 3, 3), W(6)),
              ATTRS(KERNEL(3, 3), STRIDES(2, 2), PADS(0, 0, 1, 1)))),
    /* 8x8, k3, s2: the total padding is odd, so SAME_UPPER and SAME_LOWER differ. */
    CASE("conv_k3_s2_same_upper", 13, 0,
         NODE("Conv", IN(X(2, 4, 8, 8), W(6, 4, 3, 3), W(6)),
              ATTRS(KERNEL(3, 3), STRIDES(2, 2), AUTO_PAD("SAME_UPPER")))),
    CASE("conv_k3_s2_same_lower", 13, 0,
         NODE("Conv", IN(X(2, 4, 8, 8), W(6, 4, 3, 3), W(6)),
              ATTRS(KERNEL(3, 3), STRIDES(2, 2), AUTO_PAD("SAME_LOWER")))),
    CASE("conv_k3_same_upper", 13, 0,
         NODE("Conv", IN(X(2, 3, 9, 9), W(4, 3, 3, 3), W(4)),
              ATTRS(KERNEL(3, 3), AUTO_PAD("SAME_UPPER")))),
    CASE("conv_k2_same_lower", 13, 0,
         NODE("Conv", IN(X(2, 3, 7, 7), W(4, 3, 2, 2), W(4)),
              ATTRS(KERNEL(2, 2), AUTO_PAD("SAME_LOWER")))),
    CASE("conv_k2_same_upper", 13, 0,
         NODE("Conv", IN(X(2, 3, 7, 7), W(4, 3, 2, 2), W(4)),
              ATTRS(KERNEL(2, 2), AUTO_PAD("SAME_UPPER")))),
    CASE("conv_k3_valid", 13, 0,
         NODE("Conv", IN(X(2, 3, 9, 9), W(4, 3, 3, 3), W(4)),
              ATTRS(KERNEL(3, 3), AUTO_PAD("VALID")))),
    CASE("conv_k3_s2_valid", 13, 0,
         NODE("Conv", IN(X(2, 3, 10, 10), W(4, 3, 3, 3), W(4)),
              ATTRS(KERNEL(3, 3), STRIDES(2, 2), AUTO_PAD("VALID")))),

    /* Conv: dilation. */
    CASE("conv_k3_dil2_pad2", 13, 0,
         NODE("Conv", IN(X(2, 3, 9, 9), W(4, 3, 3, 3), W(4)),
              ATTRS(KERNEL(3, 3), DILATIONS(2, 2), PADS(2, 2, 2, 2)))),
    CASE("conv_k3_dil2x1_pad2x1", 13, 0,
         NODE("Conv", IN(X(2, 3, 9, 9), W(4, 3, 3, 3), W(4)),
              ATTRS(KERNEL(3, 3), DILATIONS(2, 1), PADS(2, 1, 2, 1)))),

    /* Conv: groups. */
    CASE("conv_dw_k3_pad1", 13, 0,
         NODE("Conv", IN(X(2, 4, 8, 8), W(4, 1, 3, 3), W(4)),
              ATTRS(KERNEL(3, 3), PADS(1, 1, 1, 1), GROUP(4)))),
    CASE("conv_dw_k3_s2_pad1", 13, 0,
         NODE("Conv", IN(X(2, 4, 8, 8), W(4, 1, 3, 3), W(4)),
              ATTRS(KERNEL(3, 3), STRIDES(2, 2), PADS(1, 1, 1, 1), GROUP(4)))),
    CASE("conv_dw_k3_s2_same_upper", 13, 0,
         NODE("Conv", IN(X(2, 4, 8, 8), W(4, 1, 3, 3), W(4)),
              ATTRS(KERNEL(3, 3), STRIDES(2, 2), AUTO_PAD("SAME_UPPER"), GROUP(4)))),
    CASE("conv_dw_k5_pad2_nobias", 13, 0,
         NODE("Conv", IN(X(2, 4, 8, 8), W(4, 1, 5, 5)),
              ATTRS(KERNEL(5, 5), PADS(2, 2, 2, 2), GROUP(4)))),
    CASE("conv_dw_mult2_k3_pad1", 13, 0,
         NODE("Conv", IN(X(2, 4, 8, 8), W(8, 1, 3, 3), W(8)),
              ATTRS(KERNEL(3, 3), PADS(1, 1, 1, 1), GROUP(4)))),
    CASE("conv_group2_k3_pad1", 13, 0,
         NODE("Conv", IN(X(2, 4, 8, 8), W(6, 2, 3, 3), W(6)),
              ATTRS(KERNEL(3, 3), PADS(1, 1, 1, 1), GROUP(2)))),
    CASE("conv_group2_k1x1", 13, 0,
         NODE("Conv", IN(X(2, 4, 6, 6), W(8, 2, 1, 1), W(8)), ATTRS(KERNEL(1, 1), GROUP(2)))),
    /* Channel counts off XNNPACK's tile sizes catch weight-packing mistakes. */
    CASE("conv_k3_c17_to_19", 13, 0,
         NODE("Conv", IN(X(2, 17, 7, 7), WR(-0.3f, 0.3f, 19, 17, 3, 3), W(19)),
              ATTRS(KERNEL(3, 3), PADS(1, 1, 1, 1)))),
    CASE("conv_dw_c19_k3_pad1", 13, 0,
         NODE("Conv", IN(X(2, 19, 6, 6), W(19, 1, 3, 3), W(19)),
              ATTRS(KERNEL(3, 3), PADS(1, 1, 1, 1), GROUP(19)))),
    CASE("conv_k3_pad1_typed_data", 13, TYPED,
         NODE("Conv", IN(X(2, 3, 9, 9), W(4, 3, 3, 3), W(4)),
              ATTRS(KERNEL(3, 3), PADS(1, 1, 1, 1)))),

    /* Gemm on [N, K]. */
    CASE("gemm_transb0_bias", 13, 0, NODE("Gemm", IN(X(2, 12), W(12, 5), W(5)))),
    CASE("gemm_transb1_bias", 13, 0,
         NODE("Gemm", IN(X(2, 12), W(5, 12), W(5)), ATTRS(A_INT("transB", 1)))),
    CASE("gemm_alpha_beta", 13, 0,
         NODE("Gemm", IN(X(2, 12), W(5, 12), W(5)),
              ATTRS(A_INT("transB", 1), A_FLOAT("alpha", 0.5f), A_FLOAT("beta", 2.0f)))),
    CASE("gemm_alpha_beta_transb0", 13, 0,
         NODE("Gemm", IN(X(2, 12), W(12, 5), W(5)),
              ATTRS(A_INT("transB", 0), A_FLOAT("alpha", 1.5f), A_FLOAT("beta", 0.25f)))),
    CASE("gemm_nobias", 13, 0, NODE("Gemm", IN(X(2, 12), W(5, 12)), ATTRS(A_INT("transB", 1)))),
    CASE("gemm_nobias_alpha_transb0", 13, 0,
         NODE("Gemm", IN(X(2, 12), W(12, 5)), ATTRS(A_FLOAT("alpha", 2.0f)))),
    CASE("gemm_bias_1xm", 13, 0,
         NODE("Gemm", IN(X(2, 12), W(5, 12), W(1, 5)), ATTRS(A_INT("transB", 1)))),
    CASE("gemm_bias_scalar", 13, 0,
         NODE("Gemm", IN(X(2, 12), W(5, 12), W(1)),
              ATTRS(A_INT("transB", 1), A_FLOAT("beta", 0.5f)))),
    CASE("gemm_k33_m17", 13, 0,
         NODE("Gemm", IN(X(2, 33), WR(-0.3f, 0.3f, 17, 33), W(17)), ATTRS(A_INT("transB", 1)))),

    /* MatMul with a constant weight. */
    CASE("matmul_const", 13, 0, NODE("MatMul", IN(X(2, 12), W(12, 7)))),
    CASE("matmul_const_typed_data", 13, TYPED, NODE("MatMul", IN(X(2, 12), W(12, 7)))),
    CASE("matmul_add_bias", 13, 0, NODE("MatMul", IN(X(2, 12), W(12, 7))),
         NODE("Add", IN(PREV, W(7)))),
    CASE("matmul_3d_const", 13, 0, NODE("MatMul", IN(X(2, 3, 8), W(8, 5)))),

    /* Add and Mul broadcasting. */
    CASE("add_two_inputs", 13, 0, NODE("Add", IN(X(2, 3, 4, 5), X(2, 3, 4, 5)))),
    CASE("mul_two_inputs", 13, 0, NODE("Mul", IN(X(2, 3, 4, 5), X(2, 3, 4, 5)))),
    CASE("add_two_inputs_2d", 13, 0, NODE("Add", IN(X(2, 10), X(2, 10)))),
    CASE("mul_gap_broadcast", 13, 0, NODE("GlobalAveragePool", IN(X(2, 4, 6, 6))),
         NODE("Mul", IN(INPUT(0), PREV))),
    CASE("add_gap_broadcast_first", 13, 0, NODE("GlobalAveragePool", IN(X(2, 4, 6, 6))),
         NODE("Add", IN(PREV, INPUT(0)))),
    CASE("add_const_c11", 13, 0, NODE("Add", IN(X(2, 4, 5, 5), W(4, 1, 1)))),
    CASE("mul_const_c11", 13, 0, NODE("Mul", IN(X(2, 4, 5, 5), W(4, 1, 1)))),
    CASE("add_const_c11_first", 13, 0, NODE("Add", IN(W(4, 1, 1), X(2, 4, 5, 5)))),
    CASE("add_const_chw", 13, 0, NODE("Add", IN(X(2, 3, 4, 5), W(3, 4, 5)))),
    CASE("add_const_scalar", 13, 0, NODE("Add", IN(X(2, 3, 4, 5), WSCALAR(0.75f)))),
    CASE("mul_const_scalar", 13, 0, NODE("Mul", IN(X(2, 3, 4, 5), WSCALAR(-1.5f)))),
    CASE("mul_const_1elem", 13, 0, NODE("Mul", IN(X(2, 3, 4, 5), WV(2.5f)))),
    CASE("add_2d_const_k", 13, 0, NODE("Add", IN(X(2, 10), W(10)))),
    CASE("mul_2d_const_k", 13, 0, NODE("Mul", IN(X(2, 10), W(10)))),

    /* Activations. */
    CASE("relu", 13, 0, NODE("Relu", IN(X(2, 3, 5, 5)))),
    CASE("relu_2d", 13, 0, NODE("Relu", IN(X(2, 10)))),
    CASE("clip_attr_opset6", 6, 0,
         NODE("Clip", IN(X(2, 3, 5, 5)), ATTRS(A_FLOAT("min", -0.5f), A_FLOAT("max", 0.5f)))),
    CASE("clip_attr_opset10", 10, 0,
         NODE("Clip", IN(X(2, 3, 5, 5)), ATTRS(A_FLOAT("min", -0.2f), A_FLOAT("max", 0.7f)))),
    CASE("clip_constant_nodes", 13, 0,
         NODE("Clip", IN(X(2, 3, 5, 5), KSCALAR(-0.25f), KSCALAR(0.6f)))),
    CASE("clip_min_only", 13, 0, NODE("Clip", IN(X(2, 3, 5, 5), KSCALAR(-0.3f)))),
    CASE("clip_max_only", 13, 0, NODE("Clip", IN(X(2, 3, 5, 5), ABSENT, WSCALAR(0.4f)))),
    CASE("clip_relu6_initializers", 13, 0,
         NODE("Clip", IN(XR(-8.0f, 8.0f, 2, 3, 5, 5), WSCALAR(0.0f), WSCALAR(6.0f)))),
    CASE("sigmoid", 13, 0, NODE("Sigmoid", IN(XR(-6.0f, 6.0f, 2, 3, 5, 5)))),
    CASE("hardswish", 14, 0, NODE("HardSwish", IN(XR(-4.0f, 4.0f, 2, 3, 5, 5)))),
    CASE("hardsigmoid", 13, 0,
         NODE("HardSigmoid", IN(XR(-4.0f, 4.0f, 2, 3, 5, 5)),
              ATTRS(A_FLOAT("alpha", 0.25f), A_FLOAT("beta", 0.4f)))),
    CASE("hardsigmoid_default", 13, 0, NODE("HardSigmoid", IN(XR(-4.0f, 4.0f, 2, 3, 5, 5)))),
    CASE("softmax_2d_axis_last", 13, 0,
         NODE("Softmax", IN(XR(-4.0f, 4.0f, 2, 10)), ATTRS(A_INT("axis", -1)))),
    CASE("softmax_2d_axis1", 13, 0,
         NODE("Softmax", IN(XR(-4.0f, 4.0f, 2, 10)), ATTRS(A_INT("axis", 1)))),
    CASE("softmax_2d_default_axis", 13, 0, NODE("Softmax", IN(XR(-4.0f, 4.0f, 2, 10)))),
    /* exp() of these overflows float: only a max-subtracting softmax survives. */
    CASE("softmax_2d_large_logits", 13, 0,
         NODE("Softmax", IN(XR(-60.0f, 100.0f, 2, 10)), ATTRS(A_INT("axis", -1)))),
    CASE("softmax_4d_axis1", 13, 0,
         NODE("Softmax", IN(XR(-4.0f, 4.0f, 2, 5, 3, 4)), ATTRS(A_INT("axis", 1)))),
    /* Before opset 13, axis 1 flattens [N, C, H, W] to [N, C*H*W]: one softmax per sample. */
    CASE("softmax_4d_axis1_opset11", 11, 0,
         NODE("Softmax", IN(XR(-4.0f, 4.0f, 2, 5, 3, 4)), ATTRS(A_INT("axis", 1)))),

    /* Pooling. */
    CASE("maxpool_k2_s2", 13, 0,
         NODE("MaxPool", IN(X(2, 3, 8, 8)), ATTRS(KERNEL(2, 2), STRIDES(2, 2)))),
    CASE("maxpool_k3_s1_pad1", 13, 0,
         NODE("MaxPool", IN(X(2, 3, 8, 8)), ATTRS(KERNEL(3, 3), PADS(1, 1, 1, 1)))),
    /* All-negative input: padding must act as -inf, a zero pad would win every border max. */
    CASE("maxpool_k3_s1_pad1_negative", 13, 0,
         NODE("MaxPool", IN(XR(-2.0f, -1.0f, 2, 3, 6, 6)), ATTRS(KERNEL(3, 3), PADS(1, 1, 1, 1)))),
    CASE("maxpool_k3_s2_pad1", 13, 0,
         NODE("MaxPool", IN(X(2, 3, 9, 9)), ATTRS(KERNEL(3, 3), STRIDES(2, 2), PADS(1, 1, 1, 1)))),
    CASE("maxpool_k3_s2_pad_asym", 13, 0,
         NODE("MaxPool", IN(X(2, 3, 8, 8)), ATTRS(KERNEL(3, 3), STRIDES(2, 2), PADS(0, 0, 1, 1)))),
    CASE("maxpool_k3_s2_same_upper", 13, 0,
         NODE("MaxPool", IN(X(2, 3, 8, 8)),
              ATTRS(KERNEL(3, 3), STRIDES(2, 2), AUTO_PAD("SAME_UPPER")))),
    CASE("maxpool_k2_s1_dil2", 13, 0,
         NODE("MaxPool", IN(X(2, 2, 9, 9)), ATTRS(KERNEL(2, 2), DILATIONS(2, 2)))),
    CASE("maxpool_k2_s2_ceil", 13, 0,
         NODE("MaxPool", IN(X(2, 3, 9, 9)),
              ATTRS(KERNEL(2, 2), STRIDES(2, 2), A_INT("ceil_mode", 1)))),
    CASE("maxpool_k3x2_s1", 13, 0, NODE("MaxPool", IN(X(2, 3, 7, 8)), ATTRS(KERNEL(3, 2)))),
    CASE("avgpool_k2_s2", 13, 0,
         NODE("AveragePool", IN(X(2, 3, 8, 8)), ATTRS(KERNEL(2, 2), STRIDES(2, 2)))),
    CASE("avgpool_k3_pad1_exclude", 13, 0,
         NODE("AveragePool", IN(X(2, 3, 8, 8)),
              ATTRS(KERNEL(3, 3), PADS(1, 1, 1, 1), A_INT("count_include_pad", 0)))),
    CASE("avgpool_k3_pad1_default", 13, 0,
         NODE("AveragePool", IN(X(2, 3, 8, 8)), ATTRS(KERNEL(3, 3), PADS(1, 1, 1, 1)))),
    CASE("avgpool_k3_pad1_include", 13, 0,
         NODE("AveragePool", IN(X(2, 3, 8, 8)),
              ATTRS(KERNEL(3, 3), PADS(1, 1, 1, 1), A_INT("count_include_pad", 1)))),
    CASE("avgpool_k3_s2_pad1_include", 13, 0,
         NODE("AveragePool", IN(X(2, 3, 9, 9)),
              ATTRS(KERNEL(3, 3), STRIDES(2, 2), PADS(1, 1, 1, 1), A_INT("count_include_pad", 1)))),
    CASE("avgpool_k3_s2_pad_asym_exclude", 13, 0,
         NODE("AveragePool", IN(X(2, 3, 8, 8)),
              ATTRS(KERNEL(3, 3), STRIDES(2, 2), PADS(0, 0, 1, 1), A_INT("count_include_pad", 0)))),
    CASE("global_avgpool", 13, 0, NODE("GlobalAveragePool", IN(X(2, 4, 5, 7)))),
    CASE("global_avgpool_1x1", 13, 0, NODE("GlobalAveragePool", IN(X(2, 6, 1, 1)))),

    /* Flatten and Reshape; C, H, W all > 1 and H != W so any NHWC leak reorders elements. */
    CASE(
        "conv_flatten_gemm", 13, 0,
        NODE("Conv", IN(X(2, 3, 6, 5), W(4, 3, 3, 3), W(4)), ATTRS(KERNEL(3, 3), PADS(1, 1, 1, 1))),
        NODE("Flatten", IN(PREV), ATTRS(A_INT("axis", 1))),
        NODE("Gemm", IN(PREV, W(5, 120), W(5)), ATTRS(A_INT("transB", 1)))),
    CASE(
        "conv_flatten_output", 13, 0,
        NODE("Conv", IN(X(2, 3, 6, 5), W(4, 3, 3, 3), W(4)), ATTRS(KERNEL(3, 3), PADS(1, 1, 1, 1))),
        NODE("Flatten", IN(PREV))),
    CASE("flatten_input", 13, 0, NODE("Flatten", IN(X(2, 2, 3, 4)), ATTRS(A_INT("axis", 1)))),
    CASE(
        "conv_reshape_0_m1", 13, 0,
        NODE("Conv", IN(X(2, 3, 6, 5), W(4, 3, 3, 3), W(4)), ATTRS(KERNEL(3, 3), PADS(1, 1, 1, 1))),
        NODE("Reshape", IN(PREV, I64(0, -1)))),
    CASE(
        "conv_reshape_m1_chw", 13, 0,
        NODE("Conv", IN(X(2, 3, 6, 5), W(4, 3, 3, 3), W(4)), ATTRS(KERNEL(3, 3), PADS(1, 1, 1, 1))),
        NODE("Reshape", IN(PREV, I64(-1, 120)))),
    CASE(
        "conv_reshape_gemm", 13, 0,
        NODE("Conv", IN(X(2, 3, 6, 5), W(4, 3, 3, 3), W(4)), ATTRS(KERNEL(3, 3), PADS(1, 1, 1, 1))),
        NODE("Reshape", IN(PREV, I64(0, -1))),
        NODE("Gemm", IN(PREV, W(5, 120), W(5)), ATTRS(A_INT("transB", 1)))),
    CASE("reshape_2d_to_3d", 13, 0, NODE("Reshape", IN(X(2, 12), I64(0, 3, 4)))),
    CASE("reshape_2d_to_3d_typed_data", 13, TYPED, NODE("Reshape", IN(X(2, 12), I64(0, 3, 4)))),

    /* BatchNormalization, folded into a Conv and on its own. */
    CASE(
        "conv_bn", 13, 0,
        NODE("Conv", IN(X(2, 3, 8, 8), W(4, 3, 3, 3), W(4)), ATTRS(KERNEL(3, 3), PADS(1, 1, 1, 1))),
        NODE("BatchNormalization", IN(PREV, BN_PARAMS(4)), ATTRS(A_FLOAT("epsilon", 1e-3f)))),
    CASE("conv_nobias_bn", 13, 0,
         NODE("Conv", IN(X(2, 3, 8, 8), W(4, 3, 3, 3)), ATTRS(KERNEL(3, 3), PADS(1, 1, 1, 1))),
         NODE("BatchNormalization", IN(PREV, BN_PARAMS(4)))),
    CASE(
        "conv_bn_relu", 13, 0,
        NODE("Conv", IN(X(2, 3, 8, 8), W(4, 3, 3, 3), W(4)), ATTRS(KERNEL(3, 3), PADS(1, 1, 1, 1))),
        NODE("BatchNormalization", IN(PREV, BN_PARAMS(4)), ATTRS(A_FLOAT("epsilon", 1e-3f))),
        NODE("Relu", IN(PREV))),
    CASE("add_bn", 13, 0, NODE("Add", IN(X(2, 4, 5, 5), X(2, 4, 5, 5))),
         NODE("BatchNormalization", IN(PREV, BN_PARAMS(4)), ATTRS(A_FLOAT("epsilon", 1e-3f)))),
    CASE("bn_input", 13, 0,
         NODE("BatchNormalization", IN(X(2, 4, 5, 5), BN_PARAMS(4)),
              ATTRS(A_FLOAT("epsilon", 0.01f)))),
    CASE("bn_input_2d", 13, 0, NODE("BatchNormalization", IN(X(2, 6), BN_PARAMS(6)))),

    /* Pad, constant mode. pads: begin N, C, H, W then end N, C, H, W. */
    CASE("pad_const_sym", 13, 0,
         NODE("Pad", IN(X(2, 3, 5, 5), I64(0, 0, 1, 1, 0, 0, 1, 1), WSCALAR(0.5f)))),
    CASE("pad_const_asym", 13, 0,
         NODE("Pad", IN(X(2, 3, 5, 5), I64(0, 0, 1, 2, 0, 0, 2, 0), WSCALAR(-0.25f)))),
    CASE("pad_zero_default_value", 13, 0,
         NODE("Pad", IN(X(2, 3, 5, 5), I64(0, 0, 2, 1, 0, 0, 0, 3)))),
    CASE("pad_mode_constant_explicit", 13, 0,
         NODE("Pad", IN(X(2, 3, 5, 5), I64(0, 0, 1, 0, 0, 0, 0, 1), WSCALAR(1.0f)),
              ATTRS(MODE("constant")))),
    /* Opset 10 still runs Pad-2: pads and value are attributes. */
    CASE("pad_attr_opset10", 10, 0,
         NODE("Pad", IN(X(2, 3, 5, 5)),
              ATTRS(MODE("constant"), A_INTS("pads", 0, 0, 1, 2, 0, 0, 2, 1),
                    A_FLOAT("value", 0.5f)))),
    /* What exporters emit for TF "SAME" padding: an explicit Pad before an unpadded Conv. */
    CASE("pad_then_conv", 13, 0, NODE("Pad", IN(X(2, 3, 8, 8), I64(0, 0, 0, 0, 0, 0, 1, 1))),
         NODE("Conv", IN(PREV, W(4, 3, 3, 3), W(4)), ATTRS(KERNEL(3, 3), STRIDES(2, 2)))),

    /* Resize, linear. */
    CASE("resize_linear_half_pixel_x2", 13, 0,
         NODE("Resize", RESIZE_SCALES(X(2, 2, 6, 6), 1.0f, 1.0f, 2.0f, 2.0f),
              ATTRS(MODE("linear"), CTM("half_pixel")))),
    CASE("resize_linear_half_pixel_x0_5", 13, 0,
         NODE("Resize", RESIZE_SCALES(X(2, 2, 12, 12), 1.0f, 1.0f, 0.5f, 0.5f),
              ATTRS(MODE("linear"), CTM("half_pixel")))),
    CASE("resize_linear_half_pixel_6x8_x1_5", 13, 0,
         NODE("Resize", RESIZE_SCALES(X(2, 2, 6, 8), 1.0f, 1.0f, 1.5f, 1.5f),
              ATTRS(MODE("linear"), CTM("half_pixel")))),
    CASE("resize_linear_half_pixel_28_to_32", 13, FIXED,
         NODE("Resize", RESIZE_SIZES(X(2, 1, 28, 28), 2, 1, 32, 32),
              ATTRS(MODE("linear"), CTM("half_pixel")))),
    CASE("resize_linear_half_pixel_28_to_20", 13, FIXED,
         NODE("Resize", RESIZE_SIZES(X(2, 1, 28, 28), 2, 1, 20, 20),
              ATTRS(MODE("linear"), CTM("half_pixel")))),
    CASE("resize_linear_align_corners_x2", 13, 0,
         NODE("Resize", RESIZE_SCALES(X(2, 2, 6, 6), 1.0f, 1.0f, 2.0f, 2.0f),
              ATTRS(MODE("linear"), CTM("align_corners")))),
    CASE("resize_linear_align_corners_28_to_32", 13, FIXED,
         NODE("Resize", RESIZE_SIZES(X(2, 1, 28, 28), 2, 1, 32, 32),
              ATTRS(MODE("linear"), CTM("align_corners")))),
    CASE("resize_linear_align_corners_28_to_20", 13, FIXED,
         NODE("Resize", RESIZE_SIZES(X(2, 1, 28, 28), 2, 1, 20, 20),
              ATTRS(MODE("linear"), CTM("align_corners")))),
    CASE("resize_linear_asymmetric_x2", 13, 0,
         NODE("Resize", RESIZE_SCALES(X(2, 2, 6, 6), 1.0f, 1.0f, 2.0f, 2.0f),
              ATTRS(MODE("linear"), CTM("asymmetric")))),
    CASE("resize_linear_asymmetric_28_to_32", 13, FIXED,
         NODE("Resize", RESIZE_SIZES(X(2, 1, 28, 28), 2, 1, 32, 32),
              ATTRS(MODE("linear"), CTM("asymmetric")))),
    CASE("resize_linear_asymmetric_28_to_20", 13, FIXED,
         NODE("Resize", RESIZE_SIZES(X(2, 1, 28, 28), 2, 1, 20, 20),
              ATTRS(MODE("linear"), CTM("asymmetric")))),
    CASE("resize_linear_pytorch_half_pixel_x2", 13, 0,
         NODE("Resize", RESIZE_SCALES(X(2, 2, 6, 6), 1.0f, 1.0f, 2.0f, 2.0f),
              ATTRS(MODE("linear"), CTM("pytorch_half_pixel")))),
    CASE("resize_linear_pytorch_half_pixel_28_to_20", 13, FIXED,
         NODE("Resize", RESIZE_SIZES(X(2, 1, 28, 28), 2, 1, 20, 20),
              ATTRS(MODE("linear"), CTM("pytorch_half_pixel")))),
    CASE("resize_linear_pytorch_half_pixel_28_to_32", 13, FIXED,
         NODE("Resize", RESIZE_SIZES(X(2, 1, 28, 28), 2, 1, 32, 32),
              ATTRS(MODE("linear"), CTM("pytorch_half_pixel")))),

    /* Resize, nearest. Half-pixel x0.5 lands exactly on .5: round_prefer_floor must floor. */
    CASE("resize_nearest_asymmetric_floor_x2", 13, 0,
         NODE("Resize", RESIZE_SCALES(X(2, 2, 5, 5), 1.0f, 1.0f, 2.0f, 2.0f),
              ATTRS(MODE("nearest"), CTM("asymmetric"), A_STR("nearest_mode", "floor")))),
    CASE("resize_nearest_asymmetric_floor_x0_5", 13, 0,
         NODE("Resize", RESIZE_SCALES(X(2, 2, 10, 10), 1.0f, 1.0f, 0.5f, 0.5f),
              ATTRS(MODE("nearest"), CTM("asymmetric"), A_STR("nearest_mode", "floor")))),
    CASE("resize_nearest_asymmetric_floor_5_to_10", 13, FIXED,
         NODE("Resize", RESIZE_SIZES(X(2, 2, 5, 5), 2, 2, 10, 10),
              ATTRS(MODE("nearest"), CTM("asymmetric"), A_STR("nearest_mode", "floor")))),
    CASE("resize_nearest_default_x2", 13, 0,
         NODE("Resize", RESIZE_SCALES(X(2, 2, 5, 5), 1.0f, 1.0f, 2.0f, 2.0f),
              ATTRS(MODE("nearest")))),
    CASE("resize_nearest_default_x0_5", 13, 0,
         NODE("Resize", RESIZE_SCALES(X(2, 2, 10, 10), 1.0f, 1.0f, 0.5f, 0.5f),
              ATTRS(MODE("nearest")))),
    CASE("resize_default_mode_x2", 13, 0,
         NODE("Resize", RESIZE_SCALES(X(2, 2, 5, 5), 1.0f, 1.0f, 2.0f, 2.0f))),

    /* Constant, Identity, Dropout. */
    CASE("constant_add", 13, 0, NODE("Add", IN(X(2, 4, 5, 5), K(4, 1, 1)))),
    CASE("constant_value_float_mul", 13, 0, NODE("Constant", ATTRS(A_FLOAT("value_float", 1.5f))),
         NODE("Mul", IN(X(2, 3, 4, 4), PREV))),
    CASE("identity", 13, 0, NODE("Identity", IN(X(2, 3, 4, 4)))),
    CASE("conv_identity_relu", 13, 0,
         NODE("Conv", IN(X(2, 3, 6, 6), W(4, 3, 3, 3), W(4)), ATTRS(KERNEL(3, 3))),
         NODE("Identity", IN(PREV)), NODE("Relu", IN(PREV))),
    CASE("dropout", 13, 0, NODE("Dropout", IN(X(2, 10)))),
    CASE("gemm_dropout_relu", 13, 0,
         NODE("Gemm", IN(X(2, 12), W(5, 12), W(5)), ATTRS(A_INT("transB", 1))),
         NODE("Dropout", IN(PREV)), NODE("Relu", IN(PREV))),
    CASE("dropout_ratio_opset10", 10, 0,
         NODE("Dropout", IN(X(2, 10)), ATTRS(A_FLOAT("ratio", 0.3f)))),

    /* Two graph outputs, one of them also feeding a node. */
    CASE("two_outputs", 13, 0,
         NODE("Conv", IN(X(2, 3, 6, 6), W(4, 3, 3, 3), W(4)), ATTRS(KERNEL(3, 3)), AS_OUTPUT),
         NODE("Relu", IN(PREV), AS_OUTPUT)),

    /* MobileNetV2 inverted residual, then a classifier head. */
    CASE("mobilenetv2_block", 13, 0,
         NODE("Conv", IN(XR(-2.0f, 2.0f, 2, 8, 8, 8), W(16, 8, 1, 1), W(16)), ATTRS(KERNEL(1, 1))),
         NODE("BatchNormalization", IN(PREV, BN_PARAMS(16))), NODE("Relu", IN(PREV)),
         NODE("Conv", IN(PREV, W(16, 1, 3, 3), W(16)),
              ATTRS(KERNEL(3, 3), PADS(1, 1, 1, 1), GROUP(16))),
         NODE("BatchNormalization", IN(PREV, BN_PARAMS(16))),
         NODE("Clip", IN(PREV, WSCALAR(0.0f), WSCALAR(6.0f))),
         NODE("Conv", IN(PREV, W(8, 16, 1, 1), W(8)), ATTRS(KERNEL(1, 1))),
         NODE("BatchNormalization", IN(PREV, BN_PARAMS(8))), NODE("Add", IN(PREV, INPUT(0))),
         NODE("GlobalAveragePool", IN(PREV)), NODE("Flatten", IN(PREV), ATTRS(A_INT("axis", 1))),
         /* Small head weights keep the softmax off saturation, where it would hide errors. */
         NODE("Gemm", IN(PREV, WR(-0.2f, 0.2f, 5, 8), W(5)), ATTRS(A_INT("transB", 1))),
         NODE("Softmax", IN(PREV), ATTRS(A_INT("axis", 1)))),

    /* Squeeze-excite: the channel gate multiplies the block input. */
    CASE("se_block", 13, 0, NODE("GlobalAveragePool", IN(X(2, 8, 5, 5))),
         NODE("Conv", IN(PREV, W(4, 8, 1, 1), W(4)), ATTRS(KERNEL(1, 1))), NODE("Relu", IN(PREV)),
         NODE("Conv", IN(PREV, W(8, 4, 1, 1), W(8)), ATTRS(KERNEL(1, 1))),
         NODE("HardSigmoid", IN(PREV), ATTRS(A_FLOAT("alpha", 1.0f / 6.0f), A_FLOAT("beta", 0.5f))),
         NODE("Mul", IN(INPUT(0), PREV))),
    CASE(
        "conv_se_block", 13, 0,
        NODE("Conv", IN(X(2, 4, 6, 6), W(8, 4, 3, 3), W(8)), ATTRS(KERNEL(3, 3), PADS(1, 1, 1, 1))),
        NODE("GlobalAveragePool", IN(PREV)),
        NODE("Conv", IN(PREV, W(4, 8, 1, 1), W(4)), ATTRS(KERNEL(1, 1))), NODE("Relu", IN(PREV)),
        NODE("Conv", IN(PREV, W(8, 4, 1, 1), W(8)), ATTRS(KERNEL(1, 1))),
        NODE("HardSigmoid", IN(PREV), ATTRS(A_FLOAT("alpha", 1.0f / 6.0f), A_FLOAT("beta", 0.5f))),
        NODE("Mul", IN(NODE_OUT(0), PREV))),
};

const size_t opm_case_count = sizeof(opm_cases) / sizeof(opm_cases[0]);
