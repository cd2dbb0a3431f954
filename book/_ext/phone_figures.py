"""Each screen its own drawing of a figure: the phone gets the panels stacked, at reading size.

optedu draws every figure of a chapter twice (``optedu.instruments.layouts``): for the site's
column on a laptop, stored as the notebook's PNG, and for a phone's, carried inside that PNG.
After the build, each image with a phone drawing is split in two (``NAME.png`` without it,
``NAME-phone.png``), and every page that shows it wraps it in a ``<picture>`` whose source for
narrow screens is the phone drawing, at the pixels per CSS pixel of the other (two, unless the
chapter chose another; paper gets the laptop drawing).
Pages built earlier and left unchanged keep their wrapping; nothing is wrapped twice.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

#: the widest screen that gets the phone drawing, in CSS px (optedu.css holds the same width):
#: below it the site's column is narrower than the laptop drawing by more than a tenth
PHONE_MEDIA = "screen and (max-width: 719.98px)"
_IMAGE = re.compile(r'<picture class="optedu-phone[^"]*">.*?</picture>'
                    r'|<img\b[^>]*?\bsrc="(?P<src>[^"]*_images/(?P<stem>[^"/]+?))\.png"[^>]*>',
                    re.S)


_FIGURE = re.compile(r'(<figure class="[^"]*"[^>]*>).*?</figure>', re.S)


def split_images(images: Path) -> dict[str, float]:
    """Split each PNG under ``images`` that carries a phone drawing; for each stem that has
    one, its pixels per CSS pixel (a chapter may draw at other than two: ``setup(scale=)``)."""
    import struct

    from optedu.instruments import layouts

    for png in sorted(images.glob("*.png")):
        if png.stem.endswith("-phone"):
            continue
        data = png.read_bytes()
        if layouts.PHONE_CHUNK not in data:
            continue
        desktop, phone, _ = layouts.split(data)
        if phone is not None:
            (images / f"{png.stem}-phone.png").write_bytes(phone)
            png.write_bytes(desktop)
    densities = {}
    for phone in images.glob("*-phone.png"):
        stem = phone.stem[:-len("-phone")]
        measures = layouts.split((images / f"{stem}.png").read_bytes())[2] or {}
        width = struct.unpack(">I", phone.read_bytes()[16:20])[0]  # IHDR's width
        densities[stem] = round(width / measures.get("phone_width", width / 2), 3)
    return densities


#: a caption's words that name a panel by its side: "Left: …", "Left, SGD: …", "Left and
#: middle: …", "(left)", "(right, log scale)", "left column", "the right panel", "the left-hand
#: plot", "top-left", "on the right", and "…; left at β₂ = 0.1, right at β₂ = 0.9". Not a
#: side within a panel or a verb: "left out", "lies left of", "to the right", "the right end",
#: "(right axis)", "what is left".
_SIDE = re.compile(
    r"\b(?:left|right)(?:\s+and\s+(?:middle|left|right))?\s*(?::|,[^,:;.]{1,30}:)"
    r"|\((?:left|right)\b(?!\s+axis)"
    r"|\b(?:left|right)(?:-hand)?\s+(?:panels?|columns?|plots?|graphs?|one|side)\b"
    r"|\b(?:top|bottom|upper|lower)[- ](?:left|right)\b"
    r"|\bon\s+the\s+(?:left|right)\b"
    r"|(?:^|[.;,]\s*)(?:left|right)\s+(?:at|for|with)\b",
    re.I)


def stacked(images: Path) -> set[str]:
    """The stems whose phone drawing stacks panels the laptop drawing sets side by side: it
    has fewer panel columns (the measures ``layouts.with_phone`` stores). A figure that is not
    one grid (columns ``None``) is only narrowed, and a single panel stays one: neither is."""
    from optedu.instruments import layouts

    stems = set()
    for phone in images.glob("*-phone.png"):
        stem = phone.stem[:-len("-phone")]
        measures = layouts.split((images / f"{stem}.png").read_bytes())[2] or {}
        laptop, narrow = measures.get("columns"), measures.get("phone_columns")
        if laptop is not None and narrow is not None and narrow < laptop:
            stems.add(stem)
    return stems


def wrap(html: str, phones: dict[str, float], stacks: set[str] | None = None) -> str:
    """``html`` with each ``<img>`` of a figure that has a phone drawing in a ``<picture>``;
    a figure whose phone drawing stacks its panels, and whose caption names a panel by its
    side (:data:`_SIDE`), is marked ``optedu-stacked`` (optedu.css tells a phone reader how to
    read it)."""
    stacks = stacks or set()

    def one(match: re.Match) -> str:
        if match.group("src") is None or match.group("stem") not in phones:
            return match.group(0)
        density = phones[match.group("stem")]
        source = (f'<source media="{PHONE_MEDIA}" '
                  f'srcset="{match.group("src")}-phone.png {density:g}x">')
        kind = "optedu-phone optedu-stacks" if match.group("stem") in stacks else "optedu-phone"
        return f'<picture class="{kind}">{source}{match.group(0)}</picture>'

    def caption(match: re.Match) -> str:
        block = match.group(0)
        said = re.search(r"<figcaption>(.*?)</figcaption>", block, re.S)
        if ("optedu-stacks" not in block or said is None or "optedu-stacked" in match.group(1)
                or not _SIDE.search(re.sub(r"<[^>]+>", "", said.group(1)))):
            return block
        return block.replace(match.group(1), match.group(1).replace(
            'class="', 'class="optedu-stacked ', 1), 1)

    return _FIGURE.sub(caption, _IMAGE.sub(one, html))


def _build_finished(app: Any, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    out = Path(app.outdir)
    images = out / "_images"
    if not images.is_dir():
        return
    phones = split_images(images)
    if not phones:
        return
    stacks = stacked(images)
    for page in out.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        new = wrap(text, phones, stacks)
        if new != text:
            page.write_text(new, encoding="utf-8")


def setup(app: Any) -> dict[str, bool]:
    app.connect("build-finished", _build_finished)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
