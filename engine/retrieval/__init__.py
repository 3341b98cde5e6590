"""Collection search with CLIP: page and region vectors in the project, a FAISS index derived from them."""
