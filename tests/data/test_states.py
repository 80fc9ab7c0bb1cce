"""rla.data.states: end-effector and object positions from the recorded simulator states."""
import numpy as np
import pytest

from rla.data import DatasetError, load_episodes
from rla.data.states import load_states, object_actor, traj_key


def test_states_of_a_shipped_recording_match_its_length_and_move():
    ep = load_episodes("assets/examples/PushCube_s100_n2.h5")[0]
    s = load_states(ep)
    assert s.object_name == "cube" and s.tcp.shape == s.object.shape == (ep.num_steps + 1, 3)
    assert np.linalg.norm(s.displacement("tcp", 0, 10)) > 0.05  # the arm moves towards the cube
    assert np.linalg.norm(s.displacement("object", 0, ep.num_steps)) > 0.05  # and pushes it
    np.testing.assert_array_equal(s.displacement("object", 3, 8), s.object[8] - s.object[3])
    with pytest.raises(ValueError, match="tcp"):
        s.displacement("gripper", 0, 1)


def test_objects_of_other_tasks():
    assert load_states(load_episodes("assets/examples/PushT_s101_n2.h5")[0]).object_name == "Tee"
    assert object_actor("NewTask", ["table-workspace", "goal_region", "box"]) == "box"
    with pytest.raises(DatasetError, match="OBJECT_ACTORS"):
        object_actor("NewTask", ["table-workspace", "a", "b"])


def test_episodes_without_a_file_or_a_traj_group_are_refused(synthetic):
    ep = synthetic[0]
    ep.source = ""
    with pytest.raises(DatasetError, match="not loaded from an h5"):
        load_states(ep)
    assert traj_key("PushCube/test/traj_12") == "traj_12"
    with pytest.raises(DatasetError, match="traj_"):
        traj_key("synthetic-0")
