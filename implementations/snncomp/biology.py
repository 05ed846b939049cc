r"""Neuron models of the biology section (survey section 2.1): Izhikevich's simple model and the
Hodgkin-Huxley axon.

They follow the convention of `snncomp.neurons` (a whole `[T, B, ...]` input current per call, a
`NeuronOutput(spikes, membrane)` back, no state kept between calls) but work in millivolts and
milliseconds, so notebook 01 can compare them with the LIF unit the rest of the package trains.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .neurons import NeuronOutput, _check_positive, _check_sequence

__all__ = ["izhikevich", "IZHIKEVICH_PATTERNS", "hodgkin_huxley"]


IZHIKEVICH_PATTERNS: dict[str, tuple[float, float, float, float]] = {
    # name: (a, b, c, d) from the simple model's parameter table [@izhikevich2003simple]
    "regular spiking": (0.02, 0.2, -65.0, 8.0),
    "intrinsically bursting": (0.02, 0.2, -55.0, 4.0),
    "chattering": (0.02, 0.2, -50.0, 2.0),
    "fast spiking": (0.1, 0.2, -65.0, 2.0),
    "low-threshold spiking": (0.02, 0.25, -65.0, 2.0),
}


def izhikevich(
    current: Tensor,
    a: float = 0.02,
    b: float = 0.2,
    c: float = -65.0,
    d: float = 8.0,
    *,
    dt: float = 0.5,
    v_init: float = -65.0,
) -> NeuronOutput:
    r"""Izhikevich's simple model [@izhikevich2003simple], Euler steps of `dt` ms.

    $$\dot v = 0.04 v^2 + 5 v + 140 - u + I, \qquad \dot u = a (b v - u),$$
    and when $v \ge 30$ mV: $v \leftarrow c$, $u \leftarrow u + d$. `current`: `[T, B, ...]`.
    `membrane` holds $v$ in mV with spikes drawn at their 30 mV peak.

    Every pattern starts from $v = -65$ mV and $u = b v$, as in the paper's own simulation code, not from
    the reset value $c$: for the chattering parameters ($b = 0.2$, $c = -50$) $v = c$, $u = b c$ is the
    unstable fixed point of the model, so a neuron started there would never settle to its rest near
    $-70$ mV.
    """
    _check_sequence(current, "izhikevich")
    _check_positive("dt", dt, "izhikevich")
    v = torch.full_like(current[0], v_init)  # v(0) = -65 mV
    u = b * v  # u(0) = b v(0)
    spikes, membrane = [], []
    for t in range(current.shape[0]):
        v = v + dt * (0.04 * v * v + 5 * v + 140 - u + current[t])
        u = u + dt * a * (b * v - u)
        fired = v >= 30.0
        membrane.append(torch.where(fired, torch.full_like(v, 30.0), v))
        spikes.append(fired.to(current.dtype))
        v = torch.where(fired, torch.full_like(v, c), v)
        u = torch.where(fired, u + d, u)
    return NeuronOutput(torch.stack(spikes), torch.stack(membrane))


def hodgkin_huxley(current: Tensor, *, dt: float = 0.01) -> NeuronOutput:
    r"""Hodgkin-Huxley squid axon [@hodgkin1952quantitative], forward Euler with `dt` ms.

    $$C \dot V = I - \bar g_{Na} m^3 h (V - E_{Na}) - \bar g_K n^4 (V - E_K) - g_L (V - E_L)$$

    $$\dot x = \alpha_x(V)(1 - x) - \beta_x(V) x, \quad x \in \{m, h, n\}$$

    Modern sign convention (rest near -65 mV), $C = 1\,\mu F/cm^2$, $\bar g_{Na}=120$,
    $\bar g_K=36$, $g_L=0.3$ mS/cm$^2$, $E_{Na}=50$, $E_K=-77$, $E_L=-54.4$ mV.
    `current`: $\mu A/cm^2$, `[T, B, ...]`. A spike is an upward crossing of 0 mV.
    """
    _check_sequence(current, "hodgkin_huxley")
    _check_positive("dt", dt, "hodgkin_huxley")
    g_na, g_k, g_l, e_na, e_k, e_l = 120.0, 36.0, 0.3, 50.0, -77.0, -54.387

    def rates(v: Tensor) -> tuple[Tensor, ...]:
        dv_m, dv_n = v + 40.0, v + 55.0
        # alpha_m and alpha_n have removable singularities at -40 and -55 mV
        a_m = torch.where(dv_m.abs() < 1e-6, torch.ones_like(v), 0.1 * dv_m / (1 - torch.exp(-dv_m / 10)))
        b_m = 4.0 * torch.exp(-(v + 65.0) / 18)
        a_h = 0.07 * torch.exp(-(v + 65.0) / 20)
        b_h = 1.0 / (1 + torch.exp(-(v + 35.0) / 10))
        a_n = torch.where(dv_n.abs() < 1e-6, torch.full_like(v, 0.1), 0.01 * dv_n / (1 - torch.exp(-dv_n / 10)))
        b_n = 0.125 * torch.exp(-(v + 65.0) / 80)
        return a_m, b_m, a_h, b_h, a_n, b_n

    v = torch.full_like(current[0], -65.0)
    a_m, b_m, a_h, b_h, a_n, b_n = rates(v)
    m, h, n = a_m / (a_m + b_m), a_h / (a_h + b_h), a_n / (a_n + b_n)  # steady state at rest
    spikes, membrane = [], []
    for t in range(current.shape[0]):
        a_m, b_m, a_h, b_h, a_n, b_n = rates(v)
        i_ion = g_na * m**3 * h * (v - e_na) + g_k * n**4 * (v - e_k) + g_l * (v - e_l)
        v_new = v + dt * (current[t] - i_ion)
        m = m + dt * (a_m * (1 - m) - b_m * m)
        h = h + dt * (a_h * (1 - h) - b_h * h)
        n = n + dt * (a_n * (1 - n) - b_n * n)
        spikes.append(((v < 0) & (v_new >= 0)).to(current.dtype))
        v = v_new
        membrane.append(v)
    return NeuronOutput(torch.stack(spikes), torch.stack(membrane))
