"""Two of our servers behind nginx at the public prefix /lb, images in an S3 store and on a
plain HTTP server, one memcached (scripts/scaleout-test.sh): the answers through the
balancer, compared byte for byte with those of a third server reading the same files from
disk; the purge; the load while the script kills an instance and memcached; the service
after the kills.
"""
from . import load
from .fetch import fetch
from .validator import IMAGE_ID

JP2 = f"validator/{IMAGE_ID}.jp2"
# tiles, regions and descriptors (IIIF, IIP, DeepZoom, Zoomify) of a TIFF and a JPEG2000 in S3
SAMPLES = [
    "iiif/big.tif/info.json", "iiif/big.tif/full/max/0/default.jpg", "iiif/big.tif/0,0,256,256/256,/0/default.jpg",
    "iiif/big.tif/512,768,256,256/256,/0/default.jpg", "iiif/big.tif/700,300,1500,900/600,/0/default.png",
    "iiif/big.tif/full/!400,400/90/gray.webp", f"iiif/{JP2}/info.json", f"iiif/{JP2}/full/300,/0/default.jpg",
    f"iiif/{JP2}/250,250,500,500/250,/0/default.png", "fcgi-bin/iipsrv.fcgi?FIF=big.tif&JTL=3,5",
    "fcgi-bin/iipsrv.fcgi?FIF=big.tif&WID=500&RGN=0.1,0.1,0.5,0.5&CVT=jpeg",
    "fcgi-bin/iipsrv.fcgi?FIF=big.tif&OBJ=IIP,1.0&OBJ=Max-size&OBJ=Resolution-number",
    "deepzoom/big.tif.dzi", "deepzoom/big.tif_files/10/2_1.jpg", "zoomify/big.tif/ImageProperties.xml",
    "zoomify/big.tif/TileGroup0/2-1-1.jpg",
]
# the same file over plain HTTP with Range: iiif/web/big.tif/... through the balancer
OVER_HTTP = [
    "iiif/big.tif/info.json", "iiif/big.tif/512,768,256,256/256,/0/default.jpg",
    "iiif/big.tif/700,300,1500,900/600,/0/default.png",
]


def compare(checks, public, disk, path, disk_path):
    """One check: both answer 200 with the same bytes. In info.json the ids differ by design
    (the public URL, the disk server's own): each is replaced by PUBLIC/ first, and the
    balancer's must be its public URL."""
    a, b = fetch(f"{public}/{path}"), fetch(f"{disk}/{disk_path}")
    mine, theirs = a.body, b.body
    if path.endswith("info.json"):
        mine = mine.replace(f"{public}/".encode(), b"PUBLIC/").replace(b"PUBLIC/iiif/web/", b"PUBLIC/iiif/")
        theirs = theirs.replace(f"{disk}/".encode(), b"PUBLIC/")
        if b"PUBLIC/iiif/" not in mine:
            ids = [l for l in mine.decode("utf-8", "replace").splitlines() if '"id"' in l]
            return checks.fail(path, f"id is not the balancer's public URL: {ids[0] if ids else ''}")
    same = a.status == 200 and a.status == b.status and mine == theirs
    differ = ", bodies differ" if a.status == b.status and mine != theirs else ""
    return checks.check(path, same, f"{a.status} vs disk {b.status}{differ}")


def samples(checks, public, disk):
    for s in SAMPLES:
        compare(checks, public, disk, s, s)
    for s in OVER_HTTP:
        compare(checks, public, disk, s.replace("big.tif", "web/big.tif", 1), s)
    print(f"balancer: {len(SAMPLES)} samples from S3 and {len(OVER_HTTP)} over HTTP compared with disk", flush=True)


def purge(public, token=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return fetch(f"{public}/admin/purge/big.tif", method="POST", headers=headers)


def purges(checks, public, token):
    """With the token: 200 and the purged id; without: 401."""
    a = purge(public, token)
    checks.check("purge", a.status == 200 and b'"purged":"big.tif"' in a.body, f"{a.status} {a.body.decode(errors='replace')}")
    a = purge(public)
    checks.check("purge without the token", a.status == 401, a.status)


def region(client, i):
    w = 100 + (client * 997 + i) % 600
    return f"/iiif/big.tif/{(i * 37) % 2000},{(i * 53) % 1500},700,400/{w},/0/default.jpg"


def under_load(checks, public, clients, seconds):
    """Regions of big.tif from `clients` clients for `seconds` s, while the script kills an
    instance and memcached: every request answers 200 (nginx retries the other instance),
    and more than 100 of them."""
    good, bad = load.run(public, region, clients, seconds)
    print(f"balancer: {good} requests answered 200 under load while the script killed, {bad} failed", flush=True)
    checks.check("requests failed after the balancer's retry", bad == 0 and good > 100, f"{bad} (of {good + bad})")


def after_kills(checks, public, token):
    """An instance and memcached dead: a region still answers 200; a purge answers 503, as the
    shared tier cannot take it."""
    a = fetch(f"{public}/iiif/big.tif/100,100,800,600/400,/0/default.jpg")
    checks.check("after the kills", a.status == 200, a.status)
    a = purge(public, token)
    said = f"{a.status} {a.body.decode(errors='replace')}"
    checks.check("a purge with memcached dead must say so (503)", a.status == 503, said)
    print(f"balancer: purge with memcached dead: {said}", flush=True)
