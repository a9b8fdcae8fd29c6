"""Real files for the attachment tests, made with Pillow (nothing checked in)."""

from __future__ import annotations

import io

from PIL import Image

GPS_IFD = 0x8825


def png(size: tuple[int, int] = (64, 48), color=(30, 120, 200)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG")
    return out.getvalue()


def jpeg_with_gps(size: tuple[int, int] = (640, 480)) -> bytes:
    """A JPEG whose EXIF holds a camera model and a GPS position (Berlin)."""
    image = Image.new("RGB", size, (200, 40, 40))
    exif = image.getexif()
    exif[0x0110] = "SpyCam 3000"  # Model
    exif[GPS_IFD] = {1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 36.0)}
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


def noisy_png(megabytes: float) -> bytes:
    """A PNG of random pixels (incompressible) of at least ``megabytes``."""
    import os

    side = int((megabytes * 1024 * 1024 / 3) ** 0.5) + 8
    image = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    out = io.BytesIO()
    image.save(out, "PNG", compress_level=0)
    return out.getvalue()


def pdf() -> bytes:
    """A minimal valid one-page PDF."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(
        b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    )
    return out.getvalue()


HTML = b"<!doctype html><html><body><script>alert(document.cookie)</script></body></html>"


def png_with_gps(size: tuple[int, int] = (900, 700)) -> bytes:
    """A PNG screenshot carrying an eXIf chunk with a GPS position and a text chunk."""
    from PIL import PngImagePlugin

    image = Image.new("RGB", size, (40, 90, 200))
    exif = image.getexif()
    exif[0x0110] = "SpyCam 3000"
    exif[GPS_IFD] = {1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 36.0)}
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "secret-location")
    out = io.BytesIO()
    image.save(out, "PNG", exif=exif, pnginfo=info)
    return out.getvalue()
