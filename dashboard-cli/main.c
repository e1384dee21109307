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
          "  eval [--zoo DIR] [--out FILE]          the model zoo on the test set: models,\n"
          "                                         ensembles, early exits, offloading\n"
          "  demo [--agents N] [--count N] ...      a private fleet: broker, coordinator,\n"
          "                                         agents, the test set streamed through\n"
          "  status [--broker URL] ...              agents and coordinators of a live fleet\n"
          "  infer (--index I | --image F) ...      one request to a live fleet\n"
          "\n"
          "Run 'fleetctl COMMAND --help' for the options of each command.\n",
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
    if (strcmp(argv[1], "eval") == 0)
        return fleetctl_eval_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "demo") == 0)
        return fleetctl_demo_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "status") == 0)
        return fleetctl_status_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "infer") == 0)
        return fleetctl_infer_main(argc - 1, argv + 1);
    fprintf(stderr, "fleetctl: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return FLEETCTL_USAGE;
}
