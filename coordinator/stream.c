/* stream.c: one stream's requests in flight: collecting variant results, deciding by deadline. */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A decided request is remembered until this long after its deadline, so that late and
 * duplicate results and repeated requests are recognised; but from a decision made long
 * before its deadline, for at most STREAM_MEMORY_US (an id may be used again after that). */
#define STREAM_LINGER_US 2e6
#define STREAM_MEMORY_US 60e6

typedef enum slot_state { SLOT_FREE = 0, SLOT_PENDING, SLOT_DECIDED } slot_state;

struct coord_pending {
    slot_state state;
    uint64_t hash;
    char id[FLEET_TOPICS_MAX_ID + 1];
    bool has_request; /* a result may arrive before its request */
    double arrival_us, deadline_us;
    double forget_us;  /* decided: erased after this */
    uint32_t expected; /* variants that could answer when the request arrived */
    uint32_t answered; /* bitmask of variants */
    uint32_t slowest_infer_us;
    uint8_t k[FLEET_COORDINATOR_MAX_VARIANTS];
    uint32_t block;       /* this request's pairs in coord_stream.scores (while pending) */
    char *response_topic; /* owned */
    uint8_t *correlation; /* owned */
    size_t correlation_len;
    int reply_qos;
    uint64_t requester; /* hash of response topic and correlation: who asked (kept decided) */
    /* Both kept small (the table is scanned): 0 for none. owner: the hash of the coordinator
     * whose request we back up (0: ours to decide); backup: ours, the run (incarnation, unique
     * over all peers) of the member holding its backup. */
    uint64_t owner;
    uint64_t backup;
    uint64_t decided_serial; /* its entry in the ring of decided ids */
};

static uint64_t hash_bytes(uint64_t h, const uint8_t *bytes, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ bytes[i]) * 1099511628211ull;
    return h;
}

static uint64_t hash_id(const char *id)
{
    uint64_t h = hash_bytes(1469598103934665603ull, (const uint8_t *)id, strlen(id));
    return h ? h : 1;
}

static uint64_t hash_requester(const coord_reply *reply)
{
    uint64_t h = 1469598103934665603ull;
    if (reply->topic)
        h = hash_bytes(h, (const uint8_t *)reply->topic, strlen(reply->topic) + 1);
    if (reply->correlation)
        h = hash_bytes(h ^ 1, reply->correlation, reply->correlation_len);
    return h;
}

/* Microseconds as a decision carries them: clamped to what 32 bits hold. */
static uint32_t micros(double us)
{
    return us > 0 ? (uint32_t)fmin(us, (double)UINT32_MAX) : 0;
}

fleet_coordinator_status coord_stream_init(coord_stream *s, const char *name, size_t max_pending,
                                           size_t variants, size_t classes)
{
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    s->max_pending = max_pending ? max_pending : 4096;
    s->variants = variants;
    s->classes = classes;
    s->scores = calloc(s->max_pending * variants * classes + 1, sizeof *s->scores);
    s->free_blocks = calloc(s->max_pending, sizeof *s->free_blocks);
    for (size_t i = 0; s->free_blocks && i < s->max_pending; i++)
        s->free_blocks[s->n_free++] = (uint32_t)(s->max_pending - 1 - i);
    s->capacity = 16;
    while (s->capacity < 2 * s->max_pending + 2) /* room for pending and decided alike */
        s->capacity *= 2;
    s->slots = calloc(s->capacity, sizeof *s->slots);
    s->decided = calloc(s->max_pending, sizeof *s->decided);
    s->due = calloc(s->max_pending, sizeof *s->due);
    if (!s->slots || !s->decided || !s->due || !s->scores || !s->free_blocks)
        return coord_fail(FLEET_COORDINATOR_ENOMEM, "out of memory for %zu pending requests",
                          s->max_pending);
    return FLEET_COORDINATOR_OK;
}

fleet_coordinator_status coord_stream_enable_fusion(coord_stream *s, const coord_family *family)
{
    fleet_model_options o;
    fleet_model_options_init(&o);
    o.threads = 0; /* 30k MACs: a thread pool would cost more than it saves */
    if (fleet_model_load_buffer(family->fusion_bytes, family->fusion_size, &o, &s->fusion) !=
        FLEET_MODEL_OK)
        return coord_fail(FLEET_COORDINATOR_EMODEL, "fusion head: %s", fleet_model_last_error());
    s->fusion_inputs = family->fusion_inputs;
    s->fusion_temperature = family->fusion_temperature;
    s->features = calloc(s->max_pending * s->fusion_inputs, sizeof *s->features);
    if (!s->features)
        return coord_fail(FLEET_COORDINATOR_ENOMEM, "out of memory for %zu pending feature sets",
                          s->max_pending);
    return FLEET_COORDINATOR_OK;
}

static void slot_clear(coord_pending *p)
{
    free(p->response_topic);
    free(p->correlation);
    memset(p, 0, sizeof *p);
}

void coord_stream_free(coord_stream *s)
{
    for (size_t i = 0; s->slots && i < s->capacity; i++)
        if (s->slots[i].state != SLOT_FREE)
            slot_clear(&s->slots[i]);
    free(s->slots);
    free(s->decided);
    free(s->due);
    free(s->scores);
    free(s->free_blocks);
    fleet_model_destroy(s->fusion);
    free(s->features);
    s->slots = NULL;
    s->decided = NULL;
    s->due = NULL;
    s->fusion = NULL;
    s->features = NULL;
}

static fleet_ensemble_score *block_of(const coord_stream *s, const coord_pending *p, size_t v)
{
    return s->scores + ((size_t)p->block * s->variants + v) * s->classes;
}

static float *features_of(const coord_stream *s, const coord_pending *p)
{
    return s->features + (size_t)p->block * s->fusion_inputs;
}

static coord_pending *find(const coord_stream *s, const char *id, uint64_t h)
{
    for (size_t i = h & (s->capacity - 1);; i = (i + 1) & (s->capacity - 1)) {
        coord_pending *p = &s->slots[i];
        if (p->state == SLOT_FREE)
            return NULL;
        if (p->hash == h && strcmp(p->id, id) == 0)
            return p;
    }
}

/* Backward-shift deletion keeps every probe chain unbroken without tombstones. */
static void erase(coord_stream *s, coord_pending *p)
{
    size_t mask = s->capacity - 1, hole = (size_t)(p - s->slots);
    if (p->state == SLOT_PENDING) {
        s->pending--;
        s->free_blocks[s->n_free++] = p->block;
    }
    slot_clear(p);
    s->count--;
    for (size_t i = (hole + 1) & mask; s->slots[i].state != SLOT_FREE; i = (i + 1) & mask) {
        size_t home = s->slots[i].hash & mask;
        bool movable = hole <= i ? (home <= hole || home > i) : (home <= hole && home > i);
        if (movable) {
            s->slots[hole] = s->slots[i];
            memset(&s->slots[i], 0, sizeof s->slots[i]);
            hole = i;
        }
    }
}

/* Whether nobody waits for a decision of pending p from us: a backup (its owner decides it), or
 * results whose request has not come. */
static bool unanswered(const coord_pending *p)
{
    return p->owner != 0 || !p->has_request;
}

/* The pending entry to let go first when memory is full: the oldest that nobody awaits from
 * us, else the oldest of ours (decided early, degraded). */
static coord_pending *eviction_victim(coord_stream *s)
{
    coord_pending *best = NULL;
    for (size_t i = 0; i < s->capacity; i++) {
        coord_pending *p = &s->slots[i];
        if (p->state != SLOT_PENDING)
            continue;
        bool quiet = unanswered(p), best_quiet = best && unanswered(best);
        if (!best || (quiet && !best_quiet) ||
            (quiet == best_quiet && p->arrival_us < best->arrival_us))
            best = p;
    }
    return best;
}

static void settle(coord_stream *s, coord_pending *p, double now_us);

static void decide(coord_stream *s, const coord_stream_env *env, coord_pending *p, double now_us);

/* A slot for a new id. When max_pending requests are in flight the oldest is decided early
 * (degraded), so memory stays bounded whatever the load. */
static coord_pending *insert(coord_stream *s, const coord_stream_env *env, const char *id,
                             uint64_t h, double now_us)
{
    if (s->pending >= s->max_pending) {
        coord_pending *victim = eviction_victim(s);
        if (victim->has_request) {
            env->stats->evicted += victim->owner == 0;
            decide(s, env, victim, now_us);
        } else { /* results only: nothing to answer */
            settle(s, victim, now_us);
        }
    }
    size_t i = h & (s->capacity - 1);
    while (s->slots[i].state != SLOT_FREE)
        i = (i + 1) & (s->capacity - 1);
    coord_pending *p = &s->slots[i];
    p->state = SLOT_PENDING;
    p->hash = h;
    p->block = s->free_blocks[--s->n_free];
    if (s->fusion) /* a variant that never answers counts as zeros (its zero point) */
        memset(features_of(s, p), 0, s->fusion_inputs * sizeof *s->features);
    snprintf(p->id, sizeof p->id, "%s", id);
    s->count++;
    s->pending++;
    return p;
}

/* Remembers decided p; the oldest remembered decision is forgotten when the ring is full. The
 * ring names a decision by id and serial: the sweep may have forgotten that one already and
 * the id may have come back since, as another decision the ring must leave alone. */
static void remember_decided(coord_stream *s, coord_pending *p)
{
    coord_decided entry = {.serial = ++s->decided_serial};
    p->decided_serial = entry.serial;
    snprintf(entry.id, sizeof entry.id, "%s", p->id); /* the erase below may move p */
    if (s->decided_count == s->max_pending) {
        const coord_decided *old = &s->decided[s->decided_head];
        coord_pending *q = find(s, old->id, hash_id(old->id));
        if (q && q->state == SLOT_DECIDED && q->decided_serial == old->serial)
            erase(s, q);
        s->decided_head = (s->decided_head + 1) % s->max_pending;
        s->decided_count--;
    }
    s->decided[(s->decided_head + s->decided_count++) % s->max_pending] = entry;
}

/* A decision's request id, stream, coordinator and rule; everything else zero. */
static void fill_names(const coord_stream *s, const coord_stream_env *env, const char *id,
                       fleet_msg_decision *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->id, sizeof out->id, "%s", id);
    snprintf(out->stream, sizeof out->stream, "%s", s->name);
    snprintf(out->coordinator, sizeof out->coordinator, "%s", env->coordinator_id);
    snprintf(out->rule, sizeof out->rule, "%s",
             s->fusion ? "fusion" : fleet_ensemble_rule_name(env->rule));
}

static void fill_decision(const coord_stream *s, const coord_stream_env *env,
                          const coord_pending *p, const fleet_ensemble_decision *d,
                          const float *combined, double now_us, double aggregate_us,
                          fleet_msg_decision *out)
{
    fill_names(s, env, p->id, out);
    out->cls = d->cls;
    out->confidence = d->confidence;
    fleet_ensemble_score top[5];
    size_t k = d->cls >= 0 ? fleet_ensemble_topk(combined, env->family->classes, 5, top) : 0;
    for (size_t i = 0; i < k; i++) {
        out->classes[i] = top[i].cls;
        out->probs[i] = top[i].prob;
    }
    out->k = k;
    for (size_t v = 0; v < env->family->count; v++) {
        if (p->answered >> v & 1u)
            out->used[out->n_used++] = (uint32_t)v;
        else
            out->missing[out->n_missing++] = (uint32_t)v;
    }
    out->degraded = out->n_missing > 0;
    out->total_us = micros(now_us - p->arrival_us);
    out->slowest_infer_us = p->slowest_infer_us;
    out->aggregate_us = micros(aggregate_us);
}

/* The head over the dequantized features: softmax(scores / T), its best class. Nothing
 * answered (or the head failed, which a loaded head does not): no class. */
static void decide_fusion(coord_stream *s, const coord_pending *p, float *combined,
                          fleet_ensemble_decision *d)
{
    const float *ins[1] = {features_of(s, p)};
    float *outs[1] = {combined}; /* the head gives exactly `classes` scores (checked at load) */
    if (!p->answered || fleet_model_run(s->fusion, ins, outs) != FLEET_MODEL_OK) {
        *d = (fleet_ensemble_decision){.cls = -1};
        memset(combined, 0, s->classes * sizeof *combined);
        return;
    }
    fleet_ensemble_softmax(combined, s->classes, s->fusion_temperature);
    fleet_ensemble_score best;
    fleet_ensemble_topk(combined, s->classes, 1, &best);
    *d = (fleet_ensemble_decision){
        .cls = best.cls, .confidence = best.prob, .used = (size_t)__builtin_popcount(p->answered)};
}

static void decide_topk(const coord_stream *s, const coord_stream_env *env, const coord_pending *p,
                        float *combined, fleet_ensemble_decision *d)
{
    fleet_ensemble_vote votes[FLEET_COORDINATOR_MAX_VARIANTS];
    size_t n = 0;
    for (size_t v = 0; v < env->family->count; v++) {
        if (!(p->answered >> v & 1u))
            continue;
        const coord_variant *var = &env->family->variants[v];
        votes[n++] = (fleet_ensemble_vote){
            block_of(s, p, v), p->k[v],
            env->rule == FLEET_ENSEMBLE_ACC_WEIGHTED ? var->val_accuracy : var->vp_weight};
    }
    fleet_ensemble_decide(env->rule, votes, n, env->family->classes, combined, d);
}

/* Marks pending p decided: its scores return to the pool, its id is remembered. */
static void settle(coord_stream *s, coord_pending *p, double now_us)
{
    p->forget_us = fmax(now_us, fmin(p->deadline_us, now_us + STREAM_MEMORY_US)) + STREAM_LINGER_US;
    p->state = SLOT_DECIDED;
    s->pending--;
    s->free_blocks[s->n_free++] = p->block;
    free(p->response_topic);
    free(p->correlation);
    p->response_topic = NULL;
    p->correlation = NULL;
    remember_decided(s, p);
}

static void decide(coord_stream *s, const coord_stream_env *env, coord_pending *p, double now_us)
{
    if (p->owner) { /* a backup: its owner, alive as far as we know, decides */
        env->stats->backups_released++;
        settle(s, p, now_us);
        return;
    }
    double t0 = fleet_link_now_us();
    float combined[COORD_MAX_CLASSES];
    fleet_ensemble_decision d;
    if (s->fusion)
        decide_fusion(s, p, combined, &d);
    else
        decide_topk(s, env, p, combined, &d);
    fleet_msg_decision msg;
    fill_decision(s, env, p, &d, combined, now_us, fleet_link_now_us() - t0, &msg);
    env->stats->decisions++;
    env->stats->degraded += msg.degraded;
    if (p->has_request) {
        coord_reply reply = {p->response_topic, p->correlation, p->correlation_len, p->reply_qos};
        env->sink.deliver(env->sink.ctx, &msg, &reply);
    }
    settle(s, p, now_us);
}

/* Answers a request at once with why as its error and no class. */
static void answer_error(coord_stream *s, const coord_stream_env *env, const char *id,
                         double arrival_us, const coord_reply *reply, const char *why)
{
    fleet_msg_decision msg;
    fill_names(s, env, id, &msg);
    snprintf(msg.error, sizeof msg.error, "%s", why);
    msg.cls = -1;
    msg.degraded = true;
    msg.total_us = micros(fleet_link_now_us() - arrival_us);
    env->stats->refused++;
    env->sink.deliver(env->sink.ctx, &msg, reply);
}

void coord_stream_refuse(coord_stream *s, const coord_stream_env *env, const char *id,
                         double arrival_us, const coord_reply *reply, const char *why)
{
    env->stats->requests++;
    answer_error(s, env, id, arrival_us, reply, why);
}

/* A request no variant can run (its tensor is not the models' input size) is answered at once
 * with the reason, instead of a degraded decision at its deadline; its id counts as decided. */
static bool refused(coord_stream *s, const coord_stream_env *env, coord_pending *p,
                    const fleet_msg_request *r, double arrival_us, const coord_reply *reply)
{
    size_t width = fleet_dtype_width(r->tensor.dtype);
    size_t elements = width ? r->tensor.size / width : 0;
    if (elements == env->family->input_count)
        return false;
    snprintf(s->refusal, sizeof s->refusal,
             "the tensor has %zu elements; the stream's models take %zu", elements,
             env->family->input_count);
    if (p->owner)
        env->stats->backups_released++;
    else
        answer_error(s, env, p->id, arrival_us, reply, s->refusal);
    p->has_request = true; /* answered: the same request again is a retransmission */
    p->deadline_us = arrival_us;
    settle(s, p, arrival_us);
    return true;
}

/* Complete: every variant that could answer when the request came, and still can, has. A
 * variant that came back since never saw the request. A backup is complete when its owner,
 * whose view of the fleet is ours (the members follow the leader's assignments), decides. */
static bool complete(const coord_stream_env *env, const coord_pending *p)
{
    uint32_t awaited = p->expected & env->expected;
    return p->state == SLOT_PENDING && p->has_request && (p->answered & awaited) == awaited;
}

static void maybe_decide(coord_stream *s, const coord_stream_env *env, coord_pending *p,
                         double now_us)
{
    if (complete(env, p))
        decide(s, env, p, now_us);
}

bool coord_stream_request(coord_stream *s, const coord_stream_env *env, const fleet_msg_request *r,
                          double arrival_us, double deadline_us, const coord_reply *reply,
                          const coord_roles *roles)
{
    uint64_t h = hash_id(r->id), requester = hash_requester(reply);
    bool backup = roles && roles->owner[0];
    coord_pending *p = find(s, r->id, h);
    if (p && (p->state == SLOT_DECIDED || p->has_request)) {
        if ((p->has_request && p->requester == requester) || backup)
            return true; /* a retransmission; or the owner's to refuse */
        env->stats->requests++;
        if (p->has_request)
            snprintf(s->refusal, sizeof s->refusal,
                     "request id '%.64s' is in use on this stream by another requester", r->id);
        else /* abandoned: its results waited the stream's deadline for it */
            snprintf(s->refusal, sizeof s->refusal,
                     "request '%.64s' came after its variants' results were given up", r->id);
        answer_error(s, env, r->id, arrival_us, reply, s->refusal);
        return false;
    }
    if (!p)
        p = insert(s, env, r->id, h, arrival_us);
    p->requester = requester;
    if (backup) {
        p->owner = hash_id(roles->owner);
        env->stats->backups++;
    } else {
        env->stats->requests++;
        p->backup = roles ? roles->backup : 0;
    }
    if (refused(s, env, p, r, arrival_us, reply))
        return backup; /* the owner answers it; a backup lets it go */
    p->has_request = true;
    p->expected = env->expected;
    p->arrival_us = arrival_us;
    p->deadline_us = deadline_us;
    if (deadline_us < s->earliest_deadline_us)
        s->earliest_deadline_us = deadline_us;
    p->reply_qos = reply->qos;
    if (reply->topic)
        p->response_topic = strdup(reply->topic);
    if (reply->correlation && (p->correlation = malloc(reply->correlation_len + 1))) {
        memcpy(p->correlation, reply->correlation, reply->correlation_len);
        p->correlation_len = reply->correlation_len;
    }
    maybe_decide(s, env, p, arrival_us);
    return true;
}

/* 1 to `classes` pairs of distinct classes of the family, each with a probability: a pair
 * that names no class, or a score that is no probability, would be dropped by the rule and
 * leave its variant counted as used, its good replica refused as a duplicate. */
static bool topk_fits(const coord_stream *s, const fleet_msg_result *r)
{
    if (r->output != FLEET_OUTPUT_TOPK || r->k == 0 || r->k > s->classes)
        return false;
    uint64_t seen = 0; /* classes <= COORD_MAX_CLASSES = 64 */
    for (size_t i = 0; i < r->k; i++) {
        uint32_t cls = r->classes[i];
        float prob = r->probs[i];
        if (cls >= s->classes || (seen >> cls & 1u) || !(prob >= 0.0f && prob <= 1.0f + 1e-4f))
            return false;
        seen |= 1ull << cls;
    }
    return true;
}

/* Top-k pairs for a Top-k rule; for fusion int8 features of exactly the variant's size, with a
 * finite positive scale and a zero point in the int8 range. */
static bool result_fits(const coord_stream *s, const coord_stream_env *env,
                        const fleet_msg_result *r)
{
    if (r->variant >= env->family->count)
        return false;
    if (!s->fusion)
        return topk_fits(s, r);
    const fleet_tensor *t = &r->features;
    return r->output == FLEET_OUTPUT_INT8 && t->dtype == FLEET_DTYPE_I8 &&
           t->size == env->family->variants[r->variant].feature_count && t->scale > 0.0f &&
           isfinite(t->scale) && t->zero_point >= -128 && t->zero_point <= 127;
}

bool coord_stream_holds(const coord_stream *s, const char *id)
{
    const coord_pending *p = find(s, id, hash_id(id));
    return p && p->state == SLOT_PENDING && p->has_request;
}

void coord_stream_result(coord_stream *s, const coord_stream_env *env, const fleet_msg_result *r,
                         double now_us, double default_deadline_us)
{
    env->stats->results++;
    if (!result_fits(s, env, r)) {
        env->stats->bad_messages++;
        return;
    }
    uint64_t h = hash_id(r->id);
    coord_pending *p = find(s, r->id, h);
    if (p && p->state == SLOT_DECIDED) {
        env->stats->late_results++;
        return;
    }
    if (!p) {
        p = insert(s, env, r->id, h, now_us);
        p->arrival_us = now_us;
        p->deadline_us = now_us + default_deadline_us;
        if (p->deadline_us < s->earliest_deadline_us)
            s->earliest_deadline_us = p->deadline_us;
    }
    if (p->answered >> r->variant & 1u) {
        env->stats->duplicate_results++; /* a replica was faster */
        return;
    }
    p->answered |= 1u << r->variant;
    if (s->fusion) {
        const coord_variant *var = &env->family->variants[r->variant];
        fleet_model_qparams q = {r->features.scale, r->features.zero_point};
        fleet_model_dequantize_int8((const int8_t *)r->features.data, var->feature_count, q,
                                    features_of(s, p) + var->feature_offset);
    } else {
        fleet_ensemble_score *scores = block_of(s, p, r->variant);
        p->k[r->variant] = (uint8_t)r->k; /* at most classes (topk_fits) */
        for (size_t i = 0; i < r->k; i++)
            scores[i] = (fleet_ensemble_score){r->classes[i], r->probs[i]};
    }
    if (r->infer_us > p->slowest_infer_us)
        p->slowest_infer_us = r->infer_us;
    maybe_decide(s, env, p, now_us);
}

/* Deciding can erase other slots (the ring of decided ids forgets its oldest), and an erase
 * shifts slots backwards under a running scan, which would then step over one. So scans note
 * the ids in s->due first and settle them afterwards, each found again by its id. */
static void settle_due(coord_stream *s, const coord_stream_env *env, size_t n, double now_us)
{
    for (size_t i = 0; i < n; i++) {
        coord_pending *p = find(s, s->due[i], hash_id(s->due[i]));
        if (!p || p->state != SLOT_PENDING)
            continue;
        if (p->has_request)
            decide(s, env, p, now_us);
        else /* results for a request that never came: nothing to answer */
            settle(s, p, now_us);
    }
}

/* Scans the table only when a pending request may have expired (the earliest deadline has
 * come), and once a second to forget decisions older than the linger time. */
void coord_stream_sweep(coord_stream *s, const coord_stream_env *env, double now_us)
{
    if (now_us < s->earliest_deadline_us && now_us < s->next_cleanup_us)
        return;
    s->next_cleanup_us = now_us + 1e6;
    double earliest = now_us + 3600e6;
    size_t n = 0;
    for (size_t i = 0; i < s->capacity; i++) {
        coord_pending *p = &s->slots[i];
        if (p->state != SLOT_PENDING)
            continue;
        if (now_us < p->deadline_us)
            earliest = p->deadline_us < earliest ? p->deadline_us : earliest;
        else /* at most max_pending are pending */
            snprintf(s->due[n++], sizeof s->due[0], "%s", p->id);
    }
    settle_due(s, env, n, now_us);
    s->earliest_deadline_us = earliest;
    /* Erasing shifts slots backwards, so the same index is looked at again after each erase. */
    for (size_t i = 0; i < s->capacity;) {
        coord_pending *p = &s->slots[i];
        if (p->state == SLOT_DECIDED && now_us > p->forget_us)
            erase(s, p);
        else
            i++;
    }
}

void coord_stream_expected_changed(coord_stream *s, const coord_stream_env *env, double now_us)
{
    size_t n = 0;
    for (size_t i = 0; i < s->capacity; i++)
        if (complete(env, &s->slots[i]))
            snprintf(s->due[n++], sizeof s->due[0], "%s", s->slots[i].id);
    settle_due(s, env, n, now_us);
}

void coord_stream_owner_gone(coord_stream *s, const coord_stream_env *env, const char *owner,
                             double due_by_us, double now_us)
{
    size_t n = 0;
    uint64_t owned_by = hash_id(owner);
    for (size_t i = 0; i < s->capacity; i++) {
        coord_pending *p = &s->slots[i];
        if (p->state != SLOT_PENDING || p->owner != owned_by)
            continue;
        bool due = p->deadline_us <= due_by_us; /* the owner decided it: settle_due lets it go */
        if (!due) { /* ours now (with no backup): decided when complete or due */
            p->owner = 0;
            env->stats->taken_over++;
            env->stats->requests++;
        }
        if (due || complete(env, p))
            snprintf(s->due[n++], sizeof s->due[0], "%s", p->id);
    }
    settle_due(s, env, n, now_us);
}

void coord_stream_hand_over(coord_stream *s, const coord_stream_env *env,
                            bool (*taken)(void *ctx, uint64_t holder), void *ctx, double cut_us,
                            double now_us)
{
    size_t n = 0;
    for (size_t i = 0; i < s->capacity; i++) {
        const coord_pending *p = &s->slots[i];
        /* One due by the cut is the backup's to let go (coord_stream_owner_gone): ours. */
        if (p->state == SLOT_PENDING && !unanswered(p) && p->backup && p->deadline_us > cut_us &&
            taken(ctx, p->backup))
            snprintf(s->due[n++], sizeof s->due[0], "%s", p->id);
    }
    for (size_t i = 0; i < n; i++) { /* settling may erase (and shift) slots: found by id */
        coord_pending *p = find(s, s->due[i], hash_id(s->due[i]));
        if (p && p->state == SLOT_PENDING) {
            env->stats->handed_over++;
            settle(s, p, now_us);
        }
    }
}

void coord_stream_decide_all(coord_stream *s, const coord_stream_env *env, double now_us)
{
    size_t n = 0;
    for (size_t i = 0; i < s->capacity; i++)
        if (s->slots[i].state == SLOT_PENDING)
            snprintf(s->due[n++], sizeof s->due[0], "%s", s->slots[i].id);
    settle_due(s, env, n, now_us);
}
