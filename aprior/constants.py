"""Physical constants used across aprior (SI units unless stated).

Values: CODATA 2018 (exact SI defining constants for N_A and R), the conventional standard
gravity, the molar mass of dry air of the U.S. Standard Atmosphere 1976 and the molar mass
of NO2 (14.0067 + 2 x 15.9994 g mol-1).
"""

from __future__ import annotations

#: Avogadro constant (mol-1).
N_A = 6.02214076e23

#: Molar gas constant (J mol-1 K-1).
R_GAS = 8.314462618

#: Standard acceleration of gravity (m s-2), used as a constant through the column.
G0 = 9.80665

#: Molar mass of dry air (kg mol-1).
M_AIR = 0.0289644

#: Specific gas constant of dry air, R_GAS / M_AIR (J kg-1 K-1), about 287.05.
R_DRY = R_GAS / M_AIR

#: Molar mass of NO2 (g mol-1).
M_NO2 = 46.0055

#: Factor from a column in mol m-2 to molecules cm-2 (N_A / 1e4).
MOL_M2_TO_MOLEC_CM2 = N_A * 1e-4

__all__ = ["G0", "MOL_M2_TO_MOLEC_CM2", "M_AIR", "M_NO2", "N_A", "R_DRY", "R_GAS"]
