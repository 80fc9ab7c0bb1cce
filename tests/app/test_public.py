"""Public mode, tried as a visitor would: ``python app.py --public`` probed through gradio_client and raw HTTP.

The app runs in a subprocess, offline (``HF_HUB_OFFLINE=1``) with its own Hugging Face cache,
Gradio upload folder and feature cache, and offers the bundled pack plus a packs directory made
here (``tiny``, and ``kwargs``: the tiny pack with ``model_kwargs`` in its pack.json).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from app.public import PUBLIC_LIMITS, PackPolicy
from tests.app.conftest import free_port
from tests.app.test_endpoints import UP, rollout

ROOT = Path(__file__).resolve().parents[2]
MAX_QUEUE = 32  # the smallest bound the app is meant to run with (4 × the load test's 8 clients)
BUNDLED = (ROOT / "assets" / "pack" / "pack.json").is_file()


@pytest.fixture(scope="module")
def site(tiny_pack, tmp_path_factory):
    """The public app: its URL and the folders it writes to."""
    root = tmp_path_factory.mktemp("public")
    packs = root / "packs"
    shutil.copytree(tiny_pack, packs / "tiny")
    kw = shutil.copytree(tiny_pack, packs / "kwargs")
    info = json.loads((kw / "pack.json").read_text())
    info["encoder"]["model_kwargs"] = {"pretrained_cfg_overlay": {"file": "/etc/passwd"}}
    (kw / "pack.json").write_text(json.dumps(info))
    outside = shutil.copytree(tiny_pack, root / "outside" / "evil")  # a valid pack the operator did not offer
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("SPACE_ID", "SYSTEM", "RLA_PACKS_DIR", "RLA_HUB_PACKS")}
    env.update(GRADIO_SERVER_PORT=str(port), HF_HUB_OFFLINE="1", HF_HOME=str(root / "hf"), GRADIO_TEMP_DIR=str(root / "gradio"),
               RLA_CACHE_DIR=str(root / "cache"), GRADIO_ANALYTICS_ENABLED="False", RLA_THREADS="1")
    log = open(root / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "app.py", "--public", "--packs-dir", str(packs), "--examples", str(root / "none"),
                             "--max-queue", str(MAX_QUEUE)], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.time() + 300  # a loaded CI machine can take minutes to import torch and gradio
        while time.time() < deadline and proc.poll() is None:
            try:
                httpx.get(url + "config", timeout=2).raise_for_status()
                break
            except (httpx.HTTPError, ValueError):
                time.sleep(0.5)
        else:
            pytest.fail(f"the public app did not start: {(root / 'server.log').read_text()[-2000:]}")
        yield {"url": url, "root": root, "outside": outside, "proc": proc}
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


@pytest.fixture
def visitor(site):
    return Client(site["url"], verbose=False, httpx_kwargs={"timeout": 60})  # generous: the CPU may be shared


def refusal(client, name) -> str:
    with pytest.raises(AppError) as err:
        client.predict(name, api_name="/load_pack")
    return str(err.value)


def test_probes_get_one_neutral_answer(site, visitor):
    probes = ["/root/.ssh", "../../../../etc/passwd", "/no/such/folder", "x" * 5000, str(site["outside"]),
              str(site["outside"] / "pack.json"), "~", "tiny/../tiny", "tiny\x00", " /etc "]
    answers = {p: refusal(visitor, p) for p in probes}
    assert len(set(answers.values())) == 1, answers
    answer = answers["/root/.ssh"]
    assert answer == "This app loads only the model packs it offers: `assets/pack`, `kwargs`, `tiny`." if BUNDLED \
        else answer == "This app loads only the model packs it offers: `kwargs`, `tiny`."
    log = (site["root"] / "server.log").read_text()
    assert "Errno" not in log and "Traceback" not in log  # refused before any filesystem call that could fail


def test_a_hub_id_is_refused_without_a_download(site, visitor):
    assert refusal(visitor, "someone/some-pack") == refusal(visitor, "/root/.ssh")  # an attempt would say "unreachable"
    assert not (site["root"] / "hf").exists() or not any((site["root"] / "hf").rglob("*"))


def test_hub_ids_never_reach_the_hub_in_process(monkeypatch, tmp_path):
    """The same, observed directly: snapshot_download is never called for a repo that is not offered."""
    import huggingface_hub

    calls = []
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda *a, **k: calls.append(a) or str(tmp_path))
    policy = PackPolicy.public_mode(tmp_path / "no-packs", hub_repos=["me/offered"])
    for name in ["someone/some-pack", "me/offered2", "ME/offered"]:
        with pytest.raises(Exception, match="only the model packs it offers"):
            policy.resolve(name)
    assert calls == []


def test_offered_packs_load(site, visitor):
    assert "pixel_patch:p16:64px" in visitor.predict("tiny", api_name="/load_pack")
    assert roll(visitor, _image(site["root"], "ok.png", 80))[0] is not None
    if BUNDLED:
        assert "pixel_patch:p16:128px" in visitor.predict("assets/pack", api_name="/load_pack")


def test_pack_model_kwargs_are_refused(visitor):
    message = refusal(visitor, "kwargs")
    assert "model_kwargs" in message and "passwd" not in message


@pytest.mark.parametrize("encoder, refused", [
    ({"kind": "timm", "name": "hf-hub:someone/any-model"}, "plain timm model name"),
    ({"kind": "timm", "name": "local-dir:/srv/models/x"}, "plain timm model name"),
    ({"kind": "timm", "name": "vit_small_patch14_dinov2.lvd142m", "model_kwargs": {"depth": 2}}, "model_kwargs"),
    ({"kind": "timm", "name": "vit_small_patch14_dinov2.lvd142m"}, None),
])
def test_public_packs_name_their_encoder_plainly(tmp_path, encoder, refused):
    """Checked on pack.json before anything is built: the encoder is never created for a refused pack."""
    import gradio as gr

    (tmp_path / "packs" / "p").mkdir(parents=True)
    (tmp_path / "packs" / "p" / "pack.json").write_text(json.dumps({"encoder": encoder}))
    policy = PackPolicy.public_mode(tmp_path / "packs", bundled=tmp_path / "none")
    assert list(policy.offered) == ["p"]
    if refused:
        with pytest.raises(gr.Error, match=refused):
            policy.resolve("p")
    else:
        assert policy.resolve("p") == str((tmp_path / "packs" / "p").resolve())


def test_a_pack_loads_with_unpickling_disabled(tiny_pack, monkeypatch):
    """Pack files are JSON, safetensors and an npz read with allow_pickle=False: nothing is unpickled."""
    import _pickle
    import pickle

    import torch

    from rla import ModelPack

    def refuse(*args, **kwargs):
        raise AssertionError("something tried to unpickle while loading a pack")

    for module, name in [(pickle, "load"), (pickle, "loads"), (_pickle, "load"), (_pickle, "loads"), (torch, "load")]:
        monkeypatch.setattr(module, name, refuse)
    pack = ModelPack.load(tiny_pack)
    assert pack.latent_map is not None and pack.baselines  # every file of the pack was read


def test_a_too_large_upload_is_refused_before_it_is_stored(site, visitor):
    big = site["root"] / "big.bin"
    big.write_bytes(os.urandom(PUBLIC_LIMITS.max_file_size + 1))
    uploads = site["root"] / "gradio"
    before = _files(uploads)
    with open(big, "rb") as f:  # raw HTTP: a visitor need not use a client that checks the size first
        r = httpx.post(site["url"] + "gradio_api/upload", files={"files": ("frame.png", f, "image/png")}, timeout=60)
    assert r.status_code == 413 and "maximum allowed size" in r.text
    with pytest.raises(ValueError, match="exceeds the maximum file size"):  # gradio_client refuses it before sending
        roll(visitor, big)
    assert not [p for p in _files(uploads) - before if p.stat().st_size > PUBLIC_LIMITS.max_body]


def test_an_inline_image_over_the_body_limit_is_refused(site):
    """An image sent inside the JSON call as a data: URL (which Gradio would write to disk) is bounded too."""
    cfg = httpx.get(site["url"] + "config").json()
    types = {c["id"]: c["type"] for c in cfg["components"]}
    fn, dep = next((i, d) for i, d in enumerate(cfg["dependencies"]) if d.get("api_name") == "rollout")
    data_url = "data:image/png;base64," + "A" * (PUBLIC_LIMITS.max_body + 10)
    data = [{"url": data_url, "meta": {"_type": "gradio.FileData"}} if types[i] == "image" else None for i in dep["inputs"]]
    before = _files(site["root"] / "gradio")
    r = httpx.post(site["url"] + "gradio_api/queue/join", json={"data": data, "fn_index": fn, "session_hash": uuid.uuid4().hex[:10]},
                   timeout=60)
    assert r.status_code == 413 and "Request too large" in r.text
    assert _files(site["root"] / "gradio") == before


def test_a_non_image_upload_is_refused(site, visitor):
    text = site["root"] / "notes.txt"
    text.write_text("this is not an image\n")
    with pytest.raises(AppError, match="not an image"):
        roll(visitor, text)


COSTLY = {  # every input whose value sets the cost of a call, just over its bound (Gradio refuses it in preprocessing)
    "rollout chunks": ("/rollout", {"chunks": 11}, "Value 11 is greater than maximum value 10"),
    "rollout samples": ("/rollout", {"samples": 17}, "Value 17 is greater than maximum value 16"),
    "rollout Euler steps": ("/rollout", {"steps": 51}, "Value 51 is greater than maximum value 50"),
    "interpolation points": ("/interpolate", {"points": 25}, "Value 25 is greater than maximum value 24"),
    "evaluation chunks": ("/evaluate", {"chunks": 7}, "Value 7 is greater than maximum value 6"),
    "plan candidates": ("/plan", {"candidates": 257}, "Value 257 is greater than maximum value 256"),
    "plan iterations": ("/plan", {"iterations": 11}, "Value 11 is greater than maximum value 10"),
    "plan horizon": ("/plan", {"horizon": 5}, "Value 5 is greater than maximum value 4"),
    "plan Euler steps": ("/plan", {"steps": 21}, "Value 21 is greater than maximum value 20"),
    "plan elites": ("/plan", {"elites": 65}, "Value 65 is greater than maximum value 64"),
    "policy episodes": ("/run_policy", {"n": 6}, "Value 6 is greater than maximum value 5"),
}


@pytest.mark.parametrize("what", list(COSTLY))
def test_costly_inputs_are_capped(site, visitor, what):
    api, settings, message = COSTLY[what]
    visitor.predict("tiny", api_name="/load_pack")
    image = handle_file(_image(site["root"], "ok.png", 80))
    with pytest.raises(AppError, match=message):
        if api == "/rollout":
            roll(visitor, _image(site["root"], "ok.png", 80), **settings)
        elif api == "/plan":  # start and goal uploaded; every other input at its default
            visitor.predict(s_source=UP, s_episode=None, s_image=image, g_source=UP, g_episode=None, g_image=image, **settings,
                            api_name=api)
        elif api == "/run_policy":
            visitor.predict(**settings, api_name=api)
        elif api == "/interpolate":  # mode, path, source, episode, t, k, A, B, episode of B, t, k, points, seed, alpha
            visitor.predict("Noise → latent action", "linear", UP, None, 0, 1, image, image, None, 0, 1, settings["points"], 0, 0.5,
                            api_name=api)
        else:  # episodes, chunks, start, Euler steps, cost?, chart metric
            visitor.predict([], settings["chunks"], 0, [3], False, "token_l1", api_name=api)


@pytest.mark.parametrize("choice", ["/root/.ssh", "../../../../etc", "someone/some-policy"])
def test_the_policy_runner_loads_only_listed_policies(visitor, choice):
    """The live-policy endpoint takes a dropdown value; Gradio refuses any value not among its choices."""
    with pytest.raises(AppError, match="not in the list of choices"):
        visitor.predict(choice=choice, n=1, api_name="/run_policy")


def test_a_session_holds_a_bounded_rollout(site, visitor):
    visitor.predict("tiny", api_name="/load_pack")
    image = _image(site["root"], "ok.png", 80)
    for done in (10, 20, 30, 40):
        assert f"{done} chunks" in roll(visitor, image, chunks=10, steps=1)[-1]
    with pytest.raises(AppError, match="at most 40 chunks"):
        roll(visitor, image, chunks=1, steps=1)


@pytest.mark.slow
def test_a_flood_beyond_the_queue_is_told_to_try_again(site):
    """64 simultaneous costly calls against a queue of 32: the excess is refused at once, the rest run, the app stays up."""
    from gradio_client.utils import QueueError

    flood = Client(site["url"], verbose=False, max_workers=2 * MAX_QUEUE, httpx_kwargs={"timeout": 120})  # a busy CPU answers slowly
    flood.predict("tiny", api_name="/load_pack")
    image = handle_file(_image(site["root"], "ok.png", 80))
    # /interpolate holds no session state, so concurrent calls of one session cannot interfere; one seed per call, so
    # that each call computes (and writes) its own pictures
    start = time.time()
    jobs = [flood.submit("Noise → latent action", "spherical", UP, None, 0, 1, image, image, None, 0, 1, 5, seed, 0.5,
                         api_name="/interpolate") for seed in range(2 * MAX_QUEUE)]
    deadline = start + 600  # generous: the CPU may be shared with other jobs
    errors = [j.exception(timeout=max(deadline - time.time(), 1)) for j in jobs]  # TimeoutError if the queue never drains
    busy = [e for e in errors if isinstance(e, QueueError)]
    assert busy and all("try again" in str(e) for e in busy), {type(e).__name__ for e in errors}
    assert len(busy) <= 2 * MAX_QUEUE - MAX_QUEUE  # no more refused than the bound requires
    assert all(e is None for e in errors if not isinstance(e, QueueError)), [e for e in errors if e is not None][:3]
    print(f"flood: {len(busy)} of {len(jobs)} refused as busy, the rest served in {time.time() - start:.0f} s")
    assert site["proc"].poll() is None
    assert "pixel_patch" in Client(site["url"], verbose=False, httpx_kwargs={"timeout": 60}).predict("tiny", api_name="/load_pack")


def test_public_mode_is_on_for_a_space(monkeypatch):
    from app.launch import parse_args

    for var in ("SPACE_ID", "SYSTEM", "RLA_PUBLIC"):
        monkeypatch.delenv(var, raising=False)
    assert parse_args([]).public is False and parse_args(["--public"]).public is True
    monkeypatch.setenv("SPACE_ID", "user/rla-explorer")
    assert parse_args([]).public is True and parse_args(["--no-public"]).public is False
    monkeypatch.delenv("SPACE_ID")
    monkeypatch.setenv("SYSTEM", "spaces")
    assert parse_args([]).public is True


@pytest.mark.parametrize("name, message", [
    ("x" * 5000, "at most 4096 characters"),
    ("/tmp/" + "x" * 300, "File name too long"),  # one path component over 255 bytes: an OSError inside pathlib
    ("pack\x00name", "control characters"),
    ("   ", "no pack name given"),
    (12, "text, not int"),
])
def test_local_mode_explains_malformed_names(name, message):
    import gradio as gr

    with pytest.raises(gr.Error, match=message):
        PackPolicy().resolve(name)


def test_local_mode_still_loads_any_folder(tiny_pack, tmp_path):
    assert PackPolicy().resolve(str(tiny_pack)) == str(tiny_pack.resolve())
    assert PackPolicy().resolve("user/name") == "user/name"  # a Hub id: resolved (and downloaded) by ModelPack.load


def test_public_errors_hide_internal_details():
    import gradio as gr

    from app.errors import guarded, show_details

    @guarded("do it")
    def broken():
        raise FileNotFoundError("/srv/secret/place.bin")

    try:
        show_details(False)
        with pytest.raises(gr.Error) as err:
            broken()
        assert "secret" not in err.value.message and "FileNotFoundError" in err.value.message
    finally:
        show_details(True)
    with pytest.raises(gr.Error, match="secret"):
        broken()


def roll(client, image: Path, **settings):
    """``/rollout`` from an uploaded start frame."""
    return rollout(client, source=UP, episode=None, frame=0, image=handle_file(image), **settings)


def _image(root: Path, name: str, side: int) -> Path:
    path = root / name
    if not path.exists():
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (side, side, 3), dtype=np.uint8)).save(path)
    return path


def _files(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()} if folder.exists() else set()
