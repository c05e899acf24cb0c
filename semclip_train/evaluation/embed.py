"""Embeddings for evaluation: encoded in batches on the best device, each text and image once.

Several metrics read the same data set (CC-Neg accuracy and its plot, SugarCrepe++ ITT and TOT,
retrieval of captions and of paraphrases), so embeddings are cached per model fingerprint (its
weights and its processor), keyed by the text itself or by a digest of the image's bytes: an image
under another root, or a file replaced since, is encoded afresh. With `cache_dir`, each data set's
embeddings are also kept as a safetensors file under `cache_dir/<fingerprint>/`, so a second run of
the same checkpoint on the same benchmark encodes nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import torch

from semclip_train.errors import SemClipError

if TYPE_CHECKING:
    from transformers import CLIPModel, CLIPProcessor

    from semclip_train.triples import ImageRef


def best_device(requested: str | None = None) -> torch.device:
    """CUDA, then Apple MPS, then CPU; a requested device that is not there is a user error."""
    if requested and requested != "auto":
        device = torch.device(requested)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise SemClipError(f"--device {requested}: CUDA is not available on this machine")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise SemClipError(f"--device {requested}: MPS is not available on this machine")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


class Embedder:
    """The model, its processor and the cache; `texts()` / `images()` return [N, d] unit rows."""

    def __init__(
        self,
        model: "CLIPModel",
        processor: "CLIPProcessor",
        device: str | torch.device | None = None,
        batch_size: int = 64,
        cache_dir: str | Path | None = None,
        fingerprint: str | None = None,
        show_progress: bool = False,
        name: str = "the model",
    ):
        if batch_size < 1:
            raise SemClipError(f"--batch-size must be at least 1, got {batch_size}")
        self.device = device if isinstance(device, torch.device) else best_device(device)
        self.model = model.to(self.device).eval()
        self.processor = processor
        self.batch_size = batch_size
        self.name = name  # for errors: the --model as given
        self.fingerprint = fingerprint or _fingerprint(model, processor)
        self.cache_dir = Path(cache_dir) / self.fingerprint if cache_dir else None
        self.show_progress = show_progress
        self.encoder_calls = {"text": 0, "image": 0}  # batches actually run through a tower
        self._memory: dict[str, dict[str, torch.Tensor]] = {"text": {}, "image": {}}
        self._on_disk: dict[Path, dict[str, None]] = {}  # cache file -> its keys, in order

    def texts(self, texts: Sequence[str], dataset: str | None = None) -> torch.Tensor:
        return self._embed("text", list(texts), list(texts), dataset)

    def images(self, images: Sequence["ImageRef"], dataset: str | None = None) -> torch.Tensor:
        return self._embed("image", [_content_key(ref) for ref in images], list(images), dataset)

    def _embed(self, kind: str, keys: list[str], items: list, dataset: str | None) -> torch.Tensor:
        memory = self._memory[kind]
        disk = self._disk_path(kind, dataset)
        on_disk = self._on_disk.setdefault(disk, {}) if disk is not None else {}
        if disk is not None and not on_disk and disk.is_file():
            on_disk.update(dict.fromkeys(_load(disk, self.fingerprint, memory)))
        todo: dict[str, object] = {}
        for key, item in zip(keys, items):
            if key not in memory:
                todo.setdefault(key, item)
        if todo:
            self._encode(kind, todo)
        if disk is not None and any(key not in on_disk for key in keys):
            on_disk.update(dict.fromkeys(keys))  # the file holds every row this data set has used
            _save(disk, {key: memory[key] for key in on_disk}, self.fingerprint)
        if not keys:
            return torch.empty(0, self.model.config.projection_dim)
        return torch.stack([memory[key] for key in keys])

    def _encode(self, kind: str, todo: dict[str, object]) -> None:
        from semclip_train.model import embed_images, embed_texts

        keys = list(todo)
        with _progress(self.show_progress, f"encoding {len(keys)} {kind}s", len(keys)) as advance:
            for start in range(0, len(keys), self.batch_size):
                chunk = keys[start : start + self.batch_size]
                if kind == "text":
                    rows = embed_texts(self.model, self.processor, chunk, self.device, self.batch_size)
                else:
                    pictures = [_open(todo[key]) for key in chunk]
                    rows = embed_images(self.model, self.processor, pictures, self.device, self.batch_size)
                self.encoder_calls[kind] += 1
                self._refuse_non_finite(kind, chunk, rows)
                for key, row in zip(chunk, rows.cpu()):
                    self._memory[kind][key] = row
                advance(len(chunk))

    def _refuse_non_finite(self, kind: str, keys: list[str], rows: torch.Tensor) -> None:
        """A model whose weights are finite but overflow in the forward pass (a diverged training)
        gives NaN embeddings, and every similarity with them is False: the scores would be 0% for
        no visible reason. Refused as soon as one appears, never cached."""
        broken = (~torch.isfinite(rows).all(dim=1)).nonzero().flatten().tolist()
        if broken:
            example = keys[broken[0]] if kind == "text" else "an image"
            raise SemClipError(f"{self.name} gives {kind} embeddings that are not finite (nan or inf), e.g. for "
                               f"{example!r}: its weights overflow in the forward pass; did its training diverge?")

    def _disk_path(self, kind: str, dataset: str | None) -> Path | None:
        if self.cache_dir is None or dataset is None:
            return None
        tag = hashlib.sha1(dataset.encode()).hexdigest()[:12]
        stem = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in Path(dataset).name)[:60]
        root = Path(os.path.realpath(self.cache_dir.parent))
        if not Path(os.path.realpath(self.cache_dir)).is_relative_to(root):  # a planted link: write nothing
            raise SemClipError(f"embedding cache folder {self.cache_dir} is a link out of the cache "
                               f"{self.cache_dir.parent}; remove it")
        return self.cache_dir / f"{stem}-{tag}-{kind}.safetensors"


def _fingerprint(model, processor) -> str:
    from semclip_train.model import fingerprint, processor_settings

    return fingerprint([model], *processor_settings(processor))


def _content_key(ref: "ImageRef") -> str:
    try:
        return ref.content_key()
    except OSError as exc:
        raise SemClipError(f"cannot read image {ref.path or ref.key}: {exc.strerror or exc}") from None


def _load(path: Path, fingerprint: str, memory: dict[str, torch.Tensor]) -> list[str]:
    """Add a cache file's rows to `memory`; returns its keys (none if it belongs to another model)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            rows = handle.get_tensor("embeddings")
    except Exception as exc:  # safetensors raises its own error types for damaged files
        raise SemClipError(f"embedding cache {path} is damaged ({exc}); delete it and rerun") from exc
    keys = json.loads(metadata.get("keys", "[]"))
    if metadata.get("fingerprint") != fingerprint or len(keys) != rows.shape[0]:
        return []
    memory.update(zip(keys, rows))
    return keys


def _save(path: Path, rows: dict[str, torch.Tensor], fingerprint: str) -> None:
    from safetensors.torch import save_file

    from semclip_core.files import atomic_path

    metadata = {"keys": json.dumps(list(rows)), "fingerprint": fingerprint}
    with atomic_path(path) as tmp:
        save_file({"embeddings": torch.stack(list(rows.values())).contiguous()}, str(tmp), metadata=metadata)


class _progress:
    """A rich progress bar on stderr when asked for (the CLI) and it is a terminal; nothing otherwise
    (pipes, log files, tests, training hooks)."""

    def __init__(self, enabled: bool, label: str, total: int):
        self.enabled, self.label, self.total = enabled, label, total
        self._bar = None

    def __enter__(self):
        if not self.enabled:
            return lambda n: None
        from rich.console import Console
        from rich.progress import Progress

        console = Console(stderr=True)  # never into the results on stdout
        if not console.is_terminal:  # piped or in a log file, a transient bar leaves only blank lines
            return lambda n: None

        self._bar = Progress(transient=True, console=console)
        self._bar.start()
        task = self._bar.add_task(self.label, total=self.total)
        return lambda n: self._bar.advance(task, n)

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.stop()


def _open(ref: "ImageRef"):
    """Evaluation needs every image, so an unreadable one is a one-line error, not a skip."""
    try:
        return ref.open()
    except OSError as exc:
        raise SemClipError(f"cannot read image {ref.path or ref.key}: {exc}") from exc
