"""Vendor the catalogue site's browser assets (KaTeX, Vega, Vega-Lite, vega-embed) from the npm registry.

The catalogue pages (service/api/site.py) must work with no internet access, so the few files they
load are committed under service/api/static/vendor/ and served by the service itself. This script
is how they got there and how to refresh them:

    python scripts/fetch_site_assets.py            # the pinned versions below
    python scripts/fetch_site_assets.py --latest   # the newest release inside each allowed major

For each package it reads the registry's metadata for the version, downloads the tarball, checks it
against the registry's ``dist.integrity`` (sha512, Subresource-Integrity form) before extracting a
single byte, copies the files the site needs plus the package's LICENSE, and writes MANIFEST.json
(name, version, licence, tarball URL, integrity, and the sha256 of every vendored file), which
tests/test_site_pages.py checks against the files. Standard library only: it runs before any venv.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import re
import shutil
import sys
import tarfile
import urllib.parse
import urllib.request
from pathlib import Path

REGISTRY = "https://registry.npmjs.org"
VENDOR = Path(__file__).resolve().parents[1] / "service" / "api" / "static" / "vendor"

# name: (pinned version, allowed version prefix for --latest, licence we accept, {tarball path: vendored path})
# Fonts: every format katex.min.css names (woff2, woff, ttf), so no url() in the CSS points at a missing file.
PACKAGES: dict[str, tuple[str, str, str, dict[str, str]]] = {
    "katex": ("0.19.1", "0.", "MIT", {
        "package/dist/katex.min.js": "katex/katex.min.js",
        "package/dist/katex.min.css": "katex/katex.min.css",
        "package/dist/fonts/": "katex/fonts/",
        "package/LICENSE": "katex/LICENSE",
    }),
    "vega": ("6.4.0", "6.", "BSD-3-Clause", {
        "package/build/vega.min.js": "vega/vega.min.js",
        "package/LICENSE": "vega/LICENSE",
    }),
    "vega-lite": ("6.5.0", "6.", "BSD-3-Clause", {
        "package/build/vega-lite.min.js": "vega-lite/vega-lite.min.js",
        "package/LICENSE": "vega-lite/LICENSE",
    }),
    # bundles vega-interpreter: with ast: true it evaluates expressions without eval (CSP without 'unsafe-eval')
    "vega-embed": ("7.3.0", "7.", "BSD-3-Clause", {
        "package/build/vega-embed.min.js": "vega-embed/vega-embed.min.js",
        "package/LICENSE": "vega-embed/LICENSE",
    }),
}

LICENCE_NOTE = ("KaTeX is MIT-licensed; Vega, Vega-Lite and vega-embed are BSD-3-Clause. Both licences allow "
                "redistribution provided the copyright notice and licence text travel with the files: each "
                "package's LICENSE is vendored beside its files.")


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 (https registry URLs only)
        return response.read()


def metadata(name: str, version: str) -> dict:
    return json.loads(get(f"{REGISTRY}/{urllib.parse.quote(name, safe='@')}/{version}"))


def newest(name: str, prefix: str) -> str:
    """The newest non-prerelease version starting with ``prefix`` (the registry's version list)."""
    versions = json.loads(get(f"{REGISTRY}/{urllib.parse.quote(name, safe='@')}"))["versions"]
    stable = [v for v in versions if v.startswith(prefix) and re.fullmatch(r"\d+\.\d+\.\d+", v)]
    if not stable:
        raise SystemExit(f"{name}: no release starts with {prefix!r}")
    return max(stable, key=lambda v: tuple(int(p) for p in v.split(".")))


def check_integrity(data: bytes, integrity: str, url: str) -> None:
    algorithm, _, expected = integrity.partition("-")
    if algorithm != "sha512":
        raise SystemExit(f"{url}: integrity {integrity!r} is not sha512; refusing to trust a weaker hash")
    if base64.b64encode(hashlib.sha512(data).digest()).decode() != expected:
        raise SystemExit(f"{url}: sha512 does not match the registry's dist.integrity")


def extract(data: bytes, wanted: dict[str, str], target: Path) -> dict[str, str]:
    """Copies the wanted members (a path ending in / takes that directory's files); returns {vendored path: sha256}."""
    hashes: dict[str, str] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member in tar.getmembers():
            if not member.isfile():
                continue
            for source, dest in wanted.items():
                if source.endswith("/") and member.name.startswith(source) and "/" not in member.name[len(source):]:
                    relative = dest + member.name[len(source):]
                elif member.name == source:
                    relative = dest
                else:
                    continue
                content = tar.extractfile(member).read()
                path = target / relative
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(content)
                hashes[relative] = hashlib.sha256(content).hexdigest()
    missing = [s for s in wanted if not any(h.startswith(wanted[s]) for h in hashes)]
    if missing:
        raise SystemExit(f"the tarball lacks {missing}")
    return dict(sorted(hashes.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latest", action="store_true", help="take the newest release inside each allowed major "
                                                                 "(then pin it in PACKAGES)")
    parser.add_argument("--target", type=Path, default=VENDOR, help="where to vendor (default: %(default)s)")
    args = parser.parse_args(argv)

    staging = args.target.with_name(args.target.name + ".new")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    manifest = {"note": LICENCE_NOTE, "packages": []}
    for name, (pinned, prefix, licence, wanted) in PACKAGES.items():
        version = newest(name, prefix) if args.latest else pinned
        meta = metadata(name, version)
        if meta.get("license") != licence:
            raise SystemExit(f"{name} {version}: licence {meta.get('license')!r}, expected {licence!r}; check it")
        url = meta["dist"]["tarball"]
        data = get(url)
        check_integrity(data, meta["dist"]["integrity"], url)
        files = extract(data, wanted, staging)
        manifest["packages"].append({"name": name, "version": version, "license": licence, "tarball": url,
                                     "integrity": meta["dist"]["integrity"], "files": files})
        print(f"{name} {version}: {len(files)} files", file=sys.stderr)
    (staging / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    # swapped in only when every package verified: a failed run leaves the committed assets alone
    shutil.rmtree(args.target, ignore_errors=True)
    staging.rename(args.target)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
