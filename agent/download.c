/* download.c: one model fetched in chunks. Chunks are written in index order to
 * <cache>/<digest>.part and hashed as they go (early ones wait in memory); a complete file
 * whose SHA-256 matches is renamed to <cache>/<digest>.onnx, one that does not is discarded
 * and asked for again. Runs on the main thread only. */
#include "internal.h"

#include <openssl/evp.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct agent_download {
    char digest[FLEET_TOPICS_DIGEST_HEX + 1];
    char path[AGENT_PATH_MAX]; /* the .part file */
    uint64_t total;            /* model bytes, from the assignment */
    uint32_t chunks;           /* 0 until the first chunk tells */
    uint32_t next;             /* chunks [0, next) are in the file */
    uint64_t written;
    uint8_t **held; /* chunks after next that came early (chunks entries; owned) */
    size_t *held_sizes;
    uint64_t held_bytes;
    FILE *file;
    EVP_MD_CTX *sha;
    int tries; /* model_get requests sent */
    bool gave_up, complete;
    double last_progress_us;
};

static void free_held(agent_download *d)
{
    for (uint32_t i = 0; d->held && i < d->chunks; i++)
        free(d->held[i]);
    free(d->held);
    free(d->held_sizes);
    d->held = NULL;
    d->held_sizes = NULL;
    d->held_bytes = 0;
}

/* Back to nothing received: an empty file, a fresh hash. */
static fleet_agent_status reset_data(agent_download *d)
{
    free_held(d);
    d->chunks = d->next = 0;
    d->written = 0;
    if (d->file)
        fclose(d->file);
    d->file = fopen(d->path, "wb");
    if (!d->file)
        return agent_fail(FLEET_AGENT_ESYSERR, "cannot write %s: %s", d->path, strerror(errno));
    if (EVP_DigestInit_ex(d->sha, EVP_sha256(), NULL) != 1)
        return agent_fail(FLEET_AGENT_ENOMEM, "SHA-256 unavailable");
    return FLEET_AGENT_OK;
}

/* Asks for the missing chunks: all of them until the first chunk says how many there are,
 * then [next, last missing]. */
static void request(fleet_agent *a, agent_download *d)
{
    fleet_msg_model_get g = {.first = d->next, .count = UINT32_MAX};
    if (d->chunks) {
        uint32_t last = d->chunks - 1;
        while (last > d->next && d->held && d->held[last])
            last--;
        g.count = last - d->next + 1;
    }
    snprintf(g.agent, sizeof g.agent, "%s", a->cfg.id);
    snprintf(g.digest, sizeof g.digest, "%s", d->digest);
    uint8_t *buf = NULL;
    size_t len = 0;
    fleet_topics_status st = fleet_msg_model_get_encode(&g, &buf, &len);
    agent_publish(a, a->topic_get, st, buf, len, 1, 0);
    d->tries++;
    d->last_progress_us = fleet_link_now_us();
    agent_log(a, FLEET_LOG_INFO, "asking for model %.12s (chunks %u+, try %d of %d)", d->digest,
              g.first, d->tries, AGENT_TRIES);
}

fleet_agent_status agent_download_start(fleet_agent *a, const fleet_assigned_variant *spec,
                                        agent_download **out)
{
    if (spec->model_bytes == 0 || spec->model_bytes > AGENT_MAX_MODEL_BYTES)
        return agent_fail(FLEET_AGENT_EINVAL, "model %.12s: %llu bytes (at most %llu)",
                          spec->digest, (unsigned long long)spec->model_bytes,
                          (unsigned long long)AGENT_MAX_MODEL_BYTES);
    agent_download *d = calloc(1, sizeof *d);
    if (!d)
        return agent_fail(FLEET_AGENT_ENOMEM, "out of memory");
    snprintf(d->digest, sizeof d->digest, "%s", spec->digest);
    agent_cache_path(a, spec->digest, ".part", d->path, sizeof d->path);
    d->total = spec->model_bytes;
    fleet_agent_status st = FLEET_AGENT_ENOMEM;
    if (!(d->sha = EVP_MD_CTX_new()))
        goto fail;
    if ((st = reset_data(d)) != FLEET_AGENT_OK)
        goto fail;
    request(a, d);
    *out = d;
    return FLEET_AGENT_OK;
fail:
    if (st == FLEET_AGENT_ENOMEM)
        agent_fail(st, "out of memory");
    agent_download_free(d);
    return st;
}

void agent_download_free(agent_download *d)
{
    if (!d)
        return;
    free_held(d);
    if (d->file) {
        fclose(d->file);
        unlink(d->path);
    }
    EVP_MD_CTX_free(d->sha);
    free(d);
}

static bool append(agent_download *d, const uint8_t *data, size_t size)
{
    if (fwrite(data, 1, size, d->file) != size || EVP_DigestUpdate(d->sha, data, size) != 1)
        return false;
    d->written += size;
    d->next++;
    return true;
}

/* Writes chunk c if it is next, then every held chunk that follows; holds it otherwise. */
static bool store(agent_download *d, const fleet_msg_chunk *c)
{
    if (c->index != d->next) {
        uint8_t *copy = malloc(c->size);
        if (!copy)
            return false;
        memcpy(copy, c->data, c->size);
        d->held[c->index] = copy;
        d->held_sizes[c->index] = c->size;
        d->held_bytes += c->size;
        return true;
    }
    bool ok = append(d, c->data, c->size);
    while (ok && d->next < d->chunks && d->held[d->next]) {
        uint32_t i = d->next;
        ok = append(d, d->held[i], d->held_sizes[i]);
        d->held_bytes -= d->held_sizes[i];
        free(d->held[i]);
        d->held[i] = NULL;
    }
    return ok;
}

/* Whether c fits what is known: same total, same chunk count, not seen, not too many bytes. */
static bool fits(fleet_agent *a, agent_download *d, const fleet_msg_chunk *c)
{
    if (c->total_bytes != d->total || c->size == 0)
        return false;
    if (!d->chunks) {
        if (c->chunks > AGENT_MAX_CHUNKS || c->chunks > d->total)
            return false;
        d->held = calloc(c->chunks, sizeof *d->held);
        d->held_sizes = calloc(c->chunks, sizeof *d->held_sizes);
        if (!d->held || !d->held_sizes) {
            agent_log(a, FLEET_LOG_ERROR, "out of memory for %u chunks", c->chunks);
            free_held(d);
            return false;
        }
        d->chunks = c->chunks;
    }
    return c->chunks == d->chunks && c->index >= d->next && !d->held[c->index] &&
           d->written + d->held_bytes + c->size <= d->total;
}

/* The file is complete: the digest decides whether it enters the cache. */
static bool finish(fleet_agent *a, agent_download *d)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    char hex[2 * EVP_MAX_MD_SIZE + 1] = "", final[AGENT_PATH_MAX];
    if (d->written == d->total && EVP_DigestFinal_ex(d->sha, md, &len) == 1)
        for (unsigned int i = 0; i < len; i++)
            snprintf(hex + 2 * i, 3, "%02x", md[i]);
    if (strcmp(hex, d->digest) != 0)
        return false;
    bool ok = fflush(d->file) == 0 && fsync(fileno(d->file)) == 0;
    ok = fclose(d->file) == 0 && ok;
    d->file = NULL;
    agent_cache_path(a, d->digest, ".onnx", final, sizeof final);
    if (!ok || rename(d->path, final) != 0) {
        agent_log(a, FLEET_LOG_ERROR, "cannot store %s: %s", final, strerror(errno));
        unlink(d->path);
        return false;
    }
    return true;
}

agent_chunk_outcome agent_download_chunk(fleet_agent *a, agent_download *d,
                                         const fleet_msg_chunk *c)
{
    if (d->complete || d->gave_up || strcmp(c->digest, d->digest) != 0 || !fits(a, d, c))
        return AGENT_CHUNK_IGNORED;
    d->last_progress_us = fleet_link_now_us();
    if (!store(d, c)) {
        agent_log(a, FLEET_LOG_ERROR, "model %.12s: cannot store chunk %u", d->digest, c->index);
    } else if (d->next < d->chunks) {
        return AGENT_CHUNK_PROGRESS;
    } else if (finish(a, d)) {
        d->complete = true;
        return AGENT_CHUNK_COMPLETE;
    }
    agent_log(a, FLEET_LOG_WARN, "model %.12s arrived damaged (digest mismatch): discarded",
              d->digest);
    if (reset_data(d) != FLEET_AGENT_OK || d->tries >= AGENT_TRIES) {
        d->gave_up = true;
        agent_log(a, FLEET_LOG_ERROR, "giving up on model %.12s after %d tries", d->digest,
                  d->tries);
    } else {
        request(a, d);
    }
    return AGENT_CHUNK_DAMAGED;
}

bool agent_download_tick(fleet_agent *a, agent_download *d, double now_us)
{
    if (d->gave_up)
        return false;
    if (d->complete || now_us - d->last_progress_us < AGENT_RETRY_US)
        return true;
    if (d->tries >= AGENT_TRIES) {
        d->gave_up = true;
        agent_log(a, FLEET_LOG_ERROR, "giving up on model %.12s after %d tries", d->digest,
                  d->tries);
        return false;
    }
    request(a, d);
    return true;
}

void agent_download_restart(fleet_agent *a, agent_download *d)
{
    if (d->complete)
        return;
    if (reset_data(d) != FLEET_AGENT_OK) {
        agent_log(a, FLEET_LOG_ERROR, "model %.12s: %s", d->digest, fleet_agent_last_error());
        return;
    }
    d->tries = 0;
    d->gave_up = false;
    request(a, d);
}

bool agent_download_gave_up(const agent_download *d)
{
    return d->gave_up;
}
