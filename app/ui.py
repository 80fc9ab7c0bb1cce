"""The demo: a header with the model-pack loader, then one tab per concern.

``build_demo`` wires widgets to callbacks and holds no models: packs are loaded once per process
(:data:`app.packs.PACKS`) and each session keeps only its pack id in ``gr.State``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr

from app.actions import slider_updates
from app.episodes import EpisodeStore
from app.errors import guarded, user_error
from app.features import FeatureCache
from app.packs import HOW_TO_GET_A_PACK, PACKS, describe, pack_id
from rla import PackError

log = logging.getLogger("rla.app")

CSS = """
.pixelated img { image-rendering: pixelated; }
.fill img { object-fit: contain; width: 100%; height: 100%; }
.caption p { margin: 0.2em 0 0 0 !important; font-size: 0.92em; }
#header h1 { margin-bottom: 0.1em; }
#pack-summary { font-size: 0.92em; }
.gradio-container { max-width: 1400px !important; }
"""


def launch_kwargs() -> dict:
    """Theme, CSS and JavaScript: Gradio 6 takes them in ``launch()``, not ``gr.Blocks()``."""
    from app.tabs.latent_space import CLICK_JS
    from app.tabs.rollout import KEYS_JS

    # launch() runs one function on page load: call each tab's in turn
    js = "() => {\n" + "".join(f"  ({part.strip()})();\n" for part in (CLICK_JS, KEYS_JS)) + "}"
    return {"theme": theme(), "css": CSS, "js": js}


def theme() -> gr.themes.Base:
    # system fonts only: the app must not fetch anything from the internet
    return gr.themes.Soft(primary_hue="indigo", secondary_hue="green", font=["ui-sans-serif", "system-ui", "sans-serif"],
                          font_mono=["ui-monospace", "monospace"])


@dataclass
class Context:
    """What every tab needs; read-only once built."""

    episodes: EpisodeStore
    features: FeatureCache
    pack_state: gr.State  # the session's pack id (str) or None
    pair_state: gr.State  # the session's last encoded pair (app.state.Pair) or None
    default_info: object | None  # PackInfo of the default pack
    default_steps: int  # its default Euler steps
    on_load: list = field(default_factory=list)  # (fn, inputs, outputs) to run when a page opens


def _load_default(pack: str | None):
    if pack is None:
        return None, "**No model pack is loaded.** " + HOW_TO_GET_A_PACK
    try:
        loaded = PACKS.get(pack)
    except PackError as err:
        log.warning("could not load the default pack %s: %s", pack, err)
        return None, f"**Could not load the model pack** `{pack}`: {err}<br>{HOW_TO_GET_A_PACK}"
    return loaded, describe(loaded, pack)


def build_demo(pack: str | None = None, *, episodes: list | EpisodeStore | None = None, examples_dir: str | Path | None = None,
               cache_dir: str | Path | None = None, policy=None) -> gr.Blocks:
    """Build the RLA Explorer.

    Args:
        pack: the default pack (folder or Hub repo id); ``None`` starts without one (About works).
        episodes: example episodes to offer (a list or a store); default: loaded from ``examples_dir``.
        examples_dir: where recorded example episodes live (default ``assets/examples``).
        cache_dir: the feature cache folder (default ``$RLA_CACHE_DIR`` or ``cache/app-features``).
        policy: which packs the pack box loads (:class:`app.public.PackPolicy`; default: any, local mode).
    """
    from app.public import PackPolicy
    from app.tabs import about, evaluate, interpolation, latent, latent_space, plan, policies, rollout

    store = episodes if isinstance(episodes, EpisodeStore) else EpisodeStore(episodes) if episodes is not None \
        else EpisodeStore.from_folder(examples_dir) if examples_dir else EpisodeStore.from_folder()
    policy = policy or PackPolicy()
    key = pack_id(pack) if pack else None
    loaded, summary = _load_default(key)
    if loaded is None:
        key = None
    else:
        warm_up(loaded)
    # delete_cache: every hour, remove generated files (frames, GIFs) older than two hours
    with gr.Blocks(title="RLA Explorer", delete_cache=(3600, 7200), analytics_enabled=False) as demo:  # no calls home
        with gr.Row(elem_id="header"):
            gr.Markdown("# RLA Explorer\nResidual Latent Action world models: predict what a robot's camera will see, "
                        "in a compact latent-action space. Start in **World model**, or read **About** first.")
        pack_state = gr.State(key)
        with gr.Accordion("Model pack", open=loaded is None):
            with gr.Row():
                pack_box = gr.Textbox(value=policy.name_of(key), label="Pack folder or Hugging Face Hub repo id", scale=4,
                                      placeholder=", ".join(policy.offered) if policy.public else "assets/pack  or  user/rla-pack",
                                      elem_id="pack-box")
                load_btn = gr.Button("Load pack", scale=1, elem_id="load-pack-btn")
            pack_summary = gr.Markdown(summary, label="Pack", elem_id="pack-summary")
        ctx = Context(store, FeatureCache(cache_dir), pack_state, gr.State(None),
                      loaded.info if loaded else None, loaded.world_model.config.sample_steps if loaded else 10)
        with gr.Tabs(selected="world-model" if loaded else "about"):
            with gr.Tab("World model", id="world-model"):
                wm = rollout.build(ctx)
            with gr.Tab("Latent actions", id="latent-actions"):
                latent.build(ctx)
            with gr.Tab("Interpolation", id="interpolation"):
                interpolation.build(ctx)
            with gr.Tab("Latent space", id="latent-space") as space_tab:
                draw_map, map_inputs, map_outputs = latent_space.build(ctx)
            with gr.Tab("Plan", id="plan"):
                plan.build(ctx)
            with gr.Tab("Evaluate", id="evaluate"):
                evaluate.build(ctx)
            with gr.Tab("Policies", id="policies"):
                policies.build(ctx, live=not policy.public)
            with gr.Tab("About", id="about"):
                about.build(ctx)

        space_tab.select(draw_map, map_inputs, map_outputs, api_visibility="private")
        for fn, inputs, outputs in ctx.on_load:  # e.g. fit the time sliders to the default episodes
            demo.load(fn, inputs, outputs, api_visibility="private", show_progress="hidden")

        @guarded("load the model pack")
        def load_pack(pack):
            k = policy.resolve(pack)  # gr.Error for empty, malformed or (public mode) unoffered names
            try:
                p = PACKS.get(k)
            except PackError as err:
                raise user_error(str(err), "Could not load the pack") from err
            gr.Info(f"Loaded {pack}")
            return k, describe(p, k)

        def adapt_widgets(k):
            """After a pack loads: its action sliders and step count, and a cleared rollout."""
            p = PACKS.get(k)
            return (*slider_updates(p.info), gr.update(value=p.world_model.config.sample_steps),
                    *rollout.reset_outputs("New pack loaded: pick a start frame and press **Predict chunk**."))

        adapted = [*wm["sliders"], wm["steps"], *wm["outputs"]]
        for event, api in ((load_btn.click, dict(api_name="load_pack")), (pack_box.submit, dict(api_visibility="private"))):
            event(load_pack, [pack_box], [pack_state, pack_summary], **api).success(
                adapt_widgets, [pack_state], adapted, api_visibility="private")
    return demo


def warm_up(pack) -> None:
    """Run one tiny prediction so the first user does not pay for lazy initialisation."""
    import torch

    try:
        z = torch.zeros(1, pack.encoder.num_tokens, pack.encoder.dim)
        a = torch.zeros(1, pack.info.chunk, pack.info.action_dim)
        pack.to_images(pack.world_model.predict(z, a, steps=1))
    except Exception:  # noqa: BLE001 — warm-up is an optimisation only
        log.exception("warm-up failed")
