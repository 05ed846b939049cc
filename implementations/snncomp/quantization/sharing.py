r"""Mechanics of the non-uniform and constrained weight quantizers: k-means codebooks and ADMM.

**Weight sharing** [@han2016deep]: the non-zero weights of a layer are clustered into $k = 2^b$ values by
one-dimensional k-means, started from centroids spaced linearly between the smallest and the largest
weight (the initialisation Deep Compression found best). The layer then stores a $b$-bit index per
weight and the $k$ FP32 centroids. `Codebook` is the parametrization $\hat w_i = c_{j(i)}$ with trainable
centroids $c$: the gradient of a centroid is the sum of the gradients of the weights that share it,
the centroid fine-tuning of the paper. Zeros (pruned weights) stay zero and take no index of their own
in the dense count (the sparse formats of `metrics.sparse_bits` count them).

**ADMM quantization** [@leng2018extremely]: training is the constrained problem
$\min_W L(W)$ s.t. $W \in \mathcal{C} = \{\alpha q : q \in \{-Q, \dots, Q\}\}$ per layer, split with an
auxiliary $Z$ and a scaled dual $U$: the loss gets $\frac{\rho}{2}\|W - Z + U\|^2$ and, every few steps,
$Z \leftarrow \Pi_{\mathcal C}(W + U)$ and $U \leftarrow U + W - Z$. The projection alternates
$q = \mathrm{clamp}(\lfloor V/\alpha \rceil, -Q, Q)$ and $\alpha = \langle V, q\rangle / \langle q, q\rangle$
for a few iterations (the paper's iterative quantization); the paper's extragradient step for the $W$
subproblem is replaced here by the ordinary optimiser of `train.fit` on the penalised loss.
[@deng2021comprehensive] uses the same splitting for SNNs (with pruning as a second constraint).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..pruning.hooks import ADMMHook
from .quantizers import SCALE_BITS, check_bits

__all__ = ["kmeans_codebook", "Codebook", "project_to_levels", "ADMMQuantHook"]


@torch.no_grad()
def kmeans_codebook(w: Tensor, k: int, iters: int = 30) -> tuple[Tensor, Tensor]:
    """1-D k-means of the non-zero entries of `w` into `k` centroids (linear initialisation).
    Returns `(centroids [k], index of every entry of w [same shape], int64)`."""
    flat = w.detach().flatten()
    vals = flat[flat != 0] if (flat != 0).any() else flat
    c = torch.linspace(float(vals.min()), float(vals.max()), k, dtype=w.dtype)  # linear init
    for _ in range(iters):
        assign = (vals[:, None] - c[None, :]).abs().argmin(1)
        for j in range(k):
            members = vals[assign == j]
            if members.numel():
                c[j] = members.mean()
    index = (flat[:, None] - c[None, :]).abs().argmin(1).view_as(w)
    return c, index


# --8<-- [start:Codebook]
class Codebook(nn.Module):
    r"""Parametrization $\hat w_i = c_{j(i)}$ ($0$ where $w_i = 0$) with `2**bits` trainable centroids $c$."""

    def __init__(self, w: Tensor, bits: int, where: str = "weight") -> None:
        super().__init__()
        self.bits = check_bits(bits, where)
        if w.numel() == 0:
            raise ValueError(f"{where}: cannot share the weights of an empty tensor")
        c, index = kmeans_codebook(w, 2**bits)
        self.centroids = nn.Parameter(c)
        self.register_buffer("index", index)

    def forward(self, w: Tensor) -> Tensor:
        return self.centroids[self.index] * (w != 0).to(w.dtype)  # pruned weights stay zero

    @property
    def overhead_bits(self) -> int:
        return self.centroids.numel() * SCALE_BITS  # the FP32 codebook
# --8<-- [end:Codebook]


@torch.no_grad()
def project_to_levels(v: Tensor, bits: int, iters: int = 5) -> tuple[Tensor, Tensor]:
    r"""$\Pi_{\mathcal C}(v)$: the nearest $\alpha q$, $q \in \{-Q..Q\}$, $Q = 2^{b-1} - 1$ (at least 1),
    by alternating the integer and the scale from $\alpha_0 = 2\langle|v|\rangle/\sqrt{Q}$ (starting from
    $\max|v|/Q$ instead leaves the ternary case with a handful of non-zero weights). Returns `(alpha q, alpha)`."""
    Q = max(2 ** (bits - 1) - 1, 1)
    alpha = 2 * v.abs().mean() / math.sqrt(Q)
    if alpha == 0:
        return torch.zeros_like(v), torch.ones(())
    for _ in range(iters):
        q = torch.round(v / alpha).clamp(-Q, Q)
        qq = (q * q).sum()
        if qq == 0:
            break
        alpha = (v * q).sum() / qq  # alpha = <v, q> / <q, q>
    return alpha * torch.round(v / alpha).clamp(-Q, Q), alpha


# --8<-- [start:admm_quant]
class ADMMQuantHook(ADMMHook):
    r"""ADMM auxiliary variables for quantization: every `every` steps $Z \leftarrow \Pi_{\mathcal C}(W + U)$,
    $U \leftarrow U + W - Z$; `penalty` is the loss term $\frac{\rho}{2}\|W - Z + U\|^2$. Only the projection
    differs from ADMM pruning (`pruning.hooks.ADMMHook`, whose penalty and dual update this reuses): the
    constraint set $\mathcal C$ is the scaled levels $\alpha\{-Q, \dots, Q\}$ instead of the top-k entries."""

    def __init__(self, layers: dict[str, nn.Module], bits: int, rho: float, every: int) -> None:
        if not (rho > 0 and math.isfinite(rho)) or every < 1:
            raise ValueError(f"ADMM needs rho > 0 and every >= 1, got rho={rho!r}, every={every!r}")
        self.layers, self.bits, self.rho, self.every = layers, bits, rho, every
        self.U = {n: torch.zeros_like(m.weight) for n, m in layers.items()}
        self.Z: dict[str, Tensor] = {}
        self.alpha: dict[str, Tensor] = {}
        self.update_z()

    @torch.no_grad()
    def update_z(self) -> None:
        for n, m in self.layers.items():
            self.Z[n], self.alpha[n] = project_to_levels(m.weight.detach() + self.U[n], self.bits)

# --8<-- [end:admm_quant]
