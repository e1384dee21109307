/* fleetctl.h: the subcommands of fleetctl, each a main-like function over the libraries. */
#ifndef FLEETCTL_H
#define FLEETCTL_H

#include <stddef.h>
#include <stdint.h>

/* Exit codes shared by every subcommand. */
enum { FLEETCTL_OK = 0, FLEETCTL_FAILED = 1, FLEETCTL_USAGE = 2 };

/* `fleetctl model info|run|bench ...`; argv[0] is "model". */
int fleetctl_model_main(int argc, char **argv);

/* `fleetctl demo`, `fleetctl status`, `fleetctl infer`; argv[0] is the command name. */
int fleetctl_demo_main(int argc, char **argv);
int fleetctl_status_main(int argc, char **argv);
int fleetctl_infer_main(int argc, char **argv);
int fleetctl_eval_main(int argc, char **argv);

/* cli_util.c */
int fleetctl_parse_size(const char *text, size_t min, size_t max, size_t *out);
void *fleetctl_read_file(const char *path, size_t max_bytes, size_t *size);
int fleetctl_write_file(const char *path, const void *data, size_t size);
double fleetctl_now_us(void);
int fleetctl_compare_double(const void *a, const void *b);

#endif
