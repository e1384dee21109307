/* eval_data.c: test images as floats, their blurred and noisy twins, and batch inference. */
#include "eval.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* splitmix64: a fixed, portable stream so the distorted sets are the same everywhere. */
static uint64_t next_u64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double uniform(uint64_t *s)
{
    return ((double)(next_u64(s) >> 11) + 0.5) / 9007199254740992.0;
}

static const float blur_sigmas[] = {1, 2, 3, 4, 5};
static const float noise_stds[] = {0.05f, 0.1f, 0.15f, 0.2f, 0.3f};

/* Reflect padding as torch's F.pad(mode="reflect"); replicate when the kernel is too wide. */
static int reflect(int i, int n, int replicate)
{
    if (replicate)
        return i < 0 ? 0 : i >= n ? n - 1 : i;
    while (i < 0 || i >= n)
        i = i < 0 ? -i : 2 * (n - 1) - i;
    return i;
}

/* Separable Gaussian blur with kernel 4*sigma+1, as models/train/data.py does it. */
static void blur(const float *in, float *out, float sigma)
{
    int k = (int)(4.0f * sigma + 1.0f), p = k / 2, replicate = p >= EVAL_SIDE;
    float g[32], sum = 0.0f, tmp[EVAL_PIXELS];
    for (int i = 0; i < k; i++) {
        float r = (float)i - (float)(k - 1) / 2.0f;
        g[i] = expf(-(r * r) / (2.0f * sigma * sigma));
        sum += g[i];
    }
    for (int i = 0; i < k; i++)
        g[i] /= sum;
    for (int y = 0; y < EVAL_SIDE; y++)
        for (int x = 0; x < EVAL_SIDE; x++) {
            float acc = 0.0f;
            for (int i = 0; i < k; i++)
                acc += g[i] * in[y * EVAL_SIDE + reflect(x + i - p, EVAL_SIDE, replicate)];
            tmp[y * EVAL_SIDE + x] = acc;
        }
    for (int y = 0; y < EVAL_SIDE; y++)
        for (int x = 0; x < EVAL_SIDE; x++) {
            float acc = 0.0f;
            for (int i = 0; i < k; i++)
                acc += g[i] * tmp[reflect(y + i - p, EVAL_SIDE, replicate) * EVAL_SIDE + x];
            out[y * EVAL_SIDE + x] = acc;
        }
}

static void add_noise(const float *in, float *out, float std, uint64_t *rng)
{
    for (int i = 0; i < EVAL_PIXELS; i += 2) {
        double r = sqrt(-2.0 * log(uniform(rng))), t = 6.283185307179586 * uniform(rng);
        float z[2] = {(float)(r * cos(t)), (float)(r * sin(t))};
        for (int j = 0; j < 2; j++) {
            float v = in[i + j] + std * z[j];
            out[i + j] = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
        }
    }
}

float *eval_images(const fleetctl_dataset *ds, eval_distortion kind, uint64_t seed)
{
    size_t n = ds->count;
    float *clean = malloc(n * EVAL_PIXELS * sizeof(float)), *out = NULL;
    if (!clean)
        return NULL;
    for (size_t i = 0; i < n; i++)
        fleetctl_dataset_image(ds, i, clean + i * EVAL_PIXELS);
    if (kind == EVAL_PRISTINE)
        return clean;
    out = malloc(n * EVAL_PIXELS * sizeof(float));
    uint64_t rng = seed;
    for (size_t i = 0; out && i < n; i++) {
        size_t level = (size_t)(next_u64(&rng) % 5); /* a random strength per image */
        if (kind == EVAL_BLUR)
            blur(clean + i * EVAL_PIXELS, out + i * EVAL_PIXELS, blur_sigmas[level]);
        else
            add_noise(clean + i * EVAL_PIXELS, out + i * EVAL_PIXELS, noise_stds[level], &rng);
    }
    free(clean);
    return out;
}

int eval_run(const char *path, const float *inputs, size_t n, size_t per_input, float **outputs,
             size_t *widths, size_t n_outputs)
{
    enum { batch = 100 };
    fleet_model_options o;
    fleet_model_options_init(&o);
    o.batch_size = batch;
    fleet_model *m = NULL;
    if (fleet_model_load_file(path, &o, &m) != FLEET_MODEL_OK) {
        fprintf(stderr, "fleetctl eval: %s\n", fleet_model_last_error());
        return -1;
    }
    int rc = -1;
    float *scratch[8] = {0};
    fleet_model_tensor_info in;
    fleet_model_input_info(m, 0, &in);
    if (in.count != batch * per_input || fleet_model_output_count(m) < n_outputs) {
        fprintf(stderr, "fleetctl eval: %s: expected %zu inputs and %zu outputs per sample\n", path,
                per_input, n_outputs);
        goto cleanup;
    }
    size_t total = fleet_model_output_count(m);
    for (size_t j = 0; j < total && j < 8; j++) {
        fleet_model_tensor_info t;
        fleet_model_output_info(m, j, &t);
        scratch[j] = malloc(t.count * sizeof(float));
        if (j < n_outputs) {
            widths[j] = t.count / batch;
            outputs[j] = malloc(n * widths[j] * sizeof(float));
        }
        if (!scratch[j] || (j < n_outputs && !outputs[j]))
            goto cleanup;
    }
    for (size_t b = 0; b + batch <= n; b += batch) {
        const float *ins[1] = {inputs + b * per_input};
        if (fleet_model_run(m, ins, scratch) != FLEET_MODEL_OK)
            goto cleanup;
        for (size_t j = 0; j < n_outputs; j++)
            memcpy(outputs[j] + b * widths[j], scratch[j], batch * widths[j] * sizeof(float));
    }
    rc = n % batch == 0 ? 0 : -1;
cleanup:
    for (size_t j = 0; j < 8; j++)
        free(scratch[j]);
    fleet_model_destroy(m);
    return rc;
}

float eval_meta_float(const char *path, const char *key, const char *json_field, float fallback)
{
    fleet_model *m = NULL;
    fleet_model_options o;
    fleet_model_options_init(&o);
    if (fleet_model_load_file(path, &o, &m) != FLEET_MODEL_OK)
        return fallback;
    const char *text = fleet_model_metadata(m, key);
    float v = fallback;
    if (text && json_field) {
        char needle[64];
        snprintf(needle, sizeof needle, "\"%s\":", json_field);
        text = strstr(text, needle);
        if (text)
            text += strlen(needle);
    }
    char *end = NULL;
    if (text) {
        float parsed = strtof(text, &end);
        if (end != text && isfinite(parsed))
            v = parsed;
    }
    fleet_model_destroy(m);
    return v;
}
