#!/usr/bin/python3
"""The models bench/runtime times, defined in PyTorch, and the link from an ONNX file back to
the PyTorch module that PyTorch eager runs for it.

Representative CNNs (about 10k to 1M parameters), exported with the zoo's input contract
(input "input" float32 [N,1,28,28], dynamic batch N, output "logits"), opset 13:

  tiny-10k    conv8-pool-conv16-pool-conv56, GAP, FC10 (BatchNorm)
  cnn-small   conv16-relu-pool-conv32-relu-pool-flatten-FC10, about 1M MACs (no BatchNorm)
  mbv2-w035   MobileNetV2-style for 28x28: stem conv 3x3 s1, inverted residuals (expansion 6,
              depthwise 3x3, BatchNorm, ReLU6, residual adds), width 0.35, GAP, FC10
  cnn-468k    conv32-32-pool-64-64-pool, FC128, FC10 (BatchNorm): the 468k plain CNN
  cnn-1m      conv48-48-pool-96-96-pool, FC192, FC10 (BatchNorm): the top of the range
  slice-10    y = flatten(x)[:, :10]: a trivial model with the classifiers' input and output
              sizes, for the ONNX Runtime node binding's own per-call cost
  mul-only    y = x * 2, one Mul: the same with a [N,1,28,28] output

Weights are random with a fixed seed (speed does not depend on their values). BatchNorm runs
in eval mode with randomized statistics and is exported as BatchNormalization nodes
(training=PRESERVE: torch's default export folds it into the convolutions itself), so the
engines' own folding is exercised. Flatten is torch.flatten(x, 1): an ONNX Flatten, no
Shape/Gather arithmetic.

Every export writes NAME.onnx and NAME.pt; the .pt holds the model's name, its state_dict and
the SHA-256 of the ONNX file it belongs to, so torch_module_for(path) rebuilds the identical
module for that file (or a copy of it beside a copy of the .pt). Files of the Fashion-MNIST
zoo are recognised by their SHA-256 in the manifest.json beside them (or in models/zoo/):
PyTorch then runs the zoo's architecture from models/train/nets.py, with fresh weights.

Run with Debian's /usr/bin/python3 (PyTorch 1.13).
usage: runtime_models.py OUT_DIR     writes NAME.onnx and NAME.pt for every model above
       runtime_models.py --list      prints the model names (not the probes)
"""
import hashlib
import json
import os
import sys
import warnings

import torch
import torch.nn as nn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEED = 1234
IMAGE = (1, 28, 28)  # per-sample input shape of every image model


def cbr(cin, cout, k=3, stride=1, groups=1, act=nn.ReLU):
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), act(inplace=True))


class Tiny10k(nn.Module):
    """About 10k parameters: conv8-pool-conv16-pool-conv56, GAP, FC10."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(cbr(1, 8), nn.MaxPool2d(2), cbr(8, 16), nn.MaxPool2d(2),
                                  cbr(16, 56), nn.AdaptiveAvgPool2d(1))
        self.fc = nn.Linear(56, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.body(x), 1))


class CnnSmall(nn.Module):
    """conv16-pool-conv32-pool-fc10: the product owner's ~1M-MAC reference CNN."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 16, 3, padding=1)
        self.c2 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc = nn.Linear(32 * 7 * 7, 10)

    def forward(self, x):
        x = torch.max_pool2d(torch.relu(self.c1(x)), 2)
        x = torch.max_pool2d(torch.relu(self.c2(x)), 2)
        return self.fc(torch.flatten(x, 1))


class InvertedResidual(nn.Module):
    """1x1 expand (x6), depthwise 3x3, 1x1 project (linear); residual when shapes allow."""

    def __init__(self, cin, cout, stride, expand=6):
        super().__init__()
        mid = cin * expand
        self.use_res = stride == 1 and cin == cout
        self.block = nn.Sequential(cbr(cin, mid, 1, act=nn.ReLU6),
                                   cbr(mid, mid, 3, stride, groups=mid, act=nn.ReLU6),
                                   nn.Conv2d(mid, cout, 1, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        return x + self.block(x) if self.use_res else self.block(x)


class MobileNetV2W035(nn.Module):
    """MobileNetV2-style at width 0.35 (channels 16, 8, 16, 24: make_divisible(0.35 * c, 8)),
    strides for 28x28 (28 -> 14 -> 7), GAP, FC10: about 30k parameters."""

    STAGES = [(8, 1, 1), (8, 2, 2), (16, 2, 2), (24, 2, 1)]  # (channels, blocks, first stride)

    def __init__(self):
        super().__init__()
        layers = [cbr(1, 16, 3, 1, act=nn.ReLU6)]
        cin = 16
        for cout, n, stride in self.STAGES:
            for i in range(n):
                layers.append(InvertedResidual(cin, cout, stride if i == 0 else 1))
                cin = cout
        self.features = nn.Sequential(*layers)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.gap(self.features(x)), 1))


class PlainCnn(nn.Module):
    """conv w1-w1-pool-w2-w2-pool, flatten, FC hidden, FC10 (BatchNorm after each conv)."""

    def __init__(self, w1, w2, hidden):
        super().__init__()
        self.body = nn.Sequential(cbr(1, w1), cbr(w1, w1), nn.MaxPool2d(2), cbr(w1, w2),
                                  cbr(w2, w2), nn.MaxPool2d(2))
        self.fc1 = nn.Linear(w2 * 7 * 7, hidden)
        self.fc2 = nn.Linear(hidden, 10)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(torch.flatten(self.body(x), 1))))


class MulOnly(nn.Module):
    def forward(self, x):
        return x * 2.0


class Slice10(nn.Module):
    def forward(self, x):
        return torch.flatten(x, 1)[:, :10]


# name -> builder: the image models from smallest to largest, then the binding probes
MODELS = {
    "tiny-10k": Tiny10k,
    "cnn-small": CnnSmall,
    "mbv2-w035": MobileNetV2W035,
    "cnn-468k": lambda: PlainCnn(32, 64, 128),
    "cnn-1m": lambda: PlainCnn(48, 96, 192),
    "slice-10": Slice10,
    "mul-only": MulOnly,
}
PROBES = ("slice-10", "mul-only")  # not models: bench/runtime times them for the binding


def build(name):
    """A fresh eval-mode module for the bench model `name`: fixed seed, BatchNorm statistics
    and affine parameters randomized (so folding them changes the numbers)."""
    torch.manual_seed(SEED)
    model = MODELS[name]().eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return model


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def export(name, out_dir):
    """Writes out_dir/name.onnx and out_dir/name.pt; returns the ONNX path."""
    model = build(name)
    path = os.path.join(out_dir, name + ".onnx")
    output = "output" if name in PROBES else "logits"
    with torch.no_grad(), warnings.catch_warnings():
        # PRESERVE warns about constant folding in training mode; the model is in eval mode
        warnings.simplefilter("ignore", UserWarning)
        torch.onnx.export(model, torch.rand(1, *IMAGE), path, input_names=["input"],
                          output_names=[output], opset_version=13,
                          training=torch.onnx.TrainingMode.PRESERVE,
                          dynamic_axes={"input": {0: "N"}, output: {0: "N"}})
    torch.save({"model": name, "onnx_sha256": sha256(path), "state_dict": model.state_dict()},
               os.path.join(out_dir, name + ".pt"))
    return path


# ----------------------------------------------------------------------------- the zoo

def _zoo_builder(fname):
    """(builder, per-sample input shape) for the zoo file named fname, or None."""
    sys.path.insert(0, ROOT)
    from models.train import nets  # the zoo's own definitions
    if fname == "baseline.onnx":
        return (lambda: nets.PlainCNN(**nets.BASELINE)), IMAGE
    if fname == "tiny.onnx":
        return nets.TinyCNN, IMAGE
    if fname == "distortion-detector.onnx":
        return nets.DistortionDetector, IMAGE
    if fname.startswith("early-exit") and fname.endswith(".onnx"):
        return (lambda: nets.EarlyExitNet(nets.PlainCNN(**nets.BASELINE))), IMAGE
    for i, v in enumerate(nets.VARIANTS):
        if fname == "variant-%d.onnx" % i:
            spec = {k: v[k] for k in ("widths", "k", "res")}
            return (lambda: nets.PlainCNN(features_out=True, **spec)), IMAGE
    if fname == "fusion.onnx":
        fin = sum(v["widths"][2] for v in nets.VARIANTS)
        return (lambda: nets.FusionHead(fin)), (fin,)
    return None


def exported_params(model, shape):
    """Parameters as the zoo's manifest counts them (the runtime's count of the ONNX file):
    only the modules forward() uses, each BatchNorm folded into one bias per channel."""
    used = []
    hooks = [m.register_forward_hook(lambda m, i, o: used.append(m))
             for m in model.modules() if not list(m.children())]
    with torch.no_grad():
        model(torch.zeros(1, *shape))
    for h in hooks:
        h.remove()
    total = 0
    for m in set(used):
        if isinstance(m, nn.BatchNorm2d):
            total += m.num_features
        else:
            total += sum(p.numel() for p in m.parameters(recurse=False))
    return total


def _zoo_entry(path, digest):
    """The manifest entry whose sha256 is digest: from the manifest.json beside path, else
    from the committed zoo's."""
    for manifest in (os.path.join(os.path.dirname(os.path.abspath(path)), "manifest.json"),
                     os.path.join(ROOT, "models", "zoo", "manifest.json")):
        try:
            with open(manifest) as f:
                entries = json.load(f).get("models", [])
        except (OSError, ValueError):
            continue
        for e in entries:
            if e.get("sha256") == digest:
                return e
    return None


def torch_module_for(path):
    """(module, per-sample input shape, None) that PyTorch eager runs for the ONNX file at
    path, or (None, None, reason) when there is none."""
    digest = sha256(path)
    pt = os.path.splitext(path)[0] + ".pt"
    saved = torch.load(pt) if os.path.exists(pt) else None
    if isinstance(saved, dict) and saved.get("model") in MODELS and "onnx_sha256" in saved:
        if saved["onnx_sha256"] != digest:
            return None, None, "%s was saved with another version of this ONNX file" % pt
        model = build(saved["model"])
        model.load_state_dict(saved["state_dict"])
        return model, IMAGE, None
    entry = _zoo_entry(path, digest)
    if entry is None:
        return None, None, "no PyTorch definition (no bench .pt beside it, not in a zoo manifest)"
    found = _zoo_builder(entry["file"])
    if found is None:
        return None, None, "zoo file %s has no PyTorch builder in bench/runtime_models.py" % (
            entry["file"])
    builder, shape = found
    torch.manual_seed(SEED)
    model = builder().eval()
    params = exported_params(model, shape)
    # a few constants count as initializers in the ONNX file (Resize scales): allow 16
    if "params" in entry and abs(params - entry["params"]) > 16:
        return None, None, ("models/train/nets.py no longer matches %s (%d parameters, its "
                            "manifest says %d)" % (entry["file"], params, entry["params"]))
    return model, shape, None


def main():
    if sys.argv[1:] == ["--list"]:
        print("\n".join(n for n in MODELS if n not in PROBES))
        return 0
    if len(sys.argv) != 2 or sys.argv[1].startswith("-"):
        sys.stderr.write(__doc__)
        return 2
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name in MODELS:
        export(name, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
