//! `cargo run --release --example gpu_bench [H] [B...]`: sessions stepped per second on the GPU
//! and on the CPU backend (defaults: H = 256, B = 1 64 1024 4096).

//! Native only (`webrnn::gpu::bench` blocks on the device); on wasm32, where `wasm-pack test`
//! builds every target, it is an empty program.

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    use std::time::Duration;

    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let hidden = args.first().copied().unwrap_or(256);
    let batches = if args.len() > 1 { args[1..].to_vec() } else { vec![1, 64, 1024, 4096] };
    match webrnn::gpu::bench::report(hidden, &batches, Duration::from_millis(500)) {
        Ok(table) => print!("{table}"),
        Err(e) => {
            eprintln!("gpu_bench: {e}");
            std::process::exit(1);
        }
    }
}
