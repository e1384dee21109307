/* cache.c: the cache directory: verified models by SHA-256, and the birth sequence. */
#include "internal.h"

#include <openssl/evp.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void agent_cache_path(const fleet_agent *a, const char *digest, const char *suffix, char *out,
                      size_t size)
{
    snprintf(out, size, "%s/%s%s", a->cfg.cache, digest, suffix);
}

/* mkdir -p, the last component with mode 0750. */
static fleet_agent_status make_dirs(const char *path)
{
    char dir[sizeof((fleet_agent_config *)0)->cache];
    snprintf(dir, sizeof dir, "%s", path);
    for (char *p = dir + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(dir, 0755) != 0 && errno != EEXIST)
                return agent_fail(FLEET_AGENT_ESYSERR, "cache %s: %s: %s", path, dir,
                                  strerror(errno));
            *p = '/';
        }
    if (mkdir(dir, 0750) != 0 && errno != EEXIST)
        return agent_fail(FLEET_AGENT_ESYSERR, "cache %s: %s", path, strerror(errno));
    return FLEET_AGENT_OK;
}

/* Writes path through path.tmp, fsync and rename, so a crash leaves the old or the new. */
static fleet_agent_status write_atomically(const char *path, const char *text)
{
    char tmp[AGENT_PATH_MAX + 8];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    size_t n = strlen(text);
    bool ok = fd >= 0 && write(fd, text, n) == (ssize_t)n && fsync(fd) == 0;
    if (fd >= 0 && close(fd) != 0)
        ok = false;
    if (!ok || rename(tmp, path) != 0) {
        int err = errno;
        unlink(tmp);
        return agent_fail(FLEET_AGENT_ESYSERR, "cannot write %s: %s", path, strerror(err));
    }
    return FLEET_AGENT_OK;
}

/* The birth sequence grows with every start, so a late will never kills a newer session. */
fleet_agent_status agent_cache_prepare(fleet_agent *a)
{
    fleet_agent_status st = make_dirs(a->cfg.cache);
    if (st != FLEET_AGENT_OK)
        return st;
    char path[AGENT_PATH_MAX], text[32];
    snprintf(path, sizeof path, "%s/bdseq", a->cfg.cache);
    unsigned long long last = 0;
    FILE *f = fopen(path, "r");
    if (f) {
        if (fscanf(f, "%llu", &last) != 1)
            last = 0;
        fclose(f);
    } else if (errno != ENOENT) {
        return agent_fail(FLEET_AGENT_ESYSERR, "cannot read %s: %s", path, strerror(errno));
    }
    a->bdseq = last + 1;
    snprintf(text, sizeof text, "%llu\n", (unsigned long long)a->bdseq);
    return write_atomically(path, text);
}

/* The whole file, at most AGENT_MAX_MODEL_BYTES; NULL when absent or unreadable. */
static uint8_t *read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    uint8_t *data = NULL;
    struct stat s;
    if (fstat(fileno(f), &s) == 0 && s.st_size > 0 &&
        (unsigned long long)s.st_size <= AGENT_MAX_MODEL_BYTES &&
        (data = malloc((size_t)s.st_size)) &&
        fread(data, 1, (size_t)s.st_size, f) != (size_t)s.st_size) {
        free(data);
        data = NULL;
    }
    fclose(f);
    *size = data ? (size_t)s.st_size : 0;
    return data;
}

static bool digest_matches(const uint8_t *data, size_t size, const char *digest)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    char hex[2 * EVP_MAX_MD_SIZE + 1] = "";
    if (EVP_Digest(data, size, md, &len, EVP_sha256(), NULL) != 1)
        return false;
    for (unsigned int i = 0; i < len; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    return strcmp(hex, digest) == 0;
}

fleet_agent_status agent_cache_load(const fleet_agent *a, const char *digest, agent_model **out)
{
    char path[AGENT_PATH_MAX];
    agent_cache_path(a, digest, ".onnx", path, sizeof path);
    size_t size = 0;
    uint8_t *data = read_file(path, &size);
    *out = NULL;
    if (!data)
        return FLEET_AGENT_OK;
    fleet_agent_status st = FLEET_AGENT_OK;
    if (!digest_matches(data, size, digest)) {
        agent_log(a, FLEET_LOG_WARN, "cached %s is damaged: removed, fetching it again", path);
        unlink(path);
    } else if ((st = agent_model_load(a, data, size, out)) != FLEET_AGENT_OK) {
        agent_log(a, FLEET_LOG_ERROR, "model %.12s does not load: %s", digest,
                  fleet_agent_last_error());
    }
    free(data);
    return st;
}
