/* broker.h: a private Mosquitto on a free loopback port, for `fleetctl demo` and the tests. */
#ifndef FLEETCTL_BROKER_H
#define FLEETCTL_BROKER_H

#include <stdint.h>
#include <sys/types.h>

/* Every user in broker-config/fleet.acl gets this password on a private broker. */
#define FLEETCTL_BROKER_SECRET "fleet-private-broker"

typedef struct fleetctl_broker {
    pid_t pid;
    uint16_t port;
    char dir[256]; /* private directory: config, passwords, log; removed on stop */
    char url[64];  /* "tcp://127.0.0.1:PORT" */
} fleetctl_broker;

/* Starts mosquitto with config_dir/test.conf.in (the project's broker-config) on a free port,
 * with users coordinator, operator, client, camera, dashboard and the given agent ids, all with
 * FLEETCTL_BROKER_SECRET. Waits until it accepts connections. Returns 0, or -1 with a message
 * on stderr (mosquitto's own log is kept in the message when it fails to start). */
int fleetctl_broker_start(const char *config_dir, const char *const *agents, int n_agents,
                          fleetctl_broker *out);

/* Stops the broker (SIGTERM, then SIGKILL after 2 s) and removes its directory. */
void fleetctl_broker_stop(fleetctl_broker *b);

/* broker-config/ of this source tree, or $FLEET_BROKER_CONFIG when set. */
const char *fleetctl_broker_config_dir(void);

#endif
