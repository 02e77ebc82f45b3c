"""The evidence package of a joint case: one zip a participant hands to prosecutors or to the
other province, and the check that it arrived as it was made.

Contents (``package.write_package``): ``summary.html`` and ``summary.pdf`` (the case in Chinese and
English), ``map.html`` (the joint map of the case, every library inlined: it opens offline),
``incidents.geojson`` / ``.csv`` / ``.kml``, ``photos/<incident>-<photo>.<ext>`` (the stored files,
byte for byte), ``actions.json`` / ``.csv`` (the five-joint log) and ``manifest.json``: the path,
size and SHA-256 of every other file, the case, when, by whom and by which version of the
service it was made. ``verify.verify_package`` names every file changed, added or removed.
"""
