"""CIFAR-10 on disk and in memory.

Where the data lives (`nas.data.settings.resolve_data_dir`): the `--data-dir` argument if given, else the environment
variable `NAS_DATA_DIR`, else `~/.cache/nas/data` (where `nas data download` puts it by default).

That folder is the parent of `cifar-10-batches-bin/` (the official binary layout, preferred) or
`cifar-10-batches-py/` (torchvision's pickled layout); pointing at either of those two folders
directly works too. `nas data download --data-dir DIR` fetches the binary layout into DIR.

Every load checks the file sizes and, for files of the official size, their md5s (`check_md5s`, as
torchvision does on every load), so a corrupt copy is refused wherever it is read. A smaller
look-alike (the tests') has no md5 to match; `verify_cifar10` also refuses it.
"""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nas.errors import NasError

BIN_DIR, PY_DIR = "cifar-10-batches-bin", "cifar-10-batches-py"
TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
TEST_FILE = "test_batch.bin"
FILES = (*TRAIN_FILES, TEST_FILE)
RECORD_BYTES = 1 + 3 * 32 * 32  # 1 label byte, then 1024 R, 1024 G, 1024 B bytes
OFFICIAL_FILE_BYTES = 10_000 * RECORD_BYTES  # 30,730,000
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
MD5 = {
    "data_batch_1.bin": "5dd7e06a14cb22eb9f671a540d1b7c25",
    "data_batch_2.bin": "5ea93a67294ea407fff1d09f752e9692",
    "data_batch_3.bin": "942cd6a4bcdd0dd3c604fbe906cb4421",
    "data_batch_4.bin": "ae636b3ba5c66a11e91e8cb52e771fcb",
    "data_batch_5.bin": "53f37980c15c3d472c316c40844f3f0d",
    "test_batch.bin": "803d5f7f4d78ea53de84dbe85f74fb6d",
}


@dataclass(frozen=True)
class Cifar10:
    """The whole data set in memory: images uint8 N×32×32×3 (HWC, RGB), labels int64."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    classes: tuple[str, ...]


def fetch_hint(parent: Path) -> str:
    return f"fetch it with: nas data download --data-dir {parent}"


def one_line(err: BaseException | str) -> str:
    return " ".join(str(err).split())


def _locate(data_dir: str | Path) -> tuple[Path, Path]:
    """(parent, layout folder) for a parent folder or a layout folder itself."""
    d = Path(data_dir).expanduser()
    if d.name in (BIN_DIR, PY_DIR) and d.is_dir():
        return d.parent, d
    for name in (BIN_DIR, PY_DIR):
        if (d / name).is_dir():
            return d, d / name
    raise NasError(f"no CIFAR-10 in {d}: expected {d / BIN_DIR}/ (data_batch_1..5.bin, test_batch.bin) "
                   f"or {d / PY_DIR}/; {fetch_hint(d)}")


def _read_bin(folder: Path, parent: Path) -> dict[str, np.ndarray]:
    """The six files as N×3073 uint8 record arrays, after the size checks."""
    missing = [name for name in FILES if not (folder / name).is_file()]
    if missing:
        raise NasError(f"{folder} lacks {', '.join(missing)}: expected data_batch_1..5.bin and test_batch.bin "
                       f"({OFFICIAL_FILE_BYTES:,} bytes each); {fetch_hint(parent)}")
    # The record count follows from the size, so tests can use small files; all six official files
    # have the same size (30,730,000 bytes), so a partial one shows up as a size that differs.
    expected = (folder / FILES[0]).stat().st_size
    if expected == 0 or expected % RECORD_BYTES:
        expected = OFFICIAL_FILE_BYTES
    records = {}
    for name in FILES:
        path = folder / name
        if (size := path.stat().st_size) != expected:
            raise NasError(f"{path} has {size:,} bytes, expected {expected:,} (whole {RECORD_BYTES:,}-byte records, "
                           f"the same for all six files): partial or corrupt; {fetch_hint(parent)}")
        records[name] = np.fromfile(path, dtype=np.uint8).reshape(-1, RECORD_BYTES)
    return records


def read_py(folder: Path, parent: Path) -> dict[str, np.ndarray]:
    """torchvision's pickles, converted to the binary layout's N×3073 records."""
    records = {}
    for name in FILES:
        path = folder / name.removesuffix(".bin")
        try:
            with open(path, "rb") as f:
                batch = pickle.load(f, encoding="bytes")
            data = np.asarray(batch[b"data"], dtype=np.uint8)
            labels = np.asarray(batch[b"labels"], dtype=np.uint8)
            if data.ndim != 2 or data.shape[1] != RECORD_BYTES - 1 or len(labels) != len(data):
                raise ValueError(f"data {data.shape} and {len(labels)} labels, expected N×3072 and N")
        except FileNotFoundError:
            raise NasError(f"{path} is missing: expected data_batch_1..5 and test_batch in {folder}; "
                           f"{fetch_hint(parent)}") from None
        except Exception as err:  # a truncated pickle raises anything from EOFError to UnpicklingError
            raise NasError(f"{path} is partial or corrupt ({one_line(err)}); {fetch_hint(parent)}") from None
        records[name] = np.concatenate([labels[:, None], data], axis=1)
    return records


def check_md5s(records: dict[str, np.ndarray], folder: Path, parent: Path) -> None:
    """NasError (one line) for a file of the official size whose records fail the official md5:
    the one check of the content, made by every load and by `nas data check`."""
    for name, rec in records.items():
        if rec.nbytes == OFFICIAL_FILE_BYTES and (md5 := hashlib.md5(rec.data).hexdigest()) != MD5[name]:
            raise NasError(f"{folder / name}: md5 {md5}, expected {MD5[name]}: corrupt; {fetch_hint(parent)}")


def _read_records(data_dir: str | Path) -> tuple[Path, Path, dict[str, np.ndarray]]:
    parent, folder = _locate(data_dir)
    records = (_read_bin if folder.name == BIN_DIR else read_py)(folder, parent)
    check_md5s(records, folder, parent)
    for name, rec in records.items():
        if (top := int(rec[:, 0].max())) >= len(CLASSES):
            raise NasError(f"{folder / name}: label {top} is out of range 0-9: corrupt; {fetch_hint(parent)}")
    return parent, folder, records


def _read_classes(folder: Path) -> tuple[str, ...]:
    txt, meta = folder / "batches.meta.txt", folder / "batches.meta"
    path = txt if txt.is_file() else meta
    try:
        if txt.is_file():
            names = tuple(line.strip() for line in txt.read_text().splitlines() if line.strip())
        elif meta.is_file():
            with open(meta, "rb") as f:
                names = tuple(n.decode() for n in pickle.load(f, encoding="bytes")[b"label_names"])
        else:
            return CLASSES  # the meta file only names the classes; its absence loses nothing
    except Exception as err:  # not text, a truncated pickle, no label_names: anything
        raise NasError(f"{path} is corrupt ({one_line(err)}); {fetch_hint(folder.parent)}") from None
    if len(names) != len(CLASSES):
        raise NasError(f"{path}: {len(names)} class names, expected {len(CLASSES)}")
    return names


def _split_records(parts: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """N×3073 record arrays -> (N×32×32×3 HWC images, int64 labels), all in one array."""
    images = np.empty((sum(len(p) for p in parts), 32, 32, 3), dtype=np.uint8)
    start = 0
    for p in parts:  # CHW -> HWC straight into place: half the time of concatenate + transpose-copy
        images[start:start + len(p)].transpose(0, 3, 1, 2)[...] = p[:, 1:].reshape(-1, 3, 32, 32)
        start += len(p)
    return images, np.concatenate([p[:, 0] for p in parts]).astype(np.int64)


def to_records(images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(N×32×32×3 HWC images, labels) -> N×3073 records of the binary layout."""
    chw = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
    return np.concatenate([np.asarray(labels, dtype=np.uint8)[:, None], chw], axis=1)


def load_cifar10(data_dir: str | Path) -> Cifar10:
    """Read CIFAR-10 from either layout; NasError (one line, with the fetch command) if missing, partial
    or corrupt (`check_md5s`)."""
    _, folder, records = _read_records(data_dir)
    train_images, train_labels = _split_records([records[n] for n in TRAIN_FILES])
    test_images, test_labels = _split_records([records[TEST_FILE]])
    return Cifar10(train_images, train_labels, test_images, test_labels, _read_classes(folder))


def verify_cifar10(data_dir: str | Path) -> Path:
    """Check every file against the official size and md5 (the md5s as every load does, `check_md5s`);
    return the layout folder or raise NasError."""
    parent, folder, records = _read_records(data_dir)
    for name, rec in records.items():
        if rec.nbytes != OFFICIAL_FILE_BYTES:
            raise NasError(f"{folder / name}: {rec.nbytes:,} bytes of records, expected {OFFICIAL_FILE_BYTES:,}: "
                           f"not the official CIFAR-10; {fetch_hint(parent)}")
    return folder
