"""What methods, metrics and interpolation paths are called on screen and in reports: one table each.

Method names are the keys of ``ModelPack.baselines`` plus ``"rla"``, ``"copy"`` and
``"rla_true_latent"``; evaluation rows add ``@steps`` and a mode (``"rla@10 mean8"``). The planning
benchmark adds its references ``"expert"`` and ``"random"``.
"""
from __future__ import annotations

from dataclasses import dataclass

METHOD_LABELS = {  # method → its full name (figures, plan captions)
    "rla": "RLA-WM", "regression": "Direct regression (DINO-WM style)", "token_flow": "Token-space flow (FM-WM)",
    "copy": "Copy start frame (floor)", "rla_true_latent": "RLA ceiling: true latent (sees the future)",
    "expert": "Scripted expert (ceiling)", "random": "Random plan (floor)",
}
METHOD_SHORT = {  # method → a name that fits a table cell or a filmstrip row
    "rla": "RLA-WM", "regression": "regression", "token_flow": "token flow", "copy": "copy (floor)",
    "rla_true_latent": "ceiling: true latent", "expert": "expert (ceiling)", "random": "random (floor)",
}


@dataclass(frozen=True)
class Metric:
    title: str  # a column header
    long: str  # what it measures, for menus and chart axes
    lower_is_better: bool

    @property
    def arrow(self) -> str:
        return "↓" if self.lower_is_better else "↑"


METRICS = {  # the evaluation's metrics, in the order tables show them (most telling first)
    "token_l1_moving": Metric("token L1 moving", "token L1 on moving patches", True),
    "gmsd_fg": Metric("GMSD fg", "GMSD on the foreground (blur- and speckle-sensitive)", True),
    "psnr_fg": Metric("PSNR fg", "PSNR on the foreground (dB)", False),
    "ssim_fg": Metric("SSIM fg", "SSIM on the foreground", False),
    "energy": Metric("energy", "energy score of the samples (moving tokens)", True),
    "token_l1": Metric("token L1", "token L1", True),
    "ssim": Metric("SSIM", "SSIM", False),
    "psnr": Metric("PSNR", "PSNR (dB)", False),
    "lpips": Metric("LPIPS", "LPIPS", True),
}
LOWER_IS_BETTER = {name: m.lower_is_better for name, m in METRICS.items()}

PATH_LABELS = {  # interpolation paths of rla.topology: the decoded noise → u line and its two nulls
    "rla": "RLA: noise → u, decoded", "token_line": "null: straight line z_t → z_{t+k}",
    "decoded_line": "null: straight line between the decoded endpoints",
}


def method_label(name: str) -> str:
    """``rla@10`` → ``RLA-WM, 10 steps``, ``rla@3 zero`` → ``RLA-WM, 3 steps, zero``, ``token_flow mean8`` →
    ``Token-space flow (FM-WM), mean8``; other names by :data:`METHOD_LABELS` (unknown ones as they are)."""
    head, _, mode = name.partition(" ")
    base, _, steps = head.partition("@")
    label = METHOD_LABELS.get(base, base)
    return label + (f", {steps} steps" if steps else "") + (f", {mode}" if mode else "")


def short_label(name: str) -> str:
    """``rla@10 mean8`` → ``RLA-WM @10 mean8``, ``token_flow zero`` → ``token flow zero``."""
    head, _, mode = name.partition(" ")
    base, _, steps = head.partition("@")
    return METHOD_SHORT.get(base, base) + (f" @{steps}" if steps else "") + (f" {mode}" if mode else "")
