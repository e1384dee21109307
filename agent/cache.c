/* cache.c: the model cache (by SHA-256) and the chunked download of missing models. */
#include "internal.h"

#include <openssl/evp.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>

static void sha256_hex(const uint8_t *data, size_t size, char *hex)
{
    unsigned char digest[32];
    unsigned int len = 0;
    EVP_Digest(data, size, digest, &len, EVP_sha256(), NULL);
    for (unsigned int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", digest[i]);
}

/* The birth sequence grows with every start, so a late will never kills a newer session. */
fleet_agent_status agent_cache_prepare(fleet_agent *a)
{
    char path[600];
    if (mkdir(a->cfg.cache, 0750) != 0 && errno != EEXIST)
        return agent_fail(FLEET_AGENT_ESYSERR, "cache %s: %s", a->cfg.cache, strerror(errno));
    snprintf(path, sizeof path, "%s/bdseq", a->cfg.cache);
    unsigned long long last = 0;
    FILE *f = fopen(path, "r");
    if (f) {
        if (fscanf(f, "%llu", &last) != 1)
            last = 0;
        fclose(f);
    }
    a->bdseq = last + 1;
    f = fopen(path, "w");
    if (!f || fprintf(f, "%llu\n", (unsigned long long)a->bdseq) < 0 || fclose(f) != 0)
        return agent_fail(FLEET_AGENT_ESYSERR, "cannot write %s", path);
    return FLEET_AGENT_OK;
}

void agent_model_close(agent_model *m)
{
    if (!m)
        return;
    fleet_model_destroy(m->model);
    free(m->input);
    for (size_t i = 0; i < m->n_outputs; i++)
        free(m->outputs[i]);
    free(m);
}

fleet_agent_status agent_model_run(agent_model *m)
{
    const float *ins[1] = {m->input};
    if (fleet_model_run(m->model, ins, m->outputs) != FLEET_MODEL_OK)
        return agent_fail(FLEET_AGENT_EINVAL, "inference failed: %s", fleet_model_last_error());
    return FLEET_AGENT_OK;
}

/* Median of nine single-sample runs: what this gateway tells the coordinator. */
static uint32_t measure_latency(agent_model *m)
{
    double t[9];
    for (int i = 0; i < 9; i++) {
        double t0 = fleet_link_now_us();
        agent_model_run(m);
        t[i] = fleet_link_now_us() - t0;
    }
    for (int i = 1; i < 9; i++) /* insertion sort of nine numbers */
        for (int j = i; j > 0 && t[j] < t[j - 1]; j--) {
            double s = t[j];
            t[j] = t[j - 1];
            t[j - 1] = s;
        }
    return (uint32_t)t[4];
}

static agent_model *load_bytes(fleet_agent *a, const uint8_t *data, size_t size,
                               uint32_t *latency_us)
{
    fleet_model_options o;
    fleet_model_options_init(&o);
    o.threads = a->cfg.threads;
    agent_model *m = calloc(1, sizeof *m);
    if (!m || fleet_model_load_buffer(data, size, &o, &m->model) != FLEET_MODEL_OK) {
        agent_log(0, a->cfg.log_level, "model does not load: %s", fleet_model_last_error());
        free(m);
        return NULL;
    }
    fleet_model_tensor_info info;
    fleet_model_input_info(m->model, 0, &info);
    m->input_count = info.count;
    m->input = calloc(info.count, sizeof(float));
    bool ok = m->input && fleet_model_input_count(m->model) == 1 &&
              fleet_model_output_count(m->model) <= 4;
    for (size_t i = 0; ok && i < fleet_model_output_count(m->model); i++, m->n_outputs++) {
        fleet_model_output_info(m->model, i, &info);
        m->output_counts[i] = info.count;
        ok = (m->outputs[i] = calloc(info.count, sizeof(float))) != NULL;
    }
    if (!ok) {
        agent_log(0, a->cfg.log_level, "model needs one input and at most four outputs");
        agent_model_close(m);
        return NULL;
    }
    *latency_us = measure_latency(m);
    return m;
}

agent_model *agent_cache_load(fleet_agent *a, const char *digest, uint32_t *latency_us)
{
    char path[700];
    snprintf(path, sizeof path, "%s/%s.onnx", a->cfg.cache, digest);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *data = n > 0 ? malloc((size_t)n) : NULL;
    agent_model *m = NULL;
    char hex[FLEET_TOPICS_DIGEST_HEX + 1];
    if (data && fread(data, 1, (size_t)n, f) == (size_t)n) {
        sha256_hex(data, (size_t)n, hex);
        if (strcmp(hex, digest) == 0) /* a damaged cache entry is fetched again */
            m = load_bytes(a, data, (size_t)n, latency_us);
    }
    fclose(f);
    free(data);
    return m;
}

void agent_download_reset(agent_download *d)
{
    for (uint32_t i = 0; i < AGENT_MAX_CHUNKS; i++)
        free(d->parts[i]);
    memset(d, 0, sizeof *d);
}

void agent_download_request(fleet_agent *a, agent_variant *v)
{
    fleet_msg_model_get g = {.first = 0, .count = UINT32_MAX};
    snprintf(g.agent, sizeof g.agent, "%s", a->cfg.id);
    snprintf(g.digest, sizeof g.digest, "%s", v->spec.digest);
    uint8_t *buf = NULL;
    size_t len = 0;
    if (fleet_msg_model_get_encode(&g, &buf, &len) == FLEET_TOPICS_OK)
        fleet_link_publish(a->link, a->topic_get, buf, len, 1, 0, NULL);
    free(buf);
    v->download.active = true;
    v->download.tries++;
    v->download.last_progress_us = fleet_link_now_us();
}

static agent_model *assemble(fleet_agent *a, agent_variant *v, uint32_t *latency_us)
{
    agent_download *d = &v->download;
    uint8_t *whole = malloc(d->total);
    size_t at = 0;
    for (uint32_t i = 0; whole && i < d->chunks; i++) {
        if (at + d->sizes[i] > d->total)
            break;
        memcpy(whole + at, d->parts[i], d->sizes[i]);
        at += d->sizes[i];
    }
    agent_model *m = NULL;
    char hex[FLEET_TOPICS_DIGEST_HEX + 1] = "";
    if (whole && at == d->total)
        sha256_hex(whole, at, hex);
    if (strcmp(hex, v->spec.digest) != 0) {
        agent_log(1, a->cfg.log_level,
                  "model %.12s arrived damaged (digest mismatch); asking again", v->spec.digest);
    } else if ((m = load_bytes(a, whole, at, latency_us))) {
        char path[700], tmp[720];
        snprintf(path, sizeof path, "%s/%s.onnx", a->cfg.cache, v->spec.digest);
        snprintf(tmp, sizeof tmp, "%s.part", path);
        FILE *f = fopen(tmp, "wb");
        if (f && fwrite(whole, 1, at, f) == at && fclose(f) == 0)
            rename(tmp, path);
        else if (f)
            fclose(f);
    }
    free(whole);
    int tries = d->tries;
    agent_download_reset(d);
    d->tries = m ? 0 : tries;
    return m;
}

agent_model *agent_download_chunk(fleet_agent *a, agent_variant *v, const fleet_msg_chunk *c,
                                  uint32_t *latency_us)
{
    agent_download *d = &v->download;
    if (!d->active || c->chunks > AGENT_MAX_CHUNKS || c->total_bytes != v->spec.model_bytes ||
        (d->chunks && c->chunks != d->chunks))
        return NULL;
    d->chunks = c->chunks;
    d->total = c->total_bytes;
    if (d->parts[c->index] || c->size > d->total)
        return NULL; /* a duplicate */
    if (!(d->parts[c->index] = malloc(c->size ? c->size : 1)))
        return NULL;
    memcpy(d->parts[c->index], c->data, c->size);
    d->sizes[c->index] = c->size;
    d->received++;
    d->last_progress_us = fleet_link_now_us();
    return d->received == d->chunks ? assemble(a, v, latency_us) : NULL;
}
