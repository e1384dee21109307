// reference.js: runs ONNX Runtime (CPU) on every model gen_op_models wrote, saving each output.
//
// usage: node scripts/ort/reference.js DIR
// Reads DIR/manifest.tsv and DIR/inputs.tsv, runs DIR/<name>.onnx on DIR/<name>.in<k>.f32 and
// writes DIR/<name>.out<k>.f32 (little-endian float32, ONNX layout, graph output order).
// Exits non-zero if ONNX Runtime rejects any model, naming each one, so stale or partial
// fixtures never get copied.
'use strict';

const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');

// graphOptimizationLevel 'disabled': the reference should be every operator exactly as the
// graph states it, run by ORT's plain kernels. 'all' would fold BatchNormalization into Conv,
// fuse activations and constant-fold, the same rewrites the runtime under test performs, so a
// shared mistake in a rewrite could hide, and the reference would drift with ORT's fusions.
// One intra-op thread keeps the reduction order, and so the last bits, stable between runs.
const SESSION_OPTIONS = {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'disabled',
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    // Errors only: the opset-6 Clip case would otherwise log ORT's "opset < 7" notice.
    logSeverityLevel: 3,
};

function readTable(file) {
    return fs.readFileSync(file, 'utf8')
        .split('\n')
        .filter((line) => line.length > 0 && !line.startsWith('#'))
        .map((line) => line.split('\t'));
}

function readF32(file, count) {
    const buf = fs.readFileSync(file);
    if (buf.length !== count * 4) {
        throw new Error(`${file}: ${buf.length} bytes, expected ${count * 4}`);
    }
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++) {
        out[i] = buf.readFloatLE(4 * i);
    }
    return out;
}

function writeF32(file, values) {
    const buf = Buffer.alloc(values.length * 4);
    for (let i = 0; i < values.length; i++) {
        buf.writeFloatLE(values[i], 4 * i);
    }
    fs.writeFileSync(file, buf);
}

async function runCase(dir, name, nInputs, nOutputs, shapes) {
    const session = await ort.InferenceSession.create(path.join(dir, `${name}.onnx`),
                                                      SESSION_OPTIONS);
    if (session.inputNames.length !== nInputs || session.outputNames.length !== nOutputs) {
        throw new Error(`graph has ${session.inputNames.length} inputs and ` +
                        `${session.outputNames.length} outputs, manifest says ${nInputs}/${nOutputs}`);
    }
    const feeds = {};
    for (let k = 0; k < nInputs; k++) {
        const dims = shapes.get(`${name}\t${k}`);
        const count = dims.reduce((a, b) => a * b, 1);
        const data = readF32(path.join(dir, `${name}.in${k}.f32`), count);
        feeds[session.inputNames[k]] = new ort.Tensor('float32', data, dims);
    }
    const results = await session.run(feeds);
    const described = [];
    for (let k = 0; k < nOutputs; k++) {
        const tensor = results[session.outputNames[k]];
        if (tensor.type !== 'float32') {
            throw new Error(`output ${k} is ${tensor.type}`);
        }
        writeF32(path.join(dir, `${name}.out${k}.f32`), tensor.data);
        described.push(`[${tensor.dims.join(',')}]`);
    }
    if (typeof session.release === 'function') {
        await session.release();
    }
    return described.join(' ');
}

async function main() {
    const dir = process.argv[2];
    if (!dir) {
        console.error('usage: node reference.js DIR');
        process.exit(2);
    }
    const shapes = new Map();
    for (const [name, k, dims] of readTable(path.join(dir, 'inputs.tsv'))) {
        shapes.set(`${name}\t${k}`, dims.split(',').map(Number));
    }
    const rejected = [];
    const cases = readTable(path.join(dir, 'manifest.tsv'));
    for (const [name, nInputs, nOutputs] of cases) {
        try {
            const dims = await runCase(dir, name, Number(nInputs), Number(nOutputs), shapes);
            console.log(`ok   ${name} -> ${dims}`);
        } catch (err) {
            rejected.push(name);
            console.error(`FAIL ${name}: ${String(err.message || err).split('\n')[0]}`);
        }
    }
    console.log(`onnxruntime-node ${ort.env.versions ? ort.env.versions.common : ''}: ` +
                `${cases.length - rejected.length}/${cases.length} cases ran`);
    if (rejected.length > 0) {
        console.error(`rejected by ONNX Runtime: ${rejected.join(' ')}`);
        process.exit(1);
    }
}

main().catch((err) => {
    console.error(err);
    process.exit(1);
});
