"""Every named endpoint, called with gradio_client against the app served in the test (tiny pack)."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

EP, UP = "Example episode", "Upload"
NOISE, BETWEEN = "Noise → latent action", "Latent action A → latent action B"
ENDPOINTS = ["/rollout", "/undo", "/reset", "/encode_pair", "/transfer", "/interpolate", "/umap", "/evaluate",
             "/stored_results", "/load_pack"]


def rollout(client, *, source=EP, episode="synthetic-0", frame=3, image=None, actions=(0.0, 0.0, 0.0, 0.0), recorded=False,
            chunks=1, steps=4, samples=1, baselines=False, seed=0):
    a = list(actions) + [0.0] * (8 - len(actions))
    return client.predict(source, episode, frame, image, *a, recorded, chunks, steps, samples, baselines, seed, api_name="/rollout")


def pixels(path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def status(result) -> str:
    return result[-1]


def test_every_endpoint_is_named(client):
    named = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert set(ENDPOINTS) <= set(named)
    params = [p["parameter_name"] for p in named["/rollout"]["parameters"]]
    assert params[:4] == ["source", "episode", "frame", "image"] and "steps" in params and "samples" in params


def test_rollout_predicts_frames_and_reports_latency(client):
    out = rollout(client, chunks=2)
    latest, real, film, change, spread, errors, latency, text = out
    assert pixels(latest).shape[0] >= 256 and pixels(real).shape == pixels(latest).shape
    assert pixels(film).shape[1] > pixels(film).shape[0]  # a strip: start + 2 chunks
    assert "encode" in latency and "predict" in latency and "decode" in latency
    assert "2 chunks" in text and "10 steps" in text
    assert json.loads(errors["plot"])["data"], "the error curve has traces"


def test_actions_change_the_prediction(client):
    left = pixels(rollout(client, actions=(-1.0, -1.0, 0, -1))[0])
    right = pixels(Client(client.src, verbose=False).predict(
        EP, "synthetic-0", 3, None, 1.0, 1.0, 0, 1, 0, 0, 0, 0, False, 1, 4, 1, False, 0, api_name="/rollout")[0])
    assert np.abs(left.astype(int) - right.astype(int)).mean() > 0.05


def test_rollout_grows_undoes_and_resets(client):
    assert "1 chunk" in status(rollout(client))
    assert "2 chunks" in status(rollout(client))
    assert "3 chunks** (15 steps)" in status(rollout(client, recorded=True))
    assert "2 chunks" in status(client.predict(False, api_name="/undo"))
    out = client.predict(False, api_name="/reset")
    assert "Predict chunk" in status(out) and out[0] is None
    assert "1 chunk" in status(rollout(client, frame=4))  # a new start frame starts a new rollout


def test_sessions_do_not_share_state(app_url):
    a, b = Client(app_url, verbose=False), Client(app_url, verbose=False)
    rollout(a, chunks=3)
    assert "1 chunk" in status(rollout(b))
    assert "2 chunks" in status(a.predict(False, api_name="/undo"))
    assert "2 chunks" in status(rollout(b))


def test_recorded_actions_of_another_robot_fall_back_to_the_sliders(client):
    out = rollout(client, episode="stick-0", recorded=True, chunks=2)
    assert out[0] is not None and "with your actions" in status(out)
    summary, table, _ = client.predict(["stick-0", "synthetic-0"], 2, 0, [3], False, "psnr", api_name="/evaluate")
    assert "episodes: 1," in summary  # the 3-D episode was skipped
    with pytest.raises(AppError, match="None of the chosen episodes"):
        client.predict(["stick-0"], 2, 0, [3], False, "psnr", api_name="/evaluate")


def test_concurrent_sessions(app_url):
    from concurrent.futures import ThreadPoolExecutor

    def session(i):
        c = Client(app_url, verbose=False)
        rollout(c, frame=i, actions=(0.2 * i, 0, 0, 0))
        return status(rollout(c, frame=i, baselines=i % 2 == 0))

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(session, range(4)))
    assert all("2 chunks" in r and f"frame t = {i}" in r for i, r in enumerate(results)), results


def test_samples_and_baselines(client):
    one = rollout(client, chunks=1, frame=0)
    many = rollout(client, chunks=1, frame=1, samples=4, baselines=True)
    assert pixels(many[2]).shape[0] > pixels(one[2]).shape[0], "baseline rows make the filmstrip taller"
    assert "regression" in many[6].lower() and "4 samples" in many[6]
    names = {t["name"] for t in json.loads(many[5]["plot"])["data"]}
    assert any("regression" in n.lower() for n in names) and any("Copy" in n for n in names)


@pytest.mark.parametrize("kind", ["rgb", "gray", "rgba", "palette", "wide"])
def test_rollout_from_uploads(client, image_files, kind):
    out = rollout(client, source=UP, image=handle_file(str(image_files[kind])), recorded=True)
    assert out[0] is not None and out[1] is None  # no real frames for an upload
    assert "uploaded" in status(out)


@pytest.mark.parametrize("kwargs, message", [
    (dict(source=UP, image=None), "Upload an image"),
    (dict(episode="no-such-episode"), "not in the list of choices"),
    (dict(episode=None), "Pick an example episode"),
    (dict(frame=2.5), "whole number from 0 to 30"),
    (dict(steps=0), "less than minimum"),  # sliders refuse out-of-range values themselves
    (dict(samples=100), "greater than maximum"),
    (dict(actions=(5.0, 0, 0, 0)), "greater than maximum"),
    (dict(source="Webcam"), "Unknown frame source|not in the list of choices"),
])
def test_rollout_bad_inputs_get_clear_errors(client, kwargs, message):
    with pytest.raises(AppError, match=message) as err:
        rollout(client, **kwargs)
    assert "Traceback" not in str(err.value)
    assert "1 chunk" in status(rollout(client))  # the session keeps working


@pytest.mark.parametrize("kind, message", [("text", "not an image"), ("fake_png", "not an image"), ("tiny", "too small|only 4×4"),
                                            ("huge", "megapixels"), ("tiff", "not an image")])
def test_bad_uploads_get_clear_errors(client, image_files, kind, message):
    with pytest.raises(AppError, match=message):
        rollout(client, source=UP, image=handle_file(str(image_files[kind])))


def raw_call(url: str, api: str, data: list) -> str:
    """POST to the HTTP API directly (gradio_client cannot send NaN) and return the event stream."""
    import httpx

    r = httpx.post(f"{url}gradio_api/call{api}", content=json.dumps({"data": data}), headers={"Content-Type": "application/json"})
    r.raise_for_status()
    with httpx.stream("GET", f"{url}gradio_api/call{api}/{r.json()['event_id']}", timeout=60) as s:
        return "".join(s.iter_text())


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_actions_are_refused(app_url, value):
    data = [EP, "synthetic-0", 3, None, value, 0, 0, 0, 0, 0, 0, 0, False, 1, 4, 1, False, 0]
    stream = raw_call(app_url, "/rollout", data)
    assert "event: error" in stream and ("finite" in stream or "greater than maximum" in stream)
    assert "Traceback" not in stream


def test_encode_pair_and_transfer(client):
    strip, code, text = client.predict(EP, "synthetic-1", 2, 8, None, None, api_name="/encode_pair")
    assert pixels(strip).shape[1] > 3 * pixels(strip).shape[0] // 2
    assert pixels(code).shape[0] > 0 and "Compression" in text and "latent map" in text
    picture, info = client.predict(EP, "synthetic-1", 2, 8, None, None, EP, "synthetic-0", 4, None, api_name="/transfer")
    assert pixels(picture).shape[0] > 0 and "Token L1 to the real frame 8 steps later" in info


def test_encode_pair_from_uploads(client, image_files):
    a, b = handle_file(str(image_files["rgb"])), handle_file(str(image_files["gray"]))
    _, _, text = client.predict(UP, None, 0, 1, a, b, api_name="/encode_pair")
    assert "Reconstruction" in text
    _, info = client.predict(UP, None, 0, 1, a, b, UP, None, 0, handle_file(str(image_files["wide"])), api_name="/transfer")
    assert "No real frame" in info


@pytest.mark.parametrize("args, message", [
    ((EP, "synthetic-0", 25, 10, None, None), "horizon k"),
    ((EP, "synthetic-0", 0, 0, None, None), "less than minimum"),
    ((UP, None, 0, 1, None, None), "Upload both"),
])
def test_encode_pair_bad_inputs(client, args, message):
    with pytest.raises(AppError, match=message):
        client.predict(*args, api_name="/encode_pair")


@pytest.mark.parametrize("mode, path", [(NOISE, "linear"), (NOISE, "spherical"), (BETWEEN, "linear")])
def test_interpolate(client, mode, path):
    strip, gif, at_alpha, fig, text = client.predict(mode, path, EP, "synthetic-1", 2, 8, None, None, "synthetic-1", 2, 4,
                                                     6, 0, 0.5, api_name="/interpolate")
    with Image.open(gif) as im:
        assert im.format == "GIF" and im.n_frames == 10  # 6 points there and back
    assert pixels(strip).shape[0] > pixels(at_alpha).shape[0] // 2
    # every ρ is reported (its value against the library's: tests/app/test_property_views.py)
    assert len(re.findall(r"ρ = (?:-?\d\.\d\d|undefined)", text)) == 3 and json.loads(fig["plot"])["data"]


@pytest.mark.parametrize("override, message", [({13: 2.0}, "greater than maximum"), ({11: 1}, "less than minimum"),
                                               ({1: "bezier"}, "bezier"), ({0: "sideways"}, "sideways"),
                                               ({8: "nope"}, "Unknown episode|not in the list")])
def test_interpolate_bad_inputs(client, override, message):
    args = [NOISE, "linear", EP, "synthetic-1", 2, 8, None, None, "synthetic-1", 2, 4, 6, 0, 0.5]
    for i, v in override.items():
        args[i] = v
    with pytest.raises(AppError, match=message):
        client.predict(*args, api_name="/interpolate")


def test_latent_map_with_my_pair_and_a_selected_point(client):
    client.predict(EP, "synthetic-1", 2, 5, None, None, api_name="/encode_pair")
    fig, frames, text = client.predict("task", 3, api_name="/umap")
    traces = json.loads(fig["plot"])["data"]
    assert any("synthetic-1" in (t.get("name") or "") for t in traces), "the user's pair is drawn"
    assert {"PushCube", "PullCube"} <= {t.get("name") for t in traces}
    assert frames is not None and "Point #3" in text
    fig, frames, text = client.predict("time in episode", -1, api_name="/umap")
    assert frames is None and "★" in text
    with pytest.raises(AppError, match="Point #"):
        client.predict("task", 10_000, api_name="/umap")


def test_evaluate(client, tiny_pack, episodes):
    state_free = client.predict(["synthetic-0", "synthetic-1"], 2, 0, [1, 3], False, "psnr", api_name="/evaluate")
    summary, table, chart = state_free
    # the rows that draw no noise hold the library's numbers for the same episodes and protocol (2 chunks from frame 0)
    from rla import ModelPack
    from rla.data import ChunkEvalSet
    from rla.evaluation import evaluate_pack
    from rla.labels import METRICS
    from tests.app.tiny import CHUNK

    evalset = ChunkEvalSet(episodes[:2], num_chunks=2, chunk=CHUNK, start=0)
    library = evaluate_pack(ModelPack.load(tiny_pack), [evalset[i] for i in range(len(evalset))], rla_steps=(1,), cost=False)
    rows = {row[0]: row for row in table["data"]}
    for method, label in [("regression", "regression"), ("copy", "copy (floor)")]:
        for key, metric in METRICS.items():
            value = library["methods"][method]["final"].get(key)
            if value is not None and metric.title in table["headers"]:
                shown = float(str(rows[label][table["headers"].index(metric.title)]).split(" [")[0])
                assert shown == pytest.approx(value, rel=5e-3, abs=1e-6), (method, key)
    assert "episodes: 2, windows: 2 · 2 chunks" in summary
    methods = [row[0] for row in table["data"]]
    assert methods[:7] == ["RLA-WM @1", "RLA-WM @1 zero", "RLA-WM @1 mean8", "RLA-WM @3", "RLA-WM @3 zero", "RLA-WM @3 mean8", "regression"]
    assert {"token flow", "token flow zero", "token flow mean8", "copy (floor)"} <= set(methods)
    # two episodes: every score comes with its 95 % interval, and the chart draws it
    assert all("[" in str(cell) for cell in table["data"][0][1:4])
    bars = json.loads(chart["plot"])["data"][0]
    assert bars["type"] == "bar" and "error_y" in bars


@pytest.mark.parametrize("args, message", [(([], 3, 0, [3], False, "psnr"), "at least one"),
                                           ((["synthetic-0"], 6, 10, [3], False, "psnr"), "long enough"),
                                           ((["synthetic-0"], 2, 0, [], False, "psnr"), "Euler steps")])
def test_evaluate_bad_inputs(client, args, message):
    with pytest.raises(AppError, match=message):
        client.predict(*args, api_name="/evaluate")


def test_stored_results_missing(client):
    with pytest.raises(AppError, match="no stored evaluation"):
        client.predict("token_l1", api_name="/stored_results")


def test_load_pack(client, tiny_pack, tmp_path):
    summary = client.predict(str(tiny_pack), api_name="/load_pack")
    assert "pixel_patch" in summary and "4-D" in summary
    for bad, message in [("", "Enter a pack"), (str(tmp_path), "not a model pack"), ("user/offline-pack", "unreachable"),
                         ("not a pack", "not found")]:
        with pytest.raises(AppError, match=message):
            client.predict(bad, api_name="/load_pack")
    assert rollout(client)[0] is not None  # the session still has its pack


@pytest.mark.slow  # launches the app
def test_an_app_without_a_pack_starts_and_explains(episodes, tmp_path):
    from tests.app.conftest import serve

    demo, url = serve(None, episodes, tmp_path)
    try:
        c = Client(url, verbose=False)
        with pytest.raises(AppError, match="No model pack"):
            rollout(c)
        with pytest.raises(AppError, match="No model pack"):
            c.predict("task", -1, api_name="/umap")
    finally:
        demo.close()


def test_stored_results_of_a_pack(client, tiny_pack, tmp_path):
    import shutil

    pack = shutil.copytree(tiny_pack, tmp_path / "with-results")
    methods = {name: {"final": {"token_l1": v, "psnr": 20 + v, "lpips": None}, "cost": {"gflops": 1.5, "ms_median": 9.0},
                      "ci": {"token_l1": {"mean": v, "low": v - 0.01, "high": v + 0.02}}}
               for name, v in [("rla@10 mean8", 0.1), ("regression", 0.2), ("copy", 0.3)]}
    comparisons = {"rla@10 mean8 − regression": {"token_l1_moving": {"mean": -0.1, "low": -0.12, "high": -0.08,
                                                                    "verdict": "rla@10 mean8 beats regression"}}}
    protocol = {"episodes": 20, "windows": 60, "split": "test", "training_seeds": 3, "num_chunks": 3, "chunk": 10, "reported": "rla@10 mean8"}
    results = {"evaluation": {"protocol": protocol, "methods": methods, "comparisons": comparisons}}
    (pack / "results.json").write_text(json.dumps(results))
    client.predict(str(pack), api_name="/load_pack")
    summary, table, chart = client.predict("token_l1", api_name="/stored_results")
    assert "stored with the pack" in summary and "test episodes: 20, windows: 60 · 3 chunks of 10 steps" in summary
    assert "training seeds: 3" in summary and "rla@10 mean8 − regression: rla@10 mean8 beats regression" in summary
    assert [r[0] for r in table["data"]] == ["RLA-WM @10 mean8", "regression", "copy (floor)"]
    l1 = table["headers"].index("token L1")
    assert table["data"][0][l1] == "0.1 [0.09, 0.12]"
    bars = json.loads(chart["plot"])["data"][0]
    assert bars["y"] == [0.1, 0.2, 0.3] and bars["error_y"]["array"] == pytest.approx([0.02, 0.02, 0.02])


def test_example_episode_pairs_are_placed_on_the_map(client, tiny_pack):
    from rla.latent_map import LatentMap

    n_train = len(LatentMap.load(tiny_pack / "latent_map.npz").coords)
    fig, _, _ = client.predict("time in episode", -1, api_name="/umap")
    diamonds = [t for t in json.loads(fig["plot"])["data"] if t.get("marker", {}).get("symbol") == "diamond"]
    assert diamonds and diamonds[0]["name"] == "example episodes"
    _, frames, text = client.predict("task", n_train, api_name="/umap")
    assert frames is not None and text.startswith("Point example-episode pair")


def test_concurrent_calls_of_one_session_run_one_after_the_other(client):
    """Two rollouts sent at once by one visitor must not extend the same state at the same time."""
    client.predict(api_name="/reset")
    args = lambda dx: (EP, "synthetic-0", 3, None, dx, 0.0, 0.0, 0.0, 0, 0, 0, 0, False, 3, 4, 2, True, 0)  # noqa: E731
    jobs = [client.submit(*args(dx), api_name="/rollout") for dx in (0.5, -0.5)]
    counts = sorted(int(re.search(r"\*\*(\d+) chunks?\*\*", status(job.result(timeout=120)))[1]) for job in jobs)
    assert counts == [3, 6]  # the second call starts from the first one's result
