/* spawn.c: starting the project's daemons from tests, optionally under a wrapper (valgrind). */
#include "spawn.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

enum { SPAWN_MAX_WORDS = 64 };

/* In the child only: argv behind the wrapper's words. */
static void exec_wrapped(char *const argv[], bool wrap)
{
    const char *wrapper = wrap ? getenv("FLEET_TEST_WRAPPER") : NULL;
    if (!wrapper || !*wrapper) {
        execv(argv[0], argv);
        return;
    }
    char *words = strdup(wrapper), *save = NULL;
    char *all[SPAWN_MAX_WORDS + 1];
    size_t n = 0;
    if (!words)
        _exit(126);
    for (char *w = strtok_r(words, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
        if (n == SPAWN_MAX_WORDS)
            _exit(126); /* a command cut short would run something else */
        all[n++] = w;
    }
    for (size_t i = 0; argv[i]; i++) {
        if (n == SPAWN_MAX_WORDS)
            _exit(126);
        all[n++] = argv[i];
    }
    all[n] = NULL;
    execvp(all[0], all);
}

pid_t test_spawn(char *const argv[], const char *log, bool wrap)
{
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        exec_wrapped(argv, wrap);
        _exit(127);
    }
    return pid;
}

bool test_stop_cleanly(pid_t pid, const char *what)
{
    int status = 0;
    if (kill(pid, SIGTERM) != 0 || waitpid(pid, &status, 0) != pid) {
        fprintf(stderr, "%s (pid %d): cannot be stopped\n", what, (int)pid);
        return false;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return true;
    if (WIFEXITED(status))
        fprintf(stderr, "%s: exit status %d after SIGTERM (see its log)\n", what,
                WEXITSTATUS(status));
    else
        fprintf(stderr, "%s: killed by signal %d after SIGTERM\n", what, WTERMSIG(status));
    return false;
}
