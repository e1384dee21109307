/* garbage.h: malformed msgpack that the daemons must count and survive on any topic. */
#ifndef FLEET_TESTS_GARBAGE_H
#define FLEET_TESTS_GARBAGE_H

#include <stddef.h>

typedef struct test_garbage {
    const char *bytes;
    size_t len;
} test_garbage;

static const test_garbage TEST_GARBAGE[] = {
    {"\xc1", 1},                           /* never used in msgpack */
    {"\x93\x01\x02\x03", 4},               /* an array, not a map */
    {"\x81\xa1v\x01", 4},                  /* {"v": 1}: keys missing */
    {"\x82\xa1v\x01\xa5index\xa3one", 14}, /* a wrong type */
    {"\x81\xa1v\x63", 4},                  /* a version from the future */
    {"\xdb\xff\xff\xff\xff", 5},           /* a 4 GiB string in 5 bytes */
    {"\x85\xa1v", 3},                      /* truncated */
    {"", 0},                               /* empty */
};
#define TEST_N_GARBAGE (sizeof TEST_GARBAGE / sizeof TEST_GARBAGE[0])

#endif
