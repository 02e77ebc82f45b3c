"""Spatial foundation that knows nothing of patrols: CRSs, readers, validation, reference geodata."""
