//! The package's audio entry, `webrnn/audio` (`js/src/audio/`): voice activity detection.
//!
//! Bundled by esbuild like the main entry, with the main entry left out (`--external:webrnn`)
//! and then imported from beside it (`./webrnn.js`, Node's `./webrnn.node.js`), so an app that
//! imports both gets one runtime, one wasm instance and one set of error classes.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::{run, Result};

/// (output, the main entry it imports): the browser's and Node's.
const BUNDLES: &[(&str, &str, &str)] =
    &[("webrnn-audio.js", "./webrnn.js", "browser"), ("webrnn-audio.node.js", "./webrnn.node.js", "node")];

/// How esbuild (with `--minify-whitespace`) writes an import of the external main entry (one per
/// source module that imports it).
const EXTERNAL_IMPORT: &str = "from\"webrnn\"";

/// The files of the audio entry in `pkg/`, for package.json's `files`.
pub const FILES: &[&str] = &["webrnn-audio.js", "webrnn-audio.node.js", "webrnn-audio.d.ts"];

/// package.json's conditional export of `./audio`.
pub const EXPORT: &str = r#""./audio": {
      "types": "./webrnn-audio.d.ts",
      "node": "./webrnn-audio.node.js",
      "browser": "./webrnn-audio.js",
      "default": "./webrnn-audio.js"
    },"#;

pub fn bundle(root: &Path, esbuild: &Path) -> Result {
    let pkg = root.join("pkg");
    for (out, main, platform) in BUNDLES {
        run(Command::new(esbuild)
            .current_dir(root)
            .arg("js/src/audio/index.ts")
            .args(["--bundle", "--format=esm", "--target=es2022"])
            .arg(format!("--platform={platform}"))
            .args(["--minify-syntax", "--minify-whitespace", "--legal-comments=none"])
            .args(["--external:webrnn", "--external:node:*"])
            .arg(format!("--outfile=pkg/{out}"))
            .arg("--log-level=warning"))?;
        let path = pkg.join(out);
        let js = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        if !js.contains(EXTERNAL_IMPORT) || js.contains("'node:") || js.contains("\"node:") {
            return Err(format!(
                "pkg/{out}: expected imports {EXTERNAL_IMPORT} of the main entry and no Node built-in (has esbuild's output changed?)"
            ));
        }
        let js = js.replace(EXTERNAL_IMPORT, &format!("from\"{main}\""));
        fs::write(&path, js).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let dts = pkg.join("webrnn-audio.d.ts");
    fs::write(&dts, "/// <reference lib=\"esnext.disposable\" />\nexport * from './types/audio/index.js';\n")
        .map_err(|e| format!("{}: {e}", dts.display()))
}
