/* dataset.h: IDX image/label files (MNIST and Fashion-MNIST layout, optionally gzipped). */
#ifndef FLEETCTL_DATASET_H
#define FLEETCTL_DATASET_H

#include <stddef.h>
#include <stdint.h>

#define FLEETCTL_DATASET_DEFAULT_DIR "/usr/share/datasets/fashion-mnist"

typedef struct fleetctl_dataset {
    size_t count;    /* images */
    size_t rows;     /* 28 */
    size_t cols;     /* 28 */
    uint8_t *pixels; /* count * rows * cols, row-major; owned */
    uint8_t *labels; /* count; owned */
} fleetctl_dataset;

/* Loads DIR/SPLIT-images-idx3-ubyte[.gz] and DIR/SPLIT-labels-idx1-ubyte[.gz] (split is
 * "t10k" or "train"). Returns 0, or -1 with a message on stderr. */
int fleetctl_dataset_load(const char *dir, const char *split, fleetctl_dataset *out);
void fleetctl_dataset_free(fleetctl_dataset *ds);

/* Image index as float32 pixel/255 into out (rows * cols floats). */
void fleetctl_dataset_image(const fleetctl_dataset *ds, size_t index, float *out);

#endif
