"""The benchmark's models: one ONNX GRU or LSTM layer (input size = hidden size) with seeded random
weights, written to the directory given as the only argument. `cargo xtask bench` runs this at bench
time (the files are large and reproducible, so they are not committed).

Needs only `onnx` and `numpy` (scripts/requirements.txt). GRU uses linear_before_reset=1, as PyTorch
exports it. Inputs X [T, B, H], initial_h [1, B, H] (and initial_c); outputs Y, Y_h (and Y_c).
"""

import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SIZES = (64, 256, 512)


def make(cell: str, hidden: int, seed: int) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    gates = 3 if cell == "GRU" else 4
    bound = 1.0 / np.sqrt(hidden)

    def uniform(*shape):
        return rng.uniform(-bound, bound, size=shape).astype(np.float32)

    inits = [
        numpy_helper.from_array(uniform(1, gates * hidden, hidden), "W"),
        numpy_helper.from_array(uniform(1, gates * hidden, hidden), "R"),
        numpy_helper.from_array(uniform(1, 2 * gates * hidden), "B"),
    ]
    state = ["initial_h"] + (["initial_c"] if cell == "LSTM" else [])
    outputs = ["Y", "Y_h"] + (["Y_c"] if cell == "LSTM" else [])
    attrs = {"hidden_size": hidden}
    if cell == "GRU":
        attrs["linear_before_reset"] = 1
    node = helper.make_node(cell, ["X", "W", "R", "B", ""] + state, outputs, name="rnn", **attrs)
    dims = {"X": ["T", "N", hidden], "initial_h": [1, "N", hidden], "initial_c": [1, "N", hidden]}
    out_dims = {"Y": ["T", 1, "N", hidden], "Y_h": [1, "N", hidden], "Y_c": [1, "N", hidden]}
    graph = helper.make_graph(
        [node],
        f"{cell.lower()}_h{hidden}",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, dims[n]) for n in ["X"] + state],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, out_dims[n]) for n in outputs],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def main() -> None:
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for seed, (cell, hidden) in enumerate((c, h) for c in ("GRU", "LSTM") for h in SIZES):
        path = os.path.join(out, f"{cell.lower()}_h{hidden}.onnx")
        onnx.save(make(cell, hidden, seed), path)
        print(path)


if __name__ == "__main__":
    main()
