"""Shared test settings: offline Hub, few threads, deterministic seeds."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("MS_SKIP_ASSET_DOWNLOAD_PROMPT", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(2)

# A test that needs one of these fixtures is slow: it is marked so, and `pytest -m "not slow"` (the fast lane) leaves it out.
SLOW_FIXTURES = {
    "app_url": "launches the app (tests/app/conftest.py)", "seeded_url": "launches the app (tests/app/test_plan.py)",
    "site": "launches the public app (tests/app/test_public.py)", "recorded_dir": "records episodes with ManiSkill (tests/data/conftest.py)",
}


def pytest_collection_modifyitems(items):
    for item in items:
        if SLOW_FIXTURES.keys() & set(item.fixturenames):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models run fastest on one thread (the CPU is shared with training jobs); use it per module
    with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
