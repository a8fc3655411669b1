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
- Clusters: HDBSCAN's "leaf" selection with a small ``min_samples``. The
  default "eom" selection scores a higher NPMI here but makes umbrella topics
  of a document's register (two of 21 % each); leaf clusters stay even
  (bench/topics_quality.py, docs/topics-evaluation.csv).
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
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.codebook import Codebook
from pipeline.matrices import CONTENT_KINDS

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
DIV_ID = "mgz-figure"  # fixed, so the same model writes byte-identical HTML


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
            max_topics=int(min(60, max(10, round(math.sqrt(n_passages))))),  # more themes than this nobody reads
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


def dutch_stop_words(extra: Sequence[str] = ()) -> list[str]:
    from spacy.lang.nl.stop_words import STOP_WORDS

    return sorted({w.lower() for w in STOP_WORDS} | BOILERPLATE | FILLERS | {w.lower() for w in extra})


def make_vectorizer(params: TopicParams, stop_words: Sequence[str] | None = None):
    from sklearn.feature_extraction.text import CountVectorizer

    return CountVectorizer(
        stop_words=list(stop_words or dutch_stop_words()),
        token_pattern=TOKEN_PATTERN,
        ngram_range=params.ngram_range,
        min_df=2,
        lowercase=True,
    )


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


def cached_backend(encoder, engine):
    """A BERTopic embedding backend that goes through the store's embedding cache."""
    from bertopic.backend import BaseEmbedder

    from pipeline.embeddings import embed

    class CachedEncoder(BaseEmbedder):
        def embed(self, documents, verbose: bool = False) -> np.ndarray:
            return embed(list(documents), encoder, engine)

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
) -> TopicResult:
    """Fit BERTopic on precomputed passage embeddings, reduce outliers, and label the topics."""
    from bertopic import BERTopic
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
    }
    model = BERTopic(
        language="dutch",
        embedding_model=backend,
        umap_model=UMAP(
            n_neighbors=params.n_neighbors,
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
        vectorizer_model=make_vectorizer(params),
        representation_model=representation,
        top_n_words=params.top_n_words,
        seed_topic_list=seed_topic_list if params.guided else None,
        calculate_probabilities=False,
    )
    topics, _ = model.fit_transform(docs, embeddings=embeddings)
    if params.max_topics and len(set(topics) - {-1}) > params.max_topics:
        model.reduce_topics(docs, nr_topics=params.max_topics + 1)
        topics = list(model.topics_)
    before = topics.count(-1) / len(topics)
    topics = reduce_outliers(model, docs, list(topics), embeddings, params.outlier_share)
    if topics != list(model.topics_):
        model.update_topics(
            docs, topics=topics, vectorizer_model=make_vectorizer(params), representation_model=representation
        )
    return TopicResult(
        model=model,
        passages=list(passages),
        topics=list(model.topics_),
        params=params,
        encoder=encoder_name,
        corpus_hash=corpus_hash(passages, encoder_name),
        outliers_before=round(before, 4),
        outliers_after=round(list(model.topics_).count(-1) / len(topics), 4),
    )


def reduce_outliers(
    model, docs: list[str], topics: list[int], embeddings: np.ndarray, target_share: float
) -> list[int]:
    """Reassign outliers to their most similar topic, least doubtful first, until at most
    ``target_share`` of the passages stay in topic −1 (the ones least like any topic)."""
    from sklearn.metrics.pairwise import cosine_similarity

    outliers = [i for i, t in enumerate(topics) if t == -1]
    allowed = int(target_share * len(topics))
    if len(outliers) <= allowed or len(set(topics) - {-1}) == 0:
        return topics
    similarity = cosine_similarity(embeddings[outliers], model.topic_embeddings_[model._outliers :]).max(axis=1)
    threshold = float(np.sort(similarity)[::-1][len(outliers) - allowed - 1])
    return list(model.reduce_outliers(docs, topics, strategy="embeddings", embeddings=embeddings, threshold=threshold))


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
    }
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


def _intertopic_figures(coords: pd.DataFrame, labels: dict[int, str]) -> tuple[str, bytes]:
    import plotly.graph_objects as go

    from pipeline.figures import plt
    from pipeline.figures import png as _png

    hover = [labels[t] for t in coords["topic"]]
    radius = 8 + 40 * np.sqrt(coords["size"] / coords["size"].max())
    fig = go.Figure(
        go.Scatter(
            x=coords["x"], y=coords["y"], mode="markers+text", text=[str(t) for t in coords["topic"]],
            hovertext=hover, hoverinfo="text", marker={"size": radius, "opacity": 0.6},
        )
    )  # fmt: skip
    fig.update_layout(title="Intertopic-kaart (afstand = verschil in inhoud, grootte = aantal passages)")
    html = fig.to_html(include_plotlyjs=True, full_html=True, div_id=DIV_ID)
    figure, (ax, legend) = plt.subplots(1, 2, figsize=(14, 7), gridspec_kw={"width_ratios": [3, 2]})
    ax.scatter(coords["x"], coords["y"], s=radius**2, alpha=0.5)
    for _, row in coords.iterrows():
        ax.annotate(str(int(row["topic"])), (row["x"], row["y"]), fontsize=8, ha="center", va="center")
    ax.set_title("Intertopic-kaart (afstand = verschil in inhoud, grootte = aantal passages)", fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
    legend.axis("off")
    lines = [labels[int(t)][:60] for t in coords["topic"]]
    legend.text(0, 1, "\n".join(lines), va="top", fontsize=max(5, min(9, 360 // max(1, len(lines)))))
    return html, _png(figure)


def _heatmap_figures(shares: pd.DataFrame, labels: dict[int, str]) -> tuple[str, bytes]:
    import plotly.graph_objects as go

    from pipeline.figures import plt
    from pipeline.figures import png as _png

    columns = [labels[t] for t in shares.columns]
    fig = go.Figure(go.Heatmap(z=shares.values, x=columns, y=list(shares.index), colorscale="Blues"))
    fig.update_layout(title="Aandeel passages per thema, per sector")
    html = fig.to_html(include_plotlyjs=True, full_html=True, div_id=DIV_ID)
    figure, ax = plt.subplots(figsize=(max(8, 0.5 * len(columns)), 3 + 0.4 * len(shares.index)))
    ax.imshow(shares.values, cmap="Blues", aspect="auto")
    ax.set_xticks(range(len(columns)), [c[:35] for c in columns], rotation=75, ha="right", fontsize=7)
    ax.set_yticks(range(len(shares.index)), list(shares.index))
    for i in range(shares.shape[0]):
        for j in range(shares.shape[1]):
            ax.text(j, i, f"{shares.values[i, j]:.0%}", ha="center", va="center", fontsize=6)
    ax.set_title("Aandeel passages per thema, per sector")
    return html, _png(figure)


def write_topic_outputs(result: TopicResult, embeddings: np.ndarray, folder: Path) -> pd.DataFrame:
    """Topic table, per-passage assignments, document/sector/study shares, per-class words, figures."""
    from pipeline.corpus import write_atomic

    table = topic_table(result, embeddings)
    labels = dict(zip(table["topic"], table["label"], strict=True))
    write_atomic(folder / "topics.csv", table.to_csv(index=False))
    write_atomic(folder / "passage_topics.csv", passage_table(result).to_csv(index=False))
    for by, name in (("doc_id", "document_topics"), ("sector", "sector_topics"), ("study", "study_topics")):
        write_atomic(folder / f"{name}.csv", share_table(result, by).to_csv())
    for by in ("sector", "study"):
        write_atomic(folder / f"topics_per_{by}.csv", topics_per_class(result, by).to_csv(index=False))
    html, png = _intertopic_figures(topic_map_coordinates(result), labels)
    write_atomic(folder / "intertopic_map.html", html)
    write_atomic(folder / "intertopic_map.png", png)
    shares = share_table(result, "sector")
    html, png = _heatmap_figures(shares[[c for c in shares.columns if c != -1]], labels)
    write_atomic(folder / "sector_topic_heatmap.html", html)
    write_atomic(folder / "sector_topic_heatmap.png", png)
    return table


def write_crosstabs(assignments: pd.DataFrame, coded: Sequence, codebook: Codebook, folder: Path) -> None:
    """The crosstabs from the labels that count now (reviews over the model), so they follow every review."""
    from pipeline.corpus import write_atomic

    for name, frame in framework_crosstabs(assignments, coded, codebook).items():
        write_atomic(folder / f"{name}.csv", frame.to_csv())


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
        table = write_topic_outputs(result, embeddings, folder)
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
    png = folder / "sector_topic_heatmap.png"
    return {"summary": summary, "rows": rows, "sectors": list(sectors.index), "heatmap_png": png.read_bytes()}


def load_topic_model(directory: Path, encoder, engine=None):
    """The saved BERTopic model with our cached encoder as its embedding backend (e.g. to ``transform``
    passages of a new document onto the existing themes)."""
    from bertopic import BERTopic

    return BERTopic.load(str(directory), embedding_model=cached_backend(encoder, engine))
