"""Write the reprocessed copy of a Sentinel-5P L2 NO2 file.

The copy keeps every group, variable and attribute of the input unchanged (the global
``history`` gains one line) and adds, in ``PRODUCT``, the reprocessed tropospheric column,
its precision, the tropospheric AMF and the tropospheric averaging kernel (each laid out
like its original: dims, dtype, chunks, compression, fill, attributes), plus a group
``PRODUCT/SUPPORT_DATA/APRIORI_REPLACEMENT`` with the a-priori partial columns used, their
coverage fraction and, optionally, PM2.5 context.

Uncropped, the input is copied byte for byte (``shutil.copyfile``, a kernel-side copy) to
a temporary file in the destination directory and opened for append. Cropped
(``scanlines=(a, b)``), a new file is built with every variable having a ``scanline``
dimension sliced to ``[a, b)``. Blocks are buffered and written in whole chunks along
``scanline``, so each chunk of an added variable is compressed exactly once. The file is
renamed into place on a clean exit and removed on an exception; the input is only read.
"""

from __future__ import annotations

import contextlib
import logging
import math
import shutil
from os import PathLike
from pathlib import Path

import netCDF4
import numpy as np

from aprior._io import atomic_path
from aprior.errors import AprioriError, InputFileError
from aprior.retrieval import s5p_names as names
from aprior.retrieval.granule import GranuleInfo, ReprocessedBlock

log = logging.getLogger(__name__)

_FILL = np.float32(9.96921e36)
_MAX_FLUSH_ROWS = 4096
_COPY_ROWS = 512


# --------------------------------------------------------------------------- cropped copy


def _copy_attrs(src, dst, skip: tuple[str, ...] = ("_FillValue",)) -> None:
    for name in src.ncattrs():
        if name in skip:
            continue
        value = src.getncattr(name)
        if isinstance(value, str):
            dst.setncattr(name, value.encode("utf-8"))  # NC_CHAR, as in the S5P products
        elif isinstance(value, list):
            dst.setncattr_string(name, value)
        else:
            dst.setncattr(name, value)


def _layout(var: netCDF4.Variable, sizes: dict[str, int]) -> dict:
    """createVariable keywords reproducing ``var``'s storage: chunks, filters, fill."""
    kwargs: dict = {}
    chunking = var.chunking()
    if chunking not in (None, "contiguous"):
        kwargs["chunksizes"] = [
            max(1, min(c, sizes[d])) for c, d in zip(chunking, var.dimensions, strict=True)
        ]
    filters = var.filters() or {}
    if filters.get("zlib"):
        kwargs.update(zlib=True, complevel=filters.get("complevel", 4))
    if var.dtype is not str:
        kwargs["shuffle"] = bool(filters.get("shuffle", False))
        kwargs["fletcher32"] = bool(filters.get("fletcher32", False))
    if "_FillValue" in var.ncattrs():
        kwargs["fill_value"] = var.getncattr("_FillValue")
    return kwargs


def _dim_sizes(grp) -> dict[str, int]:
    sizes: dict[str, int] = {}
    chain = []
    while grp is not None:
        chain.append(grp)
        grp = grp.parent
    for g in reversed(chain):
        sizes.update({name: len(dim) for name, dim in g.dimensions.items()})
    return sizes


def _copy_data(src: netCDF4.Variable, dst: netCDF4.Variable, rows: tuple[int, int]) -> None:
    dims = src.dimensions
    fill = src.getncattr("_FillValue") if "_FillValue" in src.ncattrs() else None
    if not dims:
        dst.assignValue(src.getValue())
        return
    axis = dims.index("scanline") if "scanline" in dims else None
    if axis is None:
        slabs = [(slice(None), slice(None))]
    else:
        a, b = rows
        slabs = [
            (slice(r, min(b, r + _COPY_ROWS)), slice(r - a, min(b, r + _COPY_ROWS) - a))
            for r in range(a, b, _COPY_ROWS)
        ]
    for src_rows, dst_rows in slabs:
        index_src = [slice(None)] * len(dims)
        index_dst = [slice(None)] * len(dims)
        if axis is not None:
            index_src[axis], index_dst[axis] = src_rows, dst_rows
        data = src[tuple(index_src)]
        if fill is not None and np.all(data == fill):
            continue  # unwritten in the input: leave it unwritten (reads back as fill)
        dst[tuple(index_dst)] = data


def _copy_group(src, dst, rows: tuple[int, int]) -> None:
    for name, dim in src.dimensions.items():
        size = rows[1] - rows[0] if name == "scanline" else len(dim)
        dst.createDimension(name, None if dim.isunlimited() else size)
    _copy_attrs(src, dst)
    sizes = _dim_sizes(dst)
    for name, var in src.variables.items():
        vtype = str if var.dtype is str else var.datatype
        new = dst.createVariable(name, vtype, var.dimensions, **_layout(var, sizes))
        _copy_attrs(var, new)
        new.set_auto_maskandscale(False)
        var.set_auto_maskandscale(False)
        _copy_data(var, new, rows)
    for name, child in src.groups.items():
        _copy_group(child, dst.createGroup(name), rows)


def write_cropped_copy(
    src: str | PathLike[str], dst: str | PathLike[str], scanlines: tuple[int, int]
) -> None:
    """Write ``src`` to ``dst`` (a new file) with every ``scanline`` dimension cut to ``[a, b)``.

    Groups, dimensions, attributes, chunking (clipped to the new sizes), compression and
    fill values are kept; the ``scanline`` coordinate keeps the input's values.
    """
    with netCDF4.Dataset(src, "r") as s, netCDF4.Dataset(dst, "w", format="NETCDF4") as d:
        _copy_group(s, d, scanlines)


# --------------------------------------------------------------------------- added variables


def _like(grp, name: str, model: netCDF4.Variable) -> netCDF4.Variable:
    """A variable with the dims, dtype, chunks, compression and fill of ``model``.

    Float models keep their dtype and ``_FillValue``; others give float32 with the S5P
    float fill.
    """
    kwargs = _layout(model, _dim_sizes(model.group()))
    dtype = (
        model.dtype if model.dtype is not str and model.dtype.kind == "f" else np.dtype(np.float32)
    )
    if dtype != model.dtype or "fill_value" not in kwargs:
        kwargs["fill_value"] = _FILL
    return grp.createVariable(name, dtype, model.dimensions, **kwargs)


def _add_reprocessed(
    ds: netCDF4.Dataset, apriori_source: str, with_pm25: bool
) -> dict[str, netCDF4.Variable]:
    """Create the added variables; returns ReprocessedBlock field -> variable."""
    prod = ds["PRODUCT"]
    out: dict[str, netCDF4.Variable] = {}
    for field, original in names.REPROCESSED.items():
        model = prod[original]
        var = _like(prod, names.reprocessed_name(field), model)
        _copy_attrs(model, var)
        long_name = str(getattr(model, "long_name", original))
        if field == "averaging_kernel_trop":
            long_name = "Tropospheric averaging kernel"
            var.setncattr(
                "comment",
                b"m_l / M_trop' for layers l <= tm5_tropopause_layer_index, 0 above; "
                b"m_l = averaging_kernel * air_mass_factor_total",
            )
        var.setncattr(
            "long_name", f"{long_name}, reprocessed with a replaced a-priori profile".encode()
        )
        if field == "no2_trop":
            anc = " ".join(
                names.reprocessed_name(f)
                for f in ("no2_trop_precision", "amf_trop", "averaging_kernel_trop")
            )
            var.setncattr("ancillary_variables", anc.encode())
        var.setncattr("apriori_source", apriori_source.encode("utf-8"))
        out[field] = var
    support = prod["SUPPORT_DATA"]
    grp = support.createGroup(names.APRIORI_REPLACEMENT.rsplit("/", 1)[-1])
    grp.setncattr(
        "comment",
        b"A-priori NO2 profiles replacing TM5 in the tropospheric AMF (Eskes and Boersma 2003)",
    )
    grp.setncattr("apriori_source", apriori_source.encode("utf-8"))
    column, kernel = (
        prod[names.REPROCESSED["no2_trop"]],
        prod[names.REPROCESSED["averaging_kernel_trop"]],
    )
    specs = {
        "apriori_partial_columns": (
            kernel,
            "mol m-2",
            "A-priori NO2 partial columns on the TM5 layers",
        ),
        "coverage_fraction": (
            column,
            "1",
            "Fraction of the pixel footprint covered by the a-priori field",
        ),
    }
    specs["apriori_tropospheric_column"] = (
        column,
        "mol m-2",
        "Tropospheric NO2 column of the a-priori field (TM5 layers l <= tm5_tropopause_layer_index)",
    )
    specs["apriori_tropospheric_column_smoothed"] = (
        column,
        "mol m-2",
        "Tropospheric NO2 column of the a-priori field as seen by the satellite "
        "(smoothed with the original tropospheric averaging kernel)",
    )
    if with_pm25:
        specs["pm25_context"] = (
            column,
            "ug m-3",
            "PM2.5 mass concentration near the surface (context)",
        )
    for field, (model, units, long_name) in specs.items():
        name = {"coverage_fraction": "apriori_coverage_fraction"}.get(field, field)
        var = _like(grp, name, model)
        var.setncattr("units", units.encode())
        var.setncattr("long_name", long_name.encode())
        var.setncattr("coordinates", b"/PRODUCT/longitude /PRODUCT/latitude")
        if units == "mol m-2":
            var.setncattr(
                "multiplication_factor_to_convert_to_molecules_percm2", np.float32(6.02214e19)
            )
        extra = _COLUMN_ATTRS.get(field, {})
        for key, value in extra.items():
            var.setncattr(key, value.encode())
        var.setncattr("apriori_source", apriori_source.encode("utf-8"))
        out[field] = var
    return out


#: CF attributes of the model columns (the smoothed column has no CF standard name: it is
#: a column convolved with a retrieval's kernel, not a physical amount).
_COLUMN_ATTRS = {
    "apriori_tropospheric_column": {
        "standard_name": "troposphere_mole_content_of_nitrogen_dioxide",
        "cell_methods": "area: mean (footprint of the pixel)",
        "comment": "sum over TM5 layers l <= l_tp of x_l, the a-priori field's partial columns",
    },
    "apriori_tropospheric_column_smoothed": {
        "cell_methods": "area: mean (footprint of the pixel)",
        "comment": ("y = sum over l <= l_tp of A_trop,l x_l with the original tropospheric kernel "
                    "A_trop,l = averaging_kernel_l * air_mass_factor_total / "
                    "air_mass_factor_troposphere (Eskes and Boersma 2003); compare with "
                    "the operational nitrogendioxide_tropospheric_column"),
        "ancillary_variables": "apriori_tropospheric_column",
    },
}


# --------------------------------------------------------------------------- the writer


class S5PReprocessedWriter:
    """Writes the reprocessed copy of one S5P L2 NO2 file; a context manager.

    Args:
        info: the opened input granule.
        dst: the output file.
        scanlines: ``(a, b)`` crops the copy to input scanlines ``[a, b)``; None copies all.
        history: a line appended to the global ``history`` attribute.
        apriori_source: description of the a-priori (stored as attribute ``apriori_source``).
        with_pm25: also write ``APRIORI_REPLACEMENT/pm25_context``.

    ``write_block`` takes :class:`~aprior.retrieval.granule.ReprocessedBlock` s whose
    ``start``/``stop`` are input scanline indices; rows outside the crop are ignored.
    """

    def __init__(
        self,
        info: GranuleInfo,
        dst: str | PathLike[str],
        *,
        scanlines: tuple[int, int] | None,
        history: str,
        apriori_source: str,
        with_pm25: bool = False,
    ) -> None:
        self.info = info
        self.src = Path(info.path)
        self.dst = Path(dst)
        if scanlines is not None:
            a, b = (int(v) for v in scanlines)
            if not 0 <= a < b <= info.n_scanline:
                raise AprioriError(
                    f"scanlines ({a}, {b}) outside the file's 0-{info.n_scanline}", path=self.src
                )
            self.rows = (a, b)
        else:
            self.rows = (0, info.n_scanline)
        self.cropped = self.rows != (0, info.n_scanline)
        with contextlib.suppress(OSError):
            if self.dst.resolve() == self.src.resolve():
                raise AprioriError(
                    "the output would overwrite the input file; choose another output",
                    path=self.dst,
                )
        self.history = history
        self.apriori_source = apriori_source
        self.with_pm25 = with_pm25
        self._stack: contextlib.ExitStack | None = None
        self._ds: netCDF4.Dataset | None = None
        self._vars: dict[str, netCDF4.Variable] = {}
        self._pending: list[tuple[int, int, dict[str, np.ndarray]]] = []
        self._step = 1

    # -- context
    def __enter__(self) -> S5PReprocessedWriter:
        stack = contextlib.ExitStack()
        try:
            tmp = stack.enter_context(atomic_path(self.dst))
            if self.cropped:
                write_cropped_copy(self.src, tmp, self.rows)
            else:
                shutil.copyfile(self.src, tmp)
            self._ds = netCDF4.Dataset(tmp, "a")
            self._prepare(self._ds)
        except BaseException as exc:
            if self._ds is not None:
                with contextlib.suppress(Exception):
                    self._ds.close()
            stack.__exit__(type(exc), exc, exc.__traceback__)
            if isinstance(exc, OSError | RuntimeError):
                raise AprioriError(
                    f"the reprocessed copy cannot be written ({exc})", path=self.dst
                ) from exc
            raise
        self._stack = stack
        return self

    def _prepare(self, ds: netCDF4.Dataset) -> None:
        prod = ds["PRODUCT"]
        if names.reprocessed_name("no2_trop") in prod.variables:
            raise InputFileError(
                "already holds reprocessed variables; reprocess the original L2 file", path=self.src
            )
        old = ds.getncattr("history") if "history" in ds.ncattrs() else ""
        ds.setncattr("history", (f"{old}\n{self.history}" if old else self.history).encode("utf-8"))
        self._vars = _add_reprocessed(ds, self.apriori_source, self.with_pm25)
        ds.set_auto_maskandscale(False)
        chunks = [
            v.chunking()[1] for v in self._vars.values() if v.chunking() not in (None, "contiguous")
        ]
        step = math.lcm(*chunks) if chunks else 1
        self._step = step if step <= _MAX_FLUSH_ROWS else max(chunks)

    def __exit__(self, exc_type, exc, tb) -> None:
        error: BaseException | None = None
        if exc_type is None:
            try:
                self._flush(final=True)
            except BaseException as err:  # noqa: BLE001 - re-raised below after clean-up
                error = err
        if self._ds is not None:
            try:
                self._ds.close()
            except BaseException as err:  # noqa: BLE001
                error = error or (err if exc_type is None else None)
            self._ds = None
        stack, self._stack = self._stack, None
        if stack is None:
            return
        if error is not None:
            stack.__exit__(type(error), error, error.__traceback__)
            raise error
        stack.__exit__(exc_type, exc, tb)

    # -- data
    def write_block(self, block: ReprocessedBlock) -> None:
        """Queue one block; whole chunks are written as soon as they are complete."""
        if self._ds is None:
            raise RuntimeError("use the writer as a context manager")
        n, p = block.stop - block.start, self.info.n_ground_pixel
        if not 0 <= block.start < block.stop <= self.info.n_scanline:
            raise ValueError(
                f"block [{block.start}, {block.stop}) outside the file's {self.info.n_scanline} scanlines"
            )
        a, b = self.rows
        lo, hi = max(block.start, a), min(block.stop, b)
        if lo >= hi:
            log.debug("block [%d, %d) outside the crop [%d, %d)", block.start, block.stop, a, b)
            return
        fields = {}
        for field in self._vars:
            value = getattr(block, field)
            if value is None:  # pm25 requested but absent from this block
                value = np.full((n, p), np.nan, np.float32)
            value = np.asarray(value)
            if value.shape[:2] != (n, p):
                raise ValueError(
                    f"block field {field} has shape {value.shape}, expected ({n}, {p}, ...)"
                )
            fields[field] = value[lo - block.start : hi - block.start]
        if self._pending and self._pending[-1][1] != lo:
            self._flush(final=True)
        self._pending.append((lo, hi, fields))
        self._flush(final=False)

    def _flush(self, *, final: bool) -> None:
        if not self._pending:
            return
        a = self.rows[0]
        start, stop = self._pending[0][0], self._pending[-1][1]
        cut = stop if final else a + ((stop - a) // self._step) * self._step
        if cut <= start:
            return
        merged = {}
        for field, var in self._vars.items():
            parts = [f[field] for _, _, f in self._pending]
            merged[field] = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)
            slab = merged[field][: cut - start]
            finite = np.isfinite(slab)
            rows_with_data = finite.reshape(finite.shape[0], -1).any(axis=1)
            if not rows_with_data.any():
                continue  # all fill: unwritten chunks read back as _FillValue, at no cost
            slab = slab.astype(var.dtype)
            slab[~finite] = var.getncattr("_FillValue")
            _write_chunks_with_data(var, slab, start - a, rows_with_data)
        self._pending = (
            [] if cut == stop else [(cut, stop, {f: d[cut - start :] for f, d in merged.items()})]
        )


def _write_chunks_with_data(var: netCDF4.Variable, slab: np.ndarray, row0: int,
                            rows_with_data: np.ndarray) -> None:
    """Write ``slab`` (rows ``row0..``, chunk-aligned) to ``var[0]``, skipping whole chunk
    rows that hold only fill: HDF5 leaves those chunks unallocated and reads them back as
    the variable's ``_FillValue``, so a mostly-empty orbit costs no compression time."""
    chunking = var.chunking()
    step = chunking[1] if chunking not in (None, "contiguous") else slab.shape[0]
    n = slab.shape[0]
    seg_start = None
    for r in range(0, n, step):
        has = bool(rows_with_data[r : r + step].any())
        if has and seg_start is None:
            seg_start = r
        if not has and seg_start is not None:
            var[0, row0 + seg_start : row0 + r] = slab[seg_start:r]
            seg_start = None
    if seg_start is not None:
        var[0, row0 + seg_start : row0 + n] = slab[seg_start:]

