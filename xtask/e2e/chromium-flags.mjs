// The Chromium flags every browser test here uses, read from the one place that lists them:
// webdriver.json (which wasm-bindgen-test reads too). BASE_FLAGS keep Chromium off the network and
// runnable as root; WEBGPU_FLAGS add SwiftShader's software WebGPU adapter.
import { readFileSync } from 'node:fs';

const config = JSON.parse(readFileSync(new URL('../../webdriver.json', import.meta.url), 'utf8'));
const args = config['goog:chromeOptions'].args;
const isWebGpu = (flag) => /webgpu|vulkan/i.test(flag);

// Playwright passes --headless itself.
export const BASE_FLAGS = args.filter((f) => !isWebGpu(f) && !f.startsWith('--headless'));
export const WEBGPU_FLAGS = args.filter(isWebGpu);

/**
 * A fake microphone that needs no permission prompt: its own beeps, or a WAV file that it loops
 * (`fakeMicFlags('F.wav')`); Chromium delivers it at the audio context's rate (44.1 or 48 kHz).
 */
export const FAKE_MIC_FLAGS = ['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream', '--autoplay-policy=no-user-gesture-required'];
export const fakeMicFlags = (wav) => [...FAKE_MIC_FLAGS, `--use-file-for-fake-audio-capture=${wav}`];
