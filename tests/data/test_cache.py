"""rla.data.cache: tokens are encoded once per encoder and served from disk afterwards."""
from __future__ import annotations

import numpy as np
import torch

from rla.data import FeatureCache, frames_digest
from tests.data.conftest import make_episode


class CountingEncoder:
    """Stand-in encoder: mean colour of 4 quadrants → (B, 4, 3) tokens; counts frames seen."""

    num_tokens, dim = 4, 3

    def __init__(self, tag: str = "v1"):
        self.fingerprint = f"counting:{tag}"
        self.seen = 0

    def encode(self, images):
        x = torch.as_tensor(np.asarray(images)).float() / 255  # (B, H, W, 3)
        self.seen += len(x)
        h, w = x.shape[1] // 2, x.shape[2] // 2
        q = [x[:, :h, :w], x[:, :h, w:], x[:, h:, :w], x[:, h:, w:]]
        return torch.stack([p.mean((1, 2)) for p in q], 1)  # (B, 4, 3)


def test_second_pass_encodes_nothing(tmp_path):
    eps = [make_episode(10, index=i) for i in range(3)]
    enc = CountingEncoder()
    cache = FeatureCache(tmp_path, batch_size=4)
    first = cache.tokens(eps, enc)
    assert cache.misses == 3 and cache.hits == 0 and cache.frames_encoded == 33 and enc.seen == 33
    assert first[0].shape == (11, 4, 3) and first[0].dtype == torch.float32
    again = FeatureCache(tmp_path)  # a new process would see the same files
    second = again.tokens(eps, enc)
    assert again.hits == 3 and again.misses == 0 and again.frames_encoded == 0 and enc.seen == 33
    for a, b in zip(first, second):
        assert torch.equal(a, b)
    np.testing.assert_allclose(second[1][0].numpy(), enc.encode(eps[1].frames[:1])[0].numpy(), atol=1e-3)


def test_key_depends_on_encoder_and_pixels(tmp_path):
    e = make_episode(5)
    cache = FeatureCache(tmp_path)
    cache.episode_tokens(e, CountingEncoder("v1"))
    cache.episode_tokens(e, CountingEncoder("v2"))  # another fingerprint: a miss
    e2 = make_episode(5)
    e2.frames[3, 0, 0, 1] ^= 1  # one pixel changed: a miss
    cache.episode_tokens(e2, CountingEncoder("v1"))
    assert cache.misses == 3 and cache.hits == 0
    assert cache.key(e, CountingEncoder("v1")).startswith("counting:v1/")


def test_corrupt_entry_is_re_encoded(tmp_path):
    e, enc = make_episode(5), CountingEncoder()
    cache = FeatureCache(tmp_path)
    cache.episode_tokens(e, enc)
    cache.path(e, enc).write_bytes(b"garbage")
    z = cache.episode_tokens(e, enc)
    assert cache.misses == 2 and z.shape == (6, 4, 3)


def test_with_the_pixel_patch_encoder(tmp_path):
    from rla.encoders import PixelPatchEncoder

    enc = PixelPatchEncoder(image_size=32, patch_size=16)
    e = make_episode(4, size=32)
    cache = FeatureCache(tmp_path, dtype=torch.float32)
    z = cache.episode_tokens(e, enc)
    assert z.shape == (5, 4, 768)
    assert torch.equal(enc.decode(z), torch.from_numpy(e.frames))  # float32 storage is lossless
    cache.episode_tokens(e, enc)
    assert cache.hits == 1


def test_frames_digest_depends_on_shape_dtype_and_content():
    a = np.zeros((4, 4, 3), np.uint8)
    assert frames_digest(a) == frames_digest(a.copy())
    assert frames_digest(a) == frames_digest(np.asfortranarray(a))  # the bytes in C order, whatever the layout
    assert frames_digest(a) != frames_digest(a.reshape(2, 8, 3))
    assert frames_digest(a) != frames_digest(a.astype(np.int8))
    b = a.copy()
    b[0, 0, 0] = 1
    assert frames_digest(a) != frames_digest(b)
