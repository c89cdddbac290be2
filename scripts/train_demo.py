#!/usr/bin/env python3
"""Train the two demo models of www/ and export them to ONNX (legacy exporter).

    www/models/text-gru.onnx      character-level language model for the "type" panel:
                                  Embedding(V, 48) -> GRU(48, 256) -> Linear(256, V) -> LogSoftmax
                                  inputs  x [B, T] int64 token ids, h0 [1, B, 256]
                                  outputs y [B, T, V] log-probabilities, h_n [1, B, 256]
    www/models/text-gru.json      its vocabulary and training report
    www/models/stream-lstm.onnx   next-value forecaster for the "stream" panel:
                                  LSTM(1, 48) -> Linear(48, 1)
                                  inputs  x [B, T, 1] float32, h0 [1, B, 48], c0 [1, B, 48]
                                  outputs y [B, T, 1] forecast of the next value, h_n, c_n
    www/models/stream-lstm.json   the signal family it was trained on and its training report

The text corpus is Debian's `fortunes` package (fortune-mod, BSD licence; `apt-get install
fortunes`), read from /usr/share/games/fortunes: a curated subset of its English files, each
fortune reflowed to one line (newline = end of a fortune), ASCII only. The stream model trains on
synthetic signals (two sines + offset + noise) that www/stream.js generates the same way.

Both models are trained with truncated backpropagation through time and the hidden state carried
across chunks, as the page uses them: one session per user (or per sensor) stepped indefinitely.

Run by hand; outputs are committed. About 10 minutes on one core:

    nice -n 19 /work/golden-venv/bin/python scripts/train_demo.py            # both
    ... scripts/train_demo.py --only text --minutes 8                          # one, time budget
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import math
import random
import re
import sys
import time
import unicodedata
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "www" / "models"
FORTUNES = Path("/usr/share/games/fortunes")
# English prose and verse; left out: IRC logs, ASCII art, Star Trek/Zippy quotes, Linux/Perl/Debian
# in-jokes, and the files with jokes about groups of people.
FORTUNE_FILES = [
    "art", "computers", "cookie", "definitions", "education", "food", "fortunes", "humorists",
    "kids", "law", "literature", "love", "magic", "medicine", "miscellaneous", "news",
    "paradoxum", "people", "pets", "platitudes", "politics", "riddles", "science",
    "songs-poems", "sports", "tao", "wisdom", "work",
]
# Token 0 is newline (end of a fortune), tokens 1..95 are printable ASCII ' '..'~'.
VOCAB = "\n" + "".join(chr(c) for c in range(32, 127))

logging.getLogger("torch.onnx").setLevel(logging.ERROR)
warnings.filterwarnings("ignore")
torch.set_num_threads(1)


# --------------------------------------------------------------------------------------------
# Text model
# --------------------------------------------------------------------------------------------


def clean_fortune(text: str) -> str:
    text = re.sub(r".\x08", "", text)  # overstriking: "_\bX" underlines X
    text = unicodedata.normalize("NFKD", text)
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
    text = "".join(c for c in text if 32 <= ord(c) < 127 or c in "\n\t")
    return " ".join(text.split())  # reflow: one line per fortune


def load_corpus() -> list[str]:
    if not FORTUNES.is_dir():
        sys.exit(f"{FORTUNES} not found: apt-get install fortunes")
    fortunes = []
    for name in FORTUNE_FILES:
        raw = (FORTUNES / name).read_text(encoding="utf-8", errors="replace")
        for entry in raw.split("\n%\n"):
            line = clean_fortune(entry.strip("%\n"))
            if len(line) >= 20:
                fortunes.append(line)
    return fortunes


class CharLM(nn.Module):
    def __init__(self, vocab: int, embed: int, hidden: int):
        super().__init__()
        self.embed = nn.Embedding(vocab, embed)
        self.rnn = nn.GRU(embed, hidden, num_layers=1, batch_first=True)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, x: torch.Tensor, h0: torch.Tensor):
        y, h_n = self.rnn(self.embed(x), h0)
        return torch.log_softmax(self.head(y), dim=-1), h_n


def streams(ids: np.ndarray, batch: int) -> torch.Tensor:
    """The corpus cut into `batch` contiguous streams, one per row (classic char-rnn batching)."""
    n = len(ids) // batch
    return torch.from_numpy(ids[: n * batch].reshape(batch, n).astype(np.int64))


@torch.no_grad()
def evaluate(model: CharLM, data: torch.Tensor, seq: int) -> float:
    model.eval()
    h = torch.zeros(1, data.shape[0], model.rnn.hidden_size)
    total, count = 0.0, 0
    for i in range(0, data.shape[1] - 1, seq):
        x = data[:, i : i + seq]
        t = data[:, i + 1 : i + 1 + seq]
        x = x[:, : t.shape[1]]
        y, h = model(x, h)
        total += nn.functional.nll_loss(y.reshape(-1, y.shape[-1]), t.reshape(-1), reduction="sum").item()
        count += t.numel()
    model.train()
    return total / count


def train_text(minutes: float, seed: int) -> dict:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    fortunes = load_corpus()
    random.shuffle(fortunes)
    split = int(len(fortunes) * 0.98)
    index = {c: i for i, c in enumerate(VOCAB)}
    encode = lambda lines: np.array([index[c] for c in "\n".join(lines) + "\n"], dtype=np.int64)  # noqa: E731
    train_ids, val_ids = encode(fortunes[:split]), encode(fortunes[split:])
    print(f"text: {len(fortunes)} fortunes, {len(train_ids)} train / {len(val_ids)} val characters, vocab {len(VOCAB)}")

    batch, seq = 32, 128
    model = CharLM(len(VOCAB), 48, 256)
    params = sum(p.numel() for p in model.parameters())
    print(f"text: {params} parameters")
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    train = streams(train_ids, batch)
    val = streams(val_ids, 8)
    chunks = (train.shape[1] - 1) // seq

    budget = minutes * 60
    started = time.time()
    step, epoch = 0, 0
    h = torch.zeros(1, batch, 256)
    ema = None
    while True:
        c = step % chunks
        if c == 0 and step > 0:
            epoch += 1
        if c == 0:
            h = torch.zeros(1, batch, 256)
        x = train[:, c * seq : (c + 1) * seq]
        t = train[:, c * seq + 1 : (c + 1) * seq + 1]
        y, h = model(x, h)
        h = h.detach()
        loss = nn.functional.nll_loss(y.reshape(-1, y.shape[-1]), t.reshape(-1))
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
        # Cosine decay to 5% over the time budget (the machine is shared: its speed varies).
        frac = min(1.0, (time.time() - started) / budget)
        for g in opt.param_groups:
            g["lr"] = 3e-3 * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * frac)))
        if frac >= 1.0:
            break
        if step % 100 == 0:
            print(f"text: step {step} epoch {epoch} loss {ema:.3f} ({time.time() - started:.0f} s)", flush=True)

    val_loss = evaluate(model, val, 256)
    train_loss = ema
    print(f"text: train loss {train_loss:.3f} nats/char, validation {val_loss:.3f} nats/char ({val_loss / math.log(2):.2f} bits/char)")
    model.eval()
    print("text: sample:", repr(sample(model, "The best way to ", 80)))

    path = OUT / "text-gru.onnx"
    x = torch.randint(0, len(VOCAB), (2, 5))
    h0 = torch.zeros(1, 2, 256)
    export(model, (x, h0), path, ["x", "h0"], ["y", "h_n"], {"x": {0: "batch", 1: "time"}, "h0": {1: "batch"}})
    check_text_onnx(model, path)
    meta = {
        "model": "text-gru.onnx",
        "kind": "char-lm",
        "architecture": "Embedding(96, 48) -> GRU(48, 256) -> Linear(256, 96) -> LogSoftmax",
        "vocab": VOCAB,
        "end_of_text": 0,
        "corpus": {
            "package": "Debian fortunes (source package fortune-mod), BSD licence",
            "path": str(FORTUNES),
            "files": FORTUNE_FILES,
            "fortunes": len(fortunes),
            "characters": int(len(train_ids) + len(val_ids)),
        },
        "training": {
            "steps": step, "batch": batch, "seq": seq, "epochs": round(step / chunks, 2),
            "seconds": round(time.time() - started), "parameters": params,
            "train_loss": round(train_loss, 4), "val_loss": round(val_loss, 4),
            "val_bits_per_char": round(val_loss / math.log(2), 3), "seed": seed,
            "torch": torch.__version__,
        },
    }
    (OUT / "text-gru.json").write_text(json.dumps(meta, indent=1) + "\n")
    return meta


@torch.no_grad()
def sample(model: CharLM, prompt: str, n: int) -> str:
    index = {c: i for i, c in enumerate(VOCAB)}
    h = torch.zeros(1, 1, model.rnn.hidden_size)
    y, h = model(torch.tensor([[index[c] for c in prompt]]), h)
    out = prompt
    for _ in range(n):
        nxt = int(y[0, -1].argmax())
        if nxt == 0:
            break
        out += VOCAB[nxt]
        y, h = model(torch.tensor([[nxt]]), h)
    return out


def check_text_onnx(model: CharLM, path: Path) -> None:
    """onnxruntime reproduces torch on a batch of 3 x 40 characters, and step by step (T = 1)."""
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = torch.randint(0, len(VOCAB), (3, 40))
    h0 = 0.3 * torch.randn(1, 3, 256)
    with torch.no_grad():
        y, h_n = model(x, h0)
    oy, oh = sess.run(None, {"x": x.numpy(), "h0": h0.numpy()})
    h = h0.numpy()
    steps = []
    for t in range(x.shape[1]):
        sy, h = sess.run(None, {"x": x[:, t : t + 1].numpy(), "h0": h})
        steps.append(sy)
    sy = np.concatenate(steps, axis=1)
    d = max(abs(oy - y.numpy()).max(), abs(oh - h_n.numpy()).max(), abs(sy - y.numpy()).max(), abs(h - h_n.numpy()).max())
    print(f"text: onnxruntime vs torch max abs diff {d:.2e} (whole sequence and step by step)")
    assert d < 1e-4, d


# --------------------------------------------------------------------------------------------
# Stream model
# --------------------------------------------------------------------------------------------

# The signal family, mirrored in www/stream.js: value(t) = offset + sum_k amp_k * sin(2 pi t /
# period_k + phase_k) + noise * N(0, 1).
SIGNAL = {
    "sines": 2,
    "period": [12.0, 80.0],
    "amplitude": [0.15, 0.5],
    "offset": [-0.3, 0.3],
    "noise": [0.005, 0.04],
}


def signals(batch: int, length: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(length, dtype=np.float64)[None, :]
    lo, hi = SIGNAL["period"]
    out = rng.uniform(*SIGNAL["offset"], size=(batch, 1)) + np.zeros((batch, length))
    for _ in range(SIGNAL["sines"]):
        period = np.exp(rng.uniform(math.log(lo), math.log(hi), size=(batch, 1)))
        amp = rng.uniform(*SIGNAL["amplitude"], size=(batch, 1))
        phase = rng.uniform(0, 2 * math.pi, size=(batch, 1))
        out += amp * np.sin(2 * math.pi * t / period + phase)
    out += rng.uniform(*SIGNAL["noise"], size=(batch, 1)) * rng.standard_normal((batch, length))
    return out.astype(np.float32)


class Forecaster(nn.Module):
    def __init__(self, hidden: int):
        super().__init__()
        self.rnn = nn.LSTM(1, hidden, num_layers=1, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor):
        y, (h_n, c_n) = self.rnn(x, (h0, c0))
        return self.head(y), h_n, c_n


@torch.no_grad()
def stream_error(model: Forecaster, data: np.ndarray, skip: int) -> tuple[float, float]:
    """RMSE of the forecast (after `skip` warm-up steps) and of the naive last-value forecast."""
    x = torch.from_numpy(data[:, :-1, None])
    b, hidden = data.shape[0], model.rnn.hidden_size
    y, _, _ = model(x, torch.zeros(1, b, hidden), torch.zeros(1, b, hidden))
    err = y[:, skip:, 0].numpy() - data[:, skip + 1 :]
    naive = data[:, skip:-1] - data[:, skip + 1 :]
    return float(np.sqrt((err**2).mean())), float(np.sqrt((naive**2).mean()))


def train_stream(minutes: float, seed: int) -> dict:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    hidden, batch, seq, chunks = 48, 128, 64, 8  # each episode: 8 chunks of 64 steps, state carried
    model = Forecaster(hidden)
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    budget = minutes * 60
    started = time.time()
    step, ema = 0, None
    while True:
        data = torch.from_numpy(signals(batch, seq * chunks + 1, rng))
        h = torch.zeros(1, batch, hidden)
        c = torch.zeros(1, batch, hidden)
        for k in range(chunks):
            x = data[:, k * seq : (k + 1) * seq, None]
            t = data[:, k * seq + 1 : (k + 1) * seq + 1, None]
            y, h, c = model(x, h, c)
            h, c = h.detach(), c.detach()
            # The first steps of an episode cannot know the signal yet: weigh them less.
            loss = nn.functional.mse_loss(y[:, 8:] if k == 0 else y, t[:, 8:] if k == 0 else t)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1
            ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
        frac = min(1.0, (time.time() - started) / budget)
        for g in opt.param_groups:
            g["lr"] = 5e-3 * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * frac)))
        if frac >= 1.0:
            break
        if step % 800 == 0:
            print(f"stream: step {step} mse {ema:.5f} ({time.time() - started:.0f} s)", flush=True)

    model.eval()
    test = signals(256, 1025, np.random.default_rng(seed + 1))
    rmse, naive = stream_error(model, test, 64)
    print(f"stream: {params} parameters, train mse {ema:.5f}; test RMSE {rmse:.4f} vs last-value RMSE {naive:.4f}")

    path = OUT / "stream-lstm.onnx"
    x = torch.randn(2, 5, 1)
    z = torch.zeros(1, 2, hidden)
    export(model, (x, z, z), path, ["x", "h0", "c0"], ["y", "h_n", "c_n"],
           {"x": {0: "batch", 1: "time"}, "h0": {1: "batch"}, "c0": {1: "batch"}})
    check_stream_onnx(model, path)
    meta = {
        "model": "stream-lstm.onnx",
        "kind": "forecaster",
        "architecture": f"LSTM(1, {hidden}) -> Linear({hidden}, 1)",
        "signal": SIGNAL,
        "training": {
            "steps": step, "batch": batch, "seq": seq, "seconds": round(time.time() - started),
            "parameters": params, "train_mse": round(ema, 6), "test_rmse": round(rmse, 5),
            "last_value_rmse": round(naive, 5), "seed": seed, "torch": torch.__version__,
        },
    }
    (OUT / "stream-lstm.json").write_text(json.dumps(meta, indent=1) + "\n")
    return meta


def check_stream_onnx(model: Forecaster, path: Path) -> None:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    hidden = model.rnn.hidden_size
    x = torch.from_numpy(signals(3, 50, np.random.default_rng(7))[:, :, None])
    h0, c0 = 0.3 * torch.randn(1, 3, hidden), 0.3 * torch.randn(1, 3, hidden)
    with torch.no_grad():
        y, h_n, c_n = model(x, h0, c0)
    oy, oh, oc = sess.run(None, {"x": x.numpy(), "h0": h0.numpy(), "c0": c0.numpy()})
    h, c, steps = h0.numpy(), c0.numpy(), []
    for t in range(x.shape[1]):
        sy, h, c = sess.run(None, {"x": x[:, t : t + 1].numpy(), "h0": h, "c0": c})
        steps.append(sy)
    sy = np.concatenate(steps, axis=1)
    d = max(abs(oy - y.numpy()).max(), abs(oh - h_n.numpy()).max(), abs(oc - c_n.numpy()).max(),
            abs(sy - y.numpy()).max(), abs(h - h_n.numpy()).max())
    print(f"stream: onnxruntime vs torch max abs diff {d:.2e} (whole sequence and step by step)")
    assert d < 1e-4, d


# --------------------------------------------------------------------------------------------


def export(model, args, path: Path, inputs, outputs, dynamic_axes) -> None:
    model.eval()
    buf = io.BytesIO()
    torch.onnx.export(model, args, buf, dynamo=False, input_names=inputs, output_names=outputs,
                      dynamic_axes=dynamic_axes, opset_version=17, do_constant_folding=True)
    proto = onnx.load_from_string(buf.getvalue())
    onnx.checker.check_model(proto)
    path.write_bytes(proto.SerializeToString())
    print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size} bytes)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["text", "stream"])
    parser.add_argument("--minutes", type=float, help="training time budget per model (default: text 8, stream 1.5)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if args.only in (None, "stream"):
        train_stream(args.minutes or 1.5, args.seed)
    if args.only in (None, "text"):
        train_text(args.minutes or 8, args.seed)


if __name__ == "__main__":
    main()
