"""Command line: ``python app.py [--pack PATH_OR_REPO] [--host H] [--port P] [--public]``.

``--public`` (the default on a Hugging Face Space) serves untrusted visitors: only the offered packs
load (the bundled one, ``--packs-dir`` folders, ``--hub-packs`` repos) and uploads, the queue and the
kept sessions are bounded more tightly. See :mod:`app.public` and the threat model in docs/app.md.
"""
from __future__ import annotations

import argparse
import logging
import os


def running_on_space(env=None) -> bool:
    """Whether the app runs as a Hugging Face Space (which sets ``SPACE_ID`` and ``SYSTEM=spaces``)."""
    env = os.environ if env is None else env
    return bool(env.get("SPACE_ID")) or env.get("SYSTEM") == "spaces"


def _csv(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="RLA Explorer: an interactive app for Residual Latent Action world models.")
    p.add_argument("--pack", help="model pack folder or Hub repo id (default: $RLA_PACK, else assets/pack)")
    p.add_argument("--examples", help="folder of example episodes (default: assets/examples)")
    p.add_argument("--host", help="server address (default: $GRADIO_SERVER_NAME or 127.0.0.1)")
    p.add_argument("--port", type=int, help="server port (default: $GRADIO_SERVER_PORT or 7860)")
    p.add_argument("--threads", type=int, default=int(os.environ.get("RLA_THREADS", "0")),
                   help="torch CPU threads (default: torch's choice; $RLA_THREADS)")
    p.add_argument("--public", action=argparse.BooleanOptionalAction, default=None,
                   help="serve untrusted visitors: load only offered packs, tighter bounds "
                        "(default: on when running as a Hugging Face Space or $RLA_PUBLIC=1)")
    p.add_argument("--packs-dir", default=os.environ.get("RLA_PACKS_DIR"),
                   help="public mode: a folder whose pack subfolders are offered (default: $RLA_PACKS_DIR)")
    p.add_argument("--hub-packs", type=_csv, default=_csv(os.environ.get("RLA_HUB_PACKS")),
                   help="public mode: comma-separated Hub repo ids offered (default: $RLA_HUB_PACKS)")
    p.add_argument("--max-queue", type=int, default=None,
                   help="most events waiting in the queue; beyond it visitors are told to try again (default: 64)")
    args = p.parse_args(argv)
    if args.public is None:
        args.public = running_on_space() or os.environ.get("RLA_PUBLIC", "") in ("1", "true", "True")
    if args.max_queue is not None and args.max_queue < 1:
        p.error("--max-queue must be at least 1")
    return args


def start(args: argparse.Namespace, *, block: bool = True):
    """Build and launch the demo from parsed arguments; returns it (when ``block`` is false)."""
    import dataclasses

    from app.errors import show_details
    from app.packs import HOW_TO_GET_A_PACK, PACKS, default_pack
    from app.public import LOCAL_LIMITS, PUBLIC_LIMITS, PackPolicy
    from app.ui import build_demo, launch_kwargs
    from rla import PackError

    log = logging.getLogger("rla.app")
    pack = default_pack(args.pack)
    limits = PUBLIC_LIMITS if args.public else LOCAL_LIMITS
    if args.max_queue is not None:
        limits = dataclasses.replace(limits, max_queue=args.max_queue)
    if args.public:
        policy = PackPolicy.public_mode(args.packs_dir, args.hub_packs, default=pack)
        show_details(False)
        log.info("public mode: offering packs %s; uploads up to %s bytes, queue up to %s", list(policy.offered),
                 limits.max_file_size, limits.max_queue)
        if pack is not None:
            try:  # the operator's default pack obeys the same rules; a failure is logged, not shown
                policy.vet(pack)
                PACKS.get(pack)
            except PackError as err:
                log.warning("not serving the default pack %s: %s", pack, err)
                pack = None
    else:
        policy = PackPolicy()
    if pack is None:
        print(f"No model pack found (looked at --pack, $RLA_PACK and assets/pack). {HOW_TO_GET_A_PACK}\n"
              "Starting without one: the About tab and the pack loader work.")
    demo = build_demo(pack, examples_dir=args.examples, policy=policy)
    demo.queue(**limits.queue_kwargs()).launch(server_name=args.host, server_port=args.port, prevent_thread_lock=not block,
                                               enable_monitoring=False if args.public else None, **limits.launch_kwargs(), **launch_kwargs())
    return demo


def main(argv=None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # gradio's own startup requests
    import torch

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    start(args)
