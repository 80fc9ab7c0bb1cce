"""Load: 8 concurrent API clients make the same ``/rollout`` request for 15 s; every call must succeed.

Identical requests produce identical pictures, so the responses name the same cached files: this is
the case that used to truncate downloads (a file rewritten in place while another response was
streaming it; server: ``h11 LocalProtocolError: Too little data for declared Content-Length``).
Loopback only, bounded in time and threads.
"""
from __future__ import annotations

import threading
import time

import pytest
from gradio_client import Client

from tests.app.conftest import serve

CLIENTS, SECONDS = 8, 15.0
REQUEST = ("Example episode", "synthetic-0", 3, None, 0.5, 0.0, 0.0, 1.0, 0, 0, 0, 0, False, 3, 4, 1, True, 0)


@pytest.mark.slow
def test_eight_clients_for_fifteen_seconds_without_an_error(tiny_pack, episodes, tmp_path):
    demo, url = serve(tiny_pack, episodes, tmp_path / "features")
    calls, errors, lock = [0] * CLIENTS, [], threading.Lock()
    deadline = time.monotonic() + SECONDS

    def client(i: int) -> None:
        c = Client(url, verbose=False, download_files=str(tmp_path / f"client-{i}"))
        while time.monotonic() < deadline:
            try:
                c.predict(True, api_name="/reset")  # every call starts from the same empty rollout
                out = c.predict(*REQUEST, api_name="/rollout")
                assert "3 chunks" in out[-1], out[-1]
                calls[i] += 1
            except Exception as err:  # noqa: BLE001 — counted and reported below
                with lock:
                    errors.append(f"client {i}: {type(err).__name__}: {err}")

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(CLIENTS)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=SECONDS + 120)  # a call in flight at the deadline may take a while on a busy CPU
        assert not any(t.is_alive() for t in threads), "a client hung"
    finally:
        demo.close()
    assert not errors, f"{len(errors)} of {sum(calls) + len(errors)} calls failed:\n" + "\n".join(errors[:5])
    assert all(n >= 1 for n in calls), f"every client completed calls: {calls}"
    print(f"{sum(calls)} calls by {CLIENTS} clients in {SECONDS:.0f} s, none failed")  # shown with pytest -s
