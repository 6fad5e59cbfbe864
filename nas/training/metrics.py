"""Evaluation: loss, accuracy, the confusion matrix and per-class precision / recall / F1."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from nas.training.runtime import autocast


@dataclass(frozen=True)
class Evaluation:
    """Results on one split. confusion[i, j] counts images of class i predicted as j."""

    loss: float
    accuracy: float
    confusion: np.ndarray
    accuracy_flip_tta: float | None = None  # with evaluate(flip_tta=True)

    def per_class(self, classes: tuple[str, ...]) -> list[dict[str, Any]]:
        """Like scikit-learn's classification report: precision, recall, F1 and support."""
        hits = np.diag(self.confusion).astype(float)
        predicted, support = self.confusion.sum(axis=0), self.confusion.sum(axis=1)
        precision = np.divide(hits, predicted, out=np.zeros_like(hits), where=predicted > 0)
        recall = np.divide(hits, support, out=np.zeros_like(hits), where=support > 0)
        denom = precision + recall
        f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(hits), where=denom > 0)
        return [{"class": name, "precision": round(float(p), 4), "recall": round(float(r), 4),
                 "f1": round(float(f), 4), "support": int(s)}
                for name, p, r, f, s in zip(classes, precision, recall, f1, support)]

    def to_dict(self, classes: tuple[str, ...]) -> dict[str, Any]:
        return {"loss": self.loss, "accuracy": self.accuracy, "per_class": self.per_class(classes),
                "confusion": self.confusion.tolist(), "classes": list(classes)}


@torch.no_grad()
def evaluate(model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
             device: torch.device, dtype: torch.dtype | None, num_classes: int = 10,
             flip_tta: bool = False) -> Evaluation:
    """Mean cross-entropy, accuracy and confusion matrix of `model` over `batches` (on `device`).
    flip_tta: also the accuracy when the logits of each image and its mirror image are averaged
    (test-time augmentation), in the same pass."""
    model.eval()
    confusion = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=device)
    loss_sum, count = torch.zeros((), device=device), 0
    flip_correct = torch.zeros((), device=device, dtype=torch.int64)
    for images, labels in batches:
        with autocast(device, dtype):
            logits = model(images)
            if flip_tta:
                mean_logits = (logits + model(images.flip(-1))) / 2
                flip_correct += (mean_logits.argmax(1) == labels).sum()
        loss_sum += nn.functional.cross_entropy(logits.float(), labels, reduction="sum")
        confusion += torch.bincount(labels * num_classes + logits.argmax(1),
                                    minlength=num_classes ** 2).view(num_classes, num_classes)
        count += len(labels)
    confusion_np = confusion.cpu().numpy()
    return Evaluation(loss=loss_sum.item() / count,
                      accuracy=float(np.trace(confusion_np)) / count, confusion=confusion_np,
                      accuracy_flip_tta=flip_correct.item() / count if flip_tta else None)
