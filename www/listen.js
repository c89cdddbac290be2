// Panel "listen": voice activity detection on the microphone with webrnn/audio's MicVad and
// Silero VAD (models/silero-vad.onnx: PyPI silero-vad 6.2.3's silero_vad_16k_op15.onnx, MIT).
// "Start listening" asks for the microphone; the chart shows the last 10 s of speech probability
// (32 ms frames) with the thresholds, and each completed segment gets a row with its start, its
// duration and a play button. <section id="listen"> carries data-segments (completed speech
// segments), data-frames (frames processed) and data-heard (seconds of audio processed since
// the first start) for the e2e test (xtask/e2e/demo.mjs).

import { MicVad } from '/pkg/webrnn-audio.js';

const MODEL = 'models/silero-vad.onnx';
const HISTORY_S = 10;

const $ = (id) => document.getElementById(id);

export function startListen(runtime) {
  const panel = $('listen');
  const button = $('listen-start');
  const note = $('listen-note');
  const chart = $('listen-chart');
  const list = $('listen-segments');
  $('listen-backend').textContent = `${runtime.backend} · wasm ${runtime.variant}`;

  let mic = null;
  let starting = null;
  /** Seconds of audio before the Vad's current run (it restarts its clock after a pause). */
  let offset = 0;
  let heard = 0;
  let frames = 0;
  let segments = 0;
  let speaking = false;
  /** [time, probability] of recent frames; and the spans of speech, for the chart. */
  const probs = [];
  const spans = [];
  let player = null;

  const setData = () => {
    panel.dataset.segments = String(segments);
    panel.dataset.frames = String(frames);
    panel.dataset.heard = heard.toFixed(2);
  };
  setData();

  function onFrame(e) {
    frames++;
    heard = offset + e.end;
    probs.push([heard, e.probability]);
    while (probs.length && probs[0][0] < heard - HISTORY_S) probs.shift();
    setData();
  }

  function onStart(e) {
    speaking = true;
    spans.push({ start: offset + e.start, end: null });
    $('listen-state').textContent = 'speaking…';
  }

  function onEnd(e) {
    speaking = false;
    const span = spans[spans.length - 1];
    if (span) span.end = offset + e.end;
    if (e.type === 'misfire') {
      if (span) span.misfire = true;
      $('listen-state').textContent = 'misfire (too short)';
      return;
    }
    segments++;
    setData();
    $('listen-state').textContent = 'silence';
    addRow(offset + e.start, e.end - e.start, e.audio);
  }

  function addRow(start, duration, audio) {
    const li = document.createElement('li');
    li.dataset.start = start.toFixed(3);
    li.dataset.duration = duration.toFixed(3);
    const label = document.createElement('span');
    label.textContent = `at ${start.toFixed(2)} s · ${duration.toFixed(2)} s`;
    const play = document.createElement('button');
    play.type = 'button';
    play.textContent = 'Play';
    play.setAttribute('aria-label', `Play the segment at ${start.toFixed(2)} s`);
    play.addEventListener('click', () => playAudio(audio));
    li.append(label, play);
    list.prepend(li);
    $('listen-count').textContent = String(segments);
  }

  function playAudio(audio) {
    player ??= new AudioContext();
    const buffer = player.createBuffer(1, audio.length, 16000);
    buffer.copyToChannel(audio, 0);
    const source = player.createBufferSource();
    source.buffer = buffer;
    source.connect(player.destination);
    player.resume().then(() => source.start());
  }

  async function start() {
    note.textContent = 'Loading Silero VAD and asking for the microphone…';
    const m = await MicVad.create(runtime, { model: MODEL, onError: (e) => fail(e) });
    m.vad.addEventListener('frame', onFrame);
    m.vad.addEventListener('speechstart', onStart);
    m.vad.addEventListener('speechend', onEnd);
    m.vad.addEventListener('misfire', onEnd);
    const i = m.vad.info;
    note.textContent = `Silero ${i.version} (${i.frameSamples} samples per frame at 16 kHz, ${i.contextSamples} of context), microphone at ${m.audioContext.sampleRate} Hz.`;
    return m;
  }

  function fail(e) {
    console.warn('webrnn demo: listen:', e);
    note.textContent = `Microphone unavailable: ${e?.message ?? e}`;
    note.classList.add('unavailable');
    button.textContent = 'Start listening';
    button.setAttribute('aria-pressed', 'false');
  }

  button.addEventListener('click', async () => {
    if (starting) return;
    try {
      if (mic?.listening) {
        // The Vad's clock restarts after a pause: later times continue from here.
        offset = heard;
        await mic.pause();
        speaking = false;
        button.textContent = 'Start listening';
        button.setAttribute('aria-pressed', 'false');
        $('listen-state').textContent = 'paused';
        return;
      }
      button.textContent = 'Pause';
      button.setAttribute('aria-pressed', 'true');
      starting = mic ? mic.start() : start();
      const m = await starting;
      if (m) mic = m;
      note.classList.remove('unavailable');
      $('listen-state').textContent = 'silence';
    } catch (e) {
      fail(e);
    } finally {
      starting = null;
    }
  });

  setInterval(() => {
    if (!mic) return;
    const l = mic.vad.latency();
    if (l.samples) $('listen-latency').textContent = `p50 ${l.p50.toFixed(2)} ms · p95 ${l.p95.toFixed(2)} ms (${mic.vad.frameMs} ms frames)`;
  }, 500);

  // --- chart ---------------------------------------------------------------------------------
  const resize = () => {
    const ratio = window.devicePixelRatio || 1;
    const width = Math.max(1, Math.round(chart.clientWidth * ratio));
    const height = Math.max(1, Math.round((width * Number(chart.getAttribute('height'))) / Number(chart.getAttribute('width'))));
    if (chart.width !== width || chart.height !== height) [chart.width, chart.height] = [width, height];
  };
  new ResizeObserver(resize).observe(chart);

  let drawn = -1;
  function draw() {
    requestAnimationFrame(draw);
    const { width: w, height: h } = chart;
    if (drawn === frames * 1e6 + w) return; // nothing new
    drawn = frames * 1e6 + w;
    const ctx = chart.getContext('2d');
    const css = getComputedStyle(document.documentElement);
    const color = (name) => css.getPropertyValue(name).trim();
    ctx.clearRect(0, 0, w, h);
    const now = Math.max(heard, HISTORY_S);
    const x = (t) => ((t - (now - HISTORY_S)) / HISTORY_S) * w;
    const y = (p) => h - p * (h - 4) - 2;
    for (const s of spans) {
      const end = s.end ?? (speaking ? now : s.start);
      if (end < now - HISTORY_S) continue;
      ctx.fillStyle = s.misfire ? color('--line') : color('--accent-soft');
      ctx.fillRect(x(s.start), 0, Math.max(1, x(end) - x(s.start)), h);
    }
    ctx.fillStyle = color('--muted');
    const thresholds = mic?.vad.options ?? { positiveSpeechThreshold: 0.3, negativeSpeechThreshold: 0.25 };
    for (const t of [thresholds.positiveSpeechThreshold, thresholds.negativeSpeechThreshold]) ctx.fillRect(0, y(t), w, 1);
    ctx.strokeStyle = color('--chart-value');
    ctx.lineWidth = 1.5 * (window.devicePixelRatio || 1);
    ctx.beginPath();
    probs.forEach(([t, p], i) => (i ? ctx.lineTo(x(t), y(p)) : ctx.moveTo(x(t), y(p))));
    ctx.stroke();
  }
  requestAnimationFrame(draw);

  return { backend: runtime.backend };
}
