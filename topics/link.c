/* link.c: a Paho MQTTAsync v5 session whose callbacks only fill a queue (see fleet_link.h). */
#include "fleet_link.h"

#include <MQTTAsync.h>

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LINK_MAX_SUBSCRIPTIONS 32

static _Thread_local char link_error[256] = "no error";

static fleet_link_status link_fail(fleet_link_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static fleet_link_status link_fail(fleet_link_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    /* Through a copy: an argument may be the last error itself, wrapped in a new one. */
    char text[sizeof link_error];
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    memcpy(link_error, text, sizeof text);
    return status;
}

const char *fleet_link_strerror(fleet_link_status status)
{
    static const char *const text[] = {
        "success",           "invalid argument", "out of memory", "cannot connect to the broker",
        "MQTT client error", "link closed",      "timed out"};
    return (size_t)status < sizeof text / sizeof text[0] ? text[status] : "unknown status";
}

const char *fleet_link_last_error(void)
{
    return link_error;
}

typedef struct link_node {
    fleet_link_message *message;
    struct link_node *next;
} link_node;

struct fleet_link {
    MQTTAsync client;
    pthread_mutex_t lock;
    pthread_cond_t arrived;
    link_node *head, *tail;
    size_t queued, limit;
    bool closed;
    bool connected;
    bool resubscribe;   /* set by the reconnect callback, acted on by an owner thread */
    int connect_result; /* 0 pending, 1 connected, -1 failed (first connection only) */
    char connect_error[128];
    uint64_t subscribes_sent, subscribes_done, subscribes_failed;
    /* Renewed after each reconnect. A filter is stored once and never freed before destroy
     * (link_resubscribe reads it unlocked). */
    char *filters[LINK_MAX_SUBSCRIPTIONS];
    int qos[LINK_MAX_SUBSCRIPTIONS];
    size_t n_filters;
    fleet_link_stats stats;
    bool (*deliver)(void *ctx, fleet_link_message *message); /* fixed at create */
    void *deliver_ctx;
    int delivering; /* deliver calls in progress; close waits for them */
};

double fleet_link_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* A deadline ms from now for pthread_cond_timedwait on link->arrived. Monotonic: a gateway's
 * wall clock may be stepped (NTP after boot), and a step back would stretch every wait. */
static struct timespec deadline_in(int ms)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    t.tv_sec += ms / 1000;
    t.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

void fleet_link_options_init(fleet_link_options *o)
{
    memset(o, 0, sizeof *o);
    o->keepalive_s = 5;
    o->connect_timeout_s = 5;
    o->queue_limit = 65536;
}

void fleet_link_message_free(fleet_link_message *m)
{
    if (!m)
        return;
    free(m->topic);
    free(m->payload);
    free(m->response_topic);
    free(m->correlation);
    free(m);
}

static void *link_copy(const void *data, size_t len)
{
    void *p = malloc(len + 1);
    if (p) {
        if (len)
            memcpy(p, data, len);
        ((char *)p)[len] = '\0';
    }
    return p;
}

/* Copies what Paho handed over; NULL when out of memory. */
static fleet_link_message *link_copy_message(const char *topic, int topic_len,
                                             const MQTTAsync_message *m)
{
    fleet_link_message *out = calloc(1, sizeof *out);
    if (!out)
        return NULL;
    size_t tlen = topic_len > 0 ? (size_t)topic_len : strlen(topic);
    out->topic = link_copy(topic, tlen);
    out->len = (size_t)m->payloadlen;
    out->payload = link_copy(m->payload, out->len);
    out->qos = m->qos;
    out->retained = m->retained;
    out->received_us = fleet_link_now_us();
    MQTTProperties *props = (MQTTProperties *)&m->properties;
    MQTTProperty *rt = MQTTProperties_getProperty(props, MQTTPROPERTY_CODE_RESPONSE_TOPIC);
    MQTTProperty *cd = MQTTProperties_getProperty(props, MQTTPROPERTY_CODE_CORRELATION_DATA);
    MQTTProperty *ex = MQTTProperties_getProperty(props, MQTTPROPERTY_CODE_MESSAGE_EXPIRY_INTERVAL);
    if (rt)
        out->response_topic = link_copy(rt->value.data.data, (size_t)rt->value.data.len);
    if (cd) {
        out->correlation = link_copy(cd->value.data.data, (size_t)cd->value.data.len);
        out->correlation_len = (size_t)cd->value.data.len;
    }
    if (ex)
        out->expiry_s = (uint32_t)ex->value.integer4;
    if (!out->topic || !out->payload || (rt && !out->response_topic) || (cd && !out->correlation)) {
        fleet_link_message_free(out);
        return NULL;
    }
    return out;
}

/* True when deliver took the message. Nothing is delivered once the link is closed, and
 * fleet_link_close returns only after the deliveries in progress. */
static bool deliver_now(fleet_link *link, fleet_link_message *m)
{
    pthread_mutex_lock(&link->lock);
    bool open = !link->closed;
    link->delivering += open;
    pthread_mutex_unlock(&link->lock);
    if (!open)
        return false;
    bool taken = link->deliver(link->deliver_ctx, m);
    pthread_mutex_lock(&link->lock);
    link->stats.received += taken;
    if (--link->delivering == 0)
        pthread_cond_broadcast(&link->arrived);
    pthread_mutex_unlock(&link->lock);
    return taken;
}

/* Paho's receive thread: copy, hand to deliver or queue, return. No Paho calls from here. */
static int on_message(void *context, char *topic, int topic_len, MQTTAsync_message *m)
{
    fleet_link *link = context;
    fleet_link_message *copy = link_copy_message(topic, topic_len, m);
    MQTTAsync_freeMessage(&m);
    MQTTAsync_free(topic);
    if (copy && link->deliver && deliver_now(link, copy))
        return 1;
    link_node *node = copy ? malloc(sizeof *node) : NULL;
    pthread_mutex_lock(&link->lock);
    link->stats.received++;
    if (!node || link->queued >= link->limit || link->closed) {
        link->stats.dropped_full++;
        fleet_link_message_free(copy);
        free(node);
    } else {
        node->message = copy;
        node->next = NULL;
        if (link->tail)
            link->tail->next = node;
        else
            link->head = node;
        link->tail = node;
        link->queued++;
        pthread_cond_signal(&link->arrived);
    }
    pthread_mutex_unlock(&link->lock);
    return 1;
}

static void on_connection_lost(void *context, char *cause)
{
    fleet_link *link = context;
    (void)cause;
    pthread_mutex_lock(&link->lock);
    link->connected = false;
    pthread_mutex_unlock(&link->lock);
}

static void on_connected(void *context, char *cause)
{
    fleet_link *link = context;
    (void)cause;
    pthread_mutex_lock(&link->lock);
    if (link->connect_result == 1) {
        /* A clean session forgot the subscriptions; an owner thread renews them. */
        link->stats.reconnects++;
        link->resubscribe = true;
    }
    link->connected = true;
    link->connect_result = 1;
    pthread_cond_broadcast(&link->arrived);
    pthread_mutex_unlock(&link->lock);
}

static void on_connect_failure(void *context, MQTTAsync_failureData5 *response)
{
    fleet_link *link = context;
    pthread_mutex_lock(&link->lock);
    if (link->connect_result == 0) {
        link->connect_result = -1;
        snprintf(link->connect_error, sizeof link->connect_error, "%s (reason %d, code %d)",
                 response && response->message ? response->message : "connect failed",
                 response ? (int)response->reasonCode : 0, response ? response->code : 0);
    }
    pthread_cond_broadcast(&link->arrived);
    pthread_mutex_unlock(&link->lock);
}

/* SUBACKs come back in order, so counting them tells a waiter when its own has arrived. */
static void on_suback(void *context, MQTTAsync_successData5 *response)
{
    fleet_link *link = context;
    bool refused = response && response->reasonCode >= 0x80;
    pthread_mutex_lock(&link->lock);
    link->subscribes_done++;
    link->subscribes_failed += refused;
    pthread_cond_broadcast(&link->arrived);
    pthread_mutex_unlock(&link->lock);
}

static void on_subscribe_failure(void *context, MQTTAsync_failureData5 *response)
{
    fleet_link *link = context;
    (void)response;
    pthread_mutex_lock(&link->lock);
    link->subscribes_done++;
    link->subscribes_failed++;
    pthread_cond_broadcast(&link->arrived);
    pthread_mutex_unlock(&link->lock);
}

/* Sends a SUBSCRIBE; with wait, waits for its SUBACK. */
static fleet_link_status link_subscribe_now(fleet_link *link, const char *filter, int qos,
                                            bool wait)
{
    MQTTAsync_responseOptions opts = MQTTAsync_responseOptions_initializer;
    opts.onSuccess5 = on_suback;
    opts.onFailure5 = on_subscribe_failure;
    opts.context = link;
    pthread_mutex_lock(&link->lock);
    uint64_t mine = ++link->subscribes_sent, failed_before = link->subscribes_failed;
    pthread_mutex_unlock(&link->lock);
    int rc = MQTTAsync_subscribe(link->client, filter, qos, &opts);
    if (rc != MQTTASYNC_SUCCESS) {
        pthread_mutex_lock(&link->lock);
        link->subscribes_done++; /* no callback will count it */
        pthread_mutex_unlock(&link->lock);
        return link_fail(FLEET_LINK_EMQTT, "subscribe to '%s' failed (%d)", filter, rc);
    }
    if (!wait)
        return FLEET_LINK_OK;
    struct timespec until = deadline_in(5000);
    pthread_mutex_lock(&link->lock);
    while (link->subscribes_done < mine)
        if (pthread_cond_timedwait(&link->arrived, &link->lock, &until) != 0)
            break;
    bool done = link->subscribes_done >= mine, refused = link->subscribes_failed > failed_before;
    pthread_mutex_unlock(&link->lock);
    if (!done)
        return link_fail(FLEET_LINK_ETIMEOUT, "no SUBACK for '%s' within 5 s", filter);
    if (refused)
        return link_fail(FLEET_LINK_EMQTT, "the broker refused the subscription to '%s'", filter);
    return FLEET_LINK_OK;
}

/* Runs on an owner thread: the subscriptions of a fresh session. */
static void link_resubscribe(fleet_link *link)
{
    pthread_mutex_lock(&link->lock);
    bool due = link->resubscribe && link->connected;
    link->resubscribe = false;
    size_t n = link->n_filters;
    pthread_mutex_unlock(&link->lock);
    for (size_t i = 0; due && i < n; i++) {
        pthread_mutex_lock(&link->lock);
        const char *filter = link->filters[i];
        int qos = link->qos[i];
        pthread_mutex_unlock(&link->lock);
        link_subscribe_now(link, filter, qos, false);
    }
}

static fleet_link_status link_connect(fleet_link *link, const fleet_link_options *o)
{
    MQTTAsync_connectOptions c = MQTTAsync_connectOptions_initializer5;
    MQTTAsync_willOptions will = MQTTAsync_willOptions_initializer;
    c.keepAliveInterval = o->keepalive_s > 0 ? o->keepalive_s : 5;
    c.cleanstart = 1;
    c.automaticReconnect = 1;
    c.minRetryInterval = 1;
    c.maxRetryInterval = 4;
    c.connectTimeout = o->connect_timeout_s > 0 ? o->connect_timeout_s : 5;
    c.username = o->username;
    c.password = o->password;
    c.onFailure5 = on_connect_failure;
    c.context = link;
    if (o->will_topic) {
        will.topicName = o->will_topic;
        will.message = NULL;
        will.payload.data = o->will_payload;
        will.payload.len = (int)o->will_len;
        will.qos = o->will_qos;
        will.retained = o->will_retained;
        c.will = &will;
    }
    int rc = MQTTAsync_connect(link->client, &c);
    if (rc != MQTTASYNC_SUCCESS)
        return link_fail(FLEET_LINK_ECONNECT, "connect to %s failed (%d)", o->url, rc);
    struct timespec until = deadline_in((c.connectTimeout + 1) * 1000);
    pthread_mutex_lock(&link->lock);
    while (link->connect_result == 0)
        if (pthread_cond_timedwait(&link->arrived, &link->lock, &until) != 0)
            break;
    int result = link->connect_result;
    pthread_mutex_unlock(&link->lock);
    if (result != 1)
        return link_fail(FLEET_LINK_ECONNECT, "cannot connect to %s: %s", o->url,
                         result < 0 ? link->connect_error : "timed out");
    return FLEET_LINK_OK;
}

fleet_link_status fleet_link_create(const fleet_link_options *o, fleet_link **out)
{
    if (!o || !o->url || !o->client_id || !out || (o->will_len && !o->will_payload))
        return link_fail(FLEET_LINK_EINVAL, "url, client_id and out are required");
    fleet_link *link = calloc(1, sizeof *link);
    if (!link)
        return link_fail(FLEET_LINK_ENOMEM, "out of memory");
    pthread_mutex_init(&link->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC); /* deadline_in's clock */
    pthread_cond_init(&link->arrived, &attr);
    pthread_condattr_destroy(&attr);
    link->limit = o->queue_limit ? o->queue_limit : 65536;
    link->deliver = o->deliver;
    link->deliver_ctx = o->deliver_ctx;
    MQTTAsync_createOptions create = MQTTAsync_createOptions_initializer;
    create.MQTTVersion = MQTTVERSION_5;
    create.sendWhileDisconnected = 1; /* results and heartbeats wait out a reconnect */
    create.maxBufferedMessages = 100000;
    create.deleteOldestMessages = 1;
    fleet_link_status st = FLEET_LINK_OK;
    int rc = MQTTAsync_createWithOptions(&link->client, o->url, o->client_id,
                                         MQTTCLIENT_PERSISTENCE_NONE, NULL, &create);
    if (rc != MQTTASYNC_SUCCESS) {
        link->client = NULL;
        st = link_fail(FLEET_LINK_EINVAL, "bad broker url '%s' or client id (%d)", o->url, rc);
        goto fail;
    }
    if (MQTTAsync_setCallbacks(link->client, link, on_connection_lost, on_message, NULL) !=
            MQTTASYNC_SUCCESS ||
        MQTTAsync_setConnected(link->client, link, on_connected) != MQTTASYNC_SUCCESS) {
        st = link_fail(FLEET_LINK_EMQTT, "cannot install callbacks");
        goto fail;
    }
    if ((st = link_connect(link, o)) != FLEET_LINK_OK)
        goto fail;
    *out = link;
    return FLEET_LINK_OK;
fail:
    fleet_link_destroy(link);
    return st;
}

fleet_link_status fleet_link_subscribe(fleet_link *link, const char *filter, int qos)
{
    if (!link || !filter || qos < 0 || qos > 2)
        return link_fail(FLEET_LINK_EINVAL, "bad subscription");
    pthread_mutex_lock(&link->lock);
    size_t at = 0; /* the same filter again takes its old place */
    while (at < link->n_filters && strcmp(link->filters[at], filter) != 0)
        at++;
    bool stored = at < link->n_filters, room = at < LINK_MAX_SUBSCRIPTIONS;
    if (!stored && room && (link->filters[at] = link_copy(filter, strlen(filter)))) {
        link->n_filters++;
        stored = true;
    }
    if (stored)
        link->qos[at] = qos;
    pthread_mutex_unlock(&link->lock);
    if (!room)
        return link_fail(FLEET_LINK_EINVAL, "more than %d subscriptions", LINK_MAX_SUBSCRIPTIONS);
    if (!stored)
        return link_fail(FLEET_LINK_ENOMEM, "out of memory");
    return link_subscribe_now(link, filter, qos, true);
}

static int link_add_props(MQTTProperties *props, const fleet_link_props *p)
{
    MQTTProperty prop;
    int rc = 0;
    if (p->response_topic) {
        memset(&prop, 0, sizeof prop);
        prop.identifier = MQTTPROPERTY_CODE_RESPONSE_TOPIC;
        prop.value.data.data = (char *)p->response_topic;
        prop.value.data.len = (int)strlen(p->response_topic);
        rc |= MQTTProperties_add(props, &prop);
    }
    if (p->correlation) {
        memset(&prop, 0, sizeof prop);
        prop.identifier = MQTTPROPERTY_CODE_CORRELATION_DATA;
        prop.value.data.data = (char *)p->correlation;
        prop.value.data.len = (int)p->correlation_len;
        rc |= MQTTProperties_add(props, &prop);
    }
    if (p->expiry_s) {
        memset(&prop, 0, sizeof prop);
        prop.identifier = MQTTPROPERTY_CODE_MESSAGE_EXPIRY_INTERVAL;
        prop.value.integer4 = p->expiry_s;
        rc |= MQTTProperties_add(props, &prop);
    }
    return rc;
}

fleet_link_status fleet_link_publish(fleet_link *link, const char *topic, const void *payload,
                                     size_t len, int qos, int retained,
                                     const fleet_link_props *props)
{
    if (!link || !topic || (len && !payload) || len > (1u << 28) || qos < 0 || qos > 2)
        return link_fail(FLEET_LINK_EINVAL, "bad publish arguments");
    link_resubscribe(link);
    MQTTAsync_message m = MQTTAsync_message_initializer;
    MQTTAsync_responseOptions opts = MQTTAsync_responseOptions_initializer;
    m.payload = (void *)payload;
    m.payloadlen = (int)len;
    m.qos = qos;
    m.retained = retained;
    fleet_link_status st = FLEET_LINK_OK;
    if (props && link_add_props(&m.properties, props) != 0) {
        st = link_fail(FLEET_LINK_EINVAL, "bad MQTT properties");
        goto cleanup;
    }
    int rc = MQTTAsync_sendMessage(link->client, topic, &m, &opts);
    if (rc != MQTTASYNC_SUCCESS)
        st = link_fail(FLEET_LINK_EMQTT, "publish to '%s' failed (%d)", topic, rc);
cleanup:
    MQTTProperties_free(&m.properties);
    return st;
}

fleet_link_status fleet_link_receive(fleet_link *link, int timeout_ms, fleet_link_message **out)
{
    link_resubscribe(link);
    struct timespec until = deadline_in(timeout_ms > 0 ? timeout_ms : 0);
    fleet_link_status st = FLEET_LINK_OK;
    pthread_mutex_lock(&link->lock);
    while (!link->head && !link->closed && !(link->resubscribe && link->connected)) {
        int rc = timeout_ms < 0 ? pthread_cond_wait(&link->arrived, &link->lock)
                                : pthread_cond_timedwait(&link->arrived, &link->lock, &until);
        if (rc != 0)
            break;
    }
    link_node *node = link->head;
    if (link->closed) {
        st = FLEET_LINK_ECLOSED;
        node = NULL;
    } else if (node) {
        link->head = node->next;
        if (!link->head)
            link->tail = NULL;
        link->queued--;
    } else {
        st = FLEET_LINK_ETIMEOUT;
    }
    pthread_mutex_unlock(&link->lock);
    if (node) {
        *out = node->message;
        free(node);
    } else if (st == FLEET_LINK_ETIMEOUT) {
        link_resubscribe(link); /* woken by a reconnect rather than a message */
    }
    return st;
}

void fleet_link_close(fleet_link *link)
{
    if (!link)
        return;
    pthread_mutex_lock(&link->lock);
    link->closed = true;
    pthread_cond_broadcast(&link->arrived);
    while (link->delivering > 0)
        pthread_cond_wait(&link->arrived, &link->lock);
    pthread_mutex_unlock(&link->lock);
}

void fleet_link_get_stats(fleet_link *link, fleet_link_stats *stats)
{
    pthread_mutex_lock(&link->lock);
    *stats = link->stats;
    stats->connected = link->connected;
    pthread_mutex_unlock(&link->lock);
}

/* Whether publishes are still on their way: in flight, or queued by Paho behind the broker's
 * receive maximum (20 in-flight messages with Mosquitto's defaults). */
static bool link_sending(MQTTAsync client)
{
    MQTTAsync_token *tokens = NULL;
    if (MQTTAsync_getPendingTokens(client, &tokens) != MQTTASYNC_SUCCESS || !tokens)
        return false;
    bool sending = tokens[0] != -1;
    MQTTAsync_free(tokens);
    return sending;
}

void fleet_link_destroy(fleet_link *link)
{
    if (!link)
        return;
    fleet_link_close(link);
    if (link->client) {
        /* A disconnect drops what Paho still queues, so first let it drain (up to 2 s). */
        for (int i = 0;
             i < 200 && MQTTAsync_isConnected(link->client) && link_sending(link->client); i++) {
            struct timespec ten_ms = {0, 10000000};
            nanosleep(&ten_ms, NULL);
        }
        MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer5;
        d.timeout = 1000; /* let in-flight messages (a death, a last result) complete */
        if (MQTTAsync_isConnected(link->client))
            MQTTAsync_disconnect(link->client, &d);
        for (int i = 0; i < 100 && MQTTAsync_isConnected(link->client); i++) {
            struct timespec ten_ms = {0, 10000000};
            nanosleep(&ten_ms, NULL);
        }
        MQTTAsync_destroy(&link->client);
    }
    for (link_node *n = link->head, *next; n; n = next) {
        next = n->next;
        fleet_link_message_free(n->message);
        free(n);
    }
    for (size_t i = 0; i < link->n_filters; i++)
        free(link->filters[i]);
    pthread_cond_destroy(&link->arrived);
    pthread_mutex_destroy(&link->lock);
    free(link);
}
