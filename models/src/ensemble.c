/* ensemble.c: the aggregation rules shared by the coordinator and the offline evaluation. */
#include "fleet_ensemble.h"

#include <math.h>
#include <string.h>

static const char *const rule_names[] = {"mean-softmax", "vp-topk", "acc-weighted", "majority"};

int fleet_ensemble_rule_parse(const char *name, fleet_ensemble_rule *rule)
{
    for (size_t i = 0; name && i < sizeof rule_names / sizeof rule_names[0]; i++)
        if (strcmp(name, rule_names[i]) == 0) {
            *rule = (fleet_ensemble_rule)i;
            return 0;
        }
    return -1;
}

const char *fleet_ensemble_rule_name(fleet_ensemble_rule rule)
{
    return (size_t)rule < sizeof rule_names / sizeof rule_names[0] ? rule_names[rule] : "unknown";
}

void fleet_ensemble_softmax(float *values, size_t count, float temperature)
{
    float inv = temperature > 0.0f ? 1.0f / temperature : 1.0f, top = -INFINITY, sum = 0.0f;
    for (size_t i = 0; i < count; i++)
        top = fmaxf(top, values[i] * inv);
    for (size_t i = 0; i < count; i++) {
        values[i] = expf(values[i] * inv - top);
        sum += values[i];
    }
    for (size_t i = 0; i < count && sum > 0.0f; i++)
        values[i] /= sum;
}

size_t fleet_ensemble_topk(const float *probs, size_t classes, size_t k, fleet_ensemble_score *out)
{
    size_t n = k < classes ? k : classes;
    for (size_t i = 0; i < n; i++) {
        int best = -1;
        for (size_t c = 0; c < classes; c++) {
            int taken = 0;
            for (size_t j = 0; j < i && !taken; j++)
                taken = out[j].cls == c;
            if (!taken && (best < 0 || probs[c] > probs[best]))
                best = (int)c;
        }
        out[i].cls = (uint16_t)best;
        out[i].prob = probs[best];
    }
    return n;
}

static int vote_is_valid(const fleet_ensemble_vote *v, size_t classes)
{
    if (!v->scores || v->count == 0 || v->count > classes || !isfinite(v->weight))
        return 0;
    for (size_t i = 0; i < v->count; i++) {
        float p = v->scores[i].prob;
        if (v->scores[i].cls >= classes || !isfinite(p) || p < 0.0f || p > 1.0f)
            return 0;
    }
    return 1;
}

/* Adds one vote's contribution to the per-class sums. */
static void accumulate(fleet_ensemble_rule rule, const fleet_ensemble_vote *v, float *sum,
                       float *votes)
{
    float mass = 0.0f, top = -1.0f;
    int winner = -1;
    for (size_t i = 0; i < v->count; i++) {
        mass += v->scores[i].prob;
        if (v->scores[i].prob > top ||
            (v->scores[i].prob == top && v->scores[i].cls < (uint16_t)winner)) {
            top = v->scores[i].prob;
            winner = v->scores[i].cls;
        }
    }
    float weight = rule == FLEET_ENSEMBLE_ACC_WEIGHTED ? powf(v->weight, 8.0f)
                   : rule == FLEET_ENSEMBLE_VP_TOPK    ? v->weight
                                                       : 1.0f;
    for (size_t i = 0; i < v->count; i++) {
        float p = v->scores[i].prob;
        if (rule == FLEET_ENSEMBLE_VP_TOPK)
            p = mass > 0.0f ? p / mass : 0.0f; /* softmax over the top-k logits */
        sum[v->scores[i].cls] += weight * p;
    }
    votes[winner] += 1.0f;
}

int fleet_ensemble_decide(fleet_ensemble_rule rule, const fleet_ensemble_vote *votes,
                          size_t n_votes, size_t classes, float *combined,
                          fleet_ensemble_decision *out)
{
    float sum[FLEET_ENSEMBLE_MAX_CLASSES] = {0}, ballots[FLEET_ENSEMBLE_MAX_CLASSES] = {0};
    if (classes == 0 || classes > FLEET_ENSEMBLE_MAX_CLASSES || (size_t)rule > 3)
        return -1;
    out->cls = -1;
    out->confidence = 0.0f;
    out->used = 0;
    float total_weight = 0.0f;
    for (size_t i = 0; i < n_votes; i++) {
        if (!vote_is_valid(&votes[i], classes))
            continue;
        accumulate(rule, &votes[i], sum, ballots);
        total_weight += rule == FLEET_ENSEMBLE_ACC_WEIGHTED ? powf(votes[i].weight, 8.0f) : 1.0f;
        out->used++;
    }
    if (out->used == 0 || !(total_weight > 0.0f)) {
        if (combined)
            memset(combined, 0, classes * sizeof *combined);
        out->used = 0;
        return 0;
    }
    if (rule == FLEET_ENSEMBLE_VP_TOPK)
        fleet_ensemble_softmax(sum, classes, 1.0f);
    else
        for (size_t c = 0; c < classes; c++)
            sum[c] /= total_weight;
    int best = 0;
    for (size_t c = 1; c < classes; c++) {
        int better =
            rule == FLEET_ENSEMBLE_MAJORITY
                ? ballots[c] > ballots[best] || (ballots[c] == ballots[best] && sum[c] > sum[best])
                : sum[c] > sum[best];
        if (better)
            best = (int)c;
    }
    out->cls = best;
    out->confidence = sum[best];
    if (combined)
        memcpy(combined, sum, classes * sizeof *combined);
    return 0;
}
