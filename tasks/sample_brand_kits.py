"""Brand kits for the sample briefs' brands, with logos drawn by Pillow: the demo needs no downloads."""

from __future__ import annotations

import json
import re
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from adforge.tasks.brand_kits import hex_rgb
from adforge.tasks.creatives import button_colors

LOGO_SIZE = 256
# brand: (business name, final URL, primary, accent, font or "", tone notes)
SAMPLE_KITS = {
    "Nordbrew": ("Nordbrew Coffee", "https://nordbrew.example/", "#1F4E79", "#F2A900", "",
                 "Upbeat and brief, with coffee-shop warmth; never pushy."),
    "PeakGear": ("PeakGear Outdoor", "https://peakgear.example/", "#2E7D32", "#FF6F00", "",
                 "Plain-spoken and outdoorsy; concrete about grip, weight and weather."),
    "Ledgerly": ("Ledgerly", "https://ledgerly.example/", "#3949AB", "#00ACC1", "",
                 "Professional and calm; numbers over adjectives."),
    "Bloomly": ("Bloomly Flowers", "https://bloomly.example/", "#E75480", "#7CB342", "",
                "Warm and personal; flowers as a gesture, not a product."),
    "Voltway": ("Voltway Scooters", "https://voltway.example/", "#FFD600", "#212121", "",
                "Bold and quick; short sentences about range and freedom."),
    "Kinder Kitchen": ("Kinder Kitchen", "https://kinderkitchen.example/", "#F57C00", "#43A047", "",
                       "Caring and practical; speak to busy parents, not to children."),
    "Skyline Hotels": ("Skyline Hotels", "https://skylinehotels.example/", "#0B2545", "#C9A227",
                       "DejaVuSerif-Bold.ttf", "Inviting and understated; a little luxury, no superlatives."),
}  # fmt: skip


def write_sample_kits(folder: str | Path) -> list[Path]:
    """Write a kit (TOML file and PNG logo) for each brand of the sample briefs; returns the TOML files."""
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    written = []
    for brand, (business_name, url, primary, accent, font, notes) in SAMPLE_KITS.items():
        slug = re.sub(r"[^a-z0-9]+", "-", brand.lower()).strip("-")
        draw_logo(brand, primary).save(root / f"{slug}.png")
        fields = {"brand": brand, "business_name": business_name, "final_url": url, "logo": f"{slug}.png",
                  "font": font, "tone_notes": notes}  # fmt: skip
        lines = [f"{key} = {json.dumps(value)}" for key, value in fields.items() if value]
        lines += ["", "[colors]", f"primary = {json.dumps(primary)}", f"accent = {json.dumps(accent)}"]
        path = root / f"{slug}.toml"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        written.append(path)
    return written


def draw_logo(brand: str, color: str) -> Image.Image:
    """The brand's initials in a circle of its colour on a transparent square."""
    fill, label = button_colors(hex_rgb(color))
    image = Image.new("RGBA", (LOGO_SIZE, LOGO_SIZE), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.ellipse((4, 4, LOGO_SIZE - 5, LOGO_SIZE - 5), fill=fill)
    initials = "".join(char for char in brand if char.isupper())[:2] or brand[:1].upper()
    size = LOGO_SIZE * 2 // 5
    try:  # Pillow finds a file name in the system's font folders
        font: ImageFont.FreeTypeFont | ImageFont.ImageFont = ImageFont.truetype("DejaVuSans-Bold.ttf", size)
    except OSError:
        font = ImageFont.load_default(size)
    draw.text((LOGO_SIZE / 2, LOGO_SIZE / 2), initials, font=font, fill=label, anchor="mm")
    return image
