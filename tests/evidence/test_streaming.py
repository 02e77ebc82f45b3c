"""A package is written and checked as streams: a large photo passes through in chunks, never
whole in memory (photos may be up to the upload limit each, ten per incident)."""

from __future__ import annotations

import json
import os
import tracemalloc
import zipfile
from datetime import UTC, datetime

from patrol.evidence.package import _Writer
from patrol.evidence.verify import FORMAT, verify_package

SIZE = 48 * 1024 * 1024


def test_a_large_photo_is_copied_into_the_zip_and_verified_in_chunks(tmp_path):
    photo = tmp_path / "big.jpg"
    with photo.open("wb") as f:
        for _ in range(SIZE // (1 << 20)):
            f.write(os.urandom(1 << 20))
    package = tmp_path / "case.zip"
    tracemalloc.start()
    try:
        with package.open("wb") as f:
            writer = _Writer(f, datetime.now(UTC))
            with writer.zip:
                writer.add_file("photos/1-1.jpg", photo)
                manifest = {"format": FORMAT, "files": list(writer.files)}
                writer.add_bytes("manifest.json", json.dumps(manifest).encode())
        _, written_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        report = verify_package(package)
        _, verify_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.ok and report.verified == 1, report.problems()
    with zipfile.ZipFile(package) as z:
        assert z.getinfo("photos/1-1.jpg").file_size == SIZE
    # A few chunks of 1 MiB at most, against 48 MiB held whole.
    assert written_peak < 8 * 1024 * 1024, written_peak
    assert verify_peak < 8 * 1024 * 1024, verify_peak
