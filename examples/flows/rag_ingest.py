"""Chunk documents, embed the chunks and upsert them into the platform's Qdrant for retrieval.

    python rag_ingest.py run --docs s3://dev-111122223333-us-east-1-datasets/search/handbook/

`ingest` runs in the team's namespace with the Secret `qdrant-read-write` (writer teams only; the others get
`qdrant-read-only`, which cannot upsert) mounted as environment variables: `endpoint` (the in-cluster URL) and
`api-key`. Kubernetes 1.34 passes such names from a Secret unchanged (KEP-4369, stable in 1.34).

The default embedder, `hashing`, is a deterministic feature-hashing embedding: it needs no model download, so
the flow runs anywhere, but it matches words, not meaning. For real retrieval pass `--embedder` a
sentence-transformers model (its package and weights in the step image). Locally, `--qdrant` takes a folder:
qdrant-client's local mode stores the collection there, with the same API.
"""

import hashlib
import math
import os
import re
import uuid
from pathlib import Path

from metaflow import S3, FlowSpec, Parameter, kubernetes, step

HASHING = "hashing"
HASHING_DIMENSIONS = 256
# Point ids are UUIDs derived from (document, chunk number): ingesting again overwrites instead of duplicating.
POINT_NAMESPACE = uuid.UUID("6f1c7d1e-3b1a-5c55-9a4e-1f1ad0c0ffee")


def read_documents(docs):
    """(name, text) of every .md and .txt file under `docs`: an S3 prefix, or a local folder."""
    if docs.startswith("s3://"):
        with S3(s3root=docs) as s3:
            found = [(obj.key, obj.blob.decode()) for obj in s3.get_all() if obj.key.endswith((".md", ".txt"))]
    else:
        found = [
            (p.relative_to(docs).as_posix(), p.read_text())
            for p in sorted(Path(docs).rglob("*"))
            if p.suffix in (".md", ".txt")
        ]
    if not found:
        raise ValueError(f"no .md or .txt documents under {docs}")
    return found


def chunk(text, size, overlap):
    """Windows of at most `size` words, each sharing `overlap` words with the one before."""
    words = text.split()
    step_words = size - overlap
    return [" ".join(words[i : i + size]) for i in range(0, max(len(words) - overlap, 1), step_words)]


def hashing_embedding(text):
    """Signed feature hashing of the lower-cased words, L2-normalised (cosine distance then ranks overlap)."""
    vector = [0.0] * HASHING_DIMENSIONS
    for word in re.findall(r"\w+", text.lower()):
        digest = hashlib.sha256(word.encode()).digest()
        index = int.from_bytes(digest[:4], "big") % HASHING_DIMENSIONS
        vector[index] += 1.0 if digest[4] & 1 else -1.0
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


def embedder(name):
    """A function from a list of texts to their vectors, and the vectors' size."""
    if name == HASHING:
        return (lambda texts: [hashing_embedding(t) for t in texts]), HASHING_DIMENSIONS
    from sentence_transformers import SentenceTransformer  # in the step image; not needed for `hashing`

    model = SentenceTransformer(name)
    return (lambda texts: model.encode(texts, normalize_embeddings=True).tolist()), int(
        model.get_sentence_embedding_dimension()
    )


def qdrant_client(target):
    """A client for `target`: an http(s) URL with the API key from the environment, or a local folder."""
    from qdrant_client import QdrantClient

    if target.startswith(("http://", "https://")):
        return QdrantClient(url=target, api_key=os.environ["api-key"], timeout=60)
    return QdrantClient(path=target)


class RagIngestFlow(FlowSpec):
    docs = Parameter("docs", required=True, help="s3://<datasets bucket>/<team>/<name>/ or a local folder")
    collection = Parameter("collection", default="handbook", help="Qdrant collection to upsert into")
    qdrant = Parameter("qdrant", default="", help="Default: the `endpoint` of the Secret qdrant-read-write")
    embedder_name = Parameter("embedder", default=HASHING, help="`hashing` or a sentence-transformers model")
    chunk_words = Parameter("chunk-words", default=200, type=int)
    overlap_words = Parameter("overlap-words", default=40, type=int)

    @step
    def start(self):
        if not 0 <= self.overlap_words < self.chunk_words:
            raise ValueError("--overlap-words must be at least 0 and less than --chunk-words")
        self.chunks = [
            {"source": name, "chunk": i, "text": piece}
            for name, text in read_documents(self.docs)
            for i, piece in enumerate(chunk(text, self.chunk_words, self.overlap_words))
            if piece
        ]
        self.next(self.ingest)

    @kubernetes(cpu=2, memory=4096, secrets=["qdrant-read-write"])
    @step
    def ingest(self):
        from qdrant_client import models

        embed, size = embedder(self.embedder_name)
        client = qdrant_client(self.qdrant or os.environ["endpoint"])
        if not client.collection_exists(self.collection):
            client.create_collection(
                self.collection, vectors_config=models.VectorParams(size=size, distance=models.Distance.COSINE)
            )
        for start in range(0, len(self.chunks), 64):
            batch = self.chunks[start : start + 64]
            vectors = embed([c["text"] for c in batch])
            client.upsert(
                self.collection,
                points=[
                    models.PointStruct(
                        id=str(uuid.uuid5(POINT_NAMESPACE, f"{c['source']}#{c['chunk']}")), vector=v, payload=c
                    )
                    for c, v in zip(batch, vectors, strict=True)
                ],
                wait=True,
            )
        self.points = client.count(self.collection, exact=True).count
        client.close()
        self.next(self.end)

    @step
    def end(self):
        print(f"{len(self.chunks)} chunks upserted; {self.collection} holds {self.points} points")


if __name__ == "__main__":
    RagIngestFlow()
