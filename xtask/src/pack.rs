//! `cargo xtask pack`: the `webrnn` npm package in `pkg/`.
//!
//! 1. Each wasm variant of [`WASM_VARIANTS`] is built (`cargo build --profile wasm-release`, its own
//!    `RUSTFLAGS` and target dir), bound by `wasm-bindgen --target web` into `js/build/wasm/<name>/`
//!    and optimised by wasm-opt; its `.wasm` is copied into `pkg/`. Every variant is built without
//!    the default `all-isas` feature (its CPU kernels for its best instruction set only); the
//!    CPU-only variants without the `gpu` feature (no wgpu, no WebGPU bindings), the `gpu-*` ones
//!    with it. The
//!    variants of each kind share one JavaScript glue (checked: the glue files must be identical),
//!    and both kinds export the same API (checked: identical declarations).
//! 2. esbuild bundles the TypeScript layer (`js/src/index.ts`), the glue (its default wasm URL
//!    removed) and the small npm dependencies into one ES module, `pkg/webrnn.js`, with the list
//!    of shipped variants built in (`js/build/wasm/variants.js`), each variant's URL a fixed string
//!    `new URL('./<file>', import.meta.url)` that bundlers copy; at run time the loader takes the
//!    first variant of the kind it needs that the engine validates. The WebGPU variants' glue is
//!    `pkg/webrnn_gpu.js`, which webrnn.js imports dynamically (`import('./webrnn_gpu.js')`) only
//!    when a runtime takes a WebGPU adapter. `js/src/node.ts` makes the Node entry,
//!    `webrnn.node.js` (the same plus a file: reader), so that the browser entry has no `node:`
//!    import.
//! 3. tsc writes the declarations into `pkg/types/`; `pkg/webrnn.d.ts` re-exports them.
//! 4. package.json (conditional exports: `types`, `node`, `browser`, `./*.wasm`), README.md and
//!    the licence files; then the gzipped size of what a page downloads on the CPU (the JS and the
//!    largest CPU-only variant, against [`CPU_PAGE_TARGET`]) and on WebGPU (plus the WebGPU glue and
//!    the largest WebGPU variant, within [`GPU_PAGE_BUDGET`]).
//!
//! `WEBRNN_VARIANTS=base,relaxed-simd cargo xtask pack` builds the named variants only.

use std::collections::BTreeMap;
use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{gzip_size, kib, output, run, Result};

/// One build of the wasm module. The loader picks the first shipped variant whose `features` the
/// engine validates, so they are listed fastest first; `base` must validate everywhere.
struct WasmVariant {
    name: &'static str,
    /// Shipped as `pkg/<file>`.
    file: &'static str,
    rustflags: &'static str,
    /// Names the JS loader probes with `WebAssembly.validate` (wasm-feature-detect).
    features: &'static [&'static str],
    /// wasm-opt flags beyond [`WASM_OPT_ARGS`].
    opt_features: &'static [&'static str],
    /// Built by default (a variant without kernels that use its feature would only cost time).
    enabled: bool,
    /// Built with the `gpu` feature (the WebGPU backend: wgpu and its bindings). The CPU-only
    /// variants are built without it, so a page on the CPU downloads no GPU code.
    gpu: bool,
}

/// Added to the SIMD variants' `RUSTFLAGS` (and to the builds that test and time those kernels,
/// `bench.rs` and the wasm kernel tests, so they run the code that ships). LLVM's loop strength
/// reduction rewrites the kernels' loads `row[j]` into a pointer that it increments plus `i32.add`
/// of 16, 32, 48, which it can no longer prove do not wrap, so they are not folded into the
/// loads' `offset` immediates; V8 then spends a `lea` on every vector load of the GEMV (12 of the 45
/// instructions of its inner loop, seen with `perf` on V8's `--perf-prof`). Without the pass the loads
/// carry their offsets and stream and seq256 steps are 3-7 % faster in Chromium.
macro_rules! simd_codegen {
    () => {
        "-C llvm-args=-disable-lsr"
    };
}
pub(crate) use simd_codegen;

const WASM_VARIANTS: &[WasmVariant] = &[
    WasmVariant {
        name: "relaxed-simd",
        file: "webrnn_relaxed_simd.wasm",
        rustflags: concat!("-C target-feature=+simd128,+relaxed-simd ", simd_codegen!()),
        features: &["simd128", "relaxed-simd"],
        opt_features: &["--enable-simd", "--enable-relaxed-simd"],
        enabled: true,
        gpu: false,
    },
    WasmVariant {
        name: "simd128",
        file: "webrnn_simd.wasm",
        rustflags: concat!("-C target-feature=+simd128 ", simd_codegen!()),
        features: &["simd128"],
        opt_features: &["--enable-simd"],
        enabled: true,
        gpu: false,
    },
    WasmVariant {
        name: "base",
        file: "webrnn_bg.wasm",
        rustflags: "",
        features: &[],
        opt_features: &[],
        enabled: true,
        gpu: false,
    },
    // The WebGPU builds: every browser with WebGPU has simd128, so there is no base one.
    WasmVariant {
        name: "gpu-relaxed-simd",
        file: "webrnn_gpu_relaxed_simd.wasm",
        rustflags: concat!("-C target-feature=+simd128,+relaxed-simd ", simd_codegen!()),
        features: &["simd128", "relaxed-simd"],
        opt_features: &["--enable-simd", "--enable-relaxed-simd"],
        enabled: true,
        gpu: true,
    },
    WasmVariant {
        name: "gpu-simd128",
        file: "webrnn_gpu_simd.wasm",
        rustflags: concat!("-C target-feature=+simd128 ", simd_codegen!()),
        features: &["simd128"],
        opt_features: &["--enable-simd"],
        enabled: true,
        gpu: true,
    },
];

/// What a page on the CPU downloads from `pkg/` (webrnn.js and the largest CPU-only variant),
/// gzipped: the target of #14 (200 KB). `pack` prints how far it is.
pub const CPU_PAGE_TARGET: u64 = 200 * 1000;

/// What a page on WebGPU downloads (webrnn.js, webrnn_gpu.js and the largest WebGPU variant),
/// gzipped.
pub const GPU_PAGE_BUDGET: u64 = 450 * 1024;

/// The WebGPU builds' glue in `pkg/`, imported dynamically by webrnn.js when a runtime takes WebGPU.
const GPU_MODULE: &str = "webrnn_gpu.js";

/// How the bundled TypeScript imports the WebGPU glue; `pack` points it at [`GPU_MODULE`].
const GPU_IMPORT: &str = "import(\"webrnn-gpu\")";

/// Features rustc enables by default for wasm32-unknown-unknown. wasm-bindgen drops the
/// `target_features` section, so wasm-opt cannot detect them itself.
const WASM_OPT_ARGS: &[&str] = &[
    "-O3",
    "--enable-bulk-memory",
    "--enable-mutable-globals",
    "--enable-nontrapping-float-to-int",
    "--enable-sign-ext",
    "--enable-multivalue",
    "--enable-reference-types",
];

/// binaryen installed by setup from xtask/package.json.
const LOCAL_WASM_OPT: &str = "xtask/node_modules/.bin/wasm-opt";

/// The oldest wasm-opt on PATH we trust: 132 is tested; 108 (Debian 12's binaryen) writes the
/// export of wasm-bindgen's `__wbindgen_externrefs` table against the wrong table, so the package
/// fails in the browser at `init()`.
const MIN_WASM_OPT: u32 = 132;

/// Shipped in the package, from the repository root (`license = "MIT OR Apache-2.0"`).
const LICENCES: &[&str] = &["LICENSE-MIT", "LICENSE-APACHE"];

const ESBUILD: &str = "js/node_modules/.bin/esbuild";
const TSC: &str = "js/node_modules/.bin/tsc";

pub fn pack(root: &Path) -> Result {
    for tool in [ESBUILD, TSC] {
        if !root.join(tool).is_file() {
            return Err(format!("{tool} is missing: run `cargo xtask setup` (npm ci in js/)"));
        }
    }
    let pkg = root.join("pkg");
    let build = root.join("js/build/wasm");
    let _ = fs::remove_dir_all(&pkg);
    let _ = fs::remove_dir_all(&build);
    fs::create_dir_all(&pkg).map_err(|e| format!("{}: {e}", pkg.display()))?;

    let wasm_opt = wasm_opt(root);
    if wasm_opt.is_none() {
        println!("pack: no wasm-opt {MIN_WASM_OPT}+ found, the package is unoptimised (run `cargo xtask setup`)");
    }
    let mut shipped = Vec::new();
    // The first variant of each kind (CPU-only, WebGPU) and its glue: the others must agree.
    let mut glue: [Option<(PathBuf, String)>; 2] = [None, None];
    for v in selected_variants()? {
        let out = build.join(v.name);
        let wasm = build_variant(root, v, &out)?;
        if let Some(opt) = &wasm_opt {
            run(Command::new(opt).args(WASM_OPT_ARGS).args(v.opt_features).arg(&wasm).arg("-o").arg(&wasm))?;
        }
        let js = glue_code(&read(&out.join("webrnn.js"))?);
        match &glue[v.gpu as usize] {
            None => glue[v.gpu as usize] = Some((out.clone(), js)),
            Some((first, text)) if *text != js => {
                return Err(format!(
                    "the wasm-bindgen glue of variant {} differs from {}: the variants must export the same API",
                    v.name,
                    first.display()
                ))
            }
            Some(_) => {}
        }
        copy(&wasm, &pkg.join(v.file))?;
        shipped.push(v);
    }
    let [cpu_glue, gpu_glue] = glue;
    let (cpu_dir, _) = cpu_glue.ok_or("no CPU-only wasm variant is selected (the package needs one)")?;
    write_glue(&cpu_dir, &build.join("glue.js"))?;
    copy(&cpu_dir.join("webrnn.d.ts"), &build.join("glue.d.ts"))?;
    // tsc types the WebGPU glue from the CPU one's declarations: both kinds export the same API.
    copy(&cpu_dir.join("webrnn.d.ts"), &build.join("glue-gpu.d.ts"))?;
    let gpu_import = match &gpu_glue {
        Some((gpu_dir, _)) => {
            if public_api(&read(&gpu_dir.join("webrnn.d.ts"))?) != public_api(&read(&cpu_dir.join("webrnn.d.ts"))?) {
                return Err(format!(
                    "the WebGPU build's declarations ({}) differ from the CPU build's: both must export the same API",
                    gpu_dir.display()
                ));
            }
            write_glue(gpu_dir, &build.join("glue-gpu.js"))?;
            run(Command::new(root.join(ESBUILD))
                .current_dir(root)
                .arg("js/build/wasm/glue-gpu.js")
                .args(["--bundle", "--format=esm", "--target=es2022", "--platform=browser"])
                .args(["--minify-syntax", "--minify-whitespace", "--legal-comments=none"])
                .arg(format!("--outfile=pkg/{GPU_MODULE}"))
                .arg("--log-level=warning"))?;
            format!("import(\"./{GPU_MODULE}\")")
        }
        None => {
            "Promise.reject(new Error(\"this package was packed without WebGPU variants (WEBRNN_VARIANTS)\"))".into()
        }
    };
    write(&build.join("variants.js"), &variants_module(&shipped))?;
    write(&build.join("variants.d.ts"), VARIANTS_DTS)?;

    // Two entries of one code base: the browser's (no `node:` import) and Node's (a file reader).
    for (entry, out, platform) in [("index", "webrnn.js", "browser"), ("node", "webrnn.node.js", "node")] {
        run(Command::new(root.join(ESBUILD))
            .current_dir(root)
            .arg(format!("js/src/{entry}.ts"))
            .args(["--bundle", "--format=esm", "--target=es2022"])
            .arg(format!("--platform={platform}"))
            .args(["--minify-syntax", "--minify-whitespace", "--external:node:*", "--legal-comments=none"])
            .arg("--alias:webrnn-wasm=./js/build/wasm/glue.js")
            .arg("--alias:webrnn-variants=./js/build/wasm/variants.js")
            .arg("--external:webrnn-gpu")
            .arg(format!("--outfile=pkg/{out}"))
            .arg("--log-level=warning"))?;
        let path = pkg.join(out);
        let js = read(&path)?;
        if js.matches(GPU_IMPORT).count() != 1 {
            return Err(format!("pkg/{out} should import the WebGPU glue once as {GPU_IMPORT} (check js/src/wasm.ts)"));
        }
        write(&path, &js.replace(GPU_IMPORT, &gpu_import))?;
    }
    crate::pack_audio::bundle(root, &root.join(ESBUILD))?;
    let browser = read(&pkg.join("webrnn.js"))?;
    if let Some(at) = browser.find("\"node:").or_else(|| browser.find("'node:")) {
        let context: String = browser[at..].chars().take(40).collect();
        return Err(format!("pkg/webrnn.js imports a Node built-in: {context}…"));
    }
    run(Command::new(root.join(TSC)).current_dir(root).args([
        "-p",
        "js/tsconfig.json",
        "--emitDeclarationOnly",
        "--outDir",
        "pkg/types",
    ]))?;
    // Runtime, Model and Session are Disposable: their declarations name `Symbol.dispose`, which
    // a consumer's `lib` may lack (it is in TypeScript's esnext.disposable, 5.2+).
    write(
        &pkg.join("webrnn.d.ts"),
        "/// <reference lib=\"esnext.disposable\" />\nexport * from './types/index.js';\n",
    )?;
    write(&pkg.join("package.json"), &package_json(root, &shipped, gpu_glue.is_some())?)?;
    copy(&root.join("js/README.md"), &pkg.join("README.md"))?;
    for licence in LICENCES {
        copy(&root.join(licence), &pkg.join(licence))?;
    }

    report_size(root, &pkg, &shipped)
}

/// The enabled variants, or those named in `WEBRNN_VARIANTS` (e.g. `base,relaxed-simd`), in
/// [`WASM_VARIANTS`] order.
fn selected_variants() -> Result<Vec<&'static WasmVariant>> {
    let Ok(names) = env::var("WEBRNN_VARIANTS") else {
        return Ok(WASM_VARIANTS.iter().filter(|v| v.enabled).collect());
    };
    let names: Vec<&str> = names.split(',').map(str::trim).filter(|n| !n.is_empty()).collect();
    if let Some(unknown) = names.iter().find(|n| !WASM_VARIANTS.iter().any(|v| v.name == **n)) {
        let known: Vec<&str> = WASM_VARIANTS.iter().map(|v| v.name).collect();
        return Err(format!("WEBRNN_VARIANTS: no variant `{unknown}` (known: {})", known.join(", ")));
    }
    Ok(WASM_VARIANTS.iter().filter(|v| names.contains(&v.name)).collect())
}

/// The glue without its line comments: wasm-bindgen writes each closure's shim index (a function
/// index, which differs between the variants' code) into a comment; the code itself must agree.
fn glue_code(js: &str) -> String {
    js.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n")
}

/// `cargo build` + `wasm-bindgen` for one variant; returns the bound `.wasm` in `out`.
fn build_variant(root: &Path, v: &WasmVariant, out: &Path) -> Result<PathBuf> {
    let target_root = env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    // Each variant keeps its own target dir, so switching RUSTFLAGS or features does not rebuild
    // the others.
    let target_dir = target_root.join("wasm-variants").join(v.name);
    let flags = if v.rustflags.is_empty() { "no flags" } else { v.rustflags };
    println!("pack: wasm variant {} ({flags}; {})", v.name, if v.gpu { "with WebGPU" } else { "CPU only" });
    let mut cargo = Command::new("cargo");
    cargo.current_dir(root).env("RUSTFLAGS", v.rustflags).env("CARGO_TARGET_DIR", &target_dir).args([
        "build",
        "--quiet",
        "--lib",
        "--profile",
        "wasm-release",
        "--target",
        "wasm32-unknown-unknown",
        "--package",
        "webrnn",
    ]);
    // No `all-isas` (the kernels for the build's best instruction set only); `gpu` where wanted.
    cargo.arg("--no-default-features");
    if v.gpu {
        cargo.args(["--features", "gpu"]);
    }
    run(&mut cargo)?;
    let raw = target_dir.join("wasm32-unknown-unknown/wasm-release/webrnn.wasm");
    run(Command::new("wasm-bindgen")
        .args(["--target", "web", "--out-name", "webrnn", "--out-dir"])
        .arg(out)
        .arg(&raw))?;
    Ok(out.join("webrnn_bg.wasm"))
}

/// The declarations of a glue without its `InitOutput` interface (the raw exports of the module,
/// among them the closure shims of wasm-bindgen, which differ between builds): the classes and
/// functions the TypeScript layer calls.
fn public_api(dts: &str) -> String {
    let mut out = String::new();
    let mut skipping = false;
    for line in dts.lines() {
        if line.starts_with("export interface InitOutput") {
            skipping = true;
        } else if skipping && line.starts_with('}') {
            skipping = false;
        } else if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// The local binaryen from npm, else a recent enough wasm-opt on PATH.
fn wasm_opt(root: &Path) -> Option<PathBuf> {
    let local = root.join(LOCAL_WASM_OPT);
    if local.is_file() {
        return Some(local);
    }
    // `wasm-opt --version` prints `wasm-opt version 132 (version_132)`.
    let version = output(Command::new("wasm-opt").arg("--version"))?;
    let number: u32 = version.split_whitespace().nth(2)?.parse().ok()?;
    (number >= MIN_WASM_OPT).then(|| PathBuf::from("wasm-opt"))
}

/// The default URL wasm-bindgen's glue falls back to when `init()` gets no module. The loader
/// always passes one, and this fixed-string URL would make bundlers copy (or fail to find)
/// `webrnn_bg.wasm` whether or not the base variant ships.
const GLUE_DEFAULT_URL: &str = "module_or_path = new URL('webrnn_bg.wasm', import.meta.url);";

const GLUE_UTF8_IMPORT: &str =
    "import { Utf8Decoder as TextDecoder, Utf8Encoder as TextEncoder } from '../../src/utf8.ts';";

/// The glue one kind of variants shares, as `to` (`js/build/wasm/glue.js`, `glue-gpu.js`), without
/// its default wasm URL and with [`GLUE_UTF8_IMPORT`].
fn write_glue(glue_dir: &Path, to: &Path) -> Result {
    let js = read(&glue_dir.join("webrnn.js"))?;
    if !js.contains(GLUE_DEFAULT_URL) {
        return Err(format!(
            "the wasm-bindgen glue has no `{GLUE_DEFAULT_URL}` to remove (a new wasm-bindgen?): check xtask/src/pack.rs"
        ));
    }
    let js = js.replace(GLUE_DEFAULT_URL, "throw new Error('webrnn: init() needs the compiled module');");
    // An AudioWorkletGlobalScope has no TextDecoder / TextEncoder, which the glue creates when it
    // is evaluated: it gets the platform's where they exist, UTF-8 stand-ins elsewhere.
    let js = format!("{GLUE_UTF8_IMPORT}\n{js}");
    write(to, &js)
}

/// `js/build/wasm/variants.js`, the module `webrnn-variants`: the shipped variants, fastest first, each
/// with its URL as a literal `new URL('./<file>', import.meta.url)` so that bundlers see every file.
const VARIANTS_DTS: &str =
    "export declare const SHIPPED: { name: string; file: string; features: string[]; gpu: boolean; url: () => URL }[];\n";

fn variants_module(shipped: &[&WasmVariant]) -> String {
    let mut out = String::from(
        "// Written by `cargo xtask pack` (xtask/src/pack.rs): the wasm variants in pkg/, fastest first.\n\
         export const SHIPPED = [\n",
    );
    for v in shipped {
        let features: Vec<String> = v.features.iter().map(|f| format!("'{f}'")).collect();
        out.push_str(&format!(
            "  {{ name: '{}', file: '{}', features: [{}], gpu: {}, url: () => new URL('./{}', import.meta.url) }},\n",
            v.name,
            v.file,
            features.join(", "),
            v.gpu,
            v.file
        ));
    }
    out.push_str("];\n");
    out
}

fn package_json(root: &Path, shipped: &[&WasmVariant], gpu_module: bool) -> Result<String> {
    let manifest = read(&root.join("Cargo.toml"))?;
    let field = |key: &str| {
        manifest
            .lines()
            .find_map(|l| l.strip_prefix(key)?.trim_start().strip_prefix('=').map(|v| v.trim().trim_matches('"')))
            .unwrap_or_default()
            .to_string()
    };
    let mut files: Vec<String> = ["webrnn.js", "webrnn.node.js", "webrnn.d.ts", "types/"].map(String::from).to_vec();
    if gpu_module {
        files.push(GPU_MODULE.to_string());
    }
    files.extend(LICENCES.iter().map(|l| l.to_string()));
    files.extend(crate::pack_audio::FILES.iter().map(|f| f.to_string()));
    files.extend(shipped.iter().map(|v| v.file.to_string()));
    let quoted: Vec<String> = files.iter().map(|f| format!("\"{f}\"")).collect();
    Ok(format!(
        r#"{{
  "name": "webrnn",
  "version": "{version}",
  "description": "{description}",
  "license": "{license}",
  "type": "module",
  "main": "./webrnn.js",
  "types": "./webrnn.d.ts",
  "exports": {{
    ".": {{
      "types": "./webrnn.d.ts",
      "node": "./webrnn.node.js",
      "browser": "./webrnn.js",
      "default": "./webrnn.js"
    }},
    {audio}
    "./*.wasm": "./*.wasm",
    "./package.json": "./package.json"
  }},
  "files": [{files}],
  "sideEffects": false,
  "engines": {{ "node": ">=20" }}
}}
"#,
        version = field("version"),
        description = field("description"),
        license = field("license"),
        files = quoted.join(", "),
        audio = crate::pack_audio::EXPORT
    ))
}

/// Prints every shipped file's size and checks what one app downloads against the budget.
fn report_size(root: &Path, pkg: &Path, shipped: &[&WasmVariant]) -> Result {
    let mut gz: BTreeMap<String, u64> = BTreeMap::new();
    let mut files = crate::files_with_extension(pkg, "js")?;
    files.extend(crate::files_with_extension(pkg, "wasm")?);
    for file in &files {
        let size = fs::metadata(file).map_err(|e| format!("{}: {e}", file.display()))?.len();
        let gzip = gzip_size(file)?;
        let name = rel(root, file);
        println!("pack: {name:<30} {:>10}  gzip {:>10}", kib(size), kib(gzip));
        gz.insert(file.file_name().unwrap_or_default().to_string_lossy().into_owned(), gzip);
    }
    // The browser entry; webrnn.node.js is Node's.
    let js = gz.get("webrnn.js").copied().unwrap_or(0);
    let largest = |gpu: bool| shipped.iter().filter(|v| v.gpu == gpu).filter_map(|v| gz.get(v.file)).copied().max();
    if let Some(wasm) = largest(false) {
        let total = js + wasm;
        println!(
            "pack: {:<30} {:>10}  gzip {:>10}  (webrnn.js + largest CPU-only wasm; target {})",
            "a CPU page downloads",
            "",
            kib(total),
            kib(CPU_PAGE_TARGET)
        );
        if total > CPU_PAGE_TARGET {
            println!("pack: the CPU page is {} over its target", kib(total - CPU_PAGE_TARGET));
        }
    }
    if let Some(wasm) = largest(true) {
        let total = js + gz.get(GPU_MODULE).copied().unwrap_or(0) + wasm;
        println!(
            "pack: {:<30} {:>10}  gzip {:>10}  (webrnn.js + {GPU_MODULE} + largest WebGPU wasm; budget {})",
            "a WebGPU page downloads",
            "",
            kib(total),
            kib(GPU_PAGE_BUDGET)
        );
        if total > GPU_PAGE_BUDGET {
            println!("pack: warning: the WebGPU page is over its budget");
        }
    }
    // Start-up needs fresh browsers and onnxruntime-web in one run (a few minutes), so pack prints
    // the last `cargo xtask bench --startup` figure rather than measuring it.
    match fs::read_to_string(root.join(crate::bench_startup::SUMMARY)) {
        Ok(line) => println!(
            "pack: cold start, import to first step (last `cargo xtask bench --startup`): {}; target 0.20×",
            line.trim()
        ),
        Err(_) => println!("pack: cold start: not measured yet (run `cargo xtask bench --startup`)"),
    }
    Ok(())
}

fn rel(root: &Path, path: &Path) -> String {
    path.strip_prefix(root).unwrap_or(path).display().to_string()
}

fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn write(path: &Path, text: &str) -> Result {
    fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

fn copy(from: &Path, to: &Path) -> Result {
    fs::copy(from, to).map(|_| ()).map_err(|e| format!("copy {} -> {}: {e}", from.display(), to.display()))
}
