"""Errors as a person in a browser reads them: the same answer as the problem+json the API gives
(status, headers, detail), drawn as a page with its title in Chinese and English and a way back.

Only for pages: a request for ``/api/…``, the tiles or static files, or one that does not ask
for HTML (scripts, the field app's outbox, GDAL), keeps the problem+json body.
"""

from __future__ import annotations

import json
from pathlib import Path

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")

STATUS_TITLES: dict[int, tuple[str, str]] = {
    400: ("请求无法处理", "The request cannot be handled"),
    401: ("请先登录", "Please sign in"),
    403: ("无权访问", "You may not open this"),
    404: ("找不到此页面或记录", "Not found"),
    405: ("不支持此操作", "This action is not supported here"),
    409: ("有冲突", "Conflict"),
    413: ("内容太大", "Too large"),
    415: ("不支持此格式", "Format not supported"),
    422: ("输入有误", "Something in the request is not valid"),
    423: ("账号已锁定", "Account locked"),
    429: ("尝试次数过多", "Too many attempts"),
    500: ("服务出错", "Something went wrong on our side"),
    503: ("服务暂时不可用", "The service is briefly unavailable"),
}
HINTS: dict[int, str] = {
    404: "地址可能有误, 或此记录您无权查看。The address may be wrong, or you may not see this record.",
    500: "错误已记录。The error has been logged.",
    503: "请稍后重试, 已保存的内容不会丢失。Try again in a moment; nothing saved is lost.",
}
NOT_PAGES = ("/api/", "/tiles/", "/static/", "/ogc", "/app/sw.js")


def wants_page(request: Request) -> bool:
    path = request.url.path
    return "text/html" in request.headers.get("accept", "") and not path.startswith(NOT_PAGES)


def as_page(request: Request, problem: Response) -> Response:
    """``problem`` (a problem+json response) as an HTML page, same status and headers."""
    body = json.loads(bytes(problem.body))
    status = problem.status_code
    zh, en = STATUS_TITLES.get(status, ("出错", body.get("title") or "Error"))
    headers = {
        k: v for k, v in problem.headers.items() if k.lower() in ("retry-after", "allow", "www-authenticate")
    }
    page = templates.get_template("error.html").render(
        status=status, title_zh=zh, title_en=en, detail=body.get("detail", ""), hint=HINTS.get(status, "")
    )
    return HTMLResponse(page, status_code=status, headers=headers)
