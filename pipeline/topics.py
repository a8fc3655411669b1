"""Inductive themes with BERTopic, next to the deductive framework.

The framework codes are deductive; the topic model shows which themes the
documents raise on their own (the inductive half of a directed content
analysis) and how those themes spread over sectors, studies and the framework's
conditions. Design choices, each for a reason:

- Passage vectors come from the store's embedding cache, the same vectors the
  classifier uses: no second embedding pass and nothing downloaded. Words for
  the readable labels (KeyBERTInspired, MMR) go through the same cache.
- ``language="dutch"``: BERTopic's English default strips every non-ASCII
  letter (``patiënten`` → ``patinten``). Topic words come from a
  CountVectorizer with spaCy's Dutch stop words plus report boilerplate, and a
  token pattern that keeps Dutch letters and drops numbers (page numbers).
- Themes, not documents (issue 23): on a few documents of different genres the raw
  embedding space separates documents first. The clustering therefore sees each
  document's passages with the document's mean vector taken out, whitened over the
  corpus, and UMAP gets a neighbour graph with each passage's neighbours drawn from
  every document in equal numbers (pipeline/topic_space.py).
- Clusters: HDBSCAN's "leaf" selection with a small ``min_samples``, at most
  0.625·√n themes (25 here). Every step was measured against today's setting on
  what a cross-sector comparison needs (bench/topics_quality.py,
  docs/topics-evaluation.csv); the c-TF-IDF document floor, zero-shot seed
  themes and merging near-duplicates are options that did not win there.
- Stability: the same settings are refitted with other UMAP seeds; a theme that
  exists in one fit only is flagged and not reported as a finding.
- Reproducible: UMAP with a fixed ``random_state`` (which also makes it
  single-threaded), HDBSCAN is deterministic, representative passages are
  chosen by similarity, not sampling.
- Outliers: HDBSCAN leaves many passages in topic −1; those closest to a topic
  are reassigned by embedding similarity until at most ``outlier_share`` of the
  passages remain, and the shares before and after are reported.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.codebook import Codebook
from pipeline.matrices import CONTENT_KINDS
from pipeline.topic_space import balanced_neighbours, centre_embeddings, fit_whitening, subtract_document_means

MIN_PASSAGES = 50  # below this a topic model is not stable enough to mean anything
MIN_WORDS = 6  # shorter content passages are bare table cells or fragments: no topic of their own
TOKEN_PATTERN = r"(?u)\b[^\W\d_]{3,}(?:-[^\W\d_]+)*\b"  # letters only (Dutch ones included), no numbers
BOILERPLATE = {
    "pagina", "page", "box", "tabel", "figuur", "bijlage", "hoofdstuk", "paragraaf", "bron", "zie",
    "noot", "voetnoot", "inhoudsopgave", "samenvatting", "rapport", "rapportage", "etc", "bijv", "nvt",
    "illustrerende", "citaten", "citaat", "kader",
}  # fmt: skip
# Spoken Dutch in interview transcripts: frequent, and never what a theme is about.
FILLERS = {
    "denk", "denken", "echt", "heel", "nou", "vind", "vinden", "gewoon", "eigenlijk", "natuurlijk", "zeg",
    "zeggen", "weet", "weten", "beetje", "zoiets", "dingen", "ding", "keer", "hoor", "gaan", "gaat", "zit",
    "zitten", "kijk", "kijken", "zeker", "misschien", "waarschijnlijk", "soort", "inderdaad", "nee", "mee",
    "allemaal", "doe", "één", "ervoor", "eventueel", "sprake", "name",  # "er is sprake van", "met name"
}  # fmt: skip
NO_CONDITION = "geen_voorwaarde"


class TopicsError(ValueError):
    """The corpus cannot carry a topic model (too few content passages)."""


@dataclass(frozen=True)
class TopicPassage:
    passage_id: str
    doc_id: str
    study: str
    sector: str
    text: str


@dataclass(frozen=True)
class TopicParams:
    """Everything that decides the topic model; recorded with it."""

    min_topic_size: int
    n_neighbors: int
    n_components: int
    min_samples: int
    cluster_selection: str = "leaf"
    max_topics: int | None = 40
    outlier_share: float = 0.10
    random_state: int = 42
    guided: bool = False
    ngram_range: tuple[int, int] = (1, 2)
    top_n_words: int = 10
    # Taking the document signal out (issue 23, bench/topics_quality.py): "none", "document" (subtract each
    # document's mean passage vector) or "whiten" (that, then PCA whitening over the corpus).
    centring: str = "whiten"
    # Topic words must occur in at least this many documents (c-TF-IDF floor). Measured, a floor of 2 lowers
    # NPMI and diversity here (bench/topics_quality.py), so it is an option, not the default.
    min_documents: int = 1
    zeroshot: bool = False  # seed themes from the codebook and guidelines (BERTopic zero-shot) next to free ones
    zeroshot_min_similarity: float = 0.3
    merge_distance: float = 0.0  # merge themes closer than this in BERTopic's hierarchical topics (0: none)
    seed_runs: int = 5  # fits with different UMAP seeds; a theme found in one only is not a finding
    # "per_document": UMAP's neighbour graph takes each passage's nearest passages from every document in
    # equal numbers (batch-balanced kNN), so a theme can only form where documents meet; "all": plain kNN.
    neighbours: str = "per_document"

    @classmethod
    def for_corpus(cls, n_passages: int, **overrides: object) -> TopicParams:
        """Sizes that scale with the corpus: small topics for small corpora, no dust for large ones."""
        if n_passages < MIN_PASSAGES:
            raise TopicsError(
                f"te weinig inhoudelijke passages voor een topicmodel: {n_passages} (minimaal {MIN_PASSAGES})"
            )
        params = cls(
            # sqrt(n)/4 gives 10 on the bundled corpus: the best NPMI of the leaf sizes compared in
            # bench/topics_quality.py (docs/topics-evaluation.csv).
            min_topic_size=int(min(60, max(5, round(math.sqrt(n_passages) / 4)))),
            # UMAP's default 15 up to ~1,600 passages, then growing with √n (50 at most): a fixed 15 would
            # see an ever smaller neighbourhood of a large corpus and fragment it into local dust.
            n_neighbors=int(min(50, max(15, round(math.sqrt(n_passages) * 0.375)))),
            # 5 dimensions are enough for HDBSCAN at every size here; more only slow it down.
            n_components=5,
            min_samples=0,
            # 0.625·√n: 25 on the bundled corpus; more themes split shared ones into document-specific parts
            # (bench/topics_quality.py), and more than 60 nobody reads.
            max_topics=int(min(60, max(10, round(0.625 * math.sqrt(n_passages))))),
        )
        params = replace(params, **overrides)
        if "min_samples" not in overrides:
            params = replace(params, min_samples=max(2, params.min_topic_size // 3))
        return params


@dataclass
class TopicResult:
    """A fitted topic model and what the outputs are made of."""

    model: object  # bertopic.BERTopic
    passages: list[TopicPassage]
    topics: list[int]
    params: TopicParams
    encoder: str
    corpus_hash: str
    outliers_before: float
    outliers_after: float
    space: np.ndarray | None = None  # the vectors the clustering saw (centred when params.centring says so)
    outlier_threshold: float = 1.0  # similarity an outlier needed to be reassigned to a theme
    whitening: dict[str, np.ndarray] | None = None  # with params.centring "whiten": how new passages are whitened


def dutch_stop_words(extra: Sequence[str] = ()) -> list[str]:
    from spacy.lang.nl.stop_words import STOP_WORDS

    return sorted({w.lower() for w in STOP_WORDS} | BOILERPLATE | FILLERS | {w.lower() for w in extra})


def make_vectorizer(
    params: TopicParams, stop_words: Sequence[str] | None = None, vocabulary: Sequence[str] | None = None
):
    from sklearn.feature_extraction.text import CountVectorizer

    return CountVectorizer(
        stop_words=list(stop_words or dutch_stop_words()),
        token_pattern=TOKEN_PATTERN,
        ngram_range=params.ngram_range,
        min_df=1 if vocabulary is not None else 2,
        lowercase=True,
        vocabulary=list(vocabulary) if vocabulary is not None else None,
    )


def shared_vocabulary(passages: Sequence[TopicPassage], params: TopicParams) -> list[str] | None:
    """Topic words that occur in at least ``params.min_documents`` documents (and two passages), so a
    document's own jargon, names and place names cannot label a theme; None when there is no floor."""
    if params.min_documents <= 1:
        return None
    analyzer = make_vectorizer(params).build_analyzer()
    documents: dict[str, set[str]] = {}
    passages_with: Counter = Counter()
    for p in passages:
        for term in set(analyzer(p.text)):
            documents.setdefault(term, set()).add(p.doc_id)
            passages_with[term] += 1
    floor = min(params.min_documents, len({p.doc_id for p in passages}))
    return sorted(t for t, docs in documents.items() if len(docs) >= floor and passages_with[t] >= 2)



def topic_passages(engine) -> list[TopicPassage]:
    """Content passages of every current document, in reading order; headings and fragments left out."""
    from pipeline.store import document_rows, load_passages

    out = []
    for doc in document_rows(engine):
        if doc["status"] != "ok":
            continue
        for p in load_passages(engine, doc["doc_id"]):
            if p.kind in CONTENT_KINDS and len(p.text.split()) >= MIN_WORDS:
                out.append(TopicPassage(p.id, doc["doc_id"], doc["study"] or doc["doc_id"], doc["sector"], p.text))
    return out


def corpus_hash(passages: Sequence[TopicPassage], encoder: str) -> str:
    """Identifies the input of a fit: passages, their groups, the encoder and the topic-word vocabulary rules."""
    digest = hashlib.sha256(f"{encoder}\n{TOKEN_PATTERN}\n{' '.join(dutch_stop_words())}".encode())
    for p in passages:
        digest.update(f"\n{p.passage_id}\t{p.sector}\t{p.study}\t{p.text}".encode())
    return digest.hexdigest()


def cached_backend(encoder, engine, offset: np.ndarray | None = None):
    """A BERTopic embedding backend that goes through the store's embedding cache. With ``offset`` (the
    corpus's mean passage vector) it is subtracted, so words and seed themes live in the same centred
    space as the passages."""
    from bertopic.backend import BaseEmbedder

    from pipeline.embeddings import embed

    class CachedEncoder(BaseEmbedder):
        def embed(self, documents, verbose: bool = False) -> np.ndarray:
            vectors = embed(list(documents), encoder, engine)
            if offset is None:
                return vectors
            vectors = vectors - offset
            return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)

    return CachedEncoder()


def seed_topics(codebook: Codebook, nlp) -> list[list[str]]:
    """Guided mode: one seed list per condition, from the codebook's own distinctive terms."""
    from pipeline.evaluation import keyword_lexicon
    from pipeline.nlp import load_glossary, make_nlp

    lexicon = keyword_lexicon(codebook, nlp or make_nlp(load_glossary()))["conditions"]
    return [sorted(words) for words in lexicon.values() if words]


def fit_topics(
    passages: Sequence[TopicPassage],
    embeddings: np.ndarray,
    params: TopicParams,
    backend,
    encoder_name: str,
    seed_topic_list: list[list[str]] | None = None,
    label: bool = True,
) -> TopicResult:
    """Fit BERTopic on precomputed passage embeddings, reduce outliers, and label the topics.

    With ``params.centring`` the clustering sees the passage vectors with their document's mean taken out
    (see :func:`centre_embeddings`); ``label=False`` leaves out KeyBERT/MMR (the seed-stability fits only
    need the assignments)."""
    from bertopic import BERTopic
    from bertopic.backend import BaseEmbedder
    from bertopic.representation import KeyBERTInspired, MaximalMarginalRelevance
    from hdbscan import HDBSCAN
    from umap import UMAP

    if len(passages) < MIN_PASSAGES:
        raise TopicsError(
            f"te weinig inhoudelijke passages voor een topicmodel: {len(passages)} (minimaal {MIN_PASSAGES})"
        )
    docs = [p.text for p in passages]
    representation = {
        "KeyBERT": KeyBERTInspired(top_n_words=params.top_n_words, random_state=params.random_state),
        "MMR": MaximalMarginalRelevance(diversity=0.3, top_n_words=params.top_n_words),
    } if label else None  # fmt: skip
    if params.zeroshot and params.neighbours == "per_document":
        raise ValueError("zero-shot themes leave passages out of UMAP: no balanced neighbour graph for the rest")
    groups = [p.doc_id for p in passages]
    whitening = fit_whitening(subtract_document_means(embeddings, groups)) if params.centring == "whiten" else None
    space = centre_embeddings(embeddings, groups, params.centring, whitening)
    if params.centring != "none":
        offset = np.asarray(embeddings, dtype=np.float64).mean(axis=0)
        raw_backend = backend

        class CentredBackend(BaseEmbedder):
            """Words, seed themes and representative passages in the space the passages are clustered in
            (corpus mean taken out, whitened like the passages), so guided seeds and KeyBERT compare like
            with like."""

            def embed(self, documents, verbose: bool = False) -> np.ndarray:
                vectors = raw_backend.embed(list(documents)) - offset
                if whitening is not None:
                    vectors = (vectors - whitening["mean"]) @ whitening["components"].T / np.sqrt(whitening["variance"])
                return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)

        backend = CentredBackend()
    vocabulary = shared_vocabulary(passages, params)
    zeroshot = [f"{t['name']}: {t['description']}" for t in load_seed_themes()] if params.zeroshot else None
    knn = balanced_neighbours(space, [p.doc_id for p in passages], params.n_neighbors) \
        if params.neighbours == "per_document" else None  # fmt: skip
    model = BERTopic(
        language="dutch",
        embedding_model=backend,
        umap_model=UMAP(
            precomputed_knn=knn or (None, None, None),
            n_neighbors=knn[0].shape[1] if knn else params.n_neighbors,
            n_components=params.n_components,
            min_dist=0.0,
            metric="cosine",
            random_state=params.random_state,
            n_jobs=1,  # what a fixed random_state implies anyway; saying so avoids UMAP's warning
        ),
        hdbscan_model=HDBSCAN(
            min_cluster_size=params.min_topic_size,
            min_samples=params.min_samples,
            metric="euclidean",
            cluster_selection_method=params.cluster_selection,
            prediction_data=True,
        ),
        vectorizer_model=make_vectorizer(params, vocabulary=vocabulary),
        representation_model=None,  # labels once, on the final themes (below): KeyBERT/MMR are the slow part
        top_n_words=params.top_n_words,
        seed_topic_list=seed_topic_list if params.guided else None,
        zeroshot_topic_list=zeroshot,
        zeroshot_min_similarity=params.zeroshot_min_similarity,
        calculate_probabilities=False,
    )
    with warnings.catch_warnings():  # with our neighbour graph UMAP cannot transform; place_passages does not ask it
        warnings.filterwarnings("ignore", message="precomputed_knn.*transform", category=UserWarning)
        topics, _ = model.fit_transform(docs, embeddings=space)
    if params.max_topics and len(set(topics) - {-1}) > params.max_topics:
        model.reduce_topics(docs, nr_topics=params.max_topics + 1)
        topics = list(model.topics_)
    if params.merge_distance > 0:
        merge_near_duplicates(model, docs, params.merge_distance)
        topics = list(model.topics_)
    before = topics.count(-1) / len(topics)
    topics, threshold = reduce_outliers(model, docs, list(topics), space, params.outlier_share)
    if topics != list(model.topics_) or representation is not None:
        model.update_topics(
            docs,
            topics=topics,
            vectorizer_model=make_vectorizer(params, vocabulary=vocabulary),
            representation_model=representation,
        )
    # update_topics makes topic embeddings from c-TF-IDF-weighted word vectors; centroids of the space the
    # clustering saw (BERTopic's own default) are what new passages are compared with, saved or in memory.
    final = np.asarray(model.topics_)
    model.topic_embeddings_ = np.vstack([space[final == t].mean(axis=0) for t in sorted(set(model.topics_))])
    return TopicResult(
        model=model,
        passages=list(passages),
        topics=list(model.topics_),
        params=params,
        encoder=encoder_name,
        corpus_hash=corpus_hash(passages, encoder_name),
        outliers_before=round(before, 4),
        outliers_after=round(list(model.topics_).count(-1) / len(topics), 4),
        space=space,
        outlier_threshold=threshold,
        whitening=whitening,
    )



def merge_near_duplicates(model, docs: list[str], distance: float) -> None:
    """Merge themes that BERTopic's hierarchical topics join below ``distance`` (Ward linkage over the
    themes' c-TF-IDF vectors): two near-identical themes would split one finding in two."""
    hierarchy = model.hierarchical_topics(docs)
    groups: list[set[int]] = []
    for topics in hierarchy.loc[hierarchy["Distance"] <= distance].sort_values("Distance")["Topics"]:
        members = set(int(t) for t in topics)
        groups = [g for g in groups if not g <= members] + [members]
    groups = [sorted(g) for g in groups if len(g) > 1]
    if groups:
        model.merge_topics(docs, groups)


def load_seed_themes() -> list[dict]:
    """Seed themes written from the codebook and the annotation guidelines (``pipeline/data/seed_themes.yaml``)."""
    from importlib.resources import files

    import yaml

    return yaml.safe_load(files("pipeline.data").joinpath("seed_themes.yaml").read_text("utf-8"))["themes"]


def reduce_outliers(
    model, docs: list[str], topics: list[int], embeddings: np.ndarray, target_share: float
) -> tuple[list[int], float]:
    """Reassign outliers to their most similar topic, least doubtful first, until at most
    ``target_share`` of the passages stay in topic −1 (the ones least like any topic); also the
    similarity that took (new passages placed later need as much to join a theme)."""
    from sklearn.metrics.pairwise import cosine_similarity

    outliers = [i for i, t in enumerate(topics) if t == -1]
    allowed = int(target_share * len(topics))
    if len(outliers) <= allowed or len(set(topics) - {-1}) == 0:
        return topics, 1.0
    similarity = cosine_similarity(embeddings[outliers], model.topic_embeddings_[model._outliers :]).max(axis=1)
    threshold = float(np.sort(similarity)[::-1][len(outliers) - allowed - 1])
    reduced = model.reduce_outliers(docs, topics, strategy="embeddings", embeddings=embeddings, threshold=threshold)
    return list(reduced), threshold


def place_passages(result: TopicResult, passages: Sequence[TopicPassage], embeddings: np.ndarray) -> list[int]:
    """Themes for passages of documents the model was not fitted on (a new study): each document centred on
    its own mean (and whitened) as in the fit, then its most similar theme (cosine to the themes' centroids,
    BERTopic's ``transform`` without UMAP), but only when it is as similar as the fit's own reassigned
    outliers had to be; the rest stays −1 (no existing theme)."""
    space = centre_embeddings(embeddings, [p.doc_id for p in passages], result.params.centring, result.whitening)
    model = result.model
    vectors = np.asarray(model.topic_embeddings_)[model._outliers :]
    vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    similarity = space @ vectors.T
    ids = sorted(set(model.topic_sizes_) - {-1})
    return [ids[int(np.argmax(row))] if row.max() >= result.outlier_threshold else -1 for row in similarity]


def representative_passages(result: TopicResult, embeddings: np.ndarray, n: int = 3) -> dict[int, list[str]]:
    """Per topic, the passages nearest to the topic's centroid in embedding space."""
    topics = np.asarray(result.topics)
    normed = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    out = {}
    for topic in sorted(set(result.topics) - {-1}):
        members = np.flatnonzero(topics == topic)
        centroid = normed[members].mean(axis=0)
        order = members[np.argsort(-(normed[members] @ centroid), kind="stable")]
        out[topic] = [result.passages[i].passage_id for i in order[:n]]
    return out


def topic_table(result: TopicResult, embeddings: np.ndarray) -> pd.DataFrame:
    """One row per topic: size, a readable label, c-TF-IDF words, KeyBERT and MMR words, example ids."""
    model = result.model
    reps = representative_passages(result, embeddings)
    sizes = Counter(result.topics)
    rows = []
    for topic in sorted(sizes):
        words = [w for w, _ in model.get_topic(topic) or []]
        aspects = model.topic_aspects_ or {}
        keybert = [w for w, _ in aspects.get("KeyBERT", {}).get(topic, []) if w]
        mmr = [w for w, _ in aspects.get("MMR", {}).get(topic, []) if w]
        label = "uitschieters (geen thema)" if topic == -1 else f"{topic}: " + " · ".join((keybert or words)[:3])
        rows.append(
            {
                "topic": topic,
                "size": sizes[topic],
                "share": round(sizes[topic] / len(result.topics), 4),
                "label": label,
                "words": ", ".join(words),
                "keybert": ", ".join(keybert),
                "mmr": ", ".join(mmr),
                "representative_passages": " ".join(reps.get(topic, [])),
            }
        )
    return pd.DataFrame(rows)


def passage_table(result: TopicResult) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "passage_id": [p.passage_id for p in result.passages],
            "doc_id": [p.doc_id for p in result.passages],
            "study": [p.study for p in result.passages],
            "sector": [p.sector for p in result.passages],
            "topic": result.topics,
        }
    )


def share_table(result: TopicResult, by: str) -> pd.DataFrame:
    """Rows ``by`` (doc_id, sector or study), columns topics: share of that group's passages per topic."""
    frame = passage_table(result)
    counts = pd.crosstab(frame[by], frame["topic"])
    return (counts.div(counts.sum(axis=1), axis=0)).round(4)


def topics_per_class(result: TopicResult, by: str) -> pd.DataFrame:
    """BERTopic's own per-class topic words and frequencies (sector or study)."""
    docs = [p.text for p in result.passages]
    classes = [getattr(p, by) for p in result.passages]
    return result.model.topics_per_class(docs, classes=classes)


def framework_crosstabs(assignments: pd.DataFrame, coded: Sequence, codebook: Codebook) -> dict[str, pd.DataFrame]:
    """Topic × condition and topic × polarity counts (``assignments``: passage_id, topic): which inductive
    themes sit inside which framework condition, and which ones the framework misses (``geen_voorwaarde``)."""
    labels = {c.passage_id: c for c in coded}
    topics = sorted({int(t) for t in assignments["topic"]})
    conditions = list(codebook.ids("conditions")) + [NO_CONDITION]
    polarities = list(codebook.ids("polarity")) + ["onbepaald"]
    by_condition = pd.DataFrame(0, index=topics, columns=conditions)
    by_polarity = pd.DataFrame(0, index=topics, columns=polarities)
    for passage_id, topic in zip(assignments["passage_id"], assignments["topic"], strict=True):
        coding = labels.get(passage_id)
        for condition in (coding.conditions if coding else ()) or (NO_CONDITION,):
            by_condition.loc[int(topic), condition] += 1
        by_polarity.loc[int(topic), (coding.polarity if coding and coding.polarity else "onbepaald")] += 1
    by_condition.index.name = by_polarity.index.name = "topic"
    return {"topic_condition": by_condition, "topic_polarity": by_polarity}


def topic_words(result: TopicResult) -> list[list[str]]:
    return [[w for w, _ in result.model.get_topic(t) or []] for t in sorted(set(result.topics) - {-1})]


def npmi_coherence(topics: Sequence[Sequence[str]], texts: Sequence[str], params: TopicParams) -> float:
    """Mean NPMI of the top-word pairs of each topic, from document co-occurrence in the corpus itself,
    tokenised by the same vectorizer the topic words come from."""
    analyzer = make_vectorizer(params).build_analyzer()
    doc_sets = [set(analyzer(t)) for t in texts]
    n = len(doc_sets)
    vocab = {w for words in topics for w in words}
    index: dict[str, set[int]] = {w: set() for w in vocab}
    for i, tokens in enumerate(doc_sets):
        for w in vocab & tokens:
            index[w].add(i)
    scores = []
    for words in topics:
        pairs = []
        for a in range(len(words)):
            for b in range(a + 1, len(words)):
                pa, pb = len(index[words[a]]) / n, len(index[words[b]]) / n
                pab = len(index[words[a]] & index[words[b]]) / n
                if pa == 0 or pb == 0:
                    continue
                if pab == 0:
                    pairs.append(-1.0)
                elif pab == 1:
                    pairs.append(1.0)
                else:
                    pairs.append(math.log(pab / (pa * pb)) / -math.log(pab))
        if pairs:
            scores.append(sum(pairs) / len(pairs))
    return round(float(np.mean(scores)), 4) if scores else float("nan")


def topic_diversity(topics: Sequence[Sequence[str]], top_n: int = 10) -> float:
    """Share of unique words among all topics' top words (1.0: no topic repeats another's words)."""
    words = [w for t in topics for w in list(t)[:top_n]]
    return round(len(set(words)) / len(words), 4) if words else float("nan")


def save_topic_model(result: TopicResult, directory: Path) -> None:
    """safetensors serialisation (no pickle), with the parameters and corpus hash beside it."""
    import tempfile

    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}."))
    staging.chmod(0o755)  # mkdtemp makes 0700
    # The pointer names our encoder; BERTopic.load(..., embedding_model=cached_backend(...)) restores it.
    result.model.save(str(staging), serialization="safetensors", save_ctfidf=True, save_embedding_model=result.encoder)
    meta = {
        "params": asdict(result.params),
        "encoder": result.encoder,
        "corpus_hash": result.corpus_hash,
        "n_passages": len(result.passages),
        "n_topics": len(set(result.topics) - {-1}),
        "outliers_before_reduction": result.outliers_before,
        "outliers_after_reduction": result.outliers_after,
        "outlier_threshold": result.outlier_threshold,
    }
    if result.whitening is not None:  # safetensors: no pickle, and the same bytes for the same arrays (npz is not)
        from safetensors.numpy import save_file

        save_file({k: np.ascontiguousarray(v) for k, v in result.whitening.items()},
                  str(staging / "mgz_whitening.safetensors"))  # fmt: skip
    (staging / "mgz_topics.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", "utf-8")
    if directory.exists():
        shutil.rmtree(directory)
    staging.rename(directory)  # a reader sees the old model or the new one, never half of one


def topic_map_coordinates(result: TopicResult) -> pd.DataFrame:
    """2-D positions of the topics for the intertopic map: PCA of the normalised topic centroids."""
    from sklearn.decomposition import PCA

    model = result.model
    ids = sorted(set(result.topics) - {-1})
    vectors = np.asarray(model.topic_embeddings_)[model._outliers :][: len(ids)]
    vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    coords = PCA(n_components=2, random_state=0).fit_transform(vectors) if len(ids) > 2 else np.zeros((len(ids), 2))
    sizes = Counter(result.topics)
    return pd.DataFrame({"topic": ids, "x": coords[:, 0], "y": coords[:, 1], "size": [sizes[t] for t in ids]})


def write_topic_outputs(
    result: TopicResult, embeddings: np.ndarray, folder: Path, recurrence: dict[int, int] | None = None
) -> tuple[pd.DataFrame, dict]:
    """Topic table, per-passage assignments, document/sector/study shares, per-class words, figures, and the
    cross-sector comparison (pipeline/theme_comparison.py); ``recurrence``: per theme, in how many seeds'
    fits it exists. Returns the table and the themes' spread over sectors and documents."""
    from pipeline.corpus import write_atomic
    from pipeline.theme_comparison import write_theme_comparison
    from pipeline.topic_figures import heatmap_figures, intertopic_figures

    space = result.space if result.space is not None else embeddings
    table = topic_table(result, space)
    if recurrence is not None:
        table["seeds_found"] = [recurrence.get(int(t), 0) for t in table["topic"]]
    labels = dict(zip(table["topic"], table["label"], strict=True))
    write_atomic(folder / "topics.csv", table.to_csv(index=False))
    write_atomic(folder / "passage_topics.csv", passage_table(result).to_csv(index=False))
    for by, name in (("doc_id", "document_topics"), ("sector", "sector_topics"), ("study", "study_topics")):
        write_atomic(folder / f"{name}.csv", share_table(result, by).to_csv())
    for by in ("sector", "study"):
        write_atomic(folder / f"topics_per_{by}.csv", topics_per_class(result, by).to_csv(index=False))
    html, png = intertopic_figures(topic_map_coordinates(result), labels)
    write_atomic(folder / "intertopic_map.html", html)
    write_atomic(folder / "intertopic_map.png", png)
    shares = share_table(result, "sector")
    html, png = heatmap_figures(shares[[c for c in shares.columns if c != -1]], labels)
    write_atomic(folder / "sector_topic_heatmap.html", html)
    write_atomic(folder / "sector_topic_heatmap.png", png)
    spread = write_theme_comparison(passage_table(result), space, [p.text for p in result.passages], folder)
    return table, spread


def write_crosstabs(assignments: pd.DataFrame, coded: Sequence, codebook: Codebook, folder: Path) -> None:
    """The crosstabs from the labels that count now (reviews over the model), so they follow every review."""
    from pipeline.corpus import write_atomic
    from pipeline.theme_comparison import per_sector_crosstab

    for name, frame in framework_crosstabs(assignments, coded, codebook).items():
        write_atomic(folder / f"{name}.csv", frame.to_csv())
    by_sector = {
        sector: framework_crosstabs(part, coded, codebook)["topic_condition"]
        for sector, part in assignments.groupby("sector")
    }
    write_atomic(folder / "topic_condition_per_sector.csv", per_sector_crosstab(by_sector).to_csv(index=False))


def seed_stability(result: TopicResult, embeddings: np.ndarray, backend, seeds=None) -> tuple[dict[int, int], float]:
    """Refit with ``params.seed_runs - 1`` other UMAP seeds (assignments only, no labels): per theme in
    how many of the fits it exists, and the mean pairwise ARI of the assignments."""
    from pipeline.theme_comparison import mean_pairwise_ari, seed_recurrence

    others = [
        fit_topics(result.passages, embeddings, replace(result.params, random_state=result.params.random_state + k),
                   backend, result.encoder, seeds, label=False).topics
        for k in range(1, result.params.seed_runs)
    ]  # fmt: skip
    return seed_recurrence(result.topics, others), mean_pairwise_ari([result.topics, *others])


def saved_topics(folder: Path) -> dict | None:
    """The metadata of the topic model saved in ``folder/model``, if any."""
    path = folder / "model" / "mgz_topics.json"
    return json.loads(path.read_text("utf-8")) if path.exists() else None


def build_topics(
    engine,
    codebook: Codebook,
    out_dir: Path,
    encoder,
    model_version: str | None,
    nlp=None,
    refit: bool = False,
    **overrides: object,
) -> dict:
    """``outputs/topics/``: fit (or reuse, when corpus and parameters are unchanged) and write everything.

    Raises TopicsError when the corpus is too small for a topic model.
    """
    from pipeline.corpus import write_json
    from pipeline.embeddings import embed
    from pipeline.matrices import coded_passages

    folder = Path(out_dir) / "topics"
    passages = topic_passages(engine)
    try:
        params = TopicParams.for_corpus(len(passages), **overrides)
    except TopicsError:
        if saved_topics(folder) is not None:  # themes of a corpus that is no longer there: not shown as current
            shutil.rmtree(folder)
        raise
    digest = corpus_hash(passages, encoder.name)
    saved = saved_topics(folder)
    reuse = (
        not refit
        and saved is not None
        and saved["corpus_hash"] == digest
        and saved["params"] == json.loads(json.dumps(asdict(params)))
        and (folder / "passage_topics.csv").exists()
    )
    if reuse:
        summary = json.loads((folder / "summary.json").read_text("utf-8"))
    else:
        embeddings = embed([p.text for p in passages], encoder, engine)
        seeds = seed_topics(codebook, nlp) if params.guided else None
        result = fit_topics(passages, embeddings, params, cached_backend(encoder, engine), encoder.name, seeds)
        recurrence, agreement = seed_stability(result, embeddings, cached_backend(encoder, engine), seeds)
        table, spread = write_topic_outputs(result, embeddings, folder, recurrence)
        save_topic_model(result, folder / "model")
        words = topic_words(result)
        summary = {
            "n_passages": len(passages),
            "n_topics": len(words),
            "outliers_before_reduction": result.outliers_before,
            "outliers_after_reduction": result.outliers_after,
            "npmi": npmi_coherence(words, [p.text for p in passages], params),
            "diversity": topic_diversity(words),
            "params": json.loads(json.dumps(asdict(params))),
            "encoder": encoder.name,
            "corpus_hash": digest,
            "labels": dict(zip(table["topic"].astype(str), table["label"], strict=True)),
            "seed_ari": agreement,
            "themes_in_one_seed_only": sorted(t for t, n in recurrence.items() if n == 1 and params.seed_runs > 1),
            **{k: spread[k] for k in ("two_sector_share", "shared_themes", "document_themes", "largest_share")},
        }
        write_json(folder / "summary.json", summary)
    assignments = pd.read_csv(folder / "passage_topics.csv", dtype={"passage_id": str})
    write_crosstabs(assignments, coded_passages(engine, model_version), codebook, folder)
    return {**summary, "reused": reuse}


def topic_view(folder: Path, codebook: Codebook) -> dict | None:
    """What the HTML report shows of the topics: per theme its size, sector shares and the framework
    condition it sits in most (or that it sits in none); None when no topic model was made."""
    if not (folder / "summary.json").exists() or not (folder / "topic_condition.csv").exists():
        return None
    summary = json.loads((folder / "summary.json").read_text("utf-8"))
    table = pd.read_csv(folder / "topics.csv")
    sectors = pd.read_csv(folder / "sector_topics.csv", index_col=0)
    crosstab = pd.read_csv(folder / "topic_condition.csv", index_col=0)
    names = {c: codebook.fields["conditions"].label(c).name for c in codebook.ids("conditions")}
    names[NO_CONDITION] = "geen voorwaarde"
    rows = []
    for record in table.itertuples():
        counts = crosstab.loc[record.topic]
        total = counts.sum()
        rows.append(
            {
                "label": record.label,
                "size": record.size,
                "words": record.words,
                "sectors": {s: float(sectors.loc[s, str(record.topic)]) for s in sectors.index},
                "condition": names[counts.idxmax()] if total else "",
                "condition_share": round(float(counts.max() / total), 2) if total else 0.0,
                "no_condition_share": round(float(counts[NO_CONDITION] / total), 2) if total else 0.0,
            }
        )
    from pipeline.theme_report import theme_section

    png = folder / "sector_topic_heatmap.png"
    return {"summary": summary, "rows": rows, "sectors": list(sectors.index), "heatmap_png": png.read_bytes(),
            "section": theme_section(folder, codebook)}  # fmt: skip


def load_topic_model(directory: Path, encoder, engine=None):
    """The saved BERTopic model with our cached encoder as its embedding backend (e.g. to ``transform``
    passages of a new document onto the existing themes)."""
    from bertopic import BERTopic

    return BERTopic.load(str(directory), embedding_model=cached_backend(encoder, engine))


def load_topic_result(directory: Path, encoder, engine=None) -> TopicResult:
    """The saved model with what placing new passages needs (parameters, whitening, outlier threshold), for
    :func:`place_passages`: a new study's passages onto the existing themes."""
    meta = json.loads((Path(directory) / "mgz_topics.json").read_text("utf-8"))
    params = TopicParams(**{**meta["params"], "ngram_range": tuple(meta["params"]["ngram_range"])})
    from safetensors.numpy import load_file

    whitening_file = Path(directory) / "mgz_whitening.safetensors"
    whitening = load_file(str(whitening_file)) if whitening_file.exists() else None
    return TopicResult(
        model=load_topic_model(directory, encoder, engine),
        passages=[],
        topics=[],
        params=params,
        encoder=meta["encoder"],
        corpus_hash=meta["corpus_hash"],
        outliers_before=meta["outliers_before_reduction"],
        outliers_after=meta["outliers_after_reduction"],
        outlier_threshold=meta.get("outlier_threshold", 1.0),
        whitening=whitening,
    )
