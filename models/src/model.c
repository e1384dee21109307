/* model.c: the public fleet_model API: loading, batch changes, running, introspection. */
#include "model_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define FM_DEFAULT_MAX_FILE ((size_t)256 << 20)

struct fleet_model {
    fm_graph *graph; /* after the cut and the passes */
    fm_compiled *compiled;
    size_t threads;
    fm_cut_list cuts;
    fleet_model_stats stats;
    const char **op_types; /* borrowed from graph nodes */
    size_t *op_nodes;
    size_t n_ops;
};

void fleet_model_options_init(fleet_model_options *options)
{
    memset(options, 0, sizeof *options);
    options->batch_size = 1;
}

static fleet_model_status fm_collect_stats(fleet_model *m)
{
    const fm_graph *g = m->graph;
    m->op_types = calloc(g->n_nodes + 1, sizeof *m->op_types);
    m->op_nodes = calloc(g->n_nodes + 1, sizeof *m->op_nodes);
    if (!m->op_types || !m->op_nodes)
        return fm_fail(FLEET_MODEL_ENOMEM, "out of memory");
    bool *counted = calloc(g->n_values + 1, sizeof *counted);
    if (!counted)
        return fm_fail(FLEET_MODEL_ENOMEM, "out of memory");
    /* Only what this part computes counts: a head or tail skips the other side's weights. */
    for (size_t i = 0; i < g->imported_nodes; i++) {
        const fm_node *n = &g->nodes[i];
        for (size_t k = 0; !n->dead && k < n->n_in; k++) {
            int v = n->in[k] >= 0 ? fm_resolve(g, n->in[k]) : -1;
            if (v >= 0 && !counted[v] && g->values[v].is_const && !g->values[v].is_int)
                m->stats.parameters += g->values[v].count;
            if (v >= 0)
                counted[v] = true;
        }
    }
    free(counted);
    for (size_t i = 0; i < g->imported_nodes; i++) {
        const fm_node *n = &g->nodes[i];
        if (n->dead && n->op != FM_OP_CONSTANT)
            continue;
        m->stats.nodes++;
        m->stats.macs += fm_node_macs(g, n);
        size_t k = 0;
        while (k < m->n_ops && strcmp(m->op_types[k], n->op_type) != 0)
            k++;
        if (k == m->n_ops)
            m->op_types[m->n_ops++] = n->op_type;
        m->op_nodes[k]++;
    }
    return FLEET_MODEL_OK;
}

static fleet_model_status fm_prepare(fleet_model *m, const fleet_model_options *o)
{
    fm_graph *g = m->graph;
    g->batch = 1;
    fleet_model_status st = fm_infer_shapes(g);
    if (st == FLEET_MODEL_OK && o->part == FLEET_MODEL_PART_FULL)
        st = fm_find_cuts(g, &m->cuts);
    if (st == FLEET_MODEL_OK)
        st = fm_apply_cut(g, o->part, o->cut_tensor);
    if (st == FLEET_MODEL_OK)
        st = fm_collect_stats(m);
    if (st == FLEET_MODEL_OK)
        st = fm_optimize(g);
    if (st == FLEET_MODEL_OK)
        st = fleet_model_set_batch_size(m, o->batch_size ? o->batch_size : 1);
    return st;
}

fleet_model_status fleet_model_load_buffer(const void *data, size_t size,
                                           const fleet_model_options *options, fleet_model **out)
{
    fleet_model_options defaults;
    fleet_model_options_init(&defaults);
    const fleet_model_options *o = options ? options : &defaults;
    if ((!data && size) || !out)
        return fm_fail(FLEET_MODEL_EINVAL, "data and out must not be NULL");
    if (o->part > FLEET_MODEL_PART_TAIL || o->batch_size > (1u << 20) || o->threads > 1024)
        return fm_fail(FLEET_MODEL_EINVAL, "options out of range");
    size_t limit = o->max_file_bytes ? o->max_file_bytes : FM_DEFAULT_MAX_FILE;
    if (size > limit)
        return fm_fail(FLEET_MODEL_ETOOBIG, "model of %zu bytes exceeds the limit of %zu", size,
                       limit);
    fleet_model *m = calloc(1, sizeof *m);
    if (!m)
        return fm_fail(FLEET_MODEL_ENOMEM, "out of memory");
    m->threads = o->threads;
    fleet_model_status st = fm_import(data, size, &m->graph);
    if (st == FLEET_MODEL_OK)
        st = fm_prepare(m, o);
    if (st != FLEET_MODEL_OK) {
        fleet_model_destroy(m);
        return st;
    }
    *out = m;
    return FLEET_MODEL_OK;
}

fleet_model_status fleet_model_load_file(const char *path, const fleet_model_options *options,
                                         fleet_model **out)
{
    fleet_model_status st = FLEET_MODEL_OK;
    size_t limit =
        options && options->max_file_bytes ? options->max_file_bytes : FM_DEFAULT_MAX_FILE;
    unsigned char *bytes = NULL;
    struct stat info;
    if (!path || !out)
        return fm_fail(FLEET_MODEL_EINVAL, "path and out must not be NULL");
    FILE *f = fopen(path, "rb");
    if (!f)
        return fm_fail(FLEET_MODEL_ESYSERR, "%s: %s", path, strerror(errno));
    if (fstat(fileno(f), &info) != 0 || !S_ISREG(info.st_mode)) {
        st = fm_fail(FLEET_MODEL_ESYSERR, "%s: not a regular file", path);
        goto cleanup;
    }
    if ((size_t)info.st_size > limit) {
        st = fm_fail(FLEET_MODEL_ETOOBIG, "%s: %lld bytes exceeds the limit of %zu", path,
                     (long long)info.st_size, limit);
        goto cleanup;
    }
    bytes = malloc((size_t)info.st_size + 1);
    if (!bytes) {
        st = fm_fail(FLEET_MODEL_ENOMEM, "out of memory for %s", path);
        goto cleanup;
    }
    if (fread(bytes, 1, (size_t)info.st_size, f) != (size_t)info.st_size) {
        st = fm_fail(FLEET_MODEL_ESYSERR, "%s: read failed", path);
        goto cleanup;
    }
    st = fleet_model_load_buffer(bytes, (size_t)info.st_size, options, out);
    if (st != FLEET_MODEL_OK) {
        char detail[512];
        snprintf(detail, sizeof detail, "%s", fleet_model_last_error());
        fm_fail(st, "%s: %s", path, detail);
    }
cleanup:
    free(bytes);
    fclose(f);
    return st;
}

void fleet_model_destroy(fleet_model *m)
{
    if (!m)
        return;
    fm_compiled_free(m->compiled);
    fm_graph_free(m->graph);
    free(m->cuts.cuts);
    free(m->op_types);
    free(m->op_nodes);
    free(m);
}

fleet_model_status fleet_model_set_batch_size(fleet_model *m, size_t batch_size)
{
    if (!m || batch_size == 0 || batch_size > (1u << 20))
        return fm_fail(FLEET_MODEL_EINVAL, "batch size must be 1 to 1048576");
    fm_compiled *fresh = NULL;
    size_t previous = m->graph->batch;
    m->graph->batch = batch_size;
    fleet_model_status st = fm_infer_shapes(m->graph);
    if (st == FLEET_MODEL_OK)
        st = fm_compile(m->graph, m->threads, &fresh);
    if (st != FLEET_MODEL_OK) {
        m->graph->batch = previous;
        fm_infer_shapes(m->graph); /* succeeded before at this size */
        return st;
    }
    fm_compiled_free(m->compiled);
    m->compiled = fresh;
    m->stats.xnn_nodes = fm_compiled_xnn_nodes(fresh);
    return FLEET_MODEL_OK;
}

size_t fleet_model_batch_size(const fleet_model *m)
{
    return m->graph->batch;
}

size_t fleet_model_input_count(const fleet_model *m)
{
    return m->graph->n_inputs;
}

size_t fleet_model_output_count(const fleet_model *m)
{
    return m->graph->n_outputs;
}

static void fm_fill_info(const fm_graph *g, int declared, fleet_model_tensor_info *info)
{
    const fm_value *v = &g->values[fm_resolve(g, declared)];
    memset(info, 0, sizeof *info);
    info->name = g->values[declared].name;
    info->rank = v->rank;
    for (size_t d = 0; d < v->rank; d++)
        info->dims[d] = (size_t)v->dims[d];
    info->count = fm_value_numel(v);
}

fleet_model_status fleet_model_input_info(const fleet_model *m, size_t index,
                                          fleet_model_tensor_info *info)
{
    if (!m || !info || index >= m->graph->n_inputs)
        return fm_fail(FLEET_MODEL_EINVAL, "no input #%zu", index);
    fm_fill_info(m->graph, m->graph->inputs[index], info);
    return FLEET_MODEL_OK;
}

fleet_model_status fleet_model_output_info(const fleet_model *m, size_t index,
                                           fleet_model_tensor_info *info)
{
    if (!m || !info || index >= m->graph->n_outputs)
        return fm_fail(FLEET_MODEL_EINVAL, "no output #%zu", index);
    fm_fill_info(m->graph, m->graph->outputs[index], info);
    return FLEET_MODEL_OK;
}

fleet_model_status fleet_model_run(fleet_model *m, const float *const *inputs,
                                   float *const *outputs)
{
    if (!m || !inputs || !outputs)
        return fm_fail(FLEET_MODEL_EINVAL, "model, inputs and outputs must not be NULL");
    for (size_t i = 0; i < m->graph->n_inputs; i++)
        if (!inputs[i])
            return fm_fail(FLEET_MODEL_EINVAL, "input #%zu is NULL", i);
    for (size_t i = 0; i < m->graph->n_outputs; i++)
        if (!outputs[i])
            return fm_fail(FLEET_MODEL_EINVAL, "output #%zu is NULL", i);
    return fm_compiled_run(m->compiled, inputs, outputs);
}

const char *fleet_model_metadata(const fleet_model *m, const char *key)
{
    for (size_t i = 0; m && key && i < m->graph->n_meta; i++)
        if (strcmp(m->graph->meta_keys[i], key) == 0)
            return m->graph->meta_values[i];
    return NULL;
}

size_t fleet_model_metadata_count(const fleet_model *m)
{
    return m->graph->n_meta;
}

fleet_model_status fleet_model_metadata_at(const fleet_model *m, size_t index, const char **key,
                                           const char **value)
{
    if (!m || index >= m->graph->n_meta)
        return fm_fail(FLEET_MODEL_ENOTFOUND, "no metadata entry #%zu", index);
    if (key)
        *key = m->graph->meta_keys[index];
    if (value)
        *value = m->graph->meta_values[index];
    return FLEET_MODEL_OK;
}

size_t fleet_model_cut_count(const fleet_model *m)
{
    return m->cuts.count;
}

fleet_model_status fleet_model_cut_at(const fleet_model *m, size_t index, fleet_model_cut *cut)
{
    if (!m || !cut || index >= m->cuts.count)
        return fm_fail(FLEET_MODEL_ENOTFOUND, "no cut candidate #%zu", index);
    *cut = m->cuts.cuts[index];
    return FLEET_MODEL_OK;
}

void fleet_model_get_stats(const fleet_model *m, fleet_model_stats *stats)
{
    *stats = m->stats;
}

size_t fleet_model_op_count(const fleet_model *m)
{
    return m->n_ops;
}

fleet_model_status fleet_model_op_at(const fleet_model *m, size_t index, const char **op_type,
                                     size_t *nodes)
{
    if (!m || index >= m->n_ops)
        return fm_fail(FLEET_MODEL_ENOTFOUND, "no operator #%zu", index);
    if (op_type)
        *op_type = m->op_types[index];
    if (nodes)
        *nodes = m->op_nodes[index];
    return FLEET_MODEL_OK;
}
