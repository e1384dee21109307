/* test_zoo_ort.c: every committed zoo model, every output, equals ONNX Runtime's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fleet_models.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIXTURES "tests/fixtures/zoo"

static float *slurp(const char *path, size_t *count)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    float *data = malloc((size_t)n + 1);
    size_t got = fread(data, 1, (size_t)n, f);
    fclose(f);
    *count = got / sizeof(float);
    return data;
}

static void check_model(const char *name)
{
    char path[512];
    size_t n_in = 0;
    snprintf(path, sizeof path, FIXTURES "/%s.in.f32",
             strcmp(name, "fusion") == 0 ? "features" : "images");
    float *input = slurp(path, &n_in);
    assert_non_null(input);
    fleet_model_options o;
    fleet_model_options_init(&o);
    o.batch_size = 4;
    fleet_model *m = NULL;
    snprintf(path, sizeof path, "models/zoo/%s.onnx", name);
    if (fleet_model_load_file(path, &o, &m) != FLEET_MODEL_OK)
        fail_msg("%s: %s", name, fleet_model_last_error());
    size_t outputs = fleet_model_output_count(m);
    float *outs[4] = {NULL};
    for (size_t k = 0; k < outputs && k < 4; k++) {
        fleet_model_tensor_info t;
        fleet_model_output_info(m, k, &t);
        outs[k] = malloc(t.count * sizeof(float));
    }
    const float *ins[1] = {input};
    assert_int_equal(fleet_model_run(m, ins, outs), FLEET_MODEL_OK);
    for (size_t k = 0; k < outputs && k < 4; k++) {
        size_t n = 0;
        snprintf(path, sizeof path, FIXTURES "/%s.out%zu.f32", name, k);
        float *want = slurp(path, &n);
        if (!want)
            fail_msg("%s: no reference %s (run scripts/gen-zoo-fixtures)", name, path);
        fleet_model_tensor_info t;
        fleet_model_output_info(m, k, &t);
        assert_int_equal(n, t.count);
        for (size_t i = 0; i < n; i++)
            if (!(fabsf(outs[k][i] - want[i]) <= fmaxf(1e-4f, 1e-3f * fabsf(want[i]))))
                fail_msg("%s output %zu value %zu: %.7g, ONNX Runtime %.7g", name, k, i,
                         (double)outs[k][i], (double)want[i]);
        free(want);
        free(outs[k]);
    }
    fleet_model_destroy(m);
    free(input);
}

static void test_every_zoo_model(void **state)
{
    (void)state;
    DIR *d = opendir("models/zoo");
    assert_non_null(d);
    int models = 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".onnx") != 0)
            continue;
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(len - 5), e->d_name);
        check_model(name);
        models++;
    }
    closedir(d);
    assert_true(models >= 11);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_every_zoo_model)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
