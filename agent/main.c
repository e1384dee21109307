/* main.c: fleet-agent, the gateway daemon: configuration, signals, the agent's loop. */
#include "fleet_agent.h"
#include "fleet_conf.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

/* What a signal handler may touch: a flag, and an agent whose stop is async-signal-safe. */
static volatile sig_atomic_t stop_requested;
static fleet_agent *volatile running;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
    if (running)
        fleet_agent_stop(running);
}

static const char usage[] =
    "usage: fleet-agent [--config FILE] [--KEY VALUE]...\n"
    "\n"
    "Runs on a gateway of a fleetinfer fleet: announces itself (retained birth, MQTT will,\n"
    "heartbeats), follows its retained assignment, fetches and verifies its variant models,\n"
    "runs them on every request of its stream and publishes only Top-k results (or int8\n"
    "features). See docs/agent.md.\n"
    "\n"
    "  --config FILE           read `key = value` lines first; flags override them\n"
    "Every configuration key is also a flag (dashes or underscores):\n"
    "  --id ID                 agent id: MQTT client id and user name (required)\n"
    "  --broker URL            broker (default tcp://127.0.0.1:1883; ssl://... for TLS)\n"
    "  --user NAME             MQTT user name (default: the id, as the broker ACL expects)\n"
    "  --password SECRET | --password-file FILE   (the file's first line)\n"
    "  --prefix PREFIX         topic prefix (default fleet/default)\n"
    "  --cache DIR             model cache and birth sequence (default /var/lib/fleetinfer/ID)\n"
    "  --threads N             intra-op threads per inference (default 0: one thread)\n"
    "  --queue N               requests waiting; the oldest is dropped when full (default 64)\n"
    "  --heartbeat-ms MS       heartbeat period (default 1000)\n"
    "  --log-level LEVEL       error | warn | info | debug (default info)\n"
    "  --help                  this text\n"
    "\n"
    "SIGINT/SIGTERM: finish the request in flight, publish the death, disconnect, exit 0.\n"
    "Exit status: 0 clean stop, 1 start-up failure, 2 usage or configuration error.\n";

int main(int argc, char **argv)
{
    static const char *const keys[] = {"id",       "broker", "user",    "password", "password_file",
                                       "prefix",   "cache",  "threads", "queue",    "heartbeat_ms",
                                       "log_level"};
    fleet_agent_config cfg;
    fleet_agent_config_init(&cfg);
    int rc = fleet_conf_cli(argc, argv, "fleet-agent", usage, keys, sizeof keys / sizeof keys[0],
                            fleet_agent_config_setter, &cfg);
    if (rc != 0)
        return rc == 1 ? 0 : 2;
    if (!cfg.id[0]) {
        fprintf(stderr, "fleet-agent: an id is required (--id or `id =` in the config)\n");
        return 2;
    }
    fleet_conf_catch_signals(on_signal); /* before connecting: a SIGTERM then still stops cleanly */
    fleet_agent *a = NULL;
    if (fleet_agent_create(&cfg, &a) != FLEET_AGENT_OK) {
        fprintf(stderr, "fleet-agent: cannot start: %s\n", fleet_agent_last_error());
        return 1;
    }
    running = a;
    if (stop_requested)
        fleet_agent_stop(a);
    fleet_agent_status st = fleet_agent_run(a);
    running = NULL;
    fleet_agent_destroy(a);
    return st == FLEET_AGENT_OK ? 0 : 1;
}
