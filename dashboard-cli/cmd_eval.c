/* cmd_eval.c: `fleetctl eval`: the model zoo through the C runtime on the 10k test images. */
#include "fleetctl.h"

#include "eval.h"
#include "fleet_ensemble.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#ifndef FLEET_SOURCE_DIR
#define FLEET_SOURCE_DIR "."
#endif

#define K_VARIANTS 4
#define CLASSES 10
#define MAX_KEYS 512

typedef struct expected {
    char key[96];
    double value;
    int seen;
} expected;

typedef struct eval_ctx {
    const char *zoo;
    size_t n;
    uint8_t *labels;
    float *images[3]; /* pristine, blurred, noisy */
    float *probs[K_VARIANTS], *features[K_VARIANTS];
    size_t feature_dim[K_VARIANTS];
    float temperature[K_VARIANTS], accuracy[K_VARIANTS], vp_weight[K_VARIANTS],
        feature_scale[K_VARIANTS];
    float *baseline_logits;
    FILE *md, *tsv;
    expected *want; /* --check */
    size_t n_want, failures;
} eval_ctx;

static const char *const set_names[] = {"pristine", "blur", "noise"};

static const char eval_usage[] =
    "usage: fleetctl eval [--zoo DIR] [--dataset DIR] [--out RESULTS.md] [--tsv FILE]\n"
    "       fleetctl eval --check FILE [--zoo DIR] [--dataset DIR]\n"
    "\n"
    "Runs every model of the zoo (default models/zoo) through the fleetinfer runtime on the\n"
    "Fashion-MNIST test set (and on blurred and noisy copies of it) and writes the results:\n"
    "models, ensembles under each aggregation rule, degraded ensembles, feature fusion at 8, 4\n"
    "and 2 bits, early exits with and without expert branches, tiny model plus offload.\n"
    "--out writes the markdown report (default: stdout), --tsv the numbers as key<TAB>value.\n"
    "--check FILE recomputes every number in FILE and fails unless each is within 0.001\n"
    "(0.1 percentage points).\n";

static void record(eval_ctx *c, const char *key, double value)
{
    if (c->tsv)
        fprintf(c->tsv, "%s\t%.6f\n", key, value);
    for (size_t i = 0; i < c->n_want; i++) {
        if (strcmp(c->want[i].key, key) != 0)
            continue;
        c->want[i].seen = 1;
        if (fabs(c->want[i].value - value) > 0.001 + 1e-9) {
            fprintf(stderr, "eval check: %s is %.4f, recorded %.4f\n", key, value,
                    c->want[i].value);
            c->failures++;
        }
    }
}

static char *zoo_path(const eval_ctx *c, const char *file, char *buf, size_t size)
{
    snprintf(buf, size, "%s/%s", c->zoo, file);
    return buf;
}

static double argmax_accuracy(const float *scores, size_t width, const uint8_t *labels, size_t n)
{
    size_t right = 0;
    for (size_t i = 0; i < n; i++) {
        const float *s = scores + i * width;
        size_t best = 0;
        for (size_t k = 1; k < width; k++)
            if (s[k] > s[best])
                best = k;
        right += best == labels[i];
    }
    return n ? (double)right / (double)n : 0.0;
}

/* One model on one image set; returns its first output (caller frees) or NULL. */
static float *run_first(eval_ctx *c, const char *file, int set, size_t *width)
{
    char path[600];
    float *out[1] = {NULL};
    if (eval_run(zoo_path(c, file, path, sizeof path), c->images[set], c->n, EVAL_PIXELS, out,
                 width, 1) != 0) {
        free(out[0]);
        return NULL;
    }
    return out[0];
}

static int model_row(eval_ctx *c, const char *file, const char *role, double accuracy)
{
    char path[600], key[128];
    fleet_model *m = NULL;
    struct stat st;
    if (fleet_model_load_file(zoo_path(c, file, path, sizeof path), NULL, &m) != FLEET_MODEL_OK ||
        stat(path, &st) != 0) {
        fprintf(stderr, "fleetctl eval: %s\n", fleet_model_last_error());
        return -1;
    }
    fleet_model_stats s;
    fleet_model_get_stats(m, &s);
    fprintf(c->md, "| %s | %s | %zu | %llu | %lld | %.2f |\n", file, role, s.parameters,
            (unsigned long long)s.macs, (long long)st.st_size, 100.0 * accuracy);
    snprintf(key, sizeof key, "accuracy/%s", file);
    record(c, key, accuracy);
    fleet_model_destroy(m);
    return 0;
}

/* Loads the variants' probabilities (temperature-scaled) and features on clean images. */
static int load_variants(eval_ctx *c)
{
    float max_res = 0.0f, res[K_VARIANTS], width[K_VARIANTS];
    for (int v = 0; v < K_VARIANTS; v++) {
        char file[32], path[600];
        snprintf(file, sizeof file, "variant-%d.onnx", v);
        zoo_path(c, file, path, sizeof path);
        float *outs[2] = {NULL, NULL};
        size_t widths[2];
        if (eval_run(path, c->images[0], c->n, EVAL_PIXELS, outs, widths, 2) != 0) {
            free(outs[0]);
            free(outs[1]);
            return -1;
        }
        c->probs[v] = outs[0];
        c->features[v] = outs[1];
        c->feature_dim[v] = widths[1];
        c->temperature[v] = eval_meta_float(path, "temperature", NULL, 1.0f);
        c->accuracy[v] = eval_meta_float(path, "val_accuracy", NULL, 1.0f);
        c->feature_scale[v] = eval_meta_float(path, "feature_scale", NULL, 1.0f);
        res[v] = eval_meta_float(path, "input_resolution", NULL, 28.0f);
        width[v] = eval_meta_float(path, "width", NULL, 0.35f);
        max_res = fmaxf(max_res, res[v]);
        double acc = argmax_accuracy(c->probs[v], CLASSES, c->labels, c->n);
        if (model_row(c, file, "variant", acc) != 0)
            return -1;
        for (size_t i = 0; i < c->n; i++)
            fleet_ensemble_softmax(c->probs[v] + i * CLASSES, CLASSES, c->temperature[v]);
    }
    for (int v = 0; v < K_VARIANTS; v++) /* exactly as the coordinator weights them */
        c->vp_weight[v] = res[v] / max_res * (width[v] / 0.35f) * (width[v] / 0.35f);
    return 0;
}

/* The fleet's decision rule over the variants in `present` (a bitmask). */
static double ensemble_accuracy(const eval_ctx *c, fleet_ensemble_rule rule, size_t k,
                                unsigned present)
{
    size_t right = 0;
    for (size_t i = 0; i < c->n; i++) {
        fleet_ensemble_score scores[K_VARIANTS][CLASSES];
        fleet_ensemble_vote votes[K_VARIANTS];
        size_t n_votes = 0;
        for (int v = 0; v < K_VARIANTS; v++) {
            if (!(present >> v & 1u))
                continue;
            size_t got = fleet_ensemble_topk(c->probs[v] + i * CLASSES, CLASSES, k, scores[v]);
            float weight = rule == FLEET_ENSEMBLE_ACC_WEIGHTED ? c->accuracy[v] : c->vp_weight[v];
            votes[n_votes++] = (fleet_ensemble_vote){scores[v], got, weight};
        }
        fleet_ensemble_decision d;
        fleet_ensemble_decide(rule, votes, n_votes, CLASSES, NULL, &d);
        right += d.cls == c->labels[i];
    }
    return (double)right / (double)c->n;
}

/* Feature fusion: int-`bits` quantized features (missing variants as zeros) into fusion.onnx. */
static double fusion_accuracy(eval_ctx *c, int bits, unsigned present)
{
    size_t total = 0;
    for (int v = 0; v < K_VARIANTS; v++)
        total += c->feature_dim[v];
    float *in = calloc(c->n * total, sizeof *in), *out[1] = {NULL};
    size_t width[1];
    double acc = -1.0;
    if (!in)
        return acc;
    int qmin = -(1 << (bits - 1)), qmax = (1 << (bits - 1)) - 1;
    for (size_t i = 0; i < c->n; i++) {
        size_t off = 0;
        for (int v = 0; v < K_VARIANTS; v++) {
            /* The 8-bit range [0, 255 * scale] split into 2^bits levels, as in training. */
            float scale = c->feature_scale[v] * 255.0f / (float)((1 << bits) - 1);
            for (size_t f = 0; (present >> v & 1u) && f < c->feature_dim[v]; f++) {
                float q =
                    nearbyintf(c->features[v][i * c->feature_dim[v] + f] / scale) + (float)qmin;
                q = q < (float)qmin ? (float)qmin : q > (float)qmax ? (float)qmax : q;
                in[i * total + off + f] = scale * (q - (float)qmin);
            }
            off += c->feature_dim[v];
        }
    }
    char path[600];
    if (eval_run(zoo_path(c, "fusion.onnx", path, sizeof path), in, c->n, total, out, width, 1) ==
        0)
        acc = argmax_accuracy(out[0], width[0], c->labels, c->n);
    free(out[0]);
    free(in);
    return acc;
}

typedef struct rule_spec {
    const char *name;
    fleet_ensemble_rule rule;
    size_t k;
    int fusion_bits; /* 0: a Top-k rule */
} rule_spec;

static double rule_accuracy(eval_ctx *c, const rule_spec *r, unsigned present)
{
    return r->fusion_bits ? fusion_accuracy(c, r->fusion_bits, present)
                          : ensemble_accuracy(c, r->rule, r->k, present);
}

static void ensembles(eval_ctx *c)
{
    static const rule_spec rules[] = {{"mean-softmax", FLEET_ENSEMBLE_MEAN_SOFTMAX, CLASSES, 0},
                                      {"vp-topk k=1", FLEET_ENSEMBLE_VP_TOPK, 1, 0},
                                      {"vp-topk k=2", FLEET_ENSEMBLE_VP_TOPK, 2, 0},
                                      {"vp-topk k=3", FLEET_ENSEMBLE_VP_TOPK, 3, 0},
                                      {"acc-weighted", FLEET_ENSEMBLE_ACC_WEIGHTED, CLASSES, 0},
                                      {"majority", FLEET_ENSEMBLE_MAJORITY, CLASSES, 0},
                                      {"fusion 8-bit", 0, 0, 8},
                                      {"fusion 4-bit", 0, 0, 4},
                                      {"fusion 2-bit", 0, 0, 2}};
    fprintf(c->md, "\n## Ensembles of the four variants\n\n"
                   "Every rule runs the code the coordinator runs (`fleet_ensemble_decide`, or "
                   "the fusion head on int8 features as the wire carries them). Missing "
                   "variants: every subset of that many, minimum and mean.\n\n"
                   "| rule | all 4 | 1 missing: min | 1 missing: mean | 2 missing: min | "
                   "2 missing: mean |\n|---|---|---|---|---|---|\n");
    for (size_t r = 0; r < sizeof rules / sizeof rules[0]; r++) {
        double all = rule_accuracy(c, &rules[r], 0xF), min1 = 1, sum1 = 0, min2 = 1, sum2 = 0;
        int n1 = 0, n2 = 0;
        for (unsigned mask = 0; mask < 16; mask++) {
            int missing = 4 - __builtin_popcount(mask);
            if (missing != 1 && missing != 2)
                continue;
            double a = rule_accuracy(c, &rules[r], mask);
            if (missing == 1)
                min1 = fmin(min1, a), sum1 += a, n1++;
            else
                min2 = fmin(min2, a), sum2 += a, n2++;
        }
        fprintf(c->md, "| %s | %.2f | %.2f | %.2f | %.2f | %.2f |\n", rules[r].name, 100 * all,
                100 * min1, 100 * sum1 / n1, 100 * min2, 100 * sum2 / n2);
        char key[128];
        const char *parts[] = {"all", "min1", "mean1", "min2", "mean2"};
        double values[] = {all, min1, sum1 / n1, min2, sum2 / n2};
        for (int p = 0; p < 5; p++) {
            snprintf(key, sizeof key, "ensemble/%s/%s", rules[r].name, parts[p]);
            for (char *s = key; *s; s++)
                *s = *s == ' ' ? '_' : *s;
            record(c, key, values[p]);
        }
    }
}

/* The three exits of an early-exit model on one image set, temperature-scaled. */
typedef struct exits {
    float *out[3]; /* logits (final), exit1, exit2 */
    float temperature[3];
} exits;

static int run_exits(eval_ctx *c, const char *file, int set, exits *e)
{
    static const char *const names[] = {"logits", "exit1", "exit2"};
    char path[600];
    size_t widths[3];
    memset(e, 0, sizeof *e);
    zoo_path(c, file, path, sizeof path);
    if (eval_run(path, c->images[set], c->n, EVAL_PIXELS, e->out, widths, 3) != 0)
        return -1;
    for (int j = 0; j < 3; j++) {
        e->temperature[j] = eval_meta_float(path, "branch_temperatures", names[j], 1.0f);
        for (size_t i = 0; i < c->n; i++)
            fleet_ensemble_softmax(e->out[j] + i * CLASSES, CLASSES, e->temperature[j]);
    }
    return 0;
}

static void free_exits(exits *e)
{
    for (int j = 0; j < 3; j++)
        free(e->out[j]);
}

static size_t argmax10(const float *p, float *top)
{
    size_t best = 0;
    for (size_t k = 1; k < CLASSES; k++)
        if (p[k] > p[best])
            best = k;
    *top = p[best];
    return best;
}

/* Exit at exit1, then exit2, when the max probability reaches p; else the final head.
 * Returns accuracy; *on_device = the share that exited early. */
static double exit_rule(const eval_ctx *c, const exits *e, double p, double *on_device)
{
    static const int order[3] = {1, 2, 0};
    size_t right = 0, early = 0;
    for (size_t i = 0; i < c->n; i++) {
        for (int o = 0; o < 3; o++) {
            float top;
            size_t cls = argmax10(e->out[order[o]] + i * CLASSES, &top);
            if (o == 2 || top >= p) {
                right += cls == c->labels[i];
                early += o < 2;
                break;
            }
        }
    }
    *on_device = (double)early / (double)c->n;
    return (double)right / (double)c->n;
}

/* The largest exit rate whose accuracy is at least `accuracy`, over fine thresholds. */
static double best_rate_at(const eval_ctx *c, const exits *e, double accuracy, double *at_p)
{
    double best = 0.0;
    *at_p = 1.0;
    for (int t = 50; t <= 99; t++) {
        double rate, acc = exit_rule(c, e, t / 100.0, &rate);
        if (acc >= accuracy - 1e-12 && rate > best) {
            best = rate;
            *at_p = t / 100.0;
        }
    }
    return best;
}

static void exit_table_row(eval_ctx *c, const char *set, const char *which, const exits *e)
{
    static const double ps[] = {0.5, 0.7, 0.8, 0.9, 0.95, 0.99};
    fprintf(c->md, "| %s | %s |", set, which);
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) {
        double rate, acc = exit_rule(c, e, ps[i], &rate);
        fprintf(c->md, " %.1f / %.2f |", 100 * rate, 100 * acc);
        char key[128];
        snprintf(key, sizeof key, "early-exit/%s/%s/p%.2f/rate", set, which, ps[i]);
        record(c, key, rate);
        snprintf(key, sizeof key, "early-exit/%s/%s/p%.2f/accuracy", set, which, ps[i]);
        record(c, key, acc);
    }
    fprintf(c->md, "\n");
}

static int early_exits(eval_ctx *c)
{
    static const char *const experts[] = {NULL, "early-exit-blur.onnx", "early-exit-noise.onnx"};
    fprintf(c->md, "\n## Early exits\n\n"
                   "Exit at the first branch (exit1, exit2, final) whose temperature-scaled max "
                   "softmax reaches p_tar. Cells: share of inputs that exit on the device (%%) "
                   "/ accuracy (%%). Blurred and noisy sets: every test image with a random "
                   "strength (blur sigma 1-5, noise std 0.05-0.3).\n\n"
                   "| set | branches | p 0.5 | p 0.7 | p 0.8 | p 0.9 | p 0.95 | p 0.99 |\n"
                   "|---|---|---|---|---|---|---|---|\n");
    char summary[3][256] = {"", "", ""};
    for (int set = 0; set < 3; set++) {
        exits generic, expert;
        if (run_exits(c, "early-exit.onnx", set, &generic) != 0)
            return -1;
        exit_table_row(c, set_names[set], "generic", &generic);
        if (experts[set]) {
            if (run_exits(c, experts[set], set, &expert) != 0) {
                free_exits(&generic);
                return -1;
            }
            exit_table_row(c, set_names[set], "expert", &expert);
            double g_rate, g_acc = exit_rule(c, &generic, 0.9, &g_rate), p_expert;
            double e_rate = best_rate_at(c, &expert, g_acc, &p_expert);
            snprintf(summary[set], sizeof summary[set],
                     "- %s: the generic branches at p_tar 0.9 exit %.1f %% of the inputs at "
                     "%.2f %% accuracy; the expert branches exit %.1f %% at no lower accuracy "
                     "(p_tar %.2f).\n",
                     set_names[set], 100 * g_rate, 100 * g_acc, 100 * e_rate, p_expert);
            char key[128];
            snprintf(key, sizeof key, "early-exit/%s/expert-rate-at-generic-accuracy",
                     set_names[set]);
            record(c, key, e_rate);
            free_exits(&expert);
        }
        free_exits(&generic);
    }
    fprintf(c->md, "\nAt equal accuracy:\n\n%s%s", summary[1], summary[2]);
    return 0;
}

static int tiny_offload(eval_ctx *c)
{
    size_t width;
    char path[600];
    float *tiny = run_first(c, "tiny.onnx", 0, &width);
    if (!tiny)
        return -1;
    float temperature =
        eval_meta_float(zoo_path(c, "tiny.onnx", path, sizeof path), "temperature", NULL, 1.0f);
    for (size_t i = 0; i < c->n; i++)
        fleet_ensemble_softmax(tiny + i * CLASSES, CLASSES, temperature);
    fprintf(c->md, "\n## Hierarchical inference: tiny model plus offload to the baseline\n\n"
                   "The tiny model answers when its temperature-scaled max softmax reaches the "
                   "threshold; the rest is offloaded to the baseline.\n\n"
                   "| threshold | offloaded (%%) | accuracy (%%) |\n|---|---|---|\n");
    static const double ths[] = {0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.01};
    for (size_t t = 0; t < sizeof ths / sizeof ths[0]; t++) {
        size_t right = 0, offloaded = 0;
        for (size_t i = 0; i < c->n; i++) {
            float top, btop;
            size_t cls = argmax10(tiny + i * CLASSES, &top);
            if (top < ths[t]) {
                offloaded++;
                cls = argmax10(c->baseline_logits + i * CLASSES, &btop);
            }
            right += cls == c->labels[i];
        }
        double off = (double)offloaded / (double)c->n, acc = (double)right / (double)c->n;
        char label[32];
        snprintf(label, sizeof label, "%.2f", ths[t]);
        fprintf(c->md, "| %s | %.1f | %.2f |\n",
                t == 0   ? "0 (tiny only)"
                : t == 8 ? "above 1 (baseline only)"
                         : label,
                100 * off, 100 * acc);
        char key[128];
        snprintf(key, sizeof key, "tiny-offload/%.2f/offloaded", ths[t]);
        record(c, key, off);
        snprintf(key, sizeof key, "tiny-offload/%.2f/accuracy", ths[t]);
        record(c, key, acc);
    }
    free(tiny);
    return 0;
}

/* The distortion detector on a mixed set: each test image pristine, blurred or noisy. */
static double detector_accuracy(eval_ctx *c)
{
    float *mixed = malloc(c->n * EVAL_PIXELS * sizeof(float));
    uint8_t *kinds = malloc(c->n), *saved = c->labels;
    double acc = -1.0;
    if (mixed && kinds) {
        uint64_t s = 45;
        for (size_t i = 0; i < c->n; i++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            kinds[i] = (uint8_t)((s >> 33) % 3);
            memcpy(mixed + i * EVAL_PIXELS, c->images[kinds[i]] + i * EVAL_PIXELS,
                   EVAL_PIXELS * sizeof(float));
        }
        char path[600];
        float *out[1] = {NULL};
        size_t width[1];
        if (eval_run(zoo_path(c, "distortion-detector.onnx", path, sizeof path), mixed, c->n,
                     EVAL_PIXELS, out, width, 1) == 0) {
            c->labels = kinds;
            acc = argmax_accuracy(out[0], width[0], kinds, c->n);
            c->labels = saved;
        }
        free(out[0]);
    }
    free(mixed);
    free(kinds);
    return acc;
}

static int models_section(eval_ctx *c)
{
    size_t width;
    fprintf(c->md, "## Models (Fashion-MNIST test set, 10,000 images)\n\n"
                   "| file | role | parameters | MACs | bytes | accuracy (%%) |\n"
                   "|---|---|---|---|---|---|\n");
    c->baseline_logits = run_first(c, "baseline.onnx", 0, &width);
    if (!c->baseline_logits ||
        model_row(c, "baseline.onnx", "baseline",
                  argmax_accuracy(c->baseline_logits, width, c->labels, c->n)) != 0 ||
        load_variants(c) != 0)
        return -1;
    static const struct {
        const char *file, *role;
        int set;
    } rest[] = {{"tiny.onnx", "tiny (local)", 0},
                {"early-exit.onnx", "early exit, final head", 0},
                {"early-exit-blur.onnx", "blur expert, final head, blurred set", 1},
                {"early-exit-noise.onnx", "noise expert, final head, noisy set", 2}};
    for (size_t i = 0; i < sizeof rest / sizeof rest[0]; i++) {
        float *out = run_first(c, rest[i].file, rest[i].set, &width);
        int rc = out ? model_row(c, rest[i].file, rest[i].role,
                                 argmax_accuracy(out, width, c->labels, c->n))
                     : -1;
        free(out);
        if (rc != 0)
            return -1;
    }
    double det = detector_accuracy(c);
    if (det < 0 ||
        model_row(c, "distortion-detector.onnx", "pristine/blur/noise on a mixed set", det) != 0)
        return -1;
    /* fusion.onnx takes features; its accuracy is the "fusion 8-bit" row below. */
    return model_row(c, "fusion.onnx", "fusion head, 8-bit features", fusion_accuracy(c, 8, 0xF));
}

static int load_expected(eval_ctx *c, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        return -1;
    }
    c->want = calloc(MAX_KEYS, sizeof *c->want);
    char line[256];
    while (c->want && c->n_want < MAX_KEYS && fgets(line, sizeof line, f)) {
        expected *e = &c->want[c->n_want];
        if (sscanf(line, "%95s %lf", e->key, &e->value) == 2)
            c->n_want++;
    }
    fclose(f);
    return c->want && c->n_want > 0 ? 0 : -1;
}

static int evaluate(eval_ctx *c, const char *dataset)
{
    fleetctl_dataset ds;
    if (fleetctl_dataset_load(dataset, "t10k", &ds) != 0)
        return -1;
    c->n = ds.count - ds.count % 100;
    c->labels = malloc(c->n);
    int rc = -1;
    if (!c->labels)
        goto cleanup;
    memcpy(c->labels, ds.labels, c->n);
    for (int set = 0; set < 3; set++)
        if (!(c->images[set] = eval_images(&ds, (eval_distortion)set, 2000u + (unsigned)set)))
            goto cleanup;
    time_t now = time(NULL);
    char date[32];
    strftime(date, sizeof date, "%Y-%m-%d", gmtime(&now));
    fprintf(c->md,
            "# Model zoo results\n\nMeasured by the fleetinfer C runtime "
            "(`fleetctl eval`, %s) on the %zu Fashion-MNIST test images. "
            "Regenerate with `build/dashboard-cli/fleetctl eval --out models/RESULTS.md "
            "--tsv models/zoo/results.tsv`; CI checks every number with `--check`.\n\n",
            date, c->n);
    if (models_section(c) == 0) {
        ensembles(c);
        if (early_exits(c) == 0 && tiny_offload(c) == 0)
            rc = 0;
    }
cleanup:
    fleetctl_dataset_free(&ds);
    return rc;
}

int fleetctl_eval_main(int argc, char **argv)
{
    static const struct option options[] = {{"zoo", required_argument, NULL, 'z'},
                                            {"dataset", required_argument, NULL, 'd'},
                                            {"out", required_argument, NULL, 'o'},
                                            {"tsv", required_argument, NULL, 't'},
                                            {"check", required_argument, NULL, 'c'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    const char *dataset = FLEETCTL_DATASET_DEFAULT_DIR, *out = NULL, *tsv = NULL, *check = NULL;
    eval_ctx c;
    memset(&c, 0, sizeof c);
    c.zoo = FLEET_SOURCE_DIR "/models/zoo";
    optind = 1;
    int opt;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case 'z':
            c.zoo = optarg;
            break;
        case 'd':
            dataset = optarg;
            break;
        case 'o':
            out = optarg;
            break;
        case 't':
            tsv = optarg;
            break;
        case 'c':
            check = optarg;
            break;
        case 'h':
            fputs(eval_usage, stdout);
            return FLEETCTL_OK;
        default:
            fputs(eval_usage, stderr);
            return FLEETCTL_USAGE;
        }
    }
    if (optind != argc) {
        fputs(eval_usage, stderr);
        return FLEETCTL_USAGE;
    }
    int rc = FLEETCTL_FAILED;
    if (check && load_expected(&c, check) != 0) {
        fprintf(stderr, "fleetctl eval: no numbers in %s\n", check);
        goto cleanup;
    }
    c.md = check ? fopen("/dev/null", "w") : out ? fopen(out, "w") : stdout;
    c.tsv = tsv ? fopen(tsv, "w") : NULL;
    if (!c.md || (tsv && !c.tsv)) {
        perror("fleetctl eval");
        goto cleanup;
    }
    if (evaluate(&c, dataset) != 0)
        goto cleanup;
    for (size_t i = 0; i < c.n_want; i++)
        if (!c.want[i].seen) {
            fprintf(stderr, "eval check: %s was not recomputed\n", c.want[i].key);
            c.failures++;
        }
    if (check)
        printf("eval check: %zu numbers, %zu outside 0.1 points\n", c.n_want, c.failures);
    rc = c.failures ? FLEETCTL_FAILED : FLEETCTL_OK;
cleanup:
    if (c.md && c.md != stdout)
        fclose(c.md);
    if (c.tsv)
        fclose(c.tsv);
    for (int i = 0; i < 3; i++)
        free(c.images[i]);
    for (int v = 0; v < K_VARIANTS; v++) {
        free(c.probs[v]);
        free(c.features[v]);
    }
    free(c.baseline_logits);
    free(c.labels);
    free(c.want);
    return rc;
}
