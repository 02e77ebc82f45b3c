"""What the service hands the field app: an installable shell (page, manifest, icons, service
worker) that runs under a strict policy, and a worker that knows exactly which files to keep."""

from __future__ import annotations

import io
import json
import re

from PIL import Image

from api import fieldapp


def test_the_page_is_the_app_shell_under_a_policy_that_allows_its_worker(client):
    page = client.get("/app/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "worker-src 'self'" in policy and "manifest-src 'self'" in policy
    assert "unsafe-inline" not in policy
    html = page.text
    # No inline code: every script is a file, every style a stylesheet.
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
    assert " style=" not in html and "<style" not in html
    assert 'lang="zh-CN"' in html and '<link rel="manifest" href="/app/manifest.webmanifest">' in html
    # Nothing from another host: a station may have no internet.
    assert not re.search(r"(src|href)=\"https?://", html)
    assert client.get("/app", follow_redirects=False).headers["location"] == "/app/"


def test_the_manifest_makes_it_installable_with_icons_that_exist(client):
    response = client.get("/app/manifest.webmanifest")
    assert response.headers["content-type"].startswith("application/manifest+json")
    manifest = json.loads(response.text)
    assert manifest["start_url"] == manifest["scope"] == "/app/"
    assert manifest["display"] == "standalone" and manifest["lang"] == "zh-CN"
    assert manifest["name"].startswith("红树林巡护")
    sizes = set()
    for icon in manifest["icons"]:
        answer = client.get(icon["src"])
        assert answer.status_code == 200 and answer.headers["content-type"] == icon["type"]
        if icon["type"] == "image/png":
            width, height = Image.open(io.BytesIO(answer.content)).size
            assert icon["sizes"] == f"{width}x{height}"
            sizes.add(width)
    assert {192, 512} <= sizes  # what browsers require to offer installing


def test_the_worker_keeps_every_shell_file_and_names_its_cache_by_their_content(client):
    worker = client.get("/app/sw.js")
    assert worker.headers["content-type"].startswith("text/javascript")
    assert worker.headers["cache-control"] == "no-cache"  # a new release is noticed on the next visit
    # The worker's own policy lets it fetch from the service (a page policy would not apply to it).
    assert "connect-src 'self'" in worker.headers["content-security-policy"]
    version = re.search(r'const VERSION = "([0-9a-f]{16})";', worker.text).group(1)
    shell = json.loads(re.search(r"const SHELL = (\[.*?\]);", worker.text).group(1))
    assert version == fieldapp.shell_version()
    assert "/app/" in shell and "/static/maps/vendor/leaflet/leaflet.js" in shell
    for url in shell:
        assert client.get(url).status_code == 200, url
    # Every script the page loads is kept, so it opens offline.
    page = client.get("/app/").text
    for ref in re.findall(r'(?:src|href)="(/(?:app|static)/[^"]+)"', page):
        assert ref in shell, f"{ref} is loaded by the page but not kept by the worker"


def test_the_cache_name_changes_when_a_shell_file_changes(tmp_path, monkeypatch):
    copy = tmp_path / "static"
    import shutil

    shutil.copytree(fieldapp.STATIC, copy)
    monkeypatch.setattr(fieldapp, "STATIC", copy)
    fieldapp.shell_version.cache_clear()
    before = fieldapp.shell_version()
    (copy / "app.js").write_text((copy / "app.js").read_text() + "\n// a new release\n")
    fieldapp.shell_version.cache_clear()
    try:
        assert fieldapp.shell_version() != before
    finally:
        fieldapp.shell_version.cache_clear()


def test_only_the_shells_files_are_served(client):
    for path in ("/app/../api/app.py", "/app/sw.js.map", "/app/icons/missing.png", "/app/secret.key"):
        response = client.get(path)
        assert response.status_code == 404, path
        if response.headers["content-type"].startswith("application/problem+json"):
            assert response.json()["status"] == 404


def test_the_shell_travels_compressed(client):
    for path in ("/app/", "/app/app.js", "/static/maps/vendor/leaflet/leaflet.js"):
        response = client.get(path, headers={"Accept-Encoding": "gzip"})
        assert response.headers.get("content-encoding") == "gzip", path
