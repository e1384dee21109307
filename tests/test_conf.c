/* test_conf.c: the daemons' configuration files and command lines (topics/fleet_conf.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fleet_conf.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct sample_config {
    char name[16];
    char secret[16];
    uint32_t count;
    int log_level;
} sample_config;

static const fleet_conf_key sample_keys[] = {
    {"name", FLEET_CONF_STRING, offsetof(sample_config, name), sizeof(char[16]), 0, 0},
    {"secret_file", FLEET_CONF_SECRET_FILE, offsetof(sample_config, secret), sizeof(char[16]), 0,
     0},
    {"count", FLEET_CONF_U32, offsetof(sample_config, count), 0, 1, 100},
    {"log_level", FLEET_CONF_LOG_LEVEL, offsetof(sample_config, log_level), 0, 0, 0},
};
static const char *const sample_key_names[] = {"name", "secret_file", "count", "log_level"};
#define N_KEYS (sizeof sample_keys / sizeof sample_keys[0])

static char dir[64] = "/tmp/fleet-conf-test-XXXXXX";

static int sample_setter(void *ctx, const char *key, const char *value, char *detail,
                         size_t detail_size)
{
    int rc = fleet_conf_apply(sample_keys, N_KEYS, ctx, key, value);
    if (rc > 0)
        snprintf(detail, detail_size, "unknown key '%s'", key);
    else if (rc < 0)
        snprintf(detail, detail_size, "bad value '%s' for '%s'", value, key);
    return rc == 0 ? 0 : -1;
}

static const char *write_file(const char *name, const char *text)
{
    static char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static sample_config fresh(void)
{
    sample_config c = {.name = "default", .count = 1, .log_level = 2};
    return c;
}

/* Reads text as a file: 0 and the config, or -1 and the error that must contain needle. */
static int read_text(const char *text, sample_config *c, const char *needle)
{
    char error[512] = "";
    *c = fresh();
    int rc =
        fleet_conf_read(write_file("sample.conf", text), sample_setter, c, error, sizeof error);
    if (needle && !strstr(error, needle))
        fail_msg("error '%s' does not mention '%s'", error, needle);
    return rc;
}

static void test_file_syntax(void **state)
{
    (void)state;
    sample_config c;
    assert_int_equal(read_text("# comment\n\n  \t\n"
                               "  name   =  gw 7  # trailing comment\r\n"
                               "count=42\n"
                               "log_level = debug", /* no newline at the end */
                               &c, NULL),
                     0);
    assert_string_equal(c.name, "gw 7");
    assert_int_equal(c.count, 42);
    assert_int_equal(c.log_level, 3);
    assert_int_equal(read_text("name = a\ncount\n", &c, "sample.conf:2: expected 'key = value'"),
                     -1);
    assert_int_equal(read_text("\n\ncolour = blue\n", &c, "sample.conf:3: unknown key 'colour'"),
                     -1);
    assert_int_equal(read_text("count = 7\ncount = many\nname = never\n", &c,
                               "sample.conf:2: bad value 'many' for 'count'"),
                     -1);
    assert_string_equal(c.name, "default"); /* reading stops at the first error */
    char error[512];
    assert_int_equal(fleet_conf_read("/nonexistent/x.conf", sample_setter, &c, error, sizeof error),
                     -1);
    assert_non_null(strstr(error, "/nonexistent/x.conf: No such file"));
}

/* A line longer than the reader's buffer is refused, not cut in two (whose tail, holding an
 * '=', would have been read as a line of its own). */
static void test_long_lines(void **state)
{
    (void)state;
    static char text[4096];
    sample_config c;
    memset(text, '#', 1022); /* the longest line: 1022 characters and its ending */
    strcpy(text + 1022, "\r\ncount = 3\n");
    assert_int_equal(read_text(text, &c, NULL), 0);
    assert_int_equal(c.count, 3);
    memset(text, '#', 1022); /* at the end of the file it needs no ending */
    text[1022] = '\0';
    assert_int_equal(read_text(text, &c, NULL), 0);
    memset(text, '#', 1023);
    text[1023] = '\0';
    assert_int_equal(read_text(text, &c, "sample.conf:1: line longer than 1022 characters"), -1);
    memset(text, '#', 1010);
    strcpy(text + 1010, " count = 9 and more\n");
    assert_int_equal(read_text(text, &c, "sample.conf:1: line longer than 1022 characters"), -1);
    assert_int_equal(c.count, 1);
}

static void test_values(void **state)
{
    (void)state;
    sample_config c = fresh();
    static const char *const bad_counts[] = {"0", "101", "-1", "", "12x", "4294967297", "0x10"};
    for (size_t i = 0; i < sizeof bad_counts / sizeof bad_counts[0]; i++)
        assert_int_equal(fleet_conf_apply(sample_keys, N_KEYS, &c, "count", bad_counts[i]), -1);
    assert_int_equal(c.count, 1);
    assert_int_equal(fleet_conf_apply(sample_keys, N_KEYS, &c, "count", "100"), 0);
    assert_int_equal(c.count, 100);
    assert_int_equal(fleet_conf_apply(sample_keys, N_KEYS, &c, "name", "fifteen-chars-x"), 0);
    assert_int_equal(fleet_conf_apply(sample_keys, N_KEYS, &c, "name", "sixteen-chars-xx"), -1);
    assert_string_equal(c.name, "fifteen-chars-x");
    assert_int_equal(fleet_conf_apply(sample_keys, N_KEYS, &c, "log_level", "loud"), -1);
    assert_int_equal(fleet_conf_apply(sample_keys, N_KEYS, &c, "log_level", "error"), 0);
    assert_int_equal(c.log_level, 0);
    assert_int_equal(fleet_conf_apply(sample_keys, N_KEYS, &c, "Name", "x"), 1);
}

/* A secret is the file's first line, whole: never cut, never empty. */
static void test_secret_files(void **state)
{
    (void)state;
    sample_config c = fresh();
    assert_int_equal(fleet_conf_apply(sample_keys, N_KEYS, &c, "secret_file",
                                      write_file("ok.secret", "s3cret\r\nignored\n")),
                     0);
    assert_string_equal(c.secret, "s3cret");
    static const char *const refused[] = {"", "\n", "sixteen-chars-xx\n"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        assert_int_equal(fleet_conf_apply(sample_keys, N_KEYS, &c, "secret_file",
                                          write_file("bad.secret", refused[i])),
                         -1);
        assert_string_equal(c.secret, "s3cret");
    }
    static char longer[2100];
    memset(longer, 'k', sizeof longer - 1);
    char secret[2100];
    assert_int_equal(
        fleet_conf_secret_file(secret, sizeof secret, write_file("long.secret", longer)), -1);
    assert_int_equal(fleet_conf_secret_file(secret, sizeof secret, "/nonexistent/secret"), -1);
}

static int run_cli(sample_config *c, int argc, const char **args)
{
    char *argv[16] = {"daemon"};
    for (int i = 0; i < argc; i++)
        argv[i + 1] = (char *)args[i];
    return fleet_conf_cli(argc + 1, argv, "daemon", "usage: daemon [--config FILE] [--KEY V]\n",
                          sample_key_names, N_KEYS, sample_setter, c);
}

static void test_command_line(void **state)
{
    (void)state;
    const char *conf = write_file("cli.conf", "count = 9\nname = from-file\n");
    char path[128];
    snprintf(path, sizeof path, "%s", conf);
    sample_config c = fresh();
    /* The file is read first wherever --config stands, so flags override it. */
    const char *override[] = {"--count", "5", "--config", path, "--log-level", "warn"};
    assert_int_equal(run_cli(&c, 6, override), 0);
    assert_int_equal(c.count, 5);
    assert_string_equal(c.name, "from-file");
    assert_int_equal(c.log_level, 1);
    /* A value is never taken for a flag, even one spelled like --config. */
    c = fresh();
    const char *value_like_flag[] = {"--name", "--config", "--count", "3"};
    assert_int_equal(run_cli(&c, 4, value_like_flag), 0);
    assert_string_equal(c.name, "--config");
    assert_int_equal(c.count, 3);
    const char *help[] = {"--count", "3", "--help"};
    assert_int_equal(run_cli(&c, 3, help), 1);
    const char *unknown[] = {"--colour", "blue"};
    const char *no_value[] = {"--count"};
    const char *positional[] = {"count", "3"};
    const char *bad_value[] = {"--count", "1000"};
    const char *bad_file[] = {"--config", "/nonexistent/x.conf"};
    assert_int_equal(run_cli(&c, 2, unknown), 2);
    assert_int_equal(run_cli(&c, 1, no_value), 2);
    assert_int_equal(run_cli(&c, 2, positional), 2);
    assert_int_equal(run_cli(&c, 2, bad_value), 2);
    assert_int_equal(run_cli(&c, 2, bad_file), 2);
}

static volatile sig_atomic_t stops;

static void count_stop(int sig)
{
    (void)sig;
    stops++;
}

/* SIGINT and SIGTERM reach the daemon's stop; SIGPIPE (a peer gone mid-write) is ignored
 * instead of ending the process. */
static void test_signals(void **state)
{
    (void)state;
    fleet_conf_catch_signals(count_stop);
    raise(SIGTERM);
    raise(SIGINT);
    raise(SIGPIPE);
    assert_int_equal(stops, 2);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
}

static int make_dir(void **state)
{
    (void)state;
    return mkdtemp(dir) ? 0 : -1;
}

static int remove_dir(void **state)
{
    (void)state;
    static const char *const names[] = {"sample.conf", "ok.secret", "bad.secret", "long.secret",
                                        "cli.conf"};
    char path[128];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    return rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file_syntax),  cmocka_unit_test(test_long_lines),
        cmocka_unit_test(test_values),       cmocka_unit_test(test_secret_files),
        cmocka_unit_test(test_command_line), cmocka_unit_test(test_signals),
    };
    return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
