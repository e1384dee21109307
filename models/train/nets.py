"""The zoo's architectures. Export-friendly: flatten/GAP only, Resize with constant scales."""
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def cbr(cin, cout, k=3, stride=1):
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class InResize(nn.Module):
    """Bilinear resize from 28x28 to `res` with a constant scale (exports as Resize)."""

    def __init__(self, res, src=28):
        super().__init__()
        self.res = res
        # res/src rounded to float32 (as ONNX stores it); for 20, 24 and 32 from 28 this rounds
        # up, so floor(src * scale) == res in torch's float64 and the runtime's check alike
        self.scale = float(np.float32(res / src)) if res != src else 1.0
        assert int(math.floor(src * self.scale)) == res

    def forward(self, x):
        if self.res == 28:
            return x
        return F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False,
                             recompute_scale_factor=False)


class PlainCNN(nn.Module):
    """conv w1-w1-pool-w2-w2-pool-w3, GAP, FC. Module names give readable ONNX tensor names."""

    def __init__(self, widths=(32, 64, 128), k=(3, 3, 3), res=28, features_out=False,
                 classes=10):
        super().__init__()
        w1, w2, w3 = widths
        self.resize = InResize(res)
        self.block1 = nn.Sequential(cbr(1, w1, k[0]), cbr(w1, w1, k[0]))
        self.pool1 = nn.MaxPool2d(2)
        self.block2 = nn.Sequential(cbr(w1, w2, k[1]), cbr(w2, w2, k[1]))
        self.pool2 = nn.MaxPool2d(2)
        self.block3 = cbr(w2, w3, k[2])
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(w3, classes)
        self.features_out = features_out
        self.res = res
        self.widths = widths
        self.kernels = k

    def stem(self, x):
        """Returns (pool1, pool2, feature vector)."""
        x = self.resize(x)
        p1 = self.pool1(self.block1(x))
        p2 = self.pool2(self.block2(p1))
        f = torch.flatten(self.gap(self.block3(p2)), 1)
        return p1, p2, f

    def forward(self, x):
        _, _, f = self.stem(x)
        logits = self.fc(f)
        if self.features_out:
            return logits, f
        return logits


class ExitBranch(nn.Module):
    def __init__(self, cin, cmid, stride, classes=10):
        super().__init__()
        self.conv = cbr(cin, cmid, 3, stride)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cmid, classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.gap(self.conv(x)), 1))


class EarlyExitNet(nn.Module):
    """The baseline (frozen backbone) with two side branches: after pool1 and pool2.
    Outputs (logits, exit1, exit2)."""

    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone
        w1, w2, _ = backbone.widths
        self.exit1 = ExitBranch(w1, 32, 2)
        self.exit2 = ExitBranch(w2, 64, 1)
        self.head = nn.Linear(backbone.fc.in_features, backbone.fc.out_features)
        self.head.load_state_dict(backbone.fc.state_dict())

    def branch_parameters(self):
        return (list(self.exit1.parameters()) + list(self.exit2.parameters()) +
                list(self.head.parameters()))

    def forward(self, x):
        p1, p2, f = self.backbone.stem(x)
        return self.head(f), self.exit1(p1), self.exit2(p2)


class DistortionDetector(nn.Module):
    """pristine / blur / noise. A fixed (not trained) first conv gives the image and a
    Laplacian high-pass in both signs; a small CNN learns from those."""

    def __init__(self):
        super().__init__()
        self.highpass = nn.Conv2d(1, 3, 3, 1, 1, bias=False)
        w = torch.zeros(3, 1, 3, 3)
        w[0, 0, 1, 1] = 1.0
        lap = torch.tensor([[0., -1., 0.], [-1., 4., -1.], [0., -1., 0.]])
        w[1, 0] = lap
        w[2, 0] = -lap
        self.highpass.weight.data.copy_(w)
        self.highpass.weight.requires_grad_(False)
        self.body = nn.Sequential(cbr(3, 16), nn.MaxPool2d(2), cbr(16, 32), nn.MaxPool2d(2),
                                  cbr(32, 32))
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, 3)

    def forward(self, x):
        x = F.relu(self.highpass(x))
        return self.fc(torch.flatten(self.gap(self.body(x)), 1))


class FusionHead(nn.Module):
    def __init__(self, fin, hidden=128, classes=10):
        super().__init__()
        self.fc1 = nn.Linear(fin, hidden)
        self.fc2 = nn.Linear(hidden, classes)

    def forward(self, f):
        return self.fc2(F.relu(self.fc1(f)))


def count_params(m):
    return sum(p.numel() for p in m.parameters())


def count_macs(model, x):
    """MACs per sample for Conv2d and Linear layers (forward hooks), batch 1."""
    total = [0]

    def conv_hook(mod, inp, out):
        kh, kw = mod.kernel_size
        total[0] += out.numel() // out.shape[0] * (mod.in_channels // mod.groups) * kh * kw

    def lin_hook(mod, inp, out):
        total[0] += mod.in_features * mod.out_features

    hs = []
    for mod in model.modules():
        if isinstance(mod, nn.Conv2d):
            hs.append(mod.register_forward_hook(conv_hook))
        elif isinstance(mod, nn.Linear):
            hs.append(mod.register_forward_hook(lin_hook))
    was = model.training
    model.eval()
    with torch.no_grad():
        model(x[:1])
    model.train(was)
    for h in hs:
        h.remove()
    return total[0]


BASELINE = dict(widths=(32, 64, 128), k=(3, 3, 3), res=28)
VARIANTS = [
    dict(widths=(16, 28, 48), k=(3, 3, 3), res=28, seed=101),
    dict(widths=(12, 24, 64), k=(5, 3, 3), res=24, seed=202),
    dict(widths=(20, 24, 48), k=(3, 3, 3), res=20, seed=303),
    dict(widths=(12, 24, 64), k=(3, 3, 3), res=32, seed=404),
]
TINY = dict(widths=(12, 24, 40), k=(3, 3, 3), res=28)


class TinyCNN(nn.Module):
    """<= 20k params: conv16-pool-conv32-pool-conv32, GAP, FC."""

    def __init__(self, classes=10):
        super().__init__()
        self.body = nn.Sequential(cbr(1, 16), nn.MaxPool2d(2), cbr(16, 32), nn.MaxPool2d(2),
                                  cbr(32, 40))
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(40, classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.gap(self.body(x)), 1))
