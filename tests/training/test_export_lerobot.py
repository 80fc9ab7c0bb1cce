"""training.export_lerobot: recordings → LeRobotDataset v3.0 (parquet + mp4 + meta/info.json)."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.app.tiny import synthetic_episodes
from tests.rla.test_video import read_mp4
from tests.training.recordings import write_recording

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from training import export_lerobot

    root = tmp_path_factory.mktemp("lerobot")
    push = synthetic_episodes(n=1, steps=7, seed=0)
    pull = synthetic_episodes(n=1, steps=11, seed=1)
    write_recording(push, root / "rec" / "PushCube_synthetic.h5", "PushCube", first_seed=2000)
    write_recording(pull, root / "rec" / "PullCube_synthetic.h5", "PullCube", first_seed=2001)
    info = export_lerobot.main(["--data", str(root / "rec"), "--out", str(root / "out")])
    return root / "out", info, {"PushCube": push[0], "PullCube": pull[0]}


def test_tables_have_the_v3_schema_and_counts(exported):
    out, info, source = exported
    data = pq.read_table(out / "data" / "chunk-000" / "file-000.parquet")
    assert data.schema.field("action").type == pa.list_(pa.float32(), 4)
    assert data.schema.field("observation.state").type == pa.list_(pa.float32(), 2)
    for name, dtype in (("timestamp", pa.float32()), ("frame_index", pa.int64()), ("episode_index", pa.int64()),
                        ("index", pa.int64()), ("task_index", pa.int64()), ("next.success", pa.bool_())):
        assert data.schema.field(name).type == dtype, name
    assert data.num_rows == 7 + 11 and data.column("index").to_pylist() == list(range(18))
    episodes = pq.read_table(out / "meta" / "episodes" / "chunk-000" / "file-000.parquet").to_pylist()
    assert [e["length"] for e in episodes] == [11, 7]  # files load in name order: PullCube, then PushCube
    assert [(e["dataset_from_index"], e["dataset_to_index"]) for e in episodes] == [(0, 11), (11, 18)]
    assert [e["rla/seed"] for e in episodes] == [2001, 2000] and episodes[0]["rla/task"] == "PullCube"
    tasks = pq.read_table(out / "meta" / "tasks.parquet").to_pandas()
    assert tasks.index.name == "task" and list(tasks["task_index"]) == [0, 1]
    assert tasks.index[0] == episodes[0]["tasks"][0] == "pull the blue cube back onto the target"
    # row values are the recording's: action t and qpos t of each episode
    pull = source["PullCube"]
    rows = data.slice(0, 11).to_pydict()
    assert np.allclose(rows["action"], pull.actions) and np.allclose(rows["observation.state"], pull.qpos[:11])
    assert rows["frame_index"] == list(range(11)) and np.allclose(rows["timestamp"], np.arange(11) / 20)
    assert rows["next.success"] == list(pull.success)
    assert data.slice(11).column("task_index").to_pylist() == [1] * 7

    assert info == json.loads((out / "meta" / "info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["fps"] == 20.0
    assert (info["total_episodes"], info["total_frames"], info["total_tasks"]) == (2, 18, 2)
    assert info["data_path"] == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    assert info["video_path"] == "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
    features = info["features"]
    video = features["observation.images.front"]
    assert video["dtype"] == "video" and video["shape"] == [64, 64, 3]
    assert features["action"] == {"dtype": "float32", "shape": [4], "names": ["dx", "dy", "dz", "gripper"]}
    vectors = {"observation.state", "action"}
    assert set(features) - vectors - {"observation.images.front"} == set(data.column_names) - vectors
    stats = json.loads((out / "meta" / "stats.json").read_text())
    actions = np.array(data.column("action").to_pylist())  # (18, 4)
    assert stats["action"]["count"] == [18] and np.allclose(stats["action"]["max"], actions.max(0))
    assert np.allclose(stats["action"]["mean"], actions.mean(0)) and np.allclose(stats["action"]["std"], actions.std(0))


def test_each_video_has_one_frame_per_row_and_shows_the_recording(exported):
    out, info, source = exported
    episodes = pq.read_table(out / "meta" / "episodes" / "chunk-000" / "file-000.parquet").to_pylist()
    data = pq.read_table(out / "data" / "chunk-000" / "file-000.parquet")
    for ep, name in zip(episodes, ("PullCube", "PushCube")):
        key = "observation.images.front"
        video = out / info["video_path"].format(video_key=key, chunk_index=ep[f"videos/{key}/chunk_index"],
                                                file_index=ep[f"videos/{key}/file_index"])
        frames = read_mp4(video)
        rows = data.filter(pa.compute.equal(data.column("episode_index"), ep["episode_index"])).num_rows
        assert len(frames) == rows == ep["length"]
        assert ep[f"videos/{key}/to_timestamp"] == pytest.approx(rows / info["fps"])
        recorded = source[name].frames[: len(frames)].astype(float)
        decoded = np.stack(frames).astype(float)
        assert np.abs(decoded - recorded).mean() < 12  # lossy codec, same pictures
        # in the same order: each video frame is nearest to its own row's frame (or to one identical to it)
        nearest = np.abs(decoded[:, None] - recorded[None]).mean((2, 3, 4)).argmin(1)  # (T,)
        assert all(np.array_equal(recorded[j], recorded[i]) for i, j in enumerate(nearest)), nearest


def test_refuses_a_folder_that_is_not_empty(exported):
    from rla.data import load_episodes
    from training.export_lerobot import export

    out, _, _ = exported
    with pytest.raises(FileExistsError, match="not empty"):
        export(load_episodes(out.parent / "rec"), out)


def test_missing_data_prints_the_message_and_exits_2(tmp_path):
    command = [sys.executable, "-m", "training.export_lerobot", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]
    run = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert run.returncode == 2 and "missing: no such file or folder" in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "o").exists()
