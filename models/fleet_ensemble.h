/* fleet_ensemble.h: turning the variants' Top-k outputs into one decision (pure functions). */
#ifndef FLEET_ENSEMBLE_H
#define FLEET_ENSEMBLE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FLEET_ENSEMBLE_MAX_CLASSES 1024

/* How the variants' answers are combined. The fleet's coordinator and `fleetctl eval` call the
 * same function, so an offline evaluation predicts the fleet's decisions exactly. */
typedef enum fleet_ensemble_rule {
    FLEET_ENSEMBLE_MEAN_SOFTMAX = 0, /* mean of the probabilities (absent classes count 0) */
    FLEET_ENSEMBLE_VP_TOPK,          /* variant parallelism: each variant's top-k renormalised,
                                        scattered, weighted, summed, softmaxed */
    FLEET_ENSEMBLE_ACC_WEIGHTED,     /* probabilities weighted by accuracy^8 */
    FLEET_ENSEMBLE_MAJORITY,         /* one vote per variant; ties go to the larger summed
                                        probability, then the smaller class */
} fleet_ensemble_rule;

/* One (class, probability) pair as a variant publishes it. */
typedef struct fleet_ensemble_score {
    uint16_t cls;
    float prob;
} fleet_ensemble_score;

/* One variant's answer: its Top-k pairs (any order) and its fixed weight factors. */
typedef struct fleet_ensemble_vote {
    const fleet_ensemble_score *scores; /* borrowed for the call */
    size_t count;                       /* k; at most the number of classes */
    float weight;                       /* VP_TOPK: (resolution / max) * (width / 0.35)^2;
                                           ACC_WEIGHTED: validation accuracy in [0, 1] */
} fleet_ensemble_vote;

typedef struct fleet_ensemble_decision {
    int cls;          /* -1 when no vote was usable */
    float confidence; /* the winning class's combined probability */
    size_t used;      /* votes that counted */
} fleet_ensemble_decision;

/* Combines votes over `classes` classes. Votes with no pairs are skipped (a missing variant).
 * combined, when not NULL, receives the combined probability of every class (classes floats).
 * Pairs with a class out of range or a probability that is not finite in [0, 1] make the vote
 * invalid: it is skipped and counts as missing. Returns 0, or -1 when classes is out of range. */
int fleet_ensemble_decide(fleet_ensemble_rule rule, const fleet_ensemble_vote *votes,
                          size_t n_votes, size_t classes, float *combined,
                          fleet_ensemble_decision *out);

/* Top-k of a probability (or score) vector, highest first; ties keep the smaller class first.
 * Returns the number of pairs written: min(k, classes). */
size_t fleet_ensemble_topk(const float *probs, size_t classes, size_t k, fleet_ensemble_score *out);

/* softmax(logits / temperature) in place; temperature <= 0 counts as 1. */
void fleet_ensemble_softmax(float *values, size_t count, float temperature);

/* Parses "mean-softmax", "vp-topk", "acc-weighted", "majority"; -1 when unknown. */
int fleet_ensemble_rule_parse(const char *name, fleet_ensemble_rule *rule);
const char *fleet_ensemble_rule_name(fleet_ensemble_rule rule);

#ifdef __cplusplus
}
#endif
#endif
