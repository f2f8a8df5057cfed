"""Training data: a project's dataset *spec* (a JSON-able dict in `doc.datasets`) read into arrays for `fit`.

Spec kinds (key `kind`):
- `npz`: `{"path": .npz, "x": [array per model input], "y": [array per model output], "validation": {"path"?,
  "x", "y"} | "validation_split": f}`; a `.npy` is one 2-D array whose columns `x` and `y` pick by index (`x`
  left out: every column that `y` does not take).
- `csv`: `{"path", "features": [columns], "label": column | [columns], "label_mode": "int" | "one_hot" | "float",
  "standardize": bool, "validation_split" | "validation": {"path"}}`. Class labels (strings allowed) map to
  0..K-1 in sorted order (numerically when every label is a number); standardization is fitted on the training
  part only and applied to the validation part.
- `text`: `{"path": a folder with one sub-folder of .txt files per class | a .csv, "text_column", "label_column",
  "num_words", "maxlen", "validation_split" | "validation": {"path"}, "texts_as": "token_ids" | "strings"}` ->
  padded token ids from a `Tokenizer` fitted on the training texts only (`token_ids`, the default), or the raw
  texts (`strings`: a numpy array of dtype object holding str, shape (n, 1), for a model whose Input has dtype
  "string" and turns text into ids itself with TextVectorization; num_words and maxlen are then unused), and
  integer labels. A folder's files are taken, shuffled (`seed`, default 0)
  and split as Keras's `text_dataset_from_directory(shuffle=True, seed=seed, validation_split=f)` takes them:
  the same files train and validate.
- no `kind`: the older reference `{"path", "x", "y", "validation": {"x", "y", "path"?}}` (.npz arrays, or .csv/.npy
  columns), which `python main.py train` has always read.

A validation split takes the LAST fraction of the samples, before any shuffling, as Keras's `validation_split`
does, so the split a spec makes is the one fit would make (a text folder: the one text_dataset_from_directory
makes). Paths are relative to the project's folder; `sample:FILE`
names a file of the bundled samples (`resources/datasets/`). Bad data raises `DataError` naming the file, and for a
CSV the row and column.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import InputDataError
from core.graph import is_text, text_array

SAMPLES_DIR = Path(__file__).resolve().parents[1] / "resources" / "datasets"
SAMPLE_PREFIX = "sample:"
KINDS = ("npz", "csv", "text")
TEXTS_AS = ("token_ids", "strings")
LABEL_MODES = ("int", "one_hot", "float")
_MISSING = {"", "na", "n/a", "nan", "null", "none", "?"}  # cells that stand for "no value" in CSV exports


class DataError(InputDataError):
    """A dataset cannot be read or does not make the arrays its spec asks for."""


@dataclass
class LoadedData:
    x: list
    y: list
    validation: tuple | None = None          # (x list, y list)
    class_names: list | None = None          # label i is class_names[i]
    texts: list | None = None                # the training samples' raw text (text data)
    feature_names: list | None = None
    description: str = ""
    standardization: tuple | None = None     # (mean, std) per feature, fitted on the training part


# -- where files are ------------------------------------------------------------------------------------------------
def resolve_path(spec_path, base) -> Path:
    """The file a spec's `path` names: `sample:FILE` in the bundled samples, a relative path in `base` (the project's
    folder; the working directory when None), or an absolute path."""
    if not isinstance(spec_path, (str, Path)) or not str(spec_path):
        raise DataError(f"a dataset needs a 'path' (a file, or sample:NAME), got {spec_path!r}.")
    text = str(spec_path)
    if text.startswith(SAMPLE_PREFIX):
        name = text[len(SAMPLE_PREFIX):]
        if not name or "/" in name or "\\" in name or name.startswith("."):
            raise DataError(f"'{text}' is not a sample dataset name (sample:FILE, a file of {SAMPLES_DIR}).")
        path = SAMPLES_DIR / name
        if not path.exists():
            names = ", ".join(sorted(s["spec"]["path"] for s in sample_datasets()))
            raise DataError(f"there is no sample dataset '{text}' (the samples are: {names}).")
        return path
    path = Path(text).expanduser()
    if not path.is_absolute() and base is not None:
        path = Path(base) / path
    return path


def sample_datasets() -> list[dict]:
    """The bundled samples: `{"name", "title", "licence", "spec"}` each (a fresh copy: callers may edit it)."""
    return json.loads((SAMPLES_DIR / "samples.json").read_text(encoding="utf-8"))


# -- CSV files ------------------------------------------------------------------------------------------------------
class _Table:
    """A CSV file's header and rows (all text), with each row's line number for messages."""

    def __init__(self, path: Path, header: list[str], rows: list[list[str]], lines: list[int]):
        self.path, self.header, self.rows, self.lines = path, header, rows, lines

    def where(self, row: int, col: int | None = None) -> str:
        at = f"'{self.path.name}', row {row + 1} (line {self.lines[row]})"
        return at if col is None else f"{at}, column '{self.header[col]}'"

    def index(self, name, what: str) -> int:
        if name not in self.header:
            raise DataError(f"'{self.path.name}' has no column '{name}' for the {what} (its columns: "
                            f"{', '.join(self.header)}).")
        return self.header.index(name)

    def text(self, col: int) -> list[str]:
        return [r[col] for r in self.rows]

    def numbers(self, col: int) -> np.ndarray:
        cells = self.text(col)
        try:
            values = np.array(cells, dtype=np.float64)
        except ValueError:
            values = None
        if values is not None and not np.isnan(values).any():
            return values
        for i, cell in enumerate(cells):  # find the first cell that is not a number, to name it
            if cell.strip().lower() in _MISSING:
                raise DataError(f"{self.where(i, col)}: missing value" + (f" ({cell.strip()!r})" if cell.strip()
                                                                          else "") + "; every cell needs a number.")
            try:
                float(cell)
            except ValueError:
                raise DataError(f"{self.where(i, col)}: {cell!r} is not a number (the column is read as "
                                f"numbers).") from None
        raise DataError(f"'{self.path.name}', column '{self.header[col]}': could not be read as numbers.")


def _read_csv(path: Path, limit: int | None = None) -> _Table:
    """Read a CSV with a header row; blank lines are skipped; a row with a different number of fields than the
    header is an error naming its row (unless `limit` rows are read for a preview, which shows them as they are)."""
    _check_file(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                raise DataError(f"'{path.name}' is empty: a CSV needs a header row naming its columns.")
            header = [h.strip() for h in header]
            rows, lines = [], []
            for row in reader:
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                if len(row) != len(header) and limit is None:
                    raise DataError(f"'{path.name}', row {len(rows) + 1} (line {reader.line_num}): {len(row)} "
                                    f"field(s), but the header has {len(header)} columns (a ragged row).")
                rows.append(row)
                lines.append(reader.line_num)
                if limit is not None and len(rows) >= limit:
                    break
    except UnicodeDecodeError as exc:
        raise DataError(f"'{path.name}' is not UTF-8 text: {exc}") from None
    except csv.Error as exc:
        raise DataError(f"'{path.name}' is not a readable CSV file: {exc}") from None
    if len(set(header)) != len(header):
        dup = next(h for h in header if header.count(h) > 1)
        raise DataError(f"'{path.name}': the header names column '{dup}' twice.")
    return _Table(path, header, rows, lines)


def _check_file(path: Path, folder: bool = False) -> None:
    if folder and path.is_dir():
        return
    if not path.exists():
        raise DataError(f"data file '{path}' not found.")
    if not folder and not path.is_file():
        raise DataError(f"'{path}' is a folder, not a data file.")


# -- labels ---------------------------------------------------------------------------------------------------------
def _class_names(values: list[str]) -> list[str]:
    """Distinct labels in sorted order: by value when every label is a number, else as text."""
    distinct = set(values)
    try:
        return sorted(distinct, key=float)
    except ValueError:
        return sorted(distinct)


def _encode_labels(table: _Table, col: int, names: list[str] | None):
    """(label ids, class names): the names are found here for a training file and given for a validation file."""
    cells = [c.strip() for c in table.text(col)]
    for i, c in enumerate(cells):
        if c.lower() in _MISSING - {"none"} or not c:
            raise DataError(f"{table.where(i, col)}: missing label" + (f" ({c!r})" if c else "") + ".")
    if names is None:
        names = _class_names(cells)
    ids = {n: i for i, n in enumerate(names)}
    for i, c in enumerate(cells):
        if c not in ids:
            raise DataError(f"{table.where(i, col)}: label {c!r} is not one of the training data's classes "
                            f"({', '.join(names)}).")
    return np.array([ids[c] for c in cells], dtype=np.int64), names


# -- splitting ------------------------------------------------------------------------------------------------------
def _split_fraction(spec: dict, where: str) -> float:
    f = spec.get("validation_split")
    if f is None or f == 0:
        return 0.0
    if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0.0 < f < 1.0:
        raise DataError(f"{where}: validation_split must be a number between 0 and 1, got {f!r}.")
    if spec.get("validation"):
        raise DataError(f"{where}: give either a validation_split or a validation file, not both.")
    return float(f)


def _cut(n: int, fraction: float, where: str) -> int:
    """Where Keras's validation_split cuts n samples (the last `fraction` validate)."""
    cut = int(n * (1.0 - fraction))
    if cut == 0 or cut == n:
        raise DataError(f"{where}: validation_split={fraction} leaves no samples for training or validation "
                        f"({n} samples).")
    return cut


def _validation_path(spec: dict, base, where: str) -> Path | None:
    val = spec.get("validation")
    if not val:
        return None
    if not isinstance(val, dict) or not val.get("path"):
        raise DataError(f"{where}: 'validation' must be an object with the validation file's 'path', got {val!r}.")
    return resolve_path(val["path"], base)


# -- the kinds ------------------------------------------------------------------------------------------------------
def _where(spec) -> str:
    return f"dataset '{spec.get('name', '?')}'" if isinstance(spec, dict) else "dataset"


def load_dataset(spec: dict, base=None) -> LoadedData:
    """Read the data a spec describes (see the module's docstring); raises DataError on bad input."""
    if not isinstance(spec, dict):
        raise DataError(f"a dataset spec must be an object, got {spec!r}.")
    kind = spec.get("kind")
    if kind is None:
        x, y, val = dataset_arrays(spec, Path(base) if base is not None else Path.cwd())
        return LoadedData(x, y, val, description=_array_description(x, y, val))
    if kind == "npz":
        return _load_npz(spec, base)
    if kind == "csv":
        return _load_csv(spec, base)
    if kind == "text":
        return _load_text(spec, base)
    raise DataError(f"{_where(spec)}: unknown kind {kind!r} (expected one of {', '.join(KINDS)}).")


def _split_arrays(x: list, y: list, fraction: float, where: str):
    n = len(x[0])
    sizes = {len(a) for a in x + y}
    if len(sizes) != 1:
        raise DataError(f"{where}: the arrays have different numbers of samples ({sorted(sizes)}).")
    if not fraction:
        return x, y, None
    cut = _cut(n, fraction, where)
    return [a[:cut] for a in x], [a[:cut] for a in y], ([a[cut:] for a in x], [a[cut:] for a in y])


def _load_npz(spec: dict, base) -> LoadedData:
    where = _where(spec)
    fraction = _split_fraction(spec, where)
    if "y" not in spec:
        raise DataError(f"{where}: an npz dataset needs 'y' (the arrays, or columns, of the targets).")
    path = resolve_path(spec.get("path"), base)
    if path.suffix.lower() == ".npy" and spec.get("x") is None:
        x_names = None  # every column that y does not take
    else:
        if "x" not in spec:
            raise DataError(f"{where}: an npz dataset needs 'x' (the arrays of the model's inputs, in order).")
        x_names = _names(spec["x"], "x", where)
    x, y = _load_arrays(path, x_names, _names(spec["y"], "y", where), where)
    x, y, val = _split_arrays(x, y, fraction, where)
    if spec.get("validation"):
        v = spec["validation"]
        if not isinstance(v, dict) or "y" not in v or ("x" not in v and x_names is not None):
            raise DataError(f"{where}: 'validation' must be an object with 'x' and 'y' (and optionally 'path'), "
                            f"got {v!r}.")
        vpath = resolve_path(v["path"], base) if v.get("path") else path
        vw = where + " validation"
        vx_names = None if v.get("x") is None else _names(v["x"], "x", vw)
        val = _load_arrays(vpath, vx_names, _names(v["y"], "y", vw), vw)
    return LoadedData(x, y, val, description=_array_description(x, y, val))


def _load_csv(spec: dict, base) -> LoadedData:
    where = _where(spec)
    fraction = _split_fraction(spec, where)
    mode = spec.get("label_mode", "int")
    if mode not in LABEL_MODES:
        raise DataError(f"{where}: label_mode must be one of {', '.join(LABEL_MODES)}, got {mode!r}.")
    labels = spec.get("label")
    if not labels:
        raise DataError(f"{where}: a CSV dataset needs 'label', the column (or columns) the model predicts.")
    labels = [labels] if isinstance(labels, str) else list(labels)
    if mode != "float" and len(labels) != 1:
        raise DataError(f"{where}: class labels come from one column; got {labels} (use label_mode 'float' for "
                        f"several regression targets).")
    table = _read_csv(resolve_path(spec.get("path"), base))
    features = spec.get("features")
    if features is None:
        features = [h for h in table.header if h not in labels]
    if not features:
        raise DataError(f"{where}: no feature columns: '{table.path.name}' has only {', '.join(table.header)}.")
    if set(features) & set(labels):
        raise DataError(f"{where}: column '{sorted(set(features) & set(labels))[0]}' is both a feature and a label.")

    def arrays(t: _Table, names):
        if not t.rows:
            raise DataError(f"'{t.path.name}' has a header but no rows.")
        x = np.stack([t.numbers(t.index(f, "features")) for f in features], axis=1)
        if mode == "float":
            y = np.stack([t.numbers(t.index(c, "label")) for c in labels], axis=1).astype(np.float32)
        else:
            y, names = _encode_labels(t, t.index(labels[0], "label"), names)
        return x, y, names

    x, y, names = arrays(table, None)
    vpath = _validation_path(spec, base, where)
    if vpath is not None:
        vx, vy, _ = arrays(_read_csv(vpath), names)
    elif fraction:
        cut = _cut(len(x), fraction, where)
        x, vx, y, vy = x[:cut], x[cut:], y[:cut], y[cut:]
    else:
        vx = vy = None
    stats = None
    if spec.get("standardize"):
        mean, std = x.mean(axis=0), x.std(axis=0)
        std = np.where(std > 0, std, 1.0)  # a constant column stays constant (0) instead of dividing by zero
        x = (x - mean) / std
        vx = None if vx is None else (vx - mean) / std
        stats = (mean.astype(np.float32), std.astype(np.float32))
    if mode == "one_hot":
        eye = np.eye(len(names), dtype=np.float32)
        y, vy = eye[y], (None if vy is None else eye[vy])
    val = None if vx is None else ([vx.astype(np.float32)], [vy])
    n_val = 0 if val is None else len(vx)
    what = f"{len(names)} classes" if mode != "float" else f"{len(labels)} target(s)"
    desc = f"{len(x) + n_val} samples, {len(features)} features, {what}" + \
        (f" ({len(x)} for training, {n_val} for validation)" if val else "")
    return LoadedData([x.astype(np.float32)], [y], val, class_names=None if mode == "float" else names,
                      feature_names=list(features), description=desc, standardization=stats)


def _text_files(folder: Path, where: str, seed: int) -> list[tuple[Path, str]]:
    """(file, class) pairs of a folder with one sub-folder of .txt files per class, in the order Keras's
    `text_dataset_from_directory(shuffle=True, seed=seed)` takes them: classes sorted, each class folder walked
    with its folders and files sorted, then the whole list shuffled by `np.random.RandomState(seed)`
    (keras/src/utils/dataset_utils.py, index_directory)."""
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(f"{where}: '{folder}' has no sub-folders; a text folder holds one sub-folder of .txt files "
                        f"per class.")
    files = []
    for c in classes:
        for root, _, names in sorted(os.walk(folder / c), key=lambda walked: walked[0]):
            files += [(Path(root) / n, c) for n in sorted(names) if n.lower().endswith(".txt")]
    if not files:
        raise DataError(f"{where}: the class folders of '{folder}' ({', '.join(classes)}) hold no .txt files.")
    np.random.RandomState(seed).shuffle(files)
    return files


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"'{path}' is not UTF-8 text: {exc}") from None


def _seed(spec: dict, where: str) -> int:
    seed = spec.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2 ** 32:
        raise DataError(f"{where}: 'seed' must be a whole number from 0 to 2**32 - 1, got {seed!r}.")
    return seed


def _texts(path: Path, spec: dict, where: str, names: list | None):
    """(texts, label ids, class names) from a folder of class folders or a CSV's text and label columns."""
    if path.is_dir():
        files = _text_files(path, where, _seed(spec, where))
        names = names or sorted({c for _, c in files})
        unknown = [c for _, c in files if c not in names]
        if unknown:
            raise DataError(f"{where}: class folder '{unknown[0]}' of '{path}' is not one of the training data's "
                            f"classes ({', '.join(names)}).")
        return [_read_text(f) for f, _ in files], np.array([names.index(c) for _, c in files], np.int64), names
    table = _read_csv(path)
    text_col = table.index(spec.get("text_column", "text"), "text")
    label_col = table.index(spec.get("label_column", "label"), "labels")
    if not table.rows:
        raise DataError(f"'{path.name}' has a header but no rows.")
    y, names = _encode_labels(table, label_col, names)
    return table.text(text_col), y, names


def _positive_int(spec: dict, key: str, where: str) -> int:
    v = spec.get(key)
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise DataError(f"{where}: '{key}' must be a positive integer, got {v!r}.")
    return v


def _load_text(spec: dict, base) -> LoadedData:
    from core.preprocessing.sequence import pad_sequences
    from core.preprocessing.text import Tokenizer

    where = _where(spec)
    fraction = _split_fraction(spec, where)
    texts_as = spec.get("texts_as", "token_ids")
    if texts_as not in TEXTS_AS:
        raise DataError(f"{where}: 'texts_as' must be one of {', '.join(TEXTS_AS)}, got {texts_as!r}.")
    if texts_as == "token_ids":
        num_words = _positive_int(spec, "num_words", where)
        maxlen = _positive_int(spec, "maxlen", where)
    path = resolve_path(spec.get("path"), base)
    _check_file(path, folder=True)
    texts, y, names = _texts(path, spec, where, None)
    vpath = _validation_path(spec, base, where)
    if vpath is not None:
        _check_file(vpath, folder=True)
        vtexts, vy, _ = _texts(vpath, spec, where + " validation", names)
    elif fraction:
        if path.is_dir():  # text_dataset_from_directory's split: int(fraction * n) files validate
            cut = len(texts) - int(fraction * len(texts))
            if cut in (0, len(texts)):
                raise DataError(f"{where}: validation_split={fraction} leaves no texts for training or validation "
                                f"({len(texts)} texts).")
        else:
            cut = _cut(len(texts), fraction, where)
        texts, vtexts, y, vy = texts[:cut], texts[cut:], y[:cut], y[cut:]
    else:
        vtexts = vy = None
    if texts_as == "strings":
        val = None if vtexts is None else ([_text_column(vtexts)], [vy])
        desc = f"{len(texts) + (len(vtexts) if val else 0)} texts, {len(names)} classes, fed as raw text" + \
               (f" ({len(texts)} for training, {len(vtexts)} for validation)" if val else "")
        return LoadedData([_text_column(texts)], [y], val, class_names=names, texts=list(texts), description=desc)
    tokenizer = Tokenizer(num_words=num_words)
    tokenizer.fit_on_texts(texts)

    def ids(t):
        return pad_sequences(tokenizer.texts_to_sequences(t), maxlen=maxlen)

    val = None if vtexts is None else ([ids(vtexts)], [vy])
    kept = min(num_words - 1, len(tokenizer.word_index))
    desc = f"{len(texts) + (len(vtexts) if val else 0)} texts, {len(names)} classes, {kept:,} of " \
           f"{len(tokenizer.word_index):,} words kept, length {maxlen}" + \
           (f" ({len(texts)} for training, {len(vtexts)} for validation)" if val else "")
    return LoadedData([ids(texts)], [y], val, class_names=names, texts=list(texts), description=desc)


def _text_column(texts) -> np.ndarray:
    """Raw texts as a model with a string Input takes them: one text per row, (n, 1), object array of str."""
    return text_array(np.array(list(texts), dtype=object).reshape(-1, 1))


def _array_description(x, y, val) -> str:
    def shapes(arrays):
        return ", ".join(f"{tuple(a.shape[1:])} {a.dtype}" for a in arrays)

    n, n_val = len(x[0]), (len(val[0][0]) if val and val[0] else 0)
    desc = f"{n + n_val} samples: x {shapes(x)} -> y {shapes(y)}"
    return desc + (f" ({n} for training, {n_val} for validation)" if val else "")


# -- preview --------------------------------------------------------------------------------------------------------
def file_columns(path: Path) -> list[str]:
    """What a spec can name in a file: a CSV's columns, an .npz's arrays, a 2-D .npy's column indices ("0", ...),
    a text folder's classes."""
    path = Path(path)
    if path.is_dir():
        return sorted({c for _, c in _text_files(path, f"'{path.name}'", 0)})
    _check_file(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_csv(path, limit=0).header
    if suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as z:
                return list(z.files)
        except (OSError, ValueError) as exc:
            raise DataError(f"cannot read '{path}': {exc}") from None
    if suffix == ".npy":
        arr = _read_npy(path, f"'{path.name}'", mmap=True)  # only its shape is needed
        return [str(i) for i in range(arr.shape[1])] if arr.ndim == 2 else []
    raise DataError(f"data file '{path.name}' is not .csv, .npz, .npy or a text folder.")



def _cell(value) -> str:
    a = np.asarray(value)
    if a.ndim == 0:
        return f"{a.item():.4g}" if a.dtype.kind == "f" else str(a.item())
    flat = a.ravel()
    head = ", ".join(_cell(v) for v in flat[:6])
    return f"[{head}{', …' if flat.size > 6 else ''}]"


def preview(spec: dict, base=None, rows: int = 20) -> tuple[list[str], list[list[str]]]:
    """(column headers, the first rows as text) of the file a spec names: a CSV's own columns; for .npz one column
    per array named with its shape and dtype; for a text folder the class, file and text."""
    if not isinstance(spec, dict):
        raise DataError(f"a dataset spec must be an object, got {spec!r}.")
    path = resolve_path(spec.get("path"), base)
    if path.is_dir() and spec.get("kind") == "text":
        out = []
        for f, c in _text_files(path, _where(spec), _seed(spec, _where(spec)))[:rows]:
            text = " ".join(_read_text(f).split())
            out.append([c, f.name, text[:200] + ("…" if len(text) > 200 else "")])
        return ["class", "file", "text"], out
    _check_file(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        table = _read_csv(path, limit=rows)
        width = len(table.header)
        return table.header, [(r + [""] * width)[:width] if len(r) != width else r for r in table.rows]
    if suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError) as exc:
            raise DataError(f"cannot read '{path}': {exc}") from None
        headers = [f"{k} {a.shape} {a.dtype}" for k, a in arrays.items()]
        n = min(rows, max((len(a) for a in arrays.values() if a.ndim), default=0))
        return headers, [[_cell(a[i]) if a.ndim and i < len(a) else "" for a in arrays.values()] for i in range(n)]
    if suffix == ".npy":
        arr = _read_npy(path, where=_where(spec))
        if arr.ndim == 2:
            return [str(i) for i in range(arr.shape[1])], [[_cell(v) for v in r] for r in arr[:rows]]
        return [f"{path.stem} {arr.shape} {arr.dtype}"], [[_cell(a)] for a in arr[:rows]]
    raise DataError(f"data file '{path.name}' is not .csv, .npz, .npy or a text folder.")


# -- does the data fit the model? -----------------------------------------------------------------------------------
def _shape(shape) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def output_name(tensor) -> str:
    """An output's name as Keras gives it (its layer's name; fit's logs and losses by output use it)."""
    history = getattr(tensor, "_keras_history", None)
    return history[0].name if history else tensor.name


def embeddings_fed_by(model, tensor) -> list:
    """The Embedding layers that read a model input directly (their input_dim bounds its token ids)."""
    return [layer for layer in model.layers
            if type(layer).__name__ == "Embedding" and getattr(layer, "input", None) is tensor]


def _input_problems(model, xs, what: str) -> dict[str, str]:
    """A message per model input that the arrays do not fit (by the input's name)."""
    problems = {}
    for tensor, a in zip(model.inputs, xs):
        name, shape = tensor.name, tuple(tensor.shape)
        text_input = str(tensor.dtype) == "string"
        if text_input or is_text(a):
            problem = _text_problem(name, shape, str(tensor.dtype), a, what)
            if problem:
                problems[name] = problem
            continue
        if a.ndim != len(shape) or any(s is not None and s != d for s, d in zip(shape[1:], a.shape[1:])):
            problems[name] = f"{what}input '{name}' expects {_shape(shape)}, the data gives {_shape(a.shape)}."
        elif a.dtype.kind not in "biuf":
            problems[name] = f"{what}input '{name}' expects numbers ({tensor.dtype}), the data gives {a.dtype}."
        elif np.dtype(tensor.dtype).kind in "iu" and a.dtype.kind == "f" and a.size and np.any(a != np.round(a)):
            problems[name] = (f"{what}input '{name}' expects whole numbers ({tensor.dtype}: token ids), the data "
                              f"gives {a.dtype} values with fractions.")
        else:
            for emb in embeddings_fed_by(model, tensor):
                if a.size and (a.max() >= emb.input_dim or a.min() < 0):
                    problems[name] = (f"{what}input '{name}' feeds Embedding '{emb.name}' with input_dim "
                                      f"{emb.input_dim}, but the data holds ids from {a.min()} to {a.max()}: set "
                                      f"input_dim to at least {int(a.max()) + 1} (or keep fewer words).")
    return problems


def _text_problem(name, shape, dtype: str, a: np.ndarray, what: str) -> str | None:
    """The problem with feeding `a` to an input where one side is text: strings into a number input, numbers into
    a string input, or a shape that differs by more than the trailing axis of 1 that Keras adds or drops."""
    if dtype != "string":
        return (f"{what}input '{name}' expects numbers ({dtype}), the data gives raw text (strings). Give the input "
                f"dtype string and turn the text into ids inside the model (TextVectorization), or let the Data panel "
                f"feed token ids (Texts as: token ids).")
    if not is_text(a):
        return (f"{what}input '{name}' expects text (dtype string), the data gives {a.dtype} numbers. Choose text "
                f"data fed as raw text (Data panel, Texts as: raw text), or give the input a number dtype.")
    dims, given = tuple(shape[1:]), tuple(a.shape[1:])

    def same(want, got):
        return len(want) == len(got) and all(w is None or w == g for w, g in zip(want, got))

    if same(dims, given) or same(dims + (1,), given) or (dims[-1:] == (1,) and same(dims[:-1], given)):
        return None
    return f"{what}input '{name}' expects {_shape(shape)}, the data gives {_shape(a.shape)}."


def _label_problem(name, shape, y, class_names, what: str) -> str | None:
    """The problem with integer class labels for an output of `shape` (its last axis: one unit per class)."""
    units = shape[-1]
    if any(s is not None and s != d for s, d in zip(shape[1:-1], y.shape[1:])):
        return f"{what}output '{name}' expects labels of shape {_shape(shape[:-1])}, the data gives {_shape(y.shape)}."
    classes = len(class_names) if class_names else (int(y.max()) + 1 if y.size else 0)
    if units == 1:
        return None if classes <= 2 else (f"{what}output '{name}' has 1 unit (a yes/no output), but the data has "
                                          f"{classes} classes.")
    if classes > units or (class_names and classes != units):
        return f"{what}output '{name}' has {units} units, but the data has {classes} classes: give it {classes} units."
    return None


def _output_problems(model, ys, class_names, what: str) -> dict[str, str]:
    """A message per model output that the targets do not fit (by the output's name)."""
    problems = {}
    for tensor, y in zip(model.outputs, ys):
        name, shape = output_name(tensor), tuple(tensor.shape)
        if y.dtype.kind in "iu" and y.ndim == len(shape) - 1 and shape[-1] is not None:
            problem = _label_problem(name, shape, y, class_names, what)
        elif y.ndim == len(shape) - 1 and shape[-1] == 1:
            problem = None  # (n,) targets for an output of one unit
        elif y.ndim != len(shape) or any(s is not None and s != d for s, d in zip(shape[1:], y.shape[1:])):
            problem = f"{what}output '{name}' gives {_shape(shape)}, the targets are {_shape(y.shape)}."
        else:
            problem = None
        if problem:
            problems[name] = problem
    return problems


def check_fits(data: LoadedData, model) -> list[str]:
    """Messages naming each model input or output that the data does not fit (and both shapes); [] when it fits."""
    problems, named = [], set()  # an input or output the training part does not fit is named once, not again
    sets = [("", data.x, data.y)] + ([("validation ", *data.validation)] if data.validation else [])
    for what, xs, ys in sets:
        if len(xs) != len(model.inputs):
            names = ", ".join(f"'{t.name}'" for t in model.inputs)
            problems.append(f"{what}data gives {len(xs)} input array(s); the model has {len(model.inputs)} "
                            f"input(s) ({names}).")
        if len(ys) != len(model.outputs):
            names = ", ".join(f"'{output_name(t)}'" for t in model.outputs)
            problems.append(f"{what}data gives {len(ys)} target array(s); the model has {len(model.outputs)} "
                            f"output(s) ({names}).")
        found = {}
        if len(xs) == len(model.inputs):
            found.update({("input", k): v for k, v in _input_problems(model, xs, what).items()})
        if len(ys) == len(model.outputs):
            found.update({("output", k): v for k, v in _output_problems(model, ys, data.class_names, what).items()})
        problems += [message for key, message in found.items() if key not in named]
        named |= set(found)
        counts = {len(a) for a in list(xs) + list(ys)}
        if len(counts) > 1:
            problems.append(f"{what}data: the arrays have different numbers of samples ({sorted(counts)}).")
    return problems


# -- the older reference form (what `python main.py train` has always read) -----------------------------------------
def _names(value, what: str, where: str) -> list:
    if isinstance(value, (str, int)):
        return [value]
    if not isinstance(value, list) or not value:
        raise DataError(f"{where}: '{what}' must name the arrays (a list such as [\"{what}_train\"]), got {value!r}.")
    return value


def _read_npy(path: Path, where: str, mmap: bool = False) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False, mmap_mode="r" if mmap else None)
    except (OSError, ValueError) as exc:
        raise DataError(f"{where}: cannot read '{path}': {exc}") from None


def _read_table(path: Path, where: str):
    """(column names or None, 2-D float array) of a .csv (with a header row) or a .npy file."""
    if path.suffix.lower() == ".npy":
        arr = _read_npy(path, where)
        if arr.ndim != 2:
            raise DataError(f"{where}: '{path.name}' holds an array of shape {arr.shape}; a .npy dataset is one 2-D "
                            f"array whose columns 'x' and 'y' pick by index.")
        return None, arr
    table = _read_csv(path)
    if not table.rows:
        raise DataError(f"{where}: '{path.name}' has a header but no rows.")
    return table.header, np.stack([table.numbers(i) for i in range(len(table.header))], axis=1)


def _columns(header, table, names, path: Path, where: str) -> np.ndarray:
    index = []
    for n in names:
        if header is None:
            if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n < table.shape[1]:
                raise DataError(f"{where}: column {n!r} is not a column index of '{path.name}' (0 to "
                                f"{table.shape[1] - 1}).")
            index.append(n)
        elif n not in header:
            raise DataError(f"{where}: '{path.name}' has no column '{n}' (it has: {', '.join(header)}).")
        else:
            index.append(header.index(n))
    return table[:, index]


def _load_arrays(path: Path, x_names, y_names, where: str):
    """([x arrays], [y arrays]) named by a dataset reference; .npz names arrays, .csv/.npy name columns (x_names
    None: every column that y does not take)."""
    if not path.is_file():
        raise DataError(f"{where}: data file '{path}' not found.")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        if x_names is None:
            raise DataError(f"{where}: name the arrays of '{path.name}' that feed the model ('x').")
        try:
            with np.load(path, allow_pickle=False) as z:
                stored = set(z.files)
                missing = [n for n in list(x_names) + list(y_names) if n not in stored]
                if missing:
                    raise DataError(f"{where}: '{path.name}' has no array named {missing[0]!r} (it has: "
                                    f"{', '.join(sorted(stored))}).")
                return [z[n] for n in x_names], [z[n] for n in y_names]
        except (OSError, ValueError) as exc:
            if isinstance(exc, DataError):
                raise
            raise DataError(f"{where}: cannot read '{path}': {exc}") from None
    if suffix in (".csv", ".npy"):
        header, table = _read_table(path, where)
        if x_names is None:
            taken = {header.index(n) if header is not None and n in header else n for n in y_names}
            x_names = [header[i] if header is not None else i for i in range(table.shape[1]) if i not in taken]
        x = _columns(header, table, x_names, path, where)
        y = _columns(header, table, y_names, path, where)
        # All columns of a table make one input and one target; whole-number targets are class labels.
        return [x], [y.astype(np.int64) if np.all(y == np.round(y)) else y.astype(np.float32)]
    raise DataError(f"{where}: data file '{path.name}' is not .npz, .npy or .csv.")


def dataset_arrays(ref: dict, base: Path):
    """(x list, y list, validation (x list, y list) or None) of a project's dataset reference (the form without
    `kind`)."""
    where = _where(ref)
    if not isinstance(ref, dict) or "path" not in ref or "x" not in ref or "y" not in ref:
        raise DataError(f"{where}: a dataset reference needs 'path', 'x' and 'y', got {ref!r}.")
    path = resolve_path(ref["path"], base)
    x, y = _load_arrays(path, _names(ref["x"], "x", where), _names(ref["y"], "y", where), where)
    val = ref.get("validation")
    if val is None:
        return x, y, None
    if not isinstance(val, dict) or "x" not in val or "y" not in val:
        raise DataError(f"{where}: 'validation' must be an object with 'x' and 'y' (and optionally 'path'), got "
                        f"{val!r}.")
    vpath = resolve_path(val["path"], base) if "path" in val else path
    vx, vy = _load_arrays(vpath, _names(val["x"], "x", where + " validation"),
                          _names(val["y"], "y", where + " validation"), where + " validation")
    return x, y, (vx, vy)


def npz_arrays(path: Path):
    """(x list, y list, validation or None) from a `--data` .npz: x/y, or x0, x1, .../y0, y1, ...; x_val/y_val."""
    where = f"--data {path}"
    if not path.is_file():
        raise DataError(f"{where}: data file not found.")
    try:
        with np.load(path, allow_pickle=False) as z:
            files = set(z.files)
    except (OSError, ValueError) as exc:
        raise DataError(f"{where}: cannot read it as an .npz archive: {exc}") from None

    def keys(prefix):
        if prefix in files:
            return [prefix]
        numbered = []
        while f"{prefix}{len(numbered)}" in files:
            numbered.append(f"{prefix}{len(numbered)}")
        return numbered

    xk, yk = keys("x"), keys("y")
    if not xk or not yk:
        raise DataError(f"{where}: expected arrays named 'x' and 'y' (or x0, x1, ... and y0, y1, ...); it has: "
                        f"{', '.join(sorted(files))}.")
    x, y = _load_arrays(path, xk, yk, where)
    vxk, vyk = keys("x_val"), keys("y_val")
    val = _load_arrays(path, vxk, vyk, where) if vxk and vyk else None
    return x, y, val


def rebase_spec(spec: dict, old_base, new_base) -> dict:
    """The spec with its relative paths (the data's and its validation file's) rewritten for a project that moves
    from folder `old_base` to `new_base` (Save As): relative to the new folder where it can be, absolute otherwise.
    Samples and absolute paths stay as they are."""
    if not isinstance(spec, dict) or old_base is None:
        return spec

    def moved(path):
        if not isinstance(path, str) or path.startswith(SAMPLE_PREFIX) or Path(path).is_absolute():
            return path
        target = (Path(old_base) / path).resolve()
        try:
            return Path(os.path.relpath(target, Path(new_base).resolve())).as_posix()
        except ValueError:  # another drive (Windows)
            return str(target)

    out = json.loads(json.dumps(spec))
    if "path" in out:
        out["path"] = moved(out["path"])
    if isinstance(out.get("validation"), dict) and "path" in out["validation"]:
        out["validation"]["path"] = moved(out["validation"]["path"])
    return out
