//! `webrnn` — inspect and run recurrent models from the command line.
//!
//! ```text
//! webrnn inspect MODEL [--config CONFIG.json] [--backend ...] [--input NAME=VALUE]... [--state INPUT=OUTPUT]...
//! webrnn run MODEL [--config CONFIG.json] [--backend cpu|cpu-int8|cpu-scalar|gpu] [--input NAME=VALUE]...
//!     --out-dir DIR INPUT.pb...
//! ```
//! `--input sr=16000` fixes a graph input at load (numbers, comma-separated for a vector; the
//! graph is folded around it); `--state a=b` declares that output `b` feeds input `a` next call.
//! MODEL is an `.onnx` file (external data is read from beside it) or a `.safetensors` state dict
//! (its config from `--config`, else `config.json` beside it). On failure: one line on stderr and
//! exit status 1.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// `writeln!` into the report string (writing to a String cannot fail).
macro_rules! p {
    ($o:expr, $($arg:tt)*) => {{ let _ = writeln!($o, $($arg)*); }};
}
use std::process::ExitCode;

use webrnn::graph::{Op, ValueDecl};
use webrnn::{onnx, Backend, Error, LoadOptions, Model, Result, Tensor};

const USAGE: &str = "usage: webrnn inspect MODEL [--config CONFIG.json] [--backend cpu|cpu-int8|cpu-scalar|gpu] [--input NAME=VALUE]... [--state INPUT=OUTPUT]...\n       webrnn run MODEL [--config CONFIG.json] [--backend cpu|cpu-int8|cpu-scalar|gpu] [--input NAME=VALUE]... --out-dir DIR INPUT.pb...";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match real_main(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("webrnn: {}", e.to_string().replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}

struct Args {
    model: PathBuf,
    config: Option<PathBuf>,
    backend: Backend,
    out_dir: Option<PathBuf>,
    inputs: Vec<PathBuf>,
    options: LoadOptions,
}

/// `NAME=VALUE`: `VALUE` one number or several, comma-separated (integers read as int64).
fn fixed_input(spec: &str) -> Result<(String, Tensor)> {
    let (name, value) =
        spec.split_once('=').ok_or_else(|| Error::InvalidArgument(format!("--input {spec}: expected NAME=VALUE")))?;
    let parts: Vec<&str> = value.split(',').map(str::trim).collect();
    let bad = || Error::InvalidArgument(format!("--input {spec}: '{value}' is not a list of numbers"));
    let t = if parts.iter().all(|p| p.parse::<i64>().is_ok()) {
        let v: Vec<i64> = parts.iter().map(|p| p.parse().map_err(|_| bad())).collect::<Result<_>>()?;
        if v.len() == 1 {
            Ok(Tensor::scalar_i64(v[0]))
        } else {
            Tensor::from_i64(vec![v.len()], v)
        }
    } else {
        let v: Vec<f32> = parts.iter().map(|p| p.parse().map_err(|_| bad())).collect::<Result<_>>()?;
        if v.len() == 1 {
            Tensor::from_f32(vec![], v)
        } else {
            Tensor::from_f32(vec![v.len()], v)
        }
    }?;
    Ok((name.to_string(), t))
}

fn parse(args: &[String]) -> Result<Args> {
    let mut it = args.iter();
    let mut a = Args {
        model: PathBuf::new(),
        config: None,
        backend: Backend::Cpu,
        out_dir: None,
        inputs: vec![],
        options: LoadOptions::default(),
    };
    let mut positional = Vec::new();
    while let Some(s) = it.next() {
        let mut value =
            |flag: &str| it.next().cloned().ok_or_else(|| Error::InvalidArgument(format!("{flag} needs a value")));
        match s.as_str() {
            "--config" => a.config = Some(value("--config")?.into()),
            "--backend" => a.backend = Backend::parse(&value("--backend")?)?,
            "--out-dir" => a.out_dir = Some(value("--out-dir")?.into()),
            "--input" => a.options.inputs.push(fixed_input(&value("--input")?)?),
            "--state" => {
                let v = value("--state")?;
                let (i, o) = v
                    .split_once('=')
                    .ok_or_else(|| Error::InvalidArgument(format!("--state {v}: expected INPUT=OUTPUT")))?;
                a.options.state.push((i.to_string(), o.to_string()));
            }
            "-h" | "--help" => return Err(Error::InvalidArgument(USAGE.replace('\n', " | "))),
            f if f.starts_with("--") => return Err(Error::InvalidArgument(format!("unknown option {f}"))),
            p => positional.push(PathBuf::from(p)),
        }
    }
    let mut pos = positional.into_iter();
    a.model =
        pos.next().ok_or_else(|| Error::InvalidArgument(format!("missing MODEL; {}", USAGE.replace('\n', " | "))))?;
    a.inputs = pos.collect();
    Ok(a)
}

fn load(path: &Path, config: Option<&Path>, options: &LoadOptions) -> Result<Model> {
    if path.extension().is_some_and(|e| e == "safetensors") {
        let cfg_path = config.map(Path::to_path_buf).unwrap_or_else(|| path.with_file_name("config.json"));
        let cfg = std::fs::read_to_string(&cfg_path).map_err(|e| Error::Io(format!("{}: {e}", cfg_path.display())))?;
        let bytes = std::fs::read(path).map_err(|e| Error::Io(format!("{}: {e}", path.display())))?;
        Model::from_safetensors(&bytes, &cfg)
    } else {
        Model::from_onnx_file_with(path, options)
    }
}

fn real_main(args: &[String]) -> Result<()> {
    let Some((cmd, rest)) = args.split_first() else {
        return Err(Error::InvalidArgument(USAGE.replace('\n', " | ")));
    };
    match cmd.as_str() {
        "inspect" => inspect(&parse(rest)?),
        "run" => run(&parse(rest)?),
        other => Err(Error::InvalidArgument(format!("unknown command '{other}'; {}", USAGE.replace('\n', " | ")))),
    }
}

fn fmt_decl(d: &ValueDecl) -> String {
    let dims = match &d.dims {
        Some(dims) => {
            let v: Vec<String> = dims.iter().map(|x| x.map_or("?".into(), |n| n.to_string())).collect();
            format!("[{}]", v.join(", "))
        }
        None => "[unknown rank]".into(),
    };
    format!("{} {} {}", d.name, d.dtype.map_or("?", |t| t.name()), dims)
}

fn inspect(a: &Args) -> Result<()> {
    let mut o = String::new();
    let is_onnx = a.model.extension().is_none_or(|e| e != "safetensors");
    if is_onnx {
        let bytes = std::fs::read(&a.model).map_err(|e| Error::Io(format!("{}: {e}", a.model.display())))?;
        let bad = onnx::unsupported_nodes(&bytes)?;
        if !bad.is_empty() {
            p!(o, "unsupported:");
            for (op, node) in &bad {
                p!(o, "  {op} (node '{node}')");
            }
        }
    }
    // What is unsupported is printed even when loading then fails because of it.
    std::io::stdout().write_all(o.as_bytes()).map_err(|e| Error::Io(format!("stdout: {e}")))?;
    o.clear();
    let model = load(&a.model, a.config.as_deref(), &a.options)?;
    match model.source() {
        webrnn::model::Source::Onnx(i) => {
            p!(o, "format: ONNX, opset {}, IR {}, producer '{}'", i.opset, i.ir_version, i.producer)
        }
        webrnn::model::Source::StateDict => p!(o, "format: PyTorch state_dict (safetensors)"),
    }
    p!(o, "fingerprint: {}", model.fingerprint_hex());
    let g = model.graph();
    p!(o, "inputs:");
    g.inputs.iter().for_each(|d| p!(o, "  {}", fmt_decl(d)));
    p!(o, "outputs:");
    g.outputs.iter().for_each(|d| p!(o, "  {}", fmt_decl(d)));
    p!(o, "layers:");
    for (_, n, s) in g.recurrent_nodes() {
        let acts: Vec<String> = s.activations.iter().map(|a| format!("{a:?}")).collect();
        let extra = match s.cell {
            webrnn::cell::CellKind::Gru { linear_before_reset } => {
                format!(", linear_before_reset={}", linear_before_reset as u8)
            }
            webrnn::cell::CellKind::Lstm { input_forget } => {
                format!(", input_forget={}", input_forget as u8)
            }
            webrnn::cell::CellKind::Rnn => String::new(),
        };
        let w = n.inputs.get(1).copied().flatten().and_then(|v| g.constants[v].as_ref());
        let input_size = w.map_or("?".to_string(), |w| w.shape().get(2).map_or("?".into(), |s| s.to_string()));
        p!(
            o,
            "  {} '{}': {} hidden={} input={}{} layout={} activations=[{}]{}",
            s.cell.op_name(),
            n.name,
            s.direction.name(),
            s.hidden_size,
            input_size,
            extra,
            s.layout,
            acts.join(", "),
            s.clip.map_or(String::new(), |c| format!(" clip={c}"))
        );
    }
    let others: Vec<&str> = g.nodes.iter().filter(|n| !matches!(n.op, Op::Recurrent(_))).map(|n| n.op.name()).collect();
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for o in others {
        match counts.iter_mut().find(|(n, _)| *n == o) {
            Some(c) => c.1 += 1,
            None => counts.push((o, 1)),
        }
    }
    let ops: Vec<String> = counts.iter().map(|(n, c)| format!("{n}×{c}")).collect();
    p!(o, "other ops: {}", if ops.is_empty() { "none".into() } else { ops.join(", ") });
    if let Ok(m) = model.with_backend(a.backend) {
        p!(o, "placement on {}:", a.backend.name());
        for pl in m.placement() {
            let what = if pl.node.is_empty() { pl.op } else { format!("{} '{}'", pl.op, pl.node) };
            p!(o, "  {what}: {}", pl.device);
        }
    }
    match model.session_plan() {
        Ok(p) if p.calls.is_some() => {
            let Some(c) = p.calls.as_ref() else { return Err(Error::InvalidModel("no call plan".into())) };
            let (inputs, states, outputs) = (&c.inputs, &c.states, &c.outputs);
            p!(o, "sessions: called chunk by chunk (one graph call per step, batch 1), state in graph tensors");
            for i in inputs {
                let dims: Vec<String> = i.dims.iter().map(|d| d.map_or("n".into(), |d| d.to_string())).collect();
                p!(o, "  input to feed {}: [{}]", i.name, dims.join(", "));
            }
            for s in states {
                p!(o, "  state {} <- {}: {:?}", s.input_name, s.output_name, s.shape);
            }
            for &i in outputs {
                p!(o, "  output {}", g.outputs[i].name);
            }
            p!(o, "  state: {} float(s) per session", p.state_len());
        }
        Ok(p) => {
            p!(
                o,
                "sessions: {}",
                if p.streamable { "streamable (step and run)" } else { "run only (a layer runs backwards)" }
            );
            for i in &p.inputs {
                p!(
                    o,
                    "  real input {}: time axis {}, batch axis {}, {} value(s) per step",
                    i.name,
                    i.time_axis,
                    i.batch_axis,
                    i.step_len()
                );
            }
            for &i in &p.state_inputs {
                p!(o, "  state input {}", g.inputs[i].name);
            }
            for out in &p.outputs {
                p!(
                    o,
                    "  output {}: time axis {}, batch axis {}",
                    out.name,
                    out.time_axis.map_or("none".into(), |t| t.to_string()),
                    out.batch_axis
                );
            }
            for &i in &p.state_outputs {
                p!(o, "  state output {}", g.outputs[i].name);
            }
            let total: usize = p.cells.iter().map(|c| c.state_len()).sum();
            p!(o, "  state: {total} float(s) per session");
        }
        Err(e) => p!(o, "sessions: unavailable ({e})"),
    }
    std::io::stdout().write_all(o.as_bytes()).map_err(|e| Error::Io(format!("stdout: {e}")))
}

fn run(a: &Args) -> Result<()> {
    let out_dir = a.out_dir.as_ref().ok_or_else(|| Error::InvalidArgument("run needs --out-dir DIR".into()))?;
    let model = load(&a.model, a.config.as_deref(), &a.options)?.with_backend(a.backend)?;
    let mut inputs = Vec::new();
    for p in &a.inputs {
        let bytes = std::fs::read(p).map_err(|e| Error::Io(format!("{}: {e}", p.display())))?;
        inputs.push(onnx::decode_tensor(&bytes).map_err(|e| e.context(&p.display().to_string()))?);
    }
    let outputs = model.run_graph(inputs)?;
    std::fs::create_dir_all(out_dir).map_err(|e| Error::Io(format!("{}: {e}", out_dir.display())))?;
    for (i, (t, decl)) in outputs.iter().zip(&model.graph().outputs).enumerate() {
        let path = out_dir.join(format!("output_{i}.pb"));
        std::fs::write(&path, onnx::encode_tensor(t, &decl.name))
            .map_err(|e| Error::Io(format!("{}: {e}", path.display())))?;
    }
    Ok(())
}
