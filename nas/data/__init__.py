"""CIFAR-10 on disk (reading, checking, downloading), the validation hold-out and data fractions,
and the two augmentation engines (albumentations per image, whole batches on the device)."""
