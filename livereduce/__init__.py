"""livereduce: live data reduction for neutron scattering beamlines."""

from livereduce.script_parameters import ActiveParameters

__version__ = "0.1.0"

# what scripts read as `livereduce.parameters["key"]`: the running session's parameters (script_parameters.py)
parameters = ActiveParameters()
