"""Replacing the a-priori profile of a tropospheric NO2 column (the AMF step).

With ``A`` the total-column averaging kernel, ``M`` the total air-mass factor, ``M_trop``
the tropospheric AMF, ``N`` the tropospheric column, ``l_tp`` the tropopause layer index
and ``x_l`` the new a-priori as partial columns on the TM5 layers (Eskes & Boersma 2003;
S5P NO2 Product User Manual; Douros et al. 2023):

- box AMF (scattering weight, temperature correction included): ``m_l = A_l M``
- new tropospheric AMF: ``M_trop' = sum_{l<=l_tp} m_l x_l / sum_{l<=l_tp} x_l``
- new column: ``N' = N M_trop / M_trop'`` (the slant column ``N M_trop`` is conserved);
  the precision is scaled by the same ratio
- new tropospheric kernel: ``A_trop,l' = m_l / M_trop'`` for ``l <= l_tp``, 0 above.

The tropopause layer itself is tropospheric (``l <= l_tp``, inclusive), as the long name
of ``tm5_tropopause_layer_index`` says and as KNMI processes it. Only the shape of ``x``
matters: scaling it leaves ``M_trop'`` unchanged, so ``x`` may be in any unit
proportional to mol m-2.

A pixel is invalid (NaN everywhere, ``valid`` False; never an exception) when any input
it uses is not finite (the kernel and ``x`` at layers ``l <= l_tp``, ``M``, ``M_trop``,
``N`` and its precision), ``l_tp`` is outside ``[0, L-1]`` (the fill value -1
included), ``M_trop <= 0``, some ``x_l < 0`` or ``sum x_l <= 0`` below the tropopause, or
``M_trop'`` is not positive.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AmfResult:
    """The retrieval with a new a-priori; NaN where ``valid`` is False.

    Attributes:
        amf_trop: ``(n,)`` new tropospheric AMF ``M_trop'`` (1).
        no2_trop: ``(n,)`` new tropospheric column ``N'`` (unit of the input column).
        no2_trop_precision: ``(n,)`` its precision, same unit.
        averaging_kernel_trop: ``(n, L)`` new tropospheric kernel (1), 0 above ``l_tp``.
        valid: ``(n,)`` bool.
    """

    amf_trop: np.ndarray
    no2_trop: np.ndarray
    no2_trop_precision: np.ndarray
    averaging_kernel_trop: np.ndarray
    valid: np.ndarray

    def __post_init__(self) -> None:
        n = self.valid.shape[0]
        for name in ("amf_trop", "no2_trop", "no2_trop_precision", "valid"):
            if getattr(self, name).shape != (n,):
                raise ValueError(f"{name} must be ({n},), got {getattr(self, name).shape}")
        if self.averaging_kernel_trop.ndim != 2 or self.averaging_kernel_trop.shape[0] != n:
            raise ValueError(f"averaging_kernel_trop must be ({n}, L)")


def box_amf(averaging_kernel: np.ndarray, amf_total: np.ndarray) -> np.ndarray:
    """Box AMFs ``m_l = A_l M``.

    Args:
        averaging_kernel: ``(..., L)`` total-column averaging kernel (1).
        amf_total: ``(...)`` total AMF (1).

    Returns:
        ``(..., L)`` float64.
    """
    ak = np.asarray(averaging_kernel, dtype=np.float64)
    return ak * np.asarray(amf_total, dtype=np.float64)[..., None]


def tropospheric_mask(tropopause_index: np.ndarray, n_layers: int) -> np.ndarray:
    """``(n, L)`` bool, True at layers ``l <= l_tp`` (all False where ``l_tp`` is out of
    ``[0, L-1]``)."""
    tp = np.asarray(tropopause_index)
    if tp.dtype.kind == "f":
        tp = np.where(np.isfinite(tp), tp, -1)
    tp = tp.astype(np.int64)
    in_range = (tp >= 0) & (tp < n_layers)
    return (np.arange(n_layers)[None, :] <= tp[:, None]) & in_range[:, None]


def replace_apriori(
    averaging_kernel: np.ndarray,
    amf_total: np.ndarray,
    amf_trop: np.ndarray,
    tropopause_index: np.ndarray,
    apriori: np.ndarray,
    no2_trop: np.ndarray,
    no2_trop_precision: np.ndarray,
) -> AmfResult:
    """Tropospheric column, AMF and kernel with a new a-priori profile (module docstring).

    Args:
        averaging_kernel: ``(n, L)`` total-column averaging kernel (1), layer 0 at the
            surface.
        amf_total: ``(n,)`` total AMF ``M`` (1).
        amf_trop: ``(n,)`` tropospheric AMF ``M_trop`` of the file (1).
        tropopause_index: ``(n,)`` int, 0-based index of the highest tropospheric layer
            (inclusive); -1 marks fill.
        apriori: ``(n, L)`` new a-priori partial columns ``x_l``, any unit proportional to
            mol m-2.
        no2_trop: ``(n,)`` tropospheric column ``N`` (any unit).
        no2_trop_precision: ``(n,)`` its precision (same unit).

    Returns:
        :class:`AmfResult`, float64; invalid pixels are NaN with ``valid`` False.
    """
    ak = np.asarray(averaging_kernel, dtype=np.float64)
    x = np.asarray(apriori, dtype=np.float64)
    m_tot, m_trop, col, prec = (np.asarray(v, dtype=np.float64)
                                for v in (amf_total, amf_trop, no2_trop, no2_trop_precision))
    if ak.ndim != 2 or x.shape != ak.shape:
        raise ValueError(f"averaging_kernel {ak.shape} and apriori {x.shape} must both be (n, L)")
    n, n_layers = ak.shape
    for name, v in (("amf_total", m_tot), ("amf_trop", m_trop), ("no2_trop", col),
                    ("no2_trop_precision", prec), ("tropopause_index", np.asarray(tropopause_index))):
        if v.shape != (n,):
            raise ValueError(f"{name} must be ({n},), got {v.shape}")
    trop = tropospheric_mask(tropopause_index, n_layers)
    m = box_amf(ak, m_tot)
    with np.errstate(invalid="ignore", over="ignore"):
        m0 = np.where(trop, m, 0.0)
        x0 = np.where(trop, x, 0.0)
        sum_x = x0.sum(axis=1)
        new_amf = (m0 * x0).sum(axis=1) / np.where(sum_x > 0, sum_x, 1.0)
    valid = (
        trop.any(axis=1)
        & np.isfinite(m_tot) & np.isfinite(m_trop) & np.isfinite(col) & np.isfinite(prec)
        & (m_trop > 0)
        & np.all(np.isfinite(m0) & np.isfinite(x0), axis=1)
        & np.all(x0 >= 0, axis=1)
        & (sum_x > 0)
        & np.isfinite(new_amf) & (new_amf > 0)
    )
    new_amf = np.where(valid, new_amf, np.nan)
    ratio = m_trop / new_amf
    kernel = np.where(trop, m0 / new_amf[:, None], 0.0)
    kernel[~valid] = np.nan
    return AmfResult(
        amf_trop=new_amf,
        no2_trop=col * ratio,
        no2_trop_precision=prec * ratio,
        averaging_kernel_trop=kernel,
        valid=valid,
    )


@dataclass(frozen=True)
class ModelColumns:
    """The a-priori field's own tropospheric column and the column the satellite would see.

    Attributes:
        tropospheric: ``(n,)`` ``sum_{l<=l_tp} x_l`` (unit of ``x``, mol m-2).
        smoothed: ``(n,)`` ``sum_{l<=l_tp} A_trop,l x_l`` with the ORIGINAL tropospheric
            kernel ``A_trop,l = A_l M / M_trop`` (unit of ``x``): the model column to compare
            with the operational column ``N`` (Eskes & Boersma 2003).
    """

    tropospheric: np.ndarray
    smoothed: np.ndarray


def model_columns(
    averaging_kernel: np.ndarray,
    amf_total: np.ndarray,
    amf_trop: np.ndarray,
    tropopause_index: np.ndarray,
    apriori: np.ndarray,
) -> ModelColumns:
    """Tropospheric and kernel-smoothed columns of a model profile.

    Args:
        averaging_kernel: ``(n, L)`` total-column averaging kernel (1), layer 0 at the surface.
        amf_total: ``(n,)`` total AMF ``M`` (1).
        amf_trop: ``(n,)`` the file's tropospheric AMF ``M_trop`` (1).
        tropopause_index: ``(n,)`` 0-based index of the highest tropospheric layer
            (inclusive, as in :func:`replace_apriori`); -1 marks fill.
        apriori: ``(n, L)`` model partial columns ``x_l`` on the TM5 layers (mol m-2).

    Returns:
        :class:`ModelColumns`, float64; NaN where an input below the tropopause is not
        finite, ``l_tp`` is fill or ``M_trop <= 0``.
    """
    ak = np.asarray(averaging_kernel, dtype=np.float64)
    x = np.asarray(apriori, dtype=np.float64)
    m_tot = np.asarray(amf_total, dtype=np.float64)
    m_trop = np.asarray(amf_trop, dtype=np.float64)
    if ak.ndim != 2 or x.shape != ak.shape:
        raise ValueError(f"averaging_kernel {ak.shape} and apriori {x.shape} must both be (n, L)")
    trop = tropospheric_mask(tropopause_index, ak.shape[1])
    with np.errstate(invalid="ignore", divide="ignore"):
        kernel = box_amf(ak, m_tot) / m_trop[:, None]
        x0 = np.where(trop, x, 0.0)
        column = x0.sum(axis=1)
        smoothed = np.where(trop, kernel * x0, 0.0).sum(axis=1)
    ok_col = trop.any(axis=1) & np.all(np.isfinite(x0), axis=1)
    ok_smooth = ok_col & np.all(np.isfinite(np.where(trop, kernel, 0.0)), axis=1) & (m_trop > 0)
    return ModelColumns(np.where(ok_col, column, np.nan), np.where(ok_smooth, smoothed, np.nan))
