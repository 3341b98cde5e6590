"""COCO dataset export and import, with pycocotools for all mask arithmetic."""
