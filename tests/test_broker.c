/* test_broker.c: the private broker starts with the project's config, enforces it, and stops. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "broker.h"

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
        cmocka_unit_test(test_bad_config_dir_fails_cleanly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
