//! A small GRU in ONNX, built in memory, for `Runtime.loadModel`'s warm-up: browsers compile a
//! wasm function the first time it is called, so the first load and the first step of a page's
//! model pay for compiling the importer, the planner and the kernels (about 20 ms each in
//! Chromium). Loading and stepping this model while the real model's bytes are still on the network
//! moves that compiling into time the page spends waiting anyway. The model has the shape of a
//! PyTorch/Keras export (`X`, `initial_h` → GRU → `Y`, `Y_h`), fixed weights.

/// Units of the warm-up GRU (and the size of its input).
pub const WARM_UP_UNITS: usize = 64;

/// Protobuf wire format, written by hand: prost's encoders for the model's messages would add
/// about 4.6 KiB gzipped to the package for this alone.
struct Writer(Vec<u8>);

impl Writer {
    #[inline(never)]
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push(v as u8 | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    /// A varint field (wire type 0). Not inlined, nor are the others: this runs once, small wins.
    #[inline(never)]
    fn int(&mut self, field: u64, v: i64) -> &mut Self {
        self.varint(field << 3);
        self.varint(v as u64);
        self
    }

    /// A length-delimited field (wire type 2): bytes, a string or a message.
    #[inline(never)]
    fn bytes(&mut self, field: u64, b: &[u8]) -> &mut Self {
        self.varint(field << 3 | 2);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
        self
    }

    /// A nested message (`dyn`: one copy of this for every message, not one per closure).
    #[inline(never)]
    fn message(&mut self, field: u64, build: &mut dyn FnMut(&mut Writer)) -> &mut Self {
        let mut inner = Writer(Vec::new());
        build(&mut inner);
        self.bytes(field, &inner.0)
    }
}

/// A float tensor's `ValueInfoProto` (name 1, type 2 → tensor_type 1 → elem_type 1, shape 2 → dim
/// 1 → dim_value 1 or dim_param 2).
fn value(w: &mut Writer, field: u64, name: &str, dims: &[Result<i64, &str>]) {
    w.message(field, &mut |v| {
        v.bytes(1, name.as_bytes()).message(2, &mut |t| {
            t.message(1, &mut |tt| {
                tt.int(1, FLOAT).message(2, &mut |shape| {
                    for d in dims {
                        shape.message(1, &mut |dim| match d {
                            Ok(n) => {
                                dim.int(1, *n);
                            }
                            Err(p) => {
                                dim.bytes(2, p.as_bytes());
                            }
                        });
                    }
                });
            });
        });
    });
}

const FLOAT: i64 = 1;
const ATTR_INT: i64 = 2;

/// The warm-up model's ONNX bytes: one GRU layer of [`WARM_UP_UNITS`] units, every weight the same.
pub fn gru_model() -> Vec<u8> {
    let h = WARM_UP_UNITS as i64;
    let mut model = Writer(Vec::new());
    model.int(1, 7).bytes(2, b"webrnn warm-up");
    model.message(7, &mut |g| {
        // NodeProto: input 1, output 2, name 3, op_type 4, attribute 5 (name 1, i 3, type 20).
        g.message(1, &mut |n| {
            for input in ["X", "W", "R", "B", "", "initial_h"] {
                n.bytes(1, input.as_bytes());
            }
            n.bytes(2, b"Y").bytes(2, b"Y_h").bytes(3, b"gru").bytes(4, b"GRU");
            for (name, i) in [("hidden_size", h), ("linear_before_reset", 1)] {
                n.message(5, &mut |a| {
                    a.bytes(1, name.as_bytes()).int(3, i).int(20, ATTR_INT);
                });
            }
        });
        g.bytes(2, b"warm-up");
        // TensorProto initializers: dims 1 (packed), data_type 2, name 8, raw_data 9.
        let (gates, biases) = ([1, 3 * h, h], [1, 6 * h]);
        for (name, dims) in [("W", &gates[..]), ("R", &gates[..]), ("B", &biases[..])] {
            let n: i64 = dims.iter().product();
            // Every weight and bias 0.0115 (the bytes 3c 3c 3c 3c): the warm-up computes, the kernels do
            // not look at the values, and a fill is the least code.
            let raw = vec![0x3c_u8; n as usize * 4];
            g.message(5, &mut |t| {
                for &d in dims {
                    t.int(1, d);
                }
                t.int(2, FLOAT).bytes(8, name.as_bytes()).bytes(9, &raw);
            });
        }
        value(g, 11, "X", &[Err("T"), Err("N"), Ok(h)]);
        value(g, 11, "initial_h", &[Ok(1), Err("N"), Ok(h)]);
        value(g, 12, "Y", &[Err("T"), Ok(1), Err("N"), Ok(h)]);
        value(g, 12, "Y_h", &[Ok(1), Err("N"), Ok(h)]);
    });
    // OperatorSetIdProto: domain 1 (empty: the default), version 2.
    model.message(8, &mut |o| {
        o.int(2, 14);
    });
    model.0
}

#[cfg(test)]
mod tests {
    use crate::{Backend, Data, Model};

    #[test]
    fn the_warm_up_model_loads_and_steps_alike_on_every_cpu_backend() {
        let bytes = super::gru_model();
        let m: crate::onnx::proto::ModelProto = prost::Message::decode(&bytes[..]).unwrap();
        let g = m.graph.unwrap();
        assert_eq!((m.ir_version, m.opset_import[0].version, g.node[0].op_type.as_str()), (7, 14, "GRU"));
        assert_eq!(
            g.initializer.iter().map(|t| t.dims.clone()).collect::<Vec<_>>(),
            [vec![1, 192, 64], vec![1, 192, 64], vec![1, 384]]
        );
        let x = Data::F32((0..64).map(|i| i as f32 / 64.0 - 0.5).collect());
        let mut outs = Vec::new();
        for backend in ["cpu", "cpu-scalar"] {
            let model = Model::from_onnx(&bytes).unwrap().with_backend(Backend::parse(backend).unwrap()).unwrap();
            let mut s = model.create_session().unwrap();
            s.step(vec![x.clone()]).unwrap();
            let y = s.step(vec![x.clone()]).unwrap()[0].as_f32().unwrap().to_vec();
            assert_eq!(y.len(), super::WARM_UP_UNITS);
            assert!(y.iter().all(|v| v.is_finite()) && y.iter().any(|&v| v.abs() > 1e-3), "{y:?}");
            outs.push(y);
        }
        for (a, b) in outs[0].iter().zip(&outs[1]) {
            assert!((a - b).abs() <= 1e-5 + 1e-4 * b.abs(), "{a} vs {b}");
        }
    }
}
