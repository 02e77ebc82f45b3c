"""Feature collections for OGC API – Features: what is published, who may read it, CQL2 filters."""
