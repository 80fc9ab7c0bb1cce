"""Input images (validated, normalised) and the pictures the app draws from frames.

Everything here works on uint8 numpy arrays ``(H, W, 3)``; drawing uses Pillow only.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import time
import warnings
from pathlib import Path

import gradio as gr
import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError

from app.errors import user_error

MAX_PIXELS = 40_000_000  # refuse larger uploads (a 6000×6000 photo is 36 MP)
MIN_SIDE = 8  # smaller images carry no usable content
DISPLAY_FRAME = 256  # frames are upscaled to at least this many pixels per side for display


class ImageInput(gr.Image):
    """``gr.Image`` whose unreadable uploads become a clear ``gr.Error`` instead of a crash.

    Build it with :func:`image_input`. It keeps ``gr.Image``'s constructor (Gradio reads the
    component's props from that signature) and its frontend (same class id).
    """

    is_template = True  # use the frontend of gr.Image

    @classmethod
    def get_component_class_id(cls) -> str:
        return gr.Image.get_component_class_id()

    def preprocess(self, payload):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                return super().preprocess(payload)
        except gr.Error:
            raise
        except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
            raise user_error(_unreadable(payload, err), "Not an image") from err
        except (OSError, ValueError, SyntaxError) as err:
            raise user_error(_unreadable(payload, err), "Not an image") from err


def image_input(**kwargs) -> ImageInput:
    """An upload widget that hands callbacks the file path (read it with :func:`read_image`)."""
    kwargs.setdefault("type", "filepath")
    kwargs.setdefault("image_mode", None)  # keep the file untouched; read_image converts
    kwargs.setdefault("format", "png")  # lossless round trips of the frames we show in it
    kwargs.setdefault("elem_classes", ["pixelated", "fill"])
    return ImageInput(**kwargs)


def _unreadable(payload, err) -> str:
    name = getattr(payload, "orig_name", None) or "the uploaded file"
    if isinstance(err, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        return f"{name} is too large to open safely; upload an image under {MAX_PIXELS // 1_000_000} megapixels."
    return f"{name} is not an image this app can read (PNG, JPEG, WebP, BMP or GIF): {type(err).__name__}."


def read_image(value, size: int) -> np.ndarray:
    """Any uploaded image → uint8 RGB ``(size, size, 3)``.

    Accepts a file path, a PIL image or an array. Grayscale, palette, 16-bit and CMYK images are
    converted to RGB; transparency is composited on white; EXIF rotation is applied; a
    non-square image is centre-cropped to a square (the encoders see square frames) and resized.
    Raises ``gr.Error`` for unreadable, tiny or huge images.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        raise user_error("No image: upload one, or pick a frame from an example episode.", "Missing image")
    try:
        if isinstance(value, (str, Path)):
            with Image.open(value) as im:
                _check_size(*im.size)  # before decoding the pixels
                im.load()
                img = ImageOps.exif_transpose(im)
        elif isinstance(value, Image.Image):
            img = value
        else:
            img = _from_array(np.asarray(value))
    except gr.Error:
        raise
    except Image.DecompressionBombError as err:
        raise user_error(f"That image is too large; upload one under {MAX_PIXELS // 1_000_000} megapixels.", "Image too large") from err
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        raise user_error(f"That file is not an image this app can read: {type(err).__name__}.", "Not an image") from err
    w, h = img.size
    _check_size(w, h)
    img = _to_rgb(img)
    side = min(w, h)
    if w != h:
        left, top = (w - side) // 2, (h - side) // 2
        img = img.crop((left, top, left + side, top + side))
    if side != size:
        img = img.resize((size, size), Image.Resampling.BILINEAR if side < size else Image.Resampling.LANCZOS)
    return np.asarray(img, dtype=np.uint8).copy()


def _check_size(w: int, h: int) -> None:
    if w * h > MAX_PIXELS:
        raise user_error(f"That image is {w}×{h} px; upload one under {MAX_PIXELS // 1_000_000} megapixels.", "Image too large")
    if min(w, h) < MIN_SIDE:
        raise user_error(f"That image is only {w}×{h} px; frames need at least {MIN_SIDE}×{MIN_SIDE} px.", "Image too small")


def _from_array(x: np.ndarray) -> Image.Image:
    if x.dtype == object or x.size == 0:
        raise ValueError("empty or non-numeric array")
    if x.dtype != np.uint8:
        x = np.nan_to_num(x.astype(np.float64))
        x = (x * 255 if x.max() <= 1.0 else x).clip(0, 255).astype(np.uint8)
    if x.ndim == 3 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim not in (2, 3) or (x.ndim == 3 and x.shape[-1] not in (3, 4)):
        raise ValueError(f"array of shape {x.shape} is not an image")
    return Image.fromarray(x)


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):  # 16/32-bit grayscale: rescale to 8 bits
        a = np.asarray(img, dtype=np.float64)
        lo, hi = np.nanmin(a), np.nanmax(a)
        a = np.zeros_like(a) if hi <= lo else (a - lo) / (hi - lo) * 255
        return Image.fromarray(a.astype(np.uint8)).convert("RGB")
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return img.convert("RGB")


def frame_hash(frame: np.ndarray) -> str:
    """sha256 of a frame's shape and bytes: part of cache and session keys."""
    h = hashlib.sha256(str(frame.shape).encode())
    h.update(np.ascontiguousarray(frame).tobytes())
    return h.hexdigest()


# ---- drawing -----------------------------------------------------------------------------------

def upscale(frame: np.ndarray, min_side: int = DISPLAY_FRAME) -> np.ndarray:
    """Nearest-neighbour upscale by an integer factor so the short side is at least ``min_side``."""
    scale = max(1, -(-min_side // min(frame.shape[:2])))
    return frame.repeat(scale, 0).repeat(scale, 1) if scale > 1 else frame


_INFERNO = np.array([[0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99], [212, 72, 66],
                     [245, 125, 21], [250, 193, 39], [252, 255, 164]], dtype=np.float64)


def colormap(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] ``(…)`` → uint8 RGB ``(…, 3)`` on an inferno-like ramp (NaN → black)."""
    v = np.nan_to_num(np.asarray(values, dtype=np.float64)).clip(0, 1) * (len(_INFERNO) - 1)
    lo = np.floor(v).astype(int).clip(0, len(_INFERNO) - 2)
    frac = (v - lo)[..., None]
    return ((1 - frac) * _INFERNO[lo] + frac * _INFERNO[lo + 1]).round().astype(np.uint8)


def heatmap_overlay(frame: np.ndarray, values: np.ndarray, vmax: float, alpha: float = 0.65) -> np.ndarray:
    """A per-patch (or per-pixel) map ``(g_r, g_c)`` drawn over a frame, normalised by ``vmax``."""
    h, w = frame.shape[:2]
    norm = values / vmax if vmax > 0 else np.zeros_like(values)
    colours = colormap(norm)
    ry, rx = -(-h // values.shape[0]), -(-w // values.shape[1])
    big = colours.repeat(ry, 0).repeat(rx, 1)[:h, :w]
    weight = (alpha * np.sqrt(norm.clip(0, 1))).repeat(ry, 0).repeat(rx, 1)[:h, :w, None]
    grey = frame.mean(-1, keepdims=True).repeat(3, -1) * 0.6
    return (grey * (1 - weight) + big * weight).round().clip(0, 255).astype(np.uint8)


def _font(size: int = 14):
    """DejaVu Sans where installed (it has Greek letters), else Pillow's bundled font."""
    try:
        return ImageFont.truetype("DejaVuSans.ttf", size)  # searched in the system font folders
    except OSError:
        pass
    try:
        return ImageFont.load_default(size=size)  # Pillow's bundled TrueType font (needs FreeType)
    except (TypeError, OSError):
        return ImageFont.load_default()


def placeholder(size: int, text: str = "—") -> np.ndarray:
    """A grey tile with centred text, standing in for a missing frame."""
    img = Image.new("RGB", (size, size), (236, 236, 240))
    draw = ImageDraw.Draw(img)
    font = _font(max(11, size // 12))
    box = draw.multiline_textbbox((0, 0), text, font=font, align="center")
    draw.multiline_text(((size - box[2]) / 2, (size - box[3]) / 2), text, font=font, fill=(110, 110, 120), align="center")
    return np.asarray(img)


def grid(rows: list[list[np.ndarray | None]], row_labels: list[str], col_labels: list[str],
         tile: int = 192, gap: int = 6) -> np.ndarray:
    """Frames laid out in a labelled table (a filmstrip when there is one row per method).

    ``None`` cells become "no frame" placeholders; every frame is resized (nearest) to ``tile``.
    """
    font = _font(14 if tile >= 128 else 12 if tile >= 96 else 10)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    label_w = max((measure.textlength(s, font=font) for s in row_labels), default=0)
    label_w = int(label_w) + 14 if label_w else 0
    head_h = 24 if any(col_labels) else 0
    ncols = max(len(r) for r in rows)
    width = label_w + ncols * (tile + gap) - gap
    height = head_h + len(rows) * (tile + gap) - gap
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for j, text in enumerate(col_labels):
        draw.text((label_w + j * (tile + gap) + 2, 4), text, fill=(40, 40, 48), font=font)
    for i, row in enumerate(rows):
        y = head_h + i * (tile + gap)
        if i < len(row_labels):
            draw.text((4, y + tile // 2 - 8), row_labels[i], fill=(40, 40, 48), font=font)
        for j, frame in enumerate(row):
            cell = placeholder(tile, "no real\nframe") if frame is None else frame
            img = Image.fromarray(cell).resize((tile, tile), Image.Resampling.NEAREST)
            canvas.paste(img, (label_w + j * (tile + gap), y))
    return np.asarray(canvas)


ANIMATIONS = Path(tempfile.gettempdir()) / "rla-explorer-animations"
ANIMATION_MAX_AGE_S = 2 * 3600


def write_animation(frames: list[np.ndarray], fps: float = 6.0, pingpong: bool = True) -> str:
    """Frames → an animated GIF (named by its content) in a shared temp folder; returns its path.

    Gradio copies returned files into its own cache, so GIFs older than two hours are pruned here.
    """
    seq = list(frames) + (list(frames[-2:0:-1]) if pingpong and len(frames) > 2 else [])
    images = [Image.fromarray(upscale(f)) for f in seq]
    ANIMATIONS.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha256(f"{fps}:{len(seq)}".encode())
    for f in seq:
        h.update(np.ascontiguousarray(f).tobytes())
    path = ANIMATIONS / f"{h.hexdigest()[:24]}.gif"
    if not path.exists():
        tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
        os.replace(tmp, path)  # atomic: a concurrent reader never sees half a file
    _prune(ANIMATIONS, ANIMATION_MAX_AGE_S)
    return str(path)


def _prune(folder: Path, max_age_s: float) -> None:
    now = time.time()
    for f in folder.glob("*.gif"):
        try:
            if now - f.stat().st_mtime > max_age_s:
                f.unlink()
        except OSError:  # removed by another thread meanwhile
            pass

def diverging(values: np.ndarray, limit: float = 3.0) -> np.ndarray:
    """Values in [−limit, limit] → uint8 RGB on a blue–white–red ramp (for signed latents)."""
    v = np.nan_to_num(np.asarray(values, dtype=np.float64) / limit).clip(-1, 1)[..., None]
    blue, white, red = np.array([49, 54, 149.0]), np.array([247, 247, 247.0]), np.array([165, 0, 38.0])
    out = np.where(v < 0, white + (-v) * (blue - white), white + v * (red - white))
    return out.round().astype(np.uint8)

