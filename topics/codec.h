/* codec.h: msgpack helpers shared by the message codecs (internal to the topics library). */
#ifndef FLEET_TOPICS_CODEC_H
#define FLEET_TOPICS_CODEC_H

#include "fleet_topics.h"

#include <msgpack.h>

fleet_topics_status topics_fail(fleet_topics_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Encoding: a packer over a growing buffer; every call records the first failure. */
typedef struct topics_writer {
    msgpack_sbuffer buffer;
    msgpack_packer packer;
} topics_writer;

void topics_writer_init(topics_writer *w, size_t fields);
void topics_put_str(topics_writer *w, const char *key, const char *value);
void topics_put_uint(topics_writer *w, const char *key, uint64_t value);
void topics_put_int(topics_writer *w, const char *key, int64_t value);
void topics_put_float(topics_writer *w, const char *key, float value);
void topics_put_bool(topics_writer *w, const char *key, bool value);
void topics_put_bin(topics_writer *w, const char *key, const uint8_t *data, size_t size);
void topics_put_key(topics_writer *w, const char *key);
/* Hands the bytes to the caller (free()). */
fleet_topics_status topics_writer_finish(topics_writer *w, uint8_t **buf, size_t *len);

/* Checks an id for encoding: 1..MAX characters, no '/', '+', '#'. */
fleet_topics_status topics_check_id(const char *what, const char *id);
fleet_topics_status topics_check_tensor(const char *what, const fleet_tensor *t);
void topics_put_tensor(topics_writer *w, const char *key, const fleet_tensor *t);

/* Decoding: the top-level map of one payload. */
typedef struct topics_reader {
    msgpack_unpacked unpacked;
    const msgpack_object_map *map;
    const char *message; /* for error details */
    const uint8_t *payload;
} topics_reader;

fleet_topics_status topics_reader_open(topics_reader *r, const char *message, const uint8_t *buf,
                                       size_t len);
void topics_reader_close(topics_reader *r);

/* The value of key, or NULL when absent (absent optional keys keep their defaults). */
const msgpack_object *topics_get(const topics_reader *r, const char *key);
/* Typed getters: EMISSING when required and absent, ETYPE or ERANGE when wrong. */
fleet_topics_status topics_get_str(const topics_reader *r, const char *key, bool required,
                                   char *out, size_t size);
fleet_topics_status topics_get_uint(const topics_reader *r, const char *key, bool required,
                                    uint64_t max, uint64_t *out);
fleet_topics_status topics_get_int(const topics_reader *r, const char *key, bool required,
                                   int64_t min, int64_t max, int64_t *out);
fleet_topics_status topics_get_float(const topics_reader *r, const char *key, bool required,
                                     float *out);
fleet_topics_status topics_get_bool(const topics_reader *r, const char *key, bool required,
                                    bool *out);
fleet_topics_status topics_get_bin(const topics_reader *r, const char *key, bool required,
                                   size_t max, const uint8_t **data, size_t *size);
fleet_topics_status topics_get_array(const topics_reader *r, const char *key, bool required,
                                     size_t max, const msgpack_object_array **out);
fleet_topics_status topics_get_tensor(const topics_reader *r, const char *key, bool required,
                                      fleet_tensor *out);
/* Converters for elements of arrays and nested maps. */
fleet_topics_status topics_object_uint(const topics_reader *r, const char *what,
                                       const msgpack_object *o, uint64_t max, uint64_t *out);
fleet_topics_status topics_object_float(const topics_reader *r, const char *what,
                                        const msgpack_object *o, float *out);
const msgpack_object *topics_map_get(const msgpack_object *map, const char *key);

#endif
