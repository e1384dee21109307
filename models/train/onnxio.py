"""ONNX export, metadata_props appended to the serialized ModelProto, and verification with
our own runtime (fleetctl model run)."""
import hashlib
import io
import os
import re
import subprocess
import tempfile

import numpy as np
import torch

FLEETCTL = os.environ.get("FLEETCTL", "build/dashboard-cli/fleetctl")


def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _ld(tag, payload):
    return bytes([tag]) + _varint(len(payload)) + payload


def metadata_bytes(meta):
    """ModelProto.metadata_props (field 14, wire type 2: tag 0x72) entries, each a
    StringStringEntryProto {key = 1 (0x0a), value = 2 (0x12)}. Appending repeated fields to a
    serialized message is valid protobuf."""
    out = bytearray()
    for k, v in meta.items():
        entry = _ld(0x0A, str(k).encode("utf-8")) + _ld(0x12, str(v).encode("utf-8"))
        out += _ld(0x72, entry)
    return bytes(out)


def export(model, path, output_names, meta, input_name="input", shape=(1, 1, 28, 28)):
    model.eval()
    buf = io.BytesIO()
    dummy = torch.zeros(*shape)
    dyn = {input_name: {0: "N"}}
    for o in output_names:
        dyn[o] = {0: "N"}
    with torch.no_grad():
        torch.onnx.export(model, dummy, buf, input_names=[input_name], output_names=output_names,
                          dynamic_axes=dyn, opset_version=13, do_constant_folding=True)
    data = buf.getvalue() + metadata_bytes(meta)
    with open(path, "wb") as f:
        f.write(data)
    return hashlib.sha256(data).hexdigest()


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def info(path, extra=()):
    r = subprocess.run([FLEETCTL, "model", "info", path] + list(extra), capture_output=True,
                       text=True)
    if r.returncode != 0:
        raise RuntimeError("fleetctl model info %s failed: %s%s" % (path, r.stdout, r.stderr))
    return r.stdout


def run_runtime(path, x, extra=()):
    """Runs x (float32 array, ONNX layout) through fleetctl; returns the first output."""
    with tempfile.TemporaryDirectory() as d:
        xi, yo = os.path.join(d, "x.f32"), os.path.join(d, "y.f32")
        np.ascontiguousarray(x, dtype="<f4").tofile(xi)
        r = subprocess.run([FLEETCTL, "model", "run", path, "--input", xi, "--output", yo] +
                           list(extra), capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("fleetctl model run %s failed: %s%s" % (path, r.stdout, r.stderr))
        return np.fromfile(yo, dtype="<f4")


def verify(path, model, x, first_output_index=0, tol=1e-3):
    """Max |runtime - torch| of the first output on x; raises when above tol."""
    model.eval()
    with torch.no_grad():
        ref = model(x)
    if isinstance(ref, (tuple, list)):
        ref = ref[first_output_index]
    ref = ref.numpy().reshape(-1)
    got = run_runtime(path, x.numpy())
    if got.size != ref.size:
        raise RuntimeError("%s: runtime gave %d values, torch %d" % (path, got.size, ref.size))
    err = float(np.max(np.abs(got - ref)))
    if not err <= tol:
        raise RuntimeError("%s: runtime differs from torch by %g" % (path, err))
    return err


def parse_info(text):
    """Params, MACs and the cut candidates from `fleetctl model info`."""
    out = {"text": text}
    m = re.search(r"param\w*\D*?(\d[\d,]*)", text, re.I)
    if m:
        out["params"] = int(m.group(1).replace(",", ""))
    m = re.search(r"MACs\D*?(\d[\d,]*)", text)
    if m:
        out["macs"] = int(m.group(1).replace(",", ""))
    return out
