/* dataset.c: reads IDX files through zlib, so plain and gzipped files both work. */
#include "dataset.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define IDX_MAX_ITEMS 1000000u
#define IDX_MAX_SIDE 1024u

static gzFile idx_open(const char *dir, const char *split, const char *kind, char *path, size_t len)
{
    snprintf(path, len, "%s/%s-%s-ubyte.gz", dir, split, kind);
    gzFile f = gzopen(path, "rb");
    if (!f) {
        snprintf(path, len, "%s/%s-%s-ubyte", dir, split, kind);
        f = gzopen(path, "rb");
    }
    if (!f)
        fprintf(stderr, "fleetctl: cannot open %s[.gz]\n", path);
    return f;
}

static int read_be32(gzFile f, uint32_t *out)
{
    unsigned char b[4];
    if (gzread(f, b, 4) != 4)
        return -1;
    *out = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
    return 0;
}

/* Reads the header (magic, then dims) and the whole body of one IDX file. */
static uint8_t *idx_read(const char *dir, const char *split, const char *kind, uint32_t magic,
                         uint32_t *dims, size_t ndims)
{
    char path[1024];
    uint8_t *body = NULL;
    uint32_t got = 0;
    size_t bytes = 1;
    gzFile f = idx_open(dir, split, kind, path, sizeof path);
    if (!f)
        return NULL;
    if (read_be32(f, &got) != 0 || got != magic) {
        fprintf(stderr, "fleetctl: %s: not an IDX file of the expected kind\n", path);
        goto cleanup;
    }
    for (size_t i = 0; i < ndims; i++) {
        uint32_t limit = i == 0 ? IDX_MAX_ITEMS : IDX_MAX_SIDE;
        if (read_be32(f, &dims[i]) != 0 || dims[i] == 0 || dims[i] > limit) {
            fprintf(stderr, "fleetctl: %s: bad dimension %zu\n", path, i);
            goto cleanup;
        }
        bytes *= dims[i];
    }
    body = malloc(bytes);
    if (!body || gzread(f, body, (unsigned)bytes) != (int)bytes) {
        fprintf(stderr, "fleetctl: %s: truncated (expected %zu bytes of data)\n", path, bytes);
        free(body);
        body = NULL;
    }
cleanup:
    gzclose(f);
    return body;
}

int fleetctl_dataset_load(const char *dir, const char *split, fleetctl_dataset *out)
{
    uint32_t idims[3], ldims[1];
    memset(out, 0, sizeof *out);
    out->pixels = idx_read(dir, split, "images-idx3", 0x00000803u, idims, 3);
    out->labels = out->pixels ? idx_read(dir, split, "labels-idx1", 0x00000801u, ldims, 1) : NULL;
    if (!out->labels) {
        fleetctl_dataset_free(out);
        return -1;
    }
    if (idims[0] != ldims[0]) {
        fprintf(stderr, "fleetctl: %s/%s: %u images but %u labels\n", dir, split, idims[0],
                ldims[0]);
        fleetctl_dataset_free(out);
        return -1;
    }
    out->count = idims[0];
    out->rows = idims[1];
    out->cols = idims[2];
    return 0;
}

void fleetctl_dataset_free(fleetctl_dataset *ds)
{
    free(ds->pixels);
    free(ds->labels);
    memset(ds, 0, sizeof *ds);
}

void fleetctl_dataset_image(const fleetctl_dataset *ds, size_t index, float *out)
{
    size_t n = ds->rows * ds->cols;
    const uint8_t *p = ds->pixels + index * n;
    for (size_t i = 0; i < n; i++)
        out[i] = (float)p[i] / 255.0f;
}
