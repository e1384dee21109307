"""Shared by the bench drivers: bench/RESULTS.md keeps one section per benchmark."""
import datetime
import os
import platform
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "bench", "RESULTS.md")


def _out(cmd):
    try:
        return subprocess.run(cmd, check=True, text=True, capture_output=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def _lscpu():
    """lscpu's 'Key: value' lines as a dict."""
    fields = {}
    for line in _out(["lscpu"]).splitlines():
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    return fields


def vector_isa():
    """The widest SIMD the CPU offers: it decides which XNNPACK microkernels run."""
    flags = set(_lscpu().get("Flags", "").split())
    if "avx512f" in flags:
        return "AVX-512"
    if {"avx2", "fma"} <= flags:
        return "AVX2+FMA"
    if "asimd" in flags:
        return "NEON"
    return "SSE or other"


def machine():
    cpu = _lscpu()
    with open("/proc/meminfo") as f:
        mem = "%.0f GiB" % (int(f.readline().split()[1]) / 2 ** 20)
    return "%s (family %s, model %s, %s), %d cores, %s memory, %s" % (
        cpu.get("Model name", "unknown CPU"), cpu.get("CPU family", "?"), cpu.get("Model", "?"),
        vector_isa(), os.cpu_count() or 0, mem, platform.platform())


def stamp(command):
    return "Machine: %s.  \nRun: %s, `%s`." % (
        machine(), datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC"), command)


def update_section(title, body):
    """Replaces the section '## title' of bench/RESULTS.md (or appends it)."""
    text = open(RESULTS).read() if os.path.exists(RESULTS) else "# Benchmark results\n"
    head = "## " + title + "\n"
    start = text.find(head)
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + head + "\n" + body.rstrip("\n") + "\n"
    else:
        end = text.find("\n## ", start + len(head))
        end = len(text) if end < 0 else end + 1
        text = text[:start] + head + "\n" + body.rstrip("\n") + "\n\n" + text[end:].lstrip("\n")
    with open(RESULTS, "w") as f:
        f.write(text.rstrip("\n") + "\n")
