// bench.js: times ONNX Runtime (CPU, one thread) on a model inside node; prints one JSON object.
// usage: node scripts/ort/bench.js MODEL.onnx BATCH SECONDS
const ort = require('onnxruntime-node');

async function main() {
  const [path, batchText, secondsText] = process.argv.slice(2);
  const batch = Number(batchText), seconds = Number(secondsText);
  const session = await ort.InferenceSession.create(path, {
    intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const data = new Float32Array(batch * 784).map(() => Math.random());
  const feeds = {[session.inputNames[0]]: new ort.Tensor('float32', data, [batch, 1, 28, 28])};
  let end = Date.now() + 200;
  while (Date.now() < end) await session.run(feeds);
  const times = [];
  end = Date.now() + seconds * 1000;
  while (Date.now() < end || times.length < 20) {
    const t0 = process.hrtime.bigint();
    await session.run(feeds);
    times.push(Number(process.hrtime.bigint() - t0) / 1e3);
  }
  times.sort((a, b) => a - b);
  const p99 = times[Math.min(times.length - 1, Math.ceil(0.99 * times.length) - 1)];
  console.log(JSON.stringify({median_us: times[times.length >> 1], p99_us: p99,
                              iterations: times.length}));
}
main().catch((e) => { console.error(`bench.js: ${e.message}`); process.exit(1); });
