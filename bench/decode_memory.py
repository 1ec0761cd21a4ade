"""Peak memory and time of decoding one near-limit upload, each case in a fresh process.

    python bench/decode_memory.py            # a 6300x6300 RGBA PNG (170 KB) and 4000x4000 / 6300x6300 JPEGs

Peak RSS is read from getrusage before and after the decode (the file is built first, so
its own construction is in the baseline, not in the figure).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CASES = (("png", 6300), ("jpeg", 4000), ("jpeg", 6300))

MEASURE = """
import io, resource, sys, time
sys.path.insert(0, sys.argv[3])
from PIL import Image
kind, side = sys.argv[1], int(sys.argv[2])
if kind == "png":
    image = Image.new("RGBA", (side, side), (10, 20, 30, 128))
    options = {"compress_level": 9}
else:
    image = Image.effect_noise((side, side), 40).convert("RGB")
    options = {"quality": 90}
buffer = io.BytesIO()
image.save(buffer, kind.upper(), **options)
data = buffer.getvalue()
del image, buffer
from app.decoding import decode_image
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
decode_image(data, 100_000_000)
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(f"{kind} {side}x{side}: {len(data) / 1e3:.0f} KB file, decode {seconds * 1000:.0f} ms, "
      f"peak RSS +{(peak - base) / 1e3:.0f} MB over the {base / 1e3:.0f} MB before it")
"""


def main() -> int:
    for kind, side in CASES:
        subprocess.run([sys.executable, "-c", MEASURE, kind, str(side), str(REPO)], check=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
