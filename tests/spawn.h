/* spawn.h: starting the project's daemons from tests, optionally under a wrapper (valgrind). */
#ifndef FLEET_TESTS_SPAWN_H
#define FLEET_TESTS_SPAWN_H

#include <stdbool.h>
#include <sys/types.h>

/* fork + exec of argv (argv[0] a path), stdout and stderr to log; -1 when fork fails. Paho's
 * threads do not survive a fork, so a daemon is always a fresh process. With wrap, and when the
 * environment has FLEET_TEST_WRAPPER (words split at spaces, e.g. "valgrind --error-exitcode=99"),
 * the command runs under the wrapper, whose verdict becomes the daemon's exit status. */
pid_t test_spawn(char *const argv[], const char *log, bool wrap);

/* Sends SIGTERM and reaps; true when the process exited 0 (a clean shutdown, and under a wrapper
 * one with no errors). Prints what happened otherwise. */
bool test_stop_cleanly(pid_t pid, const char *what);

#endif
