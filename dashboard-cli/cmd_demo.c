/* cmd_demo.c: `fleetctl demo`: a private broker, a coordinator and agents, the test set through. */
#define _XOPEN_SOURCE 700 /* nftw */
#include "fleetctl.h"

#include "broker.h"
#include "dataset.h"
#include "fleet_ops.h"

#include <ftw.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef FLEET_BINARY_DIR
#define FLEET_BINARY_DIR "."
#endif
#ifndef FLEET_SOURCE_DIR
#define FLEET_SOURCE_DIR "."
#endif

#define DEMO_PREFIX "fleet/demo"
#define DEMO_STREAM "demo"
#define DEMO_REPLY "reply/operator/demo"
#define DEMO_MAX_AGENTS 32

typedef struct demo_args {
    size_t agents, count, rate, window, kill_after, replication, variants;
    unsigned deadline_ms;
    int json, keep_logs;
    const char *models, *rule, *dataset;
} demo_args;

typedef struct demo_run {
    demo_args a;
    fleetctl_broker broker;
    fleetctl_dataset data;
    char dir[256];
    pid_t coordinator;
    pid_t agents[DEMO_MAX_AGENTS];
    char agent_ids[DEMO_MAX_AGENTS][32];
    fleet_link *link;
    fleet_ops_view view;
    double *sent_us, *latency_us, *infer_us;
    double *wait_us; /* the coordinator's part: its request arrival to its decision */
    double cpu_start[2], cpu_end[2]; /* coordinator, broker: user + system seconds */
    int8_t *outcome;                 /* -1 none yet, 0 wrong, 1 right */
    uint8_t *degraded;
    size_t decided, correct, n_degraded;
    double kill_us, first_healthy_after_kill_us, start_us, end_us;
} demo_run;

static const char demo_usage[] =
    "usage: fleetctl demo [--agents N] [--count N] [--rate R] [--kill-agent-after N] [--json]\n"
    "                     [--models DIR] [--variants K] [--rule RULE] [--replication R]\n"
    "                     [--deadline-ms MS] [--window W] [--dataset DIR] [--keep-logs]\n"
    "\n"
    "Starts a private mosquitto (the project's broker-config) on a free loopback port, a\n"
    "coordinator and N agents (default 4), streams the Fashion-MNIST test set (or --count\n"
    "images) at --rate requests/s (default: as fast as --window requests in flight allow,\n"
    "default 16), and prints accuracy, degraded share, latency percentiles, decisions/s and\n"
    "each agent's variants. --kill-agent-after N kills an agent (SIGKILL) after N requests to\n"
    "show failover. --json prints one summary object instead of the table. --rule is one of\n"
    "mean-softmax (default), vp-topk, acc-weighted, majority, or fusion (the agents send int8\n"
    "features and the coordinator runs DIR/fusion.onnx on them).\n";

static int parse_args(int argc, char **argv, demo_args *a)
{
    static const struct option options[] = {{"agents", required_argument, NULL, 'a'},
                                            {"count", required_argument, NULL, 'n'},
                                            {"rate", required_argument, NULL, 'r'},
                                            {"window", required_argument, NULL, 'w'},
                                            {"kill-agent-after", required_argument, NULL, 'k'},
                                            {"replication", required_argument, NULL, 'R'},
                                            {"variants", required_argument, NULL, 'v'},
                                            {"deadline-ms", required_argument, NULL, 'd'},
                                            {"json", no_argument, NULL, 'j'},
                                            {"models", required_argument, NULL, 'm'},
                                            {"rule", required_argument, NULL, 'u'},
                                            {"dataset", required_argument, NULL, 'D'},
                                            {"keep-logs", no_argument, NULL, 'K'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    *a = (demo_args){.agents = 4,
                     .count = 10000,
                     .window = 16,
                     .replication = 1,
                     .variants = 4,
                     .deadline_ms = 2000,
                     .models = FLEET_SOURCE_DIR "/models/zoo",
                     .rule = "mean-softmax",
                     .dataset = FLEETCTL_DATASET_DEFAULT_DIR};
    optind = 1;
    int c, index = 0;
    size_t deadline = 0;
    while ((c = getopt_long(argc, argv, "", options, &index)) != -1) {
        int bad = 0;
        switch (c) {
        case 'a':
            bad = fleetctl_parse_size(optarg, 1, DEMO_MAX_AGENTS, &a->agents);
            break;
        case 'n':
            bad = fleetctl_parse_size(optarg, 1, 1000000, &a->count);
            break;
        case 'r':
            bad = fleetctl_parse_size(optarg, 0, 1000000, &a->rate);
            break;
        case 'w':
            bad = fleetctl_parse_size(optarg, 1, 4096, &a->window);
            break;
        case 'k':
            bad = fleetctl_parse_size(optarg, 0, 1000000, &a->kill_after);
            break;
        case 'R':
            bad = fleetctl_parse_size(optarg, 1, 16, &a->replication);
            break;
        case 'v':
            bad = fleetctl_parse_size(optarg, 1, 16, &a->variants);
            break;
        case 'd':
            bad = fleetctl_parse_size(optarg, 1, 600000, &deadline);
            a->deadline_ms = (unsigned)deadline;
            break;
        case 'j':
            a->json = 1;
            break;
        case 'K':
            a->keep_logs = 1;
            break;
        case 'm':
            a->models = optarg;
            break;
        case 'u':
            a->rule = optarg;
            break;
        case 'D':
            a->dataset = optarg;
            break;
        case 'h':
            fputs(demo_usage, stdout);
            exit(FLEETCTL_OK);
        default:
            return -1;
        }
        if (bad) {
            fprintf(stderr, "fleetctl demo: bad value '%s' for --%s\n", optarg,
                    options[index].name);
            return -1;
        }
    }
    return optind == argc ? 0 : -1;
}

/* Starts a daemon with its output in DIR/NAME.log. */
static pid_t spawn(const demo_run *r, const char *name, char *const argv[])
{
    char log[320];
    snprintf(log, sizeof log, "%s/%s.log", r->dir, name);
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen(log, "w", stderr) || !freopen("/dev/null", "w", stdout))
            _exit(126);
        execv(argv[0], argv);
        fprintf(stderr, "cannot run %s\n", argv[0]);
        _exit(127);
    }
    if (pid < 0)
        fprintf(stderr, "fleetctl demo: cannot start %s\n", name);
    return pid;
}

static const char *binary(const char *env, const char *built)
{
    const char *over = getenv(env);
    return over && over[0] ? over : built;
}

static int start_coordinator(demo_run *r)
{
    char *argv[64];
    char variants[16][600];
    int n = 0;
    argv[n++] =
        (char *)binary("FLEET_COORDINATOR_BIN", FLEET_BINARY_DIR "/coordinator/fleet-coordinator");
    const char *fixed[] = {"--broker", r->broker.url, "--password",  FLEETCTL_BROKER_SECRET,
                           "--prefix", DEMO_PREFIX,   "--stream",    DEMO_STREAM,
                           "--rule",   r->a.rule,     "--log_level", "warn",
                           "--id",     "demo"};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        argv[n++] = (char *)fixed[i];
    char replication[16];
    snprintf(replication, sizeof replication, "%zu", r->a.replication);
    argv[n++] = "--replication";
    argv[n++] = replication;
    for (size_t v = 0; v < r->a.variants; v++) {
        snprintf(variants[v], sizeof variants[v], "%s/variant-%zu.onnx", r->a.models, v);
        if (access(variants[v], R_OK) != 0) {
            fprintf(stderr, "fleetctl demo: %s is missing (--models DIR, --variants K)\n",
                    variants[v]);
            return -1;
        }
        argv[n++] = "--variant";
        argv[n++] = variants[v];
    }
    char head[600];
    if (strcmp(r->a.rule, "fusion") == 0) { /* the head that goes with the family */
        snprintf(head, sizeof head, "%s/fusion.onnx", r->a.models);
        argv[n++] = "--fusion_model";
        argv[n++] = head;
    }
    argv[n] = NULL;
    r->coordinator = spawn(r, "coordinator", argv);
    return r->coordinator > 0 ? 0 : -1;
}

static int start_agents(demo_run *r)
{
    for (size_t i = 0; i < r->a.agents; i++) {
        char cache[300];
        snprintf(cache, sizeof cache, "%s/cache-%s", r->dir, r->agent_ids[i]);
        char *argv[] = {(char *)binary("FLEET_AGENT_BIN", FLEET_BINARY_DIR "/agent/fleet-agent"),
                        "--id",
                        r->agent_ids[i],
                        "--broker",
                        r->broker.url,
                        "--password",
                        FLEETCTL_BROKER_SECRET,
                        "--prefix",
                        DEMO_PREFIX,
                        "--cache",
                        cache,
                        "--log-level",
                        "warn",
                        NULL};
        if ((r->agents[i] = spawn(r, r->agent_ids[i], argv)) <= 0)
            return -1;
    }
    return 0;
}

static int send_image(demo_run *r, size_t index, const char *id)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    if (fleet_ops_encode_image(id, DEMO_STREAM, r->data.pixels + index * 784, r->a.deadline_ms,
                               &buf, &len) != FLEET_TOPICS_OK) {
        fprintf(stderr, "fleetctl demo: %s\n", fleet_topics_last_error());
        return -1;
    }
    char topic[FLEET_TOPICS_MAX_TOPIC];
    fleet_topic_build(DEMO_PREFIX, FLEET_TOPIC_STREAM_REQUEST, DEMO_STREAM, topic, sizeof topic);
    fleet_link_props props = {.response_topic = DEMO_REPLY};
    fleet_link_status st = fleet_link_publish(r->link, topic, buf, len, 0, 0, &props);
    free(buf);
    return st == FLEET_LINK_OK ? 0 : -1;
}

/* Folds one incoming message in: a decision for us, or fleet state for the agent table. */
static void absorb(demo_run *r, fleet_link_message *m)
{
    if (strcmp(m->topic, DEMO_REPLY) != 0) {
        fleet_ops_update(&r->view, DEMO_PREFIX, m);
        return;
    }
    fleet_msg_decision d;
    size_t index;
    if (fleet_msg_decision_decode(m->payload, m->len, &d) != FLEET_TOPICS_OK ||
        strncmp(d.id, "demo-", 5) != 0 ||
        fleetctl_parse_size(d.id + 5, 0, r->a.count - 1, &index) != 0 || r->outcome[index] >= 0)
        return; /* a warm-up probe, or a duplicate */
    r->outcome[index] = d.cls == r->data.labels[index];
    r->degraded[index] = d.degraded;
    r->latency_us[index] = m->received_us - r->sent_us[index];
    r->infer_us[index] = d.slowest_infer_us;
    r->wait_us[index] = d.total_us;
    r->decided++;
    r->correct += (size_t)r->outcome[index];
    r->n_degraded += d.degraded;
    if (r->kill_us > 0 && !d.degraded && r->first_healthy_after_kill_us == 0 &&
        r->sent_us[index] > r->kill_us)
        r->first_healthy_after_kill_us = m->received_us;
}

static void drain(demo_run *r, int timeout_ms)
{
    fleet_link_message *m = NULL;
    while (fleet_link_receive(r->link, timeout_ms, &m) == FLEET_LINK_OK) {
        absorb(r, m);
        fleet_link_message_free(m);
        timeout_ms = 0;
    }
}

/* Whether every live agent's latest heartbeat arrived after since_us. */
static bool heard_since(const fleet_ops_view *v, double since_us)
{
    for (size_t i = 0; i < v->n_agents; i++)
        if (v->agents[i].alive && v->agents[i].heard_us < since_us)
            return false;
    return true;
}

/* Probes until a healthy (non-degraded) decision comes back: all variants are being served. */
static int wait_ready(demo_run *r)
{
    double until = fleet_link_now_us() + 60e6;
    for (int probe = 0; fleet_link_now_us() < until; probe++) {
        char id[32];
        snprintf(id, sizeof id, "probe-%d", probe);
        send_image(r, 0, id);
        double next = fleet_link_now_us() + 300e3;
        while (fleet_link_now_us() < next) {
            fleet_link_message *m = NULL;
            if (fleet_link_receive(r->link, 50, &m) != FLEET_LINK_OK)
                continue;
            fleet_msg_decision d;
            bool healthy = strcmp(m->topic, DEMO_REPLY) == 0 &&
                           fleet_msg_decision_decode(m->payload, m->len, &d) == FLEET_TOPICS_OK &&
                           !d.degraded && d.n_used == r->a.variants;
            if (strcmp(m->topic, DEMO_REPLY) != 0)
                fleet_ops_update(&r->view, DEMO_PREFIX, m);
            fleet_link_message_free(m);
            if (healthy)
                return 0;
        }
    }
    fprintf(stderr, "fleetctl demo: the fleet did not become ready in 60 s (logs in %s)\n", r->dir);
    return -1;
}

/* CPU seconds (user + system) a process has used so far, from /proc; 0 when unknown. */
static double cpu_seconds(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    unsigned long utime = 0, stime = 0;
    if (!p ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2)
        return 0.0;
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

static void stream_images(demo_run *r)
{
    r->cpu_start[0] = cpu_seconds(r->coordinator);
    r->cpu_start[1] = cpu_seconds(r->broker.pid);
    r->start_us = fleet_link_now_us();
    for (size_t i = 0; i < r->a.count; i++) {
        while (i - r->decided >= r->a.window &&
               fleet_link_now_us() - r->sent_us[i - r->a.window] < 2e3 * r->a.deadline_ms)
            drain(r, 5);
        if (r->a.rate) {
            double due = r->start_us + 1e6 * (double)i / (double)r->a.rate;
            while (fleet_link_now_us() < due)
                drain(r, 1);
        }
        if (r->a.kill_after && i == r->a.kill_after && r->agents[0] > 0) {
            kill(r->agents[0], SIGKILL);
            r->kill_us = fleet_link_now_us();
        }
        char id[32];
        snprintf(id, sizeof id, "demo-%zu", i);
        r->sent_us[i] = fleet_link_now_us();
        if (send_image(r, i % r->data.count, id) != 0)
            fprintf(stderr, "fleetctl demo: request %zu not sent: %s\n", i,
                    fleet_link_last_error());
        drain(r, 0);
    }
    double until = fleet_link_now_us() + 1e3 * r->a.deadline_ms + 2e6;
    while (r->decided < r->a.count && fleet_link_now_us() < until)
        drain(r, 20);
    r->end_us = fleet_link_now_us();
    r->cpu_end[0] = cpu_seconds(r->coordinator);
    r->cpu_end[1] = cpu_seconds(r->broker.pid);
    /* The agent table shows each agent's latest heartbeat: one sent before the end of a
     * short run would show counters from before most of it. So wait for one from every live
     * agent after the end (they beat every second). */
    double settle = r->end_us + 2.5e6;
    while (!heard_since(&r->view, r->end_us) && fleet_link_now_us() < settle)
        drain(r, 50);
}

static double percentile(double *sorted, size_t n, double p)
{
    return n ? sorted[(size_t)fmin((double)n - 1, ceil(p * (double)n) - 1)] : 0.0;
}

static void report(demo_run *r)
{
    double *lat = malloc((r->decided + 1) * sizeof *lat);
    double *over = malloc((r->decided + 1) * sizeof *over);
    double *wait = malloc((r->decided + 1) * sizeof *wait);
    double *infer = malloc((r->decided + 1) * sizeof *infer);
    size_t n = 0;
    for (size_t i = 0; lat && over && wait && infer && i < r->a.count; i++)
        if (r->outcome[i] >= 0) {
            over[n] = (r->latency_us[i] - r->infer_us[i]) / 1e3;
            wait[n] = r->wait_us[i] / 1e3;
            infer[n] = r->infer_us[i] / 1e3;
            lat[n++] = r->latency_us[i] / 1e3;
        }
    if (lat && over && wait && infer) {
        qsort(lat, n, sizeof *lat, fleetctl_compare_double);
        qsort(over, n, sizeof *over, fleetctl_compare_double);
        qsort(wait, n, sizeof *wait, fleetctl_compare_double);
        qsort(infer, n, sizeof *infer, fleetctl_compare_double);
    }
    double coord_cpu = r->cpu_end[0] - r->cpu_start[0],
           broker_cpu = r->cpu_end[1] - r->cpu_start[1];
    double seconds = (r->end_us - r->start_us) / 1e6;
    double acc = n ? 100.0 * (double)r->correct / (double)n : 0.0;
    double deg = n ? 100.0 * (double)r->n_degraded / (double)n : 0.0;
    double failover_ms = r->first_healthy_after_kill_us > 0
                             ? (r->first_healthy_after_kill_us - r->kill_us) / 1e3
                             : -1.0;
    if (r->a.json) {
        printf("{\"requests\":%zu,\"decisions\":%zu,\"accuracy\":%.4f,\"degraded\":%.4f,"
               "\"p50_ms\":%.3f,\"p95_ms\":%.3f,\"p99_ms\":%.3f,\"decisions_per_s\":%.1f,"
               "\"agents\":%zu,\"variants\":%zu,\"rule\":\"%s\",\"failover_ms\":%.1f,"
               "\"overhead_p50_ms\":%.3f,\"coordinator_wait_p50_ms\":%.3f,"
               "\"slowest_infer_p50_ms\":%.3f,\"coordinator_cpu_s\":%.3f,\"broker_cpu_s\":%.3f,"
               "\"seconds\":%.3f}\n",
               r->a.count, n, acc / 100.0, deg / 100.0, percentile(lat, n, 0.5),
               percentile(lat, n, 0.95), percentile(lat, n, 0.99), (double)n / seconds, r->a.agents,
               r->a.variants, r->a.rule, failover_ms, percentile(over, n, 0.5),
               percentile(wait, n, 0.5), percentile(infer, n, 0.5), coord_cpu, broker_cpu, seconds);
    } else {
        printf("fleetinfer demo: %zu agents, %zu variants, rule %s, %zu Fashion-MNIST test "
               "images\n\n",
               r->a.agents, r->a.variants, r->a.rule, r->a.count);
        printf("  requests          %zu\n", r->a.count);
        printf("  decisions         %zu (%zu unanswered)\n", n, r->a.count - n);
        printf("  accuracy          %.2f %%\n", acc);
        printf("  degraded          %.2f %% (%zu decisions)\n", deg, r->n_degraded);
        printf("  latency           p50 %.2f ms   p95 %.2f ms   p99 %.2f ms\n",
               percentile(lat, n, 0.5), percentile(lat, n, 0.95), percentile(lat, n, 0.99));
        printf("  throughput        %.0f decisions/s over %.1f s\n", (double)n / seconds, seconds);
        printf("  overhead          p50 %.2f ms above the slowest variant's inference\n",
               percentile(over, n, 0.5));
        printf("  path (p50)        %.2f ms at the coordinator (request to decision; slowest "
               "inference %.2f ms), the rest on the client's two hops\n",
               percentile(wait, n, 0.5), percentile(infer, n, 0.5));
        printf("  CPU               coordinator %.2f s, broker %.2f s\n", coord_cpu, broker_cpu);
        if (r->kill_us > 0)
            printf("  failover          %s killed after %zu requests; first healthy decision "
                   "after %.0f ms\n",
                   r->agent_ids[0], r->a.kill_after, failover_ms);
        printf("\n");
        fleet_ops_print(&r->view, stdout);
    }
    free(lat);
    free(over);
    free(wait);
    free(infer);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void stop_all(demo_run *r)
{
    fleet_link_destroy(r->link);
    r->link = NULL;
    for (size_t i = 0; i < r->a.agents; i++)
        if (r->agents[i] > 0)
            kill(r->agents[i], SIGTERM);
    if (r->coordinator > 0)
        kill(r->coordinator, SIGTERM);
    for (size_t i = 0; i < r->a.agents; i++)
        if (r->agents[i] > 0)
            waitpid(r->agents[i], NULL, 0);
    if (r->coordinator > 0)
        waitpid(r->coordinator, NULL, 0);
    fleetctl_broker_stop(&r->broker);
}

/* Daemon logs and model caches live in a run directory, kept only when something failed. */
static int make_run_dir(demo_run *r)
{
    snprintf(r->dir, sizeof r->dir, "/tmp/fleet-demo-XXXXXX");
    if (!mkdtemp(r->dir)) {
        perror("fleetctl demo: mkdtemp");
        r->dir[0] = '\0';
        return -1;
    }
    return 0;
}

static int demo_main(demo_run *r)
{
    const char *ids[DEMO_MAX_AGENTS];
    for (size_t i = 0; i < r->a.agents; i++) {
        snprintf(r->agent_ids[i], sizeof r->agent_ids[i], "agent-%zu", i + 1);
        ids[i] = r->agent_ids[i];
    }
    if (fleetctl_dataset_load(r->a.dataset, "t10k", &r->data) != 0)
        return FLEETCTL_FAILED;
    r->sent_us = calloc(r->a.count, sizeof *r->sent_us);
    r->latency_us = calloc(r->a.count, sizeof *r->latency_us);
    r->infer_us = calloc(r->a.count, sizeof *r->infer_us);
    r->wait_us = calloc(r->a.count, sizeof *r->wait_us);
    r->outcome = malloc(r->a.count);
    r->degraded = calloc(r->a.count, 1);
    if (!r->sent_us || !r->latency_us || !r->infer_us || !r->wait_us || !r->outcome || !r->degraded)
        return FLEETCTL_FAILED;
    memset(r->outcome, -1, r->a.count);
    if (make_run_dir(r) != 0 ||
        fleetctl_broker_start(fleetctl_broker_config_dir(), ids, (int)r->a.agents, &r->broker))
        return FLEETCTL_FAILED;
    if (start_coordinator(r) != 0 || start_agents(r) != 0)
        return FLEETCTL_FAILED;
    r->link = fleet_ops_connect(r->broker.url, "operator", FLEETCTL_BROKER_SECRET, DEMO_PREFIX,
                                "fleetctl-demo");
    /* QoS 0: a Paho client that acknowledges a QoS 1 delivery sends its next message late. */
    if (!r->link || fleet_link_subscribe(r->link, DEMO_REPLY, 0) != FLEET_LINK_OK ||
        wait_ready(r) != 0)
        return FLEETCTL_FAILED;
    stream_images(r);
    report(r);
    return r->decided == r->a.count ? FLEETCTL_OK : FLEETCTL_FAILED;
}

int fleetctl_demo_main(int argc, char **argv)
{
    demo_run r;
    memset(&r, 0, sizeof r);
    if (parse_args(argc, argv, &r.a) != 0) {
        fputs(demo_usage, stderr);
        return FLEETCTL_USAGE;
    }
    int rc = demo_main(&r);
    stop_all(&r);
    if ((rc != FLEETCTL_OK || r.a.keep_logs) && r.dir[0])
        fprintf(stderr, "fleetctl demo: daemon logs are in %s\n", r.dir);
    else if (r.dir[0])
        nftw(r.dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    fleetctl_dataset_free(&r.data);
    free(r.sent_us);
    free(r.latency_us);
    free(r.infer_us);
    free(r.wait_us);
    free(r.outcome);
    free(r.degraded);
    return rc;
}
