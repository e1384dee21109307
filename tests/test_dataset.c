/* test_dataset.c: IDX reading, plain and gzipped, and the ways such files go wrong. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "dataset.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

static char dir[] = "/tmp/fleet-dataset-XXXXXX";

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8), p[3] = (unsigned char)v;
}

/* Writes SPLIT-images-idx3-ubyte.gz (count 2x3 images) and the labels file, plain or gzipped. */
static void write_split(const char *split, uint32_t images, uint32_t labels, uint32_t magic,
                        size_t drop_bytes, int gzip)
{
    char path[256];
    unsigned char head[16], body[64];
    put_be32(head, magic);
    put_be32(head + 4, images);
    put_be32(head + 8, 2);
    put_be32(head + 12, 3);
    for (size_t i = 0; i < sizeof body; i++)
        body[i] = (unsigned char)(i * 5);
    snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte%s", dir, split, gzip ? ".gz" : "");
    gzFile f = gzopen(path, gzip ? "wb" : "wbT");
    gzwrite(f, head, 16);
    gzwrite(f, body, (unsigned)(images * 6 - drop_bytes));
    gzclose(f);
    put_be32(head, 0x00000801u);
    put_be32(head + 4, labels);
    snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte%s", dir, split, gzip ? ".gz" : "");
    f = gzopen(path, gzip ? "wb" : "wbT");
    gzwrite(f, head, 8);
    gzwrite(f, body, labels);
    gzclose(f);
}

static int setup(void **state)
{
    (void)state;
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_reads_gzip_and_plain(void **state)
{
    (void)state;
    for (int gzip = 0; gzip <= 1; gzip++) {
        write_split(gzip ? "gz" : "plain", 4, 4, 0x00000803u, 0, gzip);
        fleetctl_dataset ds;
        assert_int_equal(fleetctl_dataset_load(dir, gzip ? "gz" : "plain", &ds), 0);
        assert_int_equal(ds.count, 4);
        assert_int_equal(ds.rows, 2);
        assert_int_equal(ds.cols, 3);
        assert_int_equal(ds.labels[3], 15);
        float img[6];
        fleetctl_dataset_image(&ds, 1, img);
        assert_float_equal(img[0], 30.0f / 255.0f, 1e-7f);
        fleetctl_dataset_free(&ds);
        assert_null(ds.pixels);
    }
}

static void test_rejects_bad_files(void **state)
{
    (void)state;
    fleetctl_dataset ds;
    write_split("short", 4, 4, 0x00000803u, 5, 1);
    assert_int_equal(fleetctl_dataset_load(dir, "short", &ds), -1);
    write_split("mismatch", 4, 3, 0x00000803u, 0, 1);
    assert_int_equal(fleetctl_dataset_load(dir, "mismatch", &ds), -1);
    write_split("magic", 4, 4, 0x00000802u, 0, 1);
    assert_int_equal(fleetctl_dataset_load(dir, "magic", &ds), -1);
    write_split("empty", 0, 0, 0x00000803u, 0, 1);
    assert_int_equal(fleetctl_dataset_load(dir, "empty", &ds), -1);
    assert_int_equal(fleetctl_dataset_load(dir, "absent", &ds), -1);
    assert_null(ds.pixels);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reads_gzip_and_plain),
        cmocka_unit_test(test_rejects_bad_files),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
