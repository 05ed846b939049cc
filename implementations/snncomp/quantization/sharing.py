r"""Mechanics of the non-uniform and constrained weight quantizers: k-means codebooks and ADMM.

**Weight sharing** [@han2016deep]: the non-zero weights of a layer are clustered into $k = 2^b$ values by
one-dimensional k-means, started from centroids spaced linearly between the smallest and the largest
weight (the initialisation Deep Compression found best). The layer then stores a $b$-bit index per
weight and the $k$ FP32 centroids. `Codebook` is the parametrization $\hat w_i = c_{j(i)}$ with trainable
centroids $c$: the gradient of a centroid is the sum of the gradients of the weights that share it,
the centroid fine-tuning of the paper. Zeros (pruned weights) stay zero; a dense layer needs a symbol for
them beside the $2^b$ centroids, which `metrics.deployed_bits` counts ($\lceil \log_2(2^b + 1)\rceil$ bits a
weight), while the sparse formats of `metrics.sparse_bits` leave them out.

**ADMM quantization** [@leng2018extremely]: training is the constrained problem
$\min_W L(W)$ s.t. $W \in \mathcal{C} = \alpha\{0, \pm 2^0, \pm 2^1, \dots, \pm 2^K\}$ per layer (ternary
$\alpha\{0, \pm 1\}$ at 2 bits; zero or a power of two, so a multiplication is a shift), split with an
auxiliary $Z$ and a scaled dual $U$: the loss gets $\frac{\rho}{2}\|W - Z + U\|^2$ and, every few steps,
$Z \leftarrow \Pi_{\mathcal C}(W + U)$ and $U \leftarrow U + W - Z$. The projection alternates
$q = $ the nearest element of the set to $V/\alpha$ and $\alpha = \langle V, q\rangle / \langle q, q\rangle$
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

__all__ = ["kmeans_codebook", "Codebook", "power_of_two_levels", "nearest_level", "project_to_levels",
           "PowerOfTwoQuantize", "ADMMQuantHook"]


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

    has_zero = False  # 2^b centroids; a zero (pruned weight) needs a symbol more in a dense layer

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


def power_of_two_levels(bits: int, max_exponent: int | None = None) -> Tensor:
    r"""The non-negative magnitudes of Leng et al.'s set $\{0, \pm 2^0, \dots, \pm 2^K\}$: `[0, 1, 2, ..., 2^K]`.
    At 2 bits $K$ is absent and the set is ternary $\{0, \pm 1\}$; at $b \ge 3$ bits, by default, $K = 2^{b-1} - 2$,
    the largest set whose $2K + 3$ values fit $2^b$ codes ($\{0, \pm1, \pm2, \pm4\}$ at 3 bits). `max_exponent`
    sets $K$ directly (the paper's $\{-2, +2\}$ network is $K = 1$), as long as the set fits `bits`."""
    check_bits(bits, "power_of_two_levels")
    if bits < 2:
        raise ValueError(f"power_of_two_levels: needs bits >= 2 (0 must be a level), got {bits}")
    k_max = 2 ** (bits - 1) - 2
    if max_exponent is not None:
        if isinstance(max_exponent, bool) or not isinstance(max_exponent, int) or not 0 <= max_exponent <= k_max:
            raise ValueError(f"power_of_two_levels: max_exponent must be an integer in [0, {k_max}] at {bits} bits, "
                             f"got {max_exponent!r}")
        k_max = max_exponent
    return torch.cat([torch.zeros(1), 2.0 ** torch.arange(k_max + 1, dtype=torch.float32)])


def nearest_level(x: Tensor, levels: Tensor) -> Tensor:
    r"""Each entry of `x` replaced by the nearest of $\{0, \pm \text{levels}\}$ (ties to the smaller magnitude)."""
    lv = levels.to(x.dtype)
    idx = (x.abs().unsqueeze(-1) - lv).abs().argmin(-1)
    return torch.sign(x) * lv[idx]


@torch.no_grad()
def project_to_levels(v: Tensor, bits: int, iters: int = 50, max_exponent: int | None = None) -> tuple[Tensor, Tensor]:
    r"""$\Pi_{\mathcal C}(v)$ for $\mathcal C = \alpha\{0, \pm 2^0, \dots, \pm 2^K\}$ (`power_of_two_levels`): the
    iterative quantization of Leng et al., alternating $q = $ the nearest level of $v/\alpha$ and
    $\alpha = \langle v, q\rangle / \langle q, q\rangle$ until $q$ stops changing, from $\alpha_0 = 2\langle|v|\rangle/\sqrt{2^K}$ (our start;
    $\max|v|/2^K$ instead leaves the ternary case with a handful of non-zero weights). Returns `(alpha q, alpha)`."""
    levels = power_of_two_levels(bits, max_exponent)
    alpha = 2 * v.abs().mean() / math.sqrt(float(levels[-1]))
    if alpha == 0:
        return torch.zeros_like(v), torch.ones(())
    q_old = None
    for _ in range(iters):  # until the levels stop changing (at most `iters` rounds)
        q = nearest_level(v / alpha, levels)
        qq = (q * q).sum()
        if qq == 0 or (q_old is not None and torch.equal(q, q_old)):
            break
        alpha, q_old = (v * q).sum() / qq, q  # alpha = <v, q> / <q, q>
    return alpha * nearest_level(v / alpha, levels), alpha


class PowerOfTwoQuantize(nn.Module):
    r"""Parametrization $\hat w = \alpha \cdot$ (the nearest of $\{0, \pm 2^0, \dots, \pm 2^K\}$ to $w/\alpha$) with a
    fixed $\alpha$ per layer: the constraint set of `admm-quantization`, kept during fine-tuning. The gradient
    passes straight through where $|w/\alpha| \le 2^K$ and is zero beyond."""

    def __init__(self, alpha: Tensor | float, bits: int, *, max_exponent: int | None = None,
                 where: str = "weight") -> None:
        super().__init__()
        self.bits = check_bits(bits, where)
        self.where = where
        self.register_buffer("levels", power_of_two_levels(bits, max_exponent))
        a = torch.as_tensor(alpha, dtype=torch.float32).reshape(())
        if not (torch.isfinite(a) and a > 0):
            raise ValueError(f"{where}: alpha must be finite and positive, got {alpha!r}")
        self.register_buffer("alpha", a.clone())

    def forward(self, w: Tensor) -> Tensor:
        x = w / self.alpha
        inside = (x.abs() <= self.levels[-1]).to(w.dtype)
        w_hat = self.alpha * nearest_level(x.detach(), self.levels)
        return w_hat + (w - w.detach()) * inside

    def integers(self, w: Tensor) -> Tensor:
        r"""The signed level of every weight ($0$ or $\pm 2^k$), int64."""
        return nearest_level(w.detach() / self.alpha, self.levels).long()

    @property
    def overhead_bits(self) -> int:
        return SCALE_BITS  # the FP32 alpha

    def extra_repr(self) -> str:
        return f"bits={self.bits}, levels=0, +-{self.levels[1:].tolist()}"


# --8<-- [start:admm_quant]
class ADMMQuantHook(ADMMHook):
    r"""ADMM auxiliary variables for quantization: every `every` steps $Z \leftarrow \Pi_{\mathcal C}(W + U)$,
    $U \leftarrow U + W - Z$; `penalty` is the loss term $\frac{\rho}{2}\|W - Z + U\|^2$. Only the projection
    differs from ADMM pruning (`pruning.hooks.ADMMHook`, whose penalty and dual update this reuses): the
    constraint set $\mathcal C$ is Leng et al.'s $\alpha\{0, \pm 2^0, \dots, \pm 2^K\}$ instead of the top-k entries."""

    def __init__(self, layers: dict[str, nn.Module], bits: int, rho: float, every: int,
                 max_exponent: int | None = None) -> None:
        if not (rho > 0 and math.isfinite(rho)) or every < 1:
            raise ValueError(f"ADMM needs rho > 0 and every >= 1, got rho={rho!r}, every={every!r}")
        power_of_two_levels(bits, max_exponent)  # check the set now
        self.layers, self.bits, self.rho, self.every = layers, bits, rho, every
        self.max_exponent = max_exponent
        self.U = {n: torch.zeros_like(m.weight) for n, m in layers.items()}
        self.Z: dict[str, Tensor] = {}
        self.alpha: dict[str, Tensor] = {}
        self.update_z()

    @torch.no_grad()
    def update_z(self) -> None:
        for n, m in self.layers.items():
            self.Z[n], self.alpha[n] = project_to_levels(m.weight.detach() + self.U[n], self.bits,
                                                         max_exponent=self.max_exponent)

# --8<-- [end:admm_quant]
