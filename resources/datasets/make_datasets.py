"""Writes the bundled sample datasets from the packages that publish them (see README.md for each one's licence).

    pip download --no-deps scikit-learn statsmodels      # two wheels (zip files)
    apt-get download r-cran-janeaustenr                  # a Debian package (MIT); unpack with dpkg-deb -x
    pip install rdata                                    # reads R's serialized data (only this script needs it)
    python resources/datasets/make_datasets.py SKLEARN.whl STATSMODELS.whl JANEAUSTENR_DIR

Each output is drawn with a fixed seed, so running this again writes the same files. Rows are shuffled where the
source is sorted by class, because a validation split takes the LAST rows (as Keras's `validation_split` does).
"""

from __future__ import annotations

import csv
import gzip
import io
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
IRIS_COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
NOVELS = {"prideprejudice": "Pride and Prejudice", "emma": "Emma", "persuasion": "Persuasion"}
PASSAGE_WORDS = 50
PASSAGES_PER_NOVEL = 300
SUNSPOT_WINDOW = 20
SUNSPOT_TRAIN_FRACTION = 0.8  # the sample's validation_split is 0.2: the scaling is fitted on the years before it


def iris(sklearn_wheel: Path) -> None:
    """scikit-learn's iris.csv (first line: counts and class names; then 4 measurements and a class index)."""
    with zipfile.ZipFile(sklearn_wheel) as z:
        lines = z.read("sklearn/datasets/data/iris.csv").decode().splitlines()
    names = lines[0].split(",")[2:]
    rows = [line.split(",") for line in lines[1:] if line]
    order = np.random.default_rng(0).permutation(len(rows))
    with open(HERE / "iris.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(IRIS_COLUMNS + ["species"])
        for i in order:
            w.writerow(rows[i][:4] + [names[int(rows[i][4])]])


def _r_lazy_data(folder: Path) -> dict[str, list[str]]:
    """The character vectors of an R package's lazy-loaded data (data/Rdata.rdx index + Rdata.rdb entries)."""
    import rdata

    index = rdata.conversion.convert(rdata.parser.parse_data(gzip.decompress((folder / "Rdata.rdx").read_bytes())))
    blob = (folder / "Rdata.rdb").read_bytes()
    out = {}
    for name, (offset, length) in index["variables"].items():
        entry = blob[offset:offset + length]
        out[str(name)] = [str(s) for s in rdata.conversion.convert(rdata.parser.parse_data(zlib.decompress(
            entry[4:])))]  # each entry: a 4-byte length, then a zlib stream of R's serialization
    return out


def austen(janeaustenr_dir: Path) -> None:
    """Passages of 50 consecutive words from three of Jane Austen's novels, labelled with the novel."""
    books = _r_lazy_data(janeaustenr_dir / "usr/lib/R/site-library/janeaustenr/data")
    rng = np.random.default_rng(0)
    samples = []
    for key, title in NOVELS.items():
        lines = [ln for ln in books[key] if ln.strip() and not ln.strip().upper().startswith("CHAPTER")]
        words = " ".join(lines).split()
        starts = np.arange(0, len(words) - PASSAGE_WORDS, PASSAGE_WORDS)
        for s in sorted(rng.choice(starts, PASSAGES_PER_NOVEL, replace=False)):
            samples.append((" ".join(words[s:s + PASSAGE_WORDS]), title))
    order = rng.permutation(len(samples))
    with open(HERE / "austen_passages.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["text", "novel"])
        for i in order:
            w.writerow(samples[i])


def sunspots(statsmodels_wheel: Path) -> None:
    """statsmodels' yearly sunspot numbers (1700-2008) as they are, and as windows of 20 years -> the next year."""
    with zipfile.ZipFile(statsmodels_wheel) as z:
        table = list(csv.reader(io.StringIO(z.read("statsmodels/datasets/sunspots/sunspots.csv").decode())))
    years = np.array([int(float(r[0])) for r in table[1:]])
    counts = np.array([float(r[1]) for r in table[1:]])
    with open(HERE / "sunspots.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["year", "sunspots"])
        w.writerows((int(y), f"{c:g}") for y, c in zip(years, counts))
    n = len(counts) - SUNSPOT_WINDOW
    cut = int(n * SUNSPOT_TRAIN_FRACTION)
    train_years = counts[:cut + SUNSPOT_WINDOW]
    mean, std = train_years.mean(), train_years.std()
    scaled = (counts - mean) / std
    x = np.stack([scaled[i:i + SUNSPOT_WINDOW] for i in range(n)])[:, :, None].astype(np.float32)
    y = scaled[SUNSPOT_WINDOW:, None].astype(np.float32)
    np.savez_compressed(HERE / "sunspots_windows.npz", x=x, y=y, year=years[SUNSPOT_WINDOW:].astype(np.int32),
                        scale=np.array([mean, std], np.float32))


def main(argv: list[str]) -> None:
    if len(argv) != 3:
        sys.exit(__doc__)
    iris(Path(argv[0]))
    sunspots(Path(argv[1]))
    austen(Path(argv[2]))
    for f in sorted(HERE.iterdir()):
        if f.suffix in (".csv", ".npz"):
            print(f"{f.name}: {f.stat().st_size:,} bytes")


if __name__ == "__main__":
    main(sys.argv[1:])
