#!/usr/bin/env python3
"""Generate the PyTorch golden fixtures under tests/data/golden/.

Every case is a directory laid out like an ONNX backend node test:

    <case>/model.onnx                      (ONNX cases)
    <case>/model.safetensors + config.json (state_dict cases)
    <case>/test_data_set_0/input_N.pb      serialized onnx.TensorProto, N-th graph input
    <case>/test_data_set_0/output_N.pb     serialized onnx.TensorProto, N-th graph output
    <case>/case.json                       metadata (see scripts/README.md)

Expected outputs are computed by PyTorch itself (float32, CPU, eval mode).
onnxruntime is only used as a sanity check: its max abs diff against torch is
printed, never stored.

The script is deterministic (fixed seeds, single thread) and re-runnable: it
deletes and regenerates the whole output directory.

Usage: python scripts/make_golden.py [--out tests/data/golden] [--only SUBSTR]
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import shutil
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
import onnx.numpy_helper
import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "tests" / "data" / "golden"

logging.getLogger("torch.onnx").setLevel(logging.ERROR)
torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)
warnings.filterwarnings("ignore")


# --------------------------------------------------------------------------
# Modules
# --------------------------------------------------------------------------

RNN_CLASSES = {"gru": nn.GRU, "lstm": nn.LSTM, "rnn": nn.RNN}


class RecurrentNet(nn.Module):
    """[Embedding] -> nn.GRU/LSTM/RNN -> [Linear head] -> [activation].

    Parameter names (state_dict keys) are `embed.weight`, `rnn.*`,
    `head.weight`, `head.bias`.
    """

    def __init__(
        self,
        cell: str,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        batch_first: bool = False,
        bias: bool = True,
        nonlinearity: str = "tanh",
        proj_size: int = 0,
        vocab: int | None = None,
        head_out: int | None = None,
        activation: str = "none",
    ):
        super().__init__()
        self.cell = cell
        self.batch_first = batch_first
        self.embed = nn.Embedding(vocab, input_size) if vocab else None
        kw = dict(
            input_size=input_size,
            hidden_size=hidden_size,
            num_layers=num_layers,
            bidirectional=bidirectional,
            batch_first=batch_first,
            bias=bias,
        )
        if cell == "rnn":
            kw["nonlinearity"] = nonlinearity
        if cell == "lstm" and proj_size:
            kw["proj_size"] = proj_size
        self.rnn = RNN_CLASSES[cell](**kw)
        d = 2 if bidirectional else 1
        h_out = proj_size if (cell == "lstm" and proj_size) else hidden_size
        self.head = nn.Linear(d * h_out, head_out) if head_out else None
        self.activation = activation
        if activation == "softmax":
            self.act = nn.Softmax(dim=-1)
        elif activation == "log_softmax":
            self.act = nn.LogSoftmax(dim=-1)
        else:
            self.act = None

    def _post(self, y):
        if self.head is not None:
            y = self.head(y)
        if self.act is not None:
            y = self.act(y)
        return y

    def _pre(self, x):
        return self.embed(x) if self.embed is not None else x


class StateNet(RecurrentNet):
    """GRU / RNN: forward(x, h0) -> (y, h_n)."""

    def forward(self, x, h0):
        y, h_n = self.rnn(self._pre(x), h0)
        return self._post(y), h_n


class LstmStateNet(RecurrentNet):
    """LSTM: forward(x, h0, c0) -> (y, h_n, c_n)."""

    def forward(self, x, h0, c0):
        y, (h_n, c_n) = self.rnn(self._pre(x), (h0, c0))
        return self._post(y), h_n, c_n


class StatelessNet(RecurrentNet):
    """forward(x) -> y: zero initial state, internal to the graph."""

    def forward(self, x):
        y, _ = self.rnn(self._pre(x))
        return self._post(y)


# --------------------------------------------------------------------------
# Case description
# --------------------------------------------------------------------------


@dataclass
class Case:
    name: str
    exporter: str  # "legacy" | "dynamo" | "state_dict"
    module: str  # short description
    kwargs: dict  # RecurrentNet kwargs
    stateful: bool = True  # forward takes h0 (/c0) and returns h_n (/c_n)
    batch: int = 2
    seq: int = 16
    opset: int | None = None
    external_data: bool = False
    seed: int = 0
    # export with a different (B, T) than the test data (e.g. T=1 steps)
    export_batch: int | None = None
    export_seq: int | None = None
    notes: list = field(default_factory=list)


def build(case: Case) -> RecurrentNet:
    torch.manual_seed(case.seed)
    kw = dict(case.kwargs)
    cls = StatelessNet if not case.stateful else (
        LstmStateNet if kw["cell"] == "lstm" else StateNet)
    m = cls(**kw)  # PyTorch's default init, under a fixed seed
    m.eval()
    return m


def make_inputs(case: Case, m: RecurrentNet, batch: int, seq: int, gen: torch.Generator):
    kw = case.kwargs
    bf = kw.get("batch_first", False)
    shape = (batch, seq) if bf else (seq, batch)
    if m.embed is not None:
        x = torch.randint(0, kw["vocab"], shape, generator=gen, dtype=torch.int64)
    else:
        x = torch.randn(*shape, kw["input_size"], generator=gen)
    if not case.stateful:
        return [x]
    d = 2 if kw.get("bidirectional") else 1
    L = kw.get("num_layers", 1)
    H = kw["hidden_size"]
    P = kw.get("proj_size", 0) or H
    h0 = 0.5 * torch.randn(L * d, batch, P, generator=gen)
    if kw["cell"] == "lstm":
        c0 = 0.5 * torch.randn(L * d, batch, H, generator=gen)
        return [x, h0, c0]
    return [x, h0]


def io_names(case: Case):
    lstm = case.kwargs["cell"] == "lstm"
    if not case.stateful:
        return ["x"], ["y"]
    if lstm:
        return ["x", "h0", "c0"], ["y", "h_n", "c_n"]
    return ["x", "h0"], ["y", "h_n"]


def case_json(case: Case) -> dict:
    inputs, outputs = io_names(case)
    return {
        "source": f"torch {torch.__version__.split('+')[0]}",
        "exporter": case.exporter,
        "opset": case.opset,
        "module": case.module,
        "stateful_inputs": [i for i, n in enumerate(inputs) if n in ("h0", "c0")],
        "stateful_outputs": [i for i, n in enumerate(outputs) if n in ("h_n", "c_n")],
        "batch_first": bool(case.kwargs.get("batch_first", False)),
        "streamable": not case.kwargs.get("bidirectional", False),
    }


# --------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------


def legacy_dynamic_axes(case: Case):
    bf = case.kwargs.get("batch_first", False)
    inputs, outputs = io_names(case)
    seq_batch = {0: "batch", 1: "seq"} if bf else {0: "seq", 1: "batch"}
    axes = {}
    for n in inputs + outputs:
        axes[n] = dict(seq_batch) if n in ("x", "y") else {1: "batch"}
    return axes


def dynamo_dynamic_shapes(case: Case, m: RecurrentNet):
    from torch.export import Dim

    bf = case.kwargs.get("batch_first", False)
    batch = Dim("batch", min=1, max=1024)
    seq = Dim("seq", min=1, max=100000)
    xs = {0: batch, 1: seq} if bf else {0: seq, 1: batch}
    inputs, _ = io_names(case)
    shapes = {}
    for n in inputs:
        shapes[n] = xs if n == "x" else {1: batch}
    return shapes


def export_onnx(case: Case, m: RecurrentNet, args) -> onnx.ModelProto:
    inputs, outputs = io_names(case)
    if case.exporter == "legacy":
        buf = io.BytesIO()
        torch.onnx.export(
            m,
            tuple(args),
            buf,
            dynamo=False,
            input_names=inputs,
            output_names=outputs,
            dynamic_axes=legacy_dynamic_axes(case),
            opset_version=case.opset,
            do_constant_folding=True,
        )
        return onnx.load_from_string(buf.getvalue())
    if case.exporter == "dynamo":
        prog = torch.onnx.export(
            m,
            tuple(args),
            dynamo=True,
            verbose=False,
            input_names=inputs,
            output_names=outputs,
            dynamic_shapes=dynamo_dynamic_shapes(case, m),
            opset_version=case.opset,
            external_data=False,
            optimize=True,
            verify=False,
            report=False,
        )
        return prog.model_proto
    raise ValueError(case.exporter)


# --------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------


def write_tensor(path: Path, arr: np.ndarray, name: str):
    path.write_bytes(onnx.numpy_helper.from_array(np.ascontiguousarray(arr), name).SerializeToString())


def state_dict_config(case: Case, m: RecurrentNet) -> dict:
    kw = case.kwargs
    cfg = {
        "format": "webrnn-state-dict",
        "version": 1,
        "cell": kw["cell"],
        "input_size": kw["input_size"],
        "hidden_size": kw["hidden_size"],
        "num_layers": kw.get("num_layers", 1),
        "bidirectional": bool(kw.get("bidirectional", False)),
        "batch_first": bool(kw.get("batch_first", False)),
        "bias": bool(kw.get("bias", True)),
    }
    if kw["cell"] == "rnn":
        cfg["nonlinearity"] = kw.get("nonlinearity", "tanh")
    if kw["cell"] == "lstm":
        cfg["proj_size"] = kw.get("proj_size", 0)
    cfg["prefix"] = "rnn."
    if m.embed is not None:
        cfg["embedding"] = "embed.weight"
    if m.head is not None:
        cfg["head"] = {
            "weight": "head.weight",
            "bias": "head.bias",
            "activation": m.activation,
        }
    return cfg


def ort_check(model_path: Path, feeds: list, expected: list) -> float:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(model_path), so, providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    assert len(names) == len(feeds), (names, len(feeds))
    got = sess.run(None, dict(zip(names, feeds)))
    assert len(got) == len(expected), (len(got), len(expected))
    diff = 0.0
    for g, e in zip(got, expected):
        assert g.shape == e.shape, (g.shape, e.shape)
        diff = max(diff, float(np.max(np.abs(g.astype(np.float64) - e.astype(np.float64)))))
    return diff


def state_dict_check(d: Path, feeds: list, expected: list) -> float:
    """Rebuild the module from config.json + model.safetensors alone (no Case
    info) and compare with the stored torch outputs: proves the config schema
    carries everything a loader needs."""
    from safetensors.torch import load_file

    cfg = json.loads((d / "config.json").read_text())
    sd = load_file(str(d / "model.safetensors"))
    kw = dict(cell=cfg["cell"], input_size=cfg["input_size"],
              hidden_size=cfg["hidden_size"], num_layers=cfg["num_layers"],
              bidirectional=cfg["bidirectional"], batch_first=cfg["batch_first"],
              bias=cfg["bias"], nonlinearity=cfg.get("nonlinearity", "tanh"),
              proj_size=cfg.get("proj_size", 0))
    if "embedding" in cfg:
        kw["vocab"] = sd[cfg["embedding"]].shape[0]
    if "head" in cfg:
        kw["head_out"] = sd[cfg["head"]["weight"]].shape[0]
        kw["activation"] = cfg["head"]["activation"]
    cls = LstmStateNet if cfg["cell"] == "lstm" else StateNet
    m = cls(**kw).eval()
    m.load_state_dict(sd, strict=True)
    with torch.no_grad():
        got = m(*[torch.from_numpy(f) for f in feeds])
    return max(float(np.max(np.abs(g.numpy() - e))) for g, e in zip(got, expected))


def graph_io_ok(model: onnx.ModelProto, case: Case):
    inputs, outputs = io_names(case)
    init = {i.name for i in model.graph.initializer}
    gin = [i.name for i in model.graph.input if i.name not in init]
    gout = [o.name for o in model.graph.output]
    assert gin == inputs, (gin, inputs)
    assert gout == outputs, (gout, outputs)


def op_types(model: onnx.ModelProto) -> list:
    ops = set()

    def walk(g):
        for n in g.node:
            dom = n.domain if n.domain not in ("", "ai.onnx") else ""
            ops.add(f"{dom}:{n.op_type}" if dom else n.op_type)
            for a in n.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    walk(a.g)
                for sg in a.graphs:
                    walk(sg)

    walk(model.graph)
    for f in model.functions:  # local functions, if any
        ops.add(f"function:{f.domain}:{f.name}")
    return sorted(ops)


def model_opset(model: onnx.ModelProto) -> int:
    for o in model.opset_import:
        if o.domain in ("", "ai.onnx"):
            return o.version
    raise ValueError("no default-domain opset")


def generate(case: Case, out: Path) -> dict:
    d = out / case.name
    d.mkdir(parents=True)
    data = d / "test_data_set_0"
    data.mkdir()

    m = build(case)
    gen = torch.Generator().manual_seed(1000 + case.seed)
    args = make_inputs(case, m, case.batch, case.seq, gen)
    with torch.no_grad():
        res = m(*args)
    outs = list(res) if isinstance(res, tuple) else [res]
    outs = [o.detach().contiguous() for o in outs]
    in_names, out_names = io_names(case)
    np_in = [a.numpy() for a in args]
    np_out = [o.numpy().astype(np.float32) for o in outs]
    for i, (a, n) in enumerate(zip(np_in, in_names)):
        write_tensor(data / f"input_{i}.pb", a, n)
    for i, (o, n) in enumerate(zip(np_out, out_names)):
        write_tensor(data / f"output_{i}.pb", o, n)

    report = {"case": case.name, "exporter": case.exporter}
    meta = case_json(case)
    if case.exporter == "state_dict":
        from safetensors.torch import save_file

        sd = {k: v.detach().contiguous() for k, v in m.state_dict().items()}
        save_file(sd, str(d / "model.safetensors"))
        cfg = state_dict_config(case, m)
        (d / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
        report["keys"] = sorted(sd)
        report["reload_max_abs_diff"] = state_dict_check(d, np_in, np_out)
    else:
        if case.export_batch or case.export_seq:
            eg = torch.Generator().manual_seed(5000 + case.seed)
            exp_args = make_inputs(case, m, case.export_batch or case.batch,
                                   case.export_seq or case.seq, eg)
        else:
            exp_args = args
        model = export_onnx(case, m, exp_args)
        meta["opset"] = model_opset(model)
        graph_io_ok(model, case)
        onnx.checker.check_model(model)
        path = d / "model.onnx"
        if case.external_data:
            onnx.save_model(model, str(path), save_as_external_data=True,
                            all_tensors_to_one_file=True, location="model.onnx.data",
                            size_threshold=0)
        else:
            onnx.save_model(model, str(path))
        report["opset"] = meta["opset"]
        report["ops"] = op_types(model)
        report["ort_max_abs_diff"] = ort_check(path, np_in, np_out)
    (d / "case.json").write_text(json.dumps(meta, indent=2) + "\n")
    report["files"] = {str(p.relative_to(d)): p.stat().st_size
                       for p in sorted(d.rglob("*")) if p.is_file()}
    return report


# --------------------------------------------------------------------------
# The cases
# --------------------------------------------------------------------------

GRU_EMBED = dict(cell="gru", input_size=16, hidden_size=13, num_layers=2,
                 batch_first=True, vocab=37, head_out=37)
LSTM_BIDIR = dict(cell="lstm", input_size=13, hidden_size=37, num_layers=2,
                  bidirectional=True, batch_first=False)
RNN_TANH = dict(cell="rnn", input_size=8, hidden_size=13, num_layers=1,
                batch_first=True, nonlinearity="tanh", head_out=5)
RNN_RELU = dict(RNN_TANH, nonlinearity="relu")
GRU_BIDIR = dict(cell="gru", input_size=10, hidden_size=16, num_layers=1,
                 bidirectional=True, batch_first=False)
LSTM_LM = dict(cell="lstm", input_size=16, hidden_size=37, num_layers=1,
               batch_first=True, vocab=37, head_out=37, activation="log_softmax")
LSTM_SMALL = dict(cell="lstm", input_size=7, hidden_size=13, num_layers=1,
                  batch_first=True, head_out=4)
LSTM_STEP = dict(cell="lstm", input_size=6, hidden_size=11, num_layers=2,
                 batch_first=True, head_out=3)

DESC = {
    "gru_embed": "Embedding(37,16) -> GRU(16,13,num_layers=2,batch_first) -> Linear(13,37)",
    "lstm_bidir": "LSTM(13,37,num_layers=2,bidirectional) seq-first, no head",
    "rnn_tanh": "RNN(8,13,tanh,batch_first) -> Linear(13,5)",
    "rnn_relu": "RNN(8,13,relu,batch_first) -> Linear(13,5)",
    "gru_bidir": "GRU(10,16,bidirectional) seq-first, no head",
    "lstm_lm": "Embedding(37,16) -> LSTM(16,37,batch_first) -> Linear(37,37) -> LogSoftmax; "
               "forward(x) -> y, zero initial state inside the graph",
    "lstm_small": "LSTM(7,13,batch_first) -> Linear(13,4)",
    "lstm_step": "LSTM(6,11,num_layers=2,batch_first) -> Linear(11,3); single step T=1, batch 3",
}


def all_cases() -> list:
    c = []
    # --- legacy (TorchScript-based) exporter -----------------------------
    c += [
        Case("legacy_gru_embed_op14", "legacy", DESC["gru_embed"], GRU_EMBED,
             batch=2, seq=210, opset=14, seed=1),
        Case("legacy_lstm_bidir_op17", "legacy", DESC["lstm_bidir"], LSTM_BIDIR,
             batch=2, seq=64, opset=17, seed=2),
        Case("legacy_rnn_tanh_op14", "legacy", DESC["rnn_tanh"], RNN_TANH,
             batch=2, seq=200, opset=14, seed=3),
        Case("legacy_rnn_relu_op17", "legacy", DESC["rnn_relu"], RNN_RELU,
             batch=1, seq=200, opset=17, seed=4),
        Case("legacy_gru_bidir_op14", "legacy", DESC["gru_bidir"], GRU_BIDIR,
             batch=2, seq=50, opset=14, seed=5),
        Case("legacy_lstm_lm_nostate_op17", "legacy", DESC["lstm_lm"], LSTM_LM,
             stateful=False, batch=1, seq=256, opset=17, seed=6),
        Case("legacy_lstm_external_data_op17", "legacy",
             DESC["lstm_small"] + "; initializers in model.onnx.data", LSTM_SMALL,
             batch=2, seq=32, opset=17, external_data=True, seed=7),
        Case("legacy_lstm_step_b3_op14", "legacy", DESC["lstm_step"], LSTM_STEP,
             batch=3, seq=1, opset=14, seed=8, export_batch=2, export_seq=5),
    ]
    # --- dynamo (torch.export-based) exporter, default opset -----------------
    c += [
        Case("dynamo_gru_embed", "dynamo", DESC["gru_embed"], GRU_EMBED,
             batch=2, seq=210, seed=1),
        Case("dynamo_lstm_bidir", "dynamo", DESC["lstm_bidir"], LSTM_BIDIR,
             batch=2, seq=64, seed=2),
        Case("dynamo_rnn_tanh", "dynamo", DESC["rnn_tanh"], RNN_TANH,
             batch=2, seq=200, seed=3),
        Case("dynamo_rnn_relu", "dynamo", DESC["rnn_relu"], RNN_RELU,
             batch=2, seq=200, seed=4),
        Case("dynamo_gru_bidir", "dynamo", DESC["gru_bidir"], GRU_BIDIR,
             batch=2, seq=50, seed=5),
        Case("dynamo_lstm_lm_nostate", "dynamo", DESC["lstm_lm"], LSTM_LM,
             stateful=False, batch=2, seq=256, seed=6),
        Case("dynamo_lstm_step_b3", "dynamo", DESC["lstm_step"], LSTM_STEP,
             batch=3, seq=1, seed=8, export_batch=2, export_seq=5),
    ]
    # --- safetensors state_dict + config.json -------------------------------
    c += [
        Case("sd_gru_embed_head", "state_dict",
             "Embedding(37,16) -> GRU(16,13,num_layers=2,batch_first) -> Linear(13,37)",
             GRU_EMBED, batch=2, seq=210, seed=11),
        Case("sd_lstm_proj_bidir", "state_dict",
             "LSTM(13,13,num_layers=2,bidirectional,proj_size=5) seq-first, no head",
             dict(cell="lstm", input_size=13, hidden_size=13, num_layers=2,
                  bidirectional=True, batch_first=False, proj_size=5),
             batch=2, seq=40, seed=12),
        Case("sd_rnn_relu_softmax", "state_dict",
             "RNN(9,13,relu,batch_first) -> Linear(13,6) -> Softmax",
             dict(cell="rnn", input_size=9, hidden_size=13, num_layers=1,
                  batch_first=True, nonlinearity="relu", head_out=6,
                  activation="softmax"),
             batch=2, seq=220, seed=13),
        Case("sd_lstm_nobias", "state_dict",
             "LSTM(8,12,bias=False) seq-first, no head",
             dict(cell="lstm", input_size=8, hidden_size=12, num_layers=1,
                  batch_first=False, bias=False),
             batch=3, seq=200, seed=14),
    ]
    return c


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--only", default=None, help="only cases whose name contains this")
    ap.add_argument("--summary", type=Path, default=None,
                    help="also write the per-case report (ops, diffs, sizes) as JSON here")
    a = ap.parse_args()

    out: Path = a.out
    if a.only is None and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)

    print(f"torch {torch.__version__}, onnx {onnx.__version__}", flush=True)
    reports, failures = [], []
    for case in all_cases():
        if a.only and a.only not in case.name:
            continue
        if (out / case.name).exists():
            shutil.rmtree(out / case.name)
        try:
            r = generate(case, out)
        except Exception as e:  # keep going, report at the end
            shutil.rmtree(out / case.name, ignore_errors=True)
            failures.append((case.name, f"{type(e).__name__}: {e}"))
            print(f"[FAIL] {case.name}: {type(e).__name__}: {str(e)[:500]}", flush=True)
            continue
        reports.append(r)
        total = sum(r["files"].values())
        line = f"[ok] {case.name:34s} {total/1024:8.1f} KiB"
        if "ops" in r:
            line += f"  opset {r['opset']}  ort-vs-torch max|diff| {r['ort_max_abs_diff']:.3g}"
            line += f"\n     ops: {' '.join(r['ops'])}"
        if "reload_max_abs_diff" in r:
            line += f"  reload-from-config max|diff| {r['reload_max_abs_diff']:.3g}"
        print(line, flush=True)
    if a.summary:
        a.summary.write_text(json.dumps({"reports": reports, "failures": failures}, indent=1))
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"total {total/1024/1024:.2f} MiB in {out}")
    if failures:
        print(f"{len(failures)} case(s) failed:")
        for n, e in failures:
            print(f"  {n}: {e[:300]}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
