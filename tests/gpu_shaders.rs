//! Every WGSL kernel (with the snippets it includes) and every shared snippet parses and validates
//! with naga — the compiler wgpu uses — without a GPU.

use webrnn::gpu::shaders::{join, kernels, SNIPPETS};

fn validate(what: &str, source: &str) -> naga::Module {
    let module = naga::front::wgsl::parse_str(source)
        .unwrap_or_else(|e| panic!("{what}: WGSL parse error:\n{}", e.emit_to_string(source)));
    naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::empty())
        .validate(&module)
        .unwrap_or_else(|e| panic!("{what}: validation error:\n{}", e.emit_to_string(source)));
    module
}

#[test]
fn every_kernel_validates_with_naga() {
    for kernel in kernels() {
        let module = validate(kernel.entry, &kernel.source());
        let entries: Vec<&str> = module.entry_points.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(entries, [kernel.entry], "one kernel per file, named like its CPU twin");
        assert_eq!(module.entry_points[0].stage, naga::ShaderStage::Compute);
    }
}

#[test]
fn every_shared_snippet_validates_with_naga() {
    for parts in SNIPPETS {
        validate(parts.last().unwrap().0, &join(parts));
    }
}

#[test]
fn every_wgsl_file_is_used_by_a_kernel() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let used: Vec<&str> = kernels().iter().flat_map(|k| k.parts.iter().map(|p| p.0)).collect();
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().to_string();
        if name.ends_with(".wgsl") {
            assert!(used.contains(&name.as_str()), "shaders/{name} is not part of any kernel");
        }
    }
}
