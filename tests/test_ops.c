/* test_ops.c: runs every op_models case through libfleet_models and compares with ONNX Runtime. */
#include <inttypes.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fleet_models.h"
#include "op_models.h"

/* usage: test_ops [PATTERN]   (a cmocka name filter, e.g. "resize_*")
 * Fixtures live in tests/fixtures/ops under the repository root, which is the working
 * directory under ctest, or under $FLEET_SOURCE_DIR when set. scripts/gen-op-fixtures writes
 * them: manifest.tsv plus <case>.out<k>.f32, ONNX Runtime's outputs at batch 2. */

#define ABS_TOL 1e-4
#define REL_TOL 1e-3
#define MAX_REPORTED 8
#define MAX_OUTPUTS 4
#define STALE "fixtures stale: run scripts/gen-op-fixtures"

typedef struct manifest_row {
    char name[128];
    size_t inputs;
    size_t outputs;
    uint64_t fnv;
} manifest_row;

typedef struct op_suite {
    char fixture_dir[4096];
    manifest_row *rows;
    size_t n_rows;
    int manifest_missing;
} op_suite;

typedef struct op_test {
    const op_suite *suite;
    size_t index;
} op_test;

/* Failure text gathered while the case runs, so the case can free everything before cmocka's
 * fail_msg() jumps out. */
typedef struct report {
    char text[8192];
    size_t len;
    int failed;
} report;

static void report_add(report *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void report_add(report *r, const char *fmt, ...)
{
    r->failed = 1;
    if (r->len + 1 >= sizeof(r->text)) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(r->text + r->len, sizeof(r->text) - r->len, fmt, ap);
    va_end(ap);
    if (n > 0) {
        r->len += (size_t)n;
        if (r->len >= sizeof(r->text)) {
            r->len = sizeof(r->text) - 1;
        }
    }
}

static int load_manifest(op_suite *suite)
{
    int rc = -1;
    char path[4200];
    char line[512];
    size_t cap = 0;
    snprintf(path, sizeof(path), "%s/manifest.tsv", suite->fixture_dir);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        suite->manifest_missing = 1;
        return 0;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        if (line[0] == '#' || line[0] == '\n') {
            continue;
        }
        if (suite->n_rows == cap) {
            cap = cap ? 2 * cap : 64;
            manifest_row *grown = realloc(suite->rows, cap * sizeof(*grown));
            if (grown == NULL) {
                goto cleanup;
            }
            suite->rows = grown;
        }
        manifest_row *row = &suite->rows[suite->n_rows];
        if (sscanf(line, "%127s %zu %zu %" SCNx64, row->name, &row->inputs, &row->outputs,
                   &row->fnv) != 4) {
            fprintf(stderr, "test_ops: %s: bad line: %s", path, line);
            goto cleanup;
        }
        suite->n_rows++;
    }
    rc = 0;
cleanup:
    fclose(f);
    return rc;
}

static const manifest_row *find_row(const op_suite *suite, const char *name)
{
    for (size_t i = 0; i < suite->n_rows; i++) {
        if (strcmp(suite->rows[i].name, name) == 0) {
            return &suite->rows[i];
        }
    }
    return NULL;
}

/* Reads exactly count little-endian floats; anything else means the fixture is stale. */
static float *read_f32(const char *path, size_t count, report *r)
{
    float *values = NULL;
    uint8_t *bytes = malloc(count * 4 + 1);
    FILE *f = fopen(path, "rb");
    if (f == NULL || bytes == NULL) {
        report_add(r, "%s: cannot open (%s)\n", path, STALE);
        goto cleanup;
    }
    size_t got = fread(bytes, 1, count * 4 + 1, f);
    if (got != count * 4) {
        report_add(r, "%s: %zu bytes, runtime output has %zu floats (%s)\n", path, got, count,
                   STALE);
        goto cleanup;
    }
    values = malloc(count * sizeof(float) + 1);
    if (values == NULL) {
        goto cleanup;
    }
    for (size_t i = 0; i < count; i++) {
        uint32_t bits = (uint32_t)bytes[4 * i] | (uint32_t)bytes[4 * i + 1] << 8 |
                        (uint32_t)bytes[4 * i + 2] << 16 | (uint32_t)bytes[4 * i + 3] << 24;
        memcpy(&values[i], &bits, sizeof(bits));
    }
cleanup:
    if (f != NULL) {
        fclose(f);
    }
    free(bytes);
    return values;
}

static void format_index(const fleet_model_tensor_info *info, size_t flat, char *out, size_t size)
{
    size_t coords[FLEET_MODEL_MAX_DIMS] = {0};
    size_t rest = flat;
    for (size_t d = info->rank; d-- > 0;) {
        size_t dim = info->dims[d] ? info->dims[d] : 1;
        coords[d] = rest % dim;
        rest /= dim;
    }
    size_t len = (size_t)snprintf(out, size, "[");
    for (size_t d = 0; d < info->rank && len < size; d++) {
        len += (size_t)snprintf(out + len, size - len, "%s%zu", d ? "," : "", coords[d]);
    }
    if (len < size) {
        snprintf(out + len, size - len, "]");
    }
}

/* |a - e| <= 1e-4 or |a - e| <= 1e-3 |e|; NaN never passes. */
static int close_enough(float expected, float actual)
{
    double diff = fabs((double)actual - (double)expected);
    return diff <= ABS_TOL || diff <= REL_TOL * fabs((double)expected);
}

static void compare(report *r, const char *name, const char *phase, size_t k,
                    const fleet_model_tensor_info *info, const float *expected, const float *actual)
{
    size_t bad = 0;
    double worst = 0.0;
    for (size_t i = 0; i < info->count; i++) {
        if (close_enough(expected[i], actual[i])) {
            continue;
        }
        double diff = fabs((double)actual[i] - (double)expected[i]);
        worst = (diff > worst || isnan(diff)) ? diff : worst;
        if (bad++ < MAX_REPORTED) {
            char where[96];
            format_index(info, i, where, sizeof(where));
            report_add(r, "%s %s output %zu index %zu %s: expected %.7g, got %.7g\n", name, phase,
                       k, i, where, (double)expected[i], (double)actual[i]);
        }
    }
    if (bad > 0) {
        report_add(r, "%s %s output %zu: %zu of %zu values off, worst |diff| %.3g\n", name, phase,
                   k, bad, info->count, worst);
    }
}

/* Counts and shapes the runtime reports must agree with the model and the fixture. */
static int check_io(fleet_model *model, const op_model *m, size_t batch, size_t n_outputs,
                    fleet_model_tensor_info *outputs, report *r)
{
    if (fleet_model_input_count(model) != m->n_inputs ||
        fleet_model_output_count(model) != n_outputs) {
        report_add(r, "%s: runtime sees %zu inputs / %zu outputs, the model has %zu / %zu\n",
                   m->name, fleet_model_input_count(model), fleet_model_output_count(model),
                   m->n_inputs, n_outputs);
        return -1;
    }
    for (size_t k = 0; k < m->n_inputs; k++) {
        fleet_model_tensor_info info;
        size_t want = m->inputs[k].count / m->batch * batch;
        if (fleet_model_input_info(model, k, &info) != FLEET_MODEL_OK || info.count != want) {
            report_add(r, "%s batch %zu: input %zu has %zu elements, expected %zu\n", m->name,
                       batch, k, info.count, want);
            return -1;
        }
    }
    for (size_t k = 0; k < n_outputs; k++) {
        if (fleet_model_output_info(model, k, &outputs[k]) != FLEET_MODEL_OK) {
            report_add(r, "%s: output_info(%zu): %s\n", m->name, k, fleet_model_last_error());
            return -1;
        }
    }
    return 0;
}

/* Runs at the model's current batch size; *inputs are batch-2 data, of which the first batch
 * samples are used. expected[k] holds ONNX Runtime's batch-2 output, of which the first rows
 * are compared. */
static int run_and_compare(fleet_model *model, const op_model *m, size_t batch,
                           float *const *expected, size_t n_outputs, report *r)
{
    int rc = -1;
    fleet_model_tensor_info info[MAX_OUTPUTS];
    float *actual[MAX_OUTPUTS] = {0};
    const float *inputs[OP_MODEL_MAX_INPUTS] = {0};
    char phase[32];
    snprintf(phase, sizeof(phase), "batch %zu", batch);
    if (check_io(model, m, batch, n_outputs, info, r) != 0) {
        goto cleanup;
    }
    for (size_t k = 0; k < n_outputs; k++) {
        actual[k] = malloc(info[k].count * sizeof(float) + 1);
        if (actual[k] == NULL) {
            goto cleanup;
        }
        /* NaN marks any element the runtime forgets to write. */
        for (size_t i = 0; i < info[k].count; i++) {
            actual[k][i] = NAN;
        }
    }
    for (size_t k = 0; k < m->n_inputs; k++) {
        inputs[k] = m->inputs[k].data;
    }
    fleet_model_status st = fleet_model_run(model, inputs, actual);
    if (st != FLEET_MODEL_OK) {
        report_add(r, "%s %s: run failed: %s: %s\n", m->name, phase, fleet_model_strerror(st),
                   fleet_model_last_error());
        goto cleanup;
    }
    for (size_t k = 0; k < n_outputs; k++) {
        compare(r, m->name, phase, k, &info[k], expected[k], actual[k]);
    }
    rc = r->failed ? -1 : 0;
cleanup:
    for (size_t k = 0; k < n_outputs; k++) {
        free(actual[k]);
    }
    return rc;
}

static int load_expected(const op_test *t, const op_model *m, fleet_model *model, size_t n_outputs,
                         float **expected, report *r)
{
    for (size_t k = 0; k < n_outputs; k++) {
        fleet_model_tensor_info info;
        char path[4400];
        if (fleet_model_output_info(model, k, &info) != FLEET_MODEL_OK) {
            report_add(r, "%s: output_info(%zu): %s\n", m->name, k, fleet_model_last_error());
            return -1;
        }
        snprintf(path, sizeof(path), "%s/%s.out%zu.f32", t->suite->fixture_dir, m->name, k);
        expected[k] = read_f32(path, info.count, r);
        if (expected[k] == NULL) {
            return -1;
        }
    }
    return 0;
}

static void check_case(const op_test *t, report *r)
{
    op_model m;
    fleet_model *model = NULL;
    float *expected[MAX_OUTPUTS] = {0};
    size_t n_outputs = 0;
    if (op_models_build(t->index, &m) != 0) {
        report_add(r, "case %zu does not build\n", t->index);
        goto cleanup;
    }
    if (t->suite->manifest_missing) {
        report_add(r,
                   "%s/manifest.tsv not found: run from the repository root or set "
                   "FLEET_SOURCE_DIR\n",
                   t->suite->fixture_dir);
        goto cleanup;
    }
    const manifest_row *row = find_row(t->suite, m.name);
    if (row == NULL || row->fnv != op_models_fnv1a64(m.bytes, m.size) ||
        row->inputs != m.n_inputs || row->outputs != m.n_outputs) {
        report_add(r, "%s: model differs from manifest.tsv: %s\n", m.name, STALE);
        goto cleanup;
    }
    n_outputs = m.n_outputs;
    if (n_outputs > MAX_OUTPUTS) {
        report_add(r, "%s: more than %d outputs\n", m.name, MAX_OUTPUTS);
        goto cleanup;
    }

    fleet_model_options options;
    fleet_model_options_init(&options);
    options.batch_size = m.batch;
    fleet_model_status st = fleet_model_load_buffer(m.bytes, m.size, &options, &model);
    if (st != FLEET_MODEL_OK) {
        report_add(r, "%s: load failed: %s: %s\n", m.name, fleet_model_strerror(st),
                   fleet_model_last_error());
        goto cleanup;
    }
    if (load_expected(t, &m, model, n_outputs, expected, r) != 0 ||
        run_and_compare(model, &m, m.batch, expected, n_outputs, r) != 0 || m.batch_fixed) {
        goto cleanup;
    }

    /* Batch 1 on the first sample must give the first row of the batch-2 result. */
    st = fleet_model_set_batch_size(model, 1);
    if (st != FLEET_MODEL_OK) {
        report_add(r, "%s: set_batch_size(1) failed: %s: %s\n", m.name, fleet_model_strerror(st),
                   fleet_model_last_error());
        goto cleanup;
    }
    run_and_compare(model, &m, 1, expected, n_outputs, r);
cleanup:
    for (size_t k = 0; k < n_outputs; k++) {
        free(expected[k]);
    }
    fleet_model_destroy(model);
    op_models_free(&m);
}

static void test_op_case(void **state)
{
    const op_test *t = *state;
    report *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    check_case(t, r);
    if (r->failed) {
        print_error("%s", r->text);
        free(r);
        fail_msg("case %s failed", op_models_name(t->index));
    }
    free(r);
}

/* Every manifest row must still name a case: otherwise the fixtures predate a rename. */
static void test_manifest_matches_cases(void **state)
{
    const op_suite *suite = *state;
    if (suite->manifest_missing) {
        fail_msg("%s/manifest.tsv not found: run from the repository root, set "
                 "FLEET_SOURCE_DIR, or run scripts/gen-op-fixtures",
                 suite->fixture_dir);
    }
    size_t unknown = 0;
    for (size_t i = 0; i < suite->n_rows; i++) {
        size_t j = 0;
        while (j < op_models_count() && strcmp(op_models_name(j), suite->rows[i].name) != 0) {
            j++;
        }
        if (j == op_models_count()) {
            print_error("manifest names unknown case %s\n", suite->rows[i].name);
            unknown++;
        }
    }
    if (unknown > 0 || suite->n_rows != op_models_count()) {
        fail_msg("manifest has %zu rows for %zu cases: %s", suite->n_rows, op_models_count(),
                 STALE);
    }
}

int main(int argc, char **argv)
{
    int rc = 1;
    op_suite suite = {0};
    size_t n = op_models_count();
    struct CMUnitTest *tests = calloc(n + 1, sizeof(*tests));
    op_test *cases = calloc(n + 1, sizeof(*cases));
    const char *root = getenv("FLEET_SOURCE_DIR");
    if (tests == NULL || cases == NULL) {
        goto cleanup;
    }
    snprintf(suite.fixture_dir, sizeof(suite.fixture_dir), "%s/tests/fixtures/ops",
             root != NULL && root[0] != '\0' ? root : ".");
    if (load_manifest(&suite) != 0) {
        goto cleanup;
    }
    tests[0] = (struct CMUnitTest){"manifest_matches_cases", test_manifest_matches_cases, NULL,
                                   NULL, &suite};
    for (size_t i = 0; i < n; i++) {
        cases[i] = (op_test){&suite, i};
        tests[i + 1] = (struct CMUnitTest){op_models_name(i), test_op_case, NULL, NULL, &cases[i]};
    }
    if (argc > 1) {
        cmocka_set_test_filter(argv[1]);
    }
    rc = _cmocka_run_group_tests("ops", tests, n + 1, NULL, NULL);
cleanup:
    free(suite.rows);
    free(cases);
    free(tests);
    return rc;
}
