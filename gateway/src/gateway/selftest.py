"""`python -m gateway.selftest http://host:port`: one real prediction through a running gateway.

Sends an in-memory JPEG (generated here, so the check needs no file and no URL fetching) as
base64 and exits 0 only on HTTP 200 with a non-empty JSON object of numeric scores. The chart's
`helm test` pod runs this with the gateway image. Standard library + Pillow only.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import sys
import urllib.error
import urllib.request


def sample_jpeg(size: int = 64) -> bytes:
    from PIL import Image

    image = Image.new("RGB", (size, size))
    image.putdata([(x * 4 % 256, y * 4 % 256, 128) for y in range(size) for x in range(size)])
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90)
    return out.getvalue()


def run(base_url: str, timeout: float) -> tuple[bool, str]:
    body = json.dumps({"image": base64.b64encode(sample_jpeg()).decode("ascii")}).encode()
    request = urllib.request.Request(
        base_url.rstrip("/") + "/predict", data=body, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, payload = response.status, response.read()
    except urllib.error.HTTPError as error:
        return False, f"HTTP {error.code}: {error.read()[:500].decode('utf-8', 'replace')}"
    except (urllib.error.URLError, OSError) as error:
        return False, f"request failed: {error}"
    try:
        scores = json.loads(payload)
    except ValueError:
        return False, f"HTTP {status} but the body is not JSON: {payload[:200]!r}"
    if status != 200 or not isinstance(scores, dict) or not scores:
        return False, f"HTTP {status}, expected 200 and a JSON object of scores: {payload[:300]!r}"
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in scores.values()):
        return False, f"scores are not all numbers: {payload[:300]!r}"
    best = max(scores, key=scores.get)
    return True, f"ok: {len(scores)} scores, top {best}={scores[best]:.4g}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.selftest", description=__doc__.splitlines()[0])
    parser.add_argument("url", help="base URL of the gateway, e.g. http://gateway:9696")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds (default 30)")
    args = parser.parse_args(argv)
    ok, message = run(args.url, args.timeout)
    print(message, file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
