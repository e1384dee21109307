/* test_model_load.c: the runtime on a real torch export: accuracy, cuts, batches, bad input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fleet_models.h"

#include <onnx/onnx.pb-c.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIXTURE "tests/fixtures/models/tiny_cnn"

typedef struct fixture {
    unsigned char *model;
    size_t model_size;
    float *input;  /* 2 samples */
    float *expect; /* PyTorch's logits for them */
    size_t input_count, expect_count;
} fixture;

static unsigned char *read_all(const char *suffix, size_t *size)
{
    char path[512];
    const char *root = getenv("FLEET_SOURCE_DIR");
    snprintf(path, sizeof path, "%s%s%s%s", root ? root : "", root ? "/" : "", FIXTURE, suffix);
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s (run the tests from the repository root)", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *data = malloc((size_t)n + 1);
    assert_non_null(data);
    assert_int_equal(fread(data, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *size = (size_t)n;
    return data;
}

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    size_t n;
    fx->model = read_all(".onnx", &fx->model_size);
    fx->input = (float *)read_all(".in.f32", &n);
    fx->input_count = n / sizeof(float);
    fx->expect = (float *)read_all(".out.f32", &n);
    fx->expect_count = n / sizeof(float);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    free(fx->model);
    free(fx->input);
    free(fx->expect);
    free(fx);
    return 0;
}

static fleet_model *load(const void *data, size_t size, size_t batch, fleet_model_part part,
                         const char *cut, size_t threads)
{
    fleet_model_options o;
    fleet_model_options_init(&o);
    o.batch_size = batch;
    o.part = part;
    o.cut_tensor = cut;
    o.threads = threads;
    fleet_model *m = NULL;
    fleet_model_status st = fleet_model_load_buffer(data, size, &o, &m);
    if (st != FLEET_MODEL_OK)
        fail_msg("load failed: %s", fleet_model_last_error());
    return m;
}

static void assert_close(const float *got, const float *want, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float tol = fmaxf(1e-4f, 1e-3f * fabsf(want[i]));
        if (!(fabsf(got[i] - want[i]) <= tol))
            fail_msg("value %zu: got %.7g, want %.7g", i, (double)got[i], (double)want[i]);
    }
}

static void run1(fleet_model *m, const float *in, float *out)
{
    const float *ins[1] = {in};
    float *outs[1] = {out};
    fleet_model_status st = fleet_model_run(m, ins, outs);
    if (st != FLEET_MODEL_OK)
        fail_msg("run failed: %s", fleet_model_last_error());
}

static void test_matches_pytorch(void **state)
{
    fixture *fx = *state;
    for (size_t threads = 0; threads <= 2; threads += 2) {
        fleet_model *m = load(fx->model, fx->model_size, 2, FLEET_MODEL_PART_FULL, NULL, threads);
        float out[20];
        run1(m, fx->input, out);
        assert_close(out, fx->expect, fx->expect_count);
        fleet_model_destroy(m);
    }
}

static void test_batch_change_keeps_results(void **state)
{
    fixture *fx = *state;
    fleet_model *m = load(fx->model, fx->model_size, 1, FLEET_MODEL_PART_FULL, NULL, 0);
    float out[10], big_in[5 * 784], big_out[50];
    run1(m, fx->input + 784, out);
    assert_close(out, fx->expect + 10, 10);
    assert_int_equal(fleet_model_set_batch_size(m, 5), FLEET_MODEL_OK);
    assert_int_equal(fleet_model_batch_size(m), 5);
    fleet_model_tensor_info info;
    fleet_model_output_info(m, 0, &info);
    assert_int_equal(info.dims[0], 5);
    assert_int_equal(info.count, 50);
    for (int b = 0; b < 5; b++)
        memcpy(big_in + b * 784, fx->input + (b % 2) * 784, 784 * sizeof(float));
    run1(m, big_in, big_out);
    for (int b = 0; b < 5; b++)
        assert_close(big_out + b * 10, fx->expect + (b % 2) * 10, 10);
    assert_int_equal(fleet_model_set_batch_size(m, 0), FLEET_MODEL_EINVAL);
    fleet_model_destroy(m);
}

/* Every cut candidate: head then tail reproduces the whole model. */
static void test_every_cut_composes(void **state)
{
    fixture *fx = *state;
    fleet_model *full = load(fx->model, fx->model_size, 2, FLEET_MODEL_PART_FULL, NULL, 0);
    size_t cuts = fleet_model_cut_count(full);
    assert_true(cuts >= 4);
    int bottlenecks = 0;
    for (size_t i = 0; i < cuts; i++) {
        fleet_model_cut c;
        assert_int_equal(fleet_model_cut_at(full, i, &c), FLEET_MODEL_OK);
        bottlenecks += c.natural_bottleneck;
        fleet_model *head = load(fx->model, fx->model_size, 2, FLEET_MODEL_PART_HEAD, c.tensor, 0);
        fleet_model *tail = load(fx->model, fx->model_size, 2, FLEET_MODEL_PART_TAIL, c.tensor, 0);
        fleet_model_tensor_info hi, ti;
        fleet_model_output_info(head, 0, &hi);
        fleet_model_input_info(tail, 0, &ti);
        assert_int_equal(hi.count, ti.count);
        assert_int_equal(hi.count, 2 * c.bytes_f32 / sizeof(float));
        float *mid = malloc(hi.count * sizeof(float)), out[20];
        run1(head, fx->input, mid);
        run1(tail, mid, out);
        assert_close(out, fx->expect, 20);
        free(mid);
        fleet_model_destroy(head);
        fleet_model_destroy(tail);
    }
    assert_true(bottlenecks >= 1);
    fleet_model_cut none;
    assert_int_equal(fleet_model_cut_at(full, cuts, &none), FLEET_MODEL_ENOTFOUND);
    fleet_model_destroy(full);
}

static void test_bad_cut_names(void **state)
{
    fixture *fx = *state;
    fleet_model_options o;
    fleet_model_options_init(&o);
    fleet_model *m = NULL;
    o.part = FLEET_MODEL_PART_HEAD;
    o.cut_tensor = "no-such-tensor";
    assert_int_equal(fleet_model_load_buffer(fx->model, fx->model_size, &o, &m),
                     FLEET_MODEL_ENOTFOUND);
    assert_non_null(strstr(fleet_model_last_error(), "no-such-tensor"));
    o.part = FLEET_MODEL_PART_TAIL;
    o.cut_tensor = "/dw/Conv_output_0"; /* the residual add still needs the pooled input */
    assert_int_equal(fleet_model_load_buffer(fx->model, fx->model_size, &o, &m),
                     FLEET_MODEL_EINVAL);
    assert_non_null(strstr(fleet_model_last_error(), "not a cut"));
    o.cut_tensor = "input";
    assert_int_equal(fleet_model_load_buffer(fx->model, fx->model_size, &o, &m),
                     FLEET_MODEL_EINVAL);
    assert_null(m);
}

/* Decodes the fixture, lets edit change it, and returns the re-encoded bytes. */
static unsigned char *mutate(const fixture *fx, void (*edit)(Onnx__ModelProto *), size_t *size)
{
    Onnx__ModelProto *p = onnx__model_proto__unpack(NULL, fx->model_size, fx->model);
    assert_non_null(p);
    edit(p);
    *size = onnx__model_proto__get_packed_size(p);
    unsigned char *out = malloc(*size + 1);
    onnx__model_proto__pack(p, out);
    onnx__model_proto__free_unpacked(p, NULL);
    return out;
}

static void expect_failure(const fixture *fx, void (*edit)(Onnx__ModelProto *),
                           fleet_model_status want, const char *words)
{
    size_t size;
    unsigned char *bytes = mutate(fx, edit, &size);
    fleet_model *m = NULL;
    fleet_model_status st = fleet_model_load_buffer(bytes, size, NULL, &m);
    if (st != want || !strstr(fleet_model_last_error(), words))
        fail_msg("got status %d '%s', want %d mentioning '%s'", st, fleet_model_last_error(), want,
                 words);
    assert_null(m);
    free(bytes);
}

static Onnx__NodeProto *find_node(Onnx__ModelProto *p, const char *op)
{
    for (size_t i = 0; i < p->graph->n_node; i++)
        if (strcmp(p->graph->node[i]->op_type, op) == 0)
            return p->graph->node[i];
    fail_msg("no %s node", op);
    return NULL;
}

/* protobuf-c frees every string of a decoded message, so replacements are heap copies. */
static char *heap(const char *text)
{
    char *copy = malloc(strlen(text) + 1);
    assert_non_null(copy);
    strcpy(copy, text);
    return copy;
}

static void replace(char **field, const char *text)
{
    free(*field);
    *field = heap(text);
}

static void edit_unknown_op(Onnx__ModelProto *p)
{
    replace(&find_node(p, "Gemm")->op_type, "LSTM");
}

static void edit_unknown_attribute(Onnx__ModelProto *p)
{
    replace(&find_node(p, "Conv")->attribute[0]->name, "bogus");
}

static void edit_foreign_domain(Onnx__ModelProto *p)
{
    replace(&find_node(p, "Relu")->domain, "domain.example");
}

static void edit_missing_initializer(Onnx__ModelProto *p)
{
    for (size_t i = 0; i < p->graph->n_initializer; i++)
        onnx__tensor_proto__free_unpacked(p->graph->initializer[i], NULL);
    p->graph->n_initializer = 0;
}

static void edit_wrong_input_channels(Onnx__ModelProto *p)
{
    p->graph->input[0]->type->tensor_type->shape->dim[1]->dim_value = 3;
}

static void edit_short_weights(Onnx__ModelProto *p)
{
    Onnx__TensorProto *t = p->graph->initializer[0];
    if (t->has_raw_data)
        t->raw_data.len -= 4;
    else
        t->n_float_data--;
}

static void edit_no_graph(Onnx__ModelProto *p)
{
    onnx__graph_proto__free_unpacked(p->graph, NULL);
    p->graph = NULL;
}

static void edit_no_opset(Onnx__ModelProto *p)
{
    for (size_t i = 0; i < p->n_opset_import; i++)
        onnx__operator_set_id_proto__free_unpacked(p->opset_import[i], NULL);
    p->n_opset_import = 0;
}

static void edit_symbolic_channel(Onnx__ModelProto *p)
{
    Onnx__TensorShapeProto__Dimension *d = p->graph->input[0]->type->tensor_type->shape->dim[2];
    d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
    d->dim_param = heap("height");
}

/* Exporters share equal initializers through Identity nodes (torch does for zero biases). */
static void edit_bias_through_identity(Onnx__ModelProto *p)
{
    Onnx__NodeProto *conv = find_node(p, "Conv");
    assert_true(conv->n_input == 3);
    Onnx__NodeProto *copy = malloc(sizeof *copy);
    onnx__node_proto__init(copy);
    copy->op_type = heap("Identity");
    copy->name = heap("shared_bias");
    copy->n_input = copy->n_output = 1;
    copy->input = malloc(sizeof(char *));
    copy->output = malloc(sizeof(char *));
    copy->input[0] = heap(conv->input[2]);
    copy->output[0] = heap("shared_bias_copy");
    replace(&conv->input[2], "shared_bias_copy");
    Onnx__GraphProto *g = p->graph;
    g->node = realloc(g->node, (g->n_node + 1) * sizeof *g->node);
    memmove(g->node + 1, g->node, g->n_node * sizeof *g->node);
    g->node[0] = copy;
    g->n_node++;
}

static void test_initializer_shared_through_identity(void **state)
{
    fixture *fx = *state;
    size_t size;
    unsigned char *bytes = mutate(fx, edit_bias_through_identity, &size);
    fleet_model *m = load(bytes, size, 2, FLEET_MODEL_PART_FULL, NULL, 0);
    float out[20];
    run1(m, fx->input, out);
    assert_close(out, fx->expect, 20);
    fleet_model_destroy(m);
    free(bytes);
}

static void test_bad_graphs_fail_clearly(void **state)
{
    fixture *fx = *state;
    expect_failure(fx, edit_unknown_op, FLEET_MODEL_EUNSUPPORTED, "(LSTM): operator not supported");
    expect_failure(fx, edit_unknown_attribute, FLEET_MODEL_EUNSUPPORTED, "attribute 'bogus'");
    expect_failure(fx, edit_foreign_domain, FLEET_MODEL_EUNSUPPORTED, "domain.example");
    expect_failure(fx, edit_missing_initializer, FLEET_MODEL_EMALFORMED, "not produced");
    expect_failure(fx, edit_wrong_input_channels, FLEET_MODEL_ESHAPE, "(Conv)");
    expect_failure(fx, edit_short_weights, FLEET_MODEL_EMALFORMED, "holds");
    expect_failure(fx, edit_no_graph, FLEET_MODEL_EMALFORMED, "no graph");
    expect_failure(fx, edit_no_opset, FLEET_MODEL_EMALFORMED, "operator set");
    expect_failure(fx, edit_symbolic_channel, FLEET_MODEL_EUNSUPPORTED, "symbolic");
}

static void test_bad_bytes_never_crash(void **state)
{
    fixture *fx = *state;
    fleet_model *m = NULL;
    const char text[] = "definitely not an onnx file\n";
    assert_int_equal(fleet_model_load_buffer(text, sizeof text, NULL, &m), FLEET_MODEL_EMALFORMED);
    assert_int_equal(fleet_model_load_buffer("", 0, NULL, &m), FLEET_MODEL_EMALFORMED);
    /* Every truncation either fails cleanly or (rarely, at a field boundary) still loads. */
    for (size_t n = 0; n < fx->model_size; n += 97) {
        fleet_model_status st = fleet_model_load_buffer(fx->model, n, NULL, &m);
        if (st == FLEET_MODEL_OK)
            fleet_model_destroy(m);
        m = NULL;
    }
    unsigned char *copy = malloc(fx->model_size);
    uint32_t seed = 1;
    for (int round = 0; round < 200; round++) {
        memcpy(copy, fx->model, fx->model_size);
        for (int k = 0; k < 4; k++) {
            seed = seed * 1103515245u + 12345u;
            copy[(seed >> 8) % fx->model_size] ^= (unsigned char)(1u << (seed & 7));
        }
        if (fleet_model_load_buffer(copy, fx->model_size, NULL, &m) == FLEET_MODEL_OK)
            fleet_model_destroy(m);
        m = NULL;
    }
    free(copy);
    fleet_model_options o;
    fleet_model_options_init(&o);
    o.max_file_bytes = 1000;
    assert_int_equal(fleet_model_load_buffer(fx->model, fx->model_size, &o, &m),
                     FLEET_MODEL_ETOOBIG);
    assert_int_equal(fleet_model_load_file("/nonexistent/model.onnx", NULL, &m),
                     FLEET_MODEL_ESYSERR);
    assert_non_null(strstr(fleet_model_last_error(), "/nonexistent/model.onnx"));
    assert_int_equal(fleet_model_load_file("tests", NULL, &m), FLEET_MODEL_ESYSERR);
    assert_null(m);
}

static void edit_add_metadata(Onnx__ModelProto *p)
{
    Onnx__StringStringEntryProto *entry = malloc(sizeof *entry);
    assert_non_null(entry);
    onnx__string_string_entry_proto__init(entry);
    entry->key = heap("family");
    entry->value = heap("fixture");
    p->metadata_props = realloc(p->metadata_props, (p->n_metadata_props + 1) * sizeof *entry);
    p->metadata_props[p->n_metadata_props++] = entry;
}

static void test_metadata_and_stats(void **state)
{
    fixture *fx = *state;
    size_t size;
    unsigned char *bytes = mutate(fx, edit_add_metadata, &size);
    fleet_model *m = load(bytes, size, 1, FLEET_MODEL_PART_FULL, NULL, 0);
    assert_string_equal(fleet_model_metadata(m, "family"), "fixture");
    assert_null(fleet_model_metadata(m, "absent"));
    assert_int_equal(fleet_model_metadata_count(m), 1);
    const char *k, *v;
    assert_int_equal(fleet_model_metadata_at(m, 0, &k, &v), FLEET_MODEL_OK);
    assert_string_equal(k, "family");
    assert_int_equal(fleet_model_metadata_at(m, 1, &k, &v), FLEET_MODEL_ENOTFOUND);
    fleet_model_stats s;
    fleet_model_get_stats(m, &s);
    /* Weights + biases: stem 3x3 1->8 (BN folded by the exporter), depthwise 3x3 x8, pointwise
     * 8->8, SE 8->4 and 4->8, linear 392->10, and Clip's two Constant bounds. */
    assert_int_equal(s.parameters, 80 + 80 + 72 + 36 + 40 + 3930 + 2);
    assert_true(s.macs > 80000 && s.macs < 100000);
    assert_true(s.xnn_nodes > 5 && s.xnn_nodes < s.nodes);
    const char *op;
    size_t count;
    assert_int_equal(fleet_model_op_at(m, 0, &op, &count), FLEET_MODEL_OK);
    assert_string_equal(op, "Conv");
    fleet_model_tensor_info in;
    assert_int_equal(fleet_model_input_info(m, 0, &in), FLEET_MODEL_OK);
    assert_string_equal(in.name, "input");
    assert_int_equal(in.rank, 4);
    assert_int_equal(fleet_model_input_info(m, 1, &in), FLEET_MODEL_EINVAL);
    const float *none[1] = {NULL};
    float out[10], *outs[1] = {out};
    assert_int_equal(fleet_model_run(m, none, outs), FLEET_MODEL_EINVAL);
    fleet_model_destroy(m);
    fleet_model_destroy(NULL);
    free(bytes);
}

/* Inputs the fuzzer once crashed on: each must now load or fail cleanly. */
static void test_fuzz_regressions(void **state)
{
    (void)state;
    const char *root = getenv("FLEET_SOURCE_DIR");
    char dir[512], path[1024];
    snprintf(dir, sizeof dir, "%s%stests/fuzz/regressions", root ? root : "", root ? "/" : "");
    DIR *d = opendir(dir);
    assert_non_null(d);
    int files = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        fleet_model *m = NULL;
        if (fleet_model_load_file(path, NULL, &m) == FLEET_MODEL_OK)
            fleet_model_destroy(m);
        files++;
    }
    closedir(d);
    assert_true(files > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_pytorch),
        cmocka_unit_test(test_batch_change_keeps_results),
        cmocka_unit_test(test_every_cut_composes),
        cmocka_unit_test(test_bad_cut_names),
        cmocka_unit_test(test_bad_graphs_fail_clearly),
        cmocka_unit_test(test_initializer_shared_through_identity),
        cmocka_unit_test(test_bad_bytes_never_crash),
        cmocka_unit_test(test_metadata_and_stats),
        cmocka_unit_test(test_fuzz_regressions),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
