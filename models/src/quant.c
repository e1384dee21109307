/* quant.c: int8 affine quantization of tensors that travel over the wire. */
#include "fleet_models.h"

#include <math.h>

fleet_model_qparams fleet_model_qparams_for(const float *values, size_t count)
{
    float lo = 0.0f, hi = 0.0f; /* the range always holds 0 so that zero stays exact */
    for (size_t i = 0; i < count; i++) {
        if (!isfinite(values[i]))
            continue;
        lo = values[i] < lo ? values[i] : lo;
        hi = values[i] > hi ? values[i] : hi;
    }
    fleet_model_qparams q = {.scale = (hi - lo) / 255.0f, .zero_point = 0};
    if (!(q.scale > 0.0f) || !isfinite(q.scale)) {
        q.scale = 1.0f;
        return q;
    }
    long zp = lroundf(-128.0f - lo / q.scale);
    q.zero_point = (int32_t)(zp < -128 ? -128 : zp > 127 ? 127 : zp);
    return q;
}

void fleet_model_quantize_int8(const float *values, size_t count, fleet_model_qparams qparams,
                               int8_t *out)
{
    float inv = qparams.scale > 0.0f ? 1.0f / qparams.scale : 1.0f;
    for (size_t i = 0; i < count; i++) {
        float x = values[i];
        float q =
            isnan(x) ? (float)qparams.zero_point : nearbyintf(x * inv) + (float)qparams.zero_point;
        out[i] = (int8_t)(q < -128.0f ? -128 : q > 127.0f ? 127 : (int)q);
    }
}

void fleet_model_dequantize_int8(const int8_t *values, size_t count, fleet_model_qparams qparams,
                                 float *out)
{
    for (size_t i = 0; i < count; i++)
        out[i] = qparams.scale * (float)((int32_t)values[i] - qparams.zero_point);
}
