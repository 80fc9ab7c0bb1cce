"""app.images: every kind of upload becomes a square RGB frame, or a clear error."""
import gradio as gr
import numpy as np
import pytest
from PIL import Image

from app.images import colormap, grid, heatmap_overlay, read_image, upscale, write_animation


@pytest.mark.parametrize("kind", ["rgb", "gray", "rgba", "palette", "gray16", "wide"])
def test_uploads_become_square_rgb_frames(image_files, kind):
    frame = read_image(str(image_files[kind]), 64)
    assert frame.shape == (64, 64, 3) and frame.dtype == np.uint8


def test_transparency_is_composited_on_white(tmp_path):
    Image.new("RGBA", (32, 32), (255, 0, 0, 0)).save(tmp_path / "clear.png")
    assert (read_image(str(tmp_path / "clear.png"), 32) == 255).all()


def test_non_square_images_are_centre_cropped(tmp_path):
    a = np.zeros((20, 60, 3), np.uint8)
    a[:, 20:40] = 200  # the centre square is bright, the sides dark
    assert read_image(a, 20).min() == 200


@pytest.mark.parametrize("kind, message", [("tiny", "only 4×4"), ("huge", "under 40 megapixels"),
                                            ("text", "not an image"), ("fake_png", "not an image")])
def test_bad_uploads_raise_a_clear_error(image_files, kind, message):
    with pytest.raises(gr.Error, match=message):
        read_image(str(image_files[kind]), 64)


@pytest.mark.parametrize("fmt", ["TIFF", "ICO", "PPM"])
def test_formats_off_the_list_are_refused_although_pillow_reads_them(tmp_path, fmt):
    path = tmp_path / f"frame.{fmt.lower()}"
    Image.fromarray(np.full((64, 64, 3), 90, np.uint8)).save(path, format=fmt)
    with Image.open(path) as im:
        assert im.format == fmt  # Pillow itself would decode it
    with pytest.raises(gr.Error, match="not an image this app can read"):
        read_image(str(path), 64)


def test_missing_image():
    with pytest.raises(gr.Error, match="No image"):
        read_image(None, 64)


def test_float_arrays_with_nan_are_accepted():
    a = np.full((16, 16, 3), np.nan)
    assert read_image(a, 16).shape == (16, 16, 3)


def test_drawing_helpers():
    frame = np.full((64, 64, 3), 100, np.uint8)
    assert upscale(frame, 256).shape == (256, 256, 3)
    assert upscale(np.zeros((300, 300, 3), np.uint8)).shape == (300, 300, 3)  # never shrinks
    c = colormap(np.array([0.0, 0.5, 1.0, np.nan]))
    assert c.shape == (4, 3) and c.dtype == np.uint8 and (c[0] == [0, 0, 4]).all()
    over = heatmap_overlay(frame, np.array([[0.0, 1.0], [0.0, 0.0]]), vmax=1.0)
    assert over.shape == frame.shape and not np.array_equal(over[:32, 32:], over[32:, :32])  # the hot patch differs
    g = grid([[frame, None], [frame, frame]], ["a", "b"], ["x", "y"], tile=50)
    assert g.shape[0] > 100 and g.shape[1] > 100


def test_write_animation_makes_a_looping_gif():
    frames = [np.full((16, 16, 3), v, np.uint8) for v in (0, 100, 200)]
    path = write_animation(frames)
    with Image.open(path) as im:
        assert im.format == "GIF" and im.n_frames == 4  # there and back: 0, 100, 200, 100
