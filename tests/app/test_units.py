"""Small app pieces: actions, the feature cache, packs, episode lookups and the session state."""
import gradio as gr
import numpy as np
import pytest
import torch

from app.actions import MAX_ACTIONS, action_vector, slider_updates
from app.episodes import EpisodeStore, check_index
from app.features import FeatureCache
from app.packs import PackCache, default_pack, pack_id, require_pack
from app.state import Rollout
from rla import PackInfo, PixelPatchEncoder


def test_action_vector_validates_and_clips():
    info = PackInfo()
    assert action_vector([0.5, -0.5, 0, 1, 99, 99, 99, 99], info).tolist() == [0.5, -0.5, 0, 1]
    with pytest.warns(UserWarning, match="clipped: dx=2, gripper=-3"):  # gr.Warning outside a request
        assert action_vector([2.0, 0, 0, -3], info).tolist() == [1, 0, 0, -1]
    for bad in (float("nan"), float("inf"), "left"):
        with pytest.raises(gr.Error, match="Action dx"):
            action_vector([bad, 0, 0, 0], info)


def test_slider_updates_follow_the_pack():
    ups = slider_updates(PackInfo(action_dim=3, action_names=["a", "b", "c"], action_low=-2, action_high=2))
    assert len(ups) == MAX_ACTIONS
    assert [u["visible"] for u in ups[:4]] == [True, True, True, False]
    assert ups[0]["label"] == "a" and ups[0]["minimum"] == -2


def test_feature_cache_encodes_each_frame_once(tmp_path):
    enc = PixelPatchEncoder(32, 16)
    calls = []
    original = enc.encode
    enc.encode = lambda x: calls.append(len(x)) or original(x)
    cache = FeatureCache(tmp_path)
    frames = np.random.default_rng(0).integers(0, 255, (3, 32, 32, 3), dtype=np.uint8)
    z1, _ = cache.encode(enc, frames)
    z2, _ = cache.encode(enc, frames[[2, 0]])
    assert calls == [3]  # the second call was served from disk
    torch.testing.assert_close(z2, z1[[2, 0]])
    assert FeatureCache.key(enc, frames[0]).startswith("pixel_patch:p16:32px:")
    cache.close()


def test_pack_cache_loads_once_and_explains_failures(tiny_pack, tmp_path):
    cache = PackCache(max_packs=1)
    assert cache.get(str(tiny_pack)) is cache.get(str(tiny_pack) + "/")
    from rla import PackError

    with pytest.raises(PackError, match="not a model pack"):
        cache.get(str(tmp_path))
    with pytest.raises(gr.Error, match="No model pack"):
        require_pack(None)
    with pytest.raises(gr.Error, match="unreachable"):
        require_pack("someone/no-such-pack")


def test_default_pack_prefers_cli_then_env(monkeypatch, tmp_path):
    monkeypatch.setenv("RLA_PACK", str(tmp_path))
    assert default_pack("user/repo") == "user/repo"
    assert default_pack(None) == pack_id(tmp_path)


def test_episode_lookup(episodes):
    store = EpisodeStore(episodes)
    frame, t = store.frame("synthetic-0", 3)
    assert t == 3 and frame.shape == (64, 64, 3)
    with pytest.raises(gr.Error, match="Unknown episode"):
        store.get("nope")
    with pytest.raises(gr.Error, match="from 0 to 30"):
        store.frame("synthetic-0", 31)
    for bad in (float("nan"), 2.5, "x", -1):
        with pytest.raises(gr.Error):
            check_index(bad, 10, "frame")
    with pytest.raises(gr.Error, match="no example episodes"):
        EpisodeStore([], "none here").get("x")


def test_empty_example_folder_gives_a_note(tmp_path):
    store = EpisodeStore.from_folder(tmp_path)
    assert len(store) == 0 and str(tmp_path) in store.note


def test_rollout_undo_and_reset():
    z = np.zeros((4, 6), np.float32)
    ro = Rollout("p", "k", np.zeros((8, 8, 3), np.uint8), z, chunk=2)
    for i in range(2):
        ro.actions.append(np.zeros((2, 1))), ro.recorded.append(False), ro.spread.append(None), ro.samples.append(1)
        ro.settings.append({"steps": 10, "seed": i})
        ro.tokens.setdefault("rla", []).append(z + i), ro.frames.setdefault("rla", []).append(None)
    ro.tokens["regression"] = [z]  # baselines may lag behind
    assert ro.step == 4 and ro.last_tokens("rla")[0, 0] == 1
    assert ro.undo() and ro.num_chunks == 1 and len(ro.tokens["rla"]) == 1 and len(ro.tokens["regression"]) == 1
    ro.reset()
    assert ro.num_chunks == 0 and not ro.undo()
    assert ro.last_tokens("rla") is ro.start_tokens
