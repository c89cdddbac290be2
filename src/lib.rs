//! # webrnn
//!
//! Recurrent sequence models (GRU, LSTM, vanilla RNN) for the browser and native code.
//!
//! * [`Model`] loads an ONNX file as `torch.onnx.export` writes it (both exporters), or a PyTorch
//!   `state_dict` in safetensors with a small JSON config ([`state_dict`]).
//! * [`Model::run_graph`] executes the graph as ONNX defines it (the conformance path).
//! * [`Session`] carries one user's recurrent state from call to call: the runtime finds which graph
//!   inputs are initial states and which outputs are final states, so callers feed only real inputs.
//! * [`cell`] is the scalar reference of the ONNX `RNN`/`GRU`/`LSTM` operators: the specification in
//!   code, against which every faster backend is tested.
//!
//! ```no_run
//! # fn main() -> webrnn::Result<()> {
//! let bytes = std::fs::read("model.onnx").unwrap();
//! let model = webrnn::Model::from_onnx(&bytes)?;
//! let mut session = model.create_session()?;
//! let step_len = model.session_plan()?.inputs[0].step_len();
//! let y = session.step(vec![webrnn::Data::F32(vec![0.0; step_len])])?;
//! println!("{:?}", y[0].as_f32()?);
//! # Ok(()) }
//! ```

pub mod adapt;
pub mod backend;
pub mod budget;
pub mod cell;
pub mod cpu;
pub mod error;
#[cfg(feature = "gpu")]
pub mod gpu;
pub mod graph;
pub mod model;
pub mod onnx;
pub mod ops;
pub mod session;
pub mod snapshot;
pub mod state_dict;
pub mod tensor;
#[cfg(target_arch = "wasm32")]
pub mod wasm;

pub use adapt::{AdaptOptions, Adaptation, Target};
pub use backend::Backend;
pub use error::{Error, Result};
pub use model::{LoadOptions, Model, Placement, SessionPlan};
pub use session::Session;
pub use tensor::{DType, Data, Tensor};
