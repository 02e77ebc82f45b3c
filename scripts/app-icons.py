# Draws the field app's PNG icons (the design of api/fieldapp/static/icons/icon.svg) with Pillow:
#   .venv/bin/python scripts/app-icons.py api/fieldapp/static/icons
import sys

from PIL import Image, ImageDraw

out = sys.argv[1]
for size in (192, 512):
    s = size / 512
    im = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    d = ImageDraw.Draw(im)
    d.rounded_rectangle([0, 0, size - 1, size - 1], radius=int(96 * s), fill="#1f5f3b")
    d.ellipse([152 * s, 92 * s, 360 * s, 352 * s], fill="#7fbf8f")
    d.rectangle([248 * s, 200 * s, 264 * s, 360 * s], fill="#1f5f3b")
    w = max(2, int(18 * s))
    d.line([256 * s, 352 * s, 160 * s, 408 * s], fill="#f4f7f2", width=w)
    d.line([256 * s, 352 * s, 352 * s, 408 * s], fill="#f4f7f2", width=w)
    d.line([256 * s, 352 * s, 256 * s, 416 * s], fill="#f4f7f2", width=w)
    d.line([96 * s, 432 * s, 416 * s, 432 * s], fill="#9ed0e6", width=w)
    im.save(f"{out}/icon-{size}.png", optimize=True)
