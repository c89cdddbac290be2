#!/usr/bin/env python3
"""Writes ONNX backend-suite node cases into tests/data/onnx-node-ops/ for the given operators.

The cases copied from shared/onnx-node-ops were made the same way, by
`onnx.backend.test.case.node.collect_testcases(op)` of onnx 1.23.2 (scripts/requirements.txt);
this script adds operators that the shared set does not have (DequantizeLinear). Layout as there:
test_<name>/model.onnx and test_data_set_0/{input,output}_N.pb.

  python3 scripts/make_node_ops.py DequantizeLinear
"""

import sys
import warnings
from pathlib import Path

import onnx
from onnx.backend.test.case.node import collect_testcases

T = onnx.TensorProto
SUPPORTED = {T.FLOAT, T.UINT8, T.INT8, T.UINT16, T.INT16, T.INT32, T.INT64, T.FLOAT16, T.DOUBLE, T.BOOL}
OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "onnx-node-ops"


def main(ops):
    assert onnx.__version__ == "1.23.2", f"onnx {onnx.__version__}: the committed cases come from 1.23.2"
    for op in ops:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cases = collect_testcases(op)
        for case in cases:
            # Element types this runtime reads (float8, 4- and 2-bit types are refused at load).
            elems = [v.type.tensor_type.elem_type for v in list(case.model.graph.input) + list(case.model.graph.output)]
            if any(e not in SUPPORTED for e in elems):
                print(f"{case.name}: skipped (element types {elems})")
                continue
            d = OUT / case.name
            ds = d / "test_data_set_0"
            ds.mkdir(parents=True, exist_ok=True)
            onnx.save(case.model, d / "model.onnx")
            inputs, outputs = case.data_sets[0]
            for kind, infos, values in (("input", case.model.graph.input, inputs), ("output", case.model.graph.output, outputs)):
                for i, (info, value) in enumerate(zip(infos, values)):
                    (ds / f"{kind}_{i}.pb").write_bytes(onnx.numpy_helper.from_array(value, info.name).SerializeToString())
            print(case.name)


if __name__ == "__main__":
    main(sys.argv[1:] or ["DequantizeLinear"])
