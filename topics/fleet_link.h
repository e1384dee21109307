/* fleet_link.h: one MQTT v5 session (Paho MQTTAsync) with an inbound queue the owner drains. */
#ifndef FLEET_LINK_H
#define FLEET_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Why a link: Paho calls back on its own thread, and calling the client from there is a known
 * source of deadlocks. Here the callbacks only copy messages into a bounded queue; everything
 * else (decoding, work, publishing, re-subscribing after a reconnect) happens on the threads
 * that call fleet_link_receive / fleet_link_publish. Publishing never blocks: Paho queues. */

typedef enum fleet_link_status {
    FLEET_LINK_OK = 0,
    FLEET_LINK_EINVAL,
    FLEET_LINK_ENOMEM,
    FLEET_LINK_ECONNECT, /* could not connect (refused, bad credentials, timeout) */
    FLEET_LINK_EMQTT,    /* Paho refused the call (details in fleet_link_last_error) */
    FLEET_LINK_ECLOSED,  /* the link is shutting down */
    FLEET_LINK_ETIMEOUT, /* nothing arrived in time (receive) */
} fleet_link_status;

const char *fleet_link_strerror(fleet_link_status status);
const char *fleet_link_last_error(void); /* the calling thread's last failure detail */

typedef struct fleet_link_message fleet_link_message; /* below */

typedef struct fleet_link_options {
    const char *url;       /* "tcp://127.0.0.1:1883" */
    const char *client_id; /* required, unique in the fleet */
    const char *username;  /* may be NULL */
    const char *password;  /* may be NULL */
    int keepalive_s;       /* 0: 5 s (the broker then sees a dead peer within 7.5 s) */
    int connect_timeout_s; /* 0: 5 s for the first connection */
    size_t queue_limit;    /* inbound messages held; 0: 65536. Excess is dropped and counted */
    /* The MQTT will, published by the broker if this client vanishes (kill -9, cable). */
    const char *will_topic;
    const void *will_payload;
    size_t will_len;
    int will_qos;
    int will_retained;
    /* Optional: each received message goes straight to deliver, on Paho's receive thread,
     * instead of into the queue fleet_link_receive reads: one thread hand-off less per
     * message. deliver owns the message when it returns true; false queues it as usual. It
     * must not block: fleet_link_publish is fine, fleet_link_subscribe, _receive, _close and
     * _destroy are not. It runs inside Paho's callback, where Paho may hold its own lock: a
     * lock that deliver takes must never be held by another thread across a fleet_link_publish
     * (that thread would wait for Paho's lock, deliver for the thread's: a deadlock). Some
     * thread must still call fleet_link_receive now and then (a zero timeout will do): that is
     * where subscriptions are renewed after a reconnect. */
    bool (*deliver)(void *ctx, fleet_link_message *message);
    void *deliver_ctx;
} fleet_link_options;

void fleet_link_options_init(fleet_link_options *options);

/* MQTT v5 properties on a published or received message. */
typedef struct fleet_link_props {
    const char *response_topic; /* NULL when absent */
    const void *correlation;    /* NULL when absent */
    size_t correlation_len;
    uint32_t expiry_s; /* message expiry interval; 0 when absent */
} fleet_link_props;

/* A received message; owned by the caller, released with fleet_link_message_free. */
struct fleet_link_message {
    char *topic;
    uint8_t *payload;
    size_t len;
    int qos;
    int retained;
    char *response_topic; /* NULL when absent */
    uint8_t *correlation; /* NULL when absent */
    size_t correlation_len;
    uint32_t expiry_s;  /* 0 when absent */
    double received_us; /* CLOCK_MONOTONIC when the broker delivered it */
};

typedef struct fleet_link fleet_link;

/* Connects (waits up to connect_timeout_s) and then reconnects by itself forever. Strings in
 * options are copied. *out is written only on success. */
fleet_link_status fleet_link_create(const fleet_link_options *options, fleet_link **out);

/* Subscribes, waits for the broker's SUBACK (at most 5 s; a refusal, e.g. by the ACL, is
 * FLEET_LINK_EMQTT), and subscribes again after every reconnect. filter is copied; the same
 * filter again takes no new place among the 32. */
fleet_link_status fleet_link_subscribe(fleet_link *link, const char *filter, int qos);

/* Queues a message for sending (Paho copies payload and properties). props may be NULL. */
fleet_link_status fleet_link_publish(fleet_link *link, const char *topic, const void *payload,
                                     size_t len, int qos, int retained,
                                     const fleet_link_props *props);

/* Waits up to timeout_ms (-1: forever) for the next message. */
fleet_link_status fleet_link_receive(fleet_link *link, int timeout_ms, fleet_link_message **out);

/* Wakes every thread blocked in fleet_link_receive with FLEET_LINK_ECLOSED (for shutdown),
 * stops deliveries and returns once the one in progress (if any) has returned. */
void fleet_link_close(fleet_link *link);

void fleet_link_message_free(fleet_link_message *message);

typedef struct fleet_link_stats {
    uint64_t received, dropped_full, reconnects;
    int connected;
} fleet_link_stats;

void fleet_link_get_stats(fleet_link *link, fleet_link_stats *stats);

/* Disconnects cleanly (the will is NOT published) and frees everything. NULL is a no-op. */
void fleet_link_destroy(fleet_link *link);

/* CLOCK_MONOTONIC in microseconds. */
double fleet_link_now_us(void);

#ifdef __cplusplus
}
#endif
#endif
