/* fuzz_model_load.c: libFuzzer target for the ONNX loader and graph compiler. */
#include "fleet_models.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fleet_model_options options;
    fleet_model_options_init(&options);
    options.max_file_bytes = 1 << 20;
    fleet_model *model = NULL;
    if (fleet_model_load_buffer(data, size, &options, &model) != FLEET_MODEL_OK)
        return 0;
    /* A model that loads must also run and survive a batch change. */
    fleet_model_tensor_info in, out;
    if (fleet_model_input_count(model) == 1 && fleet_model_output_count(model) == 1 &&
        fleet_model_input_info(model, 0, &in) == FLEET_MODEL_OK &&
        fleet_model_output_info(model, 0, &out) == FLEET_MODEL_OK && in.count <= (1 << 16) &&
        out.count <= (1 << 16)) {
        static float x[1 << 16], y[1 << 16];
        const float *ins[1] = {x};
        float *outs[1] = {y};
        fleet_model_run(model, ins, outs);
    }
    fleet_model_set_batch_size(model, 2);
    fleet_model_destroy(model);
    return 0;
}
