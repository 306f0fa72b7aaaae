"""The engine: named derivative rules (``rules``), the chain rule over ``define`` (``chain``),
simplification (``simplify``) and the componentwise method (``componentwise``)."""
