/* test_quant.c: int8 quantization helpers round-trip within half a step and keep zero exact. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fleet_models.h"

#include <math.h>

static void test_round_trip_within_half_step(void **state)
{
    (void)state;
    float x[64], back[64];
    int8_t q[64];
    for (int i = 0; i < 64; i++)
        x[i] = -3.0f + 0.1f * (float)i;
    fleet_model_qparams p = fleet_model_qparams_for(x, 64);
    fleet_model_quantize_int8(x, 64, p, q);
    fleet_model_dequantize_int8(q, 64, p, back);
    for (int i = 0; i < 64; i++)
        assert_true(fabsf(back[i] - x[i]) <= 0.5f * p.scale + 1e-6f);
}

static void test_zero_is_exact_and_extremes_clamp(void **state)
{
    (void)state;
    float x[4] = {0.0f, 1.0f, 2.0f, 4.0f}, back[4];
    int8_t q[4];
    fleet_model_qparams p = fleet_model_qparams_for(x, 4);
    fleet_model_quantize_int8(x, 4, p, q);
    fleet_model_dequantize_int8(q, 4, p, back);
    assert_float_equal(back[0], 0.0f, 0.0f);
    assert_int_equal(q[3], 127);
    float wild[3] = {INFINITY, -INFINITY, NAN};
    fleet_model_quantize_int8(wild, 3, p, q);
    assert_int_equal(q[0], 127);
    assert_int_equal(q[1], -128);
    assert_int_equal(q[2], p.zero_point);
}

static void test_empty_and_constant_inputs(void **state)
{
    (void)state;
    fleet_model_qparams p = fleet_model_qparams_for(NULL, 0);
    assert_float_equal(p.scale, 1.0f, 0.0f);
    float zeros[3] = {0, 0, 0};
    p = fleet_model_qparams_for(zeros, 3);
    assert_true(p.scale > 0.0f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_within_half_step),
        cmocka_unit_test(test_zero_is_exact_and_extremes_clamp),
        cmocka_unit_test(test_empty_and_constant_inputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
