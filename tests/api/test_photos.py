"""Incident photos: every photo is decoded in full and stored re-encoded, so nothing but an image
is ever stored or served; truncated and oversized ones are refused by name with nothing kept;
EXIF orientation is applied and metadata dropped, the original's SHA-256 kept; and photos are
read by the reporter and those who may work the incident, not by everyone who sees it."""

import hashlib
import io
import struct
import zlib

import pytest
from PIL import Image, ImageCms
from sqlalchemy import func, select
from utils.factories import add_users, auth
from utils.places import inside, inside_near_border

from patrol.models import IncidentPhoto

GQ03 = inside("LJ-GQ-03")


def new_incident(client, headers, where=GQ03) -> dict:
    body = {"category": "rubbish", "lon": where[0], "lat": where[1], "description": "塑料垃圾"}
    response = client.post("/api/v1/incidents", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def post_photo(client, headers, incident, content: bytes, name: str = "photo.jpg"):
    return client.post(
        f"/api/v1/incidents/{incident['id']}/photos", files={"file": (name, content)}, headers=headers
    )


def jpeg(width=40, height=20, **save) -> bytes:
    image = Image.new("RGB", (width, height), (200, 30, 30))
    image.paste((30, 30, 200), (0, 0, width // 2, height))  # left half blue: orientation shows
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=95, **save)
    return buffer.getvalue()


def with_comment(data: bytes, comment: bytes) -> bytes:
    """A JPEG with a COM segment right after SOI (how HTML/JPEG polyglots hide their page)."""
    return data[:2] + b"\xff\xfe" + struct.pack(">H", len(comment) + 2) + comment + data[2:]


def stored(sessions, settings) -> list[tuple[IncidentPhoto, bytes]]:
    with sessions() as session:
        rows = session.scalars(select(IncidentPhoto).order_by(IncidentPhoto.id)).all()
    return [(row, (settings.photo_dir() / row.path).read_bytes()) for row in rows]


def state(sessions, settings) -> tuple[int, set]:
    with sessions() as session:
        rows = session.scalar(select(func.count()).select_from(IncidentPhoto))
    root = settings.photo_dir()
    return rows, {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()


HTML = b"<html><body><script>alert(document.cookie)</script></body></html>"


def test_a_jpeg_that_is_also_an_html_page_is_stored_and_served_as_an_image_only(client, sessions, settings):
    add_users(sessions, "member")
    member = auth(client, "member")
    incident = new_incident(client, member)
    polyglot = with_comment(jpeg(), HTML) + HTML  # the page in a comment and after the image's end
    added = post_photo(client, member, incident, polyglot)
    assert added.status_code == 201, added.text
    [(row, data)] = stored(sessions, settings)
    assert b"<html" not in data and b"<script" not in data
    assert Image.open(io.BytesIO(data)).format == "JPEG" and (row.width, row.height) == (40, 20)
    assert row.sha256 == hashlib.sha256(polyglot).hexdigest()  # the original, for evidence
    served = client.get(added.json()["href"], headers=member)
    assert served.status_code == 200 and served.content == data
    assert served.headers["content-type"] == "image/jpeg"
    assert served.headers["x-content-type-options"] == "nosniff"
    policy = served.headers["content-security-policy"]  # the photo's own, plus the edge's baseline
    assert policy.startswith("sandbox; default-src 'none';") and "frame-ancestors 'none'" in policy
    disposition = served.headers["content-disposition"]
    assert (
        disposition.startswith("inline;") and f"incident-{incident['id']}-photo-{row.id}.jpg" in disposition
    )


@pytest.mark.parametrize("cut", [0.5, 0.97], ids=["half", "last-bytes"])
def test_a_truncated_jpeg_is_refused_by_name_and_nothing_is_kept(client, sessions, settings, cut):
    add_users(sessions, "member")
    member = auth(client, "member")
    incident = new_incident(client, member)
    whole = jpeg(400, 300)
    before = state(sessions, settings)
    refused = post_photo(client, member, incident, whole[: int(len(whole) * cut)])
    assert refused.status_code == 422, refused.text
    assert "truncated" in refused.json()["detail"]
    assert state(sessions, settings) == before


def test_exif_orientation_is_applied_and_metadata_dropped_but_the_colour_profile_kept(
    client, sessions, settings
):
    add_users(sessions, "member")
    member = auth(client, "member")
    incident = new_incident(client, member)
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: the camera was turned; show rotated 90° clockwise
    exif[0x010F] = "PhoneMaker"
    exif[0xA431] = "SERIAL-1234"  # BodySerialNumber
    exif.get_ifd(0x8825)[2] = (21.0, 30.0, 0.0)  # GPSLatitude
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    original = jpeg(40, 20, exif=exif.tobytes(), icc_profile=icc, comment=b"taken at home")
    assert post_photo(client, member, incident, original).status_code == 201
    [(row, data)] = stored(sessions, settings)
    image = Image.open(io.BytesIO(data))
    assert image.size == (20, 40) and (row.width, row.height) == (20, 40)
    assert image.getpixel((10, 2))[2] > 150  # the blue left half is now on top
    assert dict(image.getexif()) == {} and "comment" not in image.info and "xmp" not in image.info
    assert b"SERIAL-1234" not in data and b"PhoneMaker" not in data and b"taken at home" not in data
    assert image.info["icc_profile"] == icc
    assert row.sha256 == hashlib.sha256(original).hexdigest() and row.size_bytes == len(data)


def test_a_png_stays_a_lossless_png_with_its_transparency_and_without_its_text(client, sessions, settings):
    from PIL import PngImagePlugin

    add_users(sessions, "member")
    member = auth(client, "member")
    incident = new_incident(client, member)
    image = Image.new("RGBA", (6, 4), (10, 120, 60, 128))
    text = PngImagePlugin.PngInfo()
    text.add_text("Comment", "<script>alert(1)</script>")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=text)
    added = post_photo(client, member, incident, buffer.getvalue(), "p.png")
    assert added.status_code == 201 and added.json()["content_type"] == "image/png"
    [(_, data)] = stored(sessions, settings)
    assert b"<script" not in data
    assert Image.open(io.BytesIO(data)).tobytes() == image.tobytes()


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width``×``height`` pixels (a decompression bomb's shape)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("size", [(8000, 8000), (20000, 20000)], ids=["over-the-setting", "pillow-bomb"])
def test_decompression_bombs_stay_refused(client, sessions, settings, size):
    add_users(sessions, "member")
    member = auth(client, "member")
    incident = new_incident(client, member)
    before = state(sessions, settings)
    refused = post_photo(client, member, incident, png_claiming(*size), "bomb.png")
    assert refused.status_code == 422, refused.text
    assert state(sessions, settings) == before


# --- who reads photos -------------------------------------------------------------------------------


def test_photos_are_read_by_the_reporter_and_those_who_may_work_the_incident(client, sessions):
    """An incident ~1 km from the border: the other side's officer sees it (and may refer it or
    bring it into a joint case), but its photos only once it is referred to their side."""
    add_users(sessions, "member", "member-2", "manager", "officer-lj", "officer-hp", "admin")
    member = auth(client, "member")
    incident = new_incident(client, member, inside_near_border("LJ-GQ-08"))
    href = post_photo(client, member, incident, jpeg()).json()["href"]
    url = f"/api/v1/incidents/{incident['id']}"

    def reads(user: str) -> tuple[int, int, int]:
        headers = auth(client, user)
        detail = client.get(url, headers=headers)
        photos = len(detail.json()["photos"]) if detail.status_code == 200 else None
        return detail.status_code, photos, client.get(href, headers=headers).status_code

    assert reads("member") == (200, 1, 200)  # the reporter
    assert reads("member-2") == (404, None, 404)  # same team, not theirs
    assert reads("manager") == (200, 1, 200)
    assert reads("officer-lj") == (200, 1, 200)
    assert reads("admin") == (200, 1, 200)
    assert reads("officer-hp") == (200, 0, 404)  # sees the incident, not its photos

    version = client.get(url, headers=auth(client, "officer-lj")).json()["version"]
    referred = client.post(
        f"{url}/referral", json={"to_side": "GX-HP", "version": version}, headers=auth(client, "officer-lj")
    )
    assert referred.status_code == 200, referred.text
    assert reads("officer-hp") == (200, 1, 200)  # now theirs to work


def test_the_reporter_still_reads_the_photos_once_the_incident_is_closed(client, sessions):
    add_users(sessions, "member", "manager", "officer-lj")
    member = auth(client, "member")
    incident = new_incident(client, member)
    href = post_photo(client, member, incident, jpeg()).json()["href"]
    url = f"/api/v1/incidents/{incident['id']}"
    for who, action in (("manager", "accept"), ("manager", "resolve"), ("officer-lj", "close")):
        version = client.get(url, headers=auth(client, who)).json()["version"]
        moved = client.post(
            f"{url}/transitions", json={"action": action, "version": version}, headers=auth(client, who)
        )
        assert moved.status_code == 200, moved.text
    assert client.get(url, headers=member).json()["status"] == "closed"
    assert client.get(href, headers=member).status_code == 200
