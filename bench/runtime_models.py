#!/usr/bin/python3
"""Representative CNNs for bench/runtime (10k to 500k parameters), exported to ONNX with the
same input contract as the zoo ([N,1,28,28] float32, dynamic batch), plus a one-Mul model that
measures the ONNX Runtime node binding's own per-call cost. Weights are random (fixed seed):
speed does not depend on them. Run with Debian's /usr/bin/python3.

usage: runtime_models.py OUT_DIR          writes NAME.onnx and NAME.pt for every model
       runtime_models.py --list           prints the model names
"""
import os
import sys

import torch
import torch.nn as nn


def cbr(cin, cout, k=3, stride=1, groups=1):
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


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


class Tiny10k(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(cbr(1, 8), nn.MaxPool2d(2), cbr(8, 16), nn.MaxPool2d(2),
                                  cbr(16, 56), nn.AdaptiveAvgPool2d(1))
        self.fc = nn.Linear(56, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.body(x), 1))


class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, expand=6):
        super().__init__()
        mid = cin * expand
        self.use_res = stride == 1 and cin == cout
        self.block = nn.Sequential(
            nn.Conv2d(cin, mid, 1, bias=False), nn.BatchNorm2d(mid), nn.ReLU6(inplace=True),
            nn.Conv2d(mid, mid, 3, stride, 1, groups=mid, bias=False), nn.BatchNorm2d(mid),
            nn.ReLU6(inplace=True), nn.Conv2d(mid, cout, 1, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        return x + self.block(x) if self.use_res else self.block(x)


class MobileNetV2W035(nn.Module):
    """MobileNetV2-style, width 0.35, for 28x28: the variant family's kind of network."""

    def __init__(self):
        super().__init__()
        layers = [nn.Conv2d(1, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU6(True)]
        cfg = [(8, 1, 1), (8, 2, 2), (16, 2, 2), (24, 3, 2), (32, 2, 1)]
        cin = 16
        for cout, n, stride in cfg:
            for i in range(n):
                layers.append(InvertedResidual(cin, cout, stride if i == 0 else 1))
                cin = cout
        layers += [nn.Conv2d(cin, 128, 1, bias=False), nn.BatchNorm2d(128), nn.ReLU6(True)]
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(128, 10)

    def forward(self, x):
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(self.features(x), 1), 1))


class Cnn468k(nn.Module):
    """conv32-32-pool-64-64-pool, FC128, FC10: the 468k-parameter plain CNN of REFERENCES."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(cbr(1, 32), cbr(32, 32), nn.MaxPool2d(2), cbr(32, 64),
                                  cbr(64, 64), nn.MaxPool2d(2))
        self.fc1 = nn.Linear(64 * 7 * 7, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(torch.flatten(self.body(x), 1))))


class MulOnly(nn.Module):
    def forward(self, x):
        return x * 2.0


MODELS = {"tiny-10k": Tiny10k, "cnn-small": CnnSmall, "mbv2-w035": MobileNetV2W035,
          "cnn-468k": Cnn468k, "mul-only": MulOnly}

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def zoo_models():
    """The committed zoo's image models: name -> (ONNX file, torch builder of the same
    architecture). The ONNX files are what fleetinfer and ONNX Runtime run; PyTorch runs the
    architecture (its speed does not depend on the weights)."""
    sys.path.insert(0, ROOT)
    try:
        from models.train import nets
    except ImportError:
        return {}
    zoo = os.path.join(ROOT, "models", "zoo")
    found = {"zoo-baseline": ("baseline.onnx", lambda: nets.PlainCNN(**nets.BASELINE)),
             "zoo-tiny": ("tiny.onnx", nets.TinyCNN)}
    for i, v in enumerate(nets.VARIANTS):
        spec = {k: v[k] for k in ("widths", "k", "res")}
        found["zoo-variant-%d" % i] = ("variant-%d.onnx" % i,
                                       lambda spec=spec: nets.PlainCNN(**spec))
    return {name: (os.path.join(zoo, f), b) for name, (f, b) in found.items()
            if os.path.exists(os.path.join(zoo, f))}


def build(name):
    """The module for name, with its saved weights when OUT_DIR/name.pt exists."""
    torch.manual_seed(1234)
    zoo = zoo_models() if name.startswith("zoo-") else {}
    model = (zoo[name][1]() if name in zoo else MODELS[name]()).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    return model


def main():
    if sys.argv[1:] == ["--list"]:
        print("\n".join(MODELS))
        for name, (path, _) in zoo_models().items():
            print(name, path)
        return
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    x = torch.rand(1, 1, 28, 28)
    for name in list(MODELS) + list(zoo_models()):
        model = build(name)
        torch.save(model.state_dict(), os.path.join(out, name + ".pt"))
        if name.startswith("zoo-"):
            continue  # the committed ONNX file is what gets timed
        torch.onnx.export(model, x, os.path.join(out, name + ".onnx"), input_names=["input"],
                          output_names=["logits"], opset_version=13,
                          dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}})


if __name__ == "__main__":
    main()
