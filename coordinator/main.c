/* main.c: fleet-coordinator, the daemon: configuration, signals, the event loop. */
#include "fleet_conf.h"
#include "fleet_coordinator.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

static volatile sig_atomic_t stop_requested;
static fleet_coordinator *volatile running;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
    if (running)
        fleet_coordinator_stop(running);
}

static const char usage[] =
    "usage: fleet-coordinator [--config FILE] [--KEY VALUE]...\n"
    "\n"
    "Serves one stream of a fleetinfer fleet: tracks agents (births, deaths, heartbeats),\n"
    "assigns the variant family to live agents, serves the models, and turns the agents'\n"
    "results into one decision per request by its deadline.\n"
    "\n"
    "Every configuration key can be given as a flag (flags override the file):\n"
    "  --id ID                  coordinator id (default main)\n"
    "  --broker URL             broker (default tcp://127.0.0.1:1883)\n"
    "  --user NAME              MQTT user (default coordinator)\n"
    "  --password SECRET | --password_file FILE\n"
    "  --prefix PREFIX          topic prefix (default fleet/default)\n"
    "  --stream NAME            the stream to serve (default default)\n"
    "  --variant FILE.onnx      a variant of the family; repeat in order (variant 0 first)\n"
    "  --rule RULE              mean-softmax | vp-topk | acc-weighted | majority | fusion\n"
    "  --fusion_model FILE.onnx the feature-fusion head (rule fusion)\n"
    "  --k K                    pairs each agent publishes (default: every class)\n"
    "  --replication R          agents per variant (default 1)\n"
    "  --deadline_ms MS         answer budget when a request names none (default 1000)\n"
    "  --heartbeat_timeout_ms MS  silence that counts as death (default 3000)\n"
    "  --max_pending N          requests in flight (default 4096)\n"
    "  --backup 0|1             with other coordinators on the stream, also hold the requests\n"
    "                           this one ranks second for and decide them if their owner\n"
    "                           leaves (default 1)\n"
    "  --mirror_topic TOPIC     also publish each decision as JSON here\n"
    "  --input_filter FILTER    take raw [1,1,28,28] tensors from an existing topic filter\n"
    "  --input_format u8|f32    their format (default u8)\n"
    "  --log_level LEVEL        error | warn | info | debug (default info)\n"
    "\n"
    "SIGINT/SIGTERM: the retained offline state (drained); the requests held then are left\n"
    "to the coordinators holding their backups or decided with what they have; exit 0.\n";

int main(int argc, char **argv)
{
    static const char *const keys[] = {"id",
                                       "broker",
                                       "user",
                                       "password",
                                       "password_file",
                                       "prefix",
                                       "stream",
                                       "variant",
                                       "rule",
                                       "fusion_model",
                                       "k",
                                       "replication",
                                       "deadline_ms",
                                       "heartbeat_timeout_ms",
                                       "max_pending",
                                       "backup",
                                       "mirror_topic",
                                       "input_filter",
                                       "input_format",
                                       "log_level"};
    fleet_coordinator_config cfg;
    fleet_coordinator_config_init(&cfg);
    int rc = fleet_conf_cli(argc, argv, "fleet-coordinator", usage, keys,
                            sizeof keys / sizeof keys[0], fleet_coordinator_config_setter, &cfg);
    if (rc != 0)
        return rc == 1 ? 0 : 2;
    fleet_conf_catch_signals(on_signal); /* before connecting: a SIGTERM then still stops cleanly */
    fleet_coordinator *c = NULL;
    if (fleet_coordinator_create(&cfg, &c) != FLEET_COORDINATOR_OK) {
        fprintf(stderr, "fleet-coordinator: %s\n", fleet_coordinator_last_error());
        return 1;
    }
    running = c;
    if (stop_requested)
        fleet_coordinator_stop(c);
    fleet_coordinator_status st = fleet_coordinator_run(c);
    running = NULL;
    fleet_coordinator_destroy(c);
    return st == FLEET_COORDINATOR_OK ? 0 : 1;
}
