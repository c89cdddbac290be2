#!/usr/bin/env python3
"""Generate the ONNX operator-option fixtures under tests/data/onnx-options/.

Each case is one GRU, LSTM or RNN node built with onnx.helper, laid out like an
ONNX backend node test:

    <case>/model.onnx
    <case>/test_data_set_0/input_N.pb    serialized TensorProto, N-th graph input
    <case>/test_data_set_0/output_N.pb   serialized TensorProto, N-th graph output
    <case>/case.json                     {"reference": ..., "what": ..., ["note": ...]}

Omitted optional inputs have the node input name "" and no graph input;
omitted outputs have the node output name "" and no graph output.

Three answers are computed for every case:

  * onnxruntime (CPUExecutionProvider, one thread);
  * onnx.reference.ReferenceEvaluator;
  * `spec_*` below: a plain numpy (float64) implementation written from the
    operator specification (equations, activation table, shapes).

The stored output is onnxruntime's when it agrees with onnx.reference or with
the numpy implementation. onnxruntime refuses layout=1; for those cases it is
run on the equivalent layout=0 node with transposed inputs/outputs, and that
answer is stored only if it agrees with the numpy implementation. Every
disagreement is printed and written to case.json as "note". The script exits
non-zero if a case has no two agreeing answers.

Usage:
    python scripts/make_onnx_options.py [--out DIR] [--only SUBSTR]
    python scripts/make_onnx_options.py --check BIN [--only SUBSTR]
        run every stored case through `BIN run MODEL --out-dir D INPUT...`
        (e.g. ./target/debug/webrnn) and compare with the stored outputs
        (atol 1e-5, rtol 1e-4); --backend B is passed on to BIN.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import onnx.numpy_helper
import onnxruntime as ort
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "tests" / "data" / "onnx-options"
OPSET = 14
IR_VERSION = 8
ATOL, RTOL = 1e-5, 1e-4

OPS = {
    # op: (node inputs in order, node outputs in order, gates, activations per direction)
    "GRU": (["X", "W", "R", "B", "sequence_lens", "initial_h"], ["Y", "Y_h"], 3, 2),
    "LSTM": (["X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P"],
             ["Y", "Y_h", "Y_c"], 4, 3),
    "RNN": (["X", "W", "R", "B", "sequence_lens", "initial_h"], ["Y", "Y_h"], 1, 1),
}
DEFAULT_ACTS = {"GRU": ["Sigmoid", "Tanh"], "LSTM": ["Sigmoid", "Tanh", "Tanh"], "RNN": ["Tanh"]}


# --------------------------------------------------------------------------
# numpy implementation from the ONNX operator spec
# --------------------------------------------------------------------------

# (number of alphas, number of betas, default alpha, default beta)
ACT_PARAMS = {
    "Relu": (0, 0, None, None), "Tanh": (0, 0, None, None), "Sigmoid": (0, 0, None, None),
    "Softsign": (0, 0, None, None), "Softplus": (0, 0, None, None),
    "Affine": (1, 1, 1.0, 0.0), "LeakyRelu": (1, 0, 0.01, None),
    "ThresholdedRelu": (1, 0, 1.0, None), "ScaledTanh": (1, 1, 1.0, 1.0),
    "HardSigmoid": (1, 1, 0.2, 0.5), "Elu": (1, 0, 1.0, None),
}


def act_fn(name, a, b):
    return {
        "Relu": lambda x: np.maximum(0, x),
        "Tanh": np.tanh,
        "Sigmoid": lambda x: 1 / (1 + np.exp(-x)),
        "Affine": lambda x: a * x + b,
        "LeakyRelu": lambda x: np.where(x >= 0, x, a * x),
        "ThresholdedRelu": lambda x: np.where(x >= a, x, 0.0),
        "ScaledTanh": lambda x: a * np.tanh(b * x),
        "HardSigmoid": lambda x: np.minimum(np.maximum(a * x + b, 0), 1),
        "Elu": lambda x: np.where(x >= 0, x, a * (np.exp(x) - 1)),
        "Softsign": lambda x: x / (1 + np.abs(x)),
        "Softplus": lambda x: np.log1p(np.exp(x)),
    }[name]


def bind_activations(acts, alphas, betas, rule="consume"):
    """Pair each activation with its (alpha, beta).

    rule="consume": the lists are consumed in order, each value only by the
    functions that take that parameter (onnxruntime's reading of "consumed in
    the order of activation functions"). rule="positional": activation k takes
    alphas[k] / betas[k] (missing entries fall back to the defaults)."""
    alphas, betas = list(alphas or []), list(betas or [])
    out, ia, ib = [], 0, 0
    for k, name in enumerate(acts):
        na, nb, da, db = ACT_PARAMS[name]
        a, b = da, db
        if rule == "consume":
            if na and ia < len(alphas):
                a = alphas[ia]
                ia += 1
            if nb and ib < len(betas):
                b = betas[ib]
                ib += 1
        else:
            if na and k < len(alphas):
                a = alphas[k]
            if nb and k < len(betas):
                b = betas[k]
        out.append((name, a, b, act_fn(name, a, b)))
    return out


def spec_run(op, attrs, X, W, R, B=None, sequence_lens=None, initial_h=None,
             initial_c=None, P=None, rule="consume", lstm_clip_cell=False):
    """Float64 numpy implementation of one GRU/LSTM/RNN node, straight from the spec."""
    _, _, G, nact = OPS[op]
    layout = attrs.get("layout", 0)
    direction = attrs.get("direction", "forward")
    D = 2 if direction == "bidirectional" else 1
    H = attrs["hidden_size"]
    clip = attrs.get("clip")
    lbr = attrs.get("linear_before_reset", 0)
    input_forget = attrs.get("input_forget", 0)
    acts = attrs.get("activations", DEFAULT_ACTS[op] * D)
    bound = bind_activations(acts, attrs.get("activation_alpha"), attrs.get("activation_beta"), rule)
    c = (lambda v: np.clip(v, -clip, clip)) if clip is not None else (lambda v: v)

    X = X.astype(np.float64)
    if layout == 1:  # X [batch, seq, in], states [batch, D, H]
        X = X.transpose(1, 0, 2)
        initial_h = None if initial_h is None else initial_h.transpose(1, 0, 2)
        initial_c = None if initial_c is None else initial_c.transpose(1, 0, 2)
    T, N, _ = X.shape
    W, R = W.astype(np.float64), R.astype(np.float64)
    B = np.zeros((D, 2 * G * H)) if B is None else B.astype(np.float64)
    P = np.zeros((D, 3 * H)) if P is None else P.astype(np.float64)
    h0 = np.zeros((D, N, H)) if initial_h is None else initial_h.astype(np.float64)
    c0 = np.zeros((D, N, H)) if initial_c is None else initial_c.astype(np.float64)
    lens = [T] * N if sequence_lens is None else [int(v) for v in sequence_lens]

    Y = np.zeros((T, D, N, H))
    Yh = np.zeros((D, N, H))
    Yc = np.zeros((D, N, H))
    for d in range(D):
        fs = [f for (_, _, _, f) in bound[d * nact:(d + 1) * nact]]
        reverse = direction == "reverse" or d == 1
        Wd = np.split(W[d], G)
        Rd = np.split(R[d], G)
        Wb = np.split(B[d][:G * H], G)
        Rb = np.split(B[d][G * H:], G)
        Pi, Po, Pf = np.split(P[d], 3)
        for n in range(N):
            h, cell = h0[d, n].copy(), c0[d, n].copy()
            steps = range(lens[n] - 1, -1, -1) if reverse else range(lens[n])
            for t in steps:
                x = X[t, n]
                if op == "RNN":
                    (f,) = fs
                    h = f(c(Wd[0] @ x + Rd[0] @ h + Wb[0] + Rb[0]))
                elif op == "GRU":  # gate order z, r, h
                    f, g = fs
                    z = f(c(Wd[0] @ x + Rd[0] @ h + Wb[0] + Rb[0]))
                    r = f(c(Wd[1] @ x + Rd[1] @ h + Wb[1] + Rb[1]))
                    if lbr:
                        hh = g(c(Wd[2] @ x + r * (Rd[2] @ h + Rb[2]) + Wb[2]))
                    else:
                        hh = g(c(Wd[2] @ x + Rd[2] @ (r * h) + Rb[2] + Wb[2]))
                    h = (1 - z) * hh + z * h
                else:  # LSTM, gate order i, o, f, c; P order i, o, f
                    f, g, hf = fs
                    i = f(c(Wd[0] @ x + Rd[0] @ h + Pi * cell + Wb[0] + Rb[0]))
                    if input_forget:
                        fg = 1 - i
                    else:
                        fg = f(c(Wd[2] @ x + Rd[2] @ h + Pf * cell + Wb[2] + Rb[2]))
                    ct = g(c(Wd[3] @ x + Rd[3] @ h + Wb[3] + Rb[3]))
                    cell = fg * cell + i * ct
                    o = f(c(Wd[1] @ x + Rd[1] @ h + Po * cell + Wb[1] + Rb[1]))
                    h = o * hf(c(cell) if lstm_clip_cell else cell)
                Y[t, d, n] = h
            Yh[d, n], Yc[d, n] = h, cell
    if layout == 1:
        Y = Y.transpose(2, 0, 1, 3)
        Yh = Yh.transpose(1, 0, 2)
        Yc = Yc.transpose(1, 0, 2)
    return {"Y": Y, "Y_h": Yh, "Y_c": Yc}


# --------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------

@dataclass
class Case:
    name: str
    op: str
    what: str
    direction: str = "forward"
    seq: int = 5
    batch: int = 3
    inp: int = 4
    hidden: int = 5
    bias: bool = True
    h0: bool = True
    c0: bool = False
    peep: bool = False
    seq_lens: list[int] | None = None
    outputs: tuple[str, ...] | None = None  # None: all outputs of the op
    attrs: dict = field(default_factory=dict)
    w_scale: float = 0.6
    x_scale: float = 1.0


def cases() -> list[Case]:
    out = []
    # 1. every activation as the RNN f
    for act, alpha, beta in [
        ("Relu", None, None), ("Tanh", None, None), ("Sigmoid", None, None),
        ("HardSigmoid", 0.3, 0.6), ("LeakyRelu", 0.2, None), ("Elu", 0.7, None),
        ("Softsign", None, None), ("Softplus", None, None), ("Affine", 0.5, 0.25),
        ("ScaledTanh", 1.5, 0.8), ("ThresholdedRelu", 0.1, None),
    ]:
        attrs = {"activations": [act]}
        desc = act
        if alpha is not None:
            attrs["activation_alpha"] = [alpha]
            desc += f" alpha={alpha}"
        if beta is not None:
            attrs["activation_beta"] = [beta]
            desc += f" beta={beta}"
        out.append(Case(f"rnn_act_{act.lower()}", "RNN",
                        f"RNN forward, f={desc}, with B and initial_h", attrs=attrs))
    # several parameterised activations in one node: pins down how the
    # activation_alpha/activation_beta lists are consumed
    out.append(Case(
        "gru_acts_bidir", "GRU",
        "GRU bidirectional, activations [HardSigmoid, LeakyRelu, HardSigmoid, LeakyRelu], "
        "alpha [0.3, 0.2, 0.25, 0.15], beta [0.6, 0.55]: the betas go to the two HardSigmoids "
        "(lists consumed in order, only by functions that take the parameter)",
        direction="bidirectional",
        attrs={"activations": ["HardSigmoid", "LeakyRelu", "HardSigmoid", "LeakyRelu"],
               "activation_alpha": [0.3, 0.2, 0.25, 0.15], "activation_beta": [0.6, 0.55]}))
    out.append(Case(
        "lstm_acts_bidir", "LSTM",
        "LSTM bidirectional, activations [HardSigmoid, ScaledTanh, Affine] x2, "
        "alpha [0.3, 1.5, 0.5, 0.25, 1.2, 0.8], beta [0.6, 0.8, 0.25, 0.55, 0.9, -0.1]",
        direction="bidirectional", c0=True,
        attrs={"activations": ["HardSigmoid", "ScaledTanh", "Affine"] * 2,
               "activation_alpha": [0.3, 1.5, 0.5, 0.25, 1.2, 0.8],
               "activation_beta": [0.6, 0.8, 0.25, 0.55, 0.9, -0.1]}))
    out.append(Case(
        "lstm_acts_mixed_bidir", "LSTM",
        "LSTM bidirectional, activations [Sigmoid, LeakyRelu, Softsign, HardSigmoid, Tanh, "
        "ScaledTanh], alpha [0.2, 0.3, 1.5], beta [0.6, 0.8]: LeakyRelu 0.2, HardSigmoid "
        "0.3/0.6, ScaledTanh 1.5/0.8 (lists consumed in order, only by functions that take "
        "the parameter)",
        direction="bidirectional", c0=True,
        attrs={"activations": ["Sigmoid", "LeakyRelu", "Softsign", "HardSigmoid", "Tanh", "ScaledTanh"],
               "activation_alpha": [0.2, 0.3, 1.5], "activation_beta": [0.6, 0.8]}))
    out.append(Case(
        "rnn_acts_bidir", "RNN",
        "RNN bidirectional, activations [Softsign, LeakyRelu], alpha [0.2]: the reverse "
        "direction's LeakyRelu takes alpha 0.2 (not the default 0.01)",
        direction="bidirectional",
        attrs={"activations": ["Softsign", "LeakyRelu"], "activation_alpha": [0.2]}))
    # 2. clip
    for op in ("RNN", "GRU", "LSTM"):
        out.append(Case(f"{op.lower()}_clip", op,
                        f"{op} forward, clip=0.5, X scaled x3 so that clipping happens, "
                        "with B and initial_h" + (", initial_c" if op == "LSTM" else ""),
                        c0=op == "LSTM", attrs={"clip": 0.5}, x_scale=3.0))
    out.append(Case("gru_clip_lbr1", "GRU",
                    "GRU forward, clip=0.5, linear_before_reset=1, X scaled x3",
                    attrs={"clip": 0.5, "linear_before_reset": 1}, x_scale=3.0))
    # 3. GRU linear_before_reset
    for lbr in (0, 1):
        for direction in ("forward", "bidirectional"):
            short = "fwd" if direction == "forward" else "bidir"
            out.append(Case(f"gru_lbr{lbr}_{short}", "GRU",
                            f"GRU {direction}, linear_before_reset={lbr}, with B and initial_h",
                            direction=direction, attrs={"linear_before_reset": lbr}))
    # 4. LSTM options
    out.append(Case("lstm_input_forget", "LSTM",
                    "LSTM forward, input_forget=1 (f = 1 - i), with B, initial_h, initial_c",
                    c0=True, attrs={"input_forget": 1}))
    out.append(Case("lstm_peepholes", "LSTM",
                    "LSTM forward, peepholes P, with B, initial_h, initial_c",
                    c0=True, peep=True))
    out.append(Case("lstm_all_inputs_bidir", "LSTM",
                    "LSTM bidirectional with all 8 inputs (B, sequence_lens [5, 1, 3], "
                    "initial_h, initial_c, P)",
                    direction="bidirectional", c0=True, peep=True, seq_lens=[5, 1, 3]))
    # 5. sequence_lens
    for op in ("GRU", "LSTM", "RNN"):
        for direction, short in (("forward", "fwd"), ("reverse", "rev"), ("bidirectional", "bidir")):
            out.append(Case(f"{op.lower()}_seqlens_{short}", op,
                            f"{op} {direction}, sequence_lens [6, 1, 4] (T=6), with B and "
                            "initial_h" + (", initial_c" if op == "LSTM" else ""),
                            direction=direction, seq=6, c0=op == "LSTM", seq_lens=[6, 1, 4]))
    # 6. layout=1
    for op in ("GRU", "LSTM", "RNN"):
        out.append(Case(f"{op.lower()}_layout1_bidir", op,
                        f"{op} bidirectional, layout=1 (batch-major X/Y/states), "
                        "sequence_lens [5, 1, 3], with B and initial_h"
                        + (", initial_c" if op == "LSTM" else ""),
                        direction="bidirectional", c0=op == "LSTM", seq_lens=[5, 1, 3],
                        attrs={"layout": 1}))
    # 7. omitted outputs
    out.append(Case("gru_only_y_h", "GRU", "GRU forward, outputs (\"\", Y_h): only Y_h",
                    outputs=("", "Y_h")))
    out.append(Case("rnn_only_y", "RNN", "RNN reverse, outputs (Y): only Y",
                    direction="reverse", outputs=("Y",)))
    out.append(Case("lstm_only_y_h", "LSTM", "LSTM forward, outputs (\"\", Y_h): only Y_h",
                    c0=True, outputs=("", "Y_h")))
    out.append(Case("lstm_only_y", "LSTM", "LSTM bidirectional, outputs (Y): only Y",
                    direction="bidirectional", c0=True, outputs=("Y",)))
    out.append(Case("lstm_only_y_c", "LSTM", "LSTM forward, outputs (\"\", \"\", Y_c): only Y_c",
                    c0=True, outputs=("", "", "Y_c")))
    return out


# --------------------------------------------------------------------------
# Model building and evaluation
# --------------------------------------------------------------------------

def make_inputs(c: Case) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(zlib.crc32(c.name.encode()))
    _, _, G, _ = OPS[c.op]
    D = 2 if c.direction == "bidirectional" else 1
    H, I, T, N = c.hidden, c.inp, c.seq, c.batch
    layout = c.attrs.get("layout", 0)

    def rnd(*shape, scale=1.0):
        return (scale * rng.standard_normal(shape)).astype(np.float32)

    x = rnd(T, N, I, scale=c.x_scale)
    v = {"X": x.transpose(1, 0, 2).copy() if layout else x,
         "W": rnd(D, G * H, I, scale=c.w_scale), "R": rnd(D, G * H, H, scale=c.w_scale)}
    if c.bias:
        v["B"] = rnd(D, 2 * G * H, scale=0.5)
    if c.seq_lens is not None:
        v["sequence_lens"] = np.array(c.seq_lens, dtype=np.int32)
    state_shape = (N, D, H) if layout else (D, N, H)
    if c.h0:
        v["initial_h"] = rnd(*state_shape, scale=0.5)
    if c.c0:
        v["initial_c"] = rnd(*state_shape, scale=0.5)
    if c.peep:
        v["P"] = rnd(D, 3 * H, scale=0.5)
    return v


def node_attrs(c: Case) -> dict:
    a = {"hidden_size": c.hidden, "direction": c.direction}
    a.update(c.attrs)
    return a


def output_names(c: Case) -> list[str]:
    names = list(c.outputs) if c.outputs is not None else list(OPS[c.op][1])
    return names


def build_model(c: Case, v: dict, attrs: dict, shapes: dict) -> onnx.ModelProto:
    in_order, _, _, _ = OPS[c.op]
    node_in = [n if n in v else "" for n in in_order]
    while node_in and node_in[-1] == "":
        node_in.pop()
    outs = output_names(c)
    node = helper.make_node(c.op, node_in, outs, **attrs)
    g_in = [helper.make_tensor_value_info(
        n, TensorProto.INT32 if n == "sequence_lens" else TensorProto.FLOAT, list(v[n].shape))
        for n in node_in if n]
    g_out = [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(shapes[n])) for n in outs if n]
    graph = helper.make_graph([node], c.name, g_in, g_out)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="webrnn-make_onnx_options")
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    return model


def run_ort(model: onnx.ModelProto, feeds: dict) -> dict:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 4  # layout=1 refusals are expected and reported
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, feeds)))


def run_ref(model: onnx.ModelProto, feeds: dict) -> dict:
    names = [o.name for o in model.graph.output]
    return dict(zip(names, ReferenceEvaluator(model).run(None, feeds)))


def maxdiff(a: dict, b: dict, names) -> float:
    return max(float(np.max(np.abs(np.asarray(a[n], np.float64) - np.asarray(b[n], np.float64))))
               if np.shape(a[n]) == np.shape(b[n]) else float("inf") for n in names)


def close(a: dict, b: dict, names) -> bool:
    return all(np.shape(a[n]) == np.shape(b[n]) and
               np.allclose(np.asarray(a[n], np.float64), np.asarray(b[n], np.float64),
                           atol=ATOL, rtol=RTOL) for n in names)


def fmt(d: float) -> str:
    return "inf" if d == float("inf") else f"{d:.2e}"


def generate_case(c: Case, out_dir: Path) -> tuple[bool, str]:
    v = make_inputs(c)
    attrs = node_attrs(c)
    spec = spec_run(c.op, attrs, **v)
    outs = [n for n in output_names(c) if n]
    shapes = {n: spec[n].shape for n in spec}
    model = build_model(c, v, attrs, shapes)
    feeds = {n: v[n] for n in (i.name for i in model.graph.input)}
    ort_ver, ref_ver = f"onnxruntime {ort.__version__}", f"onnx.reference {onnx.__version__}"
    log = []

    try:
        r_ort, e_ort = run_ort(model, feeds), None
    except Exception as e:  # noqa: BLE001
        r_ort = None
        msg = str(e).splitlines()[0]
        e_ort = msg[msg.find("layout_ == 0"):] if "layout_ == 0" in msg else msg[:200]
    try:
        r_ref, e_ref = run_ref(model, feeds), None
    except Exception as e:  # noqa: BLE001
        r_ref, e_ref = None, f"{type(e).__name__}: {str(e).splitlines()[0][:160]}"
    r_ort_l0 = None
    if c.attrs.get("layout", 0) == 1:
        # the same node with layout=0, inputs and outputs transposed (batch <-> seq / dir)
        c0 = Case(**{**c.__dict__, "attrs": {k: x for k, x in c.attrs.items() if k != "layout"}})
        a0 = node_attrs(c0)
        v0 = dict(v)
        v0["X"] = v["X"].transpose(1, 0, 2).copy()
        for k in ("initial_h", "initial_c"):
            if k in v0:
                v0[k] = v[k].transpose(1, 0, 2).copy()
        s0 = spec_run(c.op, a0, **v0)
        m0 = build_model(c0, v0, a0, {n: s0[n].shape for n in s0})
        try:
            r0 = run_ort(m0, {i.name: v0[i.name] for i in m0.graph.input})
            r_ort_l0 = {"Y": r0["Y"].transpose(2, 0, 1, 3)} if "Y" in r0 else {}
            for k in ("Y_h", "Y_c"):
                if k in r0:
                    r_ort_l0[k] = r0[k].transpose(1, 0, 2)
        except Exception as e:  # noqa: BLE001
            log.append(f"ORT layout=0 equivalent failed: {e}")

    d = lambda a: fmt(maxdiff(a, spec, outs))  # noqa: E731
    log.append("ORT-vs-spec " + (d(r_ort) if r_ort else f"refused ({e_ort})"))
    log.append("ref-vs-spec " + (d(r_ref) if r_ref else f"failed ({e_ref})"))
    if r_ort and r_ref:
        log.append("ORT-vs-ref " + fmt(maxdiff(r_ort, r_ref, outs)))
    if r_ort_l0 is not None:
        log.append("ORT(layout=0 transposed)-vs-spec " + d(r_ort_l0))

    ok_ort_spec = r_ort is not None and close(r_ort, spec, outs)
    ok_ref_spec = r_ref is not None and close(r_ref, spec, outs)
    ok_ort_ref = r_ort is not None and r_ref is not None and close(r_ort, r_ref, outs)
    notes = []
    if ok_ort_ref:
        chosen, ref = r_ort, ort_ver
        if not ok_ort_spec:
            notes.append(f"the numpy spec implementation disagrees (max diff {d(r_ort)})")
    elif ok_ort_spec:
        chosen, ref = r_ort, ort_ver
        why = f"fails: {e_ref}" if r_ref is None else f"disagrees, max diff {d(r_ref)}"
        notes.append(f"onnx.reference {onnx.__version__} {why}; onnxruntime agrees with a numpy "
                     f"implementation of the spec (max diff {d(r_ort)})")
    elif r_ort is None and ok_ref_spec:
        chosen, ref = r_ref, ref_ver
        notes.append(f"onnxruntime refuses ({e_ort}); onnx.reference agrees with a numpy "
                     f"implementation of the spec (max diff {d(r_ref)})")
    elif r_ort is None and r_ort_l0 is not None and close(r_ort_l0, spec, outs):
        chosen, ref = r_ort_l0, ort_ver
        why = f"fails: {e_ref}" if r_ref is None else f"disagrees, max diff {d(r_ref)}"
        notes.append(f"onnxruntime refuses layout=1 ({e_ort}); stored outputs are onnxruntime's "
                     "for the same node with layout=0 and transposed inputs/outputs, which agree "
                     f"with a numpy implementation of the spec (max diff {d(r_ort_l0)}); "
                     f"onnx.reference {onnx.__version__} {why}")
    else:
        return False, "; ".join(log) + "  -> NO TWO ANSWERS AGREE"

    case_dir = out_dir / c.name
    ds = case_dir / "test_data_set_0"
    ds.mkdir(parents=True)
    (case_dir / "model.onnx").write_bytes(model.SerializeToString())
    for i, gi in enumerate(model.graph.input):
        t = onnx.numpy_helper.from_array(v[gi.name], gi.name)
        (ds / f"input_{i}.pb").write_bytes(t.SerializeToString())
    for i, n in enumerate(outs):
        t = onnx.numpy_helper.from_array(np.asarray(chosen[n], dtype=np.float32), n)
        (ds / f"output_{i}.pb").write_bytes(t.SerializeToString())
    meta = {"reference": ref, "what": c.what}
    if notes:
        meta["note"] = " ".join(notes)
    (case_dir / "case.json").write_text(json.dumps(meta, indent=2) + "\n")
    return True, "; ".join(log) + f"  -> stored {ref}" + (" (see note)" if notes else "")


def activation_rule_report() -> None:
    """Which reading of the alpha/beta lists does onnxruntime follow?"""
    for c in cases():
        if "activation_alpha" not in c.attrs or len(c.attrs.get("activations", [])) < 2:
            continue
        v = make_inputs(c)
        attrs = node_attrs(c)
        outs = [n for n in output_names(c) if n]
        spec = spec_run(c.op, attrs, **v)
        pos = spec_run(c.op, attrs, rule="positional", **v)
        model = build_model(c, v, attrs, {n: spec[n].shape for n in spec})
        r = run_ort(model, {i.name: v[i.name] for i in model.graph.input})
        print(f"  rule {c.name}: ORT vs consume-in-order {fmt(maxdiff(r, spec, outs))}, "
              f"ORT vs positional {fmt(maxdiff(r, pos, outs))}")


def lstm_clip_report() -> None:
    c = next(c for c in cases() if c.name == "lstm_clip")
    v = make_inputs(c)
    attrs = node_attrs(c)
    outs = [n for n in output_names(c) if n]
    spec = spec_run(c.op, attrs, **v)
    alt = spec_run(c.op, attrs, lstm_clip_cell=True, **v)
    model = build_model(c, v, attrs, {n: spec[n].shape for n in spec})
    r = run_ort(model, {i.name: v[i.name] for i in model.graph.input})
    print(f"  lstm_clip: ORT vs clip-gates-only {fmt(maxdiff(r, spec, outs))}, "
          f"ORT vs clip-also-h(C) input {fmt(maxdiff(r, alt, outs))}, "
          f"max |C| {float(np.max(np.abs(spec['Y_c']))):.2f}")


# --------------------------------------------------------------------------
# Checking a runtime binary against the stored outputs
# --------------------------------------------------------------------------

def check_binary(binary: str, out_dir: Path, only: str | None, backend: str | None) -> int:
    failures = 0
    for case_dir in sorted(p for p in out_dir.iterdir() if p.is_dir()):
        if only and only not in case_dir.name:
            continue
        ds = case_dir / "test_data_set_0"
        inputs = sorted(ds.glob("input_*.pb"), key=lambda p: int(p.stem.split("_")[1]))
        expected = sorted(ds.glob("output_*.pb"), key=lambda p: int(p.stem.split("_")[1]))
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [binary, "run", str(case_dir / "model.onnx"), "--out-dir", tmp, *map(str, inputs)]
            if backend:
                cmd[3:3] = ["--backend", backend]
            p = subprocess.run(cmd, capture_output=True, text=True)
            if p.returncode != 0:
                print(f"FAIL {case_dir.name}: exit {p.returncode}: {(p.stderr or p.stdout).strip()}")
                failures += 1
                continue
            bad, worst = [], 0.0
            for e in expected:
                want = onnx.numpy_helper.to_array(onnx.load_tensor(str(e)))
                gp = Path(tmp) / e.name
                if not gp.exists():
                    bad.append(f"{e.name} missing")
                    continue
                got = onnx.numpy_helper.to_array(onnx.load_tensor(str(gp)))
                if got.shape == want.shape:
                    worst = max(worst, float(np.max(np.abs(got.astype(np.float64) - want))))
                if got.shape != want.shape:
                    bad.append(f"{e.name} shape {got.shape} != {want.shape}")
                elif not np.allclose(got, want, atol=ATOL, rtol=RTOL):
                    diff = np.abs(got.astype(np.float64) - want)
                    idx = tuple(int(i) for i in np.unravel_index(np.argmax(diff), diff.shape))
                    bad.append(f"{e.name} max diff {diff.max():.3e} at {idx} "
                               f"(got {got[idx]:.6f}, want {want[idx]:.6f})")
            extra = sorted(set(q.name for q in Path(tmp).glob("output_*.pb")) -
                           set(e.name for e in expected))
            if extra:
                bad.append(f"extra outputs {extra}")
        if bad:
            failures += 1
            print(f"FAIL {case_dir.name}: " + "; ".join(bad))
        else:
            print(f"ok   {case_dir.name} (max diff {worst:.1e})")
    print(f"{failures} failure(s)")
    return 1 if failures else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--only", default=None, help="only cases whose name contains this")
    ap.add_argument("--check", metavar="BIN", default=None,
                    help="do not generate; run the stored cases through BIN and compare")
    ap.add_argument("--backend", default=None, help="with --check: pass --backend to BIN")
    a = ap.parse_args()
    if a.check:
        return check_binary(a.check, a.out, a.only, a.backend)

    ort.set_default_logger_severity(4)
    selected = [c for c in cases() if not a.only or a.only in c.name]
    if a.only is None and a.out.exists():
        for p in a.out.iterdir():  # keep README.md
            if p.is_dir():
                shutil.rmtree(p)
    a.out.mkdir(parents=True, exist_ok=True)
    failures = 0
    for c in selected:
        if (a.out / c.name).exists():
            shutil.rmtree(a.out / c.name)
        ok, msg = generate_case(c, a.out)
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {c.name}: {msg}")
    if a.only is None:
        activation_rule_report()
        lstm_clip_report()
    print(f"{len(selected)} case(s), {failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
