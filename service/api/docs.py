"""/docs and /redoc that work with no internet access: every asset is served by the service.

The Swagger UI and ReDoc bundles come from the fastapi-offline package; FastAPI's defaults would
load them from a CDN, and ReDoc would also pull Google Fonts. Our own script (static/, beside this
file, served from the same URL) starts Swagger UI with the plugin that pairs the examples of
``POST /v1/losses/{name}``'s ``name`` with its body's (service/api/doc_examples.py).

Both pages are sent with a Content-Security-Policy that allows only the service's own origin: ReDoc
2.5 shows a logo from cdn.redoc.ly that no option turns off (the browser now refuses it and ReDoc
hides the image), and nothing a future bundle adds can reach the internet either.
"""

from __future__ import annotations

import html
import json
from importlib.resources import files

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_oauth2_redirect_html, swagger_ui_default_parameters
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC_URL = "/static/docs"
SCRIPT = "loss-service-docs.js"

# Inline styles: ReDoc's styled-components and React's style attributes; blob: workers: ReDoc's search.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                           "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
                           "worker-src 'self' blob:; object-src 'none'; base-uri 'self'; form-action 'self'")

_SWAGGER_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link type="text/css" rel="stylesheet" href="{static}/swagger-ui.css">
<link rel="icon" href="{static}/favicon.png">
<title>{title}</title>
</head>
<body>
<div id="swagger-ui"></div>
<script id="swagger-ui-config" type="application/json">{config}</script>
<script src="{static}/swagger-ui-bundle.js"></script>
<script src="{static}/{script}"></script>
</body>
</html>
"""


def swagger_page(title: str, openapi_url: str, oauth2_redirect_url: str | None) -> HTMLResponse:
    config = {**swagger_ui_default_parameters, "url": openapi_url, "defaultModelsExpandDepth": 0,
              "tryItOutEnabled": True, "validatorUrl": None, "oauth2RedirectUrl": oauth2_redirect_url}
    # "<" escaped: the JSON sits in a <script> element, which "</script>" would end
    page = _SWAGGER_PAGE.format(static=STATIC_URL, script=SCRIPT, title=html.escape(title),
                                config=json.dumps(config).replace("<", "\\u003c"))
    return HTMLResponse(page, headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY})


def install(app: FastAPI) -> None:
    app.mount(STATIC_URL, StaticFiles(directory=str(files("fastapi_offline") / "static"),
                                      packages=[("service.api", "static")]), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return swagger_page(f"{app.title} - Swagger UI", app.openapi_url, app.swagger_ui_oauth2_redirect_url)

    @app.get(app.swagger_ui_oauth2_redirect_url, include_in_schema=False)
    async def swagger_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        page = get_redoc_html(openapi_url=app.openapi_url, title=f"{app.title} - ReDoc",
                              redoc_js_url=f"{STATIC_URL}/redoc.standalone.js",
                              redoc_favicon_url=f"{STATIC_URL}/favicon.png", with_google_fonts=False)
        page.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        return page
