/* op_cases.h: internal to op_models; the declarative description of each test graph. */
#ifndef OPMODELS_OP_CASES_H
#define OPMODELS_OP_CASES_H

#include <stddef.h>
#include <stdint.h>

enum {
    OPM_MAX_NODE_INPUTS = 6,
    OPM_MAX_NODE_ATTRS = 6,
    OPM_MAX_DIMS = 6,
};

/* Where a node input comes from. */
typedef enum opm_source {
    OPM_END = 0,     /* terminates the input list */
    OPM_GRAPH_INPUT, /* a new graph input, random data of shape dims (dims[0] = batch) */
    OPM_INPUT_REF,   /* graph input number ref again */
    OPM_WEIGHT,      /* a new initializer, random unless values are given */
    OPM_WEIGHT_I64,  /* a new 1-D int64 initializer with the given values */
    OPM_CONSTANT,    /* a new Constant node (value attribute), random unless values given */
    OPM_PREVIOUS,    /* the output of the preceding node */
    OPM_NODE_REF,    /* the output of node number ref */
    OPM_ABSENT,      /* an omitted optional input: "" */
} opm_source;

typedef struct opm_tensor {
    opm_source source;
    size_t rank;
    int64_t dims[OPM_MAX_DIMS];
    float lo, hi;        /* range of random values; both 0 means [-1, 1] */
    size_t count;        /* number of explicit values */
    const float *values; /* explicit float values, or NULL for random */
    const int64_t *ints; /* values of OPM_WEIGHT_I64 */
    size_t ref;
} opm_tensor;

typedef enum opm_attr_kind {
    OPM_ATTR_END = 0,
    OPM_ATTR_INT,
    OPM_ATTR_FLOAT,
    OPM_ATTR_STRING,
    OPM_ATTR_INTS,
    OPM_ATTR_FLOATS,
} opm_attr_kind;

typedef struct opm_attr {
    const char *name;
    opm_attr_kind kind;
    int64_t i;
    float f;
    const char *s;
    size_t count;
    const int64_t *ints;
    const float *floats;
} opm_attr;

typedef struct opm_node {
    const char *op;
    opm_tensor in[OPM_MAX_NODE_INPUTS];
    opm_attr attrs[OPM_MAX_NODE_ATTRS];
    int graph_output; /* when no node of the case sets it, the last node is the output */
} opm_node;

enum {
    OPM_FLAG_FIXED_BATCH = 1, /* declare dim 0 of inputs as 2, not "N" */
    OPM_FLAG_TYPED_DATA = 2,  /* initializers in float_data/int64_data, not raw_data */
};

typedef struct opm_case {
    const char *name;
    int64_t opset;
    unsigned flags;
    size_t n_nodes;
    const opm_node *nodes;
} opm_case;

extern const opm_case opm_cases[];
extern const size_t opm_case_count;

#endif
