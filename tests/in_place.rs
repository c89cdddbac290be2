//! Elementwise chains on the hot path allocate nothing: each operator that can (the arithmetic, the
//! unary functions, Clip, PRelu, Min/Max, Pow, same-type Cast, the reshapes) computes in the buffer
//! of an input it is the last reader of, so a chain's output lies in its input's buffer. The values
//! stay those of the allocating path (checked against an element-by-element reference).

use prost::Message;
use webrnn::onnx::proto::{
    Dimension, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorShapeProto, TypeProto, TypeProtoTensor,
    ValueInfoProto,
};
use webrnn::{onnx, Model, Tensor};

fn value(name: &str, dims: &[i64]) -> ValueInfoProto {
    let dim = dims.iter().map(|&d| Dimension { dim_value: Some(d), dim_param: None }).collect();
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeProtoTensor { elem_type: 1, shape: Some(TensorShapeProto { dim }) }),
        }),
    }
}

fn node(op: &str, inputs: &[&str], output: &str) -> NodeProto {
    NodeProto {
        op_type: op.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        name: output.into(),
        ..Default::default()
    }
}

/// X [2, 3, 4] through `nodes` (the last one writes `y`), with constants `b` [4], `col` [3, 1],
/// `s` (a scalar 2) and `lo`/`hi` (Clip's bounds).
fn model(nodes: Vec<NodeProto>) -> Model {
    let t =
        |name: &str, shape: Vec<usize>, v: Vec<f32>| onnx::encode_tensor(&Tensor::from_f32(shape, v).unwrap(), name);
    let init = [
        t("b", vec![4], vec![0.5, -1.0, 2.0, 0.25]),
        t("col", vec![3, 1], vec![1.5, -0.5, 3.0]),
        t("s", vec![], vec![2.0]),
        t("lo", vec![], vec![-4.0]),
        t("hi", vec![], vec![6.0]),
    ];
    let graph = GraphProto {
        node: nodes,
        name: "chain".into(),
        initializer: init.iter().map(|b| onnx::proto::TensorProto::decode(&b[..]).unwrap()).collect(),
        input: vec![value("x", &[2, 3, 4])],
        output: vec![value("y", &[2, 3, 4])],
        ..Default::default()
    };
    let m = ModelProto {
        ir_version: 8,
        graph: Some(graph),
        opset_import: vec![OperatorSetIdProto { domain: String::new(), version: 17 }],
        ..Default::default()
    };
    Model::from_onnx(&m.encode_to_vec()).unwrap()
}

fn input() -> Tensor {
    Tensor::from_f32(vec![2, 3, 4], (0..24).map(|i| i as f32 * 0.37 - 4.0).collect()).unwrap()
}

#[test]
fn an_elementwise_chain_runs_in_its_input_buffer() {
    let m = model(vec![
        node("Add", &["b", "x"], "a"), // input 1 taken over (Add commutes)
        node("Mul", &["a", "col"], "m"),
        node("Sub", &["m", "s"], "d"),
        node("Clip", &["d", "lo", "hi"], "c"),
        node("Abs", &["c"], "e"),
        node("Pow", &["e", "s"], "p"),
        node("Max", &["p", "b"], "mx"),
        node("Div", &["mx", "col"], "y"),
    ]);
    let x = input();
    let want: Vec<f32> = x
        .as_f32()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let (b, col) = ([0.5, -1.0, 2.0, 0.25][i % 4], [1.5, -0.5, 3.0][(i / 4) % 3]);
            let c: f32 = ((b + v) * col - 2.0).clamp(-4.0, 6.0);
            (c.abs() * c.abs()).max(b) / col
        })
        .collect();
    let at = x.as_f32().unwrap().as_ptr();
    let y = m.run_graph(vec![x]).unwrap().remove(0);
    assert_eq!(y.shape(), &[2, 3, 4]);
    assert_eq!(y.as_f32().unwrap(), &want[..]);
    assert_eq!(y.as_f32().unwrap().as_ptr(), at, "the chain's output is not in its input's buffer");
}

#[test]
fn an_input_read_twice_or_broadcast_wider_is_not_overwritten() {
    // `x` has two readers: the first must not compute in its buffer.
    let m = model(vec![node("Add", &["x", "b"], "a"), node("Mul", &["a", "x"], "y")]);
    let x = input();
    let want: Vec<f32> =
        x.as_f32().unwrap().iter().enumerate().map(|(i, &v)| (v + [0.5, -1.0, 2.0, 0.25][i % 4]) * v).collect();
    let y = m.run_graph(vec![x]).unwrap().remove(0);
    assert_eq!(y.as_f32().unwrap(), &want[..]);
    // A smaller left operand of a non-commuting operator broadcasts into a new buffer.
    let m = model(vec![node("Sub", &["b", "x"], "y")]);
    let x = input();
    let want: Vec<f32> =
        x.as_f32().unwrap().iter().enumerate().map(|(i, &v)| [0.5, -1.0, 2.0, 0.25][i % 4] - v).collect();
    let at = x.as_f32().unwrap().as_ptr();
    let y = m.run_graph(vec![x]).unwrap().remove(0);
    assert_eq!(y.as_f32().unwrap(), &want[..]);
    assert_ne!(y.as_f32().unwrap().as_ptr(), at);
}
