"""Per-tensor merge formulas: ReasonAny/LED (masked task vectors) and the baselines.

Why per tensor: the merge streams one tensor at a time from memory-mapped inputs to the sharded output,
so every method is a pure function of (θ_b, θ_r, θ_d, masks, settings) for one tensor, in float32.
For TIES and DARE the two ratios are the densities (fraction of each task vector kept) and the two
scales are the weights, so one settings panel serves every method.
"""

from __future__ import annotations

import hashlib

import torch


def masked(base: torch.Tensor, tau_r: torch.Tensor, tau_d: torch.Tensor, m_r: torch.Tensor | None,
           m_d: torch.Tensor | None, lam_r: float, lam_d: float) -> torch.Tensor:
    """θ_b + λ_r·M_r'⊙τ_r + λ_d·M_d'⊙τ_d (ALGORITHM.md §2 step 5); no masks = the tensor stays the base's."""
    out = base.clone()
    if m_r is not None:
        out += lam_r * torch.where(m_r, tau_r, torch.zeros((), dtype=tau_r.dtype))
    if m_d is not None:
        out += lam_d * torch.where(m_d, tau_d, torch.zeros((), dtype=tau_d.dtype))
    return out


def task_arithmetic(base, tau_r, tau_d, lam_r: float, lam_d: float) -> torch.Tensor:
    return base + lam_r * tau_r + lam_d * tau_d


def linear(base, tau_r, tau_d, w_r: float, w_d: float) -> torch.Tensor:
    """Weighted average of the two experts: θ_b + (w_r·τ_r + w_d·τ_d)/(w_r + w_d)."""
    return base + (w_r * tau_r + w_d * tau_d) / (w_r + w_d)


def magnitude_trim(tau: torch.Tensor, density: float) -> torch.Tensor:
    """Keep the floor(density·n) largest |τ| entries of a tensor (ties by flat order), zero the rest."""
    from .selection import exact_k

    flat = tau.reshape(-1)
    k = exact_k(density, flat.numel())  # floor(density·n) exactly, as in selection (0.29·100 = 29, not 28)
    keep = torch.zeros(flat.numel(), dtype=torch.bool)
    if k > 0:
        order = torch.sort(flat.abs(), descending=True, stable=True).indices[:k]
        keep[order] = True
    return torch.where(keep, flat, torch.zeros((), dtype=flat.dtype)).reshape(tau.shape)


def ties(base, tau_r, tau_d, dens_r: float, dens_d: float, w_r: float, w_d: float) -> torch.Tensor:
    """TIES-Merging (Yadav et al. 2023): trim, elect sign by weighted mass, disjoint weighted mean."""
    taus = torch.stack([magnitude_trim(tau_r, dens_r) * w_r, magnitude_trim(tau_d, dens_d) * w_d])
    weights = torch.tensor([w_r, w_d], dtype=taus.dtype).view(2, *([1] * tau_r.dim()))
    sign = torch.sign(taus.sum(0))
    agree = (torch.sign(taus) == sign) & (taus != 0)
    total = (taus * agree).sum(0)
    norm = (weights * agree).sum(0)
    return base + torch.where(norm > 0, total / norm.clamp_min(1e-12), torch.zeros((), dtype=total.dtype))


def dare(base, tau_r, tau_d, dens_r: float, dens_d: float, lam_r: float, lam_d: float, seed: int, name: str) -> torch.Tensor:
    """DARE (Yu et al. 2024): drop each entry with probability 1−density, rescale by 1/density, then add.

    The random stream is seeded by (seed, tensor name), so results do not depend on processing order.
    """
    gen = torch.Generator().manual_seed(_name_seed(seed, name))
    keep_r = torch.rand(tau_r.shape, generator=gen) < dens_r
    keep_d = torch.rand(tau_d.shape, generator=gen) < dens_d
    zero = torch.zeros((), dtype=tau_r.dtype)
    return base + lam_r * torch.where(keep_r, tau_r / dens_r, zero) + lam_d * torch.where(keep_d, tau_d / dens_d, zero)


def _name_seed(seed: int, name: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{name}".encode()).digest()[:8], "little") & ((1 << 63) - 1)


def merge_tensor(method: str, name: str, base: torch.Tensor, reasoning: torch.Tensor, domain: torch.Tensor,
                 cfg, m_r: torch.Tensor | None = None, m_d: torch.Tensor | None = None) -> torch.Tensor:
    """Merged float32 tensor for `method`; `cfg` is the MergeConfig (ratios, scales, seed)."""
    b, r, d = base.float(), reasoning.float(), domain.float()
    tau_r, tau_d = r - b, d - b
    if method in ("reasonany", "led"):
        return masked(b, tau_r, tau_d, m_r, m_d, cfg.reasoning_scale, cfg.domain_scale)
    if method == "task_arithmetic":
        return task_arithmetic(b, tau_r, tau_d, cfg.reasoning_scale, cfg.domain_scale)
    if method == "linear":
        return linear(b, tau_r, tau_d, cfg.reasoning_scale, cfg.domain_scale)
    if method == "ties":
        return ties(b, tau_r, tau_d, cfg.reasoning_ratio, cfg.domain_ratio, cfg.reasoning_scale, cfg.domain_scale)
    if method == "dare":
        return dare(b, tau_r, tau_d, cfg.reasoning_ratio, cfg.domain_ratio, cfg.reasoning_scale, cfg.domain_scale,
                    cfg.seed, name)
    raise ValueError(f"unknown method {method!r}")
