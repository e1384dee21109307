/* family.c: reads the variant models, their digests and the weights their metadata implies. */
#include "internal.h"

#include "fleet_models.h"

#include <openssl/evp.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAMILY_MAX_MODEL_BYTES ((size_t)64 << 20)

void coord_sha256_hex(const uint8_t *data, size_t size, char *hex)
{
    unsigned char digest[32];
    unsigned int len = 0;
    EVP_Digest(data, size, digest, &len, EVP_sha256(), NULL);
    for (unsigned int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", digest[i]);
}

static float meta_float(const fleet_model *m, const char *key, float fallback)
{
    const char *text = fleet_model_metadata(m, key);
    char *end = NULL;
    float v = text ? strtof(text, &end) : fallback;
    return text && end != text && isfinite(v) ? v : fallback;
}

static fleet_coordinator_status read_file(const char *path, uint8_t **bytes, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return coord_fail(FLEET_COORDINATOR_EMODEL, "%s: cannot open", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    fleet_coordinator_status st = FLEET_COORDINATOR_OK;
    if (n <= 0 || (size_t)n > FAMILY_MAX_MODEL_BYTES) {
        st = coord_fail(FLEET_COORDINATOR_EMODEL, "%s: empty or larger than 64 MiB", path);
    } else if (!(*bytes = malloc((size_t)n))) {
        st = coord_fail(FLEET_COORDINATOR_ENOMEM, "out of memory for %s", path);
    } else if (fread(*bytes, 1, (size_t)n, f) != (size_t)n) {
        free(*bytes);
        *bytes = NULL;
        st = coord_fail(FLEET_COORDINATOR_EMODEL, "%s: read failed", path);
    }
    *size = (size_t)n;
    fclose(f);
    return st;
}

/* Loads one variant: the bytes to serve, and the model itself to check it runs. */
static fleet_coordinator_status load_variant(const char *path, coord_variant *v, float *resolution,
                                             float *width)
{
    fleet_coordinator_status st = read_file(path, &v->bytes, &v->size);
    if (st != FLEET_COORDINATOR_OK)
        return st;
    coord_sha256_hex(v->bytes, v->size, v->digest);
    fleet_model *m = NULL;
    if (fleet_model_load_buffer(v->bytes, v->size, NULL, &m) != FLEET_MODEL_OK)
        return coord_fail(FLEET_COORDINATOR_EMODEL, "%s: %s", path, fleet_model_last_error());
    fleet_model_tensor_info in, out;
    size_t inputs = fleet_model_input_count(m);
    fleet_model_input_info(m, 0, &in);
    v->input_count = inputs == 1 ? in.count : 0;
    fleet_model_output_info(m, 0, &out);
    v->classes = out.count;
    if (fleet_model_output_count(m) > 1 && fleet_model_output_info(m, 1, &out) == FLEET_MODEL_OK)
        v->feature_count = out.count;
    v->val_accuracy = meta_float(m, "val_accuracy", 1.0f);
    v->temperature = meta_float(m, "temperature", 1.0f);
    *resolution = meta_float(m, "input_resolution", 28.0f);
    *width = meta_float(m, "width", 0.35f);
    fleet_model_destroy(m);
    if (inputs != 1)
        return coord_fail(FLEET_COORDINATOR_EMODEL, "%s: %zu inputs (a variant has one)", path,
                          inputs);
    if (v->classes == 0 || v->classes > COORD_MAX_CLASSES)
        return coord_fail(FLEET_COORDINATOR_EMODEL, "%s: %zu classes (1 to %d supported)", path,
                          v->classes, COORD_MAX_CLASSES);
    return FLEET_COORDINATOR_OK;
}

/* The head takes the variants' features concatenated in variant order and gives class scores;
 * the variants (loaded first) must all have features. */
static fleet_coordinator_status load_fusion(const fleet_coordinator_config *cfg,
                                            coord_family *family)
{
    if (!cfg->fusion_model[0])
        return coord_fail(FLEET_COORDINATOR_EINVAL, "rule fusion needs a fusion_model");
    size_t total = 0;
    for (size_t i = 0; i < family->count; i++) {
        coord_variant *v = &family->variants[i];
        if (v->feature_count == 0 || v->feature_count > FLEET_TOPICS_MAX_TENSOR)
            return coord_fail(FLEET_COORDINATOR_EMODEL,
                              "%s: rule fusion needs a second output (the features)",
                              cfg->variants[i]);
        v->feature_offset = total;
        total += v->feature_count;
    }
    fleet_coordinator_status st =
        read_file(cfg->fusion_model, &family->fusion_bytes, &family->fusion_size);
    if (st != FLEET_COORDINATOR_OK)
        return st;
    fleet_model *m = NULL;
    if (fleet_model_load_buffer(family->fusion_bytes, family->fusion_size, NULL, &m) !=
        FLEET_MODEL_OK)
        return coord_fail(FLEET_COORDINATOR_EMODEL, "%s: %s", cfg->fusion_model,
                          fleet_model_last_error());
    fleet_model_tensor_info in, out;
    fleet_model_input_info(m, 0, &in);
    fleet_model_output_info(m, 0, &out);
    family->fusion_inputs = in.count;
    family->fusion_temperature = meta_float(m, "temperature", 1.0f);
    size_t inputs = fleet_model_input_count(m);
    fleet_model_destroy(m);
    if (inputs != 1 || in.count != total || out.count != family->classes)
        return coord_fail(FLEET_COORDINATOR_EMODEL,
                          "%s: takes %zu input(s) of %zu values and gives %zu scores; the "
                          "family has %zu feature values and %zu classes",
                          cfg->fusion_model, inputs, in.count, out.count, total, family->classes);
    return FLEET_COORDINATOR_OK;
}

fleet_coordinator_status coord_family_load(const fleet_coordinator_config *cfg,
                                           coord_family *family)
{
    float resolution[FLEET_COORDINATOR_MAX_VARIANTS], width[FLEET_COORDINATOR_MAX_VARIANTS];
    float max_resolution = 0.0f;
    memset(family, 0, sizeof *family);
    if (cfg->n_variants == 0)
        return coord_fail(FLEET_COORDINATOR_EINVAL, "no variant models configured");
    for (size_t i = 0; i < cfg->n_variants; i++) {
        family->count++;
        fleet_coordinator_status st =
            load_variant(cfg->variants[i], &family->variants[i], &resolution[i], &width[i]);
        if (st != FLEET_COORDINATOR_OK)
            return st;
        if (i > 0 && family->variants[i].classes != family->variants[0].classes)
            return coord_fail(FLEET_COORDINATOR_EMODEL, "%s: %zu classes, variant 0 has %zu",
                              cfg->variants[i], family->variants[i].classes,
                              family->variants[0].classes);
        if (i > 0 && family->variants[i].input_count != family->variants[0].input_count)
            return coord_fail(FLEET_COORDINATOR_EMODEL,
                              "%s: %zu input values, variant 0 takes %zu (every variant reads the "
                              "same request)",
                              cfg->variants[i], family->variants[i].input_count,
                              family->variants[0].input_count);
        max_resolution = fmaxf(max_resolution, resolution[i]);
    }
    for (size_t i = 0; i < family->count; i++) {
        float w = width[i] / 0.35f;
        family->variants[i].vp_weight = resolution[i] / max_resolution * w * w;
    }
    family->classes = family->variants[0].classes;
    family->input_count = family->variants[0].input_count;
    return cfg->fusion ? load_fusion(cfg, family) : FLEET_COORDINATOR_OK;
}

void coord_family_free(coord_family *family)
{
    for (size_t i = 0; i < family->count; i++)
        free(family->variants[i].bytes);
    free(family->fusion_bytes);
    memset(family, 0, sizeof *family);
}

uint32_t coord_family_named(const coord_family *family, const fleet_msg_assignment *assignment)
{
    uint32_t named = 0;
    for (size_t i = 0; i < assignment->n_variants; i++) {
        uint32_t v = assignment->variants[i].variant;
        if (v < family->count &&
            strcmp(assignment->variants[i].digest, family->variants[v].digest) == 0)
            named |= 1u << v;
    }
    return named;
}
