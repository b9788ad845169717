"""Reading data: dataset sources, the long-tailed subsets and their splits, images, on-device augmentation."""
