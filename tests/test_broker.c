/* test_broker.c: the private broker starts with the project's config, enforces it, and stops. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "broker.h"
#include "fleet_link.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int run(const fleetctl_broker *b, const char *user, const char *password, const char *topic)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "mosquitto_pub -q 1 -p %u -u %s -P %s -t '%s' -m x >/dev/null 2>&1",
             b->port, user, password, topic);
    return system(cmd);
}

static void test_start_enforce_stop(void **state)
{
    (void)state;
    const char *agents[] = {"agent-a"};
    fleetctl_broker b;
    assert_int_equal(fleetctl_broker_start(fleetctl_broker_config_dir(), agents, 1, &b), 0);
    assert_true(b.port > 0);
    assert_int_equal(strncmp(b.url, "tcp://127.0.0.1:", 16), 0);
    assert_int_equal(run(&b, "agent-a", FLEETCTL_BROKER_SECRET, "fleet/f/agent/agent-a/state"), 0);
    assert_int_not_equal(run(&b, "agent-a", "wrong-password", "fleet/f/agent/agent-a/state"), 0);
    assert_int_not_equal(run(&b, "nobody", FLEETCTL_BROKER_SECRET, "fleet/f/x"), 0);
    char dir[256];
    snprintf(dir, sizeof dir, "%s", b.dir);
    fleetctl_broker_stop(&b);
    struct stat st;
    assert_int_not_equal(stat(dir, &st), 0);
    assert_int_equal(b.pid, 0);
}

static fleet_link *open_link_as(const fleetctl_broker *b, const char *user)
{
    fleet_link_options o;
    fleet_link_options_init(&o);
    o.url = b->url;
    o.client_id = o.username = user;
    o.password = FLEETCTL_BROKER_SECRET;
    fleet_link *link = NULL;
    assert_int_equal(fleet_link_create(&o, &link), FLEET_LINK_OK);
    return link;
}

/* broker-config/fleet.acl lets an agent publish only on the topics that name it
 * (topics/fleet_topics.h): what it sends elsewhere never reaches a subscriber. The broker
 * handles one client's publishes in order, so once the last of its own messages has arrived,
 * any that the ACL let through would have arrived before it. */
static void test_agents_speak_only_for_themselves(void **state)
{
    (void)state;
    const char *agents[] = {"agent-a", "agent-b"};
    fleetctl_broker b;
    assert_int_equal(fleetctl_broker_start(fleetctl_broker_config_dir(), agents, 2, &b), 0);
    fleet_link *watcher = open_link_as(&b, "operator"); /* reads fleet/# */
    fleet_link *agent = open_link_as(&b, "agent-a");
    assert_int_equal(fleet_link_subscribe(watcher, "fleet/f/#", 1), FLEET_LINK_OK);
    static const char *const denied[] = {
        "fleet/f/agent/agent-b/state",       "fleet/f/agent/agent-b/heartbeat",
        "fleet/f/agent/agent-b/model-get",   "fleet/f/stream/s/result/agent-b",
        "fleet/f/stream/s/result",           "fleet/f/model/get",
        "fleet/f/agent/agent-a/assignment",  "fleet/f/agent/agent-a/chunk",
        "fleet/f/coordinator/agent-a/state", "fleet/f/stream/s/decision",
        "fleet/f/stream/s/request",
    };
    static const char *const own[] = {
        "fleet/f/agent/agent-a/state", "fleet/f/agent/agent-a/heartbeat",
        "fleet/f/agent/agent-a/model-get", "fleet/f/stream/s/result/agent-a"};
    size_t n_own = sizeof own / sizeof own[0];
    for (size_t i = 0; i < sizeof denied / sizeof denied[0]; i++)
        assert_int_equal(fleet_link_publish(agent, denied[i], "forged", 6, 1, 0, NULL),
                         FLEET_LINK_OK);
    for (size_t i = 0; i < n_own; i++)
        assert_int_equal(fleet_link_publish(agent, own[i], "own", 3, 1, 0, NULL), FLEET_LINK_OK);
    for (size_t arrived = 0; arrived < n_own; arrived++) {
        fleet_link_message *m = NULL;
        assert_int_equal(fleet_link_receive(watcher, 10000, &m), FLEET_LINK_OK);
        if (strcmp(m->topic, own[arrived]) != 0)
            fail_msg("agent-a's message on %s reached a subscriber (expected %s)", m->topic,
                     own[arrived]);
        fleet_link_message_free(m);
    }
    fleet_link_destroy(agent);
    fleet_link_destroy(watcher);
    fleetctl_broker_stop(&b);
}

static void test_bad_config_dir_fails_cleanly(void **state)
{
    (void)state;
    fleetctl_broker b;
    assert_int_equal(fleetctl_broker_start("/nonexistent", NULL, 0, &b), -1);
    assert_int_equal(b.pid, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_start_enforce_stop),
        cmocka_unit_test(test_agents_speak_only_for_themselves),
        cmocka_unit_test(test_bad_config_dir_fails_cleanly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
