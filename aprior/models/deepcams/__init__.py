"""DeepCAMS (Xiao et al.): temporal (3 h -> 1 h) and spatial (0.75 -> 0.25 degree) downscaling.

Networks and grids (light to import one by one):

- :mod:`~aprior.models.deepcams.grid`: the 0.75/0.25 degree node grids, periodic
  longitude, bicubic and area-conserving upsampling, coarsening, periodic warping.
- :mod:`~aprior.models.deepcams.temporal`: :class:`TemporalNet` (after XVFI),
  ``temporal_loss``, ``interpolate_frames``.
- :mod:`~aprior.models.deepcams.spatial`: :class:`SpatialNet` (after ABPN),
  ``spatial_loss``, ``upscale_nodes``.

Data, training and downscaling live in ``data``, ``training`` and ``downscale``.
"""
