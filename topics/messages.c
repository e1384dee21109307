/* messages.c: the encoder and decoder of every fleet message (schemas in docs/PROTOCOL.md). */
#include "codec.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define TRY(expr)                                                                                  \
    do {                                                                                           \
        if ((st = (expr)) != FLEET_TOPICS_OK)                                                      \
            goto done;                                                                             \
    } while (0)

static fleet_topics_status check_digest(const char *what, const char *digest)
{
    if (strlen(digest) != FLEET_TOPICS_DIGEST_HEX ||
        strspn(digest, "0123456789abcdef") != FLEET_TOPICS_DIGEST_HEX)
        return topics_fail(FLEET_TOPICS_EINVAL, "%s: a digest is 64 lowercase hex digits", what);
    return FLEET_TOPICS_OK;
}

static fleet_topics_status read_digest(const topics_reader *r, const char *key, char *out)
{
    fleet_topics_status st = topics_get_str(r, key, true, out, FLEET_TOPICS_DIGEST_HEX + 1);
    if (st == FLEET_TOPICS_OK && check_digest(r->message, out) != FLEET_TOPICS_OK)
        return topics_fail(FLEET_TOPICS_ERANGE, "%s: key '%s': not a SHA-256 hex digest",
                           r->message, key);
    return st;
}

static fleet_topics_status read_id(const topics_reader *r, const char *key, char *out)
{
    fleet_topics_status st = topics_get_str(r, key, true, out, FLEET_TOPICS_MAX_ID + 1);
    if (st == FLEET_TOPICS_OK && topics_check_id(key, out) != FLEET_TOPICS_OK)
        return topics_fail(FLEET_TOPICS_ERANGE, "%s: key '%s': %s", r->message, key,
                           fleet_topics_last_error());
    return st;
}

/* An id that may be absent ("" then). */
static fleet_topics_status read_optional_id(const topics_reader *r, const char *key, char *out)
{
    fleet_topics_status st = topics_get_str(r, key, false, out, FLEET_TOPICS_MAX_ID + 1);
    if (st == FLEET_TOPICS_OK && out[0] && topics_check_id(key, out) != FLEET_TOPICS_OK)
        return topics_fail(FLEET_TOPICS_ERANGE, "%s: key '%s': %s", r->message, key,
                           fleet_topics_last_error());
    return st;
}

#define NULL_ARGS(m, buf, len) (!(m) || !(buf) || !(len))

/* ---- agent birth and death ------------------------------------------------------------- */

fleet_topics_status fleet_msg_birth_encode(const fleet_msg_birth *m, uint8_t **buf, size_t *len)
{
    fleet_topics_status st = FLEET_TOPICS_OK;
    if (NULL_ARGS(m, buf, len) || m->n_models > FLEET_TOPICS_MAX_VARIANTS)
        return topics_fail(FLEET_TOPICS_EINVAL, "birth: bad arguments");
    if ((st = topics_check_id("agent", m->agent)))
        return st;
    for (size_t i = 0; i < m->n_models; i++)
        if ((st = check_digest("birth", m->models[i].digest)))
            return st;
    topics_writer w;
    topics_writer_init(&w, 9);
    topics_put_str(&w, "type", "birth");
    topics_put_str(&w, "agent", m->agent);
    topics_put_uint(&w, "bdseq", m->bdseq);
    topics_put_uint(&w, "cores", m->cores);
    topics_put_str(&w, "cpu", m->cpu);
    topics_put_uint(&w, "memory_mb", m->memory_mb);
    topics_put_str(&w, "runtime", m->runtime);
    topics_put_uint(&w, "time_ms", m->time_ms);
    topics_put_key(&w, "models");
    msgpack_pack_array(&w.packer, m->n_models);
    for (size_t i = 0; i < m->n_models; i++) {
        msgpack_pack_array(&w.packer, 2);
        msgpack_pack_str(&w.packer, FLEET_TOPICS_DIGEST_HEX);
        msgpack_pack_str_body(&w.packer, m->models[i].digest, FLEET_TOPICS_DIGEST_HEX);
        msgpack_pack_uint32(&w.packer, m->models[i].latency_us);
    }
    return topics_writer_finish(&w, buf, len);
}

static fleet_topics_status read_birth(const topics_reader *r, fleet_msg_birth *m)
{
    fleet_topics_status st = FLEET_TOPICS_OK;
    uint64_t cores = 0, memory = 0, latency;
    const msgpack_object_array *models;
    memset(m, 0, sizeof *m);
    TRY(read_id(r, "agent", m->agent));
    TRY(topics_get_uint(r, "bdseq", true, UINT64_MAX, &m->bdseq));
    TRY(topics_get_uint(r, "cores", false, 4096, &cores));
    TRY(topics_get_str(r, "cpu", false, m->cpu, sizeof m->cpu));
    TRY(topics_get_uint(r, "memory_mb", false, UINT32_MAX, &memory));
    TRY(topics_get_str(r, "runtime", false, m->runtime, sizeof m->runtime));
    TRY(topics_get_uint(r, "time_ms", false, UINT64_MAX, &m->time_ms));
    TRY(topics_get_array(r, "models", false, FLEET_TOPICS_MAX_VARIANTS, &models));
    m->cores = (uint32_t)cores;
    m->memory_mb = (uint32_t)memory;
    for (size_t i = 0; i < models->size; i++) {
        const msgpack_object *e = &models->ptr[i];
        if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size != 2 ||
            e->via.array.ptr[0].type != MSGPACK_OBJECT_STR ||
            e->via.array.ptr[0].via.str.size != FLEET_TOPICS_DIGEST_HEX) {
            st = topics_fail(FLEET_TOPICS_ETYPE,
                             "birth: key 'models': entry %zu is not a "
                             "[digest, latency_us] pair",
                             i);
            goto done;
        }
        memcpy(m->models[i].digest, e->via.array.ptr[0].via.str.ptr, FLEET_TOPICS_DIGEST_HEX);
        TRY(check_digest("birth", m->models[i].digest));
        TRY(topics_object_uint(r, "model latency", &e->via.array.ptr[1], UINT32_MAX, &latency));
        m->models[i].latency_us = (uint32_t)latency;
        m->n_models++;
    }
done:
    return st;
}

fleet_topics_status fleet_msg_death_encode(const fleet_msg_death *m, uint8_t **buf, size_t *len)
{
    fleet_topics_status st;
    if (NULL_ARGS(m, buf, len))
        return topics_fail(FLEET_TOPICS_EINVAL, "death: bad arguments");
    if ((st = topics_check_id("agent", m->agent)))
        return st;
    topics_writer w;
    topics_writer_init(&w, 3);
    topics_put_str(&w, "type", "death");
    topics_put_str(&w, "agent", m->agent);
    topics_put_uint(&w, "bdseq", m->bdseq);
    return topics_writer_finish(&w, buf, len);
}

static fleet_topics_status read_death(const topics_reader *r, fleet_msg_death *m)
{
    fleet_topics_status st = FLEET_TOPICS_OK;
    memset(m, 0, sizeof *m);
    TRY(read_id(r, "agent", m->agent));
    TRY(topics_get_uint(r, "bdseq", true, UINT64_MAX, &m->bdseq));
done:
    return st;
}

/* Opens a payload and checks its "type" (birth or death) when want is not NULL. */
static fleet_topics_status open_typed(topics_reader *r, const char *message, const uint8_t *buf,
                                      size_t len, char *type)
{
    fleet_topics_status st = topics_reader_open(r, message, buf, len);
    if (st == FLEET_TOPICS_OK && type)
        st = topics_get_str(r, "type", true, type, 8);
    return st;
}

fleet_topics_status fleet_msg_birth_decode(const uint8_t *buf, size_t len, fleet_msg_birth *m)
{
    topics_reader r;
    char type[8] = "";
    fleet_topics_status st = open_typed(&r, "birth", buf, len, type);
    if (st == FLEET_TOPICS_OK && strcmp(type, "birth") != 0)
        st = topics_fail(FLEET_TOPICS_EMALFORMED, "birth: type is '%s'", type);
    if (st == FLEET_TOPICS_OK)
        st = read_birth(&r, m);
    topics_reader_close(&r);
    return st;
}

fleet_topics_status fleet_msg_death_decode(const uint8_t *buf, size_t len, fleet_msg_death *m)
{
    topics_reader r;
    char type[8] = "";
    fleet_topics_status st = open_typed(&r, "death", buf, len, type);
    if (st == FLEET_TOPICS_OK && strcmp(type, "death") != 0)
        st = topics_fail(FLEET_TOPICS_EMALFORMED, "death: type is '%s'", type);
    if (st == FLEET_TOPICS_OK)
        st = read_death(&r, m);
    topics_reader_close(&r);
    return st;
}

fleet_topics_status fleet_msg_agent_state_decode(const uint8_t *buf, size_t len,
                                                 fleet_msg_agent_state *m)
{
    topics_reader r;
    char type[8] = "";
    memset(m, 0, sizeof *m);
    fleet_topics_status st = open_typed(&r, "agent state", buf, len, type);
    if (st == FLEET_TOPICS_OK) {
        m->alive = strcmp(type, "birth") == 0;
        if (m->alive)
            st = read_birth(&r, &m->birth);
        else if (strcmp(type, "death") == 0)
            st = read_death(&r, &m->death);
        else
            st = topics_fail(FLEET_TOPICS_EMALFORMED, "agent state: unknown type '%s'", type);
    }
    topics_reader_close(&r);
    return st;
}

/* ---- heartbeat, coordinator state ------------------------------------------------------ */

fleet_topics_status fleet_msg_heartbeat_encode(const fleet_msg_heartbeat *m, uint8_t **buf,
                                               size_t *len)
{
    fleet_topics_status st;
    if (NULL_ARGS(m, buf, len) || !isfinite(m->load))
        return topics_fail(FLEET_TOPICS_EINVAL, "heartbeat: bad arguments");
    if ((st = topics_check_id("agent", m->agent)))
        return st;
    topics_writer w;
    topics_writer_init(&w, 12);
    topics_put_str(&w, "agent", m->agent);
    topics_put_uint(&w, "bdseq", m->bdseq);
    topics_put_uint(&w, "seq", m->seq);
    topics_put_float(&w, "load", m->load);
    topics_put_uint(&w, "queue", m->queue);
    topics_put_uint(&w, "latency_us", m->latency_ewma_us);
    topics_put_uint(&w, "processed", m->processed);
    topics_put_uint(&w, "dropped_expired", m->dropped_expired);
    topics_put_uint(&w, "dropped_full", m->dropped_full);
    topics_put_uint(&w, "dropped_moved", m->dropped_moved);
    topics_put_uint(&w, "failed", m->failed);
    topics_put_uint(&w, "time_ms", m->time_ms);
    return topics_writer_finish(&w, buf, len);
}

fleet_topics_status fleet_msg_heartbeat_decode(const uint8_t *buf, size_t len,
                                               fleet_msg_heartbeat *m)
{
    topics_reader r;
    uint64_t queue = 0, latency = 0;
    memset(m, 0, sizeof *m);
    fleet_topics_status st = topics_reader_open(&r, "heartbeat", buf, len);
    if (st)
        goto done;
    TRY(read_id(&r, "agent", m->agent));
    TRY(topics_get_uint(&r, "bdseq", true, UINT64_MAX, &m->bdseq));
    TRY(topics_get_uint(&r, "seq", false, UINT64_MAX, &m->seq));
    TRY(topics_get_float(&r, "load", false, &m->load));
    TRY(topics_get_uint(&r, "queue", false, UINT32_MAX, &queue));
    TRY(topics_get_uint(&r, "latency_us", false, UINT32_MAX, &latency));
    TRY(topics_get_uint(&r, "processed", false, UINT64_MAX, &m->processed));
    TRY(topics_get_uint(&r, "dropped_expired", false, UINT64_MAX, &m->dropped_expired));
    TRY(topics_get_uint(&r, "dropped_full", false, UINT64_MAX, &m->dropped_full));
    TRY(topics_get_uint(&r, "dropped_moved", false, UINT64_MAX, &m->dropped_moved));
    TRY(topics_get_uint(&r, "failed", false, UINT64_MAX, &m->failed));
    TRY(topics_get_uint(&r, "time_ms", false, UINT64_MAX, &m->time_ms));
    m->queue = (uint32_t)queue;
    m->latency_ewma_us = (uint32_t)latency;
done:
    topics_reader_close(&r);
    return st;
}

fleet_topics_status fleet_msg_coordinator_state_encode(const fleet_msg_coordinator_state *m,
                                                       uint8_t **buf, size_t *len)
{
    fleet_topics_status st;
    if (NULL_ARGS(m, buf, len))
        return topics_fail(FLEET_TOPICS_EINVAL, "coordinator state: bad arguments");
    if ((st = topics_check_id("coordinator", m->coordinator)))
        return st;
    if (m->stream[0] && (st = topics_check_id("stream", m->stream)))
        return st;
    topics_writer w;
    bool drained = m->drained && !m->online, backup = m->backup && m->online;
    topics_writer_init(&w, 3 + (m->stream[0] != 0) + drained + backup);
    topics_put_str(&w, "coordinator", m->coordinator);
    topics_put_bool(&w, "online", m->online);
    topics_put_uint(&w, "time_ms", m->time_ms);
    if (m->stream[0])
        topics_put_str(&w, "stream", m->stream);
    if (drained)
        topics_put_bool(&w, "drained", true);
    if (backup)
        topics_put_bool(&w, "backup", true);
    return topics_writer_finish(&w, buf, len);
}

fleet_topics_status fleet_msg_coordinator_state_decode(const uint8_t *buf, size_t len,
                                                       fleet_msg_coordinator_state *m)
{
    topics_reader r;
    memset(m, 0, sizeof *m);
    fleet_topics_status st = topics_reader_open(&r, "coordinator state", buf, len);
    if (st)
        goto done;
    TRY(read_id(&r, "coordinator", m->coordinator));
    TRY(topics_get_bool(&r, "online", true, &m->online));
    TRY(topics_get_uint(&r, "time_ms", false, UINT64_MAX, &m->time_ms));
    TRY(read_optional_id(&r, "stream", m->stream));
    TRY(topics_get_bool(&r, "drained", false, &m->drained));
    TRY(topics_get_bool(&r, "backup", false, &m->backup));
    m->drained = m->drained && !m->online;
    m->backup = m->backup && m->online;
done:
    topics_reader_close(&r);
    return st;
}

/* ---- assignment, model transfer --------------------------------------------------------- */

fleet_topics_status fleet_msg_assignment_encode(const fleet_msg_assignment *m, uint8_t **buf,
                                                size_t *len)
{
    fleet_topics_status st;
    if (NULL_ARGS(m, buf, len) || m->n_variants > FLEET_TOPICS_MAX_VARIANTS)
        return topics_fail(FLEET_TOPICS_EINVAL, "assignment: bad arguments");
    if ((st = topics_check_id("agent", m->agent)) ||
        (st = topics_check_id("coordinator", m->coordinator)) ||
        (st = topics_check_id("stream", m->stream)))
        return st;
    for (size_t i = 0; i < m->n_variants; i++) {
        const fleet_assigned_variant *v = &m->variants[i];
        if ((st = check_digest("assignment", v->digest)))
            return st;
        if (v->output > FLEET_OUTPUT_INT8 || v->k > FLEET_TOPICS_MAX_TOPK ||
            !(v->temperature > 0.0f) || !isfinite(v->temperature))
            return topics_fail(FLEET_TOPICS_EINVAL, "assignment: variant %zu is out of range", i);
    }
    if (m->deadline_ms > FLEET_TOPICS_MAX_DEADLINE_MS)
        return topics_fail(FLEET_TOPICS_EINVAL, "assignment: deadline_ms is out of range");
    topics_writer w;
    topics_writer_init(&w, 6);
    topics_put_str(&w, "agent", m->agent);
    topics_put_str(&w, "coordinator", m->coordinator);
    topics_put_uint(&w, "epoch", m->epoch);
    topics_put_str(&w, "stream", m->stream);
    topics_put_uint(&w, "deadline_ms", m->deadline_ms);
    topics_put_key(&w, "variants");
    msgpack_pack_array(&w.packer, m->n_variants);
    for (size_t i = 0; i < m->n_variants; i++) {
        const fleet_assigned_variant *v = &m->variants[i];
        msgpack_pack_map(&w.packer, 6);
        topics_put_uint(&w, "variant", v->variant);
        topics_put_str(&w, "digest", v->digest);
        topics_put_uint(&w, "bytes", v->model_bytes);
        topics_put_uint(&w, "output", v->output);
        topics_put_uint(&w, "k", v->k);
        topics_put_float(&w, "temperature", v->temperature);
    }
    return topics_writer_finish(&w, buf, len);
}

static fleet_topics_status read_variant(const topics_reader *r, const msgpack_object *o,
                                        fleet_assigned_variant *v)
{
    fleet_topics_status st = FLEET_TOPICS_OK;
    uint64_t variant = 0, output = 0, k = 0;
    if (o->type != MSGPACK_OBJECT_MAP)
        return topics_fail(FLEET_TOPICS_ETYPE, "assignment: a variant is not a map");
    topics_reader inner = *r;
    inner.unpacked.data = *o;
    v->temperature = 1.0f;
    TRY(topics_get_uint(&inner, "variant", true, FLEET_TOPICS_MAX_VARIANTS - 1, &variant));
    TRY(read_digest(&inner, "digest", v->digest));
    TRY(topics_get_uint(&inner, "bytes", true, (uint64_t)1 << 32, &v->model_bytes));
    TRY(topics_get_uint(&inner, "output", false, FLEET_OUTPUT_INT8, &output));
    TRY(topics_get_uint(&inner, "k", false, FLEET_TOPICS_MAX_TOPK, &k));
    TRY(topics_get_float(&inner, "temperature", false, &v->temperature));
    if (!(v->temperature > 0.0f)) {
        st = topics_fail(FLEET_TOPICS_ERANGE, "assignment: temperature must be positive");
        goto done;
    }
    v->variant = (uint32_t)variant;
    v->output = (fleet_output_kind)output;
    v->k = (uint32_t)k;
done:
    return st;
}

fleet_topics_status fleet_msg_assignment_decode(const uint8_t *buf, size_t len,
                                                fleet_msg_assignment *m)
{
    topics_reader r;
    const msgpack_object_array *variants;
    memset(m, 0, sizeof *m);
    fleet_topics_status st = topics_reader_open(&r, "assignment", buf, len);
    if (st)
        goto done;
    TRY(read_id(&r, "agent", m->agent));
    TRY(read_id(&r, "coordinator", m->coordinator));
    TRY(topics_get_uint(&r, "epoch", true, UINT64_MAX, &m->epoch));
    TRY(read_id(&r, "stream", m->stream));
    uint64_t deadline = 0;
    TRY(topics_get_uint(&r, "deadline_ms", false, FLEET_TOPICS_MAX_DEADLINE_MS, &deadline));
    m->deadline_ms = (uint32_t)deadline;
    TRY(topics_get_array(&r, "variants", true, FLEET_TOPICS_MAX_VARIANTS, &variants));
    for (size_t i = 0; i < variants->size; i++, m->n_variants++)
        TRY(read_variant(&r, &variants->ptr[i], &m->variants[i]));
done:
    topics_reader_close(&r);
    return st;
}

fleet_topics_status fleet_msg_model_get_encode(const fleet_msg_model_get *m, uint8_t **buf,
                                               size_t *len)
{
    fleet_topics_status st;
    if (NULL_ARGS(m, buf, len))
        return topics_fail(FLEET_TOPICS_EINVAL, "model get: bad arguments");
    if ((st = topics_check_id("agent", m->agent)) || (st = check_digest("model get", m->digest)))
        return st;
    topics_writer w;
    topics_writer_init(&w, 4);
    topics_put_str(&w, "agent", m->agent);
    topics_put_str(&w, "digest", m->digest);
    topics_put_uint(&w, "first", m->first);
    topics_put_uint(&w, "count", m->count);
    return topics_writer_finish(&w, buf, len);
}

fleet_topics_status fleet_msg_model_get_decode(const uint8_t *buf, size_t len,
                                               fleet_msg_model_get *m)
{
    topics_reader r;
    uint64_t first = 0, count = 0;
    memset(m, 0, sizeof *m);
    fleet_topics_status st = topics_reader_open(&r, "model get", buf, len);
    if (st)
        goto done;
    TRY(read_id(&r, "agent", m->agent));
    TRY(read_digest(&r, "digest", m->digest));
    TRY(topics_get_uint(&r, "first", false, UINT32_MAX, &first));
    TRY(topics_get_uint(&r, "count", true, UINT32_MAX, &count));
    m->first = (uint32_t)first;
    m->count = (uint32_t)count;
done:
    topics_reader_close(&r);
    return st;
}

fleet_topics_status fleet_msg_chunk_encode(const fleet_msg_chunk *m, uint8_t **buf, size_t *len)
{
    fleet_topics_status st;
    if (NULL_ARGS(m, buf, len) || m->size > FLEET_TOPICS_MAX_CHUNK || (m->size && !m->data) ||
        m->index >= m->chunks || m->total_bytes == 0)
        return topics_fail(FLEET_TOPICS_EINVAL, "chunk: bad arguments");
    if ((st = check_digest("chunk", m->digest)))
        return st;
    topics_writer w;
    topics_writer_init(&w, 5);
    topics_put_str(&w, "digest", m->digest);
    topics_put_uint(&w, "index", m->index);
    topics_put_uint(&w, "chunks", m->chunks);
    topics_put_uint(&w, "total", m->total_bytes);
    topics_put_bin(&w, "data", m->data, m->size);
    return topics_writer_finish(&w, buf, len);
}

fleet_topics_status fleet_msg_chunk_decode(const uint8_t *buf, size_t len, fleet_msg_chunk *m)
{
    topics_reader r;
    uint64_t index = 0, chunks = 0;
    memset(m, 0, sizeof *m);
    fleet_topics_status st = topics_reader_open(&r, "chunk", buf, len);
    if (st)
        goto done;
    TRY(read_digest(&r, "digest", m->digest));
    TRY(topics_get_uint(&r, "index", true, UINT32_MAX, &index));
    TRY(topics_get_uint(&r, "chunks", true, UINT32_MAX, &chunks));
    TRY(topics_get_uint(&r, "total", true, (uint64_t)1 << 32, &m->total_bytes));
    TRY(topics_get_bin(&r, "data", true, FLEET_TOPICS_MAX_CHUNK, &m->data, &m->size));
    m->index = (uint32_t)index;
    m->chunks = (uint32_t)chunks;
    if (m->index >= m->chunks || m->total_bytes == 0)
        st = topics_fail(FLEET_TOPICS_ERANGE, "chunk: index %u of %u chunks", m->index, m->chunks);
done:
    topics_reader_close(&r);
    return st;
}

/* ---- request, result, decision --------------------------------------------------------- */

fleet_topics_status fleet_msg_request_encode(const fleet_msg_request *m, uint8_t **buf, size_t *len)
{
    fleet_topics_status st;
    if (NULL_ARGS(m, buf, len))
        return topics_fail(FLEET_TOPICS_EINVAL, "request: bad arguments");
    if ((st = topics_check_id("request id", m->id)) ||
        (st = topics_check_id("stream", m->stream)) ||
        (st = topics_check_tensor("request", &m->tensor)))
        return st;
    topics_writer w;
    topics_writer_init(&w, 4);
    topics_put_str(&w, "id", m->id);
    topics_put_str(&w, "stream", m->stream);
    topics_put_uint(&w, "deadline_ms", m->deadline_ms);
    topics_put_tensor(&w, "tensor", &m->tensor);
    return topics_writer_finish(&w, buf, len);
}

fleet_topics_status fleet_msg_request_decode(const uint8_t *buf, size_t len, fleet_msg_request *m)
{
    topics_reader r;
    uint64_t deadline = 0;
    memset(m, 0, sizeof *m);
    fleet_topics_status st = topics_reader_open(&r, "request", buf, len);
    if (st)
        goto done;
    TRY(read_id(&r, "id", m->id));
    TRY(read_id(&r, "stream", m->stream));
    TRY(topics_get_uint(&r, "deadline_ms", false, FLEET_TOPICS_MAX_DEADLINE_MS, &deadline));
    TRY(topics_get_tensor(&r, "tensor", true, &m->tensor));
    m->deadline_ms = (uint32_t)deadline;
done:
    topics_reader_close(&r);
    return st;
}

static fleet_topics_status check_pairs(const char *what, const uint16_t *classes,
                                       const float *probs, size_t k)
{
    if (k > FLEET_TOPICS_MAX_TOPK)
        return topics_fail(FLEET_TOPICS_EINVAL, "%s: %zu pairs, at most %d", what, k,
                           FLEET_TOPICS_MAX_TOPK);
    for (size_t i = 0; i < k; i++)
        if (!isfinite(probs[i]))
            return topics_fail(FLEET_TOPICS_EINVAL, "%s: probability %zu is not finite", what, i);
    (void)classes;
    return FLEET_TOPICS_OK;
}

static void put_pairs(topics_writer *w, const char *key, const uint16_t *classes,
                      const float *probs, size_t k)
{
    topics_put_key(w, key);
    msgpack_pack_array(&w->packer, k);
    for (size_t i = 0; i < k; i++) {
        msgpack_pack_array(&w->packer, 2);
        msgpack_pack_uint16(&w->packer, classes[i]);
        msgpack_pack_float(&w->packer, probs[i]);
    }
}

static fleet_topics_status read_pairs(const topics_reader *r, const char *key, bool required,
                                      uint16_t *classes, float *probs, size_t *k)
{
    const msgpack_object_array *a;
    uint64_t cls;
    fleet_topics_status st = topics_get_array(r, key, required, FLEET_TOPICS_MAX_TOPK, &a);
    for (size_t i = 0; st == FLEET_TOPICS_OK && i < a->size; i++) {
        const msgpack_object *e = &a->ptr[i];
        if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size != 2)
            return topics_fail(FLEET_TOPICS_ETYPE,
                               "%s: key '%s': entry %zu is not a [class, prob] pair", r->message,
                               key, i);
        if ((st = topics_object_uint(r, "class", &e->via.array.ptr[0], UINT16_MAX, &cls)) ||
            (st = topics_object_float(r, "probability", &e->via.array.ptr[1], &probs[i])))
            return st;
        classes[i] = (uint16_t)cls;
    }
    *k = a->size;
    return st;
}

static void put_indices(topics_writer *w, const char *key, const uint32_t *v, size_t n)
{
    topics_put_key(w, key);
    msgpack_pack_array(&w->packer, n);
    for (size_t i = 0; i < n; i++)
        msgpack_pack_uint32(&w->packer, v[i]);
}

static fleet_topics_status read_indices(const topics_reader *r, const char *key, uint32_t *v,
                                        size_t *n)
{
    const msgpack_object_array *a;
    uint64_t x;
    fleet_topics_status st = topics_get_array(r, key, false, FLEET_TOPICS_MAX_VARIANTS, &a);
    for (size_t i = 0; st == FLEET_TOPICS_OK && i < a->size; i++) {
        if ((st = topics_object_uint(r, key, &a->ptr[i], FLEET_TOPICS_MAX_VARIANTS - 1, &x)))
            return st;
        v[i] = (uint32_t)x;
    }
    *n = a->size;
    return st;
}

fleet_topics_status fleet_msg_result_encode(const fleet_msg_result *m, uint8_t **buf, size_t *len)
{
    fleet_topics_status st;
    if (NULL_ARGS(m, buf, len) || m->output > FLEET_OUTPUT_INT8 ||
        m->variant >= FLEET_TOPICS_MAX_VARIANTS)
        return topics_fail(FLEET_TOPICS_EINVAL, "result: bad arguments");
    if ((st = topics_check_id("request id", m->id)) ||
        (st = topics_check_id("stream", m->stream)) || (st = topics_check_id("agent", m->agent)))
        return st;
    bool topk = m->output == FLEET_OUTPUT_TOPK;
    if (topk ? (st = check_pairs("result", m->classes, m->probs, m->k))
             : (st = topics_check_tensor("result features", &m->features)))
        return st;
    topics_writer w;
    topics_writer_init(&w, 8);
    topics_put_str(&w, "id", m->id);
    topics_put_str(&w, "stream", m->stream);
    topics_put_str(&w, "agent", m->agent);
    topics_put_uint(&w, "variant", m->variant);
    topics_put_uint(&w, "epoch", m->epoch);
    topics_put_uint(&w, "infer_us", m->infer_us);
    topics_put_uint(&w, "output", m->output);
    if (topk)
        put_pairs(&w, "topk", m->classes, m->probs, m->k);
    else
        topics_put_tensor(&w, "features", &m->features);
    return topics_writer_finish(&w, buf, len);
}

fleet_topics_status fleet_msg_result_decode(const uint8_t *buf, size_t len, fleet_msg_result *m)
{
    topics_reader r;
    uint64_t variant = 0, output = 0, infer = 0;
    memset(m, 0, sizeof *m);
    fleet_topics_status st = topics_reader_open(&r, "result", buf, len);
    if (st)
        goto done;
    TRY(read_id(&r, "id", m->id));
    TRY(read_id(&r, "stream", m->stream));
    TRY(read_id(&r, "agent", m->agent));
    TRY(topics_get_uint(&r, "variant", true, FLEET_TOPICS_MAX_VARIANTS - 1, &variant));
    TRY(topics_get_uint(&r, "epoch", false, UINT64_MAX, &m->epoch));
    TRY(topics_get_uint(&r, "infer_us", false, UINT32_MAX, &infer));
    TRY(topics_get_uint(&r, "output", false, FLEET_OUTPUT_INT8, &output));
    m->variant = (uint32_t)variant;
    m->infer_us = (uint32_t)infer;
    m->output = (fleet_output_kind)output;
    if (m->output == FLEET_OUTPUT_TOPK)
        TRY(read_pairs(&r, "topk", true, m->classes, m->probs, &m->k));
    else
        TRY(topics_get_tensor(&r, "features", true, &m->features));
done:
    topics_reader_close(&r);
    return st;
}

fleet_topics_status fleet_msg_decision_encode(const fleet_msg_decision *m, uint8_t **buf,
                                              size_t *len)
{
    fleet_topics_status st;
    if (NULL_ARGS(m, buf, len) || m->n_used > FLEET_TOPICS_MAX_VARIANTS ||
        m->n_missing > FLEET_TOPICS_MAX_VARIANTS || !isfinite(m->confidence) ||
        strnlen(m->rule, sizeof m->rule) == sizeof m->rule ||
        strnlen(m->error, sizeof m->error) == sizeof m->error)
        return topics_fail(FLEET_TOPICS_EINVAL, "decision: bad arguments");
    if ((st = topics_check_id("request id", m->id)) ||
        (st = topics_check_id("stream", m->stream)) ||
        (st = topics_check_id("coordinator", m->coordinator)) ||
        (st = check_pairs("decision", m->classes, m->probs, m->k)))
        return st;
    topics_writer w;
    topics_writer_init(&w, 13 + (m->error[0] != '\0'));
    topics_put_str(&w, "id", m->id);
    topics_put_str(&w, "stream", m->stream);
    topics_put_str(&w, "coordinator", m->coordinator);
    topics_put_int(&w, "class", m->cls);
    topics_put_float(&w, "confidence", m->confidence);
    put_pairs(&w, "topk", m->classes, m->probs, m->k);
    put_indices(&w, "used", m->used, m->n_used);
    put_indices(&w, "missing", m->missing, m->n_missing);
    topics_put_bool(&w, "degraded", m->degraded);
    topics_put_str(&w, "rule", m->rule);
    topics_put_uint(&w, "total_us", m->total_us);
    topics_put_uint(&w, "slowest_infer_us", m->slowest_infer_us);
    topics_put_uint(&w, "aggregate_us", m->aggregate_us);
    if (m->error[0])
        topics_put_str(&w, "error", m->error);
    return topics_writer_finish(&w, buf, len);
}

fleet_topics_status fleet_msg_decision_decode(const uint8_t *buf, size_t len, fleet_msg_decision *m)
{
    topics_reader r;
    int64_t cls = -1;
    uint64_t total = 0, slowest = 0, aggregate = 0;
    memset(m, 0, sizeof *m);
    fleet_topics_status st = topics_reader_open(&r, "decision", buf, len);
    if (st)
        goto done;
    TRY(read_id(&r, "id", m->id));
    TRY(read_id(&r, "stream", m->stream));
    TRY(read_id(&r, "coordinator", m->coordinator));
    TRY(topics_get_int(&r, "class", true, -1, UINT16_MAX, &cls));
    TRY(topics_get_float(&r, "confidence", false, &m->confidence));
    TRY(read_pairs(&r, "topk", false, m->classes, m->probs, &m->k));
    TRY(read_indices(&r, "used", m->used, &m->n_used));
    TRY(read_indices(&r, "missing", m->missing, &m->n_missing));
    TRY(topics_get_bool(&r, "degraded", true, &m->degraded));
    TRY(topics_get_str(&r, "rule", false, m->rule, sizeof m->rule));
    TRY(topics_get_uint(&r, "total_us", false, UINT32_MAX, &total));
    TRY(topics_get_uint(&r, "slowest_infer_us", false, UINT32_MAX, &slowest));
    TRY(topics_get_uint(&r, "aggregate_us", false, UINT32_MAX, &aggregate));
    TRY(topics_get_str(&r, "error", false, m->error, sizeof m->error));
    m->cls = (int32_t)cls;
    m->total_us = (uint32_t)total;
    m->slowest_infer_us = (uint32_t)slowest;
    m->aggregate_us = (uint32_t)aggregate;
done:
    topics_reader_close(&r);
    return st;
}
