// bench.js: times ONNX Runtime (CPU, one thread) on a model inside node; prints one JSON object.
//
// usage: node scripts/ort/bench.js MODEL.onnx BATCH SECONDS [PROBE.onnx]
//   -> {"median_us", "p99_us", "iterations", "batch", "ort_version"
//       [, "probe_median_us", "probe_p99_us", "probe_iterations"]}
//
// Each session runs with one intra-op and one inter-op thread, sequential execution and all
// graph optimisations. Every float32 input gets its shape from the model, the first dimension
// (the batch) set to BATCH; the input tensors are made once. After 0.2 s of warm-up (at least
// 3 runs) each `await session.run(feeds)` is timed with process.hrtime.bigint for SECONDS (at
// least 20 runs): no process start-up, no model loading, but the binding's own per-call cost
// is inside. With PROBE (a trivial model: bench/runtime gives one with the classifiers' input
// and output sizes) the probe's runs are timed too, in blocks of 8 alternating with the
// model's, so that MODEL's median minus the probe's is ONNX Runtime's own work under the same
// conditions (the same process, the same moments of a shared machine's load).
'use strict';
let ort;
try {
  ort = require('onnxruntime-node');
} catch (e) {
  console.error('bench.js: onnxruntime-node is not installed (run scripts/ort-install.sh)');
  process.exit(1);
}

function inputShape(meta, batch) {
  if (!meta.isTensor || meta.type !== 'float32')
    throw new Error(`input ${meta.name}: only float32 tensors are supported`);
  return meta.shape.map((d, i) => {
    if (i === 0)
      return batch;
    if (typeof d === 'number' && d > 0)
      return d;
    throw new Error(`input ${meta.name}: dimension ${i} is not fixed (${d})`);
  });
}

function percentile(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(sorted.length * q / 100) - 1))];
}

let seed = 12345;

async function load(path, batch) {
  const session = await ort.InferenceSession.create(path, {
    intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const feeds = {};
  for (const meta of session.inputMetadata) {
    const shape = inputShape(meta, batch);
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) {
      seed = (seed * 1664525 + 1013904223) >>> 0;
      data[i] = (seed >>> 8) / 16777216;
    }
    feeds[meta.name] = new ort.Tensor('float32', data, shape);
  }
  return {session, feeds, times: []};
}

async function timeRuns(m, count) {
  for (let i = 0; i < count; i++) {
    const t0 = process.hrtime.bigint();
    await m.session.run(m.feeds);
    m.times.push(Number(process.hrtime.bigint() - t0) / 1e3);
  }
}

function summary(times) {
  times.sort((a, b) => a - b);
  return [times[times.length >> 1], percentile(times, 99), times.length];
}

async function main() {
  const args = process.argv.slice(2);
  const batch = Number(args[1]), seconds = Number(args[2]);
  if (args.length < 3 || args.length > 4 || !Number.isInteger(batch) || batch < 1 ||
      !(seconds > 0)) {
    console.error('usage: node scripts/ort/bench.js MODEL.onnx BATCH SECONDS [PROBE.onnx]');
    process.exit(2);
  }
  const model = await load(args[0], batch);
  const probe = args[3] ? await load(args[3], batch) : null;
  const block = probe ? 8 : 1;
  const both = async () => {
    await timeRuns(model, block);
    if (probe)
      await timeRuns(probe, block);
  };
  let end = process.hrtime.bigint() + 200000000n;
  for (let warm = 0; warm < 3 || process.hrtime.bigint() < end; warm++)
    await both();
  model.times.length = 0;
  if (probe)
    probe.times.length = 0;
  end = process.hrtime.bigint() + BigInt(Math.round(seconds * 1e9));
  while (model.times.length < 20 || process.hrtime.bigint() < end)
    await both();
  const [median, p99, iterations] = summary(model.times);
  const out = {median_us: median, p99_us: p99, iterations, batch,
               ort_version: require('onnxruntime-node/package.json').version};
  if (probe)
    [out.probe_median_us, out.probe_p99_us, out.probe_iterations] = summary(probe.times);
  console.log(JSON.stringify(out));
}

main().catch((e) => {
  console.error(`bench.js: ${process.argv[2] || ''}: ${e.message}`);
  process.exit(1);
});
