/* cmd_model.c: `fleetctl model info|run|bench`, the model runtime from the command line. */
#include "fleetctl.h"

#include "fleet_models.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MODEL_MAX_INPUT_BYTES ((size_t)1 << 30)

static const char model_usage[] =
    "usage: fleetctl model info  M.onnx [--head T | --tail T]\n"
    "       fleetctl model run   M.onnx --input X.f32 [--output Y.f32] [--head T | --tail T]\n"
    "                            [--threads N]\n"
    "       fleetctl model bench M.onnx [--batch B] [--threads N] [--seconds S] [--json]\n"
    "                            [--head T | --tail T]\n"
    "\n"
    "  --input X.f32    raw little-endian float32 in the model's ONNX (NCHW) layout; the\n"
    "                   batch size is the file size over one sample's size\n"
    "  --output Y.f32   also write the first output, raw float32\n"
    "  --batch B        batch size for bench (default 1)\n"
    "  --threads N      intra-op threads (default 0: the calling thread only)\n"
    "  --seconds S      bench: measure for at least S seconds (default 1; fractions too)\n"
    "  --json           bench: print one JSON object\n"
    "  --head T         use the part of the graph up to tensor T\n"
    "  --tail T         use the part of the graph after tensor T\n";

typedef struct model_args {
    const char *command;
    const char *path;
    const char *input;
    const char *output;
    size_t batch;
    size_t threads;
    double seconds;
    int json;
    fleet_model_part part;
    const char *cut;
} model_args;

static int parse_model_args(int argc, char **argv, model_args *a)
{
    static const struct option options[] = {
        {"input", required_argument, NULL, 'i'},   {"output", required_argument, NULL, 'o'},
        {"batch", required_argument, NULL, 'b'},   {"threads", required_argument, NULL, 't'},
        {"seconds", required_argument, NULL, 's'}, {"json", no_argument, NULL, 'j'},
        {"head", required_argument, NULL, 'H'},    {"tail", required_argument, NULL, 'T'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    memset(a, 0, sizeof *a);
    a->batch = 1;
    a->seconds = 1;
    optind = 1;
    int c, index = 0;
    while ((c = getopt_long(argc, argv, "", options, &index)) != -1) {
        int bad = 0;
        switch (c) {
        case 'i':
            a->input = optarg;
            break;
        case 'o':
            a->output = optarg;
            break;
        case 'b':
            bad = fleetctl_parse_size(optarg, 1, 1 << 16, &a->batch);
            break;
        case 't':
            bad = fleetctl_parse_size(optarg, 0, 256, &a->threads);
            break;
        case 's': {
            char *end = NULL;
            a->seconds = strtod(optarg, &end);
            bad = !optarg[0] || *end || !(a->seconds >= 0.05 && a->seconds <= 3600.0);
            break;
        }
        case 'j':
            a->json = 1;
            break;
        case 'H':
        case 'T':
            if (a->cut) {
                fprintf(stderr, "fleetctl model: give --head or --tail once\n");
                return -1;
            }
            a->part = c == 'H' ? FLEET_MODEL_PART_HEAD : FLEET_MODEL_PART_TAIL;
            a->cut = optarg;
            break;
        case 'h':
            fputs(model_usage, stdout);
            exit(FLEETCTL_OK);
        default:
            return -1;
        }
        if (bad) {
            fprintf(stderr, "fleetctl model: bad value '%s' for --%s\n", optarg,
                    options[index].name);
            return -1;
        }
    }
    return 0;
}

static fleet_model *open_model(const model_args *a, size_t batch)
{
    fleet_model_options o;
    fleet_model_options_init(&o);
    o.batch_size = batch;
    o.threads = a->threads;
    o.part = a->part;
    o.cut_tensor = a->cut;
    fleet_model *m = NULL;
    fleet_model_status st = fleet_model_load_file(a->path, &o, &m);
    if (st != FLEET_MODEL_OK) {
        fprintf(stderr, "fleetctl: cannot load model: %s (%s)\n", fleet_model_last_error(),
                fleet_model_strerror(st));
        return NULL;
    }
    return m;
}

static void print_dims(const size_t *dims, size_t rank)
{
    putchar('[');
    for (size_t d = 0; d < rank; d++)
        printf("%s%zu", d ? "," : "", dims[d]);
    putchar(']');
}

static void print_tensors(const fleet_model *m, int outputs)
{
    size_t n = outputs ? fleet_model_output_count(m) : fleet_model_input_count(m);
    printf("%s:\n", outputs ? "outputs" : "inputs");
    for (size_t i = 0; i < n; i++) {
        fleet_model_tensor_info t;
        if (outputs)
            fleet_model_output_info(m, i, &t);
        else
            fleet_model_input_info(m, i, &t);
        printf("  %-24s float32 ", t.name);
        print_dims(t.dims, t.rank);
        putchar('\n');
    }
}

static int cmd_info(const model_args *a)
{
    fleet_model *m = open_model(a, 1);
    if (!m)
        return FLEETCTL_FAILED;
    fleet_model_stats s;
    fleet_model_get_stats(m, &s);
    printf("model:       %s\n", a->path);
    printf("nodes:       %zu ONNX, %zu XNNPACK after fusion\n", s.nodes, s.xnn_nodes);
    printf("parameters:  %zu\n", s.parameters);
    printf("MACs:        %llu per sample\n", (unsigned long long)s.macs);
    print_tensors(m, 0);
    print_tensors(m, 1);
    printf("operators:\n");
    for (size_t i = 0; i < fleet_model_op_count(m); i++) {
        const char *op;
        size_t count;
        fleet_model_op_at(m, i, &op, &count);
        printf("  %-24s %zu\n", op, count);
    }
    if (fleet_model_metadata_count(m) > 0)
        printf("metadata:\n");
    for (size_t i = 0; i < fleet_model_metadata_count(m); i++) {
        const char *key, *value;
        fleet_model_metadata_at(m, i, &key, &value);
        printf("  %-24s %s\n", key, value);
    }
    if (fleet_model_cut_count(m) > 0)
        printf("cut candidates (batch 1; * = natural bottleneck):\n"
               "  %-28s %-16s %12s %12s\n",
               "tensor", "shape", "f32 bytes", "int8 bytes");
    for (size_t i = 0; i < fleet_model_cut_count(m); i++) {
        fleet_model_cut c;
        fleet_model_cut_at(m, i, &c);
        char shape[64];
        int at = 0;
        for (size_t d = 0; d < c.rank && at < (int)sizeof shape - 12; d++)
            at += snprintf(shape + at, sizeof shape - (size_t)at, "%s%zu", d ? "x" : "", c.dims[d]);
        printf("%c %-28s %-16s %12zu %12zu\n", c.natural_bottleneck ? '*' : ' ', c.tensor, shape,
               c.bytes_f32, c.bytes_int8);
    }
    fleet_model_destroy(m);
    return FLEETCTL_OK;
}

static void print_top5(const float *scores, size_t classes, size_t sample)
{
    int used[5] = {-1, -1, -1, -1, -1};
    printf("sample %zu top-5:", sample);
    for (size_t k = 0; k < 5 && k < classes; k++) {
        int best = -1;
        for (size_t c = 0; c < classes; c++) {
            int taken = 0;
            for (size_t j = 0; j < k; j++)
                taken |= used[j] == (int)c;
            if (!taken && (best < 0 || scores[c] > scores[best]))
                best = (int)c;
        }
        used[k] = best;
        printf(" %d:%.6g", best, (double)scores[best]);
    }
    putchar('\n');
}

static int cmd_run(const model_args *a)
{
    int rc = FLEETCTL_FAILED;
    size_t size = 0;
    float *input = NULL, *output = NULL;
    fleet_model *m = NULL;
    if (!a->input) {
        fprintf(stderr, "fleetctl model run: --input is required\n");
        return FLEETCTL_USAGE;
    }
    if (!(m = open_model(a, 1)))
        return FLEETCTL_FAILED;
    fleet_model_tensor_info in, out;
    if (fleet_model_input_count(m) != 1) {
        fprintf(stderr, "fleetctl model run: the model has %zu inputs; only one is supported\n",
                fleet_model_input_count(m));
        goto cleanup;
    }
    fleet_model_input_info(m, 0, &in);
    if (!(input = fleetctl_read_file(a->input, MODEL_MAX_INPUT_BYTES, &size)))
        goto cleanup;
    size_t sample_bytes = in.count * sizeof(float);
    if (size == 0 || size % sample_bytes) {
        fprintf(stderr,
                "fleetctl model run: %s holds %zu bytes, not a multiple of one sample "
                "(%zu floats = %zu bytes for input '%s')\n",
                a->input, size, in.count, sample_bytes, in.name);
        goto cleanup;
    }
    size_t batch = size / sample_bytes;
    if (fleet_model_set_batch_size(m, batch) != FLEET_MODEL_OK) {
        fprintf(stderr, "fleetctl: batch %zu: %s\n", batch, fleet_model_last_error());
        goto cleanup;
    }
    fleet_model_output_info(m, 0, &out);
    size_t outputs = fleet_model_output_count(m);
    float **bufs = calloc(outputs, sizeof *bufs);
    for (size_t i = 0; bufs && i < outputs; i++) {
        fleet_model_tensor_info t;
        fleet_model_output_info(m, i, &t);
        bufs[i] = malloc(t.count * sizeof(float) + 1);
    }
    const float *ins[1] = {input};
    fleet_model_status st =
        bufs && bufs[outputs - 1] ? fleet_model_run(m, ins, bufs) : FLEET_MODEL_ENOMEM;
    if (st == FLEET_MODEL_OK) {
        output = bufs[0];
        bufs[0] = NULL;
        size_t per = out.count / batch;
        printf("output '%s' ", out.name);
        print_dims(out.dims, out.rank);
        putchar('\n');
        for (size_t b = 0; b < batch; b++) {
            for (size_t i = 0; i < per && i < 64; i++)
                printf("%s%.7g", i ? " " : "", (double)output[b * per + i]);
            printf(per > 64 ? " ... (%zu values)\n" : "\n", per);
            print_top5(output + b * per, per, b);
        }
        rc = a->output && fleetctl_write_file(a->output, output, out.count * sizeof(float)) != 0
                 ? FLEETCTL_FAILED
                 : FLEETCTL_OK;
    } else {
        fprintf(stderr, "fleetctl: run failed: %s\n", fleet_model_last_error());
    }
    for (size_t i = 0; bufs && i < outputs; i++)
        free(bufs[i]);
    free(bufs);
cleanup:
    free(input);
    free(output);
    fleet_model_destroy(m);
    return rc;
}

/* Deterministic inputs in [0, 1), like normalised pixels. */
static void fill_inputs(float *x, size_t n)
{
    uint32_t s = 12345u;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = (float)(s >> 8) / 16777216.0f;
    }
}

static int cmd_bench(const model_args *a)
{
    int rc = FLEETCTL_FAILED;
    fleet_model *m = open_model(a, a->batch);
    size_t n_in = m ? fleet_model_input_count(m) : 0, n_out = m ? fleet_model_output_count(m) : 0;
    float **ins = calloc(n_in + 1, sizeof *ins), **outs = calloc(n_out + 1, sizeof *outs);
    double *samples = NULL;
    size_t cap = 200000, count = 0;
    if (!m || !ins || !outs || !(samples = malloc(cap * sizeof *samples)))
        goto cleanup;
    for (size_t i = 0; i < n_in + n_out; i++) {
        fleet_model_tensor_info t;
        if (i < n_in)
            fleet_model_input_info(m, i, &t);
        else
            fleet_model_output_info(m, i - n_in, &t);
        float *buf = malloc(t.count * sizeof(float) + 1);
        if (!buf)
            goto cleanup;
        if (i < n_in)
            fill_inputs(ins[i] = buf, t.count);
        else
            outs[i - n_in] = buf;
    }
    double until = fleetctl_now_us() + 2e5; /* warm-up: caches, page faults, frequency */
    while (fleetctl_now_us() < until)
        fleet_model_run(m, (const float *const *)ins, outs);
    until = fleetctl_now_us() + a->seconds * 1e6;
    while (count < cap && (fleetctl_now_us() < until || count < 50)) {
        double t0 = fleetctl_now_us();
        if (fleet_model_run(m, (const float *const *)ins, outs) != FLEET_MODEL_OK) {
            fprintf(stderr, "fleetctl: run failed: %s\n", fleet_model_last_error());
            goto cleanup;
        }
        samples[count++] = fleetctl_now_us() - t0;
    }
    qsort(samples, count, sizeof *samples, fleetctl_compare_double);
    double median = samples[count / 2], p99 = samples[(size_t)ceil(0.99 * (double)count) - 1];
    if (a->json)
        printf("{\"model\":\"%s\",\"batch\":%zu,\"threads\":%zu,\"iterations\":%zu,"
               "\"median_us\":%.3f,\"p99_us\":%.3f}\n",
               a->path, a->batch, a->threads, count, median, p99);
    else
        printf("%s: batch %zu, %zu threads, %zu runs: median %.1f us, p99 %.1f us "
               "(%.1f us per sample)\n",
               a->path, a->batch, a->threads, count, median, p99, median / (double)a->batch);
    rc = FLEETCTL_OK;
cleanup:
    for (size_t i = 0; ins && i < n_in; i++)
        free(ins[i]);
    for (size_t i = 0; outs && i < n_out; i++)
        free(outs[i]);
    free(ins);
    free(outs);
    free(samples);
    fleet_model_destroy(m);
    return rc;
}

int fleetctl_model_main(int argc, char **argv)
{
    model_args a;
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(model_usage, stdout);
        return FLEETCTL_OK;
    }
    /* argv[1] (the command) stands in for argv[0] while the options are parsed. */
    if (argc < 2 || parse_model_args(argc - 1, argv + 1, &a) != 0) {
        fputs(model_usage, stderr);
        return FLEETCTL_USAGE;
    }
    a.command = argv[1];
    if (optind != argc - 2) {
        fprintf(stderr, "fleetctl model %s: expected exactly one model file\n", a.command);
        return FLEETCTL_USAGE;
    }
    a.path = argv[1 + optind];
    if (strcmp(a.command, "info") == 0)
        return cmd_info(&a);
    if (strcmp(a.command, "run") == 0)
        return cmd_run(&a);
    if (strcmp(a.command, "bench") == 0)
        return cmd_bench(&a);
    fprintf(stderr, "fleetctl model: unknown command '%s'\n", a.command);
    fputs(model_usage, stderr);
    return FLEETCTL_USAGE;
}
