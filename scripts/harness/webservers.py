"""IIP, DeepZoom and Zoomify through a web server in front of our FastCGI processes
(scripts/webservers-test.sh), on the IIIF validator's image: each answer's status and the
start of its Content-Type; the OBJ answer's body; an uncompressed TIFF (over 3 MB), which
crosses many FastCGI records.
"""
from .fetch import fetch
from .validator import IMAGE_ID


def expect(checks, name, status, type_prefix, url):
    """A check of the answer's status and Content-Type (which must start with type_prefix)."""
    a = fetch(url)
    ok = a.status == status and a.content_type.startswith(type_prefix)
    checks.check(name, ok, f"got '{a.status} {a.content_type}' for {url}")
    return a


def run(checks, setup, base):
    iip = f"{base}/fcgi-bin/iipsrv.fcgi?"
    obj = expect(checks, f"{setup} IIP OBJ", 200, "application/vnd.netfpx", f"{iip}FIF={IMAGE_ID}&OBJ=IIP,1.0&OBJ=Max-size")
    checks.also(f"{setup}: OBJ body", b"Max-size:1000 1000" in obj.body, obj.body[:200])
    expect(checks, f"{setup} IIP JTL", 200, "image/jpeg", f"{iip}FIF={IMAGE_ID}&JTL=2,3")
    expect(checks, f"{setup} IIP CVT", 200, "image/png", f"{iip}FIF={IMAGE_ID}&WID=200&CVT=png")
    expect(checks, f"{setup} IIP missing", 404, "text/plain", f"{iip}FIF=nope.tif&OBJ=Max-size")
    expect(checks, f"{setup} DeepZoom dzi", 200, "application/xml", f"{base}/deepzoom/{IMAGE_ID}.dzi")
    expect(checks, f"{setup} DeepZoom tile", 200, "image/jpeg", f"{base}/deepzoom/{IMAGE_ID}_files/10/1_1.jpg")
    expect(checks, f"{setup} DeepZoom query", 200, "application/xml", f"{iip}DeepZoom={IMAGE_ID}.dzi")
    expect(checks, f"{setup} Zoomify props", 200, "application/xml", f"{base}/zoomify/{IMAGE_ID}/ImageProperties.xml")
    expect(checks, f"{setup} Zoomify tile", 200, "image/jpeg", f"{base}/zoomify/{IMAGE_ID}/TileGroup0/2-1-1.jpg")
    big = fetch(f"{base}/iiif/{IMAGE_ID}/full/max/0/default.tif")
    checks.check(f"{setup}: large answer", len(big.body) > 3000000, f"{len(big.body)} bytes")
