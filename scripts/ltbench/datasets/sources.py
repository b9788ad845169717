"""Dataset sources: the labelled images a configured dataset holds, listed before any is decoded.

Formats
- ``cifar10`` / ``cifar100``: torchvision's loaders on the official python files under the
  data root (downloaded there when ``download`` is on; torchvision verifies the md5 sums).
- ``imagefolder``: ``<path>/train/<class>/*`` and ``<path>/test/<class>/*``; or, when
  ``<path>`` has no ``train`` folder, one folder ``<path>/<class>/*`` without a test split.
- ``manifest``: a CSV file with the header ``path,label`` or ``path,label,split`` (``train`` or
  ``test``), one image per row, paths relative to the CSV file's folder; without a split
  column the source has no test split.

Classes are sorted by name (training folder names or training labels) and numbered in that
order; files within a class folder are taken in name order, and hidden files (names starting
with ``.``) are skipped. Pixels are decoded only when ``Items.read`` is called, each image
brought to the dataset's ``image_size`` by ``ltbench.datasets.images``; a file that cannot be read
raises ``DataError`` naming it.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ltbench.datasets import images

FORMATS = ("cifar10", "cifar100", "imagefolder", "manifest")
SPLITS = ("train", "test")
READ_THREADS = 8


class DataError(ValueError):
    """The data is missing, corrupted, or cannot give the requested subset."""


@dataclass
class Items:
    """Labelled images, decoded on demand.

    ``labels[i]`` is item i's class index, ``names[i]`` where it comes from (a file relative to
    the source, for messages and the index), and ``read(indices)`` returns the uint8
    N x S x S x 3 pixels of those items.
    """

    labels: np.ndarray
    names: list[str]
    read: Callable[[np.ndarray], np.ndarray]

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, indices: np.ndarray) -> Items:
        """The items at ``indices``, in that order (still not decoded)."""
        indices = np.asarray(indices, np.int64)
        return Items(self.labels[indices], [self.names[i] for i in indices], lambda sub: self.read(indices[sub]))

    def pixels(self) -> np.ndarray:
        """Every item's pixels, decoded."""
        return self.read(np.arange(len(self), dtype=np.int64))


@dataclass
class Source:
    """A dataset: training items, test items (None when the source has no test split of its own),
    class names in label order, where it lives, and checksums of the files it was read from."""

    train: Items
    test: Items | None
    classes: list[str]
    location: str
    checksums: dict[str, str] = field(default_factory=dict)


def load_source(fmt: str, location: str, download: bool = False, image_size: int = images.IMAGE_SIZE) -> Source:
    """List the dataset of format ``fmt`` at ``location`` (data root, image folder or CSV file)."""
    if fmt in ("cifar10", "cifar100"):
        return _load_torchvision_cifar(fmt, location, download, image_size)
    if fmt == "imagefolder":
        return _image_folder(Path(location), image_size)
    if fmt == "manifest":
        return _manifest(Path(location), image_size)
    raise DataError(f"unknown dataset format {fmt!r}; known: {', '.join(FORMATS)}")


def _array_items(pixels: np.ndarray, labels: np.ndarray, prefix: str, image_size: int) -> Items:
    """Items over images already in memory, named ``<prefix> <position>``."""
    names = [f"{prefix} {i}" for i in range(len(labels))]
    return Items(labels, names, lambda idx: images.fit_arrays(pixels[idx], image_size))


def _decode(path: Path, image_size: int) -> np.ndarray:
    """One file's pixels; ``DataError`` naming the file when it is not a readable image."""
    try:
        return images.load(path, image_size)
    except images.UNREADABLE as exc:
        raise DataError(f"{path}: not a readable image ({type(exc).__name__}: {exc})") from exc


def _file_items(files: list[Path], labels: list[int], root: Path, image_size: int) -> Items:
    """Items over image files, named by their path relative to ``root``, decoded in threads."""

    def read(indices: np.ndarray) -> np.ndarray:
        out = np.empty((len(indices), image_size, image_size, 3), np.uint8)
        pool = ThreadPoolExecutor(max_workers=READ_THREADS)
        try:
            for i, pixels in enumerate(pool.map(lambda j: _decode(files[j], image_size), indices)):
                out[i] = pixels
        finally:
            pool.shutdown(cancel_futures=True)  # after a bad file, decode nothing more
        return out

    names = [str(f.relative_to(root)) if f.is_relative_to(root) else str(f) for f in files]
    return Items(np.asarray(labels, np.int64), names, read)


def _torchvision_class(fmt: str):
    from torchvision import datasets

    return datasets.CIFAR10 if fmt == "cifar10" else datasets.CIFAR100


def _cifar_checksums(fmt: str, root: Path) -> dict[str, str]:
    """md5 of each official file, checked against torchvision's list; ``DataError`` names a missing or wrong file."""
    cls = _torchvision_class(fmt)
    folder = root / cls.base_folder
    sums = {}
    for name, expected in cls.train_list + cls.test_list + [(cls.meta["filename"], cls.meta["md5"])]:
        path = folder / name
        if not path.is_file():
            raise DataError(f"{fmt}: {path} does not exist (download is off; set data.download: true or fix data.root)")
        sums[name] = hashlib.md5(path.read_bytes()).hexdigest()
        if sums[name] != expected:
            raise DataError(f"{fmt}: checksum mismatch for {path}: md5 {sums[name]}, expected {expected}")
    return sums


def _load_torchvision_cifar(fmt: str, root: str, download: bool, image_size: int) -> Source:
    """Load CIFAR through torchvision (which downloads and md5-checks the official files)."""
    cls = _torchvision_class(fmt)
    root_path = Path(root)
    checksums = None if download else _cifar_checksums(fmt, root_path)  # clear errors before torchvision's
    try:
        train = cls(str(root_path), train=True, download=download)
        test = cls(str(root_path), train=False, download=download)
    except Exception as exc:  # torchvision raises RuntimeError / URLError
        raise DataError(f"{fmt}: torchvision could not load or download the data under {root}: {exc}") from exc
    checksums = checksums or _cifar_checksums(fmt, root_path)
    return Source(
        _array_items(train.data, np.asarray(train.targets, np.int64), "train image", image_size),
        _array_items(test.data, np.asarray(test.targets, np.int64), "test image", image_size),
        list(train.classes), str(root), checksums,
    )


def _class_folders(folder: Path) -> dict[str, list[Path]]:
    """``folder/<class>/<file>`` as {class: its files in name order}, classes sorted; hidden entries skipped."""
    if not folder.is_dir():
        raise DataError(f"image folder {folder} does not exist")
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(f"image folder {folder} has no class folders")
    groups = {}
    for name in classes:
        groups[name] = sorted(p for p in (folder / name).iterdir() if p.is_file() and not p.name.startswith("."))
        if not groups[name]:
            raise DataError(f"image folder class {folder / name} is empty")
    return groups


def _folder_items(groups: dict[str, list[Path]], classes: list[str], root: Path, image_size: int) -> Items:
    """Items over class folders, labelled by each class's position in ``classes``."""
    number = {name: label for label, name in enumerate(classes)}
    files = [f for name in groups for f in groups[name]]
    labels = [number[name] for name in groups for _ in groups[name]]
    return _file_items(files, labels, root, image_size)


def _image_folder(path: Path, image_size: int) -> Source:
    """``path/train`` and ``path/test`` class folders, or ``path/<class>`` alone (no test split)."""
    if not (path / "train").is_dir():
        groups = _class_folders(path)
        return Source(_folder_items(groups, list(groups), path, image_size), None, list(groups), str(path))
    train, test = _class_folders(path / "train"), _class_folders(path / "test")
    classes = list(train)
    for name in test:
        if name not in train:
            raise DataError(f"{path / 'test' / name}: test class {name!r} has no training images"
                            f" (training classes: {', '.join(classes)})")
    return Source(_folder_items(train, classes, path, image_size), _folder_items(test, classes, path, image_size),
                  classes, str(path))


def _manifest_rows(path: Path) -> tuple[list[dict[str, str]], bool]:
    """The rows of a manifest, each with its ``line`` number, and whether it has a split column."""
    if not path.is_file():
        raise DataError(f"manifest {path} does not exist")
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        columns = reader.fieldnames or []
        if sorted(columns) not in (["label", "path"], ["label", "path", "split"]):
            raise DataError(f"{path}: the header must be path,label or path,label,split, not {','.join(columns)}")
        rows = [{**row, "line": str(reader.line_num)} for row in reader]
    if not rows:
        raise DataError(f"manifest {path} lists no images")
    return rows, "split" in columns


def _manifest(path: Path, image_size: int) -> Source:
    """A CSV manifest (``path,label[,split]``); paths relative to its folder."""
    rows, has_split = _manifest_rows(path)
    for row in rows:
        where = f"{path}, line {row['line']}"
        if not row["path"] or not row["label"]:
            raise DataError(f"{where}: empty path or label")
        if not (path.parent / row["path"]).is_file():
            raise DataError(f"{where}: {path.parent / row['path']} does not exist")
        if has_split and row["split"] not in SPLITS:
            raise DataError(f"{where}: split {row['split']!r} is neither train nor test")
    by_split = {s: [r for r in rows if r["split"] == s] for s in SPLITS} if has_split else {"train": rows}
    classes = sorted({r["label"] for r in by_split["train"]})
    number = {name: label for label, name in enumerate(classes)}
    for row in by_split.get("test", []):
        if row["label"] not in number:
            raise DataError(f"{path}, line {row['line']}: test image {row['path']} has label {row['label']!r},"
                            " which no training image has")

    def items(split_rows: list[dict[str, str]]) -> Items:
        files = [path.parent / r["path"] for r in split_rows]
        return _file_items(files, [number[r["label"]] for r in split_rows], path.parent, image_size)

    checksums = {path.name: hashlib.md5(path.read_bytes()).hexdigest()}
    test = items(by_split["test"]) if has_split else None
    return Source(items(by_split["train"]), test, classes, str(path), checksums)


def identity(fmt: str, location: str | Path) -> str:
    """What a source holds, wherever it lies (a rule param: moving the data reruns nothing, changing it
    re-materializes): a torchvision format is its official files (md5-checked when read), so the
    format itself; an image folder is the sorted list of its files' paths, relative to the folder,
    with their sizes; a manifest is its CSV's bytes and the sizes of the files it names. ``missing``
    while the location does not exist (materialization then says what is wrong)."""
    if fmt not in ("imagefolder", "manifest"):
        return fmt
    path = Path(location)
    digest = hashlib.sha256()
    if fmt == "manifest" and path.is_file():
        digest.update(path.read_bytes())
        files = [path.parent / row["path"] for row in _manifest_rows(path)[0]]
        base = path.parent
    elif fmt == "imagefolder" and path.is_dir():
        files, base = sorted(p for p in path.rglob("*") if p.is_file()), path
    else:
        return "missing"
    for file in files:
        size = file.stat().st_size if file.is_file() else -1
        digest.update(f"{file.relative_to(base).as_posix()}\t{size}\n".encode())
    return digest.hexdigest()
