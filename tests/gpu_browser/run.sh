#!/usr/bin/env bash
# The GPU backend's self-test on the browser's own WebGPU adapter (headless Chromium, SwiftShader
# with the flags of webdriver.json): builds the wasm with `--features gpu-self-test`, serves this
# folder, opens index.html and waits for its report. Exit 0 when every case agrees with the
# scalar reference. Usage: tests/gpu_browser/run.sh [port]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
port="${1:-8766}"
work="$(mktemp -d)"
target="$root/target/gpu-selftest"
cleanup() {
  [[ -n "${chrome_pid:-}" ]] && kill "$chrome_pid" 2>/dev/null && wait "$chrome_pid" 2>/dev/null || true
  [[ -n "${server_pid:-}" ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
  rm -rf "$work" 2>/dev/null || true
}
trap cleanup EXIT

cargo build --quiet --lib --target wasm32-unknown-unknown --features gpu-self-test --target-dir "$target" \
  --manifest-path "$root/Cargo.toml"
wasm-bindgen --target web --out-name webrnn --out-dir "$work" "$target/wasm32-unknown-unknown/debug/webrnn.wasm"
cp "$root/tests/gpu_browser/index.html" "$work/"
(cd "$work" && exec python3 -m http.server "$port" --bind 127.0.0.1 > "$work/server.log" 2>&1) &
server_pid=$!
sleep 1
chromium --headless=new --enable-unsafe-webgpu --enable-features=Vulkan --use-vulkan=swiftshader \
  --use-webgpu-adapter=swiftshader --no-sandbox --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$work/profile" "http://127.0.0.1:$port/index.html" > "$work/chrome.log" 2>&1 &
chrome_pid=$!
for _ in $(seq 1 60); do
  grep -q RESULT "$work/server.log" && break
  sleep 2
done
report="$(grep RESULT "$work/server.log" | head -1 | sed -e 's/.*RESULT?//' -e 's/ HTTP.*//' \
  | python3 -c 'import sys, urllib.parse; print(urllib.parse.unquote(sys.stdin.read().strip()))')"
if [[ -z "$report" ]]; then
  echo "gpu browser self-test: no report within 120 s" >&2
  exit 1
fi
echo "$report"
[[ "$report" != ERROR* ]]
