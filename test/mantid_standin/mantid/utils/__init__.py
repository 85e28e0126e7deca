"""STAND-IN for `mantid.utils` (livereduce's tests only; not Mantid)."""
