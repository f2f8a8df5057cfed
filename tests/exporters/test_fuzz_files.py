"""Fuzzing the readers with damaged copies of real Keras files: every read ends in a model or a NetweaverError.

Mutations (seeded, so a failure reproduces): truncation, byte flips (anywhere, and in the first 4 KB where HDF5 and
zip keep their structure), structural edits of JSON configs (keys deleted, values replaced by junk, tensor references
redirected), and edits inside HDF5 files (model_config rewritten, attributes and datasets removed or reshaped).
NETWEAVER_FUZZ_SEED picks another set of mutations.
"""

import copy
import io
import json
import os
import random
import time
import zipfile

import h5py
import numpy as np
import pytest

from core.errors import NetweaverError
from core.models import Model, load_model
from tests.fixture_utils import FIXTURE_ARCHITECTURES, default_fixtures_dir, fixture_path, load_fixture_model

# Every fixture architecture, except the two whose weights take ~0.3 s to initialize per build (plain
# recurrent stacks; seq2seq and bidirectional cover recurrent configs) so 500+ reads fit well within a minute.
NAMES = [n for n in FIXTURE_ARCHITECTURES if n not in ("seed_lstm", "seed_gru_simplernn")]
JUNK = [None, -1, 0, 2.5, "x", "", [], {}, [None], {"class_name": "Dense"}, True, 10 ** 9, ["a", 0, 0]]
TOTAL_CASES = 504


def _files():
    out = []
    for name in NAMES:
        out += [(name, "keras2", f"{name}.h5"), (name, "keras2", f"{name}.json"), (name, "keras3", f"{name}.h5"),
                (name, "keras3", f"{name}.keras"), (name, "keras3", f"{name}.json"),
                (name, "keras2", f"{name}_weights.h5"), (name, "keras3", f"{name}.weights.h5")]
    return out


def _json_paths(node, path=()):
    yield path
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _json_paths(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _json_paths(v, path + (i,))


def mutate_json(config, rng: random.Random):
    config = copy.deepcopy(config)
    for _ in range(rng.randint(1, 3)):
        paths = [p for p in _json_paths(config) if p]
        if not paths:
            break
        path = rng.choice(paths)
        parent = config
        for k in path[:-1]:
            parent = parent[k]
        key = path[-1]
        op = rng.random()
        if op < 0.3 and isinstance(parent, dict):
            del parent[key]
        elif op < 0.4 and isinstance(parent, list):
            parent.insert(key, copy.deepcopy(parent[key]))
        elif op < 0.5 and key in ("keras_history", 0, 1, 2) and isinstance(parent, list):
            parent[key] = rng.choice(["dense_3", "nowhere", 7, -2, 0])
        else:
            parent[key] = copy.deepcopy(rng.choice(JUNK))
    return config


def mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    if rng.random() < 0.3:
        return data[: rng.randrange(len(data))]
    buf = bytearray(data)
    head = rng.random() < 0.5
    for _ in range(rng.randint(1, 8)):
        i = rng.randrange(min(len(buf), 4096) if head else len(buf))
        buf[i] ^= 1 << rng.randrange(8)
    return bytes(buf)


def mutate_h5(data: bytes, rng: random.Random) -> bytes:
    """Structural edits through h5py: what a buggy writer (not a disk) would produce."""
    bio = io.BytesIO(data)
    with h5py.File(bio, "r+") as f:
        if "model_config" in f.attrs and rng.random() < 0.5:
            f.attrs["model_config"] = json.dumps(mutate_json(json.loads(f.attrs["model_config"]), rng))
        else:
            items = []
            f.visititems(lambda n, o: items.append(n))
            name = rng.choice(items)
            obj = f[name]
            op = rng.random()
            if op < 0.3 and obj.attrs:
                del obj.attrs[rng.choice(list(obj.attrs))]
            elif op < 0.6 and isinstance(obj, h5py.Dataset):
                data_ = np.asarray(obj[()])
                del f[name]
                f[name] = np.zeros(tuple(d + 1 for d in data_.shape), dtype=data_.dtype)
            elif op < 0.8:
                del f[name]
            else:
                f.attrs["layer_names"] = np.array([b"dense", b"nowhere"])
    return bio.getvalue()


def _read(path, name, kind):
    if kind == "weights":
        model = load_fixture_model(default_fixtures_dir(), "keras3", name, weights=False)
        model.load_weights(path)
        return model
    return load_model(path)


@pytest.mark.filterwarnings("ignore:.*loaded but not compiled")  # a damaged compile_config: the model is still fine
def test_damaged_files_end_in_a_model_or_a_netweaver_error(tmp_path):
    fixtures = default_fixtures_dir()
    rng = random.Random(int(os.environ.get("NETWEAVER_FUZZ_SEED", "20261121")))
    outcomes = {"model": 0, "error": 0}
    escaped = []
    start = time.perf_counter()
    files = _files()
    for name, generation, filename in files:
        original = fixture_path(fixtures, generation, filename).read_bytes()
        kind = "weights" if "weights" in filename else "model"
        suffix = filename[filename.index("."):]
        for i in range(-(-TOTAL_CASES // len(files))):
            if suffix == ".json":
                data = json.dumps(mutate_json(json.loads(original), rng)).encode() if rng.random() < 0.8 \
                    else mutate_bytes(original, rng)
            elif suffix.endswith(".h5") and rng.random() < 0.4:
                data = mutate_h5(original, rng)
            elif suffix == ".keras" and rng.random() < 0.4:
                with zipfile.ZipFile(io.BytesIO(original)) as z:
                    parts = {n: z.read(n) for n in z.namelist()}
                target = rng.choice(sorted(parts))
                parts[target] = json.dumps(mutate_json(json.loads(parts[target]), rng)).encode() \
                    if target.endswith(".json") else mutate_bytes(parts[target], rng)
                bio = io.BytesIO()
                with zipfile.ZipFile(bio, "w") as z:
                    for n, b in parts.items():
                        z.writestr(n, b)
                data = bio.getvalue()
            else:
                data = mutate_bytes(original, rng)
            path = tmp_path / f"case{i}{suffix}"
            path.write_bytes(data)
            try:
                result = _read(path, name, kind)
            except NetweaverError:
                outcomes["error"] += 1
            except Exception as exc:  # noqa: BLE001 - the point of the test
                escaped.append(f"{generation}/{filename} mutation {i}: {type(exc).__name__}: {str(exc)[:300]}")
            else:
                assert isinstance(result, Model)
                outcomes["model"] += 1
    elapsed = time.perf_counter() - start
    print(f"fuzz: {sum(outcomes.values())} files from {NAMES} in {elapsed:.1f} s: {outcomes}")
    assert not escaped, f"{len(escaped)} reads ended in other exceptions:\n" + "\n".join(escaped[:15])
    assert sum(outcomes.values()) >= 500
    assert outcomes["error"] > 0 and outcomes["model"] > 0
