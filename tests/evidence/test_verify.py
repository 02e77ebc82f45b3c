"""Checking a package received: intact, every file verified; a photo with one byte changed, a file
added, a file removed, a manifest missing or unreadable — each said naming the file; names that
climb out of a folder refused unread; a file that is no zip said to be unreadable."""

from __future__ import annotations

import hashlib
import json

import pytest
from utils.evidence import first_photo, manifest_of, rewrite

from patrol.evidence.verify import verify_package


def test_an_intact_package_has_every_file_verified(downloaded):
    report = verify_package(downloaded.path)
    assert report.ok, report.problems()
    assert report.verified == len(manifest_of(downloaded.path)["files"]) == 8 + 3


def test_a_photo_with_one_byte_changed_is_named(downloaded, tmp_path):
    name, data = first_photo(downloaded.path)
    tampered = data[:100] + bytes([data[100] ^ 0x01]) + data[101:]  # same size, one bit
    report = verify_package(rewrite(downloaded.path, tmp_path / "t.zip", change={name: tampered}))
    assert not report.ok and report.changed == [name] and not (report.added or report.removed)
    assert any(line.startswith(f"{name}: changed") for line in report.problems())


def test_a_file_added_and_a_file_removed_are_named(downloaded, tmp_path):
    name, _ = first_photo(downloaded.path)
    added = verify_package(rewrite(downloaded.path, tmp_path / "a.zip", add={"photos/extra.jpg": b"x"}))
    assert added.added == ["photos/extra.jpg"] and not (added.changed or added.removed)
    removed = verify_package(rewrite(downloaded.path, tmp_path / "r.zip", drop={name, "actions.csv"}))
    assert removed.removed == sorted([name, "actions.csv"]) and not (removed.changed or removed.added)
    assert f"{name}: removed (in the manifest, not in the zip)" in removed.problems()


@pytest.mark.parametrize("manifest", [None, b"{not json", b'{"format": "something else", "files": []}'])
def test_a_missing_or_unreadable_manifest_is_said(downloaded, tmp_path, manifest):
    copy = tmp_path / "m.zip"
    if manifest is None:
        rewrite(downloaded.path, copy, drop={"manifest.json"})
    else:
        rewrite(downloaded.path, copy, change={"manifest.json": manifest})
    report = verify_package(copy)
    assert not report.ok and report.readable
    assert report.problems()[0].startswith(
        "manifest.json: " + ("missing" if manifest is None else "unreadable")
    )


@pytest.mark.parametrize(
    "name", ["../evil.txt", "photos/../../evil.txt", "/etc/evil.txt", "photos\\..\\evil"]
)
def test_names_that_climb_out_are_refused_even_when_listed_with_their_hash(downloaded, tmp_path, name):
    manifest = manifest_of(downloaded.path)
    manifest["files"].append({"path": name, "size": 4, "sha256": hashlib.sha256(b"evil").hexdigest()})
    body = json.dumps(manifest).encode()
    report = verify_package(
        rewrite(downloaded.path, tmp_path / "p.zip", change={"manifest.json": body}, add={name: b"evil"})
    )
    assert not report.ok and report.unsafe == [name]
    assert f"{name}: refused, the name could point outside the package" in report.problems()


def test_a_file_that_is_no_zip_is_unreadable(tmp_path):
    not_zip = tmp_path / "case.zip"
    not_zip.write_bytes(b"PK\x03\x04 but nothing after")
    for path in (not_zip, tmp_path / "absent.zip"):
        report = verify_package(path)
        assert not report.readable and not report.ok
        assert report.problems() == [f"{path}: not a readable zip file"]
