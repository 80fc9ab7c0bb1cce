"""rla.video: rows of frames side by side → MP4 (decoded back with OpenCV) and GIF (read back with Pillow)."""
import cv2
import numpy as np
import pytest
from PIL import Image

from rla.video import MP4_CODECS, compose, compose_all, describe_actions, write_mp4, write_video

RED, BLUE = (220, 30, 30), (30, 30, 220)


def rows(n=4, size=32):
    """``n`` rows of (a red square moving right, a blue frame, a missing frame)."""
    out = []
    for t in range(n):
        red = np.full((size, size, 3), 90, np.uint8)
        red[8:20, 2 + 3 * t: 14 + 3 * t] = RED
        out.append([red, np.full((size, size, 3), BLUE, np.uint8), None])
    return out


def read_mp4(path):
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f[..., ::-1])  # BGR → RGB
    cap.release()
    return frames


def test_compose_puts_the_sources_side_by_side_with_even_sides():
    frame = compose(rows(1)[0], ["predicted", "real", "baseline"], "chunk 1\ndx +1.00", tile=65)
    h, w, _ = frame.shape
    assert h % 2 == 0 and w % 2 == 0 and w > 3 * 65 and h > 65
    inside = lambda j: frame[22 + 4, 6 + j * (65 + 6) + 4]  # noqa: E731 — near the top-left corner of tile j
    assert tuple(inside(1)) == BLUE  # the second source in the second slot
    assert tuple(inside(2)) == (236, 236, 240)  # the missing frame: a light grey placeholder


def test_mp4_decodes_back_with_the_right_frame_count_size_and_colours(tmp_path):
    r = rows(5)
    labels, captions = ["RLA-WM", "real", "regression"], [f"step {t}" for t in range(5)]
    path = write_video(r, labels, captions, tmp_path / "rollout.mp4", fps=2, tile=64)
    composed = compose_all(r, labels, captions, tile=64)
    frames = read_mp4(path)
    assert len(frames) == 5
    assert frames[0].shape == composed[0].shape
    cap = cv2.VideoCapture(str(path))
    fourcc = int(cap.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode()
    cap.release()
    assert fourcc.lower() in {"vp90", "vp09", "mp4v", "fmp4"}  # what the decoder reports for MP4_CODECS
    blue = frames[0][22 + 32, 6 + 70 + 32].astype(int)
    assert blue[2] > 150 and blue[0] < 90, f"colours come back in RGB order, got {blue}"
    # frames differ where the square moved, and match the composed frames up to compression
    assert np.abs(frames[0].astype(int) - frames[-1].astype(int)).mean() > 0.5
    assert np.abs(frames[2].astype(int) - composed[2].astype(int)).mean() < 12


def test_mp4_is_vp9_so_browsers_play_it(tmp_path):
    """opencv-python's wheels bundle FFmpeg with libvpx; the mp4v fallback would not play in browsers."""
    frames = compose_all(rows(2), ["a", "b", "c"], tile=32)
    assert write_mp4(frames, tmp_path / "v.mp4") == MP4_CODECS[0] == "vp09"


def test_gif_has_one_frame_per_row_and_holds_the_last(tmp_path):
    r = rows(4)
    path = write_video(r, ["a", "b", "c"], ["1", "2", "3", "4"], tmp_path / "rollout.gif", fps=4, tile=48)
    with Image.open(path) as im:
        assert im.format == "GIF" and im.n_frames == 4
        durations = []
        for i in range(im.n_frames):
            im.seek(i)
            durations.append(im.info["duration"])
        assert durations[0] == 250 and durations[-1] >= 1000
        assert im.info.get("loop") == 0


def test_rows_of_different_widths_share_one_video_size(tmp_path):
    r = rows(3)
    r[1] = r[1][:2]  # a row with one source fewer
    frames = compose_all(r, ["a", "b", "c"], tile=40)
    assert len({f.shape for f in frames}) == 1
    assert len(read_mp4(write_video(r, ["a", "b", "c"], ["x"] * 3, tmp_path / "v.mp4", tile=40))) == 3


def test_bad_input_is_refused(tmp_path):
    with pytest.raises(ValueError, match=".mp4 or .gif"):
        write_video(rows(2), ["a"], ["1", "2"], tmp_path / "v.avi")
    with pytest.raises(ValueError, match="2 captions for 3 rows"):
        compose_all(rows(3), ["a"], ["1", "2"])
    with pytest.raises(ValueError, match="at least one row"):
        compose_all([], ["a"])
    with pytest.raises(ValueError, match="uint8"):
        compose([np.zeros((8, 8, 3), np.float32)], ["a"])


def test_describe_actions():
    a = np.array([[0.5, 0.0, 1.0], [0.5, 0.0, -1.0]], np.float32)
    text = describe_actions(a, ["dx", "dy", "gripper"])
    assert text.startswith("dx +0.50") and "dy +0.00" in text and "gripper +0.00 (-1.00…+1.00)" in text
