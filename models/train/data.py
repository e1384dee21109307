"""Fashion-MNIST from the IDX files, the fixed validation split, augmentation and distortions."""
import gzip
import os
import struct

import numpy as np
import torch
import torch.nn.functional as F

DATA_DIR = "/usr/share/datasets/fashion-mnist"
LABELS = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
          "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
VAL_SIZE = 5000
SPLIT_SEED = 20260

BLUR_SIGMAS = [1, 2, 3, 4, 5]
NOISE_STDS = [0.05, 0.1, 0.15, 0.2, 0.3]


def read_idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError("%s: not an unsigned-byte IDX file" % path)
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError("%s: size mismatch" % path)
    return data.reshape(dims)


def load(split):
    """split: 'train' or 't10k'. Returns float32 [N,1,28,28] in [0,1] and int64 labels."""
    x = read_idx(os.path.join(DATA_DIR, "%s-images-idx3-ubyte.gz" % split))
    y = read_idx(os.path.join(DATA_DIR, "%s-labels-idx1-ubyte.gz" % split))
    x = torch.from_numpy(x.astype(np.float32) / 255.0).unsqueeze(1)
    return x.contiguous(), torch.from_numpy(y.astype(np.int64))


def splits():
    """(train_x, train_y), (val_x, val_y), (test_x, test_y); val = 5,000 of the 60k (fixed seed)."""
    x, y = load("train")
    perm = np.random.RandomState(SPLIT_SEED).permutation(len(y))
    vi, ti = np.sort(perm[:VAL_SIZE]), np.sort(perm[VAL_SIZE:])
    tx, ty = load("t10k")
    return (x[ti], y[ti]), (x[vi], y[vi]), (tx, ty)


def augment(x, gen, shift=2, flip=True):
    """Random shift (zero pad `shift`, random crop back) and horizontal flip, per sample."""
    n, _, h, w = x.shape
    if shift:
        xp = F.pad(x, (shift, shift, shift, shift))
        dy = torch.randint(0, 2 * shift + 1, (n,), generator=gen)
        dx = torch.randint(0, 2 * shift + 1, (n,), generator=gen)
        rows = (dy[:, None] + torch.arange(h)[None, :])  # n,h
        cols = (dx[:, None] + torch.arange(w)[None, :])  # n,w
        xp = torch.gather(xp, 2, rows[:, None, :, None].expand(n, 1, h, w + 2 * shift))
        x = torch.gather(xp, 3, cols[:, None, None, :].expand(n, 1, h, w))
    if flip:
        m = torch.rand(n, generator=gen) < 0.5
        x = torch.where(m[:, None, None, None], x.flip(3), x)
    return x


def gaussian_kernel(sigma):
    k = int(4 * sigma + 1)
    r = torch.arange(k, dtype=torch.float32) - (k - 1) / 2
    g = torch.exp(-(r * r) / (2.0 * sigma * sigma))
    return g / g.sum()


def blur(x, sigma):
    """Gaussian blur, kernel 4*sigma+1, separable, reflect padding (zero past the reflectable
    range for kernels wider than the image)."""
    g = gaussian_kernel(sigma)
    k = g.numel()
    p = k // 2
    h = x.shape[-1]
    if p < h:
        xp = F.pad(x, (p, p, p, p), mode="reflect")
    else:
        xp = F.pad(x, (p, p, p, p), mode="replicate")
    xp = F.conv2d(xp, g.view(1, 1, 1, k))
    xp = F.conv2d(xp, g.view(1, 1, k, 1))
    return xp


def noise(x, std, gen):
    return (x + std * torch.randn(x.shape, generator=gen)).clamp_(0.0, 1.0)


def distort(x, kind, gen):
    """kind 0 pristine, 1 blur (random sigma level per sample), 2 noise (random std level)."""
    if kind == 0:
        return x
    out = torch.empty_like(x)
    n = x.shape[0]
    levels = BLUR_SIGMAS if kind == 1 else NOISE_STDS
    lv = torch.randint(0, len(levels), (n,), generator=gen)
    for i, v in enumerate(levels):
        m = lv == i
        if m.any():
            out[m] = blur(x[m], v) if kind == 1 else noise(x[m], v, gen)
    return out


def distort_mixed(x, kinds, gen):
    """Per-sample distortion kind (tensor of 0/1/2)."""
    out = x.clone()
    for k in (1, 2):
        m = kinds == k
        if m.any():
            out[m] = distort(x[m], k, gen)
    return out
