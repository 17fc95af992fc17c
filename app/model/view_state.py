"""View state shared by every pane: zoom/pan, compare and difference modes, overlays (Qt-free)."""
from __future__ import annotations

from .events import EventedModel

COMPARE_MODES = ("split", "side", "flicker")
DIFF_MODES = ("off", "a-b", "a-orig", "b-orig")
OVERLAYS = ("none", "bits_y", "bits_z")
COLORMAPS = ("viridis", "inferno", "magma", "plasma", "cividis", "turbo")
RD_METRICS = ("psnr", "ms_ssim", "lpips")


class ViewState(EventedModel):
    """Everything about *how* the images are shown (saved with the session).

    Attributes
    ----------
    view_rect : list[float] | None
        Visible image rectangle ``[x0, y0, x1, y1]`` in image pixels; None = fit.  All panes
        share it (linked zoom/pan).
    compare_mode : str
        ``split`` (Squoosh divider), ``side`` (panes side by side) or ``flicker`` (A/B in place).
    split_pos : float
        Divider position in [0, 1] of the image width (split mode).
    flicker_index : int
        Which pane flicker mode shows now.
    diff_mode : str
        ``off``, ``a-b`` (|A−B|), ``a-orig`` (|A−original|), ``b-orig``.
    diff_gain : float
        Amplification of the difference image.
    colormap : str
        Colormap for difference and heatmaps (perceptually uniform, readable on dark and light).
    n_panes : int
        2 or 3 compare panes.
    overlay, overlay_opacity, overlay_pane : heatmap drawn over the image (learned encodings).
    channel : int
        Latent channel shown by the channel browser (index into the bits-sorted order).
    latent_quantity : str
        ``y_hat``, ``means``, ``scales``, ``bits_y`` or ``residual``.
    rd_metric : str
        Y axis of the RD plot.
    bd_pair : list[str]
        Reference and test curve names for the live BD-rate.
    compute_lpips, compute_ms_ssim : bool
        Score results with LPIPS (off by default: slow) and MS-SSIM (on; a big image's
        results get it after they show, app/model/display.py).
    artifact_rect : list[float] | None
        ``[x0, y0, x1, y1]`` of the artifact the finder points at (outlined in every pane).
    """

    _defaults = {
        "view_rect": None,
        "compare_mode": "split",
        "split_pos": 0.5,
        "split_pos2": 0.75,
        "flicker_index": 0,
        "diff_mode": "off",
        "diff_gain": 4.0,
        "colormap": "viridis",
        "n_panes": 2,
        "overlay": "none",
        "overlay_opacity": 0.5,
        "overlay_pane": 0,
        "channel": 0,
        "latent_quantity": "y_hat",
        "rd_metric": "psnr",
        "bd_pair": [],
        "compute_lpips": False,
        "compute_ms_ssim": True,
        "artifact_rect": None,
    }

    def cycle_diff_mode(self) -> str:
        """Switch to the next of :data:`DIFF_MODES` (off → |A−B| → |A−original| → |B−original|
        → off) and return it."""
        self.diff_mode = DIFF_MODES[(DIFF_MODES.index(self.diff_mode) + 1) % len(DIFF_MODES)]
        return self.diff_mode

    def validate(self) -> None:
        """Clamp restored values to what the views can show (sessions may be hand-edited)."""
        if self.compare_mode not in COMPARE_MODES:
            self.compare_mode = "split"
        if self.diff_mode not in DIFF_MODES:
            self.diff_mode = "off"
        if self.overlay not in OVERLAYS:
            self.overlay = "none"
        if self.colormap not in COLORMAPS:
            self.colormap = "viridis"
        if self.rd_metric not in RD_METRICS:
            self.rd_metric = "psnr"
        self.n_panes = 3 if self.n_panes == 3 else 2
        self.split_pos = min(1.0, max(0.0, float(self.split_pos)))
        self.split_pos2 = min(1.0, max(self.split_pos, float(self.split_pos2)))
        self.overlay_opacity = min(1.0, max(0.0, float(self.overlay_opacity)))
        self.diff_gain = min(64.0, max(1.0, float(self.diff_gain)))
