"""livereduce: live data reduction for neutron scattering beamlines."""

__version__ = "0.1.0"
