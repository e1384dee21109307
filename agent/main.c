/* main.c: fleet-agent, the gateway daemon: configuration, signals, the agent's loop. */
#include "fleet_agent.h"
#include "fleet_conf.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

static fleet_agent *running;

static void on_signal(int sig)
{
    (void)sig;
    if (running)
        fleet_agent_stop(running);
}

static const char usage[] =
    "usage: fleet-agent [--config FILE] [--KEY VALUE]...\n"
    "\n"
    "Runs on a gateway of a fleetinfer fleet: announces itself (retained birth, MQTT will,\n"
    "heartbeats), follows its retained assignment, fetches and verifies its variant models,\n"
    "runs them on every request of its stream and publishes only Top-k results.\n"
    "\n"
    "Every configuration key can be given as a flag (flags override the file):\n"
    "  --id ID                 agent id: MQTT client id and user name (required)\n"
    "  --broker URL            broker (default tcp://127.0.0.1:1883)\n"
    "  --password SECRET | --password-file FILE\n"
    "  --prefix PREFIX         topic prefix (default fleet/default)\n"
    "  --cache DIR             model cache and birth sequence (default /var/lib/fleetinfer/ID)\n"
    "  --threads N             intra-op threads per inference (default 0: one thread)\n"
    "  --queue N               requests waiting; the oldest is dropped when full (default 64)\n"
    "  --heartbeat-ms MS       heartbeat period (default 1000)\n"
    "  --log-level LEVEL       error | warn | info | debug (default info)\n"
    "\n"
    "SIGINT/SIGTERM: finish the request in flight, publish the death, exit 0.\n";

int main(int argc, char **argv)
{
    static const char *const keys[] = {"id",           "broker",   "password", "password_file",
                                       "prefix",       "cache",    "threads",  "queue",
                                       "heartbeat_ms", "log_level"};
    fleet_agent_config cfg;
    fleet_agent_config_init(&cfg);
    int rc = fleet_conf_cli(argc, argv, "fleet-agent", usage, keys, sizeof keys / sizeof keys[0],
                            fleet_agent_config_setter, &cfg);
    if (rc != 0)
        return rc == 1 ? 0 : 2;
    if (!cfg.id[0]) {
        fprintf(stderr, "fleet-agent: --id is required\n%s", usage);
        return 2;
    }
    fleet_agent *a = NULL;
    if (fleet_agent_create(&cfg, &a) != FLEET_AGENT_OK) {
        fprintf(stderr, "fleet-agent: %s\n", fleet_agent_last_error());
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    running = a;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    fleet_agent_status st = fleet_agent_run(a);
    running = NULL;
    fleet_agent_destroy(a);
    return st == FLEET_AGENT_OK ? 0 : 1;
}
