"""Command line: ``python app.py [--pack PATH_OR_REPO] [--host H] [--port P]``."""
from __future__ import annotations

import argparse
import logging
import os


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="RLA Explorer: an interactive app for Residual Latent Action world models.")
    p.add_argument("--pack", help="model pack folder or Hub repo id (default: $RLA_PACK, else assets/pack)")
    p.add_argument("--examples", help="folder of example episodes (default: assets/examples)")
    p.add_argument("--host", help="server address (default: $GRADIO_SERVER_NAME or 127.0.0.1)")
    p.add_argument("--port", type=int, help="server port (default: $GRADIO_SERVER_PORT or 7860)")
    p.add_argument("--threads", type=int, default=int(os.environ.get("RLA_THREADS", "0")),
                   help="torch CPU threads (default: torch's choice; $RLA_THREADS)")
    return p.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # gradio's own startup requests
    import torch

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    from app.packs import HOW_TO_GET_A_PACK, default_pack
    from app.ui import build_demo, launch_kwargs

    pack = default_pack(args.pack)
    if pack is None:
        print(f"No model pack found (looked at --pack, $RLA_PACK and assets/pack). {HOW_TO_GET_A_PACK}\n"
              "Starting without one: the About tab and the pack loader work.")
    demo = build_demo(pack, examples_dir=args.examples)
    demo.queue(default_concurrency_limit=2).launch(server_name=args.host, server_port=args.port, **launch_kwargs())
