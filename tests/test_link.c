/* test_link.c: fleet_link against a real Mosquitto: v5 properties, wills, reconnect, limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "broker.h"
#include "fleet_link.h"

#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static fleetctl_broker broker;

static int setup(void **state)
{
    (void)state;
    const char *agents[] = {"agent-a", "agent-b"};
    return fleetctl_broker_start(fleetctl_broker_config_dir(), agents, 2, &broker);
}

static int teardown(void **state)
{
    (void)state;
    fleetctl_broker_stop(&broker);
    return 0;
}

/* A link to the test broker; deliver (with ctx) may be NULL. */
static fleet_link *open_link_delivering(const char *id, const char *user, const char *will_topic,
                                        bool (*deliver)(void *, fleet_link_message *), void *ctx)
{
    fleet_link_options o;
    fleet_link_options_init(&o);
    o.url = broker.url;
    o.client_id = id;
    o.username = user;
    o.password = FLEETCTL_BROKER_SECRET;
    o.will_topic = will_topic;
    o.will_payload = "gone";
    o.will_len = 4;
    o.will_qos = 1;
    o.will_retained = 1;
    o.deliver = deliver;
    o.deliver_ctx = ctx;
    fleet_link *link = NULL;
    if (fleet_link_create(&o, &link) != FLEET_LINK_OK)
        fail_msg("link %s: %s", id, fleet_link_last_error());
    return link;
}

static fleet_link *open_link(const char *id, const char *user, const char *will_topic)
{
    return open_link_delivering(id, user, will_topic, NULL, NULL);
}

static fleet_link_message *expect_message(fleet_link *link, const char *topic)
{
    fleet_link_message *m = NULL;
    fleet_link_status st = fleet_link_receive(link, 5000, &m);
    if (st != FLEET_LINK_OK)
        fail_msg("no message on %s: %s", topic, fleet_link_strerror(st));
    assert_string_equal(m->topic, topic);
    return m;
}

static void test_properties_travel(void **state)
{
    (void)state;
    fleet_link *coord = open_link("coord-1", "coordinator", NULL);
    fleet_link *client = open_link("client-1", "client", NULL);
    assert_int_equal(fleet_link_subscribe(coord, "fleet/t/stream/+/request", 1), FLEET_LINK_OK);
    fleet_link_props p = {.response_topic = "reply/client/1",
                          .correlation = "\x01\x00\x02",
                          .correlation_len = 3,
                          .expiry_s = 7};
    assert_int_equal(fleet_link_publish(client, "fleet/t/stream/s1/request", "abc", 3, 1, 0, &p),
                     FLEET_LINK_OK);
    fleet_link_message *m = expect_message(coord, "fleet/t/stream/s1/request");
    assert_int_equal(m->len, 3);
    assert_memory_equal(m->payload, "abc", 3);
    assert_string_equal(m->response_topic, "reply/client/1");
    assert_int_equal(m->correlation_len, 3);
    assert_memory_equal(m->correlation, "\x01\x00\x02", 3);
    assert_true(m->expiry_s >= 6 && m->expiry_s <= 7);
    fleet_link_message_free(m);
    fleet_link_message *none = NULL;
    assert_int_equal(fleet_link_receive(coord, 50, &none), FLEET_LINK_ETIMEOUT);
    fleet_link_destroy(client);
    fleet_link_destroy(coord);
}

/* A process that dies without DISCONNECT leaves its will (retained) behind. */
static void test_will_on_crash_but_not_on_clean_exit(void **state)
{
    (void)state;
    fleet_link *watcher = open_link("watcher", "coordinator", NULL);
    assert_int_equal(fleet_link_subscribe(watcher, "fleet/t/agent/+/state", 1), FLEET_LINK_OK);
    /* Paho's threads do not survive fork(), so the crashing agent is a fresh process. The path
     * is read, not exec'd through /proc/self/exe, which under valgrind is valgrind itself. */
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    assert_true(n > 0);
    self[n] = '\0';
    pid_t pid = fork();
    if (pid == 0) {
        execl(self, "test_link", "--crashing-agent", broker.url, (char *)NULL);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    fleet_link_message *m = expect_message(watcher, "fleet/t/agent/agent-a/state");
    assert_memory_equal(m->payload, "gone", 4);
    fleet_link_message_free(m);
    fleet_link *clean = open_link("agent-b", "agent-b", "fleet/t/agent/agent-b/state");
    fleet_link_destroy(clean);
    fleet_link_message *none = NULL;
    if (fleet_link_receive(watcher, 500, &none) == FLEET_LINK_OK)
        fail_msg("unexpected %s: %.*s", none->topic, (int)none->len, (const char *)none->payload);
    fleet_link_destroy(watcher);
}

static void test_bad_credentials_and_arguments(void **state)
{
    (void)state;
    fleet_link_options o;
    fleet_link_options_init(&o);
    o.url = broker.url;
    o.client_id = "intruder";
    o.username = "coordinator";
    o.password = "wrong";
    o.connect_timeout_s = 2;
    fleet_link *link = NULL;
    assert_int_equal(fleet_link_create(&o, &link), FLEET_LINK_ECONNECT);
    assert_null(link);
    o.url = NULL;
    assert_int_equal(fleet_link_create(&o, &link), FLEET_LINK_EINVAL);
    o.url = "tcp://127.0.0.1:1"; /* nothing listens there */
    o.password = FLEETCTL_BROKER_SECRET;
    assert_int_equal(fleet_link_create(&o, &link), FLEET_LINK_ECONNECT);
    fleet_link_destroy(NULL);
}

/* Destroying a link right after a burst delivers all of it: Paho queues QoS 1 publishes beyond
 * the broker's receive maximum (max_inflight_messages, 100 in broker-config), and a disconnect
 * would drop them (without destroy's drain, this burst's tail did not arrive).
 * Paho 1.3 sends queued ones only about once a second, a window at a time, so the drain (2 s
 * at most) covers a burst of a few windows, not more. */
static void test_destroy_sends_what_is_queued(void **state)
{
    (void)state;
    enum { burst = 300 };
    fleet_link *watcher = open_link("burst-watcher", "coordinator", NULL);
    assert_int_equal(fleet_link_subscribe(watcher, "fleet/t/stream/s1/result/agent-a", 1),
                     FLEET_LINK_OK);
    fleet_link *agent = open_link("agent-a", "agent-a", NULL);
    for (int i = 0; i < burst; i++) {
        char payload[16];
        int n = snprintf(payload, sizeof payload, "%d", i);
        assert_int_equal(fleet_link_publish(agent, "fleet/t/stream/s1/result/agent-a", payload,
                                            (size_t)n, 1, 0, NULL),
                         FLEET_LINK_OK);
    }
    fleet_link_destroy(agent);
    for (int i = 0; i < burst; i++) {
        fleet_link_message *m = expect_message(watcher, "fleet/t/stream/s1/result/agent-a");
        char want[16];
        snprintf(want, sizeof want, "%d", i);
        assert_int_equal(m->len, strlen(want));
        assert_memory_equal(m->payload, want, m->len); /* in order, none lost */
        fleet_link_message_free(m);
    }
    fleet_link_destroy(watcher);
}

static void test_close_wakes_receivers(void **state)
{
    (void)state;
    fleet_link *link = open_link("closer", "operator", NULL);
    fleet_link_close(link);
    fleet_link_message *m = NULL;
    assert_int_equal(fleet_link_receive(link, -1, &m), FLEET_LINK_ECLOSED);
    fleet_link_destroy(link);
}

/* Subscribing to the same filter again (an agent does for every assignment of its stream)
 * takes no new place among the link's 32. */
static void test_repeated_subscriptions_take_one_place(void **state)
{
    (void)state;
    fleet_link *link = open_link("repeat-sub", "client", NULL);
    for (int i = 0; i < 40; i++)
        assert_int_equal(fleet_link_subscribe(link, "reply/client/repeat-sub", 0), FLEET_LINK_OK);
    assert_int_equal(fleet_link_subscribe(link, "reply/client/other", 1), FLEET_LINK_OK);
    fleet_link_destroy(link);
}

/* deliver keeps what it wants (on Paho's thread) and declines the rest into the queue. */
typedef struct delivery_log {
    pthread_mutex_t lock;
    int taken;
    char last[64];
} delivery_log;

static bool take_requests(void *ctx, fleet_link_message *m)
{
    delivery_log *log = ctx;
    if (!strstr(m->topic, "/request"))
        return false;
    pthread_mutex_lock(&log->lock);
    log->taken++;
    snprintf(log->last, sizeof log->last, "%.*s", (int)m->len, (const char *)m->payload);
    pthread_mutex_unlock(&log->lock);
    fleet_link_message_free(m);
    return true;
}

static void test_deliver_takes_or_declines(void **state)
{
    (void)state;
    delivery_log log = {.lock = PTHREAD_MUTEX_INITIALIZER};
    fleet_link *coord =
        open_link_delivering("coord-deliver", "coordinator", NULL, take_requests, &log);
    fleet_link *client = open_link("coord-pub", "coordinator", NULL);
    assert_int_equal(fleet_link_subscribe(coord, "fleet/t/stream/+/+", 0), FLEET_LINK_OK);
    assert_int_equal(fleet_link_publish(client, "fleet/t/stream/s1/request", "r1", 2, 0, 0, NULL),
                     FLEET_LINK_OK);
    assert_int_equal(fleet_link_publish(client, "fleet/t/stream/s1/decision", "d1", 2, 0, 0, NULL),
                     FLEET_LINK_OK);
    fleet_link_message *m = expect_message(coord, "fleet/t/stream/s1/decision");
    fleet_link_message_free(m);
    pthread_mutex_lock(&log.lock); /* the request was published first, on the same session */
    assert_int_equal(log.taken, 1);
    assert_string_equal(log.last, "r1");
    pthread_mutex_unlock(&log.lock);
    fleet_link_stats stats;
    fleet_link_get_stats(coord, &stats);
    assert_int_equal(stats.received, 2);
    fleet_link_close(coord); /* no delivery after this returns */
    assert_int_equal(fleet_link_publish(client, "fleet/t/stream/s1/request", "r2", 2, 0, 0, NULL),
                     FLEET_LINK_OK);
    /* The closed link still receives it (and counts it dropped), but delivers nothing. */
    double until = fleet_link_now_us() + 5e6;
    do
        fleet_link_get_stats(coord, &stats);
    while (stats.received < 3 && fleet_link_now_us() < until && sched_yield() == 0);
    assert_int_equal(stats.received, 3);
    assert_int_equal(stats.dropped_full, 1);
    pthread_mutex_lock(&log.lock);
    assert_int_equal(log.taken, 1);
    pthread_mutex_unlock(&log.lock);
    fleet_link_destroy(coord);
    fleet_link_destroy(client);
}

/* Child mode: connect with a will (creation returns after the CONNACK), then die by SIGKILL
 * without a DISCONNECT. */
static int crashing_agent(const char *url)
{
    broker.port = 0;
    snprintf(broker.url, sizeof broker.url, "%s", url);
    fleet_link *agent = open_link("agent-a", "agent-a", "fleet/t/agent/agent-a/state");
    (void)agent; /* never closed: the point is to vanish */
    kill(getpid(), SIGKILL);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--crashing-agent") == 0)
        return crashing_agent(argv[2]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_properties_travel),
        cmocka_unit_test(test_will_on_crash_but_not_on_clean_exit),
        cmocka_unit_test(test_bad_credentials_and_arguments),
        cmocka_unit_test(test_destroy_sends_what_is_queued),
        cmocka_unit_test(test_close_wakes_receivers),
        cmocka_unit_test(test_repeated_subscriptions_take_one_place),
        cmocka_unit_test(test_deliver_takes_or_declines),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
