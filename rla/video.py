"""Rollouts and plans as videos: frames from several sources side by side, a caption per step.

One writer for the whole project (the app's World model tab, the planner). A video is a list of
*rows*, one per time step; a row holds one frame per source (predicted, real, a baseline, a goal…)
and is drawn as one video frame, the sources side by side under their labels, the row's caption
(e.g. the actions) in a band below::

    rows = [[predicted[t], real[t], regression[t]] for t in range(T)]   # (H, W, 3) uint8; None = no frame
    write_video(rows, ["RLA-WM", "real", "regression"], captions, "rollout.mp4", fps=2)
    write_video(rows, ["RLA-WM", "real", "regression"], captions, "rollout.gif", fps=2)

MP4 holds VP9, written by OpenCV's bundled FFmpeg (``opencv-python``, no other dependency):
Chromium/Chrome/Edge and Firefox play it in a ``<video>`` element; Safari may not (use the GIF).
Where that OpenCV build lacks VP9 it falls back to MPEG-4 Part 2 (``mp4v``), which VLC and FFmpeg
play but most browsers do not. GIFs are written with Pillow and loop.
"""
from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

MP4_CODECS = ("vp09", "mp4v")  # FourCCs tried in order: VP9 plays in browsers, MPEG-4 Part 2 is the fallback
BACKGROUND, INK, MUTED = (255, 255, 255), (40, 40, 48), (110, 110, 120)


@functools.lru_cache(maxsize=16)
def font(size: int = 14):
    """DejaVu Sans where installed (it has Greek letters), else Pillow's bundled font (cached: loading costs ~1 ms)."""
    try:
        return ImageFont.truetype("DejaVuSans.ttf", size)  # searched in the system font folders
    except OSError:
        pass
    try:
        return ImageFont.load_default(size=size)  # Pillow's bundled TrueType font (needs FreeType)
    except (TypeError, OSError):
        return ImageFont.load_default()


def placeholder(size: int, text: str = "—") -> np.ndarray:
    """A grey tile ``(size, size, 3)`` with centred text, standing in for a missing frame."""
    img = Image.new("RGB", (size, size), (236, 236, 240))
    draw = ImageDraw.Draw(img)
    f = font(max(11, size // 12))
    box = draw.multiline_textbbox((0, 0), text, font=f, align="center")
    draw.multiline_text(((size - box[2]) / 2, (size - box[3]) / 2), text, font=f, fill=MUTED, align="center")
    return np.asarray(img)


def compose(row: Sequence[np.ndarray | None], labels: Sequence[str], caption: str = "", *, tile: int = 256,
            gap: int = 6) -> np.ndarray:
    """One video frame: the row's frames side by side (resized to ``tile``, nearest), labels above, caption below.

    Returns ``(H, W, 3)`` uint8 with even ``H`` and ``W`` (video encoders subsample colour by 2).
    """
    if not len(row):
        raise ValueError("a row needs at least one frame")
    head, f = 22, font(14)
    lines = caption.splitlines() or [""]
    band = 10 + 18 * len(lines) if caption else 0
    width = len(row) * (tile + gap) - gap + 2 * gap
    height = head + tile + band + gap
    width, height = width + width % 2, height + height % 2
    canvas = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    for j, frame in enumerate(row):
        x = gap + j * (tile + gap)
        if j < len(labels):
            draw.text((x + 2, 3), labels[j], fill=INK, font=f)
        cell = placeholder(tile, "no frame") if frame is None else _rgb(frame)
        canvas.paste(Image.fromarray(cell).resize((tile, tile), Image.Resampling.NEAREST), (x, head))
    for i, line in enumerate(lines if caption else []):
        draw.text((gap + 2, head + tile + 6 + 18 * i), line, fill=INK, font=f)
    return np.asarray(canvas)


def compose_all(rows: Sequence[Sequence[np.ndarray | None]], labels: Sequence[str], captions: Sequence[str] = (), *,
                tile: int = 256) -> list[np.ndarray]:
    """Every row → a video frame (see :func:`compose`); all frames get the size of the largest."""
    if not rows:
        raise ValueError("a video needs at least one row of frames")
    if captions and len(captions) != len(rows):
        raise ValueError(f"got {len(captions)} captions for {len(rows)} rows")
    frames = [compose(r, labels, captions[i] if captions else "", tile=tile) for i, r in enumerate(rows)]
    h, w = max(f.shape[0] for f in frames), max(f.shape[1] for f in frames)
    return [f if f.shape[:2] == (h, w) else _pad(f, h, w) for f in frames]


def write_mp4(frames: Sequence[np.ndarray], path: str | Path, fps: float = 2.0) -> str:
    """Frames ``(H, W, 3)`` uint8 RGB (all one size, even sides) → an MP4 file; returns the codec's FourCC."""
    import cv2

    h, w = frames[0].shape[:2]
    if h % 2 or w % 2 or any(f.shape[:2] != (h, w) for f in frames):
        raise ValueError(f"MP4 frames must share one size with even sides, got {sorted({f.shape for f in frames})}")
    for codec in MP4_CODECS:
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), float(fps), (w, h))
        if writer.isOpened():
            try:
                for f in frames:
                    writer.write(np.ascontiguousarray(f[..., ::-1]))  # OpenCV wants BGR
            finally:
                writer.release()
            return codec
        writer.release()
    raise RuntimeError(f"OpenCV cannot write MP4 here (tried {', '.join(MP4_CODECS)}); write a GIF instead")


def write_gif(frames: Sequence[np.ndarray], path: str | Path, fps: float = 2.0, hold_last: float = 1.5) -> None:
    """Frames → a looping GIF; the last frame stays ``hold_last`` seconds before the loop restarts.

    Each frame gets its own 256-colour palette (fast octree, no dithering: ~10× faster than
    Pillow's default conversion and a quarter smaller on rendered scenes).
    """
    images = [Image.fromarray(_rgb(f)).quantize(256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
              for f in frames]
    step = int(round(1000 / fps))
    durations = [step] * (len(images) - 1) + [max(step, int(hold_last * 1000))]
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:], duration=durations, loop=0)


def write_video(rows: Sequence[Sequence[np.ndarray | None]], labels: Sequence[str], captions: Sequence[str],
                path: str | Path, *, fps: float = 2.0, tile: int = 256) -> Path:
    """Rows of frames (one row per time step) → an ``.mp4`` or ``.gif`` file, chosen by ``path``'s suffix."""
    path = Path(path)
    frames = compose_all(rows, labels, captions, tile=tile)
    if path.suffix.lower() == ".mp4":
        write_mp4(frames, path, fps)
    elif path.suffix.lower() == ".gif":
        write_gif(frames, path, fps)
    else:
        raise ValueError(f"write_video writes .mp4 or .gif files, got {path.name!r}")
    return path


def describe_actions(actions: np.ndarray, names: Sequence[str]) -> str:
    """A chunk's actions ``(K, A)`` as one caption line: each dimension's mean (and range when it varies)."""
    a = np.asarray(actions, dtype=np.float32).reshape(-1, len(names))
    parts = []
    for name, col in zip(names, a.T):
        lo, hi = float(col.min()), float(col.max())
        parts.append(f"{name} {col.mean():+.2f}" + (f" ({lo:+.2f}…{hi:+.2f})" if hi - lo > 0.05 else ""))
    return "  ".join(parts)


def _rgb(frame: np.ndarray) -> np.ndarray:
    f = np.asarray(frame)
    if f.dtype != np.uint8 or f.ndim != 3 or f.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 (H, W, 3), got {f.dtype} {f.shape}")
    return f


def _pad(frame: np.ndarray, h: int, w: int) -> np.ndarray:
    out = np.full((h, w, 3), BACKGROUND, np.uint8)
    out[:frame.shape[0], :frame.shape[1]] = frame
    return out
