/* work.c: the bounded request queue and the worker that serves one request at a time. */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

fleet_agent_status agent_queue_init(agent_queue *q, size_t capacity)
{
    memset(q, 0, sizeof *q);
    if (!(q->items = calloc(capacity, sizeof *q->items)))
        return agent_fail(FLEET_AGENT_ENOMEM, "out of memory for a queue of %zu", capacity);
    q->capacity = capacity;
    pthread_cond_init(&q->ready, NULL);
    return FLEET_AGENT_OK;
}

/* Frees what is still queued; the caller holds the lock or is alone. */
static size_t queue_drain(agent_queue *q)
{
    size_t n = q->count;
    for (; q->count > 0; q->count--, q->head = (q->head + 1) % q->capacity)
        fleet_link_message_free(q->items[q->head]);
    return n;
}

void agent_queue_free(agent_queue *q)
{
    if (!q->items)
        return;
    queue_drain(q);
    free(q->items);
    pthread_cond_destroy(&q->ready);
    memset(q, 0, sizeof *q);
}

/* Queues m (a->lock held); returns what has to be freed: m itself when the queue is closed,
 * or the oldest request when it was full. */
static fleet_link_message *queue_locked(fleet_agent *a, fleet_link_message *m)
{
    agent_queue *q = &a->queue;
    if (q->closed)
        return m;
    fleet_link_message *dropped = NULL;
    if (q->count == q->capacity) { /* the oldest is the likeliest to miss its deadline */
        dropped = q->items[q->head];
        q->head = (q->head + 1) % q->capacity;
        q->count--;
        a->stats.dropped_full++;
    }
    q->items[(q->head + q->count) % q->capacity] = m;
    q->count++;
    pthread_cond_signal(&q->ready);
    return dropped;
}

void agent_queue_offer(fleet_agent *a, const char *stream, fleet_link_message *m)
{
    pthread_mutex_lock(&a->lock);
    bool wanted = a->queue.accepting && strcmp(stream, a->queue.stream) == 0;
    /* not wanted: a stream no longer served, or no model yet */
    fleet_link_message *unused = wanted ? queue_locked(a, m) : m;
    pthread_mutex_unlock(&a->lock);
    fleet_link_message_free(unused);
}

void agent_queue_admit(fleet_agent *a, const char *stream, bool accepting)
{
    pthread_mutex_lock(&a->lock);
    snprintf(a->queue.stream, sizeof a->queue.stream, "%s", stream);
    a->queue.accepting = accepting;
    pthread_mutex_unlock(&a->lock);
}

size_t agent_queue_close(fleet_agent *a)
{
    pthread_mutex_lock(&a->lock);
    a->queue.closed = true;
    size_t discarded = queue_drain(&a->queue);
    pthread_cond_broadcast(&a->queue.ready);
    pthread_mutex_unlock(&a->lock);
    return discarded;
}

void agent_queue_hold(fleet_agent *a, bool hold)
{
    pthread_mutex_lock(&a->lock);
    a->queue.held = hold;
    pthread_cond_broadcast(&a->queue.ready);
    pthread_mutex_unlock(&a->lock);
}

/* The next request, or NULL once the queue is closed. */
static fleet_link_message *pop(fleet_agent *a)
{
    agent_queue *q = &a->queue;
    fleet_link_message *m = NULL;
    pthread_mutex_lock(&a->lock);
    while (!q->closed && (q->count == 0 || q->held))
        pthread_cond_wait(&q->ready, &a->lock);
    if (!q->closed) {
        m = q->items[q->head];
        q->head = (q->head + 1) % q->capacity;
        q->count--;
    }
    pthread_mutex_unlock(&a->lock);
    return m;
}

/* MQTT message expiry, else the request's deadline_ms, else the stream's (as the coordinator
 * reckons it, from the assignment), else 1 s; from arrival. models_lock held. */
static double deadline_us(const fleet_agent *a, const fleet_link_message *m,
                          const fleet_msg_request *r)
{
    double ms = m->expiry_s      ? m->expiry_s * 1000.0
                : r->deadline_ms ? r->deadline_ms
                : a->deadline_ms ? a->deadline_ms
                                 : 1000.0;
    return m->received_us + ms * 1000.0;
}

/* Every ready variant on r; models_lock held. Returns (ran, failed) through the pointers. */
static void run_variants(fleet_agent *a, const fleet_msg_request *r, bool *ran, bool *failed)
{
    for (size_t i = 0; i < a->n_variants; i++) {
        const agent_variant *v = &a->variants[i];
        if (!v->model)
            continue; /* not loaded yet: no result for this variant */
        if (!agent_tensor_to_floats(&r->tensor, v->model->input, v->model->input_count)) {
            agent_log(a, FLEET_LOG_DEBUG,
                      "request %s: %zu bytes of dtype %d do not fit variant %u's %zu inputs", r->id,
                      r->tensor.size, (int)r->tensor.dtype, v->spec.variant, v->model->input_count);
            *failed = true;
        } else if (agent_run_variant(a, v, r)) {
            *ran = true;
        } else {
            *failed = true;
        }
    }
}

static void serve(fleet_agent *a, const fleet_link_message *m)
{
    fleet_msg_request r;
    if (fleet_msg_request_decode(m->payload, m->len, &r) != FLEET_TOPICS_OK) {
        agent_log(a, FLEET_LOG_DEBUG, "bad request on %s: %s", m->topic, fleet_topics_last_error());
        agent_count(a, &a->stats.bad_messages, 1);
        return;
    }
    bool ran = false, failed = false, expired = false, moved = false;
    pthread_mutex_lock(&a->models_lock);
    if ((moved = strcmp(r.stream, a->stream) != 0))
        agent_log(a, FLEET_LOG_DEBUG, "request %s is for stream '%s', no longer served", r.id,
                  r.stream);
    else if ((expired = fleet_link_now_us() > deadline_us(a, m, &r)))
        agent_log(a, FLEET_LOG_DEBUG, "request %s expired in the queue", r.id);
    else
        run_variants(a, &r, &ran, &failed);
    pthread_mutex_unlock(&a->models_lock);
    pthread_mutex_lock(&a->lock);
    a->stats.dropped_expired += expired;
    a->stats.dropped_moved += moved;
    a->stats.processed += ran;
    a->stats.failed += failed;
    pthread_mutex_unlock(&a->lock);
}

void *agent_worker(void *arg)
{
    fleet_agent *a = arg;
    fleet_link_message *m;
    while ((m = pop(a)) != NULL) {
        serve(a, m);
        fleet_link_message_free(m);
    }
    return NULL;
}
