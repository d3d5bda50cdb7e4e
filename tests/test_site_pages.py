"""The catalogue site's pages without a browser (service/api/site.py): what each page says, the
redirects and problems, the Content-Security-Policy, that nothing names another origin as a
resource, and that the vendored browser assets are the bytes their MANIFEST records.
tests/test_catalogue_site.py drives the same pages in Chromium."""

from __future__ import annotations

import asyncio
import hashlib
import html
import json
import re
from html.parser import HTMLParser
from urllib.parse import quote

import httpx
import pytest

from service import catalogue
from service.api import site
from service.engine import all_losses

from .conftest import REPO, assert_problem, make_client


STATIC = REPO / "service" / "api" / "static"
VENDOR = STATIC / "vendor"


class Resources(HTMLParser):
    """The URLs a page makes the browser load (scripts, stylesheets, images, frames) and its links."""

    def __init__(self) -> None:
        super().__init__()
        self.loaded: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        elif tag in ("script", "img", "iframe", "source", "embed") and a.get("src"):
            self.loaded.append(a["src"])
        elif tag == "link" and a.get("href"):
            self.loaded.append(a["href"])
        if a.get("style"):
            self.loaded += re.findall(r"url\(([^)]*)\)", a["style"])


def resources(text: str) -> Resources:
    parser = Resources()
    parser.feed(text)
    return parser


@pytest.fixture(scope="module")
def pages() -> dict[str, httpx.Response]:
    """Every page of the site, fetched once: {path: response}."""
    async def fetch() -> dict[str, httpx.Response]:
        async with make_client() as client:
            paths = ["/", "/catalogue"] + [site.page_url(loss.name) for loss in all_losses()]
            return {path: await client.get(path) for path in paths}
    return asyncio.run(fetch())


def test_every_loss_page_shows_its_registry_entry(pages):
    for loss in all_losses():
        response = pages[site.page_url(loss.name)]
        assert response.status_code == 200, loss.name
        text = response.text
        entry = catalogue.detail(loss.name)
        assert f"<h1><code>{html.escape(loss.name)}</code></h1>" in text
        assert html.escape(entry["formula"]) in text, f"{loss.name}: the raw TeX is not in the page"
        assert html.escape(entry["summary"]) in text
        for param in entry["params"]:
            assert f'data-param="{param["name"]}"' in text, (loss.name, param["name"])
        for value in filter(None, entry["references"].values()):
            assert html.escape(value) in text, (loss.name, value)
            url = site.reference_url(value)
            if url is not None:
                assert f'href="{html.escape(url)}"' in text, (loss.name, url)
        for example in entry["examples"]:
            assert html.escape(json.dumps(example["response"], indent=2)) in text, loss.name
        # the page's data for catalogue.js is the catalogue's own detail
        data = re.search(r'<script type="application/json" id="loss-data">(.*?)</script>', text, re.S).group(1)
        assert json.loads(data)["name"] == loss.name and json.loads(data)["params"] == entry["params"]


def test_references_link_to_the_frameworks_documentation():
    assert site.reference_url("torch.nn.HuberLoss") == \
        "https://pytorch.org/docs/stable/generated/torch.nn.HuberLoss.html"
    assert site.reference_url("optax.losses.huber_loss").endswith("losses.html#optax.losses.huber_loss")
    assert site.reference_url("Sun et al. 2020, Circle Loss (arXiv:2002.10857)") == "https://arxiv.org/abs/2002.10857"
    assert site.reference_url("Koenker & Bassett 1978, Regression Quantiles") is None
    linked = sum(site.reference_url(v) is not None for x in catalogue.entries() for v in x["references"].values() if v)
    assert linked >= len(all_losses()), "most losses should link to a framework's documentation"


def test_the_index_lists_every_loss_under_its_family(pages):
    text = pages["/catalogue"].text
    sections = dict(re.findall(r'<section class="family" id="family-[^"]+" data-family="([^"]+)">(.*?)</section>',
                               text, re.S))
    assert list(sections) == ["keras", "pytorch", "other", "gradient-boosting"]
    for loss in all_losses():
        family = loss.describe()["family"]
        assert f'href="{site.page_url(loss.name)}"' in sections[family], (loss.name, family)
        for other, body in sections.items():
            if other != family:
                assert f'data-loss="{html.escape(loss.name)}"' not in body, (loss.name, other)


def test_the_landing_page_links_the_catalogue_and_the_docs(pages):
    links = resources(pages["/"].text).links
    assert {"/catalogue", "/docs", "/redoc"} <= set(links)


@pytest.mark.anyio
async def test_an_alias_redirects_to_the_canonical_page():
    async with make_client() as client:
        for alias, canonical in (("Huber", "huber"), ("bce", "binary_crossentropy"),
                                 ("torch.nn.L1Loss", "torch.l1_loss")):
            response = await client.get(f"/catalogue/{quote(alias)}")
            assert response.status_code == 308, alias
            assert response.headers["location"] == site.page_url(canonical)
            assert (await client.get(response.headers["location"])).status_code == 200


@pytest.mark.anyio
async def test_an_unknown_loss_is_a_404_problem_with_suggestions():
    async with make_client() as client:
        body = assert_problem(await client.get("/catalogue/hubber"), 404)
    assert "huber" in body["suggestions"] and "hubber" in body["detail"]


def test_every_page_has_the_same_origin_policy(pages):
    for path, response in pages.items():
        assert response.headers["content-security-policy"] == site.CONTENT_SECURITY_POLICY, path
    directives = dict(part.strip().split(" ", 1) for part in site.CONTENT_SECURITY_POLICY.split(";"))
    assert directives["default-src"] == "'self'" and directives["script-src"] == "'self'"
    assert directives["connect-src"] == "'self'" and directives["font-src"] == "'self'"
    for sources in directives.values():
        assert set(sources.split()) <= {"'self'", "'none'", "'unsafe-inline'", "data:"}, sources


@pytest.mark.anyio
async def test_pages_load_only_same_origin_resources_and_they_exist(pages):
    loaded = set()
    for path, response in pages.items():
        found = resources(response.text)
        for url in found.loaded:
            assert url.startswith("/") and not url.startswith("//"), (path, url)
        # a link may lead to a framework's documentation; nothing else in the page names another host
        text = response.text
        for url in found.links:
            text = text.replace(html.escape(url), "")
        assert not re.search(r"(?i)\b(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text), path
        loaded |= set(found.loaded)
    async with make_client() as client:
        for url in sorted(loaded):
            assert (await client.get(url)).status_code == 200, url


def test_the_site_script_and_style_name_no_other_origin():
    for name in ("catalogue.js", "catalogue.css"):
        text = (STATIC / name).read_text(encoding="utf-8")
        text = text.replace("window.location.origin", "")  # the page's own origin, for the copied requests
        assert not re.search(r"(?i)(https?:)?//[a-z0-9-]+\.[a-z0-9.-]+", text), name


@pytest.mark.anyio
async def test_katex_css_fonts_are_all_vendored():
    css = (VENDOR / "katex" / "katex.min.css").read_text(encoding="utf-8")
    fonts = re.findall(r"url\(([^)]+)\)", css)
    assert fonts and all(f.startswith("fonts/") for f in fonts), fonts[:3]
    async with make_client() as client:
        for font in set(fonts):
            assert (await client.get(f"{site.VENDOR_URL}/katex/{font}")).status_code == 200, font


def test_vendored_files_match_their_manifest():
    manifest = json.loads((VENDOR / "MANIFEST.json").read_text(encoding="utf-8"))
    listed = {}
    for package in manifest["packages"]:
        assert package["license"] in {"MIT", "BSD-3-Clause"}, package["name"]
        assert package["tarball"].startswith("https://registry.npmjs.org/"), package["name"]
        assert package["integrity"].startswith("sha512-"), package["name"]
        assert f"{package['name']}/LICENSE" in package["files"], f"{package['name']}'s licence must travel with it"
        listed |= package["files"]
    on_disk = {p.relative_to(VENDOR).as_posix() for p in VENDOR.rglob("*") if p.is_file()} - {"MANIFEST.json"}
    assert on_disk == set(listed), on_disk ^ set(listed)
    for path, sha256 in listed.items():
        assert hashlib.sha256((VENDOR / path).read_bytes()).hexdigest() == sha256, path
    names = {p["name"]: p["version"] for p in manifest["packages"]}
    assert names["vega"].startswith("6.") and names["vega-lite"].startswith("6.")
    assert names["vega-embed"].startswith("7.")
    assert tuple(int(x) for x in names["katex"].split(".")) >= (0, 16, 0)


def test_every_page_script_is_vendored_or_ours():
    for script in site.SCRIPTS + site.STYLES:
        assert (STATIC / script).is_file(), script


@pytest.mark.anyio
async def test_docs_link_every_loss_to_its_catalogue_page():
    async with make_client() as client:
        spec = (await client.get("/openapi.json")).json()
    post = spec["paths"]["/v1/losses/{name}"]["post"]
    body = post["requestBody"]["content"]["application/json"]["examples"]
    (name,) = [p for p in post["parameters"] if p["name"] == "name"]
    for loss in all_losses():
        link = f"(/catalogue/{quote(loss.name, safe='')})"
        assert link in body[loss.name]["description"], loss.name
        assert link in name["examples"][loss.name]["description"], loss.name
    assert "(/catalogue)" in spec["info"]["description"]


def test_package_data_ships_the_site_assets():
    import tomllib

    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = pyproject["tool"]["setuptools"]["package-data"]
    shipped = {p.relative_to(REPO / "service").as_posix() for pattern in patterns["service"]
               for p in (REPO / "service").glob(pattern) if p.is_file()}
    for path in [*(f"api/static/{s}" for s in site.SCRIPTS + site.STYLES), "api/static/vendor/MANIFEST.json",
                 "api/static/vendor/katex/fonts/KaTeX_Main-Regular.woff2"]:
        assert path in shipped, path
