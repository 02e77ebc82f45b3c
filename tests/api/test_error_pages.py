"""A person who opens a wrong address or a page they may not see gets a page in Chinese and English
(same status and headers as the API's problem+json); the API, tiles and scripts keep problem+json."""

import pytest
from utils.factories import add_users, sign_in

HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def test_a_wrong_address_in_a_browser_is_a_bilingual_page(client):
    answer = client.get("/incidnets/12", headers=HTML)
    assert answer.status_code == 404 and answer.headers["content-type"].startswith("text/html")
    assert "找不到此页面或记录 Not found" in answer.text and 'href="/"' in answer.text
    assert "default-src" in answer.headers["content-security-policy"]  # the pages' policy applies


def test_scripts_and_the_api_keep_problem_json(client):
    for path, headers in (("/incidnets/12", {"Accept": "application/json"}), ("/api/v1/nowhere", HTML)):
        answer = client.get(path, headers=headers)
        assert answer.status_code == 404
        assert answer.headers["content-type"] == "application/problem+json", path


def test_a_method_the_page_does_not_take_keeps_its_allow_header(client):
    answer = client.put("/login", headers=HTML)
    assert answer.status_code == 405 and "GET" in answer.headers["allow"]
    assert "不支持此操作" in answer.text


@pytest.mark.parametrize("path", ["/maps/joint", "/maps/replay/patrol/999999"])
def test_a_map_refused_says_why_in_both_languages(client, sessions, path):
    add_users(sessions, "member")
    sign_in(client, "member")
    answer = client.get(path, headers=HTML)
    assert answer.status_code in (403, 404)
    assert ("无权访问 You may not open this" in answer.text) or (
        "找不到此页面或记录 Not found" in answer.text
    )
    assert "无法显示地图 The map cannot be shown" in answer.text
