/* cli_util.c: argument parsing, whole-file I/O and timing helpers for fleetctl. */
#include "fleetctl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

int fleetctl_parse_size(const char *text, size_t min, size_t max, size_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (!text[0] || text[0] == '-' || *end || errno || v < min || v > max)
        return -1;
    *out = (size_t)v;
    return 0;
}

void *fleetctl_read_file(const char *path, size_t max_bytes, size_t *size)
{
    struct stat info;
    unsigned char *data = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "fleetctl: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    if (fstat(fileno(f), &info) != 0 || !S_ISREG(info.st_mode)) {
        fprintf(stderr, "fleetctl: %s: not a regular file\n", path);
        goto cleanup;
    }
    if ((size_t)info.st_size > max_bytes) {
        fprintf(stderr, "fleetctl: %s: %lld bytes is more than the %zu allowed\n", path,
                (long long)info.st_size, max_bytes);
        goto cleanup;
    }
    data = malloc((size_t)info.st_size + 1);
    if (!data || fread(data, 1, (size_t)info.st_size, f) != (size_t)info.st_size) {
        fprintf(stderr, "fleetctl: %s: could not read\n", path);
        free(data);
        data = NULL;
        goto cleanup;
    }
    *size = (size_t)info.st_size;
cleanup:
    fclose(f);
    return data;
}

int fleetctl_write_file(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "fleetctl: %s: %s\n", path, strerror(errno));
        return -1;
    }
    int ok = fwrite(data, 1, size, f) == size;
    ok &= fclose(f) == 0;
    if (!ok)
        fprintf(stderr, "fleetctl: %s: write failed\n", path);
    return ok ? 0 : -1;
}

double fleetctl_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

int fleetctl_compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
