/* broker.c: starts and stops a private mosquitto with the project's broker-config. */
#include "broker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef FLEET_SOURCE_DIR
#define FLEET_SOURCE_DIR "."
#endif

const char *fleetctl_broker_config_dir(void)
{
    const char *env = getenv("FLEET_BROKER_CONFIG");
    return env && env[0] ? env : FLEET_SOURCE_DIR "/broker-config";
}

/* A port the kernel just handed out; mosquitto binds it right after (a retry covers races). */
static int free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static int accepts_connections(uint16_t port)
{
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

static int run_quiet(char *const argv[])
{
    pid_t pid = fork();
    if (pid == 0) {
        freopen("/dev/null", "w", stdout);
        execvp(argv[0], argv);
        _exit(127);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) < 0)
        return -1;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static int write_passwords(const char *dir, const char *const *agents, int n_agents)
{
    char file[300];
    snprintf(file, sizeof file, "%s/fleet.passwd", dir);
    FILE *f = fopen(file, "w");
    if (!f)
        return -1;
    fclose(f);
    const char *fixed[] = {"coordinator", "operator", "client", "camera", "dashboard"};
    for (int i = 0; i < 5 + n_agents; i++) {
        const char *user = i < 5 ? fixed[i] : agents[i - 5];
        char *argv[] = {"mosquitto_passwd", "-b", file, (char *)user, FLEETCTL_BROKER_SECRET, NULL};
        if (run_quiet(argv) != 0) {
            fprintf(stderr,
                    "fleetctl: mosquitto_passwd failed for user '%s' (is mosquitto "
                    "installed?)\n",
                    user);
            return -1;
        }
    }
    return 0;
}

static int write_config(const fleetctl_broker *b, const char *config_dir, char *path,
                        size_t path_size)
{
    char in_path[512], line[1024];
    struct passwd *pw = getpwuid(getuid());
    snprintf(in_path, sizeof in_path, "%s/test.conf.in", config_dir);
    snprintf(path, path_size, "%s/mosquitto.conf", b->dir);
    FILE *in = fopen(in_path, "r"), *out = in ? fopen(path, "w") : NULL;
    if (!in || !out) {
        fprintf(stderr, "fleetctl: cannot read %s or write %s: %s\n", in_path, path,
                strerror(errno));
        if (in)
            fclose(in);
        return -1;
    }
    char source[512];
    snprintf(source, sizeof source, "%s/..", config_dir);
    while (fgets(line, sizeof line, in)) {
        for (char *p = line; *p; p++) {
            if (strncmp(p, "@PORT@", 6) == 0 && (p += 5))
                fprintf(out, "%u", b->port);
            else if (strncmp(p, "@DIR@", 5) == 0 && (p += 4))
                fputs(b->dir, out);
            else if (strncmp(p, "@SOURCE@", 8) == 0 && (p += 7))
                fputs(source, out);
            else if (strncmp(p, "@USER@", 6) == 0 && (p += 5))
                fputs(pw ? pw->pw_name : "mosquitto", out);
            else
                fputc(*p, out);
        }
    }
    fclose(in);
    return fclose(out) == 0 ? 0 : -1;
}

static void show_log(const fleetctl_broker *b)
{
    char path[300], line[512];
    snprintf(path, sizeof path, "%s/mosquitto.log", b->dir);
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof line, f))
        fprintf(stderr, "  mosquitto: %s", line);
    if (f)
        fclose(f);
}

/* One attempt on one port: 1 started, 0 the port was taken (retry), -1 failed. */
static int try_start(fleetctl_broker *b, const char *config_dir)
{
    char conf[300];
    int port = free_port();
    if (port <= 0)
        return -1;
    b->port = (uint16_t)port;
    if (write_config(b, config_dir, conf, sizeof conf) != 0)
        return -1;
    b->pid = fork();
    if (b->pid == 0) {
        freopen("/dev/null", "w", stdout);
        freopen("/dev/null", "w", stderr);
        execlp("mosquitto", "mosquitto", "-c", conf, (char *)NULL);
        _exit(127);
    }
    if (b->pid < 0)
        return -1;
    for (int i = 0; i < 500; i++) {
        struct timespec ten_ms = {0, 10000000};
        int status;
        if (waitpid(b->pid, &status, WNOHANG) == b->pid) {
            b->pid = 0;
            return WIFEXITED(status) && WEXITSTATUS(status) == 127 ? -1 : 0;
        }
        if (accepts_connections(b->port))
            return 1;
        nanosleep(&ten_ms, NULL);
    }
    return -1;
}

int fleetctl_broker_start(const char *config_dir, const char *const *agents, int n_agents,
                          fleetctl_broker *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->dir, sizeof out->dir, "/tmp/fleet-broker-XXXXXX");
    if (!mkdtemp(out->dir)) {
        fprintf(stderr, "fleetctl: cannot make a private directory: %s\n", strerror(errno));
        return -1;
    }
    int started = write_passwords(out->dir, agents, n_agents) == 0 ? 0 : -1;
    for (int attempt = 0; attempt < 5 && started == 0; attempt++)
        started = try_start(out, config_dir);
    if (started != 1) {
        fprintf(stderr, "fleetctl: mosquitto did not start (config %s/test.conf.in)\n", config_dir);
        show_log(out);
        fleetctl_broker_stop(out);
        return -1;
    }
    snprintf(out->url, sizeof out->url, "tcp://127.0.0.1:%u", out->port);
    return 0;
}

void fleetctl_broker_stop(fleetctl_broker *b)
{
    if (b->pid > 0) {
        kill(b->pid, SIGTERM);
        int status;
        for (int i = 0; i < 200 && waitpid(b->pid, &status, WNOHANG) == 0; i++) {
            struct timespec ten_ms = {0, 10000000};
            nanosleep(&ten_ms, NULL);
            if (i == 199) {
                kill(b->pid, SIGKILL);
                waitpid(b->pid, &status, 0);
            }
        }
        b->pid = 0;
    }
    if (b->dir[0]) {
        char path[300];
        const char *files[] = {"mosquitto.conf", "fleet.passwd", "mosquitto.log"};
        for (size_t i = 0; i < 3; i++) {
            snprintf(path, sizeof path, "%s/%s", b->dir, files[i]);
            unlink(path);
        }
        rmdir(b->dir);
        b->dir[0] = '\0';
    }
}
