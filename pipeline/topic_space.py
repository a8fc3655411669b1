"""The vector space the topic stage clusters in: document signal taken out before UMAP (issue 23).

On a few documents of different genres the raw embedding space separates documents (style, vocabulary,
speakers) before it separates themes, and a topic model then re-discovers the documents. Three steps,
each measured in bench/topics_quality.py: subtract each document's mean vector, whiten the result over
the corpus, and give UMAP a neighbour graph that takes each passage's neighbours from every document in
equal numbers. Plain arrays in and out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def centre_embeddings(
    embeddings: np.ndarray, groups: Sequence[str], mode: str, whitening: dict[str, np.ndarray] | None = None
) -> np.ndarray:
    """Passage vectors with each document's mean taken out (``mode`` "document"), then optionally whitened
    over the corpus ("whiten"), unit length again. On a few documents of different genres the raw space
    separates documents (style, vocabulary, speakers) before themes; what is left after subtracting a
    document's centroid is how a passage differs from the rest of its own document."""
    if mode == "none":
        return embeddings
    if mode not in {"document", "whiten"}:
        raise ValueError(f"unknown centring {mode!r}: none, document or whiten")
    out = subtract_document_means(embeddings, groups)
    if mode == "whiten":
        whitening = whitening or fit_whitening(out)
        out = (out - whitening["mean"]) @ whitening["components"].T / np.sqrt(whitening["variance"])
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return (out / np.where(norms == 0, 1.0, norms)).astype(np.float32)



def subtract_document_means(embeddings: np.ndarray, groups: Sequence[str]) -> np.ndarray:
    out = np.asarray(embeddings, dtype=np.float64).copy()
    keys = np.asarray(groups)
    for key in sorted(set(groups)):
        rows = keys == key
        out[rows] -= out[rows].mean(axis=0)
    return out



def fit_whitening(centred: np.ndarray, dimensions: int = 64) -> dict[str, np.ndarray]:
    """PCA whitening of document-centred vectors (the leading ``dimensions`` components, each scaled to unit
    variance): no direction, such as the one register that separates the transcripts, outweighs the rest.
    Kept with the model, so a new document is whitened the same way."""
    from sklearn.decomposition import PCA

    pca = PCA(n_components=min(dimensions, centred.shape[0] - 1), random_state=0).fit(centred)
    return {"mean": pca.mean_, "components": pca.components_, "variance": pca.explained_variance_}



def balanced_neighbours(space: np.ndarray, groups: Sequence[str], n_neighbors: int) -> tuple:
    """Each passage's nearest passages (cosine) taken from every document in equal numbers, itself first:
    the neighbour graph of batch-balanced kNN (Polański et al. 2020, for batches of cells), given to UMAP
    as ``precomputed_knn``. With plain kNN a passage's neighbours are mostly its own document's."""
    from sklearn.neighbors import NearestNeighbors

    keys = np.asarray(groups)
    docs = sorted(set(groups))
    per_doc = max(2, math.ceil(n_neighbors / len(docs)))
    indices, distances = [], []
    for doc in docs:
        members = np.flatnonzero(keys == doc)
        k = min(per_doc, len(members))
        finder = NearestNeighbors(n_neighbors=k, metric="cosine").fit(space[members])
        dist, idx = finder.kneighbors(space)
        indices.append(members[idx])
        distances.append(dist)
    indices, distances = np.hstack(indices), np.hstack(distances)
    width = indices.shape[1]
    knn_indices = np.empty((len(space), width), dtype=np.int64)
    knn_dists = np.zeros((len(space), width), dtype=np.float32)
    for row in range(len(space)):
        order = np.argsort(distances[row], kind="stable")
        others = [(int(i), float(d)) for i, d in zip(indices[row][order], distances[row][order], strict=True)
                  if i != row][: width - 1]  # fmt: skip
        knn_indices[row] = [row] + [i for i, _ in others] + [row] * (width - 1 - len(others))
        knn_dists[row, 1 : 1 + len(others)] = [max(0.0, d) for _, d in others]
    return knn_indices, knn_dists, None
