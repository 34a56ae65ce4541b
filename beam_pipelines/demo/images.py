"""Synthetic images with things at known places: bar charts, documents and scenes.

Each generator returns the image and the objects drawn on it as `(name, value, (left, top, right,
bottom))` pixel boxes, so the demo's reasoning text can point at what is really there.
"""

from __future__ import annotations

import random

from PIL import Image, ImageDraw, ImageFont

Box = tuple[int, int, int, int]
Obj = tuple[str, str, Box]

COUNTRIES = ["Japan", "UK", "France", "Brazil", "India", "Kenya", "Chile", "Norway"]
COLOURS = {"red": (200, 40, 40), "green": (40, 160, 60), "blue": (40, 70, 200), "orange": (240, 140, 20)}
WORDS = [
    "the",
    "quarterly",
    "report",
    "shows",
    "revenue",
    "growth",
    "across",
    "all",
    "regions",
    "with",
    "costs",
    "held",
    "flat",
]


def _font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def chart(rng: random.Random, width: int = 800, height: int = 600) -> tuple[Image.Image, list[Obj]]:
    img = Image.new("RGB", (width, height), "white")
    d = ImageDraw.Draw(img)
    d.text((20, 10), "Economic trade impact (million US$)", fill="black", font=_font(22))
    names = rng.sample(COUNTRIES, 4)
    base, slot = height - 60, (width - 80) // len(names)
    objs = []
    for i, name in enumerate(names):
        value = rng.randint(100, 990)
        x1 = 60 + i * slot + slot // 5
        x2 = x1 + slot * 3 // 5
        y1 = base - int(value / 1000 * (base - 80))
        d.rectangle((x1, y1, x2, base), fill=(70, 110, 180))
        d.text((x1, y1 - 24), str(value), fill="black", font=_font(18))
        d.text((x1, base + 8), name, fill="black", font=_font(18))
        objs.append((name, str(value), (x1, y1 - 26, x2 + 1, base + 32)))
    return img, objs


def document(rng: random.Random, width: int = 850, height: int = 1100) -> tuple[Image.Image, list[Obj]]:
    img = Image.new("RGB", (width, height), (250, 250, 245))
    d = ImageDraw.Draw(img)
    title = f"Invoice {rng.randint(1000, 9999)}"
    d.text((60, 50), title, fill="black", font=_font(40))
    objs = [("title", title, (55, 45, 60 + 40 * len(title) // 2 + 20, 100))]
    y = 140
    for _ in range(12):
        line = " ".join(rng.choice(WORDS) for _ in range(9))
        d.text((60, y), line, fill=(30, 30, 30), font=_font(20))
        y += 34
    total = f"Total: ${rng.randint(10, 999)}.{rng.randint(10, 99)}"
    d.text((520, y + 40), total, fill="black", font=_font(28))
    objs.append(("total", total, (510, y + 32, 800, y + 80)))
    return img, objs


def scene(rng: random.Random, width: int = 640, height: int = 480) -> tuple[Image.Image, list[Obj]]:
    img = Image.new("RGB", (width, height), (135, 180, 220))
    d = ImageDraw.Draw(img)
    d.rectangle((0, height * 2 // 3, width, height), fill=(90, 150, 70))
    objs = []
    for shape in ("circle", "square"):
        colour = rng.choice(list(COLOURS))
        size = rng.randint(60, 140)
        x = rng.randint(10, width - size - 10)
        y = rng.randint(10, height - size - 10)
        box = (x, y, x + size, y + size)
        if shape == "circle":
            d.ellipse(box, fill=COLOURS[colour])
        else:
            d.rectangle(box, fill=COLOURS[colour])
        objs.append((shape, colour, (x, y, x + size + 1, y + size + 1)))
    return img, objs


def diagram(rng: random.Random, width: int = 560, height: int = 420) -> tuple[Image.Image, list[Obj]]:
    """A small geometry figure for the process-supervision sources."""
    img = Image.new("RGB", (width, height), "white")
    d = ImageDraw.Draw(img)
    pts = [(rng.randint(40, 200), rng.randint(300, 380)), (rng.randint(360, 520), rng.randint(300, 380))]
    pts.append((rng.randint(150, 400), rng.randint(40, 140)))
    d.polygon(pts, outline="black", width=3)
    for label, (x, y) in zip("ABC", pts, strict=True):
        d.text((x + 6, y + 6), label, fill="black", font=_font(20))
    return img, []
