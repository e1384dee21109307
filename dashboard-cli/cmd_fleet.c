/* cmd_fleet.c: `fleetctl status` and `fleetctl infer`, an operator's window on a live fleet. */
#include "fleetctl.h"

#include "dataset.h"
#include "fleet_ops.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct fleet_args {
    const char *broker, *user, *password, *prefix, *stream, *image, *dataset;
    size_t index, wait_ms;
    int has_index;
} fleet_args;

static const char fleet_usage[] =
    "usage: fleetctl status [--broker URL] [--user U] [--password P] [--prefix P] [--wait-ms MS]\n"
    "       fleetctl infer  [--broker URL] [--user U] [--password P] [--prefix P] [--stream S]\n"
    "                       (--index I [--dataset DIR] | --image FILE) [--wait-ms MS]\n"
    "\n"
    "status  prints the coordinators and agents (state, variants, latency, counters) as the\n"
    "        retained topics and heartbeats describe them, collected for --wait-ms (1000).\n"
    "infer   sends one image, a Fashion-MNIST test-set index or a raw 784-byte u8 file, as an\n"
    "        MQTT v5 request with a response topic, and prints the decision as JSON.\n"
    "Defaults: --broker tcp://127.0.0.1:1883 --user operator --prefix fleet/default\n"
    "          --stream default; the password may also come from $FLEET_PASSWORD.\n";

static int parse_fleet_args(int argc, char **argv, fleet_args *a)
{
    static const struct option options[] = {{"broker", required_argument, NULL, 'b'},
                                            {"user", required_argument, NULL, 'u'},
                                            {"password", required_argument, NULL, 'p'},
                                            {"prefix", required_argument, NULL, 'P'},
                                            {"stream", required_argument, NULL, 's'},
                                            {"image", required_argument, NULL, 'i'},
                                            {"index", required_argument, NULL, 'n'},
                                            {"dataset", required_argument, NULL, 'D'},
                                            {"wait-ms", required_argument, NULL, 'w'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    *a = (fleet_args){.broker = "tcp://127.0.0.1:1883",
                      .user = "operator",
                      .password = getenv("FLEET_PASSWORD"),
                      .prefix = "fleet/default",
                      .stream = "default",
                      .dataset = FLEETCTL_DATASET_DEFAULT_DIR,
                      .wait_ms = 1000};
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (c) {
        case 'b':
            a->broker = optarg;
            break;
        case 'u':
            a->user = optarg;
            break;
        case 'p':
            a->password = optarg;
            break;
        case 'P':
            a->prefix = optarg;
            break;
        case 's':
            a->stream = optarg;
            break;
        case 'i':
            a->image = optarg;
            break;
        case 'D':
            a->dataset = optarg;
            break;
        case 'n':
            if (fleetctl_parse_size(optarg, 0, 1000000, &a->index) != 0)
                return -1;
            a->has_index = 1;
            break;
        case 'w':
            if (fleetctl_parse_size(optarg, 1, 600000, &a->wait_ms) != 0)
                return -1;
            break;
        case 'h':
            fputs(fleet_usage, stdout);
            exit(FLEETCTL_OK);
        default:
            return -1;
        }
    }
    return optind == argc ? 0 : -1;
}

int fleetctl_status_main(int argc, char **argv)
{
    fleet_args a;
    if (parse_fleet_args(argc, argv, &a) != 0) {
        fputs(fleet_usage, stderr);
        return FLEETCTL_USAGE;
    }
    char client[64];
    snprintf(client, sizeof client, "fleetctl-status-%d", (int)getpid());
    fleet_link *link = fleet_ops_connect(a.broker, a.user, a.password, a.prefix, client);
    if (!link)
        return FLEETCTL_FAILED;
    fleet_ops_view view;
    memset(&view, 0, sizeof view);
    double until = fleet_link_now_us() + 1e3 * (double)a.wait_ms;
    while (fleet_link_now_us() < until) {
        fleet_link_message *m = NULL;
        if (fleet_link_receive(link, 20, &m) == FLEET_LINK_OK) {
            fleet_ops_update(&view, a.prefix, m);
            fleet_link_message_free(m);
        }
    }
    fleet_link_destroy(link);
    if (view.n_agents == 0 && view.n_coordinators == 0)
        printf("no fleet state under '%s'\n", a.prefix);
    fleet_ops_print(&view, stdout);
    return FLEETCTL_OK;
}

static int load_image(const fleet_args *a, uint8_t *pixels)
{
    if (a->image) {
        size_t size = 0;
        uint8_t *data = fleetctl_read_file(a->image, 1 << 20, &size);
        if (!data)
            return -1;
        if (size != 784)
            fprintf(stderr, "fleetctl infer: %s has %zu bytes; a raw 28x28 u8 image has 784\n",
                    a->image, size);
        else
            memcpy(pixels, data, 784);
        free(data);
        return size == 784 ? 0 : -1;
    }
    fleetctl_dataset ds;
    if (fleetctl_dataset_load(a->dataset, "t10k", &ds) != 0)
        return -1;
    int ok = a->index < ds.count;
    if (ok)
        memcpy(pixels, ds.pixels + a->index * 784, 784);
    else
        fprintf(stderr, "fleetctl infer: index %zu is past the %zu test images\n", a->index,
                ds.count);
    if (ok)
        printf("test image %zu, label %u\n", a->index, ds.labels[a->index]);
    fleetctl_dataset_free(&ds);
    return ok ? 0 : -1;
}

int fleetctl_infer_main(int argc, char **argv)
{
    fleet_args a;
    uint8_t pixels[784];
    if (parse_fleet_args(argc, argv, &a) != 0 || (!a.image && !a.has_index)) {
        fputs(fleet_usage, stderr);
        return FLEETCTL_USAGE;
    }
    if (load_image(&a, pixels) != 0)
        return FLEETCTL_FAILED;
    char client[64], reply[128], id[48], topic[FLEET_TOPICS_MAX_TOPIC];
    snprintf(client, sizeof client, "fleetctl-infer-%d", (int)getpid());
    snprintf(reply, sizeof reply, "reply/%s/%d", a.user, (int)getpid());
    snprintf(id, sizeof id, "infer-%d", (int)getpid());
    fleet_link_options o;
    fleet_link_options_init(&o);
    o.url = a.broker, o.client_id = client, o.username = a.user, o.password = a.password;
    fleet_link *link = NULL;
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = FLEETCTL_FAILED;
    if (fleet_link_create(&o, &link) != FLEET_LINK_OK ||
        fleet_link_subscribe(link, reply, 1) != FLEET_LINK_OK ||
        fleet_topic_build(a.prefix, FLEET_TOPIC_STREAM_REQUEST, a.stream, topic, sizeof topic) !=
            FLEET_TOPICS_OK ||
        fleet_ops_encode_image(id, a.stream, pixels, (uint32_t)a.wait_ms, &buf, &len) !=
            FLEET_TOPICS_OK) {
        fprintf(stderr, "fleetctl infer: %s%s\n", fleet_link_last_error(),
                fleet_topics_last_error());
        goto cleanup;
    }
    fleet_link_props props = {.response_topic = reply,
                              .correlation = id,
                              .correlation_len = strlen(id),
                              .expiry_s = (uint32_t)((a.wait_ms + 999) / 1000)};
    fleet_link_publish(link, topic, buf, len, 1, 0, &props);
    fleet_link_message *m = NULL;
    if (fleet_link_receive(link, (int)a.wait_ms + 500, &m) != FLEET_LINK_OK) {
        fprintf(stderr, "fleetctl infer: no decision within %zu ms\n", a.wait_ms);
        goto cleanup;
    }
    fleet_msg_decision d;
    char *json = NULL;
    if (fleet_msg_decision_decode(m->payload, m->len, &d) == FLEET_TOPICS_OK &&
        fleet_msg_decision_to_json(&d, &json) == FLEET_TOPICS_OK) {
        printf("%s\n", json);
        rc = FLEETCTL_OK;
    } else {
        fprintf(stderr, "fleetctl infer: undecodable decision: %s\n", fleet_topics_last_error());
    }
    free(json);
    fleet_link_message_free(m);
cleanup:
    free(buf);
    fleet_link_destroy(link);
    return rc;
}
