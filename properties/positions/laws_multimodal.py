"""Laws of RoPE-2D, M-RoPE and multimodal position assignment (Su kexue.fm/archives/8397, 10040, 10352; Qwen2-VL,
arXiv:2409.12191, and HF transformers ``Qwen2VLModel.get_rope_index``)."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

from veriformer.claims import Agreement
from veriformer.properties.positions.strategies import Rope2DCase, SegmentsCase, rope2d_cases, segments_cases
from veriformer.registry import law

SRC2D = "Su kexue.fm/archives/8397, 10040"
SRCMM = "Su kexue.fm/archives/10040, 10352; Wang et al. 2024 (Qwen2-VL, arXiv:2409.12191)"


def _scores(f: Any, x: np.ndarray, c: np.ndarray) -> np.ndarray:
    q, k = x, np.roll(x, 1, axis=-2)
    return f(q, c) @ np.swapaxes(f(k, c), -1, -2)


@law("positions.rope2d_relative_in_each_axis", family="positions", source=SRC2D + "; Qwen2-VL M-RoPE")
def relative_2d(ref: Any, case: Rope2DCase = rope2d_cases(), dx: int = st.integers(-3000, 3000),
                dy: int = st.integers(-3000, 3000), three: bool = st.booleans()) -> list[Agreement]:
    """``R_{x1,y1}^T R_{x2,y2} = R_{x2-x1, y2-y1}``: shifting one axis of every coordinate leaves the scores
    unchanged, in both layouts; the same for each of M-RoPE's three axes."""
    a = case.arrays()
    x, c = a["x"], a["coords"]
    if three:
        c = np.concatenate([c, c[:, :1] * 0.5], 1)
        f = lambda v, cc: ref.mrope(v, cc, sections=_sections(case.D))  # noqa: E731
        shift = np.array([dx, dy, dx - dy], float)
    else:
        f = lambda v, cc: ref.rope_2d(v, cc, layout=case.layout, pairing=case.pairing)  # noqa: E731
        shift = np.array([dx, dy], float)
    s0 = _scores(f, x, c)
    t = 8 * case.D + 16 * float(np.abs(c).max() + 3000) + 16
    sc = float(np.linalg.norm(x, axis=-1).max() ** 2)
    out = []
    for ax in range(c.shape[1]):
        e = np.zeros(c.shape[1])
        e[ax] = shift[ax]
        out.append(Agreement(_scores(f, x, c + e), s0, f"shift axis {ax}", terms=t, scale=sc))
    return out


def _sections(D: int) -> tuple[int, int, int]:
    h = D // 2
    a = h // 4
    b = (h - a) // 2
    return (a, b, h - a - b)


@law("positions.rope2d_diagonal", family="positions", source=SRC2D)
def diagonal(ref: Any, case: Rope2DCase = rope2d_cases()) -> Agreement:
    """At (n, n): the interleaved layout (b) is 1-D RoPE exactly (``R_{n,n} = R_n``); the split layout (a) is
    1-D RoPE of dim D/2 on each half (frequencies ``b^(-4i/D)``), not 1-D RoPE of dim D."""
    a = case.arrays()
    x = a["x"]
    n = a["coords"][:, 0]
    y = ref.rope_2d(x, np.stack([n, n], 1), layout=case.layout, pairing=case.pairing)
    if case.layout == "interleaved":
        want = ref.rope_at(x, n, layout=case.pairing)
    else:
        h = case.D // 2
        want = np.concatenate([ref.rope_at(x[..., :h], n, layout=case.pairing),
                               ref.rope_at(x[..., h:], n, layout=case.pairing)], -1)
    return Agreement(y, want, "R_{n,n} == 1-D form", terms=8 + 8 * float(np.abs(n).max()),
                     scale=float(np.abs(x).max()))


@law("positions.mrope_text_is_rope", family="positions", source=SRCMM + "; HF apply_multimodal_rotary_pos_emb")
def mrope_text(ref: Any, case: Rope2DCase = rope2d_cases(axes=1)) -> Agreement:
    """M-RoPE of text tokens (t = h = w = n) is 1-D RoPE (rotate-half layout) at n, whatever the sections."""
    a = case.arrays()
    x = a["x"]
    n = np.round(a["coords"][:, 0]).astype(np.int64)
    y = ref.mrope(x, np.stack([n, n, n], 1).astype(float), sections=_sections(case.D))
    return Agreement(y, ref.rope(x, n), "mrope(n, n, n) == rope(n)", terms=8 + 8 * float(np.abs(n).max()),
                     scale=float(np.abs(x).max()))


def _images(seg: SegmentsCase) -> list[tuple[int, int, int, bool, bool]]:
    """(index of the first patch, h, w, text or start before, text or end after) of every image."""
    out, i = [], 0
    segs = seg.segments
    for n, s in enumerate(segs):
        if s[0] == "image":
            out.append((i, s[1], s[2], n == 0 or segs[n - 1][0] == "text",
                        n + 1 == len(segs) or segs[n + 1][0] == "text"))
            i += s[1] * s[2]
        else:
            i += s[1]
    return out


@law("positions.rope_tie_gaps", family="positions", source=SRCMM)
def tie_gaps(ref: Any, seg: SegmentsCase = segments_cases()) -> list[Agreement]:
    """RoPE-Tie: the gap from the text token before an image to its first patch and from its last patch to the
    text token after it are both (w + 1, h + 1) (integers); RoPE-TV: both ((wh - h)/2 + 1, (wh - w)/2 + 1), and for a
    t x h x w video ((wht - size_k)/2 + 1)_k; text tokens sit on the diagonal and consecutive text tokens are one
    apart; a text-only sequence gives 2-D RoPE equal to 1-D RoPE."""
    out = []
    for fn, gap in ((ref.rope_tie_positions, lambda h, w: (w + 1, h + 1)),
                    (ref.rope_tv_positions, lambda h, w: ((w * h - h) / 2 + 1, (w * h - w) / 2 + 1))):
        p = fn(list(seg.segments))
        before = np.vstack([[-1.0, -1.0], p])  # a virtual token before the sequence at (-1, -1)
        for i0, h, w, text_before, text_after in _images(seg):
            g = np.array(gap(h, w), float)
            if text_before:
                out.append(Agreement(p[i0] - before[i0], g, "gap text -> first patch", atol=0.0,
                                     tolerance="law.defined"))
            j = i0 + h * w - 1
            if text_after and j + 1 < len(p):
                out.append(Agreement(p[j + 1] - p[j], g, "gap last patch -> next token", atol=0.0,
                                     tolerance="law.defined"))
    vids = [s if s[0] == "text" else ("video", 1 + len(seg.segments) % 3, s[1], s[2]) for s in seg.segments]
    pv = ref.rope_tv_video_positions(vids)
    before, i = np.vstack([[-1.0] * 3, pv]), 0
    for n, s in enumerate(vids):
        size = s[1] if s[0] == "text" else s[1] * s[2] * s[3]
        if s[0] == "video":
            g = (size - np.array(s[1:], float)) / 2 + 1
            if n == 0 or vids[n - 1][0] == "text":
                out.append(Agreement(pv[i] - before[i], g, "video: gap text -> first patch", atol=0.0,
                                     tolerance="law.defined"))
            j = i + size - 1
            if j + 1 < len(pv) and vids[n + 1][0] == "text":
                out.append(Agreement(pv[j + 1] - pv[j], g, "video: gap last patch -> next text", atol=0.0,
                                     tolerance="law.defined"))
        i += size
    x = np.random.default_rng(len(seg.segments)).standard_normal((1, 6, 8))
    pt = ref.rope_tie_positions([("text", 6)])
    out.append(Agreement(ref.rope_2d(x, pt, layout="interleaved", pairing="half"), ref.rope(x, np.arange(6)),
                         "text-only RoPE-Tie == 1-D RoPE", terms=64, scale=float(np.abs(x).max())))
    return out


@law("positions.mrope_positions", family="positions", source=SRCMM + "; HF Qwen2VLModel.get_rope_index")
def mrope_pos(ref: Any, seg: SegmentsCase = segments_cases(), t: int = st.sampled_from((1, 2))) -> list[Agreement]:
    """M-RoPE positions: a vision segment starts at (s, s, s) with s = the previous maximum + 1 and steps by one
    along t, h, w; a text token after it starts at the segment's maximum + 1; text-only sequences are 1-D."""
    segs = seg.for_mrope(t)
    p = ref.mrope_positions(segs)
    out, i, nxt = [], 0, 0
    for s in segs:
        n = s[1] if s[0] == "text" else s[1] * s[2] * s[3]
        blk = p[i:i + n]
        out.append(Agreement(blk[0], [nxt] * 3, "segment starts at previous max + 1", atol=0.0,
                             tolerance="law.defined"))
        if s[0] == "image":
            out.append(Agreement(blk.max(0) - blk.min(0), [s[1] - 1, s[2] - 1, s[3] - 1], "extent (t-1, h-1, w-1)",
                                 atol=0.0, tolerance="law.defined"))
        nxt = int(blk.max()) + 1
        i += n
    pt = ref.mrope_positions([("text", 5)])
    out.append(Agreement(pt, np.repeat(np.arange(5.0)[:, None], 3, 1), "text == (n, n, n)", atol=0.0,
                         tolerance="law.defined"))
    return out
