/* test_ensemble.c: each aggregation rule against hand-computed decisions, and bad votes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fleet_ensemble.h"

#include <math.h>

/* Three variants over four classes: two prefer class 1 weakly, one prefers class 2 strongly. */
static const fleet_ensemble_score a[] = {{1, 0.5f}, {2, 0.3f}, {0, 0.2f}};
static const fleet_ensemble_score b[] = {{1, 0.4f}, {2, 0.35f}};
static const fleet_ensemble_score c[] = {{2, 0.9f}, {3, 0.1f}};

static void make_votes(fleet_ensemble_vote *v, float wa, float wb, float wc)
{
    v[0] = (fleet_ensemble_vote){a, 3, wa};
    v[1] = (fleet_ensemble_vote){b, 2, wb};
    v[2] = (fleet_ensemble_vote){c, 2, wc};
}

static void test_mean_softmax(void **state)
{
    (void)state;
    fleet_ensemble_vote v[3];
    make_votes(v, 1, 1, 1);
    float combined[4];
    fleet_ensemble_decision d;
    assert_int_equal(fleet_ensemble_decide(FLEET_ENSEMBLE_MEAN_SOFTMAX, v, 3, 4, combined, &d), 0);
    assert_int_equal(d.cls, 2); /* (0.3 + 0.35 + 0.9) / 3 beats (0.5 + 0.4) / 3 */
    assert_float_equal(d.confidence, 1.55f / 3.0f, 1e-6f);
    assert_float_equal(combined[1], 0.9f / 3.0f, 1e-6f);
    assert_int_equal(d.used, 3);
}

static void test_majority_and_ties(void **state)
{
    (void)state;
    fleet_ensemble_vote v[3];
    make_votes(v, 1, 1, 1);
    fleet_ensemble_decision d;
    fleet_ensemble_decide(FLEET_ENSEMBLE_MAJORITY, v, 3, 4, NULL, &d);
    assert_int_equal(d.cls, 1); /* two votes for 1 against one for 2 */
    /* One vote each for 1 and 2: the larger summed probability (class 2) wins the tie. */
    fleet_ensemble_decide(FLEET_ENSEMBLE_MAJORITY, v + 1, 2, 4, NULL, &d);
    assert_int_equal(d.cls, 2);
}

static void test_vp_topk_renormalises_and_weights(void **state)
{
    (void)state;
    fleet_ensemble_vote v[3];
    make_votes(v, 1.0f, 1.0f, 0.25f);
    float combined[4];
    fleet_ensemble_decision d;
    fleet_ensemble_decide(FLEET_ENSEMBLE_VP_TOPK, v, 3, 4, combined, &d);
    /* Renormalised: a {1:.5,2:.3,0:.2}, b {1:.5333,2:.4667}, c {2:.9,3:.1} weighted by 0.25. */
    float s0 = 0.2f, s1 = 0.5f + 0.4f / 0.75f, s2 = 0.3f + 0.35f / 0.75f + 0.25f * 0.9f,
          s3 = 0.025f;
    float z = expf(s0) + expf(s1) + expf(s2) + expf(s3);
    assert_int_equal(d.cls, 1);
    assert_float_equal(combined[1], expf(s1) / z, 1e-5f);
    assert_float_equal(combined[3], expf(s3) / z, 1e-5f);
}

static void test_accuracy_weighting(void **state)
{
    (void)state;
    fleet_ensemble_vote v[3];
    make_votes(v, 0.9f, 0.9f, 0.5f); /* c is far less accurate: 0.5^8 is tiny */
    fleet_ensemble_decision d;
    fleet_ensemble_decide(FLEET_ENSEMBLE_ACC_WEIGHTED, v, 3, 4, NULL, &d);
    assert_int_equal(d.cls, 1);
}

static void test_missing_and_invalid_votes(void **state)
{
    (void)state;
    const fleet_ensemble_score bad_class[] = {{7, 0.5f}};
    const fleet_ensemble_score bad_prob[] = {{1, NAN}};
    fleet_ensemble_vote v[4] = {{NULL, 0, 1}, {bad_class, 1, 1}, {bad_prob, 1, 1}, {c, 2, 1}};
    fleet_ensemble_decision d;
    assert_int_equal(fleet_ensemble_decide(FLEET_ENSEMBLE_MEAN_SOFTMAX, v, 4, 4, NULL, &d), 0);
    assert_int_equal(d.used, 1);
    assert_int_equal(d.cls, 2);
    assert_int_equal(fleet_ensemble_decide(FLEET_ENSEMBLE_MEAN_SOFTMAX, v, 3, 4, NULL, &d), 0);
    assert_int_equal(d.cls, -1);
    assert_int_equal(d.used, 0);
    assert_int_equal(fleet_ensemble_decide(FLEET_ENSEMBLE_MEAN_SOFTMAX, v, 4, 0, NULL, &d), -1);
}

static void test_topk_softmax_and_names(void **state)
{
    (void)state;
    float x[5] = {1.0f, 3.0f, 3.0f, -1.0f, 2.0f};
    fleet_ensemble_score top[3];
    assert_int_equal(fleet_ensemble_topk(x, 5, 3, top), 3);
    assert_int_equal(top[0].cls, 1); /* the tie keeps the smaller class first */
    assert_int_equal(top[1].cls, 2);
    assert_int_equal(top[2].cls, 4);
    fleet_ensemble_softmax(x, 5, 2.0f);
    float sum = 0;
    for (int i = 0; i < 5; i++)
        sum += x[i];
    assert_float_equal(sum, 1.0f, 1e-6f);
    assert_float_equal(x[1] / x[0], expf(1.0f), 1e-5f);
    fleet_ensemble_rule r;
    assert_int_equal(fleet_ensemble_rule_parse("vp-topk", &r), 0);
    assert_int_equal(r, FLEET_ENSEMBLE_VP_TOPK);
    assert_string_equal(fleet_ensemble_rule_name(r), "vp-topk");
    assert_int_equal(fleet_ensemble_rule_parse("median", &r), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mean_softmax),
        cmocka_unit_test(test_majority_and_ties),
        cmocka_unit_test(test_vp_topk_renormalises_and_weights),
        cmocka_unit_test(test_accuracy_weighting),
        cmocka_unit_test(test_missing_and_invalid_votes),
        cmocka_unit_test(test_topk_softmax_and_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
