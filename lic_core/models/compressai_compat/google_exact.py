"""The exact path of three CompressAI architectures (issue 25; docs/bitstream.md, "Reproducible
decoding"; docs/compressai.md): a file decodes to the same picture on every machine.

* ``bmshj2018-hyperprior`` — Ballé et al. 2018, "Variational image compression with a scale
  hyperprior": ẑ → h_s → σ → scale index; y coded as round(y).
* ``mbt2018-mean`` — Minnen et al. 2018, "Joint autoregressive and hierarchical priors for
  learned image compression", mean-scale hyperprior: h_s gives σ and μ; y coded as round(y − μ).
* ``mbt2018`` — the same paper's full model: the masked 5×5 context over the decoded ŷ and the
  three 1×1 ``entropy_parameters`` layers give σ and μ of every position.

Everything the decoder reproduces — z's tables, ẑ, h_s, the context and entropy parameters, σ →
scale index, μ, ŷ = symbol + μ and the picture through g_s with IGDN — is computed on the exact
path from the float model's weights, quantized once when the engine is built
(:mod:`.exact_layers`, :mod:`.exact_entropy`); the encoder runs the same code with CompressAI's
float g_a and h_a in front (their results are carried by the file as symbols), so it quantizes
y − μ with the μ the decoder will compute.  Nothing is retrained.

The symbols are CompressAI's (``round(z − median)``, ``round(y − μ)``); where the arithmetic
differs from CompressAI's float32 is only in the last bits of σ, μ and the picture (measured:
``benchmarks/byom_exact.py``).

mbt2018's positions are coded along anti-diagonal wavefronts ``t = c + 3r`` (raster order
inside one): the type-A 5×5 mask reads rows r−2, r−1 at columns c−2…c+2 and row r at c−2, c−1,
all on earlier wavefronts, so each position is decoded after its whole context — the values are
those of raster order, bit for bit (exact sums do not depend on how positions are batched) —
while a wavefront's positions share one GEMM: about h + 3w steps instead of h·w.
"""
from __future__ import annotations

from typing import Optional

import torch

from ...exact.cache import cached
from ...exact.fixed import ExactLinear, picture_from_real, snap, to_grid
from ...exact.nets import DEFAULT_CONFIG, ExactConfig
from .base import Coded, CompatModel
from .exact_entropy import ExactBottleneck, ExactGaussian
from .exact_layers import ExactStack
from .google import CONTEXT_KERNEL

#: the architectures with an exact path
EXACT_ARCHITECTURES = ("bmshj2018-hyperprior", "mbt2018-mean", "mbt2018")


def has_exact_path(arch: str) -> bool:
    return arch in EXACT_ARCHITECTURES


class ExactScaleHyperprior:
    """``bmshj2018-hyperprior`` on the exact path (see the module docstring)."""

    arch = "bmshj2018-hyperprior"

    def __init__(self, model: CompatModel, cfg: ExactConfig = DEFAULT_CONFIG) -> None:
        if model.arch != self.arch:
            raise ValueError(f"{type(self).__name__} needs a {self.arch} model, not {model.arch}")
        self.model = model  # the float g_a and h_a of the encoder
        self.cfg, self.grid = cfg, cfg.grid
        self.M = model.M
        self.z = ExactBottleneck(model.entropy_bottleneck)
        self.y = ExactGaussian(model.gaussian_conditional)
        self.h_s = ExactStack(model.h_s, cfg, "h_s")
        self.g_s = ExactStack(model.g_s, cfg, "g_s", final_accumulator=True)

    def linears(self) -> list[ExactLinear]:
        return self.h_s.linears() + self.g_s.linears()

    # -------------------------------------------------------------------------- coding
    def _hyper_hw(self, padded_hw: tuple[int, int]) -> tuple[int, int]:
        return self.model._hyper_hw(padded_hw)

    def _code_z(self, coder, y: Optional[torch.Tensor], padded_hw) -> torch.Tensor:
        zh, zw = self._hyper_hw(padded_hw)
        z = None
        if y is not None:
            with torch.no_grad():
                z = self.model.h_a(self.model._hyper_input(y))
        return self.z.code(coder, "z", z, (1, self.z.channels, zh, zw))

    def hyper(self, z_hat: torch.Tensor) -> torch.Tensor:
        """h_s(ẑ) as real values on the grid (float64): ẑ rounded onto the grid (its median's
        bits below 2^−F dropped), then the exact stack."""
        return self.h_s(to_grid(z_hat, self.grid)) * self.grid.step

    def _analysis(self, x: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
        if x is None:
            return None
        with torch.no_grad():
            return self.model.g_a(x)

    def code(self, coder, x: Optional[torch.Tensor], padded_hw: tuple[int, int]) -> Coded:
        """Encode the padded picture ``x`` (float, CompressAI's g_a/h_a) or decode (x None)
        through ``coder`` (a :class:`~lic_core.entropy_coder.tables.TableEncoder`/``Decoder``
        pair routed by label); ŷ, ẑ, μ, σ are float64."""
        y = self._analysis(x)
        z_hat = self._code_z(coder, y, padded_hw)
        sigma = self.hyper(z_hat)
        y_hat = self.y.code(coder, "y", y, sigma)
        return Coded(y_hat, z_hat, None, sigma, groups=[self.M])

    # ------------------------------------------------------------------------ picture
    @torch.no_grad()
    def picture(self, y_hat: torch.Tensor) -> torch.Tensor:
        """g_s(ŷ) as uint8 B×3×H×W: the exact final accumulator clamped to [0, 1], ×255,
        rounded half-even (CompressAI's ``x_hat.clamp(0, 1)`` then 8 bits)."""
        acc = self.g_s(to_grid(y_hat, self.grid))
        return picture_from_real(acc * self.grid.step)


class ExactMeanScaleHyperprior(ExactScaleHyperprior):
    """``mbt2018-mean`` on the exact path: h_s gives σ (first M channels) and μ (last M)."""

    arch = "mbt2018-mean"

    def code(self, coder, x: Optional[torch.Tensor], padded_hw: tuple[int, int]) -> Coded:
        y = self._analysis(x)
        z_hat = self._code_z(coder, y, padded_hw)
        sigma, mu = self.hyper(z_hat).chunk(2, 1)
        y_hat = self.y.code(coder, "y", y, sigma, mu)
        return Coded(y_hat, z_hat, mu, sigma, groups=[self.M])


class ExactJointAutoregressive(ExactMeanScaleHyperprior):
    """``mbt2018`` on the exact path: the masked 5×5 context and ``entropy_parameters``
    position by position, batched along wavefronts (see the module docstring)."""

    arch = "mbt2018"

    def __init__(self, model: CompatModel, cfg: ExactConfig = DEFAULT_CONFIG) -> None:
        super().__init__(model, cfg)
        k = CONTEXT_KERNEL
        ctx = model.context_prediction
        self.context = ExactLinear(ctx, self.grid, cfg.max_weight_bits, name="context",
                                   mask=ctx.mask.expand_as(ctx.weight))
        # the causal taps of the type-A mask: rows above the centre, then the left of its row
        mask = ctx.mask.detach().to(torch.float64)[0, 0]
        self.taps = [(dy, dx) for dy in range(k) for dx in range(k) if mask[dy, dx] != 0]
        w = self.context.weight  # 2M × M × k × k, quantized, masked
        # 2M × (M·taps): column m·T + t multiplies channel m at tap t
        self.ctx_matrix = torch.stack([w[:, :, dy, dx] for dy, dx in self.taps], dim=2) \
            .reshape(w.shape[0], -1).contiguous()
        self.ctx_bias = self.context.bias
        self.entropy_parameters = ExactStack(model.entropy_parameters, cfg, "entropy_parameters")

    def linears(self) -> list[ExactLinear]:
        return super().linears() + [self.context] + self.entropy_parameters.linears()

    def wavefronts(self, h: int, w: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(rows, cols) of the positions of each wavefront t = c + 3r, raster order inside."""
        out = []
        for t in range(3 * (h - 1) + w):
            rows = [r for r in range(h) if 0 <= t - 3 * r < w]
            out.append((torch.tensor(rows, dtype=torch.int64),
                        torch.tensor([t - 3 * r for r in rows], dtype=torch.int64)))
        return out

    def code(self, coder, x: Optional[torch.Tensor], padded_hw: tuple[int, int]) -> Coded:
        y = self._analysis(x)
        z_hat = self._code_z(coder, y, padded_hw)
        params = to_grid(self.hyper(z_hat), self.grid)  # 1 × 2M × h × w grid integers
        h, w = params.shape[-2:]
        M, k = self.M, CONTEXT_KERNEL
        p = k // 2
        g = self.grid
        # decoded ŷ on the grid, zero-padded: the context of a position reads only decoded ones
        y_pad = params.new_zeros((M, h + 2 * p, w + 2 * p))
        y_hat = params.new_zeros((1, M, h, w))
        mu_all = params.new_zeros((1, M, h, w))
        sigma_all = params.new_zeros((1, M, h, w))
        dy = torch.tensor([t[0] for t in self.taps], dtype=torch.int64)
        dx = torch.tensor([t[1] for t in self.taps], dtype=torch.int64)
        for rows, cols in self.wavefronts(h, w):
            n = rows.numel()
            # M × n × taps windows of the decoded ŷ (padded coordinates)
            win = y_pad[:, rows[:, None] + dy[None, :], cols[:, None] + dx[None, :]]
            X = win.permute(0, 2, 1).reshape(-1, n)  # (M·taps) × n
            ctx = snap(torch.addmm(self.ctx_bias[:, None], self.ctx_matrix, X), g, inplace=True)
            feats = torch.cat([params[0][:, rows, cols], ctx], dim=0)  # 4M × n
            gp = self.entropy_parameters(feats[None, :, :, None])[0, :, :, 0] * g.step
            sigma, mu = gp[:M], gp[M:]
            cur = None if y is None else y[0][:, rows, cols][None]
            yh = self.y.code(coder, "y", cur, sigma[None], mu[None])[0]  # M × n
            y_hat[0][:, rows, cols] = yh
            mu_all[0][:, rows, cols] = mu
            sigma_all[0][:, rows, cols] = sigma
            y_pad[:, rows + p, cols + p] = to_grid(yh, g)
        return Coded(y_hat, z_hat, mu_all, sigma_all, groups=[M])


_ENGINES = {c.arch: c for c in (ExactScaleHyperprior, ExactMeanScaleHyperprior,
                                ExactJointAutoregressive)}


def exact_engine(model: CompatModel, cfg: ExactConfig = DEFAULT_CONFIG):
    """The exact engine of a loaded float model, built once per weights (quantization happens
    here) and cached on the model (:func:`lic_core.exact.cache.cached`)."""
    cls = _ENGINES.get(model.arch)
    if cls is None:
        raise ValueError(f"{model.arch} has no exact path (exact: {', '.join(EXACT_ARCHITECTURES)})")
    return cached(model, f"exact:{cfg}", [model], lambda: cls(model, cfg))


__all__ = ["EXACT_ARCHITECTURES", "ExactJointAutoregressive", "ExactMeanScaleHyperprior",
           "ExactScaleHyperprior", "exact_engine", "has_exact_path"]
