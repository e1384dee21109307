// run_model.js: ONNX Runtime's outputs for one model and one raw float32 input (the reference
// for tests/test_zoo_ort.c). usage: node run_model.js MODEL.onnx INPUT.f32 DIMS OUT_PREFIX
// DIMS is the input shape, e.g. 4,1,28,28; writes OUT_PREFIX.out<k>.f32 for every output.
const fs = require('fs');
const ort = require('onnxruntime-node');

async function main() {
  const [model, input, dimsText, prefix] = process.argv.slice(2);
  const dims = dimsText.split(',').map(Number);
  const bytes = fs.readFileSync(input);
  const data = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
  const session = await ort.InferenceSession.create(model, {graphOptimizationLevel: 'disabled',
                                                            intraOpNumThreads: 1});
  const result = await session.run({[session.inputNames[0]]: new ort.Tensor('float32', data, dims)});
  session.outputNames.forEach((name, k) => {
    const out = result[name].data;
    fs.writeFileSync(`${prefix}.out${k}.f32`, Buffer.from(out.buffer, out.byteOffset, out.length * 4));
  });
}
main().catch((e) => { console.error(`run_model.js: ${e.message}`); process.exit(1); });
