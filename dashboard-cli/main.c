/* main.c: fleetctl, the fleetinfer command line; dispatches to subcommands. */
#include "fleetctl.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *out)
{
    fputs("usage: fleetctl <command> [arguments]\n"
          "\n"
          "commands:\n"
          "  model info  M.onnx                     inputs, outputs, operators, parameters,\n"
          "                                         MACs, metadata and cut candidates\n"
          "  model run   M.onnx --input X.f32       run on raw float32 input, print top-5\n"
          "  model bench M.onnx [--batch B]         median and p99 latency per inference\n"
          "\n"
          "Run 'fleetctl model --help' for the options of each model command.\n",
          out);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return FLEETCTL_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return FLEETCTL_OK;
    }
    if (strcmp(argv[1], "model") == 0)
        return fleetctl_model_main(argc - 1, argv + 1);
    fprintf(stderr, "fleetctl: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return FLEETCTL_USAGE;
}
