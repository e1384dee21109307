"""Trains, calibrates, exports and verifies the whole Fashion-MNIST zoo.

    /usr/bin/python3 -m models.train.zoo --out models/zoo          (from the repository root)

Every decision (temperatures, thresholds, fusion, aggregation rule) uses the 5,000-image
validation split held out of the 60k training set; the 10k test set is only reported.
"""
import argparse
import copy
import io
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from . import data, nets, onnxio

T0 = time.time()
LOG_TIMES = {}


def log(msg):
    print("[%7.1fs] %s" % (time.time() - T0, msg), flush=True)


def seed_all(s):
    torch.manual_seed(s)
    np.random.seed(s % (2 ** 32))


DEV = torch.device("cuda" if torch.cuda.is_available() else "cpu")


# --------------------------------------------------------------------------- evaluation
@torch.no_grad()
def predict(model, x, bs=1000, fn=None):
    """Concatenated outputs of model (or fn(model, batch)) over x; tuples stay tuples."""
    model.eval()
    outs = None
    for i in range(0, len(x), bs):
        o = (fn or model)(x[i:i + bs].to(DEV))
        o = o if isinstance(o, (tuple, list)) else (o,)
        o = [t.float().cpu() for t in o]
        outs = [[t] for t in o] if outs is None else [a + [t] for a, t in zip(outs, o)]
    res = [torch.cat(a) for a in outs]
    return res if len(res) > 1 else res[0]


def accuracy(logits, y):
    return float((logits.argmax(1) == y).float().mean())


def fit_temperature(logits, y):
    """Scalar T minimising the validation NLL of softmax(logits / T) (log-grid, then refine)."""
    best = (float("inf"), 1.0)
    grid = np.exp(np.linspace(math.log(0.2), math.log(10.0), 200))
    for t in grid:
        nll = float(F.cross_entropy(logits / float(t), y))
        best = min(best, (nll, float(t)))
    lo, hi = best[1] / 1.05, best[1] * 1.05
    for t in np.linspace(lo, hi, 101):
        nll = float(F.cross_entropy(logits / float(t), y))
        best = min(best, (nll, float(t)))
    return round(best[1], 4), best[0]


def ece(probs, y, bins=15):
    conf, pred = probs.max(1)
    acc = (pred == y).float()
    e = 0.0
    for b in range(bins):
        m = (conf > b / bins) & (conf <= (b + 1) / bins)
        if m.any():
            e += float(m.float().mean()) * abs(float(acc[m].mean()) - float(conf[m].mean()))
    return e


# --------------------------------------------------------------------------- training
def smoothed_nll(logp, y, eps=0.1):
    nll = -logp.gather(1, y[:, None]).squeeze(1)
    return ((1 - eps) * nll - eps * logp.mean(1)).mean()


def make_opt(params, lr, epochs, steps, wd):
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=wd)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps,
                                                pct_start=0.25, div_factor=20,
                                                final_div_factor=200)
    return opt, sched


def batches(n, bs, gen):
    perm = torch.randperm(n, generator=gen)
    for i in range(0, n - bs + 1, bs):  # drop the last partial batch (BN statistics)
        yield perm[i:i + bs]


def train_models(models, X, Y, epochs, seed, cfg, name, ens_weight=0.0, val=None,
                 fusion=None, fusion_weight=0.0):
    """Trains one model (len 1) or several jointly. With ens_weight > 0 the loss is
    (1 - w) * mean_i CE(model_i) + w * NLL(log mean_i softmax(model_i)) where the mean runs over
    a random subset (all, or all but one) so that the ensemble stays good when one is missing.
    Each model draws its own augmentation of the batch. With a `fusion` head (joint training of
    the feature-fusion rule) fusion_weight of the loss is the head's CE on the concatenated
    features, where each sample loses one random variant's features with probability 1/2, and
    the other terms share the rest in the same proportion."""
    gen = torch.Generator().manual_seed(seed)
    params = [p for m in models + ([fusion] if fusion is not None else [])
              for p in m.parameters() if p.requires_grad]
    steps = len(X) // cfg.batch
    opt, sched = make_opt(params, cfg.lr, epochs, steps, cfg.wd)
    k = len(models)
    for ep in range(epochs):
        t = time.time()
        for m in models + ([fusion] if fusion is not None else []):
            m.train()
        tot, cnt = 0.0, 0
        for idx in batches(len(X), cfg.batch, gen):
            xb, yb = X[idx], Y[idx].to(DEV)
            logps, feats = [], []
            for m in models:
                xa = data.augment(xb, gen).to(DEV)
                out = m(xa)
                if getattr(m, "features_out", False):
                    out, f = out
                    feats.append(f)
                logps.append(F.log_softmax(out, 1))
            loss = sum(smoothed_nll(lp, yb) for lp in logps) / k
            if ens_weight > 0 and k > 1:
                keep = list(range(k))
                if torch.rand(1, generator=gen).item() < 0.5:
                    keep.pop(int(torch.randint(0, k, (1,), generator=gen)))
                stack = torch.stack([logps[i] for i in keep])
                ens = torch.logsumexp(stack, 0) - math.log(len(keep))
                loss = (1 - ens_weight) * loss + ens_weight * smoothed_nll(ens, yb)
            if fusion is not None:
                n = len(idx)
                drop = (torch.rand(n, generator=gen) < 0.5).to(DEV)
                which = torch.randint(0, k, (n,), generator=gen).to(DEV)
                parts = [f * (~(drop & (which == i))).float()[:, None]
                         for i, f in enumerate(feats)]
                fl = F.log_softmax(fusion(torch.cat(parts, 1)), 1)
                loss = (1 - fusion_weight) * loss + fusion_weight * smoothed_nll(fl, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            tot += float(loss) * len(idx)
            cnt += len(idx)
        msg = "%s epoch %d/%d loss %.4f %.1fs" % (name, ep + 1, epochs, tot / cnt, time.time() - t)
        if val is not None and (ep == epochs - 1 or cfg.val_every):
            accs = []
            for m in models:
                o = predict(m, val[0])
                accs.append(accuracy(o[0] if isinstance(o, list) else o, val[1]))
            msg += " val " + " ".join("%.4f" % a for a in accs)
            if fusion is not None:
                fv = torch.cat([predict(m, val[0])[1] for m in models], 1)
                msg += " fusion %.4f" % accuracy(predict(fusion, fv), val[1])
        log(msg)
    for m in models + ([fusion] if fusion is not None else []):
        m.eval()


def train_exits(net, X, Y, epochs, seed, cfg, name, kind=0, train_head=False, val=None):
    """Backbone frozen (eval mode, no grad); trains exit1/exit2 (and the final head for the
    experts) on images with distortion `kind` (0 pristine, 1 blur, 2 noise)."""
    gen = torch.Generator().manual_seed(seed)
    for p in net.backbone.parameters():
        p.requires_grad_(False)
    params = list(net.exit1.parameters()) + list(net.exit2.parameters())
    if train_head:
        params += list(net.head.parameters())
    steps = len(X) // cfg.batch
    opt, sched = make_opt(params, cfg.lr, epochs, steps, cfg.wd)
    for ep in range(epochs):
        t = time.time()
        net.train()
        net.backbone.eval()
        tot, cnt = 0.0, 0
        for idx in batches(len(X), cfg.batch, gen):
            xb, yb = X[idx], Y[idx].to(DEV)
            xa = data.augment(xb, gen)
            if kind:
                xa = data.distort(xa, kind, gen)
            xa = xa.to(DEV)
            with torch.no_grad():
                p1, p2, f = net.backbone.stem(xa)
            loss = (smoothed_nll(F.log_softmax(net.exit1(p1), 1), yb) +
                    smoothed_nll(F.log_softmax(net.exit2(p2), 1), yb))
            if train_head:
                loss = loss + smoothed_nll(F.log_softmax(net.head(f), 1), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            tot += float(loss) * len(idx)
            cnt += len(idx)
        log("%s epoch %d/%d loss %.4f %.1fs" % (name, ep + 1, epochs, tot / cnt, time.time() - t))
    net.eval()


def train_detector(det, X, epochs, seed, cfg, val_x):
    gen = torch.Generator().manual_seed(seed)
    params = [p for p in det.parameters() if p.requires_grad]
    steps = len(X) // cfg.batch
    opt, sched = make_opt(params, cfg.lr, epochs, steps, cfg.wd)
    for ep in range(epochs):
        t = time.time()
        det.train()
        for idx in batches(len(X), cfg.batch, gen):
            xb = data.augment(X[idx], gen)
            kinds = torch.randint(0, 3, (len(idx),), generator=gen)
            xb = data.distort_mixed(xb, kinds, gen).to(DEV)
            loss = F.cross_entropy(det(xb), kinds.to(DEV))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        log("detector epoch %d/%d loss %.4f %.1fs" % (ep + 1, epochs, float(loss), time.time() - t))
    det.eval()


# --------------------------------------------------------------------------- quantization
def qparams(feats, bits=8, pct=99.99):
    """Affine int-`bits` parameters for non-negative features (zero exact): the range is
    [0, the pct-th percentile of the training features]. int8 convention of fleet_models:
    q = clamp(round(x / scale) + zp, -128, 127)."""
    hi = float(np.percentile(feats.numpy().reshape(-1), pct))
    lo = 0.0
    levels = 2 ** bits - 1
    scale = (hi - lo) / levels if hi > lo else 1.0
    zp = int(round(-(2 ** (bits - 1)) - lo / scale))
    return scale, zp


def fake_quant(f, scale, zp, bits=8):
    qmin, qmax = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    q = torch.clamp(torch.round(f / scale) + zp, qmin, qmax)
    return scale * (q - zp)


def quantize_all(feats, qps, bits):
    """feats: list of [N,F_i]; qps: 8-bit (scale, zp) per variant -> dequantized concat at
    `bits` (the same [0, hi] range split into 2^bits levels)."""
    out = []
    for f, (s8, _) in zip(feats, qps):
        hi = s8 * 255.0
        s = hi / (2 ** bits - 1)
        zp = -(2 ** (bits - 1))
        out.append(fake_quant(f, s, zp, bits))
    return torch.cat(out, 1)


def mask_missing(fcat, dims, missing):
    out = fcat.clone()
    off = 0
    for i, d in enumerate(dims):
        if i in missing:
            out[:, off:off + d] = 0.0
        off += d
    return out


def train_fusion(head, Ftr, Ytr, dims, epochs, seed, cfg, Fval, Yval):
    """Ftr: dequantized 8-bit features [N, sum F]. Random variant dropout: each sample, with
    probability 1/2, loses one random variant (its features set to 0)."""
    gen = torch.Generator().manual_seed(seed)
    steps = len(Ftr) // 256
    opt, sched = make_opt(head.parameters(), 2e-3, epochs, steps, 1e-2)
    offs = np.cumsum([0] + list(dims))
    k = len(dims)
    for ep in range(epochs):
        head.train()
        for idx in batches(len(Ftr), 256, gen):
            fb = Ftr[idx].clone()
            drop = torch.rand(len(idx), generator=gen) < 0.5
            which = torch.randint(0, k, (len(idx),), generator=gen)
            for i in range(k):
                m = drop & (which == i)
                fb[m, offs[i]:offs[i + 1]] = 0.0
            loss = smoothed_nll(F.log_softmax(head(fb.to(DEV)), 1), Ytr[idx].to(DEV))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    head.eval()
    acc = accuracy(predict(head, Fval), Yval)
    log("fusion head: %d epochs, val %.4f" % (epochs, acc))
    return acc


# --------------------------------------------------------------------------- ensemble rules
def rule_probs(rule, logits_list, temps, weights, present):
    """Python mirror of fleet_ensemble_decide (models/src/ensemble.c) over the present variants.
    Returns a [N, C] score matrix whose argmax is the decision."""
    probs = [F.softmax(logits_list[i] / temps[i], 1) for i in present]
    if rule == "mean-softmax":
        return sum(probs) / len(probs)
    if rule == "acc-weighted":
        w = [weights["acc"][i] ** 8 for i in present]
        return sum(wi * p for wi, p in zip(w, probs)) / sum(w)
    if rule == "vp-topk":
        s = 0
        for i, p in zip(present, probs):
            v, ix = p.topk(2, 1)
            v = v / v.sum(1, keepdim=True)
            s = s + weights["vp"][i] * torch.zeros_like(p).scatter_(1, ix, v)
        return F.softmax(s, 1)
    if rule == "majority":
        votes = sum(F.one_hot(p.argmax(1), p.shape[1]).float() for p in probs)
        ssum = sum(probs)
        # ties: larger summed probability, then the smaller class
        return votes * 10.0 + ssum / (len(probs) + 1)
    raise ValueError(rule)


RULES = ["mean-softmax", "vp-topk", "acc-weighted", "majority"]


def rule_table(logits_list, temps, weights, y):
    k = len(logits_list)
    res = {}
    for r in RULES:
        full = accuracy(rule_probs(r, logits_list, temps, weights, list(range(k))), y)
        miss = [accuracy(rule_probs(r, logits_list, temps, weights,
                                    [j for j in range(k) if j != i]), y) for i in range(k)]
        res[r] = {"all": full, "missing_one": miss, "worst_missing": min(miss)}
    return res


# --------------------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="models/zoo")
    ap.add_argument("--work", default="models/train/work", help="checkpoints (for --resume)")
    ap.add_argument("--resume", action="store_true", help="reuse checkpoints in --work")
    ap.add_argument("--smoke", action="store_true", help="2k images, 1 epoch: pipeline check")
    ap.add_argument("--epochs", type=int, default=18, help="baseline, variants, tiny")
    ap.add_argument("--tiny-epochs", type=int, default=None)
    ap.add_argument("--exit-epochs", type=int, default=3)
    ap.add_argument("--expert-epochs", type=int, default=3)
    ap.add_argument("--det-epochs", type=int, default=2)
    ap.add_argument("--fusion-epochs", type=int, default=30)
    ap.add_argument("--ens-weight", type=float, default=0.5)
    ap.add_argument("--fusion-weight", type=float, default=0.5,
                    help="share of the joint variant loss on the fusion head")
    ap.add_argument("--stop-after", default="", choices=["", "fusion"],
                    help="end after the variant and fusion stages (experiments)")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=4e-3)
    ap.add_argument("--wd", type=float, default=0.02)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--val-every", action="store_true")
    ap.add_argument("--only", default="", help="comma list of stages to (re)train")
    cfg = ap.parse_args()
    torch.set_num_threads(cfg.threads)
    seed_all(0)
    os.makedirs(cfg.out, exist_ok=True)
    os.makedirs(cfg.work, exist_ok=True)
    if cfg.tiny_epochs is None:
        cfg.tiny_epochs = cfg.epochs

    (Xtr, Ytr), (Xva, Yva), (Xte, Yte) = data.splits()
    if cfg.smoke:
        Xtr, Ytr = Xtr[:2000], Ytr[:2000]
        Xva, Yva = Xva[:1000], Yva[:1000]
        for a in ("epochs", "tiny_epochs", "exit_epochs", "expert_epochs", "det_epochs"):
            setattr(cfg, a, 1)
        cfg.fusion_epochs = 2
    log("device %s, threads %d, train %d, val %d, test %d" %
        (DEV, torch.get_num_threads(), len(Xtr), len(Xva), len(Xte)))
    val = (Xva, Yva)
    labels = ",".join(data.LABELS)
    x1 = torch.zeros(1, 1, 28, 28)
    stage_time = {}
    summary = []
    manifest = []

    def ckpt(name):
        return os.path.join(cfg.work, name + ".pt")

    def have(name):
        return cfg.resume and os.path.exists(ckpt(name)) and (
            not cfg.only or name.split("-")[0] not in cfg.only.split(","))

    def train_or_load(name, model, epochs, seed):
        """One model with the common recipe, or its checkpoint; in eval mode."""
        if have(name):
            model.load_state_dict(torch.load(ckpt(name)))
            log("%s: loaded checkpoint" % name)
        else:
            train_models([model], Xtr, Ytr, epochs, seed, cfg, name, val=val)
            torch.save(model.state_dict(), ckpt(name))
        model.eval()
        return model

    def common(role, val_acc, temp, res, width, params, macs, extra):
        m = {"family": "fleetinfer-fashion-mnist-zoo", "role": role, "labels": labels,
             "classes": "10", "output_kind": "logits", "input": "input float32 [N,1,28,28] "
             "pixel/255", "val_accuracy": "%.4f" % val_acc, "temperature": "%.4f" % temp,
             "input_resolution": str(res), "width": str(width), "params": str(params),
             "macs": str(macs), "variants": "4", "dataset": "fashion-mnist",
             "validation": "5000 of the 60k training images, split seed %d" % data.SPLIT_SEED,
             "trainer": "models/train/zoo.py (torch %s)" % torch.__version__}
        m.update(extra)
        return m

    def finish(fname, model, outputs, meta, verify_model=None, role="", val_acc=0.0,
               test_acc=None, macs=0, secs=0.0):
        path = os.path.join(cfg.out, fname)
        onnxio.export(model, path, outputs, meta)
        text = onnxio.info(path)
        info = onnxio.parse_info(text)
        xv = Xva[:64]
        err = onnxio.verify(path, verify_model or model, xv)
        log("%s: exported, runtime max |diff| %.2e, %s params (runtime count)" %
            (fname, err, info.get("params")))
        manifest.append({"file": fname, "role": role, "params": info.get("params"),
                         "macs": info.get("macs", macs), "val_accuracy": round(val_acc, 4),
                         "test_accuracy_python": None if test_acc is None else round(test_acc, 4),
                         "outputs": outputs, "runtime_max_abs_diff": err,
                         "bytes": os.path.getsize(path), "sha256": onnxio.sha256(path)})
        summary.append((fname, role, info.get("params"), info.get("macs", macs), val_acc,
                        test_acc, secs))
        return text

    # ------------------------------------------------------------------ variants (joint)
    t = time.time()
    variants = []
    for i, v in enumerate(nets.VARIANTS):
        seed_all(v["seed"])
        variants.append(nets.PlainCNN(widths=v["widths"], k=v["k"], res=v["res"],
                                      features_out=True).to(DEV))
    seed_all(55)
    joint_head = nets.FusionHead(sum(v["widths"][2] for v in nets.VARIANTS)).to(DEV)
    names = ["variant-%d" % i for i in range(4)] + ["variant-fusion"]
    if all(have(n) for n in names):
        for n, m in zip(names, variants + [joint_head]):
            m.load_state_dict(torch.load(ckpt(n)))
        log("variants: loaded checkpoints")
    else:
        train_models(variants, Xtr, Ytr, cfg.epochs, 11, cfg, "variants(joint)",
                     ens_weight=cfg.ens_weight, val=val, fusion=joint_head,
                     fusion_weight=cfg.fusion_weight)
        for n, m in zip(names, variants + [joint_head]):
            torch.save(m.state_dict(), ckpt(n))
    stage_time["variants"] = time.time() - t
    v_val = [predict(m, Xva) for m in variants]     # [logits, features]
    v_tr = [predict(m, Xtr) for m in variants]
    v_te = [predict(m, Xte) for m in variants]
    v_acc = [accuracy(o[0], Yva) for o in v_val]
    v_T = [fit_temperature(o[0], Yva)[0] for o in v_val]
    max_res = max(v["res"] for v in nets.VARIANTS)
    v_width = [v["widths"][2] / nets.BASELINE["widths"][2] for v in nets.VARIANTS]
    weights = {"acc": v_acc,
               "vp": [(v["res"] / max_res) * (w / 0.35) ** 2
                      for v, w in zip(nets.VARIANTS, v_width)]}
    val_rules = rule_table([o[0] for o in v_val], v_T, weights, Yva)
    test_rules = rule_table([o[0] for o in v_te], v_T, weights, Yte)
    for r in RULES:
        log("ensemble %-13s val %.4f (worst missing-one %.4f) | test(py) %.4f (%.4f)" %
            (r, val_rules[r]["all"], val_rules[r]["worst_missing"], test_rules[r]["all"],
             test_rules[r]["worst_missing"]))

    # ------------------------------------------------------------------ fusion head
    t = time.time()
    dims = [o[1].shape[1] for o in v_val]
    qps = [qparams(o[1]) for o in v_tr]
    # training inputs: the clean training images plus one augmented pass (the variants are
    # fitted to the clean ones; the augmented pass shows the head less over-confident features)
    gen = torch.Generator().manual_seed(99)
    Xaug = data.augment(Xtr, gen)
    v_aug = [predict(m, Xaug)[1] for m in variants]
    Ftr = torch.cat([quantize_all([o[1] for o in v_tr], qps, 8),
                     quantize_all(v_aug, qps, 8)])
    Yf = torch.cat([Ytr, Ytr])
    Fva = {b: quantize_all([o[1] for o in v_val], qps, b) for b in (8, 4, 2)}
    Fte = {b: quantize_all([o[1] for o in v_te], qps, b) for b in (8, 4, 2)}
    # the head trained jointly with the variants (on float features) is the starting point;
    # fine-tuning on the dequantized int8 features is kept only if validation says so
    head = copy.deepcopy(joint_head)
    joint_acc = accuracy(predict(joint_head, Fva[8]), Yva)
    log("fusion head (joint, float-trained) on 8-bit val features: %.4f" % joint_acc)
    if have("fusion"):
        head.load_state_dict(torch.load(ckpt("fusion")))
    else:
        tuned_acc = train_fusion(head, Ftr, Yf, dims, cfg.fusion_epochs, 55, cfg, Fva[8], Yva)
        if tuned_acc < joint_acc:
            head.load_state_dict(joint_head.state_dict())
            log("fusion head: fine-tuning lost on validation; the joint head is kept")
        torch.save(head.state_dict(), ckpt("fusion"))
    head.eval()
    fusion_res = {}
    for split, FF, yy in (("val", Fva, Yva), ("test", Fte, Yte)):
        for b in (8, 4, 2):
            full = accuracy(predict(head, FF[b]), yy)
            miss = [accuracy(predict(head, mask_missing(FF[b], dims, {i})), yy)
                    for i in range(4)]
            fusion_res[(split, b)] = {"all": full, "missing_one": miss,
                                      "worst_missing": min(miss)}
            log("fusion %s %d-bit: %.4f (worst missing-one %.4f)" % (split, b, full, min(miss)))
    fus_T, _ = fit_temperature(predict(head, Fva[8]), Yva)
    stage_time["fusion"] = time.time() - t

    if cfg.stop_after == "fusion":
        log("stopping after the fusion stage (--stop-after)")
        return

    # ------------------------------------------------------------------ baseline
    t = time.time()
    seed_all(7)
    base = train_or_load("baseline", nets.PlainCNN(**nets.BASELINE).to(DEV), cfg.epochs, 7)
    stage_time["baseline"] = time.time() - t
    bl_val = predict(base, Xva)
    bl_acc = accuracy(bl_val, Yva)
    bl_T, _ = fit_temperature(bl_val, Yva)
    bl_test = accuracy(predict(base, Xte), Yte)
    base_params = nets.count_params(base)
    base_macs = nets.count_macs(base.cpu(), x1)
    base.to(DEV)
    log("baseline: val %.4f test(py) %.4f T %.3f params %d MACs %d (%.0fs)" %
        (bl_acc, bl_test, bl_T, base_params, base_macs, stage_time["baseline"]))

    # ------------------------------------------------------------------ tiny
    t = time.time()
    seed_all(21)
    tiny = train_or_load("tiny", nets.TinyCNN().to(DEV), cfg.tiny_epochs, 21)
    stage_time["tiny"] = time.time() - t
    ti_val = predict(tiny, Xva)
    ti_acc = accuracy(ti_val, Yva)
    ti_T, _ = fit_temperature(ti_val, Yva)
    # threshold: the lowest one on the temperature-scaled max softmax at which the
    # hierarchical system (tiny keeps, baseline gets the rest) reaches the baseline's val accuracy
    conf = F.softmax(ti_val / ti_T, 1).max(1).values
    tcor = ti_val.argmax(1) == Yva
    bcor = bl_val.argmax(1) == Yva
    hi_curve = []
    for th in np.round(np.arange(0.50, 0.996, 0.01), 2):
        keep = conf >= float(th)
        sysacc = float(torch.where(keep, tcor, bcor).float().mean())
        hi_curve.append((float(th), float(keep.float().mean()), sysacc))
    ok = [c for c in hi_curve if c[2] >= bl_acc - 0.001]
    ti_th = ok[0] if ok else hi_curve[-1]
    log("tiny: val %.4f T %.3f, threshold %.2f keeps %.3f locally, system val %.4f" %
        (ti_acc, ti_T, ti_th[0], ti_th[1], ti_th[2]))

    # ------------------------------------------------------------------ early exits
    t = time.time()
    seed_all(31)
    ee = nets.EarlyExitNet(copy.deepcopy(base)).to(DEV)
    if have("early-exit"):
        ee.load_state_dict(torch.load(ckpt("early-exit")))
    else:
        train_exits(ee, Xtr, Ytr, cfg.exit_epochs, 31, cfg, "exits(pristine)", kind=0)
        torch.save(ee.state_dict(), ckpt("early-exit"))
    experts = {}
    for kind, nm in ((1, "blur"), (2, "noise")):
        seed_all(31 + kind)
        ex = copy.deepcopy(ee)
        if have("expert-" + nm):
            ex.load_state_dict(torch.load(ckpt("expert-" + nm)))
        else:
            train_exits(ex, Xtr, Ytr, cfg.expert_epochs, 31 + kind, cfg, "exits(%s)" % nm,
                        kind=kind, train_head=True)
            torch.save(ex.state_dict(), ckpt("expert-" + nm))
        experts[nm] = ex
    stage_time["early-exit"] = time.time() - t

    # distorted validation / test sets (fixed seeds)
    def distorted(x, kind, seed):
        return data.distort(x, kind, torch.Generator().manual_seed(seed)) if kind else x

    dsets = {"pristine": 0, "blur": 1, "noise": 2}
    val_d = {k: distorted(Xva, v, 1000 + v) for k, v in dsets.items()}
    test_d = {k: distorted(Xte, v, 2000 + v) for k, v in dsets.items()}

    def exit_report(net, nm, on):
        outs_v = predict(net, val_d[on])
        temps = [fit_temperature(o, Yva)[0] for o in outs_v]
        accs = [accuracy(o, Yva) for o in outs_v]
        # p_tar rule: exit1 -> exit2 -> final, temperature-scaled max softmax >= 0.9
        def rule(outs, y, p=0.9):
            order = [1, 2, 0]
            done = torch.zeros(len(y), dtype=torch.bool)
            pred = torch.zeros(len(y), dtype=torch.long)
            rates = []
            for j in order:
                pr = F.softmax(outs[j] / temps[j], 1)
                c, a = pr.max(1)
                take = ~done & ((c >= p) if j != 0 else torch.ones_like(done))
                pred[take] = a[take]
                rates.append(float(take.float().mean()))
                done |= take
            return float((pred == y).float().mean()), rates
        vacc, vrates = rule(outs_v, Yva)
        tacc, _ = rule(predict(net, test_d[on]), Yte)
        log("%s on %s val: final %.4f exit1 %.4f exit2 %.4f; T %s; p_tar 0.9 -> acc %.4f, exit "
            "rates e1/e2/final %s; test(py) %.4f" % (nm, on, accs[0], accs[1], accs[2], temps,
                                                     vacc, ["%.3f" % r for r in vrates], tacc))
        return temps, accs, vacc, vrates, tacc

    ee_rep = exit_report(ee, "early-exit", "pristine")
    ex_rep = {nm: exit_report(experts[nm], "expert-" + nm, nm) for nm in experts}
    ex_cross = {nm: exit_report(ee, "early-exit", nm) for nm in experts}

    # ------------------------------------------------------------------ distortion detector
    t = time.time()
    seed_all(41)
    det = nets.DistortionDetector().to(DEV)
    if have("detector"):
        det.load_state_dict(torch.load(ckpt("detector")))
    else:
        train_detector(det, Xtr, cfg.det_epochs, 41, cfg, Xva)
        torch.save(det.state_dict(), ckpt("detector"))
    det.eval()
    stage_time["detector"] = time.time() - t
    kinds_v = torch.randint(0, 3, (len(Xva),), generator=torch.Generator().manual_seed(43))
    dv = data.distort_mixed(Xva, kinds_v, torch.Generator().manual_seed(44))
    det_acc = accuracy(predict(det, dv), kinds_v)
    kinds_t = torch.randint(0, 3, (len(Xte),), generator=torch.Generator().manual_seed(45))
    dt = data.distort_mixed(Xte, kinds_t, torch.Generator().manual_seed(46))
    det_test = accuracy(predict(det, dt), kinds_t)
    det_T, _ = fit_temperature(predict(det, dv), kinds_v)
    log("detector: val %.4f test(py) %.4f" % (det_acc, det_test))

    # ------------------------------------------------------------------ export
    base.cpu()
    for m in variants + [tiny, ee, det, head] + list(experts.values()):
        m.cpu()
    gap_name = "/gap/GlobalAveragePool_output_0"
    cut = ["/pool1/MaxPool_output_0", "/pool2/MaxPool_output_0", gap_name]
    finish("baseline.onnx", base, ["logits"], common(
        "baseline", bl_acc, bl_T, 28, 1.0, base_params, base_macs, {
            "variant": "", "architecture": "conv32-32-pool-64-64-pool-128-GAP-FC, BN+ReLU",
            "cut_tensors": json.dumps(cut),
            "cut_note": "natural bottleneck (smaller than the 3136-byte input): %s; "
                        "pool2 (64x7x7) is the mid-network cut: 12544 B float32, 3136 B int8"
                        % gap_name,
            "epochs": str(cfg.epochs)}),
        role="baseline", val_acc=bl_acc, test_acc=bl_test, macs=base_macs,
        secs=stage_time["baseline"])

    class FeatFirst(nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, x):
            lo, f = self.m(x)
            return f, lo

    tot_vparams = 0
    for i, (m, v) in enumerate(zip(variants, nets.VARIANTS)):
        p, mc = nets.count_params(m), nets.count_macs(m, x1)
        tot_vparams += p
        s, zp = qps[i]
        meta = common("variant", v_acc[i], v_T[i], v["res"], "%.4f" % v_width[i], p, mc, {
            "variant": str(i), "architecture": "resize %d, conv%d-%d-pool-%d-%d-pool-%d-GAP-FC, "
            "kernels %s" % (v["res"], v["widths"][0], v["widths"][0], v["widths"][1],
                            v["widths"][1], v["widths"][2], list(v["k"])),
            "feature_output": "features", "feature_dim": str(dims[i]),
            "feature_scale": repr(float(s)), "feature_zero_point": str(zp),
            "feature_quantization": "int8 affine, q = clamp(round(x/scale)+zero_point,-128,127),"
                                    " range [0, p99.99 of training features]",
            "feature_offset": str(int(sum(dims[:i]))),
            "vp_weight": "%.4f" % weights["vp"][i],
            "width_note": "width = final feature channels / baseline's 128",
            "seed": str(v["seed"]), "epochs": str(cfg.epochs),
            "training": "joint with the other variants: 0.5 mean individual CE + 0.5 NLL of "
                        "the mean softmax over all or all-but-one variants; own augmentation "
                        "draw"})
        finish("variant-%d.onnx" % i, m, ["logits", "features"], meta, role="variant",
               val_acc=v_acc[i], test_acc=accuracy(v_te[i][0], Yte), macs=mc,
               secs=stage_time["variants"] / 4)
        # the features output, checked through a copy that lists it first
        tmp = os.path.join(cfg.work, "variant-%d-features-first.onnx" % i)
        fm = FeatFirst(m)
        onnxio.export(fm, tmp, ["features", "logits"], {})
        log("variant-%d features: runtime max |diff| %.2e" %
            (i, onnxio.verify(tmp, fm, Xva[:64])))

    best_rule = max(RULES, key=lambda r: val_rules[r]["all"])
    fus_meta = common("fusion", fusion_res[("val", 8)]["all"], fus_T, 0, "", nets.count_params(
        head), nets.count_macs(head, torch.zeros(1, sum(dims))), {
            "variant": "", "input_name": "features",
            "input": "features float32 [N,%d]: the variants' dequantized int8 features "
                     "concatenated in variant order" % sum(dims),
            "feature_dims": json.dumps(dims),
            "feature_offsets": json.dumps([int(x) for x in np.cumsum([0] + dims[:-1])]),
            "feature_qparams": json.dumps([{"scale": float(s), "zero_point": zp}
                                           for s, zp in qps]),
            "missing_variant": "zeros: a missing variant's features are all 0.0 (int8 value "
                               "= its zero_point); trained with random one-variant dropout",
            "val_accuracy_missing_one": json.dumps(
                [round(a, 4) for a in fusion_res[("val", 8)]["missing_one"]]),
            "val_accuracy_bits": json.dumps({b: round(fusion_res[("val", b)]["all"], 4)
                                             for b in (8, 4, 2)}),
            "architecture": "FC %d-128, ReLU, FC 128-10" % sum(dims),
            "val_accuracy_rules": json.dumps({r: round(val_rules[r]["all"], 4) for r in RULES}),
            "best_topk_rule_val": best_rule})
    # fusion has input "features": export by hand (different input shape)
    path = os.path.join(cfg.out, "fusion.onnx")
    head.eval()
    buf = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(head, torch.zeros(1, sum(dims)), buf, input_names=["features"],
                          output_names=["logits"],
                          dynamic_axes={"features": {0: "N"}, "logits": {0: "N"}},
                          opset_version=13, do_constant_folding=True)
    with open(path, "wb") as f:
        f.write(buf.getvalue() + onnxio.metadata_bytes(fus_meta))
    err = onnxio.verify(path, head, Fva[8][:64])
    info = onnxio.parse_info(onnxio.info(path))
    log("fusion.onnx: exported, runtime max |diff| %.2e" % err)
    manifest.append({"file": "fusion.onnx", "role": "fusion", "params": info.get("params"),
                     "macs": info.get("macs"),
                     "val_accuracy": round(fusion_res[("val", 8)]["all"], 4),
                     "test_accuracy_python": round(fusion_res[("test", 8)]["all"], 4),
                     "outputs": ["logits"], "runtime_max_abs_diff": err,
                     "bytes": os.path.getsize(path), "sha256": onnxio.sha256(path)})
    summary.append(("fusion.onnx", "fusion", info.get("params"), info.get("macs"),
                    fusion_res[("val", 8)]["all"], fusion_res[("test", 8)]["all"],
                    stage_time["fusion"]))

    tp, tm = nets.count_params(tiny), nets.count_macs(tiny, x1)
    finish("tiny.onnx", tiny, ["logits"], common(
        "tiny", ti_acc, ti_T, 28, "", tp, tm, {
            "variant": "", "architecture": "conv16-pool-32-pool-40-GAP-FC, BN+ReLU",
            "confidence_threshold": "%.2f" % ti_th[0],
            "threshold_rule": "offload when max softmax(logits/temperature) < threshold; the "
                              "lowest threshold at which tiny+baseline reaches the baseline's "
                              "val accuracy",
            "threshold_val": json.dumps({"local_fraction": round(ti_th[1], 4),
                                         "system_accuracy": round(ti_th[2], 4)}),
            "threshold_curve_val": json.dumps([[c[0], round(c[1], 4), round(c[2], 4)]
                                               for c in hi_curve[::5]]),
            "epochs": str(cfg.tiny_epochs)}),
        role="tiny", val_acc=ti_acc, test_acc=accuracy(predict(tiny, Xte), Yte), macs=tm,
        secs=stage_time["tiny"])

    def ee_meta(role, rep, kind, extra):
        temps, accs, vacc, vrates, tacc = rep
        p, mc = nets.count_params(ee), nets.count_macs(ee, x1)
        m = common(role, accs[0], temps[0], 28, 1.0, p, mc, {
            "variant": "", "outputs": json.dumps(["logits", "exit1", "exit2"]),
            "branches": json.dumps(["exit1", "exit2", "logits"]),
            "branch_order": "exit1 (after pool1) -> exit2 (after pool2) -> logits (final)",
            "branch_temperatures": json.dumps({"logits": temps[0], "exit1": temps[1],
                                               "exit2": temps[2]}),
            "branch_val_accuracy": json.dumps({"logits": round(accs[0], 4),
                                               "exit1": round(accs[1], 4),
                                               "exit2": round(accs[2], 4)}),
            "p_tar": "0.9",
            "exit_rule": "exit at the first branch whose temperature-scaled max softmax >= p_tar",
            "val_accuracy_at_p_tar": "%.4f" % vacc,
            "val_exit_rates_at_p_tar": json.dumps([round(r, 4) for r in vrates]),
            "distortion": kind,
            "backbone": "the baseline's (frozen, identical weights in every early-exit file)",
            "cut_tensors": json.dumps(["/backbone/pool1/MaxPool_output_0",
                                       "/backbone/pool2/MaxPool_output_0"]),
            "experts": "separate complete files: early-exit.onnx (pristine), "
                       "early-exit-blur.onnx, early-exit-noise.onnx; "
                       "choose with distortion-detector.onnx"})
        m.update(extra)
        return m

    finish("early-exit.onnx", ee, ["logits", "exit1", "exit2"],
           ee_meta("early-exit", ee_rep, "pristine", {
               "trained": "exit1/exit2 on pristine augmented images (%d epochs); final head = "
                          "the baseline's" % cfg.exit_epochs}),
           role="early-exit", val_acc=ee_rep[1][0], test_acc=ee_rep[4],
           secs=stage_time["early-exit"] / 3)
    for nm, kind in (("blur", 1), ("noise", 2)):
        levels = data.BLUR_SIGMAS if kind == 1 else data.NOISE_STDS
        finish("early-exit-%s.onnx" % nm, experts[nm], ["logits", "exit1", "exit2"],
               ee_meta("early-exit-expert", ex_rep[nm], nm, {
                   "distortion_levels": json.dumps(levels),
                   "distortion_note": "blur: Gaussian, kernel 4*sigma+1, reflect padding; "
                                      "noise: additive Gaussian std on [0,1] pixels, clipped",
                   "trained": "exit1, exit2 and the final FC fine-tuned on %s images (uniform "
                              "level), backbone frozen (%d epochs)" % (nm, cfg.expert_epochs),
                   "pristine_model_val_accuracy_on_this_distortion": json.dumps(
                       {"logits": round(ex_cross[nm][1][0], 4),
                        "exit1": round(ex_cross[nm][1][1], 4),
                        "exit2": round(ex_cross[nm][1][2], 4)})}),
               role="early-exit-expert", val_acc=ex_rep[nm][1][0], test_acc=ex_rep[nm][4],
               secs=stage_time["early-exit"] / 3)
    dp, dm = nets.count_params(det), nets.count_macs(det, x1)
    finish("distortion-detector.onnx", det, ["logits"], common(
        "distortion-detector", det_acc, det_T, 28, "", dp, dm, {
            "variant": "", "labels": "pristine,blur,noise", "classes": "3",
            "architecture": "fixed 3x3 conv (identity, +Laplacian, -Laplacian; not trained), "
                            "ReLU, conv16-pool-32-pool-32-GAP-FC (no FFT op in the runtime: a "
                            "fixed high-pass layer instead of the Fourier spectrum)",
            "distortion_levels": json.dumps({"blur_sigma": data.BLUR_SIGMAS,
                                             "noise_std": data.NOISE_STDS}),
            "experts": json.dumps({"pristine": "early-exit.onnx", "blur": "early-exit-blur.onnx",
                                   "noise": "early-exit-noise.onnx"}),
            "epochs": str(cfg.det_epochs)}),
        role="distortion-detector", val_acc=det_acc, test_acc=det_test, macs=dm,
        secs=stage_time["detector"])

    # ------------------------------------------------------------------ manifest + summary
    results = {
        "baseline": {"val": bl_acc, "test_python": bl_test, "params": base_params,
                     "macs": base_macs},
        "variants": [{"val": a, "params": nets.count_params(m), "macs": nets.count_macs(m, x1),
                      "temperature": tt} for a, m, tt in zip(v_acc, variants, v_T)],
        "variants_total_params": tot_vparams,
        "ensemble_val": val_rules, "ensemble_test_python": test_rules,
        "fusion": {"%s_%dbit" % k: v for k, v in fusion_res.items()},
        "tiny": {"val": ti_acc, "temperature": ti_T, "threshold": ti_th},
        "detector": {"val": det_acc, "test_python": det_test},
        "stage_seconds": stage_time, "total_seconds": time.time() - T0,
        "config": {k: v for k, v in vars(cfg).items()},
    }
    with open(os.path.join(cfg.out, "manifest.json"), "w") as f:
        json.dump({"models": manifest, "results": results}, f, indent=1, default=str)

    print()
    print("%-26s %-20s %9s %11s %8s %9s %8s" % ("file", "role", "params", "MACs", "val",
                                                 "test(py)", "train s"))
    for row in summary:
        print("%-26s %-20s %9s %11s %8.4f %9s %8.0f" % (
            row[0], row[1], row[2], row[3], row[4],
            "-" if row[5] is None else "%.4f" % row[5], row[6]))
    print()
    print("ensemble of the 4 variants (val; worst with one missing) | test(py):")
    for r in RULES:
        print("  %-16s %.4f (%.4f) | %.4f (%.4f)" % (
            r, val_rules[r]["all"], val_rules[r]["worst_missing"], test_rules[r]["all"],
            test_rules[r]["worst_missing"]))
    for b in (8, 4, 2):
        v, te = fusion_res[("val", b)], fusion_res[("test", b)]
        print("  fusion %d-bit     %.4f (%.4f) | %.4f (%.4f)" % (
            b, v["all"], v["worst_missing"], te["all"], te["worst_missing"]))
    print("  baseline         %.4f          | %.4f" % (bl_acc, bl_test))
    print("total %.0f s" % (time.time() - T0))


if __name__ == "__main__":
    main()
