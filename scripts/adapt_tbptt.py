#!/usr/bin/env python3
"""#17's question: does adapting the last recurrent layer by truncated backpropagation through time
(TBPTT) pay over adapting the output head alone? An experiment in numpy on the demo's character GRU
(www/models/text-gru.onnx: embedding 96x48, one GRU of 256 units with linear_before_reset, head
256 -> 96, log-softmax), run the way `examples/adapt.rs` runs webrnn's adapter: next-character
top-1 accuracy on the user's notes (tests/data/adapt/user_notes.txt), learning after every step,
then on generic prose (LICENSE-APACHE, chars 600..4600) with learning still on.

- head: a full delta on the head (D, d), one clipped SGD step per character (as src/adapt does).
- head + TBPTT k: the same, plus a full delta on the GRU's W, R and biases, learned from the same
  step's loss back-propagated through the last k steps of the layer (the adapted path's own hidden
  states; the base model keeps its own).
The guard is src/adapt/guard.rs's: the adapted output is used while its mean loss over the last
100 steps beats the base model's (after 16).

Needs: pip install onnx numpy. Usage: python3 scripts/adapt_tbptt.py (3 minutes). Its output on
2026-12-05 (the head-only line reproduces examples/adapt.rs's figures):

    state only: notes 0.401, prose 0.466
    head only                        notes 0.842  prose after 0.557
    head + TBPTT k= 1 lr 0.005       notes 0.859  prose after 0.570
    head + TBPTT k= 4 lr 0.005       notes 0.873  prose after 0.570
    head + TBPTT k= 8 lr 0.005       notes 0.875  prose after 0.571
    head + TBPTT k=16 lr 0.005       notes 0.876  prose after 0.570
    head + TBPTT k= 8 lr 0.02        notes 0.883  prose after 0.505
    head + TBPTT k= 8 lr 0.001       notes 0.857  prose after 0.575
    head + TBPTT k=16 lr 0.02        notes 0.881  prose after 0.507
"""

import time

import numpy as np
import onnx
from onnx import numpy_helper

ROOT = __file__.rsplit("/scripts/", 1)[0]


def load():
    m = onnx.load(f"{ROOT}/www/models/text-gru.onnx")
    t = {i.name: numpy_helper.to_array(i).astype(np.float64) for i in m.graph.initializer}
    gru = next(n for n in m.graph.node if n.op_type == "GRU")
    w, r, b = (t[gru.input[i]][0] for i in (1, 2, 3))
    return t["embed.weight"], w, r, b, t["onnx::MatMul_100"], t["head.bias"]


def tok(c):
    return 0 if c == "\n" else min(max(ord(c) - 31, 0), 95)


def sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def log_softmax(v):
    m = v.max()
    return v - (m + np.log(np.exp(v - m).sum()))


class Gru:
    """The layer with its delta; `step` returns the new state and what backprop needs."""

    def __init__(self, w, r, b):
        self.w, self.r, self.b = w, r, b
        self.dw, self.dr, self.db = np.zeros_like(w), np.zeros_like(r), np.zeros_like(b)
        self.h = w.shape[0] // 3

    def step(self, x, hp):
        H = self.h
        w, r, b = self.w + self.dw, self.r + self.dr, self.b + self.db
        gx = w @ x + b[: 3 * H]
        gh = r @ hp + b[3 * H :]
        z = sigmoid(gx[:H] + gh[:H])
        rr = sigmoid(gx[H : 2 * H] + gh[H : 2 * H])
        ah = gh[2 * H :]
        n = np.tanh(gx[2 * H :] + rr * ah)
        h = (1 - z) * n + z * hp
        return h, (x, hp, z, rr, n, ah)


def backprop(gru, cache, dh):
    """Gradients of the loss (whose gradient at the last state is `dh`) for the layer's deltas,
    through the steps in `cache` (oldest first)."""
    H = gru.h
    gw, gr, gb = np.zeros_like(gru.w), np.zeros_like(gru.r), np.zeros_like(gru.b)
    rfull = gru.r + gru.dr
    for xs, hp, z, rr, n, ah in reversed(cache):
        dn = dh * (1 - z)
        dz = dh * (hp - n)
        dprev = dh * z
        dnp = dn * (1 - n * n)
        dzp = dz * z * (1 - z)
        drp = dnp * ah * rr * (1 - rr)
        dah = dnp * rr
        gx = np.concatenate([dzp, drp, dnp])
        gh = np.concatenate([dzp, drp, dah])
        gw += np.outer(gx, xs)
        gr += np.outer(gh, hp)
        gb[: 3 * H] += gx
        gb[3 * H :] += gh
        dh = dprev + rfull.T @ gh
    return gw, gr, gb


def check_gradient(emb, w, r, b, M, c):
    """backprop against central differences, 5 steps from a zero state, a few entries of each."""
    xs = [emb[i] for i in (3, 40, 17, 88, 5)]
    y = 7

    def loss(g):
        h, cache = np.zeros(g.h), []
        for x in xs:
            h, ca = g.step(x, h)
            cache.append(ca)
        return -log_softmax(h @ M + c)[y], h, cache

    g = Gru(w, r, b)
    _, h, cache = loss(g)
    p = np.exp(log_softmax(h @ M + c))
    p[y] -= 1.0
    grads = dict(zip(("dw", "dr", "db"), backprop(g, cache, M @ p)))
    worst = 0.0
    for name, idx in [("dr", (5, 3)), ("dr", (600, 200)), ("dw", (5, 3)), ("dw", (700, 40)), ("db", (5,)), ("db", (1400,))]:
        d, eps = getattr(g, name), 1e-6
        d[idx] += eps
        lp = loss(g)[0]
        d[idx] -= 2 * eps
        lm = loss(g)[0]
        d[idx] += eps
        numeric = (lp - lm) / (2 * eps)
        worst = max(worst, abs(numeric - grads[name][idx]) / (abs(numeric) + 1e-6))
    assert worst < 1e-4, f"BPTT gradient off by {worst:.2e} (relative)"
    print(f"BPTT gradient vs central differences: worst relative error {worst:.1e}")


def clip(g, lr, max_norm=1.0):
    norm = np.sqrt(sum(float((x * x).sum()) for x in g))
    if lr * norm > max_norm:
        lr = max_norm / norm
    return lr


def run(text, emb, gru, base_gru, head, state, k, lr, lr_rec, learn=True):
    """Accuracy of the guarded output over `text`; `state` carries hidden states, deltas and window."""
    M, c = head
    hits, cost = 0, 0.0
    chars = [tok(ch) for ch in text]
    for i in range(len(chars) - 1):
        x, y = emb[chars[i]], chars[i + 1]
        t0 = time.perf_counter()
        state["hb"], _ = base_gru.step(x, state["hb"])
        state["ha"], cache = gru.step(x, state["ha"])
        state["cache"] = (state["cache"] + [cache])[-max(k, 1) :]
        base = log_softmax(state["hb"] @ M + c)
        adapted = log_softmax(state["ha"] @ (M + state["D"]) + c + state["d"])
        win = state["win"]
        active = len(win) >= 16 and np.mean([a for _, a in win]) < np.mean([b for b, _ in win])
        out = adapted if active else base
        hits += int(np.argmax(out) == y)
        if not learn:
            continue
        lb, la = -base[y], -adapted[y]
        state["win"] = (win + [(lb, la)])[-100:]
        g = np.exp(adapted)
        g[y] -= 1.0
        # The head's delta (the input is the adapted path's state).
        gD, gd = np.outer(state["ha"], g), g
        dh = (M + state["D"]) @ g
        s = clip([gD, gd], lr)
        state["D"] -= s * gD
        state["d"] -= s * gd
        if k > 0:
            gw, gr, gb = backprop(gru, state["cache"], dh)
            s = clip([gw, gr, gb], lr_rec)
            gru.dw -= s * gw
            gru.dr -= s * gr
            gru.db -= s * gb
        cost += time.perf_counter() - t0
    return hits / max(len(chars) - 1, 1), cost / max(len(chars) - 1, 1)


def fresh_state(H, head):
    M, _ = head
    return {"hb": np.zeros(H), "ha": np.zeros(H), "cache": [], "D": np.zeros_like(M), "d": np.zeros(M.shape[1]), "win": []}


def main():
    emb, w, r, b, M, c = load()
    check_gradient(emb, w, r, b, M, c)
    notes = open(f"{ROOT}/tests/data/adapt/user_notes.txt").read()
    prose = open(f"{ROOT}/LICENSE-APACHE").read()[600:4600]
    H = r.shape[1]
    head = (M, c)
    st = fresh_state(H, head)
    base_notes, _ = run(notes, emb, Gru(w, r, b), Gru(w, r, b), head, st, 0, 0.02, 0.0, learn=False)
    st = fresh_state(H, head)
    base_prose, _ = run(prose, emb, Gru(w, r, b), Gru(w, r, b), head, st, 0, 0.02, 0.0, learn=False)
    print(f"state only: notes {base_notes:.3f}, prose {base_prose:.3f}")
    for k, lr_rec in [(0, 0.0), (1, 0.005), (4, 0.005), (8, 0.005), (16, 0.005), (8, 0.02), (8, 0.001), (16, 0.02)]:
        gru, base_gru = Gru(w, r, b), Gru(w, r, b)
        st = fresh_state(H, head)
        a_notes, t = run(notes, emb, gru, base_gru, head, st, k, 0.02, lr_rec)
        a_prose, _ = run(prose, emb, gru, base_gru, head, st, k, 0.02, lr_rec)
        what = "head only" if k == 0 else f"head + TBPTT k={k:2d} lr {lr_rec}"
        print(f"{what:32s} notes {a_notes:.3f}  prose after {a_prose:.3f}  ({t * 1e3:.2f} ms per step+learn in numpy)")


if __name__ == "__main__":
    main()
