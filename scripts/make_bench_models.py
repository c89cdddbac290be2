"""The benchmark's models: one ONNX GRU or LSTM layer (input size = hidden size) with seeded random
weights, written to the directory given as the only argument. `cargo xtask bench` runs this at bench
time (the files are large and reproducible, so they are not committed).

Needs only `onnx` and `numpy` (scripts/requirements.txt). GRU uses linear_before_reset=1, as PyTorch
exports it. Inputs X [T, B, H], initial_h [1, B, H] (and initial_c); outputs Y, Y_h (and Y_c).

Next to each `<name>.onnx`, `<name>.keras.bin` holds the same weights in the layout of a Keras layer
(the benchmark page gives them to TF.js): kernel [input, gates·H], recurrent_kernel [H, gates·H],
bias, float32 little-endian, one after the other. Keras orders the gates i, f, c, o (LSTM; ONNX: i,
o, f, c) and z, r, h (GRU, as ONNX); its LSTM bias is Wb + Rb [4H], its reset_after GRU bias
[2, 3H] (Wb then Rb).
"""

import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SIZES = (64, 256, 512)


def make(cell: str, hidden: int, seed: int) -> tuple[onnx.ModelProto, bytes]:
    rng = np.random.default_rng(seed)
    gates = 3 if cell == "GRU" else 4
    bound = 1.0 / np.sqrt(hidden)

    def uniform(*shape):
        return rng.uniform(-bound, bound, size=shape).astype(np.float32)

    w, r, b = uniform(1, gates * hidden, hidden), uniform(1, gates * hidden, hidden), uniform(1, 2 * gates * hidden)
    inits = [numpy_helper.from_array(w, "W"), numpy_helper.from_array(r, "R"), numpy_helper.from_array(b, "B")]
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
    return model, keras_weights(cell, w[0], r[0], b[0])


def keras_weights(cell: str, w: np.ndarray, r: np.ndarray, b: np.ndarray) -> bytes:
    """ONNX W [gates·H, input], R [gates·H, H], B [2·gates·H] as a Keras layer's weights (see above)."""
    gates = 4 if cell == "LSTM" else 3
    order = [0, 2, 3, 1] if cell == "LSTM" else [0, 1, 2]  # Keras's gate k is ONNX's gate order[k]

    def reorder(m: np.ndarray) -> np.ndarray:
        blocks = np.split(m, gates)  # gate blocks along the first axis
        return np.concatenate([blocks[k] for k in order])

    wb, rb = np.split(b, 2)
    bias = reorder(wb + rb) if cell == "LSTM" else np.stack([wb, rb])
    parts = [reorder(w).T, reorder(r).T, bias]
    return b"".join(np.ascontiguousarray(p, dtype="<f4").tobytes() for p in parts)


def main() -> None:
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for seed, (cell, hidden) in enumerate((c, h) for c in ("GRU", "LSTM") for h in SIZES):
        path = os.path.join(out, f"{cell.lower()}_h{hidden}")
        model, weights = make(cell, hidden, seed)
        onnx.save(model, path + ".onnx")
        with open(path + ".keras.bin", "wb") as f:
            f.write(weights)
        print(path + ".onnx")


if __name__ == "__main__":
    main()
