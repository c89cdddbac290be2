//! `cargo xtask setup`: install what the other tasks need. Idempotent, and quick when all is present.

use std::fs;
use std::io::IsTerminal;
use std::path::Path;
use std::process::Command;

use crate::{output, run, which, Result};

const WASM_TARGET: &str = "wasm32-unknown-unknown";
const COMPONENTS: &[&str] = &["rustfmt", "clippy"];

/// Headless Chromium for the smoke and browser tests, its WebDriver for wasm-bindgen-test,
/// SwiftShader Vulkan so WebGPU has an adapter without a GPU, and binaryen's tools (wasm-dis and
/// friends; `pack` uses the newer wasm-opt from xtask/package.json).
const DEBIAN_PACKAGES: &[&str] = &["chromium", "chromium-driver", "mesa-vulkan-drivers", "binaryen"];

/// Folders whose package.json dependencies are installed with npm (skipped where none exists).
/// xtask/package.json brings a current binaryen (wasm-opt) for `pack`.
const NPM_DIRS: &[&str] = &["xtask", ".", "www", "js", "js/test/apps", "bench"];

pub fn setup(root: &Path) -> Result {
    println!("setup:");
    rust_target()?;
    rust_components()?;
    debian_packages()?;
    wasm_bindgen_cli(root)?;
    wasm_pack()?;
    cargo_fuzz()?;
    npm_packages(root)?;
    Ok(())
}

fn report(item: &str, state: &str) {
    println!("  {item:<36} {state}");
}

fn rust_target() -> Result {
    let item = format!("rust target {WASM_TARGET}");
    let installed = output(Command::new("rustup").args(["target", "list", "--installed"]))
        .ok_or("rustup not found: install it first (see DEVELOPERS.md)")?;
    if installed.lines().any(|line| line.trim() == WASM_TARGET) {
        report(&item, "present");
        return Ok(());
    }
    run(Command::new("rustup").args(["target", "add", WASM_TARGET]))?;
    report(&item, "installed");
    Ok(())
}

fn rust_components() -> Result {
    let installed = output(Command::new("rustup").args(["component", "list", "--installed"]))
        .ok_or("`rustup component list` failed")?;
    for component in COMPONENTS {
        let item = format!("rust component {component}");
        // Installed components are listed with the host triple: `clippy-x86_64-unknown-linux-gnu`.
        let prefix = format!("{component}-");
        if installed.lines().any(|line| line.starts_with(&prefix)) {
            report(&item, "present");
        } else {
            run(Command::new("rustup").args(["component", "add", component]))?;
            report(&item, "installed");
        }
    }
    Ok(())
}

fn debian_packages() -> Result {
    if which("dpkg-query").is_none() {
        let wanted = DEBIAN_PACKAGES.join(", ");
        report("debian packages", &format!("skipped (not Debian: install {wanted} yourself)"));
        return Ok(());
    }
    let missing: Vec<&str> = DEBIAN_PACKAGES
        .iter()
        .copied()
        .filter(|package| {
            let status = output(Command::new("dpkg-query").args(["-W", "-f=${Status}", package]));
            status.as_deref() != Some("install ok installed")
        })
        .collect();
    if !missing.is_empty() {
        run(&mut as_root(&["apt-get", "update"]))?;
        let mut install = vec!["apt-get", "install", "-y"];
        install.extend(&missing);
        run(&mut as_root(&install))?;
    }
    for package in DEBIAN_PACKAGES {
        let state = if missing.contains(package) { "installed" } else { "present" };
        report(&format!("debian package {package}"), state);
    }
    Ok(())
}

/// `DEBIAN_FRONTEND=noninteractive <args>`, through sudo unless we are root already.
fn as_root(args: &[&str]) -> Command {
    let is_root = output(Command::new("id").arg("-u")).as_deref() == Some("0");
    let mut command = if is_root {
        Command::new("env")
    } else {
        let mut sudo = Command::new("sudo");
        // With no terminal to ask for a password on (CI), fail at once instead of hanging.
        if !std::io::stdin().is_terminal() {
            sudo.arg("-n");
        }
        sudo.arg("env");
        sudo
    };
    command.arg("DEBIAN_FRONTEND=noninteractive").args(args);
    command
}

/// The wasm-bindgen CLI must be exactly the version of the wasm-bindgen crate in Cargo.lock.
fn wasm_bindgen_cli(root: &Path) -> Result {
    let lock_path = root.join("Cargo.lock");
    if !lock_path.is_file() {
        run(Command::new("cargo").arg("generate-lockfile").current_dir(root))?;
    }
    let lock = fs::read_to_string(&lock_path).map_err(|e| format!("Cargo.lock: {e}"))?;
    let wanted = locked_version(&lock, "wasm-bindgen").ok_or("Cargo.lock has no wasm-bindgen")?;
    let item = format!("wasm-bindgen-cli {wanted}");
    let found = output(Command::new("wasm-bindgen").arg("--version"));
    // `wasm-bindgen --version` prints `wasm-bindgen 0.2.130`.
    if found.as_deref().and_then(|line| line.split_whitespace().nth(1)) == Some(wanted.as_str()) {
        report(&item, "present");
        return Ok(());
    }
    run(Command::new("cargo").args(["install", "wasm-bindgen-cli", "--version", &wanted]))?;
    report(&item, "installed");
    Ok(())
}

/// cargo-fuzz, for `cargo xtask fuzz` (libFuzzer builds need the image's nightly toolchain).
fn cargo_fuzz() -> Result {
    if output(Command::new("cargo").args(["fuzz", "--version"])).is_some() {
        report("cargo-fuzz", "present");
        return Ok(());
    }
    run(Command::new("cargo").args(["install", "cargo-fuzz"]))?;
    report("cargo-fuzz", "installed");
    Ok(())
}

fn wasm_pack() -> Result {
    if output(Command::new("wasm-pack").arg("--version")).is_some() {
        report("wasm-pack", "present");
        return Ok(());
    }
    run(Command::new("cargo").args(["install", "wasm-pack"]))?;
    report("wasm-pack", "installed");
    Ok(())
}

fn npm_packages(root: &Path) -> Result {
    for dir in NPM_DIRS {
        let dir_path = root.join(dir);
        let Ok(manifest) = fs::read_to_string(dir_path.join("package.json")) else {
            continue;
        };
        if !manifest.contains("\"dependencies\"") && !manifest.contains("\"devDependencies\"") {
            continue;
        }
        let item = format!("npm packages in {dir}/");
        if npm_up_to_date(&dir_path) {
            report(&item, "present");
            continue;
        }
        let lockfile = dir_path.join("package-lock.json").is_file();
        let task = if lockfile { "ci" } else { "install" };
        run(Command::new("npm").arg(task).current_dir(&dir_path))?;
        report(&item, "installed");
    }
    Ok(())
}

/// npm writes `node_modules/.package-lock.json` after each install; it is current when it is
/// newer than both the manifest and the lockfile.
fn npm_up_to_date(dir: &Path) -> bool {
    let modified = |name: &str| fs::metadata(dir.join(name)).and_then(|m| m.modified()).ok();
    let Some(installed) = modified("node_modules/.package-lock.json") else {
        return false;
    };
    ["package.json", "package-lock.json"].iter().filter_map(|name| modified(name)).all(|changed| changed <= installed)
}

/// The version of package `name` in a Cargo.lock (the first, if several are locked).
fn locked_version(lock: &str, name: &str) -> Option<String> {
    let mut current = None;
    for line in lock.lines().map(str::trim) {
        if line == "[[package]]" {
            current = None;
        } else if let Some(value) = line.strip_prefix("name = ") {
            current = Some(value.trim_matches('"'));
        } else if let Some(value) = line.strip_prefix("version = ") {
            if current == Some(name) {
                return Some(value.trim_matches('"').to_string());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::locked_version;

    #[test]
    fn finds_the_locked_wasm_bindgen_version() {
        let lock = r#"
version = 4

[[package]]
name = "wasm-bindgen-shared"
version = "0.2.99"

[[package]]
name = "wasm-bindgen"
version = "0.2.130"
"#;
        assert_eq!(locked_version(lock, "wasm-bindgen").as_deref(), Some("0.2.130"));
        assert_eq!(locked_version(lock, "js-sys"), None);
    }
}
