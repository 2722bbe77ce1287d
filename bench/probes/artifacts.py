"""Issue 12 item 10 (and 11): crafted model artifacts, at start-up and on hot reload.

Each variant is a copy of ``models/default`` with one thing crafted, its manifest's sha256s
rewritten to match (what someone who can write the directory can do without the model key):

* start-up: ``detector replay --model <variant>`` on a small archive must exit 2 with exactly
  one line on stderr, within the time limit, never a traceback, a signal or a hang;
* hot reload: one ``detector run`` (file source, stays up) with a good model; each variant is
  swapped into its model directory in turn; the run must log ``model_rejected`` for it, keep
  running, and still reload a good model at the end.

Usage: PYTHONPATH=. python bench/probes/artifacts.py
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from bench.probes import common

DEFAULT = common.ROOT / "models" / "default"
TIME_LIMIT_S = 60.0
KEY = "probe-model-key"


def arrays() -> dict[str, np.ndarray]:
    with np.load(DEFAULT / "forest.npz", allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def manifest() -> dict[str, Any]:
    return json.loads((DEFAULT / "manifest.json").read_text())


def write(out: Path, arrs: dict[str, np.ndarray] | None = None, forest: bytes | None = None, **edits: Any) -> None:
    out.mkdir(parents=True, exist_ok=True)
    if forest is None:
        buf = io.BytesIO()
        np.savez(buf, **(arrs if arrs is not None else arrays()))
        forest = buf.getvalue()
    (out / "forest.npz").write_bytes(forest)
    m = manifest()
    m.pop("signature", None)
    m["files"] = {"forest.npz": hashlib.sha256(forest).hexdigest()}
    m.update(edits)
    (out / "manifest.json").write_text(json.dumps(m, indent=2, sort_keys=True))


def sign(out: Path, key: str = KEY) -> None:
    m = json.loads((out / "manifest.json").read_text())
    m.pop("signature", None)
    body = json.dumps(m, indent=2, sort_keys=True).encode()
    m["signature"] = hmac.new(key.encode(), body, hashlib.sha256).hexdigest()
    (out / "manifest.json").write_text(json.dumps(m, indent=2, sort_keys=True))


def with_array(name: str, value: np.ndarray) -> Callable[[Path], None]:
    def craft(out: Path) -> None:
        a = arrays()
        a[name] = value
        write(out, a)

    return craft


def first(suffix: str) -> str:
    return next(k for k in arrays() if k.endswith(suffix))


def other_tree(out: Path) -> None:
    a = arrays()
    left, roots = a[first("all.left")].copy(), a[first("all.roots")]
    left[roots[0]] = roots[1] + 1  # the first root's left child inside the second tree
    a[first("all.left")] = left
    write(out, a)


def cycle(out: Path) -> None:
    a = arrays()
    left, right = a[first("all.left")].copy(), a[first("all.right")].copy()
    inner = np.flatnonzero(left != np.arange(left.size))
    node = int(inner[1])
    left[int(left[node])] = node  # a child points back at its parent
    right[int(left[node])] = node
    a[first("all.left")], a[first("all.right")] = left, right
    write(out, a)


def huge_header(out: Path) -> None:
    """An npz member whose header promises a 2.5 GB array (the member holds a few bytes)."""
    buf = io.BytesIO()
    a = arrays()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for k, v in a.items():
            member = io.BytesIO()
            np.save(member, v)
            z.writestr(f"{k}.npy", member.getvalue())
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (312_500_000,)})
        z.writestr("all.all.huge.npy", header.getvalue() + b"\x00" * (1 << 20))
    write(out, forest=buf.getvalue())


def zero_bomb(out: Path) -> None:
    """A 2.5 GB array of zeros deflated to a few MB, honestly described by its header."""
    buf = io.BytesIO()
    a = arrays()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for k, v in a.items():
            member = io.BytesIO()
            np.save(member, v)
            z.writestr(f"{k}.npy", member.getvalue())
        with z.open("all.all.bomb.npy", "w", force_zip64=True) as member:
            np.lib.format.write_array_header_1_0(
                member, {"descr": "<f8", "fortran_order": False, "shape": (312_500_000,)}
            )
            chunk = b"\x00" * (1 << 24)
            for _ in range(2_500_000_000 // len(chunk) + 1):
                member.write(chunk)
    write(out, forest=buf.getvalue())


def symlink_out(out: Path) -> None:
    write(out)
    outside = out.parent / f"{out.name}-outside.npz"
    shutil.move(out / "forest.npz", outside)
    os.symlink(outside, out / "forest.npz")


def dev_zero(out: Path) -> None:
    write(out)
    (out / "forest.npz").unlink()
    os.symlink("/dev/zero", out / "forest.npz")


def fifo(out: Path) -> None:
    write(out)
    (out / "forest.npz").unlink()
    os.mkfifo(out / "forest.npz")


def manifest_text(text: bytes) -> Callable[[Path], None]:
    def craft(out: Path) -> None:
        write(out)
        (out / "manifest.json").write_bytes(text)

    return craft


def manifest_edit(**edits: Any) -> Callable[[Path], None]:
    return lambda out: write(out, **edits)


def bad_signature(out: Path) -> None:
    write(out)
    sign(out, "some-other-key")


def truncated(out: Path) -> None:
    buf = io.BytesIO()
    np.savez(buf, **arrays())
    write(out, forest=buf.getvalue()[: len(buf.getvalue()) // 2])


VARIANTS: dict[str, Callable[[Path], None]] = {
    "truncated_npz": truncated,
    "not_a_zip": lambda out: write(out, forest=b"PK\x03\x04 this is not a zip" * 100),
    "wrong_dtype_left_float": with_array(first("all.left"), arrays()[first("all.left")].astype(np.float64)),
    "wrong_dtype_scores_complex": with_array(first("all.scores"), arrays()[first("all.scores")].astype(np.complex128)),
    "object_array": lambda out: _object_array(out),
    "huge_shape_header": huge_header,
    "zero_bomb_2_5GB": zero_bomb,
    "child_in_other_tree": other_tree,
    "cycle": cycle,
    "nan_thresholds": with_array(first("all.threshold"), np.full_like(arrays()[first("all.threshold")], np.nan)),
    "nan_scores": with_array(first("all.scores"), np.full_like(arrays()[first("all.scores")], np.nan)),
    "inf_leaf_values": with_array(first("all.leaf_value"), np.full_like(arrays()[first("all.leaf_value")], np.inf)),
    "feature_version_mismatch": manifest_edit(feature_version=2),
    "format_mismatch": manifest_edit(format=1),
    "symlink_out_of_dir": symlink_out,
    "symlink_dev_zero": dev_zero,
    "fifo": fifo,
    "sha_mismatch": lambda out: (write(out), (out / "forest.npz").write_bytes(b"PK" + b"\x00" * 64)),
    "manifest_not_json": manifest_text(b"{not json"),
    "manifest_nan_tokens": manifest_text(b'{"format": NaN, "trained_at": Infinity}'),
    "manifest_deep_nesting": manifest_text(b"[" * 200_000 + b"]" * 200_000),
    "manifest_huge": manifest_text(b'{"x": "' + b"a" * (64 << 20) + b'"}'),
    "manifest_trained_at_text": manifest_edit(trained_at="yesterday"),
    "manifest_version_object": manifest_edit(version={"a": [1, 2]}),
    "manifest_groups_list": manifest_edit(groups=["all"]),
    "manifest_members_list": manifest_edit(groups={"all": {"members": ["all"], "rows": 1}}),
    "manifest_file_path_escape": manifest_edit(files={"../forest.npz": "0" * 64, "forest.npz": "0" * 64}),
}
SIGNED = {"bad_signature": bad_signature, "unsigned_with_key": lambda out: write(out)}


def _object_array(out: Path) -> None:
    buf = io.BytesIO()
    a: dict[str, Any] = dict(arrays())
    a[first("all.scores")] = np.array([{"x": 1}] * 3, dtype=object)
    np.savez(buf, **a)
    write(out, forest=buf.getvalue())


def startup(tmp: Path, sample: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, craft in {**VARIANTS, **SIGNED}.items():
        d = tmp / "start" / name
        craft(d)
        env = common.env()
        if name in SIGNED:
            env["DETECTOR_MODEL_KEY"] = KEY
        started = time.monotonic()
        try:
            proc = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "detector.cli",
                    "replay",
                    str(sample),
                    "--model",
                    str(d),
                    "--alerts",
                    os.devnull,
                    "--quiet",
                ],
                env=env,
                capture_output=True,
                timeout=TIME_LIMIT_S,
            )
            code, err = proc.returncode, proc.stderr.decode(errors="replace").strip()
        except subprocess.TimeoutExpired:
            code, err = None, "HANG"
        lines = err.splitlines()
        out[name] = {
            "exit": code,
            "lines": len(lines),
            "seconds": round(time.monotonic() - started, 1),
            "message": lines[-1][:200] if lines else "",
            "ok": code == 2 and len(lines) == 1 and "Traceback" not in err,
        }
    return out


def hot_reload(tmp: Path, sample: Path) -> dict[str, Any]:
    model = tmp / "live-model"
    write(model)
    cfg = tmp / "live.yaml"
    cfg.write_text(
        f"""
model: {model}
state_dir: {tmp / "live" / "state"}
source: {{kind: file, paths: ["{sample}"]}}
sinks: [{{kind: file, path: "{tmp / "live" / "alerts.jsonl"}"}}]
metrics: {{port: 0}}
"""
    )
    run = common.Run(cfg)
    out: dict[str, Any] = {}
    try:
        deadline = time.monotonic() + 60
        while not any(b'"event": "checkpoint"' in line for line in run.log) and time.monotonic() < deadline:
            time.sleep(0.2)
        for name, craft in VARIANTS.items():
            if name == "zero_bomb_2_5GB":
                continue  # the header check huge_shape_header exercises; not worth 2.5 GB of deflate again
            staging = tmp / "stage" / name
            craft(staging)
            # swap the variant's files into the live directory (the manifest last, as `train` does)
            for p in list(model.iterdir()):
                if p.is_symlink() or not p.is_dir():
                    p.unlink()
            for p in sorted(staging.iterdir(), key=lambda p: p.name == "manifest.json"):
                target = model / p.name
                if p.is_symlink():
                    os.symlink(os.readlink(p), target)
                elif p.is_fifo():
                    os.mkfifo(target)
                else:
                    shutil.copyfile(p, target)
            before = len(run.log)
            deadline = time.monotonic() + 15
            seen = False
            while time.monotonic() < deadline and run.proc.poll() is None:
                if any(b'"event": "model_' in line for line in run.log[before:]):
                    seen = True
                    break
                time.sleep(0.1)
            events = [orjson.loads(line).get("event") for line in run.log[before:] if line.startswith(b"{")]
            out[name] = {
                "alive": run.proc.poll() is None,
                "rejected": "model_rejected" in events,
                "reloaded": "model_reloaded" in events,
                "noticed_within_15s": seen,
            }
            if run.proc.poll() is not None:
                out[name]["tail"] = run.tail(5)
                break
        # a good model still loads after all of that
        write(model, version="probe-good-again")
        before = len(run.log)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not any(b"model_reloaded" in line for line in run.log[before:]):
            time.sleep(0.1)
        out["good_model_after"] = {"reloaded": any(b"model_reloaded" in line for line in run.log[before:])}
    finally:
        code = run.stop()
    out["exit_after_sigterm"] = code
    out["tracebacks"] = run.tracebacks()
    return out


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="probe-artifacts-"))
    root, _ = common.archive(tmp / "archive", days=2)
    sample = sorted(root.rglob("*.json.gz"))[0]
    report = {"startup": startup(tmp, sample), "hot_reload": hot_reload(tmp, sample), "workdir": str(tmp)}
    print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
    ok = all(v["ok"] for v in report["startup"].values()) and all(
        v.get("alive") and v.get("rejected") for k, v in report["hot_reload"].items() if k in VARIANTS
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
