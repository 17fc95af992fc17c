"""Model configuration: one dataclass holds every architectural choice of a learned codec.

Defaults follow docs/methods.md §3.5, with widths below ELIC's so that the whole codec stays
within the 8 M-parameter budget of the issue (ELIC's own widths give ~30 M).
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
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.groups = tuple(int(g) for g in self.groups)
        self.lambdas = tuple(float(v) for v in self.lambdas)
        if sum(self.groups) != self.M:
            raise ValueError(f"groups {self.groups} must sum to M={self.M}")

    @property
    def levels(self) -> int:
        return len(self.lambdas)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def tiny_config(name: str = "lic-lgem-tiny") -> ModelConfig:
    """A tiny configuration for tests (docs/methods.md §3.5: M=32, groups [4,4,8,16])."""
    return ModelConfig(name=name, N=16, M=32, hyper_N=16, hyper_out=32, groups=(4, 4, 8, 16),
                       ctx_max=16, ep_hidden_max=32, attn_dim=16, attn_heads=2, attn_window=4, intra_depth=1,
                       res_blocks=1)
