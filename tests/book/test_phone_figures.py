"""book/_ext/phone_figures.py: the phone drawing split out of each figure and offered to phones."""

import importlib.util
from pathlib import Path

from optedu.instruments import layouts

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("phone_figures", ROOT / "book/_ext/phone_figures.py")
phone_figures = importlib.util.module_from_spec(spec)
spec.loader.exec_module(phone_figures)

def png(width: int, height: int = 100) -> bytes:
    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + b"\x08\x03\0\0\0"
    return (b"\x89PNG\r\n\x1a\n" + layouts._chunk(b"IHDR", header)
            + layouts._chunk(b"IEND", b""))


PNG = png(1300)


def test_images_are_split_and_their_pages_wrapped_once(tmp_path):
    images = tmp_path / "_images"
    images.mkdir()
    measures = {"font_px": 11, "phone_width": 333}
    (images / "abc.png").write_bytes(layouts.with_phone(PNG, png(666), measures))
    (images / "low.png").write_bytes(layouts.with_phone(PNG, png(416), measures))  # scale 1.25
    (images / "plain.png").write_bytes(PNG)
    phones = phone_figures.split_images(images)
    assert phones == {"abc": 2, "low": 1.249}
    assert (images / "abc-phone.png").read_bytes() == png(666)
    assert layouts.PHONE_CHUNK not in (images / "abc.png").read_bytes()
    assert layouts.split((images / "abc.png").read_bytes())[2] == measures
    # a second build finds the split already done and the same phones
    assert phone_figures.split_images(images) == phones

    html = ('<p>x</p><img alt="A" src="../_images/abc.png" style="width: 690px;">'
            '<img alt="B" src="../_images/plain.png">')
    once = phone_figures.wrap(html, phones)
    assert once == ('<p>x</p><picture class="optedu-phone"><source media="screen and'
                    ' (max-width: 719.98px)" srcset="../_images/abc-phone.png 2x"><img alt="A"'
                    ' src="../_images/abc.png" style="width: 690px;"></picture>'
                    '<img alt="B" src="../_images/plain.png">')
    assert phone_figures.wrap(once, phones) == once


def test_a_stacked_figure_whose_caption_says_left_is_marked(tmp_path):
    images = tmp_path / "_images"
    images.mkdir()
    measures = {"font_px": 11, "phone_width": 333}
    wide = png(1300, 500)
    (images / "two.png").write_bytes(layouts.with_phone(wide, png(666, 1400), measures))
    (images / "one.png").write_bytes(layouts.with_phone(wide, png(666, 280), measures))
    phones = phone_figures.split_images(images)
    stacks = phone_figures.stacked(images)
    assert stacks == {"two"}

    def figure(stem, caption):
        return (f'<figure class="align-default" id="f-{stem}"><a><img alt="x" '
                f'src="../_images/{stem}.png"></a><figcaption><p>{caption}</p></figcaption>'
                f'</figure>')

    html = (figure("two", "Left: the loss; right: the norm.") + figure("one", "Left: a.")
            + figure("two", "The loss against the step."))
    out = phone_figures.wrap(html, phones, stacks)
    assert out.count('class="optedu-stacked align-default"') == 1
    assert out.index("optedu-stacked") < out.index('id="f-one"')
    assert phone_figures.wrap(out, phones, stacks) == out
