/* eval.h: pieces of `fleetctl eval`: data sets, batch inference, metadata numbers. */
#ifndef FLEETCTL_EVAL_H
#define FLEETCTL_EVAL_H

#include "dataset.h"
#include "fleet_models.h"

#include <stddef.h>
#include <stdint.h>

#define EVAL_SIDE 28
#define EVAL_PIXELS (EVAL_SIDE * EVAL_SIDE)

typedef enum eval_distortion { EVAL_PRISTINE, EVAL_BLUR, EVAL_NOISE } eval_distortion;

/* The data set as floats (pixel/255), optionally blurred or noised: each image gets a strength
 * drawn from the training levels (blur sigma 1-5, kernel 4*sigma+1; noise std 0.05-0.3) by a
 * fixed seeded generator. malloc'd; NULL when out of memory. */
float *eval_images(const fleetctl_dataset *ds, eval_distortion kind, uint64_t seed);

/* Runs the model at path over n samples of per_input floats; outputs[j] (malloc'd, n * widths[j]
 * floats) receives output j for j < n_outputs. 0 on success. */
int eval_run(const char *path, const float *inputs, size_t n, size_t per_input, float **outputs,
             size_t *widths, size_t n_outputs);

/* A number from the model's metadata: the value of key, or of "json_field": inside it. */
float eval_meta_float(const char *path, const char *key, const char *json_field, float fallback);

#endif
