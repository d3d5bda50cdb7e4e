"""The catalogue site: ``/`` (landing), ``/catalogue`` (every loss by family), ``/catalogue/{name}``.

Every page is generated from the registry (``service.catalogue``), so a loss added later gets its
page with no page-writing. The pages are plain HTML built here with ``html.escape`` (a template
engine would be a dependency for a dozen lines of markup); the behaviour lives in
static/catalogue.js: the formula rendered by KaTeX, the curve panel (Vega-Lite through vega-embed,
from ``GET /v1/losses/{name}/curve``) and the playground (``POST /v1/losses/{name}``). Everything
they load is the service's own: the browser libraries are vendored under static/vendor/
(scripts/fetch_site_assets.py) and the Content-Security-Policy allows only this origin.
"""

from __future__ import annotations

import html
import json
import re
from functools import lru_cache
from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from .. import catalogue
from ..engine import all_losses, get_loss
from ..engine import curves
from ..transport.curves import curve_url

STATIC_URL = "/static/site"
VENDOR_URL = f"{STATIC_URL}/vendor"

# Same origin only, and no inline script or style: vega-embed runs with ast: true (Vega's expression
# interpreter instead of new Function, so no 'unsafe-eval') and with its default <style> injections off
# (catalogue.js); KaTeX and Vega's SVG renderer set styles through the CSSOM, which CSP does not restrict.
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; "
                           "img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; "
                           "base-uri 'self'; form-action 'self'; frame-ancestors 'self'")

# The catalogue's families in the order the index shows them; a family not named here comes after them.
FAMILIES = {"keras": "Keras 3", "pytorch": "PyTorch", "other": "Other losses",
            "gradient-boosting": "Gradient-boosting objectives (scikit-learn)"}

SCRIPTS = ("vendor/katex/katex.min.js", "vendor/vega/vega.min.js", "vendor/vega-lite/vega-lite.min.js",
           "vendor/vega-embed/vega-embed.min.js", "catalogue.js")
STYLES = ("vendor/katex/katex.min.css", "catalogue.css")

e = html.escape


page_url = catalogue.page_path


def _page(title: str, body: str, scripts: bool = False) -> HTMLResponse:
    styles = "".join(f'<link rel="stylesheet" href="{STATIC_URL}/{s}">\n' for s in STYLES)
    code = "".join(f'<script src="{STATIC_URL}/{s}" defer></script>\n' for s in SCRIPTS) if scripts else ""
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(title)}</title>
<link rel="icon" href="/static/docs/favicon.png">
{styles}{code}</head>
<body>
<header class="site-header"><nav><a href="/">Loss service</a> <a href="/catalogue">Catalogue</a>
<a href="/docs">API reference (Swagger UI)</a> <a href="/redoc">ReDoc</a></nav></header>
<main>
{body}
</main>
</body>
</html>
"""
    return HTMLResponse(page, headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY})


def landing() -> HTMLResponse:
    count = len(catalogue.entries())
    body = f"""<h1>Loss service</h1>
<p>Machine-learning losses, their per-sample values, gradients and Hessians over HTTP, computed by a
vectorised NumPy engine with analytic derivatives: every Keras 3 loss as Keras computes it, PyTorch's
losses as PyTorch does, scikit-learn's gradient-boosting objectives and more ({count} losses).</p>
<ul class="links">
<li><a href="/catalogue">The catalogue</a>: every loss with its formula, parameters, curves of the loss
and its derivatives, and a playground that computes it as you type.</li>
<li><a href="/docs">The API reference</a> (Swagger UI, every example runnable) and <a href="/redoc">ReDoc</a>.</li>
<li><a href="/openapi.json">The OpenAPI document</a>; <a href="/v1/losses">the catalogue as JSON</a>.</li>
</ul>"""
    return _page("Loss service", body)


def index() -> HTMLResponse:
    by_family: dict[str, list[dict[str, Any]]] = {}
    for entry in catalogue.entries():
        by_family.setdefault(entry["family"], []).append(entry)
    order = [f for f in FAMILIES if f in by_family] + sorted(f for f in by_family if f not in FAMILIES)
    sections = []
    for family in order:
        rows = "".join(
            f'<li data-loss="{e(x["name"])}"><a href="{page_url(x["name"])}"><code>{e(x["name"])}</code></a>'
            f' <span class="summary">{e(x["summary"])}</span></li>\n' for x in by_family[family])
        sections.append(f'<section class="family" id="family-{e(family)}" data-family="{e(family)}">\n'
                        f'<h2>{e(FAMILIES.get(family, family))} <small>({len(by_family[family])})</small></h2>\n'
                        f'<ul class="losses">\n{rows}</ul>\n</section>')
    body = ("<h1>Loss catalogue</h1>\n<p>Every loss the service computes, by family. Each page has the formula, "
            "the parameters, the curves of the loss and its derivatives, and a playground.</p>\n" + "\n".join(sections))
    return _page("Loss catalogue", body)


# References: a value that is a URL links to itself; a dotted name of a framework whose documentation
# has a predictable address links there; anything else (a paper, a note) is shown as text.
_ARXIV = re.compile(r"arXiv:(\d{4}\.\d{4,5})")


def reference_url(value: str) -> str | None:
    if value.startswith("https://"):
        return value
    first = value.split()[0]
    if first.startswith("torch.nn.") and re.fullmatch(r"torch\.nn\.[A-Za-z0-9]+", first):
        return f"https://pytorch.org/docs/stable/generated/{first}.html"
    if first.startswith("keras.losses."):
        return "https://keras.io/api/losses/"
    if first.startswith("optax.losses.") and re.fullmatch(r"optax\.losses\.\w+", first):
        return f"https://optax.readthedocs.io/en/latest/api/losses.html#{first}"
    if first.startswith("sklearn.metrics.") and re.fullmatch(r"sklearn\.metrics\.\w+", first):
        return f"https://scikit-learn.org/stable/modules/generated/{first}.html"
    arxiv = _ARXIV.search(value)
    if arxiv:
        return f"https://arxiv.org/abs/{arxiv.group(1)}"
    return None


def _references(references: dict[str, str | None]) -> str:
    items = []
    for key, value in references.items():
        if not value:
            continue
        url = reference_url(value)
        shown = f'<a href="{e(url)}" rel="noreferrer">{e(value)}</a>' if url else e(value)
        items.append(f"<dt>{e(key)}</dt><dd>{shown}</dd>")
    return f"<dl class=\"references\">{''.join(items)}</dl>" if items else "<p>None recorded.</p>"


def _json_block(value: Any) -> str:
    return f"<pre class=\"json\">{e(json.dumps(value, indent=2))}</pre>"


def _parameters(params: list[dict[str, Any]]) -> str:
    if not params:
        return "<p>None.</p>"
    rows = "".join(
        f'<tr data-param="{e(p["name"])}"><td><code>{e(p["name"])}</code></td><td>{e(p["type"])}</td>'
        f'<td><code>{e(json.dumps(p["default"]))}</code></td><td>{e(p["constraints"] or "")}</td>'
        f'<td>{e(p["description"])}</td></tr>\n' for p in params)
    return ("<table class=\"params\"><thead><tr><th>name</th><th>type</th><th>default</th><th>constraints</th>"
            f"<th>description</th></tr></thead>\n<tbody>\n{rows}</tbody></table>")


def _examples(examples: list[dict[str, Any]]) -> str:
    if not examples:
        return "<p>None stored.</p>"
    return "\n".join(f'<div class="example"><h3>Example {i}</h3><h4>Request</h4>{_json_block(x["request"])}'
                     f'<h4>Response</h4>{_json_block(x["response"])}</div>' for i, x in enumerate(examples, 1))


@lru_cache
def overlay_kinds() -> dict[str, str]:
    """Each loss's axis kind at its defaults (overlaid losses are drawn at their defaults): the page's overlay
    picker offers the losses whose kind equals the main loss's current one, which the curve JSON gives."""
    return {loss.name: curves.axis_of(loss, {p.name: p.default for p in loss.params})["kind"] for loss in all_losses()}


def loss_page(name: str) -> Response:
    loss = get_loss(name)  # an unknown name raises UnknownLoss: the problem handler's 404 with suggestions
    if loss.name != name:
        return RedirectResponse(page_url(loss.name), status_code=308)
    d = catalogue.detail(loss.name)
    svg, data_url, spec = (curve_url(loss, {}, fmt) for fmt in ("svg", "json", "vega-lite"))  # at the defaults
    hessian = "yes" if d["hessian"] else f"no: {d['without_hessian'] or 'not offered'}"
    aliases = ", ".join(f"<code>{e(a)}</code>" for a in d["aliases"]) or "none"
    # the page's data for catalogue.js; "<" escaped so no string can close the <script> element
    data = json.dumps({**d, "overlay_kinds": overlay_kinds()}).replace("<", "\\u003c")
    body = f"""<article class="loss" data-loss="{e(loss.name)}">
<h1><code>{e(loss.name)}</code></h1>
<p class="summary">{e(d["summary"])}</p>
<p class="meta">Family: <a href="/catalogue#family-{e(d["family"])}">{e(FAMILIES.get(d["family"], d["family"]))}</a>
· group: {e(d["group"])} · aliases: {aliases}</p>

<section id="formula"><h2>Formula</h2>
<div class="formula"><div class="formula-rendered" aria-hidden="true"></div>
<code class="tex-source">{e(d["formula"])}</code></div></section>

<section id="parameters"><h2>Parameters</h2>{_parameters(d["params"])}</section>

<section id="domains"><h2>Inputs and outputs</h2><dl>
<dt><code>y_true</code></dt><dd>{e(d["y_true"])}</dd>
<dt><code>y_pred</code></dt><dd>{e(d["y_pred"])}</dd>
<dt><code>per_sample</code></dt><dd>{e(d["per_sample"])}</dd>
<dt>reductions</dt><dd>{", ".join(f"<code>{e(r)}</code>" for r in d["reductions"])} (default
<code>{e(d["default_reduction"])}</code>)</dd>
<dt>gradient</dt><dd>{"analytic" if d["differentiable"] else "none: not differentiable"}</dd>
<dt>Hessian diagonal</dt><dd>{e(hessian)}</dd>
<dt>work</dt><dd>{e(d["work"])}</dd></dl>
{f'<p class="notes">{e(d["notes"])}</p>' if d["notes"] else ""}</section>

<section id="curve"><h2>Curves</h2>
<p class="axis-doc" id="curve-axis"></p>
<form id="curve-controls" class="controls" autocomplete="off"></form>
<fieldset id="curve-overlay" class="overlay"><legend>Overlay losses on the same axis</legend>
<div class="choices"></div></fieldset>
<div id="curve-plot" class="plot"></div>
<p class="problem" id="curve-problem" hidden></p>
<noscript><img src="{e(svg)}" alt="The loss, gradient and Hessian of {e(loss.name)}"></noscript>
<p class="downloads">The same curves as <a href="{e(svg)}">SVG</a>,
<a href="{e(data_url)}">JSON</a> and <a href="{e(spec)}">a Vega-Lite spec</a>.</p></section>

<section id="playground"><h2>Playground</h2>
<p>Edit the request; the service recomputes it as you type.</p>
<form id="playground-form" class="playground" autocomplete="off">
<label>y_true <textarea name="y_true" rows="3" spellcheck="false"></textarea></label>
<label>y_pred <textarea name="y_pred" rows="3" spellcheck="false"></textarea></label>
<label>sample_weight (optional) <textarea name="sample_weight" rows="1" spellcheck="false"></textarea></label>
<div class="params" id="playground-params"></div>
<label>reduction <select name="reduction"></select></label>
</form>
<div class="result"><p>loss: <output id="playground-loss"></output></p>
<p class="problem" id="playground-problem" hidden></p>
<pre id="playground-result" class="json"></pre></div>
<p class="copy"><button type="button" data-copy="curl">Copy as curl</button>
<button type="button" data-copy="python">Copy as Python</button>
<button type="button" data-copy="javascript">Copy as JavaScript</button></p>
<pre id="copy-output" class="code"></pre></section>

<section id="references"><h2>References</h2>{_references(d["references"])}</section>
<section id="examples"><h2>Stored examples</h2>
<p>Each is replayed against the service by its tests: the response is what it answers.</p>
{_examples(d["examples"])}</section>
</article>
<script type="application/json" id="loss-data">{data}</script>"""
    return _page(f"{loss.name} · Loss catalogue", body, scripts=True)


def install(app: FastAPI) -> None:
    app.mount(STATIC_URL, StaticFiles(packages=[("service.api", "static")]), name="site-static")

    @app.get("/", include_in_schema=False)
    async def home() -> HTMLResponse:
        return landing()

    @app.get("/catalogue", include_in_schema=False)
    async def catalogue_index() -> HTMLResponse:
        return index()

    @app.get("/catalogue/{name}", include_in_schema=False)
    async def catalogue_page(name: str) -> Response:
        return loss_page(name)
