"""Deterministic randomness, smooth random fields and array helpers for the synthetic world.

Every random draw of the synthetic world comes from :func:`component_rng`, a numpy
``Generator`` seeded from the world seed and the names of the component asking (for
example ``("meteo", "systems", 738000)``), so that a component's draws do not depend on
what other components drew, on the region or on the order of the work: the same seed gives
the same world, day by day, whatever period is generated.

:class:`FourierNoise` is a smooth random field defined everywhere (a sum of random plane
waves with a power-law amplitude spectrum). Being a function of position rather than an
array, it gives the same values on any grid, so static maps at 500 m, 2 km and on lat/lon
grids agree with each other.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from scipy import ndimage


def component_rng(seed: int, *names: object) -> np.random.Generator:
    """A Generator seeded from ``seed`` and the component ``names`` (str or int).

    The names are hashed (SHA-256) into the seed sequence, so components are independent
    and adding a component never changes the draws of another.
    """
    text = "\x1f".join(str(n) for n in names).encode()
    digest = hashlib.sha256(text).digest()
    words = [int.from_bytes(digest[i:i + 4], "little") for i in range(0, 16, 4)]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, *words])))


@dataclass(frozen=True)
class FourierNoise:
    """A smooth isotropic random field of zero mean and unit variance.

    ``f(x, y) = sqrt(2 / sum a^2) * sum_k a_k cos(kx_k x + ky_k y + phi_k)`` with
    wavelengths log-uniform in ``[lmin, lmax]`` and amplitudes ``a_k ~ lambda_k^slope``.

    Attributes:
        kx, ky: ``(n,)`` wavenumbers (rad per unit of x, y).
        phase: ``(n,)`` phases (rad).
        amp: ``(n,)`` amplitudes, normalised so that the field has unit variance.
    """

    kx: np.ndarray
    ky: np.ndarray
    phase: np.ndarray
    amp: np.ndarray

    @classmethod
    def draw(cls, rng: np.random.Generator, *, n_waves: int, lmin: float, lmax: float,
             slope: float = 1.0) -> FourierNoise:
        """Draw a field with ``n_waves`` waves, wavelengths in ``[lmin, lmax]`` (units of x)."""
        lam = np.exp(rng.uniform(np.log(lmin), np.log(lmax), n_waves))
        theta = rng.uniform(0.0, 2.0 * np.pi, n_waves)
        k = 2.0 * np.pi / lam
        amp = lam ** slope
        amp = amp * np.sqrt(2.0 / np.sum(amp ** 2))
        return cls(k * np.cos(theta), k * np.sin(theta), rng.uniform(0, 2 * np.pi, n_waves), amp)

    def __call__(self, x: np.ndarray, y: np.ndarray, *, block: int = 1 << 18) -> np.ndarray:
        """Field values at points ``x``, ``y`` (broadcast together); float64, their shape."""
        x, y = np.broadcast_arrays(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
        if x.ndim == 2 and x.size > 64 and np.all(x == x[:1]) and np.all(y == y[:, :1]):
            return self.on_axes(x[0], y[:, 0])
        xf, yf = x.ravel(), y.ravel()
        out = np.empty(xf.size)
        for s in range(0, xf.size, block):
            arg = (np.multiply.outer(xf[s:s + block], self.kx)
                   + np.multiply.outer(yf[s:s + block], self.ky) + self.phase)
            out[s:s + block] = np.cos(arg) @ self.amp
        return out.reshape(x.shape)

    def on_axes(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Field on the mesh of ``x`` (nx,) and ``y`` (ny,): ``(ny, nx)`` float64.

        Separable: ``cos(kx x + ky y + phi) = Re(e^{i(ky y + phi)} e^{i kx x})``, one
        complex matrix product instead of a cosine per point and wave.
        """
        a = (self.amp * np.exp(1j * self.phase)) * np.exp(1j * np.multiply.outer(np.asarray(y, np.float64), self.ky))
        b = np.exp(1j * np.multiply.outer(self.kx, np.asarray(x, np.float64)))
        return (a @ b).real


def gaussian_smooth(field: np.ndarray, sigma_cells: float, *, axes: tuple[int, int] = (-2, -1),
                    mode: str = "nearest") -> np.ndarray:
    """Gaussian smoothing over the two horizontal axes (``sigma`` in cells)."""
    if sigma_cells <= 0:
        return field
    sig = [0.0] * field.ndim
    for a in axes:
        sig[a] = sigma_cells
    return ndimage.gaussian_filter(field, sig, mode=mode, truncate=3.0)


def block_mean(field: np.ndarray, factor: int) -> np.ndarray:
    """Mean over ``factor x factor`` blocks of the last two axes (sizes must divide)."""
    *lead, ny, nx = field.shape
    if ny % factor or nx % factor:
        raise ValueError(f"shape {(ny, nx)} does not divide by {factor}")
    return field.reshape(*lead, ny // factor, factor, nx // factor, factor).mean(axis=(-3, -1))


def smooth_noise_2d(rng: np.random.Generator, shape: tuple[int, int], sigma_cells: float) -> np.ndarray:
    """White noise smoothed with a Gaussian and rescaled to unit standard deviation."""
    field = gaussian_smooth(rng.standard_normal(shape), sigma_cells, mode="wrap")
    return (field - field.mean()) / max(float(field.std()), 1e-12)


def round_bits(values: np.ndarray, keep_bits: int = 8) -> np.ndarray:
    """float32 values with the mantissa rounded to ``keep_bits`` bits (round half up)."""
    a = np.ascontiguousarray(values, dtype=np.float32)
    bits = a.view(np.uint32)
    drop = 23 - keep_bits
    half = np.uint32(1 << (drop - 1))
    mask = np.uint32(~((1 << drop) - 1) & 0xFFFFFFFF)
    return ((bits + half) & mask).view(np.float32)
