// Panel "stream": N simulated sensors, one LSTM session each, all stepped together by one
// `model.stepBatch` call per animation frame. The model forecasts each sensor's next value; the
// forecast error, relative to that sensor's usual error, is its anomaly score. Anomalies (spikes,
// level shifts, a sensor stuck at one value, a sudden change of frequency) are injected now and
// then, and the score should flag them.
//
// The signals follow the family the model was trained on (scripts/train_demo.py, `signals`):
// offset + two sines (log-uniform periods) + Gaussian noise, parameters from models/stream-lstm.json.

import { BackendUnavailableError, Runtime } from '/pkg/webrnn.js';

const WATCHED = 4; // sensors 0..3 are drawn in the chart
const HISTORY = 240; // ticks shown in the chart
const WARMUP = 48; // ticks before scores count: the LSTM first has to find each signal's rhythm
const FLAG_SCORE = 6; // error / usual error
const FLAG_ERROR = 0.15; // and at least this much absolute error
const GRACE = 10; // ticks after an injected anomaly in which a flag still counts as detected
const AUTO_EVERY = 60; // ticks between automatic injections

const $ = (id) => document.getElementById(id);

export async function startStream({ onFatal }) {
  const panel = $('stream-panel');
  const meta = await fetchJson('models/stream-lstm.json');

  // One runtime per backend; WebGPU may be missing (no adapter, or a build without the GPU backend):
  // the package says so with a typed error, and the toggle shows it.
  const runtimes = { cpu: await Runtime.create({ backend: 'cpu' }) };
  let gpuReason = null;
  try {
    runtimes.webgpu = await Runtime.create({ backend: 'webgpu' });
  } catch (e) {
    if (!(e instanceof BackendUnavailableError)) throw e;
    gpuReason = e.message;
  }
  const models = {};
  async function modelOn(backend) {
    models[backend] ??= await runtimes[backend].loadModel('models/stream-lstm.onnx');
    return models[backend];
  }
  await modelOn('cpu');

  const gpuRadio = document.querySelector('input[name="stream-backend"][value="webgpu"]');
  const cpuRadio = document.querySelector('input[name="stream-backend"][value="cpu"]');
  function markGpuUnavailable(reason) {
    gpuReason = reason;
    gpuRadio.disabled = true;
    gpuRadio.parentElement.lastChild.textContent = ' WebGPU unavailable';
    gpuRadio.parentElement.title = reason;
    $('gpu-note').textContent = `WebGPU unavailable: ${reason}. Running on the CPU fallback (${runtimes.cpu.backend}).`;
    $('gpu-note').classList.add('unavailable');
  }
  if (gpuReason) markGpuUnavailable(gpuReason);

  // --- simulation ------------------------------------------------------------------------------
  const rand = mulberry32(20261124);
  const uniform = (lo, hi) => lo + (hi - lo) * rand();
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  const sig = meta.signal;

  let n = 0;
  let sim;
  let tick = 0;
  const stats = { injected: 0, detected: 0, falseAlarms: 0 };

  function newSimulation(count) {
    const s = {
      offset: new Float64Array(count),
      amp: [new Float64Array(count), new Float64Array(count)],
      period: [new Float64Array(count), new Float64Array(count)],
      phase: [new Float64Array(count), new Float64Array(count)],
      noise: new Float64Array(count),
      clock: new Float64Array(count),
      value: new Float32Array(count),
      forecast: new Float32Array(count),
      usual: new Float64Array(count).fill(0.04),
      score: new Float32Array(count),
      heat: new Float32Array(count),
      flagged: new Uint8Array(count),
      anomaly: new Array(count).fill(null),
      lanes: Array.from({ length: WATCHED }, () => []),
    };
    for (let i = 0; i < count; i++) {
      s.offset[i] = uniform(...sig.offset);
      for (let k = 0; k < 2; k++) {
        s.amp[k][i] = uniform(...sig.amplitude);
        s.period[k][i] = Math.exp(uniform(Math.log(sig.period[0]), Math.log(sig.period[1])));
        s.phase[k][i] = uniform(0, 2 * Math.PI);
      }
      s.noise[i] = uniform(...sig.noise);
    }
    return s;
  }

  function inject(i) {
    if (sim.anomaly[i]) return;
    const kinds = ['spike', 'shift', 'stuck', 'frequency'];
    const kind = kinds[Math.floor(rand() * kinds.length)];
    const sign = rand() < 0.5 ? -1 : 1;
    const length = kind === 'spike' ? 1 : Math.round(uniform(25, 50));
    sim.anomaly[i] = {
      kind,
      start: tick + 1,
      end: tick + length,
      delta: kind === 'spike' ? sign * uniform(0.6, 1.0) : sign * uniform(0.4, 0.6),
      value: sim.value[i],
      detected: false,
    };
    stats.injected++;
  }

  function simulate() {
    tick++;
    const s = sim;
    for (let i = 0; i < n; i++) {
      let a = s.anomaly[i];
      if (a && tick > a.end + GRACE) {
        s.anomaly[i] = a = null;
      }
      const active = a && tick >= a.start && tick <= a.end ? a : null;
      s.clock[i] += active?.kind === 'frequency' ? 2.5 : 1;
      const t = s.clock[i];
      let v = s.offset[i] + s.noise[i] * gauss();
      for (let k = 0; k < 2; k++) v += s.amp[k][i] * Math.sin((2 * Math.PI * t) / s.period[k][i] + s.phase[k][i]);
      if (active?.kind === 'spike' || active?.kind === 'shift') v += active.delta;
      if (active?.kind === 'stuck') v = active.value;
      s.value[i] = v;

      // Score the forecast made at the previous tick.
      const error = Math.abs(s.forecast[i] - v);
      const score = tick > WARMUP ? error / Math.max(s.usual[i], 0.01) : 0;
      const flagged = tick > WARMUP && score > FLAG_SCORE && error > FLAG_ERROR;
      if (flagged && !s.flagged[i]) {
        if (a && !a.detected) {
          a.detected = true;
          stats.detected++;
        } else if (!a) {
          stats.falseAlarms++;
        }
      }
      if (!flagged) s.usual[i] = tick <= WARMUP ? 0.9 * s.usual[i] + 0.1 * error : 0.98 * s.usual[i] + 0.02 * error;
      s.score[i] = score;
      s.flagged[i] = flagged ? 1 : 0;
      // Usual scores (up to ~3) stay neutral; the cell turns red towards the flag threshold.
      const warm = Math.min(0.7, Math.max(0, (score - 3) / (FLAG_SCORE - 3)));
      s.heat[i] = Math.max(0.92 * s.heat[i], warm, flagged ? 1 : 0);
      if (i < WATCHED) {
        const lane = s.lanes[i];
        lane.push({ value: v, forecast: tick > 1 ? s.forecast[i] : NaN, injected: !!active, flagged });
        if (lane.length > HISTORY) lane.shift();
      }
    }
  }

  // --- sessions --------------------------------------------------------------------------------
  // Start where the package's 'auto' would: WebGPU on a hardware adapter, the CPU over a software
  // one (SwiftShader emulates the GPU on this CPU: slower than the CPU kernels). The toggle offers both.
  const auto = await Runtime.create({ backend: 'auto' });
  let backend = runtimes.webgpu && auto.backend === 'webgpu' ? 'webgpu' : 'cpu';
  if (runtimes.webgpu && backend === 'cpu') {
    $('gpu-note').textContent = `Starting on the CPU: ${auto.gpuError}. The toggle runs the same sessions on WebGPU.`;
  }
  let model;
  let sessions = [];
  let generation = 0; // session ids must be unique per model while the old sessions still live

  async function setUp(nextBackend, count) {
    let nextModel;
    try {
      nextModel = await modelOn(nextBackend);
    } catch (e) {
      if (nextBackend !== 'webgpu') throw e;
      // The adapter is there but the GPU backend cannot run the model here: fall back, and say so.
      console.warn('webrnn demo: WebGPU failed, falling back to the CPU:', e);
      markGpuUnavailable(e instanceof BackendUnavailableError ? e.message : `${e.name}: ${e.message}`);
      return setUp('cpu', count);
    }
    // Moving to another backend keeps every sensor's state: snapshot out, snapshot in.
    const keep = count === n && model && nextModel !== model;
    if (keep) await model.idle(); // on WebGPU the newest state is on the GPU until then
    const next = [];
    generation++;
    for (let i = 0; i < count; i++) {
      const s = nextModel.createSession(`sensor-${i}.${generation}`);
      if (keep) s.loadState(sessions[i].saveState());
      next.push(s);
    }
    for (const s of sessions) s.dispose();
    sessions = next;
    model = nextModel;
    backend = nextBackend;
    if (count !== n) {
      n = count;
      sim = newSimulation(count);
      tick = 0;
      Object.assign(stats, { injected: 0, detected: 0, falseAlarms: 0 });
      sizeGrid();
    }
    (backend === 'webgpu' ? gpuRadio : cpuRadio).checked = true;
    const badge = $('stream-backend');
    badge.textContent = runtimes[backend].backend;
    badge.classList.toggle('fallback', backend !== 'webgpu');
    panel.dataset.backend = runtimes[backend].backend;
    rate.length = 0;
  }

  // --- the loop --------------------------------------------------------------------------------
  let running = true;
  let busy = null;
  const rate = [];

  async function frame() {
    if (!running) return;
    simulate();
    if (tick % AUTO_EVERY === 0) inject(rand() < 0.5 ? Math.floor(rand() * WATCHED) : Math.floor(rand() * n));
    const forecast = await model.stepBatch(sessions, sim.value);
    sim.forecast.set(forecast);
    const now = performance.now();
    rate.push(now);
    while (rate.length > 2 && now - rate[0] > 1000) rate.shift();
    draw();
    if (tick % 10 === 0) showStats();
    panel.dataset.ticks = String(tick);
  }

  function loop() {
    if (!running) return;
    busy = frame()
      .catch((e) => {
        running = false;
        onFatal(e);
      })
      .finally(() => {
        busy = null;
        if (running) requestAnimationFrame(loop);
      });
  }

  async function pause() {
    running = false;
    await busy;
  }

  function resume() {
    if (running) return;
    running = true;
    requestAnimationFrame(loop);
  }

  function showStats() {
    const perSecond = rate.length > 1 ? ((rate.length - 1) * 1000) / (rate[rate.length - 1] - rate[0]) : 0;
    const lat = runtimes[backend].stats().latencyUs;
    $('stream-rate').textContent =
      `${fmt(perSecond * n)} session-steps/s · ${n} sessions × ${perSecond.toFixed(0)} ticks/s`;
    $('stream-latency').textContent =
      `p50 ${(lat.p50 / 1000).toFixed(2)} ms · p95 ${(lat.p95 / 1000).toFixed(2)} ms for ${n} sessions ` +
      `(capacity ${fmt((n * 1e6) / Math.max(lat.p50, 1))} steps/s)`;
    let top = 0;
    for (let i = 1; i < n; i++) if (sim.score[i] > sim.score[top]) top = i;
    $('stream-scores').textContent =
      `injected ${stats.injected} · detected ${stats.detected} · false alarms ${stats.falseAlarms} · ` +
      `top score ${sim.score[top].toFixed(1)} (sensor ${top})`;
    Object.assign(panel.dataset, {
      injected: stats.injected,
      detected: stats.detected,
      falseAlarms: stats.falseAlarms,
    });
  }

  // --- drawing ---------------------------------------------------------------------------------
  const chart = $('stream-chart');
  const grid = $('stream-grid');
  let colors = readColors();
  matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => {
    colors = readColors();
  });
  let gridCols = 1;
  function sizeGrid() {
    gridCols = Math.ceil(Math.sqrt(n * (grid.width / grid.height)));
  }
  const resize = () => {
    for (const canvas of [chart, grid]) {
      const ratio = window.devicePixelRatio || 1;
      const width = Math.max(1, Math.round(canvas.clientWidth * ratio));
      const height = Math.max(1, Math.round((width * Number(canvas.getAttribute('height'))) / Number(canvas.getAttribute('width'))));
      if (canvas.width !== width || canvas.height !== height) {
        canvas.width = width;
        canvas.height = height;
      }
    }
    if (n) sizeGrid();
  };
  new ResizeObserver(resize).observe(chart);

  function draw() {
    drawChart();
    drawGrid();
  }

  function drawChart() {
    const ctx = chart.getContext('2d');
    const { width: w, height: h } = chart;
    const ratio = w / chart.getAttribute('width');
    ctx.clearRect(0, 0, w, h);
    const laneH = h / WATCHED;
    const x = (j) => (j / (HISTORY - 1)) * w;
    ctx.font = `${11 * ratio}px system-ui, sans-serif`;
    for (let i = 0; i < WATCHED; i++) {
      const lane = sim.lanes[i];
      const top = i * laneH;
      const y = (v) => top + laneH / 2 - (v / 1.6) * (laneH / 2);
      const offset = HISTORY - lane.length;
      ctx.fillStyle = colors.injected;
      for (let j = 0; j < lane.length; j++) {
        if (!lane[j].injected) continue;
        const from = j;
        while (j + 1 < lane.length && lane[j + 1].injected) j++;
        const half = w / (HISTORY - 1) / 2;
        ctx.fillRect(x(from + offset) - half, top, x(j + offset) - x(from + offset) + 2 * half, laneH);
      }
      if (i > 0) {
        ctx.fillStyle = colors.line;
        ctx.fillRect(0, top, w, ratio);
      }
      line(ctx, lane, offset, x, y, 'forecast', colors.forecast, 1.25 * ratio);
      line(ctx, lane, offset, x, y, 'value', colors.value, 1.5 * ratio);
      ctx.fillStyle = colors.flag;
      lane.forEach((p, j) => {
        if (p.flagged) {
          ctx.beginPath();
          ctx.arc(x(j + offset), y(p.value), 3.2 * ratio, 0, 2 * Math.PI);
          ctx.fill();
        }
      });
      ctx.fillStyle = colors.muted;
      ctx.fillText(`sensor ${i} · score ${sim.score[i].toFixed(1)}`, 6 * ratio, top + 14 * ratio);
    }
  }

  function drawGrid() {
    const ctx = grid.getContext('2d');
    const { width: w, height: h } = grid;
    ctx.clearRect(0, 0, w, h);
    const rows = Math.ceil(n / gridCols);
    const cw = w / gridCols;
    const ch = h / rows;
    for (let i = 0; i < n; i++) {
      const heat = sim.heat[i];
      ctx.fillStyle = heat > 0.999 ? colors.flag : mix(colors.cellRgb, colors.flagRgb, heat * 0.8);
      ctx.fillRect((i % gridCols) * cw + 0.5, Math.floor(i / gridCols) * ch + 0.5, cw - 1, ch - 1);
    }
  }

  // --- controls --------------------------------------------------------------------------------
  for (const radio of [cpuRadio, gpuRadio]) {
    radio.addEventListener('change', async () => {
      if (!radio.checked || radio.value === backend) return;
      const wasRunning = running;
      await pause();
      try {
        await setUp(radio.value, n);
      } finally {
        if (wasRunning) resume();
      }
    });
  }
  $('stream-count').addEventListener('change', async (event) => {
    const wasRunning = running;
    await pause();
    try {
      await setUp(backend, Number(event.target.value));
    } finally {
      if (wasRunning) resume();
    }
  });
  const runButton = $('stream-run');
  runButton.addEventListener('click', async () => {
    if (running) {
      await pause();
      runButton.textContent = 'Run';
      runButton.setAttribute('aria-pressed', 'false');
    } else {
      resume();
      runButton.textContent = 'Pause';
      runButton.setAttribute('aria-pressed', 'true');
    }
  });
  $('stream-inject').addEventListener('click', () => inject(Math.floor(rand() * WATCHED)));

  // --- start -----------------------------------------------------------------------------------
  await setUp(backend, Number($('stream-count').value));
  resize();
  await frame();
  panel.dataset.ready = 'true';
  requestAnimationFrame(loop);
  return { backend: () => runtimes[backend].backend };
}

function line(ctx, lane, offset, x, y, key, color, width) {
  ctx.strokeStyle = color;
  ctx.lineWidth = width;
  ctx.beginPath();
  let pen = false;
  lane.forEach((p, j) => {
    const v = p[key];
    if (Number.isNaN(v)) {
      pen = false;
      return;
    }
    if (pen) ctx.lineTo(x(j + offset), y(v));
    else ctx.moveTo(x(j + offset), y(v));
    pen = true;
  });
  ctx.stroke();
}

function readColors() {
  const css = getComputedStyle(document.documentElement);
  const get = (name) => css.getPropertyValue(name).trim();
  return {
    value: get('--chart-value'),
    forecast: get('--chart-forecast'),
    injected: get('--chart-injected'),
    flag: get('--chart-flag'),
    line: get('--line'),
    muted: get('--muted'),
    cellRgb: rgb(get('--line')),
    flagRgb: rgb(get('--chart-flag')),
  };
}

/** "#rrggbb" -> [r, g, b]. */
function rgb(hex) {
  const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex);
  return m ? [1, 2, 3].map((k) => parseInt(m[k], 16)) : [128, 128, 128];
}

function mix(a, b, t) {
  const c = a.map((v, k) => Math.round(v + (b[k] - v) * Math.min(1, Math.max(0, t))));
  return `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
}

function fmt(value) {
  if (value >= 1e6) return `${(value / 1e6).toFixed(2)} M`;
  if (value >= 1e3) return `${(value / 1e3).toFixed(1)} k`;
  return value.toFixed(0);
}

/** A small seeded PRNG, so every visit shows the same sensors. */
function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function fetchJson(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.json();
}
