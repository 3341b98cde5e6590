"""Click-to-mask segmentation with Segment Anything: embeddings, prompt decoding, masks to shapes."""
