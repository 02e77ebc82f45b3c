"""``mangrove evidence-package`` writes a participant's package (audited, channel cli) and
refuses others with nothing written; ``mangrove verify-package`` exits 0 intact, 1 naming each
altered file, 2 for a file that is no zip."""

from __future__ import annotations

import json
import zipfile

from utils.audit import entries_of, entry_count
from utils.evidence import first_photo, rewrite

from api.cli import main as cli


def test_a_participant_writes_the_package_and_it_verifies(configured, sessions, case, tmp_path, capsys):
    out = tmp_path / "case.zip"
    assert cli(["evidence-package", str(case.id), "-o", str(out), "--as", "officer-lj"]) == 0
    assert f"{out}: " in capsys.readouterr().out
    with zipfile.ZipFile(out) as z:
        manifest = json.loads(z.read("manifest.json"))
    assert manifest["generated_by"] == "officer-lj" and manifest["case_id"] == case.id
    [entry] = entries_of(sessions, "joint_case.package")
    assert (entry.actor, entry.channel, entry.object_id) == ("officer-lj", "cli", str(case.id))
    assert not list(tmp_path.glob("*.part"))  # no half-written file left behind

    assert cli(["verify-package", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"OK, {len(manifest['files'])} files verified"


def test_who_takes_no_part_gets_no_file_and_no_entry(configured, sessions, case, tmp_path, capsys):
    out = tmp_path / "case.zip"
    before = entry_count(sessions)
    assert cli(["evidence-package", str(case.id), "-o", str(out), "--as", "manager"]) == 2
    assert "only participants of joint case" in capsys.readouterr().err
    assert cli(["evidence-package", "999999", "-o", str(out), "--as", "officer-lj"]) == 2
    assert not out.exists() and not list(tmp_path.iterdir())
    out.write_bytes(b"someone else's file")
    assert cli(["evidence-package", str(case.id), "-o", str(out), "--as", "officer-lj"]) == 2
    assert "exists already" in capsys.readouterr().err and out.read_bytes() == b"someone else's file"
    assert entry_count(sessions) == before


def test_verify_package_exits_1_naming_each_altered_file_and_2_for_no_zip(downloaded, tmp_path, capsys):
    name, data = first_photo(downloaded.path)
    tampered = rewrite(
        downloaded.path,
        tmp_path / "t.zip",
        change={name: data[:-1] + bytes([data[-1] ^ 1])},
        drop={"actions.json"},
        add={"notes.txt": b"added later"},
    )
    assert cli(["verify-package", str(tampered)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"{name}: changed (its SHA-256 or size differs from the manifest)",
        "notes.txt: added (in the zip, not in the manifest)",
        "actions.json: removed (in the manifest, not in the zip)",
    ]
    garbage = tmp_path / "g.zip"
    garbage.write_bytes(b"not a zip")
    assert cli(["verify-package", str(garbage)]) == 2
    assert cli(["verify-package", str(tmp_path / "absent.zip")]) == 2
    assert "not a readable zip file" in capsys.readouterr().err
