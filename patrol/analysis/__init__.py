"""Work ahead of complaints (未诉先办): what the stored patrols and incidents say about where and
when to patrol next.

- ``scope``: the period and the area an analysis covers, checked once (caps, visibility);
- ``data``: loading incidents, effort and grids for a scope into columnar frames (metres);
- ``rates``: encounter rates per grid and category with Poisson intervals;
- ``hotspots``: incidents on a metric cell grid, Getis-Ord Gi* with a false-discovery-rate
  correction, and kernel density;
- ``recurring``: the same kind of incident coming back to the same place month after month;
- ``quotas``, ``priorities``, ``assessment``: per-grid quotas, next week's ranking, 考核.

The statistics (rates, hotspots, recurring) are pure functions of frames and arrays; only ``data``,
``quotas``, ``priorities`` and ``assessment`` touch the database.
"""
