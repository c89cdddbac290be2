#!/usr/bin/env python3
"""Weight-only int8 quantization of an ONNX model, in standard ONNX (no custom operator).

Every float32 weight with at least --min-elements elements (an initializer, or a Constant node's
tensor, in the main graph and in If/Loop/Scan subgraphs) becomes an int8 tensor plus a per-row
float scale, and a DequantizeLinear node that gives the old name its float value back:

    w[r, ...] ~= scale[r] * q[r, ...],  q = round(w / scale) in -127..127,  scale[r] = max|w[r, ...]| / 127

(symmetric, zero point 0, one scale per slice along axis 0: the output channel of a Conv weight,
the gate row of an LSTM/GRU weight). Models below opset 13 get one scale per tensor, the only
form DequantizeLinear has there. Nothing else in the graph changes: activations stay float, and
any runtime that reads ONNX runs the file (onnxruntime; webrnn folds the DequantizeLinear nodes
once at load, so its kernels and speed are those of the float model).

What it is for: the file is about a quarter of the float one (Silero VAD 16k: 1,289,603 ->
about 330 kB, gzipped 1.09 MB -> about 0.28 MB), for pages where the model's download matters. What
it costs: the weights are rounded to 8 bits, so outputs move (for Silero VAD, speech probabilities
by up to about 1e-2; scripts/make_realworld.py measures it against the float model and
tests/data/realworld/README.md records it). It is a different model: validate it on your data.

  python3 scripts/quantize_weights.py model.onnx model_int8.onnx [--min-elements 1024]

Needs the onnx and numpy packages (scripts/requirements-realworld.txt).
"""

import argparse
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper


def quantize_array(w, per_row):
    """(q int8, scale float32) with w ~= scale * q; scale per slice along axis 0 or one for all."""
    w = w.astype(np.float32)
    if per_row and w.ndim >= 1:
        amax = np.abs(w.reshape(w.shape[0], -1)).max(axis=1)
    else:
        amax = np.array(np.abs(w).max(), np.float32)
    scale = (amax / 127.0).astype(np.float32)
    safe = np.where(scale > 0, scale, 1.0).astype(np.float32)
    shaped = safe.reshape((-1,) + (1,) * (w.ndim - 1)) if per_row and w.ndim >= 1 else safe
    q = np.clip(np.rint(w / shaped), -127, 127).astype(np.int8)
    return q, scale


class Quantizer:
    def __init__(self, min_elements, per_row):
        self.min_elements = min_elements
        self.per_row = per_row
        self.count = 0
        self.before = 0
        self.after = 0

    def eligible(self, t):
        return t.data_type == onnx.TensorProto.FLOAT and int(np.prod(t.dims)) >= self.min_elements

    def dequantize_nodes(self, name, w):
        """The int8, scale and zero-point tensors for `w` and the DequantizeLinear node giving `name`."""
        q, scale = quantize_array(w, self.per_row)
        zp = np.zeros(scale.shape, np.int8)
        self.count += 1
        self.before += w.size * 4
        self.after += q.size + scale.size * 5
        tensors = [numpy_helper.from_array(q, f"{name}_quantized"), numpy_helper.from_array(scale, f"{name}_scale"),
                   numpy_helper.from_array(zp, f"{name}_zero_point")]
        attrs = {"axis": 0} if self.per_row and w.ndim >= 1 else {}
        node = helper.make_node("DequantizeLinear", [t.name for t in tensors], [name],
                                name=f"{name}_DequantizeLinear", **attrs)
        return tensors, node

    def graph(self, g):
        new_nodes = []
        kept_inits = []
        for init in g.initializer:
            if self.eligible(init):
                tensors, node = self.dequantize_nodes(init.name, numpy_helper.to_array(init))
                kept_inits.extend(tensors)
                new_nodes.append(node)
            else:
                kept_inits.append(init)
        del g.initializer[:]
        g.initializer.extend(kept_inits)
        # A graph input that shadows an initializer (IR < 4 style) would now shadow nothing: drop it.
        dequantized = {n.output[0] for n in new_nodes}
        inputs = [i for i in g.input if i.name not in dequantized]
        del g.input[:]
        g.input.extend(inputs)
        for node in g.node:
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.GRAPH:
                    self.graph(attr.g)
                elif attr.type == onnx.AttributeProto.GRAPHS:
                    for sub in attr.graphs:
                        self.graph(sub)
            value = next((a for a in node.attribute if a.name == "value"), None)
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx") and value is not None \
                    and value.type == onnx.AttributeProto.TENSOR and self.eligible(value.t):
                tensors, dq = self.dequantize_nodes(node.output[0], numpy_helper.to_array(value.t))
                for t in tensors:
                    new_nodes.append(helper.make_node("Constant", [], [t.name], name=f"{t.name}_Constant", value=t))
                new_nodes.append(dq)
            else:
                new_nodes.append(node)
        del g.node[:]
        g.node.extend(new_nodes)


def opset_of(model):
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def quantize(model, min_elements=1024):
    """Quantizes `model` (an onnx.ModelProto) in place; returns (tensors, float bytes, quantized bytes)."""
    opset = opset_of(model)
    if opset < 10:
        raise ValueError(f"DequantizeLinear needs opset 10 or later, the model has {opset}")
    q = Quantizer(min_elements, per_row=opset >= 13)
    q.graph(model.graph)
    onnx.checker.check_model(model)
    return q.count, q.before, q.after


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--min-elements", type=int, default=1024,
                    help="quantize float weights with at least this many elements (default 1024)")
    args = ap.parse_args()
    model = onnx.load(args.input)
    count, before, after = quantize(model, args.min_elements)
    if count == 0:
        print(f"no float32 weight has {args.min_elements} elements or more: nothing to quantize", file=sys.stderr)
        return 1
    onnx.save(model, args.output)
    print(f"{count} weights: {before} -> {after} bytes; wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
