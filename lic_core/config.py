"""Model configurations: one dataclass per network family holds every architectural choice.

* :class:`ModelConfig` — the LGEM codec (``LicModel``).  Defaults follow docs/methods.md §3.5,
  with widths below ELIC's so that the whole codec stays within the 8 M-parameter budget of the
  issue (ELIC's own widths give ~30 M);
* :class:`HificConfig` — the HiFiC baseline (``HificModel``, docs/methods.md §8.4).

The named configurations (``lic-lgem``, ``hific-small``, …) are registered in one place,
:mod:`lic_core.models.registry`; this module holds plain data only (no torch), so the registry
can be read without building a network.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

# CompressAI / QVRF λ list (docs/methods.md §1.2); the first six are the gain levels (§5.2).
DEFAULT_LAMBDAS = (0.0018, 0.0035, 0.0067, 0.0130, 0.025, 0.0483)


@dataclass
class ModelConfig:
    """Architecture of the LGEM learned codec (docs/methods.md §3, §5).

    Attributes
    ----------
    name: registry name ("lic-lgem", "lic-lgem-tiny", ...).
    N: width of the analysis/synthesis transforms.
    analysis_N: width of the analysis transform g_a alone when it differs from ``N`` (0: ``N``):
      an encoder wider than its decoder costs encode time only (Yang and Mandt, "Computationally-
      efficient neural image compression with shallow decoders", ICCV 2023, argue that the
      analysis side carries much of a codec's rate-distortion performance).
    M: latent channels of y (sum of ``groups``).
    hyper_N: channels of z; ``hyper_out``: channels of the hyper features Φ_h.
    groups: uneven channel groups, coded in this order (ELIC).
    ctx_max: cap on the width of each context feature (2·C_g, capped) to bound parameters.
    attn_dim / attn_heads / attn_window / intra_depth: the global Transformer contexts.
    res_blocks: residual bottleneck blocks per transform stage.
    lambdas: one λ per gain level (CompressAI convention λ·255²·MSE + bpp).
    """

    name: str = "lic-lgem"
    N: int = 128
    M: int = 320
    hyper_N: int = 96
    hyper_out: int = 192
    groups: tuple[int, ...] = (16, 16, 32, 64, 192)
    ctx_max: int = 128
    ep_hidden_max: int = 192
    attn_dim: int = 64
    attn_heads: int = 4
    attn_window: int = 8
    intra_depth: int = 2
    local_kernel: int = 5
    res_blocks: int = 2
    lambdas: tuple[float, ...] = DEFAULT_LAMBDAS
    preview: bool = False
    analysis_N: int = 0
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.groups = tuple(int(g) for g in self.groups)
        self.lambdas = tuple(float(v) for v in self.lambdas)
        if sum(self.groups) != self.M:
            raise ValueError(f"groups {self.groups} must sum to M={self.M}")
        if self.analysis_N < 0:
            raise ValueError(f"analysis_N = {self.analysis_N} must be 0 (= N) or a width")

    @property
    def levels(self) -> int:
        return len(self.lambdas)

    @property
    def g_a_width(self) -> int:
        """The analysis transform's width (``analysis_N`` or ``N``)."""
        return int(self.analysis_N or self.N)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        if not self.analysis_N:  # as before the field existed: the configs (and the metadata
            d.pop("analysis_N")  # of files written with them) of every codec so far stay as is
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def tiny_config(name: str = "lic-lgem-tiny") -> ModelConfig:
    """A tiny configuration for tests (docs/methods.md §3.5: M=32, groups [4,4,8,16])."""
    return ModelConfig(name=name, N=16, M=32, hyper_N=16, hyper_out=32, groups=(4, 4, 8, 16),
                       ctx_max=16, ep_hidden_max=32, attn_dim=16, attn_heads=2, attn_window=4, intra_depth=1,
                       res_blocks=1)


@dataclass
class HificConfig:
    """Sizes and rate targets of a HiFiC model (docs/methods.md §8.1, §8.4).

    ``widths`` are the five E/G widths (conv7×7 output, then the four stride-2 stages); G mirrors
    them.  ``n_res`` residual blocks run at ``widths[-1]``.  ``targets`` are the per-level rate
    targets r_t (bpp) of the rate-constraint loss (§8.2); there is one gain level per target.
    ``disc_widths`` are the discriminator's four stride-2 conv widths (§8.1, halved for small).
    The defaults are ``hific-small`` (:mod:`lic_core.models.registry` says why these sizes).
    """

    name: str = "hific-small"
    widths: tuple[int, ...] = (24, 48, 96, 192, 192)
    C_y: int = 128
    n_res: int = 5
    N: int = 128  # hyper-latent channels
    hyper_width: int = 128
    targets: tuple[float, ...] = (0.14, 0.30, 0.45)
    disc_cond: int = 12
    disc_widths: tuple[int, ...] = (32, 64, 128, 256)

    @property
    def levels(self) -> int:
        return len(self.targets)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict) -> "HificConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k in names}
        return cls(**kw)
