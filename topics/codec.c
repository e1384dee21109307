/* codec.c: bounds-checked msgpack reading and writing for the message codecs. */
#include "codec.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOPICS_MAX_PAYLOAD ((size_t)8 << 20)

static _Thread_local char topics_error[320] = "no error";

fleet_topics_status topics_fail(fleet_topics_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    /* Through a copy: an argument may be the last error itself, wrapped in a new one. */
    char text[sizeof topics_error];
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    memcpy(topics_error, text, sizeof text);
    return status;
}

const char *fleet_topics_last_error(void)
{
    return topics_error;
}

const char *fleet_topics_strerror(fleet_topics_status status)
{
    static const char *const text[] = {"success",           "invalid argument",    "out of memory",
                                       "malformed message", "wrong type",          "missing key",
                                       "out of range",      "unsupported version", "foreign topic"};
    return (size_t)status < sizeof text / sizeof text[0] ? text[status] : "unknown status";
}

size_t fleet_dtype_width(fleet_dtype dtype)
{
    return dtype == FLEET_DTYPE_F32 ? 4 : 1;
}

/* ---- writing --------------------------------------------------------------------------- */

void topics_writer_init(topics_writer *w, size_t fields)
{
    msgpack_sbuffer_init(&w->buffer);
    msgpack_packer_init(&w->packer, &w->buffer, msgpack_sbuffer_write);
    msgpack_pack_map(&w->packer, fields + 1);
    topics_put_uint(w, "v", FLEET_TOPICS_VERSION);
}

void topics_put_key(topics_writer *w, const char *key)
{
    size_t n = strlen(key);
    msgpack_pack_str(&w->packer, n);
    msgpack_pack_str_body(&w->packer, key, n);
}

void topics_put_str(topics_writer *w, const char *key, const char *value)
{
    size_t n = strlen(value);
    topics_put_key(w, key);
    msgpack_pack_str(&w->packer, n);
    msgpack_pack_str_body(&w->packer, value, n);
}

void topics_put_uint(topics_writer *w, const char *key, uint64_t value)
{
    topics_put_key(w, key);
    msgpack_pack_uint64(&w->packer, value);
}

void topics_put_int(topics_writer *w, const char *key, int64_t value)
{
    topics_put_key(w, key);
    msgpack_pack_int64(&w->packer, value);
}

void topics_put_float(topics_writer *w, const char *key, float value)
{
    topics_put_key(w, key);
    msgpack_pack_float(&w->packer, value);
}

void topics_put_bool(topics_writer *w, const char *key, bool value)
{
    topics_put_key(w, key);
    if (value)
        msgpack_pack_true(&w->packer);
    else
        msgpack_pack_false(&w->packer);
}

void topics_put_bin(topics_writer *w, const char *key, const uint8_t *data, size_t size)
{
    topics_put_key(w, key);
    msgpack_pack_bin(&w->packer, size);
    msgpack_pack_bin_body(&w->packer, data, size);
}

void topics_put_tensor(topics_writer *w, const char *key, const fleet_tensor *t)
{
    topics_put_key(w, key);
    msgpack_pack_map(&w->packer, 5);
    topics_put_uint(w, "dtype", (uint64_t)t->dtype);
    topics_put_float(w, "scale", t->scale);
    topics_put_int(w, "zero", t->zero_point);
    topics_put_key(w, "shape");
    msgpack_pack_array(&w->packer, t->rank);
    for (size_t i = 0; i < t->rank; i++)
        msgpack_pack_uint32(&w->packer, t->shape[i]);
    topics_put_bin(w, "data", t->data, t->size);
}

fleet_topics_status topics_writer_finish(topics_writer *w, uint8_t **buf, size_t *len)
{
    if (!w->buffer.data) {
        msgpack_sbuffer_destroy(&w->buffer);
        return topics_fail(FLEET_TOPICS_ENOMEM, "out of memory while encoding");
    }
    *buf = (uint8_t *)w->buffer.data;
    *len = w->buffer.size;
    w->buffer.data = NULL; /* ownership moves to the caller */
    return FLEET_TOPICS_OK;
}

fleet_topics_status topics_check_id(const char *what, const char *id)
{
    size_t n = strnlen(id, FLEET_TOPICS_MAX_ID + 1);
    if (n == 0 || n > FLEET_TOPICS_MAX_ID || strpbrk(id, "/+#"))
        return topics_fail(FLEET_TOPICS_EINVAL,
                           "%s '%.*s' must be 1 to %d characters without '/', '+' or '#'", what,
                           (int)(n > 80 ? 80 : n), id, FLEET_TOPICS_MAX_ID);
    return FLEET_TOPICS_OK;
}

fleet_topics_status topics_check_tensor(const char *what, const fleet_tensor *t)
{
    size_t elements = 1;
    if (t->dtype > FLEET_DTYPE_I8 || t->rank == 0 || t->rank > FLEET_TOPICS_MAX_DIMS ||
        !isfinite(t->scale) || t->zero_point < -128 || t->zero_point > 255)
        return topics_fail(FLEET_TOPICS_EINVAL, "%s: bad dtype, rank, scale or zero point", what);
    for (size_t i = 0; i < t->rank; i++) {
        if (t->shape[i] == 0 || t->shape[i] > FLEET_TOPICS_MAX_TENSOR)
            return topics_fail(FLEET_TOPICS_EINVAL, "%s: dimension %zu is %u", what, i,
                               t->shape[i]);
        elements *= t->shape[i];
        if (elements > FLEET_TOPICS_MAX_TENSOR)
            return topics_fail(FLEET_TOPICS_EINVAL, "%s: too many elements", what);
    }
    if (t->size != elements * fleet_dtype_width(t->dtype) || (t->size && !t->data))
        return topics_fail(FLEET_TOPICS_EINVAL, "%s: %zu bytes for %zu elements", what, t->size,
                           elements);
    return FLEET_TOPICS_OK;
}

/* ---- reading --------------------------------------------------------------------------- */

/* msgpack-c allocates a container's slots from its declared count before reading them; a
 * five-byte payload could claim four billion. Every element takes at least one byte, so a
 * count larger than what is left cannot be genuine: refuse such payloads up front. */
static bool counts_plausible(const uint8_t *p, size_t len)
{
    size_t pos = 0, pending = 1;
    while (pending > 0) {
        if (pos >= len)
            return false;
        uint8_t b = p[pos++];
        uint64_t count = 0, skip = 0;
        size_t width = 0;
        pending--;
        if (b <= 0x7f || b >= 0xe0 || (b >= 0xc0 && b <= 0xc3))
            continue; /* fixint, nil, bool */
        if ((b & 0xf0) == 0x80)
            count = 2u * (b & 0x0f);
        else if ((b & 0xf0) == 0x90)
            count = b & 0x0f;
        else if ((b & 0xe0) == 0xa0)
            skip = b & 0x1f;
        else if (b == 0xdc || b == 0xdd || b == 0xde || b == 0xdf) {
            width = (b & 1) ? 4 : 2;
            for (size_t i = 0; i < width && pos + i < len; i++)
                count = count << 8 | p[pos + i];
            count *= (b >= 0xde) ? 2 : 1;
        } else {
            static const uint8_t fixed[] = {
                [0xca - 0xc4] = 4, [0xcb - 0xc4] = 8, [0xcc - 0xc4] = 1, [0xcd - 0xc4] = 2,
                [0xce - 0xc4] = 4, [0xcf - 0xc4] = 8, [0xd0 - 0xc4] = 1, [0xd1 - 0xc4] = 2,
                [0xd2 - 0xc4] = 4, [0xd3 - 0xc4] = 8, [0xd4 - 0xc4] = 2, [0xd5 - 0xc4] = 3,
                [0xd6 - 0xc4] = 5, [0xd7 - 0xc4] = 9, [0xd8 - 0xc4] = 17};
            if (b >= 0xc4 && b <= 0xd8 && fixed[b - 0xc4]) {
                skip = fixed[b - 0xc4];
            } else { /* bin, str, ext with an explicit length */
                width = (b == 0xc4 || b == 0xd9 || b == 0xc7)   ? 1
                        : (b == 0xc5 || b == 0xda || b == 0xc8) ? 2
                        : (b == 0xc6 || b == 0xdb || b == 0xc9) ? 4
                                                                : 0;
                if (width == 0)
                    return false;
                for (size_t i = 0; i < width && pos + i < len; i++)
                    skip = skip << 8 | p[pos + i];
                skip += (b >= 0xc7 && b <= 0xc9) ? 1 : 0;
            }
        }
        if (pos + width > len || count > len - pos - width || skip > len - pos - width)
            return false;
        pos += width + skip;
        pending += count;
        if (pending > len - pos)
            return false;
    }
    return true;
}

fleet_topics_status topics_reader_open(topics_reader *r, const char *message, const uint8_t *buf,
                                       size_t len)
{
    memset(r, 0, sizeof *r);
    r->message = message;
    r->payload = buf;
    msgpack_unpacked_init(&r->unpacked);
    if (!buf || len == 0)
        return topics_fail(FLEET_TOPICS_EMALFORMED, "%s: empty payload", message);
    if (len > TOPICS_MAX_PAYLOAD)
        return topics_fail(FLEET_TOPICS_ERANGE, "%s: %zu bytes is more than the 8 MiB allowed",
                           message, len);
    if (!counts_plausible(buf, len))
        return topics_fail(FLEET_TOPICS_EMALFORMED, "%s: not msgpack (or truncated)", message);
    size_t off = 0;
    msgpack_unpack_return ret = msgpack_unpack_next(&r->unpacked, (const char *)buf, len, &off);
    if (ret != MSGPACK_UNPACK_SUCCESS)
        return topics_fail(ret == MSGPACK_UNPACK_NOMEM_ERROR ? FLEET_TOPICS_ENOMEM
                                                             : FLEET_TOPICS_EMALFORMED,
                           "%s: not msgpack (or truncated)", message);
    if (off != len)
        return topics_fail(FLEET_TOPICS_EMALFORMED, "%s: %zu bytes after the message", message,
                           len - off);
    if (r->unpacked.data.type != MSGPACK_OBJECT_MAP)
        return topics_fail(FLEET_TOPICS_EMALFORMED, "%s: expected a map", message);
    r->map = &r->unpacked.data.via.map;
    uint64_t version = 0;
    fleet_topics_status st = topics_get_uint(r, "v", true, UINT32_MAX, &version);
    if (st == FLEET_TOPICS_OK && version > FLEET_TOPICS_VERSION)
        return topics_fail(FLEET_TOPICS_EVERSION, "%s: version %llu is newer than %d", message,
                           (unsigned long long)version, FLEET_TOPICS_VERSION);
    return st;
}

void topics_reader_close(topics_reader *r)
{
    msgpack_unpacked_destroy(&r->unpacked);
}

const msgpack_object *topics_map_get(const msgpack_object *map, const char *key)
{
    if (!map || map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    size_t n = strlen(key);
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
            memcmp(k->via.str.ptr, key, n) == 0)
            return &map->via.map.ptr[i].val;
    }
    return NULL;
}

const msgpack_object *topics_get(const topics_reader *r, const char *key)
{
    return topics_map_get(&r->unpacked.data, key);
}

static fleet_topics_status present(const topics_reader *r, const char *key, bool required,
                                   const msgpack_object **o)
{
    *o = topics_get(r, key);
    if (!*o && required)
        return topics_fail(FLEET_TOPICS_EMISSING, "%s: key '%s' is missing", r->message, key);
    return FLEET_TOPICS_OK;
}

fleet_topics_status topics_get_str(const topics_reader *r, const char *key, bool required,
                                   char *out, size_t size)
{
    const msgpack_object *o;
    fleet_topics_status st = present(r, key, required, &o);
    if (st != FLEET_TOPICS_OK || !o)
        return st;
    if (o->type != MSGPACK_OBJECT_STR)
        return topics_fail(FLEET_TOPICS_ETYPE, "%s: key '%s': expected a string", r->message, key);
    if (o->via.str.size >= size || memchr(o->via.str.ptr, '\0', o->via.str.size))
        return topics_fail(FLEET_TOPICS_ERANGE, "%s: key '%s': longer than %zu or holds NUL",
                           r->message, key, size - 1);
    memcpy(out, o->via.str.ptr, o->via.str.size);
    out[o->via.str.size] = '\0';
    return FLEET_TOPICS_OK;
}

fleet_topics_status topics_object_uint(const topics_reader *r, const char *what,
                                       const msgpack_object *o, uint64_t max, uint64_t *out)
{
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        return topics_fail(FLEET_TOPICS_ERANGE, "%s: %s: negative", r->message, what);
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return topics_fail(FLEET_TOPICS_ETYPE, "%s: %s: expected an integer", r->message, what);
    if (o->via.u64 > max)
        return topics_fail(FLEET_TOPICS_ERANGE, "%s: %s: %llu is above %llu", r->message, what,
                           (unsigned long long)o->via.u64, (unsigned long long)max);
    *out = o->via.u64;
    return FLEET_TOPICS_OK;
}

fleet_topics_status topics_get_uint(const topics_reader *r, const char *key, bool required,
                                    uint64_t max, uint64_t *out)
{
    const msgpack_object *o;
    fleet_topics_status st = present(r, key, required, &o);
    if (st != FLEET_TOPICS_OK || !o)
        return st;
    char what[64];
    snprintf(what, sizeof what, "key '%s'", key);
    return topics_object_uint(r, what, o, max, out);
}

fleet_topics_status topics_get_int(const topics_reader *r, const char *key, bool required,
                                   int64_t min, int64_t max, int64_t *out)
{
    const msgpack_object *o;
    fleet_topics_status st = present(r, key, required, &o);
    if (st != FLEET_TOPICS_OK || !o)
        return st;
    int64_t v;
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        v = o->via.i64;
    else if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT64_MAX)
        v = (int64_t)o->via.u64;
    else
        return topics_fail(FLEET_TOPICS_ETYPE, "%s: key '%s': expected an integer", r->message,
                           key);
    if (v < min || v > max)
        return topics_fail(FLEET_TOPICS_ERANGE, "%s: key '%s': %lld is out of range", r->message,
                           key, (long long)v);
    *out = v;
    return FLEET_TOPICS_OK;
}

fleet_topics_status topics_object_float(const topics_reader *r, const char *what,
                                        const msgpack_object *o, float *out)
{
    double v;
    if (o->type == MSGPACK_OBJECT_FLOAT32 || o->type == MSGPACK_OBJECT_FLOAT64)
        v = o->via.f64;
    else if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        v = (double)o->via.u64;
    else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        v = (double)o->via.i64;
    else
        return topics_fail(FLEET_TOPICS_ETYPE, "%s: %s: expected a number", r->message, what);
    if (!isfinite(v) || fabs(v) > 3.0e38)
        return topics_fail(FLEET_TOPICS_ERANGE, "%s: %s: not a finite float", r->message, what);
    *out = (float)v;
    return FLEET_TOPICS_OK;
}

fleet_topics_status topics_get_float(const topics_reader *r, const char *key, bool required,
                                     float *out)
{
    const msgpack_object *o;
    fleet_topics_status st = present(r, key, required, &o);
    if (st != FLEET_TOPICS_OK || !o)
        return st;
    char what[64];
    snprintf(what, sizeof what, "key '%s'", key);
    return topics_object_float(r, what, o, out);
}

fleet_topics_status topics_get_bool(const topics_reader *r, const char *key, bool required,
                                    bool *out)
{
    const msgpack_object *o;
    fleet_topics_status st = present(r, key, required, &o);
    if (st != FLEET_TOPICS_OK || !o)
        return st;
    if (o->type != MSGPACK_OBJECT_BOOLEAN)
        return topics_fail(FLEET_TOPICS_ETYPE, "%s: key '%s': expected a boolean", r->message, key);
    *out = o->via.boolean;
    return FLEET_TOPICS_OK;
}

fleet_topics_status topics_get_bin(const topics_reader *r, const char *key, bool required,
                                   size_t max, const uint8_t **data, size_t *size)
{
    const msgpack_object *o;
    fleet_topics_status st = present(r, key, required, &o);
    if (st != FLEET_TOPICS_OK || !o)
        return st;
    if (o->type != MSGPACK_OBJECT_BIN)
        return topics_fail(FLEET_TOPICS_ETYPE, "%s: key '%s': expected bytes (bin)", r->message,
                           key);
    if (o->via.bin.size > max)
        return topics_fail(FLEET_TOPICS_ERANGE, "%s: key '%s': %u bytes is more than %zu",
                           r->message, key, o->via.bin.size, max);
    *data = (const uint8_t *)o->via.bin.ptr; /* points into the payload: msgpack-c refers */
    *size = o->via.bin.size;
    return FLEET_TOPICS_OK;
}

fleet_topics_status topics_get_array(const topics_reader *r, const char *key, bool required,
                                     size_t max, const msgpack_object_array **out)
{
    const msgpack_object *o;
    static const msgpack_object_array empty = {0, NULL};
    fleet_topics_status st = present(r, key, required, &o);
    *out = &empty;
    if (st != FLEET_TOPICS_OK || !o)
        return st;
    if (o->type != MSGPACK_OBJECT_ARRAY)
        return topics_fail(FLEET_TOPICS_ETYPE, "%s: key '%s': expected an array", r->message, key);
    if (o->via.array.size > max)
        return topics_fail(FLEET_TOPICS_ERANGE, "%s: key '%s': %u entries, at most %zu", r->message,
                           key, o->via.array.size, max);
    *out = &o->via.array;
    return FLEET_TOPICS_OK;
}

fleet_topics_status topics_get_tensor(const topics_reader *r, const char *key, bool required,
                                      fleet_tensor *out)
{
    const msgpack_object *o;
    fleet_topics_status st = present(r, key, required, &o);
    if (st != FLEET_TOPICS_OK || !o)
        return st;
    if (o->type != MSGPACK_OBJECT_MAP)
        return topics_fail(FLEET_TOPICS_ETYPE, "%s: key '%s': expected a tensor map", r->message,
                           key);
    /* The tensor is a nested map: read it with a reader that looks at it. */
    topics_reader inner = *r;
    inner.unpacked.data = *o;
    uint64_t dtype = 0, dim = 0;
    int64_t zero = 0;
    const msgpack_object_array *shape;
    memset(out, 0, sizeof *out);
    out->scale = 1.0f;
    if ((st = topics_get_uint(&inner, "dtype", true, FLEET_DTYPE_I8, &dtype)) ||
        (st = topics_get_float(&inner, "scale", false, &out->scale)) ||
        (st = topics_get_int(&inner, "zero", false, -128, 255, &zero)) ||
        (st = topics_get_array(&inner, "shape", true, FLEET_TOPICS_MAX_DIMS, &shape)) ||
        (st =
             topics_get_bin(&inner, "data", true, FLEET_TOPICS_MAX_TENSOR, &out->data, &out->size)))
        return st;
    out->dtype = (fleet_dtype)dtype;
    out->zero_point = (int32_t)zero;
    out->rank = shape->size;
    for (size_t i = 0; i < shape->size; i++) {
        if ((st = topics_object_uint(r, "tensor shape", &shape->ptr[i], FLEET_TOPICS_MAX_TENSOR,
                                     &dim)))
            return st;
        out->shape[i] = (uint32_t)dim;
    }
    if (topics_check_tensor("tensor", out) != FLEET_TOPICS_OK)
        return topics_fail(FLEET_TOPICS_ERANGE, "%s: key '%s': %s", r->message, key,
                           fleet_topics_last_error());
    return FLEET_TOPICS_OK;
}
