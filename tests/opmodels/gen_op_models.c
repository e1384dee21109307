/* gen_op_models.c: writes every op_models case as .onnx plus raw .f32 inputs for ONNX Runtime. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "op_models.h"

/* Files: DIR/<name>.onnx, DIR/<name>.in<k>.f32 (little-endian float32, ONNX layout),
 * DIR/manifest.tsv (name, inputs, outputs, FNV-1a-64 of the model bytes) and DIR/inputs.tsv
 * (name, k, comma-separated dims) which tells reference.js the shapes of the raw inputs. */

static int write_file(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        fprintf(stderr, "gen_op_models: %s: %s\n", path, strerror(errno));
        return -1;
    }
    int ok = fwrite(data, 1, size, f) == size;
    ok = (fclose(f) == 0) && ok;
    if (!ok) {
        fprintf(stderr, "gen_op_models: %s: write failed\n", path);
        return -1;
    }
    return 0;
}

/* The fixtures are little-endian whatever the host. */
static int write_f32(const char *path, const float *values, size_t count)
{
    int rc = -1;
    uint8_t *bytes = malloc(count * 4 + 1);
    if (bytes == NULL) {
        goto cleanup;
    }
    for (size_t i = 0; i < count; i++) {
        uint32_t bits;
        memcpy(&bits, &values[i], sizeof(bits));
        for (size_t j = 0; j < 4; j++) {
            bytes[4 * i + j] = (uint8_t)(bits >> (8 * j));
        }
    }
    rc = write_file(path, bytes, count * 4);
cleanup:
    free(bytes);
    return rc;
}

static int write_case(const char *dir, const op_model *m, FILE *manifest, FILE *shapes)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s.onnx", dir, m->name);
    if (write_file(path, m->bytes, m->size) != 0) {
        return -1;
    }
    for (size_t k = 0; k < m->n_inputs; k++) {
        const op_model_input *in = &m->inputs[k];
        snprintf(path, sizeof(path), "%s/%s.in%zu.f32", dir, m->name, k);
        if (write_f32(path, in->data, in->count) != 0) {
            return -1;
        }
        fprintf(shapes, "%s\t%zu\t", m->name, k);
        for (size_t d = 0; d < in->rank; d++) {
            fprintf(shapes, "%s%zu", d ? "," : "", in->dims[d]);
        }
        fprintf(shapes, "\n");
    }
    fprintf(manifest, "%s\t%zu\t%zu\t%016" PRIx64 "\n", m->name, m->n_inputs, m->n_outputs,
            op_models_fnv1a64(m->bytes, m->size));
    return 0;
}

static FILE *open_table(const char *dir, const char *file, const char *header)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        fprintf(stderr, "gen_op_models: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    fprintf(f, "%s\n", header);
    return f;
}

int main(int argc, char **argv)
{
    int rc = 1;
    FILE *manifest = NULL;
    FILE *shapes = NULL;
    if (argc != 2) {
        fprintf(stderr, "usage: gen_op_models DIR\n");
        goto cleanup;
    }
    manifest = open_table(argv[1], "manifest.tsv",
                          "# name\tinputs\toutputs\tfnv1a64 (regenerate: scripts/gen-op-fixtures)");
    shapes = open_table(argv[1], "inputs.tsv", "# name\tinput\tdims");
    if (manifest == NULL || shapes == NULL) {
        goto cleanup;
    }
    for (size_t i = 0; i < op_models_count(); i++) {
        op_model m;
        if (op_models_build(i, &m) != 0) {
            fprintf(stderr, "gen_op_models: case %zu failed to build\n", i);
            goto cleanup;
        }
        int failed = write_case(argv[1], &m, manifest, shapes);
        op_models_free(&m);
        if (failed) {
            goto cleanup;
        }
    }
    rc = 0;
cleanup:
    if (manifest != NULL && fclose(manifest) != 0) {
        rc = 1;
    }
    if (shapes != NULL && fclose(shapes) != 0) {
        rc = 1;
    }
    return rc;
}
