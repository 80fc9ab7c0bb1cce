"""Model cards: the ``README.md`` of a Hub repo, written from the files it describes.

    card = pack_card(ModelPack.load("assets/pack"), "USER/rla-explorer-pack")
    card = policy_card(entries, [load_result(f) for f in eval_files], "USER/rla-policies-pullcube", recordings)
    card_problems(card, POLICY_TAGS, must_mention=[...])   # [] when the card is complete

Every number in a card is read from the pack (``pack.json``, ``results.json``) or from the policy
folders (``train.json`` / ``wmrl.json``, the evaluation files through :mod:`rla.policy.results`),
never typed by hand: change a file and the card changes. What the paper and the authors' release
are comes from ``../shared/reference`` (the constants below), nothing beyond it.
"""
from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

LICENSE = "mit"
PAPER = {"title": "Learning Visual Feature-Based World Models via Residual Latent Action",
         "authors": "Zhang, Xu, Tao, Wang, She, Boularias", "year": 2026, "arxiv": "2605.07079"}
OFFICIAL_CODE = "https://github.com/mlzxy/rla-wm"
OFFICIAL_WEIGHTS = "https://huggingface.co/xyzhang368/RLA-WM"
PROJECT_PAGE = "https://mlzxy.github.io/rla-wm"
# where the authors' release holds what our policies re-implement (official-implementation.md)
OFFICIAL_POLICY = "`policies/policy/vla_bc_policy_rla_unified.py` (configs `fs_bc.yaml` / `fs_bc_rla.yaml`)"
OFFICIAL_WMRL = "`wmrl/` (`wmrl/world_model_env.py`: the imagined env)"
PACK_TAGS = ["world-model", "latent-action", "residual-latent-action", "flow-matching", "robotics", "maniskill", "rla-explorer"]
POLICY_TAGS = ["robotics", "maniskill", "behavior-cloning", "imitation-learning", "world-action-model", "latent-action",
               "residual-latent-action", "rla-explorer"]
SECTIONS = ["## What it is", "## Contents", "## Paper and official code", "## Training data", "## Training budget",
            "## Evaluation", "## Licence", "## Load it"]
ROLES = {"autoencoder": "RLA autoencoder: residual of two frames' tokens → RLA, and (tokens, RLA) → future tokens",
         "dynamics": "flow-matching dynamics: (tokens, action chunk) → RLA, decoded by the autoencoder",
         "regression": "baseline: direct regression of the future tokens",
         "token_flow": "baseline: flow matching directly on the future tokens",
         "rgb_decoder": "feature → RGB decoder (the encoder is not invertible)"}
PLACEHOLDERS = ("More Information Needed", "[More Information", "TODO")


# ---- shared pieces ----------------------------------------------------------------------------------

def front_matter(tags: list[str]) -> str:
    lines = "\n".join(f"  - {t}" for t in tags)
    return f"---\nlibrary_name: pytorch\npipeline_tag: robotics\nlicense: {LICENSE}\ntags:\n{lines}\n---\n"


def paper_lines(ours: str) -> str:
    """The paper, the authors' code, weights and page; ``ours`` says how this repo relates to them."""
    return (f"- Paper: *{PAPER['title']}*, {PAPER['authors']} ({PAPER['year']}), "
            f"[arXiv {PAPER['arxiv']}](https://arxiv.org/abs/{PAPER['arxiv']}).\n"
            f"- The authors' official implementation: [{OFFICIAL_CODE.removeprefix('https://')}]({OFFICIAL_CODE}); their weights "
            f"and data: [{OFFICIAL_WEIGHTS.removeprefix('https://huggingface.co/')}]({OFFICIAL_WEIGHTS}); project page: "
            f"[{PROJECT_PAGE.removeprefix('https://')}]({PROJECT_PAGE}).\n- {ours}")


LICENCE_TEXT = ("These weights and the RLA Explorer code: MIT. The paper and the authors' code and weights are theirs,\n"
                "under their own terms; a timm encoder's weights keep their own licence.")


def card_problems(card: str, tags: list[str], must_mention: list[str] = ()) -> list[str]:
    """What is missing or unfilled in ``card``: front matter, tags, sections, placeholders, required mentions."""
    from huggingface_hub import ModelCard

    found = []
    meta = ModelCard(card).data.to_dict()  # parses the YAML front matter locally (no Hub validation call)
    for key, want in (("license", LICENSE), ("library_name", "pytorch")):
        if meta.get(key) != want:
            found.append(f"model card: front matter {key} is {meta.get(key)!r}, expected {want!r}")
    if not set(tags) <= set(meta.get("tags") or []):
        found.append(f"model card: tags {meta.get('tags')} lack {sorted(set(tags) - set(meta.get('tags') or []))}")
    for section in SECTIONS:
        if f"\n{section}\n" not in card:
            found.append(f"model card: section '{section}' is missing")
    body = re.sub(r"```.*?```", "", card, flags=re.S)  # code blocks may use braces
    for needle in PLACEHOLDERS:
        if needle in card:
            found.append(f"model card: contains placeholder text ({needle!r})")
    if "{" in body:
        found.append("model card: contains an unfilled template field ('{')")
    for needle in (OFFICIAL_CODE, f"arxiv.org/abs/{PAPER['arxiv']}", *must_mention):
        if needle not in card:
            found.append(f"model card: does not mention {needle}")
    return found


def _pct(x) -> str:
    return "—" if x is None or not np.isfinite(x) else f"{100 * x:.1f}"


def _span(values) -> str:
    values = sorted(values)
    if not values:
        return "—"
    contiguous = values == list(range(values[0], values[0] + len(values)))
    if len(values) == 1:
        return str(values[0])
    return f"{values[0]}–{values[-1]}" if contiguous else f"{len(values)} seeds in {values[0]}–{values[-1]}"


# ---- the model pack ---------------------------------------------------------------------------------

def _params(model) -> str:
    return f"{sum(p.numel() for p in model.parameters()):,}"


def _encoder_line(info) -> str:
    enc = info.encoder
    if enc.kind == "timm":
        revision = f" @ {enc.revision}" if enc.revision else ""
        return f"timm `{enc.name}` at {enc.image_size} px (frozen; referenced by name{revision}, not stored here)"
    return f"pixel patches ({enc.image_size} px, {enc.patch_size} px patches; exactly invertible, no weights)"


def _pack_data_section(pack) -> str:
    info, splits = pack.info, pack.splits
    lines = [f"ManiSkill 3 tasks: {', '.join(f'`{t}`' for t in info.tasks) or 'not recorded'}; episodes recorded with "
             "`python -m training.collect` (scripted experts, CPU renderer)."]
    if splits is None:
        lines.append("\nThis pack records no train/val/test split (it was built before splits were recorded), so the "
                     "episodes it was trained on are not listed.")
        return "\n".join(lines)
    summary = splits.summary()
    tasks = sorted({t for counts in summary.values() for t in counts})
    lines += ["", "| split | episodes | " + " | ".join(tasks) + " |", "|---|---|" + "---|" * len(tasks)]
    for name, counts in summary.items():
        lines.append(f"| {name} | {sum(counts.values())} | " + " | ".join(str(counts.get(t, 0)) for t in tasks) + " |")
    lines.append("\nThe models were trained on `train`; every choice (gates, ablations) read `val`; the evaluation "
                 "below reads only `test`. Episode ids are in `pack.json` (`splits`).")
    if splits.recordings:
        lines += ["", "| recording | split | task | episodes | reset seeds (first–last) | action noise |", "|---|---|---|---|---|---|"]
        for r in splits.recordings:
            seeds = r.get("seeds")
            if isinstance(seeds, (list, tuple)) and len(seeds) == 2:
                seeds = f"{seeds[0]}–{seeds[1]}"
            lines.append(f"| `{r.get('file', '—')}` | {r.get('split', r.get('purpose', '—'))} | {r.get('task', '—')} | "
                         f"{r.get('episodes', '—')} | {seeds if seeds is not None else '—'} | {r.get('noise', '—')} |")
    return "\n".join(lines)


def _pack_budget_section(pack, folders: list[str]) -> str:
    info = pack.info
    models = info.manifest.get("models", {})
    if not models:
        return "This pack records no training manifest (steps, CPU time), so its budget is not known."
    lines = []
    if info.preset:
        lines.append(f"Built by `python -m training.pipeline` with the `{info.preset.get('model', '?')}` model preset"
                     f" (training seed {info.manifest.get('seed', '?')}).\n")
    lines += ["| model | optimizer steps | CPU-seconds | batch | EMA | sha256 |", "|---|---|---|---|---|---|"]
    for name, m in models.items():
        cpu = m.get("cpu_seconds")
        label = name if name in folders else f"{name} (evaluated below; not in this repository)"
        lines.append(f"| {label} | {m.get('steps', 0):,} | {f'{cpu:,.0f}' if cpu is not None else '—'} | {m.get('batch_size', '—')} | "
                     f"{m.get('ema', 0.0)} | `{str(m.get('sha256', ''))[:12]}` |")
    gate = info.manifest.get("autoencoder_gate")
    if gate:
        ratios = ", ".join(f"{k.removesuffix('_vs_copy_moving').upper()} {v:.2f} of copying the frame"
                           for k, v in gate.items() if k.endswith("_vs_copy_moving") and isinstance(v, (int, float)))
        lines.append(f"\nAutoencoder gate on `{gate.get('split', 'val')}`: {'passed' if gate.get('passed') else 'not passed'} "
                     f"(moving-token reconstruction error {ratios}; at most {gate.get('ratio_required', '?')} required).")
    return "\n".join(lines)


def _pack_evaluation_section(pack) -> str:
    results = pack.results.get("evaluation", pack.results) if pack.results else {}
    if not results.get("methods"):
        return ("**Not evaluated.** This pack has no `results.json` with evaluation results, so no quality claim is "
                "made for it. Run `python -m training.evaluate --pack PACK --data DATA --out results.json`.")
    if not any(entry.get("ci") for entry in results["methods"].values()):
        return ("**No confidence intervals.** The pack's `results.json` holds an evaluation from before intervals were "
                "computed, so no table is shown here; rerun `python -m training.evaluate` on the test split.")
    from rla.labels import METRICS
    from rla.report import DIGITS, comparison_table, markdown_table

    protocol = results.get("protocol", {})
    scope = (f"{len(protocol['episode_ids'])} held-out `{protocol.get('split', 'test')}` episodes"
             if protocol.get("episode_ids") else "held-out episodes")
    windows = f", {protocol['windows']} windows" if protocol.get("windows") else ""
    reported = protocol.get("reported") or results.get("reported")
    seeds = sorted({s for e in results["methods"].values() for s in e.get("training_seeds", [])})
    own = pack.info.manifest.get("seed")
    seed_note = ""
    if len(seeds) > 1:
        seed_note = (f" Rows marked with several seeds pool packs trained with seeds {', '.join(map(str, seeds))} (the intervals "
                     "resample seeds, then episodes)" + (f"; this repository holds the seed-{own} pack." if own is not None else "."))
    shown = [m for m in DIGITS if any((e.get("ci") or {}).get(m) for e in results["methods"].values())]
    legend = "; ".join(f"{METRICS[m].title}: {METRICS[m].long}" for m in shown)
    parts = [f"Final frame after {protocol.get('num_chunks', '?')} chunks of {protocol.get('chunk', '?')} actions on {scope}{windows}; "
             f"means with 95 % confidence intervals.{seed_note}",
             f"Command: `{protocol.get('command', 'python -m training.evaluate')}`",
             markdown_table(results, pack.info.manifest, reported),
             f"Columns: {legend}. Rows: `@n` integrates the flow in n Euler steps; `zero` starts it from zero noise; "
             + (f"`mean{protocol['num_samples']}` averages {protocol['num_samples']} samples; " if protocol.get("num_samples") else "")
             + "`copy` repeats the first frame (a floor); `rla_true_latent` decodes the true RLA (a ceiling)."]
    if results.get("comparisons"):
        parts += ["Paired differences (the same episodes and seeds for both methods):", comparison_table(results)]
    return "\n\n".join(parts)


def pack_card(pack, repo_id: str, files=()) -> str:
    """The README.md of a model-pack repo, from the loaded ``pack`` (:class:`rla.pack.ModelPack`) and the repo's ``files``."""
    info = pack.info
    contents = ["| folder | model | parameters | role |", "|---|---|---|---|"]
    parts = {"autoencoder": pack.autoencoder, "dynamics": pack.dynamics, **pack.baselines}
    if pack.rgb_decoder is not None:
        parts["rgb_decoder"] = pack.rgb_decoder
    for name, model in parts.items():
        contents.append(f"| `{name}/` | `{type(model).__name__}` | {_params(model)} | {ROLES.get(name, '')} |")
    ae = pack.autoencoder.config
    extras = []
    if pack.latent_map is not None:
        extras.append(f"`latent_map.npz`: a 2-D map of {len(pack.latent_map.coords):,} training RLAs (for the app)")
    if "probes.npz" in {str(f) for f in files}:
        extras.append("`probes.npz`: linear probes from the RLA to the action chunk, the gripper's and the object's "
                      "displacement (`python -m training.probe`; the app's *Latent actions* tab)")
    if pack.results:
        extras.append("`results.json`: the evaluation below")
    return f"""{front_matter(PACK_TAGS)}
# {repo_id}

## What it is

An **RLA-WM** (Residual Latent Action world model) pack trained with RLA Explorer, our own
implementation of the paper below (not the authors' weights). {info.description}

Given the feature tokens `z_t` of a frame and a chunk of actions, it predicts the tokens of the frame
after the chunk. The RLA autoencoder compresses the residual between two frames' tokens into a small
latent, the RLA ({ae.num_queries} × {ae.latent_dim} numbers here); the dynamics model samples that RLA by flow
matching, conditioned on `z_t` and the actions, and the autoencoder's decoder turns `(z_t, RLA)` into the
predicted tokens, which the encoder (or an RGB decoder) shows as an image.

## Contents

{chr(10).join(contents)}

- **Encoder**: {_encoder_line(info)}
- **Actions**: {info.action_dim}-D `{info.control_mode}` ({', '.join(info.action_names)}) \
in [{info.action_low}, {info.action_high}], chunks of {info.chunk} steps
{chr(10).join(f'- {e}' for e in extras)}

## Paper and official code

{paper_lines("This pack is smaller and trained on far less data than the paper's models; its numbers are not the paper's.")}

## Training data

{_pack_data_section(pack)}

## Training budget

{_pack_budget_section(pack, list(parts))}

## Evaluation

{_pack_evaluation_section(pack)}

## Licence

{LICENCE_TEXT}

## Load it

```python
from rla import ModelPack
pack = ModelPack.load("{repo_id}")
z = pack.encoder.encode(frame)                      # uint8 (H, W, 3)
z_next = pack.world_model.predict(z, actions)       # actions (1, {info.chunk}, {info.action_dim})
image = pack.to_images(z_next)
```

Or run the app on it: `python app.py --pack {repo_id}`.
"""


# ---- policies ---------------------------------------------------------------------------------------

@dataclass
class PolicyEntry:
    """One saved policy as the card sees it."""

    path: str  # its folder inside the repo, "<task>/<arm>/seed<k>"
    task: str
    arm: str
    seed: int
    model: str  # class name: "Policy" or "WMRLPolicy"
    parameters: int
    config: dict  # config.json
    info: dict  # train.json (behaviour cloning) or wmrl.json (WMRL)
    weights_sha256: str
    files: list = field(default_factory=list)  # the files of the folder in the repo


def _base_config(e: PolicyEntry) -> dict:
    return e.config.get("base", {}) if e.model == "WMRLPolicy" else e.config


def _arm_description(e: PolicyEntry, arms: set[str]) -> str:
    c = _base_config(e)
    if e.model == "WMRLPolicy":
        what = (f"WMRL: a frozen behaviour-cloning policy (sha256 `{str(e.info.get('policy_sha256', '?'))[:12]}`) plus a "
                f"zero-initialised residual action head (±{e.config.get('residual_scale')} · tanh, normalised units) and a value "
                f"head, trained with PPO inside the pack's world model ({e.info.get('iterations', '?')} iterations, "
                f"{e.info.get('envs', '?')} imagined envs)")
    elif c.get("rla_weight", 0) > 0:
        what = (f"World Action Model: behaviour cloning plus an RLA head (weight {c['rla_weight']} on L1 + MSE) that predicts "
                "the pack autoencoder's residual latent action of the coming frames on every episode, labelled or action-less; "
                "the RLA head is not used when acting")
        what += "" if c.get("state_dim") else "; no qpos input"
    else:
        twin = "wam" + e.arm[2:] if e.arm.startswith("bc") else None
        what = "behaviour cloning without an RLA head, trained on the labelled episodes only"
        if twin in arms:
            what += (f" (the baseline: the labelled rows of the very batches `{twin}` trained on; seed k of both shares "
                     "initialisation, labelled set and batch order)")
        if not c.get("state_dim"):
            what += "; no qpos input (the learned state token alone), so it can act on tokens from an imagined env"
    return what


def _network_line(c: dict) -> str:
    if c.get("trunk") == "resnet18":
        trunk = f"timm `resnet18` from scratch (GroupNorm) on {c.get('image_size')} px frames"
    else:
        enc = c.get("encoder") or {}
        source = (f"pixel patches, {enc.get('image_size')} px, {enc.get('patch_size')} px patches" if enc.get("kind") == "pixel_patch"
                  else f"timm `{enc.get('name')}` at {enc.get('image_size')} px" if enc else "the pack's encoder")
        trunk = f"the pack's {c.get('num_tokens')} × {c.get('token_dim')} patch tokens ({source}), projected"
    state = f"qpos ({c.get('state_dim')}-D) through an MLP onto a learned state token" if c.get("state_dim") else "a learned state token"
    return (f"{trunk}; {state}; {c.get('num_queries')} output queries; {c.get('depth')} attention blocks (width {c.get('width')}, "
            f"{c.get('heads')} heads); shared MLP {c.get('hidden')}; a chunk of {c.get('chunk')} actions "
            f"({c.get('action_dim')}-D in [{c.get('action_low')}, {c.get('action_high')}]), the first {c.get('execute')} executed")


def _labelled_seeds(ids: list[str], recordings: dict) -> str:
    seeds = []
    for eid in ids:
        stem, _, key = eid.rpartition("/")
        seed = recordings.get(stem, {}).get("seed_of", {}).get(key)
        if seed is None:
            return ""
        seeds.append(seed)
    return f" (reset seeds {_span(seeds)})" if seeds else ""


def _policy_data_section(entries: list[PolicyEntry], recordings: dict) -> str:
    lines = []
    stems = sorted({eid.rpartition("/")[0] for e in entries for eid in
                    e.info.get("data_split", {}).get("labelled_episodes", []) + e.info.get("data_split", {}).get("heldout_episodes", [])})
    data = sorted({d for e in entries for d in e.info.get("data", [])})
    lines.append("Expert episodes recorded in ManiSkill 3 with `python -m training.collect` (scripted experts, CPU renderer)"
                 + (f", read from {', '.join(f'`{d}`' for d in data)}" if data else "") + ":")
    lines += ["", "| recording | task | reset seeds | episodes | successful |", "|---|---|---|---|---|"]
    for stem in stems:
        r = recordings.get(stem)
        if r:
            lines.append(f"| `{stem}` | {r['task']} | {_span(r['seeds'])} | {len(r['seeds'])} | {r['successes']} |")
        else:
            lines.append(f"| `{stem}` | — | not read (the recording was not on the machine that wrote this card) | — | — |")
    lines += ["", "| arm | labelled fraction | labelled episodes | action-less episodes | held out (scores only) | "
              "what the arm trains on |", "|---|---|---|---|---|---|"]
    by_arm = defaultdict(list)
    for e in entries:
        by_arm[(e.task, e.arm)].append(e)
    for (task, arm), group in sorted(by_arm.items()):
        e = group[0]
        if e.model == "WMRLPolicy":
            recs = e.info.get("recordings", [])
            lines.append(f"| {arm} ({task}) | — | — | — | — | imagined episodes started from {len(recs)} successful recordings "
                         "(no real actions) |")
            continue
        split = e.info.get("data_split", {})
        labelled = split.get("labelled_episodes", [])
        same = all(g.info.get("data_split", {}).get("labelled_episodes") == labelled for g in group)
        rla = _base_config(e).get("rla_weight", 0) > 0
        use = ("labelled rows: actions + RLA head; action-less rows: RLA head only" if rla
               else "the labelled rows only (action-less episodes unused)")
        frac = e.info.get("labelled_fraction")
        lines.append(f"| {arm} ({task}) | {_pct(frac) + ' %' if frac is not None else '—'} | {len(labelled)}"
                     f"{_labelled_seeds(labelled, recordings)}{'' if same else ', differs by seed'} | "
                     f"{split.get('action_less_episodes', '—')} | {len(split.get('heldout_episodes', []))} | {use} |")
    hashes = sorted({e.info.get("pack_autoencoder_sha256") for e in entries if e.info.get("pack_autoencoder_sha256")})
    packs = sorted({e.info.get("pack") for e in entries if e.info.get("pack")})
    ks = sorted({e.info.get("data_split", {}).get("rla_k") for e in entries if e.info.get("data_split", {}).get("rla_k")})
    lines.append("")
    shares = sorted({e.info.get("data_split", {}).get("labelled_share") for e in entries} - {None})
    share = f"{' / '.join(_pct(x) for x in shares)} % labelled" if shares else "part labelled"
    lines.append("Labelled episodes are the first successful ones by reset seed; action-less episodes are loaded without "
                 f"actions or qpos. A WAM batch is {share}; a BC arm trains on the labelled rows alone. "
                 "RLA targets: the frozen pack autoencoder "
                 + (f"(pack `{'`, `'.join(packs)}`) " if packs else "")
                 + (f"on frames t and t + {', '.join(map(str, ks))}, " if ks else "")
                 + "standardised with the pack's dynamics statistics; the autoencoder that made them has sha256 "
                 + (", ".join(f"`{h}`" for h in hashes) if hashes else "— (not recorded)") + ".")
    return "\n".join(lines)


def _policy_budget_section(entries: list[PolicyEntry]) -> str:
    lines = ["| folder | optimizer steps / PPO iterations | batch | CPU-seconds | CPU-s per step | wall minutes | threads |",
             "|---|---|---|---|---|---|---|"]
    total = 0.0
    for e in entries:
        train = e.info.get("train", {})
        if e.model == "WMRLPolicy":
            steps, batch = f"{e.info.get('iterations', '—')} iterations", e.info.get("ppo", {}).get("batch_size", "—")
            cpu, per, minutes = e.info.get("cpu_seconds"), None, e.info.get("minutes")
        else:
            steps, batch = f"{train.get('steps', 0):,}", e.info.get("batch_size", "—")
            cpu, per, minutes = train.get("cpu_seconds"), e.info.get("cpu_seconds_per_step"), train.get("minutes")
        total += cpu or 0.0
        early = " (stopped by the time limit)" if e.info.get("stopped_by_time") else ""
        lines.append(f"| `{e.path}` | {steps}{early} | {batch} | {f'{cpu:,.0f}' if cpu is not None else '—'} | "
                     f"{f'{per:.3f}' if per is not None else '—'} | {f'{minutes:.1f}' if minutes is not None else '—'} | "
                     f"{e.info.get('threads', '—')} |")
    lines.append(f"\n{total / 3600:.2f} CPU-hours in all (CPU time of the training process; wall minutes were measured on a "
                 "machine shared with other jobs). The saved weights are the training run's exponential moving average. "
                 "Each run, as recorded in its `train.json` / `wmrl.json`:")
    commands = [e.info["command"] for e in entries if e.info.get("command")]
    if commands:
        lines += ["", "```bash", *commands, "```"]
    return "\n".join(lines)


def _policy_evaluation_section(entries: list[PolicyEntry], results: list[dict]) -> str:
    if not results:
        return ("**Not evaluated.** No evaluation file (`eval_*.json`) came with these policies, so no success rate is "
                "claimed. Run `python -m training.evaluate_policy --policy FOLDER --task TASK --episodes 100 --seed 0 "
                "--out FOLDER/eval_test.json` (docs/wam.md).")
    from rla.policy.results import markdown, summarize

    summary = summarize(results)
    protocol = []
    for (task, split), runs in sorted(_by(results, lambda r: (r["task"], r.get("split", "test"))).items()):
        seeds = sorted({int(ep["reset_seed"]) for r in runs for ep in r["episodes"]})
        steps = sorted({r.get("max_steps") for r in runs if r.get("max_steps") is not None})
        protocol.append(f"`{task}` on `{split}`: reset seeds {_span(seeds)}, at most {', '.join(map(str, steps)) or '?'} steps")
    parts = ["In ManiSkill 3 (CPU simulator), one row per arm; success-once (the task's success flag at any step); every arm "
             f"runs on the same reset seeds ({'; '.join(protocol)}), none of which chose anything. Success in % with 95 % "
             "confidence intervals from a hierarchical bootstrap (training seeds, then reset seeds), and WAM − BC paired by "
             "training seed and reset seed, computed by `rla.policy.results.summarize` from the `eval_*.json` files in this "
             "repository (`python -m training.evaluate_policy --summarize FILES`). `expert` is the scripted expert, which sees "
             "the true state; `zero` sends zero actions.",
             markdown(summary).rstrip()]
    scored = [e for e in entries if e.info.get("heldout_scores")]
    if scored:
        rows = ["| folder | held-out action MSE | RLA head R² on held-out frames |", "|---|---|---|"]
        for e in scored:
            h = e.info["heldout_scores"]
            r2 = h.get("heldout_rla_r2")
            mse = h.get("heldout_action_mse")
            rows.append(f"| `{e.path}` | {f'{mse:.4f}' if mse is not None else '—'} | {f'{r2:.3f}' if r2 is not None else '— (no RLA head)'} |")
        parts += ["On the held-out training episodes (from `train.json`; R² against predicting their mean, below 0.3 the "
                  "head learned little):", "\n".join(rows)]
    commands = []
    for r in sorted(results, key=lambda r: (r["task"], r["arm"], r.get("train_seed") is None, r.get("train_seed") or 0)):
        folder = next((e.path for e in entries if (e.task, e.arm, e.seed) == (r["task"], r["arm"], r.get("train_seed"))), None)
        policy = folder or r["arm"]
        out = r.get("repo_file", f"{folder or r['task'] + '/' + r['arm']}/eval_{r.get('split', 'test')}.json")
        commands.append(f"python -m training.evaluate_policy --policy {policy} --task {r['task']} --episodes {len(r['episodes'])} "
                        f"--seed {r.get('seed_offset', 0)} --split {r.get('split', 'test')} --out {out}")
    parts += ["Commands (paths inside this repository):", "```bash\n" + "\n".join(commands) + "\n```"]
    return "\n\n".join(parts)


def _by(items, key) -> dict:
    out = defaultdict(list)
    for item in items:
        out[key(item)].append(item)
    return out


def policy_card(entries: list[PolicyEntry], results: list[dict], repo_id: str, recordings: dict | None = None) -> str:
    """The README.md of a policy repo.

    ``entries``: the saved policies; ``results``: every evaluation file (``rla.policy.results.load_result``),
    the reference rows (expert, zero) included; ``recordings``: per recording stem (``PullCube_s30000_n200``),
    ``{"task", "seeds": [reset seeds], "successes", "seed_of": {traj key: reset seed}, "robot",
    "control_mode"}`` where the
    recordings were readable, so the card can name reset seeds. Each result may carry ``repo_file``,
    its path inside the repo (for the commands and the reference rows).
    """
    recordings = recordings or {}
    tasks = sorted({e.task for e in entries} | {r["task"] for r in results})
    arms = {e.arm for e in entries}
    by_arm = _by(entries, lambda e: e.arm)
    arm_lines = [f"- **{arm}** ({len(group)} training seed{'s' if len(group) != 1 else ''}: "
                 f"{', '.join(str(g.seed) for g in group)}): {_arm_description(group[0], arms)}."
                 for arm, group in sorted(by_arm.items())]
    networks = sorted({_network_line(_base_config(e)) for e in entries})
    controls = sorted({f"{_base_config(e).get('action_dim')}-D" for e in entries})
    contents = ["| folder | model | parameters | trunk | qpos input | RLA head | weights sha256 |", "|---|---|---|---|---|---|---|"]
    for e in entries:
        c = _base_config(e)
        contents.append(f"| `{e.path}/` | `{e.model}` | {e.parameters:,} | {c.get('trunk', '—')} | "
                        f"{'yes' if c.get('state_dim') else 'no'} | {'weight ' + str(c['rla_weight']) if c.get('rla_weight') else 'no'} | "
                        f"`{e.weights_sha256[:12]}` |")
    references = sorted({f"`{r['repo_file']}`" for r in results if r.get("train_seed") is None and r.get("repo_file")})
    example = next((e for e in entries if _base_config(e).get("rla_weight")), entries[0] if entries else None)
    example_path, example_task = (example.path, example.task) if example else ("TASK/ARM/seed0", "TASK")
    robots = sorted({r["robot"] for r in recordings.values() if r.get("robot")})
    modes = sorted({r["control_mode"] for r in recordings.values() if r.get("control_mode")})
    action_space = ", ".join(controls) + (f" `{'`, `'.join(modes)}`" if modes else "") + " actions" + (
        f", {', '.join(robots)} arm" if robots else "")
    wmrl = any(e.model == "WMRLPolicy" for e in entries)
    tags = POLICY_TAGS + (["reinforcement-learning"] if wmrl else [])
    ours = ("These policies re-implement the authors' World Action Model policy, "
            f"{OFFICIAL_POLICY}" + (f", and WMRL, {OFFICIAL_WMRL}" if wmrl else "")
            + ", scaled down for a CPU: other robots, DINOv3 features, far more episodes and a GPU in the paper, so its "
            "Table 2 is not comparable number for number.")
    return f"""{front_matter(tags)}
# {repo_id}

## What it is

Policies for ManiSkill 3 {', '.join(f'`{t}`' for t in tasks)} ({action_space})
trained with RLA Explorer, our implementation of the paper's World Action Model (not the authors' weights).
A few **labelled** episodes carry actions; the World Action Model adds a head that predicts the residual
latent action (RLA) of the coming frames, so it also learns from the many **action-less** episodes.
Each folder `<task>/<arm>/seed<k>/` is one policy: `config.json` + `model.safetensors`, its `train.json`
(settings, data split, budget, held-out scores) and its evaluation files (`eval_<split>.json`, one row per episode).

{chr(10).join(arm_lines)}

Network: {'; or '.join(networks)}.

## Contents

{chr(10).join(contents)}
{f'{chr(10)}Reference rows (evaluation files only): {", ".join(references)}.{chr(10)}' if references else ''}
## Paper and official code

{paper_lines(ours)}

## Training data

{_policy_data_section(entries, recordings)}

## Training budget

{_policy_budget_section(entries)}

## Evaluation

{_policy_evaluation_section(entries, results)}

## Licence

{LICENCE_TEXT}

## Load it

```python
from huggingface_hub import snapshot_download
from rla.wmrl import load_any_policy          # RLA Explorer (pip install -e . in its repository)

root = snapshot_download("{repo_id}", allow_patterns=["{example_path}/*"])
policy = load_any_policy(f"{{root}}/{example_path}")
policy.reset()                                 # at the start of every episode
action = policy.select_action({{"image": frame, "qpos": qpos}})   # frame uint8 (H, W, 3); qpos only if it has a qpos input
```

Or score it in the simulator:
`python -m training.evaluate_policy --policy {example_path} --task {example_task} --episodes 100 --seed 0 --out eval_test.json`.
"""
