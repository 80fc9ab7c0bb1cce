"""Input images (validated, normalised) and the pictures the app draws from frames.

Everything here works on uint8 numpy arrays ``(H, W, 3)``; drawing uses Pillow only.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import gradio as gr
import numpy as np
from PIL import Image, ImageDraw, ImageOps, UnidentifiedImageError

from app.errors import user_error
from rla.video import font as video_font
from rla.video import placeholder

UPLOAD_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF")  # what uploads may be; Pillow would also try dozens of rarer decoders
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
                path = getattr(payload, "path", None)
                if path:  # only the listed formats reach a decoder (Gradio's would try every one Pillow has)
                    with Image.open(path, formats=UPLOAD_FORMATS):
                        pass
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
            with Image.open(value, formats=UPLOAD_FORMATS) as im:  # no other Pillow decoder sees visitors' bytes
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
        raise user_error(f"That file is not an image this app can read ({', '.join(UPLOAD_FORMATS)}): {type(err).__name__}.",
                         "Not an image") from err
    w, h = img.size
    _check_size(w, h)
    method = Image.Resampling.BILINEAR if min(w, h) < size else Image.Resampling.LANCZOS
    return np.asarray(ImageOps.fit(_to_rgb(img), (size, size), method), dtype=np.uint8).copy()  # centre crop to a square, resize


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
    big = colours.repeat(ry, 0).repeat(rx, 1)[:h, :w].astype(np.float32)
    weight = (alpha * np.sqrt(norm.clip(0, 1))).astype(np.float32).repeat(ry, 0).repeat(rx, 1)[:h, :w, None]
    grey = frame.mean(-1, dtype=np.float32, keepdims=True) * 0.6  # (h, w, 1), broadcast over the colours
    return (grey * (1 - weight) + big * weight).round().clip(0, 255).astype(np.uint8)


def grid(rows: list[list[np.ndarray | None]], row_labels: list[str], col_labels: list[str],
         tile: int = 192, gap: int = 6) -> np.ndarray:
    """Frames laid out in a labelled table (a filmstrip when there is one row per method).

    ``None`` cells become "no frame" placeholders; every frame is resized (nearest) to ``tile``.
    """
    font = video_font(14 if tile >= 128 else 12 if tile >= 96 else 10)
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


def published_folder() -> Path:
    """Where the app writes the files it returns: a folder inside Gradio's cache (``$GRADIO_TEMP_DIR``).

    Files there are served as they are (Gradio does not copy them) and removed by the app's
    ``delete_cache`` schedule.
    """
    from gradio.utils import get_upload_folder

    return Path(get_upload_folder()) / "rla"


def publish(key: str, name: str, write: Callable[[Path], None]) -> str:
    """The file ``<key>/<name>`` in :func:`published_folder`, written once and atomically; returns its path.

    ``key`` is a content hash (:func:`content_key`); ``name`` is what a download is called.
    ``write(path)`` writes the file to a temporary path that is then renamed into place, so a
    response that is streaming an earlier copy keeps reading a complete file. Gradio's own
    ``save_pil_to_cache`` rewrites ``<hash>/image.png`` in place instead: when two sessions produce
    the same picture at once, one truncates the file while the other's download streams it (the
    client sees "peer closed connection without sending complete message body"). An existing file
    is reused (and touched, so the cache cleanup counts its age from now), which also skips encoding
    pictures that repeat, such as recorded frames.
    """
    folder = published_folder() / key
    path = folder / name
    try:
        os.utime(path)
        return str(path)
    except FileNotFoundError:
        pass
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".", suffix=Path(name).suffix)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return str(path)


def content_key(*parts) -> str:
    """sha256 over arrays (shape and bytes) and other values (their ``repr``): a :func:`publish` key."""
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            h.update(str((part.shape, part.dtype.str)).encode())
            h.update(np.ascontiguousarray(part).tobytes())
        else:
            h.update(repr(part).encode())
    return h.hexdigest()[:32]


PICTURE_OPTIONS = {"png": {"compress_level": 1}, "webp": {"lossless": True, "method": 0}}  # fast, lossless


def save_picture(image: np.ndarray | None, fmt: str = "png") -> str | None:
    """A picture ``(H, W, 3)`` uint8 → the path of a file to return from a callback (``None`` stays ``None``).

    Return this instead of the array: see :func:`publish` for why. PNG at zlib level 1 encodes
    about four times faster than Pillow's default for ~7% more bytes.
    """
    if image is None:
        return None
    return publish(content_key(image, fmt), f"image.{fmt}",
                   lambda p: Image.fromarray(image).save(p, format=fmt.upper(), **PICTURE_OPTIONS.get(fmt, {})))


def write_animation(frames: list[np.ndarray], fps: float = 6.0, pingpong: bool = True) -> str:
    """Frames → an animated GIF (named by its content, written once; see :func:`publish`); returns its path."""
    seq = list(frames) + (list(frames[-2:0:-1]) if pingpong and len(frames) > 2 else [])

    def write(path: Path) -> None:
        images = [Image.fromarray(upscale(f)) for f in seq]
        images[0].save(path, format="GIF", save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)

    return publish(content_key(fps, *seq), "animation.gif", write)


def diverging(values: np.ndarray, limit: float = 3.0) -> np.ndarray:
    """Values in [−limit, limit] → uint8 RGB on a blue–white–red ramp (for signed latents)."""
    v = np.nan_to_num(np.asarray(values, dtype=np.float64) / limit).clip(-1, 1)[..., None]
    blue, white, red = np.array([49, 54, 149.0]), np.array([247, 247, 247.0]), np.array([165, 0, 38.0])
    out = np.where(v < 0, white + (-v) * (blue - white), white + v * (red - white))
    return out.round().astype(np.uint8)

