/* op_models.h: the per-operator conformance models, built in memory with their input data. */
#ifndef OP_MODELS_H
#define OP_MODELS_H

#include <stddef.h>
#include <stdint.h>

#define OP_MODEL_MAX_INPUTS 4
#define OP_MODEL_MAX_DIMS 6

/* Out-of-memory policy: allocations abort the process (test and generator code only). */

typedef struct op_model_input {
    size_t rank;
    size_t dims[OP_MODEL_MAX_DIMS]; /* dims[0] is the batch */
    size_t count;                   /* elements over the whole batch */
    float *data;                    /* owned by the op_model; ONNX layout */
} op_model_input;

typedef struct op_model {
    const char *name; /* static: "conv_k3_s2_pad1" */
    uint8_t *bytes;   /* serialized ModelProto, owned */
    size_t size;
    size_t batch;    /* dims[0] of every input below */
    int batch_fixed; /* the graph pins dimension 0 (Resize by sizes): no other batch runs */
    size_t n_inputs;
    op_model_input inputs[OP_MODEL_MAX_INPUTS];
    size_t n_outputs;
} op_model;

size_t op_models_count(void);

/* Name of case index, or NULL past the end; static storage. */
const char *op_models_name(size_t index);

/* Builds case index into *out. The same index always gives the same bytes and data.
 * Returns 0, or -1 (and leaves *out zeroed) when index is out of range. */
int op_models_build(size_t index, op_model *out);

/* Frees what op_models_build allocated and zeroes *model. NULL is a no-op. */
void op_models_free(op_model *model);

/* FNV-1a 64-bit, the fingerprint manifest.tsv stores for each model. */
uint64_t op_models_fnv1a64(const void *data, size_t size);

#endif
