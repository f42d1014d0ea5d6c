"""MISA per-split pickles and MAG's dict of splits: word-aligned lists of samples (MOSI, MOSEI).

Layouts, from the code that writes and reads them:

* **MISA** (declare-lab/MISA ``src/create_dataset.py`` and code copied from it):
  ``train.pkl``, ``dev.pkl``, ``test.pkl``, each ``pickle.dump`` of a list of
  ``((word_ids int64 (L,), visual float32 (L, Dv), acoustic float32 (L, Da), words list[str]),
  label float32 (1, 1), "video[i]")`` - one step per word, ``sp`` pauses removed, visual and
  acoustic z-normalised per segment - plus ``embedding_and_mapping.pt``:
  ``torch.save((embedding_matrix (V, 300), word2id))``, rows = GloVe 840B vectors by word id.
* **MAG** (WasifurRahman/BERT_multimodal_transformer README "Dataset Format",
  ``multimodal_driver.py``): ``mosi.pkl`` / ``mosei.pkl`` = ``{"train", "dev", "test": [
  ((words list[str], visual (L, 47 | 35), acoustic (L, 74)), label_id, segment), ...]}``.

Text becomes vectors here, since MISA keeps word ids and MAG words: by word id from MISA's
``embedding_and_mapping.pt`` (exactly MISA's model input), or by word from the file the
``embeddings`` option names (a GloVe-style text file, or a MISA ``.pt``).  Sequences are
stored per sample, so there is no padding to strip; a sample with no word keeps one zero step
in every modality (as :mod:`.padding` does), counted in the report.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fusebench import DataError, safe_pickle_load, safe_torch_load

from .convert import SPLIT_ALIASES, Converted, SplitArrays, id_string
from .profiles import AffectProfile
from .sniff import outline

if TYPE_CHECKING:
    from .formats import Found

log = logging.getLogger("fusebench.data")

SPLIT_FILES = {"train": "train.pkl", "dev": "dev.pkl", "test": "test.pkl"}  # role -> file (MISA)
ROLE_SPLITS = {"train": "train", "dev": "validation", "test": "test"}
MISA_EMBEDDINGS = "embedding_and_mapping.pt"
OPTIONS: dict[str, Any] = {"embeddings": None}
UNKNOWN_WARNING = 0.10  # more unknown words than this -> a warning: probably the wrong embedding file
_FRAMES = {"vision": 1, "audio": 2}  # modality -> position in the features tuple
_SAMPLE = ("a sample is ((word ids or words, visual (L, Dv), acoustic (L, Da)[, words]), label, "
           "segment id) - MISA src/create_dataset.py, MAG README 'Dataset Format'")


def accepted_misa(profile: AffectProfile) -> str:
    return (f"MISA pickles train.pkl, dev.pkl, test.pkl (lists of ((word ids, visual, acoustic, words), "
            f"label, segment)) with MISA's {MISA_EMBEDDINGS} or --dataset-option {profile.name}.embeddings=FILE")


def accepted_mag(profile: AffectProfile) -> str:
    return (f"MAG pickle {profile.name}.pkl ({{train, dev, test}} -> lists of ((words, visual, acoustic), "
            f"label, segment)) with --dataset-option {profile.name}.embeddings=FILE")


# -- find -------------------------------------------------------------------------------------

def _embeddings_file(profile: AffectProfile, options: Mapping[str, Any], default: Path | None) -> Path | None:
    value = options.get("embeddings")
    if value in (None, ""):
        return default if default is not None and default.is_file() else None
    path = Path(str(value)).expanduser()
    if not path.is_file():
        raise DataError(f"--dataset-option {profile.name}.embeddings={value}: no such file. Give a GloVe-style "
                        "text file ('word v1 ... vD' per line, e.g. glove.840B.300d.txt from "
                        f"nlp.stanford.edu/projects/glove) or MISA's {MISA_EMBEDDINGS}.")
    return path


def find_misa(folder: Path, profile: AffectProfile, options: Mapping[str, Any]) -> Found | None:
    """``train.pkl``, ``dev.pkl`` and ``test.pkl`` whose top level is a list (sniffed on
    ``dev.pkl``, the smallest), plus the embedding source if there is one."""
    from .formats import Found, aligned_choices  # formats imports this module

    files = {role: folder / name for role, name in SPLIT_FILES.items()}
    if (True not in aligned_choices(options.get("aligned"), profile)
            or not all(p.is_file() for p in files.values()) or outline(files["dev"]) != "list"):
        return None
    embeddings = _embeddings_file(profile, options, folder / MISA_EMBEDDINGS)
    return Found({**files, **({"embeddings": embeddings} if embeddings else {})}, {"aligned": True})


def find_mag(folder: Path, profile: AffectProfile, options: Mapping[str, Any]) -> Found | None:
    """``<dataset>.pkl`` whose top level maps split names to lists (an LMF file of the same
    name maps them to dicts, :mod:`.sniff`)."""
    from .formats import Found, aligned_choices  # formats imports this module

    path = folder / f"{profile.name}.pkl"
    if (True not in aligned_choices(options.get("aligned"), profile) or not path.is_file()
            or outline(path) != "split lists"):
        return None
    embeddings = _embeddings_file(profile, options, None)
    return Found({"pickle": path, **({"embeddings": embeddings} if embeddings else {})}, {"aligned": True})


# -- samples ------------------------------------------------------------------------------------

@dataclass
class _Split:
    """One split's samples as read, before the text becomes vectors."""

    where: str
    ids: list[str] = field(default_factory=list)
    word_ids: list[np.ndarray | None] = field(default_factory=list)
    words: list[list[str] | None] = field(default_factory=list)
    frames: dict[str, list[np.ndarray | None]] = field(default_factory=lambda: {m: [] for m in _FRAMES})
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))

    def at(self, i: int) -> str:
        return f"{self.where} sample {i} (id {self.ids[i]!r})" if i < len(self.ids) else f"{self.where} sample {i}"


def _as_words(value: Any) -> list[str] | None:
    """A list of words (str, or bytes as the SDK stores them), or None if ``value`` is not one."""
    if isinstance(value, np.ndarray) and value.dtype.kind in "US":
        value = value.tolist()
    if isinstance(value, (list, tuple)) and all(isinstance(w, (str, bytes)) for w in value):
        return [w.decode("utf-8", "replace") if isinstance(w, bytes) else w for w in value]
    return None


def _tokens(features: Sequence[Any], at: str) -> tuple[np.ndarray | None, list[str] | None, int]:
    """(word ids, words, length) of a sample: MISA gives ids first and words last, MAG words only."""
    first, extra = features[0], features[3:]
    words = _as_words(first)
    ids = None
    if words is None:
        ids = np.asarray(first)
        if ids.size == 0:
            ids = ids.reshape(0).astype(np.int64)
        if ids.dtype.kind not in "iu" or ids.ndim != 1:
            raise DataError(f"{at}: element [0][0] has dtype {ids.dtype} and shape {ids.shape}; it should be the "
                            f"words (list of str) or word ids (int (L,)) - {_SAMPLE}. Take the file again from "
                            "its source.")
        ids = ids.astype(np.int64)
    if extra:
        if words is not None or _as_words(extra[0]) is None:
            raise DataError(f"{at}: element [0][3] should be the words (list of str) that go with the word ids "
                            f"in [0][0] - {_SAMPLE}. Take the file again from its source.")
        words = _as_words(extra[0])
    if words is not None and ids is not None and len(ids) != len(words):
        raise DataError(f"{at}: {len(ids)} word ids but {len(words)} words; MISA stores one id per word. "
                        "Take the file again from its source.")
    return ids, words, len(words) if words is not None else len(ids) if ids is not None else 0


def _frames(value: Any, length: int, name: str, at: str) -> np.ndarray | None:
    """A (L, D) float32 array, or None for a sample without words (MISA stores ``(0,)``)."""
    array = np.asarray(value)
    if array.dtype.kind not in "fiub":
        raise DataError(f"{at}: {name} has dtype {array.dtype}; it should be a numeric (L, D) array - {_SAMPLE}.")
    if length == 0 and array.size == 0:
        return None
    if array.ndim != 2 or array.shape[0] != length or array.shape[1] == 0:
        raise DataError(f"{at}: {name} has shape {array.shape} for {length} words; word-aligned files hold one "
                        f"{name} row per word, (L, D) - {_SAMPLE}. The modalities of this sample do not line "
                        "up; take the file again from its source.")
    return array.astype(np.float32, copy=False)


def _split(items: Any, where: str, profile: AffectProfile) -> _Split:
    if not isinstance(items, (list, tuple)) or not items:
        kind = f"an empty {type(items).__name__}" if isinstance(items, (list, tuple)) else f"a {type(items).__name__}"
        raise DataError(f"{where} holds {kind}; it should be a non-empty list of samples - {_SAMPLE}. Use the "
                        "complete file from its source.")
    out, labels = _Split(where), []
    for i, item in enumerate(items):
        at = out.at(i)
        if not (isinstance(item, (tuple, list)) and len(item) == 3):
            size = f" of length {len(item)}" if isinstance(item, (tuple, list)) else ""
            raise DataError(f"{at} is a {type(item).__name__}{size}; {_SAMPLE}. Use the file as the MISA/MAG "
                            "code writes it.")
        features, label, segment = item
        out.ids.append(id_string(segment))
        at = out.at(i)
        if not (isinstance(features, (tuple, list)) and len(features) in (3, 4)):
            raise DataError(f"{at}: element [0] should be the tuple (word ids or words, visual, acoustic[, words]), "
                            f"found a {type(features).__name__}; {_SAMPLE}.")
        ids, words, length = _tokens(features, at)
        for m, position in _FRAMES.items():
            out.frames[m].append(_frames(features[position], length, ("visual", "acoustic")[position - 1], at))
        out.word_ids.append(ids)
        out.words.append(words)
        labels.append(np.asarray(label))
    shapes = Counter(label.shape for label in labels)
    if len(shapes) > 1:
        common = shapes.most_common(1)[0][0]
        odd = next(i for i, label in enumerate(labels) if label.shape != common)
        raise DataError(f"{out.at(odd)}: label has shape {labels[odd].shape}, most samples {common}; every "
                        "sample's label (element [1]) must have the same shape. Fix or drop that sample.")
    out.labels = profile.labels(np.stack(labels), f"{where} labels (element [1] of each sample)", out.ids)
    return out


def _split_lists(data: Any, path: Path) -> dict[str, Any]:
    """MAG's top level: our split name -> the file's list of samples."""
    if not isinstance(data, Mapping):
        raise DataError(f"{path}: the pickle holds a {type(data).__name__}; a MAG file holds a dict "
                        "{'train': [...], 'dev': [...], 'test': [...]}. Check that this is the right file.")
    keys = {k.decode() if isinstance(k, bytes) else k: k for k in data}
    found = {SPLIT_ALIASES[k]: raw for k, raw in keys.items() if k in SPLIT_ALIASES}
    missing = [s for s in ("train", "validation", "test") if s not in found]
    if missing:
        raise DataError(f"{path}: top-level keys are {sorted(map(str, keys))}; a MAG file needs 'train', 'dev' "
                        f"and 'test' - missing {missing}. Use the complete file from its source.")
    return {split: data[raw] for split, raw in found.items()}


# -- text ---------------------------------------------------------------------------------------

@dataclass
class _Vectors:
    """Word vectors: ``matrix`` rows looked up by word through ``index`` (word -> row); with
    ``by_id`` the samples' word ids index ``matrix`` directly (MISA's word2id)."""

    file: Path
    source: str
    matrix: np.ndarray
    index: dict[str, int]
    by_id: bool


def _misa_vectors(path: Path) -> _Vectors:
    value = safe_torch_load(path)
    fix = (f"MISA's {MISA_EMBEDDINGS} holds (embedding matrix (V, D), word2id) as create_dataset.py saves "
           "it; use that file, or a GloVe-style text file.")
    if not (isinstance(value, (tuple, list)) and len(value) == 2):
        size = f" of {len(value)} items" if isinstance(value, (tuple, list, dict)) else ""
        raise DataError(f"{path} holds a {type(value).__name__}{size}. {fix}")
    matrix, word2id = value
    if not (isinstance(matrix, np.ndarray) and matrix.ndim == 2 and matrix.dtype.kind in "fiu"):
        shape = getattr(matrix, "shape", None)
        raise DataError(f"{path}: item 0 is a {type(matrix).__name__} {shape or ''}, not a numeric (V, D) "
                        f"embedding matrix. {fix}")
    if not (isinstance(word2id, dict)
            and all(isinstance(w, str) and type(i) is int and 0 <= i < len(matrix) for w, i in word2id.items())):
        raise DataError(f"{path}: item 1 is not a word2id mapping of words to rows 0..{len(matrix) - 1} of the "
                        f"matrix. {fix}")
    return _Vectors(path, f"MISA {MISA_EMBEDDINGS}", matrix.astype(np.float32), word2id, by_id=True)


def _glove(path: Path, needed: set[str]) -> _Vectors:
    """The vectors of ``needed`` words from a ``word v1 ... vD`` text file (GloVe; a word2vec
    text header ``count dim`` is skipped).  Words may contain spaces (glove.840B does), so a
    line's word is all but its last D fields - as MISA's own ``load_emb`` reads it; a word
    listed twice takes its last vector, as there.  Only lines whose first field starts a
    needed word are parsed, so a 5 GB file is one fast pass."""
    firsts = {w.split(" ", 1)[0] for w in needed}
    vectors: dict[str, np.ndarray] = {}
    dim = 0
    with path.open(encoding="utf-8", errors="surrogateescape") as fh:
        for number, line in enumerate(fh, 1):
            line = line.rstrip()
            if not line:
                continue
            if not dim:
                fields = line.split(" ")
                if len(fields) == 2 and all(f.isdigit() for f in fields):
                    dim = int(fields[1])
                    continue
                dim = len(fields) - 1
                if dim < 1:
                    raise DataError(f"{path} line {number} holds one field; an embeddings text file holds "
                                    "'word v1 ... vD' per line (GloVe). Check --dataset-option ...embeddings.")
            if line.split(" ", 1)[0] not in firsts:
                continue
            parts = line.rsplit(" ", dim)
            try:
                if len(parts) != dim + 1:
                    raise ValueError
                vector = np.array(parts[1:], dtype=np.float32)
            except ValueError:
                raise DataError(f"{path} line {number}: expected a word and {dim} numbers (the width of line 1), "
                                f"found {line[:60]!r}...; an embeddings text file holds 'word v1 ... vD' per line. "
                                "Use the GloVe file as downloaded.") from None
            if parts[0] in needed:
                vectors[parts[0]] = vector
    if not dim:
        raise DataError(f"{path} is empty; it should hold 'word v1 ... vD' per line (GloVe).")
    matrix = np.stack(list(vectors.values())) if vectors else np.zeros((0, dim), np.float32)
    return _Vectors(path, "GloVe-style text file", matrix, {w: i for i, w in enumerate(vectors)}, by_id=False)


def _vectors(file: Path | None, splits: Mapping[str, _Split], missing: str) -> _Vectors:
    if file is None:
        raise DataError(missing)
    with file.open("rb") as fh:
        head = fh.read(4)
    if head.startswith(b"PK\x03\x04") or head[:1] == b"\x80":  # a torch zip archive or pickle
        return _misa_vectors(file)
    needed = {w for s in splits.values() for words in s.words if words for w in words}
    if any(words is None for s in splits.values() for words in s.words):
        raise DataError(f"{file} is a text file of word vectors, but some samples hold only word ids (no words) "
                        f"to look up; word ids need the {MISA_EMBEDDINGS} written with the pickles.")
    return _glove(file, needed)


def _text(split: _Split, vectors: _Vectors, unknown: Counter[str], looked_up: Counter[str]) -> list[np.ndarray | None]:
    """Per sample (L, D) vectors: MISA word ids index the matrix (their words must map to the
    same ids, else the .pt belongs to other pickles); words are looked up, unknown -> zeros
    (``looked_up`` counts words looked up, ``unknown`` those not found)."""
    out: list[np.ndarray | None] = []
    matrix, index = vectors.matrix, vectors.index
    for i, (ids, words) in enumerate(zip(split.word_ids, split.words, strict=True)):
        if vectors.by_id and ids is not None:
            if ids.size and (ids.min() < 0 or ids.max() >= len(matrix)):
                raise DataError(f"{split.at(i)}: word ids run to {int(ids.max())}, but {vectors.file} has "
                                f"{len(matrix)} rows; the .pt belongs to other pickles. Use the "
                                f"{MISA_EMBEDDINGS} written with these pickles.")
            if words is not None:
                wrong = [(w, int(k)) for w, k in zip(words, ids, strict=True) if index.get(w) != k]
                if wrong:
                    w, k = wrong[0]
                    raise DataError(f"{split.at(i)}: word {w!r} has id {k} in the pickle but {index.get(w)} in "
                                    f"{vectors.file}'s word2id; the .pt belongs to other pickles. Use the "
                                    f"{MISA_EMBEDDINGS} written with these pickles, or a GloVe text file "
                                    "(--dataset-option ...embeddings=FILE: the words are looked up).")
            rows = matrix[ids]
        else:
            rows = np.zeros((len(words or ()), matrix.shape[1]), np.float32)
            looked_up["words"] += len(rows)
            for step, word in enumerate(words or ()):
                row = index.get(word)
                if row is None:
                    unknown[word] += 1
                else:
                    rows[step] = matrix[row]
        out.append(rows if len(rows) else None)
    return out


# -- read ---------------------------------------------------------------------------------------

def _width(sequences: Mapping[str, list[np.ndarray | None]], splits: Mapping[str, _Split], modality: str) -> int:
    """The one feature width of ``modality`` across all samples (word-aligned files have one)."""
    widths = {split: {a.shape[1] for a in seqs if a is not None} for split, seqs in sequences.items()}
    every = set().union(*widths.values())
    if len(every) != 1:
        places = "; ".join(f"{splits[split].where}: {sorted(w)}" for split, w in widths.items())
        problem = "no sample has any word" if not every else f"the {modality} rows have different widths ({places})"
        raise DataError(f"{problem}; every sample of a word-aligned file has at least one word and the same "
                        "features. Take the files again from their source.")
    return every.pop()


def _convert(name: str, recognised: str, found: Found, splits: dict[str, _Split], vectors: _Vectors) -> Converted:
    """Text vectors, one zero step for samples without words, and the report."""
    unknown: Counter[str] = Counter()
    looked_up: Counter[str] = Counter()
    text = {split: _text(s, vectors, unknown, looked_up) for split, s in splits.items()}
    sequences = {**{m: {split: s.frames[m] for split, s in splits.items()} for m in _FRAMES}, "text": text}
    dims = {m: _width(per_split, splits, m) for m, per_split in sequences.items()}
    out = {split: SplitArrays({m: [a if a is not None else np.zeros((1, dims[m]), np.float32)
                                   for a in sequences[m][split]] for m in ("text", "audio", "vision")},
                              s.labels, s.ids)
           for split, s in splits.items()}
    empty = sum(a is None for s in splits.values() for a in s.frames["audio"])
    warnings = []
    missed, total = sum(unknown.values()), looked_up["words"]
    if total and missed > UNKNOWN_WARNING * total:
        warnings.append(f"{missed} of {total} words ({missed / total:.0%}) are not in {vectors.file} and became "
                        "zero vectors; check that it is the embedding file meant for these pickles (MISA used "
                        "glove.840B.300d, which is cased).")
        log.warning("%s", warnings[-1])
    by_id = vectors.by_id and any(i is not None for s in splits.values() for i in s.word_ids)
    report = {
        "format": name, "recognised": recognised, "aligned": True,
        "files": {role: path.name for role, path in found.files.items()},
        "samples": {split: len(s.ids) for split, s in splits.items()},
        "dims": dims,
        "text": {"source": vectors.source, "file": str(vectors.file), "dim": int(vectors.matrix.shape[1]),
                 "by": "word id" if by_id else "word", "vocabulary": len(vectors.index),
                 "unknown_words": {"looked_up": total, "tokens": missed, "distinct": len(unknown),
                                   "examples": [w for w, _ in unknown.most_common(10)]}},
        "empty_samples_kept_as_one_zero_step": int(empty),
        "padding": "none (per-sample sequences)", "warnings": warnings,
    }
    return out, report


def _kinds(splits: Mapping[str, _Split]) -> str:
    has_ids = any(i is not None for s in splits.values() for i in s.word_ids)
    has_words = any(w is not None for s in splits.values() for w in s.words)
    return " and ".join(k for k, present in (("word ids", has_ids), ("words", has_words)) if present)


def read_misa(found: Found, profile: AffectProfile, options: Mapping[str, Any]) -> Converted:
    splits = {ROLE_SPLITS[role]: _split(safe_pickle_load(found.files[role]), str(found.files[role]), profile)
              for role in SPLIT_FILES}
    folder = found.files["train"].parent
    missing = (f"{folder} holds MISA pickles (train.pkl, dev.pkl, test.pkl) whose text is words and word ids, "
               f"which need word vectors, but {folder / MISA_EMBEDDINGS} is missing. Either put MISA's "
               f"{MISA_EMBEDDINGS} (written by create_dataset.py next to the pickles) there, or pass "
               f"--dataset-option {profile.name}.embeddings=/path/glove.840B.300d.txt (a GloVe-style text file, "
               "'word v1 ... vD' per line: the samples' words are looked up, unknown words become zero vectors).")
    vectors = _vectors(found.files.get("embeddings"), splits, missing)
    recognised = f"MISA per-split pickles: lists of (({_kinds(splits)}, visual, acoustic), label, segment)"
    return _convert("misa", recognised, found, splits, vectors)


def read_mag(found: Found, profile: AffectProfile, options: Mapping[str, Any]) -> Converted:
    path = found.files["pickle"]
    splits = {split: _split(items, f"{path} split {split!r}", profile)
              for split, items in _split_lists(safe_pickle_load(path), path).items()}
    missing = (f"{path} is a MAG pickle whose text is words, which need word vectors: pass --dataset-option "
               f"{profile.name}.embeddings=/path/glove.840B.300d.txt (a GloVe-style text file, 'word v1 ... vD' "
               f"per line: the words are looked up, unknown words become zero vectors), or "
               f"--dataset-option {profile.name}.embeddings=/path/{MISA_EMBEDDINGS} (MISA's word2id and matrix).")
    vectors = _vectors(found.files.get("embeddings"), splits, missing)
    recognised = (f"MAG dict of splits: {{train, dev, test}} -> lists of (({_kinds(splits)}, visual, acoustic), "
                  "label, segment)")
    return _convert("mag", recognised, found, splits, vectors)
