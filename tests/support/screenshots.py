"""Screenshots compared with committed PNG references within a tolerance (issue 19): a per-channel
threshold absorbs anti-aliasing noise, a share of changed pixels decides, and a failure leaves the
actual image and a diff (changed pixels in magenta over a faded reference) for a person to look at."""

from __future__ import annotations

import io
import tempfile
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageChops

# A pixel differs when one channel moves by more than this (0-255): sub-pixel text rendering moves
# a few levels, a layout change moves whole shapes by far more.
CHANNEL_TOLERANCE = 24
# The test fails when more than this share of the pixels differ, or when the sizes differ.
MAX_CHANGED_FRACTION = 0.005
FAILURES_DIR = Path(tempfile.gettempdir()) / "lifeline-screenshots"
HIGHLIGHT = (255, 0, 255)


@dataclass(frozen=True)
class ImageDiff:
    changed: int
    total: int
    same_size: bool
    # The reference faded to grey with every changed pixel in magenta, on a canvas both images fit.
    image: Image.Image

    @property
    def fraction(self) -> float:
        return self.changed / self.total if self.total else 0.0

    def matches(self, max_changed_fraction: float = MAX_CHANGED_FRACTION) -> bool:
        return self.same_size and self.fraction <= max_changed_fraction


def compare_images(
    actual: Image.Image, reference: Image.Image, *, channel_tolerance: int = CHANNEL_TOLERANCE
) -> ImageDiff:
    """Pixels where any channel differs by more than `channel_tolerance`; outside the smaller image
    every pixel counts as changed."""
    width, height = max(actual.width, reference.width), max(actual.height, reference.height)
    canvas_a = Image.new("RGB", (width, height), (0, 0, 0))
    canvas_b = Image.new("RGB", (width, height), (255, 255, 255))
    canvas_a.paste(actual.convert("RGB"))
    canvas_b.paste(reference.convert("RGB"))
    channels = ImageChops.difference(canvas_a, canvas_b).split()
    # Per channel: 255 where the difference passes the tolerance; a pixel counts if any channel does.
    over = [band.point(lambda level: 255 if level > channel_tolerance else 0) for band in channels]
    mask = ImageChops.lighter(ImageChops.lighter(over[0], over[1]), over[2])
    changed = mask.histogram()[255]
    faded = Image.blend(canvas_b.convert("L").convert("RGB"), Image.new("RGB", (width, height), "white"), 0.6)
    faded.paste(Image.new("RGB", (width, height), HIGHLIGHT), mask=mask)
    return ImageDiff(changed, width * height, actual.size == reference.size, faded)


def check_screenshot(
    png: bytes, reference: Path, *, update: bool, failures_dir: Path = FAILURES_DIR
) -> str | None:
    """None when `png` matches `reference` (or `update` rewrote it); otherwise why not, naming the
    files written to `failures_dir`."""
    actual = Image.open(io.BytesIO(png))
    actual.load()
    if update:
        reference.parent.mkdir(parents=True, exist_ok=True)
        # 256 colours keep a reference at a third of its size; the palette's rounding moves about
        # 0.1% of the pixels past the tolerance, well inside MAX_CHANGED_FRACTION.
        palette = actual.convert("RGB").quantize(
            256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
        )
        palette.save(reference, optimize=True)
        return None
    failures_dir.mkdir(parents=True, exist_ok=True)
    actual_path = failures_dir / f"{reference.stem}.actual.png"
    diff_path = failures_dir / f"{reference.stem}.diff.png"
    # What an earlier run left for this page must not be taken for this run's result.
    actual_path.unlink(missing_ok=True)
    diff_path.unlink(missing_ok=True)
    if not reference.exists():
        actual.save(actual_path)
        return (
            f"{reference.name}: no reference; the page is in {actual_path} "
            "(`make screenshots` writes the references)"
        )
    with Image.open(reference) as expected:
        diff = compare_images(actual, expected)
    if diff.matches():
        return None
    actual.save(actual_path)
    diff.image.save(diff_path)
    size = (
        ""
        if diff.same_size
        else f"size {actual.width}x{actual.height}, reference {expected.size[0]}x{expected.size[1]}; "
    )
    return (
        f"{reference.name}: {size}{diff.changed} of {diff.total} pixels differ ({diff.fraction:.2%}, "
        f"at most {MAX_CHANGED_FRACTION:.1%} allowed); see {actual_path} and {diff_path} "
        "(`make screenshots` accepts the change)"
    )
